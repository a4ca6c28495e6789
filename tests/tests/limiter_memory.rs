//! Limiter memory with 1,000,000 distinct keys: the peak stays under 100 MB, and a second
//! million keys (the first ones evicted) does not grow it. Measured as the process's resident
//! set from /proc (this file holds one test, so no other test shares the process).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::IpAddr;
use std::num::NonZeroU32;

use hardening_core::ratelimit::{Policy, Quota, RateLimiter, RequestKeys};

/// Resident set size now and at its peak so far, in bytes (Linux: VmRSS, VmHWM).
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kb * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn wave(limiter: &RateLimiter, base: u32) {
    let headers = http::HeaderMap::new();
    for i in 0..1_000_000u32 {
        let ip = IpAddr::from((base + i).to_be_bytes());
        limiter.check(&RequestKeys::new(Some(ip), &headers), 1);
    }
}

#[test]
fn a_million_keys_fit_in_100_mb_and_stay_flat_after_eviction() {
    let limiter = RateLimiter::new([Policy::per_client_ip(
        "per-ip",
        Quota::per_hour(NonZeroU32::new(100).unwrap()),
    )])
    .max_keys(1_000_000);
    let (before, _) = rss();
    wave(&limiter, 0x0A00_0000);
    let (now, peak) = rss();
    let first = now.saturating_sub(before);
    let first_peak = peak.saturating_sub(before);
    let tracked = limiter.tracked_keys()[0];
    assert!(tracked >= 900_000, "{tracked} keys tracked");
    // A second million distinct keys: past the cap, old keys are evicted.
    wave(&limiter, 0x0B00_0000);
    let (now, peak) = rss();
    let second = now.saturating_sub(before);
    let peak = peak.saturating_sub(before);
    let tracked = limiter.tracked_keys()[0];
    assert!(
        tracked <= 1_000_000 + 256,
        "{tracked} keys tracked after eviction"
    );
    eprintln!(
        "limiter memory: {:.1} MB after 1M keys (peak {:.1} MB), {:.1} MB after 2M with cap 1M \
         (peak {:.1} MB)",
        first as f64 / 1e6,
        first_peak as f64 / 1e6,
        second as f64 / 1e6,
        peak as f64 / 1e6
    );
    assert!(peak <= 100_000_000, "peak {peak} bytes");
    // Flat: bounded by the cap, not by the keys seen. Each shard's table doubles when it
    // fills, and which shards cross a power of two while the second wave is evicting depends
    // on the process's random hash keys: on one and the same build the second figure was
    // 69 to 91 MB for a first of 69 MB (2026-12-03), so the margin is 40 %, not 20 %.
    assert!(
        second <= 100_000_000 && second <= first + first * 2 / 5,
        "memory grew after eviction: {first} → {second} bytes"
    );
}
