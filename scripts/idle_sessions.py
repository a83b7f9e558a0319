"""idle_sessions.py PORT N PAUSE -- open N real PostgreSQL sessions (startup through
ReadyForQuery) to PORT, keep them idle for PAUSE seconds, print 'open=N', then close.
Used by bench-lbd.sh to measure a proxy's memory per idle session."""
import socket, struct, sys, time

def startup():
    body = struct.pack(">I", 3 << 16) + b"user\0postgres\0database\0postgres\0\0"
    return struct.pack(">I", len(body) + 4) + body

port, n, pause = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(startup())
    buf = b""
    while not buf.endswith(b"Z\0\0\0\x05I"):
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit("session %d closed: %r" % (len(socks), buf[:80]))
        buf += chunk
    socks.append(s)
print("open=%d" % len(socks), flush=True)
time.sleep(pause)
for s in socks:
    s.close()
