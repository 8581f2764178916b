//! The pipeline controller, one per kind: turns the poller's view into one
//! status condition per pipeline, and writes it only when it differs from
//! what the object carries.
//!
//! Reconciles come from four sources: the pipeline watch (a new pipeline, a
//! spec change, or any change to our condition, which is how a condition
//! another writer overwrote or deleted comes back), the poller naming
//! pipelines whose alerts changed, the poller asking for all of them
//! (unscoped alert, staleness, recovery, new tuning), and a jittered resync
//! every `resyncInterval` in case a watch event was missed.
//!
//! Pipelines are handled as untyped objects of the version [`schema`]
//! chose, so no field is lost to a type that does not model it, and status
//! writes follow the CRD's conditions-list shape.
//!
//! `reconcile.rs` judges one pipeline and decides whether to write;
//! `write.rs` writes the condition the way the CRD's list shape asks.

mod reconcile;
mod write;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt, TryStreamExt};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::controller::{Action, Config as ControllerConfig};
use kube::runtime::events::Recorder;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::Tuning;
use crate::domain::alerts::Targets;
use crate::domain::conditions;
use crate::domain::kind::Kind;
use crate::domain::other_writers::Ledger;
use crate::domain::shadow::Comparison;
use crate::kubernetes::schema::{self, ListShape, Schema};
use crate::operations::metrics::Metrics;
use crate::operations::watchdog::Watchdog;
use crate::polling::poller::PollView;

/// Field manager of our status writes: under server-side apply it owns our
/// condition entry and nothing else.
pub const FIELD_MANAGER: &str = "alert-poller";

/// How often an atomic-list write re-reads and retries after another writer
/// got in between.
const CONFLICT_ATTEMPTS: usize = 5;

/// Errors of one reconcile.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("cannot write the status of {kind} {name}: {source}")]
    StatusWrite {
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "cannot write the status of {kind} {name}: another writer changed it {attempts} times in a row"
    )]
    Contended {
        kind: &'static str,
        name: String,
        attempts: usize,
    },
}

impl ReconcileError {
    pub fn metric_label(&self) -> &'static str {
        match self {
            ReconcileError::StatusWrite { .. } => "status_write_error",
            ReconcileError::Contended { .. } => "status_write_conflict",
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub view: watch::Receiver<Arc<PollView>>,
    pub tuning: watch::Receiver<Arc<Tuning>>,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// Watches each reconcile in flight, for liveness.
    pub watchdog: Arc<Watchdog>,
}

/// What the reconciles of one run share besides [`Context`]: the API of the
/// chosen version and the list shape, and what we remember of the
/// condition's other writer.
struct Shared {
    ctx: Arc<Context>,
    resource_kind: Kind,
    /// The conditions list's shape, kept current by [`schema::follow`].
    shape: watch::Receiver<ListShape>,
    resource: ApiResource,
    api: Api<DynamicObject>,
    /// Our writes, and whom we leave the condition to (write mode).
    ledger: Mutex<Ledger>,
    /// Our verdicts against the other writer's condition (shadow mode).
    comparison: Mutex<Comparison>,
}

/// `resync` plus up to a tenth of it, so that pipelines created together do
/// not all come back in the same instant.
fn jittered(resync: Duration) -> Duration {
    resync + resync.mul_f64(fastrand::f64() / 10.0)
}

fn error_policy(pipeline: Arc<DynamicObject>, error: &ReconcileError, _: Arc<Shared>) -> Action {
    tracing::warn!(pipeline = %pipeline.name_any(), %error, "reconcile failed; retrying");
    // Jittered so that a burst of failures (API server restart) spreads out.
    Action::requeue(Duration::from_millis(2_000 + fastrand::u64(0..3_000)))
}

/// What, of a pipeline, can change the condition we should write: its
/// generation and our own condition entry. Status writes by others to their
/// own entries pass unnoticed; a change to ours (by anyone, ourselves
/// included) triggers one reconcile, which writes nothing if it agrees.
pub(crate) fn watched_state(pipeline: &DynamicObject, condition_type: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    pipeline.metadata.generation.hash(&mut hasher);
    let ours = conditions::raw_list(&pipeline.data)
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(condition_type));
    ours.map(Value::to_string).hash(&mut hasher);
    hasher.finish()
}

/// Finds the version and list shape to use, retrying until the CRD is there.
async fn discover_schema(
    client: &Client,
    kind: Kind,
    shutdown: &CancellationToken,
) -> Option<Schema> {
    let mut delay = Duration::from_secs(1);
    loop {
        match schema::discover(client, kind).await {
            Ok(schema) => {
                tracing::info!(
                    %kind,
                    version = %schema.version,
                    conditions = schema.conditions.as_str(),
                    "pipeline API chosen"
                );
                return Some(schema);
            }
            Err(error) => {
                tracing::error!(%kind, %error, retry_in = ?delay, "cannot use the pipeline API yet")
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

/// Runs the controller of one kind until `shutdown` is cancelled and
/// in-flight reconciles end. `requeue` brings what the poller re-queues of
/// this kind.
pub async fn run(
    kind: Kind,
    ctx: Arc<Context>,
    requeue: mpsc::UnboundedReceiver<Targets>,
    synced: watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let Some(schema) = discover_schema(&ctx.client, kind, &shutdown).await else {
        return;
    };
    let resource = schema.api_resource();
    let (shape_tx, shape) = watch::channel(schema.conditions);
    // Ends this run on shutdown, and also when the CRD moves to another
    // version: main treats an end without shutdown as a failure, so the
    // process restarts and discovers the schema afresh.
    let stop = shutdown.child_token();
    tokio::spawn(schema::follow(
        ctx.client.clone(),
        schema.clone(),
        shape_tx,
        stop.clone(),
    ));
    let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &resource);
    let writer = reflector::store::Writer::new(resource.clone());
    let reader = writer.as_reader();
    let pipelines = pipeline_events(kind, api.clone(), writer, ctx.tuning.clone(), synced);
    let triggers = Triggers::split(
        kind,
        requeue,
        reader.clone(),
        &resource,
        ctx.metrics.clone(),
    );
    let shared = Arc::new(Shared {
        ctx,
        resource_kind: kind,
        shape,
        resource: resource.clone(),
        api,
        ledger: Mutex::default(),
        comparison: Mutex::default(),
    });
    Controller::for_stream_with(pipelines, reader, resource)
        .with_config(ControllerConfig::default().concurrency(8))
        .reconcile_on(triggers.named)
        .reconcile_all_on(triggers.all)
        .graceful_shutdown_on(stop.cancelled_owned())
        .run(reconcile::reconcile, error_policy, shared)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "controller event");
            }
        })
        .await;
}

/// The pipelines of `kind` as the controller sees them: watched, trimmed to
/// what verdicts and writes read, cached in `writer`, and passed on only
/// when something we judge by changed ([`watched_state`]). `synced` turns
/// true once the first list is in: readiness comes from the watch itself,
/// since `Store::wait_until_ready` wakes only one waiter and the controller
/// is already waiting on it.
fn pipeline_events(
    kind: Kind,
    api: Api<DynamicObject>,
    writer: reflector::store::Writer<DynamicObject>,
    tuning: watch::Receiver<Arc<Tuning>>,
    synced: watch::Sender<bool>,
) -> impl Stream<Item = Result<DynamicObject, watcher::Error>> + Send + 'static {
    watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .modify(move |pipeline| crate::kubernetes::pipeline::cached::trim(kind, pipeline))
        .inspect_ok(move |event| {
            if matches!(event, watcher::Event::InitDone) && !*synced.borrow() {
                tracing::info!(%kind, "pipeline cache synced");
                synced.send_replace(true);
            }
        })
        .reflect(writer)
        .applied_objects()
        .predicate_filter(
            move |p: &DynamicObject| Some(watched_state(p, &tuning.borrow().condition_type)),
            Default::default(),
        )
}

/// The poller's re-queues as the two trigger streams kube's controller
/// takes: named pipelines, and "all of them".
struct Triggers {
    named: futures::channel::mpsc::UnboundedReceiver<ObjectRef<DynamicObject>>,
    all: futures::channel::mpsc::UnboundedReceiver<()>,
}

impl Triggers {
    fn split(
        kind: Kind,
        mut requeue: mpsc::UnboundedReceiver<Targets>,
        store: Store<DynamicObject>,
        resource: &ApiResource,
        metrics: Arc<Metrics>,
    ) -> Triggers {
        let (named_tx, named) = futures::channel::mpsc::unbounded();
        let (all_tx, all) = futures::channel::mpsc::unbounded();
        let resource = resource.clone();
        tokio::spawn(async move {
            while let Some(targets) = requeue.recv().await {
                match targets {
                    Targets::Pipelines(names) => {
                        metrics.record_requeue(kind, names.len(), false);
                        for name in names {
                            let target = ObjectRef::new_with(&name, resource.clone());
                            let _ = named_tx.unbounded_send(target);
                        }
                    }
                    Targets::All => {
                        metrics.record_requeue(kind, store.state().len(), true);
                        let _ = all_tx.unbounded_send(());
                    }
                }
            }
        });
        Triggers { named, all }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;
    use crate::domain::health::{Status, Verdict};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
    use k8s_openapi::jiff::Timestamp;
    use reconcile::holds_back;
    use serde_json::json;

    fn object(generation: i64, conditions: Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "telemetry.kyma-project.io/v1beta1",
            "kind": "MetricPipeline",
            "metadata": {"name": "a", "generation": generation, "resourceVersion": "7"},
            "spec": {"output": {"otlp": {"compression": "zstd"}}},
            "status": {"conditions": conditions},
        }))
        .unwrap()
    }

    #[test]
    fn watched_state_moves_with_generation_and_our_condition_only() {
        let ours = json!({"type": "T", "status": "True", "reason": "FlowHealthy"});
        let theirs = json!({"type": "GatewayHealthy", "status": "True", "reason": "X"});
        let base = watched_state(&object(1, json!([theirs, ours])), "T");
        // Another writer's entry changes: no reconcile.
        let theirs_changed = json!({"type": "GatewayHealthy", "status": "False", "reason": "Y"});
        assert_eq!(
            watched_state(&object(1, json!([theirs_changed, ours])), "T"),
            base
        );
        // Ours changed or removed, or a new generation: reconcile.
        let ours_changed = json!({"type": "T", "status": "False", "reason": "FlowHealthy"});
        assert_ne!(
            watched_state(&object(1, json!([theirs, ours_changed])), "T"),
            base
        );
        assert_ne!(watched_state(&object(1, json!([theirs])), "T"), base);
        assert_ne!(watched_state(&object(2, json!([theirs, ours])), "T"), base);
    }

    /// While Prometheus settles: nothing turns healthy over an unhealthy,
    /// unknown or absent condition, worse news is written, shadow mode waits.
    #[test]
    fn settling_holds_back_only_good_news() {
        let condition = |status: &str| Condition {
            type_: "T".into(),
            status: status.into(),
            reason: "R".into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                Timestamp::UNIX_EPOCH,
            ),
        };
        let verdict = |status| Verdict {
            status,
            reason: "R",
            message: String::new(),
        };
        let (f, u, t) = (condition("False"), condition("Unknown"), condition("True"));
        // (current, verdict, mode, held back)
        let cases = [
            (Some(&f), Status::True, Mode::Write, true),
            (Some(&u), Status::True, Mode::Write, true),
            (Some(&t), Status::True, Mode::Write, false),
            (None, Status::True, Mode::Write, true),
            (Some(&t), Status::False, Mode::Write, false),
            (Some(&t), Status::False, Mode::Shadow, true),
        ];
        for (current, status, mode, held) in cases {
            assert_eq!(
                holds_back(current, &verdict(status), mode),
                held,
                "{current:?} -> {status:?} in {mode:?}"
            );
        }
    }

    #[test]
    fn resync_jitter_stays_within_a_tenth() {
        let base = Duration::from_secs(300);
        for _ in 0..1000 {
            let d = jittered(base);
            assert!(d >= base && d <= base + base / 10, "{d:?}");
        }
    }
}
