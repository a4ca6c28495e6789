//! Token revocation: a denylist consulted after the signature checks out.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// How long past a token's `exp` its revocation is kept: the largest leeway a
/// [`JwtVerifier`](crate::JwtVerifier) may allow, so a revoked token is not accepted again
/// in the leeway window after `exp`.
pub const REVOCATION_GRACE: Duration = Duration::from_secs(300);

/// How many revocations of one subject a [`MemoryDenylist`] keeps one by one by default.
const PER_SUBJECT: usize = 8;

/// An error from a denylist store (a Redis outage, say). Requests fail closed: 503 with
/// `Retry-After: 1`, or the [`DenylistUnavailable::retry_after`] of the error when it is one.
pub type DenylistError = Box<dyn std::error::Error + Send + Sync>;

/// A denylist store's error when it could not be asked: no answer within its timeout, its
/// connection failed, or its circuit breaker keeps requests away (as `RedisDenylist`'s
/// does). Found in a [`DenylistError`] with `downcast_ref`: a token refused for it is
/// answered 503 with `Retry-After` = [`retry_after`](Self::retry_after) (in whole seconds,
/// rounded up, at least 1), not the `1` of any other store error.
///
/// ```
/// use std::time::Duration;
/// use hardening_auth::{DenylistError, DenylistUnavailable};
///
/// let err: DenylistError =
///     DenylistUnavailable::new(Duration::from_secs(2), "redis jti denylist check: timed out")
///         .into();
/// let unavailable = err.downcast_ref::<DenylistUnavailable>().unwrap();
/// assert_eq!(unavailable.retry_after, Duration::from_secs(2));
/// assert_eq!(err.to_string(), "redis jti denylist check: timed out");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
#[non_exhaustive]
pub struct DenylistUnavailable {
    /// When asking again is worth it: the store's circuit-breaker cool-down, say.
    pub retry_after: Duration,
    /// What failed, for the log (never sent to the client).
    pub reason: String,
}

impl DenylistUnavailable {
    /// The store could not be asked because of `reason`; ask again after `retry_after`.
    pub fn new(retry_after: Duration, reason: impl Into<String>) -> Self {
        Self {
            retry_after,
            reason: reason.into(),
        }
    }

    /// When to ask again after `error`: its [`retry_after`](Self::retry_after) when it is a
    /// `DenylistUnavailable`, else a second (a store asked again at the next request).
    pub(crate) fn retry_after_of(error: &DenylistError) -> Duration {
        error
            .downcast_ref::<Self>()
            .map_or(Duration::from_secs(1), |u| u.retry_after)
    }
}

/// [`MemoryDenylist::revoke`](Denylist::revoke)'s error when `capacity` revocations are in
/// force, each the only one of its subject (so none can be merged to make room): the
/// revocation did not take. Found in a [`DenylistError`] with `downcast_ref`, so a caller
/// can tell it from a store outage (and alert on it).
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use hardening_auth::{Denylist, DenylistFull, MemoryDenylist, TokenRef};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let list = MemoryDenylist::new(1);
/// let exp = SystemTime::now() + Duration::from_secs(900);
/// list.revoke(TokenRef::new("token-1", "user-1", None), exp).await.unwrap();
/// let err = list.revoke(TokenRef::new("token-2", "user-2", None), exp).await.unwrap_err();
/// assert_eq!(err.downcast_ref::<DenylistFull>().map(|e| e.capacity), Some(1));
/// # });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the denylist holds {capacity} revocations still in force (its capacity)")]
#[non_exhaustive]
pub struct DenylistFull {
    /// The list's capacity, all of it taken by revocations in force.
    pub capacity: usize,
}

/// A boxed future, so stores can be chosen at run time.
pub type DenylistFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, DenylistError>> + Send + 'a>>;

/// A verified token as a denylist sees it: its `jti` and `sub` (together, the key) and `iat`.
///
/// ```
/// use hardening_auth::TokenRef;
///
/// let claims = serde_json::json!({ "jti": "t-1", "sub": "user-1", "iat": 1_800_000_000 });
/// let token = TokenRef::from_claims(claims.as_object().unwrap()).unwrap();
/// assert_eq!((token.jti, token.subject), ("t-1", "user-1"));
/// assert!(token.issued_at.is_some());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenRef<'a> {
    /// The `jti` claim.
    pub jti: &'a str,
    /// The `sub` claim.
    pub subject: &'a str,
    /// The `iat` claim; `None` when the token has none (or one out of the clock's range).
    pub issued_at: Option<SystemTime>,
}

impl<'a> TokenRef<'a> {
    /// A token with this `jti`, `sub` and `iat`.
    pub fn new(jti: &'a str, subject: &'a str, issued_at: Option<SystemTime>) -> Self {
        Self {
            jti,
            subject,
            issued_at,
        }
    }

    /// From a verified token's claims; `None` unless `jti` and `sub` are strings.
    pub fn from_claims(claims: &'a Map<String, Value>) -> Option<Self> {
        Some(Self {
            jti: claims.get("jti")?.as_str()?,
            subject: claims.get("sub")?.as_str()?,
            issued_at: claims
                .get("iat")
                .and_then(Value::as_f64)
                .and_then(unix_time),
        })
    }
}

/// Unix seconds (fractional or negative too) as a time; `None` out of the clock's range.
pub(crate) fn unix_time(secs: f64) -> Option<SystemTime> {
    let magnitude = Duration::try_from_secs_f64(secs.abs()).ok()?;
    if secs >= 0.0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    }
}

/// Where revoked tokens are kept until they would have expired anyway.
///
/// A store may refuse more than it was told to (a [`MemoryDenylist`] merges one subject's
/// revocations), never less: a revoked token is never accepted again before `expires_at`.
pub trait Denylist: Send + Sync + fmt::Debug + 'static {
    /// Whether this token has been revoked.
    fn is_revoked<'a>(&'a self, token: TokenRef<'a>) -> DenylistFuture<'a, bool>;
    /// Revokes this token until `expires_at` (its `exp`; after that it is refused anyway).
    /// Stores keep it [`REVOCATION_GRACE`] longer, to cover the verifier's leeway.
    fn revoke<'a>(&'a self, token: TokenRef<'a>, expires_at: SystemTime) -> DenylistFuture<'a, ()>;
}

/// An in-memory denylist for one process. Revocations are kept until `exp` +
/// [`REVOCATION_GRACE`]; at most `capacity` are kept, and one still in force is never
/// dropped (that would let a revoked token back in).
///
/// **One subject cannot fill it.** Each subject (`sub`) has at most
/// [`per_subject`](Self::per_subject) revocations listed one by one (default 8). Past that,
/// they collapse into one entry: every token of that subject issued (`iat`) at or before
/// the latest of them is refused until the last of them would have expired (a token without
/// `iat` is then refused too). That refuses more, never less: the subject's other sessions
/// issued by then end as well, while tokens issued later still work. When the list is
/// full, the subject with the most listed revocations is collapsed the same way to make
/// room. Only when `capacity` revocations of as many different subjects are in force does
/// [`revoke`] fail, with [`DenylistFull`] (the caller answers with an error, so a logout is
/// known not to have taken) and an error event that says to raise the capacity.
///
/// A check costs one lookup by `sub` and `jti` and, if that finds nothing, one by `sub`; it
/// allocates nothing. For several instances, use `RedisDenylist` (feature `redis`).
///
/// [`revoke`]: Denylist::revoke
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use hardening_auth::{Denylist, MemoryDenylist, TokenRef};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let list = MemoryDenylist::new(10_000);
/// let token = TokenRef::new("token-1", "user-1", Some(SystemTime::now()));
/// list.revoke(token, SystemTime::now() + Duration::from_secs(900)).await.unwrap();
/// assert!(list.is_revoked(token).await.unwrap());
/// let other = TokenRef::new("token-2", "user-1", Some(SystemTime::now()));
/// assert!(!list.is_revoked(other).await.unwrap());
/// # });
/// ```
pub struct MemoryDenylist {
    state: Mutex<Revoked>,
    capacity: usize,
    per_subject: usize,
}

impl fmt::Debug for MemoryDenylist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let used = self.state.try_lock().map(|s| s.used()).ok();
        f.debug_struct("MemoryDenylist")
            .field("capacity", &self.capacity)
            .field("per_subject", &self.per_subject)
            .field("used", &used)
            .finish()
    }
}

/// A revocation until `until` of tokens issued at or before `issued` (every one when `None`:
/// a token without `iat`). Listed under a `jti`, that is the one token (its own `iat`);
/// merged under a subject, every token of it issued up to the latest merged one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Revocation {
    issued: Option<SystemTime>,
    until: SystemTime,
}

impl Revocation {
    fn covers(&self, issued_at: Option<SystemTime>) -> bool {
        match (self.issued, issued_at) {
            (Some(by), Some(at)) => at <= by,
            // No `iat` on either side: the token may have been issued before the latest.
            _ => true,
        }
    }

    /// Both revocations in one: the later issue time, the later end.
    fn merge(self, other: Self) -> Self {
        Self {
            issued: self.issued.zip(other.issued).map(|(a, b)| a.max(b)),
            until: self.until.max(other.until),
        }
    }
}

/// The revocations. `by_subject` and `collapsed` count against the capacity.
#[derive(Debug, Default)]
struct Revoked {
    /// Each subject's revocations listed one by one, by `jti` (at most `per_subject`, none
    /// empty): a `jti` under its subject, so that two subjects' tokens sharing a `jti` (two
    /// issuers each counting their own) are two entries, and merging one subject's
    /// revocations never takes the other's away. Found by the token's own `sub` and `jti`,
    /// borrowed: a check builds no key.
    by_subject: HashMap<Arc<str>, HashMap<Box<str>, Revocation>>,
    /// How many revocations `by_subject` holds, all subjects together.
    listed_count: usize,
    collapsed: HashMap<Arc<str>, Revocation>,
    /// No revocation ends before this: before then, none can be dropped (so a full list
    /// does not look through itself in vain).
    soonest_end: Option<SystemTime>,
}

impl Revoked {
    fn used(&self) -> usize {
        self.listed_count + self.collapsed.len()
    }

    fn listed(&self, subject: &str) -> usize {
        self.by_subject.get(subject).map_or(0, HashMap::len)
    }

    /// The token's own revocation, if it is listed (in force or not).
    fn listed_of(&self, token: TokenRef<'_>) -> Option<&Revocation> {
        self.by_subject.get(token.subject)?.get(token.jti)
    }

    /// The subject's merged revocation, if one is in force.
    fn collapsed_in_force(&self, subject: &str, now: SystemTime) -> Option<Revocation> {
        self.collapsed
            .get(subject)
            .copied()
            .filter(|c| c.until > now)
    }

    fn is_revoked(&self, token: TokenRef<'_>, now: SystemTime) -> bool {
        self.listed_of(token).is_some_and(|l| l.until > now)
            || self
                .collapsed_in_force(token.subject, now)
                .is_some_and(|c| c.covers(token.issued_at))
    }

    /// Revokes `token` until `end`; see [`MemoryDenylist`] for what happens when the subject
    /// or the list is full.
    fn revoke(
        &mut self,
        token: TokenRef<'_>,
        end: SystemTime,
        now: SystemTime,
        capacity: usize,
        per_subject: usize,
    ) -> Result<(), DenylistFull> {
        if end <= now {
            return Ok(()); // Past exp and any leeway: the verifier refuses it anyway.
        }
        if let Some(listed) = self
            .by_subject
            .get_mut(token.subject)
            .and_then(|jtis| jtis.get_mut(token.jti))
        {
            listed.until = listed.until.max(end);
            return Ok(());
        }
        let this = Revocation {
            issued: token.issued_at,
            until: end,
        };
        if let Some(merged) = self.collapsed.get_mut(token.subject)
            && merged.until > now
            && merged.covers(token.issued_at)
        {
            merged.until = merged.until.max(end);
            return Ok(());
        }
        if self.listed(token.subject) >= per_subject {
            self.drop_ended_of(token.subject, now);
            if self.listed(token.subject) >= per_subject {
                self.collapse(token.subject, Some(this), now);
                return Ok(());
            }
        }
        if self.used() >= capacity {
            self.drop_ended(now);
        }
        if self.used() >= capacity {
            match self.to_collapse(token.subject, now) {
                None => return Err(DenylistFull { capacity }),
                Some(None) => {
                    self.collapse(token.subject, Some(this), now);
                    return Ok(());
                }
                Some(Some(other)) => self.collapse(&other, None, now),
            }
        }
        let jti = Box::from(token.jti);
        match self.by_subject.get_mut(token.subject) {
            Some(jtis) => {
                jtis.insert(jti, this);
            }
            None => {
                let jtis = HashMap::from([(jti, this)]);
                self.by_subject.insert(Arc::from(token.subject), jtis);
            }
        }
        self.listed_count += 1;
        self.ends_by(end);
        Ok(())
    }

    fn ends_by(&mut self, end: SystemTime) {
        self.soonest_end = Some(self.soonest_end.map_or(end, |s| s.min(end)));
    }

    /// In a full list, whose revocations to merge to make room: `Some(None)` for `subject`'s
    /// own together with the new one, `Some(Some(other))` for another subject's, `None`
    /// when no merge frees room. The subject merging the most wins (`subject` on a tie).
    fn to_collapse(&self, subject: &str, now: SystemTime) -> Option<Option<Arc<str>>> {
        let has_merged = |s: &str| usize::from(self.collapsed_in_force(s, now).is_some());
        // Merging its own with the new one frees what its entries take beyond one.
        let own = self.listed(subject) + has_merged(subject);
        let other = self
            .by_subject
            .iter()
            .filter(|(s, _)| s.as_ref() != subject)
            .map(|(s, jtis)| (s, (jtis.len() + has_merged(s)).saturating_sub(1)))
            .max_by_key(|(_, frees)| *frees);
        match other {
            Some((other, frees)) if frees > own && frees > 0 => Some(Some(other.clone())),
            _ if own > 0 => Some(None),
            _ => None,
        }
    }

    /// Merges `subject`'s listed revocations (and `extra`) into its one entry.
    fn collapse(&mut self, subject: &str, extra: Option<Revocation>, now: SystemTime) {
        let (key, jtis) = self
            .by_subject
            .remove_entry(subject)
            .unwrap_or_else(|| (Arc::from(subject), HashMap::new()));
        self.listed_count -= jtis.len();
        let mut merged = self.collapsed_in_force(subject, now);
        let mut add = |c: Revocation| merged = Some(merged.map_or(c, |m| m.merge(c)));
        if let Some(extra) = extra {
            add(extra);
        }
        for &listed in jtis.values() {
            if listed.until > now {
                add(listed);
            }
        }
        let Some(merged) = merged else {
            self.collapsed.remove(subject);
            return;
        };
        self.ends_by(merged.until);
        match self.collapsed.get_mut(subject) {
            Some(entry) => *entry = merged,
            None => {
                self.collapsed.insert(key, merged);
            }
        }
        tracing::info!(
            target: crate::AUTH_TARGET,
            subject,
            merged = jtis.len() + usize::from(extra.is_some()),
            "token revocations merged: this subject's tokens issued up to its latest revoked \
             one are refused until the last of them expires"
        );
    }

    /// Drops `subject`'s listed revocations that have ended.
    fn drop_ended_of(&mut self, subject: &str, now: SystemTime) {
        let Some(jtis) = self.by_subject.get_mut(subject) else {
            return;
        };
        let before = jtis.len();
        jtis.retain(|_, l| l.until > now);
        self.listed_count -= before - jtis.len();
        if jtis.is_empty() {
            self.by_subject.remove(subject);
        }
    }

    /// Drops the revocations that have ended, if any has.
    fn drop_ended(&mut self, now: SystemTime) {
        if self.soonest_end.is_none_or(|end| end > now) {
            return;
        }
        self.by_subject.retain(|_, jtis| {
            jtis.retain(|_, l| l.until > now);
            !jtis.is_empty()
        });
        self.listed_count = self.by_subject.values().map(HashMap::len).sum();
        self.collapsed.retain(|_, c| c.until > now);
        self.soonest_end = self
            .by_subject
            .values()
            .flat_map(HashMap::values)
            .chain(self.collapsed.values())
            .map(|r| r.until)
            .min();
    }
}

impl MemoryDenylist {
    /// Keeps at most `capacity` revocations (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(Revoked::default()),
            capacity: capacity.max(1),
            per_subject: PER_SUBJECT,
        }
    }

    /// How many revocations of one subject are listed one by one before they are merged
    /// (default 8, at least 1). Lower wastes less room on one subject; higher ends fewer of
    /// its other sessions early.
    #[must_use]
    pub fn per_subject(mut self, limit: usize) -> Self {
        self.per_subject = limit.max(1);
        self
    }
}

impl Denylist for MemoryDenylist {
    fn is_revoked<'a>(&'a self, token: TokenRef<'a>) -> DenylistFuture<'a, bool> {
        Box::pin(async move {
            let state = self.state.lock().map_err(|_| "denylist lock poisoned")?;
            Ok(state.is_revoked(token, SystemTime::now()))
        })
    }

    fn revoke<'a>(&'a self, token: TokenRef<'a>, expires_at: SystemTime) -> DenylistFuture<'a, ()> {
        Box::pin(async move {
            // An `exp` so far off that the grace overflows the clock: kept until then anyway.
            let end = expires_at
                .checked_add(REVOCATION_GRACE)
                .unwrap_or(expires_at);
            let mut state = self.state.lock().map_err(|_| "denylist lock poisoned")?;
            let revoked = state.revoke(
                token,
                end,
                SystemTime::now(),
                self.capacity,
                self.per_subject,
            );
            revoked.map_err(|full| {
                tracing::error!(
                    target: crate::AUTH_TARGET,
                    capacity = self.capacity,
                    "token revocation refused: the in-memory denylist is full of revocations \
                     still in force, each of a different subject; raise MemoryDenylist::new's \
                     capacity or use RedisDenylist"
                );
                full.into()
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// A token of `subject` issued `iat` seconds after the epoch.
    fn tok<'a>(jti: &'a str, subject: &'a str, iat: u64) -> TokenRef<'a> {
        TokenRef::new(jti, subject, Some(UNIX_EPOCH + Duration::from_secs(iat)))
    }

    /// How many revocations are listed one by one (and the count kept agrees).
    fn listed(list: &Revoked) -> usize {
        let counted = list.by_subject.values().map(HashMap::len).sum();
        assert_eq!(list.listed_count, counted, "the count kept is off");
        assert!(list.by_subject.values().all(|jtis| !jtis.is_empty()));
        counted
    }

    /// [`Revoked::used`], checking the count it reads.
    fn used(list: &Revoked) -> usize {
        assert_eq!(list.used(), listed(list) + list.collapsed.len());
        list.used()
    }

    #[test]
    fn revocations_outlive_exp_by_the_largest_leeway() {
        block_on(async {
            let list = MemoryDenylist::new(10);
            // exp a minute ago: a verifier with 5 minutes of leeway still accepts it.
            let exp = SystemTime::now() - Duration::from_secs(60);
            let late = TokenRef::new("late", "user-1", None);
            list.revoke(late, exp).await.unwrap();
            assert!(list.is_revoked(late).await.unwrap());
            let long_gone = SystemTime::now() - REVOCATION_GRACE - Duration::from_secs(1);
            let gone = TokenRef::new("gone", "user-2", None);
            list.revoke(gone, long_gone).await.unwrap();
            assert!(!list.is_revoked(gone).await.unwrap());
        });
    }

    #[test]
    fn a_full_list_refuses_a_new_revocation_instead_of_dropping_one_in_force() {
        block_on(async {
            let list = MemoryDenylist::new(2);
            let exp = SystemTime::now() + Duration::from_secs(900);
            let (a, b) = (tok("a", "user-a", 1), tok("b", "user-b", 1));
            list.revoke(a, exp).await.unwrap();
            list.revoke(b, exp + Duration::from_secs(60)).await.unwrap();
            // Each revocation in force is the only one of its subject: nothing to merge.
            let c = tok("c", "user-c", 1);
            let err = list.revoke(c, exp).await.unwrap_err();
            assert!(err.to_string().contains("capacity"), "{err}");
            assert_eq!(
                err.downcast_ref::<DenylistFull>(),
                Some(&DenylistFull { capacity: 2 })
            );
            for token in [a, b] {
                assert!(list.is_revoked(token).await.unwrap(), "{token:?}");
            }
            assert!(!list.is_revoked(c).await.unwrap());
            // Revoking one already listed takes no room (and keeps the later end).
            list.revoke(a, exp - Duration::from_secs(600))
                .await
                .unwrap();
            assert!(list.is_revoked(a).await.unwrap());
        });
    }

    /// Two subjects' tokens with one `jti` (two issuers each counting their own) shared one
    /// entry, which merging the first subject's revocations took away: the second's revoked
    /// token was accepted again.
    #[test]
    fn merging_one_subject_never_unrevokes_another_subjects_token() {
        block_on(async {
            let list = MemoryDenylist::new(100).per_subject(1);
            let exp = SystemTime::now() + Duration::from_secs(900);
            let (alice, bob) = (tok("t-1", "alice", 100), tok("t-1", "bob", 200));
            list.revoke(alice, exp).await.unwrap();
            list.revoke(bob, exp).await.unwrap();
            assert!(list.is_revoked(bob).await.unwrap());
            // Alice logs out of another session: her revocations merge into one entry.
            list.revoke(tok("t-2", "alice", 150), exp).await.unwrap();
            assert!(list.is_revoked(alice).await.unwrap());
            assert!(
                list.is_revoked(bob).await.unwrap(),
                "bob's token accepted again"
            );
            // And a `jti` revoked for one subject is not revoked for another.
            assert!(!list.is_revoked(tok("t-1", "carol", 100)).await.unwrap());
            // Nor another pair that subject and `jti` written one after the other would give.
            list.revoke(tok("bc", "a", 100), exp).await.unwrap();
            assert!(!list.is_revoked(tok("c", "ab", 100)).await.unwrap());
        });
    }

    #[test]
    fn a_full_list_makes_room_from_revocations_that_have_ended() {
        block_on(async {
            let list = MemoryDenylist::new(2);
            let ended = SystemTime::now() - REVOCATION_GRACE - Duration::from_secs(1);
            let now = SystemTime::now();
            // Stored directly: `revoke` does not store what has ended.
            {
                let mut state = list.state.lock().unwrap();
                let old = Revocation {
                    issued: None,
                    until: ended,
                };
                let jtis = HashMap::from([("old".into(), old)]);
                state.by_subject.insert("user-old".into(), jtis);
                state.listed_count += 1;
                state.ends_by(ended);
            }
            let exp = now + Duration::from_secs(900);
            let (a, b) = (tok("a", "user-a", 1), tok("b", "user-b", 1));
            list.revoke(a, exp).await.unwrap();
            list.revoke(b, exp).await.unwrap();
            assert!(list.is_revoked(a).await.unwrap());
            assert!(list.is_revoked(b).await.unwrap());
            assert_eq!(used(&list.state.lock().unwrap()), 2);
            let c = tok("c", "user-c", 1);
            assert!(list.revoke(c, exp).await.is_err(), "both in force now");
        });
    }

    #[test]
    fn an_expiry_at_the_end_of_time_does_not_panic() {
        block_on(async {
            let list = MemoryDenylist::new(2);
            // The last second this platform's clock can hold: the grace cannot be added.
            let far = SystemTime::UNIX_EPOCH
                .checked_add(Duration::from_secs(i64::MAX as u64))
                .expect("a 64-bit clock holds i64::MAX seconds past the epoch");
            assert!(far.checked_add(REVOCATION_GRACE).is_none());
            let token = TokenRef::new("far", "user-1", Some(far));
            list.revoke(token, far).await.unwrap();
            assert!(list.is_revoked(token).await.unwrap());
        });
    }

    /// One account logging in and out in a loop (the login throttle counts only failures)
    /// filled the list: every later revocation, anyone's, failed with `DenylistFull` until
    /// entries expired, so nobody could log out. Its revocations now merge past
    /// `per_subject`: the loop takes a few entries, every token it revoked stays revoked,
    /// and others can still log out.
    #[test]
    fn one_subject_logging_in_and_out_cannot_fill_the_list() {
        block_on(async {
            let list = MemoryDenylist::new(100);
            let now = SystemTime::now();
            let unix = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
            let exp = now + Duration::from_secs(900);
            let jtis: Vec<String> = (0..1_000).map(|n| format!("loop-{n}")).collect();
            // One login a second, each logged out at once.
            let first = unix - 1_000;
            for (n, jti) in jtis.iter().enumerate() {
                let token = tok(jti, "mallory", first + n as u64);
                list.revoke(token, exp)
                    .await
                    .unwrap_or_else(|e| panic!("{jti}: {e}"));
            }
            for (n, jti) in jtis.iter().enumerate() {
                let token = tok(jti, "mallory", first + n as u64);
                assert!(list.is_revoked(token).await.unwrap(), "{jti} valid again");
            }
            let used = used(&list.state.lock().unwrap());
            assert!(used <= PER_SUBJECT, "one subject takes {used} entries");
            // A session it opens afterwards works.
            let fresh = tok("fresh", "mallory", unix);
            assert!(!list.is_revoked(fresh).await.unwrap());
            // Others log out as before, and only their revoked token is refused.
            let alice = tok("alice-1", "alice", first);
            list.revoke(alice, exp).await.unwrap();
            assert!(list.is_revoked(alice).await.unwrap());
            assert!(
                !list
                    .is_revoked(tok("alice-2", "alice", first))
                    .await
                    .unwrap()
            );
        });
    }

    /// A subject's merged revocations refuse every token they stood for until the last of
    /// them ends, and its tokens issued up to the latest of them (fail-safe: more, never
    /// less), a token without `iat` too; not its later tokens, nor other subjects'.
    #[test]
    fn merged_revocations_refuse_more_never_less() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let secs = Duration::from_secs;
        let mut list = Revoked::default();
        let revoke = |list: &mut Revoked, token, end| list.revoke(token, end, now, 100, 2);
        revoke(&mut list, tok("t1", "u", 1_000), now + secs(100)).unwrap();
        revoke(&mut list, tok("t2", "u", 1_200), now + secs(50)).unwrap();
        assert_eq!(listed(&list), 2);
        // The third merges all three: iat up to 1 100 (the latest listed is 1 200).
        revoke(&mut list, tok("t3", "u", 1_100), now + secs(10)).unwrap();
        assert_eq!((listed(&list), list.collapsed.len()), (0, 1));
        assert_eq!(
            list.collapsed["u"],
            Revocation {
                issued: Some(UNIX_EPOCH + secs(1_200)),
                until: now + secs(100),
            }
        );
        let at = |s| now + secs(s);
        for (token, when, revoked) in [
            (tok("t1", "u", 1_000), at(99), true),
            (tok("t2", "u", 1_200), at(99), true),
            (tok("t3", "u", 1_100), at(99), true),
            // Never revoked, issued before the latest revoked one: refused too.
            (tok("other", "u", 1_150), at(0), true),
            (TokenRef::new("no-iat", "u", None), at(0), true),
            // Issued later: works.
            (tok("later", "u", 1_201), at(0), false),
            // Another subject's tokens, of any age: work.
            (tok("t1-of-v", "v", 1_000), at(0), false),
            // Once the last revocation merged has ended, nothing is refused.
            (tok("t1", "u", 1_000), at(100), false),
        ] {
            assert_eq!(
                list.is_revoked(token, when),
                revoked,
                "{token:?} at {when:?}"
            );
        }
        // A token it covers revoked again costs nothing and extends the end.
        revoke(&mut list, tok("t4", "u", 1_150), now + secs(500)).unwrap();
        assert_eq!(used(&list), 1);
        assert!(list.is_revoked(tok("t1", "u", 1_000), at(499)));
        // A later one is listed; past the limit again, it all merges into the same entry.
        revoke(&mut list, tok("t5", "u", 2_000), now + secs(20)).unwrap();
        revoke(&mut list, tok("t6", "u", 3_000), now + secs(20)).unwrap();
        assert_eq!(used(&list), 3);
        revoke(&mut list, tok("t7", "u", 2_500), now + secs(20)).unwrap();
        assert_eq!(used(&list), 1);
        assert_eq!(list.collapsed["u"].issued, Some(UNIX_EPOCH + secs(3_000)));
        // A merged token without `iat`: every token of the subject, until the end.
        let mut list = Revoked::default();
        revoke(&mut list, TokenRef::new("a", "w", None), now + secs(9)).unwrap();
        revoke(&mut list, tok("b", "w", 1), now + secs(9)).unwrap();
        revoke(&mut list, tok("c", "w", 2), now + secs(9)).unwrap();
        assert_eq!(list.collapsed["w"].issued, None);
        assert!(list.is_revoked(tok("new", "w", u64::MAX >> 30), at(8)));
    }

    /// A full list merges the revocations of the subject with the most to make room:
    /// many accounts just under the per-subject limit cannot fill it either. It fails only
    /// when every revocation in force is the only one of its subject.
    #[test]
    fn a_full_list_merges_the_subject_with_the_most_revocations() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let end = now + Duration::from_secs(900);
        let mut list = Revoked::default();
        let revoke = |list: &mut Revoked, jti: &str, subject: &str, iat| {
            list.revoke(tok(jti, subject, iat), end, now, 10, 8)
        };
        for n in 0..7 {
            revoke(&mut list, &format!("m-{n}"), "mallory", n).unwrap();
        }
        for (n, subject) in ["u1", "u2", "u3"].into_iter().enumerate() {
            revoke(&mut list, subject, subject, n as u64).unwrap();
        }
        assert_eq!(used(&list), 10);
        revoke(&mut list, "v", "victor", 5).unwrap();
        assert_eq!(used(&list), 5, "mallory's 7 merged into 1, victor's listed");
        assert!(list.collapsed.contains_key("mallory"));
        for n in 0..7 {
            assert!(list.is_revoked(tok(&format!("m-{n}"), "mallory", n), now));
        }
        for subject in ["u1", "u2", "u3", "victor"] {
            assert!(!list.collapsed.contains_key(subject), "{subject} merged");
        }
        // The revoking subject's own merge, when it frees the most.
        for n in 0..5 {
            revoke(&mut list, &format!("u1-{n}"), "u1", 10 + n).unwrap();
        }
        assert_eq!(used(&list), 10);
        revoke(&mut list, "u1-last", "u1", 20).unwrap();
        assert!(list.collapsed.contains_key("u1"));
        assert!(list.is_revoked(tok("u1-last", "u1", 20), now));
        assert!(list.is_revoked(tok("u1", "u1", 0), now));
        // Ten subjects, one revocation each: full.
        let mut list = Revoked::default();
        for n in 0..10 {
            let subject = format!("s{n}");
            list.revoke(tok(&subject, &subject, 1), end, now, 10, 8)
                .unwrap();
        }
        assert_eq!(
            list.revoke(tok("x", "s10", 1), end, now, 10, 8),
            Err(DenylistFull { capacity: 10 })
        );
        // One of them revoking another token merges its own two into one entry.
        list.revoke(tok("y", "s3", 2), end, now, 10, 8).unwrap();
        assert_eq!(used(&list), 10);
        assert!(list.is_revoked(tok("y", "s3", 2), now));
        assert!(list.is_revoked(tok("s3", "s3", 1), now));
    }

    /// Revocations of a subject at its limit that have ended make room before anything
    /// is merged (no session ends early for nothing).
    #[test]
    fn a_subject_at_its_limit_first_drops_its_ended_revocations() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let secs = Duration::from_secs;
        let mut list = Revoked::default();
        list.revoke(tok("a", "u", 1), now + secs(10), now, 100, 2)
            .unwrap();
        list.revoke(tok("b", "u", 2), now + secs(1_000), now, 100, 2)
            .unwrap();
        let later = now + secs(20);
        list.revoke(tok("c", "u", 3), now + secs(1_000), later, 100, 2)
            .unwrap();
        assert!(list.collapsed.is_empty());
        assert_eq!(listed(&list), 2);
        assert!(!list.is_revoked(tok("a", "u", 1), later));
        assert!(list.is_revoked(tok("b", "u", 2), later));
        assert!(list.is_revoked(tok("c", "u", 3), later));
    }

    #[test]
    fn token_refs_read_the_claims_verified_tokens_carry() {
        let claims = |v: Value| v.as_object().unwrap().clone();
        let c = claims(serde_json::json!({ "jti": "j", "sub": "s", "iat": 1.5 }));
        let t = TokenRef::from_claims(&c).unwrap();
        assert_eq!(
            t,
            TokenRef::new("j", "s", Some(UNIX_EPOCH + Duration::from_millis(1_500)))
        );
        let c = claims(serde_json::json!({ "jti": "j", "sub": "s", "iat": -2 }));
        assert_eq!(
            TokenRef::from_claims(&c).unwrap().issued_at,
            UNIX_EPOCH.checked_sub(Duration::from_secs(2))
        );
        for odd in [
            serde_json::json!(1e300),
            serde_json::json!(-1e300),
            serde_json::json!("1"),
        ] {
            let c = claims(serde_json::json!({ "jti": "j", "sub": "s", "iat": odd }));
            assert_eq!(TokenRef::from_claims(&c).unwrap().issued_at, None, "{odd}");
        }
        for missing in [
            serde_json::json!({ "sub": "s" }),
            serde_json::json!({ "jti": "j" }),
            serde_json::json!({ "jti": 1, "sub": "s" }),
        ] {
            assert_eq!(
                TokenRef::from_claims(&claims(missing.clone())),
                None,
                "{missing}"
            );
        }
    }
}
