//! The shipped alert rules and scrape relabeling (sped up) in a real
//! Prometheus, over the collector stand-in: for every rule, the flow that
//! should raise it is broken, and `/api/v1/alerts` must show exactly that
//! alert firing, labelled `{alertname, pipeline_name}` (`{alertname,
//! receiver}` for throttling), while no alert of another kind, of another
//! pipeline or without scope appears at any moment of the case. Every kind
//! has a pipeline named `shared`, as a cluster may, so that a rule reading the
//! wrong unit or service would show. One Prometheus serves all cases, in turn;
//! each case mends its flow and waits for the alerts to clear.
//!
//! No controller here: only the rules, the relabeling and Prometheus.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use alert_poller_testbed::collector::{Collector, Component, Flow, PipelineKind};
use alert_poller_testbed::prometheus::{Prometheus, Setup};
use alert_poller_testbed::rules::SHIPPED;
use prometheus_http_query::reqwest;
use serde_json::Value;

const PATIENCE: Duration = Duration::from_secs(60);
const PIPELINE: &str = "shared";
/// A pipeline of every kind that stays healthy throughout.
const BYSTANDER: &str = "bystander";

type Labels = BTreeMap<String, String>;

/// One alert's labels, built by hand.
fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// How a case breaks things.
#[derive(Clone, Copy, Debug)]
enum Break {
    Flow(PipelineKind, Component, Flow),
    Throttling(PipelineKind),
}

struct Case {
    broken: Break,
    /// The alerts that must end up firing, and nothing else.
    firing: &'static [&'static str],
}

impl Case {
    fn kind(&self) -> PipelineKind {
        match self.broken {
            Break::Flow(s, ..) | Break::Throttling(s) => s,
        }
    }

    fn apply(&self, collector: &Collector, on: bool) {
        match self.broken {
            Break::Flow(kind, component, flow) => {
                let flow = if on { flow } else { Flow::Healthy };
                collector.set_flow_of(kind, component, PIPELINE, flow);
            }
            Break::Throttling(kind) => collector.set_throttling_of(kind, on),
        }
    }

    /// The label sets of the alerts that must fire.
    fn want(&self) -> BTreeSet<Labels> {
        self.firing
            .iter()
            .map(|name| match self.broken {
                Break::Throttling(_) => labels(&[("alertname", name), ("receiver", "otlp")]),
                Break::Flow(..) => labels(&[("alertname", name), ("pipeline_name", PIPELINE)]),
            })
            .collect()
    }

    /// Whether an alert seen at any moment of the case may be there: one of
    /// the broken kind, about the broken pipeline (or, for throttling,
    /// about the receiver).
    fn admits(&self, alert: &Labels) -> bool {
        let name = alert.get("alertname").map_or("", String::as_str);
        let scope_ok = match self.broken {
            Break::Throttling(_) => {
                !alert.contains_key("pipeline_name") && alert.contains_key("receiver")
            }
            Break::Flow(..) => alert.get("pipeline_name").map(String::as_str) == Some(PIPELINE),
        };
        name.starts_with(self.kind().alert_prefix()) && scope_ok
    }
}

/// A case for every shipped rule: the flow to break, and the alerts that
/// break must raise.
// Unformatted so the cases stay one per line.
#[rustfmt::skip]
fn cases() -> Vec<Case> {
    use Component::{Agent, FluentBit, Gateway};
    use Flow::{AllDropped, BufferFull, NoLogsDelivered, SomeDropped};
    use PipelineKind::{Log, Metric, Trace};
    let flow = |s, c, f, firing| Case { broken: Break::Flow(s, c, f), firing };
    let throttling = |s, firing| Case { broken: Break::Throttling(s), firing };
    vec![
        flow(Metric, Gateway, AllDropped, &["MetricGatewayAllDataDropped"]),
        flow(Metric, Gateway, SomeDropped, &["MetricGatewaySomeDataDropped"]),
        throttling(Metric, &["MetricGatewayThrottling"]),
        flow(Metric, Agent, AllDropped, &["MetricAgentAllDataDropped"]),
        flow(Metric, Agent, SomeDropped, &["MetricAgentSomeDataDropped"]),
        flow(Trace, Gateway, AllDropped, &["TraceGatewayAllDataDropped"]),
        flow(Trace, Gateway, SomeDropped, &["TraceGatewaySomeDataDropped"]),
        throttling(Trace, &["TraceGatewayThrottling"]),
        flow(Log, Gateway, AllDropped, &["LogGatewayAllDataDropped"]),
        flow(Log, Gateway, SomeDropped, &["LogGatewaySomeDataDropped"]),
        throttling(Log, &["LogGatewayThrottling"]),
        flow(Log, Agent, AllDropped, &["LogAgentAllDataDropped"]),
        flow(Log, Agent, SomeDropped, &["LogAgentSomeDataDropped"]),
        // Fluent Bit reads on while it drops everything, so nothing is
        // delivered either, as with a real one.
        flow(Log, FluentBit, AllDropped, &["LogFluentBitAllDataDropped", "LogFluentBitNoLogsDelivered"]),
        flow(Log, FluentBit, SomeDropped, &["LogFluentBitSomeDataDropped"]),
        flow(Log, FluentBit, BufferFull, &["LogFluentBitBufferInUse"]),
        flow(Log, FluentBit, NoLogsDelivered, &["LogFluentBitNoLogsDelivered"]),
    ]
}

/// Every alert name in the shipped rules.
fn shipped_rule_names() -> BTreeSet<String> {
    let doc: serde_norway::Value = serde_norway::from_str(SHIPPED).expect("rules.yaml is YAML");
    doc["groups"]
        .as_sequence()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_sequence().expect("rules").iter())
        .map(|r| r["alert"].as_str().expect("an alerting rule").to_owned())
        .collect()
}

struct Api {
    client: reqwest::Client,
    url: String,
}

/// Percent-encodes a PromQL query for a URL.
fn encode(query: &str) -> String {
    query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Api {
    async fn get(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.url);
        let body = self
            .client
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
            .bytes()
            .await
            .expect("a body");
        let v: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(v["status"], "success", "{v}");
        v["data"].clone()
    }

    /// Every alert, pending or firing, as (labels, state).
    async fn alerts(&self) -> Vec<(Labels, String)> {
        let data = self.get("api/v1/alerts").await;
        data["alerts"]
            .as_array()
            .expect("alerts")
            .iter()
            .map(|a| {
                let labels: Labels =
                    serde_json::from_value(a["labels"].clone()).expect("string labels");
                (labels, a["state"].as_str().unwrap_or_default().to_owned())
            })
            .collect()
    }

    /// The label sets of an instant query's series.
    async fn series(&self, query: &str) -> Vec<Labels> {
        let data = self
            .get(&format!("api/v1/query?query={}", encode(query)))
            .await;
        data["result"]
            .as_array()
            .expect("a vector")
            .iter()
            .map(|s| serde_json::from_value(s["metric"].clone()).expect("string labels"))
            .collect()
    }
}

/// Waits until `done` holds for the current alerts; every alert seen
/// meanwhile goes to `seen`. Returns the time it took.
async fn until(
    api: &Api,
    prometheus: &Prometheus,
    seen: &mut BTreeSet<Labels>,
    what: &str,
    done: impl Fn(&[(Labels, String)]) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let alerts = api.alerts().await;
        seen.extend(alerts.iter().map(|(l, _)| l.clone()));
        if done(&alerts) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{what}: not within {PATIENCE:?}; alerts now {alerts:?}\nPrometheus log:\n{}",
            prometheus.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn firing(alerts: &[(Labels, String)]) -> BTreeSet<Labels> {
    alerts
        .iter()
        .filter(|(_, state)| state == "firing")
        .map(|(l, _)| l.clone())
        .collect()
}

/// The shared Prometheus of all cases, over a collector with a `shared` and
/// a `bystander` pipeline of every kind, and its API.
async fn bed() -> (Collector, Prometheus, Api) {
    let collector = Collector::start(&[]).await.expect("collector starts");
    for kind in PipelineKind::ALL {
        collector.add_pipeline_of(kind, PIPELINE);
        collector.add_pipeline_of(kind, BYSTANDER);
    }
    let prometheus = Prometheus::start(&Setup::fast(collector.addr()))
        .await
        .expect("prometheus starts");
    // reqwest is built without a TLS provider of its own (see Cargo.toml).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let api = Api {
        client: reqwest::Client::new(),
        url: prometheus.url(),
    };
    (collector, prometheus, api)
}

/// Waits until all five jobs are up and Fluent Bit's three inputs are
/// scraped, so that the relabeling can be checked on everything.
async fn until_every_job_is_scraped(api: &Api) {
    let begun = Instant::now();
    loop {
        let up = api.series("up == 1").await;
        let named = api.series("fluentbit_input_bytes_total").await;
        if up.len() == 5 && named.len() == 3 {
            break;
        }
        assert!(begun.elapsed() < PATIENCE, "scrapes: up {up:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The relabeling names pipelines from the exporters and Fluent Bit's
/// plugins, never from a technical plugin: the rules scope their alerts by
/// these labels.
async fn assert_pipelines_named_by_relabeling(api: &Api) {
    for s in api.series(r#"{__name__=~"fluentbit_.+"}"#).await {
        assert_eq!(s["service"], "telemetry-fluent-bit-metrics", "{s:?}");
        if s["name"] == "tail.0" {
            assert!(
                !s.contains_key("pipeline_name") && !s.contains_key("pipeline_type"),
                "a technical input names no pipeline: {s:?}"
            );
        } else {
            assert_eq!(s.get("pipeline_name"), s.get("name"), "{s:?}");
            assert_eq!(s["pipeline_type"], "logpipeline", "{s:?}");
        }
    }
    let tail = api
        .series(r#"fluentbit_input_bytes_total{name="tail.0"}"#)
        .await;
    assert_eq!(tail.len(), 1, "the technical input is scraped: {tail:?}");
    for kind in PipelineKind::ALL {
        let query = format!(
            r#"{{__name__=~"otelcol_exporter_.+_{}_total"}}"#,
            kind.unit()
        );
        let exporters = api.series(&query).await;
        assert!(!exporters.is_empty(), "{query}");
        for s in exporters {
            assert_eq!(s["pipeline_type"], kind.pipeline_type(), "{s:?}");
            assert!(
                [PIPELINE, BYSTANDER].contains(&s["pipeline_name"].as_str()),
                "{s:?}"
            );
        }
    }
}

/// All healthy: a few evaluations over full windows raise nothing, the
/// reading `tail.0` input included. Otherwise a case could not tell its own
/// alerts from ones that were there before.
async fn assert_quiet_while_healthy(api: &Api) {
    tokio::time::sleep(Duration::from_secs(4)).await;
    for _ in 0..3 {
        let alerts = api.alerts().await;
        assert!(alerts.is_empty(), "healthy, yet {alerts:?}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One case: its flow broken until exactly its alerts fire, then mended
/// until none is left, with every alert seen in between its own.
async fn break_and_mend(case: &Case, collector: &Collector, prometheus: &Prometheus, api: &Api) {
    let what = format!("{:?}", case.broken);
    let mut seen = BTreeSet::new();
    case.apply(collector, true);
    let want = case.want();
    let fired = until(api, prometheus, &mut seen, &what, |a| firing(a) == want).await;
    case.apply(collector, false);
    let cleared = until(api, prometheus, &mut seen, &format!("{what} mended"), |a| {
        a.is_empty()
    })
    .await;
    let strays: Vec<&Labels> = seen.iter().filter(|l| !case.admits(l)).collect();
    assert!(
        strays.is_empty(),
        "{what} raised alerts beyond its kind and pipeline: {strays:?}"
    );
    eprintln!("{what}: fired in {fired:.1?}, cleared in {cleared:.1?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_fires_for_its_own_flow_and_kind_only() {
    let started = Instant::now();
    let cases = cases();
    let covered: BTreeSet<String> = cases
        .iter()
        .flat_map(|c| c.firing.iter().map(|n| n.to_string()))
        .collect();
    assert_eq!(covered, shipped_rule_names(), "a case for every rule");

    let (collector, prometheus, api) = bed().await;
    until_every_job_is_scraped(&api).await;
    assert_pipelines_named_by_relabeling(&api).await;
    assert_quiet_while_healthy(&api).await;
    eprintln!("set up in {:.1?}", started.elapsed());

    for case in &cases {
        break_and_mend(case, &collector, &prometheus, &api).await;
    }
    eprintln!("all {} cases in {:.1?}", cases.len(), started.elapsed());
}
