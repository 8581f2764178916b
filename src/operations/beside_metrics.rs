//! The metrics of running beside another writer of the condition: how often
//! we left its writes standing ([`crate::domain::other_writers`]), and in shadow mode
//! how our verdicts compare with its condition ([`crate::domain::shadow`]).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::domain::kind::Kind;
use crate::domain::shadow::Transition;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// The pipeline kind: `metric`, `trace` or `log`.
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AgreementLabels {
    pub kind: String,
    /// `agree` or `disagree`.
    pub agreement: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SeenByLabels {
    pub kind: String,
    /// `both`, `alert-poller` (only) or `other` (only).
    pub seen_by: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FirstLabels {
    pub kind: String,
    /// Who made the move first: `alert-poller` or `other`.
    pub first: String,
}

/// Transitions are seconds apart at a 30 s evaluation; a minute and more
/// means one side missed an evaluation.
const LEAD_BUCKETS: [f64; 14] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

#[derive(Debug)]
pub struct BesideMetrics {
    pub yields: Family<KindLabels, Counter>,
    pub yielding: Family<KindLabels, Gauge>,
    pub shadow_pipelines: Family<AgreementLabels, Gauge>,
    pub shadow_transitions: Family<SeenByLabels, Counter>,
    pub shadow_lead: Family<FirstLabels, Histogram>,
}

impl BesideMetrics {
    pub fn register(registry: &mut Registry) -> BesideMetrics {
        let m = BesideMetrics {
            yields: Family::default(),
            yielding: Family::default(),
            shadow_pipelines: Family::default(),
            shadow_transitions: Family::default(),
            shadow_lead: Family::new_with_constructor(|| Histogram::new(LEAD_BUCKETS)),
        };
        registry.register(
            "condition_yields",
            "Reconciles that left standing another writer's change of our condition type (written again only when our verdict changes)",
            m.yields.clone(),
        );
        registry.register(
            "condition_other_writer_pipelines",
            "Pipelines whose condition of our type another writer keeps",
            m.yielding.clone(),
        );
        registry.register(
            "shadow_pipelines",
            "Shadow mode: pipelines whose verdict agrees (status and reason) with the other writer's condition, or not",
            m.shadow_pipelines.clone(),
        );
        registry.register(
            "shadow_transitions",
            "Shadow mode: status or reason changes, by who saw them (both, or one side only)",
            m.shadow_transitions.clone(),
        );
        registry.register_with_unit(
            "shadow_lead",
            "Shadow mode: for a change both sides made, how long before the other the first made it",
            Unit::Seconds,
            m.shadow_lead.clone(),
        );
        m
    }

    /// Records transitions the comparison completed for `kind`.
    pub fn record_transitions(&self, kind: Kind, transitions: &[Transition]) {
        let kind = kind.as_str().to_owned();
        for t in transitions {
            let seen_by = match t {
                Transition::Both { first, lead } => {
                    self.shadow_lead
                        .get_or_create(&FirstLabels {
                            kind: kind.clone(),
                            first: first.as_str().to_owned(),
                        })
                        .observe(lead.as_secs_f64());
                    "both"
                }
                Transition::Only { side } => side.as_str(),
            };
            self.shadow_transitions
                .get_or_create(&SeenByLabels {
                    kind: kind.clone(),
                    seen_by: seen_by.to_owned(),
                })
                .inc();
        }
    }

    /// Sets the agreement gauges of `kind`.
    pub fn set_agreement(&self, kind: Kind, (agree, disagree): (usize, usize)) {
        for (agreement, n) in [("agree", agree), ("disagree", disagree)] {
            self.shadow_pipelines
                .get_or_create(&AgreementLabels {
                    kind: kind.as_str().to_owned(),
                    agreement: agreement.to_owned(),
                })
                .set(n as i64);
        }
    }

    pub fn record_yield(&self, kind: Kind, yielding: usize) {
        let labels = KindLabels {
            kind: kind.as_str().to_owned(),
        };
        self.yields.get_or_create(&labels).inc();
        self.yielding.get_or_create(&labels).set(yielding as i64);
    }

    pub fn set_yielding(&self, kind: Kind, yielding: usize) {
        self.yielding
            .get_or_create(&KindLabels {
                kind: kind.as_str().to_owned(),
            })
            .set(yielding as i64);
    }
}
