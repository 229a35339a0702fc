#!/usr/bin/env python3
"""HTTP/1.1 at the byte level, to prove that what passes through the proxies arrives unchanged.

  raw_http1.py serve PORT DIR        answers every request (Content-Length bodies only) with 200 and the body
                                     "resp:<n>" (n counts the requests of the connection); writes what it received
                                     on each connection to DIR/conn-<k>.in and what it sent to DIR/conn-<k>.out
  raw_http1.py send ADDR REQ_FILE N OUT_FILE
                                     connects to ADDR, sends REQ_FILE's bytes at once (pipelined requests), reads
                                     until N responses have come (Content-Length framing), writes the bytes it
                                     received to OUT_FILE; exits 1 on a timeout (10 s) or an early EOF
  raw_http1.py script PORT DIR RESP_FILE N
                                     on each connection, once N requests have come (Content-Length framing), sends
                                     RESP_FILE's bytes as they are, in pieces cut at each "<<split>>" marker (100 ms
                                     apart, so that they arrive in separate reads), then closes; writes DIR/conn-<k>.in
                                     and .out as serve does
  raw_http1.py sendall ADDR REQ_FILE OUT_FILE
                                     sends REQ_FILE's bytes at once and reads until the server closes (10 s at most),
                                     writes what it received to OUT_FILE; exits 1 on a timeout

Every step is bounded; logs one JSON line per event on stdout.
"""
import json
import os
import socket
import sys
import threading
import time


def log(**kw):
    print(json.dumps(kw), flush=True)


def split_response_or_request(buf):
    """Length of the first whole message in buf (head + Content-Length body), or 0 when incomplete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return 0
    length = 0
    for line in buf[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    total = end + 4 + length
    return total if len(buf) >= total else 0


def serve(port, out_dir):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(16)
    log(event="listening", port=port)
    count = 0
    while True:
        conn, peer = srv.accept()
        count += 1
        threading.Thread(target=handle, args=(conn, os.path.join(out_dir, f"conn-{count}")), daemon=True).start()


def handle(conn, prefix):
    conn.settimeout(30)
    received = bytearray()
    pending = bytearray()
    sent = bytearray()
    n = 0
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            received += data
            pending += data
            while True:
                size = split_response_or_request(bytes(pending))
                if size == 0:
                    break
                del pending[:size]
                n += 1
                body = f"resp:{n}".encode()
                resp = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-App: raw\r\n\r\n%s" % (len(body), body)
                conn.sendall(resp)
                sent += resp
            with open(prefix + ".in", "wb") as f:
                f.write(received)
            with open(prefix + ".out", "wb") as f:
                f.write(sent)
    except OSError as e:
        log(event="error", error=str(e))
    finally:
        conn.close()
        log(event="closed", requests=n, received=len(received), sent=len(sent))


def send(addr, req_file, n, out_file):
    host, _, port = addr.rpartition(":")
    with open(req_file, "rb") as f:
        req = f.read()
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(req)
    buf = bytearray()
    got = 0
    rest = bytearray()
    while got < n:
        data = s.recv(65536)
        if not data:
            break
        buf += data
        rest += data
        while True:
            size = split_response_or_request(bytes(rest))
            if size == 0:
                break
            del rest[:size]
            got += 1
    s.close()
    with open(out_file, "wb") as f:
        f.write(buf)
    log(event="responses", got=got, bytes=len(buf))
    return 0 if got == n else 1


def script(port, out_dir, resp_file, n_requests):
    with open(resp_file, "rb") as f:
        pieces = f.read().split(b"<<split>>")
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(16)
    log(event="listening", port=port)
    count = 0
    while True:
        conn, peer = srv.accept()
        count += 1
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(10)
        received = bytearray()
        n = 0
        try:
            while n < n_requests:
                data = conn.recv(65536)
                if not data:
                    break
                received += data
                while True:
                    size = split_response_or_request(bytes(received[sum_sizes(received, n):]))
                    if size == 0:
                        break
                    n += 1
            for i, piece in enumerate(pieces):
                if i:
                    time.sleep(0.1)
                conn.sendall(piece)
        except OSError as e:
            log(event="error", error=str(e))
        finally:
            conn.close()
        prefix = os.path.join(out_dir, f"conn-{count}")
        with open(prefix + ".in", "wb") as f:
            f.write(received)
        with open(prefix + ".out", "wb") as f:
            f.write(b"".join(pieces))
        log(event="closed", requests=n, received=len(received))


def sum_sizes(buf, n):
    """Bytes taken by the first n whole messages of buf."""
    off = 0
    for _ in range(n):
        off += split_response_or_request(bytes(buf[off:]))
    return off


def sendall(addr, req_file, out_file):
    host, _, port = addr.rpartition(":")
    with open(req_file, "rb") as f:
        req = f.read()
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(req)
    buf = bytearray()
    ok = True
    try:
        while True:
            data = s.recv(65536)
            if not data:
                break
            buf += data
    except socket.timeout:
        ok = False
    s.close()
    with open(out_file, "wb") as f:
        f.write(buf)
    log(event="received", bytes=len(buf), eof=ok)
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) == 6 and sys.argv[1] == "script":
        script(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif len(sys.argv) == 5 and sys.argv[1] == "sendall":
        sys.exit(sendall(sys.argv[2], sys.argv[3], sys.argv[4]))
    elif len(sys.argv) == 6 and sys.argv[1] == "send":
        sys.exit(send(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]))
    else:
        sys.exit(__doc__)
