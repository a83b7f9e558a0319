#!/bin/bash
# lbd.workers (issue 23): what only several event loops can get wrong, against real
# PostgreSQL nodes, with `workers: 2` and then the same with `workers: 1`:
# - a CancelRequest that lands on one worker for a session on another reaches its node;
# - max_sessions holds across workers under a burst (the nodes' own backends counted);
# - new sessions spread over the workers; the control socket lists them all; a kill and
#   a drain reach the sessions of every worker; /metrics and /status sum them.
source "$(dirname "$0")/lib.sh"

LB=$BASE ADMIN=$((BASE + 9))
CTL=$(dirname "$LBD")/pgvipctl
SOCK=$WORK/lbd.sock
N0=$((BASE + 1)) N1=$((BASE + 2))
for i in 0 1; do pg_start "node$i" $((BASE + 1 + i)); done

metric() { curl -fsS "http://127.0.0.1:$ADMIN/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
workers_json() { curl -fsS "http://127.0.0.1:$ADMIN/status" | grep -o '"workers":\[[^]]*\]'; }
ends() { grep -c "event=session_end .*end=$1" "$WORK/lbw$W.log" || true; }
backends() { # backends PORT: client backends on a node other than this query's
    psql_at "$1" "select count(*) from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()"
}
# hold N: N idle sessions through lbd, opened one after the other, until released.
hold() {
    coproc HOLD { exec python3 "$ROOT/scripts/idle_sessions.py" $LB "$1" 60; }
    PIDS+=($HOLD_PID)
    read -r -t 15 line <&"${HOLD[0]}" || fail "workers=$W: the idle sessions did not open"
    [ "$line" = "open=$1" ] || fail "workers=$W: idle sessions: $line"
}
release() {
    kill "$HOLD_PID" 2>/dev/null || true
    wait "$HOLD_PID" 2>/dev/null || true
    wait_for 5 "workers=$W: no session left" eval 'test "$(metric lbd_sessions)" = 0'
}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

arm() {
    W=$1
    cat >"$WORK/lbw$W.yaml" <<YAML
instance: lb1
lbd:
  listen: 127.0.0.1:$LB
  admin: 127.0.0.1:$ADMIN
  workers: $W
  control: {socket: $SOCK}
  pool:
    balance: leastconn
    # (tcp: a pg check logs in, and its backend, counted at the wrong moment, made the
    # burst's node0 look like 4 sessions for max_sessions 3)
    health: {type: tcp, interval: 500ms, timeout: 400ms}
    nodes:
      - {name: node0, address: 127.0.0.1:$N0, max_sessions: 3}
      - {name: node1, address: 127.0.0.1:$N1, max_sessions: 3}
YAML
    : >"$WORK/lbw$W.log"
    lbd_start "lbw$W" "$WORK/lbw$W.yaml" $ADMIN
    LBD_PID=${DAEMONS[-1]}
    [ "$(metric lbd_workers)" = "$W" ] || fail "workers=$W: lbd_workers is $(metric lbd_workers)"

    # 1. A cancel on another worker: the sleeping session is alone, on worker 0; the
    #    cancel's connection goes to the loop with the fewest sessions.
    psql -X -h 127.0.0.1 -p $LB -U postgres -d postgres -c "select pg_sleep(30)" >"$WORK/sleep.out" 2>&1 &
    local sleeper=$!
    PIDS+=($sleeper)
    wait_for 5 "workers=$W: the sleep to run on a node" \
        eval 'test "$(psql_at $N0 "select count(*) from pg_stat_activity where query like '"'"'select pg_sleep(30)%'"'"'")$(psql_at $N1 "select count(*) from pg_stat_activity where query like '"'"'select pg_sleep(30)%'"'"'")" != 00'
    local t0=$SECONDS
    kill -INT $sleeper
    wait $sleeper 2>/dev/null || true
    grep -q "canceling statement due to user request" "$WORK/sleep.out" ||
        fail "workers=$W: the cancel did not reach the node: $(cat "$WORK/sleep.out")"
    [ $((SECONDS - t0)) -lt 10 ] || fail "workers=$W: the cancel took $((SECONDS - t0)) s"
    local via
    via=$(grep -o "event=cancel .*outcome=routed .*worker=[0-9]*" "$WORK/lbw$W.log" | tail -1 | grep -o 'worker=[0-9]*$')
    local slept
    slept=$(grep "event=session_end .*app=psql" "$WORK/lbw$W.log" | tail -1 | grep -o 'worker=[0-9]*')
    if [ "$W" -gt 1 ]; then
        [ "$via" != "$slept" ] || fail "workers=$W: the cancel ($via) and its session ($slept) were on the same worker"
    fi
    pass "workers=$W: a cancel handled on $via reached the session on $slept"

    # 2. max_sessions over all workers: 10 clients at once for 2 x 3 slots.
    local i
    for i in $(seq 10); do
        psql -X -h 127.0.0.1 -p $LB -U postgres -d postgres -Atqc "select pg_sleep(2)" >"$WORK/burst.$i" 2>&1 &
        PIDS+=($!)
    done
    sleep 1
    local b0 b1
    b0=$(backends $N0) b1=$(backends $N1)
    wait "${PIDS[@]: -10}" 2>/dev/null || true
    local ok refused
    ok=$(grep -L . "$WORK"/burst.* | wc -l)
    refused=$(grep -l "no database node is available" "$WORK"/burst.* | wc -l)
    [ "$b0" -le 3 ] && [ "$b1" -le 3 ] || fail "workers=$W: backends during the burst: node0 $b0, node1 $b1 (max_sessions 3)"
    [ "$ok" = 6 ] && [ "$refused" = 4 ] || fail "workers=$W: burst: $ok served, $refused refused (want 6 and 4): $(cat "$WORK"/burst.* | sort | uniq -c)"
    rm -f "$WORK"/burst.*
    local spread
    spread=$(grep "event=session_end .*app=psql" "$WORK/lbw$W.log" | tail -10 | grep -o 'worker=[0-9]*' | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}')
    [ "$W" = 1 ] || [ "$(wc -w <<<"$spread")" = 2 ] || fail "workers=$W: the burst stayed on one worker: $spread"
    pass "workers=$W: burst of 10 for 2 x max_sessions 3: 6 served, 4 refused, node backends $b0 and $b1 at most ($spread)"

    # 3. Sessions spread, listed, killed and drained on every worker.
    hold 4
    local js
    js=$(workers_json)
    if [ "$W" = 2 ]; then
        [ "$js" = '"workers":[{"sessions":2,"parked":0},{"sessions":2,"parked":0}]' ] ||
            fail "workers=$W: 4 sessions spread as $js"
    else
        [ "$js" = '"workers":[{"sessions":4,"parked":0}]' ] || fail "workers=$W: $js"
    fi
    [ "$(metric lbd_sessions)" = 4 ] || fail "workers=$W: lbd_sessions $(metric lbd_sessions)"
    local out
    out=$("$CTL" -s "$SOCK" sessions) || fail "workers=$W: pgvipctl sessions: $out"
    [ "$(tail -1 <<<"$out")" = "(4 rows)" ] || fail "workers=$W: sessions listed: $out"
    local k0
    k0=$(ends killed)
    "$CTL" -s "$SOCK" sessions kill node node0 now >/dev/null || fail "workers=$W: kill node0"
    "$CTL" -s "$SOCK" sessions kill node node1 now >/dev/null || fail "workers=$W: kill node1"
    wait_for 5 "workers=$W: the 4 killed sessions to end" eval 'test "$(ends killed)" -ge $((k0 + 4))'
    release
    [ "$W" = 1 ] || grep -q "worker=1" <<<"$(grep "end=killed" "$WORK/lbw$W.log")" ||
        fail "workers=$W: no session of worker 1 was killed"
    hold 4
    local d0
    d0=$(ends node_draining)
    "$CTL" -s "$SOCK" nodes drain node0 >/dev/null || fail "workers=$W: drain node0"
    "$CTL" -s "$SOCK" nodes drain node1 >/dev/null || fail "workers=$W: drain node1"
    wait_for 5 "workers=$W: the 4 idle sessions of the draining nodes to close" \
        eval 'test "$(ends node_draining)" -ge $((d0 + 4))'
    release
    [ "$W" = 1 ] || grep -q "worker=1" <<<"$(grep "end=node_draining" "$WORK/lbw$W.log")" ||
        fail "workers=$W: no session of worker 1 was drained"
    "$CTL" -s "$SOCK" nodes enable node0 >/dev/null || fail "workers=$W: enable node0"
    "$CTL" -s "$SOCK" nodes enable node1 >/dev/null || fail "workers=$W: enable node1"
    pass "workers=$W: 4 idle sessions listed ($js), killed, then drained at idle, on every worker"

    # 4. The counters add up: every connection accepted has its line (a cancel's is
    #    event=cancel).
    local total lines
    total=$(metric lbd_sessions_total)
    lines=$(grep -c "event=session_end\|event=cancel " "$WORK/lbw$W.log")
    [ "$total" = "$lines" ] || fail "workers=$W: lbd_sessions_total $total, lines $lines"
    pass "workers=$W: lbd_sessions_total $total = the session and cancel lines of all workers"
    stop_gracefully "$LBD_PID"
}

arm 2
arm 1
