#!/bin/bash
# What can be checked of compose/ without starting it (docker_drill runs the PostgreSQL
# variant under a real engine; the CockroachDB one needs images from a registry): both
# compose files are valid, both daemons accept every instance config they mount, and
# what users expect of a compose setup is there.
source "$(dirname "$0")/lib.sh"
DIR=$(cd "$(dirname "$0")/../../compose" && pwd)
command -v docker-compose >/dev/null || fail "docker-compose is not installed (scripts/install-deps.sh)"
declare -A SERVICES=(
    [docker-compose.yml]="client init lb1 lb2 prometheus roach1 roach2 roach3"
    [docker-compose.pg.yml]="client lb1 lb2 pg1 pg2 pg3")
declare -A CONFIGS=([docker-compose.yml]="lb1.yaml lb2.yaml" [docker-compose.pg.yml]="lb1-pg.yaml lb2-pg.yaml")
for file in docker-compose.yml docker-compose.pg.yml; do
    out=$(docker-compose -f "$DIR/$file" config -q 2>&1) || fail "$file invalid: $out"
    services=$(docker-compose -f "$DIR/$file" config --services | sort | paste -sd' ')
    [ "$services" = "${SERVICES[$file]}" ] || fail "$file services: $services"
    full=$(docker-compose -f "$DIR/$file" config)
    for inst in ${CONFIGS[$file]}; do
        grep -q "$inst:/etc/pgvip/instance.yaml" <<<"$full" || fail "$file does not mount $inst"
        # The pair's key: the file lbd reads is the one the entrypoint makes
        # (PGVIP_PAIR_KEY), on the volume both instances mount; --check reads it, so it
        # gets a key of its own here.
        key=$(sed -n 's/^ *key_file: \([^ ]*\).*/\1/p' "$DIR/$inst")
        [ -n "$key" ] && grep -q "PGVIP_PAIR_KEY: $key\$" <<<"$full" ||
            fail "compose/$inst: lbd.peer.key_file ($key) is not the PGVIP_PAIR_KEY $file sets"
        [ "$(grep -c -- "- pair-key:$(dirname "$key"):rw\$" <<<"$full")" = 2 ] ||
            fail "$file: the pair-key volume is not mounted at $(dirname "$key") in both instances"
        [ -f "$WORK/peer.key" ] || (umask 077 && head -c 32 /dev/urandom | base64 >"$WORK/peer.key")
        sed "s#$key#$WORK/peer.key#" "$DIR/$inst" >"$WORK/$inst"
        "$LBD" --check -c "$WORK/$inst" >/dev/null || fail "lbd rejects compose/$inst: $("$LBD" --check -c "$WORK/$inst" 2>&1)"
        "$VRRPD" --check -c "$DIR/$inst" >/dev/null || fail "vrrpd rejects compose/$inst"
        # lbd unprivileged; each VIP taken back by the instance that prefers it.
        grep -q "^  user: nobody" "$DIR/$inst" || fail "compose/$inst: lbd should run as nobody (lbd.user)"
        [ "$(grep -c "preempt: true, preempt_delay: 5s" "$DIR/$inst")" = 2 ] ||
            fail "compose/$inst: both groups should preempt after a delay (active-active after a restart)"
    done
    # Healthchecks on every long-running service (the client only sleeps).
    for svc in ${SERVICES[$file]}; do
        case $svc in client | init | prometheus) continue ;; esac
        block=$(awk -v s="  $svc:" '$0 == s {p = 1; next} p && /^  [a-z]/ {p = 0} p' <<<"$full")
        grep -q "healthcheck:" <<<"$block" && continue
        # The PostgreSQL nodes' image has its own (pg_isready).
        [[ $svc == pg* ]] && grep -q "^HEALTHCHECK .*pg_isready" "$DIR/postgres/Dockerfile" && continue
        fail "$file: $svc has no healthcheck"
    done
    # lbd's planned stop must end before Docker's SIGKILL: stop_grace_period above the
    # drain timeout of the instance config.
    for inst in ${CONFIGS[$file]}; do
        drain=$(sed -n 's/.*drain: \([0-9]*\)s.*/\1/p' "$DIR/$inst")
        grace=$(awk -v s="  ${inst%%[-.]*}:" '$0 == s {p = 1; next} p && /^  [a-z]/ {p = 0} p && /stop_grace_period/ {print $2}' <<<"$full")
        [ -n "$drain" ] && [ -n "$grace" ] || fail "$file: no drain timeout ($drain) or stop_grace_period ($grace) for $inst"
        [ "${grace%s}" -gt "$drain" ] || fail "$file: stop_grace_period $grace is not above lbd's drain timeout ${drain}s"
    done
    # The admin endpoints (and Prometheus) are published on the Docker host's loopback
    # only: a status page and metrics are for the operator, not for the network.
    published=$(awk '/^    ports:/ {p = 1; next} p && /^    - / {print $2; next} {p = 0}' <<<"$full")
    [ -n "$published" ] || fail "$file: no published ports found"
    while read -r line; do
        [[ $line == 127.0.0.1:* ]] || fail "$file: a port published beyond the host's loopback: $line"
    done <<<"$published"
    pass "$file: valid ($services); configs accepted; the pair's key on a shared volume; lbd as nobody; healthchecks; grace above drain; ports on 127.0.0.1 ($(paste -sd' ' <<<"$published"))"
done
grep -q "type: http" "$DIR/lb1.yaml" || fail "compose lbd should use CockroachDB's HTTP readiness check"
# Prometheus (profile monitoring) scrapes what the instance configs serve.
grep -q '"lb1:8081", "lb2:8081"' "$DIR/prometheus/prometheus.yml" && grep -q 'admin: 0.0.0.0:8081' "$DIR/lb1.yaml" &&
    grep -q '"lb1:8082", "lb2:8082"' "$DIR/prometheus/prometheus.yml" && grep -q 'admin: 0.0.0.0:8082' "$DIR/lb1.yaml" ||
    fail "compose/prometheus/prometheus.yml scrapes ports the instance configs do not serve"
pass "compose Prometheus scrapes both daemons of both instances"
# The build context leaves build trees and git history out.
for pat in .git 'build\*' results; do
    grep -qx "$pat" "$DIR/../.dockerignore" || fail ".dockerignore does not leave out $pat"
done
pass ".dockerignore leaves out .git, build trees and results"
