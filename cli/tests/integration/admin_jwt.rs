//! `identity admin jwt-client …`, `authorization …` and `login-history` as an operator runs
//! them, with keys made by openssl as the AppLink documentation says.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_identity");

fn identity(store: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("IDENTITY_STORE", format!("embedded:{}", store.display()))
        .env_remove("IDENTITY_BASE_URL")
        .env_remove("IDENTITY_SECRETS")
        .output()
        .expect("run identity")
}

/// The one JSON object a `--json` command prints; `ok` says whether it must succeed.
fn json(store: &Path, args: &[&str], ok: bool) -> serde_json::Value {
    let mut all = vec!["admin", "--json"];
    all.extend_from_slice(args);
    let out = identity(store, &all);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.success(),
        ok,
        "{args:?}: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text.trim().lines().count(), 1, "one JSON object: {text}");
    serde_json::from_str(text.trim()).expect("JSON output")
}

fn openssl(args: &[&str]) -> bool {
    Command::new("openssl")
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `openssl req -x509 -newkey … -nodes`: (key, certificate).
fn keypair(dir: &Path, name: &str, newkey: &[&str]) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let crt = dir.join(format!("{name}.crt"));
    let mut args = vec!["req", "-x509"];
    args.extend_from_slice(newkey);
    args.extend_from_slice(&[
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        crt.to_str().unwrap(),
        "-days",
        "365",
        "-nodes",
        "-subj",
        "/CN=ci.example.com",
    ]);
    assert!(openssl(&args), "openssl req failed");
    (key, crt)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn jwt_clients_rotation_named_authorizations_and_login_history() {
    if !openssl(&["version"]) {
        if std::env::var("IDENTITY_TEST_SKIP_SERVICES").as_deref() != Ok("1") {
            panic!("openssl is missing");
        }
        eprintln!("skipped: openssl not found");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (rsa_key, rsa_crt) = keypair(dir.path(), "rsa", &["-newkey", "rsa:2048"]);
    let (ec_key, ec_crt) = keypair(
        dir.path(),
        "ec",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    // The traditional formats too: PKCS#1 RSA and SEC1 EC keys.
    let rsa_pkcs1 = dir.path().join("rsa.pkcs1.key");
    assert!(openssl(&[
        "rsa",
        "-in",
        s(&rsa_key),
        "-traditional",
        "-out",
        s(&rsa_pkcs1)
    ]));
    let ec_sec1 = dir.path().join("ec.sec1.key");
    assert!(openssl(&["ec", "-in", s(&ec_key), "-out", s(&ec_sec1)]));

    json(&store, &["user", "add", "--email", "ci@example.com"], true);
    json(
        &store,
        &["user", "add", "--email", "other@example.com"],
        true,
    );
    json(
        &store,
        &[
            "app",
            "add",
            "--name",
            "my-app",
            "--owner",
            "ci@example.com",
        ],
        true,
    );

    // Registration: an unknown user and a private-key file are refused.
    let e = json(
        &store,
        &[
            "jwt-client",
            "add",
            "--name",
            "CI",
            "--cert",
            s(&rsa_crt),
            "--user",
            "ghost@example.com",
        ],
        false,
    );
    assert_eq!(e["error"], "no account for ghost@example.com");
    let e = json(
        &store,
        &[
            "jwt-client",
            "add",
            "--name",
            "CI",
            "--cert",
            s(&rsa_key),
            "--user",
            "ci@example.com",
        ],
        false,
    );
    assert!(e["error"].as_str().unwrap().contains("private key"), "{e}");
    let client = json(
        &store,
        &[
            "jwt-client",
            "add",
            "--name",
            "CI",
            "--cert",
            s(&rsa_crt),
            "--user",
            "ci@example.com",
            "--scope",
            "api",
            "--scope",
            "read-protected",
        ],
        true,
    );
    let id = client["client_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("jwt_"));
    assert_eq!(client["certificates"][0]["key"], "RSA 2048");
    assert_eq!(client["users"][0]["email"], "ci@example.com");
    assert_eq!(
        client["scopes"],
        serde_json::json!(["api", "read-protected"])
    );

    // A named authorization through the grant; the token is never printed.
    let add = |name: &str, key: &Path, user: &str, extra: &[&str], ok: bool| {
        let mut args = vec![
            "authorization",
            "add",
            name,
            "--app",
            "my-app",
            "--client-id",
            &id,
            "--key-file",
            s(key),
            "--user",
            user,
        ];
        args.extend_from_slice(extra);
        let out = identity(&store, &[&["admin", "--json"], args.as_slice()].concat());
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(out.status.success(), ok, "{text}");
        assert!(
            !text.contains("access_token") && !text.contains("eyJ"),
            "no token: {text}"
        );
        serde_json::from_str::<serde_json::Value>(text.trim()).unwrap()
    };
    let a = add("org_jwt", &rsa_pkcs1, "ci@example.com", &[], true);
    assert_eq!(a["developer_name"], "org_jwt");
    assert_eq!(a["alias"], "applink:org_jwt");
    assert_eq!(a["status"], "connected");
    assert_eq!(a["instance_url"], "http://127.0.0.1:3000");

    // Rotation: add the EC certificate, both keys work; remove the RSA one, it fails.
    let c = json(
        &store,
        &["jwt-client", "add-cert", &id, "--cert", s(&ec_crt)],
        true,
    );
    assert_eq!(c["certificates"].as_array().unwrap().len(), 2);
    add(
        "dc_jwt",
        &ec_sec1,
        "ci@example.com",
        &["--alias", "dc:main", "--scope", "api"],
        true,
    );
    add("org_jwt", &rsa_key, "ci@example.com", &[], true);
    let c = json(
        &store,
        &["jwt-client", "remove-cert", &id, "--cert", s(&rsa_crt)],
        true,
    );
    assert_eq!(c["certificates"].as_array().unwrap().len(), 1);
    assert_eq!(c["certificates"][0]["key"], "EC P-256");
    let e = add("org_jwt", &rsa_key, "ci@example.com", &[], false);
    assert!(
        e["error"].as_str().unwrap().contains("invalid_grant"),
        "{e}"
    );
    let e = json(
        &store,
        &["jwt-client", "remove-cert", &id, "--thumbprint", "nope"],
        false,
    );
    assert!(
        e["error"].as_str().unwrap().contains("no certificate"),
        "{e}"
    );

    // Pre-authorization.
    let e = add("other_jwt", &ec_key, "other@example.com", &[], false);
    assert!(
        e["error"].as_str().unwrap().contains("not pre-authorized"),
        "{e}"
    );
    json(
        &store,
        &[
            "jwt-client",
            "authorize-user",
            &id,
            "--user",
            "other@example.com",
        ],
        true,
    );
    add("other_jwt", &ec_key, "other@example.com", &[], true);
    let c = json(
        &store,
        &[
            "jwt-client",
            "deauthorize-user",
            &id,
            "--user",
            "other@example.com",
        ],
        true,
    );
    assert_eq!(c["users"].as_array().unwrap().len(), 1);
    let e = json(
        &store,
        &[
            "jwt-client",
            "deauthorize-user",
            &id,
            "--user",
            "other@example.com",
        ],
        false,
    );
    assert!(
        e["error"].as_str().unwrap().contains("not pre-authorized"),
        "{e}"
    );
    let e = add("1bad", &ec_key, "ci@example.com", &[], false);
    assert!(
        e["error"].as_str().unwrap().contains("developer names"),
        "{e}"
    );

    // The history: every grant the commands ran, newest first, with reasons.
    let h = json(&store, &["login-history"], true);
    let attempts = h["attempts"].as_array().unwrap();
    let summary: Vec<(&str, &str)> = attempts
        .iter()
        .map(|a| {
            (
                a["outcome"].as_str().unwrap(),
                a["subject"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("success", "other@example.com"),
            ("failure", "other@example.com"),
            ("failure", "ci@example.com"),
            ("success", "ci@example.com"),
            ("success", "ci@example.com"),
            ("success", "ci@example.com"),
        ]
    );
    assert!(
        attempts
            .iter()
            .all(|a| a["via"] == "admin" && a["client_id"] == id.as_str())
    );
    assert_eq!(
        attempts[1]["reason"],
        "user is not pre-authorized for this client"
    );
    let h = json(
        &store,
        &[
            "login-history",
            "--user",
            "other@example.com",
            "--client",
            &id,
        ],
        true,
    );
    assert_eq!(h["attempts"].as_array().unwrap().len(), 2);
    let h = json(&store, &["login-history", "--limit", "1"], true);
    assert_eq!(h["attempts"].as_array().unwrap().len(), 1);

    let list = json(&store, &["authorization", "list", "--app", "my-app"], true);
    let names: Vec<&str> = list["authorizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["developer_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["dc_jwt", "org_jwt", "other_jwt"]);
    assert!(!list.to_string().contains("sealed"));
    json(
        &store,
        &["authorization", "remove", "other_jwt", "--app", "my-app"],
        true,
    );
    json(
        &store,
        &["authorization", "remove", "other_jwt", "--app", "my-app"],
        false,
    );

    let shown = json(&store, &["jwt-client", "show", &id], true);
    assert_eq!(shown["client_id"], id.as_str());
    let all = json(&store, &["jwt-client", "list"], true);
    assert_eq!(all["clients"].as_array().unwrap().len(), 1);

    // Text output for people.
    let out = identity(&store, &["admin", "login-history", "--limit", "2"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(
        text.contains("success") && text.contains("via=admin"),
        "{text}"
    );
}
