//! The environment the end-to-end harnesses share (`e2e.rs`, `e2e_faults.rs`):
//! a real kube-apiserver and etcd, a real Prometheus over the fake collector,
//! deploy/ installed, and the real binary run with the ServiceAccount's token.
//! Each harness has its own `main` (harness = false) so the environment is
//! started once and torn down even when a scenario fails.

// Each harness uses a different part of this module.
#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use alert_poller_testbed::collector::{Collector, Component, Flow, PipelineKind};
use alert_poller_testbed::controller::ControllerProcess;
use alert_poller_testbed::controlplane::{ControlPlane, Kubectl};
use alert_poller_testbed::prometheus::{Prometheus, Setup};
use anyhow::{Context as _, Result, bail};
use serde_json::Value;

pub const NAMESPACE: &str = "alert-poller";
pub const CONDITION: &str = "TelemetryFlowHealthy";
pub const PATIENCE: Duration = Duration::from_secs(60);

pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

pub struct Env {
    // Field order is drop order: the controller goes first, the control plane last.
    pub controller: Option<ControllerProcess>,
    pub collector: Collector,
    pub prometheus: Prometheus,
    pub kubectl: Kubectl,
    pub plane: ControlPlane,
    /// With [`Env::start_with`]`(true)`: the listener Prometheus notifies as
    /// its Alertmanager, for a harness to serve (a stand-in manager).
    pub webhook: Option<tokio::net::TcpListener>,
}

impl Env {
    pub async fn start() -> Result<Env> {
        Env::start_with(false).await
    }

    /// The environment; with `webhook`, Prometheus pushes its alerts to a
    /// listener left in `env.webhook`.
    pub async fn start_with(webhook: bool) -> Result<Env> {
        let plane = tokio::task::spawn_blocking(ControlPlane::start).await??;
        let kubectl = plane.kubectl();
        let collector = Collector::start(&["backend", "audit"]).await?;
        // The other kinds' samples (config/samples), healthy to begin with.
        collector.add_pipeline_of(PipelineKind::Trace, "traces");
        collector.add_pipeline_of(PipelineKind::Log, "app-logs");
        collector.add_pipeline_of(PipelineKind::Log, "legacy-logs");
        let webhook = match webhook {
            true => Some(tokio::net::TcpListener::bind("127.0.0.1:0").await?),
            false => None,
        };
        let setup = Setup {
            alertmanagers: webhook.iter().flat_map(|l| l.local_addr()).collect(),
            ..Setup::fast(collector.addr())
        };
        let prometheus = Prometheus::start(&setup).await?;
        Ok(Env {
            controller: None,
            collector,
            prometheus,
            kubectl,
            plane,
            webhook,
        })
    }

    pub fn kubectl(&self, args: &[&str]) -> Result<String> {
        Ok(self.kubectl.run(args)?)
    }

    pub fn controller(&self) -> &ControllerProcess {
        self.controller
            .as_ref()
            .expect("the controller was started")
    }

    pub fn pipeline(&self, name: &str) -> Result<Value> {
        self.pipeline_of("metricpipeline", name)
    }

    /// A pipeline of any kind (`resource` as kubectl names it).
    pub fn pipeline_of(&self, resource: &str, name: &str) -> Result<Value> {
        let json = self.kubectl(&["get", resource, name, "-o", "json"])?;
        Ok(serde_json::from_str(&json)?)
    }

    /// The flow condition of a MetricPipeline, if it has one.
    pub fn condition(&self, name: &str) -> Result<Option<Value>> {
        self.condition_of("metricpipeline", name)
    }

    /// The flow condition of a pipeline of any kind, if it has one.
    pub fn condition_of(&self, resource: &str, name: &str) -> Result<Option<Value>> {
        let p = self.pipeline_of(resource, name)?;
        Ok(p["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == CONDITION))
            .cloned())
    }

    /// One alert raised and resolved: `backend`'s gateway flow turned
    /// `flow` until its condition is False with `reason`, then mended until
    /// it is True again.
    pub async fn break_and_mend_backend(&self, flow: Flow, reason: &str) -> Result<()> {
        self.collector.set_flow(Component::Gateway, "backend", flow);
        self.until_condition("backend", "False", reason).await?;
        self.mend_backend().await?;
        Ok(())
    }

    /// `backend`'s gateway mended, and its condition once it is True again.
    pub async fn mend_backend(&self) -> Result<Value> {
        self.collector
            .set_flow(Component::Gateway, "backend", Flow::Healthy);
        self.until_condition("backend", "True", "FlowHealthy").await
    }

    pub async fn until_condition(&self, name: &str, status: &str, reason: &str) -> Result<Value> {
        self.until_condition_of("metricpipeline", name, status, reason)
            .await
    }

    pub async fn until_condition_of(
        &self,
        resource: &str,
        name: &str,
        status: &str,
        reason: &str,
    ) -> Result<Value> {
        let started = Instant::now();
        loop {
            let c = self.condition_of(resource, name)?;
            if let Some(c) = &c
                && c["status"] == status
                && c["reason"] == reason
            {
                return Ok(c.clone());
            }
            if started.elapsed() > PATIENCE {
                bail!(
                    "{name} never became {status}/{reason}; last condition {c:?}\ncontroller log tail:\n{}",
                    tail(&self.controller().log(), 30)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn until_metric(&self, series: &str, want: f64) -> Result<()> {
        let started = Instant::now();
        loop {
            let value = self.controller().metric(series).await;
            if value == Some(want) {
                return Ok(());
            }
            if started.elapsed() > PATIENCE {
                bail!("{series} never became {want}; last {value:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn events(&self, namespace: &str, reason: &str) -> Result<Vec<Value>> {
        let json = self.kubectl(&["get", "events.events.k8s.io", "-n", namespace, "-o", "json"])?;
        let list: Value = serde_json::from_str(&json)?;
        Ok(list["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|e| e["reason"] == reason)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    pub fn patch_config(&self, data: &str) -> Result<()> {
        Ok(alert_poller_testbed::install::patch_config(
            &self.kubectl,
            data,
        )?)
    }
}

pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The tuning the end-to-end suites run with: the test Prometheus, fast
/// polls and a short staleness bound, plus `extra` keys.
pub fn test_tuning<'a>(url: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut tuning = vec![
        ("prometheusUrl", url),
        ("minInterval", "200ms"),
        ("maxInterval", "1s"),
        ("backoffFactor", "2"),
        ("errorMaxInterval", "2s"),
        ("staleAfter", "5s"),
        ("requestTimeout", "1s"),
        ("connectTimeout", "500ms"),
    ];
    tuning.extend_from_slice(extra);
    tuning
}

/// `kubectl apply -k config/crd` then `kubectl apply -k deploy/`, as a user
/// without telemetry-manager would; then point the tuning at the test Prometheus.
pub async fn install(env: &mut Env) -> Result<()> {
    let url = env.prometheus.url();
    alert_poller_testbed::install::install(&env.kubectl, &test_tuning(&url, &[]))?;
    for object in [
        "serviceaccount/alert-poller",
        "configmap/alert-poller",
        "deployment/alert-poller",
        "networkpolicy/alert-poller",
        "role/alert-poller",
    ] {
        env.kubectl(&["-n", NAMESPACE, "get", object])
            .with_context(|| format!("{object} was not created"))?;
    }
    env.kubectl(&[
        "get",
        "clusterrole/alert-poller",
        "clusterrolebinding/alert-poller",
    ])?;
    env.kubectl(&["apply", "-k", &repo("config/samples").display().to_string()])?;
    Ok(())
}

pub type Scenario = for<'a> fn(&'a mut Env) -> Pin<Box<dyn Future<Output = Result<()>> + 'a>>;

/// A list of scenario functions, named by their identifiers.
macro_rules! scenarios {
    ($($name:ident),+ $(,)?) => {
        [$((stringify!($name), (|env| Box::pin($name(env))) as env::Scenario)),+]
    };
}

impl Env {
    /// A kubeconfig with the token of deploy/'s ServiceAccount (made once).
    pub fn service_account_kubeconfig(&self) -> Result<PathBuf> {
        let path = self.plane.dir().join("alert-poller.kubeconfig");
        if !path.exists() {
            self.kubectl
                .service_account_kubeconfig(NAMESPACE, "alert-poller", &path)?;
        }
        Ok(path)
    }

    /// Starts the real binary as the ServiceAccount, logging to `LABEL.log`,
    /// with extra flags; it becomes `env.controller`.
    pub fn start_controller(&mut self, label: &str, extra: &[&str]) -> Result<()> {
        let kubeconfig = self.service_account_kubeconfig()?;
        let log = self.plane.dir().join(format!("{label}.log"));
        self.controller = Some(ControllerProcess::start_with(
            Path::new(env!("CARGO_BIN_EXE_alert-poller")),
            &kubeconfig,
            NAMESPACE,
            &log,
            extra,
        )?);
        Ok(())
    }

    /// A controller metric, or `default` while the series does not exist yet.
    pub async fn metric_or(&self, series: &str, default: f64) -> f64 {
        self.controller().metric(series).await.unwrap_or(default)
    }

    /// Waits until `series` reaches at least `want`.
    pub async fn until_metric_at_least(&self, series: &str, want: f64) -> Result<f64> {
        let started = Instant::now();
        loop {
            let value = self.metric_or(series, 0.0).await;
            if value >= want {
                return Ok(value);
            }
            if started.elapsed() > PATIENCE {
                bail!(
                    "{series} never reached {want}; last {value}\ncontroller log tail:\n{}",
                    tail(&self.controller().log(), 30)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Starts the environment and runs the scenarios in order (the first one,
/// which sets up, always; the others only if their name contains the first
/// command-line argument, when one is given). Prints libtest-like lines.
pub fn run(harness: &str, scenarios: &[(&str, Scenario)]) -> ExitCode {
    run_with(harness, false, scenarios)
}

/// [`run`], with Prometheus pushing alerts to `env.webhook` when `webhook`.
pub fn run_with(harness: &str, webhook: bool, scenarios: &[(&str, Scenario)]) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio starts");
    runtime.block_on(async {
        let filter = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
        let mut env = match Env::start_with(webhook).await {
            Ok(env) => env,
            Err(error) => {
                eprintln!("{harness}: cannot start the environment: {error:#}");
                return ExitCode::FAILURE;
            }
        };
        let (mut passed, mut failed) = (0, 0);
        for (i, (name, scenario)) in scenarios.iter().enumerate() {
            if i > 0 && filter.as_deref().is_some_and(|f| !name.contains(f)) {
                continue;
            }
            let started = Instant::now();
            match scenario(&mut env).await {
                Ok(()) => {
                    passed += 1;
                    println!(
                        "test {harness}::{name} ... ok ({:.1}s)",
                        started.elapsed().as_secs_f64()
                    );
                }
                Err(error) => {
                    failed += 1;
                    println!("test {harness}::{name} ... FAILED\n{error:#}");
                }
            }
        }
        println!("\n{harness}: {passed} passed, {failed} failed");
        drop(env);
        if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    })
}
