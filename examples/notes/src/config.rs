//! Settings from the environment, checked once at start-up.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::PathBuf;

use hardening_core::auth::Passwords;

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
    /// Only one of `ADMIN_EMAIL` and `ADMIN_PASSWORD` is set.
    #[error(
        "{set} is set but {missing} is not: set both (the ADMIN_EMAIL account is created at \
         start-up with ADMIN_PASSWORD as its password; scripts/demo.sh writes both to .env), \
         or neither for no admin account"
    )]
    AdminIncomplete {
        /// The one that is set.
        set: &'static str,
        /// The one that is missing.
        missing: &'static str,
    },
    /// `ADMIN_PASSWORD` is too weak (its value is never shown).
    #[error(
        "ADMIN_PASSWORD is not accepted: it must be {0}; use a long random passphrase \
         (e.g. `openssl rand -base64 18`)"
    )]
    AdminPassword(&'static str),
    /// `ADMIN_PASSWORD` could not be hashed at start-up.
    #[error("ADMIN_PASSWORD could not be hashed: {0}")]
    AdminPasswordHash(hardening_core::auth::PasswordError),
    /// The JWT key was refused by the verifier (low entropy, say).
    #[error("JWT_SECRET is not a usable HMAC key: {0}")]
    JwtKey(#[from] hardening_core::auth::KeyError),
    /// The AI budget cannot be built (`AI_DAILY_TOKENS` too small).
    #[error("AI_DAILY_TOKENS: {0}")]
    Budget(#[from] hardening_core::ratelimit::CostConfigError),
    /// The session cookie's name is refused.
    #[error(transparent)]
    SessionCookie(#[from] hardening_core::auth::InvalidSessionCookie),
    /// The session issuer does not fit the auth layer.
    #[error(transparent)]
    Sessions(#[from] hardening_core::auth::SessionConfigError),
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
    /// HS256 key for session tokens (in the login answer and the session cookie): the bytes
    /// of `JWT_SECRET` as given, at least 32.
    pub jwt_secret: Vec<u8>,
    /// The account that gets the `admin` role (`ADMIN_EMAIL`, keyed as logins are: case
    /// folded, see `LoginThrottle::account_key`). It is created at start-up, its password is
    /// [`admin_password`](Self::admin_password) and nothing else, and registering the address
    /// changes nothing: the role cannot be had by signing up.
    pub admin_email: Option<String>,
    /// The admin account's password (`ADMIN_PASSWORD`; required with `ADMIN_EMAIL`, the same
    /// strength rules as registration).
    pub admin_password: Option<String>,
    /// Tokens per user per day for `/ai/complete` (`AI_DAILY_TOKENS`; default 2,000).
    pub ai_daily_tokens: NonZeroU32,
    /// Password hashing for sign-up and login (`Passwords::new()`: OWASP's argon2id, one
    /// hash in flight per CPU). Clones share its permits: the app hashes with a clone.
    pub passwords: Passwords,
}

impl std::fmt::Debug for NotesConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets stay out of logs and panics.
        f.debug_struct("NotesConfig")
            .field("addr", &self.addr)
            .field("database", &self.database)
            .field("jwt_secret", &"<redacted>")
            .field("admin_email", &self.admin_email)
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| "<redacted>"),
            )
            .field("ai_daily_tokens", &self.ai_daily_tokens)
            .field("passwords", &self.passwords)
            .finish()
    }
}

/// A secret of at least 32 bytes (HS256's key size).
fn long_enough(name: &'static str, secret: &[u8]) -> Result<(), ConfigError> {
    if secret.len() < 32 {
        return Err(ConfigError::TooShort(name, secret.len()));
    }
    Ok(())
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
            long_enough(name, value.as_bytes())?;
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
                // One request may reserve half: at least a one-word prompt and one token.
                .filter(|n| n.get() >= 4)
                .ok_or(ConfigError::Invalid {
                    name: "AI_DAILY_TOKENS",
                    value: v,
                    expected: "a whole number of tokens, at least 4",
                })?,
            None => NonZeroU32::new(2_000).ok_or(ConfigError::Missing("AI_DAILY_TOKENS"))?,
        };
        let admin_email = var("ADMIN_EMAIL")
            .map(|e| hardening_core::ratelimit::LoginThrottle::account_key(&e))
            .filter(|e| !e.is_empty());
        let admin_password = var("ADMIN_PASSWORD").filter(|p| !p.is_empty());
        admin_account(admin_email.as_deref(), admin_password.as_deref())?;
        Ok(Self {
            addr: SocketAddr::new(ip, port),
            database: var("DATABASE_PATH")
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "example-notes.sqlite3".to_owned())
                .into(),
            jwt_secret: secret("JWT_SECRET")?,
            admin_email,
            admin_password,
            ai_daily_tokens,
            passwords: Passwords::new(),
        })
    }
}

/// The admin account, `ADMIN_EMAIL` and `ADMIN_PASSWORD` checked: both or neither, a
/// plausible address, a password registration would accept.
pub(crate) fn admin_account<'a>(
    email: Option<&'a str>,
    password: Option<&'a str>,
) -> Result<Option<(&'a str, &'a str)>, ConfigError> {
    match (email, password) {
        (Some(email), Some(password)) => {
            if crate::email_shape(email, &()).is_err() {
                return Err(ConfigError::Invalid {
                    name: "ADMIN_EMAIL",
                    value: email.to_owned(),
                    expected: "an email address such as admin@example.com",
                });
            }
            if let Some(rule) = crate::weak_password(&crate::normalised(password), email) {
                return Err(ConfigError::AdminPassword(rule));
            }
            Ok(Some((email, password)))
        }
        (Some(_), None) => Err(ConfigError::AdminIncomplete {
            set: "ADMIN_EMAIL",
            missing: "ADMIN_PASSWORD",
        }),
        (None, Some(_)) => Err(ConfigError::AdminIncomplete {
            set: "ADMIN_PASSWORD",
            missing: "ADMIN_EMAIL",
        }),
        (None, None) => Ok(None),
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
        let err = NotesConfig::from_vars(vars(&[])).err();
        assert!(matches!(err, Some(ConfigError::Missing("JWT_SECRET"))));
        let err = NotesConfig::from_vars(vars(&[("JWT_SECRET", "short")]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("JWT_SECRET is 5 bytes") && err.contains("at least 32"),
            "{err}"
        );
        let ok = NotesConfig::from_vars(vars(&[("JWT_SECRET", KEY)]));
        let ok = ok.ok();
        assert_eq!(ok.as_ref().map(|c| c.addr.port()), Some(3000));
        assert!(
            !format!("{ok:?}").contains(KEY),
            "secrets never reach Debug output"
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = NotesConfig::from_vars(vars(&[("JWT_SECRET", KEY), ("PORT", "eighty")]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("PORT = \"eighty\""), "{err}");
    }

    #[test]
    fn the_admin_account_needs_a_strong_password() {
        let err = |pairs: &[(&str, &str)]| {
            let base = [("JWT_SECRET", KEY)];
            let all: Vec<(&str, &str)> = base.iter().chain(pairs).copied().collect();
            NotesConfig::from_vars(vars(&all))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let missing = err(&[("ADMIN_EMAIL", "admin@example.com")]);
        assert!(
            missing.starts_with("ADMIN_EMAIL is set but ADMIN_PASSWORD is not"),
            "{missing}"
        );
        let alone = err(&[("ADMIN_PASSWORD", "a long admin passphrase")]);
        assert!(
            alone.starts_with("ADMIN_PASSWORD is set but ADMIN_EMAIL is not"),
            "{alone}"
        );
        let weak = err(&[
            ("ADMIN_EMAIL", "admin@example.com"),
            ("ADMIN_PASSWORD", "hunter2"),
        ]);
        assert!(
            weak.contains("at least 10 characters") && !weak.contains("hunter2"),
            "{weak}"
        );
        let the_address = err(&[
            ("ADMIN_EMAIL", "administrator@example.com"),
            ("ADMIN_PASSWORD", "Administrator@Example.com"),
        ]);
        assert!(
            the_address.contains("not the email address") && !the_address.contains("Example"),
            "{the_address}"
        );
        let bad_email = err(&[
            ("ADMIN_EMAIL", "admin"),
            ("ADMIN_PASSWORD", "a long admin passphrase"),
        ]);
        assert!(
            bad_email.starts_with("ADMIN_EMAIL = \"admin\""),
            "{bad_email}"
        );
        let ok = NotesConfig::from_vars(vars(&[
            ("JWT_SECRET", KEY),
            ("ADMIN_EMAIL", " Admin@Example.com "),
            ("ADMIN_PASSWORD", "a long admin passphrase"),
        ]))
        .ok();
        assert_eq!(
            ok.as_ref().and_then(|c| c.admin_email.as_deref()),
            Some("admin@example.com")
        );
        assert!(!format!("{ok:?}").contains("a long admin passphrase"));
    }
}
