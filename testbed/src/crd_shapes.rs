//! The two CRD shapes a pipeline kind can have on a real cluster, both
//! generated from our types (src/pipeline/):
//!
//! - ours (config/crd/): a map list of conditions keyed by `type`, and spec
//!   schemas that keep unknown fields;
//! - telemetry-manager's: the same versions (v1beta1 stored, v1alpha1 served),
//!   but the conditions list has no list type, so it is atomic, and no schema
//!   keeps unknown fields, so the API server prunes what a version cannot
//!   hold, which is how a write through v1alpha1 loses v1beta1-only fields.

use alert_poller::domain::kind::Kind;
use serde_json::Value;

/// Our CRD of `kind`, as config/crd/ ships it.
pub fn ours(kind: Kind) -> Value {
    serde_json::to_value(alert_poller::kubernetes::pipeline::crd(kind)).expect("a CRD serializes")
}

/// Our CRD of `kind` reshaped as telemetry-manager ships its own: atomic
/// conditions, nothing preserved that a version does not declare.
pub fn manager_like(kind: Kind) -> Value {
    let mut crd = ours(kind);
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
    use alert_poller::kubernetes::schema::{ListShape, Schema};

    fn shape(kind: Kind, crd: Value) -> Schema {
        Schema::from_crd(kind, &serde_json::from_value(crd).expect("a valid CRD")).expect("usable")
    }

    #[test]
    fn the_two_shapes_differ_only_where_they_should() {
        for kind in Kind::ALL {
            assert_eq!(shape(kind, ours(kind)).conditions, ListShape::Map, "{kind}");
            let manager = manager_like(kind);
            let s = shape(kind, manager.clone());
            assert_eq!(
                (s.version.as_str(), s.conditions),
                ("v1beta1", ListShape::Atomic),
                "{kind}"
            );
            assert!(
                !manager
                    .to_string()
                    .contains("x-kubernetes-preserve-unknown-fields"),
                "{kind}"
            );
            assert!(
                ours(kind)
                    .to_string()
                    .contains("x-kubernetes-preserve-unknown-fields"),
                "{kind}"
            );
        }
    }
}
