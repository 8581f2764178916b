//! Real processes and fault injection for the integration tests, the demo and
//! the experiments. Nothing here runs in the controller; it is a crate of its
//! own so that tests, `demo` and `compare` share one implementation and the
//! controller's build carries none of it.
//!
//! - [`collector`]: a stand-in for the OpenTelemetry Collector's own metrics,
//!   whose drop and throttling counters the caller flips.
//! - [`prometheus`]: Debian's `prometheus` binary on a free loopback port.
//! - [`rules`]: the shipped alert rules, made fast for tests.
//! - [`controlplane`]: kube-apiserver and etcd, built from Go modules.
//! - [`crd_shapes`]: our CRD and one shaped like telemetry-manager's.
//! - [`node`]: a real one-node cluster (kubelet, containerd) in namespaces of
//!   its own, and [`netns`]: TCP across a network namespace's border.
//! - [`controller`]: the real `alert-poller` binary as a child process.
//! - [`fake_prometheus`], [`slow_proxy`]: a misbehaving and a slow Prometheus;
//!   [`freeze_proxy`]: an API server that takes requests and never answers.
//! - [`auth_gate`], [`token_server`]: credentials checked in front of the
//!   real Prometheus (also a tenant header and path prefix, as Mimir's), and
//!   an OAuth2 token endpoint.
//! - [`http`]: the small HTTP server the stand-ins share.
//! - [`exposition`]: sums over series of Prometheus' text format.
//! - [`signal`]: SIGTERM, SIGSTOP and SIGCONT to the processes it starts.
//! - [`manager`]: a stand-in of telemetry-manager writing its condition.
//! - [`netpol`]: which pod may reach which under a set of NetworkPolicies.
//! - [`install`]: the CRD and deploy/ applied, tuned for a test Prometheus.
//! - [`poller`]: the poller alone, wired as `main` wires it.

pub mod auth_gate;
pub mod collector;
pub mod controller;
pub mod controlplane;
pub mod crd_shapes;
pub mod exposition;
pub mod fake_prometheus;
pub mod freeze_proxy;
pub mod http;
pub mod install;
pub mod manager;
pub mod mimir;
pub mod netns;
pub mod netpol;
pub mod node;
pub mod poller;
pub mod prometheus;
pub mod rules;
pub mod signal;
pub mod slow_proxy;
pub mod thanos;
pub mod token_server;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// The repository's root: the workspace this crate is a member of.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the test bed lives in the workspace")
}

/// Runs `tests/<program>/build.sh`, one of the tests' Go builds (cached by
/// tests/go/cached-build.sh, so a call after the first takes milliseconds),
/// and returns the path it prints. Its progress goes to this process's stderr.
pub fn go_build(program: &str) -> Result<PathBuf, String> {
    let script = repo_root().join("tests").join(program).join("build.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!("{} failed: {}", script.display(), out.status));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.lines().last().map(str::trim) {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => Err(format!("{} printed no path", script.display())),
    }
}

/// An HTTP client for the test bed's own requests, the crypto provider
/// installed first (see `alert_poller::prometheus::crypto`).
pub fn http_client() -> prometheus_http_query::reqwest::Client {
    alert_poller::prometheus::install_crypto_provider();
    prometheus_http_query::reqwest::Client::new()
}

/// Polls `url` until it answers 2xx; an error when `child` exits first
/// ("exited: …") or `limit` passes (the last answer, status and body, or
/// "never answered"): the readiness wait of every process the test bed
/// starts from a Go build.
pub async fn until_ready(
    child: &mut tokio::process::Child,
    url: &str,
    limit: std::time::Duration,
) -> Result<(), String> {
    let client = http_client();
    let started = std::time::Instant::now();
    let mut last = "never answered".to_owned();
    while started.elapsed() < limit {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited: {status}"));
        }
        match client.get(url).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                last = format!("last answer {status}: {}", body.trim());
            }
            Err(_) => {}
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err(last)
}

/// The last `n` lines of `text`, for failure messages quoting a log.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A free TCP port on 127.0.0.1. Another process could take it before it is
/// used; on a test machine that race is rare enough.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the loopback interface has a free port")
}

/// A fresh directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> std::io::Result<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("alert-poller-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// CPU seconds (user + system) and peak RSS (KiB) of a process, from /proc;
/// zeros when the process is gone. For the experiments and test reports.
pub fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name: state is field 0, utime 11, stime 12 (in ticks).
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks: u64 = fields
        .get(11..13)
        .map_or(0, |f| f.iter().filter_map(|t| t.parse::<u64>().ok()).sum());
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    (ticks as f64 / 100.0, rss)
}
