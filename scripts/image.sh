#!/usr/bin/env bash
# Builds alert-poller's OCI image archive with buildah (Debian's package), no
# Docker daemon needed. Prints the archive's path as the last line.
#   ALERT_POLLER_PROFILE=release|debug (default release)
#   output: target/image/alert-poller-<version>.oci.tar (under $CARGO_TARGET_DIR when set)
set -euo pipefail
cd "$(dirname "$0")/.."

profile="${ALERT_POLLER_PROFILE:-release}"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
tag="alert-poller:$version"
target="${CARGO_TARGET_DIR:-target}"
out="$target/image/alert-poller-$version.oci.tar"

if ! command -v buildah >/dev/null; then
	echo "image: installing Debian's buildah package" >&2
	if [[ $(id -u) -eq 0 ]]; then sudo=""; else sudo="sudo"; fi
	$sudo apt-get update -qq
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends buildah >&2
fi

if [[ $profile == release ]]; then
	cargo build --locked --release --bin alert-poller >&2
else
	cargo build --locked --bin alert-poller >&2
fi
binary="$target/$profile/alert-poller"

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
root="$stage/rootfs"
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs"
install -m 0755 "$binary" "$root/usr/local/bin/alert-poller"
# Debug info stays in target/; the image carries symbols only.
strip --strip-debug "$root/usr/local/bin/alert-poller"
# The binary links glibc dynamically: copy exactly the libraries it needs.
for lib in $(ldd "$binary" | grep -o '/[^ ]*'); do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/:/sbin/nologin\n' > "$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$root/etc/group"
cp Containerfile "$stage/Containerfile"

storage=(--storage-driver vfs)
buildah "${storage[@]}" bud --quiet --isolation chroot --timestamp 0 -f "$stage/Containerfile" -t "$tag" "$stage" >&2
mkdir -p "$(dirname "$out")"
rm -f "$out"
buildah "${storage[@]}" push --quiet "$tag" "oci-archive:$out:$tag" >&2
echo "image: $tag, $(du -h "$out" | cut -f1) archive" >&2
echo "$out"
