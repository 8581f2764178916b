//! The Prometheus HTTP client: `GET /api/v1/alerts` and `/api/v1/rules`,
//! made safe.
//!
//! prometheus-http-query gives us the reqwest client it is built on, the URL
//! handling and the typed alert model. Its `alerts()` call, though, reads the
//! whole body with no limit and drops the response headers, so a huge or
//! hostile response could exhaust memory and a `Retry-After` would be lost.
//! We therefore send the request on the same reqwest client ourselves, read the
//! body in chunks up to `maxResponseBytes`, and decode it into the crate's
//! `Alert` type.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use prometheus_http_query::reqwest::{self, StatusCode, Url, header};

use super::auth::Authenticator;
use super::decode::{Decoded, decode_alert_series, decode_alerts};
use super::envelope::DecodeError;
use super::error::{ClientError, PollError};
use super::http_client::http_client;
use super::query::alerts_query;
use super::response::{decode_error, refuse_unreadable, root_cause};
use super::timing::{decode_evaluations, decode_rule_timings, decode_start_time};
use crate::config::AlertSource;
use crate::config::Auth;
use crate::config::Headers;
use crate::config::Tuning;
use crate::config::redact;
use crate::domain::alerts::{ActiveAlert, Matcher};
use crate::prometheus::GroupTiming;
use crate::prometheus::crypto::install_crypto_provider;

/// The files TLS is set up from. They are read when the client is built,
/// and [`PrometheusClient::files_changed`] says when to build it again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
}

impl TlsFiles {
    fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        [&self.ca_file, &self.cert_file, &self.key_file]
            .into_iter()
            .flatten()
    }
}

/// The settings a client is built from; a new client is built only when these change.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientSettings {
    pub url: Url,
    pub source: AlertSource,
    /// Whose alerts [`PrometheusClient::alerts_of_ours`] asks for.
    pub matchers: Vec<Matcher>,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub max_response_bytes: u64,
    pub headers: Headers,
    pub auth: Auth,
    pub tls: TlsFiles,
}

impl ClientSettings {
    /// The settings of the tuning's first URL, for tools that ask one source.
    pub fn first(t: &Tuning) -> ClientSettings {
        Self::each(t)
            .into_iter()
            .next()
            .expect("a valid tuning names at least one URL")
    }

    /// The settings of every URL of the tuning, in its order: the sources
    /// share everything but the URL.
    pub fn each(t: &Tuning) -> Vec<ClientSettings> {
        t.prometheus_url
            .0
            .iter()
            .map(|url| ClientSettings {
                url: url.clone(),
                source: t.alert_source,
                matchers: t.matchers(),
                request_timeout: t.request_timeout,
                connect_timeout: t.connect_timeout,
                max_response_bytes: t.max_response_bytes.0,
                headers: t.headers.clone(),
                auth: Auth::try_from(t)
                    .expect("a validated tuning names one complete credential mode"),
                tls: TlsFiles {
                    ca_file: t.ca_file.clone(),
                    cert_file: t.cert_file.clone(),
                    key_file: t.key_file.clone(),
                    insecure_skip_verify: t.insecure_skip_verify,
                },
            })
            .collect()
    }
}

/// A successful answer.
#[derive(Debug)]
pub struct AlertsResponse {
    pub alerts: Vec<ActiveAlert>,
    /// Body size after decompression.
    pub bytes: usize,
    /// Warnings of the answer, such as a Thanos partial response.
    pub warnings: Vec<String>,
}

/// One of the two alert decoders, chosen by the source.
type Decoder = fn(&[u8], super::Keep<'_>) -> Result<Decoded, DecodeError>;

/// When and how large a file was, to notice a rotation without reading it.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// A client for one Prometheus.
#[derive(Clone)]
pub struct PrometheusClient {
    settings: ClientSettings,
    api: prometheus_http_query::Client,
    alerts_url: Url,
    /// `/api/v1/query`, the query added per request.
    query_url: Url,
    rules_url: Url,
    /// `/api/v1/status/runtimeinfo`: when the server started.
    runtime_url: Url,
    /// The server's own metrics: how often each rule group has run.
    metrics_url: Url,
    /// The URL without credentials, for messages.
    shown_url: String,
    authenticator: Arc<Authenticator>,
    /// The TLS files as they were when the client was built.
    stamps: Vec<Stamp>,
}

impl PrometheusClient {
    pub fn new(settings: ClientSettings) -> Result<Self, ClientError> {
        install_crypto_provider();
        // Stamped before they are read, so a rotation in between is noticed.
        let stamps = settings.tls.paths().map(|p| stamp(p)).collect();
        let http = http_client(&settings)?;
        let base = base_url(&settings.url);
        let api = prometheus_http_query::Client::from(http, base.as_str()).map_err(|source| {
            ClientError::Url {
                url: redact(&settings.url),
                source,
            }
        })?;
        let alerts_url = endpoint(&base, "api/v1/alerts");
        // Only the groups' timing is read: Prometheus 2.49 and later leave
        // out every rule's active alerts when asked (older ones ignore the
        // parameter), which with other teams' alerts is most of the body.
        let rules_url = endpoint(&base, "api/v1/rules?type=alert&exclude_alerts=true");
        let query_url = endpoint(&base, "api/v1/query");
        let runtime_url = endpoint(&base, "api/v1/status/runtimeinfo");
        let metrics_url = endpoint(&base, "metrics");
        let shown_url = redact(match settings.source {
            AlertSource::Alerts => &alerts_url,
            AlertSource::Query => &query_url,
        });
        let authenticator = Arc::new(Authenticator::new(
            settings.auth.clone(),
            settings.headers.clone(),
        ));
        Ok(Self {
            shown_url,
            authenticator,
            stamps,
            settings,
            api,
            alerts_url,
            query_url,
            rules_url,
            runtime_url,
            metrics_url,
        })
    }

    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// The alerts endpoint, credentials removed, for logs and messages.
    pub fn url(&self) -> &str {
        &self.shown_url
    }

    /// Whether a CA, certificate or key file changed since the client was
    /// built (a rotated Secret): then it must be built again to use them.
    pub fn files_changed(&self) -> bool {
        self.settings
            .tls
            .paths()
            .map(|p| stamp(p))
            .ne(self.stamps.iter().copied())
    }

    /// Asks Prometheus for the active alerts of our kinds (the settings'
    /// matchers), from the configured source; others' alerts are dropped
    /// by Prometheus (`query`) or while decoding (`alerts`). `max_age`
    /// bounds the age of `ALERTS` samples (see [`alerts_query`]); it does
    /// not apply to `/api/v1/alerts`, which holds only live alerts.
    pub async fn alerts_of_ours(
        &self,
        max_age: Option<Duration>,
    ) -> Result<AlertsResponse, PollError> {
        let matchers = &self.settings.matchers;
        let keep = |name: &str| matchers.iter().any(|m| m.takes_name(name));
        let (url, decoder): (Url, Decoder) = match self.settings.source {
            AlertSource::Alerts => (self.alerts_url.clone(), decode_alerts),
            AlertSource::Query => {
                let mut url = self.query_url.clone();
                url.query_pairs_mut()
                    .append_pair("query", &alerts_query(matchers, max_age));
                (url, decode_alert_series)
            }
        };
        let (status, body) = self.fetch(url).await?;
        let decoded = decoder(&body, &keep).map_err(|e| decode_error(status, e))?;
        Ok(AlertsResponse {
            alerts: decoded.alerts,
            bytes: body.len(),
            warnings: decoded.warnings,
        })
    }

    /// Asks Prometheus for every active alert, ours or not (`/api/v1/alerts`).
    pub async fn alerts(&self) -> Result<AlertsResponse, PollError> {
        let (status, body) = self.fetch(self.alerts_url.clone()).await?;
        let decoded = decode_alerts(&body, &|_| true).map_err(|e| decode_error(status, e))?;
        Ok(AlertsResponse {
            alerts: decoded.alerts,
            bytes: body.len(),
            warnings: decoded.warnings,
        })
    }

    /// When the rule groups holding alerts named with one of `prefixes` are
    /// evaluated, for phase-locked polling (`/api/v1/rules?type=alert`),
    /// and the answer's size: before Prometheus 2.49 it holds every active
    /// alert, which makes it costly to read often.
    pub async fn rule_timings(
        &self,
        prefixes: &[&str],
    ) -> Result<(Vec<GroupTiming>, usize), PollError> {
        let (status, body) = self.fetch(self.rules_url.clone()).await?;
        let groups = decode_rule_timings(&body, prefixes).map_err(|e| decode_error(status, e))?;
        Ok((groups, body.len()))
    }

    /// How often each rule group has been evaluated since the server
    /// started, from its own `/metrics` ([`decode_evaluations`]).
    pub async fn evaluations(&self) -> Result<BTreeMap<u64, u64>, PollError> {
        let (_, body) = self.fetch(self.metrics_url.clone()).await?;
        Ok(decode_evaluations(&String::from_utf8_lossy(&body)))
    }

    /// When this server started, in Unix ms (`/api/v1/status/runtimeinfo`);
    /// `None` from one that does not say (Thanos Query and Mimir answer 404).
    pub async fn start_time_ms(&self) -> Result<Option<i64>, PollError> {
        match self.fetch(self.runtime_url.clone()).await {
            Ok((status, body)) => decode_start_time(&body)
                .map(Some)
                .map_err(|e| decode_error(status, e)),
            Err(PollError::Http { status, .. }) if status == StatusCode::NOT_FOUND => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One GET with the headers and credentials, the status rules and the
    /// body cap.
    async fn fetch(&self, url: Url) -> Result<(StatusCode, Vec<u8>), PollError> {
        let response = self.send(url).await?;
        let status = response.status();
        refuse_unreadable(status, response.headers())?;
        let body = self.read_body(response).await?;
        Ok((status, body))
    }

    /// Sends the GET. A refused OAuth2 token (revoked, or expired early) is
    /// replaced and the request sent once more.
    async fn send(&self, url: Url) -> Result<reqwest::Response, PollError> {
        let mut retried = false;
        loop {
            let http = self.api.inner();
            let request = http
                .get(url.clone())
                .header(header::ACCEPT, "application/json");
            let request = self.authenticator.apply(http, request).await?;
            let response = request.send().await.map_err(|e| self.transport_error(e))?;
            if !retried && self.authenticator.refused(response.status()) {
                retried = true;
                continue;
            }
            return Ok(response);
        }
    }

    /// The body, refused once it passes `maxResponseBytes`: at once when
    /// the announced length does, else as soon as the chunks read do.
    async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, PollError> {
        let limit = self.settings.max_response_bytes;
        if response.content_length().is_some_and(|len| len > limit) {
            return Err(PollError::TooLarge(limit));
        }
        // The chunks are kept as they come and copied once into a body of
        // the exact size: a vector grown by doubling would hold up to three
        // times the answer at its last growth, and the answer is the
        // largest thing the controller ever holds.
        let mut chunks = Vec::new();
        let mut size = 0usize;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(e))?
        {
            size += chunk.len();
            if size as u64 > limit {
                return Err(PollError::TooLarge(limit));
            }
            chunks.push(chunk);
        }
        let mut body = Vec::with_capacity(size);
        for chunk in chunks {
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn transport_error(&self, e: reqwest::Error) -> PollError {
        if e.is_timeout() {
            PollError::Timeout(self.settings.request_timeout)
        } else if e.is_connect() {
            PollError::Connect(root_cause(&e))
        } else {
            PollError::Transport(root_cause(&e))
        }
    }
}

/// The configured URL as a base to join paths to: without a trailing slash
/// its last segment (a path prefix such as `/prometheus`) would be replaced.
fn base_url(url: &Url) -> Url {
    let mut base = url.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    base
}

/// An API endpoint under the base URL.
fn endpoint(base: &Url, path: &str) -> Url {
    base.join(path).expect("a relative path joins")
}
