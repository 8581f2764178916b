//! deploy/ installed the way its README says (`kubectl apply -k config/crd`,
//! then `kubectl apply -k deploy/`), with the tuning ConfigMap pointed at a
//! test Prometheus: the common start of the demo, the end-to-end suites and
//! the load run.

use alert_poller::domain::kind::Kind;

use super::controlplane::{ControlPlaneError, Kubectl};

/// The namespace deploy/ creates.
pub const NAMESPACE: &str = "alert-poller";

/// Who holds the controller's leader Lease (a pod name, or the replica's
/// `POD_NAME`); empty when nobody does.
pub fn lease_holder(kubectl: &Kubectl) -> Result<String, ControlPlaneError> {
    lease_holder_in(kubectl, NAMESPACE)
}

/// [`lease_holder`] for an install in `namespace` (deploy/kyma-system/).
pub fn lease_holder_in(kubectl: &Kubectl, namespace: &str) -> Result<String, ControlPlaneError> {
    let holder = kubectl.run(&[
        "-n",
        namespace,
        "get",
        "lease",
        "alert-poller",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])?;
    Ok(holder.trim().to_owned())
}

/// A directory of this repository, as a kubectl argument.
pub fn repo(path: &str) -> String {
    super::repo_root().join(path).display().to_string()
}

/// Applies the CRDs and deploy/, then merges `tuning` (ConfigMap keys) into
/// the tuning ConfigMap.
pub fn install(kubectl: &Kubectl, tuning: &[(&str, &str)]) -> Result<(), ControlPlaneError> {
    kubectl.run(&["apply", "-k", &repo("config/crd")])?;
    for kind in Kind::ALL {
        wait_for_crd(kubectl, &alert_poller::kubernetes::pipeline::crd_name(kind))?;
    }
    install_deploy(kubectl, tuning)
}

/// Applies a CRD given as a JSON object (another shape than config/crd/'s)
/// and waits until it serves.
pub fn install_crd(kubectl: &Kubectl, crd: &serde_json::Value) -> Result<(), ControlPlaneError> {
    kubectl.run_with_input(&["apply", "-f", "-"], Some(&crd.to_string()))?;
    let name = crd["metadata"]["name"].as_str().unwrap_or_default();
    wait_for_crd(kubectl, name)
}

/// Waits until the API server serves the CRD `name`.
fn wait_for_crd(kubectl: &Kubectl, name: &str) -> Result<(), ControlPlaneError> {
    kubectl.wait_for_condition(
        None,
        &format!("crd/{name}"),
        "Established",
        std::time::Duration::from_secs(60),
    )
}

/// Applies deploy/ and merges `tuning` into its ConfigMap. deploy/ ships
/// `mode: shadow`, which is right beside telemetry-manager; a test bed has
/// no manager and judges what alert-poller writes, so `mode` is `write`
/// unless `tuning` names it.
pub fn install_deploy(kubectl: &Kubectl, tuning: &[(&str, &str)]) -> Result<(), ControlPlaneError> {
    kubectl.run(&["apply", "-k", &repo("deploy")])?;
    let mut data: serde_json::Map<String, serde_json::Value> = tuning
        .iter()
        .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
        .collect();
    data.entry("mode").or_insert_with(|| "write".into());
    patch_config(kubectl, &serde_json::Value::Object(data).to_string())
}

/// Merges `data` (a JSON object of ConfigMap keys; `null` removes a key)
/// into the tuning ConfigMap.
pub fn patch_config(kubectl: &Kubectl, data: &str) -> Result<(), ControlPlaneError> {
    patch_config_in(kubectl, NAMESPACE, data)
}

/// [`patch_config`] for an install in `namespace` (deploy/kyma-system/).
pub fn patch_config_in(
    kubectl: &Kubectl,
    namespace: &str,
    data: &str,
) -> Result<(), ControlPlaneError> {
    let patch = format!(r#"{{"data":{data}}}"#);
    kubectl.run(&[
        "-n",
        namespace,
        "patch",
        "configmap",
        "alert-poller",
        "--type",
        "merge",
        "-p",
        &patch,
    ])?;
    Ok(())
}
