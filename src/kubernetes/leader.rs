//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several
//! replicas exactly one polls Prometheus and writes status.
//!
//! The protocol is the usual one: the holder renews `renewTime` well within
//! `leaseDurationSeconds`; a candidate takes the lease over only once it has
//! expired. Every write carries the `resourceVersion` it read, so two
//! candidates racing for an expired lease cannot both win: the API server
//! rejects the second write with a conflict. A leader that cannot renew in
//! time stops leading (the process exits and is restarted as a candidate),
//! which is safer than carrying on while another replica may have taken over.
//! On a clean shutdown the leader hands the lease back, so the next replica
//! takes over at once instead of after the lease duration.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// What a candidate should do about the lease it just read. Pure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseAction {
    /// Nobody holds it, or the holder let it expire: take it.
    Acquire,
    /// We hold it: renew it.
    Renew,
    /// Someone else holds it and it is live: wait.
    Wait,
}

pub fn next_action(spec: Option<&LeaseSpec>, me: &str, now: Timestamp) -> LeaseAction {
    let Some(spec) = spec else {
        return LeaseAction::Acquire;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder == me {
        return LeaseAction::Renew;
    }
    if holder.is_empty() {
        return LeaseAction::Acquire;
    }
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
    match &spec.renew_time {
        Some(MicroTime(renewed)) if renewed.saturating_add(duration).is_ok_and(|end| end > now) => {
            LeaseAction::Wait
        }
        _ => LeaseAction::Acquire,
    }
}

/// How the lease is held.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// This replica's identity (its pod name).
    pub identity: String,
    /// How long a lease lives without renewal.
    pub duration: Duration,
    /// How often the holder renews and candidates retry.
    pub retry: Duration,
}

/// Runs the election until `shutdown`. `leading` turns true when this replica
/// becomes leader; it never turns false again: losing the lease cancels
/// `lost`, and the caller is expected to exit. `reachable` says whether the
/// last round reached the API server, which is what makes a standby useful.
pub async fn run(
    client: Client,
    config: LeaseConfig,
    leading: watch::Sender<bool>,
    reachable: watch::Sender<bool>,
    lost: CancellationToken,
    shutdown: CancellationToken,
) {
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let mut last_renewal: Option<tokio::time::Instant> = None;
    loop {
        let leader = *leading.borrow();
        let limit = round_limit(leader, last_renewal.map(|t| t.elapsed()), &config);
        let round = bounded_round(&api, &config, limit).await;
        reachable.send_if_modified(|r| std::mem::replace(r, round.is_ok()) != round.is_ok());
        match round {
            Ok(true) => {
                last_renewal = Some(tokio::time::Instant::now());
                if !leader {
                    tracing::info!(lease = %config.name, identity = %config.identity, "became leader");
                    leading.send_replace(true);
                }
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, lease = %config.name, "lease update failed"),
        }
        if *leading.borrow() && renewal_overdue(last_renewal, &config) {
            tracing::error!(lease = %config.name, "could not renew the lease in time; stepping down");
            lost.cancel();
            return;
        }
        // The leader's pause ends no later than its renewal deadline.
        let pause = round_limit(
            *leading.borrow(),
            last_renewal.map(|t| t.elapsed()),
            &config,
        )
        .min(config.retry);
        tokio::select! {
            () = shutdown.cancelled() => {
                if *leading.borrow() {
                    // Bounded too: a partition must not hold up shutdown.
                    let _ = tokio::time::timeout(config.retry, release(&api, &config)).await;
                }
                return;
            }
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// One round within `limit`: `Ok(true)` when we hold the lease afterwards,
/// or why the API server was not reached. A request can hang (a partition
/// drops packets without a reset): the round gives up in time, so a leader
/// still steps down before its lease can pass to another replica, and a
/// standby reports the API server unreachable.
async fn bounded_round(
    api: &Api<Lease>,
    config: &LeaseConfig,
    limit: Duration,
) -> Result<bool, String> {
    match tokio::time::timeout(limit, try_once(api, config)).await {
        Ok(Ok(held)) => Ok(held),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {limit:?}")),
    }
}

/// Whether a leader has missed its renewal deadline (the lease duration
/// less one retry period): past it another replica may take the lease
/// over, so the leader stops before two replicas write at once.
fn renewal_overdue(last_renewal: Option<tokio::time::Instant>, config: &LeaseConfig) -> bool {
    last_renewal.is_none_or(|t| t.elapsed() >= config.duration.saturating_sub(config.retry))
}

/// How long one round may take. A leader has until its renewal deadline
/// (the lease duration less one retry period, counted from its last
/// renewal); a standby a third of the lease duration, which is generous for
/// one read and one write yet turns it unready well before a leader could
/// be replaced.
fn round_limit(leading: bool, since_renewal: Option<Duration>, config: &LeaseConfig) -> Duration {
    let deadline = config.duration.saturating_sub(config.retry);
    match (leading, since_renewal) {
        (true, Some(elapsed)) => deadline.saturating_sub(elapsed),
        _ => config.duration / 3,
    }
}

/// One round: read the lease and acquire or renew it if we may. `Ok(true)`
/// when we hold it afterwards.
async fn try_once(api: &Api<Lease>, config: &LeaseConfig) -> Result<bool, kube::Error> {
    let now = Timestamp::now();
    let current = api.get_opt(&config.name).await?;
    let decision = next_action(
        current.as_ref().and_then(|l| l.spec.as_ref()),
        &config.identity,
        now,
    );
    if decision == LeaseAction::Wait {
        return Ok(false);
    }
    let previous = current
        .as_ref()
        .and_then(|l| l.spec.clone())
        .unwrap_or_default();
    let transitions = previous.lease_transitions.unwrap_or(0);
    let spec = LeaseSpec {
        holder_identity: Some(config.identity.clone()),
        lease_duration_seconds: Some(config.duration.as_secs().max(1) as i32),
        renew_time: Some(MicroTime(now)),
        acquire_time: match decision {
            LeaseAction::Renew => previous.acquire_time.clone(),
            _ => Some(MicroTime(now)),
        },
        lease_transitions: Some(match decision {
            LeaseAction::Acquire if current.is_some() => transitions + 1,
            _ => transitions,
        }),
        ..LeaseSpec::default()
    };
    let result = match current {
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(config.name.clone()),
                    namespace: Some(config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(spec),
            };
            api.create(&PostParams::default(), &lease).await
        }
        Some(mut lease) => {
            // Keeps the read resourceVersion: a concurrent writer makes this fail.
            lease.spec = Some(spec);
            api.replace(&config.name, &PostParams::default(), &lease)
                .await
        }
    };
    match result {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Hands the lease back by clearing the holder, if we still hold it.
async fn release(api: &Api<Lease>, config: &LeaseConfig) {
    let Ok(Some(mut lease)) = api.get_opt(&config.name).await else {
        return;
    };
    let Some(spec) = lease.spec.as_mut() else {
        return;
    };
    if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
        return;
    }
    spec.holder_identity = None;
    spec.renew_time = None;
    match api
        .replace(&config.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => tracing::info!(lease = %config.name, "lease released"),
        Err(error) => tracing::warn!(%error, "could not release the lease"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>, renewed_secs_ago: Option<i64>, duration: i32) -> LeaseSpec {
        let now = Timestamp::from_second(1_000).unwrap();
        LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            lease_duration_seconds: Some(duration),
            renew_time: renewed_secs_ago
                .map(|ago| MicroTime(now.saturating_sub(SignedDuration::from_secs(ago)).unwrap())),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_round_never_outlasts_the_leaders_renewal_deadline() {
        let config = LeaseConfig {
            namespace: "ns".into(),
            name: "lease".into(),
            identity: "me".into(),
            duration: Duration::from_secs(15),
            retry: Duration::from_secs(2),
        };
        let secs = Duration::from_secs;
        // (leading, time since the last renewal, longest round allowed)
        let cases = [
            (true, Some(secs(0)), secs(13)),
            (true, Some(secs(10)), secs(3)),
            (true, Some(secs(13)), secs(0)),
            (true, Some(secs(20)), secs(0)),
            (false, None, secs(5)),
            (false, Some(secs(1)), secs(5)),
            (true, None, secs(5)),
        ];
        for (leading, since, want) in cases {
            assert_eq!(
                round_limit(leading, since, &config),
                want,
                "leading={leading} since={since:?}"
            );
        }
    }

    #[test]
    fn decisions_follow_holder_and_expiry() {
        let now = Timestamp::from_second(1_000).unwrap();
        assert_eq!(next_action(None, "me", now), LeaseAction::Acquire);
        assert_eq!(
            next_action(Some(&lease(Some("me"), Some(1), 15)), "me", now),
            LeaseAction::Renew
        );
        assert_eq!(
            next_action(Some(&lease(Some("other"), Some(5), 15)), "me", now),
            LeaseAction::Wait
        );
        assert_eq!(
            next_action(Some(&lease(Some("other"), Some(16), 15)), "me", now),
            LeaseAction::Acquire
        );
        assert_eq!(
            next_action(Some(&lease(None, None, 15)), "me", now),
            LeaseAction::Acquire
        );
        assert_eq!(
            next_action(Some(&lease(Some("other"), None, 15)), "me", now),
            LeaseAction::Acquire
        );
    }
}
