//! `HardeningConfig`: the settings as data, from `HARDENING_*` environment variables or any
//! serde format, validated in one call.

use std::time::Duration;

use serde::Deserialize;

use crate::hardening::Setting;
use crate::{ConfigError, Cors, ForwardedHeader, Hardening};

/// The settings of [`Hardening`] as plain data.
///
/// Every field is optional; what is not set keeps the strict default. Load it from
/// environment variables with [`HardeningConfig::from_env`] (each field is the variable
/// `HARDENING_<FIELD>`, lists comma-separated, the routes' body limits as `route=bytes`
/// pairs) or deserialize it from any serde format (lists as arrays, read alike: entries
/// trimmed, empty ones left out; the routes' body limits as a map), then call
/// [`HardeningConfig::build`], which validates everything at once and names the setting at
/// fault as its user wrote it: the variable when read from the environment, the field
/// (`rate_limit_burst`) otherwise.
///
/// ```
/// use hardening_core::HardeningConfig;
///
/// let config = HardeningConfig::from_vars([
///     ("HARDENING_TRUSTED_PROXIES", "10.0.0.0/8, fd00::/8"),
///     ("HARDENING_CORS_ORIGINS", "https://app.example.com"),
///     ("HARDENING_TIMEOUT_SECS", "10"),
/// ])?;
/// let hardening = config.build()?;
/// # let _ = hardening;
///
/// let err = HardeningConfig::from_vars([("HARDENING_TIMEOUT_SECS", "ten")]).unwrap_err();
/// assert!(err.to_string().starts_with("HARDENING_TIMEOUT_SECS"));
/// # Ok::<(), hardening_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct HardeningConfig {
    /// Largest request body in bytes (default 1 MiB; larger is logged as a loosening).
    pub body_limit: Option<usize>,
    /// Routes allowed a larger body, each with its size in bytes, above `body_limit`: each
    /// given to [`Hardening::allow_larger_body`] (which logs it as a loosening), after
    /// `body_limit`, in this order. From the environment, comma-separated `route=bytes` pairs
    /// (`/docs/{id}/file=20971520`, split at the last `=`); through serde, a map from route
    /// to bytes (`{"/docs/{id}/file": 20971520}`, keys trimmed, order kept); empty unsets it.
    #[serde(deserialize_with = "route_sizes")]
    pub route_body_limits: Vec<(String, usize)>,
    /// Most query parameters (default 50; more is logged as a loosening).
    pub query_param_limit: Option<usize>,
    /// Seconds until the response head (default 30; longer is logged as a loosening).
    pub timeout_secs: Option<u64>,
    /// Networks whose forwarding headers are believed (default none).
    #[serde(deserialize_with = "list")]
    pub trusted_proxies: Vec<String>,
    /// The forwarding header those proxies write: `x-forwarded-for` (the default) or
    /// `forwarded`, in any case, as from the environment.
    pub forwarded_header: Option<ForwardedHeader>,
    /// Origins allowed cross-origin access (default none).
    #[serde(deserialize_with = "list")]
    pub cors_origins: Vec<String>,
    /// Whether allowed origins may send credentials (unset: false).
    pub cors_credentials: Option<bool>,
    /// Request headers allowed origins may send (default `content-type`; a list replaces
    /// it), as [`Cors::allow_headers`] takes them.
    #[serde(deserialize_with = "list")]
    pub cors_headers: Vec<String>,
    /// Methods allowed origins may use (default `GET, HEAD, POST`; a list replaces them), in
    /// any case (`put` is `PUT`), as [`Cors::allow_methods`] takes them.
    #[serde(deserialize_with = "list")]
    pub cors_methods: Vec<String>,
    /// Hosts the service answers for (default: any).
    #[serde(deserialize_with = "list")]
    pub allowed_hosts: Vec<String>,
    /// Extra query-parameter names to redact in logs.
    #[serde(deserialize_with = "list")]
    pub sensitive_query_params: Vec<String>,
    /// Whether the access log includes (redacted) request headers (unset: false).
    pub log_request_headers: Option<bool>,
    /// Treat every request as HTTPS (TLS terminated in front, always) (unset: false).
    pub behind_tls: Option<bool>,
    /// Redirect plain-HTTP requests to HTTPS (feature `headers`; unset: false).
    pub https_redirect: Option<bool>,
    /// Requests per minute per client IP (feature `ratelimit`; default 100).
    pub rate_limit_per_minute: Option<u32>,
    /// Burst of the per-IP limit (feature `ratelimit`; default 50, or
    /// `rate_limit_per_minute` if that is lower).
    pub rate_limit_burst: Option<u32>,
    /// Routes left out of the rate limit (feature `ratelimit`), in axum's syntax
    /// (`/webhooks/stripe`, `/assets/{*path}`): each given to
    /// [`Hardening::allow_route_without_rate_limit`], which logs it as a loosening.
    #[serde(deserialize_with = "list")]
    pub routes_without_rate_limit: Vec<String>,
    /// What errors and warnings call the settings.
    #[serde(skip)]
    names: Names,
}

/// What a config's errors and warnings call its settings: what its user wrote.
#[derive(Debug, Clone, Copy, Default)]
enum Names {
    /// The fields, for a config deserialized or written in code.
    #[default]
    Fields,
    /// The `HARDENING_*` variables, for a config read from them.
    Variables,
}

impl Names {
    /// The name of the setting the variable `var` sets.
    fn of(self, var: &'static str) -> &'static str {
        match self {
            Self::Variables => var,
            Self::Fields => FIELDS
                .iter()
                .find(|(known, _)| *known == var)
                .map_or(var, |(_, field)| field),
        }
    }
}

/// Where a config was read from is no part of what it sets.
impl PartialEq for Names {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Names {}

/// Each variable of [`ENV_VARS`] with the field it sets.
const FIELDS: &[(&str, &str)] = &[
    ("HARDENING_BODY_LIMIT", "body_limit"),
    ("HARDENING_ROUTE_BODY_LIMITS", "route_body_limits"),
    ("HARDENING_QUERY_PARAM_LIMIT", "query_param_limit"),
    ("HARDENING_TIMEOUT_SECS", "timeout_secs"),
    ("HARDENING_TRUSTED_PROXIES", "trusted_proxies"),
    ("HARDENING_FORWARDED_HEADER", "forwarded_header"),
    ("HARDENING_CORS_ORIGINS", "cors_origins"),
    ("HARDENING_CORS_CREDENTIALS", "cors_credentials"),
    ("HARDENING_CORS_HEADERS", "cors_headers"),
    ("HARDENING_CORS_METHODS", "cors_methods"),
    ("HARDENING_ALLOWED_HOSTS", "allowed_hosts"),
    ("HARDENING_SENSITIVE_QUERY_PARAMS", "sensitive_query_params"),
    ("HARDENING_BEHIND_TLS", "behind_tls"),
    ("HARDENING_HTTPS_REDIRECT", "https_redirect"),
    ("HARDENING_RATE_LIMIT_PER_MINUTE", "rate_limit_per_minute"),
    ("HARDENING_RATE_LIMIT_BURST", "rate_limit_burst"),
    (
        "HARDENING_ROUTES_WITHOUT_RATE_LIMIT",
        "routes_without_rate_limit",
    ),
    ("HARDENING_LOG_REQUEST_HEADERS", "log_request_headers"),
];

/// The variables [`HardeningConfig::from_env`] reads, with what each sets.
pub const ENV_VARS: &[(&str, &str)] = &[
    (
        "HARDENING_BODY_LIMIT",
        "largest request body in bytes (default 1048576; larger is logged as a loosening)",
    ),
    (
        "HARDENING_ROUTE_BODY_LIMITS",
        "comma-separated route=bytes pairs, routes allowed a larger body than \
         HARDENING_BODY_LIMIT (each logged as a loosening)",
    ),
    (
        "HARDENING_QUERY_PARAM_LIMIT",
        "most query parameters (default 50; more is logged as a loosening)",
    ),
    (
        "HARDENING_TIMEOUT_SECS",
        "seconds until the response head (default 30; longer is logged as a loosening)",
    ),
    (
        "HARDENING_TRUSTED_PROXIES",
        "comma-separated networks whose forwarding header is believed",
    ),
    (
        "HARDENING_FORWARDED_HEADER",
        "the header those proxies write: x-forwarded-for (default) or forwarded",
    ),
    (
        "HARDENING_CORS_ORIGINS",
        "comma-separated origins allowed cross-origin access",
    ),
    (
        "HARDENING_CORS_CREDENTIALS",
        "true to let allowed origins send cookies (default false)",
    ),
    (
        "HARDENING_CORS_HEADERS",
        "comma-separated request headers allowed origins may send (default content-type; \
         replaces it)",
    ),
    (
        "HARDENING_CORS_METHODS",
        "comma-separated methods allowed origins may use (default GET, HEAD, POST; replaces \
         them)",
    ),
    (
        "HARDENING_ALLOWED_HOSTS",
        "comma-separated hosts the service answers for",
    ),
    (
        "HARDENING_SENSITIVE_QUERY_PARAMS",
        "comma-separated extra query parameters to redact",
    ),
    (
        "HARDENING_BEHIND_TLS",
        "true when TLS is always terminated in front of the service (default false)",
    ),
    (
        "HARDENING_HTTPS_REDIRECT",
        "true to redirect plain-HTTP requests to HTTPS (default false)",
    ),
    (
        "HARDENING_RATE_LIMIT_PER_MINUTE",
        "requests per minute per client IP (default 100)",
    ),
    (
        "HARDENING_RATE_LIMIT_BURST",
        "burst of the per-IP limit (default 50, or the count a minute if lower)",
    ),
    (
        "HARDENING_ROUTES_WITHOUT_RATE_LIMIT",
        "comma-separated routes left out of the rate limit (each logged as a loosening)",
    ),
    (
        "HARDENING_LOG_REQUEST_HEADERS",
        "true to log redacted request headers (default false)",
    ),
];

impl HardeningConfig {
    /// Reads every `HARDENING_*` environment variable. An unknown `HARDENING_*` variable is
    /// an error (a typo would otherwise silently keep a default), in any case
    /// (`hardening_body_limit` too), and so is one whose name or value is not UTF-8, or that
    /// the environment holds twice with different values (as in [`from_vars`](Self::from_vars)).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Env`] for a variable that does not read (or is unknown),
    /// [`ConfigError::Setting`] for one that [`build`](Self::build) would refuse, each naming
    /// the variable; [`ConfigError::Several`] listing them when several are wrong.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_os_vars(std::env::vars_os())
    }

    fn from_os_vars(
        vars: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
    ) -> Result<Self, ConfigError> {
        let mut settings = Vec::new();
        let mut errors = Vec::new();
        for (name, value) in vars {
            // Names in another case are read too, to be refused: on Windows they would be
            // the same variable, and elsewhere a typo.
            if !name
                .as_encoded_bytes()
                .get(..PREFIX.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(PREFIX.as_bytes()))
            {
                continue;
            }
            let not_utf8 = |var: String, what: &str| ConfigError::Env {
                var,
                why: format!("the {what} is not valid UTF-8"),
            };
            match (name.into_string(), value.into_string()) {
                (Ok(name), Ok(value)) => settings.push((name, value)),
                (Ok(name), Err(_)) => errors.push(not_utf8(name, "value")),
                (Err(name), _) => {
                    errors.push(not_utf8(name.to_string_lossy().into_owned(), "name"));
                }
            }
        }
        let (config, read_errors) = Self::read(settings);
        errors.extend(read_errors);
        config.checked(errors)
    }

    /// Reads the given `(name, value)` pairs as if they were the environment. Every
    /// variable is read: when several are wrong, the error names each of them, those that
    /// [`build`](Self::build) would refuse included. A variable given twice with different
    /// values is an error (not the last one silently kept); the same value twice, however
    /// spelled (`true` and `1`), is accepted, as it says one thing.
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env).
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let (config, errors) = Self::read(vars);
        config.checked(errors)
    }

    /// Reads every pair into a config, with the errors of those that do not read.
    ///
    /// A known variable given more than once (an env file, or any list of pairs; names
    /// compared as [`set`](Self::set) does, case and all) is read once. With different
    /// values it is an error and left unset: which one was meant is not ours to guess. A
    /// value that reads as the same again (`true` and `1`, spaces around it aside) says
    /// nothing new, and is accepted.
    fn read<K: AsRef<str>, V: AsRef<str>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> (Self, Vec<ConfigError>) {
        let vars: Vec<(K, V)> = vars.into_iter().collect();
        let mut config = Self {
            names: Names::Variables,
            ..Self::default()
        };
        let mut errors = Vec::new();
        for (i, (name, value)) in vars.iter().enumerate() {
            let name = name.as_ref();
            if ENV_VARS.iter().any(|(known, _)| *known == name) {
                // Read once, where it is first given.
                if vars[..i]
                    .iter()
                    .any(|(earlier, _)| earlier.as_ref() == name)
                {
                    continue;
                }
                if let Some(conflict) = given_differently(name, &vars[i..]) {
                    errors.push(conflict);
                    continue;
                }
            }
            if let Err(e) = config.set(name, value.as_ref().trim()) {
                errors.push(e);
            }
        }
        (config, errors)
    }

    /// This config, or the errors of reading it. With errors, what did read is validated
    /// too, so that one error names every wrong variable, not only those that did not read
    /// (and, once they are fixed, the ones `build` refuses). A setting refused for want of
    /// one that did not read (`HARDENING_CORS_CREDENTIALS` without the origins) is not
    /// blamed.
    fn checked(self, mut errors: Vec<ConfigError>) -> Result<Self, ConfigError> {
        if errors.is_empty() {
            return Ok(self);
        }
        let unread: Vec<&'static str> = ENV_VARS
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| {
                errors
                    .iter()
                    .any(|e| matches!(e, ConfigError::Env { var, .. } if var == name))
            })
            .collect();
        // Quiet: its start-up warnings would speak of a layer that is not built.
        let built =
            tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::new(), || {
                self.clone().build_beside(unread)
            });
        match built {
            Ok(_) => {}
            Err(ConfigError::Several(built)) => errors.extend(built),
            Err(built) => errors.push(built),
        }
        ConfigError::all(errors).map(|()| self)
    }

    /// Reads one `HARDENING_*` variable into this config.
    fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let bad = |why: &str| ConfigError::Env {
            var: name.to_owned(),
            why: why.to_owned(),
        };
        // Parsed as the field's own type: a value out of its range is an error, not
        // wrapped round.
        // Every number here is a limit, and no limit may be 0.
        fn number<T: std::str::FromStr + Default + PartialEq>(
            v: &str,
            max: u64,
            bad: &dyn Fn(&str) -> ConfigError,
        ) -> Result<T, ConfigError> {
            // Digits only, as the message says (`str::parse` also takes a leading `+`).
            Some(v)
                .filter(|v| v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse().ok())
                .filter(|n| *n != T::default())
                .ok_or_else(|| {
                if v.is_empty() {
                    bad(&format!(
                        "expected a whole number from 1 to {max}, not an empty value (unset it to keep the default)"
                    ))
                } else {
                    bad(&format!(
                        "expected a whole number from 1 to {max} (digits only, no unit), not {v:?}"
                    ))
                }
            })
        }
        let size = |v: &str| number::<usize>(v, usize::MAX as u64, &bad);
        let count = |v: &str| number::<u32>(v, u64::from(u32::MAX), &bad);
        // Empty means unset; `false` is set, as much as `true` is (a setter replacing it
        // says so).
        let boolean = |v: &str| match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(Some(true)),
            "false" | "0" | "no" => Ok(Some(false)),
            "" => Ok(None),
            _ => Err(bad(&format!(
                "expected true or false (1 or 0, yes or no are read too), not {v:?}"
            ))),
        };
        // Empty means unset; a value that lists nothing (`,`) is a mistake, not "any".
        let list = |v: &str| -> Result<Vec<String>, ConfigError> {
            if v.is_empty() {
                return Ok(Vec::new());
            }
            entries(v.split(',')).ok_or_else(|| {
                bad("lists nothing; give comma-separated entries, or leave it empty to unset it")
            })
        };
        // A list of `route=bytes` pairs, split at the last `=` (a route may hold one, a
        // size cannot); the size read as the other numbers are.
        let route_sizes = |v: &str| -> Result<Vec<(String, usize)>, ConfigError> {
            list(v)?
                .iter()
                .map(|entry| {
                    let Some((route, bytes)) = entry.rsplit_once('=') else {
                        return Err(bad(&format!(
                            "expected comma-separated route=bytes pairs (such as \
                             /docs/{{id}}/file=20971520), not {entry:?}"
                        )));
                    };
                    let bytes = bytes.trim();
                    if bytes.is_empty() {
                        return Err(bad(&format!(
                            "in {entry:?}: expected a whole number from 1 to {} after `=`, not \
                             an empty value (leave the route out to keep the body limit)",
                            usize::MAX
                        )));
                    }
                    let in_entry = |why: &str| bad(&format!("in {entry:?}: {why}"));
                    let bytes = number(bytes, usize::MAX as u64, &in_entry)?;
                    Ok((route.trim().to_owned(), bytes))
                })
                .collect()
        };
        match name {
            "HARDENING_BODY_LIMIT" => self.body_limit = Some(size(value)?),
            "HARDENING_ROUTE_BODY_LIMITS" => self.route_body_limits = route_sizes(value)?,
            "HARDENING_QUERY_PARAM_LIMIT" => self.query_param_limit = Some(size(value)?),
            "HARDENING_TIMEOUT_SECS" => {
                self.timeout_secs = Some(number(value, u64::MAX, &bad)?);
            }
            "HARDENING_TRUSTED_PROXIES" => self.trusted_proxies = list(value)?,
            "HARDENING_FORWARDED_HEADER" if value.is_empty() => self.forwarded_header = None,
            "HARDENING_FORWARDED_HEADER" => {
                self.forwarded_header = Some(
                    value
                        .parse()
                        .map_err(|e: ConfigError| bad(&e.to_string()))?,
                );
            }
            "HARDENING_CORS_ORIGINS" => self.cors_origins = list(value)?,
            "HARDENING_CORS_CREDENTIALS" => self.cors_credentials = boolean(value)?,
            "HARDENING_CORS_HEADERS" => self.cors_headers = list(value)?,
            "HARDENING_CORS_METHODS" => self.cors_methods = list(value)?,
            "HARDENING_ALLOWED_HOSTS" => self.allowed_hosts = list(value)?,
            "HARDENING_SENSITIVE_QUERY_PARAMS" => self.sensitive_query_params = list(value)?,
            "HARDENING_LOG_REQUEST_HEADERS" => self.log_request_headers = boolean(value)?,
            "HARDENING_BEHIND_TLS" => self.behind_tls = boolean(value)?,
            "HARDENING_HTTPS_REDIRECT" => self.https_redirect = boolean(value)?,
            "HARDENING_RATE_LIMIT_PER_MINUTE" => {
                self.rate_limit_per_minute = Some(count(value)?);
            }
            "HARDENING_RATE_LIMIT_BURST" => self.rate_limit_burst = Some(count(value)?),
            "HARDENING_ROUTES_WITHOUT_RATE_LIMIT" => {
                self.routes_without_rate_limit = list(value)?;
            }
            _ => {
                let known: Vec<&str> = ENV_VARS.iter().map(|(n, _)| *n).collect();
                let guess = match hardening_errors::closest_name(name, &known) {
                    Some(guess) => format!(" (did you mean {guess}?)"),
                    None => String::new(),
                };
                return Err(bad(&format!(
                    "unknown setting{guess}; known: {}",
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Builds [`Hardening::strict`] with these settings, validating all of them: when several
    /// are wrong, the error names each of them.
    ///
    /// The layer remembers which settings its variables (or fields) set: a setter called on
    /// it that replaces one (`.cors(..)` after `HARDENING_CORS_ORIGINS`) logs a start-up
    /// warning naming the setter and the variable, even with the same value, since the
    /// variable then has no effect. A flag set to `false` counts as set, as `true` does (the
    /// variable governs it either way). A setting left unset (an empty variable, a field left
    /// out), and a setter that adds to one, say nothing:
    /// [`sensitive_query_params`](Hardening::sensitive_query_params), and
    /// [`allow_larger_body`](Hardening::allow_larger_body) and
    /// [`allow_route_without_rate_limit`](Hardening::allow_route_without_rate_limit), whose
    /// routes join those of `HARDENING_ROUTE_BODY_LIMITS` and
    /// `HARDENING_ROUTES_WITHOUT_RATE_LIMIT` (a route given in both is refused, as given
    /// twice).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Setting`] wrapping what the [`Hardening`] setter refused,
    /// [`ConfigError::Env`] for a setting that needs another one or a Cargo feature, or
    /// [`ConfigError::ZeroLimit`] for a zero rate, each naming the setting as its user wrote
    /// it; [`ConfigError::Several`] listing them when several are wrong.
    pub fn build(self) -> Result<Hardening, ConfigError> {
        self.build_beside(Vec::new())
    }

    /// [`build`](Self::build), beside the variables in `unread` that did not read: a setting
    /// refused only for want of one of them is not blamed (fixing that one may do).
    fn build_beside(self, unread: Vec<&'static str>) -> Result<Hardening, ConfigError> {
        let sources = self.sources();
        let mut steps = Steps::new(self.names, unread);
        if let Some(n) = self.body_limit {
            steps = steps.apply("HARDENING_BODY_LIMIT", |h| h.body_limit(n));
        }
        if !self.route_body_limits.is_empty() {
            steps = self.route_body_limits(steps);
        }
        if let Some(n) = self.query_param_limit {
            steps = steps.apply("HARDENING_QUERY_PARAM_LIMIT", |h| h.query_param_limit(n));
        }
        if let Some(secs) = self.timeout_secs {
            steps = steps.apply("HARDENING_TIMEOUT_SECS", |h| {
                h.timeout(Duration::from_secs(secs))
            });
        }
        if !self.trusted_proxies.is_empty() {
            steps = steps.apply("HARDENING_TRUSTED_PROXIES", |h| {
                h.trusted_proxies(&self.trusted_proxies)
            });
        }
        if let Some(header) = self.forwarded_header {
            steps = if self.trusted_proxies.is_empty() {
                steps.needs(
                    "HARDENING_FORWARDED_HEADER",
                    "HARDENING_TRUSTED_PROXIES",
                    "the header is read only from them",
                )
            } else {
                steps.apply("HARDENING_FORWARDED_HEADER", |h| {
                    Ok(h.forwarded_header(header))
                })
            };
        }
        steps = self.cors(steps);
        if !self.allowed_hosts.is_empty() {
            steps = steps.apply("HARDENING_ALLOWED_HOSTS", |h| {
                h.allowed_hosts(&self.allowed_hosts)
            });
        }
        if !self.sensitive_query_params.is_empty() {
            steps = steps.apply("HARDENING_SENSITIVE_QUERY_PARAMS", |h| {
                Ok(h.sensitive_query_params(&self.sensitive_query_params))
            });
        }
        if self.log_request_headers == Some(true) {
            steps = steps.apply("HARDENING_LOG_REQUEST_HEADERS", |h| {
                Ok(h.log_request_headers())
            });
        }
        if self.behind_tls == Some(true) {
            steps = steps.apply("HARDENING_BEHIND_TLS", |h| Ok(h.behind_tls()));
        }
        if self.https_redirect == Some(true) {
            #[cfg(feature = "headers")]
            {
                // Both are allowed (TLS in this process; a proxy that always sends HTTPS), but
                // usually a mistake: say what each does.
                let redirect = self.names.of("HARDENING_HTTPS_REDIRECT");
                let behind_tls = self.names.of("HARDENING_BEHIND_TLS");
                let proxies = self.names.of("HARDENING_TRUSTED_PROXIES");
                let hosts = self.names.of("HARDENING_ALLOWED_HOSTS");
                if self.behind_tls == Some(true) {
                    tracing::warn!(
                        target: crate::LOG_TARGET,
                        "{redirect} never redirects with {behind_tls}=true (every request counts \
                         as HTTPS); drop one of them"
                    );
                } else if self.trusted_proxies.is_empty() {
                    tracing::warn!(
                        target: crate::LOG_TARGET,
                        "{redirect} without {proxies}: only TLS ended in this process counts as \
                         HTTPS; behind a TLS-terminating proxy every request would be redirected \
                         again and again (set the proxy's network in {proxies} so that its \
                         X-Forwarded-Proto is believed, or {behind_tls}=true)"
                    );
                }
                // No path exempt: health probes are answered before the redirect, and
                // exempting theirs would serve the app's own routes there (health off or
                // moved; methods other than GET and HEAD) over plain HTTP.
                steps = steps.apply("HARDENING_HTTPS_REDIRECT", |h| {
                    let any_host = hardening_headers::HttpsRedirect::new();
                    Ok(h.https_redirect_named(any_host, (redirect, hosts)))
                });
            }
            #[cfg(not(feature = "headers"))]
            {
                steps = steps.fail(
                    "HARDENING_HTTPS_REDIRECT",
                    "needs hardening-core's `headers` feature",
                );
            }
        }
        if self.rate_limit_per_minute.is_some() || self.rate_limit_burst.is_some() {
            // Named after the variable that was set (the first, if both were).
            let var = if self.rate_limit_per_minute.is_some() {
                "HARDENING_RATE_LIMIT_PER_MINUTE"
            } else {
                "HARDENING_RATE_LIMIT_BURST"
            };
            #[cfg(feature = "ratelimit")]
            {
                use std::num::NonZeroU32;
                // Zero is refused as the environment is read; through serde it gets here.
                let per_minute_set = self.rate_limit_per_minute.unwrap_or(100);
                let per_minute = NonZeroU32::new(per_minute_set);
                // Unset, the burst is the default's 50 or the count a minute if lower: 10 a
                // minute does not let 50 through at once.
                let burst = NonZeroU32::new(
                    self.rate_limit_burst
                        .unwrap_or_else(|| per_minute_set.clamp(1, 50)),
                );
                if per_minute.is_none() {
                    steps = steps.zero("HARDENING_RATE_LIMIT_PER_MINUTE");
                }
                if burst.is_none() {
                    steps = steps.zero("HARDENING_RATE_LIMIT_BURST");
                }
                if let (Some(per_minute), Some(burst)) = (per_minute, burst) {
                    steps = steps.apply(var, |h| {
                        h.rate_limit(crate::hardening::per_ip_rate_limiter(per_minute, burst))
                    });
                }
            }
            #[cfg(not(feature = "ratelimit"))]
            {
                steps = steps.fail(var, "needs hardening-core's `ratelimit` feature");
            }
        }
        if !self.routes_without_rate_limit.is_empty() {
            const ROUTES: &str = "HARDENING_ROUTES_WITHOUT_RATE_LIMIT";
            #[cfg(feature = "ratelimit")]
            {
                steps = steps.apply(ROUTES, |h| {
                    self.routes_without_rate_limit
                        .iter()
                        .try_fold(h, Hardening::allow_route_without_rate_limit)
                });
            }
            #[cfg(not(feature = "ratelimit"))]
            {
                steps = steps.fail(ROUTES, "needs hardening-core's `ratelimit` feature");
            }
        }
        steps
            .finish()
            .map(|hardening| hardening.set_by_config(sources))
    }

    /// The larger body limits of these settings' routes, given after the body limit (the
    /// builder refuses a route's size not above it). Beside a body limit that is wrong (one
    /// that did not read, or 0 through serde), whether a route raises it is not judged, as
    /// fixing that one may do: the routes are checked against no body limit, on a layer
    /// nothing uses (the build fails anyway), quietly.
    fn route_body_limits(&self, steps: Steps) -> Steps {
        const VAR: &str = "HARDENING_ROUTE_BODY_LIMITS";
        // Only through serde or code (the environment refuses 0 as it reads it): the
        // builder's error would not say which route.
        if let Some((route, _)) = self.route_body_limits.iter().find(|(_, bytes)| *bytes == 0) {
            return steps.fail(
                VAR,
                &format!(
                    "the route {route:?} is given 0 bytes, which would refuse every body: give \
                     it more than the body limit, or leave it out"
                ),
            );
        }
        let body_limit_wrong =
            self.body_limit == Some(0) || steps.unread.contains(&"HARDENING_BODY_LIMIT");
        let add_each = |hardening: Hardening| {
            self.route_body_limits
                .iter()
                .try_fold(hardening, |h, (route, bytes)| {
                    h.allow_larger_body(route, *bytes)
                })
        };
        steps.apply(VAR, |hardening| {
            if body_limit_wrong {
                tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::new(), || {
                    add_each(Hardening::strict().dangerous_disable_body_limit())
                })
            } else {
                add_each(hardening)
            }
        })
    }

    /// The CORS policy of these settings, each part checked under its own variable: the
    /// headers and methods also when the origins are wrong or unset (every wrong setting is
    /// named), the credentials only with origins that read.
    fn cors(&self, mut steps: Steps) -> Steps {
        const ORIGINS: &str = "HARDENING_CORS_ORIGINS";
        let listed = !self.cors_origins.is_empty();
        let mut cors = if listed {
            steps.cors_part(ORIGINS, Some(Cors::default()), |_| {
                Cors::allow_origins(&self.cors_origins)
            })
        } else {
            None
        };
        if self.cors_credentials == Some(true) {
            if listed {
                cors = cors.and_then(|c| {
                    steps.cors_part(
                        "HARDENING_CORS_CREDENTIALS",
                        Some(c),
                        Cors::allow_credentials,
                    )
                });
            } else {
                steps = steps.needs(
                    "HARDENING_CORS_CREDENTIALS",
                    ORIGINS,
                    "credentials need listed origins",
                );
            }
        }
        if !self.cors_headers.is_empty() {
            cors = steps.cors_part("HARDENING_CORS_HEADERS", cors, |c| {
                c.allow_headers(&self.cors_headers)
            });
            if !listed {
                steps = steps.needs(
                    "HARDENING_CORS_HEADERS",
                    ORIGINS,
                    "only listed origins send them",
                );
            }
        }
        if !self.cors_methods.is_empty() {
            cors = steps.cors_part("HARDENING_CORS_METHODS", cors, |c| {
                c.allow_methods(crate::cors::methods(&self.cors_methods)?)
            });
            if !listed {
                steps = steps.needs(
                    "HARDENING_CORS_METHODS",
                    ORIGINS,
                    "only listed origins use them",
                );
            }
        }
        match cors {
            Some(cors) => steps.apply(ORIGINS, |h| Ok(h.cors(cors))),
            None => steps,
        }
    }

    /// Each setting these fields set (not left unset: a flag set to `false` is set), with
    /// the name of the variable (or field) that set it. Not the lists a setter adds to: the
    /// sensitive parameters and the routes' body limits and exemptions (no setter replaces
    /// them).
    fn sources(&self) -> Vec<(Setting, &'static str)> {
        let given = [
            (
                self.body_limit.is_some(),
                Setting::BodyLimit,
                "HARDENING_BODY_LIMIT",
            ),
            (
                self.query_param_limit.is_some(),
                Setting::QueryParamLimit,
                "HARDENING_QUERY_PARAM_LIMIT",
            ),
            (
                self.timeout_secs.is_some(),
                Setting::Timeout,
                "HARDENING_TIMEOUT_SECS",
            ),
            (
                !self.trusted_proxies.is_empty(),
                Setting::TrustedProxies,
                "HARDENING_TRUSTED_PROXIES",
            ),
            (
                self.forwarded_header.is_some(),
                Setting::ForwardedHeader,
                "HARDENING_FORWARDED_HEADER",
            ),
            (
                !self.cors_origins.is_empty(),
                Setting::Cors,
                "HARDENING_CORS_ORIGINS",
            ),
            (
                self.cors_credentials.is_some(),
                Setting::Cors,
                "HARDENING_CORS_CREDENTIALS",
            ),
            (
                !self.cors_headers.is_empty(),
                Setting::Cors,
                "HARDENING_CORS_HEADERS",
            ),
            (
                !self.cors_methods.is_empty(),
                Setting::Cors,
                "HARDENING_CORS_METHODS",
            ),
            (
                !self.allowed_hosts.is_empty(),
                Setting::AllowedHosts,
                "HARDENING_ALLOWED_HOSTS",
            ),
            (
                self.log_request_headers.is_some(),
                Setting::LogRequestHeaders,
                "HARDENING_LOG_REQUEST_HEADERS",
            ),
            (
                self.behind_tls.is_some(),
                Setting::BehindTls,
                "HARDENING_BEHIND_TLS",
            ),
            (
                self.https_redirect.is_some(),
                Setting::HttpsRedirect,
                "HARDENING_HTTPS_REDIRECT",
            ),
            (
                self.rate_limit_per_minute.is_some(),
                Setting::RateLimit,
                "HARDENING_RATE_LIMIT_PER_MINUTE",
            ),
            (
                self.rate_limit_burst.is_some(),
                Setting::RateLimit,
                "HARDENING_RATE_LIMIT_BURST",
            ),
        ];
        given
            .into_iter()
            .filter(|(set, _, _)| *set)
            .map(|(_, setting, var)| (setting, self.names.of(var)))
            .collect()
    }
}

/// The entries of a list setting, each trimmed, the empty ones left out; `None` when there
/// are some and every one is empty (`,`, `[" "]`): a list of nothing is a mistake, not "any".
fn entries<'a>(given: impl IntoIterator<Item = &'a str>) -> Option<Vec<String>> {
    let mut any = false;
    let kept: Vec<String> = given
        .into_iter()
        .inspect(|_| any = true)
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(str::to_owned)
        .collect();
    (!kept.is_empty() || !any).then_some(kept)
}

/// A list setting through serde, read as from the environment ([`entries`]): an empty list
/// unsets it.
fn list<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let given = Vec::<String>::deserialize(deserializer)?;
    entries(given.iter().map(String::as_str)).ok_or_else(|| {
        serde::de::Error::custom(
            "the list lists nothing (every entry is empty); give entries, or an empty list to \
             unset it",
        )
    })
}

/// The routes' body limits through serde: a map from route to bytes, read as from the
/// environment (each route trimmed; an empty map unsets them), in the order given, so that a
/// route given twice reaches the builder, which refuses it, rather than one silently kept.
fn route_sizes<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<(String, usize)>, D::Error> {
    struct RouteSizes;
    impl<'de> serde::de::Visitor<'de> for RouteSizes {
        type Value = Vec<(String, usize)>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(
                "a map from each route to its largest body in bytes, such as \
                 {\"/docs/{id}/file\": 20971520}",
            )
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut sizes = Vec::new();
            while let Some((route, bytes)) = map.next_entry::<String, usize>()? {
                sizes.push((route.trim().to_owned(), bytes));
            }
            Ok(sizes)
        }
    }
    deserializer.deserialize_map(RouteSizes)
}

/// The prefix of every variable [`HardeningConfig::from_env`] reads.
const PREFIX: &str = "HARDENING_";

/// The builder steps of [`HardeningConfig::build`], applied in turn. A step that fails is
/// recorded under its setting and the ones after it are still checked (on a fresh preset,
/// as the build has failed anyway), so that one error names every wrong setting. Settings
/// are given by their variables, and named as `names` says.
struct Steps {
    hardening: Hardening,
    errors: Vec<ConfigError>,
    names: Names,
    /// Variables that did not read (see [`needs`](Self::needs)).
    unread: Vec<&'static str>,
}

impl Steps {
    fn new(names: Names, unread: Vec<&'static str>) -> Self {
        Self {
            hardening: Hardening::strict(),
            errors: Vec::new(),
            names,
            unread,
        }
    }

    fn apply(
        self,
        var: &'static str,
        step: impl FnOnce(Hardening) -> Result<Hardening, ConfigError>,
    ) -> Self {
        let name = self.names.of(var);
        let Self {
            hardening,
            mut errors,
            names,
            unread,
        } = self;
        match crate::hardening::set_by_variable(name, || step(hardening)) {
            Ok(hardening) => Self {
                hardening,
                errors,
                names,
                unread,
            },
            Err(e) => {
                errors.push(e.in_setting(name));
                Self {
                    hardening: Hardening::strict(),
                    errors,
                    names,
                    unread,
                }
            }
        }
    }

    /// A setting wrong whatever the builder says (it needs another one, or a feature).
    fn fail(self, var: &'static str, why: &str) -> Self {
        let var = self.names.of(var).to_owned();
        self.error(ConfigError::Env {
            var,
            why: why.to_owned(),
        })
    }

    /// `var` is set without `needed`, `because` it needs it: wrong, unless `needed` was
    /// given and did not read (then that one is named, and fixing it may do).
    fn needs(self, var: &'static str, needed: &'static str, because: &str) -> Self {
        if self.unread.contains(&needed) {
            self
        } else {
            let why = format!("set {} too: {because}", self.names.of(needed));
            self.fail(var, &why)
        }
    }

    /// Checks the part of a CORS policy `var` sets on `cors`, or on the default when a part
    /// before it failed (so that it is checked all the same): the policy with it, unless
    /// this part or one before it failed.
    fn cors_part(
        &mut self,
        var: &'static str,
        cors: Option<Cors>,
        part: impl FnOnce(Cors) -> Result<Cors, ConfigError>,
    ) -> Option<Cors> {
        let failed_before = cors.is_none();
        match part(cors.unwrap_or_default()) {
            Ok(cors) => (!failed_before).then_some(cors),
            Err(e) => {
                self.errors.push(e.in_setting(self.names.of(var)));
                None
            }
        }
    }

    /// A limit of zero, which the builder is never given.
    #[cfg(feature = "ratelimit")]
    fn zero(self, var: &'static str) -> Self {
        let name = self.names.of(var);
        self.error(ConfigError::ZeroLimit(name))
    }

    /// An error found outside the builder's steps.
    fn error(mut self, error: ConfigError) -> Self {
        self.errors.push(error);
        self
    }

    fn finish(self) -> Result<Hardening, ConfigError> {
        ConfigError::all(self.errors).map(|()| self.hardening)
    }
}

/// The error for `name` if `vars` give it more than once with different values: compared
/// as they are read (`true` and `1` are one value), or, those that do not read, as they
/// are written, spaces around them aside.
fn given_differently<K: AsRef<str>, V: AsRef<str>>(
    name: &str,
    vars: &[(K, V)],
) -> Option<ConfigError> {
    let mut values: Vec<(&str, Result<HardeningConfig, &str>)> = Vec::new();
    for (_, value) in vars.iter().filter(|(n, _)| n.as_ref() == name) {
        let value = value.as_ref().trim();
        let mut config = HardeningConfig::default();
        let read = config.set(name, value).map(|()| config).map_err(|_| value);
        if !values.iter().any(|(_, earlier)| *earlier == read) {
            values.push((value, read));
        }
    }
    let quoted: Vec<String> = values.iter().map(|(v, _)| format!("{v:?}")).collect();
    (values.len() > 1).then(|| ConfigError::Env {
        var: name.to_owned(),
        why: format!(
            "given more than once, with different values ({}): keep one",
            quoted.join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_validates() {
        let c = HardeningConfig::from_vars([
            ("HARDENING_BODY_LIMIT", "2048"),
            ("HARDENING_ALLOWED_HOSTS", "a.example.com, .b.example.com,"),
            ("HARDENING_CORS_CREDENTIALS", "false"),
            ("HARDENING_RATE_LIMIT_PER_MINUTE", "600"),
        ])
        .unwrap();
        assert_eq!(c.rate_limit_per_minute, Some(600));
        assert_eq!(c.body_limit, Some(2048));
        assert_eq!(c.allowed_hosts, ["a.example.com", ".b.example.com"]);
        #[cfg(feature = "ratelimit")]
        assert!(c.build().is_ok());
        // Without the feature, a rate limit is a setting that cannot be honoured.
        #[cfg(not(feature = "ratelimit"))]
        assert!(c.build().map(|_| ()).unwrap_err().to_string().contains(
            "HARDENING_RATE_LIMIT_PER_MINUTE: needs hardening-core's `ratelimit` feature"
        ));
    }

    #[test]
    fn errors_name_the_variable() {
        let err = HardeningConfig::from_vars([("HARDENING_TIMOUT_SECS", "5")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("HARDENING_TIMOUT_SECS: unknown setting"),
            "{err}"
        );
        let err = HardeningConfig::from_vars([("HARDENING_TRUSTED_PROXIES", "10.0.0.0/99")])
            .unwrap()
            .build()
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("HARDENING_TRUSTED_PROXIES: invalid network"),
            "{err}"
        );
        let err = HardeningConfig::from_vars([
            ("HARDENING_CORS_ORIGINS", "*"),
            ("HARDENING_CORS_CREDENTIALS", "true"),
        ])
        .unwrap()
        .build()
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("HARDENING_CORS_CREDENTIALS: CORS cannot allow any origin"),
            "{err}"
        );
        // Written in code, or through serde (the environment refuses 0 as it reads it): named
        // by its field.
        let err = HardeningConfig {
            body_limit: Some(0),
            ..HardeningConfig::default()
        }
        .build()
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "body_limit: body_limit must be greater than zero; to turn the limit off, use \
             Hardening::dangerous_disable_body_limit()"
        );
    }

    /// `fn main() -> Result<(), Box<dyn Error>>` prints an error returned with `?` by its
    /// `Debug`: it printed `Setting { setting: "HARDENING_CORS_CREDENTIALS", source:
    /// WildcardWithCredentials }`, which does not say what to change.
    #[test]
    fn debug_says_what_to_change_as_main_prints_it() {
        let err = HardeningConfig::from_vars([
            ("HARDENING_CORS_ORIGINS", "*"),
            ("HARDENING_CORS_CREDENTIALS", "true"),
        ])
        .unwrap()
        .build()
        .map(|_| ())
        .unwrap_err();
        let printed = format!("{:?}", Box::<dyn std::error::Error>::from(err));
        assert!(
            printed.starts_with("HARDENING_CORS_CREDENTIALS: ")
                && printed.contains("list the origins that may send credentials"),
            "main would print: Error: {printed}"
        );
    }

    #[test]
    fn every_wrong_setting_is_named_at_once() {
        let err = HardeningConfig::from_vars([
            ("HARDENING_BODY_LIMIT", "lots"),
            ("HARDENING_ALLOWED_HOSTS", "api.example.com"),
            ("HARDENING_TIMOUT_SECS", "5"),
            ("HARDENING_BEHIND_TLS", "maybe"),
        ])
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("3 settings are wrong:"), "{text}");
        for var in [
            "HARDENING_BODY_LIMIT: expected a whole number",
            "HARDENING_TIMOUT_SECS: unknown setting",
            "HARDENING_BEHIND_TLS: expected true or false",
        ] {
            assert!(text.contains(&format!("\n  - {var}")), "{var} in {text}");
        }

        let err = HardeningConfig::from_vars([
            ("HARDENING_TRUSTED_PROXIES", "10.0.0.0/99"),
            ("HARDENING_CORS_ORIGINS", "https://app.example.com:99999"),
            ("HARDENING_ALLOWED_HOSTS", "http://api.example.com"),
            ("HARDENING_FORWARDED_HEADER", "forwarded"),
            ("HARDENING_TIMEOUT_SECS", "5"),
        ])
        .unwrap()
        .build()
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("3 settings are wrong:"), "{text}");
        for var in [
            "HARDENING_TRUSTED_PROXIES: invalid network",
            "HARDENING_CORS_ORIGINS: invalid CORS origin",
            "HARDENING_ALLOWED_HOSTS: invalid allowed host",
        ] {
            assert!(text.contains(&format!("\n  - {var}")), "{var} in {text}");
        }
        // The header is set with trusted proxies, even if they did not parse.
        assert!(!text.contains("HARDENING_FORWARDED_HEADER"), "{text}");

        // Through serde, zeros that the environment would have refused one by one.
        let err = HardeningConfig {
            body_limit: Some(0),
            rate_limit_per_minute: Some(0),
            rate_limit_burst: Some(0),
            ..HardeningConfig::default()
        }
        .build()
        .unwrap_err();
        let text = err.to_string();
        #[cfg(feature = "ratelimit")]
        {
            assert!(text.starts_with("3 settings are wrong:"), "{text}");
            assert!(
                text.contains("\n  - rate_limit_per_minute must be greater than zero")
                    && text.contains("\n  - rate_limit_burst must be greater than zero"),
                "{text}"
            );
        }
        #[cfg(not(feature = "ratelimit"))]
        assert!(
            text.starts_with("2 settings are wrong:")
                && text.contains("\n  - rate_limit_per_minute: needs hardening-core's"),
            "{text}"
        );
    }

    /// A variable given twice (an env file, or any list of pairs) used to keep its last
    /// value silently: two different values are refused, the same one twice is one value.
    #[test]
    fn a_variable_given_twice_with_different_values_is_an_error() {
        let err = HardeningConfig::from_vars([
            ("HARDENING_TIMEOUT_SECS", "10"),
            ("HARDENING_ALLOWED_HOSTS", "a.example.com"),
            ("HARDENING_TIMEOUT_SECS", "20"),
            ("HARDENING_BEHIND_TLS", "true"),
            ("HARDENING_BEHIND_TLS", "false"),
            ("HARDENING_BEHIND_TLS", " true "),
            ("HARDENING_BODY_LIMIT", "lots"),
        ])
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("3 settings are wrong:"), "{text}");
        for var in [
            r#"HARDENING_TIMEOUT_SECS: given more than once, with different values ("10", "20"): keep one"#,
            r#"HARDENING_BEHIND_TLS: given more than once, with different values ("true", "false"): keep one"#,
            "HARDENING_BODY_LIMIT: expected a whole number",
        ] {
            assert!(text.contains(&format!("\n  - {var}")), "{var} in {text}");
        }
        // The same value twice, spaces around it aside (as it is read), says one thing; a
        // wrong one is named once.
        let c = HardeningConfig::from_vars([
            ("HARDENING_TIMEOUT_SECS", "10"),
            ("HARDENING_TIMEOUT_SECS", " 10 "),
        ]);
        assert_eq!(c.unwrap().timeout_secs, Some(10));
        let err = HardeningConfig::from_vars([
            ("HARDENING_TIMEOUT_SECS", "ten"),
            ("HARDENING_TIMEOUT_SECS", "ten"),
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("HARDENING_TIMEOUT_SECS: expected a whole number"),
            "{err}"
        );
        // A setting that needs one given twice is not blamed: keeping one may do.
        let err = HardeningConfig::from_vars([
            ("HARDENING_CORS_ORIGINS", "https://a.example.com"),
            ("HARDENING_CORS_ORIGINS", "https://b.example.com"),
            ("HARDENING_CORS_CREDENTIALS", "true"),
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("HARDENING_CORS_ORIGINS: given more than once"),
            "{err}"
        );
        // The environment itself can hold a name twice (`execve` takes any list).
        let os = |name: &str, value: &str| (name.into(), value.into());
        let err = HardeningConfig::from_os_vars([
            os("HARDENING_BODY_LIMIT", "1024"),
            os("HARDENING_BODY_LIMIT", "2048"),
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("HARDENING_BODY_LIMIT: given more than once"),
            "{err}"
        );
        // Names are compared as they are read, case and all: another case is another
        // (unknown) name, not a second value.
        let err = HardeningConfig::from_vars([
            ("HARDENING_TIMEOUT_SECS", "10"),
            ("hardening_timeout_secs", "20"),
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("hardening_timeout_secs: unknown setting"),
            "{err}"
        );
    }

    /// `from_env()?.build()?` used to name the variables that did not read, and only once
    /// they were fixed, those the build refuses.
    #[test]
    fn errors_in_reading_and_in_building_are_named_at_once() {
        let err = HardeningConfig::from_vars([
            ("HARDENING_TIMEOUT_SECS", "ten"),
            ("HARDENING_TRUSTED_PROXIES", "10.0.0.0/99"),
            ("HARDENING_ALLOWED_HOSTS", "*.example.com"),
        ])
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("3 settings are wrong:"), "{text}");
        for var in [
            "HARDENING_TIMEOUT_SECS: expected a whole number",
            "HARDENING_TRUSTED_PROXIES: invalid network",
            "HARDENING_ALLOWED_HOSTS: invalid allowed host",
        ] {
            assert!(text.contains(&format!("\n  - {var}")), "{var} in {text}");
        }
        // A setting that needs one that did not read is not blamed: fixing that one may do.
        let err = HardeningConfig::from_vars([
            ("HARDENING_CORS_ORIGINS", ","),
            ("HARDENING_CORS_CREDENTIALS", "true"),
            ("HARDENING_TRUSTED_PROXIES", " , "),
            ("HARDENING_FORWARDED_HEADER", "forwarded"),
        ])
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("2 settings are wrong:"), "{text}");
        assert!(!text.contains("- HARDENING_CORS_CREDENTIALS"), "{text}");
        assert!(!text.contains("- HARDENING_FORWARDED_HEADER"), "{text}");
    }

    /// A build error is left out for a variable that did not read only when the message is
    /// ours and names it as needed; a value that merely spells its name (an env file's
    /// unexpanded `${HARDENING_TIMEOUT_SECS}`) is still named, else fixing the one that did
    /// not read would reveal it only then.
    #[test]
    fn a_value_that_spells_a_variable_that_did_not_read_is_still_named() {
        let err = HardeningConfig::from_vars([
            ("HARDENING_TIMEOUT_SECS", "ten"),
            ("HARDENING_ALLOWED_HOSTS", "${HARDENING_TIMEOUT_SECS}"),
        ])
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("\n  - HARDENING_ALLOWED_HOSTS: invalid allowed host"),
            "the allowed host is not named: {text}"
        );
    }

    /// The build run to name the settings it refuses, when some did not read, logs nothing:
    /// no loosening of a layer that is never built.
    #[test]
    fn a_config_that_does_not_read_warns_of_no_loosening() {
        let vars = [
            ("HARDENING_TIMEOUT_SECS", "ten"),
            ("HARDENING_BODY_LIMIT", "10485760"),
        ];
        let lines = crate::access_log::tests::json_lines("warn", || {
            assert!(HardeningConfig::from_vars(vars).is_err());
        });
        assert_eq!(lines, Vec::<serde_json::Value>::new());
        // The same body limit, read and built, is a loosening.
        let lines = crate::access_log::tests::json_lines("warn", || {
            let config = HardeningConfig::from_vars([vars[1]]).unwrap();
            drop(config.build().unwrap());
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
    }

    #[cfg(unix)]
    #[test]
    fn errors_from_reading_and_parsing_make_one_flat_list() {
        use std::ffi::OsString;
        use std::os::unix::ffi::OsStringExt;
        let var =
            |name: &str, value: &[u8]| (OsString::from(name), OsString::from_vec(value.to_vec()));
        let err = HardeningConfig::from_os_vars([
            var("HARDENING_BODY_LIMIT", b"\xff"),
            var("HARDENING_TIMEOUT_SECS", b"soon"),
            var("HARDENING_BEHIND_TLS", b"maybe"),
        ])
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("3 settings are wrong:"), "{text}");
        assert_eq!(text.matches("settings are wrong").count(), 1, "{text}");
    }

    #[test]
    fn a_list_that_lists_nothing_is_an_error_and_empty_is_unset() {
        for var in [
            "HARDENING_ALLOWED_HOSTS",
            "HARDENING_CORS_ORIGINS",
            "HARDENING_TRUSTED_PROXIES",
            "HARDENING_SENSITIVE_QUERY_PARAMS",
        ] {
            for nothing in [",", " , ,"] {
                let err = HardeningConfig::from_vars([(var, nothing)]).unwrap_err();
                assert!(
                    err.to_string()
                        .starts_with(&format!("{var}: lists nothing")),
                    "{err}"
                );
            }
            let c = HardeningConfig::from_vars([(var, "")]).unwrap();
            assert!(c.build().is_ok(), "{var} empty");
        }
        let c = HardeningConfig::from_vars([("HARDENING_ALLOWED_HOSTS", "a.example.com, ,")]);
        assert_eq!(c.unwrap().allowed_hosts, ["a.example.com"]);
    }

    #[test]
    fn numbers_out_of_range_are_errors() {
        for (var, value) in [
            ("HARDENING_RATE_LIMIT_PER_MINUTE", "4294967396"),
            ("HARDENING_RATE_LIMIT_BURST", "5000000000"),
            ("HARDENING_BODY_LIMIT", "-1"),
            ("HARDENING_TIMEOUT_SECS", "99999999999999999999"),
            ("HARDENING_RATE_LIMIT_PER_MINUTE", "0"),
            ("HARDENING_BODY_LIMIT", "0"),
            ("HARDENING_QUERY_PARAM_LIMIT", "0"),
            ("HARDENING_TIMEOUT_SECS", "0"),
            ("HARDENING_TIMEOUT_SECS", "+5"),
            ("HARDENING_BODY_LIMIT", "+1024"),
        ] {
            let err = HardeningConfig::from_vars([(var, value)]).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("{var}: expected a whole number from 1 to")),
                "{err}"
            );
        }
        let c = HardeningConfig::from_vars([("HARDENING_RATE_LIMIT_BURST", "4294967295")]);
        assert_eq!(c.unwrap().rate_limit_burst, Some(u32::MAX));
    }

    #[test]
    fn forwarded_header_setting() {
        let c = HardeningConfig::from_vars([
            ("HARDENING_TRUSTED_PROXIES", "10.0.0.0/8"),
            ("HARDENING_FORWARDED_HEADER", "Forwarded"),
        ])
        .unwrap();
        assert_eq!(c.forwarded_header, Some(ForwardedHeader::Forwarded));
        assert!(c.build().is_ok());
        let err =
            HardeningConfig::from_vars([("HARDENING_FORWARDED_HEADER", "x-real-ip")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("HARDENING_FORWARDED_HEADER: invalid forwarding header"),
            "{err}"
        );
        let err = HardeningConfig::from_vars([("HARDENING_FORWARDED_HEADER", "forwarded")])
            .unwrap()
            .build()
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("HARDENING_FORWARDED_HEADER: set HARDENING_TRUSTED_PROXIES"),
            "{err}"
        );
        let c: HardeningConfig =
            serde_json::from_str(r#"{"forwarded_header": "x-forwarded-for"}"#).unwrap();
        assert_eq!(c.forwarded_header, Some(ForwardedHeader::XForwardedFor));
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_variables_are_errors() {
        use std::ffi::OsString;
        use std::os::unix::ffi::OsStringExt;
        let var = |name: &[u8], value: &[u8]| {
            (
                OsString::from_vec(name.to_vec()),
                OsString::from_vec(value.to_vec()),
            )
        };
        let err =
            HardeningConfig::from_os_vars([var(b"HARDENING_ALLOWED_HOSTS", b"a\xff")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "HARDENING_ALLOWED_HOSTS: the value is not valid UTF-8"
        );
        let err = HardeningConfig::from_os_vars([var(b"HARDENING_\xffX", b"1")]).unwrap_err();
        assert!(
            err.to_string().contains("the name is not valid UTF-8"),
            "{err}"
        );
        // Other variables are none of its business.
        let c = HardeningConfig::from_os_vars([var(b"OTHER\xff", b"\xff")]).unwrap();
        assert_eq!(c, HardeningConfig::default());
    }

    #[test]
    fn serde_formats() {
        let c: HardeningConfig =
            serde_json::from_str(r#"{"timeout_secs": 5, "cors_origins": ["https://x.example"]}"#)
                .unwrap();
        assert_eq!(c.timeout_secs, Some(5));
        assert!(serde_json::from_str::<HardeningConfig>(r#"{"timeout": 5}"#).is_err());
    }

    #[test]
    fn every_variable_is_a_serde_field_and_every_field_a_variable() {
        let fields: Vec<String> = ENV_VARS
            .iter()
            .map(|(name, _)| name.trim_start_matches(PREFIX).to_ascii_lowercase())
            .collect();
        // serde names the fields it knows when it meets one it does not.
        let err = serde_json::from_str::<HardeningConfig>(r#"{"no_such_field": 1}"#)
            .unwrap_err()
            .to_string();
        let mut known: Vec<&str> = err.split('`').skip(3).step_by(2).collect();
        let mut fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        // And errors name each by its field when the config was not read from the
        // environment.
        let named: Vec<(&str, &str)> = ENV_VARS
            .iter()
            .zip(&fields)
            .map(|((var, _), field)| (*var, *field))
            .collect();
        assert_eq!(named, FIELDS);
        known.sort_unstable();
        fields.sort_unstable();
        assert_eq!(known, fields, "{err}");
    }

    #[test]
    fn unknown_names_in_any_case_are_errors_with_a_guess() {
        use std::ffi::OsString;
        let err = HardeningConfig::from_os_vars([(
            OsString::from("hardening_body_limit"),
            OsString::from("10"),
        )])
        .unwrap_err();
        assert_eq!(
            err.to_string().split(';').next(),
            Some("hardening_body_limit: unknown setting (did you mean HARDENING_BODY_LIMIT?)"),
            "{err}"
        );
        for (typo, guess) in [
            ("HARDENING_ALLOWED_HOST", Some("HARDENING_ALLOWED_HOSTS")),
            ("HARDENING_TIMOUT_SECS", Some("HARDENING_TIMEOUT_SECS")),
            (
                "HARDENING_RATELIMIT_BURST",
                Some("HARDENING_RATE_LIMIT_BURST"),
            ),
            ("HARDENING_BODY_LIMIT ", Some("HARDENING_BODY_LIMIT")),
            ("HARDENING_", None),
            ("HARDENING_MAX_UPLOAD", None),
        ] {
            let err = HardeningConfig::from_vars([(typo, "1")])
                .unwrap_err()
                .to_string();
            let head = err.split(';').next().unwrap_or_default();
            match guess {
                Some(guess) => {
                    assert!(head.ends_with(&format!("(did you mean {guess}?)")), "{err}")
                }
                None => assert!(head.ends_with("unknown setting"), "{err}"),
            }
        }
        // Not ours.
        let c = HardeningConfig::from_os_vars([(OsString::from("HARDEN"), OsString::from("x"))]);
        assert_eq!(c.unwrap(), HardeningConfig::default());
    }

    #[test]
    fn value_errors_quote_the_value() {
        for (var, value, says) in [
            (
                "HARDENING_TIMEOUT_SECS",
                "30s",
                r#"(digits only, no unit), not "30s""#,
            ),
            ("HARDENING_BODY_LIMIT", "1_000", r#"not "1_000""#),
            (
                "HARDENING_BODY_LIMIT",
                " ",
                "not an empty value (unset it to keep the default)",
            ),
            (
                "HARDENING_BEHIND_TLS",
                "on",
                r#"expected true or false (1 or 0, yes or no are read too), not "on""#,
            ),
        ] {
            let err = HardeningConfig::from_vars([(var, value)])
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(var) && err.ends_with(says), "{err}");
        }
    }

    /// A config from a file (any serde format) was refused in the names of the
    /// `HARDENING_*` variables, which its user never wrote: its errors and loosening
    /// warnings name its fields, as the file spells them.
    #[test]
    fn a_deserialized_config_is_refused_in_the_names_of_its_fields() {
        let built = |json: serde_json::Value| {
            let config: HardeningConfig = serde_json::from_value(json).unwrap();
            config.build().map(|_| ()).unwrap_err().to_string()
        };
        let text = built(serde_json::json!({
            "body_limit": 0,
            "trusted_proxies": ["10.0.0.0/99"],
            "cors_credentials": true,
            "rate_limit_burst": 0,
        }));
        for setting in [
            "body_limit: body_limit must be greater than zero",
            "trusted_proxies: invalid network",
            "cors_credentials: set cors_origins too",
        ] {
            assert!(
                text.contains(&format!("\n  - {setting}")),
                "{setting} in {text}"
            );
        }
        #[cfg(feature = "ratelimit")]
        assert!(
            text.contains("\n  - rate_limit_burst must be greater than zero"),
            "{text}"
        );
        assert!(!text.contains("HARDENING_"), "{text}");
        let text = built(serde_json::json!({"forwarded_header": "forwarded", "timeout_secs": 0}));
        for setting in [
            "timeout_secs: timeout must be greater than zero",
            "forwarded_header: set trusted_proxies too",
        ] {
            assert!(
                text.contains(&format!("\n  - {setting}")),
                "{setting} in {text}"
            );
        }
        assert!(!text.contains("HARDENING_"), "{text}");
        let lines = crate::access_log::tests::json_lines("warn", || {
            let config: HardeningConfig =
                serde_json::from_value(serde_json::json!({"timeout_secs": 120})).unwrap();
            drop(config.build().unwrap());
        });
        let text = serde_json::Value::from(lines).to_string();
        assert!(
            text.contains("hardening loosened by timeout_secs: "),
            "{text}"
        );
        assert!(!text.contains("HARDENING_"), "{text}");
        #[cfg(feature = "headers")]
        {
            let lines = crate::access_log::tests::json_lines("warn", || {
                let config: HardeningConfig =
                    serde_json::from_value(serde_json::json!({"https_redirect": true})).unwrap();
                drop(config.build().unwrap());
            });
            let text = serde_json::Value::from(lines).to_string();
            assert!(
                text.contains("https_redirect without trusted_proxies: "),
                "{text}"
            );
            assert!(!text.contains("HARDENING_"), "{text}");
        }
    }

    /// The forwarding header was read from the environment in any case (`Forwarded`, as the
    /// header is written) but through serde only in lower case: both read it alike, and
    /// both say which values they take.
    #[test]
    fn the_forwarded_header_reads_alike_from_the_environment_and_through_serde() {
        use ForwardedHeader::{Forwarded, XForwardedFor};
        for (spelling, header) in [
            ("forwarded", Some(Forwarded)),
            ("Forwarded", Some(Forwarded)),
            (" FORWARDED ", Some(Forwarded)),
            ("X-Forwarded-For", Some(XForwardedFor)),
            ("x-real-ip", None),
            ("forwarded-for", None),
        ] {
            let from_env = HardeningConfig::from_vars([("HARDENING_FORWARDED_HEADER", spelling)])
                .map(|c| c.forwarded_header);
            let from_serde = serde_json::from_value::<HardeningConfig>(
                serde_json::json!({ "forwarded_header": spelling }),
            )
            .map(|c| c.forwarded_header);
            assert_eq!(
                from_env.clone().ok().flatten(),
                header,
                "{spelling:?}: {from_env:?}"
            );
            assert_eq!(
                from_serde.as_ref().ok().copied().flatten(),
                header,
                "{spelling:?} through serde: {from_serde:?}"
            );
            if header.is_none() {
                for err in [
                    from_env.unwrap_err().to_string(),
                    from_serde.unwrap_err().to_string(),
                ] {
                    assert!(
                        err.contains("expected x-forwarded-for or forwarded"),
                        "{err}"
                    );
                }
            }
        }
    }

    /// A list from the environment had each entry trimmed and its empty entries left out;
    /// through serde the entries were taken as written (`" example.com"` refused as no host,
    /// `" token"` redacting nothing): both read a list alike, and both refuse one that
    /// lists nothing.
    #[test]
    fn lists_read_alike_from_the_environment_and_through_serde() {
        for (var, value) in [
            ("HARDENING_TRUSTED_PROXIES", " 10.0.0.0/8 , ,fd00::/8"),
            (
                "HARDENING_CORS_ORIGINS",
                " https://a.example.com,https://b.example.com ",
            ),
            (
                "HARDENING_ALLOWED_HOSTS",
                " example.com, , .api.example.com ",
            ),
            ("HARDENING_SENSITIVE_QUERY_PARAMS", " token ,x-api-key"),
        ] {
            let field = Names::Fields.of(var);
            let entries: Vec<&str> = value.split(',').collect();
            let from_env = HardeningConfig::from_vars([(var, value)]).unwrap();
            let from_serde =
                serde_json::from_value::<HardeningConfig>(serde_json::json!({ field: entries }));
            assert_eq!(
                from_serde.as_ref().ok(),
                Some(&from_env),
                "{field} = {entries:?}: {from_serde:?}"
            );
            assert!(from_env.build().is_ok(), "{var}={value:?}");

            let err = HardeningConfig::from_vars([(var, " , ")]).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("{var}: lists nothing")),
                "{err}"
            );
            let err =
                serde_json::from_value::<HardeningConfig>(serde_json::json!({ field: [" ", ""] }))
                    .unwrap_err();
            assert!(err.to_string().contains("lists nothing"), "{field}: {err}");
            let unset = serde_json::from_value::<HardeningConfig>(serde_json::json!({ field: [] }));
            assert_eq!(unset.ok(), Some(HardeningConfig::default()), "{field}");
        }
    }

    /// The request headers and methods cross-origin callers may use had no variable. They
    /// are refused as `Cors` refuses them, each error naming its variable (also beside wrong
    /// origins), and, as `HARDENING_CORS_CREDENTIALS` is, without `HARDENING_CORS_ORIGINS`.
    #[test]
    fn cors_headers_and_methods_are_checked_under_their_variables() {
        let refused = |vars: &[(&str, &str)]| {
            HardeningConfig::from_vars(vars.iter().copied())
                .and_then(HardeningConfig::build)
                .map(|_| ())
                .unwrap_err()
                .to_string()
        };
        for (var, value, says) in [
            (
                "HARDENING_CORS_HEADERS",
                "authorization, *",
                "HARDENING_CORS_HEADERS: CORS header lists take header names, not \"*\"",
            ),
            (
                "HARDENING_CORS_HEADERS",
                "x trace",
                "HARDENING_CORS_HEADERS: invalid header name \"x trace\"",
            ),
            (
                "HARDENING_CORS_METHODS",
                "GET, *",
                "HARDENING_CORS_METHODS: invalid method \"*\": CORS method lists take",
            ),
            (
                "HARDENING_CORS_METHODS",
                "GET POST",
                "HARDENING_CORS_METHODS: invalid method \"GET POST\"",
            ),
        ] {
            let origins = ("HARDENING_CORS_ORIGINS", "https://app.example.com");
            let err = refused(&[origins, (var, value)]);
            assert!(err.starts_with(says), "{err}");
            let err = refused(&[("HARDENING_CORS_ORIGINS", "app.example.com"), (var, value)]);
            assert!(
                err.contains("\n  - HARDENING_CORS_ORIGINS: ")
                    && err.contains(&format!("\n  - {says}")),
                "{err}"
            );
        }
        for var in ["HARDENING_CORS_HEADERS", "HARDENING_CORS_METHODS"] {
            let err = refused(&[(var, "put")]);
            assert!(
                err.starts_with(&format!("{var}: set HARDENING_CORS_ORIGINS too")),
                "{err}"
            );
        }
    }

    /// A variable given twice in two spellings of one value (`true` and `1`) was refused as
    /// given with different values: values are compared as they are read.
    #[test]
    fn a_variable_given_twice_in_two_spellings_of_one_value_is_one_value() {
        for (var, one, other) in [
            ("HARDENING_BEHIND_TLS", "true", "1"),
            ("HARDENING_BEHIND_TLS", "TRUE", "yes"),
            ("HARDENING_CORS_CREDENTIALS", "0", "false"),
            ("HARDENING_CORS_CREDENTIALS", "", " "),
            ("HARDENING_FORWARDED_HEADER", "Forwarded", "forwarded"),
            ("HARDENING_TIMEOUT_SECS", "10", "010"),
            (
                "HARDENING_ALLOWED_HOSTS",
                "a.example.com, b.example.com",
                "a.example.com,b.example.com,",
            ),
        ] {
            let once = HardeningConfig::from_vars([(var, one)]).unwrap();
            let twice = HardeningConfig::from_vars([(var, one), (var, other)]);
            assert_eq!(
                twice.as_ref().ok(),
                Some(&once),
                "{var} given as {one:?} and {other:?}: {twice:?}"
            );
        }
    }

    /// What building `vars` refuses, as one message (`built` when it builds).
    fn refusal(vars: &[(&str, &str)]) -> String {
        match HardeningConfig::from_vars(vars.iter().copied()).and_then(HardeningConfig::build) {
            Ok(_) => "built".to_owned(),
            Err(err) => err.to_string(),
        }
    }

    /// `allow_route_without_rate_limit` had no variable: a service configured from the
    /// environment could not leave a webhook out of the limit. The routes are a list, read
    /// as the other lists are, through serde too, each applied by the builder (which logs
    /// the loosening under the variable), and refused under the variable's name.
    #[test]
    fn routes_without_rate_limit_are_read_as_a_list_and_applied() {
        const VAR: &str = "HARDENING_ROUTES_WITHOUT_RATE_LIMIT";
        let from_env =
            HardeningConfig::from_vars([(VAR, " /webhooks/stripe , ,/assets/{*path},")]).unwrap();
        let from_serde: HardeningConfig = serde_json::from_str(
            r#"{"routes_without_rate_limit": [" /webhooks/stripe", "", "/assets/{*path}"]}"#,
        )
        .unwrap();
        assert_eq!(from_env, from_serde);
        assert_ne!(from_env, HardeningConfig::default());
        for nothing in [",", " , ,"] {
            let err = HardeningConfig::from_vars([(VAR, nothing)]).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("{VAR}: lists nothing")),
                "{err}"
            );
        }
        assert_eq!(
            HardeningConfig::from_vars([(VAR, "")]).unwrap(),
            HardeningConfig::default()
        );
        #[cfg(feature = "ratelimit")]
        {
            let lines = crate::access_log::tests::json_lines("warn", || {
                drop(from_env.build().unwrap());
            });
            let text = serde_json::Value::from(lines).to_string();
            for route in ["/webhooks/stripe", "/assets/{*path}"] {
                assert!(
                    text.contains(&format!(
                        "hardening loosened by {VAR}: requests to route {route} are not rate \
                         limited"
                    )),
                    "{route}: {text}"
                );
            }
            let err = refusal(&[(VAR, "/webhooks/stripe, webhooks/github")]);
            assert!(
                err.starts_with(&format!(
                    "{VAR}: invalid route \"webhooks/github\" for allow_route_without_rate_limit: \
                     a route starts with `/`"
                )),
                "{err}"
            );
            let err = refusal(&[(VAR, "/webhooks/{provider}, /webhooks/{name}")]);
            assert!(
                err.starts_with(&format!("{VAR}: invalid route \"/webhooks/{{name}}\""))
                    && err.contains("given before: give each route once"),
                "{err}"
            );
            let err = from_serde_json(r#"{"routes_without_rate_limit": ["/a b"]}"#);
            assert!(
                err.starts_with("routes_without_rate_limit: invalid route \"/a b\""),
                "{err}"
            );
        }
        #[cfg(not(feature = "ratelimit"))]
        assert_eq!(
            refusal(&[(VAR, "/webhooks/stripe")]),
            format!("{VAR}: needs hardening-core's `ratelimit` feature")
        );
    }

    /// What building the config `json` describes refuses.
    fn from_serde_json(json: &str) -> String {
        let config: HardeningConfig = serde_json::from_str(json).unwrap();
        config.build().map(|_| ()).unwrap_err().to_string()
    }

    /// `allow_larger_body` had no variable: a service configured from the environment could
    /// not take a larger upload on one route. The variable takes `route=bytes` pairs (split
    /// at the last `=`: a route may hold one), a file a map from route to bytes.
    #[test]
    fn route_body_limits_are_read_as_route_bytes_pairs() {
        const VAR: &str = "HARDENING_ROUTE_BODY_LIMITS";
        let from_env = HardeningConfig::from_vars([(
            VAR,
            " /docs/{id}/file=20971520 , , /sign/a=b = 02097152,",
        )])
        .unwrap();
        let from_serde: HardeningConfig = serde_json::from_str(
            r#"{"route_body_limits": {"/docs/{id}/file": 20971520, " /sign/a=b ": 2097152}}"#,
        )
        .unwrap();
        assert_eq!(from_env, from_serde);
        assert_ne!(from_env, HardeningConfig::default());
        // Order is kept, as a list's is.
        let reversed: HardeningConfig = serde_json::from_str(
            r#"{"route_body_limits": {"/sign/a=b": 2097152, "/docs/{id}/file": 20971520}}"#,
        )
        .unwrap();
        assert_ne!(from_env, reversed);
        let lines = crate::access_log::tests::json_lines("warn", || {
            drop(from_env.build().unwrap());
        });
        let text = serde_json::Value::from(lines).to_string();
        assert!(
            text.contains(&format!(
                "hardening loosened by {VAR}: request bodies up to 20971520 bytes are accepted \
                 on route /docs/{{id}}/file (1048576 bytes elsewhere)"
            )),
            "{text}"
        );
        // Empty is unset; an empty map too.
        assert_eq!(
            HardeningConfig::from_vars([(VAR, " ")]).unwrap(),
            HardeningConfig::default()
        );
        let unset: HardeningConfig = serde_json::from_str(r#"{"route_body_limits": {}}"#).unwrap();
        assert_eq!(unset, HardeningConfig::default());
        // A file's list of pairs is not the shape: the error says which is.
        let err = serde_json::from_str::<HardeningConfig>(
            r#"{"route_body_limits": ["/docs/{id}/file=20971520"]}"#,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("a map from each route to its largest body in bytes"),
            "{err}"
        );
    }

    #[test]
    fn route_body_limits_that_do_not_read_are_errors_naming_the_variable() {
        const VAR: &str = "HARDENING_ROUTE_BODY_LIMITS";
        let max = usize::MAX;
        for (value, says) in [
            (
                ",",
                "lists nothing; give comma-separated entries".to_owned(),
            ),
            (
                "/docs/{id}/file",
                "expected comma-separated route=bytes pairs (such as \
                 /docs/{id}/file=20971520), not \"/docs/{id}/file\""
                    .to_owned(),
            ),
            (
                "/upload=2097152, /docs/{id}/file:20971520",
                "expected comma-separated route=bytes pairs (such as \
                 /docs/{id}/file=20971520), not \"/docs/{id}/file:20971520\""
                    .to_owned(),
            ),
            (
                "/upload=20M",
                format!(
                    "in \"/upload=20M\": expected a whole number from 1 to {max} (digits only, \
                     no unit), not \"20M\""
                ),
            ),
            (
                "/upload = +5",
                format!(
                    "in \"/upload = +5\": expected a whole number from 1 to {max} (digits \
                     only, no unit), not \"+5\""
                ),
            ),
            (
                "/upload=0",
                format!(
                    "expected a whole number from 1 to {max} (digits only, no unit), not \"0\""
                ),
            ),
            (
                "/upload=-1",
                format!(
                    "expected a whole number from 1 to {max} (digits only, no unit), not \"-1\""
                ),
            ),
            (
                "/upload=99999999999999999999999",
                format!("expected a whole number from 1 to {max} (digits only, no unit)"),
            ),
            (
                "/upload=",
                format!(
                    "in \"/upload=\": expected a whole number from 1 to {max} after `=`, not an \
                     empty value (leave the route out to keep the body limit)"
                ),
            ),
        ] {
            let err = HardeningConfig::from_vars([(VAR, value)])
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(&format!("{VAR}: ")) && err.contains(&says),
                "{value:?}: {err}"
            );
        }
        // Given twice in two spellings of one value: one value.
        let once = HardeningConfig::from_vars([(VAR, "/upload=2097152")]).unwrap();
        let twice =
            HardeningConfig::from_vars([(VAR, "/upload=2097152"), (VAR, " /upload = 02097152 ,")]);
        assert_eq!(twice.ok(), Some(once));
        let err = HardeningConfig::from_vars([(VAR, "/upload=2097152"), (VAR, "/upload=4194304")])
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("{VAR}: given more than once")),
            "{err}"
        );
    }

    /// The routes' sizes are applied after HARDENING_BODY_LIMIT, whatever the order the
    /// variables come in: a size not above it is refused under the routes' variable, and
    /// one above the variable's body limit (not the default's) is taken.
    #[test]
    fn route_body_limits_are_judged_against_the_body_limit_set() {
        const VAR: &str = "HARDENING_ROUTE_BODY_LIMITS";
        let err = refusal(&[(VAR, "/upload=2048"), ("HARDENING_BODY_LIMIT", "4096")]);
        assert_eq!(
            err,
            format!(
                "{VAR}: allow_larger_body(\"/upload\", 2048) does not raise the body limit of \
                 4096 bytes: give the route more, or leave it to body_limit; to lower one \
                 route's limit, put axum's DefaultBodyLimit::max on that route"
            )
        );
        assert_eq!(
            refusal(&[(VAR, "/upload=8192"), ("HARDENING_BODY_LIMIT", "4096")]),
            "built"
        );
        // Below the default, with no body limit set: refused against the default.
        let err = refusal(&[(VAR, "/upload=8192")]);
        assert!(
            err.starts_with(&format!(
                "{VAR}: allow_larger_body(\"/upload\", 8192) does not raise the body limit of \
                 1048576 bytes"
            )),
            "{err}"
        );
        // Above the default but not above the body limit set: the routes are named, not the
        // body limit (as they would be, were the routes applied first).
        let err = refusal(&[
            (VAR, "/upload=2097152"),
            ("HARDENING_BODY_LIMIT", "10485760"),
        ]);
        assert!(
            err.starts_with(&format!(
                "{VAR}: allow_larger_body(\"/upload\", 2097152) does not raise the body limit \
                 of 10485760 bytes"
            )),
            "{err}"
        );
        // Through serde, named by the field.
        let err =
            from_serde_json(r#"{"body_limit": 4096, "route_body_limits": {"/upload": 2048}}"#);
        assert!(
            err.starts_with("route_body_limits: allow_larger_body(\"/upload\", 2048) does not"),
            "{err}"
        );
        let err = from_serde_json(r#"{"route_body_limits": {"/upload": 0}}"#);
        assert_eq!(
            err,
            "route_body_limits: the route \"/upload\" is given 0 bytes, which would refuse every \
             body: give it more than the body limit, or leave it out"
        );
    }

    /// Beside a body limit that is wrong, whether a route raises it is not judged (fixing that
    /// one may do), but the routes are checked all the same: every wrong setting is named.
    #[test]
    fn route_body_limits_beside_a_wrong_body_limit_name_only_what_is_wrong() {
        const VAR: &str = "HARDENING_ROUTE_BODY_LIMITS";
        let err = refusal(&[("HARDENING_BODY_LIMIT", "lots"), (VAR, "/upload=2048")]);
        assert!(
            err.starts_with("HARDENING_BODY_LIMIT: expected a whole number"),
            "{err}"
        );
        let err = refusal(&[
            ("HARDENING_BODY_LIMIT", "lots"),
            (VAR, "/upload=2048, upload=4096"),
            ("HARDENING_TIMEOUT_SECS", "0"),
            ("HARDENING_ROUTES_WITHOUT_RATE_LIMIT", "/a b"),
        ]);
        #[cfg(feature = "ratelimit")]
        let also = "HARDENING_ROUTES_WITHOUT_RATE_LIMIT: invalid route \"/a b\"";
        #[cfg(not(feature = "ratelimit"))]
        let also = "HARDENING_ROUTES_WITHOUT_RATE_LIMIT: needs hardening-core's `ratelimit`";
        assert!(err.starts_with("4 settings are wrong:"), "{err}");
        for setting in [
            "HARDENING_BODY_LIMIT: expected a whole number",
            &format!("{VAR}: invalid route \"upload\" for allow_larger_body"),
            "HARDENING_TIMEOUT_SECS: expected a whole number",
            also,
        ] {
            assert!(
                err.contains(&format!("\n  - {setting}")),
                "{setting} in {err}"
            );
        }
        let err = refusal(&[
            ("HARDENING_BODY_LIMIT", "1024"),
            ("HARDENING_BODY_LIMIT", "2048"),
            (VAR, "/upload=1536, /docs/{id}=2097152, /docs/{doc}=4194304"),
        ]);
        assert!(err.starts_with("2 settings are wrong:"), "{err}");
        assert!(
            err.contains(&format!("\n  - {VAR}: invalid route \"/docs/{{doc}}\""))
                && err.contains("given before"),
            "{err}"
        );
        // Through serde, a zero body limit is refused by the build: the routes are not judged
        // against it either.
        let err = from_serde_json(r#"{"body_limit": 0, "route_body_limits": {"/upload": 2048}}"#);
        assert!(
            err.starts_with("body_limit: body_limit must be greater than zero"),
            "{err}"
        );
    }
}
