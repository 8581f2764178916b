use super::*;

fn alert(state: AlertState, labels: &[(&str, &str)]) -> ActiveAlert {
    ActiveAlert {
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        state,
    }
}

fn firing(labels: &[(&str, &str)]) -> ActiveAlert {
    alert(AlertState::Firing, labels)
}

/// A restarted Prometheus shows a firing alert as pending until its
/// `for` has passed again: still firing, after a snapshot where it
/// fired; a new pending alert is pending; a gone one is gone.
#[test]
fn pending_again_after_firing_is_still_firing() {
    let a = [
        ("alertname", "MetricGatewayAllDataDropped"),
        ("pipeline_name", "a"),
    ];
    let b = [
        ("alertname", "MetricGatewayAllDataDropped"),
        ("pipeline_name", "b"),
    ];
    let c = [
        ("alertname", "MetricGatewayThrottling"),
        ("receiver", "otlp"),
    ];
    let m = Matcher::all();
    let before = Snapshot::from_alerts([firing(&a), firing(&c)], &m);
    let restarted = [
        alert(AlertState::Pending, &a),
        alert(AlertState::Pending, &b),
    ];
    let after = Snapshot::after(restarted.clone(), &m, Some(&before));
    assert_eq!((after.firing(), after.pending()), (1, 1));
    assert!(after.is_firing(&firing(&a).labels));
    let diff = after.diff(&before);
    assert_eq!((diff.added, diff.removed), (0, 1), "only c went away");
    // Kept whole while the source settles after its start.
    let kept = Snapshot::from_alerts([firing(&b)], &m).with_firing_of(&before, &m);
    assert_eq!(kept.firing(), 3);
    assert!(!kept.drops_firing_of(&before) && after.drops_firing_of(&before));
    // Without the previous snapshot it would read as a resolve of a.
    let naive = Snapshot::from_alerts(restarted, &m);
    assert_eq!((naive.firing(), naive.pending()), (0, 2));
}

fn snap(alerts: Vec<ActiveAlert>) -> Snapshot {
    Snapshot::from_alerts(alerts, &Matcher::all())
}

fn names(names: &[&str]) -> Affected {
    Affected::pipelines(Kind::Metric, names.iter().copied())
}

#[test]
fn the_union_of_sources_keeps_each_alert_once_firing_if_any_says_so() {
    let a = [
        ("alertname", "MetricGatewayThrottling"),
        ("pipeline_name", "a"),
    ];
    let b = [
        ("alertname", "MetricGatewayThrottling"),
        ("pipeline_name", "b"),
    ];
    let c = [("alertname", "MetricAgentSomeDataDropped")];
    let pending = |labels: &[(&str, &str)]| alert(AlertState::Pending, labels);
    type Case = (Vec<Vec<ActiveAlert>>, Vec<ActiveAlert>);
    let cases: Vec<Case> = vec![
        (vec![], vec![]),
        (vec![vec![firing(&a)]], vec![firing(&a)]),
        // An HA pair: both see it, it counts once.
        (vec![vec![firing(&a)], vec![firing(&a)]], vec![firing(&a)]),
        // Seen by one source only: still counts.
        (vec![vec![firing(&a)], vec![]], vec![firing(&a)]),
        (vec![vec![], vec![firing(&b)]], vec![firing(&b)]),
        // One replica is a step behind: firing wins over pending.
        (vec![vec![pending(&a)], vec![firing(&a)]], vec![firing(&a)]),
        (vec![vec![firing(&a)], vec![pending(&a)]], vec![firing(&a)]),
        (
            vec![vec![pending(&c)], vec![pending(&c)]],
            vec![pending(&c)],
        ),
        (
            vec![vec![firing(&b), pending(&c)], vec![firing(&a)]],
            vec![pending(&c), firing(&a), firing(&b)],
        ),
    ];
    for (answers, expected) in cases {
        let shown = format!("{answers:?}");
        let mut got = union(answers);
        got.sort_by(|x, y| x.labels.cmp(&y.labels));
        let mut expected = expected;
        expected.sort_by(|x, y| x.labels.cmp(&y.labels));
        assert_eq!(got, expected, "{shown}");
    }
}

// Unformatted so the cases stay one per line.
#[rustfmt::skip]
#[test]
fn scope_follows_the_matching_rules() {
    let m = Matcher::for_kind(Kind::Metric);
    let labels = |pairs: &[(&str, &str)]| firing(pairs).labels;
    const NAME: &str = "alertname";
    const THROTTLING: &str = "MetricGatewayThrottling";
    type Case<'a> = (&'a [(&'a str, &'a str)], Option<Scope<'a>>);
    let cases: &[Case] = &[
        (&[(NAME, THROTTLING)], Some(Scope::All)),
        (&[(NAME, THROTTLING), ("pipeline_name", "a")], Some(Scope::Pipeline("a"))),
        (&[(NAME, THROTTLING), ("pipeline_name", "a"), ("pipeline_type", "metricpipeline")], Some(Scope::Pipeline("a"))),
        (&[(NAME, THROTTLING), ("pipeline_name", "a"), ("pipeline_type", "tracepipeline")], None),
        (&[(NAME, "TraceGatewayThrottling"), ("pipeline_name", "a")], None),
        // Wrong case is another kind, as telemetry-manager compares it.
        (&[(NAME, THROTTLING), ("pipeline_name", "a"), ("pipeline_type", "MetricPipeline")], None),
        // Unscoped is decided before pipeline_type is looked at.
        (&[(NAME, THROTTLING), ("pipeline_type", "tracepipeline")], Some(Scope::All)),
        (&[(NAME, "metricGatewayThrottling")], None),
        (&[(NAME, "LogAgentAllDataDropped")], None),
        (&[("pipeline_name", "a")], None),
    ];
    for (pairs, want) in cases {
        assert_eq!(&m.scope(&labels(pairs)), want, "labels {pairs:?}");
    }
}

#[test]
fn rule_strips_the_configured_prefix() {
    let m = Matcher {
        alertname_prefix: "Metric".into(),
        ..Matcher::for_kind(Kind::Metric)
    };
    let labels = firing(&[("alertname", "MetricGatewayThrottling")]).labels;
    assert_eq!(m.rule(&labels), Some("GatewayThrottling"));
}

#[test]
fn pending_and_foreign_alerts_stay_out_of_the_snapshot() {
    let s = snap(vec![
        alert(
            AlertState::Pending,
            &[
                ("alertname", "MetricGatewayThrottling"),
                ("pipeline_name", "a"),
            ],
        ),
        firing(&[
            ("alertname", "TraceGatewayThrottling"),
            ("pipeline_name", "a"),
        ]),
        firing(&[("alertname", "Watchdog")]),
    ]);
    // The trace alert is kept, as a trace alert; the rest are not ours.
    assert_eq!(s.firing(), 1);
    assert_eq!(s.pending(), 1);
    assert_eq!(s.rules_for(Kind::Metric, "a").count(), 0);
    assert_eq!(s.rules_for(Kind::Trace, "a").count(), 1);
}

#[test]
fn rules_for_combines_scoped_and_unscoped() {
    let s = snap(vec![
        firing(&[
            ("alertname", "MetricGatewayThrottling"),
            ("pipeline_name", "a"),
        ]),
        firing(&[("alertname", "MetricAgentSomeDataDropped")]),
        firing(&[
            ("alertname", "MetricGatewayAllDataDropped"),
            ("pipeline_name", "b"),
        ]),
    ]);
    let mut a: Vec<_> = s.rules_for(Kind::Metric, "a").collect();
    a.sort();
    assert_eq!(a, ["AgentSomeDataDropped", "GatewayThrottling"]);
    let mut c: Vec<_> = s.rules_for(Kind::Metric, "c").collect();
    c.sort();
    assert_eq!(c, ["AgentSomeDataDropped"]);
}

#[test]
fn identical_polls_diff_to_nothing() {
    let alerts = vec![
        firing(&[
            ("alertname", "MetricGatewayThrottling"),
            ("pipeline_name", "a"),
        ]),
        firing(&[("alertname", "MetricAgentSomeDataDropped")]),
    ];
    let d = snap(alerts.clone()).diff(&snap(alerts));
    assert!(d.is_empty());
    assert_eq!(d.affected, Affected::nobody());
}

#[test]
fn a_new_scoped_alert_affects_only_its_pipeline() {
    let before = snap(vec![firing(&[
        ("alertname", "MetricGatewayThrottling"),
        ("pipeline_name", "a"),
    ])]);
    let after = snap(vec![
        firing(&[
            ("alertname", "MetricGatewayThrottling"),
            ("pipeline_name", "a"),
        ]),
        firing(&[
            ("alertname", "MetricGatewayAllDataDropped"),
            ("pipeline_name", "b"),
        ]),
    ]);
    let d = after.diff(&before);
    assert_eq!((d.added, d.removed), (1, 0));
    assert_eq!(d.affected, names(&["b"]));
}

#[test]
fn resolved_alerts_affect_their_pipelines() {
    let before = snap(vec![
        firing(&[
            ("alertname", "MetricGatewayThrottling"),
            ("pipeline_name", "a"),
        ]),
        firing(&[
            ("alertname", "MetricGatewayAllDataDropped"),
            ("pipeline_name", "b"),
        ]),
    ]);
    let d = snap(vec![]).diff(&before);
    assert_eq!((d.added, d.removed), (0, 2));
    assert_eq!(d.affected, names(&["a", "b"]));
}

#[test]
fn an_unscoped_change_affects_all() {
    let before = snap(vec![firing(&[
        ("alertname", "MetricGatewayThrottling"),
        ("pipeline_name", "a"),
    ])]);
    let after = snap(vec![
        firing(&[
            ("alertname", "MetricGatewayThrottling"),
            ("pipeline_name", "b"),
        ]),
        firing(&[("alertname", "MetricGatewayThrottling")]),
    ]);
    assert_eq!(after.diff(&before).affected, Affected::all_of(Kind::Metric));
}

#[test]
fn pending_to_firing_counts_as_added_and_back_as_removed() {
    let labels = &[
        ("alertname", "MetricGatewayThrottling"),
        ("pipeline_name", "a"),
    ];
    let pending = snap(vec![alert(AlertState::Pending, labels)]);
    let fires = snap(vec![firing(labels)]);
    assert_eq!(fires.diff(&pending).affected, names(&["a"]));
    assert_eq!(pending.diff(&fires).affected, names(&["a"]));
    // A pending alert appearing or vanishing triggers nothing.
    assert!(pending.diff(&snap(vec![])).is_empty());
}

#[test]
fn identity_is_the_whole_label_set() {
    let one = snap(vec![firing(&[
        ("alertname", "MetricGatewayThrottling"),
        ("pipeline_name", "a"),
        ("pod", "gw-1"),
    ])]);
    let other = snap(vec![firing(&[
        ("alertname", "MetricGatewayThrottling"),
        ("pipeline_name", "a"),
        ("pod", "gw-2"),
    ])]);
    let d = other.diff(&one);
    assert_eq!((d.added, d.removed), (1, 1));
    assert_eq!(d.affected, names(&["a"]));
}

#[test]
fn one_snapshot_keeps_every_kind_apart() {
    let before = snap(vec![]);
    let after = snap(vec![
        firing(&[
            ("alertname", "TraceGatewayAllDataDropped"),
            ("pipeline_name", "a"),
        ]),
        firing(&[("alertname", "LogGatewayThrottling"), ("receiver", "otlp")]),
        firing(&[
            ("alertname", "MetricAgentSomeDataDropped"),
            ("pipeline_name", "a"),
        ]),
        // A scoped alert whose pipeline_type names another kind: nobody's.
        firing(&[
            ("alertname", "MetricGatewayAllDataDropped"),
            ("pipeline_name", "b"),
            ("pipeline_type", "logpipeline"),
        ]),
        firing(&[("alertname", "NoiseAlert"), ("pipeline_name", "a")]),
    ]);
    assert_eq!(after.firing(), 3);
    let rules = |k, p| after.rules_for(k, p).collect::<Vec<_>>();
    assert_eq!(rules(Kind::Trace, "a"), ["GatewayAllDataDropped"]);
    assert_eq!(rules(Kind::Metric, "a"), ["AgentSomeDataDropped"]);
    assert_eq!(rules(Kind::Log, "zzz"), ["GatewayThrottling"]);
    assert!(rules(Kind::Metric, "b").is_empty());
    let affected = after.diff(&before).affected;
    let kinds: Vec<(Kind, &Targets)> = affected.iter().collect();
    assert_eq!(
        kinds,
        [
            (
                Kind::Metric,
                &Targets::Pipelines(BTreeSet::from(["a".to_owned()]))
            ),
            (
                Kind::Trace,
                &Targets::Pipelines(BTreeSet::from(["a".to_owned()]))
            ),
            (Kind::Log, &Targets::All),
        ]
    );
    // Only the matchers given count: without Log, its alert is ignored.
    let metric_only = Snapshot::from_alerts(
        vec![firing(&[("alertname", "LogGatewayThrottling")])],
        &[Matcher::for_kind(Kind::Metric)],
    );
    assert_eq!(metric_only.firing(), 0);
}
