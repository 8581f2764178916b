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
//! Pipelines are handled as untyped objects of the version [`crate::kubernetes::schema`]
//! chose, so no field is lost to a type that does not model it, and status
//! writes follow the CRD's conditions-list shape.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::{Action, Config as ControllerConfig};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::{Mode, Tuning};
use crate::domain::alerts::Targets;
use crate::domain::conditions;
use crate::domain::health::{self, LogSpec, PipelineFacts, Status, Verdict};
use crate::domain::kind::Kind;
use crate::domain::other_writers::{Decision, Ledger, Observed};
use crate::domain::shadow::{Comparison, Said, Side, Transition};
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

async fn reconcile(
    pipeline: Arc<DynamicObject>,
    shared: Arc<Shared>,
) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    // No budget of its own: a reconcile is a few requests, and the
    // watchdog's grace is what a stuck one is allowed.
    let task = format!("reconcile {}/{}", shared.resource_kind, pipeline.name_any());
    let _watched = shared.ctx.watchdog.guard(task, Duration::ZERO);
    let result = reconcile_inner(&pipeline, &shared).await;
    let label = match &result {
        Ok(_) => "success",
        Err(e) => e.metric_label(),
    };
    shared
        .ctx
        .metrics
        .record_reconcile(shared.resource_kind, label, started.elapsed());
    let resync = jittered(shared.ctx.tuning.borrow().resync_interval);
    result.map(|()| Action::requeue(resync))
}

async fn reconcile_inner(pipeline: &DynamicObject, shared: &Shared) -> Result<(), ReconcileError> {
    let ctx = &shared.ctx;
    let name = pipeline.name_any();
    let (condition_type, mode) = {
        let tuning = ctx.tuning.borrow();
        (tuning.condition_type.clone(), tuning.mode)
    };
    let view = ctx.view.borrow().clone();
    let kind = shared.resource_kind;
    let log = match kind {
        Kind::Log => crate::kubernetes::pipeline::log::spec_of(&pipeline.data),
        Kind::Metric | Kind::Trace => LogSpec::default(),
    };
    let facts = PipelineFacts {
        kind,
        name: &name,
        log,
    };
    // Before the first poll nothing is known; the poller re-queues everyone
    // once it knows something.
    let Some(verdict) = health::evaluate(facts, view.knowledge()) else {
        return Ok(());
    };
    let current = conditions::find(conditions::raw_list(&pipeline.data), &condition_type);
    if view.settling && holds_back(current.as_ref(), &verdict, mode) {
        tracing::debug!(pipeline = %name, "Prometheus is settling after its start; verdict held back");
        return Ok(());
    }
    if mode == Mode::Shadow {
        compare(shared, &name, current.as_ref(), &verdict);
        return Ok(());
    }
    match decide(
        shared,
        pipeline,
        current.as_ref(),
        &condition_type,
        &verdict,
    ) {
        Decision::Write => {}
        Decision::Nothing => return Ok(()),
        Decision::Yield { writer, first_time } => {
            let yielding = shared.ledger.lock().expect("ledger lock").yielding();
            ctx.metrics.beside.record_yield(kind, yielding);
            if first_time {
                report_other_writer(shared, pipeline, &condition_type, &writer).await;
            }
            return Ok(());
        }
    }
    let Some(written) = write(shared, pipeline, &condition_type, &verdict).await? else {
        return Ok(());
    };
    shared
        .ledger
        .lock()
        .expect("ledger lock")
        .wrote(&name, &verdict, written.version);
    let transition = written
        .previous
        .is_none_or(|c| c.status != written.condition.status);
    ctx.metrics
        .record_status_write(shared.resource_kind, verdict.status.as_str());
    tracing::info!(
        pipeline = %name,
        status = verdict.status.as_str(),
        reason = verdict.reason,
        transition,
        "condition written"
    );
    if transition {
        publish_transition(shared, pipeline, &verdict).await;
    }
    Ok(())
}

/// While Prometheus settles after its start, a missing alert may only not
/// be shown yet: no healthy verdict replaces an unhealthy or unknown
/// condition or is written where there is none, and shadow mode compares
/// nothing.
fn holds_back(current: Option<&Condition>, verdict: &Verdict, mode: Mode) -> bool {
    mode == Mode::Shadow
        || (verdict.status == Status::True && current.is_none_or(|c| c.status != "True"))
}

/// Whether to write, given what the object shows and what we wrote before.
fn decide(
    shared: &Shared,
    pipeline: &DynamicObject,
    current: Option<&Condition>,
    condition_type: &str,
    verdict: &Verdict,
) -> Decision {
    let due = conditions::plan(
        condition_type,
        current,
        verdict,
        pipeline.metadata.generation,
        Timestamp::now(),
    );
    let observed = Observed {
        current,
        version: pipeline.metadata.resource_version.as_deref().unwrap_or(""),
        managed_fields: pipeline.metadata.managed_fields.as_deref().unwrap_or(&[]),
    };
    shared.ledger.lock().expect("ledger lock").decide(
        &pipeline.name_any(),
        verdict,
        observed,
        due.is_none(),
        FIELD_MANAGER,
    )
}

/// Shadow mode: the verdict and the other writer's condition, compared and
/// counted; nothing is written.
fn compare(shared: &Shared, name: &str, current: Option<&Condition>, verdict: &Verdict) {
    let now = Instant::now();
    let theirs = current.map(|c| Said {
        status: c.status.clone(),
        reason: c.reason.clone(),
    });
    let ours = Said {
        status: verdict.status.as_str().to_owned(),
        reason: verdict.reason.to_owned(),
    };
    let (done, agreement) = {
        let mut comparison = shared.comparison.lock().expect("comparison lock");
        let mut done = comparison.observe(name, Side::Other, theirs, now);
        done.extend(comparison.observe(name, Side::Poller, Some(ours), now));
        (done, comparison.agreement())
    };
    let kind = shared.resource_kind;
    for transition in &done {
        match transition {
            Transition::Both { first, lead } => tracing::info!(
                pipeline = %name,
                %kind,
                first = first.as_str(),
                lead_ms = lead.as_millis() as u64,
                "shadow: both sides made the same change"
            ),
            Transition::Only { side } => tracing::info!(
                pipeline = %name,
                %kind,
                side = side.as_str(),
                "shadow: a change only one side made"
            ),
        }
    }
    shared.ctx.metrics.beside.record_transitions(kind, &done);
    shared.ctx.metrics.beside.set_agreement(kind, agreement);
}

/// Says once, where an operator looks, that another writer keeps our
/// condition type on this pipeline and that we leave it to it.
async fn report_other_writer(
    shared: &Shared,
    pipeline: &DynamicObject,
    condition_type: &str,
    writer: &str,
) {
    let kind = shared.resource_kind.api_kind();
    tracing::warn!(
        pipeline = %pipeline.name_any(),
        %kind,
        %writer,
        condition_type,
        "another writer keeps this condition; leaving it, writing again only when the verdict changes"
    );
    let event = Event {
        type_: EventType::Warning,
        reason: "ConditionKeptByOtherWriter".into(),
        note: Some(format!(
            "{writer} also writes {condition_type} on this {kind}; alert-poller leaves its writes standing and writes only when its own verdict changes. Beside telemetry-manager use mode: shadow (compare, never write) or a conditionType of alert-poller's own."
        )),
        action: "UpdateFlowHealth".into(),
        secondary: None,
    };
    publish(shared, pipeline, &event).await;
}

/// A successful write: what was written, what it replaced, and the
/// object's resourceVersion after it.
struct Written {
    condition: Condition,
    previous: Option<Condition>,
    version: String,
}

/// Writes the condition the verdict asks for if it differs from the object's.
/// Returns what was written, or `None` when nothing needed writing.
async fn write(
    shared: &Shared,
    pipeline: &DynamicObject,
    condition_type: &str,
    verdict: &Verdict,
) -> Result<Option<Written>, ReconcileError> {
    let name = pipeline.name_any();
    let kind = shared.resource_kind.api_kind();
    let write_error = |source| ReconcileError::StatusWrite {
        kind,
        name: name.clone(),
        source,
    };
    // The cached object first; after a conflict, what the API server has now.
    let mut reread: Option<DynamicObject> = None;
    for _ in 0..CONFLICT_ATTEMPTS {
        let object = reread.as_ref().unwrap_or(pipeline);
        let list = conditions::raw_list(&object.data);
        let current = conditions::find(list, condition_type);
        let Some(condition) = conditions::plan(
            condition_type,
            current.as_ref(),
            verdict,
            object.metadata.generation,
            Timestamp::now(),
        ) else {
            return Ok(None);
        };
        let shape = *shared.shape.borrow();
        let result = match shape {
            ListShape::Map => {
                // Our one entry, applied: the map list keeps everyone else's.
                let patch = json!({
                    "apiVersion": shared.resource.api_version,
                    "kind": shared.resource.kind,
                    "status": { "conditions": [condition] },
                });
                shared
                    .api
                    .patch_status(
                        &name,
                        &PatchParams::apply(FIELD_MANAGER).force(),
                        &Patch::Apply(&patch),
                    )
                    .await
            }
            ListShape::Atomic => {
                // The whole list, everyone else's entries as read, and only
                // if nobody wrote since we read (a merge patch carrying
                // resourceVersion is refused with 409 otherwise).
                let patch = json!({
                    "metadata": { "resourceVersion": object.metadata.resource_version },
                    "status": { "conditions": conditions::merge(list, &condition) },
                });
                let params = PatchParams {
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..PatchParams::default()
                };
                shared
                    .api
                    .patch_status(&name, &params, &Patch::Merge(&patch))
                    .await
            }
        };
        match result {
            Ok(object) => {
                return Ok(Some(Written {
                    condition,
                    previous: current,
                    version: object.metadata.resource_version.unwrap_or_default(),
                }));
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {
                shared
                    .ctx
                    .metrics
                    .record_write_conflict(shared.resource_kind);
                tracing::debug!(pipeline = %name, "status changed since read; re-reading");
                reread = Some(shared.api.get(&name).await.map_err(write_error)?);
            }
            Err(e) => return Err(write_error(e)),
        }
    }
    Err(ReconcileError::Contended {
        kind,
        name,
        attempts: CONFLICT_ATTEMPTS,
    })
}

async fn publish_transition(shared: &Shared, pipeline: &DynamicObject, verdict: &Verdict) {
    let event = Event {
        type_: match verdict.status {
            Status::True => EventType::Normal,
            Status::False | Status::Unknown => EventType::Warning,
        },
        reason: verdict.reason.to_owned(),
        note: Some(verdict.message.clone()),
        action: "UpdateFlowHealth".into(),
        secondary: None,
    };
    publish(shared, pipeline, &event).await;
}

/// Records an Event on the pipeline. An event is a courtesy: failing to
/// record it must not fail the reconcile.
async fn publish(shared: &Shared, pipeline: &DynamicObject, event: &Event) {
    if let Err(error) = shared
        .ctx
        .recorder
        .publish(event, &pipeline.object_ref(&shared.resource))
        .await
    {
        tracing::warn!(pipeline = %pipeline.name_any(), reason = event.reason, %error, "cannot record the event");
    }
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
            Ok(schema) => return Some(schema),
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
    tracing::info!(
        %kind,
        version = %schema.version,
        conditions = schema.conditions.as_str(),
        "pipeline API chosen"
    );
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
    let tuning = ctx.tuning.clone();
    // Readiness comes from the watch itself: `Store::wait_until_ready` wakes
    // only one waiter, and the controller is already waiting on it.
    let pipelines = watcher(api.clone(), watcher::Config::default().any_semantic())
        .default_backoff()
        // The cache keeps only what verdicts and writes read.
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
        );

    let (named_tx, named_rx) = futures::channel::mpsc::unbounded();
    let (all_tx, all_rx) = futures::channel::mpsc::unbounded();
    let metrics = ctx.metrics.clone();
    let store = reader.clone();
    let trigger_resource = resource.clone();
    // Splits the poller's requests into the two trigger streams kube offers.
    let split = async move {
        let mut requeue = requeue;
        while let Some(targets) = requeue.recv().await {
            match targets {
                Targets::Pipelines(names) => {
                    metrics.record_requeue(kind, names.len(), false);
                    for name in names {
                        let target = ObjectRef::new_with(&name, trigger_resource.clone());
                        let _ = named_tx.unbounded_send(target);
                    }
                }
                Targets::All => {
                    metrics.record_requeue(kind, store.state().len(), true);
                    let _ = all_tx.unbounded_send(());
                }
            }
        }
    };
    tokio::spawn(split);

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
        .reconcile_on(named_rx)
        .reconcile_all_on(all_rx)
        .graceful_shutdown_on(stop.cancelled_owned())
        .run(reconcile, error_policy, shared)
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(%error, "controller event");
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

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
