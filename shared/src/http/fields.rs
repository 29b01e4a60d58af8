//! The one reader of `application/x-www-form-urlencoded` text (form bodies and queries).
//! Every route reads its parameters through it: as pairs in order ([`read_pairs`], for
//! readers that say which parameter repeated, with [`one`]) or as a map that refuses any
//! repeated name ([`read_unique`]: RFC 6749 §3.2, "parameters MUST NOT be included more than
//! once", and every form of ours). Single components (an HTTP Basic user id, RFC 6749
//! §2.3.1) are decoded strictly by [`decode_component`].

use std::collections::HashMap;

/// Most parameters in one form or query: our largest form has about fifteen.
pub const MAX_FIELDS: usize = 100;

/// Why form text was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldsError {
    /// Not form-encoded text (bad UTF-8 after decoding).
    Unreadable,
    /// This name appears more than once.
    Repeated(String),
    /// More than [`MAX_FIELDS`] parameters.
    TooMany,
}

/// The pairs, in order, repeats kept; counted before any is decoded.
pub fn read_pairs(raw: &[u8]) -> Result<Vec<(String, String)>, FieldsError> {
    if raw.split(|b| *b == b'&').filter(|p| !p.is_empty()).count() > MAX_FIELDS {
        return Err(FieldsError::TooMany);
    }
    serde_urlencoded::from_bytes(raw).map_err(|_| FieldsError::Unreadable)
}

/// The fields as a map; a name that appears twice (even with an empty value) is refused.
pub fn read_unique(raw: &[u8]) -> Result<HashMap<String, String>, FieldsError> {
    let mut out = HashMap::new();
    for (k, v) in read_pairs(raw)? {
        if out.contains_key(&k) {
            return Err(FieldsError::Repeated(k));
        }
        out.insert(k, v);
    }
    Ok(out)
}

pub use identity_core::authorize::{One, one};

/// The parameter's one value: `None` when it is missing or repeated.
pub fn value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    match one(pairs, name) {
        One::Value(v) => Some(v),
        One::Missing | One::Repeated => None,
    }
}

/// Decodes one form-encoded component: `+` is a space, `%XX` a byte. A `%` not followed by
/// two hex digits, or bytes that are not UTF-8, make it unreadable (`None`).
pub fn decode_component(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let escapes_ok = bytes.iter().enumerate().all(|(i, b)| {
        *b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if !escapes_ok {
        return None;
    }
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_name_is_refused_even_when_empty() {
        assert_eq!(
            read_unique(b"a=1&a="),
            Err(FieldsError::Repeated("a".into()))
        );
        let ok = read_unique(b"a=1&b=x%20y&c=").unwrap();
        assert_eq!(ok["b"], "x y");
        assert_eq!(ok["c"], "");
    }

    #[test]
    fn one_tells_missing_repeated_and_single() {
        let pairs = read_pairs(b"a=1&b=2&b=3").unwrap();
        assert_eq!(one(&pairs, "a"), One::Value("1"));
        assert_eq!(one(&pairs, "b"), One::Repeated);
        assert_eq!(one(&pairs, "c"), One::Missing);
        assert_eq!(value(&pairs, "a"), Some("1"));
        assert_eq!(value(&pairs, "b"), None, "repeated");
        assert_eq!(value(&pairs, "c"), None, "missing");
    }

    #[test]
    fn components_decode_strictly() {
        assert_eq!(decode_component("a+b%2Fc").as_deref(), Some("a b/c"));
        assert_eq!(decode_component("%zz"), None);
        assert_eq!(decode_component("%4"), None);
        assert_eq!(decode_component("%FF"), None, "not UTF-8");
        assert_eq!(decode_component("100%25").as_deref(), Some("100%"));
    }

    #[test]
    fn more_than_max_fields_parameters_are_refused_before_decoding() {
        let at: Vec<String> = (0..MAX_FIELDS).map(|i| format!("p{i}=v")).collect();
        assert_eq!(
            read_pairs(at.join("&").as_bytes()).unwrap().len(),
            MAX_FIELDS
        );
        let over = format!("{}&extra=1", at.join("&"));
        assert_eq!(read_pairs(over.as_bytes()), Err(FieldsError::TooMany));
        assert_eq!(read_unique(over.as_bytes()), Err(FieldsError::TooMany));
        // Empty pieces (`a=1&&&b=2`) are not parameters.
        let sparse = format!("{}{}", "&".repeat(10 * MAX_FIELDS), at.join("&"));
        assert_eq!(read_pairs(sparse.as_bytes()).unwrap().len(), MAX_FIELDS);
    }
}
