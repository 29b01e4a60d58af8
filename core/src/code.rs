//! The authorization-code exchange (RFC 6749 §4.1.3 with PKCE, RFC 7636 §4.6) as a rule.
//! The code was taken (consumed) before this runs; what was loaded with it is the code's
//! record and its grant. [`exchange`] decides whether tokens may be issued, and for what;
//! [`spent_op`] is the write that records the redemption, made with the tokens.

use serde::{Deserialize, Serialize};

use crate::grant::Grant;
use crate::ids::{AccountId, ClientId, GrantId, RedirectUri};
use crate::pkce;
use crate::scope::Scopes;
use crate::store::{Cond, Item, Op, StoreError, Table};

/// How long a redeemed code is remembered, so a second use can find and revoke its grant.
pub const SPENT_CODE_KEPT_SECS: i64 = 24 * 60 * 60;

/// What a code stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeGrant {
    pub client_id: ClientId,
    pub redirect_uri: RedirectUri,
    /// The `S256` PKCE challenge.
    pub code_challenge: String,
    pub account_id: AccountId,
    /// Space-separated scopes.
    pub scope: String,
    pub gid: GrantId,
    pub issued_at: i64,
}

/// The record a redeemed code leaves behind: its grant, and the client that redeemed it
/// (only that client's second use revokes the grant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spent {
    pub gid: String,
    #[serde(default)]
    pub client_id: String,
}

pub fn spent_pk(code_hash: &str) -> String {
    format!("code#{code_hash}")
}

/// The operation that records a successful redemption by `client_id`; written with the
/// tokens it issues.
pub fn spent_op(code_hash: &str, gid: &str, client_id: &str, now: i64) -> Result<Op, StoreError> {
    Ok(Op::Put {
        table: Table::OAuth,
        item: Item::new(
            spent_pk(code_hash),
            "spent",
            &Spent {
                gid: gid.to_string(),
                client_id: client_id.to_string(),
            },
        )?
        .expiring(now + SPENT_CODE_KEPT_SECS),
        cond: Cond::Absent,
    })
}

/// What the client presented with the code (its authentication already checked).
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub code_verifier: &'a str,
}

/// Why no tokens are issued. Each is `invalid_grant` (RFC 6749 §5.2) with this text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    OtherClient,
    RedirectUri,
    Verifier,
    Revoked,
    /// The stored scope does not parse (our fault, not the client's).
    Corrupt,
}

impl Refusal {
    pub fn description(self) -> &'static str {
        match self {
            Refusal::OtherClient => "the authorization code was issued to another client",
            Refusal::RedirectUri => "redirect_uri does not match the authorization request",
            Refusal::Verifier => "code_verifier does not match the code_challenge",
            Refusal::Revoked => "the authorization was revoked",
            Refusal::Corrupt => "the authorization code's record is unreadable",
        }
    }
}

/// What to issue: access (and refresh) tokens for the account, on this grant, with these
/// scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub account_id: AccountId,
    /// The code's grant, live and this client's.
    pub grant: Grant,
    pub scopes: Scopes,
}

/// The rule: the code was issued to this client, for this redirect URI (exactly), the
/// verifier hashes to its challenge, and its grant is live and this client's.
pub fn exchange(
    presented: Presented<'_>,
    code: &CodeGrant,
    grant: Option<Grant>,
) -> Result<Issue, Refusal> {
    if code.client_id != presented.client_id {
        return Err(Refusal::OtherClient);
    }
    if code.redirect_uri != presented.redirect_uri {
        return Err(Refusal::RedirectUri);
    }
    if !pkce::verify_s256(presented.code_verifier, &code.code_challenge) {
        return Err(Refusal::Verifier);
    }
    let grant = grant
        .filter(|g| g.gid == code.gid && g.serves(presented.client_id))
        .ok_or(Refusal::Revoked)?;
    let scopes = Scopes::parse(&code.scope).map_err(|_| Refusal::Corrupt)?;
    Ok(Issue {
        account_id: code.account_id.clone(),
        grant,
        scopes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn code() -> CodeGrant {
        CodeGrant {
            client_id: "c".into(),
            redirect_uri: "https://app.example.com/cb".into(),
            code_challenge: CHALLENGE.into(),
            account_id: "a".into(),
            scope: "identity read".into(),
            gid: "g".into(),
            issued_at: 0,
        }
    }

    fn grant(client_id: &str, revoked: bool) -> Grant {
        Grant {
            gid: "g".into(),
            client_id: client_id.into(),
            account_id: "a".into(),
            scope: "identity read".into(),
            created_at: 0,
            updated_at: 0,
            revoked_at: revoked.then_some(1),
            version: 1,
        }
    }

    fn presented<'a>(
        client_id: &'a str,
        redirect_uri: &'a str,
        verifier: &'a str,
    ) -> Presented<'a> {
        Presented {
            client_id,
            redirect_uri,
            code_verifier: verifier,
        }
    }

    const CB: &str = "https://app.example.com/cb";

    #[test]
    fn a_code_bound_to_client_redirect_and_verifier_issues_on_its_live_grant() {
        let issue = exchange(
            presented("c", CB, VERIFIER),
            &code(),
            Some(grant("c", false)),
        )
        .unwrap();
        assert_eq!(issue.grant.gid, "g");
        assert_eq!(issue.account_id, "a");
        assert_eq!(issue.scopes.to_string(), "identity read");
    }

    #[test]
    fn a_code_of_another_client_is_refused() {
        let r = exchange(
            presented("d", CB, VERIFIER),
            &code(),
            Some(grant("c", false)),
        );
        assert_eq!(r, Err(Refusal::OtherClient));
    }

    #[test]
    fn the_redirect_uri_must_match_exactly() {
        for other in [
            "https://app.example.com/cb/",
            "https://app.example.com/CB",
            "https://app.example.com/cb?x=1",
        ] {
            let r = exchange(
                presented("c", other, VERIFIER),
                &code(),
                Some(grant("c", false)),
            );
            assert_eq!(r, Err(Refusal::RedirectUri), "{other}");
        }
    }

    #[test]
    fn a_wrong_or_malformed_verifier_is_refused() {
        for v in ["dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj", "short", ""] {
            let r = exchange(presented("c", CB, v), &code(), Some(grant("c", false)));
            assert_eq!(r, Err(Refusal::Verifier), "{v}");
        }
    }

    #[test]
    fn a_revoked_missing_or_foreign_grant_issues_nothing() {
        for g in [None, Some(grant("c", true)), Some(grant("d", false))] {
            let r = exchange(presented("c", CB, VERIFIER), &code(), g.clone());
            assert_eq!(r, Err(Refusal::Revoked), "{g:?}");
        }
    }

    #[test]
    fn the_spent_record_names_grant_and_client_for_a_day() {
        let Op::Put { table, item, cond } = spent_op("h", "g", "c", 100).unwrap() else {
            panic!("a put")
        };
        assert_eq!(table, Table::OAuth);
        assert_eq!(cond, Cond::Absent);
        assert_eq!(item.pk, "code#h");
        assert_eq!(item.expires_at, Some(100 + SPENT_CODE_KEPT_SECS));
        let spent: Spent = item.parse().unwrap();
        assert_eq!(
            spent,
            Spent {
                gid: "g".into(),
                client_id: "c".into()
            }
        );
    }
}
