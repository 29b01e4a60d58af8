#!/usr/bin/env python3
"""Signs one element of a SAML Response with signxml (lxml + cryptography), an XML-DSig
implementation independent of libxmlsec1, and prints the signed XML.

    signxml_sign.py KEY_FILE CERT_FILE XML_FILE ELEMENT_ID

The element whose ID attribute is ELEMENT_ID (the Response or its Assertion) gets an
enveloped signature (exclusive c14n, RSA-SHA256, SHA-256 digest, the certificate in
KeyInfo) right after its Issuer, where SAML's schema puts it.
Used by tests/tests/saml_validate.rs; needs signxml (installed by tests/run.sh).
"""

import sys

from lxml import etree
from signxml import XMLSigner, methods

DS = "http://www.w3.org/2000/09/xmldsig#"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"


def main() -> None:
    key_file, cert_file, xml_file, element_id = sys.argv[1:5]
    with open(key_file, "rb") as f:
        key = f.read()
    with open(cert_file, "rb") as f:
        cert = f.read()
    with open(xml_file, "rb") as f:
        root = etree.fromstring(f.read())

    if root.get("ID") == element_id:
        target = root
    else:
        found = root.xpath("//*[@ID=$id]", id=element_id)
        if len(found) != 1:
            sys.exit(f"no single element with ID {element_id}")
        target = found[0]
    issuer = target.find(f"{{{SAML}}}Issuer")
    if issuer is None:
        sys.exit("the element has no Issuer")
    issuer.addnext(etree.Element(f"{{{DS}}}Signature", Id="placeholder", nsmap={"ds": DS}))

    signer = XMLSigner(
        method=methods.enveloped,
        signature_algorithm="rsa-sha256",
        digest_algorithm="sha256",
        c14n_algorithm="http://www.w3.org/2001/10/xml-exc-c14n#",
    )
    signed = signer.sign(root, key=key, cert=cert, reference_uri=element_id, id_attribute="ID")
    sys.stdout.write(etree.tostring(signed, xml_declaration=True, encoding="UTF-8").decode())


if __name__ == "__main__":
    main()
