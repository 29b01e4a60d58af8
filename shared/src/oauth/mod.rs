//! The OAuth 2.0 authorization server's records and rules, below HTTP: clients, the scope
//! vocabulary, PKCE, grants, authorization codes, rotating refresh tokens, revoked access
//! tokens. `oauth-authorize` and `oauth-token` parse requests and render answers; what is
//! allowed and what is stored is decided here, the same for both store backends.
//!
//! Storage (table `oauth` unless said otherwise; only hashes of codes and tokens are kept):
//!
//! | record | pk / sk | lives |
//! |---|---|---|
//! | client | `client#{client_id}` / `client` | until removed |
//! | grant | `grant#{gid}` / `grant` | while live; revoked: [`REVOKED_GRANT_KEPT_SECS`] more |
//! | an account's grant for a client | `account#{account_id}` / `grant#{client_id}` → gid | while the grant is live |
//! | authorization code (table `once`) | `oauth-code#{sha256(code)}` / `once` | [`CODE_TTL_SECS`] |
//! | spent code → its grant | `code#{sha256(code)}` / `spent` | [`SPENT_CODE_KEPT_SECS`] |
//! | refresh token | `refresh#{sha256(token)}` / `refresh` | [`REFRESH_TOKEN_TTL_SECS`] from issue |
//! | revoked access token | `jti#{jti}` / `revoked` | until the token's own `exp` |
//!
//! Invariants: a code is consumed by one `take` (exactly one caller wins); a refresh token
//! is rotated by one version-conditional write (exactly one caller wins); an access token
//! or refresh token whose grant is absent or revoked is dead.

pub mod client;
pub mod code;
pub mod device;
pub mod grant;
pub mod pkce;
pub mod refresh;
pub mod revoked;
pub mod scope;
pub mod settings;

pub use client::{ClientError, NewClient, OAuthClient, OAuthClients};
pub use code::{AuthCodes, CodeGrant, Redemption};
pub use grant::{Grant, Grants};
pub use refresh::{RefreshOutcome, RefreshRecord, RefreshTokens};
pub use revoked::RevokedTokens;
pub use scope::{ScopeError, Scopes};
pub use settings::{OAuthSettings, SettingsError};

/// The one rule for "is this access token (already verified: signature, issuer, audience,
/// expiry) still active": its `jti` was not revoked (RFC 7009) and its grant, when it has
/// one, is live. Introspection and the named-authorization fetch both judge by it.
pub async fn access_token_active(
    store: &crate::store::Store,
    claims: &crate::tokens::AccessClaims,
) -> Result<bool, crate::store::StoreError> {
    if store.jti_revoked(&claims.jti).await? {
        return Ok(false);
    }
    Ok(match &claims.gid {
        Some(gid) => store.grant(gid).await?.is_some_and(|g| g.is_live()),
        None => true,
    })
}

/// An authorization code lives at most this long (CONTRACT: 60 s at most).
pub const CODE_TTL_SECS: i64 = 60;
/// How long a redeemed code is remembered, so a second use can find and revoke its grant.
pub use identity_core::code::SPENT_CODE_KEPT_SECS;
/// A revoked grant's record stays this long (for listings), then expires; an absent grant
/// is as dead as a revoked one. Access tokens live shorter than this.
pub use identity_core::grant::REVOKED_GRANT_KEPT_SECS;
/// A refresh token's lifetime from its issue; every rotation issues a new one.
pub use identity_core::refresh::REFRESH_TOKEN_TTL_SECS;
