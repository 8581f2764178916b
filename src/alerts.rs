//! The alert side of the data flow: which alerts concern which pipelines, the
//! snapshot of one poll, and the diff between two polls.
//!
//! Everything here is pure: the poller hands in the alerts Prometheus returned and
//! gets back what changed, so the whole matching and diff logic is tested without
//! a network.

use std::collections::{BTreeMap, BTreeSet};

/// Label that every Prometheus alert carries with the rule's name.
pub const ALERTNAME_LABEL: &str = "alertname";
/// Label naming the pipeline an alert is about; absent when it is about all of them.
pub const PIPELINE_NAME_LABEL: &str = "pipeline_name";
/// Label naming the kind of pipeline, for rules shared between kinds.
pub const PIPELINE_TYPE_LABEL: &str = "pipeline_type";

/// The lifecycle state of an active alert, as `/api/v1/alerts` reports it.
///
/// Resolved alerts are not reported at all, so there is no third state here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertState {
    /// The expression holds but the rule's `for` has not passed yet.
    Pending,
    /// The alert fires: the only state that counts for health.
    Firing,
}

/// One active alert as it came from Prometheus, reduced to what matters here.
///
/// `value`, `activeAt` and annotations are left out on purpose: the value moves on
/// every evaluation, and none of them says whether the alert is the same alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveAlert {
    pub labels: BTreeMap<String, String>,
    pub state: AlertState,
}

/// Which pipelines an alert is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// The alert has no `pipeline_name`: it concerns every pipeline of the kind.
    All,
    /// The alert concerns the named pipeline only.
    Pipeline(String),
}

/// Decides whether an alert belongs to the pipeline kind this controller manages,
/// and to which pipelines.
///
/// There is one matching rule, used by the poller (to diff) and by health (to
/// judge), so the two can never disagree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matcher {
    /// Alert names of the kind start with this (`Metric`).
    pub alertname_prefix: String,
    /// Value of `pipeline_type` that means our kind (`metricpipeline`).
    pub pipeline_type: String,
}

impl Default for Matcher {
    fn default() -> Self {
        Self {
            alertname_prefix: "Metric".into(),
            pipeline_type: "metricpipeline".into(),
        }
    }
}

impl Matcher {
    /// The scope of an alert, or `None` when it is not about our kind at all.
    ///
    /// The order of the checks is telemetry-manager's, and it matters: the
    /// alert name's prefix first (case-sensitive); then an alert without
    /// `pipeline_name` concerns every pipeline of the kind, whatever its
    /// `pipeline_type`; only a scoped alert must carry our `pipeline_type`
    /// exactly, if it carries one at all.
    pub fn scope(&self, labels: &BTreeMap<String, String>) -> Option<Scope> {
        let name = labels.get(ALERTNAME_LABEL)?;
        if !name.starts_with(&self.alertname_prefix) {
            return None;
        }
        let Some(pipeline) = labels.get(PIPELINE_NAME_LABEL) else {
            return Some(Scope::All);
        };
        if labels
            .get(PIPELINE_TYPE_LABEL)
            .is_some_and(|kind| *kind != self.pipeline_type)
        {
            return None;
        }
        Some(Scope::Pipeline(pipeline.clone()))
    }

    /// The rule name without the kind prefix (`GatewayAllDataDropped`), which is
    /// what health looks up; the prefix is configurable, the rest is the interface.
    pub fn rule<'a>(&self, labels: &'a BTreeMap<String, String>) -> Option<&'a str> {
        labels
            .get(ALERTNAME_LABEL)?
            .strip_prefix(self.alertname_prefix.as_str())
    }
}

/// The firing alerts of our kind at one poll, indexed for the two questions asked
/// of it: "what changed?" (by identity) and "what fires for pipeline X?" (by scope).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Identity (the full, sorted label set) to scope. Only firing alerts are here.
    alerts: BTreeMap<BTreeMap<String, String>, Scope>,
    /// Rule names (prefix stripped) firing for every pipeline.
    unscoped: BTreeSet<String>,
    /// Rule names firing per pipeline name.
    scoped: BTreeMap<String, BTreeSet<String>>,
    /// Pending alerts of our kind: reported in metrics, never acted upon.
    pending: usize,
}

impl Snapshot {
    /// Builds the snapshot from everything `/api/v1/alerts` returned; alerts of
    /// other kinds and pending alerts are dropped here, so nothing downstream
    /// has to think about them.
    pub fn from_alerts<I>(alerts: I, matcher: &Matcher) -> Self
    where
        I: IntoIterator<Item = ActiveAlert>,
    {
        let mut snapshot = Snapshot::default();
        for alert in alerts {
            let Some(scope) = matcher.scope(&alert.labels) else {
                continue;
            };
            if alert.state == AlertState::Pending {
                snapshot.pending += 1;
                continue;
            }
            let rule = matcher.rule(&alert.labels).unwrap_or_default().to_owned();
            match &scope {
                Scope::All => {
                    snapshot.unscoped.insert(rule);
                }
                Scope::Pipeline(name) => {
                    snapshot
                        .scoped
                        .entry(name.clone())
                        .or_default()
                        .insert(rule);
                }
            }
            snapshot.alerts.insert(alert.labels, scope);
        }
        snapshot
    }

    /// Number of firing alerts of our kind.
    pub fn firing(&self) -> usize {
        self.alerts.len()
    }

    /// Number of pending alerts of our kind.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Rule names (prefix stripped) firing for the pipeline, unscoped ones included.
    pub fn rules_for<'a>(&'a self, pipeline: &str) -> impl Iterator<Item = &'a str> + 'a {
        let scoped = self.scoped.get(pipeline).into_iter().flatten();
        self.unscoped.iter().chain(scoped).map(String::as_str)
    }

    /// What changed from `previous` to `self`.
    pub fn diff(&self, previous: &Snapshot) -> Diff {
        let mut diff = Diff::default();
        for (labels, scope) in &self.alerts {
            if !previous.alerts.contains_key(labels) {
                diff.added += 1;
                diff.affected.add(scope);
            }
        }
        for (labels, scope) in &previous.alerts {
            if !self.alerts.contains_key(labels) {
                diff.removed += 1;
                diff.affected.add(scope);
            }
        }
        diff
    }
}

/// The pipelines whose health may have changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Affected {
    /// Nothing changed: reconcile nobody.
    #[default]
    Nobody,
    /// Only these pipelines.
    Pipelines(BTreeSet<String>),
    /// An unscoped alert changed: every pipeline.
    All,
}

impl Affected {
    fn add(&mut self, scope: &Scope) {
        match (scope, &mut *self) {
            (_, Affected::All) => {}
            (Scope::All, _) => *self = Affected::All,
            (Scope::Pipeline(name), Affected::Pipelines(names)) => {
                names.insert(name.clone());
            }
            (Scope::Pipeline(name), Affected::Nobody) => {
                *self = Affected::Pipelines(BTreeSet::from([name.clone()]));
            }
        }
    }

    pub fn is_nobody(&self) -> bool {
        matches!(self, Affected::Nobody)
    }
}

/// The result of comparing two snapshots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Firing alerts that were not firing before.
    pub added: usize,
    /// Firing alerts that no longer fire (resolved, or back to pending).
    pub removed: usize,
    pub affected: Affected,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added == 0 && self.removed == 0
    }
}

#[cfg(test)]
mod tests {
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

    fn snap(alerts: Vec<ActiveAlert>) -> Snapshot {
        Snapshot::from_alerts(alerts, &Matcher::default())
    }

    fn names(names: &[&str]) -> Affected {
        Affected::Pipelines(names.iter().map(|n| n.to_string()).collect())
    }

    #[test]
    fn scope_follows_the_matching_rules() {
        let m = Matcher::default();
        let labels = |pairs: &[(&str, &str)]| firing(pairs).labels;
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<Scope>);
        let cases: &[Case] = &[
            (
                &[("alertname", "MetricGatewayThrottling")],
                Some(Scope::All),
            ),
            (
                &[
                    ("alertname", "MetricGatewayThrottling"),
                    ("pipeline_name", "a"),
                ],
                Some(Scope::Pipeline("a".into())),
            ),
            (
                &[
                    ("alertname", "MetricGatewayThrottling"),
                    ("pipeline_name", "a"),
                    ("pipeline_type", "metricpipeline"),
                ],
                Some(Scope::Pipeline("a".into())),
            ),
            (
                &[
                    ("alertname", "MetricGatewayThrottling"),
                    ("pipeline_name", "a"),
                    ("pipeline_type", "tracepipeline"),
                ],
                None,
            ),
            (
                &[
                    ("alertname", "TraceGatewayThrottling"),
                    ("pipeline_name", "a"),
                ],
                None,
            ),
            // Wrong case is another kind, as telemetry-manager compares it.
            (
                &[
                    ("alertname", "MetricGatewayThrottling"),
                    ("pipeline_name", "a"),
                    ("pipeline_type", "MetricPipeline"),
                ],
                None,
            ),
            // Unscoped is decided before pipeline_type is looked at.
            (
                &[
                    ("alertname", "MetricGatewayThrottling"),
                    ("pipeline_type", "tracepipeline"),
                ],
                Some(Scope::All),
            ),
            (&[("alertname", "metricGatewayThrottling")], None),
            (&[("alertname", "LogAgentAllDataDropped")], None),
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
            ..Matcher::default()
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
        assert_eq!(s.firing(), 0);
        assert_eq!(s.pending(), 1);
        assert_eq!(s.rules_for("a").count(), 0);
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
        let mut a: Vec<_> = s.rules_for("a").collect();
        a.sort();
        assert_eq!(a, ["AgentSomeDataDropped", "GatewayThrottling"]);
        let mut c: Vec<_> = s.rules_for("c").collect();
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
        assert_eq!(d.affected, Affected::Nobody);
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
        assert_eq!(after.diff(&before).affected, Affected::All);
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
}
