//! Per-request overhead of `Hardening::strict()` against bare axum and against the same
//! features assembled from tower-http 0.7 + tower_governor, side by side in one run:
//! single-threaded, in-process (`oneshot`), hello-world route, no tracing subscriber (so
//! access-log events are filtered out in all three).
//!
//! Run with: cargo bench -p hardening-tests --bench overhead

#![allow(missing_docs, clippy::unwrap_used)]

use std::net::SocketAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use hardening_tests::bench_apps::{Variant, hello_request};
use tower::ServiceExt;

fn overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut group = c.benchmark_group("hello-world-oneshot");
    for variant in Variant::ALL {
        let app = variant.app();
        group.bench_function(variant.name(), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let res = app.clone().oneshot(hello_request(peer)).await.unwrap();
                    assert_eq!(res.status(), 200);
                    res
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);
