//! The `MetricPipeline` custom resource, as far as alert-poller needs it, and the
//! CRD generated from it.
//!
//! Kyma's telemetry-manager owns this resource. Its CRD serves two versions:
//! `v1beta1`, the one it stores, and `v1alpha1`, deprecated and still served.
//! We model both, so our generated CRD is useful on clusters without
//! telemetry-manager, but the controller never deserializes a pipeline into
//! these types: it reads and writes through the stored version as untyped
//! JSON (see [`crate::schema`]), so fields we do not model can never be lost.
//! Every spec field is optional and the schema keeps unknown fields.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of every Kyma telemetry pipeline.
pub const GROUP: &str = "telemetry.kyma-project.io";
pub const KIND: &str = "MetricPipeline";
pub const PLURAL: &str = "metricpipelines";
/// The version telemetry-manager stores; preferred whenever it is served.
pub const STORED_VERSION: &str = "v1beta1";
/// The deprecated version, used only where the stored one is not served.
pub const LEGACY_VERSION: &str = "v1alpha1";

/// The CRD's object name, `<plural>.<group>`.
pub fn crd_name() -> String {
    format!("{PLURAL}.{GROUP}")
}

/// The v1alpha1 shape: `input.otlp.disabled`, no output compression.
pub mod v1alpha1 {
    use super::*;
    use kube::CustomResource;

    #[derive(
        CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema,
    )]
    #[kube(
        group = "telemetry.kyma-project.io",
        version = "v1alpha1",
        kind = "MetricPipeline",
        plural = "metricpipelines",
        status = "MetricPipelineStatus"
    )]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub struct MetricPipelineSpec {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub input: Option<Input<OtlpInput>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub output: Option<Output<OtlpOutput>>,
    }

    #[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct OtlpInput {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub disabled: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub namespaces: Option<NamespaceSelector>,
    }

    #[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct OtlpOutput {
        #[serde(flatten)]
        pub common: OtlpOutputCommon,
    }
}

/// The v1beta1 shape, the stored one: `input.otlp.enabled`, and output
/// `compression`, which v1alpha1 cannot hold.
pub mod v1beta1 {
    use super::*;
    use kube::CustomResource;

    #[derive(
        CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema,
    )]
    #[kube(
        group = "telemetry.kyma-project.io",
        version = "v1beta1",
        kind = "MetricPipeline",
        plural = "metricpipelines",
        status = "MetricPipelineStatus"
    )]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub struct MetricPipelineSpec {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub input: Option<Input<OtlpInput>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub output: Option<Output<OtlpOutput>>,
    }

    #[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct OtlpInput {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub enabled: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub namespaces: Option<NamespaceSelector>,
    }

    #[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct OtlpOutput {
        #[serde(flatten)]
        pub common: OtlpOutputCommon,
        /// `none`, `gzip`, `snappy` or `zstd`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub compression: Option<String>,
    }
}

// Shared by both versions; only the OTLP input's shape differs.
/// Sources of metrics. The first three are served by the per-node agent.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Input<Otlp> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<AgentInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub istio: Option<AgentInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<AgentInput>,
    /// Metrics pushed over OTLP to the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp: Option<Otlp>,
}

// Shared by both versions; only the OTLP output's shape differs.
/// Where the data goes.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Output<Otlp> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp: Option<Otlp>,
}

/// The OTLP backend settings both versions share.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OtlpOutputCommon {
    /// `grpc` or `http`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["grpc", "http"]))]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<ValueType>,
    /// URL path, for the `http` protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<Header>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<OtlpTls>,
}

/// An input served by the agent.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<NamespaceSelector>,
}

/// Namespaces to take data from; at most one of the lists is meant to be set.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<Vec<String>>,
}

/// A value given inline or read from a Secret.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValueType {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ValueFromSource>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValueFromSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeyRef>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Authentication {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic: Option<BasicAuth>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BasicAuth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<ValueType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<ValueType>,
}

/// An extra header sent to the backend.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ValueFromSource>,
}

/// TLS towards the backend.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OtlpTls {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<ValueType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<ValueType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<ValueType>,
}

/// Observed state: a list of conditions keyed by type, so that several writers
/// (telemetry-manager, alert-poller) each own their own entries under
/// server-side apply. telemetry-manager's own CRD leaves the list atomic;
/// [`crate::schema`] tells the two apart and the controller writes either way.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricPipelineStatus {
    #[serde(default)]
    #[schemars(extend(
        "x-kubernetes-list-type" = "map",
        "x-kubernetes-list-map-keys" = ["type"]
    ))]
    pub conditions: Vec<Condition>,
}

/// Our CRD: both versions, v1beta1 stored, as telemetry-manager's is, with a
/// `Flow Healthy` column showing the condition of the default type.
pub fn crd() -> CustomResourceDefinition {
    crd_for(crate::health::DEFAULT_CONDITION_TYPE)
}

/// Our CRD with the `Flow Healthy` column reading `condition_type`, so that a
/// controller tuned to another condition type gets a column that shows it.
pub fn crd_for(condition_type: &str) -> CustomResourceDefinition {
    use kube::CustomResourceExt;
    let mut crd = kube::core::crd::merge_crds(
        vec![
            v1alpha1::MetricPipeline::crd(),
            v1beta1::MetricPipeline::crd(),
        ],
        STORED_VERSION,
    )
    .expect("both versions describe the same kind");
    // As in telemetry-manager's CRD: every v1alpha1 request gets a warning, so
    // clients still on it learn that it is going away.
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
    for version in &mut crd.spec.versions {
        version.additional_printer_columns = Some(columns.clone());
        if version.name == LEGACY_VERSION {
            version.deprecated = Some(true);
            version.deprecation_warning = Some(format!(
                "{GROUP}/{LEGACY_VERSION} {KIND} is deprecated; use {GROUP}/{STORED_VERSION}"
            ));
        }
    }
    crd
}

/// The CRD as YAML, as `alert-poller crd` prints it and config/crd/ holds it
/// (for the default condition type).
pub fn crd_yaml(condition_type: &str) -> String {
    let body = serde_norway::to_string(&crd_for(condition_type)).expect("a CRD always serializes");
    format!("# Generated by `alert-poller crd` from src/pipeline.rs; do not edit.\n{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_missing_fields_parse() {
        let json = serde_json::json!({
            "apiVersion": "telemetry.kyma-project.io/v1beta1",
            "kind": "MetricPipeline",
            "metadata": {"name": "a"},
            "spec": {
                "input": {"runtime": {"enabled": true, "resources": {"pod": {"enabled": false}}},
                          "otlp": {"enabled": false}},
                "output": {"otlp": {"endpoint": {"value": "http://x:4317"}, "compression": "gzip", "future": 1}},
                "transforms": [{"statements": ["x"]}]
            }
        });
        let p: v1beta1::MetricPipeline = serde_json::from_value(json).expect("parses");
        let input = p.spec.input.unwrap();
        assert_eq!(input.otlp.unwrap().enabled, Some(false));
        assert_eq!(
            p.spec.output.unwrap().otlp.unwrap().compression.as_deref(),
            Some("gzip")
        );
        let bare: v1alpha1::MetricPipeline = serde_json::from_value(serde_json::json!({
            "apiVersion": "telemetry.kyma-project.io/v1alpha1",
            "kind": "MetricPipeline",
            "metadata": {"name": "b"},
            "spec": {}
        }))
        .expect("an empty spec parses");
        assert_eq!(bare.spec.input, None);
    }

    #[test]
    fn crd_serves_both_versions_stores_v1beta1_with_list_map_conditions() {
        let crd = serde_json::to_value(crd()).unwrap();
        assert_eq!(crd["metadata"]["name"], crd_name());
        assert_eq!(crd["spec"]["scope"], "Cluster");
        let versions = crd["spec"]["versions"].as_array().unwrap();
        let mut names: Vec<_> = versions
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, [LEGACY_VERSION, STORED_VERSION]);
        for version in versions {
            let stored = version["name"] == STORED_VERSION;
            assert_eq!(version["storage"], stored, "{}", version["name"]);
            assert_eq!(version["deprecated"].as_bool().unwrap_or(false), !stored);
            assert_eq!(version["served"], true);
            assert!(version["subresources"]["status"].is_object());
            let schema = &version["schema"]["openAPIV3Schema"]["properties"];
            let conditions = &schema["status"]["properties"]["conditions"];
            assert_eq!(conditions["x-kubernetes-list-type"], "map");
            assert_eq!(conditions["x-kubernetes-list-map-keys"][0], "type");
            assert_eq!(schema["spec"]["x-kubernetes-preserve-unknown-fields"], true);
            let columns = version["additionalPrinterColumns"].as_array().unwrap();
            assert_eq!(
                columns[0]["jsonPath"],
                ".status.conditions[?(@.type==\"TelemetryFlowHealthy\")].status"
            );
        }
        let beta = versions
            .iter()
            .find(|v| v["name"] == STORED_VERSION)
            .unwrap();
        let beta = &beta["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
        assert!(beta["output"]["properties"]["otlp"]["properties"]["compression"].is_object());
        assert!(beta["input"]["properties"]["otlp"]["properties"]["enabled"].is_object());
    }

    #[test]
    fn the_column_follows_the_condition_type() {
        let crd = serde_json::to_value(crd_for("AlertPollerFlowHealthy")).unwrap();
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
    fn checked_in_crd_is_current() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/crd/metricpipelines.yaml"
        );
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == crd_yaml(crate::health::DEFAULT_CONDITION_TYPE),
            "{path} is stale: regenerate it with `cargo run -- crd > config/crd/metricpipelines.yaml`"
        );
    }
}
