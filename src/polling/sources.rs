//! The alert sources one poll asks: a client per configured URL (one
//! Prometheus, an HA pair, Thanos Query, several rulers), all asked at once,
//! their answers merged.
//!
//! A poll succeeds while any source answers, so losing one replica of a pair
//! turns no pipeline Unknown; staleness begins only when none answers. Each
//! source keeps its own rule timing, read from its own `/api/v1/rules`,
//! because two replicas evaluate at different moments.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::future::join_all;

use crate::config::Tuning;
use crate::domain::alerts::union;
use crate::operations::metrics::{Metrics, SourceLabels, SourceResultLabels};
use crate::polling::phase::{self, Readings};
use crate::polling::restart;
use crate::prometheus::GroupTiming;
use crate::prometheus::{
    AlertSource, AlertsResponse, ClientSettings, PollError, PrometheusClient, redact,
    series_max_age,
};

/// How long a rule-group timing reading stands before the next is taken
/// while phase-locked. Readings add up (`phase::Readings`), so the estimate
/// rests on the last few minutes: about one request a minute on top of the
/// polls.
const TIMING_MAX_AGE: Duration = Duration::from_secs(60);
/// The same when not phase-locked, where the timing only bounds the
/// query's sample age by the groups' intervals, which rarely change. Before
/// Prometheus 2.49 the answer holds every rule's active alerts, other
/// teams' included, so a cluster with many alerts makes it large: it is
/// read no more often than the intervals need.
const TIMING_MAX_AGE_UNLOCKED: Duration = Duration::from_secs(300);
/// How soon an unusable timing reading is tried again.
const TIMING_RETRY: Duration = Duration::from_secs(5);

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

impl Sources {
    /// Whether a source that started lately may still lack firing alerts
    /// in its answers (`restart`): its start time, and its groups' timing
    /// read afresh, and how often they ran by its own count. Asked only
    /// when a poll would drop a firing alert, and while settling: one
    /// request per resolve once a start has been found settled, three
    /// (the last two at once) after a new start.
    pub async fn settling(&mut self, tuning: &Tuning) -> bool {
        let metrics = self.metrics.clone();
        let checks = join_all(self.sources.iter_mut().map(|source| async {
            let client = source.client.clone().ok()?;
            let start = match start_time(&client, source.start_unknown).await {
                Start::Known(start) => start,
                Start::Untold => {
                    tracing::info!(
                        url = client.url(),
                        "the source does not tell when it started; a restart of what is behind it is not noticed"
                    );
                    source.start_unknown = true;
                    return None;
                }
                Start::Unknown => return None,
            };
            // Settled stays settled until the next start: the check comes
            // before a resolve is published, so after the first it is one
            // small request, not three.
            if source.settled_start == Some(start) {
                return Some(false);
            }
            let (groups, evaluations) = futures::join!(
                read_timings(source, tuning, &metrics),
                client.evaluations()
            );
            let readable = source.timings.as_ref().is_some_and(|(r, _)| !r.is_empty());
            let evaluations = evaluations.ok();
            let seen = restart::SinceStart {
                groups: readable.then_some(groups.as_slice()),
                evaluations: evaluations.as_ref(),
            };
            let settling = restart::settling(start, seen, unix_ms());
            if !settling {
                source.settled_start = Some(start);
            }
            Some(settling)
        }))
        .await;
        checks.into_iter().flatten().any(|settling| settling)
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

/// What a source said of its start.
enum Start {
    Known(i64),
    /// It does not tell (Thanos Query, Mimir): not asked again.
    Untold,
    /// Not known now: it was not asked, or did not answer.
    Unknown,
}

/// One source's start time, unless it said before that it does not tell.
async fn start_time(client: &PrometheusClient, untold: bool) -> Start {
    if untold {
        return Start::Unknown;
    }
    match client.start_time_ms().await {
        Ok(Some(start)) => Start::Known(start),
        Ok(None) => Start::Untold,
        Err(error) => {
            tracing::debug!(url = client.url(), %error, "cannot read the start time");
            Start::Unknown
        }
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
    let client = match &source.client {
        Ok(client) => client.clone(),
        Err(error) => return Err(PollError::Client(error.clone())),
    };
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
    match &answer {
        Ok(_) => {
            if std::mem::take(&mut source.timings_outdated) {
                source.timings = None;
            }
        }
        Err(_) => source.timings_outdated = true,
    }
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

/// The source's rule-group timing, estimated from its last readings of
/// `/api/v1/rules`; a reading is taken when the last is a minute old (five
/// when not phase-locked), and
/// soon again after an empty or failed one, which also drops the history
/// (the timing is unknown, so polling is unlocked until it is read).
async fn rule_timings(source: &mut Source, tuning: &Tuning, metrics: &Metrics) -> Vec<GroupTiming> {
    let expired = |(readings, read): &(Readings, Instant)| {
        let max_age = if readings.is_empty() {
            TIMING_RETRY
        } else if tuning.phase_lock {
            TIMING_MAX_AGE
        } else {
            TIMING_MAX_AGE_UNLOCKED
        };
        read.elapsed() > max_age
    };
    if source.timings.as_ref().is_none_or(expired) {
        read_timings(source, tuning, metrics).await;
    }
    let mut groups = source
        .timings
        .as_ref()
        .map(|(readings, _)| readings.estimate())
        .unwrap_or_default();
    source.lateness.apply(&mut groups, unix_ms());
    groups
}

/// Reads the timing of the groups holding alerts of any watched kind, adds
/// it to the source's readings and returns it as read.
async fn read_timings(source: &mut Source, tuning: &Tuning, metrics: &Metrics) -> Vec<GroupTiming> {
    let Ok(client) = &source.client else {
        return Vec::new();
    };
    metrics.rule_timing_reads.inc();
    let prefixes: Vec<String> = tuning
        .matchers()
        .into_iter()
        .map(|m| m.alertname_prefix)
        .collect();
    let prefixes: Vec<&str> = prefixes.iter().map(String::as_str).collect();
    let groups = match client.rule_timings(&prefixes).await {
        Ok((mut groups, bytes)) => {
            for g in &mut groups {
                g.checked = phase::checks(g.interval_ms, bytes);
            }
            tracing::debug!(
                url = client.url(),
                groups = groups.len(),
                slowest_evaluation_ms = groups.iter().map(|g| g.evaluation_ms).max(),
                // Where in its interval each group started: a busy
                // Prometheus starts late.
                starts_ms = ?groups
                    .iter()
                    .map(|g| g.last_evaluation_ms.rem_euclid(g.interval_ms.max(1)))
                    .collect::<Vec<_>>(),
                "rule evaluation timing read"
            );
            groups
        }
        // Without phase locking the timing only bounds the query's
        // sample age, and the alerts request will report a down source.
        Err(error) if tuning.phase_lock => {
            tracing::warn!(url = client.url(), %error, "cannot read rule evaluation timing; polling unlocked");
            Vec::new()
        }
        Err(error) => {
            tracing::debug!(url = client.url(), %error, "cannot read rule evaluation timing");
            Vec::new()
        }
    };
    let mut readings = source.timings.take().map(|(r, _)| r).unwrap_or_default();
    readings.record(&groups);
    source.timings = Some((readings, Instant::now()));
    groups
}
