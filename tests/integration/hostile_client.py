"""hostile_client.py -- raw-socket clients that misbehave, for lbd_hostile.sh.

usage: hostile_client.py PORT MODE [ARGS]
  slowloris             send 3 bytes of a startup, then wait for lbd to hang up
  bytewise              send a valid startup one byte every 5 ms; expect an auth answer
  random N              send N random bytes; print what came back (first byte)
  flood N               open N connections with a startup each; count refusals by SQLSTATE
  slowread QUERY SECS [WARM] [AFTER]
                        after WARM (default 0) short queries, start QUERY, read
                        nothing for SECS, then read it all; print bytes. With AFTER:
                        then wait 1.2 s, run 5 short queries, print "returned", wait
                        for a line on stdin, run AFTER queries checking each answer,
                        print "after ok AFTER"
  listen CHANNEL SECS   after 4 short queries, LISTEN on CHANNEL and send nothing more
                        for SECS; print "open" or "closed", with the notifications seen
  eager SSL             send a query 2 ms behind the StartupMessage, before any answer
                        (lbd is waiting for the node's then); with SSL 1, an SSLRequest
                        first, and the StartupMessage 2 ms behind it; print the value
  vanish QUERY          start QUERY, read a little, then reset the connection
  cutoff QUERY SECS     start QUERY, read 1 MB, print "started", read nothing for SECS
                        (the node's backend is ended meanwhile), then read slowly
                        (64 KiB every 2 ms) to the end; print "read N": every byte
                        received, the startup's included
  ordered ROWS SECS N   N times in one session (after 4 short queries): ask for ROWS
                        numbered rows of 500 bytes, read nothing for SECS, then read
                        it all at once and check every row comes once and in order;
                        wait 1.2 s (a quiet second: a spliced direction goes back to
                        copying) and check 5 short queries; print "ordered ok N", or what was wrong
                        and its shape (rows twice or never, the first jump)
  oversized N           a first packet claiming 1 MB, then N bytes of it: the refusal
                        must arrive whole, not be lost to a reset; print its SQLSTATE
"""
import os, socket, struct, sys, time

def startup(user=b"postgres", db=b"postgres"):
    body = struct.pack(">I", 3 << 16) + b"user\0" + user + b"\0database\0" + db + b"\0\0"
    return struct.pack(">I", len(body) + 4) + body

def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s

def messages(s, what):
    """(type, whole message) as they arrive, up to and including ReadyForQuery; an
    ErrorResponse or a close ends the program, naming what was going on."""
    buf = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            raise SystemExit("closed during %s: %r" % (what, buf[:80]))
        buf += chunk
        i = 0
        while i + 5 <= len(buf):
            t, n = buf[i:i+1], struct.unpack(">I", buf[i+1:i+5])[0]
            if i + 1 + n > len(buf):
                break
            if t == b"E":
                raise SystemExit("error: %r" % buf[i:i+1+n])
            yield t, buf[i:i+1+n]
            if t == b"Z":
                return
            i += 1 + n
        buf = buf[i:]

def read_until_ready(s):
    for _ in messages(s, "the wait for ReadyForQuery"):
        pass

def query_value(s, sql):
    """The first column of the first row SQL returns (simple protocol), as bytes."""
    s.sendall(query(sql))
    value = None
    for t, m in messages(s, repr(sql)):
        if t == b"D" and value is None:
            vlen = struct.unpack(">i", m[7:11])[0]
            value = m[11:11+vlen]
    return value

def read_to_close(s):
    """Everything the far end sends until it closes; and how it closed: closed or RESET."""
    data = b""
    try:
        while True:
            c = s.recv(4096)
            if not c:
                return data, "closed"
            data += c
    except ConnectionResetError:
        return data, "RESET"

def query(q):
    b = q.encode() + b"\0"
    return b"Q" + struct.pack(">I", len(b) + 4) + b

port, mode = int(sys.argv[1]), sys.argv[2]
if mode == "slowloris":
    s = connect(port); s.sendall(startup()[:3]); t0 = time.time()
    data = s.recv(4096)
    print("closed after %.1f s; got %r" % (time.time() - t0, data[:1]))
elif mode == "bytewise":
    s = connect(port)
    for b in startup():
        s.send(bytes([b])); time.sleep(0.005)
    read_until_ready(s); print("ready")
elif mode == "random":
    s = connect(port); s.sendall(os.urandom(int(sys.argv[3])))
    data, _ = read_to_close(s)
    print("answer %r" % data[:1])
elif mode == "flood":
    socks, codes = [], {}
    for _ in range(int(sys.argv[3])):
        s = connect(port); s.sendall(startup()); socks.append(s)
    for s in socks:
        s.settimeout(5)
        try:
            d = s.recv(4096)
        except socket.timeout:
            d = b""
        code = "ok" if d[:1] == b"R" else "other"
        if d[:1] == b"E":
            i = d.find(b"C")
            code = d[i+1:i+6].decode() if i >= 0 else "E"
        codes[code] = codes.get(code, 0) + 1
    print(" ".join("%s=%d" % kv for kv in sorted(codes.items())))
    for s in socks: s.close()
elif mode == "slowread":
    s = connect(port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(startup()); read_until_ready(s)
    for _ in range(int(sys.argv[5]) if len(sys.argv) > 5 else 0):
        s.sendall(query("select 1")); read_until_ready(s)
    s.sendall(query(sys.argv[3]))
    print("paused", flush=True); time.sleep(float(sys.argv[4]))
    total, tail = 0, b""
    while True:
        c = s.recv(1 << 20)
        if not c: break
        total += len(c)
        tail = (tail + c)[-6:] # the ReadyForQuery may arrive split across reads
        if tail == b"Z\0\0\0\x05I": break
    print("read %d bytes" % total, flush=True)
    if len(sys.argv) > 6:
        # A quiet spell: a spliced direction goes back to lbd's copying relay.
        time.sleep(1.2)
        for i in range(5):
            query_value(s, "select %d" % i)
        print("returned", flush=True)
        sys.stdin.readline()
        n = int(sys.argv[6])
        for i in range(n):
            v = query_value(s, "select %d, repeat('y', %d)" % (i, i * 37 % 3000))
            if v != str(i).encode():
                raise SystemExit("query %d answered %r" % (i, v))
        print("after ok %d" % n, flush=True)
elif mode == "ordered":
    import re
    def breakage(data, rows):
        # What broke, from every row header that can still be found: the first place the
        # numbering jumps, and how many rows came twice or never (a segment twice, or one
        # lost, shows as a run of rows and a byte count near the segment's size).
        pat = re.compile(rb"D(....)\x00\x02(....)(\d+)\x00\x00\x01\xea", re.S)
        seen, prev, first = {}, 0, None
        for m in pat.finditer(data):
            v = int(m.group(3))
            if first is None and v != prev + 1:
                first = "row %d after row %d at byte %d" % (v, prev, m.start())
            seen[v] = seen.get(v, 0) + 1
            prev = v
        twice = sum(c - 1 for c in seen.values() if c > 1)
        never = sum(1 for v in range(1, rows + 1) if v not in seen)
        return "%s; %d rows twice, %d never; %d bytes" % (first or "no jump", twice, never,
                                                          len(data))
    rows, secs, rounds = int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
    s = connect(port)
    s.settimeout(30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(startup()); read_until_ready(s)
    for i in range(4):
        query_value(s, "select %d" % i)
    for r in range(rounds):
        s.sendall(query("select i, repeat('x', 490) from generate_series(1, %d) i" % rows))
        time.sleep(secs)
        chunks, tail = [], b""
        while tail != b"Z\0\0\0\x05I": # (the stream's end; the rows are checked below)
            c = s.recv(1 << 20)
            if not c:
                raise SystemExit("round %d: closed while reading the result" % r)
            chunks.append(c)
            tail = (tail + c)[-6:]
        data = b"".join(chunks)
        expect, o = 1, 0
        while o + 5 <= len(data):
            t, n = data[o:o+1], struct.unpack(">I", data[o+1:o+5])[0]
            if t == b"D":
                vlen = struct.unpack(">i", data[o+7:o+11])[0]
                v = data[o+11:o+11+vlen]
                if v != str(expect).encode():
                    raise SystemExit("round %d: row %r where %d was due, at byte %d (%s)" %
                                     (r, v[:12], expect, o, breakage(data, rows)))
                expect += 1
            elif t not in (b"T", b"C", b"Z"):
                raise SystemExit("round %d: message %r (length %d) where row %d was due, at "
                                 "byte %d (%s)" % (r, t, n, expect, o, breakage(data, rows)))
            o += 1 + n
            if t == b"Z":
                break
        if expect != rows + 1 or o != len(data):
            raise SystemExit("round %d: %d rows of %d, %d bytes after the end (%s)" %
                             (r, expect - 1, rows, len(data) - o, breakage(data, rows)))
        time.sleep(1.2)
        for i in range(5):
            v = query_value(s, "select %d" % (r * 10 + i))
            if v != str(r * 10 + i).encode():
                raise SystemExit("round %d: query %d answered %r" % (r, i, v))
    print("ordered ok %d" % rounds, flush=True)
elif mode == "oversized":
    s = connect(port)
    s.sendall(struct.pack(">I", 1 << 20) + b"\x00" * int(sys.argv[3]))
    data, how = read_to_close(s)
    i = data.find(b"C")
    print("%s after %s" % (data[i+1:i+6].decode() if data[:1] == b"E" and i > 0 else repr(data[:1]), how))
elif mode == "listen":
    s = connect(port); s.sendall(startup()); read_until_ready(s)
    for i in range(4):
        query_value(s, "select %d" % i)
    query_value(s, "listen " + sys.argv[3])
    print("listening", flush=True)
    end, seen, how, buf = time.time() + float(sys.argv[4]), 0, "open", b""
    while time.time() < end:
        s.settimeout(max(0.01, end - time.time()))
        try:
            c = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            c = b""
        if not c:
            how = "closed"; break
        buf += c
        while len(buf) >= 5 and len(buf) >= 1 + struct.unpack(">I", buf[1:5])[0]:
            n = 1 + struct.unpack(">I", buf[1:5])[0]
            seen += buf[:1] == b"A"
            buf = buf[n:]
    print("%s with %d notifications" % (how, seen))
elif mode == "eager":
    s = connect(port)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if sys.argv[3] == "1":
        s.sendall(struct.pack(">II", 8, 80877103))
        time.sleep(0.02)
    s.sendall(startup())
    time.sleep(0.002)
    s.sendall(query("select 6 * 7"))
    buf, ready, value = b"", 0, None
    if sys.argv[3] == "1":
        while not buf:
            buf = s.recv(1)
        if buf == b"E":  # read the whole ErrorResponse, to say which refusal it is
            while len(buf) < 5 or len(buf) < 1 + struct.unpack(">I", buf[1:5])[0]:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            fields = dict((f[:1], f[1:]) for f in buf[5:].split(b"\0") if f)
            raise SystemExit("refused: %s" % fields.get(b"M", b"?").decode())
        if buf != b"N":
            raise SystemExit("answer to SSLRequest: %r" % buf)
        buf = b""
    while ready < 2:
        chunk = s.recv(65536)
        if not chunk:
            raise SystemExit("closed: %r" % buf[:80])
        buf += chunk
        while len(buf) >= 5:
            t, n = buf[0:1], struct.unpack(">I", buf[1:5])[0]
            if len(buf) < 1 + n:
                break
            if t == b"E":
                raise SystemExit("error: %r" % buf[:1 + n])
            if t == b"D" and value is None:
                value = buf[11:11 + struct.unpack(">i", buf[7:11])[0]]
            ready += t == b"Z"
            buf = buf[1 + n:]
    print(value.decode())
elif mode == "cutoff":
    s = connect(port); s.sendall(startup() + query(sys.argv[3]))
    got = 0
    while got < 1 << 20:
        chunk = s.recv(65536)
        if not chunk:
            raise SystemExit("closed after %d bytes" % got)
        got += len(chunk)
    print("started", flush=True)
    time.sleep(float(sys.argv[4]))
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        got += len(chunk)
        time.sleep(0.002)
    print("read %d" % got)
elif mode == "vanish":
    s = connect(port); s.sendall(startup()); read_until_ready(s); s.sendall(query(sys.argv[3]))
    s.recv(65536)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close(); print("reset")
