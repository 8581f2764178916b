//! What alert-poller decides, without any I/O: which alerts fire for which
//! pipeline ([`alerts`], over [`labels`] and the three [`kind`]s), what
//! condition that makes ([`health`]), how it sits among other writers'
//! conditions ([`conditions`]), when another writer of our type is left
//! alone ([`other_writers`]), and how our verdicts compare with its
//! ([`shadow`]). Everything here is table-tested without a network.

pub mod alerts;
pub mod conditions;
pub mod health;
pub mod kind;
pub mod labels;
pub mod other_writers;
pub mod shadow;
