//! The HTTP client under every request: timeouts, no proxy, our user agent,
//! and the TLS files (CA bundle, client certificate and key) read into it.

use std::path::Path;

use prometheus_http_query::reqwest;

use super::client::ClientSettings;
use super::error::ClientError;
use crate::config::redact;

/// The HTTP client with the settings' timeouts and TLS files. No proxy:
/// Prometheus is asked directly, whatever the environment says.
pub(super) fn http_client(settings: &ClientSettings) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder()
        .timeout(settings.request_timeout)
        .connect_timeout(settings.connect_timeout)
        .no_proxy()
        .user_agent(concat!("alert-poller/", env!("CARGO_PKG_VERSION")));
    let tls = &settings.tls;
    if let Some(path) = &tls.ca_file {
        for cert in ca_certificates(path)? {
            builder = builder.add_root_certificate(cert);
        }
    }
    if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
        builder = builder.identity(client_identity(cert, key)?);
    }
    if tls.insecure_skip_verify {
        tracing::warn!(
            url = %redact(&settings.url),
            "TLS certificate verification towards Prometheus is disabled (insecureSkipVerify)"
        );
        builder = builder.danger_accept_invalid_certs(true);
    }
    builder.build().map_err(|e| ClientError::Build(causes(&e)))
}

/// The certificates of a CA bundle, each trusted besides the system's.
fn ca_certificates(path: &Path) -> Result<Vec<reqwest::Certificate>, ClientError> {
    let pem = read_client_file("CA", path)?;
    reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| ClientError::CaParse {
        path: path.to_owned(),
        source,
    })
}

/// The client certificate and its key as one identity: reqwest reads both
/// from a single PEM.
fn client_identity(cert: &Path, key: &Path) -> Result<reqwest::Identity, ClientError> {
    let mut pem = read_client_file("client certificate", cert)?;
    pem.push(b'\n');
    pem.extend(read_client_file("client key", key)?);
    reqwest::Identity::from_pem(&pem).map_err(|e| ClientError::Identity {
        cert: cert.to_owned(),
        key: key.to_owned(),
        cause: causes(&e),
    })
}

fn read_client_file(what: &'static str, path: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|source| ClientError::ClientFile {
        what,
        path: path.to_owned(),
        source,
    })
}

/// An error and its causes in one line: `a: b: c`.
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
}
