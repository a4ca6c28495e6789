//! Latency of a cheap GET while 32 logins hash passwords concurrently on this machine's
//! cores: argon2id through `Passwords` (blocking pool behind a CPU-sized semaphore) against
//! the same verification run on the async runtime's own threads.
//!
//! Run with: cargo bench -p hardening-tests --bench login_flood

#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use hardening_auth::{Passwords, Verification};
use hardening_tests::{exchange, get as http_get, serve};

const PASSWORD: &[u8] = b"correct horse battery staple";
const LOGINS: usize = 32;
const DURATION: Duration = Duration::from_secs(5);

#[derive(Clone)]
struct App {
    passwords: Passwords,
    stored: Arc<str>,
    on_runtime: bool,
}

async fn login(State(app): State<App>) -> &'static str {
    if app.on_runtime {
        // The mistake: argon2 on a runtime worker thread.
        let argon = argon2::Argon2::default();
        let hash = argon2::password_hash::phc::PasswordHash::new(&app.stored).unwrap();
        let ok = argon.verify_password(PASSWORD, &hash).is_ok();
        if ok { "ok" } else { "no" }
    } else {
        match app.passwords.verify(PASSWORD, Some(&app.stored)).await {
            Ok(Verification::Valid) => "ok",
            _ => "no",
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn measure(on_runtime: bool) -> (usize, Duration, Duration, usize) {
    // Every login queues (none is refused busy): the flood hashes as much as it can.
    let passwords = Passwords::new().max_waiting(LOGINS).unwrap();
    let stored: Arc<str> = argon2::Argon2::default()
        .hash_password(PASSWORD)
        .unwrap()
        .to_string()
        .into();
    let app = Router::new()
        .route("/login", post(login))
        .route("/ping", get(|| async { "pong" }))
        .with_state(App {
            passwords,
            stored,
            on_runtime,
        });
    let addr = serve(app).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut flood = Vec::new();
    for _ in 0..LOGINS {
        let stop = stop.clone();
        flood.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                exchange(addr, b"POST /login HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 0\r\n\r\n").await;
                n += 1;
            }
            n
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut latencies = Vec::new();
    let start = Instant::now();
    while start.elapsed() < DURATION {
        let t = Instant::now();
        let reply = http_get(addr, "/ping", &[]).await;
        assert_eq!(reply.status, 200);
        latencies.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut logins = 0;
    for task in flood {
        logins += task.await.unwrap();
    }
    latencies.sort();
    (
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        logins,
    )
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "{LOGINS} concurrent logins, {cores} runtime workers, GET /ping every 5 ms for {DURATION:?}"
    );
    println!(
        "{:<32} {:>8} {:>10} {:>10} {:>8}",
        "mode", "pings", "p50", "p99", "logins"
    );
    for (name, on_runtime) in [
        ("Passwords (blocking pool)", false),
        ("argon2 on the runtime thread", true),
    ] {
        let (n, p50, p99, logins) = rt.block_on(measure(on_runtime));
        println!(
            "{name:<32} {n:>8} {:>10.2?} {:>10.2?} {logins:>8}",
            p50, p99
        );
    }
}
