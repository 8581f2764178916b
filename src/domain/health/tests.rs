use super::*;
use crate::domain::alerts::{ActiveAlert, AlertState, Matcher};
use std::collections::BTreeMap;

fn snapshot(alerts: &[(&str, Option<&str>)]) -> Snapshot {
    let alerts = alerts.iter().map(|(name, pipeline)| {
        let mut labels = vec![("alertname".to_string(), name.to_string())];
        if let Some(p) = pipeline {
            labels.push(("pipeline_name".into(), p.to_string()));
        }
        ActiveAlert {
            labels: labels.into_iter().collect(),
            state: AlertState::Firing,
        }
    });
    Snapshot::from_alerts(alerts, &Matcher::all())
}

fn judge(alerts: &[(&str, Option<&str>)]) -> Verdict {
    let snap = snapshot(alerts);
    let facts = PipelineFacts::new(Kind::Metric, "a");
    evaluate(facts, Knowledge::Fresh(&snap)).expect("fresh knowledge gives a verdict")
}

#[test]
fn no_alert_is_healthy() {
    let v = judge(&[]);
    assert_eq!((v.status, v.reason), (Status::True, "FlowHealthy"));
}

#[test]
fn each_rule_maps_to_its_reason() {
    let cases = [
        (
            "MetricGatewayAllDataDropped",
            "GatewayAllTelemetryDataDropped",
        ),
        (
            "MetricGatewaySomeDataDropped",
            "GatewaySomeTelemetryDataDropped",
        ),
        ("MetricGatewayThrottling", "GatewayThrottling"),
        ("MetricAgentAllDataDropped", "AgentAllTelemetryDataDropped"),
        (
            "MetricAgentSomeDataDropped",
            "AgentSomeTelemetryDataDropped",
        ),
    ];
    for (rule, reason) in cases {
        let v = judge(&[(rule, Some("a"))]);
        assert_eq!((v.status, v.reason), (Status::False, reason), "{rule}");
    }
}

#[test]
fn precedence_picks_the_most_severe_problem() {
    let all = [
        "MetricAgentSomeDataDropped",
        "MetricAgentAllDataDropped",
        "MetricGatewayThrottling",
        "MetricGatewaySomeDataDropped",
        "MetricGatewayAllDataDropped",
    ];
    let expected = [
        "GatewayAllTelemetryDataDropped",
        "GatewaySomeTelemetryDataDropped",
        "GatewayThrottling",
        "AgentAllTelemetryDataDropped",
        "AgentSomeTelemetryDataDropped",
    ];
    // Drop the most severe problem one at a time: the next one must win.
    for (i, reason) in expected.iter().enumerate() {
        let firing: Vec<_> = all[..all.len() - i]
            .iter()
            .map(|r| (*r, Some("a")))
            .collect();
        assert_eq!(judge(&firing).reason, *reason);
    }
}

#[test]
fn other_pipelines_alerts_do_not_count() {
    let v = judge(&[("MetricGatewayAllDataDropped", Some("b"))]);
    assert_eq!(v.status, Status::True);
}

#[test]
fn unscoped_alerts_count_for_every_pipeline() {
    let v = judge(&[("MetricGatewayThrottling", None)]);
    assert_eq!(v.reason, "GatewayThrottling");
}

#[test]
fn agent_alerts_count_like_gateway_alerts_below_them() {
    let v = judge(&[("MetricAgentAllDataDropped", Some("a"))]);
    assert_eq!(v.reason, "AgentAllTelemetryDataDropped");
    assert!(v.message.contains("straight to the pipeline's backend"));
    let v = judge(&[
        ("MetricAgentAllDataDropped", Some("a")),
        ("MetricGatewaySomeDataDropped", Some("a")),
    ]);
    assert_eq!(v.reason, "GatewaySomeTelemetryDataDropped");
}

/// tests/fixtures/conformance.yaml: telemetry-manager's verdicts for
/// alert sets, also run against a real Prometheus by
/// tests/conformance_prometheus.rs.
#[derive(serde::Deserialize)]
struct Conformance {
    pipelines: Vec<String>,
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    alerts: Vec<CaseAlert>,
    expect: BTreeMap<String, String>,
}

#[derive(serde::Deserialize)]
struct CaseAlert {
    alertname: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    state: Option<String>,
}

#[test]
fn conformance_cases_match_telemetry_manager() {
    let file: Conformance = serde_norway::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/conformance.yaml"
    )))
    .expect("the conformance file parses");
    assert!(file.cases.len() >= 15, "the table lost cases");
    let mut mismatches = Vec::new();
    for case in &file.cases {
        let alerts = case.alerts.iter().map(|a| {
            let mut labels = a.labels.clone();
            labels.insert("alertname".into(), a.alertname.clone());
            let state = match a.state.as_deref() {
                None | Some("firing") => AlertState::Firing,
                Some("pending") => AlertState::Pending,
                Some(other) => panic!("{}: unknown state {other}", case.name),
            };
            ActiveAlert {
                labels: (&labels).into(),
                state,
            }
        });
        let snap = Snapshot::from_alerts(alerts, &Matcher::all());
        for pipeline in &file.pipelines {
            let want = &case.expect[pipeline];
            let v = evaluate(
                PipelineFacts::new(Kind::Metric, pipeline),
                Knowledge::Fresh(&snap),
            )
            .expect("fresh knowledge gives a verdict");
            let got = format!("{}/{}", v.status.as_str(), v.reason);
            if &got != want {
                mismatches.push(format!("{}: {pipeline}: want {want}, got {got}", case.name));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn stale_knowledge_is_unknown_and_nothing_known_is_no_verdict() {
    let facts = PipelineFacts::new(Kind::Metric, "a");
    let v = evaluate(facts, Knowledge::Stale { cause: "connect" }).unwrap();
    assert_eq!(
        (v.status, v.reason),
        (Status::Unknown, "GatewayProbingFailed")
    );
    assert!(v.message.contains("connect"));
    assert_eq!(evaluate(facts, Knowledge::Nothing), None);
}

fn log(otlp_output: bool, runtime_input: bool, otlp_input: bool) -> LogSpec {
    LogSpec {
        otlp_output,
        runtime_input,
        otlp_input,
    }
}

/// Judges pipeline "a" of `kind` with `spec` under the firing alerts
/// (full alert names, all scoped to "a" except throttling).
fn verdict_of(kind: Kind, spec: LogSpec, firing: &[&str]) -> (Status, &'static str) {
    let alerts: Vec<(&str, Option<&str>)> = firing
        .iter()
        .map(|a| (*a, (!a.ends_with("Throttling")).then_some("a")))
        .collect();
    let snap = snapshot(&alerts);
    let facts = PipelineFacts {
        kind,
        name: "a",
        log: spec,
    };
    let v = evaluate(facts, Knowledge::Fresh(&snap)).unwrap();
    (v.status, v.reason)
}

/// Every reason of every kind, and the precedence: each row lists alerts
/// firing together and the reason that must win.
#[test]
fn every_kind_has_its_reasons_in_its_order() {
    let none = LogSpec::default();
    let both = log(true, true, true);
    let fluent = log(false, true, false);
    type Case<'a> = (Kind, LogSpec, &'a [&'a str], &'a str);
    #[rustfmt::skip]
        let cases: &[Case] = &[
            (Kind::Trace, none, &[], "FlowHealthy"),
            (Kind::Trace, none, &["TraceGatewayThrottling"], "GatewayThrottling"),
            (Kind::Trace, none, &["TraceGatewayThrottling", "TraceGatewaySomeDataDropped"], "GatewaySomeTelemetryDataDropped"),
            (Kind::Trace, none, &["TraceGatewaySomeDataDropped", "TraceGatewayAllDataDropped"], "GatewayAllTelemetryDataDropped"),
            // Traces have no agent, and other kinds' alerts never count.
            (Kind::Trace, none, &["TraceAgentAllDataDropped", "MetricGatewayAllDataDropped", "LogGatewayAllDataDropped"], "FlowHealthy"),
            // OTLP logs with both inputs: all > some > throttling, agent first on a tie.
            (Kind::Log, both, &["LogGatewayThrottling"], "GatewayThrottling"),
            (Kind::Log, both, &["LogGatewayThrottling", "LogGatewaySomeDataDropped"], "GatewaySomeTelemetryDataDropped"),
            (Kind::Log, both, &["LogGatewaySomeDataDropped", "LogAgentSomeDataDropped"], "AgentSomeTelemetryDataDropped"),
            (Kind::Log, both, &["LogAgentSomeDataDropped", "LogGatewayAllDataDropped"], "GatewayAllTelemetryDataDropped"),
            (Kind::Log, both, &["LogGatewayAllDataDropped", "LogAgentAllDataDropped"], "AgentAllTelemetryDataDropped"),
            // Agent alerts only with a runtime input, gateway alerts only with an OTLP input.
            (Kind::Log, log(true, false, true), &["LogAgentAllDataDropped"], "FlowHealthy"),
            (Kind::Log, log(true, false, true), &["LogAgentAllDataDropped", "LogGatewayThrottling"], "GatewayThrottling"),
            (Kind::Log, log(true, true, false), &["LogGatewayAllDataDropped", "LogGatewayThrottling"], "FlowHealthy"),
            (Kind::Log, log(true, true, false), &["LogGatewayAllDataDropped", "LogAgentSomeDataDropped"], "AgentSomeTelemetryDataDropped"),
            // OTLP logs never read Fluent Bit's alerts, and Fluent Bit never the collectors'.
            (Kind::Log, both, &["LogFluentBitAllDataDropped", "LogFluentBitBufferInUse"], "FlowHealthy"),
            (Kind::Log, fluent, &["LogAgentAllDataDropped", "LogGatewayAllDataDropped", "LogGatewayThrottling"], "FlowHealthy"),
            // Fluent Bit: all > some > no logs > buffer, whatever the inputs.
            (Kind::Log, fluent, &["LogFluentBitBufferInUse"], "AgentBufferFillingUp"),
            (Kind::Log, fluent, &["LogFluentBitBufferInUse", "LogFluentBitNoLogsDelivered"], "AgentNoLogsDelivered"),
            (Kind::Log, fluent, &["LogFluentBitNoLogsDelivered", "LogFluentBitSomeDataDropped"], "AgentSomeTelemetryDataDropped"),
            (Kind::Log, fluent, &["LogFluentBitSomeDataDropped", "LogFluentBitAllDataDropped"], "AgentAllTelemetryDataDropped"),
            (Kind::Log, LogSpec::default(), &["LogFluentBitAllDataDropped"], "AgentAllTelemetryDataDropped"),
        ];
    for (kind, spec, firing, want) in cases {
        let (status, reason) = verdict_of(*kind, *spec, firing);
        assert_eq!(reason, *want, "{kind} {spec:?} {firing:?}");
        let want_status = if *want == "FlowHealthy" {
            Status::True
        } else {
            Status::False
        };
        assert_eq!(status, want_status, "{kind} {spec:?} {firing:?}");
    }
}

#[test]
fn stale_knowledge_names_the_component_the_manager_probes_first() {
    #[rustfmt::skip]
        let cases = [
            (Kind::Metric, LogSpec::default(), Some("GatewayProbingFailed")),
            (Kind::Trace, LogSpec::default(), Some("GatewayProbingFailed")),
            (Kind::Log, log(false, true, false), Some("AgentProbingFailed")),
            (Kind::Log, log(true, true, true), Some("AgentProbingFailed")),
            (Kind::Log, log(true, false, true), Some("GatewayProbingFailed")),
            // Nothing probed: the manager keeps it healthy.
            (Kind::Log, log(true, false, false), None),
        ];
    for (kind, spec, want) in cases {
        let facts = PipelineFacts {
            kind,
            name: "a",
            log: spec,
        };
        let v = evaluate(facts, Knowledge::Stale { cause: "connect" }).unwrap();
        match want {
            Some(reason) => assert_eq!(
                (v.status, v.reason),
                (Status::Unknown, reason),
                "{kind} {spec:?}"
            ),
            None => assert_eq!(v.status, Status::True, "{kind} {spec:?}"),
        }
    }
}
