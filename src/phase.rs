//! Phase-locked polling: poll just after Prometheus evaluates the alert rules.
//!
//! Alert state only changes when a rule group is evaluated, and groups are
//! evaluated at fixed slots: `lastEvaluation + k × interval`. A poll at a
//! random phase sees a change on average half an interval late; a poll placed
//! just after an evaluation has finished sees it at once. This module is pure:
//! given the groups' timing (from `/api/v1/rules`) and the moment the adaptive
//! schedule would poll, it names the moment to poll instead. The adaptive
//! schedule still decides how many ticks to skip while nothing changes.

/// When one rule group is evaluated, in Unix milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupTiming {
    /// Start of the last evaluation.
    pub last_evaluation_ms: i64,
    /// Time between evaluations.
    pub interval_ms: i64,
    /// How long the last evaluation took.
    pub evaluation_ms: i64,
}

/// Extra wait after an evaluation's end, so the poll does not race it.
pub const MARGIN_MS: i64 = 25;

/// The first moment at or after `due_ms` that lies just after the end of an
/// evaluation of one of the groups; `None` when no group has a usable interval.
pub fn next_poll(groups: &[GroupTiming], due_ms: i64) -> Option<i64> {
    groups
        .iter()
        .filter(|g| g.interval_ms > 0)
        .map(|g| {
            let first_end = g.last_evaluation_ms + g.evaluation_ms.max(0) + MARGIN_MS;
            let ticks = (due_ms - first_end).div_euclid(g.interval_ms);
            let mut at = first_end + ticks * g.interval_ms;
            if at < due_ms {
                at += g.interval_ms;
            }
            at
        })
        .min()
}

/// The moment the adaptive schedule's `delay_ms` (from `now_ms`) asks for,
/// moved earlier by half a tick at most, so that a delay of exactly one
/// interval lands on the next evaluation instead of skipping it.
pub fn due(now_ms: i64, delay_ms: i64, groups: &[GroupTiming]) -> i64 {
    let shortest = groups
        .iter()
        .map(|g| g.interval_ms)
        .filter(|i| *i > 0)
        .min()
        .unwrap_or(0);
    now_ms + delay_ms - delay_ms.min(shortest) / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: GroupTiming = GroupTiming {
        last_evaluation_ms: 10_000,
        interval_ms: 1_000,
        evaluation_ms: 5,
    };

    #[test]
    fn polls_land_just_after_an_evaluation() {
        // Evaluations end at ...,10_005, 11_005, ...; polls go 25 ms later.
        assert_eq!(next_poll(&[G], 10_500), Some(11_030));
        assert_eq!(next_poll(&[G], 11_030), Some(11_030));
        assert_eq!(next_poll(&[G], 11_031), Some(12_030));
        // Long after the reading, the slots still line up.
        assert_eq!(next_poll(&[G], 1_000_000), Some(1_000_030));
        // Before the reading too.
        assert_eq!(next_poll(&[G], 9_100), Some(9_030 + 1_000));
    }

    #[test]
    fn the_earliest_group_wins() {
        let slow = GroupTiming {
            last_evaluation_ms: 10_400,
            interval_ms: 30_000,
            evaluation_ms: 100,
        };
        // The slow group ends at 10_525, before the fast one at 11_030.
        assert_eq!(next_poll(&[slow, G], 10_100), Some(10_525));
        assert_eq!(next_poll(&[], 10_100), None);
        let broken = GroupTiming {
            interval_ms: 0,
            ..G
        };
        assert_eq!(next_poll(&[broken], 10_100), None);
    }

    #[test]
    fn a_one_interval_delay_takes_the_next_tick_not_the_one_after() {
        // Just polled after the evaluation ending at 11_005.
        let now = 11_080;
        let at = next_poll(&[G], due(now, 1_000, &[G])).unwrap();
        assert_eq!(at, 12_030);
        // A 15 s delay skips ticks, as the adaptive schedule asks.
        let at = next_poll(&[G], due(now, 15_000, &[G])).unwrap();
        assert_eq!(at, 26_030);
    }

    /// A virtual run: with a 30 s evaluation interval and a stable Prometheus,
    /// phase-locked polling makes at most one request per interval, each
    /// 25 ms after an evaluation ends.
    #[test]
    fn at_most_one_poll_per_interval_on_a_virtual_clock() {
        let g = GroupTiming {
            last_evaluation_ms: 0,
            interval_ms: 30_000,
            evaluation_ms: 40,
        };
        let mut now = 0;
        let mut polls = Vec::new();
        for delay in [
            1_000, 1_500, 2_250, 3_375, 5_062, 7_593, 11_390, 15_000, 15_000,
        ] {
            now = next_poll(&[g], due(now, delay, &[g])).unwrap();
            polls.push(now);
        }
        for pair in polls.windows(2) {
            assert!(pair[1] - pair[0] >= 30_000, "{polls:?}");
        }
        assert!(polls.iter().all(|p| p % 30_000 == 65), "{polls:?}");
    }
}
