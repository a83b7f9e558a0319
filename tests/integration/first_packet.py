"""first_packet.py -- bad first packets, each on its own connection, and what came back:
one line per case, "NAME CLOSE ANSWER", where CLOSE is eof (the far end closed), reset, or
open (still open after the wait), and ANSWER the bytes received with each ErrorResponse
shown as E{S..|V..|C..|M..|D..} (its fields that a client reads; PostgreSQL's own F, L
and R, where in its source it was raised, are left out). lbd_first_packet.sh runs it
against PostgreSQL and against lbd and compares.

usage: first_packet.py PORT [CASE...]
"""
import socket, struct, sys, time


def startup(params, proto=3 << 16):
    body = struct.pack(">I", proto) + b"".join(k + b"\0" + v + b"\0" for k, v in params) + b"\0"
    return struct.pack(">I", len(body) + 4) + body


SSL = struct.pack(">II", 8, 80877103)
user = [(b"user", b"postgres")]
# "@@" splits a case into sends, each after the answer to the one before (one byte).
CASES = {
    "terminate_first": b"X\0\0\0\x04",
    "length_4": struct.pack(">I", 4) + b"\0\0\0\0",
    "length_7": struct.pack(">I", 7) + b"\0\0\0",
    "length_10005": struct.pack(">I", 10005) + b"\0" * 8,
    "length_negative": struct.pack(">I", 0x80000010) + b"\0" * 8,
    "http_request": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "tls_client_hello": bytes([0x16, 0x03, 0x01, 0x02, 0x00]) + b"\0" * 16,
    "incomplete": struct.pack(">I", 40) + struct.pack(">I", 3 << 16) + b"user\0",
    "protocol_2": startup(user, 2 << 16),
    "protocol_4": startup(user, 4 << 16),
    "protocol_1234_9": startup(user, 1234 << 16 | 9),
    "no_user": startup([(b"database", b"postgres")]),
    "not_terminated": struct.pack(">I", 13) + struct.pack(">I", 3 << 16) + b"user\0",
    "key_without_value": struct.pack(">I", 14) + struct.pack(">I", 3 << 16) + b"user\0\0",
    "cancel_12_bytes": struct.pack(">III", 12, 80877102, 1),
    "cancel_20_bytes": struct.pack(">IIIII", 20, 80877102, 1, 2, 3),
    "ssl_request_12_bytes": struct.pack(">III", 12, 80877103, 0),
    "ssl_then_plaintext": SSL + startup(user),
    "ssl_twice": SSL + b"@@" + SSL,
    "lbd_forwarded_cancel": struct.pack(">IIII", 16, 80877201, 1, 2),
}


def norm(g):
    out, i = b"", 0
    while i < len(g):
        if g[i:i + 1] == b"E" and len(g) >= i + 5 and g[i + 1:i + 2] == b"\0":
            n = struct.unpack(">I", g[i + 1:i + 5])[0]
            fields = [f for f in g[i + 5:i + 1 + n].split(b"\0") if f and f[:1] in b"SVCMD"]
            out += b"E{" + b"|".join(fields) + b"}"
            i += 1 + n
        else:
            out += g[i:i + 1]
            i += 1
    return out


port = int(sys.argv[1])
for name, pkt in CASES.items():
    if sys.argv[2:] and name not in sys.argv[2:]:
        continue
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(2)
    got, how = b"", "?"
    parts = pkt.split(b"@@")
    try:
        for i, p in enumerate(parts):
            s.sendall(p)
            if i < len(parts) - 1:
                got += s.recv(1)
        while True:
            b = s.recv(4096)
            if not b:
                how = "eof"
                break
            got += b
    except socket.timeout:
        how = "open"
    except ConnectionResetError:
        how = "reset"
    s.close()
    print("%s %s %r" % (name, how, norm(got)), flush=True)
