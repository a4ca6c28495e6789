//! One redacted access-log event per request.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::net::IpAddr;

use axum::extract::MatchedPath;
use hardening_errors::{
    BodyEnd, PrincipalId, PrincipalSlot, RequestId, SECRET_NAME_PARTS, after_userinfo,
    is_secret_name, may_be_a_token, redact_secrets, write_printable_ascii,
};
use http::request::Parts;
use http::{HeaderMap, Method, StatusCode, Uri};

use crate::LogInitError;

/// The tracing target of access-log events.
pub const ACCESS_TARGET: &str = "hardening::access";

/// Query-parameter names redacted by default (matched case-insensitively, as substrings): the
/// words of [`SECRET_NAME_PARTS`](hardening_errors::SECRET_NAME_PARTS) (`password`, `token`,
/// `key`, `session`, `auth`, …), which error text is redacted by too, and `code` (OAuth's
/// authorization code), `principal`, `dpop` and `magic_link` (also `magiclink`,
/// `magic-link`). Logged request headers whose names contain one of them (`authorization`,
/// `cookie`, `x-api-key`, `cf-access-jwt-assertion`, `x-ms-client-principal`), or one added
/// with `Hardening::sensitive_query_params`, are redacted as well, and so are names that hold
/// one of [`SECRET_NAME_WORDS`](hardening_errors::SECRET_NAME_WORDS) (`sid`, `ticket`) as a
/// whole part of the lower-cased name ([`is_secret_name`](hardening_errors::is_secret_name)):
/// `sid`, `SID`, `user[sid]`, `x-sid`, but not `sidebar` or `tickets_count`.
///
/// ```
/// use hardening_core::DEFAULT_SENSITIVE_PARAMS;
/// use hardening_core::errors::SECRET_NAME_PARTS;
///
/// let (secret_words, access_log_only) = DEFAULT_SENSITIVE_PARAMS.split_at(SECRET_NAME_PARTS.len());
/// assert_eq!(secret_words, SECRET_NAME_PARTS);
/// assert_eq!(
///     access_log_only,
///     ["code", "principal", "dpop", "magiclink", "magic_link", "magic-link"]
/// );
/// ```
pub const DEFAULT_SENSITIVE_PARAMS: &[&str] = &DEFAULT_SENSITIVE_NAMES;

/// Words that mark a query parameter or header name sensitive but not a key in error text:
/// there they would hide too much (an I/O error's `Os { code: 2, … }`), or could not match,
/// as a key is matched by its parts (`magic_link`).
const ACCESS_LOG_ONLY: &[&str] = &[
    "code",
    "principal",
    "dpop",
    "magiclink",
    "magic_link",
    "magic-link",
];

const DEFAULT_SENSITIVE_NAMES: [&str; SECRET_NAME_PARTS.len() + ACCESS_LOG_ONLY.len()] =
    concat(SECRET_NAME_PARTS, ACCESS_LOG_ONLY);

/// `a` then `b`, in an array of exactly their combined length (checked at compile time).
const fn concat<const N: usize>(a: &[&'static str], b: &[&'static str]) -> [&'static str; N] {
    assert!(a.len() + b.len() == N);
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = if i < a.len() { a[i] } else { b[i - a.len()] };
        i += 1;
    }
    out
}

const REDACTED: &str = "[redacted]";

/// What the access log prints, fixed at build time.
#[derive(Debug, Clone)]
pub(crate) struct AccessLog {
    sensitive_params: Vec<String>,
    log_headers: bool,
}

impl Default for AccessLog {
    fn default() -> Self {
        Self {
            sensitive_params: DEFAULT_SENSITIVE_PARAMS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            log_headers: false,
        }
    }
}

impl AccessLog {
    pub(crate) fn add_sensitive_params<I>(&mut self, names: I)
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        // Trimmed, as `HardeningConfig` reads its lists: `" ssn"` (from a split at `,`)
        // would match no name; an empty name, which every name contains, is left out.
        self.sensitive_params.extend(
            names
                .into_iter()
                .map(|n| n.as_ref().trim().to_ascii_lowercase())
                .filter(|n| !n.is_empty()),
        );
    }

    pub(crate) fn set_log_headers(&mut self, on: bool) {
        self.log_headers = on;
    }

    /// Captures what the event needs from the request, if anyone listens for it.
    #[inline]
    pub(crate) fn record(&self, parts: &mut Parts) -> Option<Box<AccessRecord>> {
        // Asked as the event in `emit` will be: same kind, target, level and field names, so
        // that a filter choosing events by kind or field sees what it will see then.
        if !tracing::event_enabled!(
            target: ACCESS_TARGET,
            tracing::Level::INFO,
            message,
            http.request.method,
            http.route,
            url.path,
            url.query,
            http.response.status_code,
            error.r#type,
            http.server.request.duration,
            request_id,
            client.address,
            enduser.id,
            user_agent.original,
            http.request.headers
        ) {
            return None;
        }
        self.capture(parts)
    }

    /// What [`record`](Self::record) keeps: cold and out of line, away from the requests
    /// whose access log is filtered out. The request carries a [`PrincipalSlot`] for the
    /// authentication layer, so that a request logged without a response from inside
    /// (timed out, panicked, cancelled) still names its principal.
    #[cold]
    #[inline(never)]
    fn capture(&self, parts: &mut Parts) -> Option<Box<AccessRecord>> {
        let principal = PrincipalSlot::default();
        parts.extensions.insert(principal.clone());
        Some(Box::new(AccessRecord {
            principal,
            start: std::time::Instant::now(),
            method: parts.method.clone(),
            version: parts.version,
            uri: parts.uri.clone(),
            route: parts.extensions.get::<MatchedPath>().cloned(),
            headers: self.log_headers.then(|| parts.headers.clone()),
            user_agent: parts.headers.get(http::header::USER_AGENT).cloned(),
        }))
    }

    /// The request's event: with the response's status, or without one for a request
    /// dropped before its response (`error.type` [`CANCELLED`]) or whose service failed
    /// ([`SERVICE_ERROR`]); `error_type` also names how
    /// a streamed body that did not end ended. The principal is the response's, else the one
    /// an authentication layer admitted for the request.
    #[cold]
    pub(crate) fn emit(
        &self,
        record: &AccessRecord,
        status: Option<StatusCode>,
        error_type: Option<&'static str>,
        request_id: RequestId,
        client_ip: Option<IpAddr>,
        principal: Option<&PrincipalId>,
    ) {
        let principal = principal.or_else(|| record.principal.get());
        let route = record.route.as_ref().map(MatchedPath::as_str);
        // The path can carry secrets (`/reset/<token>`); the route template cannot.
        let path = route.is_none().then(|| self.logged_path(record.uri.path()));
        let query = record.uri.query().map(|q| Redacted {
            query: q,
            log: self,
        });
        let headers = record
            .headers
            .as_ref()
            .map(|headers| RedactedHeaders { headers, log: self });
        // As the logged headers redact it (`bot/1.0 (token=[redacted])`).
        let user_agent = record
            .user_agent
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .map(redact_secrets);
        tracing::event!(
            target: ACCESS_TARGET,
            tracing::Level::INFO,
            http.request.method = %record.method,
            http.route = route,
            url.path = path.as_deref(),
            url.query = query.map(tracing::field::display),
            http.response.status_code = status.map(|s| s.as_u16()),
            error.r#type = error_type,
            http.server.request.duration = record.start.elapsed().as_secs_f64(),
            request_id = %request_id,
            client.address = client_ip.map(tracing::field::display),
            enduser.id = principal.map(PrincipalId::as_str),
            user_agent.original = user_agent.as_deref(),
            http.request.headers = headers.map(tracing::field::display),
            "request",
        );
    }

    /// Whether a parameter's value holds a secret, as written or percent-encoded up to three
    /// times: by its [shape](is_secret_by_shape) (a JWT, a provider's key), or
    /// [nested](Self::nests_a_secret).
    fn holds_a_secret(&self, raw_value: &str) -> bool {
        // `=` a nested query, `%` an encoded one, `:` JSON or a URL with a password, `+` a
        // space (`Bearer+…`).
        let may_nest = raw_value.contains(['=', '%', ':', '+']);
        any_decoding(raw_value, |text| {
            redacts(text) || (may_nest && self.nests_a_secret(text))
        })
    }

    /// Whether a value (as written or decoded) is itself a URL or query (an OAuth
    /// `redirect_uri`, a `next` link) one of whose parameters is sensitive
    /// (`next=https%3A%2F%2Fapp%2Fcb%3Ftoken%3D…` decoded), or holds, once lower-cased, what
    /// error text is redacted for: JSON's `"Token": …`, `scheme://user:password@host`,
    /// `Bearer …`.
    fn nests_a_secret(&self, text: &str) -> bool {
        text.split(['?', '#', '&', ';'])
            .filter_map(|part| part.split_once('='))
            .any(|(name, _)| self.is_sensitive_param(name))
            || redacts(&text.to_ascii_lowercase())
    }

    /// Whether a query's pair is written redacted: a sensitive name, a secret in its value,
    /// or a name that is itself a secret (a bare `?eyJ…`).
    fn redacts_pair(&self, name: &str, value: &str) -> bool {
        self.is_sensitive_param(name) || self.holds_a_secret(value) || is_secret_by_shape(name)
    }

    /// Whether the pair that ends at the `;` at `end` of `rest` has a value that, read on to
    /// the next `&` as axum reads it, holds a secret (`db=postgres://app:pa;ss@db`). The
    /// pairs after the `;` do not hide it, even when redacted: a redacted pair's name is
    /// written, and may be the rest of the secret (`pa;ss_key=…@db`).
    fn secret_past_semicolon(&self, rest: &str, end: usize) -> bool {
        if !rest[end..].starts_with(';') {
            return false;
        }
        let Some(eq) = rest[..end].find('=') else {
            return false;
        };
        let value = &rest[eq + 1..rest.find('&').unwrap_or(rest.len())];
        self.holds_a_secret(value)
    }

    /// The request's path as logged when no route template matched (a 404, a fallback, a
    /// nested service): [redacted](Self::redacted_path) and [ASCII](write_printable_ascii)
    /// (hyper refuses control characters in a path). Borrowed unless either changed it.
    fn logged_path<'p>(&self, path: &'p str) -> Cow<'p, str> {
        let path = self.redacted_path(path);
        if path.is_ascii() {
            return path;
        }
        let mut ascii = String::with_capacity(path.len() * 3);
        // (Writing to a `String` does not fail.)
        let _ = write_printable_ascii(&mut ascii, &path);
        Cow::Owned(ascii)
    }

    /// `path` with what error text is redacted for (a URL's password, a JWT) redacted, each
    /// segment that [may be a token](may_be_a_token) (`/reset/<token>`) redacted, and each
    /// path parameter (`/cb;jsessionid=…`, up to the next `;` or `/`) as a query's pair
    /// would be. Borrowed unless any of these changed it.
    fn redacted_path<'p>(&self, path: &'p str) -> Cow<'p, str> {
        let path = redact_secrets(path);
        if !path.contains(';') && !path.split('/').any(may_be_a_token) {
            return path;
        }
        let mut out = String::with_capacity(path.len());
        let mut changed = false;
        for (i, segment) in path.split('/').enumerate() {
            if i > 0 {
                out.push('/');
            }
            let mut params = segment.split(';');
            let name = params.next().unwrap_or_default();
            if may_be_a_token(name) {
                out.push_str(REDACTED);
                changed = true;
            } else {
                out.push_str(name);
            }
            for param in params {
                out.push(';');
                let (name, value) = param.split_once('=').unwrap_or((param, ""));
                if self.redacts_pair(name, value) {
                    // (Writing to a `String` does not fail.)
                    let _ = write_redacted(&mut out, name);
                    changed = true;
                } else {
                    out.push_str(param);
                }
            }
        }
        if changed { Cow::Owned(out) } else { path }
    }

    fn is_sensitive_param(&self, raw_name: &str) -> bool {
        self.is_sensitive_name(&percent_decode_lower(raw_name))
    }

    /// Whether a lower-case name contains one of the sensitive words, the added ones too, or
    /// is a secret's by its parts (`sid`, `ticket`: [`is_secret_name`]).
    fn is_sensitive_name(&self, name: &str) -> bool {
        self.sensitive_params
            .iter()
            .any(|s| name.contains(s.as_str()))
            || is_secret_name(name)
    }
}

/// `error.type` of a request that ended before its response was complete: the client went
/// away (or the server dropped the request) before the response, or in the middle of a
/// streamed body.
pub(crate) const CANCELLED: &str = "cancelled";
/// `error.type` of a request whose service failed (an `Err`, not a response: a plain tower
/// service's error), which goes on to the server without an answer.
pub(crate) const SERVICE_ERROR: &str = "service_error";
/// `error.type` of a streamed response whose body panicked after its head was sent.
pub(crate) const PANICKED: &str = "panicked";
/// `error.type` of a streamed response whose body failed after its head was sent.
pub(crate) const BODY_ERROR: &str = "body_error";

/// The access-log event of a streamed response, written when its body ends rather than when
/// its head goes out: with the status sent, the duration until the end (OpenTelemetry's
/// `http.server.request.duration` counts the whole response), and an `error.type` when the
/// body did not end as it should ([`PANICKED`], [`BODY_ERROR`], or [`CANCELLED`] when it is
/// dropped unfinished: the client went away mid-stream). Its end is where the server stops
/// polling it ([`BodyEnd`]), which is not always a final `None`.
pub(crate) struct StreamedLog {
    policy: std::sync::Arc<crate::hardening::Policy>,
    record: Option<Box<AccessRecord>>,
    status: StatusCode,
    request_id: RequestId,
    client_ip: Option<IpAddr>,
    principal: Option<PrincipalId>,
    end: BodyEnd,
}

impl StreamedLog {
    /// The event of `response`, to be written when its body ends; `Err` with the record
    /// back when the server will not poll the body at all (`HEAD`, `204`, `304`, a body
    /// already at its end): its event is written with the head.
    pub(crate) fn new<B: http_body::Body>(
        policy: std::sync::Arc<crate::hardening::Policy>,
        record: Box<AccessRecord>,
        response: &http::Response<B>,
        request_id: RequestId,
        client_ip: Option<IpAddr>,
    ) -> Result<Self, Box<AccessRecord>> {
        let status = response.status();
        let end = BodyEnd::new(
            &record.method,
            record.version,
            status,
            response.headers(),
            response.body(),
        );
        if !end.is_polled() {
            return Err(record);
        }
        Ok(Self {
            policy,
            record: Some(record),
            status,
            request_id,
            client_ip,
            principal: response.extensions().get::<PrincipalId>().cloned(),
            end,
        })
    }

    /// The body gave `frame` and now says whether it has `ended`: the event is written if
    /// the server polls no further.
    pub(crate) fn polled<D: bytes::Buf>(&mut self, frame: &http_body::Frame<D>, ended: bool) {
        if self.end.is_last(frame, ended) {
            self.end(None);
        }
    }

    /// Writes the event, once: `error_type` `None` for a body that ended as it should.
    pub(crate) fn end(&mut self, error_type: Option<&'static str>) {
        if let Some(record) = self.record.take() {
            self.policy.access_log.emit(
                &record,
                Some(self.status),
                error_type,
                self.request_id,
                self.client_ip,
                self.principal.as_ref(),
            );
        }
    }
}

impl Drop for StreamedLog {
    fn drop(&mut self) {
        self.end(Some(CANCELLED));
    }
}

impl fmt::Debug for StreamedLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamedLog")
            .field("status", &self.status)
            .field("request_id", &self.request_id)
            .field("written", &self.record.is_none())
            .finish_non_exhaustive()
    }
}

/// What the access log keeps of a request until its event is written: when its response is
/// ready, or, for a streamed body, when that ends.
#[derive(Debug)]
pub(crate) struct AccessRecord {
    /// When the request arrived (read only when the access log is on).
    pub(crate) start: std::time::Instant,
    method: Method,
    /// Where the server stops polling a streamed body depends on it.
    version: http::Version,
    uri: Uri,
    route: Option<MatchedPath>,
    headers: Option<HeaderMap>,
    user_agent: Option<http::HeaderValue>,
    /// The principal an authentication layer inside admitted, if any.
    principal: PrincipalSlot,
}

/// A JWT or a provider's prefixed API key, whatever names it (see
/// [`redact_secrets`](hardening_errors::redact_secrets)), as written or after each of up
/// to three percent-decodings, case kept (the checks by name lower-case the text first,
/// which these shapes do not survive).
fn is_secret_by_shape(value: &str) -> bool {
    any_decoding(value, redacts)
}

/// Whether `check` holds for `value` as written or after any of up to three
/// percent-decodings (case kept), each decoded once.
fn any_decoding(value: &str, check: impl Fn(&str) -> bool) -> bool {
    let mut text = Cow::Borrowed(value);
    for _ in 0..3 {
        if check(&text) {
            return true;
        }
        if !text.contains(['%', '+']) {
            return false;
        }
        text = Cow::Owned(percent_decode(&text));
    }
    check(&text)
}

/// Whether `redact_secrets` finds a secret in `text`.
fn redacts(text: &str) -> bool {
    matches!(redact_secrets(text), Cow::Owned(_))
}

/// A query string with sensitive values replaced, written straight into the log line.
struct Redacted<'a> {
    query: &'a str,
    log: &'a AccessLog,
}

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Pairs end at `&`, or at `;` (which some servers read as `&` too), kept as written.
        // A redacted value runs to the next `&`: axum (`form_urlencoded`) reads
        // `password=a;b` as the one value `a;b`.
        let mut rest = self.query;
        loop {
            let end = rest.find(['&', ';']).unwrap_or(rest.len());
            let pair = &rest[..end];
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let redacted = if self.log.redacts_pair(name, value)
                || self.log.secret_past_semicolon(rest, end)
            {
                write_redacted(f, name)?;
                true
            } else {
                write_printable_ascii(f, pair)?;
                false
            };
            let end = if redacted {
                rest.find('&').unwrap_or(rest.len())
            } else {
                end
            };
            let Some(separator) = rest[end..].chars().next() else {
                return Ok(());
            };
            f.write_char(separator)?;
            rest = &rest[end + 1..];
        }
    }
}

/// A redacted pair as logged: `name=[redacted]`, or `[redacted]` alone for a bare value
/// (`?eyJ…`, `?jwt:eyJ…`): nothing names it, and what would be written as its name is the
/// secret (a sensitive word in its random text, `pW` or `Key`, does not make it a name).
fn write_redacted(f: &mut impl fmt::Write, raw_name: &str) -> fmt::Result {
    let shown = name_before_value(raw_name);
    if is_secret_by_shape(shown) {
        f.write_str(REDACTED)
    } else {
        write_printable_ascii(f, shown)?;
        write!(f, "={REDACTED}")
    }
}

/// What is written of a redacted pair's name: the name up to an encoded `=` (`%3D`, or `%25`
/// which may begin a doubly encoded one), after which a client that encoded its `=` put the
/// value itself: `client_secret%3Ds3cr3t` is written `client_secret=[redacted]`.
fn name_before_value(raw_name: &str) -> &str {
    let encoded_equals = raw_name
        .as_bytes()
        .windows(3)
        .position(|w| w[0] == b'%' && (w[1..].eq_ignore_ascii_case(b"3d") || w[1..] == *b"25"));
    encoded_equals.map_or(raw_name, |at| &raw_name[..at])
}

/// Request headers as `name: value; …`, with credentials redacted, and the sensitive query
/// parameters of URL-valued ones (`Referer`, a proxy's `X-Original-URL`) as in the request's
/// own query.
struct RedactedHeaders<'a> {
    headers: &'a HeaderMap,
    log: &'a AccessLog,
}

impl fmt::Display for RedactedHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, value)) in self.headers.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            let name = name.as_str();
            let value = value.to_str().unwrap_or("[non-ascii]");
            if self.log.is_sensitive_name(name) {
                write!(f, "{name}: {REDACTED}")?;
            } else if is_url_valued(name, value) {
                write!(f, "{name}: ")?;
                self.write_url(f, value)?;
            } else {
                // A secret-named pair in any other value (W3C `baggage: session_token=…`, a
                // proxy's copy of the query), as error text is redacted.
                write!(f, "{name}: {}", redact_secrets(value))?;
            }
        }
        Ok(())
    }
}

impl RedactedHeaders<'_> {
    /// `url` with its password (`https://user:[redacted]@host`) and the sensitive parameters
    /// of its query (and of its fragment, where an OAuth implicit flow puts `access_token`)
    /// redacted.
    fn write_url(&self, f: &mut fmt::Formatter<'_>, url: &str) -> fmt::Result {
        // The query and fragment begin after the userinfo, whose password a careless client
        // may write with an unencoded `?` or `#` (`https://app:pa?ss@host/`): split there,
        // the password would be cut in two and the half after the mark kept.
        let from = after_userinfo(url);
        let (url, fragment) = match url[from..].find('#') {
            Some(at) => (&url[..from + at], Some(&url[from + at + 1..])),
            None => (url, None),
        };
        let (path, query) = match url[from..].find('?') {
            Some(at) => (&url[..from + at], Some(&url[from + at + 1..])),
            None => (url, None),
        };
        // Scheme and authority (a password redacted first: it may hold a `/`), then the path
        // as a request's is.
        let path = redact_secrets(path);
        let authority_end = match path.find("://") {
            Some(at) => {
                let host = after_userinfo(&path).max(at + 3);
                path[host..].find('/').map_or(path.len(), |end| host + end)
            }
            None => 0,
        };
        let (authority, path) = path.split_at(authority_end);
        f.write_str(authority)?;
        f.write_str(&self.log.redacted_path(path))?;
        for (mark, part) in [('?', query), ('#', fragment)] {
            if let Some(part) = part {
                write!(
                    f,
                    "{mark}{}",
                    Redacted {
                        query: part,
                        log: self.log
                    }
                )?;
            }
        }
        Ok(())
    }
}

/// A header that holds a URL or a path, whose query may hold what the request's own would
/// have redacted (`referer: https://app.example/reset?token=…`).
fn is_url_valued(name: &str, value: &str) -> bool {
    matches!(name, "referer" | "origin") || value.starts_with('/') || value.contains("://")
}

/// `Pass%77ord` → `password`, so encoding a name does not dodge redaction.
fn percent_decode_lower(s: &str) -> String {
    percent_decode(s).to_ascii_lowercase()
}

/// `s` with `%XX` decoded and `+` read as a space (as forms encode it), case kept.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Sets up JSON logs on stdout with tracing-subscriber: one JSON object per event, at `INFO`
/// and above, or as `RUST_LOG` says: a level (`debug`), or comma-separated `target=level`
/// directives with an optional default level (`info,hardening::request=off`), read by
/// tracing-subscriber's `Targets`. An event logged while a request is handled carries the
/// request's span, `"span":{"name":"request","request_id":"…"}`. No other span is printed:
/// their fields (an `#[instrument]`ed function's arguments, a trace layer's URI and query) may
/// hold what the access log redacts. Nor are axum's TRACE events for its rejections (target
/// `axum::rejection`), whose text quotes the client's input (a mistyped password's value):
/// the problem's detail describes the rejection without it.
///
/// Fails ([`LogInitError`](crate::LogInitError), saying what to change) if a global
/// subscriber is already set (said first, whatever `RUST_LOG` holds: the call is what to
/// change), if `RUST_LOG` is not valid (a misspelt level alone, `infoo` or `warning`,
/// included: tracing-subscriber would read it as a target name and log nothing else; the
/// error names the level meant), or if it would hide hardening's security events (target
/// `hardening::security`, level WARN) without naming them: `RUST_LOG=error` fails,
/// `RUST_LOG=error,hardening::security=warn` keeps them and
/// `RUST_LOG=error,hardening::security=off` drops them on purpose.
///
/// It also sets the panic hook to
/// [`redact_panic_messages`](hardening_errors::redact_panic_messages)'s: std's default hook
/// prints a panic's text, secrets and all, to stderr.
///
/// Its error converts into `Box<dyn Error>` (and `Box<dyn Error + Send + Sync>`), so `?`
/// returns it from `main`, which prints what to change:
///
/// ```no_run
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     hardening_core::init_json_logs()?;
///     Ok(())
/// }
/// ```
pub fn init_json_logs() -> Result<(), LogInitError> {
    use tracing_subscriber::util::SubscriberInitExt as _;
    // A subscriber already set is the error to give first: the call is what to change, and
    // `RUST_LOG` may be right for the subscriber in place (`EnvFilter` reads more than
    // `Targets`), which changing it would break.
    let filter = log_filter(std::env::var("RUST_LOG")).map_err(|e| {
        if global_subscriber_set() {
            LogInitError::SubscriberAlreadySet
        } else {
            e
        }
    })?;
    json_subscriber(filter, std::io::stdout)
        .try_init()
        .map_err(|_| LogInitError::SubscriberAlreadySet)?;
    hardening_errors::redact_panic_messages();
    Ok(())
}

/// Whether a global tracing subscriber is set. Asked on a thread of its own: this one may
/// have a scoped default (`with_default`), which `try_init` does not mind and which hides
/// the global one. Only when `RUST_LOG` is wrong: setting the subscriber says it too.
#[cold]
fn global_subscriber_set() -> bool {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .spawn_scoped(scope, || {
                tracing::dispatcher::get_default(|current| {
                    !current.is::<tracing::subscriber::NoSubscriber>()
                })
            })
            .ok()
            .and_then(|asked| asked.join().ok())
            // Could not tell: the error about `RUST_LOG` stands.
            .unwrap_or(false)
    })
}

/// The filter `RUST_LOG` asks for: `INFO` when it is unset or blank.
fn log_filter(
    var: Result<String, std::env::VarError>,
) -> Result<tracing_subscriber::filter::Targets, LogInitError> {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    let directives = match var {
        Ok(v) if !v.trim().is_empty() => v,
        Ok(_) | Err(std::env::VarError::NotPresent) => {
            return Ok(Targets::new().with_default(LevelFilter::INFO));
        }
        Err(std::env::VarError::NotUnicode(_)) => return Err(LogInitError::RustLogNotUnicode),
    };
    let filter: Targets = match directives.parse() {
        Ok(filter) => filter,
        Err(e) => {
            return Err(LogInitError::InvalidRustLog {
                why: e.to_string(),
                value: directives,
            });
        }
    };
    if let Some((word, level)) = misspelt_level(&directives) {
        return Err(LogInitError::InvalidRustLog {
            why: format!(
                "`{word}` alone is read as a target name, logged at every level, not as a \
                 level: did you mean `{level}`? For a target of that name, write `{word}=trace`"
            ),
            value: directives,
        });
    }
    let security = crate::SECURITY_TARGET;
    let names_security = filter.iter().any(|(target, _)| {
        security == target
            || security
                .strip_prefix(target)
                .is_some_and(|rest| rest.starts_with("::"))
    });
    if !names_security && !filter.would_enable(security, &tracing::Level::WARN) {
        return Err(LogInitError::HidesSecurityEvents {
            value: directives,
            target: security,
        });
    }
    Ok(filter)
}

/// A directive of `directives` that is a level misspelt (`infoo`, `warning`), with the level
/// it is a near miss of. tracing-subscriber reads a word alone that is no level as a target
/// name, enabled at every level, and with no level for the rest, everything else is off.
fn misspelt_level(directives: &str) -> Option<(&str, &'static str)> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    directives.split(',').map(str::trim).find_map(|directive| {
        if directive.is_empty()
            || directive.contains(['=', '[', ':'])
            || directive
                .parse::<tracing_subscriber::filter::LevelFilter>()
                .is_ok()
        {
            return None;
        }
        if directive.eq_ignore_ascii_case("warning") {
            return Some((directive, "warn"));
        }
        hardening_errors::near_miss(directive, &LEVELS).map(|level| (directive, level))
    })
}

/// The target of the event axum logs for each rejection it answers (feature `tracing`).
pub(crate) const AXUM_REJECTION_TARGET: &str = "axum::rejection";

/// Whether the current subscriber would record axum's rejection events, whose text quotes
/// the client's input. Asked once per layer, when it is applied.
pub(crate) fn records_axum_rejections() -> bool {
    tracing::enabled!(target: AXUM_REJECTION_TARGET, tracing::Level::TRACE)
}

/// The subscriber [`init_json_logs`] installs, writing to `writer`.
fn json_subscriber<W>(
    filter: tracing_subscriber::filter::Targets,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::filter::FilterExt as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    // Spans for this layer: the request span only (its one field is the request id). Not
    // axum's rejection events either: their text quotes the client's input (the problem's
    // detail says the same without it).
    let only_request_span = tracing_subscriber::filter::filter_fn(|meta| {
        (!meta.is_span() || meta.target() == crate::REQUEST_SPAN_TARGET)
            && meta.target() != AXUM_REJECTION_TARGET
    });
    tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(writer)
            .with_filter(filter.and(only_request_span)),
    )
}

#[cfg(test)]
mod redaction_fuzz;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn redacts_query_values_by_name() {
        let log = AccessLog::default();
        let q = "page=2&password=hunter2&Access_Token=abc&pass%77ord=x&q=shoes&apikey";
        assert_eq!(
            Redacted {
                query: q,
                log: &log
            }
            .to_string(),
            "page=2&password=[redacted]&Access_Token=[redacted]&pass%77ord=[redacted]&q=shoes&apikey=[redacted]"
        );
        // `;` separates pairs too, for servers that read it so; both are kept as written. A
        // value that axum reads on past a `;` (`a` is `1;password=hunter2`) is redacted whole.
        let q = "a=1;password=hunter2&b=2;;token";
        assert_eq!(
            Redacted {
                query: q,
                log: &log
            }
            .to_string(),
            "a=[redacted]&b=2;;token=[redacted]"
        );
        // A redacted value runs to the next `&`: axum reads `password=hunter2;Xyzzy42q` as one
        // value, whose tail was logged (`password=[redacted];Xyzzy42q`).
        let q = "user=ann&password=hunter2;Xyzzy42q&b=2;c=3&eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlX2hlcmU;tail&d=4";
        assert_eq!(
            Redacted {
                query: q,
                log: &log
            }
            .to_string(),
            "user=ann&password=[redacted]&b=2;c=3&[redacted]&d=4"
        );
        // A value sent with its `=` encoded is part of the name: what the name holds after an
        // encoded `=` (once or twice) is not written.
        let q = "client_secret%3Ds3cr3t&token%3dabc%3Dd=1&password%253Dhunter2&a%3Db=c";
        assert_eq!(
            Redacted {
                query: q,
                log: &log
            }
            .to_string(),
            "client_secret=[redacted]&token=[redacted]&password=[redacted]&a%3Db=c"
        );
    }

    /// `sensitive_query_params(" ssn")` (a list split at `,` without trimming) was taken and
    /// matched no name, so `ssn` went to the logs in clear; `""` redacted every parameter.
    /// Names are trimmed, and empty ones left out.
    #[test]
    fn added_sensitive_names_are_trimmed() {
        let query = "ssn=123-45-6789&dob=1970-01-01&page=2";
        let mut log = AccessLog::default();
        log.add_sensitive_params([" ssn", "dob\t"]);
        let redacted = Redacted { query, log: &log }.to_string();
        assert_eq!(redacted, "ssn=[redacted]&dob=[redacted]&page=2");
        let mut log = AccessLog::default();
        log.add_sensitive_params(["", "  "]);
        let redacted = Redacted { query, log: &log }.to_string();
        assert_eq!(redacted, query, "an empty name redacts nothing more");
    }

    #[test]
    fn redacts_a_value_whose_nested_url_carries_a_secret() {
        // An OAuth `redirect_uri` or a `next` link holding its own query, written as is or
        // percent-encoded (once or twice): its secret is the value's, whatever its name.
        let log = AccessLog::default();
        let redact = |query: &str| Redacted { query, log: &log }.to_string();
        assert_eq!(
            redact("next=https://app.example/cb?token=SECRET&page=2"),
            "next=[redacted]&page=2"
        );
        assert_eq!(
            redact("page=1&next=https%3A%2F%2Fapp.example%2Fcb%3Fsession%3DSECRET"),
            "page=1&next=[redacted]"
        );
        assert_eq!(
            redact("next=%252Fcb%253Fpassword%253DSECRET"),
            "next=[redacted]"
        );
        assert_eq!(
            redact("return=/cb#access_token=SECRET"),
            "return=[redacted]"
        );
        // A nested URL without secrets, and values that only mention a name, stay.
        assert_eq!(
            redact("next=https%3A%2F%2Fapp.example%2Fcb%3Fpage%3D2&q=token"),
            "next=https%3A%2F%2Fapp.example%2Fcb%3Fpage%3D2&q=token"
        );
    }

    /// "Percent-encoded up to three times" held for twice only: the third decoding was
    /// made but never looked at, so `next=` + https://app.example/cb?token=SECRET encoded
    /// three times over was logged whole.
    #[test]
    fn redacts_a_nested_secret_percent_encoded_three_times() {
        let log = AccessLog::default();
        let redact = |query: &str| Redacted { query, log: &log }.to_string();
        assert_eq!(
            redact(
                "next=https%25253A%25252F%25252Fapp.example%25252Fcb%25253Ftoken%25253DSECRET&page=2"
            ),
            "next=[redacted]&page=2"
        );
        assert_eq!(
            redact("next=%25252Fcb%25253Fpage%25253D2"),
            "next=%25252Fcb%25253Fpage%25253D2",
            "no secret in it"
        );
    }

    #[test]
    fn redacts_a_value_that_holds_a_secret_in_json_or_a_url_password() {
        let log = AccessLog::default();
        let redact = |query: &str| Redacted { query, log: &log }.to_string();
        assert_eq!(
            redact(r#"state={"token":"SECRET","n":1}&page=2"#),
            "state=[redacted]&page=2"
        );
        assert_eq!(
            redact("state=%7B%22api_key%22%3A%22SECRET%22%7D"),
            "state=[redacted]"
        );
        assert_eq!(
            redact("db=postgres://app:SECRET@db-7/users"),
            "db=[redacted]"
        );
        // JWTs and providers' keys by their shape, under any name or none.
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl";
        assert_eq!(
            redact(&format!("next=%2F&state={jwt}&page=2")),
            "next=%2F&state=[redacted]&page=2"
        );
        assert_eq!(redact(&format!("{jwt}&page=2")), "[redacted]&page=2");
        assert_eq!(
            redact("gh=ghp_1A2b3C4d5E6f7G8h9I0jKlMnOpQrStUvWxYz"),
            "gh=[redacted]"
        );
        // Percent-encoded, once or twice, inside a nested URL or JSON.
        assert_eq!(
            redact(&format!("next=%2Fcb%3Fx%3D{jwt}&page=2")),
            "next=[redacted]&page=2"
        );
        assert_eq!(
            redact(&format!("state=%257B%2522t%2522%253A%2522{jwt}%2522%257D")),
            "state=[redacted]"
        );
        assert_eq!(
            redact("k=AIzaSyA-1234567890abcdefghijklmnopqrstu&page=2"),
            "k=[redacted]&page=2"
        );
        assert_eq!(
            redact("AIzaSyA-1234567890abcdefghijklmnopqrstu"),
            "[redacted]"
        );
        // JSON without secrets, plain URLs and times stay.
        for kept in [
            r#"filter={"page":2,"tag":"x"}"#,
            "next=https://app.example/cb&t=12:30",
            "next=https%3A%2F%2Fapp.example%2Fcb%3Fpage%3D2",
        ] {
            assert_eq!(redact(kept), kept);
        }
    }

    /// A session id (`sid`), a CAS ticket, a magic link's token, a legacy OpenAI key, a PIN
    /// and a card's security code were logged: no default word is in their names, and no
    /// shape matched the key. Their look-alikes stay, and so does an OpenID Connect `nonce`
    /// (not a credential).
    #[test]
    fn redacts_session_ids_tickets_magic_links_and_legacy_openai_keys() {
        let log = AccessLog::default();
        let redact = |query: &str| Redacted { query, log: &log }.to_string();
        let openai = "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";
        for (query, logged) in [
            (
                "sid=s3cr3t&SiD=s3cr3t&user%5Bsid%5D=s3cr3t&x-sid=s3cr3t",
                "sid=[redacted]&SiD=[redacted]&user%5Bsid%5D=[redacted]&x-sid=[redacted]",
            ),
            (
                "service=https%3A%2F%2Fapp%2F&ticket=ST-1-s3cr3t-cas01",
                "service=https%3A%2F%2Fapp%2F&ticket=[redacted]",
            ),
            (
                "magic_link=s3cr3t&magicLink=s3cr3t&magic-link=s3cr3t",
                "magic_link=[redacted]&magicLink=[redacted]&magic-link=[redacted]",
            ),
            (&format!("k={openai}&{openai}"), "k=[redacted]&[redacted]"),
            (
                "next=%2Fcb%3Fsid%3Ds3cr3t&state=%7B%22ticket%22%3A%22s3cr3t%22%7D",
                "next=[redacted]&state=[redacted]",
            ),
            (
                "pin=1234&card_pin=1234&cvv=123&card%5Bcvc%5D=123",
                "pin=[redacted]&card_pin=[redacted]&cvv=[redacted]&card%5Bcvc%5D=[redacted]",
            ),
        ] {
            assert_eq!(redact(query), logged);
        }
        let kept = "sidebar=1&inside=2&side=buy&tickets_count=3&ticketing=on&nonce=n-0S6_WzA2Mj\
                    &ping=1&spinner=on";
        assert_eq!(redact(kept), kept);
        assert_eq!(
            logged_headers(&log, &[("x-sid", "s3cr3t"), ("baggage", "sid=s3cr3t")]),
            "x-sid: [redacted]; baggage: sid=[redacted]"
        );
    }

    /// A bare token (`?eyJ…`, nothing names it) is redacted by its shape, but one whose text
    /// happened to hold a sensitive word (`pw`, `Key`, `sig`, as random base64 often does),
    /// or came after one (`?jwt:eyJ…`), was taken for a sensitive *name* and written whole,
    /// with `=[redacted]` after it.
    #[test]
    fn a_bare_token_is_redacted_whatever_its_text_holds() {
        let log = AccessLog::default();
        let redact = |query: &str| Redacted { query, log: &log }.to_string();
        for bare in [
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJlpWx3",
            "jwt:eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl",
            "apikey%20sk-proj-1A2b3C4d5E6f7G8h9I0j",
            "AIzaSyA-1234567890abcdefKeyijklmnopqrstu",
            "Authorization%3A%20Bearer%20s3cr3t",
        ] {
            assert_eq!(
                redact(&format!("page=2&{bare}&q=1")),
                "page=2&[redacted]&q=1"
            );
        }
        // A sensitive name with its `=` encoded keeps the name; a bare name too.
        assert_eq!(
            redact("client_secret%3Ds3cr3t&apikey"),
            "client_secret=[redacted]&apikey=[redacted]"
        );
    }

    /// A pair ends at `;` too, but axum reads a value on to the next `&`: a URL whose password
    /// holds a `;` (`db=postgres://app:pa;ss@db`) was checked only up to the `;`, where it
    /// has no password yet, and was logged whole.
    #[test]
    fn a_value_is_checked_as_far_as_axum_reads_it() {
        let log = AccessLog::default();
        let redact = |query: &str| Redacted { query, log: &log }.to_string();
        assert_eq!(
            redact("db=postgres://app:pa;s3cr3t@db-7/users&page=2"),
            "db=[redacted]&page=2"
        );
        assert_eq!(
            redact("page=2&db=redis://app:s3cr3t;x@cache;a=1"),
            "page=2&db=[redacted]"
        );
        // Also when the pair after the `;` is redacted: its name is written.
        assert_eq!(
            redact("a=1;password=hunter2&b=2;c=3"),
            "a=[redacted]&b=2;c=3"
        );
    }

    /// A value read on past a `;` that holds a secret was not redacted when the pair after
    /// the `;` was, as that pair hides all up to the `&`; but a redacted pair's name is
    /// written, and there the rest of a password was: `pa;s3cr3tpwD@db` (a bare pair whose
    /// name holds `pwd`) and `pa;s3cr3t_key=x@db` were logged `…pa;s3cr3tpwD@db…=[redacted]`
    /// and `…pa;s3cr3t_key=[redacted]`.
    #[test]
    fn a_value_past_a_semicolon_is_hidden_whatever_the_next_pair_shows() {
        let log = AccessLog::default();
        let redact = |query: &str| Redacted { query, log: &log }.to_string();
        for query in [
            "q=redis://app:pa;s3cr3tpwD@db-7:5432/users&page=2",
            "db=postgres://app:pa;s3cr3t_key=x@db-7/users&page=2",
            "db=postgres%3A%2F%2Fapp%3Apa;s3cr3t_token=x%40db-7&page=2",
        ] {
            let name = &query[..query.find('=').unwrap()];
            assert_eq!(redact(query), format!("{name}=[redacted]&page=2"));
        }
    }

    /// How the access log writes these request headers.
    fn logged_headers(log: &AccessLog, pairs: &[(&'static str, &'static str)]) -> String {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, value.parse().unwrap());
        }
        RedactedHeaders {
            headers: &headers,
            log,
        }
        .to_string()
    }

    #[test]
    fn redacts_credential_headers() {
        let log = AccessLog::default();
        let s = logged_headers(
            &log,
            &[
                ("authorization", "Bearer s3cr3t"),
                ("cookie", "sid=s3cr3t"),
                ("x-api-key", "s3cr3t"),
                ("x-custom-token", "s3cr3t"),
                ("dpop", "s3cr3t"),
                ("accept", "text/html"),
            ],
        );
        assert!(!s.contains("s3cr3t"), "{s}");
        assert!(s.contains("accept: text/html"), "{s}");
    }

    #[test]
    fn redacts_the_query_of_url_valued_headers() {
        let mut log = AccessLog::default();
        log.add_sensitive_params(["ssn"]);
        let s = logged_headers(
            &log,
            &[
                (
                    "referer",
                    "https://app.example/reset?token=s3cr3t&page=2&SSN=s3cr3t#access_token=s3cr3t&x=1",
                ),
                ("origin", "https://app.example"),
                ("x-original-url", "/cb?code=s3cr3t&state=ok"),
                ("accept", "text/html;q=0.9"),
            ],
        );
        assert_eq!(
            s,
            "referer: https://app.example/reset?token=[redacted]&page=2&SSN=[redacted]\
             #access_token=[redacted]&x=1; origin: https://app.example; \
             x-original-url: /cb?code=[redacted]&state=ok; accept: text/html;q=0.9"
        );
    }

    /// A URL-valued header's password (`https://user:password@host`) was logged, although the
    /// same URL as a query parameter's value is redacted.
    #[test]
    fn redacts_the_password_of_a_url_valued_header() {
        let log = AccessLog::default();
        let s = logged_headers(
            &log,
            &[
                ("destination", "https://app:s3cr3t@dav.example/a?page=2"),
                ("x-callback-url", "https://hook:s3cr3t@hooks.example/in"),
            ],
        );
        assert_eq!(
            s,
            "destination: https://app:[redacted]@dav.example/a?page=2; \
             x-callback-url: https://hook:[redacted]@hooks.example/in"
        );
        // A password holding an unencoded `?` or `#`: the URL was split there first, and the
        // part after the mark logged as a query or fragment.
        let s = logged_headers(
            &log,
            &[
                ("destination", "https://app:pa?s3cr3t@dav.example/a?page=2"),
                (
                    "x-callback-url",
                    "https://hook:pa#s3cr3t@hooks.example/in#top",
                ),
                (
                    "referer",
                    "https://app.example:8443/a?email=ann@example.com",
                ),
                ("x-original-url", "/a?token=s3cr3t&next=https://u:p@h/x"),
            ],
        );
        assert_eq!(
            s,
            "destination: https://app:[redacted]@dav.example/a?page=2; \
             x-callback-url: https://hook:[redacted]@hooks.example/in#top; \
             referer: https://app.example:8443/a?email=ann@example.com; \
             x-original-url: /a?token=[redacted]&next=[redacted]"
        );
    }

    /// Names added with `sensitive_query_params` redacted query parameters only: a header of
    /// that name (a vendor's API key header, `x-honeycomb-team`) was logged whole.
    #[test]
    fn added_sensitive_names_redact_headers_too() {
        let mut log = AccessLog::default();
        log.add_sensitive_params(["X-Honeycomb-Team", "ssn"]);
        let s = logged_headers(
            &log,
            &[
                ("x-honeycomb-team", "s3cr3t"),
                ("x-user-ssn", "s3cr3t"),
                ("accept", "*/*"),
            ],
        );
        assert_eq!(
            s,
            "x-honeycomb-team: [redacted]; x-user-ssn: [redacted]; accept: */*"
        );
    }

    /// A value's credentials after `Bearer` or `Basic` were redacted when its space was
    /// written `%20`, not when written `+` (a form-encoded space).
    #[test]
    fn redacts_credentials_whose_space_is_a_plus() {
        let log = AccessLog::default();
        let redact = |query: &str| Redacted { query, log: &log }.to_string();
        assert_eq!(
            redact("h=Bearer+s3cr3t&g=Basic%20s3cr3t&q=a+b"),
            "h=[redacted]&g=[redacted]&q=a+b"
        );
    }

    /// The `User-Agent` is logged in a field of its own, `user_agent.original`, and was
    /// printed there as sent: a secret-named pair in it (`token=…`), redacted in the logged
    /// request headers, was in the same event in full.
    #[test]
    fn the_user_agent_field_is_redacted_as_the_headers_are() {
        let mut log = AccessLog::default();
        log.set_log_headers(true);
        let lines = json_lines("info", || {
            let (mut parts, ()) = http::Request::get("/a")
                .header("user-agent", "sync-bot/2.1 (token=s3cr3t)")
                .body(())
                .unwrap()
                .into_parts();
            log_ok(&log, &mut parts);
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(!lines[0].to_string().contains("s3cr3t"), "{lines:?}");
        assert_eq!(
            lines[0]["user_agent.original"],
            "sync-bot/2.1 (token=[redacted])"
        );
    }

    /// What `init_json_logs` writes for requests over TCP: every access-log field, and a
    /// security event's, at the top level (none under `fields`), with the types an
    /// OpenTelemetry backend reads (the status a number, the duration a float).
    #[test]
    fn json_logs_put_the_fields_of_real_requests_at_the_top_level() {
        use std::io::{Read as _, Write as _};
        let lines = json_lines("info", || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let app = axum::Router::new()
                    .route("/notes/{id}", axum::routing::post(|| async { "ok" }))
                    .layer(crate::Hardening::strict().body_limit(4).unwrap());
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                tokio::spawn(async move { crate::serve(listener, app).await });
                for request in [
                    &b"POST /notes/7?token=s3cr3t HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"[..],
                    b"POST /notes/7 HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-length: 5\r\n\r\nhello",
                ] {
                    // A blocking client on a thread of its own; the server runs here.
                    tokio::task::spawn_blocking(move || {
                        let mut stream = std::net::TcpStream::connect(addr).unwrap();
                        stream
                            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
                            .unwrap();
                        stream.write_all(request).unwrap();
                        let mut answer = Vec::new();
                        stream.read_to_end(&mut answer).unwrap();
                    })
                    .await
                    .unwrap();
                }
            });
        });
        let access: Vec<&serde_json::Value> = lines
            .iter()
            .filter(|l| l["target"] == ACCESS_TARGET)
            .collect();
        assert_eq!(access.len(), 2, "{lines:#?}");
        for (line, status) in access.iter().zip([200, 413]) {
            assert!(line.get("fields").is_none(), "{line}");
            assert_eq!(line["message"], "request");
            assert_eq!(line["http.request.method"], "POST");
            assert_eq!(line["http.route"], "/notes/{id}");
            assert_eq!(line["http.response.status_code"].as_u64(), Some(status));
            assert!(line["http.server.request.duration"].is_f64(), "{line}");
            assert!(line["request_id"].is_string(), "{line}");
            assert_eq!(line["client.address"], "127.0.0.1");
        }
        assert_eq!(access[0]["url.query"], "token=[redacted]");
        let security: Vec<&serde_json::Value> = lines
            .iter()
            .filter(|l| l["target"] == crate::SECURITY_TARGET)
            .collect();
        assert_eq!(security.len(), 1, "{lines:#?}");
        assert!(security[0].get("fields").is_none(), "{}", security[0]);
        assert_eq!(security[0]["security.event"], "body_too_large");
        assert_eq!(security[0]["request_id"], access[1]["request_id"]);
        assert!(!format!("{lines:?}").contains("s3cr3t"), "{lines:#?}");
    }

    /// Logs the request as answered 200 (the access log must be on).
    pub(crate) fn log_ok(log: &AccessLog, parts: &mut http::request::Parts) {
        let record = log.record(parts).expect("the access log is on");
        log.emit(
            &record,
            Some(StatusCode::OK),
            None,
            RequestId::generate(),
            None,
            None,
        );
    }

    /// Log lines written by [`json_subscriber`] under `RUST_LOG=directives` while `f` runs.
    pub(crate) fn json_lines(directives: &str, f: impl FnOnce()) -> Vec<serde_json::Value> {
        #[derive(Clone, Default)]
        struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let filter = log_filter(Ok(directives.to_owned())).unwrap();
        tracing::subscriber::with_default(json_subscriber(filter, move || writer.clone()), f);
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// A handler's event inside the request span and inside a span of its own that holds
    /// a secret, and one more event outside both.
    fn log_in_request_span() {
        let span = tracing::info_span!(target: crate::REQUEST_SPAN_TARGET, "request", request_id = "0193-abc");
        let _entered = span.enter();
        tracing::info!(target: "app", user = 7, "inside the handler");
        let own = tracing::info_span!(target: "app", "login", password = "hunter2");
        let _own = own.enter();
        tracing::info!(target: "app", "inside the handler's own span");
    }

    // One test, both filters in turn: two tests on two threads, each with its own
    // subscriber wanting the same span callsite differently, can race on its cached interest.
    #[test]
    fn json_logs_carry_the_request_span_alone_and_can_drop_it() {
        let lines = json_lines("info", log_in_request_span);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0]["message"], "inside the handler");
        assert_eq!(lines[0]["user"], 7);
        for line in &lines {
            assert_eq!(line["span"]["name"], "request", "{lines:?}");
            assert_eq!(line["span"]["request_id"], "0193-abc");
        }
        assert!(!format!("{lines:?}").contains("hunter2"), "{lines:?}");

        let lines = json_lines("info,hardening::request=off", log_in_request_span);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0]["message"], "inside the handler");
        assert!(lines.iter().all(|l| l.get("span").is_none()), "{lines:?}");
    }

    /// axum (with its default feature `tracing`) logs each rejection it answers, at TRACE
    /// on target `axum::rejection`, with the rejection's text, which quotes the client's
    /// input: `Cannot parse `<input>` to a `u32``, a JSON body's `invalid type: string
    /// "<password>"`. Such an event (these are axum-core's fields) was printed under
    /// `RUST_LOG=trace`, the secret with it.
    #[test]
    fn json_logs_leave_out_axums_rejection_events() {
        let log = || {
            tracing::trace!(
                target: "axum::rejection",
                status = 422u16,
                body = "Failed to deserialize the JSON body into the target type: password: \
                        invalid type: string \"s3cr3t\", expected u32 at line 1 column 22",
                rejection_type = "axum::extract::rejection::JsonRejection",
                "rejecting request",
            );
            tracing::trace!(target: "app", "still logged");
        };
        for directives in ["trace", "info,axum=trace,app=trace"] {
            let lines = json_lines(directives, log);
            assert!(!format!("{lines:?}").contains("s3cr3t"), "{lines:?}");
            assert_eq!(lines.len(), 1, "{directives}: {lines:?}");
            assert_eq!(lines[0]["message"], "still logged");
        }
    }

    #[test]
    fn rust_log_is_read_strictly() {
        use std::env::VarError;
        use tracing_subscriber::filter::LevelFilter;
        let info = Some(LevelFilter::INFO);
        assert_eq!(
            log_filter(Err(VarError::NotPresent))
                .unwrap()
                .default_level(),
            info
        );
        assert_eq!(log_filter(Ok("  ".into())).unwrap().default_level(), info);
        assert_eq!(
            log_filter(Ok("debug".into())).unwrap().default_level(),
            Some(LevelFilter::DEBUG)
        );
        for kept in [
            "info,hardening::request=off",
            "warn",
            "error,hardening::security=warn",
            "error,hardening::security=off",
            "off,hardening=info",
        ] {
            assert!(log_filter(Ok(kept.into())).is_ok(), "{kept}");
        }
        assert_eq!(
            log_filter(Err(VarError::NotUnicode("x".into()))).unwrap_err(),
            LogInitError::RustLogNotUnicode
        );
        let e = log_filter(Ok("info,=bogus=level".into())).unwrap_err();
        assert!(
            matches!(e, LogInitError::InvalidRustLog { .. }) && e.to_string().contains("`info`"),
            "says what to write instead: {e}"
        );
        // A lone target would hide the security events: refused, saying what to add (a
        // misspelt level is refused naming the level meant, below).
        for hiding in ["my_app", "my_app=debug", "error"] {
            let e = log_filter(Ok(hiding.into())).unwrap_err();
            assert!(
                format!("{e:?}").contains("hardening::security=warn"),
                "{hiding}: Debug, as main prints it, says what to add: {e:?}"
            );
        }
    }

    /// A misspelt level alone (`infoo`) is a target name to tracing-subscriber, logged at
    /// every level, with everything else off. It used to be refused only for hiding the
    /// security events, with the advice to add `,hardening::security=warn`: followed, that
    /// starts the service with its access log off. Even with the security target named
    /// (`debgu,hardening::security=warn`), it was accepted, and the service logged almost
    /// nothing. Now it is an invalid `RUST_LOG` that names the level meant.
    #[test]
    fn a_misspelt_level_is_refused_naming_the_level_meant() {
        for (typo, meant) in [
            ("infoo", "info"),
            ("inf", "info"),
            ("WARNING", "warn"),
            ("debgu,hardening::security=warn", "debug"),
            ("hardening::security=warn, eror", "error"),
        ] {
            let e = log_filter(Ok(typo.into())).unwrap_err();
            let word = typo
                .split(',')
                .map(str::trim)
                .find(|d| !d.contains('='))
                .unwrap();
            assert!(
                matches!(e, LogInitError::InvalidRustLog { .. })
                    && format!("{e:?}").contains(&format!("did you mean `{meant}`"))
                    && format!("{e:?}").contains(&format!("`{word}=trace`")),
                "{typo}: {e:?}"
            );
        }
        // Target names that are not near misses of a level are still target names.
        for kept in [
            "info,tracing",
            "info,wasm",
            "warn,io",
            "tracing,hardening::security=warn",
        ] {
            assert!(log_filter(Ok(kept.into())).is_ok(), "{kept}");
        }
    }

    /// Path parameters were redacted by `redact_secrets`' rule for names in text, not by the
    /// query's: a name written in another case (`PaSsWoRd`) or percent-encoded
    /// (`pass%77ord`), or one that only the access log counts sensitive (`code`, a name
    /// added with `sensitive_query_params`), was logged with its value, in the path of a
    /// request no route matched and in a URL-valued header's.
    #[test]
    fn path_parameters_are_redacted_as_query_parameters_are() {
        let mut log = AccessLog::default();
        log.add_sensitive_params(["ssn"]);
        log.set_log_headers(true);
        for (path, logged) in [
            ("/cb;PaSsWoRd=s3cr3t", "/cb;PaSsWoRd=[redacted]"),
            ("/cb;pass%77ord=s3cr3t;x=1", "/cb;pass%77ord=[redacted];x=1"),
            ("/cb;Token=s3cr3t", "/cb;Token=[redacted]"),
            ("/a;x=1;code=s3cr3t/b;c=d", "/a;x=1;code=[redacted]/b;c=d"),
            ("/a;SSN=s3cr3t", "/a;SSN=[redacted]"),
            (
                "/a;client_secret%3Ds3cr3t/b",
                "/a;client_secret=[redacted]/b",
            ),
            ("/a;next=%2Fcb%3Ftoken%3Ds3cr3t", "/a;next=[redacted]"),
            ("/a;b=c/d;page=2;flag", "/a;b=c/d;page=2;flag"),
        ] {
            let lines = json_lines("info", || {
                let (mut parts, ()) = http::Request::get(path)
                    .header("referer", format!("https://app.example{path}?page=2"))
                    .body(())
                    .unwrap()
                    .into_parts();
                log_ok(&log, &mut parts);
            });
            assert_eq!(lines.len(), 1, "{lines:?}");
            assert_eq!(lines[0]["url.path"], logged, "{path}");
            assert_eq!(
                lines[0]["http.request.headers"],
                format!("referer: https://app.example{logged}?page=2"),
                "{path}"
            );
        }
    }

    #[test]
    fn a_path_without_a_route_is_logged_ascii_and_without_path_parameter_secrets() {
        let log = AccessLog::default();
        assert!(matches!(
            log.logged_path("/nowhere/a;b=c"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            log.logged_path("/cb;jsessionid=s3cr3t;x=1"),
            "/cb;jsessionid=[redacted];x=1"
        );
        assert_eq!(
            log.logged_path("/n\u{85}o\u{2028}\u{202e};token=s3cr3t"),
            "/n%C2%85o%E2%80%A8%E2%80%AE;token=[redacted]"
        );
        let redact = |query: &str| Redacted { query, log: &log }.to_string();
        assert_eq!(
            redact("q=caf\u{e9}&\u{e9}token=x"),
            "q=caf%C3%A9&%C3%A9token=[redacted]"
        );
    }

    /// A path with no route template (a 404, `Hardening` outside the router) was logged as
    /// sent, tokens in its segments and all (`/reset/<token>`); segments that may be tokens
    /// are redacted now, in the path and in URL-valued headers' paths (not their hosts).
    #[test]
    fn path_segments_that_may_be_tokens_are_redacted() {
        let log = AccessLog::default();
        for (path, logged) in [
            ("/reset/k3J4h5G6f7D8s9A0x", "/reset/[redacted]"),
            (
                "/invite/550e8400-e29b-41d4-a716-446655440000/accept",
                "/invite/[redacted]/accept",
            ),
            (
                "/u/0123456789abcdef0;token=s3cr3t",
                "/u/[redacted];token=[redacted]",
            ),
            (
                "/account-settings-page/notes",
                "/account-settings-page/notes",
            ),
            ("/nowhere/short1234", "/nowhere/short1234"),
        ] {
            assert_eq!(log.logged_path(path), logged, "{path}");
        }
        let s = logged_headers(
            &log,
            &[
                (
                    "referer",
                    "https://Hooks.Example-Company.com/reset/k3J4h5G6f7D8s9A0x?page=2",
                ),
                ("x-original-url", "/magic/0123456789ABCDEF0123"),
                (
                    "destination",
                    "https://app:pa/ss@Dav.Example-Company.com/u/550e8400-e29b-41d4-a716-446655440000",
                ),
            ],
        );
        assert_eq!(
            s,
            "referer: https://Hooks.Example-Company.com/reset/[redacted]?page=2; \
             x-original-url: /magic/[redacted]; \
             destination: https://app:[redacted]@Dav.Example-Company.com/u/[redacted]"
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode_lower("A%42c%zz%4"), "abc%zz%4");
    }
}
