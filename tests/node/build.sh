#!/usr/bin/env bash
# Builds the test node's binaries (kubelet, kube-proxy, kube-scheduler and
# kube-controller-manager as subcommands of one `node` binary; a static
# `pause`) and the pause image archive, at most once per source state.
# Prints the directory holding them as the only line on stdout:
#   DIR/node  DIR/pause  DIR/pause.oci.tar
# How it is cached is tests/go/cached-build.sh's. It shares its Go caches
# (go-scratch-kubernetes) with the control plane's build
# (tests/controlplane/build.sh), which compiles mostly the same modules:
# whichever is built second reuses what the first compiled.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
source ../go/cached-build.sh

build() {
	mkdir -p "$1"
	"$go" build -trimpath -buildvcs=false -ldflags="$(kubernetes_ldflags)" -o "$1/node" . >&2
	CGO_ENABLED=0 "$go" build -trimpath -buildvcs=false -ldflags="-s -w" -o "$1/pause" ./pause >&2
	"$1/node" pause-image --binary "$1/pause" --name localhost/alert-poller-pause:1 --out "$1/pause.oci.tar"
}

cached_build node "$(source_hash go.mod go.sum $(find . -name '*.go' -type f | LC_ALL=C sort))" \
	"the node" build kubernetes controlplane
