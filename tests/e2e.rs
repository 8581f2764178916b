//! End to end: a real kube-apiserver and etcd (tests/controlplane/), a real
//! Prometheus, `kubectl apply -k deploy/`, and the real `alert-poller` binary
//! running out of cluster with the token of the ServiceAccount deploy/
//! creates, so deploy/'s RBAC is what the controller gets.
//!
//! One environment serves all scenarios, which run in order and build on each
//! other (see support/env.rs). The fault scenarios are in e2e_faults.rs.

#[macro_use]
#[path = "support/env.rs"]
mod env;

#[path = "e2e/kinds.rs"]
mod kinds;
#[path = "e2e/leadership.rs"]
mod leadership;

use kinds::*;
use leadership::*;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use alert_poller_testbed::collector::{Component, Flow};
use anyhow::{Context as _, Result, ensure};
use env::{Env, NAMESPACE, PATIENCE, install, tail};
use serde_json::Value;

/// TCP ports a process listens on: its socket inodes (from /proc/PID/fd)
/// matched against the LISTEN entries of /proc/net/tcp and tcp6.
fn listening_ports(pid: u32) -> Vec<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.display().to_string();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let mut ports = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
        {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is field 1 (ADDR:PORT in hex), st is 3 (0A = LISTEN), inode is 9.
            if f.len() > 9
                && f[3] == "0A"
                && inodes.iter().any(|i| i == f[9])
                && let Some(port) = f[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
            {
                ports.push(port);
            }
        }
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// The controller runs with the ServiceAccount's token and marks both sample
/// pipelines healthy, writing with its own field manager on the status only.
async fn controller_runs_as_its_service_account(env: &mut Env) -> Result<()> {
    let kubeconfig = env.service_account_kubeconfig()?;
    token_is_the_service_accounts_and_no_more(env, &kubeconfig.display().to_string())?;

    env.start_controller("alert-poller", &[])?;
    for name in ["backend", "audit"] {
        env.until_condition(name, "True", "FlowHealthy").await?;
    }
    only_the_metrics_port_listens(env)?;
    let (status, body) = env
        .controller()
        .get("/readyz")
        .await
        .context("readyz unreachable")?;
    ensure!(
        status == 200,
        "not ready: {body}\n{}",
        tail(&env.controller().log(), 20)
    );
    the_controller_applies_only_the_status(env)
}

/// The token is really the ServiceAccount's, and it may not do more than
/// deploy/ grants: what the controller can do is what deploy/ gives it.
fn token_is_the_service_accounts_and_no_more(env: &Env, kubeconfig: &str) -> Result<()> {
    let who = env.kubectl(&[
        "--kubeconfig",
        kubeconfig,
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ])?;
    ensure!(
        who == "system:serviceaccount:alert-poller:alert-poller",
        "token is {who}"
    );
    let denied = env.kubectl(&[
        "--kubeconfig",
        kubeconfig,
        "auth",
        "can-i",
        "update",
        "metricpipelines",
    ]);
    ensure!(
        denied.is_err(),
        "the ServiceAccount must not update pipelines: {denied:?}"
    );
    Ok(())
}

/// The one port is the metrics port: no webhook, nothing else that a
/// NetworkPolicy or Service would have to know about.
fn only_the_metrics_port_listens(env: &Env) -> Result<()> {
    let listening = listening_ports(env.controller().pid());
    let metrics_port: u16 = env
        .controller()
        .base_url()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()?;
    ensure!(
        listening == vec![metrics_port],
        "listens on {listening:?}, not only on {metrics_port}"
    );
    Ok(())
}

/// The controller writes with its own field manager, by server-side apply,
/// on the status subresource only, and leaves the spec as it was.
fn the_controller_applies_only_the_status(env: &Env) -> Result<()> {
    let managed = env.kubectl(&[
        "get",
        "metricpipeline",
        "backend",
        "-o",
        "json",
        "--show-managed-fields",
    ])?;
    let managed: Value = serde_json::from_str(&managed)?;
    let ours = managed["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["manager"] == "alert-poller")
        .context("no managedFields entry for alert-poller")?;
    ensure!(
        ours["operation"] == "Apply" && ours["subresource"] == "status",
        "{ours}"
    );
    ensure!(
        managed["spec"]["input"]["prometheus"]["namespaces"]["exclude"][0] == "kube-system",
        "the spec is untouched"
    );
    Ok(())
}

/// The gateway of "backend" drops everything: exactly "backend" goes False
/// with the right reason and an event; "audit" is not touched; then back.
async fn a_drop_alert_turns_exactly_that_pipeline_false_and_back(env: &mut Env) -> Result<()> {
    let audit_before = env.condition("audit")?.context("audit has a condition")?;
    env.collector
        .set_flow(Component::Gateway, "backend", Flow::AllDropped);
    let failed = env
        .until_condition("backend", "False", "GatewayAllTelemetryDataDropped")
        .await?;
    ensure!(
        env.condition("audit")? == Some(audit_before.clone()),
        "audit was rewritten"
    );
    let events = env.events("default", "GatewayAllTelemetryDataDropped")?;
    ensure!(
        events
            .iter()
            .any(|e| e["regarding"]["name"] == "backend" && e["type"] == "Warning"),
        "no Warning event for backend: {events:?}"
    );

    // `lastTransitionTime` has whole seconds: recover at least a second after
    // the False write, or both writes may fall in the same second and the
    // check below could not tell a moved time from a kept one.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let healthy = env.mend_backend().await?;
    ensure!(
        healthy["lastTransitionTime"] != failed["lastTransitionTime"],
        "the transition time moved with the status"
    );
    ensure!(
        env.condition("audit")? == Some(audit_before),
        "audit was rewritten"
    );
    Ok(())
}

/// Waits for an InvalidConfig Warning on the ConfigMap whose note names
/// every one of `words`.
async fn until_config_warning(env: &Env, words: &[&str]) -> Result<()> {
    let started = Instant::now();
    loop {
        let events = env.events(NAMESPACE, "InvalidConfig")?;
        if events.iter().any(|e| {
            e["regarding"]["name"] == "alert-poller"
                && e["type"] == "Warning"
                && e["note"]
                    .as_str()
                    .is_some_and(|n| words.iter().all(|w| n.contains(w)))
        }) {
            return Ok(());
        }
        ensure!(
            started.elapsed() < PATIENCE,
            "no InvalidConfig event naming {words:?}: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `alert-poller check --all` as an operator runs it, with the admin's
/// kubeconfig: every pipeline of the cluster, each verdict beside the
/// condition the controller wrote, and exit 3 for scripts while one is
/// unhealthy.
async fn check_all_judges_every_pipeline_of_the_cluster(env: &mut Env) -> Result<()> {
    env.collector
        .set_flow(Component::Gateway, "backend", Flow::SomeDropped);
    env.until_condition("backend", "False", "GatewaySomeTelemetryDataDropped")
        .await?;
    let kubeconfig = env.kubectl.kubeconfig().display().to_string();
    let url = env.prometheus.url();
    let check = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_alert-poller"))
            .args(["check", "--all", "--kubeconfig", &kubeconfig])
            .args(["--prometheus-url", &url])
            .args(extra)
            .output()
    };
    let json = check(&["-o", "json", "--fail-on-unhealthy"])?;
    ensure!(
        json.status.code() == Some(3),
        "exit 3 while backend drops: {json:?}"
    );
    let reports: Vec<Value> = serde_json::from_slice(&json.stdout)?;
    let names: Vec<_> = reports
        .iter()
        .map(|r| (r["kind"].as_str(), r["pipeline"].as_str()))
        .collect();
    ensure!(
        names
            == [
                (Some("metric"), Some("audit")),
                (Some("metric"), Some("backend")),
                (Some("trace"), Some("traces")),
                (Some("log"), Some("app-logs")),
                (Some("log"), Some("legacy-logs")),
            ],
        "every pipeline, by kind then name: {names:?}"
    );
    for r in &reports {
        ensure!(
            r["status"] == r["current"]["status"] && r["reason"] == r["current"]["reason"],
            "the verdict matches what the controller wrote: {r}"
        );
    }
    let wide = String::from_utf8(check(&["-o", "wide"])?.stdout)?;
    ensure!(
        wide.contains("The metric gateway drops part of the data"),
        "wide shows the message: {wide}"
    );
    let table = check(&[])?;
    let text = String::from_utf8(table.stdout)?;
    ensure!(
        table.status.success() && text.contains("GatewaySomeTelemetryDataDropped"),
        "{text}"
    );
    println!("    check --all:\n{text}");
    env.mend_backend().await?;
    Ok(())
}

/// A ConfigMap patch retunes the poller without a restart; a bad value is
/// refused with a Warning Event and the last good tuning stays.
async fn configmap_patch_retunes_without_restart(env: &mut Env) -> Result<()> {
    let pid = env.controller().pid();
    // Unlocked: the interval gauge then shows the schedule's own interval,
    // not the wait for the next evaluation.
    env.patch_config(
        r#"{"minInterval":"300ms","maxInterval":"300ms","backoffFactor":"1","phaseLock":"false"}"#,
    )?;
    env.until_metric("alert_poller_poll_interval_seconds", 0.3)
        .await?;

    // A trap is refused like a typo: polls as far apart as staleAfter (5s
    // here) would leave every pipeline Unknown between them.
    env.patch_config(r#"{"maxInterval":"5s"}"#)?;
    env.until_metric("alert_poller_config_valid", 0.0).await?;
    until_config_warning(env, &["maxInterval", "staleAfter"]).await?;
    env.patch_config(r#"{"maxInterval":"300ms"}"#)?;
    env.until_metric("alert_poller_config_valid", 1.0).await?;

    env.patch_config(r#"{"minInterval":"bogus"}"#)?;
    env.until_metric("alert_poller_config_valid", 0.0).await?;
    until_config_warning(env, &["minInterval", "bogus"]).await?;
    // The last good tuning stays in force over several more polls.
    let polls = env
        .controller()
        .metric(r#"alert_poller_polls_total{result="success"}"#)
        .await
        .unwrap_or(0.0);
    env.until_metric(r#"alert_poller_polls_total{result="success"}"#, polls + 5.0)
        .await?;
    ensure!(
        env.controller()
            .metric("alert_poller_poll_interval_seconds")
            .await
            == Some(0.3),
        "the last good interval stays"
    );
    ensure!(
        env.controller.as_mut().unwrap().alive() && env.controller().pid() == pid,
        "no restart"
    );

    env.patch_config(r#"{"minInterval":"200ms"}"#)?;
    env.until_metric("alert_poller_config_valid", 1.0).await?;
    Ok(())
}

/// Deleting a pipeline while its alerts change causes no errors: the
/// re-queue of a pipeline that is gone is a no-op.
async fn deleting_a_pipeline_while_polling_is_quiet(env: &mut Env) -> Result<()> {
    async fn requeued(env: &Env) -> f64 {
        env.controller()
            .metric_sum(
                "alert_poller_pipelines_requeued_total",
                &[("kind", "metric")],
            )
            .await
    }
    let before = requeued(env).await;
    env.kubectl(&["delete", "metricpipeline", "audit", "--wait=true"])?;
    env.collector
        .set_flow(Component::Gateway, "audit", Flow::AllDropped);
    let started = Instant::now();
    while requeued(env).await <= before {
        ensure!(
            started.elapsed() < PATIENCE,
            "the alert for the deleted pipeline never re-queued it"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    env.collector
        .set_flow(Component::Gateway, "audit", Flow::Healthy);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let errors = env
        .controller()
        .metric_sum(
            "alert_poller_reconciles_total",
            &[("result", "status_write_error")],
        )
        .await;
    ensure!(errors == 0.0, "reconcile errors: {errors}");
    let failed = env
        .controller()
        .metric_sum("alert_poller_reconciles_total", &[])
        .await
        - env
            .controller()
            .metric_sum("alert_poller_reconciles_total", &[("result", "success")])
            .await;
    ensure!(failed == 0.0, "{failed} reconciles failed");
    ensure!(
        env.controller.as_mut().unwrap().alive(),
        "the controller is still running"
    );
    Ok(())
}

fn main() -> ExitCode {
    env::run(
        "e2e",
        &scenarios![
            install,
            controller_runs_as_its_service_account,
            a_drop_alert_turns_exactly_that_pipeline_false_and_back,
            every_kind_goes_false_with_its_own_reason_and_back,
            check_all_judges_every_pipeline_of_the_cluster,
            configmap_patch_retunes_without_restart,
            deleting_a_pipeline_while_polling_is_quiet,
            sigterm_stops_within_five_seconds,
            leader_failover,
            a_standby_cut_off_from_the_api_server_is_not_ready,
        ],
    )
}
