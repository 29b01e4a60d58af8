//! Plain, accessible HTML pages with no external assets, written with maud's `html!`: the
//! markup is checked when it compiles and every value put into it is escaped.

use axum::response::{IntoResponse, Response};
use http::{StatusCode, Uri, header};
use maud::{DOCTYPE, Markup, PreEscaped, html as markup};

/// A hidden form field.
pub fn hidden(name: &str, value: &str) -> Markup {
    markup! { input type="hidden" name=(name) value=(value); }
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

/// A whole page: a banner, then the title and `body` as the main landmark.
pub fn render(title: &str, body: Markup) -> String {
    markup! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (PRODUCT) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header { p { (PRODUCT) } }
                main { h1 { (title) } (body) }
            }
        }
    }
    .into_string()
}

/// A page response: not cached, not framed.
pub fn html(status: StatusCode, title: &str, body: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        render(title, body),
    )
        .into_response()
}

/// A page holding a form: with `error`, an alert above the form and `error_status`;
/// without, 200.
pub fn form_page(
    title: &str,
    error: Option<&str>,
    error_status: StatusCode,
    body: Markup,
) -> Response {
    let status = match error {
        Some(_) => error_status,
        None => StatusCode::OK,
    };
    let page = markup! {
        @if let Some(e) = error {
            p role="alert" { strong { (e) } }
        }
        (body)
    };
    html(status, title, page)
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
        markup! {
            p {
                "Your account " strong { (email) } " is not active yet. Follow the link in the \
                welcome email we sent you to activate it, then return to the application and \
                try again."
            }
        },
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
    fn every_value_is_escaped() {
        let page = render(
            "<t>",
            markup! { (hidden("n", r#""><script>"#)) p { (r#"<a href="x">'&'</a>"#) } },
        );
        assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
        assert!(
            page.contains("<title>&lt;t&gt; · Identity</title>"),
            "{page}"
        );
        assert!(
            page.contains(r#"value="&quot;&gt;&lt;script&gt;""#),
            "{page}"
        );
        assert!(
            page.contains("<p>&lt;a href=&quot;x&quot;&gt;'&amp;'&lt;/a&gt;</p>"),
            "{page}"
        );
    }
}
