//! The catalogue: which designs run, under which conditions, in the quick
//! run and in the full run's sweeps and solo runs. Only data and the timing
//! rules derived from it; running them is the harness' job.

use std::time::Duration;

use crate::agent::Design;
use crate::designs::{
    DesignSpec, designs_eval_1s, designs_eval_30s, designs_manager, phase_locked,
    phase_locked_query, pick, pull, push, shipped,
};

/// Faults per full-run scenario: each is a fire and a resolve, so every
/// design has at least 20 transitions behind each p50 and p95 (a p95 of
/// four transitions is just their largest).
pub const MIN_CHANGES: usize = 10;

/// One experiment: a Prometheus set-up, some pipelines, some faults.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    /// The report sections (sweeps) that show this scenario. One run can be
    /// a point of several sweeps: the 100-pipeline scenario is also the
    /// no-noise and the default-resend-delay point, which saves a rerun.
    pub sweeps: Vec<&'static str>,
    pub evaluation: Duration,
    pub resend_delay: Option<Duration>,
    pub pipelines: usize,
    /// Unrelated firing alerts (`NoiseAlert`), in every `/api/v1/alerts`
    /// answer and every notification, as a real cluster has them.
    pub noise: usize,
    /// Faults injected (break, then mend), one after the other in each of
    /// `lanes` sequences that run at once on pipelines of their own.
    pub changes: usize,
    /// Sequences of changes at once: 1, or more where the rules take
    /// minutes to fire and clear (the manager's), so that ten changes take
    /// under an hour. Disruption scenarios stop every design: one lane.
    pub lanes: usize,
    /// Time with no change at the end, for the steady-state cost.
    pub stable: Duration,
    /// One pipeline dropping some data for the whole run, so that firing
    /// alerts exist while stable (what makes Prometheus re-send).
    pub background_alert: bool,
    /// Run on Prometheus 3 (`tests/prometheus3/build.sh`) instead of the
    /// default one (Debian's 2.42, or `$PROMETHEUS_BIN`).
    pub prometheus3: bool,
    /// How fast the rules react: sped up, or as telemetry-manager ships them.
    pub rules: Rules,
    /// The designs stopped around each change and started again.
    pub disruption: Option<Disruption>,
    pub designs: Vec<DesignSpec>,
}

/// The rate windows and `for` of the alert rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rules {
    /// Windows of three evaluations and no `for`: an alert within a few
    /// evaluations, so a scenario of ten changes fits in minutes.
    Fast,
    /// telemetry-manager's own: 5 m rate windows and `for: 1m` (the
    /// shipped rules file unchanged but for the evaluation interval).
    Manager,
}

/// telemetry-manager's rate window and `for`, as `config/prometheus/rules.yaml` holds them.
pub const MANAGER_WINDOW: Duration = Duration::from_secs(300);
pub const MANAGER_HOLD: Duration = Duration::from_secs(60);

/// Every design stopped before each change and started again `down` after
/// Prometheus shows it, so each change happens while no design runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disruption {
    /// What it stands for, in the report.
    pub what: &'static str,
    /// How long after Prometheus shows the change the designs start again.
    pub down: Duration,
}

/// A receiver restarting (a crash, a rollout): a new process, reconciling
/// from scratch, some seconds after the change.
pub const RECEIVER_RESTART: Disruption = Disruption {
    what: "receiver restart",
    down: Duration::from_secs(15),
};

/// Leadership moving to a warm standby: the old leader lets its Lease go on
/// shutdown and the standby takes it at its next retry (2 s, alert-poller's
/// and controller-runtime's default), then starts from scratch like a new
/// process, since only a leader polls or reconciles.
pub const LEADERSHIP_MOVE: Disruption = Disruption {
    what: "leadership move",
    down: Duration::from_secs(2),
};

impl Scenario {
    /// The rate window: three evaluations for the sped-up rules, so an
    /// alert needs a few samples and clears a few evaluations after a mend;
    /// five minutes for the manager's.
    pub fn window(&self) -> Duration {
        match self.rules {
            Rules::Fast => self.evaluation * 3,
            Rules::Manager => MANAGER_WINDOW,
        }
    }

    /// How long an alert stays pending before it fires (`for`).
    pub fn hold(&self) -> Duration {
        match self.rules {
            Rules::Fast => Duration::ZERO,
            Rules::Manager => MANAGER_HOLD,
        }
    }

    /// How long to wait after Prometheus shows a change before the next one.
    /// The pull design with the longest interval looks again within its
    /// `maxInterval` of the evaluation that changed the alert (phase-locked
    /// ones poll right after an evaluation); one more evaluation and 2s cover
    /// the request, the reconciles and a push design's queue. At 1s
    /// evaluation this is the 3s margin the first report used; at 30s a
    /// second extra evaluation would only add a minute per change.
    pub fn settle(&self) -> Duration {
        self.designs
            .iter()
            .map(DesignSpec::max_interval)
            .max()
            .unwrap_or_default()
            + self.evaluation
            + Duration::from_secs(2)
    }

    /// How long Prometheus may take to fire or clear an alert: the rate
    /// window must fill or drain (up to one more scrape and evaluation each),
    /// with ample room for a loaded machine.
    pub fn limit(&self) -> Duration {
        self.window() * 4 + self.hold() + self.evaluation * 4 + Duration::from_secs(10)
    }

    /// How long lane `lane` waits before its first change: lanes start
    /// staggered, so that their changes fall on different evaluations.
    pub fn lane_start(&self, lane: usize) -> Duration {
        (self.window() + self.hold()) / self.lanes.max(1) as u32 * lane as u32
    }

    /// The scenario's changes that lane `lane` makes, in order: change
    /// `lane + k × lanes` is its `k`-th.
    pub fn lane_changes(&self, lane: usize) -> impl Iterator<Item = usize> + use<> {
        (lane..self.changes).step_by(self.lanes.max(1))
    }

    /// A rough duration, for the progress lines and the total estimate:
    /// start-up, the initial settle, each change (fire, settle, clear,
    /// settle) and the stable phase; calibrated on the first report's runs.
    /// Lanes run their changes at once, each starting a share of a change
    /// after the one before (harness.rs), so the longest lane counts.
    pub fn estimate(&self) -> Duration {
        let eval = self.evaluation;
        let startup = Duration::from_secs(5)
            + if self.background_alert {
                self.window() + self.hold() + eval * 2
            } else {
                Duration::ZERO
            }
            + if self.noise > 0 {
                eval * 2
            } else {
                Duration::ZERO
            };
        let down = self.disruption.map_or(Duration::ZERO, |d| d.down);
        let change = self.settle() * 2
            + eval
            + Duration::from_secs(1)
            + self.window()
            + self.hold()
            + eval
            + down * 2;
        let longest_lane = (0..self.lanes.max(1))
            .map(|lane| self.lane_start(lane) + change * self.lane_changes(lane).count() as u32)
            .max()
            .unwrap_or_default();
        startup + eval * 2 + Duration::from_secs(2) + longest_lane + self.stable
    }
}

/// A design alone with a Prometheus of its own (or no design: the baseline).
#[derive(Clone, Debug)]
pub struct SoloRun {
    pub name: String,
    pub design: Option<DesignSpec>,
}

/// The solo set-up: the 100-pipeline, 1s-evaluation scenario with 1000
/// unrelated alerts and one background alert, so that every design has
/// something to fetch and push designs have re-sends to react to.
pub const SOLO_PIPELINES: usize = 100;
pub const SOLO_NOISE: usize = 1000;
pub const SOLO_SETTLE: Duration = Duration::from_secs(10);
pub const SOLO_MEASURED: Duration = Duration::from_secs(120);

impl SoloRun {
    /// Start-up with the background alert and noise, then settle and measure.
    pub fn estimate(&self) -> Duration {
        Duration::from_secs(10) + SOLO_SETTLE + SOLO_MEASURED
    }
}

/// What one invocation runs: the quick scenario alone, or the full run's
/// scenarios and solo runs whose name contains one of `only` (all of them
/// when `only` is empty).
pub fn plan(quick: bool, only: &[String]) -> (Vec<Scenario>, Vec<SoloRun>) {
    if quick {
        return (quick_run(), Vec::new());
    }
    let selected = |name: &str| only.is_empty() || only.iter().any(|o| name.contains(o.as_str()));
    (
        full().into_iter().filter(|s| selected(&s.name)).collect(),
        solo_runs()
            .into_iter()
            .filter(|s| selected(&s.name))
            .collect(),
    )
}

fn quick_run() -> Vec<Scenario> {
    let quick = Scenario {
        name: "quick".into(),
        sweeps: vec!["quick"],
        evaluation: Duration::from_secs(1),
        resend_delay: Some(Duration::from_secs(5)),
        pipelines: 10,
        noise: 0,
        changes: 2,
        // Two lanes at once, as the manager's-settings scenarios run.
        lanes: 2,
        stable: Duration::from_secs(15),
        background_alert: true,
        prometheus3: false,
        rules: Rules::Fast,
        disruption: None,
        designs: vec![
            push("push-all", Design::PushAll),
            push("push-scoped", Design::PushScoped),
            shipped(),
            pull("pull-fixed-1s", "1s", "1s", "1"),
            pull("pull-adaptive", "500ms", "5s", "1.5"),
            phase_locked("pull-locked-every-eval", "1s", "1s", "1"),
            phase_locked("pull-locked-adaptive", "500ms", "5s", "1.5"),
            phase_locked_query("pull-locked-query", "1s", "1s", "1"),
        ],
    };
    // The same, every design stopped around each change (one lane).
    let restart = Scenario {
        name: "quick-restart".into(),
        lanes: 1,
        disruption: Some(LEADERSHIP_MOVE),
        designs: pick(&quick.designs, &["push-scoped", "shipped", "pull-fixed-1s"]),
        ..quick.clone()
    };
    vec![quick, restart]
}

/// The full run's scenarios, sweep by sweep (see the crate doc in `main.rs`).
/// The manager's-settings scenarios come first: they answer the question.
fn full() -> Vec<Scenario> {
    let base = base_1s();
    let at_30s = Scenario {
        evaluation: Duration::from_secs(30),
        stable: Duration::from_secs(120),
        designs: designs_eval_30s(),
        ..base.clone()
    };
    let mut out = manager_points(&at_30s);
    out.extend(disrupted_points(&at_30s));
    out.extend(pipeline_points(&base));
    out.extend(noise_and_resend_points(&base));
    // The 1s headline scenario again, on the Prometheus the manager ships.
    out.push(Scenario {
        name: "eval-1s-100-pipelines-prometheus3".into(),
        sweeps: vec!["prometheus3"],
        prometheus3: true,
        ..base
    });
    // 100 pipelines at the manager's interval, with quicker rules.
    out.push(Scenario {
        name: "eval-30s-100-pipelines".into(),
        sweeps: vec!["evaluation"],
        ..at_30s
    });
    out
}

/// What the sweeps vary from: 100 pipelines, 1s evaluation, every design.
fn base_1s() -> Scenario {
    let second = Duration::from_secs(1);
    Scenario {
        name: String::new(),
        sweeps: vec![],
        evaluation: second,
        resend_delay: None,
        pipelines: 100,
        noise: 0,
        changes: MIN_CHANGES,
        lanes: 1,
        stable: second * 60,
        background_alert: true,
        prometheus3: false,
        rules: Rules::Fast,
        disruption: None,
        designs: designs_eval_1s(),
    }
}

/// telemetry-manager's settings: its rules (5m windows, `for: 1m`) every
/// 30s, three pipelines per kind, on the Prometheus it ships and on 2.42.
fn manager_points(at_30s: &Scenario) -> Vec<Scenario> {
    [true, false]
        .into_iter()
        .map(|prometheus3| Scenario {
            name: format!(
                "manager-settings{}",
                if prometheus3 { "-prometheus3" } else { "" }
            ),
            sweeps: vec!["manager"],
            pipelines: 9,
            prometheus3,
            rules: Rules::Manager,
            lanes: 3,
            designs: designs_manager(),
            ..at_30s.clone()
        })
        .collect()
}

/// The receiver stopped around each change: restarted, or leadership moved
/// to a standby. The manager's 30s interval with quicker rules, so that ten
/// changes take an hour, not three.
fn disrupted_points(at_30s: &Scenario) -> Vec<Scenario> {
    [
        ("receiver-restart", RECEIVER_RESTART),
        ("leadership-move", LEADERSHIP_MOVE),
    ]
    .into_iter()
    .map(|(name, disruption)| Scenario {
        name: name.into(),
        sweeps: vec!["disruption"],
        pipelines: 9,
        prometheus3: true,
        disruption: Some(disruption),
        designs: designs_manager(),
        ..at_30s.clone()
    })
    .collect()
}

fn pipeline_points(base: &Scenario) -> Vec<Scenario> {
    [1, 10, 100, 1000]
        .into_iter()
        .map(|pipelines| Scenario {
            name: format!("eval-1s-{pipelines}-pipelines"),
            // The 100-pipeline run is also the no-noise and the
            // default-resend-delay point of those sweeps.
            sweeps: if pipelines == 100 {
                vec!["pipelines", "noise", "resend"]
            } else {
                vec!["pipelines"]
            },
            pipelines,
            // The background alert needs a pipeline of its own.
            background_alert: pipelines > 1,
            ..base.clone()
        })
        .collect()
}

fn noise_and_resend_points(base: &Scenario) -> Vec<Scenario> {
    let all = &base.designs;
    let noise = [10, 1000, 10000].map(|noise| Scenario {
        name: format!("noise-{noise}-alerts"),
        sweeps: vec!["noise"],
        noise,
        designs: pick(
            all,
            &[
                "push-all",
                "push-scoped",
                "shipped",
                "pull-adaptive",
                "pull-locked-every-eval",
                "pull-locked-query",
            ],
        ),
        ..base.clone()
    });
    let resend = [5, 15].map(|resend| Scenario {
        name: format!("resend-{resend}s"),
        sweeps: vec!["resend"],
        resend_delay: Some(Duration::from_secs(resend)),
        designs: pick(
            all,
            &[
                "push-all",
                "push-scoped",
                "shipped",
                "pull-locked-every-eval",
            ],
        ),
        ..base.clone()
    });
    noise.into_iter().chain(resend).collect()
}

/// The baseline (Prometheus with no design) and each design alone.
fn solo_runs() -> Vec<SoloRun> {
    std::iter::once(SoloRun {
        name: "solo-baseline".into(),
        design: None,
    })
    .chain(designs_eval_1s().into_iter().map(|d| SoloRun {
        name: format!("solo-{}", d.label),
        design: Some(d),
    }))
    .collect()
}

#[cfg(test)]
mod tests;
