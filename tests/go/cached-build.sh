# Sourced by the build.sh of each Go program the tests run (control plane,
# node, Prometheus 3, Thanos, Mimir): what they share is how a build is
# cached, and only that lives here. What a build compiles and with which
# flags stays in its own build.sh, whose hash inputs name the files that
# decide the result.
#
#   cached_build NAME HASH "what it is" BUILD_FUNCTION [SCRATCH SIBLING...]
#
# runs `BUILD_FUNCTION TMP` at most once per HASH. The function writes the
# result (a file or a directory) at TMP; it is moved to
# ${ALERT_POLLER_CACHE:-~/.cache/alert-poller}/NAME-HASH when complete, and
# that path is printed as the only line on stdout. Progress and compiler
# output go to stderr. With ALERT_POLLER_BUILD_PATH_ONLY=1 it only prints
# that path (built or not) and builds nothing.
#
# - Concurrent callers (parallel test binaries) wait for one build (flock)
#   instead of each starting one on a small machine.
# - The build gets a Go build and module cache, its scratch
#   (<cache>/go-scratch-NAME), removed once the result is cached: on a cold
#   machine they hold several GB that nothing reads again (CI once ran out
#   of disk with them). A failed build keeps them, so a retry resumes;
#   ALERT_POLLER_KEEP_GO_CACHE=1 keeps them for someone editing the sources
#   (rebuilds then take seconds).
# - Builds that compile mostly the same modules share one scratch: SCRATCH
#   names it (<cache>/go-scratch-SCRATCH) and SIBLING... are the other
#   builds using it, by their folder under tests/ (the control plane and
#   the node: both are most of k8s.io/kubernetes at the same versions, so
#   the second compiles only what the first did not). Builds in one scratch
#   take turns (a second flock, taken only to build, so a caller whose
#   result is cached never waits for a sibling's build). The scratch is
#   removed once this result and every sibling's (for its current sources,
#   asked of its build.sh with ALERT_POLLER_BUILD_PATH_ONLY=1) are cached,
#   in whichever order they are built. Until then it waits for the sibling,
#   unless the caller knows none follows and says so with
#   ALERT_POLLER_SHARE_GO_CACHE=0 (scripts/setup.sh without --node): then
#   it is removed at once, as a scratch of its own would be. A scratch left
#   waiting (a sibling never built: the node needs root) is removed by the
#   first call, of any build here, a day later.
# - Results of other source states are dropped once a day old; a younger one
#   may belong to another checkout still running tests.

cache="${ALERT_POLLER_CACHE:-$HOME/.cache/alert-poller}"
go="$(command -v go || echo /usr/local/go/bin/go)"
go_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# source_hash FILE...: 16 hex digits over the files' names and contents,
# so a rename counts as a change.
source_hash() {
	sha256sum "$@" | sha256sum | cut -c1-16
}

# sibling_cached SIBLING: whether tests/SIBLING/build.sh's result for its
# current sources is cached.
sibling_cached() {
	local path
	path="$(ALERT_POLLER_BUILD_PATH_ONLY=1 bash "$go_dir/../$1/build.sh")" && [[ -n $path && -e $path ]]
}

# sweep_waiting_scratch: removes a shared scratch that has waited for a
# sibling's build for more than a day, unless a build is using it.
sweep_waiting_scratch() {
	command -v flock >/dev/null || return 0
	local marker dir
	for marker in "$cache"/go-scratch-*/.waiting; do
		[[ -e $marker && -n $(find "$marker" -mtime +0) ]] || continue
		dir="${marker%/.waiting}"
		(
			flock -n 7 || exit 0
			echo "build.sh: removing $dir, which no sibling build used for a day" >&2
			rm -rf "$dir"
		) 7>"$cache/.${dir##*/}.lock"
	done
}

cached_build() {
	local name=$1 hash=$2 what=$3 build=$4 scratch_name=${5:-$1}
	local siblings=("${@:6}")
	local out="$cache/$name-$hash"
	if [[ ${ALERT_POLLER_BUILD_PATH_ONLY:-0} == 1 ]]; then
		echo "$out"
		return
	fi
	mkdir -p "$cache"
	local lock=false
	if command -v flock >/dev/null; then
		lock=true
		exec 9>"$cache/.$name.lock"
		flock 9
	fi
	if [[ ! -e "$out" ]]; then
		local scratch="$cache/go-scratch-$scratch_name"
		if $lock; then
			exec 8>"$cache/.go-scratch-$scratch_name.lock"
			flock 8
		fi
		rm -f "$scratch/.waiting"
		export GOCACHE="$scratch/build" GOMODCACHE="$scratch/mod"
		export GOFLAGS="${GOFLAGS:+$GOFLAGS }-modcacherw"
		echo "build.sh: building $what as $out (the first build takes minutes)" >&2
		local start=$SECONDS
		tmp="$out.tmp.$$"
		trap 'rm -rf "$tmp"' EXIT
		rm -rf "$tmp"
		"$build" "$tmp"
		mv -f "$tmp" "$out"
		echo "build.sh: built $what in $((SECONDS - start))s" >&2
		local waiting=() sibling
		if [[ ${ALERT_POLLER_SHARE_GO_CACHE:-1} == 1 ]]; then
			for sibling in "${siblings[@]}"; do
				sibling_cached "$sibling" || waiting+=("$sibling")
			done
		fi
		if [[ ${ALERT_POLLER_KEEP_GO_CACHE:-0} == 1 ]]; then
			:
		elif ((${#waiting[@]})); then
			touch "$scratch/.waiting"
			echo "build.sh: keeping $scratch ($(du -sh "$scratch" | cut -f1)) for the build of ${waiting[*]}, which reuses it; removed once that is cached, or a day unused" >&2
		else
			rm -rf "$scratch"
		fi
		find "$cache" -maxdepth 1 -name "$name-*" ! -name "$name-$hash" -mtime +0 -exec rm -rf {} +
	fi
	sweep_waiting_scratch
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
