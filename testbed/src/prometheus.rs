//! A real Prometheus (Debian's `prometheus` package, or `$PROMETHEUS_BIN`) on a
//! free loopback port, with its own data directory, for tests, the demo and
//! the experiments. Killed when dropped, so a failing test leaves nothing behind.
//!
//! Everything here works with Prometheus 2.x and 3.x alike: the flags used
//! exist in both, and a test picks the version with `$PROMETHEUS_BIN`.

use std::net::SocketAddr;

use std::process::Stdio;
use std::time::{Duration, Instant};

use prometheus_http_query::reqwest;
use tokio::process::{Child, Command};

use super::{TempDir, free_port};

/// How to set Prometheus up.
#[derive(Clone, Debug)]
pub struct Setup {
    pub scrape_interval: Duration,
    pub evaluation_interval: Duration,
    /// Contents of the rules file.
    pub rules: String,
    /// The fake collector to scrape, as the shipped job would (see
    /// [`super::rules::collector_jobs`]), plus its noise series.
    pub collector: Option<SocketAddr>,
    /// Alertmanagers to push alerts to (the push design); none for pull.
    pub alertmanagers: Vec<SocketAddr>,
    /// `--rules.alert.resend-delay`; Prometheus' default (1m) when `None`.
    pub resend_delay: Option<Duration>,
    /// The Prometheus to run; `$PROMETHEUS_BIN`, else Debian's, when `None`.
    pub binary: Option<String>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            scrape_interval: Duration::from_secs(1),
            evaluation_interval: Duration::from_secs(1),
            rules: String::new(),
            collector: None,
            alertmanagers: Vec::new(),
            resend_delay: None,
            binary: None,
        }
    }
}

impl Setup {
    /// The shipped rules sped up for tests and the demo (3 s rate windows,
    /// `for: 1s`, evaluated every second) over the fake collector at `collector`.
    pub fn fast(collector: SocketAddr) -> Setup {
        let second = Duration::from_secs(1);
        Setup {
            rules: super::rules::fast(second * 3, second, second),
            collector: Some(collector),
            ..Setup::default()
        }
    }
}

/// A running (or stopped, restartable) Prometheus.
#[derive(Debug)]
pub struct Prometheus {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    args: Vec<String>,
    binary: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot prepare the Prometheus directory: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "cannot start {binary} (install Debian's prometheus package or set PROMETHEUS_BIN): {source}"
    )]
    Spawn {
        binary: String,
        source: std::io::Error,
    },
    #[error("Prometheus did not become ready within {0:?}; its log:\n{1}")]
    NotReady(Duration, String),
}

/// New rules were not taken up.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("cannot write the rules file: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot ask Prometheus to reload: {0}")]
    Request(#[from] reqwest::Error),
    #[error("Prometheus refused the new rules ({status}): {answer}")]
    Refused {
        status: reqwest::StatusCode,
        answer: String,
    },
}

/// The noise did not come up in time.
#[derive(Debug, thiserror::Error)]
#[error("only {seen} of {want} NoiseAlerts firing after {limit:?}")]
pub struct NoiseNotFiring {
    pub seen: usize,
    pub want: usize,
    pub limit: Duration,
}

fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

fn binary() -> String {
    std::env::var("PROMETHEUS_BIN").unwrap_or_else(|_| "prometheus".into())
}

impl Prometheus {
    /// Writes the configuration and starts Prometheus; returns once it is ready.
    pub async fn start(setup: &Setup) -> Result<Prometheus, StartError> {
        let dir = TempDir::new("prometheus")?;
        let mut config = format!(
            "global:\n  scrape_interval: {}\n  evaluation_interval: {}\nrule_files: [rules.yaml]\nscrape_configs:\n",
            ms(setup.scrape_interval),
            ms(setup.evaluation_interval)
        );
        if let Some(collector) = setup.collector {
            config.push_str(&super::rules::collector_jobs(collector));
        }
        if !setup.alertmanagers.is_empty() {
            let targets: Vec<String> = setup
                .alertmanagers
                .iter()
                .map(|a| format!("'{a}'"))
                .collect();
            config.push_str(&format!(
                "alerting:\n  alertmanagers:\n    - api_version: v2\n      static_configs: [{{targets: [{}]}}]\n",
                targets.join(", ")
            ));
        }
        std::fs::write(dir.path().join("prometheus.yml"), config)?;
        std::fs::write(dir.path().join("rules.yaml"), &setup.rules)?;
        let port = free_port();
        let path = |name: &str| dir.path().join(name).display().to_string();
        let mut args = vec![
            format!("--config.file={}", path("prometheus.yml")),
            format!("--storage.tsdb.path={}", path("data")),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--log.level=warn".to_owned(),
            // For `set_rules`: POST /-/reload answers only after the reload,
            // with the error if the rules are refused (SIGHUP would not tell).
            "--web.enable-lifecycle".to_owned(),
        ];
        if let Some(delay) = setup.resend_delay {
            args.push(format!("--rules.alert.resend-delay={}", ms(delay)));
        }
        let mut prometheus = Prometheus {
            child: None,
            port,
            dir,
            args,
            binary: setup.binary.clone().unwrap_or_else(binary),
        };
        prometheus.restart().await?;
        Ok(prometheus)
    }

    /// Base URL, e.g. `http://127.0.0.1:40123/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr())
    }

    /// The loopback address it listens on (for forwarding into a node).
    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The binary it runs (for the version experiments record).
    pub fn binary(&self) -> &str {
        &self.binary
    }

    /// The process id while running (for CPU accounting in experiments).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Kills Prometheus (SIGKILL, as a crash would) and waits for it to go.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts Prometheus again on the same port and data directory.
    pub async fn restart(&mut self) -> Result<(), StartError> {
        self.kill().await;
        let log = std::fs::File::create(self.dir.path().join("prometheus.log"))?;
        let child = Command::new(&self.binary)
            .args(&self.args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| StartError::Spawn {
                binary: self.binary.clone(),
                source,
            })?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(30)).await
    }

    async fn wait_ready(&mut self, limit: Duration) -> Result<(), StartError> {
        alert_poller::prometheus::install_crypto_provider();
        let client = reqwest::Client::new();
        let ready = format!("{}-/ready", self.url());
        let started = Instant::now();
        while started.elapsed() < limit {
            let exited = self
                .child
                .as_mut()
                .is_none_or(|c| c.try_wait().ok().flatten().is_some());
            if exited {
                break;
            }
            if let Ok(r) = client.get(&ready).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(StartError::NotReady(limit, self.log()))
    }

    /// Replaces the rules file and has Prometheus load it. Returns once the new
    /// rule groups are in place (alerts of removed groups are gone by then);
    /// their first evaluation is at most one interval later.
    pub async fn set_rules(&self, rules: &str) -> Result<(), ReloadError> {
        std::fs::write(self.dir.path().join("rules.yaml"), rules)?;
        alert_poller::prometheus::install_crypto_provider();
        let response = reqwest::Client::new()
            .post(format!("{}-/reload", self.url()))
            .send()
            .await?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        Err(ReloadError::Refused {
            status,
            answer: response.text().await.unwrap_or_default(),
        })
    }

    /// Waits until `/api/v1/alerts` itself carries at least `n` firing
    /// `NoiseAlert`s (see [`super::rules::NOISE`]): the answer a poller will
    /// fetch, so nothing measured starts before the noise is there in full.
    pub async fn until_noise(&self, n: usize, limit: Duration) -> Result<(), NoiseNotFiring> {
        let url = self.url();
        let tuning = super::poller::tuning(&[
            ("prometheusUrl", url.as_str()),
            ("maxResponseBytes", "256Mi"),
            ("requestTimeout", "30s"),
        ]);
        let client = alert_poller::prometheus::PrometheusClient::new(
            alert_poller::prometheus::ClientSettings::first(&tuning),
        )
        .expect("a loopback URL makes a valid client");
        let started = Instant::now();
        let mut seen = 0;
        while started.elapsed() < limit {
            if let Ok(r) = client.alerts().await {
                seen = r
                    .alerts
                    .iter()
                    .filter(|a| {
                        a.state == alert_poller::domain::alerts::AlertState::Firing
                            && a.labels.get("alertname") == Some("NoiseAlert")
                    })
                    .count();
                if seen >= n {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(NoiseNotFiring {
            seen,
            want: n,
            limit,
        })
    }

    /// Prometheus' own log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}
