package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"
)

// pauseImage writes an OCI image archive holding one file, the pause binary
// as /pause, so the test node's containerd has its sandbox image without a
// registry. The image is reproducible: fixed times, owners and modes.
//
// The index names the image both ways containerd's import reads a name:
// io.containerd.image.name (a full reference) and the OCI ref.name.
func pauseImage(args []string) int {
	fs := flag.NewFlagSet("pause-image", flag.ContinueOnError)
	binary := fs.String("binary", "", "the static pause binary (required)")
	name := fs.String("name", "", "the image's full reference, e.g. localhost/alert-poller-pause:1 (required)")
	out := fs.String("out", "", "the archive to write (required)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *binary == "" || *name == "" || *out == "" || fs.NArg() > 0 {
		fmt.Fprint(os.Stderr, "pause-image needs --binary, --name and --out\n", usage)
		return 2
	}
	if err := writePauseImage(*binary, *name, *out); err != nil {
		fmt.Fprintln(os.Stderr, "pause-image:", err)
		return 1
	}
	return 0
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int               `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func writePauseImage(binary, name, out string) error {
	program, err := os.ReadFile(binary)
	if err != nil {
		return err
	}
	epoch := time.Unix(0, 0).UTC()
	layer, err := tarOf([]tarFile{{name: "pause", mode: 0o755, data: program, when: epoch}})
	if err != nil {
		return err
	}
	config, err := json.Marshal(map[string]any{
		"created":      epoch.Format(time.RFC3339),
		"architecture": "amd64",
		"os":           "linux",
		"config": map[string]any{
			"Entrypoint": []string{"/pause"},
			"User":       "65535:65535",
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digest(layer)}},
	})
	if err != nil {
		return err
	}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        descriptor{"application/vnd.oci.image.config.v1+json", digest(config), len(config), nil},
		"layers":        []descriptor{{"application/vnd.oci.image.layer.v1.tar", digest(layer), len(layer), nil}},
	})
	if err != nil {
		return err
	}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests": []descriptor{{
			"application/vnd.oci.image.manifest.v1+json", digest(manifest), len(manifest),
			map[string]string{"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name},
		}},
	})
	if err != nil {
		return err
	}
	files := []tarFile{
		{name: "oci-layout", mode: 0o644, data: []byte(`{"imageLayoutVersion":"1.0.0"}`), when: epoch},
		{name: "index.json", mode: 0o644, data: index, when: epoch},
	}
	for _, blob := range [][]byte{layer, config, manifest} {
		files = append(files, tarFile{name: "blobs/sha256/" + digest(blob)[len("sha256:"):], mode: 0o644, data: blob, when: epoch})
	}
	archive, err := tarOf(files)
	if err != nil {
		return err
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, archive, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

type tarFile struct {
	name string
	mode int64
	data []byte
	when time.Time
}

func tarOf(files []tarFile) ([]byte, error) {
	var buf bytes.Buffer
	w := tar.NewWriter(&buf)
	for _, f := range files {
		if err := w.WriteHeader(&tar.Header{
			Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data)),
			ModTime: f.when, Format: tar.FormatPAX,
		}); err != nil {
			return nil, err
		}
		if _, err := w.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
