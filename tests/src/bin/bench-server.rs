//! Run with: `cargo run --release -p hardening-tests --bin bench-server -- VARIANT PORT`
//!
//! Serves one of the benchmark variants (`bare-axum`, `tower-http-stack`, `hardening-strict`,
//! `bare-axum-strict-headers`, `standalone-headers`) on `127.0.0.1:PORT` for the loopback
//! scripts; `hardening-strict-without:STEP[,STEP...]` serves strict without those steps
//! (`rate-limit`, `security-headers`, `health`, `csrf`, `limits`, `document-headers`), to
//! measure what each costs; `bare-axum-noop-layer` is bare axum under a layer that does
//! nothing; `floor-as-layer` is bare axum under a layer that only sends strict's headers
//! (fixed values). A name ending in `@server` is served by `hardening_core::Server` (as the
//! quickstart serves) instead of `axum::serve`: `hardening-strict@server`.

use std::net::SocketAddr;

use hardening_tests::bench_apps::app_named;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bench-server <bare-axum|tower-http-stack|hardening-strict|bare-axum-strict-headers|standalone-headers|bare-axum-noop-layer|floor-as-layer|hardening-strict-without:STEP[,STEP...]> <port>";
    let name = args.next().ok_or(usage)?;
    let (name, with_server) = match name.strip_suffix("@server") {
        Some(name) => (name.to_owned(), true),
        None => (name, false),
    };
    let app = app_named(&name).map_err(|e| format!("{e}\n{usage}"))?;
    let port: u16 = args.next().and_then(|p| p.parse().ok()).ok_or(usage)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        if with_server {
            return hardening_core::Server::new().serve(listener, app).await;
        }
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    })?;
    Ok(())
}
