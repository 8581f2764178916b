//! What can go wrong asking Prometheus, and how it is classed.
//!
//! Errors say what went wrong, not where: the caller names the URL once, and
//! through [`redact`], so credentials never reach a log line or a condition.

use std::path::PathBuf;
use std::time::Duration;

use prometheus_http_query::reqwest::{self, StatusCode};

/// What can go wrong asking Prometheus. Messages name the cause; none of them
/// carries a credential or the URL (the caller adds the URL).
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("cannot read the {what} file {path}: {source}")]
    CredentialFile {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot get an OAuth2 token from {endpoint}: {detail}")]
    OAuth2 { endpoint: String, detail: String },
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("no client: {0}")]
    Client(String),
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
            PollError::CredentialFile { .. } => "credential_file",
            PollError::OAuth2 { .. } => "oauth2",
            PollError::Connect(_) => "connect",
            PollError::Client(_) => "client",
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
    #[error("the CA file {path} holds no usable PEM certificate: {source}")]
    CaParse {
        path: PathBuf,
        source: reqwest::Error,
    },
    #[error("cannot read the {what} file {path}: {source}")]
    ClientFile {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the client certificate {cert} and key {key} are not a usable PEM pair: {cause}")]
    Identity {
        cert: PathBuf,
        key: PathBuf,
        cause: String,
    },
    /// The cause as text: reqwest's own message is "builder error", and
    /// what went wrong (a key that does not fit the certificate) is below it.
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
    #[error("invalid Prometheus URL {url}: {source}")]
    Url {
        url: String,
        source: prometheus_http_query::Error,
    },
}
