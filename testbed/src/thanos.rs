//! Thanos on loopback: a sidecar next to a test bed [`Prometheus`], a Query
//! fanning out over gRPC endpoints (what the controller polls when it sits
//! behind Thanos) and a Ruler evaluating rules through a Query.
//!
//! The binary is `$THANOS_BIN`, else the one tests/thanos/build.sh builds from
//! Go modules: minutes the first time, then cached (later calls only hash
//! three files). Each process has its own temporary directory, two free
//! loopback ports (HTTP and gRPC) and a log file there, and is killed when
//! dropped. Starting returns once the process answers `/-/ready`.
//!
//! The sidecar refuses a Prometheus without external labels; the test bed's
//! Prometheus has none, so give it some first with [`set_external_labels`].
//! Query merges an HA pair's rules and alerts only if both replicas load the
//! same rules file path: see [`set_rule_file`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use prometheus_http_query::reqwest;
use serde_norway::{Mapping, Value};
use tokio::process::{Child, Command};

use super::prometheus::Prometheus;
use super::{TempDir, free_port};

/// How long a component may take to answer `/-/ready`.
const READY_LIMIT: Duration = Duration::from_secs(30);
/// Lines of a component's log quoted when it does not come up.
const LOG_TAIL: usize = 25;

#[derive(Debug, thiserror::Error)]
pub enum ThanosError {
    #[error("cannot build Thanos with tests/thanos/build.sh (or set THANOS_BIN): {0}")]
    Build(String),
    #[error("cannot prepare a Thanos directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot start `{binary} {component}`: {source}")]
    Spawn {
        binary: String,
        component: &'static str,
        source: std::io::Error,
    },
    #[error(
        "`{binary} {component}` did not become ready: {why} (waited up to {limit:?}); last lines of its log:\n{log}"
    )]
    NotReady {
        binary: String,
        component: &'static str,
        limit: Duration,
        why: String,
        log: String,
    },
    #[error("Prometheus at {url}: {message}")]
    Prometheus { url: String, message: String },
}

/// The Thanos binary: `$THANOS_BIN`, else tests/thanos/build.sh's output
/// (built on the first call in this process if not cached; that blocks).
pub fn binary() -> Result<PathBuf, ThanosError> {
    if let Some(path) = std::env::var_os("THANOS_BIN") {
        return Ok(PathBuf::from(path));
    }
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| super::go_build("thanos"))
        .clone()
        .map_err(ThanosError::Build)
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// One running Thanos component.
#[derive(Debug)]
struct Process {
    child: Child,
    http: SocketAddr,
    grpc: SocketAddr,
    dir: TempDir,
}

impl Process {
    /// Runs `thanos <component> <args>` with its own ports, in `dir`, and
    /// waits until it is ready.
    async fn start(
        component: &'static str,
        dir: TempDir,
        args: Vec<String>,
    ) -> Result<Process, ThanosError> {
        let binary = binary()?;
        let (http, grpc) = (loopback(free_port()), loopback(free_port()));
        let log = std::fs::File::create(dir.path().join("thanos.log"))?;
        let child = Command::new(&binary)
            .arg(component)
            .arg(format!("--http-address={http}"))
            .arg(format!("--grpc-address={grpc}"))
            .args(args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ThanosError::Spawn {
                binary: binary.display().to_string(),
                component,
                source,
            })?;
        let mut process = Process {
            child,
            http,
            grpc,
            dir,
        };
        let ready = format!("http://{}/-/ready", process.http);
        if let Err(why) = super::until_ready(&mut process.child, &ready, READY_LIMIT).await {
            return Err(ThanosError::NotReady {
                binary: binary.display().to_string(),
                component,
                limit: READY_LIMIT,
                why,
                log: super::last_lines(&process.log(), LOG_TAIL),
            });
        }
        Ok(process)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("thanos.log")).unwrap_or_default()
    }
}

/// Prometheus' command-line flags, from `/api/v1/status/flags`.
async fn prometheus_flags(url: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let answer: serde_json::Value = super::http_client()
        .get(format!("{url}api/v1/status/flags"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    match answer.get("data") {
        Some(serde_json::Value::Object(flags)) => Ok(flags.clone()),
        _ => Err(format!("unexpected /api/v1/status/flags answer: {answer}")),
    }
}

fn flag<'a>(
    flags: &'a serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<&'a str, String> {
    flags
        .get(name)
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| format!("flag {name} missing from /api/v1/status/flags"))
}

/// Changes a running Prometheus' configuration: `edit` gets the top-level
/// mapping of its configuration file (named in `/api/v1/status/flags`), the
/// file is written back and Prometheus reloads it. Changes survive
/// [`Prometheus::restart`]. Needs `--web.enable-lifecycle`, which the test
/// bed's Prometheus has.
pub async fn edit_prometheus_config(
    prometheus: &Prometheus,
    edit: impl FnOnce(&mut Mapping),
) -> Result<(), ThanosError> {
    let url = prometheus.url();
    let fail = |message: String| ThanosError::Prometheus {
        url: url.clone(),
        message,
    };
    let flags = prometheus_flags(&url).await.map_err(fail)?;
    let file = PathBuf::from(flag(&flags, "config.file").map_err(fail)?);
    let mut config: Value = serde_norway::from_str(&std::fs::read_to_string(&file)?)
        .map_err(|e| fail(format!("{}: {e}", file.display())))?;
    let root = config
        .as_mapping_mut()
        .ok_or_else(|| fail(format!("{} is not a YAML mapping", file.display())))?;
    edit(root);
    let text = serde_norway::to_string(&config).map_err(|e| fail(e.to_string()))?;
    std::fs::write(&file, text)?;
    let response = super::http_client()
        .post(format!("{url}-/reload"))
        .send()
        .await
        .map_err(|e| fail(format!("reload: {e}")))?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        return Err(fail(format!("reload refused ({status}): {body}")));
    }
    Ok(())
}

/// Gives a running Prometheus these external labels (replacing any it had),
/// with [`edit_prometheus_config`].
pub async fn set_external_labels(
    prometheus: &Prometheus,
    labels: &[(&str, &str)],
) -> Result<(), ThanosError> {
    let external: Mapping = labels
        .iter()
        .map(|&(k, v)| (Value::from(k), Value::from(v)))
        .collect();
    edit_prometheus_config(prometheus, |root| {
        let global = root
            .entry("global".into())
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        if !global.is_mapping() {
            *global = Value::Mapping(Mapping::new());
        }
        if let Some(global) = global.as_mapping_mut() {
            global.insert("external_labels".into(), Value::Mapping(external));
        }
    })
    .await
}

/// Has a running Prometheus load its rules from `path` instead of its own
/// rules file (which [`Prometheus::set_rules`] then no longer reaches), with
/// [`edit_prometheus_config`]. Query merges the rules and alerts of replicas
/// only within rule groups of the same file path and name, so the members
/// of an HA pair must load their rules from the same path, as the pods of a
/// StatefulSet do.
pub async fn set_rule_file(prometheus: &Prometheus, path: &Path) -> Result<(), ThanosError> {
    let path = Value::from(path.display().to_string());
    edit_prometheus_config(prometheus, |root| {
        root.insert("rule_files".into(), Value::Sequence(vec![path]));
    })
    .await
}

/// `thanos sidecar` next to a running Prometheus: its Store, Rules and
/// other gRPC APIs on [`Sidecar::grpc_addr`], for a [`Query`]. No object
/// storage, so nothing is uploaded and Prometheus' block durations do not
/// matter.
#[derive(Debug)]
pub struct Sidecar {
    process: Process,
}

impl Sidecar {
    /// Starts a sidecar for `prometheus`, which must already carry external
    /// labels (see [`set_external_labels`]); otherwise the sidecar exits and
    /// the error quotes why.
    pub async fn start(prometheus: &Prometheus) -> Result<Sidecar, ThanosError> {
        let url = prometheus.url();
        let flags = prometheus_flags(&url)
            .await
            .map_err(|message| ThanosError::Prometheus {
                url: url.clone(),
                message,
            })?;
        let tsdb =
            flag(&flags, "storage.tsdb.path").map_err(|message| ThanosError::Prometheus {
                url: url.clone(),
                message,
            })?;
        let args = vec![
            format!("--prometheus.url={}", url.trim_end_matches('/')),
            format!("--tsdb.path={tsdb}"),
            // The sidecar re-reads the external labels (and checks that
            // Prometheus is up) this often; 30 s by default.
            "--prometheus.get_config_interval=1s".to_owned(),
        ];
        let process = Process::start("sidecar", TempDir::new("thanos-sidecar")?, args).await?;
        Ok(Sidecar { process })
    }

    /// The gRPC address, for [`Query::start`].
    pub fn grpc_addr(&self) -> SocketAddr {
        self.process.grpc
    }

    /// Base URL of its HTTP server (metrics, `/-/ready`), e.g. `http://127.0.0.1:40123/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.process.http)
    }

    /// The sidecar's log, for failure messages.
    pub fn log(&self) -> String {
        self.process.log()
    }
}

/// `thanos query` over a fixed set of gRPC endpoints (sidecars, rulers,
/// other queries). Its HTTP API is Prometheus' (`/api/v1/query`,
/// `/api/v1/alerts`, `/api/v1/rules`, ...) and is what the controller polls.
#[derive(Debug)]
pub struct Query {
    process: Process,
}

impl Query {
    /// Starts a Query fanning out to `endpoints`; `replica_labels` are its
    /// `--query.replica-label`s, the external labels along which it merges
    /// replicas (series by default, and rules and alerts always). Ready once
    /// it has asked each endpoint what it serves, so endpoints that were
    /// ready before are in use at once; a later one is picked up within 5 s.
    pub async fn start(
        endpoints: &[SocketAddr],
        replica_labels: &[&str],
    ) -> Result<Query, ThanosError> {
        let mut sd = String::from("endpoints:\n");
        for endpoint in endpoints {
            sd.push_str(&format!("  - address: '{endpoint}'\n"));
        }
        let mut args = vec![format!("--endpoint.sd-config={sd}")];
        args.extend(
            replica_labels
                .iter()
                .map(|l| format!("--query.replica-label={l}")),
        );
        let process = Process::start("query", TempDir::new("thanos-query")?, args).await?;
        Ok(Query { process })
    }

    /// Base URL of the HTTP API, e.g. `http://127.0.0.1:40123/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.process.http)
    }

    /// The HTTP address, for [`Ruler::start`] or a forward into a node.
    pub fn addr(&self) -> SocketAddr {
        self.process.http
    }

    /// The gRPC address, for a Query above this one.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.process.grpc
    }

    /// GET `path_and_query` (e.g. `api/v1/alerts`) on the HTTP API; the JSON
    /// answer, whatever its status.
    pub async fn get_json(
        &self,
        path_and_query: &str,
    ) -> Result<serde_json::Value, reqwest::Error> {
        super::http_client()
            .get(format!(
                "{}{}",
                self.url(),
                path_and_query.trim_start_matches('/')
            ))
            .send()
            .await?
            .json()
            .await
    }

    /// The Query's log, for failure messages.
    pub fn log(&self) -> String {
        self.process.log()
    }
}

/// `thanos rule`: evaluates a rules file through a Query's HTTP API and
/// serves the rules and their alerts over gRPC ([`Ruler::grpc_addr`]) for a
/// [`Query`]. No Alertmanager, no object storage.
#[derive(Debug)]
pub struct Ruler {
    process: Process,
}

impl Ruler {
    /// Starts a Ruler evaluating `rules` (a Prometheus rules file) every
    /// `eval_interval` against the Prometheus-compatible HTTP API at `query`
    /// (e.g. [`Query::addr`]). `labels` are its external labels (`--label`),
    /// which Thanos puts on its rules as it does a Prometheus' external labels.
    pub async fn start(
        query: SocketAddr,
        rules: &str,
        eval_interval: Duration,
        labels: &[(&str, &str)],
    ) -> Result<Ruler, ThanosError> {
        let dir = TempDir::new("thanos-rule")?;
        let path = |name: &str| dir.path().join(name).display().to_string();
        std::fs::write(dir.path().join("rules.yaml"), rules)?;
        let mut args = vec![
            format!("--query={query}"),
            format!("--rule-file={}", path("rules.yaml")),
            format!("--data-dir={}", path("data")),
            format!("--eval-interval={}", ms(eval_interval)),
        ];
        args.extend(labels.iter().map(|(k, v)| format!("--label={k}={v:?}")));
        let process = Process::start("rule", dir, args).await?;
        Ok(Ruler { process })
    }

    /// The gRPC address, for [`Query::start`].
    pub fn grpc_addr(&self) -> SocketAddr {
        self.process.grpc
    }

    /// Base URL of its own HTTP API (it answers `/api/v1/rules` and
    /// `/api/v1/alerts` itself too).
    pub fn url(&self) -> String {
        format!("http://{}/", self.process.http)
    }

    /// Where its rules file is; rewrite it and POST `/-/reload` to change them.
    pub fn rules_file(&self) -> PathBuf {
        self.process.dir.path().join("rules.yaml")
    }

    /// The Ruler's log, for failure messages.
    pub fn log(&self) -> String {
        self.process.log()
    }
}
