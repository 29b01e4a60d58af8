//! Plain, accessible HTML pages with no external assets.

use axum::response::{IntoResponse, Response};
use http::{StatusCode, Uri, header};

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A hidden form field, name and value escaped.
pub fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        esc(name),
        esc(value)
    )
}

/// Product name shown in every page's banner and `<title>`.
pub const PRODUCT: &str = "Identity";

const STYLE: &str = "*{box-sizing:border-box}body{font-family:system-ui,sans-serif;margin:0;\
line-height:1.5;color:#1a1a1a;background:#fff;overflow-wrap:anywhere}\
header{border-bottom:1px solid #ddd;padding:.75rem 0}header p{max-width:36rem;margin:auto;padding:0 1rem;font-weight:600}\
header p.impersonation{max-width:none;margin:-.75rem 0 .75rem;padding:.5rem 1rem;background:#fde68a;color:#1a1a1a;font-weight:400}\
main{max-width:36rem;margin:2rem auto;padding:0 1rem}h1{font-size:1.5rem;line-height:1.25}\
label{display:block;margin:.75rem 0 .25rem;font-weight:500}\
input[type=email],input[type=password],input[type=text]{width:100%;padding:.5rem;font-size:1rem;\
border:1px solid #767676;border-radius:4px}\
button{margin:1rem .5rem 0 0;padding:.5rem 1rem;font-size:1rem;border-radius:4px;border:1px solid #1a4fa0;\
background:#1a4fa0;color:#fff;cursor:pointer}button[value=deny],button[value=decline]{background:#fff;color:#1a4fa0}\
[role=alert]{border-left:4px solid #b00020;padding:.25rem .75rem;background:#fdf0f2}\
.muted{color:#555}code{font-size:.95em}";

/// A whole page: a banner, then the title and `body_html` as the main landmark.
/// `body_html` must already be escaped where it holds data.
pub fn render(title: &str, body_html: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{t} · {PRODUCT}</title><style>{STYLE}</style></head>\
<body><header><p>{PRODUCT}</p></header><main><h1>{t}</h1>{body_html}</main></body></html>\n",
        t = esc(title)
    )
}

/// A page response: not cached, not framed.
pub fn html(status: StatusCode, title: &str, body_html: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        render(title, body_html),
    )
        .into_response()
}

/// A page holding a form: with `error`, an alert above the form and `error_status`;
/// without, 200.
pub fn form_page(
    title: &str,
    error: Option<&str>,
    error_status: StatusCode,
    body_html: &str,
) -> Response {
    let (status, alert) = match error {
        Some(e) => (
            error_status,
            format!("<p role=\"alert\"><strong>{}</strong></p>", esc(e)),
        ),
        None => (StatusCode::OK, String::new()),
    };
    html(status, title, &format!("{alert}{body_html}"))
}

/// A redirect to `base` with `params` added to its query; never cached, never leaking the
/// URL onwards.
pub fn redirect(status: StatusCode, base: &str, params: &[(&str, String)]) -> Response {
    let query = serde_urlencoded::to_string(params).unwrap_or_default();
    let location = match (query.is_empty(), base.contains('?')) {
        (true, _) => base.to_string(),
        (false, true) => format!("{base}&{query}"),
        (false, false) => format!("{base}?{query}"),
    };
    (
        status,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
    )
        .into_response()
}

/// `302 /login?return_to=<this path and query>`: how a page that needs a signed-in person
/// sends one to sign in.
pub fn login_redirect(uri: &Uri) -> Response {
    let back = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| uri.path().to_string());
    redirect(StatusCode::FOUND, "/login", &[("return_to", back)])
}

/// A pending account (first SSO login, welcome link not followed yet) cannot authorize an
/// application, a device or an add-on: this page says what to do.
pub fn activate_account(email: &str) -> Response {
    html(
        StatusCode::FORBIDDEN,
        "Activate your account",
        &format!(
            "<p>Your account <strong>{}</strong> is not active yet. Follow the link in the \
welcome email we sent you to activate it, then return to the application and try again.</p>",
            esc(email)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_redirect_appends_to_an_existing_query() {
        let r = redirect(
            StatusCode::FOUND,
            "https://app.example.com/cb?x=1",
            &[("error", "access_denied".into()), ("state", "a b&c".into())],
        );
        assert_eq!(
            r.headers()[header::LOCATION],
            "https://app.example.com/cb?x=1&error=access_denied&state=a+b%26c"
        );
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert!(render("<t>", "").contains("<title>&lt;t&gt; · Identity</title>"));
    }
}
