#!/bin/bash
# The compose setup cannot run here (no Docker engine), so CI checks what it can: the
# compose file is valid, and both daemons accept the instance configs it mounts.
source "$(dirname "$0")/lib.sh"
DIR=$(cd "$(dirname "$0")/../../compose" && pwd)
command -v docker-compose >/dev/null || fail "docker-compose is not installed (scripts/install-deps.sh)"
out=$(docker-compose -f "$DIR/docker-compose.yml" config -q 2>&1) || fail "compose file invalid: $out"
services=$(docker-compose -f "$DIR/docker-compose.yml" config --services | sort | paste -sd' ')
[ "$services" = "client init lb1 lb2 prometheus roach1 roach2 roach3" ] || fail "services: $services"
pass "docker-compose config: valid ($services)"
for inst in lb1 lb2; do
    "$LBD" --check -c "$DIR/$inst.yaml" >/dev/null || fail "lbd rejects compose/$inst.yaml"
    "$VRRPD" --check -c "$DIR/$inst.yaml" >/dev/null || fail "vrrpd rejects compose/$inst.yaml"
done
grep -q "type: http" "$DIR/lb1.yaml" || fail "compose lbd should use CockroachDB's HTTP readiness check"
pass "lbd --check and vrrpd --check accept compose/lb1.yaml and compose/lb2.yaml"
# Prometheus (profile monitoring) scrapes what the instance configs serve.
grep -q '"lb1:8081", "lb2:8081"' "$DIR/prometheus/prometheus.yml" && grep -q 'admin: 0.0.0.0:8081' "$DIR/lb1.yaml" &&
    grep -q '"lb1:8082", "lb2:8082"' "$DIR/prometheus/prometheus.yml" && grep -q 'admin: 0.0.0.0:8082' "$DIR/lb1.yaml" ||
    fail "compose/prometheus/prometheus.yml scrapes ports the instance configs do not serve"
pass "compose Prometheus scrapes both daemons of both instances"
# The admin endpoints (and Prometheus) are published on the Docker host's loopback only:
# a status page and metrics are for the operator, not for the network.
published=$(docker-compose -f "$DIR/docker-compose.yml" config | awk '/^    ports:/ {p = 1; next} p && /^    - / {print $2; next} {p = 0}')
[ -n "$published" ] || fail "no published ports found in the compose config"
while read -r line; do
    [[ $line == 127.0.0.1:* ]] || fail "a port published beyond the host's loopback: $line"
done <<<"$published"
pass "published ports bind 127.0.0.1 only: $(paste -sd' ' <<<"$published")"
