//! The MetricPipeline controller: turns the poller's view into one status
//! condition per pipeline, and writes it only when it changed.
//!
//! Reconciles come from three sources: the pipeline watch (a new pipeline or a
//! spec change, filtered by generation so our own status writes do not loop
//! back), the poller naming pipelines whose alerts changed, and the poller
//! asking for all of them (unscoped alert, staleness, recovery, new tuning).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Config as ControllerConfig};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, WatchStreamExt, predicates, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::alerts::Affected;
use crate::config::Tuning;
use crate::health::{self, PipelineFacts, Status, Verdict};
use crate::metrics::Metrics;
use crate::pipeline::MetricPipeline;
use crate::poller::PollView;

/// Field manager of our status writes: under server-side apply it owns our
/// condition entry and nothing else.
pub const FIELD_MANAGER: &str = "alert-poller";

/// Errors of one reconcile.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("cannot write the status of MetricPipeline {name}: {source}")]
    StatusWrite {
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl ReconcileError {
    pub fn metric_label(&self) -> &'static str {
        match self {
            ReconcileError::StatusWrite { .. } => "status_write_error",
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
}

/// Decides the condition to write, or `None` when the current one already says
/// the same. `lastTransitionTime` moves only when the status moves, as the
/// Kubernetes API conventions ask, so "how long has it been False" stays true.
pub fn plan(
    condition_type: &str,
    current: Option<&Condition>,
    verdict: &Verdict,
    generation: Option<i64>,
    now: Timestamp,
) -> Option<Condition> {
    let status = verdict.status.as_str();
    if let Some(c) = current
        && c.status == status
        && c.reason == verdict.reason
        && c.message == verdict.message
        && c.observed_generation == generation
    {
        return None;
    }
    let last_transition_time = match current {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Time(now),
    };
    Some(Condition {
        type_: condition_type.to_owned(),
        status: status.to_owned(),
        reason: verdict.reason.to_owned(),
        message: verdict.message.clone(),
        observed_generation: generation,
        last_transition_time,
    })
}

async fn reconcile(
    pipeline: Arc<MetricPipeline>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let started = Instant::now();
    let result = reconcile_inner(&pipeline, &ctx).await;
    let label = match &result {
        Ok(_) => "success",
        Err(e) => e.metric_label(),
    };
    ctx.metrics.record_reconcile(label, started.elapsed());
    result
}

async fn reconcile_inner(
    pipeline: &MetricPipeline,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let name = pipeline.name_any();
    let condition_type = ctx.tuning.borrow().condition_type.clone();
    let view = ctx.view.borrow().clone();
    let facts = PipelineFacts {
        name: &name,
        uses_agent: pipeline.uses_agent(),
    };
    // Before the first poll nothing is known; the poller re-queues everyone
    // once it knows something.
    let Some(verdict) = health::evaluate(facts, view.knowledge()) else {
        return Ok(Action::await_change());
    };
    let current = pipeline.condition(&condition_type);
    let Some(condition) = plan(
        &condition_type,
        current,
        &verdict,
        pipeline.metadata.generation,
        Timestamp::now(),
    ) else {
        return Ok(Action::await_change());
    };
    let transition = current.is_none_or(|c| c.status != condition.status);

    let patch = json!({
        "apiVersion": MetricPipeline::api_version(&()),
        "kind": MetricPipeline::kind(&()),
        "status": { "conditions": [condition] },
    });
    let api: Api<MetricPipeline> = Api::all(ctx.client.clone());
    api.patch_status(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|source| ReconcileError::StatusWrite {
        name: name.clone(),
        source,
    })?;
    ctx.metrics.record_status_write(verdict.status.as_str());
    tracing::info!(
        pipeline = %name,
        status = verdict.status.as_str(),
        reason = verdict.reason,
        transition,
        "condition written"
    );

    if transition {
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
        // An event is a courtesy: failing to record it must not fail the write.
        if let Err(error) = ctx
            .recorder
            .publish(&event, &pipeline.object_ref(&()))
            .await
        {
            tracing::warn!(pipeline = %name, %error, "cannot record the transition event");
        }
    }
    Ok(Action::await_change())
}

fn error_policy(pipeline: Arc<MetricPipeline>, error: &ReconcileError, _: Arc<Context>) -> Action {
    tracing::warn!(pipeline = %pipeline.name_any(), %error, "reconcile failed; retrying");
    // Jittered so that a burst of failures (API server restart) spreads out.
    Action::requeue(Duration::from_millis(2_000 + fastrand::u64(0..3_000)))
}

/// Runs the controller until `shutdown` is cancelled and in-flight reconciles end.
pub async fn run(
    ctx: Arc<Context>,
    requeue: mpsc::UnboundedReceiver<Affected>,
    synced: watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let api: Api<MetricPipeline> = Api::all(ctx.client.clone());
    let (reader, writer) = reflector::store();
    // Readiness comes from the watch itself: `Store::wait_until_ready` wakes
    // only one waiter, and the controller is already waiting on it.
    let pipelines = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .inspect_ok(move |event| {
            if matches!(event, watcher::Event::InitDone) && !*synced.borrow() {
                tracing::info!("pipeline cache synced");
                synced.send_replace(true);
            }
        })
        .reflect(writer)
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default());

    let (named_tx, named_rx) = futures::channel::mpsc::unbounded();
    let (all_tx, all_rx) = futures::channel::mpsc::unbounded();
    let metrics = ctx.metrics.clone();
    let store = reader.clone();
    // Splits the poller's requests into the two trigger streams kube offers.
    let split = async move {
        let mut requeue = requeue;
        while let Some(affected) = requeue.recv().await {
            match affected {
                Affected::None => {}
                Affected::Pipelines(names) => {
                    metrics.pipelines_requeued.inc_by(names.len() as u64);
                    for name in names {
                        let _ = named_tx.unbounded_send(ObjectRef::<MetricPipeline>::new(&name));
                    }
                }
                Affected::All => {
                    metrics.full_requeues.inc();
                    metrics
                        .pipelines_requeued
                        .inc_by(store.state().len() as u64);
                    let _ = all_tx.unbounded_send(());
                }
            }
        }
    };
    tokio::spawn(split);

    Controller::for_stream(pipelines, reader)
        .with_config(ControllerConfig::default().concurrency(8))
        .reconcile_on(named_rx)
        .reconcile_all_on(all_rx)
        .graceful_shutdown_on(shutdown.cancelled_owned())
        .run(reconcile, error_policy, ctx)
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

    fn verdict(status: Status, reason: &'static str) -> Verdict {
        Verdict {
            status,
            reason,
            message: format!("{reason} message"),
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    #[test]
    fn first_verdict_is_written_with_now_as_transition() {
        let c = plan(
            "T",
            None,
            &verdict(Status::True, "FlowHealthy"),
            Some(3),
            at(100),
        )
        .unwrap();
        assert_eq!(c.type_, "T");
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", "FlowHealthy")
        );
        assert_eq!(c.observed_generation, Some(3));
        assert_eq!(c.last_transition_time, Time(at(100)));
    }

    #[test]
    fn the_same_verdict_is_not_written_again() {
        let v = verdict(Status::False, "GatewayThrottling");
        let current = plan("T", None, &v, Some(1), at(100)).unwrap();
        assert_eq!(plan("T", Some(&current), &v, Some(1), at(200)), None);
    }

    #[test]
    fn reason_change_keeps_the_transition_time() {
        let current = plan(
            "T",
            None,
            &verdict(Status::False, "GatewayThrottling"),
            Some(1),
            at(100),
        )
        .unwrap();
        let next = plan(
            "T",
            Some(&current),
            &verdict(Status::False, "GatewayAllTelemetryDataDropped"),
            Some(1),
            at(200),
        )
        .unwrap();
        assert_eq!(next.reason, "GatewayAllTelemetryDataDropped");
        assert_eq!(next.last_transition_time, Time(at(100)));
    }

    #[test]
    fn status_change_moves_the_transition_time() {
        let current = plan(
            "T",
            None,
            &verdict(Status::False, "GatewayThrottling"),
            Some(1),
            at(100),
        )
        .unwrap();
        let next = plan(
            "T",
            Some(&current),
            &verdict(Status::True, "FlowHealthy"),
            Some(1),
            at(200),
        )
        .unwrap();
        assert_eq!(next.last_transition_time, Time(at(200)));
    }

    #[test]
    fn a_new_generation_is_written() {
        let v = verdict(Status::True, "FlowHealthy");
        let current = plan("T", None, &v, Some(1), at(100)).unwrap();
        let next = plan("T", Some(&current), &v, Some(2), at(200)).unwrap();
        assert_eq!(next.observed_generation, Some(2));
        assert_eq!(next.last_transition_time, Time(at(100)));
    }
}
