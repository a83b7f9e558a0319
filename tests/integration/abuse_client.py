"""abuse_client.py -- one unauthenticated source attacking a PostgreSQL-wire port, for
lbd_front_door.sh and scripts/abuse.sh. Every mode runs for SECS and prints one line
"sent=N rate=R/s ..." with what it achieved.

usage: abuse_client.py HOST PORT SRC MODE SECS [ARGS]
  cancel [PID]      CancelRequests with made-up keys, as fast as connections open
                    (PID fixed: the same pid, a new key each time)
  cancel_same PID KEY   the same CancelRequest again and again
  ssl_hold N        N connections, each sending an SSLRequest once a second (and a
                    StartupMessage never): prints how many lbd still held at the end
  idle_hold N       N connections that send nothing
  fwd_cancel        CancelRequests marked as forwarded by a peer lbd (lbd's own code)
SRC is the source address to bind (127.0.0.2: not the bystander's), or - for any.
ABUSE_RATE (environment) caps the connections a second (0: as fast as it can).
"""
import os, socket, struct, sys, time

host, port, src, mode, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
args = sys.argv[6:]
end = time.time() + secs


def conn(timeout=2.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # no TIME_WAIT here
    if src != "-":
        s.bind((src, 0))
    s.settimeout(timeout)
    s.connect((host, port))
    return s


RATE = float(os.environ.get("ABUSE_RATE", "0"))


def flood(make_packet):
    sent = refused = 0
    t0 = time.time()
    while time.time() < end:
        if RATE and sent + refused > (time.time() - t0) * RATE:
            time.sleep(0.001)
            continue
        try:
            s = conn()
            s.sendall(make_packet())
            sent += 1
            s.close()
        except OSError:
            refused += 1
    dt = time.time() - t0
    print("sent=%d rate=%d/s refused_connects=%d" % (sent, sent / dt, refused), flush=True)


if mode == "cancel":
    pid = int(args[0]) if args else None
    flood(lambda: struct.pack(">IIII", 16, 80877102,
                              pid if pid is not None else struct.unpack(">I", os.urandom(4))[0],
                              struct.unpack(">I", os.urandom(4))[0]))
elif mode == "cancel_same":
    pkt = struct.pack(">IIII", 16, 80877102, int(args[0]), int(args[1]))
    flood(lambda: pkt)
elif mode == "fwd_cancel":
    flood(lambda: struct.pack(">IIII", 16, 80877201, 4242, struct.unpack(">I", os.urandom(4))[0]))
elif mode in ("ssl_hold", "idle_hold"):
    n = int(args[0])
    socks = []
    for _ in range(n):
        try:
            socks.append(conn())
        except OSError:
            pass
    opened = len(socks)
    while time.time() < end:
        alive = []
        for s in socks:
            try:
                if mode == "ssl_hold":
                    s.sendall(struct.pack(">II", 8, 80877103))
                    s.settimeout(0.5)
                    b = s.recv(1)
                    if not b or b not in (b"N", b"S"):
                        s.close()
                        continue
                alive.append(s)
            except OSError:
                s.close()
        socks = alive
        time.sleep(max(0.0, min(1.0, end - time.time())))
    # Held = lbd has not closed it: a read finds nothing waiting (or only the answers).
    held = 0
    for s in socks:
        try:
            s.settimeout(0.05)
            b = s.recv(64)
            if b == b"" or b[:1] == b"E":
                continue
            held += 1
        except socket.timeout:
            held += 1
        except OSError:
            pass
    print("sent=%d rate=%d/s opened=%d held=%d" % (opened, opened / secs, opened, held), flush=True)
else:
    sys.exit("unknown mode " + mode)
