//! What a run measured, as the report, the saved runs and the verdict read
//! it: per scenario an [`Outcome`], per solo run a [`SoloOutcome`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::agent::AgentReport;
use crate::designs::DesignSpec;
use crate::provenance::Provenance;
use crate::scenarios::Scenario;
use crate::truth;

/// Steady-state counters of one design: what it cost while nothing changed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stable {
    pub label: String,
    pub requests: u64,
    pub bytes: u64,
    pub reconciles: u64,
}

/// What one scenario measured.
#[derive(Debug)]
pub struct Outcome {
    pub scenario: Scenario,
    pub reports: Vec<(DesignSpec, AgentReport)>,
    pub truths: Vec<truth::Change>,
    pub prometheus_cpu: f64,
    pub duration: Duration,
    /// Counts during the stable phase only.
    pub stable: Vec<Stable>,
    /// When each design (by label) was started again, in a disruption
    /// scenario (Unix ms). Per design: they start one after another, and a
    /// design started first may have set its statuses before the last one
    /// is up, so one instant for all would misplace its start.
    pub restarts: BTreeMap<String, Vec<u64>>,
    /// When the run was made and from which code, so a report that mixes
    /// saved runs says which figures came from which version.
    pub provenance: Provenance,
}

/// What a solo run measured over its stable phase.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SoloOutcome {
    /// The design's label, or `baseline` for Prometheus alone.
    pub label: String,
    pub pipelines: usize,
    pub evaluation: Duration,
    pub noise: usize,
    pub measured: Duration,
    pub prometheus_cpu: f64,
    pub requests: u64,
    pub bytes: u64,
    pub reconciles: u64,
    pub notifications: u64,
    pub design_cpu: f64,
    /// The commit it was built from; absent in older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}
