package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// kernelSettings are the host-wide sysctls that kubelet sets at start-up
// (pkg/kubelet/cm setupKernelTunables, with protectKernelDefaults off). They
// are not namespaced, so init records them first and writes them back last
// (testbed/src/node.rs KERNEL_SETTINGS checks the same list after a test).
var kernelSettings = []string{
	"vm/overcommit_memory",
	"vm/panic_on_oom",
	"kernel/panic",
	"kernel/panic_on_oops",
	"kernel/keys/root_maxkeys",
	"kernel/keys/root_maxbytes",
}

// How long the node's processes get to stop on SIGTERM before SIGKILL.
const stopGrace = 10 * time.Second

// initProcess is PID 1 of the node's own PID, mount and network namespaces,
// started by the harness as
//
//	unshare --fork --pid --mount-proc --net --mount --propagation private \
//	  --kill-child=SIGTERM node init --address IP --cgroup-root /PATH
//
// It makes the namespaces a node (its network, its /run and /var/log, its
// cgroup root), prints "READY" and waits. The harness starts every node
// process inside with nsenter. When its stdin closes (the harness is done,
// or died) or on SIGTERM, init stops every process in the namespace, removes
// the cgroups and writes back the kernel settings. The namespaces, and every
// mount and address in them, vanish with the last process, so nothing is
// left on the host even after a failed test.
func initProcess(args []string) int {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	address := fs.String("address", "", "the node's IPv4 address, on a dummy interface with the default route (required)")
	cgroupRoot := fs.String("cgroup-root", "", "a cgroup path created in every cgroup hierarchy and removed at exit (required)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *address == "" || *cgroupRoot == "" || fs.NArg() > 0 {
		fmt.Fprint(os.Stderr, "init needs --address IP and --cgroup-root PATH\n", usage)
		return 2
	}
	logf := func(format string, a ...any) { fmt.Fprintf(os.Stderr, "node init: "+format+"\n", a...) }
	if os.Getpid() != 1 {
		logf("must run as PID 1 of a new PID namespace (see `node init` in tests/node/README.md)")
		return 2
	}

	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()

	saved := readKernelSettings(logf)
	defer restoreKernelSettings(saved, logf)
	hierarchies, err := createCgroupRoot(*cgroupRoot)
	defer removeCgroupRoot(hierarchies, *cgroupRoot, logf)
	if err != nil {
		logf("cgroup root: %v", err)
		return 1
	}
	if err := privateMounts(); err != nil {
		logf("mounts: %v", err)
		return 1
	}
	if err := network(*address); err != nil {
		logf("network: %v", err)
		return 1
	}
	fmt.Println("READY")

	for {
		select {
		case <-stdinClosed:
			logf("stdin closed: stopping the node")
			stopAll(signals, logf)
			return 0
		case s := <-signals:
			if s == syscall.SIGCHLD {
				reap()
				continue
			}
			logf("%v: stopping the node", s)
			stopAll(signals, logf)
			return 0
		}
	}
}

// privateMounts gives the node its own /run and /var/log: containerd's
// shim sockets and kubelet's /var/log/containers links have fixed paths
// there, and must neither meet the host's nor outlive the node. The mount
// namespace is private (unshare --propagation private), so none of this,
// nor anything kubelet or containerd mount later, reaches the host. Inside,
// "/" is made shared again for the node's own mount propagation.
func privateMounts() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SHARED, ""); err != nil {
		return fmt.Errorf("making / shared inside the node: %w", err)
	}
	for _, dir := range []string{"/run", "/var/log"} {
		if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=755"); err != nil {
			return fmt.Errorf("tmpfs on %s: %w", dir, err)
		}
	}
	return nil
}

// network brings up loopback and the node's "NIC", which holds the node's
// address and the default route: the node's processes, kube-proxy's Service
// rules and the pods' bridge all live in this namespace only. The NIC is one
// end of a veth pair whose other end leads nowhere (a dummy interface would
// do, but not every kernel has that driver; veth the CNI bridge needs anyway).
func network(address string) error {
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "node0", "type", "veth", "peer", "name", "node0-peer"},
		{"addr", "add", address + "/32", "dev", "node0"},
		{"link", "set", "node0-peer", "up"},
		{"link", "set", "node0", "up"},
		{"route", "add", "default", "dev", "node0", "src", address},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// reap collects every exited child; as PID 1, init inherits all orphans
// (containerd's shims among them).
func reap() {
	for {
		pid, err := unix.Wait4(-1, nil, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

// stopAll sends SIGTERM to every other process of the namespace, waits for
// them up to stopGrace, then kills what is left and waits until nothing but
// init remains, so that the cgroups can be removed.
func stopAll(signals chan os.Signal, logf func(string, ...any)) {
	_ = unix.Kill(-1, unix.SIGTERM)
	deadline := time.After(stopGrace)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	killed := false
	for {
		reap()
		if others() == 0 {
			return
		}
		select {
		case <-deadline:
			if !killed {
				logf("%d processes still running after %s: killing them", others(), stopGrace)
				_ = unix.Kill(-1, unix.SIGKILL)
				killed = true
				deadline = time.After(stopGrace)
			} else {
				logf("%d processes survive SIGKILL; leaving them to the kernel", others())
				return
			}
		case <-signals:
		case <-tick.C:
		}
	}
}

// others counts the processes of this PID namespace other than init, from
// the namespace's own /proc (unshare --mount-proc).
func others() int {
	entries, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid != 1 {
			n++
		}
	}
	return n
}

func readKernelSettings(logf func(string, ...any)) map[string]string {
	saved := map[string]string{}
	for _, name := range kernelSettings {
		b, err := os.ReadFile(filepath.Join("/proc/sys", name))
		if err != nil {
			logf("reading %s: %v", name, err)
			continue
		}
		saved[name] = strings.TrimSpace(string(b))
	}
	return saved
}

func restoreKernelSettings(saved map[string]string, logf func(string, ...any)) {
	for name, value := range saved {
		path := filepath.Join("/proc/sys", name)
		if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == value {
			continue
		}
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			logf("restoring %s to %s: %v", name, value, err)
			continue
		}
		logf("restored %s to %s", name, value)
	}
}

// cgroupHierarchies lists the mount points of the cgroup hierarchies, from
// /proc/self/mountinfo: the v1 ones, and the unified (v2) one that a hybrid
// host mounts beside them, where runc makes a directory per container too.
func cgroupHierarchies() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var dirs []string
	scan := bufio.NewScanner(f)
	for scan.Scan() {
		// ID parent major:minor root mountpoint options [optional...] - fstype source super
		fields := strings.Fields(scan.Text())
		for i, field := range fields {
			if field == "-" && i+1 < len(fields) && (fields[i+1] == "cgroup" || fields[i+1] == "cgroup2") {
				dirs = append(dirs, fields[4])
			}
		}
	}
	if len(dirs) == 0 {
		return nil, errors.New("no cgroup hierarchy is mounted")
	}
	return dirs, scan.Err()
}

// createCgroupRoot makes root in every hierarchy; kubelet refuses a
// --cgroup-root that does not exist. A new cpuset cgroup starts with no CPUs
// and no memory nodes, so those are copied from its parent.
func createCgroupRoot(root string) ([]string, error) {
	hierarchies, err := cgroupHierarchies()
	if err != nil {
		return nil, err
	}
	for _, h := range hierarchies {
		dir := filepath.Join(h, root)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return hierarchies, err
		}
		if filepath.Base(h) != "cpuset" {
			continue
		}
		for _, file := range []string{"cpuset.cpus", "cpuset.mems"} {
			for _, d := range ancestors(h, root) {
				b, err := os.ReadFile(filepath.Join(filepath.Dir(d), file))
				if err != nil {
					return hierarchies, err
				}
				if err := os.WriteFile(filepath.Join(d, file), b, 0o644); err != nil {
					return hierarchies, fmt.Errorf("%s: %w", filepath.Join(d, file), err)
				}
			}
		}
	}
	return hierarchies, nil
}

// ancestors lists the directories from the hierarchy's first level down to
// root, parents first.
func ancestors(hierarchy, root string) []string {
	var dirs []string
	for d := filepath.Join(hierarchy, root); d != hierarchy && d != "/"; d = filepath.Dir(d) {
		dirs = append([]string{d}, dirs...)
	}
	return dirs
}

// removeCgroupRoot removes root and everything kubelet and runc made under
// it, deepest first; a cgroup directory is removed with rmdir, never by
// deleting its files.
func removeCgroupRoot(hierarchies []string, root string, logf func(string, ...any)) {
	for _, h := range hierarchies {
		top := filepath.Join(h, root)
		var dirs []string
		_ = filepath.WalkDir(top, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			if err := unix.Rmdir(d); err != nil && !errors.Is(err, unix.ENOENT) {
				logf("removing cgroup %s: %v", d, err)
			}
		}
	}
}
