#!/bin/bash
# SIGHUP reload: a removed node's established session keeps working and new sessions
# avoid it; a broken config is rejected with file:line:column and the old one stays.
# TCP keepalive on both sockets of a session, and a reloaded keepalive time for new
# sessions (client sockets take theirs from the listener).
# SIGTERM: new sessions are refused, established ones finish, then lbd exits.
source "$(dirname "$0")/lib.sh"

LB=$BASE ADMIN=$((BASE + 9))
for i in 0 1 2; do pg_start "node$i" $((BASE + 1 + i)); done
KA=7s
write_config() { # nodes...
    {
        echo "instance: lb1"
        echo "lbd:"
        echo "  listen: 127.0.0.1:$LB"
        echo "  admin: 127.0.0.1:$ADMIN"
        echo "  timeouts: {drain: 20s}"
        echo "  keepalive: $KA"
        echo "  pool:"
        echo "    health: {type: pg, interval: 500ms, timeout: 400ms, pg_user: postgres}"
        echo "    nodes:"
        for i in "$@"; do echo "      - {name: node$i, address: 127.0.0.1:$((BASE + 1 + i))}"; done
    } >"$WORK/lb.yaml"
}
write_config 0 1 2
lbd_start lb1 "$WORK/lb.yaml" $ADMIN

# A long-lived session, driven line by line.
coproc PSQL { psql -X -h 127.0.0.1 -p $LB -U postgres -d postgres -Atq 2>&1; }
PIDS+=($PSQL_PID)
ask() { echo "$1" >&"${PSQL[1]}"; read -r -t 5 answer <&"${PSQL[0]}" || fail "session did not answer '$1'"; echo "$answer"; }
port=$(ask 'select inet_server_port();')
victim=$((port - BASE - 1))
log "long session is on node$victim ($port)"

# keepalive_secs FILTER...: the keepalive timers of lbd's sockets matching an ss filter.
keepalive_secs() {
    # ss prints 1min, 39sec, 6.328ms (6 s 328 ms), 250ms.
    ss -tnopH state established "$@" | grep "pid=$lb1_PID," | perl -ne \
        'printf "%.3f\n", ($1 // 0) * 60 + ($2 // 0) + ($3 // 0) / 1000 if /timer:\(keepalive,(?:(\d+)min)?(?:(\d+)(?:sec|\.))?(?:(\d+)ms)?/' || true
}
# ss shows one timer per socket: a pending retransmit hides keepalive for a moment.
keepalive_wait() {
    local v
    for _ in $(seq 40); do
        v=$(keepalive_secs "$@")
        [ -n "$v" ] && { echo "$v"; return; }
        sleep 0.05
    done
}
ka=$(keepalive_wait "( sport = :$LB )")
[ -n "$ka" ] && awk -v k="$ka" 'BEGIN { exit !(k > 0 && k <= 7) }' || fail "client socket keepalive: '$ka', expected <= 7 s"
ka=$(keepalive_wait "( dport = :$port )")
[ -n "$ka" ] && awk -v k="$ka" 'BEGIN { exit !(k > 0 && k <= 7) }' || fail "node socket keepalive: '$ka', expected <= 7 s"
pass "keepalive 7 s on the session's client and node sockets"

keep=()
for i in 0 1 2; do [ $i -ne $victim ] && keep+=($i); done
KA=40s write_config "${keep[@]}"
kill -HUP $lb1_PID
wait_for 5 "reload" grep -q "event=reload nodes=2 added=0 removed=1" "$WORK/lb1.log"
[ "$(ask 'select inet_server_port();')" = "$port" ] || fail "established session broke after reload"
for i in $(seq 20); do psql_at $LB 'select inet_server_port()'; done >"$WORK/after"
if grep -qx "$port" "$WORK/after"; then fail "a new session went to the removed node"; fi
pass "reload removed node$victim; its session still answers; new sessions avoid it"
psql -X -h 127.0.0.1 -p $LB -U postgres -d postgres -Atqc 'select pg_sleep(2)' >/dev/null &
sleeper=$!
PIDS+=($sleeper)
sleep 0.5
# The reloaded 40 s on the new session's client socket; the old session keeps its 7 s.
ka=$(keepalive_wait "( sport = :$LB )" | sort -n | tail -1)
[ -n "$ka" ] && awk -v k="$ka" 'BEGIN { exit !(k > 30 && k <= 40) }' || fail "keepalive after reload: '$ka', expected 40 s"
pass "reloaded keepalive (40 s) on a new session's client socket"
wait $sleeper || fail "the pg_sleep session failed"

printf 'lbd:\n  listen: 127.0.0.1:%s\n  pool:\n    nodes: [{address: 127.0.0.1:1, weight: heavy}]\n' $LB >"$WORK/lb.yaml"
kill -HUP $lb1_PID
wait_for 5 "reload rejected" grep -q "event=reload_failed" "$WORK/lb1.log"
grep -q 'event=reload_failed error="[^"]*lb.yaml:4:44: lbd.pool.nodes\[0\].weight: expected a whole number' "$WORK/lb1.log" ||
    fail "reload error lacks file:line:column: $(grep reload_failed "$WORK/lb1.log")"
grep -q '"last_reload_failed":true' <<<"$(curl -fsS "http://127.0.0.1:$ADMIN/status")" || fail "/status hides the failed reload"
[ "$(psql_at $LB 'select 7')" = 7 ] || fail "old config not in force after a bad reload"
pass "bad reload rejected with file:line:column; old config serves"

# Keys that change on restart only: changed together, named in one reload_partial line,
# and the running values kept (before, admin, liveness_socket, user and instance were
# taken silently: /status named the new instance while every log line had the old).
write_config 0 1 2
sed -i -e "s/^instance: lb1/instance: lb9/" -e "s|^  admin: 127.0.0.1:$ADMIN|  admin: 127.0.0.1:$((ADMIN - 1))|" \
    -e "s|^  listen: 127.0.0.1:$LB|  listen: 127.0.0.1:$((LB + 8))\n  liveness_socket: $WORK/new.sock\n  user: nobody\n  relay: auto|" "$WORK/lb.yaml"
"$LBD" --check -c "$WORK/lb.yaml" >/dev/null || fail "test setup: the changed file is invalid: $(cat "$WORK/lb.yaml")"
kill -HUP $lb1_PID
wait_for 5 "reload_partial" grep -q "event=reload_partial " "$WORK/lb1.log"
line=$(grep "event=reload_partial " "$WORK/lb1.log" | tail -1)
grep -q 'restart_needed_for=instance,listen,relay,admin,liveness_socket,user detail="running with the old values"' <<<"$line" ||
    fail "reload_partial does not name every restart-only key: $line"
wait_for 5 "the reload" bash -c "[ \$(grep -c 'event=reload nodes=' '$WORK/lb1.log') -ge 2 ]"
status=$(curl -fsS "http://127.0.0.1:$ADMIN/status") || fail "the admin endpoint moved on reload"
grep -q '"instance":"lb1"' <<<"$status" || fail "/status names another instance after the reload: ${status:0:120}"
curl -fsS -m 1 "http://127.0.0.1:$((ADMIN - 1))/health" >/dev/null 2>&1 && fail "an admin endpoint opened on the new port"
[ ! -e "$WORK/new.sock" ] || fail "a liveness socket appeared at the new path"
[ "$(psql_at $LB 'select 8')" = 8 ] || fail "the running listener stopped serving"
grep "event=reload_partial" "$WORK/lb1.log" | grep -qv "instance=lb1" && fail "a log line names another instance"
pass "restart-only keys (instance, listen, relay, admin, liveness_socket, user): named in reload_partial, old values kept"

kill -TERM $lb1_PID
wait_for 5 "drain starts" grep -q "event=shutdown reason=SIGTERM sessions=1" "$WORK/lb1.log"
if psql_at $LB 'select 1' 2>/dev/null; then fail "new session accepted while draining"; fi
[ "$(ask 'select 5;')" = 5 ] || fail "established session cut by the drain"
kill -0 $lb1_PID || fail "lbd exited before its session ended"
echo '\q' >&"${PSQL[1]}"
wait_for 5 "lbd exits after the last session" bash -c "! kill -0 $lb1_PID"
pass "SIGTERM: refused new sessions, let the open one finish, then exited"
