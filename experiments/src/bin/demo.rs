//! The local demo: a real Prometheus, a real control plane, the controller,
//! and a pipeline going unhealthy and healthy again, printed as it happens.
//!
//! Run it with `scripts/demo.sh`, which builds what it needs first.

use std::time::{Duration, Instant};

use alert_poller_testbed::collector::{Collector, Component, Flow};
use alert_poller_testbed::controller::{ControllerProcess, sibling_binary};
use alert_poller_testbed::controlplane::{ControlPlane, Kubectl};
use alert_poller_testbed::install::{install, repo};
use alert_poller_testbed::prometheus::{Prometheus, Setup};
use anyhow::{Context, Result, bail};

fn say(started: Instant, text: &str) {
    println!("[{:>6.1}s] {text}", started.elapsed().as_secs_f64());
}

/// Prints `kubectl get metricpipelines` whenever it changes, until `done` says so.
async fn watch_table(
    kubectl: &Kubectl,
    started: Instant,
    done: impl Fn(&str) -> bool,
) -> Result<()> {
    let mut last = Vec::new();
    let limit = Instant::now() + Duration::from_secs(90);
    loop {
        let table = kubectl.run(&["get", "metricpipelines"])?;
        // Print on a change of name or flow health, not of the AGE column.
        let shown: Vec<String> = table
            .lines()
            .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
            .collect();
        if shown != last {
            say(started, "kubectl get metricpipelines");
            for line in table.lines() {
                println!("           {line}");
            }
            last = shown;
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

/// The "Flow Healthy" column of one pipeline's row.
fn flow(table: &str, pipeline: &str) -> Option<String> {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(pipeline))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
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

    let both_healthy = |t: &str| {
        flow(t, "backend").as_deref() == Some("True") && flow(t, "audit").as_deref() == Some("True")
    };
    watch_table(&kubectl, started, both_healthy)
        .await
        .with_context(|| controller.log())?;

    say(
        started,
        "fault: the gateway of pipeline 'backend' now drops all its data",
    );
    collector.set_flow(Component::Gateway, "backend", Flow::AllDropped);
    watch_table(&kubectl, started, |t| {
        flow(t, "backend").as_deref() == Some("False")
    })
    .await
    .with_context(|| controller.log())?;
    let reason = kubectl.run(&[
        "get",
        "metricpipeline",
        "backend",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"TelemetryFlowHealthy\")].reason}",
    ])?;
    say(started, &format!("backend's reason: {reason}"));

    say(started, "repair: the gateway of 'backend' delivers again");
    collector.set_flow(Component::Gateway, "backend", Flow::Healthy);
    watch_table(&kubectl, started, both_healthy)
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
