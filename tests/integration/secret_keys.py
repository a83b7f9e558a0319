#!/usr/bin/env python3
"""secret_keys.py PORT N -- can a client predict the cancel keys lbd hands to others?

With pool.reuse, lbd gives each client a secret key of its own (BackendKeyData); a client
that could predict the next one could cancel another role's query. Until issue 20 the
keys were the low 32 bits of the balancing PRNG's output (xorshift64*, seeded at start):
each key gives away 32 bits of the generator's state, and the state after a step is a
linear function (over GF(2)) of the state before, so three keys pin the whole state
down and the next key follows.

This script first shows the attack working on that generator (so the test can fail),
then collects N keys from lbd over fresh sessions and tries it on them: from each three
keys in a row, for every gap of 1 to 4 draws between them, it solves for the state and
predicts the fourth. Exit 0 when no fourth key of lbd's was predicted."""
import socket
import struct
import sys

M = 0x2545F4914F6CDD1D
MASK = (1 << 64) - 1
MINV32 = pow(M & 0xFFFFFFFF, -1, 1 << 32)
MAX_GAP = 4


def xorshift_step(x):
    x ^= x >> 12
    x ^= (x << 25) & MASK
    x ^= x >> 27
    return x


def old_key(x):
    return (x * M) & 0xFFFFFFFF


def step_matrix_powers(n):
    """cols[k][j]: T^k applied to basis vector e_j (T is linear over GF(2))."""
    cols = [[1 << j for j in range(64)]]
    for _ in range(n):
        cols.append([xorshift_step(c) for c in cols[-1]])
    return cols


POW = step_matrix_powers(3 * MAX_GAP + 1)


ROWS = {}


def rows_for(k):
    """Equations for the low 32 bits of T^k x: row i is a 64-bit mask over x's bits."""
    if k not in ROWS:
        cols = POW[k]
        ROWS[k] = [sum(((cols[j] >> i) & 1) << j for j in range(64)) for i in range(32)]
    return ROWS[k]


def solve(equations):
    """Gaussian elimination over GF(2); equations: (mask, bit). Returns x or None."""
    pivots = {}
    for mask, bit in equations:
        for p in sorted(pivots, reverse=True):
            if (mask >> p) & 1:
                pm, pb = pivots[p]
                mask ^= pm
                bit ^= pb
        if mask == 0:
            if bit:
                return None  # inconsistent
            continue
        top = mask.bit_length() - 1
        for p in list(pivots):  # keep the basis reduced
            pm, pb = pivots[p]
            if (pm >> top) & 1:
                pivots[p] = (pm ^ mask, pb ^ bit)
        pivots[top] = (mask, bit)
    if len(pivots) < 64:
        return None
    x = 0
    for p in sorted(pivots):
        pm, pb = pivots[p]
        # pm has p as its highest bit; lower bits are pivots already set (reduced: none)
        if pb:
            x |= 1 << p
    return x


def predict(k1, k2, k3, k4):
    """True when some gaps g1, g2, g3 in 1..MAX_GAP make k4 follow from k1, k2, k3."""
    lows = [(k * MINV32) & 0xFFFFFFFF for k in (k1, k2, k3)]
    for g1 in range(1, MAX_GAP + 1):
        for g2 in range(1, MAX_GAP + 1):
            eqs = []
            for off, low in zip((0, g1, g1 + g2), lows):
                for i, row in enumerate(rows_for(off)):
                    eqs.append((row, (low >> i) & 1))
            x = solve(eqs)
            if x is None:
                continue
            y = x
            for _ in range(g1 + g2):
                y = xorshift_step(y)
            for _ in range(MAX_GAP):
                y = xorshift_step(y)
                if old_key(y) == k4:
                    return True
    return False


def self_check():
    """The attack on the old generator: keys with uneven gaps (other draws between)."""
    x = 0x9E3779B97F4A7C15 | 1
    keys = []
    for gap in (2, 3, 2, 4, 1, 2):
        for _ in range(gap):
            x = xorshift_step(x)
        keys.append(old_key(x))
    hits = sum(predict(*keys[i:i + 4]) for i in range(len(keys) - 3))
    return hits, len(keys) - 3


def key_from_lbd(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    body = struct.pack("!I", 196608) + b"user\0postgres\0database\0postgres\0\0"
    s.sendall(struct.pack("!I", len(body) + 4) + body)
    buf = b""
    key = None
    while True:
        while len(buf) < 5 or len(buf) < 1 + struct.unpack("!I", buf[1:5])[0]:
            chunk = s.recv(65536)
            if not chunk:
                raise SystemExit("lbd closed the session: %r" % buf[:80])
            buf += chunk
        t, n = buf[0:1], struct.unpack("!I", buf[1:5])[0]
        msg, buf = buf[5:1 + n], buf[1 + n:]
        if t == b"E":
            raise SystemExit("error: %r" % msg)
        if t == b"K":
            key = struct.unpack("!I", msg[4:8])[0]
        if t == b"Z":
            break
    s.sendall(b"X\0\0\0\4")
    s.close()
    return key


def main():
    port, n = int(sys.argv[1]), int(sys.argv[2])
    hits, tries = self_check()
    print("old generator (xorshift64*): %d of %d next keys predicted from three" % (hits, tries))
    if hits != tries:
        raise SystemExit("the attack does not work on the old generator: this test proves nothing")
    keys = [key_from_lbd(port) for _ in range(n)]
    if None in keys:
        raise SystemExit("a session had no BackendKeyData")
    if len(set(keys)) != len(keys):
        raise SystemExit("lbd handed out the same key twice: %r" % keys)
    predicted = sum(predict(*keys[i:i + 4]) for i in range(n - 3))
    print("lbd: %d of %d next keys predicted from three (%d distinct keys)" % (predicted, n - 3, len(set(keys))))
    if predicted:
        raise SystemExit("lbd's keys are predictable")


main()
