//! The concurrency soak (`bench/soak.sh`): `identity serve` on DynamoDB Local, many clients
//! at once for a bounded time, each one a person going through the product's flows over
//! loopback HTTP, racing every single-use value it holds against itself; then an audit of the
//! store.
//!
//! Each client is one person (an active account of the IdP's domain, a member of the app
//! that owns the add-on, pre-authorized for the JWT client). A round:
//!
//! 0. Every fourth round, first a newcomer: the first SSO login of an email nobody
//!    registered makes a pending account (`GET /session` says so).
//! 1. SSO login, SP-initiated: `GET /sso/login` → the AuthnRequest's ID → a Response signed
//!    by the IdP's key → the same `POST /sso/acs` twice at once: one session, one refusal.
//! 2. OAuth: `GET /oauth/authorize` (trusted client) → code, then by round one of
//!    - code → tokens → refresh → `POST /oauth/revoke` of the refresh token (the grant dies);
//!    - the code redeemed twice at once (one answer with tokens), then once more, which
//!      revokes what the first use issued;
//!    - code → tokens → the refresh token used twice at once (one successor) → refresh again.
//! 3. The JWT bearer grant: one assertion (fresh `jti`) posted twice at once.
//! 4. Add-on SSO: `GET /addons/{id}/sso` → the form → posted twice at once to the example
//!    partner of `identity serve`, which verifies it and accepts it once.
//! 5. The device flow: device authorization → a poll (pending) → `/device` (the link's
//!    form, then the code looked up) approve → two polls at once: one gets the tokens.
//!
//! Every answer is classified: the expected ones, the expected refusals of a race's loser,
//! and errors by kind (`step: status`). Two successes for one value is a double spend. A 5xx
//! leaves the driver not knowing whether the store changed: it is counted as an error and
//! widens the audit's count for that value by one.
//!
//! The audit, after the run: every token the driver holds whose grant is revoked (by the
//! driver, or in the store) introspects inactive; then a scan of the tables: each single-use
//! record (assertion IDs, `jti`s, add-on SSO requests, spent codes, refresh successors)
//! counted against the successes the clients saw; no grant without its account, client and
//! index entry; no index entry or refresh token without its grant; each spent refresh token
//! has exactly one successor; no code or AuthnRequest left unspent; each newcomer has a
//! pending account and one welcome link; the JWT client's login
//! history holds one success per grant given and one failure per replay refused.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use http::{HeaderMap, Method, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use identity_shared::accounts::{AccountStatus, Accounts, Email};
use identity_shared::addons::Addons;
use identity_shared::apps::{Apps, Role};
use identity_shared::idps::{Idp, Idps};
use identity_shared::jwt_clients::{Certificate, JwtClients};
use identity_shared::login_history::{LoginAttempt, Outcome};
use identity_shared::oauth::client::{CLI_CLIENT_ID, NewClient, OAuthClients};
use identity_shared::oauth::{Grant, RefreshRecord};
use identity_shared::secret::SecretString;
use identity_shared::store::dynamodb::DynamoDb;
use identity_shared::store::{Item, Store, Table};
use sso_acs::saml::Sp;
use sso_acs::saml::idp_signer::{IdpSigner, ResponseSpec, Sign};

use crate::R;
use crate::codeflow::{HttpClient, send};

const DOMAIN: &str = "soak.example";
const IDP_ID: &str = "soak";
const IDP_ORIGIN: &str = "https://idp.soak.example";
const REDIRECT_URI: &str = "http://127.0.0.1/cb";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const SEC_FETCH_SITE: header::HeaderName = header::HeaderName::from_static("sec-fetch-site");

/// What the run learned: counts the audit checks the store against, and what went wrong.
#[derive(Default)]
struct Ledger {
    /// Flows finished, by kind.
    flows: BTreeMap<&'static str, u64>,
    /// Values the clients saw spent successfully, by kind.
    ok: BTreeMap<&'static str, u64>,
    /// Answers that may or may not have changed the store (5xx, lost connections), by kind.
    unknown: BTreeMap<&'static str, u64>,
    /// Refusals that were the point: a race's loser, a replay.
    refused: BTreeMap<String, u64>,
    /// Anything else: `step: status` or `step: what`.
    errors: BTreeMap<String, u64>,
    double_spends: Vec<String>,
    /// Tokens of the web client, with their grant, for the revocation check.
    held: Vec<(String, String)>,
    /// Grants the clients revoked (RFC 7009, or a code's second use).
    revoked: HashSet<String>,
    /// Emails whose first SSO login made a new (pending) account.
    newcomers: Vec<String>,
}

struct Ctx {
    http: HttpClient,
    idp_entity: String,
    base: String,
    /// The example partner's SSO URL (the add-on's other end).
    partner_sso: String,
    sp: Sp,
    signer: IdpSigner,
    web_id: String,
    web_basic: String,
    addon_id: String,
    jwt_client_id: String,
    jwt_key: SecretString,
    ledger: Mutex<Ledger>,
    requests: AtomicU64,
}

/// One answer.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

/// A flow stopped at an error already recorded.
struct Stop;

type Step<T = ()> = Result<T, Stop>;

/// A person's cookies, as a browser keeps them for the one origin.
#[derive(Default, Clone)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn keep(&mut self, headers: &HeaderMap) {
        for c in headers.get_all(header::SET_COOKIE) {
            let Some(pair) = c.to_str().ok().and_then(|c| c.split(';').next()) else {
                continue;
            };
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let expired = c
                .to_str()
                .unwrap_or_default()
                .to_ascii_lowercase()
                .contains("max-age=0");
            if expired || value.is_empty() {
                self.0.remove(name.trim());
            } else {
                self.0.insert(name.trim().to_string(), value.to_string());
            }
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).expect("a form")
}

fn query_of(url: &str) -> HashMap<String, String> {
    url.split_once('?')
        .and_then(|(_, q)| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// Where a redirect sends the browser ("" when it does not).
fn location(a: &Answer) -> &str {
    a.headers
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or(serde_json::Value::Null)
}

/// The `gid` claim of an access token (RFC 9068 JWT; the driver holds it, so reading the
/// payload without verifying is enough).
fn gid_of(access_token: &str) -> Option<String> {
    let payload = access_token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes).ok()?["gid"]
        .as_str()
        .map(str::to_string)
}

impl Ctx {
    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn error(&self, what: String) -> Stop {
        *self.ledger().errors.entry(what).or_default() += 1;
        Stop
    }

    fn unknown(&self, kind: &'static str) {
        *self.ledger().unknown.entry(kind).or_default() += 1;
    }

    fn ok(&self, kind: &'static str, n: u64) {
        *self.ledger().ok.entry(kind).or_default() += n;
    }

    fn refused(&self, step: &str, status: StatusCode) {
        *self
            .ledger()
            .refused
            .entry(format!("{step}: {}", status.as_u16()))
            .or_default() += 1;
    }

    fn flow(&self, kind: &'static str) {
        *self.ledger().flows.entry(kind).or_default() += 1;
    }

    /// One request. A lost connection is an error of `step`, and leaves `kind` unknown.
    async fn call(
        &self,
        step: &str,
        kind: Option<&'static str>,
        method: Method,
        path: &str,
        headers: &[(header::HeaderName, &str)],
        body: Option<String>,
    ) -> Step<Answer> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        match send(&self.http, method, &url, headers, body).await {
            Ok((status, headers, body)) => Ok(Answer {
                status,
                headers,
                body,
            }),
            Err(e) => {
                if let Some(kind) = kind {
                    self.unknown(kind);
                }
                Err(self.error(format!("{step}: transport ({e})")))
            }
        }
    }

    /// `GET path` with the person's cookies; the answer had to be `want`.
    async fn get(&self, step: &str, path: &str, jar: &Jar, want: StatusCode) -> Step<Answer> {
        let cookie = jar.header();
        let headers: &[(header::HeaderName, &str)] = if cookie.is_empty() {
            &[]
        } else {
            &[(header::COOKIE, &cookie)]
        };
        let answer = self
            .call(step, None, Method::GET, path, headers, None)
            .await?;
        self.expect(step, None, answer, want)
    }

    /// `answer` had to be `want`: anything else is an error of `step` (a 5xx leaves `kind`
    /// unknown).
    fn expect(
        &self,
        step: &str,
        kind: Option<&'static str>,
        answer: Answer,
        want: StatusCode,
    ) -> Step<Answer> {
        if answer.status == want {
            return Ok(answer);
        }
        if answer.status.is_server_error()
            && let Some(kind) = kind
        {
            self.unknown(kind);
        }
        let detail = json(&answer.body)["error"]
            .as_str()
            .map(|e| format!(" {e}"))
            .unwrap_or_default();
        Err(self.error(format!("{step}: {}{detail}", answer.status.as_u16())))
    }

    /// The same POST twice at once, as two tabs or a double click send it.
    async fn post_twice(
        &self,
        step: &str,
        kind: &'static str,
        path: &str,
        headers: &[(header::HeaderName, &str)],
        body: String,
    ) -> Step<[Answer; 2]> {
        let post = || {
            self.call(
                step,
                Some(kind),
                Method::POST,
                path,
                headers,
                Some(body.clone()),
            )
        };
        let (a, b) = tokio::join!(post(), post());
        Ok([a?, b?])
    }

    /// Two answers to the same single-use value, sent at once: `won` says which succeeded.
    /// Exactly one must; two is a double spend; none is an error (a 5xx: `kind` unknown).
    fn judge_race<'a>(
        &self,
        step: &str,
        kind: &'static str,
        answers: [&'a Answer; 2],
        won: impl Fn(&Answer) -> bool,
    ) -> Step<&'a Answer> {
        let winners: Vec<&Answer> = answers.iter().copied().filter(|a| won(a)).collect();
        for a in answers.iter().filter(|a| !won(a)) {
            if a.status.is_server_error() {
                self.unknown(kind);
                self.error(format!("{step}: {}", a.status.as_u16()));
            } else {
                self.refused(step, a.status);
            }
        }
        match winners.as_slice() {
            [one] => {
                self.ok(kind, 1);
                Ok(one)
            }
            [] => Err(self.error(format!("{step}: neither of two racing requests succeeded"))),
            _ => {
                self.ok(kind, winners.len() as u64);
                self.ledger()
                    .double_spends
                    .push(format!("{step}: {} successes for one value", winners.len()));
                Err(Stop)
            }
        }
    }

    // -------------------------------------------------------------------------------------
    // The flows
    // -------------------------------------------------------------------------------------

    async fn sso_login(&self, email: &str) -> Step<Jar> {
        let mut jar = Jar::default();
        let start = self
            .get(
                "sso start",
                &format!("/sso/login?idp={IDP_ID}&return_to=%2F"),
                &jar,
                StatusCode::FOUND,
            )
            .await?;
        jar.keep(&start.headers);
        let q = query_of(location(&start));
        let (Some(request), Some(relay)) = (q.get("SAMLRequest"), q.get("RelayState")) else {
            self.unknown("saml-request");
            return Err(self.error("sso start: no SAMLRequest or RelayState".into()));
        };
        let Ok(request_id) = identity_cli::dev_idp::request_id(request, &self.sp) else {
            self.unknown("saml-request");
            return Err(self.error("sso start: an unreadable AuthnRequest".into()));
        };
        let xml = self
            .signer
            .response(&ResponseSpec {
                issuer: self.idp_entity.clone(),
                destination: self.sp.acs_url.clone(),
                audience: self.sp.entity_id.clone(),
                recipient: self.sp.acs_url.clone(),
                email: email.into(),
                in_response_to: Some(request_id),
                authn_context: None,
                now: crate::now(),
                lifetime_secs: 300,
                sign: Sign::Assertion,
            })
            .map_err(|e| {
                self.unknown("saml-request");
                self.error(format!("sso: signing failed ({e})"))
            })?;
        let body = form(&[
            (
                "SAMLResponse",
                &base64::engine::general_purpose::STANDARD.encode(xml),
            ),
            ("RelayState", relay),
        ]);
        let cookie = jar.header();
        // The IdP's page posts the form to us: a cross-site POST carrying the request cookie.
        let headers = [
            (header::COOKIE, cookie.as_str()),
            (header::ORIGIN, IDP_ORIGIN),
            (SEC_FETCH_SITE, "cross-site"),
        ];
        let [a, b] = self
            .post_twice("sso acs", "sso", "/sso/acs", &headers, body)
            .await?;
        let signed_in = |a: &Answer| {
            a.status == StatusCode::SEE_OTHER
                && a.headers.get_all(header::SET_COOKIE).iter().any(|c| {
                    c.to_str()
                        .unwrap_or_default()
                        .starts_with("identity_session=")
                })
        };
        let winner = self.judge_race(
            "sso acs (the same Response twice)",
            "sso",
            [&a, &b],
            signed_in,
        )?;
        jar.keep(&winner.headers);
        self.flow("sso login");
        Ok(jar)
    }

    async fn authorize(&self, jar: &Jar) -> Step<(String, String)> {
        let verifier = identity_shared::crypto::b64url(&identity_shared::crypto::random_bytes(32));
        let challenge = identity_shared::crypto::b64url(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()).as_ref(),
        );
        let query = form(&[
            ("response_type", "code"),
            ("client_id", &self.web_id),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "identity"),
            ("state", "soak"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ]);
        let path = format!("/oauth/authorize?{query}");
        let a = self.get("authorize", &path, jar, StatusCode::FOUND).await?;
        match query_of(location(&a)).remove("code") {
            Some(code) => Ok((code, verifier)),
            None => Err(self.error("authorize: redirected without a code".into())),
        }
    }

    async fn token(&self, step: &str, kind: &'static str, pairs: &[(&str, &str)]) -> Step<Answer> {
        self.call(
            step,
            Some(kind),
            Method::POST,
            "/oauth/token",
            &[(header::AUTHORIZATION, &self.web_basic)],
            Some(form(pairs)),
        )
        .await
    }

    /// The same token request twice at once.
    async fn token_twice(
        &self,
        step: &str,
        kind: &'static str,
        pairs: &[(&str, &str)],
    ) -> Step<[Answer; 2]> {
        let auth = [(header::AUTHORIZATION, self.web_basic.as_str())];
        self.post_twice(step, kind, "/oauth/token", &auth, form(pairs))
            .await
    }

    /// A token request that must succeed, spending one value of `kind`.
    async fn token_ok(
        &self,
        step: &str,
        kind: &'static str,
        pairs: &[(&str, &str)],
    ) -> Step<Answer> {
        let a = self.token(step, kind, pairs).await?;
        let a = self.expect(step, Some(kind), a, StatusCode::OK)?;
        self.ok(kind, 1);
        Ok(a)
    }

    /// Keeps the tokens of a token answer for the revocation check; returns (gid, refresh).
    fn hold(&self, answer: &Answer) -> Step<(String, String)> {
        let j = json(&answer.body);
        let (Some(access), Some(refresh)) =
            (j["access_token"].as_str(), j["refresh_token"].as_str())
        else {
            return Err(self.error("token: a 200 without tokens".into()));
        };
        let Some(gid) = gid_of(access) else {
            return Err(self.error("token: an access token without gid".into()));
        };
        let mut ledger = self.ledger();
        ledger.held.push((access.to_string(), gid.clone()));
        ledger.held.push((refresh.to_string(), gid.clone()));
        Ok((gid, refresh.to_string()))
    }

    async fn oauth(&self, jar: &Jar, round: usize) -> Step {
        let (code, verifier) = self.authorize(jar).await?;
        self.ok("codes issued", 1);
        let exchange = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier.as_str()),
        ];
        let is_ok = |a: &Answer| a.status == StatusCode::OK;
        match round % 3 {
            0 => {
                let a = self.token_ok("code exchange", "code", &exchange).await?;
                let (gid, refresh) = self.hold(&a)?;
                let r = self
                    .token_ok(
                        "refresh",
                        "refresh",
                        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
                    )
                    .await?;
                let (_, refresh) = self.hold(&r)?;
                let v = self
                    .call(
                        "revoke",
                        None,
                        Method::POST,
                        "/oauth/revoke",
                        &[(header::AUTHORIZATION, &self.web_basic)],
                        Some(form(&[
                            ("token", &refresh),
                            ("token_type_hint", "refresh_token"),
                        ])),
                    )
                    .await?;
                self.expect("revoke", None, v, StatusCode::OK)?;
                self.ledger().revoked.insert(gid);
                self.flow("code → tokens → refresh → revoke");
            }
            1 => {
                let [a, b] = self.token_twice("code exchange", "code", &exchange).await?;
                let won =
                    self.judge_race("code exchange (one code twice)", "code", [&a, &b], is_ok)?;
                let (gid, _) = self.hold(won)?;
                let again = self.token("code replay", "code", &exchange).await?;
                if again.status != StatusCode::BAD_REQUEST {
                    return Err(self.error(format!("code replay: {}", again.status.as_u16())));
                }
                self.refused("code replay", again.status);
                self.ledger().revoked.insert(gid);
                self.flow("code twice at once, then again (revokes)");
            }
            _ => {
                let a = self.token_ok("code exchange", "code", &exchange).await?;
                let (_, refresh) = self.hold(&a)?;
                let pairs = [
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh.as_str()),
                ];
                let [a, b] = self.token_twice("refresh", "refresh", &pairs).await?;
                let won =
                    self.judge_race("refresh (one token twice)", "refresh", [&a, &b], is_ok)?;
                let (_, refresh) = self.hold(won)?;
                let r = self
                    .token_ok(
                        "refresh",
                        "refresh",
                        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
                    )
                    .await?;
                self.hold(&r)?;
                self.flow("code → tokens → one refresh token twice at once → refresh");
            }
        }
        Ok(())
    }

    async fn jwt_grant(&self, email: &str) -> Step {
        let now = crate::now();
        let claims = serde_json::json!({
            "iss": self.jwt_client_id, "sub": email, "aud": self.base,
            "iat": now, "exp": now + 120,
            "jti": identity_shared::crypto::b64url(&identity_shared::crypto::random_bytes(16)),
        });
        let assertion = jwt_grant::sign::sign_assertion(&self.jwt_key, &claims)
            .map_err(|e| self.error(format!("jwt: signing failed ({e})")))?;
        let body = form(&[
            ("grant_type", JWT_BEARER),
            ("assertion", assertion.expose_secret()),
        ]);
        let [a, b] = self
            .post_twice("jwt grant", "jwt", "/oauth/jwt/token", &[], body)
            .await?;
        let answers = [&a, &b];
        let refused = answers
            .iter()
            .filter(|a| a.status == StatusCode::BAD_REQUEST)
            .count() as u64;
        self.judge_race("jwt grant (one assertion twice)", "jwt", answers, |a| {
            a.status == StatusCode::OK
        })?;
        self.ok("jwt refused", refused);
        self.flow("JWT bearer grant, one assertion twice at once");
        Ok(())
    }

    async fn addon_sso(&self, jar: &Jar, last: &mut i64) -> Step {
        // Heroku's form is made of the resource, the salt, the person and the timestamp in
        // seconds: two openings by one person within one second are the same form, which
        // the partner cannot tell from a replay. A person opens it at most once a second.
        while crate::now() <= *last {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        *last = crate::now();
        let path = format!("/addons/{}/sso", self.addon_id);
        let page = self
            .get("addon sso page", &path, jar, StatusCode::OK)
            .await?;
        let fields = identity_tests::addon_suite::hidden_fields(&page.body);
        if !fields.iter().any(|(k, _)| k == "resource_token") {
            return Err(self.error("addon sso page: no form".into()));
        }
        // The form's own second, which may be later than the wait above when the page is
        // slow: the next opening waits past this one.
        if let Some(t) = fields
            .iter()
            .find(|(k, _)| k == "timestamp")
            .and_then(|(_, v)| v.parse::<i64>().ok())
        {
            *last = (*last).max(t);
        }
        let body = serde_urlencoded::to_string(&fields).expect("a form");
        // The page's script posts the form to the partner (here, the example partner of
        // `identity serve`, on the same origin).
        let headers = [
            (header::ORIGIN, self.base.as_str()),
            (SEC_FETCH_SITE, "same-origin"),
        ];
        let [a, b] = self
            .post_twice("partner sso", "addon", &self.partner_sso, &headers, body)
            .await?;
        self.judge_race("partner sso (one form twice)", "addon", [&a, &b], |a| {
            a.status == StatusCode::OK
        })?;
        self.flow("add-on SSO, one form twice at once");
        Ok(())
    }

    /// A post from the `/device` page's own form (same-origin, with the session's cookie).
    async fn device_post(&self, step: &str, cookie: &str, fields: &[(&str, &str)]) -> Step<Answer> {
        self.call(
            step,
            None,
            Method::POST,
            "/device",
            &[
                (header::COOKIE, cookie),
                (header::ORIGIN, &self.base),
                (SEC_FETCH_SITE, "same-origin"),
            ],
            Some(form(fields)),
        )
        .await
    }

    async fn device(&self, jar: &Jar) -> Step {
        let a = self
            .call(
                "device authorize",
                None,
                Method::POST,
                "/oauth/device/authorize",
                &[],
                Some(form(&[("client_id", CLI_CLIENT_ID)])),
            )
            .await?;
        let a = self.expect("device authorize", None, a, StatusCode::OK)?;
        let j = json(&a.body);
        let (Some(device_code), Some(user_code)) =
            (j["device_code"].as_str(), j["user_code"].as_str())
        else {
            return Err(self.error("device authorize: no codes".into()));
        };
        let poll_body = form(&[
            ("grant_type", DEVICE_GRANT),
            ("device_code", device_code),
            ("client_id", CLI_CLIENT_ID),
        ]);
        let poll = || {
            self.call(
                "device poll",
                Some("device"),
                Method::POST,
                "/oauth/token",
                &[],
                Some(poll_body.clone()),
            )
        };
        let pending = poll().await?;
        if json(&pending.body)["error"] != "authorization_pending" {
            return Err(self.error(format!(
                "device poll before approval: {}",
                pending.status.as_u16()
            )));
        }
        let cookie = jar.header();
        // A login (`global`) has no link with its code: the person opens the page and types
        // the code; Continue looks it up (a same-origin post).
        let page = self
            .get("device page", "/device", jar, StatusCode::OK)
            .await?;
        let fields: HashMap<String, String> =
            identity_tests::addon_suite::hidden_fields(&page.body)
                .into_iter()
                .collect();
        let Some(csrf) = fields.get("csrf") else {
            return Err(self.error("device page: no csrf field".into()));
        };
        let shown = self
            .device_post(
                "device code",
                &cookie,
                &[("user_code", user_code), ("csrf", csrf)],
            )
            .await?;
        if shown.status != StatusCode::OK {
            return Err(self.error(format!("device code: {}", shown.status.as_u16())));
        }
        let fields: HashMap<String, String> =
            identity_tests::addon_suite::hidden_fields(&shown.body)
                .into_iter()
                .collect();
        let Some(csrf) = fields.get("csrf") else {
            return Err(self.error("device request page: no csrf field".into()));
        };
        let approve = self
            .device_post(
                "device approve",
                &cookie,
                &[
                    ("user_code", user_code),
                    ("csrf", csrf),
                    ("decision", "allow"),
                ],
            )
            .await?;
        if !(approve.status.is_success() || approve.status.is_redirection()) {
            return Err(self.error(format!("device approve: {}", approve.status.as_u16())));
        }
        let (a, b) = tokio::join!(poll(), poll());
        let (a, b) = (a?, b?);
        self.judge_race(
            "device poll (approved, twice at once)",
            "device",
            [&a, &b],
            |a| a.status == StatusCode::OK,
        )?;
        self.flow("device flow, approved, polled twice at once");
        Ok(())
    }

    /// A first SSO login of an email nobody registered: a new account, pending until its
    /// welcome link is followed, signed in.
    async fn newcomer(&self, email: &str) -> Step {
        let jar = self.sso_login(email).await?;
        let s = self
            .get("session", "/session", &jar, StatusCode::OK)
            .await?;
        if json(&s.body)["status"] != "pending" {
            return Err(self.error("session: a new SSO account that is not pending".into()));
        }
        self.ledger().newcomers.push(email.to_string());
        self.flow("first SSO login (new account, pending)");
        Ok(())
    }

    /// One person's round: each flow after the sign-in runs even when another failed.
    async fn round(&self, email: &str, round: usize, last_addon_sso: &mut i64) {
        if round.is_multiple_of(4) {
            let (name, domain) = email.split_once('@').unwrap_or((email, DOMAIN));
            let _ = self.newcomer(&format!("{name}.new{round}@{domain}")).await;
        }
        let Ok(jar) = self.sso_login(email).await else {
            return;
        };
        let _ = self.oauth(&jar, round).await;
        let _ = self.jwt_grant(email).await;
        let _ = self.addon_sso(&jar, last_addon_sso).await;
        let _ = self.device(&jar).await;
    }

    /// Whether introspection calls `token` active.
    async fn active(&self, token: &str) -> Step<bool> {
        let a = self
            .call(
                "introspect",
                None,
                Method::POST,
                "/oauth/introspect",
                &[(header::AUTHORIZATION, &self.web_basic)],
                Some(form(&[("token", token)])),
            )
            .await?;
        let a = self.expect("introspect", None, a, StatusCode::OK)?;
        Ok(json(&a.body)["active"] == true)
    }
}

// -----------------------------------------------------------------------------------------
// Set-up, run, audit, report
// -----------------------------------------------------------------------------------------

fn email_of(i: usize) -> String {
    format!("person{i}@{DOMAIN}")
}

/// What the set-up made that the clients need.
struct Made {
    idp_entity: String,
    web_id: String,
    web_secret: String,
    addon_id: String,
    jwt_client_id: String,
    jwt_key: SecretString,
}

async fn set_up(store: &Store, signer: &IdpSigner, people: usize, partner_sso: &str) -> R<Made> {
    let idp = store
        .add_idp(&Idp {
            certificates: vec![signer.certificate_base64()],
            team: None,
            ..identity_tests::sso_suite::idp(IDP_ID, DOMAIN)
        })
        .await?;
    let mut accounts = Vec::with_capacity(people);
    for i in 0..people {
        // As `identity admin user add` makes them for the IdP owning their domain: active,
        // no password, under SSO from the first SSO login (no confirmation).
        accounts.push(
            store
                .create_account_for_idp(
                    &Email::parse(&email_of(i))?,
                    None,
                    AccountStatus::Active,
                    Some(&idp),
                )
                .await?,
        );
    }
    let app = store.create_app("soak", &accounts[0]).await?;
    for a in &accounts[1..] {
        store.set_role(&app, a, Role::Member).await?;
    }
    let (web, secret) = store
        .create_client(NewClient {
            name: "soak web app".into(),
            redirect_uris: vec![REDIRECT_URI.into()],
            scopes: vec![],
            trusted: true,
            public: false,
        })
        .await?;
    let secret = secret.ok_or("a confidential client without a secret")?;
    // The CLI's client, for the device flow: `identity serve` registers it at start, a
    // deployment's operator with `identity admin client add-cli` (the same call).
    store.ensure_cli_client().await?;
    let addon = store.create_addon(&app, "soak-addon", partner_sso).await?;
    let key = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)?;
    let cert = rcgen::CertificateParams::new(Vec::<String>::new())?.self_signed(&key)?;
    let jwt = store
        .create_jwt_client(
            "soak ci",
            vec![Certificate::from_pem(&cert.pem(), crate::now())?],
            &accounts,
            &["api".to_string()],
        )
        .await?;
    Ok(Made {
        idp_entity: idp.entity_id,
        web_id: web.client_id.to_string(),
        web_secret: secret.expose_secret().to_string(),
        addon_id: addon.addon.id,
        jwt_client_id: jwt.client_id,
        jwt_key: SecretString::new(key.serialize_pem()),
    })
}

/// One audit line: what the store holds against what the clients saw (a range when some
/// answers left the outcome unknown).
struct Check {
    what: String,
    found: u64,
    expected: (u64, u64),
}

impl Check {
    fn passed(&self) -> bool {
        (self.expected.0..=self.expected.1).contains(&self.found)
    }
}

/// `soak IDENTITY_BIN SECONDS CLIENTS MD JSON`, under `tests/run.sh --services`.
pub fn run(args: &[&str]) -> R {
    let [identity, seconds, clients, md, json_out] = args else {
        return Err("usage: soak IDENTITY_BIN SECONDS CLIENTS MD JSON".into());
    };
    let seconds: u64 = seconds.parse()?;
    let clients: usize = clients.parse()?;
    if clients < 2 {
        return Err("at least 2 clients".into());
    }
    let endpoint = std::env::var("IDENTITY_TEST_DYNAMODB_ENDPOINT")
        .map_err(|_| "no DynamoDB Local: run under tests/run.sh --services")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let sdk = identity_tests::service_sdk_config(&endpoint).await;
        // Against the local stack (scripts/local-stack.sh -- …): its tables, its API, and
        // the example partner run here, as a partner runs on its own host. Else `identity
        // serve` on fresh tables, with its example partner.
        let stack = std::env::var("IDENTITY_STACK_CONTROL")
            .ok()
            .filter(|v| !v.is_empty());
        let (prefix, base) = match &stack {
            Some(_) => (
                std::env::var("IDENTITY_TABLE_PREFIX")?,
                std::env::var("IDENTITY_BASE_URL")?,
            ),
            None => {
                let port = std::net::TcpListener::bind("127.0.0.1:0")?
                    .local_addr()?
                    .port();
                (
                    format!(
                        "soak{}-",
                        &identity_shared::crypto::sha256_hex(
                            &identity_shared::crypto::random_bytes(8)
                        )[..8]
                    ),
                    format!("http://127.0.0.1:{port}"),
                )
            }
        };
        let db = DynamoDb::new(aws_sdk_dynamodb::Client::new(&sdk), prefix.clone());
        if stack.is_none() {
            db.create_tables().await?;
        }
        let store = Store::new(Arc::new(db), identity_shared::clock::system());
        let (partner_sso, _partner) = match &stack {
            Some(_) => {
                let state = identity_shared::AppState::build(
                    identity_shared::Config::from_env()?,
                    identity_shared::clock::system(),
                )
                .await?;
                let app = identity_cli::example_partner::routes().with_state(state);
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let url = format!(
                    "http://{}{}",
                    listener.local_addr()?,
                    identity_cli::example_partner::SSO_PATH
                );
                let task = tokio::spawn(async move {
                    let _ = axum::serve(listener, app).await;
                });
                (url, Some(AbortOnDrop(task)))
            }
            None => (
                format!("{base}{}", identity_cli::example_partner::SSO_PATH),
                None,
            ),
        };
        let signer = IdpSigner::generate("soak IdP")?;
        eprintln!("soak: tables {prefix}*, {clients} people, set-up");
        let made = set_up(&store, &signer, clients, &partner_sso).await?;

        let mut serve = match &stack {
            Some(_) => None,
            None => {
                let log =
                    std::fs::File::create(std::env::temp_dir().join(format!("{prefix}serve.log")))?;
                let port = base.rsplit(':').next().unwrap_or_default();
                Some(Serve(
                    Command::new(identity)
                        .args([
                            "serve",
                            "--listen",
                            &format!("127.0.0.1:{port}"),
                            "--no-dev-idp",
                        ])
                        .env("IDENTITY_STORE", "dynamodb:")
                        .env("IDENTITY_TABLE_PREFIX", &prefix)
                        .env("IDENTITY_SECRETS", "embedded")
                        .env("IDENTITY_BASE_URL", &base)
                        .env("AWS_ENDPOINT_URL", &endpoint)
                        // Every client comes from 127.0.0.1: the per-address limits would
                        // lock the run's own replays out (they are failures, as they should
                        // be). The local stack is started with the same limits.
                        .env("IDENTITY_LIMIT_JWT", "0,0,0")
                        .env("IDENTITY_LIMIT_DEVICE", "0,0,0")
                        .env("IDENTITY_LIMIT_DEVICE_START", "0,0,0")
                        .env("RUST_LOG", "warn")
                        .stdin(Stdio::null())
                        .stdout(log.try_clone()?)
                        .stderr(log)
                        .spawn()?,
                ))
            }
        };
        let http: HttpClient = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(clients * 2)
            .build(HttpConnector::new());
        let ready = Instant::now();
        loop {
            let url = format!("{base}/.well-known/oauth-authorization-server");
            if let Ok((StatusCode::OK, _, _)) = send(&http, Method::GET, &url, &[], None).await {
                break;
            }
            if ready.elapsed() > Duration::from_secs(30) {
                return Err("the service did not answer within 30 s".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let ctx = Arc::new(Ctx {
            http,
            idp_entity: made.idp_entity.clone(),
            sp: Sp::from_base_url(&base),
            web_basic: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", made.web_id, made.web_secret))
            ),
            web_id: made.web_id.clone(),
            partner_sso,
            addon_id: made.addon_id.clone(),
            jwt_client_id: made.jwt_client_id.clone(),
            jwt_key: made.jwt_key.clone(),
            base,
            signer,
            ledger: Mutex::default(),
            requests: AtomicU64::new(0),
        });

        eprintln!("soak: {clients} clients for {seconds} s");
        let started_at = crate::now() - 1;
        let started = Instant::now();
        let until = started + Duration::from_secs(seconds);
        let rounds = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..clients)
            .map(|i| {
                let (ctx, rounds) = (ctx.clone(), rounds.clone());
                tokio::spawn(async move {
                    let email = email_of(i);
                    let (mut n, mut last_addon_sso) = (i, 0);
                    while Instant::now() < until {
                        ctx.round(&email, n, &mut last_addon_sso).await;
                        rounds.fetch_add(1, Ordering::Relaxed);
                        n += 1;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await?;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let requests = ctx.requests.load(Ordering::Relaxed);

        eprintln!("soak: audit");
        // Every held token, introspected 16 at a time.
        let held = ctx.ledger().held.clone();
        let mut introspected: Vec<(String, bool)> = Vec::with_capacity(held.len());
        for chunk in held.chunks(16) {
            let answers = futures_join(chunk.iter().map(|(t, gid)| {
                let ctx = ctx.clone();
                let (t, gid) = (t.clone(), gid.clone());
                async move { (gid, ctx.active(&t).await) }
            }))
            .await;
            for (gid, a) in answers {
                // An introspection that failed is an error already counted.
                if let Ok(active) = a {
                    introspected.push((gid, active));
                }
            }
        }
        if let Some(serve) = serve.as_mut() {
            serve.stop();
        }
        let ledger = std::mem::take(&mut *ctx.ledger());
        let (checks, problems) = audit(&store, &made, &ledger, &introspected, started_at).await?;
        let report = Report {
            clients,
            seconds: elapsed,
            rounds: rounds.load(Ordering::Relaxed),
            requests,
            ledger: &ledger,
            checks: &checks,
            problems: &problems,
            introspected: &introspected,
        };
        report.write(std::path::Path::new(md), std::path::Path::new(json_out))?;
        let errors: u64 = ledger.errors.values().sum();
        if ledger.double_spends.is_empty() && problems.is_empty() && errors == 0 {
            Ok(())
        } else {
            Err(format!(
                "{} double spends, {} inconsistencies, {errors} errors (see {md})",
                ledger.double_spends.len(),
                problems.len()
            )
            .into())
        }
    })
}

/// Runs the futures at once and gives their outputs in order.
async fn futures_join<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("an introspection task"));
    }
    out
}

/// A task aborted when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `identity serve`, stopped when dropped.
struct Serve(Child);

impl Serve {
    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.stop();
    }
}

fn count(items: &[Item], prefix: &str) -> u64 {
    items.iter().filter(|i| i.pk.starts_with(prefix)).count() as u64
}

async fn audit(
    store: &Store,
    made: &Made,
    ledger: &Ledger,
    introspected: &[(String, bool)],
    started: i64,
) -> R<(Vec<Check>, Vec<String>)> {
    // Read as of the run's start: a record the run made and that has expired since (a `jti`
    // lives only until its assertion's `exp`, a code 60 s) still counts, so each one is
    // seen to have been written and to have lived at least until the run began.
    let now = started;
    let backend = store.backend();
    let once = backend.scan(Table::Once, now).await?;
    let oauth = backend.scan(Table::OAuth, now).await?;
    let history = backend.scan(Table::LoginHistory, now).await?;
    let ok = |k: &str| ledger.ok.get(k).copied().unwrap_or(0);
    let unknown = |k: &str| ledger.unknown.get(k).copied().unwrap_or(0);
    let mut checks = Vec::new();
    let mut check = |what: &str, found: u64, ok: u64, unknown: u64| {
        checks.push(Check {
            what: what.into(),
            found,
            expected: (ok, ok + unknown),
        })
    };
    let mut problems = Vec::new();

    // Single-use records against the successes the clients saw.
    check(
        "SAML assertion IDs recorded (one per accepted Response)",
        count(&once, "saml-assertion#"),
        ok("sso"),
        unknown("sso"),
    );
    // A login's AuthnRequest waits in its browser (nothing is stored at the start); the
    // login that answers it spends its ID.
    check(
        "AuthnRequest IDs spent (one per accepted SP-initiated Response)",
        count(&once, "saml-request-spent#"),
        ok("sso"),
        unknown("sso") + unknown("saml-request"),
    );
    check(
        "JWT `jti`s recorded (one per grant given)",
        count(&once, "jwt-jti#"),
        ok("jwt"),
        unknown("jwt"),
    );
    check(
        "add-on SSO requests recorded (one per form accepted)",
        count(&once, "addon-sso#"),
        ok("addon"),
        unknown("addon"),
    );
    check(
        "authorization codes left unspent",
        count(&once, "oauth-code#"),
        0,
        unknown("code"),
    );
    check(
        "spent-code records (one per code exchanged)",
        count(&oauth, &identity_shared::oauth::code::spent_pk("")),
        ok("code"),
        unknown("code"),
    );

    check(
        "welcome links (one per account made at a first SSO login)",
        count(&once, "welcome#"),
        ledger.newcomers.len() as u64,
        unknown("sso"),
    );
    for email in &ledger.newcomers {
        match store.account_by_email(&Email::parse(email)?).await? {
            Some(a) if a.status == AccountStatus::Pending => {}
            _ => problems.push(format!(
                "{email}: no pending account after its first SSO login"
            )),
        }
    }

    // Grants, their index entries, refresh-token families.
    let grants: HashMap<String, Grant> = oauth
        .iter()
        .filter(|i| i.pk.starts_with("grant#") && i.sk == "grant")
        .map(|i| i.parse::<Grant>().map(|g| (g.gid.to_string(), g)))
        .collect::<Result<_, _>>()?;
    let mut accounts: HashMap<String, bool> = HashMap::new();
    let mut clients: HashMap<String, bool> = HashMap::new();
    for g in grants.values() {
        let a = g.account_id.to_string();
        if !accounts.contains_key(&a) {
            accounts.insert(a.clone(), store.account(&a).await?.is_some());
        }
        let c = g.client_id.to_string();
        if !clients.contains_key(&c) {
            // The OAuth client's, or the JWT bearer client's (its grants are grants too).
            let known = store.client(&c).await?.is_some() || store.jwt_client(&c).await?.is_some();
            clients.insert(c.clone(), known);
        }
        if !accounts[&a] {
            problems.push(format!("grant {} has no account", g.gid));
        }
        if !clients[&c] {
            problems.push(format!("grant {} has no client ({c})", g.gid));
        }
    }
    #[derive(serde::Deserialize)]
    struct Pointer {
        gid: String,
    }
    let mut pointed = HashSet::new();
    for i in oauth
        .iter()
        .filter(|i| i.pk.starts_with("account#") && i.sk.starts_with("grant#"))
    {
        let p: Pointer = i.parse()?;
        match grants.get(&p.gid) {
            Some(g)
                if g.is_live()
                    && i.pk == format!("account#{}", g.account_id)
                    && i.sk == format!("grant#{}", g.client_id) =>
            {
                pointed.insert(p.gid);
            }
            _ => problems.push(format!(
                "the index entry {} {} names no live grant of that account and client",
                i.pk, i.sk
            )),
        }
    }
    for g in grants.values().filter(|g| g.is_live()) {
        if !pointed.contains(g.gid.as_str()) {
            problems.push(format!("live grant {} is missing from its index", g.gid));
        }
    }
    let refresh: HashMap<String, RefreshRecord> = oauth
        .iter()
        .filter(|i| i.pk.starts_with("refresh#"))
        .map(|i| {
            i.parse::<RefreshRecord>()
                .map(|r| (i.pk["refresh#".len()..].to_string(), r))
        })
        .collect::<Result<_, _>>()?;
    let mut successors: HashMap<&str, u64> = HashMap::new();
    for (hash, r) in &refresh {
        match grants.get(r.gid.as_str()) {
            Some(g) if g.account_id == r.account_id && g.client_id == r.client_id => {}
            _ => problems.push(format!(
                "refresh token {}… has no grant of its account and client",
                &hash[..8]
            )),
        }
        match (&r.spent_at, &r.successor) {
            (Some(_), Some(next)) => {
                *successors.entry(next.as_str()).or_default() += 1;
                if !refresh.contains_key(next) {
                    problems.push(format!(
                        "spent refresh token {}… names a successor that does not exist",
                        &hash[..8]
                    ));
                }
            }
            (Some(_), None) => problems.push(format!(
                "refresh token {}… is spent without a successor",
                &hash[..8]
            )),
            _ => {}
        }
    }
    for (next, n) in &successors {
        if *n > 1 {
            problems.push(format!(
                "refresh token {}… succeeds {n} tokens",
                &next[..8.min(next.len())]
            ));
        }
    }
    let roots = refresh
        .keys()
        .filter(|h| !successors.contains_key(h.as_str()))
        .count() as u64;
    check(
        "refresh-token families (one per code or device code exchanged)",
        roots,
        ok("code") + ok("device"),
        unknown("code") + unknown("device"),
    );
    check(
        "refresh-token successors (one per rotation)",
        successors.len() as u64,
        ok("refresh"),
        unknown("refresh"),
    );
    for gid in &ledger.revoked {
        match grants.get(gid) {
            Some(g) if !g.is_live() => {}
            _ => problems.push(format!("grant {gid}, revoked by a client, is not revoked")),
        }
    }
    let revoked =
        |gid: &str| ledger.revoked.contains(gid) || grants.get(gid).is_some_and(|g| !g.is_live());
    let active_of_revoked = introspected
        .iter()
        .filter(|(gid, active)| *active && revoked(gid))
        .count() as u64;
    check(
        "tokens of revoked grants introspecting active",
        active_of_revoked,
        0,
        0,
    );
    check(
        "tokens introspected (every one the clients held)",
        introspected.len() as u64,
        ledger.held.len() as u64,
        0,
    );

    // The JWT client's login history: every attempt the clients made with a verified
    // signature.
    let attempts: Vec<LoginAttempt> = history
        .iter()
        .filter(|i| i.pk.starts_with(&format!("client#{}#", made.jwt_client_id)))
        .map(|i| i.parse::<LoginAttempt>())
        .collect::<Result<_, _>>()?;
    let n = |o: Outcome| attempts.iter().filter(|a| a.outcome == o).count() as u64;
    check(
        "login history: successes (one per JWT grant given)",
        n(Outcome::Success),
        ok("jwt"),
        unknown("jwt"),
    );
    check(
        "login history: failures (one per replayed assertion refused)",
        n(Outcome::Failure),
        ok("jwt refused"),
        unknown("jwt"),
    );
    for c in &checks {
        if !c.passed() {
            problems.push(format!(
                "{}: {} in the store, expected {}",
                c.what,
                c.found,
                range(c.expected)
            ));
        }
    }
    Ok((checks, problems))
}

fn range((lo, hi): (u64, u64)) -> String {
    if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}–{hi}")
    }
}

struct Report<'a> {
    clients: usize,
    seconds: f64,
    rounds: u64,
    requests: u64,
    ledger: &'a Ledger,
    checks: &'a [Check],
    problems: &'a [String],
    introspected: &'a [(String, bool)],
}

impl Report<'_> {
    fn write(&self, md: &std::path::Path, json_path: &std::path::Path) -> R {
        let l = self.ledger;
        let flows: u64 = l.flows.values().sum();
        let errors: u64 = l.errors.values().sum();
        let mut out = String::new();
        let date = identity_shared::clock::rfc3339(crate::now());
        out += &format!(
            "# Concurrency soak, {}\n\n`bench/soak.sh`: `identity serve` (release) on DynamoDB Local, \
{} clients at once for {:.0} s over loopback, on this machine ({}). What each client does and \
what the audit checks: `bench/src/soak.rs`.\n\n",
            &date[..10],
            self.clients,
            self.seconds,
            crate::report::machine(),
        );
        out += "| | |\n|---|---|\n";
        out += &format!(
            "| rounds (one person: SSO login + four flows) | {} |\n",
            self.rounds
        );
        out += &format!(
            "| flows finished | {flows} ({:.1}/s) |\n",
            flows as f64 / self.seconds
        );
        out += &format!(
            "| HTTP requests | {} ({:.0}/s) |\n",
            self.requests,
            self.requests as f64 / self.seconds
        );
        out += &format!("| errors | {errors} |\n");
        out += &format!("| double spends | {} |\n", l.double_spends.len());
        out += &format!("| audit inconsistencies | {} |\n\n", self.problems.len());
        out += "## Flows finished\n\n| flow | finished | per second |\n|---|---|---|\n";
        for (k, v) in &l.flows {
            out += &format!("| {k} | {v} | {:.1} |\n", *v as f64 / self.seconds);
        }
        out += "\n## Refusals that were the point (a race's loser, a replay)\n\n| step: status | count |\n|---|---|\n";
        for (k, v) in &l.refused {
            out += &format!("| {k} | {v} |\n");
        }
        out += "\n## Errors by kind\n\n";
        if l.errors.is_empty() {
            out += "None.\n";
        } else {
            out += "| step: answer | count |\n|---|---|\n";
            for (k, v) in &l.errors {
                out += &format!("| {k} | {v} |\n");
            }
        }
        out +=
            "\n## Audit of the store\n\n| check | in the store | expected | |\n|---|---|---|---|\n";
        for c in self.checks {
            out += &format!(
                "| {} | {} | {} | {} |\n",
                c.what,
                c.found,
                range(c.expected),
                if c.passed() { "ok" } else { "**FAILED**" }
            );
        }
        let active = self.introspected.iter().filter(|(_, a)| *a).count();
        out += &format!(
            "\nOf {} tokens introspected, {active} were active (tokens of live grants not yet \
rotated away); none of a revoked grant.\n",
            self.introspected.len()
        );
        for d in &l.double_spends {
            out += &format!("\n- double spend: {d}");
        }
        for p in self.problems {
            out += &format!("\n- inconsistency: {p}");
        }
        out += "\n";
        std::fs::write(md, &out)?;
        let doc = serde_json::json!({
            "date": &date[..10],
            "machine": crate::report::machine(),
            "clients": self.clients,
            "seconds": (self.seconds * 10.0).round() / 10.0,
            "rounds": self.rounds,
            "flows": l.flows,
            "flows_per_second": ((flows as f64 / self.seconds) * 10.0).round() / 10.0,
            "requests": self.requests,
            "requests_per_second": (self.requests as f64 / self.seconds).round(),
            "refused": l.refused,
            "errors": l.errors,
            "double_spends": l.double_spends,
            "checks": self.checks.iter().map(|c| serde_json::json!({
                "check": c.what, "found": c.found, "expected": [c.expected.0, c.expected.1], "passed": c.passed(),
            })).collect::<Vec<_>>(),
            "inconsistencies": self.problems,
        });
        let mut f = std::fs::File::create(json_path)?;
        writeln!(f, "{}", serde_json::to_string_pretty(&doc)?)?;
        print!("{out}");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use identity_shared::oauth::refresh::new_refresh_token;
    use identity_shared::oauth::{Grants, Scopes};

    fn made() -> Made {
        Made {
            idp_entity: String::new(),
            web_id: "web".into(),
            web_secret: String::new(),
            addon_id: String::new(),
            jwt_client_id: "jwt_soak".into(),
            jwt_key: SecretString::new(String::new()),
        }
    }

    async fn problems(
        store: &Store,
        ledger: &Ledger,
        introspected: &[(String, bool)],
    ) -> Vec<String> {
        audit(store, &made(), ledger, introspected, store.now() - 1)
            .await
            .unwrap()
            .1
    }

    /// A grant of a registered client for a new account.
    async fn grant(store: &Store) -> Grant {
        let account = store
            .create_account(
                &Email::parse("a@soak.example").unwrap(),
                None,
                AccountStatus::Active,
            )
            .await
            .unwrap();
        let (client, _) = store
            .create_client(NewClient {
                name: "web".into(),
                redirect_uris: vec![REDIRECT_URI.into()],
                scopes: vec![],
                trusted: true,
                public: false,
            })
            .await
            .unwrap();
        store
            .grant_for(
                &account.id,
                &client.client_id,
                &Scopes::parse("identity").unwrap(),
            )
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_store_that_matches_what_the_clients_saw_passes() {
        let f = identity_tests::embedded().await;
        let g = grant(&f.store).await;
        let (_, _, op) = new_refresh_token(&g, &g.scopes(), f.store.now(), None).unwrap();
        f.store.write(vec![op]).await.unwrap();
        let mut ledger = Ledger::default();
        // One token family: as after one device code exchanged.
        ledger.ok.insert("device", 1);
        assert_eq!(problems(&f.store, &ledger, &[]).await, Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_success_the_store_does_not_show_is_an_inconsistency() {
        let f = identity_tests::embedded().await;
        let mut ledger = Ledger::default();
        ledger.ok.insert("jwt", 1);
        let found = problems(&f.store, &ledger, &[]).await;
        assert!(found.iter().any(|p| p.contains("`jti`s")), "{found:?}");
        assert!(found.iter().any(|p| p.contains("history")), "{found:?}");
        // An answer that may or may not have written widens the count by one.
        ledger.ok.insert("jwt", 0);
        ledger.unknown.insert("jwt", 1);
        assert_eq!(problems(&f.store, &ledger, &[]).await, Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_live_token_of_a_revoked_grant_is_an_inconsistency() {
        let f = identity_tests::embedded().await;
        let g = grant(&f.store).await;
        f.store.revoke_grant(&g.gid).await.unwrap();
        let mut ledger = Ledger::default();
        ledger.held.push(("token".into(), g.gid.to_string()));
        let found = problems(&f.store, &ledger, &[(g.gid.to_string(), true)]).await;
        assert!(
            found.iter().any(|p| p.contains("revoked grants")),
            "{found:?}"
        );
        let fine = problems(&f.store, &ledger, &[(g.gid.to_string(), false)]).await;
        assert_eq!(fine, Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_refresh_token_without_its_grant_is_an_inconsistency() {
        let f = identity_tests::embedded().await;
        let mut ghost = grant(&f.store).await;
        ghost.gid = "ghost".to_string().into();
        let (_, _, op) = new_refresh_token(&ghost, &ghost.scopes(), f.store.now(), None).unwrap();
        f.store.write(vec![op]).await.unwrap();
        let found = problems(&f.store, &Ledger::default(), &[]).await;
        assert!(
            found.iter().any(|p| p.contains("has no grant")),
            "{found:?}"
        );
        assert!(found.iter().any(|p| p.contains("families")), "{found:?}");
    }
}
