//! End to end: a real kube-apiserver and etcd (tests/controlplane/), a real
//! Prometheus, `kubectl apply -k deploy/`, and the real `alert-poller` binary
//! running out of cluster with the token of the ServiceAccount deploy/
//! creates, so deploy/'s RBAC is what the controller gets.
//!
//! One environment serves all scenarios, which run in order and build on each
//! other (see support/env.rs). The fault scenarios are in e2e_faults.rs.

#[macro_use]
#[path = "support/env.rs"]
mod env;

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use alert_poller_testbed::collector::{Component, Flow, PipelineKind};
use alert_poller_testbed::controller::ControllerProcess;
use anyhow::{Context as _, Result, ensure};
use env::{Env, NAMESPACE, PATIENCE, install, tail};
use serde_json::Value;

/// TCP ports a process listens on: its socket inodes (from /proc/PID/fd)
/// matched against the LISTEN entries of /proc/net/tcp and tcp6.
fn listening_ports(pid: u32) -> Vec<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.display().to_string();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let mut ports = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
        {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is field 1 (ADDR:PORT in hex), st is 3 (0A = LISTEN), inode is 9.
            if f.len() > 9
                && f[3] == "0A"
                && inodes.iter().any(|i| i == f[9])
                && let Some(port) = f[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
            {
                ports.push(port);
            }
        }
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// The controller runs with the ServiceAccount's token and marks both sample
/// pipelines healthy, writing with its own field manager on the status only.
async fn controller_runs_as_its_service_account(env: &mut Env) -> Result<()> {
    let kubeconfig = env.service_account_kubeconfig()?;
    // The token is really the ServiceAccount's, and it may not do more than deploy/ grants.
    let who = env.kubectl(&[
        "--kubeconfig",
        &kubeconfig.display().to_string(),
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ])?;
    ensure!(
        who == "system:serviceaccount:alert-poller:alert-poller",
        "token is {who}"
    );
    let denied = env.kubectl(&[
        "--kubeconfig",
        &kubeconfig.display().to_string(),
        "auth",
        "can-i",
        "update",
        "metricpipelines",
    ]);
    ensure!(
        denied.is_err(),
        "the ServiceAccount must not update pipelines: {denied:?}"
    );

    env.start_controller("alert-poller", &[])?;
    for name in ["backend", "audit"] {
        env.until_condition(name, "True", "FlowHealthy").await?;
    }
    // The one port is the metrics port: no webhook, nothing else.
    let listening = listening_ports(env.controller().pid());
    let metrics_port: u16 = env
        .controller()
        .base_url()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()?;
    ensure!(
        listening == vec![metrics_port],
        "listens on {listening:?}, not only on {metrics_port}"
    );
    let (status, body) = env
        .controller()
        .get("/readyz")
        .await
        .context("readyz unreachable")?;
    ensure!(
        status == 200,
        "not ready: {body}\n{}",
        tail(&env.controller().log(), 20)
    );

    let managed = env.kubectl(&[
        "get",
        "metricpipeline",
        "backend",
        "-o",
        "json",
        "--show-managed-fields",
    ])?;
    let managed: Value = serde_json::from_str(&managed)?;
    let ours = managed["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["manager"] == "alert-poller")
        .context("no managedFields entry for alert-poller")?;
    ensure!(
        ours["operation"] == "Apply" && ours["subresource"] == "status",
        "{ours}"
    );
    ensure!(
        managed["spec"]["input"]["prometheus"]["namespaces"]["exclude"][0] == "kube-system",
        "the spec is untouched"
    );
    Ok(())
}

/// The gateway of "backend" drops everything: exactly "backend" goes False
/// with the right reason and an event; "audit" is not touched; then back.
async fn a_drop_alert_turns_exactly_that_pipeline_false_and_back(env: &mut Env) -> Result<()> {
    let audit_before = env.condition("audit")?.context("audit has a condition")?;
    env.collector
        .set_flow(Component::Gateway, "backend", Flow::AllDropped);
    let failed = env
        .until_condition("backend", "False", "GatewayAllTelemetryDataDropped")
        .await?;
    ensure!(
        env.condition("audit")? == Some(audit_before.clone()),
        "audit was rewritten"
    );
    let events = env.events("default", "GatewayAllTelemetryDataDropped")?;
    ensure!(
        events
            .iter()
            .any(|e| e["regarding"]["name"] == "backend" && e["type"] == "Warning"),
        "no Warning event for backend: {events:?}"
    );

    // `lastTransitionTime` has whole seconds: recover at least a second after
    // the False write, or both writes may fall in the same second and the
    // check below could not tell a moved time from a kept one.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    env.collector
        .set_flow(Component::Gateway, "backend", Flow::Healthy);
    let healthy = env
        .until_condition("backend", "True", "FlowHealthy")
        .await?;
    ensure!(
        healthy["lastTransitionTime"] != failed["lastTransitionTime"],
        "the transition time moved with the status"
    );
    ensure!(
        env.condition("audit")? == Some(audit_before),
        "audit was rewritten"
    );
    Ok(())
}

/// Waits for an InvalidConfig Warning on the ConfigMap whose note names
/// every one of `words`.
async fn until_config_warning(env: &Env, words: &[&str]) -> Result<()> {
    let started = Instant::now();
    loop {
        let events = env.events(NAMESPACE, "InvalidConfig")?;
        if events.iter().any(|e| {
            e["regarding"]["name"] == "alert-poller"
                && e["type"] == "Warning"
                && e["note"]
                    .as_str()
                    .is_some_and(|n| words.iter().all(|w| n.contains(w)))
        }) {
            return Ok(());
        }
        ensure!(
            started.elapsed() < PATIENCE,
            "no InvalidConfig event naming {words:?}: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `alert-poller check --all` as an operator runs it, with the admin's
/// kubeconfig: every pipeline of the cluster, each verdict beside the
/// condition the controller wrote, and exit 3 for scripts while one is
/// unhealthy.
async fn check_all_judges_every_pipeline_of_the_cluster(env: &mut Env) -> Result<()> {
    env.collector
        .set_flow(Component::Gateway, "backend", Flow::SomeDropped);
    env.until_condition("backend", "False", "GatewaySomeTelemetryDataDropped")
        .await?;
    let kubeconfig = env.kubectl.kubeconfig().display().to_string();
    let url = env.prometheus.url();
    let check = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_alert-poller"))
            .args(["check", "--all", "--kubeconfig", &kubeconfig])
            .args(["--prometheus-url", &url])
            .args(extra)
            .output()
    };
    let json = check(&["-o", "json", "--fail-on-unhealthy"])?;
    ensure!(
        json.status.code() == Some(3),
        "exit 3 while backend drops: {json:?}"
    );
    let reports: Vec<Value> = serde_json::from_slice(&json.stdout)?;
    let names: Vec<_> = reports
        .iter()
        .map(|r| (r["kind"].as_str(), r["pipeline"].as_str()))
        .collect();
    ensure!(
        names
            == [
                (Some("metric"), Some("audit")),
                (Some("metric"), Some("backend")),
                (Some("trace"), Some("traces")),
                (Some("log"), Some("app-logs")),
                (Some("log"), Some("legacy-logs")),
            ],
        "every pipeline, by kind then name: {names:?}"
    );
    for r in &reports {
        ensure!(
            r["status"] == r["current"]["status"] && r["reason"] == r["current"]["reason"],
            "the verdict matches what the controller wrote: {r}"
        );
    }
    let wide = String::from_utf8(check(&["-o", "wide"])?.stdout)?;
    ensure!(
        wide.contains("The metric gateway drops part of the data"),
        "wide shows the message: {wide}"
    );
    let table = check(&[])?;
    let text = String::from_utf8(table.stdout)?;
    ensure!(
        table.status.success() && text.contains("GatewaySomeTelemetryDataDropped"),
        "{text}"
    );
    println!("    check --all:\n{text}");
    env.collector
        .set_flow(Component::Gateway, "backend", Flow::Healthy);
    env.until_condition("backend", "True", "FlowHealthy")
        .await?;
    Ok(())
}

/// A ConfigMap patch retunes the poller without a restart; a bad value is
/// refused with a Warning Event and the last good tuning stays.
async fn configmap_patch_retunes_without_restart(env: &mut Env) -> Result<()> {
    let pid = env.controller().pid();
    // Unlocked: the interval gauge then shows the schedule's own interval,
    // not the wait for the next evaluation.
    env.patch_config(
        r#"{"minInterval":"300ms","maxInterval":"300ms","backoffFactor":"1","phaseLock":"false"}"#,
    )?;
    env.until_metric("alert_poller_poll_interval_seconds", 0.3)
        .await?;

    // A trap is refused like a typo: polls as far apart as staleAfter (5s
    // here) would leave every pipeline Unknown between them.
    env.patch_config(r#"{"maxInterval":"5s"}"#)?;
    env.until_metric("alert_poller_config_valid", 0.0).await?;
    until_config_warning(env, &["maxInterval", "staleAfter"]).await?;
    env.patch_config(r#"{"maxInterval":"300ms"}"#)?;
    env.until_metric("alert_poller_config_valid", 1.0).await?;

    env.patch_config(r#"{"minInterval":"bogus"}"#)?;
    env.until_metric("alert_poller_config_valid", 0.0).await?;
    until_config_warning(env, &["minInterval", "bogus"]).await?;
    // The last good tuning stays in force over several more polls.
    let polls = env
        .controller()
        .metric(r#"alert_poller_polls_total{result="success"}"#)
        .await
        .unwrap_or(0.0);
    env.until_metric(r#"alert_poller_polls_total{result="success"}"#, polls + 5.0)
        .await?;
    ensure!(
        env.controller()
            .metric("alert_poller_poll_interval_seconds")
            .await
            == Some(0.3),
        "the last good interval stays"
    );
    ensure!(
        env.controller.as_mut().unwrap().alive() && env.controller().pid() == pid,
        "no restart"
    );

    env.patch_config(r#"{"minInterval":"200ms"}"#)?;
    env.until_metric("alert_poller_config_valid", 1.0).await?;
    Ok(())
}

/// Deleting a pipeline while its alerts change causes no errors: the
/// re-queue of a pipeline that is gone is a no-op.
async fn deleting_a_pipeline_while_polling_is_quiet(env: &mut Env) -> Result<()> {
    async fn requeued(env: &Env) -> f64 {
        env.controller()
            .metric_sum(
                "alert_poller_pipelines_requeued_total",
                &[("kind", "metric")],
            )
            .await
    }
    let before = requeued(env).await;
    env.kubectl(&["delete", "metricpipeline", "audit", "--wait=true"])?;
    env.collector
        .set_flow(Component::Gateway, "audit", Flow::AllDropped);
    let started = Instant::now();
    while requeued(env).await <= before {
        ensure!(
            started.elapsed() < PATIENCE,
            "the alert for the deleted pipeline never re-queued it"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    env.collector
        .set_flow(Component::Gateway, "audit", Flow::Healthy);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let errors = env
        .controller()
        .metric_sum(
            "alert_poller_reconciles_total",
            &[("result", "status_write_error")],
        )
        .await;
    ensure!(errors == 0.0, "reconcile errors: {errors}");
    let failed = env
        .controller()
        .metric_sum("alert_poller_reconciles_total", &[])
        .await
        - env
            .controller()
            .metric_sum("alert_poller_reconciles_total", &[("result", "success")])
            .await;
    ensure!(failed == 0.0, "{failed} reconciles failed");
    ensure!(
        env.controller.as_mut().unwrap().alive(),
        "the controller is still running"
    );
    Ok(())
}

/// SIGTERM ends the controller within 5 s.
async fn sigterm_stops_within_five_seconds(env: &mut Env) -> Result<()> {
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
async fn leader_failover(env: &mut Env) -> Result<()> {
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
    // Exactly one leads.
    let started = Instant::now();
    let leader = loop {
        let mut leaders = Vec::new();
        for (i, r) in replicas.iter().enumerate() {
            if r.metric("alert_poller_leader").await == Some(1.0) {
                leaders.push(i);
            }
        }
        if leaders.len() == 1 {
            break leaders[0];
        }
        ensure!(leaders.len() < 2, "two leaders at once");
        ensure!(started.elapsed() < PATIENCE, "no leader elected");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
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
    env.collector
        .set_flow(Component::Gateway, "backend", Flow::SomeDropped);
    env.until_condition("backend", "False", "GatewaySomeTelemetryDataDropped")
        .await?;
    env.collector
        .set_flow(Component::Gateway, "backend", Flow::Healthy);
    env.until_condition("backend", "True", "FlowHealthy")
        .await?;
    Ok(())
}

/// All three kinds from one poll: one pipeline of each kind (and both log
/// flavours) goes False with its own reason and back to True, and the
/// controller writes exactly those two conditions: no other pipeline, of any
/// kind, receives a write.
async fn every_kind_goes_false_with_its_own_reason_and_back(env: &mut Env) -> Result<()> {
    let everyone = [
        ("metricpipeline", "backend"),
        ("metricpipeline", "audit"),
        ("tracepipeline", "traces"),
        ("logpipeline", "app-logs"),
        ("logpipeline", "legacy-logs"),
    ];
    for (resource, name) in everyone {
        env.until_condition_of(resource, name, "True", "FlowHealthy")
            .await?;
    }
    type Case = (
        &'static str,
        &'static str,
        PipelineKind,
        Component,
        Flow,
        &'static str,
    );
    let cases: [Case; 4] = [
        (
            "tracepipeline",
            "traces",
            PipelineKind::Trace,
            Component::Gateway,
            Flow::SomeDropped,
            "GatewaySomeTelemetryDataDropped",
        ),
        (
            "logpipeline",
            "app-logs",
            PipelineKind::Log,
            Component::Agent,
            Flow::AllDropped,
            "AgentAllTelemetryDataDropped",
        ),
        (
            "logpipeline",
            "legacy-logs",
            PipelineKind::Log,
            Component::FluentBit,
            Flow::BufferFull,
            "AgentBufferFillingUp",
        ),
        (
            "metricpipeline",
            "audit",
            PipelineKind::Metric,
            Component::Gateway,
            Flow::AllDropped,
            "GatewayAllTelemetryDataDropped",
        ),
    ];
    for (resource, name, kind, component, flow, reason) in cases {
        let before = env.controller().status_writes().await;
        let others = versions_of_others(env, resource, name)?;
        let watch = ConditionWatch::start(env, resource, name)?;
        env.collector.set_flow_of(kind, component, name, flow);
        env.until_condition_of(resource, name, "False", reason)
            .await?;
        env.collector
            .set_flow_of(kind, component, name, Flow::Healthy);
        env.until_condition_of(resource, name, "True", "FlowHealthy")
            .await?;
        // Give a stray write the time of a few polls to show up.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let writes = env.controller().status_writes().await - before;
        // What the API server's watch of this one object saw, write by
        // write. Each changes the condition (the controller writes only a
        // difference); the first turns it False, the last back to True.
        // Usually that is all (2 writes), but a poll that reads Prometheus
        // while it is halfway through evaluating the group may see one
        // rule's alert already resolved and the next not yet firing, and
        // write that state too, as telemetry-manager would.
        let written = watch.stop();
        ensure!(
            written.len() as f64 == writes,
            "{resource}/{name}: {writes} status writes counted, {} seen by the watch: {written:?}",
            written.len()
        );
        ensure!(
            written.first().is_some_and(|(s, _)| s == "False")
                && written
                    .last()
                    .is_some_and(|(s, r)| s == "True" && r == "FlowHealthy")
                && written.windows(2).all(|w| w[0] != w[1]),
            "{resource}/{name}: the writes were {written:?}"
        );
        ensure!(
            versions_of_others(env, resource, name)? == others,
            "{resource}/{name}: another pipeline was written"
        );
        if written.len() == 2 {
            println!("    {resource}/{name}: False/{reason} and back, 2 writes in all");
        } else {
            println!("    {resource}/{name}: False/{reason} and back, by way of {written:?}");
        }
    }
    Ok(())
}

/// Every pipeline's resourceVersion but `(resource, name)`'s: any write to
/// another pipeline changes it.
fn versions_of_others(env: &Env, resource: &str, name: &str) -> Result<Vec<String>> {
    let mut versions = Vec::new();
    for kind in ["metricpipeline", "tracepipeline", "logpipeline"] {
        let list: Value = serde_json::from_str(&env.kubectl(&["get", kind, "-o", "json"])?)?;
        for item in list["items"].as_array().into_iter().flatten() {
            let item_name = item["metadata"]["name"].as_str().unwrap_or_default();
            if kind != resource || item_name != name {
                versions.push(format!(
                    "{kind}/{item_name}@{}",
                    item["metadata"]["resourceVersion"]
                ));
            }
        }
    }
    Ok(versions)
}

/// `kubectl get --watch` of one pipeline: the condition after each change
/// of the object, as the API server tells every watcher.
struct ConditionWatch {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl ConditionWatch {
    /// Starts the watch and returns once it has shown the current object.
    fn start(env: &Env, resource: &str, name: &str) -> Result<ConditionWatch> {
        let path = format!("{{.status.conditions[?(@.type==\"{}\")]}}", env::CONDITION);
        let template = format!("{path}{{\"\\n\"}}");
        let mut child = env
            .kubectl
            .command(&[
                "get",
                resource,
                name,
                "--watch",
                "-o",
                &format!("jsonpath={template}"),
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().context("kubectl's stdout")?;
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        lines
            .recv_timeout(PATIENCE)
            .context("the watch shows the object")?;
        Ok(ConditionWatch { child, lines })
    }

    /// Ends the watch: the (status, reason) of every change it saw.
    fn stop(mut self) -> Vec<(String, String)> {
        // Let lines in flight arrive before the process goes.
        std::thread::sleep(Duration::from_millis(300));
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.lines
            .try_iter()
            .filter_map(|line| serde_json::from_str::<Value>(&line).ok())
            .map(|c| {
                let field = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
                (field("status"), field("reason"))
            })
            .collect()
    }
}

/// A standby that cannot reach the API server is not ready: it could not take
/// over, so a rollout must not count on it. Its kubeconfig is the
/// ServiceAccount's with the server pointed at a loopback port where nothing
/// listens.
async fn a_standby_cut_off_from_the_api_server_is_not_ready(env: &mut Env) -> Result<()> {
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

fn main() -> ExitCode {
    env::run(
        "e2e",
        &scenarios![
            install,
            controller_runs_as_its_service_account,
            a_drop_alert_turns_exactly_that_pipeline_false_and_back,
            every_kind_goes_false_with_its_own_reason_and_back,
            check_all_judges_every_pipeline_of_the_cluster,
            configmap_patch_retunes_without_restart,
            deleting_a_pipeline_while_polling_is_quiet,
            sigterm_stops_within_five_seconds,
            leader_failover,
            a_standby_cut_off_from_the_api_server_is_not_ready,
        ],
    )
}
