//! What the layers of this crate answer: 429 problems (503 for a limit whose store was away),
//! `RateLimit` headers, shadow reports.

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use hardening_errors::{Error, Problem, RequestId, WarnOnce, report_rejection};
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

/// The `security.event` of a request refused because a limit could not be checked: a
/// [`FailClosed`](crate::FailureMode::FailClosed) policy whose store was away. Apart from
/// `rate_limited`, so that an outage does not read as clients over their limits.
#[cfg(feature = "redis")]
pub(crate) const UNAVAILABLE_EVENT: &str = "rate_limit_unavailable";

/// The 503 problem for a request refused because a limit could not be checked (its store was
/// away and the policy fails closed): the plain 503 the denylist's outage answers with
/// ([`Error::UnavailableFor`]), a detail saying which limit failed, `Retry-After` in whole
/// seconds (rounded up) and no `violated-policies`: nothing was spent. Reported as the
/// [`UNAVAILABLE_EVENT`] security event, naming the policies.
#[cfg(feature = "redis")]
pub(crate) fn limit_unavailable<B: From<Bytes>>(
    unavailable: &crate::RedisUnavailable,
    request_id: Option<RequestId>,
    client_ip: Option<IpAddr>,
) -> Response<B> {
    let problem = Error::UnavailableFor(unavailable.retry_after())
        .to_problem()
        .with_detail(
            "a rate limit could not be checked (its store is unavailable); retry after the \
             Retry-After delay",
        );
    refusal(
        problem,
        UNAVAILABLE_EVENT,
        request_id,
        client_ip,
        Some(&unavailable.policies()),
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

/// Writes a limiter's `RateLimit` and `RateLimit-Policy` fields on its layer's responses.
/// Limits applied further in (a route's own budget, fields the handler set) keep their
/// entries: the values join into one list, inner first (`"ai-tokens";r=80;t=9,
/// "per-ip";r=42;t=5`).
///
/// A policy's name is what ties its `RateLimit` entry to its `RateLimit-Policy` entry
/// (draft-ietf-httpapi-ratelimit-headers), so two entries of one name leave a client unable to
/// tell them apart: `Hardening::strict()`'s own policy is `per-ip`, and a `RateLimitLayer`
/// inside it with a `per-ip` policy of its own gave two. Where a limit further in already
/// has an entry of one of this limiter's names, in either field, its entries alone stay in
/// both fields: those of the limit closer to the handler, whose 429 names it (both limits
/// still count and refuse). The layer warns the first time, naming the policy and itself,
/// unless the policy has one definition in both (the same `RateLimit-Policy` member byte for
/// byte, as two nested `Hardening::strict()` have): one entry of it misleads no client, as
/// `RateLimit` keeps the member with fewer requests left (`r`; the definition does not say the
/// burst, so the other limit may refuse first). Only
/// a join looks at the names; different names cost the list of the lines further in.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use hardening_ratelimit::{RATELIMIT_POLICY, RateLimitFields};
///
/// let fields = RateLimitFields::new("RateLimitLayer");
/// let mut headers = HeaderMap::new();
/// headers.insert(&RATELIMIT_POLICY, HeaderValue::from_static("\"per-ip\";q=10;w=3600"));
/// let ours = HeaderValue::from_static("\"per-ip\";q=100;w=60, \"global\";q=5000;w=60");
/// fields.set(&mut headers, None, Some(&ours));
/// assert_eq!(headers[&RATELIMIT_POLICY], "\"per-ip\";q=10;w=3600, \"global\";q=5000;w=60");
/// ```
#[derive(Debug, Clone)]
pub struct RateLimitFields {
    layer: &'static str,
    /// Whether the warning about a shared name has been given (a clone starts afresh).
    warned: WarnOnce,
}

impl RateLimitFields {
    /// The fields of the layer that warnings call `layer` (`"RateLimitLayer"`).
    pub const fn new(layer: &'static str) -> Self {
        Self {
            layer,
            warned: WarnOnce::new(),
        }
    }

    /// Sets this limiter's `ratelimit` and `policy` values, if any, on a response's
    /// `headers`, joined to those already there. An entry of ours whose name a limit further
    /// in has in either field is left out of both: a client pairs the two fields' entries by
    /// name, and fields a handler set need not list the same policies in both.
    pub fn set(
        &self,
        headers: &mut HeaderMap,
        ratelimit: Option<HeaderValue>,
        policy: Option<&HeaderValue>,
    ) {
        let further_in: Vec<&HeaderValue> = headers
            .get_all(&RATELIMIT)
            .iter()
            .chain(headers.get_all(&RATELIMIT_POLICY))
            .collect();
        let mut fewer_left = Vec::new();
        let (ratelimit, policy) = if ratelimit
            .iter()
            .chain(policy)
            .any(|ours| shares_a_name(&further_in, ours))
        {
            // The lines of `RateLimit-Policy` come last.
            let policies = headers.get_all(&RATELIMIT_POLICY).iter().count();
            let (limits, policies) = further_in.split_at(further_in.len() - policies);
            fewer_left = fewer_left_than_further_in(limits, policies, ratelimit.as_ref(), policy);
            self.without_shared(&further_in, policies, ratelimit.as_ref(), policy)
        } else {
            (ratelimit, policy.cloned())
        };
        if let Some(value) = ratelimit {
            self.merge(headers, &RATELIMIT, value);
        }
        if let Some(value) = policy {
            self.merge(headers, &RATELIMIT_POLICY, value);
        }
        if !fewer_left.is_empty() {
            replace_members(headers, &fewer_left);
        }
    }

    /// [`set`](Self::set) for fields a header set wrote as they came
    /// (`HeaderSet::apply_with_lists_apart`): each field this limiter has a value for
    /// (`ours`: `RateLimit`, `RateLimit-Policy`) has it as its first line, those of limits
    /// further in after it.
    pub fn rejoin(&self, headers: &mut HeaderMap, ours: [bool; 2]) {
        let ratelimit = ours[0]
            .then(|| first_line_out(headers, &RATELIMIT))
            .flatten();
        let policy = ours[1]
            .then(|| first_line_out(headers, &RATELIMIT_POLICY))
            .flatten();
        self.set(headers, ratelimit, policy.as_ref());
    }

    fn merge(&self, headers: &mut HeaderMap, name: &HeaderName, ours: HeaderValue) {
        // One lookup: usually the slot is empty.
        match headers.entry(name.clone()) {
            http::header::Entry::Vacant(slot) => {
                slot.insert(ours);
            }
            http::header::Entry::Occupied(mut slot) => {
                // Every line of a list split over several (the draft allows it), not the
                // first only: the joined value replaces them all.
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

    /// `ratelimit` and `policy` without their entries of the names `further_in` has (`None`
    /// where none is left), and the warning, once, naming those whose definition differs
    /// from the one further in (`policies_further_in`, its `RateLimit-Policy` lines): one
    /// policy defined alike in two layers (nested `Hardening::strict()`) misleads no client.
    #[cold]
    #[inline(never)]
    fn without_shared(
        &self,
        further_in: &[&HeaderValue],
        policies_further_in: &[&HeaderValue],
        ratelimit: Option<&HeaderValue>,
        policy: Option<&HeaderValue>,
    ) -> (Option<HeaderValue>, Option<HeaderValue>) {
        let mut shared: Vec<String> = Vec::new();
        let mut without = |ours: Option<&HeaderValue>| {
            let mut kept = Vec::new();
            let members = members(ours?.as_bytes())
                .map(<[u8]>::trim_ascii)
                .filter(|member| !member.is_empty());
            for member in members {
                let name = member_name(member);
                if has_name(further_in, name) {
                    if !same_definition(policies_further_in, policy, name) {
                        let name = name_of_field(name);
                        if !shared.contains(&name) {
                            shared.push(name);
                        }
                    }
                } else {
                    if !kept.is_empty() {
                        kept.extend_from_slice(b", ");
                    }
                    kept.extend_from_slice(member);
                }
            }
            (!kept.is_empty())
                .then(|| HeaderValue::from_maybe_shared(Bytes::from(kept)).ok())
                .flatten()
        };
        let fields = (without(ratelimit), without(policy));
        if !shared.is_empty() && self.warned.first() {
            warn_shared_names(self.layer, &shared);
        }
        fields
    }
}

/// Our `RateLimit` members whose policy has one definition here and further in (two layers
/// counting the same request under one `RateLimit-Policy` entry, bursts apart) and that have
/// fewer requests left (`r`) than the member further in: the entry a client should read, as
/// the next request may be refused by ours.
#[cold]
fn fewer_left_than_further_in(
    limits: &[&HeaderValue],
    policies: &[&HeaderValue],
    ratelimit: Option<&HeaderValue>,
    policy: Option<&HeaderValue>,
) -> Vec<Vec<u8>> {
    let Some(ratelimit) = ratelimit else {
        return Vec::new();
    };
    members(ratelimit.as_bytes())
        .map(<[u8]>::trim_ascii)
        .filter(|ours| {
            let name = member_name(ours);
            let theirs = limits
                .iter()
                .flat_map(|list| named(list, name))
                .filter_map(remaining)
                .min();
            !name.is_empty()
                && same_definition(policies, policy, name)
                && matches!((remaining(ours), theirs), (Some(ours), Some(theirs)) if ours < theirs)
        })
        .map(<[u8]>::to_vec)
        .collect()
}

/// A `RateLimit` member's `r` parameter: the requests left.
fn remaining(member: &[u8]) -> Option<u64> {
    let member = member.trim_ascii_start();
    // The name, after its opening quote if it has one (`member_name` leaves quotes out).
    let quoted = usize::from(member.first() == Some(&b'"'));
    let params = member.get(quoted + member_name(member).len()..)?;
    let params = params.strip_prefix(b"\"").unwrap_or(params);
    params
        .split(|&b| b == b';')
        .find_map(|param| param.trim_ascii().strip_prefix(b"r="))
        .and_then(|r| std::str::from_utf8(r).ok()?.parse().ok())
}

/// Puts each of `replacements` in the `RateLimit` field in place of the members of its name,
/// the field's lines joined into one.
fn replace_members(headers: &mut HeaderMap, replacements: &[Vec<u8>]) {
    let mut joined = Vec::new();
    for line in headers.get_all(&RATELIMIT) {
        for member in members(line.as_bytes()).map(<[u8]>::trim_ascii) {
            let name = member_name(member);
            let member = replacements
                .iter()
                .find(|ours| member_name(ours) == name)
                .map_or(member, Vec::as_slice);
            if !joined.is_empty() {
                joined.extend_from_slice(b", ");
            }
            joined.extend_from_slice(member);
        }
    }
    if let Ok(value) = HeaderValue::from_maybe_shared(Bytes::from(joined)) {
        headers.insert(&RATELIMIT, value);
    }
}

/// Takes the first line of field `name` out of `headers`, leaving the others.
fn first_line_out(headers: &mut HeaderMap, name: &HeaderName) -> Option<HeaderValue> {
    let http::header::Entry::Occupied(entry) = headers.entry(name.clone()) else {
        return None;
    };
    let mut lines = entry.remove_entry_mult().1;
    let first = lines.next();
    let rest: Vec<HeaderValue> = lines.collect();
    for line in rest {
        headers.append(name.clone(), line);
    }
    first
}

#[cold]
fn warn_shared_names(layer: &str, names: &[String]) {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    let (policies, have) = match names.len() {
        1 => ("policy", "has the name of a policy"),
        _ => ("policies", "have the names of policies"),
    };
    tracing::warn!(
        target: "hardening",
        layer,
        policies = ?names,
        "rate limit: {policies} {} of {layer} {have} of a rate limit further in (a \
         RateLimitLayer, CostLayer or RedisRateLimitLayer inside it, or fields the handler \
         set). A client tells `RateLimit` entries apart by name alone, so responses carry only \
         the entry further in (the limit whose 429s name it); both limits still count and \
         refuse. Give one of the two policies another name (Hardening::strict()'s own is \
         `per-ip`), or both the same definition. Said once per layer",
        quoted.join(", ")
    );
}

/// Whether a member of `ours` has the name of a member of `inner`.
#[inline]
fn shares_a_name(inner: &[&HeaderValue], ours: &HeaderValue) -> bool {
    !inner.is_empty() && members(ours.as_bytes()).any(|member| has_name(inner, member_name(member)))
}

/// Whether the policy `name` has one definition in `ours` and in `further_in` (`RateLimit-Policy`
/// lists): each has a member of that name, and every such member is byte for byte the same
/// (whitespace around it aside).
fn same_definition(further_in: &[&HeaderValue], ours: Option<&HeaderValue>, name: &[u8]) -> bool {
    let Some(ours) = ours else {
        return false;
    };
    let Some(definition) = named(ours, name).next() else {
        return false;
    };
    let mut theirs = further_in
        .iter()
        .flat_map(|list| named(list, name))
        .peekable();
    theirs.peek().is_some()
        && theirs.all(|member| member == definition)
        && named(ours, name).all(|member| member == definition)
}

/// The members of `list` named `name`, whitespace around them trimmed.
fn named<'a>(list: &'a HeaderValue, name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
    members(list.as_bytes())
        .map(<[u8]>::trim_ascii)
        .filter(move |member| member_name(member) == name)
}

/// Whether a member of these lists has this name.
fn has_name(lists: &[&HeaderValue], name: &[u8]) -> bool {
    !name.is_empty()
        && lists
            .iter()
            .any(|list| members(list.as_bytes()).any(|member| member_name(member) == name))
}

/// The members of a structured-field list (RFC 9651 §3.1): split at the commas outside
/// strings.
fn members(list: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(list);
    std::iter::from_fn(move || {
        let list = rest?;
        let (mut quoted, mut escaped) = (false, false);
        for (i, &b) in list.iter().enumerate() {
            match b {
                _ if escaped => escaped = false,
                b'\\' if quoted => escaped = true,
                b'"' => quoted = !quoted,
                b',' if !quoted => {
                    rest = Some(&list[i + 1..]);
                    return Some(&list[..i]);
                }
                _ => {}
            }
        }
        rest = None;
        Some(list)
    })
}

/// The name a list member starts with, as written: a string's content (the policy name's
/// field form, [`PolicyName`]), else the token up to its parameters.
fn member_name(member: &[u8]) -> &[u8] {
    let member = member.trim_ascii_start();
    if let Some(string) = member.strip_prefix(b"\"") {
        let mut escaped = false;
        for (i, &b) in string.iter().enumerate() {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => return &string[..i],
                _ => {}
            }
        }
        return string;
    }
    let end = member
        .iter()
        .position(|&b| b == b';' || b.is_ascii_whitespace())
        .unwrap_or(member.len());
    &member[..end]
}

/// A name in its field form (`\"` and `\\` escaped, other bytes as `%XX`), as text again.
fn name_of_field(field: &[u8]) -> String {
    let mut name = Vec::with_capacity(field.len());
    let mut rest = field;
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        match b {
            b'\\' => {
                if let Some((&escaped, tail)) = rest.split_first() {
                    name.push(escaped);
                    rest = tail;
                }
            }
            b'%' => match rest
                .get(..2)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            {
                Some(byte) => {
                    name.push(byte);
                    rest = &rest[2..];
                }
                None => name.push(b),
            },
            _ => name.push(b),
        }
    }
    String::from_utf8_lossy(&name).into_owned()
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
/// (or per-tenant) policies and an anonymous caller (or a layer outside the auth layer), a
/// header-keyed one and no header, a per-IP one and no client IP. Only shadow policies
/// counting it limits nothing either. A limiter whose policies are all shadow limits nothing
/// by design, and is not "unlimited" in this sense.
pub(crate) fn counts_nothing<'a>(
    policies: impl Iterator<Item = &'a crate::Policy>,
    keys: &crate::RequestKeys<'_>,
) -> bool {
    let mut enforcing = policies.filter(|p| !p.is_shadow()).peekable();
    enforcing.peek().is_some()
        && !enforcing.any(|p| crate::limiter::key_for(p.key_kind(), keys).is_some())
}

/// What the services a rate-limit layer makes share: its fields, and its warning of a
/// request let through unlimited (each warning given once per layer).
#[derive(Debug)]
pub(crate) struct LayerShared {
    pub(crate) fields: RateLimitFields,
    pub(crate) unlimited: UnlimitedWarning,
}

impl LayerShared {
    /// For the layer that warnings call `layer`.
    pub(crate) fn new(layer: &'static str) -> Self {
        Self {
            fields: RateLimitFields::new(layer),
            unlimited: UnlimitedWarning::default(),
        }
    }
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
    if keys.tenant.is_none_or(str::is_empty) && count_by(|k| matches!(k, KeyKind::Tenant)) {
        lacks.push(
            "no tenant (an anonymous caller, a token without a `tenant` or `tid` claim, or the \
             layer placed outside the auth layer): place the layer inside the auth layer, or \
             add a per-principal, per-IP or global policy to limit such callers",
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A member's `r`, whatever its name's form: a quoted name may hold `;`, `r=` and `\"`.
    #[test]
    fn remaining_reads_r_after_the_name() {
        for (member, r) in [
            (&b"per-ip;r=7;t=3"[..], Some(7)),
            (br#""per-ip";r=7;t=3"#, Some(7)),
            (br#"  "a;r=1";t=3;r=9"#, Some(9)),
            (br#""a\";r=1";r=2"#, Some(2)),
            (br#""unterminated;r=4"#, None),
            (b"per-ip;t=3", None),
            (b"per-ip;r=-1", None),
            (b"", None),
        ] {
            assert_eq!(remaining(member), r, "{}", String::from_utf8_lossy(member));
        }
    }

    /// The `RateLimit` field once a limiter whose value is the last of `values` set it on a
    /// response whose lines are the others.
    fn join(values: &[&'static str]) -> String {
        let (ours, inner) = values.split_last().unwrap();
        let mut headers = HeaderMap::new();
        for line in inner {
            headers.append(&RATELIMIT, HeaderValue::from_static(line));
        }
        let ours = HeaderValue::from_static(ours);
        RateLimitFields::new("test").set(&mut headers, Some(ours), None);
        headers[&RATELIMIT].to_str().unwrap().to_owned()
    }

    #[test]
    fn entries_of_different_names_are_all_kept() {
        // A name that starts another, and a parameter that quotes one, name nothing.
        assert_eq!(
            join(&[
                r#""per-ip-2";q=1;w=60"#,
                r#""a, b";q=1;w=60;note="per-ip, \"per-ip\"""#,
                r#""per-ip";q=100;w=60"#,
            ]),
            r#""per-ip-2";q=1;w=60, "a, b";q=1;w=60;note="per-ip, \"per-ip\"", "per-ip";q=100;w=60"#
        );
    }

    #[test]
    fn our_entries_of_names_further_in_are_left_out() {
        assert_eq!(
            join(&[
                r#""day";q=5000;w=86400"#,
                r#""per-ip";q=10;w=3600"#,
                r#""per-ip";q=100;w=60, "global";q=9;w=1"#,
            ]),
            r#""day";q=5000;w=86400, "per-ip";q=10;w=3600, "global";q=9;w=1"#
        );
        // All of ours: the inner list as it was. A handler's token is a name too.
        assert_eq!(
            join(&[r#"per-ip;r=1;t=5"#, r#""per-ip";r=49;t=1"#]),
            "per-ip;r=1;t=5"
        );
        // Escaped names compare in their field form.
        assert_eq!(
            join(&[
                r#""caf%C3%A9 \"x\"";r=1"#,
                r#""caf%C3%A9 \"x\"";r=2, "b";r=3"#
            ]),
            r#""caf%C3%A9 \"x\"";r=1, "b";r=3"#
        );
    }

    /// Our `policy` set on a response whose `RateLimit-Policy` lines further in are `inner`:
    /// the field as it leaves, and whether the layer warned of a shared name.
    fn join_policies(
        fields: &RateLimitFields,
        inner: &[&'static str],
        policy: &'static str,
    ) -> (String, bool) {
        let mut headers = HeaderMap::new();
        for line in inner {
            headers.append(&RATELIMIT_POLICY, HeaderValue::from_static(line));
        }
        fields.set(&mut headers, None, Some(&HeaderValue::from_static(policy)));
        let out: Vec<&HeaderValue> = headers.get_all(&RATELIMIT_POLICY).iter().collect();
        let out = hardening_errors::join_header_values(&out).unwrap();
        (out.to_str().unwrap().to_owned(), fields.warned.given())
    }

    /// A name further in whose `RateLimit-Policy` member is ours byte for byte (nested
    /// `Hardening::strict()`) keeps one entry, the one further in, and is not warned about,
    /// nor does it use up the warning; another definition under the name is warned about.
    #[test]
    fn one_definition_under_a_shared_name_is_not_warned_about() {
        let fields = RateLimitFields::new("test");
        let same = [
            (&[r#""per-ip";q=100;w=60"#][..], r#""per-ip";q=100;w=60"#),
            (
                &[r#" "per-ip";q=100;w=60 , "a";q=1;w=1"#],
                r#""per-ip";q=100;w=60"#,
            ),
            (
                &[r#""a";q=1;w=1"#, r#""per-ip";q=100;w=60"#],
                r#""per-ip";q=100;w=60, "b";q=2;w=2"#,
            ),
        ];
        for (inner, ours) in same {
            let (out, warned) = join_policies(&fields, inner, ours);
            assert_eq!(
                out.matches("\"per-ip\"").count(),
                1,
                "{inner:?} + {ours}: {out}"
            );
            assert!(!warned, "{inner:?} + {ours}");
        }
        let different = [
            (&[r#""per-ip";q=10;w=3600"#][..], r#""per-ip";q=100;w=60"#),
            (&[r#""per-ip";q=100;w=60"#], r#""per-ip";w=60;q=100"#),
            (
                &[r#""per-ip";q=100;w=60"#, r#""per-ip";q=1;w=60"#],
                r#""per-ip";q=100;w=60"#,
            ),
            (&[r#"per-ip;q=100;w=60"#], r#""per-ip";q=100;w=60"#),
        ];
        for (inner, ours) in different {
            let fields = RateLimitFields::new("test");
            let (out, warned) = join_policies(&fields, inner, ours);
            assert_eq!(out, inner.join(", "), "the entry further in alone");
            assert!(warned, "{inner:?} + {ours}");
        }
        // A name further in only in `RateLimit` (a handler's own field) has no definition to
        // compare: warned about.
        let fields = RateLimitFields::new("test");
        let mut headers = HeaderMap::new();
        headers.insert(&RATELIMIT, HeaderValue::from_static(r#""per-ip";r=1;t=5"#));
        let policy = HeaderValue::from_static(r#""per-ip";q=100;w=60"#);
        fields.set(&mut headers, None, Some(&policy));
        assert!(!headers.contains_key(&RATELIMIT_POLICY));
        assert!(fields.warned.given());
    }

    #[test]
    fn a_field_name_reads_as_the_policy_name() {
        assert_eq!(
            name_of_field(br#"caf%C3%A9 \"x\" 100%25"#),
            "café \"x\" 100%"
        );
        assert_eq!(name_of_field(b"per-ip"), "per-ip");
        assert_eq!(name_of_field(b"%4"), "%4", "not an escape: as it is");
    }
}

/// The fields' join over arbitrary field lines: valid lists, lists that are not valid at all
/// (a quote never closed, a stray escape, empty members, non-ASCII bytes), split over lines.
/// From a fixed seed, so a failure names a case that reproduces.
#[cfg(test)]
mod fields_fuzz {
    use super::*;

    /// A field line of bytes a `HeaderValue` holds (tab, visible ASCII, obs-text), drawn
    /// mostly from the structured-field syntax and two names, so that names collide.
    fn line(rng: &mut fastrand::Rng) -> HeaderValue {
        const PIECES: &[&[u8]] = &[
            b"\"per-ip\"",
            b"per-ip",
            b"\"a, b\"",
            b"\"x\\\"y\"",
            b"\"x\\\\\"",
            b"\"",
            b"\\",
            b",",
            b", ",
            b";",
            b";q=1",
            b";w=60",
            b";r=",
            b"=",
            b" ",
            b"\t",
            b"(",
            b")",
            b"\"caf%C3%A9\"",
            b"%",
            b"%4",
            b"%zz",
            b"\xc3\xa9",
            b"\xff",
            b"a",
            b"*",
        ];
        let mut bytes = Vec::new();
        for _ in 0..rng.usize(0..12) {
            if rng.u8(..) < 40 {
                let b = rng.u8(..);
                if b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80 {
                    bytes.push(b);
                }
            } else {
                bytes.extend_from_slice(PIECES[rng.usize(..PIECES.len())]);
            }
        }
        HeaderValue::from_bytes(&bytes).expect("only bytes a header value holds")
    }

    fn lines(rng: &mut fastrand::Rng) -> Vec<HeaderValue> {
        (0..rng.usize(0..3)).map(|_| line(rng)).collect()
    }

    /// Every field line further in stays, in order, and after them only entries of ours
    /// whose names neither field further in has; with no name shared, the plain join.
    #[test]
    fn any_field_lines_join_without_panicking_or_losing_an_entry_further_in() {
        let mut rng = fastrand::Rng::with_seed(0x5eed_0053);
        for case in 0..100_000 {
            let inner = [lines(&mut rng), lines(&mut rng)];
            let ours = [
                rng.bool().then(|| line(&mut rng)),
                rng.bool().then(|| line(&mut rng)),
            ];
            let mut headers = HeaderMap::new();
            for (name, lines) in [&RATELIMIT, &RATELIMIT_POLICY].into_iter().zip(&inner) {
                for line in lines {
                    headers.append(name, line.clone());
                }
            }
            let fields = RateLimitFields::new("fuzz");
            fields.set(&mut headers, ours[0].clone(), ours[1].as_ref());
            let further_in: Vec<&HeaderValue> = inner.iter().flatten().collect();
            let shared = ours
                .iter()
                .flatten()
                .any(|ours| shares_a_name(&further_in, ours));
            let fields = [&RATELIMIT, &RATELIMIT_POLICY]
                .into_iter()
                .zip(&inner)
                .zip(&ours);
            for ((name, inner), ours) in fields {
                let out: Vec<&HeaderValue> = headers.get_all(name).iter().collect();
                let out = hardening_errors::join_header_values(&out);
                let out = out.as_ref().map_or(&b""[..], HeaderValue::as_bytes);
                let inner: Vec<&HeaderValue> = inner.iter().collect();
                let plain: Vec<&HeaderValue> = inner.iter().copied().chain(ours).collect();
                let plain = hardening_errors::join_header_values(&plain);
                let plain = plain.as_ref().map_or(&b""[..], HeaderValue::as_bytes);
                let context = || {
                    let out = String::from_utf8_lossy(out);
                    format!("case {case}: {name} {inner:?} + {ours:?} -> {out:?}")
                };
                if !shared {
                    assert_eq!(out, plain, "{}", context());
                    continue;
                }
                let inner = hardening_errors::join_header_values(&inner);
                let inner = inner.as_ref().map_or(&b""[..], HeaderValue::as_bytes);
                let ours = match out.strip_prefix(inner) {
                    Some(rest) if inner.is_empty() => rest,
                    Some(rest) if rest.is_empty() => rest,
                    Some(rest) => rest
                        .strip_prefix(b", ")
                        .unwrap_or_else(|| panic!("{}", context())),
                    None => panic!("{}", context()),
                };
                for member in members(ours) {
                    let name = member_name(member);
                    assert!(!has_name(&further_in, name), "{}", context());
                }
            }
        }
    }
}

/// The members of valid structured-field lists, each with its name: strings with escapes and
/// commas, tokens, parameters of both, whitespace around the commas. From a fixed seed.
#[cfg(test)]
mod members_model {
    use super::*;

    fn string(rng: &mut fastrand::Rng) -> String {
        // The content of an sf-string as written: printable ASCII, `"` and `\` escaped.
        let mut s = String::new();
        for _ in 0..rng.usize(0..6) {
            match rng.u8(0..10) {
                0 => s.push_str("\\\""),
                1 => s.push_str("\\\\"),
                2 => s.push(','),
                3 => s.push(';'),
                4 => s.push(' '),
                _ => s.push(rng.alphanumeric()),
            }
        }
        s
    }

    /// An sf-token: a letter, then token characters.
    fn token(rng: &mut fastrand::Rng) -> String {
        let mut s = String::from(rng.alphabetic());
        for _ in 0..rng.usize(0..5) {
            s.push(
                rng.choice([b'-', b':', b'/', b'*', b'.', b'a', b'9'])
                    .unwrap() as char,
            );
        }
        s
    }

    #[test]
    fn each_member_of_a_valid_list_has_its_name() {
        let mut rng = fastrand::Rng::with_seed(0x5eed_0053);
        for case in 0..100_000 {
            let mut list = String::new();
            let mut names = Vec::new();
            for i in 0..rng.usize(1..5) {
                if i > 0 {
                    // Optional whitespace on both sides of the comma.
                    for at in 0..2 {
                        if at == 1 {
                            list.push(',');
                        }
                        for _ in 0..rng.usize(0..3) {
                            list.push(if rng.bool() { ' ' } else { '\t' });
                        }
                    }
                }
                let name = if rng.bool() {
                    let s = string(&mut rng);
                    list.push_str(&format!("\"{s}\""));
                    s
                } else {
                    let t = token(&mut rng);
                    list.push_str(&t);
                    t
                };
                names.push(name);
                for _ in 0..rng.usize(0..3) {
                    list.push(';');
                    list.push_str(&token(&mut rng).to_ascii_lowercase());
                    match rng.u8(0..3) {
                        0 => list.push_str(&format!("=\"{}\"", string(&mut rng))),
                        1 => list.push_str(&format!("={}", rng.u32(..))),
                        _ => {}
                    }
                }
            }
            let found: Vec<String> = members(list.as_bytes())
                .map(|m| String::from_utf8(member_name(m).to_vec()).unwrap())
                .collect();
            assert_eq!(found, names, "case {case}: {list}");
        }
    }
}
