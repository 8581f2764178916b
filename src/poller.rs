//! The poll loop: the only place that talks to Prometheus.
//!
//! One task asks for the alerts, turns the answer into a [`Snapshot`], diffs it
//! against the previous one and sends the affected pipelines to the controller.
//! It publishes what it knows as a [`PollView`]; reconciles read that view and
//! never call Prometheus. Between polls it waits for the schedule's delay, a
//! tuning change (which polls at once) or the staleness deadline (which turns
//! every pipeline Unknown), whichever comes first.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::alerts::{Affected, Snapshot};
use crate::config::Tuning;
use crate::health::Knowledge;
use crate::metrics::{ChangeLabels, Metrics, StateLabels};
use crate::phase::{self, GroupTiming};
use crate::prometheus::{AlertsResponse, ClientSettings, PollError, PrometheusClient};
use crate::schedule::{Outcome, Schedule};

/// What the poller knows, as reconciles see it.
#[derive(Clone, Debug, Default)]
pub struct PollView {
    /// The last successful poll's alerts; `None` before the first success.
    pub snapshot: Option<Arc<Snapshot>>,
    /// Set while no poll has succeeded for longer than `staleAfter`: the class
    /// of the last error.
    pub stale_cause: Option<&'static str>,
}

impl PollView {
    pub fn knowledge(&self) -> Knowledge<'_> {
        match (&self.snapshot, self.stale_cause) {
            (_, Some(cause)) => Knowledge::Stale { cause },
            (Some(snapshot), None) => Knowledge::Fresh(snapshot),
            (None, None) => Knowledge::Nothing,
        }
    }
}

/// The poller's connections to the rest of the process.
pub struct Poller {
    pub tuning: watch::Receiver<Arc<Tuning>>,
    pub view: watch::Sender<Arc<PollView>>,
    pub requeue: mpsc::UnboundedSender<Affected>,
    pub metrics: Arc<Metrics>,
    /// Flipped to true once the first poll has finished, whatever its result.
    pub polled: watch::Sender<bool>,
    /// True once the tuning ConfigMap has been read (or found missing). The
    /// first poll waits for it, so it does not go to the flag's URL when the
    /// ConfigMap names another.
    pub tuning_loaded: watch::Receiver<bool>,
}

/// How long the first poll waits for the ConfigMap before using the flags.
const TUNING_WAIT: Duration = Duration::from_secs(10);

/// State carried from one poll to the next.
struct PollState {
    started: Instant,
    previous: Option<Arc<Snapshot>>,
    last_success: Option<Instant>,
    stale: bool,
    last_error: &'static str,
    /// Rule-group timing for phase locking, and when it was read.
    timings: Option<(Vec<GroupTiming>, Instant)>,
}

/// How long rule-group timing is trusted before it is read again.
const TIMING_MAX_AGE: Duration = Duration::from_secs(300);
/// How soon an unusable timing reading is tried again.
const TIMING_RETRY: Duration = Duration::from_secs(5);

impl Poller {
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
        let mut memory = PollState {
            started: Instant::now(),
            previous: None,
            last_success: None,
            stale: false,
            last_error: "none",
            timings: None,
        };
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
                    result = c.alerts() => Some(result),
                    () = shutdown.cancelled() => return,
                },
                None => None,
            };
            let outcome = match result {
                Some(Ok(response)) => {
                    self.metrics.record_poll("success", started.elapsed());
                    self.on_success(response, &tuning, &mut memory)
                }
                Some(Err(error)) => {
                    self.metrics.record_poll(error.kind(), started.elapsed());
                    self.on_failure(&error, &mut memory);
                    Outcome::Failed {
                        retry_after: error.retry_after(),
                    }
                }
                None => {
                    self.metrics.record_poll("client", started.elapsed());
                    memory.last_error = "client";
                    Outcome::Failed { retry_after: None }
                }
            };
            self.polled.send_replace(true);

            let mut delay = schedule.next(&tuning.intervals(), outcome, fastrand::f64());
            if tuning.phase_lock {
                match outcome {
                    // A failure may be a restart, which moves the phase.
                    Outcome::Failed { .. } => memory.timings = None,
                    _ => {
                        if let Some(c) = &client {
                            delay = tokio::select! {
                                locked = self.phase_locked(c, &tuning, delay, &mut memory) => locked,
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
                let stale_at = (!memory.stale).then(|| {
                    let since = memory.last_success.unwrap_or(memory.started);
                    tokio::time::Instant::from_std(since + tuning.stale_after)
                });
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep_until(next_poll) => break,
                    () = sleep_until_some(stale_at) => self.go_stale(&mut memory),
                    changed = self.tuning.changed(), if watching_tuning => {
                        if changed.is_err() {
                            watching_tuning = false;
                            continue;
                        }
                        let new = self.tuning.borrow_and_update().clone();
                        self.retune(&tuning, &new, &mut memory);
                        tuning = new;
                        break;
                    }
                }
            }
        }
    }

    fn on_success(
        &self,
        response: AlertsResponse,
        tuning: &Tuning,
        memory: &mut PollState,
    ) -> Outcome {
        self.metrics.response_bytes.inc_by(response.bytes as u64);
        let snapshot = Arc::new(Snapshot::from_alerts(response.alerts, &tuning.matcher()));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.metrics.last_success.set(now.as_secs_f64());
        self.set_alert_gauges(&snapshot);
        memory.last_success = Some(Instant::now());

        let (mut affected, changed) = match &memory.previous {
            None => (Affected::All, true),
            Some(previous) => {
                let diff = snapshot.diff(previous);
                self.count_changes(diff.added, diff.removed);
                if !diff.is_empty() {
                    tracing::info!(
                        added = diff.added,
                        removed = diff.removed,
                        affected = ?diff.affected,
                        firing = snapshot.firing(),
                        "firing alerts changed"
                    );
                }
                (diff.affected.clone(), !diff.is_empty())
            }
        };
        if memory.stale {
            tracing::info!("Prometheus answers again; flow health is known again");
            memory.stale = false;
            self.metrics.stale.set(0);
            affected = Affected::All;
        }
        memory.previous = Some(snapshot.clone());
        self.view.send_replace(Arc::new(PollView {
            snapshot: Some(snapshot),
            stale_cause: None,
        }));
        self.requeue(affected);
        if changed {
            Outcome::Changed
        } else {
            Outcome::Unchanged
        }
    }

    /// Moves the adaptive delay to just after the next rule evaluation it
    /// reaches. Reads `/api/v1/rules` when the timing is missing or old; on
    /// failure it keeps the adaptive delay, so phase locking can only help.
    async fn phase_locked(
        &self,
        client: &PrometheusClient,
        tuning: &Tuning,
        delay: Duration,
        memory: &mut PollState,
    ) -> Duration {
        let expired = |(groups, read): &(Vec<GroupTiming>, Instant)| {
            // An empty reading (no group evaluated yet, or an error) is retried soon.
            let max_age = if groups.is_empty() {
                TIMING_RETRY
            } else {
                TIMING_MAX_AGE
            };
            read.elapsed() > max_age
        };
        if memory.timings.as_ref().is_none_or(expired) {
            self.metrics.rule_timing_reads.inc();
            match client.rule_timings(&tuning.alert_name_prefix).await {
                Ok(groups) => {
                    tracing::debug!(groups = groups.len(), "rule evaluation timing read");
                    memory.timings = Some((groups, Instant::now()));
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot read rule evaluation timing; polling unlocked");
                    memory.timings = Some((Vec::new(), Instant::now()));
                }
            }
        }
        let groups = memory
            .timings
            .as_ref()
            .map(|(g, _)| g.as_slice())
            .unwrap_or_default();
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

    fn on_failure(&self, error: &PollError, memory: &mut PollState) {
        tracing::warn!(%error, kind = error.kind(), "poll of Prometheus alerts failed");
        memory.last_error = error.kind();
    }

    /// No successful poll within `staleAfter`: every pipeline turns Unknown.
    fn go_stale(&self, memory: &mut PollState) {
        memory.stale = true;
        self.metrics.stale.set(1);
        tracing::warn!(
            last_error = memory.last_error,
            "no successful poll within staleAfter; pipelines turn Unknown"
        );
        // Clone first: holding the borrow while sending would deadlock.
        let snapshot = self.view.borrow().snapshot.clone();
        self.view.send_replace(Arc::new(PollView {
            snapshot,
            stale_cause: Some(memory.last_error),
        }));
        self.requeue(Affected::All);
    }

    /// Applies new tuning between polls.
    fn retune(&self, old: &Tuning, new: &Tuning, memory: &mut PollState) {
        if old.matcher() != new.matcher() {
            // The old snapshot was cut with the old matcher: diffing against it
            // would be meaningless, so the next poll counts as a fresh start.
            memory.previous = None;
        }
        if old.condition_type != new.condition_type {
            self.requeue(Affected::All);
        }
    }

    fn requeue(&self, affected: Affected) {
        if affected.is_nobody() {
            return;
        }
        // Fails only when the controller is gone, i.e. during shutdown.
        let _ = self.requeue.send(affected);
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

/// Sleeps until the instant, or forever when there is none.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
