//! The whole run: every scenario and solo run in turn, with an estimate up
//! front and a progress line for each, because the full run takes about
//! six hours and someone will want to know how much is left. A run that
//! fails is recorded and the others go on, so hours are not lost to one
//! fault; each finished run is saved (`record`), so an interrupted full run
//! resumes where it stopped.

use std::path::Path;
use std::time::{Duration, Instant};

use alert_poller_experiments::unix_ms;

use crate::harness;
use crate::outcome::{Outcome, SoloOutcome};
use crate::provenance::Provenance;
use crate::record;
use crate::scenarios::{Scenario, SoloRun};

/// How a run treats failures and saved runs.
pub struct Options<'a> {
    /// The quick run: the first failure ends it (any failure fails the
    /// check) and `all` returns `None`; otherwise failures are collected
    /// for the report.
    pub stop_on_failure: bool,
    /// Where finished runs are saved, if anywhere.
    pub save: Option<&'a Path>,
    /// Take saved runs of the same fingerprint instead of running them.
    pub resume: bool,
}

/// A scenario or solo run that could not be run to its end.
#[derive(Debug)]
pub struct Failure {
    pub name: String,
    pub error: String,
}

/// Everything measured, and what could not be.
#[derive(Default)]
pub struct Runs {
    pub outcomes: Vec<Outcome>,
    pub solo: Vec<SoloOutcome>,
    pub failures: Vec<Failure>,
}

fn minutes(d: Duration) -> String {
    format!("{:.1} min", d.as_secs_f64() / 60.0)
}

/// What is already saved for a run, when resuming.
enum Saved {
    Scenario(Box<Outcome>),
    Solo(SoloOutcome),
}

fn saved(opts: &Options, scenarios: &[Scenario], solos: &[SoloRun], i: usize) -> Option<Saved> {
    let out = opts.save.filter(|_| opts.resume)?;
    let code = Provenance::code();
    let loaded = if i < scenarios.len() {
        record::load_scenario(out, &scenarios[i], &code)
            .map(|o| o.map(|o| Saved::Scenario(Box::new(o))))
    } else {
        record::load_solo(out, &solos[i - scenarios.len()], &code).map(|o| o.map(Saved::Solo))
    };
    loaded.unwrap_or_else(|e| {
        eprintln!("compare: cannot resume from a saved run, running it again: {e:#}");
        None
    })
}

/// Runs the scenarios, then the solo runs, taking saved ones when resuming.
pub async fn all(scenarios: &[Scenario], solos: &[SoloRun], opts: &Options<'_>) -> Option<Runs> {
    let mut found: Vec<Option<Saved>> = (0..scenarios.len() + solos.len())
        .map(|i| saved(opts, scenarios, solos, i))
        .collect();
    let estimates = estimates(scenarios, solos, &found);
    let mut left: Duration = estimates.iter().sum();
    eprintln!(
        "compare: {} scenarios and {} solo runs ({} saved), estimated {}",
        scenarios.len(),
        solos.len(),
        found.iter().filter(|f| f.is_some()).count(),
        minutes(left)
    );
    let total = estimates.len();
    let run_started = Instant::now();
    let mut runs = Runs::default();
    let names = scenarios
        .iter()
        .map(|s| s.name.clone())
        .chain(solos.iter().map(|s| s.name.clone()));
    for (i, (name, estimate)) in names.zip(&estimates).enumerate() {
        if take_saved(found[i].take(), &mut runs) {
            eprintln!("compare: [{}/{total}] {name}: saved, not run again", i + 1);
            continue;
        }
        eprintln!(
            "compare: [{}/{total}] {name}: estimated {:.0}s, {} left, {} so far",
            i + 1,
            estimate.as_secs_f64(),
            minutes(left),
            minutes(run_started.elapsed())
        );
        left = left.saturating_sub(*estimate);
        let started = Instant::now();
        if let Err(e) = run_one(i, scenarios, solos, opts, &mut runs).await {
            eprintln!("compare: {name} failed: {e:#}");
            if opts.stop_on_failure {
                return None;
            }
            // The other scenarios still make a report; this one is listed
            // in it as not run.
            runs.failures.push(Failure {
                name,
                error: format!("{e:#}"),
            });
            continue;
        }
        eprintln!(
            "compare: [{}/{total}] {name}: done in {:.0}s",
            i + 1,
            started.elapsed().as_secs_f64()
        );
    }
    eprintln!(
        "compare: all runs done in {}",
        minutes(run_started.elapsed())
    );
    Some(runs)
}

/// Each run's estimate, zero for a saved one: what is left to wait for.
fn estimates(scenarios: &[Scenario], solos: &[SoloRun], found: &[Option<Saved>]) -> Vec<Duration> {
    scenarios
        .iter()
        .map(Scenario::estimate)
        .chain(solos.iter().map(SoloRun::estimate))
        .zip(found)
        .map(|(e, f)| if f.is_some() { Duration::ZERO } else { e })
        .collect()
}

/// Adds a saved run to `runs`; false when there is none.
fn take_saved(saved: Option<Saved>, runs: &mut Runs) -> bool {
    match saved {
        Some(Saved::Scenario(o)) => runs.outcomes.push(*o),
        Some(Saved::Solo(o)) => runs.solo.push(o),
        None => return false,
    }
    true
}

/// Runs the `i`th run (the scenarios first, then the solo runs), saves it
/// when asked to and adds it to `runs`.
async fn run_one(
    i: usize,
    scenarios: &[Scenario],
    solos: &[SoloRun],
    opts: &Options<'_>,
    runs: &mut Runs,
) -> anyhow::Result<()> {
    if let Some(scenario) = scenarios.get(i) {
        let o = harness::run_scenario(scenario).await?;
        if let Some(out) = opts.save {
            keep(record::save_scenario(out, &o));
        }
        runs.outcomes.push(o);
    } else {
        let solo = &solos[i - scenarios.len()];
        let o = harness::run_solo(solo).await?;
        if let Some(out) = opts.save {
            keep(record::save_solo(out, solo, &o, unix_ms()));
        }
        runs.solo.push(o);
    }
    Ok(())
}

/// A run that cannot be saved still counts in this report; it only cannot
/// be resumed from.
fn keep(saved: anyhow::Result<()>) {
    if let Err(e) = saved {
        eprintln!("compare: cannot save the run (it will not resume): {e:#}");
    }
}
