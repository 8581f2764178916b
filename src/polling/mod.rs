//! When to ask Prometheus and what an answer means for the pipelines.
//!
//! [`poller`] is the loop: it asks every configured source at once
//! ([`sources`]), hands the answer to [`poll_state`], which decides what is
//! known, what turned stale and whom to re-queue, and sleeps as [`schedule`]
//! (adaptive intervals, backoff) and [`phase`] (just after the next rule
//! evaluation) say. [`restart`] decides whether a source that started lately
//! has settled. `schedule`, `poll_state`, `phase` and `restart` are pure.

pub mod phase;
pub mod poll_state;
pub mod poller;
pub mod restart;
pub mod schedule;
pub mod sources;
