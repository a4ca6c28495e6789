//! The in-process overhead comparison of `benches/overhead.rs`, measured another way: the
//! variants take turns in short rounds. Criterion measures one variant after another, so on
//! a host whose speed drifts by tens of percent within minutes (seen on these VMs) one slow
//! spell can land on a single variant and move the ratio far; taking turns exposes all three
//! to the same spells. It reports each variant's fastest and median round, the ratio from
//! the fastest rounds (the host at its best) and the median of the rounds' own ratios (each
//! round runs all three, so each has a ratio: the host as it usually is). On 2026-12-01 the
//! first was about 0.22 and the second about 0.27: strict's overhead grows more than the
//! others' when the host is slow. A check on the criterion figures, not a replacement.
//!
//! Run with: cargo run --release -p hardening-tests --bin overhead-interleaved
//! Environment: `N` requests per round (default 20 000), `ROUNDS` (default 30), `ONLY` one
//! variant by name (for profilers; no ratio then; `hardening-strict-without:STEP[,STEP...]`
//! too, see `bench-server`), `LOG_FILTER` an `EnvFilter` for a
//! subscriber that formats what it lets through and throws it away (by default none is
//! installed, as in the criterion bench), e.g. `info,hardening::access=off`; `POLLUTE_KIB`
//! a buffer written over between requests, to run them with cold caches as a served request
//! does (with 1024, strict − bare comes near what loopback shows with the server's core to
//! itself); `CREDENTIALS` set (to anything) sends `Authorization: Bearer …` with every
//! request, as an authenticated API's clients do (no variant checks it; under `Hardening`
//! its response takes the `Cache-Control: no-store` path).

#![allow(clippy::print_stdout)] // a command-line tool: its report goes to stdout

use std::net::SocketAddr;
use std::time::Instant;

use hardening_tests::bench_apps::{Variant, app_named, hello_request};
use tower::ServiceExt;

fn env_number(name: &str, default: u32) -> Result<u32, String> {
    match std::env::var(name) {
        Ok(value) => value.parse().ok().filter(|n| *n > 0).ok_or(format!(
            "{name} must be a whole number above 0, not {value:?}"
        )),
        Err(_) => Ok(default),
    }
}

/// Writes one byte in every cache line of `dirt`: between requests, this evicts what the
/// last request left in the caches, as a served request's kernel and hyper work does. Its own
/// cost is the same in every variant, so it cancels in the differences.
fn pollute(dirt: &mut [u8]) {
    for line in dirt.chunks_mut(64) {
        line[0] = line[0].wrapping_add(1);
    }
    std::hint::black_box(dirt);
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let requests = env_number("N", 20_000)?;
    let rounds = env_number("ROUNDS", 30)?;
    let (names, apps): (Vec<String>, Vec<_>) = match std::env::var("ONLY") {
        Ok(name) => {
            let app = app_named(&name)?;
            (vec![name], vec![app])
        }
        Err(_) => Variant::ALL
            .iter()
            .map(|v| (v.name().to_owned(), v.app()))
            .unzip(),
    };
    if let Ok(filter) = std::env::var("LOG_FILTER") {
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::try_new(filter)?)
            .with_writer(std::io::sink)
            .finish();
        tracing::subscriber::set_global_default(subscriber)?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let peer: SocketAddr = ([127, 0, 0, 1], 40_000).into();
    let mut dirt = vec![0u8; env_number("POLLUTE_KIB", 0)? as usize * 1024];
    let credentials = std::env::var_os("CREDENTIALS").is_some();
    let mut per_round: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds as usize); apps.len()];
    for round in 0..rounds {
        // Each round starts with another variant, so no variant always runs first.
        let mut order: Vec<usize> = (0..apps.len()).collect();
        order.rotate_left(round as usize % apps.len());
        for i in order {
            let app = &apps[i];
            let start = Instant::now();
            for _ in 0..requests {
                // The same request and check as the criterion bench.
                let mut req = hello_request(peer);
                if credentials {
                    req.headers_mut().insert(
                        http::header::AUTHORIZATION,
                        http::HeaderValue::from_static("Bearer eyJhbGciOiJFUzI1NiJ9.e30.c2ln"),
                    );
                }
                let res = runtime.block_on(app.clone().oneshot(req))?;
                if res.status() != 200 {
                    return Err(format!("status {}", res.status()).into());
                }
                drop(std::hint::black_box(res));
                pollute(&mut dirt);
            }
            let per_request = start.elapsed().as_nanos() as f64 / f64::from(requests);
            per_round[i].push(per_request);
        }
    }
    // Each round's own ratio, before the rounds are sorted.
    let mut round_ratios: Vec<f64> = match &per_round[..] {
        [bare, tower, strict] => (0..bare.len())
            .map(|r| (strict[r] - bare[r]) / (tower[r] - bare[r]))
            .collect(),
        _ => Vec::new(),
    };
    round_ratios.sort_by(f64::total_cmp);
    for rounds in &mut per_round {
        rounds.sort_by(f64::total_cmp);
    }
    let fastest: Vec<f64> = per_round.iter().map(|r| r[0]).collect();
    let median: Vec<f64> = per_round.iter().map(|r| middle(r)).collect();
    println!("{:<28} {:>12} {:>12}", "variant", "fastest", "median");
    for (i, name) in names.iter().enumerate() {
        println!("{:<28} {:9.1} ns {:9.1} ns", name, fastest[i], median[i]);
    }
    if let [bare, tower, strict] = fastest[..] {
        let ratio = (strict - bare) / (tower - bare);
        println!(
            "ratio (strict - bare) / (tower-http - bare), fastest rounds: {ratio:.3} (target <= 0.25)"
        );
        let (low, high) = (
            round_ratios[round_ratios.len() / 4],
            round_ratios[round_ratios.len() * 3 / 4],
        );
        println!(
            "ratio, median of the rounds' own: {:.3} (middle half {low:.3}-{high:.3}; target <= 0.25)",
            middle(&round_ratios)
        );
    }
    Ok(())
}

/// The median of sorted numbers (the mean of the middle two for an even count).
fn middle(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    (sorted[(n - 1) / 2] + sorted[n / 2]) / 2.0
}
