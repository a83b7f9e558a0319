#!/bin/bash
# The pair end to end (issue 4): clients on both VIPs through lbd to three PostgreSQL
# nodes; SIGKILL of the master instance, SIGKILL of only its lbd, and a planned stop;
# the measured client-visible outages are printed and bounded.
source "$(dirname "$0")/lablib.sh"
# vrrpd with realtime: true, as the README advises where the host is loaded: the probes
# load it, and a starved vrrpd measures the host, not the failover.
export LAB_REALTIME=${LAB_REALTIME:-1}
export LAB_INTERVAL=100ms
lab_up >/dev/null || fail "lab did not come up"
for vip in $VIP_A $VIP_B; do
    lab_exec client psql -X -h $vip -U postgres -d postgres -Atc 'select 1' >/dev/null || fail "psql to $vip"
done
pass "clients reach both VIPs (A on $(lab_holders $VIP_A), B on $(lab_holders $VIP_B))"

# Least privilege: lbd runs as nobody; vrrpd keeps only CAP_NET_ADMIN and CAP_NET_RAW.
for inst in lb1 lb2; do
    uid=$(awk '/^Uid:/ {print $2}' "/proc/$(cat "$LAB_DIR/$inst-lbd.pid")/status")
    [ "$uid" = "$(id -u nobody)" ] || fail "$inst lbd runs as uid $uid, not nobody"
    caps=$(awk '/^CapEff:/ {print $2}' "/proc/$(cat "$LAB_DIR/$inst-vrrpd.pid")/status")
    [ "$caps" = 0000000000003000 ] || fail "$inst vrrpd has capabilities $caps, want net_admin+net_raw (3000)"
done
pass "lbd runs as nobody; vrrpd keeps only CAP_NET_ADMIN and CAP_NET_RAW"

# Drill 1: SIGKILL the instance that masters VIP-A (docker kill). Its kernel closes the
# peer watch link, so the survivor takes over after the skew time, not the master down
# interval.
M=$(lab_master_of 51)
O=$(other "$M")
down=$(group_field "$O" 51 master_down_ms)
skew=$((down - 300))
wait_watched "$O" 51 5 || fail "$O does not watch $M over the peer watch link"
probe_start A $VIP_A
probe_start B $VIP_B
sleep 1
lab_kill "$M"
t0=$LAB_KILLED_MS # (when the signals went: the lab needs a while to get there)
wait_holder $VIP_A "$O" 3 >/dev/null || fail "VIP-A did not move to $O"
sleep 1
probe_stop A
probe_stop B
oa=$(outage "$t0" A) || fail "no recovery on VIP-A: $(tail -3 "$WORK/A.probe")"
ms=$(outage_ms "$oa")
grep -q "vrid=51 from=BACKUP to=MASTER .*the vrrpd of $(lab_ip "$M") ended: its peer watch link closed" \
    "$LAB_DIR/$O-vrrpd.log" || fail "survivor did not take over on the peer watch link: $(grep vrid=51 "$LAB_DIR/$O-vrrpd.log" | tail -1)"
# Levels an on-call person would pick: the takeover from a dead master is a warning; the
# start-up's INIT -> FAULT ("waiting for the tracked lbd") is information.
grep -q "level=warn .*vrid=51 from=BACKUP to=MASTER .*peer watch link closed" "$LAB_DIR/$O-vrrpd.log" ||
    fail "the takeover is not logged as a warning: $(grep 'vrid=51 from=BACKUP to=MASTER' "$LAB_DIR/$O-vrrpd.log" | tail -1)"
grep -q "level=info .*from=INIT to=FAULT" "$LAB_DIR/$O-vrrpd.log" || fail "no start-up FAULT line at info"
grep "from=INIT to=FAULT" "$LAB_DIR/$O-vrrpd.log" | grep -qv "level=info" &&
    fail "a start-up FAULT is logged above info: $(grep 'from=INIT to=FAULT' "$LAB_DIR/$O-vrrpd.log" | head -1)"
slack=$(probe_slack A "$t0")
[ "$ms" -le $((skew + 150 + slack)) ] || fail "SIGKILL outage on VIP-A $ms ms > skew $skew + 150 ms + the probe's own $slack ms"
log "MEASURED sigkill_instance: VIP-A $oa (skew ${skew} ms, master down ${down} ms, probe slack ${slack} ms); VIP-B $(outage "$t0" B)"
pass "SIGKILL of $M: VIP-A outage ${ms} ms <= skew $skew + 150 ms + probe slack $slack ms (peer watch link)"

# The killed instance restarts fresh and rejoins as backup (preemption off).
lab_start "$M"
sleep 1.5
[ "$(lab_holders $VIP_A)" = "$O" ] || fail "VIP-A moved back to $M without preemption"
[ "$(group_field "$M" 51 state)" = BACKUP ] || fail "$M did not rejoin as BACKUP"
pass "$M restarted and rejoined as BACKUP"

# Drill 1b: the master of VIP-A is cut off (host lost, network split): nothing closes,
# so VRRP's own timer decides: the master down interval.
M=$(lab_master_of 51)
O=$(other "$M")
down=$(group_field "$O" 51 master_down_ms)
probe_start C $VIP_A
sleep 1
lab_cut "$M"
t0=$LAB_CUT_MS
wait_holder $VIP_A "$O" 3 >/dev/null || fail "VIP-A did not move to $O after the cut"
sleep 1
probe_stop C
oa=$(outage "$t0" C) || fail "no recovery on VIP-A after the cut: $(tail -3 "$WORK/C.probe")"
ms=$(outage_ms "$oa")
grep -q "vrid=51 from=BACKUP to=MASTER .*no advertisement from $(lab_ip "$M")" "$LAB_DIR/$O-vrrpd.log" ||
    fail "survivor's log lacks the master-down reason after the cut"
slack=$(probe_slack C "$t0")
[ "$ms" -le $((down + 150 + slack)) ] || fail "outage after the cut $ms ms > master down $down + 150 + the probe's own $slack ms"
log "MEASURED cut_instance: VIP-A $oa (master down ${down} ms, probe slack ${slack} ms)"
pass "network cut of $M: VIP-A outage ${ms} ms <= master down $down + 150 ms + probe slack $slack ms"
ip -n "$(lab_ns "$M")" link set eth0 up
for i in $(seq 50); do [ "$(group_field "$M" 51 state)" = BACKUP ] && break; sleep 0.1; done
[ "$(group_field "$M" 51 state)" = BACKUP ] || fail "$M did not rejoin as BACKUP after the cut healed"
[ "$(lab_holders $VIP_A)" = "$O" ] || fail "VIP-A not only on $O after the cut healed: $(lab_holders $VIP_A)"
pass "$M rejoined as BACKUP when its network came back"

# Drill 2: kill only lbd on the master of VIP-A; vrrpd sees its channel close at once.
M=$(lab_master_of 51)
O=$(other "$M")
probe_start A2 $VIP_A
sleep 1
lab_kill_lbd "$M"
t0=$LAB_KILLED_MS
while ! lab_holders $VIP_A | grep -qw "$O"; do
    [ $(($(now_ms) - t0)) -lt 3000 ] || fail "VIP-A did not reach $O after lbd died"
    sleep 0.005
done
moved=$(($(became_master_ms "$O" 51) - t0)) # (when $O's vrrpd took it, by its own clock)
# Before the master down interval: the liveness channel moved it, not a timeout (the log
# reason below says so too). The benchmark measures the figure itself (72 ms median,
# release build); here vrrpd runs under ASan and each look spawns ip(8), so a tight
# bound failed at 103 ms once.
down=$(group_field "$O" 51 master_down_ms)
[ "$moved" -lt "$down" ] || fail "VIP-A reached $O $moved ms after lbd died (want < master down $down ms)"
wait_holder $VIP_A "$O" 3 >/dev/null || fail "$M kept VIP-A after the handover"
sleep 1
probe_stop A2
oa=$(outage "$t0" A2) || fail "no recovery after lbd died"
ms=$(outage_ms "$oa")
# (what the client sees adds the probe's own time, as in drill 1: the move itself was
# bounded by the master down interval above, by vrrpd's clock)
slack=$(probe_slack A2 "$t0")
[ "$ms" -lt $((down + slack)) ] || fail "outage after killing lbd is $ms ms (want < master down $down ms + the probe's own $slack ms)"
grep -q "from=MASTER to=FAULT .*reason=\"tracked lbd closed its channel\"" "$LAB_DIR/$M-vrrpd.log" ||
    fail "$M's vrrpd does not say lbd closed its channel"
log "MEASURED sigkill_lbd_only: VIP-A on $O after $moved ms; $oa (probe slack $slack ms)"
pass "lbd killed on $M: VIP-A on $O after $moved ms < master down $down ms; outage ${ms} ms"
# $O is the instance whose network was cut in drill 1b. Its ARP socket kept the
# ENETDOWN of that cut and used to lose the first announcement of this takeover.
# (lbd's death faults both groups, so $O takes both VIPs.)
errs=$(($(group_field "$O" 51 garp_errors) + $(group_field "$O" 52 garp_errors)))
[ "$errs" = 0 ] || fail "$O: $errs gratuitous ARP sends failed after its link came back"
[ "$(group_field "$O" 51 garps_sent)" -ge 1 ] || fail "$O sent no gratuitous ARP for VIP-A"
pass "$O, cut and healed before, announced both VIPs without a failed send"
lab_kill "$M"
lab_start "$M"
sleep 1.5

# Drill 3: planned stop (SIGTERM) of the master of VIP-A: no failed new session. A
# session that starts during the takeover has its SYN dropped by the quiesced old
# holder and retried by TCP a second later: slow, not failed (3 s deadline).
M=$(lab_master_of 51)
O=$(other "$M")
probe_start A3 $VIP_A 3000
probe_start B3 $VIP_B 3000
sleep 1
# A client that has connected to VIP-A on $M and not logged in yet when the stop begins:
# it sends its StartupMessage 600 ms later, after the VIP would have moved had lbd not
# waited for it (the handover begins once the sessions accepted before the stop have
# logged in, at most 1 s).
late_connect $VIP_A
sleep 0.02 # (lbd has accepted it: its listener is never behind)
lab_stop "$M"
t0=$LAB_STOPPED_MS
wait $LATE
sleep 1
probe_stop A3
probe_stop B3
oa=$(outage "$t0" A3)
ob=$(outage "$t0" B3)
# A new session is one that starts once lbd has begun its stop (its shutdown line: the
# listeners are quiesced in the same step): none may fail. A session already under way
# when the VIP moves is cut, as any move of the address cuts it (its packets go to the
# new holder); on a quick host none is (sessions take a few ms), on a loaded slow one a
# few are, and they are counted apart.
tq=$(log_ms "$LAB_DIR/$M-lbd.log" "event=shutdown reason=SIGTERM")
[ -n "$tq" ] || fail "$M's lbd logged no shutdown"
new_failed=$(awk -v t="$tq" '$3 == "fail" && $1 >= t {n++} END {print n + 0}' "$WORK/A3.probe" "$WORK/B3.probe")
in_flight=$(awk -v t="$tq" '$3 == "fail" && $1 < t && $2 >= t {n++} END {print n + 0}' "$WORK/A3.probe" "$WORK/B3.probe")
[ "$new_failed" = 0 ] || fail "planned stop: $new_failed new sessions failed: $(awk -v t="$tq" '$3 == "fail" && $1 >= t' "$WORK/A3.probe" "$WORK/B3.probe" | head -3)"
[ "$(tail -1 "$WORK/late_login.out")" = ok ] ||
    fail "a client connected when the stop began could not log in: $(cat "$WORK/late_login.out")"
grep -q "event=handover_begin" "$LAB_DIR/$M-lbd.log" ||
    fail "$M's lbd did not wait for the client that had connected: $(grep -E 'event=(shutdown|handover_begin)' "$LAB_DIR/$M-lbd.log")"
[ "$(lab_holders $VIP_A)" = "$O" ] || fail "VIP-A not on $O after the planned stop"
grep -q "event=handover vrid=51 reason=\"$(lab_ip "$O") is master now\"" "$LAB_DIR/$M-vrrpd.log" ||
    fail "$M did not keep VIP-A until $O took over"
slow=$(awk '$3 == "ok" && $2 - $1 > 500 { n++ } END { print n + 0 }' "$WORK/A3.probe" "$WORK/B3.probe")
log "MEASURED sigterm_instance: VIP-A $oa; VIP-B $ob; $(grep -c ok "$WORK/A3.probe") sessions ok on A; $slow slower than 500 ms (SYN retried); $in_flight under way at the stop and cut by the move"
pass "planned stop of $M: zero failed new sessions on either VIP ($in_flight under way at the stop were cut by the VIP's move); a client connected at the stop logged in ($(grep -o 'event=handover_begin waited_ms=[0-9]*' "$LAB_DIR/$M-lbd.log" | tail -1))"

# Drill 4: SIGTERM to lbd and vrrpd at the same moment (a container's init, `systemctl
# stop` of both): lbd's drain faults the groups with a handover pending and vrrpd's own
# shutdown comes right behind. The VIPs must stay until the peer has them, as in drill 3.
lab_start "$M" >/dev/null
sleep 1.5
S=$O # the holder of both VIPs now
N=$M
wait_watched "$N" 51 5 || fail "$N does not follow $S"
probe_start A4 $VIP_A 3000
sleep 1
t0=$((${EPOCHREALTIME/./} / 1000))
kill -TERM "$(cat "$LAB_DIR/$S-lbd.pid")" "$(cat "$LAB_DIR/$S-vrrpd.pid")"
for _ in $(seq 100); do kill -0 "$(cat "$LAB_DIR/$S-vrrpd.pid")" 2>/dev/null || break; sleep 0.1; done
sleep 0.5
probe_stop A4
tq=$(log_ms "$LAB_DIR/$S-lbd.log" "event=shutdown reason=SIGTERM")
new_failed=$(awk -v t="${tq:-$t0}" '$3 == "fail" && $1 >= t {n++} END {print n + 0}' "$WORK/A4.probe")
grep -q "event=handover vrid=51 reason=\"$(lab_ip "$N") is master now\"" "$LAB_DIR/$S-vrrpd.log" ||
    fail "$S dropped VIP-A before $N took it: $(grep 'vrid=51' "$LAB_DIR/$S-vrrpd.log" | tail -2)"
[ "$new_failed" = 0 ] || fail "lbd and vrrpd stopped together: $new_failed new sessions failed"
[ "$(lab_holders $VIP_A)" = "$N" ] || fail "VIP-A not on $N after the stop"
pass "lbd and vrrpd of $S stopped at the same moment: VIP-A kept until $N was master, no failed new session"
