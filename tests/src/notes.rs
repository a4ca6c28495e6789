//! example-notes on a throw-away SQLite file with fresh secrets: shared by the end-to-end and
//! browser tests and the load-test server.

use std::io::Read;
use std::path::PathBuf;

use example_notes::NotesConfig;

/// A notes configuration whose database file (and its WAL files) is removed on drop.
#[derive(Debug)]
pub struct TempNotes {
    /// The configuration: a fresh random `JWT_SECRET`, a unique temp file.
    pub config: NotesConfig,
    db: PathBuf,
}

/// 48 random bytes from the kernel, hex-encoded: a fresh demo secret.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 48];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("/dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl TempNotes {
    /// A configuration named after `purpose`, with these extra variables (`ADMIN_EMAIL`,
    /// `AI_DAILY_TOKENS`, …).
    pub fn new(purpose: &str, extra: &[(&str, &str)]) -> Self {
        let jwt_secret = random_secret();
        let db = std::env::temp_dir().join(format!(
            "example-notes-{purpose}-{}-{}.sqlite3",
            std::process::id(),
            &random_secret()[..16]
        ));
        let path = db.to_str().expect("a UTF-8 temp dir").to_owned();
        let base = [
            ("JWT_SECRET", jwt_secret.as_str()),
            ("DATABASE_PATH", path.as_str()),
        ];
        let config = NotesConfig::from_vars(|name| {
            extra
                .iter()
                .chain(&base)
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
        .expect("a valid test configuration");
        Self { config, db }
    }

    /// `HARDENING_*` settings for tests where every request comes from 127.0.0.1: the per-IP
    /// request limit lifted to `per_minute` (its own tests live with the core crate).
    pub fn hardening(per_minute: &str) -> hardening_core::HardeningConfig {
        hardening_core::HardeningConfig::from_vars([
            ("HARDENING_RATE_LIMIT_PER_MINUTE", per_minute),
            ("HARDENING_RATE_LIMIT_BURST", per_minute),
        ])
        .expect("valid HARDENING_* settings")
    }

    /// The full hardened service, served on 127.0.0.1:0.
    pub async fn serve(&self) -> std::net::SocketAddr {
        let app = example_notes::app(&self.config, Self::hardening("100000"))
            .expect("the notes app starts");
        crate::serve(app).await
    }
}

impl Drop for TempNotes {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.db.display()));
        }
    }
}
