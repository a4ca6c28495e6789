//! The standalone tower layer, for services that want only the headers.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use hardening_errors::{Problem, RequestContext, RequestId, content_length, report_rejection};
use http::header::CONTENT_LENGTH;
use http::{Method, Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::https::tls_in_process;
use crate::request_headers::RequestHeaders;
use crate::{HeaderSet, HttpsRedirect, Merge, RedirectDecision, RequestFacts};

/// Applies a [`HeaderSet`] to every response (and optionally redirects plain HTTP).
///
/// `hardening-core`'s `Hardening` runs the same logic inside its fused service; use this
/// layer when you want only the headers. With [`https_redirect`](Self::https_redirect), a
/// plain-HTTP request whose `Host` no redirect may go to (missing or malformed) is refused
/// with a 400 problem rather than served over plain HTTP; the response body type is built
/// from the problem's JSON, hence `From<Bytes>` (axum's `Body` has it).
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
    // With a slot for `Content-Length` (see `content_length`).
    set: HeaderSet,
    trust_forwarded_proto: bool,
    // Shared: routers clone the service for every request.
    redirect: Option<Arc<HttpsRedirect>>,
}

impl SecurityHeadersLayer {
    /// The layer for this header set.
    pub fn new(set: HeaderSet) -> Self {
        // One slot, not `set-cookie`: cannot fail. Were it to, the set without the slot still
        // sends every header (the length then comes from axum or hyper).
        let set = set
            .with_slots([(CONTENT_LENGTH, Merge::Replace)])
            .unwrap_or(set);
        Self {
            set,
            trust_forwarded_proto: false,
            redirect: None,
        }
    }

    /// Believes `X-Forwarded-Proto`, its last value (only when every request comes through
    /// your proxy, and it sets or appends that header).
    pub fn trust_forwarded_proto(mut self) -> Self {
        self.trust_forwarded_proto = true;
        self
    }

    /// Redirects plain-HTTP requests to HTTPS; one whose `Host` no redirect may go to is
    /// refused (400 problem) instead of served over plain HTTP.
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
    ResBody: Body + From<Bytes>,
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
        let https = tls_in_process(req.extensions()) || read.forwarded_https;
        // The nonce of a layer further out, if any, is kept (see `HeaderSet::request_facts`).
        let facts = layer
            .set
            .facts(https, read.credentials, req.extensions_mut());
        let length_by_method = req.method() != Method::HEAD && req.method() != Method::CONNECT;
        // The request is taken apart only when a redirect may answer it.
        let state = match &layer.redirect {
            None => State::Inner {
                future: self.inner.call(req),
            },
            Some(redirect) => {
                let (parts, body) = req.into_parts();
                match redirect.decide(&parts, https) {
                    RedirectDecision::Redirect(res) => State::Redirect {
                        response: Some(res),
                    },
                    // Plain HTTP, not exempt, and no `Host` to redirect to: refused.
                    RedirectDecision::Refuse => State::BadHost {
                        refused: Some(RequestContext::for_refusal(&parts.extensions)),
                    },
                    RedirectDecision::Proceed => State::Inner {
                        future: self.inner.call(Request::from_parts(parts, body)),
                    },
                }
            }
        };
        ResponseFuture {
            state,
            set: layer.set.clone(),
            facts,
            length_by_method,
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
        length_by_method: bool,
    }
}

pin_project! {
    #[project = StateProj]
    #[derive(Debug)]
    enum State<F> {
        Inner { #[pin] future: F },
        Redirect { response: Option<http::Response<()>> },
        BadHost { refused: Option<(RequestId, Option<IpAddr>)> },
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body + From<Bytes>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = match this.state.project() {
            StateProj::Inner { future } => ready!(future.poll(cx))?,
            StateProj::Redirect { response } => response
                .take()
                .expect("ResponseFuture polled after completion")
                .map(|()| B::from(Bytes::new())),
            StateProj::BadHost { refused } => {
                let (request_id, client_ip) = refused
                    .take()
                    .expect("ResponseFuture polled after completion");
                let mut response = Problem::unknown_host()
                    .with_request_id(request_id)
                    .into_http_response();
                report_rejection(&mut response, "bad_host", request_id, client_ip, None);
                response
            }
        };
        let length = content_length(*this.length_by_method, &response);
        this.set.apply_with(
            &this.facts.for_response(&response),
            response.headers_mut(),
            [length],
        );
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use http::{HeaderValue, StatusCode};
    use tower::ServiceExt;

    use super::*;
    use crate::{CspNonce, HeaderPolicy, Tls};

    async fn respond(layer: SecurityHeadersLayer, req: Request<Body>) -> Response<Body> {
        let svc = layer.layer(tower::service_fn(|_: Request<Body>| async {
            Ok::<_, std::convert::Infallible>(Response::new(Body::empty()))
        }));
        svc.oneshot(req).await.unwrap()
    }

    async fn hsts(layer: SecurityHeadersLayer, req: Request<Body>) -> Option<HeaderValue> {
        let res = respond(layer, req).await;
        res.headers().get("strict-transport-security").cloned()
    }

    #[tokio::test]
    async fn an_https_request_target_gets_no_hsts() {
        let layer = SecurityHeadersLayer::new(HeaderPolicy::api().build().unwrap());
        let req = || Request::get("https://h/").body(Body::empty()).unwrap();
        assert_eq!(hsts(layer.clone(), req()).await, None, "plain HTTP");
        let mut tls = req();
        tls.extensions_mut().insert(Tls);
        assert!(hsts(layer.clone(), tls).await.is_some(), "TLS in-process");

        // With a redirect: a plain-HTTP `https://` target is redirected, not let through.
        let res = respond(layer.https_redirect(HttpsRedirect::new()), req()).await;
        assert_eq!(res.status(), StatusCode::MOVED_PERMANENTLY);
        assert_eq!(res.headers()["location"], "https://h/");
        assert!(res.headers().get("strict-transport-security").is_none());
    }

    #[tokio::test]
    async fn a_plain_http_request_with_no_host_to_redirect_to_is_refused_not_served() {
        let called = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let inner = {
            let called = called.clone();
            tower::service_fn(move |_: Request<Body>| {
                called.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { Ok::<_, std::convert::Infallible>(Response::new(Body::from("secret"))) }
            })
        };
        let layer = SecurityHeadersLayer::new(HeaderPolicy::api().build().unwrap())
            .https_redirect(HttpsRedirect::new().exempt("/healthz").unwrap());
        let svc = layer.layer(inner);
        let bad_hosts = [None, Some("example.com:@evil.com"), Some("evil.com/.x")];
        for host in bad_hosts {
            let mut req = Request::get("/private").body(Body::empty()).unwrap();
            if let Some(host) = host {
                req.headers_mut()
                    .insert(http::header::HOST, HeaderValue::from_static(host));
            }
            let res = svc.clone().oneshot(req).await.unwrap();
            assert_eq!(res.status(), StatusCode::BAD_REQUEST, "Host {host:?}");
            assert_eq!(res.headers()["content-type"], "application/problem+json");
            assert_eq!(res.headers()["x-content-type-options"], "nosniff");
            let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
            let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(problem["status"], 400);
            let id = problem["request_id"].as_str().unwrap();
            assert!(RequestId::parse(id).is_ok(), "request id {id:?}");
        }
        assert_eq!(called.load(std::sync::atomic::Ordering::SeqCst), 0);

        // The id a layer further out gave the request is the one the problem carries.
        let given = RequestId::parse("given-id-1").unwrap();
        let mut req = Request::get("/private").body(Body::empty()).unwrap();
        req.extensions_mut()
            .insert(RequestContext::new(given, None));
        let res = svc.clone().oneshot(req).await.unwrap();
        let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["request_id"], "given-id-1");

        // An exempt path and HTTPS still reach the service.
        let res = svc
            .clone()
            .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let mut tls = Request::get("/private").body(Body::empty()).unwrap();
        tls.extensions_mut().insert(Tls);
        assert_eq!(svc.oneshot(tls).await.unwrap().status(), StatusCode::OK);
        assert_eq!(called.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    /// A body whose size is not known up front (a stream).
    struct Stream(Option<Bytes>);

    impl http_body::Body for Stream {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.0.take().map(|b| Ok(http_body::Frame::data(b))))
        }
    }

    fn with_lengths<B>(mut res: Response<B>, lengths: &[&'static str]) -> Response<B> {
        for value in lengths {
            res.headers_mut()
                .append(CONTENT_LENGTH, HeaderValue::from_static(value));
        }
        res
    }

    #[test]
    fn a_content_length_that_disagrees_with_an_exact_body_size_is_replaced() {
        let warnings = crate::test_log::Warnings::new(hardening_errors::LOG_TARGET);
        let _guard = warnings.capture();
        let hello =
            |lengths: &[&'static str]| with_lengths(Response::new(Body::from("hello")), lengths);
        // (the service's values, what `content_length` returns, the warning)
        let cases: [(&[&str], Option<&str>, Option<&str>); 14] = [
            (&[], Some("5"), None),
            (&["5"], None, None),
            (&["05"], None, None),
            (&["2"], Some("5"), Some("declared=2 body_size=5")),
            (&["0"], Some("5"), Some("declared=0 body_size=5")),
            (&["50"], Some("5"), Some("declared=50 body_size=5")),
            (&["abc"], Some("5"), Some("body_size=5")),
            (&["+5"], Some("5"), Some("body_size=5")),
            (&[" 5"], Some("5"), Some("body_size=5")),
            (&["5, 5"], Some("5"), Some("body_size=5")),
            (&[""], Some("5"), Some("body_size=5")),
            (&["99999999999999999999999"], Some("5"), Some("body_size=5")),
            (&["5", "5"], Some("5"), Some("fields=2 body_size=5")),
            (&["2", "5"], Some("5"), Some("fields=2 body_size=5")),
        ];
        for (lengths, want, warning) in cases {
            let got = content_length(true, &hello(lengths));
            assert_eq!(
                got.as_ref().map(|v| v.to_str().unwrap()),
                want,
                "{lengths:?}"
            );
            let logged = warnings.take();
            match warning {
                None => assert!(logged.is_empty(), "{lengths:?}: {logged:?}"),
                Some(fields) => {
                    assert_eq!(logged.len(), 1, "{lengths:?}: {logged:?}");
                    assert!(logged[0].ends_with(fields), "{lengths:?}: {logged:?}");
                }
            }
        }
        // No header values in the log but the numbers.
        let _ = content_length(true, &hello(&["secret-ish"]));
        assert!(!warnings.take()[0].contains("secret"));

        // An empty body is 0 bytes.
        let empty = with_lengths(Response::new(Body::empty()), &["5"]);
        assert_eq!(content_length(true, &empty).unwrap(), "0");
        warnings.take();

        // Left as they are: a stream, HEAD or CONNECT, 1xx, 204, 304.
        let stream = with_lengths(Response::new(Stream(Some(Bytes::from("hello")))), &["2"]);
        assert_eq!(content_length(true, &stream), None);
        assert_eq!(content_length(false, &hello(&["2"])), None);
        for status in [
            StatusCode::CONTINUE,
            StatusCode::NO_CONTENT,
            StatusCode::NOT_MODIFIED,
        ] {
            let mut res = hello(&["2"]);
            *res.status_mut() = status;
            assert_eq!(content_length(true, &res), None, "{status}");
        }
        assert_eq!(warnings.take(), Vec::<String>::new());
    }

    /// Through the layer: the body's size goes out once, in the slot, the service's values
    /// dropped (not kept beside it).
    #[tokio::test]
    async fn the_layer_sends_one_content_length_of_the_bodys_size() {
        let warnings = crate::test_log::Warnings::new(hardening_errors::LOG_TARGET);
        let _guard = warnings.capture();
        let layer = SecurityHeadersLayer::new(HeaderPolicy::api().build().unwrap());
        let cases: [&[&'static str]; 4] = [&["2"], &["abc"], &["2", "5"], &["5", "5"]];
        for lengths in cases {
            for content_type in [false, true] {
                let svc =
                    layer
                        .clone()
                        .layer(tower::service_fn(move |_: Request<Body>| async move {
                            let mut res = with_lengths(Response::new(Body::from("hello")), lengths);
                            if content_type {
                                res.headers_mut()
                                    .insert("content-type", HeaderValue::from_static("text/plain"));
                            }
                            Ok::<_, std::convert::Infallible>(res)
                        }));
                let res = svc
                    .oneshot(Request::get("/").body(Body::empty()).unwrap())
                    .await
                    .unwrap();
                let sent: Vec<_> = res.headers().get_all(CONTENT_LENGTH).iter().collect();
                assert_eq!(sent, ["5"], "{lengths:?}");
                assert_eq!(res.headers()["x-content-type-options"], "nosniff");
                let body = axum::body::to_bytes(res.into_body(), 64).await.unwrap();
                assert_eq!(&body[..], b"hello");
                assert_eq!(warnings.take().len(), 1, "{lengths:?}: one warning");
            }
        }
        // The service's own value when right; a HEAD's kept whatever it says.
        for (method, value) in [(Method::GET, "5"), (Method::HEAD, "2")] {
            let svc = layer
                .clone()
                .layer(tower::service_fn(move |_: Request<Body>| async move {
                    Ok::<_, std::convert::Infallible>(with_lengths(
                        Response::new(Body::from("hello")),
                        &[value],
                    ))
                }));
            let req = Request::builder()
                .method(method.clone())
                .body(Body::empty())
                .unwrap();
            let res = svc.oneshot(req).await.unwrap();
            let sent: Vec<_> = res.headers().get_all(CONTENT_LENGTH).iter().collect();
            assert_eq!(sent, [value], "{method}");
        }
        assert_eq!(warnings.take(), Vec::<String>::new());
    }

    /// Nested, each layer made its own nonce: the handler got the inner one, the browser the
    /// outer one's CSP, and no script of the page ran. The nonce a layer further out put in
    /// the extensions is the one every layer uses.
    #[tokio::test]
    async fn nested_layers_keep_the_outer_layers_nonce() {
        let html = || SecurityHeadersLayer::new(HeaderPolicy::html().build().unwrap());
        let handler = tower::service_fn(|req: Request<Body>| async move {
            let nonce = req.extensions().get::<CspNonce>().copied().unwrap();
            Ok::<_, std::convert::Infallible>(Response::new(Body::from(nonce.to_string())))
        });
        let svc = html().layer(html().layer(handler));
        let given = CspNonce::generate();
        for outer in [None, Some(given)] {
            let mut req = Request::get("/").body(Body::empty()).unwrap();
            if let Some(nonce) = outer {
                req.extensions_mut().insert(nonce);
            }
            let res = svc.clone().oneshot(req).await.unwrap();
            let csp = res.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .to_owned();
            let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
            let nonce = std::str::from_utf8(&body).unwrap();
            assert!(
                csp.contains(&format!("'nonce-{nonce}'")),
                "{nonce} not in {csp}"
            );
            if let Some(given) = outer {
                assert_eq!(nonce, given.as_str());
            }
        }
    }
}
