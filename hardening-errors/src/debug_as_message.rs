//! `Debug` that prints an error's message, for the errors a service meets at start-up.

/// Implements `Debug` for error types as their `Display` message.
///
/// `fn main() -> Result<(), Box<dyn Error>>` prints an error returned with `?` by its
/// `Debug`, and a derived `Debug` prints a variant's name (`WildcardWithCredentials`), which
/// does not say what to change; the message does. For the start-up errors of these crates,
/// whose messages name the setting and the fix.
///
/// ```
/// #[derive(thiserror::Error)]
/// enum StartError {
///     #[error("the timeout is zero: use at least 1 s")]
///     ZeroTimeout,
/// }
/// hardening_errors::debug_as_message!(StartError);
///
/// let printed = format!("{:?}", StartError::ZeroTimeout);
/// assert_eq!(printed, "the timeout is zero: use at least 1 s");
/// ```
#[macro_export]
macro_rules! debug_as_message {
    ($($error:ty),+ $(,)?) => {$(
        impl ::std::fmt::Debug for $error {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Display::fmt(self, f)
            }
        }
    )+};
}
