#!/bin/bash
# abuse.sh -- the front-door attacks of docs/abuse-model.md, longer and harder than the
# CI test (tests/integration/lbd_front_door.sh), against PostgreSQL direct, HAProxy
# (tcp mode, pgsql-check, as users deploy it) and lbd (default limits, with its peer) in
# one run, each beside a bystander that opens a fresh libpq session every 20 ms
# (5 s deadline) on the same target. Prints one table:
#   attack, target, rate the attacker sustained, bystander success, nodes marked down.
# Needs root (PostgreSQL runs as postgres). Loopback only; every process is ended by PID.
#
# usage: bash scripts/abuse.sh [SECONDS per attack, default 15]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-15}
command -v haproxy >/dev/null || bash scripts/install-deps.sh
[ -x build/lbd/lbd ] || BUILD_DIR=build bash scripts/build.sh >/dev/null
export LBD=$PWD/build/lbd/lbd TOOLS=$PWD/build/tests/tools TEST_NAME=abuse
export TEST_TIMEOUT=$((SECS * 12 + 300))
source tests/integration/lib.sh
AC="nice -n 19 python3 $PWD/tests/integration/abuse_client.py"

N0=$((BASE + 1)) N1=$((BASE + 2)) N2=$((BASE + 3)) HA=$((BASE + 4)) LA=$((BASE + 5))
LB=$((BASE + 6)) ADMIN_A=$((BASE + 7)) ADMIN_B=$((BASE + 8))
for i in 0 1 2; do pg_start "node$i" $((BASE + 1 + i)); done
for side in a b; do
    if [ $side = a ]; then port=$LA admin=$ADMIN_A mine=$((BASE + 10)) theirs=$((BASE + 11)); else
        port=$LB admin=$ADMIN_B mine=$((BASE + 11)) theirs=$((BASE + 10)); fi
    cat >"$WORK/lb_$side.yaml" <<YAML
instance: lb_$side
lbd:
  listen: 127.0.0.1:$port
  admin: 127.0.0.1:$admin
  peer: {address: 127.0.0.1:$theirs, listen: 127.0.0.1:$mine}
  pool:
    health: {type: pg, pg_user: postgres}
    nodes:
      - {name: node0, address: 127.0.0.1:$N0}
      - {name: node1, address: 127.0.0.1:$N1}
      - {name: node2, address: 127.0.0.1:$N2}
YAML
done
cat >"$WORK/haproxy.cfg" <<CFG
global
    maxconn 8000
    stats socket $WORK/haproxy.sock
defaults
    mode tcp
    timeout connect 2s
    timeout client 1h
    timeout server 1h
listen pg
    bind 127.0.0.1:$HA
    balance roundrobin
    option pgsql-check user postgres
    default-server check inter 2s fall 3 rise 2
    server node0 127.0.0.1:$N0
    server node1 127.0.0.1:$N1
    server node2 127.0.0.1:$N2
CFG
lbd_start lb_a "$WORK/lb_a.yaml" $ADMIN_A
lbd_start lb_b "$WORK/lb_b.yaml" $ADMIN_B
haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
PIDS+=($!)
wait_for 10 "haproxy" bash -c "exec 3<>/dev/tcp/127.0.0.1/$HA"

downs() { # downs TARGET: node down transitions so far
    case $1 in
    lbd) cat "$WORK/lb_a.log" "$WORK/lb_b.log" | awk '/event=node_state.*to=down/ {n++} END {print n + 0}' ;;
    haproxy) awk '/is DOWN/ {n++} END {print n + 0}' "$WORK/haproxy.log" ;;
    direct) echo - ;;
    esac
}
TABLE="$WORK/table"
printf '%-22s %-8s %-34s %-18s %s\n' attack target "attacker sustained" "bystander ok" "nodes down" >"$TABLE"
run() { # run ATTACK TARGET PORT ARGS...
    local attack=$1 target=$2 port=$3
    shift 3
    local d0 d1 out sum ok att
    d0=$(downs "$target")
    "$TOOLS/pgprobe" -i 20 -t 5000 -d "$SECS" "host=127.0.0.1 port=$port user=postgres dbname=postgres" \
        >"$WORK/probe.out" 2>&1 &
    local probe=$!
    PIDS+=($probe)
    out=$($AC 127.0.0.1 "$port" 127.0.0.2 "$@" || true)
    wait $probe || true
    sleep 2 # (checks that were starved fail now)
    d1=$(downs "$target")
    sum=$(grep '^# probe:' "$WORK/probe.out")
    att=$(sed -E 's/.*attempts=([0-9]+).*/\1/' <<<"$sum")
    ok=$(sed -E 's/.*ok=([0-9]+).*/\1/' <<<"$sum")
    printf '%-22s %-8s %-34s %-18s %s\n' "$attack" "$target" "$out" "$ok/$att ($((ok * 100 / (att > 0 ? att : 1)))%)" \
        "$([ "$d0" = - ] && echo - || echo $((d1 - d0)))" | tee -a "$TABLE"
    # Let the nodes and checks come back before the next round.
    wait_for 120 "the nodes up again" bash -c "[ \"\$(curl -fsS http://127.0.0.1:$ADMIN_A/metrics | awk '/^lbd_node_up/ {s += \$2} END {print s}')\" = 3 ]"
    sleep 3
}
for target in direct haproxy lbd; do
    case $target in direct) port=$N0 ;; haproxy) port=$HA ;; lbd) port=$LA ;; esac
    run cancel_flood $target $port cancel "$SECS"
done
for target in direct haproxy lbd; do
    case $target in direct) port=$N0 ;; haproxy) port=$HA ;; lbd) port=$LA ;; esac
    run "ssl_hold(150)" $target $port ssl_hold "$SECS" 150
done
for target in direct haproxy lbd; do
    case $target in direct) port=$N0 ;; haproxy) port=$HA ;; lbd) port=$LA ;; esac
    run "idle_hold(300)" $target $port idle_hold "$SECS" 300
done
echo
echo "abuse.sh: $SECS s per attack from 127.0.0.2; bystander: a fresh session every 20 ms from 127.0.0.1 (5 s deadline)"
cat "$TABLE"
