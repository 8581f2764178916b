#!/usr/bin/env bash
# Builds the controlplane binary (etcd + kube-apiserver + kubectl) at most once
# per source state and prints its path as the only line on stdout.
#
# The first build compiles most of Kubernetes and takes many minutes, so the
# binary is cached under a name derived from the sources; later calls only
# hash a few files. Progress and compiler output go to stderr.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${ALERT_POLLER_CACHE:-$HOME/.cache/alert-poller}"
go="$(command -v go || echo /usr/local/go/bin/go)"
cd "$here"

# File names are hashed along with contents, so renames count as changes.
hash="$(sha256sum go.mod go.sum $(find . -name '*.go' -type f | LC_ALL=C sort) \
	| sha256sum | cut -c1-16)"
out="$cache/controlplane-$hash"

mkdir -p "$cache"
# Concurrent callers (parallel test jobs) wait for one build instead of
# running several on a small machine.
if command -v flock >/dev/null; then
	exec 9>"$cache/.controlplane.lock"
	flock 9
fi

if [[ ! -x "$out" ]]; then
	# A Go build and module cache of this build's own, removed once the
	# binary is cached: on a cold machine they hold several GB that nothing
	# reads again (CI once ran out of disk with them). A failed build keeps
	# them, so a retry resumes; ALERT_POLLER_KEEP_GO_CACHE=1 keeps them for
	# someone editing the Go sources here (rebuilds then take seconds).
	scratch="$cache/go-scratch-controlplane"
	export GOCACHE="$scratch/build" GOMODCACHE="$scratch/mod"
	export GOFLAGS="${GOFLAGS:+$GOFLAGS }-modcacherw"
	echo "build.sh: building $out (the first build takes a long time)" >&2
	start=$SECONDS
	# Stamp the Kubernetes version the way its release build does, so that
	# /version and `controlplane kubectl version` report it.
	ver="$("$go" list -m -f '{{.Version}}' k8s.io/kubernetes)"
	minor="${ver#v1.}"
	minor="${minor%%.*}"
	pkg=k8s.io/component-base/version
	tmp="$out.tmp.$$"
	trap 'rm -f "$tmp"' EXIT
	"$go" build -trimpath -buildvcs=false \
		-ldflags="-s -w -X $pkg.gitVersion=$ver -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean" \
		-o "$tmp" . >&2
	mv -f "$tmp" "$out"
	[[ ${ALERT_POLLER_KEEP_GO_CACHE:-0} == 1 ]] || rm -rf "$scratch"
	echo "build.sh: built in $((SECONDS - start))s" >&2
	# Builds of other source states take ~170 MB each. Drop those over a day
	# old; younger ones may still be in use by another checkout or test run.
	find "$cache" -maxdepth 1 -name 'controlplane-*' ! -name "controlplane-$hash" -mtime +0 -delete
fi

echo "$out"
