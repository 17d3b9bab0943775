"""Starts an Eddy service as a real process and talks HTTP to it (shared by the service
tests; standard library only)."""

import http.client
import json
import os
import random
import re
import socket
import subprocess
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """A service process on a free port; its stderr in `log`."""

    def __init__(self, binary, data_dir, *args, inspect_port=None, port=0):
        self.log = os.path.join(data_dir + ".log")
        cmd = [binary, "--data-dir", data_dir, "--http.port", str(port), *args]
        if inspect_port:
            cmd += ["--inspect", "--node.port", str(inspect_port)]
        self.err = open(self.log, "ab")
        start = self.err.tell()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.err)
        self.port = None
        deadline = time.time() + 20
        while time.time() < deadline and self.port is None:
            if self.proc.poll() is not None:
                raise RuntimeError("the service exited with %d: %s" % (self.proc.returncode, self.tail()))
            with open(self.log, "rb") as f:
                f.seek(start)
                m = re.findall(rb"listening on http://[^:]+:(\d+)", f.read())
            if m:
                self.port = int(m[-1])
            else:
                time.sleep(0.05)
        if self.port is None:
            raise RuntimeError("the service does not listen: " + self.tail())

    def tail(self):
        return open(self.log, "rb").read()[-2000:].decode(errors="replace")

    def call(self, method, path, body=None, headers=None, raw=None, timeout=15):
        """(status, parsed JSON body or text, headers)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        data = raw if raw is not None else (json.dumps(body) if body is not None else "")
        hdrs = {"Content-Type": "application/json"}
        hdrs.update(headers or {})
        conn.request(method, path, body=data, headers=hdrs)
        res = conn.getresponse()
        text = res.read().decode()
        conn.close()
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = text
        return res.status, parsed, dict(res.getheaders())

    def stop(self, sig=15, timeout=20):
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.err.close()

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.err.close()


class Checks:
    """Collects failed checks; prints each and a verdict."""

    def __init__(self):
        self.failed = 0

    def check(self, ok, what, got=None):
        if not ok:
            self.failed += 1
            print("FAIL: %s%s" % (what, "" if got is None else " (got %r)" % (got,)))
        return ok

    def verdict(self, what):
        if self.failed:
            print("%d check(s) failed" % self.failed)
            return 1
        print("PASS: " + what)
        return 0


class Counter:
    """Counts outcomes from several threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.n = {}

    def add(self, what):
        with self.lock:
            self.n[what] = self.n.get(what, 0) + 1


def cart_requests(t, users, count):
    """Client t's cart updates, in order: (user, sku, Idempotency-Key); a unique sku each,
    qty 1, so that a cart shows whether an update was applied once, twice or never."""
    rnd = random.Random(t)
    return [("u%d_%d" % (t, rnd.randrange(users)), "s%d_%d" % (t, i), "k%d_%d" % (t, i))
            for i in range(count)]


def check_carts(c, svc, requests, where=""):
    """Every cart `requests` went to holds each of its skus once and counts them in its
    version."""
    sent = {}
    for user, sku, _ in requests:
        sent.setdefault(user, []).append(sku)
    for user, skus in sent.items():
        st, cart, _ = svc.call("GET", "/carts/" + user)
        got = {i["sku"]: i["qty"] for i in cart["items"]} if st == 200 else {}
        c.check(st == 200 and got == {s: 1 for s in skus} and cart["version"] == len(skus),
                "%s%s holds every sku sent to it once and counts them" % (user, where),
                (st, "missing %d of %d, %d unexpected, %d twice" % (
                    len(set(skus) - set(got)), len(skus), len(set(got) - set(skus)),
                    len([q for q in got.values() if q != 1]))))
