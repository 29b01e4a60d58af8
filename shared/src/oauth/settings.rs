//! The OAuth server's settings from the environment.

/// Default grace period for a concurrent retry of one refresh token, in seconds.
pub const DEFAULT_REFRESH_GRACE_SECS: i64 = 10;
/// The largest grace period accepted: a longer one would let a stolen token be replayed
/// without consequence for too long.
pub const MAX_REFRESH_GRACE_SECS: i64 = 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OAuthSettings {
    /// `IDENTITY_REFRESH_GRACE_SECS`: a spent refresh token presented again within this
    /// many seconds of its use is refused without revoking its grant (0 disables it).
    pub refresh_grace_secs: i64,
}

impl Default for OAuthSettings {
    fn default() -> Self {
        Self {
            refresh_grace_secs: DEFAULT_REFRESH_GRACE_SECS,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("configuration: {0}")]
pub struct SettingsError(pub String);

impl OAuthSettings {
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_value(std::env::var("IDENTITY_REFRESH_GRACE_SECS").ok().as_deref())
    }

    /// Parses the variable's value (`None` or blank: the default).
    pub fn from_value(value: Option<&str>) -> Result<Self, SettingsError> {
        let refresh_grace_secs = match value.map(str::trim).filter(|v| !v.is_empty()) {
            None => DEFAULT_REFRESH_GRACE_SECS,
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|s| (0..=MAX_REFRESH_GRACE_SECS).contains(s))
                .ok_or_else(|| {
                    SettingsError(format!(
                        "IDENTITY_REFRESH_GRACE_SECS must be 0..={MAX_REFRESH_GRACE_SECS}"
                    ))
                })?,
        };
        Ok(Self { refresh_grace_secs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_grace_period_is_configurable_within_bounds() {
        assert_eq!(
            OAuthSettings::from_value(None).unwrap().refresh_grace_secs,
            10
        );
        assert_eq!(
            OAuthSettings::from_value(Some(" "))
                .unwrap()
                .refresh_grace_secs,
            10
        );
        assert_eq!(
            OAuthSettings::from_value(Some("0"))
                .unwrap()
                .refresh_grace_secs,
            0
        );
        assert_eq!(
            OAuthSettings::from_value(Some("60"))
                .unwrap()
                .refresh_grace_secs,
            60
        );
        assert!(OAuthSettings::from_value(Some("61")).is_err());
        assert!(OAuthSettings::from_value(Some("-1")).is_err());
        assert!(OAuthSettings::from_value(Some("ten")).is_err());
    }
}
