//! A stand-in for the telemetry components' own metrics, the input of the
//! alert rules. Each scrape advances the counters according to the flow state
//! the caller set, so `rate()` over them says exactly what the test wants:
//! a healthy pipeline sends, a dropping one fails some or all of its sends, a
//! throttling gateway refuses data, a stuck Fluent Bit reads but delivers
//! nothing or buffers on disk.
//!
//! Pipelines are of a [`PipelineKind`] (MetricPipeline, TracePipeline,
//! LogPipeline) and pass [`Component`]s: every kind the OTLP gateway,
//! MetricPipelines the metric agent, LogPipelines the log agent and Fluent
//! Bit. Series are labelled as the real components label them. The OpenTelemetry Collector
//! names each exporter after its pipeline (`otlp_grpc/<kind>pipeline-<name>`
//! on the gateway, `otlp_http/<kind>pipeline-<name>` on the agents, so both
//! protocols' names go through the shipped relabeling) and counts in the
//! signal's unit (`metric_points`, `spans`, `log_records`), with the
//! collector's own resource labels beside it; the refused counters are per
//! receiver and unit. Fluent Bit names each input and output plugin after its
//! pipeline (`name="<name>"`) and also serves one technical input,
//! `name="tail.0"`, which reads all along and belongs to no pipeline.
//!
//! Paths, each of which the test Prometheus scrapes with the `service` label
//! of the real Service (see [`super::rules::collector_jobs`]):
//! `/gateway` (all three signals), `/agent` (the metric agent), `/log-agent`,
//! `/fluent-bit`. `/noise` serves series for alerts that concern no pipeline
//! (see [`super::rules::NOISE`]), the many unrelated alerts a real cluster has.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hyper::{Response, StatusCode};
use tokio_util::sync::CancellationToken;

use super::http::{self, Body};

/// The kind of a pipeline, by the signal it carries. The test bed's own type,
/// named apart from the controller's `Kind` and from [`super::signal::Signal`]:
/// it follows telemetry-manager's names, not the controller's code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PipelineKind {
    Metric,
    Trace,
    Log,
}

impl PipelineKind {
    pub const ALL: [PipelineKind; 3] =
        [PipelineKind::Metric, PipelineKind::Trace, PipelineKind::Log];

    /// The start of every alert name about pipelines of this kind.
    pub fn alert_prefix(self) -> &'static str {
        match self {
            PipelineKind::Metric => "Metric",
            PipelineKind::Trace => "Trace",
            PipelineKind::Log => "Log",
        }
    }

    /// The `pipeline_type` label, and the stem of exporter names.
    pub fn pipeline_type(self) -> &'static str {
        match self {
            PipelineKind::Metric => "metricpipeline",
            PipelineKind::Trace => "tracepipeline",
            PipelineKind::Log => "logpipeline",
        }
    }

    /// The unit the OpenTelemetry Collector counts this signal in.
    pub fn unit(self) -> &'static str {
        match self {
            PipelineKind::Metric => "metric_points",
            PipelineKind::Trace => "spans",
            PipelineKind::Log => "log_records",
        }
    }

    /// The components a pipeline of this kind passes, in the order
    /// [`Collector::add_pipeline_of`] adds them.
    pub fn components(self) -> &'static [Component] {
        match self {
            PipelineKind::Metric => &[Component::Gateway, Component::Agent],
            PipelineKind::Trace => &[Component::Gateway],
            PipelineKind::Log => &[Component::Gateway, Component::Agent, Component::FluentBit],
        }
    }
}

/// Where a flow can break. `Agent` is the agent of the pipeline's signal (the
/// metric agent or the log agent); `FluentBit` carries LogPipelines only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    Gateway,
    Agent,
    FluentBit,
}

/// How much of a pipeline's data gets through a component.
///
/// `BufferFull` and `NoLogsDelivered` are Fluent Bit's own troubles: with
/// `BufferFull` the output still delivers, but more than 300 of the input's
/// chunks wait on disk; with `NoLogsDelivered` the input reads while the
/// output processes nothing and drops nothing. On Fluent Bit, `AllDropped`
/// also reads on and delivers nothing, as a real Fluent Bit does, so it
/// raises `LogFluentBitNoLogsDelivered` beside `LogFluentBitAllDataDropped`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flow {
    #[default]
    Healthy,
    SomeDropped,
    AllDropped,
    BufferFull,
    NoLogsDelivered,
}

/// Chunks down that `BufferFull` reports: over the rules' 300.
const CHUNKS_DOWN_FULL: u64 = 350;

#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    // OpenTelemetry Collector exporters.
    sent: u64,
    failed: u64,
    enqueue_failed: u64,
    // Fluent Bit.
    input_bytes: u64,
    proc_bytes: u64,
    dropped_records: u64,
    chunks_down: u64,
}

impl Counters {
    /// One scrape's worth of traffic through `component` in state `flow`.
    fn advance(&mut self, component: Component, flow: Flow) {
        if component == Component::FluentBit {
            self.input_bytes += 1000;
            self.chunks_down = 0;
            match flow {
                Flow::Healthy => self.proc_bytes += 1000,
                Flow::SomeDropped => {
                    self.proc_bytes += 900;
                    self.dropped_records += 10;
                }
                Flow::AllDropped => self.dropped_records += 10,
                Flow::BufferFull => {
                    self.proc_bytes += 500;
                    self.chunks_down = CHUNKS_DOWN_FULL;
                }
                Flow::NoLogsDelivered => {}
            }
            return;
        }
        match flow {
            Flow::Healthy => self.sent += 100,
            Flow::SomeDropped => {
                self.sent += 90;
                self.failed += 10;
            }
            Flow::AllDropped => {
                self.failed += 90;
                self.enqueue_failed += 10;
            }
            Flow::BufferFull | Flow::NoLogsDelivered => {
                unreachable!("set_flow_of admits Fluent Bit flows on Fluent Bit only")
            }
        }
    }
}

/// Whether a pipeline of `kind` passes `component`.
fn passes(kind: PipelineKind, component: Component) -> bool {
    kind.components().contains(&component)
}

type Key = (PipelineKind, Component, String);

#[derive(Debug, Default)]
struct State {
    flows: BTreeMap<Key, (Flow, Counters)>,
    throttling: BTreeSet<PipelineKind>,
    refused: BTreeMap<PipelineKind, u64>,
    /// What the technical `tail.0` input has read.
    technical_bytes: u64,
    noise: usize,
}

impl State {
    fn flow(&mut self, kind: PipelineKind, component: Component, pipeline: &str) -> &mut Flow {
        &mut self
            .flows
            .entry((kind, component, pipeline.to_owned()))
            .or_default()
            .0
    }
}

/// The running stand-in; stops when dropped.
#[derive(Debug)]
pub struct Collector {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: CancellationToken,
}

impl Collector {
    /// Serves healthy flows for the given MetricPipelines on a free loopback
    /// port (see [`Collector::add_pipeline`]).
    pub async fn start(pipelines: &[&str]) -> std::io::Result<Collector> {
        let state = Arc::new(Mutex::new(State::default()));
        let served = state.clone();
        let (addr, stop) = http::serve(move |req: hyper::Request<_>| {
            let response = match req.uri().path() {
                "/gateway" => otel(&served, Component::Gateway, None),
                "/agent" => otel(&served, Component::Agent, Some(PipelineKind::Metric)),
                "/log-agent" => otel(&served, Component::Agent, Some(PipelineKind::Log)),
                "/fluent-bit" => fluent_bit(&served),
                "/noise" => noise(&served),
                _ => Response::builder()
                    .status(StatusCode::NOT_FOUND)
                    .body(http::full(Bytes::new()))
                    .expect("valid response"),
            };
            std::future::ready(response)
        })
        .await?;
        let collector = Collector { addr, state, stop };
        for p in pipelines {
            collector.add_pipeline(p);
        }
        Ok(collector)
    }

    /// `host:port` to put in a scrape config.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds a MetricPipeline with healthy gateway and agent flows.
    pub fn add_pipeline(&self, pipeline: &str) {
        self.add_pipeline_of(PipelineKind::Metric, pipeline);
    }

    /// Adds a pipeline of `kind` with a healthy flow through every component
    /// it can pass ([`PipelineKind::components`]): a LogPipeline gets the gateway,
    /// the log agent and Fluent Bit at once (a real one uses either the
    /// collectors or Fluent Bit; the rules judge each component apart). To
    /// serve fewer, set the flows one by one with [`Collector::set_flow_of`].
    /// Pipelines of different kinds may share a name, as in a cluster.
    pub fn add_pipeline_of(&self, kind: PipelineKind, pipeline: &str) {
        let mut state = self.state.lock().expect("collector state lock");
        for &component in kind.components() {
            state.flow(kind, component, pipeline);
        }
    }

    /// Sets how much of a MetricPipeline's data gets through one component.
    pub fn set_flow(&self, component: Component, pipeline: &str, flow: Flow) {
        self.set_flow_of(PipelineKind::Metric, component, pipeline, flow);
    }

    /// Sets how much of the data of the pipeline of `kind` named `pipeline`
    /// gets through `component`, adding that flow if it is not served yet.
    ///
    /// # Panics
    /// If pipelines of `kind` do not pass `component` (a TracePipeline has
    /// no agent, only LogPipelines pass Fluent Bit), or `flow` is one of
    /// Fluent Bit's own and `component` is not Fluent Bit.
    pub fn set_flow_of(
        &self,
        kind: PipelineKind,
        component: Component,
        pipeline: &str,
        flow: Flow,
    ) {
        assert!(
            passes(kind, component),
            "a {kind:?} pipeline does not pass {component:?}"
        );
        assert!(
            component == Component::FluentBit
                || !matches!(flow, Flow::BufferFull | Flow::NoLogsDelivered),
            "{flow:?} is a Fluent Bit flow, not one of the {component:?}"
        );
        *self
            .state
            .lock()
            .expect("collector state lock")
            .flow(kind, component, pipeline) = flow;
    }

    /// Makes the gateway's shared receiver refuse metric points (or stop).
    pub fn set_throttling(&self, on: bool) {
        self.set_throttling_of(PipelineKind::Metric, on);
    }

    /// Makes the gateway's shared receiver refuse data of `kind` (or stop).
    pub fn set_throttling_of(&self, kind: PipelineKind, on: bool) {
        let mut state = self.state.lock().expect("collector state lock");
        if on {
            state.throttling.insert(kind);
        } else {
            state.throttling.remove(&kind);
        }
    }

    /// Serves `n` noise series, each of which fires one `NoiseAlert`.
    pub fn set_noise(&self, n: usize) {
        self.state.lock().expect("collector state lock").noise = n;
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn text(body: String) -> Response<Body> {
    Response::builder()
        .header("content-type", "text/plain; version=0.0.4")
        .body(http::full(body))
        .expect("valid response")
}

/// Advances and renders one OpenTelemetry Collector: the gateway (every
/// kind, `only` is `None`) or the agent of kind `only`.
fn otel(state: &Mutex<State>, component: Component, only: Option<PipelineKind>) -> Response<Body> {
    let mut state = state.lock().expect("collector state lock");
    let mut series: BTreeMap<PipelineKind, Vec<(String, Counters)>> = BTreeMap::new();
    for ((kind, c, pipeline), (flow, counters)) in state.flows.iter_mut() {
        if *c != component || only.is_some_and(|o| o != *kind) {
            continue;
        }
        counters.advance(component, *flow);
        series
            .entry(*kind)
            .or_default()
            .push((pipeline.clone(), *counters));
    }
    let (exporter, instance) = match (component, only) {
        (Component::Gateway, _) => ("otlp_grpc", "telemetry-otlp-gateway-0"),
        (_, Some(PipelineKind::Log)) => ("otlp_http", "telemetry-log-agent-0"),
        _ => ("otlp_http", "telemetry-metric-agent-0"),
    };
    let resource = format!("service_instance_id=\"{instance}\",service_name=\"otelcol-contrib\"");
    let mut body = String::new();
    for (kind, series) in &series {
        let unit = kind.unit();
        let stem = kind.pipeline_type();
        for (counter, pick) in [("sent", 0), ("send_failed", 1), ("enqueue_failed", 2)] {
            let name = format!("otelcol_exporter_{counter}_{unit}_total");
            let _ = writeln!(body, "# TYPE {name} counter");
            for (pipeline, c) in series {
                let value = [c.sent, c.failed, c.enqueue_failed][pick];
                let _ = writeln!(
                    body,
                    "{name}{{exporter=\"{exporter}/{stem}-{pipeline}\",{resource}}} {value}"
                );
            }
        }
    }
    if component == Component::Gateway {
        // The one receiver takes every signal; each is refused in its unit.
        for kind in PipelineKind::ALL {
            let throttling = state.throttling.contains(&kind);
            let refused = state.refused.entry(kind).or_default();
            if throttling {
                *refused += 10;
            }
            let name = format!("otelcol_receiver_refused_{}_total", kind.unit());
            let _ = writeln!(body, "# TYPE {name} counter");
            let _ = writeln!(
                body,
                "{name}{{receiver=\"otlp\",transport=\"grpc\",{resource}}} {refused}"
            );
        }
    }
    text(body)
}

/// Advances and renders Fluent Bit: per LogPipeline an input and an output
/// named after it, plus the technical `tail.0` input.
fn fluent_bit(state: &Mutex<State>) -> Response<Body> {
    let mut state = state.lock().expect("collector state lock");
    let mut series = Vec::new();
    for ((_, c, pipeline), (flow, counters)) in state.flows.iter_mut() {
        if *c != Component::FluentBit {
            continue;
        }
        counters.advance(Component::FluentBit, *flow);
        series.push((pipeline.clone(), *counters));
    }
    state.technical_bytes += 500;
    let technical = state.technical_bytes;
    // Each family with its value per pipeline and the `tail.0` input's, if any.
    type Family = (
        &'static str,
        &'static str,
        fn(&Counters) -> u64,
        Option<u64>,
    );
    let families: [Family; 4] = [
        (
            "fluentbit_input_bytes_total",
            "counter",
            |c| c.input_bytes,
            Some(technical),
        ),
        (
            "fluentbit_input_storage_chunks_down",
            "gauge",
            |c| c.chunks_down,
            Some(0),
        ),
        (
            "fluentbit_output_proc_bytes_total",
            "counter",
            |c| c.proc_bytes,
            None,
        ),
        (
            "fluentbit_output_dropped_records_total",
            "counter",
            |c| c.dropped_records,
            None,
        ),
    ];
    let mut body = String::new();
    for (name, metric_type, value, technical) in families {
        let _ = writeln!(body, "# TYPE {name} {metric_type}");
        if let Some(v) = technical {
            let _ = writeln!(body, "{name}{{name=\"tail.0\"}} {v}");
        }
        for (pipeline, c) in &series {
            let _ = writeln!(body, "{name}{{name=\"{pipeline}\"}} {}", value(c));
        }
    }
    text(body)
}

/// `n` series of `noise_active`, one per unrelated alert.
fn noise(state: &Mutex<State>) -> Response<Body> {
    let n = state.lock().expect("collector state lock").noise;
    let mut body = String::with_capacity(32 * n + 32);
    body.push_str("# TYPE noise_active gauge\n");
    for i in 0..n {
        let _ = writeln!(body, "noise_active{{series=\"{i}\"}} 1");
    }
    text(body)
}

#[cfg(test)]
mod tests;
