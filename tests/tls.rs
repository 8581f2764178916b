//! TLS towards Prometheus: verification is on unless explicitly disabled, a
//! CA file makes a private CA trusted, and disabling verification is logged
//! as a warning. Uses `alert-poller check` against a local HTTPS endpoint with
//! a self-signed certificate made by openssl.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

use alert_poller_testbed::TempDir;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private CA, a server certificate for 127.0.0.1 signed by it, and an
/// HTTPS server using that certificate. Returns the CA file's path.
fn https_server(dir: &TempDir) -> (Server, u16, String) {
    let p = |name: &str| dir.path().join(name).display().to_string();
    std::fs::write(
        p("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=test CA",
            "-keyout",
            &p("ca.key"),
            "-out",
            &p("ca.pem"),
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=prometheus.test",
            "-keyout",
            &p("key.pem"),
            "-out",
            &p("leaf.csr"),
        ],
        &[
            "x509",
            "-req",
            "-in",
            &p("leaf.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            &p("leaf.ext"),
            "-out",
            &p("cert.pem"),
        ],
    ];
    for args in steps {
        let ok = Command::new("openssl")
            .args(args)
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .status();
        assert!(ok.expect("openssl runs").success(), "openssl {args:?}");
    }
    let (cert, key) = (p("cert.pem"), p("key.pem"));
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/https_prometheus.py"
    );
    let mut child = Command::new("python3")
        .arg(script)
        .arg(&cert)
        .arg(&key)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().parse().expect("the server prints its port");
    (Server(child), port, p("ca.pem"))
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
    let (_server, port, ca) = https_server(&dir);
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

    let insecure = check(&url, &["--insecure-skip-verify", "true"]);
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
