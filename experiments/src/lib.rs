//! What the experiment binaries share: the arithmetic behind the figures
//! they report, kept free of processes and I/O so that tests can pin the
//! numbers down without starting a Prometheus. Reading Prometheus' text
//! exposition is the test bed's (`alert_poller_testbed::exposition`).

pub mod figures;

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock milliseconds, the unit Prometheus stamps evaluations in, so
/// that detections and ground truth can be subtracted directly.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}
