#!/usr/bin/env python3
"""Count test results across layers and print the closing summary line.

Inputs: meson testlog.json files (unit and KVM layers; each test prints TAP)
and plain TAP transcripts (the Linux layer). A test program that failed
without printing a failing TAP line (a crash, a timeout) counts as one
failure, so nothing that broke can be hidden.

Usage: summarize.py [--meson testlog.json]... [--tap transcript]... [--skipped-layer N]...
"""
import json
import re
import sys

TAP = re.compile(r'^(not ok|ok)\b(.*)$')


# The failing checks, named again just above the closing line: a log that
# is cut to its end still says what failed.
FAILURES = []


def count_tap(text, where):
    passed = failed = skipped = 0
    for line in text.splitlines():
        m = TAP.match(line.strip())
        if not m:
            continue
        if m.group(1) == 'not ok':
            failed += 1
            FAILURES.append(f'{where}: {line.strip()}')
        elif re.search(r'#\s*skip', m.group(2), re.IGNORECASE):
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped


def count_meson(path):
    build = 'sanitizer build' if 'sanitize' in path else 'build'
    totals = [0, 0, 0]
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            test = json.loads(line)
            where = f"{build}, {test.get('name')}"
            p, fl, s = count_tap(test.get('stdout', '') or '', where)
            if test.get('result') not in ('OK', 'SKIP', 'EXPECTEDFAIL') and fl == 0:
                fl = 1
                FAILURES.append(f"{where}: ended with {test.get('result')}")
                print(f"summary: {test.get('name')} ended with {test.get('result')}",
                      file=sys.stderr)
            if p + fl + s == 0 and test.get('result') == 'SKIP':
                s = 1
            for i, v in enumerate((p, fl, s)):
                totals[i] += v
    return totals


def main(argv):
    totals = [0, 0, 0]
    args = iter(argv)
    for arg in args:
        value = next(args)
        if arg == '--meson':
            counts = count_meson(value)
        elif arg == '--tap':
            with open(value, errors='replace') as f:
                counts = count_tap(f.read(), value.rsplit('/', 1)[-1])
        elif arg == '--skipped-layer':
            counts = (0, 0, int(value))
        else:
            print(f'summarize.py: unknown argument {arg}', file=sys.stderr)
            return 2
        for i, v in enumerate(counts):
            totals[i] += v
    passed, failed, skipped = totals
    for failure in FAILURES:
        print(f'failed: {failure}')
    line = f'{passed} passed, {failed} failed'
    if skipped:
        line += f', {skipped} skipped'
    print(line)
    return 1 if failed or passed == 0 else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
