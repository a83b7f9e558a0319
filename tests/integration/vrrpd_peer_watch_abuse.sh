#!/bin/bash
# The peer watch port against strangers (issue 20, point 5): hosts on the segment that
# hold connections to the master's peer watch port must not keep its backup out. Before,
# 16 connections from anyone filled it for good: the backup could not arm its link, and
# an instance crash cost the master down interval again instead of the skew time. Now
# one address holds at most 2, and when the slots are full a VRRP peer (heard
# advertising) evicts the oldest stranger.
source "$(dirname "$0")/lablib.sh"
export LAB_NODES=0 LAB_LBD=0 LAB_INTERVAL=100ms
lab_up >/dev/null || fail "lab did not come up"
M=$(lab_master_of 51)
O=$(other "$M")
down=$(group_field "$O" 51 master_down_ms)
skew=$((down - 300))
lab_stop "$O" >/dev/null
# Twelve addresses on the client, each trying 3 connections to the master's watch port,
# held for 20 s.
for i in $(seq 60 71); do ip -n "$(lab_ns client)" addr add "$LAB_NET.$i/24" dev eth0; done
lab_exec client python3 - "$(lab_ip "$M")" "$LAB_NET" >"$WORK/hold.out" 2>&1 <<'PY' &
import socket, sys, time
held = []
for i in range(60, 72):
    for _ in range(3):
        s = socket.socket(); s.bind(("%s.%d" % (sys.argv[2], i), 0)); s.settimeout(1)
        try:
            s.connect((sys.argv[1], 5798))
            if s.recv(64):
                held.append(s)
        except OSError:
            pass
print("held", len(held), flush=True)
time.sleep(20)
PY
PIDS+=($!)
wait_for 10 "the strangers' connections" grep -q held "$WORK/hold.out"
held=$(awk '{print $2}' "$WORK/hold.out")
[ "$held" -le 24 ] || fail "the master let $held stranger connections in (12 addresses, at most 2 each)"
[ "$held" -ge 16 ] || fail "the strangers held only $held connections: the attack did not fill the 16 slots"
grep -q 'event=peer_watch_refused .*reason="too many connections from this address"' "$LAB_DIR/$M-vrrpd.log" ||
    fail "no rate-limited refusal line on $M"
pass "12 strangers hold $held of the master's peer watch slots (2 per address)"

# The backup comes back and must arm its link through the full listener.
lab_start "$O" >/dev/null
wait_watched "$O" 51 8 || fail "$O could not arm its peer watch link while strangers held the slots"
ev=$(lab_exec "$M" curl -fsS "http://127.0.0.1:8082/metrics" 2>/dev/null | awk '$1 == "vrrpd_peer_watch_evicted_total" {print $2}')
pass "$O armed its link to $M (a stranger evicted: ${ev:-?})"

# And a crash of the master is seen at once again.
lab_kill "$M"
t0=$LAB_KILLED_MS # (when the signals went: the lab needs a while to get there)
wait_holder $VIP_A "$O" 3 >/dev/null || fail "VIP-A did not move to $O"
took=$(($(now_ms) - t0))
grep -q "vrid=51 from=BACKUP to=MASTER .*its peer watch link closed" "$LAB_DIR/$O-vrrpd.log" ||
    fail "$O took over by the timer, not the link: $(grep 'vrid=51 from=BACKUP' "$LAB_DIR/$O-vrrpd.log" | tail -1)"
[ "$took" -le $((skew + 150)) ] || fail "takeover after $took ms > skew $skew + 150 ms"
pass "SIGKILL of $M with strangers on its watch port: $O took over in $took ms (skew $skew ms, master down $down ms)"
