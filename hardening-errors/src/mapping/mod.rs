//! Turns every error response into an RFC 9457 problem.

mod body;
mod future;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use tower::{Layer, Service};

pub use body::ProblemBody;
#[cfg(feature = "validation")]
pub(crate) use future::describes_rejection_of;
pub use future::{
    ResponseFuture, drop_panic_payload, is_html_error_page, log_panic, panic_response,
};

use crate::{Problem, RequestContext, RequestId};
use future::Report;

/// Marks (in the response extensions) a 500 answered for a caught panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaughtPanic;

/// Answers `problem` directly, as [`ProblemService`] would: `application/problem+json`,
/// `cache-control: no-store`, `x-request-id`, the request id in the body and the problem in
/// the response extensions. For layers that reject a request before calling their service.
pub fn reject<B>(problem: Problem, request_id: RequestId) -> Response<ProblemBody<B>> {
    let (parts, ()) = Response::new(()).into_parts();
    let mut parts = parts;
    parts.status = problem.status();
    future::problem_response(parts, problem, request_id)
}

/// A layer that turns every error response into an RFC 9457 problem.
///
/// [`ProblemLayer`] wraps a service and, on the way out:
///
/// - gives every request a [`RequestId`] (the one a layer further out put in the request
///   extensions, or a new one), and answers with it in `x-request-id`;
/// - leaves 2xx, 3xx and `101 Switching Protocols` responses alone;
/// - answers a status no response may end with (another 1xx, or 600–999, which are not
///   HTTP's and which clients take for server errors) as a 500, its body and own headers
///   replaced as a server error's are;
/// - stamps the request id into problems a handler returned ([`Problem`](crate::Problem), [`Error`](crate::Error)),
///   also over another id one carries (read from an upstream, say), unless the response's
///   `x-request-id` names that id (a layer inside, such as `Hardening`, gave it);
/// - turns every other 4xx/5xx response into a problem of the same status: axum's
///   extractor rejections (their text is rewritten into a detail that names the field or
///   parameter but never the client's value), 404 fallbacks, 405 (keeping `Allow`), 413,
///   408 and 503 from timeouts, and any handler's plain 500;
/// - with [`keep_html_error_pages`](Self::keep_html_error_pages) (off by default), passes
///   on instead a handler's own `text/html` page for a client error (4xx), as it passes a
///   success; a server error's page is still replaced;
/// - catches panics, in `call` and while polling, and answers 500;
/// - logs each internal error and panic once, at error level, with the request id and the
///   whole source chain. Response bodies never carry that text;
/// - reports each rejection (401, 403, 408, 413, 429, a caught panic) as one security event
///   ([`rejection_event`](crate::rejection_event)), with the request id and the client
///   address; not again when a layer inside has reported it at the status it still has.
///
/// Someone else's problem for a client error (`application/problem+json` from a proxied
/// upstream or another library) is passed on with its members as written (same order, same
/// number and string text), with this request's id as its `request_id` member and the
/// response's status as `status`; one that is not a JSON object, or over 16 KiB or 1024
/// frames without bytes, is replaced. Its body is read before the response head goes out,
/// and this layer sets that read no deadline: put a timeout layer outside it (`Hardening`
/// runs it under its request timeout).
///
/// Problem bodies come with `cache-control: no-store`; a 4xx/5xx response's own
/// `content-*` headers are dropped (but a 416's `Content-Range: bytes */<length>`), as are
/// its `ETag`, `Last-Modified` and digests; others (`Allow`, `Retry-After`,
/// `WWW-Authenticate`) are kept. Someone else's stamped problem loses its length, digests
/// and `ETag` (its bytes are new).
/// A server error answered without a problem of this crate's keeps only protocol and
/// security headers: the others (`Server`, `X-Powered-By`, an upstream's debug link) may
/// describe internals, as its replaced body may.
///
/// ```
/// use axum::{Json, Router, routing::post};
/// use hardening_errors::ProblemLayer;
/// use tower::ServiceExt;
///
/// #[derive(serde::Deserialize)]
/// struct Order { quantity: u32 }
///
/// let app = Router::new()
///     .route("/orders", post(|Json(o): Json<Order>| async move { o.quantity.to_string() }))
///     .layer(ProblemLayer::new());
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let req = http::Request::post("/orders")
///     .header("content-type", "application/json")
///     .body(axum::body::Body::from(r#"{"quantity":"lots"}"#))
///     .unwrap();
/// let res = app.oneshot(req).await.unwrap();
/// assert_eq!(res.status(), 422);
/// assert_eq!(res.headers()["content-type"], "application/problem+json");
/// let body = axum::body::to_bytes(axum::body::Body::new(res.into_body()), 4096).await.unwrap();
/// let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
/// assert_eq!(
///     problem["detail"],
///     "invalid value in the JSON body at `quantity`: expected u32, found a string (line 1, column 18)"
/// );
/// assert!(!String::from_utf8_lossy(&body).contains("lots"));
/// # });
/// ```
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct ProblemLayer {
    id_header: bool,
    html_pages: bool,
}

impl Default for ProblemLayer {
    fn default() -> Self {
        Self {
            id_header: true,
            html_pages: false,
        }
    }
}

impl ProblemLayer {
    /// The layer: every error response becomes a problem.
    pub fn new() -> Self {
        Self::default()
    }

    /// Leaves `x-request-id` on successful responses to a layer further out that writes it
    /// on every response itself. Problems still carry it, in the header and the body.
    pub fn request_id_header_written_outside(mut self) -> Self {
        self.id_header = false;
        self
    }

    /// Passes on the pages a server-rendered app answers for client errors: a 4xx whose
    /// `Content-Type` is `text/html` (parameters aside: see [`is_html_error_page`]) keeps
    /// its body and headers, as a success does (its rejection is still reported as a
    /// security event). Everything else stays a problem: server errors (a 5xx page may show
    /// internals), a 4xx of another type (axum's plain-text rejections), and any response
    /// carrying a [`Problem`] (a handler's `Problem` or `Error`, a layer's rejection).
    /// Logged once, at INFO, when called. Off by default.
    ///
    /// ```
    /// use axum::{Router, response::Html, routing::get};
    /// use hardening_errors::ProblemLayer;
    /// use http::StatusCode;
    /// use tower::ServiceExt;
    ///
    /// let app = Router::new()
    ///     .route("/notes/7", get(|| async { (StatusCode::NOT_FOUND, Html("<h1>No such note</h1>")) }))
    ///     .route("/broken", get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, Html("<pre>db at 10.0.0.7</pre>")) }))
    ///     .layer(ProblemLayer::new().keep_html_error_pages());
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let get = |path| app.clone().oneshot(http::Request::get(path).body(axum::body::Body::empty()).unwrap());
    /// let res = get("/notes/7").await.unwrap();
    /// assert_eq!(res.status(), 404);
    /// assert!(res.headers().contains_key("x-request-id"));
    /// let body = axum::body::to_bytes(axum::body::Body::new(res.into_body()), 4096).await.unwrap();
    /// assert_eq!(body, "<h1>No such note</h1>");
    /// let res = get("/broken").await.unwrap();
    /// assert_eq!(res.status(), 500);
    /// assert_eq!(res.headers()["content-type"], "application/problem+json");
    /// # });
    /// ```
    pub fn keep_html_error_pages(mut self) -> Self {
        tracing::info!(
            target: crate::LOG_TARGET,
            setting = "ProblemLayer::keep_html_error_pages",
            "ProblemLayer passes on handlers' own text/html pages for client errors (4xx) \
             instead of problems; server errors and other client errors stay problems"
        );
        self.html_pages = true;
        self
    }
}

impl<S> Layer<S> for ProblemLayer {
    type Service = ProblemService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ProblemService {
            inner,
            id_header: self.id_header,
            html_pages: self.html_pages,
        }
    }
}

/// The service [`ProblemLayer`] makes.
#[derive(Debug, Clone)]
pub struct ProblemService<S> {
    inner: S,
    id_header: bool,
    html_pages: bool,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ProblemService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: http_body::Body<Data = Bytes>,
{
    type Response = Response<ProblemBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let request_id = match RequestId::from_extensions(req.extensions()) {
            Some(id) => id,
            None => {
                let id = RequestId::generate();
                req.extensions_mut().insert(id);
                id
            }
        };
        self.call_with_request_id(req, request_id)
    }
}

impl<S> ProblemService<S> {
    /// [`call`](Service::call) for a request whose id the caller already put in its
    /// extensions (saves looking it up again).
    pub fn call_with_request_id<ReqBody, ResBody>(
        &mut self,
        req: Request<ReqBody>,
        request_id: RequestId,
    ) -> ResponseFuture<S::Future, ResBody>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    {
        let report = Some(Report {
            client_ip: RequestContext::client_ip_of(req.extensions()),
        });
        match catch_unwind(AssertUnwindSafe(|| self.inner.call(req))) {
            Ok(future) => {
                ResponseFuture::new(future, request_id, self.id_header, self.html_pages, report)
            }
            Err(payload) => ResponseFuture::panicked(payload, request_id, report),
        }
    }
}
