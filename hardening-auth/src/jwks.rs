//! JWK Sets fetched from the identity provider's `jwks_uri`: cached, refreshed in the
//! background, and refreshed early (at most once per interval) when a token names an
//! unknown `kid`.
//!
//! Verification never waits for the network: it reads the cached set through an `Arc`
//! swapped under a short `RwLock` (never held across an await). A token with an unknown
//! `kid` is refused at once ([`JwtError::UnknownKey`](crate::JwtError::UnknownKey)) and wakes
//! the refresh task; [`JwtVerifier::verify_async`](crate::JwtVerifier::verify_async) instead
//! waits for that refresh when one is allowed.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_LENGTH, HOST, USER_AGENT};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;
use tokio::sync::{Mutex, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::KeyError;
use crate::jwt::{RSA_MAX_BITS, RSA_MIN_BITS, VerifyKey};

/// The tracing target of JWKS fetches and refreshes.
const JWKS_TARGET: &str = "hardening::auth::jwks";

/// [`JwksPolicy::max_key_age`]'s default: a day.
const DEFAULT_MAX_KEY_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// The longest [`JwksPolicy::max_key_age`] taken: 30 days.
const LONGEST_MAX_KEY_AGE: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// How a JWK Set is fetched and kept fresh.
///
/// Checked when the verifier starts
/// ([`JwtVerifierBuilder::connect`](crate::JwtVerifierBuilder::connect)): a zero minimum
/// interval, timeout or size, a `refresh_every` under the minimum interval, or a
/// `max_key_age` out of its range is a [`KeyError::Jwks`](crate::KeyError::Jwks) saying
/// what to change.
///
/// ```
/// use std::time::Duration;
/// use hardening_auth::JwksPolicy;
///
/// let policy = JwksPolicy::new()
///     .min_refresh_interval(Duration::from_secs(60))
///     .refresh_every(Duration::from_secs(600))
///     .max_key_age(Duration::from_secs(6 * 3600));
/// assert_eq!(policy, JwksPolicy::default()
///     .min_refresh_interval(Duration::from_secs(60))
///     .refresh_every(Duration::from_secs(600))
///     .max_key_age(Duration::from_secs(6 * 3600)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct JwksPolicy {
    pub(crate) min_interval: Duration,
    pub(crate) refresh_every: Duration,
    pub(crate) timeout: Duration,
    pub(crate) max_bytes: usize,
    pub(crate) plain_http: bool,
    /// `None`: no bound ([`JwksPolicy::dangerous_keep_keys_while_fetches_fail`]).
    pub(crate) max_key_age: Option<Duration>,
}

impl Default for JwksPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl JwksPolicy {
    /// At most one fetch per 30 s, a routine refresh every 5 minutes, a 5 s timeout, a
    /// 1 MiB response limit, and keys unused once no fetch has succeeded for 24 hours.
    pub fn new() -> Self {
        Self {
            min_interval: Duration::from_secs(30),
            refresh_every: Duration::from_secs(300),
            timeout: Duration::from_secs(5),
            max_bytes: 1024 * 1024,
            plain_http: false,
            max_key_age: Some(DEFAULT_MAX_KEY_AGE),
        }
    }

    /// The least time between two fetches, whatever asks for them (default 30 s): tokens
    /// with forged `kid`s cannot make us hammer the identity provider.
    pub fn min_refresh_interval(mut self, interval: Duration) -> Self {
        self.min_interval = interval;
        self
    }

    /// How often the set is fetched anyway, so keys the provider removed stop verifying
    /// (default 5 minutes; at least the minimum interval). After a failed fetch the next try
    /// comes after the minimum interval.
    ///
    /// Also how long the cached keys outlive a set with no usable key (empty, or every key
    /// ignored: of an unsupported kind, or sharing its `kid` with another key of the set).
    /// They are dropped `refresh_every` after the first such answer unless a usable set
    /// arrives in between, whatever fetches fail meanwhile: the provider's last word was "no
    /// keys", and a glitch has that long to clear. So a provider that withdrew every key is
    /// obeyed within about the same time as one that withdrew a few, even if it cannot be
    /// reached afterwards. Otherwise a failed fetch (unreachable, not 200, not a JWK Set)
    /// keeps them, for at most [`max_key_age`](Self::max_key_age).
    pub fn refresh_every(mut self, every: Duration) -> Self {
        self.refresh_every = every;
        self
    }

    /// How long one fetch may take, connection included (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest response accepted, in bytes (default 1 MiB).
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Lets the built-in fetcher get the key set over plain `http://` from a host that is not
    /// loopback (an identity provider inside a network you trust). Without it that is a
    /// start-up error: anyone on the path could substitute keys and mint tokens. Logs a
    /// warning at start-up.
    pub fn dangerous_allow_plain_http(mut self) -> Self {
        self.plain_http = true;
        self
    }

    /// How long the cached keys may be used after the last successful fetch (default 24
    /// hours). While fetches fail (unreachable, not 200, not a JWK Set), the keys keep
    /// verifying until then (unless the last answer had no usable key: see
    /// [`refresh_every`](Self::refresh_every)); after that, tokens signed with them are refused as with an
    /// unknown key (401) and an error is logged, until a fetch succeeds. Without a bound,
    /// whoever can block the fetch keeps a key the provider withdrew in use.
    ///
    /// The default rides out most of a day of outage of the provider (or of the way to it)
    /// with no token refused, and keeps a withdrawn key no longer than that. It must be
    /// longer than [`refresh_every`](Self::refresh_every) plus the
    /// [`timeout`](Self::timeout) (else keys expire before the routine refresh replaces
    /// them), and at most 30 days; start-up checks both. Longer than 24 hours is logged as
    /// a loosening.
    pub fn max_key_age(mut self, age: Duration) -> Self {
        self.max_key_age = Some(age);
        self
    }

    /// **Loosens**: keeps the cached keys for as long as fetches fail, with no
    /// [`max_key_age`](Self::max_key_age): whoever can block the fetch keeps a key the
    /// provider withdrew in use for good. A set with no usable key still drops them after
    /// [`refresh_every`](Self::refresh_every). Logs a warning at start-up.
    pub fn dangerous_keep_keys_while_fetches_fail(mut self) -> Self {
        self.max_key_age = None;
        self
    }
}

/// Why a JWK Set could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwksFetchError {
    /// No connection, a TLS failure, or the connection broke.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// A status other than 200 (redirects are not followed).
    #[error("answered HTTP {0} (expected 200; redirects are not followed)")]
    Status(u16),
    /// The response is over the size limit.
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    /// No complete answer in time.
    #[error("no complete answer within {0:?}")]
    TimedOut(Duration),
    /// This fetcher cannot fetch this URL (an `https://` URL without TLS, say).
    #[error("{0}")]
    Unsupported(String),
}

/// A boxed fetch, so fetchers can be chosen at run time.
pub type JwksFetchFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<u8>, JwksFetchError>> + Send + 'a>>;

/// Fetches the bytes of a JWK Set. [`HttpFetcher`] is the built-in one; implement this to
/// bring your own HTTP client (a proxy, a private CA, a test double).
pub trait JwksFetcher: Send + Sync + fmt::Debug + 'static {
    /// Whether this fetcher can fetch URLs of this scheme (`"http"`, `"https"`); asked once,
    /// at start-up.
    fn supports_scheme(&self, scheme: &str) -> bool;

    /// GETs `url` and returns the body of a 200 answer, refusing anything larger than
    /// `max_bytes`. The caller enforces the timeout.
    fn fetch<'a>(&'a self, url: &'a Uri, max_bytes: usize) -> JwksFetchFuture<'a>;
}

/// The built-in fetcher: one HTTP/1.1 GET per fetch on a fresh connection (hyper), no
/// redirects followed, body size bounded. `http://` always; `https://` with the
/// `jwks-rustls` feature (rustls with ring, Mozilla's roots by default).
///
/// ```
/// use hardening_auth::{HttpFetcher, JwksFetcher};
///
/// let plain = HttpFetcher::plain();
/// assert!(plain.supports_scheme("http"));
/// assert!(!plain.supports_scheme("https"));
/// ```
#[derive(Clone, Default)]
pub struct HttpFetcher {
    #[cfg(feature = "jwks-rustls")]
    tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
}

impl fmt::Debug for HttpFetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpFetcher")
            .field("https", &self.supports_scheme("https"))
            .finish()
    }
}

impl HttpFetcher {
    /// `http://` only. Fine for an identity provider on loopback or inside the cluster; over
    /// any other network a plain-HTTP JWKS lets whoever is on the path substitute keys.
    pub fn plain() -> Self {
        Self {
            #[cfg(feature = "jwks-rustls")]
            tls: None,
        }
    }

    /// `http://` and `https://`, trusting Mozilla's root certificates (`webpki-roots`).
    #[cfg(feature = "jwks-rustls")]
    pub fn with_webpki_roots() -> Self {
        use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto::ring};
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let tls = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .ok()
            .map(|b| {
                let mut config = b.with_root_certificates(roots).with_no_client_auth();
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                Arc::new(config)
            });
        Self { tls }
    }

    /// `http://` and `https://` with your own rustls configuration (a private CA, say); its
    /// ALPN list, if any, must offer `http/1.1`.
    #[cfg(feature = "jwks-rustls")]
    pub fn with_tls_config(config: Arc<tokio_rustls::rustls::ClientConfig>) -> Self {
        Self { tls: Some(config) }
    }

    /// What the builder uses when given no fetcher: with `jwks-rustls`, HTTPS with Mozilla's
    /// roots; without it, plain HTTP only.
    pub(crate) fn default_for_builder() -> Self {
        #[cfg(feature = "jwks-rustls")]
        {
            Self::with_webpki_roots()
        }
        #[cfg(not(feature = "jwks-rustls"))]
        {
            Self::plain()
        }
    }

    async fn get(&self, url: &Uri, max_bytes: usize) -> Result<Vec<u8>, JwksFetchError> {
        let https = match url.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => {
                return Err(JwksFetchError::Unsupported(
                    "only http:// and https:// URLs can be fetched".into(),
                ));
            }
        };
        let Some(host) = url.host() else {
            return Err(JwksFetchError::Unsupported("the URL has no host".into()));
        };
        let bare_host = host.trim_start_matches('[').trim_end_matches(']');
        let port = url.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tcp = tokio::net::TcpStream::connect((bare_host, port))
            .await
            .map_err(|e| JwksFetchError::Unreachable(e.to_string()))?;
        if !https {
            return request(hyper_util::rt::TokioIo::new(tcp), url, max_bytes).await;
        }
        #[cfg(feature = "jwks-rustls")]
        if let Some(config) = &self.tls {
            use tokio_rustls::rustls::pki_types::ServerName;
            let name = ServerName::try_from(bare_host.to_owned()).map_err(|_| {
                JwksFetchError::Unsupported("the host is not a valid TLS name".into())
            })?;
            let tls = tokio_rustls::TlsConnector::from(config.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| JwksFetchError::Unreachable(format!("TLS: {e}")))?;
            return request(hyper_util::rt::TokioIo::new(tls), url, max_bytes).await;
        }
        drop(tcp);
        Err(JwksFetchError::Unsupported(NO_TLS.into()))
    }
}

const NO_TLS: &str = "https:// needs TLS: enable hardening-auth's `jwks-rustls` feature, or pass a \
                      TLS-capable fetcher with `.jwks_fetcher(…)`";

impl JwksFetcher for HttpFetcher {
    fn supports_scheme(&self, scheme: &str) -> bool {
        match scheme {
            "http" => true,
            #[cfg(feature = "jwks-rustls")]
            "https" => self.tls.is_some(),
            _ => false,
        }
    }

    fn fetch<'a>(&'a self, url: &'a Uri, max_bytes: usize) -> JwksFetchFuture<'a> {
        Box::pin(self.get(url, max_bytes))
    }
}

/// One GET over an established connection, driving the connection in this same future (no
/// task outlives the fetch).
async fn request<T>(io: T, url: &Uri, max_bytes: usize) -> Result<Vec<u8>, JwksFetchError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let broken = |e: &dyn fmt::Display| JwksFetchError::Unreachable(e.to_string());
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(io)
        .await
        .map_err(|e| broken(&e))?;
    let authority = url.authority().map_or("", |a| a.as_str());
    let path = url.path_and_query().map_or("/", |p| p.as_str());
    let req = Request::get(path)
        .header(HOST, authority)
        .header(ACCEPT, "application/jwk-set+json, application/json")
        .header(USER_AGENT, "hardening-auth")
        .body(Empty::new())
        .map_err(|e| broken(&e))?;
    let exchange = async move {
        let res = sender.send_request(req).await.map_err(|e| broken(&e))?;
        if res.status() != StatusCode::OK {
            return Err(JwksFetchError::Status(res.status().as_u16()));
        }
        let declared = res
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max_bytes as u64) {
            return Err(JwksFetchError::TooLarge(max_bytes));
        }
        let body = Limited::new(res.into_body(), max_bytes)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    JwksFetchError::TooLarge(max_bytes)
                } else {
                    broken(&e)
                }
            })?;
        Ok(body.to_bytes().to_vec())
    };
    tokio::pin!(exchange);
    tokio::pin!(conn);
    tokio::select! {
        biased;
        result = &mut exchange => result,
        // The connection ended first: whatever the body channel holds decides.
        _ = &mut conn => exchange.await,
    }
}

/// The keys of one fetched set, by `kid`.
type KeyMap = HashMap<String, Arc<VerifyKey>>;

/// A key of the set that is not used, and why (for the log).
#[derive(Debug)]
struct Skipped {
    kid: String,
    why: &'static str,
    loud: bool,
}

/// The longest `kid` logged, in characters.
const KID_LOG_CHARS: usize = 64;

/// A set's `kid` for the log and errors: cut after [`KID_LOG_CHARS`] characters (the set is
/// the provider's, but a `kid` can be of any length). Logged with `?`, so escaped.
fn kid_for_log(kid: &str) -> String {
    match kid.char_indices().nth(KID_LOG_CHARS) {
        Some((end, _)) => format!("{}…", &kid[..end]),
        None => kid.to_owned(),
    }
}

/// Parses a JWK Set, keeping only signature keys whose type decides one algorithm:
/// RSA → its `alg` (RS*/PS*; RS256 when absent), EC P-256 → ES256, EC P-384 → ES384,
/// OKP Ed25519 → EdDSA. Symmetric (`oct`) keys are never taken from a JWKS. A key that is
/// also in the set, or among the `configured` keys, for another algorithm is not taken
/// either (RFC 8725 §3.1: each key is used with one algorithm).
fn parse_set(bytes: &[u8], configured: &[VerifyKey]) -> Result<(KeyMap, Vec<Skipped>), String> {
    let set: Value =
        serde_json::from_slice(bytes).map_err(|_| "the response is not JSON".to_owned())?;
    let Some(keys) = set.get("keys").and_then(Value::as_array) else {
        return Err("the response is not a JWK Set (no \"keys\" array)".to_owned());
    };
    let mut found: Vec<(String, VerifyKey)> = Vec::new();
    let mut skipped = Vec::new();
    for raw in keys {
        let Some(kid) = raw.get("kid").and_then(Value::as_str) else {
            skipped.push(Skipped {
                kid: "(none)".into(),
                why: "no kid (tokens are matched to JWKS keys by kid)",
                loud: true,
            });
            continue;
        };
        match parse_key(raw) {
            Ok((alg, key)) => found.push((
                kid.to_owned(),
                VerifyKey {
                    kid: Some(kid.to_owned()),
                    alg,
                    key,
                },
            )),
            Err((why, loud)) => skipped.push(Skipped {
                kid: kid_for_log(kid),
                why,
                loud,
            }),
        }
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (kid, _) in &found {
        *counts.entry(kid.as_str()).or_default() += 1;
    }
    let ambiguous: HashSet<String> = counts
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(k, _)| k.to_owned())
        .collect();
    // RFC 8725 §3.1: one key, one algorithm. The algorithm each key of the set is for, or
    // `None` when the set has it under kids for two algorithms (which one the provider means
    // is unknown, so neither is used).
    // Only entries that could be used count: one skipped for its `kid` does not take its
    // key's other entries with it.
    let usable = |kid: &String| {
        !ambiguous.contains(kid) && !configured.iter().any(|c| c.kid.as_ref() == Some(kid))
    };
    let mut algs: HashMap<(&[u8], &[u8]), Option<Algorithm>> = HashMap::new();
    for (_, key) in found.iter().filter(|(kid, _)| usable(kid)) {
        algs.entry(key.material())
            .and_modify(|alg| {
                if *alg != Some(key.alg) {
                    *alg = None;
                }
            })
            .or_insert(Some(key.alg));
    }
    let two_algs: Vec<Option<&'static str>> = found
        .iter()
        .map(|(_, key)| {
            if algs.get(&key.material()) == Some(&None) {
                Some(
                    "the set has this key under another kid for another algorithm: each key is \
                     used with one algorithm only (RFC 8725 §3.1), publish a key of its own for \
                     each algorithm",
                )
            } else if configured
                .iter()
                .any(|c| c.alg != key.alg && c.material() == key.material())
            {
                Some(
                    "this key is configured for another algorithm: each key is used with one \
                     algorithm only (RFC 8725 §3.1)",
                )
            } else {
                None
            }
        })
        .collect();
    let mut map = KeyMap::new();
    for ((kid, key), two_algs) in found.into_iter().zip(two_algs) {
        let why = if ambiguous.contains(&kid) {
            "kid used by several signature keys of the set (ambiguous)"
        } else if !usable(&kid) {
            "kid already used by a configured key (the configured key wins)"
        } else if let Some(why) = two_algs {
            why
        } else {
            map.insert(kid, Arc::new(key));
            continue;
        };
        skipped.push(Skipped {
            kid: kid_for_log(&kid),
            why,
            loud: true,
        });
    }
    Ok((map, skipped))
}

/// The members of a private JWK (RFC 7518 §6.2.2, §6.3.2; RFC 8037 §2): a key that has
/// them was published with what signs.
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "oth"];

fn parse_key(raw: &Value) -> Result<(Algorithm, DecodingKey), (&'static str, bool)> {
    let kty = raw.get("kty").and_then(Value::as_str).unwrap_or_default();
    if kty == "oct" {
        return Err((
            "symmetric (oct) key: never accepted from a JWKS (a published secret is no secret)",
            true,
        ));
    }
    if PRIVATE_MEMBERS.iter().any(|m| raw.get(m).is_some()) {
        return Err((
            "a private key (it has private members such as \"d\"): published, anyone can \
             sign with it; the provider must publish public keys only",
            true,
        ));
    }
    match raw.get("use") {
        None => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(_) => return Err(("not a signature key (use is not \"sig\")", false)),
    }
    if let Some(ops) = raw.get("key_ops")
        && !ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|o| o.as_str() == Some("verify")))
    {
        return Err(("key_ops does not include \"verify\"", false));
    }
    let jwk: Jwk =
        serde_json::from_value(raw.clone()).map_err(|_| ("does not parse as a JWK", true))?;
    let declared = jwk.common.key_algorithm;
    let alg = match (&jwk.algorithm, declared) {
        (AlgorithmParameters::RSA(rsa), declared) => {
            let bits = modulus_bits(&rsa.n).ok_or(("RSA modulus is not base64url", true))?;
            if bits < RSA_MIN_BITS {
                return Err((
                    "RSA modulus shorter than 2048 bits (supported: 2048 to 4096 bits)",
                    true,
                ));
            }
            if bits > RSA_MAX_BITS {
                // The RSA backend refuses these at verification: the key could verify nothing.
                return Err((
                    "RSA modulus longer than 4096 bits (supported: 2048 to 4096 bits)",
                    true,
                ));
            }
            if !exponent_is_usable(&rsa.e) {
                // The RSA backend refuses it at verification: the key could verify nothing.
                return Err((
                    "RSA exponent is not an odd number from 3 to 2^33 - 1 (it would verify nothing)",
                    true,
                ));
            }
            match declared {
                None | Some(KeyAlgorithm::RS256) => Algorithm::RS256,
                Some(KeyAlgorithm::RS384) => Algorithm::RS384,
                Some(KeyAlgorithm::RS512) => Algorithm::RS512,
                Some(KeyAlgorithm::PS256) => Algorithm::PS256,
                Some(KeyAlgorithm::PS384) => Algorithm::PS384,
                Some(KeyAlgorithm::PS512) => Algorithm::PS512,
                Some(_) => return Err(("alg is not a signature algorithm for RSA", true)),
            }
        }
        (AlgorithmParameters::EllipticCurve(ec), declared) => {
            let (alg, size) = match (&ec.curve, declared) {
                (EllipticCurve::P256, None | Some(KeyAlgorithm::ES256)) => (Algorithm::ES256, 32),
                (EllipticCurve::P384, None | Some(KeyAlgorithm::ES384)) => (Algorithm::ES384, 48),
                _ => return Err(("EC curve unsupported or alg does not fit the curve", true)),
            };
            if !(is_of_size(&ec.x, size) && is_of_size(&ec.y, size)) {
                return Err((
                    "EC coordinates are not base64url of the curve's size (it would verify nothing)",
                    true,
                ));
            }
            alg
        }
        (AlgorithmParameters::OctetKeyPair(okp), None | Some(KeyAlgorithm::EdDSA))
            if okp.curve == EllipticCurve::Ed25519 =>
        {
            if !is_of_size(&okp.x, 32) {
                return Err((
                    "Ed25519 key is not base64url of 32 bytes (it would verify nothing)",
                    true,
                ));
            }
            Algorithm::EdDSA
        }
        _ => return Err(("unsupported key type, curve or alg", true)),
    };
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| ("key material does not decode", true))?;
    Ok((alg, key))
}

/// Whether `value` is base64url of exactly `size` bytes (RFC 7518 §6.2.1.2: EC coordinates
/// are the full size of the curve's field; RFC 8037 §2: an Ed25519 key is 32 bytes).
fn is_of_size(value: &str, size: usize) -> bool {
    URL_SAFE_NO_PAD
        .decode(value)
        .is_ok_and(|bytes| bytes.len() == size)
}

fn modulus_bits(n: &str) -> Option<usize> {
    bit_length(&URL_SAFE_NO_PAD.decode(n.trim_end_matches('=')).ok()?)
}

/// Whether `e` is base64url of an RSA public exponent verification can use: odd, from 3 to
/// 2^33 - 1 (the bounds of the RSA backend, and of ring).
fn exponent_is_usable(e: &str) -> bool {
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(e.trim_end_matches('=')) else {
        return false;
    };
    let Some(first) = bytes.iter().position(|b| *b != 0) else {
        return false;
    };
    let significant = &bytes[first..];
    if significant.len() > 5 {
        return false;
    }
    let value = significant
        .iter()
        .fold(0u64, |value, b| (value << 8) | u64::from(*b));
    value % 2 == 1 && (3..1 << 33).contains(&value)
}

/// The number of significant bits of a big-endian unsigned integer; `None` for zero.
pub(crate) fn bit_length(bytes: &[u8]) -> Option<usize> {
    let first = bytes.iter().position(|b| *b != 0)?;
    let significant = bytes.len() - first;
    Some(significant * 8 - bytes[first].leading_zeros() as usize)
}

/// A JWKS source as configured on the builder.
#[derive(Debug)]
pub(crate) struct JwksSource {
    pub(crate) url: String,
    pub(crate) policy: JwksPolicy,
    pub(crate) fetcher: Option<Arc<dyn JwksFetcher>>,
}

/// Whether a JWKS URL is refused for its transport: plain `http://` to a host that is not
/// loopback, fetched by the built-in fetcher (a fetcher of your own is yours to judge),
/// unless [`JwksPolicy::dangerous_allow_plain_http`] says otherwise.
fn refuses_plain_http(scheme: &str, host: &str, policy: &JwksPolicy, own_fetcher: bool) -> bool {
    !own_fetcher && scheme == "http" && !is_loopback(host) && !policy.plain_http
}

/// The cached set and its refresh machinery, held by the verifier; the refresh task stops
/// when the last verifier clone is dropped.
pub(crate) struct Jwks {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for Jwks {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for Jwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<String> = self.shared.current().map.keys().cloned().collect();
        kids.sort();
        f.debug_struct("Jwks")
            .field("url", &self.shared.label)
            .field("kids", &kids)
            .finish_non_exhaustive()
    }
}

struct Shared {
    url: Uri,
    label: String,
    fetcher: Arc<dyn JwksFetcher>,
    policy: JwksPolicy,
    /// The builder's own keys: their `kid`s and key material are not taken from the set.
    configured: Vec<VerifyKey>,
    keys: RwLock<Arc<Cached>>,
    /// Held across the fetch, so fetches never overlap.
    fetches: Mutex<Fetches>,
    /// Wakes the refresh task (an unknown `kid` was seen).
    wake: Notify,
}

/// The keys in use, and until when they may be used (`None`: no bound).
struct Cached {
    map: KeyMap,
    usable_until: Option<Instant>,
}

impl Cached {
    fn expired(&self, now: Instant) -> bool {
        self.usable_until.is_some_and(|until| now >= until)
    }
}

/// The refresh task's record of fetches.
struct Fetches {
    /// When the last fetch began, or ended once it has.
    last: Instant,
    /// When the provider first answered a set with no usable key, since its last usable
    /// set: the cached keys are dropped [`JwksPolicy::refresh_every`] later.
    no_keys_since: Option<Instant>,
}

/// What fetching a set can fail with, for the log and start-up errors.
enum RefreshError {
    Fetch(JwksFetchError),
    Parse(String),
    Empty(Vec<Skipped>),
}

impl fmt::Display for RefreshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fetch(e) => e.fmt(f),
            Self::Parse(why) => f.write_str(why),
            Self::Empty(skipped) => {
                f.write_str("the set has no usable signature key")?;
                for s in skipped {
                    write!(f, "; kid {:?}: {}", s.kid, s.why)?;
                }
                Ok(())
            }
        }
    }
}

impl Shared {
    fn current(&self) -> Arc<Cached> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn fetch(&self) -> Result<KeyMap, RefreshError> {
        let bytes = tokio::time::timeout(
            self.policy.timeout,
            self.fetcher.fetch(&self.url, self.policy.max_bytes),
        )
        .await
        .map_err(|_| RefreshError::Fetch(JwksFetchError::TimedOut(self.policy.timeout)))?
        .map_err(RefreshError::Fetch)?;
        if bytes.len() > self.policy.max_bytes {
            return Err(RefreshError::Fetch(JwksFetchError::TooLarge(
                self.policy.max_bytes,
            )));
        }
        let (map, skipped) = parse_set(&bytes, &self.configured).map_err(RefreshError::Parse)?;
        if map.is_empty() {
            return Err(RefreshError::Empty(skipped));
        }
        for s in &skipped {
            if s.loud {
                tracing::warn!(target: JWKS_TARGET, url = %self.label, kid = ?s.kid, why = s.why, "JWKS key ignored");
            } else {
                tracing::debug!(target: JWKS_TARGET, url = %self.label, kid = ?s.kid, why = s.why, "JWKS key ignored");
            }
        }
        Ok(map)
    }

    /// Fetches now unless the last fetch began or ended less than the minimum interval ago
    /// (then `None`); `Some(true)` when a usable set was loaded. Concurrent callers wait for
    /// the fetch in flight instead of starting another.
    async fn refresh_if_due(&self) -> Option<bool> {
        let mut fetches = self.fetches.lock().await;
        if fetches.last.elapsed() < self.policy.min_interval {
            return None;
        }
        // Counted from the start as well: a `verify_async` caller dropped mid-fetch (its
        // client hung up, a timeout fired) cancels its fetch, which must still use the turn.
        fetches.last = Instant::now();
        let fetched = self.fetch().await;
        // Counted from the end of the fetch: callers that waited for it (a slow IdP) find it
        // fresh instead of each fetching again in turn.
        let now = Instant::now();
        fetches.last = now;
        let cached = self.current();
        let e = match fetched {
            Ok(map) => {
                if cached.map.is_empty() {
                    tracing::info!(target: JWKS_TARGET, url = %self.label, keys = map.len(), "JWKS refreshed; its keys verify tokens again");
                } else {
                    tracing::debug!(target: JWKS_TARGET, url = %self.label, keys = map.len(), "JWKS refreshed");
                }
                fetches.no_keys_since = None;
                self.replace(map, now);
                return Some(true);
            }
            Err(e) => e,
        };
        if cached.expired(now) && !cached.map.is_empty() {
            tracing::error!(
                target: JWKS_TARGET, url = %self.label, error = %e,
                max_key_age = ?self.policy.max_key_age,
                "JWKS: no successful fetch for max_key_age; dropping the cached keys: tokens \
                 signed with them are refused until a fetch succeeds"
            );
            self.replace(KeyMap::new(), now);
            return Some(false);
        }
        if matches!(e, RefreshError::Empty(_)) && fetches.no_keys_since.is_none() {
            fetches.no_keys_since = Some(now);
        }
        let grace = self.policy.refresh_every;
        let left = fetches
            .no_keys_since
            .map(|since| grace.saturating_sub(now.duration_since(since)));
        match left {
            _ if cached.map.is_empty() => {
                tracing::warn!(target: JWKS_TARGET, url = %self.label, error = %e, "JWKS refresh failed; no JWKS key is cached (they were dropped): tokens that need one are refused until a fetch succeeds");
            }
            None => {
                let usable_for = cached
                    .usable_until
                    .map(|until| until.saturating_duration_since(now));
                tracing::warn!(target: JWKS_TARGET, url = %self.label, error = %e, usable_for = ?usable_for, "JWKS refresh failed; keeping the cached keys");
            }
            Some(left) if left.is_zero() => {
                tracing::error!(
                    target: JWKS_TARGET, url = %self.label, error = %e, grace = ?grace,
                    "JWKS: the provider's set has had no usable key for refresh_every; dropping \
                     the cached keys: tokens signed with them are refused until it publishes one"
                );
                self.replace(KeyMap::new(), now);
            }
            Some(left) => {
                tracing::warn!(
                    target: JWKS_TARGET, url = %self.label, error = %e, dropped_in = ?left,
                    "JWKS refresh failed; keeping the cached keys for now (the provider's last \
                     set had no usable key: they are dropped unless it publishes one)"
                );
            }
        }
        Some(false)
    }

    /// Puts `map` in use, fetched at `fetched`.
    fn replace(&self, map: KeyMap, fetched: Instant) {
        let usable_until = self
            .policy
            .max_key_age
            // Never past the clock's range with at most 30 days; were it, unusable at once.
            .map(|age| fetched.checked_add(age).unwrap_or(fetched));
        let cached = Cached { map, usable_until };
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(cached);
    }

    async fn until_due(&self) -> Duration {
        let fetches = self.fetches.lock().await;
        // An interval past the clock's range (possible only without `max_key_age`, which
        // bounds it) is never due.
        fetches
            .last
            .checked_add(self.policy.min_interval)
            .map_or(Duration::MAX, |due| {
                due.saturating_duration_since(Instant::now())
            })
    }
}

async fn run(shared: Arc<Shared>) {
    let mut healthy = true;
    loop {
        let routine = if healthy {
            shared.policy.refresh_every
        } else {
            shared.policy.min_interval
        };
        tokio::select! {
            () = shared.wake.notified() => {}
            () = tokio::time::sleep(routine) => {}
        }
        let wait = shared.until_due().await;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        if let Some(ok) = shared.refresh_if_due().await {
            healthy = ok;
        }
    }
}

fn jwks_error(url: &str, why: impl fmt::Display) -> KeyError {
    KeyError::Jwks(format!("{url}: {why}"))
}

/// The URL without any `user:password@` (for logs and errors).
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Jwks {
    /// Checks the configuration, fetches the set once (an error says what to change), and
    /// starts the refresh task.
    pub(crate) async fn start(
        source: JwksSource,
        configured: Vec<VerifyKey>,
    ) -> Result<Self, KeyError> {
        let JwksSource {
            url: raw,
            policy,
            fetcher,
        } = source;
        let label = redact(&raw);
        let url: Uri = raw.parse().map_err(|_| {
            jwks_error(
                &label,
                "not a URL; give the provider's jwks_uri, like https://idp.example/.well-known/jwks.json",
            )
        })?;
        let scheme = url.scheme_str().unwrap_or_default().to_owned();
        if scheme != "http" && scheme != "https" {
            return Err(jwks_error(
                &label,
                "the URL must start with https:// (or http:// on loopback)",
            ));
        }
        let Some(host) = url.host() else {
            return Err(jwks_error(&label, "the URL has no host"));
        };
        if url.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(jwks_error(
                &label,
                "credentials in the URL would end up in logs; a JWKS is public, remove them",
            ));
        }
        if policy.min_interval.is_zero()
            || policy.timeout.is_zero()
            || policy.max_bytes == 0
            || policy.refresh_every < policy.min_interval
        {
            return Err(jwks_error(
                &label,
                "the policy needs a non-zero minimum interval, timeout and size, and refresh_every \
                 at least the minimum interval",
            ));
        }
        if let Some(age) = policy.max_key_age {
            if age <= policy.refresh_every.saturating_add(policy.timeout) {
                return Err(jwks_error(
                    &label,
                    "max_key_age must be longer than refresh_every plus the timeout, or the keys \
                     expire before the routine refresh replaces them",
                ));
            }
            if age > LONGEST_MAX_KEY_AGE {
                return Err(jwks_error(
                    &label,
                    "max_key_age is at most 30 days; for no bound at all, \
                     JwksPolicy::dangerous_keep_keys_while_fetches_fail()",
                ));
            }
        }
        if refuses_plain_http(&scheme, host, &policy, fetcher.is_some()) {
            return Err(jwks_error(
                &label,
                "plain http:// from a host that is not loopback lets anyone on the path \
                 substitute keys: use https:// (hardening-core's jwks-rustls feature), or, for \
                 an identity provider inside a network you trust, \
                 JwksPolicy::dangerous_allow_plain_http()",
            ));
        }
        let fetcher: Arc<dyn JwksFetcher> =
            fetcher.unwrap_or_else(|| Arc::new(HttpFetcher::default_for_builder()));
        if !fetcher.supports_scheme(&scheme) {
            let why = if scheme == "https" {
                NO_TLS.to_owned()
            } else {
                format!("the fetcher cannot fetch {scheme}:// URLs")
            };
            return Err(jwks_error(&label, why));
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(jwks_error(
                &label,
                "connect() must run inside a tokio runtime",
            ));
        }
        if policy.plain_http && scheme == "http" && !is_loopback(host) {
            tracing::warn!(
                target: "hardening",
                setting = "JwksPolicy::dangerous_allow_plain_http",
                url = %label,
                "hardening loosened: JWKS fetched over plain http from a non-loopback host; anyone on the path can substitute keys"
            );
        }
        match policy.max_key_age {
            None => tracing::warn!(
                target: "hardening",
                setting = "JwksPolicy::dangerous_keep_keys_while_fetches_fail",
                url = %label,
                "hardening loosened: JWKS keys are used for as long as fetches fail; whoever \
                 can block the fetch keeps a key the provider withdrew in use"
            ),
            Some(age) if age > DEFAULT_MAX_KEY_AGE => tracing::warn!(
                target: "hardening",
                setting = "JwksPolicy::max_key_age",
                url = %label,
                max_key_age = ?age,
                "hardening loosened: JWKS keys are used longer than 24 hours after the last \
                 successful fetch"
            ),
            Some(_) => {}
        }
        let shared = Arc::new(Shared {
            url,
            label: label.clone(),
            fetcher,
            policy,
            configured,
            keys: RwLock::new(Arc::new(Cached {
                map: KeyMap::new(),
                usable_until: None,
            })),
            fetches: Mutex::new(Fetches {
                last: Instant::now(),
                no_keys_since: None,
            }),
            wake: Notify::new(),
        });
        let map = shared.fetch().await.map_err(|e| {
            let hint = match e {
                RefreshError::Fetch(_) => {
                    "; check the URL (the provider's jwks_uri) and that it is reachable from here"
                }
                RefreshError::Parse(_) => "; is this the provider's jwks_uri?",
                RefreshError::Empty(_) => "",
            };
            jwks_error(
                &label,
                format!("cannot load the key set at start-up: {e}{hint}"),
            )
        })?;
        let mut kids: Vec<String> = map.keys().map(|k| kid_for_log(k)).collect();
        kids.sort();
        tracing::info!(target: JWKS_TARGET, url = %label, kids = ?kids, "JWKS loaded");
        shared.replace(map, Instant::now());
        let task = tokio::spawn(run(shared.clone()));
        Ok(Self { shared, task })
    }

    /// The cached key for `kid`; none once the keys are older than
    /// [`JwksPolicy::max_key_age`] (checked here too, not only by the refresh task).
    pub(crate) fn get(&self, kid: &str) -> Option<Arc<VerifyKey>> {
        let cached = self.shared.current();
        if cached.expired(Instant::now()) {
            return None;
        }
        cached.map.get(kid).cloned()
    }

    /// Asks the refresh task for a fetch (done when the minimum interval allows).
    pub(crate) fn request_refresh(&self) {
        self.shared.wake.notify_one();
    }

    /// Fetches now if the minimum interval allows; `true` if a usable set was loaded.
    pub(crate) async fn refresh_if_due(&self) -> bool {
        self.shared.refresh_if_due().await == Some(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(keys: Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "keys": keys })).unwrap()
    }

    /// A set of one RSA key, `rsa`.
    fn one_rsa_key() -> Vec<u8> {
        set(serde_json::json!([
            {"kty": "RSA", "kid": "rsa", "n": rsa_n(), "e": "AQAB"}
        ]))
    }

    /// Keys fetched by a scripted fetcher, which serves [`one_rsa_key`] until told otherwise.
    async fn scripted(policy: JwksPolicy) -> (Jwks, Arc<Scripted>) {
        let fetcher = Arc::new(Scripted::new(one_rsa_key()));
        let source = JwksSource {
            url: "https://idp.example/jwks".into(),
            policy,
            fetcher: Some(fetcher.clone()),
        };
        (Jwks::start(source, Vec::new()).await.unwrap(), fetcher)
    }

    fn rsa_n() -> String {
        URL_SAFE_NO_PAD.encode([0xc5u8; 256])
    }

    /// Another 2048-bit modulus: another key than [`rsa_n`]'s.
    fn rsa_n_other() -> String {
        URL_SAFE_NO_PAD.encode([0xc7u8; 256])
    }

    #[test]
    fn plain_http_is_refused_unless_loopback_loosened_or_your_own_fetcher() {
        let strict = JwksPolicy::new();
        let loosened = JwksPolicy::new().dangerous_allow_plain_http();
        assert!(refuses_plain_http("http", "idp.example", &strict, false));
        assert!(refuses_plain_http("http", "10.0.0.7", &strict, false));
        assert!(!refuses_plain_http("http", "idp.example", &loosened, false));
        assert!(!refuses_plain_http("http", "idp.example", &strict, true));
        assert!(!refuses_plain_http("https", "idp.example", &strict, false));
        for loopback in ["127.0.0.1", "localhost", "[::1]"] {
            assert!(
                !refuses_plain_http("http", loopback, &strict, false),
                "{loopback}"
            );
        }
    }

    #[test]
    fn algorithms_come_from_the_key_type() {
        let bytes = set(serde_json::json!([
            {"kty": "RSA", "kid": "rsa", "n": rsa_n(), "e": "AQAB"},
            {"kty": "RSA", "kid": "ps", "alg": "PS384", "n": rsa_n_other(), "e": "AQAB"},
            {"kty": "EC", "kid": "p256", "crv": "P-256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519",
             "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        ]));
        let (map, skipped) = parse_set(&bytes, &[]).unwrap();
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!(map["rsa"].alg, Algorithm::RS256);
        assert_eq!(map["ps"].alg, Algorithm::PS384);
        assert_eq!(map["p256"].alg, Algorithm::ES256);
        assert_eq!(map["ed"].alg, Algorithm::EdDSA);
    }

    /// RFC 8725 §3.1: each key is used with one algorithm. One RSA key published under a
    /// `kid` for RS256 (its `alg`, or none) and another `kid` for PS256 verified both; now
    /// neither is used, and the log names each `kid`. One key under two `kid`s for one
    /// algorithm (a rotation overlap) is still fine.
    #[test]
    fn one_key_under_kids_for_two_algorithms_is_skipped() {
        let n3 = URL_SAFE_NO_PAD.encode([0xc3u8; 256]);
        let p256 = |kid: &str| {
            serde_json::json!({"kty": "EC", "kid": kid, "crv": "P-256",
                "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})
        };
        let bytes = set(serde_json::json!([
            {"kty": "RSA", "kid": "no-alg", "n": rsa_n(), "e": "AQAB"},
            {"kty": "RSA", "kid": "ps256", "alg": "PS256", "n": rsa_n(), "e": "AQAB"},
            // The same modulus with a leading zero byte: still the same key.
            {"kty": "RSA", "kid": "rs512", "alg": "RS512",
             "n": URL_SAFE_NO_PAD.encode([&[0u8][..], &[0xc5; 256]].concat()), "e": "AQAB"},
            {"kty": "RSA", "kid": "other", "alg": "PS256", "n": rsa_n_other(), "e": "AQAB"},
            {"kty": "RSA", "kid": "rotation-a", "alg": "RS256", "n": n3, "e": "AQAB"},
            {"kty": "RSA", "kid": "rotation-b", "n": n3, "e": "AQAB"},
            p256("ec-a"),
            p256("ec-b"),
        ]));
        let (map, skipped) = parse_set(&bytes, &[]).unwrap();
        let mut kept: Vec<_> = map.keys().map(String::as_str).collect();
        kept.sort_unstable();
        assert_eq!(kept, ["ec-a", "ec-b", "other", "rotation-a", "rotation-b"]);
        let mut two_algs: Vec<_> = skipped
            .iter()
            .filter(|s| s.loud && s.why.contains("RFC 8725 §3.1"))
            .map(|s| s.kid.as_str())
            .collect();
        two_algs.sort_unstable();
        assert_eq!(two_algs, ["no-alg", "ps256", "rs512"], "{skipped:?}");
        assert_eq!(skipped.len(), 3, "{skipped:?}");
    }

    /// An entry skipped for its `kid` (ambiguous, or a configured key's) is never used, so it
    /// does not take its key's other entries with it: key A's only usable entry stays.
    #[test]
    fn an_entry_skipped_for_its_kid_does_not_count_as_a_second_algorithm() {
        let bytes = set(serde_json::json!([
            {"kty": "RSA", "kid": "a", "alg": "RS256", "n": rsa_n(), "e": "AQAB"},
            {"kty": "RSA", "kid": "dup", "alg": "PS256", "n": rsa_n(), "e": "AQAB"},
            {"kty": "RSA", "kid": "dup", "alg": "PS256", "n": rsa_n_other(), "e": "AQAB"},
            {"kty": "RSA", "kid": "mine", "alg": "PS384", "n": rsa_n(), "e": "AQAB"},
            {"kty": "RSA", "kid": "b", "alg": "PS256", "n": rsa_n_other(), "e": "AQAB"},
        ]));
        let configured = [VerifyKey {
            kid: Some("mine".to_owned()),
            alg: Algorithm::HS256,
            key: DecodingKey::from_secret(&[]),
        }];
        let (map, skipped) = parse_set(&bytes, &configured).unwrap();
        let mut kept: Vec<_> = map.keys().map(String::as_str).collect();
        kept.sort_unstable();
        assert_eq!(kept, ["a", "b"], "{skipped:?}");
        assert_eq!(skipped.len(), 3, "{skipped:?}");
        assert!(
            skipped.iter().all(|s| !s.why.contains("RFC 8725")),
            "{skipped:?}"
        );
    }

    /// A JWKS key that is one of the configured keys, for another algorithm, is skipped
    /// (the configured key wins, as with a shared `kid`); for the same algorithm it is kept.
    #[test]
    fn a_configured_key_is_not_taken_from_the_set_for_another_algorithm() {
        // The PKCS#1 DER of a PEM holding the key of `rsa_n()` and `AQAB`.
        let mut der = vec![0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00];
        der.extend_from_slice(&[0xc5u8; 256]);
        der.extend_from_slice(&[0x02, 0x03, 0x01, 0x00, 0x01]);
        let configured = [VerifyKey {
            kid: Some("pem".to_owned()),
            alg: Algorithm::RS256,
            key: DecodingKey::from_rsa_der(&der),
        }];
        let bytes = set(serde_json::json!([
            {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": rsa_n(), "e": "AQAB"},
            {"kty": "RSA", "kid": "other", "alg": "PS256", "n": rsa_n_other(), "e": "AQAB"},
        ]));
        let (map, skipped) = parse_set(&bytes, &configured).unwrap();
        assert_eq!(map.keys().collect::<Vec<_>>(), ["other"]);
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert_eq!(skipped[0].kid, "ps");
        assert!(skipped[0].loud);
        assert!(skipped[0].why.contains("configured for another algorithm"));

        let same_alg = set(serde_json::json!([
            {"kty": "RSA", "kid": "rs", "n": rsa_n(), "e": "AQAB"},
        ]));
        let (map, skipped) = parse_set(&same_alg, &configured).unwrap();
        assert_eq!(map.keys().collect::<Vec<_>>(), ["rs"]);
        assert!(skipped.is_empty(), "{skipped:?}");
    }

    /// Such a key is skipped with a warning naming its `kid` (cut and escaped), and a set
    /// whose only key is one key for two algorithms fails start-up saying why.
    #[tokio::test]
    async fn one_key_for_two_algorithms_is_logged_or_fails_start_up() {
        use tracing::Level;

        let log = hardening_errors::test_log::Captured::default();
        let _guard = log.capture();
        let start = |bytes| {
            let source = JwksSource {
                url: "https://idp.example/jwks".into(),
                policy: JwksPolicy::new(),
                fetcher: Some(Arc::new(Scripted::new(bytes))),
            };
            Jwks::start(source, Vec::new())
        };
        let long = format!("{}\nforged", "k".repeat(80));
        let bytes = set(serde_json::json!([
            {"kty": "RSA", "kid": "rs", "alg": "RS256", "n": rsa_n(), "e": "AQAB"},
            {"kty": "RSA", "kid": long, "alg": "PS256", "n": rsa_n(), "e": "AQAB"},
            {"kty": "RSA", "kid": "other", "n": rsa_n_other(), "e": "AQAB"},
        ]));
        let jwks = start(bytes).await.unwrap();
        assert!(jwks.get("rs").is_none() && jwks.get(&long).is_none());
        assert!(jwks.get("other").is_some());
        let ignored = log.find(Level::WARN, "JWKS key ignored");
        let mut kids: Vec<_> = ignored.iter().filter_map(|l| l.field("kid")).collect();
        kids.sort_unstable();
        assert_eq!(kids.len(), 2, "{:?}", log.lines());
        assert_eq!(kids[1], r#""rs""#);
        assert!(
            kids[0].chars().count() < 100 && !kids[0].contains('\n'),
            "{}",
            kids[0]
        );
        for line in &ignored {
            assert!(
                line.field("why").is_some_and(|w| w.contains("RFC 8725")),
                "{line:?}"
            );
        }

        let only = set(serde_json::json!([
            {"kty": "RSA", "kid": "rs", "n": rsa_n(), "e": "AQAB"},
            {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": rsa_n(), "e": "AQAB"},
        ]));
        let err = start(only).await.map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("no usable signature key"), "{err}");
        assert!(err.contains("publish a key of its own"), "{err}");
    }

    /// A JWK without `alg` is bound to one algorithm (RSA: RS256, `parse_key`), and
    /// verification refuses any other before looking at the signature: a token naming its
    /// `kid` with RS384, RS512, PS*, ES256 or HS256 is an algorithm mismatch, RS256 reaches
    /// the signature check. Were the key usable under several algorithms, these tokens would
    /// be refused as bad signatures instead.
    #[tokio::test]
    async fn a_jwk_without_alg_verifies_one_algorithm_only() {
        let v = crate::JwtVerifier::builder()
            .jwks_url("https://idp.example/jwks", JwksPolicy::new())
            .jwks_fetcher(Arc::new(Scripted::new(one_rsa_key())))
            .connect()
            .await
            .unwrap();
        let token = |alg: &str| {
            let b64 = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
            format!(
                "{}.{}.c2lnbmF0dXJl",
                b64(serde_json::json!({ "alg": alg, "kid": "rsa" })),
                b64(serde_json::json!({ "sub": "user-1", "exp": 9e9 }))
            )
        };
        for alg in [
            "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "HS256",
        ] {
            assert_eq!(
                v.verify_raw(&token(alg)).map(|_| ()),
                Err(crate::JwtError::AlgorithmMismatch),
                "{alg}"
            );
        }
        assert_eq!(
            v.verify_raw(&token("RS256")).map(|_| ()),
            Err(crate::JwtError::BadSignature)
        );
    }

    #[test]
    fn unusable_keys_are_skipped() {
        let bytes = set(serde_json::json!([
            {"kty": "oct", "kid": "hs", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": rsa_n(), "e": "AQAB"},
            {"kty": "RSA", "kid": "ops", "key_ops": ["encrypt"], "n": rsa_n(), "e": "AQAB"},
            {"kty": "RSA", "kid": "hs-alg", "alg": "HS256", "n": rsa_n(), "e": "AQAB"},
            {"kty": "RSA", "kid": "short", "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "kid": "long", "n": URL_SAFE_NO_PAD.encode([0xc5u8; 1024]), "e": "AQAB"},
            {"kty": "RSA", "n": rsa_n(), "e": "AQAB"},
            {"kty": "EC", "kid": "mixed", "crv": "P-256", "alg": "ES384",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "RSA", "kid": "twice", "n": rsa_n(), "e": "AQAB"},
            {"kty": "RSA", "kid": "twice", "n": rsa_n(), "e": "AQAB"},
            {"kty": "RSA", "kid": "configured", "n": rsa_n(), "e": "AQAB"},
            {"kty": "weird", "kid": "weird"},
            "not an object",
        ]));
        let configured = [VerifyKey {
            kid: Some("configured".to_owned()),
            alg: Algorithm::HS256,
            key: DecodingKey::from_secret(b"k7Qz2vX9pL4mN8rT1wY6uE3sA5dF0gHj"),
        }];
        let (map, skipped) = parse_set(&bytes, &configured).unwrap();
        assert!(map.is_empty(), "{:?}", map.keys().collect::<Vec<_>>());
        assert_eq!(skipped.len(), 13, "{skipped:?}");
    }

    /// A JWK with private members (`d`, and RSA's `p`, `q`, `dp`, `dq`, `qi`, `oth`) is a
    /// private key published for all to read: anyone can sign with it. It was used to
    /// verify like any public key; it is skipped loudly now, as a published `oct` key is.
    #[test]
    fn published_private_keys_are_skipped() {
        let x = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let y = URL_SAFE_NO_PAD.encode([9u8; 32]);
        let bytes = set(serde_json::json!([
            {"kty": "RSA", "kid": "rsa-d", "n": rsa_n(), "e": "AQAB", "d": rsa_n()},
            {"kty": "RSA", "kid": "rsa-p", "n": rsa_n(), "e": "AQAB", "p": "AQAB"},
            {"kty": "EC", "kid": "ec-d", "crv": "P-256", "x": x, "y": y, "d": x},
            {"kty": "OKP", "kid": "ed-d", "crv": "Ed25519", "x": x, "d": y},
            {"kty": "RSA", "kid": "public", "n": rsa_n(), "e": "AQAB"},
        ]));
        let (map, skipped) = parse_set(&bytes, &[]).unwrap();
        assert_eq!(
            map.keys().collect::<Vec<_>>(),
            ["public"],
            "private keys taken from the set"
        );
        assert_eq!(skipped.len(), 4, "{skipped:?}");
        for s in &skipped {
            assert!(s.loud && s.why.contains("private key"), "{s:?}");
        }
    }

    /// The RSA backend refuses moduli over 4096 bits at verification: such a key could
    /// verify nothing, so it is skipped (with a warning saying the supported range) like
    /// other unusable keys, not cached to refuse every token as a bad signature.
    #[test]
    fn rsa_keys_over_4096_bits_are_skipped() {
        let n = |bytes: usize| URL_SAFE_NO_PAD.encode(vec![0xc5u8; bytes]);
        let bytes = set(serde_json::json!([
            {"kty": "RSA", "kid": "4096", "n": n(512), "e": "AQAB"},
            {"kty": "RSA", "kid": "4104", "n": n(513), "e": "AQAB"},
            {"kty": "RSA", "kid": "8192", "alg": "PS256", "n": n(1024), "e": "AQAB"},
        ]));
        let (map, skipped) = parse_set(&bytes, &[]).unwrap();
        assert_eq!(map.keys().collect::<Vec<_>>(), ["4096"]);
        let skipped: Vec<_> = skipped
            .iter()
            .map(|s| (s.kid.as_str(), s.why, s.loud))
            .collect();
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        for (kid, (skipped_kid, why, loud)) in ["4104", "8192"].into_iter().zip(skipped) {
            assert_eq!(skipped_kid, kid);
            assert!(loud, "{kid}: logged as a warning");
            assert!(why.contains("longer than 4096 bits"), "{why}");
            assert!(why.contains("2048 to 4096 bits"), "{why}");
        }
    }

    /// An RSA key whose exponent the backend refuses (1, even, past 2^33 - 1) was cached and
    /// refused every token as a bad signature; it is skipped, like a modulus out of range.
    #[test]
    fn rsa_keys_with_an_unusable_exponent_are_skipped() {
        let e = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let key = |kid: &str, e: String| serde_json::json!({"kty": "RSA", "kid": kid, "n": rsa_n(), "e": e});
        let bytes = set(serde_json::json!([
            key("e-65537", e(&[1, 0, 1])),
            key("e-3", e(&[3])),
            key("e-65537-leading-zero", e(&[0, 1, 0, 1])),
            key("e-1", e(&[1])),
            key("e-2", e(&[2])),
            key("e-0", e(&[0])),
            key("e-2^33+1", e(&[2, 0, 0, 0, 1])),
            key("e-huge", e(&[1; 64])),
            key("e-not-base64", "!!".to_owned()),
        ]));
        let (map, skipped) = parse_set(&bytes, &[]).unwrap();
        let mut kept: Vec<_> = map.keys().map(String::as_str).collect();
        kept.sort_unstable();
        assert_eq!(kept, ["e-3", "e-65537", "e-65537-leading-zero"]);
        assert!(
            skipped.iter().all(|s| s.loud && s.why.contains("exponent")),
            "{skipped:?}"
        );
        assert_eq!(skipped.len(), 6, "{skipped:?}");
    }

    /// RFC 7518 §6.2.1.2, RFC 8037 §2: a coordinate is the curve's full size (32 bytes for
    /// P-256 and Ed25519, 48 for P-384). A key of another size, which the PEM path refuses,
    /// was cached from a JWKS and refused every token as a bad signature; it is skipped.
    #[test]
    fn curve_keys_of_the_wrong_size_are_skipped() {
        let b = |n: usize| URL_SAFE_NO_PAD.encode(vec![7u8; n]);
        let bytes = set(serde_json::json!([
            {"kty": "EC", "kid": "p256-ok", "crv": "P-256", "x": b(32), "y": b(32)},
            {"kty": "EC", "kid": "p256-p384", "crv": "P-256", "x": b(48), "y": b(48)},
            {"kty": "EC", "kid": "p256-short-y", "crv": "P-256", "x": b(32), "y": b(31)},
            {"kty": "EC", "kid": "p256-padded", "crv": "P-256", "x": format!("{}=", b(32)), "y": b(32)},
            {"kty": "EC", "kid": "p384-ok", "crv": "P-384", "x": b(48), "y": b(48)},
            {"kty": "EC", "kid": "p384-p256", "crv": "P-384", "x": b(32), "y": b(32)},
            {"kty": "OKP", "kid": "ed-ok", "crv": "Ed25519", "x": b(32)},
            {"kty": "OKP", "kid": "ed-short", "crv": "Ed25519", "x": b(31)},
            {"kty": "OKP", "kid": "ed-long", "crv": "Ed25519", "x": b(57)},
        ]));
        let (map, skipped) = parse_set(&bytes, &[]).unwrap();
        let mut kept: Vec<_> = map.keys().map(String::as_str).collect();
        kept.sort_unstable();
        assert_eq!(kept, ["ed-ok", "p256-ok", "p384-ok"]);
        let mut wrong_size: Vec<_> = skipped
            .iter()
            .filter(|s| s.loud && s.why.contains("would verify nothing"))
            .map(|s| s.kid.as_str())
            .collect();
        wrong_size.sort_unstable();
        assert_eq!(
            wrong_size,
            [
                "ed-long",
                "ed-short",
                "p256-p384",
                "p256-padded",
                "p256-short-y",
                "p384-p256"
            ]
        );
        assert_eq!(skipped.len(), 6, "{skipped:?}");
    }

    #[test]
    fn garbage_is_not_a_set() {
        assert!(parse_set(b"<html>", &[]).is_err());
        assert!(parse_set(b"{\"keys\": 3}", &[]).is_err());
        assert!(parse_set(b"[]", &[]).is_err());
    }

    /// An `https://` fetch from a server that does not speak TLS fails closed (no fallback
    /// to plain HTTP).
    #[cfg(feature = "jwks-rustls")]
    #[test]
    fn https_against_a_plain_server_fails_the_handshake() {
        use tokio::io::AsyncWriteExt;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    let _ = stream
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n{\"keys\":[]}")
                        .await;
                }
            });
            let fetcher = HttpFetcher::with_webpki_roots();
            assert!(fetcher.supports_scheme("https"));
            let url: Uri = format!("https://{addr}/jwks").parse().unwrap();
            let result = tokio::time::timeout(Duration::from_secs(10), fetcher.fetch(&url, 1024))
                .await
                .unwrap();
            match result {
                Err(JwksFetchError::Unreachable(why)) => assert!(why.starts_with("TLS"), "{why}"),
                other => panic!("{other:?}"),
            }
        });
    }

    /// A `kid` comes from the provider's set, which may hold one of any length or with line
    /// breaks: it was logged whole and unescaped (a forged log line, a megabyte line). Now
    /// cut to 64 characters and escaped, in the warning and in the start-up list.
    #[tokio::test]
    async fn long_or_odd_kids_are_logged_cut_and_escaped() {
        use tracing::Level;

        let log = hardening_errors::test_log::Captured::default();
        let _guard = log.capture();
        let odd = format!("{}\nERROR forged line\u{1b}[31m", "k".repeat(60));
        let long = "x".repeat(10_000);
        let bytes = set(serde_json::json!([
            {"kty": "RSA", "kid": long, "n": rsa_n(), "e": "AQAB"},
            {"kty": "oct", "kid": odd, "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"},
            {"kty": "oct", "kid": long, "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"},
        ]));
        let source = JwksSource {
            url: "https://idp.example/jwks".into(),
            policy: JwksPolicy::new(),
            fetcher: Some(Arc::new(Scripted::new(bytes))),
        };
        let jwks = Jwks::start(source, Vec::new()).await.unwrap();
        assert!(jwks.get(&long).is_some(), "the key itself is kept whole");

        let ignored = log.find(Level::WARN, "JWKS key ignored");
        assert_eq!(ignored.len(), 2, "{:?}", log.lines());
        let loaded = log.find(Level::INFO, "JWKS loaded");
        assert_eq!(loaded.len(), 1, "{:?}", log.lines());
        for logged in [
            ignored[0].field("kid"),
            ignored[1].field("kid"),
            loaded[0].field("kids"),
        ] {
            let logged = logged.unwrap();
            assert!(logged.chars().count() < 100, "{logged}");
            assert!(!logged.contains(['\n', '\u{1b}']), "{logged:?}");
        }
    }

    /// A fetcher answering whatever it was last given: a body, or a failure.
    #[derive(Debug)]
    struct Scripted(std::sync::Mutex<Result<Vec<u8>, JwksFetchError>>);

    impl Scripted {
        fn new(body: Vec<u8>) -> Self {
            Self(std::sync::Mutex::new(Ok(body)))
        }

        fn serve(&self, body: Vec<u8>) {
            *self.0.lock().unwrap() = Ok(body);
        }

        fn fail(&self, error: JwksFetchError) {
            *self.0.lock().unwrap() = Err(error);
        }
    }

    impl JwksFetcher for Scripted {
        fn supports_scheme(&self, _: &str) -> bool {
            true
        }

        fn fetch<'a>(&'a self, _: &'a Uri, _: usize) -> JwksFetchFuture<'a> {
            let answer = self.0.lock().unwrap().clone();
            Box::pin(async move { answer })
        }
    }

    /// Refreshes (at most once per minimum interval) until `done`, for at most 5 s.
    async fn refresh_until(jwks: &Jwks, mut done: impl FnMut(&Jwks) -> bool) -> bool {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if done(jwks) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            jwks.refresh_if_due().await;
        }
        done(jwks)
    }

    /// A set with no usable key (empty, or every key ignored) is the provider withdrawing
    /// every key, or a glitch: the cached keys are kept for `refresh_every`, then dropped
    /// (an error in the log); a usable set brings keys back and restarts the clock. They
    /// were kept for good, so a withdrawn key verified tokens forever. A failed fetch still
    /// keeps them.
    #[tokio::test]
    async fn a_set_with_no_usable_key_drops_the_cached_keys_after_refresh_every() {
        use tracing::Level;

        let log = hardening_errors::test_log::Captured::default();
        let _guard = log.capture();
        let usable = one_rsa_key();
        let grace = Duration::from_millis(300);
        let policy = JwksPolicy::new()
            .min_refresh_interval(Duration::from_millis(5))
            .refresh_every(grace);
        let (jwks, fetcher) = scripted(policy).await;
        assert!(jwks.get("rsa").is_some());

        let only_oct = set(serde_json::json!([
            {"kty": "oct", "kid": "hs", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}
        ]));
        for (what, no_usable_key) in [("empty", set(serde_json::json!([]))), ("oct", only_oct)] {
            let switched = Instant::now();
            fetcher.serve(no_usable_key);
            assert!(
                refresh_until(&jwks, |j| j.get("rsa").is_none()).await,
                "{what}: the keys were kept past the grace"
            );
            assert!(
                switched.elapsed() >= grace,
                "{what}: dropped {:?} after the first set without a usable key",
                switched.elapsed()
            );
            let kept = log.find(Level::WARN, "keeping the cached keys for now");
            assert!(!kept.is_empty(), "{what}: {:?}", log.lines());
            let dropped = log.find(Level::ERROR, "dropping the cached keys");
            assert_eq!(dropped.len(), 1, "{what}: {:?}", log.lines());
            assert_eq!(dropped[0].target, JWKS_TARGET);
            assert!(
                dropped[0]
                    .field("error")
                    .is_some_and(|e| e.contains("no usable signature key")),
                "{:?}",
                dropped[0]
            );

            fetcher.serve(usable.clone());
            assert!(refresh_until(&jwks, |j| j.get("rsa").is_some()).await);
            log.clear();
        }

        // A failed fetch is no word from the provider: the keys are kept past the grace.
        fetcher.serve(b"<html>maintenance</html>".to_vec());
        let failing = Instant::now();
        while failing.elapsed() < 2 * grace {
            tokio::time::sleep(Duration::from_millis(5)).await;
            jwks.refresh_if_due().await;
        }
        assert!(jwks.get("rsa").is_some());
        assert!(log.find(Level::ERROR, "").is_empty(), "{:?}", log.lines());
    }

    /// As documented on `refresh_every`: a set whose keys all share one `kid` has no usable
    /// key, and once the provider has answered so, failing fetches do not keep the keys past
    /// `refresh_every` (its last word was "no keys").
    #[tokio::test]
    async fn no_usable_key_then_an_outage_drops_the_keys_after_refresh_every() {
        let grace = Duration::from_millis(300);
        let policy = JwksPolicy::new()
            .min_refresh_interval(Duration::from_millis(5))
            .refresh_every(grace);
        let (jwks, fetcher) = scripted(policy).await;
        assert!(jwks.get("rsa").is_some());

        let duplicated = set(serde_json::json!([
            {"kty": "RSA", "kid": "rsa", "n": rsa_n(), "e": "AQAB"},
            {"kty": "RSA", "kid": "rsa", "n": rsa_n(), "e": "AQAB"}
        ]));
        fetcher.serve(duplicated);
        let switched = Instant::now();
        let answered = loop {
            tokio::time::sleep(Duration::from_millis(5)).await;
            if let Some(loaded) = jwks.shared.refresh_if_due().await {
                break loaded;
            }
        };
        assert!(!answered, "a set of duplicated kids was loaded");
        assert!(jwks.get("rsa").is_some(), "dropped at once");
        fetcher.fail(JwksFetchError::Unreachable("outage".into()));
        assert!(
            refresh_until(&jwks, |j| j.get("rsa").is_none()).await,
            "the outage kept the keys past the grace"
        );
        assert!(switched.elapsed() >= grace, "{:?}", switched.elapsed());
    }

    /// A failed fetch (unreachable, not 200, not JSON) kept the cached keys for as long as
    /// it kept failing: whoever could block the fetch kept a withdrawn key in use for good.
    /// Now they verify for `max_key_age` after the last successful fetch, then tokens
    /// signed with them are refused (as with an unknown key) and an error is logged; a
    /// successful fetch brings them back and restarts the clock.
    #[tokio::test]
    async fn keys_are_refused_once_no_fetch_has_succeeded_for_max_key_age() {
        use tracing::Level;

        let log = hardening_errors::test_log::Captured::default();
        let _guard = log.capture();
        let usable = one_rsa_key();
        let max_age = Duration::from_millis(800);
        let policy = JwksPolicy::new()
            .min_refresh_interval(Duration::from_millis(5))
            .refresh_every(Duration::from_millis(50))
            .timeout(Duration::from_millis(50))
            .max_key_age(max_age);
        let (jwks, fetcher) = scripted(policy).await;
        assert!(jwks.get("rsa").is_some());

        let failures = [
            Err(JwksFetchError::Unreachable("connection refused".into())),
            Err(JwksFetchError::Status(503)),
            Ok(b"<html>maintenance</html>".to_vec()),
        ];
        for (round, failure) in failures.into_iter().enumerate() {
            let last_fetch = Instant::now();
            *fetcher.0.lock().unwrap() = failure;
            // Failing for less than max_key_age: the keys still verify, no error logged.
            while last_fetch.elapsed() < max_age / 4 {
                tokio::time::sleep(Duration::from_millis(5)).await;
                jwks.refresh_if_due().await;
                assert!(jwks.get("rsa").is_some(), "round {round}: dropped early");
            }
            assert!(
                !log.find(Level::WARN, "keeping the cached keys").is_empty(),
                "{:?}",
                log.lines()
            );
            assert!(log.find(Level::ERROR, "").is_empty(), "{:?}", log.lines());
            // Then refused, and said once as an error.
            assert!(
                refresh_until(&jwks, |j| j.get("rsa").is_none()).await,
                "round {round}: kept past max_key_age"
            );
            assert!(
                last_fetch.elapsed() >= max_age / 2,
                "round {round}: dropped early"
            );
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_millis(10)).await;
                jwks.refresh_if_due().await;
            }
            let dropped = log.find(Level::ERROR, "no successful fetch for max_key_age");
            assert_eq!(dropped.len(), 1, "round {round}: {:?}", log.lines());
            assert_eq!(dropped[0].target, JWKS_TARGET);
            assert!(dropped[0].field("error").is_some(), "{:?}", dropped[0]);
            assert!(jwks.get("rsa").is_none());

            // A successful fetch: the keys verify again, for max_key_age from now.
            fetcher.serve(usable.clone());
            assert!(refresh_until(&jwks, |j| j.get("rsa").is_some()).await);
            log.clear();
        }

        // With no fetch at all (the refresh task gone), verification refuses them on its
        // own once they are older than max_key_age.
        jwks.task.abort();
        let fetched = Instant::now();
        while fetched.elapsed() < max_age / 4 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            assert!(jwks.get("rsa").is_some());
        }
        tokio::time::sleep(max_age).await;
        assert!(jwks.get("rsa").is_none());
    }

    /// `max_key_age` must outlive the routine refresh and be at most 30 days; longer than
    /// the default, or no bound at all, is a loosening logged at start-up.
    #[tokio::test]
    async fn max_key_age_is_checked_and_loosening_it_is_logged() {
        let log = hardening_errors::test_log::Captured::default();
        let _guard = log.capture();
        let usable = one_rsa_key();
        let start = |policy: JwksPolicy| {
            let source = JwksSource {
                url: "https://idp.example/jwks".into(),
                policy,
                fetcher: Some(Arc::new(Scripted::new(usable.clone()))),
            };
            Jwks::start(source, Vec::new())
        };
        let hours = |h: u64| Duration::from_secs(h * 3600);
        let loosened = |log: &hardening_errors::test_log::Captured| {
            log.find(Level::WARN, "hardening loosened")
                .into_iter()
                .filter(|l| l.target == "hardening")
                .filter_map(|l| l.field("setting").map(str::to_owned))
                .collect::<Vec<_>>()
        };
        use tracing::Level;

        // Strict or default: nothing logged.
        for policy in [JwksPolicy::new(), JwksPolicy::new().max_key_age(hours(1))] {
            start(policy).await.unwrap();
        }
        assert_eq!(loosened(&log), Vec::<String>::new());

        // Too short for the routine refresh, or past 30 days: start-up errors.
        let short = JwksPolicy::new()
            .refresh_every(Duration::from_secs(600))
            .max_key_age(Duration::from_secs(605));
        let err = start(short).await.unwrap_err().to_string();
        assert!(
            err.contains("longer than refresh_every plus the timeout"),
            "{err}"
        );
        let long = JwksPolicy::new().max_key_age(hours(24 * 31));
        let err = start(long).await.unwrap_err().to_string();
        assert!(
            err.contains("dangerous_keep_keys_while_fetches_fail"),
            "{err}"
        );

        // Longer than a day, or unbounded: logged.
        start(JwksPolicy::new().max_key_age(hours(48)))
            .await
            .unwrap();
        start(JwksPolicy::new().dangerous_keep_keys_while_fetches_fail())
            .await
            .unwrap();
        assert_eq!(
            loosened(&log),
            [
                "JwksPolicy::max_key_age",
                "JwksPolicy::dangerous_keep_keys_while_fetches_fail"
            ]
        );
    }

    /// Without `max_key_age`, nothing bounds the intervals: a minimum interval of
    /// `Duration::MAX` overflowed the clock when a token with an unknown `kid` asked for a
    /// fetch, and the refresh task panicked (keys never refreshed again). It now waits.
    #[tokio::test]
    async fn an_interval_past_the_clocks_range_waits_instead_of_panicking() {
        let policy = JwksPolicy::new()
            .min_refresh_interval(Duration::MAX)
            .refresh_every(Duration::MAX)
            .dangerous_keep_keys_while_fetches_fail();
        let (jwks, _fetcher) = scripted(policy).await;
        jwks.request_refresh();
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        assert!(!jwks.task.is_finished(), "the refresh task ended");
        assert_eq!(jwks.shared.until_due().await, Duration::MAX);
        assert!(jwks.get("rsa").is_some());
    }

    /// With no bound, failed fetches keep the keys (the behaviour asked for by name).
    #[tokio::test]
    async fn without_a_bound_failed_fetches_keep_the_keys() {
        let policy = JwksPolicy::new()
            .min_refresh_interval(Duration::from_millis(5))
            .refresh_every(Duration::from_millis(20))
            .dangerous_keep_keys_while_fetches_fail();
        let (jwks, fetcher) = scripted(policy).await;
        fetcher.fail(JwksFetchError::Status(500));
        let failing = Instant::now();
        while failing.elapsed() < Duration::from_millis(200) {
            tokio::time::sleep(Duration::from_millis(5)).await;
            jwks.refresh_if_due().await;
        }
        assert!(jwks.get("rsa").is_some());
    }

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(
            redact("https://u:p@idp.example/jwks?x=@"),
            "https://***@idp.example/jwks?x=@"
        );
        assert_eq!(redact("http://idp/jwks"), "http://idp/jwks");
        assert_eq!(redact("no scheme @ all"), "no scheme @ all");
    }

    #[test]
    fn modulus_bits_counts_significant_bits() {
        assert_eq!(modulus_bits(&rsa_n()), Some(2048));
        assert_eq!(modulus_bits("AAE"), Some(1));
        assert_eq!(modulus_bits("!!"), None);
    }
}
