//! Where API keys live: the [`ApiKeyStore`] trait (a database, say) and [`MemoryApiKeys`].

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{PoisonError, RwLock};
use std::time::SystemTime;

use super::{ApiKey, ApiKeyDigest, ApiKeyError, ApiKeyId};
use crate::Principal;

/// An error from an API key store (its database is down, say). The request is refused with a
/// 503 and `Retry-After: 1`, never let through; the error is logged, its secrets redacted.
pub type ApiKeyStoreError = Box<dyn std::error::Error + Send + Sync>;

/// A store's answer about one key id, boxed so that stores can be chosen at run time.
pub type ApiKeyLookup<'a> =
    Pin<Box<dyn Future<Output = Result<Option<StoredApiKey>, ApiKeyStoreError>> + Send + 'a>>;

/// What a store keeps of one key: its digest and the principal it stands for (the
/// `subject` the limiter, the access log and [`Owned`](crate::Owned) see, its `tenant`,
/// `roles` and `scopes`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredApiKey {
    /// The key's digest ([`ApiKey::digest`]).
    pub digest: ApiKeyDigest,
    /// Who the key speaks for.
    pub principal: Principal,
    /// When the key stops working, if it does: from then on it is refused as a revoked key
    /// is (a 401 that does not say why; the log says `expired key`).
    pub expires_at: Option<SystemTime>,
}

impl StoredApiKey {
    /// A key with this digest, for this principal, that does not expire.
    pub fn new(digest: ApiKeyDigest, principal: Principal) -> Self {
        Self {
            digest,
            principal,
            expires_at: None,
        }
    }

    /// The key stops working at `at` (a key handed to a contractor for a quarter, or one
    /// rotated with an overlap): refused from then on, as a revoked key is.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use hardening_auth::{ApiKey, Principal, StoredApiKey};
    ///
    /// let key = ApiKey::generate("acme")?;
    /// let principal = Principal { subject: "billing-bot".into(), ..Principal::default() };
    /// let in_90_days = SystemTime::now() + Duration::from_secs(90 * 24 * 60 * 60);
    /// let stored = StoredApiKey::new(key.digest(), principal).expires_at(in_90_days);
    /// assert_eq!(stored.expires_at, Some(in_90_days));
    /// # Ok::<(), hardening_auth::ApiKeyError>(())
    /// ```
    #[must_use]
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Whether the key has expired at `now`.
    pub(crate) fn expired(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// Where [`ApiKeyLayer`](crate::ApiKeyLayer) looks keys up, once a request, by their public
/// [`ApiKeyId`]. Implement it over your database:
///
/// ```
/// use hardening_auth::{ApiKeyId, ApiKeyLookup, ApiKeyStore, Principal, StoredApiKey};
///
/// #[derive(Debug)]
/// struct Db; // your pool
///
/// impl ApiKeyStore for Db {
///     fn find<'a>(&'a self, id: &'a ApiKeyId) -> ApiKeyLookup<'a> {
///         Box::pin(async move {
///             // SELECT digest, account_id, tenant_id, scopes FROM api_keys
///             //  WHERE id = ?1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
///             let row: Option<(String, String, String)> = None;
///             let Some((digest, account, tenant)) = row else { return Ok(None) };
///             let principal = Principal {
///                 subject: account,
///                 tenant: Some(tenant),
///                 ..Principal::default()
///             };
///             Ok(Some(StoredApiKey::new(digest.parse()?, principal)))
///         })
///     }
/// }
/// ```
///
/// A revoked or expired key is answered `None`, as an unknown one: the client is refused the
/// same way for each, so the answer tells nothing about which keys exist.
pub trait ApiKeyStore: Send + Sync + fmt::Debug + 'static {
    /// The live key with this id, if there is one.
    fn find<'a>(&'a self, id: &'a ApiKeyId) -> ApiKeyLookup<'a>;
}

/// API keys in this process's memory: for a service whose few keys come from its
/// configuration (a webhook sender's, a partner's), and for tests. Keys added or revoked here
/// count from the next request.
///
/// ```
/// use std::sync::Arc;
/// use hardening_auth::{ApiKey, MemoryApiKeys, Principal};
///
/// let keys = Arc::new(MemoryApiKeys::new());
/// let key = ApiKey::generate("acme")?;       // key.expose_secret(): show it once
/// let billing = Principal { subject: "billing-bot".into(), ..Principal::default() };
/// keys.add(&key, billing)?;
/// assert_eq!(keys.list(), [(key.id(), "billing-bot".to_owned())]);
/// assert!(keys.revoke(&key.id()));
/// assert!(keys.list().is_empty());
/// # Ok::<(), hardening_auth::ApiKeyError>(())
/// ```
#[derive(Default)]
pub struct MemoryApiKeys {
    keys: RwLock<HashMap<ApiKeyId, StoredApiKey>>,
}

impl MemoryApiKeys {
    /// No keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `key` for `principal` (only its id and digest are kept).
    ///
    /// # Errors
    ///
    /// As [`insert`](Self::insert).
    pub fn add(&self, key: &ApiKey, principal: Principal) -> Result<(), ApiKeyError> {
        self.insert(key.id(), StoredApiKey::new(key.digest(), principal))
    }

    /// Adds a key by its id and what is stored of it (a digest read from configuration).
    ///
    /// # Errors
    ///
    /// [`ApiKeyError::Duplicate`] for an id held already (revoke it first);
    /// [`ApiKeyError::NoSubject`] for a principal with an empty subject.
    pub fn insert(&self, id: ApiKeyId, stored: StoredApiKey) -> Result<(), ApiKeyError> {
        if stored.principal.subject.is_empty() {
            return Err(ApiKeyError::NoSubject(id));
        }
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        if keys.contains_key(&id) {
            return Err(ApiKeyError::Duplicate(id));
        }
        keys.insert(id, stored);
        Ok(())
    }

    /// Revokes the key with this id; whether it was here.
    pub fn revoke(&self, id: &ApiKeyId) -> bool {
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        keys.remove(id).is_some()
    }

    /// Each key's id and its principal's subject, ordered by id: what a page listing the
    /// keys shows (never a key).
    pub fn list(&self) -> Vec<(ApiKeyId, String)> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        let mut list: Vec<_> = keys
            .iter()
            .map(|(id, stored)| (*id, stored.principal.subject.clone()))
            .collect();
        list.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        list
    }
}

impl fmt::Debug for MemoryApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("MemoryApiKeys")
            .field("keys", &keys.len())
            .finish()
    }
}

impl ApiKeyStore for MemoryApiKeys {
    fn find<'a>(&'a self, id: &'a ApiKeyId) -> ApiKeyLookup<'a> {
        let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
        let found = keys.get(id).cloned();
        Box::pin(std::future::ready(Ok(found)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(subject: &str) -> Principal {
        Principal {
            subject: subject.into(),
            ..Principal::default()
        }
    }

    #[tokio::test]
    async fn a_key_is_found_until_it_is_revoked() {
        let keys = MemoryApiKeys::new();
        let key = ApiKey::generate("acme").unwrap();
        keys.add(&key, principal("bot")).unwrap();
        let found = keys.find(&key.id()).await.unwrap().unwrap();
        assert_eq!(found.digest, key.digest());
        assert_eq!(found.principal.subject, "bot");
        assert!(keys.revoke(&key.id()));
        assert!(!keys.revoke(&key.id()));
        assert!(keys.find(&key.id()).await.unwrap().is_none());
    }

    #[test]
    fn an_id_is_stored_once_and_a_principal_needs_a_subject() {
        let keys = MemoryApiKeys::new();
        let key = ApiKey::generate("acme").unwrap();
        keys.add(&key, principal("bot")).unwrap();
        assert_eq!(
            keys.add(&key, principal("other")),
            Err(ApiKeyError::Duplicate(key.id()))
        );
        let another = ApiKey::generate("acme").unwrap();
        assert_eq!(
            keys.add(&another, principal("")),
            Err(ApiKeyError::NoSubject(another.id()))
        );
        assert_eq!(keys.list(), [(key.id(), "bot".to_owned())]);
        assert_eq!(format!("{keys:?}"), "MemoryApiKeys { keys: 1 }");
    }
}
