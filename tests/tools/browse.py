#!/usr/bin/env python3
"""browse.py -- look at a web page as a person would, in headless Chromium.

Drives Debian's chromium over the DevTools protocol on a pipe (--remote-debugging-pipe:
commands on fd 3, answers on fd 4, each a JSON text ending in NUL), with only Python's
standard library. Steps run in order:

  --expect 'WHAT=JS'   the JS expression must become true (polled every 100 ms, at most
                       --timeout seconds per group of expectations); WHAT names it in output
  --run 'CMD'          first wait for the expectations so far, then run a shell command
  --shot FILE          first wait for the expectations so far, then save a PNG screenshot
  --text FILE          the page's visible text (document.body.innerText) at the end

Exit status 0 when every expectation came true in time; 1 otherwise, with the ones that
did not and the page's text printed, so a failure says what the person would have seen.

  browse.py http://127.0.0.1:8081/ --expect 'title=document.title.length>0' --shot a.png
"""
import argparse
import base64
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


class Browser:
    def __init__(self, width=1280, height=1100):
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if exe is None:
            raise SystemExit("browse.py: chromium is not installed (apt-get install chromium)")
        self.profile = tempfile.mkdtemp(prefix="browse-")
        cmd_r, self.cmd_w = os.pipe()
        self.resp_r, resp_w = os.pipe()

        def child_fds():  # fds 3 and 4, whatever numbers the pipes got (may be 3 or 4)
            a = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(resp_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-extensions", "--disable-background-networking", "--mute-audio",
             "--hide-scrollbars", f"--window-size={width},{height}",
             f"--user-data-dir={self.profile}", "--remote-debugging-pipe", "about:blank"],
            pass_fds=(3, 4), preexec_fn=child_fds,  # kept open after child_fds
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(cmd_r)
        os.close(resp_w)
        self.next_id = 0
        self.buf = b""
        self.session = None

    def _recv(self):
        while b"\0" not in self.buf:
            chunk = os.read(self.resp_r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=True):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.cmd_w, json.dumps(msg).encode() + b"\0")
        while True:
            r = self._recv()
            if r.get("id") == self.next_id:
                if "error" in r:
                    raise RuntimeError(f"{method}: {r['error']}")
                return r.get("result", {})

    def open(self, url):
        targets = self.call("Target.getTargets", session=False)["targetInfos"]
        page = next((t for t in targets if t["type"] == "page"), None)
        tid = page["targetId"] if page else self.call(
            "Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": tid, "flatten": True},
                                 session=False)["sessionId"]
        self.call("Page.enable")
        self.call("Page.navigate", {"url": url})

    def eval(self, expr):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True})
        if "exceptionDetails" in r:
            return None
        return r.get("result", {}).get("value")

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        with open(path, "wb") as f:
            f.write(base64.b64decode(data["data"]))

    def close(self):
        try:
            self.call("Browser.close", session=False)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


class Step(argparse.Action):
    def __call__(self, parser, ns, value, option=None):
        ns.steps.append((option.lstrip("-"), value))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("url")
    ap.add_argument("--timeout", type=float, default=15.0)
    ap.add_argument("--text", help="save the page's visible text here at the end")
    ap.set_defaults(steps=[])
    for opt in ("--expect", "--run", "--shot"):
        ap.add_argument(opt, action=Step)
    args = ap.parse_args()

    b = Browser()
    pending, failed = [], []
    t0 = time.monotonic()

    def log(msg):
        print(f"browse: {time.monotonic() - t0:6.2f}s {msg}", flush=True)

    def settle():
        if not pending:
            return True
        deadline = time.monotonic() + args.timeout
        while True:
            results = [(what, b.eval(expr) is True) for what, expr in pending]
            if all(ok for _, ok in results):
                for what, _ in pending:
                    log(f"ok: {what}")
                pending.clear()
                return True
            if time.monotonic() > deadline:
                for what, ok in results:
                    log(("ok: " if ok else "NOT TRUE: ") + what)
                    if not ok:
                        failed.append(what)
                pending.clear()
                return False
            time.sleep(0.1)

    try:
        b.open(args.url)
        log(f"opened {args.url}")
        for kind, value in args.steps:
            if kind == "expect":
                what, sep, expr = value.partition("=")
                if not sep:
                    raise SystemExit(f"browse.py: --expect wants WHAT=JS, got {value!r}")
                pending.append((what, expr))
            elif kind == "run":
                if not settle():
                    break
                log(f"run: {value}")
                subprocess.run(value, shell=True, check=False)
            elif kind == "shot":
                settle()
                b.screenshot(value)
                log(f"screenshot: {value}")
        settle()
        text = b.eval("document.body ? document.body.innerText : ''") or ""
        if args.text:
            with open(args.text, "w") as f:
                f.write(text)
        if failed:
            print("browse: the page showed:\n" + text, flush=True)
    finally:
        b.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
