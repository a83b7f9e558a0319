#!/bin/bash
# bench-stability.sh [MINUTES=10] -- short adverts must not cost false failovers.
#
# The lab with 20 ms adverts (LAB_INTERVAL) and the VRRP daemons at real-time priority
# (LAB_REALTIME=1), then MINUTES of full CPU load on every core: pgbench -S through both
# VIPs with more clients than cores, the proxies and the PostgreSQL nodes all competing.
# Counts the VRRP transitions during the load (any is a false failover: nothing failed)
# and the pgbench sessions that broke. Runs the same for HAProxy + keepalived when
# STACKS includes haproxy. Writes a markdown table to $RESULT or results/.
# LAB_SILENT_HOLD (1s here; "" for vrrpd's default, off) sets vrrpd's silent_master_hold.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-10}
STACKS=${STACKS:-pgvip haproxy}
[ "$(id -u)" -eq 0 ] || { echo "bench-stability: run as root" >&2; exit 1; }
[ -x build/vrrpd/vrrpd ] || bash scripts/build.sh >/dev/null
export LAB_INTERVAL=${LAB_INTERVAL:-20ms} LAB_REALTIME=${LAB_REALTIME:-1} LAB_PAGE_PORTS=""
# vrrpd's silent_master_hold (off by default): both instances share this machine's
# kernel, which keeps acknowledging while a stalled vCPU holds up one vrrpd.
export LAB_SILENT_HOLD=${LAB_SILENT_HOLD-1s}
export LAB_PG_MAXCONN=200
declare -A TRANS TPS ABORT LOAD
WAITS=""
for stack in $STACKS; do
    export LAB_STACK=$stack LAB_PREFIX=bs LAB_DIR=/tmp/pgvip-bench-stability
    source scripts/lab.sh
    lab_down >/dev/null 2>&1 || true
    trap 'lab_down >/dev/null 2>&1 || true' EXIT
    lab_up >/dev/null
    for n in 0 1 2; do
        lab_exec client pgbench -h "$(lab_ip node$n)" -U postgres -i -s 5 -q postgres >/dev/null 2>&1
    done
    sleep 2
    count_transitions() {
        if [ "$stack" = pgvip ]; then
            cat "$LAB_DIR"/lb*-vrrpd.log | grep -c "event=transition" || true
        else
            cat "$LAB_DIR"/lb*-vrrpd.log | grep -cE "Entering (MASTER|BACKUP|FAULT) STATE" || true
        fi
    }
    # pgvip's vrrpd also says which stalls it rode out instead of failing over.
    count_waits() {
        [ "$stack" = pgvip ] || { echo "- - -"; return; }
        local l=$(cat "$LAB_DIR"/lb*-vrrpd.log)
        echo "$(grep -c 'event=advert_late' <<<"$l") $(grep -c 'event=stall_grace' <<<"$l") $(grep -c 'event=silent_master_hold' <<<"$l")"
    }
    before=$(count_transitions)
    read -r late0 grace0 hold0 < <(count_waits)
    holders0="$(lab_holders "$VIP_A")/$(lab_holders "$VIP_B")"
    read -r u0 t0 < <(awk '/^cpu / { print $2 + $3 + $4 + $6 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat)
    for vip in $VIP_A $VIP_B; do
        lab_exec client pgbench -h "$vip" -U postgres -S -c 16 -j 2 -T $((MINUTES * 60)) \
            postgres >"$LAB_DIR/pgbench-$vip.out" 2>&1 &
    done
    wait
    read -r u1 t1 < <(awk '/^cpu / { print $2 + $3 + $4 + $6 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat)
    after=$(count_transitions)
    read -r late1 grace1 hold1 < <(count_waits)
    [ "$stack" = pgvip ] && WAITS="vrrpd logged $((late1 - late0)) late-advert lines (at most one a second), $((grace1 - grace0)) stall graces and $((hold1 - hold0)) silent master holds: stalls it rode out instead of failing over."
    holders1="$(lab_holders "$VIP_A")/$(lab_holders "$VIP_B")"
    TRANS[$stack]=$((after - before))
    TPS[$stack]=$(cat "$LAB_DIR"/pgbench-*.out | grep -oP 'tps = \K[0-9.]+' | awk '{ s += $1 } END { printf "%.0f", s }')
    ABORT[$stack]=$(cat "$LAB_DIR"/pgbench-*.out | grep -ciE "aborted|error" || true)
    LOAD[$stack]=$(awk -v a="$u0" -v b="$u1" -v c="$t0" -v d="$t1" 'BEGIN { printf "%.0f", (b - a) * 100 / (d - c) }')
    echo "$stack: ${TRANS[$stack]} transitions during $MINUTES min at ${LOAD[$stack]}% CPU; VIP holders $holders0 -> $holders1; ${TPS[$stack]} TPS; ${ABORT[$stack]} error lines" >&2
    lab_down >/dev/null 2>&1 || true
done
mkdir -p results
F=${RESULT:-results/bench-stability-$(date +%Y%m%d-%H%M%S).md}
{
    echo "False failovers under full CPU load: $MINUTES min of pgbench -S through both VIPs (16 clients each), $LAB_INTERVAL adverts, VRRP daemons real-time: $LAB_REALTIME, $(nproc) cores."
    echo
    echo "| stack | VRRP transitions during the load | CPU busy | pgbench TPS (both VIPs) | pgbench error lines |"
    echo "|---|---|---|---|---|"
    for stack in $STACKS; do
        name=$stack
        [ "$stack" = pgvip ] && name="pgvip (lbd + vrrpd)"
        [ "$stack" = haproxy ] && name="HAProxy + keepalived"
        echo "| $name | ${TRANS[$stack]} | ${LOAD[$stack]}% | ${TPS[$stack]} | ${ABORT[$stack]} |"
    done
    [ -z "$WAITS" ] || { echo; echo "pgvip: $WAITS"; }
} | tee "$F"
# machine-readable for bench.sh's chart: measure, pgvip, HAProxy+keepalived
echo "false_transitions_${MINUTES}min ${TRANS[pgvip]:-0} ${TRANS[haproxy]:-0}" >"${F%.md}.tsv"
echo "written: $F"
