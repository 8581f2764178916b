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

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alert_poller_testbed::collector::{Component, Flow};
use alert_poller_testbed::controller::ControllerProcess;
use anyhow::{Context as _, Result, bail, ensure};
use env::{CONDITION, Env, NAMESPACE, PATIENCE, repo};
use scraper::{Scraper, Target};
use serde_json::{Value, json};

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

async fn invalid_tuning_fires_config_invalid(bed: &mut Bed) -> Result<()> {
    bed.env.patch_config(r#"{"minInterval":"bogus"}"#)?;
    let alert = bed.fired("AlertPollerConfigInvalid").await?;
    ensure!(alert["labels"]["namespace"] == NAMESPACE, "{alert}");
    bed.env.patch_config(r#"{"minInterval":"200ms"}"#)?;
    bed.scraper
        .until_inactive("AlertPollerConfigInvalid", PATIENCE)
        .await
}

/// The leader polls a port nobody listens on: its last success ages; the
/// standby, which never polls, is never named.
async fn a_dead_prometheus_url_fires_no_successful_poll(bed: &mut Bed) -> Result<()> {
    let dead = format!("http://127.0.0.1:{}/", alert_poller_testbed::free_port());
    bed.env
        .patch_config(&json!({ "prometheusUrl": dead }).to_string())?;
    let alert = bed.fired("AlertPollerNoSuccessfulPoll").await?;
    ensure!(alert["labels"]["pod"] == "replica-a", "{alert}");
    let url = bed.env.prometheus.url();
    bed.env
        .patch_config(&json!({ "prometheusUrl": url }).to_string())?;
    bed.scraper
        .until_inactive("AlertPollerNoSuccessfulPoll", PATIENCE)
        .await?;
    bed.env
        .until_condition("backend", "True", "FlowHealthy")
        .await?;
    Ok(())
}

/// `kubectl patch clusterrole alert-poller` with a JSON patch.
fn patch_cluster_role(env: &Env, patch: &Value) -> Result<()> {
    env.kubectl(&[
        "patch",
        "clusterrole",
        "alert-poller",
        "--type=json",
        "-p",
        &patch.to_string(),
    ])?;
    Ok(())
}

/// deploy/'s ClusterRole loses its rule on the pipelines' status while a
/// verdict changes: every write is refused until the rule is back.
async fn refused_status_writes_fire_status_writes_failing(bed: &mut Bed) -> Result<()> {
    let role: Value = serde_json::from_str(&bed.env.kubectl(&[
        "get",
        "clusterrole",
        "alert-poller",
        "-o",
        "json",
    ])?)?;
    let rules = role["rules"].as_array().context("no rules")?;
    let index = rules
        .iter()
        .position(|r| {
            r["resources"]
                .as_array()
                .is_some_and(|rs| rs.iter().any(|x| x == "metricpipelines/status"))
        })
        .context("no rule on metricpipelines/status")?;
    let path = format!("/rules/{index}");
    patch_cluster_role(&bed.env, &json!([{"op": "remove", "path": path}]))?;
    bed.env
        .collector
        .set_flow(Component::Gateway, "backend", Flow::AllDropped);
    let fired = bed.fired("AlertPollerStatusWritesFailing").await;
    patch_cluster_role(
        &bed.env,
        &json!([{"op": "add", "path": path, "value": rules[index]}]),
    )?;
    let alert = fired?;
    ensure!(alert["labels"]["kind"] == "metric", "{alert}");
    bed.env
        .until_condition("backend", "False", "GatewayAllTelemetryDataDropped")
        .await?;
    bed.env
        .collector
        .set_flow(Component::Gateway, "backend", Flow::Healthy);
    bed.env
        .until_condition("backend", "True", "FlowHealthy")
        .await?;
    Ok(())
}

/// Another field manager rewrites our condition on `audit` in its own
/// words (as telemetry-manager would); alert-poller leaves it standing at
/// every resync, and says so.
async fn another_writer_fires_condition_kept_by_other_writer(bed: &mut Bed) -> Result<()> {
    let object = json!({
        "apiVersion": "telemetry.kyma-project.io/v1beta1",
        "kind": "MetricPipeline",
        "metadata": {"name": "audit"},
        "status": {"conditions": [{
            "type": CONDITION,
            "status": "True",
            "reason": "FlowHealthy",
            "message": "Written by another writer (tests/monitoring.rs)",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }]},
    });
    bed.env.kubectl.run_with_input(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--subresource=status",
            "--field-manager",
            "another-writer",
            "-f",
            "-",
        ],
        Some(&object.to_string()),
    )?;
    let alert = bed.fired("AlertPollerConditionKeptByOtherWriter").await?;
    ensure!(alert["labels"]["kind"] == "metric", "{alert}");
    Ok(())
}

/// The polled Prometheus restarts while an alert fires: alert-poller keeps
/// that alert until the new process has settled, and says so. For this
/// step the source evaluates its rule group every 4 s and alert-poller
/// reads `/api/v1/alerts`, which a fresh Prometheus leaves empty until the
/// group has run: settling then lasts from the first poll after the start
/// to the group's third run, 8-12 s, which a 1 s scrape cannot miss. (At
/// the test bed's 1 s evaluation it can end between two scrapes.)
async fn a_restarted_prometheus_fires_settling(bed: &mut Bed) -> Result<()> {
    let second = Duration::from_secs(1);
    let rules = |interval| alert_poller_testbed::rules::fast(second * 3, second, interval);
    bed.env.prometheus.set_rules(&rules(second * 4)).await?;
    bed.env.patch_config(r#"{"alertSource":"alerts"}"#)?;
    bed.env
        .collector
        .set_flow(Component::Gateway, "backend", Flow::AllDropped);
    bed.env
        .until_condition("backend", "False", "GatewayAllTelemetryDataDropped")
        .await?;
    bed.env.prometheus.restart().await?;
    let fired = bed.fired("AlertPollerPrometheusSettling").await;
    bed.env.prometheus.set_rules(&rules(second)).await?;
    bed.env.patch_config(r#"{"alertSource":"query"}"#)?;
    fired?;
    bed.env
        .collector
        .set_flow(Component::Gateway, "backend", Flow::Healthy);
    bed.env
        .until_condition("backend", "True", "FlowHealthy")
        .await?;
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

/// Another identity takes the Lease: the leader exits (a Deployment would
/// restart it, a standby now, as here), and no replica leads.
async fn a_lease_held_elsewhere_fires_no_leader(bed: &mut Bed) -> Result<()> {
    let renewed = serde_json::to_value(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        k8s_openapi::jiff::Timestamp::now(),
    ))?;
    let patch = json!({"spec": {
        "holderIdentity": "another-install",
        "leaseDurationSeconds": 3600,
        "renewTime": renewed,
    }});
    bed.env.kubectl(&[
        "-n",
        NAMESPACE,
        "patch",
        "lease",
        "alert-poller",
        "--type=merge",
        "-p",
        &patch.to_string(),
    ])?;
    let started = Instant::now();
    while bed
        .env
        .controller
        .as_mut()
        .is_some_and(ControllerProcess::alive)
    {
        ensure!(started.elapsed() < PATIENCE, "the leader kept running");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bed.env
        .start_controller("replica-a-restarted", &replica_args("replica-a"))?;
    until_leader_is(bed.env.controller(), 0.0).await?;
    let standby = bed.standby.as_ref().context("no standby")?;
    let targets = [
        target("replica-a", bed.env.controller()),
        target("replica-b", standby),
    ];
    bed.scraper.set_targets(&targets).await?;
    let alert = bed.fired("AlertPollerNoLeader").await?;
    ensure!(alert["labels"]["namespace"] == NAMESPACE, "{alert}");
    Ok(())
}

/// No replica left to scrape: only absent() can tell, and does.
async fn nothing_scraped_fires_absent(bed: &mut Bed) -> Result<()> {
    for mut replica in [bed.env.controller.take(), bed.standby.take()]
        .into_iter()
        .flatten()
    {
        replica.terminate(Duration::from_secs(5));
    }
    bed.fired("AlertPollerAbsent").await?;
    bed.scraper
        .until_inactive("AlertPollerNoLeader", PATIENCE)
        .await
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
