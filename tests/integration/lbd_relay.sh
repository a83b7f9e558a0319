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
    # (A generous timeout: pgbench below keeps both cores busy, so a check's backend
    # startup on the nodes can take 400 ms and more; this test is not about checks.)
    health: {type: pg, interval: 1s, timeout: 1s, pg_user: postgres}
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

# Bulk transfers are spliced (bulk.c): the COPY above went through a pipe, not lbd's
# buffers. The rest runs through a second lbd relaying in user space only (lb1 hands a
# session to the kernel after a few queries, COPY in included): in one session, a big
# COPY in (spliced client to node), a pause past the splice's end (250 ms), a COPY
# out (spliced node to client), a pause, and queries, all answered as direct. Then the ends of a splice:
# the client going away mid-transfer, and the node's backend terminated mid-transfer
# (its FATAL error must reach the client: the pipe is emptied before the session ends).
metric() { curl -fsS "http://127.0.0.1:${2:-$ADMIN}/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
[ "$(metric lbd_splice_transfers_total)" -ge 1 ] || fail "the COPY out was not spliced"
[ "$(metric lbd_splice_bytes_total)" -gt 10000000 ] || fail "spliced only $(metric lbd_splice_bytes_total) bytes"
LB2=$((BASE + 5)) ADMIN2=$((BASE + 8))
sed -e "s/127.0.0.1:$LB\$/127.0.0.1:$LB2/" -e "s/127.0.0.1:$ADMIN\$/127.0.0.1:$ADMIN2/" \
    -e "s/^instance: lb1/instance: lb2/" -e "s/^lbd:/lbd:\n  relay: user/" "$WORK/lb.yaml" >"$WORK/lb2.yaml"
lbd_start lb2 "$WORK/lb2.yaml" $ADMIN2
seq 1 400000 | awk '{print $1 "\t" "bulk row " $1 " " $1 * 7}' >"$WORK/rows"
sess() {
    psql -X -At -h 127.0.0.1 -p "$1" -U postgres -d postgres -v ON_ERROR_STOP=1 \
        -c "create temp table tt(a int, b text)" -c "\\copy tt from '$WORK/rows'" \
        -c "select pg_sleep(0.4)" -c "$q" -c "select pg_sleep(0.4)" \
        -c "select count(*), sum(a), md5(string_agg(b, ',' order by a)) from tt" -c "select 40 + 2"
}
direct=$(sess $((BASE + 1)) | md5sum)
proxied=$(sess $LB2 | md5sum)
[ "$direct" = "$proxied" ] || fail "a session with a COPY in, a COPY out and queries differs from direct"
[ "$(sess $LB2 | tail -1)" = 42 ] || fail "no answer after the spliced transfers"
grew=$(metric lbd_splice_bytes_total $ADMIN2)
want=$((2 * ($(wc -c <"$WORK/rows") + 11000000)))
[ "$grew" -gt $want ] || fail "two sessions with a COPY in and a COPY out: $grew bytes spliced, want > $want"
[ "$(metric lbd_splice_transfers_total $ADMIN2)" -ge 4 ] || fail "$(metric lbd_splice_transfers_total $ADMIN2) splices, want 4"
pass "one session: COPY in, pause, COPY out, pause, queries: as direct ($grew bytes spliced in two)"
LB=$LB2

big="copy (select g, repeat(md5(g::text), 8) from generate_series(1, 3000000) g) to stdout"
copying() { # copying: how many node backends still run the big COPY
    local n=0 i
    for i in 0 1 2; do
        n=$((n + $(psql_at $((BASE + 1 + i)) "select count(*) from pg_stat_activity where query like 'copy (select g, repeat%' and pid <> pg_backend_pid()")))
    done
    echo $n
}
ends() { grep -c 'event=session_end' "$WORK/lb2.log"; }
e0=$(ends)
psql -X -h 127.0.0.1 -p $LB -U postgres -d postgres -c "$big" 2>/dev/null | head -c 20000000 >/dev/null || true
wait_for 5 "the session of the client that left to end" eval 'test "$(ends)" -gt "$e0"'
grep 'event=session_end' "$WORK/lb2.log" | tail -1 | grep -q 'bytes_out=[0-9]\{8,\} .*end=client_' ||
    fail "the client that left: $(tail -1 "$WORK/lb2.log")"
wait_for 5 "the node's backend of the client that left to go" eval 'test "$(copying)" -eq 0'
terminate() { # terminate: end the backend of the big COPY, wherever it runs
    for i in 0 1 2; do
        psql_at $((BASE + 1 + i)) "select pg_terminate_backend(pid) from pg_stat_activity where query like 'copy (select g, repeat%' and pid <> pg_backend_pid()" >/dev/null
    done
}
psql -X -h 127.0.0.1 -p $LB -U postgres -d postgres -c "$big" >/dev/null 2>"$WORK/fatal.err" &
cp=$!
wait_for 10 "the big COPY to start" eval 'test "$(copying)" -eq 1'
sleep 0.5
terminate
wait $cp || true
grep -q "terminating connection due to administrator command" "$WORK/fatal.err" ||
    fail "the node's FATAL did not reach the client of a spliced transfer: $(cat "$WORK/fatal.err")"
wait_for 5 "the terminated session to end" \
    grep -q 'event=session_end .*bytes_out=[0-9]\{7,\} .*end=node_closed' "$WORK/lb2.log"
# The node goes away while the client is paused (a full pipe, the backend held in
# ClientWrite): when the client reads again, slowly, it gets every byte lbd took from
# the node, up to the node's close, the pipe's last included.
e0=$(ends)
coproc CUT { python3 "$(dirname "$0")/hostile_client.py" $LB cutoff "$big" 2; }
PIDS+=($CUT_PID)
read -r -t 10 line <&"${CUT[0]}" || fail "the cut-off client did not start"
sleep 1
terminate
read -r -t 60 line <&"${CUT[0]}" || fail "the cut-off client did not finish"
wait_for 5 "the cut-off session to end" eval 'test "$(ends)" -gt "$e0"'
logged=$(grep 'event=session_end' "$WORK/lb2.log" | tail -1 | grep -o 'bytes_out=[0-9]*')
[ "$line" = "read ${logged#bytes_out=}" ] || fail "the cut-off client got '$line', lbd took $logged from the node"
[ "$(psql_at $LB 'select 7 * 6')" = 42 ] || fail "lbd after the ends of spliced transfers"
LB=$BASE
pass "a spliced transfer ends cleanly when the client leaves and when the node terminates it (FATAL relayed; ${logged#bytes_out=} bytes to a paused client, all delivered)"

# A malformed first packet: an HTTP request. PostgreSQL reads its first 4 bytes as a
# length (over 10000) and closes without a byte; so does lbd, and counts it.
exec 3<>/dev/tcp/127.0.0.1/$LB
printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >&3
t0=$(now_ms)
reply=$(timeout 3 cat <&3 | od -An -c | tr -d ' \n' || true)
t1=$(now_ms)
exec 3<&-
[ -z "$reply" ] || fail "an HTTP request got an answer; PostgreSQL sends none: $reply"
[ $((t1 - t0)) -lt 2000 ] || fail "an HTTP request was not closed at once ($((t1 - t0)) ms)"
wait_for 3 "the bad_packet line for the HTTP request" \
    grep -q 'end=bad_packet error="invalid length of startup packet"' "$WORK/lb1.log"
pass "HTTP garbage: closed without a byte, as PostgreSQL closes it"

# SSLRequest: these nodes have no TLS and answer 'N'; lbd relays it, then plaintext works.
out=$(psql "host=127.0.0.1 port=$LB user=postgres dbname=postgres sslmode=prefer" -XAtqc 'select 1') ||
    fail "sslmode=prefer through lbd: $out"
[ "$out" = 1 ] || fail "sslmode=prefer: $out"
set +e
out=$(psql "host=127.0.0.1 port=$LB user=postgres dbname=postgres sslmode=require" -XAtqc 'select 1' 2>&1)
set -e
[[ $out == *"server does not support SSL"* ]] || fail "sslmode=require should see the node's 'N': $out"
pass "SSLRequest negotiation passes through (prefer works, require sees the node's answer)"

# SSLRequest followed by plaintext in the same packet is refused, never relayed: 'N'
# and the FATAL PostgreSQL sends for it (CVE-2021-23214).
exec 3<>/dev/tcp/127.0.0.1/$LB
printf '\x00\x00\x00\x08\x04\xd2\x16\x2fQUERY' >&3
reply=$(timeout 3 cat <&3 | tr -d '\0' || true)
exec 3<&-
[[ $reply == NE*08P01*"received unencrypted data after SSL request"* ]] || fail "SSL injection: $reply"
pass "bytes after SSLRequest are refused as PostgreSQL refuses them"

metrics=$(curl -fsS "http://127.0.0.1:$ADMIN/metrics")
grep -q '^lbd_refused_total{reason="bad_packet"} 2$' <<<"$metrics" || fail "bad_packet metric: $(grep refused <<<"$metrics")"
grep -q '^lbd_node_up{node="node1"} 1$' <<<"$metrics" || fail "node_up metric"
grep -q 'event=session_end .*kind=startup user=postgres database=postgres app=psql' "$WORK/lb1.log" ||
    fail "no session_end log line"
# The line names the address the client used, the retries and the node's backend pid,
# which joins it with pg_stat_activity and the node's own log.
bpid=$(psql_at $LB 'select pg_backend_pid()')
wait_for 3 "the session's line" grep -q "event=session_end .* backend_pid=$bpid " "$WORK/lb1.log"
grep "event=session_end .* backend_pid=$bpid " "$WORK/lb1.log" | grep -q "client=127.0.0.1:[0-9]* vip=127.0.0.1 node=node[0-9] backend_pid=$bpid retries=0 kind=startup" ||
    fail "session line: $(grep "backend_pid=$bpid " "$WORK/lb1.log")"
# Histograms of connect time and session length: every logged session counted once.
metrics=$(curl -fsS "http://127.0.0.1:$ADMIN/metrics")
count=$(awk '$1 == "lbd_session_duration_seconds_count" {print $2}' <<<"$metrics")
inf=$(awk '$1 == "lbd_session_duration_seconds_bucket{le=\"+Inf\"}" {print $2}' <<<"$metrics")
logged=$(grep -c 'event=session_end' "$WORK/lb1.log")
[ -n "$count" ] && [ "$count" = "$inf" ] && [ "$count" -ge "$logged" ] ||
    fail "session duration histogram: count $count, +Inf $inf, $logged session lines"
grep -q '^lbd_session_connect_seconds_bucket{le="0.0005"} [0-9]' <<<"$metrics" || fail "no connect-time histogram"
pass "metrics and session log lines (vip, node, backend_pid $bpid, retries); histograms count $count sessions"
