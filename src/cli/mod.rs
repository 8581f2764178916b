//! The command line: `alert-poller [run]`, `check`, `crd`, `settings`.
//!
//! The controller's settings are global flags, so `alert-poller
//! --prometheus-url ... check` and `alert-poller check --prometheus-url ...`
//! both work; each subcommand's `--help` lists only the flags it uses, and a
//! flag it does not use is refused rather than silently ignored.

pub mod check;
pub mod cluster;
pub mod judge;
pub mod output;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use alert_poller::config::{SETTINGS, TuningArgs};
use alert_poller::domain::kind::Kind;
use alert_poller::kubernetes::leader::LeaseConfig;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use kube::runtime::events::Reporter;
use output::Format;

/// Keeps the TelemetryFlowHealthy condition of Kyma telemetry pipelines
/// (MetricPipelines, TracePipelines, LogPipelines) current by polling
/// Prometheus alerts.
#[derive(Parser, Debug)]
#[command(
    name = "alert-poller",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("ALERT_POLLER_COMMIT"), ")"),
    about,
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten, next_help_heading = "Tuning (each also a ConfigMap key)")]
    pub tuning: TuningArgs,
    /// Log format.
    #[arg(long, env = "ALERT_POLLER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json, global = true)]
    pub log_format: LogFormat,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the controller (the default).
    Run,
    /// Print a pipeline CRD generated from the Rust types (its Flow Healthy
    /// column reads the condition of `--condition-type`).
    Crd {
        /// The pipeline kind.
        #[arg(long, default_value = "metric")]
        kind: Kind,
    },
    /// Print the tuning settings as a Markdown table.
    Settings,
    /// Poll Prometheus once and print the condition each pipeline would get.
    Check(CheckArgs),
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Namespace of the tuning ConfigMap (the controller's own namespace).
    #[arg(
        long,
        env = "POD_NAMESPACE",
        default_value = "alert-poller",
        global = true
    )]
    pub namespace: String,
    /// Name of the tuning ConfigMap.
    #[arg(
        long,
        env = "ALERT_POLLER_CONFIGMAP",
        default_value = "alert-poller",
        global = true
    )]
    pub config_map: String,
    /// Address of the metrics and probes port.
    #[arg(
        long,
        env = "ALERT_POLLER_METRICS_ADDRESS",
        default_value = "0.0.0.0:8080",
        global = true
    )]
    pub metrics_address: SocketAddr,
    /// This replica's name, in events, logs and the leader lease.
    #[arg(long, env = "POD_NAME", default_value = "alert-poller", global = true)]
    pub pod_name: String,
    /// Pipeline kinds to keep the condition of, comma-separated; one poll
    /// serves them all.
    #[arg(
        long,
        env = "ALERT_POLLER_KINDS",
        value_delimiter = ',',
        default_value = "metric,trace,log",
        global = true
    )]
    pub kinds: Vec<Kind>,
    /// Elect a leader among replicas on a Lease; only the leader polls and writes.
    #[arg(long, env = "ALERT_POLLER_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true", global = true)]
    pub leader_election: bool,
    /// Name of the Lease in the controller's namespace.
    #[arg(
        long,
        env = "ALERT_POLLER_LEASE_NAME",
        default_value = "alert-poller",
        global = true
    )]
    pub lease_name: String,
    /// How long a lease lives without renewal; a dead leader is replaced after at most this.
    #[arg(long, env = "ALERT_POLLER_LEASE_DURATION", default_value = "15s", value_parser = humantime::parse_duration, global = true)]
    pub lease_duration: Duration,
    /// Liveness: /healthz fails once a reconcile has run this long, or the
    /// poll loop is this late past its own schedule, so the kubelet
    /// restarts a replica that makes no progress.
    #[arg(long, env = "ALERT_POLLER_STUCK_AFTER", default_value = "2m", value_parser = humantime::parse_duration, global = true)]
    pub stuck_after: Duration,
    /// How often the leader renews and standbys try to take over.
    #[arg(long, env = "ALERT_POLLER_LEASE_RETRY", default_value = "2s", value_parser = humantime::parse_duration, global = true)]
    pub lease_retry: Duration,
}

const EXIT_CODES: &str = "Exit codes:
  0  done (check: every pipeline judged)
  1  Prometheus or the cluster could not be asked, or the controller failed
  2  invalid flags or settings
  3  check --fail-on-unhealthy: some judged pipeline is not healthy";

#[derive(clap::Args, Debug)]
#[command(
    group(clap::ArgGroup::new("which").required(true).args(["pipelines", "all"])),
    after_help = EXIT_CODES
)]
pub struct CheckArgs {
    /// Pipeline to judge, named here (no cluster needed); repeat for several.
    #[arg(long = "pipeline", value_name = "NAME")]
    pub pipelines: Vec<String>,
    /// Judge every pipeline of the cluster, read from its objects, and show
    /// each one's current condition beside the verdict.
    #[arg(long, conflicts_with_all = ["log_output", "log_inputs"])]
    pub all: bool,
    /// With --pipeline: their kind (default metric). With --all: only this
    /// kind (default: every kind).
    #[arg(long)]
    pub kind: Option<Kind>,
    /// For LogPipelines named with --pipeline: the output, which decides
    /// between the OTLP and the Fluent Bit verdicts.
    #[arg(long, value_enum, default_value_t = LogOutput::Otlp)]
    pub log_output: LogOutput,
    /// For OTLP LogPipelines named with --pipeline: the inputs they have
    /// (the agent counts with `runtime`, the gateway with `otlp`).
    #[arg(long, value_delimiter = ',', default_value = "runtime,otlp")]
    pub log_inputs: Vec<LogInput>,
    /// With --all: the kubeconfig file (default: $KUBECONFIG, then
    /// ~/.kube/config, then in-cluster).
    #[arg(long)]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// With --all: the kubeconfig context to use (default: its current one).
    #[arg(long)]
    pub context: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Exit with 3 when any judged pipeline is not healthy (for scripts and CI).
    #[arg(long)]
    pub fail_on_unhealthy: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogOutput {
    Otlp,
    Fluentbit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogInput {
    Runtime,
    Otlp,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Output {
    Table,
    Wide,
    Json,
    Yaml,
}

impl From<Output> for Format {
    fn from(output: Output) -> Format {
        match output {
            Output::Table => Format::Table,
            Output::Wide => Format::Wide,
            Output::Json => Format::Json,
            Output::Yaml => Format::Yaml,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

impl RunArgs {
    /// How this replica signs its Events.
    pub fn reporter(&self) -> Reporter {
        Reporter {
            controller: "alert-poller".into(),
            instance: Some(self.pod_name.clone()),
        }
    }

    /// The leader election's settings.
    pub fn lease(&self) -> LeaseConfig {
        LeaseConfig {
            namespace: self.namespace.clone(),
            name: self.lease_name.clone(),
            identity: self.pod_name.clone(),
            duration: self.lease_duration,
            retry: self.lease_retry,
        }
    }
}

/// Settings `check` does not use: they shape the controller's schedule and
/// writes, and one poll has neither.
const NOT_FOR_CHECK: [&str; 8] = [
    "minInterval",
    "maxInterval",
    "backoffFactor",
    "phaseLock",
    "errorMaxInterval",
    "staleAfter",
    "resyncInterval",
    "mode",
];

/// The flags (long names) each subcommand uses beyond its own; every other
/// global flag is hidden from its help and refused on its command line.
fn used_by(subcommand: &str) -> Option<BTreeSet<&'static str>> {
    let mut used = BTreeSet::from(["log-format"]);
    match subcommand {
        "check" => used.extend(
            SETTINGS
                .iter()
                .filter(|s| !NOT_FOR_CHECK.contains(&s.key))
                .map(|s| s.flag),
        ),
        "crd" => {
            used.insert("condition-type");
        }
        "settings" => {}
        _ => return None,
    }
    Some(used)
}

/// The command with each subcommand's help trimmed to the flags it uses.
pub fn command() -> clap::Command {
    let mut command = Cli::command();
    // Global flags reach the subcommands only when the command is built.
    command.build();
    for name in ["check", "crd", "settings"] {
        let used = used_by(name).expect("a known subcommand");
        command = command.mut_subcommand(name, |sub| {
            sub.mut_args(|arg| {
                let global = arg.is_global_set();
                match arg.get_long() {
                    Some(long) if global && !used.contains(long) => arg.hide(true),
                    _ => arg,
                }
            })
        });
    }
    command
}

/// Parses the command line; the second value names a flag given to a
/// subcommand that does not use it.
pub fn parse() -> (Cli, Option<String>) {
    let mut command = command();
    let matches = command.get_matches_mut();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let misplaced = match &cli.command {
        Some(Command::Check(c)) if !c.all && (c.kubeconfig.is_some() || c.context.is_some()) => {
            Some("--kubeconfig and --context apply only with --all".to_owned())
        }
        _ => None,
    };
    (cli, misplaced.or_else(|| unused_flag(&command, &matches)))
}

fn unused_flag(command: &clap::Command, matches: &ArgMatches) -> Option<String> {
    let (name, sub) = matches.subcommand()?;
    let used = used_by(name)?;
    let sub_command = command.find_subcommand(name)?;
    sub_command.get_arguments().find_map(|arg| {
        let long = arg.get_long()?;
        let given = sub.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine);
        (arg.is_global_set() && given && !used.contains(long)).then(|| {
            format!("--{long} does not apply to `{name}` (see `alert-poller {name} --help`)")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str]) -> Result<(Cli, Option<String>), clap::Error> {
        let mut command = command();
        let matches = command.try_get_matches_from_mut(args)?;
        let cli = Cli::from_arg_matches(&matches)?;
        Ok((cli, unused_flag(&command, &matches)))
    }

    fn help_of(subcommand: &str) -> String {
        let mut command = command();
        command
            .find_subcommand_mut(subcommand)
            .expect("a subcommand")
            .render_long_help()
            .to_string()
    }

    #[test]
    fn boolean_flags_work_bare_and_with_a_value() {
        let (cli, _) = parsed(&["alert-poller", "--phase-lock", "--leader-election"]).unwrap();
        assert_eq!(cli.tuning.phase_lock, ["true"]);
        assert!(cli.run.leader_election);
        let (cli, _) = parsed(&[
            "alert-poller",
            "run",
            "--phase-lock=false",
            "--leader-election=false",
        ])
        .unwrap();
        assert_eq!(cli.tuning.phase_lock, ["false"]);
        assert!(!cli.run.leader_election);
        // A bare flag never swallows the next word.
        let (cli, _) = parsed(&["alert-poller", "--insecure-skip-verify", "run"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Run)));
        assert!(
            parsed(&["alert-poller", "--min-interval"]).is_err(),
            "values stay required"
        );
    }

    #[test]
    fn check_help_lists_only_what_check_uses() {
        let help = help_of("check");
        for used in [
            "--all",
            "--pipeline",
            "--prometheus-url",
            "--ca-file",
            "--condition-type",
            "--output",
            "Exit codes",
        ] {
            assert!(help.contains(used), "{used} missing from check --help");
        }
        for unused in [
            "--min-interval",
            "--stale-after",
            "--phase-lock",
            "--mode",
            "--namespace",
            "--lease-name",
            "--metrics-address",
        ] {
            assert!(!help.contains(unused), "{unused} in check --help");
        }
        let crd = help_of("crd");
        assert!(crd.contains("--condition-type") && !crd.contains("--prometheus-url"));
    }

    #[test]
    fn a_flag_the_subcommand_does_not_use_is_refused() {
        let (_, unused) =
            parsed(&["alert-poller", "check", "--all", "--stale-after", "1m"]).unwrap();
        assert!(
            unused
                .unwrap()
                .contains("--stale-after does not apply to `check`")
        );
        let (_, unused) =
            parsed(&["alert-poller", "check", "--all", "--request-timeout", "1s"]).unwrap();
        assert_eq!(unused, None);
        let (_, unused) = parsed(&["alert-poller", "--stale-after", "1m", "run"]).unwrap();
        assert_eq!(unused, None, "run uses everything");
    }

    #[test]
    fn check_needs_pipelines_or_all_but_not_both() {
        assert!(parsed(&["alert-poller", "check"]).is_err());
        assert!(parsed(&["alert-poller", "check", "--all", "--pipeline", "a"]).is_err());
        assert!(parsed(&["alert-poller", "check", "--all", "--log-output", "otlp"]).is_err());
        let (cli, _) = parsed(&[
            "alert-poller",
            "check",
            "--all",
            "-o",
            "wide",
            "--context",
            "kind",
        ])
        .unwrap();
        let Some(Command::Check(args)) = cli.command else {
            panic!("check")
        };
        assert!(args.all && matches!(args.output, Output::Wide));
        assert_eq!(args.context.as_deref(), Some("kind"));
    }
}
