//! SVG plots from the CSV files the report writes, so they can be redrawn
//! from committed data (`compare --replot --out experiments`) without a rerun.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

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

fn rows(path: &Path) -> Result<Vec<BTreeMap<String, String>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    Ok(lines
        .map(|l| {
            header
                .iter()
                .map(|h| h.to_string())
                .zip(l.split(',').map(str::to_owned))
                .collect()
        })
        .collect())
}

/// A plot frame with axes, title and legend; `series` are (name, points).
fn chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    log_x: bool,
) -> String {
    let xs = series.iter().flat_map(|(_, p)| p.iter().map(|q| q.0));
    let ys = series.iter().flat_map(|(_, p)| p.iter().map(|q| q.1));
    let tx = |x: f64| if log_x { x.max(1.0).log10() } else { x };
    let (x_min, x_max) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| {
        (a.min(tx(x)), b.max(tx(x)))
    });
    let y_max = ys.fold(0.0f64, f64::max).max(1e-9) * 1.05;
    let x_span = (x_max - x_min).max(1e-9);
    let px = |x: f64| LEFT + (tx(x) - x_min) / x_span * (W - LEFT - RIGHT);
    let py = |y: f64| H - BOTTOM - y / y_max * (H - TOP - BOTTOM);
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
    for i in 0..=4 {
        let y = y_max * i as f64 / 4.0;
        let _ = writeln!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="end">{}</text><line x1="{LEFT}" y1="{}" x2="{}" y2="{}" stroke="#ddd"/>"##,
            LEFT - 6.0,
            py(y) + 4.0,
            if y_max >= 10.0 {
                format!("{y:.0}")
            } else {
                format!("{y:.2}")
            },
            py(y),
            W - RIGHT,
            py(y)
        );
    }
    for i in 0..=4 {
        let v = x_min + x_span * i as f64 / 4.0;
        let shown = if log_x { 10f64.powf(v) } else { v };
        let x = LEFT + (v - x_min) / x_span * (W - LEFT - RIGHT);
        let _ = writeln!(
            svg,
            r#"<text x="{x}" y="{}" text-anchor="middle">{shown:.0}</text>"#,
            H - BOTTOM + 16.0
        );
    }
    for (i, (name, points)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
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
                px(*x),
                py(*y)
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

/// Draws `latency-cdf.svg` and `cost-vs-pipelines.svg` into `out`.
pub fn render(out: &Path) -> Result<()> {
    let latency = rows(&out.join("latency.csv"))?;
    let mut by_design: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in &latency {
        if let Some(ms) = r.get("latency_ms").and_then(|v| v.parse::<f64>().ok()) {
            by_design.entry(r["design"].clone()).or_default().push(ms);
        }
    }
    let cdf: Vec<(String, Vec<(f64, f64)>)> = by_design
        .into_iter()
        .map(|(design, mut v)| {
            v.sort_by(f64::total_cmp);
            let n = v.len() as f64;
            let points = v
                .iter()
                .enumerate()
                .map(|(i, ms)| (*ms, (i + 1) as f64 / n))
                .collect();
            (design, points)
        })
        .collect();
    std::fs::write(
        out.join("latency-cdf.svg"),
        chart(
            "Reaction latency after the evaluation (all scenarios)",
            "latency, ms",
            "fraction of changes",
            &cdf,
            false,
        ),
    )?;

    let summary = rows(&out.join("summary.csv"))?;
    let mut requests: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut reconciles: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for r in &summary {
        let num = |k: &str| r.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        let minutes = num("stable_s") / 60.0;
        if minutes <= 0.0 {
            continue;
        }
        let pipelines = num("pipelines");
        requests
            .entry(r["design"].clone())
            .or_default()
            .push((pipelines, num("stable_requests") / minutes));
        reconciles
            .entry(r["design"].clone())
            .or_default()
            .push((pipelines, num("stable_reconciles") / minutes));
    }
    let series = |m: BTreeMap<String, Vec<(f64, f64)>>| -> Vec<(String, Vec<(f64, f64)>)> {
        m.into_iter()
            .map(|(k, mut v)| {
                v.sort_by(|a, b| a.0.total_cmp(&b.0));
                (k, v)
            })
            .collect()
    };
    std::fs::write(
        out.join("requests-vs-pipelines.svg"),
        chart(
            "Requests to Prometheus per minute while stable",
            "pipelines (log)",
            "requests / min",
            &series(requests),
            true,
        ),
    )?;
    std::fs::write(
        out.join("reconciles-vs-pipelines.svg"),
        chart(
            "Reconciles per minute while stable",
            "pipelines (log)",
            "reconciles / min",
            &series(reconciles),
            true,
        ),
    )?;
    Ok(())
}
