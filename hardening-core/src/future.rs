//! The fused response future: timeout, then every response-side step once.

use std::future::Future;
use std::net::IpAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hardening_errors::{
    CaughtPanic, PrincipalId, Problem, ProblemBody, RequestId, SecurityEventReported,
    SecurityEventsLogged, mark_reported, reject, reported_at_its_status,
};
use http::header::{CONTENT_LENGTH, VARY};
use http::{HeaderValue, Response, StatusCode};
use http_body::Body as HttpBody;
use pin_project_lite::pin_project;
use tokio::time::Sleep;

use crate::access_log::{AccessRecord, StreamedLog};
use crate::hardening::Policy;
use crate::panic_body::PanicReportingBody;
use crate::security_event::SecurityEvent;

pin_project! {
    /// The response future of [`HardeningService`](crate::HardeningService).
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
        // Created on the first `Pending` only, so fast responses never touch the timer; boxed
        // so that it does not make every response future larger (it is moved a few times).
        // Counted from the first `Pending` (the policy's timeout, when the state is timed):
        // the synchronous part of the first poll is microseconds, and fast responses then
        // never read the clock for it.
        sleep: Option<Pin<Box<Sleep>>>,
        post: Post,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        // The inner service's own future: successes go straight to the response side.
        Inner { #[pin] future: F },
        Early {
            response: Option<Response<ProblemBody<B>>>,
            event: Option<SecurityEvent>,
        },
        // Answered by the layer after some async work of its own: a readiness probe, or the
        // problem for an inner error response (which may read a short rejection text first).
        Pending {
            future: Pin<Box<dyn Future<Output = Response<ProblemBody<B>>> + Send>>,
            event: Option<SecurityEvent>,
            // Under the request timeout (the problem mapping), or not (a readiness probe,
            // whose checks have timeouts of their own).
            timed: bool,
        },
    }
}

impl<F, B> std::fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("post", &self.post)
            .finish_non_exhaustive()
    }
}

/// What the response side needs from the request side.
#[derive(Debug)]
pub(crate) struct Post {
    /// The `RateLimit` field for the policies that counted the request (none for a request
    /// answered before the limiter, or that no policy counted).
    #[cfg(feature = "ratelimit")]
    pub(crate) rate_limit_header: Option<HeaderValue>,
    /// The `RateLimit-Policy` field for those same policies when some of the limiter's did
    /// not count the request (boxed: rare, and kept out of the size of every response
    /// future, which is moved a few times). A `RateLimit` field and none here: every policy
    /// counted it, and the field is the limiter's own, made once.
    #[cfg(feature = "ratelimit")]
    pub(crate) rate_limit_some_policies: Option<Box<HeaderValue>>,
    /// The concurrency slot, handed to the response body so it lives as long as the body.
    #[cfg(feature = "ratelimit")]
    pub(crate) permit: Option<hardening_ratelimit::Permit>,
    #[cfg(feature = "headers")]
    pub(crate) header_facts: Option<hardening_headers::RequestFacts>,
    /// The request's method allows a `Content-Length` from the body's size (not `HEAD`,
    /// whose body may be left empty; not `CONNECT`).
    pub(crate) length_by_method: bool,
    pub(crate) policy: Arc<Policy>,
    pub(crate) request_id: RequestId,
    pub(crate) client_ip: Option<IpAddr>,
    pub(crate) cors_origin: Option<HeaderValue>,
    /// What was seen of a body that may still be arriving (none for an empty one, nor for
    /// one of known size within the limit when there is no timeout).
    pub(crate) body_watch: Option<Arc<crate::body_limit::BodyWatch>>,
    /// Boxed: it is large, and `None` whenever the access log is filtered out.
    pub(crate) record: Option<Box<AccessRecord>>,
    /// The request's span; none when no subscriber could want one (then there is nothing
    /// to enter around each poll, nor to drop).
    pub(crate) span: Option<tracing::Span>,
}

impl<F, B> ResponseFuture<F, B> {
    pub(crate) fn inner(future: F, post: Post) -> Self {
        Self {
            state: State::Inner { future },
            sleep: None,
            post,
        }
    }

    /// A request rejected before the inner service.
    pub(crate) fn early(
        response: Response<ProblemBody<B>>,
        event: SecurityEvent,
        post: Post,
    ) -> Self {
        Self {
            state: State::Early {
                response: Some(response),
                event: Some(event),
            },
            sleep: None,
            post,
        }
    }

    /// A readiness probe, answered after its checks: exempt from the rate limits (no
    /// `RateLimit` field: the limiter never counted it).
    #[cold]
    pub(crate) fn readiness(
        future: Pin<Box<dyn Future<Output = Response<ProblemBody<B>>> + Send>>,
        post: Post,
    ) -> Self {
        Self {
            state: State::Pending {
                future,
                event: None,
                timed: false,
            },
            sleep: None,
            post,
        }
    }

    /// The inner service panicked in `call`.
    #[cold]
    pub(crate) fn panicked(payload: Box<dyn std::any::Any + Send>, post: Post) -> Self {
        let response = panic_response(payload, &post);
        Self::early(response, SecurityEvent::Panicked, post)
    }

    /// A request answered before the inner service with no event left to emit: not a
    /// rejection (a CORS preflight, a liveness probe), or one whose event is already reported
    /// (a 429).
    #[cold]
    pub(crate) fn answered(response: Response<ProblemBody<B>>, post: Post) -> Self {
        Self {
            state: State::Early {
                response: Some(response),
                event: None,
            },
            sleep: None,
            post,
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Output = Result<Response<axum::body::Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let (response, event) = loop {
            let timed = match this.state.as_mut().project() {
                StateProj::Early { response, event } => {
                    let response = response
                        .take()
                        .expect("ResponseFuture polled after completion");
                    break (response, event.take());
                }
                StateProj::Pending {
                    future,
                    event,
                    timed,
                } => {
                    // In the request's span: the mapping's logs (a server error without a
                    // problem, an internal error's chain, a panic it caught) are about it.
                    let polled = {
                        let _entered = this.post.span.as_ref().map(tracing::Span::enter);
                        catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx)))
                    };
                    match polled {
                        // A panic the problem mapping caught itself (in the rejection body it
                        // was reading) replaces the event the status stood for.
                        Ok(Poll::Ready(response))
                            if response.extensions().get::<CaughtPanic>().is_some()
                                && !reported_at_its_status(&response) =>
                        {
                            break (response, Some(SecurityEvent::Panicked));
                        }
                        Ok(Poll::Ready(response)) => break (response, event.take()),
                        Ok(Poll::Pending) => *timed,
                        // A readiness check, or the inner error body being read, panicked.
                        Err(payload) => {
                            let response = panic_response(payload, this.post);
                            break (response, Some(SecurityEvent::Panicked));
                        }
                    }
                }
                StateProj::Inner { future } => {
                    let mut polled = {
                        let _entered = this.post.span.as_ref().map(tracing::Span::enter);
                        catch_unwind(AssertUnwindSafe(|| future.poll(cx)))
                    };
                    // Most responses: the service's own 2xx or 3xx (one comparison), its
                    // body passed on as it is (not wrapped for the problem path first),
                    // finished where the inner future's poll left it (each move of a
                    // response is about sixteen instructions). A rejection a layer inside
                    // logged and another turned into a success (a 429 into a redirect) is
                    // still counted. Errors, a 101 and the statuses no response may end
                    // with go to the mapping.
                    let success = match &mut polled {
                        Ok(Poll::Ready(Ok(response)))
                            if (200..400).contains(&response.status().as_u16()) =>
                        {
                            if !response.extensions().is_empty() {
                                count_reported_inside(response);
                            }
                            this.post.finish(response, None);
                            true
                        }
                        _ => false,
                    };
                    match polled {
                        Ok(Poll::Ready(Ok(response))) if success => {
                            return Poll::Ready(Ok(this.post.success(response)));
                        }
                        Ok(Poll::Ready(Ok(response))) => {
                            let state = match this.post.cut_off_by_body_limit(&response) {
                                Some(limit) => {
                                    body_too_large(limit, response, this.post.request_id)
                                }
                                None if this.post.policy.keep_html_error_pages
                                    && hardening_errors::is_html_error_page(&response) =>
                                {
                                    return Poll::Ready(Ok(this.post.html_error_page(response)));
                                }
                                None => to_problem(response, this.post),
                            };
                            this.state.set(state);
                            continue;
                        }
                        Ok(Poll::Ready(Err(e))) => {
                            this.post.log_unanswered(crate::access_log::SERVICE_ERROR);
                            return Poll::Ready(Err(e));
                        }
                        Ok(Poll::Pending) => true,
                        Err(payload) => {
                            let response = panic_response(payload, this.post);
                            break (response, Some(SecurityEvent::Panicked));
                        }
                    }
                }
            };
            // Pending. The timer starts at the first `Pending`: fast responses never touch it.
            if !timed {
                return Poll::Pending;
            }
            if let (None, Some(timeout)) = (&this.sleep, this.post.policy.timeout) {
                *this.sleep = Some(Box::pin(tokio::time::sleep(timeout)));
            }
            match this.sleep.as_mut().map(|s| s.as_mut().poll(cx)) {
                Some(Poll::Ready(())) => {
                    break (timed_out(this.post), Some(SecurityEvent::TimedOut));
                }
                _ => return Poll::Pending,
            }
        };
        let mut response = response;
        this.post.finish(&mut response, event);
        this.post.log_access(&response);
        #[cfg(feature = "ratelimit")]
        let response = match this.post.permit.take() {
            Some(permit) => response.map(|body| body.with_guard(permit)),
            None => response,
        };
        Poll::Ready(Ok(response.map(ProblemBody::into_axum_body)))
    }
}

/// The answer to a request past the timeout: 408 if its body was still arriving (the client
/// is slow), with `Connection: close` as RFC 9110 §15.5.9 asks (the rest of the body will
/// not be read; HTTP/2 servers drop the header), else 503 (the service is slow).
#[cold]
#[inline(never)]
fn timed_out<B>(post: &Post) -> Response<ProblemBody<B>> {
    if post
        .body_watch
        .as_ref()
        .is_some_and(|w| w.awaiting_client())
    {
        let problem = Problem::new(StatusCode::REQUEST_TIMEOUT)
            .with_detail("the request body arrived too slowly");
        let mut response = reject(problem, post.request_id);
        response
            .headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    let problem = Problem::new(StatusCode::SERVICE_UNAVAILABLE)
        .with_detail("the request took too long to process");
    reject(problem, post.request_id)
}

/// The 500 problem for a caught panic ([`hardening_errors::panic_response`], its log in the
/// request's span), its payload then dropped without letting a panic of its own `Drop`
/// unwind out of the layer.
#[cold]
#[inline(never)]
fn panic_response<B>(
    payload: Box<dyn std::any::Any + Send>,
    post: &Post,
) -> Response<ProblemBody<B>> {
    let response = post
        .span()
        .in_scope(|| hardening_errors::panic_response(&*payload, post.request_id));
    hardening_errors::drop_panic_payload(payload);
    response
}

/// Counts, once each, the events a layer inside logged on this response but left uncounted:
/// rejections, and the others (shadow-mode reports).
#[cold]
#[inline(never)]
fn count_reported_inside<B>(response: &mut Response<B>) {
    if let Some(mark) = response.extensions_mut().get_mut::<SecurityEventReported>() {
        for name in mark.take_uncounted() {
            crate::security_event::count_named(name);
        }
    }
    if let Some(logged) = response.extensions_mut().get_mut::<SecurityEventsLogged>() {
        for name in logged.take_uncounted() {
            crate::security_event::count_named(name);
        }
    }
}

/// The 413 for a request whose streamed body the limit cut off, in place of the error the
/// service answered (a layer inside may have rewrapped the limit's error, so that the
/// handler could only say the body "could not be read"; a 413 may not say the limit).
/// The events a layer inside logged on the replaced response are counted, and its principal
/// kept for the access log. A 413 a layer inside reported is not reported again: its mark
/// moves to the new response.
#[cold]
#[inline(never)]
fn body_too_large<F, B, Inner>(
    limit: usize,
    mut replaced: Response<Inner>,
    request_id: RequestId,
) -> State<F, B> {
    count_reported_inside(&mut replaced);
    let mut response = reject(crate::body_limit::too_large(limit), request_id);
    if let Some(principal) = replaced.extensions_mut().remove::<PrincipalId>() {
        response.extensions_mut().insert(principal);
    }
    let event = if replaced.status() == StatusCode::PAYLOAD_TOO_LARGE
        && reported_at_its_status(&replaced)
        && let Some(mark) = replaced.extensions_mut().remove::<SecurityEventReported>()
    {
        response.extensions_mut().insert(mark);
        None
    } else {
        Some(SecurityEvent::BodyTooLarge)
    };
    State::Early {
        response: Some(response),
        event,
    }
}

/// The security event an inner error response stands for by its status, unless a layer
/// inside reported it at this status already. Events a layer inside logged (any event, such
/// as a standalone headers layer's `bad_host` 400) are counted here, once; logged again only
/// if the status changed since (a 429 turned into a 403 on its way out). A problem that
/// names its own event (`Problem::with_security_event`: a handler's refusal) is reported
/// under that name here, at once, whatever its status.
fn event_to_report<B>(response: &mut Response<B>, post: &Post) -> Option<SecurityEvent> {
    let panicked = response.extensions().get::<CaughtPanic>().is_some();
    let event = SecurityEvent::from_response(response.status(), panicked);
    count_reported_inside(response);
    if reported_at_its_status(response) {
        return None;
    }
    if !panicked && let Some(name) = hardening_errors::named_security_event(response) {
        SecurityEvent::emit_named(name, response, post.span(), post.request_id, post.client_ip);
        // Logged and counted: a layer further out does neither again.
        mark_reported(response, name, true);
        return None;
    }
    event
}

/// The state that turns an inner error response into a problem (`hardening-errors`'
/// mapping, which may first read a short rejection text), with the security event its
/// status stands for, unless a layer inside reported it at this status already. Events a
/// layer inside logged are counted here (once each), not logged again. Out of line: errors
/// are the rare path. The mapping passes a `101 Switching Protocols` on as it is, and makes
/// a 500 of the statuses no response may end with (another 1xx, 600-999).
#[cold]
#[inline(never)]
fn to_problem<F, B>(mut response: Response<B>, post: &Post) -> State<F, B>
where
    B: HttpBody<Data = Bytes> + Send + 'static,
{
    let request_id = post.request_id;
    let event = event_to_report(&mut response, post);
    // A problem made under another id (read from an upstream that uses this crate, say) is
    // answered under this request's, which `x-request-id`, the event and the access log name.
    if response
        .extensions()
        .get::<Problem>()
        .and_then(Problem::request_id)
        .is_some_and(|id| id != request_id)
        && let Some(problem) = response.extensions_mut().remove::<Problem>()
    {
        response
            .extensions_mut()
            .insert(problem.with_request_id(request_id));
    }
    let mapping = hardening_errors::ResponseFuture::for_response(response, request_id);
    State::Pending {
        future: Box::pin(async move {
            match mapping.await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }),
        event,
        timed: true,
    }
}

impl Post {
    /// The request's span, or a disabled one when it has none (for the events that take one).
    pub(crate) fn span(&self) -> &tracing::Span {
        static NONE: tracing::Span = tracing::Span::none();
        self.span.as_ref().unwrap_or(&NONE)
    }

    /// The body limit (its route's), if it cut this request's body off and the service
    /// answered an error for it (a 413 that may not say the limit, a client error it could
    /// only call a bad body, or a server error, such as a 500 for the unreadable body or a
    /// 502 from an upstream it streamed the body to), unless a panic was caught there
    /// (reported as such).
    fn cut_off_by_body_limit<B>(&self, response: &Response<B>) -> Option<usize> {
        let watch = self.body_watch.as_ref()?;
        (watch.limit_hit() && response.extensions().get::<CaughtPanic>().is_none())
            .then_some(watch.limit())
    }

    /// The inner service's successful response as the layer's. A body of unknown size (a
    /// stream, whose code runs after the headers are out) has its panics reported.
    fn success<B>(&mut self, response: Response<B>) -> Response<axum::body::Body>
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        if response.body().size_hint().exact().is_none() {
            return self.streamed(response);
        }
        self.log_access(&response);
        self.with_permit(response)
    }

    /// [`success`](Self::success) for a streamed body: out of line, as most bodies know
    /// their size. Its access-log event is written when the body ends, unless no body will
    /// be sent (`HEAD`, `204`, `304`, a body already at its end: see [`StreamedLog::new`]).
    #[cold]
    #[inline(never)]
    fn streamed<B>(&mut self, response: Response<B>) -> Response<axum::body::Body>
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let log = self.record.take().and_then(|record| {
            let policy = Arc::clone(&self.policy);
            StreamedLog::new(policy, record, &response, self.request_id, self.client_ip)
                .map_err(|record| self.write_access(&record, &response))
                .ok()
        });
        let (request_id, client_ip) = (self.request_id, self.client_ip);
        // The request's span goes with the body, for the event of a panic in it.
        let span = self.span.take().unwrap_or_else(tracing::Span::none);
        self.with_permit(
            response.map(|body| PanicReportingBody::new(body, request_id, client_ip, span, log)),
        )
    }

    /// The response with its body kept as it is, or holding the concurrency slot when there
    /// is one.
    fn with_permit<B>(&mut self, response: Response<B>) -> Response<axum::body::Body>
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        #[cfg(feature = "ratelimit")]
        if let Some(permit) = self.permit.take() {
            return response
                .map(|body| ProblemBody::inner(body).with_guard(permit).into_axum_body());
        }
        response.map(axum::body::Body::new)
    }

    /// A handler's own HTML page for a client error, passed on under
    /// `keep_html_error_pages` as a success is (a streamed one logged when it ends), with
    /// the security event its status stands for. Out of line: errors are the rare path.
    #[cold]
    #[inline(never)]
    fn html_error_page<B>(&mut self, mut response: Response<B>) -> Response<axum::body::Body>
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let event = event_to_report(&mut response, self);
        // A kept 401 page still names a challenge, as a 401 problem does.
        hardening_errors::challenge_a_401(response.status(), response.headers_mut());
        self.finish(&mut response, event);
        self.success(response)
    }

    /// The response side, once: security, CORS, request-id and rate-limit headers, and the
    /// security event ([`log_access`](Self::log_access) writes the access-log event after).
    fn finish<B: HttpBody>(&mut self, response: &mut Response<B>, event: Option<SecurityEvent>) {
        // Security headers first: `apply` rebuilds the map from its precomputed template, so
        // what is added after it is written once instead of written and then moved. The
        // request id and rate-limit headers have slots in that template.
        #[cfg(feature = "headers")]
        let slotted = if response
            .headers()
            .keys()
            .any(|name| name == http::header::SET_COOKIE)
        {
            // The cookie rules may drop one and warn: in the request's span, as the other
            // logs about it are (entered only here; a walk of the names, not a hashed
            // lookup, finds the cookies: 117 instructions a request against 29).
            let span = self.span.take();
            let slotted = {
                let _entered = span.as_ref().map(tracing::Span::enter);
                self.security_headers(response)
            };
            self.span = span;
            slotted
        } else {
            self.security_headers(response)
        };
        #[cfg(not(feature = "headers"))]
        let slotted = false;
        let policy = &*self.policy;
        if let Some(origin) = &self.cors_origin {
            policy.cors.write_allowed(origin, response.headers_mut());
        }
        if policy.cors.varies() && !crate::cors::vary_names_origin(response.headers()) {
            response
                .headers_mut()
                .append(VARY, HeaderValue::from_static("origin"));
        }
        if !slotted {
            response.headers_mut().insert(
                crate::service::X_REQUEST_ID.clone(),
                self.request_id.to_header_value(),
            );
            // The service's own `Content-Length`, if it disagrees with the body (with the
            // security headers, their `Content-Length` slot does this).
            if response.headers().contains_key(CONTENT_LENGTH)
                && let Some(length) =
                    hardening_errors::content_length(self.length_by_method, response)
            {
                response.headers_mut().insert(CONTENT_LENGTH, length);
            }
            #[cfg(feature = "ratelimit")]
            if let Some(limiter) = &policy.rate_limiter {
                // The policies that counted the request: some, all (the limiter's own field),
                // or none.
                let ratelimit = self.rate_limit_header.take();
                let some_policies = self.rate_limit_some_policies.take();
                let counted = match (&some_policies, &ratelimit) {
                    (Some(some), _) => Some(&**some),
                    (None, Some(_)) => limiter.policy_header(),
                    (None, None) => None,
                };
                policy
                    .rate_limit_fields
                    .set(response.headers_mut(), ratelimit, counted);
            }
        }
        if let Some(event) = event {
            self.report(response, event);
        }
    }

    /// Logs and counts the security event `response` answers, naming the policies of its
    /// problem, and marks it reported. Out of line: rejections are the rare path.
    #[cold]
    #[inline(never)]
    fn report<B>(&self, response: &mut Response<B>, event: SecurityEvent) {
        event.emit_for(response, self.span(), self.request_id, self.client_ip);
        // Logged and counted: a layer further out (`ProblemLayer`, another `Hardening`)
        // does neither again.
        mark_reported(response, event.as_str(), true);
    }

    /// The security headers (cookie rules included) on `response`; whether the request id
    /// and rate-limit headers went into their slots with them.
    #[cfg(feature = "headers")]
    fn security_headers<B: HttpBody>(&mut self, response: &mut Response<B>) -> bool {
        let policy = &*self.policy;
        if let Some(facts) = self.header_facts {
            let facts = &facts.for_response(response);
            if let Some(set) = policy.response_headers() {
                #[cfg(feature = "ratelimit")]
                let ratelimit = self.rate_limit_header.take();
                // The policies that counted the request: some, all (the limiter's own field),
                // or none.
                #[cfg(feature = "ratelimit")]
                let ratelimit_policy = match (&ratelimit, &policy.rate_limiter) {
                    (Some(_), Some(limiter)) => match self.rate_limit_some_policies.take() {
                        Some(some) => Some(*some),
                        None => limiter.policy_header().cloned(),
                    },
                    _ => None,
                };
                #[cfg(not(feature = "ratelimit"))]
                let (ratelimit, ratelimit_policy) = (None, None);
                let length = hardening_errors::content_length(self.length_by_method, response);
                #[cfg(feature = "ratelimit")]
                let ours = [ratelimit.is_some(), ratelimit_policy.is_some()];
                let values = [
                    Some(self.request_id.to_header_value()),
                    length,
                    ratelimit,
                    ratelimit_policy,
                ];
                // The rate-limit slots are the lists: joined to those of limits further in,
                // both fields together (an entry's name ties one to the other).
                #[cfg(feature = "ratelimit")]
                if set.apply_with_lists_apart(facts, response.headers_mut(), values) {
                    policy
                        .rate_limit_fields
                        .rejoin(response.headers_mut(), ours);
                }
                #[cfg(not(feature = "ratelimit"))]
                set.apply_with(facts, response.headers_mut(), values);
                return true;
            } else if let Some(set) = &policy.headers {
                set.apply(facts, response.headers_mut());
            }
        }
        false
    }

    /// The access-log event for this response, when the access log is on and has not
    /// written it.
    fn log_access<B>(&mut self, response: &Response<B>) {
        if let Some(record) = self.record.take() {
            self.write_access(&record, response);
        }
    }

    /// Logs the request, unless already logged, as ended without a response: `error_type`
    /// says how ([`CANCELLED`](crate::access_log::CANCELLED) when dropped,
    /// [`SERVICE_ERROR`](crate::access_log::SERVICE_ERROR) when its service failed; that
    /// error's text is not logged, as it may hold secrets).
    #[cold]
    fn log_unanswered(&mut self, error_type: &'static str) {
        if let Some(record) = self.record.take() {
            self.policy.access_log.emit(
                &record,
                None,
                Some(error_type),
                self.request_id,
                self.client_ip,
                None,
            );
        }
    }

    /// Writes `record`'s access-log event with this response.
    fn write_access<B>(&self, record: &AccessRecord, response: &Response<B>) {
        self.policy.access_log.emit(
            record,
            Some(response.status()),
            None,
            self.request_id,
            self.client_ip,
            response.extensions().get::<PrincipalId>(),
        );
    }
}

impl Drop for Post {
    /// A request dropped before its response (the client went away, a layer further out
    /// gave up on it, the server's drain deadline passed) is still logged, without a status
    /// (nginx logs it as 499).
    fn drop(&mut self) {
        self.log_unanswered(crate::access_log::CANCELLED);
    }
}
