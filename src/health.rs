//! From the alerts firing for a pipeline to the flow-health condition it should
//! carry. Pure: no clock, no client, so every precedence case is a table test.
//!
//! The reason strings are an interface shared with Kyma's telemetry-manager and
//! must stay exactly as they are; the messages are ours.

use crate::alerts::Snapshot;

/// The default condition type, the one telemetry-manager writes.
pub const DEFAULT_CONDITION_TYPE: &str = "TelemetryFlowHealthy";

pub const REASON_FLOW_HEALTHY: &str = "FlowHealthy";
pub const REASON_GATEWAY_PROBING_FAILED: &str = "GatewayProbingFailed";

/// A condition status, spelled as Kubernetes spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    True,
    False,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
            Status::Unknown => "Unknown",
        }
    }
}

/// One problem the alert rules can report.
struct Problem {
    /// Alert rule name without the kind prefix.
    rule: &'static str,
    reason: &'static str,
    message: &'static str,
}

/// Problems in precedence order: the first one firing decides the condition,
/// in telemetry-manager's order. Losing all data outranks losing some, which
/// outranks refusing data; gateway problems rank above agent problems.
///
/// Agent alerts count for every MetricPipeline, whatever its inputs, as they
/// do in telemetry-manager since it stopped gating them on inputs: an agent
/// alert names the pipeline whose exporter fails, so it is about that
/// pipeline even when its agent inputs are off.
const PROBLEMS: &[Problem] = &[
    Problem {
        rule: "GatewayAllDataDropped",
        reason: "GatewayAllTelemetryDataDropped",
        message: "The metric gateway cannot deliver any data to the backend: all of it is dropped. \
                  Check that the backend is reachable and accepts the data.",
    },
    Problem {
        rule: "GatewaySomeDataDropped",
        reason: "GatewaySomeTelemetryDataDropped",
        message: "The metric gateway drops part of the data it should deliver to the backend. \
                  Check the backend's limits and its error responses.",
    },
    Problem {
        rule: "GatewayThrottling",
        reason: "GatewayThrottling",
        message: "The metric gateway refuses part of the incoming data because it is at its \
                  capacity. Reduce the data volume or give the gateway more room.",
    },
    Problem {
        rule: "AgentAllDataDropped",
        reason: "AgentAllTelemetryDataDropped",
        message: "The metric agent cannot deliver any data to the backend: all of it is dropped. \
                  The agent exports straight to the pipeline's backend, not through the \
                  gateway: check that the backend is reachable from every node.",
    },
    Problem {
        rule: "AgentSomeDataDropped",
        reason: "AgentSomeTelemetryDataDropped",
        message: "The metric agent drops part of the data it should deliver to the backend. \
                  The agent exports straight to the pipeline's backend, not through the \
                  gateway: check the backend's limits and its error responses.",
    },
];

const HEALTHY_MESSAGE: &str = "No problem is reported for the metric flow of this pipeline.";

/// The condition health decides on; `controller` turns it into a Kubernetes
/// condition and decides whether it is worth a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub status: Status,
    pub reason: &'static str,
    pub message: String,
}

/// What health needs to know about a MetricPipeline: only its name, since
/// every alert of the kind counts for it whatever its spec says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipelineFacts<'a> {
    pub name: &'a str,
}

/// What the poller knows when a pipeline is judged.
#[derive(Clone, Copy, Debug)]
pub enum Knowledge<'a> {
    /// No poll has finished yet and the staleness bound has not run out:
    /// nothing is known, so nothing is written.
    Nothing,
    /// The last successful poll is recent enough to trust.
    Fresh(&'a Snapshot),
    /// No successful poll for longer than the staleness bound. `cause` is the
    /// class of the last error, kept short and stable so that repeated failures
    /// of the same kind do not rewrite the status.
    Stale { cause: &'a str },
}

/// The flow-health verdict for one pipeline, or `None` when nothing is known yet.
pub fn evaluate(pipeline: PipelineFacts<'_>, knowledge: Knowledge<'_>) -> Option<Verdict> {
    let snapshot = match knowledge {
        Knowledge::Nothing => return None,
        Knowledge::Stale { cause } => {
            return Some(Verdict {
                status: Status::Unknown,
                reason: REASON_GATEWAY_PROBING_FAILED,
                message: format!(
                    "The flow health cannot be determined: Prometheus has not answered the \
                     alert query for too long (last error: {cause})."
                ),
            });
        }
        Knowledge::Fresh(snapshot) => snapshot,
    };
    let firing: Vec<&str> = snapshot.rules_for(pipeline.name).collect();
    let problem = PROBLEMS.iter().find(|p| firing.contains(&p.rule));
    Some(match problem {
        Some(p) => Verdict {
            status: Status::False,
            reason: p.reason,
            message: p.message.to_owned(),
        },
        None => Verdict {
            status: Status::True,
            reason: REASON_FLOW_HEALTHY,
            message: HEALTHY_MESSAGE.to_owned(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::{ActiveAlert, AlertState, Matcher};
    use std::collections::BTreeMap;

    fn snapshot(alerts: &[(&str, Option<&str>)]) -> Snapshot {
        let alerts = alerts.iter().map(|(name, pipeline)| {
            let mut labels = vec![("alertname".to_string(), name.to_string())];
            if let Some(p) = pipeline {
                labels.push(("pipeline_name".into(), p.to_string()));
            }
            ActiveAlert {
                labels: labels.into_iter().collect(),
                state: AlertState::Firing,
            }
        });
        Snapshot::from_alerts(alerts, &Matcher::default())
    }

    fn judge(alerts: &[(&str, Option<&str>)]) -> Verdict {
        let snap = snapshot(alerts);
        let facts = PipelineFacts { name: "a" };
        evaluate(facts, Knowledge::Fresh(&snap)).expect("fresh knowledge gives a verdict")
    }

    #[test]
    fn no_alert_is_healthy() {
        let v = judge(&[]);
        assert_eq!((v.status, v.reason), (Status::True, "FlowHealthy"));
    }

    #[test]
    fn each_rule_maps_to_its_reason() {
        let cases = [
            (
                "MetricGatewayAllDataDropped",
                "GatewayAllTelemetryDataDropped",
            ),
            (
                "MetricGatewaySomeDataDropped",
                "GatewaySomeTelemetryDataDropped",
            ),
            ("MetricGatewayThrottling", "GatewayThrottling"),
            ("MetricAgentAllDataDropped", "AgentAllTelemetryDataDropped"),
            (
                "MetricAgentSomeDataDropped",
                "AgentSomeTelemetryDataDropped",
            ),
        ];
        for (rule, reason) in cases {
            let v = judge(&[(rule, Some("a"))]);
            assert_eq!((v.status, v.reason), (Status::False, reason), "{rule}");
        }
    }

    #[test]
    fn precedence_picks_the_most_severe_problem() {
        let all = [
            "MetricAgentSomeDataDropped",
            "MetricAgentAllDataDropped",
            "MetricGatewayThrottling",
            "MetricGatewaySomeDataDropped",
            "MetricGatewayAllDataDropped",
        ];
        let expected = [
            "GatewayAllTelemetryDataDropped",
            "GatewaySomeTelemetryDataDropped",
            "GatewayThrottling",
            "AgentAllTelemetryDataDropped",
            "AgentSomeTelemetryDataDropped",
        ];
        // Drop the most severe problem one at a time: the next one must win.
        for (i, reason) in expected.iter().enumerate() {
            let firing: Vec<_> = all[..all.len() - i]
                .iter()
                .map(|r| (*r, Some("a")))
                .collect();
            assert_eq!(judge(&firing).reason, *reason);
        }
    }

    #[test]
    fn other_pipelines_alerts_do_not_count() {
        let v = judge(&[("MetricGatewayAllDataDropped", Some("b"))]);
        assert_eq!(v.status, Status::True);
    }

    #[test]
    fn unscoped_alerts_count_for_every_pipeline() {
        let v = judge(&[("MetricGatewayThrottling", None)]);
        assert_eq!(v.reason, "GatewayThrottling");
    }

    #[test]
    fn agent_alerts_count_like_gateway_alerts_below_them() {
        let v = judge(&[("MetricAgentAllDataDropped", Some("a"))]);
        assert_eq!(v.reason, "AgentAllTelemetryDataDropped");
        assert!(v.message.contains("straight to the pipeline's backend"));
        let v = judge(&[
            ("MetricAgentAllDataDropped", Some("a")),
            ("MetricGatewaySomeDataDropped", Some("a")),
        ]);
        assert_eq!(v.reason, "GatewaySomeTelemetryDataDropped");
    }

    /// tests/fixtures/conformance.yaml: telemetry-manager's verdicts for
    /// alert sets, also run against a real Prometheus by
    /// tests/conformance_prometheus.rs.
    #[derive(serde::Deserialize)]
    struct Conformance {
        pipelines: Vec<String>,
        cases: Vec<Case>,
    }

    #[derive(serde::Deserialize)]
    struct Case {
        name: String,
        alerts: Vec<CaseAlert>,
        expect: BTreeMap<String, String>,
    }

    #[derive(serde::Deserialize)]
    struct CaseAlert {
        alertname: String,
        #[serde(default)]
        labels: BTreeMap<String, String>,
        #[serde(default)]
        state: Option<String>,
    }

    #[test]
    fn conformance_cases_match_telemetry_manager() {
        let file: Conformance = serde_norway::from_str(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/conformance.yaml"
        )))
        .expect("the conformance file parses");
        assert!(file.cases.len() >= 15, "the table lost cases");
        let mut mismatches = Vec::new();
        for case in &file.cases {
            let alerts = case.alerts.iter().map(|a| {
                let mut labels = a.labels.clone();
                labels.insert("alertname".into(), a.alertname.clone());
                let state = match a.state.as_deref() {
                    None | Some("firing") => AlertState::Firing,
                    Some("pending") => AlertState::Pending,
                    Some(other) => panic!("{}: unknown state {other}", case.name),
                };
                ActiveAlert { labels, state }
            });
            let snap = Snapshot::from_alerts(alerts, &Matcher::default());
            for pipeline in &file.pipelines {
                let want = &case.expect[pipeline];
                let v = evaluate(PipelineFacts { name: pipeline }, Knowledge::Fresh(&snap))
                    .expect("fresh knowledge gives a verdict");
                let got = format!("{}/{}", v.status.as_str(), v.reason);
                if &got != want {
                    mismatches.push(format!("{}: {pipeline}: want {want}, got {got}", case.name));
                }
            }
        }
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    }

    #[test]
    fn stale_knowledge_is_unknown_and_nothing_known_is_no_verdict() {
        let facts = PipelineFacts { name: "a" };
        let v = evaluate(facts, Knowledge::Stale { cause: "connect" }).unwrap();
        assert_eq!(
            (v.status, v.reason),
            (Status::Unknown, "GatewayProbingFailed")
        );
        assert!(v.message.contains("connect"));
        assert_eq!(evaluate(facts, Knowledge::Nothing), None);
    }
}
