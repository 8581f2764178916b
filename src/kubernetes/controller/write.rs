//! The status write, in the shape the CRD gives `status.conditions`: our one
//! entry by server-side apply on a map list, or the whole list by a merge
//! patch guarded by `resourceVersion` on an atomic one, re-read and retried
//! when another writer got in between.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{DynamicObject, Patch, PatchParams};
use serde_json::json;

use super::{CONFLICT_ATTEMPTS, FIELD_MANAGER, ReconcileError, Shared};
use crate::domain::conditions;
use crate::domain::health::Verdict;
use crate::kubernetes::schema::ListShape;

/// A successful write: what was written, what it replaced, and the
/// object's resourceVersion after it.
pub(super) struct Written {
    pub condition: Condition,
    pub previous: Option<Condition>,
    pub version: String,
}

/// Writes the condition the verdict asks for if it differs from the object's.
/// Returns what was written, or `None` when nothing needed writing.
pub(super) async fn write(
    shared: &Shared,
    pipeline: &DynamicObject,
    condition_type: &str,
    verdict: &Verdict,
) -> Result<Option<Written>, ReconcileError> {
    let name = pipeline.name_any();
    // The cached object first; after a conflict, what the API server has now.
    let mut reread: Option<DynamicObject> = None;
    for _ in 0..CONFLICT_ATTEMPTS {
        let object = reread.as_ref().unwrap_or(pipeline);
        let list = conditions::raw_list(&object.data);
        let current = conditions::find(list, condition_type);
        let Some(condition) = conditions::plan(
            condition_type,
            current.as_ref(),
            verdict,
            object.metadata.generation,
            Timestamp::now(),
        ) else {
            return Ok(None);
        };
        match send(shared, object, &condition).await {
            Ok(written) => {
                return Ok(Some(Written {
                    condition,
                    previous: current,
                    version: written.metadata.resource_version.unwrap_or_default(),
                }));
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {
                shared
                    .ctx
                    .metrics
                    .record_write_conflict(shared.resource_kind);
                tracing::debug!(pipeline = %name, "status changed since read; re-reading");
                let fresh = shared.api.get(&name).await;
                reread = Some(fresh.map_err(|e| write_error(shared, &name, e))?);
            }
            Err(e) => return Err(write_error(shared, &name, e)),
        }
    }
    Err(ReconcileError::Contended {
        kind: shared.resource_kind.api_kind(),
        name,
        attempts: CONFLICT_ATTEMPTS,
    })
}

/// One write of `condition` on `object`, as the list's shape asks.
async fn send(
    shared: &Shared,
    object: &DynamicObject,
    condition: &Condition,
) -> Result<DynamicObject, kube::Error> {
    let name = object.name_any();
    let shape = *shared.shape.borrow();
    match shape {
        ListShape::Map => {
            // Our one entry, applied: the map list keeps everyone else's.
            let patch = json!({
                "apiVersion": shared.resource.api_version,
                "kind": shared.resource.kind,
                "status": { "conditions": [condition] },
            });
            let params = PatchParams::apply(FIELD_MANAGER).force();
            shared
                .api
                .patch_status(&name, &params, &Patch::Apply(&patch))
                .await
        }
        ListShape::Atomic => {
            // The whole list, everyone else's entries as read, and only
            // if nobody wrote since we read (a merge patch carrying
            // resourceVersion is refused with 409 otherwise).
            let list = conditions::raw_list(&object.data);
            let patch = json!({
                "metadata": { "resourceVersion": object.metadata.resource_version },
                "status": { "conditions": conditions::merge(list, condition) },
            });
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..PatchParams::default()
            };
            shared
                .api
                .patch_status(&name, &params, &Patch::Merge(&patch))
                .await
        }
    }
}

fn write_error(shared: &Shared, name: &str, source: kube::Error) -> ReconcileError {
    ReconcileError::StatusWrite {
        kind: shared.resource_kind.api_kind(),
        name: name.to_owned(),
        source,
    }
}
