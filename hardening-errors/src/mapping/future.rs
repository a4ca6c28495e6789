use std::any::Any;
use std::future::Future;
use std::net::IpAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::response::Parts;
use http::{HeaderName, Response, StatusCode};
use http_body::Body;
use pin_project_lite::pin_project;

use super::{CaughtPanic, ProblemBody};
use crate::collect::{CollectCapped, collect_capped};
use crate::error::{InternalReport, with_generic_detail};
use crate::security_event::report_unreported;
use crate::{PROBLEM_JSON, Problem, RequestId, rejection};

/// Rejection texts longer than this are not read; the problem gets a generic detail.
const MAX_REJECTION_TEXT: usize = 4096;

/// Someone else's problem bodies longer than this are not read; a problem of the same
/// status, with a generic detail, replaces them.
const MAX_FOREIGN_PROBLEM: usize = 16 * 1024;

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pin_project! {
    /// The response future of [`ProblemService`](crate::ProblemService).
    #[derive(Debug)]
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
        request_id: RequestId,
        // Whether successes get `x-request-id` here (not when an outer layer writes it).
        id_header: bool,
        // Whether a handler's own HTML page for a client error is passed on (as a success
        // is) instead of replaced by a problem.
        html_pages: bool,
        // Whether rejections are reported here as security events (`ProblemService`), and the
        // client address to report; `Hardening` reports its own.
        report: Option<Report>,
    }
}

/// Rejections are reported as security events, with this client address.
#[derive(Debug, Clone, Copy)]
pub(super) struct Report {
    pub(super) client_ip: Option<IpAddr>,
}

pin_project! {
    #[project = StateProj]
    #[derive(Debug)]
    enum State<F, B> {
        // Waiting for the inner service.
        Calling { #[pin] future: F },
        // Reading a short body: a plain-text rejection to describe, or someone else's
        // problem to stamp the request id into. At most `MAX_EMPTY_FRAMES` frames without
        // bytes are read (a body of them without end would keep the read going forever).
        Reading {
            parts: Option<Parts>,
            #[pin] read: CollectCapped<B>,
            purpose: Reading,
        },
        // Answered already (a panic in `call`).
        Ready { response: Option<Response<ProblemBody<B>>> },
    }
}

impl<F, B> ResponseFuture<F, B> {
    pub(super) fn new(
        future: F,
        request_id: RequestId,
        id_header: bool,
        html_pages: bool,
        report: Option<Report>,
    ) -> Self {
        Self {
            state: State::Calling { future },
            request_id,
            id_header,
            html_pages,
            report,
        }
    }

    pub(super) fn panicked(
        payload: Box<dyn Any + Send>,
        request_id: RequestId,
        report: Option<Report>,
    ) -> Self {
        Self {
            state: State::Ready {
                response: Some(caught_panic_response(payload, request_id)),
            },
            request_id,
            id_header: true,
            html_pages: false,
            report,
        }
    }
}

impl<B> ResponseFuture<std::future::Ready<Result<Response<B>, std::convert::Infallible>>, B> {
    /// The mapping of a response already in hand, for a layer that calls its service itself
    /// (`hardening-core`'s fused service hands over only its error responses): an error
    /// response becomes a problem, as [`ProblemService`](crate::ProblemService) would make
    /// it; a success passes through without `x-request-id` (that layer writes it).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use hardening_errors::{RequestId, ResponseFuture};
    /// let res = http::Response::builder().status(404).body(axum::body::Body::empty()).unwrap();
    /// let mapped = ResponseFuture::for_response(res, RequestId::generate()).await.unwrap();
    /// assert_eq!(mapped.status(), 404);
    /// assert_eq!(mapped.headers()["content-type"], "application/problem+json");
    /// # });
    /// ```
    pub fn for_response(response: Response<B>, request_id: RequestId) -> Self {
        Self::new(
            std::future::ready(Ok(response)),
            request_id,
            false,
            false,
            None,
        )
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body<Data = Bytes>,
{
    type Output = Result<Response<ProblemBody<B>>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut response = ready!(self.as_mut().poll_mapped(cx))?;
        if let Some(Report { client_ip }) = self.report {
            // Under the id the problem carries (in its body and `x-request-id`).
            let request_id = response
                .extensions()
                .get::<Problem>()
                .and_then(Problem::request_id)
                .unwrap_or(self.request_id);
            report_unreported(&mut response, request_id, client_ip);
        }
        Poll::Ready(Ok(response))
    }
}

impl<F, B, E> ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body<Data = Bytes>,
{
    /// The response, mapped to a problem if it is an error.
    fn poll_mapped(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Response<ProblemBody<B>>, E>> {
        let mut this = self.project();
        let request_id = *this.request_id;
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    let res = match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
                        Ok(Poll::Pending) => return Poll::Pending,
                        Ok(Poll::Ready(res)) => res?,
                        Err(payload) => {
                            this.state.set(State::Ready { response: None });
                            return Poll::Ready(Ok(caught_panic_response(payload, request_id)));
                        }
                    };
                    let (parts, body) = res.into_parts();
                    if let Some(purpose) = wants_reading(&parts, &body) {
                        this.state.set(State::Reading {
                            parts: Some(parts),
                            read: collect_capped(body, purpose.limit()),
                            purpose,
                        });
                        continue;
                    }
                    this.state.set(State::Ready { response: None });
                    return Poll::Ready(Ok(map_response(
                        parts,
                        body,
                        request_id,
                        *this.id_header,
                        *this.html_pages,
                    )));
                }
                StateProj::Reading {
                    parts,
                    read,
                    purpose,
                } => {
                    // The body is the inner service's: its panics are caught too.
                    let text = match catch_unwind(AssertUnwindSafe(|| read.poll(cx))) {
                        Ok(Poll::Pending) => return Poll::Pending,
                        // `None`: too long, too many empty frames, or failed.
                        Ok(Poll::Ready(text)) => text.ok(),
                        Err(payload) => {
                            this.state.set(State::Ready { response: None });
                            return Poll::Ready(Ok(caught_panic_response(payload, request_id)));
                        }
                    };
                    let parts = parts
                        .take()
                        .expect("Reading state holds its parts until it ends");
                    if let Reading::ForeignProblem = purpose {
                        let response = foreign_problem(parts, text.as_deref(), request_id);
                        this.state.set(State::Ready { response: None });
                        return Poll::Ready(Ok(response));
                    }
                    let detail = text.as_deref().and_then(|text| {
                        std::str::from_utf8(text).ok().and_then(rejection::describe)
                    });
                    let problem = Problem::new(parts.status);
                    let problem = match detail {
                        Some(detail) => problem.with_detail(detail),
                        None => with_generic_detail(problem),
                    };
                    this.state.set(State::Ready { response: None });
                    return Poll::Ready(Ok(problem_response(parts, problem, request_id)));
                }
                StateProj::Ready { response } => {
                    return Poll::Ready(Ok(response
                        .take()
                        .expect("ResponseFuture polled after completion")));
                }
            }
        }
    }
}

/// What an error response's body is read for before it is answered.
#[derive(Debug, Clone, Copy)]
enum Reading {
    /// A short `text/plain` rejection (axum's), to describe in the problem's detail.
    RejectionText,
    /// Someone else's `application/problem+json` for a client error, to pass on with the
    /// request id in it.
    ForeignProblem,
}

impl Reading {
    /// How much of the body is read at most.
    fn limit(self) -> usize {
        match self {
            Self::RejectionText => MAX_REJECTION_TEXT,
            Self::ForeignProblem => MAX_FOREIGN_PROBLEM,
        }
    }
}

/// Whether an error response's body is read first, and what for: a short `text/plain`
/// client error without a problem (an axum rejection, worth describing), or someone else's
/// problem for a client error (written for the client, but without this request's id).
fn wants_reading<B: Body>(parts: &Parts, body: &B) -> Option<Reading> {
    if !parts.status.is_client_error() || parts.extensions.get::<Problem>().is_some() {
        return None;
    }
    if is_problem_json(parts) {
        return Some(Reading::ForeignProblem);
    }
    (describes_rejection_of(parts.status)
        && parts
            .headers
            .get(CONTENT_TYPE)
            .is_some_and(|ct| ct.as_bytes().starts_with(b"text/plain"))
        && body
            .size_hint()
            .upper()
            .is_some_and(|n| n <= MAX_REJECTION_TEXT as u64))
    .then_some(Reading::RejectionText)
}

/// Whether a rejection text of this status is described in the problem's detail: one of a
/// request that does not parse (400, 415, 422). Others get their status's generic detail:
/// axum's 413 says only that it "failed to buffer the request body", as its 400 does.
pub(crate) fn describes_rejection_of(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_REQUEST
            | StatusCode::UNSUPPORTED_MEDIA_TYPE
            | StatusCode::UNPROCESSABLE_ENTITY
    )
}

/// Someone else's problem for a client error, read whole (`body`; `None` when it was too
/// long or failed): passed on as written, with this request's id as its `request_id` member
/// and the response's status as its `status` (RFC 9457 §3.1.2). One that is not a JSON
/// object is replaced by a problem of the same status.
fn foreign_problem<B>(
    mut parts: Parts,
    body: Option<&[u8]>,
    request_id: RequestId,
) -> Response<ProblemBody<B>> {
    if let Some(report) = parts.extensions.remove::<InternalReport>() {
        report.log(Some(request_id));
    }
    let status = parts.status;
    let json = body
        .and_then(|b| serde_json::from_slice::<Members<'_>>(b).ok())
        .map(|members| members.stamped(status, request_id));
    let Some(json) = json else {
        return problem_response(parts, with_generic_detail(Problem::new(status)), request_id);
    };
    // New bytes: the old ones' length, digests and strong validator are wrong (their
    // coding was none: they parsed).
    crate::problem::drop_byte_headers(&mut parts.headers);
    crate::problem::challenge_a_401(status, &mut parts.headers);
    // Written by serde_json: UTF-8, the one spelling of the type.
    parts
        .headers
        .insert(CONTENT_TYPE, http::HeaderValue::from_static(PROBLEM_JSON));
    parts
        .headers
        .insert(X_REQUEST_ID.clone(), request_id.to_header_value());
    Response::from_parts(parts, ProblemBody::full(Bytes::from(json)))
}

/// The members of a JSON object, in the order written, each value as its exact text (a
/// number past 64-bit integers is not rounded to an `f64`; escapes stay as they were).
struct Members<'a>(Vec<(String, &'a serde_json::value::RawValue)>);

impl<'a> Members<'a> {
    /// The object again, with `status` and `request_id` set: where they stood (once, however
    /// often they were written), else at the end.
    fn stamped(self, status: StatusCode, request_id: RequestId) -> Vec<u8> {
        let status = status.as_u16().to_string();
        let request_id = serde_json::to_string(request_id.as_str()).unwrap_or_default();
        let (mut wrote_status, mut wrote_id) = (false, false);
        let mut out = Vec::with_capacity(256);
        out.push(b'{');
        let member = |out: &mut Vec<u8>, name: &str, value: &str| {
            if out.len() > 1 {
                out.push(b',');
            }
            // A `String` always serialises.
            let _ = serde_json::to_writer(&mut *out, name);
            out.push(b':');
            out.extend_from_slice(value.as_bytes());
        };
        for (name, value) in &self.0 {
            match name.as_str() {
                "status" if !wrote_status => {
                    wrote_status = true;
                    member(&mut out, name, &status);
                }
                "request_id" if !wrote_id => {
                    wrote_id = true;
                    member(&mut out, name, &request_id);
                }
                "status" | "request_id" => {}
                _ => member(&mut out, name, value.get()),
            }
        }
        if !wrote_status {
            member(&mut out, "status", &status);
        }
        if !wrote_id {
            member(&mut out, "request_id", &request_id);
        }
        out.push(b'}');
        out
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Members<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<Self::Value, M::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8).min(64));
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Visit(std::marker::PhantomData))
    }
}

/// Passes successes through (and, with `html_pages`, a handler's own HTML page for a client
/// error); turns an error response into a problem.
fn map_response<B>(
    mut parts: Parts,
    body: B,
    request_id: RequestId,
    id_header: bool,
    html_pages: bool,
) -> Response<ProblemBody<B>> {
    if passes_through(parts.status)
        || html_pages && html_error_page(parts.status, &parts.headers, &parts.extensions)
    {
        // Always this layer's id: a value the handler copied from the request (the client's)
        // is not passed on. (A `Hardening` inside this layer gives the request an id of its
        // own, which its access log uses: put `Hardening` outside, it maps problems itself.)
        if id_header {
            parts
                .headers
                .insert(X_REQUEST_ID.clone(), request_id.to_header_value());
        }
        // A kept 401 page still names a challenge (2xx and 3xx are never 401).
        crate::problem::challenge_a_401(parts.status, &mut parts.headers);
        return Response::from_parts(parts, ProblemBody::inner(body));
    }
    let invalid = !(parts.status.is_client_error() || parts.status.is_server_error());
    if invalid {
        invalid_status(&mut parts, request_id);
    }
    if let Some(report) = parts.extensions.remove::<InternalReport>() {
        report.log(Some(request_id));
    }
    let problem = match parts.extensions.remove::<Problem>() {
        Some(problem) => problem.answered_with(parts.status),
        // (Someone else's problem for a client error was read and stamped instead; a server
        // error's is replaced like any other body: whatever wrote it, a proxied upstream
        // say, may have put internals in it.)
        None => {
            if parts.status.is_server_error() {
                drop_own_headers(&mut parts.headers);
                // (An invalid status was logged as such.)
                if !invalid {
                    tracing::error!(
                        target: crate::LOG_TARGET,
                        request_id = %request_id,
                        status = parts.status.as_u16(),
                        "the service answered a server error without a problem of this crate's; its body was replaced",
                    );
                }
            }
            with_generic_detail(Problem::new(parts.status))
        }
    };
    problem_response(parts, problem, request_id)
}

/// Whether a response is passed on as it is: 2xx, 3xx, and `101 Switching Protocols`. Any
/// other status is an error's, or cannot end a response: another 1xx (hyper answers a bare
/// 500 in its place, without the request id) or 600-999, which are not HTTP statuses
/// (RFC 9110 §15: a client treats them as 5xx; libraries use them for errors of their own,
/// and a proxy may pass one on with an upstream's internals in its body).
fn passes_through(status: StatusCode) -> bool {
    (200..400).contains(&status.as_u16()) || status == StatusCode::SWITCHING_PROTOCOLS
}

/// A status no response may end with (a 1xx other than 101, or 600-999): logged, and made a
/// 500, whose problem replaces the body as for any server error.
#[cold]
fn invalid_status(parts: &mut Parts, request_id: RequestId) {
    tracing::error!(
        target: crate::LOG_TARGET,
        request_id = %request_id,
        status = parts.status.as_u16(),
        "the service answered a status no response may end with; answered 500 and replaced its body",
    );
    parts.status = StatusCode::INTERNAL_SERVER_ERROR;
}

/// Headers a server error keeps when its body is replaced: protocol and security headers.
/// Any other header it carried (`Server`, `X-Powered-By`, an upstream's debug link or error
/// text) may describe internals, as its body may.
///
/// Security headers include what a client acts on even for an error: `Clear-Site-Data` (a
/// logout that failed must still wipe the browser's copy), the report-only policies, and
/// where reports go (`Reporting-Endpoints`, `Report-To`, `NEL`: the kept policies'
/// `report-to` names them, and network error logging exists to report errors).
const KEPT_BY_A_REPLACED_SERVER_ERROR: &[&str] = &[
    "allow",
    "alt-svc",
    "cache-control",
    "clear-site-data",
    "connection",
    "content-security-policy",
    "content-security-policy-report-only",
    "cross-origin-embedder-policy",
    "cross-origin-embedder-policy-report-only",
    "cross-origin-opener-policy",
    "cross-origin-opener-policy-report-only",
    "cross-origin-resource-policy",
    "date",
    "document-policy",
    "document-policy-report-only",
    "integrity-policy",
    "integrity-policy-report-only",
    "nel",
    "origin-agent-cluster",
    "permissions-policy",
    "permissions-policy-report-only",
    "proxy-authenticate",
    "ratelimit",
    "ratelimit-policy",
    "referrer-policy",
    "report-to",
    "reporting-endpoints",
    "require-document-policy",
    "retry-after",
    "set-cookie",
    "strict-transport-security",
    "vary",
    "www-authenticate",
    "x-content-type-options",
    "x-dns-prefetch-control",
    "x-frame-options",
    "x-permitted-cross-domain-policies",
    "x-request-id",
    "x-xss-protection",
];

/// Drops the headers of a server error whose body is replaced that are not in
/// [`KEPT_BY_A_REPLACED_SERVER_ERROR`] (nor CORS headers). `content-*` ones go later, with
/// the body.
#[cold]
fn drop_own_headers(headers: &mut http::HeaderMap) {
    crate::problem::remove_headers_where(headers, |name| {
        let name = name.as_str();
        !KEPT_BY_A_REPLACED_SERVER_ERROR.contains(&name)
            && !name.starts_with("access-control-")
            && !name.starts_with("content-")
    });
}

/// Whether an error response is a page its service rendered for a client error, which
/// [`ProblemLayer::keep_html_error_pages`](crate::ProblemLayer::keep_html_error_pages) (and
/// `hardening-core`'s `Hardening::keep_html_error_pages`) passes on with its body: a 4xx
/// with one `Content-Type` field, whose media type is `text/html` (in any case, parameters
/// aside: `text/html; charset=utf-8` is one, `text/htmlx` is not), and no [`Problem`] in its
/// extensions (a handler's `Problem` or `Error`, a layer's rejection). Never a server error:
/// its page may show internals.
///
/// ```
/// use hardening_errors::is_html_error_page;
/// let response = |status: u16, content_type: &str| {
///     let res = http::Response::builder().status(status).header("content-type", content_type);
///     res.body(()).unwrap()
/// };
/// assert!(is_html_error_page(&response(404, "text/html; charset=utf-8")));
/// assert!(is_html_error_page(&response(422, "Text/HTML")));
/// assert!(!is_html_error_page(&response(404, "text/htmlx")));
/// assert!(!is_html_error_page(&response(400, "text/plain; charset=utf-8")));
/// assert!(!is_html_error_page(&response(500, "text/html")));
/// assert!(!is_html_error_page(&response(200, "text/html")));
/// ```
pub fn is_html_error_page<B>(response: &Response<B>) -> bool {
    html_error_page(response.status(), response.headers(), response.extensions())
}

/// [`is_html_error_page`], of a response's parts.
fn html_error_page(
    status: StatusCode,
    headers: &http::HeaderMap,
    extensions: &http::Extensions,
) -> bool {
    if !status.is_client_error() || extensions.get::<Problem>().is_some() {
        return false;
    }
    let mut content_types = headers.get_all(CONTENT_TYPE).iter();
    match (content_types.next(), content_types.next()) {
        (Some(ct), None) => crate::media_type(ct).eq_ignore_ascii_case(b"text/html"),
        // None, or several: a browser takes the last valid one, which may not be HTML.
        _ => false,
    }
}

/// Whether the response says its body is `application/problem+json`, in any case (media
/// types are case-insensitive, RFC 9110 §8.3.1), parameters aside.
fn is_problem_json(parts: &Parts) -> bool {
    parts
        .headers
        .get(CONTENT_TYPE)
        .is_some_and(|ct| crate::media_type(ct).eq_ignore_ascii_case(PROBLEM_JSON.as_bytes()))
}

/// The final problem response: the original head (minus `content-*`), the problem's headers,
/// the request id, and the problem in the extensions for layers further out.
pub(crate) fn problem_response<B>(
    mut parts: Parts,
    problem: Problem,
    request_id: RequestId,
) -> Response<ProblemBody<B>> {
    // A problem made under another id by a layer inside that gave the request its own (and
    // wrote it in `x-request-id`, as `Hardening` does) keeps it: one id per response, the
    // one that layer logged. Any other (one the service read from an upstream, say) is
    // answered under this request's.
    let (problem, request_id) = match problem.request_id() {
        Some(id)
            if id == request_id
                || parts
                    .headers
                    .get(&X_REQUEST_ID)
                    .is_some_and(|v| v.as_bytes() == id.as_str().as_bytes()) =>
        {
            (problem, id)
        }
        _ => (problem.with_request_id(request_id), request_id),
    };
    problem.write_head(&mut parts.headers);
    parts
        .headers
        .insert(X_REQUEST_ID.clone(), request_id.to_header_value());
    let json = problem.to_json();
    parts.extensions.insert(problem);
    Response::from_parts(parts, ProblemBody::full(json))
}

/// The 500 problem for a panic caught with the request's id, as
/// [`ProblemService`](crate::ProblemService) answers it: the panic's text goes to the log
/// only (secrets redacted), and the response carries [`CaughtPanic`] in its extensions. For
/// layers that call their service themselves and catch its panics.
///
/// ```
/// use hardening_errors::{CaughtPanic, RequestId, panic_response};
/// let payload = std::panic::catch_unwind(|| panic!("db password was hunter2")).unwrap_err();
/// let res = panic_response::<axum::body::Body>(&*payload, RequestId::generate());
/// assert_eq!(res.status(), 500);
/// assert!(res.extensions().get::<CaughtPanic>().is_some());
/// ```
pub fn panic_response<B>(
    payload: &(dyn Any + Send),
    request_id: RequestId,
) -> Response<ProblemBody<B>> {
    log_panic(payload, request_id, "the service panicked; answered 500");
    let (parts, ()) = Response::new(()).into_parts();
    let mut parts = parts;
    parts.status = StatusCode::INTERNAL_SERVER_ERROR;
    parts.extensions.insert(CaughtPanic);
    let problem = with_generic_detail(Problem::new(StatusCode::INTERNAL_SERVER_ERROR));
    problem_response(parts, problem, request_id)
}

/// [`panic_response`] for a panic caught here, its payload then dropped with
/// [`drop_panic_payload`].
#[cold]
fn caught_panic_response<B>(
    payload: Box<dyn Any + Send>,
    request_id: RequestId,
) -> Response<ProblemBody<B>> {
    let response = panic_response(&*payload, request_id);
    drop_panic_payload(payload);
    response
}

/// Drops a caught panic's payload. A payload's own `Drop` may panic too (a `panic_any`
/// value can be anything): that panic is caught, and its payload leaked rather than dropped
/// (it may do the same), so that it does not unwind out of the layer and cut the
/// connection instead of the 500 being sent.
///
/// ```
/// let payload: Box<dyn std::any::Any + Send> = Box::new("boom");
/// hardening_errors::drop_panic_payload(payload);
/// ```
#[cold]
#[inline(never)]
pub fn drop_panic_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}

/// Logs a caught panic on [`LOG_TARGET`](crate::LOG_TARGET) at ERROR: `message` says what
/// became of the request, the payload's text goes in the `panic` field with secrets redacted
/// ([`redact_secrets`](crate::redact_secrets)). [`panic_response`] logs through it.
///
/// ```
/// let payload: Box<dyn std::any::Any + Send> = Box::new("token=abc123 went missing");
/// hardening_errors::log_panic(&*payload, hardening_errors::RequestId::generate(), "cut off");
/// ```
pub fn log_panic(payload: &(dyn Any + Send), request_id: RequestId, message: &str) {
    let text = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-string panic payload)");
    tracing::error!(
        target: crate::LOG_TARGET,
        request_id = %request_id,
        panic = %crate::redact::redact_secrets(text),
        "{message}",
    );
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use http::StatusCode;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use crate::ProblemLayer;

    /// A route answering `status` with these headers and body, behind [`ProblemLayer`].
    async fn mapped(
        status: StatusCode,
        headers: &'static [(&'static str, &'static str)],
        body: &'static str,
    ) -> (http::response::Parts, Vec<u8>) {
        mapped_by(ProblemLayer::new(), status, headers, body).await
    }

    /// [`mapped`], behind `layer`.
    async fn mapped_by(
        layer: ProblemLayer,
        status: StatusCode,
        headers: &'static [(&'static str, &'static str)],
        body: &'static str,
    ) -> (http::response::Parts, Vec<u8>) {
        let app = Router::new()
            .route(
                "/",
                get(move || async move {
                    let mut res = http::Response::new(Body::from(body));
                    *res.status_mut() = status;
                    for (name, value) in headers {
                        res.headers_mut().append(
                            http::HeaderName::from_static(name),
                            http::HeaderValue::from_static(value),
                        );
                    }
                    res
                }),
            )
            .layer(layer);
        let res = app
            .oneshot(http::Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = res.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes().to_vec();
        (parts, bytes)
    }

    /// RFC 9110 §15.5.2: every 401 carries a `WWW-Authenticate` challenge. A handler's bare
    /// `StatusCode::UNAUTHORIZED`, its text 401, and another service's 401 problem passed on
    /// went out with none; they now say `Bearer`, and a challenge the handler named is kept.
    #[tokio::test]
    async fn every_401_leaving_the_layer_challenges() {
        let challenges = |parts: &http::response::Parts| {
            let all = parts.headers.get_all(http::header::WWW_AUTHENTICATE);
            all.iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        const FOREIGN: &[(&str, &str)] = &[("content-type", "application/problem+json")];
        const TEXT: &[(&str, &str)] = &[("content-type", "text/plain")];
        let foreign = r#"{"title":"Unauthorized","status":401}"#;
        for (headers, body) in [(&[][..], ""), (TEXT, "who are you?"), (FOREIGN, foreign)] {
            let (parts, _) = mapped(StatusCode::UNAUTHORIZED, headers, body).await;
            assert_eq!(parts.status, StatusCode::UNAUTHORIZED);
            assert_eq!(challenges(&parts), ["Bearer"], "{headers:?}");
        }
        const OWN: &[(&str, &str)] = &[
            ("www-authenticate", "Basic realm=\"admin\""),
            ("www-authenticate", "Negotiate"),
        ];
        let (parts, _) = mapped(StatusCode::UNAUTHORIZED, OWN, "").await;
        assert_eq!(challenges(&parts), ["Basic realm=\"admin\"", "Negotiate"]);
        let (parts, _) = mapped(StatusCode::FORBIDDEN, &[], "").await;
        assert!(challenges(&parts).is_empty());
    }

    const PAGE: &str = "<h1>No such note</h1>";

    /// With `keep_html_error_pages`, a handler's `text/html` page for a client error passes
    /// as it is, its own headers kept, with this layer's `x-request-id` (not the one the
    /// handler copied): unless the id is written outside. Without it, it is a problem.
    #[tokio::test]
    async fn keep_html_error_pages_passes_a_client_errors_html_page_on() {
        const HEADERS: &[(&str, &str)] = &[
            ("content-type", "text/html; charset=utf-8"),
            ("content-language", "de"),
            ("x-request-id", "chosen-by-client"),
        ];
        let kept = || ProblemLayer::new().keep_html_error_pages();
        for status in [400, 403, 404, 409, 410, 422, 451] {
            let status = StatusCode::from_u16(status).unwrap();
            let (parts, body) = mapped_by(kept(), status, HEADERS, PAGE).await;
            assert_eq!(parts.status, status);
            assert_eq!(body, PAGE.as_bytes(), "{status}");
            assert_eq!(parts.headers["content-type"], "text/html; charset=utf-8");
            assert_eq!(parts.headers["content-language"], "de");
            let id = parts.headers["x-request-id"].to_str().unwrap();
            assert!(crate::RequestId::parse(id).is_ok() && id != "chosen-by-client");
            assert!(parts.extensions.get::<crate::Problem>().is_none());

            let (parts, _) = mapped(status, HEADERS, PAGE).await;
            assert!(is_problem(&parts), "{status} without the option");
        }
        let outside = kept().request_id_header_written_outside();
        let (parts, body) = mapped_by(outside, StatusCode::NOT_FOUND, HEADERS, PAGE).await;
        assert_eq!(body, PAGE.as_bytes());
        assert_eq!(parts.headers["x-request-id"], "chosen-by-client");
    }

    /// Still problems with `keep_html_error_pages`: a server error's page (its text may be
    /// internals, and goes), a client error of another type (axum's plain-text rejections
    /// are still described), an HTML look-alike type, and no type at all.
    #[tokio::test]
    async fn keep_html_error_pages_keeps_no_other_error() {
        let kept = || ProblemLayer::new().keep_html_error_pages();
        const HTML: &[(&str, &str)] = &[("content-type", "text/html")];
        for status in [500, 502, 503, 504] {
            let status = StatusCode::from_u16(status).unwrap();
            let (parts, body) = mapped_by(kept(), status, HTML, "<pre>db at 10.0.0.7</pre>").await;
            assert!(is_problem(&parts), "{status}");
            assert!(!String::from_utf8_lossy(&body).contains("10.0.0.7"));
        }
        const OTHERS: &[&[(&str, &str)]] = &[
            &[("content-type", "text/htmlx")],
            &[("content-type", "application/xhtml+xml")],
            &[("content-type", "text/plain; charset=utf-8")],
            &[
                ("content-type", "text/html"),
                ("content-type", "text/plain"),
            ],
            &[],
        ];
        for headers in OTHERS {
            let (parts, body) = mapped_by(kept(), StatusCode::NOT_FOUND, headers, PAGE).await;
            assert!(is_problem(&parts), "{headers:?}");
            assert!(
                !String::from_utf8_lossy(&body).contains("<h1>"),
                "{headers:?}"
            );
        }
        const TEXT: &[(&str, &str)] = &[("content-type", "text/plain; charset=utf-8")];
        let (parts, body) = mapped_by(
            kept(),
            StatusCode::UNPROCESSABLE_ENTITY,
            TEXT,
            "Failed to deserialize the JSON body into the target type: missing field `title` at line 1 column 2",
        )
        .await;
        assert!(is_problem(&parts));
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(
            problem["detail"].as_str().unwrap().contains("title"),
            "{problem}"
        );
    }

    /// A handler's `Problem` or `Error` stays a problem with `keep_html_error_pages`, even
    /// with a `Content-Type` that says HTML: the problem in its extensions decides.
    #[tokio::test]
    async fn keep_html_error_pages_keeps_no_problem_as_a_page() {
        let app = Router::new()
            .route(
                "/problem",
                get(|| async {
                    let mut res = axum::response::IntoResponse::into_response(crate::Problem::new(
                        StatusCode::NOT_FOUND,
                    ));
                    res.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("text/html"),
                    );
                    res
                }),
            )
            .route(
                "/error",
                get(|| async { Err::<(), _>(crate::Error::Forbidden) }),
            )
            .layer(ProblemLayer::new().keep_html_error_pages());
        for (path, status) in [("/problem", 404), ("/error", 403)] {
            let res = app
                .clone()
                .oneshot(http::Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            let (parts, body) = res.into_parts();
            assert_eq!(parts.status, status);
            assert!(is_problem(&parts), "{path}: {:?}", parts.headers);
            let body = body.collect().await.unwrap().to_bytes();
            let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(problem["status"], status, "{path}");
        }
    }

    fn is_problem(parts: &http::response::Parts) -> bool {
        parts.headers[http::header::CONTENT_TYPE] == crate::PROBLEM_JSON
    }

    /// A replaced error's body is gone, and so must be every header that described it:
    /// `Content-Location` (where that body lives: here an internal address) and its digests
    /// (`Content-Digest`, `Repr-Digest`, `Digest`, `Content-MD5`), which a client that checks
    /// them would find wrong for the problem's body. Only some `content-*` headers were
    /// dropped, although the docs say all are.
    #[tokio::test]
    async fn a_replaced_body_takes_the_headers_that_described_it_along() {
        const DESCRIBING: &[(&str, &str)] = &[
            (
                "content-location",
                "http://10.0.3.7:8080/internal/errors/4711",
            ),
            (
                "content-digest",
                "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
            ),
            (
                "repr-digest",
                "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
            ),
            (
                "digest",
                "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",
            ),
            ("content-md5", "Q2hlY2sgSW50ZWdyaXR5IQ=="),
            ("content-language", "de"),
        ];
        for status in [
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::BAD_GATEWAY,
            StatusCode::NOT_FOUND,
        ] {
            let (parts, _) = mapped(status, DESCRIBING, "Fehler in /srv/app/db.rs").await;
            assert_eq!(parts.status, status);
            assert!(is_problem(&parts), "{status}: {:?}", parts.headers);
            for (name, _) in DESCRIBING {
                assert!(
                    !parts.headers.contains_key(*name),
                    "{status}: {name} kept: {:?}",
                    parts.headers
                );
            }
        }
    }

    /// Someone else's problem is passed on re-serialised (with this request's id): its old
    /// bytes' digests and strong validator no longer match and go; what describes its
    /// meaning (`Content-Language`) stays.
    #[tokio::test]
    async fn a_stamped_foreign_problem_drops_what_described_its_old_bytes() {
        const HEADERS: &[(&str, &str)] = &[
            ("content-type", "application/problem+json"),
            (
                "content-digest",
                "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
            ),
            (
                "repr-digest",
                "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
            ),
            (
                "digest",
                "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",
            ),
            ("content-md5", "Q2hlY2sgSW50ZWdyaXR5IQ=="),
            ("etag", "\"v1\""),
            ("content-language", "en"),
        ];
        let (parts, body) = mapped(
            StatusCode::NOT_FOUND,
            HEADERS,
            r#"{"title":"No such order","status":404}"#,
        )
        .await;
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["title"], "No such order", "{body}");
        assert_eq!(
            body["request_id"],
            parts.headers["x-request-id"].to_str().unwrap()
        );
        for name in [
            "content-digest",
            "repr-digest",
            "digest",
            "content-md5",
            "etag",
        ] {
            assert!(
                !parts.headers.contains_key(name),
                "{name} kept: {:?}",
                parts.headers
            );
        }
        assert_eq!(parts.headers["content-language"], "en");
    }

    /// Someone else's problem keeps its members as written: in their order, with numbers
    /// exactly as sent (an id past 2^53 is not rounded through a float), strings with their
    /// escapes; `status` is corrected where it stood, `request_id` replaced where it stood or
    /// added at the end; a repeated member is sent once.
    #[tokio::test]
    async fn a_stamped_foreign_problem_keeps_its_members_as_written() {
        let (parts, body) = mapped(
            StatusCode::CONFLICT,
            &[("content-type", "application/problem+json")],
            r#" {"type":"https://errors.example/version","title":"Version \"7\" is stale","status":400,"order_id":123456789012345678901234,"price":1.10,"request_id":"theirs","zeta":[1, 2],"status":401} "#,
        )
        .await;
        let id = parts.headers["x-request-id"].to_str().unwrap();
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            format!(
                r#"{{"type":"https://errors.example/version","title":"Version \"7\" is stale","status":409,"order_id":123456789012345678901234,"price":1.10,"request_id":"{id}","zeta":[1, 2]}}"#
            )
        );
        let (_, body) = mapped(
            StatusCode::NOT_FOUND,
            &[("content-type", "application/problem+json")],
            r#"{"title":"No such order"}"#,
        )
        .await;
        let body = std::str::from_utf8(&body).unwrap();
        assert!(
            body.starts_with(r#"{"title":"No such order","status":404,"request_id":""#),
            "{body}"
        );
    }

    /// A server error's own headers go with its body, but not the security and protocol
    /// headers a client acts on: `Clear-Site-Data` (a failed logout must still wipe the
    /// browser's copy), `Reporting-Endpoints` / `Report-To` (where the kept CSP's `report-to`
    /// and NEL send their reports), `NEL` (which exists to report errors), the report-only
    /// forms of COOP and COEP, `X-XSS-Protection` and `Alt-Svc`.
    #[tokio::test]
    async fn a_replaced_server_error_keeps_the_headers_clients_act_on() {
        const KEPT: &[(&str, &str)] = &[
            ("clear-site-data", "\"cache\", \"cookies\", \"storage\""),
            ("reporting-endpoints", "csp=\"https://reports.example/csp\""),
            (
                "content-security-policy",
                "default-src 'none'; report-to csp",
            ),
            (
                "report-to",
                r#"{"group":"nel","max_age":86400,"endpoints":[{"url":"https://reports.example/nel"}]}"#,
            ),
            ("nel", r#"{"report_to":"nel","max_age":86400}"#),
            (
                "cross-origin-embedder-policy-report-only",
                "require-corp; report-to=\"csp\"",
            ),
            (
                "cross-origin-opener-policy-report-only",
                "same-origin; report-to=\"csp\"",
            ),
            ("x-xss-protection", "0"),
            ("alt-svc", "h3=\":443\"; ma=86400"),
        ];
        let (parts, _) = mapped(StatusCode::INTERNAL_SERVER_ERROR, KEPT, "oops").await;
        assert!(is_problem(&parts));
        for (name, value) in KEPT {
            assert_eq!(
                parts.headers.get(*name).map(|v| v.to_str().unwrap()),
                Some(*value),
                "{name}: {:?}",
                parts.headers
            );
        }
    }

    /// RFC 9110 §15.5.17: a 416 tells the representation's length in `Content-Range:
    /// bytes */N`, so that the client can ask for a range that exists. It describes no
    /// body, so a problem in place of the body keeps it.
    #[tokio::test]
    async fn a_416_keeps_its_unsatisfied_range() {
        let (parts, _) = mapped(
            StatusCode::RANGE_NOT_SATISFIABLE,
            &[("content-range", "bytes */1234")],
            "",
        )
        .await;
        assert!(is_problem(&parts));
        assert_eq!(parts.headers["content-range"], "bytes */1234");
    }

    /// A 1xx other than 101 cannot end a response (hyper sends a bare 500 in its place,
    /// without the request id), and 600-999 are no HTTP statuses (clients take them for
    /// server errors; a proxied upstream's may carry its internals): both are a 500 problem,
    /// their body and own headers gone. `101 Switching Protocols` passes, as 2xx and 3xx do.
    /// They used to pass through as they were.
    #[tokio::test]
    async fn statuses_no_response_may_end_with_become_500_problems() {
        const OWN: &[(&str, &str)] = &[("x-debug", "db=10.0.0.7"), ("content-type", "text/plain")];
        for code in [100, 102, 103, 199, 600, 700, 999] {
            let status = StatusCode::from_u16(code).unwrap();
            let (parts, body) = mapped(status, OWN, "stack trace at /srv/app/db.rs").await;
            assert_eq!(parts.status, 500, "{code}");
            assert!(is_problem(&parts), "{code}: {:?}", parts.headers);
            assert!(!parts.headers.contains_key("x-debug"), "{code}");
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["status"], 500, "{code}");
            assert_eq!(body["title"], "Internal Server Error", "{code}");
            assert_eq!(
                body["request_id"],
                parts.headers["x-request-id"].to_str().unwrap()
            );
        }
        for code in [101, 200, 299, 302, 399] {
            let status = StatusCode::from_u16(code).unwrap();
            let (parts, body) = mapped(status, OWN, "as it is").await;
            assert_eq!(parts.status, status);
            assert_eq!(parts.headers["x-debug"], "db=10.0.0.7", "{code}");
            assert_eq!(body, b"as it is", "{code}");
        }
    }

    /// A problem carrying another request id (read from an upstream, say) is answered under
    /// this request's, unless the response's `x-request-id` names it (a layer inside gave
    /// the request that id). It used to keep any id it had.
    #[tokio::test]
    async fn a_problem_under_another_id_gets_this_requests_unless_a_layer_inside_gave_it() {
        let theirs = crate::RequestId::parse("upstream-7").unwrap();
        for header in [None, Some("upstream-7")] {
            let app = Router::new()
                .route(
                    "/",
                    get(move || async move {
                        let mut res = axum::response::IntoResponse::into_response(
                            crate::Problem::new(StatusCode::CONFLICT).with_request_id(theirs),
                        );
                        if let Some(id) = header {
                            res.headers_mut()
                                .insert("x-request-id", http::HeaderValue::from_static(id));
                        }
                        res
                    }),
                )
                .layer(ProblemLayer::new());
            let res = app
                .oneshot(http::Request::get("/").body(Body::empty()).unwrap())
                .await
                .unwrap();
            let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
            let body = res.into_body().collect().await.unwrap().to_bytes();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["request_id"], id.as_str(), "{header:?}");
            assert_eq!(id == "upstream-7", header.is_some(), "{header:?}: {id}");
        }
    }

    /// A body of empty frames (data, or trailers) without end, counting those polled. With
    /// `yields`, every other poll is pending (and wakes itself), so a reader that never
    /// stops hangs instead of spinning and a timeout can end it. Without, it never waits,
    /// and ends after a million frames so that such a reader stops too.
    struct EmptyFrames {
        polled: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        trailers: bool,
        yields: bool,
        waited: bool,
    }

    impl http_body::Body for EmptyFrames {
        type Data = bytes::Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
            use std::task::Poll;
            if self.yields && !self.waited {
                self.waited = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.waited = false;
            let n = self
                .polled
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if !self.yields && n >= 1_000_000 {
                return Poll::Ready(None);
            }
            Poll::Ready(Some(Ok(if self.trailers {
                http_body::Frame::trailers(http::HeaderMap::new())
            } else {
                http_body::Frame::data(bytes::Bytes::new())
            })))
        }
        fn size_hint(&self) -> http_body::SizeHint {
            let mut hint = http_body::SizeHint::new();
            hint.set_upper(10);
            hint
        }
    }

    /// An error body read for the problem (a text rejection, someone else's problem) that
    /// sends empty frames or trailers without end is read only up to a number of frames,
    /// then answered as an unreadable one is: a problem of its status with a generic
    /// detail. Such a body kept the read going forever (spinning, when it never waited).
    #[tokio::test]
    async fn a_body_of_endless_empty_frames_is_not_read_forever() {
        use tower::Layer;
        for content_type in ["text/plain", "application/problem+json"] {
            for trailers in [false, true] {
                for yields in [true, false] {
                    let case = format!("{content_type}, trailers {trailers}, yields {yields}");
                    let polled = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
                    let counter = polled.clone();
                    let service = tower::service_fn(move |_: http::Request<Body>| {
                        let body = EmptyFrames {
                            polled: counter.clone(),
                            trailers,
                            yields,
                            waited: false,
                        };
                        let res = http::Response::builder()
                            .status(StatusCode::BAD_REQUEST)
                            .header("content-type", content_type)
                            .body(body)
                            .unwrap();
                        std::future::ready(Ok::<_, std::convert::Infallible>(res))
                    });
                    let req = http::Request::get("/").body(Body::empty()).unwrap();
                    let answer = tokio::time::timeout(
                        std::time::Duration::from_secs(5),
                        ProblemLayer::new().layer(service).oneshot(req),
                    )
                    .await;
                    let polled = polled.load(std::sync::atomic::Ordering::Relaxed);
                    let res = answer
                        .unwrap_or_else(|_| panic!("{case}: still reading after {polled} frames"))
                        .unwrap();
                    assert!(
                        polled <= crate::MAX_EMPTY_FRAMES + 1,
                        "{case}: {polled} frames read"
                    );
                    let (parts, body) = res.into_parts();
                    assert_eq!(parts.status, StatusCode::BAD_REQUEST, "{case}");
                    assert!(is_problem(&parts), "{case}: {:?}", parts.headers);
                    let body = body.collect().await.unwrap().to_bytes();
                    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    assert_eq!(problem["status"], 400, "{case}: {problem}");
                }
            }
        }
    }

    /// A body sent one byte a frame.
    struct OneByteFrames(bytes::Bytes);

    impl http_body::Body for OneByteFrames {
        type Data = bytes::Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
            if self.0.is_empty() {
                return std::task::Poll::Ready(None);
            }
            let byte = self.0.split_to(1);
            std::task::Poll::Ready(Some(Ok(http_body::Frame::data(byte))))
        }
    }

    /// Someone else's problem in more than `MAX_EMPTY_FRAMES` frames, each with a byte
    /// (under the byte cap): passed on whole, its `type` and `detail` intact. Only frames
    /// without bytes are capped; counting every frame would replace it with a generic one.
    #[tokio::test]
    async fn a_problem_in_many_one_byte_frames_is_passed_on_whole() {
        use tower::Layer;
        let detail = "Your balance is 30, but that costs 50. ".repeat(60);
        let theirs = serde_json::json!({
            "type": "https://example.com/probs/out-of-credit",
            "title": "You do not have enough credit.",
            "detail": detail,
            "status": 403,
        });
        let bytes = bytes::Bytes::from(serde_json::to_vec(&theirs).unwrap());
        assert!(bytes.len() > crate::MAX_EMPTY_FRAMES && bytes.len() < super::MAX_FOREIGN_PROBLEM);
        let service = tower::service_fn(move |_: http::Request<Body>| {
            let res = http::Response::builder()
                .status(StatusCode::FORBIDDEN)
                .header("content-type", "application/problem+json")
                .body(OneByteFrames(bytes.clone()))
                .unwrap();
            std::future::ready(Ok::<_, std::convert::Infallible>(res))
        });
        let req = http::Request::get("/").body(Body::empty()).unwrap();
        let res = ProblemLayer::new()
            .layer(service)
            .oneshot(req)
            .await
            .unwrap();
        let (parts, body) = res.into_parts();
        assert_eq!(parts.status, StatusCode::FORBIDDEN);
        assert!(is_problem(&parts), "{:?}", parts.headers);
        let body = body.collect().await.unwrap().to_bytes();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["type"], theirs["type"], "{problem}");
        assert_eq!(problem["detail"], theirs["detail"], "{problem}");
        assert_eq!(problem["title"], theirs["title"], "{problem}");
        assert_eq!(
            problem["request_id"].as_str(),
            parts.headers["x-request-id"].to_str().ok()
        );
    }

    /// A `panic_any` payload whose own `Drop` panics.
    struct DropPanics;

    impl Drop for DropPanics {
        fn drop(&mut self) {
            panic!("the payload's drop panicked");
        }
    }

    /// A text/plain rejection whose body panics with [`DropPanics`] when read.
    struct PanickingText;

    impl http_body::Body for PanickingText {
        type Data = bytes::Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
            std::panic::panic_any(DropPanics)
        }
        fn size_hint(&self) -> http_body::SizeHint {
            http_body::SizeHint::with_exact(10)
        }
    }

    /// A panic whose payload panics again when dropped, in the service's `call`, its future,
    /// or the rejection body read for the problem: still the 500 problem (the second panic
    /// unwound out of the layer, and the connection was cut without an answer).
    #[tokio::test]
    async fn a_panic_payload_whose_drop_panics_is_still_a_500() {
        use tower::Layer;
        let in_call = tower::service_fn(|_: http::Request<Body>| -> std::future::Ready<
            Result<http::Response<Body>, std::convert::Infallible>,
        > { std::panic::panic_any(DropPanics) });
        let in_future = tower::service_fn(|_: http::Request<Body>| async {
            if true {
                std::panic::panic_any(DropPanics);
            }
            Ok::<_, std::convert::Infallible>(http::Response::new(Body::empty()))
        });
        let in_body = tower::service_fn(|_: http::Request<Body>| async {
            let res = http::Response::builder()
                .status(400)
                .header("content-type", "text/plain")
                .body(Body::new(PanickingText))
                .unwrap();
            Ok::<_, std::convert::Infallible>(res)
        });
        let req = || http::Request::get("/").body(Body::empty()).unwrap();
        let answers = [
            ProblemLayer::new().layer(in_call).oneshot(req()).await,
            ProblemLayer::new().layer(in_future).oneshot(req()).await,
            ProblemLayer::new().layer(in_body).oneshot(req()).await,
        ];
        for (i, res) in answers.into_iter().enumerate() {
            let res = res.unwrap();
            assert_eq!(res.status(), 500, "{i}");
            assert!(
                res.extensions().get::<crate::CaughtPanic>().is_some(),
                "{i}"
            );
        }
    }
}
