//! The fused service: every request-side step in one `call`.

use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use hardening_errors::{Problem, ProblemBody, RequestContext, RequestId, reject};
use http::Method;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body::Body as HttpBody;
use tower::Service;

use crate::client_ip::{KnownClientIp, SaysHttps, Source};
use crate::cors::CorsDecision;
use crate::future::{Post, ResponseFuture};
use crate::hardening::Policy;
use crate::health::{Health, Probe};
use crate::host::AllowedHosts;
use crate::security_event::SecurityEvent;

pub(crate) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The service [`Hardening`](crate::Hardening) makes.
#[derive(Debug, Clone)]
pub struct HardeningService<S> {
    inner: S,
    policy: Arc<Policy>,
}

impl<S> HardeningService<S> {
    pub(crate) fn new(inner: S, policy: Arc<Policy>) -> Self {
        Self { inner, policy }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for HardeningService<S>
where
    S: Service<Request<Body>, Response = Response<ResBody>>,
    ReqBody: HttpBody<Data = Bytes> + Send + 'static,
    ReqBody::Error: Into<axum::BoxError>,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Response = Response<axum::body::Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let policy = &*self.policy;
        let (mut parts, body) = req.into_parts();

        // 1. Client IP: the socket peer, or what it reports if it is a trusted proxy.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        if peer.is_none() {
            crate::hardening::warn_no_peer(&policy.warned_no_peer);
        }
        let (client_ip, source, says_https) =
            match peer.map(|p| policy.trusted_proxies.resolve(p, &parts.headers)) {
                Some((ip, source, says)) => (Some(ip), source, says),
                None => (None, Source::Peer, SaysHttps::Nobody),
            };
        let from_trusted_proxy = source.via_trusted_proxy();
        #[cfg(not(feature = "headers"))]
        let _ = says_https;
        // 2. Request id: the one a layer further out in this process gave the request (a
        // `Hardening` around a router that nests this one), else a well-formed incoming one
        // from a trusted proxy (the only one: with several, the client may have sent one of
        // them), else a new one.
        let outer = parts
            .extensions
            .get::<RequestContext>()
            .map(|c| c.request_id);
        let request_id = match outer {
            Some(outer) => outer,
            None => from_trusted_proxy
                .then(|| only_value(&parts.headers, &X_REQUEST_ID))
                .flatten()
                .and_then(|v| RequestId::parse(v.as_bytes()).ok())
                .unwrap_or_else(RequestId::generate),
        };

        // All in one extension entry (read by the `RequestId`, `ClientIp` and `KnownClientIp`
        // extractors, the readiness probe's detail check, and the rate-limit layers further
        // in).
        let mut context = RequestContext::new(request_id, client_ip);
        context.client_hidden_by_proxy = !source.is_known();
        parts.extensions.insert(context);

        // None when no subscriber could want an INFO span: then there is no span to enter
        // around the inner service and each poll, nor to drop with the response future (a
        // disabled `Span` still checks for one each time). `info_span!` would start with the
        // same check and, with no subscriber at all, then hand its fields to the `log` crate
        // (tracing's `log` feature, which axum turns on) when the span is made, entered and
        // left; the access log is not sent to `log` either. Past this check the macro
        // filters as usual (by target, span name or fields).
        // No new one inside another `Hardening`, whose span and access-log event cover the
        // request (one of each per request, whichever layer answers): its span, the current
        // one, is this one's too, for the events this one emits once its response is out (a
        // streamed body's panic).
        let span = match outer {
            None if tracing::Level::INFO <= tracing::level_filters::STATIC_MAX_LEVEL
                && tracing::Level::INFO <= tracing::level_filters::LevelFilter::current() =>
            {
                Some(request_span(request_id))
            }
            None => None,
            Some(_) => Some(outer_span()),
        };
        // Security-header facts from one read of the headers: HTTPS as seen directly, as a
        // trusted proxy reports it, or always (behind TLS); credentials; this request's CSP
        // nonce, also put in the extensions. The same read notes whether the request carries
        // `x-request-id` (given the chosen id below): most requests do not, and then pay no
        // lookup for it. Without the security headers, it is looked up.
        #[cfg(feature = "headers")]
        let (header_facts, sent_request_id) = match &policy.headers {
            Some(set) => {
                let (mut facts, sent_request_id) = set.request_facts_noting(
                    &mut parts,
                    says_https.reads_x_forwarded_proto(),
                    &X_REQUEST_ID,
                );
                facts.https |= policy.behind_tls || says_https.forwarded_https();
                (Some(facts), sent_request_id)
            }
            None => (None, parts.headers.contains_key(&X_REQUEST_ID)),
        };
        #[cfg(not(feature = "headers"))]
        let sent_request_id = parts.headers.contains_key(&X_REQUEST_ID);
        #[cfg(feature = "headers")]
        let https = match &header_facts {
            Some(facts) => facts.https,
            None => {
                policy.behind_tls
                    || says_https.forwarded_https()
                    || hardening_headers::is_https(&parts, says_https.reads_x_forwarded_proto())
            }
        };

        // The access-log record (which puts the request's `PrincipalSlot` in its extensions),
        // then the path, both ahead of `Post`: taken inside its literal, with the path after
        // it, the record cost `call` instructions whether the access log was on or off.
        let record = match outer {
            None => policy.access_log.record(&mut parts),
            Some(_) => None,
        };
        // Read once: the health probes and the rate limiter's route key both use it.
        let path = parts.uri.path();

        let mut post = Post {
            #[cfg(feature = "headers")]
            header_facts,
            length_by_method: !matches!(parts.method, Method::HEAD | Method::CONNECT),
            #[cfg(feature = "ratelimit")]
            rate_limit_header: None,
            #[cfg(feature = "ratelimit")]
            rate_limit_some_policies: None,
            #[cfg(feature = "ratelimit")]
            permit: None,
            policy: self.policy.clone(),
            request_id,
            client_ip,
            cors_origin: None,
            body_watch: None,
            record,
            span,
        };

        // Health probes: before the host allowlist (probes use IPs as hosts), CORS and limits.
        if let Some(health) = &policy.health
            && let Some(probe) = health.probe(&parts.method, path)
        {
            if !health.logs_requests() {
                post.record = None;
            }
            return match probe {
                Probe::Live => ResponseFuture::answered(Health::live(request_id), post),
                Probe::Ready => {
                    let detail = health
                        .shows_detail(KnownClientIp::from_extensions(&parts.extensions))
                        && host_may_see_detail(&parts, policy.allowed_hosts.as_ref());
                    ResponseFuture::readiness(Box::pin(health.ready(request_id, detail)), post)
                }
            };
        }

        // 3. Host allowlist.
        if let Some(hosts) = &policy.allowed_hosts
            && !hosts.allows(&parts)
        {
            return refused(Problem::unknown_host, SecurityEvent::BadHost, post);
        }

        // HTTPS redirect; a plain-HTTP request whose `Host` no redirect may go to is refused
        // rather than served over plain HTTP.
        #[cfg(feature = "headers")]
        if let Some(redirect) = &policy.https_redirect {
            use hardening_headers::RedirectDecision;
            match redirect.decide::<()>(&parts, https) {
                RedirectDecision::Redirect(res) => {
                    return ResponseFuture::answered(res.map(|()| ProblemBody::empty()), post);
                }
                RedirectDecision::Refuse => {
                    return refused(Problem::unknown_host, SecurityEvent::BadHost, post);
                }
                RedirectDecision::Proceed => {}
            }
        }

        // 4. CORS.
        match policy.cors.decide(&parts) {
            CorsDecision::None => {}
            CorsDecision::Allowed(origin) => post.cors_origin = Some(origin),
            CorsDecision::Preflight(headers) => {
                let mut res = Response::new(ProblemBody::empty());
                *res.status_mut() = StatusCode::NO_CONTENT;
                *res.headers_mut() = headers;
                return ResponseFuture::answered(res, post);
            }
            CorsDecision::Refused => {
                return refused(
                    || {
                        Problem::new(StatusCode::FORBIDDEN).with_detail(
                        "this cross-origin request is not allowed from this origin, with this method or these headers",
                    )
                    },
                    SecurityEvent::CorsRejected,
                    post,
                );
            }
        }

        // 5. Rate limit (all policies or none charged), but for the routes left out of it.
        #[cfg(feature = "ratelimit")]
        if let Some(limiter) = &policy.rate_limiter
            && !policy.rate_limit_exempt.exempts(path)
        {
            let keys = hardening_ratelimit::RequestKeys {
                client_ip,
                headers: &parts.headers,
                principal: None,
                tenant: None,
                route: Some(path),
            };
            match limiter.check(&keys, 1) {
                hardening_ratelimit::Decision::Allowed(statuses) => {
                    note_rate_limit(&mut post, limiter, &statuses)
                }
                hardening_ratelimit::Decision::Shadowed { violated, statuses } => {
                    note_rate_limit(&mut post, limiter, &statuses);
                    SecurityEvent::emit_shadow(post.span(), request_id, client_ip, &violated);
                }
                hardening_ratelimit::Decision::Limited {
                    retry_after,
                    violated,
                    statuses,
                } => {
                    note_rate_limit(&mut post, limiter, &statuses);
                    return rate_limited(retry_after, &violated, post);
                }
            }
        }

        // 5b. Concurrency: a slot held until the response body is gone.
        #[cfg(feature = "ratelimit")]
        if let Some(concurrency) = &policy.concurrency {
            match concurrency.try_acquire(client_ip) {
                Ok(permit) => post.permit = Some(permit),
                // A 429 like the limiter's, its event naming the policy as the problem does.
                Err(hardening_ratelimit::ConcurrencyRefusal::PerClient) => {
                    return rate_limited(
                        std::time::Duration::from_secs(1),
                        &[hardening_ratelimit::PolicyName::from("concurrency")],
                        post,
                    );
                }
                Err(hardening_ratelimit::ConcurrencyRefusal::Global) => {
                    return refused(
                        || {
                            Problem::new(StatusCode::SERVICE_UNAVAILABLE)
                                .with_detail("the service is at capacity; retry shortly")
                                .with_header(
                                    http::header::RETRY_AFTER,
                                    http::HeaderValue::from_static("1"),
                                )
                        },
                        SecurityEvent::LoadShed,
                        post,
                    );
                }
            }
        }

        // 6. Limits: query parameters, declared body size, streamed body size.
        if let (Some(limit), Some(query)) = (policy.query_param_limit, parts.uri.query())
            && query
                .split('&')
                .filter(|p| !p.is_empty())
                .nth(limit)
                .is_some()
        {
            return refused(
                || {
                    Problem::new(StatusCode::BAD_REQUEST).with_detail(format!(
                        "too many query parameters; at most {limit} are accepted"
                    ))
                },
                SecurityEvent::TooManyQueryParams,
                post,
            );
        }
        let hint = body.size_hint();
        // Asked twice below (the Content-Type check, the timeout's watch): read once.
        let may_have_body = hint.exact() != Some(0);
        let counted = match policy.body_limit {
            Some(default) => {
                // hyper gives a body the exact size its `Content-Length` declares (HTTP/1:
                // zero without one and without chunking): the header is read only for a
                // body of unknown size. A body that knows its size is judged by it, even if
                // a header (possible only without hyper) says otherwise. An invalid header
                // is answered 400, as hyper answers it on the wire (RFC 9112 §6.3).
                let declared = match hint.exact() {
                    Some(size) => Some(size),
                    // Its `Transfer-Encoding` must be `chunked` alone (checked below too, when
                    // there is no body limit).
                    None if !chunked_alone(&parts.headers) => {
                        return refused_transfer_encoding(&parts.headers, post);
                    }
                    None => match hardening_errors::declared_content_length(&parts.headers) {
                        Ok(declared) => declared,
                        Err(_) => {
                            return refused(
                                || {
                                    Problem::new(StatusCode::BAD_REQUEST).with_detail(
                                        "the Content-Length header is not valid: send one \
                                         decimal number of bytes",
                                    )
                                },
                                SecurityEvent::BadContentLength,
                                post,
                            );
                        }
                    },
                };
                // A body whose size is known and small cannot grow (HTTP framing enforces
                // content-length); only the others need counting. Within the default, no
                // route's larger limit matters: only the others look their route up.
                if hint.upper().is_some_and(|n| n <= default as u64)
                    && declared.is_none_or(|n| n <= default as u64)
                {
                    Some((default, false))
                } else {
                    match larger_body(policy, &parts.uri, default, declared, hint.upper()) {
                        Ok(counted) => Some(counted),
                        Err(limit) => {
                            return refused(
                                || crate::body_limit::too_large(limit),
                                SecurityEvent::BodyTooLarge,
                                post,
                            );
                        }
                    }
                }
            }
            // A body of unknown size came chunked (hyper reads one whose last coding is
            // chunked): its `Transfer-Encoding` must say that alone (as above, with a limit).
            None if hint.exact().is_none() && !chunked_alone(&parts.headers) => {
                return refused_transfer_encoding(&parts.headers, post);
            }
            None => None,
        };
        // One media type for a body: with two, axum's extractors read the first while a proxy
        // or firewall in front may have judged the body by another.
        if may_have_body && differing_content_types(&parts.headers) {
            return refused(
                || {
                    Problem::new(StatusCode::BAD_REQUEST).with_detail(
                        "the request has Content-Type fields that differ: send one media type",
                    )
                },
                SecurityEvent::BadContentType,
                post,
            );
        }
        // Watched when it must be counted, and, under a timeout, when it may still be arriving:
        // a request timed out while waiting for its body is the client's slowness (408).
        let watched_limit = match counted {
            Some((limit, true)) => Some(limit),
            _ if policy.timeout.is_some() && may_have_body => {
                Some(counted.map_or(usize::MAX, |(limit, _)| limit))
            }
            _ => None,
        };
        let body = if let Some(limit) = watched_limit {
            let (body, watch) = crate::body_limit::WatchedLimit::new(body, limit);
            post.body_watch = Some(watch);
            Body::new(body)
        } else {
            Body::new(body)
        };

        // 7. CSRF for unsafe requests (and WebSocket handshakes) carrying browser credentials
        // (over HTTPS, an `Origin` of this host must be https too).
        #[cfg(all(feature = "auth", feature = "headers"))]
        let request_is_https = https;
        #[cfg(all(feature = "auth", not(feature = "headers")))]
        let request_is_https = policy.behind_tls || says_https.proxies_say_https(&parts.headers);
        #[cfg(feature = "auth")]
        if let Some(csrf) = &policy.csrf
            && let Err(reason) = csrf.verdict(&parts, request_is_https)
        {
            if csrf.is_shadow() {
                SecurityEvent::emit_csrf_shadow(post.span(), post.request_id, client_ip, reason);
            } else {
                return refused(
                    || {
                        Problem::new(StatusCode::FORBIDDEN).with_detail(
                            "cross-origin request refused: send it from this site's own pages",
                        )
                    },
                    SecurityEvent::CsrfBlocked,
                    post,
                );
            }
        }

        // The inner service reads the chosen id in `x-request-id` too, not one the client
        // wrote: a handler that forwards the header forwards the id logged. After the
        // access-log record, whose request headers (`log_request_headers`) are as sent.
        if sent_request_id {
            give_request_id(&mut parts.headers, request_id);
        }

        // 8. The inner service, under the timeout. Its panics are caught here and in the
        // response future; its error responses become problems there.
        let called = {
            let _entered = post.span.as_ref().map(tracing::Span::enter);
            let inner = &mut self.inner;
            catch_unwind(AssertUnwindSafe(|| {
                inner.call(Request::from_parts(parts, body))
            }))
        };
        match called {
            Ok(future) => ResponseFuture::inner(future, post),
            Err(payload) => ResponseFuture::panicked(payload, post),
        }
    }
}

/// Notes on `post` the rate-limit fields of a decision's `statuses`, which name the policies
/// that counted the request and only those: its `RateLimit` value, and its `RateLimit-Policy`
/// value when some policy did not count it (else the response side writes the limiter's own,
/// made once). Always inlined: called in each arm of the decision, it is a few instructions
/// there, and a call out of line cost more than the work.
#[cfg(feature = "ratelimit")]
#[inline(always)]
fn note_rate_limit(
    post: &mut Post,
    limiter: &hardening_ratelimit::RateLimiter,
    statuses: &[hardening_ratelimit::PolicyStatus],
) {
    post.rate_limit_header = limiter.ratelimit_header(statuses);
    if statuses.len() != limiter.policies().len() {
        post.rate_limit_some_policies = some_policies(limiter, statuses);
    }
}

/// The `RateLimit-Policy` value of the policies that counted a request some did not. Out of
/// line: under one policy, or when every policy counts, it is never asked for.
#[cfg(feature = "ratelimit")]
#[cold]
#[inline(never)]
fn some_policies(
    limiter: &hardening_ratelimit::RateLimiter,
    statuses: &[hardening_ratelimit::PolicyStatus],
) -> Option<Box<HeaderValue>> {
    limiter.counted_policy_header(statuses).map(Box::new)
}

/// For a body larger than the default limit, or of unknown size: its limit (its route's,
/// if that one is larger) and whether it must be counted, or the limit its declared size is
/// over. Out of line: most requests' bodies are small.
#[inline(never)]
fn larger_body(
    policy: &Policy,
    uri: &http::Uri,
    default: usize,
    declared: Option<u64>,
    upper: Option<u64>,
) -> Result<(usize, bool), usize> {
    let limit = policy.larger_bodies.limit_for(uri.path(), default);
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(limit);
    }
    let small = upper.is_some_and(|n| n <= limit as u64);
    Ok((limit, !small))
}

/// Whether the request has two `Content-Type` fields that differ (identical repeats say one
/// thing, as repeated `Content-Length` fields may, RFC 9112 §6.3).
#[inline]
fn differing_content_types(headers: &http::HeaderMap) -> bool {
    let mut values = headers.get_all(http::header::CONTENT_TYPE).iter();
    values
        .next()
        .is_some_and(|first| values.any(|v| v != first))
}

/// A body of unknown size whose `Transfer-Encoding` is not `chunked` alone, refused: hyper
/// reads a body as chunked when its last coding is, and a proxy in front that reads
/// `identity, chunked` or two `chunked` fields otherwise may have framed it otherwise (RFC 9112
/// §6.1). 400 when the fields name `chunked` more than once (or no coding at all), 501 when
/// they name another coding, which nothing here decodes; with `Connection: close`, so that
/// nothing after the body on the connection is read.
#[cold]
#[inline(never)]
fn refused_transfer_encoding<F, B>(headers: &http::HeaderMap, post: Post) -> ResponseFuture<F, B> {
    // Not `chunked` alone (`chunked_alone` said so): a coding of another name, else chunked
    // more than once or not at all.
    let (chunked, other) = transfer_codings(headers);
    let (status, detail) = if other {
        (
            StatusCode::NOT_IMPLEMENTED,
            "the request's Transfer-Encoding names a coding other than chunked, which this \
             server does not decode: send the body with chunked alone",
        )
    } else {
        (
            StatusCode::BAD_REQUEST,
            "the request's Transfer-Encoding does not name chunked exactly once: send it once",
        )
    };
    debug_assert!(other || chunked != 1, "refused chunked alone");
    refused(
        || {
            Problem::new(status)
                .with_detail(detail)
                .with_header(http::header::CONNECTION, HeaderValue::from_static("close"))
        },
        SecurityEvent::BadTransferEncoding,
        post,
    )
}

/// Whether a request's `Transfer-Encoding` fields name `chunked` once and no other coding (any
/// case, OWS around it, empty list elements ignored: RFC 9110 §5.6.1), or are absent (a body
/// made in-process, or HTTP/2's, which has none). Out of line: only bodies of unknown size
/// come here.
#[inline(never)]
fn chunked_alone(headers: &http::HeaderMap) -> bool {
    let mut fields = headers.get_all(http::header::TRANSFER_ENCODING).iter();
    let Some(first) = fields.next() else {
        return true;
    };
    if fields.next().is_none() && first.as_bytes().eq_ignore_ascii_case(b"chunked") {
        return true;
    }
    transfer_codings(headers) == (1, false)
}

/// How many times a request's `Transfer-Encoding` fields name `chunked`, and whether they name
/// another coding: each list element read (empty ones skipped). Cold: clients send one
/// `chunked` field, which [`chunked_alone`] takes without this.
#[cold]
#[inline(never)]
fn transfer_codings(headers: &http::HeaderMap) -> (usize, bool) {
    let mut chunked = 0_usize;
    let mut other = false;
    for field in headers.get_all(http::header::TRANSFER_ENCODING) {
        for coding in field.as_bytes().split(|&b| b == b',') {
            let coding = coding.trim_ascii();
            if coding.eq_ignore_ascii_case(b"chunked") {
                chunked += 1;
            } else {
                other |= !coding.is_empty();
            }
        }
    }
    (chunked, other)
}

/// The header's value when it has exactly one.
fn only_value<'a>(headers: &'a http::HeaderMap, name: &HeaderName) -> Option<&'a HeaderValue> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    values.next().is_none().then_some(first)
}

/// Makes the request's `x-request-id` the chosen id, in one field: its fields replaced
/// unless they already are that (a trusted proxy's id, adopted; the id of a `Hardening`
/// further out, which wrote it). Cold: only requests that carry the header come here.
#[cold]
#[inline(never)]
fn give_request_id(headers: &mut http::HeaderMap, request_id: RequestId) {
    let written = only_value(headers, &X_REQUEST_ID)
        .is_some_and(|value| value.as_bytes() == request_id.as_str().as_bytes());
    if !written {
        headers.insert(X_REQUEST_ID.clone(), request_id.to_header_value());
    }
}

/// Whether a readiness probe's host allows its detail: one the allowlist accepts, or one no
/// other site can be reached by (an IP address, `localhost`). Probes skip the allowlist (an
/// orchestrator's use the pod's IP), but a name outside it may be a DNS-rebinding page in a
/// browser on a network that sees the detail. The host is the one the request names
/// ([`request_host`](crate::host::request_host): its `Host` and its target's authority, which
/// must agree), as the allowlist reads it.
#[cold]
fn host_may_see_detail(parts: &http::request::Parts, allowed: Option<&AllowedHosts>) -> bool {
    if allowed.is_some_and(|hosts| hosts.allows(parts)) {
        return true;
    }
    let Some(host) = crate::host::request_host(parts) else {
        return false;
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok()
        || host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .is_some_and(|h| h.parse::<std::net::Ipv6Addr>().is_ok())
}

/// The request's span, when a subscriber may want it: cold and out of line, so that the
/// macro's code does not sit between the admitted requests' hot instructions.
#[cold]
#[inline(never)]
fn request_span(request_id: RequestId) -> tracing::Span {
    tracing::info_span!(target: crate::REQUEST_SPAN_TARGET, "request", request_id = %request_id)
}

/// The span of the `Hardening` this one is nested in: the current one (it is entered around
/// the services inside it), or none. Cold: nesting is rare.
#[cold]
#[inline(never)]
fn outer_span() -> tracing::Span {
    tracing::Span::current()
}

/// A request the rate limiter refused: its problem, and its event naming the policies that
/// refused it (logged and counted here, so the response side does neither again).
#[cfg(feature = "ratelimit")]
#[cold]
#[inline(never)]
fn rate_limited<F, B>(
    retry_after: std::time::Duration,
    violated: &[hardening_ratelimit::PolicyName],
    post: Post,
) -> ResponseFuture<F, B> {
    let problem = hardening_errors::Error::TooManyRequests {
        retry_after,
        policies: violated.iter().map(|p| p.to_string()).collect(),
    }
    .to_problem();
    let mut response = reject(problem, post.request_id);
    SecurityEvent::emit_rate_limited(post.span(), post.request_id, post.client_ip, violated);
    hardening_errors::mark_reported(&mut response, SecurityEvent::RateLimited.as_str(), true);
    ResponseFuture::answered(response, post)
}

/// A request refused before the inner service: its problem (made here, by `problem`), the
/// security event, and the response side. Cold and out of line, so that what refusals need
/// (building the problem and its JSON) is not interleaved with the admitted requests' path:
/// served, with the kernel's and hyper's code passing through the instruction cache between
/// requests, that path then spans fewer cache lines.
#[cold]
#[inline(never)]
fn refused<F, B>(
    problem: impl FnOnce() -> Problem,
    event: SecurityEvent,
    post: Post,
) -> ResponseFuture<F, B> {
    let response = reject(problem(), post.request_id);
    ResponseFuture::early(response, event, post)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Mutex;

    use tower::{Layer, ServiceExt};

    use super::*;
    use crate::Hardening;

    /// What the inner service saw: its request id, and the request's `x-request-id` fields.
    type Seen = Arc<Mutex<Option<(RequestId, Vec<HeaderValue>)>>>;

    /// Sends a GET from 127.0.0.1 with these `x-request-id` fields through `layers` (the
    /// first outermost) around a service that records what it sees; the response's id too.
    async fn through(layers: &[Hardening], sent: &[&str]) -> (RequestId, Vec<HeaderValue>, String) {
        let seen: Seen = Arc::default();
        let recorder = seen.clone();
        let inner = tower::service_fn(move |req: Request<Body>| {
            let id = RequestId::from_extensions(req.extensions()).expect("a request id");
            let fields = req
                .headers()
                .get_all(&X_REQUEST_ID)
                .iter()
                .cloned()
                .collect();
            *recorder.lock().unwrap() = Some((id, fields));
            async { Ok::<_, Infallible>(Response::new(Body::empty())) }
        });
        let mut service = tower::util::BoxCloneService::new(inner);
        for hardening in layers.iter().rev() {
            service = tower::util::BoxCloneService::new(hardening.layer(service));
        }
        let mut req = Request::get("/").header(http::header::HOST, "localhost");
        for value in sent {
            req = req.header(&X_REQUEST_ID, *value);
        }
        let mut req = req.body(Body::empty()).unwrap();
        let peer: SocketAddr = ([127, 0, 0, 1], 40_000).into();
        req.extensions_mut().insert(ConnectInfo(peer));
        let res = service.oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let answered = res
            .headers()
            .get_all(&X_REQUEST_ID)
            .iter()
            .collect::<Vec<_>>();
        assert_eq!(answered.len(), 1, "{answered:?}");
        let answered = answered[0].to_str().unwrap().to_owned();
        let (id, fields) = seen.lock().unwrap().take().expect("the service was called");
        (id, fields, answered)
    }

    /// The inner service's `x-request-id` is the chosen id, in one field, whatever the client
    /// or a trusted proxy sent: the same id as its `RequestId` and the response's.
    #[tokio::test]
    async fn the_inner_service_reads_the_chosen_id_in_x_request_id() {
        let trusting = || Hardening::strict().trusted_proxies(["127.0.0.1"]).unwrap();
        let long = "a".repeat(65);
        // With the security headers the id is noted in their read of the request's headers;
        // without, looked up.
        let variants = vec![
            (false, Hardening::strict()),
            (true, trusting()),
            #[cfg(feature = "headers")]
            (
                false,
                Hardening::strict().dangerous_without_security_headers(),
            ),
            #[cfg(feature = "headers")]
            (true, trusting().dangerous_without_security_headers()),
        ];
        for (i, (trusted, hardening)) in variants.into_iter().enumerate() {
            for sent in [
                &["forged-by-client"][..],
                &[long.as_str()],
                &["tab\tinside"],
                &["forged-by-client", "from-the-proxy.2"],
            ] {
                let layers = std::slice::from_ref(&hardening);
                let (id, fields, answered) = through(layers, sent).await;
                assert_eq!(answered, id.as_str(), "{i} {sent:?}");
                assert_eq!(fields, [id.as_str()], "{i} {sent:?}");
                let adopted = trusted && sent == ["forged-by-client"];
                assert_eq!(sent.contains(&id.as_str()), adopted, "{i} {sent:?}");
            }
            // Nothing sent, nothing added: the common request pays for no header.
            let (_, fields, _) = through(std::slice::from_ref(&hardening), &[]).await;
            assert!(fields.is_empty(), "{i}: {fields:?}");
        }
    }

    /// Nested, the inner `Hardening` keeps the outer one's id, which the outer one wrote in
    /// the header: the service sees it once.
    #[tokio::test]
    async fn nested_the_outer_id_reaches_the_service_once() {
        for sent in [&[][..], &["forged-by-client"], &["a", "b"]] {
            let layers = [Hardening::strict(), Hardening::strict()];
            let (id, fields, answered) = through(&layers, sent).await;
            assert_eq!(answered, id.as_str(), "{sent:?}");
            let expected: &[&str] = if sent.is_empty() { &[] } else { &[id.as_str()] };
            assert_eq!(fields, expected, "{sent:?}");
        }
    }
}
