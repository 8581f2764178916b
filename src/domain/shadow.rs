//! Shadow mode's comparison: our verdicts against the condition another
//! writer keeps (telemetry-manager's push-driven `TelemetryFlowHealthy`),
//! pipeline by pipeline, without writing anything.
//!
//! Two things are reported. Agreement: whether both say the same status and
//! reason now (messages differ by design). And transitions: when one side
//! moves to a new status or reason and the other follows to the same one,
//! who moved first and by how much; a move the other side never follows
//! before the first moves again is counted as seen by one side only. Both
//! sides are timed when this controller observes them (our verdict when the
//! poll that produced it is reconciled, theirs when the watch brings their
//! write), so both carry the same few milliseconds of delivery.
//!
//! Pure: the controller feeds observations, the metrics come out.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Which side moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// alert-poller's verdict.
    Poller,
    /// The condition as the other writer keeps it.
    Other,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Poller => "alert-poller",
            Side::Other => "other",
        }
    }

    fn other(self) -> Side {
        match self {
            Side::Poller => Side::Other,
            Side::Other => Side::Poller,
        }
    }
}

/// What a side says of a pipeline: status and reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Said {
    pub status: String,
    pub reason: String,
}

/// What an observation completed.
#[derive(Clone, Debug, PartialEq)]
pub enum Transition {
    /// Both sides made the same move; `first` made it `lead` earlier.
    Both { first: Side, lead: Duration },
    /// Only `side` made this move before moving on.
    Only { side: Side },
}

#[derive(Debug, Default)]
struct Pipeline {
    poller: Option<Said>,
    other: Option<Said>,
    /// A move of one side the other has not made yet.
    pending: Option<(Side, Said, Instant)>,
}

impl Pipeline {
    fn side(&mut self, side: Side) -> &mut Option<Said> {
        match side {
            Side::Poller => &mut self.poller,
            Side::Other => &mut self.other,
        }
    }
}

/// The comparison for the pipelines of one kind.
#[derive(Debug, Default)]
pub struct Comparison {
    pipelines: HashMap<String, Pipeline>,
}

impl Comparison {
    /// Records what `side` says of `pipeline` at `at`; `None` for the
    /// other side means it has no condition of the type yet. Returns the
    /// transitions this completes.
    pub fn observe(
        &mut self,
        pipeline: &str,
        side: Side,
        said: Option<Said>,
        at: Instant,
    ) -> Vec<Transition> {
        let p = self.pipelines.entry(pipeline.to_owned()).or_default();
        let previous = p.side(side).clone();
        if previous == said {
            return Vec::new();
        }
        *p.side(side) = said.clone();
        let (Some(_), Some(said)) = (previous, said) else {
            // A first sight (or a condition removed) is no move.
            return Vec::new();
        };
        let mut done = Vec::new();
        let other_says = p.side(side.other()).clone();
        match p.pending.take() {
            Some((first, to, since)) if first != side && to == said => {
                done.push(Transition::Both {
                    first,
                    lead: at.saturating_duration_since(since),
                });
                return done;
            }
            Some((first, _, _)) => done.push(Transition::Only { side: first }),
            None => {}
        }
        if other_says.as_ref() != Some(&said) {
            p.pending = Some((side, said, at));
        }
        done
    }

    /// Per pipeline, whether both sides say the same now (`None` while one
    /// has not been seen): (agreeing, disagreeing).
    pub fn agreement(&self) -> (usize, usize) {
        self.pipelines
            .values()
            .filter_map(|p| Some(p.poller.as_ref()? == p.other.as_ref()?))
            .fold(
                (0, 0),
                |(yes, no), agree| {
                    if agree { (yes + 1, no) } else { (yes, no + 1) }
                },
            )
    }

    /// Forgets a pipeline that was deleted.
    pub fn forget(&mut self, pipeline: &str) {
        self.pipelines.remove(pipeline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(status: &str, reason: &str) -> Option<Said> {
        Some(Said {
            status: status.into(),
            reason: reason.into(),
        })
    }

    #[test]
    fn transitions_are_paired_and_timed() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let ok = || said("True", "FlowHealthy");
        let bad = || said("False", "GatewayAllTelemetryDataDropped");
        let unknown = || said("Unknown", "GatewayProbingFailed");
        use Side::*;
        // (at ms, side, says, transitions completed)
        let script: Vec<(u64, Side, Option<Said>, Vec<Transition>)> = vec![
            (0, Poller, ok(), vec![]),
            (0, Other, ok(), vec![]),
            // We see the drop first, the manager 1.5 s later.
            (1_000, Poller, bad(), vec![]),
            (
                2_500,
                Other,
                bad(),
                vec![Transition::Both {
                    first: Poller,
                    lead: Duration::from_millis(1_500),
                }],
            ),
            // The manager sees the recovery first.
            (3_000, Other, ok(), vec![]),
            (
                3_040,
                Poller,
                ok(),
                vec![Transition::Both {
                    first: Other,
                    lead: Duration::from_millis(40),
                }],
            ),
            // A blip only we saw: it came and went before the manager moved.
            (4_000, Poller, bad(), vec![]),
            (4_900, Poller, ok(), vec![Transition::Only { side: Poller }]),
            // The manager moves somewhere we do not follow, then we move
            // elsewhere: its move was its own.
            (5_000, Other, unknown(), vec![]),
            (6_000, Poller, bad(), vec![Transition::Only { side: Other }]),
            // The same observation again is no move.
            (6_500, Poller, bad(), vec![]),
        ];
        let mut c = Comparison::default();
        for (i, (at, side, says, expected)) in script.into_iter().enumerate() {
            assert_eq!(c.observe("p", side, says, ms(at)), expected, "step {i}");
        }
        assert_eq!(c.agreement(), (0, 1), "ours False, theirs Unknown");
    }

    #[test]
    fn agreement_counts_pipelines_seen_by_both() {
        let now = Instant::now();
        let mut c = Comparison::default();
        for (p, ours, theirs) in [
            (
                "a",
                said("True", "FlowHealthy"),
                said("True", "FlowHealthy"),
            ),
            (
                "b",
                said("True", "FlowHealthy"),
                said("False", "GatewayThrottling"),
            ),
            ("c", said("True", "FlowHealthy"), None),
        ] {
            c.observe(p, Side::Poller, ours, now);
            c.observe(p, Side::Other, theirs, now);
        }
        assert_eq!(c.agreement(), (1, 1));
        c.forget("b");
        assert_eq!(c.agreement(), (1, 0));
    }
}
