//! API keys for machine clients: [`ApiKey`] (made once, shown once), a store of their digests
//! ([`ApiKeyStore`], [`MemoryApiKeys`]) and [`ApiKeyLayer`], which admits a request only with
//! a live key and puts the key's [`Principal`](crate::Principal) where a token's goes.
//!
//! A key reads `<prefix>_<id>_<secret>`: `acme_3f9c0b1e27d4a856_<64 hex digits>`. The prefix
//! is the service's (it makes a leaked key easy to recognise, as GitHub's `ghp_` and
//! Stripe's `sk_live_` do), the id is public (its [`ApiKeyId`], `acme_3f9c0b1e27d4a856`, names
//! the key in a list, a log line, a revocation) and the secret is 256 random bits from the
//! operating system. The store keeps each key's id, its SHA-256 digest ([`ApiKeyDigest`])
//! and its principal, never the key: a copy of the store lets nobody in.
//!
//! Why SHA-256 and not argon2: a password is guessable and needs a slow hash, a key of 256
//! random bits is not (no dictionary, nothing to try), and every request would pay argon2's
//! tens of milliseconds. GitHub stores its tokens so. No pepper: it would add a secret to
//! manage and protect nothing a 256-bit secret does not.

mod layer;
mod store;

use std::fmt;
use std::str::FromStr;

use rand::TryRng;
use sha2::{Digest, Sha256};

pub use layer::{ApiKeyAuth, ApiKeyLayer, ApiKeyResponseFuture, InvalidApiKeyHeader};
pub use store::{ApiKeyLookup, ApiKeyStore, ApiKeyStoreError, MemoryApiKeys, StoredApiKey};

/// Longest prefix an [`ApiKey`] may have.
const MAX_PREFIX_LEN: usize = 20;
/// Random bytes of a key's public id (16 hex digits: a clash is unlikely among billions).
const ID_BYTES: usize = 8;
/// Random bytes of a key's secret (64 hex digits).
const SECRET_BYTES: usize = 32;
/// Longest [`ApiKeyId`]: the prefix, `_`, the id's hex digits.
const MAX_ID_LEN: usize = MAX_PREFIX_LEN + 1 + 2 * ID_BYTES;

/// An API key: the secret a machine client sends, made by [`generate`](Self::generate).
/// Show it once to whoever asked for it, and store only its [`id`](Self::id) and
/// [`digest`](Self::digest). Its `Debug` shows the id only, and it has no `==`, which would
/// compare secrets in variable time: compare [`digest`](Self::digest)s.
///
/// ```
/// use hardening_auth::{ApiKey, ApiKeyDigest};
///
/// let key = ApiKey::generate("acme")?;
/// assert!(key.expose_secret().starts_with("acme_"));
/// assert_eq!(key.expose_secret().len(), "acme_".len() + 16 + 1 + 64);
/// assert!(key.expose_secret().starts_with(key.id().as_str()));
/// assert!(!format!("{key:?}").contains(&key.expose_secret()[22..]));
/// // What a database row keeps: the id and the digest, as text.
/// let row = (key.id().to_string(), key.digest().to_string());
/// assert_eq!(row.1.parse::<ApiKeyDigest>()?, key.digest());
/// # Ok::<(), hardening_auth::ApiKeyError>(())
/// ```
#[derive(Clone)]
pub struct ApiKey {
    text: String,
    id: ApiKeyId,
}

impl ApiKey {
    /// A new key with this prefix: 1 to 20 lower-case ASCII letters, digits and underscores,
    /// starting with a letter and not ending with `_` (`acme`, `sk_live`).
    ///
    /// # Errors
    ///
    /// [`ApiKeyError::Prefix`] for another prefix; [`ApiKeyError::Randomness`] when the
    /// operating system gives no random bytes.
    pub fn generate(prefix: &str) -> Result<Self, ApiKeyError> {
        if !is_prefix(prefix.as_bytes()) {
            return Err(ApiKeyError::Prefix(prefix.to_owned()));
        }
        let mut random = [0; ID_BYTES + SECRET_BYTES];
        rand::rngs::SysRng
            .try_fill_bytes(&mut random)
            .map_err(|e| ApiKeyError::Randomness(e.to_string()))?;
        let mut text = String::with_capacity(prefix.len() + 2 + 2 * random.len());
        text.push_str(prefix);
        text.push('_');
        push_hex(&mut text, &random[..ID_BYTES]);
        text.push('_');
        push_hex(&mut text, &random[ID_BYTES..]);
        let id = key_id(&text).ok_or(ApiKeyError::Format)?;
        Ok(Self { text, id })
    }

    /// A key given as text (one a client was given before, read from its configuration).
    ///
    /// # Errors
    ///
    /// [`ApiKeyError::Format`] unless `text` reads `<prefix>_<16 hex digits>_<64 hex
    /// digits>`, in lower case (the error does not quote it).
    pub fn parse(text: &str) -> Result<Self, ApiKeyError> {
        let id = key_id(text).ok_or(ApiKeyError::Format)?;
        Ok(Self {
            text: text.to_owned(),
            id,
        })
    }

    /// Its public id, to name it (`acme_3f9c0b1e27d4a856`).
    pub fn id(&self) -> ApiKeyId {
        self.id
    }

    /// Its digest, what a store keeps.
    pub fn digest(&self) -> ApiKeyDigest {
        ApiKeyDigest::of(&self.text)
    }

    /// The key itself, to show once to whoever asked for it (or for a client to send).
    pub fn expose_secret(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id.as_str())
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// What [`ApiKey`], [`ApiKeyId`], [`ApiKeyDigest`] and [`MemoryApiKeys`] refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiKeyError {
    /// A prefix [`ApiKey::generate`] does not take.
    #[error(
        "API key prefix {0:?}: use 1 to 20 lower-case ASCII letters, digits and underscores, \
         starting with a letter and not ending with `_` (`acme`, `sk_live`)"
    )]
    Prefix(String),
    /// Not a key (or, for [`ApiKeyId`], not a key's id) of this module's form.
    #[error(
        "not an API key of the form <prefix>_<16 hex digits>_<64 hex digits> (an id: \
         <prefix>_<16 hex digits>), lower case"
    )]
    Format,
    /// Not a digest as [`ApiKeyDigest`]'s `Display` writes it.
    #[error("not an API key digest: 64 lower-case hex digits")]
    Digest,
    /// The operating system gave no random bytes.
    #[error("no random bytes from the operating system: {0}")]
    Randomness(String),
    /// [`MemoryApiKeys::insert`] of an id it holds already.
    #[error("API key {0} is stored already")]
    Duplicate(ApiKeyId),
    /// [`MemoryApiKeys::insert`] of a principal with an empty subject, which would own
    /// nothing and be no one in the logs.
    #[error("API key {0}: its principal's subject is empty")]
    NoSubject(ApiKeyId),
}

/// The public id of an [`ApiKey`] (`acme_3f9c0b1e27d4a856`): its prefix and the 16 hex
/// digits after it. Not a secret: it names a key in lists, logs and revocations, and is what
/// a store looks keys up by. Copied, never allocated.
///
/// ```
/// use hardening_auth::ApiKeyId;
///
/// let id: ApiKeyId = "acme_3f9c0b1e27d4a856".parse()?;
/// assert_eq!(id.to_string(), "acme_3f9c0b1e27d4a856");
/// assert!("acme_3F9C0B1E27D4A856".parse::<ApiKeyId>().is_err());
/// # Ok::<(), hardening_auth::ApiKeyError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ApiKeyId {
    len: u8,
    bytes: [u8; MAX_ID_LEN],
}

impl ApiKeyId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Every constructor stores ASCII only.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }

    /// `text` as an id, if it is one: a prefix, `_`, 16 lower-case hex digits.
    fn from_text(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        let (prefix, digits) = b.split_at_checked(b.len().checked_sub(2 * ID_BYTES + 1)?)?;
        let (underscore, digits) = digits.split_first()?;
        if *underscore != b'_' || !is_prefix(prefix) || !is_hex(digits) {
            return None;
        }
        let mut bytes = [0; MAX_ID_LEN];
        bytes[..b.len()].copy_from_slice(b);
        Some(Self {
            len: u8::try_from(b.len()).ok()?,
            bytes,
        })
    }
}

impl FromStr for ApiKeyId {
    type Err = ApiKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_text(s).ok_or(ApiKeyError::Format)
    }
}

impl fmt::Display for ApiKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ApiKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ApiKeyId").field(&self.as_str()).finish()
    }
}

/// The SHA-256 digest of an [`ApiKey`]'s text: what a store keeps instead of the key.
/// `Display` and `FromStr` write and read it as 64 lower-case hex digits, for a database
/// column or a configuration value. Compared in constant time.
#[derive(Clone, Copy, Eq)]
pub struct ApiKeyDigest([u8; 32]);

impl ApiKeyDigest {
    /// The digest of a key's text.
    fn of(text: &str) -> Self {
        Self(Sha256::digest(text.as_bytes()).into())
    }
}

impl PartialEq for ApiKeyDigest {
    fn eq(&self, other: &Self) -> bool {
        crate::passwords::constant_time_eq(&self.0, &other.0)
    }
}

impl FromStr for ApiKeyDigest {
    type Err = ApiKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = crate::passwords::decode_hex(s)
            .filter(|_| is_hex(s.as_bytes()))
            .ok_or(ApiKeyError::Digest)?;
        bytes.try_into().map(Self).map_err(|_| ApiKeyError::Digest)
    }
}

impl fmt::Display for ApiKeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for ApiKeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeyDigest({self})")
    }
}

/// A key as a request presents it: its id (to look it up) and its digest (to compare with
/// the stored one). `None` for text that is not a key: refused without a lookup.
fn presented(text: &str) -> Option<(ApiKeyId, ApiKeyDigest)> {
    key_id(text).map(|id| (id, ApiKeyDigest::of(text)))
}

/// The id of a key's text, if the text is a key: `<id>_<64 lower-case hex digits>`.
fn key_id(text: &str) -> Option<ApiKeyId> {
    let (id, secret) = text.split_at_checked(text.len().checked_sub(2 * SECRET_BYTES + 1)?)?;
    let secret = secret.strip_prefix('_')?;
    if !is_hex(secret.as_bytes()) {
        return None;
    }
    ApiKeyId::from_text(id)
}

/// A prefix [`ApiKey::generate`] takes.
fn is_prefix(prefix: &[u8]) -> bool {
    matches!(prefix.first(), Some(b'a'..=b'z'))
        && prefix.len() <= MAX_PREFIX_LEN
        && prefix.last() != Some(&b'_')
        && prefix
            .iter()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
}

/// Lower-case hex digits only (what [`push_hex`] writes).
fn is_hex(digits: &[u8]) -> bool {
    digits
        .iter()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_reads_back_and_names_itself() {
        let key = ApiKey::generate("sk_live").unwrap();
        let text = key.expose_secret();
        assert_eq!(text.len(), "sk_live_".len() + 16 + 1 + 64);
        let (id, digest) = presented(text).unwrap();
        assert_eq!(id, key.id());
        assert_eq!(digest, key.digest());
        let parsed = ApiKey::parse(text).unwrap();
        assert_eq!(parsed.expose_secret(), text);
        assert_eq!((parsed.id(), parsed.digest()), (key.id(), key.digest()));
        assert_eq!(id.as_str().parse::<ApiKeyId>().unwrap(), id);
        assert_eq!(
            key.digest().to_string().parse::<ApiKeyDigest>().unwrap(),
            key.digest()
        );
        // Two keys share nothing.
        let other = ApiKey::generate("sk_live").unwrap();
        assert_ne!(other.id(), key.id());
        assert_ne!(other.digest(), key.digest());
        assert_ne!(other.expose_secret()[24..], text[24..]);
    }

    #[test]
    fn neither_debug_nor_errors_show_the_secret() {
        let key = ApiKey::generate("acme").unwrap();
        let secret = &key.expose_secret()[key.id().as_str().len() + 1..];
        let debug = format!("{key:?}");
        assert!(!debug.contains(secret), "{debug}");
        assert!(debug.contains(key.id().as_str()), "{debug}");
        let almost = format!("{}X", &key.expose_secret()[..key.expose_secret().len() - 1]);
        let err = ApiKey::parse(&almost).unwrap_err().to_string();
        assert!(!err.contains(&almost[10..]), "{err}");
    }

    #[test]
    fn only_keys_of_the_form_are_keys() {
        let key = ApiKey::generate("acme").unwrap();
        let text = key.expose_secret();
        let upper = text.to_ascii_uppercase();
        let cut = &text[..text.len() - 1];
        let longer = format!("{text}0");
        let no_prefix = &text[text.find('_').unwrap()..];
        let swapped = text.replacen('_', "-", 1);
        for bad in [
            "",
            "acme",
            upper.as_str(),
            cut,
            longer.as_str(),
            no_prefix,
            swapped.as_str(),
            " acme_3f9c0b1e27d4a856_",
        ] {
            assert!(presented(bad).is_none(), "{bad:?}");
            assert_eq!(
                ApiKey::parse(bad).err(),
                Some(ApiKeyError::Format),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn prefixes_are_checked() {
        for good in ["a", "acme", "sk_live", "k2", "abcdefghijklmnopqrst"] {
            let key = ApiKey::generate(good).unwrap();
            assert!(
                key.expose_secret().starts_with(&format!("{good}_")),
                "{good}"
            );
        }
        for bad in [
            "",
            "Acme",
            "2k",
            "_acme",
            "acme_",
            "ac-me",
            "acmé",
            "abcdefghijklmnopqrstu",
        ] {
            assert_eq!(
                ApiKey::generate(bad).err(),
                Some(ApiKeyError::Prefix(bad.to_owned())),
                "{bad}"
            );
        }
    }

    #[test]
    fn digests_parse_only_as_written() {
        let digest = ApiKey::generate("acme").unwrap().digest();
        let text = digest.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<ApiKeyDigest>().unwrap(), digest);
        for bad in [
            text.to_ascii_uppercase(),
            text[1..].to_owned(),
            format!("{text}00"),
            format!("+{}", &text[1..]),
        ] {
            assert_eq!(
                bad.parse::<ApiKeyDigest>(),
                Err(ApiKeyError::Digest),
                "{bad}"
            );
        }
    }
}
