//! Run with `scripts/demo.sh` (writes a `.env` with fresh demo secrets, then runs this), or
//! set `JWT_SECRET` yourself and `cargo run -p example-notes`.
//!
//! Serves the notes service on http://127.0.0.1:3000 (`BIND`, `PORT`), data in
//! `example-notes.sqlite3` (`DATABASE_PATH`), JSON logs on stdout. Try:
//!
//! ```text
//! curl -i localhost:3000/auth/register -H 'content-type: application/json' \
//!      -d '{"email":"ada@example.com","password":"a long passphrase"}'
//! TOKEN=$(curl -s localhost:3000/auth/login -H 'content-type: application/json' \
//!      -d '{"email":"ada@example.com","password":"a long passphrase"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
//! curl -i localhost:3000/notes -H "authorization: Bearer $TOKEN" \
//!      -H 'content-type: application/json' -d '{"title":"hi","body":"there"}'
//! curl -i localhost:3000/ai/complete -H "authorization: Bearer $TOKEN" \
//!      -H 'content-type: application/json' -d '{"prompt":"hello","max_tokens":50}'
//! ```

use std::collections::HashMap;

use example_notes::NotesConfig;
use hardening_core::HardeningConfig;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    if let Err(e) = hardening_core::init_json_logs() {
        eprintln!("example-notes: cannot set up logging: {e}");
        return std::process::ExitCode::FAILURE;
    }
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // A clear message naming what to change, not a panic.
            tracing::error!("example-notes cannot start: {e}");
            eprintln!("example-notes cannot start: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let vars = environment(".env");
    let config = NotesConfig::from_vars(|name| vars.get(name).cloned())?;
    let hardening = hardening_config(&vars)?;
    let app = example_notes::app(&config, hardening)?;
    let listener = TcpListener::bind(config.addr).await?;
    tracing::info!(database = %config.database.display(), "listening on http://{}", listener.local_addr()?);
    hardening_core::serve(listener, app).await?;
    Ok(())
}

/// The `HARDENING_*` variables read, in any case, as `HardeningConfig::from_env` reads them:
/// `hardening_body_limit` is refused as a typo, not ignored.
fn hardening_config(
    vars: &HashMap<String, String>,
) -> Result<HardeningConfig, hardening_core::ConfigError> {
    HardeningConfig::from_vars(vars.iter().filter(|(name, _)| {
        name.get(..10)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("HARDENING_"))
    }))
}

/// The process environment over `KEY=value` lines from `path` (a missing file is fine: the
/// environment may come from elsewhere). The environment wins.
fn environment(path: &str) -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        .collect();
    vars.extend(
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
    );
    vars
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lower-case `hardening_body_limit` was filtered out before `HardeningConfig` saw it,
    /// and the service started with the default, where `from_env` refuses it.
    #[test]
    fn hardening_variables_in_another_case_are_refused_not_ignored() {
        let vars = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let err = hardening_config(&vars(&[("hardening_body_limit", "5")]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("did you mean HARDENING_BODY_LIMIT"), "{err:?}");
        let ok = hardening_config(&vars(&[("HARDENING_BODY_LIMIT", "5"), ("PATH", "/bin")]));
        assert!(ok.is_ok(), "{ok:?}");
    }
}
