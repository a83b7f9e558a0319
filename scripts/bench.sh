#!/bin/bash
# bench.sh -- the whole side-by-side benchmark, pgvip against HAProxy 2.6 + keepalived
# 2.2, in one command (about 35 minutes with the defaults):
#   1. bench-lbd.sh       pgbench -S (prepared, simple, -C) with 8 and 64 clients: TPS,
#                         latency avg/p99, proxy CPU per 100k tx; COPY of ~200 MB;
#                         memory per idle session          (direct / lbd / HAProxy)
#   2. bench-failover.sh  outage after SIGKILL of the master instance, a network cut of
#                         it, SIGKILL of only the proxy, and a planned stop, 100 ms
#                         adverts, RUNS each
#   3. bench-failover.sh  outage after SIGKILL of the master instance and after a cut,
#                         with 20 ms adverts and the VRRP daemons at real-time priority
#   4. bench-stability.sh false failovers during STABILITY_MIN minutes of full CPU load
#                         with those 20 ms adverts
# Writes results/bench-TIMESTAMP/: summary.md (every table) and chart.png (gnuplot).
#
#   sudo bash scripts/bench.sh
#   bash scripts/bench.sh --report DIR   only (re)draw DIR's chart and summary.md
# Settings: ROUNDS (3), SECS (10), RUNS (5), STABILITY_MIN (10), FAST_INTERVAL (20ms),
# STACKS for the stability part ("pgvip haproxy").
set -euo pipefail
cd "$(dirname "$0")/.."

report() { # report DIR: chart.png and summary.md from the parts' tables
    local DIR=$1
    # The chart: lbd / HAProxy (and pgvip / keepalived) for every measure, on two panels.
    cat "$DIR"/*.tsv >"$DIR/all.tsv"
    awk '$1 ~ /^tps_/ { sub(/^tps_/, "", $1); gsub(/_/, " ", $1); sub(/connect/, "-C", $1); printf "\"%s\" %.3f\n", $1, $2 / $3 }' \
        "$DIR/all.tsv" >"$DIR/higher.dat"
    # CPU per transaction: the proxy process's own.
    local cpu=cpu_
    awk -v cpu="$cpu" 'index($1, cpu) == 1 { sub("^" cpu, "", $1); gsub(/_/, " ", $1); sub(/connect/, "-C", $1)
             if (cpu == "mcpu_") printf "\"proxy CPU/tx %s\" %.3f\n", $1, ($3 - $4 > 0 ? ($2 - $4) / ($3 - $4) : 0)
             else printf "\"proxy CPU/tx %s\" %.3f\n", $1, $2 / $3 }
         $1 == "copy_s" { printf "\"COPY time\" %.3f\n", $2 / $3 }
         $1 == "idle_kib" { printf "\"RSS/idle session\" %.3f\n", $2 / $3 }
         $1 ~ /^false_transitions/ { sub(/^false_transitions_/, "", $1); printf "\"false failovers in %s\" %.3f\n", $1, ($3 > 0 ? $2 / $3 : 0) }
     $1 ~ /^outage_/ { sub(/^outage_/, "outage ", $1); gsub(/_/, " ", $1); printf "\"%s\" %.3f\n", $1, ($3 > 0 ? $2 / $3 : 0) }' \
        "$DIR/all.tsv" >"$DIR/lower.dat"
    gnuplot <<GP
    set terminal pngcairo size 1400,900 font "sans,11"
    set output "$DIR/chart.png"
    set multiplot layout 2,1 title "pgvip (lbd + vrrpd) relative to HAProxy + keepalived, $(nproc) cores (1.0 = the same)"
    set style data histograms
    set style fill solid 0.8 border -1
    set boxwidth 0.7
    set grid ytics
    set xtics rotate by -25 scale 0
    set yrange [0:*]
    set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 2 lc rgb "#cf222e" front
    set title "Throughput, pgbench -S TPS ratio (higher is better)"
    plot "$DIR/higher.dat" using 2:xtic(1) lc rgb "#1a7f37" notitle, '' using 0:(\$2):(sprintf("%.2f", \$2)) with labels offset 0,0.7 notitle
    set title "Cost and outage ratio: CPU per transaction, COPY time, memory, client-visible outage (lower is better)"
    plot "$DIR/lower.dat" using 2:xtic(1) lc rgb "#0969da" notitle, '' using 0:(\$2):(sprintf("%.2f", \$2)) with labels offset 0,0.7 notitle
    unset multiplot
GP
    {
        echo "# pgvip vs HAProxy + keepalived ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r))"
        echo
        echo "![chart](chart.png)"
        for part in throughput failover failover-fast stability; do
            [ -f "$DIR/$part.md" ] || continue
            echo
            echo "## $part"
            echo
            cat "$DIR/$part.md"
        done
    } >"$DIR/summary.md"
    echo "bench: $DIR/summary.md and $DIR/chart.png" >&2
}

if [ "${1:-}" = --report ]; then
    report "${2:?usage: bench.sh --report DIR}"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }
command -v gnuplot >/dev/null || apt-get install -y -qq gnuplot-nox >/dev/null
ROUNDS=${ROUNDS:-3} SECS=${SECS:-10} RUNS=${RUNS:-5} STABILITY_MIN=${STABILITY_MIN:-10}
FAST=${FAST_INTERVAL:-20ms}
DIR=results/bench-$(date +%Y%m%d-%H%M%S)
mkdir -p "$DIR"
echo "bench: writing $DIR" >&2
RESULT=$DIR/throughput.md bash scripts/bench-lbd.sh "$ROUNDS" "$SECS"
RESULT=$DIR/failover.md bash scripts/bench-failover.sh "$RUNS"
RESULT=$DIR/failover-fast.md LAB_INTERVAL=$FAST LAB_REALTIME=1 DRILLS="sigkill_instance cut_instance" \
    bash scripts/bench-failover.sh "$RUNS"
[ "$STABILITY_MIN" -gt 0 ] &&
    RESULT=$DIR/stability.md LAB_INTERVAL=$FAST LAB_REALTIME=1 bash scripts/bench-stability.sh "$STABILITY_MIN"

report "$DIR"
