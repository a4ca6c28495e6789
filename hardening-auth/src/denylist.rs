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
/// [`REVOCATION_GRACE`], expired ones are dropped as new ones arrive, and at most `capacity`
/// ids are kept (the soonest-expiring goes first when full). For several instances, use
/// `RedisDenylist` (feature `redis`).
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
    ids: Mutex<HashMap<String, SystemTime>>,
    capacity: usize,
}

impl MemoryDenylist {
    /// Keeps at most `capacity` revoked ids.
    pub fn new(capacity: usize) -> Self {
        Self {
            ids: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }
}

impl Denylist for MemoryDenylist {
    fn is_revoked<'a>(&'a self, jti: &'a str) -> DenylistFuture<'a, bool> {
        Box::pin(async move {
            let ids = self.ids.lock().map_err(|_| "denylist lock poisoned")?;
            Ok(ids.get(jti).is_some_and(|until| *until > SystemTime::now()))
        })
    }

    fn revoke<'a>(&'a self, jti: &'a str, expires_at: SystemTime) -> DenylistFuture<'a, ()> {
        Box::pin(async move {
            let mut ids = self.ids.lock().map_err(|_| "denylist lock poisoned")?;
            let now = SystemTime::now();
            ids.retain(|_, until| *until > now);
            if ids.len() >= self.capacity
                && let Some(soonest) = ids
                    .iter()
                    .min_by_key(|(_, until)| **until)
                    .map(|(k, _)| k.clone())
            {
                ids.remove(&soonest);
            }
            ids.insert(jti.to_owned(), expires_at + REVOCATION_GRACE);
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
}
