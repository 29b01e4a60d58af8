//! Add-on SSO (issue 5): test support (a world of one app with people in every role and an
//! add-on, requests through addon-sso's router, the SSO page's form read back) and the suite
//! that `tests/addon_store_suite.rs` runs on both backends (each check an
//! `async fn(&Fixture)`).

use axum::body::Body;
use base64::Engine;
use http::{Request, StatusCode, header};
use identity_shared::AppState;
use identity_shared::accounts::{Account, AccountStatus, Accounts, Email};
use identity_shared::addon_sso::{
    self, FUTURE_SKEW_SECS, MAX_AGE_SECS, Salt, SsoClaims, SsoForm, VerifyError,
};
use identity_shared::addons::{AddonError, Addons, PartnerApp, Provisioned, SsoAccess};
use identity_shared::apps::{App, Apps, Role};
use identity_shared::session::Sessions;
use identity_shared::store::Store;
use serde_json::Value;
use tower::ServiceExt;

use crate::Fixture;
use crate::jwt_suite::state_on;

pub const SSO_URL: &str = "https://partner.example.com/heroku/sso";

/// An app with an owner, an admin, a member and a collaborator, a stranger with no role,
/// and an add-on provisioned for the app.
pub struct World {
    pub state: AppState,
    pub app: App,
    pub owner: Account,
    pub admin: Account,
    pub member: Account,
    pub collaborator: Account,
    pub stranger: Account,
    pub addon: Provisioned,
}

pub async fn account(store: &Store, email: &str) -> Account {
    store
        .create_account(&Email::parse(email).unwrap(), None, AccountStatus::Active)
        .await
        .expect("account")
}

impl World {
    pub async fn new(state: AppState) -> Self {
        let store = state.store.clone();
        let owner = account(&store, "owner@example.com").await;
        let admin = account(&store, "admin@example.com").await;
        let member = account(&store, "member@example.com").await;
        let collaborator = account(&store, "collab@example.com").await;
        let stranger = account(&store, "stranger@example.com").await;
        let app = store.create_app("shop", &owner).await.expect("app");
        for (who, role) in [
            (&admin, Role::Admin),
            (&member, Role::Member),
            (&collaborator, Role::Collaborator),
        ] {
            store.set_role(&app, who, role).await.expect("role");
        }
        let addon = store
            .create_addon(&app, "shop-cache", SSO_URL)
            .await
            .expect("addon");
        Self {
            state,
            app,
            owner,
            admin,
            member,
            collaborator,
            stranger,
            addon,
        }
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    pub fn sso_path(&self) -> String {
        self.addon.addon.sso_path()
    }

    /// A `Cookie` header value for a new session of `account`.
    pub async fn cookie(&self, account: &Account) -> String {
        let (id, s) = self
            .store()
            .start_session(account, None, self.state.config.session_lifetime_secs)
            .await
            .expect("session");
        let set = self.state.session_cookie(&id, &s).await.expect("cookie");
        set.split(';').next().unwrap().to_string()
    }

    /// `GET path` as `account` through addon-sso's router.
    pub async fn get_as(
        &self,
        account: Option<&Account>,
        path: &str,
    ) -> (StatusCode, http::HeaderMap, String) {
        let mut req = Request::get(path);
        if let Some(a) = account {
            req = req.header(header::COOKIE, self.cookie(a).await);
        }
        let r = ::addon_sso::app(self.state.clone())
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let body = String::from_utf8(crate::body_bytes(r).await).unwrap();
        (status, headers, body)
    }

    /// `GET /partner/apps/{app}/collaborators` with HTTP Basic `user:password`.
    pub async fn partner_get(
        &self,
        app_ref: &str,
        credentials: Option<(&str, &str)>,
    ) -> (StatusCode, http::HeaderMap, Value) {
        let mut req = Request::get(format!("/partner/apps/{app_ref}/collaborators"));
        if let Some((u, p)) = credentials {
            let v = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            req = req.header(header::AUTHORIZATION, format!("Basic {v}"));
        }
        let r = ::addon_sso::app(self.state.clone())
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        (status, headers, crate::body_json(r).await)
    }

    pub fn partner(&self) -> (&str, &str) {
        (
            self.addon.addon.partner_username.as_str(),
            self.addon.partner_password.expose_secret(),
        )
    }
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The hidden fields of the SSO page's form, in order, as a browser would POST them.
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in html.split("<input type=\"hidden\" ").skip(1) {
        let attr = |name: &str| -> String {
            let start = part.find(&format!("{name}=\"")).expect("attribute") + name.len() + 2;
            let end = start + part[start..].find('"').expect("closing quote");
            unescape(&part[start..end])
        };
        out.push((attr("name"), attr("value")));
    }
    out
}

/// The form's `action`.
pub fn form_action(html: &str) -> String {
    let start = html.find("action=\"").expect("form action") + 8;
    let end = start + html[start..].find('"').unwrap();
    unescape(&html[start..end])
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("field {name}"))
}

// ---------------------------------------------------------------------------------------
// The suite (both backends)
// ---------------------------------------------------------------------------------------

pub async fn addon_provisioning_round_trip(f: &Fixture) {
    let w = World::new(state_on(f)).await;
    let a = &w.addon.addon;
    assert_eq!(a.app_id, w.app.id);
    assert_eq!(a.sso_url, SSO_URL);
    assert_ne!(a.id, a.resource_id);
    assert_eq!(a.sso_salt().expose().len(), 64, "256-bit hex salt");
    assert_eq!(
        w.addon.partner_password.expose_secret().len(),
        43,
        "256-bit password"
    );
    // Nothing about who provisioned it, nor any secret, in Debug or the public JSON.
    let shown = format!("{a:?} {}", a.public_json());
    assert!(!shown.contains(a.sso_salt().expose()));
    assert!(!shown.contains(w.addon.partner_password.expose_secret()));
    assert!(!shown.contains(w.owner.id.as_str()));

    let store = &f.store;
    assert_eq!(store.addon(&a.id).await.unwrap().as_ref(), Some(a));
    assert_eq!(
        store.addon_by_name("shop-cache").await.unwrap().as_ref(),
        Some(a)
    );
    assert_eq!(
        store
            .addon_by_resource(&a.resource_id)
            .await
            .unwrap()
            .as_ref(),
        Some(a)
    );
    assert_eq!(store.addons_of(&w.app.id).await.unwrap(), vec![a.clone()]);
    assert!(store.list_addons().await.unwrap().contains(a));
    assert!(store.addon("nope").await.unwrap().is_none());

    // The stored record keeps a hash of the password, never the password.
    let raw = store
        .get_item(
            identity_shared::store::Table::Apps,
            &format!("addon#{}", a.id),
            "addon",
        )
        .await
        .unwrap()
        .unwrap();
    assert!(!raw.body.contains(w.addon.partner_password.expose_secret()));

    assert!(matches!(
        store.create_addon(&w.app, "shop-cache", SSO_URL).await,
        Err(AddonError::NameTaken)
    ));
    assert!(matches!(
        store
            .create_addon(&w.app, "other", "http://partner.example.com/sso")
            .await,
        Err(AddonError::InvalidSsoUrl(..))
    ));
    assert!(matches!(
        store.create_addon(&w.app, "Bad_Name", SSO_URL).await,
        Err(AddonError::InvalidName)
    ));
    let ghost = App {
        id: uuid::Uuid::new_v4().to_string(),
        ..w.app.clone()
    };
    assert!(matches!(
        store.create_addon(&ghost, "ghost-addon", SSO_URL).await,
        Err(AddonError::AppNotFound)
    ));
    assert!(
        store.addon_by_name("ghost-addon").await.unwrap().is_none(),
        "nothing half-written"
    );
    assert_eq!(store.addons_of(&w.app.id).await.unwrap().len(), 1);
}

pub async fn every_role_gets_the_form_and_a_stranger_gets_403(f: &Fixture) {
    let w = World::new(state_on(f)).await;
    for who in [&w.owner, &w.admin, &w.member, &w.collaborator] {
        let (status, _, html) = w.get_as(Some(who), &w.sso_path()).await;
        assert_eq!(status, StatusCode::OK, "{}", who.email);
        assert_eq!(form_action(&html), SSO_URL);
        let fields = hidden_fields(&html);
        assert_eq!(field(&fields, "email"), who.email);
        assert_eq!(field(&fields, "user_id"), who.id);
        assert_eq!(field(&fields, "app"), "shop");
    }
    let (status, _, html) = w.get_as(Some(&w.stranger), &w.sso_path()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(hidden_fields(&html).is_empty(), "no form for a stranger");
    assert!(!html.contains(&w.addon.addon.resource_id));
}

/// The person who asked for the add-on holds no right to it of their own: once removed
/// from the app they get 403, at once, even though the change is made by another process
/// (a second store handle) while the service runs.
pub async fn removed_provisioner_loses_access_and_role_changes_apply_at_once(f: &Fixture) {
    let w = World::new(state_on(f)).await;
    let provisioner = &w.admin;
    let other_process = f.reopen().await;
    let (status, _, _) = w.get_as(Some(provisioner), &w.sso_path()).await;
    assert_eq!(status, StatusCode::OK);

    assert!(
        other_process
            .remove_member(&w.app, &provisioner.id)
            .await
            .unwrap()
    );
    let (status, _, _) = w.get_as(Some(provisioner), &w.sso_path()).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "removal takes effect at once"
    );
    assert!(matches!(
        w.store()
            .sso_access(&w.addon.addon.id, &provisioner.id)
            .await
            .unwrap(),
        SsoAccess::NoRole { .. }
    ));

    other_process
        .set_role(&w.app, provisioner, Role::Collaborator)
        .await
        .unwrap();
    assert!(matches!(
        w.store()
            .sso_access(&w.addon.addon.id, &provisioner.id)
            .await
            .unwrap(),
        SsoAccess::Granted {
            role: Role::Collaborator,
            ..
        }
    ));
    let (status, _, _) = w.get_as(Some(provisioner), &w.sso_path()).await;
    assert_eq!(status, StatusCode::OK, "a new role takes effect at once");

    // A stranger given a role gets in; the partner API sees the change too.
    other_process
        .set_role(&w.app, &w.stranger, Role::Member)
        .await
        .unwrap();
    let (status, _, _) = w.get_as(Some(&w.stranger), &w.sso_path()).await;
    assert_eq!(status, StatusCode::OK);
    let (u, p) = w.partner();
    let (_, _, list) = w.partner_get(&w.app.id, Some((u, p))).await;
    let roles: Vec<(&str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["user"]["email"].as_str().unwrap(),
                c["role"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(roles.contains(&("stranger@example.com", "member")));
    assert!(roles.contains(&("admin@example.com", "collaborator")));
}

/// The SSO page's form, POSTed as a browser would, passes the partner-side verifier once.
pub async fn sso_form_passes_the_partner_verifier_once(f: &Fixture) {
    let w = World::new(state_on(f)).await;
    let (status, _, html) = w.get_as(Some(&w.member), &w.sso_path()).await;
    assert_eq!(status, StatusCode::OK);
    let fields = hidden_fields(&html);
    let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, addon_sso::FIELDS);
    assert_eq!(field(&fields, "resource_id"), w.addon.addon.resource_id);
    assert_eq!(field(&fields, "id"), w.addon.addon.resource_id);
    assert_eq!(field(&fields, "token"), field(&fields, "resource_token"));
    assert_eq!(field(&fields, "timestamp"), f.store.now().to_string());
    assert_eq!(field(&fields, "context_app"), "shop");
    let nav = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(field(&fields, "nav-data"))
        .unwrap();
    let nav: Value = serde_json::from_slice(&nav).unwrap();
    assert_eq!(nav["addon"], "shop-cache");
    assert_eq!(nav["app"], "shop");

    let form = SsoForm::from_pairs(&fields).unwrap();
    let salt = w.addon.addon.sso_salt();
    f.clock.advance(30);
    let who = addon_sso::verify(&f.store, &salt, &form, f.store.now())
        .await
        .unwrap();
    assert_eq!(who.email, w.member.email);
    assert_eq!(who.user_id, w.member.id);
    assert_eq!(who.resource_id, w.addon.addon.resource_id);
    assert!(matches!(
        addon_sso::verify(&f.store, &salt, &form, f.store.now()).await,
        Err(VerifyError::Replayed)
    ));
}

fn claims(resource_id: &str, timestamp: i64, email: &str) -> SsoClaims {
    SsoClaims {
        resource_id: resource_id.into(),
        timestamp,
        user_id: "7f1c2d3e-0000-4000-8000-000000000001".into(),
        email: email.into(),
        app: "shop".into(),
        context_app: "shop".into(),
        nav_data: String::new(),
    }
}

pub async fn verifier_refuses_bad_old_future_and_replayed_requests(f: &Fixture) {
    let store = &f.store;
    let salt = Salt::new("0123456789abcdef0123456789abcdef");
    let now = store.now();

    // A token made with another salt.
    let wrong = SsoForm::issue(claims("r-1", now, "a@example.com"), &Salt::new("other"));
    assert!(matches!(
        addon_sso::verify(store, &salt, &wrong, now).await,
        Err(VerifyError::BadToken)
    ));
    // A tampered email.
    let mut tampered = SsoForm::issue(claims("r-1", now, "a@example.com"), &salt);
    tampered.claims.email = "b@example.com".into();
    assert!(matches!(
        addon_sso::verify(store, &salt, &tampered, now).await,
        Err(VerifyError::BadToken)
    ));
    // Six minutes old.
    let old = SsoForm::issue(claims("r-1", now - 360, "a@example.com"), &salt);
    assert!(matches!(
        addon_sso::verify(store, &salt, &old, now).await,
        Err(VerifyError::Expired)
    ));
    // Far in the future (and just beyond the skew).
    for ahead in [3600, FUTURE_SKEW_SECS + 1] {
        let future = SsoForm::issue(claims("r-1", now + ahead, "a@example.com"), &salt);
        assert!(matches!(
            addon_sso::verify(store, &salt, &future, now).await,
            Err(VerifyError::FromTheFuture)
        ));
    }
    // Refusals consumed nothing: the fresh one is accepted once, then refused.
    let fresh = SsoForm::issue(claims("r-1", now, "a@example.com"), &salt);
    let who = addon_sso::verify(store, &salt, &fresh, now).await.unwrap();
    assert_eq!(who, fresh.claims);
    assert!(matches!(
        addon_sso::verify(store, &salt, &fresh, now).await,
        Err(VerifyError::Replayed)
    ));
    // Still refused by another process, and until the window closes.
    let other = f.reopen().await;
    f.clock.advance(MAX_AGE_SECS);
    assert!(matches!(
        addon_sso::verify(&other, &salt, &fresh, other.now()).await,
        Err(VerifyError::Replayed)
    ));
    f.clock.advance(1);
    assert!(matches!(
        addon_sso::verify(&other, &salt, &fresh, other.now()).await,
        Err(VerifyError::Expired)
    ));
    // Another person in the same second for the same resource is a different request.
    let t = other.now();
    let a = SsoForm::issue(claims("r-1", t, "a@example.com"), &salt);
    let b = SsoForm::issue(claims("r-1", t, "b@example.com"), &salt);
    assert_eq!(a.resource_token, b.resource_token);
    addon_sso::verify(&other, &salt, &a, t).await.unwrap();
    addon_sso::verify(&other, &salt, &b, t).await.unwrap();
}

pub async fn a_request_is_accepted_once_by_20_racers(f: &Fixture) {
    let salt = Salt::new("0123456789abcdef0123456789abcdef");
    let now = f.store.now();
    let form = SsoForm::issue(claims("r-race", now, "race@example.com"), &salt);
    let other = f.reopen().await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = if i % 2 == 0 {
            f.store.clone()
        } else {
            other.clone()
        };
        let (salt, form) = (salt.clone(), form.clone());
        tasks.push(tokio::spawn(async move {
            addon_sso::verify(&store, &salt, &form, now).await
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(e) => assert!(matches!(e, VerifyError::Replayed), "{e:?}"),
        }
    }
    assert_eq!(accepted, 1);
}

pub async fn partner_api_refuses_wrong_credentials_and_foreign_apps(f: &Fixture) {
    let w = World::new(state_on(f)).await;
    let (u, p) = w.partner();
    for creds in [
        None,
        Some((u, "wrong-password")),
        Some(("addon-unknown", p)),
        Some((u, "")),
    ] {
        let (status, headers, body) = w.partner_get(&w.app.id, creds).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{creds:?}");
        assert!(
            headers[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Basic ")
        );
        assert_eq!(body["error"], "unauthorized");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    }
    // Another app, which has another partner's add-on but not this one.
    let other_app = w.store().create_app("other-shop", &w.owner).await.unwrap();
    let other_addon = w
        .store()
        .create_addon(&other_app, "other-cache", SSO_URL)
        .await
        .unwrap();
    let (status, _, body) = w.partner_get(&other_app.id, Some((u, p))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "forbidden");
    let (status, _, _) = w.partner_get(&other_app.name, Some((u, p))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // That other partner sees its own app and not ours.
    let theirs = (
        other_addon.addon.partner_username.as_str(),
        other_addon.partner_password.expose_secret(),
    );
    assert_eq!(
        w.partner_get(&other_app.id, Some(theirs)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        w.partner_get(&w.app.id, Some(theirs)).await.0,
        StatusCode::FORBIDDEN
    );
    // One partner's password does not open another's username.
    assert_eq!(
        w.partner_get(&w.app.id, Some((u, theirs.1))).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _, body) = w
        .partner_get(&uuid::Uuid::new_v4().to_string(), Some((u, p)))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
    assert!(matches!(
        w.store()
            .partner_app(&w.addon.addon, "no-such-app")
            .await
            .unwrap(),
        PartnerApp::NoSuchApp
    ));
}

pub async fn partner_api_answers_every_role_with_federation(f: &Fixture) {
    let w = World::new(state_on(f)).await;
    // The member signs in through an IdP.
    let mut federated = w.store().account(&w.member.id).await.unwrap().unwrap();
    federated.sso_idp = Some("acme".into());
    w.store().update_account(&federated).await.unwrap();

    let (u, p) = w.partner();
    for app_ref in [w.app.id.as_str(), w.app.name.as_str()] {
        let (status, headers, body) = w.partner_get(app_ref, Some((u, p))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        let list = body.as_array().expect("a JSON array");
        let seen: Vec<(String, String, String, bool)> = list
            .iter()
            .map(|c| {
                assert_eq!(c["app"]["id"], w.app.id.as_str());
                assert_eq!(c["app"]["name"], "shop");
                (
                    c["role"].as_str().unwrap().to_string(),
                    c["user"]["email"].as_str().unwrap().to_string(),
                    c["user"]["id"].as_str().unwrap().to_string(),
                    c["federated"].as_bool().unwrap(),
                )
            })
            .collect();
        let expect = |role: &str, a: &Account, fed: bool| {
            (role.to_string(), a.email.clone(), a.id.to_string(), fed)
        };
        assert_eq!(
            seen,
            vec![
                expect("owner", &w.owner, false),
                expect("admin", &w.admin, false),
                expect("member", &w.member, true),
                expect("collaborator", &w.collaborator, false),
            ]
        );
    }
}

/// A world on an embedded store in a temp dir (route tests that need one backend only).
pub async fn embedded_world() -> (World, crate::Fixture) {
    let f = crate::embedded().await;
    let w = World::new(state_on(&f)).await;
    (w, f)
}
