//! Runs designs as processes of their own against a test bed and injects
//! the faults: each scenario and solo run from start to figures. A design
//! in its own process has its own CPU time and memory to measure, and one
//! that falls over cannot take the others with it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use alert_poller_experiments::unix_ms;
use alert_poller_testbed::collector::{Component, Flow};
use alert_poller_testbed::{TempDir, free_port, usage};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::agent::{self, AgentConfig, AgentReport, Design};
use crate::bed::{Bed, BedSetup, until_firing};
use crate::pipelines;
use crate::scenarios::{
    DesignSpec, SOLO_MEASURED, SOLO_NOISE, SOLO_PIPELINES, SOLO_SETTLE, Scenario, SoloRun,
};
use crate::truth;

/// Steady-state counters of one design: what it cost while nothing changed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
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
    /// When each design (by label) was started again, in a disruption
    /// scenario (Unix ms). Per design: they start one after another, and a
    /// design started first may have set its statuses before the last one
    /// is up, so one instant for all would misplace its start.
    pub restarts: BTreeMap<String, Vec<u64>>,
    /// When the run was made and from which code, so a report that mixes
    /// saved runs says which figures came from which version.
    pub provenance: Provenance,
}

/// When a run was recorded, the commit it was built from and what it ran on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Provenance {
    pub recorded_unix_ms: u64,
    /// `git describe`-like: the commit, `-dirty` with uncommitted changes;
    /// `None` for runs saved before this was recorded.
    pub code: Option<String>,
    /// The machine, kernel, Rust and Prometheus; `None` in older records.
    pub environment: Option<Environment>,
}

/// What a run ran on, recorded with it, since the pieces of a full run may
/// be made on different days or machines.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    pub machine: String,
    pub kernel: String,
    pub rust: String,
    pub prometheus: String,
}

impl Environment {
    /// The environment now, with the Prometheus binary the run uses.
    pub fn of(prometheus: &str) -> Environment {
        let first_line = |program: &str, args: &[&str]| {
            Command::new(program)
                .args(args)
                .output()
                .ok()
                .map(|o| {
                    let text = if o.stdout.is_empty() {
                        o.stderr
                    } else {
                        o.stdout
                    };
                    String::from_utf8_lossy(&text)
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_owned()
                })
                .unwrap_or_default()
        };
        Environment {
            machine: crate::report::machine(),
            kernel: first_line("uname", &["-sr"]),
            rust: first_line("rustc", &["--version"]),
            prometheus: first_line(prometheus, &["--version"]),
        }
    }
}

/// What decides a measurement, as git pathspecs: the whole tree but what
/// `compare` itself writes (the report, its CSVs and plots, the saved
/// runs), so that a run saved into a checkout of the commit does not mark
/// the next one as made from uncommitted code.
pub const MEASURED: [&str; 5] = [
    ":(top)",
    ":(top,exclude)experiments/runs",
    ":(top,exclude)experiments/report.md",
    ":(top,exclude,glob)experiments/*.csv",
    ":(top,exclude,glob)experiments/*.svg",
];

impl Provenance {
    /// The working tree's commit, if it is a git checkout. Taken when a run
    /// starts, so that editing the tree during an hour-long run does not
    /// mark it as made from uncommitted code.
    pub fn code() -> Option<String> {
        let git = |args: &[&str]| {
            Command::new("git")
                .args(args)
                .stderr(Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        };
        git(&["rev-parse", "--short", "HEAD"]).map(|commit| {
            let mut status = vec!["status", "--porcelain", "--untracked-files=no", "--"];
            status.extend(MEASURED);
            let dirty = git(&status).is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{commit}-dirty")
            } else {
                commit
            }
        })
    }

    /// A run of `code`, recorded now.
    pub fn recorded_now(code: Option<String>, environment: Environment) -> Provenance {
        Provenance {
            recorded_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64,
            code,
            environment: Some(environment),
        }
    }
}

/// What a solo run measured over its stable phase.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SoloOutcome {
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
    /// The commit it was built from; absent in older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// One design running in a child process (`compare agent`).
struct AgentProcess {
    spec: DesignSpec,
    child: Child,
    report: PathBuf,
    /// When it was spawned (Unix ms).
    started_ms: u64,
}

impl AgentProcess {
    fn start(spec: &DesignSpec, config: &AgentConfig, dir: &Path) -> Result<AgentProcess> {
        let report = dir.join(format!("{}.json", spec.label));
        let started_ms = unix_ms();
        let mut child = Command::new(std::env::current_exe()?)
            .arg("agent")
            .arg("--config")
            .arg(serde_json::to_string(config)?)
            .arg("--report")
            .arg(&report)
            .env("COMPARE_DESIGN", &spec.label)
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
            started_ms,
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
        let _ = alert_poller_testbed::signal::send(
            self.child.id(),
            alert_poller_testbed::signal::Signal::Term,
        );
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

/// The child's side of [`AgentProcess`]: runs one design, says `READY` on
/// stdout once it listens, and writes its report on SIGTERM.
pub async fn agent_main(config: &str, report: &Path) -> ExitCode {
    let config: AgentConfig = match serde_json::from_str(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("agent: bad config: {e}");
            return ExitCode::FAILURE;
        }
    };
    alert_poller::prometheus::install_crypto_provider();
    // Silent unless RUST_LOG asks: then the design's poller logs to the
    // run's stderr, each line starting with the design, for a look at why a
    // figure is what it is.
    if std::env::var_os("RUST_LOG").is_some() {
        let design = std::env::var("COMPARE_DESIGN").unwrap_or_default();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_ansi(false)
            .with_writer(move || Prefixed(design.clone(), std::io::stderr()))
            .init();
    }
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

async fn snapshots(agents: &[AgentProcess]) -> Vec<AgentReport> {
    let mut out = Vec::new();
    for a in agents {
        out.push(a.snapshot().await);
    }
    out
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
            pipelines: bed.pipelines.clone(),
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

/// The Prometheus 3 binary, built from Go modules and cached by
/// `tests/prometheus3/build.sh` (which prints its path; a warm cache
/// answers at once).
fn prometheus3() -> Result<String> {
    let out = Command::new("bash")
        .arg("tests/prometheus3/build.sh")
        .stderr(Stdio::inherit())
        .output()
        .context("running tests/prometheus3/build.sh (run compare from the repository root)")?;
    if !out.status.success() {
        bail!("tests/prometheus3/build.sh failed: {}", out.status);
    }
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if path.is_empty() {
        bail!("tests/prometheus3/build.sh printed no path");
    }
    Ok(path)
}

/// Runs one scenario: the designs side by side on one bed, each fault
/// broken and mended in turn, then the stable phase.
pub async fn run_scenario(s: &Scenario) -> Result<Outcome> {
    let code = Provenance::code();
    let listens = listens(&s.designs);
    let bed = Bed::start(&BedSetup {
        pipelines: s.pipelines,
        evaluation: s.evaluation,
        window: s.window(),
        hold: s.hold(),
        resend_delay: s.resend_delay,
        noise: s.noise,
        background_alert: s.background_alert,
        alertmanagers: alertmanagers(&listens),
        prometheus: if s.prometheus3 {
            Some(prometheus3()?)
        } else {
            None
        },
    })
    .await?;
    let environment = Environment::of(bed.prometheus.binary());
    let dir = TempDir::new("compare")?;
    start_at_a_random_moment(s.evaluation).await;
    let mut agents = Agents::start(&s.designs, listens, &bed, dir.path())?;
    let started = Instant::now();
    let cpu_before = usage(bed.prometheus.pid().unwrap_or(0)).0;
    // Let every design settle on the initial state.
    tokio::time::sleep(s.evaluation * 2 + Duration::from_secs(2)).await;

    let injected = if s.disruption.is_some() {
        disrupted_changes(s, &bed, &mut agents, started).await?
    } else {
        let lanes = (0..s.lanes.max(1)).map(|lane| lane_of_changes(s, &bed, lane, started));
        let mut all: Vec<Injected> = futures::future::try_join_all(lanes)
            .await?
            .into_iter()
            .flatten()
            .collect();
        all.sort_by_key(|c| c.1);
        all
    };

    // The stable phase: nothing changes; count what each design still costs.
    let before = agents.snapshots().await;
    tokio::time::sleep(s.stable).await;
    let after = agents.snapshots().await;
    let stable = agents
        .running
        .iter()
        .zip(before.iter().zip(&after))
        .map(|(a, (b, e))| Stable {
            label: a.spec.label.clone(),
            requests: e.prometheus_requests.saturating_sub(b.prometheus_requests),
            bytes: e.prometheus_bytes.saturating_sub(b.prometheus_bytes),
            reconciles: e.reconciles.saturating_sub(b.reconciles),
        })
        .collect();
    let prometheus_cpu = usage(bed.prometheus.pid().unwrap_or(0)).0 - cpu_before;
    let duration = started.elapsed();
    let restarts = agents.restarts.clone();
    let reports = agents.stop()?;
    let truths = truth::changes(&bed.prometheus.url(), &injected, s.evaluation).await?;
    Ok(Outcome {
        scenario: s.clone(),
        reports,
        truths,
        prometheus_cpu,
        duration,
        stable,
        restarts,
        provenance: Provenance::recorded_now(code, environment),
    })
}

/// Waits a random part of an evaluation interval, as a pod starts at any
/// moment of Prometheus' cycle. The bed is ready just after an evaluation,
/// and a poller that ignores the evaluation but whose interval divides it
/// (30s, or 5s doubling, at a 30s evaluation) keeps the phase it starts at
/// for the whole run: started with the bed, it would always poll just
/// after an evaluation.
async fn start_at_a_random_moment(evaluation: Duration) {
    let wait = Duration::from_millis(fastrand::u64(0..evaluation.as_millis().max(1) as u64));
    eprintln!(
        "compare:   designs start after a random wait of {} ms (evaluation {}s)",
        wait.as_millis(),
        evaluation.as_secs()
    );
    tokio::time::sleep(wait).await;
}

/// A fault: the pipeline, when it was broken and when mended (Unix ms).
type Injected = (pipelines::Pipeline, u64, u64);

/// One lane's changes ([`Scenario::lane_changes`], from
/// [`Scenario::lane_start`]), each on a pipeline of the lane's own.
async fn lane_of_changes(
    s: &Scenario,
    bed: &Bed,
    lane: usize,
    started: Instant,
) -> Result<Vec<Injected>> {
    tokio::time::sleep(s.lane_start(lane)).await;
    let mut out = Vec::new();
    for (k, i) in s.lane_changes(lane).enumerate() {
        let pipeline = pipelines::faulty_in_lane(&bed.pipelines, s.lanes.max(1), lane, k);
        progress(s, i, pipeline, started);
        let broke = inject(s, bed, pipeline, Flow::AllDropped).await?;
        tokio::time::sleep(s.settle()).await;
        let mended = inject(s, bed, pipeline, Flow::Healthy).await?;
        tokio::time::sleep(s.settle()).await;
        out.push((pipeline.clone(), broke, mended));
    }
    Ok(out)
}

/// The changes of a disruption scenario, one after the other: the designs
/// are stopped before each break and each mend, and started again `down`
/// after Prometheus shows it, so every change happens while none runs.
async fn disrupted_changes(
    s: &Scenario,
    bed: &Bed,
    agents: &mut Agents,
    started: Instant,
) -> Result<Vec<Injected>> {
    let down = s.disruption.map_or(Duration::ZERO, |d| d.down);
    let mut out = Vec::new();
    for i in 0..s.changes {
        let pipeline = pipelines::faulty(&bed.pipelines, i);
        progress(s, i, pipeline, started);
        let mut at = [0; 2];
        for (n, flow) in [Flow::AllDropped, Flow::Healthy].into_iter().enumerate() {
            agents.stop_running()?;
            at[n] = inject(s, bed, pipeline, flow).await?;
            tokio::time::sleep(down).await;
            agents.start_again(bed)?;
            tokio::time::sleep(s.settle()).await;
        }
        out.push((pipeline.clone(), at[0], at[1]));
    }
    Ok(out)
}

fn progress(s: &Scenario, i: usize, pipeline: &pipelines::Pipeline, started: Instant) {
    eprintln!(
        "compare:   change {}/{} on {pipeline} ({:.0}s in)",
        i + 1,
        s.changes,
        started.elapsed().as_secs_f64()
    );
}

/// Breaks or mends (`flow`) the pipeline's gateway (every kind's pipelines
/// pass it, so one fault serves all) and waits until Prometheus shows it.
/// Returns when the fault was injected (Unix ms).
async fn inject(
    s: &Scenario,
    bed: &Bed,
    pipeline: &pipelines::Pipeline,
    flow: Flow,
) -> Result<u64> {
    let at = unix_ms();
    let name = pipeline.name.as_str();
    bed.collector
        .set_flow_of(pipeline.bed_kind(), Component::Gateway, name, flow);
    until_firing(&bed.prometheus, name, flow != Flow::Healthy, s.limit()).await?;
    Ok(at)
}

/// The designs of a scenario as processes: those running now, and the
/// reports of those stopped in a disruption scenario, so that every design
/// ends with one report over all its incarnations.
struct Agents {
    designs: Vec<DesignSpec>,
    listens: Vec<Option<String>>,
    dir: PathBuf,
    running: Vec<AgentProcess>,
    /// Per design, the reports of its stopped incarnations.
    stopped: Vec<Vec<AgentReport>>,
    /// When each design was started again (Unix ms), by label.
    restarts: BTreeMap<String, Vec<u64>>,
}

impl Agents {
    fn start(
        designs: &[DesignSpec],
        listens: Vec<Option<String>>,
        bed: &Bed,
        dir: &Path,
    ) -> Result<Agents> {
        let running = start_agents(designs, &listens, bed, dir)?;
        Ok(Agents {
            designs: designs.to_vec(),
            listens,
            dir: dir.to_owned(),
            running,
            stopped: vec![Vec::new(); designs.len()],
            restarts: BTreeMap::new(),
        })
    }

    fn stop_running(&mut self) -> Result<()> {
        for (i, agent) in std::mem::take(&mut self.running).into_iter().enumerate() {
            self.stopped[i].push(agent.stop()?.1);
        }
        Ok(())
    }

    fn start_again(&mut self, bed: &Bed) -> Result<()> {
        self.running = start_agents(&self.designs, &self.listens, bed, &self.dir)?;
        for agent in &self.running {
            self.restarts
                .entry(agent.spec.label.clone())
                .or_default()
                .push(agent.started_ms);
        }
        Ok(())
    }

    async fn snapshots(&self) -> Vec<AgentReport> {
        snapshots(&self.running).await
    }

    /// Stops every design; one report each, over all its incarnations.
    fn stop(mut self) -> Result<Vec<(DesignSpec, AgentReport)>> {
        self.stop_running()?;
        Ok(self
            .designs
            .iter()
            .zip(&self.stopped)
            .map(|(spec, reports)| (spec.clone(), agent::merged(reports)))
            .collect())
    }
}

/// One design (or none) alone with a fresh Prometheus: Prometheus' CPU over
/// a stable minute, so each design's cost to Prometheus shows on its own.
pub async fn run_solo(run: &SoloRun) -> Result<SoloOutcome> {
    let code = Provenance::code();
    let designs: Vec<DesignSpec> = run.design.iter().cloned().collect();
    let listens = listens(&designs);
    let evaluation = Duration::from_secs(1);
    let bed = Bed::start(&BedSetup {
        pipelines: SOLO_PIPELINES,
        evaluation,
        window: evaluation * 3,
        hold: Duration::ZERO,
        resend_delay: None,
        noise: SOLO_NOISE,
        background_alert: true,
        alertmanagers: alertmanagers(&listens),
        prometheus: None,
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
        code,
    };
    for a in agents {
        a.stop()?;
    }
    Ok(outcome)
}

/// A log writer that starts each line with the design's label.
struct Prefixed(String, std::io::Stderr);

impl std::io::Write for Prefixed {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut out = self.1.lock();
        out.write_all(format!("{} ", self.0).as_bytes())?;
        out.write_all(line)?;
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.1.flush()
    }
}
