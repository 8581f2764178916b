//! The CSV files as rows of named columns, and the choices of rows the plots
//! share: a sweep's points, the headline scenario.

use std::collections::BTreeMap;
use std::path::Path;

use alert_poller_experiments::figures::{bootstrap_interval, percentile};
use anyhow::{Context, Result};

pub type Row = BTreeMap<String, String>;

/// The scenario the trade-off and the headline CDF show, first found first:
/// telemetry-manager's settings on Prometheus 3, else the 30 s evaluation.
const HEADLINES: [&str; 2] = ["manager-settings-prometheus3", "eval-30s-100-pipelines"];

pub fn rows(path: &Path) -> Result<Vec<Row>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    Ok(lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            header
                .iter()
                .map(|h| h.to_string())
                .zip(l.split(',').map(str::to_owned))
                .collect()
        })
        .collect())
}

pub fn num(r: &Row, k: &str) -> Option<f64> {
    r.get(k).and_then(|v| v.parse::<f64>().ok())
}

pub fn text<'a>(r: &'a Row, k: &str) -> &'a str {
    r.get(k).map_or("", String::as_str)
}

/// Bootstrap draws and seed, as the report's (report/rows.rs), so a filled-in
/// interval is the one the report would have written.
const RESAMPLES: usize = 2000;
const SEED: u64 = 0x5eed;

/// Fills in the p50 and p95 (with the p95's interval) of summary rows
/// written before those columns were, from `latency.csv`'s rows of the
/// same scenario and design.
pub fn fill_percentiles(summary: &mut [Row], latency: &[Row]) {
    for r in summary.iter_mut().filter(|r| !r.contains_key("p95_ms")) {
        let mut ms: Vec<u64> = latency
            .iter()
            .filter(|l| text(l, "scenario") == text(r, "scenario"))
            .filter(|l| text(l, "design") == text(r, "design"))
            .filter_map(|l| text(l, "latency_ms").parse().ok())
            .collect();
        ms.sort_unstable();
        let (Some(p50), Some(p95)) = (percentile(&ms, 50.0), percentile(&ms, 95.0)) else {
            continue;
        };
        let (lo, hi) = bootstrap_interval(&ms, 95.0, RESAMPLES, SEED).unwrap_or((p95, p95));
        for (k, v) in [
            ("p50_ms", p50),
            ("p95_ms", p95),
            ("p95_lo_ms", lo),
            ("p95_hi_ms", hi),
        ] {
            r.insert(k.into(), v.to_string());
        }
    }
}

/// Whether a column matches, counting a missing column (older data) as a match.
pub fn is(r: &Row, k: &str, v: f64) -> bool {
    num(r, k).is_none_or(|x| (x - v).abs() < 1e-9)
}

/// The rows `keep` selects, or all rows when it selects none (the quick run
/// and older data have no rows of the full run's shape); and whether it
/// selected any.
pub fn select(all: &[Row], keep: impl Fn(&Row) -> bool) -> (Vec<&Row>, bool) {
    let kept: Vec<&Row> = all.iter().filter(|r| keep(r)).collect();
    if kept.is_empty() {
        (all.iter().collect(), false)
    } else {
        (kept, true)
    }
}

/// The points of `sweep`: the rows whose `sweeps` column names it; in
/// older data without that column, the rows holding `fixed` (column, value)
/// on the first Prometheus; failing both, all rows if they are one
/// scenario's (the quick run), else none: points of unrelated scenarios
/// would stack up at the same x.
pub fn sweep<'a>(all: &'a [Row], sweep: &str, fixed: &[(&str, f64)]) -> Vec<&'a Row> {
    let named = |r: &Row| text(r, "sweeps").split(';').any(|s| s == sweep);
    if all.iter().any(named) {
        return all.iter().filter(|r| named(r)).collect();
    }
    let (rows, found) = select(all, |r| {
        fixed.iter().all(|(k, v)| is(r, k, *v)) && !text(r, "scenario").ends_with("prometheus3")
    });
    let one = all
        .iter()
        .all(|r| text(r, "scenario") == text(&all[0], "scenario"));
    if found || one { rows } else { Vec::new() }
}

/// The headline scenario's name: the first of [`HEADLINES`] in `summary`,
/// else its first scenario (the quick run's only one), if any.
pub fn headline(summary: &[Row]) -> Option<String> {
    HEADLINES
        .iter()
        .find(|h| summary.iter().any(|r| text(r, "scenario") == **h))
        .map(|h| h.to_string())
        .or_else(|| summary.first().map(|r| text(r, "scenario").to_string()))
        .filter(|h| !h.is_empty())
}

/// A scenario's setting in words, from one of its rows: "100 pipelines,
/// 30 s evaluation", with the noise and Prometheus 3 when they apply.
pub fn setting(r: &Row) -> String {
    let mut words = Vec::new();
    if let Some(p) = num(r, "pipelines") {
        words.push(format!("{p} pipeline{}", if p == 1.0 { "" } else { "s" }));
    }
    if let Some(e) = num(r, "evaluation_s") {
        words.push(format!("{e} s evaluation"));
    }
    if let Some(n) = num(r, "noise").filter(|n| *n > 0.0) {
        words.push(format!("{n} unrelated alerts"));
    }
    if text(r, "scenario").contains("prometheus3") {
        words.push("Prometheus 3".into());
    }
    words.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, &str)]) -> Row {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_headline_is_the_managers_settings_then_the_30s_scenario() {
        let a = row(&[("scenario", "eval-1s-1-pipelines")]);
        let b = row(&[("scenario", "eval-30s-100-pipelines")]);
        let c = row(&[("scenario", "manager-settings-prometheus3")]);
        assert_eq!(
            headline(&[a.clone(), b.clone()]).unwrap(),
            "eval-30s-100-pipelines"
        );
        assert_eq!(
            headline(&[a.clone(), c, b]).unwrap(),
            "manager-settings-prometheus3"
        );
        assert_eq!(headline(&[a]).unwrap(), "eval-1s-1-pipelines");
        assert_eq!(headline(&[]), None);
    }

    #[test]
    fn older_summaries_get_percentiles_from_the_latencies() {
        let mut summary = [
            row(&[("scenario", "s"), ("design", "a")]),
            row(&[("scenario", "s"), ("design", "b"), ("p95_ms", "7")]),
        ];
        let latency: Vec<Row> = (1..=20)
            .map(|i| {
                let ms = (i * 10).to_string();
                row(&[("scenario", "s"), ("design", "a"), ("latency_ms", &ms)])
            })
            .collect();
        fill_percentiles(&mut summary, &latency);
        assert_eq!(num(&summary[0], "p95_ms"), Some(190.0));
        assert_eq!(num(&summary[0], "p50_ms"), Some(110.0));
        assert!(num(&summary[0], "p95_lo_ms").unwrap() <= 190.0);
        assert_eq!(
            summary[1].get("p50_ms"),
            None,
            "rows with figures are left alone"
        );
    }

    #[test]
    fn sweeps_fall_back_on_older_data() {
        let new = [
            row(&[("sweeps", "pipelines;noise"), ("noise", "0")]),
            row(&[("sweeps", "noise"), ("noise", "10")]),
            row(&[("sweeps", "evaluation"), ("noise", "0")]),
        ];
        assert_eq!(sweep(&new, "noise", &[]).len(), 2);
        let old = [
            row(&[("scenario", "a"), ("pipelines", "100"), ("noise", "10")]),
            row(&[("scenario", "b"), ("pipelines", "10"), ("noise", "0")]),
        ];
        assert_eq!(sweep(&old, "noise", &[("pipelines", 100.0)]).len(), 1);
        assert!(sweep(&old, "noise", &[("pipelines", 5.0)]).is_empty());
        let quick = [row(&[("scenario", "quick")]), row(&[("scenario", "quick")])];
        assert_eq!(sweep(&quick, "noise", &[("pipelines", 100.0)]).len(), 2);
    }
}
