#!/usr/bin/env python3
"""Savepoints of a service: clients add items to carts (a unique sku per request) while a
savepoint is taken from the console; the savepoint holds the service's ingress position and
a copy of its ingress log. Then:
  - restored into a fresh data dir, each cart holds a subset of what was sent, each sku
    once, at least what was acknowledged before the savepoint, and a new request is applied
    (the ingress log goes on after the savepoint's positions, so it is not taken for a
    replayed one);
  - restored in place (the data dir it was taken in), its accepted requests are kept: every
    acknowledged change is there exactly once.

Usage: cart_savepoint_test.py CART_SERVICE_BIN EDDY_BIN"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from service_client import Checks, Service, cart_requests, check_carts, free_port  # noqa: E402

cart_bin, eddy_bin = sys.argv[1], sys.argv[2]
work = tempfile.mkdtemp(prefix="eddy-cart-savepoint.")
clients, users, per_client = 4, 3, 150
c = Checks()


def client(svc, t, acked, lock):
    for user, sku, key in cart_requests(t, users, per_client):
        st, _, _ = svc.call("POST", "/carts/%s/items" % user, {"sku": sku, "qty": 1},
                            {"Idempotency-Key": key})
        if st == 200:
            with lock:
                acked.append((user, sku))


def carts(svc):
    """Every cart of every client: user -> {sku: qty} and user -> version."""
    items, versions = {}, {}
    for t in range(clients):
        for u in range(users):
            user = "u%d_%d" % (t, u)
            st, cart, _ = svc.call("GET", "/carts/" + user)
            items[user] = {i["sku"]: i["qty"] for i in cart["items"]} if st == 200 else {}
            versions[user] = cart["version"] if st == 200 else 0
    return items, versions


def main():
    data = os.path.join(work, "data")
    inspect = free_port()
    svc = Service(cart_bin, data, "--job.partitions", "4", inspect_port=inspect)
    acked, lock = [], threading.Lock()
    threads = [threading.Thread(target=client, args=(svc, t, acked, lock)) for t in range(clients)]
    for th in threads:
        th.start()
    while True:
        with lock:
            if len(acked) >= clients * per_client // 3:
                before = list(acked)
                break
        time.sleep(0.01)
    answer = subprocess.run([eddy_bin, "console", "127.0.0.1:%d" % inspect, "-c", "savepoint",
                             "--json", "--timeout-ms", "30000"], capture_output=True, text=True)
    for th in threads:
        th.join()
    c.check(answer.returncode == 0, "the console's savepoint answered", answer.stdout + answer.stderr)
    sp = json.loads(answer.stdout)[0]["path"]
    c.check(os.path.exists(os.path.join(sp, "ingress.db")), "the savepoint holds the ingress log")
    c.check(len(acked) == clients * per_client, "every request was acknowledged", len(acked))
    c.check(svc.stop() == 0, "the service exits 0 on SIGTERM")

    # A fresh data dir: the savepoint's state and the requests of its log copy after the cut.
    fresh = Service(cart_bin, os.path.join(work, "fresh"), "--job.partitions", "4",
                    "--restore.from", sp)
    items, versions = carts(fresh)
    sent = {}
    for t in range(clients):
        for user, sku, _ in cart_requests(t, users, per_client):
            sent.setdefault(user, set()).add(sku)
    for user, got in items.items():
        c.check(set(got) <= sent.get(user, set()) and all(q == 1 for q in got.values())
                and versions[user] == len(got),
                "restored %s holds skus sent to it, each once, counted in its version" % user,
                (len(got), versions[user]))
    missing = [(u, s) for u, s in before if s not in items.get(u, {})]
    c.check(not missing, "what was acknowledged before the savepoint is in the restored carts",
            missing[:5])
    st, _, _ = fresh.call("POST", "/carts/u0_0/items", {"sku": "after-restore", "qty": 1},
                          {"Idempotency-Key": "after-restore"})
    st2, cart, _ = fresh.call("GET", "/carts/u0_0")
    c.check(st == 200 and st2 == 200 and "after-restore" in {i["sku"] for i in cart["items"]},
            "a request after the restore is applied", (st, st2))
    c.check(fresh.stop() == 0, "the restored service exits 0 on SIGTERM")

    # In place: the service's own log after the cut is kept, so nothing acknowledged is lost.
    again = Service(cart_bin, data, "--job.partitions", "4", "--restore.from", sp)
    for t in range(clients):
        check_carts(c, again, cart_requests(t, users, per_client), " (restored in place)")
    c.check(again.stop() == 0, "the service restored in place exits 0 on SIGTERM")
    return c.verdict("a savepoint of the cart service restores fresh and in place")


try:
    rc = main()
finally:
    shutil.rmtree(work, ignore_errors=True)
sys.exit(rc)
