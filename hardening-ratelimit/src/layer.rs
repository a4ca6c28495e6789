//! The standalone tower layer, for services that want only the rate limit.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use hardening_errors::{RequestId, WarnOnce};
use http::{HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::respond::{LayerShared, counts_by};
use crate::{Decision, KeyKind, PolicyName, RateLimiter, RequestKeys};

/// Applies a [`RateLimiter`] to every request: 429 problems for refused ones, `RateLimit`
/// and `RateLimit-Policy` headers on every response, naming the policies that counted its
/// request (none, for a request none counted).
///
/// Each refusal is one `rate_limited` security event (target `hardening::security`), under
/// the request id its problem carries: the one a `Hardening` layer further out gave the
/// request, else a new one. Inside `Hardening`, that layer does not report it again.
///
/// The client IP is the socket peer (`ConnectInfo<SocketAddr>`, as axum's
/// `into_make_service_with_connect_info` provides); this layer believes no forwarding
/// headers. Behind a proxy, put this layer inside `hardening-core`'s `Hardening`, which
/// resolves the client IP through trusted proxies first: this layer then counts that one. A
/// request with no client IP at all (an app served without
/// `ConnectInfo`) is not counted by per-IP policies; the layer warns about it once. So is
/// a request none of its enforcing policies counts (per-principal policies and an anonymous
/// caller, or the layer outside the auth layer): it passes unlimited, and the layer warns
/// once. Add a per-IP or global policy to limit such requests.
///
/// ```
/// use std::net::SocketAddr;
/// use std::num::NonZeroU32;
/// use axum::{Router, body::Body, extract::ConnectInfo, routing::get};
/// use hardening_ratelimit::{Policy, Quota, RateLimitLayer, RateLimiter};
/// use tower::ServiceExt;
///
/// let limiter = RateLimiter::new([Policy::per_client_ip(
///     "per-ip",
///     Quota::per_minute(NonZeroU32::new(1).unwrap()),
/// )]);
/// let app: Router = Router::new()
///     .route("/", get(|| async { "hi" }))
///     .layer(RateLimitLayer::new(limiter));
///
/// // What `into_make_service_with_connect_info::<SocketAddr>()` puts in each request.
/// let peer = ConnectInfo(SocketAddr::from(([203, 0, 113, 7], 40_000)));
/// let get = || {
///     let req = http::Request::get("/").extension(peer).body(Body::empty()).unwrap();
///     app.clone().oneshot(req)
/// };
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// assert_eq!(get().await?.status(), 200);
/// let res = get().await?;
/// assert_eq!(res.status(), 429);
/// assert_eq!(res.headers()["content-type"], "application/problem+json");
/// assert!(res.headers().contains_key("retry-after"));
/// assert!(res.headers()["ratelimit"].to_str()?.starts_with(r#""per-ip";r=0;t="#));
/// assert_eq!(res.headers()["ratelimit-policy"], r#""per-ip";q=1;w=60"#);
/// let body = axum::body::to_bytes(res.into_body(), 4096).await?;
/// let problem: serde_json::Value = serde_json::from_slice(&body)?;
/// assert_eq!(problem["violated-policies"], serde_json::json!(["per-ip"]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct RateLimitLayer {
    limiter: RateLimiter,
    no_peer: Option<Arc<NoPeer>>,
    shared: Arc<LayerShared>,
}

impl RateLimitLayer {
    /// The layer for this limiter.
    pub fn new(limiter: RateLimiter) -> Self {
        let no_peer = limiter
            .policies()
            .find(|p| counts_by(p.key_kind(), |k| matches!(k, KeyKind::ClientIp { .. })))
            .map(|p| {
                Arc::new(NoPeer {
                    policy: p.name().clone(),
                    warned: WarnOnce::new(),
                })
            });
        Self {
            limiter,
            no_peer,
            shared: Arc::new(LayerShared::new("RateLimitLayer")),
        }
    }
}

/// A per-IP policy (the first), and whether a request without a client IP was warned about.
#[derive(Debug)]
struct NoPeer {
    policy: PolicyName,
    warned: WarnOnce,
}

impl NoPeer {
    #[cold]
    #[inline(never)]
    fn warn(&self) {
        if self.warned.first() {
            tracing::warn!(
                target: "hardening",
                policy = %self.policy,
                "rate limit: a request came with no client IP (no ConnectInfo<SocketAddr> in \
                 its extensions), so per-IP policy `{}` did not count it; serve the app with \
                 into_make_service_with_connect_info::<SocketAddr>() or hardening_core::serve \
                 (said once per layer)",
                self.policy
            );
        }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            limiter: self.limiter.clone(),
            no_peer: self.no_peer.clone(),
            shared: self.shared.clone(),
        }
    }
}

/// The service [`RateLimitLayer`] makes.
#[derive(Debug, Clone)]
pub struct RateLimit<S> {
    inner: S,
    limiter: RateLimiter,
    no_peer: Option<Arc<NoPeer>>,
    shared: Arc<LayerShared>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RateLimit<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let request_id = RequestId::from_extensions(req.extensions());
        let keys = RequestKeys::from_http(req.extensions(), req.headers(), req.uri());
        // Inside `Hardening`, which has a context for the request, that layer warns itself.
        if keys.client_ip.is_none()
            && let Some(no_peer) = &self.no_peer
            && hardening_errors::RequestContext::of(req.extensions()).is_none()
        {
            no_peer.warn();
        }
        let decision = self.limiter.check(&keys, 1);
        self.shared.unlimited.check(
            "RateLimitLayer",
            decision.statuses().len(),
            self.limiter.policies(),
            &keys,
            // Said by `NoPeer` outside `Hardening`, by `Hardening` inside it.
            || true,
        );
        let mut shadowed = false;
        let (state, statuses) = match decision {
            Decision::Allowed(statuses) => (
                State::Inner {
                    future: self.inner.call(req),
                },
                statuses,
            ),
            Decision::Shadowed { violated, statuses } => {
                crate::respond::report_shadow(request_id, keys.client_ip, &violated, 1);
                shadowed = true;
                (
                    State::Inner {
                        future: self.inner.call(req),
                    },
                    statuses,
                )
            }
            Decision::Limited {
                retry_after,
                violated,
                statuses,
            } => (
                State::Refused {
                    response: Some(crate::respond::too_many(
                        retry_after,
                        &violated,
                        request_id,
                        keys.client_ip,
                    )),
                },
                statuses,
            ),
        };
        ResponseFuture {
            state,
            ratelimit: self.limiter.ratelimit_header(&statuses),
            policy: self.limiter.counted_policy_header(&statuses),
            shared: self.shared.clone(),
            shadowed,
        }
    }
}

pin_project! {
    /// The response future of [`RateLimit`].
    #[derive(Debug)]
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
        ratelimit: Option<HeaderValue>,
        policy: Option<HeaderValue>,
        shared: Arc<LayerShared>,
        // A shadow-mode policy would have refused: the response carries that (logged) event.
        shadowed: bool,
    }
}

pin_project! {
    #[project = StateProj]
    #[derive(Debug)]
    enum State<F, B> {
        Inner { #[pin] future: F },
        Refused { response: Option<Response<B>> },
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = match this.state.project() {
            StateProj::Inner { future } => ready!(future.poll(cx))?,
            StateProj::Refused { response } => response
                .take()
                .expect("ResponseFuture polled after completion"),
        };
        this.shared.fields.set(
            response.headers_mut(),
            this.ratelimit.take(),
            this.policy.take().as_ref(),
        );
        if *this.shadowed {
            hardening_errors::mark_logged(&mut response, crate::respond::SHADOW_EVENT);
        }
        Poll::Ready(Ok(response))
    }
}
