//! Small pieces every page of this function uses: the return path, the same-origin check
//! for form posts, redirects that set a cookie, and signing a person in.

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use identity_shared::AppState;
use identity_shared::accounts::Account;
use identity_shared::apps::{Apps, Role};
use identity_shared::http::{Internal, PageError};
use identity_shared::idps::Idp;
use identity_shared::session::Sessions;

/// Where a person lands when nothing else was asked for.
pub const DEFAULT_RETURN: &str = "/account/authorizations";

/// A same-origin path to go to after sign-in: absolute path, not `//host` or `/\host`,
/// no control characters or backslashes. Anything else becomes the default.
pub fn return_to(raw: Option<&str>) -> String {
    match raw {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && p.len() <= 2048
                && !p.contains('\\')
                && !p.chars().any(|c| c.is_control()) =>
        {
            p.to_string()
        }
        _ => DEFAULT_RETURN.to_string(),
    }
}

/// A form post that a browser says came from another site is refused (login CSRF). The
/// `Origin` header must be ours when present; `Sec-Fetch-Site` must be same-origin (or
/// `none`: typed by the person) when present.
pub fn same_origin_post(state: &AppState, headers: &HeaderMap) -> Result<(), PageError> {
    let origin_ok = headers
        .get(header::ORIGIN)
        .map(|o| o.to_str().ok() == Some(state.config.origin().as_str()))
        .unwrap_or(true);
    let site_ok = headers
        .get("sec-fetch-site")
        .map(|s| matches!(s.to_str().ok(), Some("same-origin" | "none")))
        .unwrap_or(true);
    if origin_ok && site_ok {
        Ok(())
    } else {
        Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Request refused",
            "This form did not come from this site. Open the sign-in page and try again.",
        ))
    }
}

/// `303` to `location`, setting the given cookies.
pub fn see_other(location: &str, cookies: &[String]) -> Response {
    let mut response = (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location.to_string()),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
    )
        .into_response();
    for c in cookies {
        if let Ok(v) = c.parse() {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

/// Starts a session (SSO: `idp` set; 8 hours from now whatever the activity) and sends the
/// person on. `extra_cookies` are set alongside (e.g. clearing the upgrade cookie).
pub async fn sign_in(
    state: &AppState,
    account: &Account,
    idp: Option<&str>,
    return_to: &str,
    extra_cookies: Vec<String>,
) -> Response {
    let started = state
        .store
        .start_session(account, idp, state.config.session_lifetime_secs)
        .await;
    let (id, session) = match started {
        Ok(s) => s,
        Err(e) => return Internal::new("start session", e).page().into_response(),
    };
    let cookie = match state.session_cookie(&id, &session).await {
        Ok(c) => c,
        Err(e) => return e.page().into_response(),
    };
    let mut cookies = vec![cookie];
    cookies.extend(extra_cookies);
    see_other(return_to, &cookies)
}

/// The IdP's team role on SSO login: a person with no role on the team, or only
/// `collaborator`, gets the IdP's default role; anyone holding a role keeps it.
pub async fn apply_team_role(
    state: &AppState,
    idp: &Idp,
    account: &Account,
) -> Result<(), Internal> {
    let store = &state.store;
    let Some(team) = store
        .app_by_name(&idp.team)
        .await
        .map_err(Internal::from_display("team read"))?
    else {
        tracing::info!(idp = %idp.id, "the IdP's team does not exist; no team role given");
        return Ok(());
    };
    let role = store
        .role_of(&team.id, &account.id)
        .await
        .map_err(Internal::from_display("role read"))?;
    if matches!(role, None | Some(Role::Collaborator)) && role != Some(idp.default_role) {
        store
            .set_role(&team, account, idp.default_role)
            .await
            .map_err(Internal::from_display("role write"))?;
    }
    Ok(())
}

/// A form body as fields; a repeated field or an unreadable body is refused.
pub fn form_fields(body: &[u8]) -> Result<std::collections::HashMap<String, String>, PageError> {
    let bad = || {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The form could not be read. Go back and try again.",
        )
    };
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|_| bad())?;
    let mut out = std::collections::HashMap::new();
    for (k, v) in pairs {
        if out.insert(k, v).is_some() {
            return Err(bad());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_keeps_same_origin_paths_only() {
        assert_eq!(
            return_to(Some("/oauth/authorize?x=1")),
            "/oauth/authorize?x=1"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "evil",
            "/a\nb",
            "",
        ] {
            assert_eq!(return_to(Some(bad)), DEFAULT_RETURN, "{bad:?}");
        }
        assert_eq!(return_to(None), DEFAULT_RETURN);
    }
}
