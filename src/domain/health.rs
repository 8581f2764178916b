//! From the alerts firing for a pipeline to the flow-health condition it should
//! carry. Pure: no clock, no client, so every precedence case is a table test.
//!
//! The verdicts are data: one table of problems per kind of pipeline, in
//! telemetry-manager's precedence order, each row gated on what the pipeline
//! uses. The reason strings are an interface shared with telemetry-manager and
//! must stay exactly as they are; the messages are ours.

use crate::domain::alerts::Snapshot;
use crate::domain::kind::Kind;

/// The default condition type, the one telemetry-manager writes.
pub const DEFAULT_CONDITION_TYPE: &str = "TelemetryFlowHealthy";

pub const REASON_FLOW_HEALTHY: &str = "FlowHealthy";
pub const REASON_GATEWAY_PROBING_FAILED: &str = "GatewayProbingFailed";
pub const REASON_AGENT_PROBING_FAILED: &str = "AgentProbingFailed";

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

/// When a row counts for a pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gate {
    /// For every pipeline of the table's kind.
    Always,
    /// Only for a LogPipeline with a runtime input: the log agent serves it.
    RuntimeInput,
    /// Only for a LogPipeline with an OTLP input: the gateway serves it.
    OtlpInput,
}

/// One problem the alert rules can report.
struct Row {
    /// Alert rule name without the kind prefix.
    rule: &'static str,
    gate: Gate,
    reason: &'static str,
    message: &'static str,
}

const fn row(rule: &'static str, gate: Gate, reason: &'static str, message: &'static str) -> Row {
    Row {
        rule,
        gate,
        reason,
        message,
    }
}

const GATEWAY_ALL: &str = "GatewayAllTelemetryDataDropped";
const GATEWAY_SOME: &str = "GatewaySomeTelemetryDataDropped";
const GATEWAY_THROTTLING: &str = "GatewayThrottling";
const AGENT_ALL: &str = "AgentAllTelemetryDataDropped";
const AGENT_SOME: &str = "AgentSomeTelemetryDataDropped";
const AGENT_BUFFER: &str = "AgentBufferFillingUp";
const AGENT_NO_LOGS: &str = "AgentNoLogsDelivered";

/// MetricPipelines: gateway before agent, all before some before throttling.
/// Agent alerts count for every MetricPipeline, whatever its inputs, as in
/// telemetry-manager since it stopped gating them on inputs: an agent alert
/// names the pipeline whose exporter fails.
#[rustfmt::skip]
const METRIC: &[Row] = &[
    row("GatewayAllDataDropped", Gate::Always, GATEWAY_ALL,
        "The metric gateway cannot deliver any data to the backend: all of it is dropped. \
         Check that the backend is reachable and accepts the data."),
    row("GatewaySomeDataDropped", Gate::Always, GATEWAY_SOME,
        "The metric gateway drops part of the data it should deliver to the backend. \
         Check the backend's limits and its error responses."),
    row("GatewayThrottling", Gate::Always, GATEWAY_THROTTLING,
        "The metric gateway refuses part of the incoming data because it is at its \
         capacity. Reduce the data volume or give the gateway more room."),
    row("AgentAllDataDropped", Gate::Always, AGENT_ALL,
        "The metric agent cannot deliver any data to the backend: all of it is dropped. \
         The agent exports straight to the pipeline's backend, not through the \
         gateway: check that the backend is reachable from every node."),
    row("AgentSomeDataDropped", Gate::Always, AGENT_SOME,
        "The metric agent drops part of the data it should deliver to the backend. \
         The agent exports straight to the pipeline's backend, not through the \
         gateway: check the backend's limits and its error responses."),
];

/// TracePipelines: the gateway only.
#[rustfmt::skip]
const TRACE: &[Row] = &[
    row("GatewayAllDataDropped", Gate::Always, GATEWAY_ALL,
        "The trace gateway cannot deliver any spans to the backend: all of them are \
         dropped. Check that the backend is reachable and accepts the data."),
    row("GatewaySomeDataDropped", Gate::Always, GATEWAY_SOME,
        "The trace gateway drops part of the spans it should deliver to the backend. \
         Check the backend's limits and its error responses."),
    row("GatewayThrottling", Gate::Always, GATEWAY_THROTTLING,
        "The trace gateway refuses part of the incoming spans because it is at its \
         capacity. Reduce the data volume or give the gateway more room."),
];

/// LogPipelines with an OTLP output: the agent counts with a runtime input,
/// the gateway with an OTLP input, and the worse of the two wins, the agent
/// first on a tie (telemetry-manager combines its two probes that way; its
/// agent probe reports no buffer alert, so none is here).
#[rustfmt::skip]
const LOG_OTLP: &[Row] = &[
    row("AgentAllDataDropped", Gate::RuntimeInput, AGENT_ALL,
        "The log agent cannot deliver any logs to the backend: all of them are dropped. \
         Check that the backend is reachable from every node and accepts the data."),
    row("GatewayAllDataDropped", Gate::OtlpInput, GATEWAY_ALL,
        "The log gateway cannot deliver any logs to the backend: all of them are \
         dropped. Check that the backend is reachable and accepts the data."),
    row("AgentSomeDataDropped", Gate::RuntimeInput, AGENT_SOME,
        "The log agent drops part of the logs it should deliver to the backend. \
         Check the backend's limits and its error responses."),
    row("GatewaySomeDataDropped", Gate::OtlpInput, GATEWAY_SOME,
        "The log gateway drops part of the logs it should deliver to the backend. \
         Check the backend's limits and its error responses."),
    row("GatewayThrottling", Gate::OtlpInput, GATEWAY_THROTTLING,
        "The log gateway refuses part of the incoming logs because it is at its \
         capacity. Reduce the data volume or give the gateway more room."),
];

/// LogPipelines with any other output: Fluent Bit on every node.
#[rustfmt::skip]
const LOG_FLUENT_BIT: &[Row] = &[
    row("FluentBitAllDataDropped", Gate::Always, AGENT_ALL,
        "Fluent Bit cannot deliver any logs to the backend: all of them are dropped. \
         Check that the backend is reachable from every node and accepts the data."),
    row("FluentBitSomeDataDropped", Gate::Always, AGENT_SOME,
        "Fluent Bit drops part of the logs it should deliver to the backend. \
         Check the backend's limits and its error responses."),
    row("FluentBitNoLogsDelivered", Gate::Always, AGENT_NO_LOGS,
        "Fluent Bit reads logs but delivers none to the backend. Check the output \
         configuration and that the backend answers."),
    row("FluentBitBufferInUse", Gate::Always, AGENT_BUFFER,
        "Fluent Bit buffers more and more logs because the backend takes them too \
         slowly; once the buffer is full, logs are lost. Check the backend's health \
         and limits."),
];

/// The verdict health decides on; `controller` turns it into a Kubernetes
/// condition and decides whether it is worth a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub status: Status,
    pub reason: &'static str,
    pub message: String,
}

/// The three facts of a LogPipeline's spec that decide which alerts count
/// for it, as telemetry-manager reads them (a field's presence, not its
/// `enabled`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogSpec {
    /// `spec.output.otlp` is set: the OTLP flow, else Fluent Bit.
    pub otlp_output: bool,
    /// `spec.input.runtime` (v1alpha1: `application`) is set: the agent counts.
    pub runtime_input: bool,
    /// `spec.input.otlp` is set: the gateway counts.
    pub otlp_input: bool,
}

/// What health needs to know about a pipeline: its kind and name, and for a
/// LogPipeline what its spec uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipelineFacts<'a> {
    pub kind: Kind,
    pub name: &'a str,
    /// Read only for LogPipelines.
    pub log: LogSpec,
}

impl<'a> PipelineFacts<'a> {
    /// A MetricPipeline or TracePipeline, whose spec changes nothing.
    pub fn new(kind: Kind, name: &'a str) -> PipelineFacts<'a> {
        PipelineFacts {
            kind,
            name,
            log: LogSpec::default(),
        }
    }

    fn table(&self) -> &'static [Row] {
        match self.kind {
            Kind::Metric => METRIC,
            Kind::Trace => TRACE,
            Kind::Log if self.log.otlp_output => LOG_OTLP,
            Kind::Log => LOG_FLUENT_BIT,
        }
    }

    fn counts(&self, gate: Gate) -> bool {
        match gate {
            Gate::Always => true,
            Gate::RuntimeInput => self.log.runtime_input,
            Gate::OtlpInput => self.log.otlp_input,
        }
    }

    /// The reason for "Prometheus cannot be asked": the component the manager
    /// would have failed to probe first. `None` where it probes nothing (an
    /// OTLP LogPipeline with neither input), which stays healthy.
    fn probing_failed(&self) -> Option<&'static str> {
        match self.kind {
            Kind::Metric | Kind::Trace => Some(REASON_GATEWAY_PROBING_FAILED),
            Kind::Log if !self.log.otlp_output => Some(REASON_AGENT_PROBING_FAILED),
            Kind::Log if self.log.runtime_input => Some(REASON_AGENT_PROBING_FAILED),
            Kind::Log if self.log.otlp_input => Some(REASON_GATEWAY_PROBING_FAILED),
            Kind::Log => None,
        }
    }
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

fn healthy(kind: Kind) -> Verdict {
    Verdict {
        status: Status::True,
        reason: REASON_FLOW_HEALTHY,
        message: format!("No problem is reported for the {kind} flow of this pipeline."),
    }
}

/// The flow-health verdict for one pipeline, or `None` when nothing is known yet.
pub fn evaluate(pipeline: PipelineFacts<'_>, knowledge: Knowledge<'_>) -> Option<Verdict> {
    let snapshot = match knowledge {
        Knowledge::Nothing => return None,
        Knowledge::Stale { cause } => {
            return Some(match pipeline.probing_failed() {
                Some(reason) => Verdict {
                    status: Status::Unknown,
                    reason,
                    message: format!(
                        "The flow health cannot be determined: Prometheus has not answered the \
                         alert query for too long (last error: {cause})."
                    ),
                },
                None => healthy(pipeline.kind),
            });
        }
        Knowledge::Fresh(snapshot) => snapshot,
    };
    let firing: Vec<&str> = snapshot.rules_for(pipeline.kind, pipeline.name).collect();
    let problem = pipeline
        .table()
        .iter()
        .find(|row| pipeline.counts(row.gate) && firing.contains(&row.rule));
    Some(match problem {
        Some(row) => Verdict {
            status: Status::False,
            reason: row.reason,
            message: row.message.to_owned(),
        },
        None => healthy(pipeline.kind),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::alerts::{ActiveAlert, AlertState, Matcher};
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
        Snapshot::from_alerts(alerts, &Matcher::all())
    }

    fn judge(alerts: &[(&str, Option<&str>)]) -> Verdict {
        let snap = snapshot(alerts);
        let facts = PipelineFacts::new(Kind::Metric, "a");
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
                ActiveAlert {
                    labels: (&labels).into(),
                    state,
                }
            });
            let snap = Snapshot::from_alerts(alerts, &Matcher::all());
            for pipeline in &file.pipelines {
                let want = &case.expect[pipeline];
                let v = evaluate(
                    PipelineFacts::new(Kind::Metric, pipeline),
                    Knowledge::Fresh(&snap),
                )
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
        let facts = PipelineFacts::new(Kind::Metric, "a");
        let v = evaluate(facts, Knowledge::Stale { cause: "connect" }).unwrap();
        assert_eq!(
            (v.status, v.reason),
            (Status::Unknown, "GatewayProbingFailed")
        );
        assert!(v.message.contains("connect"));
        assert_eq!(evaluate(facts, Knowledge::Nothing), None);
    }

    fn log(otlp_output: bool, runtime_input: bool, otlp_input: bool) -> LogSpec {
        LogSpec {
            otlp_output,
            runtime_input,
            otlp_input,
        }
    }

    /// Judges pipeline "a" of `kind` with `spec` under the firing alerts
    /// (full alert names, all scoped to "a" except throttling).
    fn verdict_of(kind: Kind, spec: LogSpec, firing: &[&str]) -> (Status, &'static str) {
        let alerts: Vec<(&str, Option<&str>)> = firing
            .iter()
            .map(|a| (*a, (!a.ends_with("Throttling")).then_some("a")))
            .collect();
        let snap = snapshot(&alerts);
        let facts = PipelineFacts {
            kind,
            name: "a",
            log: spec,
        };
        let v = evaluate(facts, Knowledge::Fresh(&snap)).unwrap();
        (v.status, v.reason)
    }

    /// Every reason of every kind, and the precedence: each row lists alerts
    /// firing together and the reason that must win.
    #[test]
    fn every_kind_has_its_reasons_in_its_order() {
        let none = LogSpec::default();
        let both = log(true, true, true);
        let fluent = log(false, true, false);
        type Case<'a> = (Kind, LogSpec, &'a [&'a str], &'a str);
        #[rustfmt::skip]
        let cases: &[Case] = &[
            (Kind::Trace, none, &[], "FlowHealthy"),
            (Kind::Trace, none, &["TraceGatewayThrottling"], "GatewayThrottling"),
            (Kind::Trace, none, &["TraceGatewayThrottling", "TraceGatewaySomeDataDropped"], "GatewaySomeTelemetryDataDropped"),
            (Kind::Trace, none, &["TraceGatewaySomeDataDropped", "TraceGatewayAllDataDropped"], "GatewayAllTelemetryDataDropped"),
            // Traces have no agent, and other kinds' alerts never count.
            (Kind::Trace, none, &["TraceAgentAllDataDropped", "MetricGatewayAllDataDropped", "LogGatewayAllDataDropped"], "FlowHealthy"),
            // OTLP logs with both inputs: all > some > throttling, agent first on a tie.
            (Kind::Log, both, &["LogGatewayThrottling"], "GatewayThrottling"),
            (Kind::Log, both, &["LogGatewayThrottling", "LogGatewaySomeDataDropped"], "GatewaySomeTelemetryDataDropped"),
            (Kind::Log, both, &["LogGatewaySomeDataDropped", "LogAgentSomeDataDropped"], "AgentSomeTelemetryDataDropped"),
            (Kind::Log, both, &["LogAgentSomeDataDropped", "LogGatewayAllDataDropped"], "GatewayAllTelemetryDataDropped"),
            (Kind::Log, both, &["LogGatewayAllDataDropped", "LogAgentAllDataDropped"], "AgentAllTelemetryDataDropped"),
            // Agent alerts only with a runtime input, gateway alerts only with an OTLP input.
            (Kind::Log, log(true, false, true), &["LogAgentAllDataDropped"], "FlowHealthy"),
            (Kind::Log, log(true, false, true), &["LogAgentAllDataDropped", "LogGatewayThrottling"], "GatewayThrottling"),
            (Kind::Log, log(true, true, false), &["LogGatewayAllDataDropped", "LogGatewayThrottling"], "FlowHealthy"),
            (Kind::Log, log(true, true, false), &["LogGatewayAllDataDropped", "LogAgentSomeDataDropped"], "AgentSomeTelemetryDataDropped"),
            // OTLP logs never read Fluent Bit's alerts, and Fluent Bit never the collectors'.
            (Kind::Log, both, &["LogFluentBitAllDataDropped", "LogFluentBitBufferInUse"], "FlowHealthy"),
            (Kind::Log, fluent, &["LogAgentAllDataDropped", "LogGatewayAllDataDropped", "LogGatewayThrottling"], "FlowHealthy"),
            // Fluent Bit: all > some > no logs > buffer, whatever the inputs.
            (Kind::Log, fluent, &["LogFluentBitBufferInUse"], "AgentBufferFillingUp"),
            (Kind::Log, fluent, &["LogFluentBitBufferInUse", "LogFluentBitNoLogsDelivered"], "AgentNoLogsDelivered"),
            (Kind::Log, fluent, &["LogFluentBitNoLogsDelivered", "LogFluentBitSomeDataDropped"], "AgentSomeTelemetryDataDropped"),
            (Kind::Log, fluent, &["LogFluentBitSomeDataDropped", "LogFluentBitAllDataDropped"], "AgentAllTelemetryDataDropped"),
            (Kind::Log, LogSpec::default(), &["LogFluentBitAllDataDropped"], "AgentAllTelemetryDataDropped"),
        ];
        for (kind, spec, firing, want) in cases {
            let (status, reason) = verdict_of(*kind, *spec, firing);
            assert_eq!(reason, *want, "{kind} {spec:?} {firing:?}");
            let want_status = if *want == "FlowHealthy" {
                Status::True
            } else {
                Status::False
            };
            assert_eq!(status, want_status, "{kind} {spec:?} {firing:?}");
        }
    }

    #[test]
    fn stale_knowledge_names_the_component_the_manager_probes_first() {
        #[rustfmt::skip]
        let cases = [
            (Kind::Metric, LogSpec::default(), Some("GatewayProbingFailed")),
            (Kind::Trace, LogSpec::default(), Some("GatewayProbingFailed")),
            (Kind::Log, log(false, true, false), Some("AgentProbingFailed")),
            (Kind::Log, log(true, true, true), Some("AgentProbingFailed")),
            (Kind::Log, log(true, false, true), Some("GatewayProbingFailed")),
            // Nothing probed: the manager keeps it healthy.
            (Kind::Log, log(true, false, false), None),
        ];
        for (kind, spec, want) in cases {
            let facts = PipelineFacts {
                kind,
                name: "a",
                log: spec,
            };
            let v = evaluate(facts, Knowledge::Stale { cause: "connect" }).unwrap();
            match want {
                Some(reason) => assert_eq!(
                    (v.status, v.reason),
                    (Status::Unknown, reason),
                    "{kind} {spec:?}"
                ),
                None => assert_eq!(v.status, Status::True, "{kind} {spec:?}"),
            }
        }
    }
}
