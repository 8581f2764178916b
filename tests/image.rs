//! The container image: built by scripts/image.sh (buildah, no Docker
//! daemon), it must hold the binary and the libraries it needs, start as a
//! non-root user, and run `alert-poller run` by default.
//!
//! The test builds from the debug binary to spare CI a release build; the
//! packaging is the same for both profiles.

use std::path::{Path, PathBuf};
use std::process::Command;

use alert_poller_testbed::TempDir;
use serde_json::Value;

fn blob(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Runs scripts/image.sh on the debug binary and returns the OCI archive
/// it wrote: the path on the last line it prints.
fn build_image() -> PathBuf {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("bash")
        .arg(Path::new(root).join("scripts/image.sh"))
        .env("ALERT_POLLER_PROFILE", "debug")
        .current_dir(root)
        .output()
        .expect("scripts/image.sh runs");
    assert!(
        out.status.success(),
        "image build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let archive = Path::new(root).join(
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .lines()
            .last()
            .unwrap(),
    );
    assert!(archive.is_file(), "{} exists", archive.display());
    archive
}

/// Every path in the image's layers, one a line, as `tar -t` lists them.
fn files_in_layers(dir: &Path, manifest: &Value) -> String {
    let mut files = String::new();
    for layer in manifest["layers"].as_array().unwrap() {
        let listing = Command::new("tar")
            .arg("-tf")
            .arg(blob(dir, layer["digest"].as_str().unwrap()))
            .output()
            .unwrap();
        files.push_str(&String::from_utf8_lossy(&listing.stdout));
    }
    files
}

#[test]
fn image_holds_the_binary_and_runs_as_non_root() {
    let archive = build_image();
    let dir = TempDir::new("image").unwrap();
    let untar = Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(untar.success());
    let index = json(&dir.path().join("index.json"));
    let manifest = json(&blob(
        dir.path(),
        index["manifests"][0]["digest"].as_str().unwrap(),
    ));
    let config = json(&blob(
        dir.path(),
        manifest["config"]["digest"].as_str().unwrap(),
    ));

    let user = config["config"]["User"].as_str().unwrap_or_default();
    assert!(!user.is_empty(), "a user is set");
    let uid = user.split(':').next().unwrap();
    assert!(
        uid != "0" && uid != "root",
        "the image runs as non-root, not {user}"
    );
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/usr/local/bin/alert-poller"])
    );
    assert_eq!(config["config"]["Cmd"], serde_json::json!(["run"]));

    let files = files_in_layers(dir.path(), &manifest);
    for needed in [
        "usr/local/bin/alert-poller",
        "etc/passwd",
        "etc/ssl/certs/ca-certificates.crt",
        "lib64/ld-linux-x86-64.so.2",
    ] {
        assert!(
            files.lines().any(|f| f.trim_start_matches("./") == needed),
            "{needed} missing in\n{files}"
        );
    }
    assert!(
        !files.lines().any(|f| f.ends_with("bin/sh")),
        "no shell in the image"
    );
}
