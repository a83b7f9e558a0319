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

# Every mistake of a file in one run, each with its place, then how many.
cat >"$WORK/bad3.yaml" <<YAML
lbd:
  listen: 127.0.0.1:$BASE
  maxconn: lots
  pool:
    health: {type: pgsql, interval: 2x}
    nodes: [{name: n0, address: 127.0.0.1:$((BASE + 1))}]
YAML
for d in "$LBD" "$VRRPD"; do
    [ "$d" = "$VRRPD" ] && sed -i 's/^lbd:/vrrp:\n  interface: lo\n  groups: [{vrid: 300, vips: [10.0.0.1], interval: 1x}]\nlbd:/' "$WORK/bad3.yaml"
    set +e
    out=$("$d" --check -c "$WORK/bad3.yaml" 2>&1)
    rc=$?
    set -e
    name=$(basename "$d")
    [ $rc -eq 1 ] || fail "$name: a file with three mistakes: exit $rc"
    if [ "$name" = lbd ]; then
        for want in "bad3.yaml:3:12: lbd.maxconn:" "bad3.yaml:5:20: lbd.pool.health.type: \"pgsql\"" \
            "bad3.yaml:5:37: lbd.pool.health.interval:" "lbd: 3 errors"; do
            [[ $out == *"$want"* ]] || fail "lbd --check does not name every mistake ($want): $out"
        done
    else
        for want in "vrrp.groups[0].vrid:" "vrrp.groups[0].interval:" "vrrpd: 2 errors"; do
            [[ $out == *"$want"* ]] || fail "vrrpd --check does not name every mistake ($want): $out"
        done
    fi
    pass "$name --check names every mistake in one run: $(tail -1 <<<"$out")"
done

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

# The two sections against each other: mistakes each daemon accepts alone and the pair
# cannot work with (issue 22). 203.0.113.0/24 (TEST-NET-3) is on no host.
pair_case() { # pair_case NAME WANT: the file $WORK/NAME.yaml fails with WANT
    set +e
    out=$("$LBD" --check -c "$WORK/$1.yaml" 2>&1)
    rc=$?
    set -e
    [ $rc -eq 1 ] && [[ $out == *"$2"* ]] || fail "$1: rc=$rc; got '$out', want '$2'"
    pass "$1: $out"
}
pair_file() { # pair_file NAME LISTEN TRACK_SOCKET
    cat >"$WORK/$1.yaml" <<YAML
instance: lb1
lbd:
  listen: [$2]
  liveness_socket: /run/pgvip/lbd.sock
  pool:
    nodes: [{address: 127.0.0.1:$((BASE + 1))}]
vrrp:
  interface: eth0
  track: {lbd: {socket: $3}}
  groups:
    - {vrid: 51, priority: 150, vips: [203.0.113.100]}
YAML
}
pair_file pair_ok "203.0.113.100:5432, 127.0.0.1:$BASE" /run/pgvip/lbd.sock
out=$("$LBD" --check -c "$WORK/pair_ok.yaml") || fail "a consistent pair file was rejected: $out"
pass "pair file: a listen address that a group moves, and loopback, with the same liveness socket: ok"
pair_file listen_unmoved "203.0.113.100:5432, 203.0.113.105:5432" /run/pgvip/lbd.sock
pair_case listen_unmoved "listen_unmoved.yaml:3:11: lbd.listen: 203.0.113.105:5432 is in no vrrp group's vips and not an address of this host"
pair_file socket_mismatch "203.0.113.100:5432" /run/pgvip/other.sock
pair_case socket_mismatch "socket_mismatch.yaml:9:25: vrrp.track.lbd.socket: \"/run/pgvip/other.sock\" is not lbd.liveness_socket (/run/pgvip/lbd.sock)"
# vrrpd --check on a host without the file's interface: valid, with a warning (--check
# may run on a build host; vrrpd refuses to start there).
sed 's/interface: eth0/interface: pgvip-nosuch0/' "$WORK/pair_ok.yaml" >"$WORK/no_iface.yaml"
out=$("$VRRPD" --check -c "$WORK/no_iface.yaml" 2>&1) || fail "vrrpd --check refused a file for a missing interface: $out"
[[ $out == *"warning: this host has no interface pgvip-nosuch0; vrrpd will not start here"* ]] ||
    fail "vrrpd --check does not warn of the missing interface: $out"
pass "vrrpd --check warns of an interface this host lacks: $(tail -1 <<<"$out")"
sed 's/priority: 150/priority: 255/' "$WORK/pair_ok.yaml" >"$WORK/owner.yaml"
out=$("$VRRPD" --check -c "$WORK/owner.yaml" 2>&1) || fail "vrrpd --check refused priority 255: $out"
[[ $out == *"warning: vrrp.groups[0] (vrid 51): priority 255 is for the owner of the addresses"* ]] ||
    fail "vrrpd --check does not warn of priority 255: $out"
pass "vrrpd --check warns of priority 255 (address owner: two masters if the peer says 255 too)"
