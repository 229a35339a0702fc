#!/usr/bin/env python3
"""bench/perf-syscall-counts.py - per-request system calls, io_uring SQEs and sends of the two proxies of a pair, from
`perf script -F pid,event,trace` on stdin (bench/observability-counts.sh records the events).

    perf script ... | perf-syscall-counts.py REQUESTS INBOUND_PID OUTBOUND_PID

Prints one line per proxy: system calls in all and the I/O ones by name, SQEs in all and by operation, sends (send
system calls or SEND SQEs that sent something) with their mean size, and receives that got something.
"""
import collections
import re
import sys


def main():
    n = int(sys.argv[1])
    roles = {sys.argv[2]: "inbound", sys.argv[3]: "outbound"}
    sys_count = collections.defaultdict(collections.Counter)
    sqe = collections.defaultdict(collections.Counter)
    sent = collections.Counter()
    sends = collections.Counter()
    recvs = collections.Counter()
    enter_sqes = collections.Counter()
    op_of = {}
    field = re.compile(r"(\w+):? (0x[0-9a-f]+|-?\d+|[A-Z_]+)")
    for line in sys.stdin:
        parts = line.split(None, 2)
        if len(parts) < 2:
            continue
        role = roles.get(parts[0])
        if role is None:
            continue
        event = parts[1].rstrip(":")
        rest = parts[2] if len(parts) > 2 else ""
        f = dict(field.findall(rest))
        if event.startswith("syscalls:sys_enter_"):
            name = event[len("syscalls:sys_enter_"):]
            sys_count[role][name] += 1
            if name == "io_uring_enter" and "to_submit" in f:
                enter_sqes[role] += int(f["to_submit"], 0)
        elif event == "syscalls:sys_exit_sendto":
            v = int(rest.strip(), 0)
            if v > 0:
                sent[role] += v
                sends[role] += 1
        elif event == "syscalls:sys_exit_recvfrom":
            if int(rest.strip(), 0) > 0:
                recvs[role] += 1
        elif event == "io_uring:io_uring_submit_req":
            op_of[f["req"]] = f["opcode"]
            sqe[role][f["opcode"]] += 1
        elif event == "io_uring:io_uring_complete":
            op = op_of.get(f["req"])
            res = int(f["result"], 0)
            if op == "SEND" and res > 0:
                sent[role] += res
                sends[role] += 1
            elif op == "RECV" and res > 0:
                recvs[role] += 1
    for role in ("outbound", "inbound"):
        s = sys_count[role]
        io = " ".join("%s=%.2f" % (k, v / n) for k, v in sorted(s.items()) if v / n >= 0.005)
        ops = " ".join("%s=%.2f" % (k, v / n) for k, v in sorted(sqe[role].items()) if v / n >= 0.005)
        print("%s syscalls=%.2f [%s] sqes=%.2f [%s] sends=%.2f bytes/send=%.0f recvs=%.2f" % (
            role, sum(s.values()) / n, io, sum(sqe[role].values()) / n, ops, sends[role] / n,
            sent[role] / sends[role] if sends[role] else 0, recvs[role] / n))


if __name__ == "__main__":
    main()
