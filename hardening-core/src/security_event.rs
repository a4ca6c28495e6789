//! Security events: one structured event per rejection, with a stable name.

use std::net::IpAddr;

use hardening_errors::RequestId;
pub use hardening_errors::SECURITY_TARGET;
use tracing::Span;

/// The events, each with its stable name, listed once: the enum, [`SecurityEvent::as_str`]
/// and the list `from_name` searches all come from this one list.
macro_rules! security_events {
    ($($(#[$doc:meta])* $event:ident => $name:literal,)*) => {
        /// Why a request was rejected. [`SecurityEvent::as_str`] is the stable `security.event`
        /// value (and, with feature `metrics`, the `event` label of
        /// `hardening_security_events_total`). A handler's refusals can carry names of their
        /// own: [`Problem::with_security_event`](hardening_errors::Problem::with_security_event).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum SecurityEvent {
            $($(#[$doc])* $event,)*
        }

        impl SecurityEvent {
            /// The stable name, such as `rate_limited`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$event => $name,)*
                }
            }

            /// Every event, for [`from_name`](Self::from_name).
            const ALL: &'static [Self] = &[$(Self::$event),*];
        }
    };
}

security_events! {
    /// 429: a rate limit or budget was spent.
    RateLimited => "rate_limited",
    /// 401: no valid credentials.
    Unauthenticated => "unauthenticated",
    /// 403: authenticated but not allowed.
    Forbidden => "forbidden",
    /// 403: a cross-site request without a valid CSRF proof.
    CsrfBlocked => "csrf_blocked",
    /// 413: the body was larger than allowed.
    BodyTooLarge => "body_too_large",
    /// 400: a body of unknown size whose `Content-Length` is not one valid length (a sign,
    /// a space inside, fields that disagree): RFC 9112 §6.3, as hyper answers on the wire.
    BadContentLength => "bad_content_length",
    /// 400 or 501: a body whose `Transfer-Encoding` is not `chunked` alone (chunked twice,
    /// 400; another coding, which nothing here decodes, 501: RFC 9112 §6.1), answered with
    /// `Connection: close` (a proxy in front may have framed the body otherwise).
    BadTransferEncoding => "bad_transfer_encoding",
    /// 400: a request with a body and `Content-Type` fields that differ (a singleton field,
    /// RFC 9110 §8.3: axum's extractors read the first, a proxy in front may have read
    /// another).
    BadContentType => "bad_content_type",
    /// 400: more query parameters than allowed.
    TooManyQueryParams => "too_many_query_params",
    /// 408/503: the request took longer than allowed.
    TimedOut => "timed_out",
    /// No response: a client began a request and did not finish its headers within the
    /// header-read timeout ([`Server`](crate::Server)), which closed the connection
    /// (slowloris). An idle keep-alive connection's timeout is not one.
    HeadTimedOut => "head_timed_out",
    /// No response: a client took its response slower than the minimum send rate
    /// ([`Server::min_send_rate`](crate::Server::min_send_rate)) while the server waited on
    /// it, which closed the connection (a slow-read attack).
    SlowRead => "slow_read",
    /// 500: the service panicked.
    Panicked => "panicked",
    /// 400: the `Host` is not on the allowlist.
    BadHost => "bad_host",
    /// 503: the service is at its concurrency cap and shed the request.
    LoadShed => "load_shed",
    /// 500: a `CostLayer` none of whose enforcing policies counts the request (per-principal
    /// budgets and no principal): refused rather than let spend without limit.
    CostLimitUnkeyed => "cost_limit_unkeyed",
    /// 403: a CORS preflight from an origin, or for a method or header, that is not allowed.
    CorsRejected => "cors_rejected",
    /// Not a rejection: a rate-limit policy in shadow mode would have refused the request.
    RateLimitShadow => "rate_limit_shadow",
    /// Not a rejection: the CSRF check in shadow mode would have refused the request.
    CsrfShadow => "csrf_shadow",
}

impl SecurityEvent {
    /// The event with this stable name (the reverse of [`as_str`](Self::as_str)).
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|event| event.as_str() == name)
    }

    /// The event an inner service's response stands for, if any: as
    /// [`hardening_errors::rejection_event`] names it.
    pub(crate) fn from_response(status: http::StatusCode, panicked: bool) -> Option<Self> {
        Self::from_name(hardening_errors::rejection_event(status, panicked)?)
    }

    /// Emits the event in the request's `span` (and counts it, with feature `metrics`).
    pub(crate) fn emit(self, span: &Span, request_id: RequestId, client_ip: Option<IpAddr>) {
        self.record(span, request_id, client_ip, None, "request rejected");
    }

    /// Emits the event `response` answers in the request's `span`, naming the policies its
    /// problem says were violated ([`hardening_errors::violated_policies`]: a handler's 429,
    /// a login lockout's `login-failures`), and counts it.
    pub(crate) fn emit_for<B>(
        self,
        response: &http::Response<B>,
        span: &Span,
        request_id: RequestId,
        client_ip: Option<IpAddr>,
    ) {
        let policies = hardening_errors::violated_policies(response);
        self.record(
            span,
            request_id,
            client_ip,
            policies.as_ref().map(|p| p as &dyn std::fmt::Debug),
            "request rejected",
        );
    }

    /// Emits the event a handler's problem names for itself
    /// ([`Problem::with_security_event`](hardening_errors::Problem::with_security_event)) in
    /// the request's `span`, naming the policies its problem says were violated, and counts
    /// it under that name.
    #[cold]
    pub(crate) fn emit_named<B>(
        name: &'static str,
        response: &http::Response<B>,
        span: &Span,
        request_id: RequestId,
        client_ip: Option<IpAddr>,
    ) {
        let policies = hardening_errors::violated_policies(response);
        record_named(
            name,
            span,
            request_id,
            client_ip,
            policies.as_ref().map(|p| p as &dyn std::fmt::Debug),
            "request rejected",
        );
    }

    /// Reports a client that began a request and did not finish its headers in time (no
    /// response was sent; the request id is the event's own, with no request span).
    pub(crate) fn emit_head_timed_out(request_id: RequestId, client_ip: IpAddr) {
        Self::HeadTimedOut.record(
            &Span::none(),
            request_id,
            Some(client_ip),
            None,
            "request headers not finished within the header-read timeout; connection closed",
        );
    }

    /// Reports a client that took its response too slowly (the connection was closed; the
    /// request id is the event's own, with no request span).
    #[cold]
    pub(crate) fn emit_slow_read(request_id: RequestId, client_ip: IpAddr) {
        Self::SlowRead.record(
            &Span::none(),
            request_id,
            Some(client_ip),
            None,
            "response taken slower than the minimum send rate; connection closed",
        );
    }

    /// Reports a request the rate limiter refused, naming the policies that refused it.
    #[cfg(feature = "ratelimit")]
    pub(crate) fn emit_rate_limited(
        span: &Span,
        request_id: RequestId,
        client_ip: Option<IpAddr>,
        policies: &[hardening_ratelimit::PolicyName],
    ) {
        Self::RateLimited.record(
            span,
            request_id,
            client_ip,
            Some(&policies),
            "request rejected",
        );
    }

    /// Reports a request that shadow-mode policies would have refused (it went on).
    #[cfg(feature = "ratelimit")]
    pub(crate) fn emit_shadow(
        span: &Span,
        request_id: RequestId,
        client_ip: Option<IpAddr>,
        policies: &[hardening_ratelimit::PolicyName],
    ) {
        Self::RateLimitShadow.record(
            span,
            request_id,
            client_ip,
            Some(&policies),
            "request would have been rate limited (policy in shadow mode); admitted",
        );
    }

    /// Reports a request the CSRF check in shadow mode would have refused (it went on), with
    /// why.
    #[cfg(feature = "auth")]
    #[cold]
    pub(crate) fn emit_csrf_shadow(
        span: &Span,
        request_id: RequestId,
        client_ip: Option<IpAddr>,
        reason: hardening_auth::CsrfReason,
    ) {
        Self::CsrfShadow.record(
            span,
            request_id,
            client_ip,
            None,
            &format!(
                "request would have been refused as cross-site ({reason:?}; CSRF check in \
                 shadow mode); admitted"
            ),
        );
    }

    /// Logs the event inside `span` (the request's, as the handler's events are; entering
    /// `Span::none()`, when no subscriber wants the span, does nothing), and counts it.
    fn record(
        self,
        span: &Span,
        request_id: RequestId,
        client_ip: Option<IpAddr>,
        policies: Option<&dyn std::fmt::Debug>,
        message: &str,
    ) {
        record_named(
            self.as_str(),
            span,
            request_id,
            client_ip,
            policies,
            message,
        );
    }
}

/// Logs the event `name` inside `span` and counts it (see [`SecurityEvent::record`]).
fn record_named(
    name: &'static str,
    span: &Span,
    request_id: RequestId,
    client_ip: Option<IpAddr>,
    policies: Option<&dyn std::fmt::Debug>,
    message: &str,
) {
    span.in_scope(|| {
        hardening_errors::log_security_event(name, request_id, client_ip, policies, message);
    });
    count_named(name);
}

/// Counts an event by its name (feature `metrics`): also one that a layer inside reported
/// under a name of its own through [`hardening_errors::report_rejection`] (a name in code,
/// so the label's values stay few).
pub(crate) fn count_named(name: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("hardening_security_events_total", "event" => name).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = name;
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn every_name_is_its_events_own() {
        assert_eq!(SecurityEvent::ALL.len(), 19);
        for &event in SecurityEvent::ALL {
            assert_eq!(SecurityEvent::from_name(event.as_str()), Some(event));
        }
        assert_eq!(SecurityEvent::from_name("no_such_event"), None);
    }

    #[test]
    fn statuses_stand_for_their_events() {
        use SecurityEvent::*;
        for code in 100..600 {
            let status = StatusCode::from_u16(code).unwrap();
            for panicked in [false, true] {
                let expected = match (code, panicked) {
                    (401, _) => Some(Unauthenticated),
                    (403, _) => Some(Forbidden),
                    (408, _) => Some(TimedOut),
                    (413, _) => Some(BodyTooLarge),
                    (429, _) => Some(RateLimited),
                    (500, true) => Some(Panicked),
                    _ => None,
                };
                assert_eq!(
                    SecurityEvent::from_response(status, panicked),
                    expected,
                    "{code} panicked={panicked}"
                );
                // The mapping `ProblemLayer` reports by, too.
                assert_eq!(
                    hardening_errors::rejection_event(status, panicked),
                    expected.map(SecurityEvent::as_str),
                    "{code} panicked={panicked}"
                );
            }
        }
    }
}
