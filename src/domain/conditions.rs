//! Our one condition in a conditions list that others write too: whether it
//! needs a write, and the list to write when the list is atomic. Pure, so
//! every rule of sharing is a table test.
//!
//! Other writers' entries are carried as raw JSON and put back exactly as
//! they were read: we never parse, normalise or reorder what is not ours.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use crate::domain::health::Verdict;

/// The raw `status.conditions` of a pipeline object (empty when absent or not
/// a list).
pub fn raw_list(object: &Value) -> &[Value] {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Our entry in the list, if there is one that parses as a condition.
pub fn find(list: &[Value], condition_type: &str) -> Option<Condition> {
    list.iter()
        .filter(|c| c.get("type").and_then(Value::as_str) == Some(condition_type))
        .find_map(|c| serde_json::from_value(c.clone()).ok())
}

/// Decides the condition to write, or `None` when the current one already says
/// the same. `lastTransitionTime` moves only when the status moves, as the
/// Kubernetes API conventions ask, so "how long has it been False" stays true.
pub fn plan(
    condition_type: &str,
    current: Option<&Condition>,
    verdict: &Verdict,
    generation: Option<i64>,
    now: Timestamp,
) -> Option<Condition> {
    let status = verdict.status.as_str();
    if let Some(c) = current
        && c.status == status
        && c.reason == verdict.reason
        && c.message == verdict.message
        && c.observed_generation == generation
    {
        return None;
    }
    let last_transition_time = match current {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Time(now),
    };
    Some(Condition {
        type_: condition_type.to_owned(),
        status: status.to_owned(),
        reason: verdict.reason.to_owned(),
        message: verdict.message.clone(),
        observed_generation: generation,
        last_transition_time,
    })
}

/// The whole list with `ours` in place of our entry (at its position), or
/// appended when we had none. Every other entry is kept as it was, in its
/// order; duplicates of our type, which a map list would not allow, collapse
/// into ours.
pub fn merge(list: &[Value], ours: &Condition) -> Vec<Value> {
    let ours_json = serde_json::to_value(ours).expect("a condition serializes");
    let is_ours = |c: &Value| c.get("type").and_then(Value::as_str) == Some(ours.type_.as_str());
    let mut merged = Vec::with_capacity(list.len() + 1);
    let mut placed = false;
    for entry in list {
        if is_ours(entry) {
            if !placed {
                merged.push(ours_json.clone());
                placed = true;
            }
        } else {
            merged.push(entry.clone());
        }
    }
    if !placed {
        merged.push(ours_json);
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::health::Status;
    use serde_json::json;

    fn verdict(status: Status, reason: &'static str) -> Verdict {
        Verdict {
            status,
            reason,
            message: format!("{reason} message"),
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    #[test]
    fn first_verdict_is_written_with_now_as_transition() {
        let c = plan(
            "T",
            None,
            &verdict(Status::True, "FlowHealthy"),
            Some(3),
            at(100),
        )
        .unwrap();
        assert_eq!(c.type_, "T");
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", "FlowHealthy")
        );
        assert_eq!(c.observed_generation, Some(3));
        assert_eq!(c.last_transition_time, Time(at(100)));
    }

    #[test]
    fn the_same_verdict_is_not_written_again() {
        let v = verdict(Status::False, "GatewayThrottling");
        let current = plan("T", None, &v, Some(1), at(100)).unwrap();
        assert_eq!(plan("T", Some(&current), &v, Some(1), at(200)), None);
    }

    #[test]
    fn the_transition_time_moves_only_with_the_status() {
        // (next status, next reason, transition time expected)
        let cases = [
            (Status::False, "GatewayAllTelemetryDataDropped", 100),
            (Status::True, "FlowHealthy", 200),
            (Status::Unknown, "GatewayProbingFailed", 200),
        ];
        let first = verdict(Status::False, "GatewayThrottling");
        let current = plan("T", None, &first, Some(1), at(100)).unwrap();
        for (status, reason, moved_at) in cases {
            let next = plan(
                "T",
                Some(&current),
                &verdict(status, reason),
                Some(1),
                at(200),
            )
            .expect("a new verdict is written");
            assert_eq!(next.reason, reason);
            assert_eq!(next.last_transition_time, Time(at(moved_at)), "{reason}");
        }
    }

    #[test]
    fn a_new_generation_is_written() {
        let v = verdict(Status::True, "FlowHealthy");
        let current = plan("T", None, &v, Some(1), at(100)).unwrap();
        let next = plan("T", Some(&current), &v, Some(2), at(200)).unwrap();
        assert_eq!(next.observed_generation, Some(2));
        assert_eq!(next.last_transition_time, Time(at(100)));
    }

    #[test]
    fn a_changed_message_is_drift_and_is_written_back() {
        let v = verdict(Status::True, "FlowHealthy");
        let mut current = plan("T", None, &v, Some(1), at(100)).unwrap();
        current.message = "edited by someone".into();
        let next = plan("T", Some(&current), &v, Some(1), at(200)).unwrap();
        assert_eq!(next.message, v.message);
        assert_eq!(next.last_transition_time, Time(at(100)));
    }

    fn theirs(kind: &str) -> Value {
        // Deliberately with fields and an order our own type would not produce.
        json!({"type": kind, "status": "True", "reason": "Theirs", "message": "",
               "lastTransitionTime": "2026-01-01T00:00:00Z", "extra": {"kept": [1, 2]}})
    }

    fn ours(status: &str) -> Condition {
        Condition {
            type_: "TelemetryFlowHealthy".into(),
            status: status.into(),
            reason: "FlowHealthy".into(),
            message: "m".into(),
            observed_generation: Some(1),
            last_transition_time: Time(at(5)),
        }
    }

    #[test]
    fn merge_keeps_every_other_entry_as_it_was_and_in_order() {
        type Case = (Vec<Value>, Vec<&'static str>);
        let our = serde_json::to_value(ours("True")).unwrap();
        let cases: Vec<Case> = vec![
            (vec![], vec!["TelemetryFlowHealthy"]),
            (
                vec![theirs("GatewayHealthy"), theirs("ConfigurationGenerated")],
                vec![
                    "GatewayHealthy",
                    "ConfigurationGenerated",
                    "TelemetryFlowHealthy",
                ],
            ),
            (
                vec![
                    theirs("GatewayHealthy"),
                    our.clone(),
                    theirs("AgentHealthy"),
                ],
                vec!["GatewayHealthy", "TelemetryFlowHealthy", "AgentHealthy"],
            ),
            (
                vec![our.clone(), theirs("A"), our.clone()],
                vec!["TelemetryFlowHealthy", "A"],
            ),
        ];
        for (list, want) in cases {
            let merged = merge(&list, &ours("False"));
            let types: Vec<&str> = merged.iter().map(|c| c["type"].as_str().unwrap()).collect();
            assert_eq!(types, want, "{list:?}");
            for entry in &list {
                if entry["type"] != "TelemetryFlowHealthy" {
                    assert!(merged.contains(entry), "{entry} was changed");
                }
            }
            let written = find(&merged, "TelemetryFlowHealthy").unwrap();
            assert_eq!(written.status, "False");
        }
    }

    #[test]
    fn find_reads_ours_and_skips_what_does_not_parse() {
        let object = json!({"status": {"conditions": [
            theirs("GatewayHealthy"),
            {"type": "TelemetryFlowHealthy", "status": 3},
            serde_json::to_value(ours("True")).unwrap(),
        ]}});
        let list = raw_list(&object);
        assert_eq!(list.len(), 3);
        assert_eq!(find(list, "TelemetryFlowHealthy"), Some(ours("True")));
        assert_eq!(find(list, "Missing"), None);
        assert!(raw_list(&json!({"status": {"conditions": "no"}})).is_empty());
        assert!(raw_list(&json!({})).is_empty());
    }
}
