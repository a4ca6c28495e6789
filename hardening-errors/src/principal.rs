//! Who made a request, as far as the logs need to know.

use std::fmt;
use std::sync::Arc;

/// The id of the authenticated principal (user, service account, API key id; never a
/// credential), for the access log.
///
/// An authentication layer, or a handler, puts it in the **response** extensions; the
/// access log of `hardening-core` prints it as `enduser.id`.
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
