//! Where a run came from: the commit (and whether the tree was clean), the
//! machine, kernel, Rust and Prometheus, and when. The pieces of a full run
//! are made hours or days apart, so each carries its own.

use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

/// When a run was recorded, the commit it was built from and what it ran on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Provenance {
    pub recorded_unix_ms: u64,
    /// `git describe`-like: the commit, `-dirty` with uncommitted changes;
    /// `None` for runs saved before this was recorded.
    pub code: Option<String>,
    /// The machine, kernel, Rust and Prometheus; `None` in older records.
    pub environment: Option<Environment>,
}

/// What a run ran on, recorded with it, since the pieces of a full run may
/// be made on different days or machines.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    pub machine: String,
    pub kernel: String,
    pub rust: String,
    pub prometheus: String,
}

impl Environment {
    /// The environment now, with the Prometheus binary the run uses.
    pub fn of(prometheus: &str) -> Environment {
        let first_line = |program: &str, args: &[&str]| {
            Command::new(program)
                .args(args)
                .output()
                .ok()
                .map(|o| {
                    let text = if o.stdout.is_empty() {
                        o.stderr
                    } else {
                        o.stdout
                    };
                    String::from_utf8_lossy(&text)
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_owned()
                })
                .unwrap_or_default()
        };
        Environment {
            machine: machine(),
            kernel: first_line("uname", &["-sr"]),
            rust: first_line("rustc", &["--version"]),
            prometheus: first_line(prometheus, &["--version"]),
        }
    }
}

/// What decides a measurement, as git pathspecs: the whole tree but what
/// `compare` itself writes (the report, its CSVs and plots, the saved
/// runs), so that a run saved into a checkout of the commit does not mark
/// the next one as made from uncommitted code.
pub const MEASURED: [&str; 5] = [
    ":(top)",
    ":(top,exclude)experiments/runs",
    ":(top,exclude)experiments/report.md",
    ":(top,exclude,glob)experiments/*.csv",
    ":(top,exclude,glob)experiments/*.svg",
];

impl Provenance {
    /// The working tree's commit, if it is a git checkout. Taken when a run
    /// starts, so that editing the tree during an hour-long run does not
    /// mark it as made from uncommitted code.
    pub fn code() -> Option<String> {
        let git = |args: &[&str]| {
            Command::new("git")
                .args(args)
                .stderr(Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        };
        git(&["rev-parse", "--short", "HEAD"]).map(|commit| {
            let mut status = vec!["status", "--porcelain", "--untracked-files=no", "--"];
            status.extend(MEASURED);
            let dirty = git(&status).is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{commit}-dirty")
            } else {
                commit
            }
        })
    }

    /// A run of `code`, recorded now.
    pub fn recorded_now(code: Option<String>, environment: Environment) -> Provenance {
        Provenance {
            recorded_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64,
            code,
            environment: Some(environment),
        }
    }
}

/// The machine in one line: cores, CPU model and memory.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0.0, |kb| kb as f64 / 1048576.0);
    format!("{cores} cores ({cpu}), {mem:.0} GiB memory")
}
