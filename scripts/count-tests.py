#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Totals meson test logs (meson-logs/testlog.json, one or more) as 'N passed, N failed'.

A Check suite counts its checks ("NN%: Checks: C, Failures: F, Errors: E"); a
program that prints its own "N passed, N failed" line (the Fortran tests) counts
those; any other test counts as one. A test whose process failed although its
counts show no failure (a sanitizer report at exit, a crash, a time-out) adds one
failure, so nothing failing can be hidden by its own summary."""
import json
import re
import sys

check_re = re.compile(r"Checks: (\d+), Failures: (\d+), Errors: (\d+)")
plain_re = re.compile(r"^(?:[^:\n]*: )?(\d+) passed, (\d+) failed", re.M)


def count(t):
    """(passed, failed) of one test's record."""
    out = t.get("stdout") or ""
    p = f = 0
    counted = False
    for m in check_re.finditer(out):
        c, fl, er = map(int, m.groups())
        p, f, counted = p + c - fl - er, f + fl + er, True
    if not counted:
        for m in plain_re.finditer(out):
            p, f, counted = p + int(m.group(1)), f + int(m.group(2)), True
    if not counted:
        p, f = (1, 0) if t["result"] == "OK" else (0, 1)
    elif t["result"] != "OK" and f == 0:
        f = 1
    return p, f


passed = failed = 0
for path in sys.argv[1:]:
    with open(path) as log:
        for line in log:
            p, f = count(json.loads(line))
            passed += p
            failed += f
print(f"{passed} passed, {failed} failed")
