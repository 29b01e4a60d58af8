//! How the bearer-authenticated JSON routes (API keys, organisations) answer: a bearer
//! refusal in RFC 6750's shape, or a JSON error; a success is `no-store` JSON.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use identity_shared::http::bearer::Denied;
use identity_shared::http::oauth::no_store;
use identity_shared::http::{Internal, JsonError};

pub enum Refused {
    Denied(Denied),
    Error(JsonError),
}

impl Refused {
    pub fn new(status: StatusCode, code: &'static str, why: impl Into<String>) -> Self {
        Refused::Error(JsonError::new(status, code, why))
    }
}

impl From<Denied> for Refused {
    fn from(d: Denied) -> Self {
        Refused::Denied(d)
    }
}

impl From<Internal> for Refused {
    fn from(e: Internal) -> Self {
        Refused::Error(e.json())
    }
}

/// The answer of a route: `status` with the JSON body, or the refusal.
pub fn answer(result: Result<(StatusCode, serde_json::Value), Refused>) -> Response {
    match result {
        Ok((status, body)) => (status, no_store(), Json(body)).into_response(),
        Err(Refused::Denied(d)) => d.into_response(),
        Err(Refused::Error(e)) => e.into_response(),
    }
}
