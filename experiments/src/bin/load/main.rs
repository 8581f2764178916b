//! The load run: the release controller against a real Prometheus with many
//! active alerts and a real control plane with many pipelines, polling every
//! second for minutes, while a few pipelines break and mend. It reports CPU
//! and peak RSS, and counts the status writes the API server itself saw, so
//! "writes only on change" is checked by the server, not by our own counter.
//!
//!   cargo build --release --workspace --bins && target/release/load --minutes 10
//!
//! The first half of the run injects changes; the second half is quiet and
//! must cause no status write at all. Writes a Markdown report to `--out`.
//!
//! The steps, in order: [`bed`] (control plane, Prometheus, pipelines, the
//! controller), [`drive`] (the timed run), [`report`] (figures, Markdown,
//! the checks).

mod bed;
mod drive;
mod report;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use alert_poller_testbed::controller::sibling_binary;
use anyhow::{Result, ensure};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Load run: many alerts, many pipelines, fast polls")]
struct Cli {
    /// Length of the run (changes in the first half, quiet in the second).
    #[arg(long, default_value_t = 10)]
    minutes: u64,
    #[arg(long, default_value_t = 1000)]
    pipelines: usize,
    /// Active alerts that concern no pipeline (NoiseAlert).
    #[arg(long, default_value_t = 10_000)]
    alerts: usize,
    /// Poll interval (the schedule is fixed at this).
    #[arg(long, default_value = "1s")]
    interval: String,
    /// Time between injected changes in the first half.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    change_every: Duration,
    /// Where the controller reads the alerts (`alertSource`: alerts or query).
    #[arg(long, default_value = "query")]
    alert_source: String,
    /// Where to write the report.
    #[arg(long, default_value = "experiments/load.md")]
    out: PathBuf,
}

/// Progress lines stamped with the time since the start, on stderr so the
/// report on stdout stays clean.
struct Log(Instant);

impl Log {
    fn say(&self, text: &str) {
        eprintln!("[{:>6.1}s] {text}", self.0.elapsed().as_secs_f64());
    }
}

/// The load run, step by step; returns the report once every check passed.
async fn run(cli: Cli) -> Result<String> {
    let log = Log(Instant::now());
    ensure!(
        cli.minutes >= 2,
        "--minutes must be at least 2: the quiet half is measured from 30 s after the half-way mark"
    );
    let binary = sibling_binary()?;
    let bed = bed::start(&cli, &log).await?;
    bed::deploy(&bed, &cli, &log)?;
    let (mut controller, initial_writes) = bed::start_controller(&bed, &binary, &cli, &log).await?;
    let driven = drive::run(&cli, &bed, &mut controller, &log).await?;
    let figures = report::measure(&bed, &controller, &driven, initial_writes).await?;
    let report = report::markdown(&cli, &figures, &driven, &report::machine());
    drop(controller);
    report::check(&cli, &figures, driven.changes, &report)?;
    Ok(report)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = cli.out.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    match runtime.block_on(run(cli)) {
        Ok(report) => {
            print!("{report}");
            if let Err(e) = std::fs::write(&out, &report) {
                eprintln!("load: cannot write {}: {e}", out.display());
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("load: {e:#}");
            ExitCode::FAILURE
        }
    }
}
