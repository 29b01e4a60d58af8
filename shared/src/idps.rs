//! Identity providers for enterprise SAML SSO: registered by an operator
//! (`identity admin idp add`), picked at the login page by the email's domain.

use serde::{Deserialize, Serialize};

use crate::apps::Role;

/// AuthnContextClassRef values accepted as multi-factor when an IdP requires MFA and the
/// operator names none: the REFEDS MFA profile, Entra ID's (also what Okta sends when its
/// MFA policy is set to report it), and the SAML 2.0 classes that are multi-factor by
/// definition.
pub const DEFAULT_MFA_CONTEXTS: &[&str] = &[
    "https://refeds.org/profile/mfa",
    "http://schemas.microsoft.com/claims/multipleauthn",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorUnregistered",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI",
];

/// A registered SAML identity provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Idp {
    /// Operator-chosen id (`--id`), used in `/sso/login?idp=ID`.
    pub id: String,
    /// The IdP's entityID: the only accepted `Issuer`.
    pub entity_id: String,
    /// Where AuthnRequests go (HTTP-Redirect binding).
    pub sso_url: String,
    /// Registered signing certificates, base64 DER (several during a rollover). Never empty.
    pub certificates: Vec<String>,
    /// Email domains (lowercase) whose users this IdP signs in.
    #[serde(default)]
    pub domains: Vec<String>,
    /// The team (an app, by name) whose members this IdP's people are; defaults to the id.
    pub team: String,
    /// Role given on the IdP's team to a person signing in who holds none (or only
    /// `collaborator`).
    pub default_role: Role,
    /// Unsolicited (IdP-initiated) responses are accepted only when this is set.
    #[serde(default)]
    pub allow_idp_initiated: bool,
    #[serde(default)]
    pub require_mfa: bool,
    /// AuthnContextClassRef values that count as MFA (used when `require_mfa`).
    #[serde(default)]
    pub mfa_contexts: Vec<String>,
    /// The IdP's metadata asks for signed AuthnRequests.
    #[serde(default)]
    pub want_authn_requests_signed: bool,
    pub created_at: i64,
    /// Store version; not part of the record body.
    #[serde(skip)]
    pub version: i64,
}
crate::versioned!(Idp);
