#!/usr/bin/env bash
# Make the base image docker/Dockerfile starts FROM without pulling from a container registry:
# debootstrap a minimal Debian bookworm (variant minbase, plus python3, python3-venv and
# ca-certificates) from the apt mirror and `podman import` it under the name the Dockerfile's
# FROM uses (docker.io/library/debian:bookworm-slim by default). Skips the work when that image
# is already in podman's local storage.
#
#   docker/build-base.sh [IMAGE]         (root; needs podman and debootstrap)
#
# Environment: DEBIAN_MIRROR (default: the first bookworm URI in /etc/apt/sources.list*, else
# http://deb.debian.org/debian), FORCE=1 to rebuild an existing image, PACKAGES (comma-separated,
# default python3,python3-venv,ca-certificates; PACKAGES= gives a base like Docker Hub's, whose
# python3 the Dockerfile installs itself).
#
# Where registries are reachable none of this is needed: Docker Hub's debian:bookworm-slim
# works as well, the Dockerfile installs python3 and python3-venv into it itself.
set -euo pipefail

IMAGE="${1:-docker.io/library/debian:bookworm-slim}"
SUITE=bookworm
PACKAGES="${PACKAGES-python3,python3-venv,ca-certificates}"

if [ "${FORCE:-0}" != 1 ] && podman image exists "$IMAGE"; then
    echo "build-base: $IMAGE exists, skipped (FORCE=1 rebuilds it)"
    exit 0
fi
for tool in podman debootstrap; do
    command -v "$tool" >/dev/null || { echo "build-base: $tool is missing (apt-get install podman debootstrap)" >&2; exit 1; }
done

if [ -z "${DEBIAN_MIRROR:-}" ]; then
    # deb822 (URIs: ...) or one-line (deb URI suite ...) sources; the first non-security one.
    DEBIAN_MIRROR="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '/^URIs:/ {print $2} /^deb / {print ($2 ~ /^\[/ ? $3 : $2)}' \
        | grep -v -e security -e nodesource -e google | grep debian | head -n1 || true)"
    DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
fi

work="$(mktemp -d /var/tmp/radicale-graph-base.XXXXXX)"
trap 'rm -rf "$work"' EXIT
root="$work/root"

echo "build-base: debootstrap $SUITE (minbase${PACKAGES:+, $PACKAGES}) from $DEBIAN_MIRROR"
debootstrap --variant=minbase ${PACKAGES:+--include="$PACKAGES"} --components=main \
    "$SUITE" "$root" "$DEBIAN_MIRROR" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }

# Slim it the way Docker Hub's -slim images are: no apt lists, caches, docs or man pages.
cat >"$root/etc/apt/sources.list" <<EOF
deb http://deb.debian.org/debian $SUITE main
deb http://deb.debian.org/debian $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
EOF
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/tmp/* "$root"/root/.cache
# The build machine's name server and host name do not belong in an image.
: >"$root/etc/resolv.conf"
echo localhost >"$root/etc/hostname"

tar -C "$root" --numeric-owner --xattrs -cf "$work/rootfs.tar" .
podman import --quiet \
    --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'LABEL org.opencontainers.image.description="Debian bookworm minbase with python3, python3-venv, ca-certificates (docker/build-base.sh)"' \
    "$work/rootfs.tar" "$IMAGE" >/dev/null
echo "build-base: imported $IMAGE ($(du -sh "$work/rootfs.tar" | cut -f1) uncompressed)"
