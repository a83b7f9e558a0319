#!/bin/bash
# docker-base.sh [IMAGE] -- make the base image the compose Dockerfiles start FROM
# (debian:12-slim) out of Debian's own packages, for hosts that reach Debian's mirrors
# but no image registry. Does nothing when the image is already there (pulled or made
# before). This is how Debian's official images are made too: debootstrap, then import.
# Takes about a minute; needs root, debootstrap and a running Docker engine.
set -euo pipefail
IMAGE=${1:-debian:12-slim}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "docker-base: $IMAGE is already there"
    exit 0
fi
command -v debootstrap >/dev/null || { echo "docker-base: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
DIR=$(mktemp -d /tmp/pgvip-rootfs.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
echo "docker-base: debootstrap --variant=minbase bookworm from $MIRROR"
debootstrap --variant=minbase bookworm "$DIR" "$MIRROR" >"$DIR.log" 2>&1 || {
    tail -20 "$DIR.log" >&2; rm -f "$DIR.log"; echo "docker-base: debootstrap failed" >&2; exit 1; }
rm -f "$DIR.log"
# As Debian's images: updates and security in the sources, no package cache or lists.
cat >"$DIR/etc/apt/sources.list" <<SOURCES
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SOURCES
rm -rf "$DIR"/var/cache/apt/archives/*.deb "$DIR"/var/cache/apt/*.bin "$DIR"/var/lib/apt/lists/* "$DIR"/dev/*
tar --numeric-owner -C "$DIR" -c . | docker import -c 'CMD ["bash"]' - "$IMAGE" >/dev/null
echo "docker-base: $IMAGE made from Debian packages ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%d MB", $1/1e6}'))"
