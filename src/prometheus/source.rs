//! Where the alerts are read. `/api/v1/alerts` answers with every active
//! alert of the Prometheus, so in a shared cluster a poll reads and decodes
//! every other team's alerts only to drop them. An instant query of the
//! `ALERTS` series can ask for our alert names only: the server filters, and
//! the answer no longer grows with the rest of the cluster. Both give the
//! same alerts (same labels, same state), so switching changes no verdict.

use std::fmt;

use crate::alerts::Matcher;
use crate::config::Setting;

/// How the poller asks Prometheus for the alerts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertSource {
    /// `GET /api/v1/alerts`: every active alert, filtered here.
    Alerts,
    /// `GET /api/v1/query` of `ALERTS{alertname=~"<prefixes>.*"}`: only ours.
    Query,
}

impl AlertSource {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertSource::Alerts => "alerts",
            AlertSource::Query => "query",
        }
    }
}

impl fmt::Display for AlertSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Setting for AlertSource {
    fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim() {
            "alerts" => Ok(AlertSource::Alerts),
            "query" => Ok(AlertSource::Query),
            _ => Err("must be alerts (GET /api/v1/alerts) or query (an ALERTS query)".to_owned()),
        }
    }
}

/// The PromQL selector for the alerts of `matchers`, pending and firing, so
/// that the pending count means the same in both sources. The prefixes are
/// matched as `prefix.*`, which is telemetry-manager's "starts with": an
/// alert named exactly like a prefix counts too.
pub fn alerts_selector(matchers: &[Matcher]) -> String {
    let mut prefixes: Vec<String> = matchers
        .iter()
        .map(|m| regex_literal(&m.alertname_prefix))
        .collect();
    prefixes.sort();
    prefixes.dedup();
    let regex = format!("(?:{}).*", prefixes.join("|"));
    format!("ALERTS{{alertname=~{}}}", promql_string(&regex))
}

/// `text` as an RE2 pattern that matches exactly it.
fn regex_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `text` as a double-quoted PromQL string literal.
fn promql_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::Kind;

    #[test]
    fn parses_both_sources_and_refuses_others() {
        assert_eq!(AlertSource::parse(" query "), Ok(AlertSource::Query));
        assert_eq!(AlertSource::parse("alerts"), Ok(AlertSource::Alerts));
        for source in [AlertSource::Alerts, AlertSource::Query] {
            assert_eq!(AlertSource::parse(source.as_str()), Ok(source));
        }
        assert!(AlertSource::parse("ALERTS").unwrap_err().contains("alerts"));
        assert!(AlertSource::parse("").is_err());
    }

    #[test]
    fn the_selector_names_every_prefix_once() {
        assert_eq!(
            alerts_selector(&Matcher::all()),
            r#"ALERTS{alertname=~"(?:Log|Metric|Trace).*"}"#
        );
        assert_eq!(
            alerts_selector(&[
                Matcher::for_kind(Kind::Metric),
                Matcher::for_kind(Kind::Metric)
            ]),
            r#"ALERTS{alertname=~"(?:Metric).*"}"#
        );
    }

    /// A configured prefix is a literal, never a pattern, and never breaks
    /// out of the PromQL string.
    #[test]
    fn prefixes_are_literals() {
        let odd = Matcher {
            alertname_prefix: r#"My.App"(x)\"#.into(),
            ..Matcher::for_kind(Kind::Metric)
        };
        assert_eq!(
            alerts_selector(&[odd]),
            r#"ALERTS{alertname=~"(?:My\\.App\"\\(x\\)\\\\).*"}"#
        );
    }
}
