//! Settings from the environment, checked once at start-up.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::PathBuf;

/// Why the service refuses to start. Each message names the variable and the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required variable is not set.
    #[error(
        "{0} is not set: export it (at least 32 random bytes, e.g. `openssl rand -base64 48`), \
         or run scripts/demo.sh, which writes a .env with fresh demo values"
    )]
    Missing(&'static str),
    /// A secret is too short.
    #[error("{0} is {1} bytes long: use at least 32 random bytes (e.g. `openssl rand -base64 48`)")]
    TooShort(&'static str, usize),
    /// A value does not parse.
    #[error("{name} = {value:?} is not valid: {expected}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What it holds.
        value: String,
        /// What it should hold.
        expected: &'static str,
    },
    /// The JWT key was refused by the verifier (low entropy, say).
    #[error("JWT_SECRET is not a usable HMAC key: {0}")]
    JwtKey(#[from] hardening_core::auth::KeyError),
    /// The AI budget cannot be built (`AI_DAILY_TOKENS` too small).
    #[error("AI_DAILY_TOKENS: {0}")]
    Budget(#[from] hardening_core::ratelimit::CostConfigError),
    /// The session cookie's name is refused.
    #[error(transparent)]
    SessionCookie(#[from] hardening_core::auth::InvalidSessionCookie),
    /// The `HARDENING_*` settings are wrong.
    #[error(transparent)]
    Hardening(#[from] hardening_core::ConfigError),
}

/// Everything the service needs from its environment.
#[derive(Clone)]
pub struct NotesConfig {
    /// Where to listen (`BIND`, `PORT`; default 127.0.0.1:3000).
    pub addr: SocketAddr,
    /// The SQLite file (`DATABASE_PATH`; default `example-notes.sqlite3`), or `:memory:`.
    pub database: PathBuf,
    /// HS256 key for access tokens: the bytes of `JWT_SECRET` as given.
    pub jwt_secret: Vec<u8>,
    /// Key material for the encrypted session cookie (`COOKIE_KEY`, ≥ 32 bytes).
    pub cookie_key: Vec<u8>,
    /// The account that gets the `admin` role (`ADMIN_EMAIL`).
    pub admin_email: Option<String>,
    /// Tokens per user per day for `/ai/complete` (`AI_DAILY_TOKENS`; default 2,000).
    pub ai_daily_tokens: NonZeroU32,
}

impl std::fmt::Debug for NotesConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets stay out of logs and panics.
        f.debug_struct("NotesConfig")
            .field("addr", &self.addr)
            .field("database", &self.database)
            .field("jwt_secret", &"<redacted>")
            .field("cookie_key", &"<redacted>")
            .field("admin_email", &self.admin_email)
            .field("ai_daily_tokens", &self.ai_daily_tokens)
            .finish()
    }
}

impl NotesConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads settings through `var` (tests pass a map).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let secret = |name: &'static str| -> Result<Vec<u8>, ConfigError> {
            let value = var(name)
                .filter(|v| !v.is_empty())
                .ok_or(ConfigError::Missing(name))?;
            if value.len() < 32 {
                return Err(ConfigError::TooShort(name, value.len()));
            }
            Ok(value.into_bytes())
        };
        let ip: IpAddr = match var("BIND") {
            Some(v) => v.parse().map_err(|_| ConfigError::Invalid {
                name: "BIND",
                value: v,
                expected: "an IP address such as 127.0.0.1",
            })?,
            None => IpAddr::from([127, 0, 0, 1]),
        };
        let port: u16 = match var("PORT") {
            Some(v) => v.parse().map_err(|_| ConfigError::Invalid {
                name: "PORT",
                value: v,
                expected: "a port number (0 for any free port)",
            })?,
            None => 3000,
        };
        let ai_daily_tokens = match var("AI_DAILY_TOKENS") {
            Some(v) => v
                .parse::<u32>()
                .ok()
                .and_then(NonZeroU32::new)
                .filter(|n| n.get() >= 2)
                .ok_or(ConfigError::Invalid {
                    name: "AI_DAILY_TOKENS",
                    value: v,
                    expected: "a whole number of tokens, at least 2",
                })?,
            None => NonZeroU32::new(2_000).ok_or(ConfigError::Missing("AI_DAILY_TOKENS"))?,
        };
        Ok(Self {
            addr: SocketAddr::new(ip, port),
            database: var("DATABASE_PATH")
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "example-notes.sqlite3".to_owned())
                .into(),
            jwt_secret: secret("JWT_SECRET")?,
            cookie_key: secret("COOKIE_KEY")?,
            admin_email: var("ADMIN_EMAIL")
                .map(|e| e.trim().to_ascii_lowercase())
                .filter(|e| !e.is_empty()),
            ai_daily_tokens,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const KEY: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCD";

    #[test]
    fn secrets_are_required_and_long() {
        let err = NotesConfig::from_vars(vars(&[("COOKIE_KEY", KEY)])).err();
        assert!(matches!(err, Some(ConfigError::Missing("JWT_SECRET"))));
        let err = NotesConfig::from_vars(vars(&[("JWT_SECRET", "short"), ("COOKIE_KEY", KEY)]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("JWT_SECRET is 5 bytes") && err.contains("at least 32"),
            "{err}"
        );
        let ok = NotesConfig::from_vars(vars(&[("JWT_SECRET", KEY), ("COOKIE_KEY", KEY)]));
        let ok = ok.ok();
        assert_eq!(ok.as_ref().map(|c| c.addr.port()), Some(3000));
        assert!(
            !format!("{ok:?}").contains(KEY),
            "secrets never reach Debug output"
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = NotesConfig::from_vars(vars(&[
            ("JWT_SECRET", KEY),
            ("COOKIE_KEY", KEY),
            ("PORT", "eighty"),
        ]))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.starts_with("PORT = \"eighty\""), "{err}");
    }
}
