//! What an operator sees of the running process: its [`metrics`] (with
//! [`beside_metrics`] for another writer and shadow mode, and
//! [`process_metrics`] for build and process figures), the one HTTP port
//! ([`server`]: `/metrics`, `/healthz`, `/readyz`) and the liveness
//! [`watchdog`] behind `/healthz`.

pub mod beside_metrics;
pub mod metrics;
pub mod process_metrics;
pub mod server;
pub mod watchdog;
