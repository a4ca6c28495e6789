//! The standalone tower layer, for services that want only the headers.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::https::tls_in_process;
use crate::request_headers::RequestHeaders;
use crate::{HeaderSet, HttpsRedirect, RequestFacts};

/// Applies a [`HeaderSet`] to every response (and optionally redirects plain HTTP).
///
/// `hardening-core`'s `Hardening` runs the same logic inside its fused service; use this
/// layer when you want only the headers.
///
/// ```
/// use axum::{Router, routing::get};
/// use hardening_headers::{HeaderPolicy, SecurityHeadersLayer};
/// use tower::ServiceExt;
///
/// let layer = SecurityHeadersLayer::new(HeaderPolicy::api().build()?);
/// let app = Router::new().route("/", get(|| async { "hi" })).layer(layer);
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let res = app.oneshot(http::Request::get("/").body(axum::body::Body::empty()).unwrap()).await.unwrap();
/// assert_eq!(res.headers()["x-content-type-options"], "nosniff");
/// assert!(res.headers().get("strict-transport-security").is_none(), "plain HTTP: no HSTS");
/// # });
/// # Ok::<(), hardening_headers::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct SecurityHeadersLayer {
    set: HeaderSet,
    trust_forwarded_proto: bool,
    // Shared: routers clone the service for every request.
    redirect: Option<Arc<HttpsRedirect>>,
}

impl SecurityHeadersLayer {
    /// The layer for this header set.
    pub fn new(set: HeaderSet) -> Self {
        Self {
            set,
            trust_forwarded_proto: false,
            redirect: None,
        }
    }

    /// Believes `X-Forwarded-Proto` (only when every request comes through your proxy).
    pub fn trust_forwarded_proto(mut self) -> Self {
        self.trust_forwarded_proto = true;
        self
    }

    /// Redirects plain-HTTP requests to HTTPS.
    pub fn https_redirect(mut self, redirect: HttpsRedirect) -> Self {
        self.redirect = Some(Arc::new(redirect));
        self
    }
}

impl<S> Layer<S> for SecurityHeadersLayer {
    type Service = SecurityHeaders<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SecurityHeaders {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`SecurityHeadersLayer`] makes.
#[derive(Debug, Clone)]
pub struct SecurityHeaders<S> {
    inner: S,
    layer: SecurityHeadersLayer,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SecurityHeaders<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let layer = &self.layer;
        // One read of the request's headers for both facts.
        let read = RequestHeaders::read(req.headers(), layer.trust_forwarded_proto);
        let https = tls_in_process(req.extensions(), req.uri()) || read.forwarded_https;
        let facts = layer.set.facts(https, read.credentials);
        if let Some(nonce) = facts.nonce {
            req.extensions_mut().insert(nonce);
        }
        // The request is taken apart only when a redirect may answer it.
        let state = match &layer.redirect {
            None => State::Inner {
                future: self.inner.call(req),
            },
            Some(redirect) => {
                let (parts, body) = req.into_parts();
                match redirect.redirect(&parts, https) {
                    Some(res) => State::Redirect {
                        response: Some(res),
                    },
                    None => State::Inner {
                        future: self.inner.call(Request::from_parts(parts, body)),
                    },
                }
            }
        };
        ResponseFuture {
            state,
            set: layer.set.clone(),
            facts,
        }
    }
}

pin_project! {
    /// The response future of [`SecurityHeaders`].
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
        set: HeaderSet,
        facts: RequestFacts,
    }
}

pin_project! {
    #[project = StateProj]
    #[derive(Debug)]
    enum State<F> {
        Inner { #[pin] future: F },
        Redirect { response: Option<http::Response<()>> },
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = match this.state.project() {
            StateProj::Inner { future } => ready!(future.poll(cx))?,
            StateProj::Redirect { response } => response
                .take()
                .expect("ResponseFuture polled after completion")
                .map(|()| B::default()),
        };
        this.set.apply(this.facts, response.headers_mut());
        Poll::Ready(Ok(response))
    }
}
