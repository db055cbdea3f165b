#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
"""The ctypes structures of the Python module match the C layout (tests/abi/layout.txt).

No privilege needed. usage: test_layout.py [path/to/layout.txt]
"""

import ctypes
import os
import re
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples", "python"))
from connscope import _ffi  # noqa: E402

LAYOUT = os.path.join(HERE, "..", "abi", "layout.txt")


def parse(path):
    structs, constants, current = {}, {}, None
    with open(path) as f:
        for line in f:
            m = re.match(r"(\w+)__last_field (\w+)$", line)
            if m:
                structs[m.group(1)]["last_field"] = m.group(2)
                continue
            m = re.match(r"struct (\w+): size (\d+) align (\d+)", line)
            if m:
                current = structs[m.group(1)] = {"size": int(m.group(2)), "fields": {}}
                continue
            m = re.match(r"\s+(\w+)\s+offset\s+(\d+) size\s+(\d+)", line)
            if m:
                current["fields"][m.group(1)] = (int(m.group(2)), int(m.group(3)))
                continue
            m = re.match(r"#define (\w+) (-?\d+)", line)
            if m:
                constants[m.group(1)] = int(m.group(2))
    return structs, constants


@unittest.skipUnless(ctypes.sizeof(ctypes.c_void_p) == 8, "layout.txt describes LP64 only")
class LayoutTest(unittest.TestCase):
    structs, constants = parse(LAYOUT)

    def test_every_struct_is_declared(self):
        self.assertEqual(sorted(self.structs), sorted(_ffi.STRUCTS))

    def test_sizes_and_offsets(self):
        for name, cls in _ffi.STRUCTS.items():
            with self.subTest(struct=name):
                want = self.structs[name]
                self.assertEqual(ctypes.sizeof(cls), want["size"])
                got = {f: (getattr(cls, f).offset, getattr(cls, f).size) for f, _ in cls._fields_}
                self.assertEqual(got, want["fields"])

    def test_last_fields(self):
        # <struct>__last_field names the end of each growable struct; the
        # ctypes declaration must end there too (nothing missing at the end).
        growable = {name: s["last_field"] for name, s in self.structs.items() if "last_field" in s}
        self.assertIn("connscope_opts", growable)
        for name, last in growable.items():
            with self.subTest(struct=name):
                self.assertEqual(_ffi.STRUCTS[name]._fields_[-1][0], last)

    def test_constants(self):
        for name, value in self.constants.items():
            with self.subTest(constant=name):
                self.assertEqual(getattr(_ffi, name[len("CONNSCOPE_"):]), value)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].endswith(".txt"):
        LAYOUT = sys.argv.pop(1)
        LayoutTest.structs, LayoutTest.constants = parse(LAYOUT)
    unittest.main()
