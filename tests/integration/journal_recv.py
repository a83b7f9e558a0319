#!/usr/bin/env python3
"""journal_recv.py SOCKET OUT -- stands in for journald's native socket (log_journal.sh):
binds a datagram socket at SOCKET and writes each datagram it receives to OUT as one
JSON object a line, decoded as journald decodes the native protocol (KEY=value lines; a
KEY followed by a newline and a 64-bit little-endian length for binary values)."""
import json
import socket
import struct
import sys


def decode(d):
    rec, i = {}, 0
    while i < len(d):
        nl = d.find(b"\n", i)
        if nl < 0:
            raise ValueError("a field without its newline")
        line = d[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            k, n = line, struct.unpack("<Q", d[nl + 1:nl + 9])[0]
            v = d[nl + 9:nl + 9 + n]
            i = nl + 9 + n + 1
        rec[k.decode()] = v.decode()
    return rec


s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "w") as out:
    while True:
        d = s.recv(1 << 16)
        out.write(json.dumps(decode(d)) + "\n")
        out.flush()
