use super::*;

fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_parse_and_pass_validation() {
    let tuning = Tuning::defaults();
    assert_eq!(tuning.with_overrides(&BTreeMap::new()), Ok(tuning.clone()));
    assert_eq!(tuning.condition_type, "TelemetryFlowHealthy");
    assert_eq!(tuning.max_response_bytes, Bytes(32 << 20));
}

#[test]
fn overrides_apply_every_key() {
    let t = Tuning::defaults()
        .with_overrides(&data(&[
            ("prometheusUrl", "https://prom.example:9443/sub/"),
            ("minInterval", "500ms"),
            ("maxInterval", "2m"),
            ("backoffFactor", "3"),
            ("errorMaxInterval", "5m"),
            ("requestTimeout", "10s"),
            ("connectTimeout", "1s"),
            ("staleAfter", "10m"),
            ("conditionType", "example.com/FlowHealthy"),
            ("mode", "shadow"),
            ("alertNamePrefix", "Custom"),
            ("maxResponseBytes", "512Ki"),
            ("bearerTokenFile", "/var/run/token"),
            ("caFile", "/etc/ca.pem"),
            ("insecureSkipVerify", "true"),
        ]))
        .expect("valid overrides");
    assert_eq!(
        t.prometheus_url.0[0].as_str(),
        "https://prom.example:9443/sub/"
    );
    assert_eq!(t.min_interval, Duration::from_millis(500));
    assert_eq!(t.max_interval, Duration::from_secs(120));
    assert_eq!(t.backoff_factor, 3.0);
    assert_eq!(t.error_max_interval, Duration::from_secs(300));
    assert_eq!(t.request_timeout, Duration::from_secs(10));
    assert_eq!(t.connect_timeout, Duration::from_secs(1));
    assert_eq!(t.stale_after, Duration::from_secs(600));
    assert_eq!(t.condition_type, "example.com/FlowHealthy");
    assert_eq!(t.mode, Mode::Shadow);
    assert_eq!(t.matchers()[0].alertname_prefix, "Custom");
    assert_eq!(t.matchers()[1].alertname_prefix, "Trace");
    assert_eq!(t.max_response_bytes, Bytes(512 * 1024));
    assert_eq!(t.bearer_token_file, Some(PathBuf::from("/var/run/token")));
    assert_eq!(t.ca_file, Some(PathBuf::from("/etc/ca.pem")));
    assert!(t.insecure_skip_verify);
}

#[test]
fn overrides_sit_on_the_base_not_on_each_other() {
    let base = Tuning::defaults();
    let first = base
        .with_overrides(&data(&[("minInterval", "500ms")]))
        .unwrap();
    assert_eq!(first.min_interval, Duration::from_millis(500));
    // The next ConfigMap without the key goes back to the base value.
    let second = base
        .with_overrides(&data(&[("maxInterval", "20s")]))
        .unwrap();
    assert_eq!(second.min_interval, base.min_interval);
}

#[test]
fn every_bad_value_is_named_with_key_and_value() {
    let err = Tuning::defaults()
        .with_overrides(&data(&[
            ("minInterval", "fast"),
            ("backoffFactor", "NaN"),
            ("prometheusUrl", "ftp://x"),
            ("maxResponseBytes", "12MB"),
            ("insecureSkipVerify", "yes"),
            ("mode", "readonly"),
        ]))
        .unwrap_err();
    let keys: Vec<_> = err.0.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "backoffFactor",
            "insecureSkipVerify",
            "maxResponseBytes",
            "minInterval",
            "mode",
            "prometheusUrl"
        ]
    );
    let text = err.to_string();
    assert!(text.contains(r#"minInterval="fast""#), "{text}");
    assert!(text.contains(r#"prometheusUrl="ftp://x""#), "{text}");
}

#[test]
fn unknown_keys_are_refused() {
    let err = Tuning::defaults()
        .with_overrides(&data(&[("minInteval", "2s")]))
        .unwrap_err();
    assert_eq!(err.0[0].key, "minInteval");
    assert!(err.0[0].reason.contains("minInterval"));
}

#[test]
fn cross_field_rules_hold() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("minInterval", "10s"), ("maxInterval", "5s")],
            "maxInterval",
        ),
        (&[("minInterval", "50ms")], "minInterval"),
        (&[("backoffFactor", "0.5")], "backoffFactor"),
        (&[("errorMaxInterval", "500ms")], "errorMaxInterval"),
        (
            &[("requestTimeout", "1s"), ("connectTimeout", "2s")],
            "connectTimeout",
        ),
        (&[("staleAfter", "3s")], "staleAfter"),
        // Polls that far apart leave every pipeline Unknown in between.
        (&[("maxInterval", "2m")], "maxInterval"),
        (
            &[("maxInterval", "30s"), ("staleAfter", "34s")],
            "maxInterval",
        ),
        (&[("alertNamePrefix", " ")], "alertNamePrefix"),
        (&[("resyncInterval", "5s")], "resyncInterval"),
        (&[("conditionType", "Flow Healthy")], "conditionType"),
        (&[("conditionType", "-Flow")], "conditionType"),
        (&[("conditionType", "Bad_Prefix/Flow")], "conditionType"),
        (&[("maxResponseBytes", "10")], "maxResponseBytes"),
        (&[("conditionType", "  ")], "conditionType"),
    ];
    for (pairs, key) in cases {
        let err = Tuning::defaults().with_overrides(&data(pairs)).unwrap_err();
        assert_eq!(err.0.len(), 1, "{pairs:?}: {err}");
        assert_eq!(err.0[0].key, *key, "{pairs:?}");
    }
}

#[test]
fn polls_slower_than_staleness_are_refused_naming_every_key_involved() {
    let err = Tuning::defaults()
        .with_overrides(&data(&[("maxInterval", "2m"), ("staleAfter", "2m")]))
        .unwrap_err();
    let text = err.to_string();
    for named in [
        "maxInterval=\"2m\"",
        "requestTimeout (5s)",
        "staleAfter (2m)",
        "Unknown",
    ] {
        assert!(text.contains(named), "{named} missing in: {text}");
    }
    // Just below the edge is accepted.
    let ok = [("maxInterval", "1m54s"), ("staleAfter", "2m")];
    assert!(Tuning::defaults().with_overrides(&data(&ok)).is_ok());
}

#[test]
fn flags_are_validated_like_configmaps() {
    let args = TuningArgs {
        min_interval: vec!["500ms".into()],
        ..TuningArgs::default()
    };
    assert_eq!(
        Tuning::from_args(&args).unwrap().min_interval,
        Duration::from_millis(500)
    );
    let args = TuningArgs {
        stale_after: vec!["1s".into()],
        ..TuningArgs::default()
    };
    assert_eq!(Tuning::from_args(&args).unwrap_err().0[0].key, "staleAfter");
}

/// A repeatable flag gathers its values; any other flag given twice is
/// refused rather than resolved to one of its values.
#[test]
fn repeated_flags_gather_or_are_refused() {
    let args = TuningArgs {
        prometheus_url: vec!["http://a:9090".into(), "http://b:9090/prom".into()],
        headers: vec!["X-Scope-OrgID: t1".into(), "X-Other: 2".into()],
        ..TuningArgs::default()
    };
    let t = Tuning::from_args(&args).unwrap();
    assert_eq!(
        t.prometheus_url.to_string(),
        "http://a:9090/, http://b:9090/prom"
    );
    assert_eq!(t.headers.0.len(), 2);
    let args = TuningArgs {
        min_interval: vec!["1s".into(), "2s".into()],
        ..TuningArgs::default()
    };
    let err = Tuning::from_args(&args).unwrap_err();
    assert_eq!(err.0[0].key, "minInterval");
    assert!(
        err.0[0].reason.contains("--min-interval may be given once"),
        "{err}"
    );
}

#[test]
fn several_urls_parse_and_duplicates_are_refused() {
    let urls = Urls::parse("http://a:9090, http://b:9090\nhttps://mimir/prometheus").unwrap();
    assert_eq!(urls.0.len(), 3);
    assert_eq!(urls.0[2].path(), "/prometheus");
    assert!(
        Urls::parse("http://a:9090,http://a:9090")
            .unwrap_err()
            .contains("twice")
    );
    assert!(Urls::parse(" , ").unwrap_err().contains("at least one"));
    assert!(
        Urls::parse("http://a:9090,ftp://b")
            .unwrap_err()
            .contains("ftp://b")
    );
}

/// A URL's password never reaches an error, an Event, a log line or
/// a Debug print; neither does a header's value.
#[test]
fn credentials_in_settings_are_never_shown() {
    let err = Tuning::defaults()
        .with_overrides(&data(&[
            (
                "prometheusUrl",
                "http://user:s3cret@a:9090, ftp://u:s3cret@b/x@y",
            ),
            ("headers", "X-Api-Key: s3cret\nbroken"),
        ]))
        .unwrap_err();
    let text = err.to_string();
    assert!(!text.contains("s3cret"), "{text}");
    assert!(text.contains("http://***@a:9090"), "{text}");
    assert!(text.contains("X-Api-Key: ***"), "{text}");
    let t = Tuning::defaults()
        .with_overrides(&data(&[
            ("prometheusUrl", "http://user:s3cret@a:9090"),
            ("headers", "X-Api-Key: s3cret"),
        ]))
        .unwrap();
    for shown in [format!("{t:?}"), t.prometheus_url.to_string()] {
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}

/// Each credential mode, complete, alone or with a client certificate and
/// headers (which go with any mode).
#[test]
fn credentials_of_one_complete_mode_are_taken() {
    let ok: &[&[(&str, &str)]] = &[
        &[("bearerTokenFile", "/t")],
        &[("basicAuthUsername", "u"), ("basicAuthPasswordFile", "/p")],
        &[
            ("basicAuthUsernameFile", "/u"),
            ("basicAuthPasswordFile", "/p"),
        ],
        &[
            ("oauth2TokenUrl", "https://idp/token"),
            ("oauth2ClientId", "poller"),
            ("oauth2ClientSecretFile", "/s"),
            ("oauth2Scopes", "a, b"),
        ],
        &[
            ("certFile", "/c"),
            ("keyFile", "/k"),
            ("bearerTokenFile", "/t"),
        ],
        &[
            ("headers", "X-Scope-OrgID: t1"),
            ("basicAuthUsername", "u"),
            ("basicAuthPasswordFile", "/p"),
        ],
    ];
    for pairs in ok {
        let t = Tuning::defaults().with_overrides(&data(pairs));
        assert!(t.is_ok(), "{pairs:?}: {t:?}");
    }
}

/// Two modes at once, or one missing a part, is refused, naming the key
/// to remove or to add.
#[test]
fn mixed_or_incomplete_credentials_name_the_key() {
    let refused: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("bearerTokenFile", "/t"),
                ("basicAuthUsername", "u"),
                ("basicAuthPasswordFile", "/p"),
            ],
            "basicAuthPasswordFile",
        ),
        (
            &[
                ("bearerTokenFile", "/t"),
                ("oauth2TokenUrl", "https://idp/token"),
                ("oauth2ClientId", "c"),
                ("oauth2ClientSecretFile", "/s"),
            ],
            "oauth2TokenUrl",
        ),
        (&[("basicAuthPasswordFile", "/p")], "basicAuthUsername"),
        (&[("basicAuthUsername", "u")], "basicAuthPasswordFile"),
        (
            &[
                ("basicAuthUsername", "u"),
                ("basicAuthUsernameFile", "/u"),
                ("basicAuthPasswordFile", "/p"),
            ],
            "basicAuthUsernameFile",
        ),
        (
            &[
                ("oauth2TokenUrl", "https://idp/token"),
                ("oauth2ClientSecretFile", "/s"),
            ],
            "oauth2ClientId",
        ),
        (&[("oauth2Scopes", "a")], "oauth2TokenUrl"),
        (&[("certFile", "/c")], "keyFile"),
        (&[("keyFile", "/k")], "certFile"),
    ];
    for (pairs, key) in refused {
        let err = Tuning::defaults().with_overrides(&data(pairs)).unwrap_err();
        assert!(err.0.iter().any(|e| e.key == *key), "{pairs:?}: {err}");
    }
}

#[test]
fn settings_table_lists_every_key_once() {
    let table = settings_markdown();
    for s in SETTINGS {
        assert_eq!(
            table.matches(&format!("| `{}` |", s.key)).count(),
            1,
            "{}",
            s.key
        );
    }
}
