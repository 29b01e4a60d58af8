//! Browser forms: the cross-site request forgery defence, and the `form-action` part of a
//! page's Content-Security-Policy.
//!
//! A form post is let through by what a browser cannot be made to fake from another site:
//! `Sec-Fetch-Site: same-origin` (Fetch Metadata, sent by every current browser on https and
//! on loopback), or a token bound to this browser. `Origin` alone never lets a post through:
//! a browser sends `Origin: null` for reasons that say nothing about the sender (an opaque
//! origin, a `no-referrer` policy), and a missing one proves nothing. `Origin` can only refuse:
//! a post naming another origin, or a `Sec-Fetch-Site` other than `same-origin`, is refused
//! whatever token it carries.
//!
//! Forms shown before sign-in carry a token bound to a random `identity_form` cookie
//! (HttpOnly, SameSite=Lax, so other sites' posts never carry it; `__Host-identity_form`
//! under https, so no sibling host can plant one): the token is an HMAC of the cookie under
//! a server key (the cookie key's tag key), so even a planted cookie comes with no token
//! that matches it. Forms shown to a signed-in person carry a token derived from the session
//! (`SessionId::derive`) and need it always.

use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::PageError;
use crate::crypto;
use crate::secrets::CookieKeys;
use crate::session;

/// The cookie that binds pre-sign-in forms to one browser (its name over plain http; see
/// [`form_cookie`]).
pub const FORM_COOKIE: &str = "identity_form";

/// The form cookie's name: `__Host-` prefixed under https (`secure`).
pub fn form_cookie(secure: bool) -> String {
    session::prefixed_name(FORM_COOKIE, secure, true)
}
/// The hidden field carrying the form token.
pub const FIELD: &str = "form_token";

/// The policy every page gets unless it needs its own: no scripts, no external anything,
/// forms post only here.
pub const DEFAULT_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The token a pre-sign-in form carries, and the cookie it is bound to when the browser
/// does not hold one yet.
#[derive(Debug)]
pub struct FormToken {
    field: String,
    set_cookie: Option<String>,
}

/// What the form token tags: the browser's form cookie.
const TAG_PURPOSE: &str = "identity form token";

/// A cookie value we could have made (`crypto::random_token`): 43 URL-safe base64
/// characters (256 bits).
pub fn plausible_cookie(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl FormToken {
    /// For a page that shows a form: bound to the browser's form cookie, made now if it has
    /// none (`secure` when the service is served over https).
    pub fn for_page(headers: &HeaderMap, secure: bool, keys: &CookieKeys) -> Self {
        let name = form_cookie(secure);
        if let Some(existing) =
            session::cookie_value(headers, &name).filter(|v| plausible_cookie(v))
        {
            return Self {
                field: keys.tag(TAG_PURPOSE, existing),
                set_cookie: None,
            };
        }
        let value = crypto::random_token();
        let secure = if secure { "; Secure" } else { "" };
        Self {
            field: keys.tag(TAG_PURPOSE, value.expose_secret()),
            set_cookie: Some(format!(
                "{name}={}; Path=/; HttpOnly; SameSite=Lax{secure}",
                value.expose_secret()
            )),
        }
    }

    /// The hidden input to put inside the form.
    pub fn hidden(&self) -> maud::Markup {
        super::page::hidden(FIELD, &self.field)
    }

    /// Sets the cookie on the page's response when it was made for this page.
    pub fn apply(self, mut response: Response) -> Response {
        if let Some(v) = self.set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
        response
    }
}

/// Is the presented field the server's tag of this browser's form cookie?
fn form_token_ok(
    headers: &HeaderMap,
    presented: Option<&str>,
    secure: bool,
    keys: &CookieKeys,
) -> bool {
    match (
        session::cookie_value(headers, &form_cookie(secure)),
        presented,
    ) {
        (Some(cookie), Some(field)) if plausible_cookie(cookie) => {
            keys.tag_ok(TAG_PURPOSE, cookie, field)
        }
        _ => false,
    }
}

/// What the browser says about where a post comes from.
#[derive(Debug)]
enum Provenance {
    /// `Sec-Fetch-Site: same-origin`, and no `Origin` naming another origin.
    SameOrigin,
    /// No Fetch Metadata (an older browser, or not a browser), no foreign `Origin`.
    Unknown,
    /// Another site, by `Sec-Fetch-Site` or by `Origin`.
    Foreign,
}

fn provenance(headers: &HeaderMap, our_origin: &str) -> Provenance {
    let origin = headers
        .get(header::ORIGIN)
        .map(|o| o.to_str().unwrap_or(""));
    // `null` is what browsers send for opaque origins and under `no-referrer`: no evidence
    // either way, so it neither passes nor refuses by itself.
    if origin.is_some_and(|o| o != "null" && o != our_origin) {
        return Provenance::Foreign;
    }
    match headers
        .get("sec-fetch-site")
        .map(|s| s.to_str().unwrap_or(""))
    {
        Some("same-origin") => Provenance::SameOrigin,
        Some(_) => Provenance::Foreign,
        None => Provenance::Unknown,
    }
}

fn refused() -> PageError {
    PageError::new(
        StatusCode::FORBIDDEN,
        "Request refused",
        "This form did not come from this site, or it has expired. Go back, reload the page and try again.",
    )
}

/// A post that passes on either proof: same-origin by Fetch Metadata, or (for a browser
/// that sends none) a valid token (`token_ok`, judged by the caller).
pub fn check_post(headers: &HeaderMap, our_origin: &str, token_ok: bool) -> Result<(), PageError> {
    match provenance(headers, our_origin) {
        Provenance::SameOrigin => Ok(()),
        Provenance::Unknown if token_ok => Ok(()),
        _ => Err(refused()),
    }
}

/// A post from a form shown before sign-in: [`check_post`] with the token bound to this
/// browser's form cookie (its `__Host-` name when `our_origin` is https).
pub fn check_anonymous_post(
    headers: &HeaderMap,
    our_origin: &str,
    presented: Option<&str>,
    keys: &CookieKeys,
) -> Result<(), PageError> {
    let secure = our_origin.starts_with("https://");
    check_post(
        headers,
        our_origin,
        form_token_ok(headers, presented, secure, keys),
    )
}

/// A post from a form shown to a signed-in person: its session-bound token must be right
/// (`token_ok`), and the browser must not say it came from another site.
pub fn check_session_post(
    headers: &HeaderMap,
    our_origin: &str,
    token_ok: bool,
) -> Result<(), PageError> {
    match provenance(headers, our_origin) {
        Provenance::SameOrigin | Provenance::Unknown if token_ok => Ok(()),
        _ => Err(refused()),
    }
}

/// `scheme://host[:port]` of an absolute http(s) URL.
pub fn origin_of(url: &str) -> Option<String> {
    let uri = http::Uri::try_from(url).ok()?;
    let scheme = uri.scheme_str()?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    Some(format!("{scheme}://{}", uri.authority()?.as_str()))
}

/// The default policy with `form-action` widened to `origins` as well as `'self'`: for a
/// page whose form's answer redirects onwards (to an IdP, to an OAuth client), since
/// browsers apply `form-action` to every hop of a form submission's redirect chain.
pub fn csp_with_form_action<'a>(origins: impl IntoIterator<Item = &'a str>) -> HeaderValue {
    let mut allowed: Vec<&str> = Vec::new();
    for o in origins {
        // Only well-formed origins; anything else could break out of the directive.
        if origin_of(o).as_deref() == Some(o) && !allowed.contains(&o) {
            allowed.push(o);
        }
    }
    allowed.sort_unstable();
    let extra: String = allowed.iter().map(|o| format!(" {o}")).collect();
    HeaderValue::from_str(&format!(
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
form-action 'self'{extra}; frame-ancestors 'none'; base-uri 'none'"
    ))
    .unwrap_or(HeaderValue::from_static(DEFAULT_CSP))
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: &str = "https://id.example";

    static KEYS: std::sync::LazyLock<CookieKeys> = std::sync::LazyLock::new(CookieKeys::generated);

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn same_origin_fetch_metadata_lets_a_form_through_with_a_null_origin() {
        // What Chromium sends for a same-origin post from a page under `no-referrer`.
        let h = headers(&[("origin", "null"), ("sec-fetch-site", "same-origin")]);
        assert!(check_anonymous_post(&h, US, None, &KEYS).is_ok());
        let h = headers(&[("origin", US), ("sec-fetch-site", "same-origin")]);
        assert!(check_anonymous_post(&h, US, None, &KEYS).is_ok());
    }

    #[test]
    fn null_or_missing_origin_alone_is_refused() {
        for h in [headers(&[("origin", "null")]), headers(&[])] {
            assert!(check_anonymous_post(&h, US, None, &KEYS).is_err());
        }
        // Our own origin without Fetch Metadata still needs the token.
        assert!(check_anonymous_post(&headers(&[("origin", US)]), US, None, &KEYS).is_err());
    }

    #[test]
    fn cross_site_fetch_metadata_is_refused_whatever_it_carries() {
        let page = FormToken::for_page(&HeaderMap::new(), true, &KEYS);
        let cookie = page.set_cookie.clone().unwrap();
        let value = cookie.split(';').next().unwrap().to_string();
        for site in ["cross-site", "same-site", "none"] {
            let h = headers(&[("sec-fetch-site", site), ("cookie", &value)]);
            assert!(
                check_anonymous_post(&h, US, Some(&page.field), &KEYS).is_err(),
                "{site}"
            );
            assert!(check_session_post(&h, US, true).is_err(), "{site}");
        }
    }

    #[test]
    fn foreign_origin_is_refused_even_with_same_origin_metadata() {
        let h = headers(&[
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert!(check_anonymous_post(&h, US, None, &KEYS).is_err());
        assert!(
            check_post(&h, US, true).is_err(),
            "whatever token it carries"
        );
    }

    #[test]
    fn form_token_bound_to_the_cookie_lets_an_older_browser_through() {
        const LOCAL: &str = "http://127.0.0.1:3000";
        let page = FormToken::for_page(&HeaderMap::new(), false, &KEYS);
        let cookie = page.set_cookie.clone().unwrap();
        assert!(cookie.starts_with("identity_form="), "{cookie}");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
        assert!(!cookie.contains("Secure"));
        let pair = cookie.split(';').next().unwrap().to_string();
        let h = headers(&[("cookie", &pair), ("origin", LOCAL)]);
        assert!(check_anonymous_post(&h, LOCAL, Some(&page.field), &KEYS).is_ok());
        // Another browser's token, no token, no cookie: refused.
        let other = FormToken::for_page(&HeaderMap::new(), false, &KEYS);
        assert!(check_anonymous_post(&h, LOCAL, Some(&other.field), &KEYS).is_err());
        assert!(check_anonymous_post(&h, LOCAL, None, &KEYS).is_err());
        let no_cookie = headers(&[("origin", LOCAL)]);
        assert!(check_anonymous_post(&no_cookie, LOCAL, Some(&page.field), &KEYS).is_err());
    }

    #[test]
    fn under_https_the_form_cookie_is_host_prefixed_and_an_unprefixed_one_is_not_taken() {
        let page = FormToken::for_page(&HeaderMap::new(), true, &KEYS);
        let cookie = page.set_cookie.clone().unwrap();
        assert!(cookie.starts_with("__Host-identity_form="), "{cookie}");
        assert!(
            cookie.contains("; Path=/;") && cookie.contains("; Secure"),
            "{cookie}"
        );
        assert!(!cookie.contains("Domain"), "{cookie}");
        let value = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
        let ours = format!("__Host-identity_form={value}");
        let h = headers(&[("cookie", &ours), ("origin", US)]);
        assert!(check_anonymous_post(&h, US, Some(&page.field), &KEYS).is_ok());
        // The same value under the bare name, as a sibling host (or plain http) could
        // set it: not the browser's form cookie.
        let planted = format!("identity_form={value}");
        let h = headers(&[("cookie", &planted), ("origin", US)]);
        assert!(check_anonymous_post(&h, US, Some(&page.field), &KEYS).is_err());
    }

    #[test]
    fn the_form_token_is_the_servers_tag_so_a_planted_cookie_brings_no_token() {
        // Someone who can set the browser's form cookie (and knows its value) cannot make
        // the matching token without the server's key: what the cookie alone would give
        // (the old keyed-by-the-cookie HMAC, or the value itself) is refused.
        let value = crypto::random_token();
        let pair = format!("identity_form={}", value.expose_secret());
        let h = headers(&[("cookie", &pair), ("origin", "http://127.0.0.1:3000")]);
        let keyed_by_cookie = crypto::b64url(
            aws_lc_rs::hmac::sign(
                &aws_lc_rs::hmac::Key::new(
                    aws_lc_rs::hmac::HMAC_SHA256,
                    value.expose_secret().as_bytes(),
                ),
                b"identity form token",
            )
            .as_ref(),
        );
        for forged in [keyed_by_cookie.as_str(), value.expose_secret()] {
            assert!(
                check_anonymous_post(&h, "http://127.0.0.1:3000", Some(forged), &KEYS).is_err()
            );
        }
        let ours = FormToken::for_page(&h, false, &KEYS);
        assert!(
            check_anonymous_post(&h, "http://127.0.0.1:3000", Some(&ours.field), &KEYS).is_ok()
        );
        // Under another server key, the same cookie's token is refused.
        let elsewhere = FormToken::for_page(&h, false, &CookieKeys::generated());
        assert!(
            check_anonymous_post(&h, "http://127.0.0.1:3000", Some(&elsewhere.field), &KEYS)
                .is_err()
        );
    }

    #[test]
    fn a_page_reuses_the_browsers_form_cookie() {
        let first = FormToken::for_page(&HeaderMap::new(), true, &KEYS);
        let pair = first.set_cookie.clone().unwrap();
        let pair = pair.split(';').next().unwrap();
        let again = FormToken::for_page(&headers(&[("cookie", pair)]), true, &KEYS);
        assert!(again.set_cookie.is_none());
        assert_eq!(again.field, first.field);
    }

    #[test]
    fn session_forms_always_need_their_token() {
        let h = headers(&[("sec-fetch-site", "same-origin")]);
        assert!(check_session_post(&h, US, false).is_err());
        assert!(check_session_post(&h, US, true).is_ok());
        assert!(check_session_post(&HeaderMap::new(), US, true).is_ok());
    }

    #[test]
    fn form_action_lists_only_well_formed_origins() {
        let v = csp_with_form_action([
            "https://idp.example",
            "http://127.0.0.1:8080",
            "https://idp.example",
            "https://x.example; script-src *",
            "javascript:alert(1)",
        ]);
        let v = v.to_str().unwrap();
        assert!(
            v.contains("form-action 'self' http://127.0.0.1:8080 https://idp.example;"),
            "{v}"
        );
        assert!(!v.contains("script-src") && !v.contains("javascript"));
        assert_eq!(
            csp_with_form_action([]).to_str().unwrap(),
            DEFAULT_CSP,
            "no extra origins is the default policy"
        );
    }
}
