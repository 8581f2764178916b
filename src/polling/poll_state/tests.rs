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

/// A poll re-queues what its diff touched: all at first, nobody when nothing
/// changed, one kind's pipelines for that kind's alerts.
// Unformatted so the scenarios stay aligned as tables.
#[rustfmt::skip]
#[test]
fn polls_and_diffs_requeue_what_changed() {
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
    ];
    for (name, script) in scenarios {
        play(name, script);
    }
}

/// Staleness: when it begins and ends, and what each re-queues.
// Unformatted so the scenarios stay aligned as tables.
#[rustfmt::skip]
#[test]
fn staleness_requeues_all_once_per_outage() {
    let scenarios: &[Scenario] = &[
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
    ];
    for (name, script) in scenarios {
        play(name, script);
    }
}

/// A matcher change: the next success is a fresh start, whatever came
/// between; the same tuning again is no event.
// Unformatted so the scenarios stay aligned as tables.
#[rustfmt::skip]
#[test]
fn a_matcher_change_restarts_the_diff() {
    let scenarios: &[Scenario] = &[
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
                "unchanged tuning is no event",
                &[
                    (0, Ok(&["MetricA/a"]),      "all    changed    fresh:1  -     -  120"),
                    (5, retune("Metric", "TelemetryFlowHealthy"),
                                                 "nobody -          -        -     -  120"),
                    (6, Ok(&["MetricA/a"]),      "nobody unchanged  fresh:1  +0-0  -  126"),
                ],
            ),
    ];
    for (name, script) in scenarios {
        play(name, script);
    }
}

/// A new condition type re-queues all at once (stale or not), and a new
/// `staleAfter` counts from the last success.
// Unformatted so the scenarios stay aligned as tables.
#[rustfmt::skip]
#[test]
fn a_condition_type_or_stale_after_change_takes_effect_at_once() {
    let scenarios: &[Scenario] = &[
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
