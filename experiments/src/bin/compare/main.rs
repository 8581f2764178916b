//! The comparison experiments: one real Prometheus evaluating the shipped
//! rules over MetricPipelines, TracePipelines and LogPipelines, the push
//! designs and the pull designs running against it side by side, each in its
//! own process, and the same faults injected for all. Reaction times are
//! measured against ground truth read from Prometheus itself: the evaluation
//! at which an alert started (or stopped) firing.
//!
//!   cargo run --release -p alert-poller-experiments --bin compare -- --quick            # CI smoke test, < 3 min
//!   cargo run --release -p alert-poller-experiments --bin compare -- --out experiments  # the report (~6 h, estimate printed)
//!   cargo run --release -p alert-poller-experiments --bin compare -- --out experiments --resume
//!   cargo run --release -p alert-poller-experiments --bin compare -- --replot --out experiments
//!
//! The full run starts with the question itself: telemetry-manager's
//! settings (its rules, 30s evaluation and scrape, a handful of pipelines
//! per kind) on Prometheus 3 and 2.42, then the receiver stopped around
//! each change (a restart, a leadership move). Then sweeps, each varying
//! one thing against the 100-pipeline, 1s-evaluation scenario (which
//! several sweeps share): the number of pipelines, the number of unrelated
//! active alerts ("noise"), a 30s evaluation interval, Prometheus' resend
//! delay and Prometheus 3. Then a "solo" part gives every design a
//! Prometheus of its own, because designs sharing one Prometheus cannot be
//! told apart in its CPU time. `shipped`, deploy/'s ConfigMap as it is at
//! run time, is in every scenario.
//!
//! Every finished run of the full run is saved under `--out`/runs; with
//! `--resume` the saved ones whose scenario is unchanged and that were made
//! from the same clean commit are taken instead of being run again, so the
//! hours can be spent in pieces, and an interrupted run loses only the
//! scenario it was in, while a report still shows one version of the code.
//!
//! `--only a,b` (hidden) runs only the full-run scenarios and solo runs whose
//! name contains one of the substrings, e.g. `--only noise-10000,solo-push-all`;
//! it is there to try one piece without the whole run, and the report it
//! writes says so.
//!
//! Writes `report.md`, `latency.csv`, `summary.csv`, `solo.csv` and the SVG
//! plots to `--out`. In `--quick` mode every design must see every change or
//! the exit code fails; in the full run a missed change is a finding (in the
//! report), and only a run that could not be made fails it.
//!
//! The modules, in the order a run uses them: [`scenarios`] (what to run),
//! [`run`] (all of it in turn), [`record`] (finished runs on disk),
//! [`harness`] (one scenario: bed, designs, faults, stable phase),
//! [`pipelines`] (the three kinds, dealt in turn), [`bed`] (collector and
//! Prometheus), [`processes`] (the designs as child processes), [`agent`]
//! (one design, inside its process), [`truth`] (what Prometheus did),
//! [`outcome`] and [`provenance`] (what a run measured, and where it came
//! from), [`report`], [`verdict`], [`restarts`] and [`plot`] (the figures).

mod agent;
mod bed;
mod designs;
mod harness;
mod outcome;
mod pipelines;
mod plot;
mod processes;
mod provenance;
mod record;
mod report;
mod restarts;
mod run;
mod scenarios;
mod truth;
mod verdict;

use std::path::PathBuf;
use std::process::ExitCode;

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
    /// Take the runs saved in `--out`/runs by an earlier full run (same
    /// scenario, same designs and tuning) instead of running them again, so
    /// that an interrupted run goes on where it stopped.
    #[arg(long)]
    resume: bool,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    if let Some(Cmd::Agent { config, report }) = &cli.command {
        return runtime.block_on(processes::agent_main(config, report));
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
        tokio::select! {
            code = compare(&cli) => code,
            signal = stopped() => {
                // select! has dropped the run: its agents and Prometheus
                // were killed with it (their Drop), so an interrupted piece
                // of the full run leaves nothing behind to load the machine
                // while the next one measures.
                eprintln!(
                    "compare: {signal}; the scenario in progress is lost, its designs and \
                     Prometheus are stopped; finished scenarios stay saved"
                );
                ExitCode::from(130)
            }
        }
    })
}

/// SIGTERM or SIGINT. Without this a `kill` of compare left the scenario's
/// Prometheus and design processes running, orphaned, for the next piece.
async fn stopped() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "terminated",
        _ = int.recv() => "interrupted",
    }
}

/// Runs what the command line asks for, writes the report and decides the
/// exit code.
async fn compare(cli: &Cli) -> ExitCode {
    let (scenarios, solos) = scenarios::plan(cli.quick, &cli.only);
    let opts = run::Options {
        stop_on_failure: cli.quick,
        save: (!cli.quick).then_some(cli.out.as_path()),
        resume: cli.resume,
    };
    let Some(runs) = run::all(&scenarios, &solos, &opts).await else {
        return ExitCode::FAILURE;
    };
    let written = report::write(
        &cli.out,
        &report::Results {
            outcomes: &runs.outcomes,
            solo: &runs.solo,
            failures: &runs.failures,
            command: &command(cli),
            partial: !cli.only.is_empty(),
        },
    );
    if let Err(e) = written {
        eprintln!("compare: cannot write the report: {e:#}");
        return ExitCode::FAILURE;
    }
    let tally = report::tally(&runs.outcomes);
    for m in &tally.missed {
        eprintln!("compare: MISSED {m}");
    }
    print!("{}", report::summary_table(&runs.outcomes));
    println!(
        "compare: {} passed, {} failed",
        tally.passed,
        tally.missed.len()
    );
    // Quick mode asserts every change was seen; the full run reports
    // misses as findings and fails only when a run could not be made.
    let failed = if cli.quick {
        !tally.missed.is_empty()
    } else {
        !runs.failures.is_empty()
    };
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The command line that reproduces this report, quoted in it.
fn command(cli: &Cli) -> String {
    let base = "cargo run --release -p alert-poller-experiments --bin compare --";
    if cli.quick {
        format!("{base} --quick")
    } else if cli.only.is_empty() {
        let resume = if cli.resume { " --resume" } else { "" };
        format!("{base} --out {}{resume}", cli.out.display())
    } else {
        format!(
            "{base} --out {} --only {}",
            cli.out.display(),
            cli.only.join(",")
        )
    }
}
