//! Liveness that means something: `/healthz` fails when a loop that should
//! be making progress is not, so the kubelet restarts the replica.
//!
//! A process that answers HTTP can still be useless: a poll loop waiting on
//! a future that never completes, or a reconcile stuck on a write the API
//! server never answers (the Kubernetes client waits up to 295 s per
//! request), keeps the pod Running and the conditions stale. Each loop
//! therefore says when it will next be heard from; `/healthz` fails once
//! any promise is older than its deadline plus `grace`.
//!
//! Only what can hang is watched: the poller (every iteration, including
//! its waits, which it bounds itself) and each reconcile in flight. A
//! standby runs neither, so it is alive while it answers. Leader election
//! bounds each round itself and steps down when it cannot renew.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Deadlines of the watched loops.
#[derive(Debug)]
pub struct Watchdog {
    due: Mutex<BTreeMap<String, Instant>>,
    grace: Duration,
}

/// A loop that is late, and by how much past its deadline plus grace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overdue {
    pub task: String,
    pub late: Duration,
}

impl Watchdog {
    /// A watchdog allowing `grace` past every promised deadline: the
    /// promises are estimates (a slow API server, a long GC pause), and a
    /// restart costs more than a late poll.
    pub fn new(grace: Duration) -> Arc<Watchdog> {
        Arc::new(Watchdog {
            due: Mutex::new(BTreeMap::new()),
            grace,
        })
    }

    /// `task` promises to be heard from again within `within`.
    pub fn expect(&self, task: &str, within: Duration) {
        self.expect_at(task, Instant::now(), within);
    }

    fn expect_at(&self, task: &str, now: Instant, within: Duration) {
        let deadline = now + within + self.grace;
        self.lock().insert(task.to_owned(), deadline);
    }

    /// `task` has finished and promises nothing more.
    pub fn clear(&self, task: &str) {
        self.lock().remove(task);
    }

    /// Expects `task` within `within` until the guard is dropped: a
    /// reconcile that returns, fails or is cancelled is no longer watched.
    pub fn guard(self: &Arc<Self>, task: String, within: Duration) -> Guard {
        self.expect(&task, within);
        Guard {
            watchdog: self.clone(),
            task,
        }
    }

    /// The tasks past their deadline now.
    pub fn overdue(&self) -> Vec<Overdue> {
        self.overdue_at(Instant::now())
    }

    fn overdue_at(&self, now: Instant) -> Vec<Overdue> {
        self.lock()
            .iter()
            .filter(|(_, deadline)| now > **deadline)
            .map(|(task, deadline)| Overdue {
                task: task.clone(),
                late: now - *deadline,
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Instant>> {
        // A panic elsewhere while holding the lock leaves a map that is
        // still consistent: every operation is a single insert or remove.
        self.due.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Clears its task when dropped.
#[derive(Debug)]
pub struct Guard {
    watchdog: Arc<Watchdog>,
    task: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.watchdog.clear(&self.task);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn a_task_is_overdue_only_past_its_promise_plus_grace() {
        let w = Watchdog::new(S(10));
        let t0 = Instant::now();
        w.expect_at("poller", t0, S(30));
        for (at, late) in [
            (0, None),
            (30, None),
            (40, None),
            (41, Some(S(1))),
            (100, Some(S(60))),
        ] {
            let overdue = w.overdue_at(t0 + S(at));
            let want: Vec<Overdue> = late
                .map(|late| Overdue {
                    task: "poller".into(),
                    late,
                })
                .into_iter()
                .collect();
            assert_eq!(overdue, want, "at +{at}s");
        }
    }

    #[test]
    fn a_new_promise_replaces_the_old_and_clear_ends_it() {
        let w = Watchdog::new(S(0));
        let t0 = Instant::now();
        w.expect_at("poller", t0, S(5));
        w.expect_at("poller", t0 + S(4), S(5));
        assert!(
            w.overdue_at(t0 + S(8)).is_empty(),
            "renewed at +4s until +9s"
        );
        assert_eq!(w.overdue_at(t0 + S(10)).len(), 1);
        w.clear("poller");
        assert!(w.overdue_at(t0 + S(1000)).is_empty());
    }

    #[test]
    fn a_guard_watches_until_dropped_and_tasks_are_separate() {
        let w = Watchdog::new(S(0));
        let a = w.guard("reconcile metric/a".into(), S(0));
        let b = w.guard("reconcile metric/b".into(), S(3600));
        std::thread::sleep(Duration::from_millis(5));
        let late: Vec<String> = w.overdue().into_iter().map(|o| o.task).collect();
        assert_eq!(late, ["reconcile metric/a"]);
        drop(a);
        assert!(w.overdue().is_empty());
        drop(b);
        assert!(w.lock().is_empty());
    }
}
