//! The two CRD shapes a MetricPipeline can have on a real cluster, both
//! generated from our types (src/pipeline.rs):
//!
//! - ours (config/crd/): a map list of conditions keyed by `type`, and spec
//!   schemas that keep unknown fields;
//! - telemetry-manager's: the same versions (v1beta1 stored, v1alpha1 served),
//!   but the conditions list has no list type, so it is atomic, and no schema
//!   keeps unknown fields, so the API server prunes what a version cannot
//!   hold, which is how a write through v1alpha1 loses v1beta1-only fields.

use alert_poller::kind::Kind;
use serde_json::Value;

/// Our CRD, as config/crd/ ships it.
pub fn ours() -> Value {
    serde_json::to_value(alert_poller::pipeline::crd(Kind::Metric)).expect("a CRD serializes")
}

/// Our MetricPipeline CRD reshaped as telemetry-manager ships its own: atomic conditions,
/// nothing preserved that a version does not declare.
pub fn manager_like() -> Value {
    let mut crd = ours();
    for version in crd["spec"]["versions"]
        .as_array_mut()
        .expect("a CRD has versions")
    {
        let conditions = &mut version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
            ["conditions"];
        let conditions = conditions
            .as_object_mut()
            .expect("the status has a conditions list");
        conditions.remove("x-kubernetes-list-type");
        conditions.remove("x-kubernetes-list-map-keys");
        strip_preserve_unknown(&mut version["schema"]);
    }
    crd
}

fn strip_preserve_unknown(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("x-kubernetes-preserve-unknown-fields");
            map.values_mut().for_each(strip_preserve_unknown);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_preserve_unknown),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alert_poller::schema::{ListShape, Schema};

    fn shape(crd: Value) -> Schema {
        Schema::from_crd(
            Kind::Metric,
            &serde_json::from_value(crd).expect("a valid CRD"),
        )
        .expect("usable")
    }

    #[test]
    fn the_two_shapes_differ_only_where_they_should() {
        assert_eq!(shape(ours()).conditions, ListShape::Map);
        let manager = manager_like();
        let s = shape(manager.clone());
        assert_eq!(
            (s.version.as_str(), s.conditions),
            ("v1beta1", ListShape::Atomic)
        );
        assert!(
            !manager
                .to_string()
                .contains("x-kubernetes-preserve-unknown-fields")
        );
        assert!(
            ours()
                .to_string()
                .contains("x-kubernetes-preserve-unknown-fields")
        );
    }
}
