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

/// Where a problem sits: the gateway serves every pipeline, the agent only
/// pipelines that scrape or collect inside the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Component {
    Gateway,
    Agent,
}

/// One problem the alert rules can report.
struct Problem {
    /// Alert rule name without the kind prefix.
    rule: &'static str,
    component: Component,
    reason: &'static str,
    message: &'static str,
}

/// Problems in precedence order: the first one firing decides the condition.
/// Losing all data outranks losing some, which outranks refusing data, and the
/// gateway outranks the agent because everything the agent sends goes through it.
const PROBLEMS: &[Problem] = &[
    Problem {
        rule: "GatewayAllDataDropped",
        component: Component::Gateway,
        reason: "GatewayAllTelemetryDataDropped",
        message: "The metric gateway cannot deliver any data to the backend: all of it is dropped. \
                  Check that the backend is reachable and accepts the data.",
    },
    Problem {
        rule: "GatewaySomeDataDropped",
        component: Component::Gateway,
        reason: "GatewaySomeTelemetryDataDropped",
        message: "The metric gateway drops part of the data it should deliver to the backend. \
                  Check the backend's limits and its error responses.",
    },
    Problem {
        rule: "GatewayThrottling",
        component: Component::Gateway,
        reason: "GatewayThrottling",
        message: "The metric gateway refuses part of the incoming data because it is at its \
                  capacity. Reduce the data volume or give the gateway more room.",
    },
    Problem {
        rule: "AgentAllDataDropped",
        component: Component::Agent,
        reason: "AgentAllTelemetryDataDropped",
        message: "The metric agent cannot deliver any data to the gateway: all of it is dropped. \
                  Check the gateway's health and the backend.",
    },
    Problem {
        rule: "AgentSomeDataDropped",
        component: Component::Agent,
        reason: "AgentSomeTelemetryDataDropped",
        message: "The metric agent drops part of the data it should deliver to the gateway. \
                  Check the gateway's health and the backend.",
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

/// What health needs to know about a pipeline besides its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipelineFacts<'a> {
    pub name: &'a str,
    /// Whether the pipeline has an input (prometheus, istio, runtime) served by
    /// the agent; agent alerts say nothing about pipelines without one.
    pub uses_agent: bool,
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
    let problem = PROBLEMS.iter().find(|p| {
        (p.component == Component::Gateway || pipeline.uses_agent) && firing.contains(&p.rule)
    });
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

    fn judge(alerts: &[(&str, Option<&str>)], uses_agent: bool) -> Verdict {
        let snap = snapshot(alerts);
        let facts = PipelineFacts {
            name: "a",
            uses_agent,
        };
        evaluate(facts, Knowledge::Fresh(&snap)).expect("fresh knowledge gives a verdict")
    }

    #[test]
    fn no_alert_is_healthy() {
        let v = judge(&[], true);
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
            let v = judge(&[(rule, Some("a"))], true);
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
            assert_eq!(judge(&firing, true).reason, *reason);
        }
    }

    #[test]
    fn other_pipelines_alerts_do_not_count() {
        let v = judge(&[("MetricGatewayAllDataDropped", Some("b"))], true);
        assert_eq!(v.status, Status::True);
    }

    #[test]
    fn unscoped_alerts_count_for_every_pipeline() {
        let v = judge(&[("MetricGatewayThrottling", None)], true);
        assert_eq!(v.reason, "GatewayThrottling");
    }

    #[test]
    fn agent_alerts_are_ignored_for_pipelines_without_agent_inputs() {
        let v = judge(&[("MetricAgentAllDataDropped", Some("a"))], false);
        assert_eq!(v.status, Status::True);
        let v = judge(
            &[
                ("MetricAgentAllDataDropped", Some("a")),
                ("MetricGatewaySomeDataDropped", Some("a")),
            ],
            false,
        );
        assert_eq!(v.reason, "GatewaySomeTelemetryDataDropped");
    }

    #[test]
    fn stale_knowledge_is_unknown_and_nothing_known_is_no_verdict() {
        let facts = PipelineFacts {
            name: "a",
            uses_agent: true,
        };
        let v = evaluate(facts, Knowledge::Stale { cause: "connect" }).unwrap();
        assert_eq!(
            (v.status, v.reason),
            (Status::Unknown, "GatewayProbingFailed")
        );
        assert!(v.message.contains("connect"));
        assert_eq!(evaluate(facts, Knowledge::Nothing), None);
    }
}
