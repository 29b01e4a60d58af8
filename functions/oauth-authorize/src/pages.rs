//! The pages of this function: consent, "activate your account", the account's
//! authorizations. Plain HTML through `page::html`, no scripts, no external assets.

use axum::response::Response;
use http::{StatusCode, header};
use identity_shared::api_keys::ApiKey;
use identity_shared::http::form;
use identity_shared::http::page::{self, esc, hidden};
use identity_shared::oauth::{Grant, OAuthClient, Scopes};

use crate::request::Valid;

fn scope_list(scopes: &Scopes) -> String {
    let items: String = scopes
        .iter()
        .map(|d| {
            format!(
                "<li><strong>{}</strong>: {}</li>",
                esc(d.name),
                esc(d.description)
            )
        })
        .collect();
    format!("<ul>{items}</ul>")
}

/// Where the client will send the person back: the origin of its redirect URI.
fn destination(redirect_uri: &str) -> String {
    form::origin_of(redirect_uri).unwrap_or_else(|| redirect_uri.to_string())
}

/// Asks the signed-in person whether the client may have the scopes.
pub fn consent(v: &Valid, email: &str, csrf: &str) -> Response {
    let name = esc(&v.client.name);
    let mut fields = String::new();
    for (k, val) in [
        ("response_type", "code"),
        ("client_id", v.client.client_id.as_str()),
        ("redirect_uri", v.redirect_uri.as_str()),
        ("scope", &v.scopes.to_string()),
        ("code_challenge", v.code_challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("csrf", csrf),
    ] {
        fields.push_str(&hidden(k, val));
    }
    if let Some(s) = &v.state {
        fields.push_str(&hidden("state", s));
    }
    let body = format!(
        "<p><strong>{name}</strong> wants to use your account <strong>{email}</strong>. \
If you allow it, it will be able to:</p>{scopes}\
<p class=\"muted\">You will be sent back to {dest}. You can revoke this access at any time on \
<a href=\"/account/authorizations\">your authorizations page</a>.</p>\
<form method=\"post\" action=\"/oauth/authorize\">{fields}\
<button type=\"submit\" name=\"decision\" value=\"allow\">Allow {name}</button> \
<button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>",
        email = esc(email),
        scopes = scope_list(&v.scopes),
        dest = esc(&destination(&v.redirect_uri)),
    );
    let mut r = page::html(
        StatusCode::OK,
        &format!("Authorize {}", v.client.name),
        &body,
    );
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
    let list = if grants.is_empty() {
        "<p>No application has access to your account.</p>".to_string()
    } else {
        let items: String = grants
            .iter()
            .map(|(g, client)| {
                let name = client
                    .as_ref()
                    .map(|c| c.name.clone())
                    .unwrap_or_else(|| g.client_id.to_string());
                format!(
                    "<li><h2>{name}</h2><p class=\"muted\">Authorized {since}</p>{scopes}\
<form method=\"post\" action=\"/account/authorizations/revoke\">{gid}{csrf}\
<button type=\"submit\">Revoke access for {name}</button></form></li>",
                    name = esc(&name),
                    since = esc(&identity_shared::clock::rfc3339(g.created_at)),
                    scopes = scope_list(&g.scopes()),
                    gid = hidden("grant_id", &g.gid),
                    csrf = hidden("csrf", csrf),
                )
            })
            .collect();
        format!("<ul>{items}</ul>")
    };
    let keys = if keys.is_empty() {
        "<p>You have no API keys. <code>identity authorizations create</code> makes one.</p>"
            .to_string()
    } else {
        let items: String = keys
            .iter()
            .map(|k| {
                let label = if k.description.is_empty() {
                    format!("API key {}", k.id)
                } else {
                    k.description.clone()
                };
                let expiry = k.expires_at.map_or("never expires".to_string(), |at| {
                    format!("expires {}", identity_shared::clock::rfc3339(at))
                });
                format!(
                    "<li><h3>{label}</h3><p class=\"muted\">Key {id}, made {since}, {expiry}. \
Full access to your account.</p>\
<form method=\"post\" action=\"/account/authorizations/revoke\">{kid}{csrf}\
<button type=\"submit\">Revoke API key {id}</button></form></li>",
                    label = esc(&label),
                    id = esc(&k.id),
                    since = esc(&identity_shared::clock::rfc3339(k.created_at)),
                    expiry = esc(&expiry),
                    kid = hidden("api_key_id", &k.id),
                    csrf = hidden("csrf", csrf),
                )
            })
            .collect();
        format!("<ul>{items}</ul>")
    };
    page::html(
        StatusCode::OK,
        "Authorized applications",
        &format!(
            "<p>Signed in as <strong>{}</strong>. These applications can use your account; \
revoking one ends its access at once: every token it holds stops working.</p>{list}\
<h2>API keys</h2><p>Long-lived keys for scripts and CI. They stop working when revoked, \
when they expire, and when your account moves to single sign-on.</p>{keys}\
<p><a href=\"/account/apps\">Your apps</a></p>\
<form method=\"post\" action=\"/logout\">{logout}<button type=\"submit\">Sign out</button></form>\
<form method=\"post\" action=\"/logout\">{logout}<input type=\"hidden\" name=\"everywhere\" value=\"1\">\
<p>Signed in on a device you no longer have? This ends every session of your account, here \
and everywhere else; applications and API keys keep their access until you revoke them above.</p>\
<button type=\"submit\">Sign out everywhere</button></form>",
            esc(email),
            logout = hidden("csrf", logout_csrf),
        ),
    )
}
