//! `worst DIR`: the worst case per unauthenticated request. The costliest inputs the tests
//! know, each sent through its function's own router in-process as API Gateway hands it on
//! (the body limits, form parsing, the XML guard, then whatever check comes next), each
//! shown refused first, then timed as a median. Beside them, the real ACS validation of the
//! fixture (`acs.ours`'s measure, taken again in this process) for the budget: no input may
//! cost more than 20 times it.
//!
//! Throttling is off for the run (limits of 0), so every request does its full work instead
//! of a cheap 429 once its address is locked.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::body::Body;
use base64::Engine;
use http::Request;
use identity_shared::AppState;
use identity_shared::config::{Config, Limit, SecretsSpec, StoreSpec};
use identity_shared::idps::Idps;
use sso_acs::saml::{self, Sp};
use tower::ServiceExt;

use crate::{R, REQUEST_ID, SP_BASE, bench_idp, median_us, read, row};

/// One costly input: its row key, the route, and the body (a form).
struct Input {
    key: &'static str,
    path: &'static str,
    body: String,
}

fn form(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).expect("a form")
}

fn saml_post(field: &str, xml: &str) -> String {
    form(&[(
        field,
        &base64::engine::general_purpose::STANDARD.encode(xml),
    )])
}

/// The most XML the ACS reads (sso-acs's `MAX_XML_BYTES`), less room for the element.
const ROOM: usize = 256 * 1024 - 128;

/// A `Response` start tag with as many distinct empty attributes as fit in [`ROOM`]: what
/// cost 2.7 s before the guard (roxmltree compares each new attribute with every earlier
/// one).
fn attribute_flood() -> String {
    let mut attrs = String::new();
    for i in 0.. {
        let next = format!(" a{i}=\"\"");
        if attrs.len() + next.len() > ROOM {
            break;
        }
        attrs.push_str(&next);
    }
    format!("<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\"{attrs}/>")
}

/// As many namespace declarations on one element as fit in [`ROOM`].
fn namespace_flood() -> String {
    let mut decls = String::new();
    for i in 0.. {
        let next = format!(" xmlns:p{i}=\"urn:x:{i}\"");
        if decls.len() + next.len() > ROOM {
            break;
        }
        decls.push_str(&next);
    }
    format!("<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\"{decls}/>")
}

/// `n` nested elements.
fn deep_nesting(n: usize) -> String {
    format!(
        "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\">{}{}</samlp:Response>",
        "<a>".repeat(n),
        "</a>".repeat(n)
    )
}

/// The real fixture with its Assertion padded to the largest document the ACS reads: the
/// signature's digest runs over all of it before it fails.
fn largest_signed(real: &str) -> String {
    // The ACS reads at most 256 KB of XML (sso-acs's MAX_XML_BYTES).
    let pad = "x".repeat(256 * 1024 - real.len() - 64);
    real.replacen(
        "</saml2:Issuer>",
        &format!("</saml2:Issuer><!--{pad}-->"),
        1,
    )
}

fn inputs(real_xml: &str) -> Vec<Input> {
    let max_jwt = {
        // A JWT as large as the token endpoint reads (32 KB of form), of three parts.
        let part = "A".repeat(10_600);
        format!("{part}.{part}.{part}")
    };
    let many_fields: String = {
        // As many distinct fields as the body limit allows.
        let fields: Vec<String> = (0..40_000).map(|i| format!("f{i}=v")).collect();
        fields.join("&")
    };
    vec![
        Input {
            key: "worst.acs.attribute_flood",
            path: "/sso/acs",
            body: saml_post("SAMLResponse", &attribute_flood()),
        },
        Input {
            key: "worst.acs.namespace_flood",
            path: "/sso/acs",
            body: saml_post("SAMLResponse", &namespace_flood()),
        },
        Input {
            key: "worst.acs.deep_nesting",
            path: "/sso/acs",
            body: saml_post("SAMLResponse", &deep_nesting(30_000)),
        },
        Input {
            key: "worst.acs.largest_signed",
            path: "/sso/acs",
            body: saml_post("SAMLResponse", &largest_signed(real_xml)),
        },
        Input {
            key: "worst.slo.attribute_flood",
            path: "/sso/slo",
            body: saml_post("SAMLRequest", &attribute_flood()),
        },
        Input {
            key: "worst.login.many_fields",
            path: "/login",
            body: many_fields,
        },
        Input {
            key: "worst.jwt.largest_assertion",
            path: "/oauth/jwt/token",
            body: form(&[
                ("grant_type", jwt_grant::grant::JWT_BEARER),
                ("assertion", &max_jwt),
            ]),
        },
    ]
}

pub fn run(dir: &Path) -> R {
    let saml_dir = dir.join("saml");
    let fixture: serde_json::Value = serde_json::from_str(&read(&saml_dir, "config.json")?)?;
    let posted = read(&saml_dir, "response.b64")?;
    let real_xml = saml::decode_post(&posted).map_err(|r| format!("the fixture: {r}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let store_dir = tempfile::tempdir()?;
    let state = rt.block_on(async {
        let mut config = Config::new(
            SP_BASE.into(),
            StoreSpec::Embedded(PathBuf::from(store_dir.path())),
            SecretsSpec::Embedded,
        )?;
        let off = Limit {
            subject: 0,
            address: 0,
            total: 0,
        };
        for limit in [
            &mut config.limits.password,
            &mut config.limits.jwt,
            &mut config.limits.reset,
            &mut config.limits.device,
        ] {
            *limit = off;
        }
        let state = AppState::build(config, identity_shared::clock::system()).await?;
        state.store.add_idp(&bench_idp(&fixture)).await?;
        Ok::<_, Box<dyn std::error::Error>>(state)
    })?;
    let sso = sso_acs::app(state.clone());
    let jwt = jwt_grant::app(state.clone());
    let router_for = |path: &str| -> &Router {
        if path.starts_with("/oauth/jwt") {
            &jwt
        } else {
            &sso
        }
    };

    // The real validation, as `acs.ours` measures it.
    let idp = bench_idp(&fixture);
    let sp = Sp::from_base_url(SP_BASE);
    let at = fixture["issued_at"].as_i64().ok_or("issued_at")? + 5;
    saml::validate(&real_xml, &idp, &sp, Some(REQUEST_ID), at)
        .map_err(|r| format!("the fixture is refused: {r}"))?;
    let baseline = median_us(2000, || {
        std::hint::black_box(
            saml::decode_post(std::hint::black_box(&posted))
                .and_then(|xml| saml::validate(&xml, &idp, &sp, Some(REQUEST_ID), at))
                .ok(),
        );
    });
    row("worst.baseline", baseline, "us");

    let mut worst = 0f64;
    for input in inputs(&real_xml) {
        let send = || {
            let request = Request::post(input.path)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("accept", "text/html")
                .body(Body::from(input.body.clone()))
                .expect("a request");
            rt.block_on(router_for(input.path).clone().oneshot(request))
                .expect("an answer")
        };
        let status = send().status();
        if !status.is_client_error() {
            return Err(format!("{}: not refused ({status})", input.key).into());
        }
        let value = median_us(50, || {
            std::hint::black_box(send());
        });
        row(input.key, value, "us");
        worst = worst.max(value);
    }
    row("worst.ours", worst, "us");
    Ok(())
}
