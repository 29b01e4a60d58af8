//! OAuth clients: registered by the operator (`identity admin client add`) with exact
//! redirect URIs and the scopes they may ask for. Confidential clients get a secret shown
//! once; the store keeps its SHA-256 (the secret is 256 random bits, so a fast hash is
//! enough) and checks it in constant time. Public clients have no secret and must use PKCE,
//! as every client must.

use async_trait::async_trait;
use identity_core::digest::Digest;
use identity_core::ids::{ClientId, RedirectUri};
use serde::{Deserialize, Serialize};

use super::scope::{self, ScopeError, Scopes};
use crate::config::{https_or_loopback, is_loopback_host};
use crate::crypto;
use crate::secret::SecretString;
use crate::store::{Item, Store, StoreError, Table, record};

/// A registered client. `Debug` shows no secret: only its hash is kept, and that prints
/// `[redacted]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OAuthClient {
    pub client_id: ClientId,
    pub name: String,
    /// Compared as exact strings.
    pub redirect_uris: Vec<RedirectUri>,
    /// The scopes it may ask for, space-separated in vocabulary order.
    pub scope: String,
    /// Skips the consent page.
    pub trusted: bool,
    /// No secret (native and browser apps); PKCE is what protects its codes.
    pub public: bool,
    /// Lowercase hex SHA-256 of the secret; `None` for public clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret_sha256: Option<Digest>,
    pub created_at: i64,
}

impl OAuthClient {
    /// Must the person be asked every time, whatever was remembered or trusted? A public
    /// client redirecting to a loopback address could be any program on the machine
    /// (RFC 8252 §8.6): it never gets a code without the person's interaction.
    pub fn always_asks(&self, redirect_uri: &str) -> bool {
        self.public && is_loopback_redirect(redirect_uri)
    }

    /// The registered scopes (stored canonical; an unreadable value allows nothing).
    pub fn scopes(&self) -> Scopes {
        Scopes::parse(&self.scope).unwrap_or_default()
    }

    /// Exact string comparison: no prefix, path, port or case leniency.
    pub fn has_redirect_uri(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|r| r == uri)
    }

    /// Whether `presented` is this confidential client's secret, in constant time. Always
    /// false for a public client.
    pub fn secret_matches(&self, presented: &SecretString) -> bool {
        identity_core::client::secret_matches(
            self.secret_sha256.as_ref().map(Digest::as_str),
            presented.expose_secret(),
        )
    }

    /// What client authentication needs to know of this client.
    pub fn registered(&self) -> identity_core::client::Registered<'_> {
        identity_core::client::Registered {
            public: self.public,
            secret_sha256: self.secret_sha256.as_ref().map(Digest::as_str),
        }
    }

    /// The operator-facing JSON (no secret, no hash).
    pub fn public_json(&self) -> serde_json::Value {
        serde_json::json!({
            "client_id": self.client_id,
            "name": self.name,
            "redirect_uris": self.redirect_uris,
            "scopes": self.scopes().names(),
            "trusted": self.trusted,
            "public": self.public,
            "created_at": crate::clock::rfc3339(self.created_at),
        })
    }
}

/// What the operator registers.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub name: String,
    pub redirect_uris: Vec<String>,
    /// Scope names; empty means [`scope::DEFAULT_CLIENT_SCOPES`].
    pub scopes: Vec<String>,
    pub trusted: bool,
    pub public: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the client name must be 1 to 100 printable characters")]
    InvalidName,
    #[error("at least one --redirect-uri is needed")]
    NoRedirectUri,
    #[error("redirect URI {0:?}: {1}")]
    InvalidRedirectUri(String, &'static str),
    #[error(transparent)]
    Scope(#[from] ScopeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A redirect URI that may be registered: `https://…`, or `http://` on a loopback host
/// (RFC 8252 §7.3, for native apps and local development); no fragment, no user info.
pub fn check_redirect_uri(uri: &str) -> Result<(), &'static str> {
    if uri.len() > 2000 {
        return Err("longer than 2000 characters");
    }
    if uri.contains('#') {
        return Err("a redirect URI has no fragment");
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains whitespace");
    }
    https_or_loopback(uri).map(|_| ())
}

/// `http://localhost…`, `http://127.0.0.1…` or `http://[::1]…`.
pub fn is_loopback_redirect(uri: &str) -> bool {
    http::Uri::try_from(uri)
        .is_ok_and(|u| u.scheme_str() == Some("http") && u.host().is_some_and(is_loopback_host))
}

/// The `identity` command's own client (`identity login`): public (a program on people's
/// machines keeps no secret), no redirect URI (it uses the device flow, RFC 8628, only),
/// not trusted (the person confirms the code on `/device`), and the scopes a Heroku CLI
/// login gets: `identity` for `whoami`, `global` for the commands that act as the person.
pub const CLI_CLIENT_ID: &str = "identity-cli";
/// Its name, as the device page shows it ("Connect Identity CLI").
pub const CLI_CLIENT_NAME: &str = "Identity CLI";
/// Its scopes.
pub const CLI_CLIENT_SCOPE: &str = "identity global";

fn client_pk(id: &str) -> String {
    format!("client#{id}")
}

#[async_trait]
pub trait OAuthClients {
    /// Registers a client; returns it and, for a confidential client, its secret (shown
    /// once, never stored).
    async fn create_client(
        &self,
        new: NewClient,
    ) -> Result<(OAuthClient, Option<SecretString>), ClientError>;
    async fn client(&self, client_id: &str) -> Result<Option<OAuthClient>, StoreError>;
    /// Registers [`CLI_CLIENT_ID`] unless it exists (`identity serve` at start, and
    /// `identity admin client add-cli` for deployments); returns it as stored.
    async fn ensure_cli_client(&self) -> Result<OAuthClient, StoreError>;
    async fn list_clients(&self) -> Result<Vec<OAuthClient>, StoreError>;
}

#[async_trait]
impl OAuthClients for Store {
    async fn create_client(
        &self,
        new: NewClient,
    ) -> Result<(OAuthClient, Option<SecretString>), ClientError> {
        let name = new.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(ClientError::InvalidName);
        }
        if new.redirect_uris.is_empty() {
            return Err(ClientError::NoRedirectUri);
        }
        for uri in &new.redirect_uris {
            check_redirect_uri(uri)
                .map_err(|why| ClientError::InvalidRedirectUri(uri.clone(), why))?;
        }
        let scopes = if new.scopes.is_empty() {
            Scopes::from_names(scope::DEFAULT_CLIENT_SCOPES.iter().copied())?
        } else {
            Scopes::from_names(
                new.scopes
                    .iter()
                    .flat_map(|s| s.split(' '))
                    .filter(|s| !s.is_empty()),
            )?
        };
        if scopes.is_empty() {
            return Err(ScopeError::Empty.into());
        }
        let secret = (!new.public).then(crypto::random_token);
        let mut redirect_uris = new.redirect_uris;
        redirect_uris.dedup();
        let client = OAuthClient {
            client_id: uuid::Uuid::new_v4().to_string().into(),
            name,
            redirect_uris: redirect_uris.into_iter().map(RedirectUri::from).collect(),
            scope: scopes.to_string(),
            trusted: new.trusted,
            public: new.public,
            secret_sha256: secret
                .as_ref()
                .map(|s| Digest::new(crypto::sha256_hex(s.expose_secret().as_bytes()))),
            created_at: self.now(),
        };
        self.write(vec![record::create(
            Table::OAuth,
            Item::new(client_pk(&client.client_id), "client", &client)?,
        )])
        .await?;
        Ok((client, secret))
    }

    async fn client(&self, client_id: &str) -> Result<Option<OAuthClient>, StoreError> {
        if client_id.is_empty() || client_id.len() > 100 {
            return Ok(None);
        }
        self.get(Table::OAuth, &client_pk(client_id), "client")
            .await
    }

    async fn ensure_cli_client(&self) -> Result<OAuthClient, StoreError> {
        if let Some(existing) = self.client(CLI_CLIENT_ID).await? {
            return Ok(existing);
        }
        let client = OAuthClient {
            client_id: CLI_CLIENT_ID.into(),
            name: CLI_CLIENT_NAME.into(),
            redirect_uris: Vec::new(),
            scope: Scopes::parse(CLI_CLIENT_SCOPE)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?
                .to_string(),
            trusted: false,
            public: true,
            secret_sha256: None,
            created_at: self.now(),
        };
        let put = record::create(
            Table::OAuth,
            Item::new(client_pk(CLI_CLIENT_ID), "client", &client)?,
        );
        match self.write(vec![put]).await {
            // Registered meanwhile by another start: that one stands.
            Ok(()) | Err(StoreError::Conflict) => {}
            Err(e) => return Err(e),
        }
        self.client(CLI_CLIENT_ID)
            .await?
            .ok_or_else(|| StoreError::Corrupt("the CLI client vanished".into()))
    }

    async fn list_clients(&self) -> Result<Vec<OAuthClient>, StoreError> {
        let items = self.backend().scan(Table::OAuth, self.now()).await?;
        let mut clients: Vec<OAuthClient> = items
            .iter()
            .filter(|i| i.sk == "client" && i.pk.starts_with("client#"))
            .map(|i| i.parse())
            .collect::<Result<_, _>>()?;
        clients.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.name.cmp(&b.name)));
        Ok(clients)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(public: bool) -> (OAuthClient, Option<SecretString>) {
        let secret = (!public).then(crypto::random_token);
        (
            OAuthClient {
                client_id: "c1".into(),
                name: "n".into(),
                redirect_uris: vec!["https://app.example.com/cb".into()],
                scope: "identity".into(),
                trusted: false,
                public,
                secret_sha256: secret
                    .as_ref()
                    .map(|s| Digest::new(crypto::sha256_hex(s.expose_secret().as_bytes()))),
                created_at: 0,
            },
            secret,
        )
    }

    #[test]
    fn redirect_uri_prefix_extra_path_other_port_and_case_do_not_match() {
        let (c, _) = client(false);
        assert!(c.has_redirect_uri("https://app.example.com/cb"));
        for other in [
            "https://app.example.com/c",
            "https://app.example.com/cb/extra",
            "https://app.example.com/cb?x=1",
            "https://app.example.com:8443/cb",
            "https://APP.example.com/cb",
            "https://app.example.com/cb/",
            "http://app.example.com/cb",
        ] {
            assert!(!c.has_redirect_uri(other), "{other}");
        }
    }

    #[test]
    fn client_secret_is_checked_against_its_hash_only() {
        let (c, secret) = client(false);
        let secret = secret.unwrap();
        assert!(c.secret_matches(&secret));
        assert!(!c.secret_matches(&SecretString::new(format!("{}x", secret.expose_secret()))));
        assert!(!format!("{c:?}").contains(c.secret_sha256.as_ref().unwrap().as_str()));
        assert!(
            !c.public_json()
                .to_string()
                .contains(c.secret_sha256.as_ref().unwrap().as_str())
        );
        let (p, none) = client(true);
        assert!(none.is_none());
        assert!(!p.secret_matches(&SecretString::new("")));
        assert!(!p.secret_matches(&SecretString::new("0".repeat(64))));
    }

    #[test]
    fn registrable_redirect_uris() {
        for ok in [
            "https://app.example.com/cb",
            "https://app.example.com:8443/cb?x=1",
            "http://127.0.0.1:8080/callback",
            "http://localhost/cb",
            "http://[::1]:9000/cb",
        ] {
            assert_eq!(check_redirect_uri(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://app.example.com/cb",
            "https://app.example.com/cb#frag",
            "https://user@app.example.com/cb",
            "/relative",
            "javascript:alert(1)",
            "ftp://app.example.com/",
            "https://app.example.com/a b",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }
}
