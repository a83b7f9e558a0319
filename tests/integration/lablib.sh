# lablib.sh -- integration tests on the lab (scripts/lab.sh): the pair in network
# namespaces. Each test gets its own namespace prefix and lab directory, and the lab is
# stopped gracefully (so sanitizers report) and removed on every exit.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export VRRPD=${VRRPD:?set VRRPD to the vrrpd binary}
export LAB_PREFIX="t${BASE}"
export LAB_DIR="$WORK/lab"
export LAB_PAGE_PORTS=${LAB_PAGE_PORTS-} # no host forwarders unless a test asks
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lab.sh"

lab_teardown() {
    local inst
    for inst in lb1 lb2; do
        [ -f "$LAB_DIR/$inst-vrrpd.pid" ] && kill -0 "$(cat "$LAB_DIR/$inst-vrrpd.pid")" 2>/dev/null &&
            lab_stop "$inst" >/dev/null 2>&1
    done
    KEEP=1 lab_down >/dev/null 2>&1
}
CLEANUP_HOOKS+=(lab_teardown)

other() { [ "$1" = lb1 ] && echo lb2 || echo lb1; }

# group_field INST VRID FIELD: a number or string from the instance's state file.
group_field() {
    grep -o "\"vrid\":$2,[^]]*" "$LAB_DIR/$1-vrrpd.json" | grep -o "\"$3\":[^,]*" | head -1 |
        cut -d: -f2 | tr -d '"'
}

# wait_watched INST VRID SECONDS: until INST, a backup of VRID, watches the master's
# vrrpd over the peer watch link (its state file's master_watched). The link is opened
# once the backup knows its master, and a first attempt that finds the master's listener
# not yet open is retried a second later, so a test that kills the master right after
# lab_up must wait for it, or the takeover may come by the master down interval instead.
wait_watched() {
    local inst=$1 vrid=$2 limit=$3 t0
    t0=$(now_ms)
    until [ "$(group_field "$inst" "$vrid" master_watched)" = true ]; do
        [ $(($(now_ms) - t0)) -lt $((limit * 1000)) ] || return 1
        sleep 0.02
    done
}

# wait_holder VIP INST SECONDS: poll every 5 ms until only INST holds VIP; prints ms.
wait_holder() {
    local vip=$1 inst=$2 limit=$3 t0
    t0=$(now_ms)
    while [ "$(lab_holders "$vip")" != "$inst" ]; do
        [ $(($(now_ms) - t0)) -lt $((limit * 1000)) ] || return 1
        sleep 0.005
    done
    echo $(($(now_ms) - t0))
}

# wait_held VIP INST SECONDS: poll every 5 ms until INST holds VIP (others may still
# hold it: a resigning master lingers one interval); prints ms.
wait_held() {
    local vip=$1 inst=$2 limit=$3 t0
    t0=$(now_ms)
    until lab_holders "$vip" | grep -qw "$inst"; do
        [ $(($(now_ms) - t0)) -lt $((limit * 1000)) ] || return 1
        sleep 0.005
    done
    echo $(($(now_ms) - t0))
}

# A new session every 50 ms (PROBE_INTERVAL_MS): on a host whose forks are slow, one every
# 10 ms on two VIPs saturated both cores (every session forks a PostgreSQL backend), and
# the measurement then measured its own load (sessions of 500 ms, vrrpd starved).
probe_start() { # probe_start NAME VIP [DEADLINE_MS]: pgprobe from the client, in the background
    ip netns exec "$(lab_ns client)" "$TOOLS/pgprobe" -i "${PROBE_INTERVAL_MS:-50}" -t "${3:-1000}" -d 60 \
        "host=$2 user=postgres dbname=postgres" >"$WORK/$1.probe" &
    eval "PROBE_$1=$!"
    PIDS+=($!)
}
probe_stop() { # probe_stop NAME: SIGTERM; waits for in-flight attempts to finish
    local pid
    eval "pid=\$PROBE_$1"
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
# late_connect VIP: a client in the client namespace connected to VIP:5432 that sends its
# StartupMessage 600 ms later (late_login.py; its output in $WORK/late_login.out, its PID
# in LATE). It connects only once its process runs: starting one in a namespace took
# seconds at times on a loaded host, and the connect must come right before what the
# caller does next.
late_connect() {
    rm -f "$WORK/late_login.go"
    lab_exec client python3 "$(dirname "${BASH_SOURCE[0]}")/late_login.py" "$1" 5432 0.6 \
        "$WORK/late_login.go" >"$WORK/late_login.out" 2>&1 &
    LATE=$!
    PIDS+=($LATE)
    wait_for 30 "the late client's process" grep -q ready "$WORK/late_login.out"
    touch "$WORK/late_login.go"
    wait_for 5 "the late client connected" grep -q connected "$WORK/late_login.out"
}
outage() { # outage EVENT_MS NAME -> "outage_ms=N failed=N"
    bash "$(dirname "${BASH_SOURCE[0]}")/../../scripts/outage.sh" "$1" "$WORK/$2.probe"
}
# probe_slack NAME EVENT_MS: what the probe adds to an outage it measures on this host:
# one interval (when the next attempt starts) and the median time a good session took
# before the event (an outage ends when the first good session after it ends). A few ms
# on a quiet host; hundreds on a loaded one whose forks are slow (PostgreSQL forks a
# backend per session), which is not the failover's time.
probe_slack() {
    local med
    med=$(awk -v ev="$2" '$3 == "ok" && $2 < ev {print $2 - $1}' "$WORK/$1.probe" | sort -n |
        awk '{v[NR] = $1} END {print NR ? v[int((NR + 1) / 2)] : 0}')
    echo $((med + ${PROBE_INTERVAL_MS:-50}))
}
# log_ms FILE PATTERN: the time (epoch ms) of the last line of a daemon's log matching
# PATTERN, by the daemon's own clock (a poll from here spawns ip(8) and lags on a slow host).
log_ms() {
    local ts
    ts=$(grep -- "$2" "$1" | tail -1 | sed -E 's/^ts=([^ ]+) .*/\1/')
    [ -n "$ts" ] && date -d "$ts" +%s%3N
}
# became_master_ms INST VRID: when INST's vrrpd last logged VRID becoming MASTER.
became_master_ms() {
    log_ms "$LAB_DIR/$1-vrrpd.log" "event=transition vrid=$2 from=[A-Z]* to=MASTER"
}
outage_ms() { # outage_ms "outage_ms=N failed=N" -> N
    local v=${1#outage_ms=}
    echo "${v%% *}"
}
