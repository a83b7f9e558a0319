#!/bin/bash
# Maintenance without a dip (issue 22): when a node drains (its readiness check answers
# 503, as CockroachDB's does), lbd closes each of its sessions at the session's first
# idle moment with the FATAL 57P01 PostgreSQL sends when an administrator ends a
# session, and never inside a transaction (drain_idle.py). Then pgbench -C through a
# drain of a node: no failed transaction. Real PostgreSQL nodes; HTTP readiness stubs.
source "$(dirname "$0")/lib.sh"

LB=$BASE ADMIN=$((BASE + 9))
for i in 0 1; do pg_start "node$i" $((BASE + 1 + i)); done
psql_at $((BASE + 1)) "create table drained (v int)"
for i in 0 1; do
    echo 200 >"$WORK/ready.$i"
    readiness_stub $((BASE + 5 + i)) "$WORK/ready.$i"
done
cat >"$WORK/lb.yaml" <<YAML
instance: lb1
lbd:
  listen: 127.0.0.1:$LB
  admin: 127.0.0.1:$ADMIN
  pool:
    balance: roundrobin
    health: {type: http, interval: 200ms, timeout: 150ms, rise: 2, fall: 3}
    nodes:
      - {name: node0, address: 127.0.0.1:$((BASE + 1)), check_port: $((BASE + 5))}
      - {name: node1, address: 127.0.0.1:$((BASE + 2)), check_port: $((BASE + 6))}
YAML
lbd_start lb1 "$WORK/lb.yaml" $ADMIN
wait_for 5 "both nodes up" bash -c "curl -fsS http://127.0.0.1:$ADMIN/status | grep -o '\"state\":\"up\"' | wc -l | grep -qx 2"

out=$(python3 "$(dirname "$0")/drain_idle.py" $LB $((BASE + 1)) "$WORK/ready.0" 2>&1) || fail "$out"
sed 's/^/    /' <<<"$out"
[ "$(psql_at $((BASE + 1)) "select string_agg(v::text, ',' order by v) from drained")" = "1,2" ] ||
    fail "the transaction's rows on node0: $(psql_at $((BASE + 1)) 'select * from drained')"
drained=$(curl -fsS "http://127.0.0.1:$ADMIN/metrics" | awk '$1 == "lbd_sessions_drained_total" {print $2}')
[ "$drained" = 2 ] || fail "lbd_sessions_drained_total is $drained, expected 2"
[ "$(grep -c 'event=session_end .*node=node0 .*end=node_draining' "$WORK/lb1.log")" = 2 ] ||
    fail "session lines with end=node_draining: $(grep -c end=node_draining "$WORK/lb1.log")"
pass "drain: the idle session closed at once with 57P01; the one in a transaction committed both rows, then closed; counted and logged"

# pgbench -C (a session per transaction) while node0 drains and comes back: no failure.
echo 200 >"$WORK/ready.0"
wait_for 5 "node0 up again" bash -c "curl -fsS http://127.0.0.1:$ADMIN/status | grep -o '\"state\":\"up\"' | wc -l | grep -qx 2"
echo 'select 1;' >"$WORK/select1.sql"
runuser -u postgres -- "$PGBIN/pgbench" -n -C -c 4 -j 2 -T 6 -f "$WORK/select1.sql" \
    -h 127.0.0.1 -p $LB -U postgres postgres >"$WORK/pgbench.log" 2>&1 &
BENCH=$!
PIDS+=($BENCH)
sleep 1.5
echo 503 >"$WORK/ready.0"
sleep 2
echo 200 >"$WORK/ready.0"
wait $BENCH || fail "pgbench -C failed through the drain: $(tail -5 "$WORK/pgbench.log")"
tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$WORK/pgbench.log")
failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$WORK/pgbench.log")
grep -q "aborted" "$WORK/pgbench.log" && fail "pgbench clients aborted: $(grep aborted "$WORK/pgbench.log")"
[ "${failed:-0}" = 0 ] && [ "${tx:-0}" -gt 0 ] || fail "pgbench -C: $tx transactions, $failed failed"
grep -q "event=node_state node=node0 from=up to=draining" "$WORK/lb1.log" || fail "node0 never drained"
pass "pgbench -C through a drain and return of node0: $tx transactions, 0 failed"

# pool.drain_deadline: a session still busy then is ended (57P01), its transaction rolled
# back; before the deadline it is left alone.
echo 200 >"$WORK/ready.0"
sed -i 's/^    balance: roundrobin$/    balance: roundrobin\n    drain_deadline: 1s/' "$WORK/lb.yaml"
kill -HUP $lb1_PID
wait_for 5 "the reload" bash -c "[ \$(grep -c 'event=reload nodes=' '$WORK/lb1.log') -ge 1 ]"
wait_for 5 "node0 up again" bash -c "curl -fsS http://127.0.0.1:$ADMIN/status | grep -o '\"state\":\"up\"' | wc -l | grep -qx 2"
out=$(python3 "$(dirname "$0")/drain_idle.py" $LB $((BASE + 1)) "$WORK/ready.0" deadline 2>&1) || fail "$out"
sed 's/^/    /' <<<"$out"
[ "$(psql_at $((BASE + 1)) "select count(*) from drained where v = 3")" = 0 ] || fail "the cut transaction's row was stored"
ended=$(curl -fsS "http://127.0.0.1:$ADMIN/metrics" | awk '$1 == "lbd_sessions_drain_deadline_total" {print $2}')
[ "$ended" = 1 ] || fail "lbd_sessions_drain_deadline_total is $ended, expected 1"
pass "drain_deadline 1s: the session still in its transaction was ended with 57P01 after the deadline, its row rolled back"
