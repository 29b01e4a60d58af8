//! The one HTTP client of the user commands: HTTPS with the system's roots (rustls, the
//! aws-lc-rs provider the AWS SDK already brings), or plain HTTP to a loopback server; JSON
//! answers; every failure one line.

use std::time::Duration;

use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::Failure;

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read.
const MAX_ANSWER: usize = 1024 * 1024;

/// A server the commands talk to: its base URL (no trailing slash).
#[derive(Clone)]
pub struct Server {
    pub base: String,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

/// A request body.
pub enum Body<'a> {
    Empty,
    Form(&'a [(&'a str, &'a str)]),
    Json(&'a Value),
}

/// An answer: its status and its JSON (`Null` when the body was empty or not JSON).
pub struct Answer {
    pub status: StatusCode,
    pub json: Value,
}

impl Answer {
    /// The protocol's error code (`error`), or "".
    pub fn error(&self) -> &str {
        self.json["error"].as_str().unwrap_or("")
    }

    /// The server's explanation of a refusal, for a one-line message.
    pub fn explanation(&self) -> String {
        let text = self.json["error_description"]
            .as_str()
            .or_else(|| self.json["message"].as_str())
            .unwrap_or("");
        match (self.error(), text) {
            ("", "") => format!("the server answered {}", self.status),
            ("", t) => t.to_string(),
            (e, "") => e.to_string(),
            (_, t) => t.to_string(),
        }
    }
}

impl Server {
    /// `url` must be https, or http on a loopback host.
    pub fn new(url: &str) -> Result<Self, Failure> {
        let base = url.trim().trim_end_matches('/').to_string();
        identity_shared::config::https_or_loopback(&base)
            .map_err(|why| Failure(format!("server {base:?}: {why}")))?;
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| Failure(format!("no system certificates to check {base} with: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(Self { base, client })
    }

    /// `POST /oauth/token` with the grant's form (no client secret: the CLI's client is
    /// public).
    pub async fn token(&self, form: &[(&str, &str)]) -> Result<Answer, Failure> {
        self.send(Method::POST, "/oauth/token", None, Body::Form(form))
            .await
    }

    /// One request to `path` (below the base URL), with a bearer credential when given.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Body<'_>,
    ) -> Result<Answer, Failure> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(header::ACCEPT, "application/json")
            .header(
                header::USER_AGENT,
                concat!("identity-cli/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(token) = bearer {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let bytes = match body {
            Body::Empty => Bytes::new(),
            Body::Form(pairs) => {
                request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Bytes::from(serde_urlencoded::to_string(pairs).unwrap_or_default())
            }
            Body::Json(value) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(value.to_string())
            }
        };
        let request = request
            .body(Full::new(bytes))
            .map_err(|e| Failure(format!("bad request to {}: {e}", self.base)))?;
        let unreachable = |e: &dyn std::fmt::Display| {
            Failure(format!("cannot reach the server at {}: {e}", self.base))
        };
        let response = tokio::time::timeout(TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| unreachable(&"no answer within 30 s"))?
            .map_err(|e| unreachable(&root_cause(&e)))?;
        let status = response.status();
        let body = tokio::time::timeout(
            TIMEOUT,
            http_body_util::Limited::new(response.into_body(), MAX_ANSWER).collect(),
        )
        .await
        .map_err(|_| unreachable(&"the answer did not finish within 30 s"))?
        .map_err(|e| unreachable(&e))?
        .to_bytes();
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        Ok(Answer { status, json })
    }
}

/// The innermost error of a chain ("Connection refused"), which is what a person can act on.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
