//! SVG plots from the CSV files the report writes, so they can be redrawn
//! from committed data (`compare --replot --out experiments`) without a rerun.
//!
//! The files, in `--out`:
//!
//! - `latency-vs-requests.svg`: the trade-off, p95 (with its interval) and
//!   p50 latency against requests to Prometheus per minute, one labelled
//!   point per design, for the headline scenario.
//! - `latency-cdf-headline.svg`: each design's latency CDF in the headline
//!   scenario.
//! - `latency-cdf.svg`: each design's latency CDF at 100 pipelines and 1 s
//!   evaluation (the reference of the sweeps).
//! - `p95-vs-pipelines.svg`, `p95-vs-noise.svg`: p95 latency with its 95%
//!   bootstrap interval against pipelines and against unrelated alerts.
//! - `requests-vs-pipelines.svg`, `reconciles-vs-pipelines.svg`: the cost
//!   while stable against pipelines.
//! - `solo-prometheus-cpu.svg` (with solo runs only): Prometheus' CPU with
//!   each design alone.
//!
//! The headline scenario is `manager-settings-prometheus3` when the data has
//! it, else `eval-30s-100-pipelines`, else the first scenario. Every design
//! has one look in every plot ([`colours`]). Columns added later (noise,
//! resend delay, sweeps, percentiles, `solo.csv`) may be missing from older
//! data; percentiles are then worked out from `latency.csv` as the report
//! does, and each plot falls back to the rows it can find, all rows at
//! worst; a plot without data says so.

mod axes;
mod bars;
mod chart;
mod colours;
mod cost;
mod data;
mod labels;
mod latency;
mod svg;

use std::path::Path;

use anyhow::Result;

/// Draws the files the module documentation lists.
pub fn render(out: &Path) -> Result<()> {
    let latency = data::rows(&out.join("latency.csv"))?;
    let mut summary = data::rows(&out.join("summary.csv"))?;
    data::fill_percentiles(&mut summary, &latency);
    let headline = data::headline(&summary);
    let headline = headline.as_deref();
    let charts = [
        (
            "latency-vs-requests.svg",
            latency::tradeoff(&summary, headline),
        ),
        (
            "latency-cdf-headline.svg",
            latency::cdf_headline(&latency, headline),
        ),
        ("latency-cdf.svg", latency::cdf_reference(&latency)),
        ("p95-vs-pipelines.svg", latency::p95_vs_pipelines(&summary)),
        ("p95-vs-noise.svg", latency::p95_vs_noise(&summary)),
        (
            "requests-vs-pipelines.svg",
            cost::per_pipelines(
                &summary,
                "stable_requests",
                "Requests to Prometheus",
                "requests",
            ),
        ),
        (
            "reconciles-vs-pipelines.svg",
            cost::per_pipelines(&summary, "stable_reconciles", "Reconciles", "reconciles"),
        ),
    ];
    for (name, chart) in &charts {
        std::fs::write(out.join(name), chart::draw(chart))?;
    }
    let solo_path = out.join("solo.csv");
    let solo = if solo_path.exists() {
        data::rows(&solo_path)?
    } else {
        Vec::new()
    };
    let cpu = cost::solo_cpu(&solo);
    if !cpu.is_empty() {
        std::fs::write(
            out.join("solo-prometheus-cpu.svg"),
            bars::draw(
                "Prometheus CPU with one design attached",
                "solo runs: each design alone with a Prometheus of its own",
                "Prometheus CPU (CPU seconds per minute)",
                &cpu,
            ),
        )?;
    }
    Ok(())
}
