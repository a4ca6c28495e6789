//! Build-time configuration errors.

/// A setting that cannot work, found while building [`Hardening`](crate::Hardening) or
/// [`Server`](crate::Server): the message says what to change, and `Debug` prints it too.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A trusted-proxy network that does not parse.
    #[error("invalid network {value:?} in trusted proxies: {why}")]
    InvalidNetwork {
        /// The value given.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// A network for [`Health::detail_for`](crate::Health::detail_for) that does not parse.
    #[error("invalid network {value:?} in Health::detail_for: {why}")]
    InvalidDetailNetwork {
        /// The value given.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// A forwarding header other than `x-forwarded-for` or `forwarded`.
    #[error("invalid forwarding header {value:?}: {why}")]
    InvalidForwardedHeader {
        /// The value given.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// A CORS origin that is not `scheme://host[:port]`.
    #[error("invalid CORS origin {value:?}: {why}")]
    InvalidOrigin {
        /// The value given.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// `*` together with credentials: browsers refuse it, and allowing any origin to send
    /// cookies would be unsafe anyway.
    #[error(
        "CORS cannot allow any origin (\"*\") with credentials: list the origins that may send credentials"
    )]
    WildcardWithCredentials,
    /// CORS credentials with no origin listed: they would let no origin send any.
    #[error(
        "CORS allow_credentials with no origin listed lets no origin send credentials: list \
         the origins that may, in Cors::allow_origins([\"https://app.example.com\"])"
    )]
    CredentialsWithoutOrigins,
    /// CORS `allow_methods` with no method: every preflight would be refused, while simple
    /// requests (which browsers send without a preflight) would still be allowed.
    #[error(
        "CORS allow_methods was given no methods: every preflight would be refused, yet simple \
         GET, HEAD and POST requests from the listed origins would still be allowed; list the \
         methods cross-origin requests may use (such as GET, POST, PUT), or leave \
         allow_methods out to keep GET, HEAD, POST"
    )]
    NoCorsMethods,
    /// A CORS method name that is not one, or `*` (`HARDENING_CORS_METHODS`,
    /// [`Cors::allow_methods`](crate::Cors::allow_methods)).
    #[error("invalid method {value:?}: {why}")]
    InvalidMethod {
        /// The value given.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// A header name that is not a valid HTTP header name.
    #[error("invalid header name {0:?}")]
    InvalidHeaderName(String),
    /// `*` in a CORS header list. In `allow_headers` the preflight check compares names, so it
    /// would allow only a header named `*`. In `expose_headers` browsers read it as "every
    /// response header" without credentials (more than an allowlist shows) and as a name
    /// matching nothing with them. Either way the list must name the headers.
    #[error(
        "CORS header lists take header names, not \"*\": list the headers (such as content-type, authorization)"
    )]
    WildcardHeaders,
    /// A host pattern that is not a host name.
    #[error("invalid allowed host {value:?}: {why}")]
    InvalidHost {
        /// The value given.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// A path that is not an absolute path without query or fragment.
    #[error("invalid path {0:?}: expected an absolute path such as /healthz")]
    InvalidPath(String),
    /// Liveness and readiness on one path: readiness would never be asked.
    #[error(
        "liveness and readiness both on {0:?}: give them two paths, such as /healthz and /readyz"
    )]
    SameHealthPaths(String),
    /// A limit of zero, which would refuse every request.
    #[error("{0} must be greater than zero{hint}", hint = without_the_limit(.0))]
    ZeroLimit(&'static str),
    /// A route pattern for [`Hardening::allow_larger_body`](crate::Hardening::allow_larger_body)
    /// or [`Hardening::allow_route_without_rate_limit`](crate::Hardening::allow_route_without_rate_limit)
    /// that cannot match a request's path, is not taken there, or was given before.
    #[error("invalid route {value:?} for {setting}: {why}")]
    InvalidRoute {
        /// The builder method it was given to.
        setting: &'static str,
        /// The pattern given.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// A route's larger body limit that is not larger than the body limit for every route:
    /// it would change nothing (a route's limit is lowered with axum's `DefaultBodyLimit`).
    #[error(
        "allow_larger_body({route:?}, {bytes}) does not raise the body limit of \
         {body_limit} bytes: give the route more, or leave it to body_limit; to lower one \
         route's limit, put axum's DefaultBodyLimit::max on that route"
    )]
    BodyLimitNotRaised {
        /// The route pattern.
        route: String,
        /// The route's limit, in bytes.
        bytes: usize,
        /// The body limit of every other route, in bytes.
        body_limit: usize,
    },
    /// A rate-limit policy `Hardening` could never count: it keys by the authenticated
    /// principal or its tenant, which no request has yet where `Hardening` runs (outside the
    /// auth layer).
    #[error(
        "rate-limit policy `{0}` counts by principal or tenant, which Hardening never knows \
         (it runs before your auth layer): give it to a RateLimitLayer inside the auth layer \
         instead"
    )]
    PolicyNeedsPrincipal(String),
    /// A rate limiter with no policies: it would limit nothing. What
    /// `RateLimiter::try_new`'s `NoPolicies` converts to.
    #[error(
        "the rate limiter has no policies, so it would limit nothing: add a Policy, or call \
         dangerous_without_rate_limit() to turn rate limiting off"
    )]
    NoRateLimitPolicies,
    /// Two rate-limit policies with one name: their `RateLimit` fields and 429 problems
    /// could not be told apart. What `RateLimiter::try_new`'s `DuplicatePolicyName`
    /// converts to.
    #[error(
        "two rate-limit policies are named `{0}`: give each its own name (it is what the \
         RateLimit headers, 429 problems and logs report)"
    )]
    DuplicatePolicyName(String),
    /// Another rate-limit policy mistake `RateLimiter::try_new` refuses (its message).
    #[error("{0}")]
    RateLimit(String),
    /// A header-read timeout too short for clients to send a request in: the server would
    /// close their connections without a response.
    #[error(
        "header_read_timeout of {given:?} is too short: a connection that has not sent its \
         request headers by then is closed without a response; use at least {minimum:?} \
         (the default is 10s)"
    )]
    HeaderReadTimeoutTooShort {
        /// The value given.
        given: std::time::Duration,
        /// The shortest allowed.
        minimum: std::time::Duration,
    },
    /// An idle timeout too short for a client to send its next request on a kept-alive
    /// connection: the server would close it before the request came.
    #[error(
        "idle_timeout of {given:?} is too short: a client sends its next request on a \
         kept-alive connection at least one round trip after the response, and the connection \
         is closed if it has not come by then; use at least {minimum:?} (the default is 75s)"
    )]
    IdleTimeoutTooShort {
        /// The value given.
        given: std::time::Duration,
        /// The shortest allowed.
        minimum: std::time::Duration,
    },
    /// A request head size limit too small for the heads browsers send.
    #[error(
        "max_head_size of {given} bytes is too small: a browser's request line and header \
         fields (cookies included) take a few KiB, and a longer head is refused with 431; \
         use at least {minimum} (the default is 65536)"
    )]
    HeadSizeTooSmall {
        /// The value given.
        given: usize,
        /// The smallest allowed.
        minimum: usize,
    },
    /// A send timeout too short for a client to take part of its response in: the server
    /// would close the connection of any client whose receive window fills once.
    #[error(
        "send_timeout of {given:?} is too short: a response write that waits for the client \
         waits at least one round trip, so any client whose receive window fills once would \
         be cut off; use at least {minimum:?} (the default is 60s)"
    )]
    SendTimeoutTooShort {
        /// The value given.
        given: std::time::Duration,
        /// The shortest allowed.
        minimum: std::time::Duration,
    },
    /// A security-header setting that cannot work.
    #[cfg(feature = "headers")]
    #[error(transparent)]
    Headers(#[from] hardening_headers::ConfigError),
    /// An environment variable that does not parse or is unknown, or a setting of
    /// [`HardeningConfig`](crate::HardeningConfig) that cannot work as it is.
    #[error("{var}: {why}")]
    Env {
        /// The variable, or the setting's field when the config was not read from the
        /// environment.
        var: String,
        /// What is wrong with it.
        why: String,
    },
    /// Several settings of [`HardeningConfig`](crate::HardeningConfig) that failed, each
    /// named, one per line.
    #[error("{} settings are wrong:{}", .0.len(), list(.0))]
    Several(Vec<ConfigError>),
    /// A setting of [`HardeningConfig`](crate::HardeningConfig) that failed validation.
    #[error("{setting}: {source}")]
    Setting {
        /// Its `HARDENING_*` variable when the config was read from the environment, else
        /// its field (`rate_limit_burst`).
        setting: &'static str,
        /// What is wrong with it.
        source: Box<ConfigError>,
    },
}

#[cfg(feature = "ratelimit")]
impl From<hardening_ratelimit::LimiterConfigError> for ConfigError {
    fn from(err: hardening_ratelimit::LimiterConfigError) -> Self {
        use hardening_ratelimit::LimiterConfigError;
        match err {
            LimiterConfigError::NoPolicies => Self::NoRateLimitPolicies,
            LimiterConfigError::DuplicatePolicyName(name) => Self::DuplicatePolicyName(name),
            err => Self::RateLimit(err.to_string()),
        }
    }
}

/// Why [`init_json_logs`](crate::init_json_logs) could not set up logging: the message says
/// what to change, and `Debug` prints it too.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogInitError {
    /// `RUST_LOG` holds bytes that are not UTF-8.
    #[error(
        "RUST_LOG is not valid UTF-8: set it to a level (`info`) or to comma-separated \
         `target=level` directives (`info,hardening::request=off`)"
    )]
    RustLogNotUnicode,
    /// `RUST_LOG` does not parse as a log filter.
    #[error(
        "RUST_LOG={value:?} is not a valid log filter ({why}): set it to a level (`info`) or \
         to comma-separated `target=level` directives (`info,hardening::request=off`)"
    )]
    InvalidRustLog {
        /// The variable's value.
        value: String,
        /// What the parser says is wrong with it.
        why: String,
    },
    /// `RUST_LOG` would hide the security events without naming their target.
    #[error(
        "RUST_LOG={value:?} would hide hardening's security events (target {target}): add \
         `,{target}=warn` to keep them, or `,{target}=off` to drop them on purpose"
    )]
    HidesSecurityEvents {
        /// The variable's value.
        value: String,
        /// The security events' target, [`SECURITY_TARGET`](crate::SECURITY_TARGET).
        target: &'static str,
    },
    /// A global tracing subscriber was set before.
    #[error(
        "a global tracing subscriber is already set: call init_json_logs once, before anything \
         else sets one (tracing_subscriber::fmt().init(), another crate's logging setup), or \
         keep that subscriber and do not call init_json_logs"
    )]
    SubscriberAlreadySet,
}

hardening_errors::debug_as_message!(ConfigError, LogInitError);

fn list(errors: &[ConfigError]) -> String {
    errors.iter().map(|e| format!("\n  - {e}")).collect()
}

impl ConfigError {
    /// `Ok` for no errors, the error itself for one, [`Several`](Self::Several) for more
    /// (one flat list: a `Several` among them gives its own).
    pub(crate) fn all(errors: Vec<ConfigError>) -> Result<(), ConfigError> {
        let mut errors: Vec<ConfigError> = errors
            .into_iter()
            .flat_map(|e| match e {
                Self::Several(inner) => inner,
                e => vec![e],
            })
            .collect();
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(Self::Several(errors)),
        }
    }

    /// This error, as the fault of the named setting.
    pub(crate) fn in_setting(self, setting: &'static str) -> Self {
        Self::Setting {
            setting,
            source: Box::new(self),
        }
    }
}

/// For a [`ConfigError::ZeroLimit`]: the named loosening that turns the limit off, for the
/// limits that have one (zero is no way to say "none").
fn without_the_limit(setting: &str) -> &'static str {
    match setting {
        "body_limit" => "; to turn the limit off, use Hardening::dangerous_disable_body_limit()",
        "query_param_limit" => {
            "; to turn the limit off, use Hardening::dangerous_disable_query_param_limit()"
        }
        "timeout" => "; to turn the timeout off, use Hardening::dangerous_disable_timeout()",
        "min_send_rate" => {
            "; to turn the minimum off, use Server::dangerous_without_min_send_rate()"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use crate::{Hardening, Server};

    /// A zero limit is refused, and where a named loosening turns the limit off the message
    /// says which (before, only "min_send_rate must be greater than zero").
    #[test]
    fn a_zero_limit_names_the_loosening_that_turns_it_off() {
        let message = |result: Result<_, crate::ConfigError>| match result {
            Err(err) => err.to_string(),
            Ok(_) => panic!("a zero limit was taken"),
        };
        assert_eq!(
            message(Server::new().min_send_rate(0).map(drop)),
            "min_send_rate must be greater than zero; to turn the minimum off, use \
             Server::dangerous_without_min_send_rate()"
        );
        assert!(
            message(Hardening::strict().body_limit(0).map(drop))
                .ends_with("use Hardening::dangerous_disable_body_limit()")
        );
        assert_eq!(
            message(Server::new().max_connections(0).map(drop)),
            "max_connections must be greater than zero"
        );
    }
}
