//! Who made a request, as far as the logs need to know.

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
