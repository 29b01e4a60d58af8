//! The protocol's identifiers as their own types, so one cannot be passed for another: a
//! client id, a grant id, an account id, and a redirect URI (kept as the exact string it was
//! registered or presented as: redirect URIs are compared exactly, RFC 6749 §3.1.2). Each
//! serializes as its plain string (records keep their shape), reads as a `&str`, and compares
//! with strings.

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_string())
            }
        }

        impl From<&String> for $name {
            fn from(value: &String) -> Self {
                Self(value.clone())
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                self == &other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

id_type!(
    /// An OAuth client's id.
    ClientId
);
id_type!(
    /// A grant's id (`gid` in access tokens).
    GrantId
);
id_type!(
    /// An account's id (the `sub` of its tokens).
    AccountId
);
id_type!(
    /// A redirect URI, exactly as registered or presented.
    RedirectUri
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_serialize_as_their_strings_and_compare_with_strings() {
        let g = GrantId::new("g-1");
        assert_eq!(serde_json::to_string(&g).unwrap(), "\"g-1\"");
        assert_eq!(serde_json::from_str::<GrantId>("\"g-1\"").unwrap(), g);
        assert_eq!(g, "g-1");
        assert_eq!(g.to_string(), "g-1");
        let s: &str = &g;
        assert_eq!(s, "g-1");
    }

    #[test]
    fn a_redirect_uri_keeps_its_exact_string() {
        let a = RedirectUri::new("https://app.example.com/cb");
        assert_ne!(a, RedirectUri::new("https://app.example.com/cb/"));
        assert_ne!(a, RedirectUri::new("https://APP.example.com/cb"));
        assert_eq!(a.as_str(), "https://app.example.com/cb");
    }
}
