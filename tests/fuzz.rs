//! Property tests over the two parsers that take outside input: the alerts
//! response (from Prometheus, or whatever answers in its place) and the
//! tuning ConfigMap (from whoever can edit it). Neither may panic on any
//! input, and what they accept must be sound. Also the diff's algebra.
//!
//! Cases per property: 2000 by default; `PROPTEST_CASES=200000 cargo test
//! --release --test fuzz` for a long run.

use std::collections::BTreeMap;

use alert_poller::config::{SETTINGS, Tuning};
use alert_poller::domain::alerts::{ActiveAlert, AlertState, Matcher, Snapshot};
use alert_poller::prometheus::{decode, decode_rule_timings};
use proptest::prelude::*;

const VALID: &str = r#"{"status":"success","data":{"alerts":[{"labels":{"alertname":"MetricGatewayThrottling","pipeline_name":"a"},"annotations":{},"state":"firing","activeAt":"2026-11-27T10:00:00.1Z","value":"1e+00"}]}}"#;

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
        let _ = decode_rule_timings(&bytes, &["Metric"]);
    }

    #[test]
    fn decode_never_panics_on_json(value in json()) {
        let body = serde_json::to_vec(&value).unwrap();
        let _ = decode(&body);
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
