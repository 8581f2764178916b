//! Grafana Mimir on loopback: one monolithic process (`-target=all`) holding
//! the tenants' series, pushed to it by a test bed [`Prometheus`] through
//! remote write, and a ruler evaluating each tenant's rule groups. Its
//! Prometheus-compatible API under `/prometheus` is what the controller polls
//! when it sits in front of Mimir, with an `X-Scope-OrgID` header naming the
//! tenant.
//!
//! The binary is `$MIMIR_BIN`, else the one tests/mimir/build.sh builds from
//! Go modules: minutes the first time, then cached (later calls only hash
//! three files). The process gets a temporary directory (configuration,
//! blocks, rule groups, log), two free loopback ports (HTTP and gRPC) and is
//! killed when dropped. [`Mimir::start`] returns once `/ready` answers, which
//! takes about a second.
//!
//! Rules: [`Mimir::set_rules`] uploads a rules file's groups through the
//! ruler's configuration API and waits until the ruler serves them. The
//! ruler evaluates at the present (no evaluation delay), every second unless
//! a group says otherwise, and picks up uploaded groups within about a second.
//!
//! Series: [`remote_write_to`] adds a `remote_write` entry for a tenant to a
//! running Prometheus. Debian's Prometheus 2.42 does not send the entry's
//! `headers`, so the entry points at a loopback forwarder of this harness
//! that sets `X-Scope-OrgID` on each push ([`Mimir::tenant_push_url`]).

mod config;
mod remote_write;
mod rules;

pub use remote_write::remote_write_to;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::{Request, Response, StatusCode, body::Incoming};
use prometheus_http_query::reqwest;
use serde_norway::{Mapping, Value};
use tokio::process::{Child, Command};
use tokio_util::sync::DropGuard;

use super::http::{self, Body};
use super::prometheus::Prometheus;
use super::thanos::{ThanosError, edit_prometheus_config};
use super::{TempDir, free_port};
use config::config;
use remote_write::forward_push;

/// How long Mimir may take to answer `/ready`.
const READY_LIMIT: Duration = Duration::from_secs(60);
/// How long uploaded rule groups may take to show in `/api/v1/rules`.
const RULES_LIMIT: Duration = Duration::from_secs(30);
/// Lines of Mimir's log quoted when it does not come up.
const LOG_TAIL: usize = 25;
/// The header naming the tenant of a request.
pub const TENANT_HEADER: &str = "X-Scope-OrgID";

#[derive(Debug, thiserror::Error)]
pub enum MimirError {
    #[error("cannot build Mimir with tests/mimir/build.sh (or set MIMIR_BIN): {0}")]
    Build(String),
    #[error("cannot prepare a Mimir directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot start `{binary}`: {source}")]
    Spawn {
        binary: String,
        source: std::io::Error,
    },
    #[error(
        "`{binary}` did not become ready: {why} (waited up to {limit:?}); last lines of its log:\n{log}"
    )]
    NotReady {
        binary: String,
        limit: Duration,
        why: String,
        log: String,
    },
    #[error("the rules are not a rules file: {0}")]
    Rules(String),
    #[error("Mimir at {url}: {message}")]
    Request { url: String, message: String },
    #[error(
        "Mimir's ruler did not serve the rule groups {missing:?} of tenant {tenant}, namespace {namespace} within {limit:?} (still listed: {stale:?})"
    )]
    RulesNotLoaded {
        tenant: String,
        namespace: String,
        missing: Vec<String>,
        stale: Vec<String>,
        limit: Duration,
    },
    #[error("cannot have Prometheus remote-write to Mimir: {0}")]
    Prometheus(#[from] ThanosError),
}

/// The Mimir binary: `$MIMIR_BIN`, else tests/mimir/build.sh's output
/// (built on the first call in this process if not cached; that blocks).
pub fn binary() -> Result<PathBuf, MimirError> {
    if let Some(path) = std::env::var_os("MIMIR_BIN") {
        return Ok(PathBuf::from(path));
    }
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| super::go_build("mimir"))
        .clone()
        .map_err(MimirError::Build)
}

/// A running Mimir, killed when dropped.
#[derive(Debug)]
pub struct Mimir {
    child: Child,
    http: SocketAddr,
    dir: TempDir,
    /// The tenants' push forwarders (see [`Mimir::tenant_push_url`]),
    /// stopped when Mimir is dropped.
    forwarders: Mutex<Vec<(String, SocketAddr, DropGuard)>>,
}

impl Mimir {
    /// Starts a monolithic Mimir with multi-tenancy on, on free loopback
    /// ports; returns once it is ready to take series and queries.
    pub async fn start() -> Result<Mimir, MimirError> {
        let binary = binary()?;
        let dir = TempDir::new("mimir")?;
        let (http, grpc, gossip) = (free_port(), free_port(), free_port());
        let file = dir.path().join("mimir.yaml");
        std::fs::write(&file, config(dir.path(), http, grpc, gossip))?;
        let log = std::fs::File::create(dir.path().join("mimir.log"))?;
        let child = Command::new(&binary)
            .arg(format!("-config.file={}", file.display()))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| MimirError::Spawn {
                binary: binary.display().to_string(),
                source,
            })?;
        let mut mimir = Mimir {
            child,
            http: SocketAddr::from(([127, 0, 0, 1], http)),
            dir,
            forwarders: Mutex::new(Vec::new()),
        };
        let ready = format!("{}/ready", mimir.url());
        if let Err(why) = super::until_ready(&mut mimir.child, &ready, READY_LIMIT).await {
            return Err(MimirError::NotReady {
                binary: binary.display().to_string(),
                limit: READY_LIMIT,
                why,
                log: super::last_lines(&mimir.log(), LOG_TAIL),
            });
        }
        Ok(mimir)
    }

    /// Base URL, without a trailing slash: `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// The Prometheus-compatible API's base URL, `http://127.0.0.1:PORT/prometheus`:
    /// what the controller is given as `prometheusUrl`.
    pub fn prometheus_url(&self) -> String {
        format!("{}/prometheus", self.url())
    }

    /// Where Prometheus remote-writes to (`/api/v1/push`); the tenant goes
    /// in an `X-Scope-OrgID` header (see [`remote_write_to`]).
    pub fn remote_write_url(&self) -> String {
        format!("{}/api/v1/push", self.url())
    }

    /// A loopback URL that takes remote-write pushes and passes each on to
    /// [`Mimir::remote_write_url`] with `X-Scope-OrgID: tenant` set: for a
    /// Prometheus that does not send the `headers` of its `remote_write`
    /// configuration, such as Debian's 2.42 (its pushes arrive without them
    /// and Mimir answers 401). Started on first use, one per tenant.
    pub async fn tenant_push_url(&self, tenant: &str) -> Result<String, MimirError> {
        let url = |addr: SocketAddr| format!("http://{addr}/api/v1/push");
        if let Some((_, addr, _)) = self.forwarders().iter().find(|(t, _, _)| t == tenant) {
            return Ok(url(*addr));
        }
        let client = super::http_client();
        let (push, tenant_owned) = (self.remote_write_url(), tenant.to_owned());
        let (addr, stop) = http::serve(move |req: Request<Incoming>| {
            let (client, push, tenant) = (client.clone(), push.clone(), tenant_owned.clone());
            async move { forward_push(&client, &push, &tenant, req).await }
        })
        .await?;
        let mut forwarders = self.forwarders();
        // Another caller may have started one meanwhile; the later one is dropped.
        if let Some((_, addr, _)) = forwarders.iter().find(|(t, _, _)| t == tenant) {
            return Ok(url(*addr));
        }
        forwarders.push((tenant.to_owned(), addr, stop.drop_guard()));
        Ok(url(addr))
    }

    fn forwarders(&self) -> std::sync::MutexGuard<'_, Vec<(String, SocketAddr, DropGuard)>> {
        self.forwarders
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// GET `path_and_query` under [`Mimir::prometheus_url`] (e.g.
    /// `api/v1/alerts`) as `tenant` (no tenant header if `None`): the status
    /// and the body, whatever they are.
    pub async fn get(
        &self,
        tenant: Option<&str>,
        path_and_query: &str,
    ) -> Result<(reqwest::StatusCode, String), MimirError> {
        let url = format!(
            "{}/{}",
            self.prometheus_url(),
            path_and_query.trim_start_matches('/')
        );
        let mut request = super::http_client().get(&url);
        if let Some(tenant) = tenant {
            request = request.header(TENANT_HEADER, tenant);
        }
        let fail = |e: reqwest::Error| MimirError::Request {
            url: url.clone(),
            message: e.to_string(),
        };
        let response = request.send().await.map_err(fail)?;
        let status = response.status();
        Ok((status, response.text().await.map_err(fail)?))
    }

    /// Mimir's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mimir.log")).unwrap_or_default()
    }
}
