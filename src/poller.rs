//! The poll loop: the only place that talks to Prometheus.
//!
//! One task asks for the alerts, turns the answer into a [`Snapshot`] and hands
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

use crate::alerts::{Affected, Snapshot};
use crate::config::Tuning;
use crate::metrics::{ChangeLabels, Metrics, StateLabels};
use crate::phase::{self, GroupTiming};
use crate::poll_state::{PollState, PollTuning, Staleness, Step};
use crate::prometheus::{
    AlertSource, AlertsResponse, ClientSettings, PrometheusClient, series_max_age,
};
use crate::schedule::{Outcome, Schedule};

// The view is the poll state's output; this path is the one its readers know.
pub use crate::poll_state::PollView;

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

/// How long rule-group timing is trusted before it is read again.
const TIMING_MAX_AGE: Duration = Duration::from_secs(300);
/// How soon an unusable timing reading is tried again.
const TIMING_RETRY: Duration = Duration::from_secs(5);

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
        };
        let outputs = PollerOutputs {
            view: view_rx,
            requeues,
            polled: polled_rx,
        };
        (poller, outputs)
    }

    /// Polls until `shutdown` is cancelled.
    pub async fn run(mut self, shutdown: CancellationToken) {
        tokio::select! {
            () = shutdown.cancelled() => return,
            loaded = tokio::time::timeout(TUNING_WAIT, self.tuning_loaded.wait_for(|l| *l)) => {
                if loaded.is_err() {
                    tracing::warn!("tuning ConfigMap not read within {TUNING_WAIT:?}; polling with the flags' tuning");
                }
            }
        }
        let mut tuning = self.tuning.borrow_and_update().clone();
        let mut schedule = Schedule::new(&tuning.intervals());
        let mut client: Option<PrometheusClient> = None;
        let mut watching_tuning = true;
        let mut state = PollState::new(PollTuning::from(&*tuning), now());
        // Rule-group timing for phase locking and the query's sample age,
        // and when it was read.
        let mut timings: Option<(Vec<GroupTiming>, Instant)> = None;
        // A failed poll may be a restart, which moves the phase and may
        // change the rules: the timing is read afresh once Prometheus
        // answers again. Not before: while it is down that would double the
        // requests, and the old intervals still bound the query's first
        // answer after the restart.
        let mut timings_outdated = false;
        loop {
            let settings = ClientSettings::from(&*tuning);
            if client.as_ref().map(PrometheusClient::settings) != Some(&settings) {
                client = match PrometheusClient::new(settings) {
                    Ok(c) => {
                        tracing::info!(url = c.url(), "polling Prometheus");
                        Some(c)
                    }
                    Err(error) => {
                        tracing::error!(%error, "cannot build the Prometheus client");
                        None
                    }
                };
            }

            let started = Instant::now();
            let result = match &client {
                Some(c) => tokio::select! {
                    result = async {
                        let max_age = self.query_max_age(c, &tuning, &mut timings).await;
                        c.alerts_of_ours(max_age).await
                    } => Some(result),
                    () = shutdown.cancelled() => return,
                },
                None => None,
            };
            let (outcome, step) = match result {
                Some(Ok(response)) => {
                    self.metrics.record_poll("success", started.elapsed());
                    if std::mem::take(&mut timings_outdated) {
                        timings = None;
                    }
                    self.on_success(response, &tuning, &mut state)
                }
                Some(Err(error)) => {
                    self.metrics.record_poll(error.kind(), started.elapsed());
                    tracing::warn!(%error, kind = error.kind(), "poll of Prometheus alerts failed");
                    state.failed(error.kind(), error.retry_after())
                }
                None => {
                    self.metrics.record_poll("client", started.elapsed());
                    state.failed("client", None)
                }
            };
            self.act(step);
            self.polled.send_replace(true);

            let mut delay = schedule.next(&tuning.intervals(), outcome, fastrand::f64());
            if matches!(outcome, Outcome::Failed { .. }) {
                timings_outdated = true;
            }
            if tuning.phase_lock {
                match outcome {
                    Outcome::Failed { .. } => {}
                    _ => {
                        if let Some(c) = &client {
                            delay = tokio::select! {
                                locked = self.phase_locked(c, &tuning, delay, &mut timings) => locked,
                                () = shutdown.cancelled() => return,
                            };
                        }
                    }
                }
            }
            self.metrics.poll_interval.set(delay.as_secs_f64());
            tracing::debug!(?delay, ?outcome, "next poll scheduled");
            let next_poll = tokio::time::Instant::now() + delay;

            // Wait for the next poll, waking early for staleness or new tuning.
            loop {
                let stale_at = state.stale_at().map(tokio::time::Instant::from_std);
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep_until(next_poll) => break,
                    () = sleep_until_some(stale_at) => self.act(state.deadline_reached(now())),
                    changed = self.tuning.changed(), if watching_tuning => {
                        if changed.is_err() {
                            watching_tuning = false;
                            continue;
                        }
                        let new = self.tuning.borrow_and_update().clone();
                        self.act(state.retuned(PollTuning::from(&*new)));
                        tuning = new;
                        break;
                    }
                }
            }
        }
    }

    /// Records a successful poll's response and hands its snapshot to the state.
    fn on_success(
        &self,
        response: AlertsResponse,
        tuning: &Tuning,
        state: &mut PollState,
    ) -> (Outcome, Step) {
        self.metrics.response_bytes.inc_by(response.bytes as u64);
        let snapshot = Snapshot::from_alerts(response.alerts, &tuning.matchers());
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.metrics.last_success.set(wall.as_secs_f64());
        self.set_alert_gauges(&snapshot);
        let firing = snapshot.firing();

        let (outcome, step) = state.succeeded(snapshot, now());
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

    /// How old an `ALERTS` sample may be when the alerts come from a query;
    /// `None` for `/api/v1/alerts`, or while the rule timing is unknown.
    async fn query_max_age(
        &self,
        client: &PrometheusClient,
        tuning: &Tuning,
        timings: &mut Option<(Vec<GroupTiming>, Instant)>,
    ) -> Option<Duration> {
        if tuning.alert_source != AlertSource::Query {
            return None;
        }
        series_max_age(self.rule_timings(client, tuning, timings).await)
    }

    /// Moves the adaptive delay to just after the next rule evaluation it
    /// reaches. On a failure to read the timing it keeps the adaptive
    /// delay, so phase locking can only help.
    async fn phase_locked(
        &self,
        client: &PrometheusClient,
        tuning: &Tuning,
        delay: Duration,
        timings: &mut Option<(Vec<GroupTiming>, Instant)>,
    ) -> Duration {
        let groups = self.rule_timings(client, tuning, timings).await;
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as i64;
        let due = phase::due(now_ms, delay.as_millis() as i64, groups);
        match phase::next_poll(groups, due) {
            Some(at) => Duration::from_millis((at - now_ms).max(0) as u64),
            None => delay,
        }
    }

    /// The rule groups' timing, read from `/api/v1/rules` when missing or
    /// old (every 5 minutes; soon again after an empty or failed reading).
    async fn rule_timings<'t>(
        &self,
        client: &PrometheusClient,
        tuning: &Tuning,
        timings: &'t mut Option<(Vec<GroupTiming>, Instant)>,
    ) -> &'t [GroupTiming] {
        let expired = |(groups, read): &(Vec<GroupTiming>, Instant)| {
            // An empty reading (no group evaluated yet, or an error) is retried soon.
            let max_age = if groups.is_empty() {
                TIMING_RETRY
            } else {
                TIMING_MAX_AGE
            };
            read.elapsed() > max_age
        };
        if timings.as_ref().is_none_or(expired) {
            self.metrics.rule_timing_reads.inc();
            match client.rule_timings(&tuning.alert_name_prefix).await {
                Ok(groups) => {
                    tracing::debug!(groups = groups.len(), "rule evaluation timing read");
                    *timings = Some((groups, Instant::now()));
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot read rule evaluation timing; polling unlocked");
                    *timings = Some((Vec::new(), Instant::now()));
                }
            }
        }
        timings
            .as_ref()
            .map(|(g, _)| g.as_slice())
            .unwrap_or_default()
    }

    fn set_alert_gauges(&self, snapshot: &Snapshot) {
        for (state, count) in [
            ("firing", snapshot.firing()),
            ("pending", snapshot.pending()),
        ] {
            self.metrics
                .active_alerts
                .get_or_create(&StateLabels {
                    state: state.into(),
                })
                .set(count as i64);
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
