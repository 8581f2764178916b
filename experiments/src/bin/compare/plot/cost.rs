//! The cost plots: requests and reconciles per minute against pipelines from
//! `summary.csv`, and Prometheus' CPU per design from `solo.csv`.

use std::collections::BTreeMap;

use alert_poller_experiments::figures::per_minute;

use super::axes::Axis;
use super::chart::{Chart, Kind, Point, Series};
use super::colours::rank;
use super::data::{Row, num, sweep, text};

/// `column` per minute while stable against pipelines, per design. Designs
/// at zero throughout are named in a note instead of drawn on the floor,
/// where they would hide each other.
pub fn per_pipelines(summary: &[Row], column: &str, what: &str, unit: &str) -> Chart {
    let rows = sweep(
        summary,
        "pipelines",
        &[("evaluation_s", 1.0), ("noise", 0.0)],
    );
    let mut by_design: BTreeMap<String, Vec<Point>> = BTreeMap::new();
    for r in rows {
        let Some(stable_s) = num(r, "stable_s").filter(|s| *s > 0.0) else {
            continue;
        };
        let pipelines = num(r, "pipelines").unwrap_or(0.0);
        let y = per_minute(num(r, column).unwrap_or(0.0), stable_s);
        by_design
            .entry(text(r, "design").into())
            .or_default()
            .push(Point::at(pipelines, y));
    }
    let (zero, drawn): (Vec<_>, Vec<_>) = by_design
        .into_iter()
        .partition(|(_, v)| v.iter().all(|p| p.y <= 0.0));
    let series: Vec<Series> = drawn
        .into_iter()
        .map(|(label, mut points)| {
            points.sort_by(|a, b| a.x.total_cmp(&b.x));
            Series { label, points }
        })
        .collect();
    let xs: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.x))
        .collect();
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.y))
        .collect();
    Chart {
        title: format!("{what} per minute while stable"),
        subtitle: "1 s evaluation, no unrelated alerts; stable: no faults, nothing changes".into(),
        x_title: "pipelines (Metric, Trace and Log together)".into(),
        y_title: format!("{unit} per minute"),
        x: Axis::auto(&xs),
        y: Axis::auto(&ys),
        kind: Kind::Lines,
        notes: [
            coinciding(&series),
            zero_note(zero.into_iter().map(|(label, _)| label).collect()),
        ]
        .concat(),
        series,
    }
}

/// Designs drawn on top of each other (every point within 5% of the
/// other's), named so that a reader knows the hidden ones are there.
fn coinciding(series: &[Series]) -> Vec<String> {
    let same = |a: &Series, b: &Series| {
        a.points.len() == b.points.len()
            && a.points
                .iter()
                .zip(&b.points)
                .all(|(p, q)| p.x == q.x && (p.y - q.y).abs() <= 0.05 * p.y.abs().max(q.y.abs()))
    };
    let mut groups: Vec<Vec<&Series>> = Vec::new();
    for s in series {
        match groups.iter_mut().find(|g| same(g[0], s)) {
            Some(g) => g.push(s),
            None => groups.push(vec![s]),
        }
    }
    groups
        .into_iter()
        .filter(|g| g.len() > 1)
        .map(|g| {
            let names: Vec<&str> = g.iter().map(|s| s.label.as_str()).collect();
            format!("On top of each other: {}.", names.join(", "))
        })
        .collect()
}

/// "None at any point: a, b, c", wrapped, for designs not drawn.
fn zero_note(mut labels: Vec<String>) -> Vec<String> {
    if labels.is_empty() {
        return Vec::new();
    }
    labels.sort_by_key(|l| rank(l));
    let mut lines = vec![String::from("None at any number of pipelines (not drawn):")];
    let count = labels.len();
    for (i, label) in labels.into_iter().enumerate() {
        let label = label + if i + 1 < count { "," } else { "." };
        let last = lines.last_mut().expect("a line");
        if last.len() + label.len() > 100 {
            lines.push(label);
        } else {
            last.push(' ');
            last.push_str(&label);
        }
    }
    lines
}

/// Prometheus CPU seconds per minute with each design alone, and with none
/// (`baseline`).
pub fn solo_cpu(solo: &[Row]) -> Vec<(String, f64)> {
    solo.iter()
        .filter_map(|r| {
            Some((
                r.get("design")?.clone(),
                per_minute(num(r, "prometheus_cpu_s")?, num(r, "measured_s")?),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn designs_at_zero_are_named_not_drawn() {
        let row = |design: &str, pipelines: &str, reconciles: &str| -> Row {
            [
                ("design", design),
                ("pipelines", pipelines),
                ("stable_s", "60"),
                ("stable_reconciles", reconciles),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
        };
        let rows = [
            row("push-all", "1", "2"),
            row("push-all", "10", "20"),
            row("pull-fixed-1s", "1", "0"),
            row("pull-fixed-1s", "10", "0"),
        ];
        let chart = per_pipelines(&rows, "stable_reconciles", "Reconciles", "reconciles");
        assert_eq!(chart.series.len(), 1);
        assert_eq!(chart.series[0].label, "push-all");
        assert!(
            chart.notes[0].ends_with(": pull-fixed-1s."),
            "{:?}",
            chart.notes
        );
    }
}
