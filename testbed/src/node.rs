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
/// The pause image's name, as containerd is told to use it; also the one
/// container of a test pod that only holds a network namespace.
pub const PAUSE_IMAGE: &str = "localhost/alert-poller-pause:1";
/// Where Debian's containernetworking-plugins package puts the plugins.
const CNI_BIN: &str = "/usr/lib/cni";
/// The project's image as kubelet asks containerd for it: deploy/ names it
/// `alert-poller:<version>`, which normalizes to Docker Hub's library.
pub fn project_image() -> String {
    format!(
        "docker.io/library/alert-poller:{}",
        env!("CARGO_PKG_VERSION")
    )
}

/// The image of Debian's Prometheus that tests/node/prometheus-image.sh
/// builds, as kubelet asks containerd for it.
pub const TEST_PROMETHEUS_IMAGE: &str = "localhost/alert-poller-test-prometheus:1";

/// How long the node may take to become Ready.
const READY_WITHIN: Duration = Duration::from_secs(180);
/// How long kube-router may take to start and write its first rules.
const ENFORCING_WITHIN: Duration = Duration::from_secs(60);

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

/// The host-wide kernel settings kubelet changes (pkg/kubelet/cm
/// setupKernelTunables), which `node init` restores: read them before and
/// after a node to check.
pub const KERNEL_SETTINGS: [&str; 6] = [
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
];

/// The current values of [`KERNEL_SETTINGS`].
pub fn kernel_settings() -> Vec<(&'static str, String)> {
    KERNEL_SETTINGS
        .iter()
        .map(|name| {
            let value = std::fs::read_to_string(Path::new("/proc/sys").join(name))
                .map(|v| v.trim().to_owned())
                .unwrap_or_else(|e| format!("unreadable: {e}"));
            (*name, value)
        })
        .collect()
}

/// What a node could leave behind on the host, read before a node starts
/// and compared by [`leftovers`] after it stopped: the kernel settings
/// kubelet changes, and the host's own iptables chains and ipsets (the
/// node's, kube-proxy's and kube-router's, must stay in its namespace).
#[derive(Clone, Debug)]
pub struct HostState {
    kernel: Vec<(&'static str, String)>,
    chains: Vec<String>,
    ipsets: Vec<String>,
}

impl HostState {
    pub fn read() -> HostState {
        HostState {
            kernel: kernel_settings(),
            chains: host_chains(),
            ipsets: host_ipsets(),
        }
    }
}

/// The host's iptables chains, as `TABLE CHAIN` (iptables-save), sorted.
fn host_chains() -> Vec<String> {
    let out = Command::new(which("iptables-save").unwrap_or_else(|| "iptables-save".into()))
        .stderr(Stdio::null())
        .output();
    let mut chains = Vec::new();
    let mut table = String::new();
    for line in out
        .map(|o| o.stdout)
        .unwrap_or_default()
        .split(|b| *b == b'\n')
    {
        let line = String::from_utf8_lossy(line);
        if let Some(t) = line.strip_prefix('*') {
            table = t.trim().to_owned();
        } else if let Some(c) = line.strip_prefix(':') {
            let name = c.split_whitespace().next().unwrap_or_default();
            chains.push(format!("{table} {name}"));
        }
    }
    chains.sort();
    chains
}

/// The host's ipset names, sorted; none when `ipset` is not installed.
fn host_ipsets() -> Vec<String> {
    let Some(ipset) = which("ipset") else {
        return Vec::new();
    };
    let out = Command::new(ipset)
        .args(["list", "-n"])
        .stderr(Stdio::null())
        .output();
    let mut sets: Vec<String> = String::from_utf8_lossy(&out.map(|o| o.stdout).unwrap_or_default())
        .lines()
        .map(str::to_owned)
        .collect();
    sets.sort();
    sets
}

/// What a stopped node left on the host, one line each: its init still
/// running, a kube-router process, a cgroup of the test process' node root,
/// a mount under a node directory, a kernel setting that differs from
/// `before`, or an iptables chain or ipset the host did not have before.
pub fn leftovers(init_pid: u32, before: &HostState) -> Vec<String> {
    let mut found = Vec::new();
    if Path::new(&format!("/proc/{init_pid}")).exists() {
        found.push(format!("node init (PID {init_pid}) is still running"));
    }
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(exe) = std::fs::read_link(entry.path().join("exe")) else {
            continue;
        };
        if exe
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("kube-router-"))
        {
            found.push(format!(
                "kube-router (PID {}) is still running",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    let root = cgroup_root(std::process::id());
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
    {
        let dir = hierarchy.path().join(root.trim_start_matches('/'));
        if dir.exists() {
            found.push(format!("cgroup {} remains", dir.display()));
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in mounts.lines().filter(|l| l.contains("alert-poller-node-")) {
        found.push(format!("mount remains: {line}"));
    }
    let now = kernel_settings();
    for ((name, was), (_, is)) in before.kernel.iter().zip(&now) {
        if was != is {
            found.push(format!("kernel setting {name} is {is}, was {was}"));
        }
    }
    for chain in host_chains() {
        if !before.chains.contains(&chain) {
            found.push(format!("iptables chain {chain} appeared on the host"));
        }
    }
    for set in host_ipsets() {
        if !before.ipsets.contains(&set) {
            found.push(format!("ipset {set} appeared on the host"));
        }
    }
    found
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

impl Node {
    /// Builds what is missing, starts the cluster and waits until the node
    /// is Ready. `progress` gets one line per step. Needs a multi-threaded
    /// Tokio runtime: the forwards run on it while start-up waits.
    pub async fn start(mut progress: impl FnMut(&str)) -> Result<Node, NodeError> {
        if let Some(why) = missing() {
            return Err(NodeError::Unsupported(why));
        }
        let begun = Instant::now();
        let (binaries, controlplane) = tokio::task::spawn_blocking(|| -> Result<_, NodeError> {
            Ok((build()?, controlplane::build()?))
        })
        .await
        .map_err(|e| NodeError::Start(e.to_string()))??;
        progress(&format!(
            "binaries ready after {:.1}s",
            begun.elapsed().as_secs_f64()
        ));
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
        progress(&format!(
            "namespaces ready after {:.1}s",
            begun.elapsed().as_secs_f64()
        ));

        // The steps below wait on processes; block_in_place keeps the
        // runtime's other workers serving the forwards meanwhile.
        let node_kubeconfig = tokio::task::block_in_place(|| node.start_api_server(&controlplane))?;
        node.kubectl = node.host_kubectl(&controlplane, &node_kubeconfig).await?;
        node.node_kubeconfig = node_kubeconfig.clone();
        progress(&format!(
            "API server ready after {:.1}s",
            begun.elapsed().as_secs_f64()
        ));

        tokio::task::block_in_place(|| -> Result<(), NodeError> {
            node.start_containerd()?;
            node.import_image(&node.binaries.join("pause.oci.tar"), PAUSE_IMAGE)
        })?;
        progress(&format!(
            "containerd ready after {:.1}s",
            begun.elapsed().as_secs_f64()
        ));

        tokio::task::block_in_place(|| -> Result<(), NodeError> {
            node.start_components(&node_kubeconfig)?;
            node.until_ready()
        })?;
        progress(&format!(
            "node Ready after {:.1}s",
            begun.elapsed().as_secs_f64()
        ));
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

    /// Imports an OCI image archive into containerd's Kubernetes namespace
    /// under `name` (a full reference, as kubelet asks for it).
    pub fn import_image(&self, archive: &Path, name: &str) -> Result<(), NodeError> {
        let socket = self.containerd_socket();
        let ctr = |args: &[&str]| -> Result<String, NodeError> {
            let out = self
                .command(Path::new("ctr"))
                .arg("--address")
                .arg(&socket)
                .args(["--namespace", "k8s.io"])
                .args(args)
                .output()?;
            if !out.status.success() {
                return Err(NodeError::Start(format!(
                    "ctr {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        };
        let before: Vec<String> = ctr(&["images", "list", "--quiet"])?
            .lines()
            .map(str::to_owned)
            .collect();
        ctr(&["images", "import", &archive.display().to_string()])?;
        // The archive names the image by its tag alone (buildah) or in full
        // (our pause image); kubelet asks for the normalized full name.
        let imported: Vec<String> = ctr(&["images", "list", "--quiet"])?
            .lines()
            .filter(|l| !before.iter().any(|b| b == l) && !l.starts_with("sha256:"))
            .map(str::to_owned)
            .collect();
        if imported.iter().any(|i| i == name) {
            return Ok(());
        }
        let Some(source) = imported.first() else {
            return Err(NodeError::Start(format!(
                "{} held no new image",
                archive.display()
            )));
        };
        ctr(&["images", "tag", "--force", source, name])?;
        Ok(())
    }

    /// Builds the project's image (scripts/image.sh, from the debug binary:
    /// the packaging is the same for both profiles, and the tests and the
    /// demo have that one built already) and imports it under the name
    /// deploy/'s `alert-poller:<version>` normalizes to.
    pub fn import_project_image(&self) -> Result<(), NodeError> {
        let root = super::repo_root();
        let out = Command::new("bash")
            .arg(root.join("scripts/image.sh"))
            .env("ALERT_POLLER_PROFILE", "debug")
            .current_dir(root)
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(NodeError::Start(format!(
                "scripts/image.sh failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let archive = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_owned();
        self.import_image(&root.join(archive), &project_image())
    }

    /// Builds the image of Debian's Prometheus (tests/node/prometheus-image.sh)
    /// and imports it as [`TEST_PROMETHEUS_IMAGE`].
    pub fn import_test_prometheus_image(&self) -> Result<(), NodeError> {
        let root = super::repo_root();
        let out = Command::new("bash")
            .arg(root.join("tests/node/prometheus-image.sh"))
            .current_dir(root)
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(NodeError::Start(format!(
                "tests/node/prometheus-image.sh failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let archive = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_owned();
        self.import_image(&root.join(archive), TEST_PROMETHEUS_IMAGE)
    }

    /// Enforces NetworkPolicies from now on: kube-router (tests/kube-router/,
    /// a test bed tool only) runs inside the node with its firewall alone
    /// (no routing, no service proxy: the bridge plugin and kube-proxy keep
    /// those), as admin, and this returns once it has written its first
    /// rules. Its chains and ipsets live in the node's network namespace.
    ///
    /// What it needs here:
    /// - Debian's `ipset` on the PATH, and iptables with the same backend
    ///   as kube-proxy's (both call `iptables`);
    /// - `net.bridge.bridge-nf-call-iptables=1` in the node's namespace, or
    ///   traffic between pods on the bridge never meets its rules;
    /// - the node's InternalIP (kubelet's --node-ip): it enforces for the
    ///   pods whose hostIP that is; no podCIDR (that is its router's);
    /// - the Service range, whose addresses it lets through unfiltered (they
    ///   are judged after kube-proxy's DNAT, at the endpoint).
    ///
    /// Policies are judged after DNAT, so pods' API server traffic counts
    /// at the endpoint's port, which on a real cluster is 443 or 6443 and
    /// here a free one. So that deploy/'s egress rule for the API server is
    /// tested as it is, pods reach it, from now on, at NODE_IP:6443
    /// ([`POD_API_PORT`]): a forward to the API server, and a DNAT of the
    /// `kubernetes` Service's address to it ahead of kube-proxy's.
    pub async fn enforce_network_policies(&mut self) -> Result<(), NodeError> {
        if let Some(why) = missing_enforcement() {
            return Err(NodeError::Unsupported(why));
        }
        let binary = tokio::task::spawn_blocking(|| {
            super::go_build("kube-router").map_err(NodeError::Build)
        })
        .await
        .map_err(|e| NodeError::Start(e.to_string()))??;

        let for_pods = SocketAddr::V4(SocketAddrV4::new(NODE_IP, POD_API_PORT));
        let listener = self.netns.listen(for_pods)?;
        self.forwards.push(Forward::start(
            listener,
            Side::Inside(self.netns.clone(), self.api_server),
        )?);

        tokio::task::block_in_place(|| -> Result<(), NodeError> {
            self.run_inside(
                "sysctl",
                &["-q", "-w", "net.bridge.bridge-nf-call-iptables=1"],
            )?;
            let service = self.kubectl.run(&[
                "get",
                "service",
                "kubernetes",
                "-o",
                "jsonpath={.spec.clusterIP}",
            ])?;
            // Ahead of kube-proxy's jump to its Services, so first the jump
            // must be there: kube-proxy puts it first only when it is missing.
            self.until_kube_proxy_jump()?;
            self.run_inside(
                "iptables",
                &[
                    "-t",
                    "nat",
                    "-I",
                    "PREROUTING",
                    "1",
                    "-s",
                    POD_CIDR,
                    "-d",
                    service.trim(),
                    "-p",
                    "tcp",
                    "--dport",
                    "443",
                    "-m",
                    "comment",
                    "--comment",
                    "pods reach the API server at the node's port 6443, as on a kubeadm node",
                    "-j",
                    "DNAT",
                    "--to-destination",
                    &for_pods.to_string(),
                ],
            )?;

            let log = std::fs::File::create(self.dir.path().join("logs/kube-router.log"))?;
            let child = self
                .command(&binary)
                .args([
                    format!("--kubeconfig={}", self.node_kubeconfig.display()),
                    format!("--hostname-override={NODE_NAME}"),
                    "--run-firewall=true".to_owned(),
                    "--run-router=false".to_owned(),
                    "--run-service-proxy=false".to_owned(),
                    format!("--service-cluster-ip-range={SERVICE_CIDR}"),
                    "--health-port=0".to_owned(),
                    "--metrics-port=0".to_owned(),
                    // One line per sync, with its duration.
                    "--v=1".to_owned(),
                ])
                // It runs `ipset`, `iptables-save` and `iptables-restore`.
                .env("PATH", sbin_path())
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()?;
            self.processes.push(Process {
                name: "kube-router",
                child,
            });
            self.until_enforcing()
        })
    }

    /// Waits until kube-proxy's first sync has put its jump to KUBE-SERVICES
    /// into the nat table's PREROUTING.
    fn until_kube_proxy_jump(&self) -> Result<(), NodeError> {
        let started = Instant::now();
        loop {
            let jump = self.run_inside(
                "iptables",
                &[
                    "-t",
                    "nat",
                    "-C",
                    "PREROUTING",
                    "-m",
                    "comment",
                    "--comment",
                    "kubernetes service portals",
                    "-j",
                    "KUBE-SERVICES",
                ],
            );
            if jump.is_ok() {
                return Ok(());
            }
            if started.elapsed() > ENFORCING_WITHIN {
                return Err(NodeError::Start(format!(
                    "kube-proxy wrote no jump to its Services within {ENFORCING_WITHIN:?}:\n{}",
                    self.log_tail("kube-proxy", 30)
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until kube-router's first full sync is in place: its last rule
    /// of KUBE-ROUTER-FORWARD, which accepts what passed the policies, is
    /// written by that sync.
    fn until_enforcing(&mut self) -> Result<(), NodeError> {
        let started = Instant::now();
        loop {
            if let Some(p) = self.processes.iter_mut().find(|p| p.name == "kube-router")
                && let Ok(Some(status)) = p.child.try_wait()
            {
                return Err(NodeError::Start(format!(
                    "kube-router exited ({status}):\n{}",
                    self.log_tail("kube-router", 30)
                )));
            }
            let rules = self
                .command(Path::new("iptables"))
                .args(["-S", "KUBE-ROUTER-FORWARD"])
                .output()?;
            if String::from_utf8_lossy(&rules.stdout).contains("0x20000/0x20000 -j ACCEPT") {
                return Ok(());
            }
            if started.elapsed() > ENFORCING_WITHIN {
                return Err(NodeError::Start(format!(
                    "kube-router wrote no rules within {ENFORCING_WITHIN:?}:\n{}",
                    self.log_tail("kube-router", 30)
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
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

    /// The control plane inside the node, listening on the node's address
    /// (kube-proxy routes the kubernetes Service there). Returns the
    /// kubeconfig the node's processes use.
    fn start_api_server(&mut self, controlplane: &Path) -> Result<PathBuf, NodeError> {
        let dir = self.dir.path().join("controlplane");
        let log = std::fs::File::create(self.dir.path().join("logs/controlplane.log"))?;
        let mut child = self
            .command(controlplane)
            .args(["serve", "--address", &NODE_IP.to_string(), "--dir"])
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()?;
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut line = String::new();
        let read = stdout.read_line(&mut line);
        self.processes.push(Process {
            name: "controlplane",
            child,
        });
        let kubeconfig = match (read, line.strip_prefix("READY ")) {
            (Ok(_), Some(path)) => PathBuf::from(path.trim()),
            _ => {
                return Err(NodeError::Start(format!(
                    "the API server did not start:\n{}",
                    self.log_tail("controlplane", 30)
                )));
            }
        };
        let config = std::fs::read_to_string(&kubeconfig)?;
        let server = config
            .lines()
            .find_map(|l| l.trim().strip_prefix("server: "))
            .and_then(|s| s.trim().strip_prefix("https://"))
            .and_then(|s| s.parse::<SocketAddr>().ok())
            .ok_or_else(|| NodeError::Start(format!("no server in {}", kubeconfig.display())))?;
        self.api_server = server;
        Ok(kubeconfig)
    }

    /// A kubeconfig for the host side: the node's, pointed at a forward on
    /// 127.0.0.1 (the serving certificate names 127.0.0.1).
    async fn host_kubectl(
        &mut self,
        controlplane: &Path,
        node_kubeconfig: &Path,
    ) -> Result<Kubectl, NodeError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let forward = Forward::start(listener, Side::Inside(self.netns.clone(), self.api_server))?;
        let config = std::fs::read_to_string(node_kubeconfig)?.replace(
            &format!("https://{}", self.api_server),
            &format!("https://{}", forward.addr()),
        );
        self.forwards.push(forward);
        let path = self.dir.path().join("host.kubeconfig");
        std::fs::write(&path, config)?;
        Ok(Kubectl::new(
            controlplane::kubectl_program(|| Ok(controlplane.to_owned()))?,
            path,
        ))
    }

    fn start_containerd(&mut self) -> Result<(), NodeError> {
        let d = self.dir.path().join("containerd");
        let cni = self.dir.path().join("cni");
        std::fs::create_dir_all(cni.join("net.d"))?;
        std::fs::write(cni.join("net.d/10-bridge.conflist"), cni_config(&cni))?;
        std::fs::create_dir_all(&d)?;
        let config = d.join("config.toml");
        std::fs::write(&config, containerd_config(&d, &cni))?;
        self.spawn(
            "containerd",
            &which("containerd").unwrap_or_else(|| "containerd".into()),
            &["--config".into(), config.display().to_string()],
        )?;
        let socket = self.containerd_socket();
        let started = Instant::now();
        loop {
            let ok = socket.exists()
                && self
                    .command(Path::new("ctr"))
                    .arg("--address")
                    .arg(&socket)
                    .arg("version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
            if ok {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(30) {
                return Err(NodeError::Start(format!(
                    "containerd did not start:\n{}",
                    self.log_tail("containerd", 30)
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// kube-controller-manager, kube-scheduler, kube-proxy and kubelet, all
    /// as admin (system:masters): the node's own identities are not what the
    /// tests are about.
    fn start_components(&mut self, kubeconfig: &Path) -> Result<(), NodeError> {
        let node = self.binaries.join("node");
        let d = self.dir.path().to_owned();
        let kc = kubeconfig.display().to_string();
        let pki = d.join("controlplane/pki");
        let arg = |s: &str| s.to_owned();

        self.spawn(
            "kube-controller-manager",
            &node,
            &[
                arg("kube-controller-manager"),
                format!("--kubeconfig={kc}"),
                arg("--leader-elect=false"),
                arg("--bind-address=127.0.0.1"),
                // kube-root-ca.crt in every namespace: pods' token volumes need it.
                format!("--root-ca-file={}", pki.join("ca.crt").display()),
                format!(
                    "--service-account-private-key-file={}",
                    pki.join("sa.key").display()
                ),
                arg("--allocate-node-cidrs=false"),
            ],
        )?;
        self.spawn(
            "kube-scheduler",
            &node,
            &[
                arg("kube-scheduler"),
                format!("--kubeconfig={kc}"),
                arg("--leader-elect=false"),
                arg("--bind-address=127.0.0.1"),
            ],
        )?;

        let proxy_config = d.join("kube-proxy.yaml");
        std::fs::write(&proxy_config, kube_proxy_config(&kc))?;
        self.spawn(
            "kube-proxy",
            &node,
            &[
                arg("kube-proxy"),
                format!("--config={}", proxy_config.display()),
            ],
        )?;

        let kubelet_dir = d.join("kubelet");
        std::fs::create_dir_all(&kubelet_dir)?;
        let kubelet_config = d.join("kubelet.yaml");
        std::fs::write(
            &kubelet_config,
            kubelet_config_yaml(
                &d,
                &self.containerd_socket(),
                &pki.join("ca.crt"),
                std::process::id(),
            ),
        )?;
        self.spawn(
            "kubelet",
            &node,
            &[
                arg("kubelet"),
                format!("--config={}", kubelet_config.display()),
                format!("--kubeconfig={kc}"),
                format!("--root-dir={}", kubelet_dir.display()),
                format!("--cert-dir={}", kubelet_dir.join("pki").display()),
                format!("--hostname-override={NODE_NAME}"),
                format!("--node-ip={NODE_IP}"),
            ],
        )?;
        Ok(())
    }

    fn until_ready(&mut self) -> Result<(), NodeError> {
        let started = Instant::now();
        loop {
            for p in &mut self.processes {
                if let Ok(Some(status)) = p.child.try_wait() {
                    let name = p.name;
                    return Err(NodeError::Start(format!(
                        "{name} exited ({status}):\n{}",
                        self.log_tail(name, 30)
                    )));
                }
            }
            let ready = self
                .kubectl
                .condition_status(None, &format!("node/{NODE_NAME}"), "Ready");
            if ready.is_ok_and(|s| s == "True") {
                return Ok(());
            }
            if started.elapsed() > READY_WITHIN {
                return Err(NodeError::Start(format!(
                    "the node was not Ready within {READY_WITHIN:?}; kubelet log tail:\n{}",
                    self.log_tail("kubelet", 40)
                )));
            }
            std::thread::sleep(Duration::from_secs(1));
        }
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

fn cni_config(dir: &Path) -> String {
    format!(
        r#"{{
  "cniVersion": "1.0.0",
  "name": "alert-poller-node",
  "plugins": [
    {{
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "ipam": {{
        "type": "host-local",
        "ranges": [[{{"subnet": "{POD_CIDR}"}}]],
        "routes": [{{"dst": "0.0.0.0/0"}}],
        "dataDir": "{}"
      }}
    }}
  ]
}}
"#,
        dir.join("ipam").display()
    )
}

fn containerd_config(dir: &Path, cni: &Path) -> String {
    let d = dir.display();
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "{d}/containerd.sock"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  netns_mounts_under_state_dir = true
  # Without CAP_SYS_RESOURCE (a sandboxed test machine's root may lack it)
  # no process may lower its OOM score; clamp instead of failing the pod.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{d}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{}/net.d"
"#,
        cni.display()
    )
}

/// kube-proxy in iptables mode, changing nothing outside the node's network
/// namespace: no global conntrack table size, no route_localnet.
fn kube_proxy_config(kubeconfig: &str) -> String {
    format!(
        r#"apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: {kubeconfig}
hostnameOverride: {NODE_NAME}
clusterCIDR: {POD_CIDR}
bindAddress: 127.0.0.1
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  localhostNodePorts: false
  masqueradeAll: true
"#
    )
}

fn kubelet_config_yaml(dir: &Path, containerd: &Path, ca: &Path, test_pid: u32) -> String {
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://{containerd}
# This host has cgroup v1 (hybrid); kubelet refuses it unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: {cgroup_root}
failSwapOn: false
protectKernelDefaults: false
podLogsDir: {logs}
address: {NODE_IP}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: {ca}
authorization:
  mode: Webhook
clusterDomain: cluster.local
# No cluster DNS here: pods get no resolver rather than the host's.
resolvConf: ""
# The test machine's disk may be nearly full; only memory may evict.
evictionHard:
  memory.available: 100Mi
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
"#,
        containerd = containerd.display(),
        cgroup_root = cgroup_root(test_pid),
        logs = dir.join("pod-logs").display(),
        ca = ca.display(),
    )
}
