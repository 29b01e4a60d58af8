//! The signature: the shape we accept (checked on the raw message before libxmlsec1 runs),
//! the cryptographic check against the IdP's registered certificates only, and the
//! verified bytes handed back for reading.
//!
//! Shape: every `ds:Signature` is an enveloped signature that is a direct child of the
//! element it signs, with one Reference `#ID-of-that-parent`; that parent is the root
//! Response or an Assertion directly under it; nothing but SignedInfo, SignatureValue and
//! KeyInfo inside a Signature; no SAML element under a Signature; every Assertion is
//! covered by a signature; IDs are unique. This refuses XML signature wrapping (XSW1–8)
//! before any cryptography runs, and the caller reads only xmlsec's pre-digest bytes, the
//! exact canonical form the signature covers, so even a shape we failed to foresee cannot
//! make unsigned content count.
//!
//! Crypto: libxmlsec1 with the registered certificates as the only keys (xmlsec is given
//! the key; a KeyInfo certificate in the message is never used), the algorithms pinned by
//! the shape check; it verifies every Signature in the document or fails. The keys are
//! made once per certificate and kept (`native/dsig_verify.c`).

use std::collections::HashSet;
use std::sync::Once;

use base64::Engine;
use roxmltree::{Document, Node};
use samael::crypto::AllowedSignatureAlgorithm;

use super::Refusal;
use super::xml::{
    self, NS_ASSERTION, NS_DSIG, NS_PROTOCOL, children, is, only_child, optional_child,
};

/// Signature algorithms accepted (xmlsec is told the same list).
const ALLOWED: &[AllowedSignatureAlgorithm] = &[
    AllowedSignatureAlgorithm::RsaSha256,
    AllowedSignatureAlgorithm::RsaSha384,
    AllowedSignatureAlgorithm::RsaSha512,
    AllowedSignatureAlgorithm::EcdsaSha256,
    AllowedSignatureAlgorithm::EcdsaSha384,
    AllowedSignatureAlgorithm::EcdsaSha512,
];

const DIGESTS: &[&str] = &[
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
];

const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

/// Canonicalizations accepted for SignedInfo and as Reference transforms.
const C14N: &[&str] = &[
    "http://www.w3.org/2001/10/xml-exc-c14n#",
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments",
    "http://www.w3.org/2006/12/xml-c14n11",
    "http://www.w3.org/2006/12/xml-c14n11#WithComments",
];

/// Which elements carry a (shape-checked) signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Signed {
    pub response: bool,
    pub assertion: bool,
}

/// Algorithms and shape of every Signature in the raw message. `root` is the Response.
pub(crate) fn check_shape(doc: &Document, root: Node) -> Result<Signed, Refusal> {
    let signatures: Vec<Node> = doc
        .descendants()
        .filter(|n| is(*n, NS_DSIG, "Signature"))
        .collect();
    if signatures.is_empty() {
        return Err(Refusal::NotSigned);
    }
    for sig in &signatures {
        check_algorithms(*sig)?;
    }

    let mut ids = HashSet::new();
    for n in doc.descendants().filter(|n| n.is_element()) {
        if let Some(id) = n.attribute("ID")
            && !ids.insert(id)
        {
            return Err(Refusal::SignatureWrapping);
        }
    }

    let mut signed = Signed {
        response: false,
        assertion: false,
    };
    let mut signed_parents = HashSet::new();
    for sig in &signatures {
        let parent = sig.parent_element().ok_or(Refusal::SignatureWrapping)?;
        let parent_is_root = parent == root;
        let parent_is_assertion =
            is(parent, NS_ASSERTION, "Assertion") && parent.parent_element() == Some(root);
        if !(parent_is_root || parent_is_assertion) || !signed_parents.insert(parent.id()) {
            return Err(Refusal::SignatureWrapping);
        }
        let reference = only_reference(*sig)?;
        let target = parent.attribute("ID").ok_or(Refusal::SignatureWrapping)?;
        if reference.attribute("URI") != Some(&format!("#{target}")) {
            return Err(Refusal::SignatureWrapping);
        }
        // Nothing rides inside a Signature (XSW1, 6, 8 hide the signed original there).
        if sig.children().filter(|c| c.is_element()).any(|c| {
            !(is(c, NS_DSIG, "SignedInfo")
                || is(c, NS_DSIG, "SignatureValue")
                || is(c, NS_DSIG, "KeyInfo"))
        }) {
            return Err(Refusal::SignatureWrapping);
        }
        if sig.descendants().any(|d| {
            d.is_element()
                && matches!(
                    d.tag_name().namespace(),
                    Some(NS_ASSERTION) | Some(NS_PROTOCOL)
                )
        }) {
            return Err(Refusal::SignatureWrapping);
        }
        if parent_is_root {
            signed.response = true;
        } else {
            signed.assertion = true;
        }
    }

    // One Response only, at the root; every Assertion covered by a signature.
    for n in doc.descendants().filter(|n| n.is_element()) {
        if is(n, NS_PROTOCOL, "Response") && n != root {
            return Err(Refusal::SignatureWrapping);
        }
        if is(n, NS_ASSERTION, "Assertion") && !signed.response && !signed_parents.contains(&n.id())
        {
            return Err(Refusal::SignatureWrapping);
        }
    }
    Ok(signed)
}

fn only_reference<'a, 'i>(sig: Node<'a, 'i>) -> Result<Node<'a, 'i>, Refusal> {
    let info = only_child(sig, NS_DSIG, "SignedInfo").map_err(|_| Refusal::SignatureWrapping)?;
    only_child(info, NS_DSIG, "Reference").map_err(|_| Refusal::SignatureWrapping)
}

fn algorithm<'a>(node: Node<'a, '_>, name: &'static str) -> Result<&'a str, Refusal> {
    only_child(node, NS_DSIG, name)
        .ok()
        .and_then(|n| n.attribute("Algorithm"))
        .ok_or(Refusal::Malformed)
}

fn check_algorithms(sig: Node) -> Result<(), Refusal> {
    let info = only_child(sig, NS_DSIG, "SignedInfo")?;
    if !C14N.contains(&algorithm(info, "CanonicalizationMethod")?) {
        return Err(Refusal::WeakAlgorithm);
    }
    let method = algorithm(info, "SignatureMethod")?;
    if !ALLOWED.iter().any(|a| a.signature_uri() == method) {
        return Err(Refusal::WeakAlgorithm);
    }
    for reference in children(info, NS_DSIG, "Reference") {
        if !DIGESTS.contains(&algorithm(reference, "DigestMethod")?) {
            return Err(Refusal::WeakAlgorithm);
        }
        if let Some(transforms) = optional_child(reference, NS_DSIG, "Transforms")? {
            for t in transforms.children().filter(|c| c.is_element()) {
                let alg = t.attribute("Algorithm").unwrap_or("");
                if !is(t, NS_DSIG, "Transform") || !(alg == ENVELOPED || C14N.contains(&alg)) {
                    return Err(Refusal::WeakAlgorithm);
                }
            }
        }
    }
    Ok(())
}

/// The registered certificates (base64, whitespace allowed) as DER; what is not base64 is
/// left out. Whether each is an X.509 certificate is up to the caller.
pub(crate) fn registered(certificates: &[String]) -> impl Iterator<Item = Vec<u8>> + '_ {
    certificates.iter().filter_map(|b64| {
        let compact: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(compact)
            .ok()
    })
}

/// Verifies every signature with the registered certificates and returns the pre-digest
/// (canonical) bytes of the signed element: the Response when it is signed, else the
/// Assertion.
///
/// libxmlsec1 does the verification as samael's `reduce_xml_to_signed` does (every
/// `ds:Signature`, each by one of the keys; the references' pre-digest bytes), through
/// `native/dsig_verify.c`, with each certificate's key made once per process and kept:
/// made per call (samael's way) it cost more than the rest of the check.
pub(crate) fn verified_texts(xml: &str, certificates: &[String]) -> Result<Vec<String>, Refusal> {
    init_xml_libraries();
    if !xmlsec_ready() {
        return Err(Refusal::UntrustedSignature);
    }
    let keys: Vec<_> = registered(certificates)
        .filter_map(|der| keys::key(&der))
        .collect();
    if keys.is_empty() {
        return Err(Refusal::UntrustedSignature);
    }
    let predigests = keys::verify(xml, &keys).ok_or(Refusal::UntrustedSignature)?;
    predigests
        .into_iter()
        .map(String::from_utf8)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Refusal::UntrustedSignature)
}

/// The verified document to read, each signed text parsed at most once: the only one, or
/// of several (Response and Assertion both signed) the one Response.
pub(crate) fn verified_document(texts: &[String]) -> Result<Document<'_>, Refusal> {
    if let [only] = texts {
        return xml::parse(only).map_err(|_| Refusal::SignatureWrapping);
    }
    let mut responses = texts
        .iter()
        .filter_map(|t| xml::parse(t).ok())
        .filter(|d| is(d.root_element(), NS_PROTOCOL, "Response"));
    match (responses.next(), responses.next()) {
        (Some(r), None) => Ok(r),
        _ => Err(Refusal::SignatureWrapping),
    }
}

/// libxmlsec1 is initialised, once per process, by samael (its known-answer test of the
/// self-test assertion); if that fails, nothing verifies.
fn xmlsec_ready() -> bool {
    static READY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *READY.get_or_init(super::selftest::samael_known_answer)
}

/// The verification keys, one per certificate, made once and kept for the process.
mod keys {
    use std::collections::HashMap;
    use std::ffi::{c_char, c_int, c_uint, c_void};
    use std::sync::{Arc, Mutex, OnceLock};

    #[repr(C)]
    struct XmlSecKey {
        _private: [u8; 0],
    }

    unsafe extern "C" {
        fn identity_dsig_key_from_cert(der: *const u8, len: c_uint) -> *mut XmlSecKey;
        fn identity_dsig_key_free(key: *mut XmlSecKey);
        fn identity_dsig_verify(
            xml: *const c_char,
            len: c_int,
            keys: *const *mut XmlSecKey,
            nkeys: c_int,
            sink: extern "C" fn(*mut c_void, *const u8, c_uint),
            sink_ctx: *mut c_void,
        ) -> c_int;
    }

    /// A key libxmlsec1 made from one certificate. It is only ever read (each verification
    /// works on a duplicate, a reference count), so threads share it.
    pub(super) struct Key(*mut XmlSecKey);

    // SAFETY: the pointer is owned by this value, freed once in Drop, and never written
    // through after creation: libxmlsec1 duplicates it for each verification.
    unsafe impl Send for Key {}
    // SAFETY: as above; shared use only reads the key.
    unsafe impl Sync for Key {}

    impl Drop for Key {
        fn drop(&mut self) {
            // SAFETY: made by identity_dsig_key_from_cert, freed only here.
            unsafe { identity_dsig_key_free(self.0) }
        }
    }

    /// Keys kept at most: certificates in use are few; past this the cache starts over.
    const MAX_KEYS: usize = 64;

    /// The key of a certificate (DER), made on first use; None when it is not an X.509
    /// certificate or libxmlsec1 cannot read it.
    pub(super) fn key(der: &[u8]) -> Option<Arc<Key>> {
        static KEYS: OnceLock<Mutex<HashMap<Vec<u8>, Arc<Key>>>> = OnceLock::new();
        let mut keys = KEYS.get_or_init(Default::default).lock().ok()?;
        if let Some(k) = keys.get(der) {
            return Some(k.clone());
        }
        x509_parser::parse_x509_certificate(der).ok()?;
        let len = c_uint::try_from(der.len()).ok()?;
        // SAFETY: `der` is a live slice of `len` bytes; the result is null or a new key.
        let raw = unsafe { identity_dsig_key_from_cert(der.as_ptr(), len) };
        if raw.is_null() {
            return None;
        }
        if keys.len() >= MAX_KEYS {
            keys.clear();
        }
        let key = Arc::new(Key(raw));
        keys.insert(der.to_vec(), key.clone());
        Some(key)
    }

    extern "C" fn collect(ctx: *mut c_void, data: *const u8, len: c_uint) {
        // SAFETY: `ctx` is the `Vec` passed by `verify` below, alive for the whole call;
        // `data` points to `len` bytes libxmlsec1 owns until this returns.
        unsafe {
            let out = &mut *(ctx as *mut Vec<Vec<u8>>);
            let bytes = if len == 0 {
                &[][..]
            } else {
                std::slice::from_raw_parts(data, len as usize)
            };
            out.push(bytes.to_vec());
        }
    }

    /// Every signature of `xml` verified by one of `keys`: the pre-digest bytes of each
    /// verified reference, signature by signature. None: a signature that none verifies, no
    /// signature, or unreadable input.
    pub(super) fn verify(xml: &str, keys: &[Arc<Key>]) -> Option<Vec<Vec<u8>>> {
        let raw: Vec<*mut XmlSecKey> = keys.iter().map(|k| k.0).collect();
        let mut out: Vec<Vec<u8>> = Vec::new();
        // SAFETY: the text, the key array and `out` outlive the call; `collect` is given
        // `out` back as its context.
        let rc = unsafe {
            identity_dsig_verify(
                xml.as_ptr() as *const c_char,
                c_int::try_from(xml.len()).ok()?,
                raw.as_ptr(),
                c_int::try_from(raw.len()).ok()?,
                collect,
                &mut out as *mut Vec<Vec<u8>> as *mut c_void,
            )
        };
        (rc == 1 && !out.is_empty()).then_some(out)
    }
}

/// Once per process, before any XML work: libxml2 2.9 wants its global initialisation done
/// before threads parse, and libxmlsec1's default error callback must not print to stderr
/// (its messages can name nodes and reference URIs of the message; the route logs
/// `Refusal::reason()` instead).
pub(crate) fn init_xml_libraries() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // SAFETY: both take plain integers or nothing, have no preconditions, and only set
        // process-wide flags; Once runs them on one thread before any other XML call here.
        unsafe {
            libxml::bindings::xmlInitParser();
            ffi::xmlSecErrorsDefaultCallbackEnableOutput(0);
        }
    });
}

mod ffi {
    // libxmlsec1, linked by samael's build script.
    unsafe extern "C" {
        pub fn xmlSecErrorsDefaultCallbackEnableOutput(enabled: std::os::raw::c_int);
    }
}
