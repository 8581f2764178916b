//! The pipeline custom resources (MetricPipeline, TracePipeline, LogPipeline)
//! as far as alert-poller needs them, and the CRDs generated from them.
//!
//! Kyma's telemetry-manager owns these resources. Its CRDs serve two versions:
//! `v1beta1`, the one it stores, and `v1alpha1`, deprecated and still served.
//! We model both, so our generated CRDs are useful on clusters without
//! telemetry-manager, but the controller never deserializes a pipeline into
//! these types: it reads and writes through the stored version as untyped
//! JSON (see [`crate::kubernetes::schema`]), so fields we do not model can never be lost.
//! Every spec field is optional and the schemas keep unknown fields.

use std::borrow::Cow;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::kind::Kind;

/// The spec type of one served version of a pipeline kind, with the
/// `CustomResource` derive every version shares (group, status, unknown
/// fields kept); the body lists what that version models.
macro_rules! pipeline_spec {
    ($version:literal, $kind:literal, $plural:literal, $spec:ident { $($body:tt)* }) => {
        #[derive(
            kube::CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema,
        )]
        #[kube(
            group = "telemetry.kyma-project.io",
            version = $version,
            kind = $kind,
            plural = $plural,
            status = "PipelineStatus"
        )]
        #[serde(rename_all = "camelCase")]
        #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
        pub struct $spec { $($body)* }
    };
}

pub mod cached;
pub mod log;
pub mod metric;
pub mod trace;

/// API group of every Kyma telemetry pipeline.
pub const GROUP: &str = "telemetry.kyma-project.io";
/// The version telemetry-manager stores; preferred whenever it is served.
pub const STORED_VERSION: &str = "v1beta1";
/// The deprecated version, used only where the stored one is not served.
pub const LEGACY_VERSION: &str = "v1alpha1";

/// A kind's CRD object name, `<plural>.<group>`.
pub fn crd_name(kind: Kind) -> String {
    format!("{}.{GROUP}", kind.plural())
}

/// A part of a spec that alert-poller only needs to see present or absent:
/// any object, kept whole.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
pub struct Opaque(pub serde_json::Map<String, serde_json::Value>);

impl JsonSchema for Opaque {
    fn schema_name() -> Cow<'static, str> {
        "Opaque".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
        })
    }
}

/// Observed state of every kind: a list of conditions keyed by type, so that several writers
/// (telemetry-manager, alert-poller) each own their own entries under
/// server-side apply. telemetry-manager's own CRD leaves the list atomic;
/// alert-poller reads the CRD to tell the two apart and writes either way.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineStatus {
    #[serde(default)]
    #[schemars(extend(
        "x-kubernetes-list-type" = "map",
        "x-kubernetes-list-map-keys" = ["type"]
    ))]
    pub conditions: Vec<Condition>,
}

/// Our CRD of a kind: both versions, v1beta1 stored, as telemetry-manager's
/// are, with a `Flow Healthy` column showing the condition of the default type.
pub fn crd(kind: Kind) -> CustomResourceDefinition {
    crd_for(kind, crate::domain::health::DEFAULT_CONDITION_TYPE)
}

/// Our CRD of a kind with the `Flow Healthy` column reading `condition_type`,
/// so that a controller tuned to another condition type gets a column that
/// shows it.
pub fn crd_for(kind: Kind, condition_type: &str) -> CustomResourceDefinition {
    use kube::CustomResourceExt;
    let versions = match kind {
        Kind::Metric => vec![
            metric::v1alpha1::MetricPipeline::crd(),
            metric::v1beta1::MetricPipeline::crd(),
        ],
        Kind::Trace => vec![
            trace::v1alpha1::TracePipeline::crd(),
            trace::v1beta1::TracePipeline::crd(),
        ],
        Kind::Log => vec![
            log::v1alpha1::LogPipeline::crd(),
            log::v1beta1::LogPipeline::crd(),
        ],
    };
    let mut crd = kube::core::crd::merge_crds(versions, STORED_VERSION)
        .expect("both versions describe the same kind");
    let columns = vec![
        CustomResourceColumnDefinition {
            name: "Flow Healthy".into(),
            type_: "string".into(),
            json_path: format!(".status.conditions[?(@.type==\"{condition_type}\")].status"),
            ..CustomResourceColumnDefinition::default()
        },
        CustomResourceColumnDefinition {
            name: "Age".into(),
            type_: "date".into(),
            json_path: ".metadata.creationTimestamp".into(),
            ..CustomResourceColumnDefinition::default()
        },
    ];
    let api_kind = kind.api_kind();
    for version in &mut crd.spec.versions {
        version.additional_printer_columns = Some(columns.clone());
        // As in telemetry-manager's CRDs: every v1alpha1 request gets a
        // warning, so clients still on it learn that it is going away.
        if version.name == LEGACY_VERSION {
            version.deprecated = Some(true);
            version.deprecation_warning = Some(format!(
                "{GROUP}/{LEGACY_VERSION} {api_kind} is deprecated; use {GROUP}/{STORED_VERSION}"
            ));
        }
    }
    crd
}

/// A kind's CRD as YAML, as `alert-poller crd` prints it and config/crd/
/// holds it (for the default condition type).
pub fn crd_yaml(kind: Kind, condition_type: &str) -> String {
    let body =
        serde_norway::to_string(&crd_for(kind, condition_type)).expect("a CRD always serializes");
    format!(
        "# Generated by `alert-poller crd --kind {kind}` from src/pipeline/; do not edit.\n{body}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_crd_serves_both_versions_stores_v1beta1_with_list_map_conditions() {
        for kind in Kind::ALL {
            let crd = serde_json::to_value(crd(kind)).unwrap();
            assert_eq!(crd["metadata"]["name"], crd_name(kind));
            assert_eq!(crd["spec"]["scope"], "Cluster");
            assert_eq!(crd["spec"]["names"]["kind"], kind.api_kind());
            let versions = crd["spec"]["versions"].as_array().unwrap();
            let mut names: Vec<_> = versions
                .iter()
                .map(|v| v["name"].as_str().unwrap())
                .collect();
            names.sort();
            assert_eq!(names, [LEGACY_VERSION, STORED_VERSION], "{kind}");
            for version in versions {
                let stored = version["name"] == STORED_VERSION;
                assert_eq!(version["storage"], stored, "{kind} {}", version["name"]);
                assert_eq!(version["served"], true);
                assert_eq!(version["deprecated"].as_bool().unwrap_or(false), !stored);
                assert!(version["subresources"]["status"].is_object());
                let schema = &version["schema"]["openAPIV3Schema"]["properties"];
                let conditions = &schema["status"]["properties"]["conditions"];
                assert_eq!(conditions["x-kubernetes-list-type"], "map", "{kind}");
                assert_eq!(conditions["x-kubernetes-list-map-keys"][0], "type");
                assert_eq!(schema["spec"]["x-kubernetes-preserve-unknown-fields"], true);
                let columns = version["additionalPrinterColumns"].as_array().unwrap();
                assert_eq!(
                    columns[0]["jsonPath"],
                    ".status.conditions[?(@.type==\"TelemetryFlowHealthy\")].status"
                );
            }
        }
    }

    #[test]
    fn the_column_follows_the_condition_type() {
        let crd = serde_json::to_value(crd_for(Kind::Trace, "AlertPollerFlowHealthy")).unwrap();
        for version in crd["spec"]["versions"].as_array().unwrap() {
            let path = version["additionalPrinterColumns"][0]["jsonPath"]
                .as_str()
                .unwrap();
            assert!(
                path.contains("@.type==\"AlertPollerFlowHealthy\""),
                "{path}"
            );
        }
    }

    #[test]
    fn checked_in_crds_are_current() {
        for kind in Kind::ALL {
            let path = format!(
                "{}/config/crd/{}.yaml",
                env!("CARGO_MANIFEST_DIR"),
                kind.plural()
            );
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                on_disk == crd_yaml(kind, crate::domain::health::DEFAULT_CONDITION_TYPE),
                "{path} is stale: regenerate it with `cargo run -- crd --kind {kind} > {path}`"
            );
        }
    }
}
