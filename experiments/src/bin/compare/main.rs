//! The comparison experiments: one real Prometheus evaluating the shipped
//! MetricPipeline rules, the push design and the pull design running against
//! it side by side, each in its own process, and the same faults injected for
//! all. Reaction times are measured against ground truth read from Prometheus
//! itself: the evaluation at which an alert started (or stopped) firing.
//!
//!   cargo run --release -p alert-poller-experiments --bin compare -- --quick            # CI smoke test, < 3 min
//!   cargo run --release -p alert-poller-experiments --bin compare -- --out experiments  # the report (~1 h, estimate printed)
//!   cargo run --release -p alert-poller-experiments --bin compare -- --replot --out experiments
//!
//! The full run is a set of sweeps, each varying one thing against the
//! 100-pipeline, 1s-evaluation scenario (which several sweeps share): the
//! number of pipelines, the number of unrelated active alerts ("noise"), a
//! realistic 30s evaluation interval, and Prometheus' resend delay. Then a
//! "solo" part gives every design a Prometheus of its own, because designs
//! sharing one Prometheus cannot be told apart in its CPU time.
//!
//! `--only a,b` (hidden) runs only the full-run scenarios and solo runs whose
//! name contains one of the substrings, e.g. `--only noise-10000,solo-push-all`;
//! it is there to try one piece without the whole run, and the report it
//! writes says so.
//!
//! Writes `report.md`, `latency.csv`, `summary.csv`, `solo.csv` and the SVG
//! plots to `--out`. In `--quick` mode every design must see every change or
//! the exit code fails; in the full run a missed change is a finding (an
//! overloaded design misses changes), so it is listed in the report instead.

mod agent;
mod plot;
mod report;
mod truth;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use agent::{AgentConfig, AgentReport, Design};
use alert_poller_testbed::collector::{Collector, Component, Flow};
use alert_poller_testbed::prometheus::{Prometheus, Setup};
use alert_poller_testbed::{TempDir, free_port, rules, usage};
use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Push vs pull: reaction time and cost, side by side")]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// The CI smoke test: one small scenario, asserts every change was seen.
    #[arg(long)]
    quick: bool,
    /// Where to write the report and CSV files.
    #[arg(long, default_value = "experiments")]
    out: PathBuf,
    /// Only redraw the SVG plots from the CSV files in `--out`.
    #[arg(long)]
    replot: bool,
    /// Run only the full-run scenarios and solo runs whose name contains one
    /// of these comma-separated substrings (for trying one piece).
    #[arg(long, hide = true, value_delimiter = ',')]
    only: Vec<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Internal: run one design (started by the harness).
    Agent {
        #[arg(long)]
        config: String,
        #[arg(long)]
        report: PathBuf,
    },
}

/// One design as the harness runs it.
#[derive(Clone, Debug)]
pub struct DesignSpec {
    pub label: String,
    pub design: Design,
    /// Pull schedule (ConfigMap keys).
    pub tuning: Vec<(&'static str, String)>,
}

impl DesignSpec {
    /// The longest poll interval of a pull design (zero for push): how long
    /// it may take to look again after a change.
    fn max_interval(&self) -> Duration {
        self.tuning
            .iter()
            .find(|(k, _)| *k == "maxInterval")
            .and_then(|(_, v)| humantime::parse_duration(v).ok())
            .unwrap_or_default()
    }
}

fn pull(label: &str, min: &str, max: &str, factor: &str) -> DesignSpec {
    DesignSpec {
        label: label.into(),
        design: Design::Pull,
        tuning: vec![
            ("minInterval", min.into()),
            ("maxInterval", max.into()),
            ("backoffFactor", factor.into()),
        ],
    }
}

fn phase_locked(label: &str, min: &str, max: &str, factor: &str) -> DesignSpec {
    let mut spec = pull(label, min, max, factor);
    spec.tuning.push(("phaseLock", "true".into()));
    spec
}

fn push(label: &str, design: Design) -> DesignSpec {
    DesignSpec {
        label: label.into(),
        design,
        tuning: vec![],
    }
}

/// One experiment: a Prometheus set-up, some pipelines, some faults.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    /// The report sections (sweeps) that show this scenario. One run can be
    /// a point of several sweeps: the 100-pipeline scenario is also the
    /// no-noise and the default-resend-delay point, which saves a rerun.
    pub sweeps: Vec<&'static str>,
    pub evaluation: Duration,
    pub resend_delay: Option<Duration>,
    pub pipelines: usize,
    /// Unrelated firing alerts (`NoiseAlert`), in every `/api/v1/alerts`
    /// answer and every notification, as a real cluster has them.
    pub noise: usize,
    /// Faults injected one after the other (break, then mend).
    pub changes: usize,
    /// Time with no change at the end, for the steady-state cost.
    pub stable: Duration,
    /// One pipeline dropping some data for the whole run, so that firing
    /// alerts exist while stable (what makes Prometheus re-send).
    pub background_alert: bool,
    pub designs: Vec<DesignSpec>,
}

impl Scenario {
    /// The rate window of the sped-up rules: three evaluations, so an alert
    /// needs a few samples and clears a few evaluations after a mend.
    fn window(&self) -> Duration {
        self.evaluation * 3
    }

    /// How long to wait after Prometheus shows a change before the next one.
    /// The pull design with the longest interval looks again within its
    /// `maxInterval` of the evaluation that changed the alert (phase-locked
    /// ones poll right after an evaluation); one more evaluation and 2s cover
    /// the request, the reconciles and a push design's queue. At 1s
    /// evaluation this is the 3s margin the first report used; at 30s a
    /// second extra evaluation would only add a minute per change.
    fn settle(&self) -> Duration {
        self.designs
            .iter()
            .map(DesignSpec::max_interval)
            .max()
            .unwrap_or_default()
            + self.evaluation
            + Duration::from_secs(2)
    }

    /// How long Prometheus may take to fire or clear an alert: the rate
    /// window must fill or drain (up to one more scrape and evaluation each),
    /// with ample room for a loaded machine.
    fn limit(&self) -> Duration {
        self.window() * 4 + self.evaluation * 4 + Duration::from_secs(10)
    }

    /// A rough duration, for the progress lines and the total estimate:
    /// start-up, the initial settle, each change (fire, settle, clear,
    /// settle) and the stable phase; calibrated on the first report's runs.
    fn estimate(&self) -> Duration {
        let eval = self.evaluation;
        let startup = Duration::from_secs(5)
            + if self.background_alert {
                self.window() + eval * 2
            } else {
                Duration::ZERO
            }
            + if self.noise > 0 {
                eval * 2
            } else {
                Duration::ZERO
            };
        let change = self.settle() * 2 + eval + Duration::from_secs(1) + self.window() + eval;
        startup + eval * 2 + Duration::from_secs(2) + change * self.changes as u32 + self.stable
    }
}

/// Steady-state counters of one design: what it cost while nothing changed.
#[derive(Clone, Debug, Default)]
pub struct Stable {
    pub label: String,
    pub requests: u64,
    pub bytes: u64,
    pub reconciles: u64,
}

/// What one scenario measured.
#[derive(Debug)]
pub struct Outcome {
    pub scenario: Scenario,
    pub reports: Vec<(DesignSpec, AgentReport)>,
    pub truths: Vec<truth::Change>,
    pub prometheus_cpu: f64,
    pub duration: Duration,
    /// Counts during the stable phase only.
    pub stable: Vec<Stable>,
}

/// A design alone with a Prometheus of its own (or no design: the baseline).
#[derive(Clone, Debug)]
pub struct SoloRun {
    pub name: String,
    pub design: Option<DesignSpec>,
}

/// What a solo run measured over its stable phase.
#[derive(Clone, Debug)]
pub struct SoloOutcome {
    pub name: String,
    /// The design's label, or `baseline` for Prometheus alone.
    pub label: String,
    pub pipelines: usize,
    pub evaluation: Duration,
    pub noise: usize,
    pub measured: Duration,
    pub prometheus_cpu: f64,
    pub requests: u64,
    pub bytes: u64,
    pub reconciles: u64,
    pub notifications: u64,
    pub design_cpu: f64,
}

/// The solo set-up: the 100-pipeline, 1s-evaluation scenario with 1000
/// unrelated alerts and one background alert, so that every design has
/// something to fetch and push designs have re-sends to react to.
const SOLO_PIPELINES: usize = 100;
const SOLO_NOISE: usize = 1000;
const SOLO_SETTLE: Duration = Duration::from_secs(10);
const SOLO_MEASURED: Duration = Duration::from_secs(60);

/// A scenario or solo run that could not be run to its end.
#[derive(Debug)]
pub struct Failure {
    pub name: String,
    pub error: String,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

struct AgentProcess {
    spec: DesignSpec,
    child: Child,
    report: PathBuf,
}

impl AgentProcess {
    fn start(spec: &DesignSpec, config: &AgentConfig, dir: &Path) -> Result<AgentProcess> {
        let report = dir.join(format!("{}.json", spec.label));
        let mut child = Command::new(std::env::current_exe()?)
            .arg("agent")
            .arg("--config")
            .arg(serde_json::to_string(config)?)
            .arg("--report")
            .arg(&report)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
        if line.trim() != "READY" {
            bail!("agent {} did not start: {line:?}", spec.label);
        }
        Ok(AgentProcess {
            spec: spec.clone(),
            child,
            report,
        })
    }

    fn stop(mut self) -> Result<(DesignSpec, AgentReport)> {
        self.child_stop()?;
        let report: AgentReport = serde_json::from_slice(
            &std::fs::read(&self.report)
                .with_context(|| format!("no report from {}", self.spec.label))?,
        )?;
        Ok((self.spec.clone(), report))
    }

    /// SIGTERM, so the agent writes its report, then waits for it to exit.
    fn child_stop(&mut self) -> Result<()> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait()?;
        Ok(())
    }

    /// Counters so far, read from the agent's live file (written each
    /// second). The agent may be rewriting it at that moment, so a read that
    /// does not parse is retried rather than taken as zeros.
    async fn snapshot(&self) -> AgentReport {
        let path = self.report.with_extension("live");
        for _ in 0..40 {
            if let Some(r) = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
            {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        AgentReport::default()
    }

    /// The agent's CPU seconds so far.
    fn cpu(&self) -> f64 {
        usage(self.child.id()).0
    }
}

/// A scenario that fails half-way drops its agents; in the full run the
/// next scenarios go on, so a left-over agent would load the machine and
/// skew what they measure.
impl Drop for AgentProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn snapshots(agents: &[AgentProcess]) -> Vec<AgentReport> {
    let mut out = Vec::new();
    for a in agents {
        out.push(a.snapshot().await);
    }
    out
}

/// Waits until Prometheus reports (or stops reporting) a firing alert for `pipeline`.
async fn until_firing(
    prometheus: &Prometheus,
    pipeline: &str,
    firing: bool,
    limit: Duration,
) -> Result<()> {
    let started = Instant::now();
    loop {
        if truth::firing_now(&prometheus.url(), pipeline).await? == firing {
            return Ok(());
        }
        if started.elapsed() > limit {
            bail!("{pipeline}: firing={firing} not reached within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A collector and a Prometheus over it, with the background alert and the
/// noise already firing.
struct Bed {
    collector: Collector,
    prometheus: Prometheus,
    names: Vec<String>,
}

struct BedSetup {
    pipelines: usize,
    evaluation: Duration,
    resend_delay: Option<Duration>,
    noise: usize,
    background_alert: bool,
    alertmanagers: Vec<SocketAddr>,
}

async fn start_bed(b: &BedSetup) -> Result<Bed> {
    let names: Vec<String> = (0..b.pipelines).map(|i| format!("p{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let collector = Collector::start(&refs).await?;
    if b.background_alert {
        collector.set_flow(Component::Gateway, "p0", Flow::SomeDropped);
    }
    collector.set_noise(b.noise);
    let window = b.evaluation * 3;
    // The noise group is there even without noise, so every scenario
    // evaluates the same rule groups.
    let prometheus = Prometheus::start(&Setup {
        scrape_interval: b.evaluation,
        evaluation_interval: b.evaluation,
        rules: rules::with_noise(&rules::fast(window, Duration::ZERO, b.evaluation)),
        collector: Some(collector.addr()),
        alertmanagers: b.alertmanagers.clone(),
        resend_delay: b.resend_delay,
    })
    .await?;
    if b.background_alert {
        until_firing(
            &prometheus,
            "p0",
            true,
            window * 4 + Duration::from_secs(10),
        )
        .await?;
    }
    if b.noise > 0 {
        prometheus
            .until_noise(b.noise, b.evaluation * 10 + Duration::from_secs(30))
            .await?;
    }
    Ok(Bed {
        collector,
        prometheus,
        names,
    })
}

/// A listen address for each push design (Prometheus' alertmanagers).
fn listens(designs: &[DesignSpec]) -> Vec<Option<String>> {
    designs
        .iter()
        .map(|d| (d.design != Design::Pull).then(|| format!("127.0.0.1:{}", free_port())))
        .collect()
}

fn alertmanagers(listens: &[Option<String>]) -> Vec<SocketAddr> {
    listens
        .iter()
        .flatten()
        .map(|l| l.parse().expect("an address"))
        .collect()
}

fn start_agents(
    designs: &[DesignSpec],
    listens: &[Option<String>],
    bed: &Bed,
    dir: &Path,
) -> Result<Vec<AgentProcess>> {
    let url = bed.prometheus.url();
    let mut agents = Vec::new();
    for (spec, listen) in designs.iter().zip(listens) {
        let config = AgentConfig {
            design: spec.design,
            prometheus: url.clone(),
            pipelines: bed.names.clone(),
            listen: listen.clone(),
            tuning: spec
                .tuning
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .chain([
                    ("prometheusUrl".to_string(), url.clone()),
                    ("maxResponseBytes".to_string(), "256Mi".to_string()),
                    ("requestTimeout".to_string(), "10s".to_string()),
                    ("staleAfter".to_string(), "10m".to_string()),
                ])
                .collect(),
        };
        agents.push(AgentProcess::start(spec, &config, dir)?);
    }
    Ok(agents)
}

async fn run_scenario(s: &Scenario) -> Result<Outcome> {
    let listens = listens(&s.designs);
    let bed = start_bed(&BedSetup {
        pipelines: s.pipelines,
        evaluation: s.evaluation,
        resend_delay: s.resend_delay,
        noise: s.noise,
        background_alert: s.background_alert,
        alertmanagers: alertmanagers(&listens),
    })
    .await?;
    let names = &bed.names;
    // p0 carries the background alert; faults go to the others (or p0 alone).
    let faulty = |i: usize| {
        &names[if names.len() > 1 {
            1 + i % (names.len() - 1)
        } else {
            0
        }]
    };
    let (collector, prometheus) = (&bed.collector, &bed.prometheus);

    let dir = TempDir::new("compare")?;
    let agents = start_agents(&s.designs, &listens, &bed, dir.path())?;
    let started = Instant::now();
    let cpu_before = usage(prometheus.pid().unwrap_or(0)).0;
    // Let every design settle on the initial state.
    tokio::time::sleep(s.evaluation * 2 + Duration::from_secs(2)).await;

    let (settle, limit) = (s.settle(), s.limit());
    let mut injected = Vec::new();
    for i in 0..s.changes {
        let pipeline = faulty(i);
        eprintln!(
            "compare:   change {}/{} on {pipeline} ({:.0}s in)",
            i + 1,
            s.changes,
            started.elapsed().as_secs_f64()
        );
        let broke = now_ms();
        collector.set_flow(Component::Gateway, pipeline, Flow::AllDropped);
        until_firing(prometheus, pipeline, true, limit).await?;
        tokio::time::sleep(settle).await;
        let mended = now_ms();
        collector.set_flow(Component::Gateway, pipeline, Flow::Healthy);
        until_firing(prometheus, pipeline, false, limit).await?;
        tokio::time::sleep(settle).await;
        injected.push((pipeline.clone(), broke, mended));
    }

    // The stable phase: nothing changes; count what each design still costs.
    let before = snapshots(&agents).await;
    tokio::time::sleep(s.stable).await;
    let after = snapshots(&agents).await;
    let stable = agents
        .iter()
        .zip(before.iter().zip(&after))
        .map(|(a, (b, e))| Stable {
            label: a.spec.label.clone(),
            requests: e.prometheus_requests.saturating_sub(b.prometheus_requests),
            bytes: e.prometheus_bytes.saturating_sub(b.prometheus_bytes),
            reconciles: e.reconciles.saturating_sub(b.reconciles),
        })
        .collect();
    let prometheus_cpu = usage(prometheus.pid().unwrap_or(0)).0 - cpu_before;
    let duration = started.elapsed();

    let mut reports = Vec::new();
    for a in agents {
        reports.push(a.stop()?);
    }
    let truths = truth::changes(&prometheus.url(), &injected, s.evaluation).await?;
    Ok(Outcome {
        scenario: s.clone(),
        reports,
        truths,
        prometheus_cpu,
        duration,
        stable,
    })
}

/// One design (or none) alone with a fresh Prometheus: Prometheus' CPU over
/// a stable minute, so each design's cost to Prometheus shows on its own.
async fn run_solo(run: &SoloRun) -> Result<SoloOutcome> {
    let designs: Vec<DesignSpec> = run.design.iter().cloned().collect();
    let listens = listens(&designs);
    let evaluation = Duration::from_secs(1);
    let bed = start_bed(&BedSetup {
        pipelines: SOLO_PIPELINES,
        evaluation,
        resend_delay: None,
        noise: SOLO_NOISE,
        background_alert: true,
        alertmanagers: alertmanagers(&listens),
    })
    .await?;
    let dir = TempDir::new("compare-solo")?;
    let agents = start_agents(&designs, &listens, &bed, dir.path())?;
    tokio::time::sleep(SOLO_SETTLE).await;
    let pid = bed.prometheus.pid().unwrap_or(0);
    let before = snapshots(&agents).await;
    let agent_cpu_before: f64 = agents.iter().map(AgentProcess::cpu).sum();
    let cpu_before = usage(pid).0;
    let started = Instant::now();
    tokio::time::sleep(SOLO_MEASURED).await;
    let prometheus_cpu = usage(pid).0 - cpu_before;
    let measured = started.elapsed();
    let agent_cpu: f64 = agents.iter().map(AgentProcess::cpu).sum::<f64>() - agent_cpu_before;
    let after = snapshots(&agents).await;
    let delta = |f: fn(&AgentReport) -> u64| -> u64 {
        before
            .iter()
            .zip(&after)
            .map(|(b, e)| f(e).saturating_sub(f(b)))
            .sum()
    };
    let outcome = SoloOutcome {
        name: run.name.clone(),
        label: run
            .design
            .as_ref()
            .map_or("baseline".into(), |d| d.label.clone()),
        pipelines: SOLO_PIPELINES,
        evaluation,
        noise: SOLO_NOISE,
        measured,
        prometheus_cpu,
        requests: delta(|r| r.prometheus_requests),
        bytes: delta(|r| r.prometheus_bytes),
        reconciles: delta(|r| r.reconciles),
        notifications: delta(|r| r.notifications),
        design_cpu: agent_cpu,
    };
    for a in agents {
        a.stop()?;
    }
    Ok(outcome)
}

fn solo_estimate() -> Duration {
    // Start-up with the background alert and noise, then settle and measure.
    Duration::from_secs(10) + SOLO_SETTLE + SOLO_MEASURED
}

fn quick() -> Vec<Scenario> {
    vec![Scenario {
        name: "quick".into(),
        sweeps: vec!["quick"],
        evaluation: Duration::from_secs(1),
        resend_delay: Some(Duration::from_secs(5)),
        pipelines: 10,
        noise: 0,
        changes: 2,
        stable: Duration::from_secs(15),
        background_alert: true,
        designs: vec![
            push("push-all", Design::PushAll),
            push("push-scoped", Design::PushScoped),
            pull("pull-fixed-1s", "1s", "1s", "1"),
            pull("pull-adaptive", "500ms", "5s", "1.5"),
            phase_locked("pull-locked-every-eval", "1s", "1s", "1"),
            phase_locked("pull-locked-adaptive", "500ms", "5s", "1.5"),
        ],
    }]
}

/// All eight designs at 1s evaluation.
fn designs_eval_1s() -> Vec<DesignSpec> {
    vec![
        push("push-all", Design::PushAll),
        push("push-scoped", Design::PushScoped),
        pull("pull-fixed-1s", "1s", "1s", "1"),
        pull("pull-fixed-5s", "5s", "5s", "1"),
        pull("pull-fixed-30s", "30s", "30s", "1"),
        pull("pull-adaptive", "1s", "15s", "1.5"),
        // Phase-locked: after every evaluation, or skipping evaluations
        // as the adaptive schedule allows.
        phase_locked("pull-locked-every-eval", "1s", "1s", "1"),
        phase_locked("pull-locked-adaptive", "1s", "15s", "1.5"),
    ]
}

fn pick(designs: &[DesignSpec], labels: &[&str]) -> Vec<DesignSpec> {
    labels
        .iter()
        .map(|l| {
            designs
                .iter()
                .find(|d| d.label == *l)
                .cloned()
                .expect("a known design")
        })
        .collect()
}

/// The full run's scenarios, sweep by sweep (see the module doc).
fn full() -> Vec<Scenario> {
    let second = Duration::from_secs(1);
    let all = designs_eval_1s();
    let base = Scenario {
        name: String::new(),
        sweeps: vec![],
        evaluation: second,
        resend_delay: None,
        pipelines: 100,
        noise: 0,
        changes: 4,
        stable: second * 60,
        background_alert: true,
        designs: all.clone(),
    };
    let mut out = Vec::new();
    for pipelines in [1, 10, 100, 1000] {
        out.push(Scenario {
            name: format!("eval-1s-{pipelines}-pipelines"),
            // The 100-pipeline run is also the no-noise and the
            // default-resend-delay point of those sweeps.
            sweeps: if pipelines == 100 {
                vec!["pipelines", "noise", "resend"]
            } else {
                vec!["pipelines"]
            },
            pipelines,
            // The background alert needs a pipeline of its own.
            background_alert: pipelines > 1,
            ..base.clone()
        });
    }
    for noise in [10, 1000, 10000] {
        out.push(Scenario {
            name: format!("noise-{noise}-alerts"),
            sweeps: vec!["noise"],
            noise,
            changes: 2,
            designs: pick(
                &all,
                &[
                    "push-all",
                    "push-scoped",
                    "pull-adaptive",
                    "pull-locked-every-eval",
                ],
            ),
            ..base.clone()
        });
    }
    for resend in [5, 15] {
        out.push(Scenario {
            name: format!("resend-{resend}s"),
            sweeps: vec!["resend"],
            resend_delay: Some(second * resend),
            changes: 1,
            designs: pick(&all, &["push-all", "push-scoped", "pull-locked-every-eval"]),
            ..base.clone()
        });
    }
    // Last, the slowest: the evaluation interval the shipped rules use.
    out.push(Scenario {
        name: "eval-30s-100-pipelines".into(),
        sweeps: vec!["evaluation"],
        evaluation: second * 30,
        changes: 1,
        stable: second * 120,
        designs: vec![
            push("push-all", Design::PushAll),
            push("push-scoped", Design::PushScoped),
            pull("pull-fixed-30s", "30s", "30s", "1"),
            pull("pull-adaptive", "5s", "60s", "2"),
            phase_locked("pull-locked-every-eval", "30s", "30s", "1"),
            phase_locked("pull-locked-adaptive", "30s", "120s", "2"),
        ],
        ..base
    });
    out
}

/// The baseline (Prometheus with no design) and each design alone.
fn solo_runs() -> Vec<SoloRun> {
    std::iter::once(SoloRun {
        name: "solo-baseline".into(),
        design: None,
    })
    .chain(designs_eval_1s().into_iter().map(|d| SoloRun {
        name: format!("solo-{}", d.label),
        design: Some(d),
    }))
    .collect()
}

fn selected(name: &str, only: &[String]) -> bool {
    only.is_empty() || only.iter().any(|o| name.contains(o.as_str()))
}

fn minutes(d: Duration) -> String {
    format!("{:.1} min", d.as_secs_f64() / 60.0)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    if let Some(Cmd::Agent { config, report }) = cli.command {
        return runtime.block_on(run_agent(&config, &report));
    }
    if cli.replot {
        return match plot::render(&cli.out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("compare: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    runtime.block_on(async {
        let (scenarios, solos) = if cli.quick {
            (quick(), Vec::new())
        } else {
            (
                full()
                    .into_iter()
                    .filter(|s| selected(&s.name, &cli.only))
                    .collect::<Vec<_>>(),
                solo_runs()
                    .into_iter()
                    .filter(|s| selected(&s.name, &cli.only))
                    .collect::<Vec<_>>(),
            )
        };
        let estimates: Vec<Duration> = scenarios
            .iter()
            .map(Scenario::estimate)
            .chain(solos.iter().map(|_| solo_estimate()))
            .collect();
        let mut left: Duration = estimates.iter().sum();
        eprintln!(
            "compare: {} scenarios and {} solo runs, estimated {}",
            scenarios.len(),
            solos.len(),
            minutes(left)
        );
        let total = estimates.len();
        let run_started = Instant::now();
        let mut outcomes = Vec::new();
        let mut solo_outcomes = Vec::new();
        let mut failures = Vec::new();
        let names = scenarios
            .iter()
            .map(|s| s.name.clone())
            .chain(solos.iter().map(|s| s.name.clone()));
        for (i, (name, estimate)) in names.zip(&estimates).enumerate() {
            eprintln!(
                "compare: [{}/{total}] {name}: estimated {:.0}s, {} left, {} so far",
                i + 1,
                estimate.as_secs_f64(),
                minutes(left),
                minutes(run_started.elapsed())
            );
            left = left.saturating_sub(*estimate);
            let started = Instant::now();
            let result = if i < scenarios.len() {
                run_scenario(&scenarios[i]).await.map(|o| outcomes.push(o))
            } else {
                run_solo(&solos[i - scenarios.len()])
                    .await
                    .map(|o| solo_outcomes.push(o))
            };
            match result {
                Ok(()) => eprintln!(
                    "compare: [{}/{total}] {name}: done in {:.0}s",
                    i + 1,
                    started.elapsed().as_secs_f64()
                ),
                Err(e) => {
                    eprintln!("compare: {name} failed: {e:#}");
                    if cli.quick {
                        return ExitCode::FAILURE;
                    }
                    // The other scenarios still make a report; this one is
                    // listed in it as not run.
                    failures.push(Failure {
                        name,
                        error: format!("{e:#}"),
                    });
                }
            }
        }
        eprintln!(
            "compare: all runs done in {}",
            minutes(run_started.elapsed())
        );
        let command = if cli.quick {
            "cargo run --release -p alert-poller-experiments --bin compare -- --quick".to_string()
        } else if cli.only.is_empty() {
            format!(
                "cargo run --release -p alert-poller-experiments --bin compare -- --out {}",
                cli.out.display()
            )
        } else {
            format!(
                "cargo run --release -p alert-poller-experiments --bin compare -- --out {} --only {}",
                cli.out.display(),
                cli.only.join(",")
            )
        };
        let written = report::write(
            &cli.out,
            &report::Results {
                outcomes: &outcomes,
                solo: &solo_outcomes,
                failures: &failures,
                command: &command,
                partial: !cli.only.is_empty(),
            },
        );
        if let Err(e) = written {
            eprintln!("compare: cannot write the report: {e:#}");
            return ExitCode::FAILURE;
        }
        let missed = report::missed(&outcomes);
        for m in &missed {
            eprintln!("compare: MISSED {m}");
        }
        print!("{}", report::summary_table(&outcomes));
        // Each design seeing each change counts as one check.
        let checks: usize = outcomes.iter().map(|o| report::reactions(o).len()).sum();
        println!(
            "compare: {} passed, {} failed",
            checks.saturating_sub(missed.len()),
            missed.len()
        );
        // Quick mode asserts every change was seen; the full run reports
        // misses as findings and fails only when a run could not be made.
        let failed = if cli.quick {
            !missed.is_empty()
        } else {
            !failures.is_empty()
        };
        if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// The agent process: runs one design until SIGTERM, then writes its report.
async fn run_agent(config: &str, report: &Path) -> ExitCode {
    let config: AgentConfig = match serde_json::from_str(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("agent: bad config: {e}");
            return ExitCode::FAILURE;
        }
    };
    alert_poller::prometheus::install_crypto_provider();
    let stop = tokio_util::sync::CancellationToken::new();
    let signal_stop = stop.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal");
        term.recv().await;
        signal_stop.cancel();
    });
    let ready = || println!("READY");
    match agent::run(config, ready, stop, report.with_extension("live")).await {
        Ok(r) => {
            std::fs::write(report, serde_json::to_vec(&r).expect("serializes"))
                .expect("report written");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}
