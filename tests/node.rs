//! `kubectl apply -k deploy/` on a real one-node cluster: kubelet and
//! containerd run the project's image, so the image, the pod's security
//! context, the in-cluster config, the probes, `kubectl logs` and pod-level
//! failover are exercised together (testbed/src/node/ builds the node).
//!
//! NetworkPolicies are enforced (kube-router's firewall, tests/kube-router/),
//! and deploy/ polls a stand-in of telemetry-manager's self-monitor: a real
//! Prometheus (Debian's) in a pod in kyma-system with the manager's labels,
//! its Service and its two policies (tests/fixtures/kyma/), reached by
//! ClusterIP (there is no cluster DNS here). The collector stand-in runs on
//! the host's loopback, as in the other end-to-end suites; the self-monitor
//! scrapes it at the node's address, forwarded by this process. The last
//! steps show both sides' policies at work, and that they admit nothing
//! wider. Needs root, Debian's containerd, runc, containernetworking-plugins
//! and ipset; without them it says why in one line and skips, unless
//! ALERT_POLLER_REQUIRE_NODE=1 (as in CI) makes that a failure.

#[path = "node/pods.rs"]
mod pods;
#[path = "node/policies.rs"]
mod policies;
#[path = "node/world.rs"]
mod world;

use pods::*;
use policies::*;
use world::*;

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use alert_poller_testbed::node;
use anyhow::Result;

/// With ALERT_POLLER_NODE_HOLD=SECONDS, a failed run keeps the node up that
/// long before tearing it down, for a look inside (`nsenter --target PID
/// --net --mount --pid`, the kubeconfig printed here).
fn hold_for_inspection(w: &World) {
    let Some(seconds) = std::env::var("ALERT_POLLER_NODE_HOLD")
        .ok()
        .and_then(|s| s.parse().ok())
    else {
        return;
    };
    println!(
        "node: holding the node for {seconds}s: directory {}, host kubeconfig {}, init PID {}",
        w.node.dir().display(),
        w.node.dir().join("host.kubeconfig").display(),
        w.node.init_pid()
    );
    std::thread::sleep(Duration::from_secs(seconds));
}

type Step = for<'a> fn(&'a mut World) -> Pin<Box<dyn Future<Output = Result<()>> + 'a>>;

macro_rules! steps {
    ($($name:ident),+ $(,)?) => {
        [$((stringify!($name), (|w| Box::pin($name(w))) as Step)),+]
    };
}

fn main() -> ExitCode {
    if let Some(why) = node::missing().or_else(node::missing_enforcement) {
        println!("node: SKIPPED, this machine cannot run a node: {why}");
        return if std::env::var("ALERT_POLLER_REQUIRE_NODE").is_ok_and(|v| v == "1") {
            println!("node: ALERT_POLLER_REQUIRE_NODE=1, so a skip fails");
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        };
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio starts");
    let ok = runtime.block_on(async {
        let started = Instant::now();
        let host_before = node::HostState::read();
        let mut world = match start().await {
            Ok(w) => w,
            Err(e) => {
                println!("node: cannot start the cluster: {e:#}");
                return false;
            }
        };
        let steps_passed = run_steps(&mut world).await;
        world.report.push(format!(
            "the whole harness, start-up included: {:.1}s",
            started.elapsed().as_secs_f64()
        ));
        println!("\nnode: what it measured");
        for line in &world.report {
            println!("  {line}");
        }
        let teardown_clean = tear_down(world, &host_before);
        steps_passed && teardown_clean
    });
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs the steps in order, up to the first that fails (the later ones
/// build on it); true when all passed.
async fn run_steps(world: &mut World) -> bool {
    let steps = steps![
        deploy_runs_two_ready_replicas,
        leader_writes_the_condition,
        container_is_locked_down,
        logs_reach_kubectl,
        readiness_follows_the_api_server,
        failover_keeps_the_transition,
        pods_resource_use,
        deploy_polls_the_self_monitor_through_both_policies,
        self_monitor_admits_only_labelled_scrapers,
        deploy_egress_refuses_a_prometheus_elsewhere,
        kyma_system_install_works_beside_the_manager,
    ];
    for (name, step) in steps {
        let started = Instant::now();
        if let Err(e) = step(world).await {
            println!("test node::{name} ... FAILED\n{e:#}\n{}", world.diagnose());
            hold_for_inspection(world);
            return false;
        }
        println!(
            "test node::{name} ... ok ({:.1}s)",
            started.elapsed().as_secs_f64()
        );
    }
    true
}

/// Stops the cluster; whatever the steps did, the host must be as it was.
fn tear_down(world: World, host_before: &node::HostState) -> bool {
    let init_pid = world.node.init_pid();
    let stopping = Instant::now();
    drop(world);
    let left = node::leftovers(init_pid, host_before);
    if left.is_empty() {
        println!(
            "test node::teardown_leaves_nothing ... ok ({:.1}s)",
            stopping.elapsed().as_secs_f64()
        );
        return true;
    }
    println!(
        "test node::teardown_leaves_nothing ... FAILED\n{}",
        left.join("\n")
    );
    false
}
