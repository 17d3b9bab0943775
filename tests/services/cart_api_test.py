#!/usr/bin/env python3
"""The cart service's HTTP API, over real HTTP against a real process: every endpoint,
every error case (400 naming the field, 404, 409, 413, 503 with Retry-After), idempotent
retries, read-your-writes, the orders output, abandonment by a processing-time timer,
/metrics, and the state after a restart.

Usage: cart_api_test.py CART_SERVICE_BIN EDDY_BIN"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from service_client import Checks, Service, free_port  # noqa: E402

cart_bin, eddy_bin = sys.argv[1], sys.argv[2]
work = tempfile.mkdtemp(prefix="eddy-cart.")
c = Checks()


def output_lines(data):
    path = os.path.join(data, "cart-service.jsonl")
    if not os.path.exists(path):
        return []
    return [json.loads(line) for line in open(path) if line.strip()]


def api(svc):
    # An unknown user has an empty cart at version 0.
    st, body, _ = svc.call("GET", "/carts/alice")
    c.check(st == 200 and body == {"user": "alice", "items": [], "version": 0},
            "GET of an unknown user is an empty cart", (st, body))

    st, body, _ = svc.call("POST", "/carts/alice/items", {"sku": "A1", "qty": 2})
    c.check(st == 200 and body["items"] == [{"sku": "A1", "qty": 2}] and body["version"] == 1,
            "POST items adds", (st, body))
    st, body, _ = svc.call("POST", "/carts/alice/items", {"sku": "A1", "qty": 3})
    c.check(st == 200 and body["items"] == [{"sku": "A1", "qty": 5}] and body["version"] == 2,
            "a second POST of the sku adds to its qty", (st, body))
    st, body, _ = svc.call("PUT", "/carts/alice/items/B2", {"qty": 7})
    c.check(st == 200 and {"sku": "B2", "qty": 7} in body["items"] and body["version"] == 3,
            "PUT sets a qty", (st, body))
    st, body, _ = svc.call("PUT", "/carts/alice/items/B2", {"qty": 0})
    c.check(st == 200 and body["items"] == [{"sku": "A1", "qty": 5}] and body["version"] == 4,
            "PUT qty 0 removes the sku", (st, body))
    st, body, _ = svc.call("DELETE", "/carts/alice/items/A1")
    c.check(st == 200 and body["items"] == [] and body["version"] == 5, "DELETE removes",
            (st, body))
    st, body, _ = svc.call("DELETE", "/carts/alice/items/A1")
    c.check(st == 404 and body.get("field") == "sku", "DELETE of a missing sku is 404 naming sku",
            (st, body))
    st, body, _ = svc.call("GET", "/carts/alice")
    c.check(body["version"] == 5, "a refused change does not bump the version", body)

    # Checkout.
    st, body, _ = svc.call("POST", "/carts/alice/checkout")
    c.check(st == 409 and body.get("field") == "items", "checkout of an empty cart is 409",
            (st, body))
    svc.call("POST", "/carts/alice/items", {"sku": "C3", "qty": 1})
    st, order, _ = svc.call("POST", "/carts/alice/checkout")
    c.check(st == 200 and order["user"] == "alice" and order["items"] == [{"sku": "C3", "qty": 1}]
            and order["order_id"], "checkout answers the order", (st, order))
    st, body, _ = svc.call("GET", "/carts/alice")
    c.check(body["items"] == [] and body["version"] == 7, "checkout empties the cart", body)

    # Validation: 400 with the field at fault; nothing applied.
    bad = [
        ("POST", "/carts/alice/items", {"sku": "A1"}, "qty", "missing qty"),
        ("POST", "/carts/alice/items", {"sku": "A1", "qty": "2"}, "qty", "qty as a string"),
        ("POST", "/carts/alice/items", {"sku": "A1", "qty": 0}, "qty", "qty 0 in a POST"),
        ("POST", "/carts/alice/items", {"sku": "A1", "qty": 1001}, "qty", "qty over 1000"),
        ("POST", "/carts/alice/items", {"sku": "A1", "qty": 1.5}, "qty", "qty not an integer"),
        ("POST", "/carts/alice/items", {"qty": 1}, "sku", "missing sku"),
        ("POST", "/carts/alice/items", {"sku": "a b", "qty": 1}, "sku", "sku with a space"),
        ("POST", "/carts/alice/items", {"sku": 17, "qty": 1}, "sku", "sku as a number"),
        ("POST", "/carts/" + "u" * 65 + "/items", {"sku": "A1", "qty": 1}, "user", "user of 65 chars"),
        ("PUT", "/carts/alice/items/A1", {"qty": -1}, "qty", "negative qty in a PUT"),
        ("PUT", "/carts/alice/items/A%201", {"qty": 1}, "sku", "sku in the path with a space"),
        ("POST", "/carts/alice/items", [1, 2], "body", "a body that is not an object"),
    ]
    for method, path, payload, field, what in bad:
        st, body, _ = svc.call(method, path, payload)
        c.check(st == 400 and body.get("field") == field and body.get("error"),
                "%s: 400 naming %s" % (what, field), (st, body))
    st, body, _ = svc.call("POST", "/carts/alice/items", raw='{"sku": "A1", "qty": ')
    c.check(st == 400 and body.get("field") == "body", "malformed JSON: 400 naming the body",
            (st, body))
    st, body, _ = svc.call("POST", "/carts/alice/items", {"sku": "A1", "qty": 1},
                           headers={"Idempotency-Key": "no spaces allowed"})
    c.check(st == 400 and body.get("field") == "Idempotency-Key",
            "a malformed Idempotency-Key: 400 naming it", (st, body))
    st, body, _ = svc.call("GET", "/carts/alice")
    c.check(body["version"] == 7 and body["items"] == [], "no rejected request was applied", body)
    st, body, _ = svc.call("GET", "/nowhere")
    c.check(st == 404 and "no route" in body.get("error", ""), "an unknown route is 404", (st, body))
    st, body, _ = svc.call("PATCH", "/carts/alice")
    c.check(st in (404, 405), "an unsupported method is refused", (st, body))
    st, body, _ = svc.call("POST", "/carts/alice/items", raw='{"sku":"A1","qty":1,"pad":"%s"}'
                           % ("x" * 70000))
    c.check(st == 413 and body.get("field") == "body", "a body over the limit is 413", (st, body))

    # Idempotency: a retry gets the first answer and changes nothing.
    key = {"Idempotency-Key": "order-77.retry_1"}
    st1, first, _ = svc.call("POST", "/carts/bob/items", {"sku": "D4", "qty": 1}, headers=key)
    st2, again, _ = svc.call("POST", "/carts/bob/items", {"sku": "D4", "qty": 1}, headers=key)
    c.check(st1 == 200 and st2 == 200 and first == again and first["version"] == 1,
            "a retried POST with its Idempotency-Key answers the first answer", (first, again))
    st, body, _ = svc.call("POST", "/carts/bob/items", {"sku": "D4", "qty": 1},
                           headers={"Idempotency-Key": "another"})
    c.check(body["items"] == [{"sku": "D4", "qty": 2}] and body["version"] == 2,
            "another key applies again", body)
    st1, o1, _ = svc.call("POST", "/carts/bob/checkout", headers={"Idempotency-Key": "co1"})
    st2, o2, _ = svc.call("POST", "/carts/bob/checkout", headers={"Idempotency-Key": "co1"})
    c.check(st1 == 200 and o1 == o2, "a retried checkout answers the same order", (o1, o2))


def overload(svc, inspect_port):
    # One request may wait for its answer (--http.max-pending 1): with the partitions
    # paused from the console, a second one is refused with 503 and Retry-After.
    subprocess.run([eddy_bin, "console", "127.0.0.1:%d" % inspect_port, "-c", "pause carts"],
                   check=True, stdout=subprocess.DEVNULL)
    result = {}

    def first():
        result["first"] = svc.call("POST", "/carts/carol/items", {"sku": "E5", "qty": 1})

    t = threading.Thread(target=first)
    t.start()
    time.sleep(0.5)
    st, body, headers = svc.call("POST", "/carts/dave/items", {"sku": "E5", "qty": 1})
    c.check(st == 503 and headers.get("Retry-After") == "1" and body.get("error"),
            "a request over --http.max-pending is 503 with Retry-After", (st, body, headers))
    subprocess.run([eddy_bin, "console", "127.0.0.1:%d" % inspect_port, "-c", "resume carts"],
                   check=True, stdout=subprocess.DEVNULL)
    t.join(15)
    st, body, _ = result.get("first", (0, None, None))
    c.check(st == 200 and body["items"] == [{"sku": "E5", "qty": 1}],
            "the waiting request is answered after resume", (st, body))
    st, body, _ = svc.call("GET", "/carts/dave")
    c.check(body["version"] == 0, "the refused request was not applied", body)


def main():
    data = os.path.join(work, "data")
    inspect_port = free_port()
    svc = Service(cart_bin, data, "--http.max-pending", "1", "--cart.abandon-after", "1500ms",
                  inspect_port=inspect_port)
    try:
        api(svc)
        overload(svc, inspect_port)
        # Abandonment: erin's cart (and carol's, from the overload case) stay untouched past
        # --cart.abandon-after; frank checks out in time.
        svc.call("POST", "/carts/erin/items", {"sku": "F6", "qty": 2})
        svc.call("POST", "/carts/frank/items", {"sku": "G7", "qty": 1})
        svc.call("POST", "/carts/frank/checkout")
        time.sleep(3)
        st, metrics, _ = svc.call("GET", "/metrics")
        c.check(st == 200 and 'eddy_http_requests_total{route="add_item",status="200"}' in metrics
                and 'status="400"' in metrics, "/metrics counts requests by route and status",
                metrics)
        lines = dict(l.rsplit(" ", 1) for l in metrics.splitlines() if l and l[0] != "#")
        carts = 'job="cart-service",operator="carts"'
        c.check(int(lines.get("eddy_events_in_total{%s}" % carts, 0)) >= 20 and
                int(lines.get("eddy_commit_latency_seconds_count{%s}" % carts, 0)) > 0 and
                'eddy_commit_latency_seconds_bucket{%s,le="+Inf"}' % carts in lines and
                "eddy_mailbox_batches{%s}" % carts in lines and
                int(lines.get("eddy_http_overloaded_total", 0)) == 1,
                "/metrics has the operators' events, mailbox, commit latency and the 503s",
                {k: v for k, v in lines.items() if "carts" in k or "overloaded" in k})
        c.check(svc.stop() == 0, "the service exits 0 on SIGTERM")
    except Exception:
        svc.kill()
        raise
    out = output_lines(data)
    orders = [o for o in out if o["kind"] == "order"]
    c.check([o["user"] for o in orders] == ["alice", "bob", "frank"],
            "every checkout is in the orders output once", orders)
    abandoned = [o for o in out if o["kind"] == "cart_abandoned"]
    c.check(sorted((a["user"], a["items"][0]["sku"]) for a in abandoned) ==
            [("carol", "E5"), ("erin", "F6")],
            "the carts left untouched are reported abandoned once, not checked-out ones", abandoned)

    # The state survives a restart.
    svc = Service(cart_bin, data)
    try:
        st, body, _ = svc.call("GET", "/carts/bob")
        c.check(body["version"] == 3 and body["items"] == [], "bob's cart after a restart", body)
        st, body, _ = svc.call("GET", "/carts/erin")
        c.check(body["items"] == [{"sku": "F6", "qty": 2}], "erin's cart after a restart", body)
        svc.stop()
    except Exception:
        svc.kill()
        raise
    return c.verdict("cart service API: every endpoint and error case over real HTTP")


try:
    rc = main()
finally:
    if os.environ.get("KEEP_WORK"):
        print("work dir kept:", work)
    else:
        shutil.rmtree(work, ignore_errors=True)
sys.exit(rc)
