#!/bin/bash
# VRRP from pgvipctl (issue 22): a planned move of one VIP and the way back, on the lab
# pair with preemption off, under a new session every 50 ms on the moved VIP.
#   vrrp resign 51 on lb1     VIP-A to lb2 now, make-before-break: only the sessions open
#                             at lb2's takeover fail (lb2 knows none of them); lb1 stays
#                             backup (priority 1) until restore
#   vrrp restore 51 on lb1    its priority again; without preemption VIP-A stays on lb2
#   vrrp giveback on lb2      lb2 resigns the group it holds but does not prefer: VIP-A
#                             back on lb1 the same way; VIP-B stays
# Also: vrrp show, who may change (nobody cannot connect), the log lines with who asked.
source "$(dirname "$0")/lablib.sh"
export LAB_NODES=1 LAB_PREEMPT=false
CTL=$(dirname "$LBD")/pgvipctl
lab_up >/dev/null || fail "lab did not come up"
[ "$(lab_holders $VIP_A) $(lab_holders $VIP_B)" = "lb1 lb2" ] || fail "start: VIP-A on $(lab_holders $VIP_A), VIP-B on $(lab_holders $VIP_B)"
vctl() { local inst=$1; shift; "$CTL" -S "$LAB_DIR/$inst-vrrpd-control.sock" "$@"; }

out=$(vctl lb1 vrrp) || fail "pgvipctl vrrp: $out"
grep -Eq '^ +51 \| MASTER +\| +150 \| +150 \| file +\| yes +\| this instance' <<<"$out" &&
    grep -Eq '^ +52 \| BACKUP +\| +100 \| +100 \| file +\| no +\| 10\.' <<<"$out" || fail "vrrp show on lb1:
$out"
json=$(vctl lb2 --json vrrp show)
python3 -c '
import json, sys
g = {x["vrid"]: x for x in json.loads(sys.argv[1])}
assert g[52]["state"] == "MASTER" and g[51]["state"] == "BACKUP", g
assert isinstance(g[51]["last_advert_ms"], int) and g[51]["last_advert_ms"] < 1000, g[51]
' "$json" || fail "vrrp show --json on lb2: $json"
set +e
out=$(runuser -u nobody -- "$CTL" -S "$LAB_DIR/lb1-vrrpd-control.sock" vrrp 2>&1)
rc=$?
set -e
[ $rc = 2 ] || fail "nobody reached vrrpd's control socket: exit $rc: $out"
pass "vrrp show: state, priorities, who set them, the preferred groups, the master, the last advert; not for nobody"

probe_start a $VIP_A
sleep 1
t_resign=$(now_ms)
out=$(vctl lb1 vrrp resign 51) || fail "resign: $out"
took=$(wait_holder $VIP_A lb2 3) || fail "VIP-A did not move to lb2 on resign: $(lab_holders $VIP_A)"
grep -q 'event=transition vrid=51 from=MASTER to=BACKUP priority=150 reason="resigned by \\"pgvipctl pid=[0-9]* uid=0\\"" vips_kept_until_handover=' "$LAB_DIR/lb1-vrrpd.log" ||
    fail "lb1's transition line: $(grep 'vrid=51 from=MASTER' "$LAB_DIR/lb1-vrrpd.log" | tail -1)"
grep -q "event=transition vrid=51 from=BACKUP to=MASTER .*reason=\"priority 0 received from $(lab_ip lb1) (it resigned)" "$LAB_DIR/lb2-vrrpd.log" ||
    fail "lb2's takeover line: $(grep 'vrid=51 from=BACKUP to=MASTER' "$LAB_DIR/lb2-vrrpd.log" | tail -1)"
sleep 2 # more than the master down interval: lb1 (priority 1) does not take it back
[ "$(lab_holders $VIP_A)" = lb2 ] || fail "VIP-A went back to lb1 after its resignation: $(lab_holders $VIP_A)"
[ "$(group_field lb1 51 priority)" = 1 ] || fail "lb1's priority in group 51 after resign: $(group_field lb1 51 priority)"
pass "vrrp resign 51 on lb1: VIP-A on lb2 in $took ms and kept there; both logs say why"

out=$(vctl lb1 vrrp restore 51) || fail "restore: $out"
sleep 1
[ "$(group_field lb1 51 priority)" = 150 ] && [ "$(lab_holders $VIP_A)" = lb2 ] ||
    fail "after restore: priority $(group_field lb1 51 priority), VIP-A on $(lab_holders $VIP_A)"
t_give=$(now_ms)
out=$(vctl lb2 vrrp giveback) || fail "giveback: $out"
grep -q "vrid 51: resigned (priority 100, below this instance's 150)" <<<"$out" || fail "giveback said: $out"
took2=$(wait_holder $VIP_A lb1 3) || fail "VIP-A did not go back to lb1 on giveback: $(lab_holders $VIP_A)"
[ "$(lab_holders $VIP_B)" = lb2 ] || fail "VIP-B left lb2 on giveback: $(lab_holders $VIP_B)"
out=$(vctl lb2 vrrp giveback) || fail "giveback again: $out"
grep -q "nothing to give back" <<<"$out" || fail "a second giveback: $out"
sleep 0.5
probe_stop a
# A move cuts what is open on the VIP at the moment the new holder takes it (its
# gratuitous ARP sends the clients' next packets there, and it knows none of those
# connections): only such sessions may fail; none that began after.
first_ms() { # first_ms FILE PATTERN AFTER_MS: the first matching line's time, at or after
    local line ts
    while IFS= read -r line; do
        ts=$(date -d "$(sed -E 's/^ts=([^ ]+) .*/\1/' <<<"$line")" +%s%3N)
        [ "$ts" -ge "$3" ] && { echo "$ts"; return 0; }
    done < <(grep -- "$2" "$1")
    return 1
}
take1=$(first_ms "$LAB_DIR/lb2-vrrpd.log" "event=transition vrid=51 from=BACKUP to=MASTER" "$t_resign") ||
    fail "lb2 logged no takeover after the resign"
take2=$(first_ms "$LAB_DIR/lb1-vrrpd.log" "event=transition vrid=51 from=BACKUP to=MASTER" "$t_give") ||
    fail "lb1 logged no takeover after the giveback"
late=$(awk -v t="$t_resign" -v a="$take1" -v b="$take2" '$3 == "fail" && $1 >= t &&
    !(($1 <= a + 20 && $2 >= a - 20) || ($1 <= b + 20 && $2 >= b - 20))' "$WORK/a.probe")
[ -z "$late" ] || fail "sessions on VIP-A failed that were not open when the new holder took over: $late (takeovers at $take1 and $take2)"
failed=$(awk -v t="$t_resign" '$3 == "fail" && $1 >= t' "$WORK/a.probe" | wc -l)
ok=$(awk -v t="$t_resign" '$3 == "ok" && $1 >= t' "$WORK/a.probe" | wc -l)
grep -q 'event=control command="vrrp giveback" result=ok uid=0 ' "$LAB_DIR/lb2-vrrpd.log" || fail "lb2 does not log the giveback"
log "MEASURED vrrp resign: VIP-A on lb2 after $took ms; giveback: back on lb1 after $took2 ms; $failed of $((ok + failed)) new sessions failed, each open at the takeover"
pass "vrrp restore keeps VIP-A on lb2 (no preemption); vrrp giveback on lb2 hands it back in $took2 ms; $failed of $((ok + failed)) sessions failed, only ones open at the takeover"

set +e
out=$(vctl lb1 vrrp resign 99 2>&1); rc1=$?
out2=$(vctl lb1 vrrp priority 51 255 2>&1); rc2=$?
set -e
[ "$rc1 $rc2" = "1 1" ] && grep -q 'no group "99"' <<<"$out" && grep -q '1 to 254' <<<"$out2" ||
    fail "bad vrrp commands: $rc1 $out / $rc2 $out2"
pass "bad input: an unknown group or priority 255 is refused with the reason"
