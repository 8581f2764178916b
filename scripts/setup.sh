#!/usr/bin/env bash
# Installs and builds what the demo and the tests need; safe to run again.
#  - Prometheus from Debian's `prometheus` package (the tests start it themselves)
#  - buildah from Debian, for the container image (scripts/image.sh)
#  - the local control plane (kube-apiserver + etcd from Go modules) and
#    Prometheus 3 (from Go modules, for a second run of the Prometheus tests),
#    cached under ${ALERT_POLLER_CACHE:-~/.cache/alert-poller}
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${ALERT_POLLER_CACHE:-$HOME/.cache/alert-poller}"

as_root() {
	if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

updated=""
apt_update() {
	[[ -n $updated ]] || as_root apt-get update -qq
	updated=1
}

if ! command -v prometheus >/dev/null; then
	echo "setup: installing Debian's prometheus package" >&2
	apt_update
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >&2
fi
prometheus --version 2>&1 | head -n1 >&2

if ! command -v buildah >/dev/null; then
	echo "setup: installing Debian's buildah package (image build, no Docker daemon)" >&2
	apt_update
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends buildah >&2
fi

for tool in cargo go; do
	command -v "$tool" >/dev/null || { echo "setup: $tool is required" >&2; exit 1; }
done

# Runs a Go build script (it prints the binary's path, which is not needed
# here) with its output in a log under the cache: one line when all is well,
# the end of the log when the build fails.
go_build() {
	local what=$1 script=$2 log="$cache/build-$3.log"
	mkdir -p "$cache"
	echo "setup: $what (built once, then cached; log: $log)" >&2
	if ! bash "$script" >/dev/null 2>"$log"; then
		echo "setup: building the $what failed; the end of $log:" >&2
		tail -n 40 "$log" >&2
		exit 1
	fi
}
go_build "control plane binary" tests/controlplane/build.sh controlplane
go_build "Prometheus 3" tests/prometheus3/build.sh prometheus3
