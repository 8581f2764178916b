//! The steps about NetworkPolicies: deploy/ reaches the self-monitor through
//! both sides' policies and nothing wider, and deploy/kyma-system/ works
//! beside the manager.

use std::time::{Duration, Instant};

use super::world::*;
use alert_poller_testbed::collector::Flow;
use alert_poller_testbed::exposition;
use alert_poller_testbed::install::{self, NAMESPACE};
use alert_poller_testbed::node;
use anyhow::{Result, bail, ensure};
use serde_json::{Value, json};

/// deploy/'s pods poll the self-monitor stand-in through deploy/'s egress
/// policy and the manager's ingress policy, both enforced: kube-router has
/// a firewall chain for each of them and a chain for each policy, an alert
/// raised in the stand-in Prometheus reaches the condition and goes away
/// again, and the leader's successful requests to it grow meanwhile.
pub async fn deploy_polls_the_self_monitor_through_both_policies(w: &mut World) -> Result<()> {
    let t = Instant::now();
    let leader = w.until_leader(None).await?;
    let rules = w.node.run_inside("iptables-save", &["-t", "filter"])?;
    for pod in w.ready_pods()? {
        ensure!(
            rules.contains(&format!("POD name:{pod} namespace: {NAMESPACE}")),
            "kube-router has no firewall chain for {pod}"
        );
    }
    let policy_chains = rules
        .lines()
        .filter(|l| l.starts_with(":KUBE-NWPLCY-") && !l.starts_with(":KUBE-NWPLCY-DEFAULT"))
        .count();
    // deploy/'s, the manager's two and the test's own.
    ensure!(
        policy_chains == 4,
        "kube-router has {policy_chains} policy chains, not 4:\n{rules}"
    );
    let successes = |w: &World| -> Result<f64> {
        let text = w.run(&[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/{NAMESPACE}/pods/{leader}:8080/proxy/metrics"),
        ])?;
        Ok(exposition::sum(
            &text,
            "alert_poller_source_requests_total",
            |labels| labels.contains(r#"result="success""#),
        ))
    };
    let before = successes(w)?;
    w.break_and_mend_backend(Flow::AllDropped, "GatewayAllTelemetryDataDropped")
        .await?;
    let after = successes(w)?;
    ensure!(
        after > before,
        "the leader's successful requests did not grow ({before} -> {after})"
    );
    w.report.push(format!(
        "policies enforced: deploy/'s leader {leader} polled the self-monitor at {} through both sides' policies (kube-router: {policy_chains} policy chains); an alert raised and resolved there reached the condition in {:.1}s; its successful requests {before} -> {after}",
        w.self_monitor,
        t.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// The manager's ingress policy admits a scraper in any namespace only with
/// the scraping label. Two pods alike but for that label, both synced by
/// kube-router before anything is asked: the labelled one goes first and
/// gets through (the control: the policies are in place); the unlabelled
/// one reaches the Prometheus elsewhere, which no policy protects, and is
/// refused by the self-monitor.
pub async fn self_monitor_admits_only_labelled_scrapers(w: &mut World) -> Result<()> {
    let t = Instant::now();
    let labelled = ProbePod::create(w, SCRAPERS, "scraper", &[SCRAPING_LABEL])?;
    let unlabelled = ProbePod::create(w, SCRAPERS, "scraper-unlabelled", &[])?;
    labelled.until_synced(w).await?;
    unlabelled.until_synced(w).await?;
    let synced = t.elapsed();
    let t = Instant::now();
    let url = w.self_monitor.clone();
    labelled
        .check(w, &url)
        .await?
        .map_err(|e| anyhow::anyhow!("the labelled scraper did not reach the self-monitor: {e}"))?;
    let admitted = t.elapsed();
    let t = Instant::now();
    let elsewhere = w.elsewhere.clone();
    unlabelled.check(w, &elsewhere).await?.map_err(|e| {
        anyhow::anyhow!("the unlabelled scraper did not reach the Prometheus in {ELSEWHERE}: {e}")
    })?;
    let refusal = match unlabelled.check(w, &url).await? {
        Err(e) => e,
        Ok(out) => bail!("the self-monitor admitted a pod without the scraping label:\n{out}"),
    };
    ensure!(
        refusal.contains("Connection refused"),
        "the unlabelled scraper failed otherwise than refused (kube-router rejects): {refusal}"
    );
    w.report.push(format!(
        "self-monitor's ingress: 2 pods in {SCRAPERS}, alike but for the scraping label, synced by kube-router in {:.1}s; the labelled one got through in {:.1}s; the unlabelled one reached the Prometheus in {ELSEWHERE}, then the self-monitor refused it ({:.1}s): {}",
        synced.as_secs_f64(),
        admitted.as_secs_f64(),
        t.elapsed().as_secs_f64(),
        refusal.trim()
    ));
    labelled.delete(w)?;
    unlabelled.delete(w)?;
    Ok(())
}

/// deploy/'s egress policy admits Prometheus only as the self-monitor: a
/// pod it selects (deploy/'s pod labels, in its namespace), synced by
/// kube-router, reaches the self-monitor, and is refused by the Prometheus
/// elsewhere that the unlabelled scraper of the step before reached.
pub async fn deploy_egress_refuses_a_prometheus_elsewhere(w: &mut World) -> Result<()> {
    let t = Instant::now();
    let labels = [("app.kubernetes.io/name", "alert-poller"), SCRAPING_LABEL];
    let probe = ProbePod::create(w, NAMESPACE, "egress-probe", &labels)?;
    probe.until_synced(w).await?;
    let synced = t.elapsed();
    let t = Instant::now();
    let (url, elsewhere) = (w.self_monitor.clone(), w.elsewhere.clone());
    probe.check(w, &url).await?.map_err(|e| {
        anyhow::anyhow!("a pod deploy/'s policy selects did not reach the self-monitor: {e}")
    })?;
    let admitted = t.elapsed();
    let t = Instant::now();
    let refusal = match probe.check(w, &elsewhere).await? {
        Err(e) => e,
        Ok(out) => bail!("deploy/'s egress let a pod reach the Prometheus in {ELSEWHERE}:\n{out}"),
    };
    ensure!(
        refusal.contains("Connection refused"),
        "the probe failed otherwise than refused (kube-router rejects): {refusal}"
    );
    w.report.push(format!(
        "deploy/'s egress: a pod with deploy/'s labels in {NAMESPACE}, synced in {:.1}s, reached the self-monitor in {:.1}s; the Prometheus in {ELSEWHERE} refused it ({:.1}s): {}",
        synced.as_secs_f64(),
        admitted.as_secs_f64(),
        t.elapsed().as_secs_f64(),
        refusal.trim()
    ));
    probe.delete(w)?;
    Ok(())
}

/// A pod that only holds a network namespace (the pause image, restricted
/// securityContext, no token), in which `alert-poller check` runs, one
/// check at a time, as an ephemeral container (`kubectl debug`): every check
/// leaves from the same pod address, which kube-router has synced first.
pub struct ProbePod {
    pub namespace: &'static str,
    pub name: String,
    checks: std::cell::Cell<u32>,
}

impl ProbePod {
    pub fn create(
        w: &World,
        namespace: &'static str,
        name: &str,
        labels: &[(&str, &str)],
    ) -> Result<ProbePod> {
        let labels: serde_json::Map<String, Value> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect();
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {
                "automountServiceAccountToken": false,
                "terminationGracePeriodSeconds": 0,
                "securityContext": {
                    "runAsNonRoot": true,
                    "runAsUser": 65532,
                    "runAsGroup": 65532,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [{
                    "name": "pause",
                    "image": node::PAUSE_IMAGE,
                    "imagePullPolicy": "Never",
                    "securityContext": {
                        "allowPrivilegeEscalation": false,
                        "readOnlyRootFilesystem": true,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }],
            },
        });
        let started = Instant::now();
        // A new namespace's default ServiceAccount may not exist yet.
        while let Err(e) = w
            .kubectl()
            .run_with_input(&["create", "-f", "-"], Some(&pod.to_string()))
        {
            if started.elapsed() > PATIENCE {
                bail!("cannot create pod {namespace}/{name}: {e}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Ok(ProbePod {
            namespace,
            name: name.to_owned(),
            checks: std::cell::Cell::new(0),
        })
    }

    /// Waits until the pod runs and kube-router has written its firewall
    /// chain: the sync that did so also put its address into the policies'
    /// address sets, so from then on a refusal is a policy's.
    pub async fn until_synced(&self, w: &World) -> Result<()> {
        let started = Instant::now();
        let comment = format!("POD name:{} namespace: {}", self.name, self.namespace);
        loop {
            let rules = w.node.run_inside("iptables-save", &["-t", "filter"])?;
            if rules.contains(&comment) {
                return Ok(());
            }
            if started.elapsed() > PATIENCE {
                bail!(
                    "kube-router wrote no chain for pod {}/{} within {PATIENCE:?}",
                    self.namespace,
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `alert-poller check` against `url` in an ephemeral container: its
    /// output, as `Ok` when it exits 0 and as `Err` otherwise.
    pub async fn check(&self, w: &World, url: &str) -> Result<Result<String, String>> {
        self.checks.set(self.checks.get() + 1);
        let container = format!("check-{}", self.checks.get());
        w.run(&[
            "-n",
            self.namespace,
            "debug",
            &self.name,
            &format!("--image={}", node::project_image()),
            "--image-pull-policy=Never",
            "--profile=restricted",
            &format!("--container={container}"),
            "--arguments-only",
            "--",
            "check",
            "--prometheus-url",
            url,
            "--pipeline",
            "backend",
            "--request-timeout",
            "2s",
            "--connect-timeout",
            "1s",
        ])?;
        let started = Instant::now();
        let exit = loop {
            let json = w.run(&["-n", self.namespace, "get", "pod", &self.name, "-o", "json"])?;
            let pod: Value = serde_json::from_str(&json)?;
            let code = pod["status"]["ephemeralContainerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["name"] == container.as_str())
                .and_then(|c| c["state"]["terminated"]["exitCode"].as_i64());
            if let Some(code) = code {
                break code;
            }
            if started.elapsed() > PATIENCE {
                bail!(
                    "{container} in {}/{} did not finish within {PATIENCE:?}: {}",
                    self.namespace,
                    self.name,
                    pod["status"]
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let output = w.run(&["-n", self.namespace, "logs", &self.name, "-c", &container])?;
        Ok(if exit == 0 { Ok(output) } else { Err(output) })
    }

    pub fn delete(&self, w: &World) -> Result<()> {
        w.run(&[
            "-n",
            self.namespace,
            "delete",
            "pod",
            &self.name,
            "--wait=true",
        ])?;
        Ok(())
    }
}

/// deploy/kyma-system/ beside the manager: deploy/ removed, the same
/// controller installed into kyma-system, whose labels (Pod Security
/// included) stay as they were; the bindings follow the namespace (else
/// every read is forbidden), and the leader polls the self-monitor through
/// both policies from there and writes the condition.
pub async fn kyma_system_install_works_beside_the_manager(w: &mut World) -> Result<()> {
    let t = Instant::now();
    let labels = |w: &World| namespace_labels(w, KYMA_SYSTEM);
    let before = labels(w)?;
    w.run(&["delete", "-k", &install::repo("deploy"), "--wait=true"])?;
    w.run(&["apply", "-k", &install::repo("deploy/kyma-system")])?;
    let data = json!({
        "prometheusUrl": w.self_monitor,
        "mode": "write",
        "staleAfter": "5s",
        "requestTimeout": "1s",
        "connectTimeout": "500ms",
        "errorMaxInterval": "2s",
    });
    install::patch_config_in(w.kubectl(), KYMA_SYSTEM, &data.to_string())?;
    ensure!(
        labels(w)? == before,
        "kyma-system's labels changed: {before} -> {}",
        labels(w)?
    );
    while w
        .pods_in(KYMA_SYSTEM)?
        .iter()
        .filter(|p| is_ready(p))
        .count()
        < 2
    {
        ensure!(
            t.elapsed() < PATIENCE,
            "2 Ready pods in {KYMA_SYSTEM} not within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let ready = t.elapsed();
    w.break_and_mend_backend(Flow::SomeDropped, "GatewaySomeTelemetryDataDropped")
        .await?;
    let holder = install::lease_holder_in(w.kubectl(), KYMA_SYSTEM)?;
    w.report.push(format!(
        "deploy/kyma-system/: 2 pods Ready in {KYMA_SYSTEM} {:.1}s after apply (its labels untouched); the leader {holder} wrote an alert's change and its resolve through both policies, {:.1}s in all",
        ready.as_secs_f64(),
        t.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// A namespace's labels, to show an install left them as they were.
fn namespace_labels(w: &World, namespace: &str) -> Result<String> {
    w.run(&[
        "get",
        "namespace",
        namespace,
        "-o",
        "jsonpath={.metadata.labels}",
    ])
}
