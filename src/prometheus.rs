//! The Prometheus HTTP client: one request, `GET /api/v1/alerts`, made safe.
//!
//! Errors say what went wrong, not where: the caller names the URL once.
//!
//! prometheus-http-query gives us the reqwest client it is built on, the URL
//! handling and the typed alert model. Its `alerts()` call, though, reads the
//! whole body with no limit and drops the response headers, so a huge or
//! hostile response could exhaust memory and a `Retry-After` would be lost.
//! We therefore send the request on the same reqwest client ourselves, read the
//! body in chunks up to `maxResponseBytes`, and decode it into the crate's
//! `Alert` type.

use std::path::PathBuf;
use std::sync::Once;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use prometheus_http_query::error::PrometheusError;
use prometheus_http_query::reqwest::{self, StatusCode, Url, header};
use prometheus_http_query::response::Alert;
use serde::Deserialize;

use crate::alerts::{ActiveAlert, AlertState};
use crate::config::Tuning;
use crate::phase::GroupTiming;

/// What can go wrong asking Prometheus. Messages name the cause; none of them
/// carries the bearer token or the URL (the caller adds the URL).
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("cannot read the bearer token file {path}: {source}")]
    TokenFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    #[error("request failed: {0}")]
    Transport(String),
    #[error("answered {status}, asking to retry{}", retry_after.map(|d| format!(" after {d:?}")).unwrap_or_default())]
    RetryLater {
        status: StatusCode,
        retry_after: Option<Duration>,
    },
    #[error("answered {status}: {detail}")]
    Http { status: StatusCode, detail: String },
    #[error("answered with content type {0:?}, not JSON")]
    ContentType(String),
    #[error("the answer is larger than the limit of {0} bytes")]
    TooLarge(u64),
    #[error("the answer is not a valid alerts response: {0}")]
    Decode(String),
    #[error("Prometheus reported an error: {0}")]
    Prometheus(String),
}

impl PollError {
    /// A short, stable class of the error: the `result` label of the poll
    /// metric, and the cause quoted in an Unknown condition (kept stable so a
    /// long outage does not rewrite the status on every poll).
    pub fn kind(&self) -> &'static str {
        match self {
            PollError::TokenFile { .. } => "token_file",
            PollError::Connect(_) => "connect",
            PollError::Timeout(_) => "timeout",
            PollError::Transport(_) => "transport",
            PollError::RetryLater { .. } => "retry_later",
            PollError::Http { .. } => "http_status",
            PollError::ContentType(_) => "content_type",
            PollError::TooLarge(_) => "too_large",
            PollError::Decode(_) => "decode",
            PollError::Prometheus(_) => "prometheus_error",
        }
    }

    /// The delay Prometheus asked for, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            PollError::RetryLater { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Errors building a client from the tuning.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read the CA file {path}: {source}")]
    CaFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the CA file {path} holds no usable PEM certificate: {source}")]
    CaParse {
        path: PathBuf,
        source: reqwest::Error,
    },
    #[error("cannot build the HTTP client: {0}")]
    Build(reqwest::Error),
    #[error("invalid Prometheus URL {url}: {source}")]
    Url {
        url: String,
        source: prometheus_http_query::Error,
    },
}

/// The settings a client is built from; a new client is built only when these change.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientSettings {
    pub url: Url,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub max_response_bytes: u64,
    pub bearer_token_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
}

impl From<&Tuning> for ClientSettings {
    fn from(t: &Tuning) -> Self {
        Self {
            url: t.prometheus_url.clone(),
            request_timeout: t.request_timeout,
            connect_timeout: t.connect_timeout,
            max_response_bytes: t.max_response_bytes.0,
            bearer_token_file: t.bearer_token_file.clone(),
            ca_file: t.ca_file.clone(),
            insecure_skip_verify: t.insecure_skip_verify,
        }
    }
}

/// A successful answer.
#[derive(Debug)]
pub struct AlertsResponse {
    pub alerts: Vec<ActiveAlert>,
    /// Body size after decompression.
    pub bytes: usize,
}

/// A client for one Prometheus.
#[derive(Clone)]
pub struct PrometheusClient {
    settings: ClientSettings,
    api: prometheus_http_query::Client,
    alerts_url: Url,
    rules_url: Url,
    /// The URL without credentials, for messages.
    shown_url: String,
}

/// kube brings rustls with `ring`; reqwest is built without a provider of its
/// own, so the process-wide default must be `ring` before any client exists.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Fails only if another provider was installed first, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl PrometheusClient {
    pub fn new(settings: ClientSettings) -> Result<Self, ClientError> {
        install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .connect_timeout(settings.connect_timeout)
            .no_proxy()
            .user_agent(concat!("alert-poller/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &settings.ca_file {
            let pem = std::fs::read(path).map_err(|source| ClientError::CaFile {
                path: path.clone(),
                source,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| {
                ClientError::CaParse {
                    path: path.clone(),
                    source,
                }
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if settings.insecure_skip_verify {
            tracing::warn!(
                url = %redact(&settings.url),
                "TLS certificate verification towards Prometheus is disabled (insecureSkipVerify)"
            );
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder.build().map_err(ClientError::Build)?;
        let mut base = settings.url.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let api = prometheus_http_query::Client::from(http, base.as_str()).map_err(|source| {
            ClientError::Url {
                url: redact(&settings.url),
                source,
            }
        })?;
        let alerts_url = base.join("api/v1/alerts").expect("a relative path joins");
        let rules_url = base
            .join("api/v1/rules?type=alert")
            .expect("a relative path joins");
        Ok(Self {
            shown_url: redact(&alerts_url),
            settings,
            api,
            alerts_url,
            rules_url,
        })
    }

    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// The alerts endpoint, credentials removed, for logs and messages.
    pub fn url(&self) -> &str {
        &self.shown_url
    }

    /// Asks Prometheus for its active alerts.
    pub async fn alerts(&self) -> Result<AlertsResponse, PollError> {
        let (status, body) = self.fetch(self.alerts_url.clone()).await?;
        let alerts = decode(&body).map_err(|e| decode_error(status, e))?;
        Ok(AlertsResponse {
            alerts,
            bytes: body.len(),
        })
    }

    /// When the rule groups holding alerts named `prefix…` are evaluated,
    /// for phase-locked polling (`/api/v1/rules?type=alert`).
    pub async fn rule_timings(&self, prefix: &str) -> Result<Vec<GroupTiming>, PollError> {
        let (status, body) = self.fetch(self.rules_url.clone()).await?;
        decode_rule_timings(&body, prefix).map_err(|e| decode_error(status, e))
    }

    /// One GET with the bearer token, the status rules and the body cap.
    async fn fetch(&self, url: Url) -> Result<(StatusCode, Vec<u8>), PollError> {
        let mut request = self
            .api
            .inner()
            .get(url)
            .header(header::ACCEPT, "application/json");
        if let Some(path) = &self.settings.bearer_token_file {
            let token = std::fs::read_to_string(path).map_err(|source| PollError::TokenFile {
                path: path.clone(),
                source,
            })?;
            request = request.bearer_auth(token.trim());
        }
        let mut response = request.send().await.map_err(|e| self.transport_error(e))?;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            return Err(PollError::RetryLater {
                status,
                retry_after: retry_after(response.headers()),
            });
        }
        if !is_json(response.headers()) {
            if !status.is_success() {
                return Err(PollError::Http {
                    status,
                    detail: "no JSON error body".into(),
                });
            }
            let content_type = response
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_else(|| "(none)".into());
            return Err(PollError::ContentType(content_type));
        }
        let limit = self.settings.max_response_bytes;
        if response.content_length().is_some_and(|len| len > limit) {
            return Err(PollError::TooLarge(limit));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(e))?
        {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(PollError::TooLarge(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, body))
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

/// A body that did not decode: a Prometheus error, garbage, or the error
/// body of a failed status.
fn decode_error(status: StatusCode, e: DecodeError) -> PollError {
    match (status.is_success(), e) {
        (false, DecodeError::Invalid(detail) | DecodeError::Prometheus(detail)) => {
            PollError::Http { status, detail }
        }
        (true, DecodeError::Invalid(cause)) => PollError::Decode(cause),
        (true, DecodeError::Prometheus(message)) => PollError::Prometheus(message),
    }
}

/// Why a body could not be turned into alerts.
#[derive(Debug, PartialEq)]
pub enum DecodeError {
    /// Not the JSON shape of an alerts answer.
    Invalid(String),
    /// A well-formed `{"status":"error"}` answer.
    Prometheus(String),
}

#[derive(Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
enum Envelope<D> {
    Success { data: D },
    Error(PrometheusError),
}

impl<D> Envelope<D> {
    fn parse(body: &[u8]) -> Result<D, DecodeError>
    where
        D: serde::de::DeserializeOwned,
    {
        match serde_json::from_slice(body).map_err(|e| DecodeError::Invalid(e.to_string()))? {
            Envelope::Success { data } => Ok(data),
            Envelope::Error(e) => Err(DecodeError::Prometheus(format!(
                "{}: {}",
                e.error_type(),
                e.message()
            ))),
        }
    }
}

/// The parts of `/api/v1/rules` that timing needs. Our own, lenient model:
/// the crate's `RuleGroup` insists on fields older servers do not send and
/// decodes every alert of every rule, which phase locking has no use for.
#[derive(Deserialize)]
struct RulesData {
    groups: Vec<RulesGroup>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RulesGroup {
    interval: f64,
    #[serde(default)]
    evaluation_time: f64,
    last_evaluation: String,
    rules: Vec<RuleName>,
}

#[derive(Deserialize)]
struct RuleName {
    name: String,
    #[serde(rename = "type")]
    kind: String,
}

/// Decodes `/api/v1/rules` into the timing of the groups that hold alerts
/// named `prefix…`. Groups never evaluated yet are left out. Pure.
pub fn decode_rule_timings(body: &[u8], prefix: &str) -> Result<Vec<GroupTiming>, DecodeError> {
    let data: RulesData = Envelope::parse(body)?;
    Ok(data
        .groups
        .iter()
        .filter(|g| {
            g.rules
                .iter()
                .any(|r| r.kind == "alerting" && r.name.starts_with(prefix))
        })
        .filter_map(|g| {
            let last: Timestamp = g.last_evaluation.parse().ok()?;
            // Prometheus reports a group not yet evaluated at the zero time.
            (last.as_second() > 0).then(|| GroupTiming {
                last_evaluation_ms: last.as_millisecond(),
                interval_ms: (g.interval * 1000.0).round() as i64,
                evaluation_ms: (g.evaluation_time * 1000.0).ceil() as i64,
            })
        })
        .collect())
}

#[derive(Deserialize)]
struct AlertsData {
    alerts: Vec<Alert>,
}

/// Decodes an `/api/v1/alerts` body. Pure, so the parser is tested and fuzzed
/// without a server.
pub fn decode(body: &[u8]) -> Result<Vec<ActiveAlert>, DecodeError> {
    let data: AlertsData = Envelope::parse(body)?;
    Ok(data
        .alerts
        .into_iter()
        .filter_map(|alert| {
            let state = alert.state();
            let state = if state.is_firing() {
                AlertState::Firing
            } else if state.is_pending() {
                AlertState::Pending
            } else {
                return None;
            };
            Some(ActiveAlert {
                labels: alert.labels().clone().into_iter().collect(),
                state,
            })
        })
        .collect())
}

fn is_json(headers: &header::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// `Retry-After` in its delta-seconds form, the one Prometheus and common
/// proxies send; an HTTP date is ignored (the backoff still applies).
fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The innermost error message: reqwest's own is "error sending request",
/// which says nothing; the cause at the bottom ("Connection refused") does.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// A URL without user name and password.
pub fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_firing_and_pending_alerts() {
        let body = br#"{"status":"success","data":{"alerts":[
            {"labels":{"alertname":"MetricGatewayThrottling","pipeline_name":"a"},
             "annotations":{},"state":"firing","activeAt":"2026-11-27T10:00:00.123456789Z","value":"1e+00"},
            {"labels":{"alertname":"MetricAgentSomeDataDropped"},"annotations":{"summary":"x"},
             "state":"pending","activeAt":"2026-11-27T10:00:01Z","value":"+Inf",
             "keepFiringSince":"2026-11-27T10:00:01Z"}]}}"#;
        let alerts = decode(body).unwrap();
        assert_eq!(alerts.len(), 2);
        assert_eq!(alerts[0].state, AlertState::Firing);
        assert_eq!(alerts[0].labels["pipeline_name"], "a");
        assert_eq!(alerts[1].state, AlertState::Pending);
    }

    #[test]
    fn prometheus_errors_and_garbage_are_told_apart() {
        let err = decode(br#"{"status":"error","errorType":"timeout","error":"query timed out"}"#);
        assert!(matches!(err, Err(DecodeError::Prometheus(m)) if m.contains("query timed out")));
        assert!(matches!(decode(b"<html>"), Err(DecodeError::Invalid(_))));
        assert!(matches!(
            decode(br#"{"status":"success","data":{"alerts":[{"labels":"#),
            Err(DecodeError::Invalid(_))
        ));
        assert!(matches!(
            decode(br#"{"status":"success","data":{}}"#),
            Err(DecodeError::Invalid(_))
        ));
    }

    #[test]
    fn rule_timings_come_from_groups_with_our_alerts() {
        let body = br#"{"status":"success","data":{"groups":[
            {"name":"metricpipeline-flow-health","file":"rules.yaml","interval":30,"limit":0,
             "evaluationTime":0.0123,"lastEvaluation":"2026-11-27T10:00:00.5Z",
             "rules":[{"state":"inactive","name":"MetricGatewayThrottling","query":"up == 0",
               "duration":60,"labels":{},"annotations":{},"alerts":[],"health":"ok",
               "evaluationTime":0.001,"lastEvaluation":"2026-11-27T10:00:00.5Z","type":"alerting"}]},
            {"name":"other","file":"rules.yaml","interval":15,"limit":0,
             "evaluationTime":0.001,"lastEvaluation":"2026-11-27T10:00:01Z",
             "rules":[{"state":"inactive","name":"TraceGatewayThrottling","query":"up == 0",
               "duration":0,"labels":{},"annotations":{},"alerts":[],"health":"ok",
               "evaluationTime":0.001,"lastEvaluation":"2026-11-27T10:00:01Z","type":"alerting"}]}]}}"#;
        let timings = decode_rule_timings(body, "Metric").unwrap();
        assert_eq!(timings.len(), 1);
        assert_eq!(timings[0].interval_ms, 30_000);
        assert_eq!(timings[0].evaluation_ms, 13);
        assert_eq!(timings[0].last_evaluation_ms % 1000, 500);
        assert!(decode_rule_timings(b"[]", "Metric").is_err());
    }

    #[test]
    fn credentials_never_show_in_urls() {
        let url = Url::parse("https://user:secret@prom.example/").unwrap();
        assert_eq!(redact(&url), "https://prom.example/");
    }

    #[test]
    fn retry_after_reads_seconds_only() {
        let mut h = header::HeaderMap::new();
        h.insert(header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }
}
