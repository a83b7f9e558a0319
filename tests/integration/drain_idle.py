#!/usr/bin/env python3
"""drain_idle.py LB NODE0_PORT READY0_FILE [deadline] -- a draining node's sessions end at their
idle moments, never inside a transaction (issue 22; lbd_drain_idle.sh).

Two sessions on node0 through lbd: A idle, B inside a transaction with a row inserted.
node0's readiness check then answers 503 (CockroachDB draining). A must get PostgreSQL's
FATAL 57P01 and the close at once; B must stay open, commit a second row, get its
ReadyForQuery and only then the FATAL. A new session must go to the other node."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pgsession import Session as _Session, fatal_then_close  # noqa: E402

LB, NODE0, READY0 = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]


def Session():
    return _Session(LB)


def deadline():
    """pool.drain_deadline 1s: a session still inside its transaction then is ended with
    57P01 (its transaction rolls back), not before."""
    busy, others = None, []
    for _ in range(6):  # the others held open: each next pick is then the other node
        s = Session()
        if int(s.query("select inet_server_port()")[0][0]) == NODE0:
            busy = s
            break
        others.append(s)
    for s in others:
        s.s.close()
    if busy is None:
        raise SystemExit("could not get a session on node0")
    busy.query("begin; insert into drained values (3)")
    t0 = time.time()
    with open(READY0, "w") as f:
        f.write("503\n")
    if busy.message(0.6) is not None:
        raise SystemExit("the busy session heard from lbd before the drain deadline")
    fatal_then_close(busy, 3, "busy session at the deadline")
    print("busy session: ended with FATAL 57P01 %.0f ms after the drain began (deadline 1 s)"
          % ((time.time() - t0) * 1000))


def main():
    if len(sys.argv) > 4 and sys.argv[4] == "deadline":
        deadline()
        return
    idle = busy = None
    spare = []
    for _ in range(12):  # until two sessions are on node0
        s = Session()
        port = int(s.query("select inet_server_port()")[0][0])
        if port == NODE0 and idle is None:
            idle = s
        elif port == NODE0 and busy is None:
            busy = s
        else:
            spare.append(s)
        if idle and busy:
            break
    if not (idle and busy):
        raise SystemExit("could not get two sessions on node0")
    for s in spare:
        s.s.close()
    rows, status = busy.query("begin; insert into drained values (1)")
    if status != b"T":
        raise SystemExit("busy session not in a transaction: %r" % status)

    t0 = time.time()
    with open(READY0, "w") as f:
        f.write("503\n")
    fatal_then_close(idle, 3, "idle session")
    print("idle session: FATAL 57P01 and closed %.0f ms after the drain began" % ((time.time() - t0) * 1000))

    if busy.message(1.0) is not None:
        raise SystemExit("the session inside a transaction heard from lbd during the drain")
    rows, status = busy.query("insert into drained values (2); commit")
    if status != b"I":
        raise SystemExit("commit did not end the transaction: %r" % status)
    fatal_then_close(busy, 3, "session after its commit")
    print("session in a transaction: kept until its COMMIT's ReadyForQuery, then FATAL 57P01")

    s = Session()
    port = int(s.query("select inet_server_port()")[0][0])
    s.s.close()
    if port == NODE0:
        raise SystemExit("a new session went to the draining node")
    print("new session during the drain: on port %d" % port)


main()
