//! The designs the experiments compare: push as telemetry-manager does it
//! and as the proof of concept did, what deploy/ ships (read from deploy/
//! at run time), and the pull tunings that show what each of its parts
//! buys. Each list is the set one kind of scenario runs.

use std::time::Duration;

use crate::agent::Design;

/// One design as the harness runs it.
#[derive(Clone, Debug)]
pub struct DesignSpec {
    pub label: String,
    pub design: Design,
    /// Pull schedule (ConfigMap keys).
    pub tuning: Vec<(&'static str, String)>,
}

impl DesignSpec {
    /// The longest poll interval of a pull design (zero for push): how long
    /// it may take to look again after a change.
    pub fn max_interval(&self) -> Duration {
        self.tuning
            .iter()
            .find(|(k, _)| *k == "maxInterval")
            .and_then(|(_, v)| humantime::parse_duration(v).ok())
            .unwrap_or_default()
    }

    /// The same design with one of its named keys set otherwise.
    fn with(mut self, key: &str, value: &str) -> DesignSpec {
        for (k, v) in &mut self.tuning {
            if *k == key {
                *v = value.into();
            }
        }
        self
    }
}

pub fn pull(label: &str, min: &str, max: &str, factor: &str) -> DesignSpec {
    DesignSpec {
        label: label.into(),
        design: Design::Pull,
        // Schedule and source are named, not left to the defaults, so that
        // a change of default neither changes what a saved run measured nor
        // makes two designs the same. (phaseLock was once left out: when
        // its default became true, the plain pull designs were
        // phase-locked too, and pull-fixed-30s measured as fast as
        // shipped at a 30s evaluation.)
        tuning: vec![
            ("minInterval", min.into()),
            ("maxInterval", max.into()),
            ("backoffFactor", factor.into()),
            ("phaseLock", "false".into()),
            ("alertSource", "alerts".into()),
        ],
    }
}

pub fn phase_locked(label: &str, min: &str, max: &str, factor: &str) -> DesignSpec {
    pull(label, min, max, factor).with("phaseLock", "true")
}

/// Phase-locked, reading the `ALERTS` series of our alert names instead of
/// every active alert (`alertSource: query`).
pub fn phase_locked_query(label: &str, min: &str, max: &str, factor: &str) -> DesignSpec {
    phase_locked(label, min, max, factor).with("alertSource", "query")
}

/// What deploy/ ships, as it is at run time: the schedule and source keys
/// of `deploy/base/configmap.yaml`, so the report measures the product and
/// not a copy of its values.
pub fn shipped() -> DesignSpec {
    let path = alert_poller_testbed::repo_root().join("deploy/base/configmap.yaml");
    let yaml = std::fs::read_to_string(&path).expect("deploy/base/configmap.yaml reads");
    let configmap: serde_json::Value =
        serde_norway::from_str(&yaml).expect("deploy/base/configmap.yaml parses");
    let tuning = SHIPPED_KEYS
        .iter()
        .filter_map(|key| {
            let value = configmap["data"][*key].as_str()?;
            Some((*key, value.to_owned()))
        })
        .collect();
    DesignSpec {
        label: "shipped".into(),
        design: Design::Pull,
        tuning,
    }
}

/// The keys that decide when and how a pull design polls.
const SHIPPED_KEYS: [&str; 5] = [
    "minInterval",
    "maxInterval",
    "backoffFactor",
    "phaseLock",
    "alertSource",
];

pub fn push(label: &str, design: Design) -> DesignSpec {
    DesignSpec {
        label: label.into(),
        design,
        tuning: vec![],
    }
}

/// All ten designs at 1s evaluation: what deploy/ ships and nine others.
pub fn designs_eval_1s() -> Vec<DesignSpec> {
    vec![
        push("push-all", Design::PushAll),
        push("push-scoped", Design::PushScoped),
        shipped(),
        pull("pull-fixed-1s", "1s", "1s", "1"),
        pull("pull-fixed-5s", "5s", "5s", "1"),
        pull("pull-fixed-30s", "30s", "30s", "1"),
        pull("pull-adaptive", "1s", "15s", "1.5"),
        // Phase-locked: after every evaluation, or skipping evaluations
        // as the adaptive schedule allows.
        phase_locked("pull-locked-every-eval", "1s", "1s", "1"),
        phase_locked("pull-locked-adaptive", "1s", "15s", "1.5"),
        // The same as every-eval, with the server filtering the alerts.
        phase_locked_query("pull-locked-query", "1s", "1s", "1"),
    ]
}

pub fn pick(designs: &[DesignSpec], labels: &[&str]) -> Vec<DesignSpec> {
    labels
        .iter()
        .map(|l| {
            designs
                .iter()
                .find(|d| d.label == *l)
                .cloned()
                .expect("a known design")
        })
        .collect()
}

/// The designs at 30 s evaluation, telemetry-manager's interval.
pub fn designs_eval_30s() -> Vec<DesignSpec> {
    vec![
        push("push-all", Design::PushAll),
        push("push-scoped", Design::PushScoped),
        shipped(),
        pull("pull-fixed-30s", "30s", "30s", "1"),
        pull("pull-adaptive", "5s", "60s", "2"),
        phase_locked("pull-locked-every-eval", "30s", "30s", "1"),
        // Skipping at most one evaluation: every design must have seen a
        // change before the next, so the slowest ceiling sets the pace of
        // the whole scenario (120s made it 76 min).
        phase_locked("pull-locked-adaptive", "30s", "60s", "2"),
        phase_locked_query("pull-locked-query", "30s", "30s", "1"),
    ]
}

/// The designs beside telemetry-manager: push as the manager does it and
/// as the proof of concept did, what deploy/ ships, and the two plain
/// pull schedules. The other phase-locked designs poll at the same moment
/// as `shipped`, each with a process of its own on two cores, and would
/// only crowd it; `eval-30s-100-pipelines` has them all.
pub fn designs_manager() -> Vec<DesignSpec> {
    pick(
        &designs_eval_30s(),
        &[
            "push-all",
            "push-scoped",
            "shipped",
            "pull-fixed-30s",
            "pull-adaptive",
        ],
    )
}
