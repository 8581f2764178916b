//! The cluster the steps run in: the node, the collector stand-in, the
//! self-monitor stand-in and the Prometheus deploy/ must not reach, and
//! what the steps ask of them.

use std::time::{Duration, Instant};

use alert_poller_testbed::collector::{Collector, Component, Flow};
use alert_poller_testbed::controlplane::Kubectl;
use alert_poller_testbed::install::{self, NAMESPACE};
use alert_poller_testbed::node::{NODE_IP, Node};
use alert_poller_testbed::prometheus::Setup;
use alert_poller_testbed::{repo_root, rules};
use anyhow::{Result, bail};
use serde_json::{Value, json};

pub const CONDITION: &str = "TelemetryFlowHealthy";
/// How long a pod or condition may take to get where a step wants it.
pub const PATIENCE: Duration = Duration::from_secs(90);
/// Where pods find the collector stand-in: the node's address, at the port
/// the telemetry components serve their metrics on.
pub const COLLECTOR_PORT: u16 = 8888;
/// The self-monitor's namespace (tests/fixtures/kyma/).
pub const KYMA_SYSTEM: &str = "kyma-system";
/// A namespace with no policies, for a Prometheus deploy/ must not reach.
pub const ELSEWHERE: &str = "monitoring";
/// A namespace with no policies, for pods that scrape the self-monitor.
pub const SCRAPERS: &str = "scrapers";
/// The label telemetry-manager's policy admits scrapers by.
pub const SCRAPING_LABEL: (&str, &str) = ("networking.kyma-project.io/metrics-scraping", "allowed");

pub struct World {
    // Drop order: the node (and its pods) before the collector.
    pub node: Node,
    pub collector: Collector,
    /// The self-monitor stand-in as deploy/'s pods poll it:
    /// `http://<its Service's ClusterIP>:9090`.
    pub self_monitor: String,
    /// The Prometheus in namespace monitoring, by its Service's ClusterIP.
    pub elsewhere: String,
    pub report: Vec<String>,
}

impl World {
    pub fn kubectl(&self) -> &Kubectl {
        self.node.kubectl()
    }

    pub fn run(&self, args: &[&str]) -> Result<String> {
        Ok(self.kubectl().run(args)?)
    }

    /// deploy/'s pods (the Deployment's: a probe pod of the policy steps
    /// carries the app label too).
    pub fn pods(&self) -> Result<Vec<Value>> {
        self.pods_in(NAMESPACE)
    }

    /// The controller's Deployment's pods in `namespace`.
    pub fn pods_in(&self, namespace: &str) -> Result<Vec<Value>> {
        let json = self.run(&[
            "-n",
            namespace,
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
    pub fn ready_pods(&self) -> Result<Vec<String>> {
        Ok(self
            .pods()?
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null() && is_ready(p))
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
            .collect())
    }

    pub async fn until_ready_pods(&self, n: usize, within: Duration) -> Result<Vec<String>> {
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

    pub fn describe_pods(&self) -> String {
        self.run(&["-n", NAMESPACE, "get", "pods", "-o", "wide"])
            .unwrap_or_else(|e| e.to_string())
    }

    /// What a failed step shows besides its own message: the pods' events
    /// and the ends of the node's logs (the node's directory is removed
    /// with it).
    pub fn diagnose(&self) -> String {
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

    pub fn leader(&self) -> Result<String> {
        Ok(install::lease_holder(self.kubectl())?)
    }

    pub async fn until_leader(&self, not: Option<&str>) -> Result<String> {
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

    pub fn condition(&self, name: &str) -> Result<Option<Value>> {
        let json = self.run(&["get", "metricpipeline", name, "-o", "json"])?;
        let p: Value = serde_json::from_str(&json)?;
        Ok(p["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == CONDITION))
            .cloned())
    }

    /// One alert raised and resolved: `backend`'s gateway flow turned
    /// `flow` until its condition is False with `reason`, then mended until
    /// it is True again.
    pub async fn break_and_mend_backend(&self, flow: Flow, reason: &str) -> Result<()> {
        self.collector.set_flow(Component::Gateway, "backend", flow);
        self.until_condition("backend", "False", reason).await?;
        self.collector
            .set_flow(Component::Gateway, "backend", Flow::Healthy);
        self.until_condition("backend", "True", "FlowHealthy")
            .await?;
        Ok(())
    }

    pub async fn until_condition(&self, name: &str, status: &str, reason: &str) -> Result<Value> {
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

pub fn is_ready(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running"
        && pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

pub async fn start() -> Result<World> {
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
pub fn start_prometheus_pods(kubectl: &Kubectl) -> Result<(String, String)> {
    // The scrapers' too, now: its default ServiceAccount, which pods need,
    // is there by the time the policy steps run.
    for namespace in [KYMA_SYSTEM, ELSEWHERE, SCRAPERS] {
        kubectl.run(&["create", "namespace", namespace])?;
    }
    let deployment = start_self_monitor(kubectl)?;
    start_prometheus_elsewhere(kubectl, &deployment)?;
    let self_monitor = service_url(kubectl, KYMA_SYSTEM, "telemetry-self-monitor")?;
    let elsewhere = service_url(kubectl, ELSEWHERE, "prometheus")?;
    Ok((self_monitor, elsewhere))
}

/// The self-monitor stand-in's configuration, fixtures and the test's own
/// policy, applied; returns its Deployment, which the Prometheus elsewhere
/// copies.
fn start_self_monitor(kubectl: &Kubectl) -> Result<Value> {
    let fixtures = repo_root().join("tests/fixtures/kyma");
    let collector = std::net::SocketAddr::from((NODE_IP, COLLECTOR_PORT));
    let setup = Setup::fast(collector);
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    let config = format!(
        "global:\n  scrape_interval: {}\n  evaluation_interval: {}\nrule_files: [rules.yaml]\nscrape_configs:\n{}",
        ms(setup.scrape_interval),
        ms(setup.evaluation_interval),
        rules::collector_jobs(collector)
    );
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
    apply(kubectl, &self_monitor_scrapes_collector())?;
    let pod_yaml = std::fs::read_to_string(fixtures.join("self-monitor-pod.yaml"))?;
    let deployment: Value = serde_norway::from_str(&pod_yaml)?;
    apply(kubectl, &deployment)?;
    Ok(deployment)
}

/// The manager's egress policy lets its self-monitor scrape pods of
/// kyma-system only. Our collector stand-in is no pod: it is this test
/// process, at the node's address. So the test, not the fixture, opens
/// exactly that address and port to the self-monitor.
fn self_monitor_scrapes_collector() -> Value {
    json!({
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
    })
}

/// The same Prometheus in namespace monitoring, with nothing to evaluate,
/// and its Service.
fn start_prometheus_elsewhere(kubectl: &Kubectl, deployment: &Value) -> Result<()> {
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
    )
}

fn config_map(namespace: &str, name: &str, data: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    })
}

/// A Prometheus's URL by its Service's ClusterIP (no cluster DNS here),
/// once its Deployment is Available.
fn service_url(kubectl: &Kubectl, namespace: &str, name: &str) -> Result<String> {
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
    Ok(format!("http://{}:9090", ip.trim()))
}

/// `kubectl apply` of one object.
pub fn apply(kubectl: &Kubectl, object: &Value) -> Result<()> {
    kubectl.run_with_input(&["apply", "-f", "-"], Some(&object.to_string()))?;
    Ok(())
}
