#!/usr/bin/env python3
"""reload_keys.py LBD WORK BASE -- change every key of lbd's section once by SIGHUP and
watch each take effect (issue 20: a reload that changed the check type once left every
node unchecked for good; nothing tested the other keys).

Runs in the private network namespace lbd_reload_keys.sh made (loopback, a veth d0),
with PostgreSQL nodes on BASE+1 and BASE+2 (log_connections on). Every leaf key that
`lbd --help` lists must have a case below, or the test fails: a new key comes with its
reload case. Each case reloads the base file with the key changed (and, where the key
needs it, a context set first and checked without the change), checks the effect the
key promises, then reloads the base file again. Restart-only keys must be named in
reload_partial and keep their running value."""
import copy
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request

import yaml

LBD, WORK, BASE = sys.argv[1], sys.argv[2], int(sys.argv[3])
LB, ADMIN, NODE0, NODE1 = BASE, BASE + 9, BASE + 1, BASE + 2
STUB_A, STUB_B, PEER_STUB = BASE + 5, BASE + 6, BASE + 7
VIP = "10.99.0.1"         # on the veth d0: its removal is a VIP leaving
BLACKHOLE = "10.99.9.9"   # routed out of d0, where nothing answers ARP
CONF = os.path.join(WORK, "lb.yaml")
LOG = os.path.join(WORK, "lb1.log")
SOCK = os.path.join(WORK, "lbd.sock")

BASE_CONFIG = {
    "instance": "lb1",
    "lbd": {
        "listen": ["127.0.0.1:%d" % LB, "%s:%d" % (VIP, LB)],
        "admin": "127.0.0.1:%d" % ADMIN,
        "liveness_socket": SOCK,
        "keepalive": "60s",
        "timeouts": {"drain": "30s"},
        "peer": {"address": "127.0.0.1:%d" % PEER_STUB, "listen": "127.0.0.1:%d" % (BASE + 10)},
        "pool": {
            "balance": "leastconn",
            "cancel_unknown": "one",
            "health": {"type": "pg", "interval": "1s", "timeout": "800ms", "pg_user": "postgres"},
            "nodes": [{"name": "node0", "address": "127.0.0.1:%d" % NODE0},
                      {"name": "node1", "address": "127.0.0.1:%d" % NODE1}],
        },
    },
}

lbd_proc = None
failures = []


def log(msg):
    print("%s [reload_keys] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def write(cfg):
    with open(CONF + ".tmp", "w") as f:
        yaml.safe_dump(cfg, f, default_flow_style=False)
    os.rename(CONF + ".tmp", CONF)


def log_text():
    with open(LOG, errors="replace") as f:
        return f.read()


def reload(cfg, expect_partial=None):
    """Write cfg, SIGHUP, wait until lbd counts it (its reload line is info, which a
    log_level of warn hides); return the log offset before it."""
    write(cfg)
    mark = len(log_text())
    done = metric("lbd_config_reloads_total")
    failed = metric("lbd_config_reload_failures_total")
    lbd_proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 5
    while time.time() < deadline:
        new = log_text()[mark:]
        if metric("lbd_config_reload_failures_total") > failed:
            raise AssertionError("reload failed: " + new.strip().splitlines()[-1])
        if metric("lbd_config_reloads_total") > done:
            new = log_text()[mark:]
            if expect_partial is not None:
                m = re.search(r"event=reload_partial restart_needed_for=(\S+)", new)
                if not m or m.group(1) != expect_partial:
                    raise AssertionError("reload_partial: expected %s, got %s" % (
                        expect_partial, m.group(1) if m else "none"))
            elif "event=reload_partial" in new:
                raise AssertionError("unexpected reload_partial: " + new)
            return mark
        time.sleep(0.02)
    raise AssertionError("no reload line within 5 s")


def status():
    return json.load(urllib.request.urlopen("http://127.0.0.1:%d/status" % ADMIN, timeout=3))


def metric(name, labels=""):
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % ADMIN, timeout=3).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + labels + " ") or (not labels and line.startswith(name + "{")):
            total += float(line.split()[-1])
    return total


def wait(what, pred, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if pred():
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def node(name):
    return next(n for n in status()["nodes"] if n["name"] == name)


# ---- a minimal PostgreSQL client (trust authentication) ---------------------------
class Session:
    def __init__(self, host="127.0.0.1", port=LB, db="postgres", timeout=5):
        self.s = socket.create_connection((host, port), timeout=timeout)
        body = struct.pack("!I", 196608) + b"user\0postgres\0database\0" + db.encode() + b"\0\0"
        self.s.sendall(struct.pack("!I", len(body) + 4) + body)
        self.buf = b""
        self.error = None
        self.pid = self.key = None
        for t, msg in self.messages():
            if t == b"K":
                self.pid, self.key = struct.unpack("!II", msg[:8])
            if t == b"E":
                self.error = msg
                return
            if t == b"Z":
                return

    def messages(self):
        while True:
            while len(self.buf) < 5 or len(self.buf) < 1 + struct.unpack("!I", self.buf[1:5])[0]:
                chunk = self.s.recv(65536)
                if not chunk:
                    raise ConnectionError("closed")
                self.buf += chunk
            n = struct.unpack("!I", self.buf[1:5])[0]
            t, msg, self.buf = self.buf[0:1], self.buf[5:1 + n], self.buf[1 + n:]
            yield t, msg
            if t in (b"Z", b"E") and not self.buf:
                pass

    def query(self, sql):
        q = sql.encode() + b"\0"
        self.s.sendall(b"Q" + struct.pack("!I", len(q) + 4) + q)
        value = None
        for t, msg in self.messages():
            if t == b"D":
                (ln,) = struct.unpack("!I", msg[2:6])
                value = msg[6:6 + ln].decode()
            if t == b"E":
                raise AssertionError("query error: %r" % msg)
            if t == b"Z":
                return value

    def sqlstate(self):
        m = re.search(rb"C([0-9A-Z]{5})\0", self.error or b"")
        return m.group(1).decode() if m else None

    def closed_within(self, seconds):
        """Whether lbd closes the session within seconds (what it says first is read)."""
        deadline = time.time() + seconds
        try:
            while time.time() < deadline:
                self.s.settimeout(max(deadline - time.time(), 0.01))
                if self.s.recv(4096) == b"":
                    return True
            return False
        except socket.timeout:
            return False
        except ConnectionError:
            return True

    def close(self):
        try:
            self.s.sendall(b"X\0\0\0\4")
        except OSError:
            pass
        self.s.close()


def port_of_session():
    s = Session()
    try:
        return int(s.query("select inet_server_port()"))
    finally:
        s.close()


def send_cancel(pid, key, port=LB):
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    s.sendall(struct.pack("!IIII", 16, 80877102, pid, key))
    s.close()


# ---- stubs: HTTP readiness endpoints and the peer's cancel listener -----------------
class Stub:
    def __init__(self, port, http=True):
        self.port, self.http = port, http
        self.requests = []
        self.hold = False  # (not http) keep a forwarded cancel's connection open
        self.code = 200    # (http) the readiness answer: 503 is CockroachDB draining
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", port))
        self.srv.listen(64)
        self.held = []
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            try:
                c.settimeout(2)
                data = c.recv(4096)
                self.requests.append(data)
                if self.http:
                    c.sendall(b"HTTP/1.0 %d X\r\nContent-Length: 2\r\n\r\n{}" % self.code)
                    c.close()
                elif self.hold:
                    self.held.append(c)  # a peer that never closes a forwarded cancel
                else:
                    c.close()
            except OSError:
                c.close()

    def stop(self):
        try:  # (wakes the thread blocked in accept; close alone would leave it listening)
            self.srv.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.srv.close()


def pg_log(port):
    with open(os.path.join(WORK, "node%d.log" % (port - NODE0)), errors="replace") as f:
        return f.read()


def ss_keepalive(port):
    out = subprocess.run(["ss", "-tnoH", "state", "established", "( sport = :%d )" % port],
                         capture_output=True, text=True).stdout
    vals = []
    for m in re.finditer(r"timer:\(keepalive,(?:(\d+)min)?(?:(\d+)(?:sec|\.))?(?:(\d+)ms)?", out):
        vals.append(int(m.group(1) or 0) * 60 + int(m.group(2) or 0) + int(m.group(3) or 0) / 1000)
    return vals


# ---- the cases -----------------------------------------------------------------------
def with_key(path, value, cfg=None):
    cfg = copy.deepcopy(cfg or BASE_CONFIG)
    parts = path.split(".")
    d = cfg
    for p in parts[:-1]:
        d = d.setdefault(p, {})
    d[parts[-1]] = value
    return cfg


def restart_only(path, value, name):
    def case():
        before = status()["instance"]
        reload(with_key(path, value), expect_partial=name)
        assert status()["instance"] == before, "the running instance name changed"
        assert port_of_session() in (NODE0, NODE1), "sessions stopped"
    return case


def c_state_file():
    path = WORK + "/state/lbd.state"
    restart_only("lbd.control.state_file", path, "control")()
    assert not os.path.exists(path), "a state file set by reload was written before a restart"


def c_workers():
    before = len(status()["workers"])
    reload(with_key("lbd.workers", before + 1), expect_partial="workers")
    assert len(status()["workers"]) == before, "the event loops changed without a restart"
    assert port_of_session() in (NODE0, NODE1), "sessions stopped"


def c_maxconn():
    reload(with_key("lbd.maxconn", 1))
    a = Session()
    b = Session()
    try:
        assert b.sqlstate() == "53300", "a second session with maxconn 1: %r" % b.error
    finally:
        a.close()
        b.s.close()


def c_log_level():
    mark = reload(with_key("lbd.log_level", "warn"))
    port_of_session()
    time.sleep(0.3)
    assert "event=session_end" not in log_text()[mark:], "info lines logged at log_level warn"


def c_log_target():
    # syslog: the lines leave stderr (no syslog daemon need be running: they are dropped).
    mark = reload(with_key("lbd.log_target", "syslog"))
    port_of_session()
    time.sleep(0.3)
    assert "event=session_end" not in log_text()[mark:], "a line on stderr with log_target: syslog"
    mark = reload(BASE_CONFIG)
    port_of_session()
    wait("a session line on stderr again", lambda: "event=session_end" in log_text()[mark:], 2)


def c_log_sessions():
    mark = reload(with_key("lbd.log_sessions", False))
    port_of_session()
    time.sleep(0.3)
    assert "event=session_end" not in log_text()[mark:], "a session line with log_sessions: false"
    mark = reload(BASE_CONFIG)
    port_of_session()
    wait("a session line again", lambda: "event=session_end" in log_text()[mark:], 2)


def c_log_file():
    path = os.path.join(WORK, "extra.log")
    reload(with_key("lbd.log_file", path))
    port_of_session()
    wait("a line in the new log file", lambda: "event=session_end" in open(path).read())


def c_keepalive():
    reload(with_key("lbd.keepalive", "3s"))
    s = Session()
    try:
        vals = []
        for _ in range(40):
            vals = ss_keepalive(LB)
            if vals:
                break
            time.sleep(0.05)
        assert vals and max(vals) <= 3, "keepalive timers on the new session: %r" % vals
    finally:
        s.close()


def c_close_on_vip_loss():
    reload(with_key("lbd.close_on_vip_loss", False))
    s = Session(host=VIP)
    subprocess.run(["ip", "addr", "del", VIP + "/32", "dev", "d0"], check=True)
    try:
        time.sleep(0.5)
        assert metric("lbd_sessions") == 1, "the session was closed with close_on_vip_loss: false"
    finally:
        s.close()
        subprocess.run(["ip", "addr", "add", VIP + "/32", "dev", "d0"], check=True)
    # and back on (the base): the same removal closes it
    reload(BASE_CONFIG)
    s = Session(host=VIP)
    subprocess.run(["ip", "addr", "del", VIP + "/32", "dev", "d0"], check=True)
    try:
        wait("the session closed with the address", lambda: metric("lbd_sessions") == 0, 2)
    finally:
        s.s.close()
        subprocess.run(["ip", "addr", "add", VIP + "/32", "dev", "d0"], check=True)


def blackhole_pool(cfg):
    cfg["lbd"]["pool"]["nodes"] = [{"name": "hole", "address": "%s:5432" % BLACKHOLE}]
    cfg["lbd"]["pool"]["health"] = {"type": "none"}
    cfg["lbd"]["pool"]["retries"] = 0
    return cfg


def c_timeout_connect():
    reload(with_key("lbd.timeouts.connect", "300ms", blackhole_pool(copy.deepcopy(BASE_CONFIG))))
    t = time.time()
    s = Session(timeout=5)
    took = time.time() - t
    assert s.error is not None and 0.25 < took < 1.5, \
        "connect to a silent node ended after %.2f s: %r" % (took, s.error)
    s.s.close()


def c_timeout_startup():
    reload(with_key("lbd.timeouts.startup", "500ms"))
    c = socket.create_connection(("127.0.0.1", LB))
    t = time.time()
    c.settimeout(5)
    try:
        c.recv(1)
    except (ConnectionError, socket.timeout):
        pass
    took = time.time() - t
    assert 0.3 < took < 1.5, "a silent connection was closed after %.2f s (startup 500ms)" % took


def idle_case(key):
    def case():
        reload(with_key("lbd.timeouts." + key, "500ms"))
        s = Session()
        s.query("select 1")
        assert s.closed_within(2.5), "an idle session outlived %s 500ms" % key
    return case


def c_limits_source_rate():
    cfg = with_key("lbd.limits.cancel_source_rate", 1)
    reload(cfg)
    before = metric("lbd_cancel_limited_total", '{reason="source_rate"}')
    for i in range(6):
        send_cancel(7000 + i, 1234 + i)
    wait("source_rate drops", lambda: metric("lbd_cancel_limited_total", '{reason="source_rate"}') > before)


def c_limits_rate():
    cfg = with_key("lbd.limits.cancel_rate", 1)
    cfg["lbd"]["limits"]["cancel_source_rate"] = 0
    reload(cfg)
    before = metric("lbd_cancel_limited_total", '{reason="rate"}')
    for i in range(6):
        send_cancel(7100 + i, 99 + i)
    wait("rate drops", lambda: metric("lbd_cancel_limited_total", '{reason="rate"}') > before)


def c_limits_window():
    reload(BASE_CONFIG)
    time.sleep(1.2)  # (the rate cases before emptied this source's bucket)
    before = metric("lbd_cancel_limited_total", '{reason="duplicate"}')
    send_cancel(7200, 5)
    send_cancel(7200, 5)
    wait("the duplicate dropped (window 1 s, the base)",
         lambda: metric("lbd_cancel_limited_total", '{reason="duplicate"}') == before + 1)
    reload(with_key("lbd.limits.cancel_window", "0s"))
    send_cancel(7201, 6)
    send_cancel(7201, 6)
    time.sleep(0.3)
    assert metric("lbd_cancel_limited_total", '{reason="duplicate"}') == before + 1, \
        "a repeated cancel was dropped with cancel_window 0"


def peer_config(stub):
    return copy.deepcopy(BASE_CONFIG)


def c_peer_address(stub):
    def case():
        cfg = with_key("lbd.peer.address", "127.0.0.1:%d" % (BASE + 11))
        reload(cfg)
        moved = Stub(BASE + 11, http=False)
        n = len(moved.requests)
        send_cancel(7300, 77)
        wait("the unknown cancel at the new peer address", lambda: len(moved.requests) > n)
        moved.stop()
        code = struct.unpack("!I", moved.requests[-1][4:8])[0]
        assert code == 80877201, "the peer got code %d, not lbd's forwarded-cancel code" % code
    return case


def c_cancel_inflight(stub):
    def case():
        cfg = peer_config(stub)
        cfg["lbd"]["limits"] = {"cancel_inflight": 1}
        reload(cfg)
        before = metric("lbd_cancel_limited_total", '{reason="inflight"}')
        stub.hold = True
        try:
            send_cancel(7400, 1)   # held by the peer stub, which does not close it
            wait("the forward held", lambda: metric("lbd_cancel_inflight") == 1)
            send_cancel(7401, 2)
            wait("inflight drop", lambda: metric("lbd_cancel_limited_total", '{reason="inflight"}') > before)
        finally:
            stub.hold = False
            for c in stub.held:
                c.close()
    return case


def c_cancel_unknown(stub):
    """Without a peer (with one, the peer decides): one sends an unknown key to a node,
    drop to none."""
    def case():
        cfg = copy.deepcopy(BASE_CONFIG)
        del cfg["lbd"]["peer"]
        reload(cfg, expect_partial="peer.listen")
        one = metric("lbd_cancel_requests_total", '{outcome="one"}')
        send_cancel(7500, 3)
        wait("the unknown cancel sent to one node", lambda: metric("lbd_cancel_requests_total", '{outcome="one"}') > one)
        reload(with_key("lbd.pool.cancel_unknown", "drop", cfg), expect_partial="peer.listen")
        one = metric("lbd_cancel_requests_total", '{outcome="one"}')
        dropped = metric("lbd_cancel_requests_total", '{outcome="dropped"}')
        send_cancel(7501, 4)
        wait("the unknown cancel dropped", lambda: metric("lbd_cancel_requests_total", '{outcome="dropped"}') > dropped)
        assert metric("lbd_cancel_requests_total", '{outcome="one"}') == one, "drop still sent it to a node"
    return case


def c_balance():
    reload(with_key("lbd.pool.balance", "roundrobin"))
    ports = [port_of_session() for _ in range(4)]
    assert ports[0] != ports[1] and ports[0] == ports[2] and ports[1] == ports[3], \
        "roundrobin did not alternate: %r" % ports


def refused_pool(cfg):
    cfg["lbd"]["pool"]["nodes"] = [{"name": "gone", "address": "127.0.0.1:%d" % (BASE + 8)},
                                   {"name": "node0", "address": "127.0.0.1:%d" % NODE0}]
    cfg["lbd"]["pool"]["health"] = {"type": "none"}
    cfg["lbd"]["pool"]["balance"] = "roundrobin"
    return cfg


def c_retries():
    ctx = refused_pool(copy.deepcopy(BASE_CONFIG))
    reload(ctx)
    mark = len(log_text())
    assert all(port_of_session() == NODE0 for _ in range(4)), "retries (2, the default) did not reach node0"
    wait("a session line saying it retried", lambda: " retries=1 " in log_text()[mark:], 3)
    ctx["lbd"]["pool"]["nodes"][0]["name"] = "gone2"  # (new: up, not marked down by the above)
    reload(with_key("lbd.pool.retries", 0, ctx))
    errors = 0
    for _ in range(4):
        s = Session()
        errors += s.error is not None
        s.s.close()
    assert errors >= 1, "with retries 0, no session met the refusing node"


def http_pool(cfg, fall=1):
    cfg["lbd"]["pool"]["health"] = {"type": "http", "interval": "100ms", "timeout": "80ms",
                                    "rise": 1, "fall": fall, "http_port": STUB_A}
    cfg["lbd"]["pool"]["nodes"] = [
        {"name": "node0", "address": "127.0.0.1:%d" % NODE0, "check_port": STUB_A},
        {"name": "node1", "address": "127.0.0.1:%d" % NODE1, "check_port": STUB_B}]
    return cfg


def c_on_node_down():
    global stub_a
    reload(with_key("lbd.pool.on_node_down", "cut", http_pool(copy.deepcopy(BASE_CONFIG))))
    wait("both nodes up", lambda: all(n["state"] == "up" for n in status()["nodes"]))
    held = []
    for _ in range(4):  # one session at least on node0
        s = Session()
        held.append((s, int(s.query("select inet_server_port()"))))
    on0 = [s for s, p in held if p == NODE0]
    assert on0, "no session on node0"
    stub_a.stop()
    try:
        assert on0[0].closed_within(3), "a session on the down node was kept with on_node_down: cut"
    finally:
        for s, _ in held:
            s.s.close()
        stub_a = Stub(STUB_A)


def c_on_node_drain():
    ctx = http_pool(copy.deepcopy(BASE_CONFIG))
    reload(with_key("lbd.pool.on_node_drain", "keep", ctx))
    wait("both nodes up", lambda: all(n["state"] == "up" for n in status()["nodes"]))
    held, s = [], None
    for _ in range(6):
        c = Session()
        if int(c.query("select inet_server_port()")) == NODE0:
            s = c
            break
        held.append(c)
    for c in held:
        c.close()
    assert s is not None, "no session on node0"
    stub_a.code = 503
    try:
        wait("node0 draining", lambda: node("node0")["state"] == "draining", 3)
        assert not s.closed_within(0.5), "an idle session of a draining node was closed with keep"
        reload(ctx)  # close_at_idle, the default: the idle session goes at once
        assert s.closed_within(2), "an idle session of a draining node stayed with close_at_idle"
    finally:
        stub_a.code = 200
        s.s.close()


def c_drain_deadline():
    ctx = http_pool(copy.deepcopy(BASE_CONFIG))
    reload(with_key("lbd.pool.drain_deadline", "500ms", ctx))
    wait("both nodes up", lambda: all(n["state"] == "up" for n in status()["nodes"]))
    held, s = [], None
    for _ in range(6):  # held open, so leastconn's next pick is node0 (ties are random)
        c = Session()
        if int(c.query("select inet_server_port()")) == NODE0:
            s = c
            break
        held.append(c)
    for c in held:
        c.close()
    assert s is not None, "no session on node0"
    s.query("begin")
    stub_a.code = 503
    try:
        assert s.closed_within(3), "a session busy in a transaction outlived drain_deadline 500ms"
    finally:
        stub_a.code = 200
        s.s.close()


def c_health_type():
    reload(with_key("lbd.pool.health.type", "tcp"))
    wait("a tcp check", lambda: node("node0")["check"]["last"].startswith("tcp:"), 4)


def pg_checks(port):
    return pg_log(port).count("application_name=lbd-healthcheck")


def c_health_interval():
    reload(BASE_CONFIG)
    n = pg_checks(NODE0)
    time.sleep(1.5)
    slow = pg_checks(NODE0) - n
    reload(with_key("lbd.pool.health.interval", "100ms", with_key("lbd.pool.health.timeout", "80ms")))
    n = pg_checks(NODE0)
    time.sleep(1.5)
    fast = pg_checks(NODE0) - n
    assert fast >= 8 and fast > 3 * max(slow, 1), "checks in 1.5 s: %d at 1s, %d at 100ms" % (slow, fast)


def c_health_timeout():
    cfg = copy.deepcopy(BASE_CONFIG)
    cfg["lbd"]["pool"]["nodes"].append({"name": "hole", "address": "%s:5432" % BLACKHOLE})
    reload(with_key("lbd.pool.health.timeout", "250ms", cfg))
    try:
        wait("the silent node's check timing out at 250ms",
             lambda: node("hole")["check"]["last"].startswith("timeout after 250ms"), 4)
    except AssertionError:
        raise AssertionError("the silent node's last check: %r" % node("hole")["check"])


def c_rise_fall(key, value):
    def case():
        reload(with_key("lbd.pool.health." + key, value))
        assert all(n["check"][key] == value for n in status()["nodes"]), "nodes' %s: %r" % (
            key, [n["check"][key] for n in status()["nodes"]])
    return case


def c_http_port():
    cfg = http_pool(copy.deepcopy(BASE_CONFIG))
    for n in cfg["lbd"]["pool"]["nodes"]:
        del n["check_port"]
    reload(with_key("lbd.pool.health.http_port", STUB_B, cfg))
    n = len(stub_b.requests)
    wait("checks at the new http_port", lambda: len(stub_b.requests) >= n + 4, 3)


def c_http_path():
    reload(with_key("lbd.pool.health.http_path", "/ready-2", http_pool(copy.deepcopy(BASE_CONFIG))))
    wait("the new path requested", lambda: stub_a.requests and stub_a.requests[-1].startswith(b"GET /ready-2 "), 3)


def c_pg_field(key, value, logged):
    def case():
        reload(with_key("lbd.pool.health." + key, value))
        wait("the check's %s in node0's log" % key, lambda: logged in pg_log(NODE0), 4)
    return case


def c_reuse_max_idle():
    reload(with_key("lbd.pool.reuse", {"max_idle": 2}))
    port_of_session()
    wait("a kept node connection", lambda: metric("lbd_reuse_idle") >= 1, 3)


def c_reuse_idle():
    reload(with_key("lbd.pool.reuse", {"max_idle": 2, "idle": "300ms"}))
    before = metric("lbd_reuse_expired_total")
    port_of_session()
    wait("the kept connection expiring after 300ms", lambda: metric("lbd_reuse_expired_total") > before, 3)


def nodes_with(**changes):
    cfg = copy.deepcopy(BASE_CONFIG)
    cfg["lbd"]["pool"]["nodes"][1].update(changes)
    return cfg


def c_node_name():
    reload(nodes_with(name="node1b"))
    assert [n["name"] for n in status()["nodes"]] == ["node0", "node1b"], status()["nodes"]


def c_node_address():
    reload(nodes_with(address="127.0.0.1:%d" % (BASE + 8)))
    assert node("node1")["address"] == "127.0.0.1:%d" % (BASE + 8), node("node1")


def c_node_list():
    cfg = copy.deepcopy(BASE_CONFIG)
    del cfg["lbd"]["pool"]["nodes"][1]
    reload(cfg)
    assert [n["name"] for n in status()["nodes"]] == ["node0"], status()["nodes"]


def c_node_weight():
    reload(nodes_with(weight=0))
    wait("node1 up", lambda: node("node1")["state"] == "up")
    ports = {port_of_session() for _ in range(6)}
    assert ports == {NODE0}, "sessions went to a weight-0 node: %r" % ports
    # The views say so: up by its checks, yet taking no new session.
    assert node("node1")["new_sessions"] == "weight 0", node("node1")
    assert metric("lbd_node_up", '{node="node1"}') == 1, "lbd_node_up of the weight-0 node"
    assert metric("lbd_node_eligible", '{node="node1"}') == 0, "lbd_node_eligible of the weight-0 node"
    assert metric("lbd_node_weight", '{node="node1"}') == 0, "lbd_node_weight"


def c_node_max_sessions():
    cfg = copy.deepcopy(BASE_CONFIG)
    for n in cfg["lbd"]["pool"]["nodes"]:
        n["max_sessions"] = 1
    reload(cfg)
    a, b, c = Session(), Session(), Session()
    try:
        assert a.error is None and b.error is None and c.error is not None, \
            "three sessions with two nodes of max_sessions 1: %r %r %r" % (a.error, b.error, c.error)
    finally:
        for s in (a, b, c):
            s.s.close()


def c_node_check_port():
    reload(http_pool(copy.deepcopy(BASE_CONFIG)))
    cfg = http_pool(copy.deepcopy(BASE_CONFIG))
    cfg["lbd"]["pool"]["nodes"][0]["check_port"] = STUB_B
    reload(cfg)
    time.sleep(0.2)  # (a check begun before the reload)
    n = len(stub_a.requests)
    time.sleep(0.5)
    assert len(stub_a.requests) == n, "node0 is still checked at its old check_port"


def c_drain_handover():
    """Last: SIGTERM with a watcher on the liveness socket (as vrrpd): new sessions are
    served for timeouts.handover, then the open one has timeouts.drain."""
    cfg = with_key("lbd.timeouts.drain", "1s", with_key("lbd.timeouts.handover", "1500ms"))
    reload(cfg)
    w = socket.socket(socket.AF_UNIX)
    w.connect(SOCK)
    wait("lbd sees the watcher", lambda: metric("lbd_liveness_watchers") == 1)
    held = Session()
    t = time.time()
    lbd_proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    # During the handover the listeners are quiesced: a SYN is dropped, not refused, so
    # the client's retransmission reaches the peer that takes the VIP.
    c = socket.socket()
    c.settimeout(0.3)
    try:
        c.connect(("127.0.0.1", LB))
        raise AssertionError("a new connection was accepted 0.5 s into the handover")
    except socket.timeout:
        pass
    except ConnectionRefusedError:
        raise AssertionError("a new connection was refused 0.5 s into the handover (not quiesced)")
    finally:
        c.close()
    lbd_proc.wait(timeout=10)
    took = time.time() - t
    assert 2.0 < took < 4.5, "lbd exited %.2f s after SIGTERM (handover 1.5 s + drain 1 s)" % took
    held.s.close()
    w.close()


def help_keys():
    out = subprocess.run([LBD, "--help"], capture_output=True, text=True).stdout
    lines = out.split("Configuration keys", 1)[1].splitlines()
    keys = []
    for i, line in enumerate(lines):
        m = re.match(r"^  ([a-z_.\[\]]+)$", line)
        if m and i + 1 < len(lines) and not lines[i + 1].strip().startswith("section"):
            keys.append(m.group(1))
    return keys


def main():
    global lbd_proc, stub_a, stub_b
    # (A second address keeps d0's routes when the VIP goes: the kernel flushes an
    # interface's routes with its last address.)
    subprocess.run(["ip", "addr", "add", "10.99.0.2/24", "dev", "d0"], check=True)
    subprocess.run(["ip", "addr", "add", VIP + "/32", "dev", "d0"], check=True)
    subprocess.run(["ip", "route", "add", BLACKHOLE + "/32", "dev", "d0"], check=True)
    stub_a, stub_b = Stub(STUB_A), Stub(STUB_B)
    peer = Stub(PEER_STUB, http=False)
    write(BASE_CONFIG)
    lbd_proc = subprocess.Popen([LBD, "-c", CONF], stdout=open(LOG, "a"), stderr=subprocess.STDOUT)
    with open(os.path.join(WORK, "lbd.pid"), "w") as f:
        f.write(str(lbd_proc.pid))
    wait("lbd up with both nodes", lambda: all(n["state"] == "up" for n in status()["nodes"]), 10)

    cases = {
        "instance": restart_only("instance", "lb7", "instance"),
        "lbd.listen": restart_only("lbd.listen", "127.0.0.1:%d" % (BASE + 3), "listen"),
        "lbd.admin": restart_only("lbd.admin", "127.0.0.1:%d" % (BASE + 4), "admin"),
        "lbd.relay": restart_only("lbd.relay", "auto", "relay"),
        "lbd.workers": c_workers,
        "lbd.liveness_socket": restart_only("lbd.liveness_socket", SOCK + "2", "liveness_socket"),
        "lbd.user": restart_only("lbd.user", "nobody", "user"),
        "lbd.peer.listen": restart_only("lbd.peer.listen", "127.0.0.1:%d" % (BASE + 8), "peer.listen"),
        "lbd.peer.key_file": restart_only("lbd.peer.key_file", WORK + "/peer.key", "peer.key_file"),
        "lbd.control.socket": restart_only("lbd.control.socket", WORK + "/ctl2.sock", "control"),
        "lbd.control.mode": restart_only("lbd.control.mode", "0600", "control"),
        "lbd.control.group": restart_only("lbd.control.group", "postgres", "control"),
        "lbd.control.operators": restart_only("lbd.control.operators", "postgres", "control"),
        "lbd.control.state_file": c_state_file,
        "lbd.maxconn": c_maxconn,
        "lbd.log_level": c_log_level,
        "lbd.log_file": c_log_file,
        "lbd.log_sessions": c_log_sessions,
        "lbd.log_target": c_log_target,
        "lbd.keepalive": c_keepalive,
        "lbd.close_on_vip_loss": c_close_on_vip_loss,
        "lbd.timeouts.connect": c_timeout_connect,
        "lbd.timeouts.startup": c_timeout_startup,
        "lbd.timeouts.client_idle": idle_case("client_idle"),
        "lbd.timeouts.server_idle": idle_case("server_idle"),
        "lbd.limits.cancel_inflight": c_cancel_inflight(peer),
        "lbd.limits.cancel_rate": c_limits_rate,
        "lbd.limits.cancel_source_rate": c_limits_source_rate,
        "lbd.limits.cancel_window": c_limits_window,
        "lbd.limits.startup_per_source": None,  # below, needs its own shape
        "lbd.peer.address": c_peer_address(peer),
        "lbd.pool.balance": c_balance,
        "lbd.pool.retries": c_retries,
        "lbd.pool.on_node_down": c_on_node_down,
        "lbd.pool.cancel_unknown": c_cancel_unknown(peer),
        "lbd.pool.on_node_drain": c_on_node_drain,
        "lbd.pool.drain_deadline": c_drain_deadline,
        "lbd.pool.health.type": c_health_type,
        "lbd.pool.health.interval": c_health_interval,
        "lbd.pool.health.timeout": c_health_timeout,
        "lbd.pool.health.rise": c_rise_fall("rise", 5),
        "lbd.pool.health.fall": c_rise_fall("fall", 7),
        "lbd.pool.health.http_port": c_http_port,
        "lbd.pool.health.http_path": c_http_path,
        "lbd.pool.health.pg_user": c_pg_field("pg_user", "nobody_here", 'role "nobody_here" does not exist'),
        "lbd.pool.health.pg_database": c_pg_field("pg_database", "no_such_db", 'database "no_such_db" does not exist'),
        "lbd.pool.reuse.max_idle": c_reuse_max_idle,
        "lbd.pool.reuse.idle": c_reuse_idle,
        "lbd.pool.nodes[]": c_node_list,
        "lbd.pool.nodes[].name": c_node_name,
        "lbd.pool.nodes[].address": c_node_address,
        "lbd.pool.nodes[].weight": c_node_weight,
        "lbd.pool.nodes[].max_sessions": c_node_max_sessions,
        "lbd.pool.nodes[].check_port": c_node_check_port,
        "lbd.timeouts.drain": None,     # both in the last case, c_drain_handover
        "lbd.timeouts.handover": None,
    }

    def c_startup_per_source():
        reload(with_key("lbd.limits.startup_per_source", 2))
        held = [socket.create_connection(("127.0.0.1", LB)) for _ in range(2)]
        time.sleep(0.2)
        s = Session()
        try:
            assert s.sqlstate() == "53300", "a third silent connection from one address: %r" % s.error
        finally:
            s.s.close()
            for h in held:
                h.close()
    cases["lbd.limits.startup_per_source"] = c_startup_per_source

    missing = [k for k in help_keys() if k not in cases]
    if missing:
        failures.append("keys without a reload case: %s" % ", ".join(missing))
    for key, case in cases.items():
        if case is None:
            continue
        try:
            case()
            log("ok: %s" % key)
        except Exception as e:  # a failed case fails the test; the others still run
            failures.append("%s: %s" % (key, e))
            log("FAIL: %s: %s" % (key, e))
        try:
            reload(BASE_CONFIG)
            wait("both nodes up again", lambda: all(n["state"] == "up" for n in status()["nodes"]), 5)
        except Exception as e:
            failures.append("after %s, the base config: %s" % (key, e))
            log("FAIL: after %s: %s" % (key, e))
    try:
        c_drain_handover()
        log("ok: lbd.timeouts.drain, lbd.timeouts.handover")
    except Exception as e:
        failures.append("drain/handover: %s" % e)
    if lbd_proc.poll() is None:
        lbd_proc.kill()
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        sys.exit(1)
    print("every key of lbd's section (%d) changed by a reload and seen to take effect" % len(help_keys()))


main()
