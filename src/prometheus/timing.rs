//! The timing decoders: when the rule groups that hold our alerts are
//! evaluated (`/api/v1/rules`), for phase locking, and when the server
//! started (`/api/v1/status/runtimeinfo`), for telling a restart apart from
//! resolved alerts. Pure, like the alert decoders.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::marker::PhantomData;

use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;

use super::envelope::{DecodeError, envelope};

/// When one rule group is evaluated, in Unix milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupTiming {
    /// Which group (its file and name, hashed): readings of the same group
    /// are put together by it.
    pub group: u64,
    /// Start of the last evaluation.
    pub last_evaluation_ms: i64,
    /// Time between evaluations.
    pub interval_ms: i64,
    /// How long the last evaluation took.
    pub evaluation_ms: i64,
}

/// The parts of `/api/v1/rules` that timing needs. Our own, lenient model:
/// the crate's `RuleGroup` insists on fields older servers do not send and
/// decodes every alert of every rule, which phase locking has no use for.
#[derive(Deserialize)]
struct RulesData {
    /// `null` from Thanos Query when there are none.
    groups: Option<Vec<RulesGroup>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RulesGroup {
    #[serde(default)]
    name: String,
    #[serde(default)]
    file: String,
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
/// whose name starts with one of `prefixes` (one per watched kind). Groups
/// never evaluated yet are left out. Pure.
pub fn decode_rule_timings(
    body: &[u8],
    prefixes: &[&str],
) -> Result<Vec<GroupTiming>, DecodeError> {
    let (data, _): (RulesData, _) = envelope(body, PhantomData)?;
    Ok(data
        .groups
        .unwrap_or_default()
        .iter()
        .filter(|g| {
            g.rules
                .iter()
                .any(|r| r.kind == "alerting" && prefixes.iter().any(|p| r.name.starts_with(p)))
        })
        .filter_map(|g| {
            let last: Timestamp = g.last_evaluation.parse().ok()?;
            // Prometheus tells groups apart by file and name.
            let mut group = DefaultHasher::new();
            (&g.file, &g.name).hash(&mut group);
            // Prometheus reports a group not yet evaluated at the zero time.
            (last.as_second() > 0).then(|| GroupTiming {
                group: group.finish(),
                last_evaluation_ms: last.as_millisecond(),
                interval_ms: (g.interval * 1000.0).round() as i64,
                evaluation_ms: (g.evaluation_time * 1000.0).ceil() as i64,
            })
        })
        .collect())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuntimeInfo {
    start_time: String,
}

/// Decodes `/api/v1/status/runtimeinfo` into the moment the server started,
/// in Unix ms. Pure.
pub fn decode_start_time(body: &[u8]) -> Result<i64, DecodeError> {
    let (info, _): (RuntimeInfo, _) = envelope(body, PhantomData)?;
    let started: Timestamp = info
        .start_time
        .parse()
        .map_err(|e| DecodeError::Invalid(format!("startTime {:?}: {e}", info.start_time)))?;
    Ok(started.as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let timings = decode_rule_timings(body, &["Metric"]).unwrap();
        assert_eq!(timings.len(), 1);
        assert_eq!(timings[0].interval_ms, 30_000);
        assert_eq!(timings[0].evaluation_ms, 13);
        assert_eq!(timings[0].last_evaluation_ms % 1000, 500);
        // A kind whose rules sit in a group of their own brings that group.
        let both = decode_rule_timings(body, &["Metric", "Trace"]).unwrap();
        assert_eq!(both.len(), 2);
        assert_ne!(both[0].group, both[1].group);
        assert_eq!(both[0], timings[0]);
        assert!(decode_rule_timings(b"[]", &["Metric"]).is_err());
        let none = br#"{"status":"success","data":{"groups":null}}"#;
        assert_eq!(decode_rule_timings(none, &["Metric"]).unwrap(), []);
    }
}
