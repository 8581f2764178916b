#!/usr/bin/env bash
# Installs and builds what the demo and the tests need; safe to run again.
#   scripts/setup.sh --demo [--node]   only what scripts/demo.sh runs
#   scripts/setup.sh [--node]          everything the test suite runs
#
#  - Prometheus from Debian's `prometheus` package (the tests start it themselves)
#  - the local control plane (kube-apiserver + etcd from Go modules)
#  - for the tests: buildah from Debian (the container image,
#    scripts/image.sh), Prometheus 3 (from Go modules, for a second run of
#    the Prometheus tests), Thanos (sidecar, query, ruler: one binary) and
#    Grafana Mimir (from Go modules too)
#  - with --node, the one-node cluster too: Debian's containerd, runc,
#    containernetworking-plugins, iptables and buildah, and kubelet,
#    kube-proxy, kube-scheduler and kube-controller-manager from Go modules;
#    for the tests also kube-router (its NetworkPolicy engine)
# Go builds are cached under ${ALERT_POLLER_CACHE:-~/.cache/alert-poller}.
#
# Each step prints one line; its output goes to a log under the cache, whose
# end is shown, with its name, only when the step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${ALERT_POLLER_CACHE:-$HOME/.cache/alert-poller}"
mkdir -p "$cache"

as_root() {
	if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# step NAME "what it does" COMMAND...: runs COMMAND with its output in
# $cache/setup-NAME.log.
step() {
	local name=$1 what=$2 log="$cache/setup-$1.log"
	shift 2
	echo "setup: $what (log: $log)" >&2
	if ! "$@" >"$log" 2>&1; then
		echo "setup: $what failed; the end of $log:" >&2
		tail -n 40 "$log" >&2
		exit 1
	fi
}

apt_install() {
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

node=false demo=false
for arg in "$@"; do
	case $arg in
	--node) node=true ;;
	--demo) demo=true ;;
	*) echo "setup: unknown argument $arg (expected --demo, --node)" >&2; exit 2 ;;
	esac
done

missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
if $node || ! $demo; then
	command -v buildah >/dev/null || missing+=(buildah)
fi
if $node; then
	command -v containerd >/dev/null || missing+=(containerd)
	command -v runc >/dev/null || missing+=(runc)
	[[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
	command -v iptables >/dev/null || missing+=(iptables)
	command -v ipset >/dev/null || missing+=(ipset)
fi
if ((${#missing[@]})); then
	step apt "installing Debian's ${missing[*]}" apt_install "${missing[@]}"
fi

for tool in cargo go; do
	command -v "$tool" >/dev/null || { echo "setup: $tool is required" >&2; exit 1; }
done

# The Go builds print the binary's path on stdout; it is not needed here.
# The control plane and the node share one scratch of Go caches
# (tests/go/cached-build.sh), several GB on a cold machine: built in this
# order, the node compiles only what the control plane did not, and the
# scratch is removed once both are cached. Without --node (the demo, or a
# machine that cannot run the node) no node build follows, so the control
# plane's build removes the scratch at once rather than leave it waiting.
share_go_cache=0
if $node; then share_go_cache=1; fi
step controlplane "control plane (kube-apiserver + etcd; first build about 5-8 min, then cached)" \
	env ALERT_POLLER_SHARE_GO_CACHE=$share_go_cache bash tests/controlplane/build.sh
if $node; then
	step node "the node: kubelet, kube-proxy, scheduler, controller-manager (first build about 6 min, about 2 min right after the control plane's; then cached)" \
		bash tests/node/build.sh
fi
if $demo; then
	echo "setup: ready for the demo: $(prometheus --version 2>&1 | head -n1 | cut -d' ' -f1-3)" >&2
	exit 0
fi
step prometheus3 "Prometheus 3 (first build about 4 min, then cached)" \
	bash tests/prometheus3/build.sh
step thanos "Thanos (first build about 4 min, then cached)" \
	bash tests/thanos/build.sh
step mimir "Grafana Mimir (first build about 5 min, then cached)" \
	bash tests/mimir/build.sh
if $node; then
	step kube-router "kube-router, the node's NetworkPolicy engine (test bed only; first build about 2 min, then cached)" \
		bash tests/kube-router/build.sh
fi
echo "setup: ready: $(prometheus --version 2>&1 | head -n1 | cut -d' ' -f1-3), $("$(bash tests/prometheus3/build.sh 2>/dev/null)" --version 2>&1 | head -n1 | cut -d' ' -f1-3)" >&2
