#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, integration tests with a
# real Prometheus (Debian's 2.x, then Prometheus 3 for the tests that start
# one), real Thanos and real Mimir, the end-to-end suite on a real kube-apiserver and etcd, and deploy/
# on a real one-node cluster (tests/node.rs; it needs root, and says so and
# skips without).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --node
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
echo "test: all tests; those with a real Prometheus on $("${PROMETHEUS_BIN:-prometheus}" --version 2>&1 | head -n1)" >&2
cargo test --locked --workspace --lib --bins --tests
# The tests that start a real Prometheus, again on Prometheus 3 (setup.sh
# built it): the poller must read what both major versions serve.
prometheus3="$(bash tests/prometheus3/build.sh)"
echo "test: the Prometheus tests again on $("$prometheus3" --version 2>&1 | head -n1)" >&2
PROMETHEUS_BIN="$prometheus3" cargo test --locked \
	--test poller_prometheus --test check_cli --test conformance_prometheus --test rules_prometheus \
	--test several_sources --test thanos --test mimir --test restart_prometheus
# The push-vs-pull comparison in quick mode: a smoke test that both designs
# see every injected change (the full report is experiments/, see README).
cargo run --locked --quiet -p alert-poller-experiments --bin compare -- --quick --out target/compare-quick
