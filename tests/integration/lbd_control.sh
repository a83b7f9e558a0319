#!/bin/bash
# Runtime control without editing files (issue 22): pgvipctl on lbd's control socket,
# against real PostgreSQL nodes. control.py drives sessions (show, drain at idle, enable,
# kill at idle and now, disable); here: the socket's mode and group, who may change
# things (root yes, a group member who only may look no: refused and logged), every
# change logged with who asked, the views (/status, /metrics) during a drain, a reload
# that keeps what an operator set, weight, and a node removed and added back.
source "$(dirname "$0")/lib.sh"

LB=$BASE ADMIN=$((BASE + 9))
CTL=$(dirname "$LBD")/pgvipctl
SOCK=$WORK/lbd.sock
for i in 0 1; do pg_start "node$i" $((BASE + 1 + i)); done
psql_at $((BASE + 1)) "create table ctl (v int)"
cat >"$WORK/lb.yaml" <<YAML
instance: lb1
lbd:
  listen: 127.0.0.1:$LB
  admin: 127.0.0.1:$ADMIN
  control: {socket: $SOCK, mode: "0660", group: postgres}
  pool:
    balance: roundrobin
    health: {type: pg, interval: 200ms, timeout: 150ms, pg_user: postgres}
    nodes:
      - {name: node0, address: 127.0.0.1:$((BASE + 1))}
      - {name: node1, address: 127.0.0.1:$((BASE + 2))}
YAML
lbd_start lb1 "$WORK/lb.yaml" $ADMIN

# --- the socket: mode, group; who may look, who may change -------------------------
[ "$(stat -c '%a %G' "$SOCK")" = "660 postgres" ] || fail "control socket: $(stat -c '%a %U:%G' "$SOCK")"
out=$("$CTL" -s "$SOCK" nodes) || fail "pgvipctl nodes: $out"
grep -Eq '^ node0 +\| 127\.0\.0\.1:[0-9]+ +\| up +\| ready +\| +1 \| yes' <<<"$out" || fail "nodes show:
$out"
[ "$(tail -1 <<<"$out")" = "(2 rows)" ] || fail "nodes show ends with: $(tail -1 <<<"$out")"
runuser -u postgres -- "$CTL" -s "$SOCK" nodes >/dev/null || fail "a member of the socket's group cannot look"
set +e
out=$(runuser -u postgres -- "$CTL" -s "$SOCK" nodes drain node0 2>&1)
rc=$?
set -e
[ $rc = 1 ] && grep -q "permission denied" <<<"$out" || fail "postgres (no operator) could drain: exit $rc: $out"
grep -q "event=control_refused command=\"nodes drain node0\" uid=$(id -u postgres) " "$WORK/lb1.log" ||
    fail "the refused change is not logged"
set +e
out=$(runuser -u nobody -- "$CTL" -s "$SOCK" nodes 2>&1)
rc=$?
set -e
[ $rc = 2 ] && grep -q "Permission denied" <<<"$out" || fail "nobody could connect: exit $rc: $out"
pass "socket 0660 root:postgres: its group may look, not change (refused, logged); others cannot connect"

# --- sessions, drain, kill, disable (control.py) ------------------------------------
out=$(python3 "$(dirname "$0")/control.py" $LB $((BASE + 1)) $((BASE + 2)) "$CTL" "$SOCK" 2>&1) || fail "$out"
sed 's/^/    /' <<<"$out"
[ "$(psql_at $((BASE + 1)) "select string_agg(v::text, ',' order by v) from ctl")" = "1,2,3" ] ||
    fail "rows on node0: $(psql_at $((BASE + 1)) 'select * from ctl') (expected 1,2,3: 4 was killed now)"
grep -q "event=node_admin node=node0 from=ready to=drain by=\"pgvipctl pid=[0-9]* uid=0\"" "$WORK/lb1.log" ||
    fail "the drain is not logged with who asked"
grep -q 'event=control command="sessions kill [0-9]* now" result=ok uid=0 ' "$WORK/lb1.log" ||
    fail "the kill is not logged"
[ "$(grep -c 'event=session_end .*end=killed_at_idle' "$WORK/lb1.log")" = 1 ] || fail "no session_end with end=killed_at_idle"
pass "sessions: the transactions kept their rows (1,2,3), the one killed now lost its row; logged"

# --- the views during a drain; a reload keeps it; weight ---------------------------
"$CTL" -s "$SOCK" nodes drain node0 >/dev/null
grep -q '^lbd_node_eligible{node="node0"} 0$' <<<"$(curl -fsS "http://127.0.0.1:$ADMIN/metrics")" ||
    fail "lbd_node_eligible of the drained node0 is not 0"
curl -fsS "http://127.0.0.1:$ADMIN/status" | python3 -c '
import json, sys
n = {x["name"]: x for x in json.load(sys.stdin)["nodes"]}
assert n["node0"]["admin"] == "drain" and n["node0"]["new_sessions"] == "drain", n["node0"]
assert n["node1"]["admin"] == "ready" and n["node1"]["new_sessions"] == "yes", n["node1"]
' || fail "/status does not show node0 drained"
"$CTL" -s "$SOCK" nodes weight node1 5 >/dev/null
kill -HUP $lb1_PID
wait_for 5 "the reload" grep -q "event=reload nodes=" "$WORK/lb1.log"
json=$("$CTL" -s "$SOCK" --json nodes)
python3 -c '
import json, sys
n = {x["node"]: x for x in json.loads(sys.argv[1])}
assert n["node0"]["admin"] == "drain", n["node0"]
assert n["node1"]["weight"] == 5, n["node1"]
' "$json" || fail "after a reload: $json"
pass "drain shows in /metrics (eligible 0) and /status; a reload keeps the drain and the weight set at run time"

# --- remove and add back ------------------------------------------------------------
"$CTL" -s "$SOCK" nodes remove node1 >"$WORK/remove.out" && fail "removed node1 while it takes sessions"
grep -q "takes new sessions" "$WORK/remove.out" || fail "remove refused without saying why: $(cat "$WORK/remove.out")"
"$CTL" -s "$SOCK" nodes disable node1 >/dev/null
"$CTL" -s "$SOCK" nodes remove node1 >/dev/null || fail "could not remove the disabled node1"
[ "$("$CTL" -s "$SOCK" nodes names)" = node0 ] || fail "node1 still listed after its removal"
"$CTL" -s "$SOCK" nodes add node1 127.0.0.1:$((BASE + 2)) weight 2 >"$WORK/add.out" || fail "add: $(cat "$WORK/add.out")"
grep -q "lb.yaml to keep it" "$WORK/add.out" || fail "add does not say how to keep it: $(cat "$WORK/add.out")"
wait_for 5 "the added node1 up" bash -c "'$CTL' -s '$SOCK' --json nodes | grep -q '\"node\":\"node1\",[^}]*\"health\":\"up\"'"
out=$(psql -X -h 127.0.0.1 -p $LB -U postgres -d postgres -Atqc "select inet_server_port()")
[ "$out" = $((BASE + 2)) ] || fail "with node0 drained, a new session went to port $out, not the added node1"
"$CTL" -s "$SOCK" nodes add node2 127.0.0.1:$((BASE + 2)) >"$WORK/add2.out" && fail "a second node with node1's address was added"
grep -q 'already has that address' "$WORK/add2.out" || fail "duplicate address: $(cat "$WORK/add2.out")"
"$CTL" -s "$SOCK" nodes add node3 db.example:5432 >"$WORK/add3.out" && fail "a host name was resolved on the loop"
grep -q 'host names go in the file' "$WORK/add3.out" || fail "host name: $(cat "$WORK/add3.out")"
pass "remove needs a drained node without sessions; add puts it back, up after its first check, and says how to keep it"

# --- bad input ----------------------------------------------------------------------
set +e
"$CTL" -s "$SOCK" nodes drain nosuch >"$WORK/bad.out"; rc1=$?
"$CTL" -s "$SOCK" frobnicate >>"$WORK/bad.out"; rc2=$?
"$CTL" -s "$WORK/none.sock" nodes 2>>"$WORK/bad.out"; rc3=$?
set -e
[ "$rc1 $rc2 $rc3" = "1 1 2" ] || fail "exit codes for bad input: $rc1 $rc2 $rc3: $(cat "$WORK/bad.out")"
grep -q 'no node "nosuch"' "$WORK/bad.out" && grep -q 'unknown command "frobnicate"' "$WORK/bad.out" &&
    grep -q 'cannot connect to lbd at .*is it running' "$WORK/bad.out" || fail "bad input messages: $(cat "$WORK/bad.out")"
# A line without an end, longer than the socket takes: refused, lbd serves on.
python3 - "$SOCK" >"$WORK/long.out" 2>&1 <<'PY' || true
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(b"x" * 5000)
print(s.recv(4096).decode())
PY
grep -q 'line too long' "$WORK/long.out" || fail "a 5000-byte line: $(head -c 200 "$WORK/long.out")"
"$CTL" -s "$SOCK" status >/dev/null || fail "lbd does not answer after bad input"
pass "bad input: unknown node or command exit 1 with the reason, no lbd exit 2 with a hint, a long line refused"
