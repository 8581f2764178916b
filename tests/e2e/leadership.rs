//! The steps about leadership and stopping: SIGTERM, failover to the
//! standby, and a standby cut off from the API server.

use crate::env::{Env, NAMESPACE, PATIENCE};
use alert_poller_testbed::collector::Flow;
use alert_poller_testbed::controller::ControllerProcess;
use anyhow::{Context as _, Result, ensure};
use std::path::Path;
use std::time::{Duration, Instant};

/// SIGTERM ends the controller within 5 s.
pub async fn sigterm_stops_within_five_seconds(env: &mut Env) -> Result<()> {
    let mut controller = env.controller.take().expect("started");
    // Measured use, for the Deployment's requests and limits.
    let (cpu, peak_kib) = alert_poller_testbed::usage(controller.pid());
    println!("    controller peak RSS {peak_kib} kB, CPU {cpu:.2}s");
    let took = controller.terminate(Duration::from_secs(5));
    ensure!(took.is_some(), "still running 5 s after SIGTERM");
    println!("    stopped {:?} after SIGTERM", took.unwrap());
    Ok(())
}

/// Two replicas: one leads; when it dies, the other takes over within the
/// lease duration, starts from a full reconcile and applies the next change.
pub async fn leader_failover(env: &mut Env) -> Result<()> {
    let mut replicas = start_two_replicas(env)?;
    // Exactly one leads.
    let leader = the_one_leader(&replicas).await?;
    let holder = alert_poller_testbed::install::lease_holder(&env.kubectl)?;
    ensure!(
        holder == ["replica-a", "replica-b"][leader],
        "lease held by {holder}"
    );
    let standby = 1 - leader;
    ensure!(
        replicas[standby].metric("alert_poller_leader").await == Some(0.0),
        "standby leads"
    );
    let (status, _) = replicas[standby]
        .get("/readyz")
        .await
        .context("standby readyz")?;
    ensure!(status == 200, "a standby is ready");

    // The leader dies without a word; the standby takes over.
    let killed_at = Instant::now();
    replicas[leader].kill();
    loop {
        if replicas[standby].metric("alert_poller_leader").await == Some(1.0) {
            break;
        }
        ensure!(killed_at.elapsed() < Duration::from_secs(15), "no takeover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "    takeover {:.1}s after the leader was killed",
        killed_at.elapsed().as_secs_f64()
    );
    env.controller = Some(replicas.remove(standby));
    env.break_and_mend_backend(Flow::SomeDropped, "GatewaySomeTelemetryDataDropped")
        .await?;
    Ok(())
}

/// Two replicas of the real binary on the ServiceAccount's kubeconfig, with
/// a lease short enough that a failover fits in the test's patience.
fn start_two_replicas(env: &Env) -> Result<Vec<ControllerProcess>> {
    let kubeconfig = env.plane.dir().join("alert-poller.kubeconfig");
    let binary = Path::new(env!("CARGO_BIN_EXE_alert-poller"));
    let mut replicas = Vec::new();
    for name in ["replica-a", "replica-b"] {
        let log = env.plane.dir().join(format!("{name}.log"));
        replicas.push(ControllerProcess::start_with(
            binary,
            &kubeconfig,
            NAMESPACE,
            &log,
            &[
                "--pod-name",
                name,
                "--lease-duration",
                "4s",
                "--lease-retry",
                "500ms",
            ],
        )?);
    }
    Ok(replicas)
}

/// The index of the replica that leads, once exactly one does; two leaders
/// at any moment, or none within the patience, fail the test.
async fn the_one_leader(replicas: &[ControllerProcess]) -> Result<usize> {
    let started = Instant::now();
    loop {
        let mut leaders = Vec::new();
        for (i, r) in replicas.iter().enumerate() {
            if r.metric("alert_poller_leader").await == Some(1.0) {
                leaders.push(i);
            }
        }
        if leaders.len() == 1 {
            return Ok(leaders[0]);
        }
        ensure!(leaders.len() < 2, "two leaders at once");
        ensure!(started.elapsed() < PATIENCE, "no leader elected");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A standby that cannot reach the API server is not ready: it could not take
/// over, so a rollout must not count on it. Its kubeconfig is the
/// ServiceAccount's with the server pointed at a loopback port where nothing
/// listens.
pub async fn a_standby_cut_off_from_the_api_server_is_not_ready(env: &mut Env) -> Result<()> {
    let good = std::fs::read_to_string(env.service_account_kubeconfig()?)?;
    let dead = format!("https://127.0.0.1:{}", alert_poller_testbed::free_port());
    let cut_off: String = good
        .lines()
        .map(|l| match l.trim_start().strip_prefix("server: ") {
            Some(_) => format!("    server: {dead}"),
            None => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    ensure!(cut_off.contains(&dead), "the kubeconfig has no server line");
    let kubeconfig = env.plane.dir().join("cut-off.kubeconfig");
    std::fs::write(&kubeconfig, cut_off)?;
    let replica = ControllerProcess::start_with(
        Path::new(env!("CARGO_BIN_EXE_alert-poller")),
        &kubeconfig,
        NAMESPACE,
        &env.plane.dir().join("cut-off.log"),
        &["--pod-name", "cut-off", "--lease-retry", "500ms"],
    )?;
    let started = Instant::now();
    loop {
        if let Some((status, body)) = replica.get("/readyz").await {
            ensure!(
                status == 503,
                "a standby without the API server answers {status}: {body}"
            );
            ensure!(body.contains("cannot reach the API server"), "{body}");
            ensure!(replica.metric("alert_poller_leader").await == Some(0.0));
            println!("    cut-off standby: 503 {}", body.trim());
            return Ok(());
        }
        ensure!(
            started.elapsed() < PATIENCE,
            "the cut-off replica never served /readyz"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
