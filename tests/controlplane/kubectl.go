package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"
)

// kubectl runs the real kubectl (kustomize included) for machines that have
// none installed. It costs little: kube-apiserver already links most of it.
func kubectl(args []string) int {
	// kubectl reads os.Args itself (plugin lookup, early -v parsing), so it
	// must look as if it had been started as "kubectl ARGS...".
	os.Args = append([]string{"kubectl"}, args...)
	_, _ = logs.GlogSetter(kubectlcmd.GetLogVerbosity(os.Args))
	if err := cli.RunNoErrOutput(kubectlcmd.NewDefaultKubectlCommand()); err != nil {
		cmdutil.CheckErr(err) // prints kubectl-style and exits non-zero
	}
	return 0
}
