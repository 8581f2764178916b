//! One design's figures in one scenario (a [`Row`]): percentiles with their
//! bootstrap intervals, cost while stable, and the table cells every
//! per-design table shares.

use std::fmt::Write as _;

use alert_poller_experiments::figures::{
    bootstrap_interval, cpu_ms_per_request, kib_per_request, per_minute, percentile,
};

use super::{MIB, ms};
use crate::agent::AgentReport;
use crate::designs::DesignSpec;
use crate::outcome::{Outcome, Stable};
use crate::report::reactions::{Reaction, reactions};

/// The figures of one design in one scenario.
pub struct Row {
    pub p50: Option<u64>,
    pub p95: Option<u64>,
    /// 95% bootstrap intervals of p50 and p95.
    pub p50_ci: Option<(u64, u64)>,
    pub p95_ci: Option<(u64, u64)>,
    pub max: Option<u64>,
    pub seen: usize,
    pub expected: usize,
    pub requests: u64,
    pub mib: f64,
    pub kib_per_request: Option<f64>,
    pub cpu_ms_per_request: Option<f64>,
    pub stable_requests_min: f64,
    pub stable_reconciles_min: f64,
    pub stable: Stable,
    pub report: AgentReport,
}

/// The table cells from the design's name on, shared by every per-design table.
pub(super) fn cells(label: &str, x: &Row) -> String {
    format!(
        "{label} | {} | {} | {} | {}/{} | {} | {:.1} | {} | {:.1} | {} | {:.1} | {} | {} | {:.2} | {} | {:.1}",
        with_interval(x.p50, x.p50_ci),
        with_interval(x.p95, x.p95_ci),
        ms(x.max),
        x.seen,
        x.expected,
        x.requests,
        x.mib,
        kib(x.kib_per_request),
        x.stable_requests_min,
        x.report.reconciles,
        x.stable_reconciles_min,
        x.report.status_writes,
        x.report.notifications,
        x.report.cpu_seconds,
        x.cpu_ms_per_request
            .map_or("-".into(), |v| format!("{v:.2}")),
        x.report.peak_rss_kib as f64 / 1024.0,
    )
}

pub fn row(o: &Outcome, spec: &DesignSpec, r: &AgentReport, reactions: &[Reaction]) -> Row {
    let mine: Vec<&Reaction> = reactions
        .iter()
        .filter(|x| x.design == spec.label)
        .collect();
    let mut lat: Vec<u64> = mine.iter().filter_map(|x| x.latency_ms()).collect();
    lat.sort_unstable();
    let stable = o
        .stable
        .iter()
        .find(|s| s.label == spec.label)
        .cloned()
        .unwrap_or_default();
    let stable_s = o.scenario.stable.as_secs_f64();
    Row {
        p50: percentile(&lat, 50.0),
        p95: percentile(&lat, 95.0),
        p50_ci: bootstrap_interval(&lat, 50.0, RESAMPLES, SEED),
        p95_ci: bootstrap_interval(&lat, 95.0, RESAMPLES, SEED),
        max: lat.last().copied(),
        seen: lat.len(),
        expected: mine.len(),
        requests: r.prometheus_requests,
        mib: r.prometheus_bytes as f64 / MIB,
        kib_per_request: kib_per_request(r.prometheus_bytes, r.prometheus_requests),
        cpu_ms_per_request: cpu_ms_per_request(r.cpu_seconds, r.prometheus_requests),
        stable_requests_min: per_minute(stable.requests as f64, stable_s),
        stable_reconciles_min: per_minute(stable.reconciles as f64, stable_s),
        stable,
        report: r.clone(),
    }
}

/// Bootstrap draws per interval, and their seed (fixed, so a report is
/// reproducible).
const RESAMPLES: usize = 2000;

const SEED: u64 = 0x5eed;

/// A percentile with its interval: `120 (95–160)`.
fn with_interval(v: Option<u64>, ci: Option<(u64, u64)>) -> String {
    match (v, ci) {
        (Some(v), Some((lo, hi))) if lo != hi => format!("{v} ({lo}–{hi})"),
        (v, _) => ms(v),
    }
}

pub(super) fn kib(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}"))
}

/// Every row of every scenario (printed at the end of a run).
pub fn summary_table<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> String {
    let mut t = String::from(
        "| scenario | design | latency p50 ms (95% CI) | p95 ms (95% CI) | max ms | seen | requests | MiB read | KiB/request | requests/min stable | reconciles | reconciles/min stable | status writes | notifications | CPU s | CPU ms/request | peak RSS MiB |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for o in outcomes {
        let reactions = reactions(o);
        for (spec, r) in &o.reports {
            let x = row(o, spec, r, &reactions);
            let _ = writeln!(t, "| {} | {} |", o.scenario.name, cells(&spec.label, &x));
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::outcome;

    #[test]
    fn percentiles_show_their_interval() {
        assert_eq!(with_interval(Some(120), Some((95, 160))), "120 (95–160)");
        // No doubt, or no figure: nothing to add.
        assert_eq!(with_interval(Some(7), Some((7, 7))), "7");
        assert_eq!(with_interval(None, None), "-");
    }

    #[test]
    fn row_figures() {
        let o = outcome();
        let reactions = reactions(&o);
        let (spec, report) = &o.reports[0];
        let a = row(&o, spec, report, &reactions);
        assert_eq!(
            (a.p50, a.p95, a.max, a.seen, a.expected),
            (Some(200), Some(500), Some(500), 3, 3)
        );
        assert_eq!(a.kib_per_request, Some(0.5));
        // 30 requests and 5 reconciles over the quick run's 15 s stable phase.
        assert_eq!(
            (a.stable_requests_min, a.stable_reconciles_min),
            (120.0, 20.0)
        );
        let (spec, report) = &o.reports[1];
        let b = row(&o, spec, report, &reactions);
        assert_eq!(
            (b.p50, b.p95, b.max, b.seen, b.expected),
            (Some(300), Some(300), Some(300), 1, 3)
        );
        // No stable counts recorded for `b`: zero, not a missing row.
        assert_eq!((b.stable_requests_min, b.stable_reconciles_min), (0.0, 0.0));
    }
}
