//! The same change seen by `shipped` and by `push-scoped`: each transition's
//! latency paired between the two designs. Two p95s of 20 transitions each
//! rarely tell designs a few milliseconds apart; the difference taken change
//! by change does, and splitting fires from resolves shows where it comes
//! from (a fire waits for the group's end, a resolve also for the restart
//! check).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::outcome::Outcome;
use crate::report::reactions::reactions;

/// A median and the range around it, in ms. Differences can be negative
/// and an even count takes the midpoint, which `figures::percentile`
/// (nearest rank, unsigned) does not give.
#[derive(Debug, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: i64,
    pub max: i64,
}

impl Spread {
    fn of(mut values: Vec<i64>) -> Option<Spread> {
        values.sort_unstable();
        let n = values.len();
        let (min, max) = (*values.first()?, *values.last()?);
        let median = if n % 2 == 1 {
            values[n / 2] as f64
        } else {
            (values[n / 2 - 1] + values[n / 2]) as f64 / 2.0
        };
        Some(Spread { median, min, max })
    }
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}–{})", self.median, self.min, self.max)
    }
}

/// One edge (fires or resolves) of one scenario: each design's latency and
/// shipped's minus push-scoped's, over the changes both saw.
#[derive(Debug, PartialEq)]
pub struct Edge {
    pub push: Spread,
    pub shipped: Spread,
    pub gap: Spread,
}

/// Fires and resolves of one scenario; `None` where no change of that edge
/// was seen by both designs.
pub fn paired(o: &Outcome) -> [Option<Edge>; 2] {
    let mut latencies: BTreeMap<(&'static str, String, u64), [Option<i64>; 2]> = BTreeMap::new();
    for r in reactions(o) {
        let slot = match r.design.as_str() {
            "push-scoped" => 0,
            "shipped" => 1,
            _ => continue,
        };
        let key = (r.edge, r.pipeline.clone(), r.truth_ms);
        latencies.entry(key).or_default()[slot] = r.latency_ms().map(|l| l as i64);
    }
    ["fire", "resolve"].map(|edge| {
        let both: Vec<(i64, i64)> = latencies
            .iter()
            .filter(|((e, _, _), _)| *e == edge)
            .filter_map(|(_, [push, shipped])| Some(((*push)?, (*shipped)?)))
            .collect();
        Some(Edge {
            push: Spread::of(both.iter().map(|p| p.0).collect())?,
            shipped: Spread::of(both.iter().map(|p| p.1).collect())?,
            gap: Spread::of(both.iter().map(|p| p.1 - p.0).collect())?,
        })
    })
}

/// The table, for every scenario that ran both designs and stopped no
/// design: where designs are stopped and started again, the order they
/// start in is part of each latency.
pub fn section(md: &mut String, outcomes: &[Outcome]) {
    let rows: Vec<(&Outcome, [Option<Edge>; 2])> = outcomes
        .iter()
        .filter(|o| o.scenario.disruption.is_none())
        .map(|o| (o, paired(o)))
        .filter(|(_, edges)| edges.iter().any(Option::is_some))
        .collect();
    if rows.is_empty() {
        return;
    }
    md.push_str(
        "\n## The same change, seen by both\n\n\
         Each transition's latency paired between `shipped` and `push-scoped`: the \
         same change, seen by both. Median, then the range over the changes both \
         saw, in ms (scenarios that stop the designs are left out: the order the \
         designs start in is part of their latencies).\n\n\
         | scenario | fires: push-scoped | fires: shipped | fires: shipped − push-scoped \
         | resolves: push-scoped | resolves: shipped | resolves: shipped − push-scoped |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for (o, edges) in rows {
        let _ = write!(md, "| {} |", o.scenario.name);
        for edge in &edges {
            match edge {
                Some(e) => {
                    let _ = write!(md, " {} | {} | {} |", e.push, e.shipped, e.gap);
                }
                None => md.push_str(" - | - | - |"),
            }
        }
        md.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{change, design, outcome, seen};

    #[test]
    fn spreads_take_the_middle_and_the_ends() {
        let s = |v: &[i64]| Spread::of(v.to_vec()).map(|s| s.to_string());
        assert_eq!(s(&[]), None);
        assert_eq!(s(&[7]).as_deref(), Some("7 (7–7)"));
        assert_eq!(s(&[9, 4, 12, 3]).as_deref(), Some("6.5 (3–12)"));
        assert_eq!(s(&[-52, 92, -15]).as_deref(), Some("-15 (-52–92)"));
    }

    /// Only the changes both designs saw are paired, each with itself.
    #[test]
    fn each_change_is_paired_with_itself() {
        let mut o = outcome();
        o.truths = vec![
            change("p1", Some(1000), Some(5000)),
            change("p2", Some(2000), Some(6000)),
        ];
        o.reports = vec![
            design(
                "push-scoped",
                vec![
                    seen("p1", "False", 1004),
                    seen("p2", "False", 2010),
                    seen("p1", "True", 5006),
                ],
            ),
            design(
                "shipped",
                vec![
                    seen("p1", "False", 1020),
                    seen("p2", "False", 2012),
                    seen("p1", "True", 5030),
                    seen("p2", "True", 6040),
                ],
            ),
            design("push-all", vec![seen("p1", "False", 1001)]),
        ];
        let [fires, resolves] = paired(&o);
        let fires = fires.expect("both saw the fires");
        assert_eq!(fires.push.to_string(), "7 (4–10)");
        assert_eq!(fires.shipped.to_string(), "16 (12–20)");
        assert_eq!(fires.gap.to_string(), "9 (2–16)");
        // p2's resolve was seen by shipped only: one pair is left.
        let resolves = resolves.expect("both saw p1's resolve");
        assert_eq!(resolves.gap.to_string(), "24 (24–24)");
    }
}
