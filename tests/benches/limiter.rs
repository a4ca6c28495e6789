//! One keyed rate-limit decision: hardening's RateLimiter (one per-IP policy) against raw
//! governor's keyed limiter on the same quota, side by side; 1,000 client IPs in rotation so
//! both hit a populated map. Then the same at the layer level, one request through a
//! hello-world router: tower_governor's `GovernorLayer` against hardening's `RateLimitLayer`
//! and against `Hardening` with only its limiter on (every other step turned off), same quota.
//!
//! Run with: cargo bench -p hardening-tests --bench limiter

#![allow(missing_docs, clippy::unwrap_used)]

use std::net::IpAddr;
use std::num::NonZeroU32;

use criterion::{Criterion, criterion_group, criterion_main};
use hardening_core::ratelimit::{Policy, Quota, RateLimiter, RequestKeys};

fn limiter(c: &mut Criterion) {
    let max = NonZeroU32::MAX;
    let ips: Vec<IpAddr> = (0..1000u32)
        .map(|i| IpAddr::from((0x0a00_0000 + i).to_be_bytes()))
        .collect();

    let ours = RateLimiter::new([Policy::per_client_ip(
        "per-ip",
        Quota::per_second(max).burst(max),
    )]);
    let raw = governor::RateLimiter::keyed(governor::Quota::per_second(max).allow_burst(max));
    let headers = http::HeaderMap::new();

    let mut group = c.benchmark_group("keyed-check");
    let mut i = 0usize;
    group.bench_function("governor-check_key", |b| {
        b.iter(|| {
            i = (i + 1) % ips.len();
            raw.check_key(&ips[i]).is_ok()
        })
    });
    let mut j = 0usize;
    group.bench_function("hardening-RateLimiter::check", |b| {
        b.iter(|| {
            j = (j + 1) % ips.len();
            let keys = RequestKeys {
                client_ip: Some(ips[j]),
                headers: &headers,
                principal: None,
                tenant: None,
                route: None,
            };
            ours.check(&keys, 1)
        })
    });
    group.finish();
}

fn layers(c: &mut Criterion) {
    use axum::Router;
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::routing::get;
    use hardening_core::Hardening;
    use hardening_core::ratelimit::RateLimitLayer;
    use tower::ServiceExt;
    use tower_governor::GovernorLayer;
    use tower_governor::governor::GovernorConfigBuilder;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let max = NonZeroU32::MAX;
    let quota = || Quota::per_second(max).burst(max);
    let hello = || Router::new().route("/", get(|| async { "Hello, World!" }));
    let governor = GovernorConfigBuilder::default()
        .per_nanosecond(1)
        .burst_size(u32::MAX)
        .finish()
        .unwrap();
    let apps = [
        (
            "tower_governor-GovernorLayer",
            hello().layer(GovernorLayer::new(governor)),
        ),
        (
            "hardening-RateLimitLayer",
            hello().layer(RateLimitLayer::new(RateLimiter::new([
                Policy::per_client_ip("per-ip", quota()),
            ]))),
        ),
        (
            "Hardening-limiter-only",
            hello().layer(
                Hardening::strict()
                    .rate_limit(RateLimiter::new([Policy::per_client_ip("per-ip", quota())]))
                    .unwrap()
                    .dangerous_without_security_headers()
                    .dangerous_disable_body_limit()
                    .dangerous_disable_query_param_limit()
                    .dangerous_disable_timeout(),
            ),
        ),
    ];
    let mut group = c.benchmark_group("rate-limit-layer-oneshot");
    for (name, app) in apps {
        let mut i = 0u32;
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % 1000;
                let peer = std::net::SocketAddr::from(((0x0a00_0000 + i).to_be_bytes(), 40000));
                rt.block_on(async {
                    let req = http::Request::get("/")
                        .extension(ConnectInfo(peer))
                        .body(Body::empty())
                        .unwrap();
                    let res = app.clone().oneshot(req).await.unwrap();
                    assert_eq!(res.status(), 200);
                    res
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, limiter, layers);
criterion_main!(benches);
