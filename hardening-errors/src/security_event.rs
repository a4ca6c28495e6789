//! Security events: the one structured log event each rejection gets, in one format for
//! every crate of the suite.

use std::fmt;
use std::net::IpAddr;

use crate::RequestId;

/// The tracing target of security events.
pub const SECURITY_TARGET: &str = "hardening::security";

/// Marks a response whose rejection the layer that made it has already reported (with
/// [`report_rejection`]), and as what. A `Hardening` layer further out reports the
/// rejections of the services it wraps by their status; one already reported as the event
/// its status stands for, it does not report a second time (a response changed on the way,
/// say a 429 turned into a 403, is reported again, as what it now is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecurityEventReported {
    event: &'static str,
}

impl SecurityEventReported {
    /// The `security.event` name it was reported as.
    pub fn event(&self) -> &'static str {
        self.event
    }
}

/// Logs one security event: WARN on [`SECURITY_TARGET`], with the stable `security.event`
/// name (`rate_limited`, `bad_host`, …), the request id, the client address when known and,
/// for rate limits, the policies involved.
pub fn log_security_event(
    event: &str,
    request_id: RequestId,
    client_ip: Option<IpAddr>,
    policies: Option<&dyn fmt::Debug>,
    message: &str,
) {
    tracing::event!(
        target: SECURITY_TARGET,
        tracing::Level::WARN,
        security.event = event,
        request_id = %request_id,
        client.address = client_ip.map(tracing::field::display),
        policies = policies.map(tracing::field::debug),
        "{message}",
    );
}

/// The `security.event` a rejection response of this status stands for: `unauthenticated`
/// (401), `forbidden` (403), `timed_out` (408), `body_too_large` (413), `rate_limited` (429),
/// `panicked` (500 for a caught panic); `None` for other statuses. How
/// [`ProblemLayer`](crate::ProblemLayer) and `Hardening` report the rejections of the
/// services they wrap.
///
/// ```
/// use hardening_errors::rejection_event;
/// use http::StatusCode;
///
/// assert_eq!(rejection_event(StatusCode::TOO_MANY_REQUESTS, false), Some("rate_limited"));
/// assert_eq!(rejection_event(StatusCode::INTERNAL_SERVER_ERROR, true), Some("panicked"));
/// assert_eq!(rejection_event(StatusCode::INTERNAL_SERVER_ERROR, false), None);
/// assert_eq!(rejection_event(StatusCode::NOT_FOUND, false), None);
/// ```
pub fn rejection_event(status: http::StatusCode, panicked: bool) -> Option<&'static str> {
    Some(match status.as_u16() {
        401 => "unauthenticated",
        403 => "forbidden",
        408 => "timed_out",
        413 => "body_too_large",
        429 => "rate_limited",
        500 if panicked => "panicked",
        _ => return None,
    })
}

/// Reports the rejection `response` stands for by its status ([`rejection_event`]), unless
/// the layer that made it reported it as that event already (then it is left as it is).
pub(crate) fn report_unreported<B>(
    response: &mut http::Response<B>,
    request_id: RequestId,
    client_ip: Option<IpAddr>,
) {
    let panicked = response.extensions().get::<crate::CaughtPanic>().is_some();
    let Some(event) = rejection_event(response.status(), panicked) else {
        return;
    };
    let reported = response.extensions().get::<SecurityEventReported>();
    if reported.is_some_and(|r| r.event == event) {
        return;
    }
    report_rejection(response, event, request_id, client_ip, None);
}

/// Reports the rejection `response` answers as a security event and marks the response
/// [`SecurityEventReported`], for a layer that refuses requests on its own (outside
/// `Hardening`, or inside it for a route).
///
/// ```
/// use hardening_errors::{Problem, RequestId, SecurityEventReported, report_rejection};
///
/// let mut res: http::Response<Vec<u8>> =
///     Problem::new(http::StatusCode::TOO_MANY_REQUESTS).into_http_response();
/// report_rejection(&mut res, "rate_limited", RequestId::generate(), None, None);
/// let reported = res.extensions().get::<SecurityEventReported>().unwrap();
/// assert_eq!(reported.event(), "rate_limited");
/// ```
pub fn report_rejection<B>(
    response: &mut http::Response<B>,
    event: &'static str,
    request_id: RequestId,
    client_ip: Option<IpAddr>,
    policies: Option<&dyn fmt::Debug>,
) {
    log_security_event(event, request_id, client_ip, policies, "request rejected");
    response
        .extensions_mut()
        .insert(SecurityEventReported { event });
}
