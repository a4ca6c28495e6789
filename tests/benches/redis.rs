//! Redis store throughput and latency from one process over loopback: decisions per second
//! and p50/p99 per decision, with 64 concurrent callers on 2 worker threads, against a private
//! `redis-server` started here: a limiter of one policy, then one of two (probed in one
//! pipelined round trip, then charged one by one, so that a decision charges all or none).
//! Each as a plain check, then as a reservation (`reserve(10)`, settled at what it reserved:
//! nothing more to send), which runs its charge on a task of its own so that a caller dropped
//! mid-way leaves no charge behind: the difference is what that costs.
//!
//! `cargo bench -p hardening-tests --bench redis` (needs redis-server).

#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)] // bench code: prints its figures; a failed unwrap is a failed run

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use hardening_core::ratelimit::{FailureMode, Policy, Quota, RedisLimiter, RequestKeys};
use hardening_tests::redis_server::RedisServer;

const CALLERS: u32 = 64;
const PER_CALLER: u32 = 2_000;

fn main() {
    // `cargo test --benches` runs benches with `--bench`-less args; keep that quick.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let quota = Quota::per_second(NonZeroU32::new(1_000_000).unwrap());
        // One policy: one script call a decision. Two: both probed (one pipelined round
        // trip), then both charged (one call each), so that all or none are charged.
        for policies in [1, 2] {
            let mut builder = RedisLimiter::builder(&server.url()).policy(
                Policy::per_client_ip("per-ip", quota),
                FailureMode::FailClosed,
            );
            if policies == 2 {
                builder = builder.policy(Policy::global("all", quota), FailureMode::FailClosed);
            }
            let limiter = builder.connect().await.unwrap();
            for reserving in [false, true] {
                // Warm up (scripts loaded, connection hot).
                run(&limiter, 8, 200, reserving).await;
                let (elapsed, mut latencies) = run(&limiter, CALLERS, PER_CALLER, reserving).await;
                latencies.sort_unstable();
                let n = latencies.len();
                let pct = |p: f64| latencies[((n as f64 * p) as usize).min(n - 1)];
                println!(
                    "redis store, {policies} polic{}, {}: {n} decisions over {CALLERS} callers \
                     in {:.2} s = {:.0} decisions/s; p50 {:?}, p99 {:?}, max {:?}",
                    if policies == 1 { "y" } else { "ies" },
                    if reserving { "reserve" } else { "check" },
                    elapsed.as_secs_f64(),
                    n as f64 / elapsed.as_secs_f64(),
                    pct(0.50),
                    pct(0.99),
                    latencies[n - 1],
                );
            }
        }
    });
}

async fn run(
    limiter: &RedisLimiter,
    callers: u32,
    each: u32,
    reserving: bool,
) -> (Duration, Vec<Duration>) {
    let start = Instant::now();
    let mut handles = Vec::new();
    for c in 0..callers {
        let limiter = limiter.clone();
        handles.push(tokio::spawn(async move {
            let headers = http::HeaderMap::new();
            let mut latencies = Vec::with_capacity(each as usize);
            for i in 0..each {
                // Many distinct keys, as in real traffic.
                let ip = std::net::IpAddr::from([
                    10,
                    (c % 256) as u8,
                    (i / 256 % 256) as u8,
                    (i % 256) as u8,
                ]);
                let keys = RequestKeys::new(Some(ip), &headers);
                let t = Instant::now();
                let admitted = if reserving {
                    let (decision, reservation) = limiter.reserve(&keys, 10).await.unwrap();
                    // Settled at what it reserved: nothing more for Redis.
                    reservation.unwrap().settle(10).await;
                    decision.is_admitted()
                } else {
                    limiter.check(&keys, 1).await.unwrap().is_admitted()
                };
                latencies.push(t.elapsed());
                assert!(admitted);
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    (start.elapsed(), all)
}
