"""pgsession.py -- a PostgreSQL protocol 3.0 session over a plain socket, for the tests
that must see each message lbd sends (an ErrorResponse before a close, the moment of it),
which psql and libpq hide. Trust authentication (the test clusters' own)."""
import select
import socket
import struct
import time


class Session:
    def __init__(self, port, user="postgres", database="postgres", app=None):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        params = b"user\0" + user.encode() + b"\0database\0" + database.encode() + b"\0"
        if app:
            params += b"application_name\0" + app.encode() + b"\0"
        body = struct.pack("!I", 196608) + params + b"\0"
        self.s.sendall(struct.pack("!I", len(body) + 4) + body)
        self.buf = b""
        self.pid = None
        for t, msg in self.read_until_ready():
            if t == b"K":
                self.pid = struct.unpack("!I", msg[:4])[0]

    def message(self, timeout=5):
        """The next message (type, body); (b"EOF", b"") at a close; None after timeout."""
        deadline = time.time() + timeout
        while len(self.buf) < 5 or len(self.buf) < 1 + struct.unpack("!I", self.buf[1:5])[0]:
            left = deadline - time.time()
            if left <= 0:
                return None
            r, _, _ = select.select([self.s], [], [], left)
            if not r:
                return None
            chunk = self.s.recv(65536)
            if not chunk:
                return b"EOF", b""
            self.buf += chunk
        n = struct.unpack("!I", self.buf[1:5])[0]
        t, msg, self.buf = self.buf[0:1], self.buf[5:1 + n], self.buf[1 + n:]
        return t, msg

    def read_until_ready(self):
        msgs = []
        while True:
            m = self.message()
            if m is None or m[0] in (b"EOF",):
                raise SystemExit("session ended early: %r" % msgs)
            msgs.append(m)
            if m[0] == b"Z":
                return msgs

    def send_query(self, sql):
        q = sql.encode() + b"\0"
        self.s.sendall(b"Q" + struct.pack("!I", len(q) + 4) + q)

    def query(self, sql):
        """(first column of each row, the ReadyForQuery status); exits on an error."""
        self.send_query(sql)
        msgs = self.read_until_ready()
        for t, msg in msgs:
            if t == b"E":
                raise SystemExit("query %r failed: %r" % (sql, msg))
        rows = [m[6:6 + struct.unpack("!I", m[2:6])[0]].decode() for t, m in msgs if t == b"D"]
        return rows, msgs[-1][1]


def fatal_then_close(sess, within, who):
    """The session must get PostgreSQL's FATAL 57P01 within `within` s, then the close."""
    m = sess.message(within)
    if m is None:
        raise SystemExit("%s: no FATAL within %.1f s" % (who, within))
    t, msg = m
    if t != b"E" or b"C57P01\0" not in msg or b"SFATAL\0" not in msg:
        raise SystemExit("%s: expected ErrorResponse FATAL 57P01, got %r %r" % (who, t, msg))
    if b"Mterminating connection due to administrator command\0" not in msg:
        raise SystemExit("%s: PostgreSQL's words expected: %r" % (who, msg))
    m = sess.message(2)
    if m is None or m[0] != b"EOF":
        raise SystemExit("%s: the connection stayed open after the FATAL: %r" % (who, m))
