//! alert-poller: keeps the `TelemetryFlowHealthy` condition of Kyma's
//! telemetry pipelines (MetricPipeline, TracePipeline, LogPipeline) current
//! by polling Prometheus alerts.
//!
//! The folders are the layers, and each depends only on those listed before
//! it:
//!
//! - [`domain`]: the decisions, pure: matching, diff, verdicts, conditions.
//! - [`config`]: the tuning, its parsing and its checks, pure.
//! - [`operations`]: metrics, the HTTP port, the liveness watchdog.
//! - [`prometheus`]: one source's HTTP client and decoders.
//! - [`polling`]: the poll loop, its schedule and its state.
//! - [`kubernetes`]: the pipelines' API, the controllers, the ConfigMap
//!   watch, leader election.
//!
//! ARCHITECTURE.md follows one poll from Prometheus to a status write
//! through these folders. The binary (`main.rs`, `cli/`) wires them.

pub mod config;
pub mod domain;
pub mod kubernetes;
pub mod operations;
pub mod polling;
pub mod prometheus;
