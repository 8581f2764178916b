//! The local demo: a real Prometheus, a real control plane, the controller,
//! and one pipeline of each kind going unhealthy and healthy again, printed
//! as it happens.
//!
//! Run it with `scripts/demo.sh`, which builds what it needs first. With
//! `--node` (`scripts/demo.sh --node`, as root) the cluster has a real node
//! and the controller runs as deploy/'s two pods, from the project's image.

use std::time::{Duration, Instant};

use alert_poller_testbed::collector::{Collector, Component, Flow, PipelineKind};
use alert_poller_testbed::controller::{ControllerProcess, sibling_binary};
use alert_poller_testbed::controlplane::{ControlPlane, Kubectl};
use alert_poller_testbed::install::{NAMESPACE, install, lease_holder, repo};
use alert_poller_testbed::node::{self, NODE_IP, Node};
use alert_poller_testbed::prometheus::{Prometheus, Setup};
use anyhow::{Context, Result, bail};

/// `text` indented under a [`say`] line.
fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("           {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn say(started: Instant, text: &str) {
    println!("[{:>6.1}s] {text}", started.elapsed().as_secs_f64());
}

/// Every pipeline of every kind with its flow health and reason: the
/// `Flow Healthy` column of `kubectl get` plus the reason.
const TABLE: &[&str] = &[
    "get",
    "metricpipelines,tracepipelines,logpipelines",
    "-o",
    "custom-columns=KIND:.kind,NAME:.metadata.name,FLOW HEALTHY:.status.conditions[?(@.type==\"TelemetryFlowHealthy\")].status,REASON:.status.conditions[?(@.type==\"TelemetryFlowHealthy\")].reason",
];

/// Prints the pipelines table whenever it differs from `last` (what was
/// printed before), until `done` says so.
async fn watch_table(
    kubectl: &Kubectl,
    started: Instant,
    last: &mut String,
    done: impl Fn(&str) -> bool,
) -> Result<()> {
    let limit = Instant::now() + Duration::from_secs(90);
    loop {
        let table = kubectl.run(TABLE)?;
        if table != *last {
            say(
                started,
                "kubectl get metricpipelines,tracepipelines,logpipelines",
            );
            for line in table.lines() {
                println!("           {line}");
            }
            *last = table.clone();
        }
        if done(&table) {
            return Ok(());
        }
        if Instant::now() > limit {
            bail!("the expected state did not come within 90 s");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The flow health and reason of one pipeline's row.
fn flow(table: &str, pipeline: &str) -> Option<(String, String)> {
    table.lines().find_map(|l| {
        let columns: Vec<&str> = l.split_whitespace().collect();
        match columns.as_slice() {
            [_, name, status, reason, ..] if *name == pipeline => {
                Some((status.to_string(), reason.to_string()))
            }
            _ => None,
        }
    })
}

/// Whether every pipeline's row says True.
fn all_healthy(table: &str) -> bool {
    let rows: Vec<&str> = table.lines().skip(1).collect();
    !rows.is_empty()
        && rows
            .iter()
            .all(|l| l.split_whitespace().nth(2) == Some("True"))
}

/// Where the controller runs: out of cluster with its ServiceAccount's
/// token, or as deploy/'s pods on a real node.
enum Cluster {
    Plane(ControlPlane, Option<ControllerProcess>),
    Node(Node),
}

impl Cluster {
    fn kubectl(&self) -> Kubectl {
        match self {
            Cluster::Plane(plane, _) => plane.kubectl(),
            Cluster::Node(node) => node.kubectl().clone(),
        }
    }

    /// What to show when a step fails: the controller's log.
    fn log(&self) -> String {
        match self {
            Cluster::Plane(_, Some(controller)) => controller.log(),
            Cluster::Plane(_, None) => String::new(),
            Cluster::Node(node) => node
                .kubectl()
                .run(&[
                    "-n",
                    NAMESPACE,
                    "logs",
                    "deployment/alert-poller",
                    "--tail=30",
                ])
                .unwrap_or_else(|e| e.to_string()),
        }
    }
}

async fn start_cluster(started: Instant, on_node: bool) -> Result<Cluster> {
    if !on_node {
        say(
            started,
            "starting the control plane (kube-apiserver + etcd; the first build takes a while)",
        );
        let plane = tokio::task::spawn_blocking(ControlPlane::start).await??;
        return Ok(Cluster::Plane(plane, None));
    }
    if let Some(why) = node::missing() {
        bail!("--node: this machine cannot run a node: {why}");
    }
    say(
        started,
        "starting a one-node cluster in namespaces of its own: API server, containerd, kubelet, kube-proxy, scheduler, controller-manager",
    );
    let node = Node::start(|step| say(started, &format!("  {step}"))).await?;
    say(
        started,
        "building the project's image and importing it into containerd",
    );
    let node =
        tokio::task::spawn_blocking(move || node.import_project_image().map(|()| node)).await??;
    Ok(Cluster::Node(node))
}

/// One fault the demo injects: which pipeline, where, and the reason
/// telemetry-manager would give for it.
struct Fault {
    pipeline: &'static str,
    kind: PipelineKind,
    component: Component,
    flow: Flow,
    story: &'static str,
    reason: &'static str,
}

/// One fault per kind, one after the other: each turns exactly its own
/// pipeline False with the reason telemetry-manager would give.
const FAULTS: [Fault; 3] = [
    Fault {
        pipeline: "backend",
        kind: PipelineKind::Metric,
        component: Component::Gateway,
        flow: Flow::AllDropped,
        story: "the metric gateway drops all data of MetricPipeline 'backend'",
        reason: "GatewayAllTelemetryDataDropped",
    },
    Fault {
        pipeline: "traces",
        kind: PipelineKind::Trace,
        component: Component::Gateway,
        flow: Flow::SomeDropped,
        story: "the trace gateway drops part of the spans of TracePipeline 'traces'",
        reason: "GatewaySomeTelemetryDataDropped",
    },
    Fault {
        pipeline: "legacy-logs",
        kind: PipelineKind::Log,
        component: Component::FluentBit,
        flow: Flow::BufferFull,
        story: "Fluent Bit's buffer for LogPipeline 'legacy-logs' fills up",
        reason: "AgentBufferFillingUp",
    },
];

/// Prometheus with the shipped rules over a collector stand-in, and the
/// URL the controller reaches it at (on a node: through the node's address).
async fn start_prometheus(
    started: Instant,
    cluster: &mut Cluster,
) -> Result<(Collector, Prometheus, String)> {
    say(
        started,
        "starting Prometheus with the shipped alert rules, sped up (3s windows, 1s evaluation)",
    );
    let collector = Collector::start(&["backend", "audit"]).await?;
    collector.add_pipeline_of(PipelineKind::Trace, "traces");
    collector.add_pipeline_of(PipelineKind::Log, "app-logs");
    collector.add_pipeline_of(PipelineKind::Log, "legacy-logs");
    let prometheus = Prometheus::start(&Setup::fast(collector.addr())).await?;
    say(started, &format!("Prometheus at {}", prometheus.url()));
    let url = match cluster {
        Cluster::Plane(..) => prometheus.url(),
        Cluster::Node(node) => {
            let inside = node.expose(9090, prometheus.addr())?;
            say(
                started,
                &format!("pods reach it at http://{inside}, the node's address ({NODE_IP})"),
            );
            format!("http://{inside}")
        }
    };
    Ok((collector, prometheus, url))
}

/// The controller: out of cluster with its ServiceAccount's token, or
/// deploy/'s two replicas on the node, waited for until Available.
fn start_controller(started: Instant, cluster: &mut Cluster, kubectl: &Kubectl) -> Result<()> {
    match cluster {
        Cluster::Plane(plane, controller) => {
            say(
                started,
                "starting alert-poller out of cluster with its ServiceAccount's token",
            );
            let kubeconfig = plane.dir().join("alert-poller.kubeconfig");
            kubectl.service_account_kubeconfig("alert-poller", "alert-poller", &kubeconfig)?;
            let log = plane.dir().join("alert-poller.log");
            let process =
                ControllerProcess::start(&sibling_binary()?, &kubeconfig, "alert-poller", &log)?;
            say(
                started,
                &format!("controller metrics at {}/metrics", process.base_url()),
            );
            *controller = Some(process);
        }
        Cluster::Node(_) => {
            say(started, "waiting for deploy/'s two replicas to be Ready");
            kubectl.wait_for_condition(
                Some(NAMESPACE),
                "deployment/alert-poller",
                "Available",
                Duration::from_secs(120),
            )?;
            say(
                started,
                &format!(
                    "kubectl -n {NAMESPACE} get pods -o wide\n{}",
                    indent(&kubectl.run(&["-n", NAMESPACE, "get", "pods", "-o", "wide"])?)
                ),
            );
        }
    }
    Ok(())
}

/// What the controller did: its counters, or on a node the leader's log.
async fn show_what_it_did(started: Instant, cluster: &Cluster, kubectl: &Kubectl) -> Result<()> {
    match cluster {
        Cluster::Plane(_, Some(controller)) => {
            let counters = controller.get("/metrics").await.map(|(_, m)| {
                m.lines()
                    .filter(|l| {
                        l.starts_with("alert_poller_status_writes_total")
                            || l.starts_with("alert_poller_polls_total")
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            say(
                started,
                &format!(
                    "controller counters:\n{}",
                    indent(&counters.unwrap_or_default())
                ),
            );
        }
        Cluster::Plane(_, None) => {}
        Cluster::Node(_) => {
            let leader = lease_holder(kubectl)?;
            let logs = kubectl.run(&["-n", NAMESPACE, "logs", leader.as_str(), "--tail=5"])?;
            say(
                started,
                &format!(
                    "kubectl -n {NAMESPACE} logs {} --tail=5 (the leader)\n{}",
                    leader,
                    indent(&logs)
                ),
            );
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let on_node = std::env::args().skip(1).any(|a| a == "--node");
    let started = Instant::now();
    let mut cluster = start_cluster(started, on_node).await?;
    let kubectl = cluster.kubectl();
    let (collector, _prometheus, url) = start_prometheus(started, &mut cluster).await?;

    say(
        started,
        "kubectl apply -k config/crd && kubectl apply -k deploy/",
    );
    install(
        &kubectl,
        &[
            ("prometheusUrl", url.as_str()),
            ("minInterval", "250ms"),
            ("maxInterval", "2s"),
            ("staleAfter", "10s"),
        ],
    )?;
    kubectl.run(&["apply", "-k", &repo("config/samples")])?;
    start_controller(started, &mut cluster, &kubectl)?;

    let mut shown = String::new();
    watch_table(&kubectl, started, &mut shown, all_healthy)
        .await
        .with_context(|| cluster.log())?;
    for fault in &FAULTS {
        say(started, &format!("fault: {}", fault.story));
        collector.set_flow_of(fault.kind, fault.component, fault.pipeline, fault.flow);
        watch_table(&kubectl, started, &mut shown, |t| {
            flow(t, fault.pipeline) == Some(("False".into(), fault.reason.into()))
        })
        .await
        .with_context(|| cluster.log())?;
    }
    say(started, "repair: every flow delivers again");
    for fault in &FAULTS {
        collector.set_flow_of(fault.kind, fault.component, fault.pipeline, Flow::Healthy);
    }
    watch_table(&kubectl, started, &mut shown, all_healthy)
        .await
        .with_context(|| cluster.log())?;
    show_what_it_did(started, &cluster, &kubectl).await?;
    say(started, "done; stopping everything");
    Ok(())
}
