/*
 * XML-DSig verification with keys loaded once (sso-acs, `saml::verify`).
 *
 * samael builds an xmlsec key from the certificate's DER on every call; with OpenSSL 3 that
 * runs its decoder machinery each time and costs more than the rest of the verification.
 * These functions do what samael's `reduce_xml_to_signed` does in its pre-digest mode:
 * parse, register the ID attributes, verify every ds:Signature in document order with one
 * of the given keys, and hand back the pre-digest (canonical) bytes of every reference it
 * verified; but the keys are made once per certificate by the caller and kept.
 *
 * A key made here holds only the public key (no X.509 data), so duplicating it for a
 * verification is a reference count on the OpenSSL key. The verification context gets a
 * duplicate and destroys it; the kept key is only read, so threads can share it.
 *
 * Compiled by build.rs with xmlsec1-openssl's own pkg-config flags, so the structures read
 * here have the layout of the linked library.
 */
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/valid.h>
#include <xmlsec/xmlsec.h>
#include <xmlsec/keys.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmltree.h>
#include <xmlsec/transforms.h>
#include <xmlsec/openssl/app.h>

#define DSIG_NS "http://www.w3.org/2000/09/xmldsig#"

/* A verification key made from a certificate (DER); NULL when it cannot be read. */
xmlSecKeyPtr identity_dsig_key_from_cert(const unsigned char *der, unsigned int len) {
    xmlSecKeyPtr full = xmlSecOpenSSLAppKeyLoadMemory(der, len, xmlSecKeyDataFormatCertDer,
                                                      NULL, NULL, NULL);
    if (full == NULL) {
        return NULL;
    }
    xmlSecKeyPtr key = NULL;
    xmlSecKeyDataPtr value = xmlSecKeyGetValue(full);
    xmlSecKeyDataPtr copy = value != NULL ? xmlSecKeyDataDuplicate(value) : NULL;
    if (copy != NULL) {
        key = xmlSecKeyCreate();
        if (key == NULL || xmlSecKeySetValue(key, copy) < 0) {
            xmlSecKeyDataDestroy(copy);
            if (key != NULL) {
                xmlSecKeyDestroy(key);
            }
            key = NULL;
        }
    }
    xmlSecKeyDestroy(full);
    return key;
}

void identity_dsig_key_free(xmlSecKeyPtr key) {
    if (key != NULL) {
        xmlSecKeyDestroy(key);
    }
}

/* Registers every `ID` attribute as an XML ID (what `URI="#…"` references resolve to).
   A value that is not an NCName, or seen twice: -1. */
static int register_ids(xmlDocPtr doc, xmlNodePtr node) {
    for (xmlNodePtr n = node; n != NULL; n = n->next) {
        if (n->type != XML_ELEMENT_NODE) {
            continue;
        }
        xmlAttrPtr attr = xmlHasProp(n, BAD_CAST "ID");
        if (attr != NULL && attr->ns == NULL) {
            xmlChar *value = xmlNodeListGetString(doc, attr->children, 1);
            int ok = value != NULL && xmlValidateNCName(value, 0) == 0 &&
                     xmlGetID(doc, value) == NULL && xmlAddID(NULL, doc, value, attr) != NULL;
            xmlFree(value);
            if (!ok) {
                return -1;
            }
        }
        if (register_ids(doc, n->children) < 0) {
            return -1;
        }
    }
    return 0;
}

/* The ds:Signature elements under `node`, in document order (at most `max`). */
static int find_signatures(xmlNodePtr node, xmlNodePtr *out, int count, int max) {
    for (xmlNodePtr n = node; n != NULL; n = n->next) {
        if (n->type != XML_ELEMENT_NODE) {
            continue;
        }
        if (n->ns != NULL && xmlStrEqual(n->ns->href, BAD_CAST DSIG_NS) &&
            xmlStrEqual(n->name, BAD_CAST "Signature")) {
            if (count == max) {
                return -1;
            }
            out[count++] = n;
        }
        count = find_signatures(n->children, out, count, max);
        if (count < 0) {
            return -1;
        }
    }
    return count;
}

typedef void (*identity_dsig_sink)(void *ctx, const unsigned char *data, unsigned int len);

/* Verifies one Signature with one key. 1: verified, every reference's pre-digest bytes
   given to `sink`; 0: not verified by this key; -1: error. */
static int verify_one(xmlNodePtr signature, xmlSecKeyPtr key, identity_dsig_sink sink,
                      void *sink_ctx) {
    xmlSecDSigCtxPtr ctx = xmlSecDSigCtxCreate(NULL);
    if (ctx == NULL) {
        return -1;
    }
    ctx->flags |= XMLSEC_DSIG_FLAGS_STORE_SIGNEDINFO_REFERENCES;
    ctx->signKey = xmlSecKeyDuplicate(key);
    int rc = -1;
    if (ctx->signKey != NULL && xmlSecDSigCtxVerify(ctx, signature) >= 0) {
        if (ctx->status != xmlSecDSigStatusSucceeded) {
            rc = 0;
        } else {
            xmlSecSize n = xmlSecPtrListGetSize(&ctx->signedInfoReferences);
            rc = n > 0 ? 1 : -1;
            for (xmlSecSize i = 0; i < n && rc == 1; i++) {
                xmlSecDSigReferenceCtxPtr ref =
                    (xmlSecDSigReferenceCtxPtr)xmlSecPtrListGetItem(&ctx->signedInfoReferences, i);
                xmlSecBufferPtr buffer =
                    ref != NULL ? xmlSecDSigReferenceCtxGetPreDigestBuffer(ref) : NULL;
                if (ref == NULL || ref->status != xmlSecDSigStatusSucceeded || buffer == NULL) {
                    rc = -1;
                } else {
                    sink(sink_ctx, xmlSecBufferGetData(buffer),
                         (unsigned int)xmlSecBufferGetSize(buffer));
                }
            }
        }
    }
    xmlSecDSigCtxDestroy(ctx);
    return rc;
}

/* Verifies every ds:Signature of the document `xml` with one of `keys` each. 1: every
   signature verified (their references' pre-digest bytes given to `sink`, signature by
   signature); 0: a signature no key verifies, or none at all; -1: unreadable input. */
int identity_dsig_verify(const char *xml, int len, xmlSecKeyPtr *keys, int nkeys,
                         identity_dsig_sink sink, void *sink_ctx) {
    xmlDocPtr doc = xmlReadMemory(xml, len, NULL, NULL, XML_PARSE_NONET);
    if (doc == NULL) {
        return -1;
    }
    int rc = -1;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    xmlNodePtr signatures[8];
    int count = root != NULL && register_ids(doc, root) == 0
                    ? find_signatures(root, signatures, 0, 8)
                    : -1;
    if (count == 0) {
        rc = 0;
    } else if (count > 0) {
        rc = 1;
        for (int s = 0; s < count && rc == 1; s++) {
            int verified = 0;
            for (int k = 0; k < nkeys && verified == 0; k++) {
                verified = verify_one(signatures[s], keys[k], sink, sink_ctx);
            }
            rc = verified;
        }
    }
    xmlFreeDoc(doc);
    return rc;
}
