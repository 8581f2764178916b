//! The timed run: changes in the first half, quiet in the second, with the
//! controller's CPU and the API server's write count sampled throughout so
//! the report can show when the writes happened, not only how many.

use std::time::{Duration, Instant};

use alert_poller_testbed::collector::{Component, Flow};
use alert_poller_testbed::controller::ControllerProcess;
use alert_poller_testbed::controlplane::Kubectl;
use alert_poller_testbed::usage;
use anyhow::{Context, Result, ensure};

use crate::bed::{Bed, server_status_writes};
use crate::{Cli, Log};

/// The controller's CPU seconds and the API server's write count at `at`
/// into the timed run, as counted since the process or server started.
pub struct Sample {
    pub at: Duration,
    pub cpu: f64,
    pub writes: f64,
}

impl Sample {
    /// The controller's CPU so far and the API server's status writes, now.
    fn take(at: Duration, pid: u32, kubectl: &Kubectl) -> Result<Sample> {
        Ok(Sample {
            at,
            cpu: usage(pid).0,
            writes: server_status_writes(kubectl)?,
        })
    }
}

/// What the timed run saw, and the baselines its figures are taken from.
pub struct Drive {
    pub started: Instant,
    pub polls_before: f64,
    pub prometheus_cpu_before: f64,
    /// Every 30 s, the first at the start.
    pub samples: Vec<Sample>,
    /// Breaks and mends injected.
    pub changes: usize,
    /// When the quiet half was taken to start, and the writes by then.
    pub quiet_from: Duration,
    pub quiet_start_writes: f64,
    pub end_writes: f64,
}

/// The breaks and mends of the first half, one pipeline at a time.
struct Injector {
    broken: Option<String>,
    changes: usize,
    next: Duration,
}

impl Injector {
    /// No pipeline broken yet; the first break at `at`.
    fn first_at(at: Duration) -> Injector {
        Injector {
            broken: None,
            changes: 0,
            next: at,
        }
    }
    /// Breaks or mends a pipeline when one is due: in the first half
    /// either, after it only the mend of whatever is still broken.
    fn tick(&mut self, now: Duration, half: Duration, bed: &Bed, every: Duration) {
        if now < self.next || (now >= half && self.broken.is_none()) {
            return;
        }
        match self.broken.take() {
            Some(p) => {
                bed.collector
                    .set_flow(Component::Gateway, &p, Flow::Healthy);
            }
            None => {
                let p = bed.names[(self.changes * 7919) % bed.names.len()].clone();
                bed.collector
                    .set_flow(Component::Gateway, &p, Flow::AllDropped);
                self.broken = Some(p);
            }
        }
        self.changes += 1;
        self.next += every;
    }
}

/// The timed run: a break or a mend every `--change-every` in the first
/// half, nothing in the second, sampling CPU and writes every 30 s.
pub async fn run(
    cli: &Cli,
    bed: &Bed,
    controller: &mut ControllerProcess,
    log: &Log,
) -> Result<Drive> {
    let kubectl = &bed.kubectl;
    let total = Duration::from_secs(cli.minutes * 60);
    let half = total / 2;
    let run_start = Instant::now();
    let pid = controller.pid();
    let polls_before = controller
        .metric(r#"alert_poller_polls_total{result="success"}"#)
        .await
        .unwrap_or(0.0);
    let mut samples = vec![Sample::take(Duration::ZERO, pid, kubectl)?];
    let prometheus_cpu_before = usage(bed.prometheus.pid().unwrap_or(0)).0;
    let mut injector = Injector::first_at(Duration::from_secs(5));
    let mut next_sample = Duration::from_secs(30);
    let mut half_writes = None;
    while run_start.elapsed() < total {
        let now = run_start.elapsed();
        injector.tick(now, half, bed, cli.change_every);
        if now >= next_sample {
            samples.push(Sample::take(now, pid, kubectl)?);
            log.say(&format!(
                "{:.0}s: {} changes injected, {:.0} status writes so far",
                now.as_secs_f64(),
                injector.changes,
                samples.last().map_or(0.0, |s| s.writes) - samples[0].writes
            ));
            next_sample += Duration::from_secs(30);
        }
        // The quiet half starts once the last mend had time to be written.
        if half_writes.is_none() && now >= half + Duration::from_secs(30) {
            half_writes = Some((now, server_status_writes(kubectl)?));
        }
        ensure!(
            controller.alive(),
            "the controller died:\n{}",
            controller.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let end_writes = server_status_writes(kubectl)?;
    let (quiet_from, quiet_start_writes) = half_writes.context("the run was too short")?;
    Ok(Drive {
        started: run_start,
        polls_before,
        prometheus_cpu_before,
        samples,
        changes: injector.changes,
        quiet_from,
        quiet_start_writes,
        end_writes,
    })
}
