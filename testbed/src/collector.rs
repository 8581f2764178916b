//! A stand-in for the OpenTelemetry Collector's own metrics, the input of the
//! alert rules. Each scrape advances the counters according to the flow state
//! the caller set, so `rate()` over them says exactly what the test wants:
//! a healthy pipeline sends, a dropping one fails some or all of its sends, a
//! throttling gateway refuses data.
//!
//! Series are labelled as real collectors label them: each exporter is named
//! after its pipeline (`otlp_grpc/metricpipeline-<name>` on the gateway,
//! `otlp_http/metricpipeline-<name>` on the agent, so both protocols' names
//! go through the shipped relabeling), with the collector's own resource
//! labels beside it; the refused counter is per receiver. The gateway's
//! metrics are served on `/gateway`, the agent's on `/agent`; the test
//! Prometheus gives them the `service` label of the real Services (see
//! [`super::rules::collector_jobs`]).
//! `/noise` serves series for alerts that concern no pipeline (see
//! [`super::rules::NOISE`]), the many unrelated alerts a real cluster has.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hyper::{Response, StatusCode};
use tokio_util::sync::CancellationToken;

use super::http::{self, Body};

/// Where a flow can break.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Component {
    Gateway,
    Agent,
}

/// How much of a pipeline's data gets through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flow {
    #[default]
    Healthy,
    SomeDropped,
    AllDropped,
}

#[derive(Clone, Copy, Debug, Default)]
struct Counters {
    sent: u64,
    failed: u64,
    enqueue_failed: u64,
}

#[derive(Debug, Default)]
struct State {
    flows: BTreeMap<(Component, String), (Flow, Counters)>,
    throttling: bool,
    refused: u64,
    noise: usize,
}

/// The running stand-in; stops when dropped.
#[derive(Debug)]
pub struct Collector {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: CancellationToken,
}

impl Collector {
    /// Serves healthy flows for the given pipelines on a free loopback port.
    pub async fn start(pipelines: &[&str]) -> std::io::Result<Collector> {
        let state = Arc::new(Mutex::new(State::default()));
        let served = state.clone();
        let (addr, stop) = http::serve(move |req: hyper::Request<_>| {
            let response = match req.uri().path() {
                "/gateway" => scrape(&served, Component::Gateway),
                "/agent" => scrape(&served, Component::Agent),
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

    /// Adds a pipeline with healthy gateway and agent flows.
    pub fn add_pipeline(&self, pipeline: &str) {
        let mut state = self.state.lock().expect("collector state lock");
        for component in [Component::Gateway, Component::Agent] {
            state
                .flows
                .entry((component, pipeline.to_owned()))
                .or_default();
        }
    }

    /// Sets how much of a pipeline's data gets through one component.
    pub fn set_flow(&self, component: Component, pipeline: &str, flow: Flow) {
        let mut state = self.state.lock().expect("collector state lock");
        state
            .flows
            .entry((component, pipeline.to_owned()))
            .or_default()
            .0 = flow;
    }

    /// Makes the gateway's shared receiver refuse data (or stop refusing).
    pub fn set_throttling(&self, on: bool) {
        self.state.lock().expect("collector state lock").throttling = on;
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

/// Advances the counters of one component by one scrape and renders them.
fn scrape(state: &Mutex<State>, component: Component) -> Response<Body> {
    let mut state = state.lock().expect("collector state lock");
    let mut body = String::new();
    let mut series = Vec::new();
    for ((c, pipeline), (flow, counters)) in state.flows.iter_mut() {
        if *c != component {
            continue;
        }
        match flow {
            Flow::Healthy => counters.sent += 100,
            Flow::SomeDropped => {
                counters.sent += 90;
                counters.failed += 10;
            }
            Flow::AllDropped => {
                counters.failed += 90;
                counters.enqueue_failed += 10;
            }
        }
        series.push((pipeline.clone(), *counters));
    }
    let (exporter, instance) = match component {
        Component::Gateway => ("otlp_grpc", "telemetry-otlp-gateway-0"),
        Component::Agent => ("otlp_http", "telemetry-metric-agent-0"),
    };
    let resource = format!("service_instance_id=\"{instance}\",service_name=\"otelcol-contrib\"");
    for (name, pick) in [
        ("otelcol_exporter_sent_metric_points_total", 0),
        ("otelcol_exporter_send_failed_metric_points_total", 1),
        ("otelcol_exporter_enqueue_failed_metric_points_total", 2),
    ] {
        let _ = writeln!(body, "# TYPE {name} counter");
        for (pipeline, c) in &series {
            let value = [c.sent, c.failed, c.enqueue_failed][pick];
            let _ = writeln!(
                body,
                "{name}{{exporter=\"{exporter}/metricpipeline-{pipeline}\",{resource}}} {value}"
            );
        }
    }
    if component == Component::Gateway {
        if state.throttling {
            state.refused += 10;
        }
        let name = "otelcol_receiver_refused_metric_points_total";
        let _ = writeln!(body, "# TYPE {name} counter");
        let _ = writeln!(
            body,
            "{name}{{receiver=\"otlp\",transport=\"grpc\",{resource}}} {}",
            state.refused
        );
        // The gateway serves every signal: a trace pipeline's failing
        // exporter must not raise any Metric alert.
        let name = "otelcol_exporter_send_failed_spans_total";
        let _ = writeln!(body, "# TYPE {name} counter");
        let _ = writeln!(
            body,
            "{name}{{exporter=\"otlp_grpc/tracepipeline-traces\",{resource}}} {}",
            state.refused + 1
        );
    }
    Response::builder()
        .header("content-type", "text/plain; version=0.0.4")
        .body(http::full(body))
        .expect("valid response")
}

/// `n` series of `noise_active`, one per unrelated alert.
fn noise(state: &Mutex<State>) -> Response<Body> {
    let n = state.lock().expect("collector state lock").noise;
    let mut body = String::with_capacity(32 * n + 32);
    body.push_str("# TYPE noise_active gauge\n");
    for i in 0..n {
        let _ = writeln!(body, "noise_active{{series=\"{i}\"}} 1");
    }
    Response::builder()
        .header("content-type", "text/plain; version=0.0.4")
        .body(http::full(body))
        .expect("valid response")
}
