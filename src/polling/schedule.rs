//! When to poll next. Pure: the poller tells the schedule what the last poll
//! found and hands in the randomness; the schedule answers with a delay. Tests
//! drive it with a virtual clock and fixed jitter.
//!
//! The shape: alert state can only change at rule evaluations, so a quiet
//! Prometheus is polled less and less often (interval grows by `factor` up to
//! `max`), and a change snaps the interval back to `min` because changes come in
//! bursts (an alert that fires often resolves or spreads soon after). Errors back
//! off exponentially with jitter up to `error_max`, so a struggling Prometheus is
//! not hammered, and a `Retry-After` from it is honoured.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// The tunables the schedule reads; the poller copies them out of `Tuning`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Intervals {
    /// Interval right after a change, and the floor of everything else.
    pub min: Duration,
    /// Ceiling of the interval while nothing changes.
    pub max: Duration,
    /// Growth of the interval after each poll that found nothing new (≥ 1).
    pub factor: f64,
    /// Ceiling of the delay after failed polls, jitter and `Retry-After` included.
    pub error_max: Duration,
}

impl Intervals {
    /// The schedule's view of the tuning.
    pub fn of(tuning: &crate::config::Tuning) -> Intervals {
        Intervals {
            min: tuning.min_interval,
            max: tuning.max_interval,
            factor: tuning.backoff_factor,
            error_max: tuning.error_max_interval,
        }
    }
}

/// What the last poll found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The set of firing alerts changed (or this was the first good poll).
    Changed,
    /// Same firing alerts as before.
    Unchanged,
    /// The poll failed; `retry_after` is what Prometheus asked for, if anything.
    Failed { retry_after: Option<Duration> },
}

/// The adaptive schedule's state between polls.
#[derive(Debug)]
pub struct Schedule {
    interval: Duration,
    /// Present while polls fail: the undithered exponential sequence, which
    /// `backon` computes; it is dropped on the first success so the next
    /// failure starts small again.
    backoff: Option<ExponentialBackoff>,
}

impl Schedule {
    pub fn new(intervals: &Intervals) -> Self {
        Self {
            interval: intervals.min,
            backoff: None,
        }
    }

    /// The delay until the next poll. `jitter` is a number in `[0, 1)`; the
    /// poller passes a random one, tests a fixed one.
    pub fn next(&mut self, intervals: &Intervals, outcome: Outcome, jitter: f64) -> Duration {
        let jitter = jitter.clamp(0.0, 1.0);
        match outcome {
            Outcome::Changed => {
                self.backoff = None;
                self.interval = intervals.min;
                self.interval
            }
            Outcome::Unchanged => {
                self.backoff = None;
                let grown = self.interval.mul_f64(intervals.factor.max(1.0));
                self.interval = grown.clamp(intervals.min, intervals.max.max(intervals.min));
                self.interval
            }
            Outcome::Failed { retry_after } => {
                let base = self
                    .backoff
                    .get_or_insert_with(|| error_backoff(intervals))
                    .next()
                    .unwrap_or(intervals.error_max)
                    .min(intervals.error_max);
                // "Equal jitter": somewhere in the upper half of the base delay,
                // so the delay is spread but never above the ceiling.
                let delay = base.mul_f64(0.5 + 0.5 * jitter);
                let delay = retry_after.map_or(delay, |asked| delay.max(asked));
                delay
                    .min(intervals.error_max)
                    .max(intervals.min.min(intervals.error_max))
            }
        }
    }
}

/// The exponential sequence for consecutive failures: twice `min`, doubling,
/// capped at `error_max`. Starting at twice `min` keeps the jittered first
/// retry no sooner than a normal fast poll.
fn error_backoff(intervals: &Intervals) -> ExponentialBackoff {
    ExponentialBuilder::new()
        .with_min_delay(intervals.min.saturating_mul(2))
        .with_factor(2.0)
        .with_max_delay(intervals.error_max)
        .without_max_times()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn intervals() -> Intervals {
        Intervals {
            min: S(1),
            max: S(30),
            factor: 2.0,
            error_max: S(60),
        }
    }

    #[test]
    fn quiet_polls_grow_to_the_max_and_a_change_resets() {
        let iv = intervals();
        let mut s = Schedule::new(&iv);
        let grown: Vec<_> = (0..7)
            .map(|_| s.next(&iv, Outcome::Unchanged, 0.5))
            .collect();
        assert_eq!(grown, [S(2), S(4), S(8), S(16), S(30), S(30), S(30)]);
        assert_eq!(s.next(&iv, Outcome::Changed, 0.5), S(1));
        assert_eq!(s.next(&iv, Outcome::Unchanged, 0.5), S(2));
    }

    #[test]
    fn factor_one_means_a_fixed_interval() {
        let iv = Intervals {
            factor: 1.0,
            max: S(1),
            ..intervals()
        };
        let mut s = Schedule::new(&iv);
        for _ in 0..5 {
            assert_eq!(s.next(&iv, Outcome::Unchanged, 0.9), S(1));
        }
    }

    #[test]
    fn errors_back_off_exponentially_within_jitter_bounds() {
        let iv = intervals();
        let fail = Outcome::Failed { retry_after: None };
        // With jitter 1.0 the delay is the undithered base, with 0.0 half of it.
        let mut hi = Schedule::new(&iv);
        let highs: Vec<_> = (0..8).map(|_| hi.next(&iv, fail, 1.0)).collect();
        assert_eq!(highs, [S(2), S(4), S(8), S(16), S(32), S(60), S(60), S(60)]);
        let mut lo = Schedule::new(&iv);
        let lows: Vec<_> = (0..7).map(|_| lo.next(&iv, fail, 0.0)).collect();
        assert_eq!(lows, [S(1), S(2), S(4), S(8), S(16), S(30), S(30)]);
    }

    #[test]
    fn random_jitter_never_exceeds_the_error_ceiling() {
        let iv = intervals();
        let mut s = Schedule::new(&iv);
        let mut rng = fastrand::Rng::with_seed(7);
        let mut previous_base = Duration::ZERO;
        for _ in 0..200 {
            let d = s.next(&iv, Outcome::Failed { retry_after: None }, rng.f64());
            assert!(d <= iv.error_max, "{d:?}");
            assert!(d >= iv.min, "{d:?}");
            previous_base = previous_base.max(d);
        }
        assert!(previous_base > S(30), "the backoff reaches the upper range");
    }

    #[test]
    fn success_after_errors_starts_over() {
        let iv = intervals();
        let mut s = Schedule::new(&iv);
        let fail = Outcome::Failed { retry_after: None };
        for _ in 0..4 {
            s.next(&iv, fail, 1.0);
        }
        assert!(s.next(&iv, fail, 1.0) > S(2), "deep in the backoff");
        assert_eq!(s.next(&iv, Outcome::Changed, 1.0), S(1));
        assert_eq!(s.next(&iv, fail, 1.0), S(2), "a new outage starts small");
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_ceiling() {
        let iv = intervals();
        let mut s = Schedule::new(&iv);
        let asked = |secs| Outcome::Failed {
            retry_after: Some(S(secs)),
        };
        assert_eq!(s.next(&iv, asked(10), 1.0), S(10));
        // The base (4 s) is now below what was asked: the ask wins.
        assert_eq!(s.next(&iv, asked(7), 1.0), S(7));
        // Never more than error_max, whatever the server says.
        assert_eq!(s.next(&iv, asked(3600), 1.0), S(60));
        // A short ask does not shorten the backoff.
        let mut s = Schedule::new(&iv);
        for _ in 0..3 {
            s.next(&iv, Outcome::Failed { retry_after: None }, 1.0);
        }
        assert_eq!(s.next(&iv, asked(1), 1.0), S(16));
    }

    #[test]
    fn new_limits_apply_at_the_next_poll() {
        let iv = intervals();
        let mut s = Schedule::new(&iv);
        for _ in 0..9 {
            s.next(&iv, Outcome::Unchanged, 0.0);
        }
        assert_eq!(
            s.next(&iv, Outcome::Unchanged, 0.0),
            S(30),
            "at the ceiling"
        );
        let tighter = Intervals { max: S(5), ..iv };
        assert_eq!(s.next(&tighter, Outcome::Unchanged, 0.0), S(5));
        let raised_floor = Intervals {
            min: S(10),
            max: S(20),
            ..iv
        };
        assert_eq!(s.next(&raised_floor, Outcome::Changed, 0.0), S(10));
    }

    /// A virtual clock run: a stable Prometheus polled for an hour costs a
    /// handful of requests per minute at most, and an outage costs far fewer.
    #[test]
    fn an_hour_on_a_virtual_clock() {
        let iv = intervals();
        let mut s = Schedule::new(&iv);
        let (mut now, mut polls) = (Duration::ZERO, 0);
        while now < S(3600) {
            now += s.next(&iv, Outcome::Unchanged, 0.0);
            polls += 1;
        }
        assert!(polls <= 3600 / 30 + 5, "{polls} polls while stable");

        let mut s = Schedule::new(&iv);
        let (mut now, mut polls) = (Duration::ZERO, 0);
        while now < S(3600) {
            now += s.next(&iv, Outcome::Failed { retry_after: None }, 0.5);
            polls += 1;
        }
        assert!(polls <= 3600 / 45 + 10, "{polls} polls while failing");
    }
}
