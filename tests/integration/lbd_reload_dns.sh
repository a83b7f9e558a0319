#!/bin/bash
# A reload never stops the loop on name resolution (issue 20, point 8). lbd runs in a
# mount namespace whose /etc/resolv.conf names a DNS server that never answers; a
# reload adds a node by host name. While the resolver waits (seconds), lbd must keep
# answering: vrrpd's liveness pings within 200 ms (vrrpd gives up at its timeout and
# moves the VIPs), the admin endpoint, new sessions. Then the reload fails on that name
# and the old configuration stays. Before, the loop stopped for the resolver's whole
# timeout.
source "$(dirname "$0")/lib.sh"
LB=$BASE NODE=$((BASE + 1)) ADMIN=$((BASE + 8)) DNS=127.0.0.77
pg_start node0 $NODE
# The silent DNS server: reads queries, answers none.
python3 - $DNS <<'PY' >"$WORK/dns.log" 2>&1 &
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], 53))
print("listening", flush=True)
while True:
    s.recvfrom(512)
    print("query", flush=True)
PY
PIDS+=($!)
wait_for 5 "the silent DNS server" grep -q listening "$WORK/dns.log"
printf 'nameserver %s\noptions timeout:2 attempts:2\n' $DNS >"$WORK/resolv.conf"
write_cfg() {
    cat >"$WORK/lb.yaml" <<YAML
instance: lb1
lbd:
  listen: 127.0.0.1:$LB
  admin: 127.0.0.1:$ADMIN
  liveness_socket: $WORK/lbd.sock
  pool:
    health: {type: pg, interval: 500ms, timeout: 400ms, pg_user: postgres}
    nodes:
      - {name: node0, address: 127.0.0.1:$NODE}
$1
YAML
}
write_cfg ""
unshare --mount -- bash -c "mount --bind '$WORK/resolv.conf' /etc/resolv.conf && exec '$LBD' -c '$WORK/lb.yaml'" \
    >>"$WORK/lb1.log" 2>&1 &
DAEMONS+=($!)
wait_for 10 "lbd healthy" curl -fsS "http://127.0.0.1:$ADMIN/health" -o /dev/null
[ "$(psql_at $LB 'select 1')" = 1 ] || fail "lbd does not serve"

write_cfg "      - {name: slow, address: slow-node.pgvip.test:$NODE}"
kill -HUP "${DAEMONS[0]}"
# Ping the liveness socket as vrrpd does, for 3 s, timing every answer.
python3 - "$WORK/lbd.sock" >"$WORK/pings.out" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(10)
worst, n, end = 0.0, 0, time.time() + 3
while time.time() < end:
    t = time.time(); s.sendall(b"ping\n"); d = s.recv(64)
    if not d.startswith(b"lbd ok"):
        sys.exit("bad answer %r" % d)
    worst = max(worst, time.time() - t); n += 1
    time.sleep(0.05)
print("pings=%d worst_ms=%d" % (n, worst * 1000))
PY
worst=$(sed -E 's/.*worst_ms=([0-9]+).*/\1/' "$WORK/pings.out")
grep -q query "$WORK/dns.log" || fail "the reload never asked the resolver: the test proves nothing"
[ "$worst" -lt 200 ] || fail "a liveness ping waited $worst ms during the reload (the loop stopped on the resolver)"
t0=$(now_ms)
curl -fsS -m 1 "http://127.0.0.1:$ADMIN/health" -o /dev/null || fail "the admin endpoint did not answer during the reload"
[ "$(psql_at $LB 'select 2')" = 2 ] || fail "a new session failed during the reload"
t1=$(now_ms)
grep -q 'event=reload_waiting' "$WORK/lb1.log" || fail "no reload_waiting line while the resolver was slow"
pass "during a reload stuck on a silent resolver: $(cat "$WORK/pings.out"), /health and a new session in $((t1 - t0)) ms"
wait_for 30 "the reload to fail on the name" grep -q 'event=reload_failed.*slow-node.pgvip.test' "$WORK/lb1.log"
grep -q 'event=reload_slow' "$WORK/lb1.log" || fail "no reload_slow line"
[ "$(psql_at $LB 'select 3')" = 3 ] || fail "lbd after the failed reload"
grep -q '^lbd_config_last_reload_successful 0' <<<"$(curl -fsS "http://127.0.0.1:$ADMIN/metrics")" || fail "the failed reload is not shown"
pass "the reload failed on the unresolvable name after $(( $(now_ms) - t0 )) ms; the old configuration serves"
