//! `GET/POST /device`: the device flow's verification page (RFC 8628 §3.3). The person
//! signs in, types the user code (or finds it filled in by the link the device shows, except
//! for a request for the whole account, `global`, whose code must be typed) and continues,
//! sees which application asks for what, when and from which address, and approves or
//! denies. Both posts are
//! CSRF-protected and bound to the session; only the first looks a code up, so only a
//! person on our own page can spend their lookup budget.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode, Uri};
use identity_shared::AppState;
use identity_shared::accounts::AccountStatus;
use identity_shared::http::impersonation::refuse_if_impersonating;
use identity_shared::http::page::{self, hidden};
use identity_shared::http::{
    Answer, Internal, PageError, SignedIn, SourceAddress, fields, form, page_throttle_check,
    page_throttle_count,
};
use identity_shared::oauth::device::{DeviceRequests, DeviceState, normalize_user_code};
use identity_shared::oauth::{Grants, OAuthClients, Scopes};
use identity_shared::throttle::{Action, Attempt};
use maud::html;

use crate::request::parse_pairs;
use crate::{csrf_ok, refused_form, session_ended};

/// The CSRF token of the device form: bound to the session and to the user code.
pub fn device_csrf(session: &identity_shared::session::SessionId, user_code: &str) -> String {
    session.derive(&format!("device {user_code}"))
}

/// The CSRF token of the code form: bound to the session.
fn lookup_csrf(session: &identity_shared::session::SessionId) -> String {
    session.derive("device code lookup")
}

/// The form to type the code in, `code` filled in (from the link a device shows; `linked`
/// then marks it so). It is sent by POST, so only a page of ours can make a code be looked
/// up and counted.
fn enter_code_page(
    session: &identity_shared::session::SessionId,
    code: &str,
    error: Option<&str>,
) -> Response {
    code_form(session, code, error, StatusCode::BAD_REQUEST)
}

fn code_form(
    session: &identity_shared::session::SessionId,
    code: &str,
    error: Option<&str>,
    error_status: StatusCode,
) -> Response {
    let status = match error {
        Some(_) => error_status,
        None => StatusCode::OK,
    };
    let body = html! {
        form method="post" action="/device" {
            (hidden("csrf", &lookup_csrf(session)))
            @if !code.is_empty() { (hidden("linked", "1")) }
            label for="user_code" { "The code your device shows" }
            input type="text" id="user_code" name="user_code" autocomplete="off"
                autocapitalize="characters" required value=(code);
            button type="submit" { "Continue" }
        }
    };
    page::form_page("Connect a device", error, status, body)
}

/// `GET /device[?user_code=…]`: the code form, filled in with the link's code. Nothing is
/// looked up or counted here: a link another site opens costs the person nothing.
pub async fn show(uri: Uri, user: SignedIn) -> Result<Response, Answer> {
    if user.account.status == AccountStatus::Pending {
        return Ok(page::activate_account(&user.account.email));
    }
    let pairs = parse_pairs(uri.query().unwrap_or("").as_bytes())?;
    let code = fields::value(&pairs, "user_code").unwrap_or("");
    // Only what a code can hold is echoed back.
    let code: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(16)
        .collect();
    Ok(enter_code_page(&user.id, &code, None))
}

/// `POST /device` with a `user_code` and no `decision`: the code typed (or confirmed) on our
/// own form (same-origin, with its session-bound token) is looked up. Codes that match no
/// pending request count against the account's and the address's limits
/// ([`Action::DeviceCode`]); while locked, no code is looked up.
async fn look_up(
    state: &AppState,
    address: Option<std::net::IpAddr>,
    headers: &HeaderMap,
    pairs: &[(String, String)],
) -> Result<Response, Answer> {
    let user = state.signed_in(headers).await?.ok_or_else(session_ended)?;
    let token_ok = csrf_ok(fields::value(pairs, "csrf"), &lookup_csrf(&user.id));
    if let Err(refused) = form::check_session_post(headers, &state.config.origin(), token_ok) {
        tracing::warn!("device code lookup refused: another site, or no valid CSRF token");
        return Err(refused.into());
    }
    if user.account.status == AccountStatus::Pending {
        return Ok(page::activate_account(&user.account.email));
    }
    let typed = fields::value(pairs, "user_code").unwrap_or("");
    let who = Attempt {
        subject: Some(&user.account.id),
        address,
        device: None,
    };
    page_throttle_check(state, Action::DeviceCode, &who).await?;
    let request = state
        .store
        .device_request_by_user_code(typed)
        .await
        .map_err(Internal::from_display("device read"))?;
    let Some(request) = request.filter(|r| r.state == DeviceState::Pending) else {
        page_throttle_count(state, Action::DeviceCode, &who).await?;
        return Ok(enter_code_page(
            &user.id,
            "",
            Some("That code is not valid or has expired. Check the code on your device."),
        ));
    };
    let Some(client) = state
        .store
        .client(&request.client_id)
        .await
        .map_err(Internal::from_display("client read"))?
    else {
        return Ok(enter_code_page(
            &user.id,
            "",
            Some("That code is not valid or has expired."),
        ));
    };
    if fields::value(pairs, "linked") == Some("1") && request.needs_typed_code() {
        // A link filled this code in, and the request would act as the whole account: the
        // person types it from their device, so a code mailed by someone else does not pass.
        tracing::info!(client_id = %request.client_id, "device code from a link refused for a global request");
        return Ok(code_form(
            &user.id,
            "",
            Some(
                "This device asks for full access to your account. Type the code your device \
shows yourself: for full access a link cannot fill it in.",
            ),
            StatusCode::OK,
        ));
    }
    let now = state.now();
    Ok(approval_page(
        &user.id,
        &user.account.email,
        &client.name,
        &request,
        now,
    ))
}

/// Asks the signed-in person whether the device's request may have their account: what it
/// asks for, and when and where it started.
fn approval_page(
    session: &identity_shared::session::SessionId,
    email: &str,
    client_name: &str,
    request: &identity_shared::oauth::device::DeviceRequest,
    now: i64,
) -> Response {
    let scopes = Scopes::parse(&request.scope).unwrap_or_default();
    let code = &request.user_code;
    let body = html! {
        p {
            "A device running " strong { (client_name) } " asks to use your account "
            strong { (email) } ". Make sure your device shows this code: " strong { (code) } "."
        }
        p { "The request was started " (started_text(request, now)) ". If you did not start it, deny it." }
        p { "If you approve, it will be able to:" }
        (crate::pages::scope_list(&scopes))
        form method="post" action="/device" {
            (hidden("user_code", code))
            (hidden("csrf", &device_csrf(session, code)))
            button type="submit" name="decision" value="allow" { "Approve" }
            " "
            button type="submit" name="decision" value="deny" { "Deny" }
        }
    };
    page::html(StatusCode::OK, &format!("Connect {client_name}"), body)
}

/// When and where a device request started, as the approval page says it: "2 minutes ago
/// (2026-12-07T14:03:00Z) from 203.0.113.7".
fn started_text(request: &identity_shared::oauth::device::DeviceRequest, now: i64) -> String {
    let minutes = (now - request.created_at).max(0) / 60;
    let ago = match minutes {
        0 => "less than a minute ago".to_string(),
        1 => "1 minute ago".to_string(),
        n => format!("{n} minutes ago"),
    };
    let from = match &request.started_from {
        Some(address) => format!(" from {address}"),
        None => " from an unknown address".to_string(),
    };
    format!(
        "{ago} ({}){from}",
        identity_shared::clock::rfc3339(request.created_at)
    )
}

/// `POST /device`: a code to look up (`user_code`, `csrf`), or the answer to the request it
/// showed (`user_code`, `csrf`, `decision=allow|deny`).
pub async fn answer(
    State(state): State<AppState>,
    SourceAddress(address): SourceAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Answer> {
    let pairs = parse_pairs(&body)?;
    if fields::value(&pairs, "decision").is_none() {
        return look_up(&state, address, &headers, &pairs).await;
    }
    let user = state.signed_in(&headers).await?.ok_or_else(session_ended)?;
    refuse_if_impersonating(&user, "Connecting a device")?;
    let normalized = fields::value(&pairs, "user_code")
        .and_then(normalize_user_code)
        .ok_or_else(refused_form)?;
    let shown = format!("{}-{}", &normalized[..4], &normalized[4..]);
    let token_ok = csrf_ok(
        fields::value(&pairs, "csrf"),
        &device_csrf(&user.id, &shown),
    );
    if let Err(refused) = form::check_session_post(&headers, &state.config.origin(), token_ok) {
        tracing::warn!("device answer refused: another site, or no valid CSRF token");
        return Err(refused.into());
    }
    if user.account.status == AccountStatus::Pending {
        return Ok(page::activate_account(&user.account.email));
    }
    let store = &state.store;
    let expired = |status| {
        PageError::new(
            status,
            "Code expired",
            "This code has expired or was already answered. Start again on your device.",
        )
    };
    let request = store
        .device_request_by_user_code(&normalized)
        .await
        .map_err(Internal::from_display("device read"))?
        .filter(|r| r.state == DeviceState::Pending)
        .ok_or_else(|| expired(StatusCode::BAD_REQUEST))?;
    let (next, title, text) = match fields::value(&pairs, "decision") {
        Some("allow") => {
            let scopes = Scopes::parse(&request.scope).unwrap_or_default();
            let grant = store
                .grant_for(&user.account.id, &request.client_id, &scopes)
                .await
                .map_err(Internal::from_display("grant write"))?;
            (
                DeviceState::Approved {
                    account_id: user.account.id.clone(),
                    gid: grant.gid,
                },
                "Device connected",
                "Your device is connected. You can close this page and return to it.",
            )
        }
        Some("deny") => (
            DeviceState::Denied,
            "Device not connected",
            "You said no: the device gets no access. You can close this page.",
        ),
        _ => return Err(refused_form().into()),
    };
    let answered = store
        .answer_device_request(&request, next)
        .await
        .map_err(Internal::from_display("device answer"))?;
    if !answered {
        return Err(expired(StatusCode::CONFLICT).into());
    }
    tracing::info!(client_id = %request.client_id, "device request answered");
    Ok(page::html(StatusCode::OK, title, html! { p { (text) } }))
}
