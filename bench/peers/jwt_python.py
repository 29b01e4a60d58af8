#!/usr/bin/env python3
"""PyJWT doing the cryptographic part of the JWT bearer grant, keys parsed once: verify the
RS256 assertion (signature, exp, aud, iss) and sign an ES256 access token. No store.

    jwt_python.py WORK_DIR   prints {"key":"grant.pyjwt","value":µs,"unit":"us"}
"""

import json
import os
import statistics
import sys
import time
import uuid

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

work = os.path.join(sys.argv[1], "jwt")
config = json.load(open(os.path.join(work, "config.json")))
assertion = open(os.path.join(work, "assertion.jwt")).read().strip()
tampered = open(os.path.join(work, "tampered.jwt")).read().strip()
public = load_pem_public_key(open(os.path.join(work, "client-public.pem"), "rb").read())
signing = load_pem_private_key(open(os.path.join(work, "signing-es256.pem"), "rb").read(), None)


def grant(token):
    claims = jwt.decode(
        token, public, algorithms=["RS256"], audience=config["audience"], issuer=config["issuer"]
    )
    now = int(time.time())
    return jwt.encode(
        {
            "iss": config["access_token_issuer"],
            "sub": claims["sub"],
            "aud": config["audience"],
            "iat": now,
            "exp": now + 3600,
            "jti": str(uuid.uuid4()),
            "scope": "api",
        },
        signing,
        algorithm="ES256",
        headers={"typ": "at+jwt"},
    )


grant(assertion)
try:
    grant(tampered)
    sys.exit("PyJWT accepted the tampered assertion")
except jwt.InvalidTokenError:
    pass

n = 2000
for _ in range(n // 10):
    grant(assertion)
times = []
for _ in range(n):
    t = time.perf_counter()
    grant(assertion)
    times.append((time.perf_counter() - t) * 1e6)
print(json.dumps({"key": "grant.pyjwt", "value": round(statistics.median(times), 2), "unit": "us"}))
