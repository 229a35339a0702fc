#!/usr/bin/env python3
"""Clients that never let a server tell TLS from plaintext by their first bytes, for the tests of the proxy's
first-bytes deadline on PERMISSIVE ports. The ClientHello is a real one, made by Python's ssl module (TLS 1.3,
ALPN ringmesh/1), never sent whole.

  first_bytes_client.py idle ADDR N [--timeout S]
      opens N connections and sends nothing; waits until the server has closed all of them.
      Prints {"opened": N, "closed": <closed by the server>, "ms": <when the last one closed>}.
  first_bytes_client.py trickle ADDR INTERVAL_MS [--timeout S]
      sends a ClientHello one byte every INTERVAL_MS until the server closes.
      Prints {"hello": <its length>, "sent": <bytes sent>, "closed": true|false, "how": "eof"|"reset"|"timeout",
      "received": <bytes the server sent>, "ms": ...}.
  first_bytes_client.py partial ADDR N [--timeout S]
      sends the first N bytes of a ClientHello, then closes its side (FIN) and waits for the server to close.
      Prints the same fields as trickle.

  first_bytes_client.py late-tls ADDR DELAY_MS --cert PEM --key PEM --ca PEM [--timeout S] [--h2-preface]
      connects, waits DELAY_MS (an app that speaks at once has spoken by then), then runs a TLS 1.3 handshake with
      that client certificate and ALPN ringmesh/1, sends the HTTP/2 client preface with --h2-preface (as an HTTP/2
      client does without waiting for the server), and reads what the server sends first.
      Prints {"handshake": "ok" | <the error>, "alpn": ..., "first": <hex of up to 9 bytes received>}.

--timeout bounds every wait (default 10 s). Exit status 0 when the server closed every connection in time (idle,
trickle, partial) or the handshake succeeded (late-tls)."""
import argparse
import json
import select
import socket
import ssl
import sys
import time


def client_hello():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols(["ringmesh/1"])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="orders.shop.svc")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def connect(addr):
    host, port = addr.rsplit(":", 1)
    return socket.create_connection((host.strip("[]"), int(port)), timeout=5)


def wait_closed(s, deadline):
    """Reads until the server closes; returns (how, bytes received)."""
    received = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout", received
        r, _, _ = select.select([s], [], [], left)
        if not r:
            continue
        try:
            d = s.recv(65536)
        except ConnectionResetError:
            return "reset", received
        if not d:
            return "eof", received
        received += len(d)


def idle(args):
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    socks = [connect(args.addr) for _ in range(args.n)]
    open_ = {s.fileno(): s for s in socks}
    last = None
    while open_ and time.monotonic() < deadline:
        p = select.poll()
        for fd in open_:
            p.register(fd, select.POLLIN)
        for fd, _ in p.poll(max(1, int((deadline - time.monotonic()) * 1000))):
            s = open_.pop(fd)
            try:
                s.recv(1)
            except OSError:
                pass
            s.close()
            last = time.monotonic()
    for s in open_.values():
        s.close()
    closed = args.n - len(open_)
    print(json.dumps({"opened": args.n, "closed": closed, "ms": int(((last or t0) - t0) * 1000)}))
    return 0 if closed == args.n else 1


def trickle(args):
    hello = client_hello()
    s = connect(args.addr)
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    sent, how, received = 0, "timeout", 0
    while sent < len(hello) and time.monotonic() < deadline:
        try:
            s.send(hello[sent : sent + 1])
        except (BrokenPipeError, ConnectionResetError):
            how = "reset"
            break
        sent += 1
        how, received = wait_closed(s, min(deadline, time.monotonic() + args.n / 1000.0))
        if how != "timeout":
            break
    s.close()
    print(json.dumps({"hello": len(hello), "sent": sent, "closed": how != "timeout", "how": how,
                      "received": received, "ms": int((time.monotonic() - t0) * 1000)}))
    return 0 if how != "timeout" else 1


def partial(args):
    hello = client_hello()
    s = connect(args.addr)
    t0 = time.monotonic()
    s.sendall(hello[: args.n])
    s.shutdown(socket.SHUT_WR)
    how, received = wait_closed(s, t0 + args.timeout)
    s.close()
    print(json.dumps({"hello": len(hello), "sent": min(args.n, len(hello)), "closed": how != "timeout", "how": how,
                      "received": received, "ms": int((time.monotonic() - t0) * 1000)}))
    return 0 if how != "timeout" else 1


def late_tls(args):
    s = connect(args.addr)
    time.sleep(args.n / 1000.0)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(args.ca)
    ctx.load_cert_chain(args.cert, args.key)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols(["ringmesh/1"])
    out = {"handshake": "ok", "alpn": None, "first": ""}
    s.settimeout(args.timeout)
    try:
        t = ctx.wrap_socket(s)
        out["alpn"] = t.selected_alpn_protocol()
        if args.h2_preface:
            t.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000"))
        got = b""
        while len(got) < 9:
            d = t.recv(9 - len(got))
            if not d:
                break
            got += d
        out["first"] = got.hex()
        t.close()
    except (OSError, ssl.SSLError) as e:
        out["handshake"] = str(e)
        s.close()
    print(json.dumps(out))
    return 0 if out["handshake"] == "ok" else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["idle", "trickle", "partial", "late-tls"])
    ap.add_argument("addr")
    ap.add_argument("n", type=int)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--ca")
    ap.add_argument("--h2-preface", action="store_true")
    args = ap.parse_args()
    return {"idle": idle, "trickle": trickle, "partial": partial, "late-tls": late_tls}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
