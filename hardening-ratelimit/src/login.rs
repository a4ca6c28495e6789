//! Login throttling: only failures count, per account from one client, per account from all
//! clients (a much higher count) and per client IP, with exponential lockout; a success clears
//! the account's counts.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::{Mutex, TryLockError};
use std::time::{Duration, Instant};

use axum::response::{IntoResponse, Response};
use hardening_errors::{Error, Problem};

use crate::limiter::{SUBSCRIBER_PREFIX, client_group};

/// The name under which a throttle's refusals are reported (`violated-policies` of the 429).
pub(crate) const POLICY: &str = "login-failures";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Subject {
    /// The account, from every client: the account name's [`account_key`], as a 64-bit
    /// SipHash under this throttle's random key: a fixed size however long the name a client
    /// sends, and collisions an attacker cannot aim for (two of 100 000 accounts share a
    /// count with odds of about 3 × 10⁻¹⁰).
    Account(u64),
    /// The account from one client: the same keyed hash of the account's key together with
    /// the client, grouped as [`Subject::Ip`] groups it.
    AccountFromClient(u64),
    /// The client, grouped as the rate limiter groups it (IPv6 by /64, IPv4-mapped as IPv4).
    Ip(IpAddr),
}

/// The three subjects one attempt is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Subjects {
    /// The account from every client ([`Subject::Account`]).
    account: Subject,
    /// The account from this client ([`Subject::AccountFromClient`]).
    pair: Subject,
    /// The client ([`Subject::Ip`]).
    ip: Subject,
}

impl Subjects {
    fn all(self) -> [Subject; 3] {
        [self.pair, self.account, self.ip]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    failures: u32,
    locked_until: Instant,
    last_failure: Instant,
}

/// Slows down password guessing without locking out legitimate users for long, nor letting
/// one client lock them out.
///
/// Every failure is counted three times, and each count has its free failures, past which
/// each further failure locks that subject out for 1 s × 2^(excess), capped at 15 minutes:
///
/// - **the account from one client** (5 free by default): one client guessing one account's
///   password is stopped after 6 attempts, and slowed to about 4 an hour. Only that client
///   is locked out of that account: the owner, from another client, still logs in.
/// - **the account from all clients** (100 free by default, NIST SP 800-63B's "no more than
///   100 consecutive failed attempts"): what stops many clients guessing one account
///   together. Past it the account is locked out for every client, the owner too. That is
///   the trade-off: a distributed attacker, failing 100 times from enough clients before the
///   count is forgotten, can still lock an account for everyone; so can one client failing
///   at its slowed pace for about 21 hours (the count is only forgotten after an idle
///   hour) if the owner does not log in meanwhile. A successful login resets this count.
/// - **the client** (20 free by default), whatever the accounts it tries: one client
///   guessing many accounts.
///
/// An attempt is let through only if none of its three subjects is locked out (else the
/// longest wait is the answer). A successful login clears the **account's** counts (from
/// all clients, and from the client that logged in) and takes back its own charge on the
/// client's: an attacker with one valid account of their own cannot reset their IP's.
/// Counts are forgotten after an hour without failures. At most 100 000 subjects are
/// tracked: when a failure finds the table full, every subject idle for an hour (and not
/// locked out) goes and, if that does not bring the table down to about 7/8 full, so do
/// the others least far into a lockout (fewest failures past the free ones, then fewest
/// failures, then oldest; never the three being recorded), so a flood of fresh names cannot
/// flush a count. Room is thus made in batches of about an eighth of the table, not one
/// scan of it per failure. IPv6 clients are counted by /64 (one subscriber), IPv4-mapped
/// IPv6 addresses as the IPv4 client they are, in the client's count and in the account's
/// from that client alike; account names are stored as keyed 64-bit hashes, so a long name
/// costs no memory.
///
/// The counts live in this process: for one instance. With several behind a load balancer,
/// each would count its own, and a client whose attempts are spread across N of them would
/// get up to N times the free failures before a lockout (6 guesses on one account become 12
/// on two instances): count in Redis instead, by these rules, with `RedisLoginThrottle`
/// (feature `redis`).
///
/// # One call per attempt, before the password is checked
///
/// [`attempt`](Self::attempt) lets an attempt through (or says how long to wait) and, in
/// the same step, counts it as a failure; the `LoginAttempt` it returns takes that back
/// when told the password was right (`succeeded()`). So attempts sent at once cannot all
/// pass before the first of them is recorded: with 5 free failures, at most 6 attempts on
/// one account from one client are ever let through before that lockout (and at most 101
/// from all clients), however many arrive together. An attempt dropped without an outcome
/// (an error, a cancelled request) stays a failure. One whose password could not be checked
/// at all (the hasher was busy: `PasswordError::Busy`) is `not_checked()`: its charge is
/// taken back, and nothing is cleared.
///
/// # Which names are one account
///
/// Every spelling of a name that an application's account lookup could take for the same
/// account must share one count, or each spelling is a fresh budget of guesses. Names are
/// compared by a key made from them: surrounding white space trimmed, fullwidth forms
/// mapped to ASCII (`ａｌｉｃｅ` is `alice`), lowercased, and `ß`/`ς` case-folded to
/// `ss`/`σ`. Give the throttle the name as the client sent it, or better, the account's
/// own canonical key (its id) once your lookup has found it.
///
/// The converse holds too: names with one key must be one account. Two accounts sharing a
/// key share its counts, and logging in to one clears the other's, so a guesser who signs
/// up `ａlice` (fullwidth) could reset `alice`'s counts at will. Store and look up account
/// names by [`account_key`](Self::account_key), or refuse a name whose key is taken.
///
/// ```
/// use std::net::IpAddr;
/// use std::time::Duration;
/// use hardening_ratelimit::{LoginConfigError, LoginThrottle};
///
/// // A first lockout of 10 minutes (1 s by default), doubling up to an hour.
/// let first = Duration::from_secs(10 * 60);
/// let throttle = LoginThrottle::new().lockout(first, Duration::from_secs(3600))?;
/// let ip: IpAddr = "203.0.113.9".parse().unwrap();
/// for _ in 0..5 {
///     let attempt = throttle.attempt("alice@example.com", ip).expect("not locked yet");
///     // … the password is wrong:
///     attempt.failed();
/// }
/// // The sixth attempt is let through; its failure locks this client out of the account.
/// throttle.attempt("Alice@Example.com", ip).unwrap().failed();
/// let wait = throttle.attempt("alice@example.com", ip).unwrap_err();
/// // What is left of the first lockout.
/// assert!(!wait.is_zero() && wait <= first, "{wait:?}");
///
/// // Alice, from her own client, is not locked out by those guesses.
/// let hers: IpAddr = "198.51.100.7".parse().unwrap();
/// let attempt = throttle.attempt("alice@example.com", hers).expect("not locked for her");
/// // A right password takes its attempt's charge back and clears the account's counts.
/// attempt.succeeded();
/// # Ok::<(), LoginConfigError>(())
/// ```
pub struct LoginThrottle {
    entries: Mutex<HashMap<Subject, Entry>>,
    /// Keys the account hashes (random per throttle).
    account_hasher: RandomState,
    /// Free failures of an account from one client ([`Subject::AccountFromClient`]).
    pair_free: u32,
    /// Free failures of an account from all clients ([`Subject::Account`]).
    account_free: u32,
    ip_free: u32,
    base: Duration,
    max: Duration,
    forget_after: Duration,
    capacity: usize,
    /// How many times a failure found the table full and made room (tests only).
    #[cfg(test)]
    eviction_passes: std::sync::atomic::AtomicUsize,
}

/// The settings and how many subjects are tracked: the table itself (every client's address,
/// its failures and lockout) stays out of whatever log prints a throttle or an attempt.
impl fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("LoginThrottle");
        out.field("free_per_account_from_client", &self.pair_free)
            .field("free_per_account", &self.account_free)
            .field("free_per_ip", &self.ip_free)
            .field("first_lockout", &self.base)
            .field("longest_lockout", &self.max)
            .field("forget_after", &self.forget_after)
            .field("capacity", &self.capacity);
        // Not waiting for the lock: printing must not block behind an attempt, nor deadlock
        // while this thread holds it.
        match self.entries.try_lock() {
            Ok(entries) => out.field("tracked", &entries.len()),
            Err(TryLockError::Poisoned(poisoned)) => {
                out.field("tracked", &poisoned.into_inner().len())
            }
            Err(TryLockError::WouldBlock) => out.field("tracked", &"busy"),
        };
        out.finish_non_exhaustive()
    }
}

/// A misconfigured [`LoginThrottle`].
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoginConfigError {
    /// A first lockout of zero: every guess would be let through.
    #[error(
        "a first lockout of zero never locks an account: use a duration above zero (the \
         default is 1 s, doubling to 15 min)"
    )]
    ZeroLockout,
}

hardening_errors::debug_as_message!(LoginConfigError);

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new()
    }
}

impl LoginThrottle {
    /// 5 free failures per account from one client, 100 per account from all clients, 20 per
    /// IP, 1 s doubling to 15 min, forgotten after 1 h.
    pub fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            account_hasher: RandomState::new(),
            pair_free: 5,
            account_free: 100,
            ip_free: 20,
            base: Duration::from_secs(1),
            max: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(3600),
            capacity: 100_000,
            #[cfg(test)]
            eviction_passes: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Free failures per account **from one client** (5 by default) and per client IP (20)
    /// before their lockouts start. Past `per_account`, that client is locked out of that
    /// account, not everyone: the count of failures on the account from all clients is
    /// [`free_attempts_account_wide`](Self::free_attempts_account_wide).
    #[must_use]
    pub fn free_attempts(mut self, per_account: u32, per_ip: u32) -> Self {
        self.pair_free = per_account;
        self.ip_free = per_ip;
        self
    }

    /// Free failures per account **from all clients** together (100 by default, the most
    /// NIST SP 800-63B §5.2.2 allows) before lockouts of the account start. These lock the
    /// account out for every client, its owner too, and stop many clients guessing one
    /// account, each within its own [`free_attempts`](Self::free_attempts). A successful
    /// login (once a lockout has ended) resets the count.
    ///
    /// Keep it well above the per-client count: at or below it, a single client's wrong
    /// guesses lock the account for everyone before they lock that client out, which is what
    /// the per-client count is there to prevent. It is allowed (an account locked for all
    /// sooner), not refused.
    ///
    /// ```
    /// use std::net::IpAddr;
    /// use std::time::Duration;
    /// use hardening_ratelimit::{LoginConfigError, LoginThrottle};
    ///
    /// let minute = Duration::from_secs(60);
    /// let throttle = LoginThrottle::new()
    ///     .free_attempts_account_wide(2)
    ///     .lockout(10 * minute, 60 * minute)?;
    /// for n in 1..=3u8 {
    ///     let ip = IpAddr::from([203, 0, 113, n]);
    ///     throttle.attempt("alice@example.com", ip).unwrap().failed();
    /// }
    /// // Three failures from three clients: the account is locked for a fourth one too.
    /// let elsewhere: IpAddr = "198.51.100.7".parse().unwrap();
    /// assert!(throttle.attempt("alice@example.com", elsewhere).is_err());
    /// # Ok::<(), LoginConfigError>(())
    /// ```
    #[must_use]
    pub fn free_attempts_account_wide(mut self, per_account: u32) -> Self {
        self.account_free = per_account;
        self
    }

    /// The first lockout and the longest one (a longer `first` is taken as both). A first
    /// lockout of zero would never lock anyone out, so it is refused. Default 1 s and 15 min.
    ///
    /// # Errors
    ///
    /// [`LoginConfigError::ZeroLockout`] for a `first` of zero.
    ///
    /// ```
    /// use std::time::Duration;
    /// use hardening_ratelimit::LoginThrottle;
    ///
    /// let minute = Duration::from_secs(60);
    /// assert!(LoginThrottle::new().lockout(minute, 60 * minute).is_ok());
    /// let off = LoginThrottle::new().lockout(Duration::ZERO, minute).unwrap_err();
    /// assert!(off.to_string().contains("above zero"));
    /// ```
    pub fn lockout(mut self, first: Duration, longest: Duration) -> Result<Self, LoginConfigError> {
        if first.is_zero() {
            return Err(LoginConfigError::ZeroLockout);
        }
        self.base = first;
        self.max = longest.max(first);
        Ok(self)
    }

    /// Lets a login attempt through, or says how long to wait (the longest lockout of the
    /// account from this client, the account from all clients and the client); one call per
    /// attempt, before the password is checked. The attempt is counted as a failure of all
    /// three at once (atomically with the check, so concurrent attempts cannot all pass):
    /// call `succeeded()` on the returned `LoginAttempt` when the password is right, which
    /// takes the charge back, or `failed()` (or drop it) when it is not.
    ///
    /// # Errors
    ///
    /// The time to wait while any of the three is locked out (nothing is counted then), or
    /// the longest lockout if a panic elsewhere left the counts unreadable (poisoned).
    /// Answer it as [`LoginRefused::LockedOut`]: a 429 problem naming `login-failures`, with
    /// `Retry-After`, as a refusal of the Redis throttle answers.
    ///
    /// ```
    /// use std::net::IpAddr;
    /// use axum::response::IntoResponse;
    /// use hardening_ratelimit::{LoginRefused, LoginThrottle};
    ///
    /// let throttle = LoginThrottle::new();
    /// let ip: IpAddr = "203.0.113.9".parse().unwrap();
    /// for _ in 0..6 {
    ///     throttle.attempt("alice@example.com", ip).unwrap().failed();
    /// }
    /// let refused = throttle.attempt("alice@example.com", ip).map_err(LoginRefused::LockedOut);
    /// let response = refused.unwrap_err().into_response();
    /// assert_eq!(response.status(), 429);
    /// assert_eq!(response.headers()["retry-after"], "1");
    /// ```
    pub fn attempt(&self, account: &str, ip: IpAddr) -> Result<LoginAttempt<'_>, Duration> {
        self.attempt_at(account, ip, Instant::now())
    }

    /// The key `account` is counted under (see "Which names are one account" above):
    /// store and look up account names by it, and no two accounts share a count.
    ///
    /// ```
    /// use hardening_ratelimit::LoginThrottle;
    ///
    /// assert_eq!(LoginThrottle::account_key(" \u{ff21}lice@Example.com"), "alice@example.com");
    /// ```
    pub fn account_key(account: &str) -> String {
        account_key(account)
    }

    pub(crate) fn attempt_at(
        &self,
        account: &str,
        ip: IpAddr,
        now: Instant,
    ) -> Result<LoginAttempt<'_>, Duration> {
        Ok(LoginAttempt {
            throttle: self,
            charge: self.charge_at(account, ip, now)?,
        })
    }

    /// [`attempt`](Self::attempt)'s check and charge, with what it takes to take the charge
    /// back later: for a [`LoginAttempt`], or for the Redis throttle's attempts counted here
    /// while its Redis is away.
    pub(crate) fn charge_at(
        &self,
        account: &str,
        ip: IpAddr,
        now: Instant,
    ) -> Result<MemoryCharge, Duration> {
        // The name's key first: folding a long name must not hold the lock every login waits on.
        let subjects = self.subjects(account, ip);
        let Ok(mut entries) = self.entries.lock() else {
            return Err(self.max);
        };
        let wait = Self::wait(&entries, subjects, now);
        if !wait.is_zero() {
            return Err(wait);
        }
        let before = subjects.all().map(|s| entries.get(&s).copied());
        self.record_failure(&mut entries, subjects, now);
        let charged = subjects.all().map(|s| entries.get(&s).copied());
        Ok(MemoryCharge {
            subjects,
            before,
            charged,
        })
    }

    /// The rules this throttle counts by, for the Redis throttle, which counts by the same.
    #[cfg(feature = "redis")]
    pub(crate) fn rules(&self) -> LoginRules {
        LoginRules {
            pair_free: self.pair_free,
            account_free: self.account_free,
            ip_free: self.ip_free,
            first_lockout: self.base,
            longest_lockout: self.max,
            forget_after: self.forget_after,
        }
    }

    /// How long any of `subjects` is still locked out (zero if none is).
    fn wait(entries: &HashMap<Subject, Entry>, subjects: Subjects, now: Instant) -> Duration {
        subjects
            .all()
            .iter()
            .filter_map(|s| entries.get(s))
            .map(|e| e.locked_until.saturating_duration_since(now))
            .max()
            .unwrap_or_default()
    }

    /// Counts one failure of each of `subjects`, locking any out past its free ones.
    fn record_failure(
        &self,
        entries: &mut HashMap<Subject, Entry>,
        subjects: Subjects,
        now: Instant,
    ) {
        let ours = subjects.all();
        let new = ours.iter().filter(|s| !entries.contains_key(s)).count();
        if entries.len() + new > self.capacity {
            self.make_room(entries, ours, new, now);
        }
        for subject in ours {
            let free = self.free(subject);
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
            if let Some(excess) = entry.failures.checked_sub(free.saturating_add(1)) {
                let lockout = self
                    .base
                    .checked_mul(1u32.checked_shl(excess).unwrap_or(u32::MAX))
                    .map_or(self.max, |d| d.min(self.max));
                entry.locked_until = later(now, lockout);
            }
        }
    }

    /// Called when inserting `new` subjects would overflow the table: drops every subject
    /// idle for `forget_after` and not locked out, then, least far into a lockout first, as
    /// many others as it takes to bring the table down to about 7/8 of its capacity, and to
    /// `capacity - new` at most.
    /// `ours`, the three subjects being recorded, are never dropped. Each call is O(n), but
    /// it leaves room for the next capacity/8 new subjects, so a flood of new subjects costs
    /// amortized O(1) per failure rather than a full scan each.
    fn make_room(
        &self,
        entries: &mut HashMap<Subject, Entry>,
        ours: [Subject; 3],
        new: usize,
        now: Instant,
    ) {
        #[cfg(test)]
        self.eviction_passes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        entries.retain(|s, e| {
            ours.contains(s)
                || now.saturating_duration_since(e.last_failure) < self.forget_after
                || e.locked_until > now
        });
        let target = (self.capacity - self.capacity / 8).min(self.capacity.saturating_sub(new));
        let Some(excess) = entries.len().checked_sub(target).filter(|&n| n > 0) else {
            return;
        };
        // Least far into a lockout first: the fewest failures past the free ones, then the
        // fewest failures, then the oldest. Forgetting them gives the least back.
        let rank = |s: &Subject, e: &Entry| {
            (
                e.failures.saturating_sub(self.free(*s)),
                e.failures,
                e.last_failure,
            )
        };
        let mut others: Vec<_> = entries
            .iter()
            .filter(|(s, _)| !ours.contains(s))
            .map(|(s, e)| (rank(s, e), *s))
            .collect();
        if excess < others.len() {
            // The `excess` lowest come first, in no particular order: O(n), no sort.
            others.select_nth_unstable_by_key(excess, |&(rank, _)| rank);
        }
        for (_, subject) in others.iter().take(excess) {
            entries.remove(subject);
        }
    }

    /// The free failures of `subject`'s kind.
    fn free(&self, subject: Subject) -> u32 {
        match subject {
            Subject::AccountFromClient(_) => self.pair_free,
            Subject::Account(_) => self.account_free,
            Subject::Ip(_) => self.ip_free,
        }
    }

    /// What an attempt on `account` from `ip` is counted against. Accounts are compared by
    /// the keyed hash of their [`account_key`]; the account from one client by the keyed
    /// hash of that key with the client's group (the one [`Subject::Ip`] counts it by).
    fn subjects(&self, account: &str, ip: IpAddr) -> Subjects {
        let key = account_key(account);
        let client = client_group(ip, SUBSCRIBER_PREFIX);
        Subjects {
            account: Subject::Account(self.account_hasher.hash_one(key.as_str())),
            pair: Subject::AccountFromClient(self.account_hasher.hash_one((key.as_str(), client))),
            ip: Subject::Ip(client),
        }
    }
}

/// One login attempt that [`LoginThrottle::attempt`] let through, already counted as a
/// failure. Say how it ended: [`succeeded`](Self::succeeded) takes the charge back (and
/// clears the account's counts), [`failed`](Self::failed) keeps it,
/// [`not_checked`](Self::not_checked) takes it back and clears nothing. Dropped without any,
/// it stays a failure.
#[derive(Debug)]
#[must_use = "a login attempt counts as a failure unless `succeeded()` or `not_checked()` is called"]
pub struct LoginAttempt<'a> {
    throttle: &'a LoginThrottle,
    charge: MemoryCharge,
}

impl LoginAttempt<'_> {
    /// The password was right: the account's counts are cleared (its count from all clients,
    /// and from this client; other clients' counts on it stay), and the charge this attempt
    /// put on the client IP is taken back (its count and lockout are as before the attempt
    /// when no other attempt from it was charged meanwhile, else one lower).
    pub fn succeeded(self) {
        self.throttle.succeeded(&self.charge);
    }

    /// The password was wrong (or the account unknown): the attempt stays counted.
    pub fn failed(self) {}

    /// The password was not checked (the hasher was too busy: `PasswordError::Busy`), so the
    /// attempt was neither a success nor a failure: its charge is taken back from all three
    /// counts, the account's from this client and from all clients and the client's, each
    /// as before the attempt when no other attempt was charged to it meanwhile, else one
    /// lower. Unlike [`succeeded`](Self::succeeded), nothing is cleared: earlier failures
    /// stay. Call it only when no verdict was reached; a wrong password is `failed()`.
    pub fn not_checked(self) {
        self.throttle.not_checked(&self.charge);
    }
}

/// What one attempt charged a [`LoginThrottle`]: its subjects, and their entries before and
/// right after the charge, so that it can be taken back.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MemoryCharge {
    subjects: Subjects,
    /// The entries of [`Subjects::all`] before this attempt was charged, and right after.
    before: [Option<Entry>; 3],
    charged: [Option<Entry>; 3],
}

impl LoginThrottle {
    /// [`LoginAttempt::succeeded`] for `charge`.
    pub(crate) fn succeeded(&self, charge: &MemoryCharge) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        entries.remove(&charge.subjects.account);
        entries.remove(&charge.subjects.pair);
        self.take_back(&mut entries, charge, |subject| {
            subject == charge.subjects.ip
        });
    }

    /// [`LoginAttempt::not_checked`] for `charge`.
    pub(crate) fn not_checked(&self, charge: &MemoryCharge) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        self.take_back(&mut entries, charge, |_| true);
    }

    /// Takes `charge` back from each of its subjects that `which` picks.
    fn take_back(
        &self,
        entries: &mut HashMap<Subject, Entry>,
        charge: &MemoryCharge,
        which: impl Fn(Subject) -> bool,
    ) {
        let charges = charge
            .subjects
            .all()
            .into_iter()
            .zip(charge.before)
            .zip(charge.charged);
        for ((subject, before), charged) in charges.filter(|((s, _), _)| which(*s)) {
            let Some(entry) = entries.get_mut(&subject) else {
                continue;
            };
            if Some(*entry) == charged {
                match before {
                    Some(before) => *entry = before,
                    None => {
                        entries.remove(&subject);
                    }
                }
                continue;
            }
            // Other attempts were charged to it since: only this one's share goes.
            entry.failures = entry.failures.saturating_sub(1);
            if entry.failures <= self.free(subject) {
                entry.locked_until = entry.locked_until.min(entry.last_failure);
            }
            if entry.failures == 0 {
                entries.remove(&subject);
            }
        }
    }
}

/// The rules of a [`LoginThrottle`] (see [`LoginThrottle::rules`]).
#[cfg(feature = "redis")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoginRules {
    /// Free failures of an account from one client.
    pub(crate) pair_free: u32,
    /// Free failures of an account from all clients.
    pub(crate) account_free: u32,
    /// Free failures of a client.
    pub(crate) ip_free: u32,
    pub(crate) first_lockout: Duration,
    pub(crate) longest_lockout: Duration,
    /// How long a count lasts after its last failure.
    pub(crate) forget_after: Duration,
}

/// The key an account name is throttled under: every spelling an account lookup could take
/// for one account gives the same key. Compatibility forms folded (fullwidth `ａ` is `a`),
/// case folded (Unicode's full default case folding: `ß` → `ss`, `ς` → `σ`, `ᾼ` → `αι`,
/// Cherokee small letters to capitals…), compatibility forms folded again (case folding
/// can produce them) and white space trimmed.
pub(crate) fn account_key(name: &str) -> String {
    let folded = case_fold(&compatibility_fold(name));
    compatibility_fold(&folded).trim().to_owned()
}

/// The compatibility fold of `name`: Unicode NFKC, which makes NFC `é` and NFD `e` + U+0301
/// one name, fullwidth `ａ` an `a` and `ﬁ` an `fi`. ASCII, the usual case, is left as it is.
fn compatibility_fold(name: &str) -> Cow<'_, str> {
    use unicode_normalization::UnicodeNormalization;
    if name.is_ascii() {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(name.nfkc().collect())
    }
}

/// Unicode's full default case folding (CaseFolding.txt, statuses C and F, without the
/// Turkic mappings), which is not lowercase: `ß` and `ẞ` are `ss`, the final sigma `ς` is
/// `σ`, the ypogegrammeni U+0345 is `ι` (so `ᾳ` is `αι`) and Cherokee small letters are
/// their capitals. ASCII, the usual case, is lowercased without the table.
fn case_fold(name: &str) -> String {
    if name.is_ascii() {
        name.to_ascii_lowercase()
    } else {
        caseless::default_case_fold_str(name)
    }
}

/// `now + wait`, or nearly the latest instant there is when that is past it (a lockout "for
/// good"): never a panic.
fn later(now: Instant, wait: Duration) -> Instant {
    let mut wait = wait;
    loop {
        if let Some(then) = now.checked_add(wait) {
            return then;
        }
        wait /= 2;
    }
}

/// Why a login attempt was not let through: [`LoginThrottle::attempt`]'s wait as
/// `LoginRefused::LockedOut(wait)`, or `RedisLoginThrottle::attempt`'s refusal (feature
/// `redis`). Answer it as it answers itself ([`IntoResponse`]), or with
/// [`to_problem`](Self::to_problem).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginRefused {
    /// The account from this client, the account, or the client is locked out for this long
    /// (the longest of the three): a 429 `quota-exceeded` problem naming the policy
    /// `login-failures`, with `Retry-After`.
    LockedOut(Duration),
    /// Redis could not count the attempt (down, slow, or the circuit breaker open), or would
    /// count it under another hash key's names (another instance's key is the one Redis
    /// holds, see `RedisLoginThrottleBuilder::connect`): a 503 problem (`about:blank`, as
    /// the `jti` denylist's outage) with `Retry-After` this long (the breaker's cool-down, at
    /// least a second). No password may be checked uncounted.
    Unavailable(Duration),
}

impl LoginRefused {
    /// How long the client should wait.
    pub fn retry_after(&self) -> Duration {
        match *self {
            Self::LockedOut(wait) | Self::Unavailable(wait) => wait,
        }
    }

    /// The problem to answer with: a 429 `quota-exceeded` (`violated-policies`:
    /// `login-failures`), or a 503; with `Retry-After` in whole seconds, rounded up.
    ///
    /// ```
    /// use std::time::Duration;
    /// use hardening_ratelimit::LoginRefused;
    ///
    /// let problem = LoginRefused::Unavailable(Duration::from_millis(1500)).to_problem();
    /// assert_eq!(problem.status(), 503);
    /// assert_eq!(problem.headers()["retry-after"], "2");
    /// assert_eq!(LoginRefused::LockedOut(Duration::from_secs(4)).to_problem().status(), 429);
    /// ```
    pub fn to_problem(&self) -> Problem {
        match *self {
            Self::LockedOut(retry_after) => Error::TooManyRequests {
                retry_after,
                policies: vec![POLICY.to_owned()],
            }
            .to_problem(),
            // At least a second: `Retry-After: 0` would invite a retry storm.
            Self::Unavailable(retry_after) => {
                Error::UnavailableFor(retry_after).to_problem().with_detail(
                    "login attempts could not be counted (their store is unavailable); retry \
                     after the Retry-After delay",
                )
            }
        }
    }
}

impl IntoResponse for LoginRefused {
    fn into_response(self) -> Response {
        self.to_problem().into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header;
    use std::sync::atomic::Ordering;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ip_subject(ip: IpAddr) -> Subject {
        Subject::Ip(client_group(ip, SUBSCRIBER_PREFIX))
    }

    /// Set-up and inspection for the tests, through the code `attempt` runs.
    impl LoginThrottle {
        /// Records a failure as a let-through attempt does, whether or not the subjects are
        /// locked out (to build up counts at one instant).
        fn failure_at(&self, account: &str, ip: IpAddr, now: Instant) {
            let mut entries = self.entries.lock().unwrap();
            self.record_failure(&mut entries, self.subjects(account, ip), now);
        }

        /// `Ok` if an attempt would be let through now, else how long to wait; charges
        /// nothing.
        fn check_at(&self, account: &str, ip: IpAddr, now: Instant) -> Result<(), Duration> {
            let entries = self.entries.lock().unwrap();
            let wait = Self::wait(&entries, self.subjects(account, ip), now);
            if wait.is_zero() { Ok(()) } else { Err(wait) }
        }
    }

    #[test]
    fn a_refusal_is_a_429_or_a_503_problem_with_retry_after() {
        let locked = LoginRefused::LockedOut(Duration::from_millis(4001)).into_response();
        assert_eq!(locked.status(), 429);
        assert_eq!(locked.headers()[header::RETRY_AFTER], "5");
        assert_eq!(
            locked.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let down = LoginRefused::Unavailable(Duration::from_secs(2)).into_response();
        assert_eq!(down.status(), 503);
        assert_eq!(down.headers()[header::RETRY_AFTER], "2");
        // Never a Retry-After of 0; a detail that says what failed, not how.
        let soon = LoginRefused::Unavailable(Duration::ZERO).to_problem();
        assert_eq!(soon.headers()[header::RETRY_AFTER], "1");
        assert_eq!(
            soon.detail(),
            Some(
                "login attempts could not be counted (their store is unavailable); retry \
                 after the Retry-After delay"
            )
        );
        assert_eq!(soon.type_uri(), "about:blank");
    }

    /// The in-memory throttle's wait is answered as the Redis one's refusal is, without
    /// feature `redis`: a 429 problem naming `login-failures`, with `Retry-After`.
    #[test]
    fn a_lockout_is_answered_as_the_login_failures_problem() {
        let t = LoginThrottle::new();
        let client = ip("203.0.113.9");
        for _ in 0..6 {
            t.attempt("alice@example.com", client).unwrap().failed();
        }
        let wait = t.attempt("alice@example.com", client).unwrap_err();
        let refused = LoginRefused::LockedOut(wait);
        assert_eq!(refused.retry_after(), wait);
        let problem = refused.to_problem();
        assert_eq!(problem.status(), 429);
        assert_eq!(problem.headers()[http::header::RETRY_AFTER], "1");
        let body = serde_json::to_value(&problem).unwrap();
        assert_eq!(
            body["violated-policies"],
            serde_json::json!(["login-failures"])
        );
        let response = axum::response::IntoResponse::into_response(refused);
        assert_eq!(response.status(), 429);
    }

    #[test]
    fn one_client_cannot_keep_an_account_locked_for_everyone() {
        let t = LoginThrottle::new();
        let (attacker, owner) = (ip("203.0.113.66"), ip("198.51.100.7"));
        let start = Instant::now();
        let (mut attacker_requests, mut owner_tries, mut owner_logins) = (0u32, 0u32, 0u32);
        for second in 0..24 * 3600u64 {
            let now = start + Duration::from_secs(second);
            if let Ok(attempt) = t.attempt_at("victim@example.com", attacker, now) {
                attacker_requests += 1;
                attempt.failed();
            }
            if second >= 3600 && second % 60 == 30 {
                owner_tries += 1;
                if let Ok(attempt) = t.attempt_at("victim@example.com", owner, now) {
                    owner_logins += 1;
                    attempt.succeeded();
                }
            }
        }
        assert!(
            owner_logins > 0,
            "the owner was refused all {owner_tries} times in 23 hours while the attacker sent only {attacker_requests} wrong passwords from one IP in 24 hours"
        );
    }

    /// The account-wide count is the only one a lone client can push the owner's way, and
    /// only at that client's slowed pace: failing as fast as it is let through, one client
    /// does not lock the owner (who never logs in meanwhile) out for 20 hours.
    #[test]
    fn one_client_takes_most_of_a_day_to_reach_the_account_wide_count() {
        let t = LoginThrottle::new();
        let (attacker, owner) = (ip("203.0.113.66"), ip("198.51.100.7"));
        let start = Instant::now();
        let mut attacker_requests = 0u32;
        for second in 0..20 * 3600u64 {
            let now = start + Duration::from_secs(second);
            if let Ok(attempt) = t.attempt_at("victim@example.com", attacker, now) {
                attacker_requests += 1;
                attempt.failed();
            }
            assert!(
                t.check_at("victim@example.com", owner, now).is_ok(),
                "the owner was locked out after {second} s and {attacker_requests} failures"
            );
        }
        assert!(attacker_requests <= 100, "{attacker_requests}");
    }

    /// Five failures from one client lock that client out of the account, and only it: the
    /// owner, from another client, logs in, which does not unlock the guessing client.
    #[test]
    fn five_failures_from_one_client_lock_only_that_client_out_of_the_account() {
        let t = LoginThrottle::new();
        let (guesser, owner) = (ip("203.0.113.66"), ip("198.51.100.7"));
        let now = Instant::now();
        for _ in 0..5 {
            t.attempt_at("alice", guesser, now).unwrap().failed();
        }
        assert!(t.check_at("alice", guesser, now).is_ok(), "5 free");
        t.attempt_at("alice", guesser, now).unwrap().failed();
        assert_eq!(
            t.attempt_at("alice", guesser, now).unwrap_err(),
            Duration::from_secs(1)
        );
        assert!(
            t.check_at("bob", guesser, now).is_ok(),
            "the client itself is not locked out (20 free)"
        );
        t.attempt_at("alice", owner, now).unwrap().succeeded();
        assert!(!tracks_account(&t, "alice") && !tracks_pair(&t, "alice", owner));
        assert!(
            t.check_at("alice", guesser, now).is_err(),
            "the owner's login does not clear the guessing client's count"
        );
    }

    /// Failures spread over many clients, each within its own free ones, lock the account
    /// for every client past the account-wide count (100), and the owner's login, once the
    /// lockout has ended, resets it.
    #[test]
    fn failures_spread_over_clients_lock_the_account_past_the_account_wide_count() {
        let t = LoginThrottle::new();
        let now = Instant::now();
        let elsewhere = ip("198.51.100.7");
        for i in 0..100 {
            t.attempt_at("alice", ip_n(i), now).unwrap().failed();
        }
        assert!(t.check_at("alice", elsewhere, now).is_ok(), "100 free");
        t.attempt_at("alice", ip_n(100), now).unwrap().failed();
        assert_eq!(
            t.attempt_at("alice", elsewhere, now).unwrap_err(),
            Duration::from_secs(1),
            "locked for every client"
        );
        assert!(t.check_at("bob", elsewhere, now).is_ok());
        let later = now + Duration::from_secs(1);
        t.attempt_at("alice", elsewhere, later).unwrap().succeeded();
        assert!(!tracks_account(&t, "alice"), "the success reset the count");
        t.attempt_at("alice", ip_n(101), later).unwrap().failed();
        assert!(t.check_at("alice", elsewhere, later).is_ok());
    }

    /// The account from one client groups clients as the client's own count does.
    #[test]
    fn an_account_from_one_client_groups_the_client_as_its_ip_count_does() {
        let t = LoginThrottle::new().free_attempts(0, 100);
        let now = Instant::now();
        t.failure_at("alice", ip("2001:db8:1:2::1"), now);
        assert!(
            t.check_at("alice", ip("2001:db8:1:2:ffff::3"), now)
                .is_err()
        );
        assert!(t.check_at("alice", ip("2001:db8:1:3::1"), now).is_ok());
        t.failure_at("alice", ip("::ffff:192.0.2.1"), now);
        assert!(t.check_at("alice", ip("192.0.2.1"), now).is_err());
        assert!(t.check_at("alice", ip("192.0.2.2"), now).is_ok());
        assert!(t.check_at("bob", ip("192.0.2.1"), now).is_ok());
    }

    #[test]
    fn the_most_free_attempts_there_are_do_not_overflow() {
        let t = LoginThrottle::new()
            .free_attempts(u32::MAX, u32::MAX)
            .free_attempts_account_wide(u32::MAX);
        let now = Instant::now();
        t.failure_at("alice", ip("10.0.0.1"), now);
        assert!(t.check_at("alice", ip("10.0.0.1"), now).is_ok());
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
        let t = LoginThrottle::new()
            .free_attempts(1, 3)
            .free_attempts_account_wide(1);
        let now = Instant::now();
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        for user in ["u1", "u2", "u3"] {
            t.attempt_at(user, a, now).unwrap().failed();
        }
        // u3 fails again elsewhere: past its account-wide free failure, locked out.
        t.attempt_at("u3", b, now).unwrap().failed();
        assert!(t.check_at("u3", ip("10.0.0.9"), now).is_err());
        // A right password from `a` takes back its own charge only: the IP's three earlier
        // failures stand, and the next one locks it.
        t.attempt_at("u4", a, now).unwrap().succeeded();
        assert!(t.check_at("fresh-user", a, now).is_ok());
        t.attempt_at("u5", a, now).unwrap().failed();
        assert!(
            t.check_at("fresh-user", a, now).is_err(),
            "the IP is locked"
        );
        assert!(t.check_at("other", b, now).is_ok());
        // u3's right password, once its lockout is over, clears its count from all clients
        // and from `b`; its count from `a` is a's own.
        let later = now + Duration::from_secs(2);
        t.attempt_at("u3", b, later).unwrap().succeeded();
        assert!(!tracks_account(&t, "u3") && !tracks_pair(&t, "u3", b));
        assert!(tracks_pair(&t, "u3", a));
        assert!(t.check_at("u3", ip("10.0.0.9"), later).is_ok());
    }

    /// Every attempt is charged when it is let through; `succeeded()` takes the charge back
    /// whole (count, lockout, last failure) unless another attempt from the same client was
    /// charged meanwhile, and then only its own share.
    #[test]
    fn a_successful_attempt_leaves_its_ip_as_it_was() {
        let t = LoginThrottle::new().free_attempts(5, 2);
        let start = Instant::now();
        let a = ip("10.0.0.1");
        // On a fresh client: nothing is left behind.
        t.attempt_at("alice", a, start).unwrap().succeeded();
        assert!(t.entries.lock().unwrap().is_empty());

        // With two earlier failures (the IP's free ones): the same entry as before, not
        // locked by the attempt's own charge (which was the third failure).
        t.attempt_at("mallory", a, start).unwrap().failed();
        t.attempt_at("mallory", a, start).unwrap().failed();
        let before = t.entries.lock().unwrap()[&ip_subject(a)];
        let later = start + Duration::from_secs(60);
        let attempt = t.attempt_at("alice", a, later).unwrap();
        assert!(
            t.check_at("bob", a, later).is_err(),
            "charged: locked meanwhile"
        );
        attempt.succeeded();
        assert_eq!(t.entries.lock().unwrap()[&ip_subject(a)], before);
        assert!(t.check_at("bob", a, later).is_ok());

        // Two attempts in flight from the same IP (both let through before either ended,
        // the second with the IP just past its free failures): the first's success takes
        // back its own charge, the second's stays and still counts.
        let t = LoginThrottle::new().free_attempts(5, 1);
        let first = t.attempt_at("alice", a, start).unwrap();
        assert!(t.check_at("bob", a, start).is_ok());
        let second = t.attempt_at("bob", a, start);
        assert!(
            t.check_at("carol", a, start).is_err(),
            "two charges lock the IP"
        );
        first.succeeded();
        assert_eq!(t.entries.lock().unwrap()[&ip_subject(a)].failures, 1);
        assert!(
            t.check_at("carol", a, start).is_ok(),
            "back to its free one"
        );
        drop(second);
        assert_eq!(
            t.entries.lock().unwrap()[&ip_subject(a)].failures,
            1,
            "a dropped attempt stays a failure"
        );
        assert!(tracks_account(&t, "bob"));
    }

    /// The entries of an attempt's three subjects: the account from `ip`, from all clients,
    /// and the client.
    fn counts(t: &LoginThrottle, account: &str, ip: IpAddr) -> [Option<Entry>; 3] {
        let entries = t.entries.lock().unwrap();
        t.subjects(account, ip)
            .all()
            .map(|s| entries.get(&s).copied())
    }

    /// An attempt whose password was never checked (the hasher was busy) leaves its three
    /// counts as they were, lockouts included, and, unlike a success, clears nothing: the
    /// failures before it stay. Dropped, each such attempt stayed a failure, so six of them
    /// locked the owner's client out of her account with no password of hers checked.
    #[test]
    fn an_attempt_not_checked_leaves_every_count_as_it_was() {
        let t = LoginThrottle::new();
        let (owner, start) = (ip("198.51.100.7"), Instant::now());
        // Nothing before: nothing after.
        t.attempt_at("alice", owner, start).unwrap().not_checked();
        assert!(t.entries.lock().unwrap().is_empty());

        // Four failures before: the same four entries after ten attempts not checked, each
        // of which was charged while it ran (the sixth charge would lock).
        for _ in 0..4 {
            t.attempt_at("alice", owner, start).unwrap().failed();
        }
        let before = counts(&t, "alice", owner);
        let later = start + Duration::from_secs(60);
        for n in 0..10 {
            let attempt = t.attempt_at("alice", owner, later);
            let attempt = attempt.unwrap_or_else(|wait| panic!("attempt {n}: locked for {wait:?}"));
            attempt.not_checked();
            assert_eq!(counts(&t, "alice", owner), before, "after attempt {n}");
        }
        t.attempt_at("alice", owner, later).unwrap().failed();
        assert!(
            t.check_at("alice", owner, later).is_ok(),
            "her fifth failure is within the free ones"
        );

        // The attempt's own charge locked (the sixth failure): taken back, it unlocks.
        let attempt = t.attempt_at("alice", owner, later).unwrap();
        assert!(t.check_at("alice", owner, later).is_err());
        attempt.not_checked();
        assert!(t.check_at("alice", owner, later).is_ok());
    }

    /// Two attempts in flight on one account from one client, the second charged past the
    /// free ones (locking all three counts): the one not checked takes back only its own
    /// share of each, back within the free ones; the other's stays, also once it is dropped.
    #[test]
    fn an_attempt_not_checked_takes_back_only_its_share_when_others_were_charged_meanwhile() {
        let t = LoginThrottle::new()
            .free_attempts(1, 1)
            .free_attempts_account_wide(1);
        let (a, now) = (ip("10.0.0.1"), Instant::now());
        let first = t.attempt_at("alice", a, now).unwrap();
        let second = t.attempt_at("alice", a, now).unwrap();
        assert!(t.check_at("alice", a, now).is_err(), "two charges lock");
        first.not_checked();
        let failures = counts(&t, "alice", a).map(|e| e.map(|e| e.failures));
        assert_eq!(failures, [Some(1); 3], "the second attempt's charges stay");
        assert!(t.check_at("alice", a, now).is_ok(), "back to the free one");
        drop(second);
        assert_eq!(
            counts(&t, "alice", a).map(|e| e.map(|e| e.failures)),
            [Some(1); 3]
        );
    }

    #[test]
    fn capacity_holds_when_every_failure_is_a_new_account_and_ip() {
        let mut t = LoginThrottle::new();
        t.capacity = 10;
        let now = Instant::now();
        for i in 0..200u32 {
            t.failure_at(&format!("user-{i}"), IpAddr::from(i.to_be_bytes()), now);
            let len = t.entries.lock().unwrap().len();
            assert!(len <= 10, "{len} subjects tracked after {i} failures");
        }
        // The newest failures are the ones kept.
        let t = t.free_attempts(0, 0).free_attempts_account_wide(0);
        t.failure_at("user-last", ip("192.0.2.1"), now);
        assert!(t.check_at("user-last", ip("198.51.100.1"), now).is_err());
        assert!(t.check_at("someone", ip("192.0.2.1"), now).is_err());
    }

    #[test]
    fn a_full_table_is_scanned_once_per_batch_not_once_per_failure() {
        let t = small(120);
        let start = Instant::now();
        // 600 failures, each a new account and a new IP: 1800 new subjects (the account, the
        // account from that client, the client), 15 × capacity.
        for i in 0..600u32 {
            let now = start + Duration::from_millis(u64::from(i));
            t.failure_at(&format!("user-{i}"), IpAddr::from(i.to_be_bytes()), now);
            assert!(t.entries.lock().unwrap().len() <= 120);
        }
        // Each pass frees about an eighth (15 subjects, five failures' worth): 112 passes
        // after the first 40 failures fill the table, not one per failure (560).
        let passes = t.eviction_passes.load(Ordering::Relaxed);
        assert!(passes <= 15 * 8 + 5, "{passes} full-table passes");
    }

    /// A throttle holding at most `capacity` subjects.
    fn small(capacity: usize) -> LoginThrottle {
        let mut t = LoginThrottle::new();
        t.capacity = capacity;
        t
    }

    fn tracks_account(t: &LoginThrottle, account: &str) -> bool {
        let subject = t.subjects(account, IpAddr::from([0; 4])).account;
        t.entries.lock().unwrap().contains_key(&subject)
    }

    fn tracks_pair(t: &LoginThrottle, account: &str, ip: IpAddr) -> bool {
        let subject = t.subjects(account, ip).pair;
        t.entries.lock().unwrap().contains_key(&subject)
    }

    fn tracks_ip(t: &LoginThrottle, ip: IpAddr) -> bool {
        t.entries.lock().unwrap().contains_key(&ip_subject(ip))
    }

    fn ip_n(i: u32) -> IpAddr {
        IpAddr::from((0x0a00_0000 + i).to_be_bytes())
    }

    #[test]
    fn a_full_table_drops_its_oldest_subjects_in_one_batch() {
        let t = small(120);
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        // 40 failures fill the table, user-i from 10.0.0.i at second i: three subjects each.
        for i in 0..40u32 {
            t.failure_at(&format!("user-{i}"), ip_n(i), at(u64::from(i)));
        }
        // The oldest three fail again: their last failure is now the most recent.
        t.failure_at("user-0", ip_n(0), at(40));
        assert_eq!(t.entries.lock().unwrap().len(), 120);
        assert_eq!(t.eviction_passes.load(Ordering::Relaxed), 0);

        t.failure_at("newcomer", ip("192.0.2.1"), at(41));
        assert_eq!(t.eviction_passes.load(Ordering::Relaxed), 1);
        // Down to 105 (7/8 of 120) in one pass, then the newcomer's three subjects.
        assert_eq!(t.entries.lock().unwrap().len(), 108);
        let tracks_all = |user: &str, ip: IpAddr| {
            (
                tracks_account(&t, user),
                tracks_pair(&t, user, ip),
                tracks_ip(&t, ip),
            )
        };
        assert_eq!(tracks_all("user-0", ip_n(0)), (true, true, true), "recent");
        for i in 1..=5 {
            let old = tracks_all(&format!("user-{i}"), ip_n(i));
            assert_eq!(
                old,
                (false, false, false),
                "user-{i} from 10.0.0.{i} is old"
            );
        }
        for i in 6..40 {
            let kept = tracks_all(&format!("user-{i}"), ip_n(i));
            assert_eq!(kept, (true, true, true), "user-{i} from 10.0.0.{i}");
        }
        assert_eq!(tracks_all("newcomer", ip("192.0.2.1")), (true, true, true));

        // The next four failures of new subjects fit without another pass.
        for i in 100..104 {
            t.failure_at(&format!("user-{i}"), ip_n(i), at(42));
        }
        assert_eq!(t.entries.lock().unwrap().len(), 120);
        assert_eq!(t.eviction_passes.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_full_table_forgets_its_idle_subjects_before_any_others() {
        let t = small(120);
        let start = Instant::now();
        // 90 subjects from an hour ago, then 30 recent ones.
        for i in 0..30u32 {
            t.failure_at(&format!("old-{i}"), ip_n(i), start);
        }
        for i in 0..10u32 {
            t.failure_at(
                &format!("recent-{i}"),
                ip_n(100 + i),
                start + Duration::from_secs(3000),
            );
        }
        let later = start + Duration::from_secs(3600);
        t.failure_at("newcomer", ip("192.0.2.1"), later);
        assert_eq!(t.eviction_passes.load(Ordering::Relaxed), 1);
        // The idle ones are enough: none of the recent ones is dropped.
        assert_eq!(t.entries.lock().unwrap().len(), 33);
        for i in 0..10 {
            assert!(tracks_account(&t, &format!("recent-{i}")));
            assert!(tracks_pair(&t, &format!("recent-{i}"), ip_n(100 + i)));
        }
        assert!(!tracks_account(&t, "old-0") && !tracks_ip(&t, ip_n(0)));
        assert!(!tracks_pair(&t, "old-0", ip_n(0)));
    }

    #[test]
    fn the_subjects_being_recorded_are_not_evicted_by_their_own_insertion() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let full = |first_account: &str, first_ip: IpAddr| {
            let t = small(24).free_attempts(1, 1).free_attempts_account_wide(1);
            // The first failure's three subjects are the oldest in the table.
            t.failure_at(first_account, first_ip, at(0));
            for i in 1..8u32 {
                t.failure_at(&format!("user-{i}"), ip_n(i), at(1));
            }
            assert_eq!(t.entries.lock().unwrap().len(), 24);
            t
        };

        // The oldest account fails again from a new IP: room is made, not by dropping it.
        let t = full("victim", ip_n(0));
        t.failure_at("victim", ip("192.0.2.1"), at(2));
        assert_eq!(t.eviction_passes.load(Ordering::Relaxed), 1);
        assert_eq!(t.entries.lock().unwrap().len(), 23);
        assert!(
            !tracks_ip(&t, ip_n(0)) && !tracks_pair(&t, "victim", ip_n(0)),
            "the oldest other subjects went"
        );
        assert!(tracks_account(&t, "victim") && tracks_ip(&t, ip("192.0.2.1")));
        assert!(tracks_pair(&t, "victim", ip("192.0.2.1")));
        assert!(
            t.check_at("victim", ip("198.51.100.1"), at(2)).is_err(),
            "the account's second failure counted"
        );

        // The oldest IP fails again for a new account: likewise.
        let t = full("first", ip("192.0.2.1"));
        t.failure_at("second", ip("192.0.2.1"), at(2));
        assert_eq!(t.eviction_passes.load(Ordering::Relaxed), 1);
        assert_eq!(t.entries.lock().unwrap().len(), 23);
        assert!(
            !tracks_account(&t, "first") && !tracks_pair(&t, "first", ip("192.0.2.1")),
            "the oldest other subjects went"
        );
        assert!(tracks_account(&t, "second") && tracks_ip(&t, ip("192.0.2.1")));
        assert!(tracks_pair(&t, "second", ip("192.0.2.1")));
        assert!(
            t.check_at("someone", ip("192.0.2.1"), at(2)).is_err(),
            "the IP's second failure counted"
        );
    }

    /// Both of an account's counts survive a flood: from all clients (with 3 free failures
    /// account-wide) and from one client (with the default 100, only that count locks).
    #[test]
    fn an_account_is_still_locked_out_while_a_flood_evicts_around_it() {
        for account_wide in [3, 100] {
            let t = small(120)
                .free_attempts(3, 1000)
                .free_attempts_account_wide(account_wide);
            let start = Instant::now();
            let mut second = 0;
            let mut next = 0u32;
            for _ in 0..4 {
                // Between each of alice's failures, 30 failures of new accounts from new IPs.
                for _ in 0..30 {
                    second += 1;
                    t.failure_at(
                        &format!("bot-{next}"),
                        ip_n(next),
                        start + Duration::from_secs(second),
                    );
                    next += 1;
                }
                second += 1;
                t.failure_at(
                    "alice",
                    ip("192.0.2.1"),
                    start + Duration::from_secs(second),
                );
            }
            assert!(
                t.eviction_passes.load(Ordering::Relaxed) > 1,
                "the table was full"
            );
            assert!(!tracks_account(&t, "bot-0"), "the oldest went");
            let now = start + Duration::from_secs(second);
            assert!(
                t.check_at("alice", ip("192.0.2.1"), now).is_err(),
                "alice's fourth failure from 192.0.2.1, past three free ones, locked it out"
            );
            assert_eq!(
                t.check_at("alice", ip("198.51.100.1"), now).is_err(),
                account_wide < 4,
                "past {account_wide} account-wide free ones, locked for every client"
            );
            assert!(t.check_at("bob", ip("198.51.100.1"), now).is_ok());
        }
    }

    /// A flood of fresh names used to push the oldest subjects out first, whatever their
    /// counts: an attacker who had run up an account's count (five wrong guesses, locked out)
    /// flushed it with new names from a few IPs and guessed again from nothing. The subjects
    /// least far into their lockouts go first.
    /// Nor an account's count from one client: a client that had been locked out of an
    /// account could flood and guess it again from nothing.
    #[test]
    fn a_flood_of_fresh_names_does_not_flush_an_accounts_count() {
        let start = Instant::now();
        let ms = |n: u64| start + Duration::from_millis(n);
        let flooded = |account_wide: u32| {
            let t = small(80)
                .free_attempts(3, 1000)
                .free_attempts_account_wide(account_wide);
            for _ in 0..5 {
                t.failure_at("alice", ip("192.0.2.1"), start);
            }
            // 200 fresh names from ten IPs, all after alice's failures.
            for i in 0..200u32 {
                t.failure_at(&format!("bot-{i}"), ip_n(i % 10), ms(10_000 + u64::from(i)));
            }
            assert!(t.eviction_passes.load(Ordering::Relaxed) > 1);
            assert!(
                !tracks_account(&t, "bot-0") && !tracks_pair(&t, "bot-0", ip_n(0)),
                "the flood was evicted"
            );
            t
        };
        let later = ms(20_000);

        // The account from all clients (3 free): her sixth failure, from another client, is
        // her third past the free ones: 4 s, not a fresh count.
        let t = flooded(3);
        t.failure_at("alice", ip("198.51.100.1"), later);
        assert_eq!(
            t.check_at("alice", ip("203.0.113.1"), later),
            Err(Duration::from_secs(4))
        );

        // The account from one client (3 free, 100 account-wide): likewise from that client,
        // while another is let through.
        let t = flooded(100);
        t.failure_at("alice", ip("192.0.2.1"), later);
        assert_eq!(
            t.check_at("alice", ip("192.0.2.1"), later),
            Err(Duration::from_secs(4))
        );
        assert!(t.check_at("alice", ip("203.0.113.1"), later).is_ok());
    }

    /// A lockout longer than the hour after which counts are forgotten: a full table used to
    /// drop the account as idle an hour after its last failure, still locked out.
    #[test]
    fn a_full_table_keeps_a_subject_still_locked_out_however_idle() {
        let hour = Duration::from_secs(3600);
        for account_wide in [0, 100] {
            let t = small(8)
                .free_attempts(0, 100)
                .free_attempts_account_wide(account_wide)
                .lockout(2 * hour, 2 * hour)
                .unwrap();
            let start = Instant::now();
            t.failure_at("alice", ip("192.0.2.1"), start);
            t.failure_at("alice", ip("192.0.2.1"), start);
            let later = start + hour + Duration::from_secs(1);
            for i in 0..10u32 {
                t.failure_at(&format!("bot-{i}"), ip_n(i), later);
            }
            assert!(t.eviction_passes.load(Ordering::Relaxed) > 0);
            assert!(
                t.check_at("alice", ip("192.0.2.1"), later).is_err(),
                "still locked out from her client"
            );
            assert_eq!(
                t.check_at("alice", ip("198.51.100.1"), later).is_err(),
                account_wide == 0,
                "still locked out for all clients if that count was past its free ones"
            );
        }
    }

    /// A lockout too long to add to an `Instant` (`lockout(Duration::MAX, …)`: "for good")
    /// panicked under the throttle's lock, which poisoned it: every later attempt, on any
    /// account, was then refused.
    #[test]
    fn a_lockout_past_the_end_of_time_does_not_panic() {
        let t = LoginThrottle::new()
            .free_attempts(0, 100)
            .free_attempts_account_wide(0)
            .lockout(Duration::MAX, Duration::MAX)
            .unwrap();
        let now = Instant::now();
        t.attempt_at("alice", ip("10.0.0.1"), now).unwrap().failed();
        let wait = t.attempt_at("alice", ip("10.0.0.2"), now).unwrap_err();
        assert!(wait > Duration::from_secs(100 * 365 * 86_400), "{wait:?}");
        assert!(t.attempt_at("bob", ip("10.0.0.2"), now).is_ok());
    }

    #[test]
    fn an_ipv6_slash_64_is_one_client() {
        let t = LoginThrottle::new().free_attempts(100, 1);
        let now = Instant::now();
        t.failure_at("a", ip("2001:db8:1:2::1"), now);
        t.failure_at("b", ip("2001:db8:1:2::2"), now);
        assert!(
            t.check_at("c", ip("2001:db8:1:2:ffff::3"), now).is_err(),
            "a new address in the same /64 shares its count"
        );
        assert!(t.check_at("c", ip("2001:db8:1:3::1"), now).is_ok());
    }

    #[test]
    fn an_ipv4_mapped_address_is_its_ipv4_client() {
        let t = LoginThrottle::new().free_attempts(100, 1);
        let now = Instant::now();
        t.failure_at("a", ip("::ffff:192.0.2.1"), now);
        t.failure_at("b", ip("192.0.2.1"), now);
        assert!(t.check_at("c", ip("::ffff:192.0.2.1"), now).is_err());
        assert!(t.check_at("c", ip("::ffff:192.0.2.2"), now).is_ok());
    }

    /// The throttle's `Debug` (and an attempt's, which holds the throttle) printed its whole
    /// table: every client's address with its failures and lockout, up to 100 000 of them,
    /// into whatever log line printed an attempt. It shows the settings and a count.
    #[test]
    fn debug_shows_settings_not_other_clients() {
        let t = LoginThrottle::new();
        for n in 0..50u8 {
            t.attempt("ada@example.com", IpAddr::from([203, 0, 113, n]))
                .unwrap()
                .failed();
        }
        let attempt = t.attempt("bob@example.com", ip("198.51.100.7")).unwrap();
        let (shown, shown_attempt) = (format!("{t:?}"), format!("{attempt:?}"));
        attempt.failed();
        for debug in [&shown, &shown_attempt] {
            assert!(!debug.contains("203.0.113."), "{debug}");
            assert!(debug.len() < 1000, "{} bytes: {debug}", debug.len());
        }
        assert!(shown.contains("tracked: 104"), "{shown}");
    }

    #[test]
    fn long_account_names_are_told_apart_and_normalized() {
        let t = LoginThrottle::new()
            .free_attempts(0, 100)
            .free_attempts_account_wide(0);
        let now = Instant::now();
        let long = "a".repeat(1 << 20);
        t.failure_at(&format!("  {}X ", long.to_uppercase()), ip("10.0.0.1"), now);
        assert!(
            t.check_at(&format!("{long}x"), ip("10.0.0.2"), now)
                .is_err()
        );
        assert!(t.check_at(&format!("{long}y"), ip("10.0.0.2"), now).is_ok());
        let later = now + Duration::from_secs(2);
        t.attempt_at(&format!("{long}x"), ip("10.0.0.2"), later)
            .unwrap()
            .succeeded();
        assert!(!tracks_account(&t, &format!(" {}X", long.to_uppercase())));
    }

    /// N wrong passwords sent at once all passed `check()` before the first `failure()`
    /// was recorded (the password hash runs in between), so the per-account limit admitted
    /// every one of them. At most the free attempts plus the one that locks may be in flight:
    /// from one client (5 free on the account from it), and from many (5 free account-wide).
    #[test]
    fn concurrent_attempts_cannot_outrun_the_account_limit() {
        use std::sync::Barrier;
        use std::sync::atomic::AtomicUsize;

        const ATTEMPTS: usize = 24;
        let admitted = |t: &LoginThrottle, from: &(dyn Fn(usize) -> IpAddr + Sync)| {
            let admitted = AtomicUsize::new(0);
            let (checked, verified) = (Barrier::new(ATTEMPTS), Barrier::new(ATTEMPTS));
            std::thread::scope(|s| {
                for i in 0..ATTEMPTS {
                    let (admitted, checked, verified) = (&admitted, &checked, &verified);
                    s.spawn(move || {
                        checked.wait();
                        let attempt = t.attempt("alice@example.com", from(i));
                        // Every attempt has been let through or refused before any password
                        // check ends: the slowest case for the old check-then-record calls.
                        verified.wait();
                        if let Ok(attempt) = attempt {
                            admitted.fetch_add(1, Ordering::Relaxed);
                            attempt.failed();
                        }
                    });
                }
            });
            admitted.into_inner()
        };
        let one_client = LoginThrottle::new().free_attempts(5, 1000);
        assert_eq!(
            admitted(&one_client, &|_| ip("10.0.0.1")),
            6,
            "from one client: 5 free + the one that locks"
        );
        let many_clients = LoginThrottle::new()
            .free_attempts(1000, 1000)
            .free_attempts_account_wide(5);
        assert_eq!(
            admitted(&many_clients, &|i| IpAddr::from([
                10,
                0,
                0,
                u8::try_from(i).unwrap()
            ])),
            6,
            "from many clients: 5 free account-wide + the one that locks"
        );
    }

    /// Spellings of one account name share its count: case, surrounding spaces, fullwidth
    /// letters (NFKC maps U+FF21… to ASCII), a final sigma (case folding maps ς to σ) and
    /// ß (folds to ss). Each spelling used to be a fresh budget for the same account.
    #[test]
    fn spellings_of_one_account_share_its_count() {
        let now = Instant::now();
        for (first, second) in [
            ("Alice@Example.com", " alice@example.com\t"),
            ("\u{ff21}lice@example.com", "alice@example.com"),
            (
                "\u{ff41}\u{ff4c}\u{ff49}\u{ff43}\u{ff45}\u{ff20}example.com",
                "ALICE@EXAMPLE.COM",
            ),
            ("\u{3000}alice@example.com", "alice@example.com"),
            (
                "\u{39f}\u{394}\u{39f}\u{3a3}",
                "\u{3bf}\u{3b4}\u{3bf}\u{3c3}",
            ),
            ("stra\u{df}e", "STRASSE"),
            ("stra\u{1e9e}e", "strasse"),
        ] {
            // From one client (the account-wide count not locking)…
            let t = LoginThrottle::new().free_attempts(0, 1000);
            t.failure_at(first, ip("10.0.0.1"), now);
            assert!(
                t.check_at(second, ip("10.0.0.1"), now).is_err(),
                "{first:?} and {second:?} are one account from one client"
            );
            assert!(t.check_at(second, ip("10.0.0.2"), now).is_ok());
            assert!(t.check_at("bob", ip("10.0.0.1"), now).is_ok());
            // …and from all clients.
            let t = t.free_attempts_account_wide(0);
            t.failure_at(first, ip("10.0.0.1"), now);
            assert!(
                t.check_at(second, ip("10.0.0.2"), now).is_err(),
                "{first:?} and {second:?} are one account"
            );
            assert!(t.check_at("bob", ip("10.0.0.2"), now).is_ok());
        }
    }

    /// Canonically equivalent names (NFC `é` and NFD `e` + U+0301) and compatibility
    /// variants (`ﬁ`, superscripts) are one account: the key is NFKC-normalised.
    #[test]
    fn canonically_equivalent_names_share_a_count() {
        let now = Instant::now();
        for (first, second) in [
            ("jos\u{e9}@example.com", "jose\u{301}@example.com"),
            ("\u{fb01}nn@example.com", "finn@example.com"),
            ("user\u{b2}@example.com", "user2@example.com"),
        ] {
            let t = LoginThrottle::new()
                .free_attempts(0, 1000)
                .free_attempts_account_wide(0);
            t.failure_at(first, ip("10.0.0.1"), now);
            assert!(
                t.check_at(second, ip("10.0.0.2"), now).is_err(),
                "{first:?} and {second:?} are one account"
            );
        }
    }

    /// Full case folding, beyond lowercase: each name and its case-folded spelling
    /// (Unicode's CaseFolding.txt, statuses C and F) are one account. The combining
    /// ypogegrammeni (U+0345) and the letters with it (`ᾳ`, `ᾼ`) fold to ι, the Cyrillic
    /// rounded ve (U+1C80) to в; lowercase left each of these apart from its folded form,
    /// so the two spellings were two budgets.
    #[test]
    fn every_full_case_folding_is_one_account() {
        let now = Instant::now();
        for (name, folded) in [
            // COMBINING GREEK YPOGEGRAMMENI → ι
            ("\u{3c1}\u{345}", "\u{3c1}\u{3b9}"),
            ("\u{3c1}\u{345}", "\u{3a1}\u{399}"),
            // ᾳ and ᾼ → αι
            ("\u{1fb3}", "\u{3b1}\u{3b9}"),
            ("\u{1fbc}", "\u{3b1}\u{3b9}"),
            ("\u{3b1}\u{345}", "\u{391}\u{399}"),
            // ᾴ → άι
            ("\u{1fb4}", "\u{3ac}\u{3b9}"),
            // CYRILLIC SMALL LETTER ROUNDED VE → в
            ("\u{1c80}", "\u{432}"),
            // ẞ → ss
            ("\u{1e9e}", "ss"),
            // Cherokee small letters fold to the capitals: ꭰ → Ꭰ, ᏸ → Ᏸ
            ("\u{ab70}", "\u{13a0}"),
            ("\u{13f8}", "\u{13f0}"),
            // İ → i + U+0307
            ("\u{130}", "i\u{307}"),
            // ŉ → ʼn
            ("\u{149}", "\u{2bc}n"),
        ] {
            assert_eq!(
                account_key(name),
                account_key(folded),
                "{name:?} and its case folding {folded:?} are one account"
            );
            let t = LoginThrottle::new()
                .free_attempts(0, 1000)
                .free_attempts_account_wide(0);
            t.failure_at(&format!("{name}@example.com"), ip("10.0.0.1"), now);
            assert!(
                t.check_at(&format!("{folded}@example.com"), ip("10.0.0.2"), now)
                    .is_err(),
                "{name:?} and {folded:?} are one account"
            );
        }
        // Folding does not merge what Unicode tells apart.
        assert_ne!(account_key("\u{3b1}\u{3b9}"), account_key("\u{3b1}"));
        assert_ne!(account_key("\u{13a0}"), account_key("\u{13a1}"));
    }

    /// Nothing an account lookup would tell apart is merged: a zero-width space or a soft
    /// hyphen inside a name, an e-mail's `+tag` or dots (one mailbox at some providers, but
    /// not one account name), inner spaces. Merging them would let one account's failures
    /// lock out another.
    #[test]
    fn names_a_lookup_tells_apart_keep_their_own_counts() {
        for (name, other) in [
            ("ali\u{200b}ce@example.com", "alice@example.com"),
            ("ali\u{ad}ce@example.com", "alice@example.com"),
            ("alice+tag@example.com", "alice@example.com"),
            ("a.lice@example.com", "alice@example.com"),
            ("alice smith", "alicesmith"),
        ] {
            assert_ne!(account_key(name), account_key(other), "{name:?}");
        }
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
