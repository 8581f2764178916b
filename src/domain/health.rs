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
mod tests;
