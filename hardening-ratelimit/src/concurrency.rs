//! Concurrency caps: at most N requests in flight per client, and optionally overall.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use crate::limiter::{SUBSCRIBER_PREFIX, client_group};

/// Why a request was refused a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConcurrencyRefusal {
    /// This client already has its maximum in flight (answer 429).
    PerClient,
    /// The service as a whole is at its maximum (shed load: answer 503).
    Global,
}

/// At most `per_client` requests in flight per client IP (Stripe's concurrent-request
/// limiter), and optionally at most `global` overall (a load shedder). Clients are grouped
/// as the rate limiter groups them: an IPv6 /64 is one client, an IPv4-mapped IPv6 address
/// the IPv4 client it is. A [`Permit`] holds the slot; dropping it frees it. Off by default:
/// `hardening-core`'s `Hardening::concurrency_limit` applies one, holding each slot until the
/// response body has been sent or dropped, and answering a [`ConcurrencyRefusal`] as it says.
///
/// ```
/// use std::num::NonZeroU32;
/// use hardening_ratelimit::{ConcurrencyLimiter, ConcurrencyRefusal};
///
/// let limiter = ConcurrencyLimiter::per_client(NonZeroU32::new(1).unwrap());
/// let ip = "203.0.113.5".parse().ok();
/// let first = limiter.try_acquire(ip).unwrap();
/// assert_eq!(limiter.try_acquire(ip).unwrap_err(), ConcurrencyRefusal::PerClient);
/// drop(first);
/// assert!(limiter.try_acquire(ip).is_ok());
/// ```
///
/// A clone is the same limiter, as an `Arc`'s clone is the same value: every clone counts
/// the slots taken through any of them. That is what lets one limiter cap a service that
/// several layers or routers serve (each `Hardening` layer and service holds a clone).
/// [`global`](Self::global) keeps the counts too, so limiters made from clones of one
/// "template" share them, whatever cap each has; limiters with counts of their own come
/// from a [`per_client`](Self::per_client) call each:
///
/// ```
/// use std::num::NonZeroU32;
/// use hardening_ratelimit::{ConcurrencyLimiter, ConcurrencyRefusal};
///
/// let nz = |n| NonZeroU32::new(n).unwrap();
/// let (ip, other) = ("203.0.113.5".parse().ok(), "198.51.100.7".parse().ok());
///
/// // Clones of one limiter: one set of counts.
/// let base = ConcurrencyLimiter::per_client(nz(4));
/// let (api, uploads) = (base.clone().global(nz(50)), base.clone().global(nz(1)));
/// let held = api.try_acquire(ip).unwrap();
/// assert_eq!(uploads.in_flight(), 1);
/// assert_eq!(uploads.try_acquire(other).unwrap_err(), ConcurrencyRefusal::Global);
/// drop(held);
///
/// // Two limiters: counted apart.
/// let limiter = |global| ConcurrencyLimiter::per_client(nz(4)).global(nz(global));
/// let (api, uploads) = (limiter(50), limiter(1));
/// let _held = api.try_acquire(ip).unwrap();
/// assert_eq!(uploads.in_flight(), 0);
/// assert!(uploads.try_acquire(other).is_ok());
/// ```
#[derive(Clone)]
pub struct ConcurrencyLimiter(Arc<Inner>);

struct Inner {
    per_client: u32,
    global: Option<u32>,
    /// The slots in flight: shared with the limiter [`global`](ConcurrencyLimiter::global)
    /// was called on, so that a cap set late still counts the slots taken before.
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    total: u32,
    per_client: HashMap<IpAddr, u32>,
}

impl fmt::Debug for ConcurrencyLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyLimiter")
            .field("per_client", &self.0.per_client)
            .field("global", &self.0.global)
            .finish()
    }
}

/// A slot in flight; freed on drop.
pub struct Permit {
    limiter: Arc<Inner>,
    client: Option<IpAddr>,
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("client", &self.client)
            .finish()
    }
}

impl ConcurrencyLimiter {
    /// At most `max` requests in flight per client IP.
    pub fn per_client(max: NonZeroU32) -> Self {
        Self(Arc::new(Inner {
            per_client: max.get(),
            global: None,
            state: Arc::default(),
        }))
    }

    /// Also at most `max` requests in flight overall (default: no global cap). The limiter
    /// returned keeps this one's counts, shared with every clone of it: the cap counts the
    /// slots taken through any of them, those already taken included, whenever it is set.
    /// For a limiter counted apart, start from [`per_client`](Self::per_client), not from a
    /// clone (see [the type's docs](ConcurrencyLimiter)).
    #[must_use]
    pub fn global(self, max: NonZeroU32) -> Self {
        Self(Arc::new(Inner {
            per_client: self.0.per_client,
            global: Some(max.get()),
            state: Arc::clone(&self.0.state),
        }))
    }

    /// Takes a slot for a request from `client` (requests with no known client count only
    /// against the global cap).
    ///
    /// # Errors
    ///
    /// [`ConcurrencyRefusal::Global`] when the global cap is reached (checked first), or
    /// when a panic elsewhere left the counts unreadable (poisoned); else
    /// [`ConcurrencyRefusal::PerClient`] when this client has `per_client` in flight.
    pub fn try_acquire(&self, client: Option<IpAddr>) -> Result<Permit, ConcurrencyRefusal> {
        let client = client.map(|ip| client_group(ip, SUBSCRIBER_PREFIX));
        // A poisoned lock means a panic mid-update: refuse rather than guess the counts.
        let mut state = self
            .0
            .state
            .lock()
            .map_err(|_| ConcurrencyRefusal::Global)?;
        if self.0.global.is_some_and(|max| state.total >= max) {
            return Err(ConcurrencyRefusal::Global);
        }
        if let Some(ip) = client {
            let count = state.per_client.entry(ip).or_insert(0);
            if *count >= self.0.per_client {
                return Err(ConcurrencyRefusal::PerClient);
            }
            *count += 1;
        }
        state.total += 1;
        Ok(Permit {
            limiter: self.0.clone(),
            client,
        })
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> u32 {
        self.0.state.lock().map_or(0, |s| s.total)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let Ok(mut state) = self.limiter.state.lock() else {
            return;
        };
        state.total = state.total.saturating_sub(1);
        if let Some(ip) = self.client
            && let Some(count) = state.per_client.get_mut(&ip)
        {
            *count -= 1;
            if *count == 0 {
                state.per_client.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_client_and_global_caps() {
        let nz = |n| NonZeroU32::new(n).unwrap();
        let limiter = ConcurrencyLimiter::per_client(nz(2)).global(nz(3));
        let a = Some("10.0.0.1".parse().unwrap());
        let b = Some("10.0.0.2".parse().unwrap());
        let p1 = limiter.try_acquire(a).unwrap();
        let _p2 = limiter.try_acquire(a).unwrap();
        assert_eq!(
            limiter.try_acquire(a).unwrap_err(),
            ConcurrencyRefusal::PerClient
        );
        let _p3 = limiter.try_acquire(b).unwrap();
        assert_eq!(
            limiter.try_acquire(b).unwrap_err(),
            ConcurrencyRefusal::Global
        );
        drop(p1);
        assert_eq!(limiter.in_flight(), 2);
        assert!(limiter.try_acquire(b).is_ok());
    }

    #[test]
    fn an_ipv6_slash_64_is_one_client() {
        let limiter = ConcurrencyLimiter::per_client(NonZeroU32::new(1).unwrap());
        let first = limiter.try_acquire("2001:db8::1".parse().ok()).unwrap();
        assert_eq!(
            limiter.try_acquire("2001:db8::2".parse().ok()).unwrap_err(),
            ConcurrencyRefusal::PerClient
        );
        let other = limiter.try_acquire("2001:db8:0:1::1".parse().ok()).unwrap();
        drop(first);
        assert!(limiter.try_acquire("2001:db8::2".parse().ok()).is_ok());
        drop(other);
    }

    #[test]
    fn an_ipv4_mapped_address_is_its_ipv4_client() {
        let limiter = ConcurrencyLimiter::per_client(NonZeroU32::new(1).unwrap());
        let _first = limiter
            .try_acquire("::ffff:192.0.2.1".parse().ok())
            .unwrap();
        assert_eq!(
            limiter.try_acquire("192.0.2.1".parse().ok()).unwrap_err(),
            ConcurrencyRefusal::PerClient
        );
    }

    /// `global` made a limiter with fresh counts: permits taken before it (on the limiter
    /// or a clone of it) were counted only in the old one, so the global cap let through
    /// more than its maximum, silently. The counts are now shared.
    #[test]
    fn a_global_cap_set_late_counts_the_slots_already_taken() {
        let nz = |n| NonZeroU32::new(n).unwrap();
        let a = "10.0.0.1".parse().ok();
        let b = "10.0.0.2".parse().ok();

        let limiter = ConcurrencyLimiter::per_client(nz(1));
        let held = limiter.try_acquire(a).unwrap();
        let limiter = limiter.global(nz(1));
        assert_eq!(limiter.in_flight(), 1, "the permit held is not counted");
        assert_eq!(
            limiter.try_acquire(b).map(drop),
            Err(ConcurrencyRefusal::Global),
            "a second request let through a global cap of 1"
        );
        drop(held);
        assert_eq!(limiter.in_flight(), 0);

        let first = ConcurrencyLimiter::per_client(nz(1));
        let capped = first.clone().global(nz(1));
        let _held = first.try_acquire(a).unwrap();
        assert_eq!(capped.in_flight(), 1, "a clone's permit is not counted");
        assert_eq!(
            capped.try_acquire(b).map(drop),
            Err(ConcurrencyRefusal::Global)
        );
    }
}
