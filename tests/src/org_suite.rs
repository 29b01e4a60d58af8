//! Teams and enterprise accounts on every backend (`tests/org_store_suite.rs` runs each on
//! the embedded store and on DynamoDB Local): names, memberships, the team's SSO default
//! role, who reaches a team's apps, enterprise permissions.

use identity_shared::accounts::{Account, AccountStatus, Accounts, Email};
use identity_shared::apps::{Apps, Role};
use identity_shared::orgs::{OrgError, Orgs, Permission, TeamRole};

use crate::Fixture;

async fn person(f: &Fixture, email: &str) -> Account {
    f.store
        .create_account(&Email::parse(email).unwrap(), None, AccountStatus::Active)
        .await
        .unwrap()
}

pub async fn teams_and_their_members_round_trip(f: &Fixture) {
    let team = f.store.create_team("acme", None).await.unwrap();
    assert_eq!(team.default_role, TeamRole::Member, "member unless set");
    assert!(matches!(
        f.store.create_team("acme", None).await,
        Err(OrgError::NameTaken)
    ));
    assert!(matches!(
        f.store.create_team("Not A Name", None).await,
        Err(OrgError::InvalidName)
    ));
    assert_eq!(
        f.store.team_by_name("acme").await.unwrap(),
        Some(team.clone())
    );
    let ada = person(f, "ada@example.com").await;
    let bob = person(f, "bob@example.com").await;
    f.store
        .set_team_role(&team, &ada, TeamRole::Admin)
        .await
        .unwrap();
    f.store
        .set_team_role(&team, &bob, TeamRole::Collaborator)
        .await
        .unwrap();
    f.store
        .set_team_role(&team, &bob, TeamRole::Member)
        .await
        .unwrap();
    let members = f.store.team_members(&team).await.unwrap();
    let listed: Vec<(&str, TeamRole)> =
        members.iter().map(|m| (m.email.as_str(), m.role)).collect();
    assert_eq!(
        listed,
        vec![
            ("ada@example.com", TeamRole::Admin),
            ("bob@example.com", TeamRole::Member)
        ],
        "{} backend",
        f.backend
    );
    let changed = f
        .store
        .set_team_default_role(&team, TeamRole::Collaborator)
        .await
        .unwrap();
    assert_eq!(
        f.store.team(&team.id).await.unwrap().unwrap().default_role,
        changed.default_role
    );
    assert!(f.store.remove_team_member(&team, &bob.id).await.unwrap());
    assert!(!f.store.remove_team_member(&team, &bob.id).await.unwrap());
    assert_eq!(f.store.team_role_of(&team.id, &bob.id).await.unwrap(), None);
}

pub async fn team_admins_and_members_reach_its_apps_collaborators_only_theirs(f: &Fixture) {
    let team = f.store.create_team("acme", None).await.unwrap();
    let owner = person(f, "owner@example.com").await;
    let admin = person(f, "admin@example.com").await;
    let member = person(f, "member@example.com").await;
    let collaborator = person(f, "collab@example.com").await;
    let stranger = person(f, "stranger@example.com").await;
    for (who, role) in [
        (&admin, TeamRole::Admin),
        (&member, TeamRole::Member),
        (&collaborator, TeamRole::Collaborator),
    ] {
        f.store.set_team_role(&team, who, role).await.unwrap();
    }
    let web = f
        .store
        .create_team_app("acme-web", &owner, Some(&team))
        .await
        .unwrap();
    let api = f
        .store
        .create_team_app("acme-api", &owner, Some(&team))
        .await
        .unwrap();
    f.store
        .set_role(&api, &collaborator, Role::Collaborator)
        .await
        .unwrap();
    for app in [&web, &api] {
        for (who, want) in [
            (&owner, Some(Role::Owner)),
            (&admin, Some(Role::Admin)),
            (&member, Some(Role::Member)),
            (&stranger, None),
        ] {
            assert_eq!(f.store.role_of(&app.id, &who.id).await.unwrap(), want);
        }
    }
    assert_eq!(
        f.store.role_of(&web.id, &collaborator.id).await.unwrap(),
        None,
        "a collaborator reaches only the apps they are added to"
    );
    assert_eq!(
        f.store.role_of(&api.id, &collaborator.id).await.unwrap(),
        Some(Role::Collaborator)
    );
    let members: Vec<(String, Role)> = f
        .store
        .members(&api)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.email, m.role))
        .collect();
    assert_eq!(
        members,
        vec![
            ("owner@example.com".to_string(), Role::Owner),
            ("admin@example.com".to_string(), Role::Admin),
            ("member@example.com".to_string(), Role::Member),
            ("collab@example.com".to_string(), Role::Collaborator),
        ]
    );
    // Leaving the team ends the access through it at once.
    f.store.remove_team_member(&team, &member.id).await.unwrap();
    assert_eq!(f.store.role_of(&web.id, &member.id).await.unwrap(), None);
}

pub async fn enterprise_accounts_keep_their_members_permissions(f: &Fixture) {
    let enterprise = f.store.create_enterprise("acme-corp").await.unwrap();
    assert!(matches!(
        f.store.create_enterprise("acme-corp").await,
        Err(OrgError::NameTaken)
    ));
    let team = f
        .store
        .create_team("acme", Some(&enterprise))
        .await
        .unwrap();
    assert_eq!(team.enterprise_id.as_deref(), Some(enterprise.id.as_str()));
    let ada = person(f, "ada@example.com").await;
    f.store
        .set_permissions(
            &enterprise,
            &ada,
            &[Permission::Manage, Permission::View, Permission::Manage],
        )
        .await
        .unwrap();
    assert_eq!(
        f.store
            .permissions_of(&enterprise.id, &ada.id)
            .await
            .unwrap(),
        Some(vec![Permission::View, Permission::Manage]),
        "sorted, once each"
    );
    assert!(matches!(
        f.store.set_permissions(&enterprise, &ada, &[]).await,
        Err(OrgError::NoPermission)
    ));
    let members = f.store.enterprise_members(&enterprise).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(
        f.store
            .enterprise_by_name("acme-corp")
            .await
            .unwrap()
            .map(|e| e.id),
        Some(enterprise.id)
    );
}

/// An organisation blocks one of its SSO people (their grants, keys and sessions end; the
/// block names the organisation) and lifts only its own block.
pub async fn an_organisation_blocks_its_own_sso_member_and_lifts_only_its_own_block(f: &Fixture) {
    use identity_shared::accounts::Offboarding;
    use identity_shared::api_keys::ApiKeys;
    use identity_shared::idps::Idps;
    use identity_shared::orgs::{BlockError, Org};
    let team = f.store.create_team("acme", None).await.unwrap();
    let idp = crate::saml_idp::SamlCase::new().idp;
    f.store.add_idp(&idp).await.unwrap();
    let pat = person(f, "pat@acme.example").await;
    let guest = person(f, "guest@elsewhere.example").await;
    for who in [&pat, &guest] {
        f.store
            .set_team_role(&team, who, TeamRole::Member)
            .await
            .unwrap();
    }
    let login = crate::cli_login_grant(&f.store, &pat).await;
    let (_, key) = f
        .store
        .create_api_key(&pat, &login, None, None)
        .await
        .unwrap();
    let org = Org::Team(team);
    let blocked = org.block(&f.store, &pat).await.unwrap();
    assert_eq!(blocked.blocked_by.as_deref(), Some("team acme"));
    assert!(
        f.store
            .api_key_in_use(key.expose_secret())
            .await
            .unwrap()
            .is_none(),
        "{} backend: the block reaches the API key",
        f.backend
    );
    assert!(matches!(
        org.block(&f.store, &guest).await,
        Err(BlockError::NotTheirs)
    ));
    let unblocked = org.unblock(&f.store, &blocked).await.unwrap();
    assert!(!unblocked.is_blocked());
    let by_operator = f.store.block_account(&pat.id).await.unwrap();
    assert!(matches!(
        org.unblock(&f.store, &by_operator).await,
        Err(BlockError::NotTheirBlock)
    ));
}

/// The audit log keeps who acted as whom, newest first, across months; a "log in as" link
/// is taken once by one of 20 racers.
pub async fn the_audit_log_is_newest_first_and_a_log_in_as_link_works_once_with_its_code(
    f: &Fixture,
) {
    use identity_shared::audit::{Audit, AuditEntry, ImpersonationLink, Impersonations};
    let start = f.clock_now();
    for (i, action) in ["impersonation started", "GET /account/authorizations"]
        .iter()
        .enumerate()
    {
        f.store
            .audit(&AuditEntry {
                at: start + i as i64,
                by: "ops".into(),
                account_id: "a1".into(),
                email: "pat@example.com".into(),
                reason: "offboarding".into(),
                action: action.to_string(),
                operator: "arn:aws:sts::123456789012:assumed-role/ops/alice".into(),
            })
            .await
            .unwrap();
    }
    // A month later, one more.
    f.clock.advance(40 * 24 * 60 * 60);
    f.store
        .audit(&AuditEntry {
            at: f.clock_now(),
            by: "ops".into(),
            account_id: "a1".into(),
            email: "pat@example.com".into(),
            reason: "offboarding".into(),
            action: "POST /logout".into(),
            operator: String::new(),
        })
        .await
        .unwrap();
    let actions: Vec<String> = f
        .store
        .audit_entries(10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        vec![
            "POST /logout",
            "GET /account/authorizations",
            "impersonation started"
        ],
        "{} backend",
        f.backend
    );
    assert_eq!(f.store.audit_entries(1).await.unwrap().len(), 1);

    let link = ImpersonationLink {
        account_id: "a1".into(),
        by: "ops".into(),
        reason: "offboarding".into(),
        operator: "local uid 1000 on ops-laptop".into(),
    };
    let issued = f.store.issue_impersonation(&link).await.unwrap();
    let (token, code) = (issued.token, issued.code.expose_secret().to_string());
    assert_eq!(
        f.store.impersonation_pending(&token).await.unwrap(),
        Some(link.clone())
    );
    let mut racers = Vec::new();
    for _ in 0..20 {
        let store = f.store.clone();
        let token = identity_shared::secret::SecretString::new(token.expose_secret().to_string());
        let code = code.to_lowercase().replace('-', " ");
        racers.push(tokio::spawn(async move {
            store.take_impersonation(&token, &code).await.unwrap()
        }));
    }
    let mut won = 0;
    for r in racers {
        if let Some(taken) = r.await.unwrap() {
            assert_eq!(taken, link);
            won += 1;
        }
    }
    assert_eq!(won, 1, "one racer takes the link");
    // A wrong code spends the link: the right one no longer opens it.
    let guessed = f.store.issue_impersonation(&link).await.unwrap();
    assert!(
        f.store
            .take_impersonation(&guessed.token, "BCDF-GHJK")
            .await
            .unwrap()
            .is_none(),
        "{} backend: the link alone signs nobody in",
        f.backend
    );
    assert!(
        f.store
            .take_impersonation(&guessed.token, guessed.code.expose_secret())
            .await
            .unwrap()
            .is_none(),
        "{} backend: spent by the wrong code",
        f.backend
    );
    // Expired after five minutes.
    let late = f.store.issue_impersonation(&link).await.unwrap();
    f.clock.advance(5 * 60);
    assert!(
        f.store
            .take_impersonation(&late.token, late.code.expose_secret())
            .await
            .unwrap()
            .is_none()
    );
}
