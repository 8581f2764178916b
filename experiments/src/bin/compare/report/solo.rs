//! The solo part of the report: Prometheus' CPU with each design alone.

use std::fmt::Write as _;

use alert_poller_experiments::figures::{kib_per_request, per_minute};

use super::rows::kib;
use super::{MIB, duration};
use crate::outcome::SoloOutcome;
use crate::scenarios::{SOLO_MEASURED, SOLO_SETTLE};

pub(super) fn solo_section(md: &mut String, solo: &[SoloOutcome]) {
    let Some(first) = solo.first() else { return };
    let per_min = |v: f64, o: &SoloOutcome| per_minute(v, o.measured.as_secs_f64());
    let baseline = solo
        .iter()
        .find(|o| o.label == "baseline")
        .map(|b| per_min(b.prometheus_cpu, b));
    let _ = write!(
        md,
        "\n## Prometheus CPU per design (solo)\n\n\
         Designs sharing one Prometheus share its CPU time, so here each design ran \
         alone with a fresh Prometheus and collector: {} pipelines, evaluation {}, {} \
         unrelated alerts, one background alert, default resend delay; the push designs \
         are its only Alertmanager. `baseline` is Prometheus with no design. After {} to \
         settle, Prometheus' CPU time (user + system, from /proc) and the design's \
         requests were counted over {}. `vs baseline` is the design's Prometheus CPU \
         s/min minus the baseline's: what the design costs Prometheus. Each row is one \
         run, and the baseline alone moved between 3.9 and 6.9 s/min from run to run \
         in [solo-repeat.md](solo-repeat.md), so read differences under a second per \
         minute with care.\n\n\
         | design | Prometheus CPU s/min | vs baseline s/min | requests/min | MiB read/min | KiB/request | reconciles/min | notifications/min | design CPU s/min |\n|---|---|---|---|---|---|---|---|---|\n",
        first.pipelines,
        duration(first.evaluation),
        first.noise,
        duration(SOLO_SETTLE),
        duration(SOLO_MEASURED),
    );
    for o in solo {
        let cpu = per_min(o.prometheus_cpu, o);
        let _ = writeln!(
            md,
            "| {} | {:.2} | {} | {:.1} | {:.2} | {} | {:.1} | {:.1} | {:.2} |",
            o.label,
            cpu,
            baseline.map_or("-".into(), |b| format!("{:+.2}", cpu - b)),
            per_min(o.requests as f64, o),
            per_min(o.bytes as f64 / MIB, o),
            kib(kib_per_request(o.bytes, o.requests)),
            per_min(o.reconciles as f64, o),
            per_min(o.notifications as f64, o),
            per_min(o.design_cpu, o),
        );
    }
}
