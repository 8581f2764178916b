//! Turns the outcomes into latency figures, CSV files and the Markdown report.
//! The report is generated, so its prose says what each sweep varies and
//! which columns to read; the numbers speak for themselves.

mod csv;
mod paired;
mod reactions;
mod rows;
mod solo;
mod sweeps;
#[cfg(test)]
pub(crate) mod tests;

pub use reactions::{Reaction, reactions, tally};
pub use rows::{row, summary_table};

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use crate::outcome::{Outcome, SoloOutcome};
use crate::provenance::machine;
use crate::run::Failure;
use crate::scenarios::Scenario;
use sweeps::SWEEPS;

/// Everything one run produced, for [`write()`].
pub struct Results<'a> {
    pub outcomes: &'a [Outcome],
    pub solo: &'a [SoloOutcome],
    pub failures: &'a [Failure],
    /// The command line that made it, quoted in the report.
    pub command: &'a str,
    /// Only some scenarios were run (`--only`).
    pub partial: bool,
}

fn ms(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

const MIB: f64 = 1048576.0;

/// Prometheus' `--rules.alert.resend-delay`, its default when not set.
fn resend(s: &Scenario) -> Duration {
    s.resend_delay.unwrap_or(Duration::from_secs(60))
}

fn duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Writes the report, its CSV files and its plots into `out`.
pub fn write(out: &Path, r: &Results) -> Result<()> {
    std::fs::create_dir_all(out)?;
    csv::write_csv(out, r)?;
    let mut md = intro(r.command);
    if r.partial {
        md.push_str("\n**Partial run**: only the scenarios named in `--only` were run.\n");
    }
    crate::verdict::section(&mut md, r.outcomes);
    paired::section(&mut md, r.outcomes);
    for sweep in SWEEPS {
        sweeps::sweep_section(&mut md, sweep, r.outcomes);
    }
    crate::restarts::section(&mut md, r.outcomes);
    let untagged: Vec<&Outcome> = r
        .outcomes
        .iter()
        .filter(|o| !SWEEPS.iter().any(|s| o.scenario.sweeps.contains(&s.key)))
        .collect();
    if !untagged.is_empty() {
        md.push_str("\n## Other scenarios\n\n");
        md.push_str(&summary_table(untagged));
    }
    solo::solo_section(&mut md, r.solo);
    runs_section(&mut md, r.outcomes, r.solo);

    missed_section(&mut md, r);
    plots_section(&mut md, !r.solo.is_empty());
    std::fs::write(out.join("report.md"), md)?;
    crate::plot::render(out)
}

/// The heading and how to read every table.
fn intro(command: &str) -> String {
    format!(
        "# Push vs pull: measured\n\nProduced by `{}` on {}.\n\n\
         Latency is from the Prometheus evaluation at which an alert fired (or stopped\n\
         firing), read back from Prometheus' `ALERTS` series, to the moment the design's\n\
         reconcile computed the new status. Requests and bytes are the designs' own\n\
         requests to Prometheus (`/api/v1/alerts`, and `/api/v1/rules` for the\n\
         phase-locked ones). The stable columns count only the final phase in which\n\
         nothing changed. `seen` is changes noticed / changes Prometheus made (a fire\n\
         and a resolve per injected fault). Within a sweep the designs of a scenario\n\
         share one Prometheus, so its CPU is given per scenario; the solo part gives it\n\
         per design. Each percentile is followed by its 95% bootstrap interval\n\
         (2000 resamples of the design's latencies in that scenario), which shows how\n\
         far a figure from few transitions can be trusted. Each percentile rests on the\n\
         transitions counted in its `seen` column: 20 per design in every full-run\n\
         scenario (ten faults, a fire and a resolve each). A p95 of 20 is their\n\
         second largest: it tells apart designs whose latencies differ by more than\n\
         their spread, and its interval says by how much; it cannot show a tail rarer\n\
         than one in twenty, nor rank two designs whose intervals overlap. The pipelines are MetricPipelines, TracePipelines and\n\
         LogPipelines dealt in turn (`p0` a MetricPipeline, `p1` a TracePipeline, `p2`\n\
         a LogPipeline, ...); faults go round the kinds, and every design serves and\n\
         counts all three, as telemetry-manager and alert-poller do.\n",
        command,
        machine()
    )
}

/// What was missed: changes a design never saw, and runs that failed.
fn missed_section(md: &mut String, r: &Results) {
    md.push_str("\n## Missed changes and failed runs\n\n");
    let missed = reactions::missed(r.outcomes);
    if missed.is_empty() && r.failures.is_empty() {
        md.push_str("Every design saw every change; every run completed.\n");
    }
    for m in &missed {
        let _ = writeln!(md, "- missed: {m}");
    }
    for f in r.failures {
        let _ = writeln!(
            md,
            "- not run to its end, no figures: `{}`: {}",
            f.name,
            f.error.replace('\n', " ")
        );
    }
}

fn plots_section(md: &mut String, solo: bool) {
    md.push_str(
        "\n## Plots\n\n\
         The trade-off in the headline scenario (telemetry-manager's settings on \
         Prometheus 3): p95 latency (whisker: its 95% interval; ring: p50) against \
         requests per minute while stable, one point per design.\n\n\
         ![latency against requests](latency-vs-requests.svg)\n\n\
         Latency CDF per design in the headline scenario.\n\n\
         ![headline latency CDF](latency-cdf-headline.svg)\n\n\
         Latency CDF per design at 100 pipelines and 1s evaluation (Debian's 2.42).\n\n\
         ![latency CDF](latency-cdf.svg)\n\n\
         p95 latency against pipelines and against unrelated active alerts, with \
         their 95% intervals.\n\n\
         ![p95 against pipelines](p95-vs-pipelines.svg)\n\n\
         ![p95 against unrelated alerts](p95-vs-noise.svg)\n\n\
         What each design costs while nothing changes, against pipelines.\n\n\
         ![requests against pipelines](requests-vs-pipelines.svg)\n\n\
         ![reconciles against pipelines](reconciles-vs-pipelines.svg)\n",
    );
    if solo {
        md.push_str(
            "\nPrometheus' CPU with each design alone, against Prometheus alone.\n\n\
             ![Prometheus CPU per design](solo-prometheus-cpu.svg)\n",
        );
    }
    md.push_str(
        "\nRaw data: `latency.csv` (one row per design and change), `summary.csv` (one row \
         per scenario and design), `solo.csv` (one row per solo run). \
         `compare --replot --out <dir>` redraws the plots from them.\n",
    );
}

/// When each scenario ran, from which commit, on what: `--resume` takes
/// saved runs only of the same clean commit, and the table shows it.
fn runs_section(md: &mut String, outcomes: &[Outcome], solo: &[SoloOutcome]) {
    if outcomes.is_empty() {
        return;
    }
    md.push_str(
        "\n## Runs\n\n| scenario | recorded (UTC) | code | Prometheus | machine | kernel | Rust |\n\
         |---|---|---|---|---|---|---|\n",
    );
    let mut sorted: Vec<&Outcome> = outcomes.iter().collect();
    sorted.sort_by_key(|o| o.provenance.recorded_unix_ms);
    for o in sorted {
        let at = std::time::UNIX_EPOCH + Duration::from_millis(o.provenance.recorded_unix_ms);
        let env = o.provenance.environment.clone().unwrap_or_default();
        let or_not = |v: &str| {
            if v.is_empty() {
                "not recorded".to_owned()
            } else {
                v.to_owned()
            }
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            o.scenario.name,
            humantime::format_rfc3339_seconds(at),
            o.provenance.code.as_deref().unwrap_or("not recorded"),
            or_not(&env.prometheus),
            or_not(&env.machine),
            or_not(&env.kernel),
            or_not(&env.rust),
        );
    }
    let mut codes: Vec<&str> = solo
        .iter()
        .map(|o| o.code.as_deref().unwrap_or("not recorded"))
        .collect();
    codes.sort_unstable();
    codes.dedup();
    if !codes.is_empty() {
        let _ = writeln!(
            md,
            "\nThe solo runs: code {}, Debian's Prometheus.",
            codes.join(", ")
        );
    }
}
