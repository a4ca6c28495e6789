//! Run with: `cargo run --release -p hardening-tests --bin bench-server -- VARIANT PORT`
//!
//! Serves one of the benchmark variants (`bare-axum`, `tower-http-stack`, `hardening-strict`)
//! on `127.0.0.1:PORT` for `scripts/bench-loopback.sh`.

use std::net::SocketAddr;

use hardening_tests::bench_apps::Variant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bench-server <bare-axum|tower-http-stack|hardening-strict> <port>";
    let variant = args
        .next()
        .and_then(|v| Variant::from_name(&v))
        .ok_or(usage)?;
    let port: u16 = args.next().and_then(|p| p.parse().ok()).ok_or(usage)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        axum::serve(
            listener,
            variant
                .app()
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    })?;
    Ok(())
}
