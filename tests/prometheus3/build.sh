#!/usr/bin/env bash
# Builds Prometheus 3 (3.12.0, the release telemetry-manager ships today, pinned in go.mod)
# at most once per source state and prints its path as the only line on stdout;
# how it is cached is tests/go/cached-build.sh's.
#
# Prometheus 3.x is tagged on the Go module proxy as v0.3XX.Y (3.12.0 =
# v0.312.0). `remove_all_sd` leaves out the cloud service discoveries, which
# the tests never use and which are most of the build. The web UI assets are
# not embedded: the tests use only the HTTP API.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
source ../go/cached-build.sh

build() {
	local mod=github.com/prometheus/prometheus modver rest ver
	modver="$("$go" list -m -f '{{.Version}}' "$mod")"
	# v0.311.3 -> 3.11.3, the version Prometheus reports for itself.
	rest="${modver#v0.}"
	ver="3.$((10#${rest:1:2})).${rest#*.}"
	local pkg=github.com/prometheus/common/version
	"$go" build -trimpath -buildvcs=false -tags remove_all_sd \
		-ldflags="-s -w -X $pkg.Version=$ver -X $pkg.Revision=$modver -X $pkg.Branch=module -X $pkg.BuildUser=alert-poller" \
		-o "$1" "$mod/cmd/prometheus" >&2
}

cached_build prometheus3 "$(source_hash go.mod go.sum build.sh)" "Prometheus 3" build
