"""Checks an assignment table printed by cluster_membership_test.sh's `table` (a line
"epoch coordinator", then "primary standby" per partition) against a Python condition over
`t` (the (primary, standby) pairs), `epoch` and `coordinator`; exits 0 when it holds.

Usage: table_check.py TABLE_FILE CONDITION
"""
import sys


def read_table(path):
    lines = open(path).read().split("\n")
    if not lines or not lines[0].strip():
        return None
    epoch, coordinator = lines[0].split()
    return int(epoch), coordinator, [tuple(l.split()) for l in lines[1:] if l]


table = read_table(sys.argv[1])
if table is None:
    sys.exit(1)
epoch, coordinator, t = table
sys.exit(0 if eval(sys.argv[2]) else 1)
