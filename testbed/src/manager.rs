//! A stand-in of telemetry-manager as a writer of `TelemetryFlowHealthy` on
//! MetricPipelines, behaving as its sources do (../shared/DESIGN.md, "In a
//! cluster, beside the manager"):
//!
//! - it reconciles a pipeline on every change of the object, status
//!   included (its controllers watch their kind with no predicate), and on
//!   every alert notification Prometheus pushes to it (it is Prometheus'
//!   Alertmanager: `POST /api/v2/alerts` re-queues every pipeline);
//! - each reconcile asks Prometheus' `/api/v1/alerts`, judges the pipeline
//!   (with alert-poller's verdict table, which the conformance tests hold
//!   to the manager's), sets the condition in its own words
//!   (`meta.SetStatusCondition`: `lastTransitionTime` moves with the status)
//!   and writes the whole status back with an update under its own field
//!   manager, `telemetry-manager`.
//!
//! So it rewrites the condition after anyone else's write of it, within
//! milliseconds, which is what a second writer must survive.

use std::collections::BTreeSet;
use std::io::BufReader;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use alert_poller::domain::alerts::{Matcher, Snapshot};
use alert_poller::domain::health::{self, Knowledge, PipelineFacts};
use alert_poller::domain::kind::Kind;
use alert_poller::prometheus::{AlertSource, ClientSettings, PrometheusClient};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::controlplane::Kubectl;
use super::http::{serve_on, text};

/// The manager's field manager.
pub const FIELD_MANAGER: &str = "telemetry-manager";
/// The message it writes for a healthy flow (its words are its own; these
/// are ours, and differ from alert-poller's, as the real ones do).
pub const HEALTHY_MESSAGE: &str = "No problems detected in the telemetry flow (stand-in manager)";
const CONDITION: &str = "TelemetryFlowHealthy";

/// The running stand-in; it stops when dropped.
pub struct ManagerStandIn {
    writes: Arc<AtomicU64>,
    watch: Child,
    stop: CancellationToken,
}

impl ManagerStandIn {
    /// Starts watching the MetricPipelines of `resource` (a kubectl resource
    /// name, version included), judging from the Prometheus at
    /// `prometheus_url`, and, with `webhook`, receiving its notifications.
    pub fn start(
        kubectl: &Kubectl,
        resource: &str,
        prometheus_url: &str,
        webhook: Option<TcpListener>,
    ) -> std::io::Result<ManagerStandIn> {
        let (queue, work) = mpsc::unbounded_channel::<Option<String>>();
        let mut watch = kubectl
            .command(&["get", resource, "--watch", "-o", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = watch.stdout.take().expect("stdout is piped");
        let events = queue.clone();
        std::thread::spawn(move || {
            let stream = serde_json::Deserializer::from_reader(BufReader::new(stdout));
            for object in stream.into_iter::<Value>().map_while(Result::ok) {
                let name = object["metadata"]["name"].as_str().map(str::to_owned);
                if name.is_none() || events.send(name).is_err() {
                    return;
                }
            }
        });
        let stop = CancellationToken::new();
        if let Some(listener) = webhook {
            // Every notification re-queues every pipeline (`None`).
            let token = serve_on(listener, move |_request| {
                let queue = queue.clone();
                async move {
                    let _ = queue.send(None);
                    text(hyper::StatusCode::OK, "")
                }
            });
            let stop = stop.clone();
            tokio::spawn(async move {
                stop.cancelled().await;
                token.cancel();
            });
        }
        let settings = ClientSettings {
            source: AlertSource::Alerts,
            ..ClientSettings::first(&super::poller::tuning(&[("prometheusUrl", prometheus_url)]))
        };
        let client = PrometheusClient::new(settings).map_err(std::io::Error::other)?;
        let writes = Arc::new(AtomicU64::new(0));
        let reconciler = Reconciler {
            kubectl: kubectl.clone(),
            resource: resource.to_owned(),
            client,
            writes: writes.clone(),
        };
        tokio::spawn(reconciler.run(work, stop.clone()));
        Ok(ManagerStandIn {
            writes,
            watch,
            stop,
        })
    }

    /// Status writes that changed the condition.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
}

impl Drop for ManagerStandIn {
    fn drop(&mut self) {
        self.stop.cancel();
        let _ = self.watch.kill();
        let _ = self.watch.wait();
    }
}

struct Reconciler {
    kubectl: Kubectl,
    resource: String,
    client: PrometheusClient,
    writes: Arc<AtomicU64>,
}

impl Reconciler {
    async fn run(self, mut work: mpsc::UnboundedReceiver<Option<String>>, stop: CancellationToken) {
        let mut known = BTreeSet::new();
        loop {
            let first = tokio::select! {
                () = stop.cancelled() => return,
                next = work.recv() => match next { Some(n) => n, None => return },
            };
            // What queued up meanwhile is one batch, each pipeline once.
            let mut batch = BTreeSet::new();
            let mut all = false;
            for item in std::iter::once(first).chain(std::iter::from_fn(|| work.try_recv().ok())) {
                match item {
                    Some(name) => {
                        known.insert(name.clone());
                        batch.insert(name);
                    }
                    None => all = true,
                }
            }
            if all {
                batch.extend(known.iter().cloned());
            }
            for name in batch {
                if let Err(error) = self.reconcile(&name).await {
                    eprintln!("stand-in manager: {name}: {error}");
                }
            }
        }
    }

    async fn reconcile(&self, name: &str) -> Result<(), String> {
        let alerts = self.client.alerts().await.map_err(|e| e.to_string())?;
        let snapshot = Snapshot::from_alerts(alerts.alerts, &Matcher::all());
        let verdict = health::evaluate(
            PipelineFacts::new(Kind::Metric, name),
            Knowledge::Fresh(&snapshot),
        )
        .ok_or("no verdict")?;
        let (kubectl, resource) = (self.kubectl.clone(), self.resource.clone());
        let (status, reason) = (verdict.status.as_str(), verdict.reason);
        let message = if status == "True" {
            HEALTHY_MESSAGE.to_owned()
        } else {
            format!("{reason} (stand-in manager)")
        };
        let name = name.to_owned();
        let writes = self.writes.clone();
        tokio::task::spawn_blocking(move || {
            let json = kubectl
                .run(&["get", &resource, &name, "-o", "json"])
                .map_err(|e| e.to_string())?;
            let mut object: Value = serde_json::from_str(&json).map_err(|e| e.to_string())?;
            if !set_condition(&mut object, status, reason, &message) {
                return Ok(());
            }
            kubectl
                .run_with_input(
                    &[
                        "replace",
                        "--subresource=status",
                        "--field-manager",
                        FIELD_MANAGER,
                        "-f",
                        "-",
                    ],
                    Some(&object.to_string()),
                )
                .map_err(|e| e.to_string())?;
            writes.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

/// `meta.SetStatusCondition`: sets the condition, moving
/// `lastTransitionTime` only when the status moves; `false` when nothing
/// changed (an update would then change nothing either).
fn set_condition(object: &mut Value, status: &str, reason: &str, message: &str) -> bool {
    let generation = object["metadata"]["generation"].clone();
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    if !object["status"]["conditions"].is_array() {
        object["status"]["conditions"] = json!([]);
    }
    let list = object["status"]["conditions"]
        .as_array_mut()
        .expect("an array");
    let wanted = json!({"type": CONDITION, "status": status, "reason": reason,
                        "message": message, "observedGeneration": generation});
    match list.iter_mut().find(|c| c["type"] == CONDITION) {
        Some(c) => {
            let same = ["status", "reason", "message", "observedGeneration"]
                .iter()
                .all(|k| c[*k] == wanted[*k]);
            if same {
                return false;
            }
            if c["status"] != status {
                c["lastTransitionTime"] = now.into();
            }
            for k in ["status", "reason", "message", "observedGeneration"] {
                c[k] = wanted[k].clone();
            }
        }
        None => {
            let mut c = wanted;
            c["lastTransitionTime"] = now.into();
            list.push(c);
        }
    }
    true
}
