//! A Prometheus that has just started does not yet say everything it knows
//! about firing alerts, so an alert missing from its answer is no resolve.
//!
//! What each source shows after a start (read in Prometheus'
//! `rules/alerting.go` and `rules/manager.go`, measured by
//! `tests/restart_prometheus.rs` on 2.42 and 3.x):
//! - `/api/v1/alerts` lists nothing until each group's first evaluation,
//!   which comes at the group's next slot, up to one interval after start.
//!   From then on an alert whose rule has a `for` is pending, its clock
//!   started anew (a `for` under the 10-minute grace period is not
//!   restored), and fires only once that `for` has passed again.
//! - The `ALERTS` series gets no sample at the first two evaluations: a
//!   rule writes it only once its state has been restored, and a group
//!   restores only after its second evaluation ("we might not have enough
//!   data in the index" at the first). Samples follow from the third, up
//!   to three intervals after start (measured on 2.42 at 1 s: none at
//!   start+0.8 s and +1.8 s, firing at +2.8 s). Samples from before the
//!   start carry no stale marker, and the poller's query drops them after
//!   two intervals.
//!
//! So a source has settled once every group holding our alerts has
//! completed three evaluations since the start. Prometheus' own `/metrics`
//! counts them (`prometheus_rule_group_iterations_total`, less the missed
//! ones), but counts an iteration when it begins: a count of three may be
//! the third evaluation still running, before its `ALERTS` samples exist,
//! so four are asked for. Where `/metrics` cannot be read, the timing of
//! `/api/v1/rules` stands in: the last evaluation began at least three
//! intervals after the process started. The first evaluation comes at the
//! group's slot after the rule manager has started, which can be more than
//! an interval after the process (a long WAL replay), so this bound holds
//! only for a start that takes less than two intervals. From then on every
//! alert that fires is there, firing or pending, and one that fired before
//! and is pending now still counts as firing
//! ([`crate::domain::alerts::Snapshot::after`]). While a source settles, the
//! poller keeps the alerts that fired before the start, and the controller
//! writes no healthy verdict over an unhealthy one. Pure.

use std::collections::BTreeMap;

use crate::prometheus::GroupTiming;

/// Where the groups' timing cannot be read, a source settles this long
/// after its start: three of telemetry-manager's 30 s evaluations and a
/// second.
pub const UNKNOWN_TIMING_SETTLE_MS: i64 = 91_000;

/// Evaluations a group must have begun since the start, by Prometheus'
/// count, before the third has surely ended.
pub const SETTLED_EVALUATIONS: u64 = 4;

/// What a source says of its rule groups just after a start.
#[derive(Clone, Copy, Debug, Default)]
pub struct SinceStart<'a> {
    /// The groups' timing from `/api/v1/rules` (`None`: not readable).
    pub groups: Option<&'a [GroupTiming]>,
    /// Evaluations per group from `/metrics` (`None`: not readable).
    pub evaluations: Option<&'a BTreeMap<u64, u64>>,
}

/// Whether a source started at `start_ms` may still lack firing alerts at
/// `now_ms`.
pub fn settling(start_ms: i64, seen: SinceStart<'_>, now_ms: i64) -> bool {
    let groups = match seen.groups {
        None | Some([]) => return now_ms < start_ms + UNKNOWN_TIMING_SETTLE_MS,
        Some(groups) => groups,
    };
    let counted = seen
        .evaluations
        .filter(|e| groups.iter().all(|g| e.contains_key(&g.group)));
    match counted {
        Some(evaluations) => groups
            .iter()
            .any(|g| evaluations[&g.group] < SETTLED_EVALUATIONS),
        None => groups
            .iter()
            .any(|g| g.last_evaluation_ms < start_ms + 3 * g.interval_ms.max(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(interval_ms: i64, evaluation_ms: i64) -> GroupTiming {
        GroupTiming {
            group: 1,
            last_evaluation_ms: 0,
            interval_ms,
            evaluation_ms,
            checked: false,
        }
    }

    #[test]
    fn without_counts_a_source_settles_three_intervals_after_its_start() {
        let start = 100_000;
        let at = |last: i64| GroupTiming {
            last_evaluation_ms: last,
            ..group(30_000, 150)
        };
        let timing = |groups| SinceStart {
            groups,
            evaluations: None,
        };
        // (groups as read, now, settling)
        let cases: [(Option<&[GroupTiming]>, i64, bool); 7] = [
            // Evaluated before the start only, or up to three intervals after.
            (Some(&[at(95_000)]), 101_000, true),
            (Some(&[at(140_000)]), 141_000, true),
            (Some(&[at(170_000)]), 171_000, true),
            // The last began three intervals after the start.
            (Some(&[at(190_000)]), 191_000, false),
            // Every group must have.
            (Some(&[at(190_000), at(170_000)]), 191_000, true),
            // No timing: 91 s after the start.
            (None, 190_000, true),
            (Some(&[]), 191_000, false),
        ];
        for (groups, now, expected) in cases {
            assert_eq!(
                settling(start, timing(groups), now),
                expected,
                "{groups:?} at {now}"
            );
        }
    }

    #[test]
    fn with_counts_a_source_settles_once_every_group_began_four_evaluations() {
        let (start, now) = (100_000, 400_000);
        // Both began their last evaluation long after the start: the timing
        // alone would call them settled, the counts decide.
        let a = GroupTiming {
            group: 1,
            last_evaluation_ms: 390_000,
            ..group(30_000, 150)
        };
        let b = GroupTiming { group: 2, ..a };
        let groups = [a, b];
        let counts = |pairs: &[(u64, u64)]| pairs.iter().copied().collect::<BTreeMap<u64, u64>>();
        for (evaluations, expected) in [
            (counts(&[(1, 4), (2, 4)]), false),
            (counts(&[(1, 9), (2, 3)]), true),
            (counts(&[(1, 0), (2, 7)]), true),
            // A group the counts do not name: the timing stands in.
            (counts(&[(1, 9)]), false),
        ] {
            let seen = SinceStart {
                groups: Some(&groups),
                evaluations: Some(&evaluations),
            };
            assert_eq!(settling(start, seen, now), expected, "{evaluations:?}");
        }
        // A slow start: the second evaluation began three intervals after
        // the process started, yet ALERTS has no sample before the third.
        let late = GroupTiming {
            group: 1,
            last_evaluation_ms: 190_000,
            ..group(30_000, 150)
        };
        let seen = SinceStart {
            groups: Some(&[late]),
            evaluations: Some(&counts(&[(1, 2)])),
        };
        assert!(settling(start, seen, 191_000));
    }
}
