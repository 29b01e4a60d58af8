//! A registered SAML identity provider, as stored (`idp#{id}` / `idp` in the accounts
//! table; `identity-shared`'s `idps` keeps the registry) and as the rules see it: which
//! email domains it owns, which authentication contexts count as MFA.

use serde::{Deserialize, Serialize};

use crate::plan::Plan;
use crate::store::{Cond, Item, Op, StoreError, Table};

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

// The registry, in the accounts table: `idp#{id}` / `idp` (versioned), pointers from each
// owned domain (`idp-domain#{domain}` / `idp-domain`) and from the entity ID's hash
// (`idp-entity#{sha256}` / `idp-entity`), and one partition listing every SSO URL.

/// Why a registration or a change of an IdP was refused.
#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    #[error("an IdP with this id, entity ID or email domain is already registered")]
    Taken,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An IdP id: what `/sso/login?idp=` carries.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

pub fn idp_pk(id: &str) -> String {
    format!("idp#{id}")
}
pub fn domain_pk(domain: &str) -> String {
    format!("idp-domain#{domain}")
}
pub fn entity_pk(entity_id: &str) -> String {
    // Entity IDs are URLs or URNs of any length; the key holds their hash.
    format!(
        "idp-entity#{}",
        crate::digest::sha256_hex(entity_id.as_bytes())
    )
}

/// What a domain or entity-ID pointer holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdpPointer {
    pub idp: String,
}

/// One partition listing every IdP's SSO URL, so the sign-in page can name them in its
/// `form-action` with one query (never a table scan, which is for operator listings).
pub const SSO_URLS_PK: &str = "idp-sso-urls";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SsoUrl {
    pub sso_url: String,
}

fn sso_url_op(idp: &Idp) -> Result<Op, StoreError> {
    let url = SsoUrl {
        sso_url: idp.sso_url.clone(),
    };
    Ok(Op::Put {
        table: Table::Accounts,
        item: Item::new(SSO_URLS_PK, format!("sso#{}", idp.id), &url)?,
        cond: Cond::Always,
    })
}

fn no_certificates() -> IdpError {
    IdpError::Invalid("an IdP needs at least one signing certificate".into())
}

/// Registers `idp` under a new `generation` (version 1): its record and its entity-ID and
/// domain pointers are all new, so a taken id, entity ID or domain is a conflict
/// ([`IdpError::Taken`]). The SSO URL is checked by the caller (it is a URL rule).
pub fn register(idp: &Idp, generation: String) -> Result<Plan<Idp>, IdpError> {
    let idp = Idp {
        generation,
        version: 1,
        ..idp.clone()
    };
    if !valid_id(&idp.id) {
        return Err(IdpError::Invalid(
            "IdP ids are 1-64 characters of a-z, 0-9, - and _".into(),
        ));
    }
    if idp.certificates.is_empty() {
        return Err(no_certificates());
    }
    let pointer = || IdpPointer {
        idp: idp.id.clone(),
    };
    let mut ops = vec![
        Op::Put {
            table: Table::Accounts,
            item: Item::new(idp_pk(&idp.id), "idp", &idp)?.with_version(1),
            cond: Cond::Absent,
        },
        Op::Put {
            table: Table::Accounts,
            item: Item::new(entity_pk(&idp.entity_id), "idp-entity", &pointer())?,
            cond: Cond::Absent,
        },
        sso_url_op(&idp)?,
    ];
    for d in &idp.domains {
        ops.push(Op::Put {
            table: Table::Accounts,
            item: Item::new(domain_pk(d), "idp-domain", &pointer())?,
            cond: Cond::Absent,
        });
    }
    Ok(Plan::write(ops, idp))
}

/// The IdP (as loaded) with new signing certificates, never none; a conflict is a change
/// made meanwhile. Its SSO URL entry is written again (IdPs registered before it existed).
pub fn set_certificates(idp: &Idp, certificates: Vec<String>) -> Result<Plan<Idp>, IdpError> {
    if certificates.is_empty() {
        return Err(no_certificates());
    }
    let next = Idp {
        certificates,
        version: idp.version + 1,
        ..idp.clone()
    };
    let item = Item::new(idp_pk(&idp.id), "idp", &next)?.with_version(next.version);
    let ops = vec![
        Op::Put {
            table: Table::Accounts,
            item,
            cond: Cond::Version(idp.version),
        },
        sso_url_op(&next)?,
    ];
    Ok(Plan::write(ops, next))
}

/// The IdP (as loaded) and its pointers go; a conflict is a change made meanwhile. Its
/// accounts are released after, each in its own write (`crate::account::Change::Release`).
pub fn remove(idp: &Idp) -> Plan<()> {
    let delete = |pk: String, sk: &str, cond| Op::Delete {
        table: Table::Accounts,
        pk,
        sk: sk.into(),
        cond,
    };
    let mut ops = vec![
        delete(idp_pk(&idp.id), "idp", Cond::Version(idp.version)),
        delete(entity_pk(&idp.entity_id), "idp-entity", Cond::Always),
        delete(SSO_URLS_PK.into(), &format!("sso#{}", idp.id), Cond::Always),
    ];
    for d in &idp.domains {
        ops.push(delete(domain_pk(d), "idp-domain", Cond::Always));
    }
    Plan::write(ops, ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Idp {
        Idp {
            id: "okta".into(),
            entity_id: "https://idp.example.com".into(),
            sso_url: "https://idp.example.com/sso".into(),
            slo_url: None,
            certificates: vec!["MIIB".into()],
            domains: vec!["example.com".into(), "example.org".into()],
            team: None,
            enterprise: None,
            allow_idp_initiated: false,
            require_mfa: false,
            mfa_contexts: Vec::new(),
            want_authn_requests_signed: false,
            any_domain: false,
            development: false,
            generation: String::new(),
            created_at: 0,
            version: 0,
        }
    }

    #[test]
    fn an_idp_id_is_short_lowercase_and_plain() {
        assert!(valid_id("okta-prod_1"));
        for bad in ["", "Okta", "a b", "a/b", &"a".repeat(65)] {
            assert!(!valid_id(bad), "{bad:?}");
            let idp = Idp {
                id: bad.to_string(),
                ..sample()
            };
            assert!(matches!(
                register(&idp, "g".into()),
                Err(IdpError::Invalid(_))
            ));
        }
    }

    #[test]
    fn an_idp_always_has_a_signing_certificate() {
        let none = Idp {
            certificates: Vec::new(),
            ..sample()
        };
        assert!(matches!(
            register(&none, "g".into()),
            Err(IdpError::Invalid(_))
        ));
        assert!(matches!(
            set_certificates(&sample(), Vec::new()),
            Err(IdpError::Invalid(_))
        ));
    }

    #[test]
    fn registering_claims_the_id_the_entity_id_and_every_domain_or_nothing() {
        let plan = register(&sample(), "gen-1".into()).unwrap();
        assert_eq!(plan.outcome.generation, "gen-1");
        assert_eq!(plan.outcome.version, 1);
        let claimed = plan
            .ops
            .iter()
            .filter(|op| {
                matches!(
                    op,
                    Op::Put {
                        cond: Cond::Absent,
                        ..
                    }
                )
            })
            .count();
        // The record, the entity ID and the two domains.
        assert_eq!(claimed, 4);
    }

    #[test]
    fn a_certificate_change_or_a_removal_holds_only_on_the_version_loaded() {
        let loaded = Idp {
            version: 3,
            ..sample()
        };
        let plan = set_certificates(&loaded, vec!["MIIC".into()]).unwrap();
        assert_eq!(plan.outcome.version, 4);
        assert!(matches!(
            plan.ops[0],
            Op::Put {
                cond: Cond::Version(3),
                ..
            }
        ));
        let gone = remove(&loaded);
        assert!(matches!(
            gone.ops[0],
            Op::Delete {
                cond: Cond::Version(3),
                ..
            }
        ));
        assert_eq!(gone.ops.len(), 5);
    }
}
