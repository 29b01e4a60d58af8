//! SAML 2.0 Web Browser SSO, service-provider side, over samael + libxmlsec1.
//!
//! INTERFACE DRAFT (being implemented): the routes in `lib.rs` only use what is declared
//! here. Bodies marked `unimplemented!` are filled in by the SAML core work.

use identity_shared::idps::Idp;
use identity_shared::secrets::SamlSpKeys;

/// Our side: entityID `{base}/sso/metadata`, ACS `{base}/sso/acs`.
#[derive(Debug, Clone)]
pub struct Sp {
    pub entity_id: String,
    pub acs_url: String,
}

impl Sp {
    pub fn from_base_url(base: &str) -> Sp {
        let base = base.trim_end_matches('/');
        Sp {
            entity_id: format!("{base}/sso/metadata"),
            acs_url: format!("{base}/sso/acs"),
        }
    }
}

/// What a valid response proves, read only from signed, verified elements.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The Assertion's ID (the replay cache key).
    pub assertion_id: String,
    /// The latest instant the assertion is usable (its NotOnOrAfter); the replay record
    /// lives at least until then (plus skew).
    pub valid_until: i64,
    pub name_id: String,
    /// The person's email: NameID when it is an email address, else the email attribute.
    pub email: String,
    /// InResponseTo of the verified response (None for IdP-initiated).
    pub in_response_to: Option<String>,
    pub authn_context: Option<String>,
}

/// Fields read from an unverified response, used only to pick the IdP and the stored
/// request; everything is checked again on the verified content.
#[derive(Debug, Clone)]
pub struct Routing {
    pub issuer: String,
    pub in_response_to: Option<String>,
}

/// Why a response was refused. `reason()` goes to the log (never assertion content);
/// `user_message()` to the error page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Malformed,
    /// DOCTYPE / entity declarations.
    Doctype,
    UnsupportedEncoding,
    NotSigned,
    /// Signed, but not by a certificate registered for the IdP (or the signature is bad).
    UntrustedSignature,
    /// SHA-1 or another algorithm below RSA-SHA256.
    WeakAlgorithm,
    AssertionCount,
    WrongIssuer,
    WrongDestination,
    WrongRecipient,
    WrongAudience,
    Expired,
    NotYetValid,
    InResponseToMismatch,
    /// Unknown, expired or already used AuthnRequest.
    UnknownRequest,
    UnsolicitedNotAllowed,
    MfaRequired,
    NoEmail,
    StatusNotSuccess,
    UnknownIdp,
    Replayed,
}

impl Refusal {
    pub fn reason(&self) -> &'static str {
        unimplemented!()
    }
    pub fn user_message(&self) -> &'static str {
        unimplemented!()
    }
}

/// Base64 (POST binding) → XML text, with a size cap, no DOCTYPE, UTF-8 only.
pub fn decode_post(saml_response: &str) -> Result<String, Refusal> {
    let _ = saml_response;
    unimplemented!()
}

/// Issuer and InResponseTo, read without trust, to find the IdP and the request.
pub fn routing(xml: &str) -> Result<Routing, Refusal> {
    let _ = xml;
    unimplemented!()
}

/// Full validation against one IdP. `expected_request`: the ID of our stored
/// AuthnRequest (SP-initiated) or None (IdP-initiated, refused unless the IdP allows it).
/// MFA is checked here when the IdP requires it. Replay is the caller's (store) job.
pub fn validate(
    xml: &str,
    idp: &Idp,
    sp: &Sp,
    expected_request: Option<&str>,
    now: i64,
) -> Result<Verified, Refusal> {
    let _ = (xml, idp, sp, expected_request, now);
    unimplemented!()
}

/// An AuthnRequest for the HTTP-Redirect binding: (request ID, full redirect URL with
/// SAMLRequest, RelayState and, when the IdP wants signed requests, SigAlg + Signature
/// made with the SP's current key).
pub fn authn_request_redirect(
    idp: &Idp,
    sp: &Sp,
    keys: &SamlSpKeys,
    relay_state: &str,
    now: i64,
) -> Result<(String, String), String> {
    let _ = (idp, sp, keys, relay_state, now);
    unimplemented!()
}

/// SP metadata XML: entityID, ACS (POST binding), signing certificate(s).
pub fn sp_metadata(sp: &Sp, keys: &SamlSpKeys) -> String {
    let _ = (sp, keys);
    unimplemented!()
}

/// What `identity admin idp add --metadata FILE` reads from IdP metadata.
#[derive(Debug, Clone)]
pub struct IdpMetadata {
    pub entity_id: String,
    pub sso_url: String,
    pub certificates: Vec<String>,
    pub want_authn_requests_signed: bool,
}

pub fn parse_idp_metadata(xml: &str) -> Result<IdpMetadata, String> {
    let _ = xml;
    unimplemented!()
}

/// A SAML IdP that signs Responses with a real XML-DSig implementation (libxmlsec1 through
/// samael): the local development IdP of `identity serve` and the test suite's IdP. Never
/// routed in a Lambda.
#[cfg(feature = "idp-signer")]
pub mod idp_signer {
    /// Which elements carry an enveloped signature.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Sign {
        Response,
        Assertion,
        Both,
    }

    /// One Response with one Assertion, as an IdP would send it.
    #[derive(Debug, Clone)]
    pub struct ResponseSpec {
        pub issuer: String,
        pub destination: String,
        pub audience: String,
        pub recipient: String,
        /// NameID, format emailAddress.
        pub email: String,
        pub in_response_to: Option<String>,
        pub authn_context: Option<String>,
        pub now: i64,
        /// NotOnOrAfter = now + lifetime_secs; NotBefore = now.
        pub lifetime_secs: i64,
        pub sign: Sign,
    }

    /// RSA-2048 key + self-signed certificate.
    pub struct IdpSigner {/* filled in by the SAML core work */}

    impl IdpSigner {
        pub fn generate(common_name: &str) -> Result<Self, String> {
            let _ = common_name;
            unimplemented!()
        }
        pub fn from_pem(key_pem: &str, cert_pem: &str) -> Result<Self, String> {
            let _ = (key_pem, cert_pem);
            unimplemented!()
        }
        pub fn key_pem(&self) -> &str {
            unimplemented!()
        }
        pub fn cert_pem(&self) -> &str {
            unimplemented!()
        }
        /// Base64 DER, as `Idp::certificates` holds it.
        pub fn certificate_base64(&self) -> String {
            unimplemented!()
        }
        /// The signed Response XML (not yet base64).
        pub fn response(&self, spec: &ResponseSpec) -> Result<String, String> {
            let _ = spec;
            unimplemented!()
        }
    }
}
