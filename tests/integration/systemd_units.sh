#!/bin/bash
# The systemd units verify (systemd-analyze), and lbd speaks the notify protocol a
# Type=notify unit relies on: READY=1 when serving, RELOADING=1 then READY=1 on SIGHUP,
# STOPPING=1 on SIGTERM.
source "$(dirname "$0")/lib.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
command -v systemd-analyze >/dev/null || fail "systemd-analyze missing (scripts/install-deps.sh installs systemd)"
mkdir -p "$WORK/units"
for u in lbd/pgvip-lbd.service vrrpd/pgvip-vrrpd.service; do
    sed -e "s|/usr/sbin/lbd|$LBD|g" -e "s|/usr/sbin/vrrpd|$VRRPD|g" "$SRC/$u" >"$WORK/units/$(basename $u)"
done
out=$(cd "$WORK/units" && systemd-analyze verify --man=no ./pgvip-lbd.service ./pgvip-vrrpd.service 2>&1) ||
    fail "systemd-analyze verify: $out"
if grep -q "pgvip" <<<"$out"; then fail "systemd-analyze warns about our units: $out"; fi
pass "systemd-analyze verify: pgvip-lbd.service and pgvip-vrrpd.service are clean"

pg_start node0 $((BASE + 1))
cat >"$WORK/lb.yaml" <<YAML
lbd:
  listen: 127.0.0.1:$BASE
  admin: 127.0.0.1:$((BASE + 9))
  pool:
    health: {type: tcp, interval: 500ms, timeout: 400ms}
    nodes: [{address: 127.0.0.1:$((BASE + 1))}]
YAML
python3 -u - "$WORK/notify.sock" >"$WORK/notify.log" 2>&1 <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
while True:
    print(s.recv(4096).decode().replace("\n", " | "), flush=True)
PY
PIDS+=($!)
wait_for 5 "notify socket" test -S "$WORK/notify.sock"
NOTIFY_SOCKET="$WORK/notify.sock" "$LBD" -c "$WORK/lb.yaml" >>"$WORK/lbd.log" 2>&1 &
LP=$!
DAEMONS+=($LP)
wait_for 5 "READY=1" grep -q "^READY=1 | STATUS=serving" "$WORK/notify.log"
[ "$(psql_at $BASE 'select 1')" = 1 ] || fail "lbd not serving after READY"
kill -HUP $LP
wait_for 5 "reload notified" bash -c "grep -q '^RELOADING=1' '$WORK/notify.log' && [ \$(grep -c '^READY=1' '$WORK/notify.log') -ge 2 ]"
kill -TERM $LP
wait_for 5 "STOPPING=1" grep -q "^STOPPING=1" "$WORK/notify.log"
pass "lbd notifies: $(paste -sd ';' "$WORK/notify.log" | cut -c1-150)"
