//! A registered SAML identity provider, as stored (`idp#{id}` / `idp` in the accounts
//! table; `identity-shared`'s `idps` keeps the registry) and as the rules see it: which
//! email domains it owns, which authentication contexts count as MFA.

use serde::{Deserialize, Serialize};

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
    /// The IdP's SingleLogoutService for the HTTP-Redirect binding (`--slo-url` or its
    /// metadata): where our LogoutRequests and LogoutResponses go. None: no Single Logout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_url: Option<String>,
    /// Registered signing certificates, base64 DER (several during a rollover). Never empty.
    pub certificates: Vec<String>,
    /// Email domains (lowercase) whose users this IdP signs in.
    #[serde(default)]
    pub domains: Vec<String>,
    /// The team (by name) this IdP is connected to (`--team`): its people get the team's
    /// SSO default role as `identity_core::org` says. None: no team role. Nothing is
    /// inferred from a name.
    #[serde(default)]
    pub team: Option<String>,
    /// The enterprise account (by name) this IdP is connected to (`--enterprise`): its
    /// people who are not members join with `view`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enterprise: Option<String>,
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
    /// Registered with `--insecure-any-domain`: it may sign in emails of domains that no IdP
    /// owns (new accounts only; it never takes over an existing one). Off for every real IdP.
    #[serde(default)]
    pub any_domain: bool,
    /// The development IdP of `identity serve`: refused everywhere else.
    #[serde(default)]
    pub development: bool,
    /// Made anew each time an IdP is registered: accounts remember the generation they came
    /// under, so an id removed and registered again (perhaps by another organisation)
    /// inherits no account, even if releasing them was cut short.
    #[serde(default)]
    pub generation: String,
    pub created_at: i64,
    /// Store version; not part of the record body.
    #[serde(skip)]
    pub version: i64,
}
crate::versioned!(Idp);

impl Idp {
    /// Does this IdP own the (lowercase) email domain? Exact match: no suffixes, and a
    /// subdomain only when it is listed itself.
    pub fn owns(&self, domain: &str) -> bool {
        self.domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
    }

    /// The AuthnContextClassRef values that count as MFA for this IdP.
    pub fn accepted_mfa_contexts(&self) -> Vec<&str> {
        if self.mfa_contexts.is_empty() {
            DEFAULT_MFA_CONTEXTS.to_vec()
        } else {
            self.mfa_contexts.iter().map(String::as_str).collect()
        }
    }

    /// The operator-facing JSON.
    pub fn public_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "entity_id": self.entity_id,
            "sso_url": self.sso_url,
            "slo_url": self.slo_url,
            "certificates": self.certificates.len(),
            "domains": self.domains,
            "team": self.team,
            "enterprise": self.enterprise,
            "allow_idp_initiated": self.allow_idp_initiated,
            "require_mfa": self.require_mfa,
            "mfa_contexts": self.accepted_mfa_contexts(),
            "want_authn_requests_signed": self.want_authn_requests_signed,
            "insecure_any_domain": self.any_domain,
            "development": self.development,
            "created_at": crate::clock::rfc3339(self.created_at),
        })
    }
}

impl crate::account::IdpRef for Idp {
    fn idp_id(&self) -> &str {
        &self.id
    }
    fn idp_generation(&self) -> &str {
        &self.generation
    }
}
