//! A real one-node Kubernetes cluster in namespaces of its own: the control
//! plane (tests/controlplane/), kube-controller-manager, kube-scheduler,
//! kube-proxy and kubelet (tests/node/), Debian's containerd, runc and CNI
//! plugins, a locally built pause image. Pods run for real; nothing is
//! pulled from a registry.
//!
//! Isolation: `node init` is PID 1 of new PID, mount and network namespaces
//! and every node process is started inside them with nsenter, so the
//! node's, pods' and Services' addresses, its iptables rules, its mounts and
//! its /run exist only there. When the [`Node`] is dropped, or the test
//! process dies (init's stdin closes), init stops every process, removes its
//! cgroups and writes back the host-wide kernel settings kubelet changes;
//! the namespaces vanish with their last process.
//!
//! The tests reach the API server through a forward on the host's loopback;
//! pods reach the host's test servers (a Prometheus, the collector stand-in)
//! through [`Node::expose`], an address of the node forwarded to the host's
//! loopback by the test process.
//!
//! NetworkPolicies are enforced once [`Node::enforce_network_policies`] has
//! started kube-router's firewall (tests/kube-router/, test bed only) inside
//! the node; its iptables chains and ipsets live in the node's network
//! namespace and vanish with it.

mod components;
mod host;
mod images;
mod policies;

pub use host::{HostState, KERNEL_SETTINGS, kernel_settings, leftovers};
pub use images::{PAUSE_IMAGE, TEST_PROMETHEUS_IMAGE, project_image};

use std::io::{BufRead, BufReader, Read as _};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use super::TempDir;
use super::controlplane::{self, Kubectl};
use super::netns::{Forward, NetNs, Side};

/// The node's address, on a veth interface inside its network namespace.
pub const NODE_IP: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 2);
/// The node's name.
pub const NODE_NAME: &str = "alert-poller-node";
/// The pods' network, on the node's bridge.
const POD_CIDR: &str = "10.244.0.0/24";
/// The Services' addresses (the control plane's --service-cluster-ip-range).
const SERVICE_CIDR: &str = "10.96.0.0/16";
/// The port pods reach the API server on while policies are enforced, as on
/// a kubeadm node (deploy/'s egress opens 443 and 6443 to the API server; the
/// test's API server itself listens on a free port).
pub const POD_API_PORT: u16 = 6443;
/// Where Debian's containernetworking-plugins package puts the plugins.
const CNI_BIN: &str = "/usr/lib/cni";

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The machine cannot run a node; the message says why, in one line.
    #[error("{0}")]
    Unsupported(String),
    #[error("cannot build the node (tests/node/build.sh): {0}")]
    Build(String),
    #[error("node: {0}")]
    Start(String),
    #[error(transparent)]
    ControlPlane(#[from] controlplane::ControlPlaneError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What this machine lacks to run a node, in one line, or `None` when it
/// has everything. The harness skips (and says so) rather than fail on a
/// machine that cannot run it; `.ci/run` installs the packages.
pub fn missing() -> Option<String> {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        return Some("needs root (namespaces, mounts, cgroups)".into());
    }
    let mut lacking = Vec::new();
    for (program, package) in [
        ("unshare", "util-linux"),
        ("nsenter", "util-linux"),
        ("ip", "iproute2"),
        ("iptables", "iptables"),
        ("containerd", "containerd"),
        ("containerd-shim-runc-v2", "containerd"),
        ("ctr", "containerd"),
        ("runc", "runc"),
    ] {
        if which(program).is_none() {
            lacking.push(format!("{program} ({package})"));
        }
    }
    for plugin in ["bridge", "host-local", "loopback"] {
        if !Path::new(CNI_BIN).join(plugin).is_file() {
            lacking.push(format!("{CNI_BIN}/{plugin} (containernetworking-plugins)"));
        }
    }
    if !lacking.is_empty() {
        return Some(format!("missing {}", lacking.join(", ")));
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let v1 = |c: &str| {
        mounts.lines().any(|l| {
            l.split(" - cgroup ")
                .nth(1)
                .is_some_and(|rest| rest.split([',', ' ']).any(|o| o == c))
        })
    };
    if !["cpu", "cpuacct", "cpuset", "memory", "pids"]
        .iter()
        .all(|c| v1(c))
    {
        return Some("needs cgroup v1 hierarchies for cpu, cpuacct, cpuset, memory and pids (the harness does not drive cgroup v2 yet)".into());
    }
    None
}

/// What this machine lacks to enforce NetworkPolicies on a node
/// ([`Node::enforce_network_policies`]), in one line, or `None`: kube-router
/// runs Debian's `ipset`, and sees traffic between pods on the node's bridge
/// only through the kernel's bridge netfilter (br_netfilter).
pub fn missing_enforcement() -> Option<String> {
    if which("ipset").is_none() {
        return Some("missing ipset (ipset), which kube-router runs".into());
    }
    if !Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables").exists() {
        return Some(
            "the kernel has no bridge netfilter (br_netfilter): pods on the node's bridge would pass policies unseen".into(),
        );
    }
    None
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain(["/usr/sbin".into(), "/sbin".into()])
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

/// Builds (or finds cached) the node's binaries; returns their directory.
pub fn build() -> Result<PathBuf, NodeError> {
    super::go_build("node").map_err(NodeError::Build)
}

/// One process of the node.
#[derive(Debug)]
struct Process {
    name: &'static str,
    child: Child,
}

/// A running one-node cluster.
#[derive(Debug)]
pub struct Node {
    // Field order is drop order: forwards first, the directory last (after
    // Drop has had init stop the node).
    forwards: Vec<Forward>,
    processes: Vec<Process>,
    init_stdin: Option<ChildStdin>,
    init: Child,
    init_pid: u32,
    netns: NetNs,
    api_server: SocketAddr,
    /// The kubeconfig of the node's own processes (admin, the node's address).
    node_kubeconfig: PathBuf,
    kubectl: Kubectl,
    binaries: PathBuf,
    dir: TempDir,
}

/// The node's binaries and the control plane's, built (or found cached)
/// off the runtime's threads.
async fn build_both() -> Result<(PathBuf, PathBuf), NodeError> {
    tokio::task::spawn_blocking(|| -> Result<_, NodeError> {
        Ok((build()?, controlplane::build()?))
    })
    .await
    .map_err(|e| NodeError::Start(e.to_string()))?
}

impl Node {
    /// Builds what is missing, starts the cluster and waits until the node
    /// is Ready. `progress` gets one line per step. Needs a multi-threaded
    /// Tokio runtime: the forwards run on it while start-up waits.
    pub async fn start(mut progress: impl FnMut(&str)) -> Result<Node, NodeError> {
        if let Some(why) = missing() {
            return Err(NodeError::Unsupported(why));
        }
        let begun = Instant::now();
        let mut step = |what: &str| {
            progress(&format!(
                "{what} after {:.1}s",
                begun.elapsed().as_secs_f64()
            ))
        };
        let (binaries, controlplane) = build_both().await?;
        step("binaries ready");
        let dir = TempDir::new("node")?;
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs)?;

        let (init, init_stdin, init_pid) = start_init(&binaries, dir.path())?;
        let netns = NetNs::of_process(init_pid)?;
        let mut node = Node {
            forwards: Vec::new(),
            processes: Vec::new(),
            init_stdin: Some(init_stdin),
            init,
            init_pid,
            netns,
            api_server: SocketAddr::V4(SocketAddrV4::new(NODE_IP, 0)),
            node_kubeconfig: PathBuf::new(),
            kubectl: Kubectl::new(
                controlplane::kubectl_program(|| Ok(controlplane.clone()))?,
                PathBuf::new(),
            ),
            binaries,
            dir,
        };
        step("namespaces ready");

        // The steps below wait on processes; block_in_place keeps the
        // runtime's other workers serving the forwards meanwhile.
        let node_kubeconfig = tokio::task::block_in_place(|| node.start_api_server(&controlplane))?;
        node.kubectl = node.host_kubectl(&controlplane, &node_kubeconfig).await?;
        node.node_kubeconfig = node_kubeconfig.clone();
        step("API server ready");

        tokio::task::block_in_place(|| -> Result<(), NodeError> {
            node.start_containerd()?;
            node.import_image(&node.binaries.join("pause.oci.tar"), PAUSE_IMAGE)
        })?;
        step("containerd ready");

        tokio::task::block_in_place(|| -> Result<(), NodeError> {
            node.start_components(&node_kubeconfig)?;
            node.until_ready()
        })?;
        step("node Ready");
        Ok(node)
    }

    /// kubectl as admin, through the host's loopback.
    pub fn kubectl(&self) -> &Kubectl {
        &self.kubectl
    }

    /// The API server's address inside the node.
    pub fn api_server(&self) -> SocketAddr {
        self.api_server
    }

    /// The node's own scratch directory (logs, configuration, state).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// init's PID as the host sees it: `nsenter --target` it to look inside.
    pub fn init_pid(&self) -> u32 {
        self.init_pid
    }

    /// The node's network namespace.
    pub fn netns(&self) -> &NetNs {
        &self.netns
    }

    /// Makes `host` (an address on the host's loopback, such as a test
    /// Prometheus) reachable from pods as `NODE_IP:port`.
    pub fn expose(&mut self, port: u16, host: SocketAddr) -> Result<SocketAddr, NodeError> {
        let addr = SocketAddr::V4(SocketAddrV4::new(NODE_IP, port));
        let listener = self.netns.listen(addr)?;
        self.forwards
            .push(Forward::start(listener, Side::Host(host))?);
        Ok(addr)
    }

    /// A command run inside the node's namespaces (nsenter).
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--target={}", self.init_pid))
            .args(["--net", "--mount", "--pid", "--"])
            .arg(program);
        cmd
    }

    /// Runs a program inside the node's namespaces to completion; its
    /// stdout, or an error with its stderr.
    pub fn run_inside(&self, program: &str, args: &[&str]) -> Result<String, NodeError> {
        let out = self
            .command(Path::new(program))
            .args(args)
            .env("PATH", sbin_path())
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(NodeError::Start(format!(
                "{program} {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The pods' resource use as kubelet reports it (the Summary API), in
    /// one line per container: CPU in millicores and working set in MiB.
    pub fn pod_usage(&self, namespace: &str) -> Result<Vec<String>, NodeError> {
        let raw = self.kubectl.run(&[
            "get",
            "--raw",
            &format!("/api/v1/nodes/{NODE_NAME}/proxy/stats/summary"),
        ])?;
        let summary: serde_json::Value =
            serde_json::from_str(&raw).map_err(|e| NodeError::Start(e.to_string()))?;
        let mut lines = Vec::new();
        for pod in summary["pods"].as_array().into_iter().flatten() {
            if pod["podRef"]["namespace"] != namespace {
                continue;
            }
            for c in pod["containers"].as_array().into_iter().flatten() {
                let cpu = c["cpu"]["usageNanoCores"].as_f64().unwrap_or(0.0) / 1e6;
                let memory = c["memory"]["workingSetBytes"].as_f64().unwrap_or(0.0) / 1048576.0;
                lines.push(format!(
                    "{}/{}: {cpu:.1}m CPU, {memory:.1} MiB working set",
                    pod["podRef"]["name"].as_str().unwrap_or("?"),
                    c["name"].as_str().unwrap_or("?")
                ));
            }
        }
        Ok(lines)
    }

    /// The last `n` lines of a node process' log (kubelet, containerd, ...).
    pub fn log_tail(&self, name: &str, n: usize) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("logs").join(format!("{name}.log")))
            .unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    fn containerd_socket(&self) -> PathBuf {
        self.dir.path().join("containerd/containerd.sock")
    }

    /// Starts a node process with its output in logs/NAME.log.
    fn spawn(
        &mut self,
        name: &'static str,
        program: &Path,
        args: &[String],
    ) -> Result<(), NodeError> {
        let log = std::fs::File::create(self.dir.path().join("logs").join(format!("{name}.log")))?;
        let child = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.processes.push(Process { name, child });
        Ok(())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Closing init's stdin is its signal to stop every process of the
        // node (SIGTERM, then SIGKILL), remove the cgroups and restore the
        // kernel settings. nsenter forwards no signal, so the processes are
        // stopped by init, from inside, not through their nsenter parents.
        drop(self.init_stdin.take());
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            if matches!(self.init.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.init.kill();
        let _ = self.init.wait();
        for p in &mut self.processes {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
}

/// The test's PATH with the system directories a root shell has, for the
/// node tools (iptables, ipset, sysctl) wherever the test was started from.
fn sbin_path() -> std::ffi::OsString {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for dir in [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ] {
        if !dirs.iter().any(|d| d == Path::new(dir)) {
            dirs.push(dir.into());
        }
    }
    std::env::join_paths(dirs).unwrap_or_default()
}

/// Starts `node init` as PID 1 of new namespaces and waits for its READY.
/// Returns the unshare process, init's stdin and init's PID as the host
/// sees it.
fn start_init(binaries: &Path, dir: &Path) -> Result<(Child, ChildStdin, u32), NodeError> {
    let log = std::fs::File::create(dir.join("logs/init.log"))?;
    let mut child = Command::new("unshare")
        .args([
            "--fork",
            "--pid",
            "--mount-proc",
            "--net",
            "--mount",
            "--propagation",
            "private",
            // If unshare itself is killed, init still gets to clean up.
            "--kill-child=SIGTERM",
            "--",
        ])
        .arg(binaries.join("node"))
        .args(["init", "--address", &NODE_IP.to_string(), "--cgroup-root"])
        .arg(cgroup_root(std::process::id()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()?;
    let stdin = child.stdin.take().expect("stdin is piped");
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut first = [0u8; 6];
    let ready = stdout.read_exact(&mut first).is_ok() && &first == b"READY\n";
    let init_log = || std::fs::read_to_string(dir.join("logs/init.log")).unwrap_or_default();
    if !ready {
        let _ = child.kill();
        let _ = child.wait();
        return Err(NodeError::Start(format!(
            "node init failed:\n{}",
            init_log()
        )));
    }
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", child.id()))?;
    let pid = children
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| NodeError::Start("unshare has no child".into()))?;
    Ok((child, stdin, pid))
}

/// The node's cgroup, under every hierarchy; named after the test process so
/// that two test runs never share one.
fn cgroup_root(pid: u32) -> String {
    format!("/alert-poller-node-{pid}")
}
