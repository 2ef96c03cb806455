#!/usr/bin/env python3
"""Each binary given links our replacement for libtgowt's in-flight
consistency check (src/transport/webrtc/sctp_checks.cpp), not Debian's.

Debian's dcsctp::OutstandingData::IsConsistent() is ~740 bytes of code that
copies and walks the in-flight list; ours is `return true` (a few bytes).
The symbol is looked up with nm -S; a binary linking Debian's (a lost `-u`
link option, a renamed symbol) fails here.

usage: sctp_check_replaced.py BINARY...
"""
import subprocess
import sys

SYMBOL = "_ZNK6dcsctp15OutstandingData12IsConsistentEv"
LIMIT = 32  # bytes: ours is 6 on x86-64 (mov $1,%eax; ret)


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    failed = 0
    for binary in filter(None, sys.argv[1:]):  # an absent optional binary is an empty argument
        out = subprocess.run(["nm", "-S", "--defined-only", binary], capture_output=True, text=True, check=True).stdout
        sizes = [int(f[1], 16) for f in (line.split() for line in out.splitlines()) if len(f) == 4 and f[3] == SYMBOL]
        if len(sizes) != 1:
            print(f"FAIL {binary}: {SYMBOL} defined {len(sizes)} times")
            failed += 1
        elif sizes[0] > LIMIT:
            print(f"FAIL {binary}: {SYMBOL} is {sizes[0]} bytes: Debian's check, not ours")
            failed += 1
        else:
            print(f"ok   {binary}: {SYMBOL} is {sizes[0]} bytes")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
