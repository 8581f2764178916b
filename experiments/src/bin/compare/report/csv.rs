//! The raw data beside the report: `latency.csv`, `summary.csv` and
//! `solo.csv`, which `compare --replot` draws the plots from.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use super::{Results, ms, resend};
use crate::report::reactions::reactions;
use crate::report::rows::row;
use crate::scenarios::Scenario;

/// The columns that say under which conditions a row was measured.
fn conditions(s: &Scenario) -> String {
    format!(
        "{},{},{},{}",
        s.pipelines,
        s.evaluation.as_secs_f64(),
        s.noise,
        resend(s).as_secs_f64()
    )
}

pub(super) fn write_csv(out: &Path, r: &Results) -> Result<()> {
    std::fs::write(out.join("latency.csv"), latency_csv(r))?;
    std::fs::write(out.join("summary.csv"), summary_csv(r))?;
    // Always written, if only the header, so a replot never draws a stale
    // solo plot from an earlier run.
    std::fs::write(out.join("solo.csv"), solo_csv(r))?;
    Ok(())
}

/// One row per design and change.
fn latency_csv(r: &Results) -> String {
    let mut csv = String::from(
        "scenario,design,pipelines,evaluation_s,noise,resend_delay_s,pipeline,pipeline_kind,change,truth_unix_ms,seen_unix_ms,latency_ms\n",
    );
    for o in r.outcomes {
        for x in reactions(o) {
            let _ = writeln!(
                csv,
                "{},{},{},{},{},{},{},{},{}",
                x.scenario,
                x.design,
                conditions(&o.scenario),
                x.pipeline,
                x.pipeline_kind,
                x.edge,
                x.truth_ms,
                ms(x.seen_ms),
                ms(x.latency_ms())
            );
        }
    }
    csv
}

/// One row per scenario and design. `sweeps` is `;`-separated so the file
/// stays plain comma-separated.
fn summary_csv(r: &Results) -> String {
    let mut summary = String::from(
        "scenario,sweeps,design,pipelines,evaluation_s,noise,resend_delay_s,changes,requests,bytes,stable_requests,stable_bytes,stable_s,reconciles,stable_reconciles,status_writes,notifications,cpu_s,peak_rss_kib,changes_seen,changes_expected,prometheus_cpu_s,duration_s,p50_ms,p50_lo_ms,p50_hi_ms,p95_ms,p95_lo_ms,p95_hi_ms\n",
    );
    for o in r.outcomes {
        let reactions = reactions(o);
        for (spec, rep) in &o.reports {
            let x = row(o, spec, rep, &reactions);
            let _ = writeln!(
                summary,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{:.3},{},{},{},{:.3},{:.1},{},{},{},{},{},{}",
                o.scenario.name,
                o.scenario.sweeps.join(";"),
                spec.label,
                conditions(&o.scenario),
                o.scenario.changes,
                rep.prometheus_requests,
                rep.prometheus_bytes,
                x.stable.requests,
                x.stable.bytes,
                o.scenario.stable.as_secs(),
                rep.reconciles,
                x.stable.reconciles,
                rep.status_writes,
                rep.notifications,
                rep.cpu_seconds,
                rep.peak_rss_kib,
                x.seen,
                x.expected,
                o.prometheus_cpu,
                o.duration.as_secs_f64(),
                ms(x.p50),
                ms(x.p50_ci.map(|c| c.0)),
                ms(x.p50_ci.map(|c| c.1)),
                ms(x.p95),
                ms(x.p95_ci.map(|c| c.0)),
                ms(x.p95_ci.map(|c| c.1)),
            );
        }
    }
    summary
}

/// One row per solo run.
fn solo_csv(r: &Results) -> String {
    let mut solo = String::from(
        "design,pipelines,evaluation_s,noise,measured_s,prometheus_cpu_s,requests,bytes,reconciles,notifications,design_cpu_s\n",
    );
    for o in r.solo {
        let _ = writeln!(
            solo,
            "{},{},{},{},{:.1},{:.3},{},{},{},{},{:.3}",
            o.label,
            o.pipelines,
            o.evaluation.as_secs_f64(),
            o.noise,
            o.measured.as_secs_f64(),
            o.prometheus_cpu,
            o.requests,
            o.bytes,
            o.reconciles,
            o.notifications,
            o.design_cpu
        );
    }
    solo
}
