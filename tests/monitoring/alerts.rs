//! Each alert of the shipped monitoring rules, fired by its own cause: bad
//! tuning, a dead Prometheus URL, refused writes, another writer, a restart,
//! a lease held elsewhere, nothing scraped.

use crate::env::{CONDITION, Env, NAMESPACE, PATIENCE};
use alert_poller_testbed::collector::{Component, Flow};
use alert_poller_testbed::controller::ControllerProcess;
use anyhow::{Context as _, Result, ensure};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

use super::*;

pub async fn invalid_tuning_fires_config_invalid(bed: &mut Bed) -> Result<()> {
    bed.env.patch_config(r#"{"minInterval":"bogus"}"#)?;
    let alert = bed.fired("AlertPollerConfigInvalid").await?;
    ensure!(alert["labels"]["namespace"] == NAMESPACE, "{alert}");
    bed.env.patch_config(r#"{"minInterval":"200ms"}"#)?;
    bed.scraper
        .until_inactive("AlertPollerConfigInvalid", PATIENCE)
        .await
}

/// The leader polls a port nobody listens on: its last success ages; the
/// standby, which never polls, is never named.
pub async fn a_dead_prometheus_url_fires_no_successful_poll(bed: &mut Bed) -> Result<()> {
    let dead = format!("http://127.0.0.1:{}/", alert_poller_testbed::free_port());
    bed.env
        .patch_config(&json!({ "prometheusUrl": dead }).to_string())?;
    let alert = bed.fired("AlertPollerNoSuccessfulPoll").await?;
    ensure!(alert["labels"]["pod"] == "replica-a", "{alert}");
    let url = bed.env.prometheus.url();
    bed.env
        .patch_config(&json!({ "prometheusUrl": url }).to_string())?;
    bed.scraper
        .until_inactive("AlertPollerNoSuccessfulPoll", PATIENCE)
        .await?;
    bed.env
        .until_condition("backend", "True", "FlowHealthy")
        .await?;
    Ok(())
}

/// `kubectl patch clusterrole alert-poller` with a JSON patch.
pub fn patch_cluster_role(env: &Env, patch: &Value) -> Result<()> {
    env.kubectl(&[
        "patch",
        "clusterrole",
        "alert-poller",
        "--type=json",
        "-p",
        &patch.to_string(),
    ])?;
    Ok(())
}

/// deploy/'s ClusterRole loses its rule on the pipelines' status while a
/// verdict changes: every write is refused until the rule is back.
pub async fn refused_status_writes_fire_status_writes_failing(bed: &mut Bed) -> Result<()> {
    let role: Value = serde_json::from_str(&bed.env.kubectl(&[
        "get",
        "clusterrole",
        "alert-poller",
        "-o",
        "json",
    ])?)?;
    let rules = role["rules"].as_array().context("no rules")?;
    let index = rules
        .iter()
        .position(|r| {
            r["resources"]
                .as_array()
                .is_some_and(|rs| rs.iter().any(|x| x == "metricpipelines/status"))
        })
        .context("no rule on metricpipelines/status")?;
    let path = format!("/rules/{index}");
    patch_cluster_role(&bed.env, &json!([{"op": "remove", "path": path}]))?;
    bed.env
        .collector
        .set_flow(Component::Gateway, "backend", Flow::AllDropped);
    let fired = bed.fired("AlertPollerStatusWritesFailing").await;
    patch_cluster_role(
        &bed.env,
        &json!([{"op": "add", "path": path, "value": rules[index]}]),
    )?;
    let alert = fired?;
    ensure!(alert["labels"]["kind"] == "metric", "{alert}");
    bed.env
        .until_condition("backend", "False", "GatewayAllTelemetryDataDropped")
        .await?;
    bed.env.mend_backend().await?;
    Ok(())
}

/// Another field manager rewrites our condition on `audit` in its own
/// words (as telemetry-manager would); alert-poller leaves it standing at
/// every resync, and says so.
pub async fn another_writer_fires_condition_kept_by_other_writer(bed: &mut Bed) -> Result<()> {
    let object = json!({
        "apiVersion": "telemetry.kyma-project.io/v1beta1",
        "kind": "MetricPipeline",
        "metadata": {"name": "audit"},
        "status": {"conditions": [{
            "type": CONDITION,
            "status": "True",
            "reason": "FlowHealthy",
            "message": "Written by another writer (tests/monitoring.rs)",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }]},
    });
    bed.env.kubectl.run_with_input(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--subresource=status",
            "--field-manager",
            "another-writer",
            "-f",
            "-",
        ],
        Some(&object.to_string()),
    )?;
    let alert = bed.fired("AlertPollerConditionKeptByOtherWriter").await?;
    ensure!(alert["labels"]["kind"] == "metric", "{alert}");
    Ok(())
}

/// The polled Prometheus restarts while an alert fires: alert-poller keeps
/// that alert until the new process has settled, and says so. For this
/// step the source evaluates its rule group every 4 s and alert-poller
/// reads `/api/v1/alerts`, which a fresh Prometheus leaves empty until the
/// group has run: settling then lasts from the first poll after the start
/// to the group's third run, 8-12 s, which a 1 s scrape cannot miss. (At
/// the test bed's 1 s evaluation it can end between two scrapes.)
pub async fn a_restarted_prometheus_fires_settling(bed: &mut Bed) -> Result<()> {
    let second = Duration::from_secs(1);
    let rules = |interval| alert_poller_testbed::rules::fast(second * 3, second, interval);
    bed.env.prometheus.set_rules(&rules(second * 4)).await?;
    bed.env.patch_config(r#"{"alertSource":"alerts"}"#)?;
    bed.env
        .collector
        .set_flow(Component::Gateway, "backend", Flow::AllDropped);
    bed.env
        .until_condition("backend", "False", "GatewayAllTelemetryDataDropped")
        .await?;
    bed.env.prometheus.restart().await?;
    let fired = bed.fired("AlertPollerPrometheusSettling").await;
    bed.env.prometheus.set_rules(&rules(second)).await?;
    bed.env.patch_config(r#"{"alertSource":"query"}"#)?;
    fired?;
    bed.env.mend_backend().await?;
    Ok(())
}

/// Another identity takes the Lease: the leader exits (a Deployment would
/// restart it, a standby now, as here), and no replica leads.
pub async fn a_lease_held_elsewhere_fires_no_leader(bed: &mut Bed) -> Result<()> {
    let renewed = serde_json::to_value(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        k8s_openapi::jiff::Timestamp::now(),
    ))?;
    let patch = json!({"spec": {
        "holderIdentity": "another-install",
        "leaseDurationSeconds": 3600,
        "renewTime": renewed,
    }});
    bed.env.kubectl(&[
        "-n",
        NAMESPACE,
        "patch",
        "lease",
        "alert-poller",
        "--type=merge",
        "-p",
        &patch.to_string(),
    ])?;
    let started = Instant::now();
    while bed
        .env
        .controller
        .as_mut()
        .is_some_and(ControllerProcess::alive)
    {
        ensure!(started.elapsed() < PATIENCE, "the leader kept running");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bed.env
        .start_controller("replica-a-restarted", &replica_args("replica-a"))?;
    until_leader_is(bed.env.controller(), 0.0).await?;
    let standby = bed.standby.as_ref().context("no standby")?;
    let targets = [
        target("replica-a", bed.env.controller()),
        target("replica-b", standby),
    ];
    bed.scraper.set_targets(&targets).await?;
    let alert = bed.fired("AlertPollerNoLeader").await?;
    ensure!(alert["labels"]["namespace"] == NAMESPACE, "{alert}");
    Ok(())
}

/// No replica left to scrape: only absent() can tell, and does.
pub async fn nothing_scraped_fires_absent(bed: &mut Bed) -> Result<()> {
    for mut replica in [bed.env.controller.take(), bed.standby.take()]
        .into_iter()
        .flatten()
    {
        replica.terminate(Duration::from_secs(5));
    }
    bed.fired("AlertPollerAbsent").await?;
    bed.scraper
        .until_inactive("AlertPollerNoLeader", PATIENCE)
        .await
}
