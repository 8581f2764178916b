//! The rules of `deploy/monitoring/prometheusrule.yaml`, taken out of the
//! PrometheusRule at test time (there is no second copy to go stale): as
//! promtool's unit tests see them, and as the live Prometheus evaluates them.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, Result, bail, ensure};
use serde_json::Value;

use super::repo;

/// The PrometheusRule the monitoring component ships.
pub const PROMETHEUS_RULE: &str = "deploy/monitoring/prometheusrule.yaml";
/// promtool's unit tests of those rules.
pub const UNIT_TESTS: &str = "tests/monitoring/rules_test.yaml";

/// The live Prometheus evaluates every rule with this `for`: the promtool
/// tests prove the real durations, the live run proves that each expression
/// matches what the controller really exports, in seconds instead of
/// minutes.
pub const LIVE_FOR: &str = "0s";

/// Thresholds in an expression that are durations too, scaled down the same
/// way for the live run: (alert, as shipped, live). Each must occur exactly
/// once, so a changed rule fails here instead of being tested unchanged.
/// The rate windows ([5m], [30m]) stay: a window longer than the run holds
/// the run's samples, which is all a rate above zero needs.
const LIVE_THRESHOLDS: [(&str, &str, &str); 1] = [("AlertPollerNoSuccessfulPoll", "> 120", "> 5")];

fn yaml_file(path: &str) -> Result<Value> {
    let text = std::fs::read_to_string(repo(path)).with_context(|| format!("reading {path}"))?;
    serde_norway::from_str(&text).with_context(|| format!("parsing {path}"))
}

/// `spec.groups` of the shipped PrometheusRule.
pub fn shipped_groups() -> Result<Value> {
    let rule = yaml_file(PROMETHEUS_RULE)?;
    ensure!(
        rule["kind"] == "PrometheusRule" && rule["apiVersion"] == "monitoring.coreos.com/v1",
        "{PROMETHEUS_RULE} is not a monitoring.coreos.com/v1 PrometheusRule"
    );
    let groups = rule["spec"]["groups"].clone();
    ensure!(groups.is_array(), "{PROMETHEUS_RULE} has no spec.groups");
    Ok(groups)
}

/// A Prometheus rules file holding `groups`.
pub fn rules_file(groups: &Value) -> Result<String> {
    Ok(serde_norway::to_string(
        &serde_json::json!({ "groups": groups }),
    )?)
}

fn rules_mut(groups: &mut Value) -> impl Iterator<Item = &mut Value> {
    groups
        .as_array_mut()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array_mut().into_iter().flatten())
}

/// Every alert's name, in the file's order.
pub fn alert_names(groups: &Value) -> Vec<String> {
    let mut groups = groups.clone();
    rules_mut(&mut groups)
        .filter_map(|r| r["alert"].as_str().map(str::to_owned))
        .collect()
}

/// The groups as promtool's unit tests see them: without annotations,
/// which promtool would compare word for word.
pub fn without_annotations(groups: &Value) -> Value {
    let mut groups = groups.clone();
    for rule in rules_mut(&mut groups) {
        if let Some(rule) = rule.as_object_mut() {
            rule.remove("annotations");
        }
    }
    groups
}

/// The groups as the live Prometheus evaluates them: every `for` at
/// [`LIVE_FOR`], and [`LIVE_THRESHOLDS`] applied.
pub fn live(groups: &Value) -> Result<Value> {
    let mut groups = groups.clone();
    for rule in rules_mut(&mut groups) {
        if rule.get("for").is_some() {
            rule["for"] = LIVE_FOR.into();
        }
        let alert = rule["alert"].as_str().unwrap_or_default().to_owned();
        for (_, from, to) in LIVE_THRESHOLDS.iter().filter(|(a, ..)| *a == alert) {
            let expr = rule["expr"].as_str().unwrap_or_default();
            ensure!(
                expr.matches(from).count() == 1,
                "{alert}: expected `{from}` once in its expression, to scale it for the live run: {expr}"
            );
            rule["expr"] = expr.replace(from, to).into();
        }
    }
    Ok(groups)
}

fn promtool() -> String {
    std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into())
}

fn run_promtool(args: &[&str], dir: &Path) -> Result<String> {
    let out = Command::new(promtool())
        .args(args)
        .current_dir(dir)
        .output()
        .with_context(|| format!("cannot run {} (Debian's prometheus package)", promtool()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!("promtool {}:\n{text}", args.join(" "));
    }
    Ok(text)
}

/// Every alert has a case where it fires and one where it must not, in the
/// unit tests: a new alert without tests fails here.
fn every_alert_is_tested(names: &[String]) -> Result<()> {
    let tests = yaml_file(UNIT_TESTS)?;
    let cases: Vec<&Value> = tests["tests"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|t| t["alert_rule_test"].as_array().into_iter().flatten())
        .collect();
    for name in names {
        let of = |firing: bool| {
            cases.iter().any(|c| {
                c["alertname"] == name.as_str()
                    && c["exp_alerts"]
                        .as_array()
                        .is_some_and(|a| a.is_empty() != firing)
            })
        };
        ensure!(
            of(true) && of(false),
            "{UNIT_TESTS} must show {name} firing and not firing"
        );
    }
    Ok(())
}

/// `promtool check rules` on the shipped groups (annotations and their
/// templates included), then `promtool test rules` on the unit tests.
pub fn promtool_unit_tests() -> Result<()> {
    let groups = shipped_groups()?;
    let names = alert_names(&groups);
    every_alert_is_tested(&names)?;
    let dir = alert_poller_testbed::TempDir::new("monitoring-promtool")?;
    std::fs::write(dir.path().join("shipped.yaml"), rules_file(&groups)?)?;
    run_promtool(&["check", "rules", "shipped.yaml"], dir.path())?;
    std::fs::write(
        dir.path().join("rules.yaml"),
        rules_file(&without_annotations(&groups))?,
    )?;
    std::fs::copy(repo(UNIT_TESTS), dir.path().join("rules_test.yaml"))?;
    let out = run_promtool(&["test", "rules", "rules_test.yaml"], dir.path())?;
    ensure!(out.contains("SUCCESS"), "promtool said:\n{out}");
    println!(
        "    promtool: {} alerts checked and unit-tested ({})",
        names.len(),
        names.join(", ")
    );
    Ok(())
}
