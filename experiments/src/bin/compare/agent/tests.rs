use super::*;

/// Every result class the poller records: `success`, `client` (no
/// client could be built) and each `PollError::kind()`.
const CLASSES: [&str; 12] = [
    "success",
    "client",
    "token_file",
    "connect",
    "timeout",
    "transport",
    "retry_later",
    "http_status",
    "content_type",
    "too_large",
    "decode",
    "prometheus_error",
];

fn alert(labels: &[(&str, &str)]) -> Notified {
    Notified {
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// The webhook's routing, as telemetry-manager's handler does it: per
/// kind, by that kind's matcher, over the pipelines that exist.
// Unformatted so the cases stay one per line.
#[rustfmt::skip]
#[test]
fn a_notification_requeues_what_its_alerts_concern_per_kind() {
    // p0 metric, p1 trace, p2 log, p3 metric, p4 trace, p5 log.
    let pipelines = crate::pipelines::dealt(6);
    let matchers = Matcher::all();
    let names = |alerts: &[Notified]| -> Vec<String> {
        notified(alerts, &matchers, &pipelines)
            .into_iter()
            .map(|p| p.to_string())
            .collect()
    };
    let scoped = |name: &str, pipeline: &str, kind: &str| {
        alert(&[("alertname", name), ("pipeline_name", pipeline), ("pipeline_type", kind)])
    };
    for (alerts, want) in [
        (vec![], vec![]),
        (vec![scoped("TraceGatewayExporterDroppedData", "p1", "tracepipeline")], vec!["tracepipeline/p1"]),
        // A name of the wrong kind, or one that no pipeline has: nobody.
        (vec![scoped("MetricGatewayExporterDroppedData", "p1", "metricpipeline")], vec![]),
        (vec![scoped("LogGatewayExporterDroppedData", "p9", "logpipeline")], vec![]),
        // Unscoped: every pipeline of its own kind only.
        (vec![alert(&[("alertname", "LogGatewayThrottling")])], vec!["logpipeline/p2", "logpipeline/p5"]),
        // Several alerts in one notification, of different kinds.
        (
            vec![
                scoped("MetricAgentExporterDroppedData", "p3", "metricpipeline"),
                scoped("LogAgentBufferFull", "p5", "logpipeline"),
                alert(&[("alertname", "NoiseAlert")]),
            ],
            vec!["metricpipeline/p3", "logpipeline/p5"],
        ),
    ] {
        let labels: Vec<_> = alerts.iter().map(|a| &a.labels).collect();
        assert_eq!(names(&alerts), want, "{labels:?}");
    }
}

#[test]
fn counts_polls_of_every_result_class() {
    let mut text = String::from(
        "# HELP alert_poller_polls Polls of Prometheus alerts, by result.\n\
             # TYPE alert_poller_polls counter\n",
    );
    // Class i polled i + 1 times: 1 + 2 + ... + 12.
    for (i, class) in CLASSES.iter().enumerate() {
        text.push_str(&format!("{POLLS}{{result=\"{class}\"}} {}\n", i + 1));
    }
    // A class no one has heard of yet counts as well.
    text.push_str(&format!("{POLLS}{{result=\"next_kind\"}} 100\n"));
    // Neighbours that are not polls do not.
    text.push_str(
        "alert_poller_poll_duration_seconds_count 78\n\
             alert_poller_rule_timing_reads_total 9\n\
             # EOF\n",
    );
    assert_eq!(polls_in(&text), 78 + 100);
    assert_eq!(polls_in(""), 0);
    assert_eq!(polls_in(&format!("{POLLS}{{result=\"success\"}} 1\n")), 1);
}

#[test]
fn counts_what_the_poller_records() {
    let (metrics, _) = Metrics::new();
    assert_eq!(polls_made(&metrics), 0);
    for (i, class) in CLASSES.iter().enumerate() {
        for _ in 0..=i {
            metrics.record_poll(class, Duration::from_millis(1));
        }
    }
    assert_eq!(polls_made(&metrics), 78);
}

#[test]
fn incarnations_merge_into_one_report() {
    let seen = |status: &str, unix_ms| Detection {
        pipeline: "p1".into(),
        pipeline_kind: "trace".into(),
        status: status.into(),
        unix_ms,
    };
    let first = AgentReport {
        detections: vec![seen("True", 10)],
        notifications: 2,
        prometheus_requests: 3,
        prometheus_bytes: 400,
        reconciles: 5,
        status_writes: 1,
        cpu_seconds: 0.5,
        peak_rss_kib: 9_000,
    };
    let second = AgentReport {
        detections: vec![seen("False", 20)],
        peak_rss_kib: 8_000,
        ..first.clone()
    };
    let m = merged(&[first, second]);
    let statuses: Vec<&str> = m.detections.iter().map(|d| d.status.as_str()).collect();
    assert_eq!(statuses, ["True", "False"]);
    assert_eq!(
        (
            m.notifications,
            m.prometheus_requests,
            m.prometheus_bytes,
            m.reconciles
        ),
        (4, 6, 800, 10)
    );
    assert_eq!(
        (m.status_writes, m.cpu_seconds, m.peak_rss_kib),
        (2, 1.0, 9_000)
    );
    assert!(merged(&[]).detections.is_empty());
}
