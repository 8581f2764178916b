//! Turns the outcomes into latency figures, CSV files and the Markdown report.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use crate::Outcome;
use crate::agent::AgentReport;
use crate::truth::Change;

/// One measured reaction: a design noticing a change Prometheus made.
#[derive(Clone, Debug)]
pub struct Reaction {
    pub scenario: String,
    pub design: String,
    pub pipeline: String,
    /// `fire` (the pipeline turned False) or `resolve` (back to True).
    pub kind: &'static str,
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
                fired_ms,
                resolved_ms,
                ..
            } = c;
            for (kind, truth, status) in [
                ("fire", fired_ms, "False"),
                ("resolve", resolved_ms, "True"),
            ] {
                let Some(truth) = truth else { continue };
                out.push(Reaction {
                    scenario: o.scenario.name.clone(),
                    design: spec.label.clone(),
                    pipeline: pipeline.clone(),
                    kind,
                    truth_ms: *truth,
                    seen_ms: first_after(report, pipeline, status, *truth),
                });
            }
        }
    }
    out
}

/// Changes some design did not see, or Prometheus never showed.
pub fn missed(outcomes: &[Outcome]) -> Vec<String> {
    let mut out = Vec::new();
    for o in outcomes {
        for c in &o.truths {
            if c.fired_ms.is_none() || c.resolved_ms.is_none() {
                out.push(format!(
                    "{}: Prometheus shows no complete firing run for {}",
                    o.scenario.name, c.pipeline
                ));
            }
        }
        for r in reactions(o) {
            if r.seen_ms.is_none() {
                out.push(format!(
                    "{}: {} never saw the {} of {}",
                    r.scenario, r.design, r.kind, r.pipeline
                ));
            }
        }
    }
    out
}

fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    Some(sorted[rank.min(sorted.len() - 1)])
}

fn ms(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

/// The headline table, one row per scenario and design.
pub fn summary_table(outcomes: &[Outcome]) -> String {
    let mut t = String::from(
        "| scenario | design | latency p50 ms | p95 ms | max ms | requests | MiB read | requests/min stable | reconciles | reconciles/min stable | status writes | notifications | CPU s | peak RSS MiB |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for o in outcomes {
        let reactions = reactions(o);
        let minutes = o.scenario.stable.as_secs_f64() / 60.0;
        for (spec, r) in &o.reports {
            let mut lat: Vec<u64> = reactions
                .iter()
                .filter(|x| x.design == spec.label)
                .filter_map(Reaction::latency_ms)
                .collect();
            lat.sort_unstable();
            let (stable_requests, stable_reconciles) = o
                .stable_counts
                .iter()
                .find(|(l, ..)| *l == spec.label)
                .map_or((0, 0), |(_, q, r)| (*q, *r));
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {} | {:.1} | {} | {} | {:.2} | {:.1} |",
                o.scenario.name,
                spec.label,
                ms(percentile(&lat, 50.0)),
                ms(percentile(&lat, 95.0)),
                ms(lat.last().copied()),
                r.prometheus_requests,
                r.prometheus_bytes as f64 / 1048576.0,
                stable_requests as f64 / minutes,
                r.reconciles,
                stable_reconciles as f64 / minutes,
                r.status_writes,
                r.notifications,
                r.cpu_seconds,
                r.peak_rss_kib as f64 / 1024.0,
            );
        }
    }
    t
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0.0, |kb| kb as f64 / 1048576.0);
    let prometheus = std::process::Command::new(
        std::env::var("PROMETHEUS_BIN").unwrap_or_else(|_| "prometheus".into()),
    )
    .arg("--version")
    .output()
    .ok()
    .and_then(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .map(str::to_owned)
    })
    .unwrap_or_default();
    format!("{cores} cores ({cpu}), {mem:.0} GiB memory; {prometheus}")
}

pub fn write(out: &Path, outcomes: &[Outcome], quick: bool) -> Result<()> {
    std::fs::create_dir_all(out)?;
    let mut csv =
        String::from("scenario,design,pipeline,kind,truth_unix_ms,seen_unix_ms,latency_ms\n");
    for o in outcomes {
        for r in reactions(o) {
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{},{}",
                r.scenario,
                r.design,
                r.pipeline,
                r.kind,
                r.truth_ms,
                ms(r.seen_ms),
                ms(r.latency_ms())
            );
        }
    }
    std::fs::write(out.join("latency.csv"), csv)?;

    let mut summary = String::from(
        "scenario,design,evaluation_s,pipelines,requests,bytes,stable_requests,stable_s,reconciles,stable_reconciles,status_writes,notifications,cpu_s,peak_rss_kib,prometheus_cpu_s,duration_s\n",
    );
    for o in outcomes {
        for (spec, r) in &o.reports {
            let (sq, sr) = o
                .stable_counts
                .iter()
                .find(|(l, ..)| *l == spec.label)
                .map_or((0, 0), |(_, q, r)| (*q, *r));
            let _ = writeln!(
                summary,
                "{},{},{},{},{},{},{},{},{},{},{},{},{:.3},{},{:.3},{:.1}",
                o.scenario.name,
                spec.label,
                o.scenario.evaluation.as_secs_f64(),
                o.scenario.pipelines,
                r.prometheus_requests,
                r.prometheus_bytes,
                sq,
                o.scenario.stable.as_secs(),
                r.reconciles,
                sr,
                r.status_writes,
                r.notifications,
                r.cpu_seconds,
                r.peak_rss_kib,
                o.prometheus_cpu,
                o.duration.as_secs_f64()
            );
        }
    }
    std::fs::write(out.join("summary.csv"), summary)?;

    let command = if quick {
        "cargo run --release --bin compare -- --quick"
    } else {
        "cargo run --release --bin compare -- --out experiments"
    };
    let mut md = format!(
        "# Push vs pull: measured\n\nProduced by `{command}` on {}.\n\n\
         Latency is from the Prometheus evaluation at which an alert fired (or stopped\n\
         firing), read back from Prometheus' `ALERTS` series, to the moment the design's\n\
         reconcile computed the new status. Requests and bytes are the designs' own\n\
         requests to `/api/v1/alerts`. The stable columns count only the final phase in\n\
         which nothing changed. Prometheus CPU is shared by all designs of a scenario.\n\n",
        machine()
    );
    md.push_str(&summary_table(outcomes));
    md.push_str("\n| scenario | evaluation | pipelines | injected changes | resend delay | Prometheus CPU s | duration s |\n|---|---|---|---|---|---|---|\n");
    for o in outcomes {
        let _ = writeln!(
            md,
            "| {} | {:?} | {} | {} | {} | {:.2} | {:.0} |",
            o.scenario.name,
            o.scenario.evaluation,
            o.scenario.pipelines,
            o.scenario.changes,
            o.scenario
                .resend_delay
                .map_or("default (1m)".into(), |d| format!("{d:?}")),
            o.prometheus_cpu,
            o.duration.as_secs_f64()
        );
    }
    md.push_str(
        "\n![latency CDF](latency-cdf.svg)\n\n![requests vs pipelines](requests-vs-pipelines.svg)\n\n\
         ![reconciles vs pipelines](reconciles-vs-pipelines.svg)\n\n\
         Raw data: `latency.csv` (one row per design and change), `summary.csv`.\n",
    );
    std::fs::write(out.join("report.md"), md)?;
    crate::plot::render(out)
}
