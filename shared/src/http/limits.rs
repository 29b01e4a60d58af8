//! How much a request may carry, checked before any handler reads it, with an answer in the
//! caller's shape: a page for a browser (`Accept: text/html`), OAuth-style JSON for everything
//! else.
//!
//! - Headers: at most [`MAX_HEADERS`] of them and [`MAX_HEADER_BYTES`] in all (names and
//!   values): `431 Request Header Fields Too Large`. API Gateway's HTTP API allows 10 KB of
//!   request line and headers; `identity serve` would otherwise take what hyper takes.
//! - Body: at most [`MAX_BODY_BYTES`], by `Content-Length` before a byte is read, and while
//!   reading when there is none (chunked): `413 Content Too Large`. The largest legitimate
//!   body is a SAMLResponse of the largest SAML message the ACS reads (256 KB, base64).
//!   Routes that read less say so themselves (the token endpoints: 32 KB, 400).
//!
//! Form parameters are counted where forms are read ([`super::fields::MAX_FIELDS`]) and SAML
//! documents are bounded in size, node count and depth where they are read (sso-acs).

use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};

use super::{JsonError, PageError};

/// Largest request body read anywhere.
pub const MAX_BODY_BYTES: usize = 512 * 1024;
/// Most request headers.
pub const MAX_HEADERS: usize = 64;
/// Most bytes of header names and values, together.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The extractors' body limit (`Bytes`, `Form`, …): [`MAX_BODY_BYTES`].
pub fn body_limit() -> DefaultBodyLimit {
    DefaultBodyLimit::max(MAX_BODY_BYTES)
}

/// The middleware: refuses oversized headers and declared bodies, and gives the extractors'
/// own refusal of a body that turned out too large (plain text) the caller's shape.
pub async fn limits(req: Request, next: Next) -> Response {
    let page = wants_page(req.headers());
    let headers = req.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        return refusal(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            page,
            format!(
                "the request's headers are too large (at most {MAX_HEADERS} headers and {MAX_HEADER_BYTES} bytes)"
            ),
        );
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return body_too_large(page);
    }
    let response = next.run(req).await;
    let shaped = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json") || t.starts_with("text/html"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !shaped {
        return body_too_large(page);
    }
    response
}

fn body_too_large(page: bool) -> Response {
    refusal(
        StatusCode::PAYLOAD_TOO_LARGE,
        page,
        format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
    )
}

/// A browser navigating or posting a form asks for HTML first.
fn wants_page(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

fn refusal(status: StatusCode, page: bool, message: String) -> Response {
    if page {
        PageError::new(status, "Request too large", message).into_response()
    } else {
        JsonError::new(status, "invalid_request", message).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::{Body, Bytes};
    use axum::routing::post;
    use tower::ServiceExt;

    fn app() -> Router {
        Router::new()
            .route(
                "/echo",
                post(|body: Bytes| async move { body.len().to_string() }),
            )
            .layer(body_limit())
            .layer(axum::middleware::from_fn(limits))
    }

    async fn send(req: http::Request<Body>) -> (StatusCode, String, String) {
        let r = app().oneshot(req).await.unwrap();
        let status = r.status();
        let kind = r
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = axum::body::to_bytes(r.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, kind, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn a_body_at_the_limit_is_read_and_one_byte_more_is_refused_in_the_callers_shape() {
        let at = http::Request::post("/echo")
            .body(Body::from(vec![b'a'; MAX_BODY_BYTES]))
            .unwrap();
        assert_eq!(send(at).await.2, MAX_BODY_BYTES.to_string());

        // No Content-Length: refused while reading, then shaped.
        let over = http::Request::post("/echo")
            .body(Body::from(vec![b'a'; MAX_BODY_BYTES + 1]))
            .unwrap();
        let (status, kind, body) = send(over).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(kind, "application/json");
        assert!(body.contains("\"invalid_request\""), "{body}");

        let declared = http::Request::post("/echo")
            .header(header::CONTENT_LENGTH, (MAX_BODY_BYTES + 1).to_string())
            .header(header::ACCEPT, "text/html,application/xhtml+xml")
            .body(Body::from(vec![b'a'; MAX_BODY_BYTES + 1]))
            .unwrap();
        let (status, kind, body) = send(declared).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(kind.starts_with("text/html"), "{kind}");
        assert!(body.contains("Request too large"), "{body}");
    }

    #[tokio::test]
    async fn too_many_or_too_large_headers_are_431() {
        let mut many = http::Request::post("/echo");
        for i in 0..=MAX_HEADERS {
            many = many.header(format!("x-h{i}"), "1");
        }
        let (status, _, body) = send(many.body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        assert!(body.contains("\"invalid_request\""), "{body}");

        let big = http::Request::post("/echo")
            .header(header::COOKIE, "a".repeat(MAX_HEADER_BYTES))
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            send(big).await.0,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );

        let fine = http::Request::post("/echo")
            .header(header::COOKIE, "a".repeat(4096))
            .body(Body::from("abc"))
            .unwrap();
        assert_eq!(send(fine).await.2, "3");
    }
}
