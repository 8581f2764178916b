//! What the poller concludes from its polls. Pure: the poller hands in what
//! happened (a poll's snapshot, a failure's class, the staleness deadline, new
//! tuning) and the time; the state answers with what to re-queue, what to
//! publish and what the schedule should hear. Tests drive it with a virtual
//! clock.
//!
//! The rules, and why:
//! - The first successful poll re-queues every pipeline: before it, reconciles
//!   knew nothing and wrote nothing.
//! - Later polls are diffed against the previous one and re-queue only the
//!   pipelines whose firing alerts changed; an unchanged poll re-queues nobody,
//!   so a quiet Prometheus costs no status writes.
//! - Without a success for `staleAfter` (counted from the start until the first
//!   success), the view turns stale, so every pipeline turns Unknown, and
//!   everyone is re-queued. This happens once per outage: repeating it would
//!   only re-queue pipelines that already say Unknown.
//! - The first success after staleness re-queues everyone even when the alerts
//!   are the same, because every pipeline still says Unknown.
//! - A new matcher makes the next poll a fresh start: the previous snapshot was
//!   cut with the old matcher, so a diff against it would be meaningless.
//! - A new condition type re-queues everyone at once: every pipeline needs the
//!   new condition written, whatever the alerts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Mode, Tuning};
use crate::domain::alerts::{Affected, Diff, Matcher, Snapshot};
use crate::domain::health::Knowledge;
use crate::polling::schedule::Outcome;

/// What the poller knows, as reconciles see it. Reconciles read this instead
/// of asking Prometheus, so a burst of reconciles costs no requests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PollView {
    /// The last successful poll's alerts; `None` before the first success.
    pub snapshot: Option<Arc<Snapshot>>,
    /// Set while no poll has succeeded for longer than `staleAfter`: the class
    /// of the last error.
    pub stale_cause: Option<&'static str>,
    /// Set while a source that started lately may not show every firing
    /// alert yet (`restart`): no healthy verdict may then replace an
    /// unhealthy one.
    pub settling: bool,
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

/// The tunables the poll state reads; the poller copies them out of `Tuning`
/// so that a change of any other setting is no event here.
#[derive(Clone, Debug, PartialEq)]
pub struct PollTuning {
    pub matchers: Vec<Matcher>,
    pub condition_type: String,
    /// A change of mode re-queues everyone, as a new condition type does:
    /// each pipeline is then judged under the new mode at once.
    pub mode: Mode,
    pub stale_after: Duration,
}

impl From<&Tuning> for PollTuning {
    fn from(tuning: &Tuning) -> Self {
        Self {
            matchers: tuning.matchers(),
            condition_type: tuning.condition_type.clone(),
            mode: tuning.mode,
            stale_after: tuning.stale_after,
        }
    }
}

/// A change between fresh and stale, for the poller's log and gauge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Staleness {
    /// Pipelines turn Unknown; `cause` is the class of the last error.
    Began { cause: &'static str },
    /// A poll succeeded again.
    Ended,
}

/// The state does no I/O, so it answers each event with what the poller must
/// do; `#[must_use]` so that no answer is dropped unread.
#[derive(Clone, Debug, Default, PartialEq)]
#[must_use]
pub struct Step {
    /// Pipelines whose condition may now be different.
    pub requeue: Affected,
    /// The view to publish; `None` when reconciles would see nothing new.
    pub publish: Option<Arc<PollView>>,
    /// The comparison with the previous poll, for the change counters; `None`
    /// when there was nothing to compare with (first poll, new matcher) or the
    /// event was no successful poll.
    pub diff: Option<Diff>,
    /// Set when the view turned stale or fresh again.
    pub staleness: Option<Staleness>,
    /// When staleness is due after this event; `None` while already stale,
    /// since only a success can end that.
    pub stale_at: Option<Instant>,
}

/// What the rules must remember from one event to the next.
#[derive(Debug)]
pub struct PollState {
    tuning: PollTuning,
    /// Staleness counts from here until the first success, so a Prometheus
    /// that never answers still turns pipelines Unknown.
    started: Instant,
    last_success: Option<Instant>,
    /// What the next poll is compared with. Kept apart from the view's
    /// snapshot because a new matcher drops it while reconciles keep reading
    /// the old view until the next poll.
    baseline: Option<Arc<Snapshot>>,
    /// Named in the view when staleness begins.
    last_error: &'static str,
    view: Arc<PollView>,
}

impl PollState {
    /// `started` is when polling began.
    pub fn new(tuning: PollTuning, started: Instant) -> Self {
        Self {
            tuning,
            started,
            last_success: None,
            baseline: None,
            last_error: "none",
            view: Arc::default(),
        }
    }

    /// The view last published (a default one before any).
    pub fn view(&self) -> &Arc<PollView> {
        &self.view
    }

    /// When [`deadline_reached`](Self::deadline_reached) is due; `None` while
    /// stale.
    pub fn stale_at(&self) -> Option<Instant> {
        (!self.is_stale()).then(|| {
            let since = self.last_success.unwrap_or(self.started);
            since + self.tuning.stale_after
        })
    }

    fn is_stale(&self) -> bool {
        self.view.stale_cause.is_some()
    }

    /// What the next poll is compared with, if anything.
    pub fn baseline(&self) -> Option<&Snapshot> {
        self.baseline.as_deref()
    }

    /// A poll answered at `now`; `snapshot` must be cut with the current
    /// tuning's matcher.
    pub fn succeeded(&mut self, snapshot: Snapshot, now: Instant) -> (Outcome, Step) {
        self.succeeded_settling(snapshot, now, false)
    }

    /// [`PollState::succeeded`], from a source that may be `settling` after
    /// its start. Everyone is re-queued when settling ends, so a verdict
    /// held back meanwhile is written.
    pub fn succeeded_settling(
        &mut self,
        snapshot: Snapshot,
        now: Instant,
        settling: bool,
    ) -> (Outcome, Step) {
        let settled = self.view.settling && !settling;
        let snapshot = Arc::new(snapshot);
        self.last_success = Some(now);
        let (mut requeue, diff) = match &self.baseline {
            None => (Affected::everyone(), None),
            Some(baseline) => {
                let diff = snapshot.diff(baseline);
                (diff.affected.clone(), Some(diff))
            }
        };
        // The schedule hears about alert changes only: a recovery with the
        // same alerts is no reason to poll faster.
        let outcome = match &diff {
            Some(diff) if diff.is_empty() => Outcome::Unchanged,
            _ => Outcome::Changed,
        };
        let staleness = self.is_stale().then(|| {
            requeue = Affected::everyone();
            Staleness::Ended
        });
        if settled {
            requeue = Affected::everyone();
        }
        self.baseline = Some(snapshot.clone());
        self.view = Arc::new(PollView {
            snapshot: Some(snapshot),
            stale_cause: None,
            settling,
        });
        let step = Step {
            requeue,
            publish: Some(self.view.clone()),
            diff,
            staleness,
            stale_at: self.stale_at(),
        };
        (outcome, step)
    }

    /// A poll failed with an error of class `class` (or no poll could be
    /// sent); `retry_after` is what Prometheus asked for. Reconciles see
    /// nothing of it until staleness is due: one failure among successes says
    /// nothing about flow health.
    pub fn failed(
        &mut self,
        class: &'static str,
        retry_after: Option<Duration>,
    ) -> (Outcome, Step) {
        self.last_error = class;
        let step = Step {
            stale_at: self.stale_at(),
            ..Step::default()
        };
        (Outcome::Failed { retry_after }, step)
    }

    /// The staleness deadline came at `now`. A wake-up before the deadline
    /// (the deadline moved meanwhile) or while already stale changes nothing.
    pub fn deadline_reached(&mut self, now: Instant) -> Step {
        if self.stale_at().is_none_or(|at| now < at) {
            return self.nothing();
        }
        // The last snapshot stays in the view: staleness hides it from health
        // rather than forgetting it.
        self.view = Arc::new(PollView {
            snapshot: self.view.snapshot.clone(),
            stale_cause: Some(self.last_error),
            settling: self.view.settling,
        });
        Step {
            requeue: Affected::everyone(),
            publish: Some(self.view.clone()),
            staleness: Some(Staleness::Began {
                cause: self.last_error,
            }),
            stale_at: None,
            diff: None,
        }
    }

    /// New tuning applies between polls.
    pub fn retuned(&mut self, tuning: PollTuning) -> Step {
        if tuning.matchers != self.tuning.matchers {
            self.baseline = None;
        }
        let requeue = if tuning.condition_type != self.tuning.condition_type
            || tuning.mode != self.tuning.mode
        {
            Affected::everyone()
        } else {
            Affected::nobody()
        };
        self.tuning = tuning;
        Step {
            requeue,
            ..self.nothing()
        }
    }

    fn nothing(&self) -> Step {
        Step {
            stale_at: self.stale_at(),
            ..Step::default()
        }
    }
}

#[cfg(test)]
mod tests;
