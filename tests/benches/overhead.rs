//! Per-request overhead of `Hardening::strict()` against bare axum and against the same
//! features assembled from tower-http 0.7 + tower_governor, side by side in one run:
//! single-threaded, in-process (`oneshot`), hello-world route, no tracing subscriber (so
//! access-log events are filtered out in all three).
//!
//! A second group, `overhead-over-bare-interleaved`, measures each layered variant's time over
//! bare axum directly: batches of requests to the variant and to bare axum take turns, and
//! only the difference counts. A slow spell of the host then lands on both sides of that
//! difference, not on one variant's benchmark. It does not make the two differences
//! comparable across time: they are measured a few seconds apart, and each grows when the
//! host is slow (strict's more than the tower-http stack's, seen 2026-12-01), so their
//! ratio still moves between runs. `overhead-interleaved` (a binary) takes all three in
//! turns for a ratio per round.
//!
//! Run with: cargo bench -p hardening-tests --bench overhead

#![allow(missing_docs, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use criterion::{Criterion, criterion_group, criterion_main};
use hardening_tests::bench_apps::{Variant, hello_request};
use tokio::runtime::Runtime;
use tower::ServiceExt;

/// Requests per turn in the interleaved group: long enough that the two clock reads per turn
/// are noise, short enough that drift within a turn is.
const TURN: u64 = 32;

fn overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut group = c.benchmark_group("hello-world-oneshot");
    for variant in Variant::ALL {
        let app = variant.app();
        group.bench_function(variant.name(), |b| b.iter(|| request(&rt, &app, peer)));
    }
    group.finish();

    let bare = Variant::Bare.app();
    let mut group = c.benchmark_group("overhead-over-bare-interleaved");
    for variant in Variant::ALL.into_iter().filter(|v| *v != Variant::Bare) {
        let app = variant.app();
        // Counts turns across samples, so that each side goes first every other turn.
        let mut turns = 0u64;
        group.bench_function(variant.name(), |b| {
            b.iter_custom(|iters| {
                let (mut layered, mut plain) = (Duration::ZERO, Duration::ZERO);
                let mut done = 0;
                while done < iters {
                    let n = TURN.min(iters - done);
                    if turns.is_multiple_of(2) {
                        layered += timed(&rt, &app, peer, n);
                        plain += timed(&rt, &bare, peer, n);
                    } else {
                        plain += timed(&rt, &bare, peer, n);
                        layered += timed(&rt, &app, peer, n);
                    }
                    turns += 1;
                    done += n;
                }
                // A sample in which the layered stack came out faster (never seen: both
                // differences are microseconds) would count as zero, not negative: a
                // `Duration` cannot be.
                layered.saturating_sub(plain)
            });
        });
    }
    group.finish();
}

/// One hello-world request to `app`, checked.
fn request(rt: &Runtime, app: &Router, peer: SocketAddr) -> http::Response<axum::body::Body> {
    let res = rt
        .block_on(app.clone().oneshot(hello_request(peer)))
        .unwrap();
    assert_eq!(res.status(), 200);
    res
}

/// The time `n` requests to `app` take.
fn timed(rt: &Runtime, app: &Router, peer: SocketAddr, n: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        drop(std::hint::black_box(request(rt, app, peer)));
    }
    start.elapsed()
}

criterion_group!(benches, overhead);
criterion_main!(benches);
