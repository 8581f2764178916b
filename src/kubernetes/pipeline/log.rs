//! LogPipeline, modelled only as far as the verdict needs: which output it
//! has (OTLP or not) and which inputs (runtime, OTLP). The agent's input is
//! `runtime` in v1beta1 and `application` in v1alpha1.

use serde_json::Value;

use super::*;
use crate::domain::health::LogSpec;

/// The v1alpha1 shape: the agent's input is `application`.
pub mod v1alpha1 {
    use super::*;
    pipeline_spec!("v1alpha1", "LogPipeline", "logpipelines", LogPipelineSpec {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub input: Option<Input>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub output: Option<Output>,
    });

    /// Where logs come from.
    #[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub struct Input {
        /// Container logs, read on every node.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub application: Option<Opaque>,
        /// Logs pushed over OTLP to the gateway.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub otlp: Option<Opaque>,
    }
}

/// The v1beta1 shape, the stored one: the agent's input is `runtime`.
pub mod v1beta1 {
    use super::*;
    pipeline_spec!("v1beta1", "LogPipeline", "logpipelines", LogPipelineSpec {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub input: Option<Input>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub output: Option<Output>,
    });

    /// Where logs come from.
    #[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub struct Input {
        /// Container logs, read on every node by the log agent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub runtime: Option<Opaque>,
        /// Logs pushed over OTLP to the gateway.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub otlp: Option<Opaque>,
    }
}

/// Where logs go; exactly one is meant to be set. Only OTLP runs through the
/// OpenTelemetry collectors; the others through Fluent Bit.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct Output {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp: Option<Opaque>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<Opaque>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<String>,
}

/// What a LogPipeline object uses, read from its JSON as telemetry-manager
/// reads it: a field's presence counts, not its `enabled`. Either version's
/// name of the agent's input counts, so an object read through v1alpha1
/// (where v1beta1 is not served) is judged the same.
pub fn spec_of(object: &Value) -> LogSpec {
    let present = |path: &str| object.pointer(path).is_some_and(|v| !v.is_null());
    LogSpec {
        otlp_output: present("/spec/output/otlp"),
        runtime_input: present("/spec/input/runtime") || present("/spec/input/application"),
        otlp_input: present("/spec/input/otlp"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn what_a_log_pipeline_uses() {
        let cases = [
            (json!({"spec": {}}), (false, false, false)),
            (
                json!({"spec": {"input": {"runtime": {"enabled": false}, "otlp": {}}, "output": {"otlp": {"endpoint": {}}}}}),
                (true, true, true),
            ),
            (
                json!({"spec": {"input": {"application": {}}, "output": {"http": {"host": {}}}}}),
                (false, true, false),
            ),
            (
                json!({"spec": {"input": {"otlp": null}, "output": {"custom": "[OUTPUT]"}}}),
                (false, false, false),
            ),
        ];
        for (object, (otlp_output, runtime_input, otlp_input)) in cases {
            let want = LogSpec {
                otlp_output,
                runtime_input,
                otlp_input,
            };
            assert_eq!(spec_of(&object), want, "{object}");
        }
    }
}
