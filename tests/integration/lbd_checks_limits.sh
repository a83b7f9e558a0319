#!/bin/bash
# lbd's http check (CockroachDB's /health?ready=1: 200 up, 503 draining), maxconn's
# refusal, and the client idle timeout, against real PostgreSQL servers.
source "$(dirname "$0")/lib.sh"

LB=$BASE ADMIN=$((BASE + 9))
for i in 0 1; do pg_start "node$i" $((BASE + 1 + i)); done
# A readiness endpoint per node: answers with the status code in $WORK/ready.N.
for i in 0 1; do
    echo 200 >"$WORK/ready.$i"
    readiness_stub $((BASE + 5 + i)) "$WORK/ready.$i"
done
cat >"$WORK/lb.yaml" <<YAML
instance: lb1
lbd:
  listen: 127.0.0.1:$LB
  admin: 127.0.0.1:$ADMIN
  maxconn: 3
  timeouts: {client_idle: 1s}
  pool:
    health: {type: http, interval: 200ms, timeout: 150ms, rise: 2, fall: 3}
    nodes:
      - {name: node0, address: 127.0.0.1:$((BASE + 1)), check_port: $((BASE + 5))}
      - {name: node1, address: 127.0.0.1:$((BASE + 2)), check_port: $((BASE + 6))}
YAML
lbd_start lb1 "$WORK/lb.yaml" $ADMIN
wait_for 5 "both nodes up after a 200" bash -c "curl -fsS http://127.0.0.1:$ADMIN/status | grep -o '\"state\":\"up\",[^}]*\"last\":\"http: 200\"' | wc -l | grep -qx 2"

# 1. A 503 (CockroachDB draining) takes the node out at once, not after `fall` checks.
echo 503 >"$WORK/ready.1"
wait_for 2 "node1 draining" grep -q "event=node_state node=node1 from=up to=draining reason=\"http: 503" "$WORK/lb1.log"
for i in $(seq 10); do psql_at $LB 'select inet_server_port()'; done >"$WORK/ports"
if grep -qx $((BASE + 2)) "$WORK/ports"; then fail "a new session went to the draining node"; fi
# (grep -q reads the whole page: quitting at the match would fail curl under pipefail)
grep -q '^lbd_node_draining{node="node1"} 1$' <<<"$(curl -fsS "http://127.0.0.1:$ADMIN/metrics")" || fail "metrics miss draining"
pass "503 from the readiness check: node1 draining, no new sessions for it"
echo 200 >"$WORK/ready.1"
wait_for 3 "node1 back" grep -q "event=node_state node=node1 from=draining to=up" "$WORK/lb1.log"
pass "200 again: node1 back after rise=2"

# 2. A dead HTTP port is a failed check too; fall=3 takes the node down.
kill -KILL "${PIDS[0]}"
wait_for 3 "node0 down" grep -q "event=node_state node=node0 from=up to=down reason=\"connect: connection refused (3 failed in a row)\"" "$WORK/lb1.log"
pass "readiness endpoint gone: node0 down after fall=3"

# 3. maxconn 3: a fourth client gets SQLSTATE 53300 in words.
coproc S1 { psql -X -h 127.0.0.1 -p $LB -U postgres -d postgres -Atq 2>&1; }
coproc S2 { psql -X -h 127.0.0.1 -p $LB -U postgres -d postgres -Atq 2>&1; }
coproc S3 { psql -X -h 127.0.0.1 -p $LB -U postgres -d postgres -Atq 2>&1; }
PIDS+=($S1_PID $S2_PID $S3_PID)
sleep 0.5
set +e
out=$(psql_at $LB 'select 1' 2>&1)
set -e
[[ $out == *"sorry, too many clients already (lbd maxconn)"* ]] || fail "4th session: $out"
pass "maxconn 3: the 4th session is refused with '${out##*FATAL:  }'"

# 4. client_idle 1s: the idle sessions are closed with a log line saying so.
wait_for 4 "idle sessions closed" bash -c "[ \$(grep -c 'end=client_idle_timeout' '$WORK/lb1.log') -ge 3 ]"
[ "$(psql_at $LB 'select 2')" = 2 ] || fail "no room after the idle sessions were closed"
pass "client_idle 1s: the three idle sessions were closed (end=client_idle_timeout)"
