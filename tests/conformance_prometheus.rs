//! The verdict table of tests/fixtures/conformance.yaml against a real
//! Prometheus (Debian's 2.x, or `$PROMETHEUS_BIN`): Prometheus raises exactly
//! each case's alerts, the real client fetches them, and health judges every
//! pipeline. The unit tests build alerts by hand; this checks that what they
//! assume about labels and states holds for what Prometheus actually serves.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use alert_poller::domain::alerts::{ActiveAlert, AlertState, Matcher, Snapshot};
use alert_poller::domain::health::{self, Knowledge, PipelineFacts};
use alert_poller::domain::kind::Kind;
use alert_poller::prometheus::{ClientSettings, PrometheusClient};
use alert_poller_testbed::poller::tuning;
use alert_poller_testbed::prometheus::{Prometheus, Setup};
use serde::{Deserialize, Serialize};

const TABLE: &str = include_str!("fixtures/conformance.yaml");
/// How often rule groups are evaluated: each case waits for about one.
const INTERVAL: Duration = Duration::from_millis(500);
const PATIENCE: Duration = Duration::from_secs(30);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    pipelines: Vec<String>,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    alerts: Vec<CaseAlert>,
    /// Pipeline name to `Status/Reason`.
    expect: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseAlert {
    alertname: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    state: State,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum State {
    #[default]
    Firing,
    Pending,
}

/// A Prometheus rules file, as much of it as the cases need.
#[derive(Serialize)]
struct RulesFile<'a> {
    groups: Vec<Group<'a>>,
}

#[derive(Serialize)]
struct Group<'a> {
    name: String,
    interval: String,
    rules: Vec<Rule<'a>>,
}

#[derive(Serialize)]
struct Rule<'a> {
    alert: &'a str,
    expr: &'static str,
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    hold: Option<&'static str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: &'a BTreeMap<String, String>,
}

/// One always-true rule per alert; `for: 1h` keeps the pending ones pending.
/// The group is named after the case's index so that no alert state carries
/// over from the previous case (Prometheus copies it between groups of the
/// same name on reload).
fn rules_file(index: usize, case: &Case) -> String {
    let rules: Vec<Rule> = case
        .alerts
        .iter()
        .map(|a| Rule {
            alert: &a.alertname,
            expr: "vector(1)",
            hold: (a.state == State::Pending).then_some("1h"),
            labels: &a.labels,
        })
        .collect();
    let groups = if rules.is_empty() {
        Vec::new()
    } else {
        vec![Group {
            name: format!("case-{index}"),
            interval: format!("{}ms", INTERVAL.as_millis()),
            rules,
        }]
    };
    serde_norway::to_string(&RulesFile { groups }).expect("rules serialize")
}

/// Labels and state of each alert, sorted: the comparable form of an answer.
fn shape(alerts: impl Iterator<Item = (BTreeMap<String, String>, State)>) -> Vec<String> {
    let mut shown: Vec<String> = alerts
        .map(|(labels, state)| format!("{state:?} {labels:?}"))
        .collect();
    shown.sort();
    shown
}

fn expected(case: &Case) -> Vec<String> {
    shape(case.alerts.iter().map(|a| {
        let mut labels = a.labels.clone();
        labels.insert("alertname".into(), a.alertname.clone());
        (labels, a.state)
    }))
}

fn served(alerts: &[ActiveAlert]) -> Vec<String> {
    shape(alerts.iter().map(|a| {
        let state = match a.state {
            AlertState::Firing => State::Firing,
            AlertState::Pending => State::Pending,
        };
        let labels = a
            .labels
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        (labels, state)
    }))
}

/// Polls with the real client until Prometheus serves exactly the case's
/// alerts, and returns that answer.
async fn until_served(
    client: &PrometheusClient,
    prometheus: &Prometheus,
    case: &Case,
) -> Vec<ActiveAlert> {
    let want = expected(case);
    let started = Instant::now();
    loop {
        let last = match client.alerts().await {
            Ok(answer) if served(&answer.alerts) == want => return answer.alerts,
            Ok(answer) => Ok(served(&answer.alerts)),
            Err(e) => Err(e.to_string()),
        };
        assert!(
            started.elapsed() < PATIENCE,
            "case {:?}: Prometheus never served {want:?}; last answer {last:?}\nPrometheus log:\n{}",
            case.name,
            prometheus.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdicts_match_the_table_with_alerts_from_a_real_prometheus() {
    let table: Table = serde_norway::from_str(TABLE).expect("conformance.yaml parses");
    for case in &table.cases {
        let judged: Vec<&String> = case.expect.keys().collect();
        let listed: Vec<&String> = table.pipelines.iter().collect();
        assert_eq!(judged, listed, "case {:?} judges every pipeline", case.name);
    }

    let prometheus = Prometheus::start(&Setup {
        evaluation_interval: INTERVAL,
        ..Setup::default()
    })
    .await
    .expect("prometheus starts");
    let url = prometheus.url();
    let client = PrometheusClient::new(ClientSettings::first(&tuning(&[(
        "prometheusUrl",
        url.as_str(),
    )])))
    .expect("a loopback URL makes a valid client");

    let mut mismatches = Vec::new();
    for (index, case) in table.cases.iter().enumerate() {
        prometheus
            .set_rules(&rules_file(index, case))
            .await
            .unwrap_or_else(|e| panic!("case {:?}: {e}", case.name));
        let alerts = until_served(&client, &prometheus, case).await;
        let snapshot = Snapshot::from_alerts(alerts, &Matcher::all());
        for (pipeline, want) in &case.expect {
            let got = health::evaluate(
                PipelineFacts::new(Kind::Metric, pipeline),
                Knowledge::Fresh(&snapshot),
            )
            .map(|v| format!("{}/{}", v.status.as_str(), v.reason))
            .unwrap_or_else(|| "no verdict".into());
            if got != *want {
                mismatches.push(format!(
                    "{:?}, pipeline {pipeline}: want {want}, got {got}",
                    case.name
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} verdicts differ from conformance.yaml:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
