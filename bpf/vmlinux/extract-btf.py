#!/usr/bin/env python3
"""Writes the kernel's own BTF (what /sys/kernel/btf/vmlinux shows) out of a boot image.

  extract-btf.py VMLINUZ OUT.btf

For arm64 Debian kernels (and any other whose image is the raw kernel, plain or
gzipped), where no ELF section table is left to read .BTF from: the .BTF blob
is found by its header (magic 0xeB9F, version 1, 24-byte header, the type
section first and the string section right after it). Then
`bpftool btf dump file OUT.btf format c` makes vmlinux.h, as from the running
kernel. Standard library only; see README.md.
"""
import gzip
import struct
import sys

HEADER = struct.Struct("<HBBIIIII")  # magic, version, flags, hdr_len, type_off, type_len, str_off, str_len
MAGIC = 0xEB9F


def find_btf(image: bytes) -> bytes:
    found = []
    at = image.find(b"\x9f\xeb\x01")
    while at >= 0:
        if at + HEADER.size <= len(image):
            magic, version, _flags, hdr_len, type_off, type_len, str_off, str_len = HEADER.unpack_from(image, at)
            end = at + hdr_len + str_off + str_len
            # vmlinux BTF: types at 0, strings after them, both large, and the
            # string section ends with a NUL
            if (magic == MAGIC and version == 1 and hdr_len == HEADER.size and type_off == 0
                    and str_off == type_len and type_len > 1 << 16 and str_len > 1 << 16
                    and end <= len(image) and image[end - 1] == 0):
                found.append(image[at:end])
        at = image.find(b"\x9f\xeb\x01", at + 1)
    if len(found) != 1:
        sys.exit(f"extract-btf: expected one kernel BTF blob in the image, found {len(found)}; "
                 "is it a kernel built with CONFIG_DEBUG_INFO_BTF=y?")
    return found[0]


def main() -> int:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    image = open(sys.argv[1], "rb").read()
    if image[:2] == b"\x1f\x8b":
        image = gzip.decompress(image)
    btf = find_btf(image)
    with open(sys.argv[2], "wb") as out:
        out.write(btf)
    print(f"extract-btf: {len(btf)} bytes of BTF from {sys.argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
