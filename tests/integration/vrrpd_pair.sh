#!/bin/bash
# Two vrrpd on one segment (issue 3): one master per group; SIGKILL of a master with its
# link down moves the VIP within the master down interval + 100 ms and a client reaches
# it; SIGTERM hands over within one interval; a partition heals to exactly one master;
# malformed and wrong-TTL packets are dropped and counted without a transition; a
# master that sends late (its vrrpd stopped) counts and logs it; a stall of both is no
# failover; a stall of the master's vrrpd alone, while its host answers on the peer
# watch link, is held for silent_master_hold (1 s here; off by default) and taken over
# when that runs out.
source "$(dirname "$0")/lablib.sh"
export LAB_NODES=0 LAB_LBD=0 LAB_INTERVAL=100ms LAB_SILENT_HOLD=${LAB_SILENT_HOLD-1s}
lab_up >/dev/null || fail "lab did not come up"

# 1. One master per group, and the state files agree with the kernel.
for vrid in 51 52; do
    vip=$([ $vrid = 51 ] && echo $VIP_A || echo $VIP_B)
    m=$(lab_master_of $vrid)
    [ -n "$m" ] || fail "no master for vrid $vrid"
    [ "$(lab_holders "$vip")" = "$m" ] || fail "vrid $vrid: master $m but $vip held by '$(lab_holders "$vip")'"
    [ "$(group_field "$(other "$m")" $vrid state)" = BACKUP ] || fail "vrid $vrid: the other is not BACKUP"
done
pass "one master per group: VIP-A on $(lab_holders $VIP_A), VIP-B on $(lab_holders $VIP_B)"

# 2. SIGKILL the master of VIP-A and take its link down, as a dying container does. Its
# kernel closes the peer watch link first: the backup takes over after the skew time.
M=$(lab_master_of 51)
O=$(other "$M")
down=$(group_field "$O" 51 master_down_ms)
skew=$((down - 3 * $(group_field "$O" 51 interval_ms)))
wait_watched "$O" 51 5 || fail "$O does not watch $M's vrrpd over the peer watch link"
t0=$(now_ms)
lab_kill "$M"
took=$(wait_holder $VIP_A "$O" 3) || fail "VIP-A did not move to $O within 3 s"
[ "$took" -le $((skew + 100)) ] || fail "VIP-A moved after $took ms; skew is $skew ms (+100 allowed; master down $down)"
lab_exec client ping -c 1 -W 1 $VIP_A >/dev/null || fail "client cannot reach VIP-A on $O"
grep -q "event=transition vrid=51 from=BACKUP to=MASTER .*reason=\"the vrrpd of $(lab_ip "$M") ended: its peer watch link closed" \
    "$LAB_DIR/$O-vrrpd.log" || fail "no transition line with the reason on $O"
grep -q "event=peer_gone peer=$(lab_ip "$M") reason=\"its peer watch link closed\"" "$LAB_DIR/$O-vrrpd.log" ||
    fail "no peer_gone line on $O"
pass "SIGKILL + link down: VIP-A on $O after $took ms (skew $skew ms, master down $down ms); client reaches it"

# 3. The killed instance comes back; preemption is off, so it stays backup.
lab_start "$M"
sleep 1.5
[ "$(lab_holders $VIP_A)" = "$O" ] || fail "VIP-A moved back without preemption"
[ "$(group_field "$M" 51 state)" = BACKUP ] || fail "$M is not BACKUP after rejoining"
pass "$M rejoined as BACKUP (preempt off)"

# 4. SIGTERM the master: it resigns with priority 0 and the backup takes over at once.
t0=$(now_ms)
kill -TERM "$(cat "$LAB_DIR/$O-vrrpd.pid")"
took=$(wait_held $VIP_A "$M" 3) || fail "VIP-A did not reach $M after SIGTERM"
[ "$took" -le 160 ] || fail "takeover after SIGTERM took $took ms, more than one interval (100 ms +60)"
wait_holder $VIP_A "$M" 3 >/dev/null || fail "$O kept VIP-A"
released=$(($(now_ms) - t0))
[ "$released" -le $((took + 100 + 150)) ] || fail "$O released VIP-A only after $released ms (linger is one interval)"
grep -q "vrid=51 from=BACKUP to=MASTER .*priority 0 received from $(lab_ip "$O")" "$LAB_DIR/$M-vrrpd.log" ||
    fail "$M does not say it took over on priority 0"
wait_for 3 "$O exits after its handover" bash -c "! kill -0 $(cat "$LAB_DIR/$O-vrrpd.pid") 2>/dev/null"
[ -z "$(lab_holders $VIP_A | grep -w "$O")" ] || fail "$O kept VIP-A after exiting"
pass "SIGTERM: VIP-A on $M after $took ms (priority 0); $O released it at $released ms and exited"
lab_start "$O"
sleep 1.5

# 5. Partition: detach lb2's port from the switch (its link stays up), then heal.
ip -n "$(lab_ns sw)" link set lb2 nomaster
sleep 1
[ "$(group_field lb1 51 state)" = MASTER ] && [ "$(group_field lb2 51 state)" = MASTER ] ||
    fail "partitioned: expected both MASTER for vrid 51 (each alone on its side)"
ip -n "$(lab_ns sw)" link set lb2 master br0
sleep 1
for vrid in 51 52; do
    n=0
    for inst in lb1 lb2; do [ "$(group_field $inst $vrid state)" = MASTER ] && n=$((n + 1)); done
    [ $n -eq 1 ] || fail "after healing, vrid $vrid has $n masters"
done
[ -n "$(lab_holders $VIP_A)" ] && [ "$(lab_holders $VIP_A | wc -w)" -eq 1 ] || fail "VIP-A holders: $(lab_holders $VIP_A)"
[ "$(lab_holders $VIP_B | wc -w)" -eq 1 ] || fail "VIP-B holders: $(lab_holders $VIP_B)"
pass "partition healed: one master per group (A on $(lab_holders $VIP_A), B on $(lab_holders $VIP_B))"

# 6. Bad packets from the client: each dropped and counted, no transition.
before=$(cat "$LAB_DIR"/lb*-vrrpd.log | grep -c "event=transition")
for kind in ttl checksum version type truncated count interval; do
    lab_exec client "$TOOLS/vrrp_inject" eth0 $(lab_ip client) 51 254 $VIP_A $kind 3
done
sleep 0.8
for inst in lb1 lb2; do
    dropped=$(grep -o '"dropped":{[^}]*}' "$LAB_DIR/$inst-vrrpd.json")
    for reason in ttl checksum version type truncated length interval; do
        n=$(grep -o "\"$reason\":[0-9]*" <<<"$dropped" | cut -d: -f2)
        [ "${n:-0}" -ge 3 ] || fail "$inst counted $n drops for $reason, want 3: $dropped"
    done
done
after=$(cat "$LAB_DIR"/lb*-vrrpd.log | grep -c "event=transition")
[ "$before" -eq "$after" ] || fail "bad packets caused $((after - before)) transitions"
grep -q 'event=packet_dropped reason=ttl src=10.77.0.50 detail="TTL 64, not 255"' "$LAB_DIR"/lb1-vrrpd.log ||
    grep -q 'event=packet_dropped reason=ttl' "$LAB_DIR"/lb2-vrrpd.log || fail "no log line for a TTL drop"
pass "21 malformed packets (7 kinds x 3): all dropped and counted by reason, no transition"

# 7. A master that runs late says so: SIGSTOP its vrrpd for 200 ms (less than the
# backup's master down interval), and the advert that leaves on SIGCONT is counted late
# in its state file (and /metrics), with how late (100-200 ms: the stop came 0-100 ms
# after the last advert), and in one log line.
M=$(lab_master_of 52)
[ -n "$M" ] || fail "no master for vrid 52"
# (Counted as deltas: either instance was master during the partition above, when a
# loaded host may already have made it late.)
late0=$(group_field "$M" 52 adverts_late) max0=$(group_field "$M" 52 advert_late_max_ms) other0=$(group_field "$(other "$M")" 52 adverts_late)
pid=$(cat "$LAB_DIR/$M-vrrpd.pid")
kill -STOP "$pid"
sleep 0.2
kill -CONT "$pid"
sleep 1.2
late=$(group_field "$M" 52 adverts_late) max=$(group_field "$M" 52 advert_late_max_ms)
[ "${late:-0}" -ge $((${late0:-0} + 1)) ] || fail "$M: a 200 ms stop left adverts_late at '$late' (was $late0)"
[ "${max:-0}" -ge 90 ] && { [ "${max0:-0}" -ge 90 ] || [ "${max:-0}" -le 300 ]; } ||
    fail "$M: advert_late_max_ms '$max' (was $max0), want 100-200"
grep -q "event=advert_late vrid=52 late_ms=" "$LAB_DIR/$M-vrrpd.log" || fail "$M logged no advert_late line"
[ "$(group_field "$(other "$M")" 52 adverts_late)" = "$other0" ] || fail "the backup counted late adverts"
pass "a master stopped for 200 ms counts its late advert ($late, $max ms late) and logs it"

# 8. A stall of the whole host (both vrrpd stopped for longer than the master down
# interval) is no failure: the backup, whose timer then runs late, waits one interval for
# the master's overdue advert instead of taking over. The backup resumes first and the
# master 30 ms later, so a backup that did not wait would take over every time.
M=$(lab_master_of 52)
B=$(other "$M")
pm=$(cat "$LAB_DIR/$M-vrrpd.pid") pb=$(cat "$LAB_DIR/$B-vrrpd.pid")
before=$(cat "$LAB_DIR"/lb*-vrrpd.log | grep -c "event=transition")
kill -STOP "$pm" "$pb"
sleep 0.6
kill -CONT "$pb"
sleep 0.03
kill -CONT "$pm"
sleep 1.2
after=$(cat "$LAB_DIR"/lb*-vrrpd.log | grep -c "event=transition")
[ "$before" -eq "$after" ] || fail "a 600 ms stall of both caused $((after - before)) transitions: $(grep -h 'event=transition' "$LAB_DIR"/lb*-vrrpd.log | tail -2)"
[ "$(lab_master_of 52)" = "$M" ] || fail "vrid 52 master is $(lab_master_of 52), want $M"
g=$(group_field "$B" 52 stall_graces)
[ "${g:-0}" -ge 1 ] || fail "$B: stall_graces '$g' after its timer ran late"
grep -q "event=stall_grace vrid=52 master=$(lab_ip "$M") count=[0-9]* reason=\"the master down timer ran [0-9]* ms late" \
    "$LAB_DIR/$B-vrrpd.log" || fail "$B logged no stall_grace line"

pass "both vrrpd stalled 600 ms: the backup waited one interval for the master's advert (stall_graces $g), no transition"

# 9. The master's vrrpd alone stops for 800 ms, more than twice the master down interval:
# plain VRRP would take over. But its host acknowledges the backup's probes on the peer
# watch link (its kernel runs, its VIP still answers), so the backup holds (up to 1 s
# past the interval) and the master's first advert after SIGCONT ends the hold.
M=$(lab_master_of 52)
B=$(other "$M")
wait_watched "$B" 52 5 || fail "$B does not watch $M's vrrpd over the peer watch link"
pm=$(cat "$LAB_DIR/$M-vrrpd.pid")
h0=$(group_field "$B" 52 silent_holds)
before=$(cat "$LAB_DIR"/lb*-vrrpd.log | grep -c "event=transition")
kill -STOP "$pm"
sleep 0.8
kill -CONT "$pm"
sleep 1
after=$(cat "$LAB_DIR"/lb*-vrrpd.log | grep -c "event=transition")
[ "$before" -eq "$after" ] || fail "an 800 ms stop of the master's vrrpd caused $((after - before)) transitions: $(grep -h 'event=transition' "$LAB_DIR"/lb*-vrrpd.log | tail -2)"
[ "$(lab_master_of 52)" = "$M" ] && [ "$(lab_holders $VIP_B)" = "$M" ] || fail "vrid 52: master $(lab_master_of 52), VIP-B on $(lab_holders $VIP_B); want $M"
h=$(group_field "$B" 52 silent_holds)
[ "${h:-0}" -eq $((${h0:-0} + 1)) ] || fail "$B: silent_holds '$h' (was $h0), want one more"
grep -q "event=silent_master_hold vrid=52 master=$(lab_ip "$M") .*its host answers on the peer watch link" "$LAB_DIR/$B-vrrpd.log" ||
    fail "$B logged no silent_master_hold line"
grep -q "event=silent_master_back vrid=52 master=$(lab_ip "$M") .*spoke again after [0-9]* ms of silence" "$LAB_DIR/$B-vrrpd.log" ||
    fail "$B logged no silent_master_back line"
grep -q '^vrrpd_group_silent_holds_total{vrid="52"} [1-9]' <(lab_exec "$B" curl -s http://127.0.0.1:8082/metrics) ||
    fail "$B's /metrics has no silent holds for vrid 52"
pass "master's vrrpd stopped 800 ms, its host answering: $B held (silent_holds $h), no transition"

# 10. Stopped for longer than the hold: the backup takes over once it has run out (the
# master down interval and 1 s after the last advert), and says so.
down=$(group_field "$B" 52 master_down_ms)
t0=$(now_ms)
kill -STOP "$pm"
took=$(wait_held $VIP_B "$B" 4) || { kill -CONT "$pm"; fail "$B did not take VIP-B within 4 s of stopping $M's vrrpd"; }
kill -CONT "$pm"
[ "$took" -ge $((down + 1000 - 110)) ] && [ "$took" -le $((down + 1000 + 300)) ] ||
    fail "takeover $took ms after the stop; want the master down interval ($down ms) + the 1 s hold, less up to one interval"
grep -q "event=transition vrid=52 from=BACKUP to=MASTER .*its host still answered, but the silent master hold ran out" "$LAB_DIR/$B-vrrpd.log" ||
    fail "$B's transition line does not say the hold ran out"
sleep 1.5
n=0
for inst in lb1 lb2; do [ "$(group_field $inst 52 state)" = MASTER ] && n=$((n + 1)); done
[ $n -eq 1 ] && [ "$(lab_holders $VIP_B | wc -w)" -eq 1 ] || fail "after SIGCONT, vrid 52 has $n masters, VIP-B on '$(lab_holders $VIP_B)'"
pass "master's vrrpd stopped past the hold: $B took over after $took ms (master down $down + 1000 ms hold); one master after SIGCONT"
