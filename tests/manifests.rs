//! The shipped manifests and docs, checked so that a later edit cannot quietly
//! loosen the hardening or let docs and code drift apart.

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

#[test]
fn rbac_grants_exactly_what_the_controller_uses() {
    let objects = rendered();
    let rules = |kind_name: &str| -> Vec<(String, String, Vec<String>)> {
        let role = kind(&objects, kind_name);
        assert_eq!(role.len(), 1, "{kind_name}");
        let mut out = Vec::new();
        for rule in role[0]["rules"].as_array().unwrap() {
            let verbs: Vec<String> = serde_json::from_value(rule["verbs"].clone()).unwrap();
            for g in rule["apiGroups"].as_array().unwrap() {
                for r in rule["resources"].as_array().unwrap() {
                    out.push((
                        g.as_str().unwrap().to_owned(),
                        r.as_str().unwrap().to_owned(),
                        verbs.clone(),
                    ));
                }
            }
            assert!(rule.get("resourceNames").is_none() || rule["resourceNames"].is_array());
            // The CRD rule is for the pipeline CRDs we read, never all of them.
            if rule["resources"][0] == "customresourcedefinitions" {
                assert_eq!(
                    rule["resourceNames"],
                    serde_json::json!([
                        "metricpipelines.telemetry.kyma-project.io",
                        "tracepipelines.telemetry.kyma-project.io",
                        "logpipelines.telemetry.kyma-project.io"
                    ])
                );
            }
        }
        for (g, r, verbs) in &out {
            assert!(
                g != "*" && r != "*" && !verbs.iter().any(|v| v == "*"),
                "no wildcards: {g} {r} {verbs:?}"
            );
        }
        out.sort();
        out
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        rules("ClusterRole"),
        vec![
            (
                "apiextensions.k8s.io".into(),
                "customresourcedefinitions".into(),
                s(&["get", "list", "watch"])
            ),
            (
                "events.k8s.io".into(),
                "events".into(),
                s(&["create", "patch"])
            ),
            (
                "telemetry.kyma-project.io".into(),
                "logpipelines".into(),
                s(&["get", "list", "watch"])
            ),
            (
                "telemetry.kyma-project.io".into(),
                "logpipelines/status".into(),
                s(&["patch"])
            ),
            (
                "telemetry.kyma-project.io".into(),
                "metricpipelines".into(),
                s(&["get", "list", "watch"])
            ),
            (
                "telemetry.kyma-project.io".into(),
                "metricpipelines/status".into(),
                s(&["patch"])
            ),
            (
                "telemetry.kyma-project.io".into(),
                "tracepipelines".into(),
                s(&["get", "list", "watch"])
            ),
            (
                "telemetry.kyma-project.io".into(),
                "tracepipelines/status".into(),
                s(&["patch"])
            ),
        ]
    );
    assert_eq!(
        rules("Role"),
        vec![
            ("".into(), "configmaps".into(), s(&["get", "list", "watch"])),
            (
                "coordination.k8s.io".into(),
                "leases".into(),
                s(&["get", "create", "update"])
            ),
        ]
    );
}

#[test]
fn network_policy_admits_only_scrapes_of_the_metrics_port() {
    let objects = rendered();
    let policies = kind(&objects, "NetworkPolicy");
    assert_eq!(policies.len(), 1);
    let spec = &policies[0]["spec"];
    assert_eq!(
        spec["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );
    let ingress = spec["ingress"].as_array().unwrap();
    assert_eq!(ingress.len(), 1);
    assert_eq!(
        ingress[0]["ports"],
        serde_json::json!([{"port": 8080, "protocol": "TCP"}])
    );
    let egress_ports: Vec<i64> = spec["egress"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| {
            e["ports"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["port"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(
        egress_ports,
        [53, 53, 443, 6443, 9090],
        "DNS, API server, Prometheus only"
    );
}

/// `tests/fixtures/kyma/self-monitor.yaml` (the manager's policies, in our
/// words) as JSON values.
fn self_monitor_objects() -> Vec<Value> {
    let yaml = std::fs::read_to_string(repo("tests/fixtures/kyma/self-monitor.yaml")).unwrap();
    serde_norway::Deserializer::from_str(&yaml)
        .map(|doc| {
            serde_norway::from_value::<Value>(serde_norway::Value::deserialize(doc).unwrap())
                .unwrap()
        })
        .collect()
}

/// deploy/'s pods reach the self-monitor as telemetry-manager creates it,
/// through its policies and ours; a pod without the scraping label does
/// not; and our egress admits nothing else on the way. The node test shows
/// the same with a real enforcing engine.
#[test]
fn deploy_reaches_the_self_monitor_through_both_sides_policies() {
    use alert_poller_testbed::netpol::{Connection, Pod, allows};
    let objects = rendered();
    let monitor = self_monitor_objects();
    let mut policies: Vec<Value> = kind(&objects, "NetworkPolicy")
        .into_iter()
        .map(|p| {
            let mut p = p.clone();
            p["metadata"]["namespace"] = "alert-poller".into();
            p
        })
        .collect();
    policies.extend(kind(&monitor, "NetworkPolicy").into_iter().cloned());
    let ours = Pod::from_deployment(kind(&objects, "Deployment")[0], "alert-poller");
    let service = kind(&monitor, "Service")[0];
    let labels = [
        ("app.kubernetes.io/name", "telemetry-self-monitor"),
        ("app.kubernetes.io/component", "monitor"),
        ("app.kubernetes.io/part-of", "telemetry"),
        ("app.kubernetes.io/managed-by", "telemetry-manager"),
        ("kyma-project.io/module", "telemetry"),
    ];
    let self_monitor = Pod::new("kyma-system", &labels);
    assert!(
        alert_poller_testbed::netpol::selector_matches(
            &serde_json::json!({"matchLabels": service["spec"]["selector"]}),
            &self_monitor.labels
        ),
        "the stand-in's Service selects the self-monitor's pods"
    );
    let port = service["spec"]["ports"][0]["targetPort"].as_i64().unwrap();
    let url = Tuning::defaults()
        .with_overrides(&configmap_data(&objects))
        .unwrap()
        .prometheus_url
        .to_string();
    assert_eq!(
        url, "http://telemetry-self-monitor.kyma-system:9090/",
        "the shipped URL names the manager's Service"
    );
    let tcp = |from, to, port| Connection {
        from,
        to,
        port,
        protocol: "TCP",
    };
    let mut unlabelled = ours.clone();
    unlabelled
        .labels
        .remove("networking.kyma-project.io/metrics-scraping");
    let neighbour = Pod::new("kyma-system", &[("app.kubernetes.io/name", "manager")]);
    let elsewhere = Pod::new("monitoring", &[("app.kubernetes.io/name", "prometheus")]);
    // (what, connection, allowed)
    let cases = [
        (
            "our pod polls the self-monitor",
            tcp(&ours, &self_monitor, port),
            true,
        ),
        (
            "without the scraping label",
            tcp(&unlabelled, &self_monitor, port),
            false,
        ),
        (
            "another port of the self-monitor",
            tcp(&ours, &self_monitor, 8080),
            false,
        ),
        (
            "another pod in kyma-system",
            tcp(&ours, &neighbour, port),
            false,
        ),
        (
            "a Prometheus elsewhere",
            tcp(&ours, &elsewhere, port),
            false,
        ),
    ];
    for (what, c, allowed) in cases {
        assert_eq!(allows(&policies, c), allowed, "{what}");
    }
}

/// Beside telemetry-manager: everything in kyma-system, the bindings'
/// subjects too, the manager's namespace neither created nor relabelled,
/// and otherwise exactly deploy/ (tuning, image, policy).
#[test]
fn the_kyma_system_install_follows_the_namespace_and_leaves_it_alone() {
    let own = rendered();
    let beside = rendered_at("deploy/kyma-system");
    assert!(
        kind(&beside, "Namespace").is_empty(),
        "kyma-system is not ours"
    );
    for object in &beside {
        let k = object["kind"].as_str().unwrap();
        if k != "ClusterRole" && k != "ClusterRoleBinding" {
            assert_eq!(object["metadata"]["namespace"], "kyma-system", "{k}");
        }
        for subject in object["subjects"].as_array().into_iter().flatten() {
            assert_eq!(subject["namespace"], "kyma-system", "{k}'s subject");
        }
    }
    for subject in kind(&own, "ClusterRoleBinding")[0]["subjects"]
        .as_array()
        .unwrap()
    {
        assert_eq!(subject["namespace"], "alert-poller");
    }
    let without_namespace = |objects: &[Value]| -> Vec<Value> {
        objects
            .iter()
            .filter(|o| o["kind"] != "Namespace")
            .map(|o| {
                let mut o = o.clone();
                if let Some(m) = o["metadata"].as_object_mut() {
                    m.remove("namespace");
                }
                for s in o["subjects"].as_array_mut().into_iter().flatten() {
                    s.as_object_mut().unwrap().remove("namespace");
                }
                o
            })
            .collect()
    };
    assert_eq!(
        without_namespace(&beside),
        without_namespace(&own),
        "the two installs differ only in their namespace"
    );
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
