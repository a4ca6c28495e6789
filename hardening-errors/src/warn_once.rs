//! A warning given once.

use std::sync::atomic::{AtomicBool, Ordering};

/// A warning to give once: [`first`](Self::first) answers `true` to its first caller only,
/// and [`given`](Self::given) is one relaxed load, cheap enough for a request's path. A clone
/// starts afresh (a layer built again from a changed copy warns again); to share one between
/// clones, put it in an `Arc`.
///
/// ```
/// use hardening_errors::WarnOnce;
///
/// let warned = WarnOnce::new();
/// assert!(!warned.given());
/// assert!(warned.first());
/// assert!(!warned.first(), "said once");
/// assert!(warned.given());
/// assert!(!warned.clone().given(), "a clone starts afresh");
/// ```
#[derive(Debug, Default)]
pub struct WarnOnce(AtomicBool);

impl WarnOnce {
    /// Not given yet.
    pub const fn new() -> Self {
        Self(AtomicBool::new(false))
    }

    /// Whether the warning has been given.
    #[inline]
    pub fn given(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// True for the first caller only: that one gives the warning.
    #[inline]
    pub fn first(&self) -> bool {
        !self.given() && !self.0.swap(true, Ordering::Relaxed)
    }
}

impl Clone for WarnOnce {
    fn clone(&self) -> Self {
        Self::new()
    }
}
