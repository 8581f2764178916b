//! The two alert sources (`/api/v1/alerts` and the `ALERTS` query) agree
//! through a fire and a resolve, and a resolved alert does not linger in the
//! series after Prometheus restarts.

use alert_poller::domain::alerts::{ActiveAlert, AlertState, Matcher, Snapshot};
use alert_poller::domain::health::{self, LogSpec, PipelineFacts, Status};
use alert_poller::domain::kind::Kind;
use alert_poller::prometheus::{ClientSettings, PrometheusClient, series_max_age};
use alert_poller_testbed::collector::{Collector, Component, Flow, PipelineKind};
use alert_poller_testbed::poller::tuning;
use alert_poller_testbed::prometheus::{Prometheus, Setup};
use std::time::{Duration, Instant};

use super::*;

/// A trace, a metric and a log pipeline, and 30 other teams' alerts
/// firing in a Prometheus that evaluates every second.
async fn one_pipeline_per_kind_and_noise() -> (Collector, Prometheus) {
    let collector = Collector::start(&["m"]).await.expect("collector starts");
    collector.add_pipeline_of(PipelineKind::Trace, "t");
    collector.add_pipeline_of(PipelineKind::Log, "l");
    collector.set_noise(30);
    let second = Duration::from_secs(1);
    let prometheus = Prometheus::start(&Setup {
        rules: alert_poller_testbed::rules::with_noise(&alert_poller_testbed::rules::fast(
            second * 3,
            second,
            second,
        )),
        ..Setup::fast(collector.addr())
    })
    .await
    .expect("prometheus starts");
    prometheus
        .until_noise(30, PATIENCE)
        .await
        .expect("the unrelated alerts fire");
    (collector, prometheus)
}

/// Breaks (or mends) the trace pipeline's gateway and the metric agent
/// (scoped alerts) and throttles (or not) the log gateway (an unscoped one).
fn set_faults(collector: &Collector, broken: bool) {
    let flow = if broken {
        Flow::AllDropped
    } else {
        Flow::Healthy
    };
    collector.set_flow_of(PipelineKind::Trace, Component::Gateway, "t", flow);
    collector.set_flow_of(PipelineKind::Metric, Component::Agent, "m", flow);
    collector.set_throttling_of(PipelineKind::Log, broken);
}

/// What set_faults breaks, and the reason each break must give.
const BROKEN: [(Kind, &str, &str); 3] = [
    (Kind::Trace, "t", "GatewayAllTelemetryDataDropped"),
    (Kind::Metric, "m", "AgentAllTelemetryDataDropped"),
    (Kind::Log, "l", "GatewayThrottling"),
];

/// Marks each of [`BROKEN`] seen firing when the snapshot gives its reason,
/// and seen resolved when, once mended, it gives True again.
fn judge(series: &Snapshot, mended: bool, firing: &mut [bool; 3], resolved: &mut [bool; 3]) {
    let log = LogSpec {
        otlp_output: true,
        runtime_input: true,
        otlp_input: true,
    };
    for (i, (kind, name, reason)) in BROKEN.into_iter().enumerate() {
        let facts = PipelineFacts {
            log,
            ..PipelineFacts::new(kind, name)
        };
        let verdict = health::evaluate(facts, health::Knowledge::Fresh(series))
            .expect("fresh knowledge gives a verdict");
        if verdict.reason == reason {
            firing[i] = true;
        } else if mended && firing[i] && verdict.status == Status::True {
            resolved[i] = true;
        }
    }
}

/// A client of the Prometheus at `url` reading alerts from `source`, as the
/// poller would, to compare the sources answer by answer.
fn client_of(url: &str, source: &str) -> PrometheusClient {
    PrometheusClient::new(ClientSettings::first(&tuning(&[
        ("prometheusUrl", url),
        ("alertSource", source),
    ])))
    .expect("client builds")
}

/// The filtering is real: other teams' alerts are there in
/// `/api/v1/alerts`, and the query's answer, which leaves them out, is far
/// smaller (`query_bytes` against `alerts_bytes`).
async fn assert_the_query_leaves_the_noise_out(
    alerts: &PrometheusClient,
    query_bytes: usize,
    alerts_bytes: usize,
) {
    let everything = alerts.alerts().await.expect("alerts answer");
    assert!(
        everything
            .alerts
            .iter()
            .any(|a| a.labels.get("alertname") == Some("NoiseAlert")),
        "the unrelated alerts are there to be filtered"
    );
    assert!(
        query_bytes * 2 < alerts_bytes,
        "the query answer ({query_bytes} B) should be far smaller than /api/v1/alerts ({alerts_bytes} B)"
    );
}

/// The two alert sources, asked back to back through a fire and a resolve
/// of alerts of every kind, with other teams' alerts firing beside them:
/// the `ALERTS` query gives the very alerts `/api/v1/alerts` gives (same
/// label sets, same states, so the same verdicts), without the others.
/// Each query answer is bracketed by two `/api/v1/alerts` answers; when
/// those two agree, no evaluation changed anything in between and the query
/// must agree with them. When they differ, an evaluation ran meanwhile, and
/// as a group's rules are evaluated one after the other, an answer in the
/// middle may rightly hold some rules' new state and others' old one (seen
/// on Prometheus 3.12); those rounds are not compared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub async fn both_alert_sources_agree_through_a_fire_and_a_resolve() {
    let (collector, prometheus) = one_pipeline_per_kind_and_noise().await;
    let url = prometheus.url();
    let (alerts, query) = (client_of(&url, "alerts"), client_of(&url, "query"));
    let matchers = Matcher::all();
    let snapshot = |answer: Vec<_>| Snapshot::from_alerts(answer, &matchers);

    let mut seen_firing = [false; 3];
    let mut seen_resolved = [false; 3];
    let mut compared = 0;
    let (mut alerts_bytes, mut query_bytes) = (0, 0);
    let started = Instant::now();
    let mut broken = false;
    let mut mended = false;
    while !(mended && seen_resolved.iter().all(|s| *s)) {
        assert!(
            started.elapsed() < PATIENCE * 2,
            "not every fire and resolve was seen: fired {seen_firing:?}, resolved {seen_resolved:?}"
        );
        if !broken {
            set_faults(&collector, true);
            broken = true;
        } else if !mended && seen_firing.iter().all(|s| *s) {
            set_faults(&collector, false);
            mended = true;
        }
        let before = alerts.alerts_of_ours(None).await.expect("alerts answer");
        let series = query.alerts_of_ours(None).await.expect("query answers");
        let after = alerts.alerts_of_ours(None).await.expect("alerts answer");
        alerts_bytes = before.bytes;
        query_bytes = series.bytes;
        let (before, series, after) = (
            snapshot(before.alerts),
            snapshot(series.alerts),
            snapshot(after.alerts),
        );
        if before != after {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        assert_eq!(
            series, before,
            "the query's alerts differ from /api/v1/alerts' on both sides of it"
        );
        compared += 1;
        judge(&series, mended, &mut seen_firing, &mut seen_resolved);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_the_query_leaves_the_noise_out(&alerts, query_bytes, alerts_bytes).await;
    println!(
        "    {compared} bracketed comparisons; answers {query_bytes} B (query) vs {alerts_bytes} B (alerts)"
    );
}

/// Whether pipeline `a` has a firing metric alert among `alerts`: what
/// the poller would judge from them.
fn fires_for_a(alerts: Vec<ActiveAlert>) -> bool {
    let snapshot = Snapshot::from_alerts(
        alerts.into_iter().filter(|a| a.state == AlertState::Firing),
        &Matcher::all(),
    );
    snapshot.rules_for(Kind::Metric, "a").next().is_some()
}

/// An alert that stops firing while Prometheus is down gets no stale
/// marker, so after a restart its last `ALERTS` sample would answer a plain
/// query for the whole lookback delta. The poller's query bounds the sample
/// age by the rule groups' timing: the alert is gone within seconds, while
/// the unbounded query (the control) still shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub async fn a_resolved_alert_does_not_linger_in_the_series_after_a_restart() {
    let collector = Collector::start(&["a"]).await.expect("collector starts");
    let mut prometheus = Prometheus::start(&Setup::fast(collector.addr()))
        .await
        .expect("prometheus starts");
    let client = client_of(&prometheus.url(), "query");
    collector.set_flow(Component::Gateway, "a", Flow::AllDropped);
    until("a fires", || async {
        client
            .alerts_of_ours(None)
            .await
            .is_ok_and(|r| fires_for_a(r.alerts))
    })
    .await;
    let bound = series_max_age(
        &client
            .rule_timings(&["Metric"])
            .await
            .expect("the rule timing reads")
            .0,
    )
    .expect("the group has been evaluated");

    // Down while the flow mends; up again with its data.
    prometheus.kill().await;
    collector.set_flow(Component::Gateway, "a", Flow::Healthy);
    prometheus.restart().await.expect("prometheus restarts");
    // The rules run again: /api/v1/alerts no longer has the alert.
    until("the alert resolves after the restart", || async {
        client.alerts().await.is_ok_and(|r| !fires_for_a(r.alerts))
    })
    .await;
    let took = until("the bounded query drops the alert", || async {
        client
            .alerts_of_ours(Some(bound))
            .await
            .is_ok_and(|r| !fires_for_a(r.alerts))
    })
    .await;
    assert!(
        took <= bound + Duration::from_secs(2),
        "the bounded query kept the alert {took:?} (bound {bound:?})"
    );
    let unbounded = client.alerts_of_ours(None).await.expect("query answers");
    assert!(
        fires_for_a(unbounded.alerts),
        "the control: the unbounded query no longer shows the old alert, so this test shows nothing"
    );
    println!(
        "    bound {bound:?}: gone from the bounded query after {took:?}; the unbounded one still shows it"
    );
}
