#!/bin/bash
# What an operator changed with pgvipctl survives a restart (lbd.control.state_file):
# node0 drained and node1's weight set, then lbd killed (SIGKILL, as a crash) and
# started again: node0 is still drained (no new session reaches it) and node1 keeps its
# weight; lbd says so in its log. lbd runs as nobody after binding: it makes the
# missing directory for that user and writes there. A weight the file changed since is
# dropped (the file wins, as on reload); enable empties the state; a node the file no
# longer lists is skipped; a damaged state file is named (file:line:column) and
# ignored; a directory lbd cannot write is an error line and a counter, and lbd serves on.
source "$(dirname "$0")/lib.sh"

LB=$BASE ADMIN=$((BASE + 9))
CTL=$(dirname "$LBD")/pgvipctl
SOCK=$WORK/lbd.sock
STATE=$WORK/state/lbd.state
for i in 0 1; do pg_start "node$i" $((BASE + 1 + i)); done
config() { # config WEIGHT1 STATE_FILE [EXTRA_NODE]
    cat >"$WORK/lb.yaml" <<YAML
instance: lb1
lbd:
  listen: 127.0.0.1:$LB
  admin: 127.0.0.1:$ADMIN
  user: nobody
  control: {socket: $SOCK, state_file: $2}
  pool:
    balance: roundrobin
    health: {type: pg, interval: 200ms, timeout: 150ms, pg_user: postgres}
    nodes:
      - {name: node0, address: 127.0.0.1:$((BASE + 1))}
      - {name: node1, address: 127.0.0.1:$((BASE + 2)), weight: $1}
${3:-}
YAML
}
restart() { # restart SIGNAL: stop lbd with SIGNAL (KILL: a crash), start it again
    kill -"$1" "$lb1_PID"
    for _ in $(seq 100); do kill -0 "$lb1_PID" 2>/dev/null || break; sleep 0.05; done
    echo "----- restart ($1)" >>"$WORK/lb1.log"
    lbd_start lb1 "$WORK/lb.yaml" $ADMIN
    wait_for 5 "both nodes checked" bash -c "[ \$('$CTL' -s '$SOCK' --json nodes | grep -o '\"health\":\"up\"' | wc -l) = 2 ]"
}
since_restart() { sed -n '/^----- restart/h; /^----- restart/!H; ${x;p}' "$WORK/lb1.log"; }
logged() { grep -q "$1" <<<"$(since_restart)"; } # (not a pipe: under pipefail, grep -q leaving early can fail the writer)
ports() { # ports N: the nodes' ports of N new sessions, sorted and counted
    for _ in $(seq "$1"); do psql_at $LB "select inet_server_port()"; done | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}'
}
field() { # field NODE KEY: from pgvipctl --json nodes
    "$CTL" -s "$SOCK" --json nodes | python3 -c '
import json, sys
print({x["node"]: x for x in json.load(sys.stdin)}[sys.argv[1]][sys.argv[2]])' "$1" "$2"
}

config 1 "$STATE"
lbd_start lb1 "$WORK/lb.yaml" $ADMIN
[ "$(stat -c %U "$WORK/state")" = nobody ] || fail "lbd did not make the state directory for nobody: $(stat -c '%U %a' "$WORK/state")"
[ "$(stat -c %U "$STATE")" = nobody ] || fail "the state file was not written at start as nobody"
grep -q 'event=state_file .*none yet' "$WORK/lb1.log" || fail "the first start does not say there is no state yet"

# --- drain + weight, then a crash --------------------------------------------------
out=$("$CTL" -s "$SOCK" nodes drain node0)
grep -q "; kept across a restart (lbd.control.state_file)$" <<<"$out" || fail "the drain's answer does not say it is kept: $out"
"$CTL" -s "$SOCK" nodes weight node1 7 >/dev/null
grep -q '^  - {name: "node0", admin: drain}$' "$STATE" && grep -q '^  - {name: "node1", admin: ready, weight: 7, file_weight: 1}$' "$STATE" ||
    fail "the state file after drain and weight: $(cat "$STATE")"
restart KILL
[ "$(field node0 admin)" = drain ] && [ "$(field node1 weight)" = 7 ] ||
    fail "after a crash and a start: node0 $(field node0 admin), node1 weight $(field node1 weight)"
logged "level=warn .*event=state_restored node=node0 admin=drain weight=1 file=$STATE" ||
    fail "no state_restored line for node0: $(since_restart | grep state_ | head -3)"
got=$(ports 6)
[ "$got" = "$((BASE + 2)):6 " ] || fail "with node0 drained across the restart, new sessions went to: $got"
pass "drain and weight survive a crash (SIGKILL, start): node0 drained (6 of 6 new sessions on node1), node1 weight 7, logged"

# --- the file's weight changes: the operator's is dropped; enable empties the state -
config 3 "$STATE"
restart TERM
[ "$(field node1 weight)" = 3 ] || fail "node1's weight after the file changed to 3: $(field node1 weight)"
logged "event=state_restored node=node1 admin=ready weight=3 .*weight is dropped" ||
    fail "the dropped weight is not said: $(since_restart | grep state_ | head -3)"
[ "$(field node0 admin)" = drain ] || fail "node0 not drained after the second restart"
"$CTL" -s "$SOCK" nodes enable node0 >/dev/null
grep -q '^nodes: \[\]$' "$STATE" || fail "the state file after enable: $(cat "$STATE")"
restart TERM
[ "$(field node0 admin)" = ready ] || fail "node0 after enable and a restart: $(field node0 admin)"
pass "a weight the file has changed since is dropped (and said); after enable the state is empty and node0 takes sessions"

# --- a node the file no longer lists; a damaged file ------------------------------
"$CTL" -s "$SOCK" nodes disable node1 >/dev/null
config 3 "$STATE" # (unchanged)
sed -i 's/name: "node1"/name: "node9"/' "$STATE"
restart TERM
logged 'event=state_skipped node=node9 .*not in lbd.pool.nodes' || fail "node9 not skipped: $(since_restart | grep state_)"
[ "$(field node1 admin)" = ready ] || fail "node1 took node9's state"
printf 'nodes:\n  - {name: node0, admin: sleeping}\n' >"$STATE"
restart TERM
logged "level=error .*event=state_file_invalid file=$STATE error=\"$STATE:2:[0-9]*: .*admin" ||
    fail "a damaged state file is not named with line and column: $(since_restart | grep state_)"
[ "$(field node0 admin)" = ready ] || fail "node0 not ready after a damaged state file"
grep -q '^nodes: \[\]$' "$STATE" || fail "the damaged state file was not replaced at start: $(cat "$STATE")"
pass "a node the file does not list is skipped; a damaged state file is named ($STATE:2:...) and ignored, then rewritten"

# --- a directory lbd (nobody) cannot write: an error and a counter; lbd serves on ---
mkdir -m 755 "$WORK/rootonly"
config 3 "$WORK/rootonly/lbd.state"
restart TERM
logged 'level=error .*event=state_file_failed .*Permission denied.*will not survive a restart' ||
    fail "no state_file_failed line: $(since_restart | grep state_)"
"$CTL" -s "$SOCK" nodes drain node0 >/dev/null || fail "drain refused when the state cannot be written"
grep -q '^lbd_state_file_failures_total 2$' <<<"$(curl -fsS "http://127.0.0.1:$ADMIN/metrics")" ||
    fail "lbd_state_file_failures_total: $(curl -fsS "http://127.0.0.1:$ADMIN/metrics" | grep state_file)"
[ "$(ports 2)" = "$((BASE + 2)):2 " ] || fail "lbd does not serve as before when its state cannot be written"
pass "a state directory lbd cannot write: state_file_failed at start and on each change (counter 2), lbd serves on"

# --- off: a restart forgets (what lbd did before state_file) ------------------------
config 3 off
restart TERM
out=$("$CTL" -s "$SOCK" nodes drain node0)
grep -q "; until lbd restarts (lbd.control.state_file is off)$" <<<"$out" || fail "the drain's answer does not say how long it lasts: $out"
restart TERM
[ "$(field node0 admin)" = ready ] || fail "with state_file off, node0 stayed drained across a restart"
pass "state_file off: a restart forgets the drain, as before; each answer says how long the change lasts"

stop_gracefully "$lb1_PID"
reports=$(sanitizer_reports)
[ -z "$reports" ] || fail "sanitizer reports in: $reports"
