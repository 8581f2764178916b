//! The faults on the Prometheus side: killed for longer than `staleAfter`,
//! hung by SIGSTOP, slow behind a proxy, answering garbage.

use crate::env::{Env, tail};
use alert_poller_testbed::collector::{Component, Flow};
use alert_poller_testbed::fake_prometheus::{Answer, FakePrometheus};
use alert_poller_testbed::signal::{self, Signal};
use alert_poller_testbed::slow_proxy::SlowProxy;
use anyhow::{Context as _, Result, ensure};
use std::time::{Duration, Instant};

use super::*;

/// Prometheus dies for longer than `staleAfter`, and an alert starts while it
/// is down. The controller keeps running, retries no slower than
/// `errorMaxInterval`, turns every pipeline Unknown exactly once (no flood of
/// writes), and after Prometheus returns applies the alert that started
/// during the outage.
pub async fn prometheus_killed_longer_than_stale_after(env: &mut Env) -> Result<()> {
    let writes_before = env.status_writes().await;
    let killed = Instant::now();
    env.prometheus.kill().await;
    env.collector
        .set_flow(Component::Gateway, "backend", Flow::AllDropped);
    env.until_all("Unknown", "GatewayProbingFailed").await?;
    let unknown_after = killed.elapsed();
    ensure!(
        unknown_after <= STALE_AFTER + ERROR_MAX + SLACK,
        "Unknown only after {unknown_after:?}"
    );
    let condition = env.condition("backend")?.context("a condition")?;
    ensure!(
        condition["message"].as_str().is_some_and(|m| !m.is_empty()),
        "the Unknown condition says why: {condition}"
    );
    // Down for twice staleAfter in all.
    tokio::time::sleep((STALE_AFTER * 2).saturating_sub(killed.elapsed())).await;
    env.still_running()?;
    the_outage_wrote_once_per_pipeline_and_retried_steadily(env, writes_before, unknown_after)
        .await?;

    env.prometheus.restart().await?;
    let back = Instant::now();
    env.until_condition("audit", "True", "FlowHealthy").await?;
    let healthy_after = back.elapsed();
    ensure!(
        healthy_after <= ERROR_MAX + SLACK,
        "audit healthy again only {healthy_after:?} after Prometheus returned"
    );
    env.until_condition("backend", "False", "GatewayAllTelemetryDataDropped")
        .await?;
    println!(
        "    healthy {:.1}s after Prometheus returned; the outage's alert applied after {:.1}s",
        healthy_after.as_secs_f64(),
        back.elapsed().as_secs_f64()
    );
    env.collector
        .set_flow(Component::Gateway, "backend", Flow::Healthy);
    env.until_all("True", "FlowHealthy").await?;
    Ok(())
}

/// During the outage each pipeline was written once (Unknown), not once per
/// failed poll, and the failed polls came no further apart than
/// `errorMaxInterval`.
async fn the_outage_wrote_once_per_pipeline_and_retried_steadily(
    env: &Env,
    writes_before: f64,
    unknown_after: Duration,
) -> Result<()> {
    let writes = env.status_writes().await - writes_before;
    // Every pipeline of every kind (the samples include trace and log ones)
    // turns Unknown once.
    let pipelines = env
        .kubectl(&[
            "get",
            "metricpipelines,tracepipelines,logpipelines",
            "-o",
            "name",
        ])?
        .lines()
        .count();
    ensure!(
        writes == pipelines as f64,
        "{writes} status writes during the outage; one per pipeline ({pipelines}) expected"
    );
    let failures = log_times(&env.controller().log(), "poll of Prometheus alerts failed");
    let gap = widest_gap(&failures);
    ensure!(
        failures.len() >= 4 && gap <= ERROR_MAX + Duration::from_millis(300),
        "{} failed polls, widest gap {gap:?} (errorMaxInterval {ERROR_MAX:?})",
        failures.len()
    );
    println!(
        "    Unknown {:.1}s after the kill; {} retries, widest gap {:.2}s; {writes} writes",
        unknown_after.as_secs_f64(),
        failures.len(),
        gap.as_secs_f64()
    );
    Ok(())
}

/// Prometheus frozen (SIGSTOP): the TCP connection opens but no answer comes.
/// Each poll ends at `requestTimeout` with a timeout error, the pipelines go
/// Unknown after `staleAfter`, and come back when Prometheus thaws.
pub async fn prometheus_hung_by_sigstop(env: &mut Env) -> Result<()> {
    let pid = env.prometheus.pid().context("Prometheus runs")?;
    let timeouts = env.failed_polls("timeout").await;
    signal::send(pid, Signal::Stop)?;
    let outcome = async {
        env.until_metric_at_least(
            r#"alert_poller_polls_total{result="timeout"}"#,
            timeouts + 2.0,
        )
        .await?;
        env.until_all("Unknown", "GatewayProbingFailed").await?;
        env.still_running()
    }
    .await;
    signal::send(pid, Signal::Cont)?;
    outcome?;
    let log = env.controller().log();
    ensure!(
        log.lines()
            .map(plain)
            .any(|l| l.contains("poll of Prometheus alerts failed") && l.contains("timeout")),
        "no timeout error in the log:\n{}",
        tail(&log, 20)
    );
    env.until_all("True", "FlowHealthy").await?;
    Ok(())
}

/// A slow path to Prometheus: answers slower than usual but within
/// `requestTimeout` keep everything healthy; slower than that time out and
/// turn the pipelines Unknown; fast again, healthy again.
pub async fn slow_prometheus_behind_a_proxy(env: &mut Env) -> Result<()> {
    let proxy = SlowProxy::start(&env.prometheus.url()).await?;
    env.point_at(&proxy.url())?;
    proxy.set_delay(REQUEST_TIMEOUT / 2);
    let polls = env
        .metric_or(r#"alert_poller_polls_total{result="success"}"#, 0.0)
        .await;
    env.until_metric_at_least(r#"alert_poller_polls_total{result="success"}"#, polls + 3.0)
        .await?;
    for name in PIPELINES {
        ensure!(
            env.condition(name)?.is_some_and(|c| c["status"] == "True"),
            "{name} stays healthy with slow but timely answers"
        );
    }
    let timeouts = env.failed_polls("timeout").await;
    proxy.set_delay(REQUEST_TIMEOUT * 3);
    env.until_metric_at_least(
        r#"alert_poller_polls_total{result="timeout"}"#,
        timeouts + 2.0,
    )
    .await?;
    env.until_all("Unknown", "GatewayProbingFailed").await?;
    proxy.set_delay(Duration::ZERO);
    env.until_all("True", "FlowHealthy").await?;
    env.point_at(&env.prometheus.url())?;
    env.still_running()
}

/// A Prometheus that answers with garbage, one kind after the other: each is
/// counted under its own error class, the controller's memory stays bounded
/// by the response cap (`maxResponseBytes`, 4 MiB here) even against a 100 MB
/// body, no pipeline keeps a stale healthy status, and the real Prometheus
/// brings them back.
pub async fn garbage_from_prometheus(env: &mut Env) -> Result<()> {
    const CAP_MIB: f64 = 4.0;
    let fake = FakePrometheus::start(Answer::NoAlerts).await?;
    env.patch_config(&format!(
        r#"{{"prometheusUrl":"{}","maxResponseBytes":"{CAP_MIB}Mi"}}"#,
        fake.url()
    ))?;
    let rss_before = env.peak_rss_mib();
    for (kind, answer) in garbage_answers() {
        fake.set(answer);
        let before = env.failed_polls(kind).await;
        env.until_metric_at_least(
            &format!(r#"alert_poller_polls_total{{result="{kind}"}}"#),
            before + 1.0,
        )
        .await
        .with_context(|| format!("no {kind} error"))?;
        env.still_running()?;
    }
    // All that took longer than staleAfter without one good answer.
    env.until_all("Unknown", "GatewayProbingFailed").await?;
    let rss_after = env.peak_rss_mib();
    // The body buffer may double past the cap once; the rest is allocator slack.
    ensure!(
        rss_after < rss_before + 2.0 * CAP_MIB + 16.0,
        "peak RSS grew from {rss_before:.0} to {rss_after:.0} MiB against a 100 MB body"
    );
    println!("    peak RSS {rss_before:.0} MiB before, {rss_after:.0} MiB after a 100 MB answer");
    let log = env.controller().log();
    for needle in ["500", "503", "text/html", "larger than the limit"] {
        ensure!(
            log.lines()
                .map(plain)
                .any(|l| l.contains("poll of Prometheus alerts failed") && l.contains(needle)),
            "no poll error mentioning {needle:?}:\n{}",
            tail(&log, 30)
        );
    }
    env.patch_config(&format!(
        r#"{{"prometheusUrl":"{}","maxResponseBytes":null}}"#,
        env.prometheus.url()
    ))?;
    env.until_all("True", "FlowHealthy").await?;
    Ok(())
}

/// The kinds of garbage, one after the other, each with the error class its
/// failed poll must be counted under: error statuses, a body that is not
/// JSON or is cut short, the wrong content type, and one past the cap.
fn garbage_answers() -> [(&'static str, Answer); 6] {
    let raw = |status: u16, content_type: &'static str, body: &str, retry_after| Answer::Raw {
        status,
        content_type,
        body: body.as_bytes().to_vec(),
        retry_after,
    };
    [
        (
            "http_status",
            raw(500, "text/plain", "internal error", None),
        ),
        ("retry_later", raw(503, "text/plain", "overloaded", Some(1))),
        (
            "decode",
            raw(200, "application/json", "not json at all", None),
        ),
        (
            "decode",
            raw(
                200,
                "application/json",
                r#"{"status":"success","data":{"ale"#,
                None,
            ),
        ),
        (
            "content_type",
            raw(200, "text/html", "<html>login</html>", None),
        ),
        ("too_large", Answer::Huge { bytes: 100 << 20 }),
    ]
}
