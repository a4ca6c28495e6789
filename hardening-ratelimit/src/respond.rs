//! What the layers of this crate answer: 429 problems, `RateLimit` headers, shadow reports.

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use hardening_errors::{Error, Problem, RequestId, report_rejection};
use http::{HeaderMap, HeaderName, HeaderValue, Response};

use crate::{KeyKind, PolicyName};

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
            // Every line of a list split over several (the draft allows it), not the first
            // only: the joined value replaces them all.
            let joined = {
                let mut lines = slot.iter();
                match (lines.next(), lines.next()) {
                    (Some(line), None) => hardening_errors::join_header_values(&[line, &ours]),
                    _ => {
                        let mut values: Vec<&HeaderValue> = slot.iter().collect();
                        values.push(&ours);
                        hardening_errors::join_header_values(&values)
                    }
                }
            };
            if let Some(value) = joined {
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
pub(crate) struct UnlimitedWarning(hardening_errors::WarnOnce);

impl UnlimitedWarning {
    /// After a decision that charged `charged` of the limiter's `policies`: warns, once, if
    /// no enforcing one counts the request, saying what it lacked. A missing client IP is
    /// left out when `no_peer_said()` (another warning names it: the layer's own, or the
    /// `Hardening` around it); a request that lacks nothing else is not warned about here.
    /// Nothing to look at when every policy counted it, nor once said.
    #[inline]
    pub(crate) fn check<'a>(
        &self,
        layer: &str,
        charged: usize,
        policies: impl ExactSizeIterator<Item = &'a crate::Policy> + Clone,
        keys: &crate::RequestKeys<'_>,
        no_peer_said: impl FnOnce() -> bool,
    ) {
        if charged < policies.len() && !self.0.given() {
            self.check_cold(layer, policies, keys, no_peer_said);
        }
    }

    #[cold]
    #[inline(never)]
    fn check_cold<'a>(
        &self,
        layer: &str,
        policies: impl Iterator<Item = &'a crate::Policy> + Clone,
        keys: &crate::RequestKeys<'_>,
        no_peer_said: impl FnOnce() -> bool,
    ) {
        if !counts_nothing(policies.clone(), keys) {
            return;
        }
        let Some(lacks) = what_it_lacks(policies.clone(), keys, no_peer_said()) else {
            return;
        };
        if !self.0.first() {
            return;
        }
        let names = enforcing_names(policies);
        tracing::warn!(
            target: "hardening",
            layer,
            policies = ?names,
            "rate limit: {layer} let a request through unlimited, because none of its \
             enforcing policies ({}) counts it: it has {lacks}. Said once per layer",
            names.join(", ")
        );
    }
}

/// The names of the enforcing policies, for a warning.
pub(crate) fn enforcing_names<'a>(
    policies: impl Iterator<Item = &'a crate::Policy>,
) -> Vec<&'a str> {
    policies
        .filter(|p| !p.is_shadow())
        .map(|p| p.name().as_str())
        .collect()
}

/// What a request none of the enforcing policies counts lacks of what they count by, and how
/// to give it to them (never the request's keys themselves); `None` when all it lacks is a
/// client IP and `no_peer_said`.
fn what_it_lacks<'a>(
    policies: impl Iterator<Item = &'a crate::Policy> + Clone,
    keys: &crate::RequestKeys<'_>,
    no_peer_said: bool,
) -> Option<String> {
    let count_by = |part: fn(&KeyKind) -> bool| {
        policies
            .clone()
            .any(|p| !p.is_shadow() && counts_by(p.key_kind(), part))
    };
    let mut lacks = Vec::new();
    if keys.principal.is_none_or(str::is_empty) && count_by(|k| matches!(k, KeyKind::Principal)) {
        lacks.push(
            "no principal (an anonymous caller, or the layer placed outside the auth layer): \
             place the layer inside the auth layer, or add a per-IP or global policy to limit \
             anonymous callers",
        );
    }
    if keys.client_ip.is_none() && count_by(|k| matches!(k, KeyKind::ClientIp { .. })) {
        if no_peer_said && lacks.is_empty() {
            return None;
        }
        if !no_peer_said {
            lacks.push(
                "no client IP (no ConnectInfo<SocketAddr> in its extensions): serve the app \
                 with into_make_service_with_connect_info::<SocketAddr>() or \
                 hardening_core::serve",
            );
        }
    }
    if lacks.is_empty() {
        lacks.push(
            "none of the headers or keys they count by: add a global policy to limit such \
             requests",
        );
    }
    Some(lacks.join("; and "))
}

/// Whether a policy keyed by `kind` counts by what `part` picks, alone or in a composite key.
pub(crate) fn counts_by(kind: &KeyKind, part: fn(&KeyKind) -> bool) -> bool {
    match kind {
        KeyKind::Composite(parts) => parts.iter().any(|kind| counts_by(kind, part)),
        kind => part(kind),
    }
}
