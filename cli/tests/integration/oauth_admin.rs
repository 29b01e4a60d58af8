//! `identity admin client …` and `identity admin grant …` as an operator uses them, with
//! `--json`, against an embedded store in a temp dir.

use std::sync::Arc;

use identity_shared::oauth::{Grants, OAuthClients, Scopes};
use identity_shared::secret::SecretString;
use identity_shared::store::Store;
use identity_shared::store::embedded::Embedded;

use crate::{identity_admin as identity, json_of};

fn store_at(dir: &std::path::Path) -> Store {
    Store::new(
        Arc::new(Embedded::open(dir).unwrap()),
        identity_shared::clock::system(),
    )
}

#[tokio::test]
async fn client_add_prints_the_secret_once_and_stores_only_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let out = identity(
        dir.path(),
        &[
            "admin",
            "client",
            "add",
            "--name",
            "Dashboard",
            "--redirect-uri",
            "https://dash.example.com/cb",
            "--redirect-uri",
            "http://127.0.0.1:9000/cb",
            "--trusted",
            "--scope",
            "identity",
            "--scope",
            "read",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = json_of(&out);
    let id = j["client_id"].as_str().unwrap();
    let secret = j["client_secret"].as_str().unwrap();
    assert_eq!(secret.len(), 43, "256 random bits");
    assert_eq!(j["trusted"], true);
    assert_eq!(j["public"], false);
    assert_eq!(j["scopes"], serde_json::json!(["identity", "read"]));
    assert_eq!(j["redirect_uris"].as_array().unwrap().len(), 2);

    let store = store_at(dir.path());
    let client = store.client(id).await.unwrap().unwrap();
    assert!(client.secret_matches(&SecretString::new(secret)));
    let raw = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap_or_default())
        .any(|bytes| bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
    assert!(!raw, "the secret itself is nowhere in the store's files");

    let shown = json_of(&identity(
        dir.path(),
        &["admin", "client", "show", id, "--json"],
    ));
    assert!(shown.get("client_secret").is_none(), "never shown again");
    let listed = json_of(&identity(
        dir.path(),
        &["admin", "client", "list", "--json"],
    ));
    assert_eq!(listed["clients"].as_array().unwrap().len(), 1);
}

#[test]
fn public_client_has_no_secret_and_bad_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let j = json_of(&identity(
        dir.path(),
        &[
            "admin",
            "client",
            "add",
            "--name",
            "CLI",
            "--redirect-uri",
            "http://127.0.0.1:8123/cb",
            "--public",
            "--json",
        ],
    ));
    assert!(j["client_secret"].is_null());
    assert_eq!(j["public"], true);
    assert_eq!(
        j["scopes"],
        serde_json::json!(["identity"]),
        "default scope"
    );
    for (args, says) in [
        (
            vec!["--redirect-uri", "http://app.example.com/cb"],
            "loopback",
        ),
        (
            vec!["--redirect-uri", "https://app.example.com/cb#x"],
            "fragment",
        ),
        (
            vec![
                "--redirect-uri",
                "https://app.example.com/cb",
                "--scope",
                "admin",
            ],
            "unknown scope",
        ),
    ] {
        let mut all = vec!["admin", "client", "add", "--name", "X", "--json"];
        all.extend(args);
        let out = identity(dir.path(), &all);
        assert!(!out.status.success());
        let j = json_of(&out);
        assert!(j["error"].as_str().unwrap().contains(says), "{j}");
    }
}

#[tokio::test]
async fn grant_list_and_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let c = json_of(&identity(
        dir.path(),
        &[
            "admin",
            "client",
            "add",
            "--name",
            "App",
            "--redirect-uri",
            "https://app.example.com/cb",
            "--json",
        ],
    ));
    let u = json_of(&identity(
        dir.path(),
        &[
            "admin",
            "user",
            "add",
            "--email",
            "ada@example.com",
            "--json",
        ],
    ));
    let empty = json_of(&identity(
        dir.path(),
        &[
            "admin",
            "grant",
            "list",
            "--user",
            "ada@example.com",
            "--json",
        ],
    ));
    assert_eq!(empty["grants"], serde_json::json!([]));

    let store = store_at(dir.path());
    let g = store
        .grant_for(
            u["account_id"].as_str().unwrap(),
            c["client_id"].as_str().unwrap(),
            &Scopes::parse("identity").unwrap(),
        )
        .await
        .unwrap();
    drop(store);

    let listed = json_of(&identity(
        dir.path(),
        &[
            "admin",
            "grant",
            "list",
            "--user",
            "ADA@example.com",
            "--json",
        ],
    ));
    let grants = listed["grants"].as_array().unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0]["grant_id"], g.gid.as_str());
    assert_eq!(grants[0]["client_name"], "App");
    assert_eq!(grants[0]["scopes"], serde_json::json!(["identity"]));

    let revoked = json_of(&identity(
        dir.path(),
        &["admin", "grant", "revoke", &g.gid, "--json"],
    ));
    assert_eq!(revoked["revoked"], true);
    let store = store_at(dir.path());
    assert!(!store.grant(&g.gid).await.unwrap().unwrap().is_live());
    let after = json_of(&identity(
        dir.path(),
        &[
            "admin",
            "grant",
            "list",
            "--user",
            "ada@example.com",
            "--json",
        ],
    ));
    assert_eq!(after["grants"], serde_json::json!([]));
    let out = identity(dir.path(), &["admin", "grant", "revoke", "nope", "--json"]);
    assert!(!out.status.success());
    assert!(
        json_of(&out)["error"]
            .as_str()
            .unwrap()
            .contains("no grant")
    );
}
