#!/usr/bin/env python3
"""A flood of TLS 1.3 handshakes that fail: what an attacker without an SVID can make a STRICT port do.

  handshake_flood.py --connect IP:PORT --count N [--concurrency C] [--timeout S] [--stop-file PATH] [--source IP]

Each attempt is a full TLS 1.3 ClientHello (ALPN ringmesh/1, the server's certificate not checked) without a client
certificate, so the server runs its key exchange and signs before it can refuse: the expensive part of a handshake.
The attempt then reads until the server closes. C threads make N attempts in all (bounded; --stop-file ends them
early). Prints one JSON line: attempts, refused (the server closed or alerted, as it must), accepted (the server
sent application data: a hole), errors (no TLS at all: refused TCP connection, timeout), and attempts/s. --source
makes the connections from that local address (a flooder apart from the clients that share its host)."""
import argparse
import json
import os
import socket
import ssl
import threading
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connect", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--stop-file")
    ap.add_argument("--source")
    args = ap.parse_args()
    host, port = args.connect.rsplit(":", 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols(["ringmesh/1"])
    lock = threading.Lock()
    counts = {"attempts": 0, "refused": 0, "accepted": 0, "errors": 0}
    left = [args.count]

    def one():
        try:
            src = (args.source, 0) if args.source else None
            with socket.create_connection((host, int(port)), timeout=args.timeout, source_address=src) as raw:
                with ctx.wrap_socket(raw, server_hostname="flood") as tls:
                    # TLS 1.3: the client's handshake ends before the server has checked the (absent) certificate;
                    # the refusal comes as an alert or a close on the first read
                    tls.sendall(b"GET / HTTP/1.1\r\nHost: flood\r\n\r\n")
                    data = tls.recv(1)
                    return "accepted" if data else "refused"
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError, ssl.SSLEOFError):
            return "refused"
        except OSError:
            return "errors"

    def worker():
        while True:
            with lock:
                if left[0] <= 0 or (args.stop_file and os.path.exists(args.stop_file)):
                    return
                left[0] -= 1
            r = one()
            with lock:
                counts["attempts"] += 1
                counts[r] += 1

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.monotonic() - t0
    counts["seconds"] = round(secs, 3)
    counts["per_second"] = round(counts["attempts"] / secs, 1) if secs > 0 else 0
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main()
