//! The alert sources one poll asks: a client per configured URL (one
//! Prometheus, an HA pair, Thanos Query, several rulers), all asked at once,
//! their answers merged.
//!
//! A poll succeeds while any source answers, so losing one replica of a pair
//! turns no pipeline Unknown; staleness begins only when none answers. Each
//! source keeps its own rule timing, read from its own `/api/v1/rules`,
//! because two replicas evaluate at different moments.

mod start;
mod timing;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::future::join_all;

use crate::config::Tuning;
use crate::domain::alerts::union;
use crate::operations::metrics::{Metrics, SourceLabels, SourceResultLabels};
use crate::polling::phase::{self, Readings};
use crate::prometheus::GroupTiming;
use crate::prometheus::{
    AlertSource, AlertsResponse, ClientSettings, PollError, PrometheusClient, redact,
    series_max_age,
};
use timing::{read_timings, rule_timings};

/// One source: its client, or why there is none, and its rule timing.
struct Source {
    settings: ClientSettings,
    client: Result<PrometheusClient, String>,
    /// Rule-group timing readings, and when the last was taken.
    timings: Option<(Readings, Instant)>,
    /// A failed request may be a restart, which moves the phase and may
    /// change the rules: the timing is read afresh once the source answers
    /// again. Not before: while it is down that would double the requests,
    /// and the old intervals still bound the query's first answer after it.
    timings_outdated: bool,
    /// Set once the source has said it does not tell its start time
    /// (Thanos Query, Mimir), so it is not asked again.
    start_unknown: bool,
    /// How much later than read its evaluations end, by our clock.
    lateness: phase::Lateness,
    /// The start (Unix ms) of the server behind it, once found settled.
    settled_start: Option<i64>,
}

impl Source {
    fn build(settings: ClientSettings) -> Source {
        // Not logged here: every poll reports it as this source's failure.
        let client = PrometheusClient::new(settings.clone()).map_err(|e| e.to_string());
        if let Ok(c) = &client {
            tracing::info!(
                url = c.url(),
                auth = settings.auth.mode(),
                "polling Prometheus"
            );
        }
        Source {
            settings,
            client,
            timings: None,
            timings_outdated: false,
            start_unknown: false,
            lateness: phase::Lateness::default(),
            settled_start: None,
        }
    }

    /// Whether a phase-locked poll of this source is checked against a
    /// timing reading taken with it (`phase::checks`).
    fn rechecks_polls(&self, tuning: &Tuning) -> bool {
        tuning.phase_lock
            && self
                .timings
                .as_ref()
                .is_some_and(|(readings, _)| readings.estimate().iter().any(|g| g.checked))
    }

    /// The URL as configured, credentials removed: the `source` of the
    /// metrics and log lines.
    fn shown(&self) -> String {
        redact(&self.settings.url)
    }

    /// After a failed request the timing is outdated; the next answer
    /// drops it, so that it is read afresh (see `timings_outdated`).
    fn answered(&mut self, ok: bool) {
        if !ok {
            self.timings_outdated = true;
        } else if std::mem::take(&mut self.timings_outdated) {
            self.timings = None;
        }
    }
}

/// What one poll of every source gave.
#[derive(Debug)]
pub struct Polled {
    /// The merged answer; `None` when no source answered.
    pub answer: Option<AlertsResponse>,
    /// The sources that failed, in configured order: (URL, error).
    pub failed: Vec<(String, PollError)>,
}

impl Polled {
    /// The merged answer, or the first failure when no source answered:
    /// its URL and error.
    pub fn into_result(self) -> Result<AlertsResponse, (String, PollError)> {
        match (self.answer, self.failed.into_iter().next()) {
            (Some(answer), _) => Ok(answer),
            (None, Some(first)) => Err(first),
            (None, None) => Err((
                String::new(),
                PollError::Client("no source is configured".into()),
            )),
        }
    }
}

/// Every configured source, rebuilt as the tuning or the TLS files change.
pub struct Sources {
    sources: Vec<Source>,
    metrics: Arc<Metrics>,
}

impl Sources {
    pub fn new(metrics: Arc<Metrics>) -> Sources {
        Sources {
            sources: Vec::new(),
            metrics,
        }
    }

    /// Builds the clients the tuning asks for. A source whose settings and
    /// TLS files are unchanged keeps its client, connections and timing.
    pub fn update(&mut self, tuning: &Tuning) {
        let wanted = ClientSettings::each(tuning);
        let mut kept: Vec<Option<Source>> = std::mem::take(&mut self.sources)
            .into_iter()
            .map(Some)
            .collect();
        for settings in wanted {
            let reusable = kept.iter_mut().find(|s| {
                s.as_ref().is_some_and(|s| {
                    s.settings == settings && s.client.as_ref().is_ok_and(|c| !c.files_changed())
                })
            });
            let source = match reusable.and_then(Option::take) {
                Some(source) => source,
                None => Source::build(settings),
            };
            self.sources.push(source);
        }
    }

    /// Asks every source for our alerts at once and merges the answers.
    pub async fn poll(&mut self, tuning: &Tuning) -> Polled {
        let metrics = self.metrics.clone();
        let answers = join_all(
            self.sources
                .iter_mut()
                .map(|source| poll_one(source, tuning, &metrics)),
        )
        .await;
        let mut merged = Vec::new();
        let (mut bytes, mut warnings) = (0, Vec::new());
        let mut failed = Vec::new();
        for (source, answer) in self.sources.iter().zip(answers) {
            let shown = source.shown();
            count_answer(&metrics, &shown, &answer);
            match answer {
                Ok(response) => {
                    bytes += response.bytes;
                    warnings.extend(response.warnings);
                    merged.push(response.alerts);
                }
                Err(error) => failed.push((shown, error)),
            }
        }
        // With one source the poller's own line says it all.
        if self.sources.len() > 1 {
            log_failures(&failed, !merged.is_empty());
        }
        if merged.is_empty() {
            return Polled {
                answer: None,
                failed,
            };
        }
        Polled {
            answer: Some(AlertsResponse {
                alerts: union(merged),
                bytes,
                warnings,
            }),
            failed,
        }
    }

    /// Every source's known rule timing, for phase locking; read where
    /// missing or old. A source with an unusable reading adds nothing, so
    /// phase locking can only help.
    pub async fn timings(&mut self, tuning: &Tuning) -> Vec<GroupTiming> {
        let metrics = self.metrics.clone();
        join_all(
            self.sources
                .iter_mut()
                .map(|source| rule_timings(source, tuning, &metrics)),
        )
        .await
        .into_iter()
        .flatten()
        .collect()
    }
}

/// Counts one source's answer by its result, and the warnings it came
/// with, which a Thanos partial response carries: the answer is used, but
/// may lack alerts, so an operator should see it.
fn count_answer(metrics: &Metrics, shown: &str, answer: &Result<AlertsResponse, PollError>) {
    let result = match answer {
        Ok(_) => "success",
        Err(e) => e.kind(),
    };
    metrics
        .source_requests
        .get_or_create(&SourceResultLabels {
            source: shown.to_owned(),
            result: result.to_owned(),
        })
        .inc();
    let Ok(response) = answer else {
        return;
    };
    if !response.warnings.is_empty() {
        metrics
            .source_warnings
            .get_or_create(&SourceLabels {
                source: shown.to_owned(),
            })
            .inc_by(response.warnings.len() as u64);
        tracing::warn!(
            source = %shown,
            warnings = ?response.warnings,
            "the answer came with warnings (a Thanos partial response?)"
        );
    }
}

/// Names each failed source, and whether the poll still had an answer from
/// another.
fn log_failures(failed: &[(String, PollError)], others_answered: bool) {
    for (source, error) in failed {
        tracing::warn!(
            %source,
            %error,
            kind = error.kind(),
            others_answered,
            "an alert source failed"
        );
    }
}

/// One source's answer: its timing first when the query needs it to bound
/// the samples' age. Phase-locked on slow groups, the answer is checked
/// against a timing reading taken after it, and asked for again when it
/// may have raced an evaluation (`phase::recheck`).
async fn poll_one(
    source: &mut Source,
    tuning: &Tuning,
    metrics: &Metrics,
) -> Result<AlertsResponse, PollError> {
    let client = source.client.clone().map_err(PollError::Client)?;
    let max_age = match tuning.alert_source {
        AlertSource::Query => series_max_age(&rule_timings(source, tuning, metrics).await),
        AlertSource::Alerts => None,
    };
    let sent_ms = unix_ms();
    // The check's reading is taken beside the query, not after its answer:
    // it shows whether the evaluation had ended when the query was sent as
    // well, and the answer waits for the slower of two requests instead of
    // for both in turn, as a push notification waits for none.
    let (mut answer, mut reading) = if source.rechecks_polls(tuning) {
        let (answer, reading) = futures::join!(
            client.alerts_of_ours(max_age),
            read_timings(source, tuning, metrics)
        );
        (answer, Some(reading))
    } else {
        (client.alerts_of_ours(max_age).await, None)
    };
    let mut reads = 1;
    while let (Ok(_), Some(groups)) = (&answer, reading.take()) {
        match phase::recheck(&groups, sent_ms, unix_ms()) {
            None => break,
            Some(phase::Recheck::AskAgain { short_ms }) => {
                metrics.phase_rechecks.inc();
                source.lateness.raced(short_ms, unix_ms());
                tracing::debug!(
                    url = client.url(),
                    short_ms,
                    "the poll may have read a rule group halfway through its evaluation; asking again"
                );
                // Asked after a reading that shows the evaluation ended, the
                // answer is whole; not checked again, so a clock that is
                // off costs one request per poll, not a loop of them.
                answer = client.alerts_of_ours(max_age).await;
            }
            Some(phase::Recheck::WaitUntil(_)) if reads >= MAX_RECHECK_READS => {}
            Some(phase::Recheck::WaitUntil(at_ms)) => {
                let wait = (at_ms - unix_ms()).clamp(0, RECHECK_MAX_WAIT_MS);
                tracing::debug!(
                    url = client.url(),
                    wait_ms = wait,
                    "a rule evaluation due before the poll has not ended; waiting for it"
                );
                tokio::time::sleep(Duration::from_millis(wait as u64)).await;
                reads += 1;
                reading = Some(read_timings(source, tuning, metrics).await);
            }
        }
    }
    source.answered(answer.is_ok());
    answer
}

/// How many timing readings one poll's check may take while it waits for
/// an evaluation to end: waits grow by a quarter, so sixteen cover an
/// evaluation about 30 times longer than its due time was behind when the
/// poll went.
const MAX_RECHECK_READS: usize = 16;
/// The longest single wait for an evaluation to end.
const RECHECK_MAX_WAIT_MS: i64 = 5_000;

/// The wall clock in Unix ms: the clock Prometheus' rule timing is read
/// in, so phase locking measures on it.
pub(crate) fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}
