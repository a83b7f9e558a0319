#!/bin/bash
# psql, pgbench (simple, extended, prepared, new session per transaction) and COPY
# through lbd against three real PostgreSQL servers; sessions spread evenly; bad first
# packets get an ErrorResponse; SSLRequest negotiation passes through.
source "$(dirname "$0")/lib.sh"

LB=$BASE ADMIN=$((BASE + 9))
for i in 0 1 2; do pg_start "node$i" $((BASE + 1 + i)); done
cat >"$WORK/lb.yaml" <<YAML
instance: lb1
lbd:
  listen: 127.0.0.1:$LB
  admin: 127.0.0.1:$ADMIN
  pool:
    balance: roundrobin
    health: {type: pg, interval: 500ms, timeout: 400ms, pg_user: postgres}
    nodes:
      - {name: node0, address: 127.0.0.1:$((BASE + 1))}
      - {name: node1, address: 127.0.0.1:$((BASE + 2))}
      - {name: node2, address: 127.0.0.1:$((BASE + 3))}
YAML
lbd_start lb1 "$WORK/lb.yaml" $ADMIN

[ "$(psql_at $LB 'select 40 + 2')" = 42 ] || fail "psql through lbd"
pass "psql through lbd"

# Roundrobin: 30 new sessions, 10 per node.
for i in $(seq 30); do psql_at $LB 'select inet_server_port()'; done | sort | uniq -c >"$WORK/spread"
[ "$(wc -l <"$WORK/spread")" -eq 3 ] || fail "sessions went to $(wc -l <"$WORK/spread") nodes: $(cat "$WORK/spread")"
awk '$1 != 10 { exit 1 }' "$WORK/spread" || fail "uneven spread: $(cat "$WORK/spread")"
pass "30 sessions spread 10/10/10"

pgbench_init_nodes 3
for mode in simple extended prepared; do
    out=$(pgbench -h 127.0.0.1 -p $LB -U postgres -S -M $mode -c 8 -j 2 -T 3 postgres 2>&1) ||
        fail "pgbench -M $mode: $out"
    grep -q "number of failed transactions: 0 " <<<"$out" || fail "pgbench -M $mode failures: $out"
    pass "pgbench -S -M $mode: $(grep -o 'tps = [0-9.]*' <<<"$out" | head -1)"
done
out=$(pgbench -h 127.0.0.1 -p $LB -U postgres -S -C -c 4 -j 2 -T 3 postgres 2>&1) || fail "pgbench -C: $out"
grep -q "number of failed transactions: 0 " <<<"$out" || fail "pgbench -C failures: $out"
pass "pgbench -S -C: $(grep -o 'tps = [0-9.]*' <<<"$out" | head -1)"

# COPY out and in, byte for byte the same as direct.
q="copy (select g, md5(g::text) from generate_series(1, 300000) g) to stdout"
direct=$(psql -X -h 127.0.0.1 -p $((BASE + 1)) -U postgres -d postgres -c "$q" | md5sum)
proxied=$(psql -X -h 127.0.0.1 -p $LB -U postgres -d postgres -c "$q" | md5sum)
[ "$direct" = "$proxied" ] || fail "COPY TO through lbd differs from direct"
psql -X -h 127.0.0.1 -p $LB -U postgres -d postgres -qc "create table if not exists t(a int, b text)"
psql -X -h 127.0.0.1 -p $((BASE + 1)) -U postgres -d postgres -qc "create table if not exists t(a int, b text)"
psql -X -h 127.0.0.1 -p $((BASE + 2)) -U postgres -d postgres -qc "create table if not exists t(a int, b text)"
psql -X -h 127.0.0.1 -p $((BASE + 3)) -U postgres -d postgres -qc "create table if not exists t(a int, b text)"
seq 1 100000 | awk '{print $1 "\t" "row" $1}' | psql -X -h 127.0.0.1 -p $LB -U postgres -d postgres -qc "copy t from stdin"
n=0
for i in 0 1 2; do n=$((n + $(psql_at $((BASE + 1 + i)) 'select count(*) from t'))); done
[ "$n" -eq 100000 ] || fail "COPY FROM through lbd stored $n rows, want 100000"
pass "COPY out (300k rows) identical to direct; COPY in stored 100000 rows"

# A malformed first packet: an HTTP request. lbd answers with a PostgreSQL error.
exec 3<>/dev/tcp/127.0.0.1/$LB
printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >&3
reply=$(timeout 3 cat <&3 | tr -d '\0' || true)
exec 3<&-
[[ ${reply:0:1} == E ]] || fail "no ErrorResponse to an HTTP request (got '${reply}')"
[[ $reply == *"invalid startup packet: packet length over 10000 bytes"* ]] || fail "error text: $reply"
[[ $reply == *08P01* ]] || fail "no SQLSTATE 08P01: $reply"
pass "HTTP garbage: ErrorResponse 08P01"

# SSLRequest: these nodes have no TLS and answer 'N'; lbd relays it, then plaintext works.
out=$(psql "host=127.0.0.1 port=$LB user=postgres dbname=postgres sslmode=prefer" -XAtqc 'select 1') ||
    fail "sslmode=prefer through lbd: $out"
[ "$out" = 1 ] || fail "sslmode=prefer: $out"
set +e
out=$(psql "host=127.0.0.1 port=$LB user=postgres dbname=postgres sslmode=require" -XAtqc 'select 1' 2>&1)
set -e
[[ $out == *"server does not support SSL"* ]] || fail "sslmode=require should see the node's 'N': $out"
pass "SSLRequest negotiation passes through (prefer works, require sees the node's answer)"

# SSLRequest followed by plaintext in the same packet is refused, never relayed.
exec 3<>/dev/tcp/127.0.0.1/$LB
printf '\x00\x00\x00\x08\x04\xd2\x16\x2fQUERY' >&3
reply=$(timeout 3 cat <&3 | tr -d '\0' || true)
exec 3<&-
[[ $reply == *"unexpected data after an encryption request"* ]] || fail "SSL injection: $reply"
pass "bytes after SSLRequest are refused"

metrics=$(curl -fsS "http://127.0.0.1:$ADMIN/metrics")
grep -q '^lbd_refused_total{reason="bad_packet"} 2$' <<<"$metrics" || fail "bad_packet metric: $(grep refused <<<"$metrics")"
grep -q '^lbd_node_up{node="node1"} 1$' <<<"$metrics" || fail "node_up metric"
grep -q 'event=session_end .*kind=startup user=postgres database=postgres app=psql' "$WORK/lb1.log" ||
    fail "no session_end log line"
pass "metrics and session log lines"
