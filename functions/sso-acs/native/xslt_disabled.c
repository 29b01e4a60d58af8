/*
 * The twelve libxslt entry points that libxmlsec1 references, for a link without libxslt
 * (Debian ships no libxslt.a, and AL2023 has no libxslt.so).
 *
 * SAML signatures never use the XSLT transform (the SAML profiles allow only enveloped
 * signature and exclusive canonicalization), so every XSLT operation here fails: a
 * signature whose references ask for XSLT does not verify. Nothing is transformed, nothing
 * is read from disk or the network. Built into libxslt.a by sso-acs's build.rs, which puts
 * it ahead of the system libraries so the `-lxslt` that pkg-config reports resolves here.
 */
#include <stdio.h>
#include <libxslt/xsltInternals.h>
#include <libxslt/security.h>
#include <libxslt/transform.h>
#include <libxslt/xsltutils.h>

/* One object stands for every set of security preferences: there is nothing to configure,
 * since no stylesheet ever runs. */
static char disabled_prefs;

xsltSecurityPrefsPtr xsltNewSecurityPrefs(void) {
    return (xsltSecurityPrefsPtr)&disabled_prefs;
}

void xsltFreeSecurityPrefs(xsltSecurityPrefsPtr sec) {
    (void)sec;
}

int xsltSetSecurityPrefs(xsltSecurityPrefsPtr sec, xsltSecurityOption option,
                         xsltSecurityCheck func) {
    (void)sec;
    (void)option;
    (void)func;
    return 0;
}

int xsltSecurityForbid(xsltSecurityPrefsPtr sec, xsltTransformContextPtr ctxt,
                       const char *value) {
    (void)sec;
    (void)ctxt;
    (void)value;
    return 0; /* 0: the operation is forbidden */
}

xsltSecurityCheck xsltGetSecurityPrefs(xsltSecurityPrefsPtr sec, xsltSecurityOption option) {
    (void)sec;
    (void)option;
    return xsltSecurityForbid;
}

int xsltSetCtxtSecurityPrefs(xsltSecurityPrefsPtr sec, xsltTransformContextPtr ctxt) {
    (void)sec;
    (void)ctxt;
    return -1;
}

xsltStylesheetPtr xsltParseStylesheetDoc(xmlDocPtr doc) {
    (void)doc;
    return NULL; /* the XSLT transform is not available */
}

void xsltFreeStylesheet(xsltStylesheetPtr style) {
    (void)style;
}

xsltTransformContextPtr xsltNewTransformContext(xsltStylesheetPtr style, xmlDocPtr doc) {
    (void)style;
    (void)doc;
    return NULL;
}

void xsltFreeTransformContext(xsltTransformContextPtr ctxt) {
    (void)ctxt;
}

xmlDocPtr xsltApplyStylesheetUser(xsltStylesheetPtr style, xmlDocPtr doc, const char **params,
                                  const char *output, FILE *profile,
                                  xsltTransformContextPtr userCtxt) {
    (void)style;
    (void)doc;
    (void)params;
    (void)output;
    (void)profile;
    (void)userCtxt;
    return NULL;
}

int xsltSaveResultTo(xmlOutputBufferPtr buf, xmlDocPtr result, xsltStylesheetPtr style) {
    (void)buf;
    (void)result;
    (void)style;
    return -1;
}
