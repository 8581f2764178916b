//! Beside telemetry-manager: a stand-in that writes `TelemetryFlowHealthy`
//! as the manager does (`testbed::manager`: on every change of a pipeline,
//! status included, and on every alert Prometheus pushes to it, in its own
//! words, through an update), on the manager's CRD shape (v1beta1 stored, an
//! atomic conditions list).
//!
//! 1. In `mode: write`, alert-poller and the stand-in judge the same alerts
//!    and both write the condition: there is no tug of war. alert-poller
//!    writes at most once per pipeline per verdict change, leaves the
//!    stand-in's rewrites standing, and says so once per pipeline (a
//!    Warning Event naming the other writer, a metric).
//! 2. In `mode: shadow` (what deploy/ ships), alert-poller writes nothing
//!    and reports how its verdicts compare with the stand-in's condition:
//!    agreement, and for each change both made, who was first and by how
//!    much.

#[macro_use]
#[path = "support/env.rs"]
mod env;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use alert_poller::domain::kind::Kind;
use alert_poller_testbed::collector::{Component, Flow};
use alert_poller_testbed::crd_shapes;
use alert_poller_testbed::install::{install_crd, install_deploy, repo};
use alert_poller_testbed::manager::{self, ManagerStandIn};
use anyhow::{Context as _, Result, bail, ensure};
use env::{CONDITION, Env, PATIENCE, tail, test_tuning};
use serde_json::Value;

const BETA: &str = "metricpipelines.v1beta1.telemetry.kyma-project.io";
const PIPELINES: [&str; 2] = ["backend", "audit"];

/// The stand-in lives beside the environment for the whole harness.
static STAND_IN: std::sync::Mutex<Option<ManagerStandIn>> = std::sync::Mutex::new(None);

fn stand_in_writes() -> u64 {
    STAND_IN
        .lock()
        .unwrap()
        .as_ref()
        .map_or(0, ManagerStandIn::writes)
}

fn condition(env: &Env, name: &str) -> Result<Option<Value>> {
    let object: Value = serde_json::from_str(&env.kubectl(&["get", BETA, name, "-o", "json"])?)?;
    Ok(object["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == CONDITION))
        .cloned())
}

/// Waits until `name`'s condition has `status`/`reason` in the stand-in's
/// words: the manager has the last word.
async fn until_the_managers(env: &Env, name: &str, status: &str, reason: &str) -> Result<()> {
    let started = Instant::now();
    loop {
        let c = condition(env, name)?;
        if let Some(c) = &c
            && c["status"] == status
            && c["reason"] == reason
            && c["message"]
                .as_str()
                .is_some_and(|m| m.contains("stand-in manager"))
        {
            return Ok(());
        }
        if started.elapsed() > PATIENCE {
            bail!(
                "{name} never showed the manager's {status}/{reason}; last {c:?}\ncontroller log:\n{}",
                tail(&env.controller().log(), 20)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The manager's CRD, deploy/ in write mode, the pipelines, the stand-in
/// and the controller; returns once the manager's words stand on both.
async fn set_up(env: &mut Env) -> Result<()> {
    install_crd(&env.kubectl, &crd_shapes::manager_like(Kind::Metric))?;
    let url = env.prometheus.url();
    install_deploy(&env.kubectl, &test_tuning(&url, &[("mode", "write")]))?;
    for p in PIPELINES {
        env.kubectl(&[
            "apply",
            "-f",
            &format!("{}/{p}.yaml", repo("config/samples")),
        ])?;
    }
    let webhook = env
        .webhook
        .take()
        .context("Prometheus notifies no webhook")?;
    *STAND_IN.lock().unwrap() = Some(ManagerStandIn::start(
        &env.kubectl,
        BETA,
        &url,
        Some(webhook),
    )?);
    env.start_controller("alert-poller-beside-manager", &["--kinds", "metric"])?;
    for p in PIPELINES {
        until_the_managers(env, p, "True", "FlowHealthy").await?;
    }
    Ok(())
}

/// Counts of both writers, and how they moved.
struct Writes {
    ours: f64,
    theirs: u64,
}

async fn writes(env: &Env) -> Writes {
    Writes {
        ours: env.controller().status_writes().await,
        theirs: stand_in_writes(),
    }
}

/// The verdict changes `backend` goes through while both write: the flow
/// the collector reports, and the condition the manager then writes.
const VERDICT_CHANGES: [(Flow, &str, &str); 4] = [
    (Flow::AllDropped, "False", "GatewayAllTelemetryDataDropped"),
    (Flow::Healthy, "True", "FlowHealthy"),
    (
        Flow::SomeDropped,
        "False",
        "GatewaySomeTelemetryDataDropped",
    ),
    (Flow::Healthy, "True", "FlowHealthy"),
];

async fn no_tug_of_war_in_write_mode(env: &mut Env) -> Result<()> {
    // Every pipeline has had its first verdict written by both; from here
    // each verdict change may cost us one write per pipeline it touches.
    let quiet = Duration::from_secs(5);
    tokio::time::sleep(quiet).await;
    let before = writes(env).await;
    tokio::time::sleep(quiet).await;
    let idle = writes(env).await;
    ensure!(
        idle.ours == before.ours && idle.theirs == before.theirs,
        "writes while nothing changed: ours {} -> {}, the manager's {} -> {}",
        before.ours,
        idle.ours,
        before.theirs,
        idle.theirs
    );
    for (flow, status, reason) in VERDICT_CHANGES {
        env.collector.set_flow(Component::Gateway, "backend", flow);
        until_the_managers(env, "backend", status, reason).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    tokio::time::sleep(quiet).await;
    let after = writes(env).await;
    let ours = after.ours - idle.ours;
    let theirs = after.theirs - idle.theirs;
    println!(
        "    {} verdict changes on backend: alert-poller wrote {ours}, the stand-in manager {theirs}",
        VERDICT_CHANGES.len()
    );
    ensure!(
        ours <= VERDICT_CHANGES.len() as f64,
        "alert-poller wrote {ours} times for {} verdict changes",
        VERDICT_CHANGES.len()
    );
    rewrites_are_left_standing_and_said_once(env).await
}

/// The manager's rewrites of our condition are left standing (each yield
/// counted) and said so once per pipeline: one Warning Event each, naming
/// the other writer.
async fn rewrites_are_left_standing_and_said_once(env: &Env) -> Result<()> {
    let yields = env
        .controller()
        .metric_sum("alert_poller_condition_yields_total", &[("kind", "metric")])
        .await;
    ensure!(yields >= 1.0, "no yield counted");
    let events: Vec<Value> = env
        .events("default", "ConditionKeptByOtherWriter")?
        .into_iter()
        .filter(|e| {
            e["note"]
                .as_str()
                .is_some_and(|n| n.contains(manager::FIELD_MANAGER))
        })
        .collect();
    let named: std::collections::BTreeSet<&str> = events
        .iter()
        .filter_map(|e| e["regarding"]["name"].as_str())
        .collect();
    ensure!(
        named.len() == PIPELINES.len() && events.len() == PIPELINES.len(),
        "want one ConditionKeptByOtherWriter event per pipeline naming {}, got {events:#?}",
        manager::FIELD_MANAGER
    );
    println!(
        "    {yields} rewrites left standing; one Warning event per pipeline naming {}",
        manager::FIELD_MANAGER
    );
    Ok(())
}

async fn seen_by_both(env: &Env) -> f64 {
    env.controller()
        .metric_sum(
            "alert_poller_shadow_transitions_total",
            &[("seen_by", "both")],
        )
        .await
}

async fn shadow_mode_compares_with_the_manager(env: &mut Env) -> Result<()> {
    env.patch_config(r#"{"mode":"shadow"}"#)?;
    env.until_metric(
        "alert_poller_shadow_pipelines{kind=\"metric\",agreement=\"agree\"}",
        PIPELINES.len() as f64,
    )
    .await?;
    let ours_before = env.controller().status_writes().await;
    let seen_before = seen_by_both(env).await;
    let flips = [
        Flow::AllDropped,
        Flow::Healthy,
        Flow::SomeDropped,
        Flow::Healthy,
    ];
    for flow in flips {
        env.collector.set_flow(Component::Gateway, "audit", flow);
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
    until_the_managers(env, "audit", "True", "FlowHealthy").await?;
    env.until_metric(
        "alert_poller_shadow_pipelines{kind=\"metric\",agreement=\"agree\"}",
        PIPELINES.len() as f64,
    )
    .await?;
    let seen = seen_by_both(env).await - seen_before;
    ensure!(
        seen >= flips.len() as f64,
        "{seen} of {} changes seen by both",
        flips.len()
    );
    ensure!(
        env.controller().status_writes().await == ours_before,
        "alert-poller wrote in shadow mode"
    );
    let c = env.controller();
    for first in ["alert-poller", "other"] {
        let labels = [("kind", "metric"), ("first", first)];
        let count = c
            .metric_sum("alert_poller_shadow_lead_seconds_count", &labels)
            .await;
        let sum = c
            .metric_sum("alert_poller_shadow_lead_seconds_sum", &labels)
            .await;
        let mean = if count > 0.0 {
            sum / count * 1000.0
        } else {
            0.0
        };
        println!("    shadow: {count} changes seen first by {first}, by {mean:.0} ms on average");
    }
    Ok(())
}

fn main() -> ExitCode {
    env::run_with(
        "e2e_manager",
        true,
        &scenarios![
            set_up,
            no_tug_of_war_in_write_mode,
            shadow_mode_compares_with_the_manager,
        ],
    )
}
