//! Another writer of our condition type: noticed, and never fought.
//!
//! telemetry-manager writes `TelemetryFlowHealthy` on every reconcile of a
//! pipeline and reconciles on every status change, so a controller that
//! repairs "drift" of the same type would rewrite it after each of the
//! manager's writes, and the manager after each of ours: a hot loop between
//! two controllers. The rule here: we write a verdict once; if someone else
//! then changes the condition while our verdict stands, we leave theirs
//! standing and write again only when our verdict changes. So there is at
//! most one write per pipeline per verdict change, however eager the other
//! writer is. A condition deleted by someone (not rewritten) is written
//! back, up to [`REPAIRS_PER_VERDICT`] times per verdict, so an accident
//! heals and a writer that keeps deleting it is not fought for ever.
//!
//! Pure: the controller hands in what the object shows and gets a decision.

use std::collections::HashMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ManagedFieldsEntry};

use crate::domain::health::Verdict;

/// How often a deleted condition is written back while one verdict stands.
/// More than once: a single `kubectl apply --server-side` of another
/// writer's conditions on an atomic list writes the object twice (the apply,
/// then its managed-fields upgrade from client-side apply), and the second
/// write removes our entry again within milliseconds of its repair.
pub const REPAIRS_PER_VERDICT: u8 = 3;

/// What of a verdict a condition shows.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Said {
    status: String,
    reason: String,
    message: String,
}

impl Said {
    fn of_verdict(v: &Verdict) -> Said {
        Said {
            status: v.status.as_str().to_owned(),
            reason: v.reason.to_owned(),
            message: v.message.clone(),
        }
    }

    fn of_condition(c: &Condition) -> Said {
        Said {
            status: c.status.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
        }
    }
}

/// Our last successful write on one pipeline.
#[derive(Clone, Debug)]
struct Written {
    said: Said,
    /// The object's resourceVersion our write produced: a cached object
    /// older than it has not seen our write yet.
    version: String,
    /// How often this verdict was written back after a delete.
    repairs: u8,
    /// The other writer we yielded to, once noticed: it is reported once
    /// per pipeline, not once per verdict.
    yielded_to: Option<String>,
    /// Whether its write stands now; our next write ends that.
    yielding: bool,
}

/// What to do about one pipeline's condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Write the verdict.
    Write,
    /// Nothing to do: the object shows our verdict, or a cache that has not
    /// seen our last write yet.
    Nothing,
    /// Another writer changed the condition after our write of this same
    /// verdict: leave it. `first_time` is set when this writer is noticed
    /// on this pipeline for the first time, so it is reported once.
    Yield { writer: String, first_time: bool },
}

/// What the object shows, as the decision needs it.
#[derive(Clone, Copy, Debug)]
pub struct Observed<'a> {
    /// The condition of our type on the object, if any.
    pub current: Option<&'a Condition>,
    /// The object's resourceVersion.
    pub version: &'a str,
    /// The object's managedFields, to name who else writes its status.
    pub managed_fields: &'a [ManagedFieldsEntry],
}

/// Our writes per pipeline of one kind, and whom we yield to.
#[derive(Debug, Default)]
pub struct Ledger {
    pipelines: HashMap<String, Written>,
}

impl Ledger {
    /// Decides whether to write `verdict` on `pipeline`, given what the
    /// object shows. `already_says` is whether the object's condition
    /// already says all of it (so no write is due anyway).
    pub fn decide(
        &mut self,
        pipeline: &str,
        verdict: &Verdict,
        observed: Observed<'_>,
        already_says: bool,
        own_manager: &str,
    ) -> Decision {
        if already_says {
            return Decision::Nothing;
        }
        let said = Said::of_verdict(verdict);
        let Some(ours) = self.pipelines.get_mut(pipeline) else {
            return Decision::Write;
        };
        let current_says_ours = observed
            .current
            .is_some_and(|c| Said::of_condition(c) == said);
        if ours.said != said || current_says_ours {
            // Our verdict changed: one write for it, even where we yield.
            // Or the object shows our words and only its generation moved.
            return Decision::Write;
        }
        if older(observed.version, &ours.version) {
            return Decision::Nothing;
        }
        match observed.current {
            None if ours.repairs < REPAIRS_PER_VERDICT => {
                ours.repairs += 1;
                Decision::Write
            }
            // Rewritten: someone keeps this type. A condition that already
            // says our status and reason in other words is theirs too.
            _ => {
                let writer = last_status_writer(observed.managed_fields, own_manager)
                    .unwrap_or_else(|| "an unknown writer".to_owned());
                let first_time = ours.yielded_to.as_deref() != Some(writer.as_str());
                ours.yielded_to = Some(writer.clone());
                ours.yielding = true;
                Decision::Yield { writer, first_time }
            }
        }
    }

    /// Records a successful write of `verdict`, which produced `version`.
    pub fn wrote(&mut self, pipeline: &str, verdict: &Verdict, version: String) {
        let said = Said::of_verdict(verdict);
        let entry = self
            .pipelines
            .entry(pipeline.to_owned())
            .or_insert_with(|| Written {
                said: said.clone(),
                version: String::new(),
                repairs: 0,
                yielded_to: None,
                yielding: false,
            });
        entry.yielding = false;
        if entry.said != said {
            entry.repairs = 0;
        }
        entry.said = said;
        entry.version = version;
    }

    /// How many pipelines currently have their condition kept by another
    /// writer (for the gauge).
    pub fn yielding(&self) -> usize {
        self.pipelines.values().filter(|w| w.yielding).count()
    }
}

/// resourceVersion is opaque by contract; where both are numbers (as every
/// etcd-backed API server makes them) they order, which tells a cache that
/// has not yet seen our write from another writer's later one. Otherwise
/// nothing is older.
fn older(version: &str, than: &str) -> bool {
    match (version.parse::<u64>(), than.parse::<u64>()) {
        (Ok(a), Ok(b)) => a < b,
        _ => false,
    }
}

/// The field manager that last wrote the object's status, other than
/// `own_manager`, from `metadata.managedFields` (the entry with the latest
/// `time` among those on the status subresource).
pub fn last_status_writer(
    managed_fields: &[ManagedFieldsEntry],
    own_manager: &str,
) -> Option<String> {
    managed_fields
        .iter()
        .filter(|e| e.subresource.as_deref() == Some("status"))
        .filter(|e| e.manager.as_deref().is_some_and(|m| m != own_manager))
        .max_by_key(|e| e.time.as_ref().map(|t| t.0))
        .and_then(|e| e.manager.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::health::Status;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn verdict(status: Status, reason: &'static str) -> Verdict {
        Verdict {
            status,
            reason,
            message: format!("ours: {reason}"),
        }
    }

    fn condition(status: &str, reason: &str, message: &str) -> Condition {
        Condition {
            type_: "TelemetryFlowHealthy".into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
            observed_generation: Some(1),
            last_transition_time: Time(Timestamp::UNIX_EPOCH),
        }
    }

    fn entry(manager: &str, subresource: Option<&str>, second: i64) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.into()),
            operation: Some("Update".into()),
            subresource: subresource.map(str::to_owned),
            time: Some(Time(Timestamp::from_second(second).unwrap())),
            ..ManagedFieldsEntry::default()
        }
    }

    fn fields(manager: &str) -> Vec<ManagedFieldsEntry> {
        vec![
            entry("kubectl", None, 100),
            entry("alert-poller", Some("status"), 105),
            entry("earlier-writer", Some("status"), 101),
            entry(manager, Some("status"), 104),
        ]
    }

    /// One step of a pipeline's life: what the object shows and what the
    /// ledger must decide; a `Write` decision is then carried out.
    struct Step {
        verdict: Verdict,
        current: Option<Condition>,
        version: &'static str,
        expected: Decision,
    }

    fn step(
        verdict: &Verdict,
        current: &Condition,
        version: &'static str,
        expected: Decision,
    ) -> Step {
        Step {
            verdict: verdict.clone(),
            current: Some(current.clone()),
            version,
            expected,
        }
    }

    #[test]
    fn at_most_one_write_per_verdict_against_an_eager_writer() {
        let healthy = verdict(Status::True, "FlowHealthy");
        let dropped = verdict(Status::False, "GatewayAllTelemetryDataDropped");
        let theirs_ok = condition("True", "FlowHealthy", "No problems detected");
        let theirs_bad = condition("False", "GatewayAllTelemetryDataDropped", "theirs");
        let ours_ok = condition("True", "FlowHealthy", "ours: FlowHealthy");
        let yields = |first_time| Decision::Yield {
            writer: "telemetry-manager".into(),
            first_time,
        };
        let steps = [
            // First verdict: written (we cannot know yet who else writes).
            step(&healthy, &theirs_ok, "10", Decision::Write),
            // A cache that has not seen our write (version 11) yet.
            step(&healthy, &theirs_ok, "10", Decision::Nothing),
            // Our write seen.
            step(&healthy, &ours_ok, "11", Decision::Nothing),
            // Only the generation moved (the caller's plan wants a write): ours to update.
            step(&healthy, &ours_ok, "12", Decision::Write),
            // The manager rewrote it in its words: we yield, and say so once.
            step(&healthy, &theirs_ok, "15", yields(true)),
            step(&healthy, &theirs_ok, "16", yields(false)),
            // Our verdict changes: one write.
            step(&dropped, &theirs_ok, "16", Decision::Write),
            // Rewritten again: yield, already reported.
            step(&dropped, &theirs_bad, "20", yields(false)),
        ];
        let mut ledger = Ledger::default();
        let mut next_version = 11;
        let managed = fields("telemetry-manager");
        for (i, step) in steps.iter().enumerate() {
            let observed = Observed {
                current: step.current.as_ref(),
                version: step.version,
                managed_fields: &managed,
            };
            // What conditions::plan says, with a generation that moved at step 3.
            let says = i != 3
                && step.current.as_ref().is_some_and(|c| {
                    c.status == step.verdict.status.as_str()
                        && c.reason == step.verdict.reason
                        && c.message == step.verdict.message
                });
            let got = ledger.decide("p", &step.verdict, observed, says, "alert-poller");
            assert_eq!(got, step.expected, "step {i}");
            if got == Decision::Write {
                ledger.wrote("p", &step.verdict, next_version.to_string());
                next_version += 3;
            }
            // The gauge: their write stands from a yield until our next write.
            let yielding_after = [0, 0, 0, 0, 1, 1, 0, 1];
            assert_eq!(
                ledger.yielding(),
                yielding_after[i],
                "yielding after step {i}"
            );
        }
        assert_eq!(ledger.yielding(), 1);
    }

    #[test]
    fn a_deleted_condition_is_written_back_a_few_times_per_verdict() {
        let healthy = verdict(Status::True, "FlowHealthy");
        let mut ledger = Ledger::default();
        ledger.wrote("p", &healthy, "5".into());
        let mut version = 6;
        for _ in 0..REPAIRS_PER_VERDICT {
            let gone = Observed {
                current: None,
                version: &version.to_string(),
                managed_fields: &[],
            };
            assert_eq!(
                ledger.decide("p", &healthy, gone, false, "alert-poller"),
                Decision::Write
            );
            ledger.wrote("p", &healthy, (version + 1).to_string());
            version += 2;
        }
        let gone_again = Observed {
            current: None,
            version: &version.to_string(),
            managed_fields: &[],
        };
        assert_eq!(
            ledger.decide("p", &healthy, gone_again, false, "alert-poller"),
            Decision::Yield {
                writer: "an unknown writer".into(),
                first_time: true
            }
        );
        // A new verdict starts a new budget.
        let dropped = verdict(Status::False, "GatewayThrottling");
        ledger.wrote("p", &dropped, (version + 1).to_string());
        let gone = Observed {
            current: None,
            version: &(version + 2).to_string(),
            managed_fields: &[],
        };
        assert_eq!(
            ledger.decide("p", &dropped, gone, false, "alert-poller"),
            Decision::Write
        );
    }

    #[test]
    fn the_last_status_writer_is_named() {
        // (managedFields, expected)
        let cases = [
            (fields("telemetry-manager"), Some("telemetry-manager")),
            (vec![entry("alert-poller", Some("status"), 1)], None),
            (vec![entry("kubectl", None, 1)], None),
            (vec![], None),
        ];
        for (managed, expected) in cases {
            assert_eq!(
                last_status_writer(&managed, "alert-poller").as_deref(),
                expected,
                "{managed:?}"
            );
        }
    }

    #[test]
    fn versions_order_only_as_numbers() {
        assert!(older("9", "10"));
        assert!(!older("10", "10"));
        assert!(!older("abc", "10"));
    }
}
