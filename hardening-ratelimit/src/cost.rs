//! Cost-aware limits ("denial of wallet"): reserve an estimate before the handler runs,
//! settle the actual cost when the response body ends, refund what a failure did not spend.

use std::fmt;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::FromRequestParts;
use bytes::Bytes;
use hardening_errors::{BodyEnd, CollectError, Error, Problem, RequestId, WarnOnce};
use http::request::Parts;
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::respond::{RateLimitFields, problem_response, refusal, report_shadow, too_many};
use crate::{Decision, PolicyStatus, RateLimiter, RequestKeys, Reservation, ratelimit_header};

type EstimateFn = dyn Fn(&Parts, &[u8]) -> u32 + Send + Sync;

/// How a request's cost is estimated before the handler runs. The estimate is clamped to the
/// layer's [`max_estimate`](CostLayer::max_estimate).
///
/// An estimate of 0 (a route that pays only what its handler reports) reserves nothing, but
/// is not a free pass: the request is admitted only while every budget has at least one unit
/// left, so a spent budget refuses it with a 429 like any other.
#[derive(Clone)]
pub struct Estimate(EstimateRepr);

#[derive(Clone)]
enum EstimateRepr {
    Fixed(u32),
    ContentLength(NonZeroU32),
    JsonField { pointer: Arc<str>, default: u32 },
    Custom(Arc<EstimateFn>),
}

impl fmt::Debug for Estimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            EstimateRepr::Fixed(n) => f.debug_tuple("Estimate::fixed").field(n).finish(),
            EstimateRepr::ContentLength(n) => {
                f.debug_tuple("Estimate::content_length").field(n).finish()
            }
            EstimateRepr::JsonField { pointer, default } => f
                .debug_struct("Estimate::json_field")
                .field("pointer", pointer)
                .field("default", default)
                .finish(),
            EstimateRepr::Custom(_) => f.write_str("Estimate::from_fn(..)"),
        }
    }
}

impl Estimate {
    /// The same cost for every request (a route weight).
    pub fn fixed(units: u32) -> Self {
        Self(EstimateRepr::Fixed(units))
    }

    /// One unit per `bytes_per_unit` bytes of the body (at least one): its declared
    /// `Content-Length`, or, for a body sent without one (chunked), its bytes, counted by
    /// buffering it (up to [`CostLayer::max_body`]) and handed on unchanged.
    pub fn content_length(bytes_per_unit: NonZeroU32) -> Self {
        Self(EstimateRepr::ContentLength(bytes_per_unit))
    }

    /// A number in the JSON body at this JSON pointer (`"/max_tokens"`), or `default` when the
    /// body is empty or has nothing there. A fraction is rounded up; anything else there
    /// (`null`, a string, a negative number) counts as the most, which `max_estimate` then
    /// clamps, and so does a body that is not strict JSON (a lenient backend may still read
    /// `1e400` as infinity, or accept `NaN` or a byte-order mark; if it refuses the body
    /// instead, its 4xx refunds the reservation). The body is buffered (up to
    /// [`CostLayer::max_body`]) and handed on unchanged.
    ///
    /// A pointer that is not one (RFC 6901: empty, or each field after a `/`, with `~` only
    /// in `~0` and `~1`) is a [`CostConfigError::InvalidJsonPointer`]: `"max_tokens"` would
    /// find nothing in any body, and every request would cost `default`.
    ///
    /// # Errors
    ///
    /// [`CostConfigError::InvalidJsonPointer`], its message naming the pointer to write.
    ///
    /// ```
    /// use hardening_ratelimit::Estimate;
    ///
    /// assert!(Estimate::json_field("/max_tokens", 256).is_ok());
    /// let err = Estimate::json_field("max_tokens", 256).unwrap_err();
    /// assert!(err.to_string().contains("\"/max_tokens\""), "{err}");
    /// ```
    pub fn json_field(pointer: &str, default: u32) -> Result<Self, CostConfigError> {
        let bad_escape = pointer
            .match_indices('~')
            .any(|(at, _)| !matches!(pointer.as_bytes().get(at + 1), Some(b'0' | b'1')));
        if !(pointer.is_empty() || pointer.starts_with('/')) || bad_escape {
            return Err(CostConfigError::InvalidJsonPointer {
                pointer: pointer.to_owned(),
            });
        }
        Ok(Self(EstimateRepr::JsonField {
            pointer: pointer.into(),
            default,
        }))
    }

    /// Any function of the request head and the buffered body.
    pub fn from_fn(f: impl Fn(&Parts, &[u8]) -> u32 + Send + Sync + 'static) -> Self {
        Self(EstimateRepr::Custom(Arc::new(f)))
    }

    fn needs_body(&self, parts: &Parts) -> bool {
        match self.0 {
            EstimateRepr::Fixed(_) => false,
            EstimateRepr::ContentLength(_) => {
                !parts.headers.contains_key(http::header::CONTENT_LENGTH)
            }
            EstimateRepr::JsonField { .. } | EstimateRepr::Custom(_) => true,
        }
    }

    fn units(&self, parts: &Parts, body: &[u8]) -> u32 {
        match &self.0 {
            EstimateRepr::Fixed(n) => *n,
            EstimateRepr::ContentLength(per) => {
                // Without a `Content-Length`, the body was buffered (`needs_body`). One that
                // is not a number (hyper refuses those; a bare tower stack may not) counts
                // as the most.
                let len = match parts.headers.get(http::header::CONTENT_LENGTH) {
                    Some(declared) => declared
                        .to_str()
                        .ok()
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(u64::MAX),
                    None => body.len() as u64,
                };
                u32::try_from(len.div_ceil(u64::from(per.get())).max(1)).unwrap_or(u32::MAX)
            }
            EstimateRepr::JsonField { pointer, default } => {
                match serde_json::from_slice::<serde_json::Value>(body) {
                    Ok(v) => v.pointer(pointer).map_or(*default, json_count),
                    Err(_) if body.trim_ascii().is_empty() => *default,
                    Err(_) => u32::MAX,
                }
            }
            EstimateRepr::Custom(f) => f(parts, body),
        }
    }
}

/// A JSON value read as a count: a non-negative number (a fraction rounded up), and anything
/// else (`null`, a string, a negative number) as the most there is, never as less than a
/// lenient backend might read it as.
fn json_count(value: &serde_json::Value) -> u32 {
    if let Some(n) = value.as_u64() {
        return u32::try_from(n).unwrap_or(u32::MAX);
    }
    match value.as_f64() {
        // In range: the cast is exact after `ceil`.
        Some(f) if (0.0..=f64::from(u32::MAX)).contains(&f) => f.ceil() as u32,
        _ => u32::MAX,
    }
}

/// Where a [`CostLayer`] keeps its budgets: the in-memory [`RateLimiter`] (one instance) or,
#[cfg_attr(
    feature = "redis",
    doc = "with feature `redis`, a [`RedisLimiter`](crate::RedisLimiter) shared by every instance."
)]
#[cfg_attr(
    not(feature = "redis"),
    doc = "with feature `redis`, a `RedisLimiter` shared by every instance."
)]
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CostStore {
    /// In this process.
    Memory(RateLimiter),
    /// In Redis.
    #[cfg(feature = "redis")]
    Redis(crate::RedisLimiter),
}

impl From<RateLimiter> for CostStore {
    fn from(limiter: RateLimiter) -> Self {
        Self::Memory(limiter)
    }
}

#[cfg(feature = "redis")]
impl From<crate::RedisLimiter> for CostStore {
    fn from(limiter: crate::RedisLimiter) -> Self {
        Self::Redis(limiter)
    }
}

/// A reservation in either store.
#[derive(Debug)]
enum Reserved {
    Memory(Reservation),
    #[cfg(feature = "redis")]
    Redis(crate::RedisReservation),
}

impl Reserved {
    fn reserved(&self) -> u64 {
        match self {
            Self::Memory(r) => r.reserved(),
            #[cfg(feature = "redis")]
            Self::Redis(r) => r.reserved(),
        }
    }

    /// Settles and waits for it (in the request's own future): at once in memory; in Redis
    /// on a task of its own, so that the settlement completes even if the request's future
    /// is dropped while it waits (the client gone, a timeout further out).
    async fn settle_now(self, actual: u64) {
        match self {
            Self::Memory(r) => r.settle(actual),
            #[cfg(feature = "redis")]
            Self::Redis(r) => r.settle_to_completion(actual).await,
        }
    }

    /// Settles now (memory) or on a spawned task (Redis: a body's end or drop cannot wait;
    /// with no tokio runtime to spawn it on, it is lost, and logged once per policy).
    fn settle(self, actual: u64) {
        match self {
            Self::Memory(r) => r.settle(actual),
            #[cfg(feature = "redis")]
            Self::Redis(r) => r.settle_in_background(actual),
        }
    }
}

impl CostStore {
    fn policies(&self) -> Box<dyn Iterator<Item = &crate::Policy> + '_> {
        match self {
            Self::Memory(l) => Box::new(l.policies()),
            #[cfg(feature = "redis")]
            Self::Redis(l) => Box::new(l.policies()),
        }
    }

    /// The policies that size `max_estimate`: the enforcing ones (a shadow policy observes
    /// and must not lower what the enforcing ones charge), or all when every one is shadow.
    fn sizing_policies(&self) -> impl Iterator<Item = &crate::Policy> + '_ {
        let all_shadow = self.policies().all(crate::Policy::is_shadow);
        self.policies()
            .filter(move |p| all_shadow || !p.is_shadow())
    }

    /// Whether an enforcing policy counts this request (has a key for it): one only shadow
    /// policies count is not limited. A limiter whose policies are all shadow limits nothing
    /// by design, and refuses nothing for this either.
    fn limits(&self, keys: &RequestKeys<'_>) -> bool {
        !crate::respond::counts_nothing(self.policies(), keys)
    }

    /// What a full bucket of `policy` holds in this store (Redis refills in whole µs).
    fn bucket_holds(&self, policy: &crate::Policy) -> u32 {
        match self {
            Self::Memory(_) => policy.quota().effective_burst(),
            #[cfg(feature = "redis")]
            Self::Redis(_) => policy
                .quota()
                .effective_burst_in(crate::redis_store::NANOS_PER_UNIT),
        }
    }

    /// `RateLimit-Policy` for the policies that counted a request (of these statuses).
    fn counted_policy_header(&self, statuses: &[PolicyStatus]) -> Option<http::HeaderValue> {
        match self {
            Self::Memory(l) => l.counted_policy_header(statuses),
            #[cfg(feature = "redis")]
            Self::Redis(l) => l.counted_policy_header(statuses),
        }
    }

    async fn reserve(&self, keys: &RequestKeys<'_>, estimate: u32) -> Reserving {
        match self {
            Self::Memory(l) => {
                let (d, r) = l.reserve(keys, estimate);
                Reserving::Decided(d, r.map(Reserved::Memory))
            }
            #[cfg(feature = "redis")]
            Self::Redis(l) => match l.reserve(keys, estimate).await {
                Ok((d, r)) => Reserving::Decided(d, r.map(Reserved::Redis)),
                Err(unavailable) => Reserving::Unavailable(unavailable),
            },
        }
    }
}

/// What [`CostStore::reserve`] came to.
enum Reserving {
    /// The store decided (with the reservation, if admitted).
    Decided(Decision, Option<Reserved>),
    /// Redis could not be asked and a fail-closed policy refused: no budget was read.
    #[cfg(feature = "redis")]
    Unavailable(crate::RedisUnavailable),
}

/// A misconfigured [`CostLayer`] or [`Estimate`]; `Debug` prints the message too.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CostConfigError {
    /// A pointer for [`Estimate::json_field`] that is not a JSON pointer, so that it would
    /// find nothing in any body.
    #[error(
        "Estimate::json_field({pointer:?}) is not a JSON pointer (RFC 6901) and would find \
         nothing in any body: start it with /, as in \"/max_tokens\" (\"/usage/max_tokens\" \
         for a nested field), and write ~ as ~0 and / inside a name as ~1"
    )]
    InvalidJsonPointer {
        /// The pointer given.
        pointer: String,
    },
    /// The limiter has no policy to charge.
    #[error("the cost limiter has no policies: add at least one Policy to the RateLimiter")]
    NoPolicies,
    /// One request could reserve a whole budget.
    #[error(
        "max_estimate {max_estimate} would let one request reserve the whole of policy `{policy}` \
         (a full bucket holds {burst}): use a max_estimate below {burst}, or raise the policy's \
         burst (or its rate, for a burst of more than 292 years of refill)"
    )]
    EstimateTooLarge {
        /// The cap asked for.
        max_estimate: u32,
        /// The smallest policy.
        policy: String,
        /// What its full bucket holds: its burst, or less for a burst of more than 2^63 ns of
        /// refill.
        burst: u32,
    },
}

hardening_errors::debug_as_message!(CostConfigError);

/// Cost-aware limiting as a tower layer: put it on the routes that spend money (an LLM call),
/// inside the auth layer so per-principal budgets see the principal, and behind the check that
/// refuses anonymous callers (with `hardening-auth`,
/// `.route_layer(axum::middleware::from_extractor::<Authenticated>())` added after it).
///
/// For each request it estimates the cost ([`Estimate`], clamped to
/// [`max_estimate`](Self::max_estimate)) and **reserves** it under every policy of the
/// limiter at once, all-or-nothing, before the handler runs (a refused request gets a 429
/// problem with `Retry-After` and the violated policies). The handler reports what was really
/// spent through the [`Usage`] handle (it can add to it while streaming) or an [`ActualCost`]
/// response extension. When the response body **ends** (its last frame: one that says so,
/// trailers, or over HTTP/1 the last byte of a declared length; or at once for a response
/// that carries none: `HEAD`, 204, 304, and a tunnel: a 101 or a 2xx to `CONNECT`), the
/// reservation is settled to the actual cost (an unreported success keeps its estimate; so
/// does a tunnel, whose connection spends after the response, where no report reaches it).
/// A report above the reservation is charged on top, but only as far as it leaves each
/// budget one burst in debt (see [`Reservation::settle`]; logged as a warning once per
/// policy): a runaway report cannot lock a principal, or everyone under a global budget,
/// out for longer than that. A **5xx** response (when its body ends, for one that streams)
/// or a service error is charged the usage reported, and only that: the rest is refunded,
/// all of it when nothing was reported (no model call made, and the server's fault). So is
/// a body **dropped** before its end (client gone), or a request dropped before its
/// response exists (a timeout or a caught panic further out, a client gone before the
/// response head): tokens the model produced were spent, and a client must not be able to
/// get them free by hanging up, nor by provoking a failure after them. A refund gives back
/// only the part of the reservation that time has not refilled yet (a long call's units
/// have partly come back on their own).
///
/// A request that no enforcing policy counts (per-principal budgets and no principal: an
/// anonymous caller, or the layer outside the auth layer; a header-keyed one and no header)
/// is refused before the handler runs with a 500 problem, and the layer warns once what to
/// change, unless [`dangerous_allow_unkeyed`](Self::dangerous_allow_unkeyed) admits it
/// unlimited.
///
/// A 429, a 413 for a body over [`max_body`](Self::max_body), and that 500 are each one
/// security event (`rate_limited`, `body_too_large`, `cost_limit_unkeyed`), reported once,
/// as [`RateLimitLayer`](crate::RateLimitLayer) reports its own. With a `RedisLimiter` whose
/// Redis is away, a fail-closed budget refuses with a 503 problem instead, with `Retry-After`
/// and no `RateLimit` field (`rate_limit_unavailable`): nothing says the budget is spent.
///
/// ```
/// use std::num::NonZeroU32;
/// use axum::{Router, body::Body, routing::post};
/// use hardening_errors::PrincipalId;
/// use hardening_ratelimit::{CostLayer, Estimate, Policy, Quota, RateLimiter, Usage};
/// use tower::ServiceExt;
///
/// let tokens = RateLimiter::new([Policy::per_principal(
///     "tokens-per-day",
///     Quota::per_day(NonZeroU32::new(1_000).unwrap()),
/// )]);
/// let layer = CostLayer::new(tokens, Estimate::json_field("/max_tokens", 256)?)
///     .max_estimate(NonZeroU32::new(900).unwrap())?;
/// let app: Router = Router::new()
///     .route("/v1/complete", post(|usage: Usage| async move {
///         usage.add(800); // what the model reported
///         "…"
///     }))
///     .layer(layer);
///
/// // The auth layer puts the caller's `PrincipalId` in the request.
/// let complete = |body: &'static str| {
///     let req = http::Request::post("/v1/complete").extension(PrincipalId::new("user-1"));
///     app.clone().oneshot(req.body(Body::from(body)).unwrap())
/// };
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let res = complete(r#"{"max_tokens": 900}"#).await?;
/// assert_eq!(res.status(), 200);
/// axum::body::to_bytes(res.into_body(), 4096).await?; // its end settles 900 down to 800
/// let res = complete(r#"{"max_tokens": 500}"#).await?;
/// assert_eq!(res.status(), 429);
/// assert_eq!(res.headers()["content-type"], "application/problem+json");
/// assert!(res.headers()["ratelimit"].to_str()?.starts_with(r#""tokens-per-day";r=200;"#));
/// assert_eq!(res.headers()["ratelimit-policy"], r#""tokens-per-day";q=1000;w=86400"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct CostLayer {
    limiter: CostStore,
    estimate: Estimate,
    max_estimate: u32,
    max_body: usize,
    allow_unkeyed: bool,
    /// Whether a request that no enforcing policy counts was warned about (once per layer).
    warned_unkeyed: Arc<WarnOnce>,
    fields: Arc<RateLimitFields>,
}

impl fmt::Debug for CostLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CostLayer")
            .field("limiter", &self.limiter)
            .field("estimate", &self.estimate)
            .field("max_estimate", &self.max_estimate)
            .field("max_body", &self.max_body)
            .field("allow_unkeyed", &self.allow_unkeyed)
            .finish_non_exhaustive()
    }
}

impl CostLayer {
    /// Reserves `estimate` per request under every policy of `limiter` (a [`RateLimiter`], or
    /// a `RedisLimiter` to share budgets across instances). The estimate is capped at a tenth
    /// of the smallest enforcing policy's burst until [`max_estimate`](Self::max_estimate) says
    /// otherwise; bodies are buffered up to 1 MiB when the estimate reads them.
    pub fn new(limiter: impl Into<CostStore>, estimate: Estimate) -> Self {
        let limiter = limiter.into();
        let smallest = limiter
            .sizing_policies()
            .map(|p| limiter.bucket_holds(p))
            .min()
            .unwrap_or(1);
        Self {
            limiter,
            estimate,
            max_estimate: (smallest / 10).max(1),
            max_body: 1024 * 1024,
            allow_unkeyed: false,
            warned_unkeyed: Arc::default(),
            fields: Arc::new(RateLimitFields::new("CostLayer")),
        }
    }

    /// The most one request may reserve; must be below every enforcing policy's burst (shadow
    /// policies count only when every policy is one) (as a full
    /// bucket holds it: a burst past 2^63 ns of refill counts as that, see
    /// [`Quota::burst`](crate::Quota::burst)), so one request can never take a whole budget,
    /// nor ask for more than a bucket holds.
    ///
    /// # Errors
    ///
    /// [`CostConfigError::EstimateTooLarge`] for a cap at or above that burst, naming the
    /// policy; [`CostConfigError::NoPolicies`] for a limiter without policies.
    pub fn max_estimate(mut self, max: NonZeroU32) -> Result<Self, CostConfigError> {
        let smallest = self
            .limiter
            .sizing_policies()
            .min_by_key(|p| self.limiter.bucket_holds(p))
            .ok_or(CostConfigError::NoPolicies)?;
        let burst = self.limiter.bucket_holds(smallest);
        if max.get() >= burst {
            return Err(CostConfigError::EstimateTooLarge {
                max_estimate: max.get(),
                policy: smallest.name().to_string(),
                burst,
            });
        }
        self.max_estimate = max.get();
        Ok(self)
    }

    /// The largest body buffered for the estimate (default 1 MiB); larger ones get a 413. A
    /// body with more than [`MAX_EMPTY_FRAMES`](hardening_errors::MAX_EMPTY_FRAMES) frames
    /// without bytes (empty data frames, trailers) gets a 400, as an unreadable one does.
    /// Never zero, which would refuse every body the estimate reads.
    #[must_use]
    pub fn max_body(mut self, bytes: std::num::NonZeroUsize) -> Self {
        self.max_body = bytes.get();
        self
    }

    /// Admits a request that no enforcing policy counts (an anonymous one under per-principal
    /// budgets), with nothing reserved: it spends without limit. Logged as a loosening.
    #[must_use]
    pub fn dangerous_allow_unkeyed(mut self) -> Self {
        tracing::warn!(
            target: "hardening",
            setting = "CostLayer::dangerous_allow_unkeyed",
            "hardening loosened: CostLayer admits requests that none of its enforcing \
             policies counts (no principal, client IP or header it counts by), reserving \
             nothing: they spend without limit"
        );
        self.allow_unkeyed = true;
        self
    }

    /// Says once per layer that a request no enforcing policy counts was refused, and what to
    /// change (the policies' names; never the request's keys).
    #[cold]
    fn warn_unkeyed(&self) {
        if !self.warned_unkeyed.first() {
            return;
        }
        let policies = crate::respond::enforcing_names(self.limiter.policies());
        tracing::warn!(
            target: "hardening",
            policies = ?policies,
            "cost limit: a request was refused (500) because none of the CostLayer's enforcing \
             policies ({}) counts it (no principal, client IP or header they count by); place \
             CostLayer inside the auth layer, behind the check that refuses anonymous callers \
             (with axum, `.route_layer(axum::middleware::from_extractor::<Authenticated>())` \
             added after the CostLayer, so that it runs first: 401), or add a per-IP or \
             global policy (per-IP ones need \
             the client IP: serve with ConnectInfo, or inside Hardening) \
             (dangerous_allow_unkeyed() admits such requests unlimited). Said once per layer",
            policies.join(", ")
        );
    }
}

/// The problem for a request no enforcing policy counts: the service's configuration, not
/// the client's fault, and nothing about it for the client to read.
fn unkeyed_problem() -> Problem {
    Problem::new(http::StatusCode::INTERNAL_SERVER_ERROR).with_detail(
        "this route's cost limit cannot be applied to the request; quote the request id \
         to support",
    )
}

impl<S> Layer<S> for CostLayer {
    type Service = Cost<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Cost {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`CostLayer`] makes.
#[derive(Debug, Clone)]
pub struct Cost<S> {
    inner: S,
    layer: CostLayer,
}

/// The handle a handler reports its actual cost through (an extractor; also in the request
/// extensions). Clones share the count, so a streaming body can keep adding to it.
///
/// As an extractor on a route without a [`CostLayer`] it answers a 500 problem (a wiring
/// mistake, logged).
#[derive(Debug, Clone, Default)]
pub struct Usage(Arc<UsageInner>);

#[derive(Debug, Default)]
struct UsageInner {
    reserved: AtomicU64,
    // u64::MAX: nothing reported yet.
    units: AtomicU64,
}

const UNREPORTED: u64 = u64::MAX;

impl Usage {
    fn new(reserved: u32) -> Self {
        Self(Arc::new(UsageInner {
            reserved: AtomicU64::new(u64::from(reserved)),
            units: AtomicU64::new(UNREPORTED),
        }))
    }

    /// Adds `units` to the reported cost.
    pub fn add(&self, units: u64) {
        let _ = self
            .0
            .units
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                Some(
                    if u == UNREPORTED { 0 } else { u }
                        .saturating_add(units)
                        .min(UNREPORTED - 1),
                )
            });
    }

    /// Sets the reported cost.
    pub fn set(&self, units: u64) {
        self.0
            .units
            .store(units.min(UNREPORTED - 1), Ordering::Release);
    }

    /// The cost reported so far, if any.
    pub fn reported(&self) -> Option<u64> {
        let u = self.0.units.load(Ordering::Acquire);
        (u != UNREPORTED).then_some(u)
    }

    /// The units reserved for this request (the clamped estimate): the most it should spend.
    pub fn reserved(&self) -> u64 {
        self.0.reserved.load(Ordering::Relaxed)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Usage {
    type Rejection = Response<Body>;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Self>().cloned().ok_or_else(|| {
            // A wiring mistake (the route is not under a CostLayer), not the client's fault:
            // logged, with the request id once a layer further out knows it.
            axum::response::IntoResponse::into_response(Error::internal(
                "Usage extractor used on a route without CostLayer",
            ))
        })
    }
}

/// The actual cost, as a response extension (an alternative to [`Usage`] for handlers that
/// know it when they return).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActualCost(pub u64);

/// Whether a body error is a length limit's: this layer's own, or one further out (the
/// fused `Hardening` layer's, which reaches here wrapped in the body type's error).
fn is_length_limit(err: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(err), |e| e.source())
        .any(|e| e.is::<http_body_util::LengthLimitError>())
}

impl<S, B> Service<Request<B>> for Cost<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The clone that was driven to readiness serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let request_id = RequestId::from_extensions(&parts.extensions);
            if !layer.allow_unkeyed {
                let keys = RequestKeys::from_http(&parts.extensions, &parts.headers, &parts.uri);
                if !layer.limiter.limits(&keys) {
                    layer.warn_unkeyed();
                    return Ok(refusal(
                        unkeyed_problem(),
                        "cost_limit_unkeyed",
                        request_id,
                        keys.client_ip,
                        None,
                    ));
                }
            }
            let (body, units) = if layer.estimate.needs_body(&parts) {
                match hardening_errors::collect_capped(body, layer.max_body).await {
                    Ok(bytes) => {
                        let units = layer.estimate.units(&parts, &bytes);
                        (Body::from(bytes), units)
                    }
                    Err(err) => {
                        let too_large = match err {
                            CollectError::TooLarge(_) => true,
                            // A length limit further out, in the body's error.
                            CollectError::Body(err) => is_length_limit(&*err.into()),
                            // Empty frames or trailers without end: unreadable.
                            CollectError::TooManyEmptyFrames => false,
                        };
                        if too_large {
                            let keys = RequestKeys::from_http(
                                &parts.extensions,
                                &parts.headers,
                                &parts.uri,
                            );
                            return Ok(refusal(
                                Error::PayloadTooLarge.to_problem(),
                                "body_too_large",
                                request_id,
                                keys.client_ip,
                                None,
                            ));
                        }
                        let error = Error::BadRequest("the request body could not be read".into());
                        return Ok(problem_response(error.to_problem(), request_id));
                    }
                }
            } else {
                let units = layer.estimate.units(&parts, &[]);
                // As it is: `Body::new` keeps an axum body unwrapped, so a body-size error
                // from a layer outside (Hardening's limit) still reaches the extractor as
                // one it recognises (413), not wrapped once more into a read error (400).
                (Body::new(body), units)
            };
            let estimate = units.min(layer.max_estimate);

            let keys = RequestKeys::from_http(&parts.extensions, &parts.headers, &parts.uri);
            let (decision, reservation) = match layer.limiter.reserve(&keys, estimate).await {
                Reserving::Decided(decision, reservation) => (decision, reservation),
                #[cfg(feature = "redis")]
                // Nothing counted it: no `RateLimit` field names a policy.
                Reserving::Unavailable(unavailable) => {
                    return Ok(crate::respond::limit_unavailable(
                        &unavailable,
                        request_id,
                        keys.client_ip,
                    ));
                }
            };
            let ratelimit = ratelimit_header(decision.statuses());
            let policy = layer.limiter.counted_policy_header(decision.statuses());
            let shadowed = matches!(decision, Decision::Shadowed { .. });
            let reservation = match (decision, reservation) {
                (
                    Decision::Limited {
                        retry_after,
                        violated,
                        ..
                    },
                    _,
                ) => {
                    let mut response = too_many(retry_after, &violated, request_id, keys.client_ip);
                    layer
                        .fields
                        .set(response.headers_mut(), ratelimit, policy.as_ref());
                    return Ok(response);
                }
                (Decision::Shadowed { violated, .. }, Some(r)) => {
                    report_shadow(request_id, keys.client_ip, &violated, u64::from(estimate));
                    r
                }
                (_, Some(r)) => r,
                // Admitted decisions always come with a reservation.
                (_, None) => {
                    return Ok(problem_response(
                        Error::internal("admitted without a reservation").to_problem(),
                        request_id,
                    ));
                }
            };

            let usage = Usage::new(estimate);
            parts.extensions.insert(usage.clone());
            let (method, version) = (parts.method.clone(), parts.version);
            // Held from here on, so that a request future dropped before the response exists
            // (a timeout further out answering 503, a panic caught further out answering 500,
            // a client gone before the response head) is settled like a 5xx: to the usage
            // reported so far, the rest refunded, as for a body dropped before its end.
            let mut settle = Settle {
                reservation: Some(reservation),
                usage,
                actual: None,
                success: false,
            };
            let mut response = match inner.call(Request::from_parts(parts, body)).await {
                Ok(response) => response,
                Err(err) => {
                    // Tokens the model produced before the failure were spent.
                    settle.finished_now().await;
                    return Err(err);
                }
            };
            if shadowed {
                hardening_errors::mark_logged(&mut response, crate::respond::SHADOW_EVENT);
            }
            let (mut head, body) = response.into_parts();
            settle.actual = head.extensions.get::<ActualCost>().map(|c| c.0);
            // 101 too: what an upgraded connection spends comes after the response, where no
            // report reaches the reservation, so the estimate stands.
            settle.success = head.status.is_success()
                || head.status.is_redirection()
                || head.status == http::StatusCode::SWITCHING_PROTOCOLS;
            let end = BodyEnd::new(&method, version, head.status, &head.headers, &body);
            if !end.is_polled() {
                // Servers never poll a body that has ended already, nor one the response
                // cannot carry (HEAD, whose body axum replaces with an empty one; 204; 304;
                // a tunnel's; a declared length of 0): it is dropped unpolled, so settle now.
                if head.status.is_server_error() {
                    // Waited for, as for a service error: a caller that waits sees it done.
                    settle.finished_now().await;
                } else {
                    settle.finished();
                }
            }
            layer
                .fields
                .set(&mut head.headers, ratelimit, policy.as_ref());
            Ok(Response::from_parts(
                head,
                Body::new(SettleBody {
                    inner: body,
                    settle,
                    end,
                }),
            ))
        })
    }
}

/// Settles a reservation once: when the body ends or is dropped, or, before there is a
/// response, when the request's future is dropped.
struct Settle {
    reservation: Option<Reserved>,
    usage: Usage,
    actual: Option<u64>,
    success: bool,
}

impl Settle {
    fn reported(&self) -> Option<u64> {
        self.actual.or_else(|| self.usage.reported())
    }

    /// What the request is charged once its response is done: what was reported, else the
    /// estimate for a success, else nothing (a 4xx the handler refused before spending, a
    /// 5xx or a service error before any usage).
    fn charge(&self, estimate: u64) -> u64 {
        self.reported()
            .unwrap_or(if self.success { estimate } else { 0 })
    }

    /// The body ended: settle to [`charge`](Self::charge).
    fn finished(&mut self) {
        if let Some(reservation) = self.reservation.take() {
            let actual = self.charge(reservation.reserved());
            reservation.settle(actual);
        }
    }

    /// [`finished`](Self::finished), waited for (in the request's own future). Cancel-safe:
    /// once the reservation is taken here, the settlement completes even if this future is
    /// dropped (see [`Reserved::settle_now`]).
    async fn finished_now(&mut self) {
        if let Some(reservation) = self.reservation.take() {
            let actual = self.charge(reservation.reserved());
            reservation.settle_now(actual).await;
        }
    }
}

impl Drop for Settle {
    fn drop(&mut self) {
        // Dropped before the end (the client went away), or before there was a response (the
        // request's future was dropped: a timeout, a panic, a client gone early). Refund all
        // but what was reported.
        if let Some(reservation) = self.reservation.take() {
            reservation.settle(self.reported().unwrap_or(0));
        }
    }
}

pin_project! {
    struct SettleBody {
        #[pin]
        inner: Body,
        settle: Settle,
        end: BodyEnd,
    }
}

impl HttpBody for SettleBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.settle.finished(),
            // The last frame the server polls: it drops the body without a final `None`.
            Poll::Ready(Some(Ok(frame))) if this.end.is_last(frame, this.inner.is_end_stream()) => {
                this.settle.finished();
            }
            Poll::Ready(Some(Err(_))) => {
                // A body that fails mid-stream is an error: keep only what was reported.
                if let Some(reservation) = this.settle.reservation.take() {
                    reservation.settle(this.settle.reported().unwrap_or(0));
                }
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use std::sync::atomic::AtomicUsize;

    use axum::Router;
    use axum::routing::{get, post};
    use http::{Method, StatusCode};
    use http_body_util::BodyExt;

    use super::*;
    use crate::{Policy, Quota};

    /// Drives a future that needs no runtime (the in-memory store, immediate handlers).
    fn ready<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        for _ in 0..100 {
            if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
                return out;
            }
        }
        panic!("the future did not complete");
    }

    fn budget(units: u32) -> RateLimiter {
        RateLimiter::new([Policy::global(
            "budget",
            Quota::per_day(NonZeroU32::new(units).unwrap()),
        )])
    }

    fn remaining(limiter: &RateLimiter) -> u32 {
        let headers = http::HeaderMap::new();
        limiter.statuses(&RequestKeys::new(None, &headers))[0].remaining()
    }

    fn call(app: &mut Router, method: Method) -> Response<Body> {
        let req = Request::builder()
            .method(method)
            .uri("/")
            .body(Body::empty())
            .unwrap();
        send(app, req)
    }

    fn send(app: &mut Router, req: Request<Body>) -> Response<Body> {
        match try_send(app, req) {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }

    /// Sends `req` through any service, its error returned.
    fn try_send<S: Service<Request<Body>>>(
        service: &mut S,
        req: Request<Body>,
    ) -> Result<S::Response, S::Error> {
        ready(async {
            std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
            service.call(req).await
        })
    }

    /// A body that says nothing about its end until polled (a stream).
    struct Unsized(Option<Bytes>);

    impl HttpBody for Unsized {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.0.take().map(|b| Ok(Frame::data(b))))
        }
    }

    /// A request body sent in pieces: `data` one byte per frame, then `empty` frames without
    /// bytes (empty data frames, or trailers), then its end. Counts the frames polled.
    struct Pieces {
        data: Bytes,
        empty: usize,
        trailers: bool,
        polled: Arc<AtomicUsize>,
    }

    impl HttpBody for Pieces {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            self.polled.fetch_add(1, Ordering::Relaxed);
            if !self.data.is_empty() {
                let byte = self.data.split_to(1);
                return Poll::Ready(Some(Ok(Frame::data(byte))));
            }
            if self.empty == 0 {
                return Poll::Ready(None);
            }
            self.empty -= 1;
            Poll::Ready(Some(Ok(if self.trailers {
                Frame::trailers(http::HeaderMap::new())
            } else {
                Frame::data(Bytes::new())
            })))
        }
    }

    fn estimated_by_json() -> (RateLimiter, Router) {
        let limiter = budget(10_000);
        let app = Router::new()
            .route("/", post(|| async { "ran" }))
            .layer(CostLayer::new(
                limiter.clone(),
                Estimate::json_field("/max_tokens", 100).unwrap(),
            ));
        (limiter, app)
    }

    /// A body read for the estimate that sends empty data frames or trailers without end is
    /// read only up to `MAX_EMPTY_FRAMES` of them, then refused as an unreadable body is
    /// (400, nothing reserved, the handler not run). It was read until it ended: forever,
    /// spinning, for one without end. (This one ends after 100 000, so the test stops.)
    #[test]
    fn a_body_of_endless_empty_frames_is_refused_as_unreadable() {
        for trailers in [false, true] {
            let (limiter, mut app) = estimated_by_json();
            let polled = Arc::new(AtomicUsize::new(0));
            let body = Pieces {
                data: Bytes::new(),
                empty: 100_000,
                trailers,
                polled: polled.clone(),
            };
            let req = Request::post("/").body(Body::new(body)).unwrap();
            let response = send(&mut app, req);
            let polled = polled.load(Ordering::Relaxed);
            assert_eq!(
                response.status(),
                StatusCode::BAD_REQUEST,
                "trailers {trailers}: {polled} frames read"
            );
            assert!(
                polled <= hardening_errors::MAX_EMPTY_FRAMES + 1,
                "trailers {trailers}: {polled} frames read"
            );
            assert_eq!(remaining(&limiter), 10_000, "trailers {trailers}");
        }
    }

    /// Only frames without bytes are capped: a body uploaded a byte at a time (far more
    /// frames than the cap) is read whole and estimated.
    #[test]
    fn a_body_sent_in_many_small_frames_is_read_whole() {
        let (limiter, mut app) = estimated_by_json();
        let json = format!(r#"{{"max_tokens": 300{}}}"#, " ".repeat(5_000));
        let body = Pieces {
            data: Bytes::from(json),
            empty: 3,
            trailers: true,
            polled: Arc::new(AtomicUsize::new(0)),
        };
        let response = send(&mut app, Request::post("/").body(Body::new(body)).unwrap());
        assert_eq!(response.status(), StatusCode::OK);
        let body = ready(response.into_body().collect()).unwrap().to_bytes();
        assert_eq!(body, "ran");
        assert_eq!(remaining(&limiter), 9_700);
    }

    /// `json_field("max_tokens", 16)` (no leading `/`) was taken and found nothing in any
    /// body: a request asking for a million tokens reserved the default 16. A pointer that is
    /// not one is refused, naming the one to write.
    #[test]
    fn a_json_field_pointer_that_finds_nothing_in_any_body_is_refused() {
        for pointer in ["max_tokens", "usage.max_tokens", "/a~2b", "/a~"] {
            let err = Estimate::json_field(pointer, 16)
                .map(|_| ())
                .expect_err(&format!("json_field({pointer:?}, 16) accepted"));
            assert_eq!(
                err,
                CostConfigError::InvalidJsonPointer {
                    pointer: pointer.to_owned()
                }
            );
            assert!(err.to_string().contains(r#""/max_tokens""#), "{err}");
        }
        let (parts, ()) = Request::new(()).into_parts();
        let body = br#"{"max_tokens": 1000000, "a/b": 7, "a~b": 8}"#;
        for (pointer, units) in [("/max_tokens", 1_000_000), ("/a~1b", 7), ("/a~0b", 8)] {
            let estimate = Estimate::json_field(pointer, 16).unwrap();
            assert_eq!(estimate.units(&parts, body), units, "{pointer}");
        }
    }

    /// `fn main() -> Result<(), Box<dyn Error>>` prints an error returned with `?` by its
    /// `Debug`, which was `InvalidJsonPointer { pointer: "max_tokens" }`: not what to write.
    #[test]
    fn debug_says_what_to_change_as_main_prints_it() {
        let err = Estimate::json_field("max_tokens", 16)
            .map(|_| ())
            .unwrap_err();
        let printed = format!("{:?}", Box::<dyn std::error::Error>::from(err));
        assert!(
            printed.contains(r#"start it with /, as in "/max_tokens""#),
            "main would print: Error: {printed}"
        );
    }

    /// A count written as a float (`1e6`), `null` or a string used to read as the small
    /// default: a client could send `"max_tokens": 1e6` (which a lenient backend takes as a
    /// million) and reserve only the default. A value that is there but not a plain count is
    /// read as large as it may be (clamped by `max_estimate` later); only an absent one is
    /// the default.
    #[test]
    fn a_json_count_that_is_not_a_plain_integer_is_not_read_as_the_default() {
        let estimate = Estimate::json_field("/max_tokens", 16).unwrap();
        let (parts, ()) = Request::new(()).into_parts();
        let units = |body: &str| estimate.units(&parts, body.as_bytes());
        assert_eq!(units(r#"{"max_tokens": 100}"#), 100);
        assert_eq!(units(r#"{"model": "m"}"#), 16, "absent: the default");
        assert_eq!(units(""), 16, "no body: the default");
        assert_eq!(units(" \r\n"), 16, "no body: the default");
        // Not strict JSON, which a lenient backend may still read (before, the default).
        for lenient in [
            "not json",
            r#"{"max_tokens": 1e400}"#,
            r#"{"max_tokens": NaN}"#,
            "\u{feff}{\"max_tokens\": 100}",
            r#"{"max_tokens": 100,}"#,
        ] {
            assert_eq!(units(lenient), u32::MAX, "{lenient}");
        }
        assert_eq!(units(r#"{"max_tokens": 1e6}"#), 1_000_000);
        assert_eq!(units(r#"{"max_tokens": 100.5}"#), 101);
        for there in [
            "null",
            r#""100000""#,
            "-1",
            "1e300",
            "99999999999",
            "true",
            "[]",
        ] {
            let body = format!(r#"{{"max_tokens": {there}}}"#);
            assert_eq!(units(&body), u32::MAX, "{body}");
        }
    }

    #[test]
    fn a_body_that_ends_with_its_last_frame_is_settled_before_the_server_drops_it() {
        let limiter = budget(10_000);
        let mut app = Router::new()
            .route("/", get(|| async { "the whole answer" }))
            .layer(CostLayer::new(limiter.clone(), Estimate::fixed(100)));
        let mut body = call(&mut app, Method::GET).into_body();
        // What hyper does: poll a frame, see the end of the stream, drop the body unpolled.
        let frame = ready(body.frame()).unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "the whole answer");
        assert!(body.is_end_stream());
        drop(body);
        assert_eq!(remaining(&limiter), 9_900, "a success keeps its estimate");
    }

    /// A burst past 2^63 ns of refill holds less than asked (a unit a day, a burst of a
    /// million: 106 751 units); `max_estimate` was checked against the burst asked, so a
    /// request could be estimated at more than any bucket holds and refused for good.
    #[test]
    fn max_estimate_is_checked_against_what_a_bucket_holds() {
        let limiter = RateLimiter::new([Policy::global(
            "budget",
            Quota::per_day(NonZeroU32::new(1).unwrap()).burst(NonZeroU32::new(1_000_000).unwrap()),
        )]);
        let layer = || CostLayer::new(limiter.clone(), Estimate::fixed(1));
        let refused = layer()
            .max_estimate(NonZeroU32::new(500_000).unwrap())
            .unwrap_err();
        assert!(
            refused.to_string().contains("a full bucket holds 106751"),
            "{refused}"
        );
        assert!(
            layer()
                .max_estimate(NonZeroU32::new(106_750).unwrap())
                .is_ok()
        );
        // The default, a tenth of the smallest burst: of what a bucket holds.
        assert_eq!(layer().max_estimate, 10_675);
    }

    /// Adding a shadow policy (to see what a tighter budget would refuse) lowered the
    /// default cap to a tenth of its burst, so the enforcing budget was charged less: a
    /// `max_tokens` of 50 000 reserved 100. Shadow policies now size the cap only when every
    /// policy is one.
    #[test]
    fn a_shadow_policy_does_not_lower_what_the_enforcing_ones_charge() {
        let per_day = |n| Quota::per_day(NonZeroU32::new(n).unwrap());
        let enforcing = Policy::global("budget", per_day(1_000_000));
        let trial = Policy::global("trial", per_day(1_000)).shadow();
        let limiter = RateLimiter::new([enforcing.clone(), trial.clone()]);
        let layer = CostLayer::new(
            limiter.clone(),
            Estimate::json_field("/max_tokens", 1).unwrap(),
        );
        assert_eq!(layer.max_estimate, 100_000);
        assert!(
            layer
                .clone()
                .max_estimate(NonZeroU32::new(500_000).unwrap())
                .is_ok()
        );
        let mut app = Router::new()
            .route("/", post(|| async { "ran" }))
            .layer(layer);
        let req = Request::post("/")
            .body(Body::from(r#"{"max_tokens": 50000}"#))
            .unwrap();
        let response = send(&mut app, req);
        assert_eq!(response.status(), StatusCode::OK);
        ready(response.into_body().collect()).unwrap();
        let headers = http::HeaderMap::new();
        let left = limiter.statuses(&RequestKeys::new(None, &headers))[0].remaining();
        assert_eq!(left, 1_000_000 - 50_000);

        // Shadow policies alone still size it.
        let shadow_only = RateLimiter::new([trial]);
        let layer = CostLayer::new(shadow_only, Estimate::fixed(1));
        assert_eq!(layer.max_estimate, 100);
        assert!(layer.max_estimate(NonZeroU32::new(1_000).unwrap()).is_err());
    }

    /// A 101 was settled as a refusal (refunded in full) at once: a WebSocket route spent for
    /// free.
    #[test]
    fn an_upgrade_keeps_its_estimate() {
        let limiter = budget(10_000);
        let mut app = Router::new()
            .route("/", get(|| async { StatusCode::SWITCHING_PROTOCOLS }))
            .layer(CostLayer::new(limiter.clone(), Estimate::fixed(500)));
        let response = call(&mut app, Method::GET);
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        drop(response);
        assert_eq!(remaining(&limiter), 9_500);
    }

    #[test]
    fn a_body_dropped_before_its_end_is_still_refunded() {
        let limiter = budget(10_000);
        let mut app = Router::new()
            .route(
                "/",
                get(|| async { Body::new(Unsized(Some(Bytes::from_static(b"one")))) }),
            )
            .layer(CostLayer::new(limiter.clone(), Estimate::fixed(100)));
        let mut body = call(&mut app, Method::GET).into_body();
        let _ = ready(body.frame()).unwrap().unwrap();
        assert!(!body.is_end_stream());
        drop(body);
        assert_eq!(remaining(&limiter), 10_000, "the client went away");
    }

    /// A body sent without `Content-Length` (chunked) was estimated at one unit whatever its
    /// size, so a client could upload any amount for the price of one. Its bytes are now
    /// counted; a declared length is still taken as declared, without buffering.
    #[test]
    fn a_body_without_a_declared_length_is_estimated_by_its_bytes() {
        let limiter = budget(10_000);
        let mut app = Router::new()
            .route(
                "/",
                post(|body: Bytes| async move { body.len().to_string() }),
            )
            .layer(CostLayer::new(
                limiter.clone(),
                Estimate::content_length(NonZeroU32::new(1024).unwrap()),
            ));
        // The handler's answer (the length it read), read to its end, which settles.
        let mut read_by_handler = |req| {
            let response = send(&mut app, req);
            assert_eq!(response.status(), StatusCode::OK);
            ready(response.into_body().collect()).unwrap().to_bytes()
        };
        let chunked = Unsized(Some(Bytes::from(vec![b'x'; 10 * 1024 + 1])));
        let req = Request::post("/").body(Body::new(chunked)).unwrap();
        assert_eq!(
            read_by_handler(req),
            "10241",
            "the body is handed on unchanged"
        );
        assert_eq!(remaining(&limiter), 10_000 - 11);

        let declared = Request::post("/")
            .header(http::header::CONTENT_LENGTH, "3000")
            .body(Body::from(vec![b'x'; 3000]))
            .unwrap();
        assert_eq!(read_by_handler(declared), "3000");
        assert_eq!(remaining(&limiter), 10_000 - 11 - 3);

        let empty = Request::post("/").body(Body::empty()).unwrap();
        assert_eq!(read_by_handler(empty), "0");
        assert_eq!(remaining(&limiter), 10_000 - 11 - 3 - 1, "at least one");
    }

    #[test]
    fn head_requests_are_charged() {
        let limiter = budget(100);
        let mut app = Router::new()
            .route("/", get(|| async { "a body HEAD never sends" }))
            .layer(CostLayer::new(limiter.clone(), Estimate::fixed(10)));
        let response = call(&mut app, Method::HEAD);
        assert_eq!(response.status(), StatusCode::OK);
        // The server writes the head and drops the body without polling it.
        drop(response);
        assert_eq!(remaining(&limiter), 90);
    }

    #[test]
    fn a_route_that_estimates_nothing_is_refused_once_the_budget_is_spent() {
        let limiter = budget(100);
        let mut app = Router::new()
            .route("/", get(|usage: Usage| async move { usage.set(30) }))
            .layer(CostLayer::new(limiter.clone(), Estimate::fixed(0)));
        let response = call(&mut app, Method::GET);
        assert_eq!(response.status(), StatusCode::OK);
        drop(response);
        assert_eq!(remaining(&limiter), 70, "charged what it reported");
        let headers = http::HeaderMap::new();
        assert!(
            limiter
                .check(&RequestKeys::new(None, &headers), 70)
                .is_admitted()
        );
        // Nothing left: not a free pass because the estimate is 0.
        let response = call(&mut app, Method::GET);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(remaining(&limiter), 0);
    }

    #[test]
    fn bodyless_statuses_are_charged() {
        for status in [StatusCode::NO_CONTENT, StatusCode::NOT_MODIFIED] {
            let limiter = budget(100);
            let mut app = Router::new()
                .route(
                    "/",
                    get(move || async move { (status, Body::new(Unsized(None))) }),
                )
                .layer(CostLayer::new(limiter.clone(), Estimate::fixed(10)));
            let response = call(&mut app, Method::GET);
            assert_eq!(response.status(), status);
            assert!(!response.body().is_end_stream());
            drop(response);
            assert_eq!(remaining(&limiter), 90, "{status}");
        }
    }

    /// How a failing service answers, given the request's `Usage`.
    type Failing = fn(&Usage) -> Result<Response<Body>, std::io::Error>;

    /// A `CostLayer` reserving 1 000 of a budget of 10 000 before a service that answers as
    /// `respond` does; the units left once its response (if any) is read to its end.
    fn left_after(respond: Failing) -> u32 {
        let limiter = budget(10_000);
        let service = tower::service_fn(move |req: Request<Body>| {
            let usage = req.extensions().get::<Usage>().cloned().unwrap_or_default();
            std::future::ready(respond(&usage))
        });
        let mut cost = CostLayer::new(limiter.clone(), Estimate::fixed(1_000))
            .max_estimate(NonZeroU32::new(1_000).unwrap())
            .unwrap()
            .layer(service);
        if let Ok(response) = try_send(&mut cost, Request::new(Body::empty())) {
            ready(response.into_body().collect()).unwrap();
        }
        remaining(&limiter)
    }

    fn status(status: u16, body: &'static str) -> Response<Body> {
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        response
    }

    fn downstream_failed() -> std::io::Error {
        std::io::Error::other("the downstream write failed")
    }

    /// A handler that called the model (and reported it) and then failed (a 500, a 502, a
    /// 503 with `ActualCost`, a service error) was refunded everything: a caller who could
    /// provoke the failure spent tokens without limit. It is charged what it reported.
    #[test]
    fn a_5xx_or_an_error_after_reporting_is_charged_the_usage_reported() {
        let cases: [(&str, Failing); 5] = [
            ("500 after Usage::set", |usage| {
                usage.set(300);
                Ok(status(500, "post-processing failed"))
            }),
            ("502 after Usage::add", |usage| {
                usage.add(300);
                Ok(status(502, ""))
            }),
            ("503 with ActualCost", |_| {
                let mut response = status(503, "the write failed");
                response.extensions_mut().insert(ActualCost(300));
                Ok(response)
            }),
            ("an error after Usage::add", |usage| {
                usage.add(300);
                Err(downstream_failed())
            }),
            ("500 after Usage::add, an ActualCost winning", |usage| {
                usage.add(999);
                let mut response = status(500, "");
                response.extensions_mut().insert(ActualCost(300));
                Ok(response)
            }),
        ];
        let charged = cases.map(|(case, respond)| (case, 10_000 - left_after(respond)));
        assert_eq!(charged, cases.map(|(case, _)| (case, 300)), "charged");
    }

    /// Nothing reported: no model call was made, and a 5xx is the server's fault; the caller
    /// does not pay the estimate.
    #[test]
    fn a_5xx_or_an_error_that_reported_nothing_refunds_everything() {
        let cases: [(&str, Failing); 3] = [
            ("500", |_| Ok(status(500, "oops"))),
            ("502 without a body", |_| Ok(status(502, ""))),
            ("an error", |_| Err(downstream_failed())),
        ];
        let charged = cases.map(|(case, respond)| (case, 10_000 - left_after(respond)));
        assert_eq!(charged, cases.map(|(case, _)| (case, 0)), "charged");
    }

    /// A report above the reservation on a 5xx is charged as a success's is: on top, but
    /// leaving the budget at most one burst in debt.
    #[test]
    fn a_runaway_report_on_a_5xx_leaves_at_most_one_burst_of_debt() {
        let limiter = budget(10_000);
        let mut app = Router::new()
            .route(
                "/",
                get(|usage: Usage| async move {
                    usage.set(50_000_000);
                    StatusCode::INTERNAL_SERVER_ERROR
                }),
            )
            .layer(CostLayer::new(limiter.clone(), Estimate::fixed(100)));
        assert_eq!(call(&mut app, Method::GET).status(), 500);
        let headers = http::HeaderMap::new();
        match limiter.check(&RequestKeys::new(None, &headers), 1) {
            // 10 000 a day: a unit fits again within a day and 8.64 s.
            Decision::Limited { retry_after, .. } => assert!(
                retry_after <= std::time::Duration::from_secs(86_400 + 9),
                "refused for {retry_after:?}"
            ),
            other => panic!("the report was not charged: {other:?}"),
        }
    }

    /// A 101, or a 2xx to `CONNECT`, opens a tunnel: servers write the head only and never
    /// poll a body given with it (hyper forces it to nothing). Such a body (a stream, which
    /// axum passes on), dropped unpolled, was taken for a client gone: refunded, a tunnel for
    /// free. It is settled with the head, keeping the estimate as a 101 without a body does.
    #[test]
    fn a_tunnel_keeps_its_estimate_whatever_body_it_was_given() {
        let tunnels = [
            (Method::GET, StatusCode::SWITCHING_PROTOCOLS),
            (Method::CONNECT, StatusCode::OK),
        ];
        let charged = tunnels.clone().map(|(method, status)| {
            let limiter = budget(10_000);
            let mut app = Router::new()
                .route(
                    "/",
                    axum::routing::any(move || async move {
                        // A stream (axum empties a CONNECT body of known size itself).
                        let body = Unsized(Some(Bytes::from_static(b"the tunnel follows")));
                        (status, Body::new(body))
                    }),
                )
                .layer(CostLayer::new(limiter.clone(), Estimate::fixed(500)));
            let response = call(&mut app, method.clone());
            assert_eq!(response.status(), status);
            assert!(!response.body().is_end_stream());
            drop(response);
            (method, 10_000 - remaining(&limiter))
        });
        assert_eq!(charged, tunnels.map(|(method, _)| (method, 500)), "charged");
    }
}
