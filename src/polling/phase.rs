//! Phase-locked polling: poll just after Prometheus evaluates the alert rules.
//!
//! Alert state only changes when a rule group is evaluated, and groups are
//! evaluated at fixed slots: `lastEvaluation + k × interval`. A poll at a
//! random phase sees a change on average half an interval late; a poll placed
//! just after an evaluation has finished sees it at once. This module is pure:
//! given the groups' timing (from `/api/v1/rules`) and the moment the adaptive
//! schedule would poll, it names the moment to poll instead. The adaptive
//! schedule still decides how many ticks to skip while nothing changes.

use std::collections::BTreeMap;

pub use crate::prometheus::GroupTiming;

/// Extra wait after an evaluation's expected end, so the poll does not
/// race it. It can be small because the expected end rests on several
/// readings ([`Readings`]) rather than on one.
pub const MARGIN_MS: i64 = 10;

/// The same for a group whose polls are checked after their answer
/// ([`RECHECK_FROM_INTERVAL_MS`]): a race there costs one request, not an
/// interval, so the poll can follow the evaluation's end as closely as the
/// clocks allow; what it saves is latency, which push measures from the
/// rule's own evaluation. Clocks that disagree are learned ([`Lateness`]).
pub const RECHECKED_MARGIN_MS: i64 = 1;

/// The margin after an evaluation of `g`.
pub fn margin_ms(g: &GroupTiming) -> i64 {
    if g.checked {
        RECHECKED_MARGIN_MS
    } else {
        MARGIN_MS
    }
}

/// Whether polls after a group's evaluations are checked: always from
/// [`RECHECK_FROM_INTERVAL_MS`] up, where a late read costs much; below it
/// too when the source's `/api/v1/rules` answer is small
/// ([`LIGHT_RULES_BYTES`]), since the check keeps to two requests per
/// evaluation and takes the margin from 10 ms to 1. A large answer (every
/// active alert, before Prometheus 2.49) read every second would cost
/// Prometheus more than the milliseconds are worth.
pub fn checks(interval_ms: i64, rules_bytes: usize) -> bool {
    interval_ms >= RECHECK_FROM_INTERVAL_MS || rules_bytes <= LIGHT_RULES_BYTES
}

/// The largest `/api/v1/rules` answer read after every poll of a group
/// evaluated faster than [`RECHECK_FROM_INTERVAL_MS`].
pub const LIGHT_RULES_BYTES: usize = 64 * 1024;

/// A checked group's reading longer than twice the median by more than
/// this is an outlier the estimate leaves out ([`Readings::estimate`]).
pub const OUTLIER_SLACK_MS: i64 = 2;

/// How many readings of a group the estimate rests on.
pub const READINGS: usize = 5;

/// The last few timing readings of each rule group.
///
/// An evaluation's duration varies a lot from one to the next (threefold is
/// common), so a schedule built on one long reading polls late for as long
/// as it keeps that reading. Several readings give a steadier picture: the
/// median duration is not moved by one slow evaluation; and an evaluation
/// starts at its slot or after it (later when Prometheus is busy), never
/// before, so the earliest start seen is nearest to the slot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Readings {
    /// Per group, oldest first.
    groups: BTreeMap<u64, Vec<GroupTiming>>,
}

impl Readings {
    /// Adds one read of `/api/v1/rules`. A group missing from it is gone,
    /// and a group whose interval changed starts afresh: its slots moved.
    pub fn record(&mut self, read: &[GroupTiming]) {
        self.groups
            .retain(|group, _| read.iter().any(|g| g.group == *group));
        for timing in read {
            let history = self.groups.entry(timing.group).or_default();
            match history.last() {
                Some(last) if last.interval_ms != timing.interval_ms => history.clear(),
                // The same evaluation read again says nothing new.
                Some(last) if last.last_evaluation_ms == timing.last_evaluation_ms => continue,
                _ => {}
            }
            history.push(*timing);
            if history.len() > READINGS {
                history.remove(0);
            }
        }
    }

    /// Whether no group has been read.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// One timing per group, from its readings.
    pub fn estimate(&self) -> Vec<GroupTiming> {
        self.groups.values().filter_map(|h| estimate(h)).collect()
    }
}

/// The newest reading, moved to the earliest phase any reading showed, with
/// the median evaluation time (the longest for a group checked after each
/// poll, see [`RECHECK_FROM_INTERVAL_MS`]).
fn estimate(history: &[GroupTiming]) -> Option<GroupTiming> {
    let newest = *history.last()?;
    let interval = newest.interval_ms;
    if interval <= 0 {
        return Some(newest);
    }
    // Each reading's start against the newest one's, on the interval's
    // circle: within half an interval either way.
    let earliest = history
        .iter()
        .map(|g| {
            let ahead = (g.last_evaluation_ms - newest.last_evaluation_ms).rem_euclid(interval);
            if ahead > interval / 2 {
                ahead - interval
            } else {
                ahead
            }
        })
        .min()
        .unwrap_or(0);
    let mut durations: Vec<i64> = history.iter().map(|g| g.evaluation_ms).collect();
    durations.sort_unstable();
    // A checked group's poll that came before the evaluation's end is asked
    // again: the median ends too early about half the time, and each time
    // costs a request. The longest of the last readings costs a few ms of
    // latency instead, but not an outlier's: an evaluation that changed
    // alerts can take several times as long as a quiet one (measured on
    // 3.12 at 30 s: 17 ms against 3), and would hold the next five polls
    // back by the difference; a poll that comes before such an evaluation
    // has ended is checked, and waits for it.
    let median = durations[durations.len() / 2];
    let evaluation_ms = if newest.checked {
        durations
            .iter()
            .copied()
            .filter(|d| *d <= 2 * median + OUTLIER_SLACK_MS)
            .max()
            .unwrap_or(median)
    } else {
        median
    };
    Some(GroupTiming {
        last_evaluation_ms: newest.last_evaluation_ms + earliest,
        evaluation_ms,
        ..newest
    })
}

/// The first moment at or after `due_ms` that lies just after the end of an
/// evaluation of one of the groups; `None` when no group has a usable interval.
pub fn next_poll(groups: &[GroupTiming], due_ms: i64) -> Option<i64> {
    groups
        .iter()
        .filter(|g| g.interval_ms > 0)
        .map(|g| {
            let first_end = g.last_evaluation_ms + g.evaluation_ms.max(0) + margin_ms(g);
            let ticks = (due_ms - first_end).div_euclid(g.interval_ms);
            let mut at = first_end + ticks * g.interval_ms;
            if at < due_ms {
                at += g.interval_ms;
            }
            at
        })
        .min()
}

/// From this evaluation interval up, a phase-locked poll is checked against
/// a timing reading taken after its answer (one more request per poll). A
/// poll that raced an evaluation would otherwise see its changes one whole
/// interval late: 30 s at telemetry-manager's interval, against a second
/// at 1 s, where the check would double the requests for little.
pub const RECHECK_FROM_INTERVAL_MS: i64 = 5_000;

/// The shortest wait between two readings of an evaluation still running.
pub const WAIT_STEP_MIN_MS: i64 = 2;

/// What a timing reading taken after a poll's answer says of that answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recheck {
    /// An evaluation ended `short_ms` after the poll was sent (the poll
    /// raced it, or came before it): the answer may lack some of its
    /// changes, and the evaluation has ended now, so ask again at once.
    AskAgain { short_ms: i64 },
    /// An evaluation was due before the poll was sent and had not ended by
    /// the reading (it started late, or runs long): read the timing again at
    /// this Unix ms, when it should have.
    WaitUntil(i64),
}

/// Whether the answer to a poll sent at `sent_ms` holds the whole last
/// evaluation of every group, judged by `groups`, a reading taken after
/// that answer came (it shows the last evaluation that had ended by then).
/// `None`: it does. Groups evaluated more often than
/// [`RECHECK_FROM_INTERVAL_MS`] are left out. Pure, so it is table-tested.
pub fn recheck(groups: &[GroupTiming], sent_ms: i64, now_ms: i64) -> Option<Recheck> {
    let rechecked = || groups.iter().filter(|g| g.checked);
    let short_ms = rechecked()
        .map(|g| g.last_evaluation_ms + g.evaluation_ms.max(0) - sent_ms)
        .max();
    if let Some(short_ms) = short_ms.filter(|s| *s > 0) {
        return Some(Recheck::AskAgain { short_ms });
    }
    let mut wait_until = None;
    for g in rechecked() {
        let (start, took) = (g.last_evaluation_ms, g.evaluation_ms.max(0));
        let due = start + g.interval_ms;
        if sent_ms >= due {
            // It should take as long as the last one; if that has passed,
            // a quarter as long again as it has run so far: an evaluation
            // that changes alerts can run several times longer than a quiet
            // one, and each read after its end is latency, each one before
            // it a small request.
            let margin = margin_ms(g);
            let step = ((now_ms - due) / 4).max(WAIT_STEP_MIN_MS);
            let at = (due + took + margin).max(now_ms + step);
            wait_until = wait_until.max(Some(at));
        }
    }
    wait_until.map(Recheck::WaitUntil)
}

/// How much later than its readings say a source's evaluations end, by
/// our clock, as the polls that raced one found.
///
/// Prometheus stamps its timing with its own clock and the poll is sent by
/// ours; on two nodes they may disagree by some milliseconds, and then
/// every poll placed [`RECHECKED_MARGIN_MS`] after the evaluation's end
/// would race it and be asked twice. A difference of clocks makes every
/// poll race by about as much; a slow evaluation makes one race, by
/// however long it took. So the extra wait is the smallest shortfall of
/// the last [`LATENESS_RACES`] races, and only once that many fell within
/// the last hour: one slow evaluation (a loaded node) does not slow every
/// later poll, and a lasting difference costs that many races an hour.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lateness {
    /// (when, shortfall ms) of the recent races, oldest first.
    races: Vec<(i64, i64)>,
}

/// How long a race's shortfall is kept.
pub const LATENESS_MEMORY_MS: i64 = 3_600_000;
/// The races the extra wait rests on.
pub const LATENESS_RACES: usize = 3;

impl Lateness {
    /// A poll sent at `now_ms` raced an evaluation that ended `short_ms` later.
    pub fn raced(&mut self, short_ms: i64, now_ms: i64) {
        self.races.push((now_ms, short_ms.max(0)));
        if self.races.len() > LATENESS_RACES {
            self.races.remove(0);
        }
    }

    /// The extra wait after an evaluation's expected end.
    pub fn extra_ms(&self, now_ms: i64) -> i64 {
        let recent = self
            .races
            .iter()
            .filter(|(at, _)| now_ms - at < LATENESS_MEMORY_MS);
        if recent.clone().count() < LATENESS_RACES {
            return 0;
        }
        recent.map(|(_, short)| *short).min().unwrap_or(0)
    }

    /// `groups` with the learned extra added to the evaluation time of
    /// those whose polls are checked (the others keep [`MARGIN_MS`]).
    pub fn apply(&self, groups: &mut [GroupTiming], now_ms: i64) {
        let extra = self.extra_ms(now_ms);
        for g in groups.iter_mut().filter(|g| g.checked) {
            g.evaluation_ms = g.evaluation_ms.max(0) + extra;
        }
    }
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
mod tests;
