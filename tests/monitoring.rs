//! alert-poller's own monitoring (`deploy/monitoring/`), proven three ways:
//!
//! 1. `promtool test rules` on the PrometheusRule's groups, taken out of it
//!    at test time, with tests/monitoring/rules_test.yaml: each alert fires
//!    after its `for`, not before, and not while alert-poller is healthy.
//! 2. The component rendered over deploy/ and deploy/kyma-system/ as a user
//!    installs it (tests/monitoring/component.rs).
//! 3. Live: the end-to-end environment (a real kube-apiserver and etcd, a
//!    real Prometheus over the fake collector, deploy/ installed, the real
//!    binary as its ServiceAccount), two replicas with leader election, and
//!    a second real Prometheus that scrapes both as the PodMonitor would and
//!    evaluates the same rules with every `for` at 0s (promtool covers the
//!    durations; this covers that the expressions match the metrics the
//!    controller really exports). Each alert is made to fire by the
//!    situation it names, read from that Prometheus' `/api/v1/alerts`, and
//!    every query of the dashboard must return series.
//!
//! `ALERT_POLLER_DASHBOARD_OUT=DIR` also writes each panel's data of the run
//! to DIR/dashboard-data.json, which scripts/dashboard_png.py draws
//! (docs/dashboard.png). `cargo test --test monitoring -- promtool` runs
//! only the first part, without a cluster.

#[allow(unused_macros)]
#[path = "support/env.rs"]
mod env;

#[path = "monitoring/component.rs"]
mod component;
#[path = "monitoring/dashboard.rs"]
mod dashboard;
#[path = "monitoring/rules.rs"]
mod rules;
#[path = "monitoring/scraper.rs"]
mod scraper;

#[path = "monitoring/alerts.rs"]
mod alerts;

use alerts::*;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alert_poller_testbed::controller::ControllerProcess;
use anyhow::{Result, bail, ensure};
use env::{Env, NAMESPACE, PATIENCE, repo};
use scraper::{Scraper, Target};
use serde_json::Value;

/// The environment, a standby beside the leader (`env.controller`), and
/// the Prometheus that scrapes both. Field order is drop order.
struct Bed {
    scraper: Scraper,
    standby: Option<ControllerProcess>,
    env: Env,
    /// When scraping began, Unix seconds: the start of the dashboard's range.
    started: f64,
    /// When each step began (Unix seconds), marked on the dashboard's picture.
    marks: Vec<(f64, String)>,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// Flags of a replica named `pod`: a short lease, so that the steps about
/// leadership take seconds.
fn replica_args(pod: &str) -> [&str; 6] {
    [
        "--pod-name",
        pod,
        "--lease-duration",
        "4s",
        "--lease-retry",
        "500ms",
    ]
}

fn target(pod: &str, replica: &ControllerProcess) -> Target {
    Target {
        pod: pod.to_owned(),
        addr: replica.base_url().trim_start_matches("http://").to_owned(),
    }
}

/// Waits until `replica` serves `alert_poller_leader` with `value`.
async fn until_leader_is(replica: &ControllerProcess, value: f64) -> Result<()> {
    let started = Instant::now();
    while replica.metric("alert_poller_leader").await != Some(value) {
        if started.elapsed() > PATIENCE {
            bail!(
                "alert_poller_leader never {value}:\n{}",
                env::tail(&replica.log(), 20)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

impl Bed {
    /// deploy/ installed (write mode, resyncs every 10 s, the least allowed,
    /// so that a yield recurs as it does at every 5-minute resync in a
    /// cluster), replica-a leading, replica-b standing by, and the scraper
    /// on both.
    async fn start() -> Result<Bed> {
        let mut env = Env::start().await?;
        env::install(&mut env).await?;
        env.patch_config(r#"{"resyncInterval":"10s"}"#)?;
        env.start_controller("replica-a", &replica_args("replica-a"))?;
        until_leader_is(env.controller(), 1.0).await?;
        let kubeconfig = env.service_account_kubeconfig()?;
        let standby = ControllerProcess::start_with(
            Path::new(env!("CARGO_BIN_EXE_alert-poller")),
            &kubeconfig,
            NAMESPACE,
            &env.plane.dir().join("replica-b.log"),
            &replica_args("replica-b"),
        )?;
        until_leader_is(&standby, 0.0).await?;
        let groups = rules::live(&rules::shipped_groups()?)?;
        let targets = [
            target("replica-a", env.controller()),
            target("replica-b", &standby),
        ];
        let scraper = Scraper::start(&rules::rules_file(&groups)?, &targets).await?;
        Ok(Bed {
            scraper,
            standby: Some(standby),
            env,
            started: unix_now(),
            marks: Vec::new(),
        })
    }

    /// Waits until `name` fires, and checks that its annotations rendered.
    async fn fired(&self, name: &str) -> Result<Value> {
        let alert = self.scraper.until_firing(name, PATIENCE).await?;
        for key in ["summary", "description"] {
            let text = alert["annotations"][key].as_str().unwrap_or_default();
            ensure!(
                !text.is_empty() && !text.contains("<no value>") && !text.contains("{{"),
                "{name}: {key} did not render: {text:?}"
            );
        }
        ensure!(
            alert["annotations"]["description"]
                .as_str()
                .is_some_and(|d| d.contains("What to do:")),
            "{name}: the description says nothing about what to do"
        );
        println!("    {name} fired: {}", alert["annotations"]["summary"]);
        Ok(alert)
    }

    /// The series of `expr`, once it has at least `n` of them.
    async fn until_series(&self, expr: &str, n: usize) -> Result<Vec<Value>> {
        let started = Instant::now();
        loop {
            let series = self.scraper.query(expr).await?;
            if series.len() >= n {
                return Ok(series);
            }
            if started.elapsed() > PATIENCE {
                bail!("{expr}: {} series, want {n}: {series:?}", series.len());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The `pod` label of each series, sorted.
fn pods(series: &[Value]) -> Vec<String> {
    let mut pods: Vec<String> = series
        .iter()
        .filter_map(|s| s["metric"]["pod"].as_str().map(str::to_owned))
        .collect();
    pods.sort();
    pods
}

fn value(series: &Value) -> f64 {
    series["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// The PodMonitor's point: both replicas are scraped, and they differ.
async fn both_replicas_are_scraped(bed: &mut Bed) -> Result<()> {
    let leaders = bed.until_series("alert_poller_leader", 2).await?;
    for s in &leaders {
        let want = if s["metric"]["pod"] == "replica-a" {
            1.0
        } else {
            0.0
        };
        ensure!(value(s) == want, "leader gauges: {leaders:?}");
    }
    let polls = bed
        .until_series("sum by (pod) (alert_poller_polls_total)", 1)
        .await?;
    ensure!(
        pods(&polls) == ["replica-a"],
        "only the leader polls: {polls:?}"
    );
    for expr in [
        "alert_poller_config_valid",
        "alert_poller_build_info",
        r#"process_resident_memory_bytes{job="alert-poller"}"#,
    ] {
        let series = bed.until_series(expr, 2).await?;
        ensure!(
            pods(&series) == ["replica-a", "replica-b"],
            "{expr}: {series:?}"
        );
    }
    Ok(())
}

/// Healthy, nothing is active: neither firing nor pending, for 5 s.
async fn nothing_fires_while_healthy(bed: &mut Bed) -> Result<()> {
    for name in ["backend", "audit"] {
        bed.env.until_condition(name, "True", "FlowHealthy").await?;
    }
    let started = Instant::now();
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(5) {
        let alerts = bed.scraper.alerts().await?;
        if !alerts.is_empty() {
            // Before the first scrapes AlertPollerAbsent may be active.
            ensure!(
                started.elapsed() < Duration::from_secs(30),
                "active while healthy: {alerts:#?}"
            );
            quiet_since = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

/// In shadow mode the agreement gauges reach Prometheus (the dashboard's
/// shadow panel); back to write mode after.
async fn shadow_agreement_is_scraped(bed: &mut Bed) -> Result<()> {
    bed.env.patch_config(r#"{"mode":"shadow"}"#)?;
    let expr = r#"sum by (kind) (alert_poller_shadow_pipelines{agreement="agree"}) > 0"#;
    let agree = bed.until_series(expr, 3).await?;
    println!(
        "    shadow: agreement scraped for {:?}",
        agree
            .iter()
            .map(|s| s["metric"]["kind"].clone())
            .collect::<Vec<_>>()
    );
    bed.env.patch_config(r#"{"mode":"write"}"#)?;
    Ok(())
}

/// Every panel's every query returns series; with
/// `ALERT_POLLER_DASHBOARD_OUT`, the run so far is written for the picture.
async fn every_dashboard_query_answers(bed: &mut Bed) -> Result<()> {
    let shipped = dashboard::load()?;
    let asked = dashboard::every_query_answers(&bed.scraper, &shipped).await?;
    println!("    {asked} dashboard queries answered");
    if let Some(dir) = std::env::var_os("ALERT_POLLER_DASHBOARD_OUT") {
        let range = (bed.started, unix_now());
        let out = Path::new(&dir);
        dashboard::dump(&bed.scraper, &shipped, (range, &bed.marks), out).await?;
        println!(
            "    panel data of the run written to {}",
            dir.to_string_lossy()
        );
    }
    Ok(())
}

/// A part that needs no cluster.
type Check = fn() -> Result<()>;

type Step = for<'a> fn(&'a mut Bed) -> Pin<Box<dyn Future<Output = Result<()>> + 'a>>;

macro_rules! steps {
    ($($name:ident),+ $(,)?) => {
        [$((stringify!($name), (|bed| Box::pin($name(bed))) as Step)),+]
    };
}

/// Passed and failed steps, printed libtest-like.
#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
}

impl Tally {
    fn record(&mut self, name: &str, started: Instant, result: Result<()>) {
        match result {
            Ok(()) => {
                self.passed += 1;
                println!(
                    "test monitoring::{name} ... ok ({:.1}s)",
                    started.elapsed().as_secs_f64()
                );
            }
            Err(error) => {
                self.failed += 1;
                println!("test monitoring::{name} ... FAILED\n{error:#}");
            }
        }
    }
}

/// The live steps, in order, each building on the one before.
async fn run_live(steps: &[(&str, Step)], wanted: &dyn Fn(&str) -> bool, tally: &mut Tally) {
    let started = Instant::now();
    let mut bed = match Bed::start().await {
        Ok(bed) => bed,
        Err(error) => {
            tally.record("live_environment", started, Err(error));
            return;
        }
    };
    println!(
        "    environment up in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    for (name, step) in steps.iter().filter(|(name, _)| wanted(name)) {
        let started = Instant::now();
        bed.marks.push((unix_now(), (*name).to_owned()));
        let result = step(&mut bed).await;
        if result.is_err() {
            println!("scraper log:\n{}", env::tail(&bed.scraper.log(), 10));
        }
        tally.record(name, started, result);
    }
}

fn main() -> ExitCode {
    let began = Instant::now();
    let filter = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let mut tally = Tally::default();
    let offline: [(&str, Check); 2] = [
        ("promtool_unit_tests", rules::promtool_unit_tests),
        (
            "component_renders_over_both_installs",
            component::renders_over_both_installs,
        ),
    ];
    for (name, check) in offline.iter().filter(|(name, _)| wanted(name)) {
        tally.record(name, Instant::now(), check());
    }
    let live = steps![
        both_replicas_are_scraped,
        nothing_fires_while_healthy,
        shadow_agreement_is_scraped,
        invalid_tuning_fires_config_invalid,
        a_dead_prometheus_url_fires_no_successful_poll,
        refused_status_writes_fire_status_writes_failing,
        another_writer_fires_condition_kept_by_other_writer,
        a_restarted_prometheus_fires_settling,
        every_dashboard_query_answers,
        a_lease_held_elsewhere_fires_no_leader,
        nothing_scraped_fires_absent,
    ];
    if live.iter().any(|(name, _)| wanted(name)) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("tokio starts");
        runtime.block_on(run_live(&live, &wanted, &mut tally));
    }
    println!("    wall time {:.0}s", began.elapsed().as_secs_f64());
    println!(
        "\nmonitoring: {} passed, {} failed",
        tally.passed, tally.failed
    );
    if tally.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
