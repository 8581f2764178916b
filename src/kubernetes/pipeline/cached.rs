//! What the controller keeps of each pipeline in its cache: only what a
//! verdict and a status write read. A pipeline as the API server sends it
//! carries its whole spec, `managedFields` and often a
//! `kubectl.kubernetes.io/last-applied-configuration` copy of the spec; with
//! a thousand pipelines that is most of the controller's memory, and none of
//! it is ever read.
//!
//! Kept: name, uid, resourceVersion and generation (identity, Events, the
//! guarded write, `observedGeneration`), the conditions list (the write
//! compares ours and, on an atomic list, writes everyone's back), who wrote
//! the status and when (the managedFields entries of the status
//! subresource without their field sets: that names another writer of our
//! condition, see `other_writers`), and of a
//! LogPipeline's spec the presence of the three fields its verdict depends
//! on. Nothing is ever written from the cache but the conditions, so a
//! trimmed spec cannot leak into the API server.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use kube::api::DynamicObject;
use serde_json::{Map, Value, json};

use crate::domain::kind::Kind;
use crate::kubernetes::pipeline::log;

/// Trims a pipeline of `kind` to what the controller reads.
pub fn trim(kind: Kind, pipeline: &mut DynamicObject) {
    let metadata = &mut pipeline.metadata;
    metadata.managed_fields = metadata.managed_fields.take().map(|entries| {
        entries
            .into_iter()
            .filter(|e| e.subresource.as_deref() == Some("status"))
            .map(|e| ManagedFieldsEntry {
                manager: e.manager,
                operation: e.operation,
                subresource: e.subresource,
                time: e.time,
                ..ManagedFieldsEntry::default()
            })
            .collect()
    });
    metadata.annotations = None;
    metadata.labels = None;
    metadata.owner_references = None;
    metadata.finalizers = None;
    let conditions = pipeline
        .data
        .pointer_mut("/status/conditions")
        .map(Value::take);
    let spec = match kind {
        Kind::Log => log_spec_skeleton(&pipeline.data),
        Kind::Metric | Kind::Trace => Value::Object(Map::new()),
    };
    let mut data = Map::new();
    data.insert("spec".into(), spec);
    if let Some(conditions) = conditions {
        data.insert("status".into(), json!({ "conditions": conditions }));
    }
    pipeline.data = Value::Object(data);
}

/// The smallest LogPipeline spec that [`log::spec_of`] judges as it judges
/// the whole one: each field that counts, present as an empty object.
fn log_spec_skeleton(object: &Value) -> Value {
    let facts = log::spec_of(object);
    let mut input = Map::new();
    if facts.runtime_input {
        input.insert("runtime".into(), json!({}));
    }
    if facts.otlp_input {
        input.insert("otlp".into(), json!({}));
    }
    let mut output = Map::new();
    if facts.otlp_output {
        output.insert("otlp".into(), json!({}));
    }
    json!({ "input": input, "output": output })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubernetes::controller::watched_state;

    fn object(data: Value) -> DynamicObject {
        let mut object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "telemetry.kyma-project.io/v1beta1",
            "kind": "LogPipeline",
            "metadata": {
                "name": "app", "uid": "u-1", "resourceVersion": "42", "generation": 3,
                "labels": {"team": "a"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}"},
                "managedFields": [
                    {"manager": "kubectl", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}},
                    {"manager": "telemetry-manager", "operation": "Update", "subresource": "status",
                     "time": "2026-12-04T10:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}},
                ],
            },
        }))
        .unwrap();
        object.data = data;
        object
    }

    /// Every LogPipeline spec is judged the same trimmed as whole, and the
    /// identity, the generation and the conditions survive as they were.
    #[test]
    fn a_trimmed_pipeline_is_judged_and_written_the_same() {
        let conditions = json!([
            {"type": "GatewayHealthy", "status": "True", "reason": "X"},
            {"type": "TelemetryFlowHealthy", "status": "False", "reason": "Y"},
        ]);
        for spec in [
            json!({}),
            json!({"input": {"runtime": {"enabled": false}, "otlp": {"enabled": true}},
                   "output": {"otlp": {"endpoint": {"value": "http://x:4317"}, "tls": {"ca": {"value": "PEM"}}}}}),
            json!({"input": {"application": {"namespaces": {"include": ["a"]}}},
                   "output": {"http": {"host": {"value": "h"}}}}),
            json!({"input": {"otlp": null}, "output": {"custom": "[OUTPUT]\n  Name stdout"}}),
        ] {
            let whole = object(
                json!({"spec": spec, "status": {"conditions": conditions, "unsupportedMode": true}}),
            );
            let mut trimmed = whole.clone();
            trim(Kind::Log, &mut trimmed);
            assert_eq!(
                log::spec_of(&trimmed.data),
                log::spec_of(&whole.data),
                "{spec}"
            );
            assert_eq!(trimmed.data["status"]["conditions"], conditions);
            assert_eq!(
                watched_state(&trimmed, "TelemetryFlowHealthy"),
                watched_state(&whole, "TelemetryFlowHealthy")
            );
            let m = &trimmed.metadata;
            assert_eq!(
                (
                    m.name.as_deref(),
                    m.uid.as_deref(),
                    m.resource_version.as_deref(),
                    m.generation
                ),
                (Some("app"), Some("u-1"), Some("42"), Some(3))
            );
            assert!(m.annotations.is_none() && m.labels.is_none());
            // Of managedFields only who wrote the status, and when.
            let kept = m.managed_fields.as_deref().unwrap_or_default();
            assert_eq!(kept.len(), 1);
            assert_eq!(kept[0].manager.as_deref(), Some("telemetry-manager"));
            assert!(kept[0].time.is_some() && kept[0].fields_v1.is_none());
            assert!(trimmed.data["status"].get("unsupportedMode").is_none());
        }
    }

    #[test]
    fn metric_and_trace_keep_no_spec_and_no_status_is_not_invented() {
        for kind in [Kind::Metric, Kind::Trace] {
            let mut o = object(json!({"spec": {"output": {"otlp": {"endpoint": {"value": "x"}}}}}));
            trim(kind, &mut o);
            assert_eq!(o.data, json!({"spec": {}}), "{kind}");
        }
    }
}
