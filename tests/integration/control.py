#!/usr/bin/env python3
"""control.py LB NODE0_PORT NODE1_PORT PGVIPCTL SOCKET -- what pgvipctl does to sessions
(issue 22; lbd_control.sh runs it against real PostgreSQL nodes through lbd).

1. sessions show: each session's node, user, database, application, state (idle / idle
   in transaction / active) and backend pid, as pg_stat_activity has them.
2. nodes drain node0: its idle session gets FATAL 57P01 at once; its session inside a
   transaction is left alone, commits both rows, and only then gets the FATAL; new
   sessions go to node1. nodes enable node0: new sessions reach it again.
3. sessions kill ID: a session in a transaction keeps it until COMMIT, then 57P01;
   sessions kill ID now: 57P01 at once, the transaction rolled back.
4. nodes disable node1: its open session keeps working; new sessions avoid it."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pgsession import Session, fatal_then_close  # noqa: E402

LB, NODE0, NODE1 = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
CTL, SOCK = sys.argv[4], sys.argv[5]


def ctl(*args, ok=True):
    r = subprocess.run([CTL, "-s", SOCK] + list(args), capture_output=True, text=True, timeout=10)
    if ok and r.returncode != 0:
        raise SystemExit("pgvipctl %s: exit %d: %s%s" % (" ".join(args), r.returncode, r.stdout,
                                                        r.stderr))
    return r


def ctl_json(*args):
    return json.loads(ctl("--json", *args).stdout)


def on(port, app, want):
    """A session on the node at `want` (sessions go round robin: a few tries)."""
    others = []
    for _ in range(8):
        s = Session(LB, app=app)
        if int(s.query("select inet_server_port()")[0][0]) == want:
            for o in others:
                o.s.close()
            return s
        others.append(s)
    raise SystemExit("no session reached port %d" % want)


def session_row(app):
    rows = [r for r in ctl_json("sessions") if r["application"] == app]
    if len(rows) != 1:
        raise SystemExit("sessions show: %d rows for application %s: %r" % (len(rows), app, rows))
    return rows[0]


def main():
    # 1. sessions show
    idle = on(LB, "ctl-idle", NODE0)
    busy = on(LB, "ctl-busy", NODE0)
    busy.query("begin; insert into ctl values (1)")
    active = on(LB, "ctl-active", NODE1)
    active.send_query("select pg_sleep(2)")
    time.sleep(0.3)
    expect = {"ctl-idle": ("node0", "idle", idle), "ctl-busy": ("node0", "idle in transaction", busy),
              "ctl-active": ("node1", "active", active)}
    for app, (node, state, sess) in expect.items():
        r = session_row(app)
        if (r["node"], r["state"], r["user"], r["database"]) != (node, state, "postgres", "postgres"):
            raise SystemExit("sessions show for %s: %r, expected %s %s" % (app, r, node, state))
        if r["backend_pid"] != sess.pid or not isinstance(r["id"], int) or r["age_s"] < 0:
            raise SystemExit("sessions show for %s: %r (backend pid %s)" % (app, r, sess.pid))
        if r["vip"] != "127.0.0.1" or not r["client"].startswith("127.0.0.1:"):
            raise SystemExit("sessions show: client/vip %r" % r)
    text = ctl("sessions").stdout
    if "idle in transaction" not in text or "(3 rows)" not in text.splitlines()[-1]:
        raise SystemExit("sessions show as a table:\n%s" % text)
    active.read_until_ready()
    if session_row("ctl-active")["state"] != "idle":
        raise SystemExit("ctl-active is not idle after its query: %r" % session_row("ctl-active"))
    print("sessions show: node, user, database, application, state (idle / idle in "
          "transaction / active) and backend pid right for 3 sessions")

    # 2. drain node0
    t0 = time.time()
    out = ctl("nodes", "drain", "node0").stdout
    if "node0 drain (was ready)" not in out:
        raise SystemExit("nodes drain said: %s" % out)
    fatal_then_close(idle, 3, "idle session on the drained node")
    print("drain: the idle session got FATAL 57P01 %.0f ms after the command" % ((time.time() - t0) * 1000))
    if busy.message(1.0) is not None:
        raise SystemExit("the session inside a transaction heard from lbd during the drain")
    rows, status = busy.query("insert into ctl values (2); commit")
    if status != b"I":
        raise SystemExit("commit did not end the transaction: %r" % status)
    fatal_then_close(busy, 3, "session after its commit")
    print("drain: the session in a transaction kept it, committed, then got FATAL 57P01")
    nodes = {n["node"]: n for n in ctl_json("nodes")}
    if nodes["node0"]["admin"] != "drain" or nodes["node0"]["new_sessions"] != "drain":
        raise SystemExit("nodes show during the drain: %r" % nodes["node0"])
    for _ in range(4):
        s = Session(LB)
        port = int(s.query("select inet_server_port()")[0][0])
        s.s.close()
        if port != NODE1:
            raise SystemExit("a new session went to the drained node0")
    ctl("nodes", "enable", "node0")
    on(LB, "after-enable", NODE0).s.close()
    print("drain: new sessions only on node1; enable: node0 takes sessions again")

    # 3. kill at idle, kill now
    k1 = on(LB, "ctl-kill-idle", NODE0)
    k1.query("begin; insert into ctl values (3)")
    ctl("sessions", "kill", str(session_row("ctl-kill-idle")["id"]))
    if "killed at idle" not in session_row("ctl-kill-idle")["state"]:
        raise SystemExit("the pending kill is not shown: %r" % session_row("ctl-kill-idle"))
    if k1.message(0.8) is not None:
        raise SystemExit("a session killed at idle heard from lbd inside its transaction")
    k1.query("commit")
    fatal_then_close(k1, 3, "session killed at idle, after its commit")
    k2 = on(LB, "ctl-kill-now", NODE0)
    k2.query("begin; insert into ctl values (4)")
    ctl("sessions", "kill", str(session_row("ctl-kill-now")["id"]), "now")
    fatal_then_close(k2, 2, "session killed now")
    r = ctl("sessions", "kill", "999999", ok=False)
    if r.returncode != 1 or "no client session 999999" not in r.stdout:
        raise SystemExit("killing an unknown session: exit %d %r" % (r.returncode, r.stdout))
    print("kill: at idle waited for the COMMIT; now ended the transaction at once; an "
          "unknown id is an error (exit 1)")

    # 4. disable node1: its open session keeps working
    keep = on(LB, "ctl-keep", NODE1)
    ctl("nodes", "disable", "node1")
    if keep.message(0.5) is not None or keep.query("select 42")[0] != ["42"]:
        raise SystemExit("the session on the disabled node1 was disturbed")
    for _ in range(4):
        s = Session(LB)
        port = int(s.query("select inet_server_port()")[0][0])
        s.s.close()
        if port != NODE0:
            raise SystemExit("a new session went to the disabled node1")
    keep.s.close()
    ctl("nodes", "enable", "node1")
    print("disable: the open session on node1 went on; new sessions went to node0")

    # 5. A session that has asked nothing yet when its node drains (its client has just
    # connected): spared a second, so its first request is answered, then closed; one
    # that stays idle goes after that second.
    def fresh_on_node0(tag):
        for i in range(6):
            s = Session(LB, app="%s-%d" % (tag, i))
            if session_row("%s-%d" % (tag, i))["node"] == "node0":
                return s
        raise SystemExit("no fresh session on node0")
    asks, waits = fresh_on_node0("fresh-asks"), fresh_on_node0("fresh-waits")
    t0 = time.time()
    ctl("nodes", "drain", "node0")
    if asks.message(0.4) is not None:
        raise SystemExit("a session that had asked nothing yet was closed at once")
    if asks.query("select 7")[0] != ["7"]:
        raise SystemExit("the fresh session's first query did not come back")
    fatal_then_close(asks, 2, "fresh session after its first query")
    fatal_then_close(waits, 2, "fresh session that stays idle")
    took = time.time() - t0
    if not 0.8 <= took <= 2.5:
        raise SystemExit("the idle fresh session went after %.2f s, not after its 1 s" % took)
    ctl("nodes", "enable", "node0")
    print("drain of a just-connected session: its first query answered, then 57P01; one "
          "that stayed idle closed after %.1f s" % took)


main()
