//! `AuthLayer` (verifies the request's token once) and the `Authenticated<C>` extractor.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use hardening_errors::{Error, PrincipalId, Problem};
use http::header::{AUTHORIZATION, COOKIE, WWW_AUTHENTICATE};
use http::request::Parts;
use http::{HeaderValue, Request, StatusCode};
use pin_project_lite::pin_project;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tower::{Layer, Service};

use crate::{Denylist, JwtError, JwtVerifier, Principal};

/// The tracing target of authentication failures (their reasons are logged, never sent).
pub const AUTH_TARGET: &str = "hardening::auth";

/// Where the request's credentials came from. A cookie-authenticated request is subject to
/// CSRF checks; a bearer-token one is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    /// `Authorization: Bearer …`
    Bearer,
    /// The session cookie.
    Cookie,
}

/// What [`AuthLayer`] found, in the request extensions.
#[derive(Debug, Clone)]
enum Outcome {
    Verified {
        principal: Principal,
        claims: Arc<Map<String, Value>>,
    },
    Failed(JwtError),
    Absent,
}

/// Verifies the request's token once, before the handler: from `Authorization: Bearer` or,
/// when configured, a session cookie. A verified request carries its [`Principal`] and
/// [`CredentialSource`] in the extensions, and its response carries a
/// [`PrincipalId`] for the access log. A missing or bad token does not reject here: routes
/// that need authentication ask for [`Authenticated`].
///
/// ```
/// use axum::{Router, routing::get};
/// use hardening_auth::{AuthLayer, Authenticated, JwtVerifier};
/// use jsonwebtoken::Algorithm;
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
    cookie: Option<Arc<str>>,
    denylist: Option<Arc<dyn Denylist>>,
}

/// A session cookie name [`AuthLayer::session_cookie`] refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "session cookie {name:?}: use a name starting with __Host- (the browser then keeps only a \
     Secure, Path=/ cookie from this host, which no subdomain can plant), or \
     AuthLayer::dangerous_session_cookie_without_host_prefix to accept this one"
)]
pub struct InvalidSessionCookie {
    /// The name given.
    pub name: String,
}

impl AuthLayer {
    /// Bearer tokens verified with `verifier`.
    pub fn new(verifier: JwtVerifier) -> Self {
        Self {
            verifier,
            cookie: None,
            denylist: None,
        }
    }

    /// Refuses tokens whose `jti` is on this denylist (checked by [`Authenticated`]; a
    /// store failure answers 503, never lets the token through).
    pub fn denylist(mut self, denylist: Arc<dyn Denylist>) -> Self {
        self.denylist = Some(denylist);
        self
    }

    /// Also accepts the token from this cookie, whose name must start with `__Host-`: the
    /// browser then keeps only a `Secure`, `Path=/` cookie set by this very host, so a
    /// subdomain (or a plain-HTTP page on it) cannot plant one that is read first.
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
    pub fn session_cookie(
        mut self,
        name: impl Into<Arc<str>>,
    ) -> Result<Self, InvalidSessionCookie> {
        let name = name.into();
        if !name.starts_with("__Host-") || name.len() == "__Host-".len() {
            return Err(InvalidSessionCookie {
                name: name.to_string(),
            });
        }
        self.cookie = Some(name);
        Ok(self)
    }

    /// **Loosens**: accepts the token from a cookie whose name lacks the `__Host-` prefix
    /// (a cookie shared with subdomains, say), which a subdomain can then set too. Logged
    /// as a warning.
    pub fn dangerous_session_cookie_without_host_prefix(
        mut self,
        name: impl Into<Arc<str>>,
    ) -> Self {
        let name = name.into();
        tracing::warn!(
            target: AUTH_TARGET,
            cookie = %name,
            "session cookie without the __Host- prefix: a subdomain can set a cookie of this name that is read first"
        );
        self.cookie = Some(name);
        self
    }

    fn authenticate(&self, parts: &mut Parts) {
        let (token, source) = match bearer(parts) {
            Some(t) => (Some(t), CredentialSource::Bearer),
            None => (
                self.cookie.as_deref().and_then(|name| cookie(parts, name)),
                CredentialSource::Cookie,
            ),
        };
        let outcome = match token {
            None => Outcome::Absent,
            Some(token) => match self.verifier.verify_raw(token) {
                Ok((principal, claims)) => Outcome::Verified {
                    principal,
                    claims: Arc::new(claims),
                },
                Err(e) => Outcome::Failed(e),
            },
        };
        if let Outcome::Verified { principal, .. } = &outcome {
            parts.extensions.insert(principal.clone());
            parts.extensions.insert(source);
            // For the layers inside (per-principal rate limits and budgets).
            parts
                .extensions
                .insert(PrincipalId::new(principal.subject.as_str()));
        }
        if let Some(denylist) = &self.denylist {
            parts.extensions.insert(DenylistHandle(denylist.clone()));
        }
        parts.extensions.insert(outcome);
    }
}

/// The token of `Authorization: Bearer …`, read as the CSRF check reads the header: once it
/// names the Bearer scheme, the request is a bearer request, whose token is what follows
/// (`""`, which fails verification, if that is not text). Such a request is never
/// authenticated by its cookie instead: the CSRF check lets bearer requests through.
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.as_bytes();
    let token = value
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case(b"bearer "))
        .and_then(|_| value.get(7..))
        .filter(|token| !token.is_empty())?;
    Some(std::str::from_utf8(token).map_or("", str::trim))
}

fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (n, v) = pair.trim().split_once('=')?;
            (n == name).then_some(v)
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
    S: Service<Request<B>, Response = http::Response<ResB>>,
{
    type Response = http::Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let (mut parts, body) = req.into_parts();
        self.layer.authenticate(&mut parts);
        let principal = parts
            .extensions
            .get::<Principal>()
            .map(|p| PrincipalId::new(p.subject.as_str()));
        ResponseFuture {
            future: self.inner.call(Request::from_parts(parts, body)),
            principal,
        }
    }
}

pin_project! {
    /// The response future of [`Auth`].
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        future: F,
        principal: Option<PrincipalId>,
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut res = ready!(this.future.poll(cx))?;
        if let Some(principal) = this.principal.take() {
            res.extensions_mut().insert(principal);
        }
        Poll::Ready(Ok(res))
    }
}

/// The denylist, for the extractor.
#[derive(Clone)]
struct DenylistHandle(Arc<dyn Denylist>);

/// The authenticated principal and the token's claims as `C` (default: raw JSON).
///
/// Without a token: 401 with `WWW-Authenticate: Bearer`. With a bad one: 401 with
/// `WWW-Authenticate: Bearer error="invalid_token"`; the reason goes to the log (target
/// [`AUTH_TARGET`]), never into the response. Needs [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct Authenticated<C = Value> {
    /// Who the token is for.
    pub principal: Principal,
    /// The claims.
    pub claims: C,
}

impl<C> Authenticated<C> {
    /// 403 unless the principal has this role.
    pub fn require_role(&self, role: &str) -> Result<(), Error> {
        if self.principal.has_role(role) {
            Ok(())
        } else {
            tracing::info!(target: AUTH_TARGET, subject = %self.principal.subject, role, "missing role");
            Err(Error::Forbidden)
        }
    }

    /// 403 unless the principal has this scope.
    pub fn require_scope(&self, scope: &str) -> Result<(), Error> {
        if self.principal.has_scope(scope) {
            Ok(())
        } else {
            tracing::info!(target: AUTH_TARGET, subject = %self.principal.subject, scope, "missing scope");
            Err(Error::Forbidden)
        }
    }
}

fn unauthorized(challenge: &'static str) -> Response {
    Problem::new(StatusCode::UNAUTHORIZED)
        .with_detail("valid credentials are required")
        .with_header(WWW_AUTHENTICATE, HeaderValue::from_static(challenge))
        .into_response()
}

impl<S, C> FromRequestParts<S> for Authenticated<C>
where
    S: Send + Sync,
    C: DeserializeOwned + Send,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Outcome>() {
            Some(Outcome::Verified { principal, claims }) => {
                if let (Some(DenylistHandle(denylist)), Some(jti)) = (
                    parts.extensions.get::<DenylistHandle>(),
                    claims.get("jti").and_then(Value::as_str),
                ) {
                    match denylist.is_revoked(jti).await {
                        Ok(false) => {}
                        Ok(true) => {
                            tracing::info!(target: AUTH_TARGET, reason = "revoked jti", "token refused");
                            return Err(unauthorized(r#"Bearer error="invalid_token""#));
                        }
                        Err(e) => {
                            tracing::error!(target: AUTH_TARGET, error = %e, "denylist unavailable; refusing the token");
                            return Err(Error::Unavailable.into_response());
                        }
                    }
                }
                match serde_json::from_value::<C>(Value::Object(Map::clone(claims))) {
                    Ok(claims) => Ok(Self {
                        principal: principal.clone(),
                        claims,
                    }),
                    Err(_) => {
                        tracing::info!(target: AUTH_TARGET, reason = %JwtError::Claims, "token refused");
                        Err(unauthorized(r#"Bearer error="invalid_token""#))
                    }
                }
            }
            Some(Outcome::Failed(reason)) => {
                tracing::info!(target: AUTH_TARGET, %reason, "token refused");
                Err(unauthorized(r#"Bearer error="invalid_token""#))
            }
            Some(Outcome::Absent) => Err(unauthorized("Bearer")),
            None => Err(
                Error::internal("Authenticated needs AuthLayer around the router").into_response(),
            ),
        }
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
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match parts.extensions.get::<Outcome>() {
            Some(Outcome::Absent) => Ok(None),
            _ => <Self as FromRequestParts<S>>::from_request_parts(parts, state)
                .await
                .map(Some),
        }
    }
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
            .layer(AuthLayer::new(verifier()).dangerous_session_cookie_without_host_prefix("sid"));
        let req = Request::get("/me")
            .header(COOKIE, format!("sid={}", token(json!({ "sub": "user-1" }))))
            .body(Body::empty())
            .unwrap();
        assert_eq!(app.oneshot(req).await.unwrap().status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_token_without_a_subject_is_not_a_principal() {
        assert_eq!(status(json!({ "sub": "user-1" })).await, StatusCode::OK);
        assert_eq!(status(json!({})).await, StatusCode::UNAUTHORIZED);
        assert_eq!(status(json!({ "sub": "" })).await, StatusCode::UNAUTHORIZED);
    }
}
