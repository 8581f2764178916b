//! The poller on its own, without the controller: for the tests that watch
//! what it sees and re-queues, and for the experiments' pull designs. It is
//! wired exactly as `main` wires it, with the ConfigMap taken as read.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio_util::sync::{CancellationToken, DropGuard};

use alert_poller::config::Tuning;
use alert_poller::domain::alerts::Affected;
use alert_poller::domain::health::{self, PipelineFacts, Status};
use alert_poller::domain::kind::Kind;
use alert_poller::operations::metrics::{Metrics, ResultLabels};
use alert_poller::polling::poller::{PollView, Poller};

/// The defaults with `settings` (ConfigMap keys and values) applied.
///
/// # Panics
/// On an invalid setting: a test's own tuning must be valid.
pub fn tuning(settings: &[(&str, &str)]) -> Tuning {
    let data: BTreeMap<String, String> = settings
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Tuning::defaults()
        .with_overrides(&data)
        .unwrap_or_else(|e| panic!("invalid test tuning: {e}"))
}

/// A running poller and its outputs. It stops when `stop` is dropped, so a
/// caller that takes the fields apart must keep `stop` bound (not `_`).
pub struct StandalonePoller {
    /// What the last poll saw.
    pub view: watch::Receiver<Arc<PollView>>,
    /// The re-queues it asked for.
    pub requeues: mpsc::UnboundedReceiver<Affected>,
    pub metrics: Arc<Metrics>,
    /// Send a new tuning, as a ConfigMap change would.
    pub tuning: watch::Sender<Arc<Tuning>>,
    pub stop: DropGuard,
}

impl StandalonePoller {
    /// Spawns the poller on the current tokio runtime.
    pub fn start(tuning: Tuning) -> StandalonePoller {
        let (tuning_tx, tuning_rx) = watch::channel(Arc::new(tuning));
        let (_, tuning_loaded) = watch::channel(true);
        let metrics = Arc::new(Metrics::new().0);
        let (poller, outputs) = Poller::new(tuning_rx, tuning_loaded, metrics.clone());
        let stop = CancellationToken::new();
        tokio::spawn(poller.run(stop.clone()));
        StandalonePoller {
            view: outputs.view,
            requeues: outputs.requeues,
            metrics,
            tuning: tuning_tx,
            stop: stop.drop_guard(),
        }
    }
}

impl StandalonePoller {
    /// The condition a reconcile would write now for MetricPipeline `name`,
    /// as status and reason; `None` before the first poll.
    pub fn verdict(&self, name: &str) -> Option<(Status, String)> {
        let view = self.view.borrow().clone();
        health::evaluate(PipelineFacts::new(Kind::Metric, name), view.knowledge())
            .map(|v| (v.status, v.reason.to_owned()))
    }

    /// Polls that ended with `result` (`success` or an error class).
    pub fn polls(&self, result: &str) -> u64 {
        self.metrics
            .polls
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .get()
    }
}

/// Waits until every named poller judges every MetricPipeline of `want`
/// (name, status, reason) as given. After `patience`, the verdicts of the
/// moment, for the caller's failure message.
pub async fn until_judged(
    pollers: &[(&str, &StandalonePoller)],
    want: &[(&str, Status, &str)],
    patience: Duration,
) -> Result<(), String> {
    let started = Instant::now();
    loop {
        let mut reached = true;
        let mut now = Vec::new();
        for (poller_name, poller) in pollers {
            for (pipeline, status, reason) in want {
                let verdict = poller.verdict(pipeline);
                reached &= verdict
                    .as_ref()
                    .is_some_and(|(s, r)| s == status && r == reason);
                now.push(format!("{poller_name}: {pipeline} {verdict:?}"));
            }
        }
        if reached {
            return Ok(());
        }
        if started.elapsed() > patience {
            return Err(format!(
                "not within {patience:?}: {want:?}; now {}",
                now.join(", ")
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
