#!/usr/bin/env python3
"""Prints 'N passed, N failed, N skipped' from meson testlog.json files (missing ones are skipped)."""
import json
import sys

counts = {"OK": 0, "FAIL": 0, "SKIP": 0, "TIMEOUT": 0, "EXPECTEDFAIL": 0, "UNEXPECTEDPASS": 0, "ERROR": 0}
for path in sys.argv[1:]:
    try:
        log = open(path)
    except FileNotFoundError:
        continue
    with log:
        for line in log:
            result = json.loads(line).get("result", "ERROR")
            counts[result] = counts.get(result, 0) + 1
passed = counts["OK"] + counts["EXPECTEDFAIL"]
failed = counts["FAIL"] + counts["TIMEOUT"] + counts["UNEXPECTEDPASS"] + counts["ERROR"]
print(f"{passed} passed, {failed} failed, {counts['SKIP']} skipped")
