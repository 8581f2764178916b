//! alert-poller: keeps the `TelemetryFlowHealthy` condition of Kyma
//! MetricPipelines current by polling Prometheus alerts.
//!
//! One poll travels through these modules, in this order:
//! [`sources`] (every configured Prometheus asked at once, answers merged) →
//! [`prometheus`] (one HTTP request) → [`alerts`] (snapshot and diff) →
//! [`poller`] (the loop's I/O; [`poll_state`] decides staleness and what to
//! re-queue) → [`controller`] (reconcile and status write), with [`health`]
//! deciding the condition, [`conditions`] placing it among other writers'
//! conditions, [`other_writers`] leaving alone a condition of our type that
//! another writer keeps (at most one write per verdict change), [`shadow`]
//! comparing verdicts with that writer's condition instead of writing
//! (`mode: shadow`; [`beside_metrics`] reports both), [`schema`] choosing the API version and write strategy, and
//! [`schedule`] and [`phase`] deciding when to poll next. [`config`] defines
//! the tuning and [`config_watch`] applies the ConfigMap at run time. The pure
//! modules (`alerts`, `health`, `conditions`, `other_writers`, `shadow`,
//! `schedule`, `phase`, `poll_state`, `config`) do no I/O.

pub mod alerts;
pub mod beside_metrics;
pub mod check;
pub mod conditions;
pub mod config;
pub mod config_watch;
pub mod controller;
pub mod health;
pub mod kind;
pub mod labels;
pub mod leader;
pub mod metrics;
pub mod other_writers;
pub mod phase;
pub mod pipeline;
pub mod poll_state;
pub mod poller;
pub mod process_metrics;
pub mod prometheus;
pub mod restart;
pub mod schedule;
pub mod schema;
pub mod server;
pub mod shadow;
pub mod sources;
pub mod tls;
pub mod watchdog;
