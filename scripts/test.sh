#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, integration tests with a
# real Prometheus, and the end-to-end suite on a real kube-apiserver and etcd.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked
