#!/bin/bash
# The status page as an operator uses it (issue 8): the lab up, clients working, one
# instance killed; the survivor's page opened in headless Chromium through the lab's
# host forwarder shows both VIPs MASTER, the transition with its reason, and the node
# table. Then the instance's own daemons hang in turn (SIGSTOP): the page must call each
# DEAD, never show its stale state as healthy, and recover when it resumes; a vrrpd
# reload that fails is shown with its error until a good one follows.
# The screenshot is saved with the test output (results/status_page-SURVIVOR.png).
source "$(dirname "$0")/lablib.sh"
command -v chromium >/dev/null || fail "chromium is not installed (scripts/install-deps.sh)"
command -v socat >/dev/null || fail "socat is not installed (scripts/install-deps.sh)"
export LAB_PAGE_PORTS="$BASE $((BASE + 1))"
OUT=${RESULTS_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/results}
mkdir -p "$OUT"
lab_up >/dev/null || fail "lab did not come up"
status=$(bash "$(dirname "$0")/../../scripts/lab.sh" status 2>&1 | grep "status page") || true
grep -q "lb2 status page: http://127.0.0.1:$((BASE + 1))/" <<<"$status" ||
    fail "lab status does not say where lb2's page is: $status"
pass "lab status prints each page's address"

# Some traffic through both instances, so the counters are not all zero.
for vip in $VIP_A $VIP_B; do
    for _ in 1 2 3; do
        lab_exec client psql -X -h $vip -U postgres -d postgres -Atc 'select 1' >/dev/null || fail "psql to $vip"
    done
done

# Priorities make lb1 the master of VRID 51, but a vrrpd that came up a master down
# interval late finds the other master of both (preemption off): the survivor is then
# lb1, and its page is the one looked at. Either way the takeover must come over the
# peer watch link, so wait until the survivor watches the master.
M=$(lab_master_of 51)
S=$(other "$M")
[ -n "$M" ] || fail "no master for VRID 51"
PAGE_PORT=$([ "$S" = lb1 ] && echo "$BASE" || echo $((BASE + 1)))
wait_watched "$S" 51 5 || fail "$S does not watch $M's vrrpd over the peer watch link"
# Before the kill: each page names the peer instance and its side of each group.
B=$(lab_master_of 52)
if [ "$B" = "$S" ]; then
    SPAGE=$([ "$S" = lb1 ] && echo "$BASE" || echo $((BASE + 1)))
    python3 "$(dirname "$0")/../tools/browse.py" "http://127.0.0.1:$SPAGE/" --timeout 8 \
        --expect "the master of 51 named=document.querySelector('#vrrp tbody tr[data-vrid=\"51\"]').innerText.includes('$M ($(lab_ip "$M"))')" \
        --expect "the peer as backup of 52=document.querySelector('#vrrp tbody tr[data-vrid=\"52\"]').innerText.includes('backup: $M ($(lab_ip "$M"))')" \
        >"$WORK/browse-peer.log" 2>&1 || { cat "$WORK/browse-peer.log"; fail "$S's page does not name its peer $M"; }
    pass "$S's page names the peer: $M master of 51, $M the backup watching 52"
else
    log "both groups on $M: the page's peer names are checked where each instance holds one (active-active start)"
fi
lab_kill "$M"
wait_holder $VIP_A "$S" 3 >/dev/null || fail "VIP-A did not move to $S"
pass "killed $M; $S holds both VIPs"

URL="http://127.0.0.1:$PAGE_PORT/"
CTL=$(dirname "$LBD")/pgvipctl
SPID=$(cat "$LAB_DIR/$S-lbd.pid")
VPID=$(cat "$LAB_DIR/$S-vrrpd.pid")
row='document.querySelector("#vrrp tbody tr[data-vrid=\"VRID\"]")'
state() { echo "${row/VRID/$1} && ${row/VRID/$1}.dataset.state == \"$2\""; }
text() { echo "document.querySelector(\"$1\").innerText.includes(\"$2\")"; }
# Resume whatever the browser steps stopped, even when the test fails half-way.
resume() { kill -CONT "$SPID" "$VPID" 2>/dev/null || true; }
CLEANUP_HOOKS=(resume "${CLEANUP_HOOKS[@]}")

python3 "$(dirname "$0")/../tools/browse.py" "$URL" --timeout 8 \
    --expect "title names the instance=document.title == \"pgvip $S\"" \
    --expect "lbd alive=$(text '#lbd-badge' alive)" \
    --expect "vrrpd alive=$(text '#vrrpd-badge' alive)" \
    --expect "VRID 51 MASTER=$(state 51 MASTER)" \
    --expect "VRID 52 MASTER=$(state 52 MASTER)" \
    --expect "VIP-A listed as held=$(text '#vrrp tbody' "$VIP_A")" \
    --expect "VIP-B listed as held=$(text '#vrrp tbody' "$VIP_B")" \
    --expect "takeover reason shown=$(text '#transitions' "the vrrpd of $(lab_ip "$M") ended")" \
    --expect "takeover row BACKUP to MASTER=$(text '#transitions' 'BACKUP → MASTER')" \
    --expect "three nodes up=document.querySelectorAll('#nodes tr[data-state=up]').length == 3" \
    --expect "node table names node0=$(text '#nodes' 'node0')" \
    --expect "check result shown=$(text '#nodes' 'pg: ready for query')" \
    --expect "sessions counted=$(text '#tiles' 'sessions total')" \
    --expect "chart drawn=document.querySelector('#chart-span').textContent.endsWith(' s')" \
    --shot "$OUT/status_page-$S.png" \
    --run "kill -STOP $VPID" \
    --expect "hung vrrpd shown DEAD=$(text '#vrrpd-badge' DEAD)" \
    --expect "hung vrrpd: banner says why=$(text '#vrrpd-dead' 'hung or dead')" \
    --expect "hung vrrpd: VRID 51 not shown as MASTER=$(state 51 DEAD)" \
    --shot "$OUT/status_page-$S-vrrpd-hung.png" \
    --run "kill -CONT $VPID" \
    --expect "vrrpd alive again=$(text '#vrrpd-badge' alive)" \
    --expect "VRID 52 MASTER again=$(state 52 MASTER)" \
    --run "kill -STOP $SPID" \
    --expect "hung lbd shown DEAD=$(text '#lbd-badge' DEAD)" \
    --expect "hung lbd: banner says so=$(text '#lbd-dead' 'not answering')" \
    --run "kill -CONT $SPID" \
    --expect "lbd alive again=$(text '#lbd-badge' alive)" \
    --expect "banner gone=document.querySelector('#lbd-dead').classList.contains('hidden')" \
    --run "cp $LAB_DIR/$S.yaml $WORK/good.yaml && echo 'bogus: 1' >>$LAB_DIR/$S.yaml && kill -HUP $VPID" \
    --expect "vrrpd's failed reload shown=$(text '#vrrpd-reload-failed' "vrrpd's last configuration reload failed")" \
    --expect "with the file's error=$(text '#vrrpd-reload-failed' 'bogus')" \
    --run "cp $WORK/good.yaml $LAB_DIR/$S.yaml && kill -HUP $VPID" \
    --expect "reload banner gone=document.querySelector('#vrrpd-reload-failed').classList.contains('hidden')" \
    --run "sed -i 's/{name: node2, /{name: node2, weight: 0, /' $LAB_DIR/$S.yaml && kill -HUP $SPID" \
    --expect "a weight-0 node is not shown as serving=document.querySelector('#nodes tr[data-node=node2]').dataset.newSessions == 'weight 0' \
&& document.querySelector('#nodes tr[data-node=node2]').innerText.includes('no new sessions: weight 0') \
&& document.querySelectorAll('#nodes tr[data-new-sessions=yes]').length == 2" \
    --run "cp $WORK/good.yaml $LAB_DIR/$S.yaml && kill -HUP $SPID" \
    --expect "node2 serving again=document.querySelector('#nodes tr[data-node=node2]').dataset.newSessions == 'yes'" \
    --run "$CTL -s $LAB_DIR/$S-control.sock nodes drain node1" \
    --expect "a node drained with pgvipctl is shown draining=document.querySelector('#nodes tr[data-node=node1]').dataset.newSessions == 'drain' \
&& document.querySelector('#nodes tr[data-node=node1]').innerText.includes('no new sessions: drain')" \
    --run "$CTL -s $LAB_DIR/$S-control.sock nodes enable node1" \
    --expect "node1 serving again=document.querySelector('#nodes tr[data-node=node1]').dataset.newSessions == 'yes'" \
    --run "$CTL -S $LAB_DIR/$S-vrrpd-control.sock vrrp priority 51 200" \
    --expect "an operator's priority is shown with who set it=$(text '#vrrp tbody' '200 / ') && $(text '#vrrp tbody' 'an operator')" \
    --run "$CTL -S $LAB_DIR/$S-vrrpd-control.sock vrrp restore 51" \
    --text "$WORK/page.txt" >"$WORK/browse.log" 2>&1 || {
    cat "$WORK/browse.log"
    fail "the page did not show what it should (above)"
}
sed 's/^/    /' "$WORK/browse.log"
[ -s "$OUT/status_page-$S.png" ] || fail "no screenshot"
pass "the survivor's page shows both VIPs MASTER, the reason, the nodes; hung daemons shown DEAD"
log "screenshot: $OUT/status_page-$S.png"

# The page is read-only: nothing but GET and HEAD is served.
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$URL")
[ "$code" = 405 ] || fail "POST to the page answered $code, not 405"
pass "POST is refused (405): the page is read-only"

# The alert rules name only metrics the daemons really export (no silent drift).
metrics=$( (curl -fsS "http://127.0.0.1:$PAGE_PORT/metrics"; lab_exec "$S" curl -fsS http://127.0.0.1:8082/metrics) ) ||
    fail "cannot scrape $S's lbd and vrrpd"
names=$(grep -oE '\b(lbd|vrrpd|process)_[a-z_]+' "$(dirname "$0")/../../compose/prometheus/alerts.yml" | sort -u)
[ -n "$names" ] || fail "no metric names found in alerts.yml"
for n in $names; do
    grep -q "^$n[{ ]" <<<"$metrics" || fail "alerts.yml uses $n, which neither daemon exports"
done
pass "every metric the alert rules use is exported ($(wc -w <<<"$names") names)"
