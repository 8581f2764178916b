//! `kubectl apply -k deploy/` on a real one-node cluster: kubelet and
//! containerd run the project's image, so the image, the pod's security
//! context, the in-cluster config, the probes, `kubectl logs` and pod-level
//! failover are exercised together (testbed/src/node/ builds the node).
//!
//! NetworkPolicies are enforced (kube-router's firewall, tests/kube-router/),
//! and deploy/ polls a stand-in of telemetry-manager's self-monitor: a real
//! Prometheus (Debian's) in a pod in kyma-system with the manager's labels,
//! its Service and its two policies (tests/fixtures/kyma/), reached by
//! ClusterIP (there is no cluster DNS here). The collector stand-in runs on
//! the host's loopback, as in the other end-to-end suites; the self-monitor
//! scrapes it at the node's address, forwarded by this process. The last
//! steps show both sides' policies at work, and that they admit nothing
//! wider. Needs root, Debian's containerd, runc, containernetworking-plugins
//! and ipset; without them it says why in one line and skips, unless
//! ALERT_POLLER_REQUIRE_NODE=1 (as in CI) makes that a failure.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use alert_poller_testbed::collector::{Collector, Component, Flow};
use alert_poller_testbed::controlplane::Kubectl;
use alert_poller_testbed::install::{self, NAMESPACE};
use alert_poller_testbed::node::{self, NODE_IP, Node};
use alert_poller_testbed::prometheus::Setup;
use alert_poller_testbed::{exposition, repo_root, rules};
use anyhow::{Context as _, Result, bail, ensure};
use serde_json::{Value, json};

const CONDITION: &str = "TelemetryFlowHealthy";
/// How long a pod or condition may take to get where a step wants it.
const PATIENCE: Duration = Duration::from_secs(90);
/// Where pods find the collector stand-in: the node's address, at the port
/// the telemetry components serve their metrics on.
const COLLECTOR_PORT: u16 = 8888;
/// The self-monitor's namespace (tests/fixtures/kyma/).
const KYMA_SYSTEM: &str = "kyma-system";
/// A namespace with no policies, for a Prometheus deploy/ must not reach.
const ELSEWHERE: &str = "monitoring";
/// A namespace with no policies, for pods that scrape the self-monitor.
const SCRAPERS: &str = "scrapers";
/// The label telemetry-manager's policy admits scrapers by.
const SCRAPING_LABEL: (&str, &str) = ("networking.kyma-project.io/metrics-scraping", "allowed");

struct World {
    // Drop order: the node (and its pods) before the collector.
    node: Node,
    collector: Collector,
    /// The self-monitor stand-in as deploy/'s pods poll it:
    /// `http://<its Service's ClusterIP>:9090`.
    self_monitor: String,
    /// The Prometheus in namespace monitoring, by its Service's ClusterIP.
    elsewhere: String,
    report: Vec<String>,
}

impl World {
    fn kubectl(&self) -> &Kubectl {
        self.node.kubectl()
    }

    fn run(&self, args: &[&str]) -> Result<String> {
        Ok(self.kubectl().run(args)?)
    }

    /// deploy/'s pods (the Deployment's: a probe pod of the policy steps
    /// carries the app label too).
    fn pods(&self) -> Result<Vec<Value>> {
        let json = self.run(&[
            "-n",
            NAMESPACE,
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/name=alert-poller,pod-template-hash",
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
        for log in ["kubelet", "containerd", "kube-proxy", "kube-router"] {
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
    node.enforce_network_policies().await?;
    report.push(format!(
        "kube-router (firewall only) enforcing NetworkPolicies {:.1}s later",
        t.elapsed().as_secs_f64()
    ));
    let t = Instant::now();
    tokio::task::block_in_place(|| -> Result<()> {
        node.import_project_image()?;
        Ok(node.import_test_prometheus_image()?)
    })?;
    report.push(format!(
        "project image and Debian's Prometheus image built and imported in {:.1}s",
        t.elapsed().as_secs_f64()
    ));
    let collector = Collector::start(&["backend", "audit"]).await?;
    node.expose(COLLECTOR_PORT, collector.addr())?;
    let t = Instant::now();
    let (self_monitor, elsewhere) =
        tokio::task::block_in_place(|| start_prometheus_pods(node.kubectl()))?;
    report.push(format!(
        "self-monitor stand-in and the Prometheus in {ELSEWHERE} Ready in {:.1}s",
        t.elapsed().as_secs_f64()
    ));
    Ok(World {
        node,
        collector,
        self_monitor,
        elsewhere,
        report,
    })
}

/// The self-monitor stand-in in kyma-system: the manager's Service and
/// policies as tests/fixtures/kyma/self-monitor.yaml has them, the pod of
/// self-monitor-pod.yaml, its configuration (the collector stand-in's scrape
/// jobs and the shipped rules, sped up, as `Setup::fast` gives the host
/// Prometheus of the other suites) and one policy of the test's own. Beside
/// it, the same Prometheus in namespace monitoring, under no policy. Returns
/// both URLs, by ClusterIP, once both pods are Ready.
fn start_prometheus_pods(kubectl: &Kubectl) -> Result<(String, String)> {
    let fixtures = repo_root().join("tests/fixtures/kyma");
    // The scrapers' too, now: its default ServiceAccount, which pods need,
    // is there by the time the policy steps run.
    for namespace in [KYMA_SYSTEM, ELSEWHERE, SCRAPERS] {
        kubectl.run(&["create", "namespace", namespace])?;
    }
    let collector = std::net::SocketAddr::from((NODE_IP, COLLECTOR_PORT));
    let setup = Setup::fast(collector);
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    let config = format!(
        "global:\n  scrape_interval: {}\n  evaluation_interval: {}\nrule_files: [rules.yaml]\nscrape_configs:\n{}",
        ms(setup.scrape_interval),
        ms(setup.evaluation_interval),
        rules::collector_jobs(collector)
    );
    let config_map = |namespace: &str, name: &str, data: Value| {
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace},
            "data": data,
        })
    };
    apply(
        kubectl,
        &config_map(
            KYMA_SYSTEM,
            "telemetry-self-monitor",
            json!({"prometheus.yml": config, "rules.yaml": setup.rules}),
        ),
    )?;
    kubectl.run(&[
        "apply",
        "-f",
        &fixtures.join("self-monitor.yaml").display().to_string(),
    ])?;
    // The manager's egress policy lets its self-monitor scrape pods of
    // kyma-system only. Our collector stand-in is no pod: it is this test
    // process, at the node's address. So the test, not the fixture, opens
    // exactly that address and port to the self-monitor.
    apply(
        kubectl,
        &json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "alert-poller-test--self-monitor-scrapes-collector", "namespace": KYMA_SYSTEM},
            "spec": {
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "telemetry-self-monitor"}},
                "policyTypes": ["Egress"],
                "egress": [{
                    "to": [{"ipBlock": {"cidr": format!("{NODE_IP}/32")}}],
                    "ports": [{"port": COLLECTOR_PORT, "protocol": "TCP"}],
                }],
            },
        }),
    )?;
    let pod_yaml = std::fs::read_to_string(fixtures.join("self-monitor-pod.yaml"))?;
    let deployment: Value = serde_norway::from_str(&pod_yaml)?;
    apply(kubectl, &deployment)?;

    // The same Prometheus elsewhere, with nothing to evaluate.
    apply(
        kubectl,
        &config_map(
            ELSEWHERE,
            "prometheus",
            json!({"prometheus.yml": "global:\n  scrape_interval: 15s\n"}),
        ),
    )?;
    let mut other = deployment.clone();
    let labels = json!({"app.kubernetes.io/name": "prometheus"});
    other["metadata"] = json!({"name": "prometheus", "namespace": ELSEWHERE});
    other["spec"]["selector"]["matchLabels"] = labels.clone();
    other["spec"]["template"]["metadata"]["labels"] = labels.clone();
    other["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] = "prometheus".into();
    apply(kubectl, &other)?;
    apply(
        kubectl,
        &json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "prometheus", "namespace": ELSEWHERE},
            "spec": {"selector": labels, "ports": [{"name": "http", "port": 9090, "targetPort": 9090}]},
        }),
    )?;

    let mut urls = Vec::new();
    for (namespace, name) in [
        (KYMA_SYSTEM, "telemetry-self-monitor"),
        (ELSEWHERE, "prometheus"),
    ] {
        kubectl.wait_for_condition(
            Some(namespace),
            &format!("deployment/{name}"),
            "Available",
            Duration::from_secs(90),
        )?;
        let ip = kubectl.run(&[
            "-n",
            namespace,
            "get",
            "service",
            name,
            "-o",
            "jsonpath={.spec.clusterIP}",
        ])?;
        urls.push(format!("http://{}:9090", ip.trim()));
    }
    let elsewhere = urls.pop().expect("two URLs");
    let self_monitor = urls.pop().expect("two URLs");
    Ok((self_monitor, elsewhere))
}

/// `kubectl apply` of one object.
fn apply(kubectl: &Kubectl, object: &Value) -> Result<()> {
    kubectl.run_with_input(&["apply", "-f", "-"], Some(&object.to_string()))?;
    Ok(())
}

/// deploy/ as a user applies it, tuned for the self-monitor stand-in by its
/// ClusterIP (no cluster DNS here) and for speed: both replicas become
/// Running and Ready, and the leader writes the first condition.
async fn deploy_runs_two_ready_replicas(w: &mut World) -> Result<()> {
    let url = w.self_monitor.clone();
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
/// Pods reach it at the node's port 6443 (see `enforce_network_policies`);
/// the rule goes first in INPUT, ahead of kube-router's chain, which would
/// accept what deploy/'s egress admits.
async fn readiness_follows_the_api_server(w: &mut World) -> Result<()> {
    let port = node::POD_API_PORT.to_string();
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

/// deploy/'s pods poll the self-monitor stand-in through deploy/'s egress
/// policy and the manager's ingress policy, both enforced: kube-router has
/// a firewall chain for each of them and a chain for each policy, an alert
/// raised in the stand-in Prometheus reaches the condition and goes away
/// again, and the leader's successful requests to it grow meanwhile.
async fn deploy_polls_the_self_monitor_through_both_policies(w: &mut World) -> Result<()> {
    let t = Instant::now();
    let leader = w.until_leader(None).await?;
    let rules = w.node.run_inside("iptables-save", &["-t", "filter"])?;
    for pod in w.ready_pods()? {
        ensure!(
            rules.contains(&format!("POD name:{pod} namespace: {NAMESPACE}")),
            "kube-router has no firewall chain for {pod}"
        );
    }
    let policy_chains = rules
        .lines()
        .filter(|l| l.starts_with(":KUBE-NWPLCY-") && !l.starts_with(":KUBE-NWPLCY-DEFAULT"))
        .count();
    // deploy/'s, the manager's two and the test's own.
    ensure!(
        policy_chains == 4,
        "kube-router has {policy_chains} policy chains, not 4:\n{rules}"
    );
    let successes = |w: &World| -> Result<f64> {
        let text = w.run(&[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/{NAMESPACE}/pods/{leader}:8080/proxy/metrics"),
        ])?;
        Ok(exposition::sum(
            &text,
            "alert_poller_source_requests_total",
            |labels| labels.contains(r#"result="success""#),
        ))
    };
    let before = successes(w)?;
    w.collector
        .set_flow(Component::Gateway, "backend", Flow::AllDropped);
    w.until_condition("backend", "False", "GatewayAllTelemetryDataDropped")
        .await?;
    w.collector
        .set_flow(Component::Gateway, "backend", Flow::Healthy);
    w.until_condition("backend", "True", "FlowHealthy").await?;
    let after = successes(w)?;
    ensure!(
        after > before,
        "the leader's successful requests did not grow ({before} -> {after})"
    );
    w.report.push(format!(
        "policies enforced: deploy/'s leader {leader} polled the self-monitor at {} through both sides' policies (kube-router: {policy_chains} policy chains); an alert raised and resolved there reached the condition in {:.1}s; its successful requests {before} -> {after}",
        w.self_monitor,
        t.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// The manager's ingress policy admits a scraper in any namespace only with
/// the scraping label. Two pods alike but for that label, both synced by
/// kube-router before anything is asked: the labelled one goes first and
/// gets through (the control: the policies are in place); the unlabelled
/// one reaches the Prometheus elsewhere, which no policy protects, and is
/// refused by the self-monitor.
async fn self_monitor_admits_only_labelled_scrapers(w: &mut World) -> Result<()> {
    let t = Instant::now();
    let labelled = ProbePod::create(w, SCRAPERS, "scraper", &[SCRAPING_LABEL])?;
    let unlabelled = ProbePod::create(w, SCRAPERS, "scraper-unlabelled", &[])?;
    labelled.until_synced(w).await?;
    unlabelled.until_synced(w).await?;
    let synced = t.elapsed();
    let t = Instant::now();
    let url = w.self_monitor.clone();
    labelled
        .check(w, &url)
        .await?
        .map_err(|e| anyhow::anyhow!("the labelled scraper did not reach the self-monitor: {e}"))?;
    let admitted = t.elapsed();
    let t = Instant::now();
    let elsewhere = w.elsewhere.clone();
    unlabelled.check(w, &elsewhere).await?.map_err(|e| {
        anyhow::anyhow!("the unlabelled scraper did not reach the Prometheus in {ELSEWHERE}: {e}")
    })?;
    let refusal = match unlabelled.check(w, &url).await? {
        Err(e) => e,
        Ok(out) => bail!("the self-monitor admitted a pod without the scraping label:\n{out}"),
    };
    ensure!(
        refusal.contains("Connection refused"),
        "the unlabelled scraper failed otherwise than refused (kube-router rejects): {refusal}"
    );
    w.report.push(format!(
        "self-monitor's ingress: 2 pods in {SCRAPERS}, alike but for the scraping label, synced by kube-router in {:.1}s; the labelled one got through in {:.1}s; the unlabelled one reached the Prometheus in {ELSEWHERE}, then the self-monitor refused it ({:.1}s): {}",
        synced.as_secs_f64(),
        admitted.as_secs_f64(),
        t.elapsed().as_secs_f64(),
        refusal.trim()
    ));
    labelled.delete(w)?;
    unlabelled.delete(w)?;
    Ok(())
}

/// deploy/'s egress policy admits Prometheus only as the self-monitor: a
/// pod it selects (deploy/'s pod labels, in its namespace), synced by
/// kube-router, reaches the self-monitor, and is refused by the Prometheus
/// elsewhere that the unlabelled scraper of the step before reached.
async fn deploy_egress_refuses_a_prometheus_elsewhere(w: &mut World) -> Result<()> {
    let t = Instant::now();
    let labels = [("app.kubernetes.io/name", "alert-poller"), SCRAPING_LABEL];
    let probe = ProbePod::create(w, NAMESPACE, "egress-probe", &labels)?;
    probe.until_synced(w).await?;
    let synced = t.elapsed();
    let t = Instant::now();
    let (url, elsewhere) = (w.self_monitor.clone(), w.elsewhere.clone());
    probe.check(w, &url).await?.map_err(|e| {
        anyhow::anyhow!("a pod deploy/'s policy selects did not reach the self-monitor: {e}")
    })?;
    let admitted = t.elapsed();
    let t = Instant::now();
    let refusal = match probe.check(w, &elsewhere).await? {
        Err(e) => e,
        Ok(out) => bail!("deploy/'s egress let a pod reach the Prometheus in {ELSEWHERE}:\n{out}"),
    };
    ensure!(
        refusal.contains("Connection refused"),
        "the probe failed otherwise than refused (kube-router rejects): {refusal}"
    );
    w.report.push(format!(
        "deploy/'s egress: a pod with deploy/'s labels in {NAMESPACE}, synced in {:.1}s, reached the self-monitor in {:.1}s; the Prometheus in {ELSEWHERE} refused it ({:.1}s): {}",
        synced.as_secs_f64(),
        admitted.as_secs_f64(),
        t.elapsed().as_secs_f64(),
        refusal.trim()
    ));
    probe.delete(w)?;
    Ok(())
}

/// A pod that only holds a network namespace (the pause image, restricted
/// securityContext, no token), in which `alert-poller check` runs, one
/// check at a time, as an ephemeral container (`kubectl debug`): every check
/// leaves from the same pod address, which kube-router has synced first.
struct ProbePod {
    namespace: &'static str,
    name: String,
    checks: std::cell::Cell<u32>,
}

impl ProbePod {
    fn create(
        w: &World,
        namespace: &'static str,
        name: &str,
        labels: &[(&str, &str)],
    ) -> Result<ProbePod> {
        let labels: serde_json::Map<String, Value> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect();
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {
                "automountServiceAccountToken": false,
                "terminationGracePeriodSeconds": 0,
                "securityContext": {
                    "runAsNonRoot": true,
                    "runAsUser": 65532,
                    "runAsGroup": 65532,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [{
                    "name": "pause",
                    "image": node::PAUSE_IMAGE,
                    "imagePullPolicy": "Never",
                    "securityContext": {
                        "allowPrivilegeEscalation": false,
                        "readOnlyRootFilesystem": true,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }],
            },
        });
        let started = Instant::now();
        // A new namespace's default ServiceAccount may not exist yet.
        while let Err(e) = w
            .kubectl()
            .run_with_input(&["create", "-f", "-"], Some(&pod.to_string()))
        {
            if started.elapsed() > PATIENCE {
                bail!("cannot create pod {namespace}/{name}: {e}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Ok(ProbePod {
            namespace,
            name: name.to_owned(),
            checks: std::cell::Cell::new(0),
        })
    }

    /// Waits until the pod runs and kube-router has written its firewall
    /// chain: the sync that did so also put its address into the policies'
    /// address sets, so from then on a refusal is a policy's.
    async fn until_synced(&self, w: &World) -> Result<()> {
        let started = Instant::now();
        let comment = format!("POD name:{} namespace: {}", self.name, self.namespace);
        loop {
            let rules = w.node.run_inside("iptables-save", &["-t", "filter"])?;
            if rules.contains(&comment) {
                return Ok(());
            }
            if started.elapsed() > PATIENCE {
                bail!(
                    "kube-router wrote no chain for pod {}/{} within {PATIENCE:?}",
                    self.namespace,
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `alert-poller check` against `url` in an ephemeral container: its
    /// output, as `Ok` when it exits 0 and as `Err` otherwise.
    async fn check(&self, w: &World, url: &str) -> Result<Result<String, String>> {
        self.checks.set(self.checks.get() + 1);
        let container = format!("check-{}", self.checks.get());
        w.run(&[
            "-n",
            self.namespace,
            "debug",
            &self.name,
            &format!("--image={}", node::project_image()),
            "--image-pull-policy=Never",
            "--profile=restricted",
            &format!("--container={container}"),
            "--arguments-only",
            "--",
            "check",
            "--prometheus-url",
            url,
            "--pipeline",
            "backend",
            "--request-timeout",
            "2s",
            "--connect-timeout",
            "1s",
        ])?;
        let started = Instant::now();
        let exit = loop {
            let json = w.run(&["-n", self.namespace, "get", "pod", &self.name, "-o", "json"])?;
            let pod: Value = serde_json::from_str(&json)?;
            let code = pod["status"]["ephemeralContainerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["name"] == container.as_str())
                .and_then(|c| c["state"]["terminated"]["exitCode"].as_i64());
            if let Some(code) = code {
                break code;
            }
            if started.elapsed() > PATIENCE {
                bail!(
                    "{container} in {}/{} did not finish within {PATIENCE:?}: {}",
                    self.namespace,
                    self.name,
                    pod["status"]
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let output = w.run(&["-n", self.namespace, "logs", &self.name, "-c", &container])?;
        Ok(if exit == 0 { Ok(output) } else { Err(output) })
    }

    fn delete(&self, w: &World) -> Result<()> {
        w.run(&[
            "-n",
            self.namespace,
            "delete",
            "pod",
            &self.name,
            "--wait=true",
        ])?;
        Ok(())
    }
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

/// deploy/kyma-system/ beside the manager: deploy/ removed, the same
/// controller installed into kyma-system, whose labels (Pod Security
/// included) stay as they were; the bindings follow the namespace (else
/// every read is forbidden), and the leader polls the self-monitor through
/// both policies from there and writes the condition.
async fn kyma_system_install_works_beside_the_manager(w: &mut World) -> Result<()> {
    let t = Instant::now();
    let labels = |w: &World| -> Result<String> {
        w.run(&[
            "get",
            "namespace",
            KYMA_SYSTEM,
            "-o",
            "jsonpath={.metadata.labels}",
        ])
    };
    let before = labels(w)?;
    w.run(&["delete", "-k", &install::repo("deploy"), "--wait=true"])?;
    w.run(&["apply", "-k", &install::repo("deploy/kyma-system")])?;
    let data = json!({
        "prometheusUrl": w.self_monitor,
        "mode": "write",
        "staleAfter": "5s",
        "requestTimeout": "1s",
        "connectTimeout": "500ms",
        "errorMaxInterval": "2s",
    });
    install::patch_config_in(w.kubectl(), KYMA_SYSTEM, &data.to_string())?;
    ensure!(
        labels(w)? == before,
        "kyma-system's labels changed: {before} -> {}",
        labels(w)?
    );
    let pods = || -> Result<usize> {
        let json = w.run(&[
            "-n",
            KYMA_SYSTEM,
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/name=alert-poller,pod-template-hash",
            "-o",
            "json",
        ])?;
        let list: Value = serde_json::from_str(&json)?;
        Ok(list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| is_ready(p))
            .count())
    };
    while pods()? < 2 {
        ensure!(
            t.elapsed() < PATIENCE,
            "2 Ready pods in {KYMA_SYSTEM} not within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let ready = t.elapsed();
    w.collector
        .set_flow(Component::Gateway, "backend", Flow::SomeDropped);
    w.until_condition("backend", "False", "GatewaySomeTelemetryDataDropped")
        .await?;
    w.collector
        .set_flow(Component::Gateway, "backend", Flow::Healthy);
    w.until_condition("backend", "True", "FlowHealthy").await?;
    let holder = install::lease_holder_in(w.kubectl(), KYMA_SYSTEM)?;
    w.report.push(format!(
        "deploy/kyma-system/: 2 pods Ready in {KYMA_SYSTEM} {:.1}s after apply (its labels untouched); the leader {holder} wrote an alert's change and its resolve through both policies, {:.1}s in all",
        ready.as_secs_f64(),
        t.elapsed().as_secs_f64()
    ));
    Ok(())
}

fn main() -> ExitCode {
    if let Some(why) = node::missing().or_else(node::missing_enforcement) {
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
        let host_before = node::HostState::read();
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
            deploy_polls_the_self_monitor_through_both_policies,
            self_monitor_admits_only_labelled_scrapers,
            deploy_egress_refuses_a_prometheus_elsewhere,
            kyma_system_install_works_beside_the_manager,
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
        let left = node::leftovers(init_pid, &host_before);
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
