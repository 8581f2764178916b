//! Faults, end to end: the real binary on the real control plane against the
//! real Prometheus, which the scenarios kill, freeze, slow down or replace
//! with a garbage-spewing stand-in; then the API server restarts, the tuning
//! ConfigMap is broken in every way, and SIGTERM lands mid-reconcile.
//!
//! What each scenario asserts is what README.md ("Under faults") promises.
//! The narrower per-error checks (every error class, the bearer token, TLS)
//! are in faults.rs and tls.rs, against the poller alone.

#[macro_use]
#[path = "support/env.rs"]
mod env;

#[path = "e2e_faults/prometheus.rs"]
mod prometheus;

use prometheus::*;

use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use alert_poller_testbed::collector::{Component, Flow};
use alert_poller_testbed::controller::ControllerProcess;
use alert_poller_testbed::freeze_proxy::FreezeProxy;
use anyhow::{Context as _, Result, bail, ensure};
use env::{CONDITION, Env, NAMESPACE, PATIENCE, install, tail};
use serde_json::Value;

/// The tuning `install` sets; the assertions below lean on these values.
const ERROR_MAX: Duration = Duration::from_secs(2);
const STALE_AFTER: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// Headroom for a reconcile and a status write on a busy 2-core machine.
const SLACK: Duration = Duration::from_millis(1500);

const PIPELINES: [&str; 2] = ["backend", "audit"];

/// Strips the terminal colour codes tracing's text format writes.
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The times of the controller's log lines that contain `needle`.
fn log_times(log: &str, needle: &str) -> Vec<SystemTime> {
    log.lines()
        .map(plain)
        .filter(|l| l.contains(needle))
        .filter_map(|l| humantime::parse_rfc3339(l.split_whitespace().next()?).ok())
        .collect()
}

/// Widest gap between consecutive times.
fn widest_gap(times: &[SystemTime]) -> Duration {
    times
        .windows(2)
        .filter_map(|w| w[1].duration_since(w[0]).ok())
        .max()
        .unwrap_or_default()
}

impl Env {
    fn point_at(&self, url: &str) -> Result<()> {
        self.patch_config(&format!(r#"{{"prometheusUrl":"{url}"}}"#))
    }

    async fn until_all(&self, status: &str, reason: &str) -> Result<Duration> {
        let started = Instant::now();
        for name in PIPELINES {
            self.until_condition(name, status, reason).await?;
        }
        Ok(started.elapsed())
    }

    async fn status_writes(&self) -> f64 {
        self.controller().status_writes().await
    }

    async fn failed_polls(&self, kind: &str) -> f64 {
        self.metric_or(
            &format!(r#"alert_poller_polls_total{{result="{kind}"}}"#),
            0.0,
        )
        .await
    }

    fn peak_rss_mib(&self) -> f64 {
        alert_poller_testbed::usage(self.controller().pid()).1 as f64 / 1024.0
    }

    fn still_running(&mut self) -> Result<()> {
        let alive = self.controller.as_mut().is_some_and(|c| c.alive());
        ensure!(
            alive,
            "the controller died:\n{}",
            tail(&self.controller().log(), 40)
        );
        Ok(())
    }
}

/// deploy/ installed, and the controller running as its ServiceAccount with
/// a lease long enough to ride out the API server restart below (a shorter
/// outage than the lease keeps the leader; a longer one makes it exit and be
/// restarted, by design).
async fn installed_and_running(env: &mut Env) -> Result<()> {
    install(env).await?;
    env.start_controller("faults", &["--lease-duration", "30s"])?;
    env.until_all("True", "FlowHealthy").await?;
    Ok(())
}

/// The tuning ConfigMap garbled, emptied and deleted: each time the last good
/// tuning (here a 300 ms fixed interval, and the Prometheus URL the flags do
/// not know) stays in force; a new valid ConfigMap is applied again.
const INTERVAL: &str = "alert_poller_poll_interval_seconds";
const SUCCESSES: &str = r#"alert_poller_polls_total{result="success"}"#;

/// Replaces the tuning ConfigMap (recreating it if deleted) with `data`.
fn replace_config(env: &Env, data: &str) -> Result<()> {
    let yaml = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: alert-poller\n  namespace: {NAMESPACE}\n{data}"
    );
    let verb = if env
        .kubectl(&["-n", NAMESPACE, "get", "configmap", "alert-poller"])
        .is_ok()
    {
        "replace"
    } else {
        "create"
    };
    env.kubectl
        .run_with_input(&[verb, "-f", "-"], Some(&yaml))?;
    Ok(())
}

/// Five more successful polls, still at the last good 300 ms interval.
async fn tuning_holds(env: &Env, what: &str) -> Result<()> {
    let polls = env.metric_or(SUCCESSES, 0.0).await;
    env.until_metric_at_least(SUCCESSES, polls + 5.0)
        .await
        .with_context(|| format!("polling stopped after the ConfigMap was {what}"))?;
    let now = env.controller().metric(INTERVAL).await;
    ensure!(
        now == Some(0.3),
        "after the ConfigMap was {what} the interval is {now:?}, not the last good 0.3"
    );
    Ok(())
}

async fn configmap_garbled_emptied_deleted(env: &mut Env) -> Result<()> {
    // Unlocked: the interval gauge then shows the schedule's own interval,
    // not the wait for the next evaluation.
    env.patch_config(
        r#"{"minInterval":"300ms","maxInterval":"300ms","backoffFactor":"1","phaseLock":"false"}"#,
    )?;
    env.until_metric(INTERVAL, 0.3).await?;

    replace_config(
        env,
        "data:\n  minInterval: \"\\u00ff\\u0000\"\n  backoffFactor: NaN\n  staleAfter: \"-5s\"\n  prometheusUrl: \"ftp://[::1\"\n",
    )?;
    env.until_metric("alert_poller_config_valid", 0.0).await?;
    tuning_holds(env, "garbled").await?;

    replace_config(env, "data: {}\n")?;
    let started = Instant::now();
    while env.events(NAMESPACE, "EmptyConfig")?.is_empty() {
        ensure!(started.elapsed() < PATIENCE, "no EmptyConfig event");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tuning_holds(env, "emptied").await?;

    env.kubectl(&["-n", NAMESPACE, "delete", "configmap", "alert-poller"])?;
    tuning_holds(env, "deleted").await?;

    let url = env.prometheus.url();
    replace_config(
        env,
        &format!(
            "data:\n  prometheusUrl: \"{url}\"\n  minInterval: 200ms\n  maxInterval: 1s\n  backoffFactor: \"2\"\n  errorMaxInterval: 2s\n  staleAfter: 5s\n  requestTimeout: 1s\n  connectTimeout: 500ms\n"
        ),
    )?;
    env.until_metric("alert_poller_config_valid", 1.0).await?;
    let started = Instant::now();
    while env.metric_or(INTERVAL, 0.0).await == 0.3 {
        ensure!(
            started.elapsed() < PATIENCE,
            "the recreated ConfigMap was not applied"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    env.still_running()
}

/// The API server (and etcd) restart while an alert starts: the controller's
/// watches resume, the alert's transition is written once the API is back, a
/// pipeline created after the restart is picked up, and the process never
/// restarts.
async fn kube_apiserver_restarted(env: &mut Env) -> Result<()> {
    let pid = env.controller().pid();
    let stopped = Instant::now();
    let plane = &mut env.plane;
    let restart = tokio::task::block_in_place(|| {
        // The alert starts while the API server is down.
        env.collector
            .set_flow(Component::Gateway, "audit", Flow::AllDropped);
        plane.restart()
    });
    restart?;
    println!(
        "    API server back after {:.1}s",
        stopped.elapsed().as_secs_f64()
    );
    env.until_condition("audit", "False", "GatewayAllTelemetryDataDropped")
        .await?;
    env.kubectl.run_with_input(
        &["apply", "-f", "-"],
        Some(r#"{"apiVersion":"telemetry.kyma-project.io/v1beta1","kind":"MetricPipeline","metadata":{"name":"after-restart"},"spec":{"output":{"otlp":{"endpoint":{"value":"http://backend:4317"}}}}}"#),
    )?;
    env.until_condition("after-restart", "True", "FlowHealthy")
        .await?;
    env.collector
        .set_flow(Component::Gateway, "audit", Flow::Healthy);
    env.until_all("True", "FlowHealthy").await?;
    env.kubectl(&["delete", "metricpipeline", "after-restart"])?;
    env.still_running()?;
    ensure!(env.controller().pid() == pid, "the controller restarted");
    Ok(())
}

/// Every condition on every pipeline is whole and agrees with itself.
fn conditions_are_whole(pipelines: &[Value]) -> Result<usize> {
    let mut with_condition = 0;
    for p in pipelines {
        let name = &p["metadata"]["name"];
        let Some(c) = p["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == CONDITION))
        else {
            continue;
        };
        with_condition += 1;
        for field in ["status", "reason", "message", "lastTransitionTime"] {
            ensure!(
                c[field].as_str().is_some_and(|v| !v.is_empty()),
                "{name}: condition without {field}: {c}"
            );
        }
        ensure!(
            c["observedGeneration"] == p["metadata"]["generation"],
            "{name}: observedGeneration {} for generation {}",
            c["observedGeneration"],
            p["metadata"]["generation"]
        );
        ensure!(
            (c["status"] == "True") == (c["reason"] == "FlowHealthy"),
            "{name}: status and reason disagree: {c}"
        );
    }
    Ok(with_condition)
}

/// SIGTERM while hundreds of first reconciles are writing status: the
/// process is gone within 5 s, every status written is whole (server-side
/// apply writes a condition entirely or not at all), and the next controller
/// finishes the job.
async fn sigterm_during_reconciles(env: &mut Env) -> Result<()> {
    const BULK: usize = 300;
    let mut stopped = env.controller.take().context("a controller runs")?;
    ensure!(
        stopped.terminate(Duration::from_secs(5)).is_some(),
        "the controller did not stop"
    );
    let list = bulk_pipelines(BULK);
    env.kubectl
        .run_with_input(&["apply", "-f", "-"], Some(&list))?;

    env.start_controller("faults-sigterm", &["--lease-duration", "30s"])?;
    // Wait for the first status writes, then stop it in the middle.
    let started = Instant::now();
    while env.status_writes().await < 1.0 {
        ensure!(started.elapsed() < PATIENCE, "no status write at all");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut controller = env.controller.take().expect("started");
    let took = controller.terminate(Duration::from_secs(5));
    let log = controller.log();
    drop(controller);
    let took =
        took.with_context(|| format!("still running 5 s after SIGTERM:\n{}", tail(&log, 20)))?;

    let pipelines = metric_pipelines(env)?;
    let written = conditions_are_whole(&pipelines)?;
    ensure!(
        written < pipelines.len(),
        "SIGTERM came only after every status was written; nothing was interrupted"
    );
    println!(
        "    stopped {:.0} ms after SIGTERM with {written} of {} pipelines written; all whole",
        took.as_secs_f64() * 1000.0,
        pipelines.len()
    );

    // The next controller completes what the first one left.
    env.start_controller("faults-after-sigterm", &["--lease-duration", "30s"])?;
    until_every_pipeline_is_written(env).await?;
    env.kubectl(&[
        "delete",
        "metricpipelines",
        "-l",
        "bulk=true",
        "--wait=false",
    ])?;
    Ok(())
}

/// A List of `count` MetricPipelines labelled `bulk=true`: enough first
/// reconciles that a SIGTERM lands among their status writes.
fn bulk_pipelines(count: usize) -> String {
    let items: Vec<String> = (0..count)
        .map(|i| {
            format!(
                r#"{{"apiVersion":"telemetry.kyma-project.io/v1beta1","kind":"MetricPipeline","metadata":{{"name":"bulk-{i}","labels":{{"bulk":"true"}}}},"spec":{{"output":{{"otlp":{{"endpoint":{{"value":"http://backend:4317"}}}}}}}}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"apiVersion":"v1","kind":"List","items":[{}]}}"#,
        items.join(",")
    )
}

/// Every MetricPipeline in the cluster, as the API server returns it.
fn metric_pipelines(env: &Env) -> Result<Vec<Value>> {
    let json = env.kubectl(&["get", "metricpipelines", "-o", "json"])?;
    let list: Value = serde_json::from_str(&json)?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

/// Waits until every MetricPipeline has a whole condition: what the next
/// controller must finish after the one stopped midway.
async fn until_every_pipeline_is_written(env: &Env) -> Result<()> {
    let started = Instant::now();
    loop {
        let pipelines = metric_pipelines(env)?;
        if conditions_are_whole(&pipelines)? == pipelines.len() {
            return Ok(());
        }
        if started.elapsed() > PATIENCE {
            bail!("not every pipeline got a condition after the restart");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Liveness means progress: with the API server taking requests and never
/// answering (a proxy that freezes), a status write hangs (the client waits
/// up to 295 s), and `/healthz` fails within `--stuck-after`, naming the
/// stuck reconcile, so the kubelet would restart the replica. Once the API
/// server answers again the write lands and `/healthz` is fine.
async fn a_reconcile_stuck_on_the_api_server_fails_liveness(env: &mut Env) -> Result<()> {
    let kubeconfig = std::fs::read_to_string(env.service_account_kubeconfig()?)?;
    let server = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: https://"))
        .context("the kubeconfig names its server")?
        .to_owned();
    let proxy = FreezeProxy::start(server.parse()?).await?;
    let through = env.plane.dir().join("frozen.kubeconfig");
    std::fs::write(
        &through,
        kubeconfig.replace(&server, &proxy.addr().to_string()),
    )?;
    env.controller
        .take()
        .context("a controller runs")?
        .terminate(Duration::from_secs(5));
    let mut frozen = ControllerProcess::start_with(
        std::path::Path::new(env!("CARGO_BIN_EXE_alert-poller")),
        &through,
        NAMESPACE,
        &env.plane.dir().join("stuck.log"),
        &["--stuck-after", "3s", "--leader-election=false"],
    )?;
    let result = stuck_write_fails_liveness(env, &proxy, &frozen).await;
    proxy.thaw();
    frozen.terminate(Duration::from_secs(5));
    env.collector
        .set_flow(Component::Gateway, "backend", Flow::Healthy);
    env.start_controller("faults", &["--lease-duration", "30s"])?;
    env.until_all("True", "FlowHealthy").await?;
    result.with_context(|| format!("controller log tail:\n{}", tail(&frozen.log(), 20)))
}

async fn stuck_write_fails_liveness(
    env: &Env,
    proxy: &FreezeProxy,
    controller: &ControllerProcess,
) -> Result<()> {
    let probe = |path: &'static str| async move { controller.get(path).await.unwrap_or_default() };
    until(|| async { probe("/readyz").await.0 == 200 }, "ready").await?;
    ensure!(probe("/healthz").await.0 == 200, "alive before the freeze");
    proxy.freeze();
    env.collector
        .set_flow(Component::Gateway, "backend", Flow::SomeDropped);
    let frozen_at = Instant::now();
    until(
        || async { probe("/healthz").await.0 == 500 },
        "/healthz failing",
    )
    .await?;
    let (_, body) = probe("/healthz").await;
    ensure!(
        body.contains("reconcile metric/backend"),
        "names the stuck reconcile: {body}"
    );
    println!(
        "    /healthz failed {:.1}s after the freeze: {}",
        frozen_at.elapsed().as_secs_f64(),
        body.trim()
    );
    proxy.thaw();
    env.until_condition("backend", "False", "GatewaySomeTelemetryDataDropped")
        .await?;
    until(
        || async { probe("/healthz").await.0 == 200 },
        "/healthz fine again",
    )
    .await
}

/// Waits until `check` holds, for at most [`PATIENCE`].
async fn until<F, Fut>(check: F, what: &str) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        ensure!(started.elapsed() < PATIENCE, "never {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

fn main() -> ExitCode {
    env::run(
        "e2e_faults",
        &scenarios![
            installed_and_running,
            prometheus_killed_longer_than_stale_after,
            prometheus_hung_by_sigstop,
            slow_prometheus_behind_a_proxy,
            garbage_from_prometheus,
            configmap_garbled_emptied_deleted,
            a_reconcile_stuck_on_the_api_server_fails_liveness,
            kube_apiserver_restarted,
            sigterm_during_reconciles,
        ],
    )
}
