//! `check --all`: the pipelines to judge, read from the cluster's objects, so
//! what a LogPipeline uses and what its condition says now come from the
//! object rather than from flags.
//!
//! It reads through the same version the controller would use
//! ([`alert_poller::kubernetes::schema`]), with the user's own kubeconfig: `check` runs on an
//! operator's machine or in CI, not as the controller's ServiceAccount.

use std::path::PathBuf;

use kube::api::{Api, DynamicObject, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;

use super::judge::{Current, Target};
use alert_poller::domain::conditions;
use alert_poller::domain::kind::Kind;
use alert_poller::kubernetes::pipeline;
use alert_poller::kubernetes::schema::{self, SchemaError};

/// Where the cluster is: kubectl's flags, with its defaults
/// (`$KUBECONFIG`, then `~/.kube/config`, then in-cluster).
#[derive(Clone, Debug, Default)]
pub struct ClusterOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot read the kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("cannot configure the Kubernetes client: {0}")]
    Config(String),
    #[error("cannot create the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    #[error("cannot find the {kind} API on the cluster: {source}")]
    Schema {
        kind: Kind,
        #[source]
        source: SchemaError,
    },
    #[error("cannot list {plural}: {source}")]
    List {
        plural: &'static str,
        #[source]
        source: kube::Error,
    },
}

/// A client for the cluster the options name.
pub async fn client(options: &ClusterOptions) -> Result<kube::Client, ClusterError> {
    alert_poller::prometheus::install_crypto_provider();
    let kube_options = KubeConfigOptions {
        context: options.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match (&options.kubeconfig, &options.context) {
        (Some(path), _) => {
            let file = Kubeconfig::read_from(path).map_err(|source| ClusterError::Kubeconfig {
                path: path.display().to_string(),
                source,
            })?;
            kube::Config::from_custom_kubeconfig(file, &kube_options)
                .await
                .map_err(config_error)?
        }
        (None, Some(_)) => kube::Config::from_kubeconfig(&kube_options)
            .await
            .map_err(config_error)?,
        (None, None) => kube::Config::infer().await.map_err(config_error)?,
    };
    kube::Client::try_from(config).map_err(ClusterError::Client)
}

fn config_error(error: impl std::fmt::Display) -> ClusterError {
    ClusterError::Config(error.to_string())
}

/// Every pipeline of `kinds`, sorted by kind then name, with its condition
/// of `condition_type`. A kind whose API the cluster does not serve is an
/// error: a check that silently skipped it would read as healthy.
pub async fn targets(
    client: &kube::Client,
    kinds: &[Kind],
    condition_type: &str,
) -> Result<Vec<Target>, ClusterError> {
    let mut targets = Vec::new();
    for &kind in kinds {
        let found = schema::discover(client, kind)
            .await
            .map_err(|source| ClusterError::Schema { kind, source })?;
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &found.api_resource());
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|source| ClusterError::List {
                plural: kind.plural(),
                source,
            })?;
        for object in list.items {
            let value = serde_json::to_value(&object).unwrap_or_default();
            targets.push(target_of(kind, &value, condition_type));
        }
    }
    targets.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    Ok(targets)
}

/// What judging needs from one object.
fn target_of(kind: Kind, object: &Value, condition_type: &str) -> Target {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let log = match kind {
        Kind::Log => pipeline::log::spec_of(object),
        _ => Default::default(),
    };
    Target {
        kind,
        name,
        log,
        current: current_condition(object, condition_type),
    }
}

/// The condition as the object holds it, fields read leniently: `check`
/// shows what is there even where an entry lacks a field the controller's
/// own reading (`conditions::find`) would require.
fn current_condition(object: &Value, condition_type: &str) -> Option<Current> {
    let found = conditions::raw_list(object)
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(condition_type))?;
    let field = |name: &str| {
        found
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Some(Current {
        status: field("status"),
        reason: field("reason"),
        message: field("message"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_log_pipeline_object_gives_its_spec_and_condition() {
        let object = json!({
            "metadata": {"name": "app-logs"},
            "spec": {"input": {"runtime": {}}, "output": {"otlp": {}}},
            "status": {"conditions": [
                {"type": "ConfigurationGenerated", "status": "True", "reason": "AgentConfigured", "message": ""},
                {"type": "TelemetryFlowHealthy", "status": "False", "reason": "AgentBufferFillingUp", "message": "m"},
            ]},
        });
        let t = target_of(Kind::Log, &object, "TelemetryFlowHealthy");
        assert_eq!(t.name, "app-logs");
        assert!(t.log.otlp_output && t.log.runtime_input && !t.log.otlp_input);
        let current = t.current.expect("the condition is found by type");
        assert_eq!(
            (current.status.as_str(), current.reason.as_str()),
            ("False", "AgentBufferFillingUp")
        );
        assert_eq!(target_of(Kind::Log, &object, "Other").current, None);
    }

    #[test]
    fn an_object_without_status_has_no_current_condition() {
        let t = target_of(
            Kind::Metric,
            &json!({"metadata": {"name": "m"}, "spec": {}}),
            "TelemetryFlowHealthy",
        );
        assert_eq!((t.name.as_str(), t.current), ("m", None));
    }
}
