#!/bin/bash
# With preemption on, a restarted higher-priority instance takes its VIP back, but
# only after the configured preempt delay (issue 4). The sessions the other instance
# held on that VIP end as the VIP leaves it (lbd.close_on_vip_loss), so the node frees
# their backends at once instead of when TCP keepalive gives up, minutes later. Last, a
# vrrpd stalled past its lbd timeout with lbd's answer unread reads it and goes on.
source "$(dirname "$0")/lablib.sh"
export LAB_NODES=1 LAB_PREEMPT=true LAB_PREEMPT_DELAY=1s
lab_up >/dev/null || fail "lab did not come up"
[ "$(lab_holders $VIP_A)" = lb1 ] || fail "VIP-A should start on lb1 (priority 150): $(lab_holders $VIP_A)"
lab_kill lb1
wait_holder $VIP_A lb2 3 >/dev/null || fail "VIP-A did not move to lb2"
# Idle sessions on lb2 through both VIPs while lb2 holds both.
HOLD="$(dirname "$0")/hold_sessions.py"
ip netns exec "$(lab_ns client)" python3 "$HOLD" $VIP_A 3 12 hold-a >"$WORK/hold-a" 2>&1 &
PIDS+=($!)
ip netns exec "$(lab_ns client)" python3 "$HOLD" $VIP_B 2 12 hold-b >"$WORK/hold-b" 2>&1 &
PIDS+=($!)
wait_for 10 "3 sessions on VIP-A" grep -qx "open 3" "$WORK/hold-a"
wait_for 10 "2 sessions on VIP-B" grep -qx "open 2" "$WORK/hold-b"
backends() { lab_exec node0 psql -X -h 127.0.0.1 -U postgres -d postgres -Atc \
    "select count(*) from pg_stat_activity where application_name = '$1'"; }
[ "$(backends hold-a)" = 3 ] && [ "$(backends hold-b)" = 2 ] || fail "backends: $(backends hold-a)/$(backends hold-b)"
lab_start lb1
t0=$(now_ms)
took=$(wait_holder $VIP_A lb1 6) || fail "lb1 did not take VIP-A back with preemption on"
moved=$(now_ms)
[ "$took" -ge 1000 ] || fail "lb1 took VIP-A back after $took ms, before the 1 s preempt delay"
[ "$took" -le 3000 ] || fail "lb1 took VIP-A back only after $took ms"
grep -q "vrid=51 from=BACKUP to=MASTER .*reason=\"preempting $(lab_ip lb2): its priority 100 is below ours (150)\"" \
    "$LAB_DIR/lb1-vrrpd.log" || fail "lb1's log lacks the preemption reason"
[ "$(lab_holders $VIP_B)" = lb2 ] || fail "VIP-B left lb2"
log "MEASURED preempt: lb1 took VIP-A back $took ms after restart (delay 1 s)"
pass "preemption with a 1 s delay: VIP-A back on lb1 after $took ms; VIP-B stayed on lb2"

# The node frees VIP-A's backends as soon as the VIP leaves lb2; VIP-B's stay.
t1=$(now_ms)
while [ "$(backends hold-a)" != 0 ]; do
    [ $(($(now_ms) - t1)) -lt 3000 ] || fail "lb2 kept VIP-A's sessions after the VIP left: $(backends hold-a) backends remain"
    sleep 0.05
done
freed=$(($(now_ms) - moved))
[ "$(backends hold-b)" = 2 ] || fail "VIP-B's sessions (VIP still on lb2) were closed: $(backends hold-b) of 2 left"
grep -q "event=address_gone address=$VIP_A sessions_closed=3" "$LAB_DIR/lb2-lbd.log" ||
    fail "lb2's log lacks the address_gone line"
wait_for 20 "the VIP-B sessions' report" grep -q "^closed=" "$WORK/hold-b"
[ "$(grep "^closed=" "$WORK/hold-b")" = "closed=0 at=" ] || fail "VIP-B's clients saw a close: $(cat "$WORK/hold-b")"
pass "VIP-A's 3 sessions on lb2 ended with the VIP (backends freed ${freed} ms after it moved); VIP-B's 2 untouched"

# vrrpd stalled for longer than its lbd timeout (1 s) while lbd's answer to a ping waits
# unread (a starved host deschedules vrrpd between a ping and its answer): on waking it
# must read the answer, not spin. (libuv runs a 0 ms timer restarted in a timer's own
# callback again in the same pass, before any read: vrrpd used to loop there for ever,
# sending no advert while its interface kept the VIP.) lb1's lbd is stopped first so the
# pings pile up unanswered, then vrrpd, then lbd resumes and answers into the socket.
lpid=$(cat "$LAB_DIR/lb1-lbd.pid") vpid=$(cat "$LAB_DIR/lb1-vrrpd.pid")
kill -STOP "$lpid"
sleep 0.2
kill -STOP "$vpid"
kill -CONT "$lpid"
sleep 1.5
kill -CONT "$vpid"
ticks0=$(awk '{print $14 + $15}' "/proc/$vpid/stat")
sleep 3 # (lb2 took VIP-A during the stall; lb1 takes it back after the 1 s preempt delay)
ticks=$(($(awk '{print $14 + $15}' "/proc/$vpid/stat") - ticks0))
[ "$ticks" -lt 150 ] || fail "lb1's vrrpd used $ticks CPU ticks in the 3 s after the stall (a spin)"
lab_exec lb1 curl -fsS -m 2 -o /dev/null http://127.0.0.1:8082/metrics ||
    fail "lb1's vrrpd does not answer after the stall"
grep -q "tracked lbd did not answer" "$LAB_DIR/lb1-vrrpd.log" &&
    fail "lb1's vrrpd says lbd did not answer, though its answer was waiting: $(grep 'did not answer' "$LAB_DIR/lb1-vrrpd.log" | tail -1)"
wait_holder $VIP_A lb1 5 >/dev/null || fail "VIP-A on '$(lab_holders $VIP_A)' 5 s after lb1's vrrpd resumed, want lb1 alone"
[ "$(lab_holders $VIP_B)" = lb2 ] || fail "VIP-B on '$(lab_holders $VIP_B)', want lb2"
pass "lb1's vrrpd stalled 1.5 s with lbd's answer unread: it read it on waking ($ticks CPU ticks in 3 s, lbd still tracked up), answers, and holds VIP-A again"
