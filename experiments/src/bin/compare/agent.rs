//! One design under test, run as its own process so its CPU and memory are
//! its own: the push design (a webhook that Prometheus notifies, re-queueing
//! all pipelines as the proof of concept does, or only the notified ones as
//! telemetry-manager does, each reconcile querying `/api/v1/alerts`), or the
//! pull design (alert-poller's own poller, schedule and diff, unchanged).
//! Every design serves the pipelines of all three kinds, as the manager and
//! the controller do, and judges each by its kind's verdict table.
//!
//! Both end in the same reconcile bookkeeping: a de-duplicating queue worked
//! by one worker (controller-runtime's default), a verdict per pipeline, a
//! "status write" when the verdict changes, and a detection record when the
//! status flips. No API server is involved: the comparison is about
//! Prometheus load, reaction time and reconcile counts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alert_poller::config::Tuning;
use alert_poller::domain::alerts::{Affected, LabelSet, Matcher, Scope, Snapshot, Targets};
use alert_poller::domain::health::{self, Knowledge, Status};
use alert_poller::domain::kind::Kind;
use alert_poller::operations::metrics::{Metrics, render};
use alert_poller::prometheus::{ClientSettings, PrometheusClient};
use alert_poller_experiments::unix_ms;
use alert_poller_testbed::exposition;
use alert_poller_testbed::http;
use alert_poller_testbed::poller::StandalonePoller;
use anyhow::Result;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Response, StatusCode};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::pipelines::Pipeline;

/// Which design, and how it is tuned.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AgentConfig {
    pub design: Design,
    pub prometheus: String,
    pub pipelines: Vec<Pipeline>,
    /// Where the push designs listen for Prometheus' notifications.
    pub listen: Option<String>,
    /// Poll schedule of the pull design (ConfigMap keys and values).
    pub tuning: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Design {
    /// Proof of concept: every notification re-queues every pipeline.
    PushAll,
    /// telemetry-manager: a notification re-queues the pipelines, of every
    /// kind, that its alerts concern.
    PushScoped,
    /// alert-poller.
    Pull,
}

/// A status flip seen by the design.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Detection {
    /// The pipeline's name (unique over all kinds in a run).
    pub pipeline: String,
    /// `metric`, `trace` or `log`.
    #[serde(default)]
    pub pipeline_kind: String,
    pub status: String,
    pub unix_ms: u64,
}

/// What the design did, written at the end of the run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AgentReport {
    pub detections: Vec<Detection>,
    pub notifications: u64,
    pub prometheus_requests: u64,
    pub prometheus_bytes: u64,
    pub reconciles: u64,
    pub status_writes: u64,
    pub cpu_seconds: f64,
    pub peak_rss_kib: u64,
}

/// One report over a design's incarnations (a disruption scenario stops
/// and starts it around each change): their detections in turn, their
/// counts added up, the largest memory.
pub fn merged(reports: &[AgentReport]) -> AgentReport {
    let mut out = AgentReport::default();
    for r in reports {
        out.detections.extend(r.detections.iter().cloned());
        out.notifications += r.notifications;
        out.prometheus_requests += r.prometheus_requests;
        out.prometheus_bytes += r.prometheus_bytes;
        out.reconciles += r.reconciles;
        out.status_writes += r.status_writes;
        out.cpu_seconds += r.cpu_seconds;
        out.peak_rss_kib = out.peak_rss_kib.max(r.peak_rss_kib);
    }
    out
}

/// The reconcile side shared by all designs.
struct Book {
    queue: Mutex<BTreeSet<Pipeline>>,
    wake: Notify,
    verdicts: Mutex<BTreeMap<Pipeline, Status>>,
    report: Mutex<AgentReport>,
    requests: AtomicU64,
    bytes: AtomicU64,
}

impl Book {
    fn current(&self) -> AgentReport {
        let mut report = self.report.lock().unwrap().clone();
        report.prometheus_requests = self.requests.load(Ordering::Relaxed);
        report.prometheus_bytes = self.bytes.load(Ordering::Relaxed);
        report
    }

    fn enqueue(&self, pipelines: impl IntoIterator<Item = Pipeline>) {
        self.queue.lock().unwrap().extend(pipelines);
        self.wake.notify_one();
    }

    /// The next pipeline to reconcile, waiting for one; `None` once `stop`
    /// is cancelled (even with work left: a design kept busy by thousands of
    /// re-sent alerts may never drain its queue, and the harness must go on).
    async fn next(&self, stop: &CancellationToken) -> Option<Pipeline> {
        loop {
            if stop.is_cancelled() {
                return None;
            }
            let next = self.queue.lock().unwrap().pop_first();
            if next.is_some() {
                return next;
            }
            tokio::select! {
                () = stop.cancelled() => return None,
                () = self.wake.notified() => {}
            }
        }
    }

    /// Records a reconcile's verdict; counts a write when it changed.
    fn record(&self, pipeline: &Pipeline, status: Status) {
        let mut report = self.report.lock().unwrap();
        report.reconciles += 1;
        let mut verdicts = self.verdicts.lock().unwrap();
        let previous = verdicts.insert(pipeline.clone(), status);
        if previous != Some(status) {
            report.status_writes += 1;
            report.detections.push(Detection {
                pipeline: pipeline.name.clone(),
                pipeline_kind: pipeline.kind.as_str().to_owned(),
                status: status.as_str().to_owned(),
                unix_ms: unix_ms(),
            });
        }
    }
}

/// Runs the design until `stop`, then returns its report. Every second the
/// counters so far are written to `live`, for the harness' stable-phase count.
pub async fn run(
    config: AgentConfig,
    ready: impl FnOnce(),
    stop: CancellationToken,
    live: std::path::PathBuf,
) -> Result<AgentReport> {
    let book = Arc::new(Book {
        queue: Mutex::new(BTreeSet::new()),
        wake: Notify::new(),
        verdicts: Mutex::new(BTreeMap::new()),
        report: Mutex::new(AgentReport::default()),
        requests: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
    });
    let tuning = Tuning::defaults()
        .with_overrides(&config.tuning)
        .map_err(|e| anyhow::anyhow!("tuning: {e}"))?;
    let writer = {
        let book = book.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let _ = std::fs::write(
                    &live,
                    serde_json::to_vec(&book.current()).unwrap_or_default(),
                );
            }
        })
    };
    match config.design {
        Design::Pull => run_pull(&config, tuning, book.clone(), ready, stop).await?,
        Design::PushAll | Design::PushScoped => {
            run_push(&config, tuning, book.clone(), ready, stop).await?
        }
    }
    writer.abort();
    let mut report = book.current();
    let (cpu, rss) = own_usage();
    report.cpu_seconds = cpu;
    report.peak_rss_kib = rss;
    Ok(report)
}

/// The pull design: the real poller; reconciles read its view.
async fn run_pull(
    config: &AgentConfig,
    tuning: Tuning,
    book: Arc<Book>,
    ready: impl FnOnce(),
    stop: CancellationToken,
) -> Result<()> {
    let StandalonePoller {
        view,
        requeues: requeue,
        metrics,
        stop: _poller,
        ..
    } = StandalonePoller::start(tuning);
    let mirror = tokio::spawn(mirror_requests(book.clone(), metrics));
    let splitter = tokio::spawn(split_requeues(
        book.clone(),
        config.pipelines.clone(),
        requeue,
    ));
    ready();
    let worker = {
        let book = book.clone();
        let stop = stop.clone();
        async move {
            while let Some(pipeline) = book.next(&stop).await {
                let view = view.borrow().clone();
                if let Some(v) = health::evaluate(pipeline.facts(), view.knowledge()) {
                    book.record(&pipeline, v.status);
                }
            }
        }
    };
    worker.await;
    splitter.abort();
    tokio::time::sleep(Duration::from_millis(250)).await;
    mirror.abort();
    Ok(())
}

/// The poller counts its own requests; they are mirrored into the book,
/// timing reads for phase locking included (they are requests too).
async fn mirror_requests(book: Arc<Book>, metrics: Arc<Metrics>) {
    loop {
        let polls = polls_made(&metrics) + metrics.rule_timing_reads.get();
        book.requests.store(polls, Ordering::Relaxed);
        book.bytes
            .store(metrics.response_bytes.get(), Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Each kind's controller re-queues what its part of the diff names, as
/// far as such pipelines exist.
async fn split_requeues(
    book: Arc<Book>,
    pipelines: Vec<Pipeline>,
    mut requeue: mpsc::UnboundedReceiver<Affected>,
) {
    while let Some(affected) = requeue.recv().await {
        for (kind, targets) in affected.iter() {
            book.enqueue(
                pipelines
                    .iter()
                    .filter(|p| {
                        p.kind == kind
                            && match targets {
                                Targets::All => true,
                                Targets::Pipelines(names) => names.contains(&p.name),
                            }
                    })
                    .cloned(),
            );
        }
    }
}

/// The poll counter's series name, as the controller's `/metrics` shows it.
const POLLS: &str = "alert_poller_polls_total";

/// Every poll the poller made, whatever its result, read the way the
/// controller's `/metrics` shows it. The counter has one series per result
/// class and a class appears with its first poll, so a list of known classes
/// would miss any class added later (failed polls once went uncounted that
/// way); summing whatever series exist cannot.
fn polls_made(metrics: &Metrics) -> u64 {
    // A registry of the poll counter alone. Its type is the one `render`
    // takes, so this crate needs no prometheus-client of its own.
    fn empty<R: Default>(_render: fn(&R) -> String) -> R {
        R::default()
    }
    let mut registry = empty(render);
    // Registered without the `_total` that the encoder appends to counters.
    registry.register(
        POLLS.trim_end_matches("_total"),
        "Polls of Prometheus alerts, by result",
        metrics.polls.clone(),
    );
    polls_in(&render(&registry))
}

/// The polls counted in a `/metrics` text: every `alert_poller_polls_total`
/// series, whatever its `result`.
fn polls_in(text: &str) -> u64 {
    exposition::sum(text, POLLS, |_| true) as u64
}

/// Prometheus' notification payload (`/api/v2/alerts`): only the labels matter.
#[derive(Deserialize)]
struct Notified {
    labels: BTreeMap<String, String>,
}

/// The push design: a webhook re-queues; each reconcile asks Prometheus.
async fn run_push(
    config: &AgentConfig,
    tuning: Tuning,
    book: Arc<Book>,
    ready: impl FnOnce(),
    stop: CancellationToken,
) -> Result<()> {
    let listen = config
        .listen
        .clone()
        .ok_or_else(|| anyhow::anyhow!("push needs --listen"))?;
    let listener = TcpListener::bind(&listen).await?;
    let client = PrometheusClient::new(ClientSettings::first(&tuning))?;
    let matchers: Arc<Vec<Matcher>> = Arc::new(tuning.matchers());

    let server = webhook(listener, book.clone(), config, matchers.clone());
    // Like the proof of concept, every pipeline is reconciled once at start.
    book.enqueue(config.pipelines.iter().cloned());
    ready();
    while let Some(pipeline) = book.next(&stop).await {
        // The reconcile asks Prometheus itself, as the push designs do.
        book.requests.fetch_add(1, Ordering::Relaxed);
        match client.alerts().await {
            Ok(response) => {
                book.bytes
                    .fetch_add(response.bytes as u64, Ordering::Relaxed);
                let snapshot = Snapshot::from_alerts(response.alerts, &matchers);
                if let Some(v) = health::evaluate(pipeline.facts(), Knowledge::Fresh(&snapshot)) {
                    book.record(&pipeline, v.status);
                }
            }
            Err(_) => book.report.lock().unwrap().reconciles += 1,
        }
    }
    server.cancel();
    Ok(())
}

/// The Alertmanager endpoint Prometheus notifies: each notification
/// re-queues every pipeline (push-all) or those its alerts name
/// (push-scoped).
fn webhook(
    listener: TcpListener,
    book: Arc<Book>,
    config: &AgentConfig,
    matchers: Arc<Vec<Matcher>>,
) -> CancellationToken {
    let design = config.design;
    let pipelines = Arc::new(config.pipelines.clone());
    http::serve_on(listener, move |req: hyper::Request<_>| {
        let (book, pipelines, matchers) = (book.clone(), pipelines.clone(), matchers.clone());
        async move {
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            book.report.lock().unwrap().notifications += 1;
            let alerts: Vec<Notified> = serde_json::from_slice(&body).unwrap_or_default();
            let targets: Vec<Pipeline> = match design {
                Design::PushScoped => notified(&alerts, &matchers, &pipelines),
                _ => pipelines.to_vec(),
            };
            book.enqueue(targets);
            Response::builder()
                .status(StatusCode::OK)
                .body(http::full(Bytes::new()))
                .expect("valid response")
        }
    })
}

/// The pipelines a notification re-queues in telemetry-manager's webhook:
/// for each kind, every pipeline of that kind that one of the alerts
/// concerns (by the kind's matcher, so an alert without `pipeline_name`
/// concerns every pipeline of its own kind and no other).
fn notified(alerts: &[Notified], matchers: &[Matcher], pipelines: &[Pipeline]) -> Vec<Pipeline> {
    let labels: Vec<LabelSet> = alerts.iter().map(|a| LabelSet::from(&a.labels)).collect();
    let scopes: BTreeMap<Kind, BTreeSet<Scope>> = matchers
        .iter()
        .map(|m| (m.kind, labels.iter().filter_map(|l| m.scope(l)).collect()))
        .collect();
    pipelines
        .iter()
        .filter(|p| {
            scopes
                .get(&p.kind)
                .is_some_and(|s| s.contains(&Scope::All) || s.contains(&Scope::Pipeline(&p.name)))
        })
        .cloned()
        .collect()
}

/// CPU seconds and peak RSS of this process, from /proc.
pub fn own_usage() -> (f64, u64) {
    alert_poller_testbed::usage(std::process::id())
}

#[cfg(test)]
mod tests;
