//! The one reader of `Authorization: Basic` (RFC 7617): OAuth client authentication
//! (`client_secret_basic`, which form-decodes both parts on top, RFC 6749 §2.3.1) and the
//! partner API both read credentials through it.

use base64::Engine;
use http::{HeaderMap, header};

use crate::secret::SecretString;

/// Why an `Authorization` header is not usable Basic credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BasicError {
    /// More than one `Authorization` header.
    Repeated,
    /// Another scheme (`Bearer`, …).
    OtherScheme,
    /// Not `Basic base64(user:password)` in UTF-8.
    Malformed,
}

/// The user and password of the request's one `Authorization: Basic` header; `Ok(None)`
/// when there is no `Authorization` header.
pub fn credentials(headers: &HeaderMap) -> Result<Option<(String, SecretString)>, BasicError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(BasicError::Repeated);
    }
    let value = value.to_str().map_err(|_| BasicError::Malformed)?.trim();
    let (scheme, encoded) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(BasicError::OtherScheme);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| BasicError::Malformed)?;
    let decoded = SecretString::new(String::from_utf8(decoded).map_err(|_| BasicError::Malformed)?);
    let (user, password) = decoded
        .expose_secret()
        .split_once(':')
        .ok_or(BasicError::Malformed)?;
    Ok(Some((user.to_string(), SecretString::new(password))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::AUTHORIZATION, v.parse().unwrap());
        }
        h
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn basic_credentials_are_read_strictly() {
        let (user, password) = credentials(&headers(&[&format!("basic {}", b64("u:pa:ss"))]))
            .unwrap()
            .unwrap();
        assert_eq!(user, "u");
        assert_eq!(
            password.expose_secret(),
            "pa:ss",
            "the password may hold ':'"
        );
        assert_eq!(credentials(&HeaderMap::new()), Ok(None));
        let one = format!("Basic {}", b64("a:b"));
        assert_eq!(
            credentials(&headers(&[&one, &one])),
            Err(BasicError::Repeated)
        );
        assert_eq!(
            credentials(&headers(&["Bearer x"])),
            Err(BasicError::OtherScheme)
        );
        for bad in ["Basic !!!", "Basic", &format!("Basic {}", b64("no-colon"))] {
            assert_eq!(
                credentials(&headers(&[bad])),
                Err(BasicError::Malformed),
                "{bad}"
            );
        }
    }
}
