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

/// Whether none of the enforcing policies counts a request (has a key for it): per-principal
/// policies and an anonymous caller (or a layer outside the auth layer), a header-keyed one
/// and no header, a per-IP one and no client IP. Only shadow policies counting it limits
/// nothing either. A limiter whose policies are all shadow limits nothing by design, and is
/// not "unlimited" in this sense.
pub(crate) fn counts_nothing<'a>(
    policies: impl Iterator<Item = &'a crate::Policy>,
    keys: &crate::RequestKeys<'_>,
) -> bool {
    let mut enforcing = policies.filter(|p| !p.is_shadow()).peekable();
    enforcing.peek().is_some()
        && !enforcing.any(|p| crate::limiter::key_for(p.key_kind(), keys).is_some())
}

/// The once-per-layer warning of a rate-limit layer that let a request through with no
/// limit, because none of its enforcing policies counts it ([`counts_nothing`]).
#[derive(Debug, Default)]
pub(crate) struct UnlimitedWarning(std::sync::atomic::AtomicBool);

impl UnlimitedWarning {
    /// After a decision that charged `charged` of the limiter's `policies`: warns, once, if
    /// no enforcing one counts the request. Nothing to look at when every policy counted it,
    /// nor once said.
    #[inline]
    pub(crate) fn check<'a>(
        &self,
        layer: &str,
        charged: usize,
        policies: impl ExactSizeIterator<Item = &'a crate::Policy> + Clone,
        keys: &crate::RequestKeys<'_>,
    ) {
        if charged < policies.len() && !self.0.load(std::sync::atomic::Ordering::Relaxed) {
            self.check_cold(layer, policies, keys);
        }
    }

    #[cold]
    #[inline(never)]
    fn check_cold<'a>(
        &self,
        layer: &str,
        policies: impl Iterator<Item = &'a crate::Policy> + Clone,
        keys: &crate::RequestKeys<'_>,
    ) {
        if !counts_nothing(policies.clone(), keys)
            || self.0.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        let names: Vec<&str> = policies
            .filter(|p| !p.is_shadow())
            .map(|p| p.name().as_str())
            .collect();
        tracing::warn!(
            target: "hardening",
            layer,
            policies = ?names,
            "rate limit: {layer} let a request through unlimited, because none of its \
             enforcing policies ({}) counts it (no principal, client IP or header they count \
             by: an anonymous caller of per-principal policies, or the layer placed outside \
             the auth layer). To limit such requests, add a per-IP or global policy, or place \
             the layer inside the auth layer. Said once per layer",
            names.join(", ")
        );
    }
}
