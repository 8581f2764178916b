//! `alert-poller check` as the binary runs it: which pipelines, then one
//! poll, then the reports and the exit code.

use std::process::ExitCode;

use super::cluster::{self, ClusterOptions};
use super::judge::{self as check, Target};
use super::output;
use alert_poller::config::Tuning;
use alert_poller::domain::health::LogSpec;
use alert_poller::domain::kind::Kind;

use super::{CheckArgs, LogInput, LogOutput, Output};

pub async fn run_check(tuning: &Tuning, args: &CheckArgs) -> ExitCode {
    let targets = match check_targets(tuning, args).await {
        Ok(targets) => targets,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    match check::poll_and_judge(tuning, targets).await {
        Ok(reports) => {
            if reports.is_empty() && matches!(args.output, Output::Table | Output::Wide) {
                eprintln!("No pipelines found.");
            }
            print!("{}", output::render(&reports, args.output.into()));
            if args.fail_on_unhealthy && reports.iter().any(|r| !r.healthy()) {
                return ExitCode::from(3);
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The pipelines to judge: the cluster's (`--all`) or those named.
async fn check_targets(
    tuning: &Tuning,
    args: &CheckArgs,
) -> Result<Vec<Target>, cluster::ClusterError> {
    if args.all {
        let options = ClusterOptions {
            kubeconfig: args.kubeconfig.clone(),
            context: args.context.clone(),
        };
        let client = cluster::client(&options).await?;
        let kinds = args.kind.map_or(Kind::ALL.to_vec(), |k| vec![k]);
        return cluster::targets(&client, &kinds, &tuning.condition_type).await;
    }
    let log = LogSpec {
        otlp_output: args.log_output == LogOutput::Otlp,
        runtime_input: args.log_inputs.contains(&LogInput::Runtime),
        otlp_input: args.log_inputs.contains(&LogInput::Otlp),
    };
    let kind = args.kind.unwrap_or(Kind::Metric);
    Ok(args
        .pipelines
        .iter()
        .map(|name| Target {
            kind,
            name: name.clone(),
            log,
            current: None,
        })
        .collect())
}
