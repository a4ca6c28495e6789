//! Run with: `cargo run --release -p hardening-tests --bin notes-bench-server -- VARIANT PORT`
//!
//! Serves example-notes on `127.0.0.1:PORT` (0 for any free port) for
//! `scripts/load-notes.sh`: `hardened` is `example_notes::app` (the whole service,
//! `Hardening` included, per-IP limit lifted so the load never sees a 429), `bare` is
//! `example_notes::routes` (the same routes and their own auth layer, no `Hardening`).
//!
//! A fresh SQLite file under the temp directory (removed on exit) gets one user with ten
//! notes. Stdout's first line is a bearer token for that user (from the server's own
//! `POST /auth/login`), the second `listening on 127.0.0.1:PORT` once the socket is bound
//! and the login answered. Secrets are fresh random bytes.

#![allow(clippy::print_stdout)]

use std::future::IntoFuture;
use std::io::Write;
use std::net::SocketAddr;

use example_notes::Db;
use hardening_core::auth::Passwords;
use hardening_tests::notes::TempNotes;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: notes-bench-server <hardened|bare> <port>";
    let hardened = match args.next().as_deref() {
        Some("hardened") => true,
        Some("bare") => false,
        _ => return Err(usage.into()),
    };
    let port: u16 = args.next().and_then(|p| p.parse().ok()).ok_or(usage)?;
    if args.next().is_some() {
        return Err(usage.into());
    }
    let notes = TempNotes::new(
        if hardened {
            "bench-hardened"
        } else {
            "bench-bare"
        },
        &[],
    );
    let config = notes.config.clone();

    // Single-threaded, like bench-server: the comparison is per-core cost.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        // The user and its notes go straight into the database; the token comes from the
        // server's own `/auth/login`, so both variants get one.
        let db = Db::open(&config.database)?;
        let password = "a long passphrase for the load test";
        let hash = Passwords::new().hash(password.as_bytes()).await?;
        let email = "load@example.com";
        db.create_user(email.to_owned(), hash).await?;
        let (id, _) = db
            .credentials(email.to_owned())
            .await?
            .ok_or("the load-test user was not stored")?;
        for n in 0..10 {
            db.create_note(
                &id.to_string(),
                format!("note {n}"),
                "a short body for the load test".to_owned(),
            )
            .await?;
        }

        let app = if hardened {
            example_notes::app(&config, TempNotes::hardening("1000000000"))?
        } else {
            example_notes::routes(&config, db)?
        };
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .into_future(),
        );
        let credentials = format!(r#"{{"email":"{email}","password":"{password}"}}"#);
        let login =
            hardening_tests::send(addr, "POST", "/auth/login", &[], Some(&credentials)).await;
        if login.status != 200 {
            return Err(format!("the load-test login failed: {login:?}").into());
        }
        let token = login.json()["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or("the load-test login answered no access_token")?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{token}")?;
        writeln!(out, "listening on {addr}")?;
        out.flush()?;
        drop(out);
        server.await??;
        Ok::<(), BoxError>(())
    })
}
