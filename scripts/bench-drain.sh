#!/bin/bash
# bench-drain.sh -- node maintenance through lbd and through HAProxy (Debian's 2.6),
# side by side, on the same two PostgreSQL 15 nodes on loopback: a drain, a stop and a
# start of node n0 while pgbench runs, once with a new session per transaction (-C) and
# once with long-lived sessions.
#
#   lbd:     pgvipctl nodes drain n0          (sessions close at their next idle moment)
#   HAProxy: set server pg/n0 state drain     (its runtime API; no new sessions)
#            shutdown sessions server pg/n0   (3 s later: what is left, before the stop)
#   both:    pg_ctl stop -m fast on n0, start it again, then enable / state ready.
#
# pgbench's script is a transaction of three statements (BEGIN; UPDATE; SELECT
# pg_sleep(0.005); END), so a client's abort says where it was cut: in command 1 (BEGIN)
# it was idle, between transactions; in commands 2-4 it was inside one. pgbench ends a
# client at its first error, so an abort also costs the rest of that client's run.
# (With -C a client may also print lbd's FATAL 57P01 that came at the idle moment after
# its last transaction, before its own close: counted as told, not as an abort.)
#
#   sudo bash scripts/bench-drain.sh [SECONDS=16] [CLIENTS=8]
# Prints one markdown table; writes it under results/ (not committed), or to $RESULT.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECS=${1:-16}
CLIENTS=${2:-8}
LBD=${LBD:-$ROOT/${BUILD_DIR:-build}/lbd/lbd}
CTL=$(dirname "$LBD")/pgvipctl
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
[ "$(id -u)" -eq 0 ] || { echo "bench-drain: run as root" >&2; exit 1; }
command -v haproxy >/dev/null && command -v socat >/dev/null || bash scripts/install-deps.sh
[ -x "$LBD" ] && [ -x "$CTL" ] || bash scripts/build.sh >/dev/null
WORK=$(mktemp -d /tmp/pgvip-bench-drain.XXXXXX)
chown postgres "$WORK"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for i in 0 1; do
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/n$i" stop -m immediate >/dev/null 2>&1 || true
    done
    [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
BASE=$((24000 + RANDOM % 1000 * 5))
N0=$((BASE + 1)) N1=$((BASE + 2)) LB=$((BASE + 3)) HA=$((BASE + 4))

pg() { runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/n$1" -w -l "$WORK/n$1.log" "${@:2}" >/dev/null; }
runuser -u postgres -- "$PGBIN/initdb" -D "$WORK/n0" -A trust -U postgres --no-sync >/dev/null
cp -a "$WORK/n0" "$WORK/n1"
for i in 0 1; do
    pg $i -o "-p $((BASE + 1 + i)) -k $WORK -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start
    psql -X -q -h 127.0.0.1 -p $((BASE + 1 + i)) -U postgres -d postgres \
        -c "create table t (id int primary key, v int); insert into t select g, 0 from generate_series(1, 1000) g"
done
cat >"$WORK/tx.sql" <<'SQL'
\set id random(1, 1000)
BEGIN;
UPDATE t SET v = v + 1 WHERE id = :id;
SELECT pg_sleep(0.005);
END;
SQL

cat >"$WORK/lbd.yaml" <<YAML
instance: bench
lbd:
  listen: 127.0.0.1:$LB
  admin: off
  log_sessions: false
  control: {socket: $WORK/lbd.sock}
  pool:
    balance: roundrobin
    health: {type: pg, interval: 200ms, timeout: 150ms, rise: 2, fall: 2, pg_user: postgres}
    nodes:
      - {name: n0, address: 127.0.0.1:$N0}
      - {name: n1, address: 127.0.0.1:$N1}
YAML
cat >"$WORK/haproxy.cfg" <<CFG
global
    maxconn 2000
    stats socket $WORK/haproxy.sock level admin
defaults
    mode tcp
    timeout connect 2s
    timeout client 1h
    timeout server 1h
listen pg
    bind 127.0.0.1:$HA
    balance roundrobin
    default-server check inter 200ms fall 2 rise 2
    server n0 127.0.0.1:$N0
    server n1 127.0.0.1:$N1
CFG
"$LBD" -c "$WORK/lbd.yaml" 2>"$WORK/lbd.log" &
PIDS+=($!)
haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
PIDS+=($!)
sleep 1

ha() { echo "$*" | socat - "UNIX-CONNECT:$WORK/haproxy.sock" >/dev/null; }
# run PROXY MODE -> "transactions aborted inside boundary connect first_error"
run() {
    local proxy=$1 mode=$2 port flag="" log=$WORK/$1-$2.log
    [ "$proxy" = lbd ] && port=$LB || port=$HA
    [ "$mode" = "-C" ] && flag=-C
    runuser -u postgres -- "$PGBIN/pgbench" -n $flag -c "$CLIENTS" -j 2 -T "$SECS" -f "$WORK/tx.sql" \
        -h 127.0.0.1 -p "$port" -U postgres postgres >"$log" 2>&1 &
    local bench=$!
    sleep 3
    if [ "$proxy" = lbd ]; then "$CTL" -s "$WORK/lbd.sock" nodes drain n0 >/dev/null; else ha "set server pg/n0 state drain"; fi
    sleep 3
    [ "$proxy" = haproxy ] && ha "shutdown sessions server pg/n0"
    pg 0 stop -m fast
    sleep 3
    pg 0 -o "-p $N0 -k $WORK -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start
    sleep 1
    if [ "$proxy" = lbd ]; then "$CTL" -s "$WORK/lbd.sock" nodes enable n0 >/dev/null; else ha "set server pg/n0 state ready"; fi
    wait $bench || true
    local tx aborted inside boundary connect saw
    tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$log")
    aborted=$(grep -cE "client [0-9]+ .*aborted" "$log" || true)
    inside=$(grep -cE "client [0-9]+ .*aborted in command [234] " "$log" || true)
    boundary=$(grep -cE "client [0-9]+ .*aborted in command [01] " "$log" || true)
    connect=$(grep -cE "client [0-9]+ .*aborted while establishing connection" "$log" || true)
    # What a client was told: PostgreSQL's FATAL, or a close without a word.
    if grep -q "FATAL:" "$log"; then
        saw="$(grep -m1 -o 'FATAL: .*' "$log" | tr -s ' ') ($(grep -c 'FATAL:' "$log")x)"
    elif grep -q "perhaps the backend died\|server closed the connection" "$log"; then
        saw="the connection closed without a word"
    else
        saw="-"
    fi
    echo "${tx:-0} $aborted $inside $boundary $connect $saw"
}

OUT=${RESULT:-$ROOT/results/bench-drain-$(date +%Y%m%d-%H%M%S).md}
mkdir -p "$(dirname "$OUT")"
{
    echo "Drain, stop and start of node n0 of 2 under pgbench ($CLIENTS clients, ${SECS} s, BEGIN; UPDATE; SELECT pg_sleep(0.005); END)"
    echo
    echo "| sessions | proxy | transactions | clients aborted | cut inside a transaction | between transactions | connecting | what clients were told |"
    echo "|---|---|---:|---:|---:|---:|---:|---|"
    for mode in -C long; do
        for proxy in lbd haproxy; do
            read -r tx ab ins bnd con saw < <(run $proxy $mode)
            label=$([ "$mode" = -C ] && echo "new per transaction (-C)" || echo "long-lived")
            echo "| $label | $proxy | $tx | $ab | $ins | $bnd | $con | $saw |"
        done
    done
    echo
    echo "lbd: pgvipctl nodes drain n0; HAProxy: set server pg/n0 state drain, 3 s later shutdown sessions server pg/n0; then pg_ctl stop -m fast, start, enable / state ready. ($(haproxy -v | head -1 | cut -d' ' -f1-3), $(basename "$PGBIN" | tr -d /) PostgreSQL $("$PGBIN/postgres" -V | awk '{print $3}'))"
} | tee "$OUT"
echo "written: $OUT" >&2
