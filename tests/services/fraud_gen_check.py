#!/usr/bin/env python3
"""Scores fraud-detector's output against fraud-gen's truth file.

Usage: fraud_gen_check.py TRANSACTIONS TRUTH OUTPUT [MAX_FALSE_POSITIVE_RATE]

A planted case is found when an alert of its rule names its card and its transaction (for a
velocity burst: any transaction of the burst). Every other alert is a false positive; there
may be at most MAX_FALSE_POSITIVE_RATE (default 0.01) of the clean transactions. Prints the
recall and the false positives; exits 1 when a case is missed or there are too many false
positives, 2 on unreadable input.
"""

import json
import sys
from collections import Counter


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main(argv):
    if len(argv) not in (4, 5):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    transactions = read_jsonl(argv[1])
    truth = read_jsonl(argv[2])
    output = read_jsonl(argv[3])
    max_rate = float(argv[4]) if len(argv) == 5 else 0.01

    unknown = [r for r in output if r.get("kind") not in ("alert", "rejected", "unblocked")]
    if unknown:
        print(f"output records of unknown kind: {unknown[:3]}")
        return 1

    # (card, tx) -> rule of the planted case the transaction belongs to.
    planted = {}
    for case in truth:
        for tx in case.get("burst", [case["tx"]]):
            planted[(case["card"], tx)] = case["rule"]
    alerts = [r for r in output if r["kind"] == "alert"]
    hits = {(a["card"], a["tx"], a["rule"]) for a in alerts}

    missed = []
    found_by_rule = Counter()
    for case in truth:
        txs = case.get("burst", [case["tx"]])
        if any((case["card"], tx, case["rule"]) in hits for tx in txs):
            found_by_rule[case["rule"]] += 1
        else:
            missed.append(case)
    false_positives = [a for a in alerts if planted.get((a["card"], a["tx"])) != a["rule"]]

    clean = len(transactions) - len(planted)
    limit = int(max_rate * clean)
    cases_by_rule = Counter(case["rule"] for case in truth)
    per_rule = ", ".join(
        f"{rule} {found_by_rule[rule]}/{cases_by_rule[rule]}" for rule in sorted(cases_by_rule))
    print(f"recall: {len(truth) - len(missed)}/{len(truth)} planted cases flagged ({per_rule})")
    print(f"false positives: {len(false_positives)} alerts on clean transactions "
          f"(limit {limit}: {max_rate:.0%} of {clean} clean)")
    for case in missed[:5]:
        seen = [r for r in output if r.get("card") == case["card"]]
        print(f"  missed {case}; the output on its card: {seen[:3]}")
    for alert in false_positives[:5]:
        print(f"  false positive: {alert}")
    return 1 if missed or len(false_positives) > limit else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
