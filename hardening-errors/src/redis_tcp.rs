//! How the Redis stores connect (feature `redis`): `hardening-auth`'s denylist and
//! `hardening-ratelimit`'s limiter.

use std::time::Duration;

use redis::io::tcp::{TcpSettings, socket2::TcpKeepalive};
use redis::{ConnectionInfo, IntoConnectionInfo, RedisResult};

/// How long sent data may go unacknowledged before the connection counts as dead.
const UNACKNOWLEDGED: Duration = Duration::from_secs(10);

/// `url`'s connection, with the TCP settings a store on a request's path wants:
///
/// - Nagle off: each command is a small write that must not wait for the last one's ACK.
/// - A peer gone without a word (a host powered off, a partition that drops packets) is
///   noticed within 10 s of a command going unacknowledged (`TCP_USER_TIMEOUT`, Linux), and
///   on an idle connection by keepalive probes (after 30 s, then every 10 s, 3 of them), so
///   the connection manager connects again instead of waiting on the kernel's retries
///   (about 15 minutes). A Redis that is slow or paused still acknowledges what it is sent:
///   its late replies still arrive.
///
/// ```
/// let info = hardening_errors::redis_connection_info("redis://127.0.0.1:6379/0")?;
/// assert!(info.tcp_settings().nodelay());
/// # Ok::<(), redis::RedisError>(())
/// ```
pub fn redis_connection_info(url: &str) -> RedisResult<ConnectionInfo> {
    let keepalive = TcpKeepalive::new()
        .with_time(Duration::from_secs(30))
        .with_interval(Duration::from_secs(10))
        .with_retries(3);
    let tcp = TcpSettings::default()
        .set_nodelay(true)
        .set_keepalive(keepalive);
    #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
    let tcp = tcp.set_user_timeout(UNACKNOWLEDGED);
    #[cfg(not(any(target_os = "android", target_os = "fuchsia", target_os = "linux")))]
    let _ = UNACKNOWLEDGED;
    Ok(url.into_connection_info()?.set_tcp_settings(tcp))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without these, redis-rs connects with Nagle on, no keepalive and no user timeout: a
    /// black-holed Redis kept a store in its failure mode until the kernel gave up.
    #[test]
    fn the_stores_connect_with_nagle_off_and_dead_peers_noticed() {
        let info = redis_connection_info("redis://:pw@127.0.0.1:6390/2").unwrap();
        let tcp = info.tcp_settings();
        assert!(tcp.nodelay());
        assert!(tcp.keepalive().is_some());
        #[cfg(target_os = "linux")]
        assert_eq!(tcp.user_timeout(), Some(UNACKNOWLEDGED));
        // The URL's own settings are kept.
        assert_eq!(info.addr().to_string(), "127.0.0.1:6390");
        assert_eq!(info.redis_settings().db(), 2);
        assert!(redis_connection_info("http://nope").is_err());
    }
}
