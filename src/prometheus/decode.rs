//! The pure decoders: an `/api/v1/alerts` or `/api/v1/rules` body in, the
//! crate's types out. No I/O, so they are tested, fuzzed and benchmarked
//! without a server.

use k8s_openapi::jiff::Timestamp;
use prometheus_http_query::error::PrometheusError;
use prometheus_http_query::response::Alert;
use serde::Deserialize;

use crate::alerts::{ActiveAlert, AlertState};
use crate::phase::GroupTiming;

/// Why a body did not decode. Garbage and a Prometheus error are kept apart
/// because they are different causes to report (`decode`, `prometheus_error`).
#[derive(Debug, PartialEq)]
pub enum DecodeError {
    /// Not the JSON shape of the expected answer.
    Invalid(String),
    /// A well-formed `{"status":"error"}` answer.
    Prometheus(String),
}

#[derive(Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
enum Envelope<D> {
    Success { data: D },
    Error(PrometheusError),
}

impl<D> Envelope<D> {
    fn parse(body: &[u8]) -> Result<D, DecodeError>
    where
        D: serde::de::DeserializeOwned,
    {
        match serde_json::from_slice(body).map_err(|e| DecodeError::Invalid(e.to_string()))? {
            Envelope::Success { data } => Ok(data),
            Envelope::Error(e) => Err(DecodeError::Prometheus(format!(
                "{}: {}",
                e.error_type(),
                e.message()
            ))),
        }
    }
}

/// The parts of `/api/v1/rules` that timing needs. Our own, lenient model:
/// the crate's `RuleGroup` insists on fields older servers do not send and
/// decodes every alert of every rule, which phase locking has no use for.
#[derive(Deserialize)]
struct RulesData {
    groups: Vec<RulesGroup>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RulesGroup {
    interval: f64,
    #[serde(default)]
    evaluation_time: f64,
    last_evaluation: String,
    rules: Vec<RuleName>,
}

#[derive(Deserialize)]
struct RuleName {
    name: String,
    #[serde(rename = "type")]
    kind: String,
}

/// Decodes `/api/v1/rules` into the timing of the groups that hold alerts
/// named `prefix…`. Groups never evaluated yet are left out. Pure.
pub fn decode_rule_timings(body: &[u8], prefix: &str) -> Result<Vec<GroupTiming>, DecodeError> {
    let data: RulesData = Envelope::parse(body)?;
    Ok(data
        .groups
        .iter()
        .filter(|g| {
            g.rules
                .iter()
                .any(|r| r.kind == "alerting" && r.name.starts_with(prefix))
        })
        .filter_map(|g| {
            let last: Timestamp = g.last_evaluation.parse().ok()?;
            // Prometheus reports a group not yet evaluated at the zero time.
            (last.as_second() > 0).then(|| GroupTiming {
                last_evaluation_ms: last.as_millisecond(),
                interval_ms: (g.interval * 1000.0).round() as i64,
                evaluation_ms: (g.evaluation_time * 1000.0).ceil() as i64,
            })
        })
        .collect())
}

#[derive(Deserialize)]
struct AlertsData {
    alerts: Vec<Alert>,
}

/// Decodes an `/api/v1/alerts` body. Pure, so the parser is tested and fuzzed
/// without a server.
pub fn decode(body: &[u8]) -> Result<Vec<ActiveAlert>, DecodeError> {
    let data: AlertsData = Envelope::parse(body)?;
    Ok(data
        .alerts
        .into_iter()
        .filter_map(|alert| {
            let state = alert.state();
            let state = if state.is_firing() {
                AlertState::Firing
            } else if state.is_pending() {
                AlertState::Pending
            } else {
                return None;
            };
            Some(ActiveAlert {
                labels: alert.labels().clone().into_iter().collect(),
                state,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_firing_and_pending_alerts() {
        let body = br#"{"status":"success","data":{"alerts":[
            {"labels":{"alertname":"MetricGatewayThrottling","pipeline_name":"a"},
             "annotations":{},"state":"firing","activeAt":"2026-11-27T10:00:00.123456789Z","value":"1e+00"},
            {"labels":{"alertname":"MetricAgentSomeDataDropped"},"annotations":{"summary":"x"},
             "state":"pending","activeAt":"2026-11-27T10:00:01Z","value":"+Inf",
             "keepFiringSince":"2026-11-27T10:00:01Z"}]}}"#;
        let alerts = decode(body).unwrap();
        assert_eq!(alerts.len(), 2);
        assert_eq!(alerts[0].state, AlertState::Firing);
        assert_eq!(alerts[0].labels["pipeline_name"], "a");
        assert_eq!(alerts[1].state, AlertState::Pending);
    }

    #[test]
    fn prometheus_errors_and_garbage_are_told_apart() {
        let err = decode(br#"{"status":"error","errorType":"timeout","error":"query timed out"}"#);
        assert!(matches!(err, Err(DecodeError::Prometheus(m)) if m.contains("query timed out")));
        assert!(matches!(decode(b"<html>"), Err(DecodeError::Invalid(_))));
        assert!(matches!(
            decode(br#"{"status":"success","data":{"alerts":[{"labels":"#),
            Err(DecodeError::Invalid(_))
        ));
        assert!(matches!(
            decode(br#"{"status":"success","data":{}}"#),
            Err(DecodeError::Invalid(_))
        ));
    }

    #[test]
    fn rule_timings_come_from_groups_with_our_alerts() {
        let body = br#"{"status":"success","data":{"groups":[
            {"name":"metricpipeline-flow-health","file":"rules.yaml","interval":30,"limit":0,
             "evaluationTime":0.0123,"lastEvaluation":"2026-11-27T10:00:00.5Z",
             "rules":[{"state":"inactive","name":"MetricGatewayThrottling","query":"up == 0",
               "duration":60,"labels":{},"annotations":{},"alerts":[],"health":"ok",
               "evaluationTime":0.001,"lastEvaluation":"2026-11-27T10:00:00.5Z","type":"alerting"}]},
            {"name":"other","file":"rules.yaml","interval":15,"limit":0,
             "evaluationTime":0.001,"lastEvaluation":"2026-11-27T10:00:01Z",
             "rules":[{"state":"inactive","name":"TraceGatewayThrottling","query":"up == 0",
               "duration":0,"labels":{},"annotations":{},"alerts":[],"health":"ok",
               "evaluationTime":0.001,"lastEvaluation":"2026-11-27T10:00:01Z","type":"alerting"}]}]}}"#;
        let timings = decode_rule_timings(body, "Metric").unwrap();
        assert_eq!(timings.len(), 1);
        assert_eq!(timings[0].interval_ms, 30_000);
        assert_eq!(timings[0].evaluation_ms, 13);
        assert_eq!(timings[0].last_evaluation_ms % 1000, 500);
        assert!(decode_rule_timings(b"[]", "Metric").is_err());
    }
}
