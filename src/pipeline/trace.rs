//! TracePipeline: the verdict needs nothing of its spec, so nothing is
//! modelled; both versions keep the whole spec.

use super::*;

/// The v1alpha1 shape.
pub mod v1alpha1 {
    use super::*;
    use kube::CustomResource;

    #[derive(
        CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema,
    )]
    #[kube(
        group = "telemetry.kyma-project.io",
        version = "v1alpha1",
        kind = "TracePipeline",
        plural = "tracepipelines",
        status = "PipelineStatus"
    )]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub struct TracePipelineSpec {}
}

/// The v1beta1 shape, the stored one.
pub mod v1beta1 {
    use super::*;
    use kube::CustomResource;

    #[derive(
        CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema,
    )]
    #[kube(
        group = "telemetry.kyma-project.io",
        version = "v1beta1",
        kind = "TracePipeline",
        plural = "tracepipelines",
        status = "PipelineStatus"
    )]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub struct TracePipelineSpec {}
}
