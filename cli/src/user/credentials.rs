//! The credentials file: `$XDG_CONFIG_HOME/identity/credentials.json` (default
//! `~/.config/identity/credentials.json`), in a 0700 directory, itself 0600, replaced
//! atomically (a new file beside it, synced, renamed over), keyed by server so several can
//! be used. `Debug` never shows a token.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Failure;

/// What one login left for one server.
#[derive(Clone, Serialize, Deserialize)]
pub struct Login {
    pub email: String,
    pub access_token: String,
    pub refresh_token: String,
    /// Unix seconds when the access token expires.
    pub expires_at: i64,
    pub client_id: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("email", &self.email)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The whole file.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Credentials {
    /// The server of the last login: used when neither `--server` nor `IDENTITY_SERVER`
    /// names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_server: Option<String>,
    #[serde(default)]
    pub servers: BTreeMap<String, Login>,
}

/// Where the file lives.
pub fn path() -> Result<PathBuf, Failure> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .ok_or_else(|| Failure("neither XDG_CONFIG_HOME nor HOME is set".into()))?;
    Ok(config.join("identity").join("credentials.json"))
}

impl Credentials {
    /// The file's content; an absent file is no credentials.
    pub fn load() -> Result<Self, Failure> {
        let path = path()?;
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|_| {
                Failure(format!(
                    "{} is not a credentials file this version reads; remove it and run identity login",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(Failure(format!("{}: {e}", path.display()))),
        }
    }

    /// Writes the file atomically, 0600 in a 0700 directory.
    pub fn save(&self) -> Result<(), Failure> {
        let path = path()?;
        let dir = path
            .parent()
            .ok_or_else(|| Failure("the credentials path has no folder".into()))?;
        let fail = |what: &Path, e: std::io::Error| Failure(format!("{}: {e}", what.display()));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| fail(dir, e))?;
        // A folder made earlier by someone else's umask is narrowed too.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| fail(dir, e))?;
        let body =
            serde_json::to_vec_pretty(self).map_err(|e| Failure(format!("credentials: {e}")))?;
        let temp = dir.join(format!(".credentials.{}.tmp", std::process::id()));
        let _ = std::fs::remove_file(&temp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .map_err(|e| fail(&temp, e))?;
        let written = file.write_all(&body).and_then(|()| file.sync_all());
        drop(file);
        if let Err(e) = written.and_then(|()| std::fs::rename(&temp, &path)) {
            let _ = std::fs::remove_file(&temp);
            return Err(fail(&path, e));
        }
        Ok(())
    }
}
