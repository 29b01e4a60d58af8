//! The `identity` binary as an operator uses it: `admin` commands with `--json`, and
//! `serve` answering while `admin` writes, with data kept across restarts.

use crate::{free_port, json_of};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_identity");

fn identity(store: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("IDENTITY_STORE", format!("embedded:{}", store.display()))
        .env_remove("IDENTITY_BASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run identity");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

/// A plain HTTP/1.1 GET; the status code and body.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let status = raw.split_whitespace().nth(1)?.parse().ok()?;
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

pub(crate) struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn serve(store: &std::path::Path, port: u16) -> Server {
    let child = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("IDENTITY_STORE", format!("embedded:{}", store.display()))
        .env_remove("IDENTITY_BASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start identity serve");
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if http_get(port, "/session").is_some() {
            return server;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("identity serve did not answer on port {port}");
}

#[test]
fn user_add_prints_the_account_and_refuses_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let out = identity(
        dir.path(),
        &[
            "admin",
            "user",
            "add",
            "--email",
            "Ada@Example.com",
            "--json",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let account = json_of(&out);
    assert_eq!(account["email"], "ada@example.com");
    assert_eq!(account["status"], "active");
    assert_eq!(account["has_password"], false);

    let again = identity(
        dir.path(),
        &[
            "admin",
            "user",
            "add",
            "--email",
            "ada@example.com",
            "--json",
        ],
        None,
    );
    assert!(!again.status.success());
    assert_eq!(
        json_of(&again)["error"],
        "an account with this email already exists"
    );
    let text = identity(
        dir.path(),
        &["admin", "user", "add", "--email", "ada@example.com"],
        None,
    );
    assert!(
        String::from_utf8_lossy(&text.stderr)
            .contains("error: an account with this email already exists")
    );
}

#[test]
fn password_is_read_from_stdin_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let out = identity(
        dir.path(),
        &[
            "admin",
            "user",
            "add",
            "--email",
            "p@example.com",
            "--password-stdin",
            "--json",
        ],
        Some("a long enough password\n"),
    );
    assert!(out.status.success());
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(!printed.contains("a long enough password") && !printed.contains("argon2"));
    assert_eq!(json_of(&out)["has_password"], true);
    let short = identity(
        dir.path(),
        &[
            "admin",
            "user",
            "add",
            "--email",
            "q@example.com",
            "--password-stdin",
        ],
        Some("short\n"),
    );
    assert!(!short.status.success());
}

#[test]
fn app_and_collaborators() {
    let dir = tempfile::tempdir().unwrap();
    for e in ["owner@example.com", "bob@example.com"] {
        assert!(
            identity(dir.path(), &["admin", "user", "add", "--email", e], None)
                .status
                .success()
        );
    }
    let app = json_of(&identity(
        dir.path(),
        &[
            "admin",
            "app",
            "add",
            "--name",
            "shop",
            "--owner",
            "owner@example.com",
            "--json",
        ],
        None,
    ));
    assert_eq!(app["name"], "shop");
    assert_eq!(app["owner"], "owner@example.com");
    let added = json_of(&identity(
        dir.path(),
        &[
            "admin",
            "app",
            "collaborator",
            "add",
            "shop",
            "bob@example.com",
            "--role",
            "member",
            "--json",
        ],
        None,
    ));
    let roles: Vec<_> = added["collaborators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["email"].clone(), c["role"].clone()))
        .collect();
    assert!(
        roles.contains(&("bob@example.com".into(), "member".into())),
        "{added}"
    );
    let removed = json_of(&identity(
        dir.path(),
        &[
            "admin",
            "app",
            "collaborator",
            "remove",
            "shop",
            "bob@example.com",
            "--json",
        ],
        None,
    ));
    assert_eq!(removed["collaborators"].as_array().unwrap().len(), 1);
    let bad = identity(
        dir.path(),
        &[
            "admin",
            "app",
            "collaborator",
            "add",
            "shop",
            "nobody@example.com",
            "--role",
            "member",
            "--json",
        ],
        None,
    );
    assert!(!bad.status.success());
    assert_eq!(json_of(&bad)["error"], "no account for nobody@example.com");
}

#[test]
fn tables_create_needs_the_dynamodb_store() {
    let dir = tempfile::tempdir().unwrap();
    let out = identity(dir.path(), &["admin", "tables", "create", "--json"], None);
    assert!(!out.status.success());
    assert!(
        json_of(&out)["error"]
            .as_str()
            .unwrap()
            .contains("dynamodb")
    );
}

/// `serve` answers 401 JSON without a session; `admin` writes while it runs; a restart keeps
/// what was written; a duplicate is still refused afterwards.
#[test]
fn serve_and_admin_share_a_durable_store() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = serve(dir.path(), port);
    let (status, body) = http_get(port, "/session").unwrap();
    assert_eq!(status, 401);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"],
        "no_session"
    );

    let out = identity(
        dir.path(),
        &[
            "admin",
            "user",
            "add",
            "--email",
            "live@example.com",
            "--json",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "admin writes while serve runs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = json_of(&out)["account_id"].clone();
    drop(server);

    let server = serve(dir.path(), port);
    let shown = json_of(&identity(
        dir.path(),
        &["admin", "user", "show", "live@example.com", "--json"],
        None,
    ));
    assert_eq!(shown["account_id"], id, "kept across the restart");
    let again = identity(
        dir.path(),
        &[
            "admin",
            "user",
            "add",
            "--email",
            "live@example.com",
            "--json",
        ],
        None,
    );
    assert!(!again.status.success());
    drop(server);
}

/// An IdP asserts only the domains it is given: `idp add` without `--domain` is refused
/// unless the operator says `--insecure-any-domain`, which `idp show` then prints. An
/// account made for a domain an IdP owns is registered for that IdP.
#[test]
fn idp_add_needs_its_domains_and_user_add_registers_for_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let signer = sso_acs::saml::idp_signer::IdpSigner::generate("cli test IdP").unwrap();
    let cert = dir.path().join("idp.pem");
    std::fs::write(&cert, signer.cert_pem()).unwrap();
    let cert = cert.display().to_string();
    let add = |id: &str, extra: &[&str]| {
        let mut args = vec![
            "admin",
            "idp",
            "add",
            "--id",
            id,
            "--entity-id",
            "https://idp.acme.example/e",
            "--sso-url",
            "https://idp.acme.example/sso",
            "--cert",
            &cert,
            "--json",
        ];
        args.extend_from_slice(extra);
        let out = identity(dir.path(), &args, None);
        (out.status.success(), json_of(&out))
    };
    let (ok, refused) = add("acme", &[]);
    assert!(!ok);
    assert!(
        refused["error"].as_str().unwrap().contains("--domain"),
        "{refused}"
    );
    let (ok, idp) = add(
        "acme",
        &["--insecure-any-domain", "--domain", "Acme.Example"],
    );
    assert!(ok, "{idp}");
    assert_eq!(idp["insecure_any_domain"], true);
    assert_eq!(idp["domains"], serde_json::json!(["acme.example"]));
    assert_eq!(idp["team"], serde_json::Value::Null, "no team unless named");
    assert_eq!(
        idp["slo_url"],
        serde_json::Value::Null,
        "no Single Logout unless given"
    );
    let shown = json_of(&identity(
        dir.path(),
        &["admin", "idp", "show", "acme", "--json"],
        None,
    ));
    assert_eq!(shown["insecure_any_domain"], true);

    let user = |email: &str| {
        json_of(&identity(
            dir.path(),
            &["admin", "user", "add", "--email", email, "--json"],
            None,
        ))
    };
    assert_eq!(user("ops@acme.example")["registered_idp"], "acme");
    assert_eq!(
        user("ops@elsewhere.example")["registered_idp"],
        serde_json::Value::Null
    );
}

/// `--slo-url` registers the IdP's Single Logout endpoint (http(s) only); without it, none.
#[test]
fn idp_add_takes_the_idps_single_logout_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let signer = sso_acs::saml::idp_signer::IdpSigner::generate("cli test IdP").unwrap();
    let cert = dir.path().join("idp.pem");
    std::fs::write(&cert, signer.cert_pem()).unwrap();
    let cert = cert.display().to_string();
    let add = |slo: &str| {
        let out = identity(
            dir.path(),
            &[
                "admin",
                "idp",
                "add",
                "--id",
                "globex",
                "--entity-id",
                "https://idp.globex.example/e",
                "--sso-url",
                "https://idp.globex.example/sso",
                "--slo-url",
                slo,
                "--cert",
                &cert,
                "--domain",
                "globex.example",
                "--json",
            ],
            None,
        );
        (out.status.success(), json_of(&out))
    };
    let (ok, refused) = add("javascript:alert(1)");
    assert!(!ok, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("--slo-url"),
        "{refused}"
    );
    let (ok, idp) = add("https://idp.globex.example/slo");
    assert!(ok, "{idp}");
    let shown = json_of(&identity(
        dir.path(),
        &["admin", "idp", "show", "globex", "--json"],
        None,
    ));
    assert_eq!(shown["slo_url"], "https://idp.globex.example/slo");
}

/// `identity serve` puts the development IdP (which signs in anyone) only on the embedded
/// store with embedded keys: pointed at DynamoDB or Secrets Manager it refuses to start
/// unless told `--no-dev-idp`.
#[test]
fn serve_refuses_the_dev_idp_outside_the_embedded_store() {
    for (store, secrets) in [
        ("dynamodb:", "embedded"),
        (
            "embedded:/nonexistent-identity-store",
            "secretsmanager:identity/",
        ),
    ] {
        let out = Command::new(BIN)
            .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port())])
            .env("IDENTITY_STORE", store)
            .env("IDENTITY_SECRETS", secrets)
            .env_remove("IDENTITY_BASE_URL")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{store} {secrets}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--no-dev-idp"), "{store} {secrets}: {err}");
    }
}

/// The development IdP signs in anyone and signs SAML for anyone who asks: `identity serve`
/// keeps it to loopback, and refuses to start with it on an address other machines reach.
#[test]
fn serve_refuses_the_dev_idp_on_a_non_loopback_address() {
    let dir = tempfile::tempdir().unwrap();
    for listen in ["0.0.0.0:0", "[::]:0", "192.0.2.1:0"] {
        let out = Command::new(BIN)
            .args(["serve", "--listen", listen])
            .env(
                "IDENTITY_STORE",
                format!("embedded:{}", dir.path().display()),
            )
            .env_remove("IDENTITY_BASE_URL")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{listen}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("loopback") && err.contains("--no-dev-idp"),
            "{listen}: {err}"
        );
    }
    assert!(
        !dir.path().join("identity.sqlite3").exists(),
        "refused before anything was made"
    );
}

#[test]
fn user_block_unblock_and_signout_as_an_operator_runs_them() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = identity(dir.path(), args, None);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        json_of(&out)
    };
    run(&[
        "admin",
        "user",
        "add",
        "--email",
        "leaver@example.com",
        "--json",
    ]);
    let blocked = run(&["admin", "user", "block", "leaver@example.com", "--json"]);
    assert_eq!(blocked["blocked"], true);
    let shown = run(&["admin", "user", "show", "leaver@example.com", "--json"]);
    assert_eq!(shown["blocked"], true, "the block is stored");
    let unblocked = run(&["admin", "user", "unblock", "leaver@example.com", "--json"]);
    assert_eq!(unblocked["blocked"], false);
    let out = identity(
        dir.path(),
        &["admin", "user", "signout", "leaver@example.com"],
        None,
    );
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("signed leaver@example.com out everywhere")
    );
    let missing = identity(
        dir.path(),
        &["admin", "user", "block", "nobody@example.com", "--json"],
        None,
    );
    assert!(!missing.status.success());
}

/// `identity admin keys rotate KIND` against Secrets Manager (moto): the key is rotated as
/// the rotation function does it, and a second rotation right after is refused.
#[tokio::test]
async fn keys_rotate_rotates_a_secrets_manager_key_and_refuses_to_drop_one_in_use() {
    let Some(endpoint) = std::env::var("IDENTITY_TEST_SECRETSMANAGER_ENDPOINT").ok() else {
        assert_eq!(
            std::env::var("IDENTITY_TEST_SKIP_SERVICES").as_deref(),
            Ok("1"),
            "moto is not running (tests/run.sh starts it)"
        );
        eprintln!("skipped: no moto");
        return;
    };
    let store = tempfile::tempdir().unwrap();
    let generated = identity(
        store.path(),
        &["admin", "keys", "generate", "signing"],
        None,
    );
    assert!(generated.status.success());
    let old: serde_json::Value = serde_json::from_slice(&generated.stdout).unwrap();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .load()
        .await;
    let client = aws_sdk_secretsmanager::Client::new(&config);
    let prefix = format!("cli{}/", std::process::id());
    client
        .create_secret()
        .name(format!("{prefix}signing"))
        .secret_string(old.to_string())
        .send()
        .await
        .unwrap();
    let rotate = || {
        Command::new(BIN)
            .args(["admin", "--json", "keys", "rotate", "signing"])
            .env("IDENTITY_SECRETS", format!("secretsmanager:{prefix}"))
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .env_remove("IDENTITY_BASE_URL")
            .output()
            .unwrap()
    };
    let first = rotate();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(json_of(&first)["rotated"], "signing");
    let doc: serde_json::Value = serde_json::from_str(
        client
            .get_secret_value()
            .secret_id(format!("{prefix}signing"))
            .version_stage("AWSCURRENT")
            .send()
            .await
            .unwrap()
            .secret_string()
            .unwrap(),
    )
    .unwrap();
    // (Compared without printing: these are private keys.)
    assert!(doc["previous"] == old["current"], "the old key is kept");
    assert!(doc["current"] != old["current"], "a new key is current");
    let second = rotate();
    assert!(
        !second.status.success(),
        "a second rotation right after the first: {}",
        String::from_utf8_lossy(&second.stdout)
    );
    // With --json, a failure is `{"error": …}` on stdout.
    let said = json_of(&second)["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(said.contains("try again later"), "{said}");
    assert!(!said.contains("PRIVATE KEY"), "{said}");
}

/// On DynamoDB a "log in as" link records the AWS identity the command ran as
/// (`sts:GetCallerIdentity`, here moto's), not only what `--by` says; when that identity
/// cannot be read, no link is made.
#[test]
fn a_log_in_as_link_on_dynamodb_records_the_aws_identity_and_none_is_made_without_it() {
    let (Ok(dynamodb), Ok(moto)) = (
        std::env::var("IDENTITY_TEST_DYNAMODB_ENDPOINT"),
        std::env::var("IDENTITY_TEST_SECRETSMANAGER_ENDPOINT"),
    ) else {
        assert_eq!(
            std::env::var("IDENTITY_TEST_SKIP_SERVICES").as_deref(),
            Ok("1"),
            "DynamoDB Local and moto are not running (tests/run.sh starts them)"
        );
        eprintln!("skipped: no services");
        return;
    };
    let prefix = format!("imp{}-", std::process::id());
    let admin = |args: &[&str], sts: &str| {
        Command::new(BIN)
            .args(["admin", "--json"])
            .args(args)
            .env("IDENTITY_STORE", "dynamodb:")
            .env("IDENTITY_TABLE_PREFIX", &prefix)
            .env("AWS_ENDPOINT_URL_DYNAMODB", &dynamodb)
            .env("AWS_ENDPOINT_URL_STS", sts)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("IDENTITY_BASE_URL")
            .output()
            .unwrap()
    };
    for args in [
        &["tables", "create"][..],
        &["user", "add", "--email", "pat@example.com"][..],
    ] {
        let out = admin(args, &moto);
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let impersonate = [
        "user",
        "impersonate",
        "pat@example.com",
        "--reason",
        "offboarding",
        "--by",
        "ops",
    ];
    let made = admin(&impersonate, &moto);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stdout)
    );
    let made = json_of(&made);
    assert!(
        made["operator"].as_str().unwrap().starts_with("arn:aws:"),
        "{made}"
    );
    assert_eq!(made["by"], "ops");
    let unknown = admin(&impersonate, "http://127.0.0.1:9");
    assert!(!unknown.status.success());
    assert!(
        json_of(&unknown)["error"]
            .as_str()
            .unwrap()
            .contains("sts:GetCallerIdentity"),
        "{}",
        String::from_utf8_lossy(&unknown.stdout)
    );
}
