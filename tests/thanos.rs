//! Thanos as an alert source. First the harness (`alert_poller_testbed::thanos`)
//! on its own: an HA pair of Prometheus replicas behind sidecars and a Query,
//! and a Ruler behind a Query, answering the endpoints the controller polls.
//! Then the poller against them: the same verdicts through Thanos as through
//! one Prometheus, in both source modes, phase-locked on Thanos' rules.
//!
//! Thanos comes from `$THANOS_BIN` or tests/thanos/build.sh (minutes on a
//! cold machine, then cached).

use std::path::Path;
use std::time::{Duration, Instant};

use alert_poller::domain::health::Status;
use alert_poller_testbed::TempDir;
use alert_poller_testbed::collector::{Collector, Component, Flow};
use alert_poller_testbed::poller::{StandalonePoller, tuning, until_judged};
use alert_poller_testbed::prometheus::{Prometheus, Setup};
use alert_poller_testbed::thanos::{self, Query, Ruler, Sidecar};
use serde_json::Value;

const PATIENCE: Duration = Duration::from_secs(30);

const ALWAYS_FIRING: &str = "\
groups:
  - name: always
    rules:
      - alert: MetricPipelineTestAlwaysFiring
        expr: vector(1)
        labels: {severity: critical}
";

const RULER_ALWAYS_FIRING: &str = "\
groups:
  - name: ruler
    rules:
      - alert: RulerTestAlwaysFiring
        expr: vector(1)
";

/// A Prometheus with external labels `cluster` and `replica`, and its
/// sidecar. Its rules are [`ALWAYS_FIRING`], loaded from `shared` if given
/// (one path for an HA pair, as in a StatefulSet), else from its own file.
async fn replica(name: &str, shared: Option<&Path>) -> (Prometheus, Sidecar) {
    let prometheus = Prometheus::start(&Setup {
        rules: ALWAYS_FIRING.to_owned(),
        ..Setup::default()
    })
    .await
    .expect("prometheus starts");
    thanos::set_external_labels(&prometheus, &[("cluster", "test"), ("replica", name)])
        .await
        .expect("prometheus takes external labels");
    if let Some(path) = shared {
        thanos::set_rule_file(&prometheus, path)
            .await
            .expect("prometheus takes the shared rules file");
    }
    let sidecar = Sidecar::start(&prometheus)
        .await
        .unwrap_or_else(|e| panic!("sidecar starts: {e}"));
    (prometheus, sidecar)
}

/// The firing alerts named `alertname` in Query's `/api/v1/alerts`.
async fn firing(query: &Query, alertname: &str) -> Vec<Value> {
    let answer = query
        .get_json("api/v1/alerts")
        .await
        .expect("query answers /api/v1/alerts");
    assert_eq!(answer["status"], "success", "{answer}");
    // Thanos answers `"alerts": null` when there are none.
    let alerts = answer["data"]["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    alerts
        .into_iter()
        .filter(|a| a["labels"]["alertname"] == alertname && a["state"] == "firing")
        .collect()
}

/// Waits until `query` reports at least `n` firing `alertname` alerts and
/// returns them.
async fn until_firing(query: &Query, alertname: &str, n: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let alerts = firing(query, alertname).await;
        if alerts.len() >= n {
            return alerts;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{alertname}: {} of {n} alerts after {PATIENCE:?}; Query's log:\n{}",
            alerts.len(),
            query.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `replica` labels of the alerting rules named `name` in `/api/v1/rules`.
async fn rule_replicas(query: &Query, name: &str) -> Vec<Option<String>> {
    let answer = query
        .get_json("api/v1/rules?type=alert")
        .await
        .expect("query answers /api/v1/rules");
    assert_eq!(answer["status"], "success", "{answer}");
    let mut replicas: Vec<Option<String>> = answer["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .filter(|r| r["name"] == name)
        .map(|r| r["labels"]["replica"].as_str().map(str::to_owned))
        .collect();
    replicas.sort();
    replicas
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_over_an_ha_pair_deduplicates_alerts_by_replica_label() {
    let shared = TempDir::new("thanos-test-rules").expect("temp dir");
    let rules = shared.path().join("rules.yaml");
    std::fs::write(&rules, ALWAYS_FIRING).expect("rules file written");
    let (_prometheus_a, sidecar_a) = replica("a", Some(&rules)).await;
    let (_prometheus_b, sidecar_b) = replica("b", Some(&rules)).await;
    let endpoints = [sidecar_a.grpc_addr(), sidecar_b.grpc_addr()];
    let dedup = Query::start(&endpoints, &["replica"])
        .await
        .unwrap_or_else(|e| panic!("query starts: {e}"));
    let raw = Query::start(&endpoints, &[])
        .await
        .unwrap_or_else(|e| panic!("query starts: {e}"));

    // Without a replica label, each replica's alert is there.
    let alerts = until_firing(&raw, "MetricPipelineTestAlwaysFiring", 2).await;
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(
        rule_replicas(&raw, "MetricPipelineTestAlwaysFiring").await,
        [Some("a".to_owned()), Some("b".to_owned())]
    );

    // With --query.replica-label=replica, once.
    let alerts = until_firing(&dedup, "MetricPipelineTestAlwaysFiring", 1).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["labels"]["severity"], "critical");
    assert_eq!(
        rule_replicas(&dedup, "MetricPipelineTestAlwaysFiring").await,
        [None]
    );

    // Queries are deduplicated too, and the external labels left are kept.
    let answer = dedup
        .get_json("api/v1/query?query=ALERTS")
        .await
        .expect("query answers /api/v1/query");
    let series = answer["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(series.len(), 1, "{answer}");
    assert_eq!(series[0]["metric"]["cluster"], "test", "{answer}");
    assert!(series[0]["metric"].get("replica").is_none(), "{answer}");
}

/// Query merges rule groups by file path and name before it merges rules: an
/// HA pair whose replicas load the same rules from different paths shows
/// every alert once per replica, replica label or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_from_different_paths_are_not_deduplicated() {
    let (_prometheus_a, sidecar_a) = replica("a", None).await;
    let (_prometheus_b, sidecar_b) = replica("b", None).await;
    let dedup = Query::start(
        &[sidecar_a.grpc_addr(), sidecar_b.grpc_addr()],
        &["replica"],
    )
    .await
    .unwrap_or_else(|e| panic!("query starts: {e}"));
    let alerts = until_firing(&dedup, "MetricPipelineTestAlwaysFiring", 2).await;
    assert_eq!(alerts.len(), 2, "{alerts:?}");
}

/// A Ruler evaluating `rules` (every second, external label ruler=r0)
/// against a Query over `sidecar`, and a second Query over the ruler: the
/// Query below, the Ruler and the Query above, in that order.
async fn ruled(sidecar: &Sidecar, rules: &str) -> (Query, Ruler, Query) {
    let below = Query::start(&[sidecar.grpc_addr()], &["replica"])
        .await
        .unwrap_or_else(|e| panic!("query starts: {e}"));
    let ruler = Ruler::start(
        below.addr(),
        rules,
        Duration::from_secs(1),
        &[("ruler", "r0")],
    )
    .await
    .unwrap_or_else(|e| panic!("ruler starts: {e}"));
    let above = Query::start(&[ruler.grpc_addr()], &[])
        .await
        .unwrap_or_else(|e| panic!("query starts: {e}"));
    (below, ruler, above)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rulers_alert_reaches_query() {
    let (_prometheus, sidecar) = replica("a", None).await;
    let (_below, ruler, above) = ruled(&sidecar, RULER_ALWAYS_FIRING).await;

    let alerts = until_firing(&above, "RulerTestAlwaysFiring", 1).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}; ruler's log:\n{}", ruler.log());

    // The rule was evaluated through `below` without error.
    let rules = above
        .get_json("api/v1/rules?type=alert")
        .await
        .expect("query answers /api/v1/rules");
    let rule = &rules["data"]["groups"][0]["rules"][0];
    assert_eq!(rule["name"], "RulerTestAlwaysFiring", "{rules}");
    assert_eq!(rule["health"], "ok", "{rules}");
    assert_eq!(rule["labels"]["ruler"], "r0", "{rules}");
}

/// The sidecar refuses a Prometheus without external labels; the error says
/// which process did not come up and quotes its log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_that_does_not_come_up_is_reported_with_its_log() {
    let prometheus = Prometheus::start(&Setup::default())
        .await
        .expect("prometheus starts");
    let error = Sidecar::start(&prometheus)
        .await
        .expect_err("no external labels, no sidecar")
        .to_string();
    assert!(error.contains("sidecar` did not become ready"), "{error}");
    assert!(error.contains("exited"), "{error}");
    assert!(error.contains("no external labels configured"), "{error}");
}

/// Waits until every poller judges `a` and `b` as given.
async fn until_both(pollers: &[(&str, &StandalonePoller)], a: (Status, &str), b: (Status, &str)) {
    until_judged(pollers, &[("a", a.0, a.1), ("b", b.0, b.1)], PATIENCE * 2)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// A poller of `url` reading alerts from `source` (alerts or query).
fn poller_of(url: &str, source: &str) -> StandalonePoller {
    StandalonePoller::start(tuning(&[
        ("prometheusUrl", url),
        ("alertSource", source),
        ("phaseLock", "true"),
        ("minInterval", "200ms"),
        ("maxInterval", "1s"),
        ("errorMaxInterval", "1s"),
        ("requestTimeout", "2s"),
        ("connectTimeout", "500ms"),
        ("staleAfter", "5s"),
    ]))
}

/// Breaks and mends pipeline `a` and waits, each time, until every poller
/// judges both pipelines the same way.
async fn break_and_mend(collector: &Collector, pollers: &[(&str, &StandalonePoller)]) {
    let healthy = (Status::True, "FlowHealthy");
    until_both(pollers, healthy, healthy).await;
    collector.set_flow(Component::Gateway, "a", Flow::AllDropped);
    until_both(
        pollers,
        (Status::False, "GatewayAllTelemetryDataDropped"),
        healthy,
    )
    .await;
    collector.set_flow(Component::Gateway, "a", Flow::Healthy);
    until_both(pollers, healthy, healthy).await;
}

/// The shipped rules (sped up) over a collector, evaluated by an HA pair
/// behind sidecars and a deduplicating Query: the poller reading Query, by
/// `/api/v1/alerts` and by the `ALERTS` query, phase-locked on Query's
/// `/api/v1/rules`, judges exactly as one reading a replica directly, and
/// stays fresh when a replica dies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_judges_through_query_over_a_pair_as_through_prometheus() {
    let collector = Collector::start(&["a", "b"]).await.unwrap();
    let setup = Setup::fast(collector.addr());
    let shared = TempDir::new("thanos-fast-rules").unwrap();
    let rules = shared.path().join("rules.yaml");
    std::fs::write(&rules, &setup.rules).unwrap();
    let mut pair = Vec::new();
    for name in ["a", "b"] {
        let prometheus = Prometheus::start(&setup).await.unwrap();
        thanos::set_external_labels(&prometheus, &[("cluster", "test"), ("replica", name)])
            .await
            .unwrap();
        thanos::set_rule_file(&prometheus, &rules).await.unwrap();
        let sidecar = Sidecar::start(&prometheus)
            .await
            .unwrap_or_else(|e| panic!("sidecar starts: {e}"));
        pair.push((prometheus, sidecar));
    }
    let query = Query::start(
        &[pair[0].1.grpc_addr(), pair[1].1.grpc_addr()],
        &["replica"],
    )
    .await
    .unwrap_or_else(|e| panic!("query starts: {e}"));
    let direct = poller_of(&pair[0].0.url(), "query");
    let by_alerts = poller_of(&query.url(), "alerts");
    let by_query = poller_of(&query.url(), "query");
    let pollers = [
        ("replica a", &direct),
        ("query, alerts", &by_alerts),
        ("query, ALERTS", &by_query),
    ];
    break_and_mend(&collector, &pollers).await;

    // Replica b dies: Query answers from a, and the pollers of Query stay
    // fresh through another break and mend.
    pair[1].0.kill().await;
    break_and_mend(&collector, &pollers).await;
    for (name, poller) in &pollers[1..] {
        assert_eq!(poller.view.borrow().stale_cause, None, "{name}");
    }
}

/// The shipped rules evaluated by Thanos Ruler (querying the scraping
/// Prometheus through a Query), read through a second Query over the
/// ruler: the same verdicts in both source modes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_judges_what_thanos_ruler_evaluates() {
    let collector = Collector::start(&["a", "b"]).await.unwrap();
    let fast = Setup::fast(collector.addr());
    let prometheus = Prometheus::start(&Setup {
        rules: "groups: []\n".into(),
        ..fast.clone()
    })
    .await
    .unwrap();
    thanos::set_external_labels(&prometheus, &[("cluster", "test"), ("replica", "a")])
        .await
        .unwrap();
    let sidecar = Sidecar::start(&prometheus)
        .await
        .unwrap_or_else(|e| panic!("sidecar starts: {e}"));
    let (_below, _ruler, above) = ruled(&sidecar, &fast.rules).await;
    let by_alerts = poller_of(&above.url(), "alerts");
    let by_query = poller_of(&above.url(), "query");
    break_and_mend(
        &collector,
        &[("ruler, alerts", &by_alerts), ("ruler, ALERTS", &by_query)],
    )
    .await;
}
