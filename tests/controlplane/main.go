// Command controlplane runs a real, throw-away Kubernetes control plane
// (embedded etcd + kube-apiserver, nothing else) for alert-poller's tests.
//
//	controlplane serve --dir DIR [--kubeconfig PATH] [--again]
//	controlplane kubectl ARGS...
//
// `serve` prints exactly one line to stdout, "READY <kubeconfig>", once the
// apiserver answers /readyz; everything else goes to stderr or to log files
// in DIR, so a test harness can simply read the first line.
package main

import (
	"fmt"
	"os"
)

const usage = `usage:
  controlplane serve --dir DIR [--kubeconfig PATH] [--again]
  controlplane kubectl ARGS...
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		os.Exit(serve(os.Args[2:]))
	case "kubectl":
		os.Exit(kubectl(os.Args[2:]))
	case "-h", "--help", "help":
		fmt.Fprint(os.Stdout, usage)
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n%s", os.Args[1], usage)
		os.Exit(2)
	}
}
