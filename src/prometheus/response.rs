//! What an answer must be before its body is read and decoded: a status
//! and content type we can read, `Retry-After` kept; and the errors
//! named by the cause that says something.

use std::time::Duration;

use prometheus_http_query::reqwest::{StatusCode, header};

use super::envelope::DecodeError;
use super::error::PollError;

/// A body that did not decode: a Prometheus error, garbage, or the error
/// body of a failed status.
pub(super) fn decode_error(status: StatusCode, e: DecodeError) -> PollError {
    match (status.is_success(), e) {
        (false, DecodeError::Invalid(detail) | DecodeError::Prometheus(detail)) => {
            PollError::Http { status, detail }
        }
        (true, DecodeError::Invalid(cause)) => PollError::Decode(cause),
        (true, DecodeError::Prometheus(message)) => PollError::Prometheus(message),
    }
}

/// Refuses an answer that cannot be decoded, before its body is read:
/// "retry later" with its `Retry-After`, a failed status without a JSON
/// error body, or a success that is not JSON.
pub(super) fn refuse_unreadable(
    status: StatusCode,
    headers: &header::HeaderMap,
) -> Result<(), PollError> {
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        return Err(PollError::RetryLater {
            status,
            retry_after: retry_after(headers),
        });
    }
    if is_json(headers) {
        return Ok(());
    }
    if !status.is_success() {
        return Err(PollError::Http {
            status,
            detail: "no JSON error body".into(),
        });
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_else(|| "(none)".into());
    Err(PollError::ContentType(content_type))
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
pub(super) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
