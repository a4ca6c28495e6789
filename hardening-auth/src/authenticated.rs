//! `AuthLayer` (verifies the request's token once) and the `Authenticated<C>` extractor.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use hardening_errors::{Error, PrincipalId, PrincipalSlot, Problem, TenantId};
use http::header::{AUTHORIZATION, COOKIE, SET_COOKIE, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderValue, Request, StatusCode};
use pin_project_lite::pin_project;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tower::{Layer, Service};

use crate::session::SessionCookie;
use crate::{
    Denylist, DenylistError, DenylistUnavailable, JwtError, JwtVerifier, Principal, TokenRef,
};

/// The tracing target of authentication failures (their reasons are logged, never sent).
pub const AUTH_TARGET: &str = "hardening::auth";

/// Where the request's credentials came from. A cookie-authenticated request is subject to
/// CSRF checks; a bearer-token one is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialSource {
    /// `Authorization: Bearer …`
    Bearer,
    /// The session cookie.
    Cookie,
    /// An API key, admitted by [`ApiKeyLayer`](crate::ApiKeyLayer) (from its header, or from
    /// `Authorization: Bearer` under [`ApiKeyLayer::bearer`](crate::ApiKeyLayer::bearer)).
    ApiKey,
}

impl CredentialSource {
    /// How the log names it.
    fn as_str(self) -> &'static str {
        match self {
            Self::Bearer => "bearer",
            Self::Cookie => "cookie",
            Self::ApiKey => "api_key",
        }
    }
}

/// What [`AuthLayer`] found, in the request extensions, with where the credential came from
/// (`Option<Authenticated>` reads a stale session cookie as no session, a bad bearer token
/// as a 401).
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    Verified {
        principal: Principal,
        claims: Arc<Map<String, Value>>,
        source: CredentialSource,
    },
    /// A token that does not verify; when it came in the session cookie, with the
    /// `Set-Cookie` that clears that cookie (for `Authenticated`'s 401).
    Failed(JwtError, CredentialSource, Option<HeaderValue>),
    /// A verified token whose `jti` is on the denylist, with the `Set-Cookie` that clears
    /// the session cookie it came in, if it did.
    Revoked(CredentialSource, Option<HeaderValue>),
    /// A verified token the denylist could not be asked about: not accepted (fail closed).
    /// When to ask again, for `Retry-After`.
    DenylistUnavailable(std::time::Duration, CredentialSource),
    Absent,
}

/// Verifies the request's token once, before the handler: from `Authorization: Bearer` or,
/// when configured, a session cookie. A request whose token verifies and, with a
/// [`denylist`](Self::denylist), is not revoked carries its [`Principal`], its
/// [`PrincipalId`], its [`TenantId`] (when the token names a tenant) and its
/// [`CredentialSource`] in the extensions (for the handler and the layers inside, such as
/// per-principal and per-tenant rate limits), and its response carries the
/// [`PrincipalId`] for the access log. A missing, bad or revoked token puts none of them
/// there and does not reject here: routes that need authentication ask for [`Authenticated`].
///
/// ```
/// use axum::{Router, routing::get};
/// use hardening_auth::{Algorithm, AuthLayer, Authenticated, JwtVerifier};
///
/// async fn me(user: Authenticated) -> String {
///     user.principal.subject.clone()
/// }
///
/// let verifier = JwtVerifier::builder()
///     .hmac(None, Algorithm::HS256, b"k7Qz2vX9pL4mN8rT1wY6uE3sA5dF0gHj")?
///     .build()?;
/// let app: Router = Router::new()
///     .route("/me", get(me))
///     .layer(AuthLayer::new(verifier).session_cookie("__Host-session")?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct AuthLayer {
    verifier: JwtVerifier,
    cookie: Option<SessionCookie>,
    denylist: Option<Arc<dyn Denylist>>,
}

/// A session cookie name [`AuthLayer::session_cookie`] (or, for a name no cookie can have,
/// [`AuthLayer::dangerous_session_cookie_without_host_prefix`]) refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("session cookie {name:?}: {why}")]
pub struct InvalidSessionCookie {
    /// The name given.
    pub name: String,
    /// What is wrong with it, and what to do.
    pub why: &'static str,
}

/// What [`AuthLayer::session_cookie`] says of a name without the `__Host-` prefix.
const WITHOUT_HOST_PREFIX: &str = "use a name starting with __Host- (the browser then keeps \
     only a Secure, Path=/ cookie from this host, which no subdomain can plant), or \
     AuthLayer::dangerous_session_cookie_without_host_prefix to accept this one";

impl AuthLayer {
    /// Bearer tokens verified with `verifier`.
    pub fn new(verifier: JwtVerifier) -> Self {
        Self {
            verifier,
            cookie: None,
            denylist: None,
        }
    }

    /// Refuses tokens this denylist revoked. It is asked here, before the request
    /// goes on, about every verified token that has a `jti` (also on routes that do not ask
    /// for [`Authenticated`]), so a revoked token's principal never enters the extensions;
    /// [`Authenticated`] refuses such a token (401), and a store failure answers 503 with
    /// `Retry-After` (1, or the store's [`DenylistUnavailable::retry_after`]), never lets the
    /// token through.
    ///
    /// A token without a `jti` cannot be revoked: unless the verifier was built with
    /// [`require_jti`](crate::JwtVerifierBuilder::require_jti), which refuses such tokens,
    /// they pass, and this logs a warning saying so.
    pub fn denylist(mut self, denylist: Arc<dyn Denylist>) -> Self {
        if !self.verifier.requires_jti() {
            tracing::warn!(
                target: "hardening",
                setting = "AuthLayer::denylist without JwtVerifierBuilder::require_jti",
                "hardening loosened: tokens without a jti pass the denylist and cannot be revoked; \
                 build the verifier with .require_jti() if all your tokens carry one"
            );
        }
        self.denylist = Some(denylist);
        self
    }

    /// Also accepts the token from this cookie, whose name must start with `__Host-`: the
    /// browser then keeps only a `Secure`, `Path=/` cookie set by this very host, so a
    /// subdomain (or a plain-HTTP page on it) cannot plant one that is read first.
    ///
    /// A cookie's name is read trimmed of ASCII whitespace, as user agents read names
    /// (RFC 6265 §5.2): `__Host-session =…` is this cookie. A layer in front that opens or
    /// filters the cookie must recognise it by the same rule. So a name no cookie can have
    /// (spaces around it, `=`, `;`, a control character) is refused too: it would match no
    /// cookie, and every request would go unauthenticated.
    ///
    /// A token from this cookie that [`Authenticated`] refuses with a 401 because it does not
    /// verify or is revoked has the cookie cleared by that 401 (`Max-Age=0`), with the
    /// attributes a [`SessionIssuer`](crate::SessionIssuer) sets it with: `Path=/`, `Secure`,
    /// `HttpOnly`, `SameSite=Lax`, no `Domain`.
    ///
    /// ```
    /// # fn verifier() -> hardening_auth::JwtVerifier {
    /// #     hardening_auth::JwtVerifier::builder()
    /// #         .hmac(None, jsonwebtoken::Algorithm::HS256, b"k7Qz2vX9pL4mN8rT1wY6uE3sA5dF0gHj")
    /// #         .unwrap().build().unwrap()
    /// # }
    /// use hardening_auth::AuthLayer;
    ///
    /// assert!(AuthLayer::new(verifier()).session_cookie("__Host-session").is_ok());
    /// let err = AuthLayer::new(verifier()).session_cookie("session").unwrap_err();
    /// assert!(err.to_string().contains("__Host-"));
    /// ```
    pub fn session_cookie(self, name: impl Into<Arc<str>>) -> Result<Self, InvalidSessionCookie> {
        let name = name.into();
        let why = if let Some(problem) = hardening_errors::cookie_name_problem(&name) {
            Some(problem)
        } else if !name.starts_with("__Host-") || name.len() == "__Host-".len() {
            Some(WITHOUT_HOST_PREFIX)
        } else {
            None
        };
        if let Some(why) = why {
            return Err(InvalidSessionCookie {
                name: name.to_string(),
                why,
            });
        }
        self.read_cookie(name)
    }

    /// **Loosens**: accepts the token from a cookie whose name lacks the `__Host-` prefix
    /// (a cookie shared with subdomains, say), which a subdomain can then set too. Logged
    /// as a warning. A name no cookie can have (empty, spaces around it, `=`, `;`, a control
    /// character) is refused, as [`session_cookie`](Self::session_cookie) refuses it: it
    /// would match no cookie, and every request would go unauthenticated.
    ///
    /// A dead session in this cookie is cleared as [`session_cookie`](Self::session_cookie)
    /// says, with `Path=/` and no `Domain`: a cookie of this name set otherwise (for the
    /// parent domain, or another path) is another cookie to the browser, and is not cleared.
    pub fn dangerous_session_cookie_without_host_prefix(
        self,
        name: impl Into<Arc<str>>,
    ) -> Result<Self, InvalidSessionCookie> {
        let name = name.into();
        if let Some(why) = hardening_errors::cookie_name_problem(&name) {
            return Err(InvalidSessionCookie {
                name: name.to_string(),
                why,
            });
        }
        tracing::warn!(
            target: AUTH_TARGET,
            cookie = %name,
            "session cookie without the __Host- prefix: a subdomain can set a cookie of this name that is read first"
        );
        self.read_cookie(name)
    }

    /// Reads the session cookie `name` (checked by the caller), whose `Set-Cookie` that
    /// clears it is made here, once.
    fn read_cookie(mut self, name: Arc<str>) -> Result<Self, InvalidSessionCookie> {
        // Not for a name the checks let through (no control character); said, not panicked.
        let cookie = SessionCookie::new(Arc::clone(&name)).map_err(|_| InvalidSessionCookie {
            name: name.to_string(),
            why: "the name cannot be written in a Set-Cookie header field",
        })?;
        self.cookie = Some(cookie);
        Ok(self)
    }

    /// The verifier (a [`SessionIssuer`](crate::SessionIssuer) signs with its HMAC key).
    pub(crate) fn verifier(&self) -> &JwtVerifier {
        &self.verifier
    }

    /// The session cookie, if one is read.
    pub(crate) fn session_cookie_read(&self) -> Option<&SessionCookie> {
        self.cookie.as_ref()
    }

    /// The `Set-Cookie` that clears the session cookie, when `source` is that cookie: for
    /// the 401 that refuses the token it carried, so the browser stops sending it.
    fn clearing(&self, source: CredentialSource) -> Option<HeaderValue> {
        match (source, &self.cookie) {
            (CredentialSource::Cookie, Some(cookie)) => Some(cookie.clear.clone()),
            _ => None,
        }
    }

    /// The denylist, if there is one.
    pub(crate) fn denylist_store(&self) -> Option<Arc<dyn Denylist>> {
        self.denylist.clone()
    }

    /// Verifies the request's token. Its outcome is in the extensions when this returns
    /// [`Authentication::Done`]; a verified token the denylist must first be asked about is
    /// handed back instead, and admitted only once it is known not to be revoked.
    fn authenticate(&self, parts: &mut Parts) -> Authentication {
        // A principal a layer further out admitted (an `ApiKeyLayer`) stands: its request
        // goes on as it is, neither refused nor authenticated twice.
        if matches!(
            parts.extensions.get::<Outcome>(),
            Some(Outcome::Verified { .. })
        ) {
            return Authentication::Done(None);
        }
        let (token, source) = match bearer(parts) {
            Some(t) => (Some(t), CredentialSource::Bearer),
            None => (
                self.cookie
                    .as_ref()
                    .and_then(|session| cookie(parts, &session.name)),
                CredentialSource::Cookie,
            ),
        };
        let outcome = match token {
            None => Outcome::Absent,
            Some(token) => match self.verifier.verify_raw(token) {
                Ok((principal, claims)) => {
                    let verified = Admission {
                        principal,
                        claims: Arc::new(claims),
                        source,
                    };
                    // The verifier refuses a `jti` that is not a string (RFC 7519 §4.1.7).
                    let jti = verified.claims.get("jti").is_some_and(Value::is_string);
                    return match &self.denylist {
                        Some(denylist) if jti => {
                            let denylist = Arc::clone(denylist);
                            let claims = Arc::clone(&verified.claims);
                            Authentication::Check(
                                Box::pin(async move {
                                    // A verified token's `sub` is a string: never `None`,
                                    // which would fail closed.
                                    let token = TokenRef::from_claims(&claims)
                                        .ok_or("verified token without a string sub")?;
                                    denylist.is_revoked(token).await
                                }),
                                verified,
                            )
                        }
                        _ => Authentication::Done(Some(verified.admit(parts))),
                    };
                }
                Err(e) => Outcome::Failed(e, source, self.clearing(source)),
            },
        };
        parts.extensions.insert(outcome);
        Authentication::Done(None)
    }
}

/// What is left to do for a request once [`AuthLayer::authenticate`] has seen its token.
enum Authentication {
    /// Nothing: the outcome is in the extensions, with the principal's id when one was
    /// admitted (for the response).
    Done(Option<PrincipalId>),
    /// Ask the denylist about the token's `jti`; admit the token only if it is not revoked.
    Check(DenylistCheck, Admission),
}

/// The denylist's answer about one `jti`, owning what it needs.
type DenylistCheck = Pin<Box<dyn Future<Output = Result<bool, DenylistError>> + Send>>;

/// A credential that passed every check: its principal, claims and where it came from.
pub(crate) struct Admission {
    pub(crate) principal: Principal,
    pub(crate) claims: Arc<Map<String, Value>>,
    pub(crate) source: CredentialSource,
}

impl Admission {
    /// Puts the principal where the handler, the layers inside (per-principal rate limits and
    /// budgets) and the extractors find it; returns its id for the response (access log),
    /// also left in the request's [`PrincipalSlot`] for a request logged without one.
    pub(crate) fn admit(self, parts: &mut Parts) -> PrincipalId {
        let id = PrincipalId::new(self.principal.subject.as_str());
        if let Some(slot) = parts.extensions.get::<PrincipalSlot>() {
            slot.set(id.clone());
        }
        // Its tenant, for per-tenant limits (`hardening-ratelimit` reads this type, not ours).
        if let Some(tenant) = self.principal.tenant.as_deref().filter(|t| !t.is_empty()) {
            parts.extensions.insert(TenantId::new(tenant));
        }
        parts.extensions.insert(self.principal.clone());
        parts.extensions.insert(self.source);
        parts.extensions.insert(id.clone());
        parts.extensions.insert(Outcome::Verified {
            principal: self.principal,
            claims: self.claims,
            source: self.source,
        });
        id
    }
}

/// The token of `Authorization: Bearer …`, read as the CSRF check reads the header: once it
/// names the Bearer scheme, the request is a bearer request, whose token is what follows
/// (`""`, which fails verification, if that is not text). Such a request is never
/// authenticated by its cookie instead: the CSRF check lets bearer requests through.
/// `Authorization` is a singleton field (RFC 9110 §11.6.2): with a second one, the token is
/// `""` too, so that no principal is taken from a request a proxy in front, reading the
/// last header or joining them, may have read as someone else's.
pub(crate) fn bearer(parts: &Parts) -> Option<&str> {
    let mut values = parts.headers.get_all(AUTHORIZATION).iter();
    let value = values.next()?.as_bytes();
    let token = value
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case(b"bearer "))
        .and_then(|_| value.get(7..))
        .filter(|token| !token.is_empty())?;
    if values.next().is_some() {
        return Some("");
    }
    Some(std::str::from_utf8(token).map_or("", str::trim))
}

/// The value of the first cookie called `name` (names compared trimmed of ASCII whitespace,
/// see [`AuthLayer::session_cookie`]), read from the bytes of the `Cookie` headers: another
/// cookie that is not text (a non-ASCII value set by another app or a sibling subdomain)
/// must not hide this one. Only this cookie's own value must be text; if it is not, the
/// value is `""`, which fails verification (as a bearer value that is not text).
fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
        .find_map(|pair| {
            let eq = pair.iter().position(|b| *b == b'=')?;
            let (n, v) = (pair[..eq].trim_ascii(), &pair[eq + 1..]);
            (n == name.as_bytes()).then(|| std::str::from_utf8(v.trim_ascii()).unwrap_or(""))
        })
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`AuthLayer`] makes.
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    layer: AuthLayer,
}

impl<S, B, ResB> Service<Request<B>> for Auth<S>
where
    S: Service<Request<B>, Response = http::Response<ResB>> + Clone,
{
    type Response = http::Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let (mut parts, body) = req.into_parts();
        let state = match self.layer.authenticate(&mut parts) {
            Authentication::Done(principal) => {
                return ResponseFuture {
                    state: State::Inner {
                        future: self.inner.call(Request::from_parts(parts, body)),
                    },
                    principal,
                };
            }
            Authentication::Check(check, admission) => {
                // The service made ready goes with the request; a clone stays for the next.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                let clear_cookie = self.layer.clearing(admission.source);
                State::Denylist {
                    check,
                    pending: Some(Pending {
                        inner,
                        parts,
                        body,
                        admission,
                        clear_cookie,
                    }),
                }
            }
        };
        ResponseFuture {
            state,
            principal: None,
        }
    }
}

/// A request waiting for the denylist, with the service that will take it.
struct Pending<S, B> {
    inner: S,
    parts: Parts,
    body: B,
    admission: Admission,
    /// For a token from the session cookie, the `Set-Cookie` that clears it if it is revoked.
    clear_cookie: Option<HeaderValue>,
}

pin_project! {
    #[project = StateProj]
    enum State<F, P> {
        /// Asking the denylist; the request goes on (admitted or not) when it answers.
        Denylist {
            check: DenylistCheck,
            pending: Option<P>,
        },
        /// The inner service's response.
        Inner {
            #[pin]
            future: F,
        },
    }
}

pin_project! {
    /// The response future of [`Auth`]: first the denylist's answer when the token has a
    /// `jti` to look up, then the inner service's response.
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S::Future, Pending<S, B>>,
        principal: Option<PrincipalId>,
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Denylist { .. } => "denylist",
            State::Inner { .. } => "inner",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .field("principal", &self.principal)
            .finish()
    }
}

impl<S, B, ResB> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = http::Response<ResB>>,
{
    type Output = Result<http::Response<ResB>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Denylist { check, pending } => {
                    let revoked = ready!(check.as_mut().poll(cx));
                    let Pending {
                        mut inner,
                        mut parts,
                        body,
                        admission,
                        clear_cookie,
                    } = pending
                        .take()
                        .expect("the Denylist state holds its request until it ends");
                    let source = admission.source;
                    match revoked {
                        Ok(false) => *this.principal = Some(admission.admit(&mut parts)),
                        Ok(true) => {
                            parts
                                .extensions
                                .insert(Outcome::Revoked(source, clear_cookie));
                        }
                        Err(e) => {
                            log_unchecked(&e, source);
                            let retry_after = DenylistUnavailable::retry_after_of(&e);
                            parts
                                .extensions
                                .insert(Outcome::DenylistUnavailable(retry_after, source));
                        }
                    }
                    let future = inner.call(Request::from_parts(parts, body));
                    this.state.set(State::Inner { future });
                }
                StateProj::Inner { future } => {
                    let mut res = ready!(future.poll(cx))?;
                    if let Some(principal) = this.principal.take() {
                        res.extensions_mut().insert(principal);
                    }
                    return Poll::Ready(Ok(res));
                }
            }
        }
    }
}

/// Logs a verified token the denylist could not be asked about (the route then decides:
/// [`Authenticated`] refuses it, `Option<Authenticated>` reads a session cookie as none). A
/// store that reports an outage ([`DenylistUnavailable`]) logs the outage itself, once
/// (`RedisDenylist`: when its circuit breaker opens, and when Redis answers again), so each
/// request gets a debug line only, in its span (with its request id). Any other store error
/// (an error Redis answered, a store of your own failing) is logged here at error, as nothing
/// else logs it.
#[cold]
fn log_unchecked(error: &DenylistError, source: CredentialSource) {
    let source = source.as_str();
    if error.is::<DenylistUnavailable>() {
        tracing::debug!(target: AUTH_TARGET, %error, source, "could not check the token against the denylist");
    } else {
        tracing::error!(target: AUTH_TARGET, %error, source, "could not check the token against the denylist");
    }
}

/// The authenticated principal and the token's claims as `C` (default: raw JSON).
///
/// Rejections, each a problem:
/// - no token: 401 with `WWW-Authenticate: Bearer`;
/// - a token that does not verify, is revoked, or whose claims do not deserialize as `C`:
///   401 with `WWW-Authenticate: Bearer error="invalid_token"`; the reason goes to the log
///   (target [`AUTH_TARGET`]), never into the response. When that token came in the session
///   cookie and does not verify (expired, bad signature, garbled, …) or is revoked, the 401
///   also clears the cookie, with the `Set-Cookie` that
///   [`SessionIssuer::logout`](crate::SessionIssuer::logout) sends (`Max-Age=0`, `Path=/`,
///   `Secure`, no `Domain`), so the browser stops sending a dead session on every request
///   (as Rails and Django drop one). A bearer token's 401, a live session whose claims only
///   this `C` refuses (it may serve other routes), and the 503 below clear nothing;
/// - a denylist that could not be asked: 503 with `Retry-After: 1` (it is asked again at
///   the next request), or the store's [`DenylistUnavailable::retry_after`] (a circuit
///   breaker's cool-down);
/// - no [`AuthLayer`] around the route: 500 (a wiring mistake, logged).
///
/// `Option<Authenticated<C>>`, for pages that anyone may see (a home page, the login page),
/// is `None` without a token, and also for a session cookie that does not pass (expired,
/// revoked, signed with a secret since rotated, claims that do not fit `C`, or a denylist
/// that could not be asked): as Rails and Django read an expired session, logged out, so a
/// user whose session ended can still reach the login page. The reason is logged at info
/// (target [`AUTH_TARGET`], with `source` `cookie`); no security event, as nothing is
/// refused. A denylist that could not be asked is the exception: [`AuthLayer`] logs it,
/// whatever the route then does with the token ("could not check the token against the
/// denylist"), at debug when the store reports an outage (a [`DenylistUnavailable`], which
/// `RedisDenylist` logs once at error when its circuit breaker opens, and at info when Redis
/// answers again), at error for any other store error. A bearer token that does not pass is
/// rejected as above: its API client must learn that it is bad. A stale cookie read as `None`
/// is not cleared: the page answers as it will, and its answer may be the one that sets a new
/// session (a login). To end a session, take
/// [`CurrentSession`](crate::CurrentSession) instead: it answers 503 for a token the denylist
/// could not be asked about, which may be live.
///
/// ```
/// use axum::{Router, body::Body, routing::get};
/// use hardening_auth::{AuthLayer, Authenticated, JwtVerifier};
/// use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
/// use tower::ServiceExt;
///
/// let secret = b"k7Qz2vX9pL4mN8rT1wY6uE3sA5dF0gHj";
/// let verifier = JwtVerifier::builder().hmac(None, Algorithm::HS256, secret)?.build()?;
/// let app = Router::new()
///     .route("/me", get(|user: Authenticated| async move { user.principal.subject }))
///     .layer(AuthLayer::new(verifier));
///
/// let claims = serde_json::json!({ "sub": "user-1", "exp": 4_102_444_800_u64 });
/// let token = encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret))?;
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let get = |auth: Option<String>| {
///     let req = http::Request::get("/me");
///     let req = match auth { Some(a) => req.header("authorization", a), None => req };
///     app.clone().oneshot(req.body(Body::empty()).unwrap())
/// };
/// assert_eq!(get(Some(format!("Bearer {token}"))).await?.status(), 200);
/// let res = get(None).await?;
/// assert_eq!(res.status(), 401);
/// assert_eq!(res.headers()["www-authenticate"], "Bearer");
/// let res = get(Some("Bearer not-a-token".into())).await?;
/// assert_eq!(res.headers()["www-authenticate"], r#"Bearer error="invalid_token""#);
/// # Ok::<(), std::convert::Infallible>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Authenticated<C = Value> {
    /// Who the token is for.
    pub principal: Principal,
    /// The claims.
    pub claims: C,
}

impl<C> Authenticated<C> {
    /// 403 unless the principal has this role.
    ///
    /// # Errors
    ///
    /// [`Error::Forbidden`] (a 403 problem) without the role; logged at info level (target
    /// [`AUTH_TARGET`]) with the subject and the role.
    ///
    /// Roles are the token's `roles` claim:
    ///
    /// ```
    /// use axum::{Router, body::Body, routing::delete};
    /// use hardening_auth::{AuthLayer, Authenticated, JwtVerifier};
    /// use hardening_errors::Error;
    /// use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    /// use tower::ServiceExt;
    ///
    /// async fn delete_user(user: Authenticated) -> Result<&'static str, Error> {
    ///     user.require_role("admin")?;
    ///     Ok("deleted")
    /// }
    ///
    /// let secret = b"k7Qz2vX9pL4mN8rT1wY6uE3sA5dF0gHj";
    /// let verifier = JwtVerifier::builder().hmac(None, Algorithm::HS256, secret)?.build()?;
    /// let app = Router::new()
    ///     .route("/users/7", delete(delete_user))
    ///     .layer(AuthLayer::new(verifier));
    /// let token = |roles: &[&str]| {
    ///     let claims =
    ///         serde_json::json!({ "sub": "user-1", "exp": 4_102_444_800_u64, "roles": roles });
    ///     encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret))
    /// };
    /// let (admin, reader) = (token(&["admin"])?, token(&["reader"])?);
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let delete = |token: &str| {
    ///     let req = http::Request::delete("/users/7")
    ///         .header("authorization", format!("Bearer {token}"));
    ///     app.clone().oneshot(req.body(Body::empty()).unwrap())
    /// };
    /// assert_eq!(delete(&admin).await?.status(), 200);
    /// let res = delete(&reader).await?;
    /// assert_eq!(res.status(), 403);
    /// assert_eq!(res.headers()["content-type"], "application/problem+json");
    /// # Ok::<(), std::convert::Infallible>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn require_role(&self, role: &str) -> Result<(), Error> {
        if self.principal.has_role(role) {
            Ok(())
        } else {
            tracing::info!(target: AUTH_TARGET, subject = %self.principal.subject, role, "missing role");
            Err(Error::Forbidden)
        }
    }

    /// 403 unless the principal has this scope, with the RFC 6750 §3.1 challenge
    /// `WWW-Authenticate: Bearer error="insufficient_scope", scope="<scope>"` that tells the
    /// client which scope to ask for (see [`InsufficientScope`]).
    ///
    /// # Errors
    ///
    /// [`InsufficientScope`] without the scope; logged as `require_role` logs.
    ///
    /// The error converts into a [`Response`], so `?` works in a handler that returns
    /// `Result<_, Response>`:
    ///
    /// ```
    /// use axum::response::Response;
    /// use hardening_auth::Authenticated;
    ///
    /// async fn create_note(user: Authenticated) -> Result<&'static str, Response> {
    ///     user.require_scope("notes:write")?;
    ///     Ok("created")
    /// }
    /// ```
    pub fn require_scope(&self, scope: &str) -> Result<(), InsufficientScope> {
        if self.principal.has_scope(scope) {
            Ok(())
        } else {
            tracing::info!(target: AUTH_TARGET, subject = %self.principal.subject, scope, "missing scope");
            Err(InsufficientScope {
                scope: scope.to_owned(),
            })
        }
    }
}

/// A token without the scope a route needs: 403 with
/// `WWW-Authenticate: Bearer error="insufficient_scope", scope="<scope>"` (RFC 6750 §3.1)
/// and the same problem body as [`Error::Forbidden`].
///
/// A scope that is not an RFC 6749 §3.3 scope-token (empty, or with a space, `"`, `\` or a
/// character outside printable ASCII) cannot be quoted into the challenge and is left out
/// of it; the error stays `insufficient_scope`.
///
/// ```
/// use axum::response::IntoResponse;
/// use hardening_auth::InsufficientScope;
///
/// let res = InsufficientScope::new("notes:write").into_response();
/// assert_eq!(res.status(), 403);
/// assert_eq!(
///     res.headers()["www-authenticate"],
///     r#"Bearer error="insufficient_scope", scope="notes:write""#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the token lacks scope {scope:?}")]
#[non_exhaustive]
pub struct InsufficientScope {
    /// The scope the route needs.
    pub scope: String,
}

impl InsufficientScope {
    /// The refusal for a token without `scope`.
    pub fn new(scope: impl Into<String>) -> Self {
        Self {
            scope: scope.into(),
        }
    }

    /// The 403 problem, its `WWW-Authenticate` challenge included.
    pub fn to_problem(&self) -> Problem {
        let is_scope_token = !self.scope.is_empty()
            && self
                .scope
                .bytes()
                .all(|b| matches!(b, 0x21 | 0x23..=0x5b | 0x5d..=0x7e));
        let challenge = if is_scope_token {
            format!(
                r#"Bearer error="insufficient_scope", scope="{}""#,
                self.scope
            )
        } else {
            r#"Bearer error="insufficient_scope""#.to_owned()
        };
        let challenge = HeaderValue::from_str(&challenge)
            .unwrap_or_else(|_| HeaderValue::from_static(r#"Bearer error="insufficient_scope""#));
        Error::Forbidden
            .to_problem()
            .with_header(WWW_AUTHENTICATE, challenge)
    }
}

impl IntoResponse for InsufficientScope {
    fn into_response(self) -> Response {
        self.to_problem().into_response()
    }
}

impl From<InsufficientScope> for Response {
    fn from(refusal: InsufficientScope) -> Self {
        refusal.into_response()
    }
}

/// The 401 problem with this challenge and, for a dead session cookie, the `Set-Cookie`
/// that clears it (a problem keeps its own headers through `Hardening`).
fn unauthorized(challenge: &'static str, clear_cookie: Option<HeaderValue>) -> Response {
    let problem = Problem::new(StatusCode::UNAUTHORIZED)
        .with_detail("valid credentials are required")
        .with_header(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    match clear_cookie {
        Some(clear) => problem.with_header(SET_COOKIE, clear),
        None => problem,
    }
    .into_response()
}

/// Why a request has no [`Authenticated`], and, for a credential it did carry, where that
/// came from.
enum Refusal {
    /// No token.
    Absent,
    /// A token that does not verify, is revoked, or whose claims do not fit (logged); with
    /// the `Set-Cookie` that clears the session cookie when the token came in it and did not
    /// verify or is revoked (a token whose claims do not fit may serve other routes).
    Invalid(CredentialSource, Option<HeaderValue>),
    /// A verified token the denylist could not be asked about (logged by `AuthLayer`), and
    /// when to ask again.
    DenylistUnavailable(std::time::Duration, CredentialSource),
    /// No `AuthLayer` around the route.
    NoLayer,
}

impl Refusal {
    /// Whether `Option<Authenticated>` reads it as no session: no token, or a session
    /// cookie that did not pass (expired, revoked, signed with a rotated secret, claims of
    /// another shape, a denylist that could not be asked). A bearer token that did not pass
    /// stays a rejection: its API client must learn that it is bad.
    fn is_anonymous(&self) -> bool {
        matches!(
            self,
            Self::Absent
                | Self::Invalid(CredentialSource::Cookie, _)
                | Self::DenylistUnavailable(_, CredentialSource::Cookie)
        )
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Absent => unauthorized("Bearer", None),
            // An API key carries no claims: `Authenticated<C>` with a `C` that needs one is a
            // wiring mistake on every request of the route, not the client's.
            Self::Invalid(CredentialSource::ApiKey, _) => Error::internal(
                "Authenticated<C> under ApiKeyLayer: an API key carries no claims; take \
                 Authenticated (its claims an empty JSON object), or a C whose fields are all optional",
            )
            .into_response(),
            Self::Invalid(_, clear_cookie) => {
                unauthorized(r#"Bearer error="invalid_token""#, clear_cookie)
            }
            Self::DenylistUnavailable(retry_after, _) => denylist_unavailable(retry_after),
            Self::NoLayer => {
                Error::internal("Authenticated needs AuthLayer around the router").into_response()
            }
        }
    }
}

/// What `AuthLayer` found for this request, as `Authenticated<C>`; a refused token's reason
/// and source go to the log (info, target [`AUTH_TARGET`]).
fn authenticated<C: DeserializeOwned>(parts: &Parts) -> Result<Authenticated<C>, Refusal> {
    match parts.extensions.get::<Outcome>() {
        // Not revoked: `AuthLayer` asked its denylist before admitting the token.
        Some(Outcome::Verified {
            principal,
            claims,
            source,
        }) => match serde_json::from_value::<C>(Value::Object(Map::clone(claims))) {
            Ok(claims) => Ok(Authenticated {
                principal: principal.clone(),
                claims,
            }),
            Err(error) => {
                let mismatch = ClaimsMismatch::find::<C>(claims, &error);
                tracing::info!(
                    target: AUTH_TARGET,
                    reason = %JwtError::Claims,
                    claim = mismatch.claim,
                    expected = mismatch.expected,
                    source = source.as_str(),
                    "token refused"
                );
                // A live session whose claims do not fit this route's type: kept.
                Err(Refusal::Invalid(*source, None))
            }
        },
        Some(Outcome::Failed(reason, source, clear_cookie)) => {
            tracing::info!(target: AUTH_TARGET, %reason, source = source.as_str(), "token refused");
            Err(Refusal::Invalid(*source, clear_cookie.clone()))
        }
        Some(Outcome::Revoked(source, clear_cookie)) => {
            tracing::info!(target: AUTH_TARGET, reason = "revoked jti", source = source.as_str(), "token refused");
            Err(Refusal::Invalid(*source, clear_cookie.clone()))
        }
        Some(Outcome::DenylistUnavailable(retry_after, source)) => {
            Err(Refusal::DenylistUnavailable(*retry_after, *source))
        }
        Some(Outcome::Absent) => Err(Refusal::Absent),
        None => Err(Refusal::NoLayer),
    }
}

impl<S, C> FromRequestParts<S> for Authenticated<C>
where
    S: Send + Sync,
    C: DeserializeOwned + Send,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        authenticated(parts).map_err(IntoResponse::into_response)
    }
}

impl<S, C> OptionalFromRequestParts<S> for Authenticated<C>
where
    S: Send + Sync,
    C: DeserializeOwned + Send,
{
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match authenticated(parts) {
            Ok(user) => Ok(Some(user)),
            Err(refusal) if refusal.is_anonymous() => Ok(None),
            Err(refusal) => Err(refusal.into_response()),
        }
    }
}

/// Which claim kept a token's claims from deserializing into the claims type, and what the
/// type expected there (`u64`, "one of `admin`, `user`"), for the log: serde's message
/// quotes the claim's value, which may be personal data, and is not logged.
#[derive(Debug)]
struct ClaimsMismatch {
    /// The claim's name, printable ASCII.
    claim: Option<String>,
    /// What the claims type expected there, when serde's message says.
    expected: Option<String>,
}

impl ClaimsMismatch {
    /// Reads `error`, from deserializing `claims` into `C`. serde names the claim for a
    /// missing, unknown or repeated field; otherwise it is found by deserializing ever
    /// longer runs of the claims (in the order serde reads them, and it stops at the first
    /// that fails): the shortest that fails as all of them did ends with it.
    #[cold]
    #[inline(never)]
    fn find<C: DeserializeOwned>(claims: &Map<String, Value>, error: &serde_json::Error) -> Self {
        let message = error.to_string();
        let named = ["missing field `", "unknown field `", "duplicate field `"]
            .iter()
            .find_map(|start| message.strip_prefix(start)?.split('`').next());
        let claim = named.or_else(|| {
            let entries: Vec<(&String, &Value)> = claims.iter().collect();
            let fails_as_all_did = |len: usize| {
                let run: Map<String, Value> = entries[..len]
                    .iter()
                    .map(|(name, value)| ((*name).clone(), (*value).clone()))
                    .collect();
                serde_json::from_value::<C>(Value::Object(run))
                    .is_err_and(|e| e.to_string() == message)
            };
            let lens: Vec<usize> = (1..=entries.len()).collect();
            let shortest = lens.partition_point(|&len| !fails_as_all_did(len));
            entries.get(shortest).map(|(name, _)| name.as_str())
        });
        // serde's own messages put the value first and what was expected last; a custom
        // message may hold anything, and is left out.
        let says_expected = [
            "invalid type: ",
            "invalid value: ",
            "invalid length ",
            "unknown variant ",
        ]
        .iter()
        .any(|start| message.starts_with(start));
        let expected = says_expected
            .then(|| message.rsplit_once(", expected "))
            .flatten()
            .map(|(_, expected)| expected);
        let ascii = |text: &str| {
            let mut out = String::with_capacity(text.len());
            let _ = hardening_errors::write_printable_ascii(&mut out, text);
            out
        };
        Self {
            claim: claim.map(ascii),
            expected: expected.map(ascii),
        }
    }
}

/// The 503 for a token the denylist could not be asked about, with `Retry-After` (RFC 9110
/// §10.2.3): `retry_after` in whole seconds, rounded up, at least 1 (the least delay the
/// field can say): a store's [`DenylistUnavailable::retry_after`] (`RedisDenylist`'s breaker
/// cool-down, as the rate limiter's `FailClosed` refusals say theirs), else 1, as the
/// load-shedding 503 says (a store asked again at the next request).
#[cold]
pub(crate) fn denylist_unavailable(retry_after: std::time::Duration) -> Response {
    Error::UnavailableFor(retry_after).into_response()
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use serde_json::json;
    use tower::ServiceExt;

    use super::*;
    use crate::test_tokens::{token, verifier};

    async fn status_of(req: Request<Body>) -> StatusCode {
        let app = Router::new()
            .route(
                "/me",
                get(|user: Authenticated| async move { user.principal.subject }),
            )
            .layer(
                AuthLayer::new(verifier())
                    .session_cookie("__Host-session")
                    .unwrap(),
            );
        app.oneshot(req).await.unwrap().status()
    }

    async fn status(claims: Value) -> StatusCode {
        let req = Request::get("/me")
            .header(AUTHORIZATION, format!("Bearer {}", token(claims)))
            .body(Body::empty())
            .unwrap();
        status_of(req).await
    }

    #[tokio::test]
    async fn a_bearer_request_is_never_authenticated_by_its_cookie() {
        let session = format!("__Host-session={}", token(json!({ "sub": "user-1" })));
        let with_cookie = || Request::get("/me").header(COOKIE, &session);
        let alone = with_cookie().body(Body::empty()).unwrap();
        assert_eq!(status_of(alone).await, StatusCode::OK);
        // The CSRF check lets these through as bearer requests: a bearer value that is not
        // text, or not a token, must not fall back to the cookie.
        for bad in [
            &b"Bearer \xff"[..],
            b"bearer \xc3\xa9",
            b"Bearer not-a-token",
        ] {
            let req = with_cookie()
                .header(AUTHORIZATION, HeaderValue::from_bytes(bad).unwrap())
                .body(Body::empty())
                .unwrap();
            assert_eq!(status_of(req).await, StatusCode::UNAUTHORIZED, "{bad:?}");
        }
    }

    /// Two `Authorization` headers (a singleton field) were read as the first: a proxy in
    /// front reading the last may have taken the request for someone else's. None of them
    /// authenticates now, nor does the cookie beside them.
    #[tokio::test]
    async fn several_authorization_headers_authenticate_no_one() {
        let alice = format!("Bearer {}", token(json!({ "sub": "alice" })));
        let bob = format!("Bearer {}", token(json!({ "sub": "bob" })));
        let session = format!("__Host-session={}", token(json!({ "sub": "carol" })));
        for second in [
            bob.as_str(),
            alice.as_str(),
            "Bearer not-a-token",
            "Basic dTpw",
        ] {
            let req = Request::get("/me")
                .header(AUTHORIZATION, &alice)
                .header(AUTHORIZATION, second)
                .header(COOKIE, &session)
                .body(Body::empty())
                .unwrap();
            assert_eq!(status_of(req).await, StatusCode::UNAUTHORIZED, "{second}");
        }
        let one = Request::get("/me")
            .header(AUTHORIZATION, &alice)
            .body(Body::empty())
            .unwrap();
        assert_eq!(status_of(one).await, StatusCode::OK);
    }

    /// One non-ASCII byte anywhere in the Cookie header (another app's cookie, or one set by
    /// a sibling subdomain for the parent domain) hid the `__Host-` session cookie: the whole
    /// header was skipped as not text, so the user was logged out on every request.
    #[tokio::test]
    async fn session_cookie_is_found_beside_a_non_ascii_cookie() {
        let session = format!("__Host-session={}", token(json!({ "sub": "user-1" })));
        let request = |headers: &[&[u8]]| {
            let mut req = Request::get("/me");
            for value in headers {
                req = req.header(COOKIE, HeaderValue::from_bytes(value).unwrap());
            }
            req.body(Body::empty()).unwrap()
        };
        let besides: [&[u8]; 3] = ["pref=caf\u{e9}".as_bytes(), b"pref=\xff\xfe", b"\xff=1"];
        for other in besides {
            let before = [other, b"; ", session.as_bytes()].concat();
            let after = [session.as_bytes(), b"; ", other].concat();
            for req in [
                request(&[&before]),
                request(&[&after]),
                // Two Cookie fields (HTTP/2 may split them).
                request(&[other, session.as_bytes()]),
            ] {
                assert_eq!(status_of(req).await, StatusCode::OK, "{other:?}");
            }
        }
        // The session cookie's own value must be text (and a token).
        let bad = b"__Host-session=caf\xc3\xa9; pref=1".as_slice();
        assert_eq!(status_of(request(&[bad])).await, StatusCode::UNAUTHORIZED);
        // A name that only ends like the cookie's is another cookie.
        let lookalike = format!("x__Host-session={}", token(json!({ "sub": "user-1" })));
        let req = request(&[lookalike.as_bytes()]);
        assert_eq!(status_of(req).await, StatusCode::UNAUTHORIZED);
    }

    /// The name rule a layer in front of this one must share:
    /// names are read trimmed of ASCII whitespace, as user agents read them.
    #[tokio::test]
    async fn a_session_cookie_name_is_read_trimmed() {
        let token = token(json!({ "sub": "user-1" }));
        for cookie in [
            format!("__Host-session ={token}"),
            format!("__Host-session\t= {token}"),
            format!("a=1; __Host-session = {token} ; b=2"),
        ] {
            let req = Request::get("/me")
                .header(COOKIE, &cookie)
                .body(Body::empty())
                .unwrap();
            assert_eq!(status_of(req).await, StatusCode::OK, "{cookie:?}");
        }
    }

    /// Where `Csrf` and `AuthLayer` meet: a request the CSRF check lets through as a bearer
    /// request is never authenticated by its cookie, and one it checks is. The cookie name
    /// is matched exactly: `__host-session` (which browsers that matched the prefix
    /// case-sensitively let a subdomain set) is another cookie.
    #[tokio::test]
    async fn only_requests_the_csrf_check_sees_as_cookie_requests_use_the_cookie() {
        let session = format!("__Host-session={}", token(json!({ "sub": "user-1" })));
        let csrf = crate::Csrf::new();
        for (authorization, bearer) in [
            (&b"Bearer x"[..], true),
            (b"bEaReR x", true),
            (b"Bearer  ", true),
            (b"Bearer \xff", true),
            (b"Bearer", false),
            (b"Bearer ", false),
            (b"Bearerx", false),
            (b"Bearer\tx", false),
            (b"Basic dTpw", false),
        ] {
            let request = || {
                Request::post("/me")
                    .header(http::header::HOST, "api.example.com")
                    .header("origin", "https://evil.example")
                    .header(COOKIE, &session)
                    .header(
                        AUTHORIZATION,
                        HeaderValue::from_bytes(authorization).unwrap(),
                    )
            };
            let (parts, ()) = request().body(()).unwrap().into_parts();
            let shown = String::from_utf8_lossy(authorization);
            assert_eq!(csrf.check(&parts).is_ok(), bearer, "{shown:?}");
            let app = Router::new()
                .route(
                    "/me",
                    axum::routing::post(
                        |user: Authenticated| async move { user.principal.subject },
                    ),
                )
                .layer(
                    AuthLayer::new(verifier())
                        .session_cookie("__Host-session")
                        .unwrap(),
                );
            let res = app
                .oneshot(request().body(Body::empty()).unwrap())
                .await
                .unwrap();
            let by_cookie = res.status() == StatusCode::OK;
            assert_eq!(by_cookie, !bearer, "{shown:?}");
        }
        for name in ["__host-session", "__HOST-session", "__Host-Session"] {
            let cookie = format!("{name}={}", token(json!({ "sub": "user-1" })));
            let req = Request::get("/me")
                .header(COOKIE, cookie)
                .body(Body::empty())
                .unwrap();
            assert_eq!(status_of(req).await, StatusCode::UNAUTHORIZED, "{name}");
        }
    }

    #[tokio::test]
    async fn a_session_cookie_without_the_host_prefix_is_a_named_loosening() {
        for bad in ["session", "__host-session", "__Secure-session", "__Host-"] {
            let err = AuthLayer::new(verifier()).session_cookie(bad).unwrap_err();
            assert_eq!(err.name, bad);
        }
        let app = Router::new()
            .route(
                "/me",
                get(|user: Authenticated| async move { user.principal.subject }),
            )
            .layer(
                AuthLayer::new(verifier())
                    .dangerous_session_cookie_without_host_prefix("sid")
                    .unwrap(),
            );
        let req = Request::get("/me")
            .header(COOKIE, format!("sid={}", token(json!({ "sub": "user-1" }))))
            .body(Body::empty())
            .unwrap();
        assert_eq!(app.oneshot(req).await.unwrap().status(), StatusCode::OK);
    }

    #[derive(Debug)]
    struct DownStore;

    impl Denylist for DownStore {
        fn is_revoked<'a>(&'a self, _: TokenRef<'a>) -> crate::DenylistFuture<'a, bool> {
            Box::pin(async { Err("connection refused".into()) })
        }
        fn revoke<'a>(
            &'a self,
            _: TokenRef<'a>,
            _until: std::time::SystemTime,
        ) -> crate::DenylistFuture<'a, ()> {
            Box::pin(async { Err("connection refused".into()) })
        }
    }

    /// A revoked token's principal never reaches the extensions: not a handler reading
    /// `Extension<Principal>` itself, not the layers inside (per-principal limits read
    /// `PrincipalId`), not the access log (the response's `PrincipalId`). Routes that ask
    /// for `Authenticated` refuse it as before; a down store fails closed here too.
    #[tokio::test]
    async fn a_revoked_principal_never_reaches_the_extensions() {
        use axum::Extension;

        let list = Arc::new(crate::MemoryDenylist::new(10));
        let until = std::time::SystemTime::now() + std::time::Duration::from_secs(600);
        list.revoke(TokenRef::new("revoked", "user-1", None), until)
            .await
            .unwrap();
        let app = |denylist: Arc<dyn Denylist>| {
            Router::new()
                .route(
                    "/peek",
                    get(
                        |principal: Option<Extension<Principal>>,
                         id: Option<Extension<PrincipalId>>,
                         source: Option<Extension<CredentialSource>>| async move {
                            format!(
                                "{:?} {:?} {:?}",
                                principal.map(|p| p.0.subject),
                                id.map(|id| id.0.to_string()),
                                source.map(|s| s.0)
                            )
                        },
                    ),
                )
                .route(
                    "/me",
                    get(|user: Authenticated| async move { user.principal.subject }),
                )
                .route(
                    "/maybe",
                    get(|user: Option<Authenticated>| async move {
                        user.map(|u| u.principal.subject).unwrap_or_default()
                    }),
                )
                .layer(AuthLayer::new(verifier()).denylist(denylist))
        };
        let call = |denylist: Arc<dyn Denylist>, path: &'static str, jti: &'static str| async move {
            let token = token(json!({ "sub": "user-1", "jti": jti }));
            let req = Request::get(path)
                .header(AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            let res = app(denylist).oneshot(req).await.unwrap();
            let (status, id) = (
                res.status(),
                res.extensions()
                    .get::<PrincipalId>()
                    .map(|id| id.to_string()),
            );
            let body = http_body_util::BodyExt::collect(res.into_body())
                .await
                .unwrap()
                .to_bytes();
            (status, id, String::from_utf8_lossy(&body).into_owned())
        };

        // A token in force: its principal is everywhere.
        let (status, id, body) = call(list.clone(), "/peek", "live").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(id.as_deref(), Some("user-1"));
        assert_eq!(body, r#"Some("user-1") Some("user-1") Some(Bearer)"#);

        // A revoked one: nowhere, and refused where authentication is asked for.
        let (status, id, body) = call(list.clone(), "/peek", "revoked").await;
        assert_eq!(
            (status, id, body.as_str()),
            (StatusCode::OK, None, "None None None")
        );
        for path in ["/me", "/maybe"] {
            let (status, id, _) = call(list.clone(), path, "revoked").await;
            assert_eq!((status, id), (StatusCode::UNAUTHORIZED, None), "{path}");
        }

        // A store that cannot answer: no principal either, and 503 where one is needed.
        let (status, id, body) = call(Arc::new(DownStore), "/peek", "live").await;
        assert_eq!(
            (status, id, body.as_str()),
            (StatusCode::OK, None, "None None None")
        );
        let (status, id, _) = call(Arc::new(DownStore), "/me", "live").await;
        assert_eq!((status, id), (StatusCode::SERVICE_UNAVAILABLE, None));
    }

    /// `GET /me` (a route that needs `Authenticated`) with a token of `user-1` whose `jti`
    /// `denylist` is asked about.
    async fn me_with_a_live_token(denylist: Arc<dyn Denylist>) -> Response {
        let app = Router::new()
            .route(
                "/me",
                get(|user: Authenticated| async move { user.principal.subject }),
            )
            .layer(AuthLayer::new(verifier()).denylist(denylist));
        let token = token(json!({ "sub": "user-1", "jti": "live" }));
        let req = Request::get("/me")
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        app.oneshot(req).await.unwrap()
    }

    /// A store that says when to ask again (a [`DenylistUnavailable`]: `RedisDenylist`'s
    /// circuit breaker open, its cool-down) has its token refused with that `Retry-After`,
    /// in whole seconds rounded up, never under one.
    #[tokio::test]
    async fn a_store_that_says_when_to_ask_again_sets_retry_after() {
        #[derive(Debug)]
        struct Cooling(std::time::Duration);

        impl Denylist for Cooling {
            fn is_revoked<'a>(&'a self, _: TokenRef<'a>) -> crate::DenylistFuture<'a, bool> {
                let unavailable = DenylistUnavailable::new(self.0, "circuit breaker open");
                Box::pin(async move { Err(unavailable.into()) })
            }
            fn revoke<'a>(
                &'a self,
                _: TokenRef<'a>,
                _until: std::time::SystemTime,
            ) -> crate::DenylistFuture<'a, ()> {
                Box::pin(async { Ok(()) })
            }
        }

        for (cool_down, retry_after) in [(7_000, "7"), (1_500, "2"), (300, "1")] {
            let store = Cooling(std::time::Duration::from_millis(cool_down));
            let res = me_with_a_live_token(Arc::new(store)).await;
            assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(
                res.headers()[http::header::RETRY_AFTER],
                retry_after,
                "{cool_down} ms"
            );
        }
    }

    /// A denylist that could not be asked answered a 503 with no `Retry-After`, while the
    /// rate limiter's `FailClosed` 503-like refusals say when to come back: a client or proxy
    /// that retries had nothing to go by (RFC 9110 §10.2.3). A store error that does not say
    /// when to ask again: the earliest retry worth making is the next second.
    #[tokio::test]
    async fn a_denylist_outage_says_when_to_retry() {
        let res = me_with_a_live_token(Arc::new(DownStore)).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            res.headers().get(http::header::RETRY_AFTER),
            Some(&http::HeaderValue::from_static("1")),
            "{:?}",
            res.headers()
        );
        assert_eq!(
            res.headers()[http::header::CONTENT_TYPE],
            "application/problem+json"
        );
    }

    /// The layer asks the denylist with the token's `sub` and `iat` too: a revocation
    /// merged into its subject's entry (found by `sub`, not by `jti`) still refuses the
    /// token, and a token of that subject issued later passes.
    #[tokio::test]
    async fn a_token_revoked_through_its_subject_is_refused() {
        let list = Arc::new(crate::MemoryDenylist::new(10).per_subject(1));
        let now = std::time::SystemTime::now();
        let unix = now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let until = now + std::time::Duration::from_secs(600);
        let at = |secs: u64| Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs));
        for (jti, iat) in [("first", unix - 60), ("second", unix - 30)] {
            list.revoke(TokenRef::new(jti, "user-1", at(iat)), until)
                .await
                .unwrap();
        }
        let app = Router::new()
            .route(
                "/me",
                get(|user: Authenticated| async move { user.principal.subject }),
            )
            .layer(AuthLayer::new(verifier()).denylist(list));
        let status = |jti: &'static str, iat: u64| {
            let app = app.clone();
            async move {
                let token = token(json!({ "sub": "user-1", "jti": jti, "iat": iat }));
                let req = Request::get("/me")
                    .header(AUTHORIZATION, format!("Bearer {token}"))
                    .body(Body::empty())
                    .unwrap();
                app.oneshot(req).await.unwrap().status()
            }
        };
        assert_eq!(status("first", unix - 60).await, StatusCode::UNAUTHORIZED);
        assert_eq!(status("second", unix - 30).await, StatusCode::UNAUTHORIZED);
        assert_eq!(status("later", unix).await, StatusCode::OK);
    }

    /// With `require_jti`, a token without `jti` (which no denylist could revoke) is a 401
    /// `invalid_token` problem like any invalid token, and its principal goes nowhere.
    #[tokio::test]
    async fn require_jti_refuses_a_token_without_one_with_a_401_problem() {
        let verifier = crate::test_tokens::builder().require_jti().build().unwrap();
        let app = Router::new()
            .route(
                "/me",
                get(|user: Authenticated| async move { user.principal.subject }),
            )
            .layer(AuthLayer::new(verifier).denylist(Arc::new(crate::MemoryDenylist::new(10))));
        let call = |claims: Value| {
            let app = app.clone();
            async move {
                let req = Request::get("/me")
                    .header(AUTHORIZATION, format!("Bearer {}", token(claims)))
                    .body(Body::empty())
                    .unwrap();
                app.oneshot(req).await.unwrap()
            }
        };
        let res = call(json!({ "sub": "user-1" })).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert!(res.extensions().get::<PrincipalId>().is_none());
        assert_eq!(
            res.headers()[WWW_AUTHENTICATE],
            r#"Bearer error="invalid_token""#
        );
        assert_eq!(
            res.headers()[http::header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert_eq!(body_of(res).await["status"], 401);
        let res = call(json!({ "sub": "user-1", "jti": "t-1" })).await;
        assert_eq!(res.status(), StatusCode::OK);
    }

    fn user_with_scopes(scopes: &[&str]) -> Authenticated {
        Authenticated {
            principal: Principal {
                subject: "user-1".into(),
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                ..Principal::default()
            },
            claims: Value::Null,
        }
    }

    async fn body_of(res: Response) -> Value {
        let bytes = http_body_util::BodyExt::collect(res.into_body())
            .await
            .unwrap()
            .to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// RFC 6750 §3.1: a token without the scope a resource needs is answered 403 with
    /// `WWW-Authenticate: Bearer error="insufficient_scope", scope="…"`, so the client knows
    /// which scope to ask its authorization server for. The 403 used to carry no challenge.
    #[tokio::test]
    async fn a_missing_scope_is_an_insufficient_scope_challenge() {
        let user = user_with_scopes(&["notes:read"]);
        assert!(user.require_scope("notes:read").is_ok());
        let res = user
            .require_scope("notes:write")
            .unwrap_err()
            .into_response();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let challenges: Vec<_> = res.headers().get_all(WWW_AUTHENTICATE).iter().collect();
        assert_eq!(
            challenges,
            [r#"Bearer error="insufficient_scope", scope="notes:write""#]
        );
        // The body is the plain 403 problem, as before.
        let expected = body_of(Error::Forbidden.into_response()).await;
        assert_eq!(body_of(res).await, expected);
    }

    /// A required scope that is not a valid scope-token (RFC 6749 §3.3: no space, `"` or
    /// `\`) cannot be quoted into the challenge: it is left out, the error stays.
    #[tokio::test]
    async fn a_scope_that_cannot_be_quoted_is_left_out_of_the_challenge() {
        let user = user_with_scopes(&[]);
        for scope in ["a b", "say \"hi\"", "back\\slash", "caf\u{e9}", ""] {
            let res = user.require_scope(scope).unwrap_err().into_response();
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{scope:?}");
            assert_eq!(
                res.headers()[WWW_AUTHENTICATE],
                r#"Bearer error="insufficient_scope""#,
                "{scope:?}"
            );
        }
    }

    /// A token whose claims do not deserialize into the handler's claims type was logged
    /// only as "claims do not match the expected shape": nobody could tell which claim. The
    /// log names the claim and what the type expected there, never the claim's value (it
    /// may be personal data).
    #[tokio::test]
    async fn a_claims_mismatch_names_the_claim_not_its_value() {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Claims {
            tenant: u64,
            role: Role,
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "lowercase")]
        enum Role {
            Admin,
            User,
        }
        let app = Router::new()
            .route("/me", get(|_: Authenticated<Claims>| async { "ok" }))
            .layer(AuthLayer::new(verifier()));
        let log = hardening_errors::test_log::Captured::default();
        let _guard = log.capture();
        for (claims, claim, expected) in [
            (
                json!({"sub": "u", "tenant": "ann@example.com", "role": "user"}),
                "tenant",
                Some("u64"),
            ),
            (
                json!({"sub": "u", "tenant": 7, "role": "ann@example.com"}),
                "role",
                Some("`admin` or `user`"),
            ),
            (
                json!({"sub": "u", "tenant": -1, "role": "user"}),
                "tenant",
                Some("u64"),
            ),
            (json!({"sub": "u", "role": "admin"}), "tenant", None),
        ] {
            log.clear();
            let req = Request::get("/me")
                .header(AUTHORIZATION, format!("Bearer {}", token(claims.clone())))
                .body(Body::empty())
                .unwrap();
            let res = app.clone().oneshot(req).await.unwrap();
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{claims}");
            let refused = log.find(tracing::Level::INFO, "token refused");
            assert_eq!(refused.len(), 1, "{claims}: {:?}", log.lines());
            let line = &refused[0];
            assert_eq!(line.target, AUTH_TARGET);
            assert_eq!(line.field("claim"), Some(claim), "{claims}: {line:?}");
            assert_eq!(line.field("expected"), expected, "{claims}: {line:?}");
            assert!(
                !format!("{line:?}").contains("ann@example.com"),
                "{claims}: the claim's value is logged: {line:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_token_without_a_subject_is_not_a_principal() {
        assert_eq!(status(json!({ "sub": "user-1" })).await, StatusCode::OK);
        assert_eq!(status(json!({})).await, StatusCode::UNAUTHORIZED);
        assert_eq!(status(json!({ "sub": "" })).await, StatusCode::UNAUTHORIZED);
    }

    /// `session_cookie("__Host-session ")` (a stray space, read from a file) or a name with
    /// `=` was taken and matched no cookie: every request carrying the session went
    /// unauthenticated, with nothing said at start-up. Refused, saying why.
    #[test]
    fn a_session_cookie_name_no_cookie_can_have_is_refused() {
        for (name, why) in [
            ("__Host-session ", "spaces around it"),
            ("__Host-se=ssion", "`;` or `=`"),
            ("__Host-se;ssion", "`;` or `=`"),
            ("__Host-se\tssion", "control character"),
        ] {
            let err = AuthLayer::new(verifier())
                .session_cookie(name)
                .map(|_| ())
                .expect_err(name);
            assert_eq!(err.name, name);
            assert!(err.to_string().contains(why), "{name:?}: {err}");
        }
        let err = AuthLayer::new(verifier())
            .session_cookie("session")
            .map(|_| ())
            .unwrap_err();
        assert!(err.to_string().contains("__Host-"), "{err}");
        assert!(
            AuthLayer::new(verifier())
                .session_cookie("__Host-session")
                .is_ok()
        );
    }

    /// `dangerous_session_cookie_without_host_prefix("sid ")` was taken without a word and
    /// matched no cookie: the `sid` cookie authenticated nobody (401), the loosening asked
    /// for did not happen. Refused as `session_cookie` refuses such a name.
    #[test]
    fn a_session_cookie_name_no_cookie_can_have_is_refused_without_the_prefix_too() {
        for (name, why) in [
            ("sid ", "spaces around it"),
            ("", "empty"),
            ("s=id", "`;` or `=`"),
            ("s;id", "`;` or `=`"),
            ("s\tid", "control character"),
        ] {
            let err = AuthLayer::new(verifier())
                .dangerous_session_cookie_without_host_prefix(name)
                .map(|_| ())
                .expect_err(name);
            assert_eq!(err.name, name);
            assert!(err.to_string().contains(why), "{name:?}: {err}");
        }
        for name in ["sid", "__Host-session"] {
            assert!(
                AuthLayer::new(verifier())
                    .dangerous_session_cookie_without_host_prefix(name)
                    .is_ok(),
                "{name}"
            );
        }
    }

    /// Claims of a shape a route may ask for: a numeric `tenant`.
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Tenanted {
        tenant: u64,
    }

    /// A route of each kind behind `auth`: `/me` needs a principal, `/admin` an admin,
    /// `/typed` claims with a numeric `tenant`; `/maybe` takes one if there is one, and
    /// `/open` does not ask.
    fn routes_behind(auth: AuthLayer) -> Router {
        Router::new()
            .route(
                "/me",
                get(|user: Authenticated| async move { user.principal.subject }),
            )
            .route(
                "/admin",
                get(|user: Authenticated| async move {
                    user.require_role("admin").map(|()| user.principal.subject)
                }),
            )
            .route(
                "/typed",
                get(|user: Authenticated<Tenanted>| async move { user.principal.subject }),
            )
            .route(
                "/maybe",
                get(|user: Option<Authenticated>| async move {
                    user.map(|u| u.principal.subject).unwrap_or_default()
                }),
            )
            .route("/open", get(|| async { "open" }))
            .layer(auth)
    }

    /// `GET path` with these headers.
    async fn get_with(app: &Router, path: &str, headers: &[(http::HeaderName, &[u8])]) -> Response {
        let mut req = Request::get(path);
        for (name, value) in headers {
            req = req.header(name, HeaderValue::from_bytes(value).unwrap());
        }
        app.clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    fn set_cookies(res: &Response) -> Vec<String> {
        res.headers()
            .get_all(http::header::SET_COOKIE)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }

    /// The one `Set-Cookie` of `res` clears the cookie `name` as a `SessionIssuer` sets
    /// it: empty, `Max-Age=0`, `Path=/`, `Secure` and no `Domain` (all the `__Host-` prefix
    /// accepts), `HttpOnly`, `SameSite=Lax`.
    fn assert_clears(res: &Response, name: &str, what: &str) {
        let set = set_cookies(res);
        assert_eq!(set.len(), 1, "{what}: {set:?}");
        let mut parts: Vec<&str> = set[0].split("; ").collect();
        assert_eq!(parts.remove(0), format!("{name}="), "{what}: {set:?}");
        parts.sort_unstable();
        assert_eq!(
            parts,
            ["HttpOnly", "Max-Age=0", "Path=/", "SameSite=Lax", "Secure"],
            "{what}"
        );
    }

    /// The credentials of a session that ended, or never was: revoked (logged out
    /// elsewhere), expired, signed with a key since rotated, not a token, not text.
    fn dead_tokens() -> Vec<(&'static str, Vec<u8>)> {
        let rotated = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &json!({ "sub": "user-1", "jti": "rotated", "exp": 4_102_444_800_u64 }),
            &jsonwebtoken::EncodingKey::from_secret(b"Vb3nM8qL1wE6rT9yU2iO5pA7sD4fG0hJ"),
        )
        .unwrap();
        vec![
            (
                "revoked",
                token(json!({ "sub": "user-1", "jti": "logged-out" })).into_bytes(),
            ),
            (
                "expired",
                crate::test_tokens::expired_token(json!({ "sub": "user-1", "jti": "old" }))
                    .into_bytes(),
            ),
            ("bad signature", rotated.into_bytes()),
            ("malformed", b"not-a-token".to_vec()),
            ("not text", b"caf\xc3\xa9".to_vec()),
        ]
    }

    async fn logged_out_elsewhere() -> Arc<crate::MemoryDenylist> {
        let list = Arc::new(crate::MemoryDenylist::new(10));
        let until = std::time::SystemTime::now() + std::time::Duration::from_secs(600);
        list.revoke(TokenRef::new("logged-out", "user-1", None), until)
            .await
            .unwrap();
        list
    }

    /// A 401 for a session cookie whose token was refused (revoked, expired, bad signature,
    /// garbled) kept the cookie: the browser sent it again on every request, each met a 401,
    /// until the user logged in again or the cookie's `Max-Age` ran out. Such a 401 now
    /// clears it, as Rails and Django drop a dead session cookie, and as `logout` clears it.
    #[tokio::test]
    async fn a_refused_session_cookie_is_cleared_by_its_401() {
        let list = logged_out_elsewhere().await;
        for (name, auth) in [
            (
                "__Host-session",
                AuthLayer::new(verifier()).session_cookie("__Host-session"),
            ),
            (
                "sid",
                AuthLayer::new(verifier()).dangerous_session_cookie_without_host_prefix("sid"),
            ),
        ] {
            let app = routes_behind(auth.unwrap().denylist(list.clone()));
            for (what, token) in dead_tokens() {
                let cookie = [b"theme=dark; ", name.as_bytes(), b"=", &token].concat();
                for path in ["/me", "/admin", "/typed"] {
                    let res = get_with(&app, path, &[(COOKIE, &cookie)]).await;
                    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{what} {path}");
                    assert_eq!(
                        res.headers()[WWW_AUTHENTICATE],
                        r#"Bearer error="invalid_token""#
                    );
                    assert_clears(&res, name, &format!("{name} {what} {path}"));
                    assert_eq!(res.headers()[http::header::CACHE_CONTROL], "no-store");
                }
            }
        }
    }

    /// Only the refused session cookie is cleared: not for a bearer token that fails (a
    /// cookie beside it was not read), not for a request with no credential, not for a
    /// live cookie refused a role (403) or whose claims do not fit one route's type (the
    /// session is good elsewhere), not for a cookie the denylist could not be asked about
    /// (503: it may be live), and never where the route does not require authentication.
    #[tokio::test]
    async fn only_a_refused_session_cookie_is_cleared() {
        let auth = || {
            AuthLayer::new(verifier())
                .session_cookie("__Host-session")
                .unwrap()
        };
        let app = routes_behind(auth().denylist(logged_out_elsewhere().await));
        let cookie = |token: &[u8]| [b"__Host-session=", token].concat();
        let status_and_cookies = |res: Response| (res.status(), set_cookies(&res));
        let none = Vec::<String>::new();
        for (what, token) in dead_tokens() {
            let bearer = [b"Bearer ", &token[..]].concat();
            for path in ["/me", "/maybe"] {
                let res = get_with(&app, path, &[(AUTHORIZATION, &bearer)]).await;
                let expected = (StatusCode::UNAUTHORIZED, none.clone());
                assert_eq!(status_and_cookies(res), expected, "bearer {what} {path}");
            }
            // The failed bearer token is refused; the cookie beside it is not read.
            let res = get_with(
                &app,
                "/me",
                &[(AUTHORIZATION, &bearer), (COOKIE, &cookie(&token))],
            )
            .await;
            let expected = (StatusCode::UNAUTHORIZED, none.clone());
            assert_eq!(
                status_and_cookies(res),
                expected,
                "bearer and cookie {what}"
            );
            // Where login is optional, or not asked for, the handler answers as it will.
            for path in ["/maybe", "/open"] {
                let res = get_with(&app, path, &[(COOKIE, &cookie(&token))]).await;
                let expected = (StatusCode::OK, none.clone());
                assert_eq!(status_and_cookies(res), expected, "{what} {path}");
            }
        }
        let res = get_with(&app, "/me", &[]).await;
        assert_eq!(
            status_and_cookies(res),
            (StatusCode::UNAUTHORIZED, none.clone())
        );

        let live =
            cookie(token(json!({ "sub": "user-1", "jti": "live", "tenant": "acme" })).as_bytes());
        for (path, status) in [
            ("/me", StatusCode::OK),
            ("/admin", StatusCode::FORBIDDEN),
            ("/typed", StatusCode::UNAUTHORIZED),
        ] {
            let res = get_with(&app, path, &[(COOKIE, &live)]).await;
            assert_eq!(
                status_and_cookies(res),
                (status, none.clone()),
                "live {path}"
            );
        }

        let down = routes_behind(auth().denylist(Arc::new(DownStore)));
        let res = get_with(&down, "/me", &[(COOKIE, &live)]).await;
        let expected = (StatusCode::SERVICE_UNAVAILABLE, none.clone());
        assert_eq!(status_and_cookies(res), expected);
    }
}
