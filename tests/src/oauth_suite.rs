//! The OAuth store suite: the rules of issue 3 that depend on storage, checked on every
//! backend (`tests/oauth_store_suite.rs` runs each on the embedded store and on DynamoDB
//! Local). The concurrency checks go through the token endpoint's router too, with the
//! fixture's store behind it.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{Request, StatusCode, header};
use identity_shared::AppState;
use identity_shared::accounts::{AccountStatus, Accounts, Email, Offboarding};
use identity_shared::api_keys::ApiKeys;
use identity_shared::config::{Config, SecretsSpec, StoreSpec};
use identity_shared::oauth::code::{self, Redeemed};
use identity_shared::oauth::refresh::new_refresh_token;
use identity_shared::oauth::{
    AuthCodes, CodeGrant, Grant, Grants, NewClient, OAuthClient, OAuthClients, OAuthSettings,
    RefreshOutcome, RefreshTokens, RevokedTokens, Scopes, pkce,
};
use identity_shared::secret::SecretString;
use identity_shared::secrets::Secrets;
use identity_shared::secrets::embedded::EmbeddedSecrets;
use identity_shared::store::Table;
use tower::ServiceExt;

use crate::Fixture;

const RACERS: usize = 200;
const REDIRECT: &str = "https://app.example.com/callback";
const VERIFIER: &str = "suite-verifier-suite-verifier-suite-verifier-42";

/// Percent-encodes a form value (everything but unreserved characters).
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// An `application/x-www-form-urlencoded` body of `pairs`.
pub fn form_body(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// HTTP Basic client authentication as RFC 6749 §2.3.1 forms it (each part form-encoded).
pub fn basic_auth(id: &str, secret: &str) -> String {
    use base64::Engine;
    let pair = format!("{}:{}", enc(id), enc(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

async fn confidential(f: &Fixture) -> (OAuthClient, SecretString) {
    let (c, s) = f
        .store
        .create_client(NewClient {
            name: "Suite app".into(),
            redirect_uris: vec![REDIRECT.into()],
            scopes: vec!["identity".into(), "read".into(), "write".into()],
            trusted: false,
            public: false,
        })
        .await
        .unwrap();
    (c, s.unwrap())
}

async fn account(f: &Fixture, email: &str) -> String {
    f.store
        .create_account(&Email::parse(email).unwrap(), None, AccountStatus::Active)
        .await
        .unwrap()
        .id
        .to_string()
}

fn scopes(s: &str) -> Scopes {
    Scopes::parse(s).unwrap()
}

async fn grant(f: &Fixture, client: &OAuthClient, email: &str) -> Grant {
    let account = account(f, email).await;
    f.store
        .grant_for(&account, &client.client_id, &scopes("identity read"))
        .await
        .unwrap()
}

fn code_grant(client: &OAuthClient, g: &Grant, now: i64) -> CodeGrant {
    CodeGrant {
        client_id: client.client_id.clone(),
        redirect_uri: REDIRECT.into(),
        code_challenge: pkce::challenge_of(VERIFIER),
        account_id: g.account_id.clone(),
        scope: g.scope.clone(),
        gid: g.gid.clone(),
        issued_at: now,
    }
}

/// A refresh token stored for the grant, as a code exchange stores it.
async fn refresh_token(f: &Fixture, g: &Grant) -> String {
    let (token, _, op) = new_refresh_token(g, &g.scopes(), f.clock_now(), None).unwrap();
    f.store.write(vec![op]).await.unwrap();
    token.expose_secret().to_string()
}

/// Service state over the fixture's store (embedded secrets kept in that store).
pub fn state_of(f: &Fixture) -> AppState {
    let config = Config::new(
        "http://127.0.0.1:3000".into(),
        StoreSpec::Embedded("unused".into()),
        SecretsSpec::Embedded,
    )
    .unwrap();
    let source = Arc::new(EmbeddedSecrets::new(f.store.clone()));
    AppState {
        config: Arc::new(config),
        store: f.store.clone(),
        secrets: Arc::new(Secrets::new(source, Duration::from_secs(300))),
        mail: Arc::new(identity_shared::outbox::LoggingSender),
        aws: None,
    }
}

async fn post_token(app: axum::Router, form: String) -> (StatusCode, serde_json::Value) {
    let r = app
        .oneshot(
            Request::post("/oauth/token")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = r.status();
    (status, crate::body_json(r).await)
}

pub async fn client_secret_is_stored_only_as_a_hash(f: &Fixture) {
    let (client, secret) = confidential(f).await;
    let item = f
        .store
        .get_item(
            Table::OAuth,
            &format!("client#{}", client.client_id),
            "client",
        )
        .await
        .unwrap()
        .unwrap();
    assert!(
        !item.body.contains(secret.expose_secret()),
        "{} backend",
        f.backend
    );
    let read = f.store.client(&client.client_id).await.unwrap().unwrap();
    assert_eq!(read, client);
    assert!(read.secret_matches(&secret));
    assert!(!read.secret_matches(&SecretString::new("guess")));
    let (public, none) = f
        .store
        .create_client(NewClient {
            name: "CLI".into(),
            redirect_uris: vec!["http://127.0.0.1:8080/cb".into()],
            scopes: vec![],
            trusted: true,
            public: true,
        })
        .await
        .unwrap();
    assert!(none.is_none());
    assert_eq!(public.scope, "identity", "default scope");
    let all = f.store.list_clients().await.unwrap();
    assert_eq!(all.len(), 2);
}

pub async fn grant_is_one_per_account_and_client_and_widens(f: &Fixture) {
    let (client, _) = confidential(f).await;
    let acct = account(f, "g@example.com").await;
    let g1 = f
        .store
        .grant_for(&acct, &client.client_id, &scopes("identity"))
        .await
        .unwrap();
    let g2 = f
        .store
        .grant_for(&acct, &client.client_id, &scopes("read"))
        .await
        .unwrap();
    assert_eq!(g1.gid, g2.gid, "one grant per account and client");
    assert_eq!(g2.scope, "identity read", "consented scopes accumulate");
    let current = f
        .store
        .current_grant(&acct, &client.client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current.scope, "identity read");
    assert_eq!(f.store.grants_of(&acct).await.unwrap().len(), 1);
    assert!(f.store.grants_of("nobody").await.unwrap().is_empty());
}

pub async fn concurrent_first_authorizations_make_one_grant(f: &Fixture) {
    let (client, _) = confidential(f).await;
    let acct = account(f, "race@example.com").await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (store, acct, cid) = (f.store.clone(), acct.clone(), client.client_id.clone());
        tasks.push(tokio::spawn(async move {
            store.grant_for(&acct, &cid, &scopes("identity")).await
        }));
    }
    let mut gids = std::collections::HashSet::new();
    for t in tasks {
        gids.insert(t.await.unwrap().unwrap().gid);
    }
    assert_eq!(gids.len(), 1, "{} backend", f.backend);
}

pub async fn revoked_grant_is_dead_and_the_next_authorization_makes_a_new_one(f: &Fixture) {
    let (client, _) = confidential(f).await;
    let g = grant(f, &client, "r@example.com").await;
    let revoked = f.store.revoke_grant(&g.gid).await.unwrap().unwrap();
    assert!(!revoked.is_live());
    assert!(!f.store.grant(&g.gid).await.unwrap().unwrap().is_live());
    assert!(f.store.grants_of(&g.account_id).await.unwrap().is_empty());
    assert!(
        f.store
            .current_grant(&g.account_id, &client.client_id)
            .await
            .unwrap()
            .is_none(),
        "consent is forgotten with the grant"
    );
    assert!(
        f.store.revoke_grant(&g.gid).await.unwrap().is_some(),
        "idempotent"
    );
    assert!(
        f.store
            .revoke_grant("no-such-grant")
            .await
            .unwrap()
            .is_none()
    );
    let again = f
        .store
        .grant_for(&g.account_id, &client.client_id, &scopes("identity"))
        .await
        .unwrap();
    assert_ne!(again.gid, g.gid);
    assert!(again.is_live());
}

pub async fn code_is_taken_once_by_200_racers(f: &Fixture) {
    let (client, _) = confidential(f).await;
    let g = grant(f, &client, "c@example.com").await;
    let code = f
        .store
        .issue_code(&code_grant(&client, &g, f.clock_now()))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..RACERS {
        let (store, code) = (f.store.clone(), code.expose_secret().to_string());
        let client_id = client.client_id.clone();
        tasks.push(tokio::spawn(async move {
            // As the token endpoint does: one plan; the losers find it redeemed.
            match store
                .redeem_code(&code, presented(&client_id))
                .await
                .unwrap()
                .outcome
            {
                Redeemed::Issued(issued) => Some(issued.issue.grant.gid),
                _ => None,
            }
        }));
    }
    let mut taken = 0;
    for t in tasks {
        if let Some(gid) = t.await.unwrap() {
            assert_eq!(gid, g.gid);
            taken += 1;
        }
    }
    assert_eq!(taken, 1, "{} backend", f.backend);
}

/// What the token endpoint presents with a code issued by [`code_grant`].
fn presented(client_id: &str) -> code::Presented<'_> {
    code::Presented {
        client_id,
        redirect_uri: REDIRECT,
        code_verifier: VERIFIER,
    }
}

/// A code issued to `client` for `g` and exchanged once, as the token endpoint does; and the
/// refresh token that exchange issued.
async fn exchanged_code(f: &Fixture, client: &OAuthClient, g: &Grant) -> (SecretString, String) {
    let code = f
        .store
        .issue_code(&code_grant(client, g, f.clock_now()))
        .await
        .unwrap();
    let redemption = f
        .store
        .redeem_code(code.expose_secret(), presented(&client.client_id))
        .await
        .unwrap();
    assert!(
        matches!(redemption.outcome, Redeemed::Issued(_)),
        "first use issues: {:?}",
        redemption.outcome
    );
    (code, redemption.refresh_token.expose_secret().to_string())
}

async fn redeem(f: &Fixture, code: &str, client_id: &str) -> Redeemed {
    f.store
        .redeem_code(code, presented(client_id))
        .await
        .unwrap()
        .outcome
}

pub async fn code_reuse_revokes_its_grant(f: &Fixture) {
    let (client, _) = confidential(f).await;
    let g = grant(f, &client, "reuse@example.com").await;
    let (code, refresh) = exchanged_code(f, &client, &g).await;
    assert!(f.store.live_refresh(&refresh).await.unwrap().is_some());
    f.clock.advance(5);
    assert_eq!(
        redeem(f, code.expose_secret(), &client.client_id).await,
        Redeemed::Reused {
            gid: g.gid.to_string()
        }
    );
    assert!(!f.store.grant(&g.gid).await.unwrap().unwrap().is_live());
    assert!(
        f.store.live_refresh(&refresh).await.unwrap().is_none(),
        "the refresh token of the first use died with its grant"
    );
}

/// A spent code presented by a client other than the one it was issued to is invalid and
/// revokes nothing: whoever finds a spent code cannot use it to revoke its owner's grant.
pub async fn code_reuse_by_another_client_revokes_nothing(f: &Fixture) {
    let (client, _) = confidential(f).await;
    let (other, _) = confidential(f).await;
    let g = grant(f, &client, "victim@example.com").await;
    let (code, _) = exchanged_code(f, &client, &g).await;
    assert_eq!(
        redeem(f, code.expose_secret(), &other.client_id).await,
        Redeemed::SpentElsewhere
    );
    assert!(f.store.grant(&g.gid).await.unwrap().unwrap().is_live());
    // Its own client presenting it again is a reuse, as before.
    assert_eq!(
        redeem(f, code.expose_secret(), &client.client_id).await,
        Redeemed::Reused {
            gid: g.gid.to_string()
        }
    );
}

pub async fn expired_unredeemed_code_is_invalid_and_revokes_nothing(f: &Fixture) {
    let (client, _) = confidential(f).await;
    let g = grant(f, &client, "x@example.com").await;
    let code = f
        .store
        .issue_code(&code_grant(&client, &g, f.clock_now()))
        .await
        .unwrap();
    f.clock.advance(identity_shared::oauth::CODE_TTL_SECS);
    assert_eq!(
        redeem(f, code.expose_secret(), &client.client_id).await,
        Redeemed::Invalid
    );
    assert_eq!(
        redeem(f, "never-issued", &client.client_id).await,
        Redeemed::Invalid
    );
    assert!(f.store.grant(&g.gid).await.unwrap().unwrap().is_live());
}

pub async fn refresh_rotation_has_one_winner_among_200_racers_and_reuse_revokes(f: &Fixture) {
    let (client, _) = confidential(f).await;
    let g = grant(f, &client, "rr@example.com").await;
    let token = refresh_token(f, &g).await;
    let mut tasks = Vec::new();
    for _ in 0..RACERS {
        let (store, token, cid) = (f.store.clone(), token.clone(), client.client_id.clone());
        tasks.push(tokio::spawn(async move {
            store.rotate_refresh(&token, &cid, None, 0).await
        }));
    }
    let (mut rotated, mut reused) = (0, 0);
    for t in tasks {
        match t.await.unwrap().unwrap() {
            RefreshOutcome::Rotated(_) => rotated += 1,
            RefreshOutcome::Reused { .. } => reused += 1,
            // Read the token unspent, then found its grant already revoked by a reuse.
            RefreshOutcome::Invalid => {}
            other => panic!("{} backend: unexpected {other:?}", f.backend),
        }
    }
    assert_eq!(rotated, 1, "{} backend", f.backend);
    assert!(reused >= 1, "{} backend: the losers saw a reuse", f.backend);
    assert!(
        !f.store.grant(&g.gid).await.unwrap().unwrap().is_live(),
        "without a grace period every other use is a reuse: the grant is revoked"
    );
}

pub async fn refresh_retry_within_grace_is_refused_and_keeps_the_grant(f: &Fixture) {
    let (client, _) = confidential(f).await;
    let g = grant(f, &client, "grace@example.com").await;
    let token = refresh_token(f, &g).await;
    let mut tasks = Vec::new();
    for _ in 0..RACERS {
        let (store, token, cid) = (f.store.clone(), token.clone(), client.client_id.clone());
        tasks.push(tokio::spawn(async move {
            store.rotate_refresh(&token, &cid, None, 10).await
        }));
    }
    let mut successor = None;
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            RefreshOutcome::Rotated(r) => {
                assert!(
                    successor.is_none(),
                    "{} backend: a second winner",
                    f.backend
                );
                successor = Some(r.token);
            }
            RefreshOutcome::RetryWithinGrace => refused += 1,
            other => panic!("{} backend: unexpected {other:?}", f.backend),
        }
    }
    assert_eq!(refused, RACERS - 1);
    assert!(f.store.grant(&g.gid).await.unwrap().unwrap().is_live());
    let successor = successor.expect("one winner");
    f.clock.advance(9);
    assert!(matches!(
        f.store
            .rotate_refresh(successor.expose_secret(), &client.client_id, None, 10)
            .await
            .unwrap(),
        RefreshOutcome::Rotated(_)
    ));
}

/// Within the grace period a reuse is taken for a retry only while the successor is
/// unused: once the successor has been used (by the client, or by a thief who rotated
/// first), a reuse of the old token revokes the grant at once.
pub async fn refresh_reuse_within_grace_after_the_successor_was_used_revokes(f: &Fixture) {
    let (client, _) = confidential(f).await;
    let g = grant(f, &client, "thief@example.com").await;
    let first = refresh_token(f, &g).await;
    let rotate = |token: String| {
        let (store, cid) = (f.store.clone(), client.client_id.clone());
        async move { store.rotate_refresh(&token, &cid, None, 10).await.unwrap() }
    };
    let RefreshOutcome::Rotated(second) = rotate(first.clone()).await else {
        panic!("the first use rotates")
    };
    let RefreshOutcome::Rotated(_) = rotate(second.token.expose_secret().to_string()).await else {
        panic!("the successor rotates")
    };
    f.clock.advance(1);
    assert!(matches!(rotate(first).await, RefreshOutcome::Reused { .. }));
    assert!(!f.store.grant(&g.gid).await.unwrap().unwrap().is_live());
}

pub async fn refresh_reuse_after_grace_revokes_the_grant(f: &Fixture) {
    let (client, _) = confidential(f).await;
    let g = grant(f, &client, "late@example.com").await;
    let token = refresh_token(f, &g).await;
    let RefreshOutcome::Rotated(next) = f
        .store
        .rotate_refresh(&token, &client.client_id, None, 10)
        .await
        .unwrap()
    else {
        panic!("first use rotates")
    };
    f.clock.advance(10);
    assert!(matches!(
        f.store
            .rotate_refresh(&token, &client.client_id, None, 10)
            .await
            .unwrap(),
        RefreshOutcome::Reused { .. }
    ));
    assert!(!f.store.grant(&g.gid).await.unwrap().unwrap().is_live());
    assert!(
        matches!(
            f.store
                .rotate_refresh(next.token.expose_secret(), &client.client_id, None, 10)
                .await
                .unwrap(),
            RefreshOutcome::Invalid
        ),
        "the successor died with the grant"
    );
}

pub async fn refresh_token_is_bound_to_its_client_scope_and_lifetime(f: &Fixture) {
    let (client, _) = confidential(f).await;
    let g = grant(f, &client, "bound@example.com").await;
    let token = refresh_token(f, &g).await;
    assert!(matches!(
        f.store
            .rotate_refresh(&token, "other-client", None, 0)
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    ));
    assert!(matches!(
        f.store
            .rotate_refresh(&token, &client.client_id, Some(&scopes("write")), 0)
            .await
            .unwrap(),
        RefreshOutcome::ScopeTooWide
    ));
    assert!(
        f.store.live_refresh(&token).await.unwrap().is_some(),
        "refusals left the token unspent"
    );
    f.clock
        .advance(identity_shared::oauth::REFRESH_TOKEN_TTL_SECS);
    assert!(matches!(
        f.store
            .rotate_refresh(&token, &client.client_id, None, 0)
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    ));
    assert!(f.store.grant(&g.gid).await.unwrap().unwrap().is_live());
}

pub async fn revoked_jti_is_remembered_until_the_token_expires(f: &Fixture) {
    let now = f.clock_now();
    f.store.revoke_jti("j1", now + 100).await.unwrap();
    assert!(f.store.jti_revoked("j1").await.unwrap());
    assert!(!f.store.jti_revoked("j2").await.unwrap());
    f.clock.advance(100);
    assert!(!f.store.jti_revoked("j1").await.unwrap());
}

/// Through the token endpoint: 200 simultaneous exchanges of one code, one success.
pub async fn code_exchange_through_the_router_has_one_success_among_200(f: &Fixture) {
    let state = state_of(f);
    let (client, secret) = confidential(f).await;
    let g = grant(f, &client, "router@example.com").await;
    let code = f
        .store
        .issue_code(&code_grant(&client, &g, f.clock_now()))
        .await
        .unwrap();
    let app = oauth_token::app_with(state, OAuthSettings::default());
    let form = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={VERIFIER}&client_id={}&client_secret={}",
        code.expose_secret(),
        enc(REDIRECT),
        client.client_id,
        enc(secret.expose_secret())
    );
    let mut tasks = Vec::new();
    for _ in 0..RACERS {
        let (app, form) = (app.clone(), form.clone());
        tasks.push(tokio::spawn(post_token(app, form)));
    }
    let mut ok = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        if status == StatusCode::OK {
            ok += 1;
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(body["error"], "invalid_grant");
        }
    }
    assert_eq!(ok, 1, "{} backend", f.backend);
}

/// Through the token endpoint: 200 simultaneous uses of one refresh token outside the
/// grace window (none configured), one success; the reuses revoke the grant.
pub async fn refresh_through_the_router_has_one_success_among_200(f: &Fixture) {
    let state = state_of(f);
    let (client, secret) = confidential(f).await;
    let g = grant(f, &client, "router-rt@example.com").await;
    let token = refresh_token(f, &g).await;
    let app = oauth_token::app_with(
        state,
        OAuthSettings {
            refresh_grace_secs: 0,
        },
    );
    let form = format!(
        "grant_type=refresh_token&refresh_token={}&client_id={}&client_secret={}",
        enc(&token),
        client.client_id,
        enc(secret.expose_secret())
    );
    let mut tasks = Vec::new();
    for _ in 0..RACERS {
        let (app, form) = (app.clone(), form.clone());
        tasks.push(tokio::spawn(post_token(app, form)));
    }
    let mut ok = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        if status == StatusCode::OK {
            ok += 1;
        } else {
            assert_eq!(body["error"], "invalid_grant", "{body}");
        }
    }
    assert_eq!(ok, 1, "{} backend", f.backend);
    assert!(!f.store.grant(&g.gid).await.unwrap().unwrap().is_live());
}

pub async fn device_code_yields_tokens_to_one_of_20_pollers(f: &Fixture) {
    use identity_shared::oauth::device::{DeviceRequests, DeviceState, Polled};
    let (client, _) = f
        .store
        .create_client(identity_shared::oauth::NewClient {
            name: "CLI".into(),
            redirect_uris: vec!["http://127.0.0.1:8080/cb".into()],
            scopes: vec!["read".into()],
            trusted: false,
            public: true,
        })
        .await
        .unwrap();
    let (code, request) = f
        .store
        .start_device_request(&client.client_id, "read", None)
        .await
        .unwrap();
    let g = f
        .store
        .grant_for("acc", &client.client_id, &scopes("read"))
        .await
        .unwrap();
    let found = f
        .store
        .device_request_by_user_code(&request.user_code.to_lowercase())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.client_id, client.client_id);
    assert!(
        f.store
            .answer_device_request(
                &found,
                DeviceState::Approved {
                    account_id: "acc".into(),
                    gid: g.gid.clone()
                }
            )
            .await
            .unwrap()
    );
    assert!(
        !f.store
            .answer_device_request(&found, DeviceState::Denied)
            .await
            .unwrap(),
        "answered once"
    );
    let racers: Vec<_> = (0..20)
        .map(|_| {
            let store = f.store.clone();
            let code = code.expose_secret().to_string();
            let cid = client.client_id.clone();
            tokio::spawn(async move {
                // As the token endpoint does: the approval is spent by the tokens' write.
                let fresh = identity_shared::crypto::random_token();
                matches!(
                    store.poll_device(&code, &cid, &fresh).await.unwrap(),
                    Polled::Issued(_)
                )
            })
        })
        .collect();
    let mut approved = 0;
    for r in racers {
        if r.await.unwrap() {
            approved += 1;
        }
    }
    assert_eq!(approved, 1);
}

/// A key made now for `account` under `login`, checked to act; its token.
async fn acting_key(
    f: &Fixture,
    account: &identity_shared::accounts::Account,
    login: &str,
) -> String {
    let (_, key) = f
        .store
        .create_api_key(account, login, None, None)
        .await
        .unwrap();
    let key = key.expose_secret().to_string();
    assert!(f.store.api_key_in_use(&key).await.unwrap().is_some());
    key
}

/// API keys: only their hash is stored; one acts until it is revoked (by its own account
/// only), until it expires, until the login that made it ends, or until the account's
/// keys end (sign out everywhere, a block, a move to SSO, a reset).
pub async fn api_keys_are_hashed_and_end_with_revocation_expiry_their_login_or_the_epoch(
    f: &Fixture,
) {
    let id = account(f, "keys@example.com").await;
    let other = account(f, "other@example.com").await;
    let holder = f.store.account(&id).await.unwrap().unwrap();
    let login = crate::cli_login_grant(&f.store, &holder).await;
    let (expiring, token) = f
        .store
        .create_api_key(&holder, &login, Some("CI deploys"), Some(3600))
        .await
        .unwrap();
    let token = token.expose_secret().to_string();
    assert!(token.starts_with("idk_") && token.len() > 40, "{token}");
    let items = f
        .store
        .backend()
        .scan(Table::OAuth, f.clock_now())
        .await
        .unwrap();
    assert!(
        items
            .iter()
            .all(|i| !i.body.contains(&token) && !i.pk.contains(&token)),
        "{} backend: only the hash is kept",
        f.backend
    );
    let (found, owner) = f.store.api_key_in_use(&token).await.unwrap().unwrap();
    assert_eq!(
        (found.id.as_str(), owner.id.as_str()),
        (expiring.id.as_str(), id.as_str())
    );
    for guess in ["idk_guess", "not-a-key", ""] {
        assert!(f.store.api_key_in_use(guess).await.unwrap().is_none());
    }
    assert!(
        !f.store.revoke_api_key(&other, &expiring.id).await.unwrap(),
        "another account cannot revoke it"
    );
    f.clock.advance(1);
    let (forever, forever_token) = f
        .store
        .create_api_key(&holder, &login, None, None)
        .await
        .unwrap();
    let listed: Vec<String> = f
        .store
        .api_keys_of(&holder)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(
        listed,
        vec![expiring.id.clone(), forever.id.clone()],
        "oldest first"
    );

    // Expired: absent.
    f.clock.advance(3599);
    assert!(f.store.api_key_in_use(&token).await.unwrap().is_none());
    assert_eq!(f.store.api_keys_of(&holder).await.unwrap().len(), 1);

    // Revoked by its account: gone at once.
    let (revoked, revoked_token) = f
        .store
        .create_api_key(&holder, &login, None, None)
        .await
        .unwrap();
    assert!(f.store.revoke_api_key(&id, &revoked.id).await.unwrap());
    assert!(
        f.store
            .api_key_in_use(revoked_token.expose_secret())
            .await
            .unwrap()
            .is_none()
    );
    assert!(!f.store.revoke_api_key(&id, &revoked.id).await.unwrap());

    // The login that made it ends (identity logout revokes its grant): the key ends too,
    // and a later login's keys act.
    f.store.revoke_grant(&login).await.unwrap();
    assert!(
        f.store
            .api_key_in_use(forever_token.expose_secret())
            .await
            .unwrap()
            .is_none(),
        "{} backend: a key ends with its login",
        f.backend
    );
    assert!(f.store.api_keys_of(&holder).await.unwrap().is_empty());
    let login = crate::cli_login_grant(&f.store, &holder).await;
    let kept = acting_key(f, &holder, &login).await;

    // Signing out everywhere ends the account's keys with its sessions; its login stays.
    let holder = f.store.sign_out_everywhere(&id).await.unwrap();
    assert!(
        f.store.api_key_in_use(&kept).await.unwrap().is_none(),
        "{} backend: sign out everywhere ends keys",
        f.backend
    );
    let kept = acting_key(f, &holder, &login).await;
    // A revocation of the account's grants (a block here; a move to SSO and a reset do the
    // same) ends every key made before it, and stays after the unblock.
    f.store.block_account(&id).await.unwrap();
    let moved = f.store.unblock_account(&id).await.unwrap();
    assert!(f.store.api_key_in_use(&kept).await.unwrap().is_none());
    assert!(f.store.api_keys_of(&moved).await.unwrap().is_empty());
    let login = crate::cli_login_grant(&f.store, &moved).await;
    // A key made after the epoch moved acts.
    acting_key(f, &moved, &login).await;

    // Bad input leaves nothing.
    for (description, expires_in) in [
        (Some("a\nb"), None),
        (None, Some(10)),
        (None, Some(i64::MAX)),
    ] {
        assert!(
            f.store
                .create_api_key(&moved, &login, description, expires_in)
                .await
                .is_err()
        );
    }
    assert_eq!(f.store.api_keys_of(&moved).await.unwrap().len(), 1);
}

/// The CLI's client is registered once, however many starts race to do it.
pub async fn the_cli_client_is_registered_once(f: &Fixture) {
    let mut racers = Vec::new();
    for _ in 0..10 {
        let store = f.store.clone();
        racers.push(tokio::spawn(async move { store.ensure_cli_client().await }));
    }
    for r in racers {
        let c = r.await.unwrap().unwrap();
        assert_eq!(c.client_id, "identity-cli");
        assert!(c.public && !c.trusted);
        assert_eq!(c.scope, "identity global");
        assert!(c.redirect_uris.is_empty());
    }
    assert_eq!(f.store.list_clients().await.unwrap().len(), 1);
}
