#!/usr/bin/env bash
# Builds Prometheus 3 (3.12.0, the release telemetry-manager ships today, pinned in go.mod)
# at most once per source state and prints its path as the only line on stdout.
#
# Prometheus 3.x is tagged on the Go module proxy as v0.3XX.Y (3.12.0 =
# v0.312.0). `remove_all_sd` leaves out the cloud service discoveries, which
# the tests never use and which are most of the build. The web UI assets are
# not embedded: the tests use only the HTTP API.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${ALERT_POLLER_CACHE:-$HOME/.cache/alert-poller}"
go="$(command -v go || echo /usr/local/go/bin/go)"
cd "$here"

hash="$(sha256sum go.mod go.sum build.sh | sha256sum | cut -c1-16)"
out="$cache/prometheus3-$hash"

mkdir -p "$cache"
if command -v flock >/dev/null; then
	exec 9>"$cache/.prometheus3.lock"
	flock 9
fi

if [[ ! -x "$out" ]]; then
	# A Go build and module cache of this build's own, removed once the
	# binary is cached: on a cold machine they hold several GB that nothing
	# reads again (CI once ran out of disk with them). A failed build keeps
	# them, so a retry resumes; ALERT_POLLER_KEEP_GO_CACHE=1 keeps them for
	# someone editing the Go sources here (rebuilds then take seconds).
	scratch="$cache/go-scratch-prometheus3"
	export GOCACHE="$scratch/build" GOMODCACHE="$scratch/mod"
	export GOFLAGS="${GOFLAGS:+$GOFLAGS }-modcacherw"
	echo "build.sh: building $out (the first build takes several minutes)" >&2
	start=$SECONDS
	mod=github.com/prometheus/prometheus
	modver="$("$go" list -m -f '{{.Version}}' "$mod")"
	# v0.311.3 -> 3.11.3, the version Prometheus reports for itself.
	rest="${modver#v0.}"
	ver="3.$((10#${rest:1:2})).${rest#*.}"
	pkg=github.com/prometheus/common/version
	tmp="$out.tmp.$$"
	trap 'rm -f "$tmp"' EXIT
	"$go" build -trimpath -buildvcs=false -tags remove_all_sd \
		-ldflags="-s -w -X $pkg.Version=$ver -X $pkg.Revision=$modver -X $pkg.Branch=module -X $pkg.BuildUser=alert-poller" \
		-o "$tmp" "$mod/cmd/prometheus" >&2
	mv -f "$tmp" "$out"
	[[ ${ALERT_POLLER_KEEP_GO_CACHE:-0} == 1 ]] || rm -rf "$scratch"
	echo "build.sh: built Prometheus $ver in $((SECONDS - start))s" >&2
	find "$cache" -maxdepth 1 -name 'prometheus3-*' ! -name "prometheus3-$hash" -mtime +0 -delete
fi

echo "$out"
