//! One keyed rate-limit decision: hardening's RateLimiter (one per-IP policy) against raw
//! governor's keyed limiter on the same quota, side by side; 1,000 client IPs in rotation so
//! both hit a populated map.
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
            };
            ours.check(&keys, 1)
        })
    });
    group.finish();
}

criterion_group!(benches, limiter);
criterion_main!(benches);
