//! The shipped manifests and docs, checked so that a later edit cannot quietly
//! loosen the hardening or let docs and code drift apart.

#[path = "manifests/docs.rs"]
mod docs;
#[path = "manifests/policies.rs"]
mod policies;
#[path = "manifests/style.rs"]
mod style;

use std::collections::BTreeMap;
use std::path::Path;

use alert_poller::config::{SETTINGS, Tuning, settings_markdown};
use alert_poller_testbed::controlplane::kustomize;
use serde::Deserialize;
use serde_json::Value;

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// `deploy/` rendered by kustomize, as JSON values.
fn rendered() -> Vec<Value> {
    rendered_at("deploy")
}

/// A kustomization of the repository rendered, as JSON values.
fn rendered_at(dir: &str) -> Vec<Value> {
    let yaml = kustomize(&repo(dir)).unwrap_or_else(|e| panic!("{dir} renders: {e}"));
    serde_norway::Deserializer::from_str(&yaml)
        .map(|doc| {
            serde_norway::from_value::<Value>(serde_norway::Value::deserialize(doc).unwrap())
                .unwrap()
        })
        .collect()
}

fn kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

#[test]
fn readme_settings_table_is_current() {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let start = readme.find("<!-- settings:start").expect("start marker");
    let start = start + readme[start..].find('\n').unwrap() + 1;
    let end = readme.find("<!-- settings:end -->").expect("end marker");
    assert_eq!(
        &readme[start..end],
        settings_markdown(),
        "README's settings table is stale: paste `alert-poller settings`"
    );
}

#[test]
fn default_configmap_documents_every_key_and_is_valid() {
    let objects = rendered();
    let cm = kind(&objects, "ConfigMap");
    assert_eq!(cm.len(), 1);
    let data: BTreeMap<String, String> = serde_json::from_value(cm[0]["data"].clone()).unwrap();
    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
    let mut expected: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
    expected.sort();
    assert_eq!(keys, expected, "the ConfigMap lists every setting");
    Tuning::defaults()
        .with_overrides(&data)
        .expect("the shipped tuning is valid");
    // Every key carries a comment line right above it.
    let source = std::fs::read_to_string(repo("deploy/base/configmap.yaml")).unwrap();
    let lines: Vec<&str> = source.lines().collect();
    for s in SETTINGS {
        let at = lines
            .iter()
            .position(|l| l.trim_start().starts_with(&format!("{}:", s.key)))
            .unwrap();
        assert!(
            lines[at - 1].trim_start().starts_with('#'),
            "{} has no comment",
            s.key
        );
    }
}

#[test]
fn the_pod_is_hardened() {
    let objects = rendered();
    let deployments = kind(&objects, "Deployment");
    assert_eq!(deployments.len(), 1);
    let pod = &deployments[0]["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_ne!(pod["securityContext"]["runAsUser"], 0);
    assert_eq!(pod["hostNetwork"], Value::Null);
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    for c in containers {
        let sc = &c["securityContext"];
        assert_eq!(sc["allowPrivilegeEscalation"], false);
        assert_eq!(sc["readOnlyRootFilesystem"], true);
        assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
        assert_eq!(sc["capabilities"]["add"], Value::Null);
        assert_eq!(sc["privileged"], Value::Null);
        for k in ["cpu", "memory"] {
            assert!(c["resources"]["requests"][k].is_string(), "request {k}");
        }
        assert!(
            c["resources"]["limits"]["memory"].is_string(),
            "memory limit"
        );
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        // One port, the metrics port: no webhook anywhere.
        let ports = c["ports"].as_array().unwrap();
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0]["containerPort"], 8080);
    }
    let namespace = &kind(&objects, "Namespace")[0]["metadata"]["labels"];
    assert_eq!(
        namespace["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    let services = kind(&objects, "Service");
    assert_eq!(services.len(), 1);
    assert_eq!(services[0]["spec"]["ports"].as_array().unwrap().len(), 1);
    assert!(kind(&objects, "ValidatingWebhookConfiguration").is_empty());
    assert!(kind(&objects, "MutatingWebhookConfiguration").is_empty());
}

/// One RBAC grant as the README's "Permissions" table lists it: where,
/// API group, resources, verbs, names (empty: any).
type Grant = [String; 5];

/// Every rule of every Role and ClusterRole of an install, bound to our
/// ServiceAccount. `own` is the install's namespace, shown as "own namespace".
fn grants(objects: &[Value], own: &str) -> Vec<Grant> {
    let join = |v: &Value| -> String {
        let items: Vec<&str> = v
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        items.join(", ")
    };
    let mut out = Vec::new();
    for role in objects
        .iter()
        .filter(|o| o["kind"] == "Role" || o["kind"] == "ClusterRole")
    {
        let name = &role["metadata"]["name"];
        let namespace = role["metadata"]["namespace"].as_str();
        let binding = objects.iter().find(|b| {
            b["roleRef"]["name"] == *name && b["metadata"]["namespace"].as_str() == namespace
        });
        let subjects = binding.map(|b| b["subjects"].clone()).unwrap_or_default();
        assert_eq!(
            subjects,
            serde_json::json!([{"kind": "ServiceAccount", "name": "alert-poller", "namespace": own}]),
            "{name} is bound to our ServiceAccount only"
        );
        let place = match namespace {
            None => "cluster".to_owned(),
            Some(ns) if ns == own => "own namespace".to_owned(),
            Some(ns) => ns.to_owned(),
        };
        for rule in role["rules"].as_array().unwrap() {
            let group = join(&rule["apiGroups"]);
            out.push([
                place.clone(),
                if group.is_empty() {
                    "core".into()
                } else {
                    group
                },
                join(&rule["resources"]),
                join(&rule["verbs"]),
                join(&rule["resourceNames"]),
            ]);
        }
    }
    out.sort();
    out
}

/// The README's table between its `rbac-grants` markers.
fn readme_grants() -> Vec<Grant> {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let start = readme.find("<!-- rbac-grants:start").expect("start marker");
    let end = readme.find("<!-- rbac-grants:end").expect("end marker");
    let mut out: Vec<Grant> = readme[start..end]
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|-") && !l.starts_with("| Where"))
        .map(|l| {
            let cells: Vec<String> = l
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().trim_matches('`').to_owned())
                .collect();
            cells
                .try_into()
                .unwrap_or_else(|c| panic!("five cells: {c:?}"))
        })
        .collect();
    out.sort();
    out
}

/// Least privilege, pinned: every grant of both installs is in the
/// README's list and the list has nothing more; no wildcard anywhere; the
/// names pinned are the ones the controller uses by default.
#[test]
fn every_rbac_grant_is_the_readmes_list() {
    let listed = readme_grants();
    for (dir, own) in [
        ("deploy", "alert-poller"),
        ("deploy/kyma-system", "kyma-system"),
    ] {
        let found = grants(&rendered_at(dir), own);
        assert_eq!(
            found, listed,
            "{dir}'s grants against the README's Permissions table"
        );
    }
    for [_, group, resources, verbs, _] in &listed {
        assert!(
            !format!("{group}{resources}{verbs}").contains('*'),
            "no wildcards"
        );
    }
    let pinned = |resource: &str| -> Vec<String> {
        listed
            .iter()
            .filter(|g| g[2] == resource && !g[4].is_empty())
            .map(|g| g[4].clone())
            .collect()
    };
    assert_eq!(
        pinned("configmaps"),
        ["alert-poller"],
        "the default --config-map"
    );
    assert_eq!(
        pinned("leases"),
        ["alert-poller"],
        "the default --lease-name"
    );
    assert_eq!(
        pinned("customresourcedefinitions"),
        [
            "metricpipelines.telemetry.kyma-project.io, tracepipelines.telemetry.kyma-project.io, logpipelines.telemetry.kyma-project.io"
        ]
    );
    // Events are written only where ours land, never cluster-wide.
    assert!(listed.iter().all(|g| g[2] != "events" || g[0] != "cluster"));
}

fn configmap_data(objects: &[Value]) -> BTreeMap<String, String> {
    serde_json::from_value(kind(objects, "ConfigMap")[0]["data"].clone()).unwrap()
}

/// kube brings rustls with `ring`; a second provider (aws-lc-rs, which
/// reqwest's default TLS feature pulls in) makes the kube client panic at
/// creation. The lock file must never contain it.
#[test]
fn exactly_one_crypto_provider_is_built() {
    let lock = std::fs::read_to_string(repo("Cargo.lock")).unwrap();
    assert!(lock.contains("name = \"ring\""), "ring is the provider");
    for other in ["aws-lc-rs", "aws-lc-sys", "openssl-sys"] {
        assert!(
            !lock.contains(&format!("name = \"{other}\"")),
            "{other} is in Cargo.lock: check the TLS features of reqwest and kube"
        );
    }
}

/// The chart overrides carry the same rules and scrape job as the plain files, and no
/// Alertmanager: the pull design pushes nothing.
#[test]
fn chart_values_carry_the_shipped_rules_and_no_alertmanager() {
    let read = |p: &str| -> serde_norway::Value {
        serde_norway::from_str(&std::fs::read_to_string(repo(p)).unwrap()).unwrap()
    };
    let values = read("config/prometheus/values.yaml");
    let rules = read("config/prometheus/rules.yaml");
    assert_eq!(values["serverFiles"]["alerting_rules.yml"], rules);
    let scrape = read("config/prometheus/scrape.yaml");
    let extra: serde_norway::Value =
        serde_norway::from_str(values["extraScrapeConfigs"].as_str().unwrap()).unwrap();
    assert_eq!(extra, scrape["scrape_configs"]);
    assert_eq!(
        values["alertmanager"]["enabled"],
        serde_norway::Value::Bool(false)
    );
    assert_eq!(
        values["server"]["alertmanagers"],
        serde_norway::Value::Sequence(vec![])
    );
}

/// The test node and the control plane are separate Go modules (the suites
/// that need no node do not build it), but one cluster: the same Kubernetes
/// release and the same pins of its staging modules.
#[test]
fn node_and_control_plane_pin_the_same_kubernetes() {
    let pins = |module: &str| -> Vec<String> {
        let gomod = std::fs::read_to_string(repo(&format!("tests/{module}/go.mod"))).unwrap();
        gomod
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("k8s.io/kubernetes ") || l.contains(" => k8s.io/"))
            .map(str::to_owned)
            .collect()
    };
    let (node, plane) = (pins("node"), pins("controlplane"));
    assert!(
        plane.iter().any(|l| l.starts_with("k8s.io/kubernetes v")),
        "the control plane requires k8s.io/kubernetes: {plane:?}"
    );
    assert_eq!(
        node, plane,
        "tests/node/go.mod and tests/controlplane/go.mod differ"
    );
}

/// Two replicas that survive a drain and a node loss: spread over nodes and
/// zones (softly, so a one-node cluster runs both) and a budget of one
/// disruption at a time, all selecting exactly the Deployment's pods.
#[test]
fn replicas_spread_over_nodes_and_drain_one_at_a_time() {
    let objects = rendered();
    let deployment = kind(&objects, "Deployment")[0];
    let pods = &deployment["spec"]["selector"]["matchLabels"];
    assert_eq!(deployment["spec"]["replicas"], 2);
    let spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        .as_array()
        .expect("topology spread");
    let keys: Vec<&str> = spread
        .iter()
        .map(|c| c["topologyKey"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]
    );
    for c in spread {
        assert_eq!(c["labelSelector"]["matchLabels"], *pods);
        assert_eq!(c["whenUnsatisfiable"], "ScheduleAnyway");
    }
    let budgets = kind(&objects, "PodDisruptionBudget");
    assert_eq!(budgets.len(), 1);
    assert_eq!(budgets[0]["spec"]["selector"]["matchLabels"], *pods);
    assert_eq!(budgets[0]["spec"]["maxUnavailable"], 1);
    assert!(
        deployment["spec"]["template"]["spec"]["priorityClassName"].is_null(),
        "optional"
    );
}

/// The optional component puts the pods at telemetry-manager's priority,
/// changing nothing else.
#[test]
fn the_priority_class_component_sets_only_the_class() {
    let dir = tempfile_dir("priority-overlay");
    let up = relative_to_repo(&dir);
    std::fs::write(
        dir.join("kustomization.yaml"),
        format!("resources: [{up}/deploy/kyma-system]\ncomponents: [{up}/deploy/priority-class]\n"),
    )
    .unwrap();
    let yaml = kustomize(&dir).expect("the overlay renders");
    let with: Vec<Value> = serde_norway::Deserializer::from_str(&yaml)
        .map(|doc| {
            serde_norway::from_value(serde_norway::Value::deserialize(doc).unwrap()).unwrap()
        })
        .collect();
    let mut without = rendered_at("deploy/kyma-system");
    let deployment = |objects: &mut Vec<Value>| -> usize {
        objects
            .iter()
            .position(|o| o["kind"] == "Deployment")
            .unwrap()
    };
    let at = deployment(&mut without);
    without[at]["spec"]["template"]["spec"]["priorityClassName"] =
        "telemetry-priority-class".into();
    assert_eq!(with, without);
}

/// A fresh directory under the test's target directory.
fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The repository's root as seen from `dir` (`../..`): kustomize takes only
/// relative paths to other kustomizations.
fn relative_to_repo(dir: &Path) -> String {
    let dir = dir.canonicalize().unwrap();
    let root = repo("").canonicalize().unwrap();
    let common = dir
        .components()
        .zip(root.components())
        .take_while(|(a, b)| a == b)
        .count();
    let ups = dir.components().count() - common;
    let downs: Vec<String> = root
        .components()
        .skip(common)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let mut parts = vec![".."; ups].join("/");
    for d in downs {
        parts.push('/');
        parts.push_str(&d);
    }
    parts
}
