//! The pages of this function: consent, "activate your account", the account's
//! authorizations. Plain HTML through `page::html`, no scripts, no external assets.

use axum::response::Response;
use http::{StatusCode, header};
use identity_shared::api_keys::ApiKey;
use identity_shared::http::form;
use identity_shared::http::page::{self, hidden};
use identity_shared::oauth::{Grant, OAuthClient, Scopes};
use maud::{Markup, html};

use crate::request::Valid;

/// What the scopes let a client do, one item each.
pub(crate) fn scope_list(scopes: &Scopes) -> Markup {
    html! {
        ul {
            @for d in scopes.iter() {
                li { strong { (d.name) } ": " (d.description) }
            }
        }
    }
}

/// Where the client will send the person back: the origin of its redirect URI.
fn destination(redirect_uri: &str) -> String {
    form::origin_of(redirect_uri).unwrap_or_else(|| redirect_uri.to_string())
}

/// Asks the signed-in person whether the client may have the scopes.
pub fn consent(v: &Valid, email: &str, csrf: &str) -> Response {
    let name = &v.client.name;
    let scope = v.scopes.to_string();
    let fields = [
        ("response_type", "code"),
        ("client_id", v.client.client_id.as_str()),
        ("redirect_uri", v.redirect_uri.as_str()),
        ("scope", &scope),
        ("code_challenge", v.code_challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("csrf", csrf),
    ];
    let body = html! {
        p {
            strong { (name) } " wants to use your account " strong { (email) }
            ". If you allow it, it will be able to:"
        }
        (scope_list(&v.scopes))
        p class="muted" {
            "You will be sent back to " (destination(&v.redirect_uri)) ". You can revoke this \
            access at any time on " a href="/account/authorizations" { "your authorizations page" } "."
        }
        form method="post" action="/oauth/authorize" {
            @for (k, val) in fields { (hidden(k, val)) }
            @if let Some(s) = &v.state { (hidden("state", s)) }
            button type="submit" name="decision" value="allow" { "Allow " (name) }
            " "
            button type="submit" name="decision" value="deny" { "Deny" }
        }
    };
    let mut r = page::html(StatusCode::OK, &format!("Authorize {name}"), body);
    // The answer redirects to the client: browsers apply `form-action` to that hop too, so
    // the policy names the redirect URI's origin (and nothing else beyond ours).
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        form::csp_with_form_action(form::origin_of(&v.redirect_uri).as_deref()),
    );
    r
}

/// The signed-in person's grants and API keys, each with a revoke button.
pub fn authorizations(
    email: &str,
    grants: &[(Grant, Option<OAuthClient>)],
    keys: &[ApiKey],
    csrf: &str,
    logout_csrf: &str,
) -> Response {
    let body = html! {
        p {
            "Signed in as " strong { (email) } ". These applications can use your account; \
            revoking one ends its access at once: every token it holds stops working."
        }
        (grant_list(grants, csrf))
        h2 { "API keys" }
        p {
            "Long-lived keys for scripts and CI. They stop working when revoked, when they \
            expire, and when your account moves to single sign-on."
        }
        (key_list(keys, csrf))
        p { a href="/account/apps" { "Your apps" } }
        form method="post" action="/logout" {
            (hidden("csrf", logout_csrf))
            button type="submit" { "Sign out" }
        }
        form method="post" action="/logout" {
            (hidden("csrf", logout_csrf))
            (hidden("everywhere", "1"))
            p {
                "Signed in on a device you no longer have? This ends every session of your \
                account, here and everywhere else; applications and API keys keep their access \
                until you revoke them above."
            }
            button type="submit" { "Sign out everywhere" }
        }
    };
    page::html(StatusCode::OK, "Authorized applications", body)
}

/// The applications with a grant, each with its revoke button.
fn grant_list(grants: &[(Grant, Option<OAuthClient>)], csrf: &str) -> Markup {
    if grants.is_empty() {
        return html! { p { "No application has access to your account." } };
    }
    html! {
        ul {
            @for (g, client) in grants {
                @let name = client.as_ref().map_or(g.client_id.as_str(), |c| c.name.as_str());
                li {
                    h2 { (name) }
                    p class="muted" { "Authorized " (identity_shared::clock::rfc3339(g.created_at)) }
                    (scope_list(&g.scopes()))
                    form method="post" action="/account/authorizations/revoke" {
                        (hidden("grant_id", &g.gid))
                        (hidden("csrf", csrf))
                        button type="submit" { "Revoke access for " (name) }
                    }
                }
            }
        }
    }
}

/// The API keys, each with its revoke button.
fn key_list(keys: &[ApiKey], csrf: &str) -> Markup {
    if keys.is_empty() {
        return html! {
            p { "You have no API keys. " code { "identity authorizations create" } " makes one." }
        };
    }
    html! {
        ul {
            @for k in keys {
                @let expiry = k.expires_at.map_or("never expires".to_string(), |at| {
                    format!("expires {}", identity_shared::clock::rfc3339(at))
                });
                li {
                    h3 {
                        @if k.description.is_empty() { "API key " (k.id) } @else { (k.description) }
                    }
                    p class="muted" {
                        "Key " (k.id) ", made " (identity_shared::clock::rfc3339(k.created_at))
                        ", " (expiry) ". Full access to your account."
                    }
                    form method="post" action="/account/authorizations/revoke" {
                        (hidden("api_key_id", &k.id))
                        (hidden("csrf", csrf))
                        button type="submit" { "Revoke API key " (k.id) }
                    }
                }
            }
        }
    }
}
