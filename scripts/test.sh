#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, integration tests with a
# real Prometheus, and the end-to-end suite on a real kube-apiserver and etcd.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked --lib --bins --tests
# The push-vs-pull comparison in quick mode: a smoke test that both designs
# see every injected change (the full report is experiments/, see README).
cargo run --locked --quiet --bin compare -- --quick --out target/compare-quick
