#!/usr/bin/env python3
"""Acknowledged changes survive kill -9, exactly once: concurrent clients add items to
carts (a unique sku per request, each with its Idempotency-Key) while the cart service is
killed with -9 (every 0.4-0.9 s, or CART_KILL_EVERY_S=lo,hi) and restarted while they run; a client retries a request that got no
answer (connection refused or cut, 503, 202) with the same key until it is answered. At
the end every cart must hold every sku sent to it exactly once (qty 1) and its version
must count them: no acknowledged change lost, none applied twice.

Usage: cart_crash_test.py CART_SERVICE_BIN [SERVICE_ARGS...]
(for example --state.commit-interval-ms 1000: requests are answered after the commit that
holds them, whenever it comes)"""

import os
import random
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from service_client import (Checks, Counter, Service, cart_requests, check_carts,  # noqa: E402
                            free_port)

cart_bin = sys.argv[1]
service_args = sys.argv[2:]
work = tempfile.mkdtemp(prefix="eddy-cart-crash.")
# With a commit interval every answer waits for a commit: fewer requests per client then.
clients, users_per_client = 6, 4
requests_per_client = int(os.environ.get("CART_REQUESTS_PER_CLIENT", "300"))
# Seconds between kills, drawn uniformly; with a commit interval they must exceed it, or no
# request is ever answered.
kill_lo, kill_hi = (float(x) for x in os.environ.get("CART_KILL_EVERY_S", "0.4,0.9").split(","))
# Seconds after which a client gives up on a request that was never answered.
client_deadline_s = float(os.environ.get("CART_CLIENT_DEADLINE_S", "90"))
c = Checks()


def client(t, current, stats, deadline):
    for user, sku, key in cart_requests(t, users_per_client, requests_per_client):
        answered = False
        while not answered and time.time() < deadline:
            try:
                st, _, _ = current[0].call("POST", "/carts/%s/items" % user,
                                           {"sku": sku, "qty": 1}, {"Idempotency-Key": key},
                                           timeout=5)
            except Exception:
                st = "error"
            stats.add(st)
            answered = st == 200
            if not answered:
                time.sleep(0.05)
        if not answered:
            stats.add("gave up")
            return
        # A steady load rather than a burst, so that the kills find requests under way.
        time.sleep(0.005)


def main():
    data = os.path.join(work, "data")
    port = free_port()
    current = [Service(cart_bin, data, *service_args, port=port)]
    stats = Counter()
    deadline = time.time() + client_deadline_s
    threads = [threading.Thread(target=client, args=(t, current, stats, deadline))
               for t in range(clients)]
    for th in threads:
        th.start()
    kills = 0
    rnd = random.Random(99)
    while any(th.is_alive() for th in threads):
        time.sleep(rnd.uniform(kill_lo, kill_hi))
        if not any(th.is_alive() for th in threads):
            break
        current[0].kill()
        kills += 1
        current[0] = Service(cart_bin, data, *service_args, port=port)
    for th in threads:
        th.join()
    print("answers:", dict(sorted(stats.n.items(), key=str)), "after", kills, "kills")
    c.check(kills >= 3, "the service was killed while the clients ran (3 times at least)", kills)
    c.check("gave up" not in stats.n, "every request was answered in the end", stats.n)
    c.check(stats.n.get("error", 0) > 0, "the kills cut requests off (else the test shows nothing)",
            stats.n)
    svc = current[0]
    for t in range(clients):
        check_carts(c, svc, cart_requests(t, users_per_client, requests_per_client))
    c.check(svc.stop() == 0, "the service exits 0 on SIGTERM")
    return c.verdict("every acknowledged change is there exactly once after %d kill -9" % kills)


try:
    rc = main()
finally:
    shutil.rmtree(work, ignore_errors=True)
sys.exit(rc)
