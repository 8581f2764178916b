//! MetricPipeline, as far as alert-poller needs it: both versions, modelled
//! so that our CRD is useful on clusters without telemetry-manager. The
//! controller never deserializes a pipeline into these types (see the parent
//! module).

use super::*;

/// The v1alpha1 shape: `input.otlp.disabled`, no output compression.
pub mod v1alpha1 {
    use super::*;
    pipeline_spec!("v1alpha1", "MetricPipeline", "metricpipelines", MetricPipelineSpec {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub input: Option<Input<OtlpInput>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub output: Option<Output<OtlpOutput>>,
    });

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
    pipeline_spec!("v1beta1", "MetricPipeline", "metricpipelines", MetricPipelineSpec {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub input: Option<Input<OtlpInput>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub output: Option<Output<OtlpOutput>>,
    });

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
}
