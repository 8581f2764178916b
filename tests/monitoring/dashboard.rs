//! The Grafana dashboard of the monitoring component, read as Grafana would
//! run it: each panel's queries with the dashboard's variables filled in,
//! asked of the scraping Prometheus.

use std::path::Path;

use anyhow::{Context as _, Result, ensure};
use serde_json::{Value, json};

use super::scraper::Scraper;
use super::{NAMESPACE, repo};

/// The dashboard as shipped (the component's ConfigMap holds this file).
pub const DASHBOARD: &str = "deploy/monitoring/dashboard.json";

/// What Grafana puts in for `$__rate_interval` at a 1 s scrape interval
/// and a narrow graph (four scrapes and more); also `$__interval`.
const RATE_INTERVAL: &str = "10s";

/// One panel and its queries.
pub struct Panel {
    pub title: String,
    pub value: Value,
    /// (refId, PromQL with the variables filled in, legend format).
    pub queries: Vec<(String, String, String)>,
}

pub fn load() -> Result<Value> {
    let text = std::fs::read_to_string(repo(DASHBOARD))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {DASHBOARD}"))
}

/// `expr` as Grafana sends it for namespace `NAMESPACE`.
pub fn substitute(expr: &str) -> String {
    expr.replace("${namespace}", NAMESPACE)
        .replace("$namespace", NAMESPACE)
        .replace("$__rate_interval", RATE_INTERVAL)
        .replace("$__interval", RATE_INTERVAL)
}

/// Every panel with at least one query, in the file's order.
pub fn panels(dashboard: &Value) -> Vec<Panel> {
    let empty = Vec::new();
    let all = dashboard["panels"].as_array().unwrap_or(&empty);
    all.iter()
        .map(|p| Panel {
            title: p["title"].as_str().unwrap_or_default().to_owned(),
            value: p.clone(),
            queries: p["targets"]
                .as_array()
                .unwrap_or(&empty)
                .iter()
                .map(|t| {
                    let field = |k: &str| t[k].as_str().unwrap_or_default().to_owned();
                    (
                        field("refId"),
                        substitute(&field("expr")),
                        field("legendFormat"),
                    )
                })
                .collect(),
        })
        .filter(|p| !p.queries.is_empty())
        .collect()
}

/// What the dashboard needs of itself before any query: the two variables
/// every panel relies on, every panel on `$datasource` (no fixed data
/// source), and every query scoped to `$namespace`.
pub fn well_formed(dashboard: &Value) -> Result<()> {
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str())
        .collect();
    ensure!(
        variables == ["datasource", "namespace"],
        "variables {variables:?}"
    );
    for p in dashboard["panels"].as_array().into_iter().flatten() {
        let title = &p["title"];
        ensure!(
            p["datasource"]["uid"] == "${datasource}",
            "panel {title} does not use $datasource"
        );
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap_or_default();
            ensure!(
                expr.contains("$namespace"),
                "panel {title}: {expr} ignores $namespace"
            );
        }
    }
    Ok(())
}

/// Every query of every panel returns at least one series, and the
/// namespace variable offers the namespace the controller runs in.
pub async fn every_query_answers(scraper: &Scraper, dashboard: &Value) -> Result<usize> {
    well_formed(dashboard)?;
    let variable = dashboard["templating"]["list"][1]["definition"]
        .as_str()
        .unwrap_or_default();
    let metric = variable
        .strip_prefix("label_values(")
        .and_then(|v| v.split(',').next())
        .context("the namespace variable is not label_values(metric, namespace)")?;
    let offered = scraper
        .query(&format!("count by (namespace) ({metric})"))
        .await?;
    ensure!(
        offered
            .iter()
            .any(|s| s["metric"]["namespace"] == NAMESPACE),
        "$namespace would not offer {NAMESPACE}: {offered:?}"
    );
    let mut asked = 0;
    for panel in panels(dashboard) {
        for (ref_id, expr, _) in &panel.queries {
            let series = scraper.query(expr).await?;
            ensure!(
                !series.is_empty(),
                "panel {:?} query {ref_id} returns nothing: {expr}",
                panel.title
            );
            asked += 1;
        }
    }
    Ok(asked)
}

/// The run so far: its range in Unix seconds, and when each step began.
pub type Run<'a> = ((f64, f64), &'a [(f64, String)]);

/// Writes each panel's answers over the run to `dir/dashboard-data.json`,
/// for scripts/dashboard_png.py (which draws a stat from the last point of
/// its range), with the steps as marks.
pub async fn dump(
    scraper: &Scraper,
    dashboard: &Value,
    (range, marks): Run<'_>,
    dir: &Path,
) -> Result<()> {
    let step = ((range.1 - range.0) / 300.0).max(1.0);
    let mut out = Vec::new();
    for panel in panels(dashboard) {
        let mut targets = Vec::new();
        for (ref_id, expr, legend) in &panel.queries {
            let result = scraper.query_range(expr, range, step).await?;
            targets.push(
                json!({"refId": ref_id, "expr": expr, "legendFormat": legend, "result": result}),
            );
        }
        out.push(json!({
            "title": panel.title,
            "type": panel.value["type"],
            "gridPos": panel.value["gridPos"],
            "unit": panel.value["fieldConfig"]["defaults"]["unit"],
            "mappings": panel.value["fieldConfig"]["defaults"]["mappings"],
            "targets": targets,
        }));
    }
    std::fs::create_dir_all(dir)?;
    let marks: Vec<Value> = marks
        .iter()
        .map(|(time, step)| json!({"time": time, "step": step}))
        .collect();
    let data =
        json!({"start": range.0, "end": range.1, "step": step, "panels": out, "marks": marks});
    std::fs::write(
        dir.join("dashboard-data.json"),
        serde_json::to_string_pretty(&data)?,
    )?;
    Ok(())
}
