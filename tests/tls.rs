//! TLS towards Prometheus: verification is on unless explicitly disabled, a
//! CA file makes a private CA trusted, and disabling verification is logged
//! as a warning; a client certificate is presented when asked for, and a
//! rotated one is picked up by the running poller. Uses `alert-poller check`
//! and the poller against a local HTTPS endpoint (a Python stand-in answering
//! like an empty Prometheus) with certificates made by openssl.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use std::time::{Duration, Instant};

use alert_poller_testbed::TempDir;
use alert_poller_testbed::poller::{StandalonePoller, tuning};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs openssl quietly; panics if it fails.
fn openssl(args: &[&str]) {
    let ok = Command::new("openssl")
        .args(args)
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .status();
    assert!(ok.expect("openssl runs").success(), "openssl {args:?}");
}

/// A self-signed CA named `name` in `dir`: `name.pem` and `name.key`.
fn make_ca(dir: &TempDir, name: &str) -> String {
    let p = |file: &str| dir.path().join(file).display().to_string();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        &format!("/CN={name}"),
        "-keyout",
        &p(&format!("{name}.key")),
        "-out",
        &p(&format!("{name}.pem")),
    ]);
    p(&format!("{name}.pem"))
}

/// A certificate and key named `name`, signed by the CA `ca`, with the
/// extensions `ext` (a server's address, or a client's usage). Returns the
/// certificate's and the key's paths.
fn issue(dir: &TempDir, ca: &str, name: &str, ext: &str) -> (String, String) {
    let p = |file: &str| dir.path().join(file).display().to_string();
    std::fs::write(p(&format!("{name}.ext")), ext).unwrap();
    let (cert, key, csr) = (
        p(&format!("{name}.pem")),
        p(&format!("{name}.key")),
        p(&format!("{name}.csr")),
    );
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        &format!("/CN={name}"),
        "-keyout",
        &key,
        "-out",
        &csr,
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &p(&format!("{ca}.pem")),
        "-CAkey",
        &p(&format!("{ca}.key")),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &p(&format!("{name}.ext")),
        "-out",
        &cert,
    ]);
    (cert, key)
}

/// A private CA, a server certificate for 127.0.0.1 signed by it, and an
/// HTTPS server using that certificate, which with `client_ca` asks clients
/// for a certificate signed by that CA. Returns the CA file's path.
fn https_server(dir: &TempDir, client_ca: Option<&str>) -> (Server, u16, String) {
    let ca = make_ca(dir, "ca");
    let (cert, key) = issue(
        dir,
        "ca",
        "leaf",
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    );
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/https_prometheus.py"
    );
    let mut child = Command::new("python3")
        .arg(script)
        .arg(&cert)
        .arg(&key)
        .args(client_ca)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().parse().expect("the server prints its port");
    (Server(child), port, ca)
}

fn check(url: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_alert-poller"))
        .args(["check", "--pipeline", "a", "--prometheus-url", url])
        .args(extra)
        .output()
        .expect("the binary runs")
}

#[test]
fn tls_is_verified_unless_explicitly_disabled() {
    let dir = TempDir::new("tls").unwrap();
    let (_server, port, ca) = https_server(&dir, None);
    let url = format!("https://127.0.0.1:{port}");

    let untrusted = check(&url, &[]);
    let stderr = String::from_utf8_lossy(&untrusted.stderr);
    assert!(
        !untrusted.status.success(),
        "a certificate from an unknown CA is refused"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.to_lowercase().contains("certificate"),
        "the cause is named: {stderr}"
    );

    let trusted = check(&url, &["--ca-file", &ca]);
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    assert!(String::from_utf8_lossy(&trusted.stdout).contains("FlowHealthy"));

    let insecure = check(&url, &["--insecure-skip-verify"]);
    assert!(
        insecure.status.success(),
        "{}",
        String::from_utf8_lossy(&insecure.stderr)
    );
    let log = String::from_utf8_lossy(&insecure.stderr);
    assert!(
        log.contains("WARN") && log.contains("verification") && log.contains("disabled"),
        "disabling verification is logged as a warning: {log}"
    );
}

const CLIENT_EXT: &str =
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n";

/// `check` with a client certificate: no answer without one, an answer
/// with `good_cert` and `good_key`, and with `bad_key` instead a one-line
/// error saying the two do not belong together.
fn assert_check_presents_the_pair(
    url: &str,
    ca: &str,
    good_cert: &str,
    good_key: &str,
    bad_key: &str,
) {
    let with_pair = |cert: &str, key: &str| {
        check(
            url,
            &["--ca-file", ca, "--cert-file", cert, "--key-file", key],
        )
    };
    let without = check(url, &["--ca-file", ca]);
    assert!(!without.status.success(), "no certificate, no answer");
    let with = with_pair(good_cert, good_key);
    let stderr = String::from_utf8_lossy(&with.stderr);
    assert!(with.status.success(), "{stderr}");
    let unpaired = with_pair(good_cert, bad_key);
    let stderr = String::from_utf8_lossy(&unpaired.stderr);
    assert!(
        !unpaired.status.success() && stderr.lines().count() == 1,
        "{stderr}"
    );
    assert!(
        stderr.contains("KeyMismatch") || stderr.contains("not consistent"),
        "{stderr}"
    );
}

/// A poller presenting the certificate and key at `cert` and `key`, as
/// mounted from a Secret, polling often so that a rotation shows soon.
fn poller_with_mounted_pair(url: &str, ca: &str, cert: &Path, key: &Path) -> StandalonePoller {
    StandalonePoller::start(tuning(&[
        ("prometheusUrl", url),
        ("caFile", ca),
        ("certFile", cert.to_str().unwrap()),
        ("keyFile", key.to_str().unwrap()),
        ("minInterval", "200ms"),
        ("maxInterval", "200ms"),
        ("errorMaxInterval", "300ms"),
    ]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_is_presented_and_a_rotated_one_picked_up() {
    let dir = TempDir::new("mtls").unwrap();
    let clients_ca = make_ca(&dir, "clients-ca");
    let (_server, port, ca) = https_server(&dir, Some(&clients_ca));
    let url = format!("https://127.0.0.1:{port}");
    let (good_cert, good_key) = issue(&dir, "clients-ca", "poller", CLIENT_EXT);
    make_ca(&dir, "stranger-ca");
    let (bad_cert, bad_key) = issue(&dir, "stranger-ca", "stranger", CLIENT_EXT);
    assert_check_presents_the_pair(&url, &ca, &good_cert, &good_key, &bad_key);

    // The running poller starts with a certificate the server does not
    // trust, then the Secret is rotated to a good one: the next poll uses it.
    let (cert, key) = (
        dir.path().join("mounted.pem"),
        dir.path().join("mounted.key"),
    );
    std::fs::copy(&bad_cert, &cert).unwrap();
    std::fs::copy(&bad_key, &key).unwrap();
    let poller = poller_with_mounted_pair(&url, &ca, &cert, &key);
    let failed = |p: &StandalonePoller| p.polls("transport") + p.polls("connect");
    let started = Instant::now();
    while failed(&poller) < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the stranger's polls must fail"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(poller.view.borrow().snapshot.is_none());
    // Both files replaced by rename, as a Secret volume does.
    for (from, to) in [(&good_cert, &cert), (&good_key, &key)] {
        let next = to.with_extension("next");
        std::fs::copy(from, &next).unwrap();
        std::fs::rename(&next, to).unwrap();
    }
    let started = Instant::now();
    while poller.view.borrow().snapshot.is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the rotated certificate was not used"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
