//! The timing decoders: when the rule groups that hold our alerts are
//! evaluated (`/api/v1/rules`), for phase locking, and when the server
//! started (`/api/v1/status/runtimeinfo`), for telling a restart apart from
//! resolved alerts. Pure, like the alert decoders.

use std::collections::BTreeMap;
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
    /// Whether a poll placed after this group's evaluation is checked by a
    /// timing reading taken with it, so that a race costs a request rather
    /// than an interval. The poller decides (`polling::phase::checks`);
    /// decoded, it is `false`.
    pub checked: bool,
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
                checked: false,
            })
        })
        .collect())
}

/// How many times each rule group has been evaluated since the server
/// started, by group (the hash [`GroupTiming::group`] uses), from
/// Prometheus' own `/metrics`: scheduled iterations less missed ones. A
/// group is named there as `file;name`, and either may hold a `;`, so each
/// way of splitting it is entered; only real groups are ever looked up.
/// Lines of other metrics, and those that do not parse, count nothing. Pure.
pub fn decode_evaluations(text: &str) -> BTreeMap<u64, u64> {
    let mut scheduled: BTreeMap<String, f64> = BTreeMap::new();
    let mut missed: BTreeMap<String, f64> = BTreeMap::new();
    for line in text.lines() {
        let (counts, rest) =
            if let Some(rest) = line.strip_prefix("prometheus_rule_group_iterations_total{") {
                (&mut scheduled, rest)
            } else if let Some(rest) =
                line.strip_prefix("prometheus_rule_group_iterations_missed_total{")
            {
                (&mut missed, rest)
            } else {
                continue;
            };
        if let Some((key, value)) = group_sample(rest) {
            counts.insert(key, value);
        }
    }
    let mut out = BTreeMap::new();
    for (key, total) in scheduled {
        let executed = (total - missed.get(&key).copied().unwrap_or(0.0)).max(0.0) as u64;
        for (at, _) in key.match_indices(';') {
            let mut group = DefaultHasher::new();
            (&key[..at], &key[at + 1..]).hash(&mut group);
            out.insert(group.finish(), executed);
        }
    }
    out
}

/// The `rule_group` label's value and the sample's value from what follows
/// a metric name's `{`.
fn group_sample(rest: &str) -> Option<(String, f64)> {
    let (labels, value) = rest.rsplit_once("} ")?;
    let value: f64 = value.split_whitespace().next()?.parse().ok()?;
    let quoted = labels.split_once("rule_group=\"")?.1;
    let mut key = String::new();
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some((key, value)),
            '\\' => match chars.next()? {
                'n' => key.push('\n'),
                other => key.push(other),
            },
            c => key.push(c),
        }
    }
    None
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
    fn evaluations_are_counted_per_group_less_the_missed_ones() {
        let text = "# HELP prometheus_rule_group_iterations_total The total number\n\
            prometheus_rule_group_iterations_total{rule_group=\"/etc/rules.yaml;telemetry\"} 7\n\
            prometheus_rule_group_iterations_missed_total{rule_group=\"/etc/rules.yaml;telemetry\"} 2\n\
            prometheus_rule_group_iterations_total{rule_group=\"/etc/a;b.yaml;g;h\"} 3\n\
            prometheus_rule_group_iterations_total{rule_group=\"/x/q\\\"t.yaml;other\"} 1\n\
            prometheus_rule_group_last_duration_seconds{rule_group=\"/etc/rules.yaml;telemetry\"} 0.01\n\
            prometheus_rule_group_iterations_total{rule_group=\"broken";
        let counts = decode_evaluations(text);
        let key = |file: &str, name: &str| {
            let mut h = DefaultHasher::new();
            (file, name).hash(&mut h);
            h.finish()
        };
        assert_eq!(counts.get(&key("/etc/rules.yaml", "telemetry")), Some(&5));
        // A `;` in the file or the name: every split is entered.
        assert_eq!(counts.get(&key("/etc/a;b.yaml", "g;h")), Some(&3));
        assert_eq!(counts.get(&key("/etc/a", "b.yaml;g;h")), Some(&3));
        // An escaped quote in the file name.
        assert_eq!(counts.get(&key("/x/q\"t.yaml", "other")), Some(&1));
        assert_eq!(counts.len(), 5);
        // The same key as the group's timing.
        let rules =
            br#"{"status":"success","data":{"groups":[{"name":"telemetry","file":"/etc/rules.yaml",
            "interval":30,"evaluationTime":0.01,"lastEvaluation":"2026-12-04T10:00:00Z",
            "rules":[{"name":"MetricGatewayThrottling","type":"alerting"}]}]}}"#;
        let timing = decode_rule_timings(rules, &["Metric"]).unwrap();
        assert_eq!(counts.get(&timing[0].group), Some(&5));
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
