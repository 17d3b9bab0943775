#!/usr/bin/env python3
"""The cart service on a 3-node cluster on loopback: any node takes any request (the
leader's ingress serves it; the others forward it), and the leader keeps a copy of its
ingress log on the member that would lead next. Concurrent clients add items (a unique
sku per request, each with its Idempotency-Key) through random nodes; the leader n1 is
killed with -9 while they run; n2 takes the service over, and a client whose request got
no answer retries it through another node with the same key. At the end every cart, read
through each live node, holds every sku sent to it exactly once and its version counts
them.

Usage: cart_cluster_test.py CART_SERVICE_BIN"""

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
work = tempfile.mkdtemp(prefix="eddy-cart-cluster.")
clients, users_per_client, requests_per_client = 4, 3, 150
c = Checks()


def main():
    node_ports = [free_port() for _ in range(3)]
    seeds = ",".join("127.0.0.1:%d" % p for p in node_ports)
    output = os.path.join(work, "orders.jsonl")
    nodes = []
    for n in range(3):
        nodes.append(Service(cart_bin, os.path.join(work, "d%d" % (n + 1)),
                             "--node.id", "n%d" % (n + 1), "--node.port", str(node_ports[n]),
                             "--node.seeds", seeds, "--node.heartbeat-ms", "200",
                             "--node.timeout-ms", "1000", "--job.partitions", "4",
                             "--output", output))
    alive = [True, True, True]
    deadline = time.time() + 60
    # The cluster is ready once a request through n3 is answered (forwarded to the leader).
    while time.time() < deadline:
        try:
            st, _, _ = nodes[2].call("GET", "/carts/nobody", timeout=5)
        except Exception:
            st = None
        if st == 200:
            break
        time.sleep(0.2)
    c.check(st == 200, "a request through a member that does not lead is answered", st)
    leader_log = open(nodes[0].log).read()
    c.check("runs here, on the coordinator n1" in leader_log, "n1 leads the service")

    stats = Counter()

    def client(t):
        pick = random.Random(1000 + t)  # the node for each try
        for user, sku, key in cart_requests(t, users_per_client, requests_per_client):
            answered = False
            while not answered and time.time() < deadline:
                n = pick.randrange(3)
                if not alive[n]:
                    continue
                try:
                    st, _, _ = nodes[n].call("POST", "/carts/%s/items" % user,
                                             {"sku": sku, "qty": 1}, {"Idempotency-Key": key},
                                             timeout=10)
                except Exception:
                    st = "error"
                stats.add((n + 1, st))
                answered = st == 200
                if not answered:
                    time.sleep(0.1)
            if not answered:
                stats.add("gave up")
                return
            time.sleep(0.01)

    threads = [threading.Thread(target=client, args=(t,)) for t in range(clients)]
    for th in threads:
        th.start()
    time.sleep(1.5)
    alive[0] = False
    nodes[0].kill()
    for th in threads:
        th.join()
    print("answers by (node, status):", dict(sorted(stats.n.items(), key=str)))
    c.check("gave up" not in stats.n, "every request was answered in the end", stats.n)
    for n in (2, 3):
        c.check(stats.n.get((n, 200), 0) > 0, "n%d answered requests" % n, stats.n)
    c.check(stats.n.get((1, 200), 0) > 0, "n1 answered requests before it was killed", stats.n)
    log2 = open(nodes[1].log).read()
    c.check("taken over by n2" in log2, "n2 took the service over")

    for t in range(clients):
        for n in (1, 2):
            check_carts(c, nodes[n], cart_requests(t, users_per_client, requests_per_client),
                        " through n%d" % (n + 1))
    for n in (1, 2):
        nodes[n].stop()
    return c.verdict("any node takes any request; the leader killed, nothing lost, nothing twice")


try:
    rc = main()
    if rc and os.environ.get("KEEP_WORK"):
        os.system("pkill -9 -f %s > /dev/null 2>&1" % work)
        print("work dir kept:", work)
        sys.exit(rc)
finally:
    os.system("pkill -9 -f %s > /dev/null 2>&1" % work)
    shutil.rmtree(work, ignore_errors=True)
sys.exit(rc)
