#!/bin/bash
# Logs to systemd's journal, natively (issue 22): lbd with log_target journal (and auto
# under a stderr systemd says is the journal) sends each line as a datagram to
# /run/systemd/journal/socket with PRIORITY from the level, SYSLOG_IDENTIFIER, MESSAGE
# and every logfmt field as PGVIP_*; stderr stays quiet. No journald runs here, so the
# test runs lbd in a mount namespace whose /run has a receiver at the journal's socket
# (journal_recv.py), which decodes the datagrams as journald does. Without a journal
# socket, lines fall back to stderr.
source "$(dirname "$0")/lib.sh"

pg_start node0 $((BASE + 1))
cat >"$WORK/lb.yaml" <<YAML
instance: lbj
lbd:
  listen: 127.0.0.1:$BASE
  admin: off
  control: {socket: off}
  log_target: journal
  log_file: $WORK/lb.file.log
  pool:
    health: {type: tcp, interval: 200ms, timeout: 150ms, fall: 1}
    nodes:
      - {name: node0, address: 127.0.0.1:$((BASE + 1))}
      - {name: gone, address: 127.0.0.1:$((BASE + 2))}
YAML
sed 's/^  log_target: journal$/  log_target: auto/' "$WORK/lb.yaml" >"$WORK/lb-auto.yaml"

# run_in_ns CONFIG NAME [JOURNAL_STREAM_FROM_STDERR]: lbd for 1.5 s in a namespace whose
# /run/systemd/journal/socket is our receiver; its datagrams in NAME.dgrams (one JSON
# object a line), its stderr in NAME.err.
run_in_ns() {
    local cfg=$1 name=$2 auto=${3:-}
    unshare --mount --propagation private bash -c '
        set -e
        mount -t tmpfs tmpfs /run
        mkdir -p /run/systemd/journal
        python3 "$1" /run/systemd/journal/socket "$2.dgrams" & recv=$!
        for _ in $(seq 50); do [ -S /run/systemd/journal/socket ] && break; sleep 0.02; done
        exec 2>"$2.err"
        if [ -n "$5" ]; then export JOURNAL_STREAM=$(stat -L -c "%d:%i" /proc/self/fd/2); fi
        "$3" -c "$4" & lbd=$!
        sleep 1.5
        kill -TERM $lbd; sleep 0.2; kill -TERM $lbd 2>/dev/null || true; wait $lbd || true
        sleep 0.2; kill $recv' _ "$(dirname "$0")/journal_recv.py" "$WORK/$name" "$LBD" "$cfg" "$auto"
}

run_in_ns "$WORK/lb.yaml" journal
python3 - "$WORK/journal.dgrams" <<'PY' || fail "the journal's records (above)"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
def find(event, **f):
    return [r for r in recs if r.get("PGVIP_EVENT") == event and all(r.get(k) == v for k, v in f.items())]
start = find("start", PGVIP_NODES="2")
assert start, "no start record: %r" % recs[:3]
r = start[0]
assert r["PRIORITY"] == "6" and r["SYSLOG_IDENTIFIER"] == "lbd" and r["PGVIP_INSTANCE"] == "lbj", r
assert r["MESSAGE"].startswith("ts=") and "event=start" in r["MESSAGE"], r
down = find("node_state", PGVIP_NODE="gone", PGVIP_TO="down")
assert down and down[0]["PRIORITY"] == "4", "node down (warn) as PRIORITY 4: %r" % down
assert down[0]["PGVIP_REASON"].startswith("connect: connection refused ("), down[0]  # quoted in logfmt, plain here
print("%d records; start PRIORITY 6, node down PRIORITY 4 with PGVIP_REASON=%s" % (len(recs), down[0]["PGVIP_REASON"]))
PY
grep -q "event=start" "$WORK/journal.err" && fail "lines went to stderr with log_target journal: $(head -3 "$WORK/journal.err")"
grep -q "event=start" "$WORK/lb.file.log" || fail "log_file no longer gets the lines"
pass "log_target journal: native records (PRIORITY, SYSLOG_IDENTIFIER, MESSAGE, PGVIP_* fields), stderr quiet, log_file kept"

run_in_ns "$WORK/lb-auto.yaml" auto yes
grep -q '"PGVIP_EVENT": "start"' "$WORK/auto.dgrams" || fail "auto with JOURNAL_STREAM naming stderr did not use the journal"
run_in_ns "$WORK/lb-auto.yaml" plain
grep -q "event=start" "$WORK/plain.err" || fail "auto without JOURNAL_STREAM did not log on stderr"
[ -s "$WORK/plain.dgrams" ] && fail "auto without JOURNAL_STREAM sent to the journal"
pass "log_target auto: the journal when systemd's JOURNAL_STREAM names stderr, else stderr"

# No journal socket at all: the lines are not lost, they go to stderr.
unshare --mount --propagation private bash -c '
    mount -t tmpfs tmpfs /run
    "$1" -c "$2" 2>"$3" & lbd=$!
    sleep 1; kill -TERM $lbd; sleep 0.2; kill -TERM $lbd 2>/dev/null; wait $lbd' _ "$LBD" "$WORK/lb.yaml" "$WORK/nojournal.err" || true
grep -q "event=start" "$WORK/nojournal.err" || fail "with no journal socket the lines were lost"
pass "no journal socket: the lines fall back to stderr"
