//! Names the commit the binary is built from, for `alert_poller_build_info`
//! and `--version`: an operator looking at a running replica should not have
//! to guess which code it runs. `ALERT_POLLER_COMMIT` wins (an image build
//! from a tarball has no `.git`); otherwise git is asked; otherwise
//! `unknown`.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=ALERT_POLLER_COMMIT");
    // A new commit or branch switch changes these; nothing else needs a rebuild.
    for file in [".git/HEAD", ".git/packed-refs"] {
        if Path::new(file).exists() {
            println!("cargo:rerun-if-changed={file}");
        }
    }
    if let Some(branch) = std::fs::read_to_string(".git/HEAD")
        .ok()
        .and_then(|head| head.strip_prefix("ref: ").map(|r| r.trim().to_owned()))
    {
        let file = format!(".git/{branch}");
        if Path::new(&file).exists() {
            println!("cargo:rerun-if-changed={file}");
        }
    }
    let commit = std::env::var("ALERT_POLLER_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(git_head)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=ALERT_POLLER_COMMIT={commit}");
}

fn git_head() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()?;
    let commit = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !commit.is_empty()).then_some(commit)
}
