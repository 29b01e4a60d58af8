//! The layers every router gets: a request id on every log line, one access-log line per
//! request (method, route template, status, time: never the query, body or cookies), the
//! request size limits (`limits`), and the security headers every response should carry.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderValue, header};
use tracing::Instrument;

/// Wraps a router with the shared layers and the JSON 404 for unknown routes. Apply it once,
/// to the finished router (`identity serve` merges every function's routes first).
pub fn layers<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router
        .fallback(not_found)
        .layer(super::limits::body_limit())
        .layer(axum::middleware::from_fn(super::limits::limits))
        .layer(axum::middleware::from_fn(request_context))
}

async fn not_found() -> super::JsonError {
    super::JsonError::new(http::StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// The request id: the Lambda invocation's id when there is one, else a well-formed
/// `X-Request-Id` from the caller, else a new UUID.
fn request_id(req: &Request) -> String {
    if let Some(ctx) = req.extensions().get::<lambda_http::Context>() {
        return ctx.request_id.clone();
    }
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len()) && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

async fn request_context(req: Request, next: Next) -> Response {
    let id = request_id(&req);
    // The route template (`/addons/{addon_id}/sso`), never the raw path: paths can carry
    // single-use tokens (password reset links).
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let span =
        tracing::info_span!("request", request_id = %id, method = %req.method(), route = %route);
    async move {
        let started = Instant::now();
        let mut response = next.run(req).await;
        tracing::info!(
            status = response.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "answered"
        );
        let h = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&id) {
            h.insert("x-request-id", v);
        }
        h.entry(header::X_CONTENT_TYPE_OPTIONS)
            .or_insert(HeaderValue::from_static("nosniff"));
        // Browsers honour HSTS only when it arrives over https (RFC 6797 §8.1): deployments
        // get it, plain-http local use is unaffected.
        h.entry(header::STRICT_TRANSPORT_SECURITY)
            .or_insert(HeaderValue::from_static("max-age=31536000"));
        // Codes, states and single-use links travel in URLs: other sites get no referrer.
        // Not `no-referrer`: under it browsers send `Origin: null` even on same-origin form
        // posts (see `form`), and `same-origin` keeps the real origin for our own posts.
        h.entry(header::REFERRER_POLICY)
            .or_insert(HeaderValue::from_static("same-origin"));
        h.entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(HeaderValue::from_static(super::form::DEFAULT_CSP));
        response
    }
    .instrument(span)
    .await
}
