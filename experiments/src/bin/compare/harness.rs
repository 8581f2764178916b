//! Runs the scenarios and solo runs from start to figures: a test bed, the
//! designs started at a random moment of Prometheus' cycle, the faults
//! injected (and, in a disruption scenario, the designs stopped around
//! each), then the stable phase and the truth read back from Prometheus.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use alert_poller_experiments::unix_ms;
use alert_poller_testbed::collector::{Component, Flow};
use alert_poller_testbed::{TempDir, usage};
use anyhow::{Context, Result, bail};

use crate::agent::AgentReport;
use crate::bed::{Bed, BedSetup, until_firing};
use crate::designs::DesignSpec;
use crate::outcome::{Outcome, SoloOutcome};
use crate::pipelines;
use crate::processes::{AgentProcess, Agents, alertmanagers, listens, snapshots, start_agents};
use crate::provenance::{Environment, Provenance};
use crate::scenarios::{SOLO_MEASURED, SOLO_NOISE, SOLO_PIPELINES, SOLO_SETTLE, Scenario, SoloRun};
use crate::truth;

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
    let stable = agents.count_stable(s.stable).await;
    let prometheus_cpu = usage(bed.prometheus.pid().unwrap_or(0)).0 - cpu_before;
    let duration = started.elapsed();
    let restarts = agents.restarts().clone();
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
