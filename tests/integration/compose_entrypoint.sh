#!/bin/bash
# The container's init (compose/entrypoint.sh), run for real in a network namespace:
# it starts lbd and vrrpd from one file; `docker kill -s HUP` reloads both and the
# container stays; `docker stop` (SIGTERM) stops both and exits 0; a daemon that dies
# takes the instance down (exit 1), like a crashed host. The pair's key: the entrypoint
# makes PGVIP_PAIR_KEY when it is missing (lbd starts with it); two instances starting
# together on one volume end with one key and no leftover.
source "$(dirname "$0")/lib.sh"
EP=$(cd "$(dirname "$0")/../../compose" && pwd)/entrypoint.sh
NS="pgvip-ep-$BASE"
ip netns add "$NS" || fail "cannot create namespace $NS"
ns_down() { ip netns pids "$NS" 2>/dev/null | xargs -r kill -KILL 2>/dev/null; ip netns del "$NS" 2>/dev/null; }
CLEANUP_HOOKS+=(ns_down)
ip -n "$NS" link set lo up
ip -n "$NS" link add eth0 type veth peer name eth1 # no dummy module on every kernel
ip -n "$NS" link set eth1 up
ip -n "$NS" link set eth0 up
ip -n "$NS" addr add 10.88.0.11/24 dev eth0
# The daemons' files go where root (without CAP_DAC_OVERRIDE after start-up) may write,
# as /run/pgvip is in the image; $WORK belongs to postgres.
D=$WORK/run
mkdir -p "$D"
cat >"$D/instance.yaml" <<YAML
instance: ep1
lbd:
  listen: 10.88.0.100:5432
  admin: 127.0.0.1:8081
  liveness_socket: $D/lbd.sock
  peer: {address: 10.88.0.12:5433, listen: 10.88.0.11:5433, key_file: $D/pair/peer.key}
  pool:
    health: {type: tcp, interval: 200ms, timeout: 100ms}
    nodes: [{name: node0, address: 127.0.0.1:1}]
vrrp:
  interface: eth0
  state_file: $D/vrrpd.json
  admin: 127.0.0.1:8082
  peer_watch: off
  groups:
    - {vrid: 61, priority: 150, interval: 100ms, vips: [10.88.0.100]}
YAML
start_ep() {
    rm -f "$D/vrrpd.json"
    ip netns exec "$NS" env PATH="$(dirname "$LBD"):$(dirname "$VRRPD"):$PATH" \
        PGVIP_PAIR_KEY="$D/pair/peer.key" bash "$EP" "$D/instance.yaml" >"$WORK/entrypoint.log" 2>&1 &
    EPID=$!
    PIDS+=($EPID)
    wait_for 5 "vrrpd master" grep -q '"state":"MASTER"' "$D/vrrpd.json"
}
child() { ps -o pid=,comm= --ppid "$EPID" | awk -v c="$1" '$2 == c { print $1 }'; }
start_ep
L=$(child lbd) V=$(child vrrpd)
[ -n "$L" ] && [ -n "$V" ] || fail "the entrypoint's children: lbd '$L', vrrpd '$V'"
key=$(cat "$D/pair/peer.key")
[ "$(stat -c %a "$D/pair/peer.key")" = 600 ] && [ "${#key}" = 44 ] ||
    fail "the pair's key: mode $(stat -c %a "$D/pair/peer.key"), ${#key} characters"
pass "entrypoint runs lbd ($L) and vrrpd ($V); vrrpd is master of 10.88.0.100; it made the pair's key (0600), which lbd took"

# docker kill -s HUP: both daemons reload, nothing restarts.
sed -i 's/priority: 150/priority: 120/' "$D/instance.yaml"
kill -HUP "$EPID"
wait_for 5 "vrrpd's reload" grep -q 'event=reload changed="vrid 61 priority 150->120"' "$WORK/entrypoint.log"
wait_for 5 "lbd's reload" grep -q 'daemon=lbd .*event=reload' "$WORK/entrypoint.log"
sleep 0.5
kill -0 "$EPID" 2>/dev/null || fail "SIGHUP ended the entrypoint (the container would die)"
[ "$(child lbd)" = "$L" ] && [ "$(child vrrpd)" = "$V" ] || fail "a daemon was restarted by SIGHUP"
pass "SIGHUP reloads both daemons; the instance keeps running"

# docker stop: SIGTERM, both stop, exit 0.
kill -TERM "$EPID"
wait_for 10 "the entrypoint to exit" bash -c "! kill -0 $EPID 2>/dev/null"
rc=0
wait "$EPID" || rc=$?
[ "$rc" = 0 ] || fail "the entrypoint exited $rc after SIGTERM"
! kill -0 "$L" 2>/dev/null && ! kill -0 "$V" 2>/dev/null || fail "a daemon outlived the entrypoint"
grep -q "daemon=vrrpd .*event=shutdown reason=SIGTERM" "$WORK/entrypoint.log" || fail "vrrpd was not stopped gracefully"
pass "SIGTERM stops both gracefully; exit 0"

# A daemon that dies takes the instance down.
start_ep
L=$(child lbd) V=$(child vrrpd)
[ -n "$L" ] && [ -n "$V" ] || fail "after the restart: lbd '$L', vrrpd '$V'"
kill -KILL "$L"
wait_for 10 "the entrypoint to exit" bash -c "! kill -0 $EPID 2>/dev/null"
rc=0
wait "$EPID" || rc=$?
[ "$rc" = 1 ] || fail "the entrypoint exited $rc after lbd died, not 1"
! kill -0 "$V" 2>/dev/null || fail "vrrpd outlived the instance"
pass "lbd killed: the entrypoint stops vrrpd and exits 1"

# The pair's key kept across a restart (start_ep above found it), and two instances
# starting together on one volume: one key, the same for both, no temporary file left.
# (Each start here stops at --check, for a configuration that does not exist.)
[ "$(cat "$D/pair/peer.key")" = "$key" ] || fail "a restart replaced the pair's key"
for round in $(seq 20); do
    K=$WORK/race$round/peer.key
    PGVIP_PAIR_KEY=$K bash "$EP" "$WORK/none.yaml" >/dev/null 2>&1 &
    a=$!
    PGVIP_PAIR_KEY=$K bash "$EP" "$WORK/none.yaml" >/dev/null 2>&1 &
    b=$!
    rc_a=0 rc_b=0
    wait $a || rc_a=$?
    wait $b || rc_b=$?
    [ "$rc_a $rc_b" = "2 2" ] || fail "round $round: the entrypoints exited $rc_a and $rc_b, not 2 (--check)"
    [ "$(ls "$WORK/race$round")" = peer.key ] || fail "round $round: $(ls "$WORK/race$round" | paste -sd' ')"
    [ "$(wc -c <"$K")" = 45 ] || fail "round $round: the key has $(wc -c <"$K") bytes"
done
pass "the pair's key kept across a restart; 20 rounds of two instances starting together: one whole key each time, nothing left over"
