//! A real Kubernetes control plane (kube-apiserver and etcd, built from Go
//! modules by tests/controlplane/) on loopback, and kubectl against it.
//!
//! The binary is built once and cached by tests/controlplane/build.sh; later
//! runs only hash its sources. The control plane gets SIGTERM when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::TempDir;

#[derive(Debug, thiserror::Error)]
pub enum ControlPlaneError {
    #[error("cannot build the control plane (tests/controlplane/build.sh): {0}")]
    Build(String),
    #[error("cannot start the control plane: {0}")]
    Start(String),
    #[error("kubectl {args}: {message}")]
    Kubectl { args: String, message: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Builds (or finds cached) the control-plane binary and returns its path.
pub fn build() -> Result<PathBuf, ControlPlaneError> {
    super::go_build("controlplane").map_err(ControlPlaneError::Build)
}

/// A running control plane.
#[derive(Debug)]
pub struct ControlPlane {
    child: Child,
    binary: PathBuf,
    kubeconfig: PathBuf,
    dir: TempDir,
}

impl ControlPlane {
    /// Builds if needed, starts, and waits until the API server is ready.
    pub fn start() -> Result<ControlPlane, ControlPlaneError> {
        let binary = build()?;
        let dir = TempDir::new("controlplane")?;
        let (child, kubeconfig) = serve(&binary, dir.path(), false)?;
        Ok(ControlPlane {
            child,
            binary,
            kubeconfig,
            dir,
        })
    }

    /// Stops the control plane (SIGTERM) and starts it again on the same
    /// ports, certificates and etcd data, as after a crash or an upgrade:
    /// clients keep their kubeconfigs and tokens. Returns once it is ready.
    pub fn restart(&mut self) -> Result<(), ControlPlaneError> {
        self.stop();
        let (child, kubeconfig) = serve(&self.binary, self.dir.path(), true)?;
        self.child = child;
        self.kubeconfig = kubeconfig;
        Ok(())
    }

    /// SIGTERM lets etcd and the API server stop cleanly; SIGKILL if not.
    fn stop(&mut self) {
        let _ = super::signal::send(self.child.id(), super::signal::Signal::Term);
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A scratch directory that lives as long as the control plane.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// kubectl as admin.
    pub fn kubectl(&self) -> Kubectl {
        Kubectl {
            program: kubectl_program(|| Ok(self.binary.clone()))
                .expect("the running control plane's binary is known"),
            kubeconfig: self.kubeconfig.clone(),
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `controlplane serve` on `dir` (`--again`: on what an earlier run left
/// there) and waits for its READY line, which names the admin kubeconfig.
fn serve(binary: &Path, dir: &Path, again: bool) -> Result<(Child, PathBuf), ControlPlaneError> {
    // Appends, so a restart keeps the log of the run before it.
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("controlplane.log"))?;
    let mut child = Command::new(binary)
        .args(["serve", "--dir"])
        .arg(dir)
        .args(again.then_some("--again"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| ControlPlaneError::Start(format!("{}: {e}", binary.display())))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(path) = line.strip_prefix("READY ") {
                let _ = tx.send(PathBuf::from(path.trim()));
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(180)) {
        Ok(kubeconfig) => Ok((child, kubeconfig)),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.join("controlplane.log")).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(30)..].join("\n");
            Err(ControlPlaneError::Start(format!(
                "not ready within 180s; log tail:\n{tail}"
            )))
        }
    }
}

/// `kubectl kustomize DIR`: the rendered manifests, with the machine's kubectl
/// or, without one, the control plane binary's built-in copy.
pub fn kustomize(dir: &Path) -> Result<String, ControlPlaneError> {
    // The control plane is built only when the machine has no kubectl.
    let program = kubectl_program(build)?;
    let out = Command::new(&program[0])
        .args(&program[1..])
        .arg("kustomize")
        .arg(dir)
        .output()?;
    if !out.status.success() {
        return Err(ControlPlaneError::Kubectl {
            args: format!("kustomize {}", dir.display()),
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn machine_kubectl() -> Option<String> {
    std::env::var("KUBECTL").ok().or_else(|| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("kubectl"))
                .find(|p| p.is_file())
                .map(|p| p.display().to_string())
        })
    })
}

/// The machine's kubectl when there is one, else the control plane binary's
/// built-in copy (`controlplane kubectl ...`); `controlplane` is asked for
/// that binary only then.
pub(crate) fn kubectl_program(
    controlplane: impl FnOnce() -> Result<PathBuf, ControlPlaneError>,
) -> Result<Vec<String>, ControlPlaneError> {
    Ok(match machine_kubectl() {
        Some(kubectl) => vec![kubectl],
        None => vec![controlplane()?.display().to_string(), "kubectl".into()],
    })
}

/// kubectl bound to one kubeconfig.
#[derive(Clone, Debug)]
pub struct Kubectl {
    program: Vec<String>,
    kubeconfig: PathBuf,
}

impl Kubectl {
    /// kubectl (`program` and its first arguments) bound to `kubeconfig`.
    pub(crate) fn new(program: Vec<String>, kubeconfig: PathBuf) -> Kubectl {
        Kubectl {
            program,
            kubeconfig,
        }
    }

    /// The kubeconfig kubectl is bound to (the admin's), for other clients.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// kubectl with `args`, to be spawned by the caller (a `--watch` that
    /// streams, for instance).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.program[0]);
        cmd.args(&self.program[1..])
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args);
        cmd
    }

    /// Runs kubectl and returns its stdout; a non-zero exit is an error
    /// carrying stderr.
    pub fn run(&self, args: &[&str]) -> Result<String, ControlPlaneError> {
        self.run_with_input(args, None)
    }

    pub fn run_with_input(
        &self,
        args: &[&str],
        input: Option<&str>,
    ) -> Result<String, ControlPlaneError> {
        use std::io::Write;
        let mut cmd = self.command(args);
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn()?;
        if let Some(input) = input {
            child
                .stdin
                .take()
                .expect("stdin is piped")
                .write_all(input.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            return Err(ControlPlaneError::Kubectl {
                args: args.join(" "),
                message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The status (`True`, `False`, `Unknown`, or empty while the object
    /// has none) of condition `condition` of `object` (`crd/name`,
    /// `deployment/name`, `node/name`) in `namespace` (`None`:
    /// cluster-scoped).
    pub fn condition_status(
        &self,
        namespace: Option<&str>,
        object: &str,
        condition: &str,
    ) -> Result<String, ControlPlaneError> {
        let jsonpath =
            format!(r#"jsonpath={{.status.conditions[?(@.type=="{condition}")].status}}"#);
        let mut args = Vec::new();
        if let Some(namespace) = namespace {
            args.extend(["-n", namespace]);
        }
        args.extend(["get", object, "-o", &jsonpath]);
        Ok(self.run(&args)?.trim().to_owned())
    }

    /// Waits until `object`'s condition `condition` is True, polling
    /// [`Kubectl::condition_status`] every 200 ms. Not `kubectl wait`: that
    /// fails outright ("accessor error: <nil>") when it reads an object the
    /// API server has not given any status yet, a race CI has hit. A
    /// timeout names what was last seen.
    pub fn wait_for_condition(
        &self,
        namespace: Option<&str>,
        object: &str,
        condition: &str,
        timeout: Duration,
    ) -> Result<(), ControlPlaneError> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let status = self.condition_status(namespace, object, condition);
            if matches!(&status, Ok(status) if status == "True") {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                let seen = match status {
                    Ok(status) => format!("{condition} is {status:?}"),
                    Err(err) => err.to_string(),
                };
                return Err(ControlPlaneError::Kubectl {
                    args: format!("get {object}"),
                    message: format!("not {condition} after {} s: {seen}", timeout.as_secs()),
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Writes a kubeconfig that authenticates with a ServiceAccount token
    /// instead of the admin certificate, same server and CA.
    pub fn service_account_kubeconfig(
        &self,
        namespace: &str,
        account: &str,
        path: &Path,
    ) -> Result<(), ControlPlaneError> {
        let token = self.run(&["create", "token", account, "-n", namespace, "--duration=2h"])?;
        let server = self.run(&[
            "config",
            "view",
            "--raw",
            "-o",
            "jsonpath={.clusters[0].cluster.server}",
        ])?;
        let ca = self.run(&[
            "config",
            "view",
            "--raw",
            "-o",
            "jsonpath={.clusters[0].cluster.certificate-authority-data}",
        ])?;
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: {account}\n  user:\n    token: {token}\ncontexts:\n- name: {account}\n  context:\n    cluster: local\n    user: {account}\n    namespace: {namespace}\ncurrent-context: {account}\n",
            token = token.trim()
        );
        std::fs::write(path, config)?;
        Ok(())
    }
}
