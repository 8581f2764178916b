//! The Prometheus that watches alert-poller, as the monitoring component's
//! PodMonitor would have one do: it scrapes every replica's `/metrics` with
//! the labels the PodMonitor gives (job from the pod's
//! `app.kubernetes.io/name`, namespace, pod, container, endpoint) and
//! evaluates the component's rules. A second Prometheus beside the one
//! alert-poller polls, which it must not disturb.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alert_poller_testbed::{TempDir, free_port, http_client};
use anyhow::{Context as _, Result, bail, ensure};
use serde_json::Value;

use super::NAMESPACE;

/// One replica to scrape: its pod name and metrics address.
#[derive(Clone, Debug)]
pub struct Target {
    pub pod: String,
    pub addr: String,
}

/// A running Prometheus; killed when dropped.
pub struct Scraper {
    child: Child,
    port: u16,
    dir: TempDir,
}

/// The scrape and evaluation interval: a second, so that the run takes
/// seconds (the PodMonitor scrapes every 30 s).
const INTERVAL: &str = "1s";

fn config(targets: &[Target]) -> String {
    let mut out = format!(
        "global:\n  scrape_interval: {INTERVAL}\n  evaluation_interval: {INTERVAL}\n\
         rule_files: [rules.yaml]\nscrape_configs:\n  - job_name: alert-poller\n    \
         metrics_path: /metrics\n    static_configs:\n"
    );
    for t in targets {
        out.push_str(&format!(
            "      - targets: ['{}']\n        labels: {{namespace: {NAMESPACE}, pod: {}, \
             container: alert-poller, endpoint: http-metrics}}\n",
            t.addr, t.pod
        ));
    }
    out
}

impl Scraper {
    /// Starts Prometheus (`$PROMETHEUS_BIN`, else Debian's) with `rules`
    /// scraping `targets`; returns once it is ready.
    pub async fn start(rules: &str, targets: &[Target]) -> Result<Scraper> {
        let dir = TempDir::new("monitoring-scraper")?;
        std::fs::write(dir.path().join("prometheus.yml"), config(targets))?;
        std::fs::write(dir.path().join("rules.yaml"), rules)?;
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log"))?;
        let binary = std::env::var("PROMETHEUS_BIN").unwrap_or_else(|_| "prometheus".into());
        let child = Command::new(&binary)
            .arg("--config.file=prometheus.yml")
            .arg("--storage.tsdb.path=data")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-lifecycle")
            .arg("--log.level=warn")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {binary}"))?;
        let scraper = Scraper { child, port, dir };
        scraper.until_ready().await?;
        Ok(scraper)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn until_ready(&self) -> Result<()> {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(r) = http_client().get(self.url("/-/ready")).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "the scraping Prometheus is not ready; its log:\n{}",
            self.log()
        )
    }

    /// Its log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// Scrapes `targets` from now on (a restarted replica has a new port).
    pub async fn set_targets(&self, targets: &[Target]) -> Result<()> {
        std::fs::write(self.dir.path().join("prometheus.yml"), config(targets))?;
        let r = http_client().post(self.url("/-/reload")).send().await?;
        ensure!(
            r.status().is_success(),
            "reload refused: {}",
            r.text().await?
        );
        Ok(())
    }

    async fn api(&self, path: &str, params: &[(&str, String)]) -> Result<Value> {
        let r = http_client()
            .get(self.url(path))
            .query(params)
            .timeout(Duration::from_secs(10))
            .send()
            .await?;
        let body: Value = r.json().await?;
        ensure!(body["status"] == "success", "{path} {params:?}: {body}");
        Ok(body["data"].clone())
    }

    /// The series an instant query returns.
    pub async fn query(&self, expr: &str) -> Result<Vec<Value>> {
        let data = self
            .api("/api/v1/query", &[("query", expr.to_owned())])
            .await?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// The series a range query returns, `step` seconds apart.
    pub async fn query_range(
        &self,
        expr: &str,
        (start, end): (f64, f64),
        step: f64,
    ) -> Result<Vec<Value>> {
        let params = [
            ("query", expr.to_owned()),
            ("start", format!("{start:.3}")),
            ("end", format!("{end:.3}")),
            ("step", step.to_string()),
        ];
        let data = self.api("/api/v1/query_range", &params).await?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// The active alerts (pending and firing), as `/api/v1/alerts` lists them.
    pub async fn alerts(&self) -> Result<Vec<Value>> {
        let data = self.api("/api/v1/alerts", &[]).await?;
        Ok(data["alerts"].as_array().cloned().unwrap_or_default())
    }

    /// Waits until `/api/v1/alerts` lists `name` firing; returns that alert.
    pub async fn until_firing(&self, name: &str, patience: Duration) -> Result<Value> {
        let started = Instant::now();
        loop {
            let alerts = self.alerts().await?;
            if let Some(a) = alerts
                .iter()
                .find(|a| a["labels"]["alertname"] == name && a["state"] == "firing")
            {
                return Ok(a.clone());
            }
            if started.elapsed() > patience {
                bail!("{name} did not fire within {patience:?}; active alerts: {alerts:#?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `/api/v1/alerts` no longer lists `name` at all.
    pub async fn until_inactive(&self, name: &str, patience: Duration) -> Result<()> {
        let started = Instant::now();
        loop {
            let alerts = self.alerts().await?;
            if !alerts.iter().any(|a| a["labels"]["alertname"] == name) {
                return Ok(());
            }
            if started.elapsed() > patience {
                bail!("{name} still active after {patience:?}: {alerts:#?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Scraper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
