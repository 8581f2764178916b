//! The latency plots: CDFs from `latency.csv`, p95 against a sweep and the
//! latency/requests trade-off from `summary.csv`.

use std::collections::BTreeMap;

use alert_poller_experiments::figures::{cdf, per_minute};

use super::axes::Axis;
use super::chart::{Chart, Kind, Point, Series};
use super::data::{Row, is, num, select, setting, sweep, text};

const WHISKERS: &str = "whiskers: 95% bootstrap interval of the p95";

/// The reference CDF: 100 pipelines, 1 s evaluation, no noise, the default
/// resend delay, on the first Prometheus; older data without a scenario
/// column by those columns; failing that, every row.
pub fn cdf_reference(latency: &[Row]) -> Chart {
    let named = |r: &Row| text(r, "scenario") == "eval-1s-100-pipelines";
    let (picked, reference) = if latency.iter().any(named) {
        (latency.iter().filter(|r| named(r)).collect(), true)
    } else {
        select(latency, |r| {
            is(r, "pipelines", 100.0)
                && is(r, "evaluation_s", 1.0)
                && is(r, "noise", 0.0)
                && is(r, "resend_delay_s", 60.0)
                && r.contains_key("pipelines")
                && !text(r, "scenario").ends_with("prometheus3")
        })
    };
    cdf_chart(&picked, reference)
}

/// The headline scenario's CDF; older data without a scenario column by its
/// columns (100 pipelines, 30 s evaluation); failing that, every row.
pub fn cdf_headline(latency: &[Row], headline: Option<&str>) -> Chart {
    let named = |r: &Row| headline.is_some_and(|h| text(r, "scenario") == h);
    let (picked, reference) = if latency.iter().any(named) {
        (latency.iter().filter(|r| named(r)).collect(), true)
    } else {
        select(latency, |r| {
            num(r, "evaluation_s") == Some(30.0) && is(r, "pipelines", 100.0) && is(r, "noise", 0.0)
        })
    };
    cdf_chart(&picked, reference)
}

/// Each design's latencies in `picked` as a CDF, titled by the scenario
/// when `one` says the rows are one scenario's.
fn cdf_chart(picked: &[&Row], one: bool) -> Chart {
    let mut by_design: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in picked {
        if let Some(ms) = num(r, "latency_ms") {
            by_design
                .entry(text(r, "design").into())
                .or_default()
                .push(ms);
        }
    }
    let all: Vec<f64> = by_design.values().flatten().copied().collect();
    let changes = by_design.values().map(Vec::len).max().unwrap_or(0);
    let (title, subtitle) = match picked.first() {
        Some(r) if one => (
            match setting(r) {
                s if s.is_empty() => "Reaction latency".into(),
                s => format!("Reaction latency: {s}"),
            },
            format!(
                "scenario {}, {changes} changes per design",
                text(r, "scenario")
            ),
        ),
        _ => (
            "Reaction latency, all scenarios together".into(),
            "the data has no scenario of the full run's shape".into(),
        ),
    };
    Chart {
        title,
        subtitle,
        x_title: "reaction latency (ms)".into(),
        y_title: "fraction of changes seen within x".into(),
        x: Axis::auto(&all),
        y: Axis::fraction(),
        kind: Kind::Steps,
        series: by_design
            .into_iter()
            .map(|(label, v)| Series {
                label,
                points: cdf(v).into_iter().map(|(x, y)| Point::at(x, y)).collect(),
            })
            .collect(),
        notes: vec![
            "Latency: from the evaluation at which Prometheus fired or resolved the alert \
             to the design seeing it."
                .into(),
        ],
    }
}

/// A row's p95 at `x`, with its interval when the data has one.
fn p95(r: &Row, x: f64) -> Option<Point> {
    let interval = num(r, "p95_lo_ms").zip(num(r, "p95_hi_ms"));
    Some(Point {
        interval,
        p50: num(r, "p50_ms"),
        ..Point::at(x, num(r, "p95_ms")?)
    })
}

/// Every value a latency axis must hold: the points and their intervals.
fn latency_values(series: &[Series]) -> Vec<f64> {
    let points = series.iter().flat_map(|s| &s.points);
    points
        .flat_map(|p| {
            let (lo, hi) = p.interval.unwrap_or((p.y, p.y));
            [p.y, lo, hi].into_iter().chain(p.p50)
        })
        .collect()
}

/// Series of (column `x`, p95) per design, sorted by x; designs with a
/// single point are dropped when others have more (a sweep's shared point).
fn p95_series(rows: &[&Row], x: &str) -> Vec<Series> {
    let mut by_design: BTreeMap<String, Vec<Point>> = BTreeMap::new();
    for r in rows {
        if let Some(p) = num(r, x).and_then(|v| p95(r, v)) {
            let p = Point { p50: None, ..p };
            by_design
                .entry(text(r, "design").into())
                .or_default()
                .push(p);
        }
    }
    let longest = by_design.values().map(Vec::len).max().unwrap_or(0);
    by_design
        .into_iter()
        .filter(|(_, v)| v.len() > 1 || longest <= 1)
        .map(|(label, mut points)| {
            points.sort_by(|a, b| a.x.total_cmp(&b.x));
            Series { label, points }
        })
        .collect()
}

/// p95 against the number of pipelines (1 s evaluation, no noise).
pub fn p95_vs_pipelines(summary: &[Row]) -> Chart {
    let rows = sweep(
        summary,
        "pipelines",
        &[("evaluation_s", 1.0), ("noise", 0.0)],
    );
    let series = p95_series(&rows, "pipelines");
    let xs: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.x))
        .collect();
    Chart {
        title: "p95 reaction latency against pipelines".into(),
        subtitle: format!("1 s evaluation, no unrelated alerts; {WHISKERS}"),
        x_title: "pipelines (Metric, Trace and Log together)".into(),
        y_title: "p95 reaction latency (ms)".into(),
        x: Axis::auto(&xs),
        y: Axis::auto(&latency_values(&series)),
        kind: Kind::Lines,
        series,
        notes: vec!["Designs sit a few pixels apart at each x so their whiskers show.".into()],
    }
}

/// p95 against unrelated active alerts (100 pipelines, 1 s evaluation).
pub fn p95_vs_noise(summary: &[Row]) -> Chart {
    let rows = sweep(
        summary,
        "noise",
        &[("pipelines", 100.0), ("evaluation_s", 1.0)],
    );
    let rows: Vec<&Row> = rows
        .into_iter()
        .filter(|r| r.contains_key("noise"))
        .collect();
    let series = p95_series(&rows, "noise");
    let xs: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.x))
        .collect();
    Chart {
        title: "p95 reaction latency against unrelated alerts".into(),
        subtitle: format!("100 pipelines, 1 s evaluation; {WHISKERS}"),
        x_title: "unrelated active alerts in Prometheus".into(),
        y_title: "p95 reaction latency (ms)".into(),
        x: Axis::auto(&xs),
        y: Axis::auto(&latency_values(&series)),
        kind: Kind::Lines,
        series,
        notes: vec![
            "Only the designs the noise sweep runs; designs sit a few pixels apart at each x."
                .into(),
        ],
    }
}

/// Latency against requests per minute while stable, one point per design
/// of the headline scenario.
pub fn tradeoff(summary: &[Row], headline: Option<&str>) -> Chart {
    let rows: Vec<&Row> = summary
        .iter()
        .filter(|r| headline.is_some_and(|h| text(r, "scenario") == h))
        .collect();
    let series: Vec<Series> = rows
        .iter()
        .filter_map(|r| {
            let stable_s = num(r, "stable_s").filter(|s| *s > 0.0)?;
            let per_min = per_minute(num(r, "stable_requests")?, stable_s);
            Some(Series {
                label: text(r, "design").into(),
                points: vec![p95(r, per_min)?],
            })
        })
        .collect();
    let xs: Vec<f64> = series.iter().map(|s| s.points[0].x).collect();
    let subtitle = match rows.first() {
        Some(r) => format!("scenario {}: {}", text(r, "scenario"), setting(r)),
        None => "no scenario in the data".into(),
    };
    Chart {
        title: "Reaction latency against requests to Prometheus".into(),
        subtitle,
        x_title: "requests to Prometheus per minute while stable".into(),
        y_title: "reaction latency (ms)".into(),
        x: Axis::auto(&xs),
        y: Axis::auto(&latency_values(&series)),
        kind: Kind::Labelled,
        series,
        notes: vec![
            "Filled: p95, whisker: its 95% bootstrap interval; ring: p50. \
             Lower left is better: faster and fewer requests."
                .into(),
        ],
    }
}
