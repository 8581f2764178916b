//! Applies the tuning ConfigMap at run time.
//!
//! The ConfigMap in the controller's namespace is watched; every version is
//! validated against the flag/environment base. A valid one replaces the
//! tuning at once (the poller wakes up for it). A bad one, an empty one or a
//! deleted one changes nothing: the last good tuning stays, and the refusal is
//! logged with key and value, recorded as a Warning Event on the ConfigMap and
//! shown as `alert_poller_config_valid 0`.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::runtime::events::Reporter;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{ConfigErrors, Tuning};
use crate::operations::metrics::Metrics;

/// What to do with one version of the ConfigMap. Pure, so the policy is
/// tested without a cluster.
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// Switch to this tuning.
    Apply(Box<Tuning>),
    /// Valid, and the same as the current tuning.
    Unchanged,
    /// Keep the current tuning; the reasons say why.
    Refuse(ConfigErrors),
    /// No keys at all: most likely a mistake, so the last good tuning stays.
    Empty,
}

pub fn decide(base: &Tuning, current: &Tuning, data: &BTreeMap<String, String>) -> Decision {
    if data.is_empty() {
        return Decision::Empty;
    }
    match base.with_overrides(data) {
        Ok(tuning) if tuning == *current => Decision::Unchanged,
        Ok(tuning) => Decision::Apply(Box::new(tuning)),
        Err(errors) => Decision::Refuse(errors),
    }
}

/// Watches the ConfigMap until `shutdown`.
pub struct ConfigWatch {
    pub client: Client,
    pub namespace: String,
    pub name: String,
    /// Defaults with flags and environment applied: what the ConfigMap overrides.
    pub base: Arc<Tuning>,
    pub tuning: watch::Sender<Arc<Tuning>>,
    /// Names this replica in the Events it records.
    pub reporter: Reporter,
    pub metrics: Arc<Metrics>,
    /// Set once the first list is done, whether or not the ConfigMap exists.
    pub loaded: watch::Sender<bool>,
}

impl ConfigWatch {
    pub async fn run(self, shutdown: CancellationToken) {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        let config = watcher::Config::default().fields(&format!("metadata.name={}", self.name));
        let mut events = watcher(api, config).default_backoff().boxed();
        // Re-lists after a dropped watch replay the same version: act once.
        let mut last_seen: Option<String> = None;
        loop {
            let event = tokio::select! {
                () = shutdown.cancelled() => return,
                event = events.next() => event,
            };
            match event {
                None => return,
                Some(Err(error)) => {
                    tracing::warn!(%error, configmap = %self.name, "ConfigMap watch failed; retrying");
                }
                Some(Ok(watcher::Event::Apply(cm) | watcher::Event::InitApply(cm))) => {
                    if last_seen.as_deref() != cm.resource_version().as_deref()
                        || last_seen.is_none()
                    {
                        last_seen = cm.resource_version();
                        self.on_version(&cm).await;
                    }
                }
                Some(Ok(watcher::Event::Delete(_))) => {
                    last_seen = None;
                    tracing::warn!(
                        configmap = %self.name,
                        "tuning ConfigMap deleted; keeping the last good tuning"
                    );
                }
                Some(Ok(watcher::Event::InitDone)) => {
                    if !*self.loaded.borrow() {
                        if last_seen.is_none() {
                            tracing::info!(configmap = %self.name, "no tuning ConfigMap; using flags and defaults");
                        }
                        self.loaded.send_replace(true);
                    }
                }
                Some(Ok(watcher::Event::Init)) => {}
            }
        }
    }

    async fn on_version(&self, cm: &ConfigMap) {
        let data = cm.data.clone().unwrap_or_default();
        let current = self.tuning.borrow().clone();
        match decide(&self.base, &current, &data) {
            Decision::Apply(tuning) => {
                self.metrics.record_config(true);
                tracing::info!(
                    configmap = %self.name,
                    changed = %current.changed_keys(&tuning).join(","),
                    "tuning applied"
                );
                if current.condition_type != tuning.condition_type {
                    self.condition_type_changed(
                        cm,
                        &current.condition_type,
                        &tuning.condition_type,
                    )
                    .await;
                }
                self.tuning.send_replace(Arc::new(*tuning));
            }
            Decision::Unchanged => self.metrics.record_config(true),
            Decision::Empty => {
                self.metrics.record_config(false);
                let note = "the ConfigMap has no keys; keeping the last good tuning".to_owned();
                tracing::warn!(configmap = %self.name, "{note}");
                self.warn(cm, "EmptyConfig", note).await;
            }
            Decision::Refuse(errors) => {
                self.metrics.record_config(false);
                for e in &errors.0 {
                    tracing::warn!(
                        configmap = %self.name,
                        key = %e.key,
                        value = %e.value,
                        reason = %e.reason,
                        "invalid tuning; keeping the last good tuning"
                    );
                }
                self.warn(
                    cm,
                    "InvalidConfig",
                    format!("keeping the last good tuning: {errors}"),
                )
                .await;
            }
        }
    }

    /// The old condition is left where it is: alert-poller cannot tell a
    /// condition it wrote from the same type kept by another writer (the
    /// manager's, in shadow mode), and deleting someone else's is worse than
    /// a leftover. Saying so once, where operators look, is the clean-up aid.
    async fn condition_type_changed(&self, cm: &ConfigMap, old: &str, new: &str) {
        let note = format!(
            "conditionType changed from {old} to {new}: conditions of type {old} already written stay on the pipelines and are no longer kept current; remove them if no other writer keeps {old} (docs/operating.md)"
        );
        tracing::warn!(configmap = %self.name, old, new, "{note}");
        self.warn(cm, "ConditionTypeChanged", note).await;
    }

    /// One Event per refused version, each with its own note. Not through
    /// kube's `Recorder`: it folds Events with the same reason on the same
    /// object into one series and keeps the first note, so a second,
    /// different mistake would show the first one's message. ConfigMap
    /// versions come from people, so there is nothing to rate-limit.
    async fn warn(&self, cm: &ConfigMap, reason: &str, note: String) {
        let now = Timestamp::now();
        let event = Event {
            metadata: ObjectMeta {
                // As Kubernetes' recorders name them: the object, then time.
                name: Some(format!("{}.{:x}", self.name, now.as_nanosecond())),
                namespace: Some(self.namespace.clone()),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some("Warning".into()),
            reason: Some(reason.into()),
            note: Some(truncate(note, 1000)),
            action: Some("ApplyTuning".into()),
            regarding: Some(cm.object_ref(&())),
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: self.reporter.instance.clone(),
            ..Event::default()
        };
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        if let Err(error) = events.create(&PostParams::default(), &event).await {
            tracing::warn!(%error, "cannot record the ConfigMap event");
        }
    }
}

/// Event notes are limited to 1 kB.
fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max - 3;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn valid_change_applies_and_same_values_do_not() {
        let base = Tuning::defaults();
        let d = decide(&base, &base, &data(&[("minInterval", "500ms")]));
        let Decision::Apply(t) = d else {
            panic!("expected Apply, got {d:?}")
        };
        assert_eq!(t.min_interval, Duration::from_millis(500));
        assert_eq!(
            decide(&base, &t, &data(&[("minInterval", "500ms")])),
            Decision::Unchanged
        );
    }

    #[test]
    fn bad_or_empty_configmaps_keep_the_current_tuning() {
        let base = Tuning::defaults();
        let current = base
            .with_overrides(&data(&[("minInterval", "500ms")]))
            .unwrap();
        assert!(matches!(
            decide(&base, &current, &data(&[("minInterval", "soon")])),
            Decision::Refuse(e) if e.0[0].key == "minInterval" && e.0[0].value == "soon"
        ));
        assert_eq!(decide(&base, &current, &BTreeMap::new()), Decision::Empty);
    }

    #[test]
    fn changed_keys_names_configmap_keys() {
        let a = Tuning::defaults();
        let b = a
            .with_overrides(&data(&[("minInterval", "500ms"), ("staleAfter", "5m")]))
            .unwrap();
        assert_eq!(a.changed_keys(&b), ["minInterval", "staleAfter"]);
    }

    #[test]
    fn notes_are_cut_on_char_boundaries() {
        let s = truncate("é".repeat(600), 1000);
        assert!(s.len() <= 1000 && s.ends_with("..."));
    }
}
