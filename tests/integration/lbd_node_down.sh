#!/bin/bash
# A node stops while pgbench -C runs through lbd: no transaction fails (lbd retries
# connects and startups the stopping node refuses), no new session goes to the node
# after it is marked down, and the node rejoins after `rise` good checks.
source "$(dirname "$0")/lib.sh"

LB=$BASE ADMIN=$((BASE + 9))
for i in 0 1 2; do pg_start "node$i" $((BASE + 1 + i)); done
pgbench_init_nodes 3
cat >"$WORK/lb.yaml" <<YAML
instance: lb1
lbd:
  listen: 127.0.0.1:$LB
  admin: 127.0.0.1:$ADMIN
  pool:
    retries: 2
    health: {type: pg, interval: 300ms, timeout: 250ms, rise: 2, fall: 2, pg_user: postgres}
    nodes:
      - {name: node0, address: 127.0.0.1:$((BASE + 1))}
      - {name: node1, address: 127.0.0.1:$((BASE + 2))}
      - {name: node2, address: 127.0.0.1:$((BASE + 3))}
YAML
lbd_start lb1 "$WORK/lb.yaml" $ADMIN

pgbench -h 127.0.0.1 -p $LB -U postgres -S -C -c 4 -j 2 -T 8 postgres >"$WORK/pgbench.out" 2>&1 &
BENCH=$!
PIDS+=($BENCH)
sleep 2
log "stopping node1 (smart: running sessions finish, new ones are refused)"
pg_stop node1 smart
wait_for 5 "lbd marks node1 down" grep -q "event=node_state node=node1 from=up to=down" "$WORK/lb1.log"
pass "node1 marked down: $(grep -m1 'node=node1 from=up to=down' "$WORK/lb1.log" | grep -o 'reason=.*')"

for i in $(seq 30); do psql_at $LB 'select inet_server_port()'; done >"$WORK/after_down"
if grep -qx $((BASE + 2)) "$WORK/after_down"; then fail "a new session went to the down node"; fi
pass "30 new sessions after the node went down: none on node1"

wait $BENCH || fail "pgbench -C failed while a node stopped: $(tail -5 "$WORK/pgbench.out")"
grep -q "number of failed transactions: 0 " "$WORK/pgbench.out" || fail "pgbench: $(cat "$WORK/pgbench.out")"
if grep -q "aborted" "$WORK/pgbench.out"; then fail "pgbench clients aborted: $(grep aborted "$WORK/pgbench.out")"; fi
pass "pgbench -C kept working: $(grep -o 'tps = [0-9.]*' "$WORK/pgbench.out" | head -1), 0 failed"

pg_start node1 $((BASE + 2))
wait_for 5 "node1 back up" grep -q "event=node_state node=node1 from=down to=up" "$WORK/lb1.log"
grep -q "node=node1 from=down to=up .*2 passed in a row" "$WORK/lb1.log" || fail "rejoined without 2 good checks"
for i in $(seq 30); do psql_at $LB 'select inet_server_port()'; done >"$WORK/after_up"
grep -qx $((BASE + 2)) "$WORK/after_up" || fail "node1 gets no sessions after rejoining"
pass "node1 rejoined after rise=2 checks and takes sessions again"
