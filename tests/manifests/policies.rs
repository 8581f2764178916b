//! deploy/'s NetworkPolicies and the kyma-system install, read from the
//! rendered manifests: what they admit, and that they reach the self-monitor
//! through both sides' policies.

use alert_poller::config::Tuning;
use alert_poller_testbed::netpol::{Connection, Pod, allows};
use serde::Deserialize;
use serde_json::Value;

use super::*;

#[test]
pub fn network_policy_admits_only_scrapes_of_the_metrics_port() {
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
pub fn self_monitor_objects() -> Vec<Value> {
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
pub fn deploy_reaches_the_self_monitor_through_both_sides_policies() {
    let objects = rendered();
    let monitor = self_monitor_objects();
    let policies = both_sides_policies(&objects, &monitor);
    let ours = Pod::from_deployment(kind(&objects, "Deployment")[0], "alert-poller");
    let service = kind(&monitor, "Service")[0];
    let self_monitor = self_monitor_pod();
    assert!(
        alert_poller_testbed::netpol::selector_matches(
            &serde_json::json!({"matchLabels": service["spec"]["selector"]}),
            &self_monitor.labels
        ),
        "the stand-in's Service selects the self-monitor's pods"
    );
    let port = service["spec"]["ports"][0]["targetPort"].as_i64().unwrap();
    the_shipped_url_names_the_managers_service(&objects);
    let tcp = |from, to, port| Connection {
        from,
        to,
        port,
        protocol: "TCP",
    };
    let unlabelled = without_the_scraping_label(&ours);
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

/// Every NetworkPolicy on the way, ours placed in our namespace beside the
/// self-monitor's: a connection must pass both sides.
fn both_sides_policies(objects: &[Value], monitor: &[Value]) -> Vec<Value> {
    let mut policies: Vec<Value> = kind(objects, "NetworkPolicy")
        .into_iter()
        .map(|p| {
            let mut p = p.clone();
            p["metadata"]["namespace"] = "alert-poller".into();
            p
        })
        .collect();
    policies.extend(kind(monitor, "NetworkPolicy").into_iter().cloned());
    policies
}

/// The self-monitor's pod as telemetry-manager labels it, which its
/// Service selects and its policy admits scrapes to.
fn self_monitor_pod() -> Pod {
    let labels = [
        ("app.kubernetes.io/name", "telemetry-self-monitor"),
        ("app.kubernetes.io/component", "monitor"),
        ("app.kubernetes.io/part-of", "telemetry"),
        ("app.kubernetes.io/managed-by", "telemetry-manager"),
        ("kyma-project.io/module", "telemetry"),
    ];
    Pod::new("kyma-system", &labels)
}

/// `pod` without the label the self-monitor's policy admits scrapers by:
/// the one difference between a pod it lets in and one it keeps out.
fn without_the_scraping_label(pod: &Pod) -> Pod {
    let mut unlabelled = pod.clone();
    unlabelled
        .labels
        .remove("networking.kyma-project.io/metrics-scraping");
    unlabelled
}

/// The Prometheus URL deploy/ ships names the manager's self-monitor
/// Service, so the policies checked here are the ones on the way.
fn the_shipped_url_names_the_managers_service(objects: &[Value]) {
    let url = Tuning::defaults()
        .with_overrides(&configmap_data(objects))
        .unwrap()
        .prometheus_url
        .to_string();
    assert_eq!(
        url, "http://telemetry-self-monitor.kyma-system:9090/",
        "the shipped URL names the manager's Service"
    );
}

/// Beside telemetry-manager: everything in kyma-system, the bindings'
/// subjects too, the manager's namespace neither created nor relabelled,
/// and otherwise exactly deploy/ (tuning, image, policy).
#[test]
pub fn the_kyma_system_install_follows_the_namespace_and_leaves_it_alone() {
    let own = rendered();
    let beside = rendered_at("deploy/kyma-system");
    assert!(
        kind(&beside, "Namespace").is_empty(),
        "kyma-system is not ours"
    );
    for object in &beside {
        let k = object["kind"].as_str().unwrap();
        let name = object["metadata"]["name"].as_str().unwrap();
        match k {
            "ClusterRole" | "ClusterRoleBinding" => {}
            // Events about cluster-scoped pipelines land in "default".
            "Role" | "RoleBinding" if name == "alert-poller-events" => {
                assert_eq!(object["metadata"]["namespace"], "default", "{k} {name}")
            }
            _ => assert_eq!(object["metadata"]["namespace"], "kyma-system", "{k} {name}"),
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
    // kustomize orders by namespace too: compare in an order of our own.
    let without_namespace = |objects: &[Value]| -> Vec<Value> {
        let mut objects = objects.to_vec();
        objects.sort_by_key(|o| (o["kind"].to_string(), o["metadata"]["name"].to_string()));
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
