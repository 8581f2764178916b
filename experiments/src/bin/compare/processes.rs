//! The designs as child processes (`compare agent`): started, snapshotted,
//! stopped and, in a disruption scenario, started again. A design in its
//! own process has its own CPU time and memory to measure, and one that
//! falls over cannot take the others with it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

use alert_poller_experiments::unix_ms;
use alert_poller_testbed::{free_port, usage};
use anyhow::{Context, Result, bail};

use crate::agent::{self, AgentConfig, AgentReport, Design};
use crate::bed::Bed;
use crate::designs::DesignSpec;
use crate::outcome::Stable;

/// One design running in a child process (`compare agent`).
pub struct AgentProcess {
    spec: DesignSpec,
    child: Child,
    report: PathBuf,
    /// When it was spawned (Unix ms).
    started_ms: u64,
}

impl AgentProcess {
    pub fn start(spec: &DesignSpec, config: &AgentConfig, dir: &Path) -> Result<AgentProcess> {
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

    pub fn stop(mut self) -> Result<(DesignSpec, AgentReport)> {
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
    pub fn cpu(&self) -> f64 {
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

pub async fn snapshots(agents: &[AgentProcess]) -> Vec<AgentReport> {
    let mut out = Vec::new();
    for a in agents {
        out.push(a.snapshot().await);
    }
    out
}

/// A listen address for each push design (Prometheus' alertmanagers).
pub fn listens(designs: &[DesignSpec]) -> Vec<Option<String>> {
    designs
        .iter()
        .map(|d| (d.design != Design::Pull).then(|| format!("127.0.0.1:{}", free_port())))
        .collect()
}

pub fn alertmanagers(listens: &[Option<String>]) -> Vec<SocketAddr> {
    listens
        .iter()
        .flatten()
        .map(|l| l.parse().expect("an address"))
        .collect()
}

pub fn start_agents(
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
/// The designs of a scenario as processes: those running now, and the
/// reports of those stopped in a disruption scenario, so that every design
/// ends with one report over all its incarnations.
pub struct Agents {
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
    pub fn start(
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

    pub fn stop_running(&mut self) -> Result<()> {
        for (i, agent) in std::mem::take(&mut self.running).into_iter().enumerate() {
            self.stopped[i].push(agent.stop()?.1);
        }
        Ok(())
    }

    pub fn start_again(&mut self, bed: &Bed) -> Result<()> {
        self.running = start_agents(&self.designs, &self.listens, bed, &self.dir)?;
        for agent in &self.running {
            self.restarts
                .entry(agent.spec.label.clone())
                .or_default()
                .push(agent.started_ms);
        }
        Ok(())
    }

    pub async fn snapshots(&self) -> Vec<AgentReport> {
        snapshots(&self.running).await
    }

    /// Stops every design; one report each, over all its incarnations.
    pub fn stop(mut self) -> Result<Vec<(DesignSpec, AgentReport)>> {
        self.stop_running()?;
        Ok(self
            .designs
            .iter()
            .zip(&self.stopped)
            .map(|(spec, reports)| (spec.clone(), agent::merged(reports)))
            .collect())
    }

    /// What each design cost over `stable`, while nothing changes.
    pub async fn count_stable(&self, stable: Duration) -> Vec<Stable> {
        let before = self.snapshots().await;
        tokio::time::sleep(stable).await;
        let after = self.snapshots().await;
        self.running
            .iter()
            .zip(before.iter().zip(&after))
            .map(|(a, (b, e))| Stable {
                label: a.spec.label.clone(),
                requests: e.prometheus_requests.saturating_sub(b.prometheus_requests),
                bytes: e.prometheus_bytes.saturating_sub(b.prometheus_bytes),
                reconciles: e.reconciles.saturating_sub(b.reconciles),
            })
            .collect()
    }

    /// When each design was started again (Unix ms), by label.
    pub fn restarts(&self) -> &BTreeMap<String, Vec<u64>> {
        &self.restarts
    }
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
