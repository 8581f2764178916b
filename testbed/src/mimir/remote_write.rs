//! Series into Mimir: a Prometheus's `remote_write` entry for a tenant, and
//! the loopback forwarder that sets the tenant header on each push.

use super::*;

/// One remote-write push, passed on to Mimir's `push` URL as `tenant`;
/// Mimir's answer goes back as it is (502 if Mimir cannot be reached).
pub(super) async fn forward_push(
    client: &reqwest::Client,
    push: &str,
    tenant: &str,
    req: Request<Incoming>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return http::text(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let mut request = client.post(push).header(TENANT_HEADER, tenant).body(body);
    // The encoding, the protobuf message type and the protocol version.
    for (name, value) in &parts.headers {
        let name = name.as_str();
        if name.starts_with("content-") && name != "content-length"
            || name.starts_with("x-prometheus-remote-write-")
        {
            request = request.header(name, value.as_bytes());
        }
    }
    let answer = match request.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            r.bytes().await.map(|b| (status, b))
        }
        Err(e) => Err(e),
    };
    match answer {
        Ok((status, body)) => Response::builder()
            .status(status)
            .body(http::full(body))
            .expect("valid response"),
        Err(e) => http::text(StatusCode::BAD_GATEWAY, &e.to_string()),
    }
}

/// Has a running `prometheus` also remote-write everything it scrapes to
/// `mimir` as `tenant`, with [`edit_prometheus_config`]: one more entry in
/// its `remote_write` list, sending a batch at least every second (5 s by
/// default). The entry sets the `X-Scope-OrgID` header, as one would for a
/// real Mimir, but points at [`Mimir::tenant_push_url`], which sets it too:
/// Debian's Prometheus 2.42, the test bed's default, leaves the header out.
/// Returns once Prometheus has reloaded; Prometheus first re-reads its WAL,
/// so the first samples reach Mimir some seconds later.
pub async fn remote_write_to(
    prometheus: &Prometheus,
    mimir: &Mimir,
    tenant: &str,
) -> Result<(), MimirError> {
    let mut headers = Mapping::new();
    headers.insert(TENANT_HEADER.into(), tenant.into());
    let mut queue = Mapping::new();
    queue.insert("batch_send_deadline".into(), "1s".into());
    let mut target = Mapping::new();
    target.insert("url".into(), mimir.tenant_push_url(tenant).await?.into());
    target.insert("headers".into(), Value::Mapping(headers));
    target.insert("queue_config".into(), Value::Mapping(queue));
    edit_prometheus_config(prometheus, |root| {
        let list = root
            .entry("remote_write".into())
            .or_insert_with(|| Value::Sequence(Vec::new()));
        if !list.is_sequence() {
            *list = Value::Sequence(Vec::new());
        }
        if let Some(list) = list.as_sequence_mut() {
            list.push(Value::Mapping(target));
        }
    })
    .await?;
    Ok(())
}
