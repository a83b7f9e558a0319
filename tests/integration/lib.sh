# lib.sh -- shared helpers for the integration tests: real PostgreSQL servers, real
# lbd processes, and a cleanup that runs on every exit (pass, fail or signal), ending
# only the processes this test started, by PID.
set -euo pipefail

PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
LBD=${LBD:?set LBD to the lbd binary}
TOOLS=${TOOLS:-$(dirname "$LBD")/../tests/tools}
TEST_NAME=${TEST_NAME:-$(basename "$0" .sh)}
WORK=$(mktemp -d "/tmp/pgvip-${TEST_NAME}.XXXXXX")
chmod 755 "$WORK"
chown postgres "$WORK" 2>/dev/null || true
PIDS=()    # helpers this test started (clients): SIGKILL at the end
DAEMONS=() # lbd/vrrpd processes: stopped gracefully so sanitizers report
CLUSTERS=()
FAILED=0

# A base port per run so tests can run side by side.
pick_base_port() {
    local base
    for _ in $(seq 50); do
        base=$((20000 + (RANDOM % 1200) * 10)) # below the ephemeral range (32768+)
        # (Listening addresses read first: under pipefail, grep -q leaving early can make
        # the writer die of SIGPIPE and a match count as none.)
        if ! grep -qE ":(${base}|$((base + 1))|$((base + 2))|$((base + 3))|$((base + 4))|$((base + 5))|$((base + 6))|$((base + 7))|$((base + 8))|$((base + 9)))\$" <<<"$(ss -Htln | awk '{print $4}')"; then
            echo "$base"
            return
        fi
    done
    echo "no free port range" >&2
    exit 1
}
BASE=$(pick_base_port)

log() { printf '%s [%s] %s\n' "$(date +%T.%3N)" "$TEST_NAME" "$*"; }
FAIL_WHY=""
fail() {
    FAILED=1
    FAIL_WHY="$*"
    log "FAIL: $*"
    exit 1
}
pass() { log "ok: $*"; }

# stop_gracefully PID...: SIGTERM twice (drain, then close at once), SIGKILL after 5 s.
# A daemon that exits normally runs LeakSanitizer in sanitizer builds.
stop_gracefully() {
    local pid
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 0.2
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 50); do
        local alive=0
        for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ $alive -eq 0 ] && return 0
        sleep 0.1
    done
    for pid in "$@"; do kill -KILL "$pid" 2>/dev/null || true; done
}

# Any sanitizer report in a daemon's log fails the test.
sanitizer_reports() {
    grep -lE "ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:|SUMMARY: .*Sanitizer|Sanitizer has encountered" \
        "$WORK"/*.log "$WORK"/lab/*.log 2>/dev/null || true
}

CLEANUP_HOOKS=() # functions run first at exit (lab teardown)

cleanup() {
    local rc=$?
    local hook
    kill "$WATCHDOG" 2>/dev/null || true
    for hook in "${CLEANUP_HOOKS[@]}"; do "$hook" || true; done
    [ ${#DAEMONS[@]} -gt 0 ] && stop_gracefully "${DAEMONS[@]}"
    for pid in "${PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    local reports
    reports=$(sanitizer_reports)
    if [ -n "$reports" ]; then
        log "FAIL: sanitizer reports in: $reports"
        for f in $reports; do grep -A30 -E "Sanitizer|runtime error" "$f" | head -60; done
        rc=1
    fi
    for c in "${CLUSTERS[@]}"; do
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/$c" stop -m immediate >/dev/null 2>&1 || true
    done
    if [ "$rc" -ne 0 ] || [ "$FAILED" -ne 0 ]; then
        log "logs of the failed run ($WORK):"
        for f in "$WORK"/*.log "$WORK"/lab/*.log; do
            [ -f "$f" ] || continue
            echo "----- $f (last 40 lines)"
            tail -40 "$f"
        done
        # Again below the logs: a CI summary that keeps only the end still says why.
        if [ -n "$FAIL_WHY" ]; then log "FAIL (repeated below the logs): $FAIL_WHY"; fi
    fi
    if [ "${KEEP:-0}" = 1 ]; then
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Watchdog: end the test (and so run cleanup) before ctest's own limit would SIGKILL it
# and leave namespaces and servers behind. Bash runs its TERM trap only once the
# foreground command returns, so a hung command (psql waiting on a dead peer) is ended
# first, by PID, then the test itself. It writes only to a file (the failure dump shows
# it): holding the test's stdout would keep ctest reading until the sleep ends.
TEST_PID=$$
(
    trap 'kill "$nap" 2>/dev/null; exit 0' TERM
    sleep "${TEST_TIMEOUT:-240}" &
    nap=$!
    wait "$nap"
    echo "watchdog: ${TEST_TIMEOUT:-240}s passed; ending the test" >>"$WORK/watchdog.log"
    for c in $(ps -o pid= --ppid "$TEST_PID"); do [ "$c" = "$BASHPID" ] || kill -TERM "$c" 2>/dev/null; done
    kill -TERM "$TEST_PID"
) </dev/null >/dev/null 2>&1 &
WATCHDOG=$!
disown $WATCHDOG

# pg_start NAME PORT: a fresh PostgreSQL cluster on 127.0.0.1:PORT, trust auth.
pg_start() {
    local name=$1 port=$2
    if [ ! -d "$WORK/template" ]; then
        runuser -u postgres -- "$PGBIN/initdb" -D "$WORK/template" -A trust -U postgres \
            --no-sync >/dev/null
    fi
    [ -d "$WORK/$name" ] || cp -a "$WORK/template" "$WORK/$name"
    CLUSTERS+=("$name")
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/$name" -w -t 30 -l "$WORK/$name.log" \
        -o "-p $port -k $WORK -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
        start >/dev/null
}

pgbench_init_nodes() { # pgbench_init_nodes COUNT: pgbench tables on node0.. at BASE+1..
    local i
    for ((i = 0; i < $1; i++)); do
        runuser -u postgres -- "$PGBIN/pgbench" -h 127.0.0.1 -p $((BASE + 1 + i)) -U postgres \
            -i -s 1 -q postgres >/dev/null 2>&1
    done
}

pg_stop() { # pg_stop NAME [smart|fast|immediate]
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/$1" -w -t 60 stop -m "${2:-fast}" >/dev/null
}

psql_at() { # psql_at PORT SQL
    psql -X -h 127.0.0.1 -p "$1" -U postgres -d postgres -Atqc "$2"
}

# readiness_stub PORT FILE: a node's HTTP readiness endpoint, as CockroachDB's: GET
# /health?ready=1 answers the status code written in FILE (200 ready, 503 draining),
# any other path 404. Waits until it answers.
readiness_stub() {
    python3 - "$1" "$2" >>"$WORK/http$1.log" 2>&1 <<'PY' &
import http.server, sys
port, path = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = int(open(path).read().strip())
        self.send_response(code if self.path == "/health?ready=1" else 404)
        self.end_headers()
        self.wfile.write(b"{}")
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY
    PIDS+=($!)
    disown $!
    wait_for 5 "readiness endpoint on $1" curl -sS -o /dev/null "http://127.0.0.1:$1/health?ready=1"
}

# lbd_start NAME CONFIG ADMIN_PORT: run lbd in the background, wait for /health.
lbd_start() {
    local name=$1 cfg=$2 admin=$3
    "$LBD" -c "$cfg" >>"$WORK/$name.log" 2>&1 &
    DAEMONS+=($!)
    eval "${name}_PID=$!"
    disown $! # ended by PID in cleanup; no job-control noise
    wait_for 10 "lbd $name healthy" curl -fsS "http://127.0.0.1:$admin/health" -o /dev/null
    # A run with PGVIP_LBD_WORKERS (CMake's *_w1 tests) must really have that many loops.
    if [ -n "${PGVIP_LBD_WORKERS:-}" ] && ! grep -q "^  workers:" "$cfg"; then
        wait_for 5 "lbd $name with $PGVIP_LBD_WORKERS worker(s)" \
            grep -q "event=workers workers=$PGVIP_LBD_WORKERS " "$WORK/$name.log"
    fi
}

# wait_for SECONDS WHAT CMD...: poll CMD every 50 ms until it succeeds.
wait_for() {
    local limit=$1 what=$2
    shift 2
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || fail "timed out after ${limit}s waiting for: $what"
        sleep 0.05
    done
}

# now_ms: wall clock in milliseconds.
now_ms() { date +%s%3N; }
