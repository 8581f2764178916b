//! Reactions: which design noticed which change Prometheus made, and when.
//! Everything else in the report is counted from them.

use alert_poller::domain::kind::Kind;

use crate::agent::AgentReport;
use crate::outcome::Outcome;
use crate::truth::Change;

/// One measured reaction: a design noticing a change Prometheus made.
#[derive(Clone, Debug)]
pub struct Reaction {
    pub scenario: String,
    pub design: String,
    pub pipeline: String,
    pub pipeline_kind: Kind,
    /// `fire` (the pipeline turned False) or `resolve` (back to True).
    pub edge: &'static str,
    pub truth_ms: u64,
    pub seen_ms: Option<u64>,
}

impl Reaction {
    pub fn latency_ms(&self) -> Option<u64> {
        self.seen_ms.map(|s| s.saturating_sub(self.truth_ms))
    }
}

fn first_after(report: &AgentReport, pipeline: &str, status: &str, after: u64) -> Option<u64> {
    report
        .detections
        .iter()
        .filter(|d| d.pipeline == pipeline && d.status == status && d.unix_ms >= after)
        .map(|d| d.unix_ms)
        .min()
}

pub fn reactions(o: &Outcome) -> Vec<Reaction> {
    let mut out = Vec::new();
    for (spec, report) in &o.reports {
        for c in &o.truths {
            let Change {
                pipeline,
                pipeline_kind,
                fired_ms,
                resolved_ms,
            } = c;
            for (edge, truth, status) in [
                ("fire", fired_ms, "False"),
                ("resolve", resolved_ms, "True"),
            ] {
                let Some(truth) = truth else { continue };
                out.push(Reaction {
                    scenario: o.scenario.name.clone(),
                    design: spec.label.clone(),
                    pipeline: pipeline.clone(),
                    pipeline_kind: *pipeline_kind,
                    edge,
                    truth_ms: *truth,
                    seen_ms: first_after(report, pipeline, status, *truth),
                });
            }
        }
    }
    out
}

/// The verdict printed last: each design seeing each change is one check.
pub struct Tally {
    pub passed: usize,
    /// Changes some design did not see, or Prometheus never showed.
    pub missed: Vec<String>,
}

pub fn tally(outcomes: &[Outcome]) -> Tally {
    let checks: usize = outcomes.iter().map(|o| reactions(o).len()).sum();
    let missed = missed(outcomes);
    Tally {
        passed: checks.saturating_sub(missed.len()),
        missed,
    }
}

/// Changes some design did not see, or Prometheus never showed.
pub(super) fn missed(outcomes: &[Outcome]) -> Vec<String> {
    let mut out = Vec::new();
    for o in outcomes {
        for c in &o.truths {
            if c.fired_ms.is_none() || c.resolved_ms.is_none() {
                out.push(format!(
                    "{}: Prometheus shows no complete firing run for {}pipeline/{}",
                    o.scenario.name, c.pipeline_kind, c.pipeline
                ));
            }
        }
        for r in reactions(o) {
            if r.seen_ms.is_none() {
                out.push(format!(
                    "{}: {} never saw the {} of {}pipeline/{}",
                    r.scenario, r.design, r.edge, r.pipeline_kind, r.pipeline
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{design, outcome, seen};

    #[test]
    fn first_detection_at_or_after_the_truth() {
        let (_, report) = design(
            "a",
            vec![
                seen("p1", "False", 900),
                seen("p1", "False", 1300),
                seen("p1", "False", 1200),
                seen("p1", "True", 1100),
                seen("p2", "False", 1000),
            ],
        );
        for (pipeline, status, after, expected) in [
            ("p1", "False", 1000, Some(1200)), // the earliest, not the first listed
            ("p1", "False", 1300, Some(1300)), // at the truth counts
            ("p1", "False", 1301, None),
            ("p1", "False", 0, Some(900)),
            ("p1", "True", 1000, Some(1100)),
            ("p2", "True", 0, None),
            ("p3", "False", 0, None),
        ] {
            assert_eq!(
                first_after(&report, pipeline, status, after),
                expected,
                "{pipeline} {status} after {after}"
            );
        }
        assert_eq!(first_after(&AgentReport::default(), "p1", "False", 0), None);
    }

    #[test]
    fn latency_is_from_truth_to_detection() {
        let reaction = |truth_ms, seen_ms| Reaction {
            scenario: String::new(),
            design: String::new(),
            pipeline: String::new(),
            pipeline_kind: Kind::Metric,
            edge: "fire",
            truth_ms,
            seen_ms,
        };
        for (truth, seen, expected) in [
            (1000, Some(1250), Some(250)),
            (1000, Some(1000), Some(0)),
            (1000, Some(900), Some(0)), // never negative
            (1000, None, None),
        ] {
            assert_eq!(reaction(truth, seen).latency_ms(), expected);
        }
    }

    #[test]
    fn reactions_and_tally() {
        let o = outcome();
        let got: Vec<(String, String, &str, Option<u64>)> = reactions(&o)
            .into_iter()
            .map(|r| (r.design.clone(), r.pipeline.clone(), r.edge, r.latency_ms()))
            .collect();
        let want = [
            ("a", "p1", "fire", Some(500)),
            ("a", "p1", "resolve", Some(200)),
            ("a", "p2", "fire", Some(100)),
            ("b", "p1", "fire", Some(300)),
            ("b", "p1", "resolve", None),
            ("b", "p2", "fire", None),
        ];
        assert_eq!(
            got,
            want.map(|(d, p, k, l)| (d.to_string(), p.to_string(), k, l))
        );
        let t = tally(std::slice::from_ref(&o));
        assert_eq!(
            t.missed,
            [
                "quick: Prometheus shows no complete firing run for tracepipeline/p2",
                "quick: b never saw the resolve of tracepipeline/p1",
                "quick: b never saw the fire of tracepipeline/p2",
            ]
        );
        // Six checks; the incomplete run counts against them too.
        assert_eq!(t.passed, 3);
        let empty = tally(&[]);
        assert_eq!((empty.passed, empty.missed.len()), (0, 0));
    }
}
