#!/bin/bash
# The Debian package (issue 8): `cpack -G DEB` from a fresh build tree, installed with
# dpkg on this machine, both daemons' --check on the installed example config, the man
# pages and units in place; removed again (dpkg --purge) on every exit. Also: --help and
# the man pages list every configuration key, each documented.
source "$(dirname "$0")/lib.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
if dpkg-query -W -f='${Status}' pgvip 2>/dev/null | grep -q "install ok installed"; then
    fail "a pgvip package is already installed here; this test installs and purges its own"
fi
purge() { dpkg --purge pgvip >/dev/null 2>&1 || true; }
CLEANUP_HOOKS+=(purge)

cmake -S "$SRC" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release -DPGVIP_BUILD_TESTS=OFF >"$WORK/cmake.log" 2>&1 ||
    { cat "$WORK/cmake.log"; fail "cmake configure"; }
cmake --build "$WORK/build" -j "$(nproc)" >>"$WORK/cmake.log" 2>&1 || { tail -30 "$WORK/cmake.log"; fail "build"; }
(cd "$WORK/build" && cpack -G DEB >"$WORK/cpack.log" 2>&1) || { cat "$WORK/cpack.log"; fail "cpack -G DEB"; }
deb=$(ls "$WORK"/build/pgvip_*_*.deb)
pass "cpack -G DEB built $(basename "$deb") ($(stat -c %s "$deb") bytes)"

contents=$(dpkg-deb -c "$deb" | awk '{print $NF}')
for f in ./usr/sbin/lbd ./usr/sbin/vrrpd ./usr/lib/systemd/system/pgvip-lbd.service \
    ./usr/lib/systemd/system/pgvip-vrrpd.service ./usr/share/man/man8/lbd.8.gz \
    ./usr/share/man/man8/vrrpd.8.gz ./usr/share/doc/pgvip/README.md \
    ./usr/share/doc/pgvip/examples/instance.yaml ./usr/share/doc/pgvip/examples/prometheus/alerts.yml \
    ./usr/sbin/pgvipctl ./usr/share/bash-completion/completions/pgvipctl ./etc/pgvip/instance.yaml.example \
    ./usr/share/man/man8/pgvipctl.8.gz ./usr/share/doc/pgvip/changelog.gz \
    ./usr/share/doc/pgvip/copyright; do
    grep -qx "$f" <<<"$contents" || fail "the package lacks $f"
done
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libuv1 libnl-3-200 libnl-route-3-200 libyaml-0-2; do
    grep -q "$lib" <<<"$depends" || fail "Depends lacks $lib: $depends"
done
# lintian: no error (its copyright file says no licence has been chosen yet, as the README
# does; its changelog and pgvipctl(8) are there).
command -v lintian >/dev/null || fail "lintian is not installed (scripts/install-deps.sh)"
lint=$(lintian --tag-display-limit 0 "$deb" 2>&1 | grep -v "root privileges" || true)
errors=$(grep '^E:' <<<"$lint" || true)
[ -z "$errors" ] || fail "lintian errors: $errors"
pass "lintian: no error; $(grep -c '^W:' <<<"$lint" || true) warnings"
dpkg-deb -e "$deb" "$WORK/control"
[ "$(cat "$WORK/control/conffiles")" = /etc/pgvip/instance.yaml.example ] ||
    fail "conffiles: $(cat "$WORK/control/conffiles" 2>&1)"
grep -q adduser <<<"$depends" || fail "Depends lacks adduser (postinst uses it): $depends"
pass "the package holds both daemons, pgvipctl and its completion, units, man pages, /etc/pgvip's example (a conffile), docs; Depends: $depends"

had_user=$(getent passwd pgvip || true)
dpkg -i "$deb" >"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log"; fail "dpkg -i"; }
u=$(getent passwd pgvip) || fail "the package did not create the system user pgvip"
IFS=: read -r _ _ uid gid _ home shell <<<"$u"
[ "$uid" -lt 1000 ] && [ "$shell" = /usr/sbin/nologin ] && [ "$(getent group pgvip | cut -d: -f3)" = "$gid" ] ||
    fail "pgvip is not a system user with its group and no login: $u"
if [ -z "$had_user" ]; then
    deluser_on_exit() { deluser --quiet --system pgvip >/dev/null 2>&1 || true; }
    CLEANUP_HOOKS+=(deluser_on_exit)
fi
dpkg -i "$deb" >>"$WORK/dpkg.log" 2>&1 || fail "dpkg -i again (an upgrade with the user there)"
EX=/usr/share/doc/pgvip/examples/instance.yaml
/usr/sbin/lbd --check -c $EX || fail "installed lbd rejects the installed example config"
/usr/sbin/vrrpd --check -c $EX || fail "installed vrrpd rejects the installed example config"
pass "installed with dpkg; lbd --check and vrrpd --check accept the installed example"

warn=$(MANWIDTH=80 man --warnings -l /usr/share/man/man8/pgvipctl.8.gz 2>&1 >/dev/null)
[ -z "$warn" ] || fail "pgvipctl(8) renders with warnings: $warn"
for d in lbd vrrpd; do
    [ "$(man -w $d 2>/dev/null)" = /usr/share/man/man8/$d.8.gz ] || fail "man -w $d: $(man -w $d 2>&1)"
    warn=$(MANWIDTH=80 man --warnings -l /usr/share/man/man8/$d.8.gz 2>&1 >/dev/null)
    [ -z "$warn" ] || fail "$d(8) renders with warnings: $warn"
    page=$(MANWIDTH=80 man -l /usr/share/man/man8/$d.8.gz 2>/dev/null)
    grep -q "CONFIGURATION" <<<"$page" || fail "$d(8) has no CONFIGURATION section"
done
out=$(cd /usr/lib/systemd/system && systemd-analyze verify --man=no pgvip-lbd.service pgvip-vrrpd.service 2>&1) ||
    fail "systemd-analyze verify on the installed units: $out"
pass "man lbd / man vrrpd render cleanly; installed units verify"

# --help and the man page come from the loader's tables: every key documented, and every
# key the example config uses is listed.
for d in lbd vrrpd; do
    help=$(/usr/sbin/$d --help)
    ! grep -q "(undocumented)" <<<"$help" || fail "$d --help: a key without documentation: $(grep -B2 '(undocumented)' <<<"$help")"
    paths=$(grep -oE '^  [][a-z_.]+$' <<<"$help" | sed 's/^  //')
    [ "$(wc -l <<<"$paths")" -gt 20 ] || fail "$d --help lists only $(wc -l <<<"$paths") keys"
    man=$(MANWIDTH=200 man -l /usr/share/man/man8/$d.8.gz 2>/dev/null)
    for k in $paths; do grep -qF "$k" <<<"$man" || fail "$d(8) lacks $k"; done
    listed=$(sed 's/\[\]//g' <<<"$paths")
    if [ $d = lbd ]; then sect=lbd; else sect=vrrp; fi
    keys=$(python3 - "$EX" "$sect" <<'PY'
import re, sys
path, sect = sys.argv[1], sys.argv[2]
stack, out, cur = [], set(), None
for line in open(path):
    line = line.split("#", 1)[0].rstrip()
    if not line.strip():
        continue
    ind = len(line) - len(line.lstrip(" -"))
    item = re.match(r"\s*- \{(.*)\}", line)
    if item:  # a list item in flow style: its keys belong to the enclosing list
        while stack and stack[-1][0] >= ind:
            stack.pop()
        for inner in re.findall(r"([a-z_]+):", item.group(1)):
            out.add(".".join([k for _, k in stack] + [inner]))
        continue
    m = re.match(r"\s*(?:- )?([a-z_]+):(.*)", line)
    if not m:
        continue
    while stack and stack[-1][0] >= ind:
        stack.pop()
    key, rest = m.group(1), m.group(2).strip()
    prefix = [k for _, k in stack]
    full = ".".join(prefix + [key])
    out.add(full)
    for inner in re.findall(r"([a-z_]+):", rest if rest.startswith("{") else ""):
        out.add(full + "." + inner)
    if rest == "":
        stack.append((ind, key))
for k in sorted(out):
    if k.split(".")[0] in (sect, "instance"):
        print(k)
PY
)
    for k in $keys; do grep -qx "$k" <<<"$listed" || fail "$d --help does not list $k (used by the example)"; done
done
pass "--help and the man pages list every key, all documented; the example's keys are all listed"
