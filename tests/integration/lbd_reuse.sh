#!/bin/bash
# Reuse of node connections (lbd.pool.reuse): a client that leaves cleanly leaves its
# node connection, reset with DISCARD ALL, to the next client with the same startup, so
# no new backend is forked. What one client did must not reach the next (settings,
# prepared statements, temporary tables, LISTEN, advisory locks); what lbd cannot
# replay exactly (a ParameterStatus since the startup, an open transaction, a node that
# asked for a password) is never reused; cancel keys are lbd's own, so a client that
# left cannot cancel the next one's query; a backend that dies while kept is not handed
# to anyone; pgbench -C runs on kept connections.
source "$(dirname "$0")/lib.sh"

LB=$BASE ADMIN=$((BASE + 9)) NODE=$((BASE + 1)) PWNODE=$((BASE + 2)) LB2=$((BASE + 3))
ADMIN2=$((BASE + 8))
pg_start node0 $NODE
pg_start node1 $PWNODE
cat >"$WORK/lb.yaml" <<YAML
instance: lb1
lbd:
  listen: 127.0.0.1:$LB
  admin: 127.0.0.1:$ADMIN
  pool:
    reuse: {max_idle: 4, idle: 3s}
    health: {type: pg, interval: 500ms, timeout: 400ms, pg_user: postgres}
    nodes:
      - {name: node0, address: 127.0.0.1:$NODE}
YAML
lbd_start lb1 "$WORK/lb.yaml" $ADMIN
metric() { # metric NAME [ADMIN_PORT]
    local page
    page=$(curl -fsS "http://127.0.0.1:${2:-$ADMIN}/metrics")
    awk -v k="$1" '$1 == k { print $2 }' <<<"$page"
}
q() { PGSSLMODE=${MODE:-disable} psql -X -h 127.0.0.1 -p $LB -U postgres -d postgres -Atq "$@"; }
last_line() { grep "event=session_end" "$WORK/lb1.log" | tail -1; }

# 1. One backend serves client after client, with and without an SSLRequest first
#    (libpq's default sslmode=prefer: lbd answers the node's 'N' itself once it knows).
pids=()
for i in $(seq 6); do pids+=("$(q -c 'select pg_backend_pid()')"); done
for i in $(seq 6); do pids+=("$(MODE=prefer q -c 'select pg_backend_pid()')"); done
distinct=$(printf '%s\n' "${pids[@]}" | sort -u | wc -l)
[ "$distinct" -le 2 ] || fail "12 sessions used $distinct backends: ${pids[*]}"
wait_for 3 "the last session's line" bash -c "grep 'event=session_end' '$WORK/lb1.log' | tail -1 | grep -q 'parked=1'"
taken=$(metric lbd_reuse_taken_total)
[ "${taken:-0}" -ge 10 ] || fail "only ${taken:-0} sessions took a kept connection"
grep -q 'server=reused parked=1' "$WORK/lb1.log" || fail "no session line says server=reused"
status=$(curl -fsS "http://127.0.0.1:$ADMIN/status")
grep -q "\"reuse\":{\"max_idle\":4,\"idle_ms\":3000,\"kept\":[1-4],\"parked\":[0-9]*,\"taken\":$taken," <<<"$status" ||
    fail "/status does not show reuse: $(grep -o '"reuse":{[^}]*}' <<<"$status")"
grep -q '"reuse_kept":[1-4]' <<<"$status" || fail "/status does not show node0's kept connections"
pass "12 sessions (6 with sslmode=prefer) on $distinct backend(s); $taken took a kept connection; /status shows them"

# 2. What a client leaves behind is gone for the next one on the same backend.
pid1=$(q -c "set statement_timeout = '4321ms'; prepare p as select 42;
    create temp table scratch (i int); listen chan; select pg_advisory_lock(7);
    select pg_backend_pid()" | tail -1)
wait_for 3 "the connection parked" bash -c "grep 'event=session_end' '$WORK/lb1.log' | tail -1 | grep -q 'parked=1'"
out=$(q -c "select pg_backend_pid(); show statement_timeout;
    select count(*) from pg_listening_channels();
    select count(*) from pg_locks where locktype = 'advisory';
    select count(*) from pg_prepared_statements; select to_regclass('pg_temp.scratch') is null")
[ "$(sed -n 1p <<<"$out")" = "$pid1" ] || fail "the next session did not get backend $pid1: $out"
[ "$(sed -n 2,6p <<<"$out" | tr '\n' ' ')" = "0 0 0 0 t " ] ||
    fail "the next client saw what the last one left (timeout, listens, locks, prepared, temp table is gone): $(sed -n 2,6p <<<"$out" | tr '\n' ' ')"
pass "backend $pid1 reused: statement_timeout, prepared statement, temp table, LISTEN and advisory lock all reset"
# 2b. A session of several queries is kept too.
n_end=$(grep -c 'event=session_end' "$WORK/lb1.log")
q -c "select 1" -c "select 2" -c "select 3" -c "select 4" -c "select 5" >/dev/null
wait_for 3 "its line" bash -c "[ \$(grep -c 'event=session_end' '$WORK/lb1.log') -gt $n_end ]"
line=$(last_line)
[[ $line == *parked=1* ]] || fail "a session of 5 queries was not kept: $line"
pass "a session of 5 queries: $(grep -o 'parked=[01]' <<<"$line")"

# 3. Never reused: a setting the node reported (DateStyle sends ParameterStatus), a
#    transaction left open. The next session gets a new backend, with the defaults.
pid2=$(q -c "set datestyle = 'German'" -c "select pg_backend_pid()" | tail -1)
wait_for 3 "its line" bash -c "grep 'event=session_end' '$WORK/lb1.log' | tail -1 | grep -q 'parked=0'"
out=$(q -c "select pg_backend_pid()" -c "show datestyle")
[ "$(sed -n 1p <<<"$out")" != "$pid2" ] || fail "a session after a reported setting got its backend $pid2"
[ "$(sed -n 2p <<<"$out")" = "ISO, MDY" ] || fail "DateStyle leaked: $out"
pid3=$(q -c "begin; select pg_backend_pid()" | tail -1)
wait_for 3 "its line" bash -c "grep 'event=session_end' '$WORK/lb1.log' | tail -1 | grep -q 'tx=T .*parked=0'"
[ "$(q -c 'select pg_backend_pid()')" != "$pid3" ] || fail "a session that left a transaction open was reused"
pass "not kept: after a reported setting (next DateStyle ISO, MDY), or with a transaction open"

# 4. Cancel keys are lbd's: the node's key never reaches a client, a departed client's
#    key does not cancel the next client's query, the current one's does.
cat >"$WORK/keys.py" <<'PY'
import socket, struct, sys, time
port = int(sys.argv[1])
def startup():
    body = struct.pack(">I", 3 << 16) + b"user\0postgres\0database\0postgres\0\0"
    return struct.pack(">I", len(body) + 4) + body
def session():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(startup())
    buf, key = b"", None
    while not buf.endswith(b"Z\0\0\0\x05I"):
        buf += s.recv(65536)
    i = 0
    while i < len(buf):
        t, n = buf[i:i+1], struct.unpack(">I", buf[i+1:i+5])[0]
        if t == b"K":
            key = struct.unpack(">II", buf[i+5:i+13])
        i += 1 + n
    return s, key
def query(s, sql):
    s.sendall(b"Q" + struct.pack(">I", len(sql) + 5) + sql.encode() + b"\0")
def answer(s):
    buf = b""
    while not buf.endswith(b"Z\0\0\0\x05I"):
        c = s.recv(65536)
        if not c:
            return b"closed"
        buf += c
    return buf
def cancel(pid, key):
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    c.sendall(struct.pack(">IIII", 16, 80877102, pid, key))
    c.recv(1)
    c.close()
a, ka = session()
a.sendall(b"X\0\0\0\x04"); a.close()
time.sleep(0.5)                       # parked and reset
b, kb = session()
if kb[0] != ka[0]:
    sys.exit("no reuse: pids %d %d" % (ka[0], kb[0]))
if kb[1] == ka[1]:
    sys.exit("the next client got the same secret key")
query(b, "select pg_sleep(1.5)")
time.sleep(0.3)
cancel(*ka)                           # the departed client's key: nothing happens
t = time.time(); r = answer(b)
if b"57014" in r:
    sys.exit("a departed client's key cancelled the next client's query")
query(b, "select pg_sleep(10)")
time.sleep(0.3)
t = time.time(); cancel(*kb); r = answer(b)
if b"57014" not in r or time.time() - t > 3:
    sys.exit("the client's own key did not cancel its query: %r" % r[:80])
print("keys ok pid=%d" % kb[0])
PY
out=$(python3 "$WORK/keys.py" $LB 2>&1) || fail "cancel keys: $out"
grep -q "canceling statement due to user request" "$WORK/node0.log" || fail "the node logged no cancel"
pass "cancel keys: a departed client's key ignored, the current one's cancels ($out)"

# 5. A kept backend that dies (pg_terminate_backend, idle_session_timeout) is dropped,
#    not handed on: the next client gets a fresh one and no error.
pid4=$(q -c "select pg_backend_pid()")
wait_for 3 "kept" bash -c "grep 'event=session_end' '$WORK/lb1.log' | tail -1 | grep -q 'parked=1'"
psql_at $NODE "select pg_terminate_backend($pid4)" >/dev/null
sleep 0.3
out=$(q -c "select pg_backend_pid()" 2>&1) || fail "the session after a killed kept backend: $out"
[ "$out" != "$pid4" ] || fail "a killed backend was handed on"
pass "a kept backend killed on the node is dropped; the next client gets backend $out"

# 6. pgbench -C (a session per transaction), simple and extended protocol: no failures,
#    nearly every session on a kept connection.
runuser -u postgres -- "$PGBIN/pgbench" -h 127.0.0.1 -p $NODE -U postgres -i -s 1 -q postgres >/dev/null 2>&1
for mode in simple prepared; do
    t0=$(metric lbd_reuse_taken_total)
    out=$(pgbench -h 127.0.0.1 -p $LB -U postgres -S -C -M $mode -c 4 -T 3 postgres 2>&1) ||
        fail "pgbench -C -M $mode: $out"
    grep -q "number of failed transactions: 0" <<<"$out" || fail "pgbench -C -M $mode failed: $out"
    tx=$(grep -oP 'actually processed: \K[0-9]+' <<<"$out")
    got=$(($(metric lbd_reuse_taken_total) - t0))
    [ "$got" -ge $((tx * 9 / 10)) ] || fail "-M $mode: $got of $tx sessions on kept connections"
    pass "pgbench -S -C -M $mode: $tx transactions, $got sessions on kept connections, no failures"
done
idle=$(metric lbd_reuse_idle)
[ "${idle:-9}" -le 4 ] || fail "$idle connections kept (max_idle 4)"
# The last sessions' node connections that were not kept are closed as pgbench ends; their
# backends take a moment to exit (a CI run counted one still leaving): what must hold is
# what stays, so count until it settles (2 s at most).
count_backends() {
    psql_at $NODE "select count(*) from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()"
}
for _ in $(seq 40); do
    backends=$(count_backends)
    [ "$backends" -le 4 ] && break
    sleep 0.05
done
[ "$backends" -le 4 ] || fail "$backends backends left on the node 2 s after pgbench (max_idle 4)"

# 7. Kept connections expire after reuse.idle, with a Terminate (no error in the log).
wait_for 6 "kept connections expired" bash -c "[ \"\$(curl -fsS http://127.0.0.1:$ADMIN/metrics | awk '\$1 == \"lbd_reuse_idle\" {print \$2}')\" = 0 ]"
[ "$(metric lbd_reuse_expired_total)" -ge 1 ] || fail "no kept connection counted as expired"
grep -q "could not receive data from client\|unexpected EOF" "$WORK/node0.log" &&
    fail "the node logged a lost client: $(grep -m1 'could not receive\|unexpected EOF' "$WORK/node0.log")"
[ "$(metric lbd_reuse_reset_failed_total)" = 0 ] || fail "resets failed: $(metric lbd_reuse_reset_failed_total)"
pass "at most 4 kept; all expired after idle 3s with a Terminate; no reset failed"

# 8. A node that asks for a password is never reused (lbd could not tell who may use it).
psql_at $PWNODE "create role app login password 'secret'" >/dev/null
sed -i 's/^host *all *all *127.0.0.1\/32 *trust/host all all 127.0.0.1\/32 scram-sha-256/' "$WORK/node1/pg_hba.conf"
grep -qE '^host +all +all +127.0.0.1/32 +scram-sha-256' "$WORK/node1/pg_hba.conf" || fail "could not switch node1 to passwords"
psql_at $PWNODE "select pg_reload_conf()" >/dev/null
sed -e "s/127.0.0.1:$LB/127.0.0.1:$LB2/; s/127.0.0.1:$ADMIN/127.0.0.1:$ADMIN2/; s/127.0.0.1:$NODE/127.0.0.1:$PWNODE/; s/instance: lb1/instance: lb2/" \
    "$WORK/lb.yaml" >"$WORK/lb2.yaml"
lbd_start lb2 "$WORK/lb2.yaml" $ADMIN2
pw=()
for i in 1 2 3; do
    pw+=("$(PGPASSWORD=secret psql -X "host=127.0.0.1 port=$LB2 user=app dbname=postgres sslmode=disable" -Atqc 'select pg_backend_pid()')")
done
[ "$(printf '%s\n' "${pw[@]}" | sort -u | wc -l)" = 3 ] || fail "password sessions shared a backend: ${pw[*]}"
[ "$(metric lbd_reuse_parked_total $ADMIN2)" = 0 ] || fail "a password session's connection was kept"
pass "a node that asks for a password: 3 sessions, 3 backends, nothing kept"
