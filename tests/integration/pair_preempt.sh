#!/bin/bash
# With preemption on, a restarted higher-priority instance takes its VIP back, but
# only after the configured preempt delay (issue 4).
source "$(dirname "$0")/lablib.sh"
export LAB_NODES=1 LAB_PREEMPT=true LAB_PREEMPT_DELAY=1s
lab_up >/dev/null || fail "lab did not come up"
[ "$(lab_holders $VIP_A)" = lb1 ] || fail "VIP-A should start on lb1 (priority 150): $(lab_holders $VIP_A)"
lab_kill lb1
wait_holder $VIP_A lb2 3 >/dev/null || fail "VIP-A did not move to lb2"
lab_start lb1
t0=$(now_ms)
took=$(wait_holder $VIP_A lb1 6) || fail "lb1 did not take VIP-A back with preemption on"
[ "$took" -ge 1000 ] || fail "lb1 took VIP-A back after $took ms, before the 1 s preempt delay"
[ "$took" -le 3000 ] || fail "lb1 took VIP-A back only after $took ms"
grep -q "vrid=51 from=BACKUP to=MASTER .*reason=\"preempting $(lab_ip lb2): its priority 100 is below ours (150)\"" \
    "$LAB_DIR/lb1-vrrpd.log" || fail "lb1's log lacks the preemption reason"
[ "$(lab_holders $VIP_B)" = lb2 ] || fail "VIP-B left lb2"
log "MEASURED preempt: lb1 took VIP-A back $took ms after restart (delay 1 s)"
pass "preemption with a 1 s delay: VIP-A back on lb1 after $took ms; VIP-B stayed on lb2"
