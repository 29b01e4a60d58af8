//! Configuration from the environment: the same variable names in Lambda and locally.

use std::path::PathBuf;
use std::time::Duration;

/// Where records live (`IDENTITY_STORE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// `embedded:PATH`: a SQLite database in the folder PATH.
    Embedded(PathBuf),
    /// `dynamodb:`: DynamoDB tables named `{IDENTITY_TABLE_PREFIX}{table}`.
    DynamoDb { table_prefix: String },
}

/// Where keys come from (`IDENTITY_SECRETS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretsSpec {
    /// `embedded`: generated on first use and kept in the store's `keys` table.
    Embedded,
    /// `secretsmanager:PREFIX`: the secrets `{PREFIX}cookie`, `{PREFIX}signing`, `{PREFIX}saml-sp`.
    SecretsManager { prefix: String },
}

pub use identity_core::throttle::{Limit, Limits};

#[derive(Debug, Clone)]
pub struct Config {
    /// Public base URL without a trailing slash (`IDENTITY_BASE_URL`).
    pub base_url: String,
    pub store: StoreSpec,
    pub secrets: SecretsSpec,
    /// How long a fetched secret is used before it is fetched again.
    pub secrets_refresh: Duration,
    /// Absolute session lifetime (8 hours: Heroku SSO's rule).
    pub session_lifetime_secs: i64,
    /// The development IdP is mounted (`identity serve` only; never in a Lambda): the
    /// login page links to it.
    pub dev_idp: bool,
    /// Throttling of guessable routes (`IDENTITY_LIMIT_*`).
    pub limits: Limits,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:3000";

/// The hosts on which plain http is allowed (local use) for redirect URIs, add-on and IdP
/// SSO URLs: the loopback name and addresses, as a URI spells them.
pub fn is_loopback_host(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

/// The one rule for URLs people's browsers are sent to or post to (OAuth redirect URIs,
/// add-on SSO URLs, IdP SSO URLs): absolute, a host and no user info, https, or plain http
/// only on a loopback host (local development, RFC 8252 §7.3). The parsed URI on success.
pub fn https_or_loopback(url: &str) -> Result<http::Uri, &'static str> {
    let parsed = http::Uri::try_from(url).map_err(|_| "not an absolute URL")?;
    let authority = parsed.authority().ok_or("not an absolute URL")?;
    if authority.as_str().contains('@') {
        return Err("user info is not allowed");
    }
    let host = authority.host().to_ascii_lowercase();
    match parsed.scheme_str() {
        Some("https") if !host.is_empty() => Ok(parsed),
        Some("http") if is_loopback_host(&host) => Ok(parsed),
        Some("http") => Err("http is allowed only on a loopback host; use https"),
        _ => Err("must be https (or http on a loopback host)"),
    }
}
pub const DEFAULT_STORE: &str = "embedded:./.identity";
pub const SESSION_LIFETIME_SECS: i64 = 8 * 60 * 60;
/// How long outbox messages are kept (their bodies sealed with the cookie key, which a
/// rotation therefore keeps this long: `secrets::rotation::hold`).
pub use identity_core::outbox::OUTBOX_TTL_SECS;
/// Lifetime of an access token, in seconds.
pub const ACCESS_TOKEN_TTL: i64 = 3600;

impl Config {
    /// Reads the environment. `default_base_url` is what `IDENTITY_BASE_URL` falls back to
    /// (`identity serve --listen` passes its address).
    pub fn from_env_with_base(default_base_url: &str) -> Result<Self, ConfigError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let base_url = var("IDENTITY_BASE_URL").unwrap_or_else(|| default_base_url.to_string());
        let prefix = var("IDENTITY_TABLE_PREFIX").unwrap_or_else(|| "identity-".to_string());
        let store = parse_store(
            &var("IDENTITY_STORE").unwrap_or_else(|| DEFAULT_STORE.into()),
            &prefix,
        )?;
        let secrets = parse_secrets(&var("IDENTITY_SECRETS").unwrap_or_else(|| "embedded".into()))?;
        let refresh = match var("IDENTITY_SECRETS_REFRESH_SECS") {
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|s| (1..=3600).contains(s))
                .ok_or_else(|| {
                    ConfigError("IDENTITY_SECRETS_REFRESH_SECS must be 1..=3600".into())
                })?,
            None => 300,
        };
        let limits = Limits::from_vars(var).map_err(ConfigError)?;
        Self::new(base_url, store, secrets).map(|c| Self {
            secrets_refresh: Duration::from_secs(refresh),
            limits,
            ..c
        })
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_with_base(DEFAULT_BASE_URL)
    }

    pub fn new(
        base_url: String,
        store: StoreSpec,
        secrets: SecretsSpec,
    ) -> Result<Self, ConfigError> {
        let base_url = base_url.trim_end_matches('/').to_string();
        let parsed = http::Uri::try_from(base_url.as_str())
            .map_err(|_| ConfigError(format!("IDENTITY_BASE_URL is not a URL: {base_url}")))?;
        match (parsed.scheme_str(), parsed.host()) {
            (Some("http" | "https"), Some(_)) if parsed.query().is_none() => {}
            _ => {
                return Err(ConfigError(format!(
                    "IDENTITY_BASE_URL must be an http(s) URL: {base_url}"
                )));
            }
        }
        Ok(Self {
            base_url,
            store,
            secrets,
            secrets_refresh: Duration::from_secs(300),
            session_lifetime_secs: SESSION_LIFETIME_SECS,
            dev_idp: false,
            limits: Limits::default(),
        })
    }

    /// Cookies get `Secure` whenever the base URL is https.
    pub fn secure_cookies(&self) -> bool {
        self.base_url.starts_with("https://")
    }

    /// `{base}{path}` for a path that starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// The origin (scheme://host[:port]) of the base URL, for same-origin checks.
    pub fn origin(&self) -> String {
        let uri = http::Uri::try_from(self.base_url.as_str()).expect("validated in Config::new");
        format!(
            "{}://{}",
            uri.scheme_str().unwrap_or("http"),
            uri.authority().map(|a| a.as_str()).unwrap_or("")
        )
    }
}

pub fn parse_store(spec: &str, table_prefix: &str) -> Result<StoreSpec, ConfigError> {
    if let Some(path) = spec.strip_prefix("embedded:") {
        if path.is_empty() {
            return Err(ConfigError(
                "IDENTITY_STORE=embedded:PATH needs a path".into(),
            ));
        }
        Ok(StoreSpec::Embedded(PathBuf::from(path)))
    } else if spec == "dynamodb:" || spec == "dynamodb" {
        Ok(StoreSpec::DynamoDb {
            table_prefix: table_prefix.to_string(),
        })
    } else {
        Err(ConfigError(format!(
            "IDENTITY_STORE must be embedded:PATH or dynamodb:, not {spec:?}"
        )))
    }
}

pub fn parse_secrets(spec: &str) -> Result<SecretsSpec, ConfigError> {
    if spec == "embedded" {
        Ok(SecretsSpec::Embedded)
    } else if let Some(prefix) = spec.strip_prefix("secretsmanager:") {
        if prefix.is_empty() {
            return Err(ConfigError(
                "IDENTITY_SECRETS=secretsmanager:PREFIX needs a prefix".into(),
            ));
        }
        Ok(SecretsSpec::SecretsManager {
            prefix: prefix.to_string(),
        })
    } else {
        Err(ConfigError(format!(
            "IDENTITY_SECRETS must be embedded or secretsmanager:PREFIX, not {spec:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_specs_parse() {
        assert_eq!(
            parse_store("embedded:./x", "p-").unwrap(),
            StoreSpec::Embedded("./x".into())
        );
        assert_eq!(
            parse_store("dynamodb:", "p-").unwrap(),
            StoreSpec::DynamoDb {
                table_prefix: "p-".into()
            }
        );
        assert!(parse_store("embedded:", "p-").is_err());
        assert!(parse_store("redis://x", "p-").is_err());
    }

    #[test]
    fn secrets_specs_parse() {
        assert_eq!(parse_secrets("embedded").unwrap(), SecretsSpec::Embedded);
        assert_eq!(
            parse_secrets("secretsmanager:identity/").unwrap(),
            SecretsSpec::SecretsManager {
                prefix: "identity/".into()
            }
        );
        assert!(parse_secrets("secretsmanager:").is_err());
    }

    #[test]
    fn base_url_must_be_http() {
        let c = Config::new(
            "https://id.example.com/".into(),
            StoreSpec::Embedded(".".into()),
            SecretsSpec::Embedded,
        )
        .unwrap();
        assert_eq!(c.base_url, "https://id.example.com");
        assert!(c.secure_cookies());
        assert_eq!(c.origin(), "https://id.example.com");
        assert!(
            Config::new(
                "ftp://x".into(),
                StoreSpec::Embedded(".".into()),
                SecretsSpec::Embedded
            )
            .is_err()
        );
        assert!(
            Config::new(
                "not a url".into(),
                StoreSpec::Embedded(".".into()),
                SecretsSpec::Embedded
            )
            .is_err()
        );
    }
}
