//! Errors in the shape each client expects: JSON for APIs, an HTML page for browsers.
//! Internal detail goes to the log (never secrets); the client gets a generic message.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};

use super::page;

/// `{"error": code, "error_description": …}` with `Cache-Control: no-store`.
#[derive(Debug, Clone)]
pub struct JsonError {
    pub status: StatusCode,
    pub code: &'static str,
    pub description: String,
}

impl JsonError {
    pub fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
        }
    }
}

impl IntoResponse for JsonError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code, "error_description": self.description });
        (
            self.status,
            [
                (header::CACHE_CONTROL, "no-store"),
                (header::PRAGMA, "no-cache"),
            ],
            Json(body),
        )
            .into_response()
    }
}

/// An error page for a browser.
#[derive(Debug, Clone)]
pub struct PageError {
    pub status: StatusCode,
    pub title: String,
    pub message: String,
}

impl PageError {
    pub fn new(status: StatusCode, title: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            title: title.into(),
            message: message.into(),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        // A person who meets an error is always shown a way on.
        let body = maud::html! {
            p { (self.message) }
            p class="muted" { a href="/login" { "Go to the sign-in page" } }
        };
        page::html(self.status, &self.title, body)
    }
}

/// A failure of ours (store or secret source unavailable, a bug). Logged with its
/// context; the client sees only that something went wrong.
#[derive(Debug)]
pub struct Internal {
    context: &'static str,
    detail: String,
}

impl Internal {
    pub fn new(context: &'static str, detail: impl std::fmt::Display) -> Self {
        Self {
            context,
            detail: detail.to_string(),
        }
    }

    /// For `map_err`: `.map_err(Internal::from_display("store"))`.
    pub fn from_display<E: std::fmt::Display>(context: &'static str) -> impl Fn(E) -> Self {
        move |e| Self::new(context, e)
    }

    fn log(&self) {
        tracing::error!(context = self.context, detail = %self.detail, "internal error");
    }

    /// As a JSON error (APIs).
    pub fn json(self) -> JsonError {
        self.log();
        JsonError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the service could not complete the request",
        )
    }

    /// As an error page (browsers).
    pub fn page(self) -> PageError {
        self.log();
        PageError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Something went wrong",
            "The service could not complete your request. Please try again in a moment.",
        )
    }
}

/// An answer a page handler gives before its end: an error page, a redirect to sign in, a
/// refusal. Handlers return `Result<Response, Answer>` and stop early with `?` on anything
/// that converts: a [`PageError`], an [`Internal`] (the logged error page), a `Response`.
#[derive(Debug)]
pub struct Answer(pub Response);

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        self.0
    }
}

impl From<Response> for Answer {
    fn from(r: Response) -> Self {
        Self(r)
    }
}

impl From<PageError> for Answer {
    fn from(e: PageError) -> Self {
        Self(e.into_response())
    }
}

impl From<Internal> for Answer {
    fn from(e: Internal) -> Self {
        Self(e.page().into_response())
    }
}

/// `?` on an [`Internal`] in a page handler: the logged "something went wrong" page.
impl From<Internal> for PageError {
    fn from(e: Internal) -> Self {
        e.page()
    }
}

/// `?` on an [`Internal`] in an API handler: the logged `temporarily_unavailable` JSON.
impl From<Internal> for JsonError {
    fn from(e: Internal) -> Self {
        e.json()
    }
}

impl IntoResponse for Internal {
    fn into_response(self) -> Response {
        self.json().into_response()
    }
}
