//! `identity admin addon …` as an operator uses it, with `--json`, against an embedded store
//! in a temp dir.

use std::sync::Arc;

use identity_shared::addons::Addons;
use identity_shared::secret::SecretString;
use identity_shared::store::Store;
use identity_shared::store::embedded::Embedded;

use crate::{identity_admin as identity, json_of};

fn setup(dir: &std::path::Path) {
    for args in [
        &[
            "admin",
            "user",
            "add",
            "--email",
            "ada@example.com",
            "--json",
        ][..],
        &[
            "admin",
            "app",
            "add",
            "--name",
            "shop",
            "--owner",
            "ada@example.com",
            "--json",
        ],
    ] {
        let out = identity(dir, args);
        assert!(out.status.success(), "{out:?}");
    }
}

#[tokio::test]
async fn addon_add_prints_the_contract_fields_once_and_keeps_only_a_hash() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let out = identity(
        dir.path(),
        &[
            "admin",
            "addon",
            "add",
            "--app",
            "shop",
            "--name",
            "shop-cache",
            "--sso-url",
            "https://partner.example.com/sso",
            "--json",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let j = json_of(&out);
    for field in [
        "addon_id",
        "resource_id",
        "sso_salt",
        "partner_username",
        "partner_password",
    ] {
        assert!(
            j[field].as_str().is_some_and(|v| !v.is_empty()),
            "{field}: {j}"
        );
    }
    assert_eq!(j["app"], "shop");
    assert_eq!(j["sso_url"], "https://partner.example.com/sso");
    let id = j["addon_id"].as_str().unwrap();
    assert_eq!(j["sso_path"], format!("/addons/{id}/sso"));
    let password = j["partner_password"].as_str().unwrap();
    let salt = j["sso_salt"].as_str().unwrap();

    // The store has the add-on; the password works and is not stored as such.
    let store = Store::new(
        Arc::new(Embedded::open(dir.path()).unwrap()),
        identity_shared::clock::system(),
    );
    let username = j["partner_username"].as_str().unwrap();
    let addon = store
        .partner_addon(username, &SecretString::new(password))
        .await
        .unwrap()
        .expect("the printed credentials authenticate");
    assert_eq!(addon.id, id);
    assert_eq!(addon.sso_salt().expose(), salt);
    assert_eq!(addon.resource_id, j["resource_id"].as_str().unwrap());
    drop(store);
    // Nothing on disk (the database and its WAL) holds the password.
    let mut disk = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        disk.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(disk.len() > 1000, "the store's files were read");
    assert!(
        !disk
            .windows(password.len())
            .any(|w| w == password.as_bytes())
    );
    assert!(
        disk.windows(username.len())
            .any(|w| w == username.as_bytes()),
        "the search itself works"
    );

    // show and list never print the salt or the password.
    for args in [
        &["admin", "addon", "show", "shop-cache", "--json"][..],
        &["admin", "addon", "show", id, "--json"],
        &["admin", "addon", "list", "--json"],
        &["admin", "addon", "list", "--app", "shop", "--json"],
        &["admin", "addon", "show", "shop-cache"],
    ] {
        let out = identity(dir.path(), args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(id), "{args:?}: {text}");
        assert!(!text.contains(password), "{args:?}");
        assert!(!text.contains(salt), "{args:?}");
    }
    let list = json_of(&identity(dir.path(), &["admin", "addon", "list", "--json"]));
    assert_eq!(list["addons"].as_array().unwrap().len(), 1);
}

#[test]
fn addon_add_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    for (args, message) in [
        (
            vec![
                "--app",
                "shop",
                "--name",
                "x1",
                "--sso-url",
                "https://p.example.com/sso",
            ],
            "add-on names",
        ),
        (
            vec![
                "--app",
                "nope",
                "--name",
                "cache",
                "--sso-url",
                "https://p.example.com/sso",
            ],
            "no app named nope",
        ),
        (
            vec![
                "--app",
                "shop",
                "--name",
                "cache",
                "--sso-url",
                "http://p.example.com/sso",
            ],
            "http is allowed only on a loopback host",
        ),
    ] {
        let mut full = vec!["admin", "addon", "add"];
        full.extend(args);
        full.push("--json");
        let out = identity(dir.path(), &full);
        assert!(!out.status.success(), "{full:?}");
        let j = json_of(&out);
        assert!(
            j["error"].as_str().unwrap().contains(message),
            "{full:?}: {j}"
        );
    }
    // A loopback http URL is fine (local development, the example partner).
    let out = identity(
        dir.path(),
        &[
            "admin",
            "addon",
            "add",
            "--app",
            "shop",
            "--name",
            "local-cache",
            "--sso-url",
            "http://127.0.0.1:3000/example-partner/sso",
            "--json",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    // The name is taken now.
    let out = identity(
        dir.path(),
        &[
            "admin",
            "addon",
            "add",
            "--app",
            "shop",
            "--name",
            "local-cache",
            "--sso-url",
            "https://p.example.com/sso",
            "--json",
        ],
    );
    assert!(!out.status.success());
    assert!(
        json_of(&out)["error"]
            .as_str()
            .unwrap()
            .contains("already exists")
    );
}
