//! `identity admin team …`, `enterprise …` and `idp add --team/--enterprise` as an operator
//! uses them, with `--json`, against an embedded store in a temp dir.

use serde_json::Value;

use crate::{identity_admin, json_of};

fn ok(dir: &std::path::Path, args: &[&str]) -> Value {
    let mut all = vec!["admin"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = identity_admin(dir, &all);
    assert!(out.status.success(), "{args:?}: {out:?}");
    json_of(&out)
}

fn refused(dir: &std::path::Path, args: &[&str]) -> String {
    let mut all = vec!["admin"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = identity_admin(dir, &all);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
    json_of(&out)["error"].as_str().unwrap().to_string()
}

#[test]
fn teams_enterprises_and_the_members_view() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["enterprise", "add", "--name", "acme-corp"]);
    let team = ok(
        d,
        &["team", "add", "--name", "acme", "--enterprise", "acme-corp"],
    );
    assert_eq!(team["default_role"], "member");
    for who in ["ada@acme.example", "bob@acme.example", "cy@acme.example"] {
        ok(d, &["user", "add", "--email", who]);
    }
    ok(
        d,
        &[
            "team",
            "member",
            "add",
            "acme",
            "ada@acme.example",
            "--role",
            "admin",
        ],
    );
    ok(
        d,
        &[
            "team",
            "member",
            "add",
            "acme",
            "bob@acme.example",
            "--role",
            "collaborator",
        ],
    );
    ok(d, &["user", "block", "cy@acme.example"]);
    ok(
        d,
        &[
            "team",
            "member",
            "add",
            "acme",
            "cy@acme.example",
            "--role",
            "member",
        ],
    );
    let app = ok(
        d,
        &[
            "app",
            "add",
            "--name",
            "acme-web",
            "--owner",
            "ada@acme.example",
            "--team",
            "acme",
        ],
    );
    assert_eq!(app["team"], "acme", "{app}");
    let people: Vec<&str> = app["collaborators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        people,
        vec!["ada@acme.example", "cy@acme.example"],
        "the team's admins and members reach its apps, its collaborators do not"
    );

    let view = ok(d, &["team", "members", "acme"]);
    let rows: Vec<(String, String, String)> = view["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["email"].as_str().unwrap().into(),
                m["role"].as_str().unwrap().into(),
                m["sso_status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                "ada@acme.example".into(),
                "admin".into(),
                "not_under_sso".into()
            ),
            ("cy@acme.example".into(), "member".into(), "blocked".into()),
            (
                "bob@acme.example".into(),
                "collaborator".into(),
                "not_under_sso".into()
            ),
        ]
    );
    let text = identity_admin(d, &["admin", "team", "members", "acme"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("cy@acme.example  member  blocked"), "{text}");

    let changed = ok(d, &["team", "default-role", "acme", "admin"]);
    assert_eq!(changed["default_role"], "admin");
    let member = ok(
        d,
        &[
            "enterprise",
            "member",
            "add",
            "acme-corp",
            "ada@acme.example",
            "--permission",
            "manage",
            "--permission",
            "view",
        ],
    );
    assert_eq!(member["permissions"], serde_json::json!(["view", "manage"]));
    let view = ok(d, &["enterprise", "members", "acme-corp"]);
    assert_eq!(
        view["members"][0]["permissions"],
        serde_json::json!(["view", "manage"])
    );

    assert_eq!(
        refused(d, &["team", "add", "--name", "acme"]),
        "a team or enterprise account with this name already exists"
    );
    assert_eq!(refused(d, &["team", "members", "nope"]), "no team nope");
}

#[test]
fn an_idp_connects_only_to_an_organisation_that_exists() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let signer = sso_acs::saml::idp_signer::IdpSigner::generate("org test IdP").unwrap();
    let cert = d.join("idp.pem");
    std::fs::write(&cert, signer.cert_pem()).unwrap();
    let cert = cert.display().to_string();
    let idp = |extra: &[&'static str]| {
        let mut args = vec![
            "idp",
            "add",
            "--id",
            "acme",
            "--entity-id",
            "https://idp.acme.example",
            "--sso-url",
            "https://idp.acme.example/sso",
            "--cert",
            cert.as_str(),
            "--domain",
            "acme.example",
        ];
        args.extend_from_slice(extra);
        args
    };
    assert_eq!(
        refused(d, &idp(&["--team", "acme"])),
        "no team acme (identity admin team add)"
    );
    assert_eq!(
        refused(d, &idp(&["--enterprise", "acme-corp"])),
        "no enterprise account acme-corp (identity admin enterprise add)"
    );
    ok(d, &["team", "add", "--name", "acme"]);
    ok(d, &["enterprise", "add", "--name", "acme-corp"]);
    let added = ok(
        d,
        &idp(&[
            "--team",
            "acme",
            "--default-role",
            "admin",
            "--enterprise",
            "acme-corp",
        ]),
    );
    assert_eq!(
        (added["team"].as_str(), added["enterprise"].as_str()),
        (Some("acme"), Some("acme-corp"))
    );
    let members = ok(d, &["team", "members", "acme"]);
    assert_eq!(members["members"], serde_json::json!([]));
    let team = identity_admin(
        d,
        &["admin", "team", "default-role", "acme", "member", "--json"],
    );
    assert!(team.status.success());
    assert_eq!(
        json_of(&identity_admin(
            d,
            &["admin", "team", "default-role", "acme", "admin", "--json"]
        ))["default_role"],
        "admin"
    );
}
