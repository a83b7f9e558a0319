#!/bin/bash
# lab.sh -- the pair in network namespaces: the compose topology for machines without
# Docker. A switch namespace (a bridge), three PostgreSQL nodes, instances lb1 and lb2
# (each lbd + vrrpd from one config file), and a client; joined by veth pairs on
# 10.77.0.0/24. No lab namespace has a default route: nothing leaves the machine.
#
#   scripts/lab.sh up                 build the lab and start everything
#   scripts/lab.sh status             who holds which VIP, group states, node health, and
#                                     where each instance's status page is
#   scripts/lab.sh kill lb1           the lab's `docker kill`: SIGKILL + link down
#   scripts/lab.sh stop lb1           planned stop: SIGTERM lbd (hands over), then vrrpd
#   scripts/lab.sh start lb1          start the instance again, fresh
#   scripts/lab.sh exec client CMD..  run a command in a lab namespace
#   scripts/lab.sh psql [ARGS]        psql from the client to VIP-A
#   scripts/lab.sh down               stop everything and remove the lab
#
# Sourced by the tests, it provides the same as functions (lab_up, lab_kill, ...).
# Settings (environment): LAB_PREFIX (pgv), LAB_DIR, LAB_INTERVAL (100ms),
# LAB_PREEMPT (false), LAB_PREEMPT_DELAY (0s), LAB_NODES (3), LAB_LBD (1), BUILD_DIR,
# LAB_UNICAST (0: multicast; 1: unicast peers), LAB_NOTIFY (0; 1: log notify calls),
# LAB_PG_MAXCONN (300 per node), LAB_REALTIME (0; 1: vrrpd realtime: true),
# LAB_SILENT_HOLD (unset: vrrpd's silent_master_hold default, off; 1s: on),
# LAB_IPV6 (0; 1: IPv6 addresses too, and an IPv6 VIP in each group),
# LAB_STACK (pgvip; or haproxy: HAProxy + keepalived in each instance, for comparison),
# LAB_HAPROXY_THREADS (HAProxy's nbthread; unset: its default, one per core),
# LAB_PAGE_PORTS ("8081 8083": host loopback ports forwarded to lb1's and lb2's status
# pages, as CockroachDB + HAProxy setups publish their stats pages; "" for none).
# LAB_STATE (0; 1: both daemons keep pgvipctl's changes across a restart in
# LAB_DIR/INSTANCE-lbd/state.yaml and LAB_DIR/INSTANCE-vrrpd-state.yaml).

LAB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB_PREFIX=${LAB_PREFIX:-pgv}
LAB_DIR=${LAB_DIR:-/tmp/pgvip-lab-$LAB_PREFIX}
LAB_NET=10.77.0
LAB_INTERVAL=${LAB_INTERVAL:-100ms}
LAB_PREEMPT=${LAB_PREEMPT:-false}
LAB_PREEMPT_DELAY=${LAB_PREEMPT_DELAY:-0s}
LAB_NODES=${LAB_NODES:-3}
LAB_LBD=${LAB_LBD:-1}
LAB_UNICAST=${LAB_UNICAST:-0}
LAB_NOTIFY=${LAB_NOTIFY:-0}
LAB_STATE=${LAB_STATE:-0}
LAB_STACK=${LAB_STACK:-pgvip}
LAB_PAGE_PORTS=${LAB_PAGE_PORTS-8081 8083}
LAB_BUILD=${BUILD_DIR:-$LAB_ROOT/build}
LAB_LBD_BIN=${LBD:-$LAB_BUILD/lbd/lbd}
LAB_VRRPD_BIN=${VRRPD:-$LAB_BUILD/vrrpd/vrrpd}
LAB_PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
VIP_A=$LAB_NET.100
VIP_B=$LAB_NET.101
# LAB_IPV6=1: every host also gets fd77::N/64 (N: its IPv4 address's last byte), and each
# group moves an IPv6 VIP with its IPv4 one (vrrpd's vips; lbd listens on both).
LAB_IPV6=${LAB_IPV6:-0}
LAB_NET6=fd77:
VIP6_A=$LAB_NET6:100
VIP6_B=$LAB_NET6:101

lab_ns() { echo "$LAB_PREFIX-$1"; }
lab_ip() {
    case $1 in
    node*) echo "$LAB_NET.$((1 + ${1#node}))" ;;
    lb1) echo "$LAB_NET.11" ;;
    lb2) echo "$LAB_NET.12" ;;
    client) echo "$LAB_NET.50" ;;
    esac
}
lab_ip6() { local v4; v4=$(lab_ip "$1"); echo "$LAB_NET6:${v4##*.}"; }
lab_log() { printf '%s lab: %s\n' "$(date +%T.%3N)" "$*"; }
lab_exec() {
    local h=$1
    shift
    ip netns exec "$(lab_ns "$h")" "$@"
}

# A host namespace joined to the switch: its eth0 is one end of a veth pair, the other
# end (named after the host) is a port of the bridge.
lab_host() {
    local h=$1 sw
    sw=$(lab_ns sw)
    ip netns add "$(lab_ns "$h")"
    ip link add eth0 netns "$(lab_ns "$h")" type veth peer name "$h" netns "$sw"
    ip -n "$sw" link set "$h" master br0 up
    ip -n "$(lab_ns "$h")" link set lo up
    ip -n "$(lab_ns "$h")" addr add "$(lab_ip "$h")/24" dev eth0
    [ "$LAB_IPV6" = 1 ] && ip -n "$(lab_ns "$h")" addr add "$(lab_ip6 "$h")/64" dev eth0 nodad
    ip -n "$(lab_ns "$h")" link set eth0 up
}

lab_write_config() { # lab_write_config lb1|lb2
    local inst=$1 me peer pa pb state="" vstate=""
    me=$(lab_ip "$inst")
    if [ "$LAB_STATE" = 1 ]; then
        state=", state_file: $LAB_DIR/$inst-lbd/state.yaml" vstate=", state_file: $LAB_DIR/$inst-vrrpd-state.yaml"
    fi
    if [ "$inst" = lb1 ]; then peer=$(lab_ip lb2) pa=150 pb=100; else peer=$(lab_ip lb1) pa=100 pb=150; fi
    {
        echo "# $inst: one file, both daemons (lbd -c, vrrpd -c). Written by scripts/lab.sh."
        echo "instance: $inst"
        echo "lbd:"
        if [ "$LAB_IPV6" = 1 ]; then
            echo "  listen: [$VIP_A:5432, $VIP_B:5432, '[$VIP6_A]:5432', '[$VIP6_B]:5432']"
        else
            echo "  listen: [$VIP_A:5432, $VIP_B:5432]"
        fi
        echo "  admin: 127.0.0.1:8081"
        echo "  liveness_socket: $LAB_DIR/$inst-lbd.sock"
        echo "  control: {socket: $LAB_DIR/$inst-control.sock$state}   # pgvipctl -s ..."
        echo "  user: nobody                 # binds as root, then runs unprivileged"
        echo "  timeouts: {connect: 500ms, startup: 5s, drain: 5s, handover: 500ms}"
        echo "  peer: {address: $peer:5433, listen: $me:5433}"
        echo "  pool:"
        echo "    health: {type: pg, interval: 500ms, timeout: 400ms, rise: 2, fall: 2, pg_user: postgres}"
        echo "    nodes:"
        local i
        for ((i = 0; i < ${LAB_NODES:-3}; i++)); do
            echo "      - {name: node$i, address: $(lab_ip node$i):5432}"
        done
        [ "${LAB_NODES:-3}" -gt 0 ] || echo "      - {name: none, address: 127.0.0.1:1}"
        echo "vrrp:"
        echo "  interface: eth0"
        echo "  state_file: $LAB_DIR/$inst-vrrpd.json"
        echo "  admin: 127.0.0.1:8082          # vrrpd's /metrics and /status"
        echo "  control: {socket: $LAB_DIR/$inst-vrrpd-control.sock$vstate}   # pgvipctl -S ... vrrp"
        echo "  transitions_file: $LAB_DIR/$inst-transitions.log"
        [ "${LAB_REALTIME:-0}" = 1 ] && echo "  realtime: true"
        [ -n "${LAB_SILENT_HOLD:-}" ] && echo "  silent_master_hold: $LAB_SILENT_HOLD"
        [ "$LAB_UNICAST" = 1 ] && echo "  unicast_peers: [$peer]"
        [ "$LAB_NOTIFY" = 1 ] && echo "  notify: 'echo \"\$1 \$2 \$3 \$VRRP_FROM\" >> $LAB_DIR/$inst-notify.log'"
        if [ "$LAB_LBD" = 1 ]; then
            echo "  track: {link: true, lbd: {socket: $LAB_DIR/$inst-lbd.sock, interval: 50ms, timeout: 1s}}"
        else
            echo "  track: {link: true}"
        fi
        echo "  groups:"
        local va=$VIP_A vb=$VIP_B
        [ "$LAB_IPV6" = 1 ] && va="$VIP_A, '$VIP6_A'" vb="$VIP_B, '$VIP6_B'"
        echo "    - {vrid: 51, priority: $pa, interval: $LAB_INTERVAL, preempt: $LAB_PREEMPT, preempt_delay: $LAB_PREEMPT_DELAY, vips: [$va]}"
        echo "    - {vrid: 52, priority: $pb, interval: $LAB_INTERVAL, preempt: $LAB_PREEMPT, preempt_delay: $LAB_PREEMPT_DELAY, vips: [$vb]}"
    } >"$LAB_DIR/$inst.yaml"
}

# The comparison stack: HAProxy (TCP mode, roundrobin, check) and keepalived (VRRPv3,
# same VIPs, priorities and interval; a track script on haproxy, as users deploy it).
lab_write_haproxy_keepalived() { # lab_write_haproxy_keepalived lb1|lb2
    local inst=$1 me pa pb i
    me=$(lab_ip "$inst")
    if [ "$inst" = lb1 ]; then pa=150 pb=100; else pa=100 pb=150; fi
    {
        echo "global"
        echo "    maxconn 8000"
        [ -n "${LAB_HAPROXY_THREADS:-}" ] && echo "    nbthread $LAB_HAPROXY_THREADS"
        echo "    pidfile $LAB_DIR/$inst-haproxy.pidfile"
        echo "defaults"
        echo "    mode tcp"
        echo "    timeout connect 500ms"
        echo "    timeout client 1h"
        echo "    timeout server 1h"
        echo "listen pg"
        echo "    bind $VIP_A:5432 transparent"
        echo "    bind $VIP_B:5432 transparent"
        echo "    balance roundrobin"
        echo "    default-server check inter 500ms fall 2 rise 2"
        for ((i = 0; i < LAB_NODES; i++)); do echo "    server node$i $(lab_ip node$i):5432"; done
    } >"$LAB_DIR/$inst-haproxy.cfg"
    local adv=${LAB_INTERVAL%ms}
    adv=$(awk -v m="$adv" 'BEGIN { printf "%.2f", m / 1000 }')
    {
        echo "global_defs {"
        echo "    vrrp_version 3"
        echo "    script_user root"
        if [ "${LAB_REALTIME:-0}" = 1 ]; then # as vrrpd's realtime: SCHED_RR, no swapping
            echo "    vrrp_rt_priority 50"
            echo "    vrrp_no_swap"
        fi
        echo "}"
        echo "vrrp_script chk_haproxy {"
        echo "    script \"$LAB_DIR/$inst-chk-haproxy.sh\""
        echo "    interval 1"
        echo "    fall 1"
        echo "    rise 1"
        echo "}"
        local vrid vip prio
        for vrid in 51 52; do
            if [ $vrid = 51 ]; then vip=$VIP_A prio=$pa; else vip=$VIP_B prio=$pb; fi
            echo "vrrp_instance G$vrid {"
            echo "    state BACKUP"
            echo "    interface eth0"
            echo "    virtual_router_id $vrid"
            echo "    priority $prio"
            echo "    advert_int $adv"
            echo "    nopreempt"
            echo "    virtual_ipaddress { $vip/32 dev eth0 }"
            echo "    track_script { chk_haproxy }"
            echo "}"
        done
    } >"$LAB_DIR/$inst-keepalived.conf"
    printf '#!/bin/sh\n# keepalived track script: is haproxy alive?\nkill -0 "$(cat %s)"\n' \
        "$LAB_DIR/$inst-lbd.pid" >"$LAB_DIR/$inst-chk-haproxy.sh"
    chmod 755 "$LAB_DIR/$inst-chk-haproxy.sh"
}

# Server-side TCP keepalive, as production nodes need it: an instance killed with its link
# down never closes its node connections, and without keepalive their backends would
# count against max_connections for the kernel's default two hours.
LAB_PG_KEEPALIVE="-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3"
lab_pg_start() { # lab_pg_start node0
    local n=$1 ip
    ip=$(lab_ip "$n")
    # PostgreSQL's files live in pg/, owned by postgres; the lab directory stays root's
    # (vrrpd keeps no CAP_DAC_OVERRIDE, and writes its state file there).
    local pg="$LAB_DIR/pg"
    mkdir -p "$pg"
    chown postgres "$pg"
    if [ ! -d "$pg/$n" ]; then
        if [ ! -d "$pg/template" ]; then
            runuser -u postgres -- "$LAB_PGBIN/initdb" -D "$pg/template" -A trust \
                -U postgres --no-sync >/dev/null
            echo "host all all $LAB_NET.0/24 trust" >>"$pg/template/pg_hba.conf"
        fi
        cp -a "$pg/template" "$pg/$n"
    fi
    lab_exec "$n" runuser -u postgres -- "$LAB_PGBIN/pg_ctl" -D "$pg/$n" -w -t 30 \
        -l "$pg/$n.log" \
        -o "-p 5432 -k $pg/$n -c listen_addresses=$ip,127.0.0.1 -c fsync=off -c max_connections=${LAB_PG_MAXCONN:-300} $LAB_PG_KEEPALIVE" \
        start >/dev/null
}

lab_start() { # lab_start lb1: the instance's link up, lbd, then vrrpd
    lab_start_proxy "$1"
    lab_start_vrrp "$1"
}

lab_start_proxy() { # the link up and the proxy (lbd or haproxy)
    local inst=$1 pid
    ip -n "$(lab_ns "$inst")" link set eth0 up
    ip -n "$(lab_ns sw)" link set "$inst" up
    # A link that went down lost its IPv6 addresses (the kernel flushes them unless
    # keep_addr_on_down is set): give it back its own.
    if [ "$LAB_IPV6" = 1 ]; then
        ip -n "$(lab_ns "$inst")" addr replace "$(lab_ip6 "$inst")/64" dev eth0 nodad
    fi
    if [ "$LAB_STACK" = haproxy ]; then
        ip netns exec "$(lab_ns "$inst")" haproxy -f "$LAB_DIR/$inst-haproxy.cfg" -db \
            >>"$LAB_DIR/$inst-haproxy.log" 2>&1 &
        pid=$!
        disown "$pid"
        echo "$pid" >"$LAB_DIR/$inst-lbd.pid" # the proxy, whichever it is
    elif [ "$LAB_LBD" = 1 ]; then
        # ip netns exec execs the daemon: $! is the daemon's own PID.
        ip netns exec "$(lab_ns "$inst")" "$LAB_LBD_BIN" -c "$LAB_DIR/$inst.yaml" \
            >>"$LAB_DIR/$inst-lbd.log" 2>&1 &
        pid=$!
        disown "$pid"
        echo "$pid" >"$LAB_DIR/$inst-lbd.pid"
    fi
}

lab_start_vrrp() { # the VRRP daemon (vrrpd or keepalived)
    local inst=$1 pid
    if [ "$LAB_STACK" = haproxy ]; then
        rm -f "$LAB_DIR/$inst"-keepalived*.pid
        ip netns exec "$(lab_ns "$inst")" keepalived -n -l -D -f "$LAB_DIR/$inst-keepalived.conf" \
            -p "$LAB_DIR/$inst-keepalived.pid" -r "$LAB_DIR/$inst-keepalived-vrrp.pid" \
            >>"$LAB_DIR/$inst-vrrpd.log" 2>&1 &
    else
        ip netns exec "$(lab_ns "$inst")" "$LAB_VRRPD_BIN" -c "$LAB_DIR/$inst.yaml" \
            >>"$LAB_DIR/$inst-vrrpd.log" 2>&1 &
    fi
    pid=$!
    disown "$pid"
    echo "$pid" >"$LAB_DIR/$inst-vrrpd.pid"
}

# The status pages: lbd's admin endpoint listens on 127.0.0.1:8081 inside each instance's
# namespace. A forwarder (socat) on the host's loopback, port N, reaches it from a browser
# on this machine; nothing is exposed beyond 127.0.0.1.
lab_page_port() { # lab_page_port lb1 -> the host port, or "" when none
    local ports=($LAB_PAGE_PORTS)
    case $1 in lb1) echo "${ports[0]:-}" ;; lb2) echo "${ports[1]:-}" ;; esac
}
lab_pages_start() {
    local inst port pid
    command -v socat >/dev/null || { echo "lab: no socat: status pages not forwarded" >&2; return 0; }
    for inst in lb1 lb2; do
        port=$(lab_page_port "$inst")
        [ -n "$port" ] || continue
        # setsid: the forwarder leads its own process group, so lab_down ends its
        # per-connection children with it.
        setsid socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" \
            "EXEC:ip netns exec $(lab_ns "$inst") socat STDIO TCP\:127.0.0.1\:8081" \
            >>"$LAB_DIR/page-$inst.log" 2>&1 &
        pid=$!
        disown "$pid"
        echo "$pid" >"$LAB_DIR/page-$inst.pid"
    done
    sleep 0.2
    for inst in lb1 lb2; do
        [ -f "$LAB_DIR/page-$inst.pid" ] || continue
        kill -0 "$(cat "$LAB_DIR/page-$inst.pid")" 2>/dev/null ||
            echo "lab: cannot forward 127.0.0.1:$(lab_page_port "$inst") to $inst's status page" \
                "(port taken? set LAB_PAGE_PORTS): $(tail -1 "$LAB_DIR/page-$inst.log")" >&2
    done
}
lab_pages_stop() {
    local inst pid
    for inst in lb1 lb2; do
        [ -f "$LAB_DIR/page-$inst.pid" ] || continue
        pid=$(cat "$LAB_DIR/page-$inst.pid")
        kill -TERM -- "-$pid" 2>/dev/null || true
        rm -f "$LAB_DIR/page-$inst.pid"
    done
}

lab_up() {
    [ "$(id -u)" -eq 0 ] || { echo "lab: needs root (network namespaces)" >&2; return 1; }
    [ -x "$LAB_VRRPD_BIN" ] || { echo "lab: $LAB_VRRPD_BIN not built (scripts/build.sh)" >&2; return 1; }
    if ip netns list | grep -q "^$(lab_ns sw)\b"; then
        echo "lab: $(lab_ns sw) exists; run 'scripts/lab.sh down' first" >&2
        return 1
    fi
    mkdir -p "$LAB_DIR"
    chmod 755 "$LAB_DIR"
    ip netns add "$(lab_ns sw)"
    ip -n "$(lab_ns sw)" link add br0 type bridge
    ip -n "$(lab_ns sw)" link set br0 up
    local h i
    for ((i = 0; i < LAB_NODES; i++)); do lab_host "node$i"; done
    for h in lb1 lb2 client; do lab_host "$h"; done
    for ((i = 0; i < LAB_NODES; i++)); do lab_pg_start "node$i"; done
    lab_write_config lb1
    lab_write_config lb2
    if [ "$LAB_STACK" = haproxy ]; then
        lab_write_haproxy_keepalived lb1
        lab_write_haproxy_keepalived lb2
    fi
    # Both at once: priorities then give VIP-A to lb1 and VIP-B to lb2 (active-active).
    # Proxies first, then the two VRRP daemons back to back: with short adverts the
    # master down interval is only ~70 ms, and a VRRP daemon started later than that
    # finds the other already master of both (preemption off keeps it so).
    lab_start_proxy lb1
    lab_start_proxy lb2
    sleep 0.2
    lab_start_vrrp lb1
    lab_start_vrrp lb2
    [ "$LAB_STACK" = haproxy ] || lab_pages_start
    lab_wait_masters 10
}

# The instance whose vrrpd masters VRID ($1), from the state files; "" when none.
lab_master_of() {
    local vrid=$1 inst
    for inst in lb1 lb2; do
        local f="$LAB_DIR/$inst-vrrpd.json"
        [ -f "$f" ] || continue
        if grep -q "\"vrid\":$vrid,\"state\":\"MASTER\"" "$f"; then
            echo "$inst"
            return
        fi
    done
}

# Who holds a VIP on its interface (the kernel's view, not the daemons').
lab_holders() { # lab_holders 10.77.0.100 (or fd77::100) -> "lb1" / "lb1 lb2" / ""
    local vip=$1 inst out="" len=32
    [[ $vip == *:* ]] && len=128
    for inst in lb1 lb2; do
        # An address on a downed interface (a killed instance) serves nothing.
        ip -n "$(lab_ns "$inst")" -br addr show dev eth0 2>/dev/null |
            awk -v v="$vip/$len" '$2 == "UP" { for (i = 3; i <= NF; i++) if ($i == v) f = 1 } END { exit !f }' &&
            out="$out $inst"
    done
    echo "${out# }"
}

lab_wait_masters() { # both VIPs held by exactly one instance each, within $1 s
    local deadline=$((SECONDS + ${1:-10}))
    while [ $SECONDS -lt $deadline ]; do
        local a b
        a=$(lab_holders "$VIP_A")
        b=$(lab_holders "$VIP_B")
        if [ -n "$a" ] && [ -n "$b" ] && [ "${a// /}" = "$a" ] && [ "${b// /}" = "$b" ]; then
            return 0
        fi
        sleep 0.05
    done
    echo "lab: VIPs not settled: A held by '$(lab_holders "$VIP_A")', B by '$(lab_holders "$VIP_B")'" >&2
    return 1
}

lab_kill() { # the lab's `docker kill`: SIGKILL every process of the instance, link down
    local inst=$1 pid
    # The VRRP daemon first: were the proxy first, vrrpd (or keepalived) could still see
    # it die and resign with priority 0, a faster handover than a real crash allows.
    # This way the peer must notice the silence (master down interval), the worst case.
    # All of them at once, as the kernel ends a container's processes: the list is read
    # first and one kill builtin sends every signal within microseconds (a loop of
    # kills after reading it took hundreds of ms on a slow host, while the instance's
    # lbd still took sessions that the kill then cut).
    local f pids i first=""
    pids=$(ip netns pids "$(lab_ns "$inst")")
    for f in keepalived-vrrp vrrpd; do
        [ -f "$LAB_DIR/$inst-$f.pid" ] && first="$first $(cat "$LAB_DIR/$inst-$f.pid")"
    done
    # The moment of the kill, for measurements (the builtin clock: no fork in between).
    LAB_KILLED_MS=$((${EPOCHREALTIME/./} / 1000))
    # shellcheck disable=SC2086
    kill -KILL $first $pids 2>/dev/null || true
    # As with docker kill: the processes end first (their kernel closes their sockets,
    # so TCP peers get a FIN or RST), then the container's network goes with it.
    for pid in $pids; do
        for ((i = 0; i < 200; i++)); do lab_gone "$pid" && break; sleep 0.005; done
    done
    ip -n "$(lab_ns "$inst")" link set eth0 down
}

lab_cut() { # the instance's host is lost (power, a network split): it just goes silent
    ip -n "$(lab_ns "$1")" link set eth0 down
    LAB_CUT_MS=$((${EPOCHREALTIME/./} / 1000)) # (the link is down by now; ip takes a while)
}

lab_gone() { # the process has exited (gone, or a zombie nobody reaps)
    local st
    st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0
    [ -z "$st" ] || [ "$st" = Z ]
}

lab_kill_lbd() {
    local inst=$1 pid
    pid=$(cat "$LAB_DIR/$inst-lbd.pid")
    LAB_KILLED_MS=$((${EPOCHREALTIME/./} / 1000))
    kill -KILL "$pid" 2>/dev/null || true
}

lab_stop() { # planned stop: lbd first (it tells vrrpd, which hands over), then vrrpd
    local inst=$1 pid i
    if [ "$LAB_LBD" = 1 ] && [ -f "$LAB_DIR/$inst-lbd.pid" ]; then
        pid=$(cat "$LAB_DIR/$inst-lbd.pid")
        LAB_STOPPED_MS=$((${EPOCHREALTIME/./} / 1000))
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    pid=$(cat "$LAB_DIR/$inst-vrrpd.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
}

lab_vips() {
    echo "VIP-A $VIP_A held by: $(lab_holders "$VIP_A")    VIP-B $VIP_B held by: $(lab_holders "$VIP_B")"
}

lab_status() {
    local inst vrid
    lab_vips
    for inst in lb1 lb2; do
        local f="$LAB_DIR/$inst-vrrpd.json" state=""
        if [ -f "$f" ] && "$LAB_VRRPD_BIN" --status -c "$LAB_DIR/$inst.yaml" >/dev/null 2>&1; then
            state=$(grep -o '"vrid":[0-9]*,"state":"[A-Z]*","priority":[0-9]*' "$f" |
                sed 's/"vrid":\([0-9]*\),"state":"\([A-Z]*\)","priority":\([0-9]*\)/vrid \1 \2 (priority \3)/' | paste -sd';' -)
            echo "$inst vrrpd: $state"
        else
            echo "$inst vrrpd: not running"
        fi
        if [ "$LAB_LBD" = 1 ]; then
            local st
            if st=$(lab_exec "$inst" curl -fsS --max-time 1 http://127.0.0.1:8081/status 2>/dev/null); then
                echo "$inst lbd: sessions $(grep -o '"sessions":[0-9]*' <<<"$st" | head -1 | cut -d: -f2), nodes: $(grep -o '"name":"[^"]*","address":"[^"]*","state":"[a-z]*"' <<<"$st" | sed 's/"name":"\([^"]*\)".*"state":"\([a-z]*\)"/\1 \2/' | paste -sd',' -)"
                local port
                port=$(lab_page_port "$inst")
                if [ -n "$port" ] && [ -f "$LAB_DIR/page-$inst.pid" ]; then
                    echo "$inst status page: http://127.0.0.1:$port/  (JSON: /status, Prometheus: /metrics)"
                else
                    echo "$inst status page: ip netns exec $(lab_ns "$inst") curl http://127.0.0.1:8081/"
                fi
            else
                echo "$inst lbd: not running"
            fi
        fi
    done
}

lab_down() {
    local h pid i
    [ -d "$LAB_DIR" ] && lab_pages_stop
    for h in sw lb1 lb2 client $(for ((i = 0; i < 3; i++)); do echo "node$i"; done); do
        ip netns list | grep -q "^$(lab_ns "$h")\b" || continue
        case $h in
        node*)
            [ -d "$LAB_DIR/pg/$h" ] && lab_exec "$h" runuser -u postgres -- "$LAB_PGBIN/pg_ctl" \
                -D "$LAB_DIR/pg/$h" stop -m immediate >/dev/null 2>&1 || true
            ;;
        esac
        for pid in $(ip netns pids "$(lab_ns "$h")"); do kill -KILL "$pid" 2>/dev/null || true; done
        ip netns del "$(lab_ns "$h")"
    done
    [ "${KEEP:-0}" = 1 ] || rm -rf "$LAB_DIR"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    cmd=${1:-}
    shift || true
    case $cmd in
    up) lab_up && lab_status ;;
    down) lab_down ;;
    status) lab_status ;;
    kill) lab_kill "$1" ;;
    kill-lbd) lab_kill_lbd "$1" ;;
    stop) lab_stop "$1" ;;
    start) lab_start "$1" ;;
    exec) lab_exec "$@" ;;
    psql) lab_exec client psql -X -h "$VIP_A" -U postgres -d postgres "$@" ;;
    *)
        sed -n '2,20p' "$0"
        exit 2
        ;;
    esac
fi
