#!/bin/bash
# Every key of lbd's section changed once by SIGHUP and seen to take effect, or, for the
# keys that change on restart only, named in reload_partial with the running value kept
# (issue 20). The cases are in reload_keys.py; a key `lbd --help` lists without a case
# fails the test. Runs in a private network namespace (unshare): a veth interface holds
# an address whose removal is a VIP leaving, and routes a black hole (nothing answers ARP).
[ -n "${IN_NETNS:-}" ] || exec unshare --net env IN_NETNS=1 bash "$0" "$@"
source "$(dirname "$0")/lib.sh"
ip link set lo up
ip link add d0 type veth peer name d1
ip link set d0 up && ip link set d1 up
for i in 0 1; do
    pg_start "node$i" $((BASE + 1 + i))
    psql_at $((BASE + 1 + i)) "alter system set log_connections = on" >/dev/null
    psql_at $((BASE + 1 + i)) "select pg_reload_conf()" >/dev/null
done
stop_lbd() { [ -s "$WORK/lbd.pid" ] && stop_gracefully "$(cat "$WORK/lbd.pid")"; true; }
CLEANUP_HOOKS+=(stop_lbd)
python3 "$(dirname "$0")/reload_keys.py" "$LBD" "$WORK" "$BASE" 2>&1 | tee "$WORK/reload_keys.out"
[ "${PIPESTATUS[0]}" = 0 ] || fail "$(sed -n '/^FAILED:/,$p' "$WORK/reload_keys.out" | paste -sd' ')"
pass "$(tail -1 "$WORK/reload_keys.out")"
