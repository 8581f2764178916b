//! Summing series of Prometheus' text exposition (`/metrics`), for counters
//! whose label values are not known in advance: the controller's poll
//! results grow a class with every new error kind, and the API server's
//! request counter has one series per verb, code and client.

/// The sum of every series of `name` whose label text (what lies between the
/// braces, empty without labels) `keep` accepts. Summing whatever series are
/// there, rather than looking up a known list, is what keeps a label value
/// added later from being silently left out.
///
/// Comments, other metrics (including those whose name merely starts with
/// `name`, such as `_created`) and values that do not parse count nothing.
pub fn sum(text: &str, name: &str, keep: impl Fn(&str) -> bool) -> f64 {
    text.lines()
        .filter_map(|line| sample(line, name))
        .filter(|(labels, _)| keep(labels))
        .fold(0.0, |total, (_, value)| total + value)
}

/// The label text and value of `line` if it is a sample of `name`.
fn sample<'a>(line: &'a str, name: &str) -> Option<(&'a str, f64)> {
    let rest = line.strip_prefix(name)?;
    let (labels, rest) = match rest.strip_prefix('{') {
        Some(inner) => {
            let end = closing_brace(inner)?;
            (&inner[..end], &inner[end + 1..])
        }
        None => ("", rest),
    };
    // A space must follow, or this was a longer name sharing the prefix.
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    // The value is the first token; a timestamp or exemplar may follow.
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some((labels, value))
}

/// Where the label set ends, skipping braces inside quoted label values.
fn closing_brace(inner: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in inner.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP alert_poller_polls Polls of Prometheus alerts, by result.
# TYPE alert_poller_polls counter
alert_poller_polls_total{result="success"} 7
alert_poller_polls_total{result="timeout"} 2
alert_poller_polls_total{result="odd}label"} 1
alert_poller_polls_created{result="success"} 1700000000.5
alert_poller_polls_totalish{result="success"} 100
alert_poller_poll_duration_seconds_count 10
plain_total 4 1700000000000
labelled_total{a="b\"}"} 5
broken_total{result="x"} not-a-number
"#;

    #[test]
    fn sums_the_series_of_one_metric() {
        let all = |_: &str| true;
        for (name, keep, expected) in [
            (
                "alert_poller_polls_total",
                &all as &dyn Fn(&str) -> bool,
                10.0,
            ),
            (
                "alert_poller_polls_total",
                &|l: &str| !l.contains(r#"result="success""#),
                3.0,
            ),
            ("alert_poller_polls_total", &|_: &str| false, 0.0),
            // Without labels, and with a timestamp after the value.
            ("plain_total", &all, 4.0),
            // An escaped quote and a brace inside a label value.
            ("labelled_total", &all, 5.0),
            ("broken_total", &all, 0.0),
            ("absent_total", &all, 0.0),
            ("alert_poller_poll_duration_seconds_count", &all, 10.0),
        ] {
            assert_eq!(sum(TEXT, name, keep), expected, "{name}");
        }
    }

    #[test]
    fn empty_text_sums_to_a_positive_zero() {
        let total = sum("", "alert_poller_polls_total", |_| true);
        assert_eq!(total, 0.0);
        assert!(total.is_sign_positive(), "prints as 0, not -0");
    }
}
