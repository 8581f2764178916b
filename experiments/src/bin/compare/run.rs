//! The whole run: every scenario and solo run in turn, with an estimate up
//! front and a progress line for each, because the full run takes about
//! three hours and someone will want to know how much is left. A run that
//! fails is recorded and the others go on, so hours are not lost to one
//! fault; each finished run is saved (`record`), so an interrupted full run
//! resumes where it stopped.

use std::path::Path;
use std::time::{Duration, Instant};

use alert_poller_experiments::unix_ms;

use crate::harness::{self, Outcome, Provenance, SoloOutcome};
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
    let estimates: Vec<Duration> = scenarios
        .iter()
        .map(Scenario::estimate)
        .chain(solos.iter().map(SoloRun::estimate))
        .zip(&found)
        .map(|(e, f)| if f.is_some() { Duration::ZERO } else { e })
        .collect();
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
    let mut runs = Runs {
        outcomes: Vec::new(),
        solo: Vec::new(),
        failures: Vec::new(),
    };
    let names = scenarios
        .iter()
        .map(|s| s.name.clone())
        .chain(solos.iter().map(|s| s.name.clone()));
    for (i, (name, estimate)) in names.zip(&estimates).enumerate() {
        match found[i].take() {
            Some(Saved::Scenario(o)) => {
                eprintln!("compare: [{}/{total}] {name}: saved, not run again", i + 1);
                runs.outcomes.push(*o);
                continue;
            }
            Some(Saved::Solo(o)) => {
                eprintln!("compare: [{}/{total}] {name}: saved, not run again", i + 1);
                runs.solo.push(o);
                continue;
            }
            None => {}
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
        let result = if i < scenarios.len() {
            harness::run_scenario(&scenarios[i]).await.map(|o| {
                if let Some(out) = opts.save {
                    keep(record::save_scenario(out, &o));
                }
                runs.outcomes.push(o);
            })
        } else {
            let solo = &solos[i - scenarios.len()];
            harness::run_solo(solo).await.map(|o| {
                if let Some(out) = opts.save {
                    keep(record::save_solo(out, solo, &o, unix_ms()));
                }
                runs.solo.push(o);
            })
        };
        match result {
            Ok(()) => eprintln!(
                "compare: [{}/{total}] {name}: done in {:.0}s",
                i + 1,
                started.elapsed().as_secs_f64()
            ),
            Err(e) => {
                eprintln!("compare: {name} failed: {e:#}");
                if opts.stop_on_failure {
                    return None;
                }
                // The other scenarios still make a report; this one is
                // listed in it as not run.
                runs.failures.push(Failure {
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
    Some(runs)
}

/// A run that cannot be saved still counts in this report; it only cannot
/// be resumed from.
fn keep(saved: anyhow::Result<()>) {
    if let Err(e) = saved {
        eprintln!("compare: cannot save the run (it will not resume): {e:#}");
    }
}
