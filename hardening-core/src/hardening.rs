//! The `Hardening` builder and its presets.

use std::sync::Arc;
use std::time::Duration;

use hardening_errors::WarnOnce;
use tower::Layer;

use crate::ConfigError;
use crate::access_log::AccessLog;
use crate::client_ip::{ForwardedHeader, IpNet, TrustedProxies};
use crate::cors::Cors;
use crate::health::Health;
use crate::host::AllowedHosts;
use crate::service::HardeningService;

/// Default body limit: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;
/// Default query-parameter limit.
pub const DEFAULT_QUERY_PARAM_LIMIT: usize = 50;
/// Default time a request may take until its response head (a streamed body runs on past it).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The hardening layer. Start from [`Hardening::strict`] and adjust.
///
/// Every step runs in one service and one response future (see the [crate docs](crate)).
/// Setters consume `self`; those that can be misconfigured return
/// `Result<Self, ConfigError>`, so a bad setting fails at start-up with a message, never at
/// the first request. Methods that loosen a strict default are named `dangerous_*` and log a
/// warning when called. On a layer [`HardeningConfig::build`](crate::HardeningConfig::build)
/// made, a setter that replaces a setting one of its variables set warns that the variable
/// now does nothing.
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use hardening_core::{Cors, Hardening};
///
/// let hardening = Hardening::strict()
///     .trusted_proxies(["10.0.0.0/8"])?
///     .cors(Cors::allow_origins(["https://app.example.com"])?)
///     .timeout(Duration::from_secs(10))?;
/// let app: Router = Router::new().route("/", get(|| async { "ok" })).layer(hardening);
/// # Ok::<(), hardening_core::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Hardening {
    pub(crate) policy: Arc<Policy>,
    /// The settings a `HardeningConfig` set, each with the variable (or field) that set it,
    /// for the setters that replace them to say so. Build-time only: no request reads it.
    set_by_config: Vec<(Setting, &'static str)>,
}

/// A setting a `HardeningConfig` variable sets and a setter can replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Setting {
    BodyLimit,
    QueryParamLimit,
    Timeout,
    TrustedProxies,
    ForwardedHeader,
    Cors,
    AllowedHosts,
    LogRequestHeaders,
    BehindTls,
    HttpsRedirect,
    RateLimit,
}

/// Everything the service needs, computed once.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub(crate) body_limit: Option<usize>,
    /// Routes allowed a larger body than `body_limit` (none by default).
    pub(crate) larger_bodies: crate::routes::RouteBodyLimits,
    pub(crate) query_param_limit: Option<usize>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) trusted_proxies: TrustedProxies,
    pub(crate) cors: Cors,
    pub(crate) allowed_hosts: Option<AllowedHosts>,
    pub(crate) access_log: AccessLog,
    pub(crate) health: Option<Health>,
    /// HTTPS is assumed for every request (TLS terminated in front, always).
    pub(crate) behind_tls: bool,
    /// A handler's own `text/html` page for a client error is passed on, not made a problem.
    pub(crate) keep_html_error_pages: bool,
    #[cfg(feature = "headers")]
    pub(crate) headers: Option<hardening_headers::HeaderSet>,
    /// `headers` with slots for the request id and the rate-limit headers, derived once when
    /// the layer is first applied (and again after any change to the policy).
    #[cfg(feature = "headers")]
    pub(crate) response_headers: std::sync::OnceLock<Option<hardening_headers::HeaderSet>>,
    #[cfg(feature = "headers")]
    pub(crate) https_redirect: Option<hardening_headers::HttpsRedirect>,
    /// What the warnings about `https_redirect` call it and the host allowlist, when a
    /// `HardeningConfig` set it: the names its user wrote (else the builder's methods).
    #[cfg(feature = "headers")]
    pub(crate) https_redirect_names: Option<(&'static str, &'static str)>,
    /// The CSRF check the requests get: `csrf_as_set` trusting the origins CORS lets send
    /// credentials too.
    #[cfg(feature = "auth")]
    pub(crate) csrf: Option<hardening_auth::Csrf>,
    /// The CSRF check as set (or the default), before the CORS origins are added: a later
    /// CORS policy replaces them, not adds to them.
    #[cfg(feature = "auth")]
    pub(crate) csrf_as_set: Option<hardening_auth::Csrf>,
    #[cfg(feature = "ratelimit")]
    pub(crate) rate_limiter: Option<hardening_ratelimit::RateLimiter>,
    /// Routes the rate limiter does not count (none by default).
    #[cfg(feature = "ratelimit")]
    pub(crate) rate_limit_exempt: crate::routes::RateLimitExempt,
    /// Writes the limiter's `RateLimit` fields, joined to those of limits further in.
    #[cfg(feature = "ratelimit")]
    pub(crate) rate_limit_fields: hardening_ratelimit::RateLimitFields,
    #[cfg(feature = "ratelimit")]
    pub(crate) concurrency: Option<hardening_ratelimit::ConcurrencyLimiter>,
    /// Whether the warning about a request without a peer address has been given.
    pub(crate) warned_no_peer: WarnOnce,
    /// Whether the warning about a forwarding header with no trusted proxies has been given.
    pub(crate) warned_unread_header: WarnOnce,
    /// Whether the warning about a subscriber that records axum's rejection texts has been
    /// given.
    pub(crate) warned_rejection_logs: WarnOnce,
    /// Whether the warning about an HTTPS redirect to any host a client names has been given.
    #[cfg(feature = "headers")]
    pub(crate) warned_redirect_host: WarnOnce,
}

/// Warns that a request came without a peer address, the first time only (per layer).
#[cold]
#[inline(never)]
pub(crate) fn warn_no_peer(warned: &WarnOnce) {
    if warned.first() {
        tracing::warn!(
            target: crate::LOG_TARGET,
            "a request came without a peer address (no ConnectInfo<SocketAddr> in its \
             extensions): per-IP rate limits cannot apply to it and it has no client IP; \
             serve the app with hardening_core::serve or \
             into_make_service_with_connect_info::<SocketAddr>() (said once per layer)"
        );
    }
}

impl Hardening {
    /// The recommended preset; needs no configuration and no secrets.
    ///
    /// 1 MiB bodies (chunked too), 50 query parameters, 30 s to each response's head (a
    /// streamed body, such as server-sent events, runs on past it), panics answered 500,
    /// every error an RFC 9457 problem, request ids, one redacted access-log event per
    /// request, security events, no cross-origin access, no forwarding headers believed,
    /// `/healthz` and `/readyz`.
    ///
    /// Per-IP rate limits and [`ClientIp`](crate::ClientIp) need the socket's peer address
    /// (`ConnectInfo<SocketAddr>`), which [`serve`](crate::serve) and axum's
    /// `into_make_service_with_connect_info::<SocketAddr>()` provide; a request without one
    /// is not rate limited by IP, and the layer warns about it once.
    pub fn strict() -> Self {
        Self {
            policy: Arc::new(Policy {
                body_limit: Some(DEFAULT_BODY_LIMIT),
                larger_bodies: crate::routes::RouteBodyLimits::default(),
                query_param_limit: Some(DEFAULT_QUERY_PARAM_LIMIT),
                timeout: Some(DEFAULT_TIMEOUT),
                trusted_proxies: TrustedProxies::default(),
                cors: Cors::default(),
                allowed_hosts: None,
                access_log: AccessLog::default(),
                health: Some(Health::new()),
                behind_tls: false,
                keep_html_error_pages: false,
                #[cfg(feature = "headers")]
                headers: Some(
                    hardening_headers::HeaderPolicy::api()
                        .build()
                        .expect("the API header preset is valid (tested in hardening-headers)"),
                ),
                #[cfg(feature = "headers")]
                response_headers: std::sync::OnceLock::new(),
                #[cfg(feature = "headers")]
                https_redirect: None,
                #[cfg(feature = "headers")]
                https_redirect_names: None,
                #[cfg(feature = "auth")]
                csrf: Some(hardening_auth::Csrf::new()),
                #[cfg(feature = "auth")]
                csrf_as_set: Some(hardening_auth::Csrf::new()),
                #[cfg(feature = "ratelimit")]
                rate_limiter: Some(default_rate_limiter()),
                #[cfg(feature = "ratelimit")]
                rate_limit_exempt: crate::routes::RateLimitExempt::default(),
                #[cfg(feature = "ratelimit")]
                rate_limit_fields: hardening_ratelimit::RateLimitFields::new("Hardening"),
                #[cfg(feature = "ratelimit")]
                concurrency: None,
                warned_no_peer: WarnOnce::new(),
                warned_unread_header: WarnOnce::new(),
                warned_rejection_logs: WarnOnce::new(),
                #[cfg(feature = "headers")]
                warned_redirect_host: WarnOnce::new(),
            }),
            set_by_config: Vec::new(),
        }
    }

    /// This layer, remembering that the variables (or fields) of `sources` set their
    /// settings: a setter that replaces one then warns.
    pub(crate) fn set_by_config(mut self, sources: Vec<(Setting, &'static str)>) -> Self {
        self.set_by_config = sources;
        self
    }

    /// Warns, once, that `method` replaces `setting` where a `HardeningConfig` variable set
    /// it: that variable then does nothing. Also when the value is the same, as the
    /// variable no longer governs it (changing it would change nothing).
    fn replaces(&mut self, setting: Setting, method: &str) {
        let variables: Vec<&str> = self
            .set_by_config
            .iter()
            .filter(|(set, _)| *set == setting)
            .map(|(_, variable)| *variable)
            .collect();
        if variables.is_empty() {
            return;
        }
        self.set_by_config.retain(|(set, _)| *set != setting);
        let variables = variables.join(" and ");
        tracing::warn!(
            target: crate::LOG_TARGET,
            setting = method,
            variable = variables,
            "{method}(..) replaces what {variables} set: changing {variables} now changes \
             nothing; drop {variables}, or the {method}(..) call"
        );
    }

    fn policy(&mut self) -> &mut Policy {
        let policy = Arc::make_mut(&mut self.policy);
        // Whatever changes, the derived header set is derived again.
        #[cfg(feature = "headers")]
        {
            policy.response_headers = std::sync::OnceLock::new();
        }
        policy
    }

    /// Sets the largest request body accepted, in bytes (default 1 MiB). Larger bodies,
    /// declared or streamed, are answered 413. A body's declared size is its exact size when
    /// the body knows it (hyper's request bodies know it from `Content-Length`, which HTTP
    /// framing holds them to), else its `Content-Length`; a body of unknown size is also
    /// counted as it is read.
    ///
    /// axum's own extractors also apply `DefaultBodyLimit` (2 MB); to accept more than that,
    /// raise it too. To accept more on one route only, keep this limit and give that route
    /// [`allow_larger_body`](Self::allow_larger_body).
    ///
    /// Larger than the default loosens it and logs a warning naming the value.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroLimit`] for 0, which would refuse every body;
    /// [`ConfigError::BodyLimitNotRaised`] when a route's
    /// [`allow_larger_body`](Self::allow_larger_body) is not larger than `bytes`.
    pub fn body_limit(mut self, bytes: usize) -> Result<Self, ConfigError> {
        if bytes == 0 {
            return Err(ConfigError::ZeroLimit("body_limit"));
        }
        if let Some((route, larger)) = self
            .policy
            .larger_bodies
            .iter()
            .find(|(_, larger)| **larger <= bytes)
        {
            return Err(ConfigError::BodyLimitNotRaised {
                route: route.as_str().to_owned(),
                bytes: *larger,
                body_limit: bytes,
            });
        }
        warn_if_above("body_limit", bytes, DEFAULT_BODY_LIMIT, "larger");
        self.replaces(Setting::BodyLimit, "body_limit");
        self.policy().body_limit = Some(bytes);
        Ok(self)
    }

    /// Accepts bodies up to `bytes` on one route, keeping [`body_limit`](Self::body_limit)
    /// (1 MiB by default) for every other path: nginx's `client_max_body_size` in a
    /// `location`. Logs a warning naming the route and the size. Call it once per route.
    ///
    /// `route` is a pattern in axum's syntax, of whole segments: `/upload`,
    /// `/docs/{id}/file` (`{id}`: one non-empty segment; `/docs//file`, which axum routes
    /// there too, keeps the smaller limit), `/files/{*path}` (a non-empty rest, last only). It is matched against the request's path as this layer sees it (under a
    /// `Router` it wraps, the path the router routes; inside `Router::nest`, the path under
    /// the nest's prefix), byte for byte as axum's router matches it: no percent-decoding,
    /// no merging of slashes, a trailing slash and case count. So `//upload`, `/upload/` or
    /// `/upl%6Fad`, which axum does not route to `/upload`, keep the smaller limit. Of two
    /// patterns that match a path, the more specific (literal before `{param}` before
    /// `{*rest}`, segment by segment, as axum prefers them) gives the limit.
    ///
    /// A pattern matches every path of its shape: give `{param}` or `{*rest}` only where your
    /// router sends all those paths to the route. (If it also has a more specific route, such
    /// as `/docs/index/file` beside `/docs/{id}/file`, that route gets the larger limit too.)
    ///
    /// The rest of the body limit works the same on the route: a declared size over its
    /// limit is refused before the body is read, a chunked body is counted as it arrives,
    /// and either gets the same 413 problem, with the route's limit. axum's extractors apply
    /// their own `DefaultBodyLimit` (2 MB) as well: raise it on the route too
    /// (`DefaultBodyLimit::max`). [`dangerous_disable_body_limit`](Self::dangerous_disable_body_limit)
    /// still lifts every limit.
    ///
    /// ```
    /// use axum::{Router, body::{Body, Bytes}, extract::DefaultBodyLimit, routing::post};
    /// use hardening_core::Hardening;
    /// use tower::ServiceExt;
    ///
    /// const UPLOAD: usize = 20 * 1024 * 1024;
    /// let upload = post(|body: Bytes| async move { body.len().to_string() });
    /// let app = Router::new()
    ///     .route("/docs/{id}/file", upload.layer(DefaultBodyLimit::max(UPLOAD)))
    ///     .route("/notes", post(|body: Bytes| async move { body.len().to_string() }))
    ///     .layer(Hardening::strict().allow_larger_body("/docs/{id}/file", UPLOAD)?);
    /// let send = |path: &str, size: usize| {
    ///     let req = http::Request::post(path).body(Body::from(vec![b'x'; size])).unwrap();
    ///     app.clone().oneshot(req)
    /// };
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
    /// assert_eq!(send("/docs/7/file", 5 * 1024 * 1024).await?.status(), 200);
    /// let refused = send("/notes", 2 * 1024 * 1024).await?;
    /// assert_eq!(refused.status(), 413);
    /// assert_eq!(refused.headers()["content-type"], "application/problem+json");
    /// assert_eq!(send("/docs/7/file/", 2 * 1024 * 1024).await?.status(), 413);
    /// # Ok::<(), std::convert::Infallible>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroLimit`] for 0; [`ConfigError::BodyLimitNotRaised`] for a size not
    /// above [`body_limit`](Self::body_limit) (it would change nothing; axum's
    /// `DefaultBodyLimit::max` lowers a route's limit); [`ConfigError::InvalidRoute`]
    /// for a pattern that cannot match a request's path (not starting with `/`, with a
    /// space, `?` or `#`, a parameter that is not a whole segment, a catch-all before the
    /// end), uses axum's escaped braces (`{{`), or matches the same paths as one given
    /// before.
    pub fn allow_larger_body(
        mut self,
        route: impl AsRef<str>,
        bytes: usize,
    ) -> Result<Self, ConfigError> {
        let route = route.as_ref();
        if bytes == 0 {
            return Err(ConfigError::ZeroLimit("allow_larger_body"));
        }
        if let Some(body_limit) = self.policy.body_limit
            && bytes <= body_limit
        {
            return Err(ConfigError::BodyLimitNotRaised {
                route: route.to_owned(),
                bytes,
                body_limit,
            });
        }
        let pattern = crate::routes::RoutePattern::parse(route, "allow_larger_body")?;
        let mut larger_bodies = self.policy.larger_bodies.clone();
        larger_bodies.add(pattern, bytes, "allow_larger_body")?;
        let elsewhere = match self.policy.body_limit {
            Some(limit) => format!("{limit} bytes elsewhere"),
            None => "with dangerous_disable_body_limit, any size is, anywhere".to_owned(),
        };
        warn_loosened(
            "allow_larger_body",
            &format!(
                "request bodies up to {bytes} bytes are accepted on route {route} ({elsewhere})"
            ),
        );
        self.policy().larger_bodies = larger_bodies;
        Ok(self)
    }

    /// Sets the most query parameters accepted (default 50); more are answered 400. More
    /// than the default loosens it and logs a warning naming the value.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroLimit`] for 0.
    pub fn query_param_limit(mut self, count: usize) -> Result<Self, ConfigError> {
        if count == 0 {
            return Err(ConfigError::ZeroLimit("query_param_limit"));
        }
        warn_if_above(
            "query_param_limit",
            count,
            DEFAULT_QUERY_PARAM_LIMIT,
            "more",
        );
        self.replaces(Setting::QueryParamLimit, "query_param_limit");
        self.policy().query_param_limit = Some(count);
        Ok(self)
    }

    /// Sets how long a request may take until its response head (default 30 s); longer
    /// ones are answered 503, or 408 with `Connection: close` when the request's body is
    /// still arriving then (the client, not the service, is slow). The clock starts when the
    /// service first has to wait (its first `Pending`), so responses that are ready at once
    /// never touch the timer; the work before that first wait is the synchronous part of one
    /// poll. The body is not timed: a stream (server-sent events, a model's tokens, a large
    /// download) runs on after its head for as long as it takes, until it ends, its client
    /// goes, or [`Server`](crate::Server)'s send timeout cuts off a client that stopped
    /// reading (or its minimum send rate one that reads too slowly).
    ///
    /// Longer than the default loosens it (slow clients hold their requests longer) and logs
    /// a warning naming the value; long uploads may need it.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroLimit`] for `Duration::ZERO`.
    pub fn timeout(mut self, timeout: Duration) -> Result<Self, ConfigError> {
        if timeout.is_zero() {
            return Err(ConfigError::ZeroLimit("timeout"));
        }
        warn_if_above("timeout", timeout, DEFAULT_TIMEOUT, "longer");
        self.replaces(Setting::Timeout, "timeout");
        self.policy().timeout = Some(timeout);
        Ok(self)
    }

    /// Accepts bodies of any size. Logs a warning. The body-limit step also answers 400 to a
    /// body of unknown size with an invalid `Content-Length`; without it that is left to the
    /// server (hyper refuses such a request before any layer sees it).
    pub fn dangerous_disable_body_limit(mut self) -> Self {
        warn_loosened(
            "dangerous_disable_body_limit",
            "request bodies of any size are accepted",
        );
        self.replaces(Setting::BodyLimit, "dangerous_disable_body_limit");
        self.policy().body_limit = None;
        self
    }

    /// Accepts any number of query parameters. Logs a warning.
    pub fn dangerous_disable_query_param_limit(mut self) -> Self {
        warn_loosened(
            "dangerous_disable_query_param_limit",
            "any number of query parameters is accepted",
        );
        self.replaces(
            Setting::QueryParamLimit,
            "dangerous_disable_query_param_limit",
        );
        self.policy().query_param_limit = None;
        self
    }

    /// Lets requests run for ever. Logs a warning.
    pub fn dangerous_disable_timeout(mut self) -> Self {
        warn_loosened("dangerous_disable_timeout", "requests may run for ever");
        self.replaces(Setting::Timeout, "dangerous_disable_timeout");
        self.policy().timeout = None;
        self
    }

    /// Believes the forwarding header (`X-Forwarded-For` unless
    /// [`forwarded_header`](Self::forwarded_header) says otherwise), what it says about HTTPS
    /// (`X-Forwarded-Proto`'s last value with `X-Forwarded-For`; the `proto` of the client's
    /// element with `Forwarded`, and then no `X-Forwarded-Proto`) and `x-request-id` from
    /// peers in these networks (`10.0.0.0/8`, `fd00::/8`, `127.0.0.1`), and only from them.
    ///
    /// A network that covers every address of its family (`0.0.0.0/0`, `::/0`) is accepted
    /// with a warning: any client of that family could then choose its own IP. Called again,
    /// the new list replaces the old one (give every network in one call).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidNetwork`] for an entry that is not an address or a CIDR network.
    pub fn trusted_proxies<I>(mut self, networks: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let nets = networks
            .into_iter()
            .map(|n| n.as_ref().parse::<IpNet>())
            .collect::<Result<Vec<_>, _>>()?;
        if nets.iter().any(IpNet::covers_everything) {
            warn_loosened(
                "trusted_proxies",
                "every address of a family (0.0.0.0/0: IPv4, ::/0: IPv6) is a trusted proxy: \
                 any client of that family can choose its own IP",
            );
        }
        self.replaces(Setting::TrustedProxies, "trusted_proxies");
        self.policy().trusted_proxies.set_networks(nets);
        Ok(self)
    }

    /// Which forwarding header the trusted proxies write (default `X-Forwarded-For`): the
    /// client IP is read from that one only, so a client cannot choose its IP by sending
    /// the other one, which the proxy would pass through.
    ///
    /// It is read only from [`trusted_proxies`](Self::trusted_proxies): set without any, it
    /// is ignored, and applying the layer logs a warning.
    pub fn forwarded_header(mut self, header: ForwardedHeader) -> Self {
        self.replaces(Setting::ForwardedHeader, "forwarded_header");
        self.policy().trusted_proxies.set_header(header);
        self
    }

    /// Treats every request as HTTPS (TLS is terminated in front of this service, always):
    /// HSTS is sent and `upgrade-insecure-requests` added. Without it, a request counts as
    /// HTTPS when TLS is seen in-process or a trusted proxy says so (see
    /// [`trusted_proxies`](Self::trusted_proxies)).
    pub fn behind_tls(mut self) -> Self {
        self.replaces(Setting::BehindTls, "behind_tls");
        self.policy().behind_tls = true;
        self
    }

    /// Sets the security headers (default: `HeaderPolicy::api()`; use `HeaderPolicy::html()`
    /// for server-rendered pages with CSP nonces).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Headers`] when [`HeaderPolicy::build`](hardening_headers::HeaderPolicy::build)
    /// refuses the policy.
    #[cfg(feature = "headers")]
    pub fn security_headers(
        mut self,
        policy: hardening_headers::HeaderPolicy,
    ) -> Result<Self, ConfigError> {
        self.policy().headers = Some(policy.build()?);
        Ok(self)
    }

    /// Sends no security headers and leaves `Set-Cookie` alone. Logs a warning.
    #[cfg(feature = "headers")]
    pub fn dangerous_without_security_headers(mut self) -> Self {
        warn_loosened(
            "dangerous_without_security_headers",
            "no security headers, cookies unchecked",
        );
        self.policy().headers = None;
        self
    }

    /// Redirects plain-HTTP requests to HTTPS (after the host allowlist; health probes are
    /// answered before it).
    ///
    /// Without [`allowed_hosts`](Self::allowed_hosts) or a fixed
    /// [`HttpsRedirect::to_host`](hardening_headers::HttpsRedirect::to_host), the redirect goes
    /// to whatever host the request names, and applying the layer logs a warning saying so.
    #[cfg(feature = "headers")]
    pub fn https_redirect(mut self, redirect: hardening_headers::HttpsRedirect) -> Self {
        self.replaces(Setting::HttpsRedirect, "https_redirect");
        self.policy().https_redirect = Some(redirect);
        self.policy().https_redirect_names = None;
        self
    }

    /// [`https_redirect`](Self::https_redirect) set by a `HardeningConfig`, whose user calls
    /// the redirect and the host allowlist `names`: its warnings use them.
    #[cfg(feature = "headers")]
    pub(crate) fn https_redirect_named(
        self,
        redirect: hardening_headers::HttpsRedirect,
        names: (&'static str, &'static str),
    ) -> Self {
        let mut hardening = self.https_redirect(redirect);
        hardening.policy().https_redirect_names = Some(names);
        hardening
    }

    /// Sets the CSRF policy (default with feature `auth`: same-origin only). Origins the
    /// CORS policy lets send credentials ([`Cors::allow_credentials`]) are trusted by it too,
    /// whichever of the two is set first.
    ///
    /// A cookie-carrying POST from another site gets a 403 problem:
    ///
    /// ```
    /// use axum::{Router, body::Body, routing::post};
    /// use hardening_core::{Hardening, auth::Csrf};
    /// use tower::ServiceExt;
    ///
    /// let csrf = Csrf::new().trust_origins(["https://admin.example.com"])?;
    /// let hardening = Hardening::strict().csrf(csrf);
    /// let app = Router::new().route("/notes", post(|| async { "created" })).layer(hardening);
    /// let post_from = |site: &str, origin: &str| {
    ///     let req = http::Request::post("/notes")
    ///         .header("host", "api.example.com")
    ///         .header("cookie", "__Host-session=abc")
    ///         .header("sec-fetch-site", site)
    ///         .header("origin", origin);
    ///     app.clone().oneshot(req.body(Body::empty()).unwrap())
    /// };
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let res = post_from("cross-site", "https://evil.example").await?;
    /// assert_eq!(res.status(), 403);
    /// assert_eq!(res.headers()["content-type"], "application/problem+json");
    /// assert_eq!(post_from("same-site", "https://admin.example.com").await?.status(), 200);
    /// assert_eq!(post_from("same-origin", "https://api.example.com").await?.status(), 200);
    /// # Ok::<(), std::convert::Infallible>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "auth")]
    pub fn csrf(mut self, csrf: hardening_auth::Csrf) -> Self {
        self.policy().csrf_as_set = Some(csrf);
        self.policy().trust_credentialed_cors_origins();
        self
    }

    /// Runs no CSRF check. Logs a warning.
    #[cfg(feature = "auth")]
    pub fn dangerous_without_csrf(mut self) -> Self {
        warn_loosened(
            "dangerous_without_csrf",
            "requests from other sites carrying cookies or HTTP authentication are accepted",
        );
        self.policy().csrf_as_set = None;
        self.policy().csrf = None;
        self
    }

    /// Sets the rate limiter (default: policy `per-ip`, 100 requests per minute per client IP
    /// with a burst of 50, IPv6 grouped by /64). Each policy in
    /// [shadow mode](hardening_ratelimit::Policy::shadow) is logged as a loosening. Routes left
    /// out with [`allow_route_without_rate_limit`](Self::allow_route_without_rate_limit), in
    /// either order, stay out of it. The `RateLimit` and `RateLimit-Policy` fields name the
    /// policies that counted the request, and only those.
    ///
    /// # Errors
    ///
    /// [`ConfigError::PolicyNeedsPrincipal`] for a policy that counts by principal or tenant
    /// (alone or in a composite key): `Hardening` runs before any auth layer, so it would
    /// never count anything. Give such a policy to a `RateLimitLayer` inside the auth layer. (A limiter has at least one policy,
    /// no blank name and no two of one name: `RateLimiter::try_new` refuses each, and with `?`
    /// its error converts to [`ConfigError::NoRateLimitPolicies`],
    /// [`ConfigError::RateLimit`] or [`ConfigError::DuplicatePolicyName`].)
    #[cfg(feature = "ratelimit")]
    pub fn rate_limit(
        mut self,
        limiter: hardening_ratelimit::RateLimiter,
    ) -> Result<Self, ConfigError> {
        if let Some(policy) = limiter.policies().find(|p| needs_principal(p.key_kind())) {
            return Err(ConfigError::PolicyNeedsPrincipal(policy.name().to_string()));
        }
        for policy in limiter.policies().filter(|p| p.is_shadow()) {
            warn_loosened(
                "Policy::shadow",
                &format!(
                    "rate-limit policy `{}` reports but does not refuse",
                    policy.name()
                ),
            );
        }
        self.replaces(Setting::RateLimit, "rate_limit");
        self.policy().rate_limiter = Some(limiter);
        Ok(self)
    }

    /// Caps requests in flight per client IP (429 past it) and optionally overall (503: load
    /// shed). A slot is held until the response body has been sent or dropped: a stream's
    /// (server-sent events) to its end. An upgraded connection (a WebSocket) holds none once
    /// its 101, which has no body, is sent
    /// ([`Server::max_connections`](crate::Server::max_connections) counts those). Off by
    /// default.
    /// Clones of one limiter share its counts: given to several layers, they cap them
    /// together (a limiter of its own per layer is a `per_client` call per layer).
    #[cfg(feature = "ratelimit")]
    pub fn concurrency_limit(mut self, limiter: hardening_ratelimit::ConcurrencyLimiter) -> Self {
        self.policy().concurrency = Some(limiter);
        self
    }

    /// **Loosens**: requests to `route` are not counted by this layer's rate limit (the
    /// [`rate_limit`](Self::rate_limit) policies, `per-ip` by default), which every other path
    /// keeps: for a payment provider's webhook, say, called in bursts from a few addresses.
    /// Logs a warning naming the route. Call it once per route.
    ///
    /// `route` is a pattern in axum's syntax, matched as
    /// [`allow_larger_body`](Self::allow_larger_body) matches its routes: whole segments
    /// (`/webhooks/stripe`, `/webhooks/{provider}`, `/hooks/{*rest}`), against the path as
    /// this layer sees it, byte for byte as axum's router matches it. So `//webhooks/stripe`,
    /// `/webhooks/stripe/`, `/Webhooks/stripe` or `/webhooks/strip%65`, which axum does not
    /// route to `/webhooks/stripe`, are counted as every other path is. A pattern matches every
    /// path of its shape: give `{param}` or `{*rest}` only where your router sends all those
    /// paths to the route (a more specific route beside it, `/webhooks/internal` beside
    /// `/webhooks/{provider}`, is left out too).
    ///
    /// Responses on the route carry no `RateLimit` or `RateLimit-Policy` field (nothing
    /// counted them). The [`concurrency_limit`](Self::concurrency_limit), if any, still
    /// applies, and so does a limit of the route's own: a webhook that must still be bounded
    /// can take a `RateLimitLayer` with a global policy as a `route_layer`.
    ///
    /// The route is named here rather than marked by a layer on the route, because this layer
    /// decides before the router runs (a refused request costs no routing, and the
    /// `Hardening` outside a `Router` sees no matched route): a mark set on the route would
    /// come after the request was counted.
    ///
    /// ```
    /// use std::{net::SocketAddr, num::NonZeroU32};
    /// use axum::{Router, body::Body, extract::ConnectInfo, routing::{get, post}};
    /// use hardening_core::Hardening;
    /// use hardening_core::ratelimit::{Policy, Quota, RateLimiter};
    /// use tower::ServiceExt;
    ///
    /// let once = Quota::per_hour(NonZeroU32::new(1).unwrap());
    /// let app = Router::new()
    ///     .route("/webhooks/stripe", post(|| async { "received" }))
    ///     .route("/notes", get(|| async { "notes" }))
    ///     .layer(
    ///         Hardening::strict()
    ///             .rate_limit(RateLimiter::new([Policy::per_client_ip("per-ip", once)]))?
    ///             .allow_route_without_rate_limit("/webhooks/stripe")?,
    ///     );
    /// let peer = ConnectInfo(SocketAddr::from(([203, 0, 113, 7], 40_000)));
    /// let send = |method: &str, path: &str| {
    ///     let req = http::Request::builder().method(method).uri(path).extension(peer);
    ///     app.clone().oneshot(req.body(Body::empty()).unwrap())
    /// };
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
    /// for _ in 0..5 {
    ///     let res = send("POST", "/webhooks/stripe").await?;
    ///     assert_eq!(res.status(), 200);
    ///     assert!(!res.headers().contains_key("ratelimit-policy"));
    /// }
    /// assert_eq!(send("GET", "/notes").await?.status(), 200);
    /// assert_eq!(send("GET", "/notes").await?.status(), 429);
    /// // Another spelling of the path is another path: counted (and spent).
    /// assert_eq!(send("POST", "//webhooks/stripe").await?.status(), 429);
    /// # Ok::<(), std::convert::Infallible>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidRoute`] for a pattern that cannot match a request's path (not
    /// starting with `/`, with a space, `?` or `#`, a parameter that is not a whole segment, a
    /// catch-all before the end), uses axum's escaped braces (`{{`), or matches the same
    /// paths as one given before.
    #[cfg(feature = "ratelimit")]
    pub fn allow_route_without_rate_limit(
        mut self,
        route: impl AsRef<str>,
    ) -> Result<Self, ConfigError> {
        const SETTING: &str = "allow_route_without_rate_limit";
        let route = route.as_ref();
        let mut exempt = self.policy.rate_limit_exempt.clone();
        exempt.add(
            crate::routes::RoutePattern::parse(route, SETTING)?,
            (),
            SETTING,
        )?;
        warn_loosened(
            SETTING,
            &format!(
                "requests to route {route} are not rate limited (the rate limit still applies \
                 to every other path)"
            ),
        );
        self.policy().rate_limit_exempt = exempt;
        Ok(self)
    }

    /// Applies no rate limit. Logs a warning.
    #[cfg(feature = "ratelimit")]
    pub fn dangerous_without_rate_limit(mut self) -> Self {
        warn_loosened("dangerous_without_rate_limit", "no request rate limit");
        self.replaces(Setting::RateLimit, "dangerous_without_rate_limit");
        self.policy().rate_limiter = None;
        self
    }

    /// Sets the health endpoints (default: [`Health::new`], `/healthz` and `/readyz`
    /// with no checks).
    pub fn health(mut self, health: Health) -> Self {
        self.policy().health = Some(health);
        self
    }

    /// Serves no health endpoints; requests to their paths reach the service.
    pub fn without_health(mut self) -> Self {
        self.policy().health = None;
        self
    }

    /// Sets the CORS policy (default: no cross-origin access). With
    /// [`Cors::allow_credentials`], the CSRF check also trusts the listed origins: a
    /// credentialed request they send is what that setting asks for.
    pub fn cors(mut self, cors: Cors) -> Self {
        self.replaces(Setting::Cors, "cors");
        self.policy().cors = cors;
        #[cfg(feature = "auth")]
        self.policy().trust_credentialed_cors_origins();
        self
    }

    /// Answers only requests whose `Host` is one of these (`example.com`, or `.example.com`
    /// for it and its subdomains); others get a 400 problem. Off by default.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidHost`] for an entry that is not a host name, or for an empty
    /// list (it would refuse every request).
    pub fn allowed_hosts<I>(mut self, hosts: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let hosts = AllowedHosts::new(hosts)?;
        self.replaces(Setting::AllowedHosts, "allowed_hosts");
        self.policy().allowed_hosts = Some(hosts);
        Ok(self)
    }

    /// Redacts query parameters, and request headers (with [`log_request_headers`]), whose
    /// names contain these, besides the defaults
    /// ([`DEFAULT_SENSITIVE_PARAMS`](crate::DEFAULT_SENSITIVE_PARAMS)): a vendor's API-key
    /// header such as `x-honeycomb-team`, say. Names are trimmed and compared ignoring
    /// case; an empty one is left out.
    ///
    /// [`log_request_headers`]: Self::log_request_headers
    pub fn sensitive_query_params<I>(mut self, names: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.policy().access_log.add_sensitive_params(names);
        self
    }

    /// Passes on the pages a server-rendered app answers for client errors (a 404 "no such
    /// note" page, a 403 "not your document" page, a 422 form shown again with its errors)
    /// instead of replacing them with problems. Off by default: every error is a problem.
    ///
    /// A handler's 4xx whose `Content-Type` is `text/html` (parameters aside:
    /// `text/html; charset=utf-8` is, `text/htmlx` is not; see
    /// [`is_html_error_page`](hardening_errors::is_html_error_page)) keeps its body, and
    /// gets what a page gets: `x-request-id`, the security headers (a nonce CSP and its
    /// `Cache-Control` rules under `HeaderPolicy::html()`),
    /// the security event its status stands for (401, 403, …) and the access-log event.
    /// Still problems: server errors (a 5xx page may show internals), a 4xx of another type
    /// (axum's plain-text extractor rejections, an empty 404 or 405), a handler's `Problem`
    /// or `Error`, and this layer's own answers (rate limit, CSRF, body limit, timeout,
    /// CORS, host). A body the limit cut off is answered 413 whatever the handler sent.
    ///
    /// Logged once, at INFO, when called (it changes what clients get). A `ProblemLayer`
    /// outside this layer would still make problems of the pages: give it
    /// [`ProblemLayer::keep_html_error_pages`](hardening_errors::ProblemLayer::keep_html_error_pages)
    /// too, or drop it (this layer maps problems itself).
    ///
    /// ```
    /// use axum::{Router, body::Body, response::Html, routing::get};
    /// use hardening_core::Hardening;
    /// use http::StatusCode;
    /// use tower::ServiceExt;
    ///
    /// let app = Router::new()
    ///     .route("/notes/7", get(|| async { (StatusCode::NOT_FOUND, Html("<h1>No such note</h1>")) }))
    ///     .route("/broken", get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, Html("<pre>db at 10.0.0.7</pre>")) }))
    ///     .layer(Hardening::strict().keep_html_error_pages());
    /// let get = |path| app.clone().oneshot(http::Request::get(path).body(Body::empty()).unwrap());
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
    /// let res = get("/notes/7").await?;
    /// assert_eq!(res.status(), 404);
    /// assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
    /// assert!(res.headers().contains_key("x-request-id"));
    /// assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    /// assert_eq!(axum::body::to_bytes(res.into_body(), 4096).await.unwrap(), "<h1>No such note</h1>");
    ///
    /// let res = get("/broken").await?;
    /// assert_eq!(res.status(), 500);
    /// assert_eq!(res.headers()["content-type"], "application/problem+json");
    /// let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
    /// assert!(!String::from_utf8_lossy(&body).contains("10.0.0.7"));
    /// # Ok::<(), std::convert::Infallible>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn keep_html_error_pages(mut self) -> Self {
        tracing::info!(
            target: crate::LOG_TARGET,
            setting = "keep_html_error_pages",
            "handlers' own text/html pages for client errors (4xx) are passed on instead of \
             problems; server errors, other client errors and this layer's own rejections \
             stay problems"
        );
        self.policy().keep_html_error_pages = true;
        self
    }

    /// Adds the request headers to the access-log event, with `Authorization`, `Cookie`,
    /// API keys and other credentials redacted. Off by default.
    pub fn log_request_headers(mut self) -> Self {
        self.replaces(Setting::LogRequestHeaders, "log_request_headers");
        self.policy().access_log.set_log_headers(true);
        self
    }
}

/// The strict preset's limiter: 100 per minute per client IP, burst 50.
#[cfg(feature = "ratelimit")]
fn default_rate_limiter() -> hardening_ratelimit::RateLimiter {
    use std::num::NonZeroU32;
    const HUNDRED: NonZeroU32 = NonZeroU32::new(100).expect("non-zero");
    const FIFTY: NonZeroU32 = NonZeroU32::new(50).expect("non-zero");
    per_ip_rate_limiter(HUNDRED, FIFTY)
}

/// The `per-ip` policy alone, at this rate.
#[cfg(feature = "ratelimit")]
pub(crate) fn per_ip_rate_limiter(
    per_minute: std::num::NonZeroU32,
    burst: std::num::NonZeroU32,
) -> hardening_ratelimit::RateLimiter {
    hardening_ratelimit::RateLimiter::new([hardening_ratelimit::Policy::per_client_ip(
        "per-ip",
        hardening_ratelimit::Quota::per_minute(per_minute).burst(burst),
    )])
}

#[cfg(feature = "headers")]
impl Policy {
    /// The security headers with a slot each for `x-request-id`, `Content-Length` and, when
    /// the rate limiter is on, `RateLimit` and `RateLimit-Policy`: written in one pass, in
    /// that order.
    pub(crate) fn response_headers(&self) -> Option<&hardening_headers::HeaderSet> {
        use hardening_headers::Merge;
        self.response_headers
            .get_or_init(|| {
                let set = self.headers.as_ref()?;
                #[allow(unused_mut)]
                let mut slots = vec![
                    (crate::service::X_REQUEST_ID.clone(), Merge::Replace),
                    (http::header::CONTENT_LENGTH, Merge::Replace),
                ];
                #[cfg(feature = "ratelimit")]
                if self.rate_limiter.is_some() {
                    slots.push((hardening_ratelimit::RATELIMIT.clone(), Merge::List));
                    slots.push((hardening_ratelimit::RATELIMIT_POLICY.clone(), Merge::List));
                }
                set.with_slots(slots).ok()
            })
            .as_ref()
    }
}

#[cfg(feature = "auth")]
impl Policy {
    /// The CSRF check as set, trusting the origins the CORS policy now lets send credentials
    /// too (those of a CORS policy it replaced no longer).
    fn trust_credentialed_cors_origins(&mut self) {
        let origins = self.cors.credentialed_origins();
        self.csrf = self.csrf_as_set.clone().map(|csrf| {
            if origins.is_empty() {
                return csrf;
            }
            // The CORS origins passed the parser `trust_origins` uses: this cannot fail.
            csrf.clone().trust_origins(origins).unwrap_or(csrf)
        });
    }
}

/// The key needs the authenticated principal or its tenant (alone or as part of a composite
/// key).
#[cfg(feature = "ratelimit")]
fn needs_principal(key: &hardening_ratelimit::KeyKind) -> bool {
    use hardening_ratelimit::KeyKind;
    match key {
        KeyKind::Principal | KeyKind::Tenant => true,
        KeyKind::Composite(parts) => parts.iter().any(needs_principal),
        _ => false,
    }
}

thread_local! {
    /// The `HardeningConfig` setting (its `HARDENING_*` variable, or its field) whose builder
    /// step runs on this thread, if any.
    static SET_BY: std::cell::Cell<Option<&'static str>> = const { std::cell::Cell::new(None) };
}

/// Runs `step` with the loosening warnings it logs naming `variable` as their source.
pub(crate) fn set_by_variable<T>(variable: &'static str, step: impl FnOnce() -> T) -> T {
    /// Clears the variable when the step ends, however it ends.
    struct Reset(Option<&'static str>);
    impl Drop for Reset {
        fn drop(&mut self) {
            SET_BY.with(|v| v.set(self.0));
        }
    }
    let _reset = Reset(SET_BY.with(|v| v.replace(Some(variable))));
    step()
}

pub(crate) fn warn_loosened(method: &str, effect: &str) {
    match SET_BY.with(std::cell::Cell::get) {
        Some(variable) => tracing::warn!(
            target: crate::LOG_TARGET,
            setting = method,
            variable,
            "hardening loosened by {variable}: {effect}"
        ),
        None => tracing::warn!(
            target: crate::LOG_TARGET,
            setting = method,
            "hardening loosened: {effect}"
        ),
    }
}

/// Warns that the limit `method` sets is loosened, when `value` is above its `default`
/// (`above` says how: "longer", "larger").
pub(crate) fn warn_if_above<T: PartialOrd + std::fmt::Debug>(
    method: &str,
    value: T,
    default: T,
    above: &str,
) {
    if value > default {
        warn_loosened(
            method,
            &format!("{method} is {value:?}, {above} than the default {default:?}"),
        );
    }
}

impl<S> Layer<S> for Hardening {
    type Service = HardeningService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        // Derived here, once, so that no request pays for it.
        #[cfg(feature = "headers")]
        let _ = self.policy.response_headers();
        // Settings that need each other, checked once they are all made (in any order).
        if let Some(header) = self.policy.trusted_proxies.unread_header()
            && self.policy.warned_unread_header.first()
        {
            tracing::warn!(
                target: crate::LOG_TARGET,
                setting = "forwarded_header",
                "forwarded_header(ForwardedHeader::{header:?}) is ignored: there are no \
                 trusted_proxies to read it from, so every client IP is the socket peer; list \
                 your proxies' networks with trusted_proxies(..), or drop forwarded_header"
            );
        }
        #[cfg(feature = "headers")]
        if let Some(redirect) = &self.policy.https_redirect
            && !redirect.has_fixed_host()
            && self.policy.allowed_hosts.is_none()
            && self.policy.warned_redirect_host.first()
        {
            let (redirect, fix) = match self.policy.https_redirect_names {
                Some((redirect, hosts)) => (redirect, format!("list your hosts in {hosts}")),
                None => (
                    "https_redirect",
                    "list your hosts with allowed_hosts(..), or fix the redirect's host with \
                     HttpsRedirect::to_host(..)"
                        .to_owned(),
                ),
            };
            tracing::warn!(
                target: crate::LOG_TARGET,
                setting = "https_redirect",
                "{redirect} sends plain-HTTP requests to whatever host their Host header \
                 names: a shared cache that keys on the path alone can then keep a permanent \
                 redirect to another site for everyone; {fix} (said once per layer)"
            );
        }
        if crate::access_log::records_axum_rejections() && self.policy.warned_rejection_logs.first()
        {
            tracing::warn!(
                target: crate::LOG_TARGET,
                logs = crate::access_log::AXUM_REJECTION_TARGET,
                "the tracing subscriber records axum's rejection events (target \
                 axum::rejection, TRACE): with axum's `tracing` feature, on by default, their \
                 text quotes the client's input, such as a mistyped password; add \
                 `axum::rejection=off` to its filter (RUST_LOG=trace,axum::rejection=off), or \
                 log with hardening_core::init_json_logs, which leaves them out (said once per layer)"
            );
        }
        // The first id calibrates the request ids' clock (up to 200 ms, once per process):
        // now, not in the first request's time.
        let _ = hardening_errors::RequestId::generate();
        HardeningService::new(inner, self.policy.clone())
    }
}
