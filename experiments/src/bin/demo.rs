//! The local demo: a real Prometheus, a real control plane, the controller,
//! and one pipeline of each kind going unhealthy and healthy again, printed
//! as it happens.
//!
//! Run it with `scripts/demo.sh`, which builds what it needs first.

use std::time::{Duration, Instant};

use alert_poller_testbed::collector::{Collector, Component, Flow, PipelineKind};
use alert_poller_testbed::controller::{ControllerProcess, sibling_binary};
use alert_poller_testbed::controlplane::{ControlPlane, Kubectl};
use alert_poller_testbed::install::{install, repo};
use alert_poller_testbed::prometheus::{Prometheus, Setup};
use anyhow::{Context, Result, bail};

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

#[tokio::main]
async fn main() -> Result<()> {
    let started = Instant::now();
    say(
        started,
        "starting the control plane (kube-apiserver + etcd; the first build takes a while)",
    );
    let plane = tokio::task::spawn_blocking(ControlPlane::start).await??;
    let kubectl = plane.kubectl();

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

    say(
        started,
        "kubectl apply -k config/crd && kubectl apply -k deploy/",
    );
    let url = prometheus.url();
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

    say(
        started,
        "starting alert-poller out of cluster with its ServiceAccount's token",
    );
    let kubeconfig = plane.dir().join("alert-poller.kubeconfig");
    kubectl.service_account_kubeconfig("alert-poller", "alert-poller", &kubeconfig)?;
    let log = plane.dir().join("alert-poller.log");
    let controller =
        ControllerProcess::start(&sibling_binary()?, &kubeconfig, "alert-poller", &log)?;
    say(
        started,
        &format!("controller metrics at {}/metrics", controller.base_url()),
    );

    let mut shown = String::new();
    watch_table(&kubectl, started, &mut shown, all_healthy)
        .await
        .with_context(|| controller.log())?;

    // One fault per kind, one after the other: each turns exactly its own
    // pipeline False with the reason telemetry-manager would give.
    type Fault = (
        &'static str,
        PipelineKind,
        Component,
        Flow,
        &'static str,
        &'static str,
    );
    let faults: [Fault; 3] = [
        (
            "backend",
            PipelineKind::Metric,
            Component::Gateway,
            Flow::AllDropped,
            "the metric gateway drops all data of MetricPipeline 'backend'",
            "GatewayAllTelemetryDataDropped",
        ),
        (
            "traces",
            PipelineKind::Trace,
            Component::Gateway,
            Flow::SomeDropped,
            "the trace gateway drops part of the spans of TracePipeline 'traces'",
            "GatewaySomeTelemetryDataDropped",
        ),
        (
            "legacy-logs",
            PipelineKind::Log,
            Component::FluentBit,
            Flow::BufferFull,
            "Fluent Bit's buffer for LogPipeline 'legacy-logs' fills up",
            "AgentBufferFillingUp",
        ),
    ];
    for (pipeline, kind, component, flow_state, story, reason) in faults {
        say(started, &format!("fault: {story}"));
        collector.set_flow_of(kind, component, pipeline, flow_state);
        watch_table(&kubectl, started, &mut shown, |t| {
            flow(t, pipeline) == Some(("False".into(), reason.into()))
        })
        .await
        .with_context(|| controller.log())?;
    }

    say(started, "repair: every flow delivers again");
    for (pipeline, kind, component, _, _, _) in faults {
        collector.set_flow_of(kind, component, pipeline, Flow::Healthy);
    }
    watch_table(&kubectl, started, &mut shown, all_healthy)
        .await
        .with_context(|| controller.log())?;

    let writes = controller.get("/metrics").await.map(|(_, m)| {
        m.lines()
            .filter(|l| {
                l.starts_with("alert_poller_status_writes_total")
                    || l.starts_with("alert_poller_polls_total")
            })
            .collect::<Vec<_>>()
            .join("\n           ")
    });
    say(
        started,
        &format!(
            "controller counters:\n           {}",
            writes.unwrap_or_default()
        ),
    );
    say(started, "done; stopping everything");
    Ok(())
}
