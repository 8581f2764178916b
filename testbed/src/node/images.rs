//! Images on the node: nothing is pulled from a registry, so every image a
//! pod runs is imported from an OCI archive into containerd.

use super::*;

/// The pause image's name, as containerd is told to use it; also the one
/// container of a test pod that only holds a network namespace.
pub const PAUSE_IMAGE: &str = "localhost/alert-poller-pause:1";
/// The project's image as kubelet asks containerd for it: deploy/ names it
/// `alert-poller:<version>`, which normalizes to Docker Hub's library.
pub fn project_image() -> String {
    format!(
        "docker.io/library/alert-poller:{}",
        env!("CARGO_PKG_VERSION")
    )
}

/// The image of Debian's Prometheus that tests/node/prometheus-image.sh
/// builds, as kubelet asks containerd for it.
pub const TEST_PROMETHEUS_IMAGE: &str = "localhost/alert-poller-test-prometheus:1";

impl Node {
    /// Imports an OCI image archive into containerd's Kubernetes namespace
    /// under `name` (a full reference, as kubelet asks for it).
    pub fn import_image(&self, archive: &Path, name: &str) -> Result<(), NodeError> {
        let socket = self.containerd_socket();
        let ctr = |args: &[&str]| -> Result<String, NodeError> {
            let out = self
                .command(Path::new("ctr"))
                .arg("--address")
                .arg(&socket)
                .args(["--namespace", "k8s.io"])
                .args(args)
                .output()?;
            if !out.status.success() {
                return Err(NodeError::Start(format!(
                    "ctr {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        };
        let before: Vec<String> = ctr(&["images", "list", "--quiet"])?
            .lines()
            .map(str::to_owned)
            .collect();
        ctr(&["images", "import", &archive.display().to_string()])?;
        // The archive names the image by its tag alone (buildah) or in full
        // (our pause image); kubelet asks for the normalized full name.
        let imported: Vec<String> = ctr(&["images", "list", "--quiet"])?
            .lines()
            .filter(|l| !before.iter().any(|b| b == l) && !l.starts_with("sha256:"))
            .map(str::to_owned)
            .collect();
        if imported.iter().any(|i| i == name) {
            return Ok(());
        }
        let Some(source) = imported.first() else {
            return Err(NodeError::Start(format!(
                "{} held no new image",
                archive.display()
            )));
        };
        ctr(&["images", "tag", "--force", source, name])?;
        Ok(())
    }

    /// Builds the project's image (scripts/image.sh, from the debug binary:
    /// the packaging is the same for both profiles, and the tests and the
    /// demo have that one built already) and imports it under the name
    /// deploy/'s `alert-poller:<version>` normalizes to.
    pub fn import_project_image(&self) -> Result<(), NodeError> {
        let archive = build_archive("scripts/image.sh", &[("ALERT_POLLER_PROFILE", "debug")])?;
        self.import_image(&archive, &project_image())
    }

    /// Builds the image of Debian's Prometheus (tests/node/prometheus-image.sh)
    /// and imports it as [`TEST_PROMETHEUS_IMAGE`].
    pub fn import_test_prometheus_image(&self) -> Result<(), NodeError> {
        let archive = build_archive("tests/node/prometheus-image.sh", &[])?;
        self.import_image(&archive, TEST_PROMETHEUS_IMAGE)
    }
}

/// Runs an image script of the repository (`script`, relative to its root,
/// with `env`) and returns the archive it names on its last line of output.
fn build_archive(script: &str, env: &[(&str, &str)]) -> Result<PathBuf, NodeError> {
    let root = crate::repo_root();
    let out = Command::new("bash")
        .arg(root.join(script))
        .envs(env.iter().copied())
        .current_dir(root)
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(NodeError::Start(format!(
            "{script} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let archive = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned();
    Ok(root.join(archive))
}
