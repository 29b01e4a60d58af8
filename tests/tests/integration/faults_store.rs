//! Store faults in the multi-record changes made outside the token endpoint (issue 19):
//! add-on provisioning (the add-on, its name, partner and resource pointers and the app's
//! link, in one write) leaves nothing or everything, and a retry after nothing provisions;
//! on the embedded store and on DynamoDB Local, behind the fault-injecting backend.

use std::sync::Arc;

use identity_shared::accounts::{AccountStatus, Accounts, Email};
use identity_shared::addons::Addons;
use identity_shared::apps::Apps;
use identity_shared::store::Store;
use identity_tests::faults::{Fault, Faulty};

const URL: &str = "https://partner.example.com/sso";

/// An app with its owner, for add-ons to belong to.
async fn shop(store: &Store) -> identity_shared::apps::App {
    let owner = store
        .create_account(
            &Email::parse("owner@example.com").unwrap(),
            None,
            AccountStatus::Active,
        )
        .await
        .unwrap();
    store.create_app("shop", &owner).await.unwrap()
}

#[tokio::test]
async fn add_on_provisioning_under_store_faults_leaves_nothing_or_everything_embedded() {
    add_on_provisioning_under_store_faults(identity_tests::embedded().await).await;
}

#[tokio::test]
async fn add_on_provisioning_under_store_faults_leaves_nothing_or_everything_dynamodb() {
    if let Some(f) = identity_tests::dynamodb().await {
        add_on_provisioning_under_store_faults(f).await;
    }
}

async fn add_on_provisioning_under_store_faults(f: identity_tests::Fixture) {
    let faulty = Arc::new(Faulty::new(f.store.backend().clone()));
    let store = Store::new(faulty.clone(), f.store.clock().clone());
    let app = shop(&store).await;

    faulty.reset();
    store.create_addon(&app, "baseline", URL).await.unwrap();
    let steps = faulty.mutations();
    assert!(steps >= 1);

    for step in 0..steps {
        for fault in Fault::ALL {
            let what = format!("fault {fault:?} at mutating call {step} of {steps}");
            let name = format!("addon-{step}-{fault:?}").to_lowercase();
            faulty.fail_mutation(step, fault);
            let made = store.create_addon(&app, &name, URL).await;
            faulty.reset();
            match store.addon_by_name(&name).await.unwrap() {
                None => {
                    assert!(made.is_err(), "{what}: provisioned, but nothing was kept");
                    let again = store.create_addon(&app, &name, URL).await;
                    assert!(again.is_ok(), "{what}: the retry");
                }
                Some(addon) => {
                    // Everything: found by id, by its partner's name and by its resource.
                    assert!(store.addon(&addon.id).await.unwrap().is_some(), "{what}");
                    assert!(
                        store
                            .addon_by_resource(&addon.resource_id)
                            .await
                            .unwrap()
                            .is_some(),
                        "{what}"
                    );
                    if let Ok(p) = &made {
                        assert_eq!(p.addon.id, addon.id, "{what}");
                    }
                }
            }
        }
    }
}

/// Add-on provisioning whose DynamoDB write meets a reset connection or a lost answer (a
/// loopback proxy in front of DynamoDB Local): the SDK's retry provisions it exactly once.
#[tokio::test]
async fn add_on_provisioning_survives_a_cut_at_each_dynamodb_write() {
    use identity_tests::proxy::{Cut, WRITE};
    let Some((store, proxy, _clock)) = identity_tests::proxy::proxied_store().await else {
        return;
    };
    let app = shop(&store).await;
    let before = proxy.writes();
    store.create_addon(&app, "baseline", URL).await.unwrap();
    let writes = proxy.writes() - before;
    assert!(writes >= 1);
    for step in 0..writes {
        for cut in [Cut::Reset, Cut::AnswerLost] {
            let what = format!("{cut:?} at write {step} of {writes}");
            let name = format!("cut-{step}-{cut:?}").to_lowercase();
            proxy.plan_after(WRITE, step, cut);
            let fired = proxy.fired();
            let made = store.create_addon(&app, &name, URL).await;
            assert_eq!(proxy.fired(), fired + 1, "{what}: the cut happened");
            let made = made.unwrap_or_else(|e| panic!("{what}: {e}"));
            let found = store.addon_by_name(&name).await.unwrap().unwrap();
            assert_eq!(found.id, made.addon.id, "{what}");
            assert!(
                store
                    .addon_by_resource(&made.addon.resource_id)
                    .await
                    .unwrap()
                    .is_some(),
                "{what}"
            );
        }
    }
}
