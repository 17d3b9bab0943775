#!/usr/bin/env python3
"""The fraud detector's HTTP mode (--input http), over real HTTP against a real process: a
clean transaction accepted, a velocity burst flagged with the rule and its evidence, the
card's next transaction rejected as blocked, unblock (and 409 when not blocked), the card's
state from GET /cards/{card}, every validation error naming its field (and nothing logged),
an Idempotency-Key retry answered once (its alert written once), the output file's lines
matching the answers, /health and /metrics, and the state after SIGTERM and a restart on the
same --data-dir.

Usage: fraud_http_test.py FRAUD_DETECTOR_BIN"""

import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from service_client import Checks, Service  # noqa: E402

detector_bin = sys.argv[1]
work = tempfile.mkdtemp(prefix="eddy-fraud-http.")
data = os.path.join(work, "data")
out_path = os.path.join(work, "alerts.jsonl")
c = Checks()
T0 = 1700000000000
MIN = 60000

# The output lines the answers imply, in the order of the requests (one client, one request
# at a time: the lines of different cards come in that order too).
expected_lines = []


def start():
    return Service(detector_bin, data, "--input", "http", "--output", out_path,
                   "--job.partitions", "4")


def output_lines():
    if not os.path.exists(out_path):
        return []
    return [json.loads(line) for line in open(out_path) if line.strip()]


def without_command_ts(lines):
    """The lines with the ts of the unblock records left out (the time the service accepted
    the request, which the client does not know)."""
    return [{k: v for k, v in r.items() if k != "ts" or "tx" in r} for r in lines]


def tx(tx_id, card, amount=10.0, ts=T0, country="DE", merchant="m1"):
    return {"tx": tx_id, "card": card, "amount": amount, "merchant": merchant,
            "country": country, "ts": ts}


# The 6th transaction of bob's burst, sent with an Idempotency-Key, and retried.
BURST = tx("b6", "bob", 20.0, T0 + 6000)
BURST_KEY = {"Idempotency-Key": "pay-b6.try_1"}


def post_tx(svc, body, headers=None, record=True):
    """POSTs a transaction; records the output lines its answer implies."""
    st, ans, _ = svc.call("POST", "/transactions", body, headers=headers)
    if record and st == 200:
        for a in ans["alerts"]:
            expected_lines.append({"kind": "alert", "tx": body["tx"], "card": body["card"],
                                   "rule": a["rule"], "evidence": a["evidence"],
                                   "ts": body["ts"]})
        if ans["decision"] == "rejected":
            expected_lines.append({"kind": "rejected", "tx": body["tx"], "card": body["card"],
                                   "reason": ans["reason"], "ts": body["ts"]})
    return st, ans


def unblock(svc, card):
    st, ans, _ = svc.call("POST", "/cards/%s/unblock" % card)
    if st == 200:
        expected_lines.append({"kind": "unblocked", "card": card})
    elif st == 409:
        expected_lines.append({"kind": "rejected", "card": card,
                               "reason": "unblock: card %s is not blocked" % card})
    return st, ans


def api(svc):
    # A clean transaction.
    st, ans = post_tx(svc, tx("a1", "alice", 12.5))
    c.check(st == 200 and ans == {"tx": "a1", "card": "alice", "decision": "accepted",
                                  "alerts": []}, "a clean transaction is accepted", (st, ans))

    # A velocity burst: the 6th transaction within a minute is flagged (limit 5); it is sent
    # with an Idempotency-Key and retried.
    for i in range(1, 6):
        st, ans = post_tx(svc, tx("b%d" % i, "bob", 20.0, T0 + i * 1000))
        c.check(st == 200 and ans["decision"] == "accepted",
                "burst transaction %d of 5 is accepted" % i, (st, ans))
    st, first = post_tx(svc, BURST, headers=BURST_KEY)
    c.check(st == 200 and first["decision"] == "flagged" and first["tx"] == "b6" and
            first["card"] == "bob" and
            first["alerts"] == [{"rule": "velocity",
                                 "evidence": {"count": 6, "limit": 5, "window_ms": 60000}}]
            and "reason" not in first,
            "the 6th transaction within a minute is flagged by velocity with its evidence",
            (st, first))
    st, again = post_tx(svc, BURST, headers=BURST_KEY, record=False)
    c.check(st == 200 and again == first,
            "a retry with the Idempotency-Key gets the first answer", (st, again))

    # Blocked: the card's next transaction is rejected, and changes nothing.
    st, ans = post_tx(svc, tx("b7", "bob", 20.0, T0 + 10 * MIN))
    c.check(st == 200 and ans["decision"] == "rejected" and ans["alerts"] == [] and
            ans["reason"] == "card blocked since tx b6",
            "the flagged card's next transaction is rejected as blocked", (st, ans))

    st, ans, _ = svc.call("GET", "/cards/bob")
    c.check(st == 200 and ans["card"] == "bob" and ans["blocked_by"] == "b6" and
            [r["tx"] for r in ans["recent"]] == ["b1", "b2", "b3", "b4", "b5", "b6"] and
            ans["recent"][0] == {"tx": "b1", "amount": 20.0, "country": "DE",
                                 "ts": T0 + 1000} and
            ans["count"] == 6 and ans["mean"] == 20.0,
            "GET /cards: blocked_by, the recent transactions, count and mean", (st, ans))

    # Unblock, then accepted again; a second unblock is 409.
    st, ans = unblock(svc, "bob")
    c.check(st == 200 and ans == {"card": "bob", "unblocked": True}, "unblock", (st, ans))
    st, ans = post_tx(svc, tx("b8", "bob", 21.0, T0 + 20 * MIN))
    c.check(st == 200 and ans["decision"] == "accepted" and ans["alerts"] == [],
            "after the unblock the card's transaction is accepted", (st, ans))
    st, ans = unblock(svc, "bob")
    c.check(st == 409 and ans.get("field") == "card" and "not blocked" in ans.get("error", ""),
            "unblock of a card that is not blocked is 409", (st, ans))
    st, ans = unblock(svc, "nobody")
    c.check(st == 409, "unblock of an unknown card is 409", (st, ans))

    st, ans, _ = svc.call("GET", "/cards/bob")
    c.check(st == 200 and ans["blocked_by"] is None and ans["count"] == 7 and
            ans["recent"][-1]["tx"] == "b8" and abs(ans["mean"] - 141.0 / 7) < 1e-9,
            "GET /cards after the unblock", (st, ans))
    st, ans, _ = svc.call("GET", "/cards/nobody")
    c.check(st == 200 and ans == {"card": "nobody", "blocked_by": None, "recent": [],
                                  "count": 0, "mean": 0.0}, "GET of an unknown card", (st, ans))

    # Carol is flagged by the amount rule and stays blocked across the restart.
    for i, amount in enumerate([10.0, 12.0, 11.0]):
        post_tx(svc, tx("c%d" % (i + 1), "carol", amount, T0 + i * 3600000, "FR"))
    st, ans = post_tx(svc, tx("c4", "carol", 500.0, T0 + 3 * 3600000, "FR"))
    c.check(st == 200 and ans["decision"] == "flagged" and
            ans["alerts"] == [{"rule": "amount", "evidence": {"amount": 500.0, "factor": 5.0,
                                                              "mean": 11.0, "transactions": 3}}],
            "an amount 45x the card's mean is flagged by the amount rule", (st, ans))


def settled_output_lines():
    """The output's line count once it stops growing: the sink writes an answered request's
    output after the answer, so the last one of `api` may still be on its way."""
    n, deadline = len(output_lines()), time.time() + 5
    while time.time() < deadline:
        time.sleep(0.2)
        m = len(output_lines())
        if m == n:
            return n
        n = m
    return n


def validation(svc):
    lines_before = settled_output_lines()
    _, alice_before, _ = svc.call("GET", "/cards/alice")
    good = tx("v1", "alice", 5.0, T0 + MIN)
    bad = []
    for field in ("tx", "card", "amount", "merchant", "country", "ts"):
        body = dict(good)
        del body[field]
        bad.append((body, field, "missing " + field))
    for field, value, what in [
        ("amount", "12", "amount as a string"),
        ("amount", 0, "amount 0"),
        ("amount", -3.5, "a negative amount"),
        ("amount", None, "amount null"),
        ("card", "bad card!", "a card id with a space and '!'"),
        ("card", "c" * 65, "a card id of 65 characters"),
        ("card", 17, "a card id as a number"),
        ("tx", "t 1", "a tx id with a space"),
        ("tx", "t" * 65, "a tx id of 65 characters"),
        ("tx", "", "an empty tx id"),
        ("tx", ["t1"], "a tx id as an array"),
        ("merchant", 5, "merchant as a number"),
        ("country", "", "an empty country"),
        ("ts", "1700000000000", "ts as a string"),
        ("ts", -1, "a negative ts"),
        ("ts", 1.5, "ts not an integer"),
    ]:
        body = dict(good)
        body[field] = value
        bad.append((body, field, what))
    for body, field, what in bad:
        st, ans, _ = svc.call("POST", "/transactions", body)
        c.check(st == 400 and ans.get("field") == field and ans.get("error"),
                "%s: 400 naming %s" % (what, field), (st, ans))
    for raw, what in [('{"tx": "v1", "card": ', "malformed JSON"), ("[1, 2]", "a JSON array"),
                      ("", "an empty body")]:
        st, ans, _ = svc.call("POST", "/transactions", raw=raw)
        c.check(st == 400 and ans.get("field") == "body" and ans.get("error"),
                "%s: 400 naming the body" % what, (st, ans))
    for method, path in [("GET", "/cards/bad%20card"), ("POST", "/cards/" + "c" * 65 + "/unblock")]:
        st, ans, _ = svc.call(method, path)
        c.check(st == 400 and ans.get("field") == "card", "%s %s: 400 naming the card"
                % (method, path[:30]), (st, ans))
    st, ans, _ = svc.call("POST", "/transactions", good, headers={"Idempotency-Key": "a b"})
    c.check(st == 400 and ans.get("field") == "Idempotency-Key",
            "a malformed Idempotency-Key: 400 naming it", (st, ans))
    st, ans, _ = svc.call("GET", "/nowhere")
    c.check(st == 404, "an unknown route is 404", (st, ans))
    _, alice_after, _ = svc.call("GET", "/cards/alice")
    c.check(alice_after == alice_before and len(output_lines()) == lines_before,
            "no refused request reached the card or the output", (alice_before, alice_after))


def main():
    begin = time.time()
    svc = start()
    try:
        api(svc)
        validation(svc)
        st, ans, _ = svc.call("GET", "/health")
        c.check(st == 200 and ans == {"ok": True}, "/health", (st, ans))
        st, metrics, _ = svc.call("GET", "/metrics")
        c.check(st == 200 and 'eddy_http_requests_total{route="transaction",status="200"}'
                in metrics and 'route="transaction",status="400"' in metrics and
                'job="fraud-detector",operator="check"' in metrics,
                "/metrics counts the requests by route and status, and the job", metrics[:500])
        c.check(svc.stop() == 0, "the detector exits 0 on SIGTERM")
    except Exception:
        svc.kill()
        raise

    got = output_lines()
    c.check(without_command_ts(got) == expected_lines,
            "the output file holds the lines the answers imply, in order",
            {"got": got, "expected": expected_lines})
    c.check(sum(1 for r in got if r.get("tx") == "b6") == 1,
            "the alert of the retried transaction is in the output once", got)
    unblocked = [r for r in got if r["kind"] == "unblocked"]
    c.check(len(unblocked) == 1 and isinstance(unblocked[0].get("ts"), int),
            "the unblock is in the output with the time it was accepted", unblocked)

    # The state survives SIGTERM and a start on the same --data-dir; nothing is written again.
    svc = start()
    try:
        st, ans, _ = svc.call("GET", "/cards/bob")
        c.check(st == 200 and ans["blocked_by"] is None and ans["count"] == 7 and
                [r["tx"] for r in ans["recent"]][-2:] == ["b6", "b8"],
                "bob's state after a restart", (st, ans))
        st, ans, _ = svc.call("GET", "/cards/carol")
        c.check(st == 200 and ans["blocked_by"] == "c4" and ans["count"] == 4,
                "carol is still blocked after a restart", (st, ans))
        st, ans = post_tx(svc, tx("c5", "carol", 10.0, T0 + 4 * 3600000, "FR"))
        c.check(st == 200 and ans["decision"] == "rejected" and
                ans["reason"] == "card blocked since tx c4",
                "carol's next transaction after the restart is rejected", (st, ans))
        st, again = post_tx(svc, BURST, headers=BURST_KEY, record=False)
        c.check(st == 200 and again["decision"] == "flagged" and
                again["alerts"][0]["rule"] == "velocity",
                "the Idempotency-Key retry after the restart still gets the first answer",
                (st, again))
        c.check(svc.stop() == 0, "the restarted detector exits 0 on SIGTERM")
    except Exception:
        svc.kill()
        raise
    got = output_lines()
    c.check(without_command_ts(got) == expected_lines,
            "after the restart the output has just the new line",
            {"got": got[-3:], "expected": expected_lines[-3:]})
    print("%.1f s" % (time.time() - begin))
    return c.verdict("fraud detector over HTTP: decisions, blocking, validation, idempotency, "
                     "output, restart")


try:
    rc = main()
finally:
    if os.environ.get("KEEP_WORK"):
        print("work dir kept:", work)
    else:
        shutil.rmtree(work, ignore_errors=True)
sys.exit(rc)
