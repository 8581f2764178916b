//! The steps about deploy/'s pods: two Ready replicas, the leader's write,
//! the locked-down container, logs, readiness, failover, resource use.

use std::path::Path;
use std::time::{Duration, Instant};

use super::world::*;
use alert_poller_testbed::collector::{Component, Flow};
use alert_poller_testbed::install::{self, NAMESPACE};
use alert_poller_testbed::node;
use alert_poller_testbed::repo_root;
use anyhow::{Context as _, Result, bail, ensure};

/// deploy/ as a user applies it, tuned for the self-monitor stand-in by its
/// ClusterIP (no cluster DNS here) and for speed: both replicas become
/// Running and Ready, and the leader writes the first condition.
pub async fn deploy_runs_two_ready_replicas(w: &mut World) -> Result<()> {
    let url = w.self_monitor.clone();
    let tuning = [
        ("prometheusUrl", url.as_str()),
        ("minInterval", "200ms"),
        ("maxInterval", "1s"),
        ("backoffFactor", "2"),
        ("errorMaxInterval", "2s"),
        ("staleAfter", "5s"),
        ("requestTimeout", "1s"),
        ("connectTimeout", "500ms"),
    ];
    let applied = Instant::now();
    install::install(w.kubectl(), &tuning)?;
    w.run(&[
        "apply",
        "-k",
        &repo_root().join("config/samples").display().to_string(),
    ])?;
    w.until_condition("backend", "True", "FlowHealthy").await?;
    let first = applied.elapsed();
    w.until_ready_pods(2, PATIENCE).await?;
    let ready = applied.elapsed();
    w.report.push(format!(
        "apply -k deploy/ to the first condition: {:.1}s; to both replicas Ready: {:.1}s",
        first.as_secs_f64(),
        ready.as_secs_f64()
    ));
    let images: Vec<String> = w
        .pods()?
        .iter()
        .flat_map(|p| {
            p["status"]["containerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|c| c["image"].as_str().map(str::to_owned))
        .collect();
    ensure!(
        images.iter().all(|i| *i == node::project_image()) && images.len() == 2,
        "the pods run {images:?}"
    );
    Ok(())
}

/// The leader, in its pod, turns an alert raised in the real Prometheus
/// into the manager's reason, and back.
pub async fn leader_writes_the_condition(w: &mut World) -> Result<()> {
    let leader = w.until_leader(None).await?;
    ensure!(
        w.ready_pods()?.contains(&leader),
        "the lease holder {leader} is one of the Ready pods"
    );
    let t = Instant::now();
    w.break_and_mend_backend(Flow::AllDropped, "GatewayAllTelemetryDataDropped")
        .await?;
    w.report.push(format!(
        "an alert raised and resolved, both written by the leader {leader}, in {:.1}s",
        t.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// The container process as the kernel sees it: UID 65532, no capabilities,
/// no-new-privileges, a seccomp filter and a read-only root.
pub async fn container_is_locked_down(w: &mut World) -> Result<()> {
    for pod in w.pods()? {
        let name = pod["metadata"]["name"].as_str().unwrap_or("?").to_owned();
        let id = pod["status"]["containerStatuses"][0]["containerID"]
            .as_str()
            .and_then(|c| c.strip_prefix("containerd://"))
            .with_context(|| format!("{name} has no running container"))?
            .to_owned();
        let pid =
            container_pid(&id).with_context(|| format!("no process of {name}'s container {id}"))?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.split_whitespace().collect::<Vec<_>>())
                .unwrap_or_default()
        };
        ensure!(
            field("Uid:").iter().all(|u| *u == "65532")
                && field("Gid:").iter().all(|g| *g == "65532"),
            "{name} runs as uid {:?} gid {:?}",
            field("Uid:"),
            field("Gid:")
        );
        for caps in ["CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"] {
            ensure!(
                field(caps) == ["0000000000000000"],
                "{name} has {caps} {:?}",
                field(caps)
            );
        }
        ensure!(
            field("NoNewPrivs:") == ["1"],
            "{name}: no-new-privileges is off"
        );
        ensure!(field("Seccomp:") == ["2"], "{name}: no seccomp filter");
        let mounts = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))?;
        let root = mounts
            .lines()
            .find(|l| l.split_whitespace().nth(4) == Some("/"))
            .with_context(|| format!("{name} has no root mount"))?;
        let options = root.split_whitespace().nth(5).unwrap_or_default();
        ensure!(
            options.split(',').any(|o| o == "ro"),
            "{name}'s root is mounted {options}"
        );
    }
    Ok(())
}

/// The host PID of a container's process, found by the container ID in its
/// cgroup path (kubelet's cgroupfs layout ends in the ID).
pub fn container_pid(id: &str) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).ok()?;
        (cgroups.contains(id) && cmdline.starts_with("/usr/local/bin/alert-poller")).then_some(pid)
    })
}

/// `kubectl logs` reaches kubelet and shows the controller's own lines.
pub async fn logs_reach_kubectl(w: &mut World) -> Result<()> {
    let leader = w.until_leader(None).await?;
    let logs = w.run(&["-n", NAMESPACE, "logs", &leader])?;
    ensure!(
        logs.lines().any(|l| l.contains("became leader")),
        "the leader's log has no 'became leader' line:\n{logs}"
    );
    Ok(())
}

/// Cut the pods off the API server: both turn NotReady (the standby cannot
/// reach it; the leader loses its lease), and Ready again once it is back.
/// Pods reach it at the node's port 6443 (see `enforce_network_policies`);
/// the rule goes first in INPUT, ahead of kube-router's chain, which would
/// accept what deploy/'s egress admits.
pub async fn readiness_follows_the_api_server(w: &mut World) -> Result<()> {
    let port = node::POD_API_PORT.to_string();
    let rule = [
        "INPUT",
        "-s",
        "10.244.0.0/24",
        "-p",
        "tcp",
        "--dport",
        &port,
        "-j",
        "REJECT",
        "--reject-with",
        "tcp-reset",
    ];
    let iptables = |action: &str| -> Result<()> {
        let out = w
            .node
            .command(Path::new("iptables"))
            .arg(action)
            .args(rule)
            .output()?;
        ensure!(
            out.status.success(),
            "iptables {action}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    };
    iptables("-I")?;
    let cut = Instant::now();
    let result = async {
        loop {
            if w.ready_pods()?.is_empty() {
                break;
            }
            if cut.elapsed() > PATIENCE {
                bail!(
                    "pods stayed Ready without the API server: {}",
                    w.describe_pods()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(cut.elapsed())
    }
    .await;
    iptables("-D")?;
    let unready = result?;
    let back = Instant::now();
    w.until_ready_pods(2, PATIENCE).await?;
    w.until_condition("backend", "True", "FlowHealthy").await?;
    w.report.push(format!(
        "API server cut off: both pods NotReady after {:.1}s; Ready again {:.1}s after it came back",
        unready.as_secs_f64(),
        back.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Delete the leader's pod while an alert changes: the other replica takes
/// the lease and writes the change, and the Deployment replaces the pod.
pub async fn failover_keeps_the_transition(w: &mut World) -> Result<()> {
    let leader = w.until_leader(None).await?;
    w.run(&["-n", NAMESPACE, "delete", "pod", &leader, "--wait=false"])?;
    let deleted = Instant::now();
    w.collector
        .set_flow(Component::Gateway, "audit", Flow::AllDropped);
    let next = w.until_leader(Some(&leader)).await?;
    let took_over = deleted.elapsed();
    w.until_condition("audit", "False", "GatewayAllTelemetryDataDropped")
        .await?;
    let written = deleted.elapsed();
    w.until_ready_pods(2, PATIENCE).await?;
    let replaced = deleted.elapsed();
    ensure!(
        !w.ready_pods()?.contains(&leader),
        "the deleted pod {leader} is gone"
    );
    w.collector
        .set_flow(Component::Gateway, "audit", Flow::Healthy);
    w.until_condition("audit", "True", "FlowHealthy").await?;
    w.report.push(format!(
        "failover: leader {leader} deleted; {next} held the lease after {:.1}s, wrote the alert's change after {:.1}s; 2 pods Ready again after {:.1}s",
        took_over.as_secs_f64(),
        written.as_secs_f64(),
        replaced.as_secs_f64()
    ));
    Ok(())
}

/// kubelet's view of the pods' CPU and memory (the Summary API).
pub async fn pods_resource_use(w: &mut World) -> Result<()> {
    let lines = w.node.pod_usage(NAMESPACE)?;
    ensure!(
        lines.len() == 2,
        "usage of {} containers: {lines:?}",
        lines.len()
    );
    for line in lines {
        w.report.push(format!("resources: {line}"));
    }
    Ok(())
}
