//! A source's rule-group timing: read from its `/api/v1/rules` when the
//! last reading is old, kept as readings the phase lock estimates from.

use std::time::{Duration, Instant};

use super::{Source, unix_ms};
use crate::config::Tuning;
use crate::operations::metrics::Metrics;
use crate::polling::phase::{self, Readings};
use crate::prometheus::GroupTiming;

/// How long a rule-group timing reading stands before the next is taken
/// while phase-locked. Readings add up (`phase::Readings`), so the estimate
/// rests on the last few minutes: about one request a minute on top of the
/// polls.
const TIMING_MAX_AGE: Duration = Duration::from_secs(60);
/// The same when not phase-locked, where the timing only bounds the
/// query's sample age by the groups' intervals, which rarely change. Before
/// Prometheus 2.49 the answer holds every rule's active alerts, other
/// teams' included, so a cluster with many alerts makes it large: it is
/// read no more often than the intervals need.
const TIMING_MAX_AGE_UNLOCKED: Duration = Duration::from_secs(300);
/// How soon an unusable timing reading is tried again.
const TIMING_RETRY: Duration = Duration::from_secs(5);

/// The source's rule-group timing, estimated from its last readings of
/// `/api/v1/rules`; a reading is taken when the last is a minute old (five
/// when not phase-locked), and
/// soon again after an empty or failed one, which also drops the history
/// (the timing is unknown, so polling is unlocked until it is read).
pub(super) async fn rule_timings(
    source: &mut Source,
    tuning: &Tuning,
    metrics: &Metrics,
) -> Vec<GroupTiming> {
    let expired = |(readings, read): &(Readings, Instant)| {
        let max_age = if readings.is_empty() {
            TIMING_RETRY
        } else if tuning.phase_lock {
            TIMING_MAX_AGE
        } else {
            TIMING_MAX_AGE_UNLOCKED
        };
        read.elapsed() > max_age
    };
    if source.timings.as_ref().is_none_or(expired) {
        read_timings(source, tuning, metrics).await;
    }
    let mut groups = source
        .timings
        .as_ref()
        .map(|(readings, _)| readings.estimate())
        .unwrap_or_default();
    source.lateness.apply(&mut groups, unix_ms());
    groups
}

/// Reads the timing of the groups holding alerts of any watched kind, adds
/// it to the source's readings and returns it as read.
pub(super) async fn read_timings(
    source: &mut Source,
    tuning: &Tuning,
    metrics: &Metrics,
) -> Vec<GroupTiming> {
    let Ok(client) = &source.client else {
        return Vec::new();
    };
    metrics.rule_timing_reads.inc();
    let prefixes: Vec<String> = tuning
        .matchers()
        .into_iter()
        .map(|m| m.alertname_prefix)
        .collect();
    let prefixes: Vec<&str> = prefixes.iter().map(String::as_str).collect();
    let groups = match client.rule_timings(&prefixes).await {
        Ok((mut groups, bytes)) => {
            for g in &mut groups {
                g.checked = phase::checks(g.interval_ms, bytes);
            }
            tracing::debug!(
                url = client.url(),
                groups = groups.len(),
                slowest_evaluation_ms = groups.iter().map(|g| g.evaluation_ms).max(),
                // Where in its interval each group started: a busy
                // Prometheus starts late.
                starts_ms = ?groups
                    .iter()
                    .map(|g| g.last_evaluation_ms.rem_euclid(g.interval_ms.max(1)))
                    .collect::<Vec<_>>(),
                "rule evaluation timing read"
            );
            groups
        }
        // Without phase locking the timing only bounds the query's
        // sample age, and the alerts request will report a down source.
        Err(error) if tuning.phase_lock => {
            tracing::warn!(url = client.url(), %error, "cannot read rule evaluation timing; polling unlocked");
            Vec::new()
        }
        Err(error) => {
            tracing::debug!(url = client.url(), %error, "cannot read rule evaluation timing");
            Vec::new()
        }
    };
    let mut readings = source.timings.take().map(|(r, _)| r).unwrap_or_default();
    readings.record(&groups);
    source.timings = Some((readings, Instant::now()));
    groups
}
