//! Serving a router: peer addresses for `ClientIp`, a header-read timeout against slow
//! clients, and graceful shutdown on SIGTERM or ctrl-c.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tower::Service;

use crate::ConfigError;

/// Serves `app` on `listener` with [`Server`]'s defaults until SIGTERM or ctrl-c.
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
pub async fn serve(listener: TcpListener, app: Router) -> io::Result<()> {
    Server::new().serve(listener, app).await
}

/// An HTTP/1.1 server for a [`Router`] with safe defaults.
///
/// - each request carries the peer address (`ConnectInfo<SocketAddr>`), which
///   [`Hardening`](crate::Hardening) turns into [`ClientIp`](crate::ClientIp);
/// - a client has 10 s to send a request's headers (slowloris);
/// - on SIGTERM or ctrl-c it stops accepting, lets in-flight requests finish, and closes
///   what is still open after the drain deadline (30 s), or at once on a second signal;
/// - a panic's text is printed with its secrets redacted
///   ([`redact_panic_messages`](hardening_errors::redact_panic_messages)).
///
/// HTTP/2 and protocol upgrades (WebSocket) are not served; use `axum::serve` with
/// `into_make_service_with_connect_info::<SocketAddr>()` for those.
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct Server {
    header_read_timeout: Duration,
    drain_timeout: Duration,
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

impl Server {
    /// 10 s to read request headers, 30 s to drain on shutdown.
    pub fn new() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(30),
        }
    }

    /// The shortest header-read timeout (1 s). Its timer runs whenever a connection waits
    /// for a request and closes it without a response when it fires: with zero, only a
    /// request already there when the connection is accepted is answered; with a few
    /// milliseconds, only local clients. A client on a slow mobile link needs hundreds of
    /// milliseconds for one round trip.
    pub const MIN_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(1);

    /// How long a client may take to send a request's headers, and how long an idle
    /// keep-alive connection stays open. One below
    /// [`MIN_HEADER_READ_TIMEOUT`](Self::MIN_HEADER_READ_TIMEOUT) is an error. One too long
    /// to add to the clock (such as `Duration::MAX`) counts as 100 years.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Result<Self, ConfigError> {
        if timeout < Self::MIN_HEADER_READ_TIMEOUT {
            return Err(ConfigError::HeaderReadTimeoutTooShort {
                given: timeout,
                minimum: Self::MIN_HEADER_READ_TIMEOUT,
            });
        }
        // hyper adds it to the time each request starts, which would panic on overflow.
        self.header_read_timeout = timeout.min(LONGEST_HEADER_READ_TIMEOUT);
        Ok(self)
    }

    /// How long in-flight requests may run after a shutdown signal; then their connections
    /// are closed without a response. Zero closes them at once (no drain).
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Serves until SIGTERM or ctrl-c; a second one during the drain closes the open
    /// connections at once.
    pub async fn serve(self, listener: TcpListener, app: Router) -> io::Result<()> {
        self.run(listener, app, shutdown_signal(), shutdown_signal)
            .await
    }

    /// Serves until `shutdown` completes, then drains.
    pub async fn serve_until(
        self,
        listener: TcpListener,
        app: Router,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        self.run(listener, app, shutdown, std::future::pending::<()>)
            .await
    }

    /// Serves until `shutdown`, then drains until the deadline or until the future `force`
    /// makes (called once `shutdown` is done) completes.
    async fn run<Force: Future<Output = ()>>(
        self,
        listener: TcpListener,
        app: Router,
        shutdown: impl Future<Output = ()>,
        force: impl FnOnce() -> Force,
    ) -> io::Result<()> {
        hardening_errors::redact_panic_messages();
        let graceful = GracefulShutdown::new();
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout);
        // Every connection's task, so those still open at the drain deadline can be aborted.
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(target: crate::LOG_TARGET, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            // Reap finished connections so the set holds only open ones.
            while connections.try_join_next().is_some() {}
            // Best effort: a socket that refuses TCP_NODELAY still works.
            let _ = stream.set_nodelay(true);
            let app = app.clone();
            let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                let mut app = app.clone();
                async move {
                    app.call(req.map(Body::new))
                        .await
                        .map_err(|e: Infallible| e)
                }
            });
            let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
            connections.spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(target: crate::LOG_TARGET, error = %e, "connection ended with an error");
                }
            });
        }
        drop(listener);
        tracing::info!(target: crate::LOG_TARGET, "shutting down: draining open connections");
        tokio::select! {
            drained = tokio::time::timeout(self.drain_timeout, graceful.shutdown()) => {
                if drained.is_err() {
                    tracing::warn!(
                        target: crate::LOG_TARGET,
                        // Seconds, as a float (as `http.server.request.duration`): whole
                        // seconds showed a deadline under one as 0.
                        deadline_secs = self.drain_timeout.as_secs_f64(),
                        "drain deadline passed; closing the remaining connections"
                    );
                }
            }
            () = force() => {
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

/// The longest header-read timeout: hyper adds it to the clock.
const LONGEST_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// Completes on ctrl-c or (on Unix) SIGTERM. If neither can be listened for, never.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
