//! What the layers of this crate answer: 429 problems, `RateLimit` headers, shadow reports.

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use hardening_errors::{Error, Problem, RequestId, report_rejection};
use http::{HeaderMap, HeaderName, HeaderValue, Response};

use crate::PolicyName;

/// The `RateLimit` response header (draft-ietf-httpapi-ratelimit-headers).
pub static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
/// The `RateLimit-Policy` response header (draft-ietf-httpapi-ratelimit-headers).
pub static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// The 429 problem for a refused request, reported as a `rate_limited` security event.
pub(crate) fn too_many<B: From<Bytes>>(
    retry_after: Duration,
    violated: &[PolicyName],
    request_id: Option<RequestId>,
    client_ip: Option<IpAddr>,
) -> Response<B> {
    let problem = Error::TooManyRequests {
        retry_after,
        policies: violated.iter().map(|p| p.to_string()).collect(),
    }
    .to_problem();
    refusal(
        problem,
        "rate_limited",
        request_id,
        client_ip,
        Some(&violated),
    )
}

/// A refused request's problem, under the request id a layer further out gave the request
/// (else a new one), reported as the security event `event` under the same id.
pub(crate) fn refusal<B: From<Bytes>>(
    problem: Problem,
    event: &'static str,
    request_id: Option<RequestId>,
    client_ip: Option<IpAddr>,
    policies: Option<&dyn std::fmt::Debug>,
) -> Response<B> {
    let request_id = request_id.unwrap_or_else(RequestId::generate);
    let mut response = problem_response(problem, Some(request_id));
    report_rejection(&mut response, event, request_id, client_ip, policies);
    response
}

/// A problem response under the request id a layer further out gave the request, else a new
/// one.
pub(crate) fn problem_response<B: From<Bytes>>(
    problem: Problem,
    request_id: Option<RequestId>,
) -> Response<B> {
    let request_id = request_id.unwrap_or_else(RequestId::generate);
    problem.with_request_id(request_id).into_http_response()
}

/// Sets `RateLimit` and `RateLimit-Policy` on a response. Limits applied further in (a
/// route's own budget) keep their entries: the values join into one list, inner first
/// (`"ai-tokens";r=80;t=9, "per-ip";r=42;t=5`).
pub fn set_ratelimit_headers(
    headers: &mut HeaderMap,
    ratelimit: Option<HeaderValue>,
    policy: Option<&HeaderValue>,
) {
    if let Some(value) = ratelimit {
        merge_list(headers, &RATELIMIT, value);
    }
    if let Some(value) = policy {
        merge_list(headers, &RATELIMIT_POLICY, value.clone());
    }
}

fn merge_list(headers: &mut HeaderMap, name: &HeaderName, ours: HeaderValue) {
    // One lookup: usually the slot is empty.
    match headers.entry(name.clone()) {
        http::header::Entry::Vacant(slot) => {
            slot.insert(ours);
        }
        http::header::Entry::Occupied(mut slot) => {
            if let Some(value) = hardening_errors::join_header_values(&[slot.get(), &ours]) {
                slot.insert(value);
            }
        }
    }
}

/// The `security.event` of [`report_shadow`], which the layers also mark their responses with
/// ([`hardening_errors::mark_logged`]) for `Hardening` to count.
pub(crate) const SHADOW_EVENT: &str = "rate_limit_shadow";

/// Logs a request admitted only because the policies that refused it are in shadow mode,
/// with the client address as every security event has it.
pub(crate) fn report_shadow(
    request_id: Option<RequestId>,
    client_ip: Option<IpAddr>,
    violated: &[PolicyName],
    cost: u64,
) {
    tracing::event!(
        target: hardening_errors::SECURITY_TARGET,
        tracing::Level::WARN,
        security.event = SHADOW_EVENT,
        request_id = request_id.map(tracing::field::display),
        client.address = client_ip.map(tracing::field::display),
        policies = ?violated,
        cost,
        "request would have been rate limited (policy in shadow mode); admitted",
    );
}
