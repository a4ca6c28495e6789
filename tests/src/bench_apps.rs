//! The three services the overhead benchmarks compare, built the same way for criterion
//! (`benches/overhead.rs`) and for the loopback load test (`src/bin/bench-server.rs`).

use std::num::NonZeroU32;
use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use hardening_core::Hardening;
use hardening_core::headers::{HeaderPolicy, RequestFacts, SecurityHeadersLayer};
use hardening_core::ratelimit::{Policy, Quota, RateLimiter};
use http::header::{self, HeaderName, HeaderValue};
use tower::ServiceBuilder;
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::CorsLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// What every variant answers.
pub const HELLO: &str = "Hello, World!";

/// The request both in-process comparisons send (`benches/overhead.rs` and the
/// `overhead-interleaved` binary): `GET /` with a `Host` and the peer address a served app
/// would have.
pub fn hello_request(peer: std::net::SocketAddr) -> http::Request<axum::body::Body> {
    let mut req = http::Request::new(axum::body::Body::empty());
    req.headers_mut()
        .insert(header::HOST, HeaderValue::from_static("localhost"));
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    req
}

/// Which service to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// A hello-world axum router, no middleware.
    Bare,
    /// The same features from tower-http 0.7 layers plus tower_governor, one `ServiceBuilder`.
    TowerHttp,
    /// `Hardening::strict()`.
    Hardening,
    /// Bare axum adding the exact response headers `Hardening::strict()` sends (fixed
    /// values, one precomputed map): what those bytes alone cost on the wire. Not one of the
    /// compared variants; `scripts/bench-loopback.sh` reports it as the floor.
    BareWithStrictHeaders,
    /// Bare axum under the standalone `SecurityHeadersLayer` with `HeaderPolicy::api()`: the
    /// headers crate's layer alone, through axum as a served app would use it. Not one of the
    /// compared variants.
    StandaloneHeaders,
}

impl Variant {
    /// All three, in report order.
    pub const ALL: [Variant; 3] = [Variant::Bare, Variant::TowerHttp, Variant::Hardening];

    /// The name used in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Bare => "bare-axum",
            Variant::TowerHttp => "tower-http-stack",
            Variant::Hardening => "hardening-strict",
            Variant::BareWithStrictHeaders => "bare-axum-strict-headers",
            Variant::StandaloneHeaders => "standalone-headers",
        }
    }

    /// Parses [`Variant::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .chain([Variant::BareWithStrictHeaders, Variant::StandaloneHeaders])
            .find(|v| v.name() == name)
    }

    /// The router for this variant, prepared the way `axum::serve` prepares it
    /// (`with_state`): each handler and its layers made into a service once. Unprepared, a
    /// router called with `oneshot` builds every route's layers again on each request, which
    /// no served app does (and which costs the tower-http stack about 0.9 µs more).
    pub fn app(self) -> Router {
        self.unprepared().with_state(())
    }

    fn unprepared(self) -> Router {
        let hello = hello();
        match self {
            Variant::Bare => hello,
            Variant::TowerHttp => with_tower_http_stack(hello),
            Variant::Hardening => hello.layer(strict_without_layer(&[])),
            Variant::StandaloneHeaders => hello.layer(SecurityHeadersLayer::new(
                HeaderPolicy::api()
                    .build()
                    .expect("the API preset is valid"),
            )),
            Variant::BareWithStrictHeaders => {
                // The cheapest way to send them: one clone of a finished map per response.
                // The map is not captured by the handler: axum clones a handler for every
                // request, and that would clone the map a second time. It holds the
                // `content-length` too: axum inserts it otherwise, and an insert into a
                // cloned map (no spare room) reallocates every entry.
                static HEADERS: OnceLock<http::HeaderMap> = OnceLock::new();
                HEADERS.get_or_init(strict_headers); // made now, not on the first request
                Router::new().route(
                    "/",
                    get(|| async {
                        let mut res = axum::response::Response::new(axum::body::Body::from(HELLO));
                        *res.headers_mut() = HEADERS.get_or_init(strict_headers).clone();
                        res
                    }),
                )
            }
        }
    }
}

/// The security headers `Hardening::strict()` sends on a plain-HTTP response.
fn security_headers() -> http::HeaderMap {
    let set = HeaderPolicy::api()
        .build()
        .expect("the API preset is valid");
    let mut headers = http::HeaderMap::new();
    set.apply(&RequestFacts::default(), &mut headers);
    headers
}

/// A step of `Hardening::strict()` that [`strict_without`] can leave out, to measure what it
/// costs: the loopback scripts serve `hardening-strict-without:STEP[,STEP...]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The per-IP rate limit (and its two response headers).
    RateLimit,
    /// The security headers (the request id is then added on its own).
    SecurityHeaders,
    /// The `/healthz` and `/readyz` probes.
    Health,
    /// The CSRF check.
    Csrf,
    /// The body size, query-parameter and timeout limits.
    Limits,
    /// The four security headers that act only on documents ([`DOCUMENT_ONLY_HEADERS`]),
    /// the rest of the set kept: what leaving them off non-HTML responses would save.
    DocumentHeaders,
}

/// Security headers of the strict set that browsers act on only for a document (a page, a
/// frame, a PDF): not among OWASP's REST Security Cheat Sheet's headers for API responses.
/// `X-Frame-Options`, `Content-Security-Policy`, `Cross-Origin-Resource-Policy` and
/// `Referrer-Policy` (read on a redirect) stay.
pub const DOCUMENT_ONLY_HEADERS: [&str; 4] = [
    "permissions-policy",
    "cross-origin-opener-policy",
    "x-dns-prefetch-control",
    "x-permitted-cross-domain-policies",
];

impl Step {
    /// Every step, with its command-line name.
    pub const ALL: [(&'static str, Step); 6] = [
        ("rate-limit", Step::RateLimit),
        ("security-headers", Step::SecurityHeaders),
        ("health", Step::Health),
        ("csrf", Step::Csrf),
        ("limits", Step::Limits),
        ("document-headers", Step::DocumentHeaders),
    ];

    /// Parses a comma-separated list of step names; the error names the first unknown one.
    pub fn parse_list(list: &str) -> Result<Vec<Step>, String> {
        list.split(',')
            .map(|name| {
                Self::ALL
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, step)| *step)
                    .ok_or_else(|| {
                        let known: Vec<&str> = Self::ALL.iter().map(|(n, _)| *n).collect();
                        format!("unknown step {name:?}; known: {}", known.join(", "))
                    })
            })
            .collect()
    }
}

/// The `hardening-strict` variant's router without these steps (each through its named,
/// logged way to loosen the preset), prepared like [`Variant::app`].
pub fn strict_without(steps: &[Step]) -> Router {
    hello().layer(strict_without_layer(steps)).with_state(())
}

/// The `hardening-strict` variant's layer (with [`never_limiting`]) without these steps.
fn strict_without_layer(steps: &[Step]) -> Hardening {
    let mut hardening = Hardening::strict()
        .rate_limit(never_limiting())
        .expect("a per-IP policy");
    for step in steps {
        hardening = match step {
            Step::RateLimit => hardening.dangerous_without_rate_limit(),
            Step::SecurityHeaders => hardening.dangerous_without_security_headers(),
            Step::Health => hardening.without_health(),
            Step::Csrf => hardening.dangerous_without_csrf(),
            Step::Limits => hardening
                .dangerous_disable_body_limit()
                .dangerous_disable_query_param_limit()
                .dangerous_disable_timeout(),
            Step::DocumentHeaders => {
                let policy = DOCUMENT_ONLY_HEADERS
                    .iter()
                    .try_fold(HeaderPolicy::api(), |policy, name| {
                        policy.dangerous_remove_header(name)
                    })
                    .expect("each is a header of the API preset");
                hardening
                    .security_headers(policy)
                    .expect("the API preset without them is valid")
            }
        };
    }
    hardening
}

/// The route every variant serves: `GET /` answering [`HELLO`].
fn hello() -> Router {
    Router::new().route("/", get(|| async { HELLO }))
}

/// The router a command line names: a [`Variant`] by its name,
/// `hardening-strict-without:STEP[,STEP...]` ([`strict_without`]), `bare-axum-noop-layer`:
/// bare axum under a layer that does nothing, what any `Router::layer` costs (axum boxes
/// each layered route again, so a request passes two boxed services instead of one), or
/// `floor-as-layer`: bare axum under a layer that only sends strict's headers, or
/// `hardening-html`: `Hardening::strict()` with `HeaderPolicy::html()` answering a page
/// (`html_page`), what a server-rendered response with its CSP nonce costs.
pub fn app_named(name: &str) -> Result<Router, String> {
    if name == "floor-as-layer" {
        return Ok(floor_as_layer());
    }
    if name == "hardening-html" {
        return Ok(html_page());
    }
    if name == "bare-axum-noop-layer" {
        return Ok(hello()
            .layer(tower::layer::util::Identity::new())
            .with_state(()));
    }
    match name.strip_prefix("hardening-strict-without:") {
        Some(steps) => Ok(strict_without(&Step::parse_list(steps)?)),
        None => Variant::from_name(name)
            .map(Variant::app)
            .ok_or_else(|| format!("no variant {name:?}")),
    }
}

/// `GET /` answering [`HELLO`] as `text/html` under the `hardening-strict` variant's layer
/// with `HeaderPolicy::html()`: each response gets a new nonce, spliced into its CSP, and
/// `Cache-Control: no-store` (a nonce page). The handler does not write the nonce into the
/// page, so the count is the middleware's, not a template's.
fn html_page() -> Router {
    let hardening = strict_without_layer(&[])
        .security_headers(HeaderPolicy::html())
        .expect("the HTML preset is valid");
    Router::new()
        .route("/", get(|| async { axum::response::Html(HELLO) }))
        .layer(hardening)
        .with_state(())
}

/// The cheapest layer that sends what `Hardening::strict()` sends: bare axum under a
/// `Router::layer` whose only work is to give each response the same fixed headers as
/// `bare-axum-strict-headers` (one clone of a finished map). What any layer sending those
/// bytes costs at least: the rest of strict's cost is its logic (request id, client IP,
/// limiter, checks).
fn floor_as_layer() -> Router {
    static HEADERS: OnceLock<http::HeaderMap> = OnceLock::new();
    HEADERS.get_or_init(strict_headers); // made now, not on the first request
    hello()
        .layer(tower::util::MapResponseLayer::new(
            |mut res: axum::response::Response| {
                *res.headers_mut() = HEADERS.get_or_init(strict_headers).clone();
                res
            },
        ))
        .with_state(())
}

/// The headers `Hardening::strict()` with [`never_limiting`] sends on a plain-HTTP hello-world
/// response besides `date`, with fixed values.
fn strict_headers() -> http::HeaderMap {
    let mut headers = security_headers();
    for (name, value) in [
        ("content-type", "text/plain; charset=utf-8"),
        ("x-request-id", "019abc12-3456-7def-8123-456789abcdef"),
        ("ratelimit", "\"per-ip\";r=4294967294;t=1"),
        ("ratelimit-policy", "\"per-ip\";q=4294967295;w=1"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(HELLO.len()));
    headers
}

/// A per-IP limiter doing its full work on every request but never refusing (like the
/// tower_governor config below), so load tests measure cost, not 429s.
fn never_limiting() -> RateLimiter {
    let max = NonZeroU32::MAX;
    RateLimiter::new([Policy::per_client_ip(
        "per-ip",
        Quota::per_second(max).burst(max),
    )])
}

/// Request id, sensitive headers, trace, body limit, timeout, panics, CORS, nine security
/// headers and a per-IP rate limit (set high enough never to trigger in a benchmark).
fn with_tower_http_stack(app: Router) -> Router {
    let governor = GovernorConfigBuilder::default()
        .per_nanosecond(1)
        .burst_size(u32::MAX)
        .finish()
        .expect("a valid governor config");
    let x_request_id = HeaderName::from_static("x-request-id");
    // Exactly the security headers Hardening::strict() sends on a plain-HTTP response.
    let headers: [(HeaderName, HeaderValue); 9] = security_headers()
        .into_iter()
        .filter_map(|(name, value)| Some((name?, value)))
        .collect::<Vec<_>>()
        .try_into()
        .expect("nine headers on a plain-HTTP response");
    let [h0, h1, h2, h3, h4, h5, h6, h7, h8] =
        headers.map(|(name, value)| SetResponseHeaderLayer::overriding(name, value));
    app.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(
                x_request_id.clone(),
                MakeRequestUuid,
            ))
            .layer(SetSensitiveRequestHeadersLayer::new([
                header::AUTHORIZATION,
                header::COOKIE,
            ]))
            .layer(TraceLayer::new_for_http())
            .layer(PropagateRequestIdLayer::new(x_request_id))
            .layer(CatchPanicLayer::new())
            .layer(CorsLayer::new())
            .layer(h0)
            .layer(h1)
            .layer(h2)
            .layer(h3)
            .layer(h4)
            .layer(h5)
            .layer(h6)
            .layer(h7)
            .layer(h8)
            .layer(TimeoutLayer::with_status_code(
                http::StatusCode::REQUEST_TIMEOUT,
                Duration::from_secs(30),
            ))
            .layer(RequestBodyLimitLayer::new(1024 * 1024))
            // Innermost: tower_governor needs the route's own response body type.
            .layer(GovernorLayer::new(governor)),
    )
}
