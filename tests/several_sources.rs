//! Two real Prometheus servers as the poller's sources (`prometheusUrl`
//! with two URLs): an HA pair, one of which sees more than the other, as a
//! replica does for a moment after the other evaluated, or as two rulers
//! always do. The poller's view is what reconciles judge from, so the
//! verdicts here are the conditions the controller would write.

use std::time::Duration;

use alert_poller::domain::health::Status;
use alert_poller::operations::metrics::{SourceLabels, SourceResultLabels};
use alert_poller_testbed::collector::{Collector, Component, Flow};
use alert_poller_testbed::fake_prometheus::{Answer, FakePrometheus};
use alert_poller_testbed::poller::{StandalonePoller, tuning, until_judged};
use alert_poller_testbed::prometheus::{Prometheus, Setup};

const PATIENCE: Duration = Duration::from_secs(60);

/// Waits until the poller judges the pipelines of `want` as given.
async fn until(poller: &StandalonePoller, want: &[(&str, Status, &str)]) {
    until_judged(&[("poller", poller)], want, PATIENCE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Requests of the poller to `prometheus` with `result`.
fn requests(poller: &StandalonePoller, prometheus: &Prometheus, result: &str) -> u64 {
    let source = prometheus.url();
    poller
        .metrics
        .source_requests
        .get_or_create(&SourceResultLabels {
            source,
            result: result.into(),
        })
        .get()
}

/// A poller with `a` and `b` as its sources, quick to notice a dead one
/// and stale 3 s after both are gone, so each step takes seconds.
fn poller_of_the_pair(a: &Prometheus, b: &Prometheus) -> StandalonePoller {
    let urls = format!("{},{}", a.url(), b.url());
    StandalonePoller::start(tuning(&[
        ("prometheusUrl", &urls),
        ("minInterval", "200ms"),
        ("maxInterval", "500ms"),
        ("errorMaxInterval", "500ms"),
        ("requestTimeout", "1s"),
        ("connectTimeout", "500ms"),
        ("staleAfter", "3s"),
    ]))
}

/// Replica `a` sees pipeline `a` dropping data; replica `b` sees that and
/// pipeline `b` dropping some. Killing either leaves the poller fresh on the
/// other's answer; only when both are gone do pipelines turn Unknown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_survives_either_replica_and_counts_what_only_one_sees() {
    let seen_by_a = Collector::start(&["a", "b"]).await.unwrap();
    let seen_by_b = Collector::start(&["a", "b"]).await.unwrap();
    for collector in [&seen_by_a, &seen_by_b] {
        collector.set_flow(Component::Gateway, "a", Flow::AllDropped);
    }
    seen_by_b.set_flow(Component::Gateway, "b", Flow::SomeDropped);
    let mut a = Prometheus::start(&Setup::fast(seen_by_a.addr()))
        .await
        .unwrap();
    let mut b = Prometheus::start(&Setup::fast(seen_by_b.addr()))
        .await
        .unwrap();
    let poller = poller_of_the_pair(&a, &b);
    let both_unhealthy = [
        ("a", Status::False, "GatewayAllTelemetryDataDropped"),
        ("b", Status::False, "GatewaySomeTelemetryDataDropped"),
    ];
    until(&poller, &both_unhealthy).await;

    // Replica a dies: b answers for both, for longer than staleAfter.
    a.kill().await;
    let refused = requests(&poller, &a, "connect");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        requests(&poller, &a, "connect") > refused,
        "a's failures are counted"
    );
    until(&poller, &both_unhealthy).await;
    assert_eq!(poller.view.borrow().stale_cause, None);

    // a is back and b dies: b's alert goes with it, a's answer stands.
    a.restart().await.unwrap();
    b.kill().await;
    until(
        &poller,
        &[
            ("a", Status::False, "GatewayAllTelemetryDataDropped"),
            ("b", Status::True, "FlowHealthy"),
        ],
    )
    .await;

    // Neither answers: Unknown after staleAfter, the cause named.
    a.kill().await;
    until(
        &poller,
        &[
            ("a", Status::Unknown, "GatewayProbingFailed"),
            ("b", Status::Unknown, "GatewayProbingFailed"),
        ],
    )
    .await;
}

/// A source that answers with warnings, as Thanos Query does for a partial
/// response: the answer is used, and the warnings are counted for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warnings_of_a_partial_response_are_counted_per_source() {
    let partial = FakePrometheus::start(Answer::Json(
        r#"{"status":"success","warnings":["a store did not answer"],"data":{"resultType":"vector","result":[
            {"metric":{"__name__":"ALERTS","alertname":"MetricGatewayThrottling","alertstate":"firing","pipeline_name":"a"},"value":[1,"1"]}]}}"#
            .into(),
    ))
    .await
    .unwrap();
    let whole = FakePrometheus::start(Answer::NoAlerts).await.unwrap();
    let urls = format!("{},{}", partial.url(), whole.url());
    let poller = StandalonePoller::start(tuning(&[
        ("prometheusUrl", &urls),
        ("minInterval", "200ms"),
        ("maxInterval", "200ms"),
    ]));
    until(&poller, &[("a", Status::False, "GatewayThrottling")]).await;
    let warnings = |url: String| {
        poller
            .metrics
            .source_warnings
            .get_or_create(&SourceLabels { source: url })
            .get()
    };
    assert!(warnings(partial.url()) >= 1);
    assert_eq!(warnings(whole.url()), 0);
}
