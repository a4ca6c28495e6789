//! Sessions a user starts and ends: [`SessionIssuer`] signs tokens its [`AuthLayer`] accepts
//! and sets them in the layer's session cookie; logging out revokes them on the layer's
//! denylist and clears the cookie.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, IntoResponseParts, Response, ResponseParts};
use cookie::{Cookie, SameSite};
use hardening_errors::{Error, RequestId};
use http::header::{CACHE_CONTROL, SET_COOKIE};
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use jsonwebtoken::{EncodingKey, Header};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::authenticated::{Outcome, denylist_unavailable};
use crate::denylist::unix_time;
use crate::{
    AUTH_TARGET, AuthLayer, Denylist, DenylistError, DenylistUnavailable, JwtError, TokenRef,
};

/// The longest `Set-Cookie` browsers keep (RFC 6265 §6.1 asks them for at least 4096 bytes
/// a cookie, and most keep no more); `Hardening`'s cookie rules drop a longer one.
const MAX_COOKIE_LEN: usize = 4096;

/// The session cookie an [`AuthLayer`] reads: its name, and the `Set-Cookie` that clears it,
/// made once, when the layer is configured. [`SessionIssuer::logout`] sends that
/// `Set-Cookie`, and so does the 401 of [`Authenticated`](crate::Authenticated) for a token
/// from this cookie that does not verify or is revoked.
#[derive(Debug, Clone)]
pub(crate) struct SessionCookie {
    pub(crate) name: Arc<str>,
    pub(crate) clear: HeaderValue,
}

impl SessionCookie {
    /// The cookie `name` (a name [`AuthLayer`] accepts: no control character).
    pub(crate) fn new(name: Arc<str>) -> Result<Self, http::header::InvalidHeaderValue> {
        let clear =
            HeaderValue::from_str(&session_set_cookie(&name, "", cookie::time::Duration::ZERO))?;
        Ok(Self { name, clear })
    }
}

/// The session cookie's `Set-Cookie`: `Secure`, `HttpOnly`, `SameSite=Lax`, `Path=/` and no
/// `Domain` (what the `__Host-` prefix asks), with `value` (a session's token, or empty to
/// clear it) and `max_age` (the session's lifetime, or zero to clear it). Setting and
/// clearing share it: a browser deletes a cookie only for a `Set-Cookie` of the same name,
/// path and domain, and keeps a `__Host-` one only with exactly these `Secure` and `Path`.
fn session_set_cookie(name: &str, value: &str, max_age: cookie::time::Duration) -> String {
    Cookie::build((name, value))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(max_age)
        .build()
        .to_string()
}

/// The claims the issuer sets itself, refused among a session's extra claims.
const RESERVED_CLAIMS: [&str; 7] = ["sub", "iat", "exp", "nbf", "jti", "iss", "aud"];

/// Starts and ends sessions for one [`AuthLayer`]: it signs with the layer's own verifier's
/// HMAC key, sets the layer's session cookie and revokes on the layer's denylist, so what it
/// issues is what the layer accepts, configured once.
///
/// - [`issue`](Self::issue) mints a token with `sub`, `iat`, `exp` (now + the lifetime),
///   a fresh `jti`, and `iss`/`aud` (and the header's `typ`) when the verifier requires them,
///   and its `Set-Cookie`: `Secure`, `HttpOnly`, `SameSite=Lax`, `Path=/`, no `Domain`
///   (what the `__Host-` prefix asks), `Max-Age` the lifetime. As response parts, it also
///   sets `Cache-Control: no-store`.
/// - [`logout`](Self::logout) revokes the request's token (its `jti`, until its `exp`) and
///   clears the cookie; with no live session (none, expired, revoked, forged) it only clears
///   the cookie. A denylist that cannot be asked is a 503, never a logout that did not take.
///
/// Built by [`SessionIssuer::builder`], which checks at start-up what would make it issue
/// sessions the layer refuses, with a message that says what to change (see
/// [`SessionConfigError`]). Cheap to clone (an `Arc`): keep it in the router's state. Its
/// `Debug` never shows the key.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// use axum::extract::State;
/// use axum::response::{IntoResponse, Redirect};
/// use axum::routing::{get, post};
/// use axum::Router;
/// use hardening_auth::{
///     Algorithm, AuthLayer, Authenticated, CurrentSession, JwtVerifier, LoggedOut,
///     MemoryDenylist, SessionError, SessionIssuer,
/// };
///
/// const LIFETIME: Duration = Duration::from_secs(8 * 3600);
///
/// let verifier = JwtVerifier::builder()
///     .hmac(None, Algorithm::HS256, b"k7Qz2vX9pL4mN8rT1wY6uE3sA5dF0gHj")?
///     .max_age(LIFETIME)
///     .require_jti()
///     .build()?;
/// let auth = AuthLayer::new(verifier)
///     .session_cookie("__Host-session")?
///     .denylist(Arc::new(MemoryDenylist::new(100_000)));
/// let sessions = SessionIssuer::builder(&auth, LIFETIME).build()?;
///
/// async fn login(State(sessions): State<SessionIssuer>) -> Result<impl IntoResponse, SessionError> {
///     // First check the password (`Passwords::verify`) and find the user's id.
///     let session = sessions.issue("user-1")?;
///     Ok((session, Redirect::to("/")))
/// }
///
/// async fn logout(
///     State(sessions): State<SessionIssuer>,
///     session: CurrentSession,
/// ) -> Result<LoggedOut, SessionError> {
///     sessions.logout(session).await // 204, the cookie cleared
/// }
///
/// async fn home(user: Option<Authenticated>) -> String {
///     user.map_or("anonymous".to_owned(), |user| user.principal.subject)
/// }
///
/// let app = Router::new()
///     .route("/", get(home))
///     .route("/login", post(login))
///     .route("/logout", post(logout))
///     .with_state(sessions)
///     .layer(auth);
/// # use tower::ServiceExt;
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// # let call = |method: &str, path: &str, cookie: Option<&str>| {
/// #     let mut req = http::Request::builder().method(method).uri(path);
/// #     if let Some(cookie) = cookie { req = req.header("cookie", cookie); }
/// #     app.clone().oneshot(req.body(axum::body::Body::empty()).unwrap())
/// # };
/// # let text = |res: axum::response::Response| async {
/// #     let body = http_body_util::BodyExt::collect(res.into_body()).await.unwrap().to_bytes();
/// #     String::from_utf8(body.to_vec()).unwrap()
/// # };
/// # let res = call("POST", "/login", None).await?;
/// # let set = res.headers()["set-cookie"].to_str()?.to_owned();
/// # assert!(set.contains("Max-Age=28800") && set.contains("HttpOnly"), "{set}");
/// # let cookie = set.split(';').next().unwrap().to_owned();
/// # assert_eq!(text(call("GET", "/", Some(&cookie)).await?).await, "user-1");
/// # let res = call("POST", "/logout", Some(&cookie)).await?;
/// # assert_eq!(res.status(), 204);
/// # assert!(res.headers()["set-cookie"].to_str()?.contains("Max-Age=0"));
/// # assert_eq!(text(call("GET", "/", Some(&cookie)).await?).await, "anonymous");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SessionIssuer(Arc<Issuer>);

struct Issuer {
    key: EncodingKey,
    header: Header,
    issuer: Option<String>,
    audience: Option<String>,
    lifetime: Duration,
    cookie: SessionCookie,
    denylist: Arc<dyn Denylist>,
    max_token_len: usize,
    /// How long after its `iat` the verifier refuses a token anyway: its `max_age` plus its
    /// leeway (`None` without a `max_age`). A revocation need last no longer.
    refused_after_iat: Option<Duration>,
}

impl fmt::Debug for SessionIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &*self.0;
        f.debug_struct("SessionIssuer")
            .field("cookie", &i.cookie.name)
            .field("alg", &i.header.alg)
            .field("kid", &i.header.kid)
            .field("lifetime", &i.lifetime)
            .field("issuer", &i.issuer)
            .field("audience", &i.audience)
            .finish_non_exhaustive()
    }
}

/// Builds a [`SessionIssuer`] for an [`AuthLayer`]: [`SessionIssuer::builder`].
#[derive(Debug)]
#[must_use]
pub struct SessionIssuerBuilder {
    auth: AuthLayer,
    lifetime: Duration,
    signing_kid: Option<String>,
}

/// A [`SessionIssuer`] that would issue sessions its [`AuthLayer`] refuses, or could not end
/// them; each message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionConfigError {
    /// The layer reads no session cookie.
    #[error(
        "the AuthLayer reads no session cookie, so a session set in one would not be read: \
         call .session_cookie(\"__Host-session\")? on the layer before SessionIssuer::builder"
    )]
    NoSessionCookie,
    /// The layer has no denylist: a logout could not revoke the session's token.
    #[error(
        "the AuthLayer has no denylist, so logging out could not revoke a session (its token \
         would stay valid until it expires): call .denylist(…) on the layer before \
         SessionIssuer::builder (MemoryDenylist for one instance, RedisDenylist for several)"
    )]
    NoDenylist,
    /// The verifier has no HMAC key: public keys and JWKS keys verify, they cannot sign.
    #[error(
        "the verifier has no HMAC key to sign sessions with (public keys and JWKS keys can only \
         verify): add one with JwtVerifierBuilder::hmac or hmac_from_env (with a kid of its \
         own beside other keys)"
    )]
    NoSigningKey,
    /// The verifier has several HMAC keys and none was chosen.
    #[error(
        "the verifier has several HMAC keys ({}): name the one to sign with: \
         .signing_kid(\"{}\"), say (the others keep verifying the sessions they signed)",
        kids.join(", "),
        kids.last().map_or("", String::as_str)
    )]
    SeveralSigningKeys {
        /// Their `kid`s.
        kids: Vec<String>,
    },
    /// [`SessionIssuerBuilder::signing_kid`] names no HMAC key of the verifier.
    #[error("signing_kid({kid:?}) {why}")]
    SigningKid {
        /// The `kid` given.
        kid: String,
        /// What is wrong with it, and what to do.
        why: &'static str,
    },
    /// A lifetime under one second, or longer than the verifier accepts a token.
    #[error("session lifetime of {secs} s {why}")]
    Lifetime {
        /// The lifetime given, in whole seconds.
        secs: u64,
        /// What is wrong with it, and what to do.
        why: String,
    },
    /// A session signed by this issuer does not verify: the verifier refuses it.
    #[error(
        "a session this issuer signs is refused by the layer's verifier ({0}): the verifier \
         must accept the tokens its own HMAC key signs"
    )]
    Refused(JwtError),
    /// Signing a session failed at start-up (a clock before 1970, say).
    #[error("signing a session failed at start-up: {0}")]
    CannotSign(String),
}

impl SessionIssuer {
    /// Sessions for `auth` that last `lifetime` (the token's `exp` and the cookie's
    /// `Max-Age`). The layer must read a [`session_cookie`](AuthLayer::session_cookie) and
    /// have a [`denylist`](AuthLayer::denylist) (configure them first); its verifier signs
    /// with its HMAC key (with several, choose one with
    /// [`signing_kid`](SessionIssuerBuilder::signing_kid)).
    ///
    /// Keep `lifetime` within the cap on cookie lifetimes of what serves the cookie:
    /// `Hardening` caps every `Max-Age` at 30 days (its `CookiePolicy::max_age`, shorter if
    /// you set it so), and browsers at 400 days. A longer session's cookie is cut to the cap
    /// and dropped by the browser while its token is still valid: the user is logged out
    /// early. The issuer cannot check this at build: the cap is set on `Hardening`'s
    /// `HeaderPolicy` (crate `hardening-headers`), which neither this crate nor the
    /// [`AuthLayer`] sees. For a longer session, loosen the cap there too
    /// (`CookiePolicy::dangerous_max_age`).
    pub fn builder(auth: &AuthLayer, lifetime: Duration) -> SessionIssuerBuilder {
        SessionIssuerBuilder {
            auth: auth.clone(),
            lifetime,
            signing_kid: None,
        }
    }
}

impl SessionIssuerBuilder {
    /// Signs with the verifier's HMAC key of this `kid`: needed when it has several (during
    /// a rotation, the new one; the old one keeps verifying the sessions it signed).
    pub fn signing_kid(mut self, kid: impl Into<String>) -> Self {
        self.signing_kid = Some(kid.into());
        self
    }

    /// Checks the layer and the lifetime, then signs one session and has the layer's
    /// verifier verify it.
    ///
    /// # Errors
    ///
    /// A [`SessionConfigError`] saying what to change: no session cookie or no denylist on
    /// the layer, no HMAC key to sign with (a verifier of public keys or a JWKS only),
    /// several and none chosen, a lifetime under one second or over the verifier's
    /// [`max_age`](crate::JwtVerifierBuilder::max_age), or a signed session the verifier
    /// refuses.
    pub fn build(self) -> Result<SessionIssuer, SessionConfigError> {
        let verifier = self.auth.verifier();
        let cookie = self
            .auth
            .session_cookie_read()
            .cloned()
            .ok_or(SessionConfigError::NoSessionCookie)?;
        let denylist = self
            .auth
            .denylist_store()
            .ok_or(SessionConfigError::NoDenylist)?;
        let secs = self.lifetime.as_secs();
        if secs == 0 {
            return Err(SessionConfigError::Lifetime {
                secs,
                why: "is under one second (counted in whole seconds, the cookie would be \
                      deleted as it is set): give how long a login lasts, 8 hours say"
                    .to_owned(),
            });
        }
        if let Some(max_age) = verifier.max_age()
            && self.lifetime > max_age
        {
            return Err(SessionConfigError::Lifetime {
                secs,
                why: format!(
                    "is longer than the verifier's max_age of {} s, which would refuse the \
                     session before it ends: give a lifetime of at most {0} s, or raise \
                     JwtVerifierBuilder::max_age",
                    max_age.as_secs()
                ),
            });
        }
        let hmac: Vec<_> = verifier.hmac_keys().collect();
        let (kid, alg, secret) = match (&self.signing_kid, hmac.as_slice()) {
            (None, []) => return Err(SessionConfigError::NoSigningKey),
            (None, [one]) => *one,
            (None, several) => {
                return Err(SessionConfigError::SeveralSigningKeys {
                    kids: several
                        .iter()
                        .filter_map(|(kid, _, _)| kid.map(str::to_owned))
                        .collect(),
                });
            }
            (Some(wanted), keys) => *keys
                .iter()
                .find(|(kid, _, _)| *kid == Some(wanted.as_str()))
                .ok_or_else(|| SessionConfigError::SigningKid {
                    kid: wanted.clone(),
                    why: if verifier.has_kid(wanted) {
                        "is a public key, which verifies tokens but cannot sign them: name an \
                         HMAC key of the verifier"
                    } else {
                        "is not a kid of the verifier's keys: name one of its HMAC keys, or \
                         add it with JwtVerifierBuilder::hmac"
                    },
                })?,
        };
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        header.typ = Some(verifier.expected_typ().unwrap_or("JWT").to_owned());
        let issuer = SessionIssuer(Arc::new(Issuer {
            key: EncodingKey::from_secret(secret),
            header,
            issuer: verifier.expected_issuer().map(str::to_owned),
            audience: verifier.expected_audience().map(str::to_owned),
            lifetime: Duration::from_secs(secs),
            cookie,
            denylist,
            max_token_len: verifier.max_token_len(),
            refused_after_iat: verifier.max_age().map(|age| age + verifier.leeway()),
        }));
        // Whatever the verifier checks, now or in a later version: a session it refuses is
        // found here, at start-up, not at the first login.
        let probe = match issuer.issue("session-issuer-start-up-check") {
            Ok(probe) => probe,
            Err(SessionError::TooLong { what: "token", .. }) => {
                return Err(SessionConfigError::Refused(JwtError::TooLong));
            }
            Err(e) => return Err(SessionConfigError::CannotSign(e.to_string())),
        };
        verifier
            .verify_raw(probe.token())
            .map_err(SessionConfigError::Refused)?;
        Ok(issuer)
    }
}

/// Why a session could not be issued or ended. As a response: a 503 problem with
/// `Retry-After` (1, or the store's [`DenylistUnavailable::retry_after`]) when the denylist
/// could not be asked (logged at error), otherwise a 500 problem (the error logged, never
/// sent). Its messages hold no token, key or claim value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// An empty subject: a token must name its principal.
    #[error("the session's subject is empty: give the user's id")]
    EmptySubject,
    /// Extra claims that name a claim the issuer sets.
    #[error("claim {0} is set by the issuer: leave it out of the extra claims")]
    ReservedClaim(&'static str),
    /// Extra claims that are not a JSON object.
    #[error("the extra claims are not a JSON object (a struct or a map)")]
    ClaimsNotAnObject,
    /// A token or cookie too long to be accepted or kept.
    #[error(
        "the session's {what} is {len} bytes, over the {max} bytes {why}: carry fewer or \
         shorter extra claims"
    )]
    TooLong {
        /// `token` or `Set-Cookie`.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The most accepted.
        max: usize,
        /// Who refuses longer.
        why: &'static str,
    },
    /// The system clock is before 1970.
    #[error("the system clock is before 1970")]
    Clock,
    /// Signing failed.
    #[error("signing the session failed")]
    Sign(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The request's token lacks a claim its revocation needs (`jti`, `sub` or a numeric
    /// `exp`): it was not issued by a [`SessionIssuer`], and cannot be revoked.
    #[error(
        "the session's token has no {0}, so it cannot be revoked: build the verifier with \
         .require_jti() to refuse such tokens"
    )]
    NotRevocable(&'static str),
    /// The denylist did not take the revocation: the session was not ended.
    #[error("the denylist could not revoke the session")]
    Denylist(#[source] DenylistError),
}

impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        Error::from(self).into_response()
    }
}

impl From<SessionError> for Error {
    /// [`Error::UnavailableFor`] (a 503 with `Retry-After`: 1, or the store's
    /// [`DenylistUnavailable::retry_after`]) when the denylist could not be asked (logged at
    /// error), [`Error::Internal`] otherwise: the same answer as returning the
    /// `SessionError` itself, so a handler that mixes errors can use `?`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use axum::response::IntoResponse;
    /// use hardening_auth::{DenylistUnavailable, SessionError};
    /// use hardening_errors::Error;
    ///
    /// let away = DenylistUnavailable::new(Duration::from_secs(2), "breaker open");
    /// let res = Error::from(SessionError::Denylist(away.into())).into_response();
    /// assert_eq!(res.status(), 503);
    /// assert_eq!(res.headers()["retry-after"], "2");
    /// ```
    fn from(error: SessionError) -> Self {
        match error {
            SessionError::Denylist(e) => {
                tracing::error!(target: AUTH_TARGET, error = %e, "denylist unavailable; the session was not ended");
                Error::UnavailableFor(DenylistUnavailable::retry_after_of(&e))
            }
            other => Error::internal(other),
        }
    }
}

/// A session just issued: its token and its `Set-Cookie`. As response parts (returned
/// beside a redirect or a page) it sets the cookie and `Cache-Control: no-store`. Its
/// `Debug` shows neither.
pub struct IssuedSession {
    token: String,
    set_cookie: HeaderValue,
    lifetime: Duration,
}

impl fmt::Debug for IssuedSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedSession")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl IssuedSession {
    /// The token, for a client that sends it as `Authorization: Bearer` (an API login's
    /// `access_token`). A secret: never log it.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The `Set-Cookie` value (marked sensitive).
    pub fn set_cookie(&self) -> &HeaderValue {
        &self.set_cookie
    }

    /// How long the session lasts (an API login's `expires_in`).
    pub fn expires_in(&self) -> Duration {
        self.lifetime
    }
}

impl IntoResponseParts for IssuedSession {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        Ok(with_cookie(res, self.set_cookie))
    }
}

/// `set_cookie` and `Cache-Control: no-store` (a response that sets or clears a session is
/// for its one client only), for [`IssuedSession`] and [`LoggedOut`].
fn with_cookie(mut res: ResponseParts, set_cookie: HeaderValue) -> ResponseParts {
    let headers = res.headers_mut();
    headers.append(SET_COOKIE, set_cookie);
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// A session ended: the `Set-Cookie` that clears the cookie. As a response, a 204; as
/// response parts (beside a redirect), the cookie cleared. Either way with
/// `Cache-Control: no-store`.
#[derive(Debug, Clone)]
pub struct LoggedOut {
    set_cookie: HeaderValue,
    revoked: bool,
}

impl LoggedOut {
    /// Whether a live session's token was revoked (`false`: there was none, only the cookie
    /// to clear).
    pub fn revoked(&self) -> bool {
        self.revoked
    }

    /// The `Set-Cookie` value that clears the session cookie.
    pub fn set_cookie(&self) -> &HeaderValue {
        &self.set_cookie
    }
}

impl IntoResponseParts for LoggedOut {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        Ok(with_cookie(res, self.set_cookie))
    }
}

impl IntoResponse for LoggedOut {
    fn into_response(self) -> Response {
        // As parts (`self` alone would be this very impl again), with no body.
        (StatusCode::NO_CONTENT, self, ()).into_response()
    }
}

/// The live session the request was authenticated with, for
/// [`SessionIssuer::logout`]: the verified token from the session cookie or
/// `Authorization: Bearer`, or none (no token, or one expired, revoked or that does not
/// verify: nothing to revoke). Unlike `Option<Authenticated>`, a token the denylist could
/// not be asked about is refused with a 503 (with `Retry-After`): it may be live, and a logout
/// that only cleared the cookie would leave it so. Without an [`AuthLayer`] around the
/// route, a 500.
#[derive(Clone)]
pub struct CurrentSession {
    claims: Option<Arc<Map<String, Value>>>,
}

impl fmt::Debug for CurrentSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurrentSession")
            .field("live", &self.is_live())
            .finish()
    }
}

impl CurrentSession {
    /// Whether the request carried a live session.
    pub fn is_live(&self) -> bool {
        self.claims.is_some()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Outcome>() {
            // An API key is no session: nothing to log out of.
            Some(Outcome::Verified {
                source: crate::CredentialSource::ApiKey,
                ..
            }) => Ok(Self { claims: None }),
            Some(Outcome::Verified { claims, .. }) => Ok(Self {
                claims: Some(Arc::clone(claims)),
            }),
            Some(Outcome::Failed(..) | Outcome::Revoked(..) | Outcome::Absent) => {
                Ok(Self { claims: None })
            }
            // Logged by `AuthLayer` with the store's error.
            Some(Outcome::DenylistUnavailable(retry_after, _)) => {
                Err(denylist_unavailable(*retry_after))
            }
            None => Err(
                Error::internal("CurrentSession needs AuthLayer around the router").into_response(),
            ),
        }
    }
}

impl SessionIssuer {
    /// A new session for `subject` (the user's id: the token's `sub`, the
    /// [`Principal`](crate::Principal)'s subject).
    ///
    /// # Errors
    ///
    /// [`SessionError::EmptySubject`] for an empty subject; [`SessionError::TooLong`],
    /// [`SessionError::Clock`] and [`SessionError::Sign`] as for
    /// [`issue_with_claims`](Self::issue_with_claims).
    pub fn issue(&self, subject: &str) -> Result<IssuedSession, SessionError> {
        self.sign(subject, Map::new())
    }

    /// A new session for `subject` whose token also carries `claims` (a struct or a map,
    /// serialized as a JSON object): `roles`, `scope`, `tenant`, or your own, read back with
    /// [`Authenticated<C>`](crate::Authenticated).
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use hardening_auth::{Algorithm, AuthLayer, JwtVerifier, MemoryDenylist, SessionIssuer};
    /// # let verifier = JwtVerifier::builder()
    /// #     .hmac(None, Algorithm::HS256, b"k7Qz2vX9pL4mN8rT1wY6uE3sA5dF0gHj")?.build()?;
    /// # let auth = AuthLayer::new(verifier.clone()).session_cookie("__Host-session")?
    /// #     .denylist(Arc::new(MemoryDenylist::new(10)));
    /// # let sessions = SessionIssuer::builder(&auth, Duration::from_secs(3600)).build()?;
    /// let session = sessions.issue_with_claims("user-1", serde_json::json!({ "roles": ["admin"] }))?;
    /// let verified = verifier.verify::<serde_json::Value>(session.token())?;
    /// assert!(verified.principal.has_role("admin"));
    ///
    /// let err = sessions.issue_with_claims("user-1", serde_json::json!({ "exp": 0 })).unwrap_err();
    /// assert!(err.to_string().contains("exp"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`SessionError::EmptySubject`]; [`SessionError::ReservedClaim`] for a claim the
    /// issuer sets (`sub`, `iat`, `exp`, `nbf`, `jti`, `iss`, `aud`);
    /// [`SessionError::ClaimsNotAnObject`]; [`SessionError::TooLong`] for a token longer
    /// than the verifier's [`max_token_len`](crate::JwtVerifierBuilder::max_token_len) or a
    /// `Set-Cookie` over 4096 bytes (browsers and `Hardening` drop it);
    /// [`SessionError::Clock`] for a clock before 1970; [`SessionError::Sign`].
    pub fn issue_with_claims(
        &self,
        subject: &str,
        claims: impl Serialize,
    ) -> Result<IssuedSession, SessionError> {
        match serde_json::to_value(claims) {
            Ok(Value::Object(claims)) => self.sign(subject, claims),
            _ => Err(SessionError::ClaimsNotAnObject),
        }
    }

    fn sign(
        &self,
        subject: &str,
        mut claims: Map<String, Value>,
    ) -> Result<IssuedSession, SessionError> {
        let i = &*self.0;
        if subject.is_empty() {
            return Err(SessionError::EmptySubject);
        }
        if let Some(reserved) = RESERVED_CLAIMS.iter().find(|c| claims.contains_key(**c)) {
            return Err(SessionError::ReservedClaim(reserved));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| SessionError::Clock)?
            .as_secs();
        let lifetime = i.lifetime.as_secs();
        claims.insert("sub".into(), subject.into());
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), now.saturating_add(lifetime).into());
        // A UUIDv7, as request ids are made: unique (74 random bits beside the time).
        claims.insert("jti".into(), RequestId::generate().as_str().into());
        if let Some(issuer) = &i.issuer {
            claims.insert("iss".into(), issuer.as_str().into());
        }
        if let Some(audience) = &i.audience {
            claims.insert("aud".into(), audience.as_str().into());
        }
        let token = jsonwebtoken::encode(&i.header, &claims, &i.key)
            .map_err(|e| SessionError::Sign(e.into()))?;
        if token.len() > i.max_token_len {
            return Err(SessionError::TooLong {
                what: "token",
                len: token.len(),
                max: i.max_token_len,
                why: "the verifier accepts (max_token_len)",
            });
        }
        let cookie = session_set_cookie(
            &i.cookie.name,
            &token,
            cookie::time::Duration::seconds(i64::try_from(lifetime).unwrap_or(i64::MAX)),
        );
        if cookie.len() > MAX_COOKIE_LEN {
            return Err(SessionError::TooLong {
                what: "Set-Cookie",
                len: cookie.len(),
                max: MAX_COOKIE_LEN,
                why: "browsers keep (and Hardening's cookie rules let through)",
            });
        }
        let mut set_cookie =
            HeaderValue::from_str(&cookie).map_err(|e| SessionError::Sign(e.into()))?;
        set_cookie.set_sensitive(true);
        Ok(IssuedSession {
            token,
            set_cookie,
            lifetime: i.lifetime,
        })
    }

    /// Ends `session`: revokes its token on the layer's denylist until its `exp` (the
    /// denylist keeps it [`REVOCATION_GRACE`](crate::REVOCATION_GRACE) longer), then answers
    /// with the cookie cleared. With no live session there is only the cookie to clear.
    ///
    /// # Errors
    ///
    /// [`SessionError::Denylist`] when the denylist did not take the revocation (a 503:
    /// the session was not ended, the cookie is not cleared); [`SessionError::NotRevocable`]
    /// for a token without `jti` (a verifier without
    /// [`require_jti`](crate::JwtVerifierBuilder::require_jti) lets such tokens in).
    pub async fn logout(&self, session: CurrentSession) -> Result<LoggedOut, SessionError> {
        let revoked = match &session.claims {
            Some(claims) => {
                let (token, until) = revocation(claims, self.0.refused_after_iat)?;
                self.0
                    .denylist
                    .revoke(token, until)
                    .await
                    .map_err(SessionError::Denylist)?;
                true
            }
            None => false,
        };
        Ok(LoggedOut {
            set_cookie: self.clear_cookie(),
            revoked,
        })
    }

    /// The `Set-Cookie` that clears the session cookie (`Max-Age=0`, the same attributes),
    /// the layer's: the one its `Authenticated` 401 sends for a dead session cookie.
    fn clear_cookie(&self) -> HeaderValue {
        self.0.cookie.clear.clone()
    }
}

/// How long a revocation lasts when nothing shorter bounds it: a token whose `exp` is past
/// what the clock can hold (`1e300`), which a verifier without a `max_age` accepts.
const LONGEST_REVOCATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The token to revoke and until when: its `exp` (rounded up; the verifier required a
/// numeric one), or, when sooner, when the verifier refuses it for its age anyway
/// (`refused_after_iat` after its `iat`): a token the verifier accepts is revoked whatever
/// number its `exp` is, even one past what the clock can hold (then for
/// [`LONGEST_REVOCATION`] if nothing else bounds it).
fn revocation(
    claims: &Map<String, Value>,
    refused_after_iat: Option<Duration>,
) -> Result<(TokenRef<'_>, SystemTime), SessionError> {
    if !claims.get("jti").is_some_and(Value::is_string) {
        return Err(SessionError::NotRevocable("jti"));
    }
    let token = TokenRef::from_claims(claims).ok_or(SessionError::NotRevocable("sub"))?;
    let exp = claims
        .get("exp")
        .and_then(Value::as_f64)
        .ok_or(SessionError::NotRevocable("numeric exp"))?;
    let refused_from = refused_after_iat.and_then(|age| {
        let iat = claims.get("iat").and_then(Value::as_f64)?;
        unix_time((iat + age.as_secs_f64()).ceil())
    });
    let until = match (unix_time(exp.ceil()), refused_from) {
        (Some(exp), Some(refused)) => exp.min(refused),
        (Some(until), None) | (None, Some(until)) => until,
        (None, None) => SystemTime::now() + LONGEST_REVOCATION,
    };
    Ok((token, until))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::Router;
    use axum::body::Body;
    use axum::routing::post;
    use http::Request;
    use serde_json::json;
    use tower::ServiceExt;

    use super::*;
    use crate::test_tokens::{builder, token, verifier};
    use crate::{Algorithm, JwtVerifier, MemoryDenylist};

    const HOUR: Duration = Duration::from_secs(3600);
    const OTHER_SECRET: &[u8] = b"Vb3nM8qL1wE6rT9yU2iO5pA7sD4fG0hJ";

    fn layer(verifier: JwtVerifier) -> AuthLayer {
        AuthLayer::new(verifier)
            .session_cookie("__Host-session")
            .unwrap()
            .denylist(Arc::new(MemoryDenylist::new(10)))
    }

    /// A revocation lasts until the token's `exp` (rounded up) or, sooner, until the
    /// verifier refuses it for its age; an `exp` past what the clock can hold (`u64::MAX`,
    /// `1e300`, which a verifier accepts) made logout a 500 and left the token valid.
    #[test]
    fn a_revocation_lasts_until_exp_or_the_oldest_the_verifier_accepts() {
        let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(secs);
        let claims = |exp: Value| {
            json!({"sub": "u", "jti": "j", "iat": 1_000, "exp": exp})
                .as_object()
                .cloned()
                .unwrap()
        };
        let until = |exp: Value, age: Option<u64>| {
            revocation(&claims(exp), age.map(Duration::from_secs)).map(|(_, until)| until)
        };
        assert_eq!(until(json!(2_000.2), None).unwrap(), at(2_001));
        assert_eq!(until(json!(2_000.2), Some(3_600)).unwrap(), at(2_001));
        assert_eq!(until(json!(1e12), Some(3_600)).unwrap(), at(4_600));
        for huge in [json!(u64::MAX), json!(1e300)] {
            assert_eq!(
                until(huge.clone(), Some(3_600)).unwrap(),
                at(4_600),
                "{huge}"
            );
            let long = until(huge.clone(), None).unwrap();
            let from_now = long.duration_since(SystemTime::now()).unwrap();
            assert!(from_now > LONGEST_REVOCATION - HOUR, "{huge}: {from_now:?}");
        }
        assert!(matches!(
            until(json!("soon"), None),
            Err(SessionError::NotRevocable("numeric exp"))
        ));
    }

    fn issuer() -> SessionIssuer {
        SessionIssuer::builder(&layer(verifier()), HOUR)
            .build()
            .unwrap()
    }

    fn config_error(builder: SessionIssuerBuilder) -> SessionConfigError {
        builder.build().map(|_| ()).unwrap_err()
    }

    /// Each setting that would issue sessions the layer refuses, or could not end, fails the
    /// build, saying what to change.
    #[test]
    fn a_layer_that_cannot_take_sessions_fails_at_build() {
        let bare = AuthLayer::new(verifier());
        let err = config_error(SessionIssuer::builder(&bare, HOUR));
        assert_eq!(err, SessionConfigError::NoSessionCookie);
        assert!(err.to_string().contains(".session_cookie("), "{err}");

        let no_denylist = bare.session_cookie("__Host-session").unwrap();
        let err = config_error(SessionIssuer::builder(&no_denylist, HOUR));
        assert_eq!(err, SessionConfigError::NoDenylist);
        assert!(err.to_string().contains(".denylist("), "{err}");

        let pem = include_bytes!("../../tests/tests/fixtures/test-only-p256-public.pem");
        let public = JwtVerifier::builder()
            .public_pem(None, Algorithm::ES256, pem)
            .unwrap()
            .build()
            .unwrap();
        let err = config_error(SessionIssuer::builder(&layer(public), HOUR));
        assert_eq!(err, SessionConfigError::NoSigningKey);
        assert!(
            err.to_string().contains("JwtVerifierBuilder::hmac"),
            "{err}"
        );
    }

    #[test]
    fn with_several_keys_the_signing_key_is_named() {
        let pem = include_bytes!("../../tests/tests/fixtures/test-only-p256-public.pem");
        let verifier = JwtVerifier::builder()
            .hmac(Some("2026-10"), Algorithm::HS256, OTHER_SECRET)
            .unwrap()
            .hmac(
                Some("2026-11"),
                Algorithm::HS256,
                b"k7Qz2vX9pL4mN8rT1wY6uE3sA5dF0gHj",
            )
            .unwrap()
            .public_pem(Some("idp"), Algorithm::ES256, pem)
            .unwrap()
            .build()
            .unwrap();
        let auth = layer(verifier.clone());
        let err = config_error(SessionIssuer::builder(&auth, HOUR));
        assert!(
            matches!(&err, SessionConfigError::SeveralSigningKeys { kids } if kids == &["2026-10", "2026-11"]),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(r#".signing_kid("2026-11")"#),
            "{err}"
        );
        for (kid, why) in [("idp", "public key"), ("2025-01", "not a kid")] {
            let err = config_error(SessionIssuer::builder(&auth, HOUR).signing_kid(kid));
            assert!(err.to_string().contains(why), "{kid}: {err}");
        }
        let sessions = SessionIssuer::builder(&auth, HOUR)
            .signing_kid("2026-11")
            .build()
            .unwrap();
        let token = sessions.issue("user-1").unwrap().token;
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some("2026-11"));
        assert!(verifier.verify::<Value>(&token).is_ok());
    }

    #[test]
    fn a_lifetime_the_verifier_would_cut_short_fails_at_build() {
        let err = config_error(SessionIssuer::builder(
            &layer(verifier()),
            Duration::from_millis(500),
        ));
        assert!(
            matches!(err, SessionConfigError::Lifetime { secs: 0, .. }),
            "{err:?}"
        );
        let capped = builder().max_age(HOUR).build().unwrap();
        let err = config_error(SessionIssuer::builder(&layer(capped.clone()), 2 * HOUR));
        assert!(err.to_string().contains("max_age of 3600 s"), "{err}");
        assert!(SessionIssuer::builder(&layer(capped), HOUR).build().is_ok());
    }

    /// A verifier that would refuse every session this issuer signs (here: tokens capped
    /// shorter than a session's) is found at build, not at the first login.
    #[test]
    fn a_verifier_that_refuses_the_sessions_fails_at_build() {
        let short = builder()
            .issuer("https://notes.example.com")
            .audience("notes")
            .max_token_len(crate::jwt::MIN_TOKEN_LEN)
            .build()
            .unwrap();
        let err = config_error(SessionIssuer::builder(&layer(short), HOUR));
        assert_eq!(err, SessionConfigError::Refused(JwtError::TooLong));
    }

    /// A session carries what the verifier requires (`iss`, `aud`, the header's `typ`, a
    /// `jti`), so the layer accepts it.
    #[test]
    fn a_session_carries_what_the_verifier_requires() {
        let strict = builder()
            .issuer("https://notes.example.com")
            .audience("notes")
            .typ("application/at+jwt")
            .unwrap()
            .max_age(HOUR)
            .require_jti()
            .build()
            .unwrap();
        let sessions = SessionIssuer::builder(&layer(strict.clone()), HOUR)
            .build()
            .unwrap();
        let session = sessions
            .issue_with_claims("user-1", json!({ "roles": ["admin"], "tenant": "acme" }))
            .unwrap();
        let verified = strict.verify::<Value>(session.token()).unwrap();
        assert_eq!(verified.principal.subject, "user-1");
        assert!(verified.principal.has_role("admin"));
        let claims = verified.claims;
        assert_eq!(claims["iss"], "https://notes.example.com");
        assert_eq!(claims["aud"], "notes");
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            3600
        );
        assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
        let other = sessions.issue("user-1").unwrap();
        let other = strict.verify::<Value>(other.token()).unwrap().claims;
        assert_ne!(claims["jti"], other["jti"], "a jti names one token");
    }

    #[test]
    fn the_cookie_is_what_the_host_prefix_asks() {
        let session = issuer().issue("user-1").unwrap();
        let set_cookie = session.set_cookie().to_str().unwrap();
        let mut attributes: Vec<&str> = set_cookie.split("; ").collect();
        let pair = attributes.remove(0);
        assert_eq!(pair, format!("__Host-session={}", session.token()));
        attributes.sort_unstable();
        assert_eq!(
            attributes,
            [
                "HttpOnly",
                "Max-Age=3600",
                "Path=/",
                "SameSite=Lax",
                "Secure"
            ]
        );
        assert!(session.set_cookie().is_sensitive());
        assert_eq!(session.expires_in(), HOUR);
    }

    #[test]
    fn claims_the_issuer_sets_or_no_subject_are_refused() {
        let sessions = issuer();
        for claim in RESERVED_CLAIMS {
            let err = sessions
                .issue_with_claims("user-1", json!({ claim: "x" }))
                .unwrap_err();
            assert!(
                matches!(err, SessionError::ReservedClaim(c) if c == claim),
                "{err:?}"
            );
        }
        assert!(matches!(
            sessions.issue("").unwrap_err(),
            SessionError::EmptySubject
        ));
        assert!(matches!(
            sessions.issue_with_claims("user-1", json!(["admin"])),
            Err(SessionError::ClaimsNotAnObject)
        ));
        let long = "x".repeat(5000);
        let err = sessions
            .issue_with_claims("user-1", json!({ "note": long }))
            .unwrap_err();
        assert!(
            matches!(
                err,
                SessionError::TooLong {
                    what: "Set-Cookie",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    /// Neither the key nor a token shows in `Debug` (which a log line may print).
    #[test]
    fn debug_shows_no_secret() {
        let sessions = issuer();
        let session = sessions.issue("user-1").unwrap();
        let shown = format!("{sessions:?} {session:?}");
        assert!(!shown.contains("k7Qz2vX9"), "{shown}");
        let payload = session.token().split('.').nth(1).unwrap();
        assert!(!shown.contains(payload), "{shown}");
    }

    /// A denylist that records revocations, or fails them.
    #[derive(Debug, Default)]
    struct Recording {
        revoked: Mutex<Vec<(String, SystemTime)>>,
        down: bool,
        /// Fails revocations as a store that reports an outage of this long.
        away_for: Option<Duration>,
    }

    impl Denylist for Recording {
        fn is_revoked<'a>(&'a self, _: TokenRef<'a>) -> crate::DenylistFuture<'a, bool> {
            Box::pin(async { Ok(false) })
        }
        fn revoke<'a>(
            &'a self,
            token: TokenRef<'a>,
            until: SystemTime,
        ) -> crate::DenylistFuture<'a, ()> {
            Box::pin(async move {
                if self.down {
                    return Err("connection refused".into());
                }
                if let Some(away_for) = self.away_for {
                    return Err(crate::DenylistUnavailable::new(away_for, "breaker open").into());
                }
                let mut revoked = self.revoked.lock().unwrap();
                revoked.push((token.jti.to_owned(), until));
                Ok(())
            })
        }
    }

    /// `/logout`, whose handler returns the `SessionError` itself, and `/logout-mixed`, whose
    /// handler converts it with `?` into `hardening_errors::Error`, behind an `AuthLayer`
    /// revoking on `list`; and the issuer of its sessions.
    fn logout_app(list: Arc<Recording>, verifier: JwtVerifier) -> (Router, SessionIssuer) {
        let auth = AuthLayer::new(verifier)
            .session_cookie("__Host-session")
            .unwrap()
            .denylist(list);
        let sessions = SessionIssuer::builder(&auth, HOUR).build().unwrap();
        let app = Router::new()
            .route(
                "/logout",
                post(
                    |State(sessions): State<SessionIssuer>, session: CurrentSession| async move {
                        sessions.logout(session).await
                    },
                ),
            )
            .route(
                "/logout-mixed",
                post(
                    |State(sessions): State<SessionIssuer>, session: CurrentSession| async move {
                        Ok::<_, Error>(sessions.logout(session).await?)
                    },
                ),
            )
            .with_state(sessions.clone())
            .layer(auth);
        (app, sessions)
    }

    async fn logout_with(list: Arc<Recording>, verifier: JwtVerifier, cookie: &str) -> Response {
        post_to(&logout_app(list, verifier).0, "/logout", cookie).await
    }

    async fn post_to(app: &Router, path: &str, cookie: &str) -> Response {
        let req = Request::post(path)
            .header(http::header::COOKIE, cookie)
            .body(Body::empty())
            .unwrap();
        app.clone().oneshot(req).await.unwrap()
    }

    use axum::extract::State;

    /// Logging out revokes the token's `jti` until its `exp`, and clears the cookie.
    #[tokio::test]
    async fn logout_revokes_until_exp_and_clears_the_cookie() {
        let list = Arc::new(Recording::default());
        let session = issuer().issue("user-1").unwrap();
        let claims = verifier().verify::<Value>(session.token()).unwrap().claims;
        let cookie = format!("__Host-session={}", session.token());
        let res = logout_with(list.clone(), verifier(), &cookie).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
        let cleared = res.headers()[SET_COOKIE].to_str().unwrap();
        assert!(cleared.starts_with("__Host-session=;"), "{cleared}");
        for attribute in ["Max-Age=0", "Secure", "HttpOnly", "Path=/", "SameSite=Lax"] {
            assert!(cleared.contains(attribute), "{cleared}");
        }
        assert_eq!(res.headers()[CACHE_CONTROL], "no-store");
        let exp = UNIX_EPOCH + Duration::from_secs(claims["exp"].as_u64().unwrap());
        let revoked = list.revoked.lock().unwrap().clone();
        assert_eq!(revoked, [(claims["jti"].as_str().unwrap().to_owned(), exp)]);
    }

    /// Without a live session (an expired or forged cookie, none) there is nothing to revoke:
    /// the cookie is cleared all the same.
    #[tokio::test]
    async fn logout_without_a_live_session_only_clears_the_cookie() {
        let list = Arc::new(Recording::default());
        let forged =
            crate::test_tokens::token(json!({ "sub": "user-1", "jti": "x" })).replace('.', ".x");
        for cookie in [format!("__Host-session={forged}"), "theme=dark".to_owned()] {
            let res = logout_with(list.clone(), verifier(), &cookie).await;
            assert_eq!(res.status(), StatusCode::NO_CONTENT, "{cookie}");
            assert!(
                res.headers()[SET_COOKIE]
                    .to_str()
                    .unwrap()
                    .contains("Max-Age=0")
            );
        }
        assert!(list.revoked.lock().unwrap().is_empty());
    }

    /// A denylist that cannot take the revocation is a 503 that clears nothing: a logout that
    /// did not take must not look done.
    #[tokio::test]
    async fn a_logout_the_denylist_did_not_take_is_a_503() {
        let list = Arc::new(Recording {
            down: true,
            ..Recording::default()
        });
        let session = issuer().issue("user-1").unwrap();
        let cookie = format!("__Host-session={}", session.token());
        let res = logout_with(list, verifier(), &cookie).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[http::header::RETRY_AFTER], "1");
        assert!(res.headers().get(SET_COOKIE).is_none());
    }

    /// A denylist away for a while (its breaker open for 7 s): the 503 says so in
    /// `Retry-After`, whether the handler returns the `SessionError` itself or converts it
    /// with `?` into `hardening_errors::Error`, as a handler that mixes errors does (the
    /// converted 503 had no `Retry-After`).
    #[tokio::test]
    async fn a_logout_the_denylist_did_not_take_says_when_to_retry_either_way() {
        let list = Arc::new(Recording {
            away_for: Some(Duration::from_secs(7)),
            ..Recording::default()
        });
        let (app, sessions) = logout_app(list, verifier());
        let cookie = format!(
            "__Host-session={}",
            sessions.issue("user-1").unwrap().token()
        );
        for path in ["/logout", "/logout-mixed"] {
            let res = post_to(&app, path, &cookie).await;
            assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
            assert_eq!(
                res.headers()[http::header::CONTENT_TYPE],
                hardening_errors::PROBLEM_JSON,
                "{path}"
            );
            assert_eq!(
                res.headers().get(http::header::RETRY_AFTER),
                Some(&HeaderValue::from_static("7")),
                "{path}"
            );
            assert!(res.headers().get(SET_COOKIE).is_none(), "{path}");
        }
    }

    /// A token without `jti` (let in by a verifier without `require_jti`) cannot be revoked:
    /// its logout is a 500, not a 204 that leaves it valid.
    #[tokio::test]
    async fn a_token_without_a_jti_cannot_be_logged_out() {
        let list = Arc::new(Recording::default());
        let cookie = format!("__Host-session={}", token(json!({ "sub": "user-1" })));
        let res = logout_with(list, verifier(), &cookie).await;
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(res.headers().get(SET_COOKIE).is_none());
    }
}
