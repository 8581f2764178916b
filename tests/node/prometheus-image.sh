#!/usr/bin/env bash
# Builds the test node's Prometheus image: Debian's /usr/bin/prometheus (the
# `prometheus` package scripts/setup.sh installs) in an image of its own,
# packed the way scripts/image.sh packs the project's (FROM scratch: the
# binary, the C libraries `ldd` names, a non-root user; buildah with the vfs
# driver, no daemon). tests/node.rs runs it as the stand-in of
# telemetry-manager's self-monitor, and as a Prometheus elsewhere.
#
# Prints the OCI archive's path as the last line; the archive is kept under
# target/image/ and rebuilt only when the binary or this script change.
#   image: localhost/alert-poller-test-prometheus:1
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/../.."

binary="${PROMETHEUS_IMAGE_BINARY:-/usr/bin/prometheus}"
tag="localhost/alert-poller-test-prometheus:1"
target="${CARGO_TARGET_DIR:-target}"
hash="$(sha256sum "$binary" "$here/prometheus-image.sh" | sha256sum | cut -c1-16)"
out="$target/image/test-prometheus-$hash.oci.tar"
if [[ -s $out ]]; then
	echo "$out"
	exit 0
fi

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
root="$stage/rootfs"
mkdir -p "$root/usr/bin" "$root/etc"
cp -L "$binary" "$root/usr/bin/prometheus"
for lib in $(ldd "$binary" | grep -o '/[^ ]*'); do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done
printf 'root:x:0:0:root:/:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
cat >"$stage/Containerfile" <<'CONTAINERFILE'
FROM scratch
COPY rootfs/ /
USER 65532:65532
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CONTAINERFILE

storage=(--storage-driver vfs)
buildah "${storage[@]}" bud --quiet --isolation chroot --timestamp 0 -f "$stage/Containerfile" -t "$tag" "$stage" >&2
mkdir -p "$(dirname "$out")"
rm -f "$target"/image/test-prometheus-*.oci.tar
buildah "${storage[@]}" push --quiet "$tag" "oci-archive:$out.tmp:$tag" >&2
mv "$out.tmp" "$out"
echo "image: $tag ($("$binary" --version 2>&1 | head -n1 | cut -d' ' -f1-3)), $(du -h "$out" | cut -f1) archive" >&2
echo "$out"
