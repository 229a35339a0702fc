#!/usr/bin/env python3
"""End-user JWTs for the RequestAuthentication tests, made with python3-cryptography (not ringmesh's code).

  jwt_tool.py keys DIR                      new signing keys in DIR: rsa.pem ec256.pem ec384.pem ed25519.pem
  jwt_tool.py jwks DIR KEY:KID[:ALG] ...    prints the JWKS holding the public halves of those keys
  jwt_tool.py mint DIR KEY KID ALG CLAIMS   prints a token: CLAIMS is JSON; "exp"/"nbf"/"iat" given as "+N"/"-N"
                                            are seconds from now
"""
import base64
import json
import os
import sys
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def uint(n, size=None):
    size = size or (n.bit_length() + 7) // 8
    return n.to_bytes(size, "big")


def load(d, name):
    with open(os.path.join(d, name + ".pem"), "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)


def cmd_keys(d):
    os.makedirs(d, exist_ok=True)
    keys = {
        "rsa": rsa.generate_private_key(65537, 2048),
        "rsa2": rsa.generate_private_key(65537, 2048),
        "ec256": ec.generate_private_key(ec.SECP256R1()),
        "ec384": ec.generate_private_key(ec.SECP384R1()),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
    }
    for name, k in keys.items():
        with open(os.path.join(d, name + ".pem"), "wb") as f:
            f.write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))


def jwk(k, kid, alg):
    pub = k.public_key()
    if isinstance(k, rsa.RSAPrivateKey):
        n = pub.public_numbers()
        j = {"kty": "RSA", "n": b64(uint(n.n)), "e": b64(uint(n.e))}
    elif isinstance(k, ec.EllipticCurvePrivateKey):
        n = pub.public_numbers()
        size = (k.curve.key_size + 7) // 8
        crv = {256: "P-256", 384: "P-384", 521: "P-521"}[k.curve.key_size]
        j = {"kty": "EC", "crv": crv, "x": b64(uint(n.x, size)), "y": b64(uint(n.y, size))}
    else:
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        j = {"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}
    j["kid"] = kid
    j["use"] = "sig"
    if alg:
        j["alg"] = alg
    return j


def cmd_jwks(d, specs):
    keys = []
    for s in specs:
        parts = s.split(":")
        keys.append(jwk(load(d, parts[0]), parts[1], parts[2] if len(parts) > 2 else None))
    print(json.dumps({"keys": keys}))


def sign(k, alg, data):
    h = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}.get(alg[2:])
    if alg.startswith("RS"):
        return k.sign(data, padding.PKCS1v15(), h)
    if alg.startswith("PS"):
        return k.sign(data, padding.PSS(padding.MGF1(h), h.digest_size), h)
    if alg.startswith("ES"):
        r, s = decode_dss_signature(k.sign(data, ec.ECDSA(h)))
        size = (k.curve.key_size + 7) // 8
        return uint(r, size) + uint(s, size)
    if alg == "EdDSA":
        return k.sign(data)
    raise SystemExit("unknown alg " + alg)


def cmd_mint(d, key, kid, alg, claims):
    c = json.loads(claims)
    now = int(time.time())
    for name in ("exp", "nbf", "iat"):
        v = c.get(name)
        if isinstance(v, str) and v[:1] in "+-":
            c[name] = now + int(v)
    header = {"alg": alg, "typ": "JWT"}
    if kid != "-":
        header["kid"] = kid
    si = b64(json.dumps(header).encode()) + "." + b64(json.dumps(c).encode())
    print(si + "." + b64(sign(load(d, key), alg, si.encode())))


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[:1] == ["keys"] and len(a) == 2:
        cmd_keys(a[1])
    elif a[:1] == ["jwks"] and len(a) >= 3:
        cmd_jwks(a[1], a[2:])
    elif a[:1] == ["mint"] and len(a) == 6:
        cmd_mint(*a[1:])
    else:
        sys.exit(__doc__)
