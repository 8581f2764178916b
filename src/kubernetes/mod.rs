//! Everything that talks to the Kubernetes API: the pipeline resources and
//! their CRDs ([`pipeline`]), which version and write strategy to use
//! ([`schema`]), the per-kind [`controller`] that judges and writes the
//! condition, the tuning ConfigMap's watch ([`config_watch`]) and leader
//! election on a Lease ([`leader`]).

pub mod config_watch;
pub mod controller;
pub mod leader;
pub mod pipeline;
pub mod schema;
