//! Phase locking against a rule evaluation the real Prometheus cannot be
//! made to run on demand: one that takes far longer than the one before it,
//! so a poll placed just after its expected end reads the group before the
//! evaluation has written its alerts. (Phase locking against the real
//! Prometheus is in tests/poller_prometheus.rs.)
//!
//! The stand-in answers by the clock. A 400 ms evaluation starts 50 ms
//! before the poller's first request; the evaluation before it took 5 ms.
//! Until it ends, `/api/v1/rules` shows the one before (Prometheus updates
//! a group's timing when its evaluation ends) and the `ALERTS` query holds
//! nothing; from then on the rules show it and the query holds the alert it
//! raised.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alert_poller::domain::health::Status;
use alert_poller_testbed::fake_prometheus::{Answer, FakePrometheus, Script};
use alert_poller_testbed::poller::{StandalonePoller, tuning};

const SLOW_EVALUATION_MS: i64 = 400;

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

/// `/api/v1/rules` with one group of our alerts, and one of another
/// team's rule with `others` active alerts, which a Prometheus before 2.49
/// lists in full.
fn rules(interval_s: u64, started_ms: i64, took_ms: i64, others: usize) -> String {
    let at =
        humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(started_ms as u64));
    let alert =
        r#"{"labels":{"alertname":"NoiseAlert","instance":"node-0"},"state":"firing","value":"1"}"#;
    let active = vec![alert; others].join(",");
    format!(
        r#"{{"status":"success","data":{{"groups":[{{"name":"telemetry-flow-health","file":"rules.yaml",
        "interval":{interval_s},"evaluationTime":{},"lastEvaluation":"{at}","rules":[
        {{"name":"MetricGatewayAllDataDropped","type":"alerting","alerts":[]}}]}},
        {{"name":"noise","file":"other.yaml","interval":{interval_s},"evaluationTime":0.001,
        "lastEvaluation":"{at}","rules":[{{"name":"NoiseAlert","type":"alerting","alerts":[{active}]}}]}}]}}}}"#,
        took_ms as f64 / 1000.0,
    )
}

/// The `ALERTS` answer: empty, or the alert the slow evaluation raised.
fn alerts(raised: bool) -> String {
    let sample = r#"{"metric":{"__name__":"ALERTS","alertname":"MetricGatewayAllDataDropped",
        "alertstate":"firing","pipeline_name":"a"},"value":[1796000000,"1"]}"#;
    format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{}]}}}}"#,
        if raised { sample } else { "" }
    )
}

/// A stand-in for a Prometheus whose group is evaluated every `interval_s`,
/// with `others` active alerts of another team.
async fn prometheus(interval_s: u64, others: usize) -> FakePrometheus {
    let first_request: Arc<Mutex<Option<i64>>> = Arc::default();
    let script = move |path: &str| {
        let now = unix_ms();
        let first = *first_request.lock().unwrap().get_or_insert(now);
        let started = first - 50;
        let ended = now >= started + SLOW_EVALUATION_MS;
        if path.ends_with("/api/v1/rules") {
            if ended {
                rules(interval_s, started, SLOW_EVALUATION_MS, others)
            } else {
                rules(interval_s, started - interval_s as i64 * 1000, 5, others)
            }
        } else {
            alerts(ended)
        }
    };
    FakePrometheus::start(Answer::Scripted(Script(Arc::new(script))))
        .await
        .expect("the stand-in starts")
}

fn poller(fake: &FakePrometheus) -> StandalonePoller {
    StandalonePoller::start(tuning(&[
        ("prometheusUrl", &fake.url()),
        ("phaseLock", "true"),
        ("alertSource", "query"),
    ]))
}

/// The first verdict the poller publishes for MetricPipeline `a`, and when.
async fn first_verdict(poller: &StandalonePoller) -> ((Status, String), Duration) {
    let started = Instant::now();
    loop {
        if let Some(verdict) = poller.verdict("a") {
            return (verdict, started.elapsed());
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no poll within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// At telemetry-manager's 30 s interval, a read that raced the evaluation
/// would show the pipeline healthy for a whole interval. The poller checks
/// its answer against the timing read after it, waits for the evaluation
/// to end and asks again: the first verdict it publishes is already the
/// alert's, within about the evaluation's duration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_that_read_a_slow_evaluation_halfway_is_asked_again() {
    // With another team's thousand alerts in the rules answer: at 30 s,
    // the check is worth its size.
    let fake = prometheus(30, 1000).await;
    let poller = poller(&fake);
    let (verdict, after) = first_verdict(&poller).await;
    assert_eq!(
        verdict,
        (Status::False, "GatewayAllTelemetryDataDropped".to_owned()),
        "the first verdict must not come from the half-evaluated read"
    );
    assert!(after < Duration::from_secs(3), "judged after {after:?}");
    assert!(poller.metrics.phase_rechecks.get() >= 1, "asked again");
    let queries = fake
        .seen()
        .iter()
        .filter(|s| s.path.ends_with("/api/v1/query"))
        .count();
    assert!(queries >= 2, "{queries} alert queries");
}

/// At a 1 s interval too, where the rules answer is small (Prometheus
/// 2.49 and later leave the alerts out of it; or few are active): the
/// check keeps to two requests per evaluation and lets the poll follow the
/// evaluation by a millisecond.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_group_with_a_small_rules_answer_is_checked_too() {
    let fake = prometheus(1, 0).await;
    let poller = poller(&fake);
    let (verdict, _) = first_verdict(&poller).await;
    assert_eq!(
        verdict,
        (Status::False, "GatewayAllTelemetryDataDropped".to_owned()),
        "the first verdict must not come from the half-evaluated read"
    );
    assert!(poller.metrics.phase_rechecks.get() >= 1, "asked again");
}

/// A group evaluated every second whose rules answer is large (another
/// team's thousand alerts, as a Prometheus before 2.49 lists them) is not
/// checked: reading that every second would cost more than a late read,
/// which costs it one second. The same stand-in shows the first verdict
/// from the half-evaluated read, healthy, and the alert at a later poll.
/// This is what the check above prevents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_group_with_a_large_rules_answer_is_not_checked() {
    let fake = prometheus(1, 1000).await;
    let poller = poller(&fake);
    let (verdict, _) = first_verdict(&poller).await;
    assert_eq!(verdict, (Status::True, "FlowHealthy".to_owned()));
    assert_eq!(poller.metrics.phase_rechecks.get(), 0);
    let started = Instant::now();
    while poller.verdict("a").is_some_and(|(s, _)| s == Status::True) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the alert was never seen"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
