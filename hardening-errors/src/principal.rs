//! Who made a request, as far as the logs and the rate limits need to know.

use std::fmt;
use std::sync::{Arc, OnceLock};

/// The id of the authenticated principal (user, service account, API key id; never a
/// credential), for the access log.
///
/// An authentication layer, or a handler, puts it in the **response** extensions; the
/// access log of `hardening-core` prints it as `enduser.id`. An authentication layer also
/// leaves it in the request's [`PrincipalSlot`], for a request that ends without its
/// response.
///
/// ```
/// use axum::response::IntoResponse;
/// use hardening_errors::PrincipalId;
///
/// async fn handler() -> impl IntoResponse {
///     (axum::Extension(PrincipalId::new("user-42")), "hello")
/// }
/// # let _ = handler;
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PrincipalId(Arc<str>);

impl PrincipalId {
    /// A principal id.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PrincipalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PrincipalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PrincipalId").field(&&*self.0).finish()
    }
}

/// The tenant the authenticated principal belongs to (in a multi-tenant service, the
/// customer account a user or API key acts for), in the **request** extensions: what
/// per-tenant rate limits and budgets count by (`hardening-ratelimit`'s `KeyKind::Tenant`).
///
/// `hardening-auth`'s `AuthLayer` puts one there from a verified token's `tenant` (or `tid`)
/// claim; an authentication of your own can insert one, as it knows the tenant. Never take it
/// from anything the client sends unverified (a header, a query parameter): a client could
/// then spend another tenant's budget, or escape its own by naming a new tenant each time.
///
/// ```
/// use hardening_errors::TenantId;
///
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(TenantId::new("acme"));
/// let tenant = request.extensions().get::<TenantId>().map(TenantId::as_str);
/// assert_eq!(tenant, Some("acme"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TenantId(Arc<str>);

impl TenantId {
    /// A tenant id.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where an authentication layer leaves the principal's id for a layer further out that may
/// have to log the request without a response from inside: one that timed out, panicked or
/// whose client hung up (`hardening-core`'s access log prints it as `enduser.id` then).
///
/// That layer puts one in the **request** extensions (only when it will log the request);
/// an authentication layer that admits a principal [`set`](Self::set)s it. The first id set
/// stays. A [`PrincipalId`] in the response's extensions still comes first.
///
/// ```
/// use hardening_errors::{PrincipalId, PrincipalSlot};
///
/// let mut request = http::Request::new(());
/// let slot = PrincipalSlot::default();
/// request.extensions_mut().insert(slot.clone());
/// // An authentication layer, further in:
/// if let Some(slot) = request.extensions().get::<PrincipalSlot>() {
///     slot.set(PrincipalId::new("user-42"));
/// }
/// assert_eq!(slot.get().map(PrincipalId::as_str), Some("user-42"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct PrincipalSlot(Arc<OnceLock<PrincipalId>>);

impl PrincipalSlot {
    /// Leaves `id` here, unless an id is here already.
    pub fn set(&self, id: PrincipalId) {
        let _ = self.0.set(id);
    }

    /// The id left here, if any.
    pub fn get(&self) -> Option<&PrincipalId> {
        self.0.get()
    }
}
