//! The real `alert-poller` binary as a child process, run out of cluster
//! against a kubeconfig, with helpers to read its metrics.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prometheus_http_query::reqwest;

use super::free_port;

/// The `alert-poller` binary cargo built next to the running one (for the
/// demo and the load run, which are binaries themselves).
pub fn sibling_binary() -> std::io::Result<PathBuf> {
    let path = std::env::current_exe()?.with_file_name("alert-poller");
    if path.is_file() {
        Ok(path)
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "{} not found: build it in the same profile (cargo build -p alert-poller)",
                path.display()
            ),
        ))
    }
}

/// A running controller; gets SIGTERM when dropped.
#[derive(Debug)]
pub struct ControllerProcess {
    child: Child,
    metrics_port: u16,
    log: PathBuf,
}

impl ControllerProcess {
    /// Starts `binary run` with the kubeconfig and namespace; logs go to `log`.
    pub fn start(
        binary: &Path,
        kubeconfig: &Path,
        namespace: &str,
        log: &Path,
    ) -> std::io::Result<ControllerProcess> {
        Self::start_with(binary, kubeconfig, namespace, log, &[])
    }

    /// Like [`start`](Self::start), with extra flags.
    pub fn start_with(
        binary: &Path,
        kubeconfig: &Path,
        namespace: &str,
        log: &Path,
        extra: &[&str],
    ) -> std::io::Result<ControllerProcess> {
        let metrics_port = free_port();
        let file = std::fs::File::create(log)?;
        let child = Command::new(binary)
            .args(["run", "--log-format", "text", "--namespace", namespace])
            .arg("--metrics-address")
            .arg(format!("127.0.0.1:{metrics_port}"))
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info,kube=warn")
            .env("POD_NAME", "alert-poller-test")
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()?;
        Ok(ControllerProcess {
            child,
            metrics_port,
            log: log.to_owned(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The controller's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `http://127.0.0.1:PORT` of the metrics/probe port.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.metrics_port)
    }

    /// GETs a path on the metrics port; `None` if it cannot be reached.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        alert_poller::prometheus::install_crypto_provider();
        let response = reqwest::Client::new()
            .get(format!("{}{path}", self.base_url()))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    }

    /// The value of one sample of `/metrics`, given as the exact series text
    /// (`alert_poller_config_valid` or `alert_poller_polls_total{result="success"}`).
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let (_, text) = self.get("/metrics").await?;
        sample(&text, series)
    }

    /// The sum of every series of `metric` whose labels include `labels`
    /// (0 while there is none).
    pub async fn metric_sum(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        let text = self
            .get("/metrics")
            .await
            .map(|(_, t)| t)
            .unwrap_or_default();
        super::exposition::sum(&text, metric, |set| has_labels(set, labels))
    }

    /// Status writes so far, of any kind and status.
    pub async fn status_writes(&self) -> f64 {
        self.metric_sum("alert_poller_status_writes_total", &[])
            .await
    }

    /// Kills the process outright (SIGKILL), as a node failure would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit; returns how long it took, or
    /// `None` if it had to be killed after `limit`.
    pub fn terminate(&mut self, limit: Duration) -> Option<Duration> {
        let started = Instant::now();
        let _ = super::signal::send(self.child.id(), super::signal::Signal::Term);
        while started.elapsed() < limit {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        if self.alive() {
            self.terminate(Duration::from_secs(6));
        }
    }
}

/// Finds a sample's value in Prometheus/OpenMetrics text.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .split(' ')
            .next()?
            .parse()
            .ok()
    })
}

/// Whether a series' label text (`a="1",b="2"`) carries every pair.
fn has_labels(set: &str, labels: &[(&str, &str)]) -> bool {
    labels
        .iter()
        .all(|(k, v)| set.split(',').any(|pair| pair == format!("{k}=\"{v}\"")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn has_labels_needs_every_pair() {
        let set = r#"kind="log",result="success""#;
        assert!(super::has_labels(set, &[]));
        assert!(super::has_labels(set, &[("result", "success")]));
        assert!(super::has_labels(
            set,
            &[("kind", "log"), ("result", "success")]
        ));
        assert!(!super::has_labels(set, &[("kind", "metric")]));
        assert!(!super::has_labels(set, &[("result", "succ")]));
    }

    #[test]
    fn sample_finds_exact_series() {
        let text = "# HELP x\nalert_poller_polls_total{result=\"success\"} 12\nalert_poller_polls 3\nalert_poller_stale 0\n";
        assert_eq!(
            super::sample(text, "alert_poller_polls_total{result=\"success\"}"),
            Some(12.0)
        );
        assert_eq!(super::sample(text, "alert_poller_stale"), Some(0.0));
        assert_eq!(super::sample(text, "alert_poller_polls_total"), None);
    }
}
