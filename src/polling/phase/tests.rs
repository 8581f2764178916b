use super::*;

const G: GroupTiming = GroupTiming {
    group: 1,
    last_evaluation_ms: 10_000,
    interval_ms: 1_000,
    evaluation_ms: 5,
    checked: false,
};

/// Where a poll goes: `ms` after an evaluation's end.
const M: i64 = MARGIN_MS;

#[test]
fn polls_land_just_after_an_evaluation() {
    // Evaluations end at ...,10_005, 11_005, ...; polls go M ms later.
    assert_eq!(next_poll(&[G], 10_500), Some(11_005 + M));
    assert_eq!(next_poll(&[G], 11_005 + M), Some(11_005 + M));
    assert_eq!(next_poll(&[G], 11_006 + M), Some(12_005 + M));
    // Long after the reading, the slots still line up.
    assert_eq!(next_poll(&[G], 1_000_000), Some(1_000_005 + M));
    // Before the reading too.
    assert_eq!(next_poll(&[G], 9_100), Some(10_005 + M));
}

#[test]
fn the_earliest_group_wins() {
    let slow = GroupTiming {
        group: 2,
        last_evaluation_ms: 10_400,
        interval_ms: 30_000,
        evaluation_ms: 100,
        checked: true,
    };
    // The slow group ends at 10_500, before the fast one at 11_005; it
    // is checked after each poll, so it takes the small margin.
    assert_eq!(
        next_poll(&[slow, G], 10_100),
        Some(10_500 + RECHECKED_MARGIN_MS)
    );
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
    assert_eq!(at, 12_005 + M);
    // A 15 s delay skips ticks, as the adaptive schedule asks.
    let at = next_poll(&[G], due(now, 15_000, &[G])).unwrap();
    assert_eq!(at, 26_005 + M);
}

/// A virtual run: with a 30 s evaluation interval and a stable Prometheus,
/// phase-locked polling makes at most one request per interval, each
/// just after an evaluation ends.
#[test]
fn at_most_one_poll_per_interval_on_a_virtual_clock() {
    let g = GroupTiming {
        group: 1,
        last_evaluation_ms: 0,
        interval_ms: 30_000,
        evaluation_ms: 40,
        checked: true,
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
    assert!(
        polls.iter().all(|p| p % 30_000 == 40 + RECHECKED_MARGIN_MS),
        "{polls:?}"
    );
}

/// A reading of group `group` at interval 1 s: an evaluation that
/// started `late` ms after the slot at `slot` and took `took` ms.
fn reading(group: u64, slot: i64, late: i64, took: i64) -> GroupTiming {
    GroupTiming {
        group,
        last_evaluation_ms: slot + late,
        interval_ms: 1_000,
        evaluation_ms: took,
        checked: false,
    }
}

fn reading_every(interval_ms: i64, slot: i64, late: i64, took: i64) -> GroupTiming {
    GroupTiming {
        interval_ms,
        checked: interval_ms >= RECHECK_FROM_INTERVAL_MS,
        ..reading(1, slot, late, took)
    }
}

/// Readings in order, and the start of the newest slot and the time the
/// estimate must give.
type Case = (Vec<GroupTiming>, Option<(i64, i64)>);

fn assert_estimates(cases: Vec<Case>) {
    for (read, expected) in cases {
        let mut readings = Readings::default();
        for r in &read {
            readings.record(&[*r]);
        }
        let got = readings
            .estimate()
            .first()
            .map(|g| (g.last_evaluation_ms, g.evaluation_ms));
        assert_eq!(got, expected, "{read:?}");
    }
}

#[test]
fn several_readings_give_the_earliest_start_and_the_median_time() {
    assert_estimates(vec![
        (vec![], None),
        // One reading is taken at its word.
        (vec![reading(1, 60_000, 3, 20)], Some((60_003, 20))),
        // A busy moment: the newest started 30 ms late and took 50 ms;
        // the calm readings before it keep the schedule where it was.
        (
            vec![
                reading(1, 60_000, 2, 20),
                reading(1, 120_000, 1, 22),
                reading(1, 180_000, 30, 50),
            ],
            Some((180_001, 22)),
        ),
        // The slot lies near a second's end: late starts cross it.
        (
            vec![reading(1, 60_995, 4, 9), reading(1, 120_995, 1, 7)],
            Some((120_996, 9)),
        ),
        // The same evaluation read twice counts once.
        (
            vec![
                reading(1, 60_000, 1, 10),
                reading(1, 61_000, 1, 30),
                reading(1, 61_000, 1, 30),
            ],
            Some((61_001, 30)),
        ),
        // Only the last READINGS count: an old early start is forgotten.
        (
            std::iter::once(reading(1, 0, 0, 5))
                .chain((1..=READINGS as i64).map(|i| reading(1, i * 60_000, 8, 5)))
                .collect(),
            Some((READINGS as i64 * 60_000 + 8, 5)),
        ),
    ]);
}

#[test]
fn a_checked_group_waits_for_its_longest_reading_but_an_outlier() {
    assert_estimates(vec![
        // A checked group (30 s) waits for the longest of its readings...
        (
            vec![
                reading_every(30_000, 60_000, 2, 40),
                reading_every(30_000, 90_000, 1, 55),
                reading_every(30_000, 120_000, 3, 60),
            ],
            Some((120_001, 60)),
        ),
        // ...but for one that ran over twice the median: an evaluation
        // that changed alerts does not hold the next polls back.
        (
            vec![
                reading_every(30_000, 60_000, 2, 40),
                reading_every(30_000, 90_000, 1, 150),
                reading_every(30_000, 120_000, 3, 60),
            ],
            Some((120_001, 60)),
        ),
        (
            vec![
                reading_every(30_000, 60_000, 2, 3),
                reading_every(30_000, 90_000, 1, 17),
                reading_every(30_000, 120_000, 3, 4),
                reading_every(30_000, 150_000, 3, 3),
            ],
            Some((150_001, 4)),
        ),
    ]);
}

#[test]
fn a_group_that_goes_or_changes_its_interval_starts_afresh() {
    let mut readings = Readings::default();
    readings.record(&[reading(1, 60_000, 0, 5), reading(2, 60_500, 0, 5)]);
    readings.record(&[reading(1, 120_000, 40, 90)]);
    // Group 2 is gone; group 1 keeps both readings.
    assert_eq!(
        readings.estimate(),
        [GroupTiming {
            last_evaluation_ms: 120_000,
            evaluation_ms: 90,
            ..reading(1, 0, 0, 0)
        }]
    );
    let slower = GroupTiming {
        interval_ms: 30_000,
        ..reading(1, 180_000, 40, 90)
    };
    readings.record(&[slower]);
    assert_eq!(readings.estimate(), [slower]);
}

// Unformatted so the cases stay one per line.
#[rustfmt::skip]
#[test]
fn a_poll_that_raced_an_evaluation_is_asked_again() {
    use Recheck::{AskAgain, WaitUntil};
    // A 30 s group whose last evaluation started at 60_000 and took 200 ms.
    let g = GroupTiming { group: 1, last_evaluation_ms: 60_000, interval_ms: 30_000, evaluation_ms: 200, checked: true };
    let fast = GroupTiming { interval_ms: 1_000, checked: false, ..g };
    let other = GroupTiming { group: 2, last_evaluation_ms: 61_000, evaluation_ms: 400, ..g };
    // (groups, sent, read at, expected)
    let cases: &[(&[GroupTiming], i64, i64, Option<Recheck>)] = &[
        // Sent after the evaluation ended, before the next was due: whole.
        (&[g], 60_200, 60_210, None),
        (&[g], 89_999, 90_005, None),
        // Sent while it ran, or before it: it has ended now, ask again.
        (&[g], 60_000, 60_250, Some(AskAgain { short_ms: 200 })),
        (&[g], 60_199, 60_250, Some(AskAgain { short_ms: 1 })),
        (&[g], 59_000, 60_250, Some(AskAgain { short_ms: 1_200 })),
        // The next was due before the send and had not ended by the
        // reading: read again when it should have ended...
        (&[g], 90_000, 90_020, Some(WaitUntil(90_200 + RECHECKED_MARGIN_MS))),
        // ...or, that moment gone, after a quarter as long again as it has run.
        (&[g], 90_100, 90_300, Some(WaitUntil(90_300 + 75))),
        (&[g], 90_100, 90_201, Some(WaitUntil(90_201 + 50))),
        // Just due: the shortest step.
        (&[g], 90_000, 90_205, Some(WaitUntil(90_205 + 51))),
        // A fast group is not checked: a late read costs it a second.
        (&[fast], 60_100, 60_150, None),
        // Several groups: any one raced asks again; else the latest wait.
        (&[g, other], 60_500, 60_600, Some(AskAgain { short_ms: 900 })),
        (&[g, other], 91_500, 91_510, Some(WaitUntil(91_510 + (91_510 - 90_000) / 4))),
        (&[], 60_100, 60_150, None),
    ];
    for (groups, sent, now, expected) in cases {
        assert_eq!(recheck(groups, *sent, *now), *expected, "sent at {sent}, read at {now}");
    }
}

#[test]
fn polls_are_checked_where_a_late_read_costs_much_or_a_check_little() {
    let kib = 1024;
    // (interval ms, rules answer bytes, checked)
    let cases = [
        (30_000, 10 * kib, true),
        (30_000, 5_000 * kib, true),
        (5_000, 5_000 * kib, true),
        (1_000, 10 * kib, true),
        (1_000, LIGHT_RULES_BYTES, true),
        (1_000, LIGHT_RULES_BYTES + 1, false),
        (4_999, 5_000 * kib, false),
    ];
    for (interval, bytes, expected) in cases {
        assert_eq!(
            checks(interval, bytes),
            expected,
            "{interval} ms, {bytes} B"
        );
    }
    // A checked group's poll follows its end by the small margin.
    let checked = GroupTiming { checked: true, ..G };
    assert_eq!(
        next_poll(&[checked], 10_500),
        Some(11_005 + RECHECKED_MARGIN_MS)
    );
}

#[test]
fn races_that_keep_coming_teach_how_late_evaluations_end() {
    let hour = LATENESS_MEMORY_MS;
    // (races as (at, shortfall), asked at, expected extra)
    type Case<'a> = (&'a [(i64, i64)], i64, i64);
    let cases: &[Case] = &[
        (&[], 0, 0),
        // One or two races are slow evaluations: nothing learned.
        (&[(1_000, 45)], 2_000, 0),
        (&[(1_000, 45), (31_000, 7)], 32_000, 0),
        // A clock about 7 ms behind Prometheus' races every poll: the
        // smallest of three shortfalls is the difference.
        (&[(1_000, 45), (31_000, 7), (61_000, 8)], 62_000, 7),
        (
            &[(1_000, 9), (31_000, 7), (61_000, 8), (91_000, 8)],
            92_000,
            7,
        ),
        // An hour after the oldest of the three, it is forgotten.
        (&[(1_000, 9), (31_000, 7), (61_000, 8)], 1_000 + hour, 0),
        // A negative shortfall cannot make polls earlier.
        (&[(1_000, -5), (2_000, 3), (3_000, 4)], 4_000, 0),
    ];
    for (races, now, expected) in cases {
        let mut lateness = Lateness::default();
        for (at, short) in *races {
            lateness.raced(*short, *at);
        }
        assert_eq!(lateness.extra_ms(*now), *expected, "{races:?} at {now}");
    }
    // Only rechecked groups wait for it: a fast group keeps its margin.
    let mut lateness = Lateness::default();
    for at in 0..3 {
        lateness.raced(7, at);
    }
    let slow = GroupTiming {
        interval_ms: 30_000,
        checked: true,
        ..G
    };
    let mut groups = [slow, G];
    lateness.apply(&mut groups, 1_000);
    assert_eq!((groups[0].evaluation_ms, groups[1].evaluation_ms), (12, 5));
}
