//! SVG plots from the CSV files the report writes, so they can be redrawn
//! from committed data (`compare --replot --out experiments`) without a rerun.
//! Columns added later (noise, resend delay, sweeps, `solo.csv`) may be
//! missing from older data; each plot then falls back to all rows.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use alert_poller_experiments::figures::{cdf, per_minute};
use anyhow::{Context, Result};

const W: f64 = 720.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 190.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const COLOURS: [&str; 8] = [
    "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666",
];
/// On a log y axis zero cannot be drawn; values below this sit on the floor.
const LOG_FLOOR: f64 = 0.1;

type Row = BTreeMap<String, String>;

fn rows(path: &Path) -> Result<Vec<Row>> {
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

fn num(r: &Row, k: &str) -> Option<f64> {
    r.get(k).and_then(|v| v.parse::<f64>().ok())
}

/// Whether a column matches, counting a missing column (older data) as a match.
fn is(r: &Row, k: &str, v: f64) -> bool {
    num(r, k).is_none_or(|x| (x - v).abs() < 1e-9)
}

/// The rows `keep` selects, or all rows when it selects none (the quick run
/// and older data have no rows of the full run's shape).
fn select(all: &[Row], keep: impl Fn(&Row) -> bool) -> (Vec<&Row>, bool) {
    let kept: Vec<&Row> = all.iter().filter(|r| keep(r)).collect();
    if kept.is_empty() {
        (all.iter().collect(), false)
    } else {
        (kept, true)
    }
}

/// Tick positions (in axis units, i.e. log10 on a log axis) and labels.
fn ticks(min: f64, max: f64, log: bool) -> Vec<(f64, String)> {
    if log {
        let (a, b) = (min.floor() as i32, max.ceil() as i32);
        (a..=b)
            .map(|e| {
                let v = 10f64.powi(e);
                let label = if v >= 1.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v}")
                };
                (e as f64, label)
            })
            .filter(|(e, _)| *e >= min - 1e-9 && *e <= max + 1e-9)
            .collect()
    } else {
        let span = max - min;
        (0..=4)
            .map(|i| {
                let v = min + span * i as f64 / 4.0;
                let label = if max.abs() >= 10.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.2}")
                };
                (v, label)
            })
            .collect()
    }
}

/// A plot frame with axes, title and legend; `series` are (name, points).
fn chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    log_x: bool,
    log_y: bool,
) -> String {
    let tx = |x: f64| if log_x { x.max(1.0).log10() } else { x };
    let ty = |y: f64| if log_y { y.max(LOG_FLOOR).log10() } else { y };
    let xs = series.iter().flat_map(|(_, p)| p.iter().map(|q| tx(q.0)));
    let ys = series.iter().flat_map(|(_, p)| p.iter().map(|q| ty(q.1)));
    let (x_min, x_max) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
    let (x_min, x_max) = if x_min > x_max {
        (0.0, 1.0)
    } else {
        (x_min, x_max)
    };
    let (y_min, y_max) = if log_y {
        let (a, b) = ys.fold((f64::MAX, f64::MIN), |(a, b), y| (a.min(y), b.max(y)));
        if a > b {
            (0.0, 1.0)
        } else {
            (a.floor(), b.ceil().max(a.floor() + 1.0))
        }
    } else {
        (0.0, ys.fold(0.0f64, f64::max).max(1e-9) * 1.05)
    };
    let x_span = (x_max - x_min).max(1e-9);
    let y_span = (y_max - y_min).max(1e-9);
    let px = |x: f64| LEFT + (x - x_min) / x_span * (W - LEFT - RIGHT);
    let py = |y: f64| H - BOTTOM - (y - y_min) / y_span * (H - TOP - BOTTOM);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="22" font-size="15" text-anchor="middle">{title}</text>
<line x1="{LEFT}" y1="{}" x2="{}" y2="{}" stroke="black"/>
<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{}" stroke="black"/>
<text x="{}" y="{}" text-anchor="middle">{x_label}</text>
<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">{y_label}</text>
"#,
        W / 2.0,
        H - BOTTOM,
        W - RIGHT,
        H - BOTTOM,
        H - BOTTOM,
        (LEFT + W - RIGHT) / 2.0,
        H - 12.0,
        (TOP + H - BOTTOM) / 2.0,
        (TOP + H - BOTTOM) / 2.0,
    );
    for (y, label) in ticks(y_min, y_max, log_y) {
        let _ = writeln!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="end">{label}</text><line x1="{LEFT}" y1="{}" x2="{}" y2="{}" stroke="#ddd"/>"##,
            LEFT - 6.0,
            py(y) + 4.0,
            py(y),
            W - RIGHT,
            py(y)
        );
    }
    for (x, label) in ticks(x_min, x_max, log_x) {
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">{label}</text>"#,
            px(x),
            H - BOTTOM + 16.0
        );
    }
    for (i, (name, points)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(tx(*x)), py(ty(*y))))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        );
        for (x, y) in points.iter().filter(|_| points.len() < 8) {
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"/>"#,
                px(tx(*x)),
                py(ty(*y))
            );
        }
        let ly = TOP + 16.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="3"/><text x="{}" y="{}">{name}</text>"#,
            W - RIGHT + 12.0,
            W - RIGHT + 32.0,
            W - RIGHT + 38.0,
            ly + 4.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// Horizontal bars, one per (name, value), with the value written beside.
fn bars(title: &str, x_label: &str, bars: &[(String, f64)]) -> String {
    let left = 190.0;
    let row = 26.0;
    let height = TOP + BOTTOM + row * bars.len() as f64;
    let max = bars.iter().map(|b| b.1).fold(0.0f64, f64::max).max(1e-9) * 1.15;
    let px = |v: f64| left + v.max(0.0) / max * (W - left - 40.0);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="22" font-size="15" text-anchor="middle">{title}</text>
<line x1="{left}" y1="{TOP}" x2="{left}" y2="{}" stroke="black"/>
<text x="{}" y="{}" text-anchor="middle">{x_label}</text>
"#,
        W / 2.0,
        height - BOTTOM,
        (left + W - 40.0) / 2.0,
        height - 12.0,
    );
    for (i, (name, v)) in bars.iter().enumerate() {
        let y = TOP + row * i as f64;
        let colour = COLOURS[i % COLOURS.len()];
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{name}</text><rect x="{left}" y="{}" width="{:.1}" height="{}" fill="{colour}"/><text x="{:.1}" y="{}">{v:.2}</text>"#,
            left - 6.0,
            y + row / 2.0 + 4.0,
            y + 4.0,
            px(*v) - left,
            row - 8.0,
            px(*v) + 4.0,
            y + row / 2.0 + 4.0,
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn series(m: BTreeMap<String, Vec<(f64, f64)>>) -> Vec<(String, Vec<(f64, f64)>)> {
    m.into_iter()
        .map(|(k, mut v)| {
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
            (k, v)
        })
        .collect()
}

/// Draws `latency-cdf.svg`, `requests-vs-pipelines.svg`,
/// `reconciles-vs-pipelines.svg` and, with solo runs, `solo-prometheus-cpu.svg`.
pub fn render(out: &Path) -> Result<()> {
    let latency = rows(&out.join("latency.csv"))?;
    // The reference scenario: 100 pipelines, 1s evaluation, no noise, the
    // default resend delay; the other sweeps would mix conditions.
    let (picked, reference) = select(&latency, |r| {
        is(r, "pipelines", 100.0)
            && is(r, "evaluation_s", 1.0)
            && is(r, "noise", 0.0)
            && is(r, "resend_delay_s", 60.0)
            && r.contains_key("pipelines")
    });
    let mut by_design: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in picked {
        if let Some(ms) = num(r, "latency_ms") {
            by_design.entry(r["design"].clone()).or_default().push(ms);
        }
    }
    let curves: Vec<(String, Vec<(f64, f64)>)> = by_design
        .into_iter()
        .map(|(design, v)| (design, cdf(v)))
        .collect();
    std::fs::write(
        out.join("latency-cdf.svg"),
        chart(
            if reference {
                "Reaction latency, 100 pipelines, evaluation 1s"
            } else {
                "Reaction latency after the evaluation (all scenarios)"
            },
            "latency, ms (log)",
            "fraction of changes",
            &curves,
            true,
            false,
        ),
    )?;

    let summary = rows(&out.join("summary.csv"))?;
    let (picked, _) = select(&summary, |r| {
        r.get("sweeps")
            .is_some_and(|s| s.split(';').any(|k| k == "pipelines"))
    });
    let mut requests: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut reconciles: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for r in picked {
        let stable_s = num(r, "stable_s").unwrap_or(0.0);
        if stable_s <= 0.0 {
            continue;
        }
        let pipelines = num(r, "pipelines").unwrap_or(0.0);
        let per_min = |k: &str| per_minute(num(r, k).unwrap_or(0.0), stable_s);
        requests
            .entry(r["design"].clone())
            .or_default()
            .push((pipelines, per_min("stable_requests")));
        reconciles
            .entry(r["design"].clone())
            .or_default()
            .push((pipelines, per_min("stable_reconciles")));
    }
    // Push-all's cost grows with the pipelines by orders of magnitude while
    // pull stays flat, so only a log axis shows both.
    std::fs::write(
        out.join("requests-vs-pipelines.svg"),
        chart(
            "Requests to Prometheus per minute while stable",
            "pipelines (log)",
            "requests / min (log; 0 drawn at 0.1)",
            &series(requests),
            true,
            true,
        ),
    )?;
    std::fs::write(
        out.join("reconciles-vs-pipelines.svg"),
        chart(
            "Reconciles per minute while stable",
            "pipelines (log)",
            "reconciles / min (log; 0 drawn at 0.1)",
            &series(reconciles),
            true,
            true,
        ),
    )?;

    let solo_path = out.join("solo.csv");
    let solo = if solo_path.exists() {
        rows(&solo_path)?
    } else {
        Vec::new()
    };
    let cpu: Vec<(String, f64)> = solo
        .iter()
        .filter_map(|r| {
            Some((
                r.get("design")?.clone(),
                per_minute(num(r, "prometheus_cpu_s")?, num(r, "measured_s")?),
            ))
        })
        .collect();
    if !cpu.is_empty() {
        std::fs::write(
            out.join("solo-prometheus-cpu.svg"),
            bars(
                "Prometheus CPU with one design attached (solo runs)",
                "Prometheus CPU seconds per minute",
                &cpu,
            ),
        )?;
    }
    Ok(())
}
