//! An endpoint that receives CSP violation reports and logs them, bounded and rate-limited.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hardening_errors::{
    CollectError, Problem, RequestContext, SUBSCRIBER_PREFIX, WarnOnce, after_userinfo,
    client_group, collect_capped, may_be_a_token, media_type, redact_secrets, report_rejection,
    write_printable_ascii,
};
use http::{StatusCode, header};
use serde_json::Value;

/// The tracing target of the reports logged.
const TARGET: &str = "hardening::csp";

/// The longest URI logged, in bytes.
const MAX_URI: usize = 256;

/// The longest directive name logged, in bytes (CSP3's longest, `upgrade-insecure-requests`,
/// has 25).
const MAX_DIRECTIVE: usize = 32;

/// How long the rate limit's window is.
const WINDOW: Duration = Duration::from_secs(60);

/// The media types browsers send reports as: `report-uri`'s, the Reporting API's, and plain
/// JSON (older WebKit). None is CORS-safelisted: another site's page cannot post one
/// without a preflight, which this endpoint does not answer.
const REPORT_TYPES: [&[u8]; 3] = [
    b"application/csp-report",
    b"application/reports+json",
    b"application/json",
];

const REDACTED: &str = "[redacted]";

/// Receives `report-uri` violation reports (`application/csp-report`) and Reporting API
/// batches (`application/reports+json`; entries of other types are skipped), and logs each
/// violation at warn level under the target `hardening::csp`: the violated directive's name,
/// the disposition (`enforce` or `report`), and the blocked and document URIs cut as a
/// browser cuts them for reports, and further, as any client can post anything:
///
/// - a URI whose scheme is not HTTP(S) or WS(S) (`data:`, `blob:`, `javascript:`) is its
///   scheme alone;
/// - an HTTP(S) URI loses its userinfo, query, fragment and path parameters
///   (`;jsessionid=…`), as these can hold tokens;
/// - a path segment of 16 bytes or more that is not a lower-case word (`/reset/<token>`,
///   `/u/<session id>`, a UUID) is `[redacted]`, and so is what
///   [`redact_secrets`](hardening_errors::redact_secrets) finds (a JWT, a provider's key);
/// - bytes outside printable ASCII are percent-encoded (no forged lines in a plain-text
///   log), and a URI is cut at 256 bytes.
///
/// Samples of the page (`script-sample`, `sample`), the referrer, the source file and the
/// original policy are not logged.
///
/// A body over the size limit gets 413 (reported as a `body_too_large` security event), a
/// body of another media type 415 (a page on another site can post `text/plain` without a
/// CORS preflight, but not these types), a body that is not a report 400, another method
/// 405: each a problem (`application/problem+json`) with the request id.
///
/// Reports over the rate limit are counted and dropped (204, so browsers do not retry); the
/// count is logged (`dropped`) with the first report after the minute. The rate limit counts
/// reports, not requests: 60 a minute from all clients, of which one client (an IP address,
/// IPv6 grouped by /64, as `Hardening` or `ConnectInfo` gives it) may use 10, so that hiding
/// real reports behind junk takes many clients, not one. Behind `Hardening`, its per-client
/// rate limit and timeouts apply to this route as to any other.
///
/// ```
/// use axum::Router;
/// use hardening_headers::{Csp, CspReports};
/// # use tower::ServiceExt;
///
/// let csp = Csp::html().report_uri("/csp-report");
/// let app: Router = Router::new().merge(CspReports::new().router("/csp-report"));
/// # let _ = csp;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let report = |content_type: &str| {
///     http::Request::post("/csp-report")
///         .header("content-type", content_type)
///         .body(axum::body::Body::from(r#"{"csp-report":{"blocked-uri":"inline"}}"#))
///         .unwrap()
/// };
/// let res = app.clone().oneshot(report("application/csp-report")).await.unwrap();
/// assert_eq!(res.status(), 204);
/// // What a form on another site can send is refused.
/// let res = app.oneshot(report("text/plain")).await.unwrap();
/// assert_eq!(res.status(), 415);
/// assert_eq!(res.headers()["content-type"], "application/problem+json");
/// # });
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct CspReports {
    max_body: usize,
    per_minute: u32,
    per_client: u32,
    window: Arc<Mutex<Window>>,
    /// Whether a report without a client address was warned about (once per endpoint).
    warned_no_client: Arc<WarnOnce>,
}

/// The rate limit's current window.
#[derive(Debug)]
struct Window {
    start: Instant,
    logged: u32,
    dropped: u64,
    /// Reports logged per client (`None`: requests with no client address) in this window:
    /// only clients that had one logged, so never more than `per_minute` entries.
    clients: HashMap<Option<IpAddr>, u32>,
}

impl Window {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            logged: 0,
            dropped: 0,
            clients: HashMap::new(),
        }
    }
}

impl Default for CspReports {
    fn default() -> Self {
        Self::new()
    }
}

impl CspReports {
    /// 8 KiB per request, 60 reports logged per minute, at most 10 of them from one client.
    pub fn new() -> Self {
        Self {
            max_body: 8 * 1024,
            per_minute: 60,
            per_client: 10,
            window: Arc::new(Mutex::new(Window::new())),
            warned_no_client: Arc::default(),
        }
    }

    /// The largest report body accepted (default 8 KiB; never zero, which would refuse every
    /// report).
    pub fn max_body(mut self, bytes: NonZeroUsize) -> Self {
        self.max_body = bytes.get();
        self
    }

    /// How many reports are logged per minute (default 60); the rest are dropped (and
    /// counted). Never zero, which would log none.
    pub fn per_minute(mut self, reports: NonZeroU32) -> Self {
        self.per_minute = reports.get();
        self
    }

    /// How many of the reports logged per minute may come from one client (an IP address,
    /// IPv6 grouped by /64; requests without a client address count as one client). Above
    /// [`per_minute`](Self::per_minute) it changes nothing. Default 10; never zero, which
    /// would log none.
    pub fn per_client(mut self, reports: NonZeroU32) -> Self {
        self.per_client = reports.get();
        self
    }

    /// A router with `POST path` answered by this endpoint, to merge into yours.
    pub fn router<S: Clone + Send + Sync + 'static>(self, path: &str) -> Router<S> {
        Router::new()
            .route(path, post(receive).fallback(other_method))
            .with_state(self)
    }

    /// How many of `reports` from `client` the rate limit lets through, and how many the
    /// window before dropped if this call ended it.
    fn admit(&self, reports: usize, client: Option<IpAddr>) -> (usize, u64) {
        // Nothing panics while the lock is held; a poisoned lock still holds a sound window.
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        let mut ended_with_dropped = 0;
        if window.start.elapsed() >= WINDOW {
            ended_with_dropped = window.dropped;
            *window = Window::new();
        }
        let used = window.clients.get(&client).copied().unwrap_or(0);
        let room = self
            .per_minute
            .saturating_sub(window.logged)
            .min(self.per_client.saturating_sub(used));
        let admitted = u32::try_from(reports).unwrap_or(u32::MAX).min(room);
        if admitted > 0 {
            window.logged += admitted;
            window.clients.insert(client, used + admitted);
        }
        window.dropped = window
            .dropped
            .saturating_add(reports as u64 - u64::from(admitted));
        // (No more than `reports`, a `usize`.)
        (admitted as usize, ended_with_dropped)
    }
}

async fn receive(State(reports): State<CspReports>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let is_report = parts
        .headers
        .get(header::CONTENT_TYPE)
        .map(media_type)
        .is_some_and(|media| REPORT_TYPES.iter().any(|t| media.eq_ignore_ascii_case(t)));
    if !is_report {
        return refuse(
            &parts.extensions,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send reports as application/csp-report or application/reports+json",
        );
    }
    let body = match collect_capped(body, reports.max_body).await {
        Ok(body) => body,
        Err(CollectError::TooLarge(_)) => {
            return refuse(
                &parts.extensions,
                StatusCode::PAYLOAD_TOO_LARGE,
                "the report is larger than this endpoint accepts",
            );
        }
        Err(_) => return not_a_report(&parts.extensions),
    };
    // report-uri: {"csp-report": {...}}; Reporting API: [{"type": "csp-violation", "body": {...}}]
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        return not_a_report(&parts.extensions);
    };
    let items: Vec<&Value> = match &json {
        Value::Array(list) => list
            .iter()
            .filter(|r| r.get("type").and_then(Value::as_str) == Some("csp-violation"))
            .filter_map(|r| r.get("body").filter(|b| b.is_object()))
            .collect(),
        Value::Object(report) => match report.get("csp-report") {
            Some(r) if r.is_object() => vec![r],
            _ => return not_a_report(&parts.extensions),
        },
        _ => return not_a_report(&parts.extensions),
    };
    let client = RequestContext::client_ip_of(&parts.extensions)
        .map(|ip| client_group(ip, SUBSCRIBER_PREFIX));
    if client.is_none() && reports.warned_no_client.first() {
        warn_no_client(reports.per_client);
    }
    let (admitted, dropped) = reports.admit(items.len(), client);
    if dropped > 0 {
        tracing::warn!(
            target: TARGET,
            dropped,
            per_minute = reports.per_minute,
            per_client = reports.per_client,
            "CSP reports dropped over the rate limit",
        );
    }
    for r in items.into_iter().take(admitted) {
        let field = |a: &str, b: &str| {
            r.get(a)
                .or_else(|| r.get(b))
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        tracing::warn!(
            target: TARGET,
            violated_directive = %directive_name(field("violated-directive", "effectiveDirective")),
            blocked_uri = %logged_uri(field("blocked-uri", "blockedURL")),
            document_uri = %logged_uri(field("document-uri", "documentURL")),
            disposition = disposition(field("disposition", "disposition")),
            "CSP violation reported",
        );
    }
    StatusCode::NO_CONTENT.into_response()
}

/// Said once per endpoint: without a client address, every report counts as one client's.
#[cold]
fn warn_no_client(per_client: u32) {
    tracing::warn!(
        target: TARGET,
        per_client,
        "a CSP report came without a client address (no Hardening and no \
         ConnectInfo<SocketAddr>): all such reports share one client's share of the minute; \
         serve the app with hardening_core::serve or \
         into_make_service_with_connect_info::<SocketAddr>() (said once)",
    );
}

/// Any method but POST: 405 (axum adds `Allow: POST`).
async fn other_method(request: Request) -> Response {
    refuse(
        request.extensions(),
        StatusCode::METHOD_NOT_ALLOWED,
        "reports are sent with POST",
    )
}

fn not_a_report(extensions: &http::Extensions) -> Response {
    refuse(
        extensions,
        StatusCode::BAD_REQUEST,
        "the body is not a CSP violation report",
    )
}

/// A problem with the request id a layer further out gave the request (`Hardening`,
/// `ProblemLayer`), else a new one; a 413 is reported as a security event.
#[cold]
fn refuse(extensions: &http::Extensions, status: StatusCode, detail: &'static str) -> Response {
    let (request_id, client_ip) = RequestContext::for_refusal(extensions);
    let mut response = Problem::new(status)
        .with_detail(detail)
        .with_request_id(request_id)
        .into_http_response();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        report_rejection(&mut response, "body_too_large", request_id, client_ip, None);
    }
    response
}

/// A report's URI as logged (see [`CspReports`]): `https://x.example/a?token=1#f` →
/// `https://x.example/a`; keywords (`inline`, `eval`) kept.
fn logged_uri(uri: &str) -> String {
    // Secrets first: a password may hold `?`, `#`, `/` or `@` unencoded.
    let uri = redact_secrets(uri);
    if let Some((scheme, _)) = uri.split_once(':')
        && is_scheme(scheme)
        && !["http", "https", "ws", "wss"]
            .iter()
            .any(|s| scheme.eq_ignore_ascii_case(s))
    {
        return printable(&scheme.to_ascii_lowercase(), MAX_URI);
    }
    let (scheme, rest) = match uri.split_once("://") {
        Some((scheme, _)) if is_scheme(scheme) => {
            let host = after_userinfo(&uri).max(scheme.len() + 3);
            (&uri[..scheme.len() + 3], &uri[host..])
        }
        _ => ("", &*uri),
    };
    let rest = &rest[..rest.find(['?', '#', ';']).unwrap_or(rest.len())];
    // The host, then the path's segments.
    let (host, path) = match scheme {
        "" => ("", rest),
        _ => rest.split_at(rest.find('/').unwrap_or(rest.len())),
    };
    let mut out = String::new();
    // (Writing to a `String` does not fail.)
    let _ = write_printable_ascii(&mut out, scheme);
    let _ = write_printable_ascii(&mut out, host);
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if may_be_a_token(segment) {
            out.push_str(REDACTED);
        } else {
            let _ = write_printable_ascii(&mut out, segment);
        }
    }
    cut(out, MAX_URI)
}

/// `scheme` is one (RFC 3986 §3.1): a letter, then letters, digits, `+`, `-` or `.`.
fn is_scheme(scheme: &str) -> bool {
    scheme
        .as_bytes()
        .first()
        .is_some_and(u8::is_ascii_alphabetic)
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// The directive's name: older browsers report the whole directive, sources and all.
fn directive_name(directive: &str) -> String {
    let name = directive.split_ascii_whitespace().next().unwrap_or("");
    printable(name, MAX_DIRECTIVE)
}

/// `enforce` or `report`, or nothing for anything else.
fn disposition(value: &str) -> &'static str {
    match value {
        "enforce" => "enforce",
        "report" => "report",
        _ => "",
    }
}

/// `text` in printable ASCII ([`write_printable_ascii`]), cut at `max` bytes.
fn printable(text: &str, max: usize) -> String {
    let mut out = String::new();
    // (Writing to a `String` does not fail.)
    let _ = write_printable_ascii(&mut out, text);
    cut(out, max)
}

/// `ascii` cut at `max` bytes, not inside a `%XX` escape.
fn cut(mut ascii: String, max: usize) -> String {
    if ascii.len() > max {
        let tail = max.saturating_sub(2);
        let end = ascii[tail..max].rfind('%').map_or(max, |at| tail + at);
        ascii.truncate(end);
    }
    ascii
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use serde_json::json;
    use tower::ServiceExt;

    use super::*;
    use crate::test_log::Warnings;

    #[test]
    fn uris_are_cut_to_scheme_host_and_path_without_secrets() {
        const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXh5ei1hYmM";
        for (uri, logged) in [
            ("https://a.example/p?token=x#f", "https://a.example/p"),
            ("inline", "inline"),
            ("eval", "eval"),
            ("", ""),
            ("https://alice:hunter2@a.example/p", "https://a.example/p"),
            ("https://alice:pa?ss#w@a.example/p", "https://a.example/p"),
            ("https://alice:pa/ss@a.example/p", "https://a.example/p"),
            ("https://ghp_token@a.example/", "https://a.example/"),
            (
                "https://a.example/cart;jsessionid=ABC/x",
                "https://a.example/cart",
            ),
            (
                "https://a.example/reset/9f86d081884c7d659a2feaa0c55ad015/done",
                "https://a.example/reset/[redacted]/done",
            ),
            (
                &format!("https://a.example/invite/{JWT}"),
                "https://a.example/invite/[redacted]",
            ),
            (
                "https://a.example/s/550e8400-e29b-41d4-a716-446655440000",
                "https://a.example/s/[redacted]",
            ),
            (
                "https://cdn-7f3a9b2c4d5e6f70.example.net/how-to-configure-content-security",
                "https://cdn-7f3a9b2c4d5e6f70.example.net/how-to-configure-content-security",
            ),
            ("data:text/html,<b>secret</b>", "data"),
            ("JavaScript:alert(document.cookie)", "javascript"),
            ("blob:https://a.example/7c9e6679-7425-40de", "blob"),
            ("/relative/a?b", "/relative/a"),
            (
                "https://a.example/a\r\nb\u{1b}[0m\u{202e}",
                "https://a.example/a%0D%0Ab%1B[0m%E2%80%AE",
            ),
        ] {
            assert_eq!(logged_uri(uri), logged, "{uri:?}");
        }
        // Cut at 256 bytes, not inside an escape.
        for pad in 0..7 {
            let long = format!("https://a.example/{}{}", "a".repeat(pad), "/é".repeat(100));
            let cut = logged_uri(&long);
            assert!(cut.len() <= MAX_URI && cut.len() > MAX_URI - 3, "{cut}");
            assert!(!cut[cut.len() - 2..].contains('%'), "{cut}");
        }
    }

    /// Random text from the shapes the cutting looks for: nothing panics, and what is logged
    /// is printable ASCII within the cap. (fastrand from a fixed seed: a failure reproduces.)
    #[test]
    fn any_text_is_logged_printable_and_capped() {
        let pieces = [
            "https://",
            "http:",
            "data:",
            "//",
            "/",
            ":",
            "@",
            "?",
            "#",
            ";",
            "%",
            "%4",
            "é",
            "\u{2028}",
            "\n",
            "\u{1b}",
            "a",
            "0123456789abcdef",
            "eyJ",
            ".",
            "token=",
            " ",
        ];
        let mut rng = fastrand::Rng::with_seed(0x5eed_c5b0);
        for _ in 0..20_000 {
            let text: String = (0..rng.usize(0..40))
                .map(|_| pieces[rng.usize(..pieces.len())])
                .collect();
            for logged in [logged_uri(&text), directive_name(&text)] {
                assert!(logged.len() <= MAX_URI, "{text:?} -> {logged:?}");
                assert!(
                    logged.bytes().all(|b| (0x20..0x7f).contains(&b)),
                    "{text:?} -> {logged:?}"
                );
            }
        }
    }

    /// Posts `body` as a served request from one client would come (with its address).
    async fn post(app: &Router, body: String) -> StatusCode {
        let mut request = http::Request::post("/r")
            .header("content-type", "application/reports+json")
            .body(Body::from(body))
            .unwrap();
        let peer = std::net::SocketAddr::from(([203, 0, 113, 1], 40_000));
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        app.clone().oneshot(request).await.unwrap().status()
    }

    fn batch(reports: usize) -> String {
        let entry = json!({ "type": "csp-violation", "body": { "blockedURL": "inline" } });
        Value::Array(vec![entry; reports]).to_string()
    }

    /// The rate limit counts reports, whatever the requests that carry them; the reports it
    /// dropped are counted, and the count logged when the window ends.
    #[tokio::test]
    async fn the_rate_limit_counts_reports_and_logs_how_many_it_dropped() {
        let warnings = Warnings::new(TARGET);
        let _guard = warnings.capture();
        let reports = CspReports::new().per_minute(NonZeroU32::new(3).unwrap());
        let app: Router = reports.clone().router("/r");
        assert_eq!(post(&app, batch(2)).await, StatusCode::NO_CONTENT);
        assert_eq!(post(&app, batch(50)).await, StatusCode::NO_CONTENT);
        assert_eq!(post(&app, batch(1)).await, StatusCode::NO_CONTENT);
        let logged = warnings.take().len();
        assert_eq!(
            logged, 3,
            "one line per report admitted, none past the limit"
        );
        // The minute ends.
        reports.window.lock().unwrap().start -= WINDOW;
        assert_eq!(post(&app, batch(1)).await, StatusCode::NO_CONTENT);
        let logged = warnings.take();
        assert_eq!(logged.len(), 2, "{logged:?}");
        assert!(logged[0].contains("dropped=50 per_minute=3"), "{logged:?}");
        assert!(logged[1].contains("CSP violation reported"), "{logged:?}");
    }

    /// One client may use only its share of the window: before, one client could post 50
    /// junk reports and have the whole minute's quota to itself, hiding every real report.
    /// A client is its IP address, IPv6 grouped by /64.
    #[tokio::test]
    async fn one_client_cannot_use_up_the_window() {
        let warnings = Warnings::new(TARGET);
        let _guard = warnings.capture();
        let app: Router = CspReports::new()
            .per_minute(NonZeroU32::new(20).unwrap())
            .router("/r");
        let from = |ip: &str, reports: usize| {
            let mut request = http::Request::post("/r")
                .header("content-type", "application/reports+json")
                .body(Body::from(batch(reports)))
                .unwrap();
            let peer = std::net::SocketAddr::new(ip.parse().unwrap(), 40_000);
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            app.clone().oneshot(request)
        };
        let logged_for = async |ip: &str, reports: usize| {
            assert_eq!(from(ip, reports).await.unwrap().status(), 204);
            warnings
                .take()
                .iter()
                .filter(|l| l.contains("CSP violation reported"))
                .count()
        };
        assert_eq!(
            logged_for("203.0.113.7", 50).await,
            10,
            "the flooder's share"
        );
        assert_eq!(
            logged_for("2001:db8:1:2::1", 8).await,
            8,
            "another client's"
        );
        assert_eq!(logged_for("2001:db8:1:2::99", 8).await, 2, "the same /64");
        assert_eq!(
            logged_for("::ffff:203.0.113.7", 5).await,
            0,
            "the flooder, mapped"
        );
        assert_eq!(logged_for("198.51.100.1", 5).await, 0, "the window is full");
    }

    /// Reports without a client address all count as one client's: said once, so that a
    /// service without `ConnectInfo` learns why it logs only 10 a minute.
    #[tokio::test]
    async fn reports_without_a_client_address_are_warned_about_once() {
        let warnings = Warnings::new(TARGET);
        let _guard = warnings.capture();
        let app: Router = CspReports::new().router("/r");
        for _ in 0..3 {
            let request = http::Request::post("/r")
                .header("content-type", "application/reports+json")
                .body(Body::from(batch(1)))
                .unwrap();
            let status = app.clone().oneshot(request).await.unwrap().status();
            assert_eq!(status, StatusCode::NO_CONTENT);
        }
        let said = warnings.take();
        let warned: Vec<_> = said
            .iter()
            .filter(|l| l.contains("without a client address"))
            .collect();
        assert_eq!(warned.len(), 1, "{said:?}");
        assert!(warned[0].contains("ConnectInfo"), "{said:?}");
    }

    /// Odd JSON where a report is expected: refused (400) or logged, never a panic.
    #[tokio::test]
    async fn odd_json_is_refused_or_logged() {
        let values = [
            json!(null),
            json!(true),
            json!(-1.5),
            json!(u64::MAX),
            json!("inline"),
            json!("x".repeat(300)),
            json!([]),
            json!({}),
            json!([1, "a"]),
            json!({ "a": [1, { "b": null }] }),
        ];
        let app: Router = CspReports::new().per_minute(NonZeroU32::MAX).router("/r");
        let mut rng = fastrand::Rng::with_seed(0xc5b0_2026);
        let pick = |rng: &mut fastrand::Rng| values[rng.usize(..values.len())].clone();
        for _ in 0..500 {
            let mut report = serde_json::Map::new();
            for field in [
                "document-uri",
                "blocked-uri",
                "violated-directive",
                "disposition",
                "documentURL",
                "blockedURL",
                "effectiveDirective",
            ] {
                if rng.bool() {
                    report.insert(field.into(), pick(&mut rng));
                }
            }
            let report = Value::Object(report);
            let body = match rng.u8(..4) {
                0 => json!({ "csp-report": report }),
                1 => json!([{ "type": "csp-violation", "body": report }]),
                2 => json!({ "csp-report": pick(&mut rng) }),
                _ => json!([{ "type": pick(&mut rng), "body": pick(&mut rng) }, pick(&mut rng)]),
            };
            let status = post(&app, body.to_string()).await;
            assert!(
                matches!(status.as_u16(), 204 | 400),
                "{body} answered {status}"
            );
        }
    }

    /// A panic while the lock was held (none can happen now) would have made every later
    /// report dropped, silently, until a restart.
    #[tokio::test]
    async fn a_poisoned_window_still_counts() {
        let warnings = Warnings::new(TARGET);
        let _guard = warnings.capture();
        let reports = CspReports::new();
        let window = reports.window.clone();
        let _ = std::thread::spawn(move || {
            let _held = window.lock().unwrap();
            panic!("poisoning the window");
        })
        .join();
        assert!(reports.window.is_poisoned());
        let app: Router = reports.router("/r");
        assert_eq!(post(&app, batch(1)).await, StatusCode::NO_CONTENT);
        let logged = warnings.take().len();
        assert_eq!(logged, 1, "a poisoned window dropped the report");
    }

    /// In a plain-text log (tracing's `fmt`) a field given with `%` is printed as it is: each
    /// logged field is printable ASCII, so a report cannot start a line of its own.
    #[tokio::test]
    async fn fields_cannot_start_a_log_line() {
        let warnings = Warnings::new(TARGET);
        let _guard = warnings.capture();
        let app: Router = CspReports::new().router("/r");
        let forged = "\n2026-01-01 INFO login ok\r\u{1b}[1A\u{85}\u{2028}";
        let body = json!([{ "type": "csp-violation", "body": {
            "documentURL": format!("https://a.example/{forged}"),
            "blockedURL": format!("inline{forged}"),
            "effectiveDirective": format!("script-src{forged}"),
            "disposition": format!("enforce{forged}"),
        }}]);
        assert_eq!(post(&app, body.to_string()).await, StatusCode::NO_CONTENT);
        let logged = warnings.take();
        assert_eq!(logged.len(), 1);
        assert!(
            logged[0].bytes().all(|b| (0x20..0x7f).contains(&b)),
            "{:?}",
            logged[0]
        );
    }
}
