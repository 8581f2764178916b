//! The report's sweeps: which scenarios form each section, what the
//! section varies and says, and its tables.

use std::fmt::Write as _;

use alert_poller_experiments::figures::per_minute;

use super::{duration, resend};
use crate::outcome::Outcome;
use crate::report::reactions::reactions;
use crate::report::rows::{cells, row};
use crate::scenarios::Scenario;

/// What a sweep varies.
#[derive(Clone, Copy)]
enum Variable {
    Pipelines,
    Noise,
    Evaluation,
    Resend,
    Scenario,
}

impl Variable {
    fn heading(self) -> &'static str {
        match self {
            Variable::Pipelines => "pipelines",
            Variable::Noise => "unrelated alerts",
            Variable::Evaluation => "evaluation",
            Variable::Resend => "resend delay",
            Variable::Scenario => "scenario",
        }
    }

    /// Sort key and shown value.
    fn of(self, s: &Scenario) -> (u128, String) {
        match self {
            Variable::Pipelines => (s.pipelines as u128, s.pipelines.to_string()),
            Variable::Noise => (s.noise as u128, s.noise.to_string()),
            Variable::Evaluation => (s.evaluation.as_millis(), duration(s.evaluation)),
            Variable::Resend => (
                resend(s).as_millis(),
                match s.resend_delay {
                    Some(d) => duration(d),
                    None => "1m (default)".into(),
                },
            ),
            Variable::Scenario => (0, s.name.clone()),
        }
    }
}

/// A report section: the scenarios tagged with `key`.
pub(super) struct Sweep {
    pub(super) key: &'static str,
    title: &'static str,
    variable: Variable,
    about: &'static str,
}

pub(super) const SWEEPS: &[Sweep] = &[
    Sweep {
        key: "manager",
        title: "At telemetry-manager's settings",
        variable: Variable::Scenario,
        about: "The manager's rules file unchanged (5m rate windows, `for: 1m`), \
                evaluated every 30s, targets scraped every 30s, its default resend \
                delay (1m); 9 pipelines, three per kind; on Prometheus 3 (the version \
                the manager ships) and on Debian's 2.42. An alert takes about two \
                minutes to fire and five and a half to clear, so the ten changes run \
                in three lanes at once, each on pipelines of its own. Requests per \
                evaluation while stable are `requests/min stable` divided by two. \
                The designs start at a random moment of the evaluation cycle, as a \
                pod does; `pull-fixed-30s` and `pull-adaptive` (5s doubling to 60s) \
                then poll at one phase of it for the whole run, so their latencies \
                rest on one draw of that phase: over many starts they spread evenly \
                up to 30s.",
    },
    Sweep {
        key: "quick",
        title: "CI smoke test",
        variable: Variable::Scenario,
        about: "10 pipelines, evaluation 1s, resend delay 5s, two changes at once (two \
                lanes); `quick-restart`: the same with three designs, one change at a \
                time, every design stopped before each break and mend and started \
                again 2s after Prometheus shows it. Every design must see every change.",
    },
    Sweep {
        key: "pipelines",
        title: "Pipelines sweep",
        variable: Variable::Pipelines,
        about: "1, 10, 100 and 1000 pipelines; evaluation 1s; Prometheus' default resend \
                delay (1m); one background alert (from 10 pipelines up); no unrelated \
                alerts. How the cost while nothing changes grows with the number of \
                pipelines is in `requests/min stable` and `reconciles/min stable`; \
                reaction time is in the latency columns.",
    },
    Sweep {
        key: "noise",
        title: "Active alerts sweep",
        variable: Variable::Noise,
        about: "100 pipelines, evaluation 1s, default resend delay, with 0, 10, 1000 and \
                10000 unrelated firing alerts (`NoiseAlert`) that every `/api/v1/alerts` \
                answer and every notification carries (the `ALERTS` query of \
                `pull-locked-query` leaves them out). `KiB/request` is the size of one \
                answer, `MiB read` the total a design read and `CPU ms/request` the \
                design's CPU per request to Prometheus (for pull designs, one poll and \
                what it sets off); `seen` counts the changes \
                a design noticed out of those Prometheus made, so a design that missed \
                changes under the load shows it there.",
    },
    Sweep {
        key: "evaluation",
        title: "Realistic evaluation interval",
        variable: Variable::Evaluation,
        about: "100 pipelines; rules evaluated and targets scraped every 30s (rate \
                windows 90s); default resend delay; ten changes (break, mend). Latency \
                counts from the evaluation that changed the alert, so it is the delay a \
                design adds on top of Prometheus; read it next to `requests/min stable`. \
                The designs start at a random moment of the evaluation cycle, so \
                `pull-fixed-30s` and `pull-adaptive` measure one draw of their phase.",
    },
    Sweep {
        key: "prometheus3",
        title: "On Prometheus 3",
        variable: Variable::Scenario,
        about: "The 100-pipeline, 1s-evaluation scenario of the pipelines sweep again, on \
                Prometheus 3 built from Go modules (`tests/prometheus3/build.sh`, the \
                version telemetry-manager ships) instead of Debian's 2.42.",
    },
    Sweep {
        key: "disruption",
        title: "The receiver stopped around each change",
        variable: Variable::Scenario,
        about: "9 pipelines (three per kind), rules evaluated and targets scraped every \
                30s (rate windows 90s), Prometheus 3. Before each break and each mend \
                every design is stopped; it is started again, as a new process, \
                `down` after Prometheus shows the change: 15s for a restart (a crash \
                or a rollout), 2s for leadership moving to a standby (the old leader \
                lets its Lease go on shutdown, the standby takes it at its next 2s \
                retry and starts from scratch, since only a leader polls or \
                reconciles). So every change happens while no design runs, and \
                Prometheus' notification of it fails. Latency in this table counts \
                from the change and so includes the time down; the table after it \
                counts from the start. `status writes` counts each start's first \
                verdicts, which a real receiver would compare with the status \
                already there.",
    },
    Sweep {
        key: "resend",
        title: "Resend-delay sweep",
        variable: Variable::Resend,
        about: "100 pipelines, evaluation 1s, one background alert firing throughout, \
                Prometheus' `--rules.alert.resend-delay` at 5s, 15s and the default 1m. \
                Prometheus re-sends firing alerts to its Alertmanagers (the push \
                designs) once per resend delay, and pulling designs are not notified \
                at all; compare `notifications`, `requests/min stable` and \
                `reconciles/min stable` across the delays.",
    },
];

pub(super) fn sweep_section(md: &mut String, sweep: &Sweep, outcomes: &[Outcome]) {
    let mut members: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.scenario.sweeps.contains(&sweep.key))
        .collect();
    if members.is_empty() {
        return;
    }
    members.sort_by_key(|o| sweep.variable.of(&o.scenario).0);
    // A shared scenario ran more designs than this sweep is about: show the
    // designs every member ran, in the order the first one ran them.
    let designs: Vec<&str> = members[0]
        .reports
        .iter()
        .map(|(d, _)| d.label.as_str())
        .filter(|l| {
            members
                .iter()
                .all(|o| o.reports.iter().any(|(d, _)| d.label == *l))
        })
        .collect();
    let heading = sweep.variable.heading();
    let _ = write!(md, "\n## {}\n\n{}\n", sweep.title, sweep.about);
    shared_notes(md, sweep, &members);
    let _ = write!(
        md,
        "\n| {heading} | design | latency p50 ms (95% CI) | p95 ms (95% CI) | max ms | seen | requests | MiB read | KiB/request | requests/min stable | reconciles | reconciles/min stable | status writes | notifications | CPU s | CPU ms/request | peak RSS MiB |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    );
    for o in &members {
        let reactions = reactions(o);
        let value = sweep.variable.of(&o.scenario).1;
        for label in &designs {
            let Some((spec, r)) = o.reports.iter().find(|(d, _)| d.label == *label) else {
                continue;
            };
            let x = row(o, spec, r, &reactions);
            let _ = writeln!(md, "| {value} | {} |", cells(&spec.label, &x));
        }
    }
    conditions_table(md, &members);
}

/// Says which points of the sweep are the same run as a point of another
/// sweep, so a reader does not count them twice.
fn shared_notes(md: &mut String, sweep: &Sweep, members: &[&Outcome]) {
    let heading = sweep.variable.heading();
    for o in members {
        let others: Vec<&str> = o
            .scenario
            .sweeps
            .iter()
            .filter(|k| **k != sweep.key)
            .filter_map(|k| SWEEPS.iter().find(|s| s.key == *k))
            .map(|s| s.title)
            .collect();
        if !others.is_empty() && members.len() > 1 {
            let _ = writeln!(
                md,
                "The {heading} = {} point is scenario `{}`, the same run as in {} \
                 ({} changes, {} designs; only this sweep's designs are shown).",
                sweep.variable.of(&o.scenario).1,
                o.scenario.name,
                others.join(" and "),
                o.scenario.changes,
                o.reports.len()
            );
        }
    }
}

/// Under which conditions each point ran, and Prometheus' CPU over it.
fn conditions_table(md: &mut String, members: &[&Outcome]) {
    md.push_str(
        "\n| scenario | evaluation | pipelines | unrelated alerts | resend delay | changes | stable s | Prometheus CPU s | Prometheus CPU s/min | duration s |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for o in members {
        let s = &o.scenario;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.0} |",
            s.name,
            duration(s.evaluation),
            s.pipelines,
            s.noise,
            Variable::Resend.of(s).1,
            s.changes,
            s.stable.as_secs(),
            o.prometheus_cpu,
            per_minute(o.prometheus_cpu, o.duration.as_secs_f64()),
            o.duration.as_secs_f64()
        );
    }
}
