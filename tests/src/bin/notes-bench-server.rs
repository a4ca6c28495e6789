//! Run with: `cargo run --release -p hardening-tests --bin notes-bench-server -- VARIANT PORT [DB]`
//!
//! Serves example-notes on `127.0.0.1:PORT` (0 for any free port) for
//! `scripts/load-notes.sh`: `hardened` is `example_notes::app` (the whole service,
//! `Hardening` included, per-IP limit lifted so the load never sees a 429), `bare` is
//! `example_notes::routes` (the same routes and their own auth layer, no `Hardening`).
//!
//! The SQLite file is `DB` (default: one under the temp directory); it gets one user with
//! ten notes. Stdout's first line is a bearer token for that user, the second
//! `listening on 127.0.0.1:PORT` once the socket is bound. Secrets are fresh random bytes.

#![allow(clippy::print_stdout)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use example_notes::{Db, NotesConfig, Sessions};
use hardening_core::HardeningConfig;
use hardening_core::auth::Passwords;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// 48 random bytes from the kernel, hex-encoded.
fn secret() -> Result<String, BoxError> {
    let mut bytes = [0u8; 48];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: notes-bench-server <hardened|bare> <port> [sqlite-file]";
    let hardened = match args.next().as_deref() {
        Some("hardened") => true,
        Some("bare") => false,
        _ => return Err(usage.into()),
    };
    let port: u16 = args.next().and_then(|p| p.parse().ok()).ok_or(usage)?;
    let database = args.next().map(PathBuf::from).unwrap_or_else(|| {
        std::env::temp_dir().join(format!(
            "notes-bench-{}-{}.sqlite3",
            if hardened { "hardened" } else { "bare" },
            std::process::id()
        ))
    });
    let (jwt_secret, cookie_key) = (secret()?, secret()?);
    let database_var = database.to_str().ok_or("the sqlite path is not UTF-8")?;
    let vars = [
        ("JWT_SECRET", jwt_secret.as_str()),
        ("COOKIE_KEY", cookie_key.as_str()),
        ("DATABASE_PATH", database_var),
    ];
    let config = NotesConfig::from_vars(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    })?;

    // Single-threaded, like bench-server: the comparison is per-core cost.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        // The user and its notes go straight into the database; the token is the one
        // `/auth/login` would issue (same signer, same claims), so both variants get one.
        let db = Db::open(&config.database)?;
        let hash = Passwords::new()
            .hash(b"a long passphrase for the load test")
            .await?;
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
        let token = Sessions::new(&config.jwt_secret, &config.cookie_key).issue(id, false)?;

        let app = if hardened {
            let hardening = HardeningConfig::from_vars([
                ("HARDENING_RATE_LIMIT_PER_MINUTE", "1000000000"),
                ("HARDENING_RATE_LIMIT_BURST", "1000000000"),
            ])?;
            example_notes::app(&config, hardening)?
        } else {
            example_notes::routes(&config, db)?
        };
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{token}")?;
        writeln!(out, "listening on {}", listener.local_addr()?)?;
        out.flush()?;
        drop(out);
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await?;
        Ok::<(), BoxError>(())
    })
}
