//! Which pod may open a TCP or UDP connection to which, under a set of
//! NetworkPolicies, by the rules of the Kubernetes API: a pod selected by no
//! policy of a direction is open in it; a selected pod admits only what
//! one of its policies' rules admits; both the sender's egress and the
//! receiver's ingress must admit the connection.
//!
//! The node test proves the shipped policy against a real enforcing engine;
//! this evaluator lets `tests/manifests.rs` check every selector of
//! `deploy/` against telemetry-manager's policies in milliseconds, so a
//! label that no longer matches fails before a cluster is started.
//! `ipBlock` peers are not modelled (they match addresses, not pods) and
//! never match a pod here.

use std::collections::BTreeMap;

use serde_json::Value;

/// A pod as policies see it: its namespace (with that namespace's labels),
/// its labels and its named container ports.
#[derive(Clone, Debug, Default)]
pub struct Pod {
    pub namespace: String,
    pub namespace_labels: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// Container port names and numbers, for policies that name a port.
    pub ports: BTreeMap<String, i64>,
}

impl Pod {
    /// A pod in `namespace` with `labels`; the namespace carries the
    /// `kubernetes.io/metadata.name` label the API server sets on every
    /// namespace.
    pub fn new(namespace: &str, labels: &[(&str, &str)]) -> Pod {
        let own = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>()
        };
        Pod {
            namespace: namespace.to_owned(),
            namespace_labels: own(&[("kubernetes.io/metadata.name", namespace)]),
            labels: own(labels),
            ports: BTreeMap::new(),
        }
    }

    /// The pod a Deployment's template makes in `namespace`.
    pub fn from_deployment(deployment: &Value, namespace: &str) -> Pod {
        let mut pod = Pod::new(namespace, &[]);
        let template = &deployment["spec"]["template"];
        pod.labels = string_map(&template["metadata"]["labels"]);
        for container in as_slice(&template["spec"]["containers"]) {
            for port in as_slice(&container["ports"]) {
                if let (Some(name), Some(number)) =
                    (port["name"].as_str(), port["containerPort"].as_i64())
                {
                    pod.ports.insert(name.to_owned(), number);
                }
            }
        }
        pod
    }
}

/// A connection attempt: from one pod to another's port.
#[derive(Clone, Copy, Debug)]
pub struct Connection<'a> {
    pub from: &'a Pod,
    pub to: &'a Pod,
    pub port: i64,
    pub protocol: &'a str,
}

/// Whether `policies` (NetworkPolicy objects, any namespaces) let the
/// connection through.
pub fn allows(policies: &[Value], c: Connection<'_>) -> bool {
    let egress = admitted(policies, c.from, "Egress", |rule| {
        peers_match(&rule["to"], c.from, c.to) && ports_match(&rule["ports"], c.to, c)
    });
    let ingress = admitted(policies, c.to, "Ingress", |rule| {
        peers_match(&rule["from"], c.to, c.from) && ports_match(&rule["ports"], c.to, c)
    });
    egress && ingress
}

/// Open when no policy selects `pod` for `direction`; otherwise some rule
/// of a selecting policy must admit.
fn admitted(
    policies: &[Value],
    pod: &Pod,
    direction: &str,
    rule_admits: impl Fn(&Value) -> bool,
) -> bool {
    let field = if direction == "Ingress" {
        "ingress"
    } else {
        "egress"
    };
    let selecting: Vec<&Value> = policies
        .iter()
        .filter(|p| p["metadata"]["namespace"].as_str() == Some(pod.namespace.as_str()))
        .filter(|p| selector_matches(&p["spec"]["podSelector"], &pod.labels))
        .filter(|p| policy_types(p).iter().any(|t| t == direction))
        .collect();
    selecting.is_empty()
        || selecting
            .iter()
            .any(|p| as_slice(&p["spec"][field]).iter().any(&rule_admits))
}

/// `policyTypes`, or what the API server defaults it to: Ingress, plus
/// Egress when the policy has egress rules.
fn policy_types(policy: &Value) -> Vec<String> {
    match policy["spec"]["policyTypes"].as_array() {
        Some(types) => types
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        None => {
            let mut types = vec!["Ingress".to_owned()];
            if policy["spec"]["egress"].is_array() {
                types.push("Egress".to_owned());
            }
            types
        }
    }
}

/// A rule's peers: absent or empty means every peer; otherwise one must
/// match. `own` is the pod the policy protects (its namespace is the
/// default of a peer's pod selector).
fn peers_match(peers: &Value, own: &Pod, peer: &Pod) -> bool {
    let peers = as_slice(peers);
    peers.is_empty()
        || peers.iter().any(|p| {
            if !p["ipBlock"].is_null() {
                return false;
            }
            let namespace_ok = match p.get("namespaceSelector") {
                Some(selector) => selector_matches(selector, &peer.namespace_labels),
                None => peer.namespace == own.namespace,
            };
            let pod_ok = p
                .get("podSelector")
                .is_none_or(|s| selector_matches(s, &peer.labels));
            namespace_ok && pod_ok
        })
}

/// A rule's ports: absent or empty means every port; a named port is looked
/// up on the receiving pod; `endPort` makes a range.
fn ports_match(ports: &Value, receiver: &Pod, c: Connection<'_>) -> bool {
    let ports = as_slice(ports);
    ports.is_empty()
        || ports.iter().any(|p| {
            let protocol = p["protocol"].as_str().unwrap_or("TCP");
            let start = match &p["port"] {
                Value::Null => return protocol == c.protocol,
                Value::Number(n) => n.as_i64(),
                Value::String(name) => receiver.ports.get(name).copied(),
                _ => None,
            };
            let Some(start) = start else { return false };
            let end = p["endPort"].as_i64().unwrap_or(start);
            protocol == c.protocol && (start..=end).contains(&c.port)
        })
}

/// A label selector (`matchLabels` and `matchExpressions`); an empty one
/// matches everything.
pub fn selector_matches(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    let by_label = string_map(&selector["matchLabels"])
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expression = as_slice(&selector["matchExpressions"]).iter().all(|e| {
        let key = e["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = as_slice(&e["values"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let value = labels.get(key).map(String::as_str);
        match e["operator"].as_str() {
            Some("In") => value.is_some_and(|v| values.contains(&v)),
            Some("NotIn") => value.is_none_or(|v| !values.contains(&v)),
            Some("Exists") => value.is_some(),
            Some("DoesNotExist") => value.is_none(),
            _ => false,
        }
    });
    by_label && by_expression
}

fn as_slice(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tcp<'a>(from: &'a Pod, to: &'a Pod, port: i64) -> Connection<'a> {
        Connection {
            from,
            to,
            port,
            protocol: "TCP",
        }
    }

    /// Ingress to `app=db` in `data` on 5432 from `app=api` pods in
    /// namespaces labelled `team=a`; egress of `app=api` in `web` to DNS only.
    fn policies() -> Vec<Value> {
        vec![
            json!({"metadata": {"namespace": "data"}, "spec": {
                "podSelector": {"matchLabels": {"app": "db"}},
                "ingress": [{"from": [{
                    "namespaceSelector": {"matchLabels": {"team": "a"}},
                    "podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["api"]}]}
                }], "ports": [{"port": "pg"}]}]
            }}),
            json!({"metadata": {"namespace": "web"}, "spec": {
                "podSelector": {"matchLabels": {"app": "api"}},
                "policyTypes": ["Egress"],
                "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]
            }}),
        ]
    }

    #[test]
    fn the_rules_of_the_api() {
        let mut db = Pod::new("data", &[("app", "db")]);
        db.ports.insert("pg".into(), 5432);
        let mut api_a = Pod::new("a", &[("app", "api")]);
        api_a.namespace_labels.insert("team".into(), "a".into());
        let api_b = Pod::new("b", &[("app", "api")]);
        let api_web = Pod::new("web", &[("app", "api")]);
        let other_web = Pod::new("web", &[("app", "cron")]);
        let policies = policies();
        // (what, connection, allowed)
        let cases = [
            (
                "peer matches namespace and pod",
                tcp(&api_a, &db, 5432),
                true,
            ),
            (
                "a named port is the receiver's",
                tcp(&api_a, &db, 5433),
                false,
            ),
            ("namespace without the label", tcp(&api_b, &db, 5432), false),
            ("pod without the label", tcp(&other_web, &db, 5432), false),
            ("unselected receiver is open", tcp(&api_b, &api_a, 80), true),
            (
                "egress policy: only UDP 53",
                tcp(&api_web, &api_a, 80),
                false,
            ),
            (
                "unselected sender is open",
                tcp(&other_web, &api_a, 80),
                true,
            ),
        ];
        for (what, c, allowed) in cases {
            assert_eq!(allows(&policies, c), allowed, "{what}");
        }
        let dns = Connection {
            protocol: "UDP",
            port: 53,
            ..tcp(&api_web, &api_a, 53)
        };
        assert!(allows(&policies, dns), "egress to UDP 53");
    }

    #[test]
    fn selectors() {
        let labels: BTreeMap<String, String> = [("a".to_owned(), "1".to_owned())].into();
        let cases = [
            (json!({}), true),
            (json!({"matchLabels": {"a": "1"}}), true),
            (json!({"matchLabels": {"a": "2"}}), false),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["2"]}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "b", "operator": "Exists"}]}),
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "b", "operator": "DoesNotExist"}]}),
                true,
            ),
        ];
        for (selector, expected) in cases {
            assert_eq!(selector_matches(&selector, &labels), expected, "{selector}");
        }
    }
}
