//! The comparison experiments: one real Prometheus evaluating the shipped
//! MetricPipeline rules, the push design and the pull design running against
//! it side by side, each in its own process, and the same faults injected for
//! all. Reaction times are measured against ground truth read from Prometheus
//! itself: the evaluation at which an alert started (or stopped) firing.
//!
//!   cargo run --release --bin compare -- --quick            # CI smoke test, < 3 min
//!   cargo run --release --bin compare -- --out experiments  # the report
//!
//! Writes `report.md`, `latency.csv` and `summary.csv` to `--out`.

mod agent;
mod plot;
mod report;
mod truth;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use agent::{AgentConfig, AgentReport, Design};
use alert_poller::testbed::collector::{Collector, Component, Flow};
use alert_poller::testbed::prometheus::{Prometheus, Setup};
use alert_poller::testbed::{TempDir, free_port, rules};
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
    pub evaluation: Duration,
    pub resend_delay: Option<Duration>,
    pub pipelines: usize,
    /// Faults injected one after the other (break, then mend).
    pub changes: usize,
    /// Time with no change at the end, for the steady-state cost.
    pub stable: Duration,
    /// One pipeline dropping some data for the whole run, so that firing
    /// alerts exist while stable (what makes Prometheus re-send).
    pub background_alert: bool,
    pub designs: Vec<DesignSpec>,
}

/// What one scenario measured.
#[derive(Debug)]
pub struct Outcome {
    pub scenario: Scenario,
    pub reports: Vec<(DesignSpec, AgentReport)>,
    pub truths: Vec<truth::Change>,
    pub prometheus_cpu: f64,
    pub duration: Duration,
    /// Request and reconcile counts during the stable phase only.
    pub stable_counts: Vec<(String, u64, u64)>,
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
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait()?;
        let report: AgentReport = serde_json::from_slice(
            &std::fs::read(&self.report)
                .with_context(|| format!("no report from {}", self.spec.label))?,
        )?;
        Ok((self.spec, report))
    }

    /// Counters so far, read from the agent's live file (written each second).
    fn snapshot(&self) -> Option<AgentReport> {
        serde_json::from_slice(&std::fs::read(self.report.with_extension("live")).ok()?).ok()
    }
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

async fn run_scenario(s: &Scenario) -> Result<Outcome> {
    let names: Vec<String> = (0..s.pipelines).map(|i| format!("p{i}")).collect();
    // p0 carries the background alert; faults go to the others (or p0 alone).
    let faulty = |i: usize| {
        &names[if names.len() > 1 {
            1 + i % (names.len() - 1)
        } else {
            0
        }]
    };
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let collector = Collector::start(&refs).await?;
    if s.background_alert {
        collector.set_flow(Component::Gateway, "p0", Flow::SomeDropped);
    }
    let listens: Vec<Option<String>> = s
        .designs
        .iter()
        .map(|d| (d.design != Design::Pull).then(|| format!("127.0.0.1:{}", free_port())))
        .collect();
    let window = s.evaluation * 3;
    let prometheus = Prometheus::start(&Setup {
        scrape_interval: s.evaluation,
        evaluation_interval: s.evaluation,
        rules: rules::fast(window, Duration::ZERO, s.evaluation),
        collector: Some(collector.addr()),
        alertmanagers: listens
            .iter()
            .flatten()
            .map(|l| l.parse().expect("an address"))
            .collect(),
        resend_delay: s.resend_delay,
    })
    .await?;
    if s.background_alert {
        until_firing(
            &prometheus,
            "p0",
            true,
            window * 4 + Duration::from_secs(10),
        )
        .await?;
    }

    let dir = TempDir::new("compare")?;
    let mut agents = Vec::new();
    for (spec, listen) in s.designs.iter().zip(&listens) {
        let config = AgentConfig {
            design: spec.design,
            prometheus: prometheus.url(),
            pipelines: names.clone(),
            listen: listen.clone(),
            tuning: spec
                .tuning
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .chain([
                    ("prometheusUrl".to_string(), prometheus.url()),
                    ("maxResponseBytes".to_string(), "256Mi".to_string()),
                    ("requestTimeout".to_string(), "10s".to_string()),
                    ("staleAfter".to_string(), "10m".to_string()),
                ])
                .collect(),
        };
        agents.push(AgentProcess::start(spec, &config, dir.path())?);
    }
    let started = Instant::now();
    let cpu_before = alert_poller::testbed::usage(prometheus.pid().unwrap_or(0)).0;
    // Let every design settle on the initial state.
    tokio::time::sleep(s.evaluation * 2 + Duration::from_secs(2)).await;

    // The slowest design may need its longest interval to notice.
    let settle = s
        .designs
        .iter()
        .filter_map(|d| d.tuning.iter().find(|(k, _)| *k == "maxInterval"))
        .filter_map(|(_, v)| humantime::parse_duration(v).ok())
        .max()
        .unwrap_or_default()
        + s.evaluation * 2
        + Duration::from_secs(1);
    let limit = window * 4 + s.evaluation * 4 + Duration::from_secs(10);
    let mut injected = Vec::new();
    for i in 0..s.changes {
        let pipeline = faulty(i);
        let broke = now_ms();
        collector.set_flow(Component::Gateway, pipeline, Flow::AllDropped);
        until_firing(&prometheus, pipeline, true, limit).await?;
        tokio::time::sleep(settle).await;
        let mended = now_ms();
        collector.set_flow(Component::Gateway, pipeline, Flow::Healthy);
        until_firing(&prometheus, pipeline, false, limit).await?;
        tokio::time::sleep(settle).await;
        injected.push((pipeline.clone(), broke, mended));
    }

    // The stable phase: nothing changes; count what each design still costs.
    let before: Vec<Option<AgentReport>> = agents.iter().map(AgentProcess::snapshot).collect();
    tokio::time::sleep(s.stable).await;
    let after: Vec<Option<AgentReport>> = agents.iter().map(AgentProcess::snapshot).collect();
    let stable_counts = agents
        .iter()
        .zip(before.iter().zip(&after))
        .map(|(a, (b, e))| {
            let (b, e) = (b.clone().unwrap_or_default(), e.clone().unwrap_or_default());
            (
                a.spec.label.clone(),
                e.prometheus_requests.saturating_sub(b.prometheus_requests),
                e.reconciles.saturating_sub(b.reconciles),
            )
        })
        .collect();
    let prometheus_cpu = alert_poller::testbed::usage(prometheus.pid().unwrap_or(0)).0 - cpu_before;
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
        stable_counts,
    })
}

fn quick() -> Vec<Scenario> {
    vec![Scenario {
        name: "quick".into(),
        evaluation: Duration::from_secs(1),
        resend_delay: Some(Duration::from_secs(5)),
        pipelines: 10,
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

fn full() -> Vec<Scenario> {
    let designs = |max_adaptive: &str| {
        vec![
            push("push-all", Design::PushAll),
            push("push-scoped", Design::PushScoped),
            pull("pull-fixed-1s", "1s", "1s", "1"),
            pull("pull-fixed-5s", "5s", "5s", "1"),
            pull("pull-fixed-30s", "30s", "30s", "1"),
            pull("pull-adaptive", "1s", max_adaptive, "1.5"),
            // Phase-locked: after every evaluation, or skipping evaluations
            // as the adaptive schedule allows.
            phase_locked("pull-locked-every-eval", "1s", "1s", "1"),
            phase_locked("pull-locked-adaptive", "1s", max_adaptive, "1.5"),
        ]
    };
    let mut out = Vec::new();
    for pipelines in [1, 10, 100] {
        out.push(Scenario {
            name: format!("eval-1s-{pipelines}-pipelines"),
            evaluation: Duration::from_secs(1),
            resend_delay: None,
            pipelines,
            changes: 5,
            stable: Duration::from_secs(120),
            // The background alert needs a pipeline of its own.
            background_alert: pipelines > 1,
            designs: designs("15s"),
        });
    }
    out
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
        let scenarios = if cli.quick { quick() } else { full() };
        let mut outcomes = Vec::new();
        for s in &scenarios {
            eprintln!("compare: scenario {} ...", s.name);
            match run_scenario(s).await {
                Ok(o) => outcomes.push(o),
                Err(e) => {
                    eprintln!("compare: scenario {} failed: {e:#}", s.name);
                    return ExitCode::FAILURE;
                }
            }
        }
        if let Err(e) = report::write(&cli.out, &outcomes, cli.quick) {
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
        if missed.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
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
