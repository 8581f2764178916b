//! The shipped alert rules (config/prometheus/rules.yaml), sped up.

use std::time::Duration;

/// The rules as shipped: 5m rate windows, `for: 1m`, evaluated every 30s.
pub const SHIPPED: &str = include_str!("../../config/prometheus/rules.yaml");

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
    }

    #[test]
    fn noise_is_a_group_of_its_own_after_the_shipped_ones() {
        let r = with_noise(SHIPPED);
        let doc: serde_yaml::Value = serde_yaml::from_str(&r).expect("valid YAML");
        let groups = doc["groups"].as_sequence().expect("groups");
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[1]["name"], "noise");
        assert_eq!(groups[1]["rules"][0]["alert"], "NoiseAlert");
    }
}
