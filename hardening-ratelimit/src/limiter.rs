//! The keyed limiter: several policies per request, decided all-or-nothing.

use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock, Reference};
use governor::nanos::Nanos;
use governor::state::keyed::{DashMapStateStore, ShrinkableKeyedStateStore};
use governor::state::{InMemoryState, NotKeyed, StateStore};
use hardening_errors::WarnOnce;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::Quota;

/// A key computed by your own function of the request (a tenant from a header, a plan tier
/// from the principal); `None` leaves the request uncounted by that policy.
#[derive(Clone)]
pub struct KeyFn(Arc<KeyFnInner>);

type KeyFnInner = dyn Fn(&RequestKeys<'_>) -> Option<String> + Send + Sync;

impl KeyFn {
    /// Wraps `f`.
    pub fn new(f: impl Fn(&RequestKeys<'_>) -> Option<String> + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }
}

impl fmt::Debug for KeyFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyFn(..)")
    }
}

impl PartialEq for KeyFn {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for KeyFn {}

/// What a policy counts by.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyKind {
    /// The client IP; IPv6 addresses grouped by their first `ipv6_prefix` bits (a /64 is one
    /// subscriber, who could otherwise rotate through 2^64 addresses), except IPv4-mapped,
    /// NAT64 `64:ff9b::/96`, 6to4 `2002::/16` and Teredo `2001:0::/32` ones, which count as
    /// the IPv4 client they carry, and local-use NAT64 `64:ff9b:1::/48` ones, which count by
    /// the whole address.
    ClientIp {
        /// Prefix length for IPv6 grouping.
        ipv6_prefix: u8,
    },
    /// The value of a request header (an API key id, say); a value over 256 bytes or not
    /// visible ASCII is counted by a digest of it. Only the first of repeated headers counts.
    Header(HeaderName),
    /// The authenticated principal ([`hardening_errors::PrincipalId`] in the request
    /// extensions, put there by the auth layer); anonymous requests are not counted by it.
    Principal,
    /// The authenticated principal's tenant ([`hardening_errors::TenantId`] in the request
    /// extensions, which `hardening-auth`'s `AuthLayer` puts there from a verified token's
    /// `tenant` or `tid` claim): one budget shared by every user of a customer account.
    /// Requests without a tenant (anonymous ones, or a token without the claim) are not
    /// counted by it.
    Tenant,
    /// The route: axum's matched path template (`/notes/{id}`) when the limiter runs inside
    /// the router, else the request path.
    Route,
    /// Your own function of the request (keys over 256 bytes are counted by a digest). It
    /// may be called more than once per request (`CostLayer` asks whether any policy counts
    /// the request before it reserves): keep it a pure, cheap function of its input.
    Custom(KeyFn),
    /// Several keys together (per principal *and* route, say); a request missing any part is
    /// not counted by the policy.
    Composite(Vec<KeyKind>),
    /// Everyone together.
    Global,
}

/// A policy's name: a `&'static str` (copied for free on every decision) or shared text.
///
/// The name goes into the `RateLimit` and `RateLimit-Policy` fields as a structured-field
/// string (RFC 9651 §3.3.3), which holds printable ASCII only: there `"` and `\` are escaped
/// with a backslash, and each byte of any other character (a control character, non-ASCII
/// text), and `%` itself, is written as `%XX` (`café` as `caf%C3%A9`), so two names never
/// share a field. Elsewhere (problems, logs) the name is the text as given. The field form
/// is made once, with the name, not per response. A name that is empty or only whitespace
/// reports nothing anyone can read: a limiter refuses it
/// ([`LimiterConfigError::BlankPolicyName`]).
#[derive(Clone)]
pub struct PolicyName(NameRepr);

#[derive(Clone)]
enum NameRepr {
    Static(&'static str),
    Shared(Arc<str>),
    /// A name that is not its own structured-field string: both forms, made once.
    Escaped(Arc<EscapedName>),
}

struct EscapedName {
    name: Box<str>,
    /// The structured-field string's content, without its quotes.
    field: Box<str>,
}

impl PolicyName {
    /// The name.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            NameRepr::Static(s) => s,
            NameRepr::Shared(s) => s,
            NameRepr::Escaped(e) => &e.name,
        }
    }

    /// The name as the content of a structured-field string (between its quotes).
    #[inline]
    fn field(&self) -> &str {
        match &self.0 {
            NameRepr::Escaped(e) => &e.field,
            _ => self.as_str(),
        }
    }

    /// `==`, answered at once for the same text in memory (a clone of the same name).
    #[inline]
    fn is(&self, other: &Self) -> bool {
        let (a, b) = (self.as_str(), other.as_str());
        std::ptr::eq(a, b) || a == b
    }

    /// `name` with its field form, when that differs from it.
    fn escaped(name: &str) -> Option<Self> {
        let plain = |b: u8| matches!(b, b' '..=b'~') && !matches!(b, b'"' | b'\\' | b'%');
        if name.bytes().all(plain) {
            return None;
        }
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        let mut field = String::with_capacity(name.len() + 8);
        for b in name.bytes() {
            match b {
                b'"' | b'\\' => {
                    field.push('\\');
                    field.push(char::from(b));
                }
                _ if plain(b) => field.push(char::from(b)),
                // `%`, controls and each byte of a non-ASCII character: decodable, so two
                // names never give one field.
                _ => {
                    field.push('%');
                    field.push(char::from(HEX[usize::from(b >> 4)]));
                    field.push(char::from(HEX[usize::from(b & 15)]));
                }
            }
        }
        Some(Self(NameRepr::Escaped(Arc::new(EscapedName {
            name: name.into(),
            field: field.into(),
        }))))
    }
}

// By the text: a static name and the same name made from a `String` are one name.
impl PartialEq for PolicyName {
    fn eq(&self, other: &Self) -> bool {
        self.is(other)
    }
}

impl Eq for PolicyName {}

impl std::hash::Hash for PolicyName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl std::ops::Deref for PolicyName {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<&'static str> for PolicyName {
    fn from(s: &'static str) -> Self {
        Self::escaped(s).unwrap_or(Self(NameRepr::Static(s)))
    }
}

impl From<String> for PolicyName {
    fn from(s: String) -> Self {
        Self::escaped(&s).unwrap_or_else(|| Self(NameRepr::Shared(s.into())))
    }
}

impl PartialEq<str> for PolicyName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for PolicyName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for PolicyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for PolicyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// One rate-limit policy: a name (used in headers and problems), a quota, what it counts by.
/// It enforces unless made [`shadow`](Self::shadow).
///
/// ```
/// use std::num::NonZeroU32;
/// use hardening_ratelimit::{Decision, Policy, Quota, RateLimiter, RequestKeys};
///
/// let one = Quota::per_minute(NonZeroU32::new(1).unwrap());
/// let limiter = RateLimiter::new([
///     Policy::per_header("per-api-key", one, http::HeaderName::from_static("x-api-key")),
///     Policy::global("everyone", one).shadow(), // reported, never refused
/// ]);
/// let api_key = |key: &'static str| {
///     let mut headers = http::HeaderMap::new();
///     headers.insert("x-api-key", http::HeaderValue::from_static(key));
///     headers
/// };
/// let (a, b) = (api_key("a"), api_key("b"));
/// assert!(matches!(limiter.check(&RequestKeys::new(None, &a), 1), Decision::Allowed(_)));
/// // Over the global budget, but that policy only watches.
/// assert!(matches!(limiter.check(&RequestKeys::new(None, &b), 1), Decision::Shadowed { .. }));
/// assert!(matches!(limiter.check(&RequestKeys::new(None, &a), 1), Decision::Limited { .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    name: PolicyName,
    quota: Quota,
    key: KeyKind,
    shadow: bool,
}

impl Policy {
    /// A policy per client IP (IPv6 grouped by /64).
    pub fn per_client_ip(name: impl Into<PolicyName>, quota: Quota) -> Self {
        Self {
            name: name.into(),
            quota,
            key: KeyKind::ClientIp {
                ipv6_prefix: SUBSCRIBER_PREFIX,
            },
            shadow: false,
        }
    }

    /// A policy per value of `header`; requests without it are not counted by this policy.
    pub fn per_header(name: impl Into<PolicyName>, quota: Quota, header: HeaderName) -> Self {
        Self {
            name: name.into(),
            quota,
            key: KeyKind::Header(header),
            shadow: false,
        }
    }

    /// One budget shared by every request.
    pub fn global(name: impl Into<PolicyName>, quota: Quota) -> Self {
        Self {
            name: name.into(),
            quota,
            key: KeyKind::Global,
            shadow: false,
        }
    }

    /// A policy counting by any [`KeyKind`]: a route, a function, a composite.
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use hardening_ratelimit::{KeyKind, Policy, Quota};
    ///
    /// // Ten a minute per user per route.
    /// let p = Policy::keyed(
    ///     "per-user-route",
    ///     Quota::per_minute(NonZeroU32::new(10).unwrap()),
    ///     KeyKind::Composite(vec![KeyKind::Principal, KeyKind::Route]),
    /// );
    /// # let _ = p;
    /// ```
    pub fn keyed(name: impl Into<PolicyName>, quota: Quota, key: KeyKind) -> Self {
        Self {
            name: name.into(),
            quota,
            key,
            shadow: false,
        }
    }

    /// A policy per authenticated principal (user, service account): the place for
    /// long-period budgets such as `Quota::per_day(100_000)` tokens.
    pub fn per_principal(name: impl Into<PolicyName>, quota: Quota) -> Self {
        Self::keyed(name, quota, KeyKind::Principal)
    }

    /// A policy per tenant ([`KeyKind::Tenant`]): one budget for all the users of a customer
    /// account, such as a daily cost budget per tenant beside each user's own. Requests
    /// without a tenant are not counted by it.
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use hardening_ratelimit::{Policy, Quota, RateLimiter, RequestKeys};
    ///
    /// let limiter = RateLimiter::new([Policy::per_tenant(
    ///     "tenant-per-day",
    ///     Quota::per_day(NonZeroU32::new(2).unwrap()),
    /// )]);
    /// let headers = http::HeaderMap::new();
    /// let of = |user, tenant| {
    ///     RequestKeys::new(None, &headers).principal(Some(user)).tenant(Some(tenant))
    /// };
    /// assert!(limiter.check(&of("ann", "acme"), 1).is_admitted());
    /// assert!(limiter.check(&of("bo", "acme"), 1).is_admitted());
    /// // The tenant's budget is spent, whoever asks.
    /// assert!(!limiter.check(&of("cy", "acme"), 1).is_admitted());
    /// assert!(limiter.check(&of("cy", "globex"), 1).is_admitted());
    /// ```
    pub fn per_tenant(name: impl Into<PolicyName>, quota: Quota) -> Self {
        Self::keyed(name, quota, KeyKind::Tenant)
    }

    /// **Loosens**: shadow mode. The policy decides and reports (a [`Decision::Shadowed`]
    /// that the layers of this crate and `hardening-core` log as a `rate_limit_shadow`
    /// security event) but never refuses.
    /// Use it to roll out a new limit and watch whom it would hit before enforcing it.
    #[must_use]
    pub fn shadow(mut self) -> Self {
        self.shadow = true;
        self
    }

    /// Whether the policy is in shadow mode.
    pub fn is_shadow(&self) -> bool {
        self.shadow
    }

    /// The policy's quota.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// What the policy counts by.
    pub fn key_kind(&self) -> &KeyKind {
        &self.key
    }

    /// Groups IPv6 clients by this prefix length instead of /64 (client-IP policies only;
    /// more than 128 is 128). 0, which would put every IPv6 client in one group, is refused
    /// when the limiter is built ([`LimiterConfigError::Ipv6PrefixZero`]).
    #[must_use]
    pub fn ipv6_prefix(mut self, bits: u8) -> Self {
        if let KeyKind::ClientIp { ipv6_prefix } = &mut self.key {
            *ipv6_prefix = bits.min(128);
        }
        self
    }

    /// The policy's name.
    pub fn name(&self) -> &PolicyName {
        &self.name
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key {
    Ip(IpAddr),
    Text(Arc<str>),
    Global,
}

// By hand: one write per key (the derived impl hashes two discriminants and a length first).
impl std::hash::Hash for Key {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            Self::Ip(IpAddr::V4(v4)) => state.write_u32(u32::from(*v4)),
            Self::Ip(IpAddr::V6(v6)) => state.write_u128(u128::from(*v6)),
            Self::Text(text) => state.write(text.as_bytes()),
            Self::Global => state.write_u8(0),
        }
    }
}

/// What the limiter needs to know about a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestKeys<'a> {
    /// The client IP, if known.
    pub client_ip: Option<IpAddr>,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The authenticated principal's id, if any.
    pub principal: Option<&'a str>,
    /// The authenticated principal's tenant, if any.
    pub tenant: Option<&'a str>,
    /// The route (matched path template, or the path), if known.
    pub route: Option<&'a str>,
}

impl<'a> RequestKeys<'a> {
    /// The keys of a request: client IP and headers, no principal.
    pub fn new(client_ip: Option<IpAddr>, headers: &'a HeaderMap) -> Self {
        Self {
            client_ip,
            headers,
            principal: None,
            tenant: None,
            route: None,
        }
    }

    /// The keys of an HTTP request as the layers of this crate read them: the client IP from
    /// the [`RequestContext`](hardening_errors::RequestContext) `Hardening` put there (which
    /// has followed trusted proxies), else axum's `ConnectInfo<SocketAddr>`; the principal from
    /// [`PrincipalId`](hardening_errors::PrincipalId), the tenant from
    /// [`TenantId`](hardening_errors::TenantId), the route from axum's `MatchedPath` (else the
    /// path).
    pub fn from_http(
        extensions: &'a http::Extensions,
        headers: &'a HeaderMap,
        uri: &'a http::Uri,
    ) -> Self {
        use axum::extract::MatchedPath;
        Self {
            client_ip: hardening_errors::RequestContext::client_ip_of(extensions),
            headers,
            principal: extensions
                .get::<hardening_errors::PrincipalId>()
                .map(hardening_errors::PrincipalId::as_str),
            tenant: extensions
                .get::<hardening_errors::TenantId>()
                .map(hardening_errors::TenantId::as_str),
            route: Some(
                extensions
                    .get::<MatchedPath>()
                    .map_or(uri.path(), MatchedPath::as_str),
            ),
        }
    }

    /// With the route (for [`KeyKind::Route`]).
    #[must_use]
    pub fn route(mut self, route: Option<&'a str>) -> Self {
        self.route = route;
        self
    }

    /// With the authenticated principal's id.
    #[must_use]
    pub fn principal(mut self, principal: Option<&'a str>) -> Self {
        self.principal = principal;
        self
    }

    /// With the authenticated principal's tenant (for [`KeyKind::Tenant`]).
    #[must_use]
    pub fn tenant(mut self, tenant: Option<&'a str>) -> Self {
        self.tenant = tenant;
        self
    }
}

/// One policy's state after a decision, for the `RateLimit` header. Computed on demand: a
/// decision only records where the bucket stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyStatus {
    name: PolicyName,
    /// Nanoseconds of the bucket in use.
    used: u64,
    /// Nanoseconds per unit.
    interval: u64,
    /// Nanoseconds of burst.
    capacity: u64,
    /// The policy's `Quota::reset_slack`: what the header's reset leaves out.
    slack: u64,
}

impl PolicyStatus {
    /// `slack` is the policy's `Quota::reset_slack`, made when the store was built.
    #[inline]
    pub(crate) fn new(
        name: PolicyName,
        used: u64,
        interval: u64,
        capacity: u64,
        slack: u64,
    ) -> Self {
        Self {
            name,
            used,
            interval: interval.max(1),
            capacity,
            slack,
        }
    }

    /// The policy's name.
    pub fn name(&self) -> &PolicyName {
        &self.name
    }

    /// Units left right now.
    pub fn remaining(&self) -> u32 {
        u32::try_from((self.capacity - self.used.min(self.capacity)) / self.interval)
            .unwrap_or(u32::MAX)
    }

    /// Time until the bucket is full again.
    pub fn reset(&self) -> Duration {
        Duration::from_nanos(self.used)
    }

    /// [`reset`](Self::reset) in whole seconds: the `t` of the `RateLimit` header. Rounded
    /// up, less the slack that rounding the interval up adds to a whole burst (a few ns in
    /// memory, µs in Redis, under a second whatever the rate), so that a burst drained at
    /// once reads as its period (`per_minute(7)`: `t=60`, not 61). `t` is never short of
    /// `reset` by that slack or more, and is 0 only for a full bucket.
    #[inline]
    fn reset_secs(&self) -> u64 {
        self.used
            .saturating_sub(self.slack)
            .div_ceil(1_000_000_000)
            .max(u64::from(self.used > 0))
    }
}

/// Every policy's state after a decision; one inline (no allocation) or several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statuses(StatusesRepr);

#[derive(Debug, Clone, PartialEq, Eq)]
enum StatusesRepr {
    None,
    One(PolicyStatus),
    Many(Vec<PolicyStatus>),
}

impl std::ops::Deref for Statuses {
    type Target = [PolicyStatus];

    fn deref(&self) -> &[PolicyStatus] {
        match &self.0 {
            StatusesRepr::None => &[],
            StatusesRepr::One(s) => std::slice::from_ref(s),
            StatusesRepr::Many(v) => v,
        }
    }
}

impl From<Vec<PolicyStatus>> for Statuses {
    fn from(v: Vec<PolicyStatus>) -> Self {
        Self(StatusesRepr::Many(v))
    }
}

/// The decision for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Every policy admitted it; each has been charged.
    Allowed(Statuses),
    /// Admitted only because every policy that refused it is in shadow mode; the enforcing
    /// policies (and the shadow ones that admitted it) have been charged.
    Shadowed {
        /// The shadow policies that would have refused it.
        violated: Vec<PolicyName>,
        /// Every policy's state.
        statuses: Statuses,
    },
    /// At least one enforcing policy refused it; none has been charged.
    Limited {
        /// When the request would be admitted.
        retry_after: Duration,
        /// The policies that refused it.
        violated: Vec<PolicyName>,
        /// Every policy's state.
        statuses: Statuses,
    },
}

impl Decision {
    /// Whether the request may go on ([`Allowed`](Self::Allowed) or
    /// [`Shadowed`](Self::Shadowed)).
    pub fn is_admitted(&self) -> bool {
        !matches!(self, Self::Limited { .. })
    }

    /// Every policy's state, for the `RateLimit` header.
    pub fn statuses(&self) -> &Statuses {
        match self {
            Self::Allowed(s)
            | Self::Shadowed { statuses: s, .. }
            | Self::Limited { statuses: s, .. } => s,
        }
    }
}

/// A keyed GCRA rate limiter over governor's concurrent state store, with several policies
/// decided **all-or-nothing**: a request one policy refuses costs nothing under the others.
///
/// Memory stays bounded without a background thread. A key is tracked only once a request
/// under it is admitted (a refused request, or a look at [`statuses`](Self::statuses), adds
/// none). Now and then (after twice as many decisions as there are keys, at least 65 536)
/// keys whose buckets are full again are dropped, which changes no decision. Checked every
/// 256 decisions, a policy tracking more keys than its cap (100 000 by default) is brought
/// down to 90 % of the cap: first by dropping the buckets that are full again, and only if
/// that is not enough by forgetting buckets that still limit their keys, those nearest to
/// full first (logged once per policy as a warning, since it loosens those keys' limits).
/// Eviction can only make the limiter more lenient for those keys, never stricter. A million
/// keys take about 70 MB.
///
/// ```
/// use std::num::NonZeroU32;
/// use hardening_ratelimit::{Decision, Policy, Quota, RateLimiter, RequestKeys};
///
/// let limiter = RateLimiter::new([Policy::per_client_ip(
///     "per-ip",
///     Quota::per_minute(NonZeroU32::new(60).unwrap()).burst(NonZeroU32::new(2).unwrap()),
/// )]);
/// let headers = http::HeaderMap::new();
/// let keys = RequestKeys::new(Some("203.0.113.7".parse().unwrap()), &headers);
/// assert!(matches!(limiter.check(&keys, 1), Decision::Allowed(_)));
/// assert!(matches!(limiter.check(&keys, 1), Decision::Allowed(_)));
/// assert!(matches!(limiter.check(&keys, 1), Decision::Limited { .. }));
/// ```
#[derive(Clone)]
pub struct RateLimiter(Arc<Inner>);

struct Inner {
    policies: Vec<PolicyState>,
    // governor's default clock (quanta: a TSC read, cheaper than `Instant::now`).
    clock: DefaultClock,
    start: <DefaultClock as Clock>::Instant,
    max_keys: std::sync::atomic::AtomicUsize,
    /// Decisions so far, counted in steps of 256 (one step per look at the store).
    decisions: std::sync::atomic::AtomicU64,
    /// `RateLimit-Policy`, computed once.
    policy_header: Option<HeaderValue>,
    /// The `RateLimit` value most responses carry, computed once (one policy only).
    usual_header: Option<UsualHeader>,
}

/// A one-policy limiter's `RateLimit` value after one unit taken from a full bucket: what
/// every client under its rate gets (its bucket then holds exactly one unit's time).
struct UsualHeader {
    status: PolicyStatus,
    /// Interned: cloned per response without an allocation or a shared reference count.
    value: HeaderValue,
}

impl UsualHeader {
    fn for_policy(p: &PolicyState) -> Option<Self> {
        let status = p.status(p.interval, 0);
        let text = String::from_utf8(write_fields_to_vec(std::slice::from_ref(&status))?).ok()?;
        Some(Self {
            value: hardening_errors::static_header_value(text).ok()?,
            status,
        })
    }

    /// `s` is this status (so its value is this value): compared without a division or a
    /// string comparison when the name is the very same text.
    #[inline]
    fn matches(&self, s: &PolicyStatus) -> bool {
        let usual = &self.status;
        s.used == usual.used
            && s.interval == usual.interval
            && s.capacity == usual.capacity
            && s.slack == usual.slack
            && s.name.is(&usual.name)
    }
}

struct PolicyState {
    policy: Policy,
    store: DashMapStateStore<Key>,
    /// The decision count at which idle keys are next swept.
    next_sweep: std::sync::atomic::AtomicU64,
    /// Whether the warning that keys still limited had to be evicted was logged.
    warned_eviction: WarnOnce,
    /// Whether the warning that an overrun was charged only up to the debt bound was logged.
    warned_overrun: WarnOnce,
    interval: u64,
    capacity: u64,
    /// `Quota::reset_slack`, for the `RateLimit` header.
    slack: u64,
}

/// One policy's charge for a reservation: its key, and the bucket's TAT right after the
/// charge (where the reservation's units end), so that a refund gives back only the units
/// time has not refilled yet.
#[derive(Debug)]
struct Charge {
    policy: usize,
    key: Key,
    tat: u64,
}

/// Classes of the time a bucket needs to be full again, in order: 16 of a nanosecond each,
/// then 16 per power of two (an HDR histogram, exact to 1/16 of the time).
const UNTIL_FULL_CLASSES: usize = 16 * 61;

#[inline]
fn until_full_class(nanos: u64) -> usize {
    if nanos < 16 {
        return nanos as usize;
    }
    // `nanos` is in [2^octave, 2^(octave + 1)), octave 4 to 63; its next 4 bits are the step.
    let octave = 63 - nanos.leading_zeros() as usize;
    let step = (nanos >> (octave - 4)) as usize & 15;
    (octave - 3) * 16 + step
}

/// A bucket's TAT (nanoseconds; `None` for a fresh one), read without changing it.
#[inline]
fn tat_in(state: &InMemoryState) -> Option<Nanos> {
    state
        .measure_and_replace(&NotKeyed::NonKey, Err::<((), Nanos), _>)
        .err()
        .flatten()
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field(
                "policies",
                &self
                    .0
                    .policies
                    .iter()
                    .map(|p| &p.policy)
                    .collect::<Vec<_>>(),
            )
            .field(
                "max_keys",
                &self.0.max_keys.load(std::sync::atomic::Ordering::Relaxed),
            )
            .finish()
    }
}

/// Whether a policy would admit, and what its bucket would then hold.
enum Probe {
    Admit { new_tat: u64 },
    Refuse { retry_after: u64 },
}

impl PolicyState {
    /// Whether `cost` units fit in the bucket now, charging nothing.
    ///
    /// A cost of 0 (a reservation of nothing: the request pays what it reports when it is
    /// settled) charges nothing but is admitted only where one unit would be: a bucket with
    /// nothing left refuses it like any other request.
    ///
    /// A cost more than a full bucket holds never fits: refused with the longest wait there
    /// is (`u64::MAX` ns, 584 years), not the time until the bucket is full, after which it
    /// would be refused again.
    #[inline]
    fn probe(&self, tat: Option<Nanos>, now: u64, cost: u64) -> Probe {
        let charge = self.interval.saturating_mul(cost);
        if charge > self.capacity {
            return Probe::Refuse {
                retry_after: u64::MAX,
            };
        }
        let tat = tat.map_or(now, |t| t.as_u64().max(now));
        let new_tat = tat.saturating_add(charge);
        let needed = if cost == 0 {
            new_tat.saturating_add(self.interval)
        } else {
            new_tat
        };
        if needed - now <= self.capacity {
            Probe::Admit { new_tat }
        } else {
            Probe::Refuse {
                retry_after: needed - now - self.capacity,
            }
        }
    }

    /// Decides and, if admitted, charges in one atomic step: `Ok(new TAT)` or
    /// `Err((retry_after, current TAT))`. Only an admitted charge makes an entry for a key
    /// not tracked yet: a refused request leaves the store as it was.
    #[inline]
    fn charge(&self, key: &Key, now: u64, cost: u64) -> Result<u64, (u64, u64)> {
        let decide = |tat: Option<Nanos>| match self.probe(tat, now, cost) {
            Probe::Admit { new_tat } => Ok((new_tat, Nanos::from(new_tat))),
            Probe::Refuse { retry_after } => Err((retry_after, tat.map_or(now, |t| t.as_u64()))),
        };
        // What governor's `measure_and_replace` does (one lookup for a tracked key, a second
        // to insert an untracked one), except that nothing is inserted for a refusal.
        if let Some(state) = self.store.get(key) {
            return state.measure_and_replace(&NotKeyed::NonKey, decide);
        }
        // Untracked: a full bucket. Refused (a cost over the burst), it stays untracked;
        // admitted at no cost, there is nothing to record either.
        let (new_tat, _) = decide(None)?;
        if cost == 0 {
            return Ok(new_tat);
        }
        self.store
            .entry(key.clone())
            .or_default()
            .measure_and_replace(&NotKeyed::NonKey, decide)
    }

    /// The bucket's TAT for `key`, read without making an entry for a key not tracked.
    #[inline]
    fn tat(&self, key: &Key) -> Option<Nanos> {
        self.store.get(key).and_then(|state| tat_in(&state))
    }

    /// Over the cap even without the buckets that are full again: forgets `count` buckets
    /// that still limit their keys, those that would be full again soonest (the least
    /// loosening), and warns once. Two passes over the store and a histogram on the stack
    /// (no list of every bucket): the order is exact to 1/16 of the time left.
    #[cold]
    fn evict_limiting(&self, count: usize, max_keys: usize, now: u64) {
        let left_of = |state: &InMemoryState| {
            until_full_class(tat_in(state).map_or(0, Nanos::as_u64).saturating_sub(now))
        };
        let mut classes = [0usize; UNTIL_FULL_CLASSES];
        for entry in self.store.iter() {
            classes[left_of(entry.value())] += 1;
        }
        // The class where the `count` nearest to full end: all below it go, and enough of it.
        let mut below = 0;
        let Some(cut) = classes.iter().position(|n| {
            below += n;
            below >= count
        }) else {
            return;
        };
        let mut in_cut = count - (below - classes[cut]);
        let mut evicted = 0;
        self.store.retain(|_, state| {
            let class = left_of(state);
            let go = class < cut || (class == cut && in_cut > 0);
            if go {
                in_cut -= usize::from(class == cut);
                evicted += 1;
            }
            !go
        });
        if self.warned_eviction.first() {
            tracing::warn!(
                target: "hardening",
                policy = %self.policy.name,
                max_keys,
                evicted,
                "hardening loosened: rate-limit policy `{}` tracks more keys still limited \
                 than its cap; the buckets nearest to full were forgotten (their keys start \
                 afresh). Raise `RateLimiter::max_keys` if this is legitimate traffic",
                self.policy.name
            );
        }
    }

    /// An overrun was charged only up to the debt bound: says so, once per policy (the
    /// policy's name and the numbers; never the key, which may be a principal or an API key).
    #[cold]
    fn warn_overrun(&self, overrun: u64) {
        if self.warned_overrun.first() {
            warn_overrun(&self.policy, overrun);
        }
    }

    #[inline]
    fn status(&self, tat: u64, now: u64) -> PolicyStatus {
        PolicyStatus::new(
            self.policy.name.clone(),
            tat.saturating_sub(now),
            self.interval,
            self.capacity,
            self.slack,
        )
    }
}

/// Why [`RateLimiter::try_new`] refused its policies.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimiterConfigError {
    /// No policies: the limiter would limit nothing.
    #[error("a RateLimiter needs at least one Policy: with none it would limit nothing")]
    NoPolicies,
    /// Two policies of this name: their `RateLimit` fields and 429 problems could not be
    /// told apart.
    #[error(
        "two rate-limit policies are named `{0}`: give each its own name (it is what the \
         RateLimit headers, 429 problems and logs report)"
    )]
    DuplicatePolicyName(String),
    /// A client-IP policy grouping IPv6 clients by `/0`: every IPv6 client would share one
    /// budget, which any one of them could spend for all.
    #[error("{}", ipv6_prefix_zero_message(.0))]
    Ipv6PrefixZero(String),
    /// A policy whose name is empty or only whitespace: the `RateLimit` fields, 429 problems
    /// and logs would report a policy no one can tell which it is.
    #[error("{}", blank_name_message(*.position, *.of, .name))]
    BlankPolicyName {
        /// Where the policy is in the list given, from 1.
        position: usize,
        /// How many policies were given.
        of: usize,
        /// The name given.
        name: String,
    },
}

hardening_errors::debug_as_message!(LimiterConfigError);

/// What the errors for a blank name, that of the `position`th of `of` policies, say.
pub(crate) fn blank_name_message(position: usize, of: usize, name: &str) -> String {
    format!(
        "rate-limit policy {position} (of {of}) is named {name:?}, which is blank: the \
         RateLimit and RateLimit-Policy headers, 429 problems and logs report a policy by its \
         name; give it a name that says what it limits, such as \"per-ip\" or \"tokens-per-day\""
    )
}

/// The first of these policies whose name is empty or only whitespace: its place from 1, how
/// many there are, and the name.
pub(crate) fn blank_name<'a>(
    policies: impl ExactSizeIterator<Item = &'a Policy>,
) -> Option<(usize, usize, &'a PolicyName)> {
    let of = policies.len();
    policies
        .map(Policy::name)
        .enumerate()
        .find(|(_, name)| name.trim().is_empty())
        .map(|(at, name)| (at + 1, of, name))
}

/// What the errors for policy `name`'s `/0` IPv6 grouping say.
pub(crate) fn ipv6_prefix_zero_message(name: &str) -> String {
    format!(
        "rate-limit policy `{name}` groups IPv6 clients by ipv6_prefix(0), so every IPv6 \
         client shares one budget that any one of them can spend: use 64 (the default, one \
         subscriber), 56 or 48 to group more, 128 for each address, or Policy::global for one \
         budget on purpose"
    )
}

/// The first of these policies that counts by client IP with IPv6 grouped by `/0`.
pub(crate) fn ipv6_prefix_zero<'a>(
    policies: impl IntoIterator<Item = &'a Policy>,
) -> Option<&'a PolicyName> {
    fn groups_by_zero(key: &KeyKind) -> bool {
        match key {
            KeyKind::ClientIp { ipv6_prefix } => *ipv6_prefix == 0,
            KeyKind::Composite(parts) => parts.iter().any(groups_by_zero),
            _ => false,
        }
    }
    policies
        .into_iter()
        .find(|p| groups_by_zero(p.key_kind()))
        .map(Policy::name)
}

/// The first name that two of these policies share. Names are compared as text: their
/// header forms are distinct just when they are (the `%XX` escaping can be undone).
pub(crate) fn duplicate_name<'a>(
    policies: impl IntoIterator<Item = &'a Policy>,
) -> Option<&'a PolicyName> {
    let mut seen = std::collections::HashSet::new();
    policies
        .into_iter()
        .map(Policy::name)
        .find(|name| !seen.insert(name.as_str()))
}

impl RateLimiter {
    /// A limiter for these policies, one or more, each with its own name. For a list made
    /// at run time use [`try_new`](Self::try_new), which returns these mistakes as errors.
    ///
    /// None would limit nothing, so an empty list does not build:
    ///
    /// ```compile_fail,E0080
    /// let limiter = hardening_ratelimit::RateLimiter::new([]);
    /// ```
    ///
    /// # Panics
    ///
    /// Where [`try_new`](Self::try_new) would return an error: two policies have the same
    /// name (their `RateLimit` fields could not be told apart), one's name is blank, or one
    /// groups IPv6 clients by `/0` ([`Policy::ipv6_prefix`]). The message names it.
    ///
    /// ```should_panic
    /// use std::num::NonZeroU32;
    /// use hardening_ratelimit::{Policy, Quota, RateLimiter};
    /// let quota = Quota::per_minute(NonZeroU32::new(60).unwrap());
    /// RateLimiter::new([Policy::per_client_ip("api", quota), Policy::global("api", quota)]);
    /// ```
    #[track_caller]
    pub fn new<const N: usize>(policies: [Policy; N]) -> Self {
        const {
            assert!(
                N > 0,
                "a RateLimiter needs at least one Policy: with none it would limit nothing"
            )
        };
        match Self::try_new(policies) {
            Ok(limiter) => limiter,
            // A mistake in the list written in the code: found on the first run.
            Err(err) => panic!("RateLimiter::new: {err}"),
        }
    }

    /// A limiter for these policies: none, a blank name (empty or only whitespace), two of
    /// one name, or IPv6 grouped by `/0`, is an error.
    ///
    /// # Errors
    ///
    /// [`LimiterConfigError::NoPolicies`], [`LimiterConfigError::BlankPolicyName`],
    /// [`LimiterConfigError::DuplicatePolicyName`] or [`LimiterConfigError::Ipv6PrefixZero`],
    /// in that order of checking.
    pub fn try_new(policies: impl IntoIterator<Item = Policy>) -> Result<Self, LimiterConfigError> {
        let limiter = Self::with_policies(policies);
        if limiter.0.policies.is_empty() {
            return Err(LimiterConfigError::NoPolicies);
        }
        if let Some((position, of, name)) = blank_name(limiter.policies()) {
            return Err(LimiterConfigError::BlankPolicyName {
                position,
                of,
                name: name.to_string(),
            });
        }
        if let Some(name) = duplicate_name(limiter.policies()) {
            return Err(LimiterConfigError::DuplicatePolicyName(name.to_string()));
        }
        if let Some(name) = ipv6_prefix_zero(limiter.policies()) {
            return Err(LimiterConfigError::Ipv6PrefixZero(name.to_string()));
        }
        Ok(limiter)
    }

    /// A limiter for these policies, none included (the Redis store's in-memory fallback,
    /// for the policies that fall back to it, may have none).
    pub(crate) fn with_policies(policies: impl IntoIterator<Item = Policy>) -> Self {
        let policies: Vec<PolicyState> = policies
            .into_iter()
            .map(|policy| {
                let interval = policy.quota.emission_interval_nanos();
                let capacity = policy.quota.capacity(interval, 1);
                PolicyState {
                    slack: policy.quota.reset_slack(capacity),
                    capacity,
                    interval,
                    store: DashMapStateStore::default(),
                    next_sweep: std::sync::atomic::AtomicU64::new(65_536),
                    warned_eviction: WarnOnce::new(),
                    warned_overrun: WarnOnce::new(),
                    policy,
                }
            })
            .collect();
        let clock = DefaultClock::default();
        Self(Arc::new(Inner {
            policy_header: policy_header_for(policies.iter().map(|p| &p.policy)),
            usual_header: match policies.as_slice() {
                [p] => UsualHeader::for_policy(p),
                _ => None,
            },
            policies,
            start: clock.now(),
            clock,
            max_keys: std::sync::atomic::AtomicUsize::new(100_000),
            decisions: std::sync::atomic::AtomicU64::new(0),
        }))
    }

    /// Tracks at most this many keys per policy (default 100 000). Applies to every clone.
    #[must_use]
    pub fn max_keys(self, max_keys: usize) -> Self {
        self.0
            .max_keys
            .store(max_keys.max(1), std::sync::atomic::Ordering::Relaxed);
        self
    }

    /// Decides a request costing `cost` units (1 for a plain request), charging every policy
    /// or none. A cost more than a policy's full bucket holds (its burst, or fewer for a
    /// burst capped at 2^63 ns of refill, see [`Quota::burst`](crate::Quota::burst)) is
    /// never admitted: its `retry_after` is the longest a store gives (`u64::MAX` ns here,
    /// `u64::MAX` µs in Redis; centuries either way).
    #[inline]
    pub fn check(&self, keys: &RequestKeys<'_>, cost: u32) -> Decision {
        let inner = &*self.0;
        let now = inner.clock.now().duration_since(inner.start).as_u64();
        self.check_at(keys, cost, now)
    }

    /// [`check`](Self::check) at a given time (nanoseconds since the limiter was made), for
    /// deterministic tests of the window arithmetic.
    #[doc(hidden)]
    #[inline]
    pub fn check_at(&self, keys: &RequestKeys<'_>, cost: u32, now: u64) -> Decision {
        self.decide(keys, u64::from(cost.max(1)), now, None)
    }

    /// Reserves `estimate` units (an LLM call's `max_tokens`, say) under every policy at once,
    /// all-or-nothing, before the work starts. On admission the [`Reservation`] settles the
    /// difference once the actual cost is known: [`Reservation::settle`] charges the actual
    /// cost instead (refunding the rest, or charging the overrun, up to one burst of debt),
    /// [`Reservation::refund`] gives back all that time has not refilled already. Dropping a
    /// reservation keeps the estimate charged.
    ///
    /// An `estimate` of 0 reserves nothing (the request pays what it settles), but it is not
    /// a free pass: it is admitted only while every policy has at least one unit left, and
    /// refused like any other request once a budget is spent.
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use hardening_ratelimit::{Policy, Quota, RateLimiter, RequestKeys};
    ///
    /// let tokens = RateLimiter::new([Policy::per_principal(
    ///     "tokens-per-day",
    ///     Quota::per_day(NonZeroU32::new(10_000).unwrap()),
    /// )]);
    /// let headers = http::HeaderMap::new();
    /// let keys = RequestKeys::new(None, &headers).principal(Some("user-1"));
    /// let (decision, reservation) = tokens.reserve(&keys, 4_000);
    /// assert!(decision.is_admitted());
    /// reservation.unwrap().settle(1_200); // the model used 1,200 tokens: 2,800 come back
    /// assert_eq!(tokens.statuses(&keys)[0].remaining(), 8_800);
    /// ```
    pub fn reserve(
        &self,
        keys: &RequestKeys<'_>,
        estimate: u32,
    ) -> (Decision, Option<Reservation>) {
        let inner = &*self.0;
        let now = inner.clock.now().duration_since(inner.start).as_u64();
        self.reserve_at(keys, estimate, now)
    }

    /// [`reserve`](Self::reserve) at a given time, for deterministic tests.
    #[doc(hidden)]
    pub fn reserve_at(
        &self,
        keys: &RequestKeys<'_>,
        estimate: u32,
        now: u64,
    ) -> (Decision, Option<Reservation>) {
        let mut charged = Vec::new();
        let decision = self.decide(keys, u64::from(estimate), now, Some(&mut charged));
        let reservation = decision.is_admitted().then(|| Reservation {
            limiter: self.clone(),
            charged,
            reserved: u64::from(estimate),
        });
        (decision, reservation)
    }

    /// Every policy's current state for these keys, charging nothing (a "usage" endpoint).
    pub fn statuses(&self, keys: &RequestKeys<'_>) -> Statuses {
        let inner = &*self.0;
        let now = inner.clock.now().duration_since(inner.start).as_u64();
        self.statuses_at(keys, now)
    }

    /// [`statuses`](Self::statuses) at a given time, for deterministic tests.
    #[doc(hidden)]
    pub fn statuses_at(&self, keys: &RequestKeys<'_>, now: u64) -> Statuses {
        let keyed: Vec<(usize, Key)> = self.keyed(keys);
        self.current(&keyed, now)
    }

    fn keyed(&self, keys: &RequestKeys<'_>) -> Vec<(usize, Key)> {
        self.0
            .policies
            .iter()
            .enumerate()
            .filter_map(|(i, p)| key_for(&p.policy.key, keys).map(|k| (i, k)))
            .collect()
    }

    fn current(&self, keyed: &[(usize, Key)], now: u64) -> Statuses {
        keyed
            .iter()
            .map(|(i, key)| {
                let p = &self.0.policies[*i];
                p.status(p.tat(key).map_or(now, Nanos::as_u64), now)
            })
            .collect::<Vec<_>>()
            .into()
    }

    fn statuses_from(&self, keyed: &[(usize, Key)], tats: &[u64], now: u64) -> Statuses {
        keyed
            .iter()
            .zip(tats)
            .map(|((i, _), tat)| self.0.policies[*i].status(*tat, now))
            .collect::<Vec<_>>()
            .into()
    }

    /// Moves every charged policy's bucket by `delta` units: a positive `delta` charges
    /// them on top (an overrun, up to one burst of debt), a negative one refunds them, as far
    /// as time has not already.
    fn adjust(&self, charged: &[Charge], delta: i64, now: u64) {
        for c in charged {
            let p = &self.0.policies[c.policy];
            let nanos = p.interval.saturating_mul(delta.unsigned_abs());
            if delta > 0 {
                // At most one burst of debt: full again within two bursts' time.
                let bound = now.saturating_add(p.capacity.saturating_mul(2));
                let clipped = p.store.measure_and_replace(&c.key, |tat| {
                    let from = tat.map_or(now, |t| t.as_u64()).max(now);
                    // Past `u64::MAX` is past any bound (which may have saturated there).
                    Ok::<_, ()>(match from.checked_add(nanos) {
                        Some(wanted) if wanted <= bound => (false, Nanos::from(wanted)),
                        _ => (true, Nanos::from(from.max(bound))),
                    })
                });
                if clipped == Ok(true) {
                    p.warn_overrun(delta.unsigned_abs());
                }
                continue;
            }
            // The charge left the bucket at `c.tat`, its units the last `nanos` before it;
            // by `now` time has refilled everything up to `now`. Only the part after `now`
            // can come back: the rest has been spent again since (a later charge may have
            // taken the refilled room), and giving it back would hand that room out twice.
            let refund = nanos.min(c.tat.saturating_sub(now));
            if refund == 0 {
                continue;
            }
            // An untracked key's bucket is full: nothing to give back, and no entry to make.
            if let Some(state) = p.store.get(&c.key) {
                let _ = state.measure_and_replace(&NotKeyed::NonKey, |tat| {
                    match tat.map(Nanos::as_u64) {
                        // Never past full: a bucket is full at `now`.
                        Some(tat) if tat > now => {
                            Ok(((), Nanos::from(tat.saturating_sub(refund).max(now))))
                        }
                        _ => Err(()),
                    }
                });
            }
        }
    }

    /// The decision proper. `charged`, when given, receives the (policy, key) pairs charged.
    #[inline]
    fn decide(
        &self,
        keys: &RequestKeys<'_>,
        cost: u64,
        now: u64,
        charged: Option<&mut Vec<Charge>>,
    ) -> Decision {
        let inner = &*self.0;
        // One enforcing policy: a single atomic decide-and-charge is already all-or-nothing
        // (and needs no list of keys).
        if let [p] = inner.policies.as_slice()
            && !p.policy.shadow
        {
            let Some(key) = key_for(&p.policy.key, keys) else {
                return Decision::Allowed(Statuses(StatusesRepr::None));
            };
            let result = p.charge(&key, now, cost);
            self.housekeeping(now);
            return match result {
                Ok(tat) => {
                    if let Some(charged) = charged {
                        charged.push(Charge {
                            policy: 0,
                            key,
                            tat,
                        });
                    }
                    Decision::Allowed(Statuses(StatusesRepr::One(p.status(tat, now))))
                }
                Err((retry_after, tat)) => Decision::Limited {
                    retry_after: Duration::from_nanos(retry_after),
                    violated: vec![p.policy.name.clone()],
                    statuses: Statuses(StatusesRepr::One(p.status(tat, now))),
                },
            };
        }
        self.decide_all(keys, cost, now, charged)
    }

    /// [`decide`](Self::decide) for several policies, or a shadow one: out of line, so that
    /// the one-policy path inlined into its callers stays short.
    #[inline(never)]
    fn decide_all(
        &self,
        keys: &RequestKeys<'_>,
        cost: u64,
        now: u64,
        charged: Option<&mut Vec<Charge>>,
    ) -> Decision {
        let inner = &*self.0;
        let keyed = self.keyed(keys);

        // Phase 1: ask every policy without charging any.
        let mut violated = Vec::new();
        let mut shadow_violated = Vec::new();
        let mut retry_after = 0;
        let mut retry_after_from_race = false;
        // Each policy's bucket as last seen, for the statuses (no second read of the store).
        let mut tats = Vec::with_capacity(keyed.len());
        for (i, key) in &keyed {
            let p = &inner.policies[*i];
            // Read only: a key not tracked yet gets an entry only when it is charged.
            let tat = p.tat(key);
            let probe = p.probe(tat, now, cost);
            tats.push(tat.map_or(now, Nanos::as_u64));
            if let Probe::Refuse { retry_after: r } = probe {
                if p.policy.shadow {
                    shadow_violated.push(*i);
                } else {
                    violated.push(p.policy.name.clone());
                    retry_after = retry_after.max(r);
                }
            }
        }
        if violated.is_empty() {
            // Phase 2: charge each (a shadow policy only where it would admit); if a
            // concurrent request took the room meanwhile, undo the charges made so far.
            let mut done: Vec<Charge> = Vec::with_capacity(keyed.len());
            for (n, (i, key)) in keyed.iter().enumerate() {
                let p = &inner.policies[*i];
                if shadow_violated.contains(i) {
                    continue;
                }
                match p.charge(key, now, cost) {
                    Ok(tat) => {
                        tats[n] = tat;
                        done.push(Charge {
                            policy: *i,
                            key: key.clone(),
                            tat,
                        });
                    }
                    Err((_, tat)) if p.policy.shadow => {
                        tats[n] = tat;
                        shadow_violated.push(*i);
                    }
                    Err((r, _)) => {
                        let undo = i64::try_from(cost).unwrap_or(i64::MAX);
                        self.adjust(&done, -undo, now);
                        retry_after_from_race = true;
                        violated.push(p.policy.name.clone());
                        retry_after = r;
                        break;
                    }
                }
            }
            if violated.is_empty() {
                self.housekeeping(now);
                let statuses = self.statuses_from(&keyed, &tats, now);
                if let Some(charged) = charged {
                    *charged = done;
                }
                if shadow_violated.is_empty() {
                    return Decision::Allowed(statuses);
                }
                return Decision::Shadowed {
                    violated: shadow_violated
                        .iter()
                        .map(|i| inner.policies[*i].policy.name.clone())
                        .collect(),
                    statuses,
                };
            }
        }
        // Refused in phase 1: the buckets as probed. Lost a race in phase 2: read them again
        // (charges were undone meanwhile).
        let statuses = if retry_after_from_race {
            self.current(&keyed, now)
        } else {
            self.statuses_from(&keyed, &tats, now)
        };
        self.housekeeping(now);
        Decision::Limited {
            retry_after: Duration::from_nanos(retry_after),
            violated,
            statuses,
        }
    }

    /// Drops idle keys now and then, and evicts past the cap.
    #[inline]
    fn housekeeping(&self, now: u64) {
        thread_local! {
            // A xorshift generator per thread: no shared write on the common path.
            static DRAWS: std::cell::Cell<u64> = const { std::cell::Cell::new(0x9e37_79b9_7f4a_7c15) };
        }
        // About one decision in 256 looks at the store, drawn at random rather than counted:
        // a count shared by every limiter on a thread would let one limiter's decisions take
        // all the turns of another (two limiters alternating on a thread would leave one
        // never swept, its keys unbounded), and a count per limiter would be a write to a
        // shared cache line on every decision.
        let draw = DRAWS.with(|d| {
            let mut x = d.get();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            d.set(x);
            x
        });
        if draw >> 56 != 0 {
            return;
        }
        use std::sync::atomic::Ordering::Relaxed;
        let inner = &*self.0;
        // One shared add per look (about 256 decisions): it paces the sweeps below.
        let total = inner.decisions.fetch_add(256, Relaxed) + 256;
        let max_keys = inner.max_keys.load(Relaxed);
        for p in &inner.policies {
            let len = p.store.len();
            let due = total >= p.next_sweep.load(Relaxed);
            let over = len > max_keys;
            if !due && !over {
                continue;
            }
            if due {
                // A full scan, paced by the number of keys: O(1) per decision amortised.
                p.next_sweep
                    .store(total + (2 * len as u64).max(65_536), Relaxed);
            }
            // Buckets full again first: forgetting them changes no decision.
            p.store.retain_recent(Nanos::from(now));
            if over {
                // Down to 90 % of the cap at once, so the next eviction is far away; only when
                // the full buckets were not enough, buckets that still limit their keys.
                let target = max_keys - max_keys / 10;
                let len = p.store.len();
                if len > target {
                    p.evict_limiting(len - target, max_keys, now);
                }
            }
            // Rebuilt at its new size after an eviction (its tombstones would make the next
            // inserts double the table: measured, 104 MB instead of 66 MB for a second
            // million keys past a cap of a million), and when a sweep left it mostly empty.
            if over || p.store.len() < p.store.capacity() / 4 {
                p.store.shrink_to_fit();
            }
        }
    }

    /// The policies, in order.
    pub fn policies(&self) -> impl ExactSizeIterator<Item = &Policy> + Clone {
        self.0.policies.iter().map(|p| &p.policy)
    }

    /// Keys tracked by each policy (for tests and metrics).
    pub fn tracked_keys(&self) -> Vec<usize> {
        self.0.policies.iter().map(|p| p.store.len()).collect()
    }

    /// The `RateLimit-Policy` header for all these policies (IETF
    /// draft-ietf-httpapi-ratelimit-headers). A response carries
    /// [`counted_policy_header`](Self::counted_policy_header): the policies that counted its
    /// request.
    pub fn policy_header(&self) -> Option<&HeaderValue> {
        self.0.policy_header.as_ref()
    }

    /// The `RateLimit-Policy` header for the policies that counted a request: those of its
    /// decision's `statuses`, the same policies as its `RateLimit` header
    /// ([`ratelimit_header`](Self::ratelimit_header)) names. A policy whose key the request
    /// lacks (a per-principal one and an anonymous caller, a [`KeyKind::Custom`] key that
    /// skips the route) is not listed; a request none counted gets no field. When every
    /// policy counted it (as under one policy), the value is the one made once.
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use hardening_ratelimit::{Policy, Quota, RateLimiter, RequestKeys};
    ///
    /// let minute = Quota::per_minute(NonZeroU32::new(100).unwrap());
    /// let limiter = RateLimiter::new([
    ///     Policy::per_client_ip("per-ip", minute),
    ///     Policy::per_principal("per-user", minute),
    /// ]);
    /// let headers = http::HeaderMap::new();
    /// let anonymous = RequestKeys::new(Some("203.0.113.7".parse().unwrap()), &headers);
    /// let decision = limiter.check(&anonymous, 1);
    /// let policy = limiter.counted_policy_header(decision.statuses()).unwrap();
    /// assert_eq!(policy, "\"per-ip\";q=100;w=60");
    /// let signed_in = anonymous.principal(Some("user-1"));
    /// let decision = limiter.check(&signed_in, 1);
    /// let policy = limiter.counted_policy_header(decision.statuses()).unwrap();
    /// assert_eq!(policy, "\"per-ip\";q=100;w=60, \"per-user\";q=100;w=60");
    /// ```
    #[inline]
    pub fn counted_policy_header(&self, statuses: &[PolicyStatus]) -> Option<HeaderValue> {
        counted_policy_header(self.policies(), self.policy_header(), statuses)
    }

    /// The `RateLimit` header for statuses from this limiter: the same value as
    /// [`ratelimit_header`], but the one most responses carry (one policy, the request's
    /// unit taken from a full bucket) is made once, not formatted and allocated per request.
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use hardening_ratelimit::{Policy, Quota, RateLimiter, RequestKeys};
    ///
    /// let limiter = RateLimiter::new([Policy::per_client_ip(
    ///     "per-ip",
    ///     Quota::per_minute(NonZeroU32::new(100).unwrap()).burst(NonZeroU32::new(50).unwrap()),
    /// )]);
    /// let headers = http::HeaderMap::new();
    /// let keys = RequestKeys::new(Some("203.0.113.7".parse().unwrap()), &headers);
    /// let decision = limiter.check(&keys, 1);
    /// let value = limiter.ratelimit_header(decision.statuses()).unwrap();
    /// assert_eq!(value, "\"per-ip\";r=49;t=1");
    /// ```
    #[inline]
    pub fn ratelimit_header(&self, statuses: &[PolicyStatus]) -> Option<HeaderValue> {
        if let ([s], Some(usual)) = (statuses, &self.0.usual_header)
            && usual.matches(s)
        {
            return Some(usual.value.clone());
        }
        ratelimit_header(statuses)
    }
}

/// Units reserved by [`RateLimiter::reserve`], settled once the actual cost is known.
///
/// Dropping it without settling keeps the whole estimate charged (the safe side).
pub struct Reservation {
    limiter: RateLimiter,
    charged: Vec<Charge>,
    reserved: u64,
}

impl fmt::Debug for Reservation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reservation")
            .field("reserved", &self.reserved)
            .field("policies", &self.charged.len())
            .finish()
    }
}

impl Reservation {
    /// Units reserved.
    pub fn reserved(&self) -> u64 {
        self.reserved
    }

    /// Charges `actual` units instead of the estimate: the rest comes back, or an overrun
    /// is charged on top (the bucket may go into debt, refusing until it refills).
    ///
    /// The debt is bounded: an overrun is charged only as far as it leaves each bucket one
    /// burst past empty (a bucket holding twice its burst, full again within two bursts'
    /// time), so a runaway report cannot lock a key (and everyone sharing it, under a global
    /// policy) out for longer. Charging less than reported is logged as a warning, once per
    /// policy, naming the policy, never the key.
    ///
    /// What comes back is what time has not refilled yet: a reservation settled after its
    /// units have refilled (a long call) gives back only the part still in the bucket, never
    /// room that has been spent again since.
    pub fn settle(self, actual: u64) {
        let inner = &*self.limiter.0;
        let now = inner.clock.now().duration_since(inner.start).as_u64();
        self.settle_at(actual, now);
    }

    /// [`settle`](Self::settle) at a given time, for deterministic tests.
    #[doc(hidden)]
    pub fn settle_at(self, actual: u64, now: u64) {
        let delta = i128::from(actual) - i128::from(self.reserved);
        if delta != 0 {
            let delta = i64::try_from(delta).unwrap_or(if delta < 0 { i64::MIN } else { i64::MAX });
            self.limiter.adjust(&self.charged, delta, now);
        }
    }

    /// Gives the reservation back (the call failed; nothing was spent): as much of it as
    /// time has not refilled already, as [`settle`](Self::settle) does.
    pub fn refund(self) {
        self.settle(0);
    }
}

/// The warning for an overrun charged only up to one burst of debt (both stores).
#[cold]
pub(crate) fn warn_overrun(policy: &Policy, overrun: u64) {
    let burst = policy.quota.burst_size();
    tracing::warn!(
        target: "hardening",
        policy = %policy.name,
        overrun,
        burst,
        "rate limit: a request under policy `{}` reported {overrun} units more than it \
         reserved; it was charged only up to one burst ({burst} units) of debt. The estimate \
         is far too low for this route: raise it (and `max_estimate`), or have the handler \
         stop at `Usage::reserved()`. Logged once per policy",
        policy.name
    );
}

/// `RateLimit-Policy` for these policies: `"per-ip";q=100;w=60, …`, made once (interned).
pub(crate) fn policy_header_for<'a>(
    policies: impl Iterator<Item = &'a Policy>,
) -> Option<HeaderValue> {
    let header = policy_fields(policies);
    // Interned: cloned per response without touching a shared reference count.
    (!header.is_empty())
        .then(|| hardening_errors::static_header_value(header).ok())
        .flatten()
}

/// The `RateLimit-Policy` members of these policies, comma-separated.
fn policy_fields<'a>(policies: impl Iterator<Item = &'a Policy>) -> String {
    let mut header = String::new();
    for (i, p) in policies.enumerate() {
        if i > 0 {
            header.push_str(", ");
        }
        let q = &p.quota;
        let _ = write!(
            header,
            "\"{}\";q={};w={}",
            p.name.field(),
            q.count(),
            q.period().as_secs()
        );
    }
    header
}

/// `RateLimit-Policy` for the policies of a limiter (`policies`, whose field for all of them
/// is `all`) that counted a request: those with a status in its decision's `statuses`. None
/// for a request none counted. Every policy counted most requests: then `all`, a clone of a
/// value made once; only a request some policy skipped has its field made for it.
#[inline]
pub(crate) fn counted_policy_header<'a>(
    policies: impl ExactSizeIterator<Item = &'a Policy>,
    all: Option<&HeaderValue>,
    statuses: &[PolicyStatus],
) -> Option<HeaderValue> {
    if statuses.is_empty() {
        return None;
    }
    if statuses.len() == policies.len() {
        return all.cloned();
    }
    some_policies_header(policies, statuses)
}

/// [`counted_policy_header`] for a request some of the policies did not count.
#[cold]
#[inline(never)]
fn some_policies_header<'a>(
    policies: impl Iterator<Item = &'a Policy>,
    statuses: &[PolicyStatus],
) -> Option<HeaderValue> {
    let counted = policies.filter(|p| statuses.iter().any(|s| s.name.is(&p.name)));
    let header = policy_fields(counted);
    (!header.is_empty())
        .then(|| HeaderValue::from_maybe_shared(bytes::Bytes::from(header)).ok())
        .flatten()
}

/// The `RateLimit` header for these statuses: `"per-ip";r=42;t=7, …`. For a limiter's own
/// statuses, [`RateLimiter::ratelimit_header`] gives the same value without formatting it
/// for most responses.
pub fn ratelimit_header(statuses: &[PolicyStatus]) -> Option<HeaderValue> {
    if statuses.is_empty() {
        return None;
    }
    // Built by hand in one pass on the stack (`format!` costs more than the rate-limit
    // decision itself), then copied into a buffer of its exact size: one allocation.
    let mut stack = [0u8; 256];
    let mut rest: &mut [u8] = &mut stack;
    if write_fields(&mut rest, statuses).is_ok() {
        let len = 256 - rest.len();
        return HeaderValue::from_bytes(&stack[..len]).ok();
    }
    // A long list of policies with long names.
    write_fields_to_vec(statuses).map(bytes_of)
}

fn write_fields_to_vec(statuses: &[PolicyStatus]) -> Option<Vec<u8>> {
    let mut text = Vec::new();
    write_fields(&mut text, statuses).ok()?;
    Some(text)
}

/// Writes `"name";r=R;t=T` for each status, comma-separated; fails when `out` is full.
fn write_fields(out: &mut impl std::io::Write, statuses: &[PolicyStatus]) -> std::io::Result<()> {
    for (i, s) in statuses.iter().enumerate() {
        if i > 0 {
            out.write_all(b", ")?;
        }
        let reset = s.reset_secs();
        out.write_all(b"\"")?;
        out.write_all(s.name.field().as_bytes())?;
        out.write_all(b"\";r=")?;
        write_decimal(out, u64::from(s.remaining()))?;
        out.write_all(b";t=")?;
        write_decimal(out, reset)?;
    }
    Ok(())
}

fn write_decimal(out: &mut impl std::io::Write, mut n: u64) -> std::io::Result<()> {
    // Two digits per division: the remaining count is often ten digits long.
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    while n >= 100 {
        let pair = usize::try_from(n % 100).unwrap_or(0) * 2;
        n /= 100;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = usize::try_from(n).unwrap_or(0) * 2;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        digits[i] = b'0' + n as u8;
    }
    out.write_all(&digits[i..])
}

fn bytes_of(v: Vec<u8>) -> HeaderValue {
    // Takes the buffer as it is (checked, not copied).
    HeaderValue::from_maybe_shared(bytes::Bytes::from(v))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[inline]
pub(crate) fn key_for(kind: &KeyKind, keys: &RequestKeys<'_>) -> Option<Key> {
    match kind {
        KeyKind::Global => Some(Key::Global),
        KeyKind::Header(name) => {
            let value = keys.headers.get(name).filter(|v| !v.is_empty())?;
            Some(match value.to_str() {
                Ok(text) => text_key(text),
                // Bytes outside visible ASCII: counted by their digest.
                Err(_) => digest_key(value.as_bytes()),
            })
        }
        KeyKind::Principal => keys.principal.filter(|p| !p.is_empty()).map(text_key),
        KeyKind::Tenant => keys.tenant.filter(|t| !t.is_empty()).map(text_key),
        KeyKind::Route => keys.route.filter(|r| !r.is_empty()).map(text_key),
        KeyKind::Custom(f) => (f.0)(keys).map(|k| text_key(&k)),
        KeyKind::Composite(parts) => {
            let mut joined = String::new();
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    joined.push(PART_SEPARATOR);
                }
                match key_for(part, keys)? {
                    // Written in place: no string of its own.
                    Key::Ip(ip) => {
                        let _ = write!(joined, "{ip}");
                    }
                    Key::Text(t) => push_part(&mut joined, &t),
                    Key::Global => joined.push('*'),
                }
            }
            Some(Key::Text(joined.into()))
        }
        KeyKind::ClientIp { ipv6_prefix } => keys
            .client_ip
            .map(|ip| Key::Ip(client_group(ip, *ipv6_prefix))),
    }
}

/// Separates the parts of a composite key.
const PART_SEPARATOR: char = '\u{1f}';

/// Comes before a [`PART_SEPARATOR`] or a `PART_ESCAPE` that is part of a key's text.
const PART_ESCAPE: char = '\u{1b}';

/// Appends `text` as one part of a composite key, with every [`PART_SEPARATOR`] and
/// [`PART_ESCAPE`] in it escaped, so that no two lists of parts give the same key
/// (`("a\u{1f}b", "c")` and `("a", "b\u{1f}c")` did). Text without them (any header value,
/// path or digest) is written as it is, so such keys are the same as before.
#[inline]
fn push_part(joined: &mut String, text: &str) {
    let special = |b: &u8| *b == PART_SEPARATOR as u8 || *b == PART_ESCAPE as u8;
    if !text.as_bytes().iter().any(special) {
        joined.push_str(text);
        return;
    }
    for c in text.chars() {
        if c == PART_SEPARATOR || c == PART_ESCAPE {
            joined.push(PART_ESCAPE);
        }
        joined.push(c);
    }
}

/// Key text longer than this is counted by its digest ([`digest_key`]).
const MAX_KEY_TEXT: usize = 256;

/// `text` as a key: as it is, or by its digest when it is longer than [`MAX_KEY_TEXT`] (a
/// JWT in `Authorization`), so that a long value is counted without being kept whole. Text
/// that starts as a digest does (U+001E, which a principal id or a custom key may hold) is
/// counted by its digest too: kept as it is, it could name a long value's bucket.
#[inline]
pub(crate) fn text_key(text: &str) -> Key {
    if text.len() <= MAX_KEY_TEXT && !text.starts_with(DIGEST_MARK) {
        Key::Text(text.into())
    } else {
        digest_key(text.as_bytes())
    }
}

/// What starts a digest key ([`digest_key`]).
const DIGEST_MARK: char = '\u{1e}';

/// A key for a value kept only as its 128-bit FNV-1a digest, after U+001E (which no header
/// value, and so no plain key from one, holds). Deterministic, so that every instance
/// sharing a Redis store names the same key; two values share a budget only if they collide,
/// which a client cannot aim at a value it does not know (and one it knows, it can send).
fn digest_key(bytes: &[u8]) -> Key {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    let digest = bytes
        .iter()
        .fold(OFFSET, |h, &b| (h ^ u128::from(b)).wrapping_mul(PRIME));
    Key::Text(format!("{DIGEST_MARK}{digest:032x}").into())
}

pub(crate) use hardening_errors::{SUBSCRIBER_PREFIX, client_group};

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    /// `fn main() -> Result<(), Box<dyn Error>>` prints an error returned with `?` by its
    /// `Debug`, which was the variant's name (`NoPolicies`, `ZeroLockout`): not what to change.
    #[test]
    fn start_up_errors_debug_print_their_message() {
        let errors: [Box<dyn std::error::Error>; 2] = [
            LimiterConfigError::NoPolicies.into(),
            crate::LoginConfigError::ZeroLockout.into(),
        ];
        for err in errors {
            let printed = format!("{err:?}");
            assert_eq!(
                printed,
                err.to_string(),
                "main would print: Error: {printed}"
            );
        }
    }

    #[test]
    fn decimals_are_written_like_display() {
        let small = [0, 7, 9, 10, 42, 99, 100, 101, 999, 1000, 12_345];
        let large = [4_294_967_295, u64::MAX, u64::MAX - 1, 10_u64.pow(19) - 1];
        for n in small.into_iter().chain(large) {
            let mut out = Vec::new();
            write_decimal(&mut out, n).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
        }
    }

    /// `ipv6_prefix(0)` (read, perhaps, as "no grouping") was taken: every IPv6 client then
    /// shared one budget, which one client could spend for all. Refused, naming the policy
    /// and what to use, in a composite key too.
    #[test]
    fn ipv6_grouped_by_zero_bits_is_refused() {
        let quota = Quota::per_minute(nz(10));
        for policy in [
            Policy::per_client_ip("api", quota).ipv6_prefix(0),
            Policy::keyed(
                "api",
                quota,
                KeyKind::Composite(vec![KeyKind::Route, KeyKind::ClientIp { ipv6_prefix: 0 }]),
            ),
        ] {
            let err = RateLimiter::try_new([Policy::global("all", quota), policy.clone()])
                .map(|_| ())
                .expect_err(&format!("{:?} accepted", policy.key_kind()));
            assert_eq!(err, LimiterConfigError::Ipv6PrefixZero("api".into()));
            assert!(err.to_string().contains("use 64"), "{err}");
        }
        for bits in [1, 48, 64, 128, 200] {
            let policy = Policy::per_client_ip("api", quota).ipv6_prefix(bits);
            assert!(RateLimiter::try_new([policy]).is_ok(), "{bits}");
        }
    }

    /// Two policies of one name make `RateLimit` fields and 429 problems that cannot be
    /// told apart. Only `Hardening::rate_limit` refused them: a limiter for a
    /// `RateLimitLayer` or a `CostLayer` was made with them. `try_new` refuses them now, and
    /// `new` (a list written in the code) panics at start-up, naming the duplicate.
    #[test]
    fn two_policies_of_one_name_are_refused() {
        let quota = Quota::per_minute(nz(10));
        let err = RateLimiter::try_new([
            Policy::per_client_ip("api", quota),
            Policy::global("other", quota),
            Policy::global(String::from("api"), quota),
        ])
        .unwrap_err();
        assert_eq!(err, LimiterConfigError::DuplicatePolicyName("api".into()));
        assert!(
            err.to_string()
                .starts_with("two rate-limit policies are named `api`: "),
            "{err}"
        );
        let err = RateLimiter::try_new(Vec::new()).unwrap_err();
        assert_eq!(err, LimiterConfigError::NoPolicies);
        // Names are compared as written: these are two.
        let limiter = RateLimiter::try_new([
            Policy::per_client_ip("api", quota),
            Policy::global("API", quota),
        ])
        .unwrap();
        assert_eq!(limiter.policies().count(), 2);

        let panicked = std::panic::catch_unwind(|| {
            RateLimiter::new([
                Policy::per_client_ip("api", Quota::per_minute(nz(10))),
                Policy::global("api", Quota::per_minute(nz(10))),
            ])
        })
        .unwrap_err();
        let message = panicked.downcast_ref::<String>().unwrap();
        assert!(
            message.starts_with("RateLimiter::new: two rate-limit policies are named `api`: "),
            "{message}"
        );
    }

    /// An empty or whitespace-only name was taken: the `RateLimit` fields then carried `""`
    /// or `"  "`, and the 429 problem and the logs named no policy. Refused, saying which
    /// policy (by its place in the list) and what to do; an odd but readable name is not.
    #[test]
    fn a_blank_policy_name_is_refused() {
        let quota = Quota::per_minute(nz(10));
        for blank in ["", " ", "\t \u{a0}"] {
            let err = RateLimiter::try_new([
                Policy::per_client_ip("api", quota),
                Policy::global(String::from(blank), quota),
            ])
            .map(|_| ())
            .expect_err(&format!("the blank name {blank:?} was accepted"));
            let message = err.to_string();
            assert!(
                message.starts_with(&format!(
                    "rate-limit policy 2 (of 2) is named {blank:?}, which is blank"
                )) && message.contains("give it a name"),
                "{message}"
            );
            assert_eq!(
                err,
                LimiterConfigError::BlankPolicyName {
                    position: 2,
                    of: 2,
                    name: blank.into()
                }
            );
        }
        // Two blank names: the blank one is the mistake to report, not the duplicate.
        let err = RateLimiter::try_new([Policy::global("", quota), Policy::global("", quota)])
            .map(|_| ())
            .unwrap_err();
        assert!(
            matches!(err, LimiterConfigError::BlankPolicyName { position: 1, .. }),
            "{err}"
        );
        for odd in ["caf\u{e9}", " api", "50%", "a\"b"] {
            assert!(
                RateLimiter::try_new([Policy::global(odd, quota)]).is_ok(),
                "{odd:?}"
            );
        }
    }

    fn keys<'a>(ip: &str, headers: &'a HeaderMap) -> RequestKeys<'a> {
        RequestKeys {
            client_ip: Some(ip.parse().unwrap()),
            headers,
            principal: None,
            tenant: None,
            route: None,
        }
    }

    #[test]
    fn burst_then_refuse_with_retry_after() {
        let limiter = RateLimiter::new([Policy::per_client_ip(
            "ip",
            Quota::per_minute(nz(60)).burst(nz(3)),
        )]);
        let h = HeaderMap::new();
        for remaining in [2, 1, 0] {
            match limiter.check(&keys("10.0.0.1", &h), 1) {
                Decision::Allowed(s) => assert_eq!(s[0].remaining(), remaining),
                other => panic!("{other:?}"),
            }
        }
        match limiter.check(&keys("10.0.0.1", &h), 1) {
            Decision::Limited {
                retry_after,
                violated,
                ..
            } => {
                assert_eq!(violated, [PolicyName::from("ip")]);
                assert!(
                    retry_after > Duration::from_millis(900)
                        && retry_after <= Duration::from_secs(1)
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(
                limiter.check(&keys("10.0.0.2", &h), 1),
                Decision::Allowed(_)
            ),
            "other keys unaffected"
        );
    }

    #[test]
    fn ipv6_is_grouped_by_prefix() {
        let limiter = RateLimiter::new([Policy::per_client_ip("ip", Quota::per_hour(nz(1)))]);
        let h = HeaderMap::new();
        assert!(matches!(
            limiter.check(&keys("2001:db8:1:2::1", &h), 1),
            Decision::Allowed(_)
        ));
        assert!(matches!(
            limiter.check(&keys("2001:db8:1:2:ffff::9", &h), 1),
            Decision::Limited { .. }
        ));
        assert!(matches!(
            limiter.check(&keys("2001:db8:1:3::1", &h), 1),
            Decision::Allowed(_)
        ));
    }

    #[test]
    fn ipv4_mapped_clients_are_counted_by_their_ipv4_address() {
        // A dual-stack listener on [::] sees every IPv4 client as ::ffff:a.b.c.d.
        let limiter = RateLimiter::new([Policy::per_client_ip("ip", Quota::per_hour(nz(1)))]);
        let h = HeaderMap::new();
        assert!(matches!(
            limiter.check(&keys("::ffff:192.0.2.1", &h), 1),
            Decision::Allowed(_)
        ));
        assert!(
            matches!(
                limiter.check(&keys("::ffff:198.51.100.7", &h), 1),
                Decision::Allowed(_)
            ),
            "another IPv4 client has its own bucket"
        );
        assert!(
            matches!(
                limiter.check(&keys("192.0.2.1", &h), 1),
                Decision::Limited { .. }
            ),
            "the mapped and the plain form are one client"
        );
    }

    #[test]
    fn refused_requests_cost_nothing_elsewhere() {
        let limiter = RateLimiter::new([
            Policy::per_client_ip("ip", Quota::per_hour(nz(5))),
            Policy::global("strict", Quota::per_hour(nz(1))),
        ]);
        let h = HeaderMap::new();
        assert!(matches!(
            limiter.check(&keys("10.0.0.1", &h), 1),
            Decision::Allowed(_)
        ));
        for _ in 0..10 {
            assert!(matches!(
                limiter.check(&keys("10.0.0.1", &h), 1),
                Decision::Limited { .. }
            ));
        }
        // The per-IP policy was charged once, not eleven times.
        let only_ip = RateLimiter::new([Policy::per_client_ip("ip", Quota::per_hour(nz(5)))]);
        assert!(
            matches!(only_ip.check(&keys("10.0.0.1", &h), 1), Decision::Allowed(ref s) if s[0].remaining() == 4)
        );
        match limiter.check(&keys("10.0.0.1", &h), 1) {
            Decision::Limited { statuses, .. } => {
                assert_eq!(statuses[0].remaining(), 4, "{statuses:?}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn headers() {
        let limiter = RateLimiter::new([Policy::per_client_ip(
            "per-ip",
            Quota::per_minute(nz(100)).burst(nz(50)),
        )]);
        assert_eq!(limiter.policy_header().unwrap(), "\"per-ip\";q=100;w=60");
        let h = HeaderMap::new();
        let Decision::Allowed(s) = limiter.check(&keys("10.0.0.1", &h), 1) else {
            panic!()
        };
        assert_eq!(ratelimit_header(&s).unwrap(), "\"per-ip\";r=49;t=1");
        assert_eq!(ratelimit_header(&[]), None);

        // Longer than the stack buffer: the same text, built on the heap.
        let names: Vec<String> = (0..12)
            .map(|i| format!("policy-with-a-long-name-{i}"))
            .collect();
        let limiter =
            RateLimiter::try_new(names.iter().map(|n| {
                Policy::per_client_ip(n.clone(), Quota::per_minute(nz(100)).burst(nz(50)))
            }))
            .unwrap();
        let Decision::Allowed(s) = limiter.check(&keys("10.0.0.1", &h), 1) else {
            panic!()
        };
        let header = ratelimit_header(&s).unwrap();
        let expected: Vec<String> = names.iter().map(|n| format!("\"{n}\";r=49;t=1")).collect();
        assert!(header.len() > 256);
        assert_eq!(header, expected.join(", ").as_str());
    }

    #[test]
    fn policy_names_are_escaped_in_the_structured_fields() {
        // RFC 9651 strings: printable ASCII, `"` and `\` escaped, any other byte (and `%`)
        // as `%XX`.
        let quota = Quota::per_minute(nz(10));
        let limiter = RateLimiter::new([
            Policy::global("per \"ip\"", quota),
            Policy::global(String::from("a\\b"), quota),
            Policy::global("caf\u{e9}\ttab", quota),
        ]);
        assert_eq!(
            limiter.policy_header().unwrap(),
            r#""per \"ip\"";q=10;w=60, "a\\b";q=10;w=60, "caf%C3%A9%09tab";q=10;w=60"#
        );
        let h = HeaderMap::new();
        let decision = limiter.check(&keys("10.0.0.1", &h), 1);
        assert_eq!(
            limiter.ratelimit_header(decision.statuses()).unwrap(),
            r#""per \"ip\"";r=9;t=6, "a\\b";r=9;t=6, "caf%C3%A9%09tab";r=9;t=6"#
        );
        // The name itself is the text given (problems, logs), and equal however it was made.
        assert_eq!(decision.statuses()[0].name().as_str(), "per \"ip\"");
        assert_eq!(
            PolicyName::from("caf\u{e9}\ttab"),
            PolicyName::from(String::from("caf\u{e9}\ttab"))
        );
        assert_eq!(PolicyName::from("a"), PolicyName::from(String::from("a")));
        // One policy: the value made once for most responses is escaped the same way.
        let one = RateLimiter::new([Policy::global("\"", quota)]);
        let decision = one.check(&keys("10.0.0.1", &h), 1);
        assert_eq!(
            one.ratelimit_header(decision.statuses()).unwrap(),
            r#""\"";r=9;t=6"#
        );
    }

    /// Every character outside printable ASCII was written `?`: `café` and `cafè` were one
    /// `"caf?"` in the headers, two policies a client could not tell apart. Each byte of it
    /// (and `%`) is `%XX` now, so no two names share a field, and the usual names are as
    /// they were, their text not copied.
    #[test]
    fn policy_names_outside_ascii_have_fields_of_their_own() {
        let quota = Quota::per_minute(nz(10));
        let h = HeaderMap::new();
        let names = [
            "caf\u{e9}",
            "caf\u{e8}",
            "caf%C3%A9",
            "caf?",
            "caf\u{e9}\u{0}",
            "caf\u{e9}\u{7f}",
        ];
        let limiter = RateLimiter::try_new(names.map(|n| Policy::global(n, quota))).unwrap();
        let policy = limiter
            .policy_header()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            policy,
            "\"caf%C3%A9\";q=10;w=60, \"caf%C3%A8\";q=10;w=60, \"caf%25C3%25A9\";q=10;w=60, \
             \"caf?\";q=10;w=60, \"caf%C3%A9%00\";q=10;w=60, \"caf%C3%A9%7F\";q=10;w=60"
        );
        let decision = limiter.check(&keys("10.0.0.1", &h), 1);
        let fields: Vec<String> = names
            .iter()
            .map(|n| {
                let one = RateLimiter::new([Policy::global(*n, quota)]);
                let d = one.check(&keys("10.0.0.1", &h), 1);
                one.ratelimit_header(d.statuses())
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(fields[0], "\"caf%C3%A9\";r=9;t=6");
        assert_eq!(fields[1], "\"caf%C3%A8\";r=9;t=6");
        let distinct: std::collections::HashSet<&String> = fields.iter().collect();
        assert_eq!(distinct.len(), names.len(), "{fields:?}");
        assert_eq!(
            limiter.ratelimit_header(decision.statuses()).unwrap(),
            fields.join(", ").as_str()
        );
        // Plain printable ASCII without `%`: the field is the name itself, not a copy.
        for name in [
            PolicyName::from("per-ip ~!#$&'()*+,-./:;<=>?@[]^_`{|}"),
            PolicyName::from(String::from("tokens-per-day")),
        ] {
            assert!(!matches!(name.0, NameRepr::Escaped(_)), "{name}");
            assert!(std::ptr::eq(name.field(), name.as_str()));
        }
        assert_eq!(PolicyName::from("50%").field(), "50%25");
    }

    #[test]
    fn the_usual_ratelimit_value_is_the_formatted_one() {
        let h = HeaderMap::new();
        let max = NonZeroU32::MAX;
        let quotas = [
            Quota::per_minute(nz(100)).burst(nz(50)),
            Quota::per_second(nz(10)),
            Quota::per_hour(nz(1)),
            Quota::per_day(nz(3)).burst(nz(7)),
            Quota::per_second(max).burst(max),
        ];
        for quota in quotas {
            let limiter = RateLimiter::new([Policy::per_client_ip("per-ip", quota)]);
            let interval = quota.emission_interval_nanos();
            let mut usual_seen = 0;
            // A fresh client, then one sending faster than the rate, with gaps and costs
            // that leave its bucket at many levels, some at the usual value and some not.
            for step in 0..200u64 {
                let now = step * interval / 3 + (step % 7) * interval;
                let cost = 1 + (step % 3) as u32;
                let decision = limiter.check_at(&keys("10.0.0.1", &h), cost, now);
                let statuses = decision.statuses();
                assert_eq!(
                    limiter.ratelimit_header(statuses),
                    ratelimit_header(statuses),
                    "{quota:?} at step {step}"
                );
                let usual = limiter.0.usual_header.as_ref().expect("one policy");
                usual_seen += usize::from(usual.matches(&statuses[0]));
            }
            assert!(usual_seen > 0, "{quota:?}: the usual value never matched");
        }

        // Several policies: formatted every time.
        let two = RateLimiter::new([
            Policy::per_client_ip("a", Quota::per_second(nz(5))),
            Policy::global("b", Quota::per_minute(nz(100))),
        ]);
        assert!(two.0.usual_header.is_none());
        let decision = two.check(&keys("10.0.0.1", &h), 1);
        assert_eq!(
            two.ratelimit_header(decision.statuses()).unwrap(),
            "\"a\";r=4;t=1, \"b\";r=99;t=1"
        );
    }

    #[test]
    fn exactly_burst_admitted_under_contention() {
        // Refill one per day: nothing refills during the test.
        let limiter = RateLimiter::new([
            Policy::per_client_ip("ip", Quota::per_day(nz(1)).burst(nz(100))),
            Policy::global("all", Quota::per_day(nz(1)).burst(nz(1000))),
        ]);
        let admitted = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    let h = HeaderMap::new();
                    for _ in 0..1250 {
                        if matches!(
                            limiter.check(&keys("10.0.0.1", &h), 1),
                            Decision::Allowed(_)
                        ) {
                            admitted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(
            admitted.load(Ordering::Relaxed),
            100,
            "10,000 concurrent requests, burst 100"
        );
        // The global policy was charged only for the admitted ones (all-or-nothing).
        let h = HeaderMap::new();
        match limiter.check(&keys("10.0.0.2", &h), 1) {
            Decision::Allowed(s) => assert_eq!(s[1].remaining(), 1000 - 101),
            other => panic!("{other:?}"),
        }
    }

    /// A reference model: a token bucket of `burst` tokens refilled one per `interval`,
    /// computed exactly from the admitted history.
    fn reference_admits(history: &[u64], now: u64, interval: u64, burst: u64) -> bool {
        // GCRA ≡ a virtual scheduling clock: TAT advances by `interval` per admitted request.
        let mut tat = 0u64;
        for &t in history {
            tat = tat.max(t) + interval;
        }
        tat.max(now) + interval - now <= interval * burst
    }

    #[test]
    fn gcra_matches_a_reference_model_on_random_schedules() {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for case in 0..200 {
            let count = 1 + (next() % 20) as u32;
            let burst = 1 + (next() % 10) as u32;
            let quota = Quota::per_second(nz(count)).burst(nz(burst));
            let interval = quota.emission_interval_nanos();
            let limiter = RateLimiter::new([Policy::global("g", quota)]);
            let h = HeaderMap::new();
            let keys = RequestKeys {
                client_ip: None,
                headers: &h,
                principal: None,
                tenant: None,
                route: None,
            };
            let mut now = 0u64;
            let mut admitted = Vec::new();
            for step in 0..100 {
                now += next() % (2 * interval);
                let expected = reference_admits(&admitted, now, interval, u64::from(burst));
                let got = matches!(limiter.check_at(&keys, 1, now), Decision::Allowed(_));
                assert_eq!(
                    got, expected,
                    "case {case} step {step}: count {count} burst {burst} now {now}"
                );
                if got {
                    admitted.push(now);
                }
            }
        }
    }

    /// A cost over the burst was told to come back when the bucket was full, then refused
    /// again, for ever: its wait is now the longest there is. A cost the bucket holds is
    /// told the truth.
    #[test]
    fn a_cost_no_bucket_holds_is_never_promised_a_time() {
        let limiter = RateLimiter::new([Policy::global(
            "budget",
            Quota::per_minute(nz(60)).burst(nz(10)),
        )]);
        let h = HeaderMap::new();
        let keys = RequestKeys::new(None, &h);
        match limiter.check_at(&keys, 11, 0) {
            Decision::Limited { retry_after, .. } => {
                assert_eq!(retry_after, Duration::from_nanos(u64::MAX));
            }
            other => panic!("{other:?}"),
        }
        assert!(limiter.check_at(&keys, 10, 0).is_admitted());
        match limiter.check_at(&keys, 10, 0) {
            Decision::Limited { retry_after, .. } => {
                assert_eq!(retry_after, Duration::from_secs(10));
            }
            other => panic!("{other:?}"),
        }
        assert!(limiter.check_at(&keys, 10, 10_000_000_000).is_admitted());
    }

    #[test]
    fn refill_and_retry_after_are_exact_with_a_fake_clock() {
        let limiter =
            RateLimiter::new([Policy::global("g", Quota::per_second(nz(10)).burst(nz(2)))]);
        let h = HeaderMap::new();
        let keys = RequestKeys {
            client_ip: None,
            headers: &h,
            principal: None,
            tenant: None,
            route: None,
        };
        let ms = 1_000_000;
        assert!(matches!(
            limiter.check_at(&keys, 1, 0),
            Decision::Allowed(_)
        ));
        assert!(matches!(
            limiter.check_at(&keys, 1, 0),
            Decision::Allowed(_)
        ));
        match limiter.check_at(&keys, 1, 30 * ms) {
            Decision::Limited { retry_after, .. } => {
                assert_eq!(retry_after, Duration::from_millis(70))
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(limiter.check_at(&keys, 1, 100 * ms), Decision::Allowed(_)),
            "one refilled after 100 ms"
        );
        assert!(matches!(
            limiter.check_at(&keys, 1, 100 * ms),
            Decision::Limited { .. }
        ));
    }

    #[test]
    fn memory_stays_bounded() {
        let limiter =
            RateLimiter::new([Policy::per_client_ip("ip", Quota::per_hour(nz(10)))]).max_keys(1000);
        let h = HeaderMap::new();
        for i in 0..5000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            limiter.check(
                &RequestKeys {
                    client_ip: Some(ip),
                    headers: &h,
                    principal: None,
                    tenant: None,
                    route: None,
                },
                1,
            );
        }
        assert!(
            limiter.tracked_keys()[0] <= 1000 + 256,
            "{:?}",
            limiter.tracked_keys()
        );
    }

    #[test]
    fn limiters_alternating_on_one_thread_each_stay_bounded() {
        let first = RateLimiter::new([Policy::global("all", Quota::per_hour(nz(10)))]);
        let second = RateLimiter::new([Policy::per_header(
            "key",
            Quota::per_hour(nz(10)),
            HeaderName::from_static("x-api-key"),
        )])
        .max_keys(1000);
        let none = HeaderMap::new();
        let mut h = HeaderMap::new();
        for i in 0..100_000u32 {
            first.check(&RequestKeys::new(None, &none), 1);
            h.insert("x-api-key", HeaderValue::from(i));
            second.check(&RequestKeys::new(None, &h), 1);
        }
        // Looks come at random, one decision in 256 on average: between two looks the
        // keys grow by a few hundred at most (the draws are the same on every run).
        assert!(
            second.tracked_keys()[0] <= 1000 + 2048,
            "{:?}",
            second.tracked_keys()
        );
    }

    #[test]
    fn a_refused_flood_of_new_keys_does_not_reset_a_spent_budget() {
        // Refused requests track no key (a probe reads, only an admitted charge inserts), so
        // a client refused by `per-ip` cannot push `per-key-per-day` past its cap with header
        // values and make it forget the bucket of a key whose day budget is spent.
        let api_key = HeaderName::from_static("x-api-key");
        let limiter = RateLimiter::new([
            Policy::per_client_ip("per-ip", Quota::per_minute(nz(100)).burst(nz(50))),
            Policy::per_header("per-key-per-day", Quota::per_day(nz(5)), api_key.clone()),
        ])
        .max_keys(100);
        let sec = 1_000_000_000u64;
        let victim_ip = Some("192.0.2.1".parse().unwrap());
        let mut victim = HeaderMap::new();
        victim.insert(&api_key, HeaderValue::from_static("victim-key"));
        let victim = RequestKeys::new(victim_ip, &victim);
        for _ in 0..5 {
            assert!(limiter.check_at(&victim, 1, 0).is_admitted());
        }
        assert!(
            !limiter.check_at(&victim, 1, 0).is_admitted(),
            "the day budget is spent"
        );

        let attacker = Some("198.51.100.9".parse().unwrap());
        let mut h = HeaderMap::new();
        let mut refused = 0;
        for i in 0..200_000u32 {
            h.insert(&api_key, HeaderValue::from(i));
            refused += usize::from(
                !limiter
                    .check_at(&RequestKeys::new(attacker, &h), 1, sec)
                    .is_admitted(),
            );
        }
        assert_eq!(refused, 200_000 - 50);
        assert_eq!(
            limiter.tracked_keys(),
            [2, 51],
            "only admitted requests track keys"
        );
        // A look at the usage tracks none either.
        h.insert(&api_key, HeaderValue::from_static("just-looking"));
        let _ = limiter.statuses_at(&RequestKeys::new(attacker, &h), sec);
        assert_eq!(limiter.tracked_keys(), [2, 51]);
        assert!(
            !limiter.check_at(&victim, 1, 2 * sec).is_admitted(),
            "the spent day budget was forgotten"
        );
    }

    #[test]
    fn until_full_classes_keep_the_order_and_within_a_sixteenth() {
        let mut samples: Vec<u64> = (0..4096).collect();
        for bit in 4..64 {
            let base = 1u64 << bit;
            samples.extend([
                base - 1,
                base,
                base + 1,
                base + base / 16,
                base | (base - 1),
            ]);
        }
        samples.extend([u64::MAX - 1, u64::MAX]);
        samples.sort_unstable();
        let mut previous = 0;
        for &n in &samples {
            let class = until_full_class(n);
            assert!(class < UNTIL_FULL_CLASSES, "{n}");
            assert!(class >= previous, "{n}: class {class} after {previous}");
            previous = class;
        }
        // Times in one class differ by less than a sixteenth.
        assert_eq!(
            until_full_class(1 << 40),
            until_full_class((1 << 40) + (1 << 35))
        );
        assert!(until_full_class(1 << 40) < until_full_class((1 << 40) + (1 << 36)));
        assert_eq!(until_full_class(u64::MAX), UNTIL_FULL_CLASSES - 1);
    }

    #[test]
    fn over_the_cap_full_buckets_go_first_and_then_those_nearest_to_full() {
        // One unit a second, burst 3600. A key spends its whole burst at 0.
        let key = HeaderName::from_static("x-api-key");
        let limiter = RateLimiter::new([Policy::per_header(
            "per-key",
            Quota::per_hour(nz(3600)),
            key.clone(),
        )])
        .max_keys(1000);
        let (ms, sec) = (1_000_000u64, 1_000_000_000u64);
        let mut spent = HeaderMap::new();
        spent.insert(&key, HeaderValue::from_static("spent"));
        let spent = RequestKeys::new(None, &spent);
        assert!(limiter.check_at(&spent, 3600, 0).is_admitted());

        // 200,000 new keys, one every 10 ms, each charged one unit: about a hundred of them
        // still limited at any time, the rest full again. Only full buckets are dropped.
        let mut h = HeaderMap::new();
        for i in 0..200_000u32 {
            h.insert(&key, HeaderValue::from(i));
            let now = u64::from(i) * 10 * ms;
            assert!(
                limiter
                    .check_at(&RequestKeys::new(None, &h), 1, now)
                    .is_admitted()
            );
        }
        // Looks come at random, one decision in 256 on average (see above).
        assert!(
            limiter.tracked_keys()[0] <= 1000 + 2048,
            "{:?}",
            limiter.tracked_keys()
        );
        assert_eq!(
            limiter.statuses_at(&spent, 2000 * sec)[0].remaining(),
            2000,
            "the spent bucket was forgotten"
        );

        // 5,000 keys each still limited (100 units): some must go, the nearest to full
        // first, and the spent bucket (3600 s from full) is the farthest.
        for i in 0..5_000u32 {
            h.insert(&key, HeaderValue::from(i));
            let now = 2000 * sec + u64::from(i) * ms;
            assert!(
                limiter
                    .check_at(&RequestKeys::new(None, &h), 100, now)
                    .is_admitted()
            );
        }
        assert!(
            limiter.tracked_keys()[0] <= 1000 + 2048,
            "{:?}",
            limiter.tracked_keys()
        );
        assert_eq!(
            limiter.statuses_at(&spent, 2005 * sec)[0].remaining(),
            2005,
            "the spent bucket was forgotten before nearer ones"
        );
    }

    fn principal<'a>(who: &'a str, h: &'a HeaderMap) -> RequestKeys<'a> {
        RequestKeys::new(None, h).principal(Some(who))
    }

    #[test]
    fn concurrent_reserve_settle_never_exceeds_the_budget_and_the_ledger_ends_exact() {
        const BUDGET: u64 = 50_000;
        let limiter = RateLimiter::new([
            Policy::per_principal("tokens-per-day", Quota::per_day(nz(50_000))),
            Policy::per_principal("tokens-per-minute", Quota::per_minute(nz(900_000))),
        ]);
        // A frozen clock: nothing refills, so the ledger must add up exactly.
        let now = 5_000_000_000u64;
        let outstanding = AtomicU64::new(0);
        let spent = AtomicU64::new(0);
        let admitted = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for t in 0..8u64 {
                let (limiter, outstanding, spent, admitted) =
                    (&limiter, &outstanding, &spent, &admitted);
                scope.spawn(move || {
                    let h = HeaderMap::new();
                    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (t + 1);
                    for i in 0..125u64 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let estimate = 1 + x % 500;
                        let actual = (x >> 20) % (estimate + 1);
                        let (decision, reservation) =
                            limiter.reserve_at(&principal("u", &h), estimate as u32, now);
                        let Some(reservation) = reservation else {
                            assert!(matches!(decision, Decision::Limited { .. }));
                            continue;
                        };
                        admitted.fetch_add(1, Ordering::Relaxed);
                        let held = outstanding.fetch_add(estimate, Ordering::SeqCst) + estimate;
                        assert!(held <= BUDGET, "{held} units held, budget {BUDGET}");
                        let charged = match i % 10 {
                            0 => 0,        // refunded (nothing spent)
                            1 => estimate, // dropped unsettled: the estimate stays
                            _ => actual,   // settled to the actual cost
                        };
                        // Release our view before the limiter's, so ours never under-counts.
                        outstanding.fetch_sub(estimate - charged, Ordering::SeqCst);
                        spent.fetch_add(charged, Ordering::Relaxed);
                        match i % 10 {
                            0 => reservation.settle_at(0, now),
                            1 => drop(reservation),
                            _ => reservation.settle_at(actual, now),
                        }
                    }
                });
            }
        });
        let admitted = admitted.load(Ordering::Relaxed);
        assert!(
            admitted > 100 && admitted < 1000,
            "the budget should bind: {admitted} of 1000 admitted"
        );
        let spent = spent.load(Ordering::Relaxed);
        assert!(spent <= BUDGET);
        let h = HeaderMap::new();
        let statuses = limiter.statuses_at(&principal("u", &h), now);
        assert_eq!(
            u64::from(statuses[0].remaining()),
            BUDGET - spent,
            "{statuses:?}"
        );
        assert_eq!(
            u64::from(statuses[1].remaining()),
            900_000 - spent,
            "{statuses:?}"
        );
        // Another principal is untouched.
        assert_eq!(
            limiter.statuses_at(&principal("v", &h), now)[0].remaining(),
            50_000
        );
    }

    #[test]
    fn settle_refunds_the_rest_and_charges_an_overrun() {
        let limiter = RateLimiter::new([Policy::per_principal("t", Quota::per_day(nz(1000)))]);
        let h = HeaderMap::new();
        let now = 1_000_000u64;
        let k = principal("u", &h);
        let (_, r) = limiter.reserve_at(&k, 400, now);
        assert_eq!(limiter.statuses_at(&k, now)[0].remaining(), 600);
        r.unwrap().settle_at(100, now);
        assert_eq!(limiter.statuses_at(&k, now)[0].remaining(), 900);
        let (_, r) = limiter.reserve_at(&k, 100, now);
        r.unwrap().settle_at(950, now); // the estimate was wrong: debt
        assert_eq!(limiter.statuses_at(&k, now)[0].remaining(), 0);
        let (d, r) = limiter.reserve_at(&k, 1, now);
        assert!(r.is_none() && matches!(d, Decision::Limited { .. }));
        // A refund after the bucket has refilled cannot push it past full.
        let later = now + Duration::from_secs(86_400 * 3).as_nanos() as u64;
        let (_, r) = limiter.reserve_at(&k, 10, later);
        r.unwrap().settle_at(0, later);
        assert_eq!(limiter.statuses_at(&k, later)[0].remaining(), 1000);
        // Anonymous requests are not counted by a per-principal policy.
        let (d, r) = limiter.reserve_at(&RequestKeys::new(None, &h), 999, now);
        assert!(d.is_admitted() && r.is_some());
    }

    #[test]
    fn a_late_settlement_gives_back_only_what_has_not_refilled() {
        // 100 units a second, burst 100: 10 ms a unit.
        let limiter = RateLimiter::new([Policy::per_principal("t", Quota::per_second(nz(100)))]);
        let h = HeaderMap::new();
        let k = principal("u", &h);
        let (ms, sec) = (1_000_000u64, 1_000_000_000u64);
        let left = |now| limiter.statuses_at(&k, now)[0].remaining();

        // A long call reserves 50 units at 0. A second later they have long refilled, and
        // the principal spends the whole burst; then the long call fails. Its units came
        // back with time already: refunding them again would take them off the burst spent
        // since, and a client holding requests could double its rate.
        let (_, r) = limiter.reserve_at(&k, 50, 0);
        assert!(limiter.check_at(&k, 100, sec).is_admitted());
        r.unwrap().settle_at(0, sec);
        assert!(matches!(
            limiter.check_at(&k, 1, sec),
            Decision::Limited { .. }
        ));

        // Partly refilled: 50 reserved at 10 s (a full bucket), 40 spent at 10.3 s, the
        // reservation refunded then. 30 of its units have refilled; the other 20 come back,
        // as if it had never been made.
        let (_, r) = limiter.reserve_at(&k, 50, 10 * sec);
        assert!(limiter.check_at(&k, 40, 10 * sec + 300 * ms).is_admitted());
        r.unwrap().settle_at(0, 10 * sec + 300 * ms);
        assert_eq!(left(10 * sec + 300 * ms), 60);

        // Settled below the estimate: the units given back are the last ones reserved,
        // as far as they have not refilled (10 kept at 20 s have refilled by 20.3 s).
        let (_, r) = limiter.reserve_at(&k, 50, 20 * sec);
        r.unwrap().settle_at(10, 20 * sec + 300 * ms);
        assert_eq!(left(20 * sec + 300 * ms), 100);

        // An overrun is charged on top whenever it is settled: 70 units from 30 s.
        let (_, r) = limiter.reserve_at(&k, 50, 30 * sec);
        r.unwrap().settle_at(70, 30 * sec + 300 * ms);
        assert_eq!(left(30 * sec + 300 * ms), 60);
    }

    #[test]
    fn a_zero_estimate_needs_a_unit_of_room_and_reserves_nothing() {
        // 10 units a second, burst 10: 100 ms a unit.
        let limiter = RateLimiter::new([Policy::per_principal("t", Quota::per_second(nz(10)))]);
        let h = HeaderMap::new();
        let k = principal("u", &h);
        let ms = 1_000_000u64;
        let left = |now| limiter.statuses_at(&k, now)[0].remaining();

        // Room left: admitted, and nothing is charged until the settlement.
        let (d, r) = limiter.reserve_at(&k, 0, 0);
        assert!(d.is_admitted());
        assert_eq!(left(0), 10);
        r.unwrap().settle_at(3, 0);
        assert_eq!(left(0), 7);

        // The budget spent: a request that estimates nothing is refused like any other (it
        // would spend what it reports, with nothing left), until a unit has refilled.
        assert!(limiter.check_at(&k, 7, 0).is_admitted());
        let (d, r) = limiter.reserve_at(&k, 0, 0);
        assert!(r.is_none());
        match d {
            Decision::Limited { retry_after, .. } => {
                assert_eq!(retry_after, Duration::from_millis(100));
            }
            other => panic!("a zero estimate was admitted with nothing left: {other:?}"),
        }
        assert!(limiter.reserve_at(&k, 0, 100 * ms).0.is_admitted());
        assert_eq!(left(100 * ms), 1, "and it charged nothing");
    }

    /// A burst too long to count (a unit a day, a burst of `u32::MAX`: 11.7 million years of
    /// refill) is 2^63 ns of refill (106 751 units of a day), as in Redis. Uncapped, the
    /// bucket's nanoseconds saturated at `u64::MAX`, and a saturated bucket compared as
    /// within its (saturated) capacity: it admitted every request, and a runaway overrun left
    /// its key free for good.
    #[test]
    fn a_burst_past_2_63_nanoseconds_is_capped_and_stays_a_refusal() {
        const MAX_BURST_DAYS: u32 = 106_751;
        let day = Duration::from_secs(86_400);
        let limiter = RateLimiter::new([Policy::per_principal(
            "tokens",
            Quota::per_day(nz(1)).burst(NonZeroU32::MAX),
        )]);
        let h = HeaderMap::new();
        let now = 1_000_000u64;

        // A runaway overrun: one burst of debt, then a refusal for about a burst (what
        // saturation at `u64::MAX` rounds away is less than a day).
        let k = principal("a", &h);
        let (_, r) = limiter.reserve_at(&k, 1, now);
        r.unwrap().settle_at(u64::MAX, now);
        match limiter.check_at(&k, 1, now) {
            Decision::Limited { retry_after, .. } => assert!(
                retry_after > day * MAX_BURST_DAYS && retry_after <= day * (MAX_BURST_DAYS + 2),
                "retry after {retry_after:?}"
            ),
            other => panic!("admitted after a runaway overrun: {other:?}"),
        }

        // A fresh key: past the cap refused, the cap itself admitted, then nothing more.
        let k = principal("b", &h);
        assert_eq!(limiter.statuses_at(&k, now)[0].remaining(), MAX_BURST_DAYS);
        let admitted: Vec<bool> = [200_000_000, MAX_BURST_DAYS, 1]
            .into_iter()
            .map(|cost| limiter.check_at(&k, cost, now).is_admitted())
            .collect();
        assert_eq!(admitted, [false, true, false]);
    }

    #[test]
    fn an_overrun_leaves_at_most_one_burst_of_debt() {
        // 10 units a second, burst 10: 100 ms a unit, 1 s a burst.
        let limiter = RateLimiter::new([
            Policy::per_principal("tokens", Quota::per_second(nz(10))),
            Policy::global("all", Quota::per_second(nz(1000))),
        ]);
        let h = HeaderMap::new();
        let k = principal("u", &h);
        let (ms, sec) = (1_000_000u64, 1_000_000_000u64);

        // A handler reports a million units against a reservation of 2: the bucket goes one
        // burst into debt, no further (refused for 1.1 s, full again after 2 s), not for
        // the 100 000 s the report would take to refill.
        let (_, r) = limiter.reserve_at(&k, 2, 0);
        r.unwrap().settle_at(1_000_000, 0);
        match limiter.check_at(&k, 1, 0) {
            Decision::Limited {
                retry_after,
                violated,
                ..
            } => {
                assert_eq!(retry_after, Duration::from_millis(1_100));
                assert_eq!(violated, ["tokens", "all"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(limiter.check_at(&k, 1, 1_100 * ms).is_admitted());
        let statuses = limiter.statuses_at(&k, 3 * sec);
        assert_eq!(statuses[0].remaining(), 10);
        // Each policy by its own burst: `all` (1000 a second) was also left 1 s in debt, full
        // again at 2 s; the unit charged at 1.1 s is on top of that.
        assert_eq!(statuses[1].reset(), Duration::ZERO);
        let statuses = limiter.statuses_at(&k, 1_100 * ms);
        assert_eq!(statuses[1].reset(), Duration::from_millis(900 + 1));

        // Concurrent overruns do not add up past the bound either, and nothing overflows.
        let (_, a) = limiter.reserve_at(&k, 1, 10 * sec);
        let (_, b) = limiter.reserve_at(&k, 1, 10 * sec);
        a.unwrap().settle_at(50, 10 * sec);
        b.unwrap().settle_at(u64::MAX, 10 * sec);
        assert_eq!(
            limiter.statuses_at(&k, 10 * sec)[0].reset(),
            Duration::from_secs(2)
        );
    }

    /// The `RateLimit` field at its edges: a fresh key (full: `t=0`), the burst just spent,
    /// the refusal that follows (`r=0`, not a count below zero; Retry-After until one unit,
    /// `t` until full, both rounded up), and a bucket in debt after an overrun.
    #[test]
    fn ratelimit_fields_at_the_edges() {
        let limiter = RateLimiter::new([Policy::per_principal(
            "p",
            Quota::per_minute(nz(60)).burst(nz(2)),
        )]);
        let h = HeaderMap::new();
        let k = principal("u", &h);
        let ms = 1_000_000u64;
        let field = |s: &Statuses| ratelimit_header(s).unwrap();
        assert_eq!(field(&limiter.statuses_at(&k, 0)), "\"p\";r=2;t=0");
        assert!(limiter.check_at(&k, 2, 0).is_admitted());
        assert_eq!(field(&limiter.statuses_at(&k, 0)), "\"p\";r=0;t=2");
        match limiter.check_at(&k, 1, 500 * ms) {
            Decision::Limited {
                retry_after,
                statuses,
                ..
            } => {
                assert_eq!(retry_after, Duration::from_millis(500));
                assert_eq!(field(&statuses), "\"p\";r=0;t=2");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(field(&limiter.statuses_at(&k, 1_000 * ms)), "\"p\";r=1;t=1");
        // An overrun: one burst of debt, still `r=0`, full again after two bursts' time.
        let (_, r) = limiter.reserve_at(&k, 1, 2_000 * ms);
        r.unwrap().settle_at(1_000, 2_000 * ms);
        assert_eq!(field(&limiter.statuses_at(&k, 2_000 * ms)), "\"p\";r=0;t=4");
    }

    /// The interval is rounded up (`per_minute(7)`: 8 571 428 572 ns), so a burst drained at
    /// once is full again 4 ns after the minute. `t` used to read 61 for it (`per_second(3)`:
    /// 2); it reads the period now, and a second later a second less. Only that rounding is
    /// left out: a bucket a nanosecond further from full still rounds up.
    #[test]
    fn the_reset_of_a_drained_burst_is_its_period() {
        const SEC: u64 = 1_000_000_000;
        let h = HeaderMap::new();
        let k = principal("u", &h);
        for (quota, t) in [
            (Quota::per_minute(nz(7)), 60),
            (Quota::per_second(nz(3)), 1),
            (Quota::per_hour(nz(7)), 3600),
            (Quota::per_minute(nz(7)).burst(nz(14)), 120),
            (Quota::per_day(nz(7)).burst(nz(1)), 12_343),
            // Intervals that divide exactly: as before.
            (Quota::per_minute(nz(60)), 60),
            (Quota::per_second(nz(1000)).burst(nz(2500)), 3),
            // 1.2 s to refill at 2 ns a unit (1.67 asked): the period.
            (Quota::per_second(nz(600_000_000)), 1),
            // 4.29 s at 1 ns a unit (0.23 asked): never a whole second short of the refill.
            (Quota::per_second(nz(u32::MAX)), 4),
        ] {
            let limiter = RateLimiter::new([Policy::per_principal("p", quota)]);
            // Drained at 1 s.
            assert!(limiter.check_at(&k, quota.burst_size(), SEC).is_admitted());
            let statuses = |now| limiter.statuses_at(&k, now);
            for (now, t) in [(SEC, t), (2 * SEC, (t - 1).max(1))] {
                let s = statuses(now);
                let expected = format!("\"p\";r={};t={t}", s[0].remaining());
                assert_eq!(
                    ratelimit_header(&s).unwrap(),
                    expected.as_str(),
                    "{quota:?}"
                );
                // The value made once for most responses agrees.
                assert_eq!(limiter.ratelimit_header(&s).unwrap(), expected.as_str());
            }
            // Enforcement is unchanged: the whole burst again only once really full.
            let full = SEC + u64::try_from(statuses(SEC)[0].reset().as_nanos()).unwrap();
            let burst = quota.burst_size();
            assert!(
                !limiter.check_at(&k, burst, full - 1).is_admitted(),
                "{quota:?}"
            );
            assert!(limiter.check_at(&k, burst, full).is_admitted(), "{quota:?}");
        }

        // A nanosecond further from full than a burst drained at once (60 s and 4 ns), or
        // past a whole minute where the interval divides exactly, still rounds up.
        for (quota, late, t) in [
            (Quota::per_minute(nz(7)), 0, 60),
            (Quota::per_minute(nz(7)), 1, 61),
            (Quota::per_minute(nz(60)), 0, 60),
            (Quota::per_minute(nz(60)), 1, 61),
            (Quota::per_second(nz(3)), 0, 1),
            (Quota::per_second(nz(3)), 1, 2),
        ] {
            let limiter = RateLimiter::new([Policy::per_principal("p", quota)]);
            assert!(limiter.check_at(&k, quota.count(), late).is_admitted());
            assert_eq!(
                ratelimit_header(&limiter.statuses_at(&k, 0)).unwrap(),
                format!("\"p\";r=0;t={t}").as_str(),
                "{quota:?} drained {late} ns late"
            );
        }

        // Whatever the bucket's level: `t` never exceeds the old rounding up, never falls
        // short of the time to full by the slack or more (nor by a whole second), is 0 only
        // for a full bucket, and for an empty one never precedes the burst's refill at the
        // rate asked.
        for quota in [
            Quota::per_minute(nz(7)),
            Quota::per_second(nz(3)).burst(nz(5)),
            Quota::per_day(nz(13)),
            Quota::per_second(nz(600_000_000)),
            Quota::per_second(nz(u32::MAX)).burst(nz(3)),
        ] {
            let limiter = RateLimiter::new([Policy::per_principal("p", quota)]);
            let policy = &limiter.0.policies[0];
            let (interval, capacity) = (policy.interval, policy.capacity);
            assert!(limiter.check_at(&k, quota.burst_size(), 0).is_admitted());
            let asked = quota.period().as_nanos() * u128::from(quota.burst_size())
                / u128::from(quota.count());
            let nows = [0, 1, 2, 3, 5, interval / 2, interval, SEC - 1, SEC, SEC + 1]
                .into_iter()
                .chain((1..=40).map(|i| capacity / 40 * i))
                .chain((0..8).map(|i| capacity.saturating_sub(i)));
            for now in nows.filter(|n| *n <= capacity) {
                let s = &limiter.statuses_at(&k, now)[0];
                let (used, t) = (capacity - now, s.reset_secs());
                assert!(t <= used.div_ceil(SEC), "{quota:?} at {now}");
                assert!(
                    t * SEC + s.slack >= used && t * SEC + SEC > used,
                    "{quota:?} at {now}"
                );
                assert_eq!(t == 0, used == 0, "{quota:?} at {now}");
                if now == 0 {
                    assert!(u128::from(t * SEC) >= asked, "{quota:?}");
                }
            }
        }
    }

    #[test]
    fn shadow_policies_report_but_do_not_refuse() {
        let limiter = RateLimiter::new([
            Policy::per_client_ip("ip", Quota::per_hour(nz(10))),
            Policy::global("new-limit", Quota::per_hour(nz(2))).shadow(),
        ]);
        let h = HeaderMap::new();
        for _ in 0..2 {
            assert!(matches!(
                limiter.check(&keys("10.0.0.1", &h), 1),
                Decision::Allowed(_)
            ));
        }
        match limiter.check(&keys("10.0.0.1", &h), 1) {
            Decision::Shadowed { violated, statuses } => {
                assert_eq!(violated, vec![PolicyName::from("new-limit")]);
                assert_eq!(
                    statuses[0].remaining(),
                    7,
                    "the enforcing policy was charged"
                );
            }
            other => panic!("{other:?}"),
        }
        // The enforcing policy still refuses.
        for _ in 0..7 {
            assert!(limiter.check(&keys("10.0.0.1", &h), 1).is_admitted());
        }
        assert!(matches!(
            limiter.check(&keys("10.0.0.1", &h), 1),
            Decision::Limited { ref violated, .. } if violated[..] == [PolicyName::from("ip")]
        ));
        // A lone shadow policy never refuses either.
        let alone = RateLimiter::new([Policy::global("g", Quota::per_hour(nz(1))).shadow()]);
        assert!(matches!(
            alone.check(&keys("10.0.0.1", &h), 1),
            Decision::Allowed(_)
        ));
        assert!(matches!(
            alone.check(&keys("10.0.0.1", &h), 1),
            Decision::Shadowed { .. }
        ));
    }

    #[test]
    fn budget_math_holds_on_random_reserve_settle_schedules() {
        // Property: whatever the schedule, the units actually charged in any time window of
        // length w stay within burst + w / interval (the GCRA guarantee, with settlement),
        // and a reservation is refused only when the exact bucket level leaves no room.
        let burst = 200u64;
        let interval = 1_000_000u64; // 1 ms per unit: 1000 units a second
        let quota = Quota::per_second(nz(1000)).burst(nz(200));
        for seed in 1..=20u64 {
            let limiter = RateLimiter::new([Policy::global("budget", quota)]);
            let h = HeaderMap::new();
            let keys = RequestKeys::new(None, &h);
            let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut next = || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            let (mut now, mut tat) = (0u64, 0u64);
            let mut charged: Vec<(u64, u64)> = Vec::new();
            for _ in 0..2_000 {
                now += next() % 40_000_000; // up to 40 ms between requests
                let estimate = 1 + next() % 60;
                let actual = next() % (estimate + 1);
                let room = tat.max(now) + estimate * interval - now <= burst * interval;
                let (decision, reservation) = limiter.reserve_at(&keys, estimate as u32, now);
                assert_eq!(decision.is_admitted(), room, "seed {seed} at {now}");
                if let Some(r) = reservation {
                    r.settle_at(actual, now);
                    tat = tat.max(now) + actual * interval;
                    charged.push((now, actual));
                }
            }
            assert!(
                charged.len() > 100,
                "seed {seed}: the schedule should admit plenty"
            );
            for i in 0..charged.len() {
                let mut sum = 0;
                for j in i..charged.len() {
                    sum += charged[j].1;
                    let window = charged[j].0 - charged[i].0;
                    assert!(
                        sum <= burst + window / interval + 1,
                        "seed {seed}: {sum} units in {window} ns"
                    );
                }
            }
        }
    }

    /// A long key is counted by its digest, U+001E and 32 hex digits. A principal id (a
    /// JWT's `sub` may hold any character) or a custom key spelling that digest was kept as
    /// it is, and so shared the long key's bucket. Text starting with U+001E is now counted
    /// by its own digest.
    #[test]
    fn a_key_spelling_a_digest_does_not_share_its_bucket() {
        let once = Quota::per_hour(nz(1));
        let limiter = RateLimiter::new([Policy::per_principal("per-user", once)]);
        let long = "u".repeat(300);
        let Key::Text(digest) = text_key(&long) else {
            panic!("a text key")
        };
        assert!(digest.starts_with('\u{1e}'), "{digest:?}");
        let none = HeaderMap::new();
        let as_principal = |p: &str| {
            let keys = RequestKeys::new(None, &none).principal(Some(p));
            limiter.check_at(&keys, 1, 0).is_admitted()
        };
        assert!(as_principal(&long));
        assert!(
            as_principal(&digest),
            "the digest's spelling shared the long key's bucket"
        );
        assert!(!as_principal(&digest), "and has a bucket of its own");
        assert!(!as_principal(&long));
    }

    /// Key values over 256 bytes (a JWT in `Authorization`), or with bytes outside visible
    /// ASCII, used to go uncounted: such requests passed every per-header, route or custom
    /// policy. They are counted by a digest of the value, which keeps the key small.
    #[test]
    fn long_and_non_ascii_key_values_are_counted_by_a_digest() {
        let auth = HeaderName::from_static("authorization");
        let once = Quota::per_hour(nz(1));
        let limiter = RateLimiter::new([
            Policy::per_header("per-token", once, auth.clone()),
            Policy::keyed("per-route", once, KeyKind::Route),
        ]);
        let jwt = format!("Bearer eyJ{}", "A".repeat(600));
        // The same first 600 bytes: a digest of the whole value, not a truncation.
        let other_jwt = format!("{jwt}B");
        let obs_text = HeaderValue::from_bytes(b"caf\xe9-key").unwrap();
        let long_route = format!("/{}", "r".repeat(300));
        let mut h = HeaderMap::new();
        for value in [
            HeaderValue::from_str(&jwt).unwrap(),
            HeaderValue::from_str(&other_jwt).unwrap(),
            obs_text,
        ] {
            h.insert(&auth, value);
            let keys = RequestKeys::new(None, &h);
            assert!(limiter.check_at(&keys, 1, 0).is_admitted(), "{h:?}");
            assert!(!limiter.check_at(&keys, 1, 0).is_admitted(), "{h:?}");
        }
        let none = HeaderMap::new();
        let keys = RequestKeys::new(None, &none).route(Some(&long_route));
        assert!(limiter.check_at(&keys, 1, 0).is_admitted());
        assert!(!limiter.check_at(&keys, 1, 0).is_admitted(), "a long route");
        let tenant = KeyFn::new(|k| k.route.map(str::to_owned));
        let custom = RateLimiter::new([Policy::keyed("tenant", once, KeyKind::Custom(tenant))]);
        assert!(custom.check_at(&keys, 1, 0).is_admitted());
        assert!(
            !custom.check_at(&keys, 1, 0).is_admitted(),
            "a long custom key"
        );
        // What is kept per key stays small.
        for p in &limiter.0.policies {
            for entry in p.store.iter() {
                if let Key::Text(text) = entry.key() {
                    assert!(text.len() <= 256, "{} bytes kept", text.len());
                }
            }
        }
        assert_eq!(limiter.tracked_keys(), [3, 1]);
        // The digest is FNV-1a (128 bits): the same in every process sharing a Redis store.
        assert_eq!(
            digest_key(b"a"),
            Key::Text("\u{1e}d228cb696f1a8caf78912b704e4a8964".into())
        );
    }

    /// `RateLimit-Policy` names the policies that counted the request, as `RateLimit` does:
    /// all of them (the value made once, not a copy), some, or none; in the limiter's order,
    /// names in their field form; for a refusal too.
    #[test]
    fn the_policy_field_names_the_policies_that_counted_the_request() {
        let hour = Quota::per_hour(nz(2));
        let limiter = RateLimiter::new([
            Policy::per_client_ip("per-ip", hour),
            Policy::per_principal("caf\u{e9} \"users\"", hour),
            Policy::per_header("per-key", hour, HeaderName::from_static("x-api-key")),
        ]);
        let h = HeaderMap::new();
        let mut acme = HeaderMap::new();
        acme.insert("x-api-key", HeaderValue::from_static("acme"));
        let field = |keys: &RequestKeys<'_>| {
            let decision = limiter.check_at(keys, 1, 0);
            let ratelimit = limiter.ratelimit_header(decision.statuses());
            let policy = limiter.counted_policy_header(decision.statuses());
            assert_eq!(ratelimit.is_some(), policy.is_some(), "{keys:?}");
            (decision.is_admitted(), policy)
        };
        let all = limiter.policy_header().unwrap();
        let (_, counted_by_all) = field(&keys("10.0.0.1", &acme).principal(Some("ann")));
        let counted_by_all = counted_by_all.unwrap();
        assert_eq!(counted_by_all, all);
        assert!(
            std::ptr::eq(counted_by_all.as_bytes(), all.as_bytes()),
            "made once, cloned"
        );
        let user = "\"caf%C3%A9 \\\"users\\\"\";q=2;w=3600";
        let (_, by_ip_and_user) = field(&keys("10.0.0.2", &h).principal(Some("bo")));
        assert_eq!(
            by_ip_and_user.unwrap(),
            format!("\"per-ip\";q=2;w=3600, {user}").as_str()
        );
        let (_, by_key) = field(&RequestKeys::new(None, &acme));
        assert_eq!(by_key.unwrap(), "\"per-key\";q=2;w=3600");
        assert_eq!(field(&RequestKeys::new(None, &h)), (true, None));
        // Refused by the key's budget (spent above): the fields name what counted it.
        let (admitted, policy) = field(&keys("10.0.0.3", &acme));
        assert!(!admitted);
        assert_eq!(
            policy.unwrap(),
            "\"per-ip\";q=2;w=3600, \"per-key\";q=2;w=3600"
        );
        // One policy: the value made once, or none.
        let one = RateLimiter::new([Policy::per_principal("per-user", hour)]);
        let decision = one.check_at(&RequestKeys::new(None, &h), 1, 0);
        assert_eq!(one.counted_policy_header(decision.statuses()), None);
        let decision = one.check_at(&RequestKeys::new(None, &h).principal(Some("ann")), 1, 0);
        let policy = one.counted_policy_header(decision.statuses()).unwrap();
        assert!(std::ptr::eq(
            policy.as_bytes(),
            one.policy_header().unwrap().as_bytes()
        ));
    }

    /// A tenant key counts every principal of the tenant together; a request without a
    /// tenant, or with an empty one, is not counted by it; in a composite key it is one
    /// part like the others.
    #[test]
    fn tenant_keys() {
        let limiter = RateLimiter::new([Policy::per_tenant("per-tenant", Quota::per_hour(nz(1)))]);
        let h = HeaderMap::new();
        let of = |who, tenant| {
            RequestKeys::new(None, &h)
                .principal(Some(who))
                .tenant(tenant)
        };
        assert!(
            limiter
                .check_at(&of("ann", Some("acme")), 1, 0)
                .is_admitted()
        );
        assert!(
            !limiter
                .check_at(&of("bo", Some("acme")), 1, 0)
                .is_admitted()
        );
        assert!(
            limiter
                .check_at(&of("bo", Some("globex")), 1, 0)
                .is_admitted()
        );
        for tenant in [None, Some("")] {
            for _ in 0..3 {
                let decision = limiter.check_at(&of("cy", tenant), 1, 0);
                assert!(decision.statuses().is_empty(), "{tenant:?}: {decision:?}");
            }
        }
        assert_eq!(limiter.tracked_keys(), [2]);
        let user_in_tenant = KeyKind::Composite(vec![KeyKind::Tenant, KeyKind::Principal]);
        assert_eq!(
            key_for(&user_in_tenant, &of("ann", Some("acme"))),
            Some(Key::Text("acme\u{1f}ann".into()))
        );
        assert_eq!(key_for(&user_in_tenant, &of("ann", None)), None);
        // The tenant comes from the `TenantId` in the extensions, as the principal from its
        // `PrincipalId`.
        let mut extensions = http::Extensions::new();
        extensions.insert(hardening_errors::PrincipalId::new("ann"));
        extensions.insert(hardening_errors::TenantId::new("acme"));
        let uri = http::Uri::from_static("/notes");
        let keys = RequestKeys::from_http(&extensions, &h, &uri);
        assert_eq!((keys.principal, keys.tenant), (Some("ann"), Some("acme")));
    }

    /// A limiter of one request an hour per principal and route.
    fn one_per_user_and_route() -> RateLimiter {
        RateLimiter::new([Policy::keyed(
            "user-route",
            Quota::per_hour(nz(1)),
            KeyKind::Composite(vec![KeyKind::Principal, KeyKind::Route]),
        )])
    }

    /// The keys of a request by principal `who` to `route`.
    fn user_at_route<'a>(h: &'a HeaderMap, who: &'a str, route: &'a str) -> RequestKeys<'a> {
        RequestKeys::new(None, h)
            .principal(Some(who))
            .route(Some(route))
    }

    #[test]
    fn route_custom_and_composite_keys() {
        let limiter = one_per_user_and_route();
        let h = HeaderMap::new();
        let k = |who, route| user_at_route(&h, who, route);
        assert!(limiter.check(&k("ann", "/a"), 1).is_admitted());
        assert!(!limiter.check(&k("ann", "/a"), 1).is_admitted());
        assert!(
            limiter.check(&k("ann", "/b"), 1).is_admitted(),
            "another route"
        );
        assert!(
            limiter.check(&k("bo", "/a"), 1).is_admitted(),
            "another user"
        );
        assert!(
            limiter
                .check(&RequestKeys::new(None, &h).route(Some("/a")), 1)
                .is_admitted(),
            "no principal: not counted"
        );
        let tenant = KeyFn::new(|k| {
            k.headers
                .get("x-tenant")
                .and_then(|v| v.to_str().ok())
                .map(|t| t.to_ascii_lowercase())
        });
        let limiter = RateLimiter::new([Policy::keyed(
            "tenant",
            Quota::per_hour(nz(1)),
            KeyKind::Custom(tenant),
        )]);
        let mut acme = HeaderMap::new();
        acme.insert("x-tenant", http::HeaderValue::from_static("ACME"));
        let mut acme2 = HeaderMap::new();
        acme2.insert("x-tenant", http::HeaderValue::from_static("acme"));
        assert!(
            limiter
                .check(&RequestKeys::new(None, &acme), 1)
                .is_admitted()
        );
        assert!(
            !limiter
                .check(&RequestKeys::new(None, &acme2), 1)
                .is_admitted(),
            "same tenant"
        );
    }

    /// A part holding the separator made two lists of parts one key: `("a\u{1f}b", "c")` and
    /// `("a", "b\u{1f}c")` shared a budget (so did `("", "a\u{1f}b")` and `("a", "b")`, the
    /// separator being skipped after an empty first part).
    #[test]
    fn composite_keys_of_different_parts_differ() {
        let limiter = one_per_user_and_route();
        let h = HeaderMap::new();
        let k = |who, route| user_at_route(&h, who, route);
        assert!(limiter.check_at(&k("a\u{1f}b", "c"), 1, 0).is_admitted());
        assert!(
            limiter.check_at(&k("a", "b\u{1f}c"), 1, 0).is_admitted(),
            "another user and route"
        );
        assert!(!limiter.check_at(&k("a\u{1f}b", "c"), 1, 0).is_admitted());

        // Every pair (and nested triple) of awkward parts, empty ones included, has a key of
        // its own.
        let alphabet = [
            "",
            "a",
            "b",
            "*",
            "\u{1f}",
            "\u{1b}",
            "\u{1e}",
            "a\u{1f}",
            "\u{1f}b",
            "a\u{1f}b",
            "\u{1b}\u{1f}",
            "\u{1f}\u{1b}",
            "a\u{1b}",
            "\u{1b}b",
            "\u{1b}\u{1b}",
            "\u{1f}\u{1f}",
        ];
        let who = KeyKind::Custom(KeyFn::new(|k| k.principal.map(str::to_owned)));
        let route = KeyKind::Custom(KeyFn::new(|k| k.route.map(str::to_owned)));
        let pair = KeyKind::Composite(vec![who.clone(), route.clone()]);
        let nested = KeyKind::Composite(vec![pair.clone(), route]);
        for kind in [&pair, &nested] {
            let mut seen = std::collections::HashMap::new();
            for a in alphabet {
                for b in alphabet {
                    let key = key_for(kind, &k(a, b)).unwrap();
                    if let Some(first) = seen.insert(key.clone(), (a, b)) {
                        panic!("{first:?} and {:?} are both {key:?}", (a, b));
                    }
                }
            }
        }

        // Parts without the separator or the escape keep the key they had (a Redis store
        // shared with instances of the previous version counts them in the same buckets).
        assert_eq!(
            key_for(&pair, &k("ann", "/a")),
            Some(Key::Text("ann\u{1f}/a".into()))
        );
        let mut auth = HeaderMap::new();
        let token = "t".repeat(300);
        auth.insert("authorization", HeaderValue::from_str(&token).unwrap());
        let ip_token = KeyKind::Composite(vec![
            KeyKind::ClientIp { ipv6_prefix: 64 },
            KeyKind::Header(HeaderName::from_static("authorization")),
            KeyKind::Global,
        ]);
        let Key::Text(digest) = digest_key(token.as_bytes()) else {
            panic!("a digest is text")
        };
        let client = "2001:db8::1".parse().ok();
        assert_eq!(
            key_for(&ip_token, &RequestKeys::new(client, &auth)),
            Some(Key::Text(format!("2001:db8::\u{1f}{digest}\u{1f}*").into()))
        );
    }

    /// An IPv6 address that carries an IPv4 client (6to4, Teredo) shares that client's
    /// bucket (`hardening_errors::client_group`'s own tests cover the grouping).
    #[test]
    fn ipv6_carrying_an_ipv4_client_shares_its_bucket() {
        let limiter = RateLimiter::new([Policy::per_client_ip("ip", Quota::per_hour(nz(1)))]);
        let h = HeaderMap::new();
        assert!(
            limiter
                .check(&keys("2002:c000:221:1::1", &h), 1)
                .is_admitted()
        );
        for ip in [
            "2002:c000:221:2::1",
            "192.0.2.33",
            "2001:0:4136:e378:0:0:3fff:fdde",
        ] {
            assert!(!limiter.check(&keys(ip, &h), 1).is_admitted(), "{ip}");
        }
    }

    /// A NAT64 (RFC 6052) or local-use (RFC 8215) address carries an IPv4 client: all of
    /// them used to fall in one /64 and share one bucket.
    #[test]
    fn nat64_clients_are_counted_by_their_ipv4_address() {
        let group = |ip: &str, bits| client_group(ip.parse().unwrap(), bits).to_string();
        // The well-known prefix: the IPv4 address, whatever the policy's prefix length.
        assert_eq!(group("64:ff9b::192.0.2.1", 64), "192.0.2.1");
        assert_eq!(group("64:ff9b::c633:6407", 0), "198.51.100.7");
        assert_eq!(group("64:ff9b::", 64), "0.0.0.0");
        // The local-use /48: the whole address, for any translator prefix length in it
        // (192.0.2.1 behind a /96, a /48 and a /64 prefix).
        assert_eq!(group("64:ff9b:1::192.0.2.1", 64), "64:ff9b:1::c000:201");
        assert_eq!(
            group("64:ff9b:1:c000:2:100::", 48),
            "64:ff9b:1:c000:2:100::"
        );
        assert_eq!(
            group("64:ff9b:1:ab:c0:2:100::", 64),
            "64:ff9b:1:ab:c0:2:100:0"
        );
        // Near misses: grouped like any other address.
        assert_eq!(group("64:ff9b:0:0:1::c000:201", 64), "64:ff9b::");
        assert_eq!(group("64:ff9b:2::c000:201", 64), "64:ff9b:2::");
        assert_eq!(group("64:ff9a::c000:201", 64), "64:ff9a::");
        assert_eq!(group("::192.0.2.1", 64), "::");
        assert_eq!(group("::ffff:0:192.0.2.1", 64), "::");
        assert_eq!(group("::1", 128), "::1");
        assert_eq!(group("1::ffff:c000:201", 64), "1::");

        let limiter = RateLimiter::new([Policy::per_client_ip("ip", Quota::per_hour(nz(1)))]);
        let h = HeaderMap::new();
        let admitted = |ip| limiter.check_at(&keys(ip, &h), 1, 0).is_admitted();
        assert!(admitted("64:ff9b::192.0.2.1"));
        assert!(admitted("64:ff9b::198.51.100.7"), "another IPv4 client");
        assert!(!admitted("192.0.2.1"), "one client, seen through NAT64");
        assert!(!admitted("::ffff:198.51.100.7"), "or mapped");
        assert!(admitted("64:ff9b:1::192.0.2.1"));
        assert!(admitted("64:ff9b:1::198.51.100.7"), "another IPv4 client");
        assert!(!admitted("64:ff9b:1::192.0.2.1"));
    }
}
