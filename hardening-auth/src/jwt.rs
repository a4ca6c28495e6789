//! JWT verification per RFC 8725 (JSON Web Token Best Current Practices).

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind};
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::jwks::{Jwks, JwksSource};
use crate::{JwksFetcher, JwksPolicy};

/// Why a token was refused. Kept for the log; the client only ever sees RFC 6750's
/// `invalid_token`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// Longer than the configured maximum.
    #[error("token longer than the maximum")]
    TooLong,
    /// Not three non-empty base64url segments.
    #[error("token is not three base64url segments")]
    Malformed,
    /// The header is not a JSON object, or repeats a member (at any depth).
    #[error("token header is not a JSON object without duplicate members")]
    BadHeader,
    /// `alg` is `none` or not one this library knows.
    #[error("token algorithm is none or unknown")]
    UnsupportedAlgorithm,
    /// A `crit` header: none of its extensions are understood, so the token must be refused.
    #[error("token has a crit header")]
    CritHeader,
    /// `jku`, `x5u`, `x5c` or `jwk`: keys named by the token are never fetched or trusted.
    #[error("token names its own key (jku, x5u, x5c or jwk)")]
    ExternalKeyReference,
    /// No configured key for the token's `kid`.
    #[error("no key for the token's kid")]
    UnknownKey,
    /// The token's `alg` is not the one algorithm its key is for.
    #[error("token algorithm does not match its key")]
    AlgorithmMismatch,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// The payload is not a JSON object, or repeats a member (at any depth), or has a
    /// member serde_json reads as something else (`$serde_json::private::…`).
    #[error("token payload is not a JSON object without duplicate claims")]
    BadPayload,
    /// No `exp` claim.
    #[error("token has no exp")]
    MissingExp,
    /// A time claim that is not a number, or `iss`/`sub`/`jti` that is not a string.
    #[error("claim {0} has the wrong type")]
    BadClaimType(&'static str),
    /// No `jti` claim, or an empty one, with [`JwtVerifierBuilder::require_jti`]: the token
    /// could not be revoked.
    #[error("token has no jti")]
    MissingJti,
    /// No `sub` claim, or an empty one: the token names no principal.
    #[error("token has no sub")]
    MissingSubject,
    /// Past `exp`.
    #[error("token expired")]
    Expired,
    /// Before `nbf`.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iat` in the future.
    #[error("token issued in the future")]
    IssuedInFuture,
    /// Older (by `iat`) than the maximum age, or no `iat` when a maximum age is set.
    #[error("token too old")]
    TooOld,
    /// `iss` is not the configured issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not include the configured audience, or is present when no audience is
    /// configured (RFC 7519 §4.1.3).
    #[error("wrong audience")]
    WrongAudience,
    /// `typ` is not the configured type or, with none configured, names another kind of JWT
    /// (a logout token, a security event, a DPoP proof, …).
    #[error("wrong token type")]
    WrongType,
    /// The claims do not deserialize into the requested type.
    #[error("claims do not match the expected shape")]
    Claims,
}

/// A key-set problem found at start-up.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// An HMAC secret shorter than its hash (32 bytes for `HS256`, 48 for `HS384`, 64 for
    /// `HS512`; RFC 7518 §3.2), with too little variety to be random, or a well-known
    /// example secret (jwt.io's, say).
    #[error("HMAC secret {name}: {why}")]
    WeakSecret {
        /// Which key.
        name: String,
        /// What is wrong.
        why: String,
    },
    /// A key whose algorithm is of another family (an RSA key for HS256, say).
    #[error("key {name}: algorithm {alg:?} does not fit this kind of key")]
    WrongFamily {
        /// Which key.
        name: String,
        /// The algorithm asked for.
        alg: Algorithm,
    },
    /// A PEM that does not parse.
    #[error("key {name}: {why}")]
    BadPem {
        /// Which key.
        name: String,
        /// What is wrong.
        why: String,
    },
    /// No key, several keys without `kid`, or two keys with one `kid`.
    #[error("key set: {0}")]
    KeySet(String),
    /// A leeway over five minutes.
    #[error("leeway must be at most 300 seconds")]
    Leeway,
    /// A [`typ`](JwtVerifierBuilder::typ) that names no media type: empty, blank,
    /// `application/` alone, or with characters a media type cannot have.
    #[error("typ {0}")]
    Typ(String),
    /// The JWKS URL, its policy, or the set it serves (at start-up).
    #[error("JWKS {0}")]
    Jwks(String),
    /// An [`issuer`](JwtVerifierBuilder::issuer) or [`audience`](JwtVerifierBuilder::audience)
    /// that is empty or has spaces around it: no token carries it, so every token would be
    /// refused.
    #[error(
        "{name} {value:?} {why}, so every token would be refused: give the {name} your tokens \
         carry, or leave .{name}() out"
    )]
    Expected {
        /// `issuer` or `audience`.
        name: &'static str,
        /// The value given.
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A [`max_token_len`](JwtVerifierBuilder::max_token_len) shorter than the shortest
    /// token that can verify: every token would be refused.
    #[error(
        "max_token_len({0}) is shorter than the shortest token that can verify ({min} bytes), \
         so every token would be refused: leave .max_token_len() out for the 8 KiB default, \
         or give the length of your longest token with room to spare",
        min = MIN_TOKEN_LEN
    )]
    MaxTokenLen(usize),
    /// A [`max_age`](JwtVerifierBuilder::max_age) under one second: counted in whole
    /// seconds, it would be zero, and every token issued longer ago than the leeway would be
    /// refused (tokens would stop working seconds after they are issued).
    #[error(
        "max_age is under one second, so every token issued more than the leeway ago would be \
         refused: give the oldest a token may be (at least 1s), or leave .max_age() out to \
         accept any age until exp"
    )]
    MaxAge,
}

hardening_errors::debug_as_message!(KeyError);

/// The base64url length (unpadded) of `bytes` bytes.
const fn base64url_len(bytes: usize) -> usize {
    (bytes * 4).div_ceil(3)
}

/// The shortest token that can verify, in bytes: a lower bound for
/// [`JwtVerifierBuilder::max_token_len`]. The shortest header names an algorithm (every
/// name is 5 characters); the shortest payload has `exp` (a time to come needs at least 3
/// characters, `9e9`) and a non-empty `sub`; the shortest signature is HS256's 32 bytes
/// (ES256 and EdDSA take 64, RSA at least 256). Each is base64url, joined by two dots: 93.
pub(crate) const MIN_TOKEN_LEN: usize = base64url_len(r#"{"alg":"HS256"}"#.len())
    + 1
    + base64url_len(r#"{"exp":9e9,"sub":"a"}"#.len())
    + 1
    + base64url_len(32);

#[derive(Clone)]
pub(crate) struct VerifyKey {
    pub(crate) kid: Option<String>,
    pub(crate) alg: Algorithm,
    pub(crate) key: DecodingKey,
}

impl VerifyKey {
    /// What tells one key from another, to find one key given for two algorithms (RFC 8725
    /// §3.1): an RSA key's modulus and exponent without leading zeros, whether it came from
    /// a PEM or a JWK; any other key's bytes, with an empty second part.
    pub(crate) fn material(&self) -> (&[u8], &[u8]) {
        let rsa = |n, e| (without_leading_zeros(n), without_leading_zeros(e));
        match self.key.kind() {
            DecodingKeyKind::RsaModulusExponent { n, e } => rsa(n, e),
            DecodingKeyKind::SecretOrDer(der) if self.alg.family() == AlgorithmFamily::Rsa => {
                pkcs1_components(der).map_or((der, &[]), |(n, e)| rsa(n, e))
            }
            DecodingKeyKind::SecretOrDer(bytes) => (bytes, &[]),
        }
    }

    /// Whether this is an HMAC secret holding `other`'s public key material (its DER, or an
    /// RSA key's modulus): the public key used as a shared secret, the setting of the
    /// classic HS256/RS256 confusion. (Its PEM text is refused on its own, `check_secret`.)
    fn holds(&self, other: &VerifyKey) -> bool {
        if self.alg.family() != AlgorithmFamily::Hmac || other.alg.family() == AlgorithmFamily::Hmac
        {
            return false;
        }
        let DecodingKeyKind::SecretOrDer(secret) = self.key.kind() else {
            return false;
        };
        let public = match other.key.kind() {
            DecodingKeyKind::SecretOrDer(der) => der,
            DecodingKeyKind::RsaModulusExponent { n, .. } => n,
        };
        let (n, _) = other.material();
        // The secret's bytes, or the bytes it spells in base64 (a JWK's `n`).
        let decoded = base64_text(secret);
        let secrets = [Some(secret.as_slice()), decoded.as_deref()];
        [public, n].iter().filter(|m| m.len() >= 32).any(|m| {
            secrets
                .iter()
                .flatten()
                .any(|s| s.windows(m.len()).any(|w| w == *m))
        })
    }
}

/// A big-endian unsigned integer without its leading zero bytes.
fn without_leading_zeros(bytes: &[u8]) -> &[u8] {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    &bytes[zeros..]
}

/// Verifies JWTs per RFC 8725: one algorithm per key (never `none`, no HS/RS confusion),
/// `exp` required and numeric, `nbf` and `iat` honoured, `iss`/`aud` required when
/// configured (and `aud` refused when no audience is), a non-empty string `sub` required
/// (it is the [`Principal`]'s subject), `jti` a string when present (the denylist's key;
/// required with [`require_jti`](JwtVerifierBuilder::require_jti)),
/// `typ` checked (other kinds of JWT, such as logout tokens, refused), small leeway, maximum age, `kid`
/// rotation over several keys, `jku`/`x5u`/`x5c`/`jwk` and `crit` refused, bounded length,
/// duplicate members refused.
///
/// ```
/// use hardening_auth::JwtVerifier;
/// use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
///
/// let secret = b"k7Qz2vX9pL4mN8rT1wY6uE3sA5dF0gHj";
/// let verifier = JwtVerifier::builder()
///     .hmac(Some("2026-11"), Algorithm::HS256, secret)?
///     .issuer("https://auth.example.com")
///     .audience("notes-api")
///     .build()?;
///
/// let mut header = Header::new(Algorithm::HS256);
/// header.kid = Some("2026-11".into());
/// let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 60;
/// let claims = serde_json::json!({
///     "sub": "user-1", "exp": exp, "iss": "https://auth.example.com", "aud": "notes-api"
/// });
/// let token = encode(&header, &claims, &EncodingKey::from_secret(secret)).unwrap();
/// let verified = verifier.verify::<serde_json::Value>(&token).unwrap();
/// assert_eq!(verified.principal.subject, "user-1");
/// # Ok::<(), hardening_auth::KeyError>(())
/// ```
#[derive(Clone)]
pub struct JwtVerifier(Arc<Inner>);

struct Inner {
    keys: Vec<VerifyKey>,
    jwks: Option<Jwks>,
    issuer: Option<String>,
    audience: Option<String>,
    typ: Option<String>,
    leeway: u64,
    max_age: Option<u64>,
    max_len: usize,
    require_jti: bool,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifier")
            .field(
                "kids",
                &self
                    .0
                    .keys
                    .iter()
                    .map(|k| (&k.kid, k.alg))
                    .collect::<Vec<_>>(),
            )
            .field("jwks", &self.0.jwks)
            .field("issuer", &self.0.issuer)
            .field("audience", &self.0.audience)
            .field("require_jti", &self.0.require_jti)
            .finish_non_exhaustive()
    }
}

/// Builds a [`JwtVerifier`]; every key and setting is checked here, at start-up.
#[must_use]
pub struct JwtVerifierBuilder {
    inner: Inner,
    jwks: Option<JwksSource>,
}

impl fmt::Debug for JwtVerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifierBuilder").finish_non_exhaustive()
    }
}

impl JwtVerifier {
    /// A builder with no keys, 30 s leeway and an 8 KiB token limit.
    pub fn builder() -> JwtVerifierBuilder {
        JwtVerifierBuilder {
            jwks: None,
            inner: Inner {
                keys: Vec::new(),
                jwks: None,
                issuer: None,
                audience: None,
                typ: None,
                leeway: 30,
                max_age: None,
                max_len: 8 * 1024,
                require_jti: false,
            },
        }
    }
}

fn key_name(kid: Option<&str>) -> String {
    kid.map_or_else(|| "(no kid)".to_owned(), |k| format!("kid {k:?}"))
}

impl JwtVerifierBuilder {
    /// Adds an HMAC key (`HS256`/`HS384`/`HS512`): at least as long as the hash (32, 48 or 64
    /// bytes, RFC 7518 §3.2), random-looking, and not a well-known example secret.
    pub fn hmac(
        mut self,
        kid: Option<&str>,
        alg: Algorithm,
        secret: &[u8],
    ) -> Result<Self, KeyError> {
        let name = key_name(kid);
        if !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
            return Err(KeyError::WrongFamily { name, alg });
        }
        check_secret(&name, alg, secret)?;
        self.inner.keys.push(VerifyKey {
            kid: kid.map(str::to_owned),
            alg,
            key: DecodingKey::from_secret(secret),
        });
        Ok(self)
    }

    /// Adds an HMAC key from an environment variable, using its bytes as given (not decoded);
    /// a missing or weak secret is an error naming the variable.
    pub fn hmac_from_env(
        self,
        kid: Option<&str>,
        alg: Algorithm,
        var: &str,
    ) -> Result<Self, KeyError> {
        let secret = std::env::var(var).map_err(|_| KeyError::WeakSecret {
            name: var.to_owned(),
            why: "is not set (make one with `openssl rand -base64 48`)".to_owned(),
        })?;
        self.hmac(kid, alg, secret.as_bytes()).map_err(|e| match e {
            KeyError::WeakSecret { why, .. } => KeyError::WeakSecret {
                name: var.to_owned(),
                why,
            },
            other => other,
        })
    }

    /// Adds a public key in PEM for `RS*`/`PS*` (RSA, 2048 to 4096 bits), `ES256`/`ES384`
    /// (EC) or `EdDSA`.
    pub fn public_pem(
        mut self,
        kid: Option<&str>,
        alg: Algorithm,
        pem: &[u8],
    ) -> Result<Self, KeyError> {
        let name = key_name(kid);
        let key = match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => DecodingKey::from_rsa_pem(pem),
            Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem),
            Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
            _ => return Err(KeyError::WrongFamily { name, alg }),
        }
        .map_err(|e| KeyError::BadPem {
            name: name.clone(),
            why: e.to_string(),
        })?;
        if let Some(why) = weak_or_mismatched(alg, &key) {
            return Err(KeyError::BadPem {
                name,
                why: why.to_owned(),
            });
        }
        self.inner.keys.push(VerifyKey {
            kid: kid.map(str::to_owned),
            alg,
            key,
        });
        Ok(self)
    }

    /// Requires `iss` to equal this. Empty, or with spaces around it, it is a
    /// [`KeyError::Expected`] at [`build`](Self::build). One issuer: called again, it replaces
    /// the first.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.inner.issuer = Some(issuer.into());
        self
    }

    /// Requires `aud` to be, or to contain, this. Without an audience, a token that carries
    /// `aud` at all is refused (RFC 7519 §4.1.3: it is for services that find themselves in
    /// it, and this one names no audience to find). Empty, or with spaces around it, it is a
    /// [`KeyError::Expected`] at [`build`](Self::build). One audience: called again, it
    /// replaces the first.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.inner.audience = Some(audience.into());
        self
    }

    /// Requires the header's `typ` to be this media type (for example `at+jwt`, RFC 9068):
    /// explicit typing, RFC 8725 §3.11. A token without `typ` is then refused.
    /// Without it, tokens without `typ` or typed `JWT`, `at+jwt` or any other type are
    /// accepted, except those typed as another kind of JWT: `logout+jwt` (OpenID Connect
    /// Back-Channel Logout), `secevent+jwt` (RFC 8417), `dpop+jwt` (RFC 9449),
    /// `token-introspection+jwt` (RFC 9701) and `oauth-authz-req+jwt` (RFC 9101), and a
    /// `typ` that is not a string (no media type). As RFC 7515 §4.1.9 has it, case does not matter and a value without `/` stands for
    /// `application/` + it: `at+jwt`, `application/at+jwt` and `Application/AT+JWT` are one
    /// type, whichever of them is configured or sent.
    ///
    /// A value that names no media type (empty, blank, `application/` alone, spaces or
    /// other characters RFC 6838 does not allow in a type name) is a [`KeyError::Typ`]:
    /// an empty type used to let tokens without any `typ` through.
    ///
    /// ```
    /// use hardening_auth::{Algorithm, JwtVerifier, KeyError};
    ///
    /// let builder = || JwtVerifier::builder()
    ///     .hmac(None, Algorithm::HS256, b"k7Qz2vX9pL4mN8rT1wY6uE3sA5dF0gHj");
    /// assert!(builder()?.typ("at+jwt").is_ok());
    /// let err = builder()?.typ("").unwrap_err();
    /// assert!(matches!(err, KeyError::Typ(_)));
    /// assert!(err.to_string().contains(r#".typ("at+jwt")"#));
    /// # Ok::<(), KeyError>(())
    /// ```
    pub fn typ(mut self, typ: impl Into<String>) -> Result<Self, KeyError> {
        self.inner.typ = Some(expected_typ(&typ.into())?);
        Ok(self)
    }

    /// Clock-skew allowance for `exp`, `nbf` and `iat` (default 30 s, at most 300 s).
    pub fn leeway(mut self, leeway: Duration) -> Result<Self, KeyError> {
        if leeway > Duration::from_secs(300) {
            return Err(KeyError::Leeway);
        }
        self.inner.leeway = leeway.as_secs();
        Ok(self)
    }

    /// Refuses tokens issued (`iat`) longer ago than this, and tokens without `iat`. Under
    /// one second, [`build`](Self::build) and [`connect`](Self::connect) fail with
    /// [`KeyError::MaxAge`].
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.inner.max_age = Some(max_age.as_secs());
        self
    }

    /// Refuses tokens longer than this many bytes (default 8 KiB). Below 93 bytes, shorter
    /// than any token that can verify, [`build`](Self::build) and
    /// [`connect`](Self::connect) fail with [`KeyError::MaxTokenLen`].
    pub fn max_token_len(mut self, bytes: usize) -> Self {
        self.inner.max_len = bytes;
        self
    }

    /// Refuses tokens without a `jti` (or with an empty one): a denylist is keyed by `jti`,
    /// so such a token cannot be revoked. Set it when your tokens all carry one; an
    /// [`AuthLayer`](crate::AuthLayer) with a denylist and without this logs a warning.
    pub fn require_jti(mut self) -> Self {
        self.inner.require_jti = true;
        self
    }

    /// Also trusts the signature keys of the JWK Set at `url` (the identity provider's
    /// `jwks_uri`), fetched by [`connect`](Self::connect) and kept fresh per `policy`.
    ///
    /// Each JWKS key verifies only the one algorithm its type decides: RSA → its `alg`
    /// (`RS*`/`PS*`, `RS256` when absent), EC P-256 → `ES256`, P-384 → `ES384`, OKP Ed25519 →
    /// `EdDSA`. Symmetric (`oct`) keys, keys without `kid`, encryption keys, RSA under 2048
    /// or over 4096 bits or with an exponent that is not odd from 3 to 2^33 - 1, EC or
    /// Ed25519 keys not of their curve's size, `kid`s already configured, and a key that the
    /// set (under another `kid`) or the configured keys have for another algorithm (RFC 8725
    /// §3.1) are ignored (and logged: a provider that publishes one key for two algorithms
    /// gets neither used, so publish a key per algorithm). Tokens are matched to JWKS keys by
    /// `kid` only;
    /// `jku`/`x5u` in a token are still refused, never fetched.
    ///
    /// An unknown `kid` is refused at once and wakes a refresh, at most one fetch per
    /// [`JwksPolicy::min_refresh_interval`]; [`JwtVerifier::verify_async`] waits for it.
    /// A set with no usable key (every key ignored counts) keeps the cached keys for
    /// [`JwksPolicy::refresh_every`] at most, then drops them, whatever fetches fail
    /// meanwhile, unless a usable set arrives first; otherwise failed fetches keep them for
    /// [`JwksPolicy::max_key_age`] (24 hours) after the last successful one.
    /// `https://` needs the `jwks-rustls` feature or a TLS-capable
    /// [`jwks_fetcher`](Self::jwks_fetcher).
    ///
    /// ```no_run
    /// use hardening_auth::{JwksPolicy, JwtVerifier};
    ///
    /// # async fn start() -> Result<(), hardening_auth::KeyError> {
    /// let verifier = JwtVerifier::builder()
    ///     .jwks_url("http://127.0.0.1:8080/realms/app/protocol/openid-connect/certs", JwksPolicy::new())
    ///     .issuer("http://127.0.0.1:8080/realms/app")
    ///     .audience("notes-api")
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn jwks_url(mut self, url: impl Into<String>, policy: JwksPolicy) -> Self {
        let fetcher = self.jwks.take().and_then(|s| s.fetcher);
        self.jwks = Some(JwksSource {
            url: url.into(),
            policy,
            fetcher,
        });
        self
    }

    /// Fetches the JWKS with this instead of the built-in [`HttpFetcher`](crate::HttpFetcher)
    /// (call after [`jwks_url`](Self::jwks_url)).
    pub fn jwks_fetcher(mut self, fetcher: Arc<dyn JwksFetcher>) -> Self {
        if let Some(source) = &mut self.jwks {
            source.fetcher = Some(fetcher);
        } else {
            self.jwks = Some(JwksSource {
                url: String::new(),
                policy: JwksPolicy::new(),
                fetcher: Some(fetcher),
            });
        }
        self
    }

    /// Checks the key set: at least one key; with several, each has a distinct `kid`.
    /// With a [`jwks_url`](Self::jwks_url), use [`connect`](Self::connect) instead.
    ///
    /// # Errors
    ///
    /// [`KeyError::KeySet`] for no key, several without distinct `kid`s, or one key given
    /// for two algorithms;
    /// [`KeyError::Expected`], [`KeyError::MaxAge`] or [`KeyError::MaxTokenLen`] for the
    /// setting that cannot work; [`KeyError::Jwks`] with a `jwks_url`.
    pub fn build(self) -> Result<JwtVerifier, KeyError> {
        choose_crypto();
        if self.jwks.is_some() {
            return Err(KeyError::Jwks(
                "is fetched at start-up: build with `.connect().await` instead of `.build()`"
                    .into(),
            ));
        }
        self.check_settings()?;
        self.check_keys()?;
        Ok(JwtVerifier(Arc::new(self.inner)))
    }

    /// Like [`build`](Self::build), and with a [`jwks_url`](Self::jwks_url) fetches the set
    /// now and starts its refresh task (needs a tokio runtime). An unreachable or unusable
    /// JWKS is an error that says what to change.
    pub async fn connect(mut self) -> Result<JwtVerifier, KeyError> {
        choose_crypto();
        let Some(source) = self.jwks.take() else {
            return self.build();
        };
        if source.url.is_empty() {
            return Err(KeyError::Jwks(
                "fetcher given without a URL: call `.jwks_url(…)`".into(),
            ));
        }
        if self.inner.keys.iter().any(|k| k.kid.is_none()) {
            return Err(KeyError::KeySet(
                "with a JWKS, every configured key needs a kid".into(),
            ));
        }
        self.check_settings()?;
        if !self.inner.keys.is_empty() {
            self.check_keys()?;
        }
        // The refresh task needs the configured `kid`s and public keys, not the HMAC secrets
        // (a set never yields a symmetric key): each HMAC key goes with its `kid` and no secret.
        let configured = self
            .inner
            .keys
            .iter()
            .map(|k| VerifyKey {
                kid: k.kid.clone(),
                alg: k.alg,
                key: if k.alg.family() == AlgorithmFamily::Hmac {
                    DecodingKey::from_secret(&[])
                } else {
                    k.key.clone()
                },
            })
            .collect();
        self.inner.jwks = Some(Jwks::start(source, configured).await?);
        Ok(JwtVerifier(Arc::new(self.inner)))
    }

    /// Settings that would refuse every token.
    fn check_settings(&self) -> Result<(), KeyError> {
        if self.inner.max_len < MIN_TOKEN_LEN {
            return Err(KeyError::MaxTokenLen(self.inner.max_len));
        }
        if self.inner.max_age == Some(0) {
            return Err(KeyError::MaxAge);
        }
        for (name, value) in [
            ("issuer", &self.inner.issuer),
            ("audience", &self.inner.audience),
        ] {
            let Some(value) = value else { continue };
            let why = if value.trim().is_empty() {
                "is empty"
            } else if value.trim() != value {
                "has spaces around it"
            } else {
                continue;
            };
            return Err(KeyError::Expected {
                name,
                value: value.clone(),
                why,
            });
        }
        Ok(())
    }

    fn check_keys(&self) -> Result<(), KeyError> {
        let keys = &self.inner.keys;
        if keys.is_empty() {
            return Err(KeyError::KeySet("add at least one key".into()));
        }
        if keys.len() > 1 {
            let mut seen = HashSet::new();
            for k in keys {
                let Some(kid) = &k.kid else {
                    return Err(KeyError::KeySet(
                        "with several keys, every key needs a kid".into(),
                    ));
                };
                if !seen.insert(kid) {
                    return Err(KeyError::KeySet(format!("kid {kid:?} is used twice")));
                }
            }
        }
        // RFC 8725 §3.1: each key is used with exactly one algorithm.
        for (i, a) in keys.iter().enumerate() {
            if let Some(b) = keys[i + 1..].iter().find(|b| {
                b.alg != a.alg && (a.material() == b.material() || a.holds(b) || b.holds(a))
            }) {
                return Err(KeyError::KeySet(format!(
                    "{} ({:?}) and {} ({:?}) are one key: use each key with one algorithm only \
                     (RFC 8725 §3.1), with a key of its own for each algorithm",
                    key_name(a.kid.as_deref()),
                    a.alg,
                    key_name(b.kid.as_deref()),
                    b.alg
                )));
            }
        }
        Ok(())
    }
}

/// Example secrets printed in widely read docs and tools, refused whatever their length
/// (compared ignoring ASCII case).
const WELL_KNOWN_SECRETS: &[&[u8]] = &[
    // jwt.io's debugger: its current HS256 default, its former HS256/HS384/HS512 defaults,
    // and its first one (the `secret` of the original example token).
    b"a-string-secret-at-least-256-bits-long",
    b"your-256-bit-secret",
    b"your-384-bit-secret",
    b"your-512-bit-secret",
    b"secret",
    // The Supabase CLI's local stack (`supabase start` prints it as its JWT secret).
    b"super-secret-jwt-token-with-at-least-32-characters-long",
    // PostgREST's tutorial and authentication docs.
    b"reallyreallyreallyreallyverysafe",
];

/// `alg` is an HMAC algorithm (checked by the caller).
fn check_secret(name: &str, alg: Algorithm, secret: &[u8]) -> Result<(), KeyError> {
    let weak = |why: &str| KeyError::WeakSecret {
        name: name.to_owned(),
        why: why.to_owned(),
    };
    // RFC 7518 §3.2: a key at least as long as the hash output.
    let min = match alg {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => 32,
    };
    // A key file's text (a public key or a certificate: `-----BEGIN PUBLIC KEY-----`) is
    // public: as an HMAC secret it lets anyone sign (HS256/RS256 confusion, RFC 8725 §2.1).
    if secret
        .windows(b"-----BEGIN".len())
        .any(|w| w == b"-----BEGIN")
    {
        return Err(weak(
            "is a PEM (`-----BEGIN …`): a public key or certificate is no secret; use \
             `openssl rand -base64 48`, and give a public key to `public_pem` instead",
        ));
    }
    // The same key as base64 text (a PEM's body without its `-----BEGIN` line, as Keycloak
    // shows and serves a realm's public key) is just as public.
    if base64_text(secret).is_some_and(|der| is_der_sequence(&der)) {
        return Err(weak(
            "is a public key or certificate in base64 (a PEM without its `-----BEGIN` line): \
             a public key is no secret; use `openssl rand -base64 48`, and give a public key \
             to `public_pem` instead",
        ));
    }
    // Spaces around it aside: a secret read from a file often keeps its last line break.
    if WELL_KNOWN_SECRETS
        .iter()
        .any(|known| secret.trim_ascii().eq_ignore_ascii_case(known))
    {
        return Err(weak(
            "is a well-known example secret, published where anyone can read it; generate \
             one with `openssl rand -base64 48`",
        ));
    }
    if secret.len() < min {
        return Err(weak(&format!(
            "is {} bytes, shorter than the {min} bytes {alg:?} needs (RFC 7518 §3.2); \
             use `openssl rand -base64 48` (64 characters)",
            secret.len()
        )));
    }
    let distinct = secret.iter().collect::<HashSet<_>>().len();
    if distinct < 12 {
        return Err(weak(
            "has too little variety to be random; use `openssl rand -base64 48`",
        ));
    }
    // A phrase repeated ("secretsecretsecret…", 16 hex digits twice), even if cut short at
    // the end, is not random either: each byte is the one `period` bytes before it.
    if (1..=secret.len() / 2).any(|period| secret[period..] == secret[..secret.len() - period]) {
        return Err(weak("is a repeated pattern; use `openssl rand -base64 48`"));
    }
    Ok(())
}

/// The bytes `secret` spells as base64 or base64url text (padding and line breaks allowed),
/// if it is such text.
fn base64_text(secret: &[u8]) -> Option<Vec<u8>> {
    let text: Vec<u8> = secret
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let unpadded = text
        .strip_suffix(b"==")
        .or_else(|| text.strip_suffix(b"="))
        .unwrap_or(&text);
    STANDARD_NO_PAD
        .decode(unpadded)
        .or_else(|_| URL_SAFE_NO_PAD.decode(unpadded))
        .ok()
}

/// Whether `bytes` are one DER `SEQUENCE` of two elements or more and nothing else: the
/// shape of a public key (SubjectPublicKeyInfo or PKCS#1) or of a certificate, hardly ever
/// that of random bytes.
fn is_der_sequence(bytes: &[u8]) -> bool {
    let Some((0x30, mut body, [])) = der_element(bytes) else {
        return false;
    };
    let mut elements = 0;
    while !body.is_empty() {
        let Some((_, _, rest)) = der_element(body) else {
            return false;
        };
        body = rest;
        elements += 1;
    }
    elements >= 2
}

/// Who a verified token speaks for: for logs, the limiter and guards.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Principal {
    /// The `sub` claim; never empty for a verified token ([`JwtError::MissingSubject`]).
    pub subject: String,
    /// The `roles` claim (array of strings).
    pub roles: Vec<String>,
    /// The `scope` claim (separated by spaces, U+0020 only: RFC 8693, RFC 6749 §3.3) or
    /// `scp` (an array, or a string separated by spaces as `scope` is, as Azure AD writes
    /// it).
    pub scopes: Vec<String>,
    /// The `tenant` or `tid` claim.
    pub tenant: Option<String>,
}

impl Principal {
    /// Whether the principal has this role.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether the principal has this scope.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// A verified token: its principal and its claims.
#[derive(Debug, Clone)]
pub struct Verified<C> {
    /// Who the token is for.
    pub principal: Principal,
    /// The claims, deserialized.
    pub claims: C,
}

impl JwtVerifier {
    /// Whether tokens without a `jti` are refused ([`JwtVerifierBuilder::require_jti`]).
    pub(crate) fn requires_jti(&self) -> bool {
        self.0.require_jti
    }

    /// The HMAC keys, which can sign as well as verify: each one's `kid`, algorithm and
    /// secret (for a [`SessionIssuer`](crate::SessionIssuer), never for a log).
    pub(crate) fn hmac_keys(&self) -> impl Iterator<Item = (Option<&str>, Algorithm, &[u8])> {
        self.0.keys.iter().filter_map(|k| match k.key.kind() {
            DecodingKeyKind::SecretOrDer(secret) if k.alg.family() == AlgorithmFamily::Hmac => {
                Some((k.kid.as_deref(), k.alg, secret.as_slice()))
            }
            _ => None,
        })
    }

    /// Whether a configured key has this `kid`.
    pub(crate) fn has_kid(&self, kid: &str) -> bool {
        self.0.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// The `iss` every token must carry ([`JwtVerifierBuilder::issuer`]).
    pub(crate) fn expected_issuer(&self) -> Option<&str> {
        self.0.issuer.as_deref()
    }

    /// The `aud` every token must carry ([`JwtVerifierBuilder::audience`]).
    pub(crate) fn expected_audience(&self) -> Option<&str> {
        self.0.audience.as_deref()
    }

    /// The header `typ` every token must carry ([`JwtVerifierBuilder::typ`]), short form.
    pub(crate) fn expected_typ(&self) -> Option<&str> {
        self.0.typ.as_deref()
    }

    /// The oldest a token may be ([`JwtVerifierBuilder::max_age`]).
    pub(crate) fn max_age(&self) -> Option<Duration> {
        self.0.max_age.map(Duration::from_secs)
    }

    /// How far past a time claim a token is still accepted ([`JwtVerifierBuilder::leeway`]).
    pub(crate) fn leeway(&self) -> Duration {
        Duration::from_secs(self.0.leeway)
    }

    /// The longest token accepted, in bytes ([`JwtVerifierBuilder::max_token_len`]).
    pub(crate) fn max_token_len(&self) -> usize {
        self.0.max_len
    }

    /// Verifies `token` and deserializes its claims into `C`.
    pub fn verify<C: DeserializeOwned>(&self, token: &str) -> Result<Verified<C>, JwtError> {
        let (principal, claims) = self.verify_raw(token)?;
        let claims = serde_json::from_value(Value::Object(claims)).map_err(|_| JwtError::Claims)?;
        Ok(Verified { principal, claims })
    }

    /// Verifies `token`, returning the principal and the raw claims.
    ///
    /// Never waits: with a JWKS, a `kid` not in the cache is refused with
    /// [`JwtError::UnknownKey`] and wakes a (rate-limited) refresh for later calls.
    pub fn verify_raw(&self, token: &str) -> Result<(Principal, Map<String, Value>), JwtError> {
        self.verify_inner(token, &mut false)
    }

    /// Like [`verify`](Self::verify), but a `kid` missing from the JWKS cache first waits for
    /// a refresh when one is allowed (at most one fetch per minimum interval, shared by all
    /// callers), so the first token signed with a newly rotated key is accepted. Without a
    /// JWKS it is `verify`.
    ///
    /// ```no_run
    /// # async fn check(verifier: hardening_auth::JwtVerifier, token: &str) {
    /// let verified = verifier.verify_async::<serde_json::Value>(token).await;
    /// # }
    /// ```
    pub async fn verify_async<C: DeserializeOwned>(
        &self,
        token: &str,
    ) -> Result<Verified<C>, JwtError> {
        let (principal, claims) = self.verify_raw_async(token).await?;
        let claims = serde_json::from_value(Value::Object(claims)).map_err(|_| JwtError::Claims)?;
        Ok(Verified { principal, claims })
    }

    /// [`verify_raw`](Self::verify_raw), waiting for an allowed JWKS refresh on an unknown
    /// `kid` (see [`verify_async`](Self::verify_async)).
    pub async fn verify_raw_async(
        &self,
        token: &str,
    ) -> Result<(Principal, Map<String, Value>), JwtError> {
        let mut refresh = false;
        match self.verify_inner(token, &mut refresh) {
            Err(JwtError::UnknownKey) if refresh => {}
            other => return other,
        }
        match &self.0.jwks {
            Some(jwks) => {
                // Looked up again whatever this call's refresh did: another caller's (or the
                // background task's) fetch, waited for here, may have brought the key.
                jwks.refresh_if_due().await;
                self.verify_raw(token)
            }
            None => Err(JwtError::UnknownKey),
        }
    }

    /// `refresh` is set when the token's `kid` is missing from the JWKS cache and a refresh
    /// could find it.
    fn verify_inner(
        &self,
        token: &str,
        refresh: &mut bool,
    ) -> Result<(Principal, Map<String, Value>), JwtError> {
        let c = &*self.0;
        if token.len() > c.max_len {
            return Err(JwtError::TooLong);
        }
        let mut parts = token.split('.');
        let (Some(h64), Some(p64), Some(s64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        if [h64, p64, s64].iter().any(|p| p.is_empty()) {
            return Err(JwtError::Malformed);
        }
        let header = decode_object(h64).map_err(|e| match e {
            DecodeError::Base64 => JwtError::Malformed,
            DecodeError::Json => JwtError::BadHeader,
        })?;

        let alg = match header.get("alg") {
            Some(Value::String(a)) => a,
            _ => return Err(JwtError::UnsupportedAlgorithm),
        };
        let alg: Algorithm = serde_json::from_value(Value::String(alg.clone()))
            .map_err(|_| JwtError::UnsupportedAlgorithm)?;
        if header.contains_key("crit") {
            return Err(JwtError::CritHeader);
        }
        if ["jku", "x5u", "x5c", "jwk"]
            .iter()
            .any(|k| header.contains_key(*k))
        {
            return Err(JwtError::ExternalKeyReference);
        }
        let typ = header.get("typ");
        if let Some(want) = &c.typ {
            // No `typ`, or one that is not a string, is not the type asked for.
            match typ {
                Some(Value::String(typ)) if media_type_short(typ).eq_ignore_ascii_case(want) => {}
                _ => return Err(JwtError::WrongType),
            }
        } else {
            match typ {
                None => {}
                Some(Value::String(typ)) if !is_other_kind_of_jwt(typ) => {}
                // Another kind of JWT is no access token; a `typ` that is not a string names
                // no media type (RFC 7515 §4.1.9).
                _ => return Err(JwtError::WrongType),
            }
        }
        let from_jwks;
        let key = match header.get("kid") {
            Some(Value::String(kid)) => match c.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
            {
                Some(key) => key,
                None => {
                    let Some(jwks) = &c.jwks else {
                        return Err(JwtError::UnknownKey);
                    };
                    match jwks.get(kid) {
                        Some(key) => {
                            from_jwks = key;
                            &*from_jwks
                        }
                        None => {
                            // A JWKS never yields an HMAC key: no refresh can help those.
                            if !matches!(
                                alg,
                                Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
                            ) {
                                jwks.request_refresh();
                                *refresh = true;
                            }
                            return Err(JwtError::UnknownKey);
                        }
                    }
                }
            },
            None if c.keys.len() == 1 && c.jwks.is_none() => {
                c.keys.first().ok_or(JwtError::UnknownKey)?
            }
            _ => return Err(JwtError::UnknownKey),
        };
        if key.alg != alg {
            return Err(JwtError::AlgorithmMismatch);
        }
        let message = &token[..h64.len() + 1 + p64.len()];
        match jsonwebtoken::crypto::verify(s64, message.as_bytes(), &key.key, alg) {
            Ok(true) => {}
            _ => return Err(JwtError::BadSignature),
        }

        let claims = decode_object(p64).map_err(|_| JwtError::BadPayload)?;
        self.check_claims(&claims)?;
        Ok((principal(&claims), claims))
    }

    fn check_claims(&self, claims: &Map<String, Value>) -> Result<(), JwtError> {
        let c = &*self.0;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let leeway = c.leeway as f64;
        let time = |name: &'static str| match claims.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_f64().map(Some).ok_or(JwtError::BadClaimType(name)),
            Some(_) => Err(JwtError::BadClaimType(name)),
        };
        let exp = time("exp")?.ok_or(JwtError::MissingExp)?;
        if now >= exp + leeway {
            return Err(JwtError::Expired);
        }
        if let Some(nbf) = time("nbf")?
            && now + leeway < nbf
        {
            return Err(JwtError::NotYetValid);
        }
        let iat = time("iat")?;
        if let Some(iat) = iat
            && iat > now + leeway
        {
            return Err(JwtError::IssuedInFuture);
        }
        if let Some(max_age) = c.max_age {
            match iat {
                Some(iat) if now - iat <= max_age as f64 + leeway => {}
                _ => return Err(JwtError::TooOld),
            }
        }
        if let Some(issuer) = &c.issuer {
            match claims.get("iss") {
                Some(Value::String(iss)) if iss == issuer => {}
                Some(Value::String(_)) | None => return Err(JwtError::WrongIssuer),
                Some(_) => return Err(JwtError::BadClaimType("iss")),
            }
        }
        // RFC 7519 §4.1.3: a token with `aud` is for someone who must find themselves in it;
        // without a configured audience this service is in no token's `aud`.
        let ok = match (&c.audience, claims.get("aud")) {
            (None, None) => true,
            (Some(audience), Some(Value::String(aud))) => aud == audience,
            (Some(audience), Some(Value::Array(auds))) => {
                auds.iter().any(|a| a.as_str() == Some(audience))
            }
            _ => false,
        };
        if !ok {
            return Err(JwtError::WrongAudience);
        }
        // RFC 7519 §4.1.7: `jti` is a string. The denylist is keyed by it, so a token whose
        // `jti` is of another type (`42`) could not be found there: refused, not let past it.
        match claims.get("jti") {
            Some(Value::String(jti)) if !jti.is_empty() => {}
            Some(Value::String(_)) | None if c.require_jti => return Err(JwtError::MissingJti),
            Some(Value::String(_)) | None => {}
            Some(_) => return Err(JwtError::BadClaimType("jti")),
        }
        // A token must name its principal: owner scoping and per-principal limits key on it.
        match claims.get("sub") {
            Some(Value::String(sub)) if !sub.is_empty() => Ok(()),
            None | Some(Value::Null | Value::String(_)) => Err(JwtError::MissingSubject),
            Some(_) => Err(JwtError::BadClaimType("sub")),
        }
    }
}

fn principal(claims: &Map<String, Value>) -> Principal {
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    // Spaces only (RFC 6749 §3.3): other whitespace splitting one scope would grant
    // scopes the issuer never saw.
    let spaced = |s: &str| -> Vec<String> {
        s.split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let scopes = match (claims.get("scope"), claims.get("scp")) {
        (Some(Value::String(s)), _) => spaced(s),
        // Azure AD's delegated scopes: a string, like `scope`.
        (_, Some(Value::String(s))) => spaced(s),
        (_, scp) => strings(scp),
    };
    Principal {
        subject: claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        roles: strings(claims.get("roles")),
        scopes,
        tenant: claims
            .get("tenant")
            .or_else(|| claims.get("tid"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
}

/// A `typ` media type in its short form, to compare case-insensitively (RFC 7515 §4.1.9: a
/// value without `/` means `application/` + it, so `application/` goes where no other `/`
/// follows; media types are case-insensitive, so the prefix is matched in any case).
fn media_type_short(typ: &str) -> &str {
    match typ.split_at_checked("application/".len()) {
        Some((prefix, rest))
            if prefix.eq_ignore_ascii_case("application/") && !rest.contains('/') =>
        {
            rest
        }
        _ => typ,
    }
}

/// `typ`s of JWTs that are not access tokens, refused when no [`typ`](JwtVerifierBuilder::typ)
/// is configured (RFC 8725 §3.11: explicit typing keeps one kind from standing in for another).
const OTHER_KINDS_OF_JWT: &[&str] = &[
    "logout+jwt",              // OpenID Connect Back-Channel Logout 1.0 §2.4: logout tokens
    "secevent+jwt",            // RFC 8417 §2.3: security event tokens
    "dpop+jwt",                // RFC 9449 §4.2: DPoP proofs
    "token-introspection+jwt", // RFC 9701: signed introspection responses
    "oauth-authz-req+jwt",     // RFC 9101: signed authorization requests
];

/// Whether a token's `typ` names one of [`OTHER_KINDS_OF_JWT`], in any case, with or without
/// `application/`.
fn is_other_kind_of_jwt(typ: &str) -> bool {
    let short = media_type_short(typ);
    OTHER_KINDS_OF_JWT
        .iter()
        .any(|kind| short.eq_ignore_ascii_case(kind))
}

/// The configured `typ` in the form a token's `typ` is compared with (short, lowercase),
/// or why it names no media type (RFC 6838 §4.2: `type/subtype` or, per RFC 7515 §4.1.9,
/// `subtype` alone, each a restricted-name).
fn expected_typ(typ: &str) -> Result<String, KeyError> {
    let short = media_type_short(typ);
    let valid = match short.split_once('/') {
        Some((top, sub)) => is_restricted_name(top) && is_restricted_name(sub),
        None => is_restricted_name(short),
    };
    if valid {
        return Ok(short.to_ascii_lowercase());
    }
    let what = if short.trim().is_empty() {
        "is empty, which would let tokens without a typ header through"
    } else {
        "is not a media type (letters, digits and !#$&-^_.+, at most one /)"
    };
    Err(KeyError::Typ(format!(
        "{typ:?} {what}: name the type every token must carry, for example \
         .typ(\"at+jwt\") for OAuth access tokens (RFC 9068), or leave .typ() out to accept \
         tokens of any type (RFC 8725 §3.11)"
    )))
}

/// An RFC 6838 §4.2 `restricted-name`: 1 to 127 characters, a letter or digit first, then
/// letters, digits and `!#$&-^_.+`.
fn is_restricted_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.len() <= 127
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
}

enum DecodeError {
    Base64,
    Json,
}

/// base64url (no padding) → a JSON object whose members are all distinct.
fn decode_object(segment: &str) -> Result<Map<String, Value>, DecodeError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| DecodeError::Base64)?;
    serde_json::from_slice::<UniqueObject>(&bytes)
        .map(|o| o.0)
        .map_err(|_| DecodeError::Json)
}

/// A JSON object that refuses a repeated member at any depth. serde_json would keep the last
/// one, and two parsers reading one token differently is how signatures get bypassed: a signer
/// that keeps the first reads `{"realm_access":{"roles":["user"],"roles":["admin"]}}` as `user`.
struct UniqueObject(Map<String, Value>);

impl<'de> serde::Deserialize<'de> for UniqueObject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match deserializer.deserialize_map(UniqueVisitor)? {
            Value::Object(map) => Ok(UniqueObject(map)),
            _ => Err(serde::de::Error::custom("not a JSON object")),
        }
    }
}

/// A JSON value none of whose objects repeats a member.
struct UniqueValue(Value);

impl<'de> serde::Deserialize<'de> for UniqueValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueVisitor).map(UniqueValue)
    }
}

/// The prefix of the member names serde_json gives a meaning of its own.
const SERDE_JSON_PRIVATE: &str = "$serde_json::private::";
/// How serde_json's `arbitrary_precision` feature passes a number.
const SERDE_JSON_NUMBER: &str = "$serde_json::private::Number";

/// Builds a [`Value`] as serde_json's own visitor does, refusing repeated members and the
/// members serde_json reads as something else.
struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON without repeated members")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(UniqueValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            if out.contains_key(&k) {
                return Err(serde::de::Error::custom("duplicate member"));
            }
            // serde_json's `Value` reads `{"$serde_json::private::RawValue": "[1]"}` as `[1]`
            // (its `raw_value` feature): a string to the signer, a structure to the claims type.
            if k.starts_with(SERDE_JSON_PRIVATE) && k != SERDE_JSON_NUMBER {
                return Err(serde::de::Error::custom("reserved member"));
            }
            let UniqueValue(v) = map.next_value()?;
            out.insert(k, v);
        }
        // serde_json's `arbitrary_precision` feature hands a number over as a map of this one
        // member; its own `Value` turns that back into the number.
        if out.len() == 1 && out.contains_key(SERDE_JSON_NUMBER) {
            return serde_json::from_value(Value::Object(out)).map_err(serde::de::Error::custom);
        }
        Ok(Value::Object(out))
    }
}

/// jsonwebtoken picks its crypto from its cargo features: if another crate of the build turns
/// on its `aws_lc_rs` beside this crate's `rust_crypto`, it can pick neither, and every
/// verification would panic. This one is chosen unless the application installed one first.
fn choose_crypto() {
    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
}

/// What is wrong with a PEM public key for `alg`, as the JWKS path checks it too: an RSA
/// modulus under 2048 bits (RFC 8725 §3.5) or over 4096 (the RSA backend refuses those at
/// verification, so such a key would refuse every token), or an EC point not of `alg`'s
/// curve (P-256 for `ES256`, P-384 for `ES384`: a key of the other curve would refuse every
/// token).
fn weak_or_mismatched(alg: Algorithm, key: &DecodingKey) -> Option<&'static str> {
    let DecodingKeyKind::SecretOrDer(der) = key.kind() else {
        return None;
    };
    match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => {
            match pkcs1_modulus(der).and_then(|(n, _)| crate::jwks::bit_length(n)) {
                Some(bits) if bits < RSA_MIN_BITS => {
                    Some("RSA modulus shorter than 2048 bits; use an RSA key of 2048 to 4096 bits")
                }
                Some(bits) if bits > RSA_MAX_BITS => Some(
                    "RSA modulus longer than 4096 bits, which cannot verify any token here; use an \
                 RSA key of 2048 to 4096 bits",
                ),
                Some(_) => None,
                None => Some("not an RSA public key"),
            }
        }
        // An uncompressed (0x04, x, y) or compressed (0x02/0x03, x) point.
        Algorithm::ES256 => {
            (![65, 33].contains(&der.len())).then_some("not a P-256 public key, which ES256 needs")
        }
        Algorithm::ES384 => {
            (![97, 49].contains(&der.len())).then_some("not a P-384 public key, which ES384 needs")
        }
        _ => None,
    }
}

/// The shortest RSA modulus accepted, in bits (RFC 8725 §3.5, RFC 7518 §3.3).
pub(crate) const RSA_MIN_BITS: usize = 2048;
/// The longest RSA modulus accepted, in bits: the RSA backend (`rsa`'s
/// `RsaPublicKey::MAX_SIZE`) refuses longer ones at verification.
pub(crate) const RSA_MAX_BITS: usize = 4096;

/// The modulus of a PKCS#1 `RSAPublicKey` (DER: `SEQUENCE { INTEGER n, INTEGER e }`), and
/// what follows it.
fn pkcs1_modulus(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (0x30, body, _) = der_element(der)? else {
        return None;
    };
    let (0x02, n, rest) = der_element(body)? else {
        return None;
    };
    Some((n, rest))
}

/// The modulus and exponent of a PKCS#1 `RSAPublicKey`.
fn pkcs1_components(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (n, rest) = pkcs1_modulus(der)?;
    let (0x02, e, _) = der_element(rest)? else {
        return None;
    };
    Some((n, e))
}

/// One DER element: its tag, its contents, and what follows it.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let (bytes, rest) = rest.split_at_checked(count)?;
        let len = bytes
            .iter()
            .fold(0usize, |len, b| (len << 8) | usize::from(*b));
        (len, rest)
    };
    let (body, rest) = rest.split_at_checked(len)?;
    Some((tag, body, rest))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_tokens::{builder, token, token_with_header, verifier};

    /// `fn main() -> Result<(), Box<dyn Error>>` prints an error returned with `?` by its
    /// `Debug`, which was the variant's name (`Leeway`): not what to change.
    #[test]
    fn a_key_error_debug_prints_its_message() {
        let err: Box<dyn std::error::Error> = KeyError::Leeway.into();
        assert_eq!(format!("{err:?}"), "leeway must be at most 300 seconds");
    }

    /// A valid token whose header has this `typ`.
    fn typed(typ: &str) -> String {
        let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
        header.typ = Some(typ.to_owned());
        token_with_header(header, json!({ "sub": "user-1" }))
    }

    /// RFC 7515 §4.1.9: media types are case-insensitive and a `typ` without '/' means
    /// "application/" + it. `Application/AT+JWT` is `at+jwt`; it was refused (the prefix was
    /// stripped case-sensitively).
    #[test]
    fn typ_media_type_prefix_is_case_insensitive() {
        let v = builder().typ("at+jwt").unwrap().build().unwrap();
        for typ in [
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "Application/AT+JWT",
            "APPLICATION/At+Jwt",
        ] {
            assert!(v.verify_raw(&typed(typ)).is_ok(), "{typ}");
        }
        for typ in [
            "JWT",
            "application/jwt",
            "text/at+jwt",
            "application/x/at+jwt",
            "",
        ] {
            assert_eq!(
                v.verify_raw(&typed(typ)).map(|_| ()),
                Err(JwtError::WrongType),
                "{typ}"
            );
        }
        let untyped = token(json!({ "sub": "user-1" }));
        assert_eq!(v.verify_raw(&untyped).map(|_| ()), Err(JwtError::WrongType));
    }

    /// RFC 8725 §3.11: without `.typ(...)`, a token typed as another kind of JWT (a logout
    /// token, a security event, a DPoP proof, …) was accepted as an access token. Those types
    /// are refused by default now, in any case and with or without `application/`.
    #[test]
    fn other_kinds_of_jwt_are_refused_without_a_configured_typ() {
        let v = verifier();
        for typ in [
            "logout+jwt",
            "Application/Logout+JWT",
            "secevent+jwt",
            "application/secevent+jwt",
            "dpop+jwt",
            "DPoP+JWT",
            "token-introspection+jwt",
            "oauth-authz-req+jwt",
        ] {
            assert_eq!(
                v.verify_raw(&typed(typ)).map(|_| ()),
                Err(JwtError::WrongType),
                "{typ}"
            );
        }
        for typ in [
            "JWT",
            "jwt",
            "application/jwt",
            "at+jwt",
            "application/at+JWT",
        ] {
            assert!(v.verify_raw(&typed(typ)).is_ok(), "{typ}");
        }
        let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
        header.typ = None;
        let untyped = token_with_header(header, json!({ "sub": "user-1" }));
        assert!(v.verify_raw(&untyped).is_ok());
        // A `typ` that is no string names no media type (RFC 7515 §4.1.9).
        let claims = b64(&format!(r#"{{"sub":"user-1","exp":{}}}"#, in_ten_minutes()));
        for typ in ["5", "null", r#"["JWT"]"#, r#"{"t":"JWT"}"#] {
            let header = b64(&format!(r#"{{"alg":"HS256","typ":{typ}}}"#));
            assert_eq!(
                v.verify_raw(&sign(&header, &claims)).map(|_| ()),
                Err(JwtError::WrongType),
                "typ {typ}"
            );
        }
        // A configured type is exactly that type, whichever it is.
        let logout = builder().typ("logout+jwt").unwrap().build().unwrap();
        assert!(logout.verify_raw(&typed("application/logout+jwt")).is_ok());
        assert_eq!(
            logout.verify_raw(&typed("JWT")).map(|_| ()),
            Err(JwtError::WrongType)
        );
    }

    /// The configured type is read as the token's is: a verifier set to the full media type
    /// used to refuse every token, even one whose `typ` was exactly that string.
    #[test]
    fn typ_configured_as_full_media_type_accepts_its_own_tokens() {
        for configured in ["application/at+jwt", "Application/AT+JWT", "at+jwt"] {
            let v = builder().typ(configured).unwrap().build().unwrap();
            for typ in ["application/at+jwt", "at+jwt", "AT+JWT"] {
                assert!(
                    v.verify_raw(&typed(typ)).is_ok(),
                    "{configured} / {typ}: {:?}",
                    v.verify_raw(&typed(typ)).err()
                );
            }
            assert_eq!(
                v.verify_raw(&typed("jwt")).map(|_| ()),
                Err(JwtError::WrongType)
            );
        }
        // Another top-level type is kept whole: "example/foo" is not "foo" (application/foo).
        let v = builder().typ("example/foo").unwrap().build().unwrap();
        assert!(v.verify_raw(&typed("Example/FOO")).is_ok());
        assert_eq!(
            v.verify_raw(&typed("foo")).map(|_| ()),
            Err(JwtError::WrongType)
        );
    }

    /// RFC 8725 §3.11: a configured `typ` must name a type. `.typ("")` (or only spaces, or
    /// `application/` alone) used to be accepted and then let tokens without any `typ`
    /// header through, the opposite of explicit typing.
    #[test]
    fn an_empty_typ_is_refused_at_build_time() {
        for configured in ["", " ", "\t\n", "application/", "Application/"] {
            match builder().typ(configured) {
                Err(KeyError::Typ(why)) => {
                    assert!(why.contains("is empty"), "{why}");
                    assert!(why.contains(r#".typ("at+jwt")"#), "{why}");
                    assert!(why.contains("RFC 8725"), "{why}");
                }
                Err(e) => panic!("{configured:?}: {e}"),
                Ok(_) => panic!("{configured:?} was accepted"),
            }
        }
        // Nor anything else that no token's typ could be.
        for configured in [
            " at+jwt", "at+jwt ", "at jwt", "a/b/c", "/jwt", "text/", "+jwt",
        ] {
            match builder().typ(configured) {
                Err(KeyError::Typ(why)) => assert!(why.contains("not a media type"), "{why}"),
                Err(e) => panic!("{configured:?}: {e}"),
                Ok(_) => panic!("{configured:?} was accepted"),
            }
        }
        // Registered and common types are accepted, and an untyped token is refused by them.
        let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
        header.typ = None;
        let untyped = token_with_header(header, json!({ "sub": "user-1" }));
        assert!(verifier().verify_raw(&untyped).is_ok());
        for configured in [
            "JWT",
            "at+jwt",
            "dpop+jwt",
            "secevent+jwt",
            "vc+sd-jwt",
            "JOSE+JSON",
        ] {
            let v = builder().typ(configured).unwrap().build().unwrap();
            assert_eq!(
                v.verify_raw(&untyped).map(|_| ()),
                Err(JwtError::WrongType),
                "{configured}"
            );
        }
        // A typ member that is not a string is no type either.
        let v = builder().typ("at+jwt").unwrap().build().unwrap();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":["at+jwt"]}"#);
        let forged = format!(
            "{header}.{}",
            token(json!({ "sub": "user-1" })).split_once('.').unwrap().1
        );
        assert_eq!(v.verify_raw(&forged).map(|_| ()), Err(JwtError::WrongType));
    }

    /// RFC 7519 §4.1.7: `jti` is a string. One of another type is refused like `iss`/`sub`
    /// of the wrong type, on every path (the denylist looks up strings only).
    #[test]
    fn a_jti_that_is_not_a_string_is_refused() {
        let v = verifier();
        for jti in [
            json!(42),
            json!(4.2),
            json!(null),
            json!(true),
            json!(["42"]),
            json!({}),
        ] {
            assert_eq!(
                v.verify_raw(&token(json!({ "sub": "user-1", "jti": jti })))
                    .map(|_| ()),
                Err(JwtError::BadClaimType("jti")),
                "{jti}"
            );
        }
        assert!(
            v.verify_raw(&token(json!({ "sub": "user-1", "jti": "42" })))
                .is_ok()
        );
        assert!(v.verify_raw(&token(json!({ "sub": "user-1" }))).is_ok());
    }

    /// `require_jti` refuses tokens a denylist could not revoke: no `jti`, or an empty one.
    /// Without it they pass, as before.
    #[test]
    fn require_jti_refuses_tokens_without_one() {
        let strict = builder().require_jti().build().unwrap();
        for claims in [
            json!({ "sub": "user-1" }),
            json!({ "sub": "user-1", "jti": "" }),
        ] {
            assert_eq!(
                strict.verify_raw(&token(claims.clone())).map(|_| ()),
                Err(JwtError::MissingJti),
                "{claims}"
            );
            assert!(verifier().verify_raw(&token(claims)).is_ok());
        }
        assert!(
            strict
                .verify_raw(&token(json!({ "sub": "user-1", "jti": "t-1" })))
                .is_ok()
        );
        assert_eq!(
            strict
                .verify_raw(&token(json!({ "sub": "user-1", "jti": 42 })))
                .map(|_| ()),
            Err(JwtError::BadClaimType("jti"))
        );
    }

    #[test]
    fn aud_is_refused_when_no_audience_is_configured() {
        let v = verifier();
        for aud in [json!("billing-api"), json!(["billing-api"]), json!([])] {
            let t = token(json!({ "sub": "user-1", "aud": aud }));
            assert_eq!(
                v.verify_raw(&t).map(|_| ()),
                Err(JwtError::WrongAudience),
                "{aud}"
            );
        }
        // No aud, no audience: accepted.
        let t = token(json!({ "sub": "user-1" }));
        assert!(v.verify_raw(&t).is_ok());
        // With an audience configured, the token must name it.
        let v = builder().audience("notes-api").build().unwrap();
        let ok = token(json!({ "sub": "user-1", "aud": ["x", "notes-api"] }));
        assert!(v.verify_raw(&ok).is_ok());
        let wrong = token(json!({ "sub": "user-1", "aud": "billing-api" }));
        assert_eq!(
            v.verify_raw(&wrong).map(|_| ()),
            Err(JwtError::WrongAudience)
        );
    }

    #[test]
    fn a_token_without_a_subject_is_refused() {
        let v = verifier();
        for claims in [json!({}), json!({ "sub": "" }), json!({ "sub": null })] {
            assert_eq!(
                v.verify_raw(&token(claims.clone())).map(|_| ()),
                Err(JwtError::MissingSubject),
                "{claims}"
            );
        }
        assert_eq!(
            v.verify_raw(&token(json!({ "sub": 7 }))).map(|_| ()),
            Err(JwtError::BadClaimType("sub"))
        );
        let (principal, _) = v.verify_raw(&token(json!({ "sub": "user-1" }))).unwrap();
        assert_eq!(principal.subject, "user-1");
    }

    /// `s` in base64url, unpadded: a token segment.
    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    /// An `exp` ten minutes from now.
    fn in_ten_minutes() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 600
    }

    /// `h64.p64`, HS256-signed with the key of [`verifier`]'s tokens, whatever they hold.
    fn sign(h64: &str, p64: &str) -> String {
        let message = format!("{h64}.{p64}");
        let key = jsonwebtoken::EncodingKey::from_secret(b"k7Qz2vX9pL4mN8rT1wY6uE3sA5dF0gHj");
        let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &key, Algorithm::HS256);
        format!("{message}.{}", sig.unwrap())
    }

    /// RFC 6749 §3.3 (RFC 8693 §4.2): `scope` is split on spaces (U+0020) only. Any
    /// whitespace used to split it, so `"docs:1\u{a0}admin"`, one scope to the issuer,
    /// granted `admin` here.
    #[test]
    fn scope_is_split_on_spaces_only() {
        let v = verifier();
        for (scope, want) in [
            ("a b", &["a", "b"][..]),
            ("  a   b ", &["a", "b"]),
            ("", &[]),
            ("docs:1\u{a0}admin", &["docs:1\u{a0}admin"]),
            ("docs:1\u{3000}admin", &["docs:1\u{3000}admin"]),
            ("docs:1\tadmin", &["docs:1\tadmin"]),
            ("docs:1\nadmin", &["docs:1\nadmin"]),
        ] {
            let claims = json!({ "sub": "user-1", "scope": scope });
            let (principal, _) = v.verify_raw(&token(claims)).unwrap();
            assert_eq!(principal.scopes, want, "{scope:?}");
        }
    }

    /// Header and payload are read as one strict parser reads them: a member repeated under
    /// a JSON escape is still repeated, base64url is unpadded and without `+/`, and numbers
    /// JSON cannot hold, a `kid` that is not a string or a byte-order mark are refusals, not
    /// panics.
    #[test]
    fn header_and_payload_are_read_strictly() {
        let v = verifier();
        let exp = in_ten_minutes();
        let ok = format!(r#"{{"sub":"user-1","exp":{exp}}}"#);
        let hs = b64(r#"{"alg":"HS256"}"#);
        assert!(v.verify_raw(&sign(&hs, &b64(&ok))).is_ok(), "control");
        let cases = [
            (
                b64(r#"{"alg":"HS256","\u0061lg":"none"}"#),
                b64(&ok),
                JwtError::BadHeader,
            ),
            (
                b64("\u{feff}{\"alg\":\"HS256\"}"),
                b64(&ok),
                JwtError::BadHeader,
            ),
            (format!("{hs}="), b64(&ok), JwtError::Malformed),
            (
                b64(r#"{"alg":"HS256","kid":null}"#),
                b64(&ok),
                JwtError::UnknownKey,
            ),
            (
                b64(r#"{"alg":"HS256","kid":7}"#),
                b64(&ok),
                JwtError::UnknownKey,
            ),
            (
                hs.clone(),
                b64(&ok.replacen('{', r#"{"s\u0075b":"admin","#, 1)),
                JwtError::BadPayload,
            ),
            (
                hs.clone(),
                b64(r#"{"sub":"user-1","exp":1e400}"#),
                JwtError::BadPayload,
            ),
            (hs.clone(), b64(&format!("{ok}{{}}")), JwtError::BadPayload),
            (hs.clone(), format!("{}=", b64(&ok)), JwtError::BadPayload),
        ];
        for (h64, p64, want) in cases {
            assert_eq!(
                v.verify_raw(&sign(&h64, &p64)).map(|_| ()),
                Err(want.clone()),
                "{h64}.{p64}"
            );
        }
        // `+` and `/` are base64, not base64url: a header that needs them is malformed.
        let std_header = base64::engine::general_purpose::STANDARD_NO_PAD
            .encode(r#"{"alg":"HS256","kid":"?>?"}"#);
        assert!(std_header.contains(['+', '/']), "{std_header}");
        assert_eq!(
            v.verify_raw(&sign(&std_header, &b64(&ok))).map(|_| ()),
            Err(JwtError::Malformed)
        );
    }

    /// A member repeated inside a nested object (or an object in an array) was kept last,
    /// as serde_json does, where a first-wins signer reads the first: the same signed token
    /// meant `roles: user` to the issuer and `roles: admin` to the claims type here.
    #[test]
    fn nested_duplicate_members_are_refused() {
        let v = verifier();
        let exp = in_ten_minutes();
        let hs = b64(r#"{"alg":"HS256"}"#);
        let payload = |extra: &str| format!(r#"{{"sub":"user-1","exp":{exp},{extra}}}"#);
        for extra in [
            r#""realm_access":{"roles":["user"],"roles":["admin"]}"#,
            r#""a":[{"x":1},{"x":1,"x":2}]"#,
            r#""a":{"b":{"c":{"d":1,"d":2}}}"#,
        ] {
            assert_eq!(
                v.verify_raw(&sign(&hs, &b64(&payload(extra)))).map(|_| ()),
                Err(JwtError::BadPayload),
                "{extra}"
            );
        }
        let header = b64(r#"{"alg":"HS256","ext":{"k":1,"k":2}}"#);
        assert_eq!(
            v.verify_raw(&sign(&header, &b64(&payload(r#""n":1"#))))
                .map(|_| ()),
            Err(JwtError::BadHeader)
        );
        // Everything else reads as serde_json reads it.
        let rich = payload(
            r#""realm_access":{"roles":["user"]},"a":[{"x":1},{"x":-2.5e-3}],"n":null,
               "t":true,"big":18446744073709551615,"neg":-9223372036854775808,"s":"\u00e9\n",
               "e":{},"l":[],"$serde_json::private::Number":{"$serde_json::private::Number":"5"}"#,
        );
        let (_, claims) = v.verify_raw(&sign(&hs, &b64(&rich))).unwrap();
        let expected: Map<String, Value> = serde_json::from_str(&rich).unwrap();
        assert_eq!(claims, expected);
    }

    /// serde_json's `Value` (with its `raw_value` feature, on in this workspace) parsed the
    /// string of a nested `$serde_json::private::RawValue` member as JSON: a claim that was a
    /// string to the signer became an array of roles here. Such members are refused now.
    #[test]
    fn serde_json_private_members_are_refused() {
        let v = verifier();
        let exp = in_ten_minutes();
        let hs = b64(r#"{"alg":"HS256"}"#);
        let raw = r#"{"$serde_json::private::RawValue":"[\"admin\"]"}"#;
        for extra in [
            format!(r#""roles":{raw}"#),
            format!(r#""a":[{raw}]"#),
            r#""$serde_json::private::RawValue":"[]""#.to_owned(),
            r#""x":{"$serde_json::private::Other":1}"#.to_owned(),
        ] {
            let payload = format!(r#"{{"sub":"user-1","exp":{exp},{extra}}}"#);
            assert_eq!(
                v.verify_raw(&sign(&hs, &b64(&payload))).map(|_| ()),
                Err(JwtError::BadPayload),
                "{extra}"
            );
        }
        let header = b64(r#"{"alg":"HS256","x":{"$serde_json::private::RawValue":"1"}}"#);
        let payload = format!(r#"{{"sub":"user-1","exp":{exp}}}"#);
        assert_eq!(
            v.verify_raw(&sign(&header, &b64(&payload))).map(|_| ()),
            Err(JwtError::BadHeader)
        );
    }

    /// base64url whose last character carries bits that encode nothing is refused in each
    /// segment (one token, one spelling: RFC 7515 §2 and RFC 4648 §3.5).
    #[test]
    fn non_canonical_base64url_is_refused() {
        let v = verifier();
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        // The same bytes with the unused low bit of the last character set.
        let spare_bit = |seg: &str| {
            assert_ne!(seg.len() % 4, 0, "{seg} has no spare bits");
            let last = alphabet.find(seg.chars().last().unwrap()).unwrap() ^ 1;
            format!("{}{}", &seg[..seg.len() - 1], &alphabet[last..=last])
        };
        let exp = in_ten_minutes();
        // 22 and 41 bytes: neither a multiple of 3, so both end with spare bits.
        let h64 = b64(r#"{"alg":"HS256","x":12}"#);
        let p64 = b64(&format!(r#"{{"sub":"user-1","exp":{exp},"x":12}}"#));
        let ok = sign(&h64, &p64);
        assert!(v.verify_raw(&ok).is_ok(), "control");
        let s64 = ok.rsplit('.').next().unwrap();
        for (forged, want) in [
            (sign(&spare_bit(&h64), &p64), JwtError::Malformed),
            (sign(&h64, &spare_bit(&p64)), JwtError::BadPayload),
            (
                format!("{h64}.{p64}.{}", spare_bit(s64)),
                JwtError::BadSignature,
            ),
        ] {
            assert_eq!(v.verify_raw(&forged).map(|_| ()), Err(want), "{forged}");
        }
    }

    /// `exp`, `nbf` and `iat` are compared with the leeway on the right side of each bound.
    #[test]
    fn time_claims_honour_the_leeway_at_its_bounds() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let v = builder()
            .leeway(Duration::from_secs(60))
            .unwrap()
            .build()
            .unwrap();
        let exp = now + 600.0;
        for (claims, want) in [
            (json!({ "exp": now - 50.0 }), Ok(())),
            (json!({ "exp": now - 70.0 }), Err(JwtError::Expired)),
            (json!({ "exp": -1 }), Err(JwtError::Expired)),
            (json!({ "exp": exp, "nbf": now + 50.0 }), Ok(())),
            (
                json!({ "exp": exp, "nbf": now + 70.0 }),
                Err(JwtError::NotYetValid),
            ),
            (
                json!({ "exp": exp, "nbf": 1e300 }),
                Err(JwtError::NotYetValid),
            ),
            (json!({ "exp": exp, "iat": now + 50.0 }), Ok(())),
            (
                json!({ "exp": exp, "iat": now + 70.0 }),
                Err(JwtError::IssuedInFuture),
            ),
            (
                json!({ "exp": exp, "iat": "0" }),
                Err(JwtError::BadClaimType("iat")),
            ),
        ] {
            let mut claims = claims;
            claims["sub"] = json!("user-1");
            let header = b64(r#"{"alg":"HS256"}"#);
            let t = sign(&header, &b64(&claims.to_string()));
            assert_eq!(v.verify_raw(&t).map(|_| ()), want, "{claims}");
        }
    }

    /// RFC 8725 §3.1: each key is used with one algorithm. One secret configured under two
    /// `kid`s for two algorithms was accepted, so it verified both.
    #[test]
    fn one_key_for_two_algorithms_is_refused_at_build_time() {
        let s64 = b"k7Qz2vX9pL4mN8rT1wY6uE3sA5dF0gHjQw8Er4Ty1Ui5Op9As3Df7Gh2Jk6Lz0Xc";
        let two = |alg_a, a: &[u8], alg_b, b: &[u8]| {
            JwtVerifier::builder()
                .hmac(Some("a"), alg_a, a)
                .unwrap()
                .hmac(Some("b"), alg_b, b)
                .unwrap()
                .build()
        };
        match two(Algorithm::HS256, s64, Algorithm::HS512, s64) {
            Err(KeyError::KeySet(why)) => {
                assert!(why.contains(r#"kid "a" (HS256)"#), "{why}");
                assert!(why.contains(r#"kid "b" (HS512)"#), "{why}");
                assert!(why.contains("RFC 8725"), "{why}");
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        // One key under two kids for one algorithm (a rotation overlap), or two keys: fine.
        assert!(two(Algorithm::HS256, s64, Algorithm::HS256, s64).is_ok());
        assert!(two(Algorithm::HS256, &s64[..32], Algorithm::HS512, s64).is_ok());
    }

    /// A public key as an HMAC secret (the HS256/RS256 confusion, RFC 8725 §2.1): its PEM
    /// text was accepted as a strong secret, and a token signed with the public key as the
    /// HMAC key verified. Its PEM is refused on its own; its DER (or modulus) beside the key
    /// itself, at build time.
    #[test]
    fn a_public_key_as_an_hmac_secret_is_refused() {
        let pem: &[u8] = include_bytes!("../../tests/tests/fixtures/rsa-public.pem");
        match JwtVerifier::builder().hmac(Some("hs"), Algorithm::HS256, pem) {
            Err(KeyError::WeakSecret { why, .. }) => assert!(why.contains("PEM"), "{why}"),
            other => panic!("{:?}", other.map(|_| ())),
        }
        let body: String = std::str::from_utf8(pem)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        let built = JwtVerifier::builder()
            .public_pem(Some("rsa"), Algorithm::RS256, pem)
            .unwrap()
            .hmac(Some("hs"), Algorithm::HS256, &der)
            .unwrap()
            .build();
        match built {
            Err(KeyError::KeySet(why)) => assert!(why.contains("are one key"), "{why}"),
            other => panic!("{:?}", other.map(|_| ())),
        }
    }

    /// `max_token_len(0)` (or anything shorter than the shortest token) was taken and
    /// refused every token, silently; it is a start-up error now, by `build` and by
    /// `connect` (before any JWKS fetch), that says what to change.
    #[tokio::test]
    async fn max_token_len_shorter_than_any_token_is_refused_at_start_up() {
        assert_eq!(MIN_TOKEN_LEN, 93);
        for bytes in [0, 1, 20, MIN_TOKEN_LEN - 1] {
            let err = builder()
                .max_token_len(bytes)
                .build()
                .map(|_| ())
                .unwrap_err();
            assert_eq!(err, KeyError::MaxTokenLen(bytes));
            let why = err.to_string();
            assert!(why.contains(&format!("max_token_len({bytes})")), "{why}");
            assert!(why.contains("93 bytes"), "{why}");
            assert!(why.contains("leave .max_token_len() out"), "{why}");
            let err = JwtVerifier::builder()
                .jwks_url("https://idp.example/jwks", crate::JwksPolicy::new())
                .max_token_len(bytes)
                .connect()
                .await
                .map(|_| ())
                .unwrap_err();
            assert_eq!(err, KeyError::MaxTokenLen(bytes));
        }
        assert!(builder().max_token_len(MIN_TOKEN_LEN).build().is_ok());
        assert!(builder().max_token_len(usize::MAX).build().is_ok());
    }

    /// `max_age(Duration::ZERO)` (or anything under a second, counted in whole seconds) was
    /// taken and refused every token issued more than the leeway ago: tokens stopped working
    /// about 30 s after they were issued. It is a start-up error now.
    #[test]
    fn a_max_age_under_a_second_is_refused_at_start_up() {
        for short in [Duration::ZERO, Duration::from_millis(999)] {
            let err = builder().max_age(short).build().map(|_| ()).unwrap_err();
            assert_eq!(err, KeyError::MaxAge, "{short:?}");
            assert!(err.to_string().contains("leave .max_age() out"), "{err}");
        }
        assert!(builder().max_age(Duration::from_secs(1)).build().is_ok());
    }

    /// [`MIN_TOKEN_LEN`] is a sound lower bound: the shortest token (HS256, `exp` and a
    /// one-letter `sub`) is that long and verifies with that limit.
    #[test]
    fn the_shortest_token_verifies_at_the_least_max_token_len() {
        let shortest = sign(&b64(r#"{"alg":"HS256"}"#), &b64(r#"{"exp":9e9,"sub":"a"}"#));
        assert_eq!(shortest.len(), MIN_TOKEN_LEN);
        let v = builder().max_token_len(MIN_TOKEN_LEN).build().unwrap();
        let (principal, _) = v.verify_raw(&shortest).unwrap();
        assert_eq!(principal.subject, "a");
        let longer = sign(
            &b64(r#"{"alg":"HS256"}"#),
            &b64(r#"{"exp":9e9,"sub":"ab"}"#),
        );
        assert_eq!(v.verify_raw(&longer).map(|_| ()), Err(JwtError::TooLong));
    }

    /// One RSA key reads as one key whether it came from a PEM (PKCS#1 DER, with the sign
    /// byte DER puts before a modulus whose top bit is set) or from a JWK's `n` and `e`.
    #[test]
    fn rsa_key_material_is_the_same_from_der_and_from_components() {
        let n = [0xc5u8; 256];
        let mut der = vec![0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00];
        der.extend_from_slice(&n);
        der.extend_from_slice(&[0x02, 0x03, 0x01, 0x00, 0x01]);
        let key = |alg, key| VerifyKey {
            kid: None,
            alg,
            key,
        };
        let pem = key(Algorithm::RS256, DecodingKey::from_rsa_der(&der));
        let jwk = key(
            Algorithm::PS256,
            DecodingKey::from_rsa_raw_components(&n, &[0, 1, 0, 1]),
        );
        assert_eq!(pem.material(), (&n[..], &[1u8, 0, 1][..]));
        assert_eq!(pem.material(), jwk.material());
        let other = key(
            Algorithm::PS256,
            DecodingKey::from_rsa_raw_components(&n, &[3]),
        );
        assert_ne!(pem.material(), other.material());
    }

    /// A public key's base64 text (a PEM without its `-----BEGIN` lines, as Keycloak shows a
    /// realm's key and serves it in the realm's `public_key`) or a JWK's `n` was accepted as
    /// an HMAC secret: anyone who can read the key signs tokens with it (RFC 8725 §2.1).
    #[test]
    fn a_public_keys_base64_text_as_an_hmac_secret_is_refused() {
        use sha2::Digest;
        let pem = include_str!("../../tests/tests/fixtures/rsa-public.pem");
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let lines: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(|l| format!("{l}\n"))
            .collect();
        for secret in [&body, &lines] {
            match JwtVerifier::builder().hmac(Some("hs"), Algorithm::HS256, secret.as_bytes()) {
                Err(KeyError::WeakSecret { why, .. }) => {
                    assert!(why.contains("public key"), "{why}");
                }
                other => panic!("accepted as a secret: {:?}", other.map(|_| ())),
            }
        }
        // A JWK's `n` (base64url of the modulus) beside the key itself.
        let rsa = VerifyKey {
            kid: None,
            alg: Algorithm::RS256,
            key: DecodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        };
        let n = URL_SAFE_NO_PAD.encode(rsa.material().0);
        let built = JwtVerifier::builder()
            .public_pem(Some("rsa"), Algorithm::RS256, pem.as_bytes())
            .unwrap()
            .hmac(Some("hs"), Algorithm::HS256, n.as_bytes())
            .unwrap()
            .build();
        match built {
            Err(KeyError::KeySet(why)) => assert!(why.contains("are one key"), "{why}"),
            other => panic!("n accepted as a secret: {:?}", other.map(|_| ())),
        }
        // Random base64 secrets (`openssl rand -base64 48`) are still fine.
        for i in 0u32..2000 {
            let bytes = sha2::Sha512::digest(i.to_le_bytes());
            let secret = base64::engine::general_purpose::STANDARD.encode(&bytes[..48]);
            assert!(
                JwtVerifier::builder()
                    .hmac(None, Algorithm::HS256, secret.as_bytes())
                    .is_ok(),
                "{secret}"
            );
        }
    }

    /// `.issuer("")` or `.audience("")` (an unset variable read as empty, say), or one with
    /// spaces around it, was taken and refused every real token, silently; it is a start-up
    /// error now, by `build` and by `connect`, that says what to change.
    #[tokio::test]
    async fn an_empty_issuer_or_audience_is_refused_at_start_up() {
        for (value, what) in [("", "empty"), ("  ", "empty"), (" notes-api", "spaces")] {
            for (name, built) in [
                ("issuer", builder().issuer(value).build()),
                ("audience", builder().audience(value).build()),
            ] {
                let Err(err) = built else {
                    panic!("{name}({value:?}) was taken: every token would be refused");
                };
                let why = err.to_string();
                assert!(why.contains(&format!("{name} {value:?}")), "{why}");
                assert!(why.contains(what), "{why}");
                assert!(why.contains(&format!("leave .{name}() out")), "{why}");
            }
            let connected = JwtVerifier::builder()
                .jwks_url("https://idp.example/jwks", crate::JwksPolicy::new())
                .audience(value)
                .connect()
                .await;
            let Err(err) = connected else {
                panic!("audience({value:?}) was taken by connect");
            };
            assert!(err.to_string().starts_with("audience"), "{err}");
        }
        assert!(
            builder()
                .issuer("https://idp.example/")
                .audience("a")
                .build()
                .is_ok()
        );
    }

    /// Example secrets from pages everyone reads (jwt.io's debugger, Supabase's local
    /// stack, PostgREST's tutorial) were accepted as HMAC secrets once they were long enough:
    /// anyone who has read the same page signs tokens.
    #[test]
    fn well_known_example_secrets_are_refused() {
        for secret in [
            "a-string-secret-at-least-256-bits-long",
            "A-String-Secret-At-Least-256-Bits-Long",
            "super-secret-jwt-token-with-at-least-32-characters-long",
            "reallyreallyreallyreallyverysafe",
            "your-256-bit-secret",
            "secret",
            // As read from a file, with its last line break.
            "a-string-secret-at-least-256-bits-long\n",
            " reallyreallyreallyreallyverysafe\r\n",
        ] {
            match JwtVerifier::builder().hmac(None, Algorithm::HS256, secret.as_bytes()) {
                Err(KeyError::WeakSecret { why, .. }) => {
                    assert!(why.contains("well-known example"), "{secret}: {why}");
                    assert!(why.contains("openssl rand -base64 48"), "{secret}: {why}");
                }
                other => panic!("{secret} accepted: {:?}", other.map(|_| ())),
            }
        }
        // Not a prefix or a part of one: only the example itself is known.
        let longer = "a-string-secret-at-least-256-bits-long-k7Qz2vX9pL4mN8rT1wY6";
        assert!(
            JwtVerifier::builder()
                .hmac(None, Algorithm::HS256, longer.as_bytes())
                .is_ok()
        );
    }

    /// A pattern repeated was refused only for periods up to 8 bytes: 16 hex digits twice
    /// (`0123456789abcdef0123456789abcdef`) passed, and so did any pattern cut short at the
    /// end. Any period up to half the secret's length is refused now.
    #[test]
    fn secrets_repeating_any_pattern_are_refused() {
        let s64 = "k7Qz2vX9pL4mN8rT1wY6uE3sA5dF0gHjQw8Er4Ty1Ui5Op9As3Df7Gh2Jk6Lz0Xc";
        let twice = |part: &str| format!("{part}{part}");
        for secret in [
            "0123456789abcdef0123456789abcdef".to_owned(),
            "0123456789abcdef0123456789abcdef0123".to_owned(),
            twice(&s64[..16]),
            twice(&s64[..20]),
            twice(&s64[..32]),
            format!("{}{}", twice(&s64[..17]), &s64[..5]),
        ] {
            match JwtVerifier::builder().hmac(None, Algorithm::HS256, secret.as_bytes()) {
                Err(KeyError::WeakSecret { why, .. }) => {
                    assert!(why.contains("repeated pattern"), "{secret}: {why}");
                }
                other => panic!("{secret} accepted: {:?}", other.map(|_| ())),
            }
        }
        // A pattern repeated in part only is as random as the rest of it.
        let half_again = format!("{s64}{}", &s64[..31]);
        assert!(
            JwtVerifier::builder()
                .hmac(None, Algorithm::HS256, half_again.as_bytes())
                .is_ok()
        );
    }

    #[test]
    fn hmac_secrets_are_at_least_the_hash_size() {
        // 32, 48 and 64 random-looking bytes.
        let s64 = b"k7Qz2vX9pL4mN8rT1wY6uE3sA5dF0gHjQw8Er4Ty1Ui5Op9As3Df7Gh2Jk6Lz0Xc";
        let (s32, s48) = (&s64[..32], &s64[..48]);
        let ok = |alg, s: &[u8]| JwtVerifier::builder().hmac(None, alg, s).is_ok();
        assert!(ok(Algorithm::HS256, s32));
        assert!(!ok(Algorithm::HS384, s32));
        assert!(ok(Algorithm::HS384, s48));
        assert!(!ok(Algorithm::HS512, s48));
        assert!(ok(Algorithm::HS512, s64));
        match JwtVerifier::builder().hmac(Some("k1"), Algorithm::HS512, s32) {
            Err(KeyError::WeakSecret { name, why }) => {
                assert_eq!(name, r#"kid "k1""#);
                assert!(why.contains("64 bytes") && why.contains("HS512"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }
}
