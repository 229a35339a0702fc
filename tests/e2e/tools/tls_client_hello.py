#!/usr/bin/env python3
"""Sends one TLS ClientHello with exactly the versions, cipher suites and groups given, and prints what the server
answers first as one JSON line: {"record":"alert","level":2,"description":40}, {"record":"handshake",
"message":"server_hello"|"hello_retry_request","group":N}, or {"record":"none"} when the connection closes first.

For the offers a stock TLS client will not make (openssl 3 sends no secp224r1 in TLS 1.3). The key shares carry the
right length of random bytes: a server must refuse the offer before it would use them.

usage: tls_client_hello.py HOST:PORT --groups 21[,29...] [--shares N] [--suites 1301,...] [--versions 0304,...]
                           [--timeout S]
--shares: key shares for the first N groups only (default: for every group).
Exit status: 0 an answer was read, 2 connection or usage error.
"""
import argparse
import json
import os
import socket
import struct
import sys

# key_exchange lengths (RFC 8446 4.2.8.2, RFC 7748): uncompressed points and X25519/X448 public values
KEY_SHARE_LEN = {21: 57, 23: 65, 24: 97, 25: 133, 29: 32, 30: 56}
HRR_RANDOM = bytes.fromhex("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C")


def u16_list(values, len_bytes):
    body = b"".join(struct.pack(">H", v) for v in values)
    return (struct.pack(">B", len(body)) if len_bytes == 1 else struct.pack(">H", len(body))) + body


def ext(kind, body):
    return struct.pack(">HH", kind, len(body)) + body


def client_hello(versions, suites, groups, num_shares):
    shares = b"".join(struct.pack(">HH", g, KEY_SHARE_LEN.get(g, 32)) + os.urandom(KEY_SHARE_LEN.get(g, 32))
                      for g in groups[:num_shares])
    exts = (ext(43, u16_list(versions, 1))                        # supported_versions
            + ext(10, u16_list(groups, 2))                        # supported_groups
            + ext(13, u16_list([0x0403, 0x0503, 0x0804], 2))      # signature_algorithms
            + ext(51, struct.pack(">H", len(shares)) + shares)    # key_share
            + ext(16, b"\x00\x0b\x0aringmesh/1"))                 # ALPN
    body = (b"\x03\x03" + os.urandom(32) + b"\x20" + os.urandom(32) + u16_list(suites, 2) + b"\x01\x00"
            + struct.pack(">H", len(exts)) + exts)
    hs = b"\x01" + struct.pack(">I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack(">H", len(hs)) + hs


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def answer(sock):
    header = read_exact(sock, 5)
    if header is None:
        return {"record": "none"}
    kind, length = header[0], struct.unpack(">H", header[3:5])[0]
    body = read_exact(sock, length) or b""
    if kind == 21 and len(body) >= 2:
        return {"record": "alert", "level": body[0], "description": body[1]}
    if kind == 22 and len(body) >= 4 and body[0] == 2:
        # ServerHello: version(2) random(32) session_id suite(2) compression(1) extensions
        random = body[6:38]
        out = {"record": "handshake",
               "message": "hello_retry_request" if random == HRR_RANDOM else "server_hello"}
        pos = 38
        sid_len = body[pos]
        pos += 1 + sid_len + 3
        end = pos + 2 + struct.unpack(">H", body[pos:pos + 2])[0]
        pos += 2
        while pos + 4 <= end:
            etype, elen = struct.unpack(">HH", body[pos:pos + 4])
            if etype == 51 and elen >= 2:
                out["group"] = struct.unpack(">H", body[pos + 4:pos + 6])[0]
            pos += 4 + elen
        return out
    return {"record": "other", "type": kind}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("--groups", required=True)
    parser.add_argument("--shares", type=int, default=None)
    parser.add_argument("--suites", default="1301,1302,1303")
    parser.add_argument("--versions", default="0304")
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    host, _, port = args.address.rpartition(":")
    try:
        groups = [int(g, 0) for g in args.groups.split(",")]
        suites = [int(s, 16) for s in args.suites.split(",")]
        versions = [int(v, 16) for v in args.versions.split(",")]
        with socket.create_connection((host.strip("[]"), int(port)), timeout=args.timeout) as sock:
            num_shares = len(groups) if args.shares is None else args.shares
            sock.sendall(client_hello(versions, suites, groups, num_shares))
            print(json.dumps(answer(sock)))
    except (OSError, ValueError) as e:
        print(f"tls_client_hello: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
