//! The `MetricPipeline` custom resource, as far as alert-poller needs it, and the
//! CRD generated from it.
//!
//! Kyma's telemetry-manager owns this resource; we model the `v1alpha1` spec so
//! our generated CRD is useful on clusters without telemetry-manager, but the
//! controller only ever reads `spec.input` and writes one status condition.
//! Every spec field is optional and the schema keeps unknown fields, so objects
//! written against a richer CRD neither fail to parse nor lose data.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a MetricPipeline collects and where it sends it.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "telemetry.kyma-project.io",
    version = "v1alpha1",
    kind = "MetricPipeline",
    plural = "metricpipelines",
    status = "MetricPipelineStatus",
    printcolumn = r#"{"name":"Flow Healthy","type":"string","jsonPath":".status.conditions[?(@.type==\"TelemetryFlowHealthy\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct MetricPipelineSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Input>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Output>,
}

/// Sources of metrics. The first three are served by the per-node agent.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Input {
    /// Scrape workloads annotated for Prometheus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<AgentInput>,
    /// Collect Istio proxy metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub istio: Option<AgentInput>,
    /// Collect Kubernetes runtime metrics (nodes, pods, containers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<AgentInput>,
    /// Metrics pushed over OTLP to the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp: Option<OtlpInput>,
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

/// The OTLP input, on unless disabled.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OtlpInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
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

/// Where the data goes.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp: Option<OtlpOutput>,
}

/// An OTLP backend.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OtlpOutput {
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
/// server-side apply.
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

impl MetricPipeline {
    /// Whether any input served by the agent is on. Agent alerts are about the
    /// agent's own data, so they only concern pipelines that use it.
    pub fn uses_agent(&self) -> bool {
        let Some(input) = self.spec.input.as_ref() else {
            return false;
        };
        [&input.prometheus, &input.istio, &input.runtime]
            .into_iter()
            .flatten()
            .any(|i| i.enabled == Some(true))
    }

    /// The condition of the given type, if the status has one.
    pub fn condition(&self, condition_type: &str) -> Option<&Condition> {
        self.status
            .as_ref()?
            .conditions
            .iter()
            .find(|c| c.type_ == condition_type)
    }
}

/// The CRD as YAML, as `alert-poller crd` prints it and config/crd/ holds it.
pub fn crd_yaml() -> String {
    use kube::CustomResourceExt;
    let crd = MetricPipeline::crd();
    let body = serde_yaml::to_string(&crd).expect("a CRD always serializes");
    format!("# Generated by `alert-poller crd` from src/pipeline.rs; do not edit.\n{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_missing_fields_parse() {
        let json = serde_json::json!({
            "apiVersion": "telemetry.kyma-project.io/v1alpha1",
            "kind": "MetricPipeline",
            "metadata": {"name": "a"},
            "spec": {
                "input": {"runtime": {"enabled": true, "resources": {"pod": {"enabled": false}}}},
                "output": {"otlp": {"endpoint": {"value": "http://x:4317"}, "future": 1}},
                "transforms": [{"statements": ["x"]}]
            }
        });
        let p: MetricPipeline = serde_json::from_value(json).expect("parses");
        assert!(p.uses_agent());
        let bare: MetricPipeline = serde_json::from_value(serde_json::json!({
            "apiVersion": "telemetry.kyma-project.io/v1alpha1",
            "kind": "MetricPipeline",
            "metadata": {"name": "b"},
            "spec": {}
        }))
        .expect("an empty spec parses");
        assert!(!bare.uses_agent());
    }

    #[test]
    fn only_agent_inputs_count_as_agent_use() {
        let mut p = MetricPipeline::new("a", MetricPipelineSpec::default());
        p.spec.input = Some(Input {
            otlp: Some(OtlpInput::default()),
            prometheus: Some(AgentInput {
                enabled: Some(false),
                namespaces: None,
            }),
            ..Input::default()
        });
        assert!(!p.uses_agent());
        p.spec.input.as_mut().unwrap().istio = Some(AgentInput {
            enabled: Some(true),
            namespaces: None,
        });
        assert!(p.uses_agent());
    }

    #[test]
    fn crd_is_cluster_scoped_with_status_and_list_map_conditions() {
        let yaml = crd_yaml();
        let crd: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(crd["spec"]["scope"], "Cluster");
        let version = &crd["spec"]["versions"][0];
        assert_eq!(version["name"], "v1alpha1");
        assert!(version["subresources"]["status"].is_object());
        let schema = &version["schema"]["openAPIV3Schema"]["properties"];
        let conditions = &schema["status"]["properties"]["conditions"];
        assert_eq!(conditions["x-kubernetes-list-type"], "map");
        assert_eq!(conditions["x-kubernetes-list-map-keys"][0], "type");
        assert_eq!(schema["spec"]["x-kubernetes-preserve-unknown-fields"], true);
        let columns = version["additionalPrinterColumns"].as_array().unwrap();
        assert!(columns.iter().any(|c| c["name"] == "Flow Healthy"));
    }

    #[test]
    fn checked_in_crd_is_current() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/crd/metricpipelines.yaml"
        );
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == crd_yaml(),
            "{path} is stale: regenerate it with `cargo run -- crd > config/crd/metricpipelines.yaml`"
        );
    }
}
