#!/bin/bash
# The cancel keys lbd hands to clients (with pool.reuse) come from the kernel's CSPRNG
# and cannot be predicted from earlier ones (issue 20, point 4): a client that could
# predict them could cancel another role's query, which PostgreSQL itself refuses.
# secret_keys.py shows its attack predicting every key of the old generator (the
# balancing PRNG, xorshift64*), then runs it on 12 keys from lbd.
source "$(dirname "$0")/lib.sh"

LB=$BASE ADMIN=$((BASE + 9))
pg_start node0 $((BASE + 1))
cat >"$WORK/lb.yaml" <<YAML
instance: lb1
lbd:
  listen: 127.0.0.1:$LB
  admin: 127.0.0.1:$ADMIN
  pool:
    health: {type: none}   # (no check draws between sessions: the old keys came every 2 draws)
    reuse: {max_idle: 4}
    nodes: [{name: node0, address: 127.0.0.1:$((BASE + 1))}]
YAML
lbd_start lb1 "$WORK/lb.yaml" $ADMIN
out=$(python3 "$(dirname "$0")/secret_keys.py" $LB 12 2>&1) || fail "$out"
grep -q "^old generator (xorshift64\*): 3 of 3" <<<"$out" || fail "the attack's self-check: $out"
grep -q "^lbd: 0 of 9 next keys predicted from three (12 distinct keys)" <<<"$out" || fail "$out"
grep -q "server=reused" "$WORK/lb1.log" || fail "no session reused a node connection (the keys were the node's own)"
pass "$(paste -sd';' <<<"$out")"
