//! One reconcile: the pipeline judged from the poller's view, and whether
//! the verdict is written, held back (Prometheus settling), compared (shadow
//! mode) or left to another writer that keeps the condition.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::DynamicObject;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};

use super::write::{Written, write};
use super::{FIELD_MANAGER, ReconcileError, Shared, jittered};
use crate::config::Mode;
use crate::domain::conditions;
use crate::domain::health::{self, LogSpec, PipelineFacts, Status, Verdict};
use crate::domain::kind::Kind;
use crate::domain::other_writers::{Decision, Observed};
use crate::domain::shadow::{Said, Side, Transition};

/// The reconcile kube's controller runs: judged, watched for liveness,
/// counted, and queued again after a jittered resync.
pub(super) async fn reconcile(
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
    let name = pipeline.name_any();
    let (condition_type, mode) = {
        let tuning = shared.ctx.tuning.borrow();
        (tuning.condition_type.clone(), tuning.mode)
    };
    let view = shared.ctx.view.borrow().clone();
    // Before the first poll nothing is known; the poller re-queues everyone
    // once it knows something.
    let Some(verdict) = health::evaluate(
        facts(shared.resource_kind, pipeline, &name),
        view.knowledge(),
    ) else {
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
    if !may_write(
        shared,
        pipeline,
        current.as_ref(),
        &condition_type,
        &verdict,
    )
    .await
    {
        return Ok(());
    }
    if let Some(written) = write(shared, pipeline, &condition_type, &verdict).await? {
        record_written(shared, pipeline, &verdict, written).await;
    }
    Ok(())
}

/// What health needs of the pipeline: for a LogPipeline, what its spec uses.
fn facts<'a>(kind: Kind, pipeline: &DynamicObject, name: &'a str) -> PipelineFacts<'a> {
    let log = match kind {
        Kind::Log => crate::kubernetes::pipeline::log::spec_of(&pipeline.data),
        Kind::Metric | Kind::Trace => LogSpec::default(),
    };
    PipelineFacts { kind, name, log }
}

/// Whether the ledger lets this verdict be written. Where another writer
/// keeps the condition, it is left standing and reported once.
async fn may_write(
    shared: &Shared,
    pipeline: &DynamicObject,
    current: Option<&Condition>,
    condition_type: &str,
    verdict: &Verdict,
) -> bool {
    match decide(shared, pipeline, current, condition_type, verdict) {
        Decision::Write => true,
        Decision::Nothing => false,
        Decision::Yield { writer, first_time } => {
            let yielding = shared.ledger.lock().expect("ledger lock").yielding();
            shared
                .ctx
                .metrics
                .beside
                .record_yield(shared.resource_kind, yielding);
            if first_time {
                report_other_writer(shared, pipeline, condition_type, &writer).await;
            }
            false
        }
    }
}

/// Remembers, counts, logs and (on a change of status) announces a write.
async fn record_written(
    shared: &Shared,
    pipeline: &DynamicObject,
    verdict: &Verdict,
    written: Written,
) {
    let name = pipeline.name_any();
    let yielding = {
        let mut ledger = shared.ledger.lock().expect("ledger lock");
        ledger.wrote(&name, verdict, written.version);
        ledger.yielding()
    };
    let kind = shared.resource_kind;
    shared.ctx.metrics.beside.set_yielding(kind, yielding);
    let transition = written
        .previous
        .is_none_or(|c| c.status != written.condition.status);
    shared
        .ctx
        .metrics
        .record_status_write(shared.resource_kind, verdict.status.as_str());
    tracing::info!(
        pipeline = %name,
        status = verdict.status.as_str(),
        reason = verdict.reason,
        transition,
        "condition written"
    );
    if transition {
        publish_transition(shared, pipeline, verdict).await;
    }
}

/// While Prometheus settles after its start, a missing alert may only not
/// be shown yet: no healthy verdict replaces an unhealthy or unknown
/// condition or is written where there is none, and shadow mode compares
/// nothing.
pub(super) fn holds_back(current: Option<&Condition>, verdict: &Verdict, mode: Mode) -> bool {
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
