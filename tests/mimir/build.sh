#!/usr/bin/env bash
# Builds Grafana Mimir (the commit pinned in go.mod) at most once per source
# state and prints the binary's path as the only line on stdout; how it is
# cached is tests/go/cached-build.sh's.
#
# `go install github.com/grafana/mimir/cmd/mimir@...` is refused because
# Mimir's go.mod has replace directives; go.mod in this folder requires Mimir
# as a tool and repeats them (see the comments there). Mimir's release tags
# (mimir-3.0.5 and the like) are not module versions the proxy serves, so the
# pin is a pseudo-version of a commit on Mimir's main branch.
#
# Mimir asks for Go 1.25.9; GOTOOLCHAIN=auto has an older local Go fetch that
# toolchain from the module proxy into the build's scratch module cache.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
source ../go/cached-build.sh

build() {
	export GOTOOLCHAIN=auto
	local mod=github.com/grafana/mimir modver version
	modver="$("$go" list -m -f '{{.Version}}' "$mod")"
	# The pseudo-version says nothing of the release; the module's VERSION
	# file does (e.g. 3.0.5). Its last 12 characters are the commit.
	"$go" mod download "$mod"
	version="$(tr -d '[:space:]' <"$("$go" list -m -f '{{.Dir}}' "$mod")/VERSION")"
	local pkg=$mod/pkg/util/version
	# The build tags of Mimir's releases: the pure-Go resolver, and label
	# sets held as one string, the layout Mimir is written and tested for.
	"$go" build -trimpath -buildvcs=false -tags netgo,stringlabels \
		-ldflags="-s -w -X $pkg.Version=$version -X $pkg.Revision=${modver##*-} -X $pkg.Branch=module" \
		-o "$1" "$mod/cmd/mimir" >&2
}

cached_build mimir "$(source_hash go.mod go.sum build.sh)" "Mimir" build
