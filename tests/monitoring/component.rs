//! The monitoring component as users install it: a small overlay of
//! `deploy/` (or `deploy/kyma-system/`) with `components: [monitoring]`,
//! rendered by kustomize. Its objects must land in the controller's
//! namespace, select the controller's pods on a port they have, carry the
//! dashboard unchanged, and open the metrics port to the operator's
//! Prometheus; the default install must not need the operator's CRDs.

use std::path::{Component, Path};

use alert_poller_testbed::TempDir;
use alert_poller_testbed::controlplane::kustomize;
use alert_poller_testbed::netpol::{Connection, Pod, allows, selector_matches};
use anyhow::{Context as _, Result, ensure};
use serde::Deserialize as _;
use serde_json::{Value, json};

use super::{dashboard, repo};

/// `path` as seen from `dir`: kustomize takes only relative paths.
fn relative(dir: &Path, path: &Path) -> String {
    let up = dir
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count();
    let path = path.display().to_string();
    format!("{}{}", "../".repeat(up), path.trim_start_matches('/'))
}

/// The overlay docs/monitoring.md shows, over `base`, rendered.
fn render_overlay(base: &str, namespace: &str) -> Result<Vec<Value>> {
    let dir = TempDir::new("monitoring-overlay")?;
    let overlay = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
         namespace: {namespace}\nresources:\n  - {}\ncomponents:\n  - {}\n",
        relative(dir.path(), &repo(base)),
        relative(dir.path(), &repo("deploy/monitoring")),
    );
    std::fs::write(dir.path().join("kustomization.yaml"), overlay)?;
    documents(&kustomize(dir.path())?)
}

fn documents(yaml: &str) -> Result<Vec<Value>> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|doc| Value::deserialize(doc).context("a rendered document"))
        .filter(|doc| !matches!(doc, Ok(Value::Null)))
        .collect()
}

fn one<'a>(objects: &'a [Value], kind: &str, name: &str) -> Result<&'a Value> {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .with_context(|| format!("no {kind} {name} rendered"))
}

/// The PodMonitor selects the Deployment's pods, on a port they have, and
/// names the job as the dashboard's process panels expect.
fn pod_monitor_selects_the_pods(objects: &[Value], pod: &Pod) -> Result<()> {
    let monitor = one(objects, "PodMonitor", "alert-poller")?;
    let spec = &monitor["spec"];
    ensure!(
        selector_matches(&spec["selector"], &pod.labels),
        "the PodMonitor's selector misses the pods"
    );
    let endpoint = &spec["podMetricsEndpoints"][0];
    let port = endpoint["port"].as_str().unwrap_or_default();
    ensure!(pod.ports.contains_key(port), "the pods have no port {port}");
    ensure!(endpoint["path"] == "/metrics" && endpoint["interval"] == "30s");
    let job_label = spec["jobLabel"].as_str().unwrap_or_default();
    ensure!(
        pod.labels.get(job_label).map(String::as_str) == Some("alert-poller"),
        "jobLabel {job_label} does not make job=\"alert-poller\""
    );
    Ok(())
}

/// The operator's Prometheus reaches the metrics port through deploy/'s
/// policy and the component's, and only thanks to the component's.
fn prometheus_may_scrape(objects: &[Value], pod: &Pod) -> Result<()> {
    let policies: Vec<Value> = objects
        .iter()
        .filter(|o| o["kind"] == "NetworkPolicy")
        .cloned()
        .collect();
    let deploy_only: Vec<Value> = policies
        .iter()
        .filter(|p| p["metadata"]["name"] == "alert-poller")
        .cloned()
        .collect();
    let prometheus = Pod::new("monitoring", &[("app.kubernetes.io/name", "prometheus")]);
    let other = Pod::new("monitoring", &[("app.kubernetes.io/name", "grafana")]);
    let port = pod.ports["http-metrics"];
    let scrape = |from| Connection {
        from,
        to: pod,
        port,
        protocol: "TCP",
    };
    ensure!(
        allows(&policies, scrape(&prometheus)),
        "Prometheus is refused"
    );
    ensure!(
        !allows(&deploy_only, scrape(&prometheus)),
        "deploy/ alone already admits Prometheus: the component's policy is not needed"
    );
    ensure!(!allows(&policies, scrape(&other)), "any pod may scrape");
    Ok(())
}

/// The component over both installs: everything in the controller's
/// namespace, the pods selected and reachable, the dashboard unchanged.
pub fn renders_over_both_installs() -> Result<()> {
    let shipped = dashboard::load()?;
    for (base, namespace) in [
        ("deploy", "alert-poller"),
        ("deploy/kyma-system", "kyma-system"),
    ] {
        let objects = render_overlay(base, namespace)?;
        let deployment = one(&objects, "Deployment", "alert-poller")?;
        let pod = Pod::from_deployment(deployment, namespace);
        pod_monitor_selects_the_pods(&objects, &pod)?;
        prometheus_may_scrape(&objects, &pod)?;
        one(&objects, "PrometheusRule", "alert-poller")?;
        let map = one(&objects, "ConfigMap", "alert-poller-dashboard")?;
        ensure!(map["metadata"]["labels"]["grafana_dashboard"] == "1");
        let carried: Value = serde_json::from_str(
            map["data"]["alert-poller.json"]
                .as_str()
                .unwrap_or_default(),
        )?;
        ensure!(
            carried == shipped,
            "the ConfigMap does not carry dashboard.json"
        );
        let elsewhere: Vec<&Value> = objects
            .iter()
            .filter(|o| o["kind"] != "ClusterRole" && o["kind"] != "ClusterRoleBinding")
            .filter(|o| o["kind"] != "Namespace" && o["metadata"]["namespace"] != namespace)
            .collect();
        ensure!(elsewhere.is_empty(), "outside {namespace}: {elsewhere:#?}");
    }
    let default = documents(&kustomize(&repo("deploy"))?)?;
    let operator: Vec<&Value> = default
        .iter()
        .filter(|o| {
            o["apiVersion"]
                .as_str()
                .is_some_and(|a| a.starts_with("monitoring.coreos.com"))
        })
        .collect();
    ensure!(
        operator.is_empty(),
        "deploy/ needs the prometheus-operator's CRDs: {}",
        json!(operator)
    );
    println!("    the component renders over deploy/ and deploy/kyma-system/");
    Ok(())
}
