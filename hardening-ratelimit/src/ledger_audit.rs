//! Randomized, model-based audit of the in-memory accounting: thousands of generated
//! operations, each compared with a reference model written from the documented rules.
//!
//! - The limiter ([`RateLimiter`], on its fake clock, the `*_at` methods): checks,
//!   reservations and their settlements (below, at, above and far above the estimate, given
//!   back, dropped) under several policies (per IP, per principal, per header, global; some in
//!   shadow mode) and keys at once. Each decision (admitted or not, the policies that refused,
//!   `retry_after`, every status), the buckets after it and the `RateLimit` field must be the
//!   model's.
//! - The concurrency caps ([`ConcurrencyLimiter`]): slots taken and freed in any order.
//! - [`CostLayer`] inside a [`RateLimitLayer`](crate::RateLimitLayer), on the real clock:
//!   every way a response can end (reported, unreported, 4xx, 5xx, streamed or not, read to
//!   its end, dropped mid-stream, failing mid-stream, the request dropped before its
//!   response) charges what the layer's documentation says, and the `RateLimit`,
//!   `RateLimit-Policy`, `Retry-After` and 429 problems say what the model says.
//!
//! The generator is fastrand's, from a fixed seed: a failure names the seed and the step, and shows
//! the operations that led to it.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::IntoResponse;
use axum::routing::any;
use bytes::Bytes;
use hardening_errors::{PrincipalId, RequestId};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;
use tower::Service;

use crate::{
    ActualCost, ConcurrencyLimiter, ConcurrencyRefusal, CostLayer, Decision, Estimate, Policy,
    PolicyStatus, Quota, RateLimitLayer, RateLimiter, RequestKeys, Usage, ratelimit_header,
};

/// fastrand's generator from a fixed seed, with the picks the operations use.
struct Rng(fastrand::Rng);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(fastrand::Rng::with_seed(seed))
    }

    /// A number below `n`.
    fn below(&mut self, n: u64) -> u64 {
        self.0.u64(..n)
    }

    /// A number in `lo..=hi`.
    fn within(&mut self, lo: u64, hi: u64) -> u64 {
        self.0.u64(lo..=hi)
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// The last operations of a failing run, for its message.
fn tail(trace: &[String]) -> String {
    let from = trace.len().saturating_sub(15);
    trace[from..].join("\n  ")
}

fn nz(n: u64) -> NonZeroU32 {
    NonZeroU32::new(u32::try_from(n).unwrap()).unwrap()
}

/// Client addresses, each with the client the documentation ([`crate::KeyKind::ClientIp`])
/// says it counts as: an IPv6 address by its /64, except those that carry an IPv4 client
/// (IPv4-mapped, NAT64, 6to4, Teredo), which count as it, and local-use NAT64 ones, which
/// count by the whole address.
const CLIENTS: &[(&str, &str)] = &[
    ("192.0.2.1", "192.0.2.1"),
    ("::ffff:192.0.2.1", "192.0.2.1"),
    ("64:ff9b::c000:201", "192.0.2.1"),
    ("192.0.2.2", "192.0.2.2"),
    ("2002:c000:202:1::5", "192.0.2.2"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdfd", "192.0.2.2"),
    ("2001:db8::1", "2001:db8::/64"),
    ("2001:db8::ffff:2", "2001:db8::/64"),
    ("2001:db8:0:1::1", "2001:db8:0:1::/64"),
    ("64:ff9b:1::c000:201", "64:ff9b:1::c000:201"),
    ("64:ff9b:1::c000:202", "64:ff9b:1::c000:202"),
];

fn client(i: usize) -> IpAddr {
    CLIENTS[i].0.parse().unwrap()
}

// ---------------------------------------------------------------------------------------
// The limiter, on its fake clock.
// ---------------------------------------------------------------------------------------

/// What a model policy counts by.
#[derive(Debug, Clone, Copy)]
enum By {
    Ip,
    Principal,
    ApiKey,
    Global,
}

#[derive(Debug, Clone)]
struct ModelPolicy {
    name: &'static str,
    by: By,
    /// Units a second (dividing 10^9: a whole number of nanoseconds a unit, no reset slack).
    rate: u64,
    burst: u64,
    shadow: bool,
}

impl ModelPolicy {
    fn interval(&self) -> u64 {
        1_000_000_000 / self.rate
    }

    fn capacity(&self) -> u64 {
        self.interval() * self.burst
    }

    fn policy(&self) -> Policy {
        let quota = Quota::per_second(nz(self.rate)).burst(nz(self.burst));
        let policy = match self.by {
            By::Ip => Policy::per_client_ip(self.name, quota),
            By::Principal => Policy::per_principal(self.name, quota),
            By::ApiKey => {
                Policy::per_header(self.name, quota, HeaderName::from_static("x-api-key"))
            }
            By::Global => Policy::global(self.name, quota),
        };
        if self.shadow { policy.shadow() } else { policy }
    }

    /// Whether `cost` units fit in a bucket at `tat` (`None`: full) at `now`: `Ok(the TAT
    /// after charging them)`, or `Err(the wait)`. A cost of 0 needs one unit of room and
    /// charges nothing; a cost over the burst never fits (the longest wait there is).
    fn fits(&self, tat: Option<u64>, now: u64, cost: u64) -> Result<u64, u64> {
        if cost > self.burst {
            return Err(u64::MAX);
        }
        let after = tat.unwrap_or(now).max(now) + cost * self.interval();
        let needed = after + if cost == 0 { self.interval() } else { 0 };
        if needed - now <= self.capacity() {
            Ok(after)
        } else {
            Err(needed - now - self.capacity())
        }
    }
}

/// A request of the generated schedule.
#[derive(Debug, Clone, Copy)]
struct Req {
    client: Option<usize>,
    principal: Option<&'static str>,
    api_key: Option<&'static str>,
}

impl Req {
    fn random(rng: &mut Rng) -> Self {
        Self {
            client: (!rng.chance(6)).then(|| rng.below(CLIENTS.len() as u64) as usize),
            principal: rng.pick(&[Some("alice"), Some("bob"), None]),
            api_key: rng.pick(&[Some("k1"), Some("k2"), None]),
        }
    }

    fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(key) = self.api_key {
            headers.insert("x-api-key", HeaderValue::from_static(key));
        }
        headers
    }

    fn keys<'a>(&self, headers: &'a HeaderMap) -> RequestKeys<'a> {
        RequestKeys::new(self.client.map(client), headers).principal(self.principal)
    }

    /// The model's key under a policy counting `by`; `None`: not counted by it.
    fn key(&self, by: By) -> Option<String> {
        match by {
            By::Ip => self.client.map(|c| CLIENTS[c].1.to_string()),
            By::Principal => self.principal.map(str::to_string),
            By::ApiKey => self.api_key.map(str::to_string),
            By::Global => Some(String::new()),
        }
    }
}

/// One policy's charge for a reservation: its bucket, and the TAT right after the charge.
#[derive(Debug, Clone)]
struct ModelCharge {
    policy: usize,
    key: String,
    tat: u64,
}

/// What a decision, or a look at the statuses, should report.
#[derive(Debug, PartialEq)]
struct Report {
    outcome: &'static str,
    violated: Vec<String>,
    retry_after: Option<Duration>,
    /// Per status: name, remaining units, reset.
    statuses: Vec<(String, u32, Duration)>,
    header: Option<String>,
}

fn statuses_of(statuses: &[PolicyStatus]) -> Vec<(String, u32, Duration)> {
    statuses
        .iter()
        .map(|s| (s.name().to_string(), s.remaining(), s.reset()))
        .collect()
}

fn report_of(limiter: &RateLimiter, decision: &Decision) -> Report {
    let (outcome, violated, retry_after) = match decision {
        Decision::Allowed(_) => ("allowed", Vec::new(), None),
        Decision::Shadowed { violated, .. } => ("shadowed", violated.clone(), None),
        Decision::Limited {
            violated,
            retry_after,
            ..
        } => ("limited", violated.clone(), Some(*retry_after)),
    };
    Report {
        outcome,
        violated: violated.iter().map(|p| p.to_string()).collect(),
        retry_after,
        statuses: statuses_of(decision.statuses()),
        header: header_text(limiter, decision.statuses()),
    }
}

/// The `RateLimit` value, checked to be the same by both ways of making it.
fn header_text(limiter: &RateLimiter, statuses: &[PolicyStatus]) -> Option<String> {
    let text = |v: Option<HeaderValue>| v.map(|v| v.to_str().unwrap().to_string());
    let fast = text(limiter.ratelimit_header(statuses));
    assert_eq!(fast, text(ratelimit_header(statuses)), "the interned value");
    fast
}

/// The reference: every bucket's TAT, by policy and model key.
struct Model {
    policies: Vec<ModelPolicy>,
    tats: HashMap<(usize, String), u64>,
}

impl Model {
    fn keyed(&self, req: &Req) -> Vec<(usize, String)> {
        self.policies
            .iter()
            .enumerate()
            .filter_map(|(i, p)| req.key(p.by).map(|k| (i, k)))
            .collect()
    }

    fn tat(&self, policy: usize, key: &str) -> Option<u64> {
        self.tats.get(&(policy, key.to_string())).copied()
    }

    fn status(&self, policy: usize, tat: Option<u64>, now: u64) -> (String, u32, Duration) {
        let p = &self.policies[policy];
        let used = tat.unwrap_or(now).saturating_sub(now);
        let remaining = (p.capacity() - used.min(p.capacity())) / p.interval();
        (
            p.name.to_string(),
            u32::try_from(remaining).unwrap(),
            Duration::from_nanos(used),
        )
    }

    /// `"name";r=R;t=T, …`: `t` the reset in whole seconds, rounded up.
    fn header(statuses: &[(String, u32, Duration)]) -> Option<String> {
        let fields: Vec<String> = statuses
            .iter()
            .map(|(name, r, reset)| {
                let t = u64::try_from(reset.as_nanos().div_ceil(1_000_000_000)).unwrap();
                format!("\"{name}\";r={r};t={t}")
            })
            .collect();
        (!fields.is_empty()).then(|| fields.join(", "))
    }

    /// Decides `cost` units all-or-nothing: an enforcing policy that refuses leaves every
    /// bucket as it was; a shadow one that refuses is reported and not charged.
    fn decide(&mut self, req: &Req, cost: u64, now: u64) -> (Report, Option<Vec<ModelCharge>>) {
        let keyed = self.keyed(req);
        let mut violated = Vec::new();
        let mut shadow_violated = Vec::new();
        let mut wait = 0;
        for (i, key) in &keyed {
            let p = &self.policies[*i];
            if let Err(w) = p.fits(self.tat(*i, key), now, cost) {
                if p.shadow {
                    shadow_violated.push(p.name.to_string());
                } else {
                    violated.push(p.name.to_string());
                    wait = wait.max(w);
                }
            }
        }
        if !violated.is_empty() {
            let statuses: Vec<_> = keyed
                .iter()
                .map(|(i, key)| self.status(*i, self.tat(*i, key), now))
                .collect();
            let header = Self::header(&statuses);
            let report = Report {
                outcome: "limited",
                violated,
                retry_after: Some(Duration::from_nanos(wait)),
                statuses,
                header,
            };
            return (report, None);
        }
        let mut charges = Vec::new();
        let mut statuses = Vec::new();
        for (i, key) in keyed {
            let p = &self.policies[i];
            let tat = self.tat(i, &key);
            match p.fits(tat, now, cost) {
                Ok(after) => {
                    self.tats.insert((i, key.clone()), after);
                    statuses.push(self.status(i, Some(after), now));
                    charges.push(ModelCharge {
                        policy: i,
                        key,
                        tat: after,
                    });
                }
                Err(_) => statuses.push(self.status(i, tat, now)),
            }
        }
        let header = Self::header(&statuses);
        let report = Report {
            outcome: if shadow_violated.is_empty() {
                "allowed"
            } else {
                "shadowed"
            },
            violated: shadow_violated,
            retry_after: None,
            statuses,
            header,
        };
        (report, Some(charges))
    }

    /// Settles a reservation of `reserved` units to `actual`: an overrun is charged on top,
    /// up to one burst of debt (a bucket full again within two bursts' time); an underrun
    /// gives back only what time has not refilled (the reservation's units are the last
    /// ones before the TAT its charge left), and never past full.
    fn settle(&mut self, charges: &[ModelCharge], reserved: u64, actual: u64, now: u64) {
        for c in charges {
            let p = &self.policies[c.policy];
            let at = (c.policy, c.key.clone());
            let tat = self.tats.get(&at).copied();
            if actual > reserved {
                let from = tat.unwrap_or(now).max(now);
                let bound = now + 2 * p.capacity();
                let wanted =
                    u128::from(from) + u128::from(actual - reserved) * u128::from(p.interval());
                let to = if wanted <= u128::from(bound) {
                    u64::try_from(wanted).unwrap()
                } else {
                    from.max(bound)
                };
                self.tats.insert(at, to);
            } else if actual < reserved {
                let back = ((reserved - actual) * p.interval()).min(c.tat.saturating_sub(now));
                if let Some(tat) = tat.filter(|t| *t > now) {
                    self.tats.insert(at, tat.saturating_sub(back).max(now));
                }
            }
        }
    }
}

/// Random policies: sometimes one alone (the limiter's one-policy path), else four at once,
/// the per-API-key one sometimes in shadow mode.
fn random_policies(rng: &mut Rng) -> Vec<ModelPolicy> {
    let all = vec![
        ModelPolicy {
            name: "per-ip",
            by: By::Ip,
            rate: 10,
            burst: rng.within(1, 8),
            shadow: false,
        },
        ModelPolicy {
            name: "per-user",
            by: By::Principal,
            rate: 100,
            burst: rng.within(5, 60),
            shadow: false,
        },
        ModelPolicy {
            name: "per-key",
            by: By::ApiKey,
            rate: 20,
            burst: rng.within(1, 6),
            shadow: rng.chance(2),
        },
        ModelPolicy {
            name: "all",
            by: By::Global,
            rate: 1000,
            burst: rng.within(20, 200),
            shadow: false,
        },
    ];
    if rng.chance(4) {
        let mut alone = all[rng.below(4) as usize].clone();
        alone.shadow = rng.chance(4);
        return vec![alone];
    }
    all
}

/// A reservation held by the schedule, with the model's charges for it.
struct Held {
    reservation: crate::Reservation,
    charges: Vec<ModelCharge>,
    reserved: u64,
    made_at: usize,
}

/// The limiter against the model: every decision, every settlement, every status.
#[test]
fn the_limiter_ledger_matches_a_reference_model_on_random_schedules() {
    const SEEDS: u64 = 40;
    const STEPS: usize = 400;
    // How often each outcome came up: the schedule must exercise each of them.
    let mut outcomes: HashMap<&'static str, usize> = HashMap::new();
    for seed in 1..=SEEDS {
        let mut rng = Rng::new(seed);
        let policies = random_policies(&mut rng);
        let limiter = RateLimiter::try_new(policies.iter().map(ModelPolicy::policy)).unwrap();
        let mut model = Model {
            policies,
            tats: HashMap::new(),
        };
        let mut held: Vec<Held> = Vec::new();
        let mut trace = vec![format!("policies {:?}", model.policies)];
        let mut now = 1_000_000_u64;
        for step in 0..STEPS {
            now += match rng.below(10) {
                0..=3 => 0,
                4..=6 => rng.below(1_000_000),
                7 | 8 => rng.below(300_000_000),
                _ => rng.below(5_000_000_000),
            };
            let req = Req::random(&mut rng);
            let headers = req.headers();
            let keys = req.keys(&headers);
            let op = rng.below(10);
            let (got, want) = match op {
                // A check of a few units, now and then more than any bucket holds.
                0..=2 => {
                    let cost = if rng.chance(15) {
                        500
                    } else {
                        rng.within(1, 4)
                    };
                    trace.push(format!("{step}: at {now} check {cost} for {req:?}"));
                    let decision = limiter.check_at(&keys, u32::try_from(cost).unwrap(), now);
                    (
                        report_of(&limiter, &decision),
                        model.decide(&req, cost, now).0,
                    )
                }
                // A reservation, now and then of nothing or of more than any bucket holds.
                3..=5 => {
                    let estimate = match rng.below(12) {
                        0 => 0,
                        1 => 10_000,
                        _ => rng.within(1, 12),
                    };
                    trace.push(format!(
                        "{step}: at {now} reserve {estimate} for {req:?} (#{step})"
                    ));
                    let (decision, reservation) =
                        limiter.reserve_at(&keys, u32::try_from(estimate).unwrap(), now);
                    let (want, charges) = model.decide(&req, estimate, now);
                    assert_eq!(
                        reservation.is_some(),
                        charges.is_some(),
                        "seed {seed} step {step}: a reservation comes with admission\n  {}",
                        tail(&trace)
                    );
                    if let (Some(reservation), Some(charges)) = (reservation, charges) {
                        assert_eq!(reservation.reserved(), estimate);
                        held.push(Held {
                            reservation,
                            charges,
                            reserved: estimate,
                            made_at: step,
                        });
                    }
                    (report_of(&limiter, &decision), want)
                }
                // Settle, give back or drop a reservation held, then look at a request's
                // statuses.
                _ => {
                    if !held.is_empty() {
                        let h = held.swap_remove(rng.below(held.len() as u64) as usize);
                        let actual = match rng.below(8) {
                            0 => None,
                            1 => Some(0),
                            2 => Some(h.reserved),
                            3 => Some(h.reserved + rng.within(1, 20)),
                            4 => Some(rng.pick(&[1_000_000, u64::MAX])),
                            _ => Some(rng.below(h.reserved + 1)),
                        };
                        trace.push(format!(
                            "{step}: at {now} settle #{} of {} to {actual:?}",
                            h.made_at, h.reserved
                        ));
                        match actual {
                            None => drop(h.reservation),
                            Some(actual) => {
                                h.reservation.settle_at(actual, now);
                                model.settle(&h.charges, h.reserved, actual, now);
                            }
                        }
                    }
                    trace.push(format!("{step}: at {now} statuses for {req:?}"));
                    let statuses = limiter.statuses_at(&keys, now);
                    let want: Vec<_> = model
                        .keyed(&req)
                        .iter()
                        .map(|(i, key)| model.status(*i, model.tat(*i, key), now))
                        .collect();
                    let got = Report {
                        outcome: "statuses",
                        violated: Vec::new(),
                        retry_after: None,
                        statuses: statuses_of(&statuses),
                        header: header_text(&limiter, &statuses),
                    };
                    let header = Model::header(&want);
                    let want = Report {
                        outcome: "statuses",
                        violated: Vec::new(),
                        retry_after: None,
                        statuses: want,
                        header,
                    };
                    (got, want)
                }
            };
            assert_eq!(
                got,
                want,
                "seed {seed} step {step}: the limiter (left) and the model (right) differ; \
                 the last operations:\n  {}",
                tail(&trace)
            );
            *outcomes.entry(got.outcome).or_default() += 1;
        }
        // Every bucket, for every request shape, as the model has it.
        for c in std::iter::once(None).chain((0..CLIENTS.len()).map(Some)) {
            for principal in [Some("alice"), Some("bob"), None] {
                for api_key in [Some("k1"), Some("k2"), None] {
                    let req = Req {
                        client: c,
                        principal,
                        api_key,
                    };
                    let headers = req.headers();
                    let got = statuses_of(&limiter.statuses_at(&req.keys(&headers), now));
                    let want: Vec<_> = model
                        .keyed(&req)
                        .iter()
                        .map(|(i, key)| model.status(*i, model.tat(*i, key), now))
                        .collect();
                    assert_eq!(got, want, "seed {seed}, at the end, {req:?}");
                }
            }
        }
    }
    for outcome in ["allowed", "shadowed", "limited", "statuses"] {
        let seen = outcomes.get(outcome).copied().unwrap_or(0);
        assert!(seen >= 100, "{outcome} only {seen} times: {outcomes:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Concurrency slots.
// ---------------------------------------------------------------------------------------

/// Slots taken and freed in any order, through clones too: never more than the caps in
/// flight per client (as the rate limiter groups clients) and overall, the global cap
/// checked first, and every slot back once its permit is gone.
#[test]
fn concurrency_slots_match_a_model_on_random_schedules() {
    for seed in 1..=40 {
        let mut rng = Rng::new(seed);
        let per_client = rng.within(1, 3);
        let global = (!rng.chance(3)).then(|| rng.within(2, 6));
        let mut limiter = ConcurrencyLimiter::per_client(nz(per_client));
        if let Some(max) = global {
            limiter = limiter.global(nz(max));
        }
        let clone = limiter.clone();
        let mut held: Vec<(crate::Permit, Option<&str>)> = Vec::new();
        let mut trace = vec![format!("per client {per_client}, global {global:?}")];
        for step in 0..300 {
            if !held.is_empty() && rng.chance(2) {
                let (permit, who) = held.swap_remove(rng.below(held.len() as u64) as usize);
                trace.push(format!("{step}: free a slot of {who:?}"));
                drop(permit);
            } else {
                let c = (!rng.chance(5)).then(|| rng.below(CLIENTS.len() as u64) as usize);
                let who = c.map(|c| CLIENTS[c].1);
                let total = held.len() as u64;
                let mine = held
                    .iter()
                    .filter(|(_, w)| who.is_some() && *w == who)
                    .count();
                let want = if global.is_some_and(|max| total >= max) {
                    Err(ConcurrencyRefusal::Global)
                } else if who.is_some() && mine as u64 >= per_client {
                    Err(ConcurrencyRefusal::PerClient)
                } else {
                    Ok(())
                };
                trace.push(format!(
                    "{step}: take a slot for {:?}",
                    c.map(|c| CLIENTS[c].0)
                ));
                let by = if rng.chance(2) { &limiter } else { &clone };
                let got = by.try_acquire(c.map(client));
                assert_eq!(
                    got.as_ref().map(|_| ()).map_err(|e| *e),
                    want,
                    "seed {seed} step {step}:\n  {}",
                    tail(&trace)
                );
                if let Ok(permit) = got {
                    held.push((permit, who));
                }
            }
            assert_eq!(
                u64::from(limiter.in_flight()),
                held.len() as u64,
                "seed {seed} step {step}:\n  {}",
                tail(&trace)
            );
        }
        held.clear();
        assert_eq!(limiter.in_flight(), 0, "seed {seed}: every slot back");
        // And a client can take its whole share again (as far as the global cap allows).
        let mut again = Vec::new();
        for _ in 0..per_client.min(global.unwrap_or(u64::MAX)) {
            again.push(limiter.try_acquire(Some(client(0))).unwrap());
        }
    }
}

// ---------------------------------------------------------------------------------------
// CostLayer inside RateLimitLayer, on the real clock.
// ---------------------------------------------------------------------------------------

/// A unit refills in a day: during the test (well under a day) no bucket refills a whole
/// unit, so every count of remaining units is exact whatever the elapsed time. Only the
/// resets (`t`, `Retry-After`, in seconds) move with the clock: they are checked within the
/// seconds elapsed since the limiters were made.
const DAY: u64 = 86_400;

/// The most one request reserves: below every burst of the cost policies.
const MAX_ESTIMATE: u64 = 20;

fn a_day_of(burst: u64) -> Quota {
    Quota::per_day(nz(1)).burst(nz(burst))
}

/// How the handler answers, and what it reports through `Usage` (or `ActualCost`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Act {
    /// 200 with a body.
    Ok,
    /// 200, the cost as an `ActualCost` response extension.
    Actual,
    /// 400.
    ClientError,
    /// 500.
    ServerError,
    /// 500 with a body streamed as `Stream`'s, reporting as it streams.
    ServerErrorStream,
    /// 204.
    NoContent,
    /// 200 with a body streamed in [`STREAM_FRAMES`] frames, then its end (or an error); what
    /// it reports, it reports with each frame.
    Stream { fails: bool },
    /// No response ever: the request's future is dropped (a timeout further out).
    Gone,
}

/// The frames of a streamed response body.
const STREAM_FRAMES: u8 = 3;

/// What the client does with the response.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ending {
    /// Reads the body to its end.
    Read,
    /// Reads one frame (all of a body but a stream), then goes away.
    DropAfterOne,
    /// Goes away with the head.
    Drop,
}

/// A streamed body: `left` frames, then its end, or an error if it `fails`. With `usage`, it
/// reports `per_frame` units with each frame (a model's tokens as they are produced).
struct Drip {
    left: u8,
    fails: bool,
    usage: Option<(Usage, u64)>,
}

impl http_body::Body for Drip {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.left == 0 {
            return Poll::Ready(
                self.fails
                    .then(|| Err(std::io::Error::other("the stream broke off"))),
            );
        }
        self.left -= 1;
        if let Some((usage, units)) = &self.usage {
            usage.add(*units);
        }
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"chunk ")))))
    }
}

fn act_of(headers: &HeaderMap) -> (Act, Option<u64>) {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let reported = text("x-report").and_then(|v| v.parse().ok());
    let act = match text("x-act") {
        Some("actual") => Act::Actual,
        Some("client-error") => Act::ClientError,
        Some("server-error") => Act::ServerError,
        Some("server-error-stream") => Act::ServerErrorStream,
        Some("no-content") => Act::NoContent,
        Some("stream") => Act::Stream { fails: false },
        Some("stream-fails") => Act::Stream { fails: true },
        Some("gone") => Act::Gone,
        _ => Act::Ok,
    };
    (act, reported)
}

async fn handler(usage: Usage, headers: HeaderMap) -> Response<Body> {
    let (act, reported) = act_of(&headers);
    let up_front = !matches!(
        act,
        Act::Actual | Act::Stream { .. } | Act::ServerErrorStream
    );
    if let Some(units) = reported.filter(|_| up_front) {
        usage.set(units);
    }
    match act {
        Act::Ok => "done".into_response(),
        Act::Actual => {
            let mut response = "done".into_response();
            if let Some(units) = reported {
                response.extensions_mut().insert(ActualCost(units));
            }
            response
        }
        Act::ClientError => (StatusCode::BAD_REQUEST, "no").into_response(),
        Act::ServerError => (StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response(),
        Act::ServerErrorStream => {
            let body = Body::new(Drip {
                left: STREAM_FRAMES,
                fails: false,
                usage: reported.map(|units| (usage, units)),
            });
            (StatusCode::INTERNAL_SERVER_ERROR, body).into_response()
        }
        Act::NoContent => StatusCode::NO_CONTENT.into_response(),
        Act::Stream { fails } => Body::new(Drip {
            left: STREAM_FRAMES,
            fails,
            usage: reported.map(|units| (usage, units)),
        })
        .into_response(),
        Act::Gone => std::future::pending().await,
    }
}

/// Polls `f` up to `times` times (the handlers never wait on anything but `Gone`).
fn poll_times<F: Future>(f: Pin<&mut F>, times: usize) -> Option<F::Output> {
    let mut f = f;
    let mut cx = Context::from_waker(std::task::Waker::noop());
    for _ in 0..times {
        if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return Some(out);
        }
    }
    None
}

fn ready<F: Future>(f: F) -> F::Output {
    poll_times(std::pin::pin!(f), 100).expect("the future did not complete")
}

/// The units the layer's rules charge for a request that reserved `estimate`, answered
/// with `act` and ended by the client with `ending`, the handler having reported `reported`.
fn charged(act: Act, head: bool, ending: Ending, estimate: u64, reported: Option<u64>) -> u64 {
    // A stream reports with each frame the client has read (a HEAD response's, none).
    let reported = match act {
        Act::Stream { .. } | Act::ServerErrorStream => {
            let frames = match ending {
                _ if head => 0,
                Ending::Read => u64::from(STREAM_FRAMES),
                Ending::DropAfterOne => 1,
                Ending::Drop => 0,
            };
            reported
                .filter(|_| frames > 0)
                .map(|units| units.saturating_mul(frames))
        }
        _ => reported,
    };
    let keep = |default| reported.unwrap_or(default);
    match act {
        // A 5xx, however it ends: what was reported, the rest refunded.
        Act::ServerError | Act::ServerErrorStream => keep(0),
        // A request dropped before its response: all but what was reported comes back.
        Act::Gone => keep(0),
        // A response with no body to wait for is settled at once: what was reported, else
        // the estimate for a success, else nothing.
        Act::ClientError if head => keep(0),
        _ if head || act == Act::NoContent => keep(estimate),
        // A body dropped before its end (a one-frame body has ended with its frame), or
        // failing mid-stream: all but what was reported.
        Act::Stream { .. } if ending != Ending::Read => keep(0),
        Act::Stream { fails: true } => keep(0),
        _ if ending == Ending::Drop => keep(0),
        // Read to its end: what was reported, else the estimate for a success, else nothing.
        Act::ClientError => keep(0),
        _ => keep(estimate),
    }
}

/// The model of one day-quota policy: units in use (above the burst: debt).
#[derive(Debug, Clone)]
struct DayBucket {
    name: &'static str,
    burst: u64,
    used: HashMap<String, u64>,
}

impl DayBucket {
    fn used(&self, key: &str) -> u64 {
        self.used.get(key).copied().unwrap_or(0)
    }

    /// Units short for `cost` (a cost of 0 needs one unit of room), if any.
    fn short(&self, key: &str, cost: u64) -> Option<u64> {
        let needed = self.used(key) + cost.max(1);
        (needed > self.burst).then(|| needed - self.burst)
    }

    /// Settles `reserved` to `actual`: an overrun up to one burst of debt, an underrun back.
    fn settle(&mut self, key: &str, reserved: u64, actual: u64) {
        let used = self.used(key);
        let to = if actual >= reserved {
            used.max(used.saturating_add(actual - reserved).min(2 * self.burst))
        } else {
            used.saturating_sub(reserved - actual)
        };
        self.used.insert(key.to_string(), to);
    }
}

/// `"name";r=R;t=T, …` read back, checked against the model's buckets: `r` exact, `t` (the
/// seconds until full) at most the model's and short of it by no more than `slack` seconds.
fn check_fields(
    value: Option<&HeaderValue>,
    want: &[(&DayBucket, &str)],
    slack: u64,
) -> Result<(), String> {
    let text = value.map_or("", |v| v.to_str().unwrap());
    let fields: Vec<&str> = if text.is_empty() {
        Vec::new()
    } else {
        text.split(", ").collect()
    };
    if fields.len() != want.len() {
        return Err(format!(
            "RateLimit {text:?}, expected {} fields",
            want.len()
        ));
    }
    for (field, (bucket, key)) in fields.iter().zip(want) {
        let used = bucket.used(key);
        let r = bucket.burst - used.min(bucket.burst);
        let prefix = format!("\"{}\";r={r};t=", bucket.name);
        let t: u64 = field
            .strip_prefix(&prefix)
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| format!("RateLimit {text:?}: expected {prefix}…"))?;
        if t > used * DAY || t + slack < used * DAY {
            return Err(format!("RateLimit {text:?}: t for {used} units in use"));
        }
    }
    Ok(())
}

/// Every response's charges, headers and problems, against the model, through both layers:
/// a per-IP limit outside, two token budgets (per principal, global) in the `CostLayer`.
#[test]
fn cost_and_rate_limit_layers_charge_and_report_what_the_model_says() {
    // How often each case came up: the schedule must exercise each of them.
    let mut seen: HashMap<&'static str, usize> = HashMap::new();
    for seed in 1..=80 {
        let mut rng = Rng::new(seed);
        let started = Instant::now();
        let mut per_ip = DayBucket {
            name: "per-ip",
            burst: rng.within(4, 12),
            used: HashMap::new(),
        };
        let mut tokens = DayBucket {
            name: "tokens",
            burst: rng.within(MAX_ESTIMATE + 1, 120),
            used: HashMap::new(),
        };
        let mut all = DayBucket {
            name: "all",
            burst: rng.within(100, 500),
            used: HashMap::new(),
        };
        let ip_limiter =
            RateLimiter::new([Policy::per_client_ip("per-ip", a_day_of(per_ip.burst))]);
        let cost_limiter = RateLimiter::new([
            Policy::per_principal("tokens", a_day_of(tokens.burst)),
            Policy::global("all", a_day_of(all.burst)),
        ]);
        let estimate = Estimate::from_fn(|parts, _| {
            parts
                .headers
                .get("x-estimate")
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .unwrap_or(0)
        });
        let cost_layer = CostLayer::new(cost_limiter.clone(), estimate)
            .max_estimate(nz(MAX_ESTIMATE))
            .unwrap();
        let mut app = Router::new()
            .route("/", any(handler))
            .layer(cost_layer)
            .layer(RateLimitLayer::new(ip_limiter.clone()));
        let mut trace = vec![format!(
            "bursts: per-ip {}, tokens {}, all {}",
            per_ip.burst, tokens.burst, all.burst
        )];
        for step in 0..50 {
            let c = (!rng.chance(8)).then(|| rng.below(CLIENTS.len() as u64) as usize);
            let principal = rng.pick(&[Some("alice"), Some("bob"), None]);
            let asked = rng.within(0, 30);
            let estimate = asked.min(MAX_ESTIMATE);
            let act = rng.pick(&[
                Act::Ok,
                Act::Ok,
                Act::Actual,
                Act::ClientError,
                Act::ServerError,
                Act::ServerErrorStream,
                Act::NoContent,
                Act::Stream { fails: false },
                Act::Stream { fails: true },
                Act::Gone,
            ]);
            let reported = match rng.below(20) {
                0..=5 => None,
                6..=8 => Some(rng.within(estimate + 1, estimate + 10)),
                9 => Some(rng.pick(&[1_000_000, u64::MAX / 2])),
                _ => Some(rng.below(estimate + 1)),
            };
            let head = act != Act::Gone && rng.chance(5);
            let ending = rng.pick(&[
                Ending::Read,
                Ending::Read,
                Ending::DropAfterOne,
                Ending::Drop,
            ]);
            let id = rng.chance(2).then(RequestId::generate);
            trace.push(format!(
                "{step}: {:?} as {principal:?}, estimate {asked}, {act:?} reporting {reported:?}, \
                 head {head}, {ending:?}",
                c.map(|c| CLIENTS[c].0)
            ));
            let context = |trace: &[String]| format!("seed {seed} step {step}:\n  {}", tail(trace));

            let mut req = Request::builder()
                .method(if head { Method::HEAD } else { Method::POST })
                .uri("/")
                .header("x-estimate", asked.to_string())
                .header(
                    "x-act",
                    match act {
                        Act::Ok => "ok",
                        Act::Actual => "actual",
                        Act::ClientError => "client-error",
                        Act::ServerError => "server-error",
                        Act::ServerErrorStream => "server-error-stream",
                        Act::NoContent => "no-content",
                        Act::Stream { fails: false } => "stream",
                        Act::Stream { fails: true } => "stream-fails",
                        Act::Gone => "gone",
                    },
                )
                .body(Body::empty())
                .unwrap();
            if let Some(units) = reported {
                req.headers_mut()
                    .insert("x-report", HeaderValue::from(units));
            }
            if let Some(c) = c {
                req.extensions_mut()
                    .insert(ConnectInfo(SocketAddr::new(client(c), 4000)));
            }
            if let Some(p) = principal {
                req.extensions_mut().insert(PrincipalId::new(p));
            }
            if let Some(id) = id {
                req.extensions_mut().insert(id);
            }
            let ip_key = c.map(|c| CLIENTS[c].1.to_string());
            let user = principal.map(str::to_string);

            // The model's decisions: the per-IP limit first, then the budgets.
            let ip_short = ip_key.as_deref().and_then(|k| per_ip.short(k, 1));
            if ip_short.is_none()
                && let Some(k) = &ip_key
            {
                per_ip.settle(k, 0, 1);
            }
            let mut cost_fields = Vec::new();
            let mut refused: Vec<&str> = Vec::new();
            let mut wait = ip_short.unwrap_or(0);
            if ip_short.is_some() {
                refused.push("per-ip");
            } else {
                for (bucket, key) in [(&tokens, user.as_deref()), (&all, Some(""))] {
                    if let Some(key) = key
                        && let Some(short) = bucket.short(key, estimate)
                    {
                        refused.push(bucket.name);
                        wait = wait.max(short);
                    }
                }
                if refused.is_empty() {
                    if let Some(u) = &user {
                        tokens.settle(u, 0, estimate);
                    }
                    all.settle("", 0, estimate);
                }
            }

            ready(std::future::poll_fn(|cx| {
                Service::<Request<Body>>::poll_ready(&mut app, cx)
            }))
            .unwrap();
            let mut future = Box::pin(app.call(req));
            let response = poll_times(future.as_mut(), 100);
            // Seconds the resets may have run down by since the limiters were made (read
            // after the decision, so that it covers it).
            let slack = started.elapsed().as_secs() + 1;
            let admitted_by_all = refused.is_empty();
            let case = match (ip_short, admitted_by_all) {
                (Some(_), _) => "refused per IP",
                (None, false) => "refused a budget",
                _ if [&tokens, &all]
                    .iter()
                    .any(|b| b.used.values().any(|u| *u > b.burst)) =>
                {
                    "admitted, a budget in debt"
                }
                _ => "admitted",
            };
            *seen.entry(case).or_default() += 1;

            // The headers: the budgets' fields (as the reservation left them) first, then
            // the per-IP one; a 429 with its problem.
            if let Some(response) = &response {
                let response = response.as_ref().unwrap();
                if ip_short.is_none() {
                    if let Some(u) = &user {
                        cost_fields.push((&tokens, u.as_str()));
                    }
                    cost_fields.push((&all, ""));
                }
                let mut want = cost_fields.clone();
                if let Some(k) = &ip_key {
                    want.push((&per_ip, k.as_str()));
                }
                let headers = response.headers();
                if let Err(e) = check_fields(headers.get("ratelimit"), &want, slack) {
                    panic!("{e}\n{}", context(&trace));
                }
                // The policies that counted the request: those of its `RateLimit` entries.
                let q = |name: &str| format!("\"{name}\";q=1;w={DAY}");
                let mut counted = Vec::new();
                if ip_short.is_none() {
                    if user.is_some() {
                        counted.push(q("tokens"));
                    }
                    counted.push(q("all"));
                }
                if ip_key.is_some() {
                    counted.push(q("per-ip"));
                }
                let policies = counted.join(", ");
                assert_eq!(
                    headers["ratelimit-policy"],
                    policies.as_str(),
                    "{}",
                    context(&trace)
                );
                if !admitted_by_all {
                    assert_eq!(
                        response.status(),
                        StatusCode::TOO_MANY_REQUESTS,
                        "{}",
                        context(&trace)
                    );
                    assert_eq!(
                        headers["content-type"],
                        "application/problem+json",
                        "{}",
                        context(&trace)
                    );
                    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
                    assert!(
                        retry <= wait * DAY && retry + slack >= wait * DAY,
                        "Retry-After {retry} for {wait} units short\n{}",
                        context(&trace)
                    );
                }
            }
            // What the request is charged in the end: nothing more for a refusal; else its
            // settlement once the client is done with the response (or gone before it).
            let actual = match response {
                None => {
                    assert_eq!(
                        act,
                        Act::Gone,
                        "only Gone never answers\n{}",
                        context(&trace)
                    );
                    drop(future);
                    Some(charged(act, head, ending, estimate, reported))
                }
                // (A HEAD request's 429 has its head only: the router drops the body.)
                Some(response) if !admitted_by_all => {
                    let body = ready(response.unwrap().into_body().collect()).unwrap();
                    if !head {
                        let problem: serde_json::Value =
                            serde_json::from_slice(&body.to_bytes()).unwrap();
                        assert_eq!(problem["status"], 429, "{}", context(&trace));
                        assert_eq!(
                            problem["violated-policies"],
                            serde_json::json!(refused),
                            "{}",
                            context(&trace)
                        );
                        let got_id = problem["request_id"].as_str().unwrap_or_default();
                        match id {
                            Some(id) => assert_eq!(got_id, id.to_string(), "{}", context(&trace)),
                            None => assert!(!got_id.is_empty(), "{}", context(&trace)),
                        }
                    }
                    None
                }
                Some(response) => {
                    let mut body = response.unwrap().into_body();
                    match ending {
                        Ending::Read => drop(ready(body.collect())),
                        Ending::DropAfterOne => drop((ready(body.frame()), body)),
                        Ending::Drop => drop(body),
                    }
                    Some(charged(act, head, ending, estimate, reported))
                }
            };
            if let Some(actual) = actual {
                if let Some(u) = &user {
                    tokens.settle(u, estimate, actual);
                }
                all.settle("", estimate, actual);
            }
            check_buckets(
                &ip_limiter,
                &cost_limiter,
                &per_ip,
                &tokens,
                &all,
                &context(&trace),
            );
        }
    }
    for case in [
        "refused per IP",
        "refused a budget",
        "admitted, a budget in debt",
        "admitted",
    ] {
        let n = seen.get(case).copied().unwrap_or(0);
        assert!(n >= 50, "{case} only {n} times: {seen:?}");
    }
}

/// Every bucket the model knows of, as the limiters have it: remaining units exact.
fn check_buckets(
    ip_limiter: &RateLimiter,
    cost_limiter: &RateLimiter,
    per_ip: &DayBucket,
    tokens: &DayBucket,
    all: &DayBucket,
    context: &str,
) {
    let left = |bucket: &DayBucket, key: &str| {
        u32::try_from(bucket.burst - bucket.used(key).min(bucket.burst)).unwrap()
    };
    let headers = HeaderMap::new();
    for (address, key) in CLIENTS {
        let keys = RequestKeys::new(address.parse().ok(), &headers);
        assert_eq!(
            ip_limiter.statuses(&keys)[0].remaining(),
            left(per_ip, key),
            "per-ip, {address}\n{context}"
        );
    }
    for user in ["alice", "bob"] {
        let statuses =
            cost_limiter.statuses(&RequestKeys::new(None, &headers).principal(Some(user)));
        assert_eq!(
            statuses[0].remaining(),
            left(tokens, user),
            "tokens, {user}\n{context}"
        );
        assert_eq!(statuses[1].remaining(), left(all, ""), "all\n{context}");
    }
}
