#!/usr/bin/python3
"""Makes the JWT fixtures of tests/unit/test_jwt_*.c (read by tests/unit/jwt_fixtures.c) with PyJWT, an
implementation that is not ringmesh's own.

Run it from anywhere with Debian's python3 and its python3-jwt (PyJWT) and python3-cryptography packages:

    /usr/bin/python3 tests/data/jwt/make_fixtures.py

It replaces the files next to it with new keys and tokens; commit them together. The unit test reads them and
needs no Python. Every token is made for the fixed time in `now`, which the test pins with opts.now, so the
fixtures never expire.

Files:
  now                     the fixed time (seconds since the epoch)
  jwks.json               PyJWT's JWKs of an EC P-256 key (kid "py-ec") and an RSA-2048 key (kid "py-rsa"), then
                          an EC P-384 key (kid "py-p384", usable for ES384), then keys a verifier must skip: an
                          "oct" key, an RSA-1024 key and an EC P-256 key for "use": "enc"
  jwks-rsa.json           the RSA-2048 key alone
  ec-key.pem              the private half of "py-ec" (test key, PKCS#8), and ec-key.kid its RFC 7638 thumbprint
  es256.jwt, rs256.jwt    valid projected ServiceAccount tokens (namespace "shop", service account "orders", pod
                          "orders-7d9f8b6c5-x2x9k"), signed by "py-ec" and "py-rsa"
  es256-no-kid.jwt        the ES256 token without a kid in its header
  rs256-wrong-key.jwt     RS256 with kid "py-rsa" but signed by another RSA key
  alg-none.jwt            "alg": "none", empty signature
  alg-hs256.jwt           HS256 keyed with the RSA public key's PEM (the classic algorithm confusion)
  alg-missing.jwt         a header without "alg", with the ES256 token's signature
  header-not-json.jwt     a header that is not JSON (with the ES256 token's signature)
  payload-not-json.jwt    a payload that is not JSON, validly signed by "py-ec"
  payload-not-object.jwt  a payload that is a JSON array, validly signed by "py-ec"
  payload-duplicate.jwt   the valid claims with "aud" given twice (["other"], then ["ringmesh"]), validly signed
  crit.jwt                the valid claims, validly signed, with a "crit" header naming an extension
"""
import base64
import hashlib
import hmac
import json
import os

import jwt
from jwt.api_jws import PyJWS
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

NOW = 1800000000  # 2027-01-15T08:00:00Z
HERE = os.path.dirname(os.path.abspath(__file__))

CLAIMS = {
    "aud": ["ringmesh"],
    "exp": NOW + 3600,
    "iat": NOW - 60,
    "iss": "https://kubernetes.default.svc.cluster.local",
    "kubernetes.io": {
        "namespace": "shop",
        "pod": {"name": "orders-7d9f8b6c5-x2x9k", "uid": "0c9a3b2e-5d1f-4a7e-9b8c-2f6d4e1a7c30"},
        "serviceaccount": {"name": "orders", "uid": "5f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"},
    },
    "nbf": NOW - 60,
    "sub": "system:serviceaccount:shop:orders",
}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwk(alg_class, key, **extra):
    d = json.loads(alg_class.to_jwk(key))
    d.update(extra)
    return d


def write(name, text):
    with open(os.path.join(HERE, name), "w", encoding="ascii") as f:
        f.write(text)


def main():
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    p384 = ec.generate_private_key(ec.SECP384R1())
    rsa1024 = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    enc_key = ec.generate_private_key(ec.SECP256R1())

    ec_jwk = jwk(ECAlgorithm, ec_key.public_key(), kid="py-ec", use="sig", alg="ES256")
    rsa_jwk = jwk(RSAAlgorithm, rsa_key.public_key(), kid="py-rsa", use="sig", alg="RS256")
    skipped = [
        {"kty": "oct", "kid": "py-oct", "k": b64url(os.urandom(32))},
        jwk(ECAlgorithm, p384.public_key(), kid="py-p384"),
        jwk(RSAAlgorithm, rsa1024.public_key(), kid="py-rsa1024"),
        jwk(ECAlgorithm, enc_key.public_key(), kid="py-enc", use="enc"),
    ]
    write("jwks.json", json.dumps({"keys": [ec_jwk, rsa_jwk] + skipped}, indent=2) + "\n")
    write("jwks-rsa.json", json.dumps({"keys": [rsa_jwk]}, indent=2) + "\n")
    write("now", "%d\n" % NOW)

    pem = ec_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())
    write("ec-key.pem", pem.decode("ascii"))
    members = {k: ec_jwk[k] for k in ("crv", "kty", "x", "y")}
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode("ascii")
    write("ec-key.kid", b64url(hashlib.sha256(canonical).digest()) + "\n")

    es256 = jwt.encode(CLAIMS, ec_key, algorithm="ES256", headers={"kid": "py-ec"})
    rs256 = jwt.encode(CLAIMS, rsa_key, algorithm="RS256", headers={"kid": "py-rsa"})
    write("es256.jwt", es256)
    write("rs256.jwt", rs256)
    write("es256-no-kid.jwt", jwt.encode(CLAIMS, ec_key, algorithm="ES256"))
    write("rs256-wrong-key.jwt", jwt.encode(CLAIMS, other_rsa, algorithm="RS256", headers={"kid": "py-rsa"}))
    write("alg-none.jwt", jwt.encode(CLAIMS, None, algorithm="none"))

    payload = b64url(json.dumps(CLAIMS, separators=(",", ":")).encode("ascii"))
    rsa_pem = rsa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    head = b64url(b'{"alg":"HS256","typ":"JWT","kid":"py-rsa"}')
    mac = hmac.new(rsa_pem, (head + "." + payload).encode("ascii"), hashlib.sha256).digest()
    write("alg-hs256.jwt", head + "." + payload + "." + b64url(mac))

    es256_sig = es256.split(".")[2]
    write("alg-missing.jwt", b64url(b'{"typ":"JWT","kid":"py-ec"}') + "." + payload + "." + es256_sig)
    write("header-not-json.jwt", b64url(b'{"alg":"ES256","kid":"py-ec"') + "." + payload + "." + es256_sig)

    # PyJWS signs a payload of any bytes
    def sign_bytes(data, **headers):
        return PyJWS().encode(data, ec_key, algorithm="ES256", headers=dict(kid="py-ec", **headers))

    write("payload-not-json.jwt", sign_bytes(b'{"sub":"system:serviceaccount:shop:orders",}'))
    write("payload-not-object.jwt", sign_bytes(b'["system:serviceaccount:shop:orders"]'))
    body = json.dumps(CLAIMS, separators=(",", ":"))
    assert body.startswith('{"aud":["ringmesh"],')
    write("payload-duplicate.jwt", sign_bytes(('{"aud":["other"],' + body[1:]).encode("ascii")))
    write("crit.jwt", sign_bytes(body.encode("ascii"), crit=["x-ringmesh-test"], **{"x-ringmesh-test": True}))


if __name__ == "__main__":
    main()
