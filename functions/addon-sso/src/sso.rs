//! `GET /addons/{addon_id}/sso`: the platform side of add-on SSO.
//!
//! Signed in → pending accounts get the "activate your account" page → the add-on and the
//! person's role on its app are read from the store now (never a cached membership) → a
//! role: a page that POSTs the SSO form to the add-on's `sso_url` (automatically, with a
//! visible button for browsers without JavaScript); no role: 403.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::{HeaderValue, StatusCode, header};
use identity_core::addon;
use identity_shared::AppState;
use identity_shared::accounts::AccountStatus;
use identity_shared::addon_sso::{self, SsoClaims, SsoForm};
use identity_shared::addons::{Addon, Addons, SsoAccess};
use identity_shared::apps::App;
use identity_shared::http::impersonation::refuse_if_impersonating;
use identity_shared::http::page;
use identity_shared::http::{Internal, PageError, SignedIn};
use maud::{PreEscaped, html};

/// The page's one script, allowed by its hash ([`SCRIPT_HASH`]) and nothing else.
pub const SCRIPT: &str = r#"document.getElementById("sso").submit();"#;
/// CSP source for [`SCRIPT`]: base64 SHA-256 of its exact text (checked by a test).
pub const SCRIPT_HASH: &str = "'sha256-hWNdHwJiVc2aqScYGfagJytEQYT4twbRJlLwaFLGb1Q='";

/// The page's own policy: the default one's `form-action 'self'` would stop the POST to the
/// add-on, so it allows exactly the add-on's origin, runs only [`SCRIPT`], and is never
/// framed.
pub fn csp(sso_origin: &str) -> String {
    format!(
        "default-src 'none'; script-src {SCRIPT_HASH}; style-src 'unsafe-inline'; \
form-action {sso_origin}; frame-ancestors 'none'; base-uri 'none'"
    )
}

fn no_such_addon() -> Response {
    PageError::new(
        StatusCode::NOT_FOUND,
        "No such add-on",
        "There is no add-on at this address.",
    )
    .into_response()
}

fn no_access() -> Response {
    PageError::new(
        StatusCode::FORBIDDEN,
        "No access to this add-on",
        "An add-on belongs to its app: only the app's owner, admins, members and collaborators \
can open it. You hold no role on this add-on's app; ask the app's owner to add you.",
    )
    .into_response()
}

/// `nav-data`: opaque display data for the partner's dashboard header (base64url JSON).
pub fn nav_data(addon: &Addon, app: &App) -> String {
    let doc = serde_json::json!({
        "addon": addon.name,
        "addon_id": addon.id,
        "app": app.name,
        "app_id": app.id,
    });
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(doc.to_string())
}

/// The auto-POST page for a form.
pub fn form_page(addon: &Addon, app: &App, form: &SsoForm, sso_origin: &str) -> Response {
    let body = html! {
        p {
            "Signing you in to " strong { (addon.name) } " (app " strong { (app.name) } ") as "
            strong { (form.claims.email) } "."
        }
        form id="sso" method="post" action=(addon.sso_url) {
            @for (k, v) in form.fields() { (page::hidden(k, &v)) }
            button type="submit" { "Continue to " (addon.name) }
        }
        p class="muted" {
            "You are being sent to " (sso_origin) ". If nothing happens, press the button."
        }
        script { (PreEscaped(SCRIPT)) }
    };
    let mut r = page::html(StatusCode::OK, &format!("Opening {}", addon.name), body);
    let h = r.headers_mut();
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    // The form goes to another site: it learns nothing of where the person came from.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    match HeaderValue::from_str(&csp(sso_origin)) {
        Ok(v) => {
            h.insert(header::CONTENT_SECURITY_POLICY, v);
        }
        Err(_) => {
            return Internal::new("sso page", "add-on origin is not a header value")
                .page()
                .into_response();
        }
    }
    r
}

/// `GET /addons/{addon_id}/sso`.
pub async fn sso(
    State(state): State<AppState>,
    Path(addon_id): Path<String>,
    user: SignedIn,
) -> Response {
    // Signing a partner in as someone is handing out a credential: not from a "log in as"
    // session.
    if let Err(refused) = refuse_if_impersonating(&user, "Signing in to an add-on") {
        return refused.into_response();
    }
    if !crate::plain_id(&addon_id) {
        return no_such_addon();
    }
    let access = match state.store.sso_access(&addon_id, &user.account.id).await {
        Ok(a) => a,
        Err(e) => {
            return Internal::new("add-on access read", e)
                .page()
                .into_response();
        }
    };
    let (found, role) = match &access {
        SsoAccess::Granted { addon, app, role } => (Some((addon, app)), Some(Some(*role))),
        SsoAccess::NoRole { addon, app } => (Some((addon, app)), Some(None)),
        SsoAccess::NoSuchAddon => (None, None),
    };
    let claims = found.map(|(addon, app)| SsoClaims {
        resource_id: addon.resource_id.clone(),
        timestamp: state.now(),
        user_id: user.account.id.to_string(),
        email: user.account.email.clone(),
        app: app.name.clone(),
        context_app: app.name.clone(),
        nav_data: nav_data(addon, app),
    });
    let facts = addon::Facts {
        pending: user.account.status == AccountStatus::Pending,
        role,
        // Fields the token formula could re-split (an email holding ':') get no form.
        sendable: claims
            .as_ref()
            .is_some_and(|c| addon_sso::check_fields(c).is_ok()),
    };
    let role = match addon::access(facts) {
        Ok(role) => role,
        Err(addon::Refusal::Activate) => return page::activate_account(&user.account.email),
        Err(addon::Refusal::NoSuchAddon) => return no_such_addon(),
        Err(addon::Refusal::NoRole) => {
            tracing::info!(addon_id = %addon_id, "add-on SSO refused: no role on the app");
            return no_access();
        }
        Err(addon::Refusal::NotSendable) => {
            tracing::warn!(addon_id = %addon_id, "add-on SSO refused: the account's email cannot be sent safely");
            return PageError::new(
                StatusCode::FORBIDDEN,
                "No access to this add-on",
                "Your account's email address cannot be sent to add-ons. Ask an administrator to change it.",
            )
            .into_response();
        }
    };
    let (Some((addon, app)), Some(claims)) = (found, claims) else {
        return no_such_addon();
    };
    let Some(origin) = addon.sso_origin() else {
        return Internal::new("add-on record", "stored sso_url does not validate")
            .page()
            .into_response();
    };
    let form = SsoForm::issue(claims, &addon.sso_salt());
    tracing::info!(addon_id = %addon.id, app_id = %app.id, role = role.as_str(), "add-on SSO form issued");
    form_page(addon, app, &form, &origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_hash_is_the_hash_of_the_script() {
        let digest = hex::decode(identity_shared::crypto::sha256_hex(SCRIPT.as_bytes())).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(digest);
        assert_eq!(SCRIPT_HASH, format!("'sha256-{b64}'"));
    }

    #[test]
    fn csp_allows_exactly_the_addon_origin_and_no_framing() {
        let p = csp("https://partner.example.com");
        assert!(p.contains("form-action https://partner.example.com;"));
        assert!(p.contains("frame-ancestors 'none'"));
        assert!(!p.contains("'self'"));
        assert!(!p.contains("script-src 'unsafe-inline'"));
    }
}
