//! Property tests over the parsers that take outside input: the alerts
//! answers (from Prometheus, or whatever answers in its place: the
//! `/api/v1/alerts` body and the `ALERTS` query's, the default source) and
//! the tuning ConfigMap (from whoever can edit it). None may panic on any
//! input, and what they accept must be sound. Also the diff's algebra.
//!
//! The decoders take the whole body and no size limit: `maxResponseBytes`
//! is enforced by the client while it reads the body, before any decoding
//! (`tests/faults.rs` sends a 100 MB one), so there is no limit to fuzz here.
//!
//! Cases per property: 2000 by default; `PROPTEST_CASES=200000 cargo test
//! --release --test fuzz` for a long run.

use std::collections::BTreeMap;

use alert_poller::config::{SETTINGS, Tuning};
use alert_poller::domain::alerts::{ActiveAlert, AlertState, Matcher, Snapshot};
use alert_poller::domain::kind::Kind;
use alert_poller::prometheus::{
    DecodeError, decode, decode_alert_series, decode_alerts, decode_rule_timings,
};
use proptest::prelude::*;

#[path = "fuzz/series.rs"]
mod series;

use series::*;

const VALID: &str = r#"{"status":"success","data":{"alerts":[{"labels":{"alertname":"MetricGatewayThrottling","pipeline_name":"a"},"annotations":{},"state":"firing","activeAt":"2026-11-27T10:00:00.1Z","value":"1e+00"}]}}"#;

const VALID_SERIES: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"ALERTS","alertname":"MetricGatewayThrottling","alertstate":"firing","pipeline_name":"a"},"value":[1795989643.407,"1"]}]}}"#;

/// Every alert name a keep function built from these kinds accepts, as the
/// client builds it from its matchers.
fn ours(kinds: &[Kind]) -> impl Fn(&str) -> bool + '_ {
    move |name: &str| kinds.iter().any(|k| Matcher::for_kind(*k).takes_name(name))
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(2000),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Arbitrary JSON, biased towards the shapes the decoder expects.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        prop_oneof![
            Just("success".to_string()),
            Just("error".to_string()),
            Just("firing".to_string()),
            Just("pending".to_string()),
            Just("2026-11-27T10:00:00Z".to_string()),
            Just("vector".to_string()),
            Just("ALERTS".to_string()),
            Just("MetricGatewayThrottling".to_string()),
            ".{0,12}",
        ]
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        let keys = prop_oneof![
            Just("status".to_string()),
            Just("data".to_string()),
            Just("alerts".to_string()),
            Just("labels".to_string()),
            Just("state".to_string()),
            Just("activeAt".to_string()),
            Just("value".to_string()),
            Just("annotations".to_string()),
            Just("groups".to_string()),
            Just("resultType".to_string()),
            Just("result".to_string()),
            Just("metric".to_string()),
            Just("alertname".to_string()),
            Just("alertstate".to_string()),
            Just("__name__".to_string()),
            "[a-z]{1,6}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(keys, inner, 0..5)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn alert() -> impl Strategy<Value = ActiveAlert> {
    (
        prop::sample::select(vec![
            "MetricGatewayThrottling",
            "MetricAgentAllDataDropped",
            "TraceGatewayThrottling",
        ]),
        prop::option::of(prop::sample::select(vec!["a", "b", "c"])),
        prop::option::of(prop::sample::select(vec!["metricpipeline", "logpipeline"])),
        0u8..3,
        any::<bool>(),
    )
        .prop_map(|(name, pipeline, kind, pod, firing)| {
            let mut labels = BTreeMap::from([("alertname".to_string(), name.to_string())]);
            if let Some(p) = pipeline {
                labels.insert("pipeline_name".into(), p.into());
            }
            if let Some(k) = kind {
                labels.insert("pipeline_type".into(), k.into());
            }
            labels.insert("pod".into(), format!("gw-{pod}"));
            ActiveAlert {
                labels: labels.into_iter().collect(),
                state: if firing {
                    AlertState::Firing
                } else {
                    AlertState::Pending
                },
            }
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn decode_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&bytes);
        let _ = decode_alert_series(&bytes, &|_| true);
        let _ = decode_alert_series(&bytes, &ours(&[Kind::Metric]));
        let _ = decode_rule_timings(&bytes, &["Metric"]);
    }

    #[test]
    fn decode_never_panics_on_json(value in json()) {
        let body = serde_json::to_vec(&value).unwrap();
        let _ = decode(&body);
        let _ = decode_alert_series(&body, &|_| true);
        let _ = decode_alert_series(&body, &ours(&[Kind::Metric]));
        let _ = decode_rule_timings(&body, &["Metric"]);
    }

    #[test]
    fn decode_never_panics_on_mangled_answers(cut in 0usize..VALID.len(), at in 0usize..VALID.len(), byte in any::<u8>()) {
        let mut body = VALID.as_bytes().to_vec();
        body[at] = byte;
        let _ = decode(&body);
        let _ = decode(&VALID.as_bytes()[..cut]);
    }

    #[test]
    fn series_decode_never_panics_on_mangled_answers(
        cut in 0usize..VALID_SERIES.len(),
        at in 0usize..VALID_SERIES.len(),
        byte in any::<u8>(),
    ) {
        let mut body = VALID_SERIES.as_bytes().to_vec();
        body[at] = byte;
        let _ = decode_alert_series(&body, &|_| true);
        // Any strict prefix of an answer is cut JSON: invalid, never an alert.
        prop_assert!(matches!(
            decode_alert_series(&VALID_SERIES.as_bytes()[..cut], &|_| true),
            Err(DecodeError::Invalid(_))
        ));
    }

    #[test]
    fn configmaps_never_panic_and_what_passes_is_sound(
        entries in prop::collection::btree_map(
            prop_oneof![
                prop::sample::select(SETTINGS.iter().map(|s| s.key.to_string()).collect::<Vec<_>>()),
                "[a-zA-Z]{1,12}",
            ],
            prop_oneof![
                Just("0".to_string()), Just("1s".to_string()), Just("100ms".to_string()), Just("2m".to_string()),
                Just("true".to_string()), Just("-1".to_string()), Just("1.5".to_string()), Just("NaN".to_string()),
                Just("16Mi".to_string()), Just("http://127.0.0.1:9090".to_string()), Just("Flow/Healthy".to_string()),
                ".{0,20}",
            ],
            0..8,
        )
    ) {
        match Tuning::defaults().with_overrides(&entries) {
            Ok(t) => {
                prop_assert!(t.min_interval.as_millis() >= 100);
                prop_assert!(t.max_interval >= t.min_interval);
                prop_assert!(t.error_max_interval >= t.min_interval);
                prop_assert!((1.0..=10.0).contains(&t.backoff_factor));
                prop_assert!(t.connect_timeout <= t.request_timeout);
                prop_assert!(t.stale_after > t.request_timeout);
                prop_assert!(t.max_response_bytes.0 >= 1024);
            }
            Err(errors) => {
                prop_assert!(!errors.0.is_empty());
                for e in &errors.0 {
                    prop_assert!(!e.reason.is_empty());
                    // Every error names a key the user wrote (or a rule's key).
                    prop_assert!(entries.contains_key(&e.key) || SETTINGS.iter().any(|s| s.key == e.key));
                }
            }
        }
    }

    #[test]
    fn the_diff_is_consistent(a in prop::collection::vec(alert(), 0..12), b in prop::collection::vec(alert(), 0..12)) {
        let m = Matcher::all();
        let (sa, sb) = (Snapshot::from_alerts(a, &m), Snapshot::from_alerts(b, &m));
        prop_assert!(sa.diff(&sa).is_empty());
        let (ab, ba) = (sb.diff(&sa), sa.diff(&sb));
        prop_assert_eq!(ab.added, ba.removed);
        prop_assert_eq!(ab.removed, ba.added);
        prop_assert_eq!(ab.affected.is_nobody(), ab.is_empty());
        prop_assert_eq!(&ab.affected, &ba.affected);
    }
}

// ---------------------------------------------------------------------------
// The answer to an `ALERTS` instant query (`alertSource: query`, the default):
// generated as a structure, written out as JSON in any key order with fields

proptest! {
    #![proptest_config(config())]

    /// A well-formed answer gives exactly the alerts of the kinds asked
    /// for, in the answer's order, whatever the key order, extra fields,
    /// `value`s and label names; the same as `/api/v1/alerts` would for
    /// the same alerts.
    #[test]
    fn series_answers_decode_to_exactly_the_alerts_of_our_kinds(
        answer in series_answer(),
        kinds in prop::sample::subsequence(Kind::ALL.to_vec(), 0..=3),
    ) {
        let body = answer.render(None);
        let keep = ours(&kinds);
        let decoded = decode_alert_series(body.as_bytes(), &keep);
        prop_assert_eq!(decoded.as_ref().ok(), Some(&answer.expected(&keep)), "{}", body);
        let every = decode_alert_series(body.as_bytes(), &|_| true);
        prop_assert_eq!(every.as_ref().ok(), Some(&answer.expected(&|_| true)), "{}", body);
        let alerts = answer.as_alerts_body();
        prop_assert_eq!(decode_alerts(alerts.as_bytes(), &keep).ok(), decoded.ok(), "{}", alerts);
    }

    /// A missing field or a wrong type where the decoder must read is an
    /// invalid answer, never a panic and never a partial list of alerts;
    /// so is any strict prefix of a well-formed answer.
    #[test]
    fn series_answers_with_a_fault_are_invalid(
        answer in series_answer(),
        wrong in wrong(),
        cut in any::<prop::sample::Index>(),
        kinds in prop::sample::subsequence(Kind::ALL.to_vec(), 0..=3),
    ) {
        let keep = ours(&kinds);
        let body = answer.render(Some(&wrong));
        match decode_alert_series(body.as_bytes(), &keep) {
            Err(DecodeError::Invalid(m)) => prop_assert!(!m.is_empty()),
            other => prop_assert!(false, "{:?} gave {:?} for {}", wrong, other, body),
        }
        let whole = answer.render(None);
        let cut = cut.index(whole.len());
        prop_assert!(
            matches!(decode_alert_series(&whole.as_bytes()[..cut], &keep), Err(DecodeError::Invalid(_))),
            "{}", &whole[..cut]
        );
    }

    /// Wrong types where the decoder reads past (`value`, labels of an
    /// alert that is not ours once its name is known, extra fields) never
    /// panic, and any error is an invalid answer, but for a `status` made
    /// `"error"`, which is Prometheus' own error.
    #[test]
    fn series_answers_with_anything_anywhere_never_panic(
        answer in series_answer(),
        at in any::<prop::sample::Index>(),
        value in json(),
        kinds in prop::sample::subsequence(Kind::ALL.to_vec(), 0..=3),
    ) {
        // Replace one token of a well-formed answer (a key, string, number
        // or literal) with arbitrary JSON.
        let body = answer.render(None);
        let starts: Vec<usize> = body
            .char_indices()
            .filter(|&(i, c)| i > 0 && matches!(c, '"' | '0'..='9' | 't' | 'f' | 'n') && matches!(body.as_bytes()[i - 1], b':' | b',' | b'['))
            .map(|(i, _)| i)
            .collect();
        prop_assume!(!starts.is_empty());
        let start = starts[at.index(starts.len())];
        let mut de = serde_json::Deserializer::from_str(&body[start..]).into_iter::<serde_json::Value>();
        let _ = de.next();
        let end = start + de.byte_offset();
        let mangled = format!("{}{}{}", &body[..start], value, &body[end..]);
        // The one token that may rightly turn the answer into Prometheus'
        // own error: `"status"`'s value replaced by `"error"`.
        let now_an_error = value == serde_json::Value::String("error".into());
        match decode_alert_series(mangled.as_bytes(), &ours(&kinds)) {
            Ok(_) | Err(DecodeError::Invalid(_)) => {}
            Err(DecodeError::Prometheus(_)) if now_an_error => {}
            Err(e) => prop_assert!(false, "{:?} for {}", e, mangled),
        }
    }

    /// `{"status":"error"}` is Prometheus' own error, reported with its
    /// type and message, whatever else the answer holds and in any order.
    #[test]
    fn series_error_answers_are_prometheus_errors(
        error_type in prop::option::of(prop_oneof![Just("timeout".to_string()), Just("bad_data".to_string()), ".{0,8}".prop_map(String::from)]),
        error in prop::option::of(".{0,20}"),
        extras in extras(&["status", "data", "errorType", "error", "warnings"]),
        order in any::<u64>(),
    ) {
        let mut fields = vec![("status".to_string(), json_str("error"))];
        fields.extend(error_type.as_deref().map(|t| ("errorType".to_string(), json_str(t))));
        fields.extend(error.as_deref().map(|e| ("error".to_string(), json_str(e))));
        fields.extend(extras);
        let body = object(fields, order);
        let want = format!(
            "{}: {}",
            error_type.as_deref().unwrap_or("unknown"),
            error.as_deref().unwrap_or("no message")
        );
        prop_assert_eq!(decode_alert_series(body.as_bytes(), &|_| true), Err(DecodeError::Prometheus(want)), "{}", body);
    }
}
