//! What a node may change on the host, read before and after it so that a
//! test can show the node left nothing behind: kernel settings kubelet
//! tunes, iptables chains, ipsets and cgroups.

use super::*;

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
