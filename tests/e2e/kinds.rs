//! Every kind of pipeline goes False with its own reason and back, and the
//! writes leave every other version and writer of the object alone.

use crate::env::{Env, PATIENCE};
use alert_poller_testbed::collector::{Component, Flow, PipelineKind};
use anyhow::{Context as _, Result, ensure};
use serde_json::Value;
use std::time::Duration;

use super::*;

/// All three kinds from one poll: one pipeline of each kind (and both log
/// flavours) goes False with its own reason and back to True, and the
/// controller writes exactly those two conditions: no other pipeline, of any
/// kind, receives a write.
pub async fn every_kind_goes_false_with_its_own_reason_and_back(env: &mut Env) -> Result<()> {
    let everyone = [
        ("metricpipeline", "backend"),
        ("metricpipeline", "audit"),
        ("tracepipeline", "traces"),
        ("logpipeline", "app-logs"),
        ("logpipeline", "legacy-logs"),
    ];
    for (resource, name) in everyone {
        env.until_condition_of(resource, name, "True", "FlowHealthy")
            .await?;
    }
    for case in FALSE_CASES {
        goes_false_and_back(env, case).await?;
    }
    Ok(())
}

/// One pipeline's trip to False: its resource and name, the component and
/// flow that break it, and the reason the controller must give.
type Case = (
    &'static str,
    &'static str,
    PipelineKind,
    Component,
    Flow,
    &'static str,
);

/// One pipeline of each kind and log flavour, each broken in the way that
/// gives a reason of its own kind.
const FALSE_CASES: [Case; 4] = [
    (
        "tracepipeline",
        "traces",
        PipelineKind::Trace,
        Component::Gateway,
        Flow::SomeDropped,
        "GatewaySomeTelemetryDataDropped",
    ),
    (
        "logpipeline",
        "app-logs",
        PipelineKind::Log,
        Component::Agent,
        Flow::AllDropped,
        "AgentAllTelemetryDataDropped",
    ),
    (
        "logpipeline",
        "legacy-logs",
        PipelineKind::Log,
        Component::FluentBit,
        Flow::BufferFull,
        "AgentBufferFillingUp",
    ),
    (
        "metricpipeline",
        "audit",
        PipelineKind::Metric,
        Component::Gateway,
        Flow::AllDropped,
        "GatewayAllTelemetryDataDropped",
    ),
];

/// Breaks one pipeline's flow and heals it again, then holds the writes the
/// controller made against what a watch of the object saw and against every
/// other pipeline's resourceVersion: only this pipeline, only differences.
async fn goes_false_and_back(env: &mut Env, case: Case) -> Result<()> {
    let (resource, name, kind, component, flow, reason) = case;
    let before = env.controller().status_writes().await;
    let others = versions_of_others(env, resource, name)?;
    let watch = ConditionWatch::start(env, resource, name)?;
    env.collector.set_flow_of(kind, component, name, flow);
    env.until_condition_of(resource, name, "False", reason)
        .await?;
    env.collector
        .set_flow_of(kind, component, name, Flow::Healthy);
    env.until_condition_of(resource, name, "True", "FlowHealthy")
        .await?;
    // Give a stray write the time of a few polls to show up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let writes = env.controller().status_writes().await - before;
    // What the API server's watch of this one object saw, write by
    // write. Each changes the condition (the controller writes only a
    // difference); the first turns it False, the last back to True.
    // Usually that is all (2 writes), but a poll that reads Prometheus
    // while it is halfway through evaluating the group may see one
    // rule's alert already resolved and the next not yet firing, and
    // write that state too, as telemetry-manager would.
    let written = watch.stop();
    ensure!(
        written.len() as f64 == writes,
        "{resource}/{name}: {writes} status writes counted, {} seen by the watch: {written:?}",
        written.len()
    );
    ensure!(
        written.first().is_some_and(|(s, _)| s == "False")
            && written
                .last()
                .is_some_and(|(s, r)| s == "True" && r == "FlowHealthy")
            && written.windows(2).all(|w| w[0] != w[1]),
        "{resource}/{name}: the writes were {written:?}"
    );
    ensure!(
        versions_of_others(env, resource, name)? == others,
        "{resource}/{name}: another pipeline was written"
    );
    if written.len() == 2 {
        println!("    {resource}/{name}: False/{reason} and back, 2 writes in all");
    } else {
        println!("    {resource}/{name}: False/{reason} and back, by way of {written:?}");
    }
    Ok(())
}

/// Every pipeline's resourceVersion but `(resource, name)`'s: any write to
/// another pipeline changes it.
pub fn versions_of_others(env: &Env, resource: &str, name: &str) -> Result<Vec<String>> {
    let mut versions = Vec::new();
    for kind in ["metricpipeline", "tracepipeline", "logpipeline"] {
        let list: Value = serde_json::from_str(&env.kubectl(&["get", kind, "-o", "json"])?)?;
        for item in list["items"].as_array().into_iter().flatten() {
            let item_name = item["metadata"]["name"].as_str().unwrap_or_default();
            if kind != resource || item_name != name {
                versions.push(format!(
                    "{kind}/{item_name}@{}",
                    item["metadata"]["resourceVersion"]
                ));
            }
        }
    }
    Ok(versions)
}

/// `kubectl get --watch` of one pipeline: the condition after each change
/// of the object, as the API server tells every watcher.
pub struct ConditionWatch {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl ConditionWatch {
    /// Starts the watch and returns once it has shown the current object.
    pub fn start(env: &Env, resource: &str, name: &str) -> Result<ConditionWatch> {
        let path = format!("{{.status.conditions[?(@.type==\"{}\")]}}", env::CONDITION);
        let template = format!("{path}{{\"\\n\"}}");
        let mut child = env
            .kubectl
            .command(&[
                "get",
                resource,
                name,
                "--watch",
                "-o",
                &format!("jsonpath={template}"),
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().context("kubectl's stdout")?;
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        lines
            .recv_timeout(PATIENCE)
            .context("the watch shows the object")?;
        Ok(ConditionWatch { child, lines })
    }

    /// Ends the watch: the (status, reason) of every change it saw.
    pub fn stop(mut self) -> Vec<(String, String)> {
        // Let lines in flight arrive before the process goes.
        std::thread::sleep(Duration::from_millis(300));
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.lines
            .try_iter()
            .filter_map(|line| serde_json::from_str::<Value>(&line).ok())
            .map(|c| {
                let field = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
                (field("status"), field("reason"))
            })
            .collect()
    }
}
