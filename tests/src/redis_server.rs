//! A private `redis-server` for tests and benchmarks: on a free loopback port, persistence
//! off, killed when dropped. Needs the Debian `redis-server` package (installed by
//! `scripts/install-test-deps.sh`).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A running `redis-server` child process.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts one on a free port of 127.0.0.1 and waits (at most 5 s) until it answers PING.
    ///
    /// # Panics
    /// If `redis-server` is not installed or does not come up: the test cannot run.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Like [`start`](Self::start), with more `redis-server` arguments after ours (e.g.
    /// `["--maxmemory-policy", "allkeys-lru"]`); [`restart`](Self::restart) keeps them. The
    /// default user must still answer PING without a password.
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub fn start_with(extra: &[&str]) -> Self {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("no free loopback port: {e}"));
        let mut server = Self {
            child: None,
            port,
            extra: extra.iter().map(|&a| a.to_owned()).collect(),
        };
        server.spawn();
        server
    }

    /// `redis://127.0.0.1:{port}/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Sends it `args` as one command on a connection of its own, and returns the reply.
    ///
    /// # Panics
    /// When the server does not answer, or answers with an error: the test fails.
    pub async fn command<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let client =
            redis::Client::open(self.url()).unwrap_or_else(|e| panic!("not a Redis URL: {e}"));
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("no connection to redis-server: {e}"));
        redis::cmd(args[0])
            .arg(&args[1..])
            .query_async(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    /// Makes it evict keys, as its `maxmemory-policy` allows: its memory capped at 2 MB, then
    /// filled past that by another client. Returns its count of evicted keys.
    ///
    /// # Panics
    /// When it evicted nothing (its policy is `noeviction`): the test cannot go on.
    pub async fn evict_keys(&self) -> u64 {
        let () = self.command(&["CONFIG", "SET", "maxmemory", "2mb"]).await;
        let filler = "x".repeat(10_000);
        for i in 0..400 {
            let () = self
                .command(&["SET", &format!("filler:{i}"), &filler])
                .await;
        }
        let stats: String = self.command(&["INFO", "stats"]).await;
        let evicted = stats
            .lines()
            .find_map(|line| line.strip_prefix("evicted_keys:"))
            .and_then(|count| count.trim().parse().ok())
            .unwrap_or_default();
        assert!(evicted > 0, "the test's Redis evicted nothing: {stats}");
        evicted
    }

    /// How many `CONFIG` commands (`CONFIG GET`, `CONFIG SET`, …) it has run.
    pub async fn config_calls(&self) -> u64 {
        self.calls("cmdstat_config").await
    }

    /// How many `PING`s it has answered (those of its start-up checks too).
    pub async fn ping_calls(&self) -> u64 {
        self.calls("cmdstat_ping:").await
    }

    /// How many commands it has run whose `INFO commandstats` lines start with `prefix`.
    async fn calls(&self, prefix: &str) -> u64 {
        let info: String = self.command(&["INFO", "commandstats"]).await;
        info.lines()
            .filter(|line| line.starts_with(prefix))
            .filter_map(|line| line.split("calls=").nth(1))
            .filter_map(|calls| calls.split(',').next()?.parse::<u64>().ok())
            .sum()
    }

    /// Kills the server (the port stays reserved for [`restart`](Self::restart)).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}): run scripts/install-test-deps.sh")
            });
        self.child = Some(child);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        for _ in 0..100 {
            if ping(addr) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        panic!(
            "redis-server on port {} did not answer PING within 5 s",
            self.port
        );
    }
}

fn ping(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

/// The password of the ACL user in [`hiding_the_eviction_policy`]'s first server: it must
/// never be logged.
pub const ACL_PASSWORD: &str = "hunter2-not-logged";

/// Two servers whose `maxmemory-policy` cannot be read, each with the URL to connect to:
/// `CONFIG` refused by the ACL of the URL's user (as managed services do), with an evicting
/// policy behind it, and `CONFIG` renamed away. Keep the servers while using the URLs.
pub fn hiding_the_eviction_policy() -> [(RedisServer, String); 2] {
    let password = format!(">{ACL_PASSWORD}");
    let acl = RedisServer::start_with(&[
        "--maxmemory-policy",
        "allkeys-lru",
        "--user",
        "app",
        "on",
        &password,
        "~*",
        "&*",
        "+@all",
        "-config",
    ]);
    let acl_url = acl
        .url()
        .replace("redis://", &format!("redis://app:{ACL_PASSWORD}@"));
    let renamed = RedisServer::start_with(&["--rename-command", "CONFIG", ""]);
    let renamed_url = renamed.url();
    [(acl, acl_url), (renamed, renamed_url)]
}

/// Checks that `log`'s warning number `index` says the eviction policy of `store` could not
/// be checked, with the reason and the fix, and that nothing logged holds [`ACL_PASSWORD`]
/// (nor any part of it from `hunter2` on).
///
/// # Panics
/// When it does not: the test fails.
pub fn assert_eviction_unchecked(log: &crate::Captured, index: usize, store: &str) {
    let logged = log.warnings();
    assert_eq!(logged.len(), index + 1, "{}", log.text());
    let message = logged[index]["fields"]["message"].as_str().unwrap_or("");
    let unchecked = format!("cannot check the eviction policy{store}");
    assert!(message.contains(&unchecked), "{message}");
    assert!(
        message.contains("maxmemory-policy is noeviction"),
        "{message}"
    );
    assert!(
        logged[index]["fields"]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{}",
        log.text()
    );
    assert!(!log.text().contains("hunter2"), "{}", log.text());
}

/// Waits (bounded, see [`eventually`](crate::eventually)) until `log` holds an error, then
/// checks that it is the only one and says that the Redis of `store` at `url` (a
/// [`BlackHoleProxy`]'s or a [`RedisServer`]'s), found after start-up, evicts
/// (`allkeys-lru`), with the fix, naming the address, never the URL.
///
/// # Panics
/// When it does not: the test fails.
pub async fn assert_evicting_logged(log: &crate::Captured, store: &str, url: &str) {
    let fields = the_eviction_error(log, store, url).await;
    assert_eq!(fields["maxmemory_policy"], "allkeys-lru");
}

/// The errors of target `hardening` in `log` about a Redis that evicts keys (its policy, or
/// its count of evicted keys): not the rate limiter's error about an outage, which a
/// black-holed connection also causes.
pub fn eviction_errors(log: &crate::Captured) -> Vec<serde_json::Value> {
    log.errors()
        .into_iter()
        .filter(|e| {
            e["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("evict"))
        })
        .collect()
}

/// Waits (bounded, see [`eventually`](crate::eventually)) until `log` holds an error about
/// the Redis of `store` at `url` evicting keys (by its policy or its count of evicted keys),
/// checks that it is the only one, that it says what to change, and that the log names the
/// address only (never a URL, nor the password of [`hiding_the_eviction_policy`]'s user);
/// returns the error's fields.
///
/// # Panics
/// When it does not: the test fails.
pub async fn the_eviction_error(
    log: &crate::Captured,
    store: &str,
    url: &str,
) -> serde_json::Value {
    assert!(
        crate::eventually(async || !eviction_errors(log).is_empty()).await,
        "no error about the evicting Redis found after start-up: {}",
        log.text()
    );
    let errors = eviction_errors(log);
    assert_eq!(errors.len(), 1, "{}", log.text());
    let fields = errors[0]["fields"].clone();
    assert_eq!(fields["store"], store);
    assert_eq!(
        url,
        format!("redis://{}/", fields["redis"].as_str().unwrap_or_default())
    );
    let message = fields["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("set maxmemory-policy noeviction"),
        "{message}"
    );
    let text = log.text();
    assert!(
        !text.contains("redis://") && !text.contains(ACL_PASSWORD),
        "{text}"
    );
    fields
}

/// A TCP proxy on 127.0.0.1 in front of a [`RedisServer`], as a proxy or load balancer
/// (envoy, twemproxy, an NLB) stands in front of a Redis. [`black_hole`](Self::black_hole)
/// turns the connections it holds into black holes, as a proxy whose Redis died (or a Redis
/// paused for good) is: what their clients send is read (so acknowledged) and dropped,
/// nothing comes back, and they are never closed. Connections made afterwards are forwarded
/// as before, or to another server after [`forward_new_to`](Self::forward_new_to).
/// [`open`](Self::open) counts the connections their clients still hold, and
/// [`swallowed`](Self::swallowed) the commands the black holes dropped.
/// [`loading`](Self::loading) makes it answer every command itself, on every connection, with
/// the error a Redis loading its data set after a restart answers (`-LOADING …`), as no
/// real server can be kept in that state on demand. Stops, closing every connection, when
/// dropped.
#[derive(Debug)]
pub struct BlackHoleProxy {
    addr: SocketAddr,
    /// How many connections were accepted: each is numbered by its place.
    accepted: Arc<AtomicU64>,
    /// How many of them are still open.
    open: Arc<AtomicU64>,
    /// Connections numbered below this are black holes.
    holed_below: Arc<AtomicU64>,
    /// The port (on 127.0.0.1) of the server new connections are forwarded to.
    upstream_port: Arc<AtomicU16>,
    /// What the black holes read from their clients and dropped.
    swallowed: Swallowed,
    /// Whether every command is answered `-LOADING …` (see [`loading`](Self::loading)).
    loading: Arc<AtomicBool>,
    accepting: tokio::task::JoinHandle<()>,
}

/// The bytes the black holes of a [`BlackHoleProxy`] read and dropped, in the order read.
type Swallowed = Arc<std::sync::Mutex<Vec<u8>>>;

impl BlackHoleProxy {
    /// Starts one in front of `server`.
    ///
    /// # Panics
    /// If no loopback port is free.
    pub async fn start(server: &RedisServer) -> Self {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap_or_else(|e| panic!("no free loopback port: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("no local address: {e}"));
        let upstream_port = Arc::new(AtomicU16::new(server.port));
        let accepted = Arc::new(AtomicU64::new(0));
        let open = Arc::new(AtomicU64::new(0));
        let holed_below = Arc::new(AtomicU64::new(0));
        let swallowed = Swallowed::default();
        let loading = Arc::new(AtomicBool::new(false));
        let (count, holes, port) = (accepted.clone(), holed_below.clone(), upstream_port.clone());
        let (still_open, dropped, is_loading) = (open.clone(), swallowed.clone(), loading.clone());
        let accepting = tokio::spawn(async move {
            // Dropped with this task: every connection ends with the proxy.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let number = count.fetch_add(1, Ordering::Relaxed);
                let upstream =
                    SocketAddr::from((Ipv4Addr::LOCALHOST, port.load(Ordering::Relaxed)));
                still_open.fetch_add(1, Ordering::Relaxed);
                let (holes, still_open) = (holes.clone(), still_open.clone());
                let (dropped, loading) = (dropped.clone(), is_loading.clone());
                connections.spawn(async move {
                    let modes = Modes {
                        number,
                        holed_below: holes,
                        swallowed: dropped,
                        loading,
                    };
                    forward(client, upstream, modes).await;
                    still_open.fetch_sub(1, Ordering::Relaxed);
                });
            }
        });
        Self {
            addr,
            accepted,
            open,
            holed_below,
            upstream_port,
            swallowed,
            loading,
            accepting,
        }
    }

    /// Answers every command from now on, on every connection (those accepted already too),
    /// with `-LOADING Redis is loading the dataset in memory`, as a Redis restarted with
    /// persistence does until its data set is loaded; none reaches the server.
    pub fn loading(&self) {
        self.loading.store(true, Ordering::Relaxed);
    }

    /// `redis://127.0.0.1:{port}/` of the proxy.
    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// Makes every connection accepted so far a black hole; later ones are forwarded.
    pub fn black_hole(&self) {
        let accepted = self.accepted.load(Ordering::Relaxed);
        self.holed_below.store(accepted, Ordering::Relaxed);
    }

    /// How many of the connections accepted so far are still open: neither closed by their
    /// client nor ended by their server (a black hole's ends only with its client).
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// How many `command` commands (`EXISTS`, `EVALSHA`: the name as the client sends it)
    /// the black holes have read and dropped: sent, never answered.
    pub fn swallowed(&self, command: &str) -> usize {
        // A command's name, as a RESP bulk string: `$6\r\nEXISTS\r\n`.
        let name = format!("${}\r\n{command}\r\n", command.len());
        let swallowed = self
            .swallowed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        swallowed
            .windows(name.len())
            .filter(|w| *w == name.as_bytes())
            .count()
    }

    /// Forwards the connections accepted from now on to `server`; those already accepted
    /// keep theirs.
    pub fn forward_new_to(&self, server: &RedisServer) {
        self.upstream_port.store(server.port, Ordering::Relaxed);
    }
}

impl Drop for BlackHoleProxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// What one connection of a [`BlackHoleProxy`] does besides forwarding.
struct Modes {
    /// Its place among the connections accepted.
    number: u64,
    /// Connections numbered below this are black holes.
    holed_below: Arc<AtomicU64>,
    /// What the black holes read and dropped.
    swallowed: Swallowed,
    /// Whether every command is answered `-LOADING …`.
    loading: Arc<AtomicBool>,
}

/// What a Redis loading its data set answers every command.
const LOADING: &[u8] = b"-LOADING Redis is loading the dataset in memory\r\n";

/// The length of the first whole command in `bytes` (a RESP array of bulk strings, as
/// clients send, or an inline command up to its line's end), or `None` until it has come.
fn command_len(bytes: &[u8]) -> Option<usize> {
    let line_end = |from: usize| {
        bytes
            .get(from..)?
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|at| from + at)
    };
    let number = |from: usize, to: usize| -> Option<usize> {
        std::str::from_utf8(bytes.get(from..to)?).ok()?.parse().ok()
    };
    let end = line_end(0)?;
    if bytes.first() != Some(&b'*') {
        return Some(end + 2);
    }
    let parts = number(1, end)?;
    let mut at = end + 2;
    for _ in 0..parts {
        let end = line_end(at)?;
        let len: usize = number(at + 1, end)?;
        at = end + 2 + len + 2;
        if bytes.len() < at {
            return None;
        }
    }
    Some(at)
}

/// Answers `-LOADING …` for each whole command in `pending` (what the client sent, not yet
/// answered), keeping the rest of a command that has not all come.
async fn answer_loading(
    client: &mut tokio::net::tcp::WriteHalf<'_>,
    pending: &mut Vec<u8>,
) -> std::io::Result<()> {
    while let Some(len) = command_len(pending) {
        pending.drain(..len);
        client.write_all(LOADING).await?;
    }
    Ok(())
}

/// Forwards the connection both ways until either side closes, or until it is made a black
/// hole: then reads what the client sends, forever, keeps it in `swallowed`, and answers
/// nothing. While the proxy is [`loading`](BlackHoleProxy::loading), answers every command
/// itself.
async fn forward(mut client: tokio::net::TcpStream, upstream: SocketAddr, modes: Modes) {
    let Modes {
        number,
        holed_below,
        swallowed,
        loading,
    } = modes;
    let mut pending = Vec::new();
    let swallow = |bytes: &[u8]| {
        swallowed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(bytes);
    };
    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
        return;
    };
    let (mut from_client, mut from_server) = ([0u8; 4096], [0u8; 4096]);
    while number >= holed_below.load(Ordering::Relaxed) {
        let (mut client_read, mut client_write) = client.split();
        let (mut server_read, mut server_write) = server.split();
        tokio::select! {
            read = client_read.read(&mut from_client) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) if loading.load(Ordering::Relaxed) => {
                    pending.extend_from_slice(&from_client[..n]);
                    if answer_loading(&mut client_write, &mut pending).await.is_err() {
                        return;
                    }
                }
                Ok(n) if number >= holed_below.load(Ordering::Relaxed) => {
                    if server_write.write_all(&from_client[..n]).await.is_err() {
                        return;
                    }
                }
                Ok(n) => swallow(&from_client[..n]),
            },
            read = server_read.read(&mut from_server) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) if number >= holed_below.load(Ordering::Relaxed) => {
                    if client_write.write_all(&from_server[..n]).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
            },
        }
    }
    drop(server);
    while let Ok(n @ 1..) = client.read(&mut from_client).await {
        swallow(&from_client[..n]);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Drops `store` (a Redis store connected to `server`), then checks that it asks `server`
/// nothing more: no `CONFIG` command in a second, five times the 200 ms the tests check the
/// eviction policy every (a check under way when it was dropped is let end first).
///
/// # Panics
/// When the store still checks: the test fails.
pub async fn assert_checks_stop_with<T>(store: T, server: &RedisServer) {
    drop(store);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = server.config_calls().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        server.config_calls().await,
        before,
        "the eviction policy was still checked after the store was dropped"
    );
}

#[cfg(test)]
mod tests {
    use super::command_len;

    #[test]
    fn a_command_is_whole_once_its_last_bulk_string_has_come() {
        let exists = b"*2\r\n$6\r\nEXISTS\r\n$3\r\nk:1\r\n";
        assert_eq!(command_len(exists), Some(exists.len()));
        for cut in 1..exists.len() {
            assert_eq!(command_len(&exists[..cut]), None, "{cut}");
        }
        let two = [&exists[..], &exists[..]].concat();
        assert_eq!(command_len(&two), Some(exists.len()));
        assert_eq!(command_len(b"PING\r\n*1"), Some(6));
    }
}
