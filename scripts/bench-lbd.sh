#!/bin/bash
# bench-lbd.sh -- lbd against HAProxy (Debian's 2.6) and direct, on the same three
# PostgreSQL 15 nodes on loopback, runs alternated (direct, lbd, haproxy, direct, ...).
# Prints one markdown table with medians, ratios, latency (average, p99), and the
# proxies' CPU time per 100k transactions (from /proc), and where that time goes: the
# proxies' system calls (perf stat, when perf works here) and context switches (/proc)
# per transaction; COPY of a ~200 MB table to the client; memory per idle session. Writes it under results/ (not committed), or to $RESULT.
#
#   sudo bash scripts/bench-lbd.sh [ROUNDS=3] [SECONDS=10]
# Settings: CLIENTS ("8 64"), MODES ("prepared simple connect"), COPY_ROWS (2000000),
# BUILD_DIR (build), WORKERS ("1 2 ... up to the CPUs": the table is measured once per
# count, lbd with lbd.workers and HAProxy with nbthread equal to it), PROXY_CPUS and
# CLIENT_CPUS (taskset lists: the proxies on some cores, pgbench and PostgreSQL on the
# others, to see scaling on a bigger machine; unset: all share every core).
# The -C mode runs a fourth arm: a second lbd with pool.reuse (max_idle REUSE_IDLE, 64),
# which serves a new session from a kept node connection instead of a new backend.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ROUNDS=${1:-3}
SECS=${2:-10}
CLIENTS=${CLIENTS:-8 64}
MODES=${MODES-prepared simple connect}
WORKERS=${WORKERS:-$(seq -s ' ' 1 "$(nproc)")}
ON_PROXY=() ON_CLIENT=()
[ -n "${PROXY_CPUS:-}" ] && ON_PROXY=(taskset -c "$PROXY_CPUS")
[ -n "${CLIENT_CPUS:-}" ] && ON_CLIENT=(taskset -c "$CLIENT_CPUS")
COPY_ROWS=${COPY_ROWS:-2000000}
LBD=${LBD:-$ROOT/${BUILD_DIR:-build}/lbd/lbd}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }
command -v haproxy >/dev/null || bash scripts/install-deps.sh
command -v perf >/dev/null || apt-get install -y -qq linux-perf >/dev/null 2>&1 || true
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
LBR=$((BASE + 5006)) # (the other ranges end below BASE + 5000)

runuser -u postgres -- "$PGBIN/initdb" -D "$WORK/n0" -A trust -U postgres --no-sync >/dev/null
cp -a "$WORK/n0" "$WORK/n1"
cp -a "$WORK/n0" "$WORK/n2"
for i in 0 1 2; do
    port=$((BASE + 1 + i))
    "${ON_CLIENT[@]}" runuser -u postgres -- "$PGBIN/pg_ctl" -D "$WORK/n$i" -w -l "$WORK/n$i.log" \
        -o "-p $port -k $WORK -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=450 -c shared_buffers=128MB" \
        start >/dev/null
    pgbench -h 127.0.0.1 -p $port -U postgres -i -s 10 -q postgres >/dev/null 2>&1
    # ~200 MB as COPY text: 2M rows of an int and 96 characters.
    [ "$COPY_ROWS" -gt 0 ] && psql -X -q -h 127.0.0.1 -p $port -U postgres -d postgres -c \
        "create table bulk as select g, repeat(md5(g::text), 3) as t from generate_series(1, $COPY_ROWS) g" &
done
wait

cat >"$WORK/lbd.yaml" <<YAML
instance: bench
lbd:
  listen: 127.0.0.1:$LB
  admin: off
  workers: 1
  maxconn: 8000
  pool:
    balance: roundrobin
    health: {type: tcp, interval: 2s, timeout: 1s}
    nodes:
      - {name: n0, address: 127.0.0.1:$N0}
      - {name: n1, address: 127.0.0.1:$N1}
      - {name: n2, address: 127.0.0.1:$N2}
YAML
sed -e "s/127.0.0.1:$LB\$/127.0.0.1:$LBR/; s/^instance: bench/instance: bench-reuse/" \
    -e "s/^    balance: roundrobin/    balance: roundrobin\n    reuse: {max_idle: ${REUSE_IDLE:-64}}/" \
    "$WORK/lbd.yaml" >"$WORK/lbd-reuse.yaml"
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
# start_proxies W: both lbds with lbd.workers W and HAProxy with nbthread W (the ones
# running before are stopped first).
LBD_PID="" LBR_PID="" HA_PID=""
start_proxies() {
    local p
    for p in $LBD_PID $LBR_PID $HA_PID; do
        kill -TERM "$p" 2>/dev/null || true
        kill -TERM "$p" 2>/dev/null || true # (lbd: the second one closes at once)
        wait "$p" 2>/dev/null || true
    done
    sed -i "s/^  workers: .*/  workers: $1/" "$WORK/lbd.yaml" "$WORK/lbd-reuse.yaml"
    sed -i "s/^    nbthread .*/    nbthread $1/" "$WORK/haproxy.cfg"
    "${ON_PROXY[@]}" "$LBD" -c "$WORK/lbd.yaml" 2>"$WORK/lbd-$1.log" &
    LBD_PID=$!
    "${ON_PROXY[@]}" "$LBD" -c "$WORK/lbd-reuse.yaml" 2>"$WORK/lbd-reuse-$1.log" &
    LBR_PID=$!
    "${ON_PROXY[@]}" haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy-$1.log" 2>&1 &
    HA_PID=$!
    PIDS+=($LBD_PID $LBR_PID $HA_PID)
    sleep 1
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
sys_ticks() { awk '{ print $15 }' "/proc/$1/stat"; } # (of which in the kernel)
# Busy time of the whole machine (user, nice, system, irq, softirq): part of any proxy's
# work runs in softirq and kworkers, not in its own CPU time.
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
TICK=$(getconf CLK_TCK)
switches() { awk '/ctxt_switches/ { n += $2 } END { print n }' "/proc/$1/status"; }
# CPU time of the three PostgreSQL servers: each postmaster's own and its reaped
# children's, plus every live child's (a backend that exits between two readings moves
# from the second sum to the first). Shows what a proxy hop costs the database itself.
PMS=$(for i in 0 1 2; do head -1 "$WORK/n$i/postmaster.pid"; done | tr '\n' ' ')
pg_ticks() {
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pms=" $PMS " '{
        pid = $1; sub(/^[0-9]+ \(.*\) /, "")  # (the name may hold spaces)
        if (index(pms, " " pid " ")) n += $12 + $13 + $14 + $15
        else if (index(pms, " " $2 " ")) n += $12 + $13
    } END { print n + 0 }'
}
# System calls are counted by perf (linux-perf) when it can trace here; "-" otherwise.
PERF=0
perf stat -e raw_syscalls:sys_enter -o /dev/null true >/dev/null 2>&1 && PERF=1

# run TARGET MODE CLIENTS -> "tps lat_avg_ms lat_p99_ms cpu_s_per_100k_tx syscalls/tx
#   switches/tx machine_cpu_s_per_100k_tx kernel_%_of_the_proxy's_cpu
#   postgresql_cpu_s_per_100k_tx"
run() {
    local target=$1 mode=$2 c=$3 port pid="" j=2
    [ "$c" -lt 2 ] && j=1
    local args=(-S -c "$c" -j "$j" -T "$SECS" -n --log --sampling-rate=0.05 --log-prefix="$WORK/tx")
    case $target in
    direct) port=$N0 ;; lbd) port=$LB pid=$LBD_PID ;; haproxy) port=$HA pid=$HA_PID ;;
    lbdreuse) port=$LBR pid=$LBR_PID ;;
    esac
    case $mode in simple) args+=(-M simple) ;; prepared) args+=(-M prepared) ;; connect) args+=(-C -M simple) ;; esac
    rm -f "$WORK"/tx.*
    local t0=0 s0=0 k0=0 perfpid="" m0 g0
    m0=$(machine_ticks) g0=$(pg_ticks)
    if [ -n "$pid" ]; then
        t0=$(cpu_ticks "$pid") s0=$(switches "$pid") k0=$(sys_ticks "$pid")
        if [ $PERF = 1 ]; then
            perf stat -e raw_syscalls:sys_enter -x, -o "$WORK/perf.txt" -p "$pid" >/dev/null 2>&1 &
            perfpid=$!
        fi
    fi
    local out
    out=$(cd "$WORK" && "${ON_CLIENT[@]}" pgbench -h 127.0.0.1 -p "$port" -U postgres "${args[@]}" postgres 2>&1)
    local sc="-" cs="-" m1 g1
    m1=$(machine_ticks) g1=$(pg_ticks)
    if [ -n "$perfpid" ]; then
        kill -INT "$perfpid" 2>/dev/null || true
        wait "$perfpid" 2>/dev/null || true
        sc=$(awk -F, '/raw_syscalls/ { print $1 }' "$WORK/perf.txt")
    fi
    local tps lat tx p99 cpu="-" kpct="-"
    tps=$(grep -oP 'tps = \K[0-9.]+' <<<"$out" | head -1)
    lat=$(grep -oP 'latency average = \K[0-9.]+' <<<"$out")
    tx=$(grep -oP 'number of transactions actually processed: \K[0-9]+' <<<"$out")
    # The per-transaction log (5% sample): column 3 is the latency in microseconds.
    p99=$(cat "$WORK"/tx.* | awk '{print $3}' | sort -n | awk '{ a[NR] = $1 } END { i = int(NR * 0.99); if (i < 1) i = 1; printf "%.3f", a[i] / 1000 }')
    if [ -n "$pid" ]; then
        cpu=$(awk -v a="$t0" -v b="$(cpu_ticks "$pid")" -v t="$TICK" -v n="$tx" 'BEGIN { printf "%.2f", (b - a) / t * 1e5 / n }')
        cs=$(awk -v a="$s0" -v b="$(switches "$pid")" -v n="$tx" 'BEGIN { printf "%.2f", (b - a) / n }')
        kpct=$(awk -v a="$t0" -v b="$(cpu_ticks "$pid")" -v ka="$k0" -v kb="$(sys_ticks "$pid")" \
            'BEGIN { if (b > a) printf "%.0f", (kb - ka) * 100 / (b - a); else print "-" }')
        [ "$sc" != "-" ] && [ -n "$sc" ] && sc=$(awk -v a="$sc" -v n="$tx" 'BEGIN { printf "%.2f", a / n }')
        [ -n "$sc" ] || sc="-"
    fi
    local mcpu gcpu
    mcpu=$(awk -v a="$m0" -v b="$m1" -v t="$TICK" -v n="$tx" 'BEGIN { printf "%.2f", (b - a) / t * 1e5 / n }')
    gcpu=$(awk -v a="$g0" -v b="$g1" -v t="$TICK" -v n="$tx" 'BEGIN { printf "%.2f", (b - a) / t * 1e5 / n }')
    echo "$tps $lat $p99 $cpu $sc $cs $mcpu $kpct $gcpu"
}

median() { sort -g | awk '$1 == "-" { dash = 1 } { a[NR] = $1 } END { if (dash) print "-"; else print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# The pgbench table for each worker count. A key of R: W,mode,clients,target. The CPU
# figures are the proxy's whole process (every thread).
declare -A R
for W in $WORKERS; do
    start_proxies "$W"
    for mode in $MODES; do
        for c in $CLIENTS; do
            for r in $(seq "$ROUNDS"); do
                targets="direct lbd haproxy"
                [ $mode = connect ] && targets="direct lbd lbdreuse haproxy"
                for target in $targets; do
                    res=$(run $target $mode $c)
                    R[$W,$mode,$c,$target]+="$res"$'\n'
                    echo "round $r workers=$W $mode c=$c $target: tps lat_ms p99_ms cpu_s/100k syscalls/tx switches/tx machine_cpu_s/100k kernel_% pg_cpu_s/100k = $res" >&2
                done
            done
        done
    done
done
# COPY and idle memory with the first worker count.
start_proxies "${WORKERS%% *}"

# COPY of the bulk table to the client: wall seconds (alternated, medians).
declare -A C
copy_s() { # copy_s PORT -> "seconds bytes"
    local t0 t1 bytes
    t0=$(date +%s%N)
    bytes=$(psql -X -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "copy bulk to stdout" | wc -c)
    t1=$(date +%s%N)
    [ "$bytes" -gt 1000000 ] || { echo "copy through $1: $bytes bytes" >&2; echo "0 0"; return; }
    awk -v a="$t0" -v b="$t1" -v n="$bytes" 'BEGIN { printf "%.3f %d", (b - a) / 1e9, n }'
}
if [ "$COPY_ROWS" -gt 0 ]; then
    # One untimed pass over every node first: the first scan of a fresh table sets its
    # hint bits and writes the pages back, and whichever proxy reached a node first paid
    # for it (it made lbd look 1.3-1.4x slower than direct, HAProxy, going second, not).
    # Then one through each proxy, and at least 15 rounds: a single COPY varies by
    # 10-30% here, more than the differences measured.
    for port in $N0 $N1 $N2 $LB $HA; do copy_s $port >/dev/null; done
    for r in $(seq $((ROUNDS > 15 ? ROUNDS : 15))); do
        for target in direct lbd haproxy; do
            case $target in direct) port=$N0 ;; lbd) port=$LB ;; haproxy) port=$HA ;; esac
            v=$(copy_s $port)
            C[$target]+="${v% *}"$'\n'
            COPY_MB=$((${v#* } / 1000000))
            echo "round $r copy $target: ${v% *} s, $COPY_MB MB" >&2
        done
    done
fi

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
OUT=${RESULT:-$ROOT/results/bench-lbd-$(date +%Y%m%d-%H%M%S).md}
col() { printf '%s' "${R[$1]}" | awk -v c="$2" '{print $c}' | median; }
# The TPS ratio of each round's adjacent runs (A B A B: the same hour of the machine),
# lowest and highest: how far one round's ratio strays from the medians' ratio.
round_ratios() {
    paste <(printf '%s' "${R[$1]}" | awk '{print $1}') <(printf '%s' "${R[$2]}" | awk '{print $1}') |
        awk '$2 > 0 { r = $1 / $2; if (NR == 1 || r < lo) lo = r; if (NR == 1 || r > hi) hi = r }
             END { printf "%.2f-%.2fx", lo, hi }'
}
{
    echo "pgbench -S, ${SECS}s x $ROUNDS alternated rounds (direct, lbd, HAProxy), 3 PostgreSQL 15 nodes on loopback, $(nproc) cores; workers = lbd.workers and HAProxy's nbthread (the client and the databases share the same cores). Medians (per round: the lowest and highest lbd/HAProxy ratio of one round's adjacent runs); latency p99 from a 5% sample of transactions; CPU = the proxy's user+system seconds per 100k transactions; machine CPU = the whole machine's busy seconds per 100k transactions (database, client and proxy: the fair view, since part of any proxy's work is in softirq and kworkers); proxy share = machine CPU minus direct's, what the hop costs wherever it runs; kernel % = the share of the proxy's own CPU time spent in the kernel (system time: TCP, wake-ups, context switches), the part no user-space code can shave; PostgreSQL CPU = the three servers' own user+system seconds per 100k transactions (what the hop adds to the database's own work: waking a proxy instead of the client, and the longer round trip)."
    echo
    echo "| workers | mode | clients | direct TPS | lbd TPS | HAProxy TPS | lbd/HAProxy | per round | lbd/direct | lat avg ms lbd / HAProxy | lat p99 ms lbd / HAProxy | CPU s/100k tx lbd / HAProxy | CPU ratio | machine CPU s/100k tx direct / lbd / HAProxy | proxy share s/100k tx lbd / HAProxy | share ratio | syscalls/tx lbd / HAProxy | switches/tx lbd / HAProxy | kernel % of CPU lbd / HAProxy | PostgreSQL CPU s/100k tx direct / lbd / HAProxy |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    for W in $WORKERS; do
    for mode in $MODES; do
        for c in $CLIENTS; do
            arms=lbd
            [ $mode = connect ] && arms="lbd lbdreuse"
            for L in $arms; do
            label=$mode
            [ $mode = connect ] && label="-C (new session per tx)"
            [ $L = lbdreuse ] && label="-C, lbd with pool.reuse"
            awk -v w="$W" -v m="$label" -v c="$c" -v d="$(col "$W,$mode,$c,direct" 1)" -v l="$(col "$W,$mode,$c,$L" 1)" \
                -v h="$(col "$W,$mode,$c,haproxy" 1)" -v la="$(col "$W,$mode,$c,$L" 2)" -v ha="$(col "$W,$mode,$c,haproxy" 2)" \
                -v lp="$(col "$W,$mode,$c,$L" 3)" -v hp="$(col "$W,$mode,$c,haproxy" 3)" \
                -v lc="$(col "$W,$mode,$c,$L" 4)" -v hc="$(col "$W,$mode,$c,haproxy" 4)" \
                -v ls="$(col "$W,$mode,$c,$L" 5)" -v hs="$(col "$W,$mode,$c,haproxy" 5)" \
                -v lw="$(col "$W,$mode,$c,$L" 6)" -v hw="$(col "$W,$mode,$c,haproxy" 6)" \
                -v md="$(col "$W,$mode,$c,direct" 7)" -v ml="$(col "$W,$mode,$c,$L" 7)" -v mh="$(col "$W,$mode,$c,haproxy" 7)" \
                -v lk="$(col "$W,$mode,$c,$L" 8)" -v hk="$(col "$W,$mode,$c,haproxy" 8)" \
                -v rr="$(round_ratios "$W,$mode,$c,$L" "$W,$mode,$c,haproxy")" \
                -v gd="$(col "$W,$mode,$c,direct" 9)" -v gl="$(col "$W,$mode,$c,$L" 9)" -v gh="$(col "$W,$mode,$c,haproxy" 9)" \
                'BEGIN { printf "| %d | %s | %d | %.0f | %.0f | %.0f | %.2fx | %s | %.2fx | %.3f / %.3f | %.3f / %.3f | %.2f / %.2f | %.2fx | %.2f / %.2f / %.2f | %.2f / %.2f | %.2fx | %s / %s | %s / %s | %s / %s | %.2f / %.2f / %.2f |\n",
                         w, m, c, d, l, h, l / h, rr, l / d, la, ha, lp, hp, lc, hc, (hc > 0 ? lc / hc : 0), md, ml, mh, ml - md, mh - md, (mh - md > 0 ? (ml - md) / (mh - md) : 0), ls, hs, lw, hw, lk, hk, gd, gl, gh }'
            done
        done
    done
    done
    echo
    if [ "$COPY_ROWS" -gt 0 ]; then
        d=$(printf '%s' "${C[direct]}" | median) l=$(printf '%s' "${C[lbd]}" | median) h=$(printf '%s' "${C[haproxy]}" | median)
        awk -v d="$d" -v l="$l" -v h="$h" -v mb="${COPY_MB:-0}" 'BEGIN {
            printf "COPY of a %d MB table to the client (medians of at least 15): direct %.2f s, lbd %.2f s (%.2fx direct), HAProxy %.2f s (%.2fx direct)\n\n", mb, d, l, l / d, h, h / d }'
    fi
    awk -v l="$LBD_IDLE" -v h="$HA_IDLE" -v n="$IDLE" 'BEGIN {
        printf "Memory per idle session (%d sessions, RSS growth): lbd %.2f KiB, HAProxy %.2f KiB, ratio %.2fx\n", n, l, h, (h > 0 ? l / h : 0) }'
} | tee "$OUT"
# Machine-readable figures for scripts/bench.sh's chart: measure, lbd, HAProxy, direct.
{
    for W in $WORKERS; do
        sfx="" # (the first worker count keeps the names scripts/bench.sh reads)
        [ "$W" = "${WORKERS%% *}" ] || sfx="_w$W"
        for mode in $MODES; do
            for c in $CLIENTS; do
                echo "tps_${mode}_$c$sfx $(col "$W,$mode,$c,lbd" 1) $(col "$W,$mode,$c,haproxy" 1) $(col "$W,$mode,$c,direct" 1)"
                echo "cpu_${mode}_$c$sfx $(col "$W,$mode,$c,lbd" 4) $(col "$W,$mode,$c,haproxy" 4) -"
                echo "mcpu_${mode}_$c$sfx $(col "$W,$mode,$c,lbd" 7) $(col "$W,$mode,$c,haproxy" 7) $(col "$W,$mode,$c,direct" 7)"
                echo "pgcpu_${mode}_$c$sfx $(col "$W,$mode,$c,lbd" 9) $(col "$W,$mode,$c,haproxy" 9) $(col "$W,$mode,$c,direct" 9)"
                [ $mode = connect ] &&
                    echo "tps_connect_reuse_$c$sfx $(col "$W,$mode,$c,lbdreuse" 1) $(col "$W,$mode,$c,haproxy" 1) $(col "$W,$mode,$c,direct" 1)"
            done
        done
    done
    [ "$COPY_ROWS" -gt 0 ] && echo "copy_s $(printf '%s' "${C[lbd]}" | median) $(printf '%s' "${C[haproxy]}" | median) $(printf '%s' "${C[direct]}" | median)"
    echo "idle_kib $LBD_IDLE $HA_IDLE -"
} >"${OUT%.md}.tsv"
echo "written: $OUT"
