#!/usr/bin/env bash
# Installs and builds what the demo and the tests need; safe to run again.
#  - Prometheus from Debian's `prometheus` package (the tests start it themselves)
#  - buildah from Debian, for the container image (scripts/image.sh)
#  - the local control plane (kube-apiserver + etcd from Go modules), cached
#    under ${ALERT_POLLER_CACHE:-~/.cache/alert-poller}
set -euo pipefail
cd "$(dirname "$0")/.."

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

echo "setup: control plane binary (built once, then cached)" >&2
bash tests/controlplane/build.sh >/dev/null
