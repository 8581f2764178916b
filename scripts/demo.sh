#!/usr/bin/env bash
# The local demo: real Prometheus, local control plane, the controller, and a
# pipeline going unhealthy and healthy again.
#   scripts/demo.sh          the controller runs out of cluster
#   scripts/demo.sh --node   a real one-node cluster runs deploy/'s pods (root)
set -euo pipefail
cd "$(dirname "$0")/.."
# Only what the demo runs: Prometheus, the control plane (and with --node
# the node); the test command builds the rest.
bash scripts/setup.sh --demo "$@"
target="${CARGO_TARGET_DIR:-target}"
log="$target/demo-build.log"
mkdir -p "$target"
echo "demo: building the controller and the demo (first run: a few minutes; log: $log)" >&2
if ! cargo build --locked -p alert-poller -p alert-poller-experiments --bin alert-poller --bin demo >"$log" 2>&1; then
	echo "demo: the build failed; the end of $log:" >&2
	tail -n 40 "$log" >&2
	exit 1
fi
exec "$target/debug/demo" "$@"
