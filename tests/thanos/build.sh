#!/usr/bin/env bash
# Builds Thanos (the version pinned in go.mod) at most once per source state
# and prints the binary's path as the only line on stdout; progress and
# compiler output go to stderr.
#
# Thanos cannot be built with `go install module@version`: its go.mod has
# replace directives, which Go refuses there. go.mod in this folder requires
# Thanos and restates those replaces (see the comments there).
#
# Thanos v0.42.5 asks for Go 1.26.10 in its go.mod. If the local Go is older,
# GOTOOLCHAIN=auto lets the go command fetch that toolchain from the module
# proxy (golang.org/toolchain, ~70 MB) into the scratch module cache below.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${ALERT_POLLER_CACHE:-$HOME/.cache/alert-poller}"
go="$(command -v go || echo /usr/local/go/bin/go)"
cd "$here"

hash="$(sha256sum go.mod go.sum build.sh | sha256sum | cut -c1-16)"
out="$cache/thanos-$hash"

mkdir -p "$cache"
# Parallel test binaries wait for one build rather than each starting one.
if command -v flock >/dev/null; then
	exec 9>"$cache/.thanos.lock"
	flock 9
fi

if [[ ! -x "$out" ]]; then
	# Build and module caches of this build alone: a few GB that nothing
	# reads once the binary is cached, so they go after a successful build.
	# A failed build leaves them for the retry; ALERT_POLLER_KEEP_GO_CACHE=1
	# keeps them for someone changing go.mod here.
	scratch="$cache/go-scratch-thanos"
	export GOCACHE="$scratch/build" GOMODCACHE="$scratch/mod"
	export GOFLAGS="${GOFLAGS:+$GOFLAGS }-modcacherw"
	export GOTOOLCHAIN=auto
	echo "build.sh: building $out (the first build takes several minutes)" >&2
	start=$SECONDS
	mod=github.com/thanos-io/thanos
	modver="$("$go" list -m -f '{{.Version}}' "$mod")"
	pkg=github.com/prometheus/common/version
	tmp="$out.tmp.$$"
	trap 'rm -f "$tmp"' EXIT
	# The tags are those of Thanos' release builds (.promu.yml): the pure-Go
	# resolver, and the slice implementation of Prometheus' label sets,
	# which Thanos' gRPC codec is written for.
	"$go" build -trimpath -buildvcs=false -tags netgo,slicelabels \
		-ldflags="-s -w -X $pkg.Version=${modver#v} -X $pkg.Revision=$modver -X $pkg.Branch=module -X $pkg.BuildUser=alert-poller" \
		-o "$tmp" "$mod/cmd/thanos" >&2
	mv -f "$tmp" "$out"
	[[ ${ALERT_POLLER_KEEP_GO_CACHE:-0} == 1 ]] || rm -rf "$scratch"
	echo "build.sh: built Thanos ${modver#v} in $((SECONDS - start))s" >&2
	# Binaries of other source states: drop those over a day old (a younger
	# one may belong to another checkout still running tests).
	find "$cache" -maxdepth 1 -name 'thanos-*' ! -name "thanos-$hash" -mtime +0 -delete
fi

echo "$out"
