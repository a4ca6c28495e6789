//! Serving a router or any tower service: peer addresses for `ClientIp`, a header-read
//! timeout against slow clients, an idle timeout for keep-alive connections, and graceful
//! shutdown on SIGTERM or ctrl-c.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tower::Service;

use crate::hardening::{warn_if_above, warn_loosened};
use crate::{ConfigError, RequestId, SecurityEvent};

/// Serves `app` (a [`Router`](axum::Router), or any tower service: see [`Server`]) on
/// `listener` with [`Server`]'s defaults until SIGTERM or ctrl-c.
///
/// ```no_run
/// use axum::{Router, routing::get};
/// use hardening_core::Hardening;
///
/// # async fn run() -> std::io::Result<()> {
/// let app = Router::new().route("/", get(|| async { "hi" })).layer(Hardening::strict());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// hardening_core::serve(listener, app).await
/// # }
/// ```
pub async fn serve<S, B>(listener: TcpListener, app: S) -> io::Result<()>
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<axum::BoxError>,
{
    Server::new().serve(listener, app).await
}

/// An HTTP/1.1 server with safe defaults for a [`Router`](axum::Router) or any tower
/// service that takes a `Request<axum::body::Body>` (a `ServiceBuilder` stack with
/// [`Hardening`](crate::Hardening) around a `service_fn`, for one):
///
/// - each request carries the peer address (`ConnectInfo<SocketAddr>`), which
///   [`Hardening`](crate::Hardening) turns into [`ClientIp`](crate::ClientIp);
/// - a client has 10 s to send a request's headers (slowloris): a new connection from when
///   it is accepted, a kept-alive one from the first byte of its next request; one that began
///   a request and did not finish its headers in time is reported as the security event
///   `head_timed_out` (a silent new connection closed the same way is not; a slow head
///   pipelined behind another request, or right after a request whose body the service
///   left unread, is not told apart from idling: it has the idle timeout, and no event);
/// - a keep-alive connection idle between requests is closed after 75 s
///   ([`idle_timeout`](Self::idle_timeout)), longer than the 60 s a proxy or load balancer
///   in front keeps its upstream connections by default, so that it closes them first;
/// - a request head (request line and header fields) over 64 KiB is answered 431 by hyper
///   and the connection closed ([`max_head_size`](Self::max_head_size));
/// - a response write that waits 60 s for a client that takes none of it is given up and the
///   connection closed (a stopped reader would otherwise hold its connection and response
///   forever; nginx's `send_timeout`); a client that takes its response slower than
///   240 bytes/s meanwhile is cut off too, and reported as the security event `slow_read`
///   ([`min_send_rate`](Self::min_send_rate));
/// - on SIGTERM or ctrl-c it stops accepting, lets in-flight requests finish (and a
///   connection that has not begun one yet 100 ms to begin it), and closes what is still
///   open after the drain deadline (30 s), or at once on a second signal;
/// - a panic's text is printed with its secrets redacted
///   ([`redact_panic_messages`](hardening_errors::redact_panic_messages));
/// - at most 10 000 connections are served at once, or three quarters of the process's open
///   file limit (`ulimit -n`) when that is lower, upgraded ones included
///   ([`max_connections`](Self::max_connections)); at the cap, a connection idle between
///   requests is closed to make room for a new client.
///
/// Protocol upgrades (WebSocket) are served: a 101 hands the connection to the route, with
/// the send timeout still on its writes; the drain does not wait for upgraded connections
/// (nor does `axum::serve`'s). HTTP/2 is not served; use `axum::serve` with
/// `into_make_service_with_connect_info::<SocketAddr>()` for it.
///
/// The service's error is [`Infallible`], as `axum::serve` requires: hyper answers an `Err`
/// by closing the connection with no response at all (not even a 500), and
/// [`Hardening`](crate::Hardening) passes an inner service's `Err` on unchanged (logging
/// the request as `service_error`). Turn errors into responses inside, in the
/// `service_fn` or with axum's `HandleErrorLayer`. The service is asked whether it is ready
/// (`poll_ready`) before each request, on a clone of it for that request.
///
/// ```no_run
/// use std::convert::Infallible;
/// use axum::body::Body;
/// use hardening_core::Hardening;
/// use http::{Request, Response};
/// use tower::{ServiceBuilder, service_fn};
///
/// # async fn run() -> std::io::Result<()> {
/// let app = ServiceBuilder::new()
///     .layer(Hardening::strict())
///     .service(service_fn(|_: Request<Body>| async {
///         Ok::<_, Infallible>(Response::new(Body::from("hi")))
///     }));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// hardening_core::serve(listener, app).await
/// # }
/// ```
///
/// ```no_run
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use hardening_core::{Hardening, Server};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let app = Router::new().route("/", get(|| async { "hi" })).layer(Hardening::strict());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// Server::new()
///     .header_read_timeout(Duration::from_secs(5))?
///     .idle_timeout(Duration::from_secs(30))?
///     .max_connections(10_000)?
///     .serve(listener, app)
///     .await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct Server {
    header_read_timeout: Duration,
    idle_timeout: Duration,
    send_timeout: Duration,
    drain_timeout: Duration,
    max_connections: ConnectionCap,
    max_head_size: usize,
    /// Bytes a second; `None` once turned off.
    min_send_rate: Option<u32>,
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

impl Server {
    /// 10 s to read request headers, 75 s for a keep-alive connection to idle between
    /// requests, 60 s for a waiting response write, 30 s to drain on shutdown, at most 10 000
    /// connections at once (fewer under a low descriptor limit: see
    /// [`max_connections`](Self::max_connections)).
    pub fn new() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            send_timeout: DEFAULT_SEND_TIMEOUT,
            drain_timeout: Duration::from_secs(30),
            max_connections: ConnectionCap::Default,
            max_head_size: DEFAULT_MAX_HEAD_SIZE,
            min_send_rate: Some(DEFAULT_MIN_SEND_RATE),
        }
    }

    /// The shortest header-read timeout (1 s). Its timer runs from when a connection is
    /// accepted and closes it without a response when it fires: with zero, only a request
    /// already there when the connection is accepted is answered; with a few milliseconds,
    /// only local clients. A client on a slow mobile link needs hundreds of milliseconds for
    /// one round trip.
    pub const MIN_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(1);

    /// How long a client may take to send a request's headers (default 10 s): a new
    /// connection's first request from when it is accepted (a connection that sends nothing
    /// is closed then), a kept-alive connection's next one from its first byte (however
    /// slowly the rest comes; waiting for that byte is [`idle_timeout`](Self::idle_timeout)'s).
    /// The connection is closed without a response when it passes. One below
    /// [`MIN_HEADER_READ_TIMEOUT`](Self::MIN_HEADER_READ_TIMEOUT) is an error. One too long
    /// to add to the clock (such as `Duration::MAX`) counts as 100 years. Longer than the
    /// default loosens it (slow clients hold their connections longer) and logs a warning
    /// naming the value.
    ///
    /// # Errors
    ///
    /// [`ConfigError::HeaderReadTimeoutTooShort`] below the minimum.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Result<Self, ConfigError> {
        self.header_read_timeout = checked_timeout(
            "Server::header_read_timeout",
            timeout,
            (Self::MIN_HEADER_READ_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT),
            |given, minimum| ConfigError::HeaderReadTimeoutTooShort { given, minimum },
        )?;
        Ok(self)
    }

    /// The shortest idle timeout (1 s): a client sends its next request once it has read the
    /// response, at least one round trip after the server finished it (hundreds of
    /// milliseconds on a slow mobile link).
    pub const MIN_IDLE_TIMEOUT: Duration = Duration::from_secs(1);

    /// How long a keep-alive connection may wait between requests (default 75 s): from the
    /// end of a response until the next request's headers are all in (each of which has the
    /// [`header_read_timeout`](Self::header_read_timeout) once begun). Then the connection is
    /// closed, with no event. Keep it longer than the idle timeout of a reverse proxy or load
    /// balancer in front that reuses connections (nginx's upstream `keepalive_timeout` and
    /// AWS's load balancers: 60 s by default): a proxy that keeps a connection longer than
    /// the server may send a request on it just as the server closes it, and answer that
    /// request 502. The default is nginx's own `keepalive_timeout`, 15 s more than those.
    /// Shorter frees idle connections (and their memory) sooner, behind no proxy; shorter
    /// than the header-read timeout, it also bounds a new connection's first head. One below
    /// [`MIN_IDLE_TIMEOUT`](Self::MIN_IDLE_TIMEOUT) is an error. One too long to add to the
    /// clock (such as `Duration::MAX`) counts as 100 years. Longer than the default loosens
    /// it (idle clients hold their connections longer) and logs a warning naming the value.
    ///
    /// ```
    /// use std::time::Duration;
    /// use hardening_core::Server;
    ///
    /// // Behind a load balancer whose idle timeout is 350 s (logged as a loosening).
    /// let server = Server::new().idle_timeout(Duration::from_secs(360)).unwrap();
    /// assert!(Server::new().idle_timeout(Duration::ZERO).is_err());
    /// # let _ = server;
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::IdleTimeoutTooShort`] below the minimum.
    pub fn idle_timeout(mut self, timeout: Duration) -> Result<Self, ConfigError> {
        self.idle_timeout = checked_timeout(
            "Server::idle_timeout",
            timeout,
            (Self::MIN_IDLE_TIMEOUT, DEFAULT_IDLE_TIMEOUT),
            |given, minimum| ConfigError::IdleTimeoutTooShort { given, minimum },
        )?;
        Ok(self)
    }

    /// The shortest send timeout (1 s). A write that waits goes on only once the client has
    /// acknowledged data, at least one round trip later (hundreds of milliseconds on a slow
    /// mobile link): a shorter timeout cuts off any client whose receive window fills once,
    /// however steadily it reads.
    pub const MIN_SEND_TIMEOUT: Duration = Duration::from_secs(1);

    /// How long the response's writes may wait for a client that takes none of it (its
    /// receive window full: it reads slowly, or not at all) before the connection is closed,
    /// as nginx's `send_timeout` (default 60 s). The clock runs only while a write waits, and
    /// the timeout is a budget rather than a timer that starts again when a write goes on:
    /// waiting spends it, and each byte the client takes wins back a second's
    /// [`min_send_rate`](Self::min_send_rate)th of it (60 s for 14 400 bytes at the default
    /// 240 bytes/s), up to the whole timeout. A client that keeps up with the minimum rate
    /// has the whole timeout for a stall, as with nginx; one that takes a few bytes now and
    /// then runs it down (see [`min_send_rate`](Self::min_send_rate)); without a minimum rate
    /// any progress wins all of it back. The kernel lets a waiting write go on once about half
    /// the socket's send buffer (up to a few MiB) has gone out, so a client reading too slowly
    /// to take that within the timeout is cut off too. One below
    /// [`MIN_SEND_TIMEOUT`](Self::MIN_SEND_TIMEOUT) (zero included) is an error: it would cut
    /// off any client whose window fills once. Longer than the default loosens it (a client
    /// that stopped reading holds its connection and response longer) and logs a warning
    /// naming the value.
    ///
    /// # Errors
    ///
    /// [`ConfigError::SendTimeoutTooShort`] below the minimum.
    pub fn send_timeout(mut self, timeout: Duration) -> Result<Self, ConfigError> {
        self.send_timeout = checked_timeout(
            "Server::send_timeout",
            timeout,
            (Self::MIN_SEND_TIMEOUT, DEFAULT_SEND_TIMEOUT),
            |given, minimum| ConfigError::SendTimeoutTooShort { given, minimum },
        )?;
        Ok(self)
    }

    /// The slowest a client may take its response while the server waits on it, in bytes a
    /// second (default 240, as Kestrel's `MinResponseDataRate`). It is measured over the
    /// [`send_timeout`](Self::send_timeout), not per write: a client starts with the whole
    /// timeout to spend while writes wait for it (its grace period; the socket buffers also
    /// take the first tens of KiB at once), and each byte it takes wins back `1 / rate` of a
    /// second, up to the whole timeout. A client on a poor mobile link that reads slowly but
    /// steadily at the rate or above (240 bytes/s is about 2 kbit/s) never runs out, however
    /// long the response, and keeps the whole timeout for a stall. One that takes a few bytes
    /// every so often to keep a large response, its handler's resources and its connection
    /// (a slow-read attack, which a send timeout that starts again at each write cannot see)
    /// runs out after about `send_timeout / (1 - its rate / rate)` of waiting (63 s for
    /// 10 bytes a second, under the defaults): its connection is then closed, the response
    /// dropped, and the security event `slow_read` logged. An upgraded connection's writes
    /// (a WebSocket route's) are held to it too. Below the default loosens it and logs a
    /// warning naming the value.
    ///
    /// ```
    /// use hardening_core::Server;
    ///
    /// // Clients behind a satellite link that stalls (logged as a loosening).
    /// let server = Server::new().min_send_rate(64).unwrap();
    /// assert!(Server::new().min_send_rate(0).is_err());
    /// # let _ = server;
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroLimit`] for 0: no rate would be too slow. To measure none, call
    /// [`dangerous_without_min_send_rate`](Self::dangerous_without_min_send_rate).
    pub fn min_send_rate(mut self, bytes_per_second: u32) -> Result<Self, ConfigError> {
        if bytes_per_second == 0 {
            return Err(ConfigError::ZeroLimit("min_send_rate"));
        }
        if bytes_per_second < DEFAULT_MIN_SEND_RATE {
            warn_loosened(
                "Server::min_send_rate",
                &format!(
                    "Server::min_send_rate is {bytes_per_second} bytes/s, lower than the \
                     default {DEFAULT_MIN_SEND_RATE} bytes/s"
                ),
            );
        }
        self.min_send_rate = Some(bytes_per_second);
        Ok(self)
    }

    /// No minimum send rate: any byte the client takes wins back the whole
    /// [`send_timeout`](Self::send_timeout), so a client that takes a few bytes within each
    /// timeout keeps its response and connection for as long as it likes. Logged as a
    /// loosening.
    pub fn dangerous_without_min_send_rate(mut self) -> Self {
        warn_loosened(
            "Server::dangerous_without_min_send_rate",
            "no minimum send rate: a client that takes a few bytes of its response within each \
             send timeout keeps it, and its connection, for as long as it likes",
        );
        self.min_send_rate = None;
        self
    }

    /// At most this many connections served at once, upgraded ones (WebSockets) included until they
    /// close. At the cap, the next client to connect is accepted and held, unserved, while a place
    /// is made for it: of the connections idle between requests (a response written in full,
    /// nothing of a next request read), the one accepted first is closed (gracefully: hyper answers
    /// a request that began meanwhile first; one its client sends just then meets the close, as at
    /// the idle timeout: clients send an idempotent one again on a new connection), as nginx closes
    /// idle keep-alive connections when it runs out, and the new client is served in its place,
    /// within milliseconds (each client held this way closes one). A connection with a request in
    /// flight, a response being written, a request head begun or a body arriving, an upgraded one,
    /// and a new one that has not sent its first request (it has the header-read timeout) are never
    /// closed for it; while every one is, the client held waits until one closes or goes idle, and
    /// the next ones wait in the kernel's listen backlog (which refuses once full). So a client
    /// holding every place with idle keep-alive connections keeps no one out; one holding them busy
    /// does, until the header-read, request or send timeout ends each. Reaching the cap, and
    /// closing idle connections for it, are each logged as a warning at most every 10 s (the latter
    /// with the number closed since the last). The cap keeps file descriptors (and the memory of
    /// each connection) for the rest of the process (a database pool, files) when many connections
    /// arrive at once; it is one cap for all clients, not a share per client. Set it below the
    /// process's descriptor limit (`ulimit -n`), with room for the others and for the one client
    /// held.
    ///
    /// By default the cap is 10 000, or three quarters of the process's open-file limit when
    /// that is lower (read on Linux from `/proc/self/limits` when serving begins; the default
    /// 1 024 of many systems gives 768), so that a flood of idle connections meets the cap
    /// before the descriptor limit, where every `accept` (and every file the service opens)
    /// would fail. More than 10 000 loosens it and logs a warning naming the value;
    /// [`dangerous_without_connection_cap`](Self::dangerous_without_connection_cap) removes it.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroLimit`] for 0: nothing would be served.
    pub fn max_connections(mut self, max: usize) -> Result<Self, ConfigError> {
        if max == 0 {
            return Err(ConfigError::ZeroLimit("max_connections"));
        }
        warn_if_above(
            "Server::max_connections",
            max,
            DEFAULT_MAX_CONNECTIONS,
            "more",
        );
        // A semaphore holds at most `Semaphore::MAX_PERMITS`; more is no cap at all.
        self.max_connections = if max <= tokio::sync::Semaphore::MAX_PERMITS {
            ConnectionCap::At(max)
        } else {
            ConnectionCap::Unlimited
        };
        Ok(self)
    }

    /// No cap on the connections served at once: a client that opens connections and leaves
    /// them idle holds a descriptor and a connection's memory for each until its idle timeout,
    /// and past the process's open-file limit every `accept` (and every file or socket the
    /// service opens) fails until some close. Logged as a loosening.
    pub fn dangerous_without_connection_cap(mut self) -> Self {
        warn_loosened(
            "Server::dangerous_without_connection_cap",
            "no connection cap: idle connections can use up the process's file descriptors",
        );
        self.max_connections = ConnectionCap::Unlimited;
        self
    }

    /// The smallest head size limit (8 KiB): the request line and the fields a browser sends
    /// (cookies included) take a few KiB; less would refuse ordinary requests.
    pub const MIN_HEAD_SIZE: usize = 8 * 1024;

    /// The largest request head (request line and header fields) read, in bytes (default
    /// 64 KiB, as AWS's load balancers allow; hyper's own limit is its ~400 KiB read buffer,
    /// and `axum::serve` keeps it). A longer head is answered 431 by hyper, with an empty
    /// body, and the connection closed (a request target of 65 535 bytes or more, which
    /// hyper answers 414, is then 431 too). It bounds what each connection holds while its
    /// head arrives, and it is also the limit of a chunked body's trailer fields (hyper's
    /// default there is 16 KiB). One below [`MIN_HEAD_SIZE`](Self::MIN_HEAD_SIZE) is an
    /// error. More than the default loosens it and logs a warning naming the value.
    ///
    /// # Errors
    ///
    /// [`ConfigError::HeadSizeTooSmall`] below the minimum.
    pub fn max_head_size(mut self, bytes: usize) -> Result<Self, ConfigError> {
        if bytes < Self::MIN_HEAD_SIZE {
            return Err(ConfigError::HeadSizeTooSmall {
                given: bytes,
                minimum: Self::MIN_HEAD_SIZE,
            });
        }
        warn_if_above(
            "Server::max_head_size",
            bytes,
            DEFAULT_MAX_HEAD_SIZE,
            "larger",
        );
        self.max_head_size = bytes;
        Ok(self)
    }

    /// How long in-flight requests may run after a shutdown signal (default 30 s); then their
    /// connections are closed without a response. Zero closes them at once (no drain).
    /// Longer is not logged as a loosening: no connection is accepted during the drain, so it
    /// only delays the shutdown.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Serves until SIGTERM or ctrl-c; a second one during the drain closes the open
    /// connections at once.
    ///
    /// # Errors
    ///
    /// None in practice: it returns `Ok(())` once drained. A failed `accept` is retried
    /// (after a pause when the process is out of descriptors or memory, logged), never
    /// returned.
    pub async fn serve<S, B>(self, listener: TcpListener, app: S) -> io::Result<()>
    where
        S: Service<Request<Body>, Response = Response<B>, Error = Infallible>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<axum::BoxError>,
    {
        // Both waits on listeners made before the first: one made once the first signal has
        // come would miss a second that came meanwhile.
        let mut signals = ShutdownSignals::listen();
        let first = async move {
            signals.next().await;
            signals
        };
        self.run(listener, app, first, |mut signals| async move {
            signals.next().await;
        })
        .await
    }

    /// Serves until `shutdown` completes, then drains.
    pub async fn serve_until<S, B>(
        self,
        listener: TcpListener,
        app: S,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()>
    where
        S: Service<Request<Body>, Response = Response<B>, Error = Infallible>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<axum::BoxError>,
    {
        self.run(listener, app, shutdown, |()| std::future::pending::<()>())
            .await
    }

    /// Serves until `shutdown`, then drains until the deadline or until the future `force`
    /// makes (called with what `shutdown` gave, once it is done) completes.
    async fn run<S, B, Stopped, Force: Future<Output = ()>>(
        self,
        listener: TcpListener,
        app: S,
        shutdown: impl Future<Output = Stopped>,
        force: impl FnOnce(Stopped) -> Force,
    ) -> io::Result<()>
    where
        S: Service<Request<Body>, Response = Response<B>, Error = Infallible>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<axum::BoxError>,
    {
        hardening_errors::redact_panic_messages();
        // Tells every connection to finish its request in flight and close (hyper's graceful
        // shutdown of one connection). Ours, not hyper-util's `GracefulShutdown`, which does
        // not take a connection that serves upgrades.
        let (stopping, _) = tokio::sync::watch::channel(false);
        let mut http = hyper::server::conn::http1::Builder::new();
        // hyper's "header read" timer starts when the connection begins waiting for a request
        // (accepted, or a response done), not at the head's first byte: it bounds the idle
        // time and the head together, so it is the idle timeout. `WatchedStream` times the
        // head itself, from its first byte.
        http.timer(TokioTimer::new())
            .header_read_timeout(self.idle_timeout)
            .max_header_size(self.max_head_size)
            // A client may close its sending side once its request is out (`nc -N`, some
            // HTTP/1.0 clients) and still wait for the answer, which hyper otherwise drops.
            .half_close(true);
        // Every connection's task, so those still open at the drain deadline can be aborted.
        let mut connections = JoinSet::new();
        let mut accept_failures = AcceptFailures::default();
        let cap = self
            .max_connections
            .resolve()
            .map(|max| (Arc::new(tokio::sync::Semaphore::new(max)), max));
        // Under a cap: the open connections, oldest first, to close idle ones in.
        let mut open = OpenConnections::default();
        let mut cap_warning = Throttle::default();
        let mut room_made = RoomMade::default();
        let send = SendLimits::new(self.send_timeout, self.min_send_rate);
        tokio::pin!(shutdown);
        let stopped = loop {
            // A place among the open connections, held by its socket (after an upgrade too);
            // at the cap, one for the client accepted first and held while room is made.
            let (permit, held) = match &cap {
                None => (None, None),
                Some((places, max)) => match places.clone().try_acquire_owned() {
                    Ok(place) => (Some(place), None),
                    Err(_) => {
                        let now = tokio::time::Instant::now();
                        if cap_warning.due(now) {
                            tracing::warn!(
                                target: crate::LOG_TARGET,
                                max_connections = *max,
                                "connection cap reached: new clients wait for a connection to \
                                 close, or to go idle and be closed for them (logged at most \
                                 every 10 s)"
                            );
                        }
                        room_made.log_if_due(now, *max);
                        tokio::select! {
                            // Never closed; if it were, this would serve without a cap.
                            place = places.clone().acquire_owned() => (place.ok(), None),
                            accepted = accept(&listener, &mut accept_failures) => {
                                let Some(accepted) = accepted else { continue };
                                tokio::select! {
                                    place = make_room(places, &mut open, &mut room_made, *max) => {
                                        (place, Some(accepted))
                                    }
                                    stopped = &mut shutdown => break stopped,
                                }
                            }
                            stopped = &mut shutdown => break stopped,
                        }
                    }
                },
            };
            let (stream, peer) = match held {
                Some(accepted) => accepted,
                None => tokio::select! {
                    accepted = accept(&listener, &mut accept_failures) => match accepted {
                        Some(accepted) => accepted,
                        None => continue,
                    },
                    stopped = &mut shutdown => break stopped,
                },
            };
            // Reap finished connections so the set holds only open ones.
            while connections.try_join_next().is_some() {}
            // Best effort: a socket that refuses TCP_NODELAY still works.
            let _ = stream.set_nodelay(true);
            let app = app.clone();
            let state = Arc::new(ConnectionState::default());
            if let Some((_, max)) = &cap {
                open.add(&state, *max);
            }
            let capped = cap.is_some();
            let in_service = state.clone();
            let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                let mut app = app.clone();
                let req = if http_body::Body::is_end_stream(req.body()) {
                    in_service.head_parsed(false);
                    req.map(Body::new)
                } else {
                    in_service.head_parsed(true);
                    let head = in_service.clone();
                    req.map(|inner| Body::new(WatchedBody { inner, head }))
                };
                // Under a cap, the response's end makes the connection idle (a candidate to
                // close for room); without one, nothing needs to know.
                let exchange = capped.then(|| in_service.clone());
                async move {
                    // A `Router` is always ready; another service may not be (a buffer, a
                    // concurrency limit), and tower's contract is to ask before calling.
                    std::future::poll_fn(|cx| app.poll_ready(cx)).await?;
                    let response = app.call(req).await?;
                    // A 101 hands the connection to its route: it never goes idle.
                    let exchange = exchange
                        .filter(|_| response.status() != http::StatusCode::SWITCHING_PROTOCOLS);
                    Ok::<_, Infallible>(response.map(|inner| ResponseBody {
                        inner,
                        ended: ExchangeEnd(exchange),
                    }))
                }
            });
            let stream = WatchedStream::new(
                stream,
                send,
                self.header_read_timeout,
                state.clone(),
                permit,
                peer.ip(),
            );
            // With upgrades: a WebSocket route's 101 hands the connection to its handler
            // (which the drain does not wait for, as with `axum::serve`).
            let connection = http
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let mut stop = stopping.subscribe();
            connections.spawn(async move {
                let mut connection = std::pin::pin!(connection);
                let ended = 'ended: {
                    tokio::select! {
                        ended = connection.as_mut() => break 'ended ended,
                        () = async { drop(stop.wait_for(|stop| *stop).await) } => {}
                        // Room wanted at the cap: hyper closes the connection at once if it is
                        // idle between requests, else once the request in flight is answered.
                        () = state.make_room.notified(), if capped => {
                            connection.as_mut().graceful_shutdown();
                            break 'ended connection.await;
                        }
                    }
                    // Stopping (or the server gone): finish the request in flight, then close.
                    // hyper closes at once a connection that has read nothing, and a new
                    // socket's bytes are seen only on the runtime's next turn: one accepted
                    // just before the signal gets a moment to begin the request it holds.
                    let grace = tokio::time::Instant::now() + FRESH_CONNECTION_GRACE;
                    while state.fresh() && tokio::time::Instant::now() < grace {
                        tokio::select! {
                            ended = connection.as_mut() => break 'ended ended,
                            () = tokio::time::sleep(Duration::from_millis(5)) => {}
                        }
                    }
                    connection.as_mut().graceful_shutdown();
                    connection.await
                };
                match ended {
                    // hyper is done with the stream: what reads it from now on (an upgraded
                    // connection's route) reads no request heads.
                    Ok(()) => state.released(),
                    // A head begun and not finished in time (the idle timeout may have cut
                    // it too, when it began late); an idle connection's timeout is no event.
                    Err(e) if timed_out_awaiting_head(&e) && state.unfinished() => {
                        SecurityEvent::emit_head_timed_out(RequestId::generate(), peer.ip());
                    }
                    Err(e) => {
                        tracing::debug!(target: crate::LOG_TARGET, error = %e, "connection ended with an error");
                    }
                }
            });
        };
        drop(listener);
        tracing::info!(target: crate::LOG_TARGET, "shutting down: draining open connections");
        let drain_started = tokio::time::Instant::now();
        tokio::select! {
            drained = tokio::time::timeout(self.drain_timeout, async {
                stopping.send_replace(true);
                while connections.join_next().await.is_some() {}
            }) => {
                if drained.is_ok() {
                    tracing::info!(
                        target: crate::LOG_TARGET,
                        drain_secs = drain_started.elapsed().as_secs_f64(),
                        "drained: every open connection finished"
                    );
                } else {
                    tracing::warn!(
                        target: crate::LOG_TARGET,
                        // Seconds, as a float (as `http.server.request.duration`): whole
                        // seconds showed a deadline under one as 0.
                        deadline_secs = self.drain_timeout.as_secs_f64(),
                        "drain deadline passed; closing the remaining connections"
                    );
                }
            }
            () = force(stopped) => {
                tracing::warn!(
                    target: crate::LOG_TARGET,
                    "second shutdown signal; closing the remaining connections"
                );
            }
        }
        // Aborts what is still open (nothing, after a full drain) and waits for the sockets
        // to be dropped.
        connections.shutdown().await;
        Ok(())
    }
}

/// A [`Server`] timeout setting: below its minimum, the error `too_short` makes (from the
/// value and the minimum); above its default, logged as a loosening; too long to add to the
/// clock (hyper's, tokio's: that would panic), the longest that can be.
fn checked_timeout(
    setting: &str,
    timeout: Duration,
    (minimum, default): (Duration, Duration),
    too_short: fn(Duration, Duration) -> ConfigError,
) -> Result<Duration, ConfigError> {
    if timeout < minimum {
        return Err(too_short(timeout, minimum));
    }
    warn_if_above(setting, timeout, default, "longer");
    Ok(timeout.min(LONGEST_TIMEOUT))
}

/// How long a connection that has not begun a request may take to begin one once the
/// shutdown signal came (then it is closed; one that did is served, as requests in flight).
const FRESH_CONNECTION_GRACE: Duration = Duration::from_millis(100);

/// How long to wait before accepting again after `accept` failed: not at all when the error
/// is one connection's (reset or aborted while it waited to be accepted: `ECONNABORTED` on
/// BSD and macOS, `WSAECONNRESET` on Windows), as axum does, or each such connection would
/// pause accepting for everyone; a moment when the process is out of descriptors, memory or
/// the like (accepting again at once would spin).
fn pause_after_accept_error(e: &io::Error) -> Option<Duration> {
    match e.kind() {
        io::ErrorKind::ConnectionAborted
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionRefused => None,
        _ => Some(Duration::from_millis(50)),
    }
}

/// How often at most a failing `accept` is logged.
const ACCEPT_WARNING_EVERY: Duration = Duration::from_secs(10);

/// Logs `accept` failures that pause the loop (out of descriptors, memory), at most once per
/// [`ACCEPT_WARNING_EVERY`], with how many went unlogged since the last warning: the loop
/// retries 20 times a second, and a warning each time would flood the logs for as long as
/// an attacker holds the descriptors.
#[derive(Debug, Default)]
struct AcceptFailures {
    /// When the failures began (`None` while accepting works).
    since: Option<tokio::time::Instant>,
    warning: Throttle,
    unlogged: u64,
}

/// A warning logged at most once per [`ACCEPT_WARNING_EVERY`].
#[derive(Debug, Default)]
struct Throttle(Option<tokio::time::Instant>);

impl Throttle {
    /// Whether a warning may be logged `now`; if so, counts it as logged.
    fn due(&mut self, now: tokio::time::Instant) -> bool {
        let due = self
            .0
            .is_none_or(|last| now.duration_since(last) >= ACCEPT_WARNING_EVERY);
        if due {
            self.0 = Some(now);
        }
        due
    }
}

impl AcceptFailures {
    /// An accept succeeded: after failures, says so once, with the failures not yet logged
    /// and how long they lasted, so that each episode's count is its own.
    #[inline]
    fn recovered(&mut self, now: tokio::time::Instant) {
        if let Some(since) = self.since.take() {
            tracing::info!(
                target: crate::LOG_TARGET,
                unlogged_failures = self.unlogged,
                failing_secs = now.duration_since(since).as_secs_f64(),
                "accepting again"
            );
            self.warning = Throttle::default();
            self.unlogged = 0;
        }
    }

    fn failed(&mut self, now: tokio::time::Instant, e: &io::Error, pause: Duration) {
        self.since.get_or_insert(now);
        if !self.warning.due(now) {
            self.unlogged += 1;
            return;
        }
        tracing::warn!(
            target: crate::LOG_TARGET,
            error = %e,
            unlogged_failures = self.unlogged,
            pause_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
            "accept failed; retrying after a pause (logged at most every 10 s, with the failures not logged since)"
        );
        self.unlogged = 0;
    }
}

/// The listener's next connection; `None` when `accept` failed (logged, and after a pause
/// when the process is out of descriptors or memory), to try again.
async fn accept(
    listener: &TcpListener,
    failures: &mut AcceptFailures,
) -> Option<(TcpStream, std::net::SocketAddr)> {
    match listener.accept().await {
        Ok(accepted) => {
            failures.recovered(tokio::time::Instant::now());
            Some(accepted)
        }
        Err(e) => {
            match pause_after_accept_error(&e) {
                Some(pause) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    failures.failed(tokio::time::Instant::now(), &e, pause);
                    tokio::time::sleep(pause).await;
                }
                None => tracing::debug!(
                    target: crate::LOG_TARGET,
                    error = %e,
                    "a connection failed before it was accepted"
                ),
            }
            None
        }
    }
}

/// How long a client held at the connection cap waits for the place of the idle connection
/// it closed before it closes another: one that went busy just as it was asked to close
/// answers its request first.
const ROOM_RETRY: Duration = Duration::from_millis(100);

/// A place under the connection cap for a client held past it: closes the oldest connection
/// idle between requests, and another one every [`ROOM_RETRY`] until a place is free (or,
/// with none idle, waits for one to close or go idle). `None` if the cap's semaphore closed.
async fn make_room(
    places: &Arc<tokio::sync::Semaphore>,
    open: &mut OpenConnections,
    made: &mut RoomMade,
    max: usize,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    loop {
        if open.close_oldest_idle() {
            made.closed(tokio::time::Instant::now(), max);
        }
        tokio::select! {
            place = places.clone().acquire_owned() => return place.ok(),
            () = tokio::time::sleep(ROOM_RETRY) => {}
        }
    }
}

/// The connections open under a cap, in the order they were accepted (their states, which
/// go when they close).
#[derive(Debug, Default)]
struct OpenConnections(Vec<std::sync::Weak<ConnectionState>>);

impl OpenConnections {
    /// A connection accepted; the closed ones forgotten now and then (so that the list holds
    /// at most twice the cap).
    fn add(&mut self, connection: &Arc<ConnectionState>, max: usize) {
        if self.0.len() >= max.saturating_mul(2) {
            self.forget_closed();
        }
        self.0.push(Arc::downgrade(connection));
    }

    fn forget_closed(&mut self) {
        self.0.retain(|connection| connection.strong_count() > 0);
    }

    /// Asks the oldest connection idle between requests to close; whether there was one.
    fn close_oldest_idle(&mut self) -> bool {
        self.forget_closed();
        let idle = self
            .0
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .find(|connection| connection.idle_between_requests());
        idle.map(|connection| connection.ask_to_close()).is_some()
    }
}

/// Idle connections closed to make room at the cap, logged at most once per
/// [`ACCEPT_WARNING_EVERY`] with the number closed since the last warning.
#[derive(Debug, Default)]
struct RoomMade {
    warning: Throttle,
    unlogged: u64,
}

impl RoomMade {
    fn closed(&mut self, now: tokio::time::Instant, max: usize) {
        self.unlogged += 1;
        self.log_if_due(now, max);
    }

    /// Logs the closings not logged yet, if a warning is due.
    fn log_if_due(&mut self, now: tokio::time::Instant, max: usize) {
        if self.unlogged > 0 && self.warning.due(now) {
            tracing::warn!(
                target: crate::LOG_TARGET,
                max_connections = max,
                closed_idle_connections = self.unlogged,
                "connection cap reached: closed connections idle between requests to make room \
                 for new clients (logged at most every 10 s, with the number closed since)"
            );
            self.unlogged = 0;
        }
    }
}

/// A connection as its task, its stream, its service and the accept loop see it: where it is
/// between requests, for timing a request head from its first byte (hyper's own timer runs
/// from when the connection starts waiting, idle time included) and for telling a head that
/// never finished (a slow or stalled client: slowloris) from an idle keep-alive connection
/// when a timeout closes it; and, under a connection cap, whether it is idle between requests
/// (and may be closed to make room for a new client).
#[derive(Debug, Default)]
struct ConnectionState {
    phase: AtomicU8,
    /// A response ended (written in full, or dropped) and, since, no request began and no
    /// byte of a head came in. Kept only under a cap.
    idle: AtomicBool,
    /// A write waits for the client (a response's end may still be going out after its body
    /// ended).
    write_waits: AtomicBool,
    /// Asked to close to make room at the cap.
    asked_to_close: AtomicBool,
    /// Wakes the connection's task when it is asked to close.
    make_room: tokio::sync::Notify,
}

impl ConnectionState {
    /// Nothing read yet but blank lines: a connection that has not begun its first request.
    const FRESH: u8 = 0;
    /// Waiting for a request after one: no byte of a head yet (blank lines between requests,
    /// RFC 9112 §2.2, begin none).
    const WAITING: u8 = 3;
    /// Bytes of a head came in, and hyper has not parsed a head since.
    const BEGUN: u8 = 1;
    /// A head was parsed and its body is still coming: what is read is body, not a head.
    /// (A body the service leaves unread is drained by hyper and keeps this state until the
    /// next head: a slow head right after such a request is not told apart.)
    const BODY: u8 = 2;
    /// hyper is done with the connection: an upgraded one's reads are its route's.
    const RELEASED: u8 = 4;

    /// Bytes came in from the client. Whether they began a head after a request (a new
    /// connection's first head is timed from when it was accepted).
    #[inline]
    fn read(&self, bytes: &[u8]) -> bool {
        let state = self.phase.load(Ordering::Relaxed);
        if matches!(state, Self::FRESH | Self::WAITING)
            && bytes.iter().any(|b| !matches!(b, b'\r' | b'\n'))
        {
            self.phase.store(Self::BEGUN, Ordering::Relaxed);
            self.idle.store(false, Ordering::Relaxed);
            return state == Self::WAITING;
        }
        false
    }

    /// Whether hyper is reading a head under the header-read timeout: a new connection's
    /// first, or one begun since. (Not while the connection idles: that is hyper's idle
    /// timeout.)
    #[inline]
    fn awaits_head(&self) -> bool {
        matches!(
            self.phase.load(Ordering::Relaxed),
            Self::FRESH | Self::BEGUN
        )
    }

    /// hyper is done with the connection (closed, or handed over by an upgrade).
    fn released(&self) {
        self.phase.store(Self::RELEASED, Ordering::Relaxed);
        self.idle.store(false, Ordering::Relaxed);
    }

    /// hyper parsed a head and hands the request to the service (with a body to come, or
    /// not). Bytes of a pipelined request's head read with it are forgotten.
    #[inline]
    fn head_parsed(&self, body_follows: bool) {
        let state = if body_follows {
            Self::BODY
        } else {
            Self::WAITING
        };
        self.phase.store(state, Ordering::Relaxed);
        self.idle.store(false, Ordering::Relaxed);
    }

    /// The request's body has all come in (or failed).
    fn body_ended(&self) {
        let _ = self.phase.compare_exchange(
            Self::BODY,
            Self::WAITING,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// The connection has not begun a request yet.
    fn fresh(&self) -> bool {
        self.phase.load(Ordering::Relaxed) == Self::FRESH
    }

    /// A head has begun and was never finished.
    fn unfinished(&self) -> bool {
        self.phase.load(Ordering::Relaxed) == Self::BEGUN
    }

    /// hyper is done with a response (it wrote it in full, or dropped it).
    fn response_ended(&self) {
        self.idle.store(true, Ordering::Relaxed);
    }

    /// Idle between requests, and not yet asked to close. (hyper checks again: one that has
    /// just begun a request when asked answers it first.)
    fn idle_between_requests(&self) -> bool {
        self.idle.load(Ordering::Relaxed)
            && !self.write_waits.load(Ordering::Relaxed)
            && !self.asked_to_close.load(Ordering::Relaxed)
    }

    /// Asks the connection's task to close it, gracefully.
    fn ask_to_close(&self) {
        self.asked_to_close.store(true, Ordering::Relaxed);
        self.make_room.notify_one();
    }
}

/// A request body that tells the connection's [`ConnectionState`] when it has all come in.
struct WatchedBody {
    inner: Incoming,
    head: Arc<ConnectionState>,
}

impl http_body::Body for WatchedBody {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if !matches!(frame, Some(Ok(_))) || http_body::Body::is_end_stream(&this.inner) {
            this.head.body_ended();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        http_body::Body::is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::Body::size_hint(&self.inner)
    }
}

/// Marks the connection idle when hyper drops the response body it is part of: hyper drops
/// it once it has taken the body's last frame (or given up on it).
#[derive(Debug)]
struct ExchangeEnd(Option<Arc<ConnectionState>>);

impl Drop for ExchangeEnd {
    fn drop(&mut self) {
        if let Some(connection) = &self.0 {
            connection.response_ended();
        }
    }
}

pin_project_lite::pin_project! {
    /// The service's response body, unchanged, with its [`ExchangeEnd`].
    struct ResponseBody<B> {
        #[pin]
        inner: B,
        ended: ExchangeEnd,
    }
}

impl<B: http_body::Body> http_body::Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    #[inline]
    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// How long the response's writes may wait for the client ([`Server::send_timeout`]), in
/// nanoseconds, and how much of it each byte the client takes wins back (from
/// [`Server::min_send_rate`]; `None` without a minimum rate: any progress wins it all back).
#[derive(Debug, Clone, Copy)]
struct SendLimits {
    timeout: u64,
    nanos_per_byte: Option<u64>,
}

impl SendLimits {
    fn new(timeout: Duration, min_rate: Option<u32>) -> Self {
        Self {
            // At most `LONGEST_TIMEOUT`: about 3.2e18 ns, within a u64.
            timeout: u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX),
            // Whole nanoseconds: a rate over 1 GB/s counts as 1 GB/s.
            nanos_per_byte: min_rate.map(|rate| (1_000_000_000 / u64::from(rate.max(1))).max(1)),
        }
    }
}

/// A connection as the server watches it: its writes fail when the client has not kept up
/// with them (see [`Server::send_timeout`] and [`Server::min_send_rate`]; hyper then closes
/// the connection and drops the response), its reads fail when a request head is not whole
/// within `head_timeout` (of the connection's opening for the first, of its first byte for
/// the next ones), and it notes what the client sends for the connection's
/// [`ConnectionState`].
struct WatchedStream {
    stream: TcpStream,
    send: SendLimits,
    /// Nanoseconds of waiting the client has left: the send timeout at first; spent while a
    /// write waits, won back by the bytes the client takes.
    slack: u64,
    head_timeout: Duration,
    /// Whether a request's head has begun and not yet been parsed, and whether the
    /// connection is idle; shared with the service (which learns when a head was parsed and
    /// when a response ended), the connection's task (which reads it when hyper is done with
    /// the stream) and the accept loop (which closes idle connections at the cap).
    head: Arc<ConnectionState>,
    /// Made at the first write that has to wait (most connections never have one), then
    /// reset for each later one.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
    /// When the write now waiting began to wait (`None`: no write waits).
    waiting_since: Option<tokio::time::Instant>,
    /// The write now waiting began with less than the whole send timeout left: the client
    /// had fallen behind the minimum rate.
    behind: bool,
    /// The client's address, for the `slow_read` event.
    peer: std::net::IpAddr,
    /// Made when a read waits for the rest of a head (not when a head comes whole, as most
    /// do), then reset for each later head.
    head_deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// `head_deadline` runs for the head now awaited.
    head_armed: bool,
    /// The connection's place under [`Server::max_connections`], given back when the socket
    /// closes: an upgraded connection (a WebSocket), handed to its route, keeps it.
    _place: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl WatchedStream {
    fn new(
        stream: TcpStream,
        send: SendLimits,
        head_timeout: Duration,
        head: Arc<ConnectionState>,
        place: Option<tokio::sync::OwnedSemaphorePermit>,
        peer: std::net::IpAddr,
    ) -> Self {
        Self {
            stream,
            send,
            slack: send.timeout,
            head_timeout,
            head,
            stalled: None,
            waiting_since: None,
            behind: false,
            peer,
            head_deadline: None,
            head_armed: false,
            _place: place,
        }
    }

    /// What a read that waits returns while hyper reads a head: the error that closes the
    /// connection once the head's time is up. Out of line: heads mostly come whole, and a
    /// read that waits between requests does not get here.
    #[cold]
    #[inline(never)]
    fn await_head(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !std::mem::replace(&mut self.head_armed, true) {
            let deadline = tokio::time::Instant::now() + self.head_timeout;
            match &mut self.head_deadline {
                Some(sleep) => sleep.as_mut().reset(deadline),
                None => self.head_deadline = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        // Made above, if not before.
        let timeout = self.head_timeout;
        let sleep = self
            .head_deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(sleep.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, HeadTimedOut)))
    }

    /// What a write (or flush) that made progress (the client's kernel took `taken` bytes),
    /// or had to wait, returns. A write that goes on at once costs two comparisons and, once
    /// the client has fallen behind, a multiplication: no clock, no syscall, no allocation.
    #[inline]
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
        taken: usize,
    ) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            if self.waiting_since.is_some() {
                self.went_on(taken);
            } else if self.slack < self.send.timeout {
                self.win_back(taken);
            }
            return poll;
        }
        if self.waiting_since.is_none() {
            self.begin_waiting();
        }
        // Made when the wait began.
        let Some(sleep) = self.stalled.as_mut() else {
            return Poll::Pending;
        };
        ready!(sleep.as_mut().poll(cx));
        Poll::Ready(Err(self.cut_off()))
    }

    /// The slack the bytes the client took win back (all of it without a minimum rate).
    #[inline]
    fn win_back(&mut self, taken: usize) {
        self.slack = match self.send.nanos_per_byte {
            Some(nanos) => (taken as u64)
                .saturating_mul(nanos)
                .saturating_add(self.slack)
                .min(self.send.timeout),
            None => self.send.timeout,
        };
    }

    /// A write begins to wait: its deadline is when the slack runs out.
    #[cold]
    #[inline(never)]
    fn begin_waiting(&mut self) {
        let now = tokio::time::Instant::now();
        let deadline = now + Duration::from_nanos(self.slack);
        match &mut self.stalled {
            Some(sleep) => sleep.as_mut().reset(deadline),
            None => self.stalled = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
        self.waiting_since = Some(now);
        self.behind = self.slack < self.send.timeout;
        self.head.write_waits.store(true, Ordering::Relaxed);
    }

    /// A write that waited went on: the wait is spent, what the client took won back.
    #[cold]
    #[inline(never)]
    fn went_on(&mut self, taken: usize) {
        if let Some(since) = self.waiting_since.take() {
            let waited = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.slack = self.slack.saturating_sub(waited);
        }
        self.win_back(taken);
        self.head.write_waits.store(false, Ordering::Relaxed);
    }

    /// The slack ran out while a write waited: the error that closes the connection. A
    /// client that had fallen behind the minimum rate is reported (once: a later poll, if
    /// any, fails as a plain timeout).
    #[cold]
    #[inline(never)]
    fn cut_off(&mut self) -> io::Error {
        if std::mem::replace(&mut self.behind, false) {
            SecurityEvent::emit_slow_read(RequestId::generate(), self.peer);
            return io::Error::new(
                io::ErrorKind::TimedOut,
                "the client took its response slower than the minimum send rate",
            );
        }
        io::Error::new(
            io::ErrorKind::TimedOut,
            "the client took none of its response within the send timeout",
        )
    }
}

impl AsyncRead for WatchedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.stream).poll_read(cx, buf);
        if this.head.read(&buf.filled()[before..]) {
            // A new head: its time starts now, not at the last one's.
            this.head_armed = false;
        }
        if poll.is_pending() && this.head.awaits_head() {
            return this.await_head(cx);
        }
        poll
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_write(cx, buf);
        let taken = written(&poll);
        this.watch(cx, poll, taken)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        let taken = written(&poll);
        this.watch(cx, poll, taken)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_flush(cx);
        this.watch(cx, poll, 0)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The bytes a write handed to the kernel.
#[inline]
fn written(poll: &Poll<io::Result<usize>>) -> usize {
    match poll {
        Poll::Ready(Ok(n)) => *n,
        _ => 0,
    }
}

/// How long a client has to send a request's headers unless set otherwise.
const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a keep-alive connection may idle between requests unless set otherwise: nginx's
/// `keepalive_timeout`, longer than the 60 s proxies and load balancers keep idle upstream
/// connections by default.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(75);

/// The error a read fails with when a request head was not whole within the header-read
/// timeout (hyper closes the connection without a response).
#[derive(Debug)]
struct HeadTimedOut;

impl std::fmt::Display for HeadTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request head not whole within the header-read timeout")
    }
}

impl std::error::Error for HeadTimedOut {}

/// Whether a connection ended because a request head was not whole in time: the header-read
/// timeout (ours, from the read that failed) or the idle timeout (hyper's).
fn timed_out_awaiting_head(e: &hyper::Error) -> bool {
    e.is_timeout()
        || std::error::Error::source(e)
            .and_then(|source| source.downcast_ref::<io::Error>())
            .and_then(io::Error::get_ref)
            .is_some_and(|inner| inner.is::<HeadTimedOut>())
}

/// How long a response write may wait for the client unless set otherwise.
const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// The slowest a client may take its response unless set otherwise, in bytes a second:
/// Kestrel's `MinResponseDataRate` (about 2 kbit/s, below any link that still works).
const DEFAULT_MIN_SEND_RATE: u32 = 240;

/// The largest request head read unless set otherwise.
const DEFAULT_MAX_HEAD_SIZE: usize = 64 * 1024;

/// The most connections served at once unless set otherwise, or a lower descriptor limit
/// asks for fewer: a few hundred MiB of connection buffers at most, and far more clients
/// than one instance serves well at once.
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// [`Server::max_connections`], as set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnectionCap {
    /// [`DEFAULT_MAX_CONNECTIONS`], or fewer under a low descriptor limit (read when serving
    /// begins).
    Default,
    At(usize),
    Unlimited,
}

impl ConnectionCap {
    /// The cap to serve with: `None` for none.
    fn resolve(self) -> Option<usize> {
        match self {
            Self::Default => {
                let limits = std::fs::read_to_string("/proc/self/limits").ok();
                let max = default_max_connections(limits.as_deref());
                tracing::debug!(
                    target: crate::LOG_TARGET,
                    max_connections = max,
                    "serving at most this many connections at once"
                );
                Some(max)
            }
            Self::At(max) => Some(max),
            Self::Unlimited => None,
        }
    }
}

/// [`DEFAULT_MAX_CONNECTIONS`], or three quarters of the soft open-file limit in `limits`
/// (the text of Linux's `/proc/self/limits`) when that is lower: the rest is left for the
/// listener, the service's files, database connections and the client held at the cap.
fn default_max_connections(limits: Option<&str>) -> usize {
    let soft = limits.and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("Max open files"))?;
        line["Max open files".len()..]
            .split_whitespace()
            .next()?
            .parse::<usize>()
            .ok()
    });
    match soft {
        Some(soft) => (soft / 4 * 3).clamp(1, DEFAULT_MAX_CONNECTIONS),
        None => DEFAULT_MAX_CONNECTIONS,
    }
}

/// The longest header-read, idle or send timeout: each is added to the clock (hyper's,
/// tokio's), which would panic on overflow.
const LONGEST_TIMEOUT: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// Completes on ctrl-c or (on Unix) SIGTERM. If neither can be listened for, never.
pub async fn shutdown_signal() {
    ShutdownSignals::listen().next().await;
}

/// Ctrl-c and (on Unix) SIGTERM, listened for from when this is made: Tokio gives a signal
/// only to the listeners that exist when it comes.
struct ShutdownSignals {
    #[cfg(unix)]
    ctrl_c: Option<tokio::signal::unix::Signal>,
    #[cfg(windows)]
    ctrl_c: Option<tokio::signal::windows::CtrlC>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignals {
    /// Starts listening; a signal that cannot be listened for is left out.
    fn listen() -> Self {
        #[cfg(unix)]
        use tokio::signal::unix::{SignalKind, signal};
        Self {
            #[cfg(unix)]
            ctrl_c: signal(SignalKind::interrupt()).ok(),
            #[cfg(windows)]
            ctrl_c: tokio::signal::windows::ctrl_c().ok(),
            #[cfg(unix)]
            terminate: signal(SignalKind::terminate()).ok(),
        }
    }

    /// Completes on the next signal since the last one this gave (or since it was made).
    async fn next(&mut self) {
        let ctrl_c = or_never(self.ctrl_c.as_mut().map(|signal| signal.recv()));
        #[cfg(unix)]
        let terminate = or_never(self.terminate.as_mut().map(|signal| signal.recv()));
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            () = ctrl_c => {}
            () = terminate => {}
        }
    }
}

/// Completes when `received` does; never without one.
async fn or_never(received: Option<impl Future>) {
    match received {
        Some(received) => {
            received.await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_connection_cap_is_an_error() {
        let err = Server::new().max_connections(0).unwrap_err();
        assert_eq!(err.to_string(), "max_connections must be greater than zero");
        assert_eq!(
            Server::new().max_connections(1).unwrap().max_connections,
            ConnectionCap::At(1)
        );
        assert_eq!(
            Server::new()
                .max_connections(usize::MAX)
                .unwrap()
                .max_connections,
            ConnectionCap::Unlimited
        );
    }

    /// A cap by default: 10 000, or three quarters of a lower soft open-file limit; none only
    /// when asked for by name.
    #[test]
    fn connections_are_capped_by_default_below_the_descriptor_limit() {
        const LIMITS: &str = "Limit                     Soft Limit           Hard Limit           Units     \n\
            Max processes             63455                63455                processes \n\
            Max open files            1024                 524288               files     \n\
            Max locked memory         8388608              8388608              bytes     \n";
        assert_eq!(Server::new().max_connections, ConnectionCap::Default);
        assert_eq!(default_max_connections(Some(LIMITS)), 768);
        let high = LIMITS.replace("1024  ", "65536 ");
        assert_eq!(default_max_connections(Some(&high)), 10_000);
        let unlimited = LIMITS.replace("1024 ", "unlimited");
        assert_eq!(default_max_connections(Some(&unlimited)), 10_000);
        assert_eq!(default_max_connections(Some("no such line")), 10_000);
        assert_eq!(default_max_connections(None), 10_000);
        let tiny = LIMITS.replace("1024 ", "1    ");
        assert_eq!(default_max_connections(Some(&tiny)), 1, "never zero");
        assert_eq!(
            Server::new()
                .dangerous_without_connection_cap()
                .max_connections
                .resolve(),
            None
        );
        // On this machine: a cap, never above the default.
        let here = ConnectionCap::Default.resolve().unwrap();
        assert!((1..=10_000).contains(&here), "{here}");
    }

    /// Zero, and any timeout shorter than a round trip, would cut off every client whose
    /// receive window fills once.
    #[test]
    fn a_send_timeout_under_a_second_is_an_error() {
        for short in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_millis(999),
        ] {
            let err = Server::new().send_timeout(short).unwrap_err();
            assert_eq!(
                err,
                ConfigError::SendTimeoutTooShort {
                    given: short,
                    minimum: Server::MIN_SEND_TIMEOUT,
                }
            );
        }
        assert_eq!(
            Server::new()
                .send_timeout(Duration::from_millis(1))
                .unwrap_err()
                .to_string(),
            "send_timeout of 1ms is too short: a response write that waits for the client \
             waits at least one round trip, so any client whose receive window fills once \
             would be cut off; use at least 1s (the default is 60s)"
        );
        assert!(Server::new().send_timeout(Server::MIN_SEND_TIMEOUT).is_ok());
        assert!(Server::new().send_timeout(Duration::MAX).is_ok());
    }

    /// Zero, and any idle timeout shorter than a round trip, would close a kept-alive
    /// connection before its client could send the next request.
    #[test]
    fn an_idle_timeout_under_a_second_is_an_error() {
        for short in [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_millis(999),
        ] {
            let err = Server::new().idle_timeout(short).unwrap_err();
            assert_eq!(
                err,
                ConfigError::IdleTimeoutTooShort {
                    given: short,
                    minimum: Server::MIN_IDLE_TIMEOUT,
                }
            );
        }
        assert_eq!(
            Server::new()
                .idle_timeout(Duration::from_millis(1))
                .unwrap_err()
                .to_string(),
            "idle_timeout of 1ms is too short: a client sends its next request on a kept-alive \
             connection at least one round trip after the response, and the connection is \
             closed if it has not come by then; use at least 1s (the default is 75s)"
        );
        let server = Server::new()
            .idle_timeout(Server::MIN_IDLE_TIMEOUT)
            .unwrap();
        assert_eq!(server.idle_timeout, Server::MIN_IDLE_TIMEOUT);
        assert_eq!(
            Server::new()
                .idle_timeout(Duration::MAX)
                .unwrap()
                .idle_timeout,
            LONGEST_TIMEOUT
        );
        assert_eq!(Server::new().idle_timeout, Duration::from_secs(75));
    }

    /// One connection that failed before it was accepted (reset while it waited in the queue,
    /// which BSD and macOS report as `ECONNABORTED`) costs no pause: each one paused
    /// accepting for 50 ms, so a client resetting 20 connections a second there kept the
    /// server from accepting anyone.
    #[test]
    fn a_failed_connection_does_not_pause_accepting() {
        for kind in [
            io::ErrorKind::ConnectionAborted,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::ConnectionRefused,
        ] {
            assert_eq!(
                pause_after_accept_error(&io::Error::from(kind)),
                None,
                "{kind:?}"
            );
        }
    }

    /// A failing accept is logged at once, then at most every 10 s with the count of the
    /// failures in between.
    #[test]
    fn accept_failures_are_logged_at_most_every_ten_seconds() {
        let e = io::Error::other("too many open files");
        let pause = Duration::from_millis(50);
        let lines = crate::access_log::tests::json_lines("info", || {
            let mut failures = AcceptFailures::default();
            let start = tokio::time::Instant::now();
            // 30.5 s of failures, one every 50 ms; then accepting works; an hour later,
            // one more failure, and accepting works again.
            for i in 0..610 {
                failures.failed(start + pause * i, &e, pause);
            }
            failures.recovered(start + pause * 610);
            failures.recovered(start + pause * 611);
            let later = start + Duration::from_secs(3600);
            failures.failed(later, &e, pause);
            failures.recovered(later + pause);
        });
        let seen: Vec<_> = lines
            .iter()
            .map(|w| {
                (
                    w["message"].as_str().unwrap_or_default(),
                    w["unlogged_failures"].as_u64(),
                )
            })
            .collect();
        let failed = "accept failed; retrying after a pause (logged at most every 10 s, with \
                      the failures not logged since)";
        assert_eq!(
            seen,
            [
                (failed, Some(0)),
                (failed, Some(199)),
                (failed, Some(199)),
                (failed, Some(199)),
                ("accepting again", Some(9)),
                (failed, Some(0)),
                ("accepting again", Some(0)),
            ],
            "{lines:?}"
        );
        assert_eq!(lines[4]["failing_secs"], 30.5, "{lines:?}");
        assert!(
            lines
                .iter()
                .filter(|w| w["message"] == failed)
                .all(|w| w["error"] == "too many open files"),
            "{lines:?}"
        );
    }

    /// Out of descriptors (`EMFILE`, `ENFILE`) or memory: accepting again at once would spin.
    #[test]
    fn running_out_of_resources_pauses_accepting() {
        let mut errors = vec![
            io::Error::other("too many open files"),
            io::Error::from(io::ErrorKind::OutOfMemory),
        ];
        // EMFILE and ENFILE on Linux, macOS and the BSDs.
        #[cfg(unix)]
        errors.extend([
            io::Error::from_raw_os_error(24),
            io::Error::from_raw_os_error(23),
        ]);
        for e in errors {
            assert_eq!(
                pause_after_accept_error(&e),
                Some(Duration::from_millis(50)),
                "{e}"
            );
        }
    }
}
