"""late_login.py HOST PORT DELAY_S [GO_FILE] -- with GO_FILE: print "ready" and wait until
that file exists (so the moment of the connect does not depend on how long starting a
process takes). Then connect (print "connected"), say nothing for DELAY_S,
then log in (trust, user postgres) and run SELECT 1; print "ok" or "fail: why". A client that had
connected when a planned stop began: lbd must let it log in before the VIP moves."""
import os
import socket
import struct
import sys
import time


def messages(s):
    buf = b""
    while True:
        while len(buf) < 5 or len(buf) < 1 + struct.unpack("!I", buf[1:5])[0]:
            chunk = s.recv(65536)
            if not chunk:
                raise EOFError("the server closed the connection")
            buf += chunk
        n = struct.unpack("!I", buf[1:5])[0]
        yield buf[0:1], buf[5:1 + n]
        buf = buf[1 + n:]


def until_ready(it):
    for t, body in it:
        if t == b"E":
            raise RuntimeError("error: " + body.decode(errors="replace"))
        if t == b"Z":
            return


def main():
    host, port, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    if len(sys.argv) > 4:
        print("ready", flush=True)
        while not os.path.exists(sys.argv[4]):
            time.sleep(0.005)
    try:
        s = socket.create_connection((host, port), timeout=10)
        print("connected", flush=True)
        time.sleep(delay)
        body = struct.pack("!I", 196608) + b"user\0postgres\0database\0postgres\0\0"
        s.sendall(struct.pack("!I", len(body) + 4) + body)
        it = messages(s)
        until_ready(it)
        q = b"select 1\0"
        s.sendall(b"Q" + struct.pack("!I", len(q) + 4) + q)
        until_ready(it)
        s.sendall(b"X\0\0\0\4")
        print("ok", flush=True)
    except (OSError, EOFError, RuntimeError) as e:
        print("fail: %s" % e, flush=True)


main()
