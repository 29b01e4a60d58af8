#!/usr/bin/env python3
"""Prints a JWT bearer assertion (RFC 7523) made with PyJWT, as a CI job would make one.

    pyjwt_assertion.py KEY_FILE --iss CLIENT_ID --sub EMAIL --aud URL --now EPOCH
                       [--alg RS256] [--lifetime 120] [--jti JTI]

KEY_FILE is a PEM private key (as `openssl req -x509 -newkey rsa:4096 -nodes` writes it).
Used by tests/tests/jwt_grant_routes.rs; needs PyJWT[crypto] (installed by tests/run.sh).
"""

import argparse
import uuid

import jwt


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("key_file")
    p.add_argument("--iss", required=True)
    p.add_argument("--sub", required=True)
    p.add_argument("--aud", required=True)
    p.add_argument("--now", type=int, required=True)
    p.add_argument("--alg", default="RS256")
    p.add_argument("--lifetime", type=int, default=120)
    p.add_argument("--jti", default=None)
    args = p.parse_args()
    with open(args.key_file, "rb") as f:
        key = f.read()
    claims = {
        "iss": args.iss,
        "sub": args.sub,
        "aud": args.aud,
        "iat": args.now,
        "exp": args.now + args.lifetime,
        "jti": args.jti or str(uuid.uuid4()),
    }
    print(jwt.encode(claims, key, algorithm=args.alg))


if __name__ == "__main__":
    main()
