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
//! - The `ALERTS` series gets no sample at the first evaluation (a rule
//!   writes it only once its state has been restored, which happens after
//!   that evaluation); pending samples follow from the second, up to two
//!   intervals after start. Samples from before the start carry no stale
//!   marker, and the poller's query drops them after two intervals.
//!
//! So for two intervals (plus an evaluation's time and a second of slack)
//! after a start, a firing alert may be missing from either source; after
//! that it is there, firing or pending, and an alert that fired before and
//! is pending now still counts as firing ([`crate::alerts::Snapshot::after`]).
//! While a source settles, the poller keeps the alerts that fired before
//! the start, and the controller writes no healthy verdict over an
//! unhealthy one. Pure.

use crate::phase::GroupTiming;

/// Without the groups' timing, settling lasts this long: two of
/// telemetry-manager's 30 s evaluations and a second.
pub const UNKNOWN_TIMING_SETTLE_MS: i64 = 61_000;

/// Until when (Unix ms) the answers of a server started at `start_ms` may
/// lack firing alerts, given its groups' timing.
pub fn settles_at(start_ms: i64, groups: &[GroupTiming]) -> i64 {
    let span = groups
        .iter()
        .map(|g| 2 * g.interval_ms.max(0) + g.evaluation_ms.max(0) + 1_000)
        .max()
        .unwrap_or(UNKNOWN_TIMING_SETTLE_MS);
    start_ms + span
}

/// Whether any source, started at one of `starts_ms`, is still settling at
/// `now_ms`; returns the latest moment one settles.
pub fn settling_until(starts_ms: &[i64], groups: &[GroupTiming], now_ms: i64) -> Option<i64> {
    starts_ms
        .iter()
        .map(|start| settles_at(*start, groups))
        .filter(|until| *until > now_ms)
        .max()
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
    fn a_source_settles_two_intervals_after_its_start() {
        let manager = [group(30_000, 150)];
        let fast = [group(1_000, 5)];
        // (starts, groups, now, expected)
        let cases: [(&[i64], &[GroupTiming], i64, Option<i64>); 6] = [
            (&[100_000], &manager, 120_000, Some(161_150)),
            (&[100_000], &manager, 161_150, None),
            (&[100_000], &fast, 102_000, Some(103_005)),
            (&[100_000], &[], 150_000, Some(161_000)),
            // The latest start of several sources counts.
            (&[50_000, 100_000], &fast, 101_000, Some(103_005)),
            (&[], &manager, 0, None),
        ];
        for (starts, groups, now, expected) in cases {
            assert_eq!(
                settling_until(starts, groups, now),
                expected,
                "{starts:?} at {now}"
            );
        }
    }
}
