//! The disruption scenarios' own table: how soon each design had every
//! pipeline right again after it was started anew, and how long statuses
//! were wrong in all. The general table counts latency from the change,
//! which here includes the time no design ran; this one splits it.

use std::fmt::Write as _;

use alert_poller_experiments::figures::percentile;

use crate::outcome::Outcome;
use crate::report::{Reaction, reactions};

/// How long after its latest start before `seen` a design saw a change
/// (from the change itself when it came after that start).
fn after_start(r: &Reaction, restarts: &[u64]) -> Option<u64> {
    let seen = r.seen_ms?;
    let start = restarts
        .iter()
        .copied()
        .filter(|at| *at <= seen)
        .max()
        .unwrap_or(0)
        .max(r.truth_ms);
    Some(seen - start)
}

/// The figures of one design in one disruption scenario.
#[derive(Debug, PartialEq)]
pub struct Recovery {
    /// From the start before each detection: p50, p95, max (ms).
    pub after_start: [Option<u64>; 3],
    /// Sum of change-to-detection over every change (s): how long the
    /// design's statuses were wrong in all.
    pub wrong_s: f64,
    pub seen: usize,
    pub expected: usize,
}

pub fn recovery(o: &Outcome, design: &str) -> Recovery {
    let mine: Vec<Reaction> = reactions(o)
        .into_iter()
        .filter(|r| r.design == design)
        .collect();
    let mut after: Vec<u64> = mine
        .iter()
        .filter_map(|r| after_start(r, o.restarts.get(design).map_or(&[], Vec::as_slice)))
        .collect();
    after.sort_unstable();
    Recovery {
        after_start: [
            percentile(&after, 50.0),
            percentile(&after, 95.0),
            after.last().copied(),
        ],
        wrong_s: mine.iter().filter_map(Reaction::latency_ms).sum::<u64>() as f64 / 1000.0,
        seen: after.len(),
        expected: mine.len(),
    }
}

fn ms(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

/// The table, for every scenario that stopped its designs.
pub fn section(md: &mut String, outcomes: &[Outcome]) {
    let disrupted: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.scenario.disruption.is_some())
        .collect();
    if disrupted.is_empty() {
        return;
    }
    md.push_str(
        "\n## Right again after a start\n\n\
         Scenarios whose designs were stopped around each change, until the status \
         was right: counted from the design's \
         start (a new process, or a standby become leader) to the reconcile that \
         set the changed pipeline's status. `time wrong` adds up, over every change, \
         the time from the change to that reconcile: what the cluster showed wrong.\n\n\
         | scenario | down s | design | after start p50 ms | p95 ms | max ms | seen | time wrong s |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for o in disrupted {
        let down = o.scenario.disruption.map_or(0.0, |d| d.down.as_secs_f64());
        for (spec, _) in &o.reports {
            let r = recovery(o, &spec.label);
            let [p50, p95, max] = r.after_start;
            let _ = writeln!(
                md,
                "| {} | {down:.0} | {} | {} | {} | {} | {}/{} | {:.1} |",
                o.scenario.name,
                spec.label,
                ms(p50),
                ms(p95),
                ms(max),
                r.seen,
                r.expected,
                r.wrong_s
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alert_poller::domain::kind::Kind;

    fn reaction(truth_ms: u64, seen_ms: Option<u64>) -> Reaction {
        Reaction {
            scenario: "receiver-restart".into(),
            design: "shipped".into(),
            pipeline: "p1".into(),
            pipeline_kind: Kind::Trace,
            edge: "fire",
            truth_ms,
            seen_ms,
        }
    }

    #[test]
    fn counts_from_the_start_before_the_detection() {
        let restarts = [10_000, 50_000];
        // Changed at 8 s while down, started at 10 s, right at 10.4 s.
        assert_eq!(
            after_start(&reaction(8_000, Some(10_400)), &restarts),
            Some(400)
        );
        // The later start does not count for an earlier detection.
        assert_eq!(
            after_start(&reaction(8_000, Some(49_000)), &restarts),
            Some(39_000)
        );
        // A change after the start counts from the change.
        assert_eq!(
            after_start(&reaction(20_000, Some(20_030)), &restarts),
            Some(30)
        );
        // Never seen.
        assert_eq!(after_start(&reaction(20_000, None), &restarts), None);
        // No restarts: from the change.
        assert_eq!(after_start(&reaction(20_000, Some(20_030)), &[]), Some(30));
    }

    /// Designs start one after another: each counts from its own start, so
    /// one that set its statuses before the last was up is not counted from
    /// the change instead.
    #[test]
    fn each_design_counts_from_its_own_start() {
        let mut o = crate::report::tests::outcome();
        // `b` saw p1's fire at 1.3 s, after its start at 1.25 s and before
        // `a`'s at 1.4 s.
        o.restarts = [
            ("a".to_string(), vec![1_400]),
            ("b".to_string(), vec![1_250]),
        ]
        .into();
        let a = recovery(&o, "a");
        assert_eq!(a.after_start, [Some(100), Some(200), Some(200)]);
        assert_eq!((a.seen, a.expected), (3, 3));
        let b = recovery(&o, "b");
        assert_eq!(b.after_start, [Some(50), Some(50), Some(50)]);
        // Time wrong counts from the change, starts or not.
        assert_eq!(b.wrong_s, 0.3);
    }
}
