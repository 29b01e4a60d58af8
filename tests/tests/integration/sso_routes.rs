//! SAML SSO through the routes (issue 4): the login page, SP-initiated login, the ACS with
//! responses signed by libxmlsec1 (the test IdP), just-in-time accounts and the welcome
//! link, the upgrade of a password account (revoking its refresh tokens), team roles, the
//! 8-hour session, refusals (a page, a log line, nothing written) and the dev IdP.

use std::io::Read;

use axum::Router;
use axum::body::Body;
use base64::Engine;
use http::{Request, StatusCode, header};
use identity_shared::AppState;
use identity_shared::accounts::{Account, AccountStatus, Accounts, Email};
use identity_shared::apps::{Apps, Role};
use identity_shared::clock::FixedClock;
use identity_shared::idps::{Idp, Idps};
use identity_shared::oauth::refresh::new_refresh_token;
use identity_shared::oauth::{Grants, RefreshTokens, Scopes};
use identity_shared::orgs::{Orgs, Permission, Team, TeamRole};
use identity_shared::outbox::{Outbox, SealedBody};
use identity_shared::secret::SecretString;
use identity_shared::store::Table;
use identity_tests::{CapturedLogs, app_state, body_bytes, body_json};
use sso_acs::saml::idp_signer::{IdpSigner, LogoutKind, LogoutSpec, ResponseSpec, SigAlg, Sign};
use tower::ServiceExt;

const BASE: &str = "http://127.0.0.1:3000";
const ACS: &str = "http://127.0.0.1:3000/sso/acs";
const SP_ENTITY: &str = "http://127.0.0.1:3000/sso/metadata";

struct Harness {
    state: AppState,
    clock: FixedClock,
    router: Router,
    signer: IdpSigner,
    idp: Idp,
    /// The login-binding cookie the browser got from its last `/sso/login`.
    saml_cookie: std::sync::Mutex<Option<String>>,
    _dir: tempfile::TempDir,
}

async fn harness_with(configure: impl FnOnce(&mut Idp)) -> Harness {
    let (state, clock, dir) = app_state().await;
    let signer = IdpSigner::generate("test IdP").expect("signer");
    let mut idp = Idp {
        id: "acme".into(),
        entity_id: "https://idp.acme.example/saml".into(),
        sso_url: "https://idp.acme.example/sso".into(),
        certificates: vec![signer.certificate_base64()],
        domains: vec!["acme.example".into()],
        team: Some("acme".into()),
        enterprise: None,
        allow_idp_initiated: true,
        require_mfa: false,
        mfa_contexts: vec![],
        want_authn_requests_signed: false,
        slo_url: None,
        any_domain: false,
        development: false,
        generation: String::new(),
        created_at: 0,
        version: 1,
    };
    configure(&mut idp);
    let idp = state.store.add_idp(&idp).await.unwrap();
    let router = identity_cli::router(state.clone());
    Harness {
        state,
        clock,
        router,
        signer,
        idp,
        saml_cookie: std::sync::Mutex::new(None),
        _dir: dir,
    }
}

async fn harness() -> Harness {
    harness_with(|_| {}).await
}

impl Harness {
    fn now(&self) -> i64 {
        identity_shared::Clock::now(&self.clock)
    }

    fn spec(&self, email: &str, in_response_to: Option<&str>) -> ResponseSpec {
        ResponseSpec {
            issuer: self.idp.entity_id.clone(),
            destination: ACS.into(),
            audience: SP_ENTITY.into(),
            recipient: ACS.into(),
            email: email.into(),
            in_response_to: in_response_to.map(str::to_string),
            authn_context: Some(
                "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport".into(),
            ),
            now: self.now(),
            lifetime_secs: 300,
            sign: Sign::Both,
        }
    }

    async fn send(&self, request: Request<Body>) -> axum::response::Response {
        self.router.clone().oneshot(request).await.unwrap()
    }

    async fn get(&self, uri: &str, cookie: Option<&str>) -> axum::response::Response {
        let mut r = Request::get(uri);
        if let Some(c) = cookie {
            r = r.header(header::COOKIE, c);
        }
        self.send(r.body(Body::empty()).unwrap()).await
    }

    async fn post_form(
        &self,
        uri: &str,
        fields: &[(&str, &str)],
        cookie: Option<&str>,
    ) -> axum::response::Response {
        let mut r = Request::post(uri)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ORIGIN, BASE)
            // What a browser sends with a form posted from one of our pages.
            .header("sec-fetch-site", "same-origin");
        if let Some(c) = cookie {
            r = r.header(header::COOKIE, c);
        }
        let body = serde_urlencoded::to_string(fields).unwrap();
        self.send(r.body(Body::from(body)).unwrap()).await
    }

    /// POSTs a signed Response to the ACS, as the browser does (with the login-binding
    /// cookie it holds, if any).
    async fn acs(&self, spec: &ResponseSpec, relay: &str) -> axum::response::Response {
        let cookie = self.saml_cookie.lock().unwrap().clone();
        self.acs_with_cookie(spec, relay, cookie.as_deref()).await
    }

    async fn acs_with_cookie(
        &self,
        spec: &ResponseSpec,
        relay: &str,
        cookie: Option<&str>,
    ) -> axum::response::Response {
        let xml = self.signer.response(spec).expect("signed response");
        let encoded = base64::engine::general_purpose::STANDARD.encode(xml);
        self.post_form(
            "/sso/acs",
            &[("SAMLResponse", &encoded), ("RelayState", relay)],
            cookie,
        )
        .await
    }

    /// `GET /sso/login` → the AuthnRequest's ID (from the redirect's SAMLRequest).
    async fn start_login(&self, return_to: &str) -> String {
        let q = serde_urlencoded::to_string([("idp", "acme"), ("return_to", return_to)]).unwrap();
        let r = self.get(&format!("/sso/login?{q}"), None).await;
        assert_eq!(r.status(), StatusCode::FOUND);
        *self.saml_cookie.lock().unwrap() = binding_cookies(&r);
        let location = r.headers()[header::LOCATION].to_str().unwrap().to_string();
        assert!(
            location.starts_with("https://idp.acme.example/sso?"),
            "{location}"
        );
        request_id_of(&location)
    }

    /// SP-initiated login of `email` all the way: the session cookie and the 303's target.
    async fn sso_login(&self, email: &str, return_to: &str) -> (String, String) {
        let id = self.start_login(return_to).await;
        let r = self.acs(&self.spec(email, Some(&id)), "").await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", page_text(r).await);
        (session_cookie(&r), location(&r))
    }
}

/// The path of the link starting with `prefix` in the newest outbox message to `to`.
async fn outbox_path(h: &Harness, to: &str, prefix: &str) -> String {
    let keys = h.state.secrets.cookie_keys().await.unwrap();
    let message = &h.state.store.outbox(Some(&email(to))).await.unwrap()[0];
    let body = message.body(&keys).unwrap();
    let link = format!("{BASE}{prefix}");
    body.expose_secret()
        .split_whitespace()
        .find(|w| w.starts_with(&link))
        .unwrap_or_else(|| panic!("no {prefix} link to {to}"))
        .trim_start_matches(BASE)
        .to_string()
}

fn request_id_of(location: &str) -> String {
    let query = location.split_once('?').unwrap().1;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
    let saml_request = &pairs.iter().find(|(k, _)| k == "SAMLRequest").unwrap().1;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(saml_request)
        .unwrap();
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(raw.as_slice())
        .read_to_string(&mut xml)
        .unwrap();
    let request: samael::schema::AuthnRequest = xml.parse().unwrap();
    assert_eq!(request.assertion_consumer_service_url.as_deref(), Some(ACS));
    request.id
}

fn location(r: &axum::response::Response) -> String {
    r.headers()[header::LOCATION].to_str().unwrap().to_string()
}

/// The `name=value` of a response's cookie named `name`.
fn cookie_named(r: &axum::response::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap().to_string())
        .find(|c| c.starts_with(&format!("{name}=")) && c.len() > name.len() + 1)
}

/// What a browser sends the ACS after `GET /sso/login`: its nonce and the request cookie
/// sealed to it (`None` when no login was started).
fn binding_cookies(r: &axum::response::Response) -> Option<String> {
    let request = cookie_named(r, "identity_saml_request")?;
    let nonce = cookie_named(r, "identity_browser").expect("a browser nonce with the request");
    Some(format!("{nonce}; {request}"))
}

/// Whether no account has this email (nothing was written for it).
async fn no_account(h: &Harness, address: &str) -> bool {
    h.state
        .store
        .account_by_email(&email(address))
        .await
        .unwrap()
        .is_none()
}

fn session_cookie(r: &axum::response::Response) -> String {
    cookie_named(r, "identity_session").expect("a session cookie")
}

async fn page_text(r: axum::response::Response) -> String {
    String::from_utf8(body_bytes(r).await).unwrap()
}

async fn session_json(h: &Harness, cookie: &str) -> (StatusCode, serde_json::Value) {
    let r = h.get("/session", Some(cookie)).await;
    let status = r.status();
    (status, body_json(r).await)
}

fn email(e: &str) -> Email {
    Email::parse(e).unwrap()
}

#[tokio::test]
async fn sp_initiated_login_makes_a_pending_account_and_an_sso_session() {
    let h = harness().await;
    let (cookie, to) = h
        .sso_login("new.person@acme.example", "/oauth/authorize?x=1")
        .await;
    assert_eq!(to, "/oauth/authorize?x=1");
    let (status, s) = session_json(&h, &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(s["email"], "new.person@acme.example");
    assert_eq!(s["status"], "pending");
    assert_eq!(s["sso"], true);
    assert_eq!(s["idp"], "acme");
    // The welcome message waits in the outbox.
    let outbox = h
        .state
        .store
        .outbox(Some(&email("new.person@acme.example")))
        .await
        .unwrap();
    assert_eq!(outbox.len(), 1);
}

#[tokio::test]
async fn welcome_link_activates_the_account_once() {
    let h = harness().await;
    let (cookie, _) = h.sso_login("welcome@acme.example", "/").await;
    let path = outbox_path(&h, "welcome@acme.example", "/account/welcome/").await;
    // The GET only shows a button: a mail scanner fetching the link activates nothing.
    let r = h.get(&path, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(page_text(r).await.contains("Activate my account"));
    assert_eq!(session_json(&h, &cookie).await.1["status"], "pending");
    let r = h.post_form(&path, &[], None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(session_json(&h, &cookie).await.1["status"], "active");
    let r = h.post_form(&path, &[], None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn password_account_upgrade_needs_its_password_and_revokes_refresh_tokens() {
    let h = harness().await;
    let store = &h.state.store;
    let account = store
        .create_account(
            &email("dev@acme.example"),
            Some(&SecretString::new("correct horse battery")),
            AccountStatus::Active,
        )
        .await
        .unwrap();
    let grant = store
        .grant_for(&account.id, "cli", &Scopes::parse("read").unwrap())
        .await
        .unwrap();
    let (refresh, _, op) = new_refresh_token(&grant, &grant.scopes(), h.now(), None).unwrap();
    store.write(vec![op]).await.unwrap();
    assert!(
        store
            .live_refresh(refresh.expose_secret())
            .await
            .unwrap()
            .is_some()
    );

    let id = h.start_login("/account/authorizations").await;
    let r = h.acs(&h.spec("dev@acme.example", Some(&id)), "").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/sso/upgrade");
    assert!(
        cookie_named(&r, "identity_session").is_none(),
        "no session before the answer"
    );
    let upgrade = cookie_named(&r, "identity_sso_upgrade").expect("upgrade cookie");
    let r = h.get("/sso/upgrade", Some(&upgrade)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(page_text(r).await.contains("dev@acme.example"));

    // A wrong password changes nothing.
    let r = h
        .post_form(
            "/sso/upgrade",
            &[("answer", "confirm"), ("password", "wrong")],
            Some(&upgrade),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        store
            .account(&account.id)
            .await
            .unwrap()
            .unwrap()
            .sso_idp
            .is_none()
    );
    assert!(
        store
            .live_refresh(refresh.expose_secret())
            .await
            .unwrap()
            .is_some()
    );

    let r = h
        .post_form(
            "/sso/upgrade",
            &[("answer", "confirm"), ("password", "correct horse battery")],
            Some(&upgrade),
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/account/authorizations");
    let cookie = session_cookie(&r);
    let (_, s) = session_json(&h, &cookie).await;
    assert_eq!(s["sso"], true);
    assert_eq!(s["account_id"], account.id.as_str());
    // The login's SAML subject came through the confirmation (Single Logout can name it).
    assert!(h.session_index(&cookie).await.starts_with("_s"));
    let linked = store.account(&account.id).await.unwrap().unwrap();
    assert_eq!(linked.sso_idp.as_deref(), Some("acme"));
    assert!(
        store
            .live_refresh(refresh.expose_secret())
            .await
            .unwrap()
            .is_none()
    );
    assert!(!store.grant(&grant.gid).await.unwrap().unwrap().is_live());
    // Under SSO the password no longer signs in: the login page sends the person to SSO.
    let r = h
        .post_form(
            "/login",
            &[
                ("email", "dev@acme.example"),
                ("password", "correct horse battery"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).starts_with("/sso/login?idp=acme"));
}

#[tokio::test]
async fn password_account_upgrade_declined_stays_off_sso() {
    let h = harness().await;
    let store = &h.state.store;
    let account = store
        .create_account(
            &email("keeps@acme.example"),
            Some(&SecretString::new("my own password")),
            AccountStatus::Active,
        )
        .await
        .unwrap();
    let r = h.acs(&h.spec("keeps@acme.example", None), "/").await;
    let upgrade = cookie_named(&r, "identity_sso_upgrade").expect("upgrade cookie");
    let r = h
        .post_form("/sso/upgrade", &[("answer", "decline")], Some(&upgrade))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(cookie_named(&r, "identity_session").is_none());
    let after = store.account(&account.id).await.unwrap().unwrap();
    assert!(after.sso_idp.is_none() && after.has_password());
    // The answer was given: the cookie opens nothing any more.
    let r = h.get("/sso/upgrade", Some(&upgrade)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // And the password still signs in.
    let r = h
        .post_form(
            "/login",
            &[
                ("email", "keeps@acme.example"),
                ("password", "my own password"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, s) = session_json(&h, &session_cookie(&r)).await;
    assert_eq!(s["sso"], false);
}

/// The IdP's team ("acme") with an owner-registered admin, a member and a collaborator.
async fn acme_team(h: &Harness) -> (Team, Account, Account, Account) {
    let store = &h.state.store;
    let team = store.create_team("acme", None).await.unwrap();
    let mut people = Vec::new();
    for (who, role) in [
        ("admin@acme.example", TeamRole::Admin),
        ("member@acme.example", TeamRole::Member),
        ("collab@acme.example", TeamRole::Collaborator),
    ] {
        // Registered for the IdP, as `identity admin user add` does for its domain's accounts.
        let account = store
            .create_account_for_idp(&email(who), None, AccountStatus::Active, Some(&h.idp))
            .await
            .unwrap();
        store.set_team_role(&team, &account, role).await.unwrap();
        people.push(account);
    }
    let collab = people.pop().unwrap();
    let member = people.pop().unwrap();
    let admin = people.pop().unwrap();
    (team, admin, member, collab)
}

async fn team_role(h: &Harness, team: &Team, who: &str) -> Option<TeamRole> {
    let account = h
        .state
        .store
        .account_by_email(&email(who))
        .await
        .unwrap()
        .unwrap();
    h.state
        .store
        .team_role_of(&team.id, &account.id)
        .await
        .unwrap()
}

/// Seeds: "signing in via SSO does not change an existing member's team role".
#[tokio::test]
async fn signing_in_via_sso_does_not_change_an_existing_members_team_role() {
    let h = harness().await;
    let (team, _, _, _) = acme_team(&h).await;
    let team = h
        .state
        .store
        .set_team_default_role(&team, TeamRole::Admin)
        .await
        .unwrap();
    for who in ["admin@acme.example", "member@acme.example"] {
        let before = team_role(&h, &team, who).await;
        h.sso_login(who, "/").await;
        assert_eq!(team_role(&h, &team, who).await, before, "{who}");
    }
}

/// Seeds: "a collaborator signing in via SSO to the team gets the team's default role",
/// which a team admin sets (here `admin`).
#[tokio::test]
async fn a_collaborator_signing_in_via_sso_gets_the_teams_default_role() {
    let h = harness().await;
    let (team, _, _, _) = acme_team(&h).await;
    h.sso_login("collab@acme.example", "/").await;
    assert_eq!(
        team_role(&h, &team, "collab@acme.example").await,
        Some(TeamRole::Member),
        "the default role unless a team admin set another"
    );
    let h = harness().await;
    let (team, _, _, _) = acme_team(&h).await;
    let team = h
        .state
        .store
        .set_team_default_role(&team, TeamRole::Admin)
        .await
        .unwrap();
    h.sso_login("collab@acme.example", "/").await;
    assert_eq!(
        team_role(&h, &team, "collab@acme.example").await,
        Some(TeamRole::Admin)
    );
}

/// A new SSO user joins the team with the default role, and reaches the team's apps.
#[tokio::test]
async fn a_new_sso_user_joins_with_the_teams_default_role() {
    let h = harness().await;
    let (team, admin, _, _) = acme_team(&h).await;
    let app = h
        .state
        .store
        .create_team_app("acme-web", &admin, Some(&team))
        .await
        .unwrap();
    h.sso_login("newcomer@acme.example", "/").await;
    assert_eq!(
        team_role(&h, &team, "newcomer@acme.example").await,
        Some(TeamRole::Member)
    );
    let newcomer = h
        .state
        .store
        .account_by_email(&email("newcomer@acme.example"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        h.state.store.role_of(&app.id, &newcomer.id).await.unwrap(),
        Some(Role::Member),
        "team members reach the team's apps"
    );
}

/// Seeds: "the default SSO permission level for Enterprise Accounts is view and is not
/// configurable", and an existing member's permissions never change through SSO.
#[tokio::test]
async fn the_enterprise_sso_permission_is_view_and_an_existing_members_never_changes() {
    let h = harness_with(|idp| idp.enterprise = Some("acme-corp".into())).await;
    let store = &h.state.store;
    let enterprise = store.create_enterprise("acme-corp").await.unwrap();
    let manager = store
        .create_account_for_idp(
            &email("manager@acme.example"),
            None,
            AccountStatus::Active,
            Some(&h.idp),
        )
        .await
        .unwrap();
    store
        .set_permissions(
            &enterprise,
            &manager,
            &[Permission::Manage, Permission::Billing],
        )
        .await
        .unwrap();
    for who in ["manager@acme.example", "newcomer@acme.example"] {
        h.sso_login(who, "/").await;
    }
    let enterprise = &enterprise;
    let permissions = |who: &'static str| async move {
        let account = store.account_by_email(&email(who)).await.unwrap().unwrap();
        store
            .permissions_of(&enterprise.id, &account.id)
            .await
            .unwrap()
    };
    assert_eq!(
        permissions("newcomer@acme.example").await,
        Some(vec![Permission::View])
    );
    assert_eq!(
        permissions("manager@acme.example").await,
        Some(vec![Permission::Manage, Permission::Billing]),
        "never changed through SSO"
    );
}

#[tokio::test]
async fn sso_session_ends_eight_hours_after_login_whatever_the_activity() {
    let h = harness().await;
    let (cookie, _) = h.sso_login("busy@acme.example", "/").await;
    let (_, s) = session_json(&h, &cookie).await;
    let expires = s["expires_at"].as_str().unwrap().to_string();
    // Active all day: a request every hour does not move the end.
    for _ in 0..7 {
        h.clock.advance(3600);
        let (status, s) = session_json(&h, &cookie).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(s["expires_at"], expires.as_str());
    }
    h.clock.advance(3600 - 1);
    assert_eq!(session_json(&h, &cookie).await.0, StatusCode::OK);
    h.clock.advance(2);
    assert_eq!(session_json(&h, &cookie).await.0, StatusCode::UNAUTHORIZED);
    // A new IdP login starts a new 8-hour session.
    let (again, _) = h.sso_login("busy@acme.example", "/").await;
    assert_eq!(session_json(&h, &again).await.0, StatusCode::OK);
}

#[tokio::test]
async fn refused_response_shows_a_page_logs_the_reason_and_writes_nothing() {
    let logs = CapturedLogs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer({
            let logs = logs.clone();
            move || logs.clone()
        })
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let h = harness().await;
    let before = h
        .state
        .store
        .backend()
        .scan(Table::Once, h.now())
        .await
        .unwrap()
        .len();
    let mut spec = h.spec("victim@acme.example", None);
    spec.audience = "https://someone-else.example/metadata".into();
    let r = h.acs(&spec, "/").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        r.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    assert!(cookie_named(&r, "identity_session").is_none());
    let text = page_text(r).await;
    assert!(text.contains("Sign-in refused"), "{text}");
    assert!(no_account(&h, "victim@acme.example").await);
    let after = h
        .state
        .store
        .backend()
        .scan(Table::Once, h.now())
        .await
        .unwrap()
        .len();
    assert_eq!(before, after, "no replay record, no request consumed");
    let logged = String::from_utf8(logs.contents()).unwrap();
    assert!(logged.contains("SAML response refused"), "{logged}");
    assert!(
        !logged.contains("victim@acme.example"),
        "no assertion content in logs"
    );
    assert!(
        !logged.contains("someone-else.example"),
        "no assertion content in logs"
    );
}

#[tokio::test]
async fn replayed_response_is_refused_at_the_acs() {
    let h = harness().await;
    let xml = h
        .signer
        .response(&h.spec("twice@acme.example", None))
        .unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode(xml);
    let fields = [("SAMLResponse", encoded.as_str())];
    let first = h.post_form("/sso/acs", &fields, None).await;
    assert_eq!(
        first.status(),
        StatusCode::OK,
        "IdP-initiated: the landing page"
    );
    assert!(cookie_named(&first, "identity_sso_pending").is_some());
    let second = h.post_form("/sso/acs", &fields, None).await;
    assert_eq!(second.status(), StatusCode::FORBIDDEN);
    assert!(cookie_named(&second, "identity_session").is_none());
}

/// Login CSRF through IdP-initiated SSO: another site can auto-post its own unsolicited
/// response into a visitor's browser. The ACS then starts no session; it holds the login
/// in the browser, names the account, and only a post from that page (same-origin, or its
/// form token) starts the session, for an account still under the IdP.
#[tokio::test]
async fn an_idp_initiated_login_starts_no_session_until_the_person_continues_from_our_page() {
    let h = harness().await;
    let r = h
        .acs(&h.spec("walk-in@acme.example", None), "/session")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        cookie_named(&r, "identity_session").is_none(),
        "no session yet"
    );
    let pending = cookie_named(&r, "identity_sso_pending").expect("the login, held");
    let page = page_text(r).await;
    assert!(page.contains("Continue as walk-in@acme.example"), "{page}");
    assert!(page.contains("action=\"/sso/continue\""), "{page}");
    // Another site posting the continue: refused, no session.
    let r = h
        .send(
            Request::post("/sso/continue")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::ORIGIN, "https://evil.example")
                .header("sec-fetch-site", "cross-site")
                .header(header::COOKIE, &pending)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(cookie_named(&r, "identity_session").is_none());
    // Our page's post without the held login, or with a forged one: nothing to continue.
    let r = h.post_form("/sso/continue", &[], None).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let forged = format!("{}x", pending);
    let r = h.post_form("/sso/continue", &[], Some(&forged)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Too late: five minutes.
    h.clock.advance(301);
    let r = h.post_form("/sso/continue", &[], Some(&pending)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // In time, from our page: the session starts, the held login is cleared.
    let r = h
        .acs(&h.spec("walk-in@acme.example", None), "/session")
        .await;
    let pending = cookie_named(&r, "identity_sso_pending").unwrap();
    let r = h.post_form("/sso/continue", &[], Some(&pending)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/session");
    let cleared = r
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.to_str().unwrap().starts_with("identity_sso_pending=;"));
    assert!(cleared, "the held login is cleared");
    let (status, s) = session_json(&h, &session_cookie(&r)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(s["email"], "walk-in@acme.example");
    assert_eq!(s["idp"], "acme");
}

#[tokio::test]
async fn response_to_an_unknown_request_is_refused() {
    let h = harness().await;
    let r = h
        .acs(&h.spec("who@acme.example", Some("_never_sent")), "/")
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(no_account(&h, "who@acme.example").await);
}

#[tokio::test]
async fn idp_initiated_login_is_refused_unless_the_idp_allows_it() {
    let h = harness_with(|idp| idp.allow_idp_initiated = false).await;
    let r = h.acs(&h.spec("unsolicited@acme.example", None), "/").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // SP-initiated still works.
    h.sso_login("unsolicited@acme.example", "/").await;
}

#[tokio::test]
async fn mfa_required_by_the_idp_is_enforced_with_a_page_saying_so() {
    let h = harness_with(|idp| idp.require_mfa = true).await;
    let r = h.acs(&h.spec("nomfa@acme.example", None), "/").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(page_text(r).await.contains("multi-factor"));
    let mut spec = h.spec("mfa@acme.example", None);
    spec.authn_context = Some("https://refeds.org/profile/mfa".into());
    let r = h.acs(&spec, "/").await;
    // IdP-initiated: on the page that names the account, which continues to a session.
    assert_eq!(r.status(), StatusCode::OK);
    let pending = cookie_named(&r, "identity_sso_pending").unwrap();
    assert!(page_text(r).await.contains("Continue as mfa@acme.example"));
    let r = h.post_form("/sso/continue", &[], Some(&pending)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(cookie_named(&r, "identity_session").is_some());
}

#[tokio::test]
async fn an_idp_cannot_sign_in_emails_of_another_idps_domain() {
    let h = harness().await;
    let mut other = h.idp.clone();
    other.id = "globex".into();
    other.entity_id = "https://idp.globex.example".into();
    other.domains = vec!["globex.example".into()];
    other.team = Some("globex".into());
    h.state.store.add_idp(&other).await.unwrap();
    for who in ["ceo@globex.example", "someone@unlisted.example"] {
        let r = h.acs(&h.spec(who, None), "/").await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{who}");
        assert!(
            h.state
                .store
                .account_by_email(&email(who))
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn relay_state_goes_only_to_same_origin_paths() {
    let h = harness().await;
    let r = h
        .acs(&h.spec("relay@acme.example", None), "https://evil.example/")
        .await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "IdP-initiated: the landing page"
    );
    let pending = cookie_named(&r, "identity_sso_pending").unwrap();
    let html = page_text(r).await;
    assert!(html.contains("Continue as relay@acme.example"), "{html}");
    assert!(!html.contains("evil.example"));
    let r = h.post_form("/sso/continue", &[], Some(&pending)).await;
    assert_eq!(location(&r), "/account/authorizations");
    let id = h.start_login("//evil.example").await;
    let r = h.acs(&h.spec("relay@acme.example", Some(&id)), "").await;
    assert_eq!(location(&r), "/account/authorizations");
}

#[tokio::test]
async fn login_page_sends_an_sso_domain_to_its_idp_and_others_to_their_password() {
    let h = harness().await;
    let r = h.get("/login?return_to=/oauth/authorize", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let text = page_text(r).await;
    assert!(text.contains("name=\"email\""));
    assert!(
        !text.contains("development IdP"),
        "no dev IdP link outside identity serve"
    );

    let r = h
        .post_form(
            "/login",
            &[
                ("email", "Someone@ACME.example"),
                ("return_to", "/oauth/authorize"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&r),
        "/sso/login?idp=acme&return_to=%2Foauth%2Fauthorize"
    );

    h.state
        .store
        .create_account(
            &email("solo@elsewhere.example"),
            Some(&SecretString::new("a long password")),
            AccountStatus::Active,
        )
        .await
        .unwrap();
    let wrong = h
        .post_form(
            "/login",
            &[("email", "solo@elsewhere.example"), ("password", "nope")],
            None,
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(cookie_named(&wrong, "identity_session").is_none());
    let unknown = h
        .post_form(
            "/login",
            &[("email", "ghost@elsewhere.example"), ("password", "nope")],
            None,
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    // The pages differ only in the email and in the form token (new for each browser).
    let without_token = |html: String| {
        let start = html
            .find("name=\"form_token\" value=\"")
            .expect("form token");
        let end = start + html[start..].find("\">").unwrap();
        format!("{}{}", &html[..start], &html[end..])
    };
    assert_eq!(
        without_token(page_text(wrong).await.replace("solo@", "ghost@")),
        without_token(page_text(unknown).await),
        "an unknown email reads like a wrong password"
    );
    let ok = h
        .post_form(
            "/login",
            &[
                ("email", "solo@elsewhere.example"),
                ("password", "a long password"),
            ],
            None,
        )
        .await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&ok), "/account/authorizations");
    let (_, s) = session_json(&h, &session_cookie(&ok)).await;
    assert_eq!(s["email"], "solo@elsewhere.example");
    assert_eq!(s["sso"], false);

    // A form posted from another site is refused (login CSRF).
    let r = h
        .send(
            Request::post("/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::ORIGIN, "https://evil.example")
                .body(Body::from(
                    "email=solo%40elsewhere.example&password=a+long+password",
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(cookie_named(&r, "identity_session").is_none());
}

/// A browser that sends no Fetch Metadata (older Firefox and Safari) signs in with the form
/// token bound to its `identity_form` cookie; `Origin: null` or our origin alone, or a token
/// of another browser, is refused.
#[tokio::test]
async fn without_fetch_metadata_the_form_token_bound_to_the_browser_lets_a_form_through() {
    let h = harness().await;
    h.state
        .store
        .create_account(
            &email("solo@elsewhere.example"),
            Some(&SecretString::new("a long password")),
            AccountStatus::Active,
        )
        .await
        .unwrap();
    let page = h.get("/login", None).await;
    let cookie = cookie_named(&page, "identity_form").expect("the form cookie");
    let html = page_text(page).await;
    let needle = "name=\"form_token\" value=\"";
    let start = html.find(needle).unwrap() + needle.len();
    let token = html[start..start + html[start..].find('"').unwrap()].to_string();
    let post = |origin: &'static str, cookie: Option<String>, token: Option<String>| {
        let mut r = Request::post("/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ORIGIN, origin);
        if let Some(c) = cookie {
            r = r.header(header::COOKIE, c);
        }
        let mut fields = vec![
            ("email", "solo@elsewhere.example".to_string()),
            ("password", "a long password".to_string()),
        ];
        if let Some(t) = token {
            fields.push(("form_token", t));
        }
        r.body(Body::from(serde_urlencoded::to_string(fields).unwrap()))
            .unwrap()
    };
    for (origin, c, t) in [
        ("null", None, None),
        (BASE, None, None),
        (BASE, Some(cookie.clone()), None),
        (BASE, None, Some(token.clone())),
        (
            BASE,
            Some("identity_form=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into()),
            Some(token.clone()),
        ),
        (
            "https://evil.example",
            Some(cookie.clone()),
            Some(token.clone()),
        ),
    ] {
        let r = h.send(post(origin, c.clone(), t.clone())).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{origin} {c:?} {t:?}");
        assert!(cookie_named(&r, "identity_session").is_none());
    }
    for origin in ["null", BASE] {
        let r = h
            .send(post(origin, Some(cookie.clone()), Some(token.clone())))
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{origin}");
        assert!(cookie_named(&r, "identity_session").is_some());
    }
}

/// Login CSRF: a response to someone else's AuthnRequest, posted by a browser that did not
/// start that login (no binding cookie, or the cookie of another login), is refused and
/// spends nothing; the browser that started it then signs in.
/// Login CSRF at the start: another site sending a browser to `/sso/login` (whoever runs a
/// registered IdP could sign the visitor in as themselves) gets a page asking to continue,
/// and nothing is started or written; the page's own link, a navigation from our pages or
/// one the person typed starts the login.
#[tokio::test]
async fn sso_login_starts_only_from_our_own_pages_or_the_person_and_another_site_gets_a_page() {
    let h = harness().await;
    let path = "/sso/login?idp=acme&return_to=%2Fsession";
    let from = |site: &'static str| {
        let h = &h;
        async move {
            h.send(
                Request::get(path)
                    .header("sec-fetch-site", site)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
        }
    };
    for site in ["cross-site", "same-site"] {
        let r = from(site).await;
        assert_eq!(r.status(), StatusCode::OK, "{site}");
        assert!(
            cookie_named(&r, "identity_saml_request").is_none(),
            "{site}"
        );
        assert!(r.headers().get(header::LOCATION).is_none());
        let page = page_text(r).await;
        assert!(page.contains("Another site sent you here"), "{page}");
        assert!(
            page.contains("href=\"/sso/login?idp=acme&amp;return_to=%2Fsession\""),
            "the page's link continues: {page}"
        );
    }
    for site in ["same-origin", "none"] {
        let r = from(site).await;
        assert_eq!(r.status(), StatusCode::FOUND, "{site}");
        assert!(
            cookie_named(&r, "identity_saml_request").is_some(),
            "{site}"
        );
        assert!(location(&r).starts_with("https://idp.acme.example/sso?"));
    }
}

#[tokio::test]
async fn sso_login_finishes_only_in_the_browser_that_started_it() {
    let h = harness().await;
    // The attacker's browser starts a login and signs in at the IdP as themselves.
    let attackers = h.start_login("/account/authorizations").await;
    let attackers_cookie = h.saml_cookie.lock().unwrap().clone().unwrap();
    // The victim's browser started a login of its own (or none at all).
    let _victims = h.start_login("/account/authorizations").await;
    let victims_cookie = h.saml_cookie.lock().unwrap().clone().unwrap();
    let spec = h.spec("attacker@acme.example", Some(&attackers));
    for cookie in [None, Some(victims_cookie.as_str())] {
        let r = h.acs_with_cookie(&spec, "", cookie).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{cookie:?}");
        assert!(cookie_named(&r, "identity_session").is_none());
        assert!(page_text(r).await.contains("started in another browser"));
    }
    assert!(
        h.state
            .store
            .account_by_email(&email("attacker@acme.example"))
            .await
            .unwrap()
            .is_none(),
        "nothing written"
    );
    let r = h.acs_with_cookie(&spec, "", Some(&attackers_cookie)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(cookie_named(&r, "identity_session").is_some());
    // The binding cookie is spent with the answer.
    let cleared = r
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.to_str().unwrap().starts_with("identity_saml_request=;"));
    assert!(cleared, "the binding cookie is cleared");
}

/// The development IdP (or any IdP marked development) is refused outside `identity serve`:
/// no AuthnRequest is sent to it and no response from it is accepted.
#[tokio::test]
async fn development_idp_is_refused_outside_identity_serve() {
    let h = harness_with(|idp| {
        idp.development = true;
        idp.allow_idp_initiated = true;
    })
    .await;
    let r = h.get("/sso/login?idp=acme", None).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get(header::LOCATION).is_none());
    let r = h.acs(&h.spec("dev@acme.example", None), "").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(page_text(r).await.contains("development identity provider"));
    assert!(no_account(&h, "dev@acme.example").await);
}

/// An existing account without a password, not registered for the IdP, is linked only
/// when its owner follows the emailed link: the SSO login itself signs nobody in.
#[tokio::test]
async fn unregistered_account_moves_to_sso_only_through_the_emailed_link() {
    let h = harness().await;
    h.state
        .store
        .create_account(&email("early@acme.example"), None, AccountStatus::Active)
        .await
        .unwrap();
    let id = h.start_login("/account/authorizations").await;
    let r = h.acs(&h.spec("early@acme.example", Some(&id)), "").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(cookie_named(&r, "identity_session").is_none());
    assert!(page_text(r).await.contains("Check your email"));
    let path = outbox_path(&h, "early@acme.example", "/sso/link/").await;
    let r = h.get(&path, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(page_text(r).await.contains("Move to single sign-on"));
    let account = h
        .state
        .store
        .account_by_email(&email("early@acme.example"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.sso_idp, None, "a GET changes nothing");
    let r = h.post_form(&path, &[], None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = h.post_form(&path, &[], None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "once");
    let (_, to) = h
        .sso_login("early@acme.example", "/account/authorizations")
        .await;
    assert_eq!(to, "/account/authorizations");
}

/// Counts what is handed to the mail service.
#[derive(Debug, Default)]
struct CountingSender(std::sync::atomic::AtomicUsize);

#[async_trait::async_trait]
impl identity_shared::outbox::EmailSender for CountingSender {
    async fn send(&self, _: &identity_shared::outbox::OutboxMessage) -> Result<(), String> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

/// Past the hourly cap of link messages, further SSO logins for the account write no new
/// message, and nothing is handed to the mail service: the newest message is not sent again
/// and again.
#[tokio::test]
async fn the_outbox_is_delivered_only_when_a_message_was_written() {
    use identity_shared::sso::MAX_LINK_MESSAGES_PER_HOUR;
    let h = harness().await;
    h.state
        .store
        .create_account(&email("early@acme.example"), None, AccountStatus::Active)
        .await
        .unwrap();
    let sender = std::sync::Arc::new(CountingSender::default());
    let mut state = h.state.clone();
    state.mail = sender.clone();
    let router = identity_cli::router(state);
    for i in 0..MAX_LINK_MESSAGES_PER_HOUR + 3 {
        let xml = h
            .signer
            .response(&h.spec("early@acme.example", None))
            .unwrap();
        let encoded = base64::engine::general_purpose::STANDARD.encode(xml);
        let body = serde_urlencoded::to_string([("SAMLResponse", encoded.as_str())]).unwrap();
        let r = router
            .clone()
            .oneshot(
                Request::post("/sso/acs")
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "login {i}");
        assert!(page_text(r).await.contains("Check your email"));
    }
    assert_eq!(
        sender.0.load(std::sync::atomic::Ordering::SeqCst),
        MAX_LINK_MESSAGES_PER_HOUR,
        "one delivery per message written"
    );
}

#[tokio::test]
async fn sp_metadata_names_our_entity_acs_and_certificate() {
    let h = harness().await;
    let r = h.get("/sso/metadata", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let xml = page_text(r).await;
    let keys = h.state.secrets.saml_sp_keys().await.unwrap();
    assert!(xml.contains(&format!("entityID=\"{SP_ENTITY}\"")), "{xml}");
    assert!(xml.contains(ACS));
    assert!(xml.contains(&keys.current.certificate_base64()));
    let parsed: samael::metadata::EntityDescriptor = xml.parse().expect("metadata parses");
    assert_eq!(parsed.entity_id.as_deref(), Some(SP_ENTITY));
    assert!(
        xml.contains(&format!(
            r#"<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{BASE}/sso/slo"/>"#
        )),
        "the SLO endpoint is advertised: {xml}"
    );
}

#[tokio::test]
async fn dev_idp_signs_a_person_in_through_the_whole_path() {
    let (mut state, _clock, _dir) = app_state().await;
    let mut config = (*state.config).clone();
    config.dev_idp = true;
    state.config = std::sync::Arc::new(config);
    let dev = identity_cli::dev_idp::install(&state).await.unwrap();
    // A second start keeps the same key and IdP.
    let again = identity_cli::dev_idp::install(&state).await;
    assert!(again.is_ok());
    let router = identity_cli::router_with_dev_idp(state.clone(), dev);
    let send = |r: Request<Body>| router.clone().oneshot(r);

    let login = send(Request::get("/login").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert!(page_text(login).await.contains("/sso/login?idp=dev"));
    let r = send(
        Request::get("/sso/login?idp=dev&return_to=/session")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let binding = binding_cookies(&r).expect("the login-binding cookies");
    let to_idp = location(&r);
    assert!(to_idp.starts_with("http://127.0.0.1:3000/dev-idp/sso?SAMLRequest="));
    let page = send(
        Request::get(to_idp.trim_start_matches(BASE))
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let page = page_text(page).await;
    let hidden = |html: &str, name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let start = html
            .find(&marker)
            .unwrap_or_else(|| panic!("{name} in {html}"))
            + marker.len();
        html[start..start + html[start..].find('"').unwrap()].replace("&#39;", "'")
    };
    let request_id = hidden(&page, "request_id");
    let relay = hidden(&page, "relay_state");
    assert!(!request_id.is_empty());
    let form = serde_urlencoded::to_string([
        ("email", "me@laptop.example"),
        ("request_id", &request_id),
        ("relay_state", &relay),
    ])
    .unwrap();
    let signed = send(
        Request::post("/dev-idp/sso")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .unwrap(),
    )
    .await
    .unwrap();
    let signed = page_text(signed).await;
    let saml_response = hidden(&signed, "SAMLResponse");
    let relay = hidden(&signed, "RelayState");
    let form =
        serde_urlencoded::to_string([("SAMLResponse", &saml_response), ("RelayState", &relay)])
            .unwrap();
    let r = send(
        Request::post("/sso/acs")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, binding)
            .body(Body::from(form))
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/session");
    let cookie = session_cookie(&r);
    let s = send(
        Request::get("/session")
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    let s = body_json(s).await;
    assert_eq!(s["email"], "me@laptop.example");
    assert_eq!(s["idp"], "dev");
}

#[tokio::test]
async fn password_reset_pages_set_a_new_password_through_a_single_use_link() {
    let h = harness().await;
    h.state
        .store
        .create_account(
            &email("forgot@plain.example"),
            Some(&SecretString::new("the old password")),
            AccountStatus::Active,
        )
        .await
        .unwrap();
    // Someone is signed in with the old password (perhaps not its owner).
    let before = h
        .post_form(
            "/login",
            &[
                ("email", "forgot@plain.example"),
                ("password", "the old password"),
            ],
            None,
        )
        .await;
    let old_session = session_cookie(&before);
    assert_eq!(
        h.get("/account/password/reset", None).await.status(),
        StatusCode::OK
    );
    let known = h
        .post_form(
            "/account/password/reset",
            &[("email", "forgot@plain.example")],
            None,
        )
        .await;
    let unknown = h
        .post_form(
            "/account/password/reset",
            &[("email", "nobody@plain.example")],
            None,
        )
        .await;
    assert_eq!(known.status(), StatusCode::OK);
    assert_eq!(
        page_text(known).await,
        page_text(unknown).await,
        "the answer does not tell whether the account exists"
    );
    let keys = h.state.secrets.cookie_keys().await.unwrap();
    let body = h
        .state
        .store
        .outbox(Some(&email("forgot@plain.example")))
        .await
        .unwrap()[0]
        .body(&keys)
        .unwrap();
    let path = body
        .expose_secret()
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:3000/account/password/reset/"))
        .unwrap()
        .trim_start_matches(BASE)
        .to_string();
    assert_eq!(h.get(&path, None).await.status(), StatusCode::OK);
    let differ = h
        .post_form(
            &path,
            &[("password", "a brand new password"), ("confirm", "other")],
            None,
        )
        .await;
    assert_eq!(differ.status(), StatusCode::BAD_REQUEST);
    let done = h
        .post_form(
            &path,
            &[
                ("password", "a brand new password"),
                ("confirm", "a brand new password"),
            ],
            None,
        )
        .await;
    assert_eq!(done.status(), StatusCode::OK);
    assert!(page_text(done).await.contains("signed out everywhere"));
    // The reset ended the session the old password opened.
    let r = h.get("/session", Some(&old_session)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let again = h
        .post_form(
            &path,
            &[
                ("password", "yet another password"),
                ("confirm", "yet another password"),
            ],
            None,
        )
        .await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    let r = h
        .post_form(
            "/login",
            &[
                ("email", "forgot@plain.example"),
                ("password", "a brand new password"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

/// An active account with a password.
async fn password_account(
    h: &Harness,
    address: &str,
    password: &str,
) -> identity_shared::accounts::Account {
    h.state
        .store
        .create_account(
            &email(address),
            Some(&SecretString::new(password)),
            AccountStatus::Active,
        )
        .await
        .unwrap()
}

/// `n` wrong passwords for `address`, each from another source address (so only the
/// email's own limit counts them all).
async fn guess_passwords(h: &Harness, address: &str, n: u32) {
    for i in 0..n {
        post_from(
            h,
            &format!("192.0.2.{i}"),
            "/login",
            &[("email", address), ("password", "guess")],
        )
        .await;
    }
}

/// `n` wrong passwords for `address` from addresses of the /24 `prefix` ("198.51.100").
async fn guess_passwords_from(h: &Harness, prefix: &str, address: &str, n: u32) {
    for i in 0..n {
        post_from(
            h,
            &format!("{prefix}.{}", 100 + i),
            "/login",
            &[("email", address), ("password", "guess")],
        )
        .await;
    }
}

/// A form post as a browser at `address` sends it (the peer address `identity serve`
/// records, which the throttle counts by).
async fn post_from(
    h: &Harness,
    address: &str,
    uri: &str,
    fields: &[(&str, &str)],
) -> axum::response::Response {
    let mut r = Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ORIGIN, BASE)
        .header("sec-fetch-site", "same-origin")
        .body(Body::from(serde_urlencoded::to_string(fields).unwrap()))
        .unwrap();
    let peer: std::net::SocketAddr = format!("{address}:50000").parse().unwrap();
    r.extensions_mut().insert(axum::extract::ConnectInfo(peer));
    h.send(r).await
}

fn retry_after(r: &axum::response::Response) -> i64 {
    r.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn strangers_lock_an_email_from_their_own_prefix_and_elsewhere_the_right_password_shows_its_work()
 {
    let h = harness().await;
    password_account(&h, "target@plain.example", "the right password").await;
    let limit = h.state.config.limits.password.subject;
    assert_eq!(limit, 10, "the documented default");
    let wrong = [("email", "target@plain.example"), ("password", "guess")];
    let right = [
        ("email", "target@plain.example"),
        ("password", "the right password"),
    ];
    // Each guess from another address of one /24: the email's limit there is what locks.
    for i in 1..limit {
        let r = post_from(&h, &format!("198.51.100.{i}"), "/login", &wrong).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "guess {i}");
    }
    let r = post_from(&h, "198.51.100.99", "/login", &wrong).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "the {limit}th");
    assert_eq!(retry_after(&r), 900);
    // From that prefix the right password is refused too, with a way out.
    let r = post_from(&h, "198.51.100.200", "/login", &right).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(cookie_named(&r, "identity_session").is_none());
    let text = page_text(r).await;
    assert!(text.contains("try again in 15 minutes"), "{text}");
    assert!(
        text.contains("/account/password/reset"),
        "the page says how to reset the password: {text}"
    );
    // From elsewhere the person is not refused: a browser not known to the account is
    // asked for a proof of work first, and its right password checked after it.
    let r = post_from(&h, "203.0.113.5", "/login", &right).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(cookie_named(&r, "identity_session").is_none());
    let page = page_text(r).await;
    assert!(
        page.contains("Many sign-ins are failing right now"),
        "{page}"
    );
    let challenge = crate::oauth_common::hidden_value(&page, "work_challenge").unwrap();
    let nonce = identity_tests::solve_work(&challenge, "target@plain.example");
    let mut proven = right.to_vec();
    proven.extend([
        ("work_challenge", challenge.as_str()),
        ("work_nonce", nonce.as_str()),
    ]);
    let r = post_from(&h, "203.0.113.5", "/login", &proven).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "signed in with its work");
    assert!(cookie_named(&r, "identity_session").is_some());
    // Work for another email, or none, is not taken for this one.
    let r = post_from(&h, "203.0.113.6", "/login", &proven[..2]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let other = identity_tests::solve_work(&challenge, "other@plain.example");
    proven[3].1 = &other;
    let r = post_from(&h, "203.0.113.6", "/login", &proven).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(cookie_named(&r, "identity_session").is_none());
    // After the lock, the right password signs in from the guessers' prefix as well.
    h.clock.advance(900);
    let r = post_from(&h, "198.51.100.200", "/login", &right).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // The next lock there within a day lasts twice as long.
    for i in 1..=limit {
        post_from(&h, &format!("198.51.100.{i}"), "/login", &wrong).await;
    }
    let r = post_from(&h, "198.51.100.200", "/login", &right).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&r), 1800);
}

#[tokio::test]
async fn a_browser_that_signed_in_before_signs_in_through_a_lock_made_by_strangers() {
    let h = harness().await;
    password_account(&h, "regular@plain.example", "the right password").await;
    let right = [
        ("email", "regular@plain.example"),
        ("password", "the right password"),
    ];
    let r = post_from(&h, "198.51.100.7", "/login", &right).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let device = r
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.contains("identity_device="))
        .expect("the browser is remembered");
    assert!(device.contains("HttpOnly"), "{device}");
    let device = device.split(';').next().unwrap().to_string();
    // Strangers at the person's own prefix lock the email there.
    guess_passwords_from(&h, "198.51.100", "regular@plain.example", 10).await;
    let post = |cookie: Option<String>| {
        let h = &h;
        async move {
            let mut r = Request::post("/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::ORIGIN, BASE)
                .header("sec-fetch-site", "same-origin");
            if let Some(c) = cookie {
                r = r.header(header::COOKIE, c);
            }
            let mut r = r
                .body(Body::from(serde_urlencoded::to_string(right).unwrap()))
                .unwrap();
            let peer: std::net::SocketAddr = "198.51.100.7:50000".parse().unwrap();
            r.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            h.send(r).await
        }
    };
    assert_eq!(post(None).await.status(), StatusCode::TOO_MANY_REQUESTS);
    let r = post(Some(device)).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "the known browser goes on"
    );
    assert!(cookie_named(&r, "identity_session").is_some());
}

#[tokio::test]
async fn unknown_and_known_emails_are_throttled_and_answered_alike() {
    let h = harness().await;
    password_account(&h, "known@plain.example", "the right password").await;
    let mut last = Vec::new();
    for who in ["known@plain.example", "ghost@plain.example"] {
        let mut statuses = Vec::new();
        let mut page = String::new();
        for i in 0..11 {
            let r = post_from(
                &h,
                &format!("192.0.2.{i}"),
                "/login",
                &[("email", who), ("password", "guess")],
            )
            .await;
            statuses.push(r.status());
            page = page_text(r).await;
        }
        last.push((statuses, page));
    }
    assert_eq!(last[0], last[1], "the same statuses and the same 429 page");
    assert_eq!(last[0].0[9], StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn one_address_prefix_is_locked_across_emails_and_other_prefixes_are_not() {
    let h = harness().await;
    password_account(&h, "bystander@plain.example", "the right password").await;
    let limit = h.state.config.limits.password.address;
    for i in 0..limit {
        let victim = format!("victim{i}@plain.example");
        let r = post_from(
            &h,
            "192.0.2.66",
            "/login",
            &[("email", &victim), ("password", "guess")],
        )
        .await;
        let expected = if i + 1 == limit {
            StatusCode::TOO_MANY_REQUESTS
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(r.status(), expected, "attempt {i}");
    }
    let right = [
        ("email", "bystander@plain.example"),
        ("password", "the right password"),
    ];
    let r = post_from(&h, "192.0.2.66", "/login", &right).await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the address is locked"
    );
    let r = post_from(&h, "192.0.2.67", "/login", &right).await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "so is every address of its /24"
    );
    let r = post_from(&h, "198.51.100.67", "/login", &right).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "another prefix is not");
}

#[tokio::test]
async fn a_password_reset_lifts_the_sign_in_lock_of_its_account() {
    let h = harness().await;
    password_account(&h, "locked@plain.example", "the old password").await;
    guess_passwords(&h, "locked@plain.example", 10).await;
    let r = post_from(
        &h,
        "203.0.113.9",
        "/account/password/reset",
        &[("email", "locked@plain.example")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let path = outbox_path(&h, "locked@plain.example", "/account/password/reset/").await;
    let r = post_from(
        &h,
        "203.0.113.9",
        &path,
        &[
            ("password", "a brand new password"),
            ("confirm", "a brand new password"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = post_from(
        &h,
        "203.0.113.9",
        "/login",
        &[
            ("email", "locked@plain.example"),
            ("password", "a brand new password"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "the lock is lifted");
    // A guesser starts again from zero and is locked again after the limit.
    for i in 0..10 {
        let r = post_from(
            &h,
            &format!("192.0.2.{i}"),
            "/login",
            &[("email", "locked@plain.example"), ("password", "guess")],
        )
        .await;
        assert_eq!(
            r.status() == StatusCode::TOO_MANY_REQUESTS,
            i == 9,
            "attempt {i}"
        );
    }
}

#[tokio::test]
async fn password_reset_requests_are_limited_per_email_and_the_outbox_cannot_be_filled() {
    let h = harness().await;
    password_account(&h, "inbox@plain.example", "a password").await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        let r = post_from(
            &h,
            &format!("192.0.2.{i}"),
            "/account/password/reset",
            &[("email", "inbox@plain.example")],
        )
        .await;
        statuses.push(r.status());
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    let messages = h
        .state
        .store
        .outbox(Some(&email("inbox@plain.example")))
        .await
        .unwrap();
    assert_eq!(messages.len(), 2);
}

#[tokio::test]
async fn reset_requests_for_one_email_from_many_prefixes_surge_into_a_proof_of_work_not_a_lock() {
    let h = harness().await;
    password_account(&h, "popular@plain.example", "a password").await;
    let ask = [("email", "popular@plain.example")];
    let limit = h.state.config.limits.reset.subject;
    for i in 0..limit {
        let r = post_from(
            &h,
            &format!("198.51.{i}.1"),
            "/account/password/reset",
            &ask,
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK, "request {i}");
        assert!(page_text(r).await.contains("Check your email"));
    }
    // From yet another prefix: not refused, asked for the work first.
    let r = post_from(&h, "203.0.113.9", "/account/password/reset", &ask).await;
    assert_ne!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let page = page_text(r).await;
    assert!(
        page.contains("Many reset requests are being made right now"),
        "{page}"
    );
    let challenge = crate::oauth_common::hidden_value(&page, "work_challenge").unwrap();
    let nonce = identity_tests::solve_work(&challenge, "popular@plain.example");
    let proven = [
        ask[0],
        ("work_challenge", challenge.as_str()),
        ("work_nonce", nonce.as_str()),
    ];
    let r = post_from(&h, "203.0.113.9", "/account/password/reset", &proven).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(page_text(r).await.contains("Check your email"));
}

#[tokio::test]
async fn the_upgrade_confirmation_password_counts_against_the_lock_of_its_prefix_and_strangers_elsewhere_leave_it_be()
 {
    let h = harness().await;
    let confirm = |cookie: String| {
        let h = &h;
        async move {
            let mut r = Request::post("/sso/upgrade")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::ORIGIN, BASE)
                .header("sec-fetch-site", "same-origin")
                .header(header::COOKIE, &cookie)
                .body(Body::from(
                    "answer=confirm&password=correct+horse+battery".to_string(),
                ))
                .unwrap();
            r.extensions_mut().insert(axum::extract::ConnectInfo(
                "203.0.113.1:1".parse::<std::net::SocketAddr>().unwrap(),
            ));
            h.send(r).await
        }
    };
    let upgrade_cookie = |who: &'static str| {
        let h = &h;
        async move {
            let id = h.start_login("/session").await;
            let r = h.acs(&h.spec(who, Some(&id)), "").await;
            assert_eq!(r.status(), StatusCode::SEE_OTHER);
            assert_eq!(location(&r), "/sso/upgrade");
            cookie_named(&r, "identity_sso_upgrade").unwrap()
        }
    };
    let linked = |who: &'static str| {
        let h = &h;
        async move {
            h.state
                .store
                .account_by_email(&email(who))
                .await
                .unwrap()
                .unwrap()
                .sso_idp
                .is_some()
        }
    };
    // Strangers elsewhere fail often enough to surge; the person's IdP vouched for them,
    // so the confirmation goes on without asking for more.
    password_account(&h, "stayer@acme.example", "correct horse battery").await;
    guess_passwords_from(&h, "192.0.2", "stayer@acme.example", 10).await;
    let cookie = upgrade_cookie("stayer@acme.example").await;
    let r = confirm(cookie).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(linked("stayer@acme.example").await);
    // Guesses from the person's own prefix lock the email there: the SSO login asks for
    // the password once, and the lock holds there too.
    password_account(&h, "mover@acme.example", "correct horse battery").await;
    guess_passwords_from(&h, "203.0.113", "mover@acme.example", 10).await;
    let cookie = upgrade_cookie("mover@acme.example").await;
    let r = confirm(cookie).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(!linked("mover@acme.example").await, "nothing moved");
}

#[tokio::test]
async fn a_blocked_account_signs_in_nowhere_and_its_sessions_end_until_unblocked() {
    use identity_shared::accounts::Offboarding;
    let h = harness().await;
    let account = password_account(&h, "leaver@plain.example", "the password").await;
    let fields = [
        ("email", "leaver@plain.example"),
        ("password", "the password"),
    ];
    let r = h.post_form("/login", &fields, None).await;
    let session = session_cookie(&r);
    assert_eq!(
        h.get("/session", Some(&session)).await.status(),
        StatusCode::OK
    );
    h.state.store.block_account(&account.id).await.unwrap();
    assert_eq!(
        h.get("/session", Some(&session)).await.status(),
        StatusCode::UNAUTHORIZED,
        "its session ended at once"
    );
    let r = h.post_form("/login", &fields, None).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(page_text(r).await.contains("blocked"));
    h.state.store.unblock_account(&account.id).await.unwrap();
    let r = h.post_form("/login", &fields, None).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let again = session_cookie(&r);
    h.state
        .store
        .sign_out_everywhere(&account.id)
        .await
        .unwrap();
    assert_eq!(
        h.get("/session", Some(&again)).await.status(),
        StatusCode::UNAUTHORIZED,
        "signed out everywhere"
    );
}

// ---------------------------------------------------------------------------------------
// SAML Single Logout (issue 16, point 6)
// ---------------------------------------------------------------------------------------

const SLO: &str = "http://127.0.0.1:3000/sso/slo";
const IDP_SLO: &str = "https://idp.acme.example/slo";

async fn slo_harness() -> Harness {
    harness_with(|i| i.slo_url = Some(IDP_SLO.into())).await
}

/// Our LogoutRequest as the IdP receives it: the message XML, its ID, and whether the
/// query signature verifies with our SP certificate (OpenSSL, not the code that signed).
struct OurLogoutRequest {
    xml: String,
    id: String,
}

impl Harness {
    fn logout_spec(&self, kind: LogoutKind) -> LogoutSpec {
        LogoutSpec {
            issuer: self.idp.entity_id.clone(),
            destination: SLO.into(),
            now: self.now(),
            kind,
        }
    }

    /// The IdP's message posted by the browser from the IdP's page (HTTP-POST binding).
    async fn slo_post(&self, field: &str, encoded: &str) -> axum::response::Response {
        let body = serde_urlencoded::to_string([(field, encoded)]).unwrap();
        self.send(
            Request::post("/sso/slo")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::ORIGIN, "https://idp.acme.example")
                .header("sec-fetch-site", "cross-site")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    /// The sign-out button of a page, in a browser holding `cookie`.
    async fn sign_out(&self, cookie: &str) -> axum::response::Response {
        self.send(
            Request::post("/logout")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::ACCEPT, "text/html")
                .header(header::ORIGIN, BASE)
                .header("sec-fetch-site", "same-origin")
                .header(header::COOKIE, cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    /// The SessionIndex our stored session of `cookie` keeps.
    async fn session_index(&self, cookie: &str) -> String {
        let keys = self.state.secrets.cookie_keys().await.unwrap();
        let value = cookie.split_once('=').unwrap().1;
        let id = identity_shared::session::SessionId::open(&keys, value).unwrap();
        use identity_shared::session::Sessions;
        let session = self.state.store.session(&id).await.unwrap().unwrap();
        session.saml.unwrap().session_index.unwrap()
    }

    /// Reads and checks our HTTP-Redirect message at `location` (sent to the IdP's SLO
    /// endpoint, signed with our current SP key over the exact query string).
    async fn our_redirect_message(
        &self,
        location: &str,
        param: &str,
    ) -> (String, Vec<(String, String)>) {
        let query = location
            .strip_prefix(&format!("{IDP_SLO}?"))
            .unwrap_or_else(|| panic!("sent to the IdP's SLO endpoint: {location}"));
        let signed_part = query.split("&Signature=").next().unwrap();
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(
            get("SigAlg").as_deref(),
            Some("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256")
        );
        let signature = base64::engine::general_purpose::STANDARD
            .decode(get("Signature").expect("signed"))
            .unwrap();
        let keys = self.state.secrets.saml_sp_keys().await.unwrap();
        let cert = openssl::x509::X509::from_pem(keys.current.certificate_pem.as_bytes()).unwrap();
        let public = cert.public_key().unwrap();
        let mut v =
            openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &public).unwrap();
        v.update(signed_part.as_bytes()).unwrap();
        assert!(v.verify(&signature).unwrap(), "our signature verifies");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(get(param).expect("the message"))
            .unwrap();
        let mut xml = String::new();
        flate2::read::DeflateDecoder::new(raw.as_slice())
            .read_to_string(&mut xml)
            .unwrap();
        (xml, pairs)
    }

    async fn our_logout_request(&self, location: &str) -> OurLogoutRequest {
        let (xml, _) = self.our_redirect_message(location, "SAMLRequest").await;
        // Read back with samael's model (an independent reader).
        let parsed: samael::schema::LogoutRequest = xml.parse().expect("a LogoutRequest");
        assert_eq!(parsed.destination.as_deref(), Some(IDP_SLO));
        assert_eq!(
            parsed.issuer.and_then(|i| i.value).as_deref(),
            Some(SP_ENTITY)
        );
        OurLogoutRequest {
            id: parsed.id.expect("an ID"),
            xml,
        }
    }
}

#[tokio::test]
async fn signing_out_of_an_sso_session_ends_it_first_then_sends_the_idp_a_signed_logout_request() {
    let h = slo_harness().await;
    let (cookie, _) = h.sso_login("sam@acme.example", "/").await;
    let index = h.session_index(&cookie).await;
    let r = h.sign_out(&cookie).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // Our session is over before the IdP says anything.
    assert_eq!(session_json(&h, &cookie).await.0, StatusCode::UNAUTHORIZED);
    let request = h.our_logout_request(&location(&r)).await;
    // The login's NameID (with its Format) and SessionIndex.
    assert!(
        request.xml.contains(
            r#"<saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">sam@acme.example</saml:NameID>"#
        ),
        "{}",
        request.xml
    );
    assert!(
        request
            .xml
            .contains(&format!("<samlp:SessionIndex>{index}</samlp:SessionIndex>")),
        "{}",
        request.xml
    );

    // The IdP answers (HTTP-POST, an enveloped XML signature by xmlsec): signed out there too.
    let answer = h
        .signer
        .logout_post(&h.logout_spec(LogoutKind::Response {
            in_response_to: request.id.clone(),
            success: true,
        }))
        .unwrap();
    let r = h.slo_post("SAMLResponse", &answer).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(page_text(r).await.contains("signed out here and at"));
    // The same answer again: refused (InResponseTo is good once).
    let r = h.slo_post("SAMLResponse", &answer).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn signing_out_at_an_idp_without_an_slo_endpoint_goes_to_the_login_page() {
    let h = harness().await;
    let (cookie, _) = h.sso_login("sam@acme.example", "/").await;
    let r = h.sign_out(&cookie).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/login");
    assert_eq!(session_json(&h, &cookie).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_idp_that_does_not_confirm_the_logout_leaves_us_signed_out_and_says_so() {
    let h = slo_harness().await;
    let (cookie, _) = h.sso_login("sam@acme.example", "/").await;
    let r = h.sign_out(&cookie).await;
    let request = h.our_logout_request(&location(&r)).await;
    let answer = h
        .signer
        .logout_post(&h.logout_spec(LogoutKind::Response {
            in_response_to: request.id,
            success: false,
        }))
        .unwrap();
    let r = h.slo_post("SAMLResponse", &answer).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(page_text(r).await.contains("did not confirm"));
    assert_eq!(session_json(&h, &cookie).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn logout_responses_unsigned_wrongly_signed_for_another_destination_stale_or_unasked_are_refused()
 {
    let h = slo_harness().await;
    let (cookie, _) = h.sso_login("sam@acme.example", "/").await;
    let request = h
        .our_logout_request(&location(&h.sign_out(&cookie).await))
        .await;
    let answer = |spec: &LogoutSpec| h.signer.logout_post(spec).unwrap();
    let good = h.logout_spec(LogoutKind::Response {
        in_response_to: request.id.clone(),
        success: true,
    });
    let stranger = IdpSigner::generate("not the IdP").unwrap();
    let mut elsewhere = good.clone();
    elsewhere.destination = "https://other.example/sso/slo".into();
    let mut stale = good.clone();
    stale.now -= 3600;
    let mut unasked = good.clone();
    unasked.kind = LogoutKind::Response {
        in_response_to: "_never_sent".into(),
        success: true,
    };
    let (unsigned, _) = h.signer.unsigned_logout(&good);
    let cases = [
        (
            "unsigned",
            base64::engine::general_purpose::STANDARD.encode(unsigned),
        ),
        (
            "signed by another key",
            stranger.logout_post(&good).unwrap(),
        ),
        ("another Destination", answer(&elsewhere)),
        ("stale", answer(&stale)),
        ("answering nothing we sent", answer(&unasked)),
    ];
    for (what, encoded) in cases {
        let r = h.slo_post("SAMLResponse", &encoded).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{what}");
        assert!(page_text(r).await.contains("Sign-out refused"), "{what}");
    }
    // None of them spent our request: the IdP's real answer still counts.
    let r = h.slo_post("SAMLResponse", &answer(&good)).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_idps_logout_request_ends_every_session_of_that_name_id_and_is_answered_signed() {
    let h = slo_harness().await;
    let (first, _) = h.sso_login("sam@acme.example", "/").await;
    let (second, _) = h.sso_login("sam@acme.example", "/").await;
    let (other, _) = h.sso_login("kim@acme.example", "/").await;
    let request = h.logout_spec(LogoutKind::Request {
        name_id: "sam@acme.example".into(),
        session_index: None,
    });
    let (xml, id) = h.signer.unsigned_logout(&request);
    let signed = h.signer.sign_element(&xml, &id, SigAlg::RsaSha256).unwrap();
    let r = h
        .slo_post(
            "SAMLRequest",
            &base64::engine::general_purpose::STANDARD.encode(signed),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FOUND, "{}", page_text(r).await);
    assert_eq!(session_json(&h, &first).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(session_json(&h, &second).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        session_json(&h, &other).await.0,
        StatusCode::OK,
        "kim stays"
    );
    // Our signed LogoutResponse, to the IdP's SLO endpoint, answering its request.
    let (answer, _) = h.our_redirect_message(&location(&r), "SAMLResponse").await;
    assert!(
        answer.contains(&format!(r#"InResponseTo="{id}""#)),
        "{answer}"
    );
    assert!(answer.contains(&format!(r#"Destination="{IDP_SLO}""#)));
    assert!(answer.contains("urn:oasis:names:tc:SAML:2.0:status:Success"));
}

#[tokio::test]
async fn an_idps_logout_request_with_a_session_index_ends_only_that_session() {
    let h = slo_harness().await;
    let (first, _) = h.sso_login("sam@acme.example", "/").await;
    let (second, _) = h.sso_login("sam@acme.example", "/").await;
    let index = h.session_index(&first).await;
    // The HTTP-Redirect binding this time: the query signed with the IdP's key.
    let (xml, _) = h
        .signer
        .unsigned_logout(&h.logout_spec(LogoutKind::Request {
            name_id: "sam@acme.example".into(),
            session_index: Some(index),
        }));
    let query = h
        .signer
        .redirect_query(&xml, Some("back-to-portal"), true)
        .unwrap();
    let r = h.get(&format!("/sso/slo?{query}"), None).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(session_json(&h, &first).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(session_json(&h, &second).await.0, StatusCode::OK);
    let (_, pairs) = h.our_redirect_message(&location(&r), "SAMLResponse").await;
    assert!(
        pairs.contains(&("RelayState".into(), "back-to-portal".into())),
        "the RelayState goes back"
    );
}

#[tokio::test]
async fn idp_logout_requests_unsigned_wrongly_signed_for_another_destination_stale_or_replayed_end_nothing()
 {
    let h = slo_harness().await;
    let (cookie, _) = h.sso_login("sam@acme.example", "/").await;
    let good = h.logout_spec(LogoutKind::Request {
        name_id: "sam@acme.example".into(),
        session_index: None,
    });
    let stranger = IdpSigner::generate("not the IdP").unwrap();
    let mut elsewhere = good.clone();
    elsewhere.destination = "https://other.example/sso/slo".into();
    let mut stale = good.clone();
    stale.now -= 3600;
    let (unsigned, _) = h.signer.unsigned_logout(&good);
    let (xml, _) = h.signer.unsigned_logout(&good);
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    let post = [
        ("unsigned", b64(unsigned.clone())),
        (
            "signed by another key",
            stranger.logout_post(&good).unwrap(),
        ),
        (
            "another Destination",
            h.signer.logout_post(&elsewhere).unwrap(),
        ),
        ("stale", h.signer.logout_post(&stale).unwrap()),
    ];
    for (what, encoded) in post {
        let r = h.slo_post("SAMLRequest", &encoded).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "POST: {what}");
        assert_eq!(session_json(&h, &cookie).await.0, StatusCode::OK, "{what}");
    }
    let unsigned_query = h.signer.redirect_query(&xml, None, false).unwrap();
    let stranger_query = stranger.redirect_query(&xml, None, true).unwrap();
    let tampered = h
        .signer
        .redirect_query(&xml, Some("a"), true)
        .unwrap()
        .replace("RelayState=a", "RelayState=b");
    for (what, query) in [
        ("unsigned query", unsigned_query),
        ("query signed by another key", stranger_query),
        ("query changed after signing", tampered),
    ] {
        let r = h.get(&format!("/sso/slo?{query}"), None).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "Redirect: {what}");
        assert_eq!(session_json(&h, &cookie).await.0, StatusCode::OK, "{what}");
    }
    // The real one works once; the same message again is a replay.
    let real = h.signer.logout_post(&good).unwrap();
    let r = h.slo_post("SAMLRequest", &real).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(session_json(&h, &cookie).await.0, StatusCode::UNAUTHORIZED);
    let (again, _) = h.sso_login("sam@acme.example", "/").await;
    let r = h.slo_post("SAMLRequest", &real).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "replayed");
    assert_eq!(session_json(&h, &again).await.0, StatusCode::OK);
}

/// The IdP's LogoutRequest signed by another XML-DSig implementation (python signxml, over
/// lxml and cryptography) than the one that checks it.
#[tokio::test]
async fn an_idps_logout_request_signed_by_python_signxml_is_taken() {
    let Some(python) = identity_tests::saml_idp::python_with_signxml() else {
        return;
    };
    let h = slo_harness().await;
    let (cookie, _) = h.sso_login("sam@acme.example", "/").await;
    let (xml, id) = h
        .signer
        .unsigned_logout(&h.logout_spec(LogoutKind::Request {
            name_id: "sam@acme.example".into(),
            session_index: None,
        }));
    let signed = identity_tests::saml_idp::signxml_sign(&python, &h.signer, &xml, &id);
    let r = h
        .slo_post(
            "SAMLRequest",
            &base64::engine::general_purpose::STANDARD.encode(signed),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FOUND, "{}", page_text(r).await);
    assert_eq!(session_json(&h, &cookie).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn another_idps_answer_to_our_logout_request_is_refused_and_spends_nothing() {
    let h = slo_harness().await;
    let globex = IdpSigner::generate("globex IdP").unwrap();
    h.state
        .store
        .add_idp(&Idp {
            id: "globex".into(),
            entity_id: "https://idp.globex.example/saml".into(),
            sso_url: "https://idp.globex.example/sso".into(),
            slo_url: Some("https://idp.globex.example/slo".into()),
            certificates: vec![globex.certificate_base64()],
            domains: vec!["globex.example".into()],
            ..h.idp.clone()
        })
        .await
        .unwrap();
    let (cookie, _) = h.sso_login("sam@acme.example", "/").await;
    let request = h
        .our_logout_request(&location(&h.sign_out(&cookie).await))
        .await;
    let answer = |signer: &IdpSigner, issuer: &str| {
        let mut spec = h.logout_spec(LogoutKind::Response {
            in_response_to: request.id.clone(),
            success: true,
        });
        spec.issuer = issuer.into();
        signer.logout_post(&spec).unwrap()
    };
    let r = h
        .slo_post(
            "SAMLResponse",
            &answer(&globex, "https://idp.globex.example/saml"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "globex did not get it");
    let r = h
        .slo_post("SAMLResponse", &answer(&h.signer, &h.idp.entity_id))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "acme's own answer still counts");
}

/// `harness()` with the store behind the fault-injecting backend (issue 19): the embedded
/// store's, or `backend` (DynamoDB Local's), where the IdP is registered again.
async fn faulty_harness(
    backend: Option<std::sync::Arc<dyn identity_shared::store::Backend>>,
) -> (Harness, std::sync::Arc<identity_tests::faults::Faulty>) {
    let mut h = harness().await;
    let on_dynamodb = backend.is_some();
    let inner = backend.unwrap_or_else(|| h.state.store.backend().clone());
    let faulty = std::sync::Arc::new(identity_tests::faults::Faulty::new(inner));
    h.state.store =
        identity_shared::store::Store::new(faulty.clone(), h.state.store.clock().clone());
    if on_dynamodb {
        h.idp = h.state.store.add_idp(&h.idp).await.unwrap();
    }
    h.router = identity_cli::router(h.state.clone());
    (h, faulty)
}

/// Each multi-record change of an SSO login under store faults, on the embedded store and
/// on fresh DynamoDB Local tables, both behind the fault-injecting backend.
mod faults {
    macro_rules! on_both_backends {
        ($($check:ident),* $(,)?) => {
            mod embedded {
                $(
                    #[tokio::test]
                    async fn $check() {
                        let (h, faulty) = super::super::faulty_harness(None).await;
                        super::super::$check(h, faulty).await;
                    }
                )*
            }
            mod dynamodb {
                $(
                    #[tokio::test]
                    async fn $check() {
                        let Some(f) = identity_tests::dynamodb().await else { return };
                        let (h, faulty) =
                            super::super::faulty_harness(Some(f.store.backend().clone())).await;
                        super::super::$check(h, faulty).await;
                    }
                )*
            }
        };
    }

    on_both_backends!(
        a_first_sso_login_under_store_faults_leaves_no_account_or_a_whole_one,
        an_sso_upgrade_under_store_faults_never_links_an_account_with_live_tokens,
    );
}

/// Store faults at each step of a first SSO login (JIT account, welcome message, replay
/// record, session): the answer is the sign-in or the "try again" page, never a 500; the
/// store holds no account and no message (and the same login then finishes), or the whole
/// new account with its one welcome message (and signing in again works).
async fn a_first_sso_login_under_store_faults_leaves_no_account_or_a_whole_one(
    h: Harness,
    faulty: std::sync::Arc<identity_tests::faults::Faulty>,
) {
    use identity_tests::faults::Fault;
    let id = h.start_login("/").await;
    faulty.reset();
    let r = h.acs(&h.spec("baseline@acme.example", Some(&id)), "").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let steps = faulty.mutations();
    assert!(
        steps >= 2,
        "a first login writes the account, then the session"
    );

    for step in 0..steps {
        for fault in Fault::ALL {
            let what = format!("fault {fault:?} at mutating call {step} of {steps}");
            let address = format!("p{step}-{fault:?}@acme.example").to_lowercase();
            let id = h.start_login("/").await;
            let spec = h.spec(&address, Some(&id));
            faulty.fail_mutation(step, fault);
            let r = h.acs(&spec, "").await;
            faulty.reset();
            let status = r.status();
            let text = page_text(r).await;
            assert!(
                status == StatusCode::SEE_OTHER || status == StatusCode::SERVICE_UNAVAILABLE,
                "{what}: {status} {text}"
            );
            assert!(
                !text.contains("injected"),
                "{what}: internals shown: {text}"
            );
            let account = h
                .state
                .store
                .account_by_email(&email(&address))
                .await
                .unwrap();
            let messages = h.state.store.outbox(Some(&email(&address))).await.unwrap();
            match account {
                None => {
                    // Before: nothing of the login was written; the same response finishes it.
                    assert_ne!(
                        status,
                        StatusCode::SEE_OTHER,
                        "{what}: signed in, no account"
                    );
                    assert!(messages.is_empty(), "{what}: a welcome for no account");
                    let again = h.acs(&spec, "").await;
                    assert_eq!(again.status(), StatusCode::SEE_OTHER, "{what}");
                }
                Some(account) => {
                    // After: the whole account, pending, with exactly one welcome message.
                    assert_eq!(account.status, AccountStatus::Pending, "{what}");
                    assert_eq!(messages.len(), 1, "{what}: welcome messages");
                    if status != StatusCode::SEE_OTHER {
                        let (cookie, _) = h.sso_login(&address, "/").await;
                        assert_eq!(session_json(&h, &cookie).await.0, StatusCode::OK, "{what}");
                    }
                }
            }
        }
    }
}

const UPGRADE_PASSWORD: &str = "correct horse battery";

/// A password account with a live refresh token, and the upgrade cookie of its first SSO
/// login.
async fn upgrade_ready(h: &Harness, address: &str) -> (Account, SecretString, String) {
    let store = &h.state.store;
    let account = store
        .create_account(
            &email(address),
            Some(&SecretString::new(UPGRADE_PASSWORD)),
            AccountStatus::Active,
        )
        .await
        .unwrap();
    let grant = store
        .grant_for(&account.id, "cli", &Scopes::parse("read").unwrap())
        .await
        .unwrap();
    let (refresh, _, op) = new_refresh_token(&grant, &grant.scopes(), h.now(), None).unwrap();
    store.write(vec![op]).await.unwrap();
    let id = h.start_login("/").await;
    let r = h.acs(&h.spec(address, Some(&id)), "").await;
    assert_eq!(location(&r), "/sso/upgrade");
    let upgrade = cookie_named(&r, "identity_sso_upgrade").unwrap();
    (account, refresh, upgrade)
}

async fn confirm_upgrade(h: &Harness, upgrade: &str) -> axum::response::Response {
    h.post_form(
        "/sso/upgrade",
        &[("answer", "confirm"), ("password", UPGRADE_PASSWORD)],
        Some(upgrade),
    )
    .await
}

/// Store faults at each step of confirming an SSO upgrade (one write revokes the account's
/// grants, links it, drops its password and consumes the confirmation; then the session):
/// the account is never linked while a token it authorized lives, and a failure before the
/// session leaves the confirmation to be tried again or done.
async fn an_sso_upgrade_under_store_faults_never_links_an_account_with_live_tokens(
    h: Harness,
    faulty: std::sync::Arc<identity_tests::faults::Faulty>,
) {
    use identity_tests::faults::Fault;
    let store = h.state.store.clone();
    let (_, _, upgrade) = upgrade_ready(&h, "baseline.upgrade@acme.example").await;
    faulty.reset();
    assert_eq!(
        confirm_upgrade(&h, &upgrade).await.status(),
        StatusCode::SEE_OTHER
    );
    let steps = faulty.mutations();
    assert!(steps >= 2, "the link with its revocations, the session");

    for step in 0..steps {
        for fault in Fault::ALL {
            let what = format!("fault {fault:?} at mutating call {step} of {steps}");
            let address = format!("u{step}-{fault:?}@acme.example").to_lowercase();
            let (account, refresh, upgrade) = upgrade_ready(&h, &address).await;
            faulty.fail_mutation(step, fault);
            let r = confirm_upgrade(&h, &upgrade).await;
            faulty.reset();
            let status = r.status();
            assert!(
                status == StatusCode::SEE_OTHER || status == StatusCode::SERVICE_UNAVAILABLE,
                "{what}: {status}"
            );
            let linked = store
                .account(&account.id)
                .await
                .unwrap()
                .unwrap()
                .sso_idp
                .is_some();
            let live = store
                .live_refresh(refresh.expose_secret())
                .await
                .unwrap()
                .is_some();
            assert!(!(linked && live), "{what}: linked with a live token");
            if !linked {
                assert_ne!(status, StatusCode::SEE_OTHER, "{what}");
                let again = confirm_upgrade(&h, &upgrade).await;
                assert_eq!(again.status(), StatusCode::SEE_OTHER, "{what}: the retry");
                assert!(
                    store
                        .account(&account.id)
                        .await
                        .unwrap()
                        .unwrap()
                        .sso_idp
                        .is_some()
                );
            } else if status != StatusCode::SEE_OTHER {
                // Linked, answer lost: signing in through the IdP works.
                let (cookie, _) = h.sso_login(&address, "/").await;
                assert_eq!(session_json(&h, &cookie).await.0, StatusCode::OK, "{what}");
            }
            assert!(
                store
                    .live_refresh(refresh.expose_secret())
                    .await
                    .unwrap()
                    .is_none(),
                "{what}: the token outlived the move to SSO"
            );
        }
    }
}

/// `harness()` on fresh DynamoDB Local tables reached through a loopback proxy that cuts
/// connections (issue 19); `None` when the services are skipped.
async fn proxied_harness() -> Option<(Harness, identity_tests::proxy::Proxy)> {
    let (store, proxy, _) = identity_tests::proxy::proxied_store().await?;
    let mut h = harness().await;
    h.state.store =
        identity_shared::store::Store::new(store.backend().clone(), h.state.store.clock().clone());
    h.idp = h.state.store.add_idp(&h.idp).await.unwrap();
    h.router = identity_cli::router(h.state.clone());
    Some((h, proxy))
}

/// Runs `act` once to count its DynamoDB write requests, then once per write and per cut (a
/// reset connection, a lost answer) with that write cut; `prepare` makes each run's input
/// before the count starts, and `act` checks its own outcome.
async fn at_each_write<T>(
    proxy: &identity_tests::proxy::Proxy,
    mut prepare: impl AsyncFnMut(usize) -> T,
    mut act: impl AsyncFnMut(String, T),
) {
    use identity_tests::proxy::{Cut, WRITE};
    let input = prepare(0).await;
    let before = proxy.writes();
    act("no cut".into(), input).await;
    let writes = proxy.writes() - before;
    assert!(writes >= 2, "the change writes");
    let mut run = 0;
    for step in 0..writes {
        for cut in [Cut::Reset, Cut::AnswerLost] {
            run += 1;
            let input = prepare(run).await;
            proxy.plan_after(WRITE, step, cut);
            let fired = proxy.fired();
            act(format!("{cut:?} at write {step} of {writes}"), input).await;
            assert_eq!(proxy.fired(), fired + 1, "the cut happened");
        }
    }
}

/// A first SSO login (the AuthnRequest, the JIT account with its welcome message, the
/// replay record, the session) whose DynamoDB writes meet a reset or a lost answer, each in
/// turn: the SDK's retry finishes it exactly once: signed in, one pending account, one
/// welcome message, and the Response refused when posted again.
#[tokio::test]
async fn a_first_sso_login_survives_a_cut_at_each_dynamodb_write() {
    let Some((h, proxy)) = proxied_harness().await else {
        return;
    };
    at_each_write(
        &proxy,
        async |run| format!("cut{run}@acme.example"),
        async |what, address: String| {
            let id = h.start_login("/").await;
            let spec = h.spec(&address, Some(&id));
            let r = h.acs(&spec, "").await;
            assert_eq!(r.status(), StatusCode::SEE_OTHER, "{what}");
            let account = h
                .state
                .store
                .account_by_email(&email(&address))
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{what}: no account"));
            assert_eq!(account.status, AccountStatus::Pending, "{what}");
            let messages = h.state.store.outbox(Some(&email(&address))).await.unwrap();
            assert_eq!(messages.len(), 1, "{what}: welcome messages");
            let again = h.acs(&spec, "").await;
            assert_ne!(
                again.status(),
                StatusCode::SEE_OTHER,
                "{what}: the Response twice"
            );
        },
    )
    .await;
}

/// Confirming an SSO upgrade (revoke the account's grants, link it, drop its password,
/// consume the confirmation, start the session) whose DynamoDB writes meet a reset or a
/// lost answer, each in turn: the account ends linked and its token dead.
#[tokio::test]
async fn an_sso_upgrade_survives_a_cut_at_each_dynamodb_write() {
    let Some((h, proxy)) = proxied_harness().await else {
        return;
    };
    at_each_write(
        &proxy,
        async |run| upgrade_ready(&h, &format!("upgrade.cut{run}@acme.example")).await,
        async |what, (account, refresh, upgrade): (Account, SecretString, String)| {
            let r = confirm_upgrade(&h, &upgrade).await;
            assert_eq!(r.status(), StatusCode::SEE_OTHER, "{what}");
            let store = &h.state.store;
            let linked = store.account(&account.id).await.unwrap().unwrap();
            assert!(linked.sso_idp.is_some(), "{what}: not linked");
            assert!(
                store
                    .live_refresh(refresh.expose_secret())
                    .await
                    .unwrap()
                    .is_none(),
                "{what}: the token outlived the move to SSO"
            );
        },
    )
    .await;
}

/// Starting a single sign-on writes nothing: the AuthnRequest waits in the browser, sealed
/// to its `__Host-` nonce (a year, made by the first login it starts). A request cookie
/// carried to a browser with another nonce (or planted from a sibling host, which can set
/// the `__Secure-` request cookie but not the nonce) finishes nothing; a response answers
/// its request once.
#[tokio::test]
async fn an_sso_start_writes_nothing_and_its_request_opens_only_with_the_browsers_nonce() {
    let h = harness().await;
    let once_records = || async {
        h.state
            .store
            .backend()
            .scan(identity_shared::store::Table::Once, h.now())
            .await
            .unwrap()
            .len()
    };
    let before = once_records().await;
    let id = h.start_login("/session").await;
    assert_eq!(
        once_records().await,
        before,
        "nothing stored for a login that starts"
    );
    let ours = h.saml_cookie.lock().unwrap().clone().unwrap();
    let (nonce, request) = ours.split_once("; ").unwrap();
    // The same request cookie beside another browser's nonce.
    let other = h.get("/sso/login?idp=acme&return_to=/session", None).await;
    let other_nonce = cookie_named(&other, "identity_browser").unwrap();
    assert_ne!(other_nonce, nonce);
    let spec = h.spec("carried@acme.example", Some(&id));
    for cookie in [format!("{other_nonce}; {request}"), request.to_string()] {
        let r = h.acs_with_cookie(&spec, "", Some(&cookie)).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{cookie}");
        assert!(page_text(r).await.contains("started in another browser"));
    }
    // A browser that has a nonce keeps it for its next login.
    let again = h
        .send(
            Request::get("/sso/login?idp=acme&return_to=/session")
                .header(header::COOKIE, nonce)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(cookie_named(&again, "identity_browser").is_none());
    assert!(cookie_named(&again, "identity_saml_request").is_some());
    // Its own browser finishes it, once.
    let r = h.acs_with_cookie(&spec, "", Some(&ours)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", page_text(r).await);
    let second = h.spec("second@acme.example", Some(&id));
    let r = h.acs_with_cookie(&second, "", Some(&ours)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(no_account(&h, "second@acme.example").await);
}

/// `POST /sso/acs` guards and parses the document it received once, for the routing and
/// the validation alike; then each signed element's verified bytes once (Response and
/// Assertion are both signed here): three parses, where reading the document for each
/// check and each signed text twice cost five.
#[tokio::test]
async fn the_acs_parses_what_it_received_once() {
    let h = harness().await;
    let id = h.start_login("/session").await;
    let before = sso_acs::saml::documents_parsed();
    let r = h.acs(&h.spec("once@acme.example", Some(&id)), "").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", page_text(r).await);
    assert_eq!(
        sso_acs::saml::documents_parsed() - before,
        3,
        "the response once, each of its two signed elements once"
    );
}
