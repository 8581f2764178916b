//! The alert side of the data flow: which alerts concern which pipelines, the
//! snapshot of one poll, and the diff between two polls.
//!
//! Everything here is pure: the poller hands in the alerts Prometheus returned and
//! gets back what changed, so the whole matching and diff logic is tested without
//! a network.

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::kind::Kind;
pub use crate::domain::labels::LabelSet;

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
    pub labels: LabelSet,
    pub state: AlertState,
}

/// Which pipelines an alert is about; the name is borrowed from the alert's
/// labels, so classifying ten thousand alerts allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope<'a> {
    /// The alert has no `pipeline_name`: it concerns every pipeline of the kind.
    All,
    /// The alert concerns the named pipeline only.
    Pipeline(&'a str),
}

/// Decides whether an alert is about one pipeline kind, and about which of
/// its pipelines.
///
/// There is one matching rule, used by the poller (to diff) and by health (to
/// judge), so the two can never disagree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matcher {
    pub kind: Kind,
    /// Alert names of the kind start with this (`Metric`, `Trace`, `Log`).
    pub alertname_prefix: String,
    /// Value of `pipeline_type` that means this kind (`metricpipeline`, ...).
    pub pipeline_type: String,
}

impl Matcher {
    /// The kind's matcher as telemetry-manager names its alerts.
    pub fn for_kind(kind: Kind) -> Matcher {
        Matcher {
            kind,
            alertname_prefix: kind.alert_prefix().into(),
            pipeline_type: kind.pipeline_type().into(),
        }
    }

    /// Matchers for every kind.
    pub fn all() -> Vec<Matcher> {
        Kind::ALL.into_iter().map(Matcher::for_kind).collect()
    }

    /// Whether an alert of this name can be about this kind at all: the first
    /// of [`Matcher::scope`]'s checks, which the decoder asks before it
    /// allocates anything for an alert.
    pub fn takes_name(&self, alertname: &str) -> bool {
        alertname.starts_with(&self.alertname_prefix)
    }

    /// The scope of an alert, or `None` when it is not about this kind at all.
    ///
    /// The order of the checks is telemetry-manager's, and it matters: the
    /// alert name's prefix first (case-sensitive); then an alert without
    /// `pipeline_name` concerns every pipeline of the kind, whatever its
    /// `pipeline_type`; only a scoped alert must carry our `pipeline_type`
    /// exactly, if it carries one at all.
    pub fn scope<'a>(&self, labels: &'a LabelSet) -> Option<Scope<'a>> {
        if !self.takes_name(labels.get(ALERTNAME_LABEL)?) {
            return None;
        }
        let Some(pipeline) = labels.get(PIPELINE_NAME_LABEL) else {
            return Some(Scope::All);
        };
        if labels
            .get(PIPELINE_TYPE_LABEL)
            .is_some_and(|kind| kind != self.pipeline_type)
        {
            return None;
        }
        Some(Scope::Pipeline(pipeline))
    }

    /// The rule name without the kind prefix (`GatewayAllDataDropped`), which is
    /// what health looks up; the prefix is configurable, the rest is the interface.
    pub fn rule<'a>(&self, labels: &'a LabelSet) -> Option<&'a str> {
        labels
            .get(ALERTNAME_LABEL)?
            .strip_prefix(self.alertname_prefix.as_str())
    }
}

/// The alerts of several sources as one answer: each label set once, firing
/// if any source says it fires. An HA pair evaluates the same rules, so
/// either replica's answer is the truth; two rulers evaluate different ones,
/// so each alert is seen by one. The union is right for both, and an alert
/// seen by only one source still counts.
pub fn union(answers: Vec<Vec<ActiveAlert>>) -> Vec<ActiveAlert> {
    if answers.len() <= 1 {
        return answers.into_iter().flatten().collect();
    }
    let mut merged: BTreeMap<LabelSet, AlertState> = BTreeMap::new();
    for alert in answers.into_iter().flatten() {
        let state = merged.entry(alert.labels).or_insert(alert.state);
        if alert.state == AlertState::Firing {
            *state = AlertState::Firing;
        }
    }
    merged
        .into_iter()
        .map(|(labels, state)| ActiveAlert { labels, state })
        .collect()
}

/// Which kind an alert is about and its scope there: the first matcher that
/// takes it. The kinds' prefixes do not overlap, so at most one does.
fn classify<'m, 'a>(
    matchers: &'m [Matcher],
    labels: &'a LabelSet,
) -> Option<(&'m Matcher, Scope<'a>)> {
    matchers.iter().find_map(|m| Some((m, m.scope(labels)?)))
}

/// The firing alerts of the watched kinds at one poll, indexed for the two
/// questions asked of it: "what changed?" (by identity) and "what fires for
/// pipeline X of kind K?" (by scope).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The firing alerts of the watched kinds, sorted by identity (the full
    /// label set), each once. A sorted list rather than a tree: it is built
    /// once per poll and then only walked, by [`Snapshot::diff`].
    alerts: Vec<Firing>,
    /// Rule names (prefix stripped) firing for every pipeline of a kind.
    unscoped: BTreeMap<Kind, BTreeSet<String>>,
    /// Rule names firing per pipeline, by kind, then pipeline: nested so
    /// that a lookup by `&str` allocates nothing (a poll does one per alert).
    scoped: BTreeMap<Kind, BTreeMap<String, BTreeSet<String>>>,
    /// Pending alerts of the watched kinds, by kind: reported in metrics,
    /// never acted upon.
    pending: BTreeMap<Kind, usize>,
}

/// One firing alert of a snapshot: its identity, and what [`Snapshot::diff`]
/// needs to say whom its change affects.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Firing {
    labels: LabelSet,
    kind: Kind,
    /// Whether it names a pipeline; the name stays in `labels`.
    scoped: bool,
}

impl Firing {
    fn scope(&self) -> Scope<'_> {
        match self.labels.get(PIPELINE_NAME_LABEL) {
            Some(name) if self.scoped => Scope::Pipeline(name),
            _ => Scope::All,
        }
    }
}

impl Snapshot {
    /// Builds the snapshot from everything `/api/v1/alerts` returned; alerts of
    /// no watched kind and pending alerts are dropped here, so nothing
    /// downstream has to think about them.
    pub fn from_alerts<I>(alerts: I, matchers: &[Matcher]) -> Self
    where
        I: IntoIterator<Item = ActiveAlert>,
    {
        Snapshot::after(alerts, matchers, None)
    }

    /// [`Snapshot::from_alerts`], after `previous`: an alert that was firing
    /// there and is pending now still counts as firing. Prometheus never
    /// takes a firing alert back to pending; a restarted Prometheus does
    /// show it pending again, for as long as the rule's `for` (a minute in
    /// telemetry-manager's rules) from its first evaluation, before it fires
    /// again. Read as a resolve, that minute would write "healthy" for a
    /// pipeline whose alert never stopped.
    pub fn after<I>(alerts: I, matchers: &[Matcher], previous: Option<&Snapshot>) -> Self
    where
        I: IntoIterator<Item = ActiveAlert>,
    {
        let mut snapshot = Snapshot::default();
        for alert in alerts {
            let Some((matcher, scope)) = classify(matchers, &alert.labels) else {
                continue;
            };
            let was_firing = || previous.is_some_and(|p| p.is_firing(&alert.labels));
            let kind = matcher.kind;
            if alert.state == AlertState::Pending && !was_firing() {
                *snapshot.pending.entry(kind).or_default() += 1;
                continue;
            }
            let rule = matcher.rule(&alert.labels).unwrap_or_default();
            let rules = match scope {
                Scope::All => snapshot.unscoped.entry(kind).or_default(),
                Scope::Pipeline(name) => {
                    let pipelines = snapshot.scoped.entry(kind).or_default();
                    if !pipelines.contains_key(name) {
                        pipelines.insert(name.to_owned(), BTreeSet::new());
                    }
                    pipelines.get_mut(name).expect("inserted above")
                }
            };
            // Many alerts share a rule (one per pod, say): its name is
            // copied only the first time.
            if !rules.contains(rule) {
                rules.insert(rule.to_owned());
            }
            let scoped = matches!(scope, Scope::Pipeline(_));
            snapshot.alerts.push(Firing {
                labels: alert.labels,
                kind,
                scoped,
            });
        }
        // Two sources may both report an alert; it is one alert.
        snapshot
            .alerts
            .sort_unstable_by(|a, b| a.labels.cmp(&b.labels));
        snapshot.alerts.dedup_by(|a, b| a.labels == b.labels);
        snapshot
    }

    /// Whether an alert firing in `previous` is not firing here.
    pub fn drops_firing_of(&self, previous: &Snapshot) -> bool {
        previous.alerts.iter().any(|a| !self.is_firing(&a.labels))
    }

    /// This snapshot with every alert that fired in `previous` firing too:
    /// what a source that has just started does not show yet is kept.
    pub fn with_firing_of(self, previous: &Snapshot, matchers: &[Matcher]) -> Snapshot {
        let pending = self.pending.clone();
        let alerts = self
            .alerts
            .into_iter()
            .chain(previous.alerts.iter().cloned());
        let mut kept = Snapshot::from_alerts(
            alerts.map(|a| ActiveAlert {
                labels: a.labels,
                state: AlertState::Firing,
            }),
            matchers,
        );
        kept.pending = pending;
        kept
    }

    /// Whether the alert with these labels is firing here.
    fn is_firing(&self, labels: &LabelSet) -> bool {
        self.alerts
            .binary_search_by(|a| a.labels.cmp(labels))
            .is_ok()
    }

    /// Number of firing alerts of the watched kinds.
    pub fn firing(&self) -> usize {
        self.alerts.len()
    }

    /// Number of pending alerts of the watched kinds.
    pub fn pending(&self) -> usize {
        self.pending.values().sum()
    }

    /// Number of firing alerts of `kind`.
    pub fn firing_of(&self, kind: Kind) -> usize {
        self.alerts.iter().filter(|a| a.kind == kind).count()
    }

    /// Number of pending alerts of `kind`.
    pub fn pending_of(&self, kind: Kind) -> usize {
        self.pending.get(&kind).copied().unwrap_or_default()
    }

    /// Rule names (prefix stripped) firing for the pipeline, unscoped ones of
    /// its kind included.
    pub fn rules_for<'a>(
        &'a self,
        kind: Kind,
        pipeline: &str,
    ) -> impl Iterator<Item = &'a str> + 'a {
        let unscoped = self.unscoped.get(&kind).into_iter().flatten();
        let scoped = self
            .scoped
            .get(&kind)
            .and_then(|pipelines| pipelines.get(pipeline))
            .into_iter()
            .flatten();
        unscoped.chain(scoped).map(String::as_str)
    }

    /// What changed from `previous` to `self`: one walk through both sets in
    /// their sorted order, which compares each label set about once instead
    /// of looking every one up in the other set.
    pub fn diff(&self, previous: &Snapshot) -> Diff {
        use std::cmp::Ordering;

        let mut diff = Diff::default();
        let mut now = self.alerts.iter().peekable();
        let mut before = previous.alerts.iter().peekable();
        loop {
            let order = match (now.peek(), before.peek()) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(a), Some(b)) => a.labels.cmp(&b.labels),
            };
            match order {
                Ordering::Less => {
                    let alert = now.next().expect("peeked");
                    diff.added += 1;
                    diff.affected.add(alert.kind, alert.scope());
                }
                Ordering::Greater => {
                    let alert = before.next().expect("peeked");
                    diff.removed += 1;
                    diff.affected.add(alert.kind, alert.scope());
                }
                Ordering::Equal => {
                    now.next();
                    before.next();
                }
            }
        }
        diff
    }
}

/// The pipelines of one kind whose health may have changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Targets {
    /// Only these pipelines.
    Pipelines(BTreeSet<String>),
    /// An unscoped alert of the kind changed: every pipeline of the kind.
    All,
}

/// The pipelines, per kind, whose health may have changed; no entry for a
/// kind means none of its pipelines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Affected(BTreeMap<Kind, Targets>);

impl Affected {
    /// Nobody: nothing changed.
    pub fn nobody() -> Affected {
        Affected::default()
    }

    /// Every pipeline of every kind (first poll, staleness, recovery, tuning).
    pub fn everyone() -> Affected {
        Affected(Kind::ALL.into_iter().map(|k| (k, Targets::All)).collect())
    }

    /// The named pipelines of one kind.
    pub fn pipelines<I, S>(kind: Kind, names: I) -> Affected
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names: BTreeSet<String> = names.into_iter().map(Into::into).collect();
        if names.is_empty() {
            return Affected::nobody();
        }
        Affected(BTreeMap::from([(kind, Targets::Pipelines(names))]))
    }

    /// Every pipeline of one kind.
    pub fn all_of(kind: Kind) -> Affected {
        Affected(BTreeMap::from([(kind, Targets::All)]))
    }

    pub fn is_nobody(&self) -> bool {
        self.0.is_empty()
    }

    /// What to re-queue of one kind, if anything.
    pub fn of(&self, kind: Kind) -> Option<&Targets> {
        self.0.get(&kind)
    }

    /// The kinds with something to re-queue, and what.
    pub fn iter(&self) -> impl Iterator<Item = (Kind, &Targets)> {
        self.0.iter().map(|(k, t)| (*k, t))
    }

    fn add(&mut self, kind: Kind, scope: Scope<'_>) {
        let targets = self
            .0
            .entry(kind)
            .or_insert_with(|| Targets::Pipelines(BTreeSet::new()));
        match (scope, targets) {
            (Scope::All, targets) => *targets = Targets::All,
            (Scope::Pipeline(name), Targets::Pipelines(names)) => {
                if !names.contains(name) {
                    names.insert(name.to_owned());
                }
            }
            (Scope::Pipeline(_), Targets::All) => {}
        }
    }
}

/// The result of comparing two snapshots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Firing alerts that were not firing before.
    pub added: usize,
    /// Firing alerts that no longer fire (resolved; pending again only where
    /// the snapshot was not built after the previous one).
    pub removed: usize,
    pub affected: Affected,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added == 0 && self.removed == 0
    }
}

#[cfg(test)]
mod tests;
