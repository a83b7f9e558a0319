#!/bin/bash
# soak.sh [MINUTES=10] [SESSIONS=1000] -- the pair under a long load with failovers.
#
# In the namespace lab: SESSIONS client sessions (tests/tools/pgsoak: libpq, half on each
# VIP, `select 1` every second each, reconnecting 100 ms after any failure) for MINUTES
# minutes. Every minute lb1 is killed (SIGKILL + link down: VIP-A moves to lb2), and 20 s
# later started again; with preemption it takes VIP-A back 2 s after start. lb2 lives the
# whole run and carries every session in turn, so leaks show on it.
# Passes when: no daemon died unplanned; every client failure falls within 10 s after a
# kill or a preemption (a failover explains it); lb2's lbd holds the same descriptors per
# session and about the same memory at every minute; lb2's vrrpd stays flat.
# Writes results/soak-*.md, and keeps the run's logs (client, both proxies and VRRP
# daemons, the nodes) in results/soak-*/ for the failures to be looked into: each client
# failure names its local port, which the proxies' session_end lines name too.
# Needs root. Not in CI (it takes MINUTES).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MINUTES=${1:-10}
SESSIONS=${2:-1000}
[ "$(id -u)" -eq 0 ] || { echo "soak: run as root" >&2; exit 1; }
[ -x build/tests/tools/pgsoak ] || bash scripts/build.sh >/dev/null
export LAB_PREFIX=soak LAB_DIR=/tmp/pgvip-soak LAB_PREEMPT=true LAB_PREEMPT_DELAY=2s
# Capacity as production needs it: after a kill the nodes still hold the dead instance's
# backends (half the sessions) until their TCP keepalive reaps them (~11 s in the lab),
# while the survivor reconnects those sessions: 1.5 x SESSIONS over three nodes.
export LAB_PG_MAXCONN=$((SESSIONS / 2 + 100)) LAB_PAGE_PORTS=""
source scripts/lab.sh
now_ms() { date +%s%3N; }
lab_down >/dev/null 2>&1 || true
SOAK_PID=""
STAMP=$(date +%Y%m%d-%H%M%S)
KEEP_DIR=$ROOT/results/soak-$STAMP
finish() {
    [ -n "$SOAK_PID" ] && kill -TERM "$SOAK_PID" 2>/dev/null || true
    if [ -d "$LAB_DIR" ]; then
        mkdir -p "$KEEP_DIR"
        cp "$LAB_DIR"/*.log "$LAB_DIR"/soak.out "$LAB_DIR"/events "$KEEP_DIR"/ 2>/dev/null || true
        cp "$LAB_DIR"/pg/*.log "$KEEP_DIR"/ 2>/dev/null || true
    fi
    lab_down >/dev/null 2>&1 || true
}
trap finish EXIT
lab_up >/dev/null
echo "soak: lab up; $SESSIONS sessions for $MINUTES min, lb1 killed every minute"

OUT=$LAB_DIR/soak.out
ip netns exec "$(lab_ns client)" "$ROOT/build/tests/tools/pgsoak" -n "$SESSIONS" -i 1000 -t 3000 \
    -d $((MINUTES * 60 + 30)) "host=$VIP_A user=postgres dbname=postgres" \
    "host=$VIP_B user=postgres dbname=postgres" >"$OUT" &
SOAK_PID=$!
sleep 20 # all sessions up

proc_fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
proc_rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
lb2_sessions() {
    lab_exec lb2 curl -fsS --max-time 2 http://127.0.0.1:8081/status | grep -o '"sessions":[0-9]*' | head -1 | cut -d: -f2
}
EVENTS=()
SAMPLES="minute lbd_fds lbd_sessions lbd_fds_minus_2x_sessions lbd_rss_kib vrrpd_fds vrrpd_rss_kib"$'\n'
LB2_LBD=$(cat "$LAB_DIR/lb2-lbd.pid") LB2_VRRPD=$(cat "$LAB_DIR/lb2-vrrpd.pid")
unplanned=""
for ((m = 1; m <= MINUTES; m++)); do
    s=$(lb2_sessions)
    f=$(proc_fds "$LB2_LBD")
    SAMPLES+="$m $f $s $((f - 2 * s)) $(proc_rss "$LB2_LBD") $(proc_fds "$LB2_VRRPD") $(proc_rss "$LB2_VRRPD")"$'\n'
    for p in $(cat "$LAB_DIR"/lb1-lbd.pid "$LAB_DIR"/lb1-vrrpd.pid) "$LB2_LBD" "$LB2_VRRPD"; do
        kill -0 "$p" 2>/dev/null || unplanned+=" pid $p (minute $m)"
    done
    EVENTS+=("$(now_ms) kill")
    lab_kill lb1
    echo "soak: minute $m: killed lb1; lb2 holds: $(lab_holders "$VIP_A") / $(lab_holders "$VIP_B"); lb2 sessions $s, fds $f"
    sleep 20
    lab_start lb1
    EVENTS+=("$(($(now_ms) + 2000)) preempt")
    sleep 40
done
kill -TERM "$SOAK_PID"
wait "$SOAK_PID" || true
SOAK_PID=""
sleep 3
idle_fds=$(proc_fds "$LB2_LBD")

# Every failure must fall within 10 s after an event.
printf '%s\n' "${EVENTS[@]}" >"$LAB_DIR/events"
read -r explained unexplained < <(awk '
    NR == FNR { ev[++n] = $1; next }
    $1 == "fail" { ok = 0; for (i = 1; i <= n; i++) if ($2 >= ev[i] && $2 <= ev[i] + 10000) ok = 1
                   if (ok) e++; else { u++; print > "/dev/stderr"; print > un } }
    END { print e + 0, u + 0 }' un="$LAB_DIR/unexplained" "$LAB_DIR/events" "$OUT")
# What the proxies logged about each unexplained failure's connection (by client port).
UNEXPLAINED_DETAIL=""
if [ -s "$LAB_DIR/unexplained" ]; then
    while read -r _ t id port _; do
        p=${port#port=}
        [ "$p" -gt 0 ] 2>/dev/null || continue
        UNEXPLAINED_DETAIL+="session $id (port $p, failed at $t):"$'\n'
        UNEXPLAINED_DETAIL+="$(grep -h "client=[^ ]*:$p " "$LAB_DIR"/lb*-lbd.log | tail -3)"$'\n'
    done <"$LAB_DIR/unexplained"
fi
summary=$(tail -1 "$OUT")
first=$(sed -n 2p <<<"$SAMPLES")
last=$(tail -2 <<<"$SAMPLES" | head -1)
spread() { awk -v c="$1" 'NR > 1 && NF { v = $c; if (min == "" || v < min) min = v; if (v > max) max = v } END { print max - min }' <<<"$SAMPLES"; }
fd_spread=$(spread 4)
rss_growth=$(awk 'NR == 2 { a = $5 } NF { b = $5 } END { print b - a }' <<<"$SAMPLES")
vr_fd_spread=$(spread 6)
vr_rss_growth=$(awk 'NR == 2 { a = $7 } NF { b = $7 } END { print b - a }' <<<"$SAMPLES")

verdict=PASS
[ -z "$unplanned" ] || verdict=FAIL
[ "$unexplained" -eq 0 ] || verdict=FAIL
[ "$fd_spread" -le 10 ] || verdict=FAIL        # descriptors beyond 2 per session: flat
[ "$rss_growth" -le 16384 ] || verdict=FAIL    # RSS: less than 16 MiB over the run
[ "$vr_fd_spread" -le 2 ] || verdict=FAIL
[ "$vr_rss_growth" -le 1024 ] || verdict=FAIL

mkdir -p results
F="results/soak-$STAMP.md"
{
    echo "# Soak: $SESSIONS sessions, $MINUTES min, lb1 killed every minute ($verdict)"
    echo
    echo "- client: $summary"
    echo "- failures: $explained within 10 s of a failover, $unexplained unexplained"
    echo "- daemons that died unplanned:${unplanned:- none}"
    echo "- lb2 lbd: fds - 2 x sessions varies by $fd_spread; RSS grew $rss_growth KiB; after the clients left: $idle_fds fds"
    echo "- lb2 vrrpd: fds vary by $vr_fd_spread; RSS grew $vr_rss_growth KiB"
    echo
    echo "lb2 sampled before each kill:"
    echo
    echo '```'
    printf '%s' "$SAMPLES" | column -t
    echo '```'
    if [ -n "$UNEXPLAINED_DETAIL" ]; then
        echo
        echo "Unexplained failures, and what the proxies logged for their connections:"
        echo
        echo '```'
        cat "$LAB_DIR/unexplained"
        printf '%s' "$UNEXPLAINED_DETAIL"
        echo '```'
    fi
    echo
    echo "Logs: $KEEP_DIR"
} | tee "$F"
echo "written: $F"
[ "$verdict" = PASS ]
