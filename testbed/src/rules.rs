//! The shipped alert rules (config/prometheus/rules.yaml), sped up.

use std::time::Duration;

/// The rules as shipped: 5m rate windows, `for: 1m`, evaluated every 30s.
pub const SHIPPED: &str = include_str!("../../config/prometheus/rules.yaml");

/// The shipped scrape job, whose metric relabeling derives `pipeline_name`
/// and `pipeline_type` from the exporters' names and Fluent Bit's plugin names.
pub const SHIPPED_SCRAPE: &str = include_str!("../../config/prometheus/scrape.yaml");

/// The `metric_relabel_configs` of the shipped scrape job, as one line of
/// JSON (which is YAML too), to put into a test Prometheus' own job.
pub fn shipped_metric_relabeling() -> String {
    let doc: serde_norway::Value =
        serde_norway::from_str(SHIPPED_SCRAPE).expect("scrape.yaml is YAML");
    let relabel = &doc["scrape_configs"][0]["metric_relabel_configs"];
    assert!(
        relabel.is_sequence(),
        "scrape.yaml changed shape: update testbed::rules"
    );
    serde_json::to_string(relabel).expect("YAML values serialize as JSON")
}

/// Scrape jobs for the collector stand-in at `collector`, as a real
/// cluster's would see it: the gateway, the metric agent, the log agent and
/// Fluent Bit each with the `service` label of its Kubernetes Service (what
/// the shipped job's service discovery sets) and the shipped metric
/// relabeling, word for word.
pub fn collector_jobs(collector: std::net::SocketAddr) -> String {
    let relabel = shipped_metric_relabeling();
    let mut jobs = String::new();
    for (job, path, service) in [
        ("otlp-gateway", "/gateway", "telemetry-otlp-gateway-metrics"),
        ("metric-agent", "/agent", "telemetry-metric-agent-metrics"),
        ("log-agent", "/log-agent", "telemetry-log-agent-metrics"),
        ("fluent-bit", "/fluent-bit", "telemetry-fluent-bit-metrics"),
    ] {
        jobs.push_str(&format!(
            "  - job_name: {job}\n    metrics_path: {path}\n    static_configs: [{{targets: ['{collector}'], labels: {{service: {service}}}}}]\n    metric_relabel_configs: {relabel}\n"
        ));
    }
    jobs.push_str(&format!(
        "  - job_name: noise\n    metrics_path: /noise\n    static_configs: [{{targets: ['{collector}']}}]\n"
    ));
    jobs
}

/// A rule group that fires one `NoiseAlert` per `noise_active` series the
/// collector serves: alerts that concern no pipeline, so the experiments can
/// vary how many active alerts every `/api/v1/alerts` answer carries.
pub const NOISE: &str = "  - name: noise
    rules:
      - alert: NoiseAlert
        expr: noise_active > 0
        labels:
          severity: info
";

/// `rules` (a rules file) with the [`NOISE`] group appended.
pub fn with_noise(rules: &str) -> String {
    format!("{}\n{NOISE}", rules.trim_end())
}

/// The shipped rules with the rate window, the `for` and the evaluation
/// interval replaced, so a test sees an alert within seconds. Only those three
/// change; the expressions and labels are exactly what users deploy.
pub fn fast(window: Duration, hold: Duration, interval: Duration) -> String {
    let d = |d: Duration| format!("{}ms", d.as_millis());
    let out = SHIPPED
        .replace("[5m]", &format!("[{}]", d(window)))
        .replace("for: 1m", &format!("for: {}", d(hold)))
        .replace("interval: 30s", &format!("interval: {}", d(interval)));
    assert!(
        !out.contains("[5m]") && !out.contains("for: 1m") && !out.contains("interval: 30s"),
        "rules.yaml changed shape: update testbed::rules::fast"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_rules_replace_all_three_knobs() {
        let r = fast(
            Duration::from_secs(3),
            Duration::ZERO,
            Duration::from_secs(1),
        );
        assert!(r.contains("[3000ms]") && r.contains("for: 0ms") && r.contains("interval: 1000ms"));
        assert_eq!(r.matches("- alert: Metric").count(), 5);
        assert_eq!(r.matches("- alert: Trace").count(), 3);
        assert_eq!(r.matches("- alert: Log").count(), 9);
        // One group: one evaluation updates every alert.
        let intervals: Vec<&str> = r
            .lines()
            .filter(|l| l.trim_start().starts_with("interval:"))
            .collect();
        assert_eq!(intervals, ["    interval: 1000ms"]);
        // Only the three knobs changed: putting them back gives the shipped
        // rules.
        let back = r
            .replace("[3000ms]", "[5m]")
            .replace("for: 0ms", "for: 1m")
            .replace("interval: 1000ms", "interval: 30s");
        assert_eq!(back, SHIPPED);
    }

    #[test]
    fn collector_jobs_carry_the_shipped_relabeling_and_services() {
        let jobs = collector_jobs("127.0.0.1:9".parse().unwrap());
        let doc: serde_norway::Value = serde_norway::from_str(&jobs).expect("valid YAML");
        let jobs = doc.as_sequence().expect("a list of jobs");
        assert_eq!(jobs.len(), 5);
        let shipped: serde_norway::Value = serde_norway::from_str(SHIPPED_SCRAPE).unwrap();
        let relabel = &shipped["scrape_configs"][0]["metric_relabel_configs"];
        for (job, service) in [
            (0, "telemetry-otlp-gateway-metrics"),
            (1, "telemetry-metric-agent-metrics"),
            (2, "telemetry-log-agent-metrics"),
            (3, "telemetry-fluent-bit-metrics"),
        ] {
            assert_eq!(&jobs[job]["metric_relabel_configs"], relabel);
            assert_eq!(jobs[job]["static_configs"][0]["labels"]["service"], service);
        }
    }

    #[test]
    fn noise_is_a_group_of_its_own_after_the_shipped_ones() {
        let r = with_noise(SHIPPED);
        let doc: serde_norway::Value = serde_norway::from_str(&r).expect("valid YAML");
        let groups = doc["groups"].as_sequence().expect("groups");
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[1]["name"], "noise");
        assert_eq!(groups[1]["rules"][0]["alert"], "NoiseAlert");
    }
}
