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

# The stop order the README promises: in one transaction (systemctl stop of both, or
# shutdown) systemd stops a unit ordered After= another before that other. lbd must be
# the one ordered after vrrpd, so it is stopped first and hands the VIPs over through the
# vrrpd still running. (Before, vrrpd had After=pgvip-lbd.service: vrrpd stopped first.)
unit_deps() { # unit_deps FILE KEY: the units a [Unit] key names
    sed -n "s/^$2=//p" "$1" | tr ' ' '\n' | grep -v '^$' || true
}
L=$SRC/lbd/pgvip-lbd.service V=$SRC/vrrpd/pgvip-vrrpd.service
lbd_after_vrrpd=$({ unit_deps "$L" After | grep -qx pgvip-vrrpd.service || unit_deps "$V" Before | grep -qx pgvip-lbd.service; } && echo yes || echo no)
vrrpd_after_lbd=$({ unit_deps "$V" After | grep -qx pgvip-lbd.service || unit_deps "$L" Before | grep -qx pgvip-vrrpd.service; } && echo yes || echo no)
[ "$lbd_after_vrrpd" = yes ] && [ "$vrrpd_after_lbd" = no ] ||
    fail "stop order: lbd must be ordered after vrrpd (stopped first); lbd after vrrpd: $lbd_after_vrrpd, vrrpd after lbd: $vrrpd_after_lbd"
for u in "$L" "$V"; do
    reload=$(grep '^ExecReload=' "$u" | paste -sd' ')
    [[ $reload == "ExecReload=/usr/sbin/"*" --check -c /etc/pgvip/instance.yaml ExecReload=/bin/kill -HUP \$MAINPID" ]] ||
        fail "$(basename "$u"): a reload should run --check before SIGHUP: $reload"
done
pass "unit graph: systemctl stop of both stops lbd first (lbd After=pgvip-vrrpd.service); reload runs --check first"

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

# lbd under the sandbox its shipped unit sets: the address families of
# RestrictAddressFamilies= (read from the unit, enforced with the seccomp filter systemd
# would install). The VIP watch needs AF_NETLINK; without it a moved VIP's sessions kept
# their node backends until TCP keepalive gave up. A VIP (127.0.0.55 on lo) leaves, and
# the session opened to it must be closed at once.
families=$(sed -n 's/^RestrictAddressFamilies=//p' "$SRC/lbd/pgvip-lbd.service" | tr ' ' ',')
[ -n "$families" ] || fail "pgvip-lbd.service sets no RestrictAddressFamilies"
VIP=127.0.0.55
drop_vip() { ip addr del $VIP/32 dev lo 2>/dev/null || true; }
CLEANUP_HOOKS+=(drop_vip)
sed -e "s/listen: 127.0.0.1:$BASE/listen: $VIP:$((BASE + 2))/" "$WORK/lb.yaml" >"$WORK/lb_vip.yaml"
"$TOOLS/sandbox_exec" "$families" -- "$LBD" -c "$WORK/lb_vip.yaml" >>"$WORK/lbd_sandboxed.log" 2>&1 &
LP=$!
DAEMONS+=($LP)
wait_for 10 "sandboxed lbd" curl -fsS "http://127.0.0.1:$((BASE + 9))/health" -o /dev/null
if grep -q "event=vipwatch_failed" "$WORK/lbd_sandboxed.log"; then
    fail "under RestrictAddressFamilies=${families//,/ } lbd cannot watch addresses: $(grep vipwatch_failed "$WORK/lbd_sandboxed.log")"
fi
ip addr add $VIP/32 dev lo
coproc SESS { psql -X -h $VIP -p $((BASE + 2)) -U postgres -d postgres -Atq 2>&1; }
PIDS+=($SESS_PID)
echo 'select 41 + 1;' >&"${SESS[1]}"
read -r -t 5 a <&"${SESS[0]}" || fail "no answer through the sandboxed lbd"
[ "$a" = 42 ] || fail "sandboxed lbd answered $a"
drop_vip
wait_for 5 "the VIP's session closed" grep -q "event=address_gone address=$VIP sessions_closed=1" "$WORK/lbd_sandboxed.log"
pass "under the unit's RestrictAddressFamilies=${families//,/ }, lbd's VIP watch ends a moved VIP's session at once"
