//! The `alert-poller` binary: wiring of the controller's tasks, and shutdown.
//! The command line is in `cli/`.

mod cli;

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use alert_poller::config::Tuning;
use alert_poller::domain::alerts::{Affected, Targets};
use alert_poller::domain::kind::Kind;
use alert_poller::kubernetes::config_watch::ConfigWatch;
use alert_poller::kubernetes::controller::{self, Context};
use alert_poller::kubernetes::leader;
use alert_poller::kubernetes::pipeline;
use alert_poller::operations::metrics::Metrics;
use alert_poller::operations::server::{self, Readiness};
use alert_poller::operations::watchdog::Watchdog;
use alert_poller::polling::poller::Poller;
use alert_poller::prometheus::install_crypto_provider;
use anyhow::Context as _;
use cli::{Command, LogFormat, RunArgs};
use kube::runtime::events::{Recorder, Reporter};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let (cli, unused) = cli::parse();
    if let Some(message) = unused {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    // `check` is a command-line tool: only our own warnings, so its output
    // stays one line on failure; the controller logs at info.
    let default_filter = match cli.command {
        Some(Command::Check(_)) => "alert_poller=warn",
        _ => "info,kube=warn",
    };
    init_logging(cli.log_format, default_filter);
    let tuning = match Tuning::from_args(&cli.tuning) {
        Ok(t) => t,
        Err(errors) => {
            eprintln!("error: invalid settings: {errors}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Run) {
        Command::Crd { kind } => {
            print!("{}", pipeline::crd_yaml(kind, &tuning.condition_type));
            ExitCode::SUCCESS
        }
        Command::Settings => {
            print!("{}", alert_poller::config::settings_markdown());
            ExitCode::SUCCESS
        }
        Command::Check(args) => block_on(cli::check::run_check(&tuning, &args)),
        Command::Run => match block_on(run_controller(cli.run, tuning)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(error = format!("{error:#}"), "alert-poller stopped");
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// The controller's work is waiting on the network: two workers are plenty,
/// and on a large node the default (one per core) would only add threads,
/// and with glibc an allocator arena per thread, each holding memory of its
/// own. Capping the arenas keeps freed memory where the next poll reuses it.
fn block_on<F: Future>(future: F) -> F::Output {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called before any other thread exists; mallopt only sets a
    // tunable of the allocator.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
        .block_on(future)
}

fn init_logging(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // Colours only on a terminal: a log file or a pod's log keeps plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

/// Time the tasks get to finish after a signal; the process must be gone
/// within 5 s of SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(4_000);

async fn run_controller(args: RunArgs, base: Tuning) -> anyhow::Result<()> {
    install_crypto_provider();
    let client = kube::Client::try_default()
        .await
        .context("cannot create the Kubernetes client (in-cluster config or KUBECONFIG)")?;
    let listener = TcpListener::bind(args.metrics_address)
        .await
        .with_context(|| format!("cannot listen on {}", args.metrics_address))?;
    tracing::info!(
        address = %args.metrics_address,
        prometheus = %base.prometheus_url,
        namespace = %args.namespace,
        configmap = %args.config_map,
        "alert-poller starting"
    );
    let shutdown = CancellationToken::new();
    let lost = CancellationToken::new();
    let mut tasks = JoinSet::new();
    spawn_tasks(&mut tasks, client, listener, &args, base, &shutdown, &lost);
    stop(tasks, &shutdown, &lost).await
}

/// Starts every task: the port, the ConfigMap watch, the leader's work
/// (which waits for the lease) and the election. The channels between them
/// are made first, before any task runs, so no message is lost.
fn spawn_tasks(
    tasks: &mut JoinSet<()>,
    client: kube::Client,
    listener: TcpListener,
    args: &RunArgs,
    base: Tuning,
    shutdown: &CancellationToken,
    lost: &CancellationToken,
) {
    let (metrics, registry) = Metrics::new();
    let metrics = Arc::new(metrics);
    let base = Arc::new(base);
    let links = Links::new(args.leader_election, base.clone());
    let watchdog = Watchdog::new(args.stuck_after);
    let (poller, polls) = Poller::new(links.tuning.1.clone(), links.loaded.1, metrics.clone());
    let readiness = Readiness {
        polled: polls.polled,
        synced: links.synced.1,
        leading: links.leading.0.subscribe(),
        api_reachable: links.reachable.1,
        watchdog: watchdog.clone(),
    };
    let registry = Arc::new(registry);
    tasks.spawn(server::serve(
        listener,
        registry,
        readiness,
        shutdown.clone(),
    ));
    let reporter = args.reporter();
    let (tuning, loaded) = (links.tuning.0, links.loaded.0);
    let watch = config_watch(args, &client, base, tuning, loaded, &reporter, &metrics);
    tasks.spawn(watch.run(shutdown.clone()));
    let ctx = Arc::new(Context {
        client: client.clone(),
        view: polls.view,
        tuning: links.tuning.1,
        recorder: Recorder::new(client.clone(), reporter),
        metrics,
        watchdog: watchdog.clone(),
    });
    let work = LeaderWork {
        poller: poller.watched_by(watchdog),
        requeues: polls.requeues,
        ctx,
        synced: links.synced.0,
    };
    tasks.spawn(work.run(
        args.kinds.iter().copied().collect(),
        links.leading.1,
        shutdown.clone(),
    ));
    if args.leader_election {
        let (leading, reachable) = (links.leading.0, links.reachable.0);
        let (lost, stop) = (lost.clone(), shutdown.clone());
        let election = leader::run(client, args.lease(), leading, reachable, lost, stop);
        tasks.spawn(election);
    }
}

/// The tuning ConfigMap's watch: it replaces the tuning in `tuning` and
/// says in `loaded` when the first read is done.
fn config_watch(
    args: &RunArgs,
    client: &kube::Client,
    base: Arc<Tuning>,
    tuning: watch::Sender<Arc<Tuning>>,
    loaded: watch::Sender<bool>,
    reporter: &Reporter,
    metrics: &Arc<Metrics>,
) -> ConfigWatch {
    ConfigWatch {
        client: client.clone(),
        namespace: args.namespace.clone(),
        name: args.config_map.clone(),
        base,
        tuning,
        reporter: reporter.clone(),
        metrics: metrics.clone(),
        loaded,
    }
}

/// The channels that tie the tasks together, each as (sender, receiver).
struct Links {
    tuning: (watch::Sender<Arc<Tuning>>, watch::Receiver<Arc<Tuning>>),
    /// Every kind's pipeline cache has synced.
    synced: (watch::Sender<bool>, watch::Receiver<bool>),
    /// The tuning ConfigMap has been read (or found missing).
    loaded: (watch::Sender<bool>, watch::Receiver<bool>),
    leading: (watch::Sender<bool>, watch::Receiver<bool>),
    /// The last lease round reached the API server.
    reachable: (watch::Sender<bool>, watch::Receiver<bool>),
}

impl Links {
    /// Without an election this replica leads from the start and there is
    /// no standby to keep ready; with one, it waits for its first round.
    fn new(election: bool, base: Arc<Tuning>) -> Links {
        Links {
            tuning: watch::channel(base),
            synced: watch::channel(false),
            loaded: watch::channel(false),
            leading: watch::channel(!election),
            reachable: watch::channel(!election),
        }
    }
}

/// What only the leader runs: the poller and one controller per kind.
struct LeaderWork {
    poller: Poller,
    requeues: mpsc::UnboundedReceiver<Affected>,
    ctx: Arc<Context>,
    /// Turns true once every kind's pipeline cache has synced.
    synced: watch::Sender<bool>,
}

impl LeaderWork {
    /// Waits for the lease, then polls and reconciles until shutdown. A
    /// standby keeps its tuning current and its probes green meanwhile.
    async fn run(
        self,
        kinds: BTreeSet<Kind>,
        mut leading: watch::Receiver<bool>,
        shutdown: CancellationToken,
    ) {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = leading.wait_for(|l| *l) => {}
        }
        tracing::info!(kinds = ?kinds, "leading: polling, and a controller per kind");
        self.ctx.metrics.leader.set(1);
        let poller = tokio::spawn(self.poller.run(shutdown.clone()));
        let mut controllers = JoinSet::new();
        let mut requeues = BTreeMap::new();
        let mut synced = Vec::new();
        for kind in kinds {
            let (tx, rx) = mpsc::unbounded_channel();
            let (synced_tx, synced_rx) = watch::channel(false);
            requeues.insert(kind, tx);
            synced.push(synced_rx);
            let run = controller::run(kind, self.ctx.clone(), rx, synced_tx, shutdown.clone());
            controllers.spawn(run);
        }
        tokio::spawn(dispatch(self.requeues, requeues));
        tokio::spawn(all_synced(synced, self.synced));
        // A controller stops by itself only when its CRD moved to another
        // version: end this task, so the process exits and restarts.
        controllers.join_next().await;
        if shutdown.is_cancelled() {
            while controllers.join_next().await.is_some() {}
            let _ = poller.await;
        }
    }
}

/// Runs until a signal, a lost lease or a task that ended, then gives the
/// tasks [`SHUTDOWN_GRACE`] to finish. An error makes the process exit
/// non-zero, so the replica restarts as a fresh candidate.
async fn stop(
    mut tasks: JoinSet<()>,
    shutdown: &CancellationToken,
    lost: &CancellationToken,
) -> anyhow::Result<()> {
    let mut failure = None;
    tokio::select! {
        signal = shutdown_signal() => tracing::info!(signal, "shutting down"),
        () = lost.cancelled() => failure = Some("lost the leader lease"),
        Some(ended) = tasks.join_next() => {
            // Every task runs until shutdown; one ending early is a bug.
            tracing::error!(?ended, "a task ended unexpectedly; shutting down");
            failure = Some("a task ended unexpectedly");
        }
    }
    shutdown.cancel();
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("tasks did not finish within the grace period; exiting anyway");
    }
    match failure {
        Some(reason) => anyhow::bail!(reason),
        None => Ok(()),
    }
}

/// Hands each kind's controller its part of what the poller re-queues;
/// kinds without a controller here are dropped.
async fn dispatch(
    mut requeues: mpsc::UnboundedReceiver<Affected>,
    controllers: BTreeMap<Kind, mpsc::UnboundedSender<Targets>>,
) {
    while let Some(affected) = requeues.recv().await {
        for (kind, targets) in affected.iter() {
            if let Some(controller) = controllers.get(&kind) {
                // Fails only when the controller is gone, i.e. during shutdown.
                let _ = controller.send(targets.clone());
            }
        }
    }
}

/// Turns `synced` true once every kind's pipeline cache has synced.
async fn all_synced(kinds: Vec<watch::Receiver<bool>>, synced: watch::Sender<bool>) {
    for mut kind in kinds {
        if kind.wait_for(|s| *s).await.is_err() {
            return;
        }
    }
    synced.send_replace(true);
}

/// Waits for SIGTERM or SIGINT and names it.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler installs");
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
