package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"golang.org/x/sys/unix"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/component-base/cli"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"

	// The same side-effect imports as the kube-apiserver binary, so that its
	// /metrics look the same.
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
)

const (
	// The Service network; its first address is the kubernetes Service's,
	// which the serving certificate names for pods' in-cluster clients.
	serviceRange = "10.96.0.0/16"
	saIssuer     = "https://kubernetes.default.svc.cluster.local"
	// How long a SIGTERM may take before we stop waiting for a graceful
	// shutdown; a test harness should not hang on a stuck watch.
	shutdownGrace = 10 * time.Second
)

// started marks process start, to report how long start-up took.
var started = time.Now()

func serve(args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory for etcd data, certificates and logs (required)")
	kubeconfig := fs.String("kubeconfig", "", "where to write the admin kubeconfig (default DIR/admin.kubeconfig)")
	address := fs.String("address", "127.0.0.1", "the IPv4 address the apiserver listens on and advertises; a non-loopback one also becomes the endpoint of the kubernetes Service, so pods on a test node reach the apiserver through it (etcd stays on 127.0.0.1)")
	again := fs.Bool("again", false, "start again on what an earlier serve left in DIR: the same ports, certificates and etcd data (a restart, as after a crash or an upgrade)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ip := net.ParseIP(*address).To4()
	if ip == nil {
		fmt.Fprintf(os.Stderr, "--address %q is not an IPv4 address\n", *address)
		return 2
	}
	if *dir == "" || fs.NArg() > 0 {
		fmt.Fprint(os.Stderr, "serve needs --dir DIR and no other arguments\n", usage)
		return 2
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	d, _ := filepath.Abs(*dir)
	kc := filepath.Join(d, "admin.kubeconfig")
	if *kubeconfig != "" {
		kc, _ = filepath.Abs(*kubeconfig)
	}

	logPath := filepath.Join(d, "apiserver.log")
	stdout, stderr, err := redirectOutput(logPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "redirecting output:", err)
		return 1
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "controlplane: "+format+"\n", a...) }
	logf("logs: %s, %s", logPath, filepath.Join(d, "etcd.log"))

	// Building the command installs kube-apiserver's SIGTERM/SIGINT handler
	// (it may only be installed once per process); creating it first lets
	// the same context also cancel etcd start-up and the readiness wait.
	apiserver := app.NewAPIServerCommand()
	ctx := apiserver.Context()
	go forceExitAfterSignal(logf)
	// A signal during start-up makes kube-apiserver's post-start hooks give
	// up with klog.Fatal (exit 255). That is the stop we were asked for, not
	// a crash, so report it as a clean exit.
	klog.OsExit = func(code int) {
		if ctx.Err() != nil {
			code = 0
		}
		os.Exit(code)
	}

	ports, err := choosePorts(filepath.Join(d, "ports"), *again)
	if err != nil {
		logf("choosing ports: %v", err)
		return 1
	}
	etcdPort, peerPort, apiPort := ports[0], ports[1], ports[2]

	certs := pkiPaths(filepath.Join(d, "pki"))
	if !*again {
		if certs, err = generatePKI(filepath.Join(d, "pki"), ip); err != nil {
			logf("generating certificates: %v", err)
			return 1
		}
	}

	etcd, err := startEtcd(ctx, d, etcdPort, peerPort, *again)
	if err != nil {
		if ctx.Err() != nil {
			return 0 // stopped by a signal while etcd was starting
		}
		logf("starting etcd: %v", err)
		return 1
	}
	defer stopEtcd(etcd, logf)

	server := "https://" + net.JoinHostPort(ip.String(), strconv.Itoa(apiPort))
	if err := writeKubeconfig(kc, server, certs); err != nil {
		logf("writing kubeconfig: %v", err)
		return 1
	}

	apiserver.SetArgs(apiserverArgs(d, certs, ip, etcdPort, apiPort))
	done := make(chan error, 1)
	go func() { done <- cli.RunNoErrOutput(apiserver) }()

	ready := make(chan error, 1)
	go func() { ready <- waitReady(ctx, server, certs) }()

	for {
		select {
		case err := <-ready:
			if err != nil {
				if ctx.Err() == nil {
					logf("apiserver never became ready: %v (see %s)", err, logPath)
					return 1
				}
				continue // a signal arrived; wait for the apiserver to stop
			}
			logf("apiserver %s ready after %s", server, time.Since(started).Round(time.Millisecond))
			fmt.Fprintf(stdout, "READY %s\n", kc)
			ready = nil // nothing more will arrive; a nil channel blocks forever
		case err := <-done:
			if ctx.Err() == nil {
				logf("kube-apiserver exited on its own: %v (see %s)", err, logPath)
				return 1
			}
			if err != nil {
				logf("kube-apiserver shut down with error: %v", err)
			}
			logf("apiserver stopped; stopping etcd")
			return 0
		}
	}
}

// apiserverArgs is the kube-apiserver command line. Only flags that matter
// for a single control plane, with at most one test node, are set.
func apiserverArgs(dir string, c *pki, ip net.IP, etcdPort, apiPort int) []string {
	args := []string{
		"--etcd-servers=http://127.0.0.1:" + strconv.Itoa(etcdPort),
		"--bind-address=" + ip.String(),
		"--advertise-address=" + ip.String(),
		"--secure-port=" + strconv.Itoa(apiPort),
		"--cert-dir=" + filepath.Join(dir, "pki"),
		"--tls-cert-file=" + c.serverCert,
		"--tls-private-key-file=" + c.serverKey,
		"--client-ca-file=" + c.caCert,
		"--authorization-mode=RBAC",
		"--service-account-issuer=" + saIssuer,
		"--api-audiences=" + saIssuer,
		"--service-account-key-file=" + c.saKey,
		"--service-account-signing-key-file=" + c.saKey,
		"--service-cluster-ip-range=" + serviceRange,
		// How the apiserver proves itself to a test node's kubelet (logs,
		// exec); the kubelet trusts our CA and authorizes system:masters.
		"--kubelet-client-certificate=" + c.adminCert,
		"--kubelet-client-key=" + c.adminKey,
		// The node's address, not its name: nothing here resolves node
		// names, and a lookup would leave for the host's resolver.
		"--kubelet-preferred-address-types=InternalIP",
		// By default shutdown waits up to the 60s request timeout for open
		// connections, and a client's watch keeps one open. This caps the
		// HTTP server's shutdown at 2s, so SIGTERM is quick.
		"--shutdown-send-retry-after=true",
		// /debug/pprof is of no use to tests and only widens the surface.
		"--profiling=false",
	}
	if ip.IsLoopback() {
		// The endpoint reconciler publishes the advertise address as the
		// endpoint of the "kubernetes" Service and refuses a loopback one,
		// which aborts start-up. Without a node nothing needs that endpoint.
		args = append(args, "--endpoint-reconciler-type=none")
	}
	return args
}

// redirectOutput points file descriptors 1 and 2 at logPath, so that
// everything the apiserver, etcd, gRPC or the Go runtime print lands in the
// log, and returns handles to the original stdout and stderr for our own use.
func redirectOutput(logPath string) (stdout, stderr *os.File, err error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, nil, err
	}
	defer log.Close()
	keep := func(fd int, name string) (*os.File, error) {
		nfd, err := unix.Dup(fd)
		if err != nil {
			return nil, err
		}
		unix.CloseOnExec(nfd)
		return os.NewFile(uintptr(nfd), name), nil
	}
	if stdout, err = keep(1, "stdout"); err != nil {
		return nil, nil, err
	}
	if stderr, err = keep(2, "stderr"); err != nil {
		return nil, nil, err
	}
	for _, fd := range []int{1, 2} {
		if err := unix.Dup2(int(log.Fd()), fd); err != nil {
			return nil, nil, err
		}
	}
	return stdout, stderr, nil
}

// freePorts asks the kernel for n distinct free loopback ports (on a test
// node the apiserver listens on the node's address instead; its namespace is
// new, so the port is free there too). All
// listeners stay open until every port is known so none is handed out twice;
// another process could still grab one before we bind it, a race tests can
// live with.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// choosePorts picks three free ports (etcd client, etcd peer, apiserver) and
// records them in path, or, when again is set, reads the recorded ones: a
// restarted control plane must be where its clients' kubeconfigs point.
func choosePorts(path string, again bool) ([]int, error) {
	if again {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--again needs an earlier serve in the same --dir: %w", err)
		}
		ports := make([]int, 3)
		if _, err := fmt.Sscan(string(b), &ports[0], &ports[1], &ports[2]); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return ports, nil
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	return ports, os.WriteFile(path, []byte(fmt.Sprintln(ports[0], ports[1], ports[2])), 0o644)
}

func startEtcd(ctx context.Context, dir string, clientPort, peerPort int, again bool) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Name = "controlplane"
	// A fresh start begins from an empty store: the certificates (and so
	// every token and secret signed with them) are new each time anyway.
	// A restart keeps the store, as a real control plane would.
	cfg.Dir = filepath.Join(dir, "etcd")
	if !again {
		if err := os.RemoveAll(cfg.Dir); err != nil {
			return nil, err
		}
	}
	client := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(clientPort)}
	peer := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(peerPort)}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogOutputs = []string{filepath.Join(dir, "etcd.log")}
	// The data is thrown away at exit, so durability buys nothing and fsync
	// would make every write in a test slow.
	cfg.UnsafeNoFsync = true

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case err := <-e.Err():
		e.Close()
		return nil, err
	case <-time.After(time.Minute):
		e.Close()
		return nil, errors.New("etcd not ready after 1m")
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	}
}

// stopEtcd closes etcd but does not let a stuck client stream delay exit:
// the data is disposable, so giving up after a few seconds is harmless.
func stopEtcd(e *embed.Etcd, logf func(string, ...any)) {
	closed := make(chan struct{})
	go func() { e.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		logf("etcd did not stop within 5s; exiting anyway")
	}
}

// forceExitAfterSignal bounds shutdown time. kube-apiserver's own handler
// starts a graceful shutdown on the first signal (and exits 1 on a second);
// this only steps in if that takes longer than shutdownGrace.
func forceExitAfterSignal(logf func(string, ...any)) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	time.Sleep(shutdownGrace)
	logf("graceful shutdown took longer than %s; exiting anyway", shutdownGrace)
	os.Exit(0)
}

func writeKubeconfig(path, server string, c *pki) error {
	read := func(p string) []byte { b, _ := os.ReadFile(p); return b }
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["controlplane"] = &clientcmdapi.Cluster{
		Server:                   server,
		CertificateAuthorityData: read(c.caCert),
	}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: read(c.adminCert),
		ClientKeyData:         read(c.adminKey),
	}
	cfg.Contexts["controlplane"] = &clientcmdapi.Context{
		Cluster: "controlplane", AuthInfo: "admin", Namespace: "default",
	}
	cfg.CurrentContext = "controlplane"
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return clientcmd.WriteToFile(*cfg, path)
}

// waitReady polls /readyz as admin until it answers 200. /readyz only turns
// green once etcd is reachable and all post-start hooks (RBAC bootstrap
// roles, system namespaces, API discovery) have finished, so clients can use
// the cluster right away.
func waitReady(ctx context.Context, server string, c *pki) error {
	caPEM, err := os.ReadFile(c.caCert)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	admin, err := tls.LoadX509KeyPair(c.adminCert, c.adminKey)
	if err != nil {
		return err
	}
	client := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: roots, Certificates: []tls.Certificate{admin},
		}},
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	last := errors.New("no answer yet")
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, server+"/readyz", nil)
		if resp, err := client.Do(req); err != nil {
			last = err
		} else {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("/readyz: %s", resp.Status)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
