//! A team administrator's API through `identity serve`'s router: `GET /teams/{team}/members`
//! (role and SSO status of each member) and `PUT /teams/{team}/sso` (the role SSO gives
//! newcomers and collaborators), for the team's admins only.

use crate::oauth_common::*;
use http::{Method, StatusCode, header};
use identity_shared::accounts::{Account, AccountStatus, Accounts, Email, Offboarding};
use identity_shared::api_keys::ApiKeys;
use identity_shared::idps::Idps;
use identity_shared::orgs::{Orgs, Team, TeamRole};
use serde_json::{Value, json};

async fn person(env: &Env, email: &str, status: AccountStatus) -> Account {
    env.state
        .store
        .create_account(&Email::parse(email).unwrap(), None, status)
        .await
        .unwrap()
}

async fn key_of(env: &Env, account: &Account) -> String {
    let (_, key) = env
        .state
        .store
        .create_api_key(
            account,
            &identity_tests::cli_login_grant(&env.state.store, account).await,
            None,
            None,
        )
        .await
        .unwrap();
    key.expose_secret().to_string()
}

async fn call(
    env: &Env,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: &str,
) -> (StatusCode, Value) {
    let mut req = http::Request::builder().method(method).uri(path);
    if let Some(b) = bearer {
        req = req.header(header::AUTHORIZATION, format!("Bearer {b}"));
    }
    let r = tower::ServiceExt::oneshot(
        env.router.clone(),
        req.header(header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap(),
    )
    .await
    .unwrap();
    let status = r.status();
    (status, identity_tests::body_json(r).await)
}

/// Team "acme": an admin (returned with an API key), and members in each SSO state.
async fn acme(env: &Env) -> (Team, String) {
    let store = &env.state.store;
    let team = store.create_team("acme", None).await.unwrap();
    let admin = person(env, "admin@acme.example", AccountStatus::Active).await;
    store
        .set_team_role(&team, &admin, TeamRole::Admin)
        .await
        .unwrap();
    let mut under = person(env, "under@acme.example", AccountStatus::Active).await;
    under.sso_idp = Some("acme".into());
    let under = store.update_account(&under).await.unwrap();
    let pending = person(env, "pending@acme.example", AccountStatus::Pending).await;
    let blocked = person(env, "blocked@acme.example", AccountStatus::Active).await;
    store.block_account(&blocked.id).await.unwrap();
    for (who, role) in [
        (&under, TeamRole::Member),
        (&pending, TeamRole::Member),
        (&blocked, TeamRole::Collaborator),
    ] {
        store.set_team_role(&team, who, role).await.unwrap();
    }
    let key = key_of(env, &admin).await;
    (team, key)
}

#[tokio::test]
async fn a_team_admin_sees_every_member_with_role_and_sso_status() {
    let env = env().await;
    let (_, admin) = acme(&env).await;
    let (status, body) = call(&env, Method::GET, "/teams/acme/members", Some(&admin), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["team"], "acme");
    let seen: Vec<(String, String, String)> = body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["email"].as_str().unwrap().to_string(),
                m["role"].as_str().unwrap().to_string(),
                m["sso_status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("admin@acme.example", "admin", "not_under_sso"),
        ("pending@acme.example", "member", "pending"),
        ("under@acme.example", "member", "under_sso"),
        ("blocked@acme.example", "collaborator", "blocked"),
    ];
    assert_eq!(
        seen,
        want.iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn only_a_team_admin_reads_the_members_or_sets_the_sso_default_role() {
    let env = env().await;
    let (team, admin) = acme(&env).await;
    let store = &env.state.store;
    let under = store
        .account_by_email(&Email::parse("under@acme.example").unwrap())
        .await
        .unwrap()
        .unwrap();
    let member = key_of(&env, &under).await;
    let stranger = key_of(
        &env,
        &person(&env, "x@elsewhere.example", AccountStatus::Active).await,
    )
    .await;
    let (status, _) = call(&env, Method::GET, "/teams/acme/members", None, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(&env, Method::GET, "/teams/acme/members", Some(&member), "").await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a member who is not an admin"
    );
    let (status, _) = call(
        &env,
        Method::GET,
        "/teams/acme/members",
        Some(&stranger),
        "",
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "no hint that the team exists"
    );
    let (status, _) = call(&env, Method::GET, "/teams/nope/members", Some(&admin), "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let set = |bearer: String, body: &'static str| {
        let env = &env;
        async move { call(env, Method::PUT, "/teams/acme/sso", Some(&bearer), body).await }
    };
    let (status, _) = set(member.clone(), r#"{"default_role":"admin"}"#).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for bad in [
        r#"{"default_role":"owner"}"#,
        r#"{}"#,
        "nope",
        r#"{"default_role":"admin","x":1}"#,
    ] {
        let (status, body) = set(admin.clone(), bad).await;
        assert_eq!(
            (status, &body["error"]),
            (StatusCode::BAD_REQUEST, &json!("invalid_request")),
            "{bad}"
        );
    }
    assert_eq!(
        store.team(&team.id).await.unwrap().unwrap().default_role,
        TeamRole::Member,
        "nothing changed"
    );
    let (status, body) = set(admin.clone(), r#"{"default_role":"collaborator"}"#).await;
    assert_eq!(
        (status, &body["default_role"]),
        (StatusCode::OK, &json!("collaborator"))
    );
    assert_eq!(
        store.team(&team.id).await.unwrap().unwrap().default_role,
        TeamRole::Collaborator
    );
}

/// The IdP "acme" (domain acme.example), connected to team "acme" and enterprise
/// "acme-corp".
async fn connect_idp(env: &Env) {
    let mut idp = identity_tests::saml_idp::SamlCase::new().idp;
    idp.enterprise = Some("acme-corp".into());
    env.state.store.add_idp(&idp).await.unwrap();
}

async fn account(env: &Env, who: &str) -> Account {
    env.state
        .store
        .account_by_email(&Email::parse(who).unwrap())
        .await
        .unwrap()
        .unwrap()
}

async fn userinfo_status(env: &Env, bearer: &str) -> StatusCode {
    call(env, Method::GET, "/oauth/userinfo", Some(bearer), "")
        .await
        .0
}

#[tokio::test]
async fn a_team_admin_blocks_one_of_the_teams_sso_people_and_their_access_ends() {
    let env = env().await;
    connect_idp(&env).await;
    let (_, admin) = acme(&env).await;
    let under = account(&env, "under@acme.example").await;
    let their_key = key_of(&env, &under).await;
    assert_eq!(userinfo_status(&env, &their_key).await, StatusCode::OK);

    let (status, body) = call(
        &env,
        Method::POST,
        "/teams/acme/members/under@acme.example/block",
        Some(&admin),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["blocked"], &body["blocked_by"]),
        (&json!(true), &json!("team acme"))
    );
    let blocked = account(&env, "under@acme.example").await;
    assert_eq!(blocked.blocked_by.as_deref(), Some("team acme"));
    assert_eq!(
        userinfo_status(&env, &their_key).await,
        StatusCode::UNAUTHORIZED,
        "their API key ended"
    );
    let (_, view) = call(&env, Method::GET, "/teams/acme/members", Some(&admin), "").await;
    assert!(
        view["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["email"] == "under@acme.example" && m["sso_status"] == "blocked"),
        "{view}"
    );

    let (status, body) = call(
        &env,
        Method::POST,
        "/teams/acme/members/under@acme.example/unblock",
        Some(&admin),
        "",
    )
    .await;
    assert_eq!((status, &body["blocked"]), (StatusCode::OK, &json!(false)));
    assert!(!account(&env, "under@acme.example").await.is_blocked());
}

#[tokio::test]
async fn an_organisation_blocks_only_its_own_sso_people_and_lifts_only_its_own_blocks() {
    let env = env().await;
    connect_idp(&env).await;
    let (team, admin) = acme(&env).await;
    let store = &env.state.store;
    // A collaborator from another company, on the team.
    let guest = person(&env, "guest@elsewhere.example", AccountStatus::Active).await;
    store
        .set_team_role(&team, &guest, TeamRole::Collaborator)
        .await
        .unwrap();
    let (status, body) = call(
        &env,
        Method::POST,
        "/teams/acme/members/guest@elsewhere.example/block",
        Some(&admin),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(!account(&env, "guest@elsewhere.example").await.is_blocked());
    // Someone of the domain who is not on the team; an unknown email.
    person(&env, "outsider@acme.example", AccountStatus::Active).await;
    let (status, _) = call(
        &env,
        Method::POST,
        "/teams/acme/members/outsider@acme.example/block",
        Some(&admin),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        &env,
        Method::POST,
        "/teams/acme/members/ghost@acme.example/block",
        Some(&admin),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The operator's block stays; the team's own is lifted.
    let member = account(&env, "pending@acme.example").await;
    store.block_account(&member.id).await.unwrap();
    let (status, body) = call(
        &env,
        Method::POST,
        "/teams/acme/members/pending@acme.example/unblock",
        Some(&admin),
        "",
    )
    .await;
    assert_eq!(
        (status, &body["error"]),
        (StatusCode::CONFLICT, &json!("not_blocked_by_you"))
    );
    assert!(account(&env, "pending@acme.example").await.is_blocked());
    // A member who is not an admin may not block.
    let under = account(&env, "under@acme.example").await;
    let member_key = key_of(&env, &under).await;
    let (status, _) = call(
        &env,
        Method::POST,
        "/teams/acme/members/admin@acme.example/block",
        Some(&member_key),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!account(&env, "admin@acme.example").await.is_blocked());
}

#[tokio::test]
async fn an_enterprise_manager_sees_and_blocks_members_a_viewer_cannot() {
    let env = env().await;
    connect_idp(&env).await;
    let store = &env.state.store;
    let enterprise = store.create_enterprise("acme-corp").await.unwrap();
    let boss = person(&env, "boss@acme.example", AccountStatus::Active).await;
    let viewer = person(&env, "viewer@acme.example", AccountStatus::Active).await;
    store
        .set_permissions(
            &enterprise,
            &boss,
            &[identity_shared::orgs::Permission::Manage],
        )
        .await
        .unwrap();
    store
        .set_permissions(
            &enterprise,
            &viewer,
            &[identity_shared::orgs::Permission::View],
        )
        .await
        .unwrap();
    let boss_key = key_of(&env, &boss).await;
    let viewer_key = key_of(&env, &viewer).await;
    let (status, body) = call(
        &env,
        Method::GET,
        "/enterprises/acme-corp/members",
        Some(&boss_key),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["members"].as_array().unwrap().len(), 2);
    assert_eq!(body["members"][1]["permissions"], json!(["view"]));
    let (status, _) = call(
        &env,
        Method::GET,
        "/enterprises/acme-corp/members",
        Some(&viewer_key),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = call(
        &env,
        Method::POST,
        "/enterprises/acme-corp/members/viewer@acme.example/block",
        Some(&boss_key),
        "",
    )
    .await;
    assert_eq!(
        (status, &body["blocked_by"]),
        (StatusCode::OK, &json!("enterprise acme-corp"))
    );
    assert_eq!(
        userinfo_status(&env, &viewer_key).await,
        StatusCode::UNAUTHORIZED
    );
}
