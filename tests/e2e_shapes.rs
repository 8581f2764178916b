//! End to end on both CRD shapes a real cluster can have, with another writer
//! (standing in for telemetry-manager, field manager `telemetry-manager`)
//! sharing the conditions list:
//!
//! 1. telemetry-manager's shape (v1beta1 stored, v1alpha1 served, an atomic
//!    conditions list, nothing unknown preserved), generated from our types
//!    by `testbed::crd_shapes::manager_like`;
//! 2. ours (config/crd/): the same versions with a map list.
//!
//! On each: the spec survives many status writes byte for byte; the other
//! writer's conditions survive ours and ours survive theirs, through apply
//! and through update; a condition of our type that someone overwrites is
//! left to them (no tug of war), one that is deleted comes back; and while
//! nothing differs, nothing is written. Last, a
//! TracePipeline and a LogPipeline on the manager's shape of their CRDs,
//! installed while the controller runs, share their conditions the same way.

#[macro_use]
#[path = "support/env.rs"]
mod env;

#[path = "e2e_shapes/sharing.rs"]
mod sharing;

use sharing::*;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use alert_poller::domain::kind::Kind;
use alert_poller_testbed::collector::{Component, Flow, PipelineKind};
use alert_poller_testbed::crd_shapes;
use alert_poller_testbed::install::{install_crd, install_deploy};
use anyhow::{Context as _, Result, ensure};
use env::{CONDITION, Env, PATIENCE, tail, test_tuning};
use serde_json::{Value, json};

/// Short, so that the resync is seen within a test.
const RESYNC: Duration = Duration::from_secs(10);
const OTHER_MANAGER: &str = "telemetry-manager";
/// The stored version, named explicitly so kubectl never picks another one.
const BETA: &str = "metricpipelines.v1beta1.telemetry.kyma-project.io";
const ALPHA: &str = "metricpipelines.v1alpha1.telemetry.kyma-project.io";

/// Pipelines with fields only v1beta1 can hold (`compression`,
/// `input.otlp.enabled: false`, which v1alpha1 would turn into `otlp: {}`,
/// that is OTLP input on).
fn pipelines() -> Vec<Value> {
    let pipeline = |name: &str, compression: &str| {
        json!({
            "apiVersion": "telemetry.kyma-project.io/v1beta1",
            "kind": "MetricPipeline",
            "metadata": {"name": name},
            "spec": {
                "input": {"runtime": {"enabled": true}, "otlp": {"enabled": false}},
                "output": {"otlp": {
                    "protocol": "grpc",
                    "endpoint": {"value": "http://metrics-backend.observability:4317"},
                    "compression": compression,
                }},
            },
        })
    };
    vec![
        pipeline("backend", "zstd"),
        pipeline("audit", "gzip"),
        pipeline("victim", "zstd"),
    ]
}

fn get(env: &Env, resource: &str, name: &str) -> Result<Value> {
    Ok(serde_json::from_str(
        &env.kubectl(&["get", resource, name, "-o", "json"])?,
    )?)
}

fn conditions(object: &Value) -> Vec<Value> {
    object["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn others(object: &Value) -> Vec<Value> {
    conditions(object)
        .into_iter()
        .filter(|c| c["type"] != CONDITION)
        .collect()
}

fn theirs(kind: &str, status: &str, reason: &str) -> Value {
    json!({"type": kind, "status": status, "reason": reason, "message": format!("{reason} (written by {OTHER_MANAGER})"),
           "lastTransitionTime": "2026-11-01T10:00:00Z", "observedGeneration": 1})
}

/// Installs `crd`, deploy/ tuned for the test, the pipelines, and starts the
/// controller as its ServiceAccount; returns once every pipeline is True.
async fn set_up(env: &mut Env, crd: &Value, shape: &str) -> Result<()> {
    install_crd(&env.kubectl, crd)?;
    let url = env.prometheus.url();
    let resync = format!("{}s", RESYNC.as_secs());
    install_deploy(
        &env.kubectl,
        &test_tuning(&url, &[("resyncInterval", resync.as_str())]),
    )?;
    for p in pipelines() {
        env.kubectl
            .run_with_input(&["apply", "-f", "-"], Some(&p.to_string()))?;
        env.collector
            .add_pipeline(p["metadata"]["name"].as_str().unwrap());
    }
    env.start_controller(&format!("alert-poller-{shape}"), &[])?;
    for p in ["backend", "audit", "victim"] {
        env.until_condition(p, "True", "FlowHealthy").await?;
    }
    let log = env.controller().log();
    ensure!(
        log.lines().any(|l| l.contains("pipeline API chosen")
            && l.contains("version=v1beta1")
            && l.contains(&format!("conditions=\"{shape}\""))),
        "the controller did not choose v1beta1 with a {shape} list:\n{}",
        tail(&log, 20)
    );
    Ok(())
}

/// Removes the pipelines and the CRD, so the other shape can be installed.
async fn tear_down(env: &mut Env) -> Result<()> {
    if let Some(mut controller) = env.controller.take() {
        controller.terminate(Duration::from_secs(5));
    }
    env.kubectl(&["delete", "metricpipelines", "--all", "--wait=true"])?;
    env.kubectl(&[
        "delete",
        "crd",
        "metricpipelines.telemetry.kyma-project.io",
        "--wait=true",
    ])?;
    Ok(())
}

async fn install_the_manager_shaped_crd(env: &mut Env) -> Result<()> {
    set_up(env, &crd_shapes::manager_like(Kind::Metric), "atomic").await
}

/// The control experiment: on this shape, a status write through v1alpha1
/// really does delete v1beta1-only spec fields, so the next scenario's check
/// could fail.
async fn a_v1alpha1_status_write_loses_v1beta1_fields(env: &mut Env) -> Result<()> {
    let before = get(env, BETA, "victim")?;
    ensure!(before["spec"]["output"]["otlp"]["compression"] == "zstd");
    env.kubectl(&[
        "patch",
        ALPHA,
        "victim",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"conditions":[]}}"#,
    ])?;
    let after = get(env, BETA, "victim")?;
    ensure!(
        after["spec"]["output"]["otlp"].get("compression").is_none()
            && after["spec"]["input"]["otlp"].get("enabled").is_none(),
        "a write through v1alpha1 kept the v1beta1-only fields, so this shape tests nothing: {}",
        after["spec"]
    );
    ensure!(
        after["metadata"]["generation"] == before["metadata"]["generation"],
        "the generation moved"
    );
    println!(
        "    control: a v1alpha1 status write dropped compression and otlp.enabled, generation unchanged"
    );
    Ok(())
}

/// Breaks and mends `backend`'s gateway flow `rounds` times; returns the
/// number of status writes the controller made meanwhile.
async fn flip(env: &Env, rounds: usize) -> Result<f64> {
    let before = env.controller().status_writes().await;
    for _ in 0..rounds {
        env.break_and_mend_backend(Flow::AllDropped, "GatewayAllTelemetryDataDropped")
            .await?;
    }
    Ok(env.controller().status_writes().await - before)
}

async fn spec_survives_status_writes(env: &mut Env) -> Result<()> {
    let before = get(env, BETA, "backend")?;
    let writes = flip(env, 3).await?;
    let after = get(env, BETA, "backend")?;
    ensure!(writes >= 6.0, "only {writes} status writes");
    ensure!(
        serde_json::to_string(&after["spec"])? == serde_json::to_string(&before["spec"])?,
        "the spec changed:\nbefore {}\nafter  {}",
        before["spec"],
        after["spec"]
    );
    ensure!(after["metadata"]["generation"] == before["metadata"]["generation"]);
    println!("    spec byte for byte the same through {writes} status writes");
    Ok(())
}

async fn atomic_spec_survives_status_writes(env: &mut Env) -> Result<()> {
    spec_survives_status_writes(env).await
}

async fn atomic_conditions_are_shared(env: &mut Env) -> Result<()> {
    conditions_are_shared(env).await
}

async fn atomic_drift_is_repaired_and_quiet_is_quiet(env: &mut Env) -> Result<()> {
    drift_is_repaired_and_quiet_is_quiet(env).await
}

async fn switch_to_our_crd(env: &mut Env) -> Result<()> {
    tear_down(env)
        .await
        .context("removing the manager-shaped CRD")?;
    set_up(env, &crd_shapes::ours(Kind::Metric), "map").await
}

async fn map_spec_survives_status_writes(env: &mut Env) -> Result<()> {
    // Our CRD keeps unknown fields at the top of the spec: ones our types do
    // not model must survive our writes too.
    env.kubectl(&[
        "patch",
        BETA,
        "backend",
        "--type=merge",
        "-p",
        r#"{"spec":{"transform":[{"statements":["set(x, 1)"]}],"filter":[{"conditions":["y"]}]}}"#,
    ])?;
    env.until_condition("backend", "True", "FlowHealthy")
        .await?;
    spec_survives_status_writes(env).await?;
    let after = get(env, BETA, "backend")?;
    ensure!(after["spec"]["transform"][0]["statements"][0] == "set(x, 1)");
    ensure!(after["spec"]["filter"][0]["conditions"][0] == "y");
    Ok(())
}

async fn map_conditions_are_shared(env: &mut Env) -> Result<()> {
    conditions_are_shared(env).await
}

async fn map_drift_is_repaired_and_quiet_is_quiet(env: &mut Env) -> Result<()> {
    drift_is_repaired_and_quiet_is_quiet(env).await
}

/// telemetry-manager installed after alert-poller replaces the CRD under the
/// running controller: the conditions list turns atomic, and the very next
/// write must keep the other writer's conditions, with no restart.
async fn a_crd_replaced_under_the_controller_changes_the_write(env: &mut Env) -> Result<()> {
    install_crd(&env.kubectl, &crd_shapes::manager_like(Kind::Metric))?;
    let started = Instant::now();
    while !env
        .controller()
        .log()
        .contains("conditions list changed shape")
    {
        ensure!(
            started.elapsed() < PATIENCE,
            "the controller did not notice the new CRD:\n{}",
            tail(&env.controller().log(), 20)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let theirs = [
        theirs("GatewayHealthy", "True", "GatewayReady"),
        theirs("ConfigurationGenerated", "True", "AfterTakeover"),
    ];
    their_update(env, "audit", &theirs)?;
    env.collector
        .set_flow(Component::Gateway, "audit", Flow::AllDropped);
    until_shared(
        env,
        "audit",
        &theirs,
        "False",
        "GatewayAllTelemetryDataDropped",
    )
    .await?;
    env.collector
        .set_flow(Component::Gateway, "audit", Flow::Healthy);
    until_shared(env, "audit", &theirs, "True", "FlowHealthy").await?;
    ensure!(
        env.controller.as_mut().is_some_and(|c| c.alive()),
        "the controller stopped"
    );
    println!(
        "    switched to the atomic strategy {:.1}s after the CRD changed",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A TracePipeline and an OTLP LogPipeline on telemetry-manager's shape of
/// their CRDs, installed under the running controller (whose trace and log
/// controllers wait for them): each gets our condition beside the other
/// writer's, goes False with its own kind's reason and back, keeps the other
/// writer's conditions throughout, and keeps its spec byte for byte.
async fn trace_and_log_pipelines_on_the_manager_shape(env: &mut Env) -> Result<()> {
    for kind in [Kind::Trace, Kind::Log] {
        install_crd(&env.kubectl, &crd_shapes::manager_like(kind))?;
    }
    let objects = manager_shaped_objects();
    let theirs = [
        theirs("GatewayHealthy", "True", "GatewayReady"),
        theirs("ConfigurationGenerated", "True", "GatewayConfigured"),
    ];
    for (kind, bed_kind, object) in &objects {
        let name = object["metadata"]["name"].as_str().unwrap();
        let resource = format!("{}.v1beta1.telemetry.kyma-project.io", kind.plural());
        create_once_served(env, &resource, name, object).await?;
        env.collector.add_pipeline_of(*bed_kind, name);
        let spec = get(env, &resource, name)?["spec"].clone();
        until_shared_of(env, &resource, name, &[], "True", "FlowHealthy").await?;
        their_update_of(env, &resource, name, &theirs)?;
        until_shared_of(env, &resource, name, &theirs, "True", "FlowHealthy").await?;
        env.collector
            .set_flow_of(*bed_kind, Component::Gateway, name, Flow::AllDropped);
        until_shared_of(
            env,
            &resource,
            name,
            &theirs,
            "False",
            "GatewayAllTelemetryDataDropped",
        )
        .await?;
        env.collector
            .set_flow_of(*bed_kind, Component::Gateway, name, Flow::Healthy);
        until_shared_of(env, &resource, name, &theirs, "True", "FlowHealthy").await?;
        let after = get(env, &resource, name)?;
        ensure!(
            serde_json::to_string(&after["spec"])? == serde_json::to_string(&spec)?,
            "{resource}/{name}: the spec changed:\nbefore {spec}\nafter  {}",
            after["spec"]
        );
        println!("    {resource}/{name}: False and back beside the other writer's conditions");
    }
    Ok(())
}

/// A TracePipeline and an OTLP LogPipeline, each with the kind the
/// controller knows it by and the kind the collector stand-in counts it as.
/// Only what our types declare: without `preserve-unknown-fields` the API
/// server would refuse anything else (the MetricPipeline scenarios above
/// cover the fields a version cannot hold).
fn manager_shaped_objects() -> [(Kind, PipelineKind, Value); 2] {
    [
        (
            Kind::Trace,
            PipelineKind::Trace,
            json!({
                "apiVersion": "telemetry.kyma-project.io/v1beta1",
                "kind": "TracePipeline",
                "metadata": {"name": "traces"},
                "spec": {},
            }),
        ),
        (
            Kind::Log,
            PipelineKind::Log,
            json!({
                "apiVersion": "telemetry.kyma-project.io/v1beta1",
                "kind": "LogPipeline",
                "metadata": {"name": "logs"},
                "spec": {"input": {"otlp": {}}, "output": {"otlp": {}}},
            }),
        ),
    ]
}

/// Applies `object`, retrying until the API server serves its CRD: it does
/// so a moment after the CRD is accepted.
async fn create_once_served(env: &Env, resource: &str, name: &str, object: &Value) -> Result<()> {
    let started = Instant::now();
    while let Err(e) = env
        .kubectl
        .run_with_input(&["apply", "-f", "-"], Some(&object.to_string()))
    {
        ensure!(
            started.elapsed() < PATIENCE,
            "{resource}/{name} cannot be created: {e:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// The scenarios need an empty cluster; `env::install` is not used here.
async fn start(env: &mut Env) -> Result<()> {
    env.kubectl(&["version"])?;
    Ok(())
}

fn main() -> ExitCode {
    env::run(
        "e2e_shapes",
        &scenarios![
            start,
            install_the_manager_shaped_crd,
            a_v1alpha1_status_write_loses_v1beta1_fields,
            atomic_spec_survives_status_writes,
            atomic_conditions_are_shared,
            atomic_drift_is_repaired_and_quiet_is_quiet,
            switch_to_our_crd,
            map_spec_survives_status_writes,
            map_conditions_are_shared,
            map_drift_is_repaired_and_quiet_is_quiet,
            a_crd_replaced_under_the_controller_changes_the_write,
            trace_and_log_pipelines_on_the_manager_shape,
        ],
    )
}
