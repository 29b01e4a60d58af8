//! template.yaml's HTTP API: its routes are exactly CONTRACT.md's plus the documented extras
//! (CHANGELOG.md), each on the function CONTRACT.md names; every function is built
//! from its own crate; every function's configuration and permissions are what its code needs.

use std::collections::BTreeSet;
use std::path::Path;

use identity_tests::template::{self, Function, Route};

/// CONTRACT.md's route table: (function crate, method, path).
const CONTRACT: &[(&str, &str, &str)] = &[
    ("sso-acs", "GET", "/login"),
    ("sso-acs", "GET", "/sso/login"),
    ("sso-acs", "POST", "/sso/acs"),
    ("sso-acs", "GET", "/sso/metadata"),
    ("sso-acs", "GET", "/session"),
    ("sso-acs", "POST", "/logout"),
    ("oauth-authorize", "GET", "/oauth/authorize"),
    ("oauth-authorize", "POST", "/oauth/authorize"),
    ("oauth-token", "POST", "/oauth/token"),
    ("oauth-token", "POST", "/oauth/revoke"),
    ("oauth-token", "POST", "/oauth/introspect"),
    ("oauth-token", "GET", "/oauth/userinfo"),
    (
        "oauth-token",
        "GET",
        "/.well-known/oauth-authorization-server",
    ),
    ("oauth-token", "GET", "/.well-known/jwks.json"),
    ("oauth-token", "POST", "/oauth/device/authorize"),
    ("oauth-authorize", "GET", "/device"),
    ("oauth-authorize", "POST", "/device"),
    ("sso-acs", "POST", "/login"),
    ("sso-acs", "GET", "/account/password/reset"),
    ("sso-acs", "POST", "/account/password/reset"),
    ("sso-acs", "GET", "/account/password/reset/{token}"),
    ("sso-acs", "POST", "/account/password/reset/{token}"),
    ("addon-sso", "GET", "/addons/{addon_id}/sso"),
    ("addon-sso", "GET", "/partner/apps/{app_id}/collaborators"),
    ("jwt-grant", "POST", "/oauth/jwt/token"),
    ("jwt-grant", "POST", "/apps/{app}/authorizations"),
    ("oauth-token", "GET", "/teams/{team}/members"),
];

/// Routes beyond CONTRACT.md, each named in CHANGELOG.md.
const EXTRAS: &[(&str, &str, &str)] = &[
    ("oauth-authorize", "GET", "/account/authorizations"),
    ("oauth-authorize", "POST", "/account/authorizations/revoke"),
    ("oauth-authorize", "GET", "/account/apps"),
    ("oauth-authorize", "POST", "/apps/{app}/transfer"),
    ("jwt-grant", "GET", "/apps/{app}/authorizations/{name}"),
    ("jwt-grant", "GET", "/apps/{app}/authorizations"),
    ("jwt-grant", "DELETE", "/apps/{app}/authorizations/{name}"),
    ("oauth-token", "GET", "/oauth/authorizations"),
    ("oauth-token", "POST", "/oauth/authorizations"),
    ("oauth-token", "DELETE", "/oauth/authorizations/{id}"),
    ("oauth-token", "PUT", "/teams/{team}/sso"),
    ("oauth-token", "POST", "/teams/{team}/members/{email}/block"),
    (
        "oauth-token",
        "POST",
        "/teams/{team}/members/{email}/unblock",
    ),
    ("oauth-token", "GET", "/enterprises/{enterprise}/members"),
    (
        "oauth-token",
        "POST",
        "/enterprises/{enterprise}/members/{email}/block",
    ),
    (
        "oauth-token",
        "POST",
        "/enterprises/{enterprise}/members/{email}/unblock",
    ),
    ("sso-acs", "GET", "/sso/upgrade"),
    ("sso-acs", "POST", "/sso/upgrade"),
    ("sso-acs", "POST", "/sso/continue"),
    ("sso-acs", "GET", "/account/welcome/{token}"),
    ("sso-acs", "POST", "/account/welcome/{token}"),
    ("sso-acs", "GET", "/sso/link/{token}"),
    ("sso-acs", "GET", "/account/impersonate/{token}"),
    ("sso-acs", "POST", "/account/impersonate/{token}"),
    ("sso-acs", "POST", "/sso/link/{token}"),
    ("sso-acs", "GET", "/sso/slo"),
    ("sso-acs", "POST", "/sso/slo"),
];

/// The five HTTP functions and the key rotation function.
const FUNCTIONS: [&str; 6] = [
    "sso-acs",
    "oauth-authorize",
    "oauth-token",
    "addon-sso",
    "jwt-grant",
    "key-rotation",
];

fn functions() -> Vec<Function> {
    template::functions(&template::read())
}

fn crate_of(functions: &[Function], logical_id: &str) -> String {
    functions
        .iter()
        .find(|f| f.logical_id == logical_id)
        .map(|f| f.binary.clone())
        .unwrap()
}

#[test]
fn routes_are_contracts_plus_the_documented_extras_on_the_right_functions() {
    let functions = functions();
    let have: BTreeSet<(String, String, String)> = template::routes(&template::read())
        .into_iter()
        .map(|r: Route| (crate_of(&functions, &r.function), r.method, r.path))
        .collect();
    let want: BTreeSet<(String, String, String)> = CONTRACT
        .iter()
        .chain(EXTRAS)
        .map(|(f, m, p)| (f.to_string(), m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        want.len(),
        CONTRACT.len() + EXTRAS.len(),
        "no route listed twice"
    );
    let missing: Vec<_> = want.difference(&have).collect();
    let unexpected: Vec<_> = have.difference(&want).collect();
    assert!(
        missing.is_empty() && unexpected.is_empty(),
        "missing from template.yaml: {missing:?}; not in CONTRACT.md or the extras: {unexpected:?}"
    );
}

#[test]
fn the_extras_are_named_in_the_changelog() {
    let changelog = std::fs::read_to_string(template::workspace().join("CHANGELOG.md")).unwrap();
    for (_, method, path) in EXTRAS {
        assert!(
            changelog.contains(&format!("`{method} {path}`")),
            "the changelog does not name `{method} {path}`"
        );
    }
}

#[test]
fn one_function_per_crate_built_by_build_lambda_sh_on_provided_al2023() {
    let template = template::read();
    let functions = functions();
    let crates: BTreeSet<&str> = functions.iter().map(|f| f.binary.as_str()).collect();
    assert_eq!(crates, FUNCTIONS.into_iter().collect::<BTreeSet<_>>());
    assert_eq!(functions.len(), FUNCTIONS.len());
    for f in &functions {
        // Each from its own crate folder, so cargo resolves that crate's features alone.
        assert!(f.code_uri.starts_with("functions/"), "{}", f.code_uri);
        let manifest = template::workspace().join(&f.code_uri).join("Cargo.toml");
        let manifest = std::fs::read_to_string(&manifest).unwrap();
        assert!(manifest.contains(&format!("name = \"{}\"", f.binary)));
        // Built by scripts/build-lambda.sh, through the folder's Makefile: the shared one,
        // which takes the package from the folder's name.
        let makefile = template::workspace().join(&f.code_uri).join("Makefile");
        assert_eq!(
            std::fs::read_link(&makefile).unwrap_or_else(|e| panic!("{}: {e}", makefile.display())),
            Path::new("../../scripts/lambda.mk"),
        );
        let block = template::block(&template, &f.logical_id);
        assert!(block.contains("BuildMethod: makefile"), "{block}");
        assert!(block.contains("LoggingConfig:"), "{block}");
    }
    let globals =
        &template[template.find("Globals:").unwrap()..template.find("Resources:").unwrap()];
    for line in [
        "Runtime: provided.al2023",
        "Handler: bootstrap",
        "IDENTITY_STORE: \"dynamodb:\"",
        "IDENTITY_BASE_URL: !Ref BaseUrl",
        "IDENTITY_TABLE_PREFIX: !Ref TablePrefix",
        "IDENTITY_SECRETS: !Sub \"secretsmanager:${SecretsPrefix}\"",
    ] {
        assert!(globals.contains(line), "Globals lack {line}");
    }
}

/// Each function may read only its own secrets, with GetSecretValue only.
#[test]
fn each_function_gets_only_its_own_secrets() {
    let template = template::read();
    let want: &[(&str, &[&str])] = &[
        ("SsoAcsFunction", &["CookieSecret", "SamlSpSecret"]),
        ("OAuthAuthorizeFunction", &["CookieSecret"]),
        ("OAuthTokenFunction", &["SigningSecret"]),
        ("AddonSsoFunction", &["CookieSecret"]),
        ("JwtGrantFunction", &["SigningSecret"]),
    ];
    for (id, secrets) in want {
        let block = template::block(&template, id);
        let have: BTreeSet<&str> = ["CookieSecret", "SigningSecret", "SamlSpSecret"]
            .into_iter()
            .filter(|s| block.contains(&format!("SecretArn: !Ref {s}}}")))
            .collect();
        assert_eq!(have, secrets.iter().copied().collect(), "{id}");
        assert_eq!(
            block
                .matches("AWSSecretsManagerGetSecretValuePolicy")
                .count(),
            secrets.len(),
            "{id}"
        );
        assert!(
            !block.contains("secretsmanager:"),
            "{id}: no other secret action"
        );
        // No wildcard grants, no policy template broader than the actions listed.
        assert!(
            !block.contains("dynamodb:*") && !block.contains("Resource: \"*\""),
            "{id}"
        );
        assert!(
            !block.contains("DynamoDBCrudPolicy") && !block.contains("DynamoDBReadPolicy"),
            "{id}"
        );
    }
}
