#!/usr/bin/env bash
# Builds Thanos (the version pinned in go.mod) at most once per source state
# and prints the binary's path as the only line on stdout; how it is cached
# is tests/go/cached-build.sh's.
#
# Thanos cannot be built with `go install module@version`: its go.mod has
# replace directives, which Go refuses there. go.mod in this folder requires
# Thanos and restates those replaces (see the comments there).
#
# Thanos v0.42.5 asks for Go 1.26.10 in its go.mod. If the local Go is older,
# GOTOOLCHAIN=auto lets the go command fetch that toolchain from the module
# proxy (golang.org/toolchain, ~70 MB) into the build's scratch module cache.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
source ../go/cached-build.sh

build() {
	export GOTOOLCHAIN=auto
	local mod=github.com/thanos-io/thanos modver
	modver="$("$go" list -m -f '{{.Version}}' "$mod")"
	local pkg=github.com/prometheus/common/version
	# The tags are those of Thanos' release builds (.promu.yml): the pure-Go
	# resolver, and the slice implementation of Prometheus' label sets,
	# which Thanos' gRPC codec is written for.
	"$go" build -trimpath -buildvcs=false -tags netgo,slicelabels \
		-ldflags="-s -w -X $pkg.Version=${modver#v} -X $pkg.Revision=$modver -X $pkg.Branch=module -X $pkg.BuildUser=alert-poller" \
		-o "$1" "$mod/cmd/thanos" >&2
}

cached_build thanos "$(source_hash go.mod go.sum build.sh)" "Thanos" build
