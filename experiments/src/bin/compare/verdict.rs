//! The question the comparison is for, point by point: is what deploy/
//! ships (`shipped`) as quick as telemetry-manager's push (`push-scoped`),
//! at no more than two requests to Prometheus per evaluation while stable?

use std::fmt::Write as _;

use crate::outcome::Outcome;
use crate::report::{reactions, row};

/// One scenario's answer.
#[derive(Debug, PartialEq)]
pub struct Point {
    pub shipped_p95: Option<u64>,
    pub push_p95: Option<u64>,
    /// The p95s' 95% bootstrap intervals.
    pub shipped_ci: Option<(u64, u64)>,
    pub push_ci: Option<(u64, u64)>,
    /// `shipped`'s requests per evaluation while nothing changed.
    pub requests_per_evaluation: Option<f64>,
}

impl Point {
    /// Whether shipped's p95 is at or below push-scoped's at no more than
    /// two requests per evaluation.
    pub fn holds(&self) -> Option<bool> {
        let (shipped, push) = (self.shipped_p95?, self.push_p95?);
        Some(shipped <= push && self.requests_per_evaluation? <= 2.0 + 1e-9)
    }
}

/// The figures of the two designs come from the report's own rows, so the
/// answer cannot disagree with the tables below it.
pub fn point(o: &Outcome) -> Point {
    let reactions = reactions(o);
    let row = |label: &str| {
        o.reports
            .iter()
            .find(|(spec, _)| spec.label == label)
            .map(|(spec, r)| row(o, spec, r, &reactions))
    };
    let (shipped, push) = (row("shipped"), row("push-scoped"));
    let evaluations = o.scenario.stable.as_secs_f64() / o.scenario.evaluation.as_secs_f64();
    Point {
        shipped_p95: shipped.as_ref().and_then(|x| x.p95),
        push_p95: push.as_ref().and_then(|x| x.p95),
        shipped_ci: shipped.as_ref().and_then(|x| x.p95_ci),
        push_ci: push.as_ref().and_then(|x| x.p95_ci),
        requests_per_evaluation: shipped
            .filter(|_| evaluations > 0.0)
            .map(|x| x.stable.requests as f64 / evaluations),
    }
}

fn with_ci(v: Option<u64>, ci: Option<(u64, u64)>) -> String {
    match (v, ci) {
        (Some(v), Some((lo, hi))) => format!("{v} ({lo}–{hi})"),
        (Some(v), None) => v.to_string(),
        (None, _) => "-".into(),
    }
}

/// The table, for every scenario that ran both designs.
pub fn section(md: &mut String, outcomes: &[Outcome]) {
    let both: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| {
            ["shipped", "push-scoped"]
                .iter()
                .all(|d| o.reports.iter().any(|(s, _)| s.label == *d))
        })
        .collect();
    if both.is_empty() {
        return;
    }
    md.push_str(
        "\n## Pull no later than push?\n\n\
         At every point: `shipped`'s p95 against `push-scoped`'s (telemetry-manager's \
         design), and `shipped`'s requests per evaluation while nothing changed. \
         `holds` is yes where shipped's p95 is at or below push-scoped's at no more \
         than two requests per evaluation. With 20 transitions per design a p95 is the \
         second largest of them: where the intervals overlap, the two are not told \
         apart.\n\n\
         | scenario | shipped p95 ms (95% CI) | push-scoped p95 ms (95% CI) | shipped requests/evaluation, stable | holds |\n\
         |---|---|---|---|---|\n",
    );
    for o in both {
        let p = point(o);
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            o.scenario.name,
            with_ci(p.shipped_p95, p.shipped_ci),
            with_ci(p.push_p95, p.push_ci),
            p.requests_per_evaluation
                .map_or("-".into(), |r| format!("{r:.2}")),
            match p.holds() {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(shipped: u64, push: u64, requests: f64) -> Point {
        Point {
            shipped_p95: Some(shipped),
            push_p95: Some(push),
            shipped_ci: None,
            push_ci: None,
            requests_per_evaluation: Some(requests),
        }
    }

    #[test]
    fn holds_at_or_below_push_within_two_requests() {
        assert_eq!(point(14, 14, 2.0).holds(), Some(true));
        assert_eq!(point(13, 14, 1.0).holds(), Some(true));
        assert_eq!(point(15, 14, 2.0).holds(), Some(false));
        assert_eq!(point(10, 14, 2.1).holds(), Some(false));
        let unseen = Point {
            shipped_p95: None,
            ..point(1, 1, 1.0)
        };
        assert_eq!(unseen.holds(), None);
    }
}
