#!/bin/bash
# Node commands reach both instances of the pair (issue 22): a drain given to one lbd's
# control socket is sent, signed with the pair's key (lbd.peer.key_file), to the peer
# lbd over the peer listener, and the answer says what each did; --local keeps it here;
# a peer that is down is reported (exit 1) and this instance still acts, and tells the
# peer what it missed when it is back (the last change of each node, retried). The peer
# listener refuses forged, replayed, stale and non-node commands (peer_control.py).
# Two lbds on loopback, real PostgreSQL nodes.
source "$(dirname "$0")/lib.sh"

CTL=$(dirname "$LBD")/pgvipctl
for i in 0 1; do pg_start "node$i" $((BASE + 1 + i)); done
head -c 32 /dev/urandom | base64 >"$WORK/peer.key"
chmod 600 "$WORK/peer.key"
# lbN: clients on BASE+3+N, peer listener on BASE+5+N, admin on BASE+7+N
for n in 1 2; do
    me=$((BASE + 4 + n)) other=$((BASE + 7 - n))
    cat >"$WORK/lb$n.yaml" <<YAML
instance: lb$n
lbd:
  listen: 127.0.0.1:$((BASE + 2 + n))
  admin: 127.0.0.1:$((BASE + 6 + n))
  control: {socket: $WORK/lb$n.sock}
  peer: {address: 127.0.0.1:$other, listen: 127.0.0.1:$me, key_file: $WORK/peer.key}
  pool:
    health: {type: pg, interval: 200ms, timeout: 150ms, pg_user: postgres}
    nodes:
      - {name: node0, address: 127.0.0.1:$((BASE + 1))}
      - {name: node1, address: 127.0.0.1:$((BASE + 2))}
YAML
    "$LBD" --check -c "$WORK/lb$n.yaml" >/dev/null || fail "lb$n.yaml does not pass --check"
    lbd_start lb$n "$WORK/lb$n.yaml" $((BASE + 6 + n))
done
admin_of() { "$CTL" -s "$WORK/$1.sock" --json nodes | python3 -c "import json,sys; print({n['node']: n['admin'] for n in json.load(sys.stdin)}['$2'])"; }

# --- one command, both instances ----------------------------------------------------
out=$("$CTL" -s "$WORK/lb1.sock" nodes drain node0) || fail "drain through lb1: $out"
grep -q "^lb1: node node0 drain (was ready)" <<<"$out" && grep -q "^lb2: node node0 drain (was ready)" <<<"$out" ||
    fail "the answer does not say what each instance did:
$out"
[ "$(admin_of lb2 node0)" = drain ] || fail "lb2 did not drain node0"
grep -q 'event=node_admin node=node0 from=ready to=drain by="peer lb1 _pgvipctl pid=[0-9]* uid=0_"' "$WORK/lb2.log" ||
    fail "lb2 does not log who asked: $(grep node_admin "$WORK/lb2.log")"
json=$("$CTL" -s "$WORK/lb2.sock" --json nodes enable node0) || fail "enable through lb2: $json"
python3 -c '
import json, sys
lines = [json.loads(x) for x in sys.argv[1].splitlines()]
assert [x["instance"] for x in lines] == ["lb2", "lb1"], lines
assert all("node0 ready (was drain)" in x["message"] for x in lines), lines
' "$json" || fail "--json answer of both: $json"
[ "$(admin_of lb1 node0)" = ready ] || fail "lb1 did not enable node0"
pass "nodes drain/enable given to either lbd act on both; the answer (text, or a JSON line each) says what each did; lb2 logs who asked"

out=$("$CTL" -s "$WORK/lb1.sock" --local nodes disable node1) || fail "--local: $out"
[ "$(grep -c '^lb' <<<"$out")" = 1 ] || fail "--local answered for two: $out"
[ "$(admin_of lb1 node1) $(admin_of lb2 node1)" = "disabled ready" ] || fail "--local reached the peer"
"$CTL" -s "$WORK/lb1.sock" --local nodes enable node1 >/dev/null
pass "--local: this instance only"

# --- the peer listener against forgeries --------------------------------------------
out=$(python3 "$(dirname "$0")/peer_control.py" $((BASE + 6)) $((BASE + 4)) "$WORK/peer.key" 2>&1) || fail "$out"
sed 's/^/    /' <<<"$out"
m=$(curl -fsS "http://127.0.0.1:$((BASE + 8))/metrics")
grep -q '^lbd_peer_control_total{outcome="taken"} 2$' <<<"$m" && grep -q '^lbd_peer_control_total{outcome="refused"} 4$' <<<"$m" ||
    fail "lb2's peer control counters: $(grep lbd_peer_control <<<"$m")"
grep -q 'event=peer_control_refused reason="taken before (a replay)"' "$WORK/lb2.log" || fail "the replay is not logged"
pass "lb2's peer listener took the signed command once and refused the replay, a wrong key, a stale time and a session command (counted, logged)"

# --- the peer down -----------------------------------------------------------------
stop_gracefully $lb2_PID
set +e
out=$("$CTL" -s "$WORK/lb1.sock" nodes drain node1 2>&1)
rc=$?
set -e
[ $rc = 1 ] && grep -q "^lb1: node node1 drain" <<<"$out" && grep -q "the peer lbd (127.0.0.1:$((BASE + 6))) was not told: connection refused" <<<"$out" ||
    fail "with lb2 down: exit $rc: $out"
[ "$(admin_of lb1 node1)" = drain ] || fail "lb1 did not drain node1 with its peer down"
grep -q "this lbd tells it when it is back" <<<"$out" || fail "the answer does not say the peer is told later: $out"
pass "the peer down: this instance acts, the answer says the peer was not told (and will be), exit 1"

# --- the peer back: what it missed reaches it ----------------------------------------
# A weight given meanwhile is kept beside the drain (another kind of change); a --local
# change neither is sent nor drops what is kept. lb2 starts again with node1 ready and
# its file's weight, and within a retry (2 s) has both.
"$CTL" -s "$WORK/lb1.sock" nodes weight node1 5 >/dev/null 2>&1 && fail "weight with lb2 down: exit 0"
"$CTL" -s "$WORK/lb1.sock" --local nodes weight node0 3 >/dev/null || fail "--local weight"
metric() { grep "^$2 " <<<"$(curl -fsS "http://127.0.0.1:$1/metrics")" | awk '{print $2}'; }
[ "$(metric $((BASE + 7)) lbd_peer_control_pending)" = 2 ] || fail "lb1's pending commands: $(metric $((BASE + 7)) lbd_peer_control_pending)"
[ "$(grep -c 'event=peer_pending node=node1 ' "$WORK/lb1.log")" = 2 ] || fail "lb1 does not log what the peer missed: $(grep peer_pending "$WORK/lb1.log")"
st=$("$CTL" -s "$WORK/lb1.sock" --json status)
grep -q '"peer_missed":2[,}]' <<<"$st" || fail "pgvipctl status does not show the 2 commands lb2 missed: $st"
lbd_start lb2 "$WORK/lb2.yaml" $((BASE + 8))
t0=$(now_ms)
weight_of() { "$CTL" -s "$WORK/$1.sock" --json nodes | python3 -c "import json,sys; print({n['node']: n['weight'] for n in json.load(sys.stdin)}['$2'])"; }
lb2_caught_up() { [ "$(admin_of lb2 node1) $(weight_of lb2 node1)" = "drain 5" ]; }
wait_for 5 "lb2 to have node1 drained with weight 5" lb2_caught_up
caught=$(($(now_ms) - t0))
[ "$(weight_of lb2 node0)" = 1 ] || fail "lb2 took lb1's --local weight of node0: $(weight_of lb2 node0)"
grep -q 'event=peer_caught_up node=node1 command="nodes drain node1" .*waited_ms=[0-9]' "$WORK/lb1.log" &&
    grep -q 'event=peer_caught_up node=node1 command="nodes weight node1 5"' "$WORK/lb1.log" ||
    fail "lb1 does not log the peer catching up: $(grep peer_ "$WORK/lb1.log" | tail -3)"
grep -q 'event=node_admin node=node1 from=ready to=drain by="peer lb1 _pgvipctl pid=[0-9]* uid=0_"' "$WORK/lb2.log" ||
    fail "lb2 does not log the drain it was told late: $(grep node_admin "$WORK/lb2.log" | tail -2)"
[ "$(metric $((BASE + 7)) lbd_peer_control_pending)" = 0 ] &&
    [ "$(metric $((BASE + 7)) 'lbd_peer_control_total{outcome="caught_up"}')" = 2 ] ||
    fail "lb1's counters after the catch-up: $(grep lbd_peer_control <<<"$(curl -fsS "http://127.0.0.1:$((BASE + 7))/metrics")")"
grep -q '"peer_missed":0[,}]' <<<"$("$CTL" -s "$WORK/lb1.sock" --json status)" || fail "pgvipctl status after the catch-up: $("$CTL" -s "$WORK/lb1.sock" --json status)"
pass "the peer back: the drain and the weight it missed reach it ${caught} ms after its start (logged, counted, in pgvipctl status meanwhile); the --local weight does not"

# --- a later change supersedes a missed one -----------------------------------------
stop_gracefully $lb2_PID
"$CTL" -s "$WORK/lb1.sock" nodes disable node0 >/dev/null 2>&1 && fail "disable with lb2 down: exit 0"
"$CTL" -s "$WORK/lb1.sock" nodes enable node0 >/dev/null 2>&1 && fail "enable with lb2 down: exit 0"
[ "$(metric $((BASE + 7)) lbd_peer_control_pending)" = 1 ] || fail "enable did not replace the missed disable: $(metric $((BASE + 7)) lbd_peer_control_pending) pending"
lines=$(wc -l <"$WORK/lb2.log")
lbd_start lb2 "$WORK/lb2.yaml" $((BASE + 8))
nothing_pending() { [ "$(metric $((BASE + 7)) lbd_peer_control_pending)" = 0 ]; }
wait_for 5 "lb1 to have nothing pending" nothing_pending
grep -q 'event=peer_caught_up node=node0 command="nodes enable node0"' "$WORK/lb1.log" || fail "the enable did not reach lb2"
tail -n +"$((lines + 1))" "$WORK/lb2.log" | grep 'event=node_admin node=node0' | grep -q 'to=disabled' && fail "the superseded disable reached lb2"
[ "$(admin_of lb2 node0)" = ready ] || fail "lb2's node0: $(admin_of lb2 node0)"
pass "a later change to a node supersedes the one the peer missed: only the enable reaches it"
