//! Finished runs kept on disk, so that a full run of about six hours can
//! be made in pieces: each scenario and solo run is written to
//! `<out>/runs/<name>.json` the moment it ends, and `--resume` takes a saved
//! one instead of running it again, as long as the catalogue still describes
//! it exactly as when it was recorded (its fingerprint). A run that is
//! interrupted loses only the scenario it was in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use alert_poller::domain::kind::Kind;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::agent::AgentReport;
use crate::outcome::{Outcome, SoloOutcome, Stable};
use crate::provenance::{Environment, Provenance};
use crate::scenarios::{SOLO_MEASURED, SOLO_NOISE, SOLO_PIPELINES, SOLO_SETTLE, Scenario, SoloRun};
use crate::truth;

/// Where the saved runs of a report live.
fn dir(out: &Path) -> PathBuf {
    out.join("runs")
}

fn path(out: &Path, name: &str) -> PathBuf {
    dir(out).join(format!("{name}.json"))
}

/// Everything that decides what a scenario measures. Any change to the
/// catalogue entry, its designs or their tuning changes it, and a saved run
/// with another fingerprint is run again rather than mixed in.
fn scenario_fingerprint(s: &Scenario) -> String {
    format!("{s:?}")
}

fn solo_fingerprint(s: &SoloRun) -> String {
    format!(
        "{s:?} pipelines={SOLO_PIPELINES} noise={SOLO_NOISE} settle={SOLO_SETTLE:?} measured={SOLO_MEASURED:?}"
    )
}

#[derive(Serialize, Deserialize)]
struct ChangeRecord {
    pipeline: String,
    pipeline_kind: String,
    fired_ms: Option<u64>,
    resolved_ms: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct ScenarioRecord {
    fingerprint: String,
    recorded_unix_ms: u64,
    /// The commit the run was built from; absent in older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    /// What it ran on; absent in older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    environment: Option<Environment>,
    /// When each design was started again (disruption scenarios), by
    /// label. Records before it kept one instant for all designs under
    /// `restarts`, taken once the last had started; it is not read.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    design_restarts: BTreeMap<String, Vec<u64>>,
    /// Each design's report under its label.
    reports: Vec<(String, AgentReport)>,
    truths: Vec<ChangeRecord>,
    prometheus_cpu: f64,
    duration: Duration,
    stable: Vec<Stable>,
}

#[derive(Serialize, Deserialize)]
struct SoloRecord {
    fingerprint: String,
    recorded_unix_ms: u64,
    outcome: SoloOutcome,
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let dir = path.parent().expect("a file in a directory");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let text = serde_json::to_string_pretty(value)?;
    // Written aside and renamed, so that an interrupted write leaves no
    // half a record to be resumed from.
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text + "\n").with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

/// Reads a saved record, `None` when there is none.
fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("reading {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

pub fn save_scenario(out: &Path, o: &Outcome) -> Result<()> {
    let record = ScenarioRecord {
        fingerprint: scenario_fingerprint(&o.scenario),
        recorded_unix_ms: o.provenance.recorded_unix_ms,
        code: o.provenance.code.clone(),
        environment: o.provenance.environment.clone(),
        design_restarts: o.restarts.clone(),
        reports: o
            .reports
            .iter()
            .map(|(spec, report)| (spec.label.clone(), report.clone()))
            .collect(),
        truths: o
            .truths
            .iter()
            .map(|c| ChangeRecord {
                pipeline: c.pipeline.clone(),
                pipeline_kind: c.pipeline_kind.as_str().to_string(),
                fired_ms: c.fired_ms,
                resolved_ms: c.resolved_ms,
            })
            .collect(),
        prometheus_cpu: o.prometheus_cpu,
        duration: o.duration,
        stable: o.stable.clone(),
    };
    write_json(&path(out, &o.scenario.name), &record)
}

/// The saved outcome of `s`, if one was recorded from the same catalogue
/// entry. A record of another fingerprint is `None` (it is overwritten when
/// the scenario has run again); an unreadable one is an error, which the
/// run reports, naming the file, before it runs the scenario again.
pub fn load_scenario(out: &Path, s: &Scenario, code: &Option<String>) -> Result<Option<Outcome>> {
    let Some(record) = read_json::<ScenarioRecord>(&path(out, &s.name))? else {
        return Ok(None);
    };
    if record.fingerprint != scenario_fingerprint(s) {
        return Ok(None);
    }
    if let Some(why) = not_resumable(record.code.as_deref(), code.as_deref()) {
        eprintln!("compare: {}: running it again: {why}", s.name);
        return Ok(None);
    }
    let mut reports = Vec::new();
    for (label, report) in record.reports {
        let Some(spec) = s.designs.iter().find(|d| d.label == label) else {
            bail!("{}: saved design {label} is not in the scenario", s.name);
        };
        reports.push((spec.clone(), report));
    }
    let mut truths = Vec::new();
    for c in record.truths {
        let pipeline_kind: Kind = c
            .pipeline_kind
            .parse()
            .map_err(|e| anyhow::anyhow!("{}: {e}", s.name))?;
        truths.push(truth::Change {
            pipeline: c.pipeline,
            pipeline_kind,
            fired_ms: c.fired_ms,
            resolved_ms: c.resolved_ms,
        });
    }
    Ok(Some(Outcome {
        scenario: s.clone(),
        reports,
        truths,
        prometheus_cpu: record.prometheus_cpu,
        duration: record.duration,
        stable: record.stable,
        restarts: record.design_restarts,
        provenance: Provenance {
            recorded_unix_ms: record.recorded_unix_ms,
            code: record.code,
            environment: record.environment,
        },
    }))
}

/// Why a saved run of `saved` code cannot stand beside runs of `now`:
/// a report's scenarios must all come from one clean commit, so a run
/// of another commit, or of a tree with uncommitted changes, is made again.
fn not_resumable(saved: Option<&str>, now: Option<&str>) -> Option<String> {
    match (saved, now) {
        (_, None) => Some("the code now is not a git checkout".into()),
        (_, Some(now)) if now.ends_with("-dirty") => {
            Some(format!("the tree has uncommitted changes ({now})"))
        }
        (Some(saved), Some(now)) if saved == now => None,
        (saved, Some(now)) => Some(format!(
            "saved from {}, the code now is {now}",
            saved.unwrap_or("unrecorded code")
        )),
    }
}

pub fn save_solo(out: &Path, run: &SoloRun, o: &SoloOutcome, now_ms: u64) -> Result<()> {
    let record = SoloRecord {
        fingerprint: solo_fingerprint(run),
        recorded_unix_ms: now_ms,
        outcome: o.clone(),
    };
    write_json(&path(out, &run.name), &record)
}

pub fn load_solo(out: &Path, run: &SoloRun, code: &Option<String>) -> Result<Option<SoloOutcome>> {
    let Some(record) = read_json::<SoloRecord>(&path(out, &run.name))?
        .filter(|r| r.fingerprint == solo_fingerprint(run))
    else {
        return Ok(None);
    };
    if let Some(why) = not_resumable(record.outcome.code.as_deref(), code.as_deref()) {
        eprintln!("compare: {}: running it again: {why}", run.name);
        return Ok(None);
    }
    Ok(Some(record.outcome))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenarios::plan;

    fn outcome(s: &Scenario) -> Outcome {
        Outcome {
            scenario: s.clone(),
            reports: s
                .designs
                .iter()
                .map(|d| {
                    (
                        d.clone(),
                        AgentReport {
                            reconciles: 7,
                            ..Default::default()
                        },
                    )
                })
                .collect(),
            truths: vec![truth::Change {
                pipeline: "p1".into(),
                pipeline_kind: Kind::Trace,
                fired_ms: Some(1000),
                resolved_ms: None,
            }],
            prometheus_cpu: 1.5,
            duration: Duration::from_millis(61_500),
            stable: vec![Stable {
                label: "push-all".into(),
                requests: 3,
                bytes: 4,
                reconciles: 5,
            }],
            restarts: BTreeMap::from([("push-all".into(), vec![1_796_000_001_000])]),
            provenance: Provenance {
                recorded_unix_ms: 1_796_000_000_000,
                code: Some("41f39a8".into()),
                environment: Some(Environment {
                    machine: "2 cores".into(),
                    kernel: "Linux 6.1".into(),
                    rust: "rustc 1.91.0".into(),
                    prometheus: "prometheus, version 3.12.0".into(),
                }),
            },
        }
    }

    #[test]
    fn a_saved_scenario_comes_back_whole_and_only_for_the_same_entry() {
        let dir = tempdir();
        let s = plan(true, &[]).0.remove(0);
        save_scenario(&dir, &outcome(&s)).unwrap();
        let code = Some("41f39a8".to_string());
        let back = load_scenario(&dir, &s, &code).unwrap().expect("saved");
        assert_eq!(back.reports.len(), s.designs.len());
        assert_eq!(back.reports[2].0.label, s.designs[2].label);
        assert_eq!(back.reports[2].1.reconciles, 7);
        assert_eq!(back.truths[0].pipeline_kind, Kind::Trace);
        assert_eq!(back.truths[0].fired_ms, Some(1000));
        assert_eq!(back.duration, Duration::from_millis(61_500));
        assert_eq!(back.stable[0].reconciles, 5);
        assert_eq!(back.provenance, outcome(&s).provenance);
        assert_eq!(back.restarts, outcome(&s).restarts);

        // Only the same clean commit resumes: a report is of one code.
        for other in [
            None,
            Some("5b1e2c0".to_string()),
            Some("41f39a8-dirty".to_string()),
        ] {
            assert!(
                load_scenario(&dir, &s, &other).unwrap().is_none(),
                "{other:?}"
            );
        }

        // Another tuning of the same name is another experiment.
        let mut changed = s.clone();
        changed.changes += 1;
        assert!(load_scenario(&dir, &changed, &code).unwrap().is_none());

        std::fs::write(path(&dir, &s.name), "{").unwrap();
        assert!(
            load_scenario(&dir, &s, &code).is_err(),
            "a damaged record is an error"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_record_is_none() {
        let dir = tempdir();
        let (scenarios, solos) = plan(false, &[]);
        let code = Some("41f39a8".to_string());
        assert!(load_scenario(&dir, &scenarios[0], &code).unwrap().is_none());
        assert!(load_solo(&dir, &solos[0], &code).unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "compare-record-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
