#!/bin/bash
# vrrpd reloads its configuration on SIGHUP (systemctl reload): a raised priority with
# preemption takes the VIP over; a broken file is rejected with its place and changes
# nothing; a VIP added on both instances is held by the master only and announced; a
# new advertisement interval reaches the backup through the adverts (RFC 5798 6.4.2);
# a key that needs a restart is named, not silently ignored.
source "$(dirname "$0")/lablib.sh"
export LAB_NODES=0 LAB_LBD=0 LAB_INTERVAL=100ms
lab_up >/dev/null || fail "lab did not come up"
[ "$(lab_holders $VIP_A)" = lb1 ] && [ "$(lab_holders $VIP_B)" = lb2 ] ||
    fail "start: VIP-A on '$(lab_holders $VIP_A)', VIP-B on '$(lab_holders $VIP_B)'"
VIP_C=10.77.0.102
hup() { kill -HUP "$(cat "$LAB_DIR/$1-vrrpd.pid")"; }
alive() { kill -0 "$(cat "$LAB_DIR/$1-vrrpd.pid")" 2>/dev/null; }
metrics() { lab_exec "$1" curl -fsS http://127.0.0.1:8082/metrics; }
count_lines() { grep -c "$2" "$LAB_DIR/$1-vrrpd.log" || true; }

# 1. lb2 raises its priority for VIP-A above lb1's and turns preemption on.
sed -i -E '/vrid: 51/ s/priority: 100/priority: 200/; /vrid: 51/ s/preempt: false/preempt: true/' "$LAB_DIR/lb2.yaml"
grep -q "vrid: 51, priority: 200, .*preempt: true" "$LAB_DIR/lb2.yaml" || fail "test setup: sed did not change lb2.yaml"
hup lb2
took=$(wait_holder $VIP_A lb2 3) || fail "VIP-A did not move to lb2 after its reload with priority 200 + preempt"
wait_for 3 "lb2's reload line" grep -q 'event=reload changed="vrid 51 priority 100->200, vrid 51 preempt"' "$LAB_DIR/lb2-vrrpd.log"
wait_for 3 "lb1 backs off" grep -q 'vrid=51 from=MASTER to=BACKUP .*reason="higher priority 200 seen from 10.77.0.12 (ours 150)"' "$LAB_DIR/lb1-vrrpd.log"
[ "$(group_field lb2 51 configured_priority)" = 200 ] || fail "lb2's status: configured_priority $(group_field lb2 51 configured_priority)"
grep -qx "vrrpd_config_reloads_total 1" <<<"$(metrics lb2)" || fail "lb2's metrics do not count the reload"
pass "reload with priority 200 + preempt: VIP-A moved to lb2 after $took ms"

# 2. A broken file is rejected with its place; nothing changes, the daemon stays.
cp "$LAB_DIR/lb1.yaml" "$WORK/lb1.good"
sed -i 's/^  interface: eth0$/  interface: eth0\n  bogus_key: 1/' "$LAB_DIR/lb1.yaml"
line=$(grep -n "bogus_key" "$LAB_DIR/lb1.yaml" | cut -d: -f1)
hup lb1
wait_for 3 "lb1's reload_failed line" grep -q "event=reload_failed error=\".*lb1.yaml:$line:3.*bogus_key" "$LAB_DIR/lb1-vrrpd.log"
alive lb1 || fail "lb1's vrrpd died on a bad reload"
wait_for 3 "the failure in lb1's status" grep -q '"last_reload_failed":true' "$LAB_DIR/lb1-vrrpd.json"
grep -qx "vrrpd_config_last_reload_successful 0" <<<"$(metrics lb1)" || fail "lb1's metrics miss the failed reload"
sleep 0.5
[ "$(lab_holders $VIP_A)" = lb2 ] && [ "$(lab_holders $VIP_B)" = lb2 ] ||
    fail "the bad reload moved a VIP: A on '$(lab_holders $VIP_A)', B on '$(lab_holders $VIP_B)'"
cp "$WORK/lb1.good" "$LAB_DIR/lb1.yaml"
hup lb1
wait_for 3 "lb1 reloads the good file" grep -q '"last_reload_failed":false' "$LAB_DIR/lb1-vrrpd.json"
pass "a bad file is rejected at lb1.yaml:$line:3 and changes nothing; the good one reloads"

# 3. VIP-C joins group 52 on both instances (master lb2 first, then lb1 at once, as an
# operator's loop would): only the master holds it, and a client reaches it.
t1_52=$(count_lines lb1 "vrid=52 from=")
for inst in lb2 lb1; do
    sed -i -E "/vrid: 52/ s/vips: \[$VIP_B\]/vips: [$VIP_B, $VIP_C]/" "$LAB_DIR/$inst.yaml"
    grep -q "vips: \[$VIP_B, $VIP_C\]" "$LAB_DIR/$inst.yaml" || fail "test setup: sed did not add VIP-C to $inst.yaml"
    hup $inst
done
wait_for 3 "lb2 holds VIP-C" bash -c "[ \"\$(ip -n $(lab_ns lb2) -br addr show eth0 | grep -c ' $VIP_C/')\" = 1 ]"
sleep 1
[ "$(lab_holders $VIP_C)" = lb2 ] || fail "VIP-C held by '$(lab_holders $VIP_C)', not only by lb2"
[ "$(lab_holders $VIP_B)" = lb2 ] || fail "VIP-B held by '$(lab_holders $VIP_B)' after the VIP change"
[ "$(count_lines lb1 "vrid=52 from=")" = "$t1_52" ] || fail "lb1 changed state for vrid 52 during the VIP change"
lab_exec client ping -c 1 -W 1 $VIP_C >/dev/null || fail "the client cannot reach VIP-C"
grep -q 'event=reload_vips_changed' "$LAB_DIR/lb2-vrrpd.log" || fail "lb2 did not warn that its peer must have the same VIPs"
pass "VIP-C added on both: held by the master lb2 only, reachable, no transition on lb1"

# 4. A new interval on the master reaches the backup through its adverts.
sed -i -E '/vrid: 52/ s/interval: 100ms/interval: 50ms/' "$LAB_DIR/lb2.yaml"
hup lb2
# lb1 (priority 100) follows lb2's 50 ms: 3 x 50 + (256 - 100) x 50 / 256 = 180 ms.
wait_for 3 "lb1 learns the 50 ms interval" bash -c "grep -o '\"vrid\":52,[^]]*' '$LAB_DIR/lb1-vrrpd.json' | grep -q '\"master_down_ms\":180,'"
pass "interval 100 -> 50 ms on lb2: lb1's master down interval became 180 ms"

# 5. What needs a restart is named.
sed -i 's/^  admin: 127.0.0.1:8082 /  admin: 127.0.0.1:8092 /' "$LAB_DIR/lb1.yaml"
grep -q "admin: 127.0.0.1:8092" "$LAB_DIR/lb1.yaml" || fail "test setup: sed did not change lb1's admin"
hup lb1
wait_for 3 "lb1's reload_partial line" grep -q 'event=reload_partial restart_needed_for=admin ' "$LAB_DIR/lb1-vrrpd.log"
# lb1 reloaded the good file, VIP-C and this one: 3 (the rejected file is not counted).
grep -qx "vrrpd_config_reloads_total 3" <<<"$(metrics lb1)" || fail "lb1's admin endpoint moved or the reload was not counted"
alive lb1 && alive lb2 || fail "a vrrpd died during the reloads"
pass "a restart-only key (admin) is named in reload_partial; the running endpoint stays"
