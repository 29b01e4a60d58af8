//! The code flow end to end over HTTP, as a web application and its user's browser drive it:
//! sign in once (the session cookie), then, for `seconds`, with `workers` at a time:
//! `GET /oauth/authorize` (a trusted client: straight back with a code) → `POST
//! /oauth/token` (the code, PKCE verifier, client_secret_basic) → `POST /oauth/token`
//! (the refresh token, rotated). Prints flows per second; any failure stops the run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::R;

pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

struct Flow {
    base: String,
    client_id: String,
    basic: String,
    redirect_uri: String,
    cookie: String,
    http: HttpClient,
}

pub(crate) async fn send(
    http: &HttpClient,
    method: Method,
    url: &str,
    headers: &[(header::HeaderName, &str)],
    body: Option<String>,
) -> R<(StatusCode, http::HeaderMap, String)> {
    let mut r = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        r = r.header(k, *v);
    }
    if body.is_some() {
        r = r.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let response = http
        .request(r.body(Full::new(Bytes::from(body.unwrap_or_default())))?)
        .await?;
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await?.to_bytes();
    Ok((
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    ))
}

impl Flow {
    async fn once(&self) -> R {
        let verifier = identity_shared::crypto::b64url(&identity_shared::crypto::random_bytes(32));
        let challenge = identity_shared::crypto::b64url(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()).as_ref(),
        );
        let query = serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", "identity"),
            ("state", "bench"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])?;
        let (status, headers, body) = send(
            &self.http,
            Method::GET,
            &format!("{}/oauth/authorize?{query}", self.base),
            &[(header::COOKIE, &self.cookie)],
            None,
        )
        .await?;
        let location = headers
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .ok_or_else(|| format!("authorize answered {status} without a redirect: {body}"))?;
        let code = location
            .split_once('?')
            .and_then(|(_, q)| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
            .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "code").map(|(_, v)| v))
            .ok_or_else(|| format!("no code in {location}"))?;
        let token = |form: Vec<(&str, &str)>| {
            let body = serde_urlencoded::to_string(form).expect("form");
            let url = format!("{}/oauth/token", self.base);
            async move {
                let (status, _, body) = send(
                    &self.http,
                    Method::POST,
                    &url,
                    &[(header::AUTHORIZATION, &self.basic)],
                    Some(body),
                )
                .await?;
                if status != StatusCode::OK {
                    return Err(format!("token endpoint answered {status}: {body}").into());
                }
                Ok::<serde_json::Value, Box<dyn std::error::Error>>(serde_json::from_str(&body)?)
            }
        };
        let tokens = token(vec![
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &self.redirect_uri),
            ("code_verifier", &verifier),
        ])
        .await?;
        let refresh = tokens["refresh_token"].as_str().ok_or("no refresh token")?;
        token(vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
        ])
        .await?;
        Ok(())
    }
}

/// `codeflow BASE CLIENT_ID CLIENT_SECRET REDIRECT_URI EMAIL PASSWORD SECONDS WORKERS`.
pub fn run(args: &[&str]) -> R {
    let [
        base,
        client_id,
        secret,
        redirect_uri,
        email,
        password,
        seconds,
        workers,
    ] = args
    else {
        return Err("usage: codeflow BASE CLIENT_ID CLIENT_SECRET REDIRECT_URI EMAIL PASSWORD SECONDS WORKERS".into());
    };
    let seconds: u64 = seconds.parse()?;
    let workers: usize = workers.parse()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let http: HttpClient = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        // Sign in once, as the browser does from the sign-in page.
        let form = serde_urlencoded::to_string([("email", *email), ("password", *password)])?;
        let (status, headers, body) = send(
            &http,
            Method::POST,
            &format!("{base}/login"),
            &[
                (header::ORIGIN, base),
                (
                    header::HeaderName::from_static("sec-fetch-site"),
                    "same-origin",
                ),
            ],
            Some(form),
        )
        .await?;
        let cookie = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("identity_session="))
            .and_then(|c| c.split(';').next())
            .ok_or_else(|| format!("sign-in answered {status} without a session: {body}"))?
            .to_string();
        let flow = Arc::new(Flow {
            base: base.to_string(),
            client_id: client_id.to_string(),
            basic: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"))
            ),
            redirect_uri: redirect_uri.to_string(),
            cookie,
            http,
        });
        flow.once().await?;
        let done = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let until = start + Duration::from_secs(seconds);
        let tasks: Vec<_> = (0..workers)
            .map(|_| {
                let (flow, done) = (flow.clone(), done.clone());
                tokio::spawn(async move {
                    while Instant::now() < until {
                        flow.once().await.map_err(|e| e.to_string())?;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok::<(), String>(())
                })
            })
            .collect();
        for t in tasks {
            t.await?.map_err(|e| format!("a flow failed: {e}"))?;
        }
        let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
        crate::row("codeflow.ours", rate, "flows/s");
        Ok(())
    })
}
