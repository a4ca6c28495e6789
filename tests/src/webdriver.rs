//! A minimal WebDriver client for headless Chromium through chromedriver: enough to open a
//! page, run a script and read the result. Used by the browser tests.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::exchange;

/// A running chromedriver with one headless Chromium session; both end on drop.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    profile: std::path::PathBuf,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a headless Chromium session.
    pub async fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (apt-get install chromium-driver)");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        // Accepting connections is not yet ready for a session: a session asked for too
        // early had its connection reset under load. Its `/status` says when it is.
        let mut ready = false;
        for _ in 0..100 {
            if driver_ready(addr).await {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ready, "chromedriver did not report ready within 10 s");
        let profile = std::env::temp_dir().join(format!("hardening-chromium-{port}"));
        let mut browser = Browser {
            driver,
            addr,
            session: String::new(),
            profile,
        };
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                format!("--user-data-dir={}", browser.profile.display()),
            ],
        }}}});
        let created = browser.call("POST", "/session", Some(caps)).await;
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        browser
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        let reply = exchange(self.addr, request.as_bytes()).await;
        reply.json()["value"].clone()
    }

    /// Navigates to `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        let path = format!("/session/{}/url", self.session);
        self.call("POST", &path, Some(json!({ "url": url }))).await;
    }

    /// Reloads the page as the reload button does (the browser revalidates what it cached)
    /// and waits for it to load.
    pub async fn reload(&self) {
        let path = format!("/session/{}/refresh", self.session);
        self.call("POST", &path, Some(json!({}))).await;
    }

    /// Runs `script` (a function body; `return` a value) in the page.
    pub async fn run(&self, script: &str) -> Value {
        let path = format!("/session/{}/execute/sync", self.session);
        self.call("POST", &path, Some(json!({ "script": script, "args": [] })))
            .await
    }
}

/// Whether chromedriver at `addr` answers `GET /status` with `"ready": true`. Any failure
/// (not listening yet, reset, slow) is a no, for the caller to ask again.
async fn driver_ready(addr: SocketAddr) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(b"GET /status HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
            .await
            .ok()?;
        // Read until the answer says it (chromedriver may keep the connection open).
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                return Some(false);
            }
            answer.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&answer)
                .replace(' ', "")
                .contains("\"ready\":true")
            {
                return Some(true);
            }
        }
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), ask).await,
        Ok(Some(true))
    )
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Closing the session ends Chromium (a blocking call: drop cannot await); killing
        // chromedriver ends the rest.
        if !self.session.is_empty()
            && let Ok(mut stream) =
                std::net::TcpStream::connect_timeout(&self.addr, Duration::from_secs(2))
        {
            use std::io::{Read, Write};
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let request = format!(
                "DELETE /session/{} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
                self.session, self.addr
            );
            if stream.write_all(request.as_bytes()).is_ok() {
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
