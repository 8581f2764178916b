//! The generator of `ALERTS` query answers (`alertSource: query`, the
//! default) for tests/fuzz.rs: a structure, written out as JSON in any key
//! order with the fields Prometheus, Thanos or Mimir may add, and what a
//! plain reading of that structure says the alerts are.

use alert_poller::domain::alerts::{ActiveAlert, AlertState, LabelSet};
use alert_poller::prometheus::Decoded;
use proptest::prelude::*;

use super::json;

/// One sample of the vector: its labels in the order they are written, its
/// `value` (read past, so sometimes not even the right type), and extra
/// fields.
#[derive(Clone, Debug)]
pub struct SeriesSample {
    pub labels: Vec<(String, String)>,
    pub value: String,
    pub extras: Vec<(String, String)>,
    pub order: u64,
}

/// A `success` answer: `result` (`None`: `null`, as Thanos may answer),
/// `warnings` (absent, `null` or a list), extra fields in `data` and in the
/// envelope, and the order in which the keys are written.
#[derive(Clone, Debug)]
pub struct SeriesAnswer {
    pub result: Option<Vec<SeriesSample>>,
    pub warnings: Option<Option<Vec<String>>>,
    pub data_extras: Vec<(String, String)>,
    pub extras: Vec<(String, String)>,
    pub order: u64,
}

pub const SPECIAL_LABELS: [&str; 3] = ["alertname", "alertstate", "__name__"];

pub fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// `{"k": v, ...}` with the values already JSON, in an order `seed` picks.
pub fn object(mut fields: Vec<(String, String)>, seed: u64) -> String {
    // Fisher-Yates over a xorshift of the seed: the same seed, the same order.
    let mut x = seed | 1;
    for i in (1..fields.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        fields.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let inner: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", json_str(k)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// A key for an extra field, never one of `reserved`.
pub fn extra_key(reserved: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "stats",
            "infos",
            "histogram",
            "timestamp",
            "exemplars",
            ""
        ])
        .prop_map(String::from),
        "[a-zA-Z_]{1,8}",
    ]
    .prop_map(move |k| {
        if reserved.contains(&k.as_str()) {
            format!("{k}_")
        } else {
            k
        }
    })
}

pub fn extras(reserved: &'static [&'static str]) -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(
        (extra_key(reserved), json().prop_map(|v| v.to_string())),
        0..3,
    )
}

pub fn alertname_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "MetricGatewayThrottling",
            "MetricAgentAllDataDropped",
            "TraceGatewayExporterDroppedData",
            "LogAgentBufferFull",
            "LogFluentBitAllDataDropped",
            "Metric",
        ])
        .prop_map(String::from),
        2 => prop::sample::select(vec!["KubePodNotReady", "Watchdog", "metricGatewayThrottling", "Tr\u{e4}ceX", ""])
            .prop_map(String::from),
        1 => ".{0,10}",
    ]
}

pub fn alertstate_value() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(vec!["firing", "pending"]).prop_map(String::from),
        2 => prop::sample::select(vec!["inactive", "Firing", "PENDING", ""]).prop_map(String::from),
        1 => ".{0,8}",
    ]
}

pub fn label_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "pipeline_name",
            "pipeline_type",
            "pod",
            "severity",
            "Zone",
            "namespace",
            "__meta",
            "",
        ])
        .prop_map(String::from),
        1 => "[a-zA-Z_][a-zA-Z0-9_]{0,6}",
        // Prometheus 3 allows any UTF-8 in a name; some need escapes in JSON.
        1 => ".{1,6}",
    ]
}

pub fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(vec![
            "a", "b", "metricpipeline", "tracepipeline", "logpipeline", "", "x\"y\\z", "caf\u{e9}", "firing",
        ])
        .prop_map(String::from),
        1 => ".{0,10}",
    ]
}

/// A label set, each name once, in any order (Prometheus sorts them, other
/// implementations need not): usually with `alertname`, `alertstate` and
/// `__name__`, sometimes without.
pub fn series_labels() -> impl Strategy<Value = Vec<(String, String)>> {
    (
        prop::option::weighted(0.9, alertname_value()),
        prop::option::weighted(0.9, alertstate_value()),
        prop::option::weighted(
            0.7,
            prop_oneof![4 => Just("ALERTS".to_string()), 1 => ".{0,6}"],
        ),
        prop::collection::btree_map(label_name(), label_value(), 0..6),
    )
        .prop_map(|(name, state, metric, others)| {
            let mut labels: Vec<(String, String)> = others
                .into_iter()
                .filter(|(n, _)| !SPECIAL_LABELS.contains(&n.as_str()))
                .collect();
            for (n, v) in [
                ("alertname", name),
                ("alertstate", state),
                ("__name__", metric),
            ] {
                if let Some(v) = v {
                    labels.push((n.to_string(), v));
                }
            }
            labels
        })
        .prop_flat_map(|labels| Just(labels).prop_shuffle())
}

/// A sample's `value`: `[time, "value"]` as Prometheus writes it, or
/// anything at all, which the decoder reads past.
pub fn sample_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (
            0u64..4_000_000_000_000,
            prop_oneof![
                prop::sample::select(vec!["1", "0", "+Inf", "-Inf", "NaN", "1e+00"]).prop_map(String::from),
                any::<f64>().prop_map(|f| f.to_string()),
            ],
        )
            .prop_map(|(ms, v)| format!("[{}.{:03},{}]", ms / 1000, ms % 1000, json_str(&v))),
        1 => json().prop_map(|v| v.to_string()),
    ]
}

pub fn series_sample() -> impl Strategy<Value = SeriesSample> {
    (
        series_labels(),
        sample_value(),
        extras(&["metric"]),
        any::<u64>(),
    )
        .prop_map(|(labels, value, extras, order)| SeriesSample {
            labels,
            value,
            extras,
            order,
        })
}

pub fn series_answer() -> impl Strategy<Value = SeriesAnswer> {
    (
        prop::option::weighted(0.95, prop::collection::vec(series_sample(), 0..8)),
        prop::option::of(prop::option::of(prop::collection::vec(".{0,8}", 0..3))),
        extras(&["result", "resultType"]),
        extras(&["status", "data", "errorType", "error", "warnings"]),
        any::<u64>(),
    )
        .prop_map(
            |(result, warnings, data_extras, extras, order)| SeriesAnswer {
                result,
                warnings,
                data_extras,
                extras,
                order,
            },
        )
}

/// One thing wrong with an answer, each of which must make it invalid: a
/// field missing, or of a type or value the decoder cannot take.
#[derive(Clone, Debug)]
pub enum Wrong {
    Status(Option<&'static str>),
    Data(Option<&'static str>),
    ResultType(Option<&'static str>),
    Result(&'static str),
    Warnings(&'static str),
    /// The sample at this index (modulo their number) is not an object.
    Sample(prop::sample::Index, &'static str),
    Metric(prop::sample::Index, Option<&'static str>),
    AlertName(prop::sample::Index, &'static str),
    AlertState(prop::sample::Index, &'static str),
}

pub fn wrong() -> impl Strategy<Value = Wrong> {
    let not_string = || prop::sample::select(vec!["1", "null", "true", "[]", "{}", "[\"firing\"]"]);
    let not_object = || prop::sample::select(vec!["1", "null", "true", "[]", "\"x\"", "[{}]"]);
    prop_oneof![
        prop::option::of(prop::sample::select(vec![
            "\"Success\"",
            "\"ok\"",
            "1",
            "null",
            "[]"
        ]))
        .prop_map(Wrong::Status),
        prop::option::of(not_object()).prop_map(Wrong::Data),
        prop::option::of(prop::sample::select(vec![
            "\"matrix\"",
            "\"scalar\"",
            "\"string\"",
            "\"Vector\"",
            "\"\"",
            "1",
            "null",
            "[]",
        ]))
        .prop_map(Wrong::ResultType),
        prop::sample::select(vec!["{}", "1", "\"x\"", "true", "[1]", "[[]]", "[null]"])
            .prop_map(Wrong::Result),
        prop::sample::select(vec!["1", "\"w\"", "[1]", "{}", "[null]"]).prop_map(Wrong::Warnings),
        (any::<prop::sample::Index>(), not_object()).prop_map(|(i, v)| Wrong::Sample(i, v)),
        (any::<prop::sample::Index>(), prop::option::of(not_object()))
            .prop_map(|(i, v)| Wrong::Metric(i, v)),
        (any::<prop::sample::Index>(), not_string()).prop_map(|(i, v)| Wrong::AlertName(i, v)),
        (any::<prop::sample::Index>(), not_string()).prop_map(|(i, v)| Wrong::AlertState(i, v)),
    ]
}

/// `labels` as the JSON object `metric`; `replace` gives one label a raw
/// JSON value instead of its string (and adds it first if it is absent).
pub fn metric_json(labels: &[(String, String)], replace: Option<(&str, &str)>) -> String {
    let mut fields: Vec<(String, String)> = labels
        .iter()
        .map(|(n, v)| (n.clone(), json_str(v)))
        .collect();
    if let Some((name, raw)) = replace {
        match fields.iter_mut().find(|(n, _)| n == name) {
            Some(field) => field.1 = raw.to_string(),
            None => fields.insert(0, (name.to_string(), raw.to_string())),
        }
    }
    // In the order given: `object` would shuffle, and the order is the test's.
    let inner: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", json_str(k)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

impl SeriesAnswer {
    pub fn samples(&self) -> &[SeriesSample] {
        self.result.as_deref().unwrap_or_default()
    }

    /// The `result` array, each sample written by [`sample_json`], or what
    /// `wrong` puts in its place.
    fn result_json(&self, wrong: Option<&Wrong>) -> String {
        match (wrong, &self.result) {
            (Some(Wrong::Result(raw)), _) => raw.to_string(),
            (_, None) => "null".to_string(),
            (_, Some(samples)) => {
                let items: Vec<String> = samples
                    .iter()
                    .enumerate()
                    .map(|(i, s)| sample_json(s, i, samples.len(), wrong))
                    .collect();
                format!("[{}]", items.join(","))
            }
        }
    }

    /// The answer as Prometheus would write it, or with `wrong` in it.
    pub fn render(&self, wrong: Option<&Wrong>) -> String {
        let n = self.samples().len();
        // A fault in a sample needs a sample; without one, a wrong `result`.
        let wrong = match wrong {
            Some(
                Wrong::Sample(..)
                | Wrong::Metric(..)
                | Wrong::AlertName(..)
                | Wrong::AlertState(..),
            ) if n == 0 => Some(&Wrong::Result("{}")),
            w => w,
        };
        let result = self.result_json(wrong);
        let result_type = match wrong {
            Some(Wrong::ResultType(raw)) => raw.map(str::to_string),
            _ => Some(json_str("vector")),
        };
        let mut data: Vec<(String, String)> = result_type
            .map(|t| ("resultType".to_string(), t))
            .into_iter()
            .collect();
        data.push(("result".into(), result));
        data.extend(self.data_extras.iter().cloned());
        let data = match wrong {
            Some(Wrong::Data(raw)) => raw.map(str::to_string),
            _ => Some(object(data, self.order.rotate_left(17))),
        };
        let status = match wrong {
            Some(Wrong::Status(raw)) => raw.map(str::to_string),
            _ => Some(json_str("success")),
        };
        let warnings = match (wrong, &self.warnings) {
            (Some(Wrong::Warnings(raw)), _) => Some(raw.to_string()),
            (_, None) => None,
            (_, Some(None)) => Some("null".to_string()),
            (_, Some(Some(list))) => Some(serde_json::to_string(list).unwrap()),
        };
        let mut envelope: Vec<(String, String)> = Vec::new();
        envelope.extend(status.map(|s| ("status".to_string(), s)));
        envelope.extend(data.map(|d| ("data".to_string(), d)));
        envelope.extend(warnings.map(|w| ("warnings".to_string(), w)));
        envelope.extend(self.extras.iter().cloned());
        object(envelope, self.order)
    }

    /// What the answer says, read plainly: every sample whose `alertname`
    /// `keep` accepts and whose `alertstate` is firing or pending, with its
    /// labels less `__name__` and `alertstate`; and the warnings.
    pub fn expected(&self, keep: &dyn Fn(&str) -> bool) -> Decoded {
        let alerts = self
            .samples()
            .iter()
            .filter_map(|s| {
                let label = |name: &str| {
                    s.labels
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v.as_str())
                };
                if !keep(label("alertname")?) {
                    return None;
                }
                let state = match label("alertstate")? {
                    "firing" => AlertState::Firing,
                    "pending" => AlertState::Pending,
                    _ => return None,
                };
                let labels: LabelSet = s
                    .labels
                    .iter()
                    .filter(|(n, _)| n != "__name__" && n != "alertstate")
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                Some(ActiveAlert { labels, state })
            })
            .collect();
        Decoded {
            alerts,
            warnings: self.warnings.clone().flatten().unwrap_or_default(),
        }
    }

    /// The same alerts as an `/api/v1/alerts` body: each sample an entry
    /// whose `state` is its `alertstate`.
    pub fn as_alerts_body(&self) -> String {
        let entries: Vec<String> = self
            .samples()
            .iter()
            .map(|s| {
                let labels: Vec<(String, String)> = s
                    .labels
                    .iter()
                    .filter(|(n, _)| n != "__name__" && n != "alertstate")
                    .cloned()
                    .collect();
                let mut fields = vec![("labels".to_string(), metric_json(&labels, None))];
                if let Some((_, state)) = s.labels.iter().find(|(n, _)| n == "alertstate") {
                    fields.push(("state".into(), json_str(state)));
                }
                object(fields, s.order)
            })
            .collect();
        let mut envelope = vec![
            ("status".to_string(), json_str("success")),
            (
                "data".to_string(),
                format!("{{\"alerts\":[{}]}}", entries.join(",")),
            ),
        ];
        if let Some(w) = &self.warnings {
            envelope.push(("warnings".into(), serde_json::to_string(w).unwrap()));
        }
        object(envelope, self.order)
    }
}

/// Sample `i` of `n`, with the fault `wrong` puts in it if it is the
/// sample the fault picks.
fn sample_json(s: &SeriesSample, i: usize, n: usize, wrong: Option<&Wrong>) -> String {
    let at = |j: &prop::sample::Index| j.index(n);
    let replace = match wrong {
        Some(Wrong::Sample(j, raw)) if at(j) == i => return raw.to_string(),
        Some(Wrong::AlertName(j, raw)) if at(j) == i => Some(("alertname", *raw)),
        Some(Wrong::AlertState(j, raw)) if at(j) == i => Some(("alertstate", *raw)),
        _ => None,
    };
    let metric = match wrong {
        Some(Wrong::Metric(j, raw)) if at(j) == i => raw.map(str::to_string),
        _ => Some(metric_json(&s.labels, replace)),
    };
    let mut fields: Vec<(String, String)> = metric
        .map(|m| ("metric".to_string(), m))
        .into_iter()
        .collect();
    fields.push(("value".into(), s.value.clone()));
    fields.extend(s.extras.iter().cloned());
    object(fields, s.order)
}
