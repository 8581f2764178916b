#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, integration tests with a
# real Prometheus (Debian's 2.x, then Prometheus 3 for the tests that start
# one), real Thanos and real Mimir, the end-to-end suite on a real kube-apiserver and etcd, and deploy/
# on a real one-node cluster (tests/node.rs; it needs root, and says so and
# skips without).
#
# Everything is built first; then the test binaries run in three concurrent
# lanes (LANES below), each lane one binary after the other. Most of the
# suite's time is spent waiting on timers (rule evaluations, the API server),
# not on the CPU, so the suite takes about as long as its longest lane.
# Each lane writes its own log ($out/LANE.log); the logs are printed whole,
# lane after lane, once every lane has ended, then each binary's result and
# time. The script fails if any binary failed, and names it and its lane.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --node
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings

# Build every test binary, and the two binaries the tests and the comparison
# run through cargo: scripts/image.sh (tests/image.rs, tests/node.rs) builds
# `alert-poller` with `cargo build`, whose features differ from the test
# build's (the test bed's tokio features), so it would compile for half a
# minute inside a lane and replace target/debug/alert-poller, which every lane
# runs, under the lanes' feet. Built last here, it is fresh for image.sh and
# stays the one binary all tests run.
cargo test --locked --workspace --lib --bins --tests --no-run
cargo build --locked --bin alert-poller
cargo build --locked -p alert-poller-experiments --bin compare
out="${CARGO_TARGET_DIR:-target}/test-lanes"
rm -rf "$out"
mkdir -p "$out"
# Each test binary as KIND NAME DIR EXECUTABLE (DIR: its package's, where
# cargo test would run it), from cargo's own list.
cargo test --locked --workspace --lib --bins --tests --no-run --message-format=json 2>/dev/null |
	sed -n 's|.*"manifest_path":"\([^"]*\)/Cargo.toml","target":{"kind":\["\([a-z-]*\)"\][^}]*"name":"\([^"]*\)".*"executable":"\([^"]*/deps/[^"]*\)".*|\2 \3 \1 \4|p' |
	sort >"$out/binaries"
prometheus2="$("${PROMETHEUS_BIN:-prometheus}" --version 2>&1 | head -n1)"
prometheus3="$(bash tests/prometheus3/build.sh)"
prometheus3_version="$("$prometheus3" --version 2>&1 | head -n1)"

# The lanes. Lanes share nothing but the machine: every test takes free
# loopback ports from the kernel and works in temp dirs named after its
# process; every control plane, Prometheus, Thanos and Mimir is a process of
# its own with its own ports and data; the node (tests/node.rs) runs in PID,
# mount and network namespaces it creates (no named netns, its iptables
# rules inside), with cgroups named after its process, and no other test
# touches what its teardown check compares on the host (the kernel settings
# kubelet changes, the host's iptables chains and ipsets); the Go builds the
# tests look up (~/.cache/alert-poller) are built by setup.sh above and
# locked by tests/go/cached-build.sh. What two binaries do share keeps them
# in one lane: tests/image.rs and tests/node.rs both run scripts/image.sh,
# which rewrites the same archive (target/image/) and the same tag in
# buildah's storage. (A free port is free when asked for: another lane could
# take it before it is bound, as another thread of the same binary always
# could; no run has hit it.) A lane's entries:
#   NAME       tests/NAME.rs (Prometheus tests on Debian's Prometheus)
#   NAME@3     the same binary again on Prometheus 3 (the poller must read
#              what both major versions serve)
#   unit       the unit tests of every crate (lib and bins)
#   compare    the push-vs-pull comparison in quick mode: a smoke test that
#              both designs see every injected change (the full report is
#              experiments/, see README)
# Balanced by time on a 2-core machine (seconds, as measured in these lanes;
# each takes about what it takes alone): cluster 423 (e2e_shapes 119, node
# 89, e2e_faults 81, monitoring 70, e2e 61), prometheus2 413
# (rules_prometheus 93, restart_prometheus 91, poller_prometheus 63,
# e2e_manager 61, several_sources 24, the rest 16 or less), prometheus3 389
# (rules_prometheus 100, restart_prometheus 94, compare 65, poller_prometheus
# 64, several_sources 23, the rest 16 or less).
LANES=(
	"cluster: image node e2e e2e_faults e2e_shapes monitoring"
	"prometheus2: unit fuzz faults tls phase_lock decode_fixtures manifests poller_prometheus check_cli conformance_prometheus rules_prometheus several_sources thanos mimir auth restart_prometheus e2e_manager"
	"prometheus3: poller_prometheus@3 check_cli@3 conformance_prometheus@3 rules_prometheus@3 several_sources@3 thanos@3 mimir@3 restart_prometheus@3 compare"
)
# Every test binary runs in some lane: a new tests/*.rs must be added above.
listed=" ${LANES[*]#*:} "
for name in $(awk '$1 == "test" { print $2 }' "$out/binaries"); do
	if [[ $listed != *" $name "* ]]; then
		echo "test: tests/$name.rs is in no lane; add it to LANES in scripts/test.sh" >&2
		exit 1
	fi
done

# run_test ENTRY: runs one lane entry, its output on stdout and stderr;
# fails if any of its binaries fails.
run_test() {
	local entry=$1 on="" kind name dir exe rc=0 found=false
	case $entry in
	compare)
		echo "test: compare --quick"
		"${CARGO_TARGET_DIR:-target}/debug/compare" --quick --out target/compare-quick </dev/null
		return
		;;
	*@3)
		export PROMETHEUS_BIN="$prometheus3"
		on=", PROMETHEUS_BIN=$prometheus3"
		;;
	esac
	while read -r kind name dir exe; do
		if [[ $entry == unit && $kind != test ]] || [[ $kind == test && $name == "${entry%@3}" ]]; then
			found=true
			echo "test: $kind $name (${exe#"$PWD"/})$on"
			(cd "$dir" && "$exe" </dev/null) || rc=1
		fi
	done <"$out/binaries"
	$found || { echo "test: no test binary for $entry"; rc=1; }
	return $rc
}

# lane "NAME: ENTRY...": runs the entries in turn, their output into
# $out/NAME.log, and records each result in $out/NAME.results as
# "ENTRY ok|FAILED SECONDS"; one line on the terminal as each ends.
lane() {
	local name=${1%%:*} entry start status
	for entry in ${1#*:}; do
		start=$SECONDS
		echo "---- [$name] $entry" >>"$out/$name.log"
		if (run_test "$entry") >>"$out/$name.log" 2>&1; then status=ok; else status=FAILED; fi
		echo "$entry $status $((SECONDS - start))" >>"$out/$name.results"
		echo "test: [$name] $entry $status in $((SECONDS - start)) s" >&2
	done
}

echo "test: ${#LANES[@]} lanes (logs in $out/): ${LANES[*]%%:*}; Prometheus tests on $prometheus2, NAME@3 on $prometheus3_version" >&2
# Each lane in a process group of its own (set -m), so that an interrupted
# suite stops every lane and all it started.
set -m
pids=()
stop() {
	kill -TERM -- "${pids[@]/#/-}" 2>/dev/null
	exit "$1"
}
trap 'stop 130' INT
trap 'stop 143' TERM
started=$SECONDS
for spec in "${LANES[@]}"; do
	lane "$spec" &
	pids+=("$!")
done
wait "${pids[@]}" || true
trap - INT TERM
set +m
took=$((SECONDS - started))

# The logs whole, lane after lane; then every entry's result, and the
# failures last.
failed=()
for spec in "${LANES[@]}"; do
	echo "==== lane ${spec%%:*}"
	cat "$out/${spec%%:*}.log"
done
echo "test: lanes done in $took s" >&2
for spec in "${LANES[@]}"; do
	name=${spec%%:*}
	touch "$out/$name.results"
	for entry in ${spec#*:}; do
		read -r status seconds < <(awk -v e="$entry" '$1 == e { print $2, $3 }' "$out/$name.results") ||
			status="DID-NOT-RUN" seconds="-"
		printf 'test: %-14s %-26s %-11s %4s s\n' "[$name]" "$entry" "$status" "$seconds" >&2
		[[ $status == ok ]] || failed+=("$entry (lane $name, whole log in $out/$name.log)")
	done
done
if ((${#failed[@]})); then
	printf 'test: FAILED: %s\n' "${failed[@]}" >&2
	exit 1
fi
