#!/usr/bin/env python3
"""Writes wordcount input: LINES JSONL lines {"text": ...} of PER_LINE words drawn from
VOCABULARY words "w0".."wN", reproducible for SEED.

Usage: words.py FILE SEED VOCABULARY LINES PER_LINE"""
import random
import sys

path, seed, vocabulary, lines, per_line = sys.argv[1], *map(int, sys.argv[2:6])
random.seed(seed)
words = ["w%d" % i for i in range(vocabulary)]
with open(path, "w") as f:
    for _ in range(lines):
        f.write('{"text": "%s"}\n' % " ".join(random.choice(words) for _ in range(per_line)))
