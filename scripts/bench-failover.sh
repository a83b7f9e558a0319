#!/bin/bash
# bench-failover.sh [RUNS=3] -- the client-visible outage of the pair against HAProxy 2.6
# + keepalived 2.2, in the same namespace lab with the same three PostgreSQL nodes, the
# same VIPs, priorities and 100 ms VRRPv3 adverts (keepalived tracks haproxy with a
# 1 s script, as usually deployed). Four drills, RUNS times each:
#   sigkill_instance  SIGKILL every process of the master instance, then drop its link
#                     (docker kill: the processes end, then the container's network)
#   cut_instance      drop the master's link only, its processes run on (host loss or a
#                     network split: nothing closes, only VRRP's timer can tell)
#   sigkill_proxy     SIGKILL only the proxy (lbd / haproxy) on the master
#   sigterm_instance  planned stop: proxy first, then the VRRP daemon
# A libpq probe starts a fresh session every 10 ms on VIP-A; outage = from the event to
# the first success after the last failure. Prints a markdown table (medians), writes it
# under results/ (not committed), or to $RESULT.
# Settings: LAB_INTERVAL (100ms), LAB_REALTIME (0; 1: vrrpd realtime, keepalived
# vrrp_rt_priority + vrrp_no_swap), DRILLS (all four).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${1:-3}
export LAB_INTERVAL=${LAB_INTERVAL:-100ms} LAB_REALTIME=${LAB_REALTIME:-0} LAB_PAGE_PORTS=""
DRILLS=${DRILLS:-sigkill_instance cut_instance sigkill_proxy sigterm_instance}
[ "$(id -u)" -eq 0 ] || { echo "bench-failover: run as root" >&2; exit 1; }
command -v keepalived >/dev/null || bash scripts/install-deps.sh
[ -x build/tests/tools/pgprobe ] || bash scripts/build.sh >/dev/null
PROBE=$ROOT/build/tests/tools/pgprobe
now_ms() { date +%s%3N; }
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
declare -A OUT FAIL

for stack in pgvip haproxy; do
    export LAB_STACK=$stack LAB_PREFIX=bf LAB_DIR=/tmp/pgvip-bench-failover
    source scripts/lab.sh
    lab_down >/dev/null 2>&1 || true
    trap 'lab_down >/dev/null 2>&1 || true' EXIT
    lab_up >/dev/null
    sleep 2
    for drill in $DRILLS; do
        for r in $(seq "$RUNS"); do
            M=$(lab_holders "$VIP_A")
            [ "$M" = lb1 ] || [ "$M" = lb2 ] || { echo "no single holder of VIP-A: '$M'" >&2; exit 1; }
            ip netns exec "$(lab_ns client)" "$PROBE" -i 10 -t 3000 -d 60 \
                "host=$VIP_A user=postgres dbname=postgres" >"$LAB_DIR/probe.out" &
            P=$!
            # A random 0-999 ms more, so the event does not fall at the same point of
            # the advertisement cycle in every run (the steps before take fixed times,
            # and a cut's outage depends on that phase: 3 adverts + skew minus the time
            # since the last one).
            sleep "1.$(printf '%03d' $((RANDOM % 1000)))"
            t0=$(now_ms)
            case $drill in
            sigkill_instance) lab_kill "$M" ;;
            cut_instance) lab_cut "$M" ;;
            sigkill_proxy) lab_kill_lbd "$M" ;;
            sigterm_instance) lab_stop "$M" ;;
            esac
            sleep 2.5
            kill -TERM $P
            wait $P || true
            res=$(bash scripts/outage.sh "$t0" "$LAB_DIR/probe.out" || echo "outage_ms=99999 failed=?")
            ms=${res#outage_ms=}
            ms=${ms%% *}
            OUT[$stack,$drill]+="$ms"$'\n'
            FAIL[$stack,$drill]+="${res##*failed=}"$'\n'
            echo "$stack $drill run $r ($M): $res" >&2
            # Bring the instance back whole (a cut heals; the others restart); wait until
            # both VIPs are held again.
            if [ "$drill" = cut_instance ]; then
                ip -n "$(lab_ns "$M")" link set eth0 up
            else
                for p in $(ip netns pids "$(lab_ns "$M")"); do kill -KILL "$p" 2>/dev/null || true; done
                lab_start "$M"
            fi
            sleep 2
            lab_wait_masters 10 >/dev/null
        done
    done
    lab_down >/dev/null 2>&1 || true
done

mkdir -p results
F=${RESULT:-results/bench-failover-$(date +%Y%m%d-%H%M%S).md}
rt=""
[ "$LAB_REALTIME" = 1 ] && rt=", VRRP daemons at real-time priority with locked memory"
{
    echo "Client-visible outage on VIP-A (ms, median of $RUNS; failed new sessions in brackets), $LAB_INTERVAL adverts$rt, $(nproc) cores."
    echo
    echo "| drill | pgvip (lbd + vrrpd) | HAProxy + keepalived | ratio |"
    echo "|---|---|---|---|"
    for drill in $DRILLS; do
        a=$(printf '%s' "${OUT[pgvip,$drill]}" | median)
        b=$(printf '%s' "${OUT[haproxy,$drill]}" | median)
        fa=$(printf '%s' "${FAIL[pgvip,$drill]}" | paste -sd/ -)
        fb=$(printf '%s' "${FAIL[haproxy,$drill]}" | paste -sd/ -)
        awk -v d="$drill" -v a="$a" -v b="$b" -v fa="$fa" -v fb="$fb" \
            'BEGIN { printf "| %s | %d ms [%s] | %d ms [%s] | %.2fx |\n", d, a, fa, b, fb, (b > 0 ? a / b : 0) }'
    done
} | tee "$F"
for drill in $DRILLS; do # machine-readable: measure, pgvip ms, HAProxy+keepalived ms
    echo "outage_${drill}_$LAB_INTERVAL $(printf '%s' "${OUT[pgvip,$drill]}" | median) $(printf '%s' "${OUT[haproxy,$drill]}" | median)"
done >"${F%.md}.tsv"
echo "written: $F"
