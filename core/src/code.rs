//! The authorization-code exchange (RFC 6749 §4.1.3 with PKCE, RFC 7636 §4.6) as a rule.
//! [`exchange`] decides whether a live code's tokens may be issued, and for what;
//! [`redeem`] is the whole plan for a presented code: a live code is spent in the write that
//! records its redemption ([`spent_op`]) and stores its refresh token, or spent alone when
//! refused; a code redeemed before, presented again by its client, revokes the grant of its
//! first use in the same decision.

use serde::{Deserialize, Serialize};

use crate::digest;
use crate::grant::{self, Grant};
use crate::ids::{AccountId, ClientId, GrantId, RedirectUri};
use crate::pkce;
use crate::plan::Plan;
use crate::refresh::{self, RefreshRecord};
use crate::scope::Scopes;
use crate::store::{Cond, Item, Op, StoreError, Table, once};

/// The single-use kind codes are stored under: `oauth-code#{sha256(code)}` in `once`.
pub const KIND: &str = "oauth-code";

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

/// What is loaded for a presented code (by its hash).
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The live code and the version it was read at.
    pub live: Option<(CodeGrant, i64)>,
    /// What its redemption left, when it was redeemed (and no live code was found).
    pub spent: Option<Spent>,
    /// The grant the live code, or the redemption, names.
    pub grant: Option<Grant>,
}

/// What presenting a code comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// Tokens are issued: the refresh token's record is stored (its token is the caller's
    /// fresh one) and the code spent, in one write.
    Issued(Box<Issued>),
    /// The exchange is refused; the code is spent alone, so it cannot be tried again.
    Refused(Refusal),
    /// Redeemed before and presented again by its client: the grant of its first use (every
    /// token it issued) is revoked in the plan's write.
    Reused { gid: String },
    /// Redeemed before, presented by another client (it leaked: history, logs): merely
    /// invalid, so a spent code is no weapon against its owner. Nothing is revoked.
    SpentElsewhere,
    /// Unknown or expired, or spent without tokens (its exchange was refused).
    Invalid,
}

/// What an exchange issues: the access token's subject, grant and scopes, and the stored
/// refresh token's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub issue: Issue,
    pub refresh: RefreshRecord,
}

/// The plan for a code presented with `presented` (its client authenticated), stored
/// under `code_hash`; `fresh_hash` is the hash of the refresh token to issue.
pub fn redeem(
    presented: Presented<'_>,
    code_hash: &str,
    loaded: Loaded,
    fresh_hash: &str,
    now: i64,
) -> Result<Plan<Redeemed>, StoreError> {
    if let Some((code, version)) = loaded.live {
        let take = once::take(KIND, code_hash, version);
        return match exchange(presented, &code, loaded.grant) {
            Ok(issue) => {
                let (refresh, put_refresh) =
                    refresh::issue(&issue.grant, &issue.scopes, now, Some(now), fresh_hash)?;
                let spent = spent_op(code_hash, &issue.grant.gid, presented.client_id, now)?;
                Ok(Plan::write(
                    vec![take, spent, put_refresh],
                    Redeemed::Issued(Box::new(Issued { issue, refresh })),
                ))
            }
            Err(r) => Ok(Plan::write(vec![take], Redeemed::Refused(r))),
        };
    }
    match loaded.spent {
        Some(spent) if digest::same(&spent.client_id, presented.client_id) => {
            let ops = match &loaded.grant {
                Some(g) if g.gid == spent.gid => grant::revoke(g, now)?.1,
                _ => Vec::new(),
            };
            Ok(Plan::write(ops, Redeemed::Reused { gid: spent.gid }))
        }
        Some(_) => Ok(Plan::answer(Redeemed::SpentElsewhere)),
        None => Ok(Plan::answer(Redeemed::Invalid)),
    }
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

    fn live() -> Loaded {
        Loaded {
            live: Some((code(), 3)),
            spent: None,
            grant: Some(grant("c", false)),
        }
    }

    #[test]
    fn an_exchange_spends_the_code_records_its_redemption_and_stores_the_refresh_token_in_one_write()
     {
        let plan = redeem(presented("c", CB, VERIFIER), "h", live(), "fresh", 100).unwrap();
        let Redeemed::Issued(issued) = &plan.outcome else {
            panic!("{:?}", plan.outcome)
        };
        assert_eq!(
            issued.refresh.auth_time,
            Some(100),
            "the person approved just now"
        );
        let [
            Op::Delete { pk, cond, .. },
            Op::Put { item: spent, .. },
            Op::Put { item: token, .. },
        ] = plan.ops.as_slice()
        else {
            panic!("{:?}", plan.ops)
        };
        assert_eq!((pk.as_str(), *cond), ("oauth-code#h", Cond::Version(3)));
        assert_eq!(spent.pk, "code#h");
        assert_eq!(token.pk, "refresh#fresh");
    }

    #[test]
    fn a_refused_exchange_spends_the_code_alone() {
        let plan = redeem(
            presented("c", CB, "wrong-verifier"),
            "h",
            live(),
            "fresh",
            100,
        )
        .unwrap();
        assert_eq!(plan.outcome, Redeemed::Refused(Refusal::Verifier));
        assert!(matches!(plan.ops.as_slice(), [Op::Delete { .. }]));
    }

    fn spent(client_id: &str) -> Loaded {
        Loaded {
            live: None,
            spent: Some(Spent {
                gid: "g".into(),
                client_id: client_id.into(),
            }),
            grant: Some(grant("c", false)),
        }
    }

    #[test]
    fn code_reuse_by_its_client_revokes_the_grant_of_its_first_use() {
        let plan = redeem(presented("c", CB, VERIFIER), "h", spent("c"), "fresh", 100).unwrap();
        assert_eq!(plan.outcome, Redeemed::Reused { gid: "g".into() });
        assert!(matches!(
            plan.ops.as_slice(),
            [
                Op::Put {
                    cond: Cond::Version(1),
                    ..
                },
                Op::Delete { .. }
            ]
        ));
    }

    #[test]
    fn a_spent_code_presented_by_another_client_revokes_nothing() {
        let plan = redeem(presented("d", CB, VERIFIER), "h", spent("c"), "fresh", 100).unwrap();
        assert_eq!(plan, Plan::answer(Redeemed::SpentElsewhere));
        let unknown = redeem(presented("c", CB, VERIFIER), "h", Loaded::default(), "f", 1).unwrap();
        assert_eq!(unknown, Plan::answer(Redeemed::Invalid));
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
