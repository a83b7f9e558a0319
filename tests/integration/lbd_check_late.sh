#!/bin/bash
# A node's timeout (a health check's, a session's connect) that fires late because lbd's
# own loop was busy is not the node's failure. libuv runs due timers before it polls for I/O, so after a loop turn
# that ran longer than the check's timeout (a busy worker 0, a host starved of CPU) the
# timeout fires with the node's answer already waiting in the socket; counted as a
# failure, it marks a healthy node down for lbd's own delay. lbd reads the waiting
# answer first (lbd_timeouts_late_total).
# The delay is injected (common/fault.h, PGVIP_FAULTS): the first 3 checks (check_stall)
# and the first 2 sessions' connects (connect_stall) keep lbd's loop busy for their
# timeout + 300 ms right after sending, while a real PostgreSQL answers. A node that
# really does not answer still times out: the last part stops the node (SIGSTOP) and
# wants it down.
source "$(dirname "$0")/lib.sh"

LB=$BASE ADMIN=$((BASE + 9)) NODE=$((BASE + 1))
pg_start node0 $NODE
cat >"$WORK/lb.yaml" <<YAML
instance: lb1
lbd:
  listen: 127.0.0.1:$LB
  admin: 127.0.0.1:$ADMIN
  timeouts: {connect: 200ms}
  pool:
    health: {type: pg, interval: 300ms, timeout: 200ms, rise: 1, fall: 1}
    nodes: [{name: node0, address: 127.0.0.1:$NODE}]
YAML
PGVIP_FAULTS="check_stall=3,connect_stall=2" lbd_start lb1 "$WORK/lb.yaml" $ADMIN

metric() { curl -fsS "http://127.0.0.1:$ADMIN/metrics" | awk -v k="$1" '$1 == k {print $2}'; }
stalled() { # the three stalled checks are over: read late, or failed
    local late failed
    late=$(metric 'lbd_timeouts_late_total{kind="check"}') failed=$(metric 'lbd_node_check_failures_total{node="node0"}')
    [ $((${late:-0} + ${failed:-0})) -ge 3 ]
}
wait_for 8 "the three stalled checks" stalled
sleep 1 # (three more checks, on time)
# not_blamed KIND FAILURES_METRIC LATE WHAT: none of WHAT counted against node0, LATE of
# them read late, node0 never down.
not_blamed() {
    local failures late
    failures=$(metric "$2")
    [ "$failures" = 0 ] ||
        fail "$4 counted against node0: $failures ($(grep -E 'event=(node_state node=node0|session_connect_failed)' "$WORK/lb1.log" | head -2))"
    late=$(metric "lbd_timeouts_late_total{kind=\"$1\"}")
    [ "$late" = "$3" ] || fail "lbd_timeouts_late_total{kind=\"$1\"} is $late, want $3"
    if grep -q "event=node_state node=node0 .*to=down" "$WORK/lb1.log"; then
        fail "node0 was marked down: $(grep 'to=down' "$WORK/lb1.log" | head -1)"
    fi
}
not_blamed check 'lbd_node_check_failures_total{node="node0"}' 3 "checks whose answer waited for lbd's busy loop"
out=$(timeout 5 psql -X -h 127.0.0.1 -p $LB -U postgres -d postgres -Atqc 'select 6 * 7' 2>&1) ||
    fail "a session through lbd: $out"
[ "$out" = 42 ] || fail "unexpected answer: $out"
pass "3 checks whose answer arrived while lbd's loop was busy past their 200 ms timeout: read, not failed (3 late, node0 0 check failures, up)"

# Two sessions whose connect completes while lbd's loop is busy past timeouts.connect
# (200 ms): connected, not failed (a connect failure counts as a failed check: with
# fall 1 the node would go down).
for i in 1 2; do
    out=$(timeout 5 psql -X -h 127.0.0.1 -p $LB -U postgres -d postgres -Atqc "select $i" 2>&1) ||
        fail "session $i through lbd: $out"
done
not_blamed session 'lbd_node_connect_failures_total{node="node0"}' 2 "connects that completed while lbd's loop was busy"
pass "2 sessions whose connect completed while lbd's loop was busy past the 200 ms connect timeout: connected (2 late, node0 0 connect failures)"

# A node that does not answer is still down after its timeout: nothing waits in the
# socket then.
pg_pid=$(head -1 "$WORK/node0/postmaster.pid")
kill -STOP "$pg_pid"
wait_for 3 "node0 down once it stopped answering" \
    bash -c "grep -q 'node=node0 .*to=down' '$WORK/lb1.log'"
kill -CONT "$pg_pid"
grep 'node=node0 .*to=down' "$WORK/lb1.log" | head -1 | grep -q "timeout after 200ms" ||
    fail "node0 went down for another reason: $(grep 'to=down' "$WORK/lb1.log" | head -1)"
late=$(metric 'lbd_timeouts_late_total{kind="check"}')
[ "$late" = 3 ] || fail "lbd_timeouts_late_total{kind=\"check\"} moved for a silent node: $late"
wait_for 3 "node0 up again" bash -c "curl -fsS http://127.0.0.1:$ADMIN/status | grep -q '\"state\":\"up\"'"
pass "a node that stops answering is still down after its 200 ms timeout"
