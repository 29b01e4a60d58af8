//! The partner side of add-on SSO, as a small crate a partner can depend on: the token
//! formulas, the form the platform POSTs to the add-on's `sso_url`, and the verifier. It
//! depends on nothing but hashing (SHA-1, SHA-256), hex and constant-time comparison; the
//! identity service itself issues its forms with this crate, so both sides compute the
//! tokens with the same code.
//!
//! The form's fields:
//!
//! | field | value |
//! |---|---|
//! | `resource_id` | the add-on's resource UUID |
//! | `resource_token` | hex sha1(`resource_id:salt:timestamp`) |
//! | `user_scoped_resource_token` | hex sha256(`resource_id:salt:timestamp:user_id:user_email`) |
//! | `id`, `token` | the legacy pair: `id` = `resource_id`, `token` = `resource_token` |
//! | `timestamp` | unix seconds when the form was made |
//! | `nav-data` | opaque display data (base64url JSON: add-on and app names) |
//! | `email`, `user_id` | the person signing in |
//! | `app`, `context_app` | the app that owns the add-on |
//!
//! A partner verifies a request like this: read the decoded form ([`SsoForm::from_pairs`]),
//! find its own resource by [`SsoForm::resource_id`] and that resource's [`Salt`], then
//! [`verify`] with a [`ReplayGuard`] that records each request once (a conditional write in
//! the partner's database). Only the user-scoped token binds the person, so it is required;
//! `resource_token` and the legacy `token` must match as well.
//!
//! ```
//! use identity_addon_verify::{check, Salt, SsoClaims, SsoForm};
//! let salt = Salt::new("the add-on's sso_salt");
//! let claims = SsoClaims {
//!     resource_id: "0b5e1c6a-2f4d-4a3e-9c8b-7d6e5f4a3b2c".into(),
//!     timestamp: 1_700_000_000,
//!     user_id: "5a1d2c3b-4e5f-4061-8273-94a5b6c7d8e9".into(),
//!     email: "ada@example.com".into(),
//!     app: "my-app".into(),
//!     context_app: "my-app".into(),
//!     nav_data: String::new(),
//! };
//! let posted: Vec<(String, String)> = SsoForm::issue(claims, &salt)
//!     .fields()
//!     .into_iter()
//!     .map(|(k, v)| (k.to_string(), v))
//!     .collect();
//! let form = SsoForm::from_pairs(&posted).unwrap();
//! assert!(check(&form, &salt, 1_700_000_060).is_ok());
//! ```

use std::future::Future;

use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How old a request may be: five minutes.
pub const MAX_AGE_SECS: i64 = 300;
/// How far ahead of the verifier's clock a timestamp may be.
pub const FUTURE_SKEW_SECS: i64 = 60;

/// An add-on's SSO salt. `Debug` prints `[redacted]`; there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Salt(String);

impl Salt {
    pub fn new(salt: impl Into<String>) -> Self {
        Self(salt.into())
    }

    /// The salt itself, for the formulas.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Salt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where a verifier records the requests it has accepted: `first_use` answers `true` for
/// exactly one caller per key while the record lives (until `expires_at`, unix seconds),
/// `false` for every other one. A failure is a refusal.
pub trait ReplayGuard {
    type Error: std::fmt::Display;
    fn first_use(
        &self,
        key: &str,
        expires_at: i64,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;
}

/// hex(digest(`parts` joined with `:`)).
fn hex_digest<D: Digest>(parts: &[&str]) -> String {
    let mut hasher = D::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update(b":");
        }
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// `resource_token` = hex sha1(`resource_id:salt:timestamp`). SHA-1 because the published
/// formula says so; the user-scoped SHA-256 token is the one that binds the person.
pub fn resource_token(resource_id: &str, salt: &Salt, timestamp: i64) -> String {
    hex_digest::<Sha1>(&[resource_id, salt.expose(), &timestamp.to_string()])
}

/// The legacy `token` = hex sha1(`id:salt:timestamp`), the same formula as
/// [`resource_token`] with the legacy `id`.
pub fn legacy_token(id: &str, salt: &Salt, timestamp: i64) -> String {
    resource_token(id, salt, timestamp)
}

/// `user_scoped_resource_token` = hex sha256(`resource_id:salt:timestamp:user_id:user_email`).
pub fn user_scoped_resource_token(
    resource_id: &str,
    salt: &Salt,
    timestamp: i64,
    user_id: &str,
    email: &str,
) -> String {
    hex_digest::<Sha256>(&[
        resource_id,
        salt.expose(),
        &timestamp.to_string(),
        user_id,
        email,
    ])
}

/// What an SSO request says, without its tokens: what the platform signs and what the
/// verifier returns once the tokens check out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoClaims {
    pub resource_id: String,
    /// Unix seconds.
    pub timestamp: i64,
    pub user_id: String,
    pub email: String,
    pub app: String,
    pub context_app: String,
    pub nav_data: String,
}

/// The form the platform POSTs to the add-on's `sso_url`. `Debug` leaves the tokens out.
#[derive(Clone, PartialEq, Eq)]
pub struct SsoForm {
    pub claims: SsoClaims,
    pub resource_token: String,
    pub user_scoped_resource_token: String,
    /// The legacy pair; the platform always sends it, a verifier checks it when present.
    pub legacy: Option<(String, String)>,
}

impl std::fmt::Debug for SsoForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoForm")
            .field("claims", &self.claims)
            .finish_non_exhaustive()
    }
}

/// Why a verifier refused a request. The messages are safe to show the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    Malformed(&'static str),
    BadToken,
    Expired,
    FromTheFuture,
    Replayed,
    /// The consume-once store could not be reached: a refusal, never a pass.
    Store(String),
}

impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerifyError::Malformed(why) => write!(f, "the SSO request is malformed: {why}"),
            VerifyError::BadToken => f.write_str("the SSO request's tokens do not match"),
            VerifyError::Expired => f.write_str("the SSO request is older than five minutes"),
            VerifyError::FromTheFuture => {
                f.write_str("the SSO request's timestamp is in the future")
            }
            VerifyError::Replayed => f.write_str("this SSO request has already been used"),
            VerifyError::Store(_) => f.write_str("the SSO request could not be checked"),
        }
    }
}

impl std::error::Error for VerifyError {}

/// The form's field names, in the order the platform sends them.
pub const FIELDS: [&str; 11] = [
    "resource_id",
    "resource_token",
    "user_scoped_resource_token",
    "id",
    "token",
    "timestamp",
    "nav-data",
    "email",
    "user_id",
    "app",
    "context_app",
];

impl SsoForm {
    /// The platform side: the form for `claims`, tokens computed with the add-on's salt.
    pub fn issue(claims: SsoClaims, salt: &Salt) -> Self {
        let resource_token = resource_token(&claims.resource_id, salt, claims.timestamp);
        let user_scoped_resource_token = user_scoped_resource_token(
            &claims.resource_id,
            salt,
            claims.timestamp,
            &claims.user_id,
            &claims.email,
        );
        let legacy = Some((claims.resource_id.clone(), resource_token.clone()));
        Self {
            claims,
            resource_token,
            user_scoped_resource_token,
            legacy,
        }
    }

    /// The resource the request is for: a partner looks up that resource's salt by it.
    pub fn resource_id(&self) -> &str {
        &self.claims.resource_id
    }

    /// The form's fields as name/value pairs, in [`FIELDS`] order.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let c = &self.claims;
        let mut out = vec![
            ("resource_id", c.resource_id.clone()),
            ("resource_token", self.resource_token.clone()),
            (
                "user_scoped_resource_token",
                self.user_scoped_resource_token.clone(),
            ),
        ];
        if let Some((id, token)) = &self.legacy {
            out.push(("id", id.clone()));
            out.push(("token", token.clone()));
        }
        out.extend([
            ("timestamp", c.timestamp.to_string()),
            ("nav-data", c.nav_data.clone()),
            ("email", c.email.clone()),
            ("user_id", c.user_id.clone()),
            ("app", c.app.clone()),
            ("context_app", c.context_app.clone()),
        ]);
        out
    }

    /// The partner side: reads a POSTed form (pairs as a form decoder gives them). Every
    /// field of the platform's form must be there once (the legacy `id`/`token` may be
    /// absent together); a repeated field is refused. Unknown fields are ignored.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<Self, VerifyError> {
        let one = |name: &'static str| -> Result<Option<&str>, VerifyError> {
            let mut it = pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
            match (it.next(), it.next()) {
                (_, Some(_)) => Err(VerifyError::Malformed("a field is repeated")),
                (Some(v), None) if v.is_empty() => Ok(None),
                (v, None) => Ok(v.map(String::as_str)),
            }
        };
        let required = |name: &'static str| -> Result<String, VerifyError> {
            one(name)?
                .map(str::to_string)
                .ok_or(VerifyError::Malformed("a required field is missing"))
        };
        let timestamp = required("timestamp")?;
        if timestamp.is_empty()
            || timestamp.len() > 12
            || !timestamp.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(VerifyError::Malformed("timestamp is not unix seconds"));
        }
        let timestamp: i64 = timestamp
            .parse()
            .map_err(|_| VerifyError::Malformed("timestamp is not unix seconds"))?;
        let legacy = match (one("id")?, one("token")?) {
            (Some(id), Some(token)) => Some((id.to_string(), token.to_string())),
            (None, None) => None,
            _ => {
                return Err(VerifyError::Malformed(
                    "the legacy id and token come together",
                ));
            }
        };
        let claims = SsoClaims {
            resource_id: required("resource_id")?,
            timestamp,
            user_id: required("user_id")?,
            email: required("email")?,
            app: required("app")?,
            context_app: required("context_app")?,
            nav_data: one("nav-data")?.unwrap_or_default().to_string(),
        };
        check_fields(&claims)?;
        Ok(Self {
            claims,
            resource_token: required("resource_token")?,
            user_scoped_resource_token: required("user_scoped_resource_token")?,
            legacy,
        })
    }
}

/// The fields the tokens join with `:` must not be re-splittable: `user_id` is the account's
/// UUID, and no field before the email (nor the email) holds a `:`. Checked by the platform
/// before it issues a form and by the verifier before it looks at the tokens.
pub fn check_fields(c: &SsoClaims) -> Result<(), VerifyError> {
    if !is_uuid(&c.user_id) {
        return Err(VerifyError::Malformed("user_id is not an account UUID"));
    }
    if c.email.contains(':') || c.resource_id.contains(':') {
        return Err(VerifyError::Malformed("a field holds a ':'"));
    }
    Ok(())
}

/// A UUID in its hyphenated form (8-4-4-4-12 hex digits), as account ids are written.
fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Constant-time comparison (the lengths are public: hex digests of fixed length).
fn same(presented: &str, expected: &str) -> bool {
    presented.len() == expected.len() && bool::from(presented.as_bytes().ct_eq(expected.as_bytes()))
}

/// Checks the tokens and the timestamp; no store involved. Tokens are recomputed with the
/// salt and compared in constant time; all of them are compared, whatever the first says.
pub fn check(form: &SsoForm, salt: &Salt, now: i64) -> Result<(), VerifyError> {
    let c = &form.claims;
    if now - c.timestamp > MAX_AGE_SECS {
        return Err(VerifyError::Expired);
    }
    if c.timestamp - now > FUTURE_SKEW_SECS {
        return Err(VerifyError::FromTheFuture);
    }
    let mut ok = same(
        &form.user_scoped_resource_token,
        &user_scoped_resource_token(&c.resource_id, salt, c.timestamp, &c.user_id, &c.email),
    );
    ok &= same(
        &form.resource_token,
        &resource_token(&c.resource_id, salt, c.timestamp),
    );
    if let Some((id, token)) = &form.legacy {
        ok &= id == &c.resource_id;
        ok &= same(token, &legacy_token(id, salt, c.timestamp));
    }
    if ok {
        Ok(())
    } else {
        Err(VerifyError::BadToken)
    }
}

/// The consume-once key of a request: hex SHA-256 of its user-scoped token (which binds
/// the resource, the timestamp and the person). The token itself is never stored.
pub fn replay_key(form: &SsoForm) -> String {
    hex::encode(Sha256::digest(form.user_scoped_resource_token.as_bytes()))
}

/// The partner-side verifier: [`check`], then records the request once in `guard` (of any
/// number of concurrent presentations exactly one passes). The record lives just past the
/// five-minute window, after which [`check`] refuses the request anyway. Returns the
/// verified identity.
///
/// The salt is the one of the resource named by `form.resource_id()`; the caller looked it
/// up. `now` is the verifier's clock (unix seconds).
pub async fn verify<G: ReplayGuard + Sync + ?Sized>(
    guard: &G,
    salt: &Salt,
    form: &SsoForm,
    now: i64,
) -> Result<SsoClaims, VerifyError> {
    check(form, salt, now)?;
    let expires_at = form.claims.timestamp + MAX_AGE_SECS + 1;
    match guard.first_use(&replay_key(form), expires_at).await {
        Ok(true) => Ok(form.claims.clone()),
        Ok(false) => Err(VerifyError::Replayed),
        Err(e) => Err(VerifyError::Store(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn salt() -> Salt {
        Salt::new("2f97bfa52ca102f8874716e2eb1d3b4920ad0be4")
    }

    /// The published legacy example: sha1("123:2f97bfa52ca102f8874716e2eb1d3b4920ad0be4:1267597772").
    #[test]
    fn legacy_token_matches_the_published_example() {
        assert_eq!(
            legacy_token("123", &salt(), 1267597772),
            "bb466eb1d6bc345d11072c3cd25c311f21be130d"
        );
        assert_eq!(
            resource_token("123", &salt(), 1267597772),
            "bb466eb1d6bc345d11072c3cd25c311f21be130d"
        );
    }

    /// Known answers computed independently (`printf '…' | sha1sum` / `sha256sum`).
    #[test]
    fn tokens_match_known_answers() {
        let rid = "0b5e1c6a-2f4d-4a3e-9c8b-7d6e5f4a3b2c";
        assert_eq!(
            resource_token(rid, &salt(), 1700000000),
            "bfbf834de0be43d3fe718697bad7215c59cbf280"
        );
        assert_eq!(
            user_scoped_resource_token(
                rid,
                &salt(),
                1700000000,
                "5a1d2c3b-4e5f-4061-8273-94a5b6c7d8e9",
                "ada@example.com"
            ),
            "81886a4ca59d0ced86dd00d9241874be9a021aad554ebb90f4b33d38513a85a5"
        );
    }

    fn claims(now: i64) -> SsoClaims {
        SsoClaims {
            resource_id: "r-1".into(),
            timestamp: now,
            user_id: "5a1d2c3b-4e5f-4061-8273-94a5b6c7d8e9".into(),
            email: "ada@example.com".into(),
            app: "my-app".into(),
            context_app: "my-app".into(),
            nav_data: "e30".into(),
        }
    }

    fn pairs(form: &SsoForm) -> Vec<(String, String)> {
        form.fields()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }

    #[test]
    fn issued_form_round_trips_and_checks() {
        let now = 1_700_000_000;
        let form = SsoForm::issue(claims(now), &salt());
        let names: Vec<_> = form.fields().iter().map(|(k, _)| *k).collect();
        assert_eq!(names, FIELDS);
        let parsed = SsoForm::from_pairs(&pairs(&form)).unwrap();
        assert_eq!(parsed, form);
        check(&parsed, &salt(), now).unwrap();
        assert!(!format!("{parsed:?}").contains(&form.user_scoped_resource_token));
    }

    #[test]
    fn a_changed_email_or_wrong_salt_is_a_bad_token() {
        let now = 1_700_000_000;
        let mut form = SsoForm::issue(claims(now), &salt());
        assert!(matches!(
            check(&form, &Salt::new("other"), now),
            Err(VerifyError::BadToken)
        ));
        form.claims.email = "mallory@example.com".into();
        assert!(matches!(
            check(&form, &salt(), now),
            Err(VerifyError::BadToken)
        ));
        let mut form = SsoForm::issue(claims(now), &salt());
        form.legacy = Some(("other-id".into(), form.resource_token.clone()));
        assert!(matches!(
            check(&form, &salt(), now),
            Err(VerifyError::BadToken)
        ));
    }

    #[test]
    fn the_window_is_five_minutes_back_and_a_minute_ahead() {
        let t = 1_700_000_000;
        let form = SsoForm::issue(claims(t), &salt());
        check(&form, &salt(), t + MAX_AGE_SECS).unwrap();
        assert!(matches!(
            check(&form, &salt(), t + MAX_AGE_SECS + 1),
            Err(VerifyError::Expired)
        ));
        check(&form, &salt(), t - FUTURE_SKEW_SECS).unwrap();
        assert!(matches!(
            check(&form, &salt(), t - FUTURE_SKEW_SECS - 1),
            Err(VerifyError::FromTheFuture)
        ));
    }

    /// The token formula joins fields with `:`: a `user_id` that is not a UUID, or an email
    /// holding a `:`, could be re-split into other fields with the same token.
    #[test]
    fn fields_that_could_be_re_split_are_refused() {
        for (user_id, email) in [
            ("u-1", "ada@example.com"),
            ("5a1d2c3b-4e5f-4061-8273-94a5b6c7d8e9:x", "ada@example.com"),
            ("5a1d2c3b-4e5f-4061-8273-94a5b6c7d8e9", "ada:x@example.com"),
        ] {
            let mut c = claims(1_700_000_000);
            c.user_id = user_id.into();
            c.email = email.into();
            assert!(
                matches!(check_fields(&c), Err(VerifyError::Malformed(_))),
                "{user_id} {email}"
            );
            let form = SsoForm::issue(c, &salt());
            assert!(
                matches!(
                    SsoForm::from_pairs(&pairs(&form)),
                    Err(VerifyError::Malformed(_))
                ),
                "{user_id} {email}"
            );
        }
        assert!(check_fields(&claims(1_700_000_000)).is_ok());
    }

    #[test]
    fn malformed_forms_are_refused() {
        let form = SsoForm::issue(claims(1_700_000_000), &salt());
        let mut p = pairs(&form);
        p.push(("email".into(), "x@example.com".into()));
        assert!(matches!(
            SsoForm::from_pairs(&p),
            Err(VerifyError::Malformed(_))
        ));
        for missing in [
            "user_scoped_resource_token",
            "timestamp",
            "email",
            "user_id",
        ] {
            let p: Vec<_> = pairs(&form)
                .into_iter()
                .filter(|(k, _)| k != missing)
                .collect();
            assert!(
                matches!(SsoForm::from_pairs(&p), Err(VerifyError::Malformed(_))),
                "{missing}"
            );
        }
        let p: Vec<_> = pairs(&form)
            .into_iter()
            .filter(|(k, _)| k != "token")
            .collect();
        assert!(matches!(
            SsoForm::from_pairs(&p),
            Err(VerifyError::Malformed(_))
        ));
        for bad in ["-5", "1e9", " 1", "99999999999999"] {
            let p: Vec<_> = pairs(&form)
                .into_iter()
                .map(|(k, v)| {
                    if k == "timestamp" {
                        (k, bad.to_string())
                    } else {
                        (k, v)
                    }
                })
                .collect();
            assert!(
                matches!(SsoForm::from_pairs(&p), Err(VerifyError::Malformed(_))),
                "{bad}"
            );
        }
        let v3_only: Vec<_> = pairs(&form)
            .into_iter()
            .filter(|(k, _)| k != "token" && k != "id")
            .collect();
        let parsed = SsoForm::from_pairs(&v3_only).unwrap();
        check(&parsed, &salt(), 1_700_000_000).unwrap();
    }

    #[test]
    fn the_salt_never_prints() {
        assert_eq!(format!("{:?}", salt()), "[redacted]");
    }

    #[test]
    fn uuids_are_hyphenated_hex() {
        assert!(is_uuid("5a1d2c3b-4e5f-4061-8273-94a5b6c7d8e9"));
        for bad in [
            "5a1d2c3b4e5f406182739 4a5b6c7d8e9",
            "5a1d2c3b-4e5f-4061-8273-94a5b6c7d8e",
            "5a1d2c3b-4e5f-4061-8273-94a5b6c7d8eg",
            "",
        ] {
            assert!(!is_uuid(bad), "{bad}");
        }
    }

    struct Once(std::sync::Mutex<std::collections::HashSet<String>>);

    impl ReplayGuard for Once {
        type Error = String;
        async fn first_use(&self, key: &str, _: i64) -> Result<bool, String> {
            Ok(self.0.lock().unwrap().insert(key.to_string()))
        }
    }

    /// Runs a future whose guard never waits.
    fn run<T>(f: impl Future<Output = T>) -> T {
        let mut f = std::pin::pin!(f);
        let waker = std::task::Waker::noop();
        match f.as_mut().poll(&mut std::task::Context::from_waker(waker)) {
            std::task::Poll::Ready(r) => r,
            std::task::Poll::Pending => panic!("the guard is synchronous"),
        }
    }

    #[test]
    fn a_request_is_verified_once() {
        let guard = Once(Default::default());
        let now = 1_700_000_000;
        let form = SsoForm::issue(claims(now), &salt());
        assert_eq!(run(verify(&guard, &salt(), &form, now)), Ok(claims(now)));
        assert_eq!(
            run(verify(&guard, &salt(), &form, now)),
            Err(VerifyError::Replayed)
        );
    }
}
