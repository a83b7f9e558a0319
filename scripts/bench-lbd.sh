#!/bin/bash
# bench-lbd.sh -- lbd against HAProxy (Debian's 2.6) and direct, on the same three
# PostgreSQL 15 nodes on loopback, runs alternated (direct, lbd, haproxy, direct, ...).
# Prints one markdown table with medians, ratios, and the proxies' CPU time per
# transaction (from /proc), and writes it under results/ (not committed).
#
#   sudo bash scripts/bench-lbd.sh [ROUNDS=3] [SECONDS=10]
# Settings: CLIENTS (8), BUILD_DIR (build).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ROUNDS=${1:-3}
SECS=${2:-10}
CLIENTS=${CLIENTS:-8}
LBD=${LBD:-$ROOT/${BUILD_DIR:-build}/lbd/lbd}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }
command -v haproxy >/dev/null || bash scripts/install-deps.sh
[ -x "$LBD" ] || bash scripts/build.sh >/dev/null
WORK=$(mktemp -d /tmp/pgvip-bench.XXXXXX)
chown postgres "$WORK"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for i in 0 1 2; do
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/n$i" stop -m immediate >/dev/null 2>&1 || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
BASE=$((24000 + RANDOM % 1000 * 5))
N0=$((BASE + 1)) N1=$((BASE + 2)) N2=$((BASE + 3)) LB=$((BASE + 4)) HA=$((BASE + 5))

runuser -u postgres -- "$PGBIN/initdb" -D "$WORK/n0" -A trust -U postgres --no-sync >/dev/null
cp -a "$WORK/n0" "$WORK/n1"
cp -a "$WORK/n0" "$WORK/n2"
for i in 0 1 2; do
    port=$((BASE + 1 + i))
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/n$i" -w -l "$WORK/n$i.log" \
        -o "-p $port -k $WORK -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=450 -c shared_buffers=128MB" \
        start >/dev/null
    pgbench -h 127.0.0.1 -p $port -U postgres -i -s 10 -q postgres >/dev/null 2>&1
done

cat >"$WORK/lbd.yaml" <<YAML
instance: bench
lbd:
  listen: 127.0.0.1:$LB
  admin: off
  maxconn: 8000
  pool:
    balance: roundrobin
    health: {type: tcp, interval: 2s, timeout: 1s}
    nodes:
      - {name: n0, address: 127.0.0.1:$N0}
      - {name: n1, address: 127.0.0.1:$N1}
      - {name: n2, address: 127.0.0.1:$N2}
YAML
cat >"$WORK/haproxy.cfg" <<CFG
global
    maxconn 8000
    nbthread 1
defaults
    mode tcp
    timeout connect 2s
    timeout client 1h
    timeout server 1h
listen pg
    bind 127.0.0.1:$HA
    balance roundrobin
    default-server check inter 2s
    server n0 127.0.0.1:$N0
    server n1 127.0.0.1:$N1
    server n2 127.0.0.1:$N2
CFG
"$LBD" -c "$WORK/lbd.yaml" 2>"$WORK/lbd.log" &
LBD_PID=$!
PIDS+=($LBD_PID)
haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
HA_PID=$!
PIDS+=($HA_PID)
sleep 1

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)

# run TARGET MODE -> "tps lat_avg_ms cpu_us_per_tx"
run() {
    local target=$1 mode=$2 port pid="" args=(-S -c "$CLIENTS" -j 2 -T "$SECS" -n)
    case $target in direct) port=$N0 ;; lbd) port=$LB pid=$LBD_PID ;; haproxy) port=$HA pid=$HA_PID ;; esac
    case $mode in simple) args+=(-M simple) ;; prepared) args+=(-M prepared) ;; connect) args+=(-C -M simple) ;; esac
    local t0=0
    [ -n "$pid" ] && t0=$(cpu_ticks "$pid")
    local out
    out=$(pgbench -h 127.0.0.1 -p "$port" -U postgres "${args[@]}" postgres 2>&1)
    local tps lat tx cpu="-"
    tps=$(grep -oP 'tps = \K[0-9.]+' <<<"$out" | head -1)
    lat=$(grep -oP 'latency average = \K[0-9.]+' <<<"$out")
    tx=$(grep -oP 'number of transactions actually processed: \K[0-9]+' <<<"$out")
    if [ -n "$pid" ]; then
        cpu=$(awk -v a="$t0" -v b="$(cpu_ticks "$pid")" -v t="$TICK" -v n="$tx" 'BEGIN { printf "%.1f", (b - a) / t * 1e6 / n }')
    fi
    echo "$tps $lat $cpu"
}

median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

declare -A R
for mode in prepared simple connect; do
    for r in $(seq "$ROUNDS"); do
        for target in direct lbd haproxy; do
            res=$(run $target $mode)
            R[$mode,$target]+="$res"$'\n'
            echo "round $r $mode $target: tps/lat_ms/cpu_us_per_tx = $res" >&2
        done
    done
done

# Memory per idle session: RSS of the proxy before and while 1,000 sessions sit idle.
IDLE=${IDLE_SESSIONS:-1000}
rss_kib() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }
idle_kib() { # idle_kib PORT PID -> KiB per session
    local before after
    before=$(rss_kib "$2")
    coproc IDLEC { python3 "$ROOT/scripts/idle_sessions.py" "$1" "$IDLE" 4; }
    read -r line <&"${IDLEC[0]}"
    [ "$line" = "open=$IDLE" ] || { echo "idle sessions: $line" >&2; echo 0; return; }
    sleep 1
    after=$(rss_kib "$2")
    wait "$IDLEC_PID" 2>/dev/null || true
    awk -v a="$after" -v b="$before" -v n="$IDLE" 'BEGIN { printf "%.2f", (a - b) / n }'
}
LBD_IDLE=$(idle_kib $LB $LBD_PID)
HA_IDLE=$(idle_kib $HA $HA_PID)
echo "idle: lbd $LBD_IDLE KiB/session, haproxy $HA_IDLE KiB/session" >&2

mkdir -p "$ROOT/results"
OUT="$ROOT/results/bench-lbd-$(date +%Y%m%d-%H%M%S).md"
{
    echo "pgbench -S, $CLIENTS clients, ${SECS}s x $ROUNDS alternated rounds, 3 PostgreSQL 15 nodes on loopback, $(nproc) cores. Medians."
    echo
    echo "| mode | direct TPS | lbd TPS | HAProxy TPS | lbd/HAProxy | lbd/direct | lbd lat ms | HAProxy lat ms | lbd CPU us/tx | HAProxy CPU us/tx |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for mode in prepared simple connect; do
        d=$(printf '%s' "${R[$mode,direct]}" | awk '{print $1}' | median)
        l=$(printf '%s' "${R[$mode,lbd]}" | awk '{print $1}' | median)
        h=$(printf '%s' "${R[$mode,haproxy]}" | awk '{print $1}' | median)
        ll=$(printf '%s' "${R[$mode,lbd]}" | awk '{print $2}' | median)
        hl=$(printf '%s' "${R[$mode,haproxy]}" | awk '{print $2}' | median)
        lc=$(printf '%s' "${R[$mode,lbd]}" | awk '{print $3}' | median)
        hc=$(printf '%s' "${R[$mode,haproxy]}" | awk '{print $3}' | median)
        label=$mode
        [ $mode = connect ] && label="-C (new session per tx)"
        awk -v m="$label" -v d="$d" -v l="$l" -v h="$h" -v ll="$ll" -v hl="$hl" -v lc="$lc" -v hc="$hc" \
            'BEGIN { printf "| %s | %.0f | %.0f | %.0f | %.2fx | %.2fx | %.3f | %.3f | %.1f | %.1f |\n", m, d, l, h, l / h, l / d, ll, hl, lc, hc }'
    done
    echo
    awk -v l="$LBD_IDLE" -v h="$HA_IDLE" -v n="$IDLE" 'BEGIN {
        printf "Memory per idle session (%d sessions, RSS growth): lbd %.2f KiB, HAProxy %.2f KiB, ratio %.2fx\n", n, l, h, (h > 0 ? l / h : 0) }'
} | tee "$OUT"
echo "written: $OUT"
