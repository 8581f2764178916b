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
mod tests {
    use super::*;
    use crate::domain::alerts::{
        ALERTNAME_LABEL, ActiveAlert, AlertState, PIPELINE_NAME_LABEL, Targets,
    };

    const STALE_AFTER: u64 = 120;

    /// The poll tuning of a full tuning with these three settings, built the
    /// way the poller builds it.
    fn poll_tuning(prefix: &str, condition_type: &str, stale_after: u64) -> PollTuning {
        PollTuning::from(&crate::config::Tuning {
            alert_name_prefix: prefix.into(),
            condition_type: condition_type.into(),
            stale_after: Duration::from_secs(stale_after),
            ..crate::config::Tuning::defaults()
        })
    }

    fn defaults() -> PollTuning {
        poll_tuning("Metric", "TelemetryFlowHealthy", STALE_AFTER)
    }

    /// What happens, at a second of the virtual clock.
    #[derive(Clone, Copy, Debug)]
    enum Event {
        /// A poll found these firing alerts: `Name/pipeline`, or `Name` for
        /// an alert about every pipeline.
        Ok(&'static [&'static str]),
        /// A poll failed with this class, and maybe a Retry-After in seconds.
        Fail(&'static str, Option<u64>),
        Deadline,
        Retune {
            prefix: &'static str,
            condition_type: &'static str,
            stale_after: u64,
        },
    }
    use Event::*;

    fn retune(prefix: &'static str, condition_type: &'static str) -> Event {
        Retune {
            prefix,
            condition_type,
            stale_after: STALE_AFTER,
        }
    }

    fn snapshot(alerts: &[&str], matchers: &[Matcher]) -> Snapshot {
        let alerts = alerts.iter().map(|alert| {
            let mut labels = std::collections::BTreeMap::new();
            let (name, pipeline) = match alert.split_once('/') {
                Some((name, pipeline)) => (name, Some(pipeline)),
                None => (*alert, None),
            };
            labels.insert(ALERTNAME_LABEL.to_owned(), name.to_owned());
            if let Some(pipeline) = pipeline {
                labels.insert(PIPELINE_NAME_LABEL.to_owned(), pipeline.to_owned());
            }
            ActiveAlert {
                labels: (&labels).into(),
                state: AlertState::Firing,
            }
        });
        Snapshot::from_alerts(alerts, matchers)
    }

    /// One step as a line of words, so that a scenario reads as a table:
    /// re-queue, schedule outcome, published view, diff, staleness change,
    /// next deadline (seconds on the virtual clock). `-` is "none".
    fn render(outcome: Option<Outcome>, step: &Step, t0: Instant) -> String {
        // `all` is every pipeline of every kind; otherwise `kind:targets`.
        let requeue = if step.requeue.is_nobody() {
            "nobody".to_owned()
        } else if step.requeue == Affected::everyone() {
            "all".to_owned()
        } else {
            let kinds: Vec<String> = step
                .requeue
                .iter()
                .map(|(kind, targets)| match targets {
                    Targets::All => format!("{kind}:all"),
                    Targets::Pipelines(names) => {
                        format!(
                            "{kind}:{}",
                            names.iter().cloned().collect::<Vec<_>>().join(",")
                        )
                    }
                })
                .collect();
            kinds.join(";")
        };
        let outcome = match outcome {
            None => "-".to_owned(),
            Some(Outcome::Changed) => "changed".to_owned(),
            Some(Outcome::Unchanged) => "unchanged".to_owned(),
            Some(Outcome::Failed { retry_after: None }) => "failed".to_owned(),
            Some(Outcome::Failed {
                retry_after: Some(d),
            }) => format!("failed({}s)", d.as_secs()),
        };
        let view = match step.publish.as_deref().map(PollView::knowledge) {
            None => "-".to_owned(),
            Some(Knowledge::Nothing) => "nothing".to_owned(),
            Some(Knowledge::Fresh(s)) => format!("fresh:{}", s.firing()),
            Some(Knowledge::Stale { cause }) => format!("stale:{cause}"),
        };
        let diff = match &step.diff {
            None => "-".to_owned(),
            Some(d) => format!("+{}-{}", d.added, d.removed),
        };
        let staleness = match step.staleness {
            None => "-",
            Some(Staleness::Began { .. }) => "began",
            Some(Staleness::Ended) => "ended",
        };
        let stale_at = match step.stale_at {
            None => "-".to_owned(),
            Some(at) => at.duration_since(t0).as_secs().to_string(),
        };
        format!("{requeue} {outcome} {view} {diff} {staleness} {stale_at}")
    }

    /// Plays `script` from a start at second 0 and compares each step with
    /// its expected line (compared word by word, so columns may be aligned).
    fn play(name: &str, script: &[(u64, Event, &str)]) {
        let t0 = Instant::now();
        let mut tuning = defaults();
        let mut state = PollState::new(tuning.clone(), t0);
        assert_eq!(
            state.stale_at(),
            Some(t0 + Duration::from_secs(STALE_AFTER)),
            "{name}: staleness counts from the start"
        );
        for (i, &(at, event, expected)) in script.iter().enumerate() {
            let now = t0 + Duration::from_secs(at);
            let (outcome, step) = match event {
                Ok(alerts) => {
                    let (o, s) = state.succeeded(snapshot(alerts, &tuning.matchers), now);
                    (Some(o), s)
                }
                Fail(class, retry_after) => {
                    let (o, s) = state.failed(class, retry_after.map(Duration::from_secs));
                    (Some(o), s)
                }
                Deadline => (None, state.deadline_reached(now)),
                Retune {
                    prefix,
                    condition_type,
                    stale_after,
                } => {
                    tuning = poll_tuning(prefix, condition_type, stale_after);
                    (None, state.retuned(tuning.clone()))
                }
            };
            let got = render(outcome, &step, t0);
            assert_eq!(
                got.split_whitespace().collect::<Vec<_>>(),
                expected.split_whitespace().collect::<Vec<_>>(),
                "{name}, step {i} ({event:?} at {at}s)"
            );
            assert_eq!(step.stale_at, state.stale_at(), "{name}, step {i}");
            if let Some(view) = &step.publish {
                assert!(Arc::ptr_eq(view, state.view()), "{name}, step {i}");
            }
        }
    }

    /// A name, and what happens at which second with what should follow.
    type Scenario<'a> = (&'a str, &'a [(u64, Event, &'a str)]);

    // Unformatted so the scenarios stay aligned as tables.
    #[rustfmt::skip]
    #[test]
    fn the_requeue_rules() {
        let scenarios: &[Scenario] = &[
            (
                "the first successful poll re-queues all, even when nothing fires",
                &[
                    // at  event                 requeue  outcome    view     diff  stale  deadline
                    (5, Ok(&[]),                 "all     changed    fresh:0  -     -      125"),
                ],
            ),
            (
                "identical polls re-queue nothing",
                &[
                    (0, Ok(&["MetricA/a", "MetricB"]), "all    changed    fresh:2  -     -  120"),
                    (10, Ok(&["MetricA/a", "MetricB"]), "nobody unchanged fresh:2  +0-0  -  130"),
                    (20, Ok(&["MetricA/a", "MetricB"]), "nobody unchanged fresh:2  +0-0  -  140"),
                ],
            ),
            (
                "a diff re-queues only the affected pipelines",
                &[
                    (0, Ok(&["MetricA/a"]),              "all    changed   fresh:1  -     -  120"),
                    (1, Ok(&["MetricA/a", "MetricA/b"]), "metric:b    changed   fresh:2  +1-0  -  121"),
                    (2, Ok(&["MetricA/b", "MetricB/c"]), "metric:a,c  changed   fresh:2  +1-1  -  122"),
                    // Alerts of no pipeline kind are not ours: no change.
                    (3, Ok(&["MetricA/b", "MetricB/c", "NoiseA/a"]),
                                                         "nobody      unchanged fresh:2  +0-0  -  123"),
                    // Another kind's alert re-queues only that kind's pipeline.
                    (4, Ok(&["MetricA/b", "MetricB/c", "TraceA/a"]),
                                                         "trace:a     changed   fresh:3  +1-0  -  124"),
                    // An alert about every pipeline re-queues all of its kind.
                    (5, Ok(&["MetricA/b", "MetricB/c", "MetricC", "TraceA/a"]),
                                                         "metric:all  changed   fresh:4  +1-0  -  125"),
                    (6, Ok(&["MetricA/b", "MetricB/c", "LogC"]),
                                                         "metric:all;trace:a;log:all changed fresh:3 +1-2 - 126"),
                ],
            ),
            (
                "failures before the first success: staleness counts from the start",
                &[
                    (0, Fail("connect", None),           "nobody failed        -       -  -      120"),
                    (40, Fail("retry_later", Some(7)),   "nobody failed(7s)    -       -  -      120"),
                    // An early wake-up does nothing.
                    (119, Deadline,                      "nobody -             -       -  -      120"),
                    (120, Deadline,                      "all    -  stale:retry_later  -  began  -"),
                    (130, Fail("timeout", None),         "nobody failed        -       -  -      -"),
                    (150, Ok(&["MetricA/a"]),            "all    changed       fresh:1 -  ended  270"),
                ],
            ),
            (
                "staleness fires once per outage, and again after a success",
                &[
                    (0, Ok(&["MetricA/a"]),      "all    changed  fresh:1        -  -      120"),
                    (60, Fail("connect", None),  "nobody failed   -              -  -      120"),
                    (120, Deadline,              "all    -        stale:connect  -  began  -"),
                    (200, Fail("connect", None), "nobody failed   -              -  -      -"),
                    (240, Deadline,              "nobody -        -              -  -      -"),
                    (500, Deadline,              "nobody -        -              -  -      -"),
                    (600, Ok(&[]),               "all    changed  fresh:0        +0-1  ended  720"),
                    (700, Fail("decode", None),  "nobody failed   -              -  -      720"),
                    (720, Deadline,              "all    -        stale:decode   -  began  -"),
                ],
            ),
            (
                "recovery after staleness re-queues all even when the alerts are the same",
                &[
                    (0, Ok(&["MetricA/a"]),      "all    changed    fresh:1        -     -      120"),
                    (10, Fail("connect", None),  "nobody failed     -              -     -      120"),
                    (120, Deadline,              "all    -          stale:connect  -     began  -"),
                    // Same alerts: the schedule hears "unchanged", reconciles all.
                    (130, Ok(&["MetricA/a"]),    "all    unchanged  fresh:1        +0-0  ended  250"),
                    (140, Ok(&["MetricA/a"]),    "nobody unchanged  fresh:1        +0-0  -      260"),
                ],
            ),
            (
                "a success moves the deadline; the old deadline wakes for nothing",
                &[
                    (0, Ok(&[]),                 "all    changed    fresh:0  -     -  120"),
                    (100, Ok(&[]),               "nobody unchanged  fresh:0  +0-0  -  220"),
                    (120, Deadline,              "nobody -          -        -     -  220"),
                ],
            ),
            (
                "a matcher change makes the next poll a fresh start",
                &[
                    (0, Ok(&["MetricA/a"]),      "all    changed    fresh:1  -     -  120"),
                    // Same identities under the new prefix, so a diff against
                    // the old snapshot would have found nothing.
                    (5, retune("Met", "TelemetryFlowHealthy"),
                                                 "nobody -          -        -     -  120"),
                    (6, Ok(&["MetricA/a"]),      "all    changed    fresh:1  -     -  126"),
                    (7, Ok(&["MetricA/a"]),      "nobody unchanged  fresh:1  +0-0  -  127"),
                ],
            ),
            (
                "a matcher change before a failure: the next success is still a fresh start",
                &[
                    (0, Ok(&["MetricA/a"]),      "all    changed    fresh:1  -     -  120"),
                    (5, retune("Met", "TelemetryFlowHealthy"),
                                                 "nobody -          -        -     -  120"),
                    (6, Fail("connect", None),   "nobody failed     -        -     -  120"),
                    (7, Ok(&["MetricA/a"]),      "all    changed    fresh:1  -     -  127"),
                ],
            ),
            (
                "a condition-type change re-queues all at once",
                &[
                    (0, Ok(&["MetricA/a"]),      "all    changed    fresh:1  -     -  120"),
                    (5, retune("Metric", "example.com/FlowHealthy"),
                                                 "all    -          -        -     -  120"),
                    // The diff is untouched by it.
                    (6, Ok(&["MetricA/a"]),      "nobody unchanged  fresh:1  +0-0  -  126"),
                    // Both at once: one re-queue of all, then a fresh start.
                    (7, retune("Met", "TelemetryFlowHealthy"),
                                                 "all    -          -        -     -  126"),
                    (8, Ok(&["MetricA/a"]),      "all    changed    fresh:1  -     -  128"),
                ],
            ),
            (
                "unchanged tuning is no event",
                &[
                    (0, Ok(&["MetricA/a"]),      "all    changed    fresh:1  -     -  120"),
                    (5, retune("Metric", "TelemetryFlowHealthy"),
                                                 "nobody -          -        -     -  120"),
                    (6, Ok(&["MetricA/a"]),      "nobody unchanged  fresh:1  +0-0  -  126"),
                ],
            ),
            (
                "a new staleAfter counts from the last success",
                &[
                    (0, Ok(&[]),                 "all    changed    fresh:0        -  -      120"),
                    (10, Retune { prefix: "Metric", condition_type: "TelemetryFlowHealthy", stale_after: 30 },
                                                 "nobody -          -              -  -      30"),
                    (30, Deadline,               "all    -          stale:none     -  began  -"),
                ],
            ),
            (
                "a condition-type change while stale re-queues all and stays stale",
                &[
                    (0, Fail("connect", None),   "nobody failed     -              -  -      120"),
                    (120, Deadline,              "all    -          stale:connect  -  began  -"),
                    (130, retune("Metric", "example.com/FlowHealthy"),
                                                 "all    -          -              -  -      -"),
                    (140, Deadline,              "nobody -          -              -  -      -"),
                ],
            ),
        ];
        for (name, script) in scenarios {
            play(name, script);
        }
    }

    /// Staleness marks the view rather than emptying it: the view still
    /// says what was seen last, though health ignores it while stale.
    #[test]
    fn a_stale_view_keeps_the_last_snapshot() {
        let t0 = Instant::now();
        let mut state = PollState::new(defaults(), t0);
        let (_, first) = state.succeeded(snapshot(&["MetricA/a"], &Matcher::all()), t0);
        let fresh = first.publish.expect("a success publishes");
        let stale = state
            .deadline_reached(t0 + Duration::from_secs(STALE_AFTER))
            .publish
            .expect("staleness publishes");
        assert_eq!(stale.snapshot, fresh.snapshot);
        assert!(matches!(
            stale.knowledge(),
            Knowledge::Stale { cause: "none" }
        ));
    }

    /// While a source settles after its start, the view says so; the poll
    /// that finds it settled re-queues everyone, so verdicts held back
    /// meanwhile are written.
    #[test]
    fn settling_is_published_and_its_end_requeues_everyone() {
        let t0 = Instant::now();
        let m = Matcher::all();
        let mut state = PollState::new(defaults(), t0);
        let (_, first) = state.succeeded(snapshot(&["MetricA/a"], &m), t0);
        assert!(!first.publish.unwrap().settling);
        let second = Duration::from_secs(1);
        let (_, held) = state.succeeded_settling(snapshot(&["MetricA/a"], &m), t0 + second, true);
        assert!(held.publish.unwrap().settling);
        assert!(held.requeue.is_nobody(), "the same alerts: nothing to do");
        let (_, settled) =
            state.succeeded_settling(snapshot(&["MetricA/a"], &m), t0 + 2 * second, false);
        assert!(!settled.publish.unwrap().settling);
        assert_eq!(settled.requeue, Affected::everyone());
    }

    #[test]
    fn before_any_poll_nothing_is_known() {
        let state = PollState::new(defaults(), Instant::now());
        assert!(matches!(state.view().knowledge(), Knowledge::Nothing));
        assert_eq!(**state.view(), PollView::default());
    }
}
