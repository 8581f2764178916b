#!/usr/bin/env bash
# Builds Grafana Mimir (the commit pinned in go.mod) at most once per source
# state and prints the binary's path as the only line on stdout; progress and
# compiler output go to stderr.
#
# `go install github.com/grafana/mimir/cmd/mimir@...` is refused because
# Mimir's go.mod has replace directives; go.mod in this folder requires Mimir
# as a tool and repeats them (see the comments there). Mimir's release tags
# (mimir-3.0.5 and the like) are not module versions the proxy serves, so the
# pin is a pseudo-version of a commit on Mimir's main branch.
#
# Mimir asks for Go 1.25.9; GOTOOLCHAIN=auto has an older local Go fetch that
# toolchain from the module proxy into the scratch module cache below.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${ALERT_POLLER_CACHE:-$HOME/.cache/alert-poller}"
go="$(command -v go || echo /usr/local/go/bin/go)"
cd "$here"

hash="$(sha256sum go.mod go.sum build.sh | sha256sum | cut -c1-16)"
out="$cache/mimir-$hash"

mkdir -p "$cache"
# One build at a time: parallel test binaries wait for it instead of
# starting their own.
if command -v flock >/dev/null; then
	exec 9>"$cache/.mimir.lock"
	flock 9
fi

if [[ ! -x "$out" ]]; then
	# Go build and module caches for this build only (a few GB nothing reads
	# once the binary exists), removed after a successful build. A failed
	# build keeps them so a retry resumes; ALERT_POLLER_KEEP_GO_CACHE=1 keeps
	# them for someone working on go.mod here.
	scratch="$cache/go-scratch-mimir"
	export GOCACHE="$scratch/build" GOMODCACHE="$scratch/mod"
	export GOFLAGS="${GOFLAGS:+$GOFLAGS }-modcacherw"
	export GOTOOLCHAIN=auto
	echo "build.sh: building $out (the first build takes several minutes)" >&2
	start=$SECONDS
	mod=github.com/grafana/mimir
	modver="$("$go" list -m -f '{{.Version}}' "$mod")"
	# The pseudo-version says nothing of the release; the module's VERSION
	# file does (e.g. 3.0.5). Its last 12 characters are the commit.
	"$go" mod download "$mod"
	version="$(tr -d '[:space:]' <"$("$go" list -m -f '{{.Dir}}' "$mod")/VERSION")"
	pkg=$mod/pkg/util/version
	tmp="$out.tmp.$$"
	trap 'rm -f "$tmp"' EXIT
	# The build tags of Mimir's releases: the pure-Go resolver, and label
	# sets held as one string, the layout Mimir is written and tested for.
	"$go" build -trimpath -buildvcs=false -tags netgo,stringlabels \
		-ldflags="-s -w -X $pkg.Version=$version -X $pkg.Revision=${modver##*-} -X $pkg.Branch=module" \
		-o "$tmp" "$mod/cmd/mimir" >&2
	mv -f "$tmp" "$out"
	[[ ${ALERT_POLLER_KEEP_GO_CACHE:-0} == 1 ]] || rm -rf "$scratch"
	echo "build.sh: built Mimir $version ($modver) in $((SECONDS - start))s" >&2
	# Binaries of other source states: drop those over a day old (a younger
	# one may belong to another checkout still running tests).
	find "$cache" -maxdepth 1 -name 'mimir-*' ! -name "mimir-$hash" -mtime +0 -delete
fi

echo "$out"
