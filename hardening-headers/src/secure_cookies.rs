//! Signed and encrypted cookies with key rotation.

use std::fmt;

use cookie::{Cookie, CookieJar, Key};

use crate::ConfigError;

/// Signs and encrypts cookies with a current key, and accepts cookies made with fallback
/// keys during a rotation (like Django's `SECRET_KEY_FALLBACKS`).
///
/// Keys are at least 64 bytes of randomness, given as hex (128 hex digits or more; make one
/// with `openssl rand -hex 64`). Weak keys (too short, or with few distinct bytes) are refused
/// at start-up.
///
/// ```
/// use hardening_headers::{Cookie, SecureCookies};
///
/// let old = "a1".repeat(8) + &"b2c3d4e5f60718293a4b5c6d7e8f9".repeat(4);
/// let new = "0f1e2d3c4b5a69788796a5b4c3d2e1f0".repeat(4);
/// let before = SecureCookies::from_hex(&old, &[])?;
/// let signed = before.sign(Cookie::new("sid", "42"));
///
/// // After rotation, cookies signed with the old key still verify...
/// let after = SecureCookies::from_hex(&new, &[&old])?;
/// assert_eq!(after.verify(signed.clone()).unwrap().value(), "42");
/// // ...and a tampered one does not.
/// let mut forged = signed;
/// forged.set_value(forged.value().replace("42", "43"));
/// assert!(after.verify(forged).is_none());
/// # Ok::<(), hardening_headers::ConfigError>(())
/// ```
pub struct SecureCookies {
    current: Key,
    fallbacks: Vec<Key>,
}

impl fmt::Debug for SecureCookies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecureCookies")
            .field("fallbacks", &self.fallbacks.len())
            .finish_non_exhaustive()
    }
}

impl SecureCookies {
    /// Keys from hex strings: the current one and any fallbacks.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WeakKey`] for a key that is not hex, is under 64 bytes or has fewer
    /// than 16 distinct bytes, naming it (`current`, `fallback 1`, …).
    pub fn from_hex(current: &str, fallbacks: &[&str]) -> Result<Self, ConfigError> {
        Ok(Self {
            current: key("current", current)?,
            fallbacks: fallbacks
                .iter()
                .enumerate()
                .map(|(i, k)| key(&format!("fallback {}", i + 1), k))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Keys from environment variables: `current_var` holds the current key, `fallbacks_var`
    /// (optional) comma-separated older keys.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WeakKey`] as [`from_hex`](Self::from_hex), naming the variable, and
    /// for a `current_var` that is not set (or not UTF-8).
    pub fn from_env(current_var: &str, fallbacks_var: &str) -> Result<Self, ConfigError> {
        let current = std::env::var(current_var).map_err(|_| ConfigError::WeakKey {
            name: current_var.to_owned(),
            why: "is not set (make a key with `openssl rand -hex 64`)".to_owned(),
        })?;
        let fallbacks = std::env::var(fallbacks_var).unwrap_or_default();
        let fallbacks: Vec<&str> = fallbacks
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        Self::from_hex(&current, &fallbacks).map_err(|e| match e {
            ConfigError::WeakKey { name, why } => ConfigError::WeakKey {
                name: if name == "current" {
                    current_var.to_owned()
                } else {
                    format!("{fallbacks_var} ({name})")
                },
                why,
            },
            other => other,
        })
    }

    /// The cookie with its value signed (readable by the client, not forgeable).
    ///
    /// The signature covers the cookie's name as well as its value, so a value signed for
    /// one cookie does not verify under another name. The signed value is the signature
    /// followed by `<length of the name>:<name><value>` (the length makes the name and value
    /// unambiguous). Cookies signed before the name was covered (plain `<signature><value>`)
    /// no longer verify.
    pub fn sign(&self, mut cookie: Cookie<'static>) -> Cookie<'static> {
        let name = cookie.name().to_owned();
        cookie.set_value(format!("{}{}", name_prefix(&name), cookie.value()));
        let mut jar = CookieJar::new();
        jar.signed_mut(&self.current).add(cookie);
        jar.get(&name)
            .cloned()
            .unwrap_or_else(|| Cookie::new(name, ""))
    }

    /// The cookie's original value if a current or fallback key signed it under this name.
    pub fn verify(&self, cookie: Cookie<'static>) -> Option<Cookie<'static>> {
        let jar = CookieJar::new();
        let mut verified = std::iter::once(&self.current)
            .chain(&self.fallbacks)
            .find_map(|key| jar.signed(key).verify(cookie.clone()))?;
        let value = verified
            .value()
            .strip_prefix(&name_prefix(verified.name()))?
            .to_owned();
        verified.set_value(value);
        Some(verified)
    }

    /// The cookie with its value encrypted and authenticated (neither readable nor forgeable).
    pub fn encrypt(&self, cookie: Cookie<'static>) -> Cookie<'static> {
        let name = cookie.name().to_owned();
        let mut jar = CookieJar::new();
        jar.private_mut(&self.current).add(cookie);
        jar.get(&name)
            .cloned()
            .unwrap_or_else(|| Cookie::new(name, ""))
    }

    /// The cookie's original value if a current or fallback key encrypted it.
    pub fn decrypt(&self, cookie: Cookie<'static>) -> Option<Cookie<'static>> {
        let jar = CookieJar::new();
        std::iter::once(&self.current)
            .chain(&self.fallbacks)
            .find_map(|key| jar.private(key).decrypt(cookie.clone()))
    }
}

/// What goes before a signed cookie's value so that the signature covers its name too.
fn name_prefix(name: &str) -> String {
    format!("{}:{name}", name.len())
}

fn key(name: &str, hex: &str) -> Result<Key, ConfigError> {
    let weak = |why: &str| ConfigError::WeakKey {
        name: name.to_owned(),
        why: why.to_owned(),
    };
    let bytes = decode_hex(hex.trim()).ok_or_else(|| weak("is not hex"))?;
    if bytes.len() < 64 {
        return Err(weak(
            "is shorter than 64 bytes (128 hex digits); make one with `openssl rand -hex 64`",
        ));
    }
    let mut seen = [false; 256];
    bytes.iter().for_each(|b| seen[usize::from(*b)] = true);
    if seen.iter().filter(|s| **s).count() < 16 {
        return Err(weak(
            "has too little entropy (fewer than 16 distinct bytes); use random bytes",
        ));
    }
    Key::try_from(&bytes[..]).map_err(|_| weak("was refused by the cookie crate"))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "00112233445566778899aabbccddeeff0123456789abcdef0f1e2d3c4b5a6978\
                      8796a5b4c3d2e1f0fedcba98765432100f0e0d0c0b0a09080706050403020100";

    #[test]
    fn weak_keys_are_refused() {
        assert!(SecureCookies::from_hex("abcd", &[]).is_err());
        assert!(SecureCookies::from_hex(&"00".repeat(64), &[]).is_err());
        assert!(SecureCookies::from_hex(&"zz".repeat(64), &[]).is_err());
        assert!(SecureCookies::from_hex(K1, &["00"]).is_err());
        assert!(SecureCookies::from_hex(K1, &[]).is_ok());
    }

    #[test]
    fn signed_value_is_bound_to_its_name() {
        let c = SecureCookies::from_hex(K1, &[]).unwrap();
        let signed = c.sign(Cookie::new("theme", "42"));
        assert_eq!(c.verify(signed.clone()).unwrap().value(), "42");
        let moved = Cookie::new("uid", signed.value().to_owned());
        assert!(
            c.verify(moved).is_none(),
            "a signed value is valid only under its name"
        );
        // Names that are prefixes of one another cannot be confused either.
        let signed = c.sign(Cookie::new("a", "b42"));
        assert!(
            c.verify(Cookie::new("ab", signed.value().to_owned()))
                .is_none()
        );
    }

    #[test]
    fn encrypt_round_trip() {
        let c = SecureCookies::from_hex(K1, &[]).unwrap();
        let enc = c.encrypt(Cookie::new("sid", "secret-value"));
        assert!(!enc.value().contains("secret-value"));
        assert_eq!(c.decrypt(enc).unwrap().value(), "secret-value");
        assert!(c.decrypt(Cookie::new("sid", "garbage")).is_none());
    }
}
