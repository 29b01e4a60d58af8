//! The scope vocabulary, after Heroku's OAuth scopes: a small fixed set, each with the
//! sentence the consent page shows. Requests name scopes separated by spaces (RFC 6749
//! §3.3); anything outside the vocabulary is `invalid_scope`.

/// One scope and what it lets a client do, as the consent page says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeDef {
    pub name: &'static str,
    pub description: &'static str,
}

/// Every scope, in the order pages and token responses list them.
pub const VOCABULARY: &[ScopeDef] = &[
    ScopeDef {
        name: "identity",
        description: "See your email address and account id.",
    },
    ScopeDef {
        name: "read",
        description: "Read your apps and their settings, except protected configuration such as config vars.",
    },
    ScopeDef {
        name: "write",
        description: "Change your apps and their settings, except protected configuration such as config vars.",
    },
    ScopeDef {
        name: "read-protected",
        description: "Read your apps and their settings, including protected configuration such as config vars.",
    },
    ScopeDef {
        name: "write-protected",
        description: "Change your apps and their settings, including protected configuration such as config vars.",
    },
    ScopeDef {
        name: "global",
        description: "Full access to your account and to every app you can reach, as if it were you.",
    },
];

/// A client registered without `--scope` may ask only for this.
pub const DEFAULT_CLIENT_SCOPES: &[&str] = &["identity"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("unknown scope {0:?}")]
    Unknown(String),
    #[error("no scope given")]
    Empty,
}

/// A set of known scopes, kept in vocabulary order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scopes(Vec<&'static ScopeDef>);

impl Scopes {
    /// Parses a space-separated list; repeated names count once; an unknown name fails.
    pub fn parse(text: &str) -> Result<Self, ScopeError> {
        Self::from_names(text.split(' ').filter(|s| !s.is_empty()))
    }

    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, ScopeError> {
        let mut picked = [false; VOCABULARY.len()];
        for name in names {
            let i = VOCABULARY
                .iter()
                .position(|d| d.name == name)
                .ok_or_else(|| ScopeError::Unknown(name.to_string()))?;
            picked[i] = true;
        }
        Ok(Self(
            VOCABULARY
                .iter()
                .zip(picked)
                .filter_map(|(d, p)| p.then_some(d))
                .collect(),
        ))
    }

    /// Like [`Scopes::parse`], refusing an empty list.
    pub fn parse_non_empty(text: &str) -> Result<Self, ScopeError> {
        let s = Self::parse(text)?;
        if s.is_empty() {
            Err(ScopeError::Empty)
        } else {
            Ok(s)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &'static ScopeDef> + '_ {
        self.0.iter().copied()
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|d| d.name).collect()
    }

    /// Every scope of `other` is in `self`.
    pub fn contains_all(&self, other: &Scopes) -> bool {
        other.0.iter().all(|d| self.0.contains(d))
    }

    pub fn union(&self, other: &Scopes) -> Scopes {
        Self::from_names(self.names().into_iter().chain(other.names()))
            .expect("both sets hold known scopes")
    }
}

impl std::fmt::Display for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.names().join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_into_vocabulary_order_once_each() {
        let s = Scopes::parse("global identity  read identity").unwrap();
        assert_eq!(s.to_string(), "identity read global");
        assert_eq!(
            Scopes::parse("identity admin"),
            Err(ScopeError::Unknown("admin".into()))
        );
        assert!(Scopes::parse("").unwrap().is_empty());
        assert_eq!(Scopes::parse_non_empty(" "), Err(ScopeError::Empty));
        assert_eq!(
            Scopes::parse("Identity"),
            Err(ScopeError::Unknown("Identity".into())),
            "scope names are case-sensitive"
        );
    }

    #[test]
    fn subset_and_union() {
        let wide = Scopes::parse("identity read write").unwrap();
        let narrow = Scopes::parse("read").unwrap();
        assert!(wide.contains_all(&narrow));
        assert!(!narrow.contains_all(&wide));
        assert!(wide.contains_all(&Scopes::default()));
        assert_eq!(
            narrow.union(&Scopes::parse("global").unwrap()).to_string(),
            "read global"
        );
    }

    #[test]
    fn every_scope_has_a_description_for_the_consent_page() {
        for d in VOCABULARY {
            assert!(d.description.ends_with('.'), "{}", d.name);
            assert!(d.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'));
        }
    }
}
