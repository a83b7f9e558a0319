#!/bin/bash
# install-deps.sh -- install what pgvip needs to build, test and demo on Debian 12.
# Idempotent: apt-get runs only when a package is missing.
set -euo pipefail

PKGS=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libuv1-dev libnl-3-dev libnl-route-3-dev libyaml-dev check libpq-dev
      postgresql postgresql-client iproute2 iputils-ping curl procps
      haproxy keepalived tshark docker.io docker-compose debootstrap systemd chromium socat prometheus
      man-db dpkg-dev cppcheck clang-format lintian)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: everything is installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing ${missing[*]}; run as root (sudo)" >&2
    exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer no without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian postgresql package starts a cluster on 5432; the tests start their own.
