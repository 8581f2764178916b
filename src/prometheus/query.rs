//! Where the alerts are read. `/api/v1/alerts` answers with every active
//! alert of the Prometheus, so in a shared cluster a poll reads and decodes
//! every other team's alerts only to drop them. An instant query of the
//! `ALERTS` series can ask for our alert names only: the server filters, and
//! the answer no longer grows with the rest of the cluster. Both give the
//! same alerts (same labels, same state), so switching changes no verdict.

use std::time::Duration;

use crate::domain::alerts::Matcher;
use crate::prometheus::GroupTiming;

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

/// The query for the alerts of `matchers`, leaving out samples older than
/// `max_age`. A firing alert's `ALERTS` sample is rewritten at every
/// evaluation, and one that stops firing gets a stale marker, except when
/// Prometheus was down at that moment: after a restart its last sample
/// would still answer for the whole lookback delta (5 minutes by default).
/// Bounding the age by the evaluation interval drops it within seconds.
pub fn alerts_query(matchers: &[Matcher], max_age: Option<Duration>) -> String {
    let selector = alerts_selector(matchers);
    match max_age {
        None => selector,
        Some(age) => format!(
            "{selector} unless (time() - timestamp({selector}) > {:.3})",
            age.as_secs_f64()
        ),
    }
}

/// How old the newest `ALERTS` sample of a firing alert can be: two
/// evaluation intervals of the slowest group holding our alerts, its
/// evaluation time and a second of slack. `None` (no bound) while no timing
/// is known, so a missing `/api/v1/rules` never hides an alert.
pub fn series_max_age(groups: &[GroupTiming]) -> Option<Duration> {
    let slowest = groups
        .iter()
        .map(|g| 2 * g.interval_ms.max(0) + g.evaluation_ms.max(0))
        .max()?;
    Some(Duration::from_millis(slowest as u64 + 1000))
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
    use crate::domain::kind::Kind;

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

    #[test]
    fn the_query_bounds_the_sample_age_when_the_timing_is_known() {
        let m = [Matcher::for_kind(Kind::Metric)];
        assert_eq!(alerts_query(&m, None), alerts_selector(&m));
        assert_eq!(
            alerts_query(&m, Some(Duration::from_millis(61_500))),
            r#"ALERTS{alertname=~"(?:Metric).*"} unless (time() - timestamp(ALERTS{alertname=~"(?:Metric).*"}) > 61.500)"#
        );
        let group = |interval_ms, evaluation_ms| GroupTiming {
            group: 0,
            last_evaluation_ms: 0,
            interval_ms,
            evaluation_ms,
            checked: false,
        };
        assert_eq!(series_max_age(&[]), None);
        assert_eq!(
            series_max_age(&[group(30_000, 12), group(1_000, 3)]),
            Some(Duration::from_millis(61_012))
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
