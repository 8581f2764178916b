// Command pause is the process of every pod's sandbox container on the test
// node: it holds the pod's namespaces open and does nothing else. As PID 1
// of a pod that shares its process namespace it also reaps orphans.
//
// Built static (CGO_ENABLED=0) so that its image needs no libraries.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range signals {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
