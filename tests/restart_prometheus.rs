//! A real Prometheus restarts while an alert fires, for each alert source,
//! with and without a `for` on the rules: the poller never judges the
//! pipeline whose alert keeps firing healthy, nor the healthy one unhealthy.
//!
//! Beside the poller a control reads the same source the naive way (each
//! answer taken at its word) and records for how long after the restart the
//! firing alert was missing from it or pending: the window in which a
//! reader would have written a false "healthy". Run on Debian's 2.42 and
//! again on Prometheus 3 (scripts/test.sh).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alert_poller::config::Tuning;
use alert_poller::domain::alerts::{AlertState, Matcher, Snapshot};
use alert_poller::domain::health::{self, PipelineFacts, Status};
use alert_poller::domain::kind::Kind;
use alert_poller::prometheus::{ClientSettings, PrometheusClient, series_max_age};
use alert_poller_testbed::collector::{Collector, Component, Flow};
use alert_poller_testbed::poller::{StandalonePoller, tuning, until_judged};
use alert_poller_testbed::prometheus::{Prometheus, Setup};
use alert_poller_testbed::rules;

const PATIENCE: Duration = Duration::from_secs(60);
const SECOND: Duration = Duration::from_secs(1);

/// What the poller's view said of the two pipelines, every time it changed.
#[derive(Default)]
struct Seen {
    firing_healthy: Vec<String>,
    healthy_unhealthy: Vec<String>,
    settling_views: usize,
}

/// A collector with a `firing` and a `healthy` pipeline, scraped by a
/// Prometheus whose rules hold `hold` as their `for`.
async fn bed(hold: Duration) -> (Collector, Prometheus) {
    let collector = Collector::start(&["firing", "healthy"])
        .await
        .expect("collector starts");
    // A rate window longer than a restart's gap in the scrapes (the
    // downtime, and up to 5 s until a restarted Prometheus' target
    // discovery first updates and it scrapes again): a shorter window would
    // honestly run empty and resolve the alert. The manager's 5 m windows
    // do not.
    let setup = Setup {
        rules: rules::fast(20 * SECOND, hold, SECOND),
        ..Setup::fast(collector.addr())
    };
    let prometheus = Prometheus::start(&setup).await.expect("prometheus starts");
    (collector, prometheus)
}

/// Unlocked, ten polls a second: some land in every gap after the
/// restart, whatever its phase. The poller and the control share it.
fn polling_every_gap(url: &str, source: &str) -> Tuning {
    tuning(&[
        ("prometheusUrl", url),
        ("alertSource", source),
        ("phaseLock", "false"),
        ("minInterval", "100ms"),
        ("maxInterval", "100ms"),
        ("staleAfter", "60s"),
        ("requestTimeout", "1s"),
        ("connectTimeout", "500ms"),
        ("errorMaxInterval", "1s"),
    ])
}

/// The control: the naive reading after the restart, until the alert fires
/// in it again. Returns for how long it was missing or pending, the window
/// in which a naive reader would have written a false "healthy".
async fn missing_from_the_naive_reading(
    client: &PrometheusClient,
    bound: Option<Duration>,
    restarted: Instant,
    hold: Duration,
) -> Duration {
    let mut missing = Duration::ZERO;
    let mut last = Instant::now();
    loop {
        let answer = client.alerts_of_ours(bound).await;
        let firing = answer.is_ok_and(|r| fires_for(r.alerts, "firing"));
        if !firing {
            missing += last.elapsed();
        }
        last = Instant::now();
        if firing && restarted.elapsed() > hold + 2 * SECOND {
            break;
        }
        assert!(
            restarted.elapsed() < PATIENCE,
            "the alert never fired again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    missing
}

/// The point of the test: through the restart, the poller's view never
/// judged either pipeline wrong. `case` names the run in the messages.
fn assert_never_misjudged(seen: &Seen, case: &str) {
    assert!(
        seen.firing_healthy.is_empty(),
        "{case}: the firing pipeline was judged healthy: {:?}",
        seen.firing_healthy
    );
    assert!(
        seen.healthy_unhealthy.is_empty(),
        "{case}: the healthy pipeline was judged unhealthy: {:?}",
        seen.healthy_unhealthy
    );
}

/// Restarts Prometheus after `down` of downtime while `firing`'s alert
/// fires, its rules holding `hold` as their `for`.
async fn restart_while_firing(source: &str, hold: Duration, down: Duration) {
    let (collector, mut prometheus) = bed(hold).await;
    let url = prometheus.url();
    let poller = StandalonePoller::start(polling_every_gap(&url, source));
    collector.set_flow(Component::Gateway, "firing", Flow::AllDropped);
    until_judged(
        &[("poller", &poller)],
        &[
            ("firing", Status::False, "GatewayAllTelemetryDataDropped"),
            ("healthy", Status::True, "FlowHealthy"),
        ],
        PATIENCE,
    )
    .await
    .unwrap();

    let seen = Arc::new(Mutex::new(Seen::default()));
    let recorder = tokio::spawn(record(poller.view.clone(), seen.clone()));
    let client =
        PrometheusClient::new(ClientSettings::first(&polling_every_gap(&url, source))).unwrap();
    let bound = series_max_age(&client.rule_timings(&["Metric"]).await.unwrap().0);

    let restarted = Instant::now();
    prometheus.kill().await;
    tokio::time::sleep(down).await;
    prometheus.restart().await.expect("prometheus restarts");
    let up = restarted.elapsed();
    let missing = missing_from_the_naive_reading(&client, bound, restarted, hold).await;
    // Settling (two intervals and slack) is over by now; give the poller
    // a few more evaluations past it.
    tokio::time::sleep(4 * SECOND).await;
    recorder.abort();
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    println!(
        "    {source}, for {hold:?}, down {down:?}: up again in {:.1}s; the naive reading missed the firing alert for {:.1}s; the poller's view settled over {} changes",
        up.as_secs_f64(),
        missing.as_secs_f64(),
        seen.settling_views
    );
    assert_never_misjudged(&seen, &format!("{source}, for {hold:?}, down {down:?}"));
    // Not stuck: a real resolve after the restart is seen.
    collector.set_flow(Component::Gateway, "firing", Flow::Healthy);
    until_judged(
        &[("poller", &poller)],
        &[("firing", Status::True, "FlowHealthy")],
        PATIENCE,
    )
    .await
    .unwrap();
}

/// Whether `pipeline` has a firing alert among `alerts`, read naively.
fn fires_for(alerts: Vec<alert_poller::domain::alerts::ActiveAlert>, pipeline: &str) -> bool {
    let firing = alerts.into_iter().filter(|a| a.state == AlertState::Firing);
    let snapshot = Snapshot::from_alerts(firing, &Matcher::all());
    snapshot.rules_for(Kind::Metric, pipeline).next().is_some()
}

async fn record(
    mut view: tokio::sync::watch::Receiver<Arc<alert_poller::polling::poller::PollView>>,
    seen: Arc<Mutex<Seen>>,
) {
    while view.changed().await.is_ok() {
        let v = view.borrow_and_update().clone();
        let judge = |name| health::evaluate(PipelineFacts::new(Kind::Metric, name), v.knowledge());
        let mut seen = seen.lock().unwrap();
        seen.settling_views += usize::from(v.settling);
        if let Some(verdict) = judge("firing")
            && verdict.status != Status::False
        {
            seen.firing_healthy.push(format!("{verdict:?}"));
        }
        if let Some(verdict) = judge("healthy")
            && verdict.status != Status::True
        {
            seen.healthy_unhealthy.push(format!("{verdict:?}"));
        }
    }
}

/// Down briefly: old `ALERTS` samples still within the query's age bound.
const QUICK: Duration = Duration::ZERO;
/// Down longer than the query's age bound (two intervals and a second).
const SLOW: Duration = Duration::from_secs(4);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_source_without_for() {
    restart_while_firing("query", Duration::ZERO, QUICK).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_source_with_for() {
    restart_while_firing("query", 5 * SECOND, QUICK).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_source_without_for_after_a_slow_restart() {
    restart_while_firing("query", Duration::ZERO, SLOW).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_source_with_for_after_a_slow_restart() {
    restart_while_firing("query", 5 * SECOND, SLOW).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_source_without_for() {
    restart_while_firing("alerts", Duration::ZERO, QUICK).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_source_with_for() {
    restart_while_firing("alerts", 5 * SECOND, QUICK).await;
}
