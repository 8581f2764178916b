//! alert-poller's own metrics, served on `/metrics` in OpenMetrics text.
//!
//! Names follow Prometheus conventions: `alert_poller_` prefix, base units
//! (seconds, bytes), `_total` on counters (added by the encoder).

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::domain::kind::Kind;
use crate::operations::beside_metrics::BesideMetrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `success` or the error class.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceResultLabels {
    /// The source's URL, credentials removed.
    pub source: String,
    /// `success` or the error class.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    /// The source's URL, credentials removed.
    pub source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindStateLabels {
    /// The pipeline kind: `metric`, `trace` or `log`.
    pub kind: String,
    /// `firing` or `pending`.
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChangeLabels {
    /// `added` or `removed`.
    pub change: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    /// The pipeline kind: `metric`, `trace` or `log`.
    pub kind: String,
    /// The condition status written: `True`, `False` or `Unknown`.
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// The pipeline kind: `metric`, `trace` or `log`.
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindResultLabels {
    /// The pipeline kind: `metric`, `trace` or `log`.
    pub kind: String,
    /// `success` or the error class.
    pub result: String,
}

/// Every metric the controller exports, registered once at start.
#[derive(Debug)]
pub struct Metrics {
    pub polls: Family<ResultLabels, Counter>,
    pub source_requests: Family<SourceResultLabels, Counter>,
    pub source_warnings: Family<SourceLabels, Counter>,
    pub poll_duration: Histogram,
    pub response_bytes: Counter,
    pub active_alerts: Family<KindStateLabels, Gauge>,
    pub alert_changes: Family<ChangeLabels, Counter>,
    pub pipelines_requeued: Family<KindLabels, Counter>,
    pub full_requeues: Family<KindLabels, Counter>,
    pub reconciles: Family<KindResultLabels, Counter>,
    pub reconcile_duration: Family<KindLabels, Histogram>,
    pub status_writes: Family<StatusLabels, Counter>,
    pub status_write_conflicts: Family<KindLabels, Counter>,
    pub poll_interval: Gauge<f64, AtomicU64>,
    pub last_success: Gauge<f64, AtomicU64>,
    pub stale: Gauge,
    pub config_valid: Gauge,
    pub config_reloads: Family<ResultLabels, Counter>,
    pub leader: Gauge,
    pub rule_timing_reads: Counter,
    pub phase_rechecks: Counter,
    pub settling: Gauge,
    /// Beside another writer of the condition, and shadow mode.
    pub beside: BesideMetrics,
}

const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

impl Metrics {
    /// Creates the metrics and registers them in a fresh registry, beside
    /// the build and process figures every exporter is expected to have.
    pub fn new() -> (Metrics, Registry) {
        let mut root = Registry::default();
        crate::operations::process_metrics::register(&mut root);
        let registry = root.sub_registry_with_prefix("alert_poller");
        let m = Metrics {
            polls: Family::default(),
            source_requests: Family::default(),
            source_warnings: Family::default(),
            poll_duration: Histogram::new(LATENCY_BUCKETS),
            response_bytes: Counter::default(),
            active_alerts: Family::default(),
            alert_changes: Family::default(),
            pipelines_requeued: Family::default(),
            full_requeues: Family::default(),
            reconciles: Family::default(),
            reconcile_duration: Family::new_with_constructor(latency_histogram),
            status_writes: Family::default(),
            status_write_conflicts: Family::default(),
            poll_interval: Gauge::default(),
            last_success: Gauge::default(),
            stale: Gauge::default(),
            config_valid: Gauge::default(),
            config_reloads: Family::default(),
            leader: Gauge::default(),
            rule_timing_reads: Counter::default(),
            phase_rechecks: Counter::default(),
            settling: Gauge::default(),
            beside: BesideMetrics::register(registry),
        };
        m.register_polls(registry);
        m.register_alerts_and_reconciles(registry);
        m.register_process_state(registry);
        m.config_valid.set(1);
        (m, root)
    }

    /// The poll loop: how polls went, how long they took, when the next is due.
    fn register_polls(&self, r: &mut Registry) {
        r.register(
            "polls",
            "Polls of Prometheus alerts, by result",
            self.polls.clone(),
        );
        r.register(
            "source_requests",
            "Alert requests to each source, by result; a poll succeeds while any source answers",
            self.source_requests.clone(),
        );
        r.register(
            "source_warnings",
            "Warnings in a source's answers, such as a Thanos partial response",
            self.source_warnings.clone(),
        );
        r.register_with_unit(
            "poll_duration",
            "Time of one poll, request and decoding",
            Unit::Seconds,
            self.poll_duration.clone(),
        );
        r.register_with_unit(
            "prometheus_response",
            "Bytes of alerts responses read (after decompression)",
            Unit::Bytes,
            self.response_bytes.clone(),
        );
        r.register_with_unit(
            "poll_interval",
            "Delay until the next poll, as last scheduled",
            Unit::Seconds,
            self.poll_interval.clone(),
        );
        r.register_with_unit(
            "last_successful_poll_timestamp",
            "Unix time of the last successful poll",
            Unit::Seconds,
            self.last_success.clone(),
        );
        r.register(
            "rule_timing_reads",
            "Reads of /api/v1/rules for phase-locked polling",
            self.rule_timing_reads.clone(),
        );
        r.register(
            "phase_rechecks",
            "Phase-locked polls asked again because they may have read a rule group halfway through its evaluation",
            self.phase_rechecks.clone(),
        );
        r.register(
            "prometheus_settling",
            "1 while a source that started lately may not show every firing alert yet: the alerts that fired before are kept and no verdict turns healthy",
            self.settling.clone(),
        );
    }

    /// What the polls found, and what the controllers did about it.
    fn register_alerts_and_reconciles(&self, r: &mut Registry) {
        r.register(
            "active_alerts",
            "Alerts of the pipeline kind at the last successful poll, by state",
            self.active_alerts.clone(),
        );
        r.register(
            "alert_changes",
            "Firing alerts that appeared or went away between polls",
            self.alert_changes.clone(),
        );
        r.register(
            "pipelines_requeued",
            "Pipelines queued for reconcile because their alerts changed",
            self.pipelines_requeued.clone(),
        );
        r.register(
            "full_requeues",
            "Times every pipeline was queued (unscoped alert change, staleness, recovery, tuning change)",
            self.full_requeues.clone(),
        );
        r.register(
            "reconciles",
            "Reconciles, by result",
            self.reconciles.clone(),
        );
        r.register_with_unit(
            "reconcile_duration",
            "Time of one reconcile",
            Unit::Seconds,
            self.reconcile_duration.clone(),
        );
        r.register(
            "status_writes",
            "Condition writes to the API server, by written status",
            self.status_writes.clone(),
        );
        r.register(
            "status_write_conflicts",
            "Condition writes refused because another writer changed the object since it was read (then re-read and retried)",
            self.status_write_conflicts.clone(),
        );
    }

    /// The replica's own state: its tuning, whether it leads, whether what
    /// it knows has gone stale.
    fn register_process_state(&self, r: &mut Registry) {
        r.register(
            "stale",
            "1 while no poll succeeded within staleAfter and pipelines are Unknown",
            self.stale.clone(),
        );
        r.register(
            "config_valid",
            "1 if the last ConfigMap read was valid, 0 if it was refused",
            self.config_valid.clone(),
        );
        r.register(
            "config_reloads",
            "ConfigMap reads, by result",
            self.config_reloads.clone(),
        );
        r.register(
            "leader",
            "1 while this replica holds the leader lease and runs the poller and controller",
            self.leader.clone(),
        );
    }

    pub fn record_poll(&self, result: &str, took: Duration) {
        self.polls
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
        self.poll_duration.observe(took.as_secs_f64());
    }

    pub fn record_reconcile(&self, kind: Kind, result: &str, took: Duration) {
        self.reconciles
            .get_or_create(&KindResultLabels {
                kind: kind.as_str().to_owned(),
                result: result.to_owned(),
            })
            .inc();
        self.reconcile_duration
            .get_or_create(&KindLabels {
                kind: kind.as_str().to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn record_write_conflict(&self, kind: Kind) {
        self.status_write_conflicts
            .get_or_create(&KindLabels {
                kind: kind.as_str().to_owned(),
            })
            .inc();
    }

    pub fn record_status_write(&self, kind: Kind, status: &str) {
        self.status_writes
            .get_or_create(&StatusLabels {
                kind: kind.as_str().to_owned(),
                status: status.to_owned(),
            })
            .inc();
    }

    /// Pipelines of `kind` queued for reconcile; `all` when every one was.
    pub fn record_requeue(&self, kind: Kind, pipelines: usize, all: bool) {
        let labels = KindLabels {
            kind: kind.as_str().to_owned(),
        };
        self.pipelines_requeued
            .get_or_create(&labels)
            .inc_by(pipelines as u64);
        if all {
            self.full_requeues.get_or_create(&labels).inc();
        }
    }

    pub fn record_config(&self, valid: bool) {
        self.config_valid.set(i64::from(valid));
        let result = if valid { "valid" } else { "invalid" };
        self.config_reloads
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
    }
}

/// Renders the registry in OpenMetrics text.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)
        .expect("writing to a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_prefix_units_and_total() {
        let (m, registry) = Metrics::new();
        m.record_poll("success", Duration::from_millis(3));
        m.record_status_write(Kind::Trace, "False");
        m.poll_interval.set(1.5);
        let text = render(&registry);
        for name in [
            "alert_poller_polls_total{result=\"success\"} 1",
            "alert_poller_poll_duration_seconds_count 1",
            "alert_poller_status_writes_total{kind=\"trace\",status=\"False\"} 1",
            "alert_poller_poll_interval_seconds 1.5",
            "alert_poller_config_valid 1",
            "alert_poller_prometheus_response_bytes_total 0",
            "alert_poller_build_info{version=\"",
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_start_time_seconds ",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }
}
