#!/bin/bash
# vrrpd with unicast peers (networks without multicast): failover works, and an advert
# from an address that is not a configured peer is dropped even with a higher priority.
# Link tracking on a live instance: its link goes down -> FAULT, the VIP moves; link up
# -> it rejoins. The notify hook runs with the new state.
source "$(dirname "$0")/lablib.sh"
export LAB_NODES=0 LAB_LBD=0 LAB_UNICAST=1 LAB_NOTIFY=1
lab_up >/dev/null || fail "lab did not come up"
grep -q '"mode":"unicast"' "$LAB_DIR/lb1-vrrpd.json" || fail "lb1 is not in unicast mode"
pass "unicast peers: VIP-A on $(lab_holders $VIP_A), VIP-B on $(lab_holders $VIP_B)"

# The adverts really are unicast: capture on lb2's side of the switch. dumpcap (no
# dissectors to load) stops at the 3rd packet and pipes it to tshark: a live tshark took
# over 1 s to start capturing once, and 5 s twice on a loaded machine, then captured
# nothing. (dumpcap may not write into the test's 0700 directory.) The duration only
# bounds a failure.
ip netns exec "$(lab_ns sw)" dumpcap -q -i lb2 -f "ip proto 112" -c 3 -a duration:15 -w - \
    2>"$WORK/dumpcap.log" | tshark -r - -T fields -e ip.dst >"$WORK/dst.txt" 2>"$WORK/tshark.log" || true
grep -qx "$(lab_ip lb2)" "$WORK/dst.txt" || fail "no unicast advert to lb2 captured: $(cat "$WORK/dst.txt") $(tail -2 "$WORK/dumpcap.log" "$WORK/tshark.log")"
if grep -q 224.0.0.18 "$WORK/dst.txt"; then fail "multicast adverts in unicast mode"; fi
pass "adverts go to the peer's address ($(sort -u "$WORK/dst.txt" | paste -sd' '))"

# A forged higher-priority advert from the client (not a peer) is dropped, not obeyed.
before=$(cat "$LAB_DIR"/lb*-vrrpd.log | grep -c "event=transition")
for inst in lb1 lb2; do # sent unicast to each instance, as a peer's would be
    lab_exec client "$TOOLS/vrrp_inject" eth0 $(lab_ip client) 51 254 $VIP_A good 5 $(lab_ip $inst)
done
sleep 0.5
after=$(cat "$LAB_DIR"/lb*-vrrpd.log | grep -c "event=transition")
[ "$before" -eq "$after" ] || fail "a forged advert from a non-peer caused a transition"
grep -q '"not_peer":[1-9]' "$LAB_DIR/lb1-vrrpd.json" || fail "lb1 did not count not_peer drops"
pass "forged priority-254 advert from a non-peer: dropped and counted, no transition"

# Link down on the live master of VIP-A: FAULT, and the backup takes over.
M=$(lab_master_of 51)
O=$(other "$M")
down=$(group_field "$O" 51 master_down_ms)
ip -n "$(lab_ns "$M")" link set eth0 down
took=$(wait_holder $VIP_A "$O" 3) || fail "VIP-A did not move after $M's link went down"
[ "$took" -le $((down + 100)) ] || fail "took $took ms (master down $down)"
wait_for 2 "FAULT logged" grep -q "vrid=51 from=MASTER to=FAULT .*reason=\"link eth0 down\"" "$LAB_DIR/$M-vrrpd.log"
[ "$(group_field "$M" 51 state)" = FAULT ] || fail "$M not in FAULT"
pass "link down on $M: FAULT ('link eth0 down'), VIP-A on $O after $took ms"
ip -n "$(lab_ns "$M")" link set eth0 up
wait_for 3 "rejoin" grep -q "vrid=51 from=FAULT to=BACKUP .*reason=\"link eth0 up\"" "$LAB_DIR/$M-vrrpd.log"
pass "link up: $M rejoins as BACKUP"

grep -q "^MASTER 51 $O BACKUP$" "$LAB_DIR/$O-notify.log" || fail "notify hook: $(cat "$LAB_DIR/$O-notify.log")"
grep -q "^FAULT 51 $M MASTER$" "$LAB_DIR/$M-notify.log" || fail "notify hook on $M: $(cat "$LAB_DIR/$M-notify.log")"
pass "notify hook ran with state, vrid, instance and VRRP_FROM"

# A VIP outside the interface's subnets is refused at start, saying where and why.
sed "s/vips: \[$VIP_A\]/vips: [10.99.0.100]/" "$LAB_DIR/lb1.yaml" >"$WORK/bad.yaml"
sed -i "s|state_file: .*|state_file: $WORK/bad.json|" "$WORK/bad.yaml"
set +e
out=$(timeout 5 ip netns exec "$(lab_ns lb1)" "$VRRPD" -c "$WORK/bad.yaml" 2>&1)
rc=$?
set -e
[ $rc -eq 1 ] || fail "vrrpd started with a VIP off the segment (rc=$rc): $out"
[[ $out == *"vrrp.groups[0].vips[0]: 10.99.0.100 is outside eth0's subnets (10.77.0.0/24)"* ]] ||
    fail "message: $out"
pass "a VIP outside the segment: $out"
