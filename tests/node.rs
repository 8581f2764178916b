//! `kubectl apply -k deploy/` on a real one-node cluster: kubelet and
//! containerd run the project's image, so the image, the pod's security
//! context, the in-cluster config, the probes, `kubectl logs` and pod-level
//! failover are exercised together (testbed/src/node.rs builds the node).
//!
//! Prometheus and the collector stand-in run on the host's loopback, as in
//! the other end-to-end suites; pods reach Prometheus at the node's address,
//! forwarded by this process. Needs root and Debian's containerd, runc and
//! containernetworking-plugins; without them it says why in one line and
//! skips, unless ALERT_POLLER_REQUIRE_NODE=1 (as in CI) makes that a failure.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use alert_poller_testbed::collector::{Collector, Component, Flow};
use alert_poller_testbed::controlplane::Kubectl;
use alert_poller_testbed::install::{self, NAMESPACE};
use alert_poller_testbed::node::{self, NODE_IP, Node};
use alert_poller_testbed::prometheus::{Prometheus, Setup};
use alert_poller_testbed::repo_root;
use anyhow::{Context as _, Result, bail, ensure};
use serde_json::Value;

const CONDITION: &str = "TelemetryFlowHealthy";
/// How long a pod or condition may take to get where a step wants it.
const PATIENCE: Duration = Duration::from_secs(90);
/// Where pods find the test Prometheus.
const PROMETHEUS_PORT: u16 = 9090;

struct World {
    // Drop order: the node (and its pods) before Prometheus.
    node: Node,
    collector: Collector,
    /// Kept running for the pods; the steps only talk to the collector.
    _prometheus: Prometheus,
    report: Vec<String>,
}

impl World {
    fn kubectl(&self) -> &Kubectl {
        self.node.kubectl()
    }

    fn run(&self, args: &[&str]) -> Result<String> {
        Ok(self.kubectl().run(args)?)
    }

    fn pods(&self) -> Result<Vec<Value>> {
        let json = self.run(&[
            "-n",
            NAMESPACE,
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/name=alert-poller",
            "-o",
            "json",
        ])?;
        let list: Value = serde_json::from_str(&json)?;
        Ok(list["items"].as_array().cloned().unwrap_or_default())
    }

    /// Names of the pods that are Running, Ready and not being deleted.
    fn ready_pods(&self) -> Result<Vec<String>> {
        Ok(self
            .pods()?
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null() && is_ready(p))
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
            .collect())
    }

    async fn until_ready_pods(&self, n: usize, within: Duration) -> Result<Vec<String>> {
        let started = Instant::now();
        loop {
            let ready = self.ready_pods()?;
            if ready.len() == n {
                return Ok(ready);
            }
            if started.elapsed() > within {
                bail!(
                    "{} of {n} pods Ready after {within:?}: {}\nkubelet log tail:\n{}",
                    ready.len(),
                    self.describe_pods(),
                    self.node.log_tail("kubelet", 20)
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn describe_pods(&self) -> String {
        self.run(&["-n", NAMESPACE, "get", "pods", "-o", "wide"])
            .unwrap_or_else(|e| e.to_string())
    }

    /// What a failed step shows besides its own message: the pods' events
    /// and the ends of the node's logs (the node's directory is removed
    /// with it).
    fn diagnose(&self) -> String {
        let events = self
            .run(&["-n", NAMESPACE, "get", "events", "--sort-by=.lastTimestamp"])
            .unwrap_or_else(|e| e.to_string());
        let mut out = format!("events in {NAMESPACE}:\n{events}");
        for log in ["kubelet", "containerd", "kube-proxy"] {
            let tail = self.node.log_tail(log, 400);
            let errors: Vec<&str> = tail
                .lines()
                .filter(|l| {
                    l.starts_with('E') || l.contains("level=error") || l.contains("level=warn")
                })
                .collect();
            let errors = &errors[errors.len().saturating_sub(12)..];
            out.push_str(&format!(
                "\nlast errors in the {log} log:\n{}",
                errors.join("\n")
            ));
        }
        out
    }

    fn leader(&self) -> Result<String> {
        Ok(install::lease_holder(self.kubectl())?)
    }

    async fn until_leader(&self, not: Option<&str>) -> Result<String> {
        let started = Instant::now();
        loop {
            if let Ok(holder) = self.leader()
                && !holder.is_empty()
                && Some(holder.as_str()) != not
            {
                return Ok(holder);
            }
            if started.elapsed() > PATIENCE {
                bail!(
                    "no new leader within {PATIENCE:?}: {}",
                    self.describe_pods()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn condition(&self, name: &str) -> Result<Option<Value>> {
        let json = self.run(&["get", "metricpipeline", name, "-o", "json"])?;
        let p: Value = serde_json::from_str(&json)?;
        Ok(p["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == CONDITION))
            .cloned())
    }

    async fn until_condition(&self, name: &str, status: &str, reason: &str) -> Result<Value> {
        let started = Instant::now();
        loop {
            let c = self.condition(name)?;
            if let Some(c) = &c
                && c["status"] == status
                && c["reason"] == reason
            {
                return Ok(c.clone());
            }
            if started.elapsed() > PATIENCE {
                bail!(
                    "{name} never became {status}/{reason}; last {c:?}\npods: {}",
                    self.describe_pods()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running"
        && pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

async fn start() -> Result<World> {
    let started = Instant::now();
    let mut report = Vec::new();
    let mut node = Node::start(|step| {
        println!("node: {step}");
    })
    .await?;
    report.push(format!(
        "node up (builds cached or not, image not yet) in {:.1}s",
        started.elapsed().as_secs_f64()
    ));
    let t = Instant::now();
    node.import_project_image()?;
    report.push(format!(
        "project image built and imported in {:.1}s",
        t.elapsed().as_secs_f64()
    ));
    let collector = Collector::start(&["backend", "audit"]).await?;
    let prometheus = Prometheus::start(&Setup::fast(collector.addr())).await?;
    node.expose(PROMETHEUS_PORT, prometheus.addr())?;
    Ok(World {
        node,
        collector,
        _prometheus: prometheus,
        report,
    })
}

/// deploy/ as a user applies it, tuned for the test Prometheus at the node's
/// address: both replicas become Running and Ready, and the leader writes
/// the first condition.
async fn deploy_runs_two_ready_replicas(w: &mut World) -> Result<()> {
    let url = format!("http://{NODE_IP}:{PROMETHEUS_PORT}");
    let tuning = [
        ("prometheusUrl", url.as_str()),
        ("minInterval", "200ms"),
        ("maxInterval", "1s"),
        ("backoffFactor", "2"),
        ("errorMaxInterval", "2s"),
        ("staleAfter", "5s"),
        ("requestTimeout", "1s"),
        ("connectTimeout", "500ms"),
    ];
    let applied = Instant::now();
    install::install(w.kubectl(), &tuning)?;
    w.run(&[
        "apply",
        "-k",
        &repo_root().join("config/samples").display().to_string(),
    ])?;
    w.until_condition("backend", "True", "FlowHealthy").await?;
    let first = applied.elapsed();
    w.until_ready_pods(2, PATIENCE).await?;
    let ready = applied.elapsed();
    w.report.push(format!(
        "apply -k deploy/ to the first condition: {:.1}s; to both replicas Ready: {:.1}s",
        first.as_secs_f64(),
        ready.as_secs_f64()
    ));
    let images: Vec<String> = w
        .pods()?
        .iter()
        .flat_map(|p| {
            p["status"]["containerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|c| c["image"].as_str().map(str::to_owned))
        .collect();
    ensure!(
        images.iter().all(|i| *i == node::project_image()) && images.len() == 2,
        "the pods run {images:?}"
    );
    Ok(())
}

/// The leader, in its pod, turns an alert raised in the real Prometheus
/// into the manager's reason, and back.
async fn leader_writes_the_condition(w: &mut World) -> Result<()> {
    let leader = w.until_leader(None).await?;
    ensure!(
        w.ready_pods()?.contains(&leader),
        "the lease holder {leader} is one of the Ready pods"
    );
    let t = Instant::now();
    w.collector
        .set_flow(Component::Gateway, "backend", Flow::AllDropped);
    w.until_condition("backend", "False", "GatewayAllTelemetryDataDropped")
        .await?;
    w.collector
        .set_flow(Component::Gateway, "backend", Flow::Healthy);
    w.until_condition("backend", "True", "FlowHealthy").await?;
    w.report.push(format!(
        "an alert raised and resolved, both written by the leader {leader}, in {:.1}s",
        t.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// The container process as the kernel sees it: UID 65532, no capabilities,
/// no-new-privileges, a seccomp filter and a read-only root.
async fn container_is_locked_down(w: &mut World) -> Result<()> {
    for pod in w.pods()? {
        let name = pod["metadata"]["name"].as_str().unwrap_or("?").to_owned();
        let id = pod["status"]["containerStatuses"][0]["containerID"]
            .as_str()
            .and_then(|c| c.strip_prefix("containerd://"))
            .with_context(|| format!("{name} has no running container"))?
            .to_owned();
        let pid =
            container_pid(&id).with_context(|| format!("no process of {name}'s container {id}"))?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.split_whitespace().collect::<Vec<_>>())
                .unwrap_or_default()
        };
        ensure!(
            field("Uid:").iter().all(|u| *u == "65532")
                && field("Gid:").iter().all(|g| *g == "65532"),
            "{name} runs as uid {:?} gid {:?}",
            field("Uid:"),
            field("Gid:")
        );
        for caps in ["CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"] {
            ensure!(
                field(caps) == ["0000000000000000"],
                "{name} has {caps} {:?}",
                field(caps)
            );
        }
        ensure!(
            field("NoNewPrivs:") == ["1"],
            "{name}: no-new-privileges is off"
        );
        ensure!(field("Seccomp:") == ["2"], "{name}: no seccomp filter");
        let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))?;
        let root = mounts
            .lines()
            .find(|l| l.split_whitespace().nth(4) == Some("/"))
            .with_context(|| format!("{name} has no root mount"))?;
        let options = root.split_whitespace().nth(5).unwrap_or_default();
        ensure!(
            options.split(',').any(|o| o == "ro"),
            "{name}'s root is mounted {options}"
        );
    }
    Ok(())
}

/// The host PID of a container's process, found by the container ID in its
/// cgroup path (kubelet's cgroupfs layout ends in the ID).
fn container_pid(id: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).ok()?;
        (cgroups.contains(id) && cmdline.starts_with("/usr/local/bin/alert-poller")).then_some(pid)
    })
}

/// `kubectl logs` reaches kubelet and shows the controller's own lines.
async fn logs_reach_kubectl(w: &mut World) -> Result<()> {
    let leader = w.until_leader(None).await?;
    let logs = w.run(&["-n", NAMESPACE, "logs", &leader])?;
    ensure!(
        logs.lines().any(|l| l.contains("became leader")),
        "the leader's log has no 'became leader' line:\n{logs}"
    );
    Ok(())
}

/// Cut the pods off the API server: both turn NotReady (the standby cannot
/// reach it; the leader loses its lease), and Ready again once it is back.
async fn readiness_follows_the_api_server(w: &mut World) -> Result<()> {
    let port = w.node.api_server().port().to_string();
    let rule = [
        "INPUT",
        "-s",
        "10.244.0.0/24",
        "-p",
        "tcp",
        "--dport",
        &port,
        "-j",
        "REJECT",
        "--reject-with",
        "tcp-reset",
    ];
    let iptables = |action: &str| -> Result<()> {
        let out = w
            .node
            .command(Path::new("iptables"))
            .arg(action)
            .args(rule)
            .output()?;
        ensure!(
            out.status.success(),
            "iptables {action}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    };
    iptables("-I")?;
    let cut = Instant::now();
    let result = async {
        loop {
            if w.ready_pods()?.is_empty() {
                break;
            }
            if cut.elapsed() > PATIENCE {
                bail!(
                    "pods stayed Ready without the API server: {}",
                    w.describe_pods()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(cut.elapsed())
    }
    .await;
    iptables("-D")?;
    let unready = result?;
    let back = Instant::now();
    w.until_ready_pods(2, PATIENCE).await?;
    w.until_condition("backend", "True", "FlowHealthy").await?;
    w.report.push(format!(
        "API server cut off: both pods NotReady after {:.1}s; Ready again {:.1}s after it came back",
        unready.as_secs_f64(),
        back.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Delete the leader's pod while an alert changes: the other replica takes
/// the lease and writes the change, and the Deployment replaces the pod.
async fn failover_keeps_the_transition(w: &mut World) -> Result<()> {
    let leader = w.until_leader(None).await?;
    w.run(&["-n", NAMESPACE, "delete", "pod", &leader, "--wait=false"])?;
    let deleted = Instant::now();
    w.collector
        .set_flow(Component::Gateway, "audit", Flow::AllDropped);
    let next = w.until_leader(Some(&leader)).await?;
    let took_over = deleted.elapsed();
    w.until_condition("audit", "False", "GatewayAllTelemetryDataDropped")
        .await?;
    let written = deleted.elapsed();
    w.until_ready_pods(2, PATIENCE).await?;
    let replaced = deleted.elapsed();
    ensure!(
        !w.ready_pods()?.contains(&leader),
        "the deleted pod {leader} is gone"
    );
    w.collector
        .set_flow(Component::Gateway, "audit", Flow::Healthy);
    w.until_condition("audit", "True", "FlowHealthy").await?;
    w.report.push(format!(
        "failover: leader {leader} deleted; {next} held the lease after {:.1}s, wrote the alert's change after {:.1}s; 2 pods Ready again after {:.1}s",
        took_over.as_secs_f64(),
        written.as_secs_f64(),
        replaced.as_secs_f64()
    ));
    Ok(())
}

/// kubelet's view of the pods' CPU and memory (the Summary API).
async fn pods_resource_use(w: &mut World) -> Result<()> {
    let lines = w.node.pod_usage(NAMESPACE)?;
    ensure!(
        lines.len() == 2,
        "usage of {} containers: {lines:?}",
        lines.len()
    );
    for line in lines {
        w.report.push(format!("resources: {line}"));
    }
    Ok(())
}

/// With ALERT_POLLER_NODE_HOLD=SECONDS, a failed run keeps the node up that
/// long before tearing it down, for a look inside (`nsenter --target PID
/// --net --mount --pid`, the kubeconfig printed here).
fn hold_for_inspection(w: &World) {
    let Some(seconds) = std::env::var("ALERT_POLLER_NODE_HOLD")
        .ok()
        .and_then(|s| s.parse().ok())
    else {
        return;
    };
    println!(
        "node: holding the node for {seconds}s: directory {}, host kubeconfig {}, init PID {}",
        w.node.dir().display(),
        w.node.dir().join("host.kubeconfig").display(),
        w.node.init_pid()
    );
    std::thread::sleep(Duration::from_secs(seconds));
}

type Step = for<'a> fn(&'a mut World) -> Pin<Box<dyn Future<Output = Result<()>> + 'a>>;

macro_rules! steps {
    ($($name:ident),+ $(,)?) => {
        [$((stringify!($name), (|w| Box::pin($name(w))) as Step)),+]
    };
}

fn main() -> ExitCode {
    if let Some(why) = node::missing() {
        println!("node: SKIPPED, this machine cannot run a node: {why}");
        return if std::env::var("ALERT_POLLER_REQUIRE_NODE").is_ok_and(|v| v == "1") {
            println!("node: ALERT_POLLER_REQUIRE_NODE=1, so a skip fails");
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        };
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio starts");
    runtime.block_on(async {
        let started = Instant::now();
        let kernel_before = node::kernel_settings();
        let mut world = match start().await {
            Ok(w) => w,
            Err(e) => {
                println!("node: cannot start the cluster: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        let steps = steps![
            deploy_runs_two_ready_replicas,
            leader_writes_the_condition,
            container_is_locked_down,
            logs_reach_kubectl,
            readiness_follows_the_api_server,
            failover_keeps_the_transition,
            pods_resource_use,
        ];
        let mut failed = 0;
        for (name, step) in steps {
            let started = Instant::now();
            match step(&mut world).await {
                Ok(()) => println!(
                    "test node::{name} ... ok ({:.1}s)",
                    started.elapsed().as_secs_f64()
                ),
                Err(e) => {
                    failed += 1;
                    println!("test node::{name} ... FAILED\n{e:#}\n{}", world.diagnose());
                    hold_for_inspection(&world);
                    // The later steps build on this one.
                    break;
                }
            }
        }
        world.report.push(format!(
            "the whole harness, start-up included: {:.1}s",
            started.elapsed().as_secs_f64()
        ));
        println!("\nnode: what it measured");
        for line in &world.report {
            println!("  {line}");
        }
        let init_pid = world.node.init_pid();
        let stopping = Instant::now();
        drop(world);
        // Whatever the steps did, the host must be as it was.
        let left = node::leftovers(init_pid, &kernel_before);
        if left.is_empty() {
            println!(
                "test node::teardown_leaves_nothing ... ok ({:.1}s)",
                stopping.elapsed().as_secs_f64()
            );
        } else {
            failed += 1;
            println!(
                "test node::teardown_leaves_nothing ... FAILED\n{}",
                left.join("\n")
            );
        }
        if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    })
}
