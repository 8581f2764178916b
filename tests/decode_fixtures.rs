//! Answers recorded from a real Prometheus 3 (tests/prometheus3/record.sh)
//! through the decoders the poller uses. They hold what 3.x says and 2.x did
//! not, or rarely does: `keepFiringSince`, UTF-8 label names, the `unknown`
//! rule state, values `+Inf` and `NaN`, and a group never evaluated. None of
//! it may break a poll or change what counts as firing.

use alert_poller::domain::alerts::{AlertState, Matcher, Snapshot};
use alert_poller::prometheus::{decode, decode_rule_timings};
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

const ALERTS: &[u8] = include_bytes!("fixtures/prometheus3/alerts.json");
const RULES: &[u8] = include_bytes!("fixtures/prometheus3/rules.json");

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body).expect("the fixture is JSON")
}

/// The fixtures must still show what they were recorded for: a re-recording
/// that lost a feature would make the tests below pass for nothing.
#[test]
fn fixtures_show_the_3x_features() {
    let alerts = json(ALERTS);
    let alerts = alerts["data"]["alerts"].as_array().expect("alerts");
    let by_name = |name: &str| {
        alerts
            .iter()
            .find(|a| a["labels"]["alertname"] == name)
            .unwrap_or_else(|| panic!("{name} is recorded"))
    };
    assert!(by_name("MetricKeepFiring")["keepFiringSince"].is_string());
    assert_eq!(by_name("MetricInfValue")["value"], "+Inf");
    assert_eq!(by_name("MetricNaNValue")["value"], "NaN");

    let rules = json(RULES);
    let groups = rules["data"]["groups"].as_array().expect("groups");
    let hourly = groups
        .iter()
        .find(|g| g["name"] == "metric-hourly")
        .expect("metric-hourly is recorded");
    assert_eq!(hourly["lastEvaluation"], "0001-01-01T00:00:00Z");
    assert_eq!(hourly["rules"][0]["state"], "unknown");
}

#[test]
fn alerts_decode_and_keep_firing_counts_as_firing() {
    let alerts = decode(ALERTS).expect("the 3.x answer decodes");
    assert_eq!(alerts.len(), 5, "{alerts:?}");
    let state = |name: &str| {
        alerts
            .iter()
            .find(|a| a.labels.get("alertname") == Some(name))
            .unwrap_or_else(|| panic!("{name} decoded"))
            .state
    };
    // Its expression no longer holds; keep_firing_for keeps it firing, and
    // so must we.
    assert_eq!(state("MetricKeepFiring"), AlertState::Firing);
    // Values are not kept, but one that is not a finite number must not
    // make the whole answer undecodable.
    assert_eq!(state("MetricInfValue"), AlertState::Firing);
    assert_eq!(state("MetricNaNValue"), AlertState::Firing);
    assert_eq!(state("MetricPending"), AlertState::Pending);

    let snapshot = Snapshot::from_alerts(alerts, &Matcher::all());
    assert_eq!((snapshot.firing(), snapshot.pending()), (4, 1));
}

#[test]
fn utf8_label_names_and_values_decode_as_sent() {
    let alerts = decode(ALERTS).expect("the 3.x answer decodes");
    let utf8 = alerts
        .iter()
        .find(|a| &a.labels["alertname"] == "MetricUtf8Label")
        .expect("MetricUtf8Label decoded");
    assert_eq!(&utf8.labels["service.name"], "checkout");
    assert_eq!(&utf8.labels["region"], "zürich");
    assert_eq!(utf8.state, AlertState::Firing);
}

#[test]
fn a_group_never_evaluated_gives_no_timing() {
    let timings = decode_rule_timings(RULES, &["Metric"]).expect("the 3.x answer decodes");
    // metric-hourly (lastEvaluation at the zero time) is left out; only
    // metric-flow, evaluated every second, is timed.
    assert_eq!(timings.len(), 1, "{timings:?}");
    let flow = &timings[0];
    assert_eq!(flow.interval_ms, 1000);
    assert!(flow.evaluation_ms >= 1, "rounded up: {flow:?}");

    let rules = json(RULES);
    let recorded: Timestamp = rules["data"]["groups"][0]["lastEvaluation"]
        .as_str()
        .expect("lastEvaluation")
        .parse()
        .expect("an RFC 3339 time");
    assert_eq!(flow.last_evaluation_ms, recorded.as_millisecond());

    assert_eq!(decode_rule_timings(RULES, &["Trace"]), Ok(Vec::new()));
}
