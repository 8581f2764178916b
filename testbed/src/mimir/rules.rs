//! Tenants' rule groups: uploaded through the ruler's configuration API,
//! and waited for until the ruler lists exactly them.

use super::*;

impl Mimir {
    /// Makes `rules_yaml` (a Prometheus rules file: `groups:` and a list)
    /// the rule groups of `tenant` in `namespace`: uploads each group (the
    /// ruler's configuration API takes one group per request), deletes the
    /// namespace's groups the file no longer has, and waits until the
    /// ruler's `/api/v1/rules` for the tenant lists exactly the file's
    /// groups in that namespace. Their first evaluation follows within an
    /// interval.
    pub async fn set_rules(
        &self,
        tenant: &str,
        namespace: &str,
        rules_yaml: &str,
    ) -> Result<(), MimirError> {
        let file: Value =
            serde_norway::from_str(rules_yaml).map_err(|e| MimirError::Rules(e.to_string()))?;
        let groups = match file.get("groups") {
            Some(Value::Sequence(groups)) => groups.clone(),
            Some(Value::Null) | None => Vec::new(),
            Some(other) => {
                return Err(MimirError::Rules(format!(
                    "`groups` is not a list: {other:?}"
                )));
            }
        };
        let mut wanted = Vec::new();
        for group in &groups {
            let name = group
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| MimirError::Rules("a group without a name".into()))?;
            let body =
                serde_norway::to_string(group).map_err(|e| MimirError::Rules(e.to_string()))?;
            self.rules_request(reqwest::Method::POST, tenant, &[namespace], Some(body))
                .await?;
            wanted.push(name.to_owned());
        }
        for name in self.configured_groups(tenant, namespace).await? {
            if !wanted.contains(&name) {
                self.rules_request(reqwest::Method::DELETE, tenant, &[namespace, &name], None)
                    .await?;
            }
        }
        self.until_rules_listed(tenant, namespace, &wanted).await
    }

    /// The URL of the ruler's configuration API for `segments`
    /// (namespace, then group), each percent-encoded.
    fn rules_config_url(&self, segments: &[&str]) -> reqwest::Url {
        let mut url = reqwest::Url::parse(&format!("{}/config/v1/rules", self.prometheus_url()))
            .expect("a loopback URL parses");
        url.path_segments_mut()
            .expect("an http URL has path segments")
            .extend(segments);
        url
    }

    /// One request to the ruler's configuration API; its answer's body on
    /// success.
    async fn rules_request(
        &self,
        method: reqwest::Method,
        tenant: &str,
        segments: &[&str],
        body: Option<String>,
    ) -> Result<String, MimirError> {
        let url = self.rules_config_url(segments);
        let fail = |message: String| MimirError::Request {
            url: url.to_string(),
            message,
        };
        let mut request = crate::http_client()
            .request(method.clone(), url.clone())
            .header(TENANT_HEADER, tenant);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/yaml")
                .body(body);
        }
        let response = request.send().await.map_err(|e| fail(e.to_string()))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(fail(format!("{method} answered {status}: {}", text.trim())));
        }
        Ok(text)
    }

    /// The names of the groups stored for `tenant` in `namespace`.
    async fn configured_groups(
        &self,
        tenant: &str,
        namespace: &str,
    ) -> Result<Vec<String>, MimirError> {
        let url = self.rules_config_url(&[namespace]);
        let response = crate::http_client()
            .get(url.clone())
            .header(TENANT_HEADER, tenant)
            .send()
            .await
            .map_err(|e| MimirError::Request {
                url: url.to_string(),
                message: e.to_string(),
            })?;
        // No group at all: 404.
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(MimirError::Request {
                url: url.to_string(),
                message: format!("GET answered {status}: {}", text.trim()),
            });
        }
        // `namespace: [group, ...]`, in YAML.
        let stored: Mapping = serde_norway::from_str(&text).map_err(|e| MimirError::Request {
            url: url.to_string(),
            message: format!("not a YAML mapping of namespaces ({e}): {text}"),
        })?;
        Ok(stored
            .get(namespace)
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .filter_map(|g| g.get("name").and_then(Value::as_str).map(str::to_owned))
            .collect())
    }

    /// The names of the groups `/api/v1/rules` lists for `tenant` in
    /// `namespace` (Mimir reports the namespace as a group's `file`).
    async fn listed_groups(&self, tenant: &str, namespace: &str) -> Result<Vec<String>, String> {
        let (status, body) = self
            .get(Some(tenant), "api/v1/rules")
            .await
            .map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("/api/v1/rules answered {status}: {body}"));
        }
        let answer: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        Ok(answer["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|g| g["file"] == namespace)
            .filter_map(|g| g["name"].as_str().map(str::to_owned))
            .collect())
    }

    async fn until_rules_listed(
        &self,
        tenant: &str,
        namespace: &str,
        wanted: &[String],
    ) -> Result<(), MimirError> {
        let started = Instant::now();
        let mut listed = Vec::new();
        while started.elapsed() < RULES_LIMIT {
            if let Ok(now) = self.listed_groups(tenant, namespace).await {
                listed = now;
                let all_there = wanted.iter().all(|w| listed.contains(w));
                if all_there && listed.iter().all(|l| wanted.contains(l)) {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(MimirError::RulesNotLoaded {
            tenant: tenant.to_owned(),
            namespace: namespace.to_owned(),
            missing: wanted
                .iter()
                .filter(|w| !listed.contains(w))
                .cloned()
                .collect(),
            stale: listed.into_iter().filter(|l| !wanted.contains(l)).collect(),
            limit: RULES_LIMIT,
        })
    }
}
