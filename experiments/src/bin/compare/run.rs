//! The whole run: every scenario and solo run in turn, with an estimate up
//! front and a progress line for each, because the full run takes about an
//! hour and someone will want to know how much is left. A run that fails
//! is recorded and the others go on, so an hour is not lost to one fault.

use std::time::{Duration, Instant};

use crate::harness::{self, Outcome, SoloOutcome};
use crate::scenarios::{Scenario, SoloRun};

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

/// Runs the scenarios, then the solo runs. With `stop_on_failure` (the
/// quick run, where any failure fails the check) the first failure ends it
/// and `None` is returned; otherwise failures are collected for the report.
pub async fn all(scenarios: &[Scenario], solos: &[SoloRun], stop_on_failure: bool) -> Option<Runs> {
    let estimates: Vec<Duration> = scenarios
        .iter()
        .map(Scenario::estimate)
        .chain(solos.iter().map(SoloRun::estimate))
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
            harness::run_scenario(&scenarios[i])
                .await
                .map(|o| runs.outcomes.push(o))
        } else {
            harness::run_solo(&solos[i - scenarios.len()])
                .await
                .map(|o| runs.solo.push(o))
        };
        match result {
            Ok(()) => eprintln!(
                "compare: [{}/{total}] {name}: done in {:.0}s",
                i + 1,
                started.elapsed().as_secs_f64()
            ),
            Err(e) => {
                eprintln!("compare: {name} failed: {e:#}");
                if stop_on_failure {
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
