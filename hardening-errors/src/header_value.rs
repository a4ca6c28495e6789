//! Header values: computed once and kept for the life of the process, or joined into a list.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock, PoisonError};

use http::HeaderValue;
use http::header::InvalidHeaderValue;

/// A header value computed at build time, kept for the life of the process so that cloning it
/// per response is a copy, not an atomic reference count (`Bytes` from a `String` is shared
/// and counted). Interned: building the same policy again stores nothing new, so the memory
/// is bounded by the distinct values a process ever configures. For values made at start-up,
/// never for values that change per request.
///
/// ```
/// let a = hardening_errors::static_header_value(format!("max-age={}", 63_072_000)).unwrap();
/// let b = hardening_errors::static_header_value("max-age=63072000".to_owned()).unwrap();
/// assert_eq!(a, b);
/// assert!(hardening_errors::static_header_value("bad\nvalue".to_owned()).is_err());
/// ```
pub fn static_header_value(value: String) -> Result<HeaderValue, InvalidHeaderValue> {
    static INTERNED: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    // Validate first: `from_static` insists on a valid value.
    HeaderValue::from_str(&value)?;
    let mut set = INTERNED
        .get_or_init(|| Mutex::new(HashSet::new()))
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let text: &'static str = match set.get(value.as_str()) {
        Some(text) => text,
        None => {
            let text: &'static str = Box::leak(value.into_boxed_str());
            set.insert(text);
            text
        }
    };
    Ok(HeaderValue::from_static(text))
}

/// The values as one comma-separated list (`a, b, c`), in one allocation of the exact size;
/// `None` for no values.
///
/// ```
/// use http::HeaderValue;
/// let (inner, outer) = (HeaderValue::from_static("\"a\";r=1"), HeaderValue::from_static("\"b\";r=2"));
/// let joined = hardening_errors::join_header_values(&[&inner, &outer]).unwrap();
/// assert_eq!(joined, "\"a\";r=1, \"b\";r=2");
/// ```
pub fn join_header_values(values: &[&HeaderValue]) -> Option<HeaderValue> {
    let len = values
        .iter()
        .map(|v| v.len() + 2)
        .sum::<usize>()
        .checked_sub(2)?;
    let mut joined = Vec::with_capacity(len);
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            joined.extend_from_slice(b", ");
        }
        joined.extend_from_slice(value.as_bytes());
    }
    // Exactly sized, so `Bytes` takes the buffer over without another allocation.
    HeaderValue::from_maybe_shared(bytes::Bytes::from(joined)).ok()
}
