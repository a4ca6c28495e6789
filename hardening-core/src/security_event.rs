//! Security events: one structured event per rejection, with a stable name.

use std::net::IpAddr;

use hardening_errors::RequestId;
pub use hardening_errors::SECURITY_TARGET;

/// Why a request was rejected. [`SecurityEvent::as_str`] is the stable `security.event` value
/// (and, with feature `metrics`, the `event` label of `hardening_security_events_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SecurityEvent {
    /// 429: a rate limit or budget was spent.
    RateLimited,
    /// 401: no valid credentials.
    Unauthenticated,
    /// 403: authenticated but not allowed.
    Forbidden,
    /// 403: a cross-site request without a valid CSRF proof.
    CsrfBlocked,
    /// 413: the body was larger than allowed.
    BodyTooLarge,
    /// 400: more query parameters than allowed.
    TooManyQueryParams,
    /// 408/503: the request took longer than allowed.
    TimedOut,
    /// 500: the service panicked.
    Panicked,
    /// 400: the `Host` is not on the allowlist.
    BadHost,
    /// 503: the service is at its concurrency cap and shed the request.
    LoadShed,
    /// 403: a CORS preflight from an origin, or for a method or header, that is not allowed.
    CorsRejected,
    /// Not a rejection: a rate-limit policy in shadow mode would have refused the request.
    RateLimitShadow,
}

impl SecurityEvent {
    /// The stable name, such as `rate_limited`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited => "rate_limited",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::CsrfBlocked => "csrf_blocked",
            Self::BodyTooLarge => "body_too_large",
            Self::TooManyQueryParams => "too_many_query_params",
            Self::TimedOut => "timed_out",
            Self::Panicked => "panicked",
            Self::BadHost => "bad_host",
            Self::CorsRejected => "cors_rejected",
            Self::LoadShed => "load_shed",
            Self::RateLimitShadow => "rate_limit_shadow",
        }
    }

    /// Every event, for [`from_name`](Self::from_name).
    const ALL: [Self; 12] = [
        Self::RateLimited,
        Self::Unauthenticated,
        Self::Forbidden,
        Self::CsrfBlocked,
        Self::BodyTooLarge,
        Self::TooManyQueryParams,
        Self::TimedOut,
        Self::Panicked,
        Self::BadHost,
        Self::LoadShed,
        Self::CorsRejected,
        Self::RateLimitShadow,
    ];

    /// The event with this stable name (the reverse of [`as_str`](Self::as_str)).
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|event| event.as_str() == name)
    }

    /// The event an inner service's response stands for, if any: as
    /// [`hardening_errors::rejection_event`] names it.
    pub(crate) fn from_response(status: http::StatusCode, panicked: bool) -> Option<Self> {
        Self::from_name(hardening_errors::rejection_event(status, panicked)?)
    }

    /// Emits the event (and counts it, with feature `metrics`).
    pub(crate) fn emit(self, request_id: RequestId, client_ip: Option<IpAddr>) {
        self.record(request_id, client_ip, None, "request rejected");
    }

    /// Reports a request that shadow-mode policies would have refused (it went on).
    #[cfg(feature = "ratelimit")]
    pub(crate) fn emit_shadow(
        request_id: RequestId,
        client_ip: Option<IpAddr>,
        policies: &[hardening_ratelimit::PolicyName],
    ) {
        Self::RateLimitShadow.record(
            request_id,
            client_ip,
            Some(&policies),
            "request would have been rate limited (policy in shadow mode); admitted",
        );
    }

    fn record(
        self,
        request_id: RequestId,
        client_ip: Option<IpAddr>,
        policies: Option<&dyn std::fmt::Debug>,
        message: &str,
    ) {
        hardening_errors::log_security_event(
            self.as_str(),
            request_id,
            client_ip,
            policies,
            message,
        );
        self.count();
    }

    /// Counts the event (feature `metrics`) without logging it: for a rejection the layer
    /// that made it has already logged.
    pub(crate) fn count(self) {
        #[cfg(feature = "metrics")]
        metrics::counter!("hardening_security_events_total", "event" => self.as_str()).increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn all_lists_every_event() {
        use SecurityEvent::*;
        // Exhaustive: a new event does not compile here until it is listed, and then it
        // must be in `ALL` too, or it would be logged by name and never counted.
        let listed = |event: SecurityEvent| match event {
            RateLimited | Unauthenticated | Forbidden | CsrfBlocked | BodyTooLarge
            | TooManyQueryParams | TimedOut | Panicked | BadHost | LoadShed | CorsRejected
            | RateLimitShadow => SecurityEvent::ALL.contains(&event),
        };
        for event in [
            RateLimited,
            Unauthenticated,
            Forbidden,
            CsrfBlocked,
            BodyTooLarge,
            TooManyQueryParams,
            TimedOut,
            Panicked,
            BadHost,
            LoadShed,
            CorsRejected,
            RateLimitShadow,
        ] {
            assert!(
                listed(event),
                "{event:?} is missing from SecurityEvent::ALL"
            );
        }
    }

    #[test]
    fn every_name_is_its_events_own() {
        for event in SecurityEvent::ALL {
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
            }
        }
    }
}
