#!/usr/bin/env bash
# Builds the controlplane binary (etcd + kube-apiserver + kubectl) at most once
# per source state and prints its path as the only line on stdout. The first
# build compiles most of Kubernetes and takes many minutes; how it is cached
# is tests/go/cached-build.sh's. It shares its Go caches (go-scratch-kubernetes)
# with the node's build (tests/node/build.sh), which compiles mostly the same
# modules: whichever is built second reuses what the first compiled.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
source ../go/cached-build.sh

build() {
	"$go" build -trimpath -buildvcs=false -ldflags="$(kubernetes_ldflags)" -o "$1" . >&2
}

cached_build controlplane "$(source_hash go.mod go.sum $(find . -name '*.go' -type f | LC_ALL=C sort))" \
	"the control plane" build kubernetes node
