#!/bin/bash
# demo.sh -- the pair end to end, on this machine (root; network namespaces).
# Installs what it needs, builds, brings up the lab (three PostgreSQL 15 nodes, lb1 and
# lb2 each running lbd + vrrpd, a client), runs a workload through both VIPs, kills the
# master instance the way `docker kill` does, shows the transition and the outage the
# clients saw, then a planned stop, brings the instance back, and tears it all down.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (sudo bash scripts/demo.sh)" >&2; exit 1; }

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
bash scripts/install-deps.sh
bash scripts/build.sh >/dev/null
export LAB_PREFIX=demo LAB_DIR=/tmp/pgvip-demo
source scripts/lab.sh
lab_down >/dev/null 2>&1 || true
trap 'lab_down >/dev/null 2>&1 || true' EXIT
PROBE="$ROOT/build/tests/tools/pgprobe"
now_ms() { date +%s%3N; }
probe() { # probe NAME VIP [DEADLINE_MS]
    ip netns exec "$(lab_ns client)" "$PROBE" -i 50 -t "${3:-1000}" -d 60 \
        "host=$2 user=postgres dbname=postgres" >"$LAB_DIR/$1.probe" &
    eval "PROBE_$1=$!"
}
probe_end() { local p; eval "p=\$PROBE_$1"; kill -TERM "$p"; wait "$p" || true; }
show_transitions() { # lines of the survivor's log since a time
    grep -h "event=transition\|event=handover\|event=peer_gone" "$LAB_DIR"/lb*-vrrpd.log | awk -v s="$1" '$1 >= "ts=" s' |
        sed 's/ level=[a-z]* daemon=vrrpd//' | sort | cut -c1-220
}

say "1. The lab: switch, 3 PostgreSQL nodes, lb1 and lb2 (lbd + vrrpd each), a client"
lab_up >/dev/null
lab_status
echo
echo "lb1's one config file ($LAB_DIR/lb1.yaml):"
sed 's/^/    /' "$LAB_DIR/lb1.yaml"

say "2. Active-active: VIP-A reaches the nodes through lb1's lbd, VIP-B through lb2's"
for vip in $VIP_A $VIP_A $VIP_A $VIP_B $VIP_B $VIP_B; do
    lab_exec client psql -X -h $vip -U postgres -d postgres -Atc \
        "select 'via $vip: lbd at ' || inet_client_addr() || ' -> node at ' || inet_server_addr()"
done
echo "(Applications list both: host=$VIP_A,$VIP_B in libpq, so a client falls back by itself too.)"
echo
echo "A query cancelled with Ctrl-C (SIGINT) reaches its node through lbd:"
ip netns exec "$(lab_ns client)" psql -X -h $VIP_A -U postgres -d postgres -c "select pg_sleep(30)" 2>&1 &
PSQL=$!
sleep 1
kill -INT $PSQL
wait $PSQL || true
grep -h "event=cancel" "$LAB_DIR"/lb*-lbd.log | tail -1 | cut -c1-200 || true

say "3. Workload: a fresh session every 50 ms on each VIP, then 'docker kill' of the master of VIP-A"
M=$(lab_master_of 51)
O=$([ "$M" = lb1 ] && echo lb2 || echo lb1)
probe A "$VIP_A"
probe B "$VIP_B"
sleep 2
START=$(date -u +%Y-%m-%dT%H:%M:%S)
echo "$(date +%T.%3N) SIGKILL every process of $M and take its link down"
lab_kill "$M"
T0=$LAB_KILLED_MS # (the moment the signals went)
sleep 2
probe_end A
probe_end B
echo
echo "What $O logged (sysadmins: tail this):"
show_transitions "$START"
echo
echo "What the clients saw:"
for v in A B; do
    printf '  VIP-%s: %s of %s sessions ok; %s\n' $v "$(awk '$3 == "ok"' "$LAB_DIR/$v.probe" | wc -l)" \
        "$(grep -vc '^#' "$LAB_DIR/$v.probe")" "$(bash scripts/outage.sh "$T0" "$LAB_DIR/$v.probe")"
done
echo "  (outage: from the kill to the first successful new session after the last failed one;"
gfield() { grep -o "\"vrid\":51,[^]]*" "$LAB_DIR/$O-vrrpd.json" | grep -o "\"$1\":[0-9]*" | cut -d: -f2; }
down=$(gfield master_down_ms)
iv=$(gfield interval_ms)
echo "   $O saw $M's vrrpd end on the peer watch link and took over after the skew time,"
echo "   $((down - 3 * iv)) ms, not the master down interval, $down ms, that a host loss still costs)"
lab_vips

say "4. $M starts again: it clears the VIP its killed run left behind and rejoins as BACKUP (preempt off)"
lab_start "$M"
sleep 2
lab_status

say "5. Planned stop of $O (SIGTERM): lbd drains and vrrpd hands over, no new session fails"
probe A2 "$VIP_A" 3000
probe B2 "$VIP_B" 3000
sleep 1.5
START=$(date -u +%Y-%m-%dT%H:%M:%S)
lab_stop "$O"
T0=$LAB_STOPPED_MS
sleep 1.5
probe_end A2
probe_end B2
show_transitions "$START"
for v in A2 B2; do
    printf '  VIP-%s: %s of %s sessions ok; %s\n' ${v%2} "$(awk '$3 == "ok"' "$LAB_DIR/$v.probe" | wc -l)" \
        "$(grep -vc '^#' "$LAB_DIR/$v.probe")" "$(bash scripts/outage.sh "$T0" "$LAB_DIR/$v.probe")"
done
lab_start "$O"
sleep 2
lab_vips

say "6. Done: tearing the lab down"
echo "   The same drill under a real Docker engine (compose/docker-compose.pg.yml: docker kill,"
echo "   docker start with the VIP moving back, docker stop, docker kill -s HUP, down) is a test:"
echo "   (cd build && ctest -R docker_drill -V)   # about 70 s with the images built, 5 min before"
