//! Security headers + Set-Cookie enforcement per response (`SecurityHeadersLayer`, the same
//! code `Hardening` runs) against a tower-http `SetResponseHeader` stack setting the same
//! headers (and not touching cookies), and against no layer at all, side by side in one run.
//! The inner service answers at once with one `Set-Cookie`; futures are polled once with a
//! no-op waker, so only the layers' own work is measured.
//!
//! Run with: cargo bench -p hardening-tests --bench headers

#![allow(missing_docs, clippy::unwrap_used)]

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use criterion::{Criterion, criterion_group, criterion_main};
use hardening_core::headers::{HeaderPolicy, SecurityHeadersLayer};
use http::header::{HeaderName, HeaderValue};
use http::{Request, Response};
use tower::{Layer, Service, ServiceBuilder, service_fn};
use tower_http::set_header::SetResponseHeaderLayer;

// A body the layer can also answer its own refusals with (`From<Bytes>`).
type Body = http_body_util::Full<bytes::Bytes>;

async fn handler(_req: Request<Body>) -> Result<Response<Body>, Infallible> {
    let mut res = Response::new(Body::default());
    res.headers_mut()
        .insert("set-cookie", HeaderValue::from_static("sid=abc123; Path=/"));
    Ok(res)
}

fn run<S>(svc: &mut S) -> Response<Body>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
{
    let req = Request::get("/")
        .header("x-forwarded-proto", "https")
        .body(Body::default())
        .unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    let fut = pin!(svc.call(req));
    let mut res = match fut.poll(&mut cx) {
        Poll::Ready(Ok(res)) => res,
        _ => unreachable!("the handler answers at once"),
    };
    // What axum's `Route` does after the layers, for every variant alike: a `Content-Length`
    // from the body's size unless the response has one (a static value for an empty body).
    if !res.headers().contains_key(http::header::CONTENT_LENGTH) {
        let value = match http_body::Body::size_hint(res.body()).exact().unwrap_or(0) {
            0 => HeaderValue::from_static("0"),
            n => HeaderValue::from(n),
        };
        res.headers_mut()
            .insert(http::header::CONTENT_LENGTH, value);
    }
    res
}

/// The headers `HeaderPolicy::api()` sets on an HTTPS response, as fixed values. Not
/// `content-length`: the layer also writes it (where axum would insert it after the layers),
/// and the tower-http stacks leave it to the server, as they would under axum.
fn same_headers() -> Vec<(HeaderName, HeaderValue)> {
    let set = HeaderPolicy::api().build().unwrap();
    let mut svc = SecurityHeadersLayer::new(set)
        .trust_forwarded_proto()
        .layer(service_fn(handler));
    let res = run(&mut svc);
    res.headers()
        .iter()
        .filter(|(n, _)| !matches!(n.as_str(), "set-cookie" | "content-length"))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect()
}

fn headers(c: &mut Criterion) {
    let fixed = same_headers();
    assert_eq!(fixed.len(), 10, "{fixed:?}");
    let mut group = c.benchmark_group("security-headers-per-response");

    let mut bare = service_fn(handler);
    group.bench_function("no-layer", |b| b.iter(|| run(&mut bare)));

    let mut tower_http = {
        let mut svc = tower::util::BoxCloneService::new(service_fn(handler));
        for (name, value) in fixed.clone() {
            svc = tower::util::BoxCloneService::new(
                SetResponseHeaderLayer::overriding(name, value).layer(svc),
            );
        }
        svc
    };
    group.bench_function("tower-http-set-response-header-x10", |b| {
        b.iter(|| run(&mut tower_http))
    });

    // The same stack without boxing between layers, as a ServiceBuilder would nest it.
    let h = |i: usize| SetResponseHeaderLayer::overriding(fixed[i].0.clone(), fixed[i].1.clone());
    let mut tower_http_nested = ServiceBuilder::new()
        .layer(h(0))
        .layer(h(1))
        .layer(h(2))
        .layer(h(3))
        .layer(h(4))
        .layer(h(5))
        .layer(h(6))
        .layer(h(7))
        .layer(h(8))
        .layer(h(9))
        .service(service_fn(handler));
    group.bench_function("tower-http-service-builder-x10", |b| {
        b.iter(|| run(&mut tower_http_nested))
    });

    let set = HeaderPolicy::api().build().unwrap();
    let mut ours = SecurityHeadersLayer::new(set)
        .trust_forwarded_proto()
        .layer(service_fn(handler));
    group.bench_function("hardening-headers+cookies", |b| b.iter(|| run(&mut ours)));

    // The headers alone (a response without Set-Cookie), to separate the two costs.
    let set = HeaderPolicy::api().build().unwrap();
    let mut no_cookie = SecurityHeadersLayer::new(set)
        .trust_forwarded_proto()
        .layer(service_fn(|_req: Request<Body>| async {
            Ok::<_, Infallible>(Response::new(Body::default()))
        }));
    group.bench_function("hardening-headers-only", |b| b.iter(|| run(&mut no_cookie)));
    group.finish();
}

criterion_group!(benches, headers);
criterion_main!(benches);
