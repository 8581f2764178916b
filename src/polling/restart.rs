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
//! So a source has settled once every group holding our alerts has been
//! evaluated three times since the start: its last evaluation began at
//! least two intervals after the start (read from `/api/v1/rules`, whose
//! `lastEvaluation` a fresh group reports as the zero time). From then on
//! every alert that fires is there, firing or pending, and one that fired
//! before and is pending now still counts as firing
//! ([`crate::domain::alerts::Snapshot::after`]). While a source settles, the poller
//! keeps the alerts that fired before the start, and the controller writes
//! no healthy verdict over an unhealthy one. Pure.

use crate::prometheus::GroupTiming;

/// Where the groups' timing cannot be read, a source settles this long
/// after its start: three of telemetry-manager's 30 s evaluations and a
/// second.
pub const UNKNOWN_TIMING_SETTLE_MS: i64 = 91_000;

/// Whether a source started at `start_ms` may still lack firing alerts at
/// `now_ms`, given `groups` as read from it just now (`None`: not readable).
pub fn settling(start_ms: i64, groups: Option<&[GroupTiming]>, now_ms: i64) -> bool {
    match groups {
        None | Some([]) => now_ms < start_ms + UNKNOWN_TIMING_SETTLE_MS,
        Some(groups) => groups
            .iter()
            .any(|g| g.last_evaluation_ms < start_ms + 2 * g.interval_ms.max(0)),
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
        }
    }

    #[test]
    fn a_source_settles_once_every_group_ran_three_times_since_its_start() {
        let start = 100_000;
        let at = |last: i64| GroupTiming {
            last_evaluation_ms: last,
            ..group(30_000, 150)
        };
        // (groups as read, now, settling)
        let cases: [(Option<&[GroupTiming]>, i64, bool); 7] = [
            // Evaluated before the start only, or once or twice since.
            (Some(&[at(95_000)]), 101_000, true),
            (Some(&[at(110_000)]), 120_000, true),
            (Some(&[at(140_000)]), 141_000, true),
            // Three times: the last began two intervals after the start.
            (Some(&[at(170_000)]), 171_000, false),
            // Every group must have.
            (Some(&[at(170_000), at(140_000)]), 171_000, true),
            // No timing: 91 s after the start.
            (None, 190_000, true),
            (Some(&[]), 191_000, false),
        ];
        for (groups, now, expected) in cases {
            assert_eq!(
                settling(start, groups, now),
                expected,
                "{groups:?} at {now}"
            );
        }
    }
}
