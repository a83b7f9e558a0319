#!/bin/bash
# Query cancellation through the pair: psql's SIGINT through lbd reaches the right
# node; a cancel sent to the other lbd (the peer) is forwarded and still cancels; a
# key nobody knows follows the pool's policy.
source "$(dirname "$0")/lib.sh"

A=$BASE B=$((BASE + 4)) ADMIN_A=$((BASE + 8)) ADMIN_B=$((BASE + 9))
PEER_A=$((BASE + 5)) PEER_B=$((BASE + 6))
for i in 0 1 2; do pg_start "node$i" $((BASE + 1 + i)); done
for side in a b; do
    if [ $side = a ]; then port=$A admin=$ADMIN_A mine=$PEER_A theirs=$PEER_B; else port=$B admin=$ADMIN_B mine=$PEER_B theirs=$PEER_A; fi
    cat >"$WORK/lb_$side.yaml" <<YAML
instance: lb_$side
lbd:
  listen: 127.0.0.1:$port
  admin: 127.0.0.1:$admin
  peer: {address: 127.0.0.1:$theirs, listen: 127.0.0.1:$mine}
  pool:
    cancel_unknown: all
    health: {type: pg, interval: 500ms, timeout: 400ms, pg_user: postgres}
    nodes:
      - {name: node0, address: 127.0.0.1:$((BASE + 1))}
      - {name: node1, address: 127.0.0.1:$((BASE + 2))}
      - {name: node2, address: 127.0.0.1:$((BASE + 3))}
YAML
done
lbd_start lb_a "$WORK/lb_a.yaml" $ADMIN_A
lbd_start lb_b "$WORK/lb_b.yaml" $ADMIN_B

# 1. psql + SIGINT through lbd A.
psql -X -h 127.0.0.1 -p $A -U postgres -d postgres -c 'select pg_sleep(30)' >"$WORK/psql.out" 2>&1 &
PSQL=$!
PIDS+=($PSQL)
sleep 1
t0=$(now_ms)
kill -INT $PSQL
set +e
wait $PSQL
set -e
t1=$(now_ms)
grep -q "canceling statement due to user request" "$WORK/psql.out" || fail "psql's cancel did not cancel: $(cat "$WORK/psql.out")"
[ $((t1 - t0)) -lt 3000 ] || fail "cancel took $((t1 - t0)) ms"
node=$(grep -m1 "event=cancel .*outcome=routed" "$WORK/lb_a.log" | grep -o 'node=node[0-9]')
[ -n "$node" ] || fail "lbd A did not route the cancel"
grep -q "canceling statement due to user request" "$WORK/${node#node=}.log" || fail "the cancel did not land on $node"
pass "psql SIGINT through lbd: cancelled on $node in $((t1 - t0)) ms"

# 2. Session through A, cancel through B: B does not know the key, forwards to A.
out=$("$TOOLS/pgcancel_peer" 127.0.0.1 $A 127.0.0.1 $B postgres) || fail "cross-lbd cancel: $out"
grep -q "outcome=to_peer" "$WORK/lb_b.log" || fail "lbd B did not forward to its peer"
grep -q "outcome=routed node=node[0-9] via=peer" "$WORK/lb_a.log" || fail "lbd A did not route the forwarded cancel"
pass "cancel via the other lbd: $out"

# 3. An unknown key (right pid, wrong key): forwarded to the peer, which broadcasts it;
#    PostgreSQL ignores the wrong key, so the query runs on.
set +e
out=$(timeout 10 "$TOOLS/pgcancel_peer" 127.0.0.1 $A 127.0.0.1 $A postgres 1)
rc=$?
set -e
[ $rc -ne 0 ] || fail "a wrong key cancelled a query: $out"
grep -q "outcome=to_peer" "$WORK/lb_a.log" || fail "unknown key was not forwarded to the peer"
wait_for 3 "peer broadcast" grep -q "outcome=broadcast nodes=3" "$WORK/lb_b.log"
pass "unknown key: forwarded to the peer, broadcast to 3 nodes, nothing cancelled"
