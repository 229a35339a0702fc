#!/usr/bin/env python3
"""One HTTP/1.1 keep-alive connection across a policy change (tests/e2e/test_policy_rollout.sh).

  keepalive_client.py HOST PORT FLAG_FILE PATH1 PATH2
Sends GET PATH1, prints its status, waits (at most 30 s) until FLAG_FILE exists, sends GET PATH2 on the same
connection and prints its status and whether the connection was the same (local port unchanged)."""
import http.client
import os
import sys
import time

host, port, flag, p1, p2 = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
c = http.client.HTTPConnection(host, port, timeout=10)
c.request("GET", p1)
r = c.getresponse()
r.read()
local = c.sock.getsockname()
print(f"first {r.status}", flush=True)
deadline = time.time() + 30
while not os.path.exists(flag) and time.time() < deadline:
    time.sleep(0.05)
c.request("GET", p2)
r = c.getresponse()
r.read()
print(f"second {r.status} {'same-connection' if c.sock is not None and c.sock.getsockname() == local else 'new-connection'}",
      flush=True)
