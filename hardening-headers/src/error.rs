//! Build-time configuration errors.

/// A header setting that cannot work, found at build time: the message says what to change,
/// and `Debug` prints it too.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A CSP source keyword without its single quotes (`self` instead of `'self'`).
    #[error(
        "CSP directive `{directive}`: write the keyword {keyword:?} as '{keyword}', with single quotes"
    )]
    UnquotedKeyword {
        /// The directive.
        directive: String,
        /// The keyword.
        keyword: String,
    },
    /// A CSP without `default-src`, so unlisted resource types are unrestricted.
    #[error(
        "the Content-Security-Policy has no `default-src`: add default-src 'none' (or 'self') as the fallback"
    )]
    MissingDefaultSrc,
    /// A malformed CSP directive name or source.
    #[error("CSP directive `{directive}`: {why}")]
    InvalidCsp {
        /// The directive.
        directive: String,
        /// What is wrong.
        why: String,
    },
    /// A CSP directive name browsers do not know (a typo such as `scirpt-src`): they would
    /// ignore the directive, and what it was meant to do would not happen.
    #[error("unknown CSP directive `{name}` in Csp::{method}; {}", unknown_directive_hint(.suggestion))]
    UnknownCspDirective {
        /// The name given.
        name: String,
        /// The method given it: `directive`, `remove_directive`, or their `dangerous_` forms.
        method: &'static str,
        /// The directive it is closest to, if one is close.
        suggestion: Option<&'static str>,
    },
    /// An HSTS max-age that is zero, or too short for `preload`.
    #[error("HSTS: {0}")]
    InvalidHsts(String),
    /// A header value outside the values the standard defines.
    #[error("{header}: {value:?} is not one of {allowed}")]
    InvalidValue {
        /// The header.
        header: &'static str,
        /// The value given.
        value: String,
        /// The values allowed.
        allowed: &'static str,
    },
    /// A header name or value that is not valid HTTP.
    #[error("invalid header {0}")]
    InvalidHeader(String),
    /// A header [`HeaderPolicy::header`](crate::HeaderPolicy::header) (or
    /// [`dangerous_header`](crate::HeaderPolicy::dangerous_header)) does not set: it has a
    /// setting or handling of its own, which a fixed value would bypass.
    #[error("HeaderPolicy::{method}({header:?}, …): {instead}")]
    NotSettable {
        /// The method called: `header` or `dangerous_header`.
        method: &'static str,
        /// The header, lower-case.
        header: String,
        /// Why, and what to use instead.
        instead: &'static str,
    },
    /// A header [`HeaderPolicy::dangerous_remove_header`](crate::HeaderPolicy::dangerous_remove_header)
    /// cannot remove: the policy does not send it, or sends it through a setting of its own.
    #[error(
        "HeaderPolicy::dangerous_remove_header({header:?}): {why}; it removes one of the headers the policy sends: {removable}"
    )]
    NotRemovable {
        /// The name given.
        header: String,
        /// Why, and what to use instead.
        why: &'static str,
        /// The headers it can remove, comma-separated.
        removable: String,
    },
    /// A value that loosens a strict default, given to a setting without `dangerous_` in its
    /// name: the message names the `dangerous_*` method that sets it (and logs a warning at
    /// start-up).
    #[error("{what} loosens a strict default: {instead}")]
    Loosening {
        /// The setting and the value given.
        what: String,
        /// What the strict default is, and the `dangerous_*` method to use instead.
        instead: String,
    },
    /// A cookie key that is too short or has too little entropy.
    #[error("cookie key {name}: {why}")]
    WeakKey {
        /// Which key (the environment variable, or its position).
        name: String,
        /// What is wrong.
        why: String,
    },
    /// A [`CookiePolicy::max_age`](crate::CookiePolicy::max_age) (or
    /// [`dangerous_max_age`](crate::CookiePolicy::dangerous_max_age)) under one second.
    #[error(
        "CookiePolicy::max_age (or dangerous_max_age) under 1 s would cap every cookie at \
         Max-Age=0, which deletes it at once: give the longest lifetime to allow (at least \
         1 s), or do not call it to keep the 30-day cap"
    )]
    ZeroCookieMaxAge,
    /// A cookie name given to a [`CookiePolicy`](crate::CookiePolicy) setting that no
    /// `Set-Cookie` can carry, so the setting would apply to no cookie: from
    /// [`same_site`](crate::CookiePolicy::same_site) at once, from a `dangerous_*` setting
    /// when the [`HeaderPolicy`](crate::HeaderPolicy) is built.
    #[error(
        "CookiePolicy::{setting} was given the cookie name {name:?}: {why}, so it would apply \
         to no cookie; give the name as your handlers set it (such as session or __Host-session)"
    )]
    InvalidCookieName {
        /// The setting called.
        setting: &'static str,
        /// The name given.
        name: String,
        /// What no cookie's name can have.
        why: &'static str,
    },
    /// A path for [`HttpsRedirect::exempt`](crate::HttpsRedirect::exempt) that no request
    /// can have, so it would exempt nothing.
    #[error("HttpsRedirect::exempt({path:?}): the path {why}")]
    InvalidExemptPath {
        /// The path given.
        path: String,
        /// What is wrong, and what to give instead.
        why: &'static str,
    },
    /// A host for [`HttpsRedirect::to_host`](crate::HttpsRedirect::to_host) that a redirect
    /// cannot go to.
    #[error("HttpsRedirect::to_host({host:?}): {why}")]
    InvalidRedirectHost {
        /// The host given.
        host: String,
        /// What is wrong, and what to give instead.
        why: String,
    },
}

hardening_errors::debug_as_message!(ConfigError);

/// What to write instead of an unknown CSP directive name.
fn unknown_directive_hint(suggestion: &Option<&'static str>) -> String {
    match suggestion {
        Some(directive) => format!("did you mean `{directive}`?"),
        None => format!(
            "write one of {} (or, for a directive newer than these, use \
             Csp::dangerous_unlisted_directive)",
            crate::csp::DIRECTIVES.join(", ")
        ),
    }
}
