//! Login throttling: only failures count, per account and per client IP, with exponential
//! lockout; a success clears the account's count.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject {
    Account(String),
    Ip(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    locked_until: Instant,
    last_failure: Instant,
}

/// Slows down password guessing without locking out legitimate users for long.
///
/// Each account and each client IP has a failure count. Past the free attempts (5 per
/// account, 20 per IP by default), each further failure locks that subject out for
/// 1 s × 2^(excess), capped at 15 minutes. A successful login clears the **account's**
/// count only: an attacker with one valid account of their own cannot reset their IP's.
/// Counts are forgotten after an hour without failures; at most 100 000 subjects are
/// tracked (the oldest idle ones are dropped first).
///
/// ```
/// use std::net::IpAddr;
/// use hardening_ratelimit::LoginThrottle;
///
/// let throttle = LoginThrottle::new();
/// let ip: IpAddr = "203.0.113.9".parse().unwrap();
/// for _ in 0..5 {
///     assert!(throttle.check("alice@example.com", ip).is_ok());
///     throttle.failure("alice@example.com", ip);
/// }
/// assert!(throttle.check("alice@example.com", ip).is_ok(), "five free attempts");
/// throttle.failure("alice@example.com", ip);
/// let wait = throttle.check("alice@example.com", ip).unwrap_err();
/// assert!(wait > std::time::Duration::from_millis(500));
/// ```
#[derive(Debug)]
pub struct LoginThrottle {
    entries: Mutex<HashMap<Subject, Entry>>,
    account_free: u32,
    ip_free: u32,
    base: Duration,
    max: Duration,
    forget_after: Duration,
    capacity: usize,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new()
    }
}

impl LoginThrottle {
    /// 5 free failures per account, 20 per IP, 1 s doubling to 15 min, forgotten after 1 h.
    pub fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            account_free: 5,
            ip_free: 20,
            base: Duration::from_secs(1),
            max: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(3600),
            capacity: 100_000,
        }
    }

    /// Free failures per account and per IP before lockouts start.
    #[must_use]
    pub fn free_attempts(mut self, per_account: u32, per_ip: u32) -> Self {
        self.account_free = per_account;
        self.ip_free = per_ip;
        self
    }

    /// The first lockout and the longest one.
    #[must_use]
    pub fn lockout(mut self, first: Duration, longest: Duration) -> Self {
        self.base = first;
        self.max = longest.max(first);
        self
    }

    /// `Ok` if a login attempt may proceed now; else how long to wait.
    pub fn check(&self, account: &str, ip: IpAddr) -> Result<(), Duration> {
        self.check_at(account, ip, Instant::now())
    }

    /// Records a failed attempt.
    pub fn failure(&self, account: &str, ip: IpAddr) {
        self.failure_at(account, ip, Instant::now());
    }

    /// Records a successful login: the account's count is cleared.
    pub fn success(&self, account: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&Subject::Account(normalize(account)));
        }
    }

    #[doc(hidden)]
    pub fn check_at(&self, account: &str, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let Ok(entries) = self.entries.lock() else {
            return Err(self.max);
        };
        let wait = [Subject::Account(normalize(account)), Subject::Ip(ip)]
            .iter()
            .filter_map(|s| entries.get(s))
            .map(|e| e.locked_until.saturating_duration_since(now))
            .max()
            .unwrap_or_default();
        if wait.is_zero() { Ok(()) } else { Err(wait) }
    }

    #[doc(hidden)]
    pub fn failure_at(&self, account: &str, ip: IpAddr, now: Instant) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= self.capacity {
            let forget_after = self.forget_after;
            entries.retain(|_, e| now.saturating_duration_since(e.last_failure) < forget_after);
            if entries.len() >= self.capacity
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.last_failure)
                    .map(|(s, _)| s.clone())
            {
                entries.remove(&oldest);
            }
        }
        for (subject, free) in [
            (Subject::Account(normalize(account)), self.account_free),
            (Subject::Ip(ip), self.ip_free),
        ] {
            let entry = entries.entry(subject).or_insert(Entry {
                failures: 0,
                locked_until: now,
                last_failure: now,
            });
            if now.saturating_duration_since(entry.last_failure) >= self.forget_after {
                entry.failures = 0;
            }
            entry.failures = entry.failures.saturating_add(1);
            entry.last_failure = now;
            if let Some(excess) = entry.failures.checked_sub(free + 1) {
                let lockout = self
                    .base
                    .checked_mul(1u32.checked_shl(excess).unwrap_or(u32::MAX))
                    .map_or(self.max, |d| d.min(self.max));
                entry.locked_until = now + lockout;
            }
        }
    }
}

/// Accounts are compared case-insensitively, trimmed (`Alice@Example.com ` is `alice@example.com`).
fn normalize(account: &str) -> String {
    account.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn lockout_doubles_and_caps() {
        let t = LoginThrottle::new().free_attempts(2, 100);
        let start = Instant::now();
        let a = ip("10.0.0.1");
        let mut expected = Vec::new();
        for i in 0..15u32 {
            t.failure_at("Bob", a, start);
            expected.push(
                t.check_at("bob", a, start)
                    .err()
                    .unwrap_or_default()
                    .as_secs(),
            );
            let _ = i;
        }
        assert_eq!(&expected[..6], &[0, 0, 1, 2, 4, 8]);
        assert_eq!(*expected.last().unwrap(), 900, "capped at 15 minutes");
        assert!(
            t.check_at("bob", a, start + Duration::from_secs(901))
                .is_ok(),
            "lockout ends"
        );
    }

    #[test]
    fn success_clears_the_account_but_not_the_ip() {
        let t = LoginThrottle::new().free_attempts(1, 3);
        let now = Instant::now();
        let a = ip("10.0.0.1");
        for user in ["u1", "u2", "u3", "u4"] {
            t.failure_at(user, a, now);
        }
        assert!(
            t.check_at("fresh-user", a, now).is_err(),
            "the IP is locked"
        );
        t.success("u4");
        assert!(
            t.check_at("other", a, now).is_err(),
            "a success does not unlock the IP"
        );
        assert!(t.check_at("other", ip("10.0.0.2"), now).is_ok());
    }

    #[test]
    fn counts_are_forgotten_after_an_idle_hour() {
        let t = LoginThrottle::new().free_attempts(1, 100);
        let now = Instant::now();
        let a = ip("10.0.0.1");
        t.failure_at("x", a, now);
        t.failure_at("x", a, now);
        assert!(t.check_at("x", a, now).is_err());
        let later = now + Duration::from_secs(3601);
        t.failure_at("x", a, later);
        assert!(t.check_at("x", a, later).is_ok(), "count restarted");
    }
}
