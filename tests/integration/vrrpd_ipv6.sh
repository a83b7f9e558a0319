#!/bin/bash
# IPv6 VIPs (dual stack): each group moves an IPv6 VIP with its IPv4 one. A client
# reaches PostgreSQL through lbd on the IPv6 VIP; when the master is killed, the survivor
# adds the address and announces it with an unsolicited Neighbor Advertisement, which
# tshark reads as RFC 4861 7.2.6 has it and which moves the client's neighbor entry at
# once (it was REACHABLE with the dead master's MAC and would have stayed so for about
# 30 s); a vrrpd killed alone and started again clears the IPv6 VIP it left; a reload
# that drops an IPv6 VIP removes it, and lbd ends the sessions clients had opened to it.
source "$(dirname "$0")/lablib.sh"
# vrrpd with realtime: true, as the README advises where the host is loaded: the probes
# load it, and a starved vrrpd measures the host, not the failover.
export LAB_REALTIME=${LAB_REALTIME:-1}
export LAB_NODES=1 LAB_IPV6=1 LAB_INTERVAL=100ms
lab_up >/dev/null || fail "lab did not come up"
mac_of() { ip -n "$(lab_ns "$1")" -br link show eth0 | awk '{ print $3 }'; }
neigh_mac() { lab_exec client ip -6 neigh show "$VIP6_A" dev eth0 | awk '{ print $3 }'; }
psql6() { lab_exec client psql -X -At -h "$VIP6_A" -U postgres -d postgres "$@"; }

# 1. Each IPv6 VIP sits with its group's master, and the state file lists it.
M=$(lab_master_of 51)
S=$(other "$M")
[ -n "$M" ] || fail "no master for vrid 51"
[ "$(lab_holders "$VIP6_A")" = "$M" ] || fail "$VIP6_A held by '$(lab_holders "$VIP6_A")', want $M"
[ "$(lab_holders "$VIP6_B")" = "$(lab_master_of 52)" ] || fail "$VIP6_B not with the master of 52"
grep -q "\"vips\":\"$VIP_A,$VIP6_A\"" "$LAB_DIR/$M-vrrpd.json" || fail "$M's state file does not list $VIP6_A"
pass "IPv6 VIPs with their groups: $VIP6_A on $M, $VIP6_B on $(lab_master_of 52)"

# 2. A client over IPv6, through lbd, to PostgreSQL; its neighbor entry has M's MAC.
[ "$(psql6 -c 'select 6 * 7')" = 42 ] || fail "psql over $VIP6_A failed"
[ "$(neigh_mac)" = "$(mac_of "$M")" ] || fail "client's neighbor entry for $VIP6_A: $(neigh_mac), want $M's $(mac_of "$M")"
pass "psql over [$VIP6_A] through lbd on $M"

# 3. Kill M. The survivor's Neighbor Advertisement, captured on the client's switch port.
wait_watched "$S" 51 5 || fail "$S does not watch $M's vrrpd"
# Only S's for VIP6_A (each master repeats its own for a while after start-up). dumpcap may not write into
# the test's 0700 directory: it pipes to tshark, and stops at the first advertisement
# (or after 15 s, which bounds only a failure).
(ip netns exec "$(lab_ns sw)" dumpcap -i client \
    -f "ether src $(mac_of "$S") and icmp6 and ip6[40] == 136 and ip6[48:4] == 0xfd770000 and ip6[60:4] == 0x100" -c 1 -a duration:15 \
    -w - 2>"$WORK/dumpcap.log" | tshark -r - -T fields -E separator=' ' -e ipv6.src -e ipv6.dst \
    -e ipv6.hlim -e icmpv6.type -e icmpv6.code -e icmpv6.nd.na.flag.r -e icmpv6.nd.na.flag.s \
    -e icmpv6.nd.na.flag.o -e icmpv6.nd.na.target_address -e icmpv6.opt.linkaddr \
    -e icmpv6.checksum.status >"$WORK/na.txt" 2>"$WORK/tshark.log") &
cap=$!
PIDS+=($cap)
for _ in $(seq 100); do grep -q "Capturing on" "$WORK/dumpcap.log" 2>/dev/null && break; sleep 0.05; done
probe_start V6 "$VIP6_A" # a libpq session every 50 ms over IPv6 through the kill
sleep 0.5
down=$(group_field "$S" 51 master_down_ms)
skew=$((down - 3 * $(group_field "$S" 51 interval_ms)))
# The entry is watched from before the kill, in the background: lab_kill waits for the
# killed processes to be gone, which takes long on a slow host, and must not count.
want=$(mac_of "$S")
(
    until [ "$(neigh_mac)" = "$want" ]; do sleep 0.01; done
    now_ms >"$WORK/neigh_at"
) &
PIDS+=($!)
lab_kill "$M"
t0=$LAB_KILLED_MS # (when the signals went: the lab needs a while to get there)
for _ in $(seq 300); do [ -s "$WORK/neigh_at" ] && break; sleep 0.01; done
[ -s "$WORK/neigh_at" ] || fail "client's neighbor entry for $VIP6_A still $(neigh_mac) 3 s after the kill; $S is $want"
took=$(($(cat "$WORK/neigh_at") - t0))
[ "$took" -le 1000 ] || fail "client's neighbor entry moved only after $took ms"
[ "$(lab_holders "$VIP6_A")" = "$S" ] || fail "$VIP6_A held by '$(lab_holders "$VIP6_A")' after the kill"
[ "$(psql6 -c 'select 1')" = 1 ] || fail "psql over $VIP6_A fails after the failover"
probe_stop V6
o6=$(outage "$t0" V6) || fail "no recovery over IPv6: $(tail -3 "$WORK/V6.probe")"
ms=$(outage_ms "$o6")
slack=$(probe_slack V6 "$t0")
[ "$ms" -le $((skew + 150 + slack)) ] || fail "IPv6 clients' outage $ms ms > skew $skew + 150 ms + the probe's own $slack ms"
log "MEASURED ipv6 sigkill_instance: $o6 (skew $skew ms)"
wait "$cap" 2>/dev/null || true
want="$VIP6_A ff02::1 255 136 0 0 0 1 $VIP6_A $(mac_of "$S") 1"
[ "$(head -1 "$WORK/na.txt")" = "$want" ] ||
    fail "tshark reads the advertisement as '$(head -1 "$WORK/na.txt")', want '$want' (flags R S O; checksum 1: good) $(tail -2 "$WORK/dumpcap.log" "$WORK/tshark.log")"
pass "$M killed: $S announced $VIP6_A (tshark: unsolicited NA, Override, its MAC, good checksum); the client's entry moved after $took ms; IPv6 libpq outage $ms ms ($o6)"

# 4. The killed instance rejoins. Then S's vrrpd alone is killed (its link stays up, so
# the VIPs stay on its interface, as after a crash): M takes over, and S's vrrpd, started
# again, clears the IPv6 VIP its killed run left behind.
lab_start "$M"
wait_for 5 "$M rejoins as backup" bash -c "grep -q '\"vrid\":51,\"state\":\"BACKUP\"' $LAB_DIR/$M-vrrpd.json"
wait_watched "$M" 51 5 || fail "$M does not watch $S's vrrpd"
kill -KILL "$(cat "$LAB_DIR/$S-vrrpd.pid")"
wait_held "$VIP6_A" "$M" 3 >/dev/null || fail "$M did not take $VIP6_A after $S's vrrpd was killed"
ip -n "$(lab_ns "$S")" -br addr show dev eth0 | grep -q "$VIP6_A/128" || fail "the killed vrrpd left no $VIP6_A on $S (nothing to clear)"
lab_start_vrrp "$S"
wait_holder "$VIP6_A" "$M" 5 >/dev/null || fail "$VIP6_A holders after $S's vrrpd restarted: '$(lab_holders "$VIP6_A")'"
grep -q "event=stale_vips_removed" "$LAB_DIR/$S-vrrpd.log" || fail "$S's vrrpd did not say it removed stale VIPs"
pass "$S's vrrpd killed and started again: the $VIP6_A it left is gone; $M holds it alone"

# 5. A reload that drops the IPv6 VIP from group 51 removes it from M, and lbd on M
# ends the session a client had open to it (close_on_vip_loss, IPv6 too).
S=$M
lab_exec client psql -X -h "$VIP6_A" -U postgres -d postgres -c 'select pg_sleep(20)' \
    >"$WORK/held.out" 2>&1 &
held=$!
PIDS+=($held)
wait_for 5 "a session to $VIP6_A on $S" bash -c \
    "ip netns exec $(lab_ns "$S") curl -s http://127.0.0.1:8081/metrics | grep -qx 'lbd_sessions 1'"
for inst in lb1 lb2; do sed -i "s/vips: \[$VIP_A, '$VIP6_A'\]/vips: [$VIP_A]/" "$LAB_DIR/$inst.yaml"; done
grep -q "vips: \[$VIP_A\]}" "$LAB_DIR/$S.yaml" || fail "could not edit $S's configuration"
kill -HUP "$(cat "$LAB_DIR/$S-vrrpd.pid")"
wait_for 5 "$VIP6_A leaves $S" bash -c "! ip -n $(lab_ns "$S") -br addr show dev eth0 | grep -q '$VIP6_A/128'"
wait_for 5 "lbd on $S ends the session" grep -q "event=address_gone address=$VIP6_A sessions_closed=1" "$LAB_DIR/$S-lbd.log"
grep -q "event=session_end .*end=vip_gone" "$LAB_DIR/$S-lbd.log" || fail "no session_end with end=vip_gone on $S"
grep -q "event=reload changed=.*vrid 51 vips" "$LAB_DIR/$S-vrrpd.log" || fail "$S's vrrpd did not log the changed VIPs"
[ "$(lab_holders "$VIP_A")" = "$S" ] || fail "the IPv4 VIP-A moved on the reload"
kill "$held" 2>/dev/null || true
pass "reload without $VIP6_A: removed from $S, its session ended by lbd (address_gone, end=vip_gone); VIP-A stays"
