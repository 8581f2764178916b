//! The poll loop: the only task that talks to Prometheus.
//!
//! One task asks the [`Sources`] for the alerts (every configured URL at
//! once, answers merged), turns the answer into a [`Snapshot`] and hands
//! it to the [`PollState`], which decides what reconciles see (the
//! [`PollView`]) and which pipelines to re-queue; this file does the I/O that
//! follows from that: requests, metrics, logs and the channels. Reconciles read
//! the view and never call Prometheus. Between polls it waits for the
//! schedule's delay, a tuning change (which polls at once) or the staleness
//! deadline (which turns every pipeline Unknown), whichever comes first.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::Tuning;
use crate::domain::alerts::{Affected, Snapshot};
use crate::domain::kind::Kind;
use crate::operations::metrics::{ChangeLabels, KindStateLabels, Metrics};
use crate::operations::watchdog::Watchdog;
use crate::polling::phase;
use crate::polling::poll_state::{PollState, PollTuning, Staleness, Step};
use crate::polling::schedule::{Intervals, Outcome, Schedule};
use crate::polling::sources::Sources;
use crate::prometheus::AlertsResponse;

// The view is the poll state's output; this path is the one its readers know.
pub use crate::polling::poll_state::PollView;

/// The poller's connections to the rest of the process. Built only by
/// [`Poller::new`], so the channels it sends on always have their receiving
/// ends handed out.
pub struct Poller {
    tuning: watch::Receiver<Arc<Tuning>>,
    view: watch::Sender<Arc<PollView>>,
    requeue: mpsc::UnboundedSender<Affected>,
    metrics: Arc<Metrics>,
    polled: watch::Sender<bool>,
    tuning_loaded: watch::Receiver<bool>,
    /// Told when the next iteration is due, for liveness.
    watchdog: Option<Arc<Watchdog>>,
}

/// The receiving ends of the poller's channels, for the tasks that read them.
pub struct PollerOutputs {
    /// What the poller knows; reconciles judge from it.
    pub view: watch::Receiver<Arc<PollView>>,
    /// The pipelines to reconcile again.
    pub requeues: mpsc::UnboundedReceiver<Affected>,
    /// True once the first poll has finished, whatever its result: readiness
    /// waits for it.
    pub polled: watch::Receiver<bool>,
}

/// How long the first poll waits for the ConfigMap before using the flags.
const TUNING_WAIT: Duration = Duration::from_secs(10);

impl Poller {
    /// Creates the poller's channels. `tuning` is the current tuning;
    /// `tuning_loaded` turns true once the tuning ConfigMap has been read (or
    /// found missing): the first poll waits for it, so it does not go to the
    /// flag's URL when the ConfigMap names another.
    pub fn new(
        tuning: watch::Receiver<Arc<Tuning>>,
        tuning_loaded: watch::Receiver<bool>,
        metrics: Arc<Metrics>,
    ) -> (Poller, PollerOutputs) {
        let (view, view_rx) = watch::channel(Arc::new(PollView::default()));
        let (requeue, requeues) = mpsc::unbounded_channel();
        let (polled, polled_rx) = watch::channel(false);
        let poller = Poller {
            tuning,
            view,
            requeue,
            metrics,
            polled,
            tuning_loaded,
            watchdog: None,
        };
        let outputs = PollerOutputs {
            view: view_rx,
            requeues,
            polled: polled_rx,
        };
        (poller, outputs)
    }

    /// The poller tells `watchdog` when it will next finish an iteration.
    pub fn watched_by(mut self, watchdog: Arc<Watchdog>) -> Poller {
        self.watchdog = Some(watchdog);
        self
    }

    /// Promises the end of the next poll within `wait` plus what one poll
    /// may take: the alerts, the restart check and the rule timings, each
    /// bounded by requestTimeout.
    fn promise(&self, wait: Duration, tuning: &Tuning) {
        if let Some(watchdog) = &self.watchdog {
            watchdog.expect("poller", wait + tuning.request_timeout * 4);
        }
    }

    /// Polls until `shutdown` is cancelled.
    pub async fn run(mut self, shutdown: CancellationToken) {
        if !self.wait_for_tuning(&shutdown).await {
            return;
        }
        let mut tuning = self.tuning.borrow_and_update().clone();
        let mut schedule = Schedule::new(&Intervals::of(&tuning));
        let mut sources = Sources::new(self.metrics.clone());
        let mut watching_tuning = true;
        let mut state = PollState::new(PollTuning::from(&*tuning), now());
        loop {
            sources.update(&tuning);
            let Some(outcome) = self
                .poll_once(&mut sources, &tuning, &mut state, &shutdown)
                .await
            else {
                return;
            };
            let mut delay = schedule.next(&Intervals::of(&tuning), outcome, fastrand::f64());
            if tuning.phase_lock && !matches!(outcome, Outcome::Failed { .. }) {
                delay = tokio::select! {
                    groups = sources.timings(&tuning) => within_staleness(phase_locked(&groups, delay), &tuning),
                    () = shutdown.cancelled() => return,
                };
            }
            self.metrics.poll_interval.set(delay.as_secs_f64());
            self.promise(delay, &tuning);
            tracing::debug!(?delay, ?outcome, "next poll scheduled");
            let next_poll = tokio::time::Instant::now() + delay;
            let waited =
                self.wait_for_next_poll(next_poll, &mut state, &mut watching_tuning, &shutdown);
            match waited.await {
                Waited::Due => {}
                Waited::Retuned(new) => tuning = new,
                Waited::ShutDown => return,
            }
        }
    }

    /// Waits for the tuning ConfigMap to be read, at most [`TUNING_WAIT`],
    /// so the first poll does not go to the flag's URL when the ConfigMap
    /// names another. False when `shutdown` came first.
    async fn wait_for_tuning(&mut self, shutdown: &CancellationToken) -> bool {
        self.promise(TUNING_WAIT, &self.tuning.borrow());
        tokio::select! {
            () = shutdown.cancelled() => false,
            loaded = tokio::time::timeout(TUNING_WAIT, self.tuning_loaded.wait_for(|l| *l)) => {
                if loaded.is_err() {
                    tracing::warn!("tuning ConfigMap not read within {TUNING_WAIT:?}; polling with the flags' tuning");
                }
                true
            }
        }
    }

    /// One poll of every source, its result handed to the state and acted
    /// on. `None` when `shutdown` came first.
    async fn poll_once(
        &self,
        sources: &mut Sources,
        tuning: &Tuning,
        state: &mut PollState,
        shutdown: &CancellationToken,
    ) -> Option<Outcome> {
        let started = Instant::now();
        let polled = tokio::select! {
            polled = sources.poll(tuning) => polled,
            () = shutdown.cancelled() => return None,
        };
        let (outcome, step) = match polled.into_result() {
            Ok(response) => {
                self.metrics.record_poll("success", started.elapsed());
                let snapshot = tokio::select! {
                    snapshot = self.settled_snapshot(response, tuning, state, sources) => snapshot,
                    () = shutdown.cancelled() => return None,
                };
                self.on_success(snapshot, state)
            }
            Err((url, error)) => {
                self.metrics.record_poll(error.kind(), started.elapsed());
                tracing::warn!(%url, %error, kind = error.kind(), "poll of Prometheus alerts failed");
                state.failed(error.kind(), error.retry_after())
            }
        };
        self.act(step);
        self.polled.send_replace(true);
        Some(outcome)
    }

    /// Waits for the next poll, acting on staleness when its deadline comes
    /// first and ending early for a new tuning, which is polled with at
    /// once. A closed tuning channel is stopped being watched.
    async fn wait_for_next_poll(
        &mut self,
        next_poll: tokio::time::Instant,
        state: &mut PollState,
        watching_tuning: &mut bool,
        shutdown: &CancellationToken,
    ) -> Waited {
        loop {
            let stale_at = state.stale_at().map(tokio::time::Instant::from_std);
            tokio::select! {
                () = shutdown.cancelled() => return Waited::ShutDown,
                () = tokio::time::sleep_until(next_poll) => return Waited::Due,
                () = sleep_until_some(stale_at) => self.act(state.deadline_reached(now())),
                changed = self.tuning.changed(), if *watching_tuning => {
                    if changed.is_err() {
                        *watching_tuning = false;
                        continue;
                    }
                    let new = self.tuning.borrow_and_update().clone();
                    self.act(state.retuned(PollTuning::from(&*new)));
                    return Waited::Retuned(new);
                }
            }
        }
    }

    /// The snapshot of a successful poll's response, and whether a source
    /// is settling after its start. An answer that drops a firing alert may
    /// come from a Prometheus that has just started and does not show it
    /// yet (`restart`): then the alerts that fired before are kept until
    /// it has settled.
    async fn settled_snapshot(
        &self,
        response: AlertsResponse,
        tuning: &Tuning,
        state: &PollState,
        sources: &mut Sources,
    ) -> (Snapshot, bool) {
        self.metrics.response_bytes.inc_by(response.bytes as u64);
        let matchers = tuning.matchers();
        let snapshot = Snapshot::after(response.alerts, &matchers, state.baseline());
        let first = state.view().snapshot.is_none();
        let drops = state
            .baseline()
            .is_some_and(|b| snapshot.drops_firing_of(b));
        if !(first || drops || state.view().settling) {
            return (snapshot, false);
        }
        if !sources.settling(tuning).await {
            if state.view().settling {
                tracing::info!(
                    "Prometheus has settled after its start; its answers are taken as they come again"
                );
            }
            self.metrics.settling.set(0);
            return (snapshot, false);
        }
        self.metrics.settling.set(1);
        if !state.view().settling {
            tracing::warn!(
                "Prometheus started lately and may not show every firing alert yet; keeping the alerts that fired before, and no verdict turns healthy until each rule group has run three times"
            );
        }
        match state.baseline() {
            Some(baseline) => (snapshot.with_firing_of(baseline, &matchers), true),
            None => (snapshot, true),
        }
    }

    /// Records a successful poll's snapshot and hands it to the state.
    fn on_success(
        &self,
        (snapshot, settling): (Snapshot, bool),
        state: &mut PollState,
    ) -> (Outcome, Step) {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.metrics.last_success.set(wall.as_secs_f64());
        self.set_alert_gauges(&snapshot);
        let firing = snapshot.firing();

        let (outcome, step) = state.succeeded_settling(snapshot, now(), settling);
        if let Some(diff) = &step.diff {
            self.count_changes(diff.added, diff.removed);
            if !diff.is_empty() {
                tracing::info!(
                    added = diff.added,
                    removed = diff.removed,
                    affected = ?diff.affected,
                    firing,
                    "firing alerts changed"
                );
            }
        }
        (outcome, step)
    }

    /// Carries out what the poll state decided: the view before the re-queue,
    /// so a re-queued reconcile reads the view that caused it.
    fn act(&self, step: Step) {
        match step.staleness {
            Some(Staleness::Began { cause }) => {
                self.metrics.stale.set(1);
                tracing::warn!(
                    last_error = cause,
                    "no successful poll within staleAfter; pipelines turn Unknown"
                );
            }
            Some(Staleness::Ended) => {
                tracing::info!("Prometheus answers again; flow health is known again");
                self.metrics.stale.set(0);
            }
            None => {}
        }
        if let Some(view) = step.publish {
            self.view.send_replace(view);
        }
        if !step.requeue.is_nobody() {
            // Fails only when the controller is gone, i.e. during shutdown.
            let _ = self.requeue.send(step.requeue);
        }
    }

    fn set_alert_gauges(&self, snapshot: &Snapshot) {
        for kind in Kind::ALL {
            for (state, count) in [
                ("firing", snapshot.firing_of(kind)),
                ("pending", snapshot.pending_of(kind)),
            ] {
                self.metrics
                    .active_alerts
                    .get_or_create(&KindStateLabels {
                        kind: kind.as_str().to_owned(),
                        state: state.into(),
                    })
                    .set(count as i64);
            }
        }
    }

    fn count_changes(&self, added: usize, removed: usize) {
        for (change, n) in [("added", added), ("removed", removed)] {
            self.metrics
                .alert_changes
                .get_or_create(&ChangeLabels {
                    change: change.into(),
                })
                .inc_by(n as u64);
        }
    }
}

/// How the wait between two polls ended.
enum Waited {
    /// The next poll is due.
    Due,
    /// A new tuning came, to poll with at once.
    Retuned(Arc<Tuning>),
    /// `shutdown` was cancelled.
    ShutDown,
}

/// The adaptive delay moved to just after the next rule evaluation it
/// reaches; unchanged while no timing is known.
fn phase_locked(groups: &[phase::GroupTiming], delay: Duration) -> Duration {
    let now_ms = crate::polling::sources::unix_ms();
    let due = phase::due(now_ms, delay.as_millis() as i64, groups);
    match phase::next_poll(groups, due) {
        Some(at) => Duration::from_millis((at - now_ms).max(0) as u64),
        None => delay,
    }
}

/// A phase-locked wait never runs into staleness: where rules are evaluated
/// less often than `staleAfter`, waiting for the next evaluation would turn
/// every pipeline Unknown before the poll. Polling earlier only asks once
/// more. (Config refuses a `maxInterval` this close; the evaluation
/// interval is known only at run time.)
fn within_staleness(delay: Duration, tuning: &Tuning) -> Duration {
    let room = tuning.stale_after.saturating_sub(tuning.request_timeout);
    delay.min(room.mul_f64(0.9))
}

/// The poll state's clock: tokio's, the one the staleness sleep is measured
/// on, so a deadline the sleep reached has also been reached for the state.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Sleeps until the instant, or forever when there is none.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_locked_wait_stops_short_of_staleness() {
        // staleAfter 2m, requestTimeout 5s: room for 115s, 90% of it kept.
        let tuning = Tuning::defaults();
        let s = Duration::from_secs;
        for (wait, want) in [
            (s(1), s(1)),
            (s(30), s(30)),
            (s(103), s(103)),
            (s(300), Duration::from_millis(103_500)),
        ] {
            assert_eq!(within_staleness(wait, &tuning), want, "{wait:?}");
        }
    }
}
