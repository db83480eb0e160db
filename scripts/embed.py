#!/usr/bin/env python3
"""Embed a data file in C: embed.py INPUT OUTPUT SYMBOL.

Writes OUTPUT defining `const char SYMBOL[]` (the file's bytes followed by
a NUL, so that it may also be read as a string) and `const size_t
SYMBOL_len` (the byte count, without the NUL).  Used by meson to compile
data/providers.ini into libsmtpkit.
"""

import os
import sys


def main():
    if len(sys.argv) != 4:
        sys.stderr.write("usage: embed.py INPUT OUTPUT SYMBOL\n")
        return 64
    src, out, sym = sys.argv[1:]
    if not sym.isidentifier():
        sys.stderr.write(f"embed.py: {sym!r} is not a C identifier\n")
        return 64
    with open(src, "rb") as f:
        data = f.read()
    lines = [
        f"/* Generated from {os.path.basename(src)} by scripts/embed.py: do not edit. */",
        "#include <stddef.h>",
        "",
        f"extern const char {sym}[];",
        f"extern const size_t {sym}_len;",
        "",
        f"const char {sym}[] = {{",
    ]
    row = []
    for i, b in enumerate(data + b"\0"):
        row.append(f"0x{b:02x},")
        if len(row) == 12:
            lines.append("\t" + " ".join(row))
            row = []
    if row:
        lines.append("\t" + " ".join(row))
    lines += ["};", f"const size_t {sym}_len = {len(data)};", ""]
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines))
    os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
