#!/usr/bin/env bash
# Builds kube-router (the version below), the NetworkPolicy engine of the
# test node, at most once per state of this script, and prints the binary's
# path as the only line on stdout; how it is cached is
# tests/go/cached-build.sh's.
#
# TEST BED ONLY. kube-router v2.1.0 has known security flaws (its own and
# those of the dependency versions it pins). It runs here only inside the
# throw-away node's namespaces, with --run-firewall alone, against the test's
# own API server; it is never shipped, packaged or deployed by this project.
# See README.md here.
#
# Its go.mod has no replace directives, so `go install module@version` builds
# it straight from the Go module proxy; no wrapper module is needed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
source ../go/cached-build.sh

version=v2.1.0

build() {
	local mod=github.com/cloudnativelabs/kube-router/v2 bin="$1.bin"
	rm -rf "$bin"
	# As upstream's Makefile builds it: static, the version stamped.
	CGO_ENABLED=0 GOBIN="$bin" "$go" install -trimpath -buildvcs=false \
		-ldflags="-s -w -X $mod/pkg/version.Version=$version -X $mod/pkg/version.BuildDate=module" \
		"$mod/cmd/kube-router@$version" >&2
	mv "$bin/kube-router" "$1"
	rmdir "$bin"
}

cached_build kube-router "$(source_hash build.sh)" "kube-router $version (test bed only)" build
