#!/usr/bin/env python3
"""peer_control.py PEER_PORT CLIENT_PORT KEY_FILE -- the pair's signed node commands, as an
attacker and as the peer (lbd_control_pair.sh). Sends PGWIRE_CODE_PEER_CONTROL packets
(1234.5778) to lb2's peer listener, built as lbd/control.c builds them, and checks each
answer: a valid one is taken; the same bytes again (a replay), a wrong key, a time 60 s
old, or a command that is not a node command are refused; a client port answers the code
as PostgreSQL answers a protocol it does not know."""
import hashlib
import hmac
import os
import socket
import struct
import sys
import time

PEER, CLIENT, KEY = int(sys.argv[1]), int(sys.argv[2]), open(sys.argv[3], "rb").read().strip()
LABEL = b"pgvip-peer-control-1"


def packet(text, key=KEY, ts=None, nonce=None):
    ts = int(time.time() * 1000) if ts is None else ts
    head = struct.pack("!BBQ", 1, 0, ts) + (nonce or os.urandom(16))
    mac = hmac.new(key, LABEL + head + text, hashlib.sha256).digest()
    body = struct.pack("!I", 80877202) + head + mac + text
    return struct.pack("!I", len(body) + 4) + body


def send(pkt, port=PEER):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(pkt)
    out = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            return out
        out += chunk


def expect(answer, status, words, what):
    if answer[:1] != status or words.encode() not in answer:
        raise SystemExit("%s: got %r, expected status %r and %r" % (what, answer, status, words))
    print("%s: %s" % (what, answer[1:].decode().strip()))


good = packet(b"lbx \"a test\"\nnodes weight node1 3")
expect(send(good), b"0", "node node1 weight 3", "a signed command")
expect(send(good), b"1", "taken before (a replay)", "the same bytes again")
expect(send(packet(b"x\nnodes weight node1 9", key=b"another key of 16+ bytes")), b"1",
       "bad signature", "a wrong key")
expect(send(packet(b"x\nnodes weight node1 9", ts=int(time.time() * 1000) - 60000)), b"1",
       "more than 30 s", "a time 60 s old")
expect(send(packet(b"x\nsessions kill node node0 now")), b"1", "not a node command",
       "a session command")
a = send(packet(b"x\nnodes weight node1 9"), port=CLIENT)
if b"C0A000\0" not in a or b"unsupported frontend protocol 1234.5778" not in a:
    raise SystemExit("a client port's answer to the peer code: %r" % a)
print("a client port: 0A000 unsupported frontend protocol 1234.5778, as PostgreSQL")
