//! Whether a source started so lately that its `ALERTS` may still lack
//! alerts that fire: asked before a resolve is published, so that a
//! restarted Prometheus never makes a pipeline look healthy
//! ([`crate::polling::restart`] decides; this asks the source).

use futures::future::join_all;

use super::timing::read_timings;
use super::{Sources, unix_ms};
use crate::config::Tuning;
use crate::polling::restart;
use crate::prometheus::PrometheusClient;

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
