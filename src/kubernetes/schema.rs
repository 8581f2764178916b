//! Which version of the pipeline API to talk to, and how the CRD declares its
//! conditions list: the two facts that decide whether a status write is safe.
//!
//! Writing through a version the API server does not store makes it convert
//! the object, and a version that cannot hold a field drops it, silently and
//! without a generation bump. So we always use the stored version when it is
//! served. And the conditions list is shared with telemetry-manager: where the
//! CRD declares it a map keyed by `type`, server-side apply of our one entry
//! is exact; where it is atomic (telemetry-manager's own CRD), an apply would
//! take the whole list, so we rewrite the list instead, keeping every other
//! entry, guarded by `resourceVersion`.
//!
//! [`Schema::from_crd`] decides from the CRD object and is pure; [`discover`]
//! fetches it, falling back to API discovery and the atomic strategy (safe on
//! both shapes) when the CRD cannot be read.

use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use kube::Client;
use kube::api::{Api, ApiResource};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::domain::kind::Kind;
use crate::kubernetes::pipeline;

/// How the CRD declares `status.conditions`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListShape {
    /// `x-kubernetes-list-type: map` keyed by `type`: each writer owns its
    /// entries under server-side apply.
    Map,
    /// No list type (or `atomic`): the list is one value, whoever applies it
    /// owns all of it.
    Atomic,
}

impl ListShape {
    pub fn as_str(self) -> &'static str {
        match self {
            ListShape::Map => "map",
            ListShape::Atomic => "atomic",
        }
    }
}

/// What the controller needs to know about a pipeline kind's CRD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schema {
    pub kind: Kind,
    /// The version every read, watch and write goes through.
    pub version: String,
    pub conditions: ListShape,
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("the {crd} CRD serves neither {stored} nor {legacy} (served: {served})")]
    NoUsableVersion {
        crd: String,
        stored: &'static str,
        legacy: &'static str,
        served: String,
    },
    #[error(
        "no {group} API with {plural} is served (is the CRD installed? `kubectl apply -k config/crd/`): {source}"
    )]
    NotServed {
        group: &'static str,
        plural: &'static str,
        #[source]
        source: kube::Error,
    },
}

/// The version of `kind` to use among the served ones: the stored one if
/// served, the deprecated one otherwise.
pub fn choose_version(kind: Kind, served: &[&str]) -> Result<&'static str, SchemaError> {
    [pipeline::STORED_VERSION, pipeline::LEGACY_VERSION]
        .into_iter()
        .find(|v| served.contains(v))
        .ok_or_else(|| SchemaError::NoUsableVersion {
            crd: pipeline::crd_name(kind),
            stored: pipeline::STORED_VERSION,
            legacy: pipeline::LEGACY_VERSION,
            served: served.join(", "),
        })
}

impl Schema {
    /// Reads the version and the list shape from the kind's CRD object.
    pub fn from_crd(kind: Kind, crd: &CustomResourceDefinition) -> Result<Schema, SchemaError> {
        let served: Vec<&str> = crd
            .spec
            .versions
            .iter()
            .filter(|v| v.served)
            .map(|v| v.name.as_str())
            .collect();
        let version = choose_version(kind, &served)?;
        let conditions = crd
            .spec
            .versions
            .iter()
            .find(|v| v.name == version)
            .and_then(|v| v.schema.as_ref()?.open_api_v3_schema.as_ref())
            .map_or(ListShape::Atomic, conditions_shape);
        Ok(Schema {
            kind,
            version: version.to_owned(),
            conditions,
        })
    }

    /// The dynamic API resource for this version.
    pub fn api_resource(&self) -> ApiResource {
        ApiResource {
            group: pipeline::GROUP.into(),
            version: self.version.clone(),
            api_version: format!("{}/{}", pipeline::GROUP, self.version),
            kind: self.kind.api_kind().into(),
            plural: self.kind.plural().into(),
        }
    }
}

/// `status.conditions` is a map list only if it says so and is keyed by
/// `type`; anything else is treated as atomic, the shape that is safe to
/// assume when in doubt.
fn conditions_shape(root: &JSONSchemaProps) -> ListShape {
    let conditions = root
        .properties
        .as_ref()
        .and_then(|p| p.get("status"))
        .and_then(|s| s.properties.as_ref())
        .and_then(|p| p.get("conditions"));
    match conditions {
        Some(c)
            if c.x_kubernetes_list_type.as_deref() == Some("map")
                && c.x_kubernetes_list_map_keys.as_deref() == Some(&["type".to_owned()][..]) =>
        {
            ListShape::Map
        }
        _ => ListShape::Atomic,
    }
}

/// Finds the schema on the cluster. The CRD is read when RBAC allows it (our
/// ClusterRole grants `get` on this one CRD); otherwise API discovery picks
/// the version and the conditions list is taken as atomic.
pub async fn discover(client: &Client, kind: Kind) -> Result<Schema, SchemaError> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    match crds.get(&pipeline::crd_name(kind)).await {
        Ok(crd) => return Schema::from_crd(kind, &crd),
        Err(error) => tracing::warn!(
            crd = %pipeline::crd_name(kind),
            %error,
            "cannot read the CRD; choosing the version by API discovery and writing conditions as an atomic list"
        ),
    }
    let group = kube::discovery::group(client, pipeline::GROUP)
        .await
        .map_err(|source| SchemaError::NotServed {
            group: pipeline::GROUP,
            plural: kind.plural(),
            source,
        })?;
    let served: Vec<String> = group
        .versions()
        .filter(|v| {
            group
                .versioned_resources(v)
                .iter()
                .any(|(r, _)| r.plural == kind.plural())
        })
        .map(str::to_owned)
        .collect();
    let served: Vec<&str> = served.iter().map(String::as_str).collect();
    let version = choose_version(kind, &served)?;
    Ok(Schema {
        kind,
        version: version.to_owned(),
        conditions: ListShape::Atomic,
    })
}

/// What a change of the CRD means for a controller that uses `current`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Nothing that matters to us changed.
    None,
    /// The conditions list changed shape: switch the write strategy at once.
    Shape(ListShape),
    /// The version to use is another one now (or none): every read, watch
    /// and write must move, which takes a fresh start.
    Version,
}

/// How `next` differs from `current`, in what matters to us.
pub fn change(current: &Schema, next: Result<Schema, SchemaError>) -> Change {
    match next {
        Ok(next) if next.version != current.version => Change::Version,
        Err(_) => Change::Version,
        Ok(next) if next.conditions != current.conditions => Change::Shape(next.conditions),
        Ok(_) => Change::None,
    }
}

/// Follows the CRD while the controller runs, so that a CRD replaced under us
/// (telemetry-manager installed or upgraded after alert-poller) never meets a
/// write strategy made for the old one: a new list shape is published on
/// `shape` at once; a new version cancels `stop`, since the watches and
/// the cache would have to move. It ends when `stop` is cancelled (by
/// itself or by shutdown). Without permission to watch the CRD it logs once
/// and leaves the shape as discovered.
pub async fn follow(
    client: Client,
    in_use: Schema,
    shape: watch::Sender<ListShape>,
    stop: CancellationToken,
) {
    let kind = in_use.kind;
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    let config =
        watcher::Config::default().fields(&format!("metadata.name={}", pipeline::crd_name(kind)));
    let mut current = in_use;
    let mut events = watcher(crds, config)
        .default_backoff()
        .applied_objects()
        .boxed();
    loop {
        let next = tokio::select! {
            () = stop.cancelled() => return,
            next = events.next() => next,
        };
        let crd = match next {
            Some(Ok(crd)) => crd,
            Some(Err(watcher::Error::InitialListFailed(kube::Error::Api(e))))
            | Some(Err(watcher::Error::WatchStartFailed(kube::Error::Api(e))))
                if e.code == 403 =>
            {
                tracing::warn!(crd = %pipeline::crd_name(kind), "may not watch the CRD; a change of its shape needs a restart to be seen");
                return;
            }
            Some(Err(error)) => {
                tracing::debug!(%error, "CRD watch interrupted; retrying");
                continue;
            }
            None => return,
        };
        match change(&current, Schema::from_crd(kind, &crd)) {
            Change::None => {}
            Change::Shape(new) => {
                tracing::warn!(
                    from = current.conditions.as_str(),
                    to = new.as_str(),
                    "the CRD's conditions list changed shape; writing for the new one"
                );
                current.conditions = new;
                shape.send_replace(new);
            }
            Change::Version => {
                tracing::error!(
                    version = %current.version,
                    "the CRD no longer makes this version the one to use; restarting to follow it"
                );
                stop.cancel();
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd(versions: serde_json::Value) -> CustomResourceDefinition {
        serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "metricpipelines.telemetry.kyma-project.io"},
            "spec": {
                "group": "telemetry.kyma-project.io",
                "names": {"kind": "MetricPipeline", "plural": "metricpipelines"},
                "scope": "Cluster",
                "versions": versions,
            }
        }))
        .expect("a valid CRD")
    }

    fn version(name: &str, served: bool, conditions: serde_json::Value) -> serde_json::Value {
        json!({
            "name": name, "served": served, "storage": name == "v1beta1",
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "status": {"type": "object", "properties": {"conditions": conditions}}
            }}}
        })
    }

    fn map_list() -> serde_json::Value {
        json!({"type": "array", "items": {"type": "object"},
               "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]})
    }

    fn plain_list() -> serde_json::Value {
        json!({"type": "array", "items": {"type": "object"}})
    }

    #[test]
    fn version_and_shape_come_from_the_crd() {
        type Case = (serde_json::Value, Option<(&'static str, ListShape)>);
        let atomic = json!({"type": "array", "x-kubernetes-list-type": "atomic"});
        let keyed_by_reason = json!({"type": "array",
            "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["reason"]});
        let cases: Vec<Case> = vec![
            // Ours: both served, map list.
            (
                json!([
                    version("v1alpha1", true, map_list()),
                    version("v1beta1", true, map_list())
                ]),
                Some(("v1beta1", ListShape::Map)),
            ),
            // telemetry-manager's: both served, atomic list.
            (
                json!([
                    version("v1alpha1", true, plain_list()),
                    version("v1beta1", true, plain_list())
                ]),
                Some(("v1beta1", ListShape::Atomic)),
            ),
            // An old cluster with only v1alpha1.
            (
                json!([version("v1alpha1", true, map_list())]),
                Some(("v1alpha1", ListShape::Map)),
            ),
            // v1beta1 present but not served: the shape of v1alpha1 counts.
            (
                json!([
                    version("v1alpha1", true, plain_list()),
                    version("v1beta1", false, map_list())
                ]),
                Some(("v1alpha1", ListShape::Atomic)),
            ),
            // Explicitly atomic, or a map keyed by something else: atomic.
            (
                json!([version("v1beta1", true, atomic)]),
                Some(("v1beta1", ListShape::Atomic)),
            ),
            (
                json!([version("v1beta1", true, keyed_by_reason)]),
                Some(("v1beta1", ListShape::Atomic)),
            ),
            // Nothing we can use.
            (json!([version("v2", true, map_list())]), None),
        ];
        for (versions, want) in cases {
            let got = Schema::from_crd(Kind::Metric, &crd(versions.clone()))
                .ok()
                .map(|s| (s.version.clone(), s.conditions));
            let want = want.map(|(v, s)| (v.to_owned(), s));
            assert_eq!(got, want, "{versions}");
        }
    }

    #[test]
    fn changes_that_matter() {
        let map = |v: &str| Schema {
            kind: Kind::Metric,
            version: v.into(),
            conditions: ListShape::Map,
        };
        let atomic = |v: &str| Schema {
            kind: Kind::Metric,
            version: v.into(),
            conditions: ListShape::Atomic,
        };
        let unusable =
            || Schema::from_crd(Kind::Metric, &crd(json!([version("v2", true, map_list())])));
        assert_eq!(change(&map("v1beta1"), Ok(map("v1beta1"))), Change::None);
        assert_eq!(
            change(&map("v1beta1"), Ok(atomic("v1beta1"))),
            Change::Shape(ListShape::Atomic)
        );
        assert_eq!(
            change(&atomic("v1beta1"), Ok(map("v1beta1"))),
            Change::Shape(ListShape::Map)
        );
        assert_eq!(
            change(&map("v1alpha1"), Ok(map("v1beta1"))),
            Change::Version
        );
        assert_eq!(change(&map("v1beta1"), unusable()), Change::Version);
    }

    #[test]
    fn a_version_without_a_schema_is_atomic() {
        let c = crd(json!([{"name": "v1beta1", "served": true, "storage": true}]));
        assert_eq!(
            Schema::from_crd(Kind::Metric, &c).unwrap().conditions,
            ListShape::Atomic
        );
    }

    #[test]
    fn our_generated_crds_are_map_lists_on_v1beta1() {
        for kind in Kind::ALL {
            let s = Schema::from_crd(kind, &pipeline::crd(kind)).unwrap();
            assert_eq!(
                s,
                Schema {
                    kind,
                    version: "v1beta1".into(),
                    conditions: ListShape::Map
                }
            );
            assert_eq!(s.api_resource().plural, kind.plural());
        }
        let s = Schema::from_crd(Kind::Metric, &pipeline::crd(Kind::Metric)).unwrap();
        assert_eq!(
            s.api_resource().api_version,
            "telemetry.kyma-project.io/v1beta1"
        );
    }

    #[test]
    fn the_error_names_what_is_served() {
        let err = Schema::from_crd(Kind::Metric, &crd(json!([version("v2", true, map_list())])))
            .unwrap_err();
        assert!(err.to_string().contains("served: v2"), "{err}");
    }
}
