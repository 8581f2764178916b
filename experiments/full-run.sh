#!/usr/bin/env bash
# The full comparison (experiments/report.md), in pieces, from one clean
# commit. It runs in a worktree of its own, pinned to that commit, so that
# work on main goes on meanwhile and cannot change what is measured; run it
# again to go on where it stopped: each finished scenario is kept in the
# worktree's experiments/runs/, and `compare --resume` takes a saved run
# only if the same commit made it. When every scenario is done, it copies
# the report, CSVs, plots and runs into this checkout's experiments/.
#
#   experiments/full-run.sh            # go on (or start at HEAD)
#   experiments/full-run.sh COMMIT     # start over at COMMIT
#   experiments/full-run.sh -- --only manager   # pass options to compare
#
# The full run takes about six hours on 2 cores. Latencies are in
# milliseconds: run it on an otherwise idle machine.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
tree="${ALERT_POLLER_FULL_RUN_TREE:-$repo/../alert-poller-full-run}"
commit=""
if [[ $# -gt 0 && $1 != -- ]]; then
	commit="$1"
	shift
fi
[[ ${1:-} == -- ]] && shift
if [[ ! -d $tree ]]; then
	git -C "$repo" worktree add --detach "$tree" "${commit:-HEAD}" >&2
elif [[ -n $commit ]]; then
	git -C "$tree" checkout --quiet --detach "$commit"
fi
cd "$tree"
# What compare writes (report, CSVs, plots, runs) does not count as a
# change; anything else would (provenance.rs's MEASURED).
if [[ -n "$(git status --porcelain --untracked-files=no -- ':(top)' ':(top,exclude)experiments/runs' \
	':(top,exclude)experiments/report.md' ':(top,exclude,glob)experiments/*.csv' ':(top,exclude,glob)experiments/*.svg')" ]]; then
	echo "full-run: $tree has uncommitted changes; its runs would not count" >&2
	exit 1
fi
load="$(cut -d' ' -f1 /proc/loadavg)"
echo "full-run: commit $(git rev-parse --short HEAD) in $tree; load average $load (keep the machine idle)" >&2
cargo build --release --locked --quiet -p alert-poller-experiments --bin compare
status=0
target/release/compare --out experiments --resume "$@" || status=$?
if [[ $status -eq 0 && $# -eq 0 ]]; then
	cp -r experiments/report.md experiments/*.csv experiments/*.svg experiments/runs "$repo/experiments/"
	echo "full-run: copied the report of $(git rev-parse --short HEAD) into $repo/experiments/" >&2
fi
exit $status
