//! Every way alert-poller authenticates, against a real Prometheus behind a
//! gate that checks the credentials (`testbed::auth_gate`): each credential
//! is sent, a rotated file is picked up by the running poller without a
//! restart, and no secret ever shows in the output of the real binary.
//! The tenant header and the path prefix are tested the same way, against
//! the gate standing in for Mimir's front (see its docs for what it is not).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alert_poller_testbed::TempDir;
use alert_poller_testbed::auth_gate::{AuthGate, Require, base64};
use alert_poller_testbed::poller::{StandalonePoller, tuning};
use alert_poller_testbed::prometheus::{Prometheus, Setup};
use alert_poller_testbed::token_server::TokenServer;

const PATIENCE: Duration = Duration::from_secs(30);

/// A Prometheus whose one rule fires at once for pipeline `a`.
async fn prometheus() -> Prometheus {
    Prometheus::start(&Setup {
        rules: "groups:\n- name: test\n  interval: 1s\n  rules:\n  - alert: MetricGatewayThrottling\n    expr: vector(1)\n    labels: {pipeline_name: a}\n".into(),
        ..Setup::default()
    })
    .await
    .expect("prometheus starts")
}

/// A poller asking `url` often, with `extra` settings.
fn poller(url: &str, extra: &[(&str, &str)]) -> StandalonePoller {
    let mut settings = vec![
        ("prometheusUrl", url),
        ("minInterval", "200ms"),
        ("maxInterval", "200ms"),
        ("errorMaxInterval", "500ms"),
        ("requestTimeout", "2s"),
        ("connectTimeout", "1s"),
        ("staleAfter", "30s"),
    ];
    settings.extend_from_slice(extra);
    StandalonePoller::start(tuning(&settings))
}

/// Waits until `what` holds.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < PATIENCE,
            "not within {PATIENCE:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the poller's last successful poll saw pipeline `a`'s alert.
fn sees_the_alert(poller: &StandalonePoller) -> bool {
    poller
        .view
        .borrow()
        .snapshot
        .as_ref()
        .is_some_and(|s| s.firing() == 1)
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// Rotation as Kubernetes does it for a Secret volume: the new file is
/// written beside the old one and renamed over it, so a reader never sees
/// half a secret.
fn rotate(path: &Path, text: &str) {
    let next = path.with_extension("next");
    write(&next, text);
    std::fs::rename(next, path).unwrap();
}

/// Waits until the gate let a request through carrying `authorization`,
/// then checks every later request carried it too.
async fn until_only(gate: &AuthGate, authorization: &str) {
    until(&format!("a request with {authorization}"), || {
        gate.seen()
            .iter()
            .any(|s| s.passed && s.authorization.as_deref() == Some(authorization))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let seen = gate.seen();
    let first = seen
        .iter()
        .position(|s| s.authorization.as_deref() == Some(authorization))
        .unwrap();
    for later in &seen[first..] {
        assert_eq!(
            later.authorization.as_deref(),
            Some(authorization),
            "{seen:?}"
        );
        assert!(later.passed, "{later:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearer_token_is_sent_and_its_rotation_picked_up() {
    let prometheus = prometheus().await;
    let dir = TempDir::new("auth-bearer").unwrap();
    let token = dir.path().join("token");
    write(&token, "first-token\n");
    let gate = AuthGate::start(&prometheus.url(), "", Require::bearer("first-token"))
        .await
        .unwrap();
    let poller = poller(&gate.url(), &[("bearerTokenFile", token.to_str().unwrap())]);
    until("the alert is seen through the gate", || {
        sees_the_alert(&poller)
    })
    .await;
    until_only(&gate, "Bearer first-token").await;

    gate.require(Require::bearer("second-token"));
    rotate(&token, "second-token");
    until_only(&gate, "Bearer second-token").await;
    assert!(sees_the_alert(&poller));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_is_sent_from_files_and_a_new_password_picked_up() {
    let prometheus = prometheus().await;
    let dir = TempDir::new("auth-basic").unwrap();
    let (user, password) = (dir.path().join("username"), dir.path().join("password"));
    write(&user, "poller\n");
    write(&password, "first-password\n");
    let require = |password: &str| Require::Basic {
        user: "poller".into(),
        password: password.into(),
    };
    let gate = AuthGate::start(&prometheus.url(), "", require("first-password"))
        .await
        .unwrap();
    let poller = poller(
        &gate.url(),
        &[
            ("basicAuthUsernameFile", user.to_str().unwrap()),
            ("basicAuthPasswordFile", password.to_str().unwrap()),
        ],
    );
    until("the alert is seen through the gate", || {
        sees_the_alert(&poller)
    })
    .await;
    until_only(&gate, &format!("Basic {}", base64("poller:first-password"))).await;

    gate.require(require("second-password"));
    rotate(&password, "second-password");
    until_only(
        &gate,
        &format!("Basic {}", base64("poller:second-password")),
    )
    .await;
    assert!(sees_the_alert(&poller));
}

/// Tokens a gate takes, shared with the token server that grants them, so
/// that a test can revoke them all at once.
type Accepted = Arc<Mutex<Vec<String>>>;

/// A gate before `prometheus` that takes only granted tokens, and the
/// token server granting them, 2 s long, to `alert-poller` with
/// `first-secret`: short enough to see renewals within seconds.
async fn oauth2_gate_and_token_server(
    prometheus: &Prometheus,
) -> (AuthGate, TokenServer, Accepted) {
    let accepted: Accepted = Default::default();
    let gate = AuthGate::start(
        &prometheus.url(),
        "",
        Require::Bearer(Arc::clone(&accepted)),
    )
    .await
    .unwrap();
    let idp = TokenServer::start(
        "alert-poller",
        "first-secret",
        Duration::from_secs(2),
        accepted.clone(),
    )
    .await
    .unwrap();
    (gate, idp, accepted)
}

/// The token is fetched with the client's credentials and the scopes,
/// renewed before it expires, fetched anew at once when the secret file
/// changes, and replaced within the same poll when Prometheus refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_tokens_are_fetched_renewed_and_replaced() {
    let prometheus = prometheus().await;
    let dir = TempDir::new("auth-oauth2").unwrap();
    let secret = dir.path().join("client-secret");
    write(&secret, "first-secret\n");
    let (gate, idp, accepted) = oauth2_gate_and_token_server(&prometheus).await;
    let poller = poller(
        &gate.url(),
        &[
            ("oauth2TokenUrl", idp.url().as_str()),
            ("oauth2ClientId", "alert-poller"),
            ("oauth2ClientSecretFile", secret.to_str().unwrap()),
            ("oauth2Scopes", "alerts:read, rules:read"),
        ],
    );
    until("the alert is seen through the gate", || {
        sees_the_alert(&poller)
    })
    .await;
    assert_eq!(
        idp.bodies()[0],
        "grant_type=client_credentials&scope=alerts%3Aread+rules%3Aread"
    );
    // Tokens live 2 s and are renewed 0.4 s early: about one grant per 1.6 s,
    // not one per poll (every 0.2 s).
    let granted = idp.granted();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let renewed = idp.granted() - granted;
    assert!((1..=4).contains(&renewed), "{renewed} grants in 4 s");

    // A new secret at the provider and in the file: the next poll fetches
    // a token with it, before the old token has expired.
    idp.set_secret("second-secret");
    let before = idp.granted();
    rotate(&secret, "second-secret");
    until("a token granted for the new secret", || {
        idp.granted() > before
    })
    .await;

    // Revoked tokens: Prometheus refuses the held one, and the same poll
    // fetches a new one and succeeds, so no poll fails.
    let failed = poller.polls("http_status");
    let before = idp.granted();
    accepted.lock().unwrap().clear();
    until("a token granted after the revocation", || {
        idp.granted() > before
    })
    .await;
    let fresh = format!("Bearer granted-token-{}", idp.granted());
    until_only(&gate, &fresh).await;
    assert_eq!(poller.polls("http_status"), failed, "no poll failed");
}

/// Mimir's front, as far as a poller meets it: the Prometheus API under
/// `/prometheus`, refused without the tenant header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_header_and_a_path_prefix_reach_a_mimir_like_front() {
    let prometheus = prometheus().await;
    let gate = AuthGate::start(
        &prometheus.url(),
        "/prometheus",
        Require::Tenant("team-a".into()),
    )
    .await
    .unwrap();
    assert!(gate.url().ends_with("/prometheus"));
    let poller = poller(
        &gate.url(),
        &[("headers", "X-Scope-OrgID: team-a"), ("phaseLock", "true")],
    );
    until("the alert is seen through the gate", || {
        sees_the_alert(&poller)
    })
    .await;
    let seen = gate.seen();
    assert!(
        seen.iter()
            .all(|s| s.passed && s.tenant.as_deref() == Some("team-a")),
        "{seen:?}"
    );
    for endpoint in ["/prometheus/api/v1/query", "/prometheus/api/v1/rules"] {
        assert!(
            seen.iter().any(|s| s.path == endpoint),
            "{endpoint} asked: {seen:?}"
        );
    }
    drop(poller);

    // Without the header: one line naming the refusal.
    let out = check(&gate.url(), &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("401"), "{stderr}");
    let out = check(&gate.url(), &["--header", "X-Scope-OrgID: team-a"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("GatewayThrottling"));
}

fn check(url: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_alert-poller"))
        .args(["check", "--pipeline", "a", "--prometheus-url", url])
        .args(extra)
        .env("RUST_LOG", "trace")
        .output()
        .expect("the binary runs")
}

/// One gate per credential mode, each letting through only the right
/// credential, so that every mode meets both an acceptance and a refusal.
struct GatePerMode {
    bearer: AuthGate,
    basic: AuthGate,
    oauth2: AuthGate,
    header: AuthGate,
}

impl GatePerMode {
    /// The gates before `prometheus`, each taking the first of its leak
    /// credentials; the OAuth2 one takes the tokens in `accepted`.
    async fn start(prometheus: &Prometheus, accepted: Accepted) -> GatePerMode {
        let bearer = AuthGate::start(&prometheus.url(), "", Require::bearer("leak-token-1"))
            .await
            .unwrap();
        let basic = AuthGate::start(
            &prometheus.url(),
            "",
            Require::Basic {
                user: "poller".into(),
                password: "leak-password-1".into(),
            },
        )
        .await
        .unwrap();
        let oauth2 = AuthGate::start(&prometheus.url(), "", Require::Bearer(accepted))
            .await
            .unwrap();
        let header = AuthGate::start(
            &prometheus.url(),
            "",
            Require::Tenant("leak-tenant-1".into()),
        )
        .await
        .unwrap();
        GatePerMode {
            bearer,
            basic,
            oauth2,
            header,
        }
    }

    /// Each gate with the `check` arguments that pass it: bearer, basic,
    /// OAuth2 and header, in that order, as the test picks them by place.
    /// The credentials are read from the files `token`, `password` and
    /// `secret`; the OAuth2 token is fetched at `idp_url`.
    fn runs<'a>(
        &'a self,
        token: &'a str,
        password: &'a str,
        secret: &'a str,
        idp_url: &'a str,
    ) -> Vec<(&'a AuthGate, Vec<&'a str>)> {
        vec![
            (&self.bearer, vec!["--bearer-token-file", token]),
            (
                &self.basic,
                vec![
                    "--basic-auth-username",
                    "poller",
                    "--basic-auth-password-file",
                    password,
                ],
            ),
            (
                &self.oauth2,
                vec![
                    "--oauth2-token-url",
                    idp_url,
                    "--oauth2-client-id",
                    "poller",
                    "--oauth2-client-secret-file",
                    secret,
                ],
            ),
            (
                &self.header,
                vec!["--header", "X-Scope-OrgID: leak-tenant-1"],
            ),
        ]
    }
}

/// The real binary, logging everything it can, with right and wrong
/// credentials of every mode: no secret in anything it prints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_ever_shows_in_the_output() {
    let prometheus = prometheus().await;
    let dir = TempDir::new("auth-leak").unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        write(&path, text);
        path.display().to_string()
    };
    let token = file("token", "leak-token-1");
    let password = file("password", "leak-password-1");
    let secret = file("secret", "leak-secret-1");
    let accepted: Accepted = Default::default();
    let idp = TokenServer::start(
        "poller",
        "leak-secret-1",
        Duration::from_secs(60),
        Arc::clone(&accepted),
    )
    .await
    .unwrap();
    let gates = GatePerMode::start(&prometheus, accepted).await;
    let idp_url = idp.url();
    let runs = gates.runs(&token, &password, &secret, &idp_url);
    for (gate, args) in &runs {
        let out = check(&gate.url(), args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_no_secret(&out, args);
    }
    // Now every credential is wrong: the errors must not quote them either.
    for name in ["token", "password", "secret"] {
        rotate(&dir.path().join(name), &format!("leak-{name}-2"));
    }
    gates.bearer.require(Require::bearer("something-else"));
    for (gate, args) in &runs[..3] {
        let out = check(&gate.url(), args);
        assert!(!out.status.success(), "{args:?} must fail");
        assert_no_secret(&out, args);
    }
    let out = check(&gates.oauth2.url(), &runs[2].1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid_client"));
}

fn assert_no_secret(out: &Output, args: &[&str]) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for secret in [
        "leak-token-1",
        "leak-token-2",
        "leak-password-1",
        "leak-password-2",
        "leak-secret-1",
        "leak-secret-2",
        "leak-tenant-1",
        "granted-token",
    ] {
        assert!(!text.contains(secret), "{args:?} printed {secret}:\n{text}");
    }
    for basic in ["poller:leak-password-1", "poller:leak-password-2"] {
        assert!(
            !text.contains(&base64(basic)),
            "{args:?} printed basic credentials:\n{text}"
        );
    }
}
