//! Turns the outcomes into latency figures, CSV files and the Markdown report.
//! The report is generated, so its prose says what each sweep varies and
//! which columns to read; the numbers speak for themselves.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use alert_poller::domain::kind::Kind;
use alert_poller_experiments::figures::{
    bootstrap_interval, cpu_ms_per_request, kib_per_request, per_minute, percentile,
};
use anyhow::Result;

use crate::agent::AgentReport;
use crate::harness::{Outcome, SoloOutcome, Stable};
use crate::run::Failure;
use crate::scenarios::{DesignSpec, SOLO_MEASURED, SOLO_SETTLE, Scenario};
use crate::truth::Change;

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

/// One measured reaction: a design noticing a change Prometheus made.
#[derive(Clone, Debug)]
pub struct Reaction {
    pub scenario: String,
    pub design: String,
    pub pipeline: String,
    pub pipeline_kind: Kind,
    /// `fire` (the pipeline turned False) or `resolve` (back to True).
    pub edge: &'static str,
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
                pipeline_kind,
                fired_ms,
                resolved_ms,
            } = c;
            for (edge, truth, status) in [
                ("fire", fired_ms, "False"),
                ("resolve", resolved_ms, "True"),
            ] {
                let Some(truth) = truth else { continue };
                out.push(Reaction {
                    scenario: o.scenario.name.clone(),
                    design: spec.label.clone(),
                    pipeline: pipeline.clone(),
                    pipeline_kind: *pipeline_kind,
                    edge,
                    truth_ms: *truth,
                    seen_ms: first_after(report, pipeline, status, *truth),
                });
            }
        }
    }
    out
}

/// The verdict printed last: each design seeing each change is one check.
pub struct Tally {
    pub passed: usize,
    /// Changes some design did not see, or Prometheus never showed.
    pub missed: Vec<String>,
}

pub fn tally(outcomes: &[Outcome]) -> Tally {
    let checks: usize = outcomes.iter().map(|o| reactions(o).len()).sum();
    let missed = missed(outcomes);
    Tally {
        passed: checks.saturating_sub(missed.len()),
        missed,
    }
}

/// Changes some design did not see, or Prometheus never showed.
fn missed(outcomes: &[Outcome]) -> Vec<String> {
    let mut out = Vec::new();
    for o in outcomes {
        for c in &o.truths {
            if c.fired_ms.is_none() || c.resolved_ms.is_none() {
                out.push(format!(
                    "{}: Prometheus shows no complete firing run for {}pipeline/{}",
                    o.scenario.name, c.pipeline_kind, c.pipeline
                ));
            }
        }
        for r in reactions(o) {
            if r.seen_ms.is_none() {
                out.push(format!(
                    "{}: {} never saw the {} of {}pipeline/{}",
                    r.scenario, r.design, r.edge, r.pipeline_kind, r.pipeline
                ));
            }
        }
    }
    out
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

/// The figures of one design in one scenario.
pub struct Row {
    p50: Option<u64>,
    pub p95: Option<u64>,
    /// 95% bootstrap intervals of p50 and p95.
    p50_ci: Option<(u64, u64)>,
    pub p95_ci: Option<(u64, u64)>,
    max: Option<u64>,
    seen: usize,
    expected: usize,
    requests: u64,
    mib: f64,
    kib_per_request: Option<f64>,
    cpu_ms_per_request: Option<f64>,
    stable_requests_min: f64,
    stable_reconciles_min: f64,
    pub stable: Stable,
    report: AgentReport,
}

/// The table cells from the design's name on, shared by every per-design table.
fn cells(label: &str, x: &Row) -> String {
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

fn kib(v: Option<f64>) -> String {
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

/// What a sweep varies.
#[derive(Clone, Copy)]
enum Variable {
    Pipelines,
    Noise,
    Evaluation,
    Resend,
    Scenario,
}

impl Variable {
    fn heading(self) -> &'static str {
        match self {
            Variable::Pipelines => "pipelines",
            Variable::Noise => "unrelated alerts",
            Variable::Evaluation => "evaluation",
            Variable::Resend => "resend delay",
            Variable::Scenario => "scenario",
        }
    }

    /// Sort key and shown value.
    fn of(self, s: &Scenario) -> (u128, String) {
        match self {
            Variable::Pipelines => (s.pipelines as u128, s.pipelines.to_string()),
            Variable::Noise => (s.noise as u128, s.noise.to_string()),
            Variable::Evaluation => (s.evaluation.as_millis(), duration(s.evaluation)),
            Variable::Resend => (
                resend(s).as_millis(),
                match s.resend_delay {
                    Some(d) => duration(d),
                    None => "1m (default)".into(),
                },
            ),
            Variable::Scenario => (0, s.name.clone()),
        }
    }
}

/// A report section: the scenarios tagged with `key`.
struct Sweep {
    key: &'static str,
    title: &'static str,
    variable: Variable,
    about: &'static str,
}

const SWEEPS: &[Sweep] = &[
    Sweep {
        key: "manager",
        title: "At telemetry-manager's settings",
        variable: Variable::Scenario,
        about: "The manager's rules file unchanged (5m rate windows, `for: 1m`), \
                evaluated every 30s, targets scraped every 30s, its default resend \
                delay (1m); 9 pipelines, three per kind; on Prometheus 3 (the version \
                the manager ships) and on Debian's 2.42. An alert takes about two \
                minutes to fire and five and a half to clear, so the ten changes run \
                in three lanes at once, each on pipelines of its own. Requests per \
                evaluation while stable are `requests/min stable` divided by two. \
                The designs start at a random moment of the evaluation cycle, as a \
                pod does; `pull-fixed-30s` and `pull-adaptive` (5s doubling to 60s) \
                then poll at one phase of it for the whole run, so their latencies \
                rest on one draw of that phase: over many starts they spread evenly \
                up to 30s.",
    },
    Sweep {
        key: "quick",
        title: "CI smoke test",
        variable: Variable::Scenario,
        about: "10 pipelines, evaluation 1s, resend delay 5s, two changes at once (two \
                lanes); `quick-restart`: the same with three designs, one change at a \
                time, every design stopped before each break and mend and started \
                again 2s after Prometheus shows it. Every design must see every change.",
    },
    Sweep {
        key: "pipelines",
        title: "Pipelines sweep",
        variable: Variable::Pipelines,
        about: "1, 10, 100 and 1000 pipelines; evaluation 1s; Prometheus' default resend \
                delay (1m); one background alert (from 10 pipelines up); no unrelated \
                alerts. How the cost while nothing changes grows with the number of \
                pipelines is in `requests/min stable` and `reconciles/min stable`; \
                reaction time is in the latency columns.",
    },
    Sweep {
        key: "noise",
        title: "Active alerts sweep",
        variable: Variable::Noise,
        about: "100 pipelines, evaluation 1s, default resend delay, with 0, 10, 1000 and \
                10000 unrelated firing alerts (`NoiseAlert`) that every `/api/v1/alerts` \
                answer and every notification carries (the `ALERTS` query of \
                `pull-locked-query` leaves them out). `KiB/request` is the size of one \
                answer, `MiB read` the total a design read and `CPU ms/request` the \
                design's CPU per request to Prometheus (for pull designs, one poll and \
                what it sets off); `seen` counts the changes \
                a design noticed out of those Prometheus made, so a design that missed \
                changes under the load shows it there.",
    },
    Sweep {
        key: "evaluation",
        title: "Realistic evaluation interval",
        variable: Variable::Evaluation,
        about: "100 pipelines; rules evaluated and targets scraped every 30s (rate \
                windows 90s); default resend delay; ten changes (break, mend). Latency \
                counts from the evaluation that changed the alert, so it is the delay a \
                design adds on top of Prometheus; read it next to `requests/min stable`. \
                The designs start at a random moment of the evaluation cycle, so \
                `pull-fixed-30s` and `pull-adaptive` measure one draw of their phase.",
    },
    Sweep {
        key: "prometheus3",
        title: "On Prometheus 3",
        variable: Variable::Scenario,
        about: "The 100-pipeline, 1s-evaluation scenario of the pipelines sweep again, on \
                Prometheus 3 built from Go modules (`tests/prometheus3/build.sh`, the \
                version telemetry-manager ships) instead of Debian's 2.42.",
    },
    Sweep {
        key: "disruption",
        title: "The receiver stopped around each change",
        variable: Variable::Scenario,
        about: "9 pipelines (three per kind), rules evaluated and targets scraped every \
                30s (rate windows 90s), Prometheus 3. Before each break and each mend \
                every design is stopped; it is started again, as a new process, \
                `down` after Prometheus shows the change: 15s for a restart (a crash \
                or a rollout), 2s for leadership moving to a standby (the old leader \
                lets its Lease go on shutdown, the standby takes it at its next 2s \
                retry and starts from scratch, since only a leader polls or \
                reconciles). So every change happens while no design runs, and \
                Prometheus' notification of it fails. Latency in this table counts \
                from the change and so includes the time down; the table after it \
                counts from the start. `status writes` counts each start's first \
                verdicts, which a real receiver would compare with the status \
                already there.",
    },
    Sweep {
        key: "resend",
        title: "Resend-delay sweep",
        variable: Variable::Resend,
        about: "100 pipelines, evaluation 1s, one background alert firing throughout, \
                Prometheus' `--rules.alert.resend-delay` at 5s, 15s and the default 1m. \
                Prometheus re-sends firing alerts to its Alertmanagers (the push \
                designs) once per resend delay, and pulling designs are not notified \
                at all; compare `notifications`, `requests/min stable` and \
                `reconciles/min stable` across the delays.",
    },
];

fn sweep_section(md: &mut String, sweep: &Sweep, outcomes: &[Outcome]) {
    let mut members: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.scenario.sweeps.contains(&sweep.key))
        .collect();
    if members.is_empty() {
        return;
    }
    members.sort_by_key(|o| sweep.variable.of(&o.scenario).0);
    // A shared scenario ran more designs than this sweep is about: show the
    // designs every member ran, in the order the first one ran them.
    let designs: Vec<&str> = members[0]
        .reports
        .iter()
        .map(|(d, _)| d.label.as_str())
        .filter(|l| {
            members
                .iter()
                .all(|o| o.reports.iter().any(|(d, _)| d.label == *l))
        })
        .collect();
    let heading = sweep.variable.heading();
    let _ = write!(md, "\n## {}\n\n{}\n", sweep.title, sweep.about);
    for o in &members {
        let others: Vec<&str> = o
            .scenario
            .sweeps
            .iter()
            .filter(|k| **k != sweep.key)
            .filter_map(|k| SWEEPS.iter().find(|s| s.key == *k))
            .map(|s| s.title)
            .collect();
        if !others.is_empty() && members.len() > 1 {
            let _ = writeln!(
                md,
                "The {heading} = {} point is scenario `{}`, the same run as in {} \
                 ({} changes, {} designs; only this sweep's designs are shown).",
                sweep.variable.of(&o.scenario).1,
                o.scenario.name,
                others.join(" and "),
                o.scenario.changes,
                o.reports.len()
            );
        }
    }
    let _ = write!(
        md,
        "\n| {heading} | design | latency p50 ms (95% CI) | p95 ms (95% CI) | max ms | seen | requests | MiB read | KiB/request | requests/min stable | reconciles | reconciles/min stable | status writes | notifications | CPU s | CPU ms/request | peak RSS MiB |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    );
    for o in &members {
        let reactions = reactions(o);
        let value = sweep.variable.of(&o.scenario).1;
        for label in &designs {
            let Some((spec, r)) = o.reports.iter().find(|(d, _)| d.label == *label) else {
                continue;
            };
            let x = row(o, spec, r, &reactions);
            let _ = writeln!(md, "| {value} | {} |", cells(&spec.label, &x));
        }
    }
    md.push_str(
        "\n| scenario | evaluation | pipelines | unrelated alerts | resend delay | changes | stable s | Prometheus CPU s | Prometheus CPU s/min | duration s |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for o in &members {
        let s = &o.scenario;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.0} |",
            s.name,
            duration(s.evaluation),
            s.pipelines,
            s.noise,
            Variable::Resend.of(s).1,
            s.changes,
            s.stable.as_secs(),
            o.prometheus_cpu,
            per_minute(o.prometheus_cpu, o.duration.as_secs_f64()),
            o.duration.as_secs_f64()
        );
    }
}

fn solo_section(md: &mut String, solo: &[SoloOutcome]) {
    let Some(first) = solo.first() else { return };
    let per_min = |v: f64, o: &SoloOutcome| per_minute(v, o.measured.as_secs_f64());
    let baseline = solo
        .iter()
        .find(|o| o.label == "baseline")
        .map(|b| per_min(b.prometheus_cpu, b));
    let _ = write!(
        md,
        "\n## Prometheus CPU per design (solo)\n\n\
         Designs sharing one Prometheus share its CPU time, so here each design ran \
         alone with a fresh Prometheus and collector: {} pipelines, evaluation {}, {} \
         unrelated alerts, one background alert, default resend delay; the push designs \
         are its only Alertmanager. `baseline` is Prometheus with no design. After {} to \
         settle, Prometheus' CPU time (user + system, from /proc) and the design's \
         requests were counted over {}. `vs baseline` is the design's Prometheus CPU \
         s/min minus the baseline's: what the design costs Prometheus. Each row is one \
         run, and the baseline alone moved between 3.9 and 6.9 s/min from run to run \
         in [solo-repeat.md](solo-repeat.md), so read differences under a second per \
         minute with care.\n\n\
         | design | Prometheus CPU s/min | vs baseline s/min | requests/min | MiB read/min | KiB/request | reconciles/min | notifications/min | design CPU s/min |\n|---|---|---|---|---|---|---|---|---|\n",
        first.pipelines,
        duration(first.evaluation),
        first.noise,
        duration(SOLO_SETTLE),
        duration(SOLO_MEASURED),
    );
    for o in solo {
        let cpu = per_min(o.prometheus_cpu, o);
        let _ = writeln!(
            md,
            "| {} | {:.2} | {} | {:.1} | {:.2} | {} | {:.1} | {:.1} | {:.2} |",
            o.label,
            cpu,
            baseline.map_or("-".into(), |b| format!("{:+.2}", cpu - b)),
            per_min(o.requests as f64, o),
            per_min(o.bytes as f64 / MIB, o),
            kib(kib_per_request(o.bytes, o.requests)),
            per_min(o.reconciles as f64, o),
            per_min(o.notifications as f64, o),
            per_min(o.design_cpu, o),
        );
    }
}

pub fn machine() -> String {
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
    format!("{cores} cores ({cpu}), {mem:.0} GiB memory")
}

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

fn write_csv(out: &Path, r: &Results) -> Result<()> {
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
    std::fs::write(out.join("latency.csv"), csv)?;

    // `sweeps` is `;`-separated so the file stays plain comma-separated.
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
    std::fs::write(out.join("summary.csv"), summary)?;

    // Always written, if only the header, so a replot never draws a stale
    // solo plot from an earlier run.
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
    std::fs::write(out.join("solo.csv"), solo)?;
    Ok(())
}

pub fn write(out: &Path, r: &Results) -> Result<()> {
    std::fs::create_dir_all(out)?;
    write_csv(out, r)?;
    let mut md = format!(
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
        r.command,
        machine()
    );
    if r.partial {
        md.push_str("\n**Partial run**: only the scenarios named in `--only` were run.\n");
    }
    crate::verdict::section(&mut md, r.outcomes);
    for sweep in SWEEPS {
        sweep_section(&mut md, sweep, r.outcomes);
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
    solo_section(&mut md, r.solo);
    runs_section(&mut md, r.outcomes, r.solo);

    md.push_str("\n## Missed changes and failed runs\n\n");
    let missed = missed(r.outcomes);
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
    if !r.solo.is_empty() {
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
    std::fs::write(out.join("report.md"), md)?;
    crate::plot::render(out)
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::agent::{Design, Detection};

    fn seen(pipeline: &str, status: &str, unix_ms: u64) -> Detection {
        Detection {
            pipeline: pipeline.into(),
            pipeline_kind: "metric".into(),
            status: status.into(),
            unix_ms,
        }
    }

    fn design(label: &str, detections: Vec<Detection>) -> (DesignSpec, AgentReport) {
        let spec = DesignSpec {
            label: label.into(),
            design: Design::Pull,
            tuning: vec![],
        };
        let report = AgentReport {
            detections,
            prometheus_requests: 4,
            prometheus_bytes: 2048,
            ..AgentReport::default()
        };
        (spec, report)
    }

    fn change(pipeline: &str, fired_ms: Option<u64>, resolved_ms: Option<u64>) -> Change {
        Change {
            pipeline: pipeline.into(),
            pipeline_kind: Kind::Trace,
            fired_ms,
            resolved_ms,
        }
    }

    /// Two designs and two changes; Prometheus never resolved the second.
    /// `a` sees everything, `b` only the first fire (and something earlier
    /// than the truth, which must not count).
    pub(crate) fn outcome() -> Outcome {
        let scenario = crate::scenarios::plan(true, &[]).0.remove(0);
        Outcome {
            provenance: crate::harness::Provenance::default(),
            restarts: Default::default(),
            stable: vec![Stable {
                label: "a".into(),
                requests: 30,
                bytes: 0,
                reconciles: 5,
            }],
            scenario,
            reports: vec![
                design(
                    "a",
                    vec![
                        seen("p1", "False", 1500),
                        seen("p2", "False", 2100),
                        seen("p1", "True", 5200),
                    ],
                ),
                design(
                    "b",
                    vec![seen("p1", "False", 900), seen("p1", "False", 1300)],
                ),
            ],
            truths: vec![
                change("p1", Some(1000), Some(5000)),
                change("p2", Some(2000), None),
            ],
            prometheus_cpu: 0.0,
            duration: Duration::from_secs(60),
        }
    }

    #[test]
    fn first_detection_at_or_after_the_truth() {
        let (_, report) = design(
            "a",
            vec![
                seen("p1", "False", 900),
                seen("p1", "False", 1300),
                seen("p1", "False", 1200),
                seen("p1", "True", 1100),
                seen("p2", "False", 1000),
            ],
        );
        for (pipeline, status, after, expected) in [
            ("p1", "False", 1000, Some(1200)), // the earliest, not the first listed
            ("p1", "False", 1300, Some(1300)), // at the truth counts
            ("p1", "False", 1301, None),
            ("p1", "False", 0, Some(900)),
            ("p1", "True", 1000, Some(1100)),
            ("p2", "True", 0, None),
            ("p3", "False", 0, None),
        ] {
            assert_eq!(
                first_after(&report, pipeline, status, after),
                expected,
                "{pipeline} {status} after {after}"
            );
        }
        assert_eq!(first_after(&AgentReport::default(), "p1", "False", 0), None);
    }

    #[test]
    fn percentiles_show_their_interval() {
        assert_eq!(with_interval(Some(120), Some((95, 160))), "120 (95–160)");
        // No doubt, or no figure: nothing to add.
        assert_eq!(with_interval(Some(7), Some((7, 7))), "7");
        assert_eq!(with_interval(None, None), "-");
    }

    #[test]
    fn latency_is_from_truth_to_detection() {
        let reaction = |truth_ms, seen_ms| Reaction {
            scenario: String::new(),
            design: String::new(),
            pipeline: String::new(),
            pipeline_kind: Kind::Metric,
            edge: "fire",
            truth_ms,
            seen_ms,
        };
        for (truth, seen, expected) in [
            (1000, Some(1250), Some(250)),
            (1000, Some(1000), Some(0)),
            (1000, Some(900), Some(0)), // never negative
            (1000, None, None),
        ] {
            assert_eq!(reaction(truth, seen).latency_ms(), expected);
        }
    }

    #[test]
    fn reactions_and_tally() {
        let o = outcome();
        let got: Vec<(String, String, &str, Option<u64>)> = reactions(&o)
            .into_iter()
            .map(|r| (r.design.clone(), r.pipeline.clone(), r.edge, r.latency_ms()))
            .collect();
        let want = [
            ("a", "p1", "fire", Some(500)),
            ("a", "p1", "resolve", Some(200)),
            ("a", "p2", "fire", Some(100)),
            ("b", "p1", "fire", Some(300)),
            ("b", "p1", "resolve", None),
            ("b", "p2", "fire", None),
        ];
        assert_eq!(
            got,
            want.map(|(d, p, k, l)| (d.to_string(), p.to_string(), k, l))
        );
        let t = tally(std::slice::from_ref(&o));
        assert_eq!(
            t.missed,
            [
                "quick: Prometheus shows no complete firing run for tracepipeline/p2",
                "quick: b never saw the resolve of tracepipeline/p1",
                "quick: b never saw the fire of tracepipeline/p2",
            ]
        );
        // Six checks; the incomplete run counts against them too.
        assert_eq!(t.passed, 3);
        let empty = tally(&[]);
        assert_eq!((empty.passed, empty.missed.len()), (0, 0));
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
