#!/bin/bash
# pgvip-entrypoint CONFIG -- run lbd and vrrpd of one instance from one config file.
# If either daemon exits, stop the other and exit non-zero: the container dies as a
# whole, like a crashed host. `docker stop` (SIGTERM) is a planned stop: lbd first (it
# tells vrrpd, which hands the VIPs over without dropping new sessions), then vrrpd.
# `docker kill -s HUP` reloads both daemons' configuration; the container stays.
set -u
CONFIG=${1:-/etc/pgvip/instance.yaml}
mkdir -p /run/pgvip
# The pair's key (lbd.peer.key_file), so that a node command given to either lbd
# reaches both: PGVIP_PAIR_KEY names a file on a volume both instances mount. The first
# to start makes it; link(2) lets exactly one win, and the file appears whole or not at
# all. Outside compose, each host keeps its own copy of one key (docs/control.md).
if [ -n "${PGVIP_PAIR_KEY:-}" ] && [ ! -e "$PGVIP_PAIR_KEY" ]; then
    mkdir -p "$(dirname "$PGVIP_PAIR_KEY")"
    tmp="$PGVIP_PAIR_KEY.new.${HOSTNAME:-}.$$"
    (umask 077 && head -c 32 /dev/urandom | base64 >"$tmp") || exit 2
    ln "$tmp" "$PGVIP_PAIR_KEY" 2>/dev/null || [ -e "$PGVIP_PAIR_KEY" ] || exit 2
    rm -f "$tmp"
fi
lbd --check -c "$CONFIG" || exit 2
vrrpd --check -c "$CONFIG" || exit 2

lbd -c "$CONFIG" &
LBD=$!
vrrpd -c "$CONFIG" &
VRRPD=$!

stop() {
    kill -TERM "$LBD" 2>/dev/null
    wait "$LBD" 2>/dev/null
    kill -TERM "$VRRPD" 2>/dev/null
    wait "$VRRPD" 2>/dev/null
    exit 0
}
reload() {
    kill -HUP "$LBD" "$VRRPD" 2>/dev/null
}
trap stop TERM INT
trap reload HUP

# A trapped signal ends `wait` early (status > 128): go on waiting while both run.
while :; do
    wait -n "$LBD" "$VRRPD"
    rc=$?
    kill -0 "$LBD" 2>/dev/null && kill -0 "$VRRPD" 2>/dev/null || break
done
echo "pgvip-entrypoint: a daemon exited (status $rc); stopping the instance" >&2
kill -TERM "$LBD" "$VRRPD" 2>/dev/null
wait
exit 1
