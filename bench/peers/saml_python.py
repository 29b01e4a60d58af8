#!/usr/bin/env python3
"""python3-saml (OneLogin's toolkit, over python-xmlsec) validating the run's SAML Response.

    saml_python.py WORK_DIR        prints {"key":"acs.python3-saml","value":µs,"unit":"us"}

It first refuses the tampered copy (a peer that accepts everything is no yardstick), then
times is_valid() on the real one: the median of many calls after a warm-up.
"""

import json
import os
import statistics
import sys
import time

from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings

work = os.path.join(sys.argv[1], "saml")
config = json.load(open(os.path.join(work, "config.json")))
response = open(os.path.join(work, "response.b64")).read()
tampered = open(os.path.join(work, "tampered.b64")).read()

settings = OneLogin_Saml2_Settings(
    {
        "strict": True,
        "sp": {
            "entityId": config["sp_entity_id"],
            "assertionConsumerService": {"url": config["acs_url"]},
            "NameIDFormat": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
        },
        "idp": {
            "entityId": config["idp_entity_id"],
            "singleSignOnService": {"url": config["idp_sso_url"]},
            "x509cert": config["idp_cert_base64"],
        },
        "security": {"wantAssertionsSigned": True, "wantMessagesSigned": False},
    },
    sp_validation_only=True,
)
acs = config["acs_url"]
request_data = {
    "https": "on",
    "http_host": acs.split("/")[2],
    "script_name": "/" + acs.split("/", 3)[3],
    "server_port": "443",
}


def valid(encoded):
    return OneLogin_Saml2_Response(settings, encoded).is_valid(
        request_data, request_id=config["request_id"]
    )


def check(encoded):
    r = OneLogin_Saml2_Response(settings, encoded)
    ok = r.is_valid(request_data, request_id=config["request_id"])
    return ok, r.get_error()


ok, error = check(response)
if not ok:
    sys.exit(f"python3-saml refused the fixture: {error}")
if valid(tampered):
    sys.exit("python3-saml accepted the tampered response")

n = 500
for _ in range(n // 10):
    valid(response)
times = []
for _ in range(n):
    t = time.perf_counter()
    valid(response)
    times.append((time.perf_counter() - t) * 1e6)
print(json.dumps({"key": "acs.python3-saml", "value": round(statistics.median(times), 2), "unit": "us"}))
