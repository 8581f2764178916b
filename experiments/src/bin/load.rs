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

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use alert_poller_testbed::collector::{Collector, Component, Flow};
use alert_poller_testbed::controller::{ControllerProcess, sibling_binary};
use alert_poller_testbed::controlplane::{ControlPlane, Kubectl};
use alert_poller_testbed::install::{NAMESPACE, install};
use alert_poller_testbed::prometheus::{Prometheus, Setup};
use alert_poller_testbed::{rules, usage};
use anyhow::{Context, Result, bail, ensure};
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
    /// Where to write the report.
    #[arg(long, default_value = "experiments/load.md")]
    out: PathBuf,
}

/// Status writes (server-side applies on the status subresource of
/// MetricPipelines) as the API server's own `apiserver_request_total` counts them.
fn server_status_writes(kubectl: &Kubectl) -> Result<f64> {
    let metrics = kubectl.run(&["get", "--raw", "/metrics"])?;
    Ok(metrics
        .lines()
        .filter(|l| {
            l.starts_with("apiserver_request_total{")
                && l.contains(r#"resource="metricpipelines""#)
                && l.contains(r#"subresource="status""#)
                && (l.contains(r#"verb="APPLY""#) || l.contains(r#"verb="PATCH""#))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// Pipelines whose flow condition is set, and how many of those are True.
fn conditions(kubectl: &Kubectl) -> Result<(usize, usize)> {
    let out = kubectl.run(&[
        "get",
        "metricpipelines",
        "-o",
        r#"jsonpath={range .items[*]}{.status.conditions[?(@.type=="TelemetryFlowHealthy")].status}{"\n"}{end}"#,
    ])?;
    let set = out.lines().filter(|l| !l.trim().is_empty()).count();
    let healthy = out.lines().filter(|l| l.trim() == "True").count();
    Ok((set, healthy))
}

struct Sample {
    at: Duration,
    cpu: f64,
    writes: f64,
}

async fn run(cli: Cli) -> Result<String> {
    let started = Instant::now();
    let say = |text: &str| eprintln!("[{:>6.1}s] {text}", started.elapsed().as_secs_f64());
    ensure!(
        cli.minutes >= 2,
        "--minutes must be at least 2: the quiet half is measured from 30 s after the half-way mark"
    );
    let binary = sibling_binary()?;
    say("starting the control plane");
    let plane = tokio::task::spawn_blocking(ControlPlane::start).await??;
    let kubectl = plane.kubectl();
    let names: Vec<String> = (0..cli.pipelines).map(|i| format!("load-{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let collector = Collector::start(&refs).await?;
    collector.set_noise(cli.alerts);
    let mut setup = Setup::fast(collector.addr());
    setup.rules = rules::with_noise(&setup.rules);
    let prometheus = Prometheus::start(&setup).await?;
    say(&format!("waiting for {} NoiseAlerts to fire", cli.alerts));
    prometheus
        .until_noise(cli.alerts, Duration::from_secs(120))
        .await?;

    let url = prometheus.url();
    install(
        &kubectl,
        &[
            ("prometheusUrl", url.as_str()),
            ("minInterval", &cli.interval),
            ("maxInterval", &cli.interval),
            ("backoffFactor", "1"),
            ("requestTimeout", "10s"),
            ("staleAfter", "2m"),
        ],
    )?;
    say(&format!("creating {} MetricPipelines", cli.pipelines));
    for chunk in names.chunks(250) {
        let items: Vec<String> = chunk
            .iter()
            .map(|n| {
                format!(
                    r#"{{"apiVersion":"telemetry.kyma-project.io/v1beta1","kind":"MetricPipeline","metadata":{{"name":"{n}"}},"spec":{{"output":{{"otlp":{{"endpoint":{{"value":"http://backend:4317"}}}}}}}}}}"#
                )
            })
            .collect();
        let list = format!(
            r#"{{"apiVersion":"v1","kind":"List","items":[{}]}}"#,
            items.join(",")
        );
        kubectl.run_with_input(&["apply", "-f", "-"], Some(&list))?;
    }
    let kubeconfig = plane.dir().join("alert-poller.kubeconfig");
    kubectl.service_account_kubeconfig(NAMESPACE, "alert-poller", &kubeconfig)?;
    let log = plane.dir().join("alert-poller.log");
    let writes_before_start = server_status_writes(&kubectl)?;
    say("starting the release controller");
    let mut controller = ControllerProcess::start(&binary, &kubeconfig, NAMESPACE, &log)?;
    let limit = Instant::now() + Duration::from_secs(180);
    loop {
        let (set, healthy) = conditions(&kubectl)?;
        if set == cli.pipelines && healthy == cli.pipelines {
            break;
        }
        if Instant::now() > limit {
            bail!("only {set} conditions set, {healthy} True, after 3 min");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let initial_writes = server_status_writes(&kubectl)? - writes_before_start;
    say(&format!(
        "all {} pipelines healthy after {initial_writes} status writes",
        cli.pipelines
    ));

    let total = Duration::from_secs(cli.minutes * 60);
    let half = total / 2;
    let run_start = Instant::now();
    let pid = controller.pid();
    let polls_before = controller
        .metric(r#"alert_poller_polls_total{result="success"}"#)
        .await
        .unwrap_or(0.0);
    let mut samples = vec![Sample {
        at: Duration::ZERO,
        cpu: usage(pid).0,
        writes: server_status_writes(&kubectl)?,
    }];
    let prometheus_cpu_before = usage(prometheus.pid().unwrap_or(0)).0;
    let mut broken: Option<String> = None;
    let mut changes = 0usize;
    let mut next_change = Duration::from_secs(5);
    let mut next_sample = Duration::from_secs(30);
    let mut half_writes = None;
    while run_start.elapsed() < total {
        let now = run_start.elapsed();
        // Changes only in the first half; mend whatever is broken at the half.
        if now >= next_change && (now < half || broken.is_some()) {
            match broken.take() {
                Some(p) => {
                    collector.set_flow(Component::Gateway, &p, Flow::Healthy);
                }
                None => {
                    let p = names[(changes * 7919) % names.len()].clone();
                    collector.set_flow(Component::Gateway, &p, Flow::AllDropped);
                    broken = Some(p);
                }
            }
            changes += 1;
            next_change += cli.change_every;
        }
        if now >= next_sample {
            samples.push(Sample {
                at: now,
                cpu: usage(pid).0,
                writes: server_status_writes(&kubectl)?,
            });
            say(&format!(
                "{:.0}s: {} changes injected, {:.0} status writes so far",
                now.as_secs_f64(),
                changes,
                samples.last().map_or(0.0, |s| s.writes) - samples[0].writes
            ));
            next_sample += Duration::from_secs(30);
        }
        // The quiet half starts once the last mend had time to be written.
        if half_writes.is_none() && now >= half + Duration::from_secs(30) {
            half_writes = Some((now, server_status_writes(&kubectl)?));
        }
        ensure!(
            controller.alive(),
            "the controller died:\n{}",
            controller.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let end_writes = server_status_writes(&kubectl)?;
    let (quiet_from, quiet_start_writes) = half_writes.context("the run was too short")?;
    let (cpu, peak_kib) = usage(pid);
    let prometheus_cpu = usage(prometheus.pid().unwrap_or(0)).0 - prometheus_cpu_before;
    let metric = |name: &'static str| {
        let c = &controller;
        async move { c.metric(name).await.unwrap_or(0.0) }
    };
    let polls = metric(r#"alert_poller_polls_total{result="success"}"#).await - polls_before;
    let failed: f64 = {
        let text = controller
            .get("/metrics")
            .await
            .map(|(_, t)| t)
            .unwrap_or_default();
        text.lines()
            .filter(|l| l.starts_with("alert_poller_polls_total{") && !l.contains("success"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
            + 0.0 // an empty sum is -0.0
    };
    let duration_sum = metric("alert_poller_poll_duration_seconds_sum").await;
    let duration_count = metric("alert_poller_poll_duration_seconds_count").await;
    let bytes = metric("alert_poller_prometheus_response_bytes_total").await;
    let own_writes = controller.status_writes().await;
    let transitions = kubectl
        .run(&[
            "get",
            "events.events.k8s.io",
            "-A",
            "-o",
            r#"jsonpath={range .items[*]}{.reportingController}{"\n"}{end}"#,
        ])?
        .lines()
        .filter(|l| l.trim() == "alert-poller")
        .count();
    let (set, healthy) = conditions(&kubectl)?;
    let change_writes = quiet_start_writes - samples[0].writes;
    let quiet_writes = end_writes - quiet_start_writes;
    let elapsed = run_start.elapsed();
    let machine = format!(
        "{} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/cpuinfo")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .unwrap_or("unknown CPU")
            .trim()
    );

    let mut r = String::new();
    let _ = writeln!(r, "# Load run\n");
    let _ = writeln!(
        r,
        "Produced by `cargo build --release --workspace --bins && target/release/load --minutes {} --pipelines {} --alerts {} --interval {}` on {machine}.\n",
        cli.minutes, cli.pipelines, cli.alerts, cli.interval
    );
    let _ = writeln!(
        r,
        "The release controller, out of cluster with deploy/'s ServiceAccount, against a real kube-apiserver with {} MetricPipelines and a real Prometheus with {} active alerts that concern no pipeline (plus the pipelines' own). It waits {} between polls. In the first half one pipeline breaks or mends every {}; the second half is quiet. Status writes are counted by the API server (`apiserver_request_total`, APPLY on `metricpipelines/status`).\n",
        cli.pipelines,
        cli.alerts,
        cli.interval,
        humantime::format_duration(cli.change_every)
    );
    let _ = writeln!(r, "| figure | value |\n|---|---|");
    let rows = [
        ("run length", format!("{:.0} s", elapsed.as_secs_f64())),
        ("successful polls", format!("{polls:.0}")),
        ("failed polls", format!("{failed:.0}")),
        (
            "mean poll time (request and decode)",
            format!("{:.0} ms", 1000.0 * duration_sum / duration_count.max(1.0)),
        ),
        (
            "mean response size",
            format!(
                "{:.2} MiB",
                bytes / duration_count.max(1.0) / f64::from(1 << 20)
            ),
        ),
        (
            "controller CPU over the run",
            format!(
                "{:.1} s ({:.1}% of one core)",
                cpu - samples[0].cpu,
                100.0 * (cpu - samples[0].cpu) / elapsed.as_secs_f64()
            ),
        ),
        (
            "controller peak RSS (whole life)",
            format!("{:.1} MiB", peak_kib as f64 / 1024.0),
        ),
        (
            "Prometheus CPU over the run",
            format!("{prometheus_cpu:.1} s"),
        ),
        (
            "status writes to create the first conditions",
            format!("{initial_writes:.0} (for {} pipelines)", cli.pipelines),
        ),
        ("changes injected (breaks and mends)", changes.to_string()),
        (
            "status writes while changing",
            format!("{change_writes:.0}"),
        ),
        (
            "status writes while quiet",
            format!(
                "{quiet_writes:.0} over {:.0} s",
                (elapsed - quiet_from).as_secs_f64()
            ),
        ),
        (
            "status writes, controller's own count (whole life)",
            format!("{own_writes:.0}"),
        ),
        (
            "transition Events recorded (whole life)",
            transitions.to_string(),
        ),
        (
            "conditions set / True at the end",
            format!("{set} / {healthy}"),
        ),
    ];
    for (k, v) in rows {
        let _ = writeln!(r, "| {k} | {v} |");
    }
    let _ = writeln!(
        r,
        "\nController CPU and status writes (API server count) every 30 s:\n"
    );
    let _ = writeln!(r, "| at s | CPU s | writes |\n|---|---|---|");
    for s in &samples {
        let _ = writeln!(
            r,
            "| {:.0} | {:.1} | {:.0} |",
            s.at.as_secs_f64(),
            s.cpu - samples[0].cpu,
            s.writes - samples[0].writes
        );
    }
    drop(controller);

    ensure!(
        quiet_writes == 0.0,
        "{quiet_writes} status writes while nothing changed\n{r}"
    );
    ensure!(
        change_writes <= 3.0 * changes as f64 && change_writes >= changes as f64,
        "{change_writes} status writes for {changes} changes\n{r}"
    );
    ensure!(
        set == cli.pipelines && healthy == cli.pipelines,
        "the run ended with {set} conditions, {healthy} True\n{r}"
    );
    Ok(r)
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
