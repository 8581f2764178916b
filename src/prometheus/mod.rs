//! Asking Prometheus which alerts are active and when their rule groups run.
//!
//! One job a file: `client.rs` sends the requests and reads the answers within
//! the limits, `auth.rs` adds headers and credentials read from files, `source.rs` says which endpoint gives the alerts and what to
//! ask it, `decode.rs` turns a body into the crate's types without I/O (so
//! the parsers are tested and fuzzed without a server), and `error.rs` says what
//! went wrong and how it is classed. The process-wide crypto provider, which
//! this client needs installed first, is [`crate::tls`]'s. Callers use the
//! re-exports below, so one path, `prometheus::…`, names each item whichever
//! file holds it.

mod auth;
mod client;
mod decode;
mod error;
mod source;

pub use crate::tls::install_crypto_provider;
pub use auth::{Auth, Headers, OAuth2, Username};
pub use client::{AlertsResponse, ClientSettings, PrometheusClient, TlsFiles};
pub use decode::{
    DecodeError, Decoded, Keep, decode, decode_alert_series, decode_alerts, decode_rule_timings,
    decode_start_time,
};
pub use error::{ClientError, PollError, redact};
pub use source::{AlertSource, alerts_query, alerts_selector, series_max_age};
