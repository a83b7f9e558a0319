#!/bin/bash
# lbd --check: a good file passes; each broken file fails with file:line:column.
source "$(dirname "$0")/lib.sh"

cat >"$WORK/good.yaml" <<YAML
instance: lb1
lbd:
  listen: 127.0.0.1:$BASE
  pool:
    nodes: [{name: n0, address: 127.0.0.1:$((BASE + 1))}]
YAML
out=$("$LBD" --check -c "$WORK/good.yaml") || fail "good config rejected: $out"
[[ $out == *"configuration ok"* ]] || fail "unexpected --check output: $out"
pass "good config: $out"

cat >"$WORK/bad.yaml" <<YAML
instance: lb1
lbd:
  listen: 127.0.0.1:$BASE
  pool:
    health: {type: pgsql}
    nodes: [{name: n0, address: 127.0.0.1:$((BASE + 1))}]
YAML
set +e
out=$("$LBD" --check -c "$WORK/bad.yaml" 2>&1)
rc=$?
set -e
[ $rc -eq 1 ] || fail "bad config exit code $rc, want 1"
want="bad.yaml:5:20: lbd.pool.health.type: \"pgsql\" is not a valid choice; expected one of: tcp, pg, http, none"
[[ $out == *"$want"* ]] || fail "message: got '$out', want '$want'"
pass "bad config: $out"

set +e
out=$("$LBD" --check -c "$WORK/missing.yaml" 2>&1)
rc=$?
set -e
[ $rc -eq 1 ] && [[ $out == *"missing.yaml: cannot open the configuration file: No such file"* ]] ||
    fail "missing file: rc=$rc out=$out"
pass "missing file: $out"
