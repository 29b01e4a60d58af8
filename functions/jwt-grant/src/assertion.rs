//! The RFC 7523 assertion, checked without I/O and without reading the clock (`now` is
//! given): structure and header, the signature against a client's certificates, then the
//! claims. The grant ([`crate::grant`]) calls these in fosite's order, loading what each
//! step needs in between.
//!
//! Only the header's `alg` (from a fixed list), `kid`, `x5t` and `x5t#S256` are read:
//! `jwk`, `jku`, `x5c` and `x5u` name keys the sender chose and are never used.

pub use identity_core::jwt::{CLOCK_SKEW_SECS, Claims, MAX_LIFETIME_SECS};
use identity_shared::crypto;
use identity_shared::http::oauth::OAuthError;
use identity_shared::jwt_clients::{Certificate, KeyKind};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

/// Longest assertion accepted, in bytes (a 4096-bit RSA signature and a few claims take
/// well under 2 KiB).
pub const MAX_ASSERTION_LEN: usize = 16 * 1024;
/// Longest `jti` accepted.
pub const MAX_JTI_LEN: usize = 256;
/// The algorithms accepted, as the error message lists them.
pub const ALLOWED_ALGORITHMS: &str = "RS256, RS384, RS512, PS256 or ES256";

/// The accepted algorithms and the key each needs.
fn algorithm(name: &str) -> Option<(Algorithm, KeyKind)> {
    Some(match name {
        "RS256" => (Algorithm::RS256, KeyKind::Rsa),
        "RS384" => (Algorithm::RS384, KeyKind::Rsa),
        "RS512" => (Algorithm::RS512, KeyKind::Rsa),
        "PS256" => (Algorithm::PS256, KeyKind::Rsa),
        "ES256" => (Algorithm::ES256, KeyKind::EcP256),
        _ => return None,
    })
}

/// A parsed, not yet verified assertion. `Debug` leaves out the token (a bearer value
/// until it expires).
pub struct Assertion {
    pub alg: Algorithm,
    key: KeyKind,
    pub kid: Option<String>,
    pub x5t: Option<String>,
    pub x5t_s256: Option<String>,
    /// The header carried `jwk`, `jku`, `x5c` or `x5u` (ignored; said in the error).
    pub names_own_key: bool,
    pub claims: Claims,
    signing_input_len: usize,
    token: String,
}

impl std::fmt::Debug for Assertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assertion")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("x5t", &self.x5t)
            .field("x5t_s256", &self.x5t_s256)
            .field("names_own_key", &self.names_own_key)
            .field("claims", &self.claims)
            .field("token", &"[redacted]")
            .finish_non_exhaustive()
    }
}

fn refuse(description: impl Into<String>) -> OAuthError {
    OAuthError::invalid_grant(description)
}

fn json_object(part: &str) -> Option<Map<String, Value>> {
    let raw = crypto::b64url_decode(part)?;
    serde_json::from_slice(&raw).ok()
}

fn optional_string(map: &Map<String, Value>, name: &str) -> Result<Option<String>, OAuthError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(refuse(format!("{name} must be a string"))),
    }
}

/// A NumericDate (RFC 7519 §2): seconds since the epoch, possibly with a fraction.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, OAuthError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.floor() as i64)
            })
            .map(Some)
            .ok_or_else(|| refuse(format!("{name} is not a usable time"))),
        Some(_) => Err(refuse(format!(
            "{name} must be a number (seconds since the epoch)"
        ))),
    }
}

/// A printable excerpt of a sender-chosen value, for an error message.
fn excerpt(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(20)
        .collect()
}

/// The header's `alg`, refusing `none` and HMAC by name before anything else is read.
fn header_algorithm(header: &Map<String, Value>) -> Result<(Algorithm, KeyKind), OAuthError> {
    let alg_name = match header.get("alg") {
        Some(Value::String(a)) => a.as_str(),
        _ => return Err(refuse("the assertion's header has no alg")),
    };
    if alg_name.eq_ignore_ascii_case("none") {
        return Err(refuse(
            "unsigned assertions (alg none) are refused; sign with the key of a registered certificate",
        ));
    }
    if alg_name.to_ascii_uppercase().starts_with("HS") {
        return Err(refuse(format!(
            "HMAC algorithms ({}) are refused; sign with the private key of a registered certificate ({ALLOWED_ALGORITHMS})",
            excerpt(alg_name)
        )));
    }
    algorithm(alg_name).ok_or_else(|| {
        refuse(format!(
            "alg {} is not accepted; use {ALLOWED_ALGORITHMS}",
            excerpt(alg_name)
        ))
    })
}

/// The claims: `iss` and `sub` required, `aud` a string or strings, a bounded `jti`, and
/// the dates as numbers.
fn read_claims(payload_part: &str) -> Result<Claims, OAuthError> {
    let claims = json_object(payload_part)
        .ok_or_else(|| refuse("the assertion's claims are not base64url JSON"))?;
    let iss = optional_string(&claims, "iss")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            refuse("the assertion has no iss (it must be the JWT client's client_id)")
        })?;
    let sub = optional_string(&claims, "sub")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| refuse("the assertion has no sub (it must be the user's email)"))?;
    let aud = match claims.get("aud") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| refuse("aud must be a string or an array of strings"))?,
        Some(_) => return Err(refuse("aud must be a string or an array of strings")),
    };
    let jti = optional_string(&claims, "jti")?;
    if jti
        .as_ref()
        .is_some_and(|j| j.is_empty() || j.len() > MAX_JTI_LEN)
    {
        return Err(refuse(format!("jti must be 1 to {MAX_JTI_LEN} characters")));
    }
    Ok(Claims {
        iss,
        sub,
        aud,
        exp: numeric_date(&claims, "exp")?,
        nbf: numeric_date(&claims, "nbf")?,
        iat: numeric_date(&claims, "iat")?,
        jti,
    })
}

/// Reads the assertion: the header first, refusing any `alg` but the accepted ones before
/// looking at anything else, then the structure and the claims (`iss` and `sub` required).
pub fn parse(token: &str) -> Result<Assertion, OAuthError> {
    if token.len() > MAX_ASSERTION_LEN {
        return Err(refuse(format!(
            "the assertion is longer than {MAX_ASSERTION_LEN} bytes"
        )));
    }
    let mut parts = token.split('.');
    let header_part = parts.next().unwrap_or("");
    let header = json_object(header_part)
        .ok_or_else(|| refuse("the assertion is not a JWT: its header is not base64url JSON"))?;
    let (alg, key) = header_algorithm(&header)?;
    let (Some(payload_part), Some(signature_part), None) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(refuse(
            "the assertion must be a signed JWT: three base64url parts (JWE is not accepted)",
        ));
    };
    if signature_part.is_empty() {
        return Err(refuse("the assertion is not signed"));
    }
    if header.contains_key("crit") {
        return Err(refuse(
            "the assertion's header has crit extensions, which are not supported",
        ));
    }
    if let Some(typ) = optional_string(&header, "typ")?
        && (typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt"))
    {
        return Err(refuse("an access token is not an assertion"));
    }
    let kid = optional_string(&header, "kid")?;
    let x5t = optional_string(&header, "x5t")?;
    let x5t_s256 = optional_string(&header, "x5t#S256")?;
    let names_own_key = ["jwk", "jku", "x5c", "x5u"]
        .iter()
        .any(|h| header.contains_key(*h));

    let claims = read_claims(payload_part)?;
    Ok(Assertion {
        alg,
        key,
        kid,
        x5t,
        x5t_s256,
        names_own_key,
        claims,
        signing_input_len: header_part.len() + 1 + payload_part.len(),
        token: token.to_string(),
    })
}

impl Assertion {
    fn signing_input(&self) -> &[u8] {
        &self.token.as_bytes()[..self.signing_input_len]
    }

    fn signature(&self) -> &str {
        &self.token[self.signing_input_len + 1..]
    }

    /// The certificates that may have signed: those `x5t#S256` or `x5t` name (when given,
    /// they must name one), else those `kid` names, else all; only keys `alg` fits.
    fn candidates<'c>(&self, certs: &'c [Certificate]) -> Result<Vec<&'c Certificate>, OAuthError> {
        if certs.is_empty() {
            return Err(refuse(
                "the client has no registered certificate; add one with identity admin jwt-client add-cert",
            ));
        }
        let named: Vec<&Certificate> = if let Some(t) = &self.x5t_s256 {
            certs.iter().filter(|c| &c.x5t_s256 == t).collect()
        } else if let Some(t) = &self.x5t {
            certs.iter().filter(|c| &c.x5t == t).collect()
        } else {
            let by_kid: Vec<&Certificate> = match &self.kid {
                Some(kid) => certs.iter().filter(|c| c.is_named_by(kid)).collect(),
                None => Vec::new(),
            };
            if by_kid.is_empty() {
                certs.iter().collect()
            } else {
                by_kid
            }
        };
        if named.is_empty() {
            return Err(refuse(
                "the certificate the assertion names (x5t) is not registered for this client",
            ));
        }
        let fitting: Vec<&Certificate> = named.into_iter().filter(|c| c.key == self.key).collect();
        if fitting.is_empty() {
            return Err(refuse(format!(
                "no certificate of this client has a key for {:?}",
                self.alg
            )));
        }
        Ok(fitting)
    }

    /// Verifies the signature with the client's certificates; the one that verified it.
    /// A certificate outside its validity period does not count.
    pub fn verify_signature<'c>(
        &self,
        certs: &'c [Certificate],
        now: i64,
    ) -> Result<&'c Certificate, OAuthError> {
        let mut outside_validity = false;
        for cert in self.candidates(certs)? {
            let Some(public_key) = cert.public_key_bytes() else {
                continue;
            };
            let key = match cert.key {
                KeyKind::Rsa => DecodingKey::from_rsa_der(&public_key),
                KeyKind::EcP256 => DecodingKey::from_ec_der(&public_key),
            };
            let verified = jsonwebtoken::crypto::verify(
                self.signature(),
                self.signing_input(),
                &key,
                self.alg,
            )
            .unwrap_or(false);
            if verified {
                if cert.valid_at(now) {
                    return Ok(cert);
                }
                outside_validity = true;
            }
        }
        if outside_validity {
            return Err(refuse(
                "the certificate that signed the assertion is expired or not yet valid",
            ));
        }
        Err(refuse(format!(
            "the signature does not verify with any certificate registered for this client{}",
            if self.names_own_key {
                " (keys sent in jwk, jku, x5c or x5u headers are never used)"
            } else {
                ""
            }
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use identity_shared::http::oauth::OAuthErrorCode;
    use serde_json::json;

    fn b64(v: &Value) -> String {
        crypto::b64url(v.to_string().as_bytes())
    }

    fn token(header: Value, claims: Value) -> String {
        format!("{}.{}.c2ln", b64(&header), b64(&claims))
    }

    fn claims() -> Value {
        json!({"iss": "jwt_c", "sub": "a@example.com", "aud": "https://id.example.com", "exp": 1_100})
    }

    fn err(r: Result<Assertion, OAuthError>) -> String {
        let e = r.unwrap_err();
        assert_eq!(e.code, OAuthErrorCode::InvalidGrant);
        e.description
    }

    #[test]
    fn an_assertion_prints_without_its_token() {
        let t = token(json!({"alg": "RS256", "kid": "k1"}), claims());
        let a = parse(&t).expect("parses");
        let printed = format!("{a:?}");
        assert!(
            printed.contains("[redacted]") && printed.contains("jwt_c"),
            "{printed}"
        );
        assert!(
            !printed.contains(&t) && !printed.contains("c2ln"),
            "{printed}"
        );
    }

    #[test]
    fn none_and_hmac_are_refused_before_anything_else() {
        // The rest of the token is garbage: alg is judged first.
        let d = err(parse(&format!("{}.!!!", b64(&json!({"alg": "none"})))));
        assert!(d.contains("alg none"), "{d}");
        let d = err(parse(&format!("{}.", b64(&json!({"alg": "NONE"})))));
        assert!(d.contains("alg none"), "{d}");
        for hs in ["HS256", "HS384", "HS512", "hs256"] {
            let d = err(parse(&format!("{}.x", b64(&json!({"alg": hs})))));
            assert!(d.contains("HMAC"), "{d}");
        }
        let d = err(parse(&token(json!({"alg": "ES384"}), claims())));
        assert!(d.contains("not accepted"), "{d}");
        let d = err(parse(&token(json!({"alg": "EdDSA"}), claims())));
        assert!(d.contains("not accepted"), "{d}");
    }

    #[test]
    fn structure_is_checked() {
        assert!(err(parse("not-a-jwt")).contains("header"));
        assert!(
            err(parse(&format!(
                "{}.{}",
                b64(&json!({"alg": "RS256"})),
                b64(&claims())
            )))
            .contains("three")
        );
        assert!(
            err(parse(&format!(
                "{}.{}.",
                b64(&json!({"alg": "RS256"})),
                b64(&claims())
            )))
            .contains("not signed")
        );
        assert!(
            err(parse(&format!("{}.a.b.c.d", b64(&json!({"alg": "RS256"}))))).contains("three")
        );
        assert!(
            err(parse(&token(
                json!({"alg": "RS256", "crit": ["b64"]}),
                claims()
            )))
            .contains("crit")
        );
        assert!(
            err(parse(&token(
                json!({"alg": "ES256", "typ": "at+jwt"}),
                claims()
            )))
            .contains("access token")
        );
        assert!(
            err(parse(&format!(
                "{}.e30.c2ln",
                b64(&json!({"alg": "RS256"}))
            )))
            .contains("iss")
        );
        let long = "a".repeat(MAX_ASSERTION_LEN + 1);
        assert!(err(parse(&long)).contains("longer"));
    }

    #[test]
    fn claims_are_read_with_their_types() {
        let mut c = claims();
        c["aud"] = json!(["x", "https://id.example.com"]);
        c["nbf"] = json!(999.7);
        c["jti"] = json!("j1");
        let a = parse(&token(json!({"alg": "PS256", "kid": "k", "jwk": {}}), c)).unwrap();
        assert_eq!(a.alg, Algorithm::PS256);
        assert_eq!(a.claims.aud.len(), 2);
        assert_eq!(a.claims.nbf, Some(999));
        assert_eq!(a.claims.jti.as_deref(), Some("j1"));
        assert!(a.names_own_key);
        assert_eq!(a.signature(), "c2ln");
        let mut c = claims();
        c["exp"] = json!("soon");
        assert!(err(parse(&token(json!({"alg": "RS256"}), c))).contains("number"));
        let mut c = claims();
        c["aud"] = json!(7);
        assert!(err(parse(&token(json!({"alg": "RS256"}), c))).contains("aud"));
        let mut c = claims();
        c["jti"] = json!("j".repeat(MAX_JTI_LEN + 1));
        assert!(err(parse(&token(json!({"alg": "RS256"}), c))).contains("jti"));
        let mut c = claims();
        c.as_object_mut().unwrap().remove("sub");
        assert!(err(parse(&token(json!({"alg": "RS256"}), c))).contains("sub"));
    }
}
