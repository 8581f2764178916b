#!/usr/bin/env bash
# Builds the test node's binaries (kubelet, kube-proxy, kube-scheduler and
# kube-controller-manager as subcommands of one `node` binary; a static
# `pause`) and the pause image archive, at most once per source state.
# Prints the directory holding them as the only line on stdout:
#   DIR/node  DIR/pause  DIR/pause.oci.tar
#
# Like tests/controlplane/build.sh: cached under a name derived from the
# sources, one build at a time (flock), scratch Go caches removed after a
# successful build unless ALERT_POLLER_KEEP_GO_CACHE=1. Progress and compiler
# output go to stderr.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${ALERT_POLLER_CACHE:-$HOME/.cache/alert-poller}"
go="$(command -v go || echo /usr/local/go/bin/go)"
cd "$here"

hash="$(sha256sum go.mod go.sum $(find . -name '*.go' -type f | LC_ALL=C sort) \
	| sha256sum | cut -c1-16)"
out="$cache/node-$hash"

mkdir -p "$cache"
if command -v flock >/dev/null; then
	exec 9>"$cache/.node.lock"
	flock 9
fi

if [[ ! -f "$out/pause.oci.tar" ]]; then
	scratch="$cache/go-scratch-node"
	export GOCACHE="$scratch/build" GOMODCACHE="$scratch/mod"
	export GOFLAGS="${GOFLAGS:+$GOFLAGS }-modcacherw"
	echo "build.sh: building $out (the first build takes a long time)" >&2
	start=$SECONDS
	ver="$("$go" list -m -f '{{.Version}}' k8s.io/kubernetes)"
	minor="${ver#v1.}"
	minor="${minor%%.*}"
	pkg=k8s.io/component-base/version
	tmp="$out.tmp.$$"
	trap 'rm -rf "$tmp"' EXIT
	mkdir -p "$tmp"
	"$go" build -trimpath -buildvcs=false \
		-ldflags="-s -w -X $pkg.gitVersion=$ver -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean" \
		-o "$tmp/node" . >&2
	CGO_ENABLED=0 "$go" build -trimpath -buildvcs=false -ldflags="-s -w" -o "$tmp/pause" ./pause >&2
	"$tmp/node" pause-image --binary "$tmp/pause" --name localhost/alert-poller-pause:1 --out "$tmp/pause.oci.tar"
	rm -rf "$out"
	mv -f "$tmp" "$out"
	[[ ${ALERT_POLLER_KEEP_GO_CACHE:-0} == 1 ]] || rm -rf "$scratch"
	echo "build.sh: built in $((SECONDS - start))s" >&2
	find "$cache" -maxdepth 1 -name 'node-*' ! -name "node-$hash" -mtime +0 -exec rm -rf {} +
fi

echo "$out"
