#!/usr/bin/env python3
"""Sends one request with an oversized head and reports the answer, for the tests of the proxy's HTTP limits.

  big_head_client.py h1 ADDR SIZE CHUNK [--timeout S] [--raw HEAD_FILE]
      HTTP/1.1: a GET whose head is SIZE bytes (one big "x-big" field), written CHUNK bytes per send; with --raw,
      the bytes of HEAD_FILE instead. Prints {"status": <status code or null>, "answer": <first line>, ...}.
  big_head_client.py h2 ADDR SIZE [--timeout S] [--fields N]
      HTTP/2 with prior knowledge: the preface, SETTINGS, then stream 1's HEADERS and CONTINUATION frames (16384
      bytes each) carrying about SIZE bytes of header fields (N fields, default 1), END_STREAM. The answer's header
      block is decoded with libnghttp2's HPACK decoder. Prints {"status": <:status of stream 1 or null>,
      "rst": <RST_STREAM code or null>, "goaway": <GOAWAY code or null>, ...}.

Both keep reading while they send (a peer that answers early and closes never deadlocks the client), stop at the
peer's EOF or reset or once the answer is complete, and give up after --timeout seconds (default 5): "timeout": true
then. Exit status 0 when an answer came, 1 otherwise."""
import argparse
import ctypes
import json
import select
import socket
import sys
import time


def connect(addr):
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
    s.setblocking(False)
    return s


def exchange(s, data, chunk, deadline, done):
    """Writes data in chunks while reading; returns (received bytes, how it ended)."""
    got = bytearray()
    off = 0
    while True:
        if done(got):
            return bytes(got), "answered"
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(got), "timeout"
        want_w = [s] if off < len(data) else []
        r, w, _ = select.select([s], want_w, [], left)
        if r:
            try:
                d = s.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                return bytes(got), "reset"
            except BlockingIOError:
                d = None
            if d == b"":
                return bytes(got), "eof"
            if d:
                got += d
        if w:
            try:
                off += s.send(data[off : off + chunk])
            except (ConnectionResetError, BrokenPipeError):
                off = len(data)  # the peer stopped reading: what it answered may still be in the receive queue
            except BlockingIOError:
                pass


def h1(args):
    if args.raw:
        with open(args.raw, "rb") as f:
            head = f.read()
    else:
        start, end = b"GET / HTTP/1.1\r\nHost: svc\r\nX-Big: ", b"\r\n\r\n"
        head = start + b"a" * (args.size - len(start) - len(end)) + end
    s = connect(args.addr)
    t0 = time.monotonic()

    def done(got):
        i = got.find(b"\r\n\r\n")
        return i >= 0

    got, how = exchange(s, head, args.chunk, t0 + args.timeout, done)
    s.close()
    line = got.split(b"\r\n", 1)[0].decode("latin-1") if got else ""
    parts = line.split(" ")
    status = int(parts[1]) if len(parts) > 1 and line.startswith("HTTP/1.") and parts[1].isdigit() else None
    out = {"status": status, "answer": line, "received": len(got), "end": how, "timeout": how == "timeout",
           "ms": int((time.monotonic() - t0) * 1000)}
    print(json.dumps(out))
    return 0 if status is not None else 1


def hpack_int(value, prefix_bits, first):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def hpack_literal(name, value):
    """A literal field without indexing, new name, no Huffman (RFC 7541 6.2.2)."""
    return b"\x00" + hpack_int(len(name), 7, 0) + name + hpack_int(len(value), 7, 0) + value


def frame(ftype, flags, stream, payload):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + stream.to_bytes(4, "big") + payload


class Nv(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("value", ctypes.c_void_p), ("namelen", ctypes.c_size_t),
                ("valuelen", ctypes.c_size_t), ("flags", ctypes.c_uint8)]


def decode_block(block):
    """Decodes one header block with libnghttp2's HPACK inflater: a list of (name, value)."""
    lib = ctypes.CDLL("libnghttp2.so.14")
    lib.nghttp2_hd_inflate_hd2.restype = ctypes.c_ssize_t
    lib.nghttp2_hd_inflate_hd2.argtypes = [ctypes.c_void_p, ctypes.POINTER(Nv), ctypes.POINTER(ctypes.c_int),
                                           ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
    inflater = ctypes.c_void_p()
    if lib.nghttp2_hd_inflate_new(ctypes.byref(inflater)) != 0:
        raise RuntimeError("nghttp2_hd_inflate_new failed")
    fields, buf, off = [], ctypes.create_string_buffer(block, len(block)), 0
    try:
        while True:
            nv, flags = Nv(), ctypes.c_int(0)
            n = lib.nghttp2_hd_inflate_hd2(inflater, ctypes.byref(nv), ctypes.byref(flags),
                                           ctypes.cast(ctypes.addressof(buf) + off, ctypes.c_char_p), len(block) - off, 1)
            if n < 0:
                raise RuntimeError("HPACK decoding failed: %d" % n)
            off += n
            if flags.value & 0x02:  # NGHTTP2_HD_INFLATE_EMIT
                fields.append((ctypes.string_at(nv.name, nv.namelen).decode("latin-1"),
                               ctypes.string_at(nv.value, nv.valuelen).decode("latin-1")))
            if flags.value & 0x01:  # NGHTTP2_HD_INFLATE_FINAL
                lib.nghttp2_hd_inflate_end_headers(inflater)
                return fields
            if not flags.value & 0x02 and off == len(block):
                return fields
    finally:
        lib.nghttp2_hd_inflate_del(inflater)


def parse_frames(data):
    frames, off = [], 0
    while len(data) - off >= 9:
        n = int.from_bytes(data[off : off + 3], "big")
        if len(data) - off < 9 + n:
            break
        frames.append((data[off + 3], data[off + 4], int.from_bytes(data[off + 5 : off + 9], "big") & 0x7FFFFFFF,
                       data[off + 9 : off + 9 + n]))
        off += 9 + n
    return frames


def h2(args):
    block = hpack_literal(b":method", b"GET") + hpack_literal(b":scheme", b"http") + \
        hpack_literal(b":path", b"/") + hpack_literal(b":authority", b"svc")
    per = max(1, args.size // args.fields)
    for i in range(args.fields):
        block += hpack_literal(b"x-big-%d" % i, b"a" * per)
    out = bytearray(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b""))
    pieces = [block[i : i + 16384] for i in range(0, len(block), 16384)]
    for i, p in enumerate(pieces):
        flags = 0x4 if i == len(pieces) - 1 else 0  # END_HEADERS on the last
        out += frame(1 if i == 0 else 9, flags | (0x1 if i == 0 else 0), 1, p)  # HEADERS with END_STREAM first
    s = connect(args.addr)
    t0 = time.monotonic()
    result = {"status": None, "rst": None, "goaway": None, "frames": []}

    def done(got):
        for ftype, flags, stream, payload in parse_frames(bytes(got)):
            if stream == 1 and (ftype == 3 or (ftype in (0, 1, 9) and flags & 0x1)):
                return True  # RST_STREAM, or the end of the answer
            if ftype == 7:
                return True
        return False

    got, how = exchange(s, bytes(out), 16384, t0 + args.timeout, done)
    s.close()
    block_in = b""
    for ftype, flags, stream, payload in parse_frames(got):
        result["frames"].append({"type": ftype, "flags": flags, "stream": stream, "length": len(payload)})
        if ftype == 4 and not flags & 1 and stream == 0:
            continue
        if stream == 1 and ftype in (1, 9):
            if ftype == 1:
                if flags & 0x8:  # PADDED
                    payload = payload[1 : len(payload) - payload[0]]
                if flags & 0x20:  # PRIORITY
                    payload = payload[5:]
            block_in += payload
            if flags & 0x4:
                for name, value in decode_block(block_in):
                    if name == ":status" and result["status"] is None:
                        result["status"] = int(value)
        elif stream == 1 and ftype == 3:
            result["rst"] = int.from_bytes(payload[:4], "big")
        elif ftype == 7:
            result["goaway"] = int.from_bytes(payload[4:8], "big")
    result.update({"end": how, "timeout": how == "timeout", "ms": int((time.monotonic() - t0) * 1000),
                   "block_bytes": len(block)})
    print(json.dumps(result))
    return 0 if result["status"] is not None or result["rst"] is not None or result["goaway"] is not None else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("proto", choices=["h1", "h2"])
    ap.add_argument("addr")
    ap.add_argument("size", type=int)
    ap.add_argument("chunk", type=int, nargs="?", default=65536)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--raw")
    ap.add_argument("--fields", type=int, default=1)
    args = ap.parse_args()
    return h1(args) if args.proto == "h1" else h2(args)


if __name__ == "__main__":
    sys.exit(main())
