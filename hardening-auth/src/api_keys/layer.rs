//! [`ApiKeyLayer`]: a request goes on only with a live API key, as its key's principal.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use hardening_errors::{
    Error, PrincipalId, RequestContext, SECRET_NAME_PARTS, redact_error_chain, report_rejection,
};
use http::header::{AUTHORIZATION, COOKIE};
use http::request::Parts;
use http::{HeaderName, HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use serde_json::{Map, Value};
use tower::{Layer, Service};

use super::store::ApiKeyStoreError;
use super::{ApiKeyDigest, ApiKeyId, ApiKeyLookup, ApiKeyStore, StoredApiKey, presented};
use crate::authenticated::{Admission, Outcome, bearer};
use crate::{AUTH_TARGET, CredentialSource};

/// The header a key is read from by default.
const X_API_KEY: &str = "x-api-key";

/// Admits a request only with a live API key ([`ApiKey`](crate::ApiKey)), read from one
/// header: `x-api-key` by default, another with [`header`](Self::header), or
/// `Authorization: Bearer <key>` with [`bearer`](Self::bearer). Its store is asked once a
/// request, by the key's public id; the key's digest is compared with the stored one in
/// constant time.
///
/// A request with a live key goes on as its key's principal, in the places a verified
/// token's goes: [`Authenticated`](crate::Authenticated) (and so [`Owned`](crate::Owned),
/// role and scope guards), the [`Principal`](crate::Principal), [`PrincipalId`], its
/// [`TenantId`](hardening_errors::TenantId) when it has a tenant, and
/// [`CredentialSource::ApiKey`] in the request's extensions (per-principal and per-tenant rate
/// limits inside this layer count per key's principal and tenant), and the [`PrincipalId`] on the response (the access
/// log's `enduser.id`; `Cache-Control: no-store` from the security headers).
///
/// Any other request is refused here, before the routes, with a 401 problem and a
/// `WWW-Authenticate` challenge naming where the key goes: `ApiKey header="x-api-key"`
/// without a key, `ApiKey header="x-api-key", error="invalid_key"` for a key refused
/// (`Bearer` and `Bearer error="invalid_token"` under [`bearer`](Self::bearer), RFC 6750).
/// An unknown key, a revoked one, one whose secret is wrong and text that is no key are
/// answered alike; why goes to the log (info, target [`AUTH_TARGET`], with the key's public
/// id, never the key). Each refusal is a `security.event` `unauthenticated`. A store that
/// fails is a 503 with `Retry-After: 1`, logged at error: no request passes unchecked.
///
/// A request that a layer further out authenticated ([`AuthLayer`](crate::AuthLayer)
/// outside this one, admitting a token) goes on as it is, its principal kept: put `AuthLayer`
/// outside to accept a user's token or a key on the same routes.
///
/// ```
/// use std::sync::Arc;
/// use axum::{Router, body::Body, routing::get};
/// use hardening_auth::{ApiKey, ApiKeyLayer, Authenticated, MemoryApiKeys, Principal};
/// use tower::ServiceExt;
///
/// let keys = Arc::new(MemoryApiKeys::new());
/// let key = ApiKey::generate("acme")?;
/// let robot = Principal { subject: "billing-bot".into(), tenant: Some("acme".into()), ..Principal::default() };
/// keys.add(&key, robot)?;
///
/// let app = Router::new()
///     .route("/whoami", get(|who: Authenticated| async move { who.principal.subject }))
///     .layer(ApiKeyLayer::new(keys.clone()));
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let get = |key: Option<&str>| {
///     let req = http::Request::get("/whoami");
///     let req = match key { Some(k) => req.header("x-api-key", k), None => req };
///     app.clone().oneshot(req.body(Body::empty()).unwrap())
/// };
/// assert_eq!(get(Some(key.expose_secret())).await?.status(), 200);
/// let res = get(None).await?;
/// assert_eq!(res.status(), 401);
/// assert_eq!(res.headers()["www-authenticate"], r#"ApiKey header="x-api-key""#);
/// keys.revoke(&key.id());
/// let res = get(Some(key.expose_secret())).await?;
/// assert_eq!(res.status(), 401);
/// assert_eq!(res.headers()["content-type"], "application/problem+json");
/// # Ok::<(), std::convert::Infallible>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ApiKeyLayer {
    store: Arc<dyn ApiKeyStore>,
    /// The header the key is read from; `None`: `Authorization: Bearer`.
    header: Option<HeaderName>,
    /// The challenge of a request without a key.
    missing: HeaderValue,
    /// The challenge of a request whose key was refused.
    refused: HeaderValue,
    /// A key's claims, for [`Authenticated`](crate::Authenticated): none (shared, not
    /// allocated per request).
    claims: Arc<Map<String, Value>>,
}

/// A header [`ApiKeyLayer::header`] refuses to read a key from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("API key header {name:?}: {why}")]
pub struct InvalidApiKeyHeader {
    /// The name given.
    pub name: String,
    /// What is wrong with it, and what to do.
    pub why: &'static str,
}

impl ApiKeyLayer {
    /// Keys from `store`, read from the `x-api-key` header.
    pub fn new(store: Arc<dyn ApiKeyStore>) -> Self {
        Self::reading(store, Some(HeaderName::from_static(X_API_KEY)))
    }

    fn reading(store: Arc<dyn ApiKeyStore>, header: Option<HeaderName>) -> Self {
        let (missing, refused) = match &header {
            Some(name) => {
                let missing = format!(r#"ApiKey header="{name}""#);
                let refused = format!(r#"{missing}, error="invalid_key""#);
                // A header name is a token: it can always be quoted.
                let value = |text: String| {
                    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("ApiKey"))
                };
                (value(missing), value(refused))
            }
            None => (
                HeaderValue::from_static("Bearer"),
                HeaderValue::from_static(r#"Bearer error="invalid_token""#),
            ),
        };
        Self {
            store,
            header,
            missing,
            refused,
            claims: Arc::default(),
        }
    }

    /// Reads the key from this header instead of `x-api-key` (any case: `X-Acme-Key`).
    ///
    /// # Errors
    ///
    /// A name that is no header name; `authorization` (use [`bearer`](Self::bearer)) and
    /// `cookie`; and a name without `key`, `token`, `secret`, `auth` or another word that
    /// marks a secret (`hardening_errors::SECRET_NAME_PARTS`), whose value `hardening-core`'s
    /// access log would print with `Hardening::log_request_headers`.
    ///
    /// ```
    /// # let keys = std::sync::Arc::new(hardening_auth::MemoryApiKeys::new());
    /// use hardening_auth::ApiKeyLayer;
    ///
    /// assert!(ApiKeyLayer::new(keys.clone()).header("X-Acme-Key").is_ok());
    /// let err = ApiKeyLayer::new(keys).header("x-client").unwrap_err();
    /// assert!(err.to_string().contains("access log"));
    /// ```
    pub fn header(self, name: &str) -> Result<Self, InvalidApiKeyHeader> {
        let invalid = |why| {
            Err(InvalidApiKeyHeader {
                name: name.to_owned(),
                why,
            })
        };
        let Ok(header) = HeaderName::from_bytes(name.as_bytes()) else {
            return invalid("not a header name (letters, digits and `-`, no spaces)");
        };
        if header == AUTHORIZATION {
            return invalid("use ApiKeyLayer::bearer() to read `Authorization: Bearer <key>`");
        }
        if header == COOKIE {
            return invalid("a cookie is a browser's credential, not a machine client's key");
        }
        if !SECRET_NAME_PARTS
            .iter()
            .any(|part| header.as_str().contains(part))
        {
            return invalid(
                "the access log (Hardening::log_request_headers) would print its value: \
                 use a name with `key` or `token` in it, such as x-api-key",
            );
        }
        Ok(Self::reading(self.store, Some(header)))
    }

    /// Reads the key from `Authorization: Bearer <key>` instead of `x-api-key`, as Stripe
    /// and GitHub take theirs: every client library and proxy knows to keep that header
    /// secret, and a refusal's challenge is RFC 6750's (`Bearer`, `Bearer
    /// error="invalid_token"`). Not on the routes of an [`AuthLayer`](crate::AuthLayer)
    /// that reads bearer tokens too: each would take the other's credential for a bad one.
    pub fn bearer(self) -> Self {
        Self::reading(self.store, None)
    }

    /// The key's text as the request carries it: `None` without one; `""` (no key, and
    /// refused as such) for one that is not text, or for two fields of the header, of which
    /// a proxy in front may have read another.
    fn key<'a>(&self, parts: &'a Parts) -> Option<&'a str> {
        let Some(name) = &self.header else {
            return bearer(parts);
        };
        let mut values = parts.headers.get_all(name).iter();
        let value = values.next().filter(|v| !v.is_empty())?;
        if values.next().is_some() {
            return Some("");
        }
        Some(value.to_str().unwrap_or(""))
    }
}

impl<S> Layer<S> for ApiKeyLayer {
    type Service = ApiKeyAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ApiKeyAuth {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`ApiKeyLayer`] makes.
#[derive(Debug, Clone)]
pub struct ApiKeyAuth<S> {
    inner: S,
    layer: ApiKeyLayer,
}

impl<S, B, ResB> Service<Request<B>> for ApiKeyAuth<S>
where
    S: Service<Request<B>, Response = Response<ResB>> + Clone,
    ResB: From<Bytes>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ApiKeyResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let layer = &self.layer;
        // A principal a layer further out admitted stands: the request goes on as it is.
        if matches!(
            req.extensions().get::<Outcome>(),
            Some(Outcome::Verified { .. })
        ) {
            return ApiKeyResponseFuture::inner(self.inner.call(req));
        }
        let (parts, body) = req.into_parts();
        let Some(text) = layer.key(&parts) else {
            return ApiKeyResponseFuture::refused(unauthenticated(&parts, &layer.missing));
        };
        let Some((id, digest)) = presented(text) else {
            tracing::info!(target: AUTH_TARGET, reason = "not an API key", source = "api_key", "api key refused");
            return ApiKeyResponseFuture::refused(unauthenticated(&parts, &layer.refused));
        };
        let store = Arc::clone(&layer.store);
        let lookup: ApiKeyLookup<'static> = Box::pin(async move { store.find(&id).await });
        // The service made ready goes with the request; a clone stays for the next.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ApiKeyResponseFuture {
            state: State::Lookup {
                lookup,
                pending: Some(Pending {
                    inner,
                    parts,
                    body,
                    id,
                    digest,
                    layer: layer.clone(),
                }),
            },
            principal: None,
        }
    }
}

/// A request waiting for its key's lookup, with the service that will take it.
struct Pending<S, B> {
    inner: S,
    parts: Parts,
    body: B,
    id: ApiKeyId,
    digest: ApiKeyDigest,
    layer: ApiKeyLayer,
}

impl<S, B> Pending<S, B> {
    /// What the store's answer makes of the request: admitted (its principal's id, for the
    /// response), or refused (the response).
    fn decide<R: From<Bytes>>(
        &mut self,
        found: Result<Option<StoredApiKey>, ApiKeyStoreError>,
    ) -> Result<PrincipalId, Response<R>> {
        let refused = match found {
            Ok(Some(stored))
                if stored.digest == self.digest && stored.expired(std::time::SystemTime::now()) =>
            {
                "expired key"
            }
            Ok(Some(stored)) if stored.digest == self.digest => {
                if stored.principal.subject.is_empty() {
                    tracing::error!(target: AUTH_TARGET, key_id = %self.id, "api key refused: the store gave its principal an empty subject");
                    return Err(unauthenticated(&self.parts, &self.layer.refused));
                }
                let admission = Admission {
                    principal: stored.principal,
                    claims: Arc::clone(&self.layer.claims),
                    source: CredentialSource::ApiKey,
                };
                return Ok(admission.admit(&mut self.parts));
            }
            Ok(Some(_)) => "wrong secret",
            Ok(None) => "unknown or revoked key",
            Err(error) => return Err(store_failed(&self.parts, self.id, &*error)),
        };
        tracing::info!(target: AUTH_TARGET, reason = refused, key_id = %self.id, source = "api_key", "api key refused");
        Err(unauthenticated(&self.parts, &self.layer.refused))
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, P, R> {
        /// Asking the store about the key; the request goes on (or is refused) when it answers.
        Lookup {
            lookup: ApiKeyLookup<'static>,
            pending: Option<P>,
        },
        /// The inner service's response.
        Inner {
            #[pin]
            future: F,
        },
        /// Refused here.
        Refused {
            response: Option<R>,
        },
    }
}

pin_project! {
    /// The response future of [`ApiKeyAuth`]: the store's answer about the key, then the
    /// inner service's response (or the refusal).
    pub struct ApiKeyResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S::Future, Pending<S, B>, S::Response>,
        principal: Option<PrincipalId>,
    }
}

impl<S, B> ApiKeyResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn inner(future: S::Future) -> Self {
        Self {
            state: State::Inner { future },
            principal: None,
        }
    }

    fn refused(response: S::Response) -> Self {
        Self {
            state: State::Refused {
                response: Some(response),
            },
            principal: None,
        }
    }
}

impl<S, B> fmt::Debug for ApiKeyResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Lookup { .. } => "lookup",
            State::Inner { .. } => "inner",
            State::Refused { .. } => "refused",
        };
        f.debug_struct("ApiKeyResponseFuture")
            .field("state", &state)
            .field("principal", &self.principal)
            .finish()
    }
}

impl<S, B, ResB> Future for ApiKeyResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResB>>,
    ResB: From<Bytes>,
{
    type Output = Result<Response<ResB>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Lookup { lookup, pending } => {
                    let found = ready!(lookup.as_mut().poll(cx));
                    let mut pending = pending
                        .take()
                        .expect("the Lookup state holds its request until it ends");
                    match pending.decide(found) {
                        Ok(principal) => {
                            *this.principal = Some(principal);
                            let Pending {
                                mut inner,
                                parts,
                                body,
                                ..
                            } = pending;
                            let future = inner.call(Request::from_parts(parts, body));
                            this.state.set(State::Inner { future });
                        }
                        Err(response) => return Poll::Ready(Ok(response)),
                    }
                }
                StateProj::Inner { future } => {
                    let mut res = ready!(future.poll(cx))?;
                    if let Some(principal) = this.principal.take() {
                        res.extensions_mut().insert(principal);
                    }
                    return Poll::Ready(Ok(res));
                }
                StateProj::Refused { response } => {
                    return Poll::Ready(Ok(response
                        .take()
                        .expect("ApiKeyResponseFuture polled after completion")));
                }
            }
        }
    }
}

/// The 401 problem with `challenge`, reported as the security event `unauthenticated`.
#[cold]
fn unauthenticated<R: From<Bytes>>(parts: &Parts, challenge: &HeaderValue) -> Response<R> {
    let (request_id, client_ip) = RequestContext::for_refusal(&parts.extensions);
    let mut response = Error::unauthenticated_with(challenge.clone())
        .to_problem()
        .with_request_id(request_id)
        .into_http_response();
    report_rejection(
        &mut response,
        "unauthenticated",
        request_id,
        client_ip,
        None,
    );
    response
}

/// The 503 for a key the store could not be asked about (fail closed), the store's error
/// logged at error with its secrets redacted: asked again at the next request.
#[cold]
fn store_failed<R: From<Bytes>>(
    parts: &Parts,
    id: ApiKeyId,
    error: &(dyn std::error::Error + 'static),
) -> Response<R> {
    let (request_id, _) = RequestContext::for_refusal(&parts.extensions);
    tracing::error!(
        target: AUTH_TARGET,
        key_id = %id,
        error = %redact_error_chain(error),
        "could not look the api key up; answered 503"
    );
    Error::UnavailableFor(Duration::from_secs(1))
        .to_problem()
        .with_request_id(request_id)
        .into_http_response()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::SystemTime;

    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use hardening_errors::{PrincipalSlot, SecurityEventReported};
    use http::StatusCode;
    use http::header::WWW_AUTHENTICATE;
    use http_body_util::BodyExt;
    use serde_json::json;
    use tower::ServiceExt;

    use super::*;
    use crate::test_tokens::{token, verifier};
    use crate::{ApiKey, AuthLayer, Authenticated, CurrentSession, MemoryApiKeys, Principal};

    const MISSING: &str = r#"ApiKey header="x-api-key""#;
    const REFUSED: &str = r#"ApiKey header="x-api-key", error="invalid_key""#;

    fn robot() -> Principal {
        Principal {
            subject: "billing-bot".into(),
            tenant: Some("acme".into()),
            roles: vec!["writer".into()],
            scopes: vec!["invoices:read".into()],
        }
    }

    /// A store holding one key of [`robot`], and that key.
    fn store() -> (Arc<MemoryApiKeys>, ApiKey) {
        let keys = Arc::new(MemoryApiKeys::new());
        let key = ApiKey::generate("acme").unwrap();
        keys.add(&key, robot()).unwrap();
        (keys, key)
    }

    /// `/who` says who the request is, as each extractor and extension sees it.
    fn app(layer: ApiKeyLayer) -> Router {
        Router::new()
            .route(
                "/who",
                get(|req: axum::extract::Request| async move {
                    let ext = req.extensions();
                    format!(
                        "{:?} {:?} {:?}",
                        ext.get::<PrincipalId>().map(PrincipalId::as_str),
                        ext.get::<Principal>().and_then(|p| p.tenant.as_deref()),
                        ext.get::<CredentialSource>(),
                    )
                }),
            )
            .route(
                "/me",
                get(|user: Authenticated| async move {
                    format!("{} {}", user.principal.subject, user.claims)
                }),
            )
            .layer(layer)
    }

    async fn call(app: &Router, path: &str, headers: &[(&str, &str)]) -> Response<Body> {
        let mut req = Request::get(path);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        app.clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn text(res: Response<Body>) -> String {
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// The problem body with its request id taken out, to compare two refusals.
    async fn problem(res: Response<Body>) -> serde_json::Value {
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let mut body: serde_json::Value = serde_json::from_str(&text(res).await).unwrap();
        assert!(body["request_id"].is_string(), "{body}");
        body.as_object_mut().unwrap().remove("request_id");
        body
    }

    #[tokio::test]
    async fn a_live_key_is_its_principal_everywhere_a_token_is() {
        let (keys, key) = store();
        let app = app(ApiKeyLayer::new(keys));
        let res = call(&app, "/who", &[("x-api-key", key.expose_secret())]).await;
        assert_eq!(res.status(), StatusCode::OK);
        // On the response, for the access log and `no-store`.
        assert_eq!(
            res.extensions()
                .get::<PrincipalId>()
                .map(PrincipalId::as_str),
            Some("billing-bot")
        );
        assert_eq!(
            text(res).await,
            r#"Some("billing-bot") Some("acme") Some(ApiKey)"#
        );
        let res = call(&app, "/me", &[("x-api-key", key.expose_secret())]).await;
        assert_eq!(text(res).await, "billing-bot {}");
    }

    /// A layer further out that logs the request leaves a [`PrincipalSlot`]: the key's
    /// principal is left there, for a request that ends without its response.
    #[tokio::test]
    async fn the_principal_is_left_in_the_slot() {
        let (keys, key) = store();
        let slot = PrincipalSlot::default();
        let req = Request::get("/who")
            .header("x-api-key", key.expose_secret())
            .extension(slot.clone())
            .body(Body::empty())
            .unwrap();
        let res = app(ApiKeyLayer::new(keys)).oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(slot.get().map(PrincipalId::as_str), Some("billing-bot"));
    }

    /// No key, an unknown one, a revoked one, an expired one, a wrong secret, text that is
    /// no key, two keys: each a 401 problem that the route never sees, reported as `unauthenticated`;
    /// every refused key answered exactly alike, so nothing tells which keys exist.
    #[tokio::test]
    async fn every_refusal_is_a_401_problem_and_refused_keys_look_alike() {
        let (keys, key) = store();
        let revoked = ApiKey::generate("acme").unwrap();
        keys.add(&revoked, robot()).unwrap();
        assert!(keys.revoke(&revoked.id()));
        let expired = ApiKey::generate("acme").unwrap();
        let a_second_ago = SystemTime::now() - Duration::from_secs(1);
        let stored = StoredApiKey::new(expired.digest(), robot()).expires_at(a_second_ago);
        keys.insert(expired.id(), stored).unwrap();
        let expiring = ApiKey::generate("acme").unwrap();
        let in_an_hour = SystemTime::now() + Duration::from_secs(3600);
        let stored = StoredApiKey::new(expiring.digest(), robot()).expires_at(in_an_hour);
        keys.insert(expiring.id(), stored).unwrap();
        let unknown = ApiKey::generate("acme").unwrap();
        let text = key.expose_secret();
        let wrong_secret = format!(
            "{}{}",
            &text[..text.len() - 1],
            if text.ends_with('0') { '1' } else { '0' }
        );
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = {
            let calls = Arc::clone(&calls);
            Router::new()
                .route(
                    "/who",
                    get(move || {
                        calls.fetch_add(1, Ordering::Relaxed);
                        async { "reached" }
                    }),
                )
                .layer(ApiKeyLayer::new(keys))
        };

        let res = call(&counted, "/who", &[]).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.headers()[WWW_AUTHENTICATE], MISSING);
        let reported = res.extensions().get::<SecurityEventReported>().unwrap();
        assert_eq!(reported.event(), "unauthenticated");
        let missing = problem(res).await;
        assert_eq!(missing["status"], 401);

        let mut bodies = Vec::new();
        for (what, headers) in [
            ("unknown", vec![("x-api-key", unknown.expose_secret())]),
            ("revoked", vec![("x-api-key", revoked.expose_secret())]),
            ("expired", vec![("x-api-key", expired.expose_secret())]),
            ("wrong secret", vec![("x-api-key", wrong_secret.as_str())]),
            ("not a key", vec![("x-api-key", "hunter2")]),
            (
                "two keys",
                vec![("x-api-key", text), ("x-api-key", unknown.expose_secret())],
            ),
        ] {
            let res = call(&counted, "/who", &headers).await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{what}");
            assert_eq!(res.headers()[WWW_AUTHENTICATE], REFUSED, "{what}");
            assert!(res.extensions().get::<PrincipalId>().is_none(), "{what}");
            let reported = res.extensions().get::<SecurityEventReported>().unwrap();
            assert_eq!(reported.event(), "unauthenticated", "{what}");
            bodies.push((what, problem(res).await));
        }
        for (what, body) in &bodies {
            assert_eq!(body, &missing, "{what}");
        }
        assert_eq!(calls.load(Ordering::Relaxed), 0);
        let res = call(&counted, "/who", &[("x-api-key", text)]).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        // Until it expires, an expiring key works.
        let res = call(&counted, "/who", &[("x-api-key", expiring.expose_secret())]).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(calls.load(Ordering::Relaxed), 2);
    }

    /// Why a key was refused is logged (info, with the key's public id), never the key.
    #[tokio::test]
    async fn the_reason_is_logged_never_the_key() {
        let (keys, key) = store();
        let unknown = ApiKey::generate("acme").unwrap();
        let app = app(ApiKeyLayer::new(keys));
        let log = hardening_errors::test_log::Captured::default();
        let _guard = log.capture();
        for (presented, reason, id) in [
            (
                unknown.expose_secret(),
                "unknown or revoked key",
                Some(unknown.id()),
            ),
            ("hunter2", "not an API key", None),
        ] {
            log.clear();
            let res = call(&app, "/who", &[("x-api-key", presented)]).await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
            let refused = log.find(tracing::Level::INFO, "api key refused");
            assert_eq!(refused.len(), 1, "{:?}", log.lines());
            assert_eq!(refused[0].target, AUTH_TARGET);
            assert_eq!(refused[0].field("reason"), Some(reason));
            assert_eq!(refused[0].field("source"), Some("api_key"));
            let id = id.map(|id| id.to_string());
            assert_eq!(refused[0].field("key_id"), id.as_deref());
            let all = format!("{:?}", log.lines());
            assert!(!all.contains(presented), "{all}");
        }
        let res = call(&app, "/who", &[("x-api-key", key.expose_secret())]).await;
        assert_eq!(res.status(), StatusCode::OK);
        let all = format!("{:?}", log.lines());
        assert!(!all.contains(key.expose_secret()), "{all}");
    }

    /// Under `bearer()` the key is read from `Authorization: Bearer`, and the challenges are
    /// RFC 6750's; `x-api-key` is then not read.
    #[tokio::test]
    async fn bearer_reads_the_authorization_header() {
        let (keys, key) = store();
        let app = app(ApiKeyLayer::new(keys).bearer());
        let bearer = format!("Bearer {}", key.expose_secret());
        let res = call(&app, "/who", &[("authorization", &bearer)]).await;
        assert_eq!(res.status(), StatusCode::OK);
        let res = call(&app, "/who", &[("x-api-key", key.expose_secret())]).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.headers()[WWW_AUTHENTICATE], "Bearer");
        let res = call(&app, "/who", &[("authorization", "Bearer hunter2")]).await;
        assert_eq!(
            res.headers()[WWW_AUTHENTICATE],
            r#"Bearer error="invalid_token""#
        );
    }

    /// A header of one's own is read instead of `x-api-key`, and named in the challenge.
    #[tokio::test]
    async fn another_header_is_read_and_named() {
        let (keys, key) = store();
        let app = app(ApiKeyLayer::new(keys).header("X-Acme-Key").unwrap());
        let res = call(&app, "/who", &[("x-acme-key", key.expose_secret())]).await;
        assert_eq!(res.status(), StatusCode::OK);
        let res = call(&app, "/who", &[("x-api-key", key.expose_secret())]).await;
        assert_eq!(
            res.headers()[WWW_AUTHENTICATE],
            r#"ApiKey header="x-acme-key""#
        );
    }

    #[test]
    fn a_header_the_access_log_would_print_is_refused() {
        let keys = Arc::new(MemoryApiKeys::new());
        for (name, why) in [
            ("x-client", "access log"),
            ("x-tenant-id", "access log"),
            ("authorization", "bearer()"),
            ("Cookie", "browser"),
            ("x api key", "not a header name"),
            ("", "not a header name"),
        ] {
            let err = ApiKeyLayer::new(keys.clone())
                .header(name)
                .map(|_| ())
                .expect_err(name);
            assert_eq!(err.name, name);
            assert!(err.to_string().contains(why), "{name:?}: {err}");
        }
        for name in ["x-api-key", "api-key", "x-auth-token", "X-Acme-Secret"] {
            assert!(
                ApiKeyLayer::new(keys.clone()).header(name).is_ok(),
                "{name}"
            );
        }
    }

    /// A store that cannot answer: 503 with `Retry-After`, never the route; logged at error
    /// with the store's error, its secrets redacted.
    #[tokio::test]
    async fn a_store_that_fails_fails_closed() {
        #[derive(Debug)]
        struct Down;
        impl ApiKeyStore for Down {
            fn find<'a>(&'a self, _: &'a ApiKeyId) -> ApiKeyLookup<'a> {
                Box::pin(async { Err("connect to postgres://app:hunter2@db failed".into()) })
            }
        }
        let key = ApiKey::generate("acme").unwrap();
        let app = app(ApiKeyLayer::new(Arc::new(Down)));
        let log = hardening_errors::test_log::Captured::default();
        let _guard = log.capture();
        let res = call(&app, "/who", &[("x-api-key", key.expose_secret())]).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()["retry-after"], "1");
        assert!(res.extensions().get::<PrincipalId>().is_none());
        let body = text(res).await;
        assert!(!body.contains("postgres"), "{body}");
        let errors = log.find(tracing::Level::ERROR, "could not look the api key up");
        assert_eq!(errors.len(), 1, "{:?}", log.lines());
        let error = errors[0].field("error").unwrap();
        assert!(
            error.contains("postgres") && !error.contains("hunter2"),
            "{error}"
        );
        assert_eq!(errors[0].field("key_id"), Some(key.id().as_str()));
    }

    /// A store whose row gives the key's principal no subject (which would own nothing and
    /// be no one in the logs) has that key refused, and the fault logged at error.
    #[tokio::test]
    async fn a_principal_without_a_subject_is_refused() {
        #[derive(Debug)]
        struct Blank(ApiKeyDigest);
        impl ApiKeyStore for Blank {
            fn find<'a>(&'a self, _: &'a ApiKeyId) -> ApiKeyLookup<'a> {
                let stored = StoredApiKey::new(self.0, Principal::default());
                Box::pin(async move { Ok(Some(stored)) })
            }
        }
        let key = ApiKey::generate("acme").unwrap();
        let app = app(ApiKeyLayer::new(Arc::new(Blank(key.digest()))));
        let log = hardening_errors::test_log::Captured::default();
        let _guard = log.capture();
        let res = call(&app, "/who", &[("x-api-key", key.expose_secret())]).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(log.find(tracing::Level::ERROR, "empty subject").len(), 1);
    }

    /// `AuthLayer` outside: a user's token or a key, on the same routes. The token's
    /// principal stands (the key layer does not ask for a key then); without either, the
    /// key layer refuses.
    #[tokio::test]
    async fn a_token_admitted_further_out_stands() {
        let (keys, key) = store();
        let app = app(ApiKeyLayer::new(keys)).layer(AuthLayer::new(verifier()));
        let bearer = format!("Bearer {}", token(json!({ "sub": "user-1" })));
        let res = call(&app, "/who", &[("authorization", &bearer)]).await;
        assert_eq!(text(res).await, r#"Some("user-1") None Some(Bearer)"#);
        let res = call(&app, "/who", &[("x-api-key", key.expose_secret())]).await;
        assert_eq!(
            text(res).await,
            r#"Some("billing-bot") Some("acme") Some(ApiKey)"#
        );
        let res = call(&app, "/who", &[("authorization", "Bearer not-a-token")]).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.headers()[WWW_AUTHENTICATE], MISSING);
    }

    /// `AuthLayer` inside: it leaves the key's principal as it is. It used to record "no
    /// token" over it, and `Authenticated` refused the key's request with a 401.
    #[tokio::test]
    async fn an_auth_layer_inside_keeps_the_keys_principal() {
        let (keys, key) = store();
        let app = Router::new()
            .route(
                "/me",
                get(|user: Authenticated| async move { user.principal.subject }),
            )
            .layer(AuthLayer::new(verifier()))
            .layer(ApiKeyLayer::new(keys));
        let res = call(&app, "/me", &[("x-api-key", key.expose_secret())]).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(text(res).await, "billing-bot");
        // A token beside the key does not replace the key's principal.
        let bearer = format!("Bearer {}", token(json!({ "sub": "user-1" })));
        let res = call(
            &app,
            "/me",
            &[
                ("x-api-key", key.expose_secret()),
                ("authorization", &bearer),
            ],
        )
        .await;
        assert_eq!(text(res).await, "billing-bot");
    }

    /// A key carries no claims: a claims type that needs one is a wiring mistake (500,
    /// logged), not the client's fault; an API key is no session to log out of.
    #[tokio::test]
    async fn a_key_has_no_claims_and_no_session() {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Claims {
            tenant: String,
        }
        let (keys, key) = store();
        let app = Router::new()
            .route("/typed", get(|_: Authenticated<Claims>| async { "typed" }))
            .route(
                "/session",
                get(|session: CurrentSession| async move { session.is_live().to_string() }),
            )
            .layer(ApiKeyLayer::new(keys));
        let res = call(&app, "/typed", &[("x-api-key", key.expose_secret())]).await;
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let res = call(&app, "/session", &[("x-api-key", key.expose_secret())]).await;
        assert_eq!(text(res).await, "false");
    }
}
