//! The header policy: presets, per-header settings, validation, and the compiled set.

use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;

use crate::cookies::CookiePolicy;
use crate::csp::CompiledCsp;
use crate::request_headers::RequestHeaders;
use crate::{ConfigError, Csp, CspNonce, warn_loosened};

/// Identifying headers removed from every response.
const IDENTIFYING: &[&str] = &[
    "server",
    "x-powered-by",
    "x-aspnet-version",
    "x-aspnetmvc-version",
    "x-runtime",
    "x-generator",
];

/// The preset's HSTS `max-age`: two years, as hstspreload.org asks.
const HSTS_MAX_AGE: u64 = 63_072_000;

/// The preset's `Permissions-Policy`: powerful features denied to every origin.
const PERMISSIONS_POLICY: &str = "accelerometer=(), camera=(), display-capture=(), \
    geolocation=(), gyroscope=(), magnetometer=(), microphone=(), midi=(), payment=(), usb=()";

/// The preset's headers that have no setting of their own, with the preset's values:
/// [`HeaderPolicy::header`] sets them only to values at least as strict
/// ([`at_least_as_strict`]), [`HeaderPolicy::dangerous_header`] to any value.
const STRICT_FIXED: &[(&str, &str)] = &[
    ("x-content-type-options", "nosniff"),
    ("permissions-policy", PERMISSIONS_POLICY),
    ("x-dns-prefetch-control", "off"),
    ("x-permitted-cross-domain-policies", "none"),
];

/// A preset header with a setting of its own that takes one of the values the standard
/// defines, every one but the preset's weaker than it.
struct Choice {
    /// The header name, lower-case.
    name: &'static str,
    /// The header name as written in messages.
    label: &'static str,
    /// The preset's value.
    strict: &'static str,
    /// Every value the standard defines, the preset's first.
    allowed: &'static str,
    /// The setting that takes the preset's value only.
    plain: &'static str,
    /// The setting that takes every value, logging a warning for a weaker one.
    dangerous: &'static str,
}

const REFERRER_POLICY: Choice = Choice {
    name: "referrer-policy",
    label: "Referrer-Policy",
    strict: "no-referrer",
    allowed: "no-referrer, no-referrer-when-downgrade, origin, origin-when-cross-origin, \
              same-origin, strict-origin, strict-origin-when-cross-origin, unsafe-url",
    plain: "referrer_policy",
    dangerous: "dangerous_referrer_policy",
};

const FRAME_OPTIONS: Choice = Choice {
    name: "x-frame-options",
    label: "X-Frame-Options",
    strict: "DENY",
    allowed: "DENY, SAMEORIGIN",
    plain: "frame_options",
    dangerous: "dangerous_frame_options",
};

const OPENER_POLICY: Choice = Choice {
    name: "cross-origin-opener-policy",
    label: "Cross-Origin-Opener-Policy",
    strict: "same-origin",
    allowed: "same-origin, same-origin-allow-popups, noopener-allow-popups, unsafe-none",
    plain: "cross_origin_opener_policy",
    dangerous: "dangerous_cross_origin_opener_policy",
};

const RESOURCE_POLICY: Choice = Choice {
    name: "cross-origin-resource-policy",
    label: "Cross-Origin-Resource-Policy",
    strict: "same-origin",
    allowed: "same-origin, same-site, cross-origin",
    plain: "cross_origin_resource_policy",
    dangerous: "dangerous_cross_origin_resource_policy",
};

/// Headers [`HeaderPolicy::header`] refuses, each with what to use instead: a fixed value
/// would bypass the setting's checks, the cookie rules, `no-store`, the CSP's nonce and
/// report-only mode, or HSTS's HTTPS-only rule (RFC 6797 §7.2). Identifying headers
/// ([`IDENTIFYING`]) and `Access-Control-*` are refused as well.
const NOT_SETTABLE: &[(&str, &str)] = &[
    (
        "strict-transport-security",
        "set HSTS with hsts(max_age, include_subdomains, preload) (or dangerous_hsts for less \
         than two years with subdomains), which sends it on HTTPS responses only, or send \
         none with dangerous_without_hsts",
    ),
    (
        "content-security-policy",
        "set the policy with csp(Csp::…), or send none with dangerous_without_csp",
    ),
    (
        "content-security-policy-report-only",
        "set a report-only policy with csp(Csp::….dangerous_report_only())",
    ),
    (
        "set-cookie",
        "cookies come from your handlers, where cookies(CookiePolicy) enforces their flags",
    ),
    (
        "cache-control",
        "set it in your handlers (theirs is kept, made private on responses to requests with \
         credentials and on responses with a CSP nonce); to let responses to requests with \
         credentials be cached by shared caches, use dangerous_allow_caching_with_credentials",
    ),
    (
        "x-frame-options",
        "use frame_options(\"DENY\"), or dangerous_frame_options(\"SAMEORIGIN\")",
    ),
    (
        "referrer-policy",
        "use referrer_policy(\"no-referrer\"), or dangerous_referrer_policy(…) for another value",
    ),
    (
        "cross-origin-opener-policy",
        "use cross_origin_opener_policy(\"same-origin\"), or \
         dangerous_cross_origin_opener_policy(…) for another value",
    ),
    (
        "cross-origin-resource-policy",
        "use cross_origin_resource_policy(\"same-origin\"), or \
         dangerous_cross_origin_resource_policy(…) for another value",
    ),
    (
        "content-length",
        "the server sets it from each body; a fixed value breaks responses",
    ),
    (
        "transfer-encoding",
        "the server sets it from each body; a fixed value breaks responses",
    ),
    (
        "content-encoding",
        "the server sets it from each body; a fixed value breaks responses",
    ),
    (
        "content-type",
        "each response sets its own (errors are application/problem+json); a fixed value \
         relabels every body: set it in your handlers",
    ),
    (
        "retry-after",
        "the rate limits and the timeout set it on each response that needs one (429, 503); a \
         fixed value would replace theirs and go out on every response",
    ),
    (
        "location",
        "redirects set it on each response (to where that one goes); a fixed value would \
         send every redirect to one place",
    ),
    (
        "www-authenticate",
        "the auth layer sets it on each 401 (with the error of that request); a fixed value \
         would replace it and go out on every response: set it in your handlers",
    ),
];

/// What [`HeaderPolicy::dangerous_remove_header`] says of a header it cannot remove that has
/// a setting of its own.
const NOT_REMOVABLE: &[(&str, &str)] = &[
    (
        "strict-transport-security",
        "to send no HSTS, use dangerous_without_hsts",
    ),
    (
        "content-security-policy",
        "to send no CSP, use dangerous_without_csp",
    ),
    (
        "content-security-policy-report-only",
        "to send no CSP, use dangerous_without_csp",
    ),
    (
        "cache-control",
        "to leave out no-store on responses to requests with credentials, use \
         dangerous_allow_caching_with_credentials",
    ),
    (
        "set-cookie",
        "the policy sends no cookie; cookies(CookiePolicy) sets the rules for your handlers' cookies",
    ),
];

/// Which security headers a response gets. Start from [`HeaderPolicy::api`] or
/// [`HeaderPolicy::html`], adjust, and [`build`](HeaderPolicy::build) it once.
///
/// The presets (the values and the reasons for them are in the crate docs):
/// `Strict-Transport-Security: max-age=63072000; includeSubDomains` (HTTPS responses only),
/// a Content-Security-Policy, `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`,
/// `Referrer-Policy: no-referrer`, `Cross-Origin-Opener-Policy: same-origin`,
/// `Cross-Origin-Resource-Policy: same-origin`, a `Permissions-Policy` denying powerful
/// features, `X-DNS-Prefetch-Control: off`, `X-Permitted-Cross-Domain-Policies: none`;
/// `Server`, `X-Powered-By` and the like removed; `Cache-Control: no-store` on responses to
/// requests carrying credentials and on responses with a CSP nonce (a handler's own made
/// `private`); `Set-Cookie` flags enforced ([`CookiePolicy`]).
///
/// Settings without `dangerous_` in their name take only values at least as strict as the
/// preset's; a weaker value is a [`ConfigError::Loosening`] naming the `dangerous_*` method
/// that sets it, which logs a warning (target [`LOG_TARGET`](crate::LOG_TARGET), field
/// `setting`) when the service is set up.
///
/// ```
/// use hardening_headers::{ConfigError, Csp, HeaderPolicy};
///
/// let headers = HeaderPolicy::html()
///     .csp(Csp::html().report_uri("/csp-report"))
///     .dangerous_referrer_policy("strict-origin-when-cross-origin")?
///     .build()?;
/// # let _ = headers;
///
/// assert!(HeaderPolicy::api().referrer_policy("sometimes").is_err());
/// let err = HeaderPolicy::api().referrer_policy("unsafe-url").unwrap_err();
/// assert!(err.to_string().contains("dangerous_referrer_policy"), "{err}");
/// # Ok::<(), ConfigError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct HeaderPolicy {
    csp: Option<Csp>,
    hsts: Option<(u64, bool, bool)>,
    fixed: Vec<(HeaderName, HeaderValue)>,
    no_store_with_credentials: bool,
    cookies: CookiePolicy,
}

impl HeaderPolicy {
    /// For JSON APIs: the strict set with `Csp::api()`.
    pub fn api() -> Self {
        let strict = |choice: &Choice| (HeaderName::from_static(choice.name), choice.strict);
        let fixed = [
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            strict(&FRAME_OPTIONS),
            strict(&REFERRER_POLICY),
            strict(&OPENER_POLICY),
            strict(&RESOURCE_POLICY),
            (
                HeaderName::from_static("permissions-policy"),
                PERMISSIONS_POLICY,
            ),
            (header::X_DNS_PREFETCH_CONTROL, "off"),
            (
                HeaderName::from_static("x-permitted-cross-domain-policies"),
                "none",
            ),
        ]
        .into_iter()
        .map(|(n, v)| (n, HeaderValue::from_static(v)))
        .collect();
        Self {
            csp: Some(Csp::api()),
            hsts: Some((HSTS_MAX_AGE, true, false)),
            fixed,
            no_store_with_credentials: true,
            cookies: CookiePolicy::default(),
        }
    }

    /// For server-rendered pages: the strict set with `Csp::html()` (script and style
    /// nonces).
    pub fn html() -> Self {
        Self {
            csp: Some(Csp::html()),
            ..Self::api()
        }
    }

    /// Sets the Content-Security-Policy.
    pub fn csp(mut self, csp: Csp) -> Self {
        self.csp = Some(csp);
        self
    }

    /// Sends no Content-Security-Policy of its own (a route's own still goes out). Logs a
    /// warning.
    pub fn dangerous_without_csp(mut self) -> Self {
        warn_loosened(
            "dangerous_without_csp",
            "responses carry no Content-Security-Policy",
        );
        self.csp = None;
        self
    }

    /// Sets HSTS (sent on HTTPS responses only), at least as strict as the preset's: a
    /// `max_age` of two years or more, with `include_subdomains`. Less is a
    /// [`ConfigError::Loosening`] naming [`dangerous_hsts`](Self::dangerous_hsts).
    /// `preload` needs at least one year and `include_subdomains`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use hardening_headers::HeaderPolicy;
    ///
    /// let year = Duration::from_secs(365 * 24 * 3600);
    /// assert!(HeaderPolicy::api().hsts(2 * year, true, true).is_ok());
    /// let err = HeaderPolicy::api().hsts(year, false, false).unwrap_err();
    /// assert!(err.to_string().contains("dangerous_hsts"), "{err}");
    /// ```
    pub fn hsts(
        self,
        max_age: Duration,
        include_subdomains: bool,
        preload: bool,
    ) -> Result<Self, ConfigError> {
        self.set_hsts(max_age, include_subdomains, preload, false)
    }

    /// Sets HSTS (sent on HTTPS responses only) to any `max_age` but zero, with or without
    /// `include_subdomains`. Logs a warning when it is less than the preset's (two years,
    /// with subdomains). `preload` needs at least one year and `include_subdomains`.
    pub fn dangerous_hsts(
        self,
        max_age: Duration,
        include_subdomains: bool,
        preload: bool,
    ) -> Result<Self, ConfigError> {
        self.set_hsts(max_age, include_subdomains, preload, true)
    }

    fn set_hsts(
        mut self,
        max_age: Duration,
        include_subdomains: bool,
        preload: bool,
        dangerous: bool,
    ) -> Result<Self, ConfigError> {
        let secs = max_age.as_secs();
        if secs == 0 {
            return Err(ConfigError::InvalidHsts(
                "max-age 0 tells browsers to forget HSTS; use dangerous_without_hsts to send none"
                    .into(),
            ));
        }
        if preload && (secs < 31_536_000 || !include_subdomains) {
            return Err(ConfigError::InvalidHsts(
                "preload needs max-age of at least one year (31536000 s) and includeSubDomains"
                    .into(),
            ));
        }
        if secs < HSTS_MAX_AGE || !include_subdomains {
            let what = format!(
                "Strict-Transport-Security: max-age={secs}{}",
                if include_subdomains {
                    "; includeSubDomains"
                } else {
                    " without includeSubDomains"
                }
            );
            if !dangerous {
                return Err(ConfigError::Loosening {
                    what: format!("HeaderPolicy::hsts: {what}"),
                    instead: format!(
                        "the strict preset sends max-age={HSTS_MAX_AGE}; includeSubDomains (two \
                         years, with subdomains); to send less, call dangerous_hsts with the same \
                         arguments, which logs a warning at start-up"
                    ),
                });
            }
            warn_loosened("dangerous_hsts", &what);
        }
        self.hsts = Some((secs, include_subdomains, preload));
        Ok(self)
    }

    /// Sends no HSTS of its own (a route's own still goes out, over HTTPS only). Logs a
    /// warning.
    pub fn dangerous_without_hsts(mut self) -> Self {
        warn_loosened(
            "dangerous_without_hsts",
            "HTTPS responses carry no Strict-Transport-Security",
        );
        self.hsts = None;
        self
    }

    /// Sets `Referrer-Policy` to the preset's `no-referrer` (every other value sends the
    /// referrer somewhere: a [`ConfigError::Loosening`] naming
    /// [`dangerous_referrer_policy`](Self::dangerous_referrer_policy)).
    pub fn referrer_policy(self, value: &str) -> Result<Self, ConfigError> {
        self.choose(&REFERRER_POLICY, value, false)
    }

    /// Sets `Referrer-Policy` to any value the standard defines (`strict-origin-when-cross-origin`,
    /// `same-origin`, …, `unsafe-url`). Logs a warning unless it is `no-referrer`.
    pub fn dangerous_referrer_policy(self, value: &str) -> Result<Self, ConfigError> {
        self.choose(&REFERRER_POLICY, value, true)
    }

    /// Sets `Cross-Origin-Opener-Policy` to the preset's `same-origin` (another value is a
    /// [`ConfigError::Loosening`] naming
    /// [`dangerous_cross_origin_opener_policy`](Self::dangerous_cross_origin_opener_policy)).
    pub fn cross_origin_opener_policy(self, value: &str) -> Result<Self, ConfigError> {
        self.choose(&OPENER_POLICY, value, false)
    }

    /// Sets `Cross-Origin-Opener-Policy` to any value the standard defines
    /// (`same-origin-allow-popups`, `noopener-allow-popups`, `unsafe-none`). Logs a warning
    /// unless it is `same-origin`.
    pub fn dangerous_cross_origin_opener_policy(self, value: &str) -> Result<Self, ConfigError> {
        self.choose(&OPENER_POLICY, value, true)
    }

    /// Sets `Cross-Origin-Resource-Policy` to the preset's `same-origin` (another value is a
    /// [`ConfigError::Loosening`] naming
    /// [`dangerous_cross_origin_resource_policy`](Self::dangerous_cross_origin_resource_policy)).
    pub fn cross_origin_resource_policy(self, value: &str) -> Result<Self, ConfigError> {
        self.choose(&RESOURCE_POLICY, value, false)
    }

    /// Sets `Cross-Origin-Resource-Policy` to any value the standard defines (`same-site`,
    /// `cross-origin`). Logs a warning unless it is `same-origin`.
    pub fn dangerous_cross_origin_resource_policy(self, value: &str) -> Result<Self, ConfigError> {
        self.choose(&RESOURCE_POLICY, value, true)
    }

    /// Sets `X-Frame-Options` to the preset's `DENY` (`SAMEORIGIN` is a
    /// [`ConfigError::Loosening`] naming [`dangerous_frame_options`](Self::dangerous_frame_options)).
    pub fn frame_options(self, value: &str) -> Result<Self, ConfigError> {
        self.choose(&FRAME_OPTIONS, value, false)
    }

    /// Sets `X-Frame-Options` to `DENY` or `SAMEORIGIN`. Logs a warning for `SAMEORIGIN`.
    /// (The CSP's `frame-ancestors 'none'` still forbids framing in browsers that read it;
    /// see [`Csp::dangerous_directive`].)
    pub fn dangerous_frame_options(self, value: &str) -> Result<Self, ConfigError> {
        self.choose(&FRAME_OPTIONS, value, true)
    }

    /// Sets any other header to a fixed value.
    ///
    /// A header with a setting or handling of its own is an error naming what to use instead:
    /// `Strict-Transport-Security` ([`hsts`](Self::hsts)), `Content-Security-Policy` and its
    /// report-only form ([`csp`](Self::csp)), `Set-Cookie` ([`cookies`](Self::cookies)),
    /// `Cache-Control`, `X-Frame-Options`, `Referrer-Policy`, `Cross-Origin-Opener-Policy`,
    /// `Cross-Origin-Resource-Policy`, the identifying headers removed from every response
    /// (`Server`, `X-Powered-By`, …), `Access-Control-*` (hardening-core's CORS settings),
    /// and the headers each response sets for itself (`Content-Length`, `Transfer-Encoding`,
    /// `Content-Encoding`, `Content-Type`, `Retry-After`, `Location`, `WWW-Authenticate`): a
    /// fixed value replaces a response's own.
    ///
    /// The preset's other headers take only values at least as strict as the preset's:
    /// `X-Content-Type-Options: nosniff`, `X-DNS-Prefetch-Control: off`,
    /// `X-Permitted-Cross-Domain-Policies: none`, and a `Permissions-Policy` that denies
    /// every feature the preset denies (`camera=()`, …) and may restrict more, each member
    /// written `feature=()` or `feature=(self)`. Anything else is a [`ConfigError::Loosening`]
    /// naming [`dangerous_header`](Self::dangerous_header).
    ///
    /// ```
    /// use hardening_headers::HeaderPolicy;
    ///
    /// assert!(HeaderPolicy::api().header("X-Robots-Tag", "noindex").is_ok());
    /// let err = HeaderPolicy::api().header("Strict-Transport-Security", "max-age=0").unwrap_err();
    /// assert!(err.to_string().contains("hsts("), "{err}");
    /// let err = HeaderPolicy::api().header("Permissions-Policy", "camera=*").unwrap_err();
    /// assert!(err.to_string().contains("dangerous_header"), "{err}");
    /// ```
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, ConfigError> {
        let (name, header_value) = settable("header", name, value)?;
        if let Some(strict) = strict_value(&name)
            && !at_least_as_strict(&name, value)
        {
            let rule = if name == "permissions-policy" {
                " (a value set here denies each of these features with `feature=()` and may add \
                 others as `feature=()` or `feature=(self)`)"
            } else {
                ""
            };
            return Err(ConfigError::Loosening {
                what: format!("HeaderPolicy::header({:?}, {value:?})", name.as_str()),
                instead: format!(
                    "the strict preset sends {name}: {strict}{rule}; to send a weaker value, \
                     use dangerous_header({:?}, …), which logs a warning at start-up",
                    name.as_str()
                ),
            });
        }
        self.set(name, header_value);
        Ok(self)
    }

    /// Sets one of the preset's headers that have no setting of their own
    /// (`X-Content-Type-Options`, `Permissions-Policy`, `X-DNS-Prefetch-Control`,
    /// `X-Permitted-Cross-Domain-Policies`) to any value. Logs a warning unless the value is
    /// one [`header`](Self::header) takes.
    ///
    /// Other headers are an error: those with a setting of their own, as for
    /// [`header`](Self::header), and those the preset does not send (set them with
    /// [`header`](Self::header)).
    ///
    /// ```
    /// use hardening_headers::HeaderPolicy;
    ///
    /// let policy = HeaderPolicy::html().dangerous_header("Permissions-Policy", "camera=(self)")?;
    /// # let _ = policy;
    /// assert!(HeaderPolicy::api().dangerous_header("X-Robots-Tag", "noindex").is_err());
    /// # Ok::<(), hardening_headers::ConfigError>(())
    /// ```
    pub fn dangerous_header(mut self, name: &str, value: &str) -> Result<Self, ConfigError> {
        let (name, header_value) = settable("dangerous_header", name, value)?;
        if strict_value(&name).is_none() {
            let strict: Vec<&str> = STRICT_FIXED.iter().map(|(n, _)| *n).collect();
            return Err(ConfigError::InvalidHeader(format!(
                "{name}: dangerous_header sets one of {}; the preset does not send this one: set \
                 it with header(…)",
                strict.join(", ")
            )));
        }
        if !at_least_as_strict(&name, value) {
            warn_loosened("dangerous_header", &format!("{name}: {value}"));
        }
        self.set(name, header_value);
        Ok(self)
    }

    /// Stops sending one of the fixed headers the policy sends (the preset's
    /// `X-Content-Type-Options`, `X-Frame-Options`, …, or one set with
    /// [`header`](Self::header)). Logs a warning.
    ///
    /// Any other name is an error listing the headers it can remove: HSTS, the CSP and
    /// `no-store` have their own `dangerous_*` methods, and the policy sends no `Set-Cookie`
    /// and no identifying header.
    ///
    /// ```
    /// use hardening_headers::HeaderPolicy;
    ///
    /// assert!(HeaderPolicy::api().dangerous_remove_header("X-Frame-Options").is_ok());
    /// let err = HeaderPolicy::api().dangerous_remove_header("Strict-Transport-Security").unwrap_err();
    /// assert!(err.to_string().contains("dangerous_without_hsts"), "{err}");
    /// ```
    pub fn dangerous_remove_header(mut self, name: &str) -> Result<Self, ConfigError> {
        let parsed = HeaderName::from_bytes(name.as_bytes()).ok();
        let Some(at) = parsed
            .as_ref()
            .and_then(|parsed| self.fixed.iter().position(|(n, _)| n == parsed))
        else {
            let why = parsed
                .and_then(|parsed| {
                    NOT_REMOVABLE
                        .iter()
                        .find(|(n, _)| *n == parsed.as_str())
                        .map(|(_, why)| *why)
                        .or_else(|| {
                            IDENTIFYING
                                .contains(&parsed.as_str())
                                .then_some("it is removed from every response already")
                        })
                })
                .unwrap_or("the policy does not send a header of this name");
            let mut removable: Vec<&str> = self.fixed.iter().map(|(n, _)| n.as_str()).collect();
            if removable.is_empty() {
                removable.push("none left");
            }
            return Err(ConfigError::NotRemovable {
                header: name.to_owned(),
                why,
                removable: removable.join(", "),
            });
        };
        warn_loosened("dangerous_remove_header", self.fixed[at].0.as_str());
        self.fixed.remove(at);
        Ok(self)
    }

    /// Sets the `Set-Cookie` rules (default: [`CookiePolicy::default`]).
    pub fn cookies(mut self, cookies: CookiePolicy) -> Self {
        self.cookies = cookies;
        self
    }

    /// Leaves `Cache-Control` (and `CDN-Cache-Control` and the like) alone on responses to
    /// requests with credentials (not on responses with a CSP nonce). Logs a warning.
    pub fn dangerous_allow_caching_with_credentials(mut self) -> Self {
        warn_loosened(
            "dangerous_allow_caching_with_credentials",
            "responses to authenticated requests may be cached",
        );
        self.no_store_with_credentials = false;
        self
    }

    /// Sets `choice`'s header to `value`, one the standard defines; a value other than the
    /// preset's is refused unless `dangerous`, and then logged.
    fn choose(
        mut self,
        choice: &Choice,
        value: &str,
        dangerous: bool,
    ) -> Result<Self, ConfigError> {
        let value = value.trim();
        if !choice
            .allowed
            .split(", ")
            .any(|a| a.eq_ignore_ascii_case(value))
        {
            return Err(ConfigError::InvalidValue {
                header: choice.label,
                value: value.to_owned(),
                allowed: choice.allowed,
            });
        }
        if !value.eq_ignore_ascii_case(choice.strict) {
            if !dangerous {
                return Err(ConfigError::Loosening {
                    what: format!("HeaderPolicy::{}({value:?})", choice.plain),
                    instead: format!(
                        "the strict preset sends {}: {}; to send {value} anyway, use {}({value:?}), \
                         which logs a warning at start-up",
                        choice.label, choice.strict, choice.dangerous
                    ),
                });
            }
            warn_loosened(choice.dangerous, &format!("{}: {value}", choice.label));
        }
        let header_value = HeaderValue::from_str(value)
            .map_err(|_| ConfigError::InvalidHeader(choice.label.to_owned()))?;
        self.set(HeaderName::from_static(choice.name), header_value);
        Ok(self)
    }

    fn set(&mut self, name: HeaderName, value: HeaderValue) {
        match self.fixed.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => *v = value,
            None => self.fixed.push((name, value)),
        }
    }

    /// Validates everything and computes the header values once.
    pub fn build(self) -> Result<HeaderSet, ConfigError> {
        self.cookies.check()?;
        let csp = self.csp.as_ref().map(Csp::compile).transpose()?;
        let hsts = self.hsts.map(|(secs, sub, preload)| {
            let mut v = format!("max-age={secs}");
            if sub {
                v.push_str("; includeSubDomains");
            }
            if preload {
                v.push_str("; preload");
            }
            hardening_errors::static_header_value(v)
                .unwrap_or_else(|_| HeaderValue::from_static("max-age=63072000"))
        });
        let template = |tls: bool| {
            let mut map = HeaderMap::with_capacity(self.fixed.len() + 6);
            for (name, value) in &self.fixed {
                map.insert(name.clone(), value.clone());
            }
            // A nonce policy's value without a nonce (no script runs): what a response
            // whose facts carry no nonce gets; `per_request` replaces it with the nonce's.
            if let Some(csp) = &csp {
                map.insert(csp.header.clone(), csp.value(tls, None));
            }
            if let (Some(hsts), true) = (&hsts, tls) {
                map.insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
            }
            map
        };
        let mut owned: Vec<HeaderName> = IDENTIFYING
            .iter()
            .map(|n| HeaderName::from_static(n))
            .collect();
        owned.extend(self.fixed.iter().map(|(n, _)| n.clone()));
        // Without a policy HSTS, a route's own goes out over HTTPS (see `per_request`).
        if hsts.is_some() {
            owned.push(header::STRICT_TRANSPORT_SECURITY);
        }
        // An enforcing policy replaces the service's CSP headers, report-only too; a
        // report-only one replaces only the report-only header: a route's own enforcing CSP
        // still blocks while the policy is tried.
        if let Some(csp) = &csp {
            owned.push(header::CONTENT_SECURITY_POLICY_REPORT_ONLY);
            if csp.header == header::CONTENT_SECURITY_POLICY {
                owned.push(header::CONTENT_SECURITY_POLICY);
            }
        }
        let places = places(&owned, &[]);
        Ok(HeaderSet(Arc::new(Compiled {
            templates: [
                with_places(&[], &template(false), places),
                with_places(&[], &template(true), places),
            ],
            places,
            csp,
            owned,
            service_hsts: hsts.is_none(),
            no_store_with_credentials: self.no_store_with_credentials,
            cookies: self.cookies,
            slots: Vec::new(),
            slots_in_front: true,
        })))
    }
}

/// What to use instead of [`HeaderPolicy::header`] for `name`, if it is not for `header`.
fn not_settable(name: &HeaderName) -> Option<&'static str> {
    let name = name.as_str();
    NOT_SETTABLE
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, instead)| *instead)
        .or_else(|| {
            IDENTIFYING.contains(&name).then_some(
                "it is removed from every response (it tells attackers what software runs); \
                 no setting sends it",
            )
        })
        .or_else(|| {
            name.starts_with("access-control-").then_some(
                "cross-origin access is hardening-core's CORS setting (Hardening::cors), which \
                 answers preflights, lists the origins allowed and refuses * with credentials; \
                 a fixed value would open every response to other origins",
            )
        })
}

/// `name` and `value` parsed for [`HeaderPolicy::header`] or `dangerous_header` (`method`),
/// unless `name` has a setting or handling of its own.
fn settable(
    method: &'static str,
    name: &str,
    value: &str,
) -> Result<(HeaderName, HeaderValue), ConfigError> {
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| ConfigError::InvalidHeader(name.to_owned()))?;
    if let Some(instead) = not_settable(&name) {
        return Err(ConfigError::NotSettable {
            method,
            header: name.as_str().to_owned(),
            instead,
        });
    }
    let value = HeaderValue::from_str(value)
        .map_err(|_| ConfigError::InvalidHeader(format!("{name}: {value:?}")))?;
    Ok((name, value))
}

/// The preset's value of `name`, if it is one of [`STRICT_FIXED`].
fn strict_value(name: &HeaderName) -> Option<&'static str> {
    STRICT_FIXED
        .iter()
        .find(|(n, _)| *n == name.as_str())
        .map(|(_, v)| *v)
}

/// Whether `value` for `name`, one of [`STRICT_FIXED`], is at least as strict as the
/// preset's. Decided on the value's text, so a value that might be read as stricter but is not
/// written as the rule expects counts as weaker.
fn at_least_as_strict(name: &HeaderName, value: &str) -> bool {
    match strict_value(name) {
        None => true,
        Some(_) if name == "permissions-policy" => permissions_policy_at_least_as_strict(value),
        Some(strict) => value.trim().eq_ignore_ascii_case(strict),
    }
}

/// Whether a `Permissions-Policy` value denies every feature [`PERMISSIONS_POLICY`] denies
/// and allows no other feature beyond this origin: a structured-field dictionary (RFC 8941)
/// whose members are all `feature=()` or `feature=(self)` (the strictest allowlist and the
/// strictest a feature can have by default), each feature once, the preset's features with
/// `()`. Anything else (`*`, origins, parameters, a member the browser would not parse and
/// so ignore the whole header for) counts as weaker.
fn permissions_policy_at_least_as_strict(value: &str) -> bool {
    let mut members: Vec<(&str, &str)> = match value
        .trim_matches([' ', '\t'])
        .split(',')
        .map(|member| member.trim_matches([' ', '\t']).split_once('='))
        .collect::<Option<Vec<_>>>()
    {
        Some(members) => members,
        None => return false,
    };
    let is_key = |key: &str| {
        key.starts_with(|c: char| c.is_ascii_lowercase())
            && key.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.')
            })
    };
    if !members
        .iter()
        .all(|(key, allowlist)| is_key(key) && matches!(*allowlist, "()" | "(self)"))
    {
        return false;
    }
    // Sorted once, so that a feature named twice sits next to itself.
    members.sort_unstable();
    if members.windows(2).any(|pair| pair[0].0 == pair[1].0) {
        return false;
    }
    PERMISSIONS_POLICY.split(", ").all(|denied| {
        let (feature, _) = denied.split_once('=').unwrap_or((denied, ""));
        members.binary_search(&(feature, "()")).is_ok()
    })
}

/// A built [`HeaderPolicy`]: every value computed, cheap to clone, applied per response.
#[derive(Debug, Clone)]
pub struct HeaderSet(Arc<Compiled>);

#[derive(Debug, Clone)]
struct Compiled {
    csp: Option<CompiledCsp>,
    /// Every header the policy sets, ready to clone: `[plain HTTP, HTTPS]` (HSTS and
    /// `upgrade-insecure-requests` only in the second; a nonce CSP without a nonce, replaced
    /// per response when the facts carry one),
    /// each in [`VARIANTS`] variants: with a place for each subset of [`PLACES`].
    templates: [[HeaderMap; VARIANTS]; 2],
    /// Which of [`PLACES`] the templates have places for (see [`places`]).
    places: usize,
    /// Names whose values from the service are dropped: the policy's own, both CSP headers
    /// (the report-only one alone for a report-only policy), HSTS when the policy sends it,
    /// and identifying headers such as `Server`.
    owned: Vec<HeaderName>,
    /// The policy sends no HSTS: the service's own is kept over HTTPS, dropped over HTTP.
    service_hsts: bool,
    no_store_with_credentials: bool,
    cookies: CookiePolicy,
    /// Headers whose values come with each response ([`HeaderSet::with_slots`]): their
    /// placeholders are the templates' first entries, in this order; the places follow.
    slots: Vec<(HeaderName, Merge)>,
    /// Every template iterates its slots' placeholders first, in `slots` order (checked
    /// once, when built): `apply_with` then fills them by position without comparing names.
    slots_in_front: bool,
}

/// Most per-response slots a [`HeaderSet`] takes.
const MAX_SLOTS: usize = 32;

/// How a per-response header ([`HeaderSet::with_slots`]) meets a value the service set
/// itself under the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Merge {
    /// Ours replaces the service's (a request id).
    Replace,
    /// Both kept in one comma-separated list, the service's first (`RateLimit` fields from a
    /// limit applied further in).
    List,
}

/// What the header set needs to know about the request.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestFacts {
    /// The request came over HTTPS (directly, or as a trusted proxy says).
    pub https: bool,
    /// The request carries credentials (`Authorization` or a cookie).
    pub credentials: bool,
    /// This request's CSP nonce, if the policy uses one.
    pub nonce: Option<CspNonce>,
    /// The response is none a browser renders as a page (1xx, 204, 304, a redirect it
    /// follows: 301, 302, 303, 307 or 308 with a `Location`), so its CSP nonce does not keep
    /// it from shared caches, unless it is a `304` ([`not_modified`](Self::not_modified)). A
    /// `300`, or a redirect without a `Location`, is rendered. Set by
    /// [`for_response`](Self::for_response).
    pub not_a_page: bool,
    /// The response is a `304 Not Modified`: it goes out without a nonce CSP. A cache takes
    /// a 304's fields onto the page it keeps (RFC 9111 §4.3.4), and a new nonce's CSP there
    /// would block the page's own scripts, which carry the nonce it was sent with. For the
    /// same reason its `Cache-Control` is made private as its 200's was: with credentials,
    /// and under a nonce CSP when its `Content-Type` names a page (one without a
    /// `Content-Type` keeps its own: it may revalidate an asset a CDN keeps); one without
    /// `Cache-Control` gets none, with credentials too, which leaves the stored response's. Set
    /// by [`for_response`](Self::for_response).
    pub not_modified: bool,
}

impl RequestFacts {
    /// These facts for the service's `response`: a [`PrincipalId`](hardening_errors::PrincipalId)
    /// on it (the service authenticated the request, by whatever means: an API key in a
    /// header of its own, a signed URL) counts as credentials, so the response gets
    /// `no-store` as one to `Authorization` does.
    ///
    /// ```
    /// use hardening_errors::PrincipalId;
    /// use hardening_headers::RequestFacts;
    ///
    /// let mut response = http::Response::new(());
    /// assert!(!RequestFacts::default().for_response(&response).credentials);
    /// response.extensions_mut().insert(PrincipalId::new("key-7"));
    /// assert!(RequestFacts::default().for_response(&response).credentials);
    ///
    /// *response.status_mut() = http::StatusCode::NOT_MODIFIED;
    /// let facts = RequestFacts::default().for_response(&response);
    /// assert!(facts.not_a_page && facts.not_modified);
    /// ```
    #[inline]
    pub fn for_response<B>(mut self, response: &http::Response<B>) -> Self {
        // Free when the response has no extensions: the lookup starts by checking that.
        self.credentials |= response
            .extensions()
            .get::<hardening_errors::PrincipalId>()
            .is_some();
        let status = response.status();
        self.not_modified = status == http::StatusCode::NOT_MODIFIED;
        self.not_a_page = status.is_informational()
            || status == http::StatusCode::NO_CONTENT
            || self.not_modified
            || is_followed_redirect(status) && response.headers().contains_key(header::LOCATION);
        self
    }
}

/// A status browsers follow as a redirect when it has a `Location` (the Fetch standard's
/// redirect statuses): not `300`, `304` or `305`, which they render or keep.
fn is_followed_redirect(status: http::StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

impl HeaderSet {
    /// Whether responses need a per-request CSP nonce.
    pub fn wants_nonce(&self) -> bool {
        self.0.csp.as_ref().is_some_and(CompiledCsp::wants_nonce)
    }

    /// The facts of a request, from one read of its headers: HTTPS (the [`Tls`](crate::Tls)
    /// marker of TLS seen in-process, or `X-Forwarded-Proto: https` when
    /// `trust_forwarded_proto`, as [`is_https`](crate::is_https) decides; never the scheme of
    /// the request target), credentials, and, if the policy uses nonces, the request's
    /// [`CspNonce`]: the one a layer further out put in the extensions, else a new one (put
    /// there for the [`CspNonce`] extractor). Nested, every layer's CSP thus allows the nonce
    /// the handler gets.
    pub fn request_facts(&self, parts: &mut Parts, trust_forwarded_proto: bool) -> RequestFacts {
        let read = RequestHeaders::read(&parts.headers, trust_forwarded_proto);
        self.facts_read(read, parts)
    }

    /// [`request_facts`](Self::request_facts), and whether the request has a field named
    /// `name`, noted in the same read of its headers: a caller that needs to know saves a
    /// lookup of its own (which hashes the name) on every request with few headers.
    /// `Hardening` finds a client's `x-request-id` this way.
    ///
    /// ```
    /// use hardening_headers::HeaderPolicy;
    /// use http::HeaderName;
    ///
    /// let set = HeaderPolicy::api().build()?;
    /// let id = HeaderName::from_static("x-request-id");
    /// let request = http::Request::get("/").header("x-request-id", "forged").body(())?;
    /// let (mut parts, ()) = request.into_parts();
    /// let (facts, has_id) = set.request_facts_noting(&mut parts, false, &id);
    /// assert!(has_id);
    /// assert!(!facts.credentials);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    // Inline: `Hardening` calls it on every request, and out of line the call and the facts
    // it returns through memory cost about 36 instructions a request (callgrind).
    #[inline]
    pub fn request_facts_noting(
        &self,
        parts: &mut Parts,
        trust_forwarded_proto: bool,
        name: &HeaderName,
    ) -> (RequestFacts, bool) {
        let read = RequestHeaders::read_noting(&parts.headers, trust_forwarded_proto, Some(name));
        (self.facts_read(read, parts), read.noted)
    }

    /// The facts from one read of the request's headers.
    #[inline]
    fn facts_read(&self, read: RequestHeaders, parts: &mut Parts) -> RequestFacts {
        let https = crate::https::tls_in_process(&parts.extensions) || read.forwarded_https;
        self.facts(https, read.credentials, &mut parts.extensions)
    }

    /// The facts from what the caller read, with the request's nonce if the policy uses one
    /// (see [`request_facts`](Self::request_facts)).
    #[inline]
    pub(crate) fn facts(
        &self,
        https: bool,
        credentials: bool,
        extensions: &mut http::Extensions,
    ) -> RequestFacts {
        RequestFacts {
            https,
            credentials,
            not_a_page: false,
            not_modified: false,
            nonce: if self.wants_nonce() {
                Some(request_nonce(extensions))
            } else {
                None
            },
        }
    }

    /// Sets the security headers on a response, removes identifying ones, adds
    /// `Cache-Control: no-store` for credentialed requests and CSP nonces, and enforces
    /// cookie rules.
    ///
    /// The policy's headers win over the service's (a route cannot quietly weaken the CSP),
    /// except `Cache-Control`, which a handler may set itself, and headers the policy does
    /// not send: a route's own HSTS without a policy HSTS, a route's own enforcing CSP beside
    /// a report-only policy (so a route can be stricter than the policy being tried); on a response to a request with
    /// credentials, or whose CSP carries a nonce (a shared cache would give every visitor the
    /// same nonce), a handler's `Cache-Control` that lets shared caches keep it (neither
    /// `no-store` nor `private`) loses `public` and `s-maxage` and gets `private` (the
    /// browser may still cache it), and fields that shared caches read instead
    /// (`CDN-Cache-Control`, `Surrogate-Control`, …) are dropped. A `304` carries no nonce
    /// CSP, and never a `Cache-Control` looser than its 200's (see
    /// [`RequestFacts::not_modified`]). HSTS never goes out over plain HTTP (RFC 6797 §7.2),
    /// whoever set it.
    pub fn apply(&self, facts: &RequestFacts, headers: &mut HeaderMap) {
        self.apply_with(facts, headers, []);
    }

    /// This set with places reserved for headers whose values are known only per response
    /// (a request id, a rate-limit status): [`apply_with`](Self::apply_with) writes them in
    /// the same pass as the security headers instead of inserting each afterwards. A slot
    /// named like one of the policy's own headers takes that header's place. At most 32, and
    /// not `Set-Cookie`.
    ///
    /// ```
    /// use hardening_headers::{HeaderPolicy, Merge, RequestFacts};
    /// use http::{HeaderMap, HeaderName, HeaderValue};
    ///
    /// let id = HeaderName::from_static("x-request-id");
    /// let set = HeaderPolicy::api().build()?.with_slots([(id.clone(), Merge::Replace)])?;
    /// let mut headers = HeaderMap::new();
    /// let value = HeaderValue::from_static("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
    /// set.apply_with(&RequestFacts::default(), &mut headers, [Some(value)]);
    /// assert_eq!(headers[&id], "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
    /// assert_eq!(headers["x-content-type-options"], "nosniff");
    /// # Ok::<(), hardening_headers::ConfigError>(())
    /// ```
    pub fn with_slots(
        &self,
        slots: impl IntoIterator<Item = (HeaderName, Merge)>,
    ) -> Result<HeaderSet, ConfigError> {
        let c = &*self.0;
        let slots: Vec<(HeaderName, Merge)> = slots.into_iter().collect();
        if slots.iter().any(|(n, _)| *n == header::SET_COOKIE) {
            return Err(ConfigError::InvalidHeader(
                "set-cookie cannot be a per-response slot: cookies go through the cookie rules"
                    .to_owned(),
            ));
        }
        if slots.len() > MAX_SLOTS {
            return Err(ConfigError::InvalidHeader(format!(
                "{} per-response slots; at most {MAX_SLOTS}",
                slots.len()
            )));
        }
        let is_slot = |name: &HeaderName| slots.iter().any(|(n, _)| n == name);
        let owned: Vec<HeaderName> = c.owned.iter().filter(|n| !is_slot(n)).cloned().collect();
        let places = places(&owned, &slots);
        // The policy's own headers: the first template (no places) without the slots.
        let own = |old: &HeaderMap| {
            let mut map = HeaderMap::with_capacity(old.len());
            for (name, value) in old {
                if !is_slot(name) && !c.slots.iter().any(|(n, _)| n == name) {
                    map.append(name.clone(), value.clone());
                }
            }
            map
        };
        let templates = [
            with_places(&slots, &own(&c.templates[0][0]), places),
            with_places(&slots, &own(&c.templates[1][0]), places),
        ];
        let slots_in_front = templates.iter().flatten().all(|map| {
            // By value, as `values_mut` goes: a name with two values would count twice.
            map.iter()
                .map(|(name, _)| name)
                .take(slots.len())
                .eq(slots.iter().map(|(name, _)| name))
        });
        Ok(HeaderSet(Arc::new(Compiled {
            csp: c.csp.clone(),
            templates,
            places,
            owned,
            service_hsts: c.service_hsts,
            no_store_with_credentials: c.no_store_with_credentials,
            cookies: c.cookies.clone(),
            slots,
            slots_in_front,
        })))
    }

    /// [`apply`](Self::apply), also writing the slots declared with
    /// [`with_slots`](Self::with_slots): `values` in the order the slots were declared. A
    /// slot whose value is `None` (or missing) is left out of the response; values beyond the
    /// declared slots are ignored.
    pub fn apply_with(
        &self,
        facts: &RequestFacts,
        headers: &mut HeaderMap,
        values: impl IntoIterator<Item = Option<HeaderValue>>,
    ) {
        self.write(facts, headers, values, true);
    }

    /// [`apply_with`](Self::apply_with), but a [`Merge::List`] slot the service set too is
    /// left as separate field lines, ours first, for a caller that joins the list itself
    /// (the `RateLimit` fields, whose entries are told apart by name). Whether there was such
    /// a slot.
    pub fn apply_with_lists_apart(
        &self,
        facts: &RequestFacts,
        headers: &mut HeaderMap,
        values: impl IntoIterator<Item = Option<HeaderValue>>,
    ) -> bool {
        self.write(facts, headers, values, false)
    }

    /// [`apply_with`](Self::apply_with), joining the list slots the service set too when
    /// `join` says so; whether there were any.
    fn write(
        &self,
        facts: &RequestFacts,
        headers: &mut HeaderMap,
        values: impl IntoIterator<Item = Option<HeaderValue>>,
        join: bool,
    ) -> bool {
        let c = &*self.0;
        // Most responses carry one header of their own, a `Content-Type` (a handler's text
        // or JSON): its place follows the slots, so one walk fills them all.
        //
        // A response shared caches must not keep (`private`, decided on either path): fields
        // they read instead of `Cache-Control` are dropped, and it gets `no-store` when it has
        // no `Cache-Control` (but a 304: it leaves the stored response's, see `per_request`).
        if c.slots_in_front
            && c.places & CONTENT_TYPE_PLACE != 0
            && headers.len() == 1
            && let Some((name, value)) = headers.iter_mut().next()
            && *name == header::CONTENT_TYPE
        {
            let content_type = std::mem::replace(value, HeaderValue::from_static(""));
            // Two copies: one for most responses, with nothing to decide per request.
            if facts.nonce.is_some() || facts.credentials || facts.not_modified {
                // The response's one field is this `Content-Type`: read, not looked up.
                let private = self.not_for_shared_caches(facts, || [&content_type]);
                self.write_content_type::<true>(facts, headers, values, content_type, private);
            } else {
                self.write_content_type::<false>(facts, headers, values, content_type, false);
            }
            return false;
        }
        let private = self.not_for_shared_caches(facts, || headers.get_all(header::CONTENT_TYPE));
        // Start from the precomputed set and move the service's own headers in: a few
        // appends instead of a dozen inserts. The template variant has a place for each of
        // `PLACES` the response has, so those are written without growing the map, and one
        // for the `no-store` of a response shared caches must not keep.
        let mut variant = 0;
        for name in headers.keys() {
            if let Some(j) = PLACES.iter().position(|p| p == name) {
                variant |= 1 << j;
            }
        }
        let mut variant = variant & c.places;
        // No `Cache-Control` of its own (its place would be in `variant`; a 304 leaves the
        // stored response's): `no-store` takes the place.
        let no_store =
            private && !facts.not_modified && c.places & !variant & CACHE_CONTROL_PLACE != 0;
        if no_store {
            variant |= CACHE_CONTROL_PLACE;
        }
        let mut out = c.templates[usize::from(facts.https)][variant].clone();

        // The slots, overwritten where they stand (no hashing, no insertion).
        let mut values = values.into_iter();
        let mut absent = 0u32;
        let mut placed = 0;
        let in_front = if c.slots_in_front { c.slots.len() } else { 0 };
        for place in out.values_mut().take(in_front) {
            match values.next().flatten() {
                Some(value) => fill(place, value),
                None => absent |= 1 << placed,
            }
            placed += 1;
        }
        // Not where the template put them (another `http` iteration order): by name.
        for (i, (slot, _)) in c.slots.iter().enumerate().skip(placed) {
            match values.next().flatten() {
                Some(value) => {
                    out.insert(slot.clone(), value);
                }
                None => absent |= 1 << i,
            }
        }
        remove_absent(&mut out, &c.slots, absent);
        if no_store {
            place_no_store(c, &mut out, variant, absent);
        }
        let mut filled = if no_store { CACHE_CONTROL_PLACE } else { 0 };

        let mut current: Option<HeaderName> = None;
        let mut cookies = 0usize;
        let mut merged = 0u32;
        for (name, value) in headers.drain() {
            if name.is_some() {
                current = name;
            }
            let Some(name) = &current else { continue };
            let value = if *name == header::SET_COOKIE {
                // Each cookie is brought into line on its way over (no second lookup).
                cookies += 1;
                match c.cookies.fixed(value) {
                    Some(value) => value,
                    None => continue,
                }
            } else {
                value
            };
            if let Some(j) = PLACES.iter().position(|p| p == name)
                && variant & (1 << j) != 0
            {
                // The first value takes the template's place; any others follow it.
                if filled & (1 << j) == 0 {
                    place(c, &mut out, variant, absent, j, name, value);
                } else {
                    out.append(name.clone(), value);
                }
                filled |= 1 << j;
            } else if *name == header::SET_COOKIE {
                out.append(name.clone(), value);
            } else if let Some(i) = c.slots.iter().position(|(n, _)| n == name)
                && absent & (1 << i) == 0
            {
                if c.slots[i].1 == Merge::List {
                    merged |= 1 << i;
                    out.append(name.clone(), value);
                }
            } else if !(c.owned.contains(name) || private && shared_cache_control(name)) {
                out.append(name.clone(), value);
            }
        }
        // A place whose every value was dropped (a refused cookie) goes.
        for (j, name) in PLACES.iter().enumerate() {
            if variant & !filled & (1 << j) != 0 {
                out.remove(name);
            }
        }
        *headers = out;
        if merged != 0 && join {
            join_lists(headers, &c.slots, merged);
        }
        self.per_request(facts, headers, cookies, private && !no_store);
        merged != 0
    }

    /// [`write`](Self::write) for a response whose one header is its `Content-Type`: the
    /// template variant with its place (and, for a response shared caches must not keep
    /// (`private`) unless it is a 304, the one with a place for `no-store` after it),
    /// filled in one walk. `PER_REQUEST`: the facts may ask for headers that depend on the
    /// request (a nonce, credentials, a 304).
    #[inline(always)]
    fn write_content_type<const PER_REQUEST: bool>(
        &self,
        facts: &RequestFacts,
        headers: &mut HeaderMap,
        values: impl IntoIterator<Item = Option<HeaderValue>>,
        content_type: HeaderValue,
        private: bool,
    ) {
        let c = &*self.0;
        let no_store =
            PER_REQUEST && private && !facts.not_modified && c.places & CACHE_CONTROL_PLACE != 0;
        let variant = CONTENT_TYPE_PLACE | if no_store { CACHE_CONTROL_PLACE } else { 0 };
        let mut out = c.templates[usize::from(facts.https)][variant].clone();
        let mut values = values.into_iter();
        let mut absent = 0u32;
        let mut places = out.iter_mut();
        for (i, (_, place)) in places.by_ref().take(c.slots.len()).enumerate() {
            match values.next().flatten() {
                Some(value) => fill(place, value),
                None => absent |= 1 << i,
            }
        }
        let content_type = match places.next() {
            Some((name, place)) if *name == header::CONTENT_TYPE => {
                fill(place, content_type);
                None
            }
            _ => Some(content_type),
        };
        // `no-store`'s place follows `Content-Type`'s: the same walk reaches it.
        let no_store_placed = !no_store
            || content_type.is_none()
                && match places.next() {
                    Some((name, place)) if *name == header::CACHE_CONTROL => {
                        fill(place, HeaderValue::from_static("no-store"));
                        true
                    }
                    _ => false,
                };
        // Not where `with_places` put them (another `http` iteration order).
        if let Some(content_type) = content_type {
            out.insert(header::CONTENT_TYPE, content_type);
        }
        if !no_store_placed {
            place_no_store(c, &mut out, variant, 0);
        }
        remove_absent(&mut out, &c.slots, absent);
        *headers = out;
        if PER_REQUEST {
            self.per_request(facts, headers, 0, private && !no_store);
        }
    }

    /// Whether shared caches must not keep the response (its `headers`): it answers a request
    /// with credentials, or it is a document whose CSP carries this request's nonce (a cached
    /// page would give every visitor the same nonce, which an injected script could then
    /// carry), or a `304` that says it revalidates one: a cache takes a 304's fields onto what
    /// it stored (RFC 9111 §4.3.4), so a 304 with a `Content-Type` gets that type's rule, as a
    /// 200 does. A 304 without one (most: `ServeDir`'s, a handler's bare 304) keeps its own
    /// `Cache-Control`: it may revalidate an asset a CDN keeps, which a `private` there would
    /// take out of the CDN on its next revalidation, while a page's 200 went out `private`
    /// and no shared cache kept it to update. Scripts, styles, images and JSON under the same
    /// nonce CSP stay cacheable.
    ///
    /// `content_types` gives the response's `Content-Type` fields.
    #[inline]
    fn not_for_shared_caches<'a, C: IntoIterator<Item = &'a HeaderValue>>(
        &self,
        facts: &RequestFacts,
        content_types: impl Fn() -> C,
    ) -> bool {
        let c = &*self.0;
        c.no_store_with_credentials && facts.credentials
            || facts.nonce.is_some()
                && (!facts.not_a_page
                    || facts.not_modified && content_types().into_iter().next().is_some())
                && c.csp.as_ref().is_some_and(CompiledCsp::wants_nonce)
                && may_run_scripts(content_types())
    }

    /// The headers that depend on the request: a nonce CSP (none on a 304, see
    /// [`RequestFacts::not_modified`]), `no-store` (or the service's
    /// `Cache-Control` made private) when shared caches must not keep the response
    /// (`private`, from [`not_for_shared_caches`](Self::not_for_shared_caches), false when
    /// `write` already put `no-store` in the template's place); and
    /// repeated cookies (`cookies` of them) made one per name.
    #[inline]
    fn per_request(
        &self,
        facts: &RequestFacts,
        headers: &mut HeaderMap,
        cookies: usize,
        private: bool,
    ) {
        let c = &*self.0;
        if let Some(csp) = &c.csp
            && csp.wants_nonce()
        {
            if facts.not_modified {
                headers.remove(&csp.header);
            } else if let Some(nonce) = &facts.nonce {
                headers.insert(csp.header.clone(), csp.value(facts.https, Some(nonce)));
            }
        }
        if c.service_hsts && !facts.https {
            // RFC 6797 §7.2: never over plain HTTP, whoever set it.
            headers.remove(header::STRICT_TRANSPORT_SECURITY);
        }
        if private {
            match headers.entry(header::CACHE_CONTROL) {
                // A 304 without one leaves the stored response's (RFC 9111 §4.3.4), which its
                // 200 made private or `no-store` (so no shared cache kept it); a `no-store`
                // here would only make a browser drop what it kept under the handler's own
                // `private`.
                header::Entry::Vacant(_) if facts.not_modified => {}
                header::Entry::Vacant(entry) => {
                    entry.insert(HeaderValue::from_static("no-store"));
                }
                header::Entry::Occupied(mut entry) => {
                    if let Some(private) = made_private(entry.iter()) {
                        entry.insert(private);
                    }
                }
            }
        }
        if cookies > 1 {
            c.cookies.dedup(headers);
        }
    }
}

/// Whether a response with these `Content-Type` fields may be a document that runs scripts,
/// where a CSP nonce counts: one of its media types is HTML, XHTML, SVG or other XML, an XSLT
/// style sheet (`text/xsl`, which Chromium makes an XML document of), or
/// `multipart/x-mixed-replace` (each part is rendered as the page, whatever its type), or it
/// has no media type a browser can read (none at all, or none valid: a browser sniffs it).
/// Every field and every element of a comma-separated list counts, not the first: browsers
/// take the last valid type of them all (the Fetch standard's "extract a MIME type"), so
/// `application/json, text/html` is a page. Out of line: inlined, its loops cost every
/// response's `apply_with` 10 instructions, nonce or not (callgrind, `Hardening::strict()`).
#[inline(never)]
fn may_run_scripts<'a>(content_types: impl IntoIterator<Item = &'a HeaderValue>) -> bool {
    let mut readable = false;
    for value in content_types {
        let Ok(text) = value.to_str() else {
            return true;
        };
        let mut rest = Some(text);
        while let Some(text) = rest {
            // The element's media type: up to its first `;` (its parameters) or its end, found
            // without reading the parameters. A quote before either leaves it none (a quote is
            // no token) and may hide the comma that ends the element.
            let stop = text.bytes().position(|b| matches!(b, b';' | b',' | b'"'));
            let stop_byte = stop.map(|at| text.as_bytes()[at]);
            if stop_byte != Some(b'"') {
                let essence = text[..stop.unwrap_or(text.len())].trim();
                // Media types all: named first, so that a page's type is not read twice.
                if is_page_type(essence) {
                    return true;
                }
                if is_media_type(essence) {
                    readable = true;
                    if essence.len() > 4
                        && essence[essence.len() - 4..].eq_ignore_ascii_case("+xml")
                    {
                        return true;
                    }
                }
            }
            // The next element: past the comma that ends this one.
            rest = match (stop, stop_byte) {
                (Some(at), Some(b',')) => Some(&text[at + 1..]),
                (Some(at), _) => element_end(&text[at..]).map(|end| &text[at + end + 1..]),
                (None, _) => None,
            };
        }
    }
    !readable
}

/// Whether `essence` names one of the media types of documents that run scripts (an XML one
/// by its `+xml` suffix apart: see [`may_run_scripts`]).
fn is_page_type(essence: &str) -> bool {
    let is = |name: &str| essence.eq_ignore_ascii_case(name);
    is("text/html")
        || is("application/xhtml+xml")
        || is("text/xml")
        || is("application/xml")
        || is("text/xsl")
        || is("multipart/x-mixed-replace")
}

/// Whether `essence` is a media type a browser reads: `type/subtype`, both tokens, not the
/// `*/*` that the Fetch standard skips.
fn is_media_type(essence: &str) -> bool {
    let is_token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    essence != "*/*"
        && essence
            .split_once('/')
            .is_some_and(|(kind, subtype)| is_token(kind) && is_token(subtype))
}

/// A field that a shared cache reads instead of `Cache-Control`: `CDN-Cache-Control` (RFC
/// 9213) and the CDNs' own `…-Cache-Control`, `Surrogate-Control`, Akamai's `Edge-Control`,
/// nginx's `X-Accel-Expires`.
fn shared_cache_control(name: &HeaderName) -> bool {
    let name = name.as_str();
    name.ends_with("-cache-control")
        || matches!(
            name,
            "surrogate-control" | "edge-control" | "x-accel-expires"
        )
}

/// The service's `Cache-Control` (all its values), on a response to a request with
/// credentials, made private: `public` and `s-maxage` dropped and `private` added, the rest
/// (the browser's `max-age`, `no-cache`, …) kept. `None` when it is private already: it has
/// `no-store` or a bare `private` (`private="…"` names only fields a shared cache must not
/// keep). A value that is not text becomes `no-store`.
fn made_private<'a>(values: impl Iterator<Item = &'a HeaderValue>) -> Option<HeaderValue> {
    let mut kept = String::new();
    for value in values {
        let Ok(text) = value.to_str() else {
            return Some(HeaderValue::from_static("no-store"));
        };
        for directive in list_elements(text) {
            let name = directive.split('=').next().unwrap_or(directive).trim();
            if name.eq_ignore_ascii_case("no-store") || directive.eq_ignore_ascii_case("private") {
                return None;
            }
            if name.eq_ignore_ascii_case("public") || name.eq_ignore_ascii_case("s-maxage") {
                continue;
            }
            kept.push_str(directive);
            kept.push_str(", ");
        }
    }
    kept.push_str("private");
    Some(HeaderValue::from_str(&kept).unwrap_or(HeaderValue::from_static("no-store")))
}

/// The elements of a comma-separated list (the directives of a `Cache-Control` value):
/// split at commas outside quoted strings (see [`element_end`]), trimmed, empty ones left
/// out. One at a time, so that reading a value allocates nothing.
fn list_elements(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        while let Some(text) = rest {
            let element = match element_end(text) {
                Some(end) => {
                    rest = Some(&text[end + 1..]);
                    &text[..end]
                }
                None => {
                    rest = None;
                    text
                }
            };
            let element = element.trim();
            if !element.is_empty() {
                return Some(element);
            }
        }
        None
    })
}

/// Where the list element at the start of `text` ends: at its first comma outside a quoted
/// string (in which a backslash escapes the byte after it); `None` when it runs to the end.
fn element_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut at = 0;
    loop {
        at += bytes[at..].iter().position(|&b| b == b',' || b == b'"')?;
        if bytes[at] == b',' {
            return Some(at);
        }
        // A quoted string, to its closing quote.
        at += 1;
        loop {
            match bytes.get(at)? {
                b'\\' => at += 2,
                b'"' => break,
                _ => at += 1,
            }
        }
        at += 1;
    }
}

/// The nonce a layer further out gave the request, else a new one, put in `extensions`.
fn request_nonce(extensions: &mut http::Extensions) -> CspNonce {
    if let Some(nonce) = extensions.get::<CspNonce>() {
        return *nonce;
    }
    let nonce = CspNonce::generate();
    extensions.insert(nonce);
    nonce
}

impl Compiled {
    /// Where template variant `variant` holds its place for `PLACES[j]`: right after the
    /// slots, in `PLACES` order (see [`with_places`]), so that few entries are walked to it.
    #[inline]
    fn place_at(&self, variant: usize, j: usize) -> usize {
        self.slots.len() + (variant & ((1 << j) - 1)).count_ones() as usize
    }
}

/// Writes `value` over the placeholder template variant `variant` has for `PLACES[j]`
/// (`name`): found by position (no hashing); by name when removing an absent slot moved
/// entries (`absent`, see [`remove_absent`]) or in another `http` iteration order.
#[inline(never)]
fn place(
    c: &Compiled,
    out: &mut HeaderMap,
    variant: usize,
    absent: u32,
    j: usize,
    name: &HeaderName,
    value: HeaderValue,
) {
    let by_position = if absent == 0 {
        let at = c.place_at(variant, j);
        out.iter_mut().nth(at).filter(|(n, _)| *n == name)
    } else {
        None
    };
    match by_position {
        Some((_, place)) => fill(place, value),
        None => match out.get_mut(name) {
            Some(place) => *place = value,
            None => {
                out.append(name.clone(), value);
            }
        },
    }
}

/// Writes `value` over a template's placeholder, the empty static value [`with_places`]
/// put there: it owns nothing, so it is forgotten, not dropped (a drop calls through the
/// value's vtable for nothing, and keeps `value` on the stack across that call).
#[inline(always)]
fn fill(placeholder: &mut HeaderValue, value: HeaderValue) {
    let placeholder = std::mem::replace(placeholder, value);
    debug_assert!(placeholder.is_empty(), "a template's placeholder is empty");
    std::mem::forget(placeholder);
}

/// Removes the placeholders of the slots whose bit is set in `absent` (no value this time).
#[inline]
fn remove_absent(map: &mut HeaderMap, slots: &[(HeaderName, Merge)], absent: u32) {
    // Usually every slot has its value: nothing to look up.
    if absent == 0 {
        return;
    }
    remove_slots(map, slots, absent);
}

#[cold]
#[inline(never)]
fn remove_slots(map: &mut HeaderMap, slots: &[(HeaderName, Merge)], absent: u32) {
    for (i, (slot, _)) in slots.iter().enumerate() {
        if absent & (1 << i) != 0 {
            map.remove(slot);
        }
    }
}

/// Headers most responses carry, given a place in the templates: cloning a map gives it no
/// room to grow, so a header appended to the clone costs a reallocation of every entry; a
/// placeholder overwritten in place does not. `Cache-Control` is either the service's or
/// the `no-store` of a response shared caches must not keep (a credentialed one, a nonce
/// page).
const PLACES: [HeaderName; PLACE_COUNT] = [
    header::CONTENT_TYPE,
    header::SET_COOKIE,
    header::CACHE_CONTROL,
];

/// How many headers [`PLACES`] names.
const PLACE_COUNT: usize = 3;

/// How many variants each template has: one per subset of [`PLACES`].
const VARIANTS: usize = 1 << PLACE_COUNT;

/// The bit of `Content-Type` in a variant: `PLACES[0]`.
const CONTENT_TYPE_PLACE: usize = 1 << 0;

/// The bit of `Cache-Control` in a variant: `PLACES[2]`.
const CACHE_CONTROL_PLACE: usize = 1 << 2;

/// [`place`]s the `no-store` a response shared caches must not keep gets when it has no
/// `Cache-Control`, in the place template variant `variant` has for it.
fn place_no_store(c: &Compiled, out: &mut HeaderMap, variant: usize, absent: u32) {
    let value = HeaderValue::from_static("no-store");
    place(c, out, variant, absent, 2, &header::CACHE_CONTROL, value);
}

/// Which of [`PLACES`] may have a placeholder: those the policy does not fix itself and that
/// are not slots.
fn places(owned: &[HeaderName], slots: &[(HeaderName, Merge)]) -> usize {
    PLACES
        .iter()
        .enumerate()
        .filter(|(_, name)| !owned.contains(name) && !slots.iter().any(|(n, _)| n == *name))
        .fold(0, |mask, (j, _)| mask | (1 << j))
}

/// The template in [`VARIANTS`] variants, found by position: the slots' placeholders, then
/// in variant `v` a placeholder for each of [`PLACES`] whose bit is set in `v` and in
/// `allowed` (see [`places`]), then the policy's `own` headers.
fn with_places(
    slots: &[(HeaderName, Merge)],
    own: &HeaderMap,
    allowed: usize,
) -> [HeaderMap; VARIANTS] {
    std::array::from_fn(|v| {
        let mut map = HeaderMap::with_capacity(slots.len() + own.len() + 6);
        for (name, _) in slots {
            map.insert(name.clone(), HeaderValue::from_static(""));
        }
        for (j, name) in PLACES.iter().enumerate() {
            if v & allowed & (1 << j) != 0 {
                map.insert(name.clone(), HeaderValue::from_static(""));
            }
        }
        for (name, value) in own {
            map.append(name.clone(), value.clone());
        }
        map
    })
}

/// Joins each merged list slot into one value: the service's values first, ours last.
fn join_lists(headers: &mut HeaderMap, slots: &[(HeaderName, Merge)], merged: u32) {
    for (i, (name, _)) in slots.iter().enumerate() {
        if merged & (1 << i) == 0 {
            continue;
        }
        // Ours is the first value (the template's slot); the service's follow it.
        let mut values: Vec<&HeaderValue> = headers.get_all(name).iter().collect();
        if values.is_empty() {
            continue;
        }
        values.rotate_left(1);
        if let Some(value) = hardening_errors::join_header_values(&values) {
            headers.insert(name.clone(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(set: &HeaderSet, facts: RequestFacts, headers: &mut HeaderMap) {
        set.apply(&facts, headers);
    }

    #[test]
    fn places_are_where_apply_with_looks_for_them() {
        let id = HeaderName::from_static("x-request-id");
        for set in [
            HeaderPolicy::api().build().unwrap(),
            HeaderPolicy::api()
                .build()
                .unwrap()
                .with_slots([(id, Merge::Replace)])
                .unwrap(),
        ] {
            let c = &*set.0;
            assert_eq!(c.places, 0b111, "every place in use");
            for https in [false, true] {
                for variant in 0..VARIANTS {
                    let template = &c.templates[https as usize][variant];
                    for (j, name) in PLACES.iter().enumerate() {
                        if variant & (1 << j) == 0 {
                            continue;
                        }
                        let found = template.iter().nth(c.place_at(variant, j)).map(|(n, _)| n);
                        assert_eq!(found, Some(name), "https {https}, variant {variant}");
                    }
                }
            }
        }
    }

    #[test]
    fn api_preset_headers() {
        let set = HeaderPolicy::api().build().unwrap();
        let mut h = HeaderMap::new();
        h.insert("server", HeaderValue::from_static("nginx/1.2"));
        h.insert("x-powered-by", HeaderValue::from_static("Express"));
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=1"),
        );
        apply(&set, RequestFacts::default(), &mut h);
        assert!(!h.contains_key("server") && !h.contains_key("x-powered-by"));
        assert!(
            !h.contains_key(header::STRICT_TRANSPORT_SECURITY),
            "no HSTS over HTTP"
        );
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(h["x-permitted-cross-domain-policies"], "none");
        assert!(
            h[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .starts_with("default-src 'none'")
        );
        assert!(!h.contains_key(header::CACHE_CONTROL));

        let mut h = HeaderMap::new();
        apply(
            &set,
            RequestFacts {
                https: true,
                credentials: true,
                ..RequestFacts::default()
            },
            &mut h,
        );
        assert_eq!(
            h[header::STRICT_TRANSPORT_SECURITY],
            "max-age=63072000; includeSubDomains"
        );
        assert_eq!(h[header::CACHE_CONTROL], "no-store");

        let mut h = HeaderMap::new();
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=60"),
        );
        apply(
            &set,
            RequestFacts {
                https: true,
                credentials: true,
                ..RequestFacts::default()
            },
            &mut h,
        );
        assert_eq!(
            h[header::CACHE_CONTROL],
            "private, max-age=60",
            "the handler's own wins"
        );
    }

    #[test]
    fn handler_csp_is_replaced() {
        let set = HeaderPolicy::api().build().unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src *"),
        );
        h.insert(
            header::CONTENT_SECURITY_POLICY_REPORT_ONLY,
            HeaderValue::from_static("default-src *"),
        );
        apply(&set, RequestFacts::default(), &mut h);
        assert_eq!(h.get_all(header::CONTENT_SECURITY_POLICY).iter().count(), 1);
        assert!(!h.contains_key(header::CONTENT_SECURITY_POLICY_REPORT_ONLY));
        assert!(
            h[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .starts_with("default-src 'none'")
        );
    }

    /// While a policy was tried in report-only mode, a route's own enforcing CSP was dropped,
    /// and without a policy HSTS a route's own HSTS was: a route could not be stricter than
    /// a policy that sends nothing in their place. Both are kept now; HSTS still never goes
    /// out over plain HTTP, and a policy that sends a header still wins.
    #[test]
    fn headers_the_policy_does_not_send_stay_the_routes_own() {
        let csp = HeaderValue::from_static("default-src 'self'");
        let hsts = HeaderValue::from_static("max-age=63072000");
        let route = || {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_SECURITY_POLICY, csp.clone());
            h.insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
            h
        };
        let https = || RequestFacts {
            https: true,
            ..RequestFacts::default()
        };
        let policys_csp =
            |h: &HeaderMap, name| h[name].to_str().unwrap().starts_with("default-src 'none'");

        let trying = HeaderPolicy::api()
            .csp(Csp::api().dangerous_report_only())
            .build()
            .unwrap();
        let mut h = route();
        apply(&trying, https(), &mut h);
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], csp);
        assert!(policys_csp(&h, header::CONTENT_SECURITY_POLICY_REPORT_ONLY));
        assert_eq!(
            h[header::STRICT_TRANSPORT_SECURITY],
            "max-age=63072000; includeSubDomains",
            "the policy's HSTS wins"
        );

        let without_hsts = HeaderPolicy::api()
            .dangerous_without_hsts()
            .build()
            .unwrap();
        let mut h = route();
        apply(&without_hsts, https(), &mut h);
        assert_eq!(h[header::STRICT_TRANSPORT_SECURITY], hsts);
        assert!(policys_csp(&h, header::CONTENT_SECURITY_POLICY), "{h:?}");
        let mut h = route();
        apply(&without_hsts, RequestFacts::default(), &mut h);
        assert!(
            !h.contains_key(header::STRICT_TRANSPORT_SECURITY),
            "over HTTP"
        );
    }

    /// Values for `slotted()`'s two slots: both, either or neither.
    const SLOT_VALUES: [[Option<&str>; 2]; 4] = [
        [Some("ours"), Some("\"per-ip\";r=1;t=2")],
        [None, Some("\"per-ip\";r=1;t=2")],
        [Some("ours"), None],
        [None, None],
    ];

    fn slotted() -> (HeaderSet, HeaderName, HeaderName) {
        let id = HeaderName::from_static("x-request-id");
        let list = HeaderName::from_static("ratelimit");
        let set = HeaderPolicy::api()
            .build()
            .unwrap()
            .with_slots([(id.clone(), Merge::Replace), (list.clone(), Merge::List)])
            .unwrap();
        (set, id, list)
    }

    #[test]
    fn slots_are_written_with_the_headers() {
        let (set, id, list) = slotted();
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        h.insert(&id, HeaderValue::from_static("from-the-service"));
        set.apply_with(
            &RequestFacts::default(),
            &mut h,
            [
                Some(HeaderValue::from_static("ours")),
                Some(HeaderValue::from_static("\"per-ip\";r=1;t=2")),
            ],
        );
        assert_eq!(h.get_all(&id).iter().collect::<Vec<_>>(), ["ours"]);
        assert_eq!(h[&list], "\"per-ip\";r=1;t=2");
        assert_eq!(h[header::CONTENT_TYPE], "text/plain");
        assert_eq!(h.get_all(header::CONTENT_TYPE).iter().count(), 1);
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert!(
            h.values().all(|v| !v.is_empty()),
            "no placeholder left: {h:?}"
        );
    }

    #[test]
    fn list_slots_join_the_services_values_first() {
        let (set, _, list) = slotted();
        let mut h = HeaderMap::new();
        h.append(&list, HeaderValue::from_static("\"inner\";r=5;t=1"));
        h.append(&list, HeaderValue::from_static("\"inner2\";r=6;t=1"));
        set.apply_with(
            &RequestFacts::default(),
            &mut h,
            [None, Some(HeaderValue::from_static("\"outer\";r=9;t=3"))],
        );
        assert_eq!(
            h.get_all(&list).iter().collect::<Vec<_>>(),
            ["\"inner\";r=5;t=1, \"inner2\";r=6;t=1, \"outer\";r=9;t=3"]
        );
    }

    #[test]
    fn absent_slots_leave_the_services_value() {
        let (set, id, list) = slotted();
        let mut h = HeaderMap::new();
        h.insert(&id, HeaderValue::from_static("theirs"));
        h.insert(&list, HeaderValue::from_static("\"inner\";r=5;t=1"));
        set.apply(&RequestFacts::default(), &mut h);
        assert_eq!(h[&id], "theirs");
        assert_eq!(h[&list], "\"inner\";r=5;t=1");
        let mut h = HeaderMap::new();
        set.apply(&RequestFacts::default(), &mut h);
        assert!(!h.contains_key(&id) && !h.contains_key(&list), "{h:?}");
        assert!(!h.contains_key(header::CONTENT_TYPE));
    }

    #[test]
    fn places_are_filled_whichever_slots_are_absent() {
        // Removing an absent slot moves the map's last entry (a place) into its spot: the
        // service's values must still land in their places, by position or by name.
        let (set, id, list) = slotted();
        for https in [false, true] {
            for values in SLOT_VALUES {
                let mut h = HeaderMap::new();
                h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                h.append(header::SET_COOKIE, HeaderValue::from_static("a=1"));
                h.append(header::SET_COOKIE, HeaderValue::from_static("b=2"));
                let facts = RequestFacts {
                    https,
                    ..RequestFacts::default()
                };
                set.apply_with(
                    &facts,
                    &mut h,
                    values.map(|v| v.map(HeaderValue::from_static)),
                );
                let case = format!("https {https}, {values:?}: {h:?}");
                assert_eq!(
                    h.get_all(header::CONTENT_TYPE).iter().collect::<Vec<_>>(),
                    ["text/plain"],
                    "{case}"
                );
                assert_eq!(h.get_all(header::SET_COOKIE).iter().count(), 2, "{case}");
                assert!(h.values().all(|v| !v.is_empty()), "{case}");
                for (name, value) in [&id, &list].into_iter().zip(values) {
                    assert_eq!(h.get(name).map(|v| v.to_str().unwrap()), value, "{case}");
                }
            }
        }
    }

    #[test]
    fn slots_filled_by_position_or_by_name_give_the_same_headers() {
        let (set, id, list) = slotted();
        assert!(set.0.slots_in_front, "built sets take the by-position path");
        let by_name = HeaderSet(Arc::new(Compiled {
            slots_in_front: false,
            ..(*set.0).clone()
        }));
        let from_service: [&[(&HeaderName, &str)]; 4] = [
            &[],
            &[(&header::CONTENT_TYPE, "text/plain")],
            &[(&header::SET_COOKIE, "a=1"), (&header::SET_COOKIE, "b=2")],
            &[(&list, "\"inner\";r=5;t=1"), (&id, "theirs")],
        ];
        // With only a `Content-Type` from the service, `set` takes the one-walk path and
        // `by_name` the general one.
        for (https, credentials) in [(false, false), (true, false), (false, true), (true, true)] {
            for values in SLOT_VALUES {
                for service in from_service {
                    let facts = RequestFacts {
                        https,
                        credentials,
                        ..RequestFacts::default()
                    };
                    let sorted = |set: &HeaderSet| {
                        let mut h = HeaderMap::new();
                        for (name, value) in service {
                            h.append((*name).clone(), HeaderValue::from_static(value));
                        }
                        set.apply_with(
                            &facts,
                            &mut h,
                            values.map(|v| v.map(HeaderValue::from_static)),
                        );
                        let mut pairs: Vec<(String, String)> = h
                            .iter()
                            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
                            .collect();
                        pairs.sort();
                        pairs
                    };
                    assert_eq!(
                        sorted(&set),
                        sorted(&by_name),
                        "https {https}, credentials {credentials}, {values:?}, {service:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn placed_headers_leave_no_placeholder() {
        let set = HeaderPolicy::api().build().unwrap();
        let cases: [&[(&str, &str)]; 6] = [
            &[("content-type", "text/plain")],
            &[("set-cookie", "a=1")],
            &[("set-cookie", "a=1"), ("set-cookie", "b=2; Path=/")],
            // Refused (a __Host- cookie with a Domain): the place is removed, not left empty.
            &[(
                "set-cookie",
                "__Host-x=1; Secure; Path=/; Domain=example.com",
            )],
            &[
                ("content-type", "text/html"),
                ("set-cookie", "__Host-x=1; Domain=example.com"),
                ("set-cookie", "ok=1"),
            ],
            &[("location", "/next")],
        ];
        for case in cases {
            let mut h = HeaderMap::new();
            for (name, value) in case {
                h.append(*name, HeaderValue::from_static(value));
            }
            set.apply(&RequestFacts::default(), &mut h);
            assert!(h.values().all(|v| !v.is_empty()), "{case:?} -> {h:?}");
            assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
            let cookies: Vec<_> = h.get_all(header::SET_COOKIE).iter().collect();
            let kept = case
                .iter()
                .filter(|(n, v)| *n == "set-cookie" && !v.starts_with("__Host-"))
                .count();
            assert_eq!(cookies.len(), kept, "{case:?} -> {h:?}");
            for cookie in cookies {
                let cookie = cookie.to_str().unwrap();
                assert!(
                    cookie.contains("; HttpOnly") && cookie.contains("; Secure"),
                    "{cookie}"
                );
            }
            for (name, value) in case.iter().filter(|(n, _)| *n != "set-cookie") {
                assert_eq!(h[*name], *value, "{case:?}");
            }
        }
    }

    #[test]
    fn a_slot_named_like_a_placed_header_keeps_its_own_rule() {
        let set = HeaderPolicy::api()
            .build()
            .unwrap()
            .with_slots([(header::CONTENT_TYPE, Merge::Replace)])
            .unwrap();
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        set.apply_with(
            &RequestFacts::default(),
            &mut h,
            [Some(HeaderValue::from_static("application/json"))],
        );
        assert_eq!(
            h.get_all(header::CONTENT_TYPE).iter().collect::<Vec<_>>(),
            ["application/json"]
        );
    }

    #[test]
    fn too_many_slots_is_a_config_error() {
        let set = HeaderPolicy::api().build().unwrap();
        let slots = (0..33).map(|i| {
            (
                HeaderName::from_bytes(format!("x-s{i}").as_bytes()).unwrap(),
                Merge::Replace,
            )
        });
        assert!(set.with_slots(slots).is_err());
        assert!(set.with_slots([(header::SET_COOKIE, Merge::List)]).is_err());
    }

    #[test]
    fn validation() {
        assert!(
            HeaderPolicy::api()
                .hsts(Duration::ZERO, true, false)
                .is_err()
        );
        assert!(
            HeaderPolicy::api()
                .hsts(Duration::from_secs(3600), true, true)
                .is_err()
        );
        assert!(
            HeaderPolicy::api()
                .cross_origin_opener_policy("same-site")
                .is_err()
        );
        assert!(HeaderPolicy::api().frame_options("ALLOW-FROM x").is_err());
        assert!(HeaderPolicy::api().header("bad name", "x").is_err());
        assert!(
            HeaderPolicy::api()
                .csp(Csp::api().directive("img-src", ["self"]))
                .build()
                .is_err()
        );
        let set = HeaderPolicy::api()
            .dangerous_remove_header("X-Frame-Options")
            .unwrap()
            .build()
            .unwrap();
        let mut h = HeaderMap::new();
        set.apply(&RequestFacts::default(), &mut h);
        assert!(!h.contains_key(header::X_FRAME_OPTIONS));
    }

    fn facts(https: bool, credentials: bool) -> RequestFacts {
        RequestFacts {
            https,
            credentials,
            nonce: None,
            not_a_page: false,
            not_modified: false,
        }
    }

    /// The message of `header(name, …)`'s error, which must be one.
    fn refused(name: &str, value: &str) -> String {
        match HeaderPolicy::api().header(name, value) {
            Ok(policy) => panic!("header({name:?}, {value:?}) accepted: {policy:?}"),
            Err(err) => err.to_string(),
        }
    }

    /// HSTS through `header` would land in the plain-HTTP template too (RFC 6797 §7.2: not
    /// over plain HTTP) and skip `hsts()`'s checks: refused at start-up, naming `hsts`.
    #[test]
    fn policy_header_sends_hsts_over_plain_http() {
        for name in ["Strict-Transport-Security", "strict-transport-security"] {
            let err = refused(name, "max-age=0");
            assert!(err.contains("hsts("), "{err}");
        }
        let set = HeaderPolicy::api().build().unwrap();
        let mut h = HeaderMap::new();
        set.apply(&facts(false, false), &mut h);
        assert!(!h.contains_key(header::STRICT_TRANSPORT_SECURITY), "{h:?}");
    }

    /// A `Set-Cookie` through `header` would go out on every response without `Secure`,
    /// `HttpOnly` or `SameSite` (DESIGN §4): refused, pointing at the cookie rules.
    #[test]
    fn policy_header_set_cookie_skips_the_cookie_rules() {
        let err = refused("Set-Cookie", "tracker=1");
        assert!(err.contains("cookies(CookiePolicy"), "{err}");
    }

    /// `Cache-Control` through `header` would replace `no-store` on responses to
    /// credentialed requests: what `dangerous_allow_caching_with_credentials` is for, without
    /// its name or warning. Refused, naming it.
    #[test]
    fn policy_header_cache_control_defeats_no_store_for_credentials() {
        let err = refused("Cache-Control", "public, max-age=86400");
        assert!(
            err.contains("dangerous_allow_caching_with_credentials"),
            "{err}"
        );
        let set = HeaderPolicy::api().build().unwrap();
        let mut h = HeaderMap::new();
        set.apply(&facts(true, true), &mut h);
        assert_eq!(h[header::CACHE_CONTROL], "no-store", "{h:?}");
    }

    /// `no-store` takes a place of its own in the template (one clone, no growth): on every
    /// path (`Content-Type` alone, with a cookie, with another header; with and without
    /// slots, whose values may be missing) a response shared caches must not keep carries
    /// exactly one `Cache-Control`, `no-store` or the handler's made private; any other none
    /// of its own; no placeholder is ever left empty.
    #[test]
    fn cache_control_takes_its_place_on_every_path() {
        let id = HeaderName::from_static("x-request-id");
        let api = HeaderPolicy::api().build().unwrap();
        let html = HeaderPolicy::html().build().unwrap();
        let sets = [
            api.clone(),
            api.with_slots([(id.clone(), Merge::Replace)]).unwrap(),
            html.clone(),
            html.with_slots([(id.clone(), Merge::Replace)]).unwrap(),
        ];
        let given: [&[(&str, &str)]; 6] = [
            &[("content-type", "text/html")],
            &[("content-type", "application/json")],
            &[
                ("content-type", "text/html"),
                ("set-cookie", "a=1; Secure; HttpOnly; SameSite=Lax; Path=/"),
            ],
            &[("x-custom", "1")],
            &[],
            &[
                ("content-type", "text/html"),
                ("cache-control", "max-age=60"),
            ],
        ];
        for (s, set) in sets.iter().enumerate() {
            for (g, fields) in given.iter().enumerate() {
                for (credentials, nonce, slot_value) in [
                    (false, false, true),
                    (true, false, true),
                    (false, true, true),
                    (true, true, false),
                    (false, true, false),
                ] {
                    let mut h = HeaderMap::new();
                    for (name, value) in *fields {
                        h.append(*name, HeaderValue::from_static(value));
                    }
                    let facts = RequestFacts {
                        https: s % 2 == 0,
                        credentials,
                        nonce: nonce.then(CspNonce::generate),
                        not_a_page: false,
                        not_modified: false,
                    };
                    let value = slot_value.then(|| HeaderValue::from_static("id-1"));
                    set.apply_with(&facts, &mut h, [value]);
                    let case = format!(
                        "set {s}, given {g}, credentials {credentials}, nonce {nonce}, slot {slot_value}: {h:?}"
                    );
                    assert!(
                        h.values().all(|v| !v.is_empty()),
                        "an empty placeholder: {case}"
                    );
                    let typed = fields.iter().any(|(n, _)| *n == "content-type");
                    let html_type = fields.iter().any(|(_, v)| *v == "text/html");
                    let page = s >= 2 && nonce && (html_type || !typed);
                    let cache: Vec<_> = h.get_all(header::CACHE_CONTROL).iter().collect();
                    let own = fields.iter().any(|(n, _)| *n == "cache-control");
                    match (credentials || page, own) {
                        (true, false) => assert_eq!(cache, ["no-store"], "{case}"),
                        (true, true) => assert_eq!(cache, ["max-age=60, private"], "{case}"),
                        (false, true) => assert_eq!(cache, ["max-age=60"], "{case}"),
                        (false, false) => assert!(cache.is_empty(), "{case}"),
                    }
                    assert_eq!(h.contains_key(&id), s % 2 == 1 && slot_value, "{case}");
                    for (name, value) in fields.iter().filter(|(n, _)| *n != "cache-control") {
                        assert_eq!(h.get_all(*name).iter().count(), 1, "{name}: {case}");
                        if *name != "set-cookie" {
                            assert_eq!(h[*name], *value, "{case}");
                        }
                    }
                }
            }
        }
    }

    /// A handler's own `Cache-Control` on a response to a request with credentials was kept as
    /// it was: `public, max-age=3600` (or `max-age=60` alone, which a shared cache may keep
    /// for a request with a cookie) let a CDN serve one user's response to others, as
    /// `CDN-Cache-Control` did past our `no-store`. Now made private, the browser's own
    /// caching kept.
    #[test]
    fn a_handlers_cache_control_on_a_credentialed_response_is_made_private() {
        let set = HeaderPolicy::api().build().unwrap();
        let respond =
            |set: &HeaderSet, credentials: bool, given: &[(&'static str, &'static str)]| {
                let mut h = HeaderMap::new();
                for (name, value) in given {
                    h.append(*name, HeaderValue::from_static(value));
                }
                set.apply(&facts(true, credentials), &mut h);
                h
            };
        for (given, sent) in [
            (&["public, max-age=3600"][..], "max-age=3600, private"),
            (&["max-age=60"], "max-age=60, private"),
            (&["Public,S-MaxAge=600 , no-cache"], "no-cache, private"),
            (&["public", "max-age=5"], "max-age=5, private"),
            (
                &["no-cache=\"set-cookie, private\", must-revalidate"],
                "no-cache=\"set-cookie, private\", must-revalidate, private",
            ),
            (
                &["private=\"set-cookie\""],
                "private=\"set-cookie\", private",
            ),
            // Private already: kept as it was.
            (&["private, max-age=60"], "private, max-age=60"),
            (&["public, no-store"], "public, no-store"),
            (&["NO-STORE"], "NO-STORE"),
        ] {
            let pairs: Vec<(&str, &str)> = given.iter().map(|v| ("cache-control", *v)).collect();
            let h = respond(&set, true, &pairs);
            let values: Vec<_> = h.get_all(header::CACHE_CONTROL).iter().collect();
            assert_eq!(values, [sent], "{given:?}");
            // Without credentials, the handler's is kept as it was.
            let h = respond(&set, false, &pairs);
            let values: Vec<_> = h.get_all(header::CACHE_CONTROL).iter().collect();
            assert_eq!(values, *given, "{given:?}");
        }
        // Fields a shared cache reads instead of `Cache-Control` go, with credentials only.
        let targeted = [
            ("cdn-cache-control", "max-age=600"),
            ("cloudflare-cdn-cache-control", "max-age=600"),
            ("surrogate-control", "max-age=600"),
            ("x-accel-expires", "600"),
            ("x-custom", "1"),
        ];
        let h = respond(&set, true, &targeted);
        let names: Vec<&str> = targeted
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| h.contains_key(*n))
            .collect();
        assert_eq!(names, ["x-custom"], "{h:?}");
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        let h = respond(&set, false, &targeted);
        assert!(targeted.iter().all(|(n, v)| h[*n] == *v), "{h:?}");
        // The loosening keeps them all.
        let loose = HeaderPolicy::api()
            .dangerous_allow_caching_with_credentials()
            .build()
            .unwrap();
        let mut given = targeted.to_vec();
        given.push(("cache-control", "public, max-age=3600"));
        let h = respond(&loose, true, &given);
        assert!(given.iter().all(|(n, v)| h[*n] == *v), "{h:?}");
    }

    /// A response whose CSP carries a nonce went out with whatever `Cache-Control` the
    /// handler set, or none: a shared cache could keep the page and give every visitor its
    /// nonce, which an injected script could then carry. Now `no-store`, or the handler's
    /// made private, and the fields shared caches read instead dropped, as for credentials.
    /// Responses without a nonce are left as they were.
    #[test]
    fn a_response_with_a_csp_nonce_is_not_kept_by_shared_caches() {
        let respond = |set: &HeaderSet, facts: &RequestFacts, given: &[(&'static str, &str)]| {
            let mut h = HeaderMap::new();
            for (name, value) in given {
                h.append(*name, HeaderValue::from_str(value).unwrap());
            }
            set.apply(facts, &mut h);
            h
        };
        let with_nonce = |credentials| RequestFacts {
            nonce: Some(CspNonce::generate()),
            ..facts(true, credentials)
        };
        let nonce = with_nonce(false);
        let html = HeaderPolicy::html().build().unwrap();
        let report_only = HeaderPolicy::html()
            .csp(Csp::html().dangerous_report_only())
            .build()
            .unwrap();
        // `dangerous_allow_caching_with_credentials` is about credentials, not nonces.
        let loose = HeaderPolicy::html()
            .dangerous_allow_caching_with_credentials()
            .build()
            .unwrap();
        for (set, request) in [
            (&html, &nonce),
            (&report_only, &nonce),
            (&loose, &with_nonce(true)),
        ] {
            // None set: `no-store`, on the one-walk path (only a `Content-Type`) and the
            // general one.
            for given in [
                &[][..],
                &[("content-type", "text/html")],
                &[("content-type", "text/html"), ("x-custom", "1")],
            ] {
                let h = respond(set, request, given);
                let no_store = HeaderValue::from_static("no-store");
                assert_eq!(
                    h.get(header::CACHE_CONTROL),
                    Some(&no_store),
                    "{given:?}: {h:?}"
                );
            }
            for (given, sent) in [
                ("public, max-age=3600", "max-age=3600, private"),
                ("s-maxage=600", "private"),
                ("max-age=60", "max-age=60, private"),
                ("private, max-age=60", "private, max-age=60"),
                ("no-store", "no-store"),
            ] {
                let h = respond(set, request, &[("cache-control", given)]);
                let values: Vec<_> = h.get_all(header::CACHE_CONTROL).iter().collect();
                assert_eq!(values, [sent], "{given}");
            }
            let h = respond(
                set,
                request,
                &[("cdn-cache-control", "max-age=600"), ("x-custom", "1")],
            );
            assert!(!h.contains_key("cdn-cache-control"), "{h:?}");
            assert!(h.get("x-custom").is_some_and(|v| v == "1"), "{h:?}");
        }
        // Not a document (a script, a style sheet, an image, JSON) under the same nonce CSP:
        // no script of its own runs, so shared caches may keep it (static assets behind a
        // CDN). A type that may be a document, in any case and with parameters, is not.
        for content_type in [
            "text/css",
            "application/javascript",
            "image/png",
            "application/json",
        ] {
            let given = [
                ("content-type", content_type),
                ("cache-control", "public, max-age=31536000, immutable"),
                ("cdn-cache-control", "max-age=600"),
            ];
            let h = respond(&html, &nonce, &given);
            assert!(
                given
                    .iter()
                    .all(|(n, v)| h.get(*n).is_some_and(|got| got == v)),
                "{content_type}: {h:?}"
            );
        }
        for content_type in [
            "Text/HTML; charset=utf-8",
            " application/xhtml+xml",
            "image/svg+xml",
            "application/rss+XML",
            "text/xml",
        ] {
            let given = [
                ("content-type", content_type),
                ("cache-control", "public, max-age=60"),
            ];
            let h = respond(&html, &nonce, &given);
            assert_eq!(h["cache-control"], "max-age=60, private", "{content_type}");
        }
        // Browsers take the last valid media type of every field and list element: a page
        // whose first one says JSON may be HTML. One that names no valid type is sniffed,
        // as one without a `Content-Type` is.
        for content_types in [
            &["application/json", "text/html"][..],
            &["application/json, text/html"],
            &["text/plain, image/svg+xml; charset=utf-8"],
            &["text/html", "application/json"],
            &["json"],
            &[""],
            &["*/*"],
        ] {
            let mut given: Vec<(&str, &str)> =
                content_types.iter().map(|t| ("content-type", *t)).collect();
            given.push(("cache-control", "public, max-age=60"));
            let h = respond(&html, &nonce, &given);
            assert_eq!(
                h["cache-control"], "max-age=60, private",
                "{content_types:?}"
            );
        }
        // A comma inside a quoted parameter splits nothing.
        let given = [
            ("content-type", "application/json; profile=\"a, text/html\""),
            ("cache-control", "public, max-age=60"),
        ];
        let h = respond(&html, &nonce, &given);
        assert_eq!(h["cache-control"], "public, max-age=60");
        // No page a browser renders (a redirect with its `Location`; a 204), even without a
        // `Content-Type`: left alone. (A `304` may revalidate a page: see
        // `a_304_never_loosens_the_cache_control_its_200_had`.)
        for status in [
            http::StatusCode::MOVED_PERMANENTLY,
            http::StatusCode::NO_CONTENT,
        ] {
            let mut response = http::Response::new(());
            *response.status_mut() = status;
            if status.is_redirection() {
                response
                    .headers_mut()
                    .insert(header::LOCATION, HeaderValue::from_static("/elsewhere"));
            }
            let facts = nonce.for_response(&response);
            assert!(
                !respond(&html, &facts, &[]).contains_key(header::CACHE_CONTROL),
                "{status}"
            );
            let given = [
                ("cache-control", "public, max-age=31536000, immutable"),
                ("cdn-cache-control", "max-age=600"),
            ];
            let h = respond(&html, &facts, &given);
            assert!(
                given
                    .iter()
                    .all(|(n, v)| h.get(*n).is_some_and(|got| got == v)),
                "{status}: {h:?}"
            );
        }
        // A page's status (an error page too) keeps the rule, and so does a status browsers
        // render rather than follow: a `300` (with a `Location` too), a redirect without one.
        for (status, location) in [
            (404, false),
            (300, false),
            (300, true),
            (301, false),
            (308, false),
        ] {
            let mut response = http::Response::new(());
            *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
            if location {
                response
                    .headers_mut()
                    .insert(header::LOCATION, HeaderValue::from_static("/elsewhere"));
            }
            let h = respond(&html, &nonce.for_response(&response), &[]);
            assert_eq!(
                h.get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()),
                Some("no-store"),
                "{status}, location {location}"
            );
        }
        // Without a nonce (none in the facts, or a policy without one): as it was.
        let api = HeaderPolicy::api().build().unwrap();
        for (set, facts) in [(&html, &facts(true, false)), (&api, &nonce)] {
            assert!(!respond(set, facts, &[]).contains_key(header::CACHE_CONTROL));
            let given = [
                ("cache-control", "public, max-age=3600"),
                ("cdn-cache-control", "max-age=600"),
            ];
            let h = respond(set, facts, &given);
            assert!(
                given
                    .iter()
                    .all(|(n, v)| h.get(*n).is_some_and(|got| got == v)),
                "{h:?}"
            );
        }
    }

    /// A `304` of a page the browser kept went out with a new nonce's CSP. A cache takes a
    /// 304's fields onto the page it kept (RFC 9111 §4.3.4; Chromium does, as
    /// `tests/tests/browser.rs` shows), whose scripts carry the nonce it was first sent with:
    /// they were blocked on every reload after the first. Now a 304 carries no nonce CSP,
    /// enforcing or report-only, on either path, with or without slots; its other headers,
    /// and a CSP without a nonce, are as on any response.
    #[test]
    fn a_304_carries_no_nonce_csp() {
        let mut not_modified = http::Response::new(());
        *not_modified.status_mut() = http::StatusCode::NOT_MODIFIED;
        let page = http::Response::new(());
        let nonce = CspNonce::generate();
        let request = RequestFacts {
            nonce: Some(nonce),
            ..facts(false, false)
        };
        let id = HeaderName::from_static("x-request-id");
        let html = HeaderPolicy::html().build().unwrap();
        let report_only = HeaderPolicy::html()
            .csp(Csp::html().dangerous_report_only())
            .build()
            .unwrap();
        for (set, csp) in [
            (html, header::CONTENT_SECURITY_POLICY),
            (report_only, header::CONTENT_SECURITY_POLICY_REPORT_ONLY),
        ] {
            let slotted = set.with_slots([(id.clone(), Merge::Replace)]).unwrap();
            for set in [&set, &slotted] {
                for given in [
                    &[][..],
                    &[("content-type", "text/html")],
                    &[("etag", "\"v1\""), ("cache-control", "no-cache")],
                ] {
                    let respond = |response: &http::Response<()>| {
                        let mut h = HeaderMap::new();
                        for (name, value) in given {
                            h.append(*name, HeaderValue::from_static(value));
                        }
                        let id = HeaderValue::from_static("0193a1b2");
                        set.apply_with(&request.for_response(response), &mut h, [Some(id)]);
                        h
                    };
                    let sent = respond(&page);
                    let value = sent.get(&csp).and_then(|v| v.to_str().ok());
                    assert!(
                        value.is_some_and(|v| v.contains(nonce.as_str())),
                        "{given:?}: the page's own nonce CSP: {sent:?}"
                    );
                    let h = respond(&not_modified);
                    assert!(
                        !h.contains_key(&csp),
                        "{given:?}: a 304 carried a nonce CSP: {h:?}"
                    );
                    assert_eq!(h["x-content-type-options"], "nosniff", "{h:?}");
                    for (name, value) in given {
                        // Made private as on the page (the test below).
                        if *name != "cache-control" {
                            assert_eq!(h[*name], *value, "{h:?}");
                        }
                    }
                }
            }
        }
        // A CSP without a nonce is the same on every response: a 304 keeps it.
        let api = HeaderPolicy::api().build().unwrap();
        let mut h = HeaderMap::new();
        api.apply(&request.for_response(&not_modified), &mut h);
        assert!(h.contains_key(header::CONTENT_SECURITY_POLICY), "{h:?}");
    }

    /// An XSLT style sheet and a `multipart/x-mixed-replace` response under a nonce CSP were
    /// left to shared caches as assets are. Both are documents that run scripts: Chromium
    /// makes an XML document of `text/xsl` (Blink's `DOMImplementation::IsXMLMIMEType`), in
    /// which an XHTML `<script>` runs, and `application/xslt+xml` is XML by its suffix; a
    /// browser renders each part of a `multipart/x-mixed-replace` body as the page (the
    /// HTML standard's "load a document"), under the response's CSP, whatever the part's
    /// type. Now `no-store`, or the handler's `Cache-Control` made private, as for HTML.
    #[test]
    fn xslt_and_multipart_documents_are_pages() {
        let html = HeaderPolicy::html().build().unwrap();
        let nonce = RequestFacts {
            nonce: Some(CspNonce::generate()),
            ..facts(true, false)
        };
        for content_type in [
            "text/xsl",
            "Text/XSL; charset=utf-8",
            "application/xslt+xml",
            "multipart/x-mixed-replace; boundary=frame",
            "Multipart/X-Mixed-Replace;boundary=\"a, b\"",
        ] {
            // Alone (the one-walk path), and with the handler's `Cache-Control`.
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            html.apply(&nonce, &mut h);
            let sent = h.get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok());
            assert_eq!(
                sent,
                Some("no-store"),
                "{content_type}: left to shared caches"
            );
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=60"),
            );
            html.apply(&nonce, &mut h);
            let sent = h.get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok());
            assert_eq!(
                sent,
                Some("max-age=60, private"),
                "{content_type}: left public"
            );
        }
        // Other multipart bodies are no document a browser renders.
        for content_type in ["multipart/form-data; boundary=x", "multipart/mixed"] {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            html.apply(&nonce, &mut h);
            assert!(
                !h.contains_key(header::CACHE_CONTROL),
                "{content_type}: {h:?}"
            );
        }
    }

    /// A list splits at commas outside quoted strings (where a backslash escapes the byte
    /// after it), trimmed, empty elements left out; a quote never closed runs to the end.
    #[test]
    fn list_elements_split_at_commas_outside_quoted_strings() {
        let cases: [(&str, &[&str]); 13] = [
            ("", &[]),
            (" , ,", &[]),
            ("a", &["a"]),
            (" a , b ,, c ", &["a", "b", "c"]),
            ("a=\"x,y\", b", &["a=\"x,y\"", "b"]),
            ("a=\"x\\\",y\", b", &["a=\"x\\\",y\"", "b"]),
            ("a=\"x\\\\\", b", &["a=\"x\\\\\"", "b"]),
            ("a=\"open, b", &["a=\"open, b"]),
            ("a=\"x\\", &["a=\"x\\"]),
            ("a\\,b", &["a\\", "b"]),
            ("\"a,b\"c,d", &["\"a,b\"c", "d"]),
            ("a;q=\"1,2\";r=3 ,b", &["a;q=\"1,2\";r=3", "b"]),
            ("\"\",\"\"", &["\"\"", "\"\""]),
        ];
        for (text, elements) in cases {
            assert_eq!(
                list_elements(text).collect::<Vec<_>>(),
                elements,
                "{text:?}"
            );
        }
    }

    /// `may_run_scripts` finds each element's media type without reading on past it when it
    /// can: it answers as reading every element of [`list_elements`] in turn does, for every
    /// value made of up to four of these pieces, and for two values.
    #[test]
    fn may_run_scripts_reads_each_element_as_the_list_split_does() {
        fn by_elements(values: &[&str]) -> bool {
            let mut readable = false;
            for text in values {
                for element in list_elements(text) {
                    let essence = element.split(';').next().unwrap_or_default().trim();
                    if !is_media_type(essence) {
                        continue;
                    }
                    readable = true;
                    if is_page_type(essence)
                        || essence.to_ascii_lowercase().ends_with("+xml") && essence.len() > 4
                    {
                        return true;
                    }
                }
            }
            !readable
        }
        let pieces = [
            "text/html",
            "TEXT/Html",
            "application/json",
            "image/svg+xml",
            "+xml",
            "*/*",
            "text/",
            ";",
            ",",
            "\"",
            "\\",
            " ",
            "q=1",
        ];
        let mut texts = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..4 {
            last = last
                .iter()
                .flat_map(|text| pieces.iter().map(move |piece| format!("{text}{piece}")))
                .collect();
            texts.extend(last.iter().cloned());
        }
        let mut pages = 0;
        for text in &texts {
            let value = HeaderValue::from_str(text).unwrap();
            let expected = by_elements(&[text]);
            assert_eq!(may_run_scripts([&value]), expected, "{text:?}");
            pages += usize::from(expected);
        }
        // Both answers come hundreds of times: the comparison tells them apart.
        assert!(
            pages > 500 && texts.len() - pages > 500,
            "{pages} of {}",
            texts.len()
        );
        for first in &texts[..200] {
            for second in &texts[..200] {
                let values = [first, second].map(|text| HeaderValue::from_str(text).unwrap());
                assert_eq!(
                    may_run_scripts(&values),
                    by_elements(&[first, second]),
                    "{first:?}, {second:?}"
                );
            }
        }
        // A value that is not text may be anything: a browser sniffs it.
        let opaque = HeaderValue::from_bytes(b"text/plain\xff").unwrap();
        assert!(may_run_scripts([&opaque]));
    }

    /// A `304` under a nonce CSP went out with the handler's `Cache-Control` as it was:
    /// `public, max-age=600` on the 304 of a page whose 200 went out `max-age=600, private`,
    /// although a 304 should carry what its 200 would (RFC 9110 §15.4.5). Now a 304 that says
    /// what it revalidates (its `Content-Type`) gets that type's rule, as its 200 does, and
    /// one to a request with credentials its 200's `no-store` or `private`, on either path.
    /// One with neither keeps its own `Cache-Control`: it may revalidate an asset a CDN keeps
    /// (`ServeDir`'s 304s have no `Content-Type`), which `private` would take out of the CDN.
    /// One without `Cache-Control` gets none, but for credentials, which leaves the stored
    /// response's (a `no-store` would make a browser drop the asset it kept).
    #[test]
    fn a_304_never_loosens_the_cache_control_its_200_had() {
        let mut not_modified = http::Response::new(());
        *not_modified.status_mut() = http::StatusCode::NOT_MODIFIED;
        let ok = http::Response::new(());
        let id = HeaderName::from_static("x-request-id");
        let html = HeaderPolicy::html().build().unwrap();
        let slotted = html.with_slots([(id, Merge::Replace)]).unwrap();
        let nonce = RequestFacts {
            nonce: Some(CspNonce::generate()),
            ..facts(true, false)
        };
        let cookie = RequestFacts {
            credentials: true,
            ..facts(true, false)
        };
        let api = HeaderPolicy::api().build().unwrap();
        let respond = |set: &HeaderSet,
                       request: &RequestFacts,
                       response: &http::Response<()>,
                       given: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (name, value) in given {
                h.append(*name, HeaderValue::from_static(value));
            }
            let id = HeaderValue::from_static("0193a1b2");
            set.apply_with(&request.for_response(response), &mut h, [Some(id)]);
            h
        };
        let cases = [
            (&html, &nonce),
            (&slotted, &nonce),
            (&api, &cookie),
            (
                &html,
                &RequestFacts {
                    credentials: true,
                    ..nonce
                },
            ),
        ];
        for (set, request) in cases {
            for cache_control in [
                "public, max-age=600",
                "s-maxage=600, no-cache",
                "no-cache",
                "private, max-age=0",
            ] {
                // With a `Content-Type` (the one-walk path takes one alone), or without.
                for content_type in [Some("text/html"), None] {
                    let mut given = vec![("cache-control", cache_control)];
                    given.extend(content_type.map(|t| ("content-type", t)));
                    let page = respond(set, request, &ok, &given);
                    let h = respond(set, request, &not_modified, &given);
                    let sent: Vec<_> = h.get_all(header::CACHE_CONTROL).iter().collect();
                    let page: Vec<_> = page.get_all(header::CACHE_CONTROL).iter().collect();
                    if content_type.is_some() || request.credentials {
                        assert_eq!(
                            sent, page,
                            "{request:?}, {given:?}: the 304's Cache-Control is not its 200's"
                        );
                    } else {
                        assert_eq!(
                            sent,
                            [cache_control],
                            "{request:?}, {given:?}: a 304 that may revalidate an asset changed"
                        );
                    }
                }
            }
            let given = [
                ("content-type", "text/html"),
                ("cache-control", "public, max-age=600"),
                ("cdn-cache-control", "max-age=600"),
            ];
            let h = respond(set, request, &not_modified, &given);
            assert!(!h.contains_key("cdn-cache-control"), "{request:?}: {h:?}");
        }
        // Without `Cache-Control`, the stored response keeps its own, which its 200 made
        // private or `no-store`: a 304 kept by a browser (an asset under a nonce CSP, or a
        // credentialed response the handler made `private` itself) must not make it drop it.
        for (set, request) in [(&html, &nonce), (&api, &cookie)] {
            let h = respond(set, request, &not_modified, &[("etag", "\"v1\"")]);
            assert!(
                !h.contains_key(header::CACHE_CONTROL),
                "{request:?}: a 304 without Cache-Control got one: {h:?}"
            );
        }
        // A 304 that says it revalidates no page keeps its own, as its 200 does; so does one
        // that does not say (an asset's, from `ServeDir`), with its `CDN-Cache-Control`.
        let given = [
            ("content-type", "text/css"),
            ("cache-control", "public, max-age=31536000, immutable"),
            ("cdn-cache-control", "max-age=600"),
        ];
        for (response, given) in [
            (&ok, &given[..]),
            (&not_modified, &given),
            (&not_modified, &given[1..]),
        ] {
            let h = respond(&html, &nonce, response, given);
            assert!(
                given
                    .iter()
                    .all(|(n, v)| h.get(*n).is_some_and(|got| got == v)),
                "{:?}, {given:?}: {h:?}",
                response.status()
            );
        }
    }

    /// Every header with a setting or handling of its own is refused by `header`, with the
    /// setting to use instead; others (`Permissions-Policy`, as documented) are not.
    #[test]
    fn policy_header_refuses_every_header_with_its_own_setting() {
        for (name, instead) in [
            ("Content-Security-Policy", "csp("),
            ("Content-Security-Policy-Report-Only", "report_only()"),
            ("X-Frame-Options", "frame_options("),
            ("Referrer-Policy", "referrer_policy("),
            ("Cross-Origin-Opener-Policy", "cross_origin_opener_policy("),
            (
                "Cross-Origin-Resource-Policy",
                "cross_origin_resource_policy(",
            ),
            ("Server", "removed from every response"),
            ("X-Powered-By", "removed from every response"),
            ("X-AspNet-Version", "removed from every response"),
            ("Content-Length", "from each body"),
            ("Transfer-Encoding", "from each body"),
        ] {
            let err = refused(name, "x");
            assert!(err.contains(instead), "{name}: {err}");
            assert!(err.contains(&name.to_ascii_lowercase()), "{name}: {err}");
        }
        // A `Permissions-Policy` denying more than the preset's is not weaker.
        let stricter = format!("{PERMISSIONS_POLICY}, fullscreen=()");
        let set = HeaderPolicy::api()
            .header("Permissions-Policy", &stricter)
            .unwrap()
            .header("X-Custom", "1")
            .unwrap()
            .build()
            .unwrap();
        let mut h = HeaderMap::new();
        set.apply(&facts(false, false), &mut h);
        assert_eq!(h["permissions-policy"], stricter.as_str());
        assert_eq!(h["x-custom"], "1");
    }

    /// A header each response sets for itself, fixed by `header`, would replace the
    /// response's own on every response: `Content-Type: application/json` relabelled the
    /// application/problem+json errors, `Retry-After: 1` replaced a 429's. Refused, saying
    /// where it is set instead.
    #[test]
    fn policy_header_refuses_headers_each_response_sets_itself() {
        for (name, value, instead) in [
            ("Content-Type", "application/json", "in your handlers"),
            ("content-encoding", "gzip", "from each body"),
            ("Retry-After", "1", "rate limits"),
            ("Location", "https://example.com/", "each response"),
            ("WWW-Authenticate", "Bearer realm=\"api\"", "each 401"),
        ] {
            let err = refused(name, value);
            assert!(err.contains(instead), "{name}: {err}");
            assert!(err.contains(&name.to_ascii_lowercase()), "{name}: {err}");
        }
    }

    /// With a nonce policy, facts without a nonce (`RequestFacts::default()`, or facts a
    /// caller fills in itself) get the nonce-less policy (no script runs), not no CSP at all.
    #[test]
    fn html_policy_without_a_nonce_sends_no_csp_at_all() {
        let set = HeaderPolicy::html().build().unwrap();
        let compiled = Csp::html().compile().unwrap();
        for https in [false, true] {
            for credentials in [false, true] {
                // The one-walk path (only a `Content-Type`) and the general one.
                for content_type in [true, false] {
                    let mut h = HeaderMap::new();
                    if content_type {
                        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
                    }
                    set.apply(&facts(https, credentials), &mut h);
                    let case = format!("https {https}, credentials {credentials}: {h:?}");
                    assert_eq!(
                        h.get_all(header::CONTENT_SECURITY_POLICY).iter().count(),
                        1,
                        "{case}"
                    );
                    let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
                    assert_eq!(csp, compiled.value(https, None), "{case}");
                    assert!(
                        csp.contains("script-src 'strict-dynamic'") && !csp.contains("'nonce-"),
                        "{case}"
                    );
                }
            }
        }
        // With a nonce, that nonce's policy replaces it: still one CSP.
        let nonce = CspNonce::generate();
        let mut h = HeaderMap::new();
        let facts = RequestFacts {
            nonce: Some(nonce),
            ..facts(true, false)
        };
        set.apply(&facts, &mut h);
        let csps: Vec<_> = h.get_all(header::CONTENT_SECURITY_POLICY).iter().collect();
        assert_eq!(csps.len(), 1, "{h:?}");
        assert!(
            csps[0]
                .to_str()
                .unwrap()
                .contains(&format!("'nonce-{nonce}'"))
        );
    }

    /// `dangerous_remove_header` of a header the policy does not send, or sends through a
    /// setting of its own, removed nothing but logged that it loosened something: refused at
    /// start-up, naming the headers it can remove (and the setting, where there is one).
    #[test]
    fn dangerous_remove_header_of_a_header_not_sent_is_a_config_error() {
        for (name, hint) in [
            ("Strict-Transport-Security", Some("dangerous_without_hsts")),
            ("Content-Security-Policy", Some("dangerous_without_csp")),
            (
                "Content-Security-Policy-Report-Only",
                Some("dangerous_without_csp"),
            ),
            (
                "Cache-Control",
                Some("dangerous_allow_caching_with_credentials"),
            ),
            ("Set-Cookie", None),
            ("Server", None),
            ("X-Frame-Option", None),
            ("bad name", None),
        ] {
            let err = HeaderPolicy::api()
                .dangerous_remove_header(name)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("x-frame-options") && err.contains("x-content-type-options"),
                "{name}: {err}"
            );
            if let Some(hint) = hint {
                assert!(err.contains(hint), "{name}: {err}");
            }
        }
        // Removed once, it is no longer there to remove.
        let once = HeaderPolicy::api()
            .dangerous_remove_header("x-frame-options")
            .unwrap();
        let err = once
            .dangerous_remove_header("X-Frame-Options")
            .unwrap_err()
            .to_string();
        let (_, removable) = err.rsplit_once(": ").unwrap();
        assert!(
            removable.contains("x-content-type-options") && !removable.contains("x-frame-options"),
            "{err}"
        );
        // A header added with `header` can be removed again.
        assert!(
            HeaderPolicy::api()
                .header("x-custom", "1")
                .unwrap()
                .dangerous_remove_header("X-Custom")
                .is_ok()
        );
    }
}

#[cfg(test)]
mod loosening_tests {
    use std::time::Duration;

    use super::*;

    fn sent(policy: HeaderPolicy, name: &str) -> Option<String> {
        let mut h = HeaderMap::new();
        policy
            .build()
            .unwrap()
            .apply(&RequestFacts::default(), &mut h);
        h.get(name).map(|v| v.to_str().unwrap().to_owned())
    }

    /// The preset's headers without a setting of their own could be given weaker values
    /// through `header`, with no `dangerous_` name and no warning. Now refused, naming
    /// `dangerous_header`, which sets them.
    #[test]
    fn policy_header_loosens_the_presets_headers() {
        let duplicate = format!("{PERMISSIONS_POLICY}, camera=*");
        let origin = PERMISSIONS_POLICY.replace("camera=()", "camera=(\"https://a.example\")");
        let unparsable = format!("{PERMISSIONS_POLICY},, fullscreen=()");
        let upper = format!("{PERMISSIONS_POLICY}, Fullscreen=()");
        let bare = format!("{PERMISSIONS_POLICY}, fullscreen");
        let params = PERMISSIONS_POLICY.replace("usb=()", "usb=();report-to=x");
        for (name, weaker) in [
            ("X-Content-Type-Options", "sniff"),
            ("X-Content-Type-Options", ""),
            ("X-DNS-Prefetch-Control", "on"),
            ("X-Permitted-Cross-Domain-Policies", "all"),
            ("X-Permitted-Cross-Domain-Policies", "master-only"),
            ("Permissions-Policy", "camera=*"),
            // Allows nothing, but drops the preset's other denials.
            ("Permissions-Policy", "camera=()"),
            ("Permissions-Policy", duplicate.as_str()),
            ("Permissions-Policy", origin.as_str()),
            // Not a structured field: browsers ignore the whole header.
            ("Permissions-Policy", unparsable.as_str()),
            ("Permissions-Policy", upper.as_str()),
            ("Permissions-Policy", bare.as_str()),
            // Parameters are not in the rule (counted as weaker, not parsed).
            ("Permissions-Policy", params.as_str()),
        ] {
            let err = match HeaderPolicy::api().header(name, weaker) {
                Ok(_) => panic!("header({name:?}, {weaker:?}) accepted"),
                Err(err) => err,
            };
            assert!(matches!(err, ConfigError::Loosening { .. }), "{err:?}");
            let err = err.to_string();
            assert!(err.contains("dangerous_header"), "{name}: {err}");
            assert!(err.contains(&name.to_ascii_lowercase()), "{name}: {err}");
            // Also after the header was removed: the rule goes by name.
            let removed = HeaderPolicy::api().dangerous_remove_header(name).unwrap();
            assert!(removed.header(name, weaker).is_err(), "{name}: {weaker}");
            // Through the dangerous method, it is sent.
            let policy = HeaderPolicy::api().dangerous_header(name, weaker).unwrap();
            assert_eq!(sent(policy, name).as_deref(), Some(weaker), "{name}");
        }
    }

    /// A feature named twice is found wherever it is in a long `Permissions-Policy`. (The
    /// check used to compare each member with every one before it: 60 000 members took eleven
    /// seconds to build in a debug build. It now sorts once; being timing, that is not
    /// asserted here.)
    #[test]
    fn a_feature_named_twice_is_found_in_a_long_permissions_policy() {
        let mut value = PERMISSIONS_POLICY.to_owned();
        for i in 0..5_000 {
            value.push_str(&format!(", feature-{i}=()"));
        }
        assert!(
            HeaderPolicy::api()
                .header("permissions-policy", &value)
                .is_ok()
        );
        for twice in [
            format!("{value}, feature-0=()"),
            format!("feature-4999=(), {value}"),
            format!("{value}, camera=()"),
        ] {
            assert!(
                HeaderPolicy::api()
                    .header("permissions-policy", &twice)
                    .is_err()
            );
        }
    }

    /// Values at least as strict as the preset's are taken by `header`.
    #[test]
    fn policy_header_takes_the_presets_values_and_stricter_ones() {
        let stricter = format!("{PERMISSIONS_POLICY},fullscreen=(),\tautoplay=(self)");
        let reordered = format!("fullscreen=(), {}", PERMISSIONS_POLICY.replace(", ", ","));
        for (name, value) in [
            ("X-Content-Type-Options", "nosniff"),
            ("X-Content-Type-Options", "NoSniff"),
            ("X-DNS-Prefetch-Control", "off"),
            ("X-Permitted-Cross-Domain-Policies", "none"),
            ("Permissions-Policy", PERMISSIONS_POLICY),
            ("Permissions-Policy", stricter.as_str()),
            ("Permissions-Policy", reordered.as_str()),
        ] {
            let policy = HeaderPolicy::api().header(name, value).unwrap();
            assert_eq!(sent(policy, name).as_deref(), Some(value), "{name}");
        }
    }

    /// `dangerous_header` is for the preset's headers only; the headers with a setting of
    /// their own are refused as by `header`.
    #[test]
    fn dangerous_header_sets_only_the_presets_headers() {
        let err = HeaderPolicy::api()
            .dangerous_header("X-Robots-Tag", "noindex")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("header(") && err.contains("permissions-policy"),
            "{err}"
        );
        let err = HeaderPolicy::api()
            .dangerous_header("Strict-Transport-Security", "max-age=0")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("HeaderPolicy::dangerous_header(") && err.contains("hsts("),
            "{err}"
        );
    }

    /// `Access-Control-Allow-Origin: *` through `header` opened every response to other
    /// origins, past the CORS settings (no cross-origin access until origins are listed).
    #[test]
    fn policy_header_opens_cors() {
        for name in [
            "Access-Control-Allow-Origin",
            "Access-Control-Allow-Credentials",
        ] {
            let err = HeaderPolicy::api()
                .header(name, "*")
                .unwrap_err()
                .to_string();
            assert!(err.contains("Hardening::cors"), "{name}: {err}");
            assert!(
                HeaderPolicy::api().dangerous_header(name, "*").is_err(),
                "{name}"
            );
        }
    }

    /// The plain setters took values weaker than the preset's without a `dangerous_` name.
    /// Now refused, naming the dangerous setter, which takes them.
    #[test]
    fn plain_setters_take_weaker_values() {
        type Setter = fn(HeaderPolicy, &str) -> Result<HeaderPolicy, ConfigError>;
        let cases: [(&str, &str, &str, Setter, Setter); 8] = [
            (
                "referrer-policy",
                "unsafe-url",
                "dangerous_referrer_policy",
                HeaderPolicy::referrer_policy,
                HeaderPolicy::dangerous_referrer_policy,
            ),
            (
                "referrer-policy",
                "strict-origin-when-cross-origin",
                "dangerous_referrer_policy",
                HeaderPolicy::referrer_policy,
                HeaderPolicy::dangerous_referrer_policy,
            ),
            (
                "referrer-policy",
                "same-origin",
                "dangerous_referrer_policy",
                HeaderPolicy::referrer_policy,
                HeaderPolicy::dangerous_referrer_policy,
            ),
            (
                "x-frame-options",
                "SAMEORIGIN",
                "dangerous_frame_options",
                HeaderPolicy::frame_options,
                HeaderPolicy::dangerous_frame_options,
            ),
            (
                "cross-origin-opener-policy",
                "unsafe-none",
                "dangerous_cross_origin_opener_policy",
                HeaderPolicy::cross_origin_opener_policy,
                HeaderPolicy::dangerous_cross_origin_opener_policy,
            ),
            (
                "cross-origin-opener-policy",
                "same-origin-allow-popups",
                "dangerous_cross_origin_opener_policy",
                HeaderPolicy::cross_origin_opener_policy,
                HeaderPolicy::dangerous_cross_origin_opener_policy,
            ),
            (
                "cross-origin-resource-policy",
                "cross-origin",
                "dangerous_cross_origin_resource_policy",
                HeaderPolicy::cross_origin_resource_policy,
                HeaderPolicy::dangerous_cross_origin_resource_policy,
            ),
            (
                "cross-origin-resource-policy",
                "same-site",
                "dangerous_cross_origin_resource_policy",
                HeaderPolicy::cross_origin_resource_policy,
                HeaderPolicy::dangerous_cross_origin_resource_policy,
            ),
        ];
        for (name, weaker, dangerous, plain, loosen) in cases {
            let err = plain(HeaderPolicy::api(), weaker).unwrap_err();
            assert!(matches!(err, ConfigError::Loosening { .. }), "{err:?}");
            let err = err.to_string();
            assert!(err.contains(dangerous) && err.contains(weaker), "{err}");
            let policy = loosen(HeaderPolicy::api(), weaker).unwrap();
            assert_eq!(sent(policy, name).as_deref(), Some(weaker));
            // The preset's value goes through both; a value the standard does not define,
            // through neither.
            let strict = sent(HeaderPolicy::api(), name).unwrap();
            assert!(plain(HeaderPolicy::api(), &strict).is_ok(), "{name}");
            assert!(loosen(HeaderPolicy::api(), &strict).is_ok(), "{name}");
            assert!(plain(HeaderPolicy::api(), "x").is_err(), "{name}");
            assert!(loosen(HeaderPolicy::api(), "x").is_err(), "{name}");
        }
    }

    /// HSTS shorter than the preset's two years, or without subdomains, went through `hsts`.
    #[test]
    fn hsts_takes_weaker_values() {
        let year = Duration::from_secs(365 * 24 * 3600);
        for (max_age, subdomains) in [
            (Duration::from_secs(60), true),
            (year, true),
            (2 * year, false),
        ] {
            let err = HeaderPolicy::api()
                .hsts(max_age, subdomains, false)
                .unwrap_err();
            assert!(matches!(err, ConfigError::Loosening { .. }), "{err:?}");
            assert!(err.to_string().contains("dangerous_hsts"), "{err}");
            let policy = HeaderPolicy::api()
                .dangerous_hsts(max_age, subdomains, false)
                .unwrap();
            let mut h = HeaderMap::new();
            let facts = RequestFacts {
                https: true,
                ..RequestFacts::default()
            };
            policy.build().unwrap().apply(&facts, &mut h);
            let hsts = h[header::STRICT_TRANSPORT_SECURITY].to_str().unwrap();
            assert!(
                hsts.starts_with(&format!("max-age={}", max_age.as_secs())),
                "{hsts}"
            );
            assert_eq!(hsts.contains("includeSubDomains"), subdomains, "{hsts}");
        }
        assert!(HeaderPolicy::api().hsts(2 * year, true, true).is_ok());
        assert!(HeaderPolicy::api().hsts(3 * year, true, false).is_ok());
        // Zero and a preload without its requirements stay errors, dangerous or not.
        assert!(
            HeaderPolicy::api()
                .dangerous_hsts(Duration::ZERO, true, false)
                .is_err()
        );
        assert!(
            HeaderPolicy::api()
                .dangerous_hsts(year, false, true)
                .is_err()
        );
    }
}
