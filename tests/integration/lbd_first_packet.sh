#!/bin/bash
# Be PostgreSQL, exactly, to a client that sends a bad first packet: every case in
# first_packet.py goes to PostgreSQL 15 directly and to lbd in front of it, and what
# comes back (the bytes, with PostgreSQL's source-location fields left out, and how the
# connection ends: closed, reset, or still open) must be the same. Some client libraries
# write a Terminate before their StartupMessage when a connect is abandoned; PostgreSQL
# closes without a word, and an answer they did not expect crashes them.
source "$(dirname "$0")/lib.sh"
FP="python3 $(dirname "$0")/first_packet.py"

LB=$BASE NODE=$((BASE + 1)) ADMIN=$((BASE + 8))
pg_start node0 $NODE
cat >"$WORK/lb.yaml" <<YAML
instance: lb1
lbd:
  listen: 127.0.0.1:$LB
  admin: 127.0.0.1:$ADMIN
  pool:
    health: {type: pg, interval: 500ms, timeout: 400ms, pg_user: postgres}
    nodes:
      - {name: node0, address: 127.0.0.1:$NODE}
YAML
lbd_start lb1 "$WORK/lb.yaml" $ADMIN

$FP $NODE >"$WORK/direct.out" || fail "first_packet.py against PostgreSQL failed"
$FP $LB >"$WORK/lbd.out" || fail "first_packet.py against lbd failed"
[ "$(wc -l <"$WORK/direct.out")" -ge 20 ] || fail "only $(wc -l <"$WORK/direct.out") cases ran"
if ! diff -u "$WORK/direct.out" "$WORK/lbd.out" >"$WORK/diff.out"; then
    cat "$WORK/diff.out"
    fail "lbd answered $(grep -c '^+[a-z]' "$WORK/diff.out") bad first packets otherwise than PostgreSQL (diff above: - PostgreSQL, + lbd)"
fi
while read -r name how answer; do
    printf '  %-22s %-5s %s\n' "$name" "$how" "${answer:0:90}"
done <"$WORK/direct.out"
# lbd still serves, and counted what it refused.
[ "$(psql_at $LB 'select 1')" = 1 ] || fail "lbd after the bad packets"
refused=$(curl -fsS "http://127.0.0.1:$ADMIN/metrics" | awk '$1 == "lbd_refused_total{reason=\"bad_packet\"}" {print $2}')
[ "${refused:-0}" -ge 15 ] || fail "only ${refused:-0} bad packets counted"
pass "$(wc -l <"$WORK/direct.out") bad first packets: lbd's answers and closes are PostgreSQL's ($refused counted as bad_packet)"
