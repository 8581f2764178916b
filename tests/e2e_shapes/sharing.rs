//! Sharing the conditions with another writer: its updates and applies as
//! controller-runtime and kubectl make them, and the steps that show neither
//! writer loses the other's conditions and a quiet run writes nothing.

use crate::env::{CONDITION, Env, PATIENCE, tail};
use alert_poller_testbed::collector::{Component, Flow};
use anyhow::{Context as _, Result, bail, ensure};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

use super::*;

/// The other writer updates the status the way controller-runtime's
/// `Status().Update` does: the whole object back, its conditions set in it.
pub fn their_update(env: &Env, name: &str, mine: &[Value]) -> Result<()> {
    their_update_of(env, BETA, name, mine)
}

pub fn their_update_of(env: &Env, resource: &str, name: &str, mine: &[Value]) -> Result<()> {
    let mut object = get(env, resource, name)?;
    let mut list: Vec<Value> = conditions(&object)
        .into_iter()
        .filter(|c| !mine.iter().any(|m| m["type"] == c["type"]))
        .collect();
    list.extend(mine.iter().cloned());
    object["status"]["conditions"] = Value::Array(list);
    env.kubectl.run_with_input(
        &[
            "replace",
            "--subresource=status",
            "--field-manager",
            OTHER_MANAGER,
            "-f",
            "-",
        ],
        Some(&object.to_string()),
    )?;
    Ok(())
}

/// The other writer applies only its own conditions, forcing: on an atomic
/// list that takes the whole list, ours included.
pub fn their_apply(env: &Env, name: &str, mine: &[Value]) -> Result<()> {
    let object = json!({
        "apiVersion": "telemetry.kyma-project.io/v1beta1",
        "kind": "MetricPipeline",
        "metadata": {"name": name},
        "status": {"conditions": mine},
    });
    env.kubectl.run_with_input(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--subresource=status",
            "--field-manager",
            OTHER_MANAGER,
            "-f",
            "-",
        ],
        Some(&object.to_string()),
    )?;
    Ok(())
}

/// Waits until `name` carries exactly `want` besides our condition, which must
/// be present with `status`/`reason`.
pub async fn until_shared(
    env: &Env,
    name: &str,
    want: &[Value],
    status: &str,
    reason: &str,
) -> Result<()> {
    until_shared_of(env, BETA, name, want, status, reason).await
}

pub async fn until_shared_of(
    env: &Env,
    resource: &str,
    name: &str,
    want: &[Value],
    status: &str,
    reason: &str,
) -> Result<()> {
    let started = Instant::now();
    loop {
        let object = get(env, resource, name)?;
        let ours = conditions(&object)
            .into_iter()
            .find(|c| c["type"] == CONDITION);
        let others = others(&object);
        if others == want
            && ours
                .as_ref()
                .is_some_and(|c| c["status"] == status && c["reason"] == reason)
        {
            return Ok(());
        }
        if started.elapsed() > PATIENCE {
            bail!(
                "{name}: want theirs {want:?} and ours {status}/{reason}; have theirs {others:?}, ours {ours:?}\ncontroller log:\n{}",
                tail(&env.controller().log(), 20)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The other writer's conditions stay as they are while ours goes True,
/// then False with `reason` when the gateway's flow turns `flow`, then True
/// again.
async fn shared_through_a_break(
    env: &Env,
    their_conditions: &[Value],
    flow: Flow,
    reason: &str,
) -> Result<()> {
    until_shared(env, "backend", their_conditions, "True", "FlowHealthy").await?;
    env.collector.set_flow(Component::Gateway, "backend", flow);
    until_shared(env, "backend", their_conditions, "False", reason).await?;
    env.collector
        .set_flow(Component::Gateway, "backend", Flow::Healthy);
    until_shared(env, "backend", their_conditions, "True", "FlowHealthy").await
}

pub async fn conditions_are_shared(env: &Env) -> Result<()> {
    // Through update: they write the whole list (ours kept), then we write ours.
    let update = [
        theirs("GatewayHealthy", "True", "GatewayReady"),
        theirs("ConfigurationGenerated", "True", "GatewayConfigured"),
    ];
    their_update(env, "backend", &update)?;
    shared_through_a_break(
        env,
        &update,
        Flow::SomeDropped,
        "GatewaySomeTelemetryDataDropped",
    )
    .await?;

    // Through apply: their forced apply of their entries; ours is kept (map)
    // or taken and written back at once (atomic), theirs untouched either way.
    let apply = [
        theirs("GatewayHealthy", "False", "GatewayNotReady"),
        theirs("ConfigurationGenerated", "True", "GatewayConfigured"),
    ];
    their_apply(env, "backend", &apply)?;
    shared_through_a_break(
        env,
        &apply,
        Flow::AllDropped,
        "GatewayAllTelemetryDataDropped",
    )
    .await?;
    // Their next apply, forced or not, is not refused by anything of ours on
    // a map list; on an atomic list a forced one is the only kind that
    // can share it with any other writer.
    their_apply(env, "backend", &apply)?;
    until_shared(env, "backend", &apply, "True", "FlowHealthy").await?;
    Ok(())
}

pub async fn yields(env: &Env) -> f64 {
    env.controller()
        .metric_sum("alert_poller_condition_yields_total", &[])
        .await
}

/// Our condition, overwritten by someone else, is left to them (the
/// manager keeps the same type: writing it back would be a tug of war) and
/// said so once; deleted, it comes back within the resync interval; then,
/// while nothing differs, nothing is written although the resync keeps
/// reconciling.
pub async fn drift_is_repaired_and_quiet_is_quiet(env: &Env) -> Result<()> {
    let object = get(env, BETA, "audit")?;
    an_overwrite_is_left_to_them(env, &object).await?;

    their_merge_patch(env, others(&object))?;
    let started = Instant::now();
    env.until_condition("audit", "True", "FlowHealthy").await?;
    let took = started.elapsed();
    ensure!(
        took <= RESYNC + RESYNC / 10,
        "our deleted condition took {took:?}, more than resyncInterval"
    );
    println!("    deleted: back after {:.1}s", took.as_secs_f64());

    a_quiet_resync_writes_nothing(env).await
}

/// The other writer's merge patch of the status conditions under its own
/// field manager: the way it overwrites or deletes ours.
fn their_merge_patch(env: &Env, list: Vec<Value>) -> Result<String> {
    let patch = json!({"status": {"conditions": list}});
    env.kubectl(&[
        "patch",
        BETA,
        "audit",
        "--subresource=status",
        "--type=merge",
        "--field-manager",
        OTHER_MANAGER,
        "-p",
        &patch.to_string(),
    ])
}

/// The other writer turns our condition False: we notice, yield it to them
/// rather than write it back, and say so in a Warning event naming them.
async fn an_overwrite_is_left_to_them(env: &Env, object: &Value) -> Result<()> {
    let mut tampered: Vec<Value> = conditions(object);
    for c in tampered.iter_mut().filter(|c| c["type"] == CONDITION) {
        c["status"] = "False".into();
        c["reason"] = "Tampered".into();
    }
    let yields_before = yields(env).await;
    their_merge_patch(env, tampered)?;
    let started = Instant::now();
    while yields(env).await <= yields_before {
        ensure!(
            started.elapsed() < PATIENCE,
            "the overwrite was never noticed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let c = env.condition_of(BETA, "audit")?.context("no condition")?;
    ensure!(
        c["reason"] == "Tampered",
        "the other writer's condition was overwritten: {c}"
    );
    let events = env.events("default", "ConditionKeptByOtherWriter")?;
    ensure!(
        events.iter().any(|e| e["regarding"]["name"] == "audit"
            && e["note"]
                .as_str()
                .is_some_and(|n| n.contains(OTHER_MANAGER))),
        "no event names {OTHER_MANAGER}: {events:#?}"
    );
    println!("    overwritten: left to {OTHER_MANAGER}, a Warning event says so");
    Ok(())
}

/// While nothing differs, a resync and a bit reconciles every pipeline yet
/// writes nothing: the controller writes only differences.
async fn a_quiet_resync_writes_nothing(env: &Env) -> Result<()> {
    let writes = env.controller().status_writes().await;
    let reconciles = env
        .controller()
        .metric_sum("alert_poller_reconciles_total", &[("result", "success")])
        .await;
    tokio::time::sleep(RESYNC + RESYNC / 5).await;
    let writes_after = env.controller().status_writes().await;
    let reconciles_after = env
        .controller()
        .metric_sum("alert_poller_reconciles_total", &[("result", "success")])
        .await;
    ensure!(
        writes_after == writes,
        "{} writes while nothing differed",
        writes_after - writes
    );
    ensure!(
        reconciles_after >= reconciles + 3.0,
        "the resync did not reconcile every pipeline ({reconciles} -> {reconciles_after})"
    );
    println!(
        "    quiet for {:?}: {} resync reconciles, 0 writes",
        RESYNC + RESYNC / 5,
        reconciles_after - reconciles
    );
    Ok(())
}
