// Command node runs the parts of a one-node Kubernetes cluster that the
// control plane binary (tests/controlplane) does not: kubelet, kube-proxy,
// kube-scheduler and kube-controller-manager, all from the same Kubernetes
// release, plus the two small helpers a throw-away node in a test needs.
//
//	node kubelet|kube-proxy|kube-scheduler|kube-controller-manager ARGS...
//	node init
//	node pause-image --binary PATH --name NAME --out ARCHIVE
//
// Each Kubernetes component runs as its own process (they all register
// global flags and signal handlers, so two in one process would clash); the
// test harness starts them inside the node's namespaces.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"

	// The side-effect imports of the components' own main packages, so that
	// their logs and /metrics look as in a real cluster.
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
)

const usage = `usage:
  node kubelet|kube-proxy|kube-scheduler|kube-controller-manager ARGS...
  node init
  node pause-image --binary PATH --name NAME --out ARCHIVE
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	component := func(cmd *cobra.Command) {
		// The component parses os.Args itself through cobra; it must look as
		// if it had been started under its own name.
		os.Args = append([]string{os.Args[1]}, os.Args[2:]...)
		cmd.SetArgs(os.Args[1:])
		os.Exit(cli.Run(cmd))
	}
	switch os.Args[1] {
	case "kubelet":
		component(kubelet.NewKubeletCommand(context.Background()))
	case "kube-proxy":
		component(proxy.NewProxyCommand())
	case "kube-scheduler":
		component(scheduler.NewSchedulerCommand())
	case "kube-controller-manager":
		component(controllermanager.NewControllerManagerCommand())
	case "init":
		os.Exit(initProcess(os.Args[2:]))
	case "pause-image":
		os.Exit(pauseImage(os.Args[2:]))
	case "-h", "--help", "help":
		fmt.Fprint(os.Stdout, usage)
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n%s", os.Args[1], usage)
		os.Exit(2)
	}
}
