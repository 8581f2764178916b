//! How `check` prints its reports: `-o table` (the default), `wide`, `json`
//! and `yaml`, as kubectl spells them. Tables are for people and may change;
//! json and yaml are for scripts and keep their fields.

use super::judge::PipelineReport;

/// The output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Wide,
    Json,
    Yaml,
}

/// The reports in `format`, ending in a newline.
pub fn render(reports: &[PipelineReport], format: Format) -> String {
    match format {
        Format::Table => table(reports, false),
        Format::Wide => table(reports, true),
        Format::Json => {
            let mut out = serde_json::to_string_pretty(reports).expect("reports serialize");
            out.push('\n');
            out
        }
        Format::Yaml => serde_norway::to_string(reports).expect("reports serialize"),
    }
}

/// Aligned columns. The object's current condition is shown only when
/// something was read from a cluster; `wide` adds the message.
fn table(reports: &[PipelineReport], wide: bool) -> String {
    let with_current = reports.iter().any(|r| r.current.is_some());
    let mut header = vec!["KIND", "PIPELINE", "STATUS", "REASON"];
    if with_current {
        header.extend(["CURRENT", "CURRENT REASON"]);
    }
    if wide {
        header.push("MESSAGE");
    }
    let mut rows = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    for r in reports {
        let mut row = vec![
            r.kind.to_string(),
            r.pipeline.clone(),
            r.status.clone(),
            r.reason.clone(),
        ];
        if with_current {
            let (status, reason) = r
                .current
                .as_ref()
                .map_or(("-", "-"), |c| (c.status.as_str(), c.reason.as_str()));
            row.extend([status.to_owned(), reason.to_owned()]);
        }
        if wide {
            row.push(r.message.clone());
        }
        rows.push(row);
    }
    aligned(&rows)
}

/// Columns padded to their widest cell, two spaces apart; the last column
/// is not padded, so lines carry no trailing blanks.
fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == columns {
                out.push_str(cell);
            } else {
                let pad = widths[c] - cell.chars().count();
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::judge::Current;
    use alert_poller::domain::kind::Kind;

    fn report(name: &str, status: &str, current: Option<(&str, &str)>) -> PipelineReport {
        PipelineReport {
            kind: Kind::Metric,
            pipeline: name.into(),
            status: status.into(),
            reason: if status == "True" {
                "FlowHealthy"
            } else {
                "GatewayThrottling"
            }
            .into(),
            message: format!("message of {name}"),
            current: current.map(|(s, r)| Current {
                status: s.into(),
                reason: r.into(),
                message: String::new(),
            }),
        }
    }

    #[test]
    fn tables_align_and_show_the_current_condition_only_when_known() {
        let offline = [report("backend", "False", None), report("a", "True", None)];
        assert_eq!(
            render(&offline, Format::Table),
            "KIND    PIPELINE  STATUS  REASON\n\
             metric  backend   False   GatewayThrottling\n\
             metric  a         True    FlowHealthy\n"
        );
        let cluster = [
            report("backend", "False", Some(("True", "FlowHealthy"))),
            report("a", "True", None),
        ];
        let wide = render(&cluster, Format::Wide);
        let lines: Vec<&str> = wide.lines().collect();
        assert!(
            lines[0].starts_with(
                "KIND    PIPELINE  STATUS  REASON             CURRENT  CURRENT REASON  MESSAGE"
            ),
            "{wide}"
        );
        assert!(
            lines[1]
                .contains("False   GatewayThrottling  True     FlowHealthy     message of backend"),
            "{wide}"
        );
        assert!(
            lines[2].contains("True    FlowHealthy        -        -               message of a"),
            "{wide}"
        );
        assert!(wide.lines().all(|l| !l.ends_with(' ')));
    }

    #[test]
    fn json_and_yaml_carry_every_field_and_omit_an_unknown_current() {
        let reports = [
            report("backend", "False", Some(("True", "FlowHealthy"))),
            report("a", "True", None),
        ];
        let json: serde_json::Value =
            serde_json::from_str(&render(&reports, Format::Json)).unwrap();
        assert_eq!(json[0]["kind"], "metric");
        assert_eq!(json[0]["current"]["reason"], "FlowHealthy");
        assert!(json[1].get("current").is_none());
        let yaml: serde_json::Value =
            serde_norway::from_str(&render(&reports, Format::Yaml)).unwrap();
        assert_eq!(yaml, json);
    }
}
