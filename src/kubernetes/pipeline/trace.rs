//! TracePipeline: the verdict needs nothing of its spec, so nothing is
//! modelled; both versions keep the whole spec.

use super::*;

/// The v1alpha1 shape.
pub mod v1alpha1 {
    use super::*;
    pipeline_spec!(
        "v1alpha1",
        "TracePipeline",
        "tracepipelines",
        TracePipelineSpec {}
    );
}

/// The v1beta1 shape, the stored one.
pub mod v1beta1 {
    use super::*;
    pipeline_spec!(
        "v1beta1",
        "TracePipeline",
        "tracepipelines",
        TracePipelineSpec {}
    );
}
