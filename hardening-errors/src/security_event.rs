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
