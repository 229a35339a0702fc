#!/usr/bin/env python3
"""bench/callgrind-diff.py - per-request figures from two callgrind dumps of one process (bench/observability-counts.sh).

    callgrind-diff.py N FIRST SECOND [TOP]

FIRST and SECOND are dumps (callgrind_control -d) taken after runs of requests whose counts differ by N, with the
counters zeroed before the first: every figure is (SECOND - FIRST) / N, so that what both runs did once (handshakes,
start-up of connections) cancels out. Prints one line of totals (instructions, TLS records written, allocator calls,
clock reads, per request), then the TOP functions by their own instructions per request, one per line.
"""
import re
import sys

RECORD_FNS = ("BuildTls13Message",)
ALLOC_FNS = ("malloc", "calloc", "realloc")
CLOCK_FNS = ("clock_gettime", "__clock_gettime")


def load(path):
    """Self instructions and calls received, per function name, and the file's total."""
    names = {}
    self_ir = {}
    calls = {}
    total = 0
    fn = None
    cfn = None
    after_calls = False
    name_re = re.compile(r"^\((\d+)\)(?: (.*))?$")

    def resolve(spec):
        m = name_re.match(spec)
        if m is None:
            return spec
        if m.group(2) is not None:
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), spec)

    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            if line.startswith("fn="):
                fn = resolve(line[3:])
                after_calls = False
            elif line.startswith("cfn="):
                cfn = resolve(line[4:])
            elif line.startswith("calls="):
                calls[cfn] = calls.get(cfn, 0) + int(line[6:].split()[0])
                after_calls = True
            elif line.startswith(("summary:", "totals:")):
                total = max(total, int(line.split()[1]))
            elif line[0] in "0123456789+-*" and fn is not None:
                parts = line.split()
                cost = int(parts[1]) if len(parts) > 1 else 0
                if after_calls:
                    after_calls = False  # the inclusive cost of the call, not this function's own
                else:
                    self_ir[fn] = self_ir.get(fn, 0) + cost
    return total, self_ir, calls


def count(calls, fns):
    return sum(v for k, v in calls.items() if k.split("'")[0] in fns)


def main():
    n = int(sys.argv[1])
    t0, s0, c0 = load(sys.argv[2])
    t1, s1, c1 = load(sys.argv[3])
    top = int(sys.argv[4]) if len(sys.argv) > 4 else 25
    per = lambda a, b: (a - b) / n
    print("Ir/req=%.0f records/req=%.2f allocs/req=%.2f clock_reads/req=%.2f" % (
        per(t1, t0), per(count(c1, RECORD_FNS), count(c0, RECORD_FNS)),
        per(count(c1, ALLOC_FNS), count(c0, ALLOC_FNS)), per(count(c1, CLOCK_FNS), count(c0, CLOCK_FNS))))
    rows = []
    for fn, v in s1.items():
        d = per(v, s0.get(fn, 0))
        if d >= 1:
            rows.append((d, per(c1.get(fn, 0), c0.get(fn, 0)), fn))
    rows.sort(reverse=True)
    for d, k, fn in rows[:top]:
        print("%8.0f %6.2f %s" % (d, k, fn))


if __name__ == "__main__":
    main()
