//! SAML 2.0 Web Browser SSO, service-provider side, over samael + libxmlsec1.
//!
//! - [`decode_post`] turns the POST binding's `SAMLResponse` into XML text: base64, a size
//!   cap, UTF-8 only, no DOCTYPE.
//! - [`routing`] reads the Issuer and InResponseTo without trust, only to find the IdP and
//!   the stored AuthnRequest.
//! - [`validate`] is the whole decision for one IdP, given `now` (no I/O): the signature is
//!   checked by libxmlsec1 (through samael) against the IdP's registered certificates only,
//!   with the algorithms pinned; everything the caller gets back is read from the bytes the
//!   signature covers (xmlsec's pre-digest canonical form), never from the rest of the
//!   message. Replay (an assertion ID seen before) is the caller's job through the store.
//! - [`authn_request_redirect`], [`sp_metadata`], [`parse_idp_metadata`]: the other
//!   messages of the profile.
//! - [`logout`]: Single Logout both ways ([`verify_logout`] for the IdP's messages, over
//!   either binding; [`logout_request_redirect`], [`logout_response_redirect`] for ours).
//! - [`self_test`]: the known-answer test of signature verification every process that
//!   verifies SAML runs before serving.
//! - [`idp_signer`] (feature `idp-signer`): a signing IdP for `identity serve` and the tests.
//!
//! Every check fails closed: what cannot be completed is a [`Refusal`].

mod logout;
mod metadata;
mod request;
mod selftest;
mod validate;
mod verify;
mod xml;

#[cfg(feature = "idp-signer")]
pub mod idp_signer;

pub use logout::{
    Incoming, Logout, logout_issuer, logout_request_redirect, logout_response_redirect,
    verify_logout,
};
pub use metadata::{parse_idp_metadata, sp_metadata};
pub use request::authn_request_redirect;
pub use selftest::self_test;
pub use validate::{MAX_ASSERTION_AGE_SECS, MAX_SKEW_SECS, routing, validate, validate_received};
pub use xml::{MAX_XML_BYTES, Received, decode_post, documents_parsed, receive};

/// Our side: entityID `{base}/sso/metadata`, ACS `{base}/sso/acs`, Single Logout
/// `{base}/sso/slo`.
#[derive(Debug, Clone)]
pub struct Sp {
    pub entity_id: String,
    pub acs_url: String,
    pub slo_url: String,
}

impl Sp {
    pub fn from_base_url(base: &str) -> Sp {
        let base = base.trim_end_matches('/');
        Sp {
            entity_id: format!("{base}/sso/metadata"),
            acs_url: format!("{base}/sso/acs"),
            slo_url: format!("{base}/sso/slo"),
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
    /// Trimmed and lowercased (`identity_shared::accounts::Email`).
    pub email: String,
    /// InResponseTo of the verified response (None for IdP-initiated).
    pub in_response_to: Option<String>,
    pub authn_context: Option<String>,
    /// The NameID's Format, NameQualifier and SPNameQualifier (Single Logout repeats them).
    pub name_id_format: Option<String>,
    pub name_qualifier: Option<String>,
    pub sp_name_qualifier: Option<String>,
    /// The AuthnStatement's SessionIndex: the IdP's session.
    pub session_index: Option<String>,
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
    /// Signed, but not by a certificate registered for the IdP (or the signature is bad,
    /// or the IdP has no registered certificate).
    UntrustedSignature,
    /// SHA-1 or another algorithm below RSA-SHA256 (signature, digest), or a
    /// canonicalization or transform outside the enveloped-signature profile.
    WeakAlgorithm,
    /// A signature that does not sit in, and cover exactly, the Response or its one
    /// Assertion; content outside every signature; signed content hidden in a Signature
    /// or elsewhere (XML signature wrapping).
    SignatureWrapping,
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
    /// A solicited response posted by a browser that did not start that login (login CSRF).
    OtherBrowser,
    /// The development IdP outside `identity serve`.
    DevelopmentIdp,
    /// IssueInstant older than the age bound, whatever NotOnOrAfter says.
    TooOld,
}

impl Refusal {
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed, oversized or incomplete SAML response",
            Refusal::Doctype => "DOCTYPE or entity declaration in SAML message",
            Refusal::UnsupportedEncoding => "SAML message not in UTF-8",
            Refusal::NotSigned => "SAML response not signed",
            Refusal::UntrustedSignature => {
                "signature invalid or not made by a registered IdP certificate"
            }
            Refusal::WeakAlgorithm => {
                "signature, digest, canonicalization or transform algorithm not allowed"
            }
            Refusal::SignatureWrapping => "signature does not cover the consumed elements",
            Refusal::AssertionCount => "not exactly one plain Assertion",
            Refusal::WrongIssuer => "Issuer is not the IdP's entityID",
            Refusal::WrongDestination => "Destination is not our ACS URL",
            Refusal::WrongRecipient => "bearer SubjectConfirmation Recipient is not our ACS URL",
            Refusal::WrongAudience => "Audience does not include our entityID",
            Refusal::Expired => "assertion expired (NotOnOrAfter passed beyond skew)",
            Refusal::NotYetValid => "assertion not yet valid (NotBefore ahead beyond skew)",
            Refusal::InResponseToMismatch => "InResponseTo does not match the AuthnRequest",
            Refusal::UnknownRequest => "AuthnRequest unknown, expired or already used",
            Refusal::UnsolicitedNotAllowed => "IdP-initiated response not allowed for this IdP",
            Refusal::MfaRequired => "AuthnContextClassRef is not an accepted MFA context",
            Refusal::NoEmail => "no email address in NameID or attributes",
            Refusal::StatusNotSuccess => "IdP status is not Success",
            Refusal::UnknownIdp => "Issuer is not a registered IdP",
            Refusal::Replayed => "assertion ID already used",
            Refusal::OtherBrowser => "InResponseTo names a login this browser did not start",
            Refusal::DevelopmentIdp => "development IdP outside identity serve",
            Refusal::TooOld => "IssueInstant older than 5 minutes plus skew",
        }
    }

    pub fn user_message(&self) -> &'static str {
        match self {
            Refusal::Malformed | Refusal::Doctype | Refusal::UnsupportedEncoding => {
                "The sign-in response from your organisation could not be read. Try signing in again."
            }
            Refusal::NotSigned
            | Refusal::UntrustedSignature
            | Refusal::WeakAlgorithm
            | Refusal::SignatureWrapping => {
                "The sign-in response from your organisation could not be verified. Try again, and ask your administrator to check the single sign-on set-up if it keeps happening."
            }
            Refusal::AssertionCount
            | Refusal::WrongIssuer
            | Refusal::WrongDestination
            | Refusal::WrongRecipient
            | Refusal::WrongAudience => {
                "The sign-in response from your organisation was not meant for this service. Ask your administrator to check the single sign-on set-up."
            }
            Refusal::Expired | Refusal::NotYetValid | Refusal::TooOld => {
                "The sign-in response has expired or is not valid yet. Sign in again; if it keeps happening, check your device's clock."
            }
            Refusal::InResponseToMismatch | Refusal::UnknownRequest => {
                "This sign-in response does not match a sign-in started here, or the sign-in took too long. Start again from the sign-in page."
            }
            Refusal::UnsolicitedNotAllowed => {
                "Signing in from your organisation's portal is not enabled for this service. Start from the sign-in page instead."
            }
            Refusal::MfaRequired => {
                "Your organisation requires multi-factor authentication for this sign-in. Sign in again with MFA."
            }
            Refusal::NoEmail => {
                "Your organisation did not send an email address for you. Ask your administrator to include it in the single sign-on set-up."
            }
            Refusal::StatusNotSuccess => {
                "Your organisation's sign-in service did not sign you in. Try again, or contact your administrator."
            }
            Refusal::UnknownIdp => {
                "This sign-in response comes from an organisation that is not set up for single sign-on here."
            }
            Refusal::Replayed => {
                "This sign-in response was already used. Start again from the sign-in page."
            }
            Refusal::OtherBrowser => {
                "This sign-in was started in another browser, or took too long. Start again from the sign-in page in this browser."
            }
            Refusal::DevelopmentIdp => {
                "The development identity provider works only in a local identity serve, never in a deployment."
            }
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

/// What `identity admin idp add --metadata FILE` reads from IdP metadata.
#[derive(Debug, Clone)]
pub struct IdpMetadata {
    pub entity_id: String,
    pub sso_url: String,
    /// The SingleLogoutService with the HTTP-Redirect binding, if any.
    pub slo_url: Option<String>,
    pub certificates: Vec<String>,
    pub want_authn_requests_signed: bool,
}
