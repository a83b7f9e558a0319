"""hold_sessions.py HOST N SECONDS APP -- open N idle PostgreSQL sessions to HOST:5432
(application_name APP)
(startup, wait for ReadyForQuery), print "open N", then hold them for SECONDS and print
"closed=N at=MS,MS,..." with the wall-clock time (ms) each was closed by the far end."""
import select, socket, struct, sys, time

host, n, secs, app = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
body = (struct.pack(">I", 3 << 16) + b"user\0postgres\0database\0postgres\0application_name\0"
        + app.encode() + b"\0\0")
socks = []
for _ in range(n):
    s = socket.create_connection((host, 5432), timeout=5)
    s.sendall(struct.pack(">I", len(body) + 4) + body)
    buf = b""
    while not (len(buf) >= 6 and buf[-6:-5] == b"Z"):
        chunk = s.recv(4096)
        if not chunk:
            sys.exit("closed during startup")
        buf += chunk
    socks.append(s)
print("open %d" % len(socks), flush=True)
closed, open_ = [], list(socks)
end = time.time() + secs
while open_ and time.time() < end:
    r, _, _ = select.select(open_, [], [], max(0.0, end - time.time()))
    for s in r:
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if not data:
            closed.append(int(time.time() * 1000))
            open_.remove(s)
print("closed=%d at=%s" % (len(closed), ",".join(map(str, closed))), flush=True)
