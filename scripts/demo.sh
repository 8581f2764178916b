#!/usr/bin/env bash
# The local demo: real Prometheus, local control plane, the controller, and a
# pipeline going unhealthy and healthy again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --locked --bins
exec target/debug/demo
