//! Security events: the one structured log event each rejection gets, in one format for
//! every crate of the suite.

use std::fmt;
use std::net::IpAddr;

use crate::RequestId;

/// The tracing target of security events.
pub const SECURITY_TARGET: &str = "hardening::security";

/// Marks a response whose rejection a layer has already reported as a security event (with
/// [`report_rejection`], or `Hardening`'s own), as what, and at which status.
///
/// A layer further out ([`ProblemLayer`](crate::ProblemLayer), `Hardening`) reports the
/// rejections of the services it wraps by their status. A response reported at the status it
/// still has is not reported again; one changed on the way (a 429 turned into a 403) is, as
/// what it now is. `Hardening` also counts (feature `metrics`) each event a layer inside
/// logged and did not count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityEventReported {
    reports: Vec<Reported>,
    status: http::StatusCode,
}

/// One event of a [`SecurityEventReported`] mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reported {
    event: &'static str,
    counted: bool,
}

impl SecurityEventReported {
    /// The `security.event` name of the latest report.
    pub fn event(&self) -> &'static str {
        self.reports.last().map_or("", |r| r.event)
    }

    /// The response status the latest report was made at.
    pub fn status(&self) -> http::StatusCode {
        self.status
    }

    /// The events no layer has counted yet, marked counted now: for the layer that keeps
    /// the metrics (`Hardening`), so that each is counted once.
    pub fn take_uncounted(&mut self) -> Vec<&'static str> {
        self.reports
            .iter_mut()
            .filter_map(|r| (!std::mem::replace(&mut r.counted, true)).then_some(r.event))
            .collect()
    }
}

/// Marks `response` as reported as `event` at its current status ([`SecurityEventReported`]),
/// keeping the events reported before; `counted` says whether the caller has counted it in
/// the metrics too. For a layer that logged the event itself ([`report_rejection`] does both).
pub fn mark_reported<B>(response: &mut http::Response<B>, event: &'static str, counted: bool) {
    let status = response.status();
    let reported = Reported { event, counted };
    match response.extensions_mut().get_mut::<SecurityEventReported>() {
        Some(mark) => {
            mark.reports.push(reported);
            mark.status = status;
        }
        None => {
            response.extensions_mut().insert(SecurityEventReported {
                reports: vec![reported],
                status,
            });
        }
    }
}

/// Events a layer logged that are not rejections (a rate-limit policy in shadow mode would
/// have refused the request, which went on), for `Hardening` further out to count (feature
/// `metrics`) once, as it counts rejections. Unlike [`SecurityEventReported`] they are not
/// tied to a status, so they never keep a rejection further out from being reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityEventsLogged(Vec<&'static str>);

impl SecurityEventsLogged {
    /// The events no layer has counted yet, taken: each is counted once.
    pub fn take_uncounted(&mut self) -> Vec<&'static str> {
        std::mem::take(&mut self.0)
    }
}

/// Marks `response` as carrying `event`, which a layer logged, did not count, and which is
/// not a rejection ([`SecurityEventsLogged`]).
///
/// ```
/// use hardening_errors::{SecurityEventsLogged, mark_logged};
///
/// let mut res = http::Response::new(());
/// mark_logged(&mut res, "rate_limit_shadow");
/// let logged = res.extensions_mut().get_mut::<SecurityEventsLogged>().unwrap();
/// assert_eq!(logged.take_uncounted(), ["rate_limit_shadow"]);
/// assert!(logged.take_uncounted().is_empty());
/// ```
pub fn mark_logged<B>(response: &mut http::Response<B>, event: &'static str) {
    response
        .extensions_mut()
        .get_or_insert_default::<SecurityEventsLogged>()
        .0
        .push(event);
}

/// Whether `response` has been reported at the status it has now.
pub fn reported_at_its_status<B>(response: &http::Response<B>) -> bool {
    response
        .extensions()
        .get::<SecurityEventReported>()
        .is_some_and(|mark| mark.status == response.status())
}

/// Logs one security event: WARN on [`SECURITY_TARGET`], with the stable `security.event`
/// name (`rate_limited`, `bad_host`, …), the request id, the client address when known and,
/// for rate limits, the policies involved (as a list: `["per-ip"]`).
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

/// Reports the rejection `response` stands for by its status ([`rejection_event`]), naming
/// the [`violated_policies`] of its problem, unless a layer inside reported it at this status
/// already (then it is left as it is).
pub(crate) fn report_unreported<B>(
    response: &mut http::Response<B>,
    request_id: RequestId,
    client_ip: Option<IpAddr>,
) {
    let panicked = response.extensions().get::<crate::CaughtPanic>().is_some();
    let Some(event) = named_security_event(response)
        .filter(|_| !panicked)
        .or_else(|| rejection_event(response.status(), panicked))
    else {
        return;
    };
    if reported_at_its_status(response) {
        return;
    }
    let policies = violated_policies(response).map(<[String]>::to_vec);
    let policies = policies.as_ref().map(|p| p as &dyn fmt::Debug);
    report_rejection(response, event, request_id, client_ip, policies);
}

/// The policies the problem `response` answers with says the request violated (its
/// `violated-policies`: a 429's rate limits or budgets), for the `policies` of the security
/// event reported for it. Read from the [`Problem`](crate::Problem) in the response's
/// extensions, as the handler or layer that made it set them, never from a body; `None`
/// when there is no such problem or it names none.
///
/// ```
/// use std::time::Duration;
/// use axum::response::IntoResponse;
/// use hardening_errors::{Error, violated_policies};
///
/// let locked_out = Error::TooManyRequests {
///     retry_after: Duration::from_secs(30),
///     policies: vec!["login-failures".to_owned()],
/// };
/// let res = locked_out.into_response();
/// assert_eq!(violated_policies(&res), Some(&["login-failures".to_owned()][..]));
/// assert_eq!(violated_policies(&Error::Forbidden.into_response()), None);
/// ```
pub fn violated_policies<B>(response: &http::Response<B>) -> Option<&[String]> {
    let policies = response
        .extensions()
        .get::<crate::Problem>()?
        .violated_policies();
    (!policies.is_empty()).then_some(policies)
}

/// The security event the problem `response` answers with names for itself
/// ([`Problem::with_security_event`](crate::Problem::with_security_event)), read from the
/// [`Problem`](crate::Problem) in its extensions; reported in place of the event its status
/// stands for ([`rejection_event`]).
pub fn named_security_event<B>(response: &http::Response<B>) -> Option<&'static str> {
    response
        .extensions()
        .get::<crate::Problem>()?
        .security_event()
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
/// assert_eq!(reported.status(), 429);
/// ```
pub fn report_rejection<B>(
    response: &mut http::Response<B>,
    event: &'static str,
    request_id: RequestId,
    client_ip: Option<IpAddr>,
    policies: Option<&dyn fmt::Debug>,
) {
    log_security_event(event, request_id, client_ip, policies, "request rejected");
    mark_reported(response, event, false);
}
