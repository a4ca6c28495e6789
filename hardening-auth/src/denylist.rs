//! Token revocation: a `jti` denylist consulted after the signature checks out.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// How long past a token's `exp` its revocation is kept: the largest leeway a
/// [`JwtVerifier`](crate::JwtVerifier) may allow, so a revoked token is not accepted again
/// in the leeway window after `exp`.
pub const REVOCATION_GRACE: Duration = Duration::from_secs(300);

/// An error from a denylist store (a Redis outage, say). Requests fail closed: 503.
pub type DenylistError = Box<dyn std::error::Error + Send + Sync>;

/// [`MemoryDenylist::revoke`](Denylist::revoke)'s error when `capacity` revocations are in
/// force: the revocation did not take. Found in a [`DenylistError`] with `downcast_ref`, so
/// a caller can tell it from a store outage (and alert on it).
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use hardening_auth::{Denylist, DenylistFull, MemoryDenylist};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let list = MemoryDenylist::new(1);
/// let exp = SystemTime::now() + Duration::from_secs(900);
/// list.revoke("token-1", exp).await.unwrap();
/// let err = list.revoke("token-2", exp).await.unwrap_err();
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

/// Where revoked token ids (`jti`) are kept until the tokens would have expired anyway.
pub trait Denylist: Send + Sync + fmt::Debug + 'static {
    /// Whether this token id has been revoked.
    fn is_revoked<'a>(&'a self, jti: &'a str) -> DenylistFuture<'a, bool>;
    /// Revokes this token id until `expires_at` (its `exp`; after that it is refused anyway).
    /// Stores keep the id [`REVOCATION_GRACE`] longer, to cover the verifier's leeway.
    fn revoke<'a>(&'a self, jti: &'a str, expires_at: SystemTime) -> DenylistFuture<'a, ()>;
}

/// An in-memory denylist for one process: entries are kept until `exp` +
/// [`REVOCATION_GRACE`], and expired ones are dropped to make room. At most `capacity` ids
/// are kept, and a revocation still in force is never dropped for a new one (that would let
/// a revoked token back in): when `capacity` revocations are in force, [`revoke`] fails
/// with [`DenylistFull`] (the caller answers with an error, so a logout is known not to have
/// taken) and an error event says to raise the capacity. For several instances,
/// or more revocations than one process should hold, use `RedisDenylist` (feature `redis`).
///
/// [`revoke`]: Denylist::revoke
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use hardening_auth::{Denylist, MemoryDenylist};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let list = MemoryDenylist::new(10_000);
/// list.revoke("token-1", SystemTime::now() + Duration::from_secs(900)).await.unwrap();
/// assert!(list.is_revoked("token-1").await.unwrap());
/// assert!(!list.is_revoked("token-2").await.unwrap());
/// # });
/// ```
#[derive(Debug)]
pub struct MemoryDenylist {
    ids: Mutex<Revoked>,
    capacity: usize,
}

/// The revoked ids, each with the time its revocation ends.
#[derive(Debug, Default)]
struct Revoked {
    until: HashMap<String, SystemTime>,
    /// When the first revocation ends: before then, none can be dropped (so a full list
    /// refuses a new one without looking through it).
    soonest_end: Option<SystemTime>,
}

impl Revoked {
    /// Drops the revocations that have ended, if any has.
    fn drop_ended(&mut self, now: SystemTime) {
        if self.soonest_end.is_some_and(|end| end <= now) {
            self.until.retain(|_, until| *until > now);
            self.soonest_end = self.until.values().min().copied();
        }
    }
}

impl MemoryDenylist {
    /// Keeps at most `capacity` revoked ids.
    pub fn new(capacity: usize) -> Self {
        Self {
            ids: Mutex::new(Revoked::default()),
            capacity: capacity.max(1),
        }
    }
}

impl Denylist for MemoryDenylist {
    fn is_revoked<'a>(&'a self, jti: &'a str) -> DenylistFuture<'a, bool> {
        Box::pin(async move {
            let ids = self.ids.lock().map_err(|_| "denylist lock poisoned")?;
            Ok(ids
                .until
                .get(jti)
                .is_some_and(|until| *until > SystemTime::now()))
        })
    }

    fn revoke<'a>(&'a self, jti: &'a str, expires_at: SystemTime) -> DenylistFuture<'a, ()> {
        Box::pin(async move {
            // An `exp` so far off that the grace overflows the clock: kept until then anyway.
            let end = expires_at
                .checked_add(REVOCATION_GRACE)
                .unwrap_or(expires_at);
            let mut ids = self.ids.lock().map_err(|_| "denylist lock poisoned")?;
            if let Some(until) = ids.until.get_mut(jti) {
                *until = (*until).max(end);
                return Ok(());
            }
            if ids.until.len() >= self.capacity {
                ids.drop_ended(SystemTime::now());
            }
            if ids.until.len() >= self.capacity {
                tracing::error!(
                    target: crate::AUTH_TARGET,
                    capacity = self.capacity,
                    "token revocation refused: the in-memory denylist is full of revocations \
                     still in force; raise MemoryDenylist::new's capacity or use RedisDenylist"
                );
                return Err(DenylistFull {
                    capacity: self.capacity,
                }
                .into());
            }
            ids.until.insert(jti.to_owned(), end);
            ids.soonest_end = Some(ids.soonest_end.map_or(end, |s| s.min(end)));
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocations_outlive_exp_by_the_largest_leeway() {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(async {
                let list = MemoryDenylist::new(10);
                // exp a minute ago: a verifier with 5 minutes of leeway still accepts it.
                let exp = SystemTime::now() - Duration::from_secs(60);
                list.revoke("late", exp).await.unwrap();
                assert!(list.is_revoked("late").await.unwrap());
                let long_gone = SystemTime::now() - REVOCATION_GRACE - Duration::from_secs(1);
                list.revoke("gone", long_gone).await.unwrap();
                assert!(!list.is_revoked("gone").await.unwrap());
            });
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_full_list_refuses_a_new_revocation_instead_of_dropping_one_in_force() {
        block_on(async {
            let list = MemoryDenylist::new(2);
            let exp = SystemTime::now() + Duration::from_secs(900);
            list.revoke("a", exp).await.unwrap();
            list.revoke("b", exp + Duration::from_secs(60))
                .await
                .unwrap();
            let err = list.revoke("c", exp).await.unwrap_err();
            assert!(err.to_string().contains("capacity"), "{err}");
            assert_eq!(
                err.downcast_ref::<DenylistFull>(),
                Some(&DenylistFull { capacity: 2 })
            );
            for id in ["a", "b"] {
                assert!(list.is_revoked(id).await.unwrap(), "{id} must stay revoked");
            }
            assert!(!list.is_revoked("c").await.unwrap());
            // Revoking one already listed takes no room (and keeps the later end).
            list.revoke("a", exp - Duration::from_secs(600))
                .await
                .unwrap();
            assert!(list.is_revoked("a").await.unwrap());
        });
    }

    #[test]
    fn a_full_list_makes_room_from_revocations_that_have_ended() {
        block_on(async {
            let list = MemoryDenylist::new(2);
            let ended = SystemTime::now() - REVOCATION_GRACE - Duration::from_secs(1);
            list.revoke("old", ended).await.unwrap();
            let exp = SystemTime::now() + Duration::from_secs(900);
            list.revoke("a", exp).await.unwrap();
            list.revoke("b", exp).await.unwrap();
            assert!(list.is_revoked("a").await.unwrap());
            assert!(list.is_revoked("b").await.unwrap());
            assert!(list.revoke("c", exp).await.is_err(), "both in force now");
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
            list.revoke("far", far).await.unwrap();
            assert!(list.is_revoked("far").await.unwrap());
        });
    }
}
