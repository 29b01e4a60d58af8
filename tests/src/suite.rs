//! The store suite: one set of checks that every backend must pass. `tests/store_suite.rs`
//! runs each of them against the embedded store and against DynamoDB Local.

use std::collections::HashSet;
use std::sync::Arc;

use identity_shared::accounts::{AccountError, AccountStatus, Accounts, Email};
use identity_shared::apps::{AppError, Apps, Role};
use identity_shared::secret::SecretString;
use identity_shared::secrets::embedded::EmbeddedSecrets;
use identity_shared::secrets::{SecretKind, SecretSource, SigningKeys};
use identity_shared::session::{SamlSubject, Sessions};
use identity_shared::store::{Cond, Item, Op, SingleUse, StoreError, Table};
use identity_shared::throttle::{
    Action, Attempt, Limit, Limits, Locked, TOTAL_SHARDS, Throttling, Verdict,
};
use serde_json::json;

use crate::Fixture;

const RACERS: usize = 200;

fn body(v: i64) -> serde_json::Value {
    json!({ "v": v })
}

pub async fn put_get_round_trip(f: &Fixture) {
    let item = Item::new("p#1", "s", &body(1)).unwrap();
    f.store
        .write(vec![Op::Put {
            table: Table::Once,
            item,
            cond: Cond::Absent,
        }])
        .await
        .unwrap();
    let got: serde_json::Value = f.store.get(Table::Once, "p#1", "s").await.unwrap().unwrap();
    assert_eq!(got, body(1));
    assert!(
        f.store
            .get_item(Table::Once, "p#1", "other")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        f.store
            .get_item(Table::Sessions, "p#1", "s")
            .await
            .unwrap()
            .is_none(),
        "tables are separate"
    );
}

/// A record whose expiry has passed but that nothing deleted yet (DynamoDB TTL is lazy,
/// the embedded store never deletes) is absent for every read and every condition.
pub async fn expired_record_is_absent_everywhere(f: &Fixture) {
    let now = f.clock_now();
    let expired = Item::new("exp#1", "s", &body(1))
        .unwrap()
        .expiring(now - 10);
    // Written directly through the backend, as a record DynamoDB has not deleted yet.
    f.store
        .backend()
        .write(
            vec![Op::Put {
                table: Table::Once,
                item: expired,
                cond: Cond::Always,
            }],
            now - 20,
        )
        .await
        .unwrap();
    assert!(
        f.store
            .get_item(Table::Once, "exp#1", "s")
            .await
            .unwrap()
            .is_none(),
        "get"
    );
    assert!(
        f.store
            .query::<serde_json::Value>(Table::Once, "exp#1", "")
            .await
            .unwrap()
            .is_empty(),
        "query"
    );
    assert!(
        f.store
            .backend()
            .scan(Table::Once, now)
            .await
            .unwrap()
            .iter()
            .all(|i| i.pk != "exp#1"),
        "scan"
    );
    assert!(
        f.store
            .take(Table::Once, "exp#1", "s")
            .await
            .unwrap()
            .is_none(),
        "take"
    );
    let live_check = Op::Check {
        table: Table::Once,
        pk: "exp#1".into(),
        sk: "s".into(),
        cond: Cond::Live,
    };
    assert!(
        matches!(
            f.store.write(vec![live_check]).await,
            Err(StoreError::Conflict)
        ),
        "Live condition"
    );
    // ...and may be overwritten as if absent.
    let fresh = Item::new("exp#1", "s", &body(2))
        .unwrap()
        .expiring(now + 60);
    f.store
        .write(vec![Op::Put {
            table: Table::Once,
            item: fresh,
            cond: Cond::Absent,
        }])
        .await
        .unwrap();
    assert_eq!(
        f.store
            .get::<serde_json::Value>(Table::Once, "exp#1", "s")
            .await
            .unwrap(),
        Some(body(2))
    );
}

/// A record expires when the clock passes its expiry, without anything deleting it.
pub async fn record_expires_with_the_clock(f: &Fixture) {
    let now = f.clock_now();
    let item = Item::new("ttl#1", "s", &body(1))
        .unwrap()
        .expiring(now + 30);
    f.store
        .write(vec![Op::Put {
            table: Table::Once,
            item,
            cond: Cond::Absent,
        }])
        .await
        .unwrap();
    assert!(
        f.store
            .get_item(Table::Once, "ttl#1", "s")
            .await
            .unwrap()
            .is_some()
    );
    f.clock.advance(30);
    assert!(
        f.store
            .get_item(Table::Once, "ttl#1", "s")
            .await
            .unwrap()
            .is_none(),
        "expired at its expiry second"
    );
}

pub async fn conditional_put_refuses_live_duplicate(f: &Fixture) {
    let put = || Op::Put {
        table: Table::Once,
        item: Item::new("dup#1", "s", &body(1)).unwrap(),
        cond: Cond::Absent,
    };
    f.store.write(vec![put()]).await.unwrap();
    assert!(matches!(
        f.store.write(vec![put()]).await,
        Err(StoreError::Conflict)
    ));
}

pub async fn version_condition_allows_one_update(f: &Fixture) {
    let item = Item::new("ver#1", "s", &body(1)).unwrap();
    f.store
        .write(vec![Op::Put {
            table: Table::Once,
            item,
            cond: Cond::Absent,
        }])
        .await
        .unwrap();
    let v1 = f
        .store
        .get_item(Table::Once, "ver#1", "s")
        .await
        .unwrap()
        .unwrap()
        .version;
    let update = |n| Op::Put {
        table: Table::Once,
        item: Item::new("ver#1", "s", &body(n))
            .unwrap()
            .with_version(v1 + 1),
        cond: Cond::Version(v1),
    };
    f.store.write(vec![update(2)]).await.unwrap();
    assert!(
        matches!(
            f.store.write(vec![update(3)]).await,
            Err(StoreError::Conflict)
        ),
        "stale version refused"
    );
    assert_eq!(
        f.store
            .get::<serde_json::Value>(Table::Once, "ver#1", "s")
            .await
            .unwrap(),
        Some(body(2))
    );
}

pub async fn multi_op_write_is_all_or_nothing(f: &Fixture) {
    let taken = Item::new("tx#taken", "s", &body(0)).unwrap();
    f.store
        .write(vec![Op::Put {
            table: Table::Once,
            item: taken,
            cond: Cond::Absent,
        }])
        .await
        .unwrap();
    let r = f
        .store
        .write(vec![
            Op::Put {
                table: Table::Apps,
                item: Item::new("tx#new", "s", &body(1)).unwrap(),
                cond: Cond::Absent,
            },
            Op::Put {
                table: Table::Once,
                item: Item::new("tx#taken", "s", &body(2)).unwrap(),
                cond: Cond::Absent,
            },
        ])
        .await;
    assert!(matches!(r, Err(StoreError::Conflict)));
    assert!(
        f.store
            .get_item(Table::Apps, "tx#new", "s")
            .await
            .unwrap()
            .is_none(),
        "nothing half-written"
    );
    assert_eq!(
        f.store
            .get::<serde_json::Value>(Table::Once, "tx#taken", "s")
            .await
            .unwrap(),
        Some(body(0))
    );
}

pub async fn query_returns_live_records_under_prefix_in_order(f: &Fixture) {
    let now = f.clock_now();
    let mut ops = Vec::new();
    for (sk, exp) in [
        ("m#b", None),
        ("m#a", None),
        ("x#c", None),
        ("m#old", Some(now - 1)),
    ] {
        let mut item = Item::new("q#1", sk, &json!({ "sk": sk })).unwrap();
        item.expires_at = exp;
        ops.push(Op::Put {
            table: Table::Apps,
            item,
            cond: Cond::Always,
        });
    }
    f.store.backend().write(ops, now - 5).await.unwrap();
    let got: Vec<serde_json::Value> = f.store.query(Table::Apps, "q#1", "m#").await.unwrap();
    assert_eq!(got, vec![json!({"sk": "m#a"}), json!({"sk": "m#b"})]);
}

/// N ≥ 200 concurrent consumers of one single-use value: exactly one gets it.
pub async fn single_use_value_is_taken_once_by_200_racers(f: &Fixture) {
    let now = f.clock_now();
    f.store
        .put_single_use("code", "k1", &json!({ "user": "u" }), now + 60)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..RACERS {
        let store = f.store.clone();
        tasks.push(tokio::spawn(async move {
            store.take_single_use("code", "k1").await
        }));
    }
    let mut winners = 0;
    for t in tasks {
        if t.await.unwrap().unwrap().is_some() {
            winners += 1;
        }
    }
    assert_eq!(
        winners, 1,
        "{} backend: exactly one of {RACERS} takers wins",
        f.backend
    );
    assert!(
        f.store
            .take_single_use("code", "k1")
            .await
            .unwrap()
            .is_none()
    );
}

/// N ≥ 200 concurrent first-uses of one id (jti, SAML assertion ID): exactly one is first.
pub async fn mark_used_succeeds_once_for_200_racers(f: &Fixture) {
    let now = f.clock_now();
    let mut tasks = Vec::new();
    for _ in 0..RACERS {
        let store = f.store.clone();
        tasks.push(tokio::spawn(async move {
            store.mark_used("jti", "abc", now + 300).await
        }));
    }
    let mut firsts = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            firsts += 1;
        }
    }
    assert_eq!(firsts, 1, "{} backend: exactly one first use", f.backend);
}

/// Two handles on one store (two processes, for the embedded backend) racing on one key.
pub async fn single_use_holds_across_two_handles(f: &Fixture) {
    let other = f.reopen().await;
    f.store
        .put_single_use("code", "k2", &json!({}), f.clock_now() + 60)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..RACERS {
        let store = if i % 2 == 0 {
            f.store.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            store.take_single_use("code", "k2").await
        }));
    }
    let mut winners = 0;
    for t in tasks {
        if t.await.unwrap().unwrap().is_some() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

pub async fn expired_single_use_value_cannot_be_taken(f: &Fixture) {
    let now = f.clock_now();
    f.store
        .put_single_use("code", "k3", &json!({}), now + 60)
        .await
        .unwrap();
    f.clock.advance(61);
    assert!(
        f.store
            .take_single_use("code", "k3")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        f.store
            .mark_used("jti", "k3", f.clock_now() + 10)
            .await
            .unwrap()
    );
}

pub async fn account_email_is_unique_whatever_its_case(f: &Fixture) {
    let email = Email::parse("Ada@Example.com").unwrap();
    let a = f
        .store
        .create_account(&email, None, AccountStatus::Active)
        .await
        .unwrap();
    let again = f
        .store
        .create_account(
            &Email::parse("ada@example.COM").unwrap(),
            None,
            AccountStatus::Active,
        )
        .await;
    assert!(matches!(again, Err(AccountError::EmailTaken)));
    let found = f
        .store
        .account_by_email(&Email::parse("ADA@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, a.id);
    assert_eq!(
        f.store.list_accounts().await.unwrap().len(),
        1,
        "the refused duplicate left nothing behind"
    );
}

pub async fn concurrent_account_creation_makes_one_account(f: &Fixture) {
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = f.store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .create_account(
                    &Email::parse("race@example.com").unwrap(),
                    None,
                    AccountStatus::Active,
                )
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(f.store.list_accounts().await.unwrap().len(), 1);
}

pub async fn account_password_and_stale_update(f: &Fixture) {
    let email = Email::parse("pw@example.com").unwrap();
    let pw = SecretString::new("correct horse battery");
    let a = f
        .store
        .create_account(&email, Some(&pw), AccountStatus::Active)
        .await
        .unwrap();
    let stored = f.store.account(&a.id).await.unwrap().unwrap();
    assert!(identity_shared::crypto::verify_password(
        &pw,
        stored.password_hash.as_ref().unwrap().as_str()
    ));
    let mut changed = stored.clone();
    changed.status = AccountStatus::Pending;
    let saved = f.store.update_account(&changed).await.unwrap();
    assert_eq!(
        f.store.account(&a.id).await.unwrap().unwrap().status,
        AccountStatus::Pending
    );
    assert!(
        matches!(
            f.store.update_account(&changed).await,
            Err(AccountError::Changed)
        ),
        "stale copy refused"
    );
    assert!(f.store.update_account(&saved).await.is_ok());
}

pub async fn session_lives_until_its_absolute_expiry(f: &Fixture) {
    let a = f
        .store
        .create_account(
            &Email::parse("s@example.com").unwrap(),
            None,
            AccountStatus::Active,
        )
        .await
        .unwrap();
    let (id, s) = f
        .store
        .start_session(&a, Some("okta"), 8 * 3600)
        .await
        .unwrap();
    assert_eq!(f.store.session(&id).await.unwrap().unwrap(), s);
    f.clock.advance(8 * 3600 - 1);
    assert!(f.store.session(&id).await.unwrap().is_some());
    f.clock.advance(1);
    assert!(
        f.store.session(&id).await.unwrap().is_none(),
        "8 hours after login, whatever the activity"
    );
    let (id2, _) = f.store.start_session(&a, None, 60).await.unwrap();
    f.store.end_session(&id2).await.unwrap();
    assert!(f.store.session(&id2).await.unwrap().is_none());
}

pub async fn an_idps_logout_ends_the_sessions_it_names_and_no_other(f: &Fixture) {
    let a = f
        .store
        .create_account(
            &Email::parse("sam@acme.example").unwrap(),
            None,
            AccountStatus::Active,
        )
        .await
        .unwrap();
    let subject = |index: &str| SamlSubject {
        name_id: "sam@acme.example".into(),
        format: Some("urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress".into()),
        name_qualifier: None,
        sp_name_qualifier: None,
        session_index: Some(index.into()),
    };
    let start = |idp: &'static str, index: &'static str| {
        let a = a.clone();
        async move {
            f.store
                .start_saml_session(&a, idp, &subject(index), 3600)
                .await
                .unwrap()
                .0
        }
    };
    let (one, two, three) = (
        start("acme", "s1").await,
        start("acme", "s2").await,
        start("acme", "s3").await,
    );
    let other_idp = start("globex", "s1").await;
    let kept = f.store.session(&one).await.unwrap().unwrap();
    assert_eq!(
        kept.saml,
        Some(subject("s1")),
        "the session keeps its subject"
    );

    // One IdP session: only ours of that SessionIndex.
    let ended = f
        .store
        .end_saml_sessions("acme", "sam@acme.example", &["s2".into()])
        .await
        .unwrap();
    assert_eq!(ended, 1);
    assert!(f.store.session(&two).await.unwrap().is_none());
    assert!(f.store.session(&one).await.unwrap().is_some());
    // Another NameID, or the same at another IdP: nothing.
    assert_eq!(
        f.store
            .end_saml_sessions("acme", "kim@acme.example", &[])
            .await
            .unwrap(),
        0
    );
    // No SessionIndex: every session of the NameID at that IdP, not another IdP's.
    assert_eq!(
        f.store
            .end_saml_sessions("acme", "sam@acme.example", &[])
            .await
            .unwrap(),
        2
    );
    assert!(f.store.session(&one).await.unwrap().is_none());
    assert!(f.store.session(&three).await.unwrap().is_none());
    assert!(f.store.session(&other_idp).await.unwrap().is_some());
    // The index goes with its sessions: asked again, nothing is left to end.
    assert_eq!(
        f.store
            .end_saml_sessions("acme", "sam@acme.example", &[])
            .await
            .unwrap(),
        0
    );
    // An expired session is absent, from the index too.
    let late = start("acme", "s4").await;
    f.clock.advance(3600);
    assert!(f.store.session(&late).await.unwrap().is_none());
    assert_eq!(
        f.store
            .end_saml_sessions("acme", "sam@acme.example", &[])
            .await
            .unwrap(),
        0
    );
}

pub async fn app_roles_are_read_at_once(f: &Fixture) {
    let mk = |e: &str| Email::parse(e).unwrap();
    let owner = f
        .store
        .create_account(&mk("owner@example.com"), None, AccountStatus::Active)
        .await
        .unwrap();
    let bob = f
        .store
        .create_account(&mk("bob@example.com"), None, AccountStatus::Active)
        .await
        .unwrap();
    let app = f.store.create_app("my-app", &owner).await.unwrap();
    assert!(matches!(
        f.store.create_app("my-app", &bob).await,
        Err(AppError::NameTaken)
    ));
    assert_eq!(
        f.store.role_of(&app.id, &owner.id).await.unwrap(),
        Some(Role::Owner)
    );
    assert_eq!(f.store.role_of(&app.id, &bob.id).await.unwrap(), None);

    f.store
        .set_role(&app, &bob, Role::Collaborator)
        .await
        .unwrap();
    assert_eq!(
        f.store.role_of(&app.id, &bob.id).await.unwrap(),
        Some(Role::Collaborator)
    );
    f.store.set_role(&app, &bob, Role::Admin).await.unwrap();
    assert_eq!(
        f.store.role_of(&app.id, &bob.id).await.unwrap(),
        Some(Role::Admin),
        "role change visible at once"
    );
    assert_eq!(
        f.store.apps_of(&bob.id).await.unwrap(),
        vec![(app.id.clone(), Role::Admin)]
    );
    let emails: HashSet<_> = f
        .store
        .members(&app)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.email)
        .collect();
    assert_eq!(
        emails,
        HashSet::from([
            "owner@example.com".to_string(),
            "bob@example.com".to_string()
        ])
    );

    assert!(f.store.remove_member(&app, &bob.id).await.unwrap());
    assert_eq!(
        f.store.role_of(&app.id, &bob.id).await.unwrap(),
        None,
        "removal ends access at once"
    );
    assert!(f.store.apps_of(&bob.id).await.unwrap().is_empty());
    assert!(!f.store.remove_member(&app, &bob.id).await.unwrap());
    assert!(matches!(
        f.store.remove_member(&app, &owner.id).await,
        Err(AppError::OwnerCannotBeRemoved)
    ));
}

pub async fn app_ownership_transfer_keeps_previous_owner_as_admin(f: &Fixture) {
    let mk = |e: &str| Email::parse(e).unwrap();
    let owner = f
        .store
        .create_account(&mk("o@example.com"), None, AccountStatus::Active)
        .await
        .unwrap();
    let next = f
        .store
        .create_account(&mk("n@example.com"), None, AccountStatus::Active)
        .await
        .unwrap();
    let app = f.store.create_app("moving", &owner).await.unwrap();
    f.store.set_role(&app, &next, Role::Owner).await.unwrap();
    let app = f.store.app(&app.id).await.unwrap().unwrap();
    assert_eq!(app.owner_account_id, next.id);
    assert_eq!(
        f.store.role_of(&app.id, &owner.id).await.unwrap(),
        Some(Role::Admin)
    );
    assert_eq!(
        f.store.role_of(&app.id, &next.id).await.unwrap(),
        Some(Role::Owner)
    );
}

/// Embedded keys: generated once, the same for every process, rotation keeps the previous.
pub async fn embedded_keys_are_shared_and_rotate(f: &Fixture) {
    let a = Arc::new(EmbeddedSecrets::new(f.store.clone()));
    let b = Arc::new(EmbeddedSecrets::new(f.reopen().await));
    let (ka, kb) = tokio::join!(a.fetch(SecretKind::Signing), b.fetch(SecretKind::Signing));
    let (ka, kb) = (
        SigningKeys::parse(&ka.unwrap()).unwrap(),
        SigningKeys::parse(&kb.unwrap()).unwrap(),
    );
    assert_eq!(
        ka.current.kid, kb.current.kid,
        "two processes agree on the generated key"
    );
    a.rotate(SecretKind::Signing).await.unwrap();
    let rotated = SigningKeys::parse(&b.fetch(SecretKind::Signing).await.unwrap()).unwrap();
    assert_ne!(rotated.current.kid, ka.current.kid);
    assert_eq!(rotated.previous.as_ref().unwrap().kid, ka.current.kid);
}

impl Fixture {
    pub fn clock_now(&self) -> i64 {
        identity_shared::Clock::now(&self.clock)
    }
}

// ---------------------------------------------------------------------------------------
// Counters, bounded pages, throttling, offboarding
// ---------------------------------------------------------------------------------------

pub async fn counter_counts_every_racer_exactly_once(f: &Fixture) {
    let now = f.clock_now();
    let other = f.reopen().await;
    let mut tasks = Vec::new();
    for i in 0..RACERS {
        let store = if i % 2 == 0 {
            f.store.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            store
                .add(Table::Once, "counter#1", "w#1", 1, now + 60)
                .await
        }));
    }
    let mut seen = HashSet::new();
    for t in tasks {
        assert!(seen.insert(t.await.unwrap().unwrap()), "every count once");
    }
    assert_eq!(
        seen,
        (1..=RACERS as i64).collect::<HashSet<_>>(),
        "{} backend: {RACERS} racers count 1..={RACERS}",
        f.backend
    );
}

pub async fn an_expired_counter_starts_again_and_a_live_one_keeps_its_expiry(f: &Fixture) {
    let now = f.clock_now();
    assert_eq!(
        f.store
            .add(Table::Once, "counter#2", "w", 1, now + 10)
            .await
            .unwrap(),
        1
    );
    // A later add does not move the expiry.
    assert_eq!(
        f.store
            .add(Table::Once, "counter#2", "w", 2, now + 999)
            .await
            .unwrap(),
        3
    );
    f.clock.set(now + 10);
    assert!(
        f.store
            .get_item(Table::Once, "counter#2", "w")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        f.store
            .add(Table::Once, "counter#2", "w", 1, now + 20)
            .await
            .unwrap(),
        1,
        "{}: an expired counter counts from zero",
        f.backend
    );
    f.clock.set(now);
}

pub async fn newest_page_is_bounded_and_newest_first_skipping_expired(f: &Fixture) {
    let now = f.clock_now();
    let mut ops = Vec::new();
    for i in 0..30_i64 {
        let mut item = Item::new("page#1", format!("{i:03}"), &body(i)).unwrap();
        if i >= 27 {
            item = item.expiring(now - 1);
        }
        ops.push(Op::Put {
            table: Table::Once,
            item,
            cond: Cond::Always,
        });
    }
    for chunk in ops.chunks(10) {
        f.store.write(chunk.to_vec()).await.unwrap();
    }
    let page: Vec<serde_json::Value> = f
        .store
        .query_newest(Table::Once, "page#1", "", 5)
        .await
        .unwrap();
    assert_eq!(
        page,
        (22..27).rev().map(body).collect::<Vec<_>>(),
        "{}",
        f.backend
    );
}

fn limits(subject: u32, address: u32, total: u32) -> Limits {
    let limit = Limit {
        subject,
        address,
        total,
    };
    Limits {
        window_secs: 900,
        ipv4_prefix: 24,
        password: limit,
        device: limit,
        reset: limit,
        jwt: limit,
        device_start: limit,
    }
}

fn from<'a>(subject: &'a str, address: &str) -> Attempt<'a> {
    Attempt {
        subject: Some(subject),
        address: Some(address.parse().unwrap()),
        device: None,
    }
}

/// The same attempt from a browser that signed in to the account before.
fn known<'a>(subject: &'a str, address: &str, device: &'a str) -> Attempt<'a> {
    Attempt {
        device: Some(device),
        ..from(subject, address)
    }
}

/// Counts one failure: the lock it brought about.
async fn fail(f: &Fixture, a: Action, l: &Limits, who: &Attempt<'_>) -> Option<Locked> {
    f.store.throttle_count(a, l, who).await.unwrap()
}

/// What a check decides for the attempt.
async fn verdict(f: &Fixture, a: Action, l: &Limits, who: &Attempt<'_>) -> Verdict {
    f.store.throttle_check(a, l, who).await.unwrap()
}

/// The lock the attempt meets, if any.
async fn lock_of(f: &Fixture, a: Action, l: &Limits, who: &Attempt<'_>) -> Option<Locked> {
    match verdict(f, a, l, who).await {
        Verdict::Locked(locked) => Some(locked),
        Verdict::Go | Verdict::Prove => None,
    }
}

pub async fn strangers_lock_a_subject_from_their_own_prefix_only_and_the_next_lock_lasts_twice_as_long(
    f: &Fixture,
) {
    let l = limits(3, 0, 0);
    let now = f.clock_now();
    let a = Action::Password;
    for i in 0..2 {
        let who = from("ann@example.com", &format!("192.0.2.{i}"));
        assert_eq!(fail(f, a, &l, &who).await, None);
        assert_eq!(verdict(f, a, &l, &who).await, Verdict::Go);
    }
    let locked = fail(f, a, &l, &from("ANN@example.com", "192.0.2.9")).await;
    assert_eq!(locked, Some(Locked { retry_after: 900 }));
    let same_prefix = from("ann@example.com", "192.0.2.200");
    assert_eq!(
        lock_of(f, a, &l, &same_prefix).await,
        Some(Locked { retry_after: 900 }),
        "{}: the /24 is one address",
        f.backend
    );
    let elsewhere = from("ann@example.com", "203.0.113.1");
    assert_eq!(
        verdict(f, a, &l, &elsewhere).await,
        Verdict::Prove,
        "{}: from another prefix the subject surges: a proof of work, not a lock",
        f.backend
    );
    let at_home = known("ann@example.com", "192.0.2.9", "nonce-1");
    assert_eq!(
        verdict(f, a, &l, &at_home).await,
        Verdict::Go,
        "{}: a known browser goes through, even from the locked prefix",
        f.backend
    );
    let bob = from("bob@example.com", "192.0.2.9");
    assert_eq!(
        verdict(f, a, &l, &bob).await,
        Verdict::Go,
        "another subject"
    );
    let device = verdict(f, Action::DeviceCode, &l, &same_prefix).await;
    assert_eq!(device, Verdict::Go, "another action");
    f.clock.set(now + 900);
    assert_eq!(lock_of(f, a, &l, &same_prefix).await, None);
    for _ in 0..2 {
        assert_eq!(fail(f, a, &l, &same_prefix).await, None);
    }
    let second = fail(f, a, &l, &same_prefix).await;
    assert_eq!(
        second,
        Some(Locked { retry_after: 1800 }),
        "{}: the second lock doubles",
        f.backend
    );
    f.clock.set(now);
}

pub async fn a_known_browser_signs_in_through_a_lock_and_surge_made_by_strangers_and_locks_only_itself(
    f: &Fixture,
) {
    let l = limits(3, 5, TOTAL_SHARDS);
    let a = Action::Password;
    // Strangers: the subject from their prefix, their address, the subject from everywhere.
    for i in 0..5 {
        fail(f, a, &l, &from("cy@example.com", &format!("192.0.2.{i}"))).await;
    }
    for i in 0..TOTAL_SHARDS * 4 {
        fail(
            f,
            a,
            &l,
            &from(&format!("made-up-{i}@example.com"), "198.51.100.1"),
        )
        .await;
    }
    assert!(
        lock_of(f, a, &l, &from("cy@example.com", "192.0.2.9"))
            .await
            .is_some()
    );
    let browser = known("cy@example.com", "192.0.2.9", "cy-browser");
    assert_eq!(
        verdict(f, a, &l, &browser).await,
        Verdict::Go,
        "{}: neither the prefix's lock nor the surge reach a known browser",
        f.backend
    );
    for _ in 0..2 {
        assert_eq!(fail(f, a, &l, &browser).await, None);
    }
    assert!(
        fail(f, a, &l, &browser).await.is_some(),
        "its own failures lock it"
    );
    assert!(
        lock_of(
            f,
            a,
            &l,
            &known("cy@example.com", "203.0.113.5", "cy-browser")
        )
        .await
        .is_some()
    );
    let other_browser = known("cy@example.com", "192.0.2.9", "another-browser");
    assert_eq!(verdict(f, a, &l, &other_browser).await, Verdict::Go);
}

pub async fn an_address_lock_covers_every_subject_of_its_prefix_and_the_total_only_surges(
    f: &Fixture,
) {
    let a = Action::JwtGrant;
    let l = limits(0, 2, 0);
    fail(f, a, &l, &from("x", "192.0.2.1")).await;
    assert!(fail(f, a, &l, &from("y", "192.0.2.1")).await.is_some());
    assert!(lock_of(f, a, &l, &from("z", "192.0.2.1")).await.is_some());
    assert!(lock_of(f, a, &l, &from("z", "192.0.2.250")).await.is_some());
    assert!(lock_of(f, a, &l, &from("z", "192.0.3.1")).await.is_none());
    // IPv6: one /64 is one address.
    let v6 = |s: &str| Attempt {
        subject: None,
        address: Some(s.parse().unwrap()),
        device: None,
    };
    fail(f, a, &l, &v6("2001:db8:1:1::1")).await;
    fail(f, a, &l, &v6("2001:db8:1:1::2")).await;
    assert!(
        lock_of(f, a, &l, &v6("2001:db8:1:1:ffff::3"))
            .await
            .is_some()
    );
    assert!(lock_of(f, a, &l, &v6("2001:db8:1:2::1")).await.is_none());

    // The total: spread over its shards, each allowing its share; the first shard at its
    // share makes the action surge for every check (a proof of work for pages' actions)
    // until the window ends, and never locks anyone.
    let total = limits(0, 0, TOTAL_SHARDS);
    for action in [Action::ResetRequest, Action::Password] {
        let anyone = from("anyone@example.com", "203.0.113.1");
        assert_eq!(verdict(f, action, &total, &anyone).await, Verdict::Go);
        for i in 0..(TOTAL_SHARDS * 4) {
            let who = from("someone@example.com", &format!("198.51.{i}.1"));
            assert_eq!(fail(f, action, &total, &who).await, None, "{}", f.backend);
        }
        for i in 0..TOTAL_SHARDS {
            let anyone = from("anyone@example.com", &format!("203.0.{i}.1"));
            assert_eq!(
                verdict(f, action, &total, &anyone).await,
                Verdict::Prove,
                "{}: {action:?}: every check sees the surge",
                f.backend
            );
        }
    }
    f.clock.advance(total.window_secs);
    for action in [Action::ResetRequest, Action::Password] {
        let anyone = from("anyone@example.com", "203.0.113.1");
        assert_eq!(
            verdict(f, action, &total, &anyone).await,
            Verdict::Go,
            "{}: {action:?}: the surge ends with its window",
            f.backend
        );
    }
}

pub async fn a_reset_lifts_the_subject_locks_from_every_prefix_and_forgets_its_strikes(
    f: &Fixture,
) {
    let a = Action::Password;
    let l = limits(2, 0, 0);
    let here = from("cat@example.com", "192.0.2.1");
    let there = from("cat@example.com", "198.51.100.1");
    let browser = known("cat@example.com", "203.0.113.1", "cat-browser");
    for who in [&here, &there, &browser] {
        fail(f, a, &l, who).await;
        assert!(fail(f, a, &l, who).await.is_some());
    }
    assert_eq!(
        verdict(f, a, &l, &here).await,
        Verdict::Locked(Locked { retry_after: 900 })
    );
    f.store
        .throttle_clear(a, &l, "Cat@example.com")
        .await
        .unwrap();
    for who in [&here, &there, &browser] {
        assert_eq!(verdict(f, a, &l, who).await, Verdict::Go, "{}", f.backend);
    }
    assert_eq!(fail(f, a, &l, &here).await, None);
    assert_eq!(
        fail(f, a, &l, &here).await,
        Some(Locked { retry_after: 900 }),
        "{}: a first lock again, not a doubled one: the strikes went with the reset",
        f.backend
    );
}

/// The attempt that brings a count to its limit writes the lock after it counts; attempts
/// running beside it are refused by the count itself, lock or not (here the lock is gone),
/// until the window ends or the lock is lifted.
pub async fn a_count_at_its_limit_refuses_before_its_lock_is_written(f: &Fixture) {
    let a = Action::Password;
    let l = limits(2, 0, 0);
    let who = from("dog@example.com", "192.0.2.1");
    fail(f, a, &l, &who).await;
    assert!(fail(f, a, &l, &who).await.is_some());
    let locks: Vec<Op> = f
        .store
        .backend()
        .scan(Table::Once, f.store.now())
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.sk == "lock")
        .map(|i| Op::Delete {
            table: Table::Once,
            pk: i.pk,
            sk: i.sk,
            cond: Cond::Always,
        })
        .collect();
    assert_eq!(locks.len(), 1, "{}", f.backend);
    f.store.write(locks).await.unwrap();
    assert!(
        lock_of(f, a, &l, &who).await.is_some(),
        "{}: the count at its limit refuses",
        f.backend
    );
    f.store
        .throttle_clear(a, &l, "dog@example.com")
        .await
        .unwrap();
    assert_eq!(lock_of(f, a, &l, &who).await, None, "{}", f.backend);
}

pub async fn the_signed_in_subject_of_device_codes_is_locked_from_every_address(f: &Fixture) {
    let a = Action::DeviceCode;
    let l = limits(2, 0, 0);
    fail(f, a, &l, &from("acct-dev", "192.0.2.1")).await;
    assert!(
        fail(f, a, &l, &from("acct-dev", "198.51.100.1"))
            .await
            .is_some()
    );
    assert!(
        lock_of(f, a, &l, &from("acct-dev", "203.0.113.1"))
            .await
            .is_some()
    );
}

pub async fn blocking_ends_sessions_revokes_grants_and_unblocking_lets_in_again(f: &Fixture) {
    use identity_shared::accounts::Offboarding;
    use identity_shared::oauth::{Grants, Scopes};
    let account = f
        .store
        .create_account(
            &Email::parse("gone@example.com").unwrap(),
            None,
            AccountStatus::Active,
        )
        .await
        .unwrap();
    let (id, _) = f.store.start_session(&account, None, 3600).await.unwrap();
    let grant = f
        .store
        .grant_for(&account.id, "client-1", &Scopes::parse("read").unwrap())
        .await
        .unwrap();
    let blocked = f.store.block_account(&account.id).await.unwrap();
    assert!(blocked.is_blocked());
    let session = f.store.session(&id).await.unwrap().unwrap();
    let now = f.store.account(&account.id).await.unwrap().unwrap();
    assert!(
        !session.is_current_for(&now),
        "{}: the session ended",
        f.backend
    );
    assert!(!f.store.grant(&grant.gid).await.unwrap().unwrap().is_live());
    let unblocked = f.store.unblock_account(&account.id).await.unwrap();
    assert!(!unblocked.is_blocked());
    let (fresh, _) = f.store.start_session(&unblocked, None, 3600).await.unwrap();
    let fresh = f.store.session(&fresh).await.unwrap().unwrap();
    assert!(fresh.is_current_for(&unblocked));
    assert!(
        !session.is_current_for(&unblocked),
        "what was ended stays ended"
    );
    f.store.sign_out_everywhere(&account.id).await.unwrap();
    let after = f.store.account(&account.id).await.unwrap().unwrap();
    assert!(!fresh.is_current_for(&after), "signed out everywhere");
}
