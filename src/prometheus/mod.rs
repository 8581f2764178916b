//! Asking Prometheus which alerts are active and when their rule groups run.
//!
//! One job a file: `client.rs` sends the requests and reads the answers
//! within the limits, `http_client.rs` builds the HTTP client with its
//! timeouts and TLS files, `response.rs` refuses an answer that cannot be
//! read before its body is, `auth.rs` adds headers and credentials read from files,
//! `query.rs` builds the `ALERTS` query and bounds its samples' age, and
//! `error.rs` says what went wrong and how it is classed. The decoders turn a
//! body into the crate's types without I/O (so the parsers are tested and
//! fuzzed without a server): `decode.rs` the alerts of either answer,
//! `alert_labels.rs` one alert's labels, `timing.rs` the rule groups' timing
//! and the server's start, `envelope.rs` the envelope they share. The
//! process-wide crypto provider, which this client needs installed first, is
//! [`crypto`]'s. Callers use the re-exports below, so one
//! path, `prometheus::…`, names each item whichever file holds it.

mod alert_labels;
mod auth;
mod client;
pub mod crypto;
mod decode;
mod envelope;
mod error;
mod http_client;
mod query;
mod response;
mod timing;

pub use crate::config::redact;
pub use crate::config::{AlertSource, Headers};
pub use crate::config::{Auth, OAuth2, Username};
pub use client::{AlertsResponse, ClientSettings, PrometheusClient, TlsFiles};
pub use crypto::install_crypto_provider;
pub use decode::{Decoded, Keep, decode, decode_alert_series, decode_alerts};
pub use envelope::DecodeError;
pub use error::{ClientError, PollError};
pub use query::{alerts_query, alerts_selector, series_max_age};
pub use timing::{GroupTiming, decode_evaluations, decode_rule_timings, decode_start_time};
