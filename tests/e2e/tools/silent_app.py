#!/usr/bin/env python3
"""An app that never answers, for the tests that need the proxy to answer on its own.

  silent_app.py tcp PORT    accepts, reads everything, writes nothing
  silent_app.py h2 PORT     the same, but first sends an HTTP/2 server preface (an empty SETTINGS frame), as every
                            HTTP/2 server does at once; then never another byte

One JSON line per event on stdout: {"event": "listening"}, {"event": "accept", "peer": ...} and, when the peer
closes, {"event": "close", "received": N, "head": <first 256 bytes received, latin-1>}, so a test can tell what
reached the app."""
import json
import socket
import sys
import threading


def log(**kw):
    print(json.dumps(kw), flush=True)


def serve(conn, peer, h2):
    received, head = 0, b""
    with conn:
        if h2:
            conn.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                break
            if not data:
                break
            received += len(data)
            if len(head) < 256:
                head += data[: 256 - len(head)]
    log(event="close", peer=peer, received=received, head=head.decode("latin-1"))


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(128)
    log(event="listening", port=port)
    while True:
        conn, addr = srv.accept()
        peer = "%s:%d" % addr
        log(event="accept", peer=peer)
        threading.Thread(target=serve, args=(conn, peer, mode == "h2"), daemon=True).start()


if __name__ == "__main__":
    main()
