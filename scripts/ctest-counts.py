#!/usr/bin/env python3
"""Counts one ctest run from its JUnit report (`ctest --output-junit FILE`).

  ctest-counts.py FILE

Prints one line per test that failed or was skipped, then a last line
"PASSED FAILED SKIPPED" (three numbers) for scripts/test.sh. Exits 2 when the
report cannot be read.

  passed   status "run" and no <failure>
  skipped  status "notrun" because of SKIP_RETURN_CODE (exit 77 here) or
           SKIP_REGULAR_EXPRESSION, or status "disabled"
  failed   everything else: status "fail" (a non-zero exit, a crash, a
           time-out) and "notrun" for any other reason (ctest writes
           <skipped message="Unable to find executable"/> for a test whose
           program is missing, and counts that one as failed too)
"""

import sys
import xml.etree.ElementTree as ET


def reason(case):
    """The test's own "... SKIPPED: why" / "SKIP: why" line, if it printed one."""
    out = case.findtext("system-out") or ""
    lines = [ln.strip() for ln in out.splitlines() if "SKIP" in ln]
    return lines[-1] if lines else ""


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        root = ET.parse(sys.argv[1]).getroot()
    except (OSError, ET.ParseError) as e:
        print(f"ctest-counts: cannot read {sys.argv[1]}: {e}", file=sys.stderr)
        return 2
    suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
    passed = failed = skipped = 0
    for suite in suites:
        for case in suite.iter("testcase"):
            name = case.get("name", "?")
            status = case.get("status", "")
            skip = case.find("skipped")
            skip_msg = skip.get("message", "") if skip is not None else ""
            if status == "run" and case.find("failure") is None and case.find("error") is None:
                passed += 1
            elif (status == "notrun" and skip_msg.startswith("SKIP_")) or status == "disabled":
                skipped += 1
                why = reason(case) or skip_msg or status
                print(f"skipped: {name}: {why}")
            else:
                failed += 1
                print(f"failed: {name} ({status}{': ' + skip_msg if skip_msg else ''})")
    print(passed, failed, skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
