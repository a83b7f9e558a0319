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

# An unreadable file (lbd started as an unprivileged user) says so, with its path.
cp "$WORK/good.yaml" "$WORK/secret.yaml"
chmod 600 "$WORK/secret.yaml"
set +e
out=$(runuser -u nobody -- "$LBD" --check -c "$WORK/secret.yaml" 2>&1)
rc=$?
set -e
[ $rc -eq 1 ] && [[ $out == *"secret.yaml: cannot open the configuration file: Permission denied"* ]] ||
    fail "unreadable file: rc=$rc out=$out"
pass "unreadable file: $out"

# A second lbd on an address in use fails loudly (the listener's SO_REUSEPORT must not
# let it share the port silently).
cat >"$WORK/run.yaml" <<YAML
lbd:
  listen: 127.0.0.1:$BASE
  admin: 127.0.0.1:$((BASE + 8))
  pool:
    health: {type: none}
    nodes: [{address: 127.0.0.1:$((BASE + 1))}]
YAML
lbd_start first "$WORK/run.yaml" $((BASE + 8))
sed -i "s/admin: 127.0.0.1:$((BASE + 8))/admin: 127.0.0.1:$((BASE + 7))/" "$WORK/run.yaml"
set +e
out=$(timeout 5 "$LBD" -c "$WORK/run.yaml" 2>&1)
rc=$?
set -e
[ $rc -eq 1 ] && [[ $out == *"cannot listen on 127.0.0.1:$BASE: Address already in use"* ]] ||
    fail "second lbd on the same address: rc=$rc out=$out"
pass "a second lbd on a taken address: $(head -1 <<<"$out")"
