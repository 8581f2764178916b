# Sourced by the build.sh of each Go program the tests run (control plane,
# node, Prometheus 3, Thanos, Mimir): what they share is how a build is
# cached, and only that lives here. What a build compiles and with which
# flags stays in its own build.sh, whose hash inputs name the files that
# decide the result.
#
#   cached_build NAME HASH "what it is" BUILD_FUNCTION
#
# runs `BUILD_FUNCTION TMP` at most once per HASH. The function writes the
# result (a file or a directory) at TMP; it is moved to
# ${ALERT_POLLER_CACHE:-~/.cache/alert-poller}/NAME-HASH when complete, and
# that path is printed as the only line on stdout. Progress and compiler
# output go to stderr.
#
# - Concurrent callers (parallel test binaries) wait for one build (flock)
#   instead of each starting one on a small machine.
# - The build gets a Go build and module cache of its own, removed once the
#   result is cached: on a cold machine they hold several GB that nothing
#   reads again (CI once ran out of disk with them). A failed build keeps
#   them, so a retry resumes; ALERT_POLLER_KEEP_GO_CACHE=1 keeps them for
#   someone editing the sources (rebuilds then take seconds).
# - Results of other source states are dropped once a day old; a younger one
#   may belong to another checkout still running tests.

cache="${ALERT_POLLER_CACHE:-$HOME/.cache/alert-poller}"
go="$(command -v go || echo /usr/local/go/bin/go)"

# source_hash FILE...: 16 hex digits over the files' names and contents,
# so a rename counts as a change.
source_hash() {
	sha256sum "$@" | sha256sum | cut -c1-16
}

cached_build() {
	local name=$1 hash=$2 what=$3 build=$4
	local out="$cache/$name-$hash"
	mkdir -p "$cache"
	if command -v flock >/dev/null; then
		exec 9>"$cache/.$name.lock"
		flock 9
	fi
	if [[ ! -e "$out" ]]; then
		local scratch="$cache/go-scratch-$name"
		export GOCACHE="$scratch/build" GOMODCACHE="$scratch/mod"
		export GOFLAGS="${GOFLAGS:+$GOFLAGS }-modcacherw"
		echo "build.sh: building $what as $out (the first build takes minutes)" >&2
		local start=$SECONDS
		tmp="$out.tmp.$$"
		trap 'rm -rf "$tmp"' EXIT
		rm -rf "$tmp"
		"$build" "$tmp"
		mv -f "$tmp" "$out"
		[[ ${ALERT_POLLER_KEEP_GO_CACHE:-0} == 1 ]] || rm -rf "$scratch"
		echo "build.sh: built $what in $((SECONDS - start))s" >&2
		find "$cache" -maxdepth 1 -name "$name-*" ! -name "$name-$hash" -mtime +0 -exec rm -rf {} +
	fi
	echo "$out"
}

# kubernetes_ldflags: -ldflags stamping the k8s.io/kubernetes version of the
# current module the way Kubernetes' release build does, so that /version
# and `version` subcommands report it.
kubernetes_ldflags() {
	local ver minor pkg=k8s.io/component-base/version
	ver="$("$go" list -m -f '{{.Version}}' k8s.io/kubernetes)"
	minor="${ver#v1.}"
	minor="${minor%%.*}"
	echo "-s -w -X $pkg.gitVersion=$ver -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
}
