#!/bin/bash
# A listener that cannot take a connection (no memory for it) closes it and goes on
# accepting (issue 20, point 11). libuv has already accepted the connection when it
# calls back and stops watching the listener until uv_accept() takes it, so a callback
# that returns without taking it wedges the listener for good, silently.
# Allocation failures are injected (common/fault.h, PGVIP_FAULTS): the first 80 client
# sessions, the first 3 admin connections and the first 3 liveness connections fail to
# allocate. 100 clients connect at once, so some of the failures happen in the deferred
# accept of the next loop turn (lbd takes at most 64 connections a turn), outside
# libuv's callback. Every refused connection must be closed at once, and each listener
# must then serve the next one.
source "$(dirname "$0")/lib.sh"

LB=$BASE ADMIN=$((BASE + 9)) SOCK=$WORK/lbd.sock
pg_start node0 $((BASE + 1))
cat >"$WORK/lb.yaml" <<YAML
instance: lb1
lbd:
  listen: 127.0.0.1:$LB
  admin: 127.0.0.1:$ADMIN
  liveness_socket: $SOCK
  pool:
    health: {type: pg, interval: 200ms, timeout: 150ms}
    nodes: [{name: node0, address: 127.0.0.1:$((BASE + 1))}]
YAML
"$LBD" --check -c "$WORK/lb.yaml" >/dev/null || fail "config rejected"
PGVIP_FAULTS="session_alloc=80,httpd_alloc=3,liveness_alloc=3" "$LBD" -c "$WORK/lb.yaml" >>"$WORK/lb1.log" 2>&1 &
LBD_PID=$!
DAEMONS+=($LBD_PID)
disown $LBD_PID
wait_for 5 "lbd listening" grep -q "event=start " "$WORK/lb1.log"

# --- admin: three connections closed without an answer, then the fourth answered ----
codes=""
for i in 1 2 3 4; do
    code=$(curl -s -o /dev/null -m 3 -w '%{http_code}' "http://127.0.0.1:$ADMIN/health" || true)
    codes="$codes $code"
done
[ "$codes" = " 000 000 000 200" ] ||
    fail "admin: expected three connections closed and the fourth answered 200, got:$codes"
pass "admin: 3 connections refused for want of memory, closed at once; the 4th answered 200"

# --- liveness: the same on the unix socket vrrpd watches ------------------------------
python3 - "$SOCK" >"$WORK/liveness.out" 2>&1 <<'PY' || fail "liveness: $(cat "$WORK/liveness.out")"
import socket, sys
seen = []
for i in range(4):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(3)
    s.connect(sys.argv[1])
    try:
        s.sendall(b"ping\n")
        got = s.recv(100)
    except ConnectionError:  # closed (a reset: the ping met a closed socket)
        got = b""
    except socket.timeout:
        got = b"timeout"
    seen.append(got)
    s.close()
print(seen)
closed = [g == b"" for g in seen]
if closed != [True, True, True, False] or not seen[3].startswith(b"lbd ok"):
    sys.exit("expected three closed and an answer to the fourth: %r" % seen)
PY
pass "liveness: 3 connections refused, closed at once; the 4th answered: $(tail -1 "$WORK/liveness.out" | grep -o "b'lbd ok[^']*" | head -1)"

# --- clients: 100 at once, 80 refused -------------------------------------------------
# lbd is stopped while they connect, so all 100 wait in the kernel's queue: its first
# loop turn takes 64 and leaves the 65th with libuv, the next turn's deferred accept
# takes that one (and fails to allocate, outside libuv's callback).
python3 - "$LB" "$LBD_PID" >"$WORK/burst.out" 2>&1 <<'PY' || fail "clients: $(cat "$WORK/burst.out")"
import os, selectors, signal, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
socks = []
os.kill(pid, signal.SIGSTOP)
try:
    for i in range(100):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
    time.sleep(0.2)
finally:
    os.kill(pid, signal.SIGCONT)
# Each refused connection is closed by lbd at once (EOF or reset); a taken one waits for
# its StartupMessage (10 s startup timeout).
sel = selectors.DefaultSelector()
for s in socks:
    sel.register(s, selectors.EVENT_READ)
closed = 0
deadline = time.time() + 3
while time.time() < deadline and closed < 100:
    for key, _ in sel.select(timeout=0.2):
        try:
            data = key.fileobj.recv(10)
        except (ConnectionError, BlockingIOError, OSError):
            data = b""
        if data == b"":
            sel.unregister(key.fileobj)
            closed += 1
print("closed=%d open=%d" % (closed, 100 - closed))
if closed != 80:
    sys.exit("expected 80 connections closed and 20 kept, got closed=%d" % closed)
PY
pass "clients: of 100 at once, the 80 refused for want of memory were closed at once; 20 kept ($(cat "$WORK/burst.out"))"
# The listener goes on: a real session through lbd.
out=$(timeout 5 psql -X -h 127.0.0.1 -p $LB -U postgres -d postgres -Atqc 'select 41 + 1' 2>&1) ||
    fail "the client listener no longer serves after the refusals: $out"
[ "$out" = 42 ] || fail "unexpected answer: $out"
pass "the client listener serves the next session (select 41 + 1 = $out)"

# Counted and logged (at most once a second).
metrics=$(curl -fsS "http://127.0.0.1:$ADMIN/metrics")
accept_failed=$(awk '$1 == "lbd_accept_failed_total" {print $2}' <<<"$metrics")
[ "${accept_failed%.*}" -ge 83 ] || fail "lbd_accept_failed_total is $accept_failed, expected at least 83 (80 sessions + 3 liveness)"
lines=$(grep -c "event=accept_failed" "$WORK/lb1.log" || true)
[ "$lines" -ge 1 ] && [ "$lines" -le 5 ] || fail "accept_failed logged $lines times (expected 1 to a few, rate-limited)"
kill -0 $LBD_PID || fail "lbd died"
pass "counted (lbd_accept_failed_total $accept_failed) and logged $lines time(s), rate-limited"
