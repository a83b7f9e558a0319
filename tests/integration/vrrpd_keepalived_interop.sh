#!/bin/bash
# vrrpd and keepalived (Debian's 2.2, VRRPv3) in the same two VRRP groups: each must
# understand the other's packets, as RFC 5798 peers on one segment do. keepalived takes
# lb2's place: it follows vrrpd as master, takes over at once on vrrpd's priority-0
# advert (so it parsed and checksummed it), vrrpd sees keepalived's adverts as those of a
# new master (its handover ends on one), follows keepalived with nothing dropped, and
# takes over after the master down interval learnt from keepalived's adverts when
# keepalived dies; then the same in unicast mode. tshark's VRRP dissector reads vrrpd's
# live adverts field by field.
source "$(dirname "$0")/lablib.sh"
command -v keepalived >/dev/null || fail "keepalived is not installed (scripts/install-deps.sh)"
export LAB_NODES=0 LAB_LBD=0 LAB_INTERVAL=100ms
lab_up >/dev/null || fail "lab did not come up"
KA_LOG="$LAB_DIR/lb2-keepalived.log"

# lb2's part as the lab gives it (51: priority 100, 52: 150), without preemption.
{
    echo "global_defs {"
    echo "    vrrp_version 3"
    echo "}"
    for vrid in 51 52; do
        if [ $vrid = 51 ]; then vip=$VIP_A prio=100; else vip=$VIP_B prio=150; fi
        echo "vrrp_instance G$vrid {"
        echo "    state BACKUP"
        echo "    interface eth0"
        echo "    virtual_router_id $vrid"
        echo "    priority $prio"
        echo "    advert_int 0.1"
        echo "    nopreempt"
        echo "    virtual_ipaddress { $vip/32 dev eth0 }"
        echo "}"
    done
} >"$LAB_DIR/lb2-keepalived.conf"
ka_start() {
    rm -f "$LAB_DIR"/lb2-keepalived*.pid
    ip netns exec "$(lab_ns lb2)" keepalived -n -l -D -f "$LAB_DIR/lb2-keepalived.conf" \
        -p "$LAB_DIR/lb2-keepalived.pid" -r "$LAB_DIR/lb2-keepalived-vrrp.pid" >>"$KA_LOG" 2>&1 &
    echo $! >"$LAB_DIR/lb2-vrrpd.pid" # the lab's teardown stops whatever runs there
    disown
}
ka_says() { grep -c "(G$1) Entering $2 STATE" "$KA_LOG" || true; }
transitions() { grep -c "event=transition" "$LAB_DIR/lb1-vrrpd.log" || true; }

# 1. lb2's vrrpd hands over and keepalived takes its place: it hears vrrpd (lb1) master
# both groups and stays backup for both, without preempting the one it would outrank.
pid=$(cat "$LAB_DIR/lb2-vrrpd.pid")
kill -TERM "$pid"
wait_for 5 "lb2's vrrpd exits" bash -c "! kill -0 $pid 2>/dev/null"
wait_holder $VIP_A lb1 3 >/dev/null && wait_holder $VIP_B lb1 3 >/dev/null ||
    fail "lb1 does not hold both VIPs after lb2's vrrpd left: A '$(lab_holders $VIP_A)', B '$(lab_holders $VIP_B)'"
t1=$(transitions)
ka_start
sleep 2
for vrid in 51 52; do
    [ "$(ka_says $vrid BACKUP)" -ge 1 ] || fail "keepalived did not enter BACKUP for G$vrid: $(tail -5 "$KA_LOG")"
    [ "$(ka_says $vrid MASTER)" -eq 0 ] || fail "keepalived became MASTER of G$vrid beside vrrpd: $(grep STATE "$KA_LOG")"
    [ "$(group_field lb1 $vrid state)" = MASTER ] || fail "lb1's vrrpd is not MASTER of $vrid"
done
[ "$(lab_holders $VIP_A)" = lb1 ] && [ "$(lab_holders $VIP_B)" = lb1 ] || fail "VIPs not on lb1 alone"
[ "$(transitions)" = "$t1" ] || fail "vrrpd changed state while keepalived joined: $(grep event=transition "$LAB_DIR/lb1-vrrpd.log" | tail -1)"
pass "keepalived (lb2) follows vrrpd (lb1) as master of both groups, as a backup"

# 2. vrrpd's live adverts through Wireshark's VRRP dissector (captured on lb1's switch
# port): version 3, advertisement, the group's VRID, priority and VIP, 10 cs interval,
# a good checksum, TTL 255, to 224.0.0.18.
ip netns exec "$(lab_ns sw)" dumpcap -q -i lb1 -f "ip proto 112" -c 6 -a duration:15 -w - \
    2>"$WORK/dumpcap.log" | tshark -r - -T fields -E separator=' ' -e ip.src -e ip.dst -e ip.ttl \
    -e vrrp.version -e vrrp.type -e vrrp.virt_rtr_id -e vrrp.prio -e vrrp.addr_count \
    -e vrrp.short_adver_int -e vrrp.checksum.status -e vrrp.ip_addr \
    >"$WORK/adverts.txt" 2>"$WORK/tshark.log" || true
[ "$(wc -l <"$WORK/adverts.txt")" -eq 6 ] || fail "captured $(wc -l <"$WORK/adverts.txt") adverts, want 6: $(tail -2 "$WORK/dumpcap.log" "$WORK/tshark.log")"
while read -r src dst ttl ver type vrid prio count iv csum addr; do
    if [ "$vrid" = 51 ]; then want="150 $VIP_A"; else want="100 $VIP_B"; fi
    got="$src $dst $ttl $ver $type $count $iv $csum $prio $addr"
    [ "$got" = "$(lab_ip lb1) 224.0.0.18 255 3 1 1 10 1 $want" ] ||
        fail "tshark reads vrrpd's advert (vrid $vrid) as '$got', want '$(lab_ip lb1) 224.0.0.18 255 3 1 1 10 1 $want' (checksum status 1: good)"
done <"$WORK/adverts.txt"
pass "tshark dissects vrrpd's adverts as VRRPv3 with good checksums: $(cut -d' ' -f6 "$WORK/adverts.txt" | sort | uniq -c | awk '{ printf "%s%s for %s", (NR > 1 ? ", " : ""), $1, $2 }')"

# 3. vrrpd resigns (SIGTERM): keepalived must take both groups on the priority-0 advert,
# after its skew time, well before its master down interval (341-361 ms). vrrpd keeps the
# VIPs until it hears the new master, so its handover ending on "is master now" says it
# read keepalived's adverts.
pid=$(cat "$LAB_DIR/lb1-vrrpd.pid")
kill -TERM "$pid"
took=$(wait_held $VIP_A lb2 3) || fail "keepalived did not take VIP-A after vrrpd resigned: $(tail -5 "$KA_LOG")"
[ "$took" -le 250 ] || fail "keepalived took VIP-A $took ms after vrrpd resigned: it waited for the master down interval, not the skew time"
wait_held $VIP_B lb2 3 >/dev/null || fail "keepalived did not take VIP-B"
wait_for 5 "lb1's vrrpd exits" bash -c "! kill -0 $pid 2>/dev/null"
for vrid in 51 52; do
    [ "$(ka_says $vrid MASTER)" -ge 1 ] || fail "keepalived's log has no MASTER for G$vrid"
    grep -q "event=handover vrid=$vrid reason=\"$(lab_ip lb2) is master now\"" "$LAB_DIR/lb1-vrrpd.log" ||
        fail "vrrpd's handover of $vrid did not end on hearing keepalived: $(grep 'event=handover' "$LAB_DIR/lb1-vrrpd.log")"
done
[ "$(lab_holders $VIP_A)" = lb2 ] && [ "$(lab_holders $VIP_B)" = lb2 ] || fail "VIPs not on lb2 alone after the handover"
pass "vrrpd's priority-0 advert: keepalived master of both after $took ms; vrrpd released on hearing it"

# 4. vrrpd starts again and follows keepalived: its adverts counted as received, none
# dropped for any reason, its interval learnt; vrrpd stays backup (preemption off).
lab_start_vrrp lb1
sleep 1.5
for vrid in 51 52; do
    [ "$(group_field lb1 $vrid state)" = BACKUP ] || fail "vrrpd is $(group_field lb1 $vrid state) for $vrid, want BACKUP under keepalived"
    [ "$(group_field lb1 $vrid master)" = "$(lab_ip lb2)" ] || fail "vrrpd follows '$(group_field lb1 $vrid master)' for $vrid"
    n=$(group_field lb1 $vrid adverts_received)
    [ "${n:-0}" -ge 5 ] || fail "vrrpd counted ${n:-0} adverts from keepalived for $vrid"
done
dropped=$(grep -o '"dropped":{[^}]*}' "$LAB_DIR/lb1-vrrpd.json")
if grep -qE ':[1-9]' <<<"$dropped"; then fail "vrrpd dropped keepalived's packets: $dropped"; fi
[ "$(lab_holders $VIP_A)" = lb2 ] && [ "$(lab_holders $VIP_B)" = lb2 ] || fail "a VIP moved when vrrpd rejoined"
pass "vrrpd follows keepalived as backup: $(group_field lb1 51 adverts_received) adverts received for 51, none dropped"

# 5. keepalived dies without a word: vrrpd takes both groups after its master down
# interval (keepalived does not speak the peer watch link), less the time since the
# last advert (up to an interval, and keepalived's timer jitter).
down=$(group_field lb1 51 master_down_ms)
kill -KILL "$(cat "$LAB_DIR/lb2-keepalived-vrrp.pid")" "$(cat "$LAB_DIR/lb2-vrrpd.pid")"
took=$(wait_held $VIP_A lb1 3) || fail "vrrpd did not take VIP-A after keepalived died"
[ "$took" -ge $((down - 150)) ] && [ "$took" -le $((down + 150)) ] ||
    fail "vrrpd took VIP-A after $took ms; the master down interval is $down ms"
wait_held $VIP_B lb1 3 >/dev/null || fail "vrrpd did not take VIP-B"
grep -q "event=transition vrid=51 from=BACKUP to=MASTER .*reason=\"no advertisement from $(lab_ip lb2) for" \
    "$LAB_DIR/lb1-vrrpd.log" || fail "vrrpd's transition does not name keepalived's silence"
pass "keepalived killed: vrrpd master of VIP-A after $took ms (master down interval $down ms)"

# 6. The same pair with unicast adverts (networks without multicast: vrrpd's
# unicast_peers, keepalived's unicast_peer): keepalived follows vrrpd, takes over on its
# priority-0 advert within the skew time, and vrrpd follows keepalived with nothing
# dropped (RFC 5798's receive rules, TTL 255 among them, apply to unicast too).
lab_teardown
export LAB_UNICAST=1
lab_up >/dev/null || fail "the unicast lab did not come up"
pid=$(cat "$LAB_DIR/lb2-vrrpd.pid")
kill -TERM "$pid"
wait_for 5 "lb2's vrrpd exits" bash -c "! kill -0 $pid 2>/dev/null"
wait_holder $VIP_B lb1 3 >/dev/null || fail "unicast: lb1 did not take VIP-B from lb2's vrrpd"
sed -i "s|^    nopreempt|    nopreempt\n    unicast_src_ip $(lab_ip lb2)\n    unicast_peer { $(lab_ip lb1) }|" "$LAB_DIR/lb2-keepalived.conf"
grep -q "unicast_peer { $(lab_ip lb1) }" "$LAB_DIR/lb2-keepalived.conf" || fail "could not write keepalived's unicast configuration"
: >"$KA_LOG"
ka_start
sleep 2
for vrid in 51 52; do
    [ "$(ka_says $vrid BACKUP)" -ge 1 ] && [ "$(ka_says $vrid MASTER)" -eq 0 ] ||
        fail "unicast: keepalived's states for G$vrid: $(grep STATE "$KA_LOG")"
done
pid=$(cat "$LAB_DIR/lb1-vrrpd.pid")
kill -TERM "$pid"
took=$(wait_held $VIP_A lb2 3) || fail "unicast: keepalived did not take VIP-A after vrrpd resigned: $(tail -5 "$KA_LOG")"
[ "$took" -le 250 ] || fail "unicast: keepalived took VIP-A $took ms after vrrpd resigned, not after its skew time"
wait_for 5 "lb1's vrrpd exits" bash -c "! kill -0 $pid 2>/dev/null"
lab_start_vrrp lb1
sleep 1.5
for vrid in 51 52; do
    [ "$(group_field lb1 $vrid state)" = BACKUP ] && [ "$(group_field lb1 $vrid master)" = "$(lab_ip lb2)" ] ||
        fail "unicast: vrrpd is $(group_field lb1 $vrid state) following '$(group_field lb1 $vrid master)' for $vrid"
    n=$(group_field lb1 $vrid adverts_received)
    [ "${n:-0}" -ge 5 ] || fail "unicast: vrrpd counted ${n:-0} adverts from keepalived for $vrid"
done
dropped=$(grep -o '"dropped":{[^}]*}' "$LAB_DIR/lb1-vrrpd.json")
if grep -qE ':[1-9]' <<<"$dropped"; then fail "unicast: vrrpd dropped keepalived's packets: $dropped"; fi
pass "unicast: keepalived follows vrrpd, takes over on its priority 0 after $took ms; vrrpd follows keepalived, nothing dropped"
