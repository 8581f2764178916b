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

/// Mimir's configuration file: everything on loopback and on local disk
/// under `dir`, rings kept in memory (one process needs no gossip), and
/// the waits that suit a cluster of many replicas cut to nothing.
fn config(dir: &std::path::Path, http: u16, grpc: u16, gossip: u16) -> String {
    let path = |name: &str| format!("{:?}", dir.join(name).display().to_string());
    format!(
        "\
# Every component in this one process.
target: all
# Each request must name its tenant in X-Scope-OrgID (no default tenant).
multitenancy_enabled: true
# No anonymous usage reports to grafana.com.
usage_stats: {{enabled: false}}
activity_tracker: {{filepath: {activity}}}

server:
  http_listen_address: 127.0.0.1
  http_listen_port: {http}
  grpc_listen_address: 127.0.0.1
  grpc_listen_port: {grpc}
  log_level: warn

# Series: ingesters keep recent samples in a local TSDB; blocks would be
# shipped to a directory standing in for object storage.
blocks_storage:
  backend: filesystem
  filesystem: {{dir: {blocks}}}
  tsdb: {{dir: {tsdb}}}
  bucket_store: {{sync_dir: {sync}}}
compactor:
  data_dir: {compactor}
  sharding_ring: {{kvstore: {{store: inmemory}}, instance_addr: 127.0.0.1}}

# Each ring lives in this process' memory. Components reach each other at
# the address they register there, which would otherwise be that of the
# first private network interface, where nothing listens.
distributor:
  ring: {{kvstore: {{store: inmemory}}, instance_addr: 127.0.0.1}}
ingester:
  ring:
    kvstore: {{store: inmemory}}
    instance_addr: 127.0.0.1
    # One ingester holds every series.
    replication_factor: 1
    # Ready as soon as the ring has it (15 s by default).
    min_ready_duration: 0s
querier:
  ring: {{kvstore: {{store: inmemory}}, instance_addr: 127.0.0.1}}
store_gateway:
  sharding_ring:
    kvstore: {{store: inmemory}}
    instance_addr: 127.0.0.1
    replication_factor: 1
query_scheduler:
  ring: {{kvstore: {{store: inmemory}}, instance_addr: 127.0.0.1}}
# The address queriers send results back to the query-frontend at; by
# default that of a network interface, and queries then hang.
frontend:
  address: 127.0.0.1
# Nothing gossips with in-memory rings; were it started, it stays on loopback.
memberlist:
  bind_addr: [127.0.0.1]
  bind_port: {gossip}
  advertise_addr: 127.0.0.1
  advertise_port: {gossip}

ruler:
  rule_path: {ruler}
  # Groups without an interval of their own are evaluated every second.
  evaluation_interval: 1s
  # An upload is applied through the sync queues (10 s apart by default);
  # the periodic re-read of all groups from storage is a fallback.
  inbound_sync_queue_poll_interval: 1s
  outbound_sync_queue_poll_interval: 1s
  poll_interval: 5s
  ring: {{kvstore: {{store: inmemory}}, instance_addr: 127.0.0.1}}
ruler_storage:
  backend: filesystem
  filesystem: {{dir: {rules}}}

limits:
  # Rules are evaluated at the present, not a minute in the past (the
  # default, which waits for late samples).
  ruler_evaluation_delay_duration: 0s
  # No cap on groups per tenant or rules per group (70 and 20 by default).
  ruler_max_rule_groups_per_tenant: 0
  ruler_max_rules_per_rule_group: 0
",
        activity = path("activity.log"),
        blocks = path("data/blocks"),
        tsdb = path("data/tsdb"),
        sync = path("data/tsdb-sync"),
        compactor = path("data/compactor"),
        ruler = path("data/ruler"),
        rules = path("data/rules"),
    )
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

    /// Makes `rules_yaml` (a Prometheus rules file: `groups:` and a list)
    /// the rule groups of `tenant` in `namespace`: uploads each group (the
    /// ruler's configuration API takes one group per request), deletes the
    /// namespace's groups the file no longer has, and waits until the
    /// ruler's `/api/v1/rules` for the tenant lists exactly the file's
    /// groups in that namespace. Their first evaluation follows within an
    /// interval.
    pub async fn set_rules(
        &self,
        tenant: &str,
        namespace: &str,
        rules_yaml: &str,
    ) -> Result<(), MimirError> {
        let file: Value =
            serde_norway::from_str(rules_yaml).map_err(|e| MimirError::Rules(e.to_string()))?;
        let groups = match file.get("groups") {
            Some(Value::Sequence(groups)) => groups.clone(),
            Some(Value::Null) | None => Vec::new(),
            Some(other) => {
                return Err(MimirError::Rules(format!(
                    "`groups` is not a list: {other:?}"
                )));
            }
        };
        let mut wanted = Vec::new();
        for group in &groups {
            let name = group
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| MimirError::Rules("a group without a name".into()))?;
            let body =
                serde_norway::to_string(group).map_err(|e| MimirError::Rules(e.to_string()))?;
            self.rules_request(reqwest::Method::POST, tenant, &[namespace], Some(body))
                .await?;
            wanted.push(name.to_owned());
        }
        for name in self.configured_groups(tenant, namespace).await? {
            if !wanted.contains(&name) {
                self.rules_request(reqwest::Method::DELETE, tenant, &[namespace, &name], None)
                    .await?;
            }
        }
        self.until_rules_listed(tenant, namespace, &wanted).await
    }

    /// The URL of the ruler's configuration API for `segments`
    /// (namespace, then group), each percent-encoded.
    fn rules_config_url(&self, segments: &[&str]) -> reqwest::Url {
        let mut url = reqwest::Url::parse(&format!("{}/config/v1/rules", self.prometheus_url()))
            .expect("a loopback URL parses");
        url.path_segments_mut()
            .expect("an http URL has path segments")
            .extend(segments);
        url
    }

    /// One request to the ruler's configuration API; its answer's body on
    /// success.
    async fn rules_request(
        &self,
        method: reqwest::Method,
        tenant: &str,
        segments: &[&str],
        body: Option<String>,
    ) -> Result<String, MimirError> {
        let url = self.rules_config_url(segments);
        let fail = |message: String| MimirError::Request {
            url: url.to_string(),
            message,
        };
        let mut request = super::http_client()
            .request(method.clone(), url.clone())
            .header(TENANT_HEADER, tenant);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/yaml")
                .body(body);
        }
        let response = request.send().await.map_err(|e| fail(e.to_string()))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(fail(format!("{method} answered {status}: {}", text.trim())));
        }
        Ok(text)
    }

    /// The names of the groups stored for `tenant` in `namespace`.
    async fn configured_groups(
        &self,
        tenant: &str,
        namespace: &str,
    ) -> Result<Vec<String>, MimirError> {
        let url = self.rules_config_url(&[namespace]);
        let response = super::http_client()
            .get(url.clone())
            .header(TENANT_HEADER, tenant)
            .send()
            .await
            .map_err(|e| MimirError::Request {
                url: url.to_string(),
                message: e.to_string(),
            })?;
        // No group at all: 404.
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(MimirError::Request {
                url: url.to_string(),
                message: format!("GET answered {status}: {}", text.trim()),
            });
        }
        // `namespace: [group, ...]`, in YAML.
        let stored: Mapping = serde_norway::from_str(&text).map_err(|e| MimirError::Request {
            url: url.to_string(),
            message: format!("not a YAML mapping of namespaces ({e}): {text}"),
        })?;
        Ok(stored
            .get(namespace)
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .filter_map(|g| g.get("name").and_then(Value::as_str).map(str::to_owned))
            .collect())
    }

    /// The names of the groups `/api/v1/rules` lists for `tenant` in
    /// `namespace` (Mimir reports the namespace as a group's `file`).
    async fn listed_groups(&self, tenant: &str, namespace: &str) -> Result<Vec<String>, String> {
        let (status, body) = self
            .get(Some(tenant), "api/v1/rules")
            .await
            .map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("/api/v1/rules answered {status}: {body}"));
        }
        let answer: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        Ok(answer["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|g| g["file"] == namespace)
            .filter_map(|g| g["name"].as_str().map(str::to_owned))
            .collect())
    }

    async fn until_rules_listed(
        &self,
        tenant: &str,
        namespace: &str,
        wanted: &[String],
    ) -> Result<(), MimirError> {
        let started = Instant::now();
        let mut listed = Vec::new();
        while started.elapsed() < RULES_LIMIT {
            if let Ok(now) = self.listed_groups(tenant, namespace).await {
                listed = now;
                let all_there = wanted.iter().all(|w| listed.contains(w));
                if all_there && listed.iter().all(|l| wanted.contains(l)) {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(MimirError::RulesNotLoaded {
            tenant: tenant.to_owned(),
            namespace: namespace.to_owned(),
            missing: wanted
                .iter()
                .filter(|w| !listed.contains(w))
                .cloned()
                .collect(),
            stale: listed.into_iter().filter(|l| !wanted.contains(l)).collect(),
            limit: RULES_LIMIT,
        })
    }

    /// Mimir's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mimir.log")).unwrap_or_default()
    }
}

/// One remote-write push, passed on to Mimir's `push` URL as `tenant`;
/// Mimir's answer goes back as it is (502 if Mimir cannot be reached).
async fn forward_push(
    client: &reqwest::Client,
    push: &str,
    tenant: &str,
    req: Request<Incoming>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return http::text(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let mut request = client.post(push).header(TENANT_HEADER, tenant).body(body);
    // The encoding, the protobuf message type and the protocol version.
    for (name, value) in &parts.headers {
        let name = name.as_str();
        if name.starts_with("content-") && name != "content-length"
            || name.starts_with("x-prometheus-remote-write-")
        {
            request = request.header(name, value.as_bytes());
        }
    }
    let answer = match request.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            r.bytes().await.map(|b| (status, b))
        }
        Err(e) => Err(e),
    };
    match answer {
        Ok((status, body)) => Response::builder()
            .status(status)
            .body(http::full(body))
            .expect("valid response"),
        Err(e) => http::text(StatusCode::BAD_GATEWAY, &e.to_string()),
    }
}

/// Has a running `prometheus` also remote-write everything it scrapes to
/// `mimir` as `tenant`, with [`edit_prometheus_config`]: one more entry in
/// its `remote_write` list, sending a batch at least every second (5 s by
/// default). The entry sets the `X-Scope-OrgID` header, as one would for a
/// real Mimir, but points at [`Mimir::tenant_push_url`], which sets it too:
/// Debian's Prometheus 2.42, the test bed's default, leaves the header out.
/// Returns once Prometheus has reloaded; Prometheus first re-reads its WAL,
/// so the first samples reach Mimir some seconds later.
pub async fn remote_write_to(
    prometheus: &Prometheus,
    mimir: &Mimir,
    tenant: &str,
) -> Result<(), MimirError> {
    let mut headers = Mapping::new();
    headers.insert(TENANT_HEADER.into(), tenant.into());
    let mut queue = Mapping::new();
    queue.insert("batch_send_deadline".into(), "1s".into());
    let mut target = Mapping::new();
    target.insert("url".into(), mimir.tenant_push_url(tenant).await?.into());
    target.insert("headers".into(), Value::Mapping(headers));
    target.insert("queue_config".into(), Value::Mapping(queue));
    edit_prometheus_config(prometheus, |root| {
        let list = root
            .entry("remote_write".into())
            .or_insert_with(|| Value::Sequence(Vec::new()));
        if !list.is_sequence() {
            *list = Value::Sequence(Vec::new());
        }
        if let Some(list) = list.as_sequence_mut() {
            list.push(Value::Mapping(target));
        }
    })
    .await?;
    Ok(())
}
