#!/bin/bash
# outage.sh EVENT_MS PROBE_OUTPUT -- the client-visible outage after an event, from
# pgprobe's lines (START END ok|fail ...): from EVENT_MS to the first success among the
# attempts that started after the last-starting failed attempt (or after the event when
# none failed). Prints: outage_ms=N failed=N
set -euo pipefail
awk -v ev="$1" '
    /^#/ { next }
    { n++; s[n] = $1; e[n] = $2; st[n] = $3 }
    st[n] == "fail" && e[n] >= ev { failed++; if ($1 > lastfail) lastfail = $1 }
    END {
        from = (lastfail >= ev) ? lastfail + 1 : ev
        best = -1
        for (i = 1; i <= n; i++)
            if (st[i] == "ok" && s[i] >= from && (best < 0 || e[i] < best)) best = e[i]
        if (best < 0) { print "outage_ms=unknown failed=" failed + 0; exit 1 }
        printf "outage_ms=%d failed=%d\n", best - ev, failed + 0
    }' "$2"
