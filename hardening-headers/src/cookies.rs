//! `Set-Cookie` enforcement on every response.

use std::collections::HashSet;
use std::fmt;
use std::ops::RangeInclusive;
use std::time::Duration;

use cookie::time::{
    Date, Duration as CookieDuration, Month, OffsetDateTime, PrimitiveDateTime, Time,
};
use cookie::{Cookie, SameSite};
use http::header::{Entry, HeaderMap, HeaderValue, SET_COOKIE};

use crate::{ConfigError, warn_loosened};

/// Longest `Set-Cookie` value kept (browsers keep 4096 bytes per cookie).
const MAX_COOKIE_LEN: usize = 4096;

/// The default cap on a cookie's lifetime: 30 days.
const MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

/// The rules every `Set-Cookie` of every response is brought into line with.
///
/// By default each cookie gets `Secure`, `HttpOnly` and `SameSite=Lax` when it lacks them
/// (a handler's own `SameSite=None` too, with one warning: name the cookie in
/// [`dangerous_same_site_none`](CookiePolicy::dangerous_same_site_none) to keep it),
/// its lifetime (`Max-Age`/`Expires`) is capped at 30 days, `__Host-` cookies must have
/// `Path=/` and no `Domain`, `__Http-` and `__Host-Http-` ones `HttpOnly` (even when named in
/// [`dangerous_script_readable`](CookiePolicy::dangerous_script_readable)), and a cookie that
/// breaks its prefix's rules (any case), does not parse, or is over 4096 bytes is dropped
/// with a warning that names it (field `cookie`) but never its value. Attributes the policy
/// does not set (`Priority`, ...) are kept as they are. When a response sets the same cookie
/// (name, domain, path, and `Partitioned` or not) twice, the last one is kept, as a browser
/// would.
///
/// Settings are per cookie and by name. Those that loosen a rule are named `dangerous_*` and
/// log a warning; the others refuse a looser value with a [`ConfigError::Loosening`] naming
/// the `dangerous_*` method:
///
/// ```
/// use std::time::Duration;
/// use hardening_headers::{CookiePolicy, SameSite};
///
/// let cookies = CookiePolicy::default()
///     .dangerous_script_readable("theme")     // JavaScript may read it: no HttpOnly
///     .same_site("csrf", SameSite::Strict)?
///     .dangerous_same_site_none("embed_state") // sent on cross-site requests too
///     .max_age(Duration::from_secs(14 * 24 * 3600))?;
/// # let _ = cookies;
///
/// let err = CookiePolicy::default().same_site("embed_state", SameSite::None).unwrap_err();
/// assert!(err.to_string().contains("dangerous_same_site_none"), "{err}");
/// assert!(CookiePolicy::default().max_age(Duration::from_secs(365 * 24 * 3600)).is_err());
/// # Ok::<(), hardening_headers::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct CookiePolicy {
    max_age: Duration,
    script_readable: Vec<String>,
    same_site: Vec<(String, SameSite)>,
    insecure: Vec<String>,
    /// The first value a `dangerous_*` setting was given that cannot work (a name no cookie
    /// can have, a zero lifetime), reported when the header policy is built (those settings
    /// return no `Result`).
    invalid_setting: Option<ConfigError>,
    /// Whether the warning that a handler's `SameSite=None` became `Lax` was logged.
    warned_same_site_none: std::sync::Arc<hardening_errors::WarnOnce>,
}

impl Default for CookiePolicy {
    fn default() -> Self {
        Self {
            max_age: MAX_AGE,
            script_readable: Vec::new(),
            same_site: Vec::new(),
            insecure: Vec::new(),
            invalid_setting: None,
            warned_same_site_none: std::sync::Arc::default(),
        }
    }
}

impl CookiePolicy {
    /// Caps every cookie's lifetime at `max_age`, at most the default 30 days (a longer cap
    /// is a [`ConfigError::Loosening`] naming [`dangerous_max_age`](Self::dangerous_max_age)).
    /// Under one second (whole seconds are sent) is a [`ConfigError::ZeroCookieMaxAge`]: the
    /// cap would be `Max-Age=0`, which deletes every cookie that has a lifetime at once.
    pub fn max_age(mut self, max_age: Duration) -> Result<Self, ConfigError> {
        if max_age.as_secs() == 0 {
            return Err(ConfigError::ZeroCookieMaxAge);
        }
        if max_age > MAX_AGE {
            return Err(ConfigError::Loosening {
                what: format!("CookiePolicy::max_age({} s)", max_age.as_secs()),
                instead: format!(
                    "cookies live at most {} s (30 days) by default; for longer, use \
                     dangerous_max_age, which logs a warning at start-up",
                    MAX_AGE.as_secs()
                ),
            });
        }
        self.max_age = max_age;
        Ok(self)
    }

    /// Caps every cookie's lifetime at `max_age`, however long. Logs a warning when it is
    /// longer than the default 30 days. Under one second is a
    /// [`ConfigError::ZeroCookieMaxAge`] from [`HeaderPolicy::build`](crate::HeaderPolicy::build),
    /// as [`max_age`](Self::max_age) refuses it.
    pub fn dangerous_max_age(mut self, max_age: Duration) -> Self {
        if max_age.as_secs() == 0 {
            self.invalid_setting
                .get_or_insert(ConfigError::ZeroCookieMaxAge);
            return self;
        }
        if max_age > MAX_AGE {
            warn_loosened(
                "CookiePolicy::dangerous_max_age",
                &format!("cookies may live {} s", max_age.as_secs()),
            );
        }
        self.max_age = max_age;
        self
    }

    /// Lets JavaScript read this cookie (no `HttpOnly` added), so a script injected into a
    /// page can read it too. Logs a warning. A `__Http-` or `__Host-Http-` cookie needs
    /// `HttpOnly` whatever this says: one sent without it is dropped with a warning. A name
    /// no cookie can have is a [`ConfigError::InvalidCookieName`] from
    /// [`HeaderPolicy::build`](crate::HeaderPolicy::build).
    pub fn dangerous_script_readable(mut self, name: impl Into<String>) -> Self {
        let Some(name) = self.cookie_name("dangerous_script_readable", name.into()) else {
            return self;
        };
        warn_loosened(
            "CookiePolicy::dangerous_script_readable",
            &format!("cookie {name} goes without HttpOnly"),
        );
        if needs_http_only(&name) {
            warn_prefix_needs("dangerous_script_readable", "HttpOnly", &name);
        }
        self.script_readable.push(name);
        self
    }

    /// Gives this cookie `SameSite=Strict`, or `Lax` (the default) where the handler did not
    /// set `Strict` itself (that stays). `SameSite::None` is a [`ConfigError::Loosening`]
    /// naming [`dangerous_same_site_none`](Self::dangerous_same_site_none). A name no cookie
    /// can have (empty, spaces around it, `=`, `;` or a control character) is a
    /// [`ConfigError::InvalidCookieName`].
    pub fn same_site(
        mut self,
        name: impl Into<String>,
        same_site: SameSite,
    ) -> Result<Self, ConfigError> {
        let name = name.into();
        if let Some(why) = hardening_errors::cookie_name_problem(&name) {
            return Err(ConfigError::InvalidCookieName {
                setting: "same_site",
                name,
                why,
            });
        }
        if same_site == SameSite::None {
            return Err(ConfigError::Loosening {
                what: format!("CookiePolicy::same_site({name:?}, SameSite::None)"),
                instead: format!(
                    "cookies get SameSite=Lax by default; to send {name} on cross-site requests \
                     too, use dangerous_same_site_none({name:?}), which logs a warning at start-up"
                ),
            });
        }
        self.same_site.retain(|(n, _)| *n != name);
        self.same_site.push((name, same_site));
        Ok(self)
    }

    /// Gives this cookie `SameSite=None` (with `Secure`, which browsers require; without it
    /// the cookie gets `Lax`): browsers send it on cross-site requests too, which CSRF
    /// defences must then cover. A handler's own `SameSite=Strict` or `Lax` on it stays.
    /// Logs a warning. A name no cookie can have is a [`ConfigError::InvalidCookieName`]
    /// from [`HeaderPolicy::build`](crate::HeaderPolicy::build).
    pub fn dangerous_same_site_none(mut self, name: impl Into<String>) -> Self {
        let Some(name) = self.cookie_name("dangerous_same_site_none", name.into()) else {
            return self;
        };
        warn_loosened(
            "CookiePolicy::dangerous_same_site_none",
            &format!("cookie {name} is sent on cross-site requests (SameSite=None)"),
        );
        self.same_site.retain(|(n, _)| *n != name);
        self.same_site.push((name, SameSite::None));
        self
    }

    /// Lets this cookie go without `Secure`. Logs a warning. A `__Secure-`, `__Host-`,
    /// `__Http-` or `__Host-Http-` cookie needs `Secure` whatever this says: one sent without
    /// it is dropped with a warning. A name no cookie can have is a
    /// [`ConfigError::InvalidCookieName`] from [`HeaderPolicy::build`](crate::HeaderPolicy::build).
    pub fn dangerous_allow_insecure(mut self, name: impl Into<String>) -> Self {
        let Some(name) = self.cookie_name("dangerous_allow_insecure", name.into()) else {
            return self;
        };
        warn_loosened(
            "CookiePolicy::dangerous_allow_insecure",
            &format!("cookie {name} may go without Secure"),
        );
        if needs_secure(&name) {
            warn_prefix_needs("dangerous_allow_insecure", "Secure", &name);
        }
        self.insecure.push(name);
        self
    }

    /// `name` if a cookie can have it. If not, `None`: `setting` then loosens nothing (and
    /// logs nothing), and the first such name is kept for [`check`](Self::check).
    fn cookie_name(&mut self, setting: &'static str, name: String) -> Option<String> {
        let Some(why) = hardening_errors::cookie_name_problem(&name) else {
            return Some(name);
        };
        self.invalid_setting
            .get_or_insert(ConfigError::InvalidCookieName { setting, name, why });
        None
    }

    /// The first value a `dangerous_*` setting was given that cannot work, as an error (what
    /// [`HeaderPolicy::build`](crate::HeaderPolicy::build) reports).
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        self.invalid_setting.clone().map_or(Ok(()), Err)
    }

    /// Rewrites every `Set-Cookie` in `headers` to follow the rules, then de-duplicates
    /// (what `HeaderSet::apply` does on its way, here in one call for the tests).
    #[cfg(test)]
    pub(crate) fn enforce(&self, headers: &mut HeaderMap) {
        let values: Vec<HeaderValue> = headers.get_all(SET_COOKIE).iter().cloned().collect();
        headers.remove(SET_COOKIE);
        for value in values.into_iter().filter_map(|v| self.fixed(v)) {
            headers.append(SET_COOKIE, value);
        }
        self.dedup(headers);
    }

    /// One `Set-Cookie` value brought into line, or `None` when it must be dropped.
    pub(crate) fn fixed(&self, value: HeaderValue) -> Option<HeaderValue> {
        match self.fix(&value) {
            Fixed::Keep => Some(value),
            Fixed::Replace(value) => Some(value),
            Fixed::Drop => None,
        }
    }

    /// Keeps the last of several cookies with the same name, domain, path and partitioning (a browser
    /// would keep only one of them anyway, and which one is not obvious), in the order of
    /// the values kept. Linear in the number of cookies; with fewer than two, or none set
    /// twice, `headers` is left as it is (and nothing is allocated with fewer than two).
    pub(crate) fn dedup(&self, headers: &mut HeaderMap) {
        let count = headers.get_all(SET_COOKIE).iter().count();
        if count < 2 {
            return;
        }
        // From the last value back: a value whose cookie was already seen is replaced by a
        // later one.
        let mut seen = HashSet::with_capacity(count);
        let mut replaced = vec![false; count];
        for (value, replaced) in headers
            .get_all(SET_COOKIE)
            .iter()
            .rev()
            .zip(replaced.iter_mut().rev())
        {
            *replaced = !seen.insert(same_cookie(value));
        }
        drop(seen);
        if !replaced.contains(&true) {
            return;
        }
        let Entry::Occupied(entry) = headers.entry(SET_COOKIE) else {
            return;
        };
        let (_, values) = entry.remove_entry_mult();
        let kept: Vec<HeaderValue> = values
            .zip(replaced)
            .filter_map(|(value, replaced)| (!replaced).then_some(value))
            .collect();
        for value in kept {
            headers.append(SET_COOKIE, value);
        }
    }

    /// One cookie brought into line. The fast path reads the attributes and appends what is
    /// missing; a cookie whose lifetime needs capping (or other rewriting) goes through the
    /// cookie crate.
    fn fix(&self, value: &HeaderValue) -> Fixed {
        if value.len() > MAX_COOKIE_LEN {
            warn_dropped(&"longer than 4096 bytes", name_of(value.as_bytes()));
            return Fixed::Drop;
        }
        let Some(text) = text_of(value) else {
            warn_dropped(
                &"not UTF-8, or has control characters",
                name_of(value.as_bytes()),
            );
            return Fixed::Drop;
        };
        let Some(attrs) = Attrs::read(text) else {
            warn_dropped(&"does not parse as a cookie", None);
            return Fixed::Drop;
        };
        let name = attrs.name;
        let drop = |why: &dyn fmt::Display| {
            warn_dropped(why, Some(name));
            Fixed::Drop
        };
        let named = |list: &[String]| list.iter().any(|n| n == name);
        let wanted_same_site = self.same_site_for(name, attrs.same_site);
        let cap = self.max_age.as_secs();
        let needs_rewrite = attrs.expires_seen
            || attrs.max_age.is_some_and(|m| m > cap as i128)
            || wanted_same_site.is_some_and(|w| attrs.same_site != Some(w))
            // A handler's own `SameSite=None`, for a cookie the policy does not name.
            || attrs.same_site == Some(SameSite::None) && wanted_same_site.is_none()
            || attrs.same_site == Some(SameSite::None) && named(&self.insecure)
            // An invalid `SameSite` means the browser's default: replaced, not appended to.
            || attrs.same_site_seen && attrs.same_site.is_none();
        if needs_rewrite {
            // `rewrite` logs why it drops a cookie.
            return match self.rewrite(text, &attrs) {
                Some(value) => Fixed::Replace(value),
                None => Fixed::Drop,
            };
        }
        let add_secure = !attrs.secure && !named(&self.insecure);
        let add_http_only = !attrs.http_only && !named(&self.script_readable);
        let add_same_site = attrs.same_site.is_none();
        let secure = attrs.secure || add_secure;
        let http_only = attrs.http_only || add_http_only;
        if let Some(why) = prefix_violation(name, secure, http_only, attrs.path, attrs.domain) {
            return drop(&why);
        }
        if !(add_secure || add_http_only || add_same_site) {
            return Fixed::Keep;
        }
        const HTTP_ONLY: &[u8] = b"; HttpOnly";
        const SAME_SITE: &[u8] = b"; SameSite=Lax";
        const SECURE: &[u8] = b"; Secure";
        let base = text.trim_end_matches([';', ' ']).as_bytes();
        let len = base.len()
            + if add_http_only { HTTP_ONLY.len() } else { 0 }
            + if add_same_site { SAME_SITE.len() } else { 0 }
            + if add_secure { SECURE.len() } else { 0 };
        // Exactly sized, so `Bytes` takes the buffer over without another allocation.
        let mut fixed = Vec::with_capacity(len);
        fixed.extend_from_slice(base);
        if add_http_only {
            fixed.extend_from_slice(HTTP_ONLY);
        }
        if add_same_site {
            fixed.extend_from_slice(SAME_SITE);
        }
        if add_secure {
            fixed.extend_from_slice(SECURE);
        }
        match HeaderValue::from_maybe_shared(bytes::Bytes::from(fixed)) {
            Ok(v) => Fixed::Replace(v),
            Err(_) => drop(&"cannot be written back as a header"),
        }
    }

    /// The `SameSite` the policy sets on cookie `name`, whose own is `given`: a setting is a
    /// floor, so a handler's own stricter value stays (`Strict` under a `Lax` setting, `Strict`
    /// or `Lax` under [`dangerous_same_site_none`](Self::dangerous_same_site_none)).
    fn same_site_for(&self, name: &str, given: Option<SameSite>) -> Option<SameSite> {
        let (_, wanted) = self.same_site.iter().find(|(n, _)| n == name)?;
        match (*wanted, given) {
            (SameSite::Lax, Some(SameSite::Strict))
            | (SameSite::None, Some(SameSite::Strict | SameSite::Lax)) => None,
            (wanted, _) => Some(wanted),
        }
    }

    /// Says once per policy that a handler's `SameSite=None` cookie was sent as `Lax`.
    #[cold]
    fn warn_same_site_none(&self, name: &str) {
        // The common case (warned already) writes nothing to the shared flag.
        if self.warned_same_site_none.first() {
            tracing::warn!(
                target: crate::LOG_TARGET,
                cookie = logged_name(name),
                "a Set-Cookie asked for SameSite=None and was sent with SameSite=Lax: to send \
                 this cookie on cross-site requests, name it in \
                 CookiePolicy::dangerous_same_site_none (logged once)"
            );
        }
    }

    /// The slow path: parse with the cookie crate, set every rule, write it back.
    /// `attrs` are the cookie's attributes as [`Attrs::read`] (and a browser) reads them.
    fn rewrite(&self, text: &str, attrs: &Attrs<'_>) -> Option<HeaderValue> {
        let drop = |why: &dyn fmt::Display| {
            warn_dropped(why, Some(attrs.name));
            None
        };
        // The name and value go out as they came: the cookie crate reads the attributes
        // only, after a stand-in `x=`. It trims Unicode white space where browsers trim
        // spaces and tabs (`\u{a0}Domain=a.example` would be a `Domain` to it, an unknown
        // attribute to them): such attributes are not left to it.
        let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
        if !attributes.is_ascii()
            && attributes
                .chars()
                .any(|ch| !ch.is_ascii() && ch.is_whitespace())
        {
            return drop(&"non-ASCII white space in its attributes, and it needs rewriting");
        }
        let Ok(mut c) = Cookie::parse(format!("x=;{attributes}")) else {
            return drop(&"does not parse as a cookie");
        };
        let name = attrs.name;
        let named = |list: &[String]| list.iter().any(|n| n == name);
        // The cookie crate keeps the last valid `SameSite`; a browser the last one, an
        // invalid value meaning its default.
        c.set_same_site(attrs.same_site);
        // The cookie crate reads fewer date forms than browsers do, and drops the others.
        match attrs.expires {
            Some(expires) => c.set_expires(expires),
            None => c.unset_expires(),
        }
        // It also reads `Max-Age=` as the longest lifetime and `Max-Age=-` as none, where
        // browsers ignore both and take the last valid one (0 and below: none).
        c.set_max_age(
            attrs.max_age.map(|secs| {
                CookieDuration::seconds(i64::try_from(secs.max(0)).unwrap_or(i64::MAX))
            }),
        );

        if !named(&self.insecure) {
            c.set_secure(true);
        }
        if c.http_only() != Some(true) && !named(&self.script_readable) {
            c.set_http_only(true);
        }
        match self.same_site_for(name, attrs.same_site) {
            Some(same_site) => c.set_same_site(same_site),
            None if c.same_site().is_none() => c.set_same_site(SameSite::Lax),
            None if c.same_site() == Some(SameSite::None) => {
                // Cross-site sending is a loosening the policy must name.
                self.warn_same_site_none(name);
                c.set_same_site(SameSite::Lax);
            }
            None => {}
        }
        if c.same_site() == Some(SameSite::None) && c.secure() != Some(true) {
            // Browsers refuse SameSite=None without Secure; Lax is the safe reading.
            c.set_same_site(SameSite::Lax);
        }

        let cap =
            CookieDuration::seconds(i64::try_from(self.max_age.as_secs()).unwrap_or(i64::MAX));
        if c.max_age().is_some_and(|m| m > cap) {
            c.set_max_age(cap);
        }
        // A cap past the last date the calendar holds caps nothing (and `+` would panic).
        if let Some(expires) = c.expires_datetime()
            && let Some(latest) = OffsetDateTime::now_utc().checked_add(cap)
            && expires > latest
        {
            c.set_expires(latest);
        }

        if let Some(why) = prefix_violation(
            name,
            c.secure() == Some(true),
            c.http_only() == Some(true),
            c.path(),
            c.domain().is_some(),
        ) {
            return drop(&why);
        }
        // The cookie crate writes the stand-in `x=`, then only the attributes it knows: the
        // others (`Priority`, ...) follow, as they were and in their order.
        let written = c.to_string();
        let Some(known) = written.strip_prefix("x=") else {
            return drop(&"cannot be written back as a header");
        };
        let mut out = String::with_capacity(text.len() + written.len());
        out.push_str(pair.trim_ascii());
        out.push_str(known);
        for attr in attributes.split(';').map(str::trim_ascii) {
            let key = attr.split('=').next().unwrap_or_default().trim_ascii();
            if !attr.is_empty() && !OWNED.iter().any(|o| key.eq_ignore_ascii_case(o)) {
                out.push_str("; ");
                out.push_str(attr);
            }
        }
        match HeaderValue::from_str(&out) {
            Ok(v) => Some(v),
            Err(_) => drop(&"cannot be written back as a header"),
        }
    }
}

/// The attributes [`CookiePolicy::rewrite`] writes itself (through the cookie crate); it
/// passes on every other one as it was.
const OWNED: [&str; 8] = [
    "secure",
    "httponly",
    "samesite",
    "max-age",
    "expires",
    "path",
    "domain",
    "partitioned",
];

/// What [`CookiePolicy::fix`] decided for one cookie.
enum Fixed {
    Keep,
    Replace(HeaderValue),
    Drop,
}

/// The attributes of a `Set-Cookie` value, read without allocating.
struct Attrs<'a> {
    name: &'a str,
    secure: bool,
    http_only: bool,
    /// The last `SameSite` attribute's value, `None` when it is not `Strict`, `Lax` or `None`
    /// (case-insensitive): browsers then apply their default (RFC 6265bis §5.6.7).
    same_site: Option<SameSite>,
    /// Some `SameSite` attribute is present, valid or not.
    same_site_seen: bool,
    max_age: Option<i128>,
    /// Some `Expires` attribute is present, valid or not.
    expires_seen: bool,
    /// The last `Expires` date browsers accept (RFC 6265 §5.1.1); they ignore the others.
    expires: Option<OffsetDateTime>,
    path: Option<&'a str>,
    /// Some `Domain` attribute with a value (spaces and tabs trimmed) is present.
    domain: bool,
    /// The last `Domain` attribute's value, empty or not.
    domain_value: &'a str,
    /// `Partitioned` (CHIPS): kept apart from the cookie of the same name without it.
    partitioned: bool,
}

impl<'a> Attrs<'a> {
    fn read(text: &'a str) -> Option<Self> {
        // Split by hand: cookies are short, and a byte loop beats `split`'s searcher here.
        let mut rest = text;
        let mut next_part = || {
            if rest.is_empty() {
                return None;
            }
            let end = rest.bytes().position(|b| b == b';').unwrap_or(rest.len());
            let part = &rest[..end];
            rest = rest.get(end + 1..).unwrap_or("");
            Some(part)
        };
        let first = next_part()?;
        let eq = first.bytes().position(|b| b == b'=')?;
        let name = first[..eq].trim_ascii();
        // A name as browsers take it (RFC 6265bis §5.6, Chrome, Firefox): anything but
        // control characters, `;` and `=` (`a[b]`, `a b`, `café`), not just an RFC 6265
        // token. A tab too is refused (Chrome refuses it in a name).
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_control()) {
            return None;
        }
        let mut a = Attrs {
            name,
            secure: false,
            http_only: false,
            same_site: None,
            same_site_seen: false,
            max_age: None,
            expires_seen: false,
            expires: None,
            path: None,
            domain: false,
            domain_value: "",
            partitioned: false,
        };
        while let Some(attr) = next_part() {
            let (key, val) = match attr.bytes().position(|b| b == b'=') {
                Some(i) => (attr[..i].trim_ascii(), attr[i + 1..].trim_ascii()),
                None => (attr.trim_ascii(), ""),
            };
            match key.len() {
                6 if key.eq_ignore_ascii_case("secure") => a.secure = true,
                8 if key.eq_ignore_ascii_case("httponly") => a.http_only = true,
                8 if key.eq_ignore_ascii_case("samesite") => {
                    a.same_site_seen = true;
                    a.same_site = same_site(val);
                }
                // A value that is not a number is ignored, as browsers do (RFC 6265 §5.2.2):
                // an earlier `Max-Age` stands.
                7 if key.eq_ignore_ascii_case("max-age") => {
                    if let Some(max_age) = max_age(val) {
                        a.max_age = Some(max_age);
                    }
                }
                7 if key.eq_ignore_ascii_case("expires") => {
                    a.expires_seen = true;
                    if let Some(expires) = cookie_date(val) {
                        a.expires = Some(expires);
                    }
                }
                4 if key.eq_ignore_ascii_case("path") => a.path = Some(val),
                // An empty `Domain` is ignored (RFC 6265bis §5.6.3; the cookie crate too): it
                // leaves the cookie host-only, and does not undo an earlier one with a value.
                // `domain_value`, for de-duplication, is the last one, empty or not, as
                // Chrome reads it.
                6 if key.eq_ignore_ascii_case("domain") => {
                    a.domain |= !val.is_empty();
                    a.domain_value = val;
                }
                11 if key.eq_ignore_ascii_case("partitioned") => a.partitioned = true,
                _ => {}
            }
        }
        Some(a)
    }
}

/// A `Max-Age` value as browsers read it (RFC 6265 §5.2.2): `None` unless it is digits, with
/// an optional leading `-` (`+1` and `1.5` are ignored); one out of range is as long or as
/// short as it gets.
fn max_age(value: &str) -> Option<i128> {
    let (digits, limit) = match value.strip_prefix('-') {
        Some(digits) => (digits, i128::MIN),
        None => (value, i128::MAX),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(value.parse().unwrap_or(limit))
}

/// A cookie date as browsers read it (RFC 6265 §5.1.1): split into tokens at delimiters,
/// the first token that reads as a time, a day, a month, a year gives each (in any order;
/// day names, time zones and the like are ignored), two-digit years are 1970-2069. `None`
/// when browsers ignore the date: a part is missing or out of range, or no such day exists.
fn cookie_date(value: &str) -> Option<OffsetDateTime> {
    let delimiter =
        |b: &u8| matches!(b, 0x09 | 0x20..=0x2F | 0x3B..=0x40 | 0x5B..=0x60 | 0x7B..=0x7E);
    let (mut time, mut day, mut month, mut year) = (None, None, None, None);
    for token in value.as_bytes().split(delimiter).filter(|t| !t.is_empty()) {
        if time.is_none()
            && let Some(hms) = hms(token)
        {
            time = Some(hms);
        } else if day.is_none()
            && let Some((d, _)) = leading_number(token, 1..=2)
        {
            day = Some(d);
        } else if month.is_none()
            && let Some(m) = month_name(token)
        {
            month = Some(m);
        } else if year.is_none()
            && let Some((y, _)) = leading_number(token, 2..=4)
        {
            year = Some(y);
        }
    }
    let year = match year? {
        y @ 0..=69 => y + 2000,
        y @ 70..=99 => y + 1900,
        y => y,
    };
    let (hour, minute, second) = time?;
    // `Date` and `Time` refuse a day past its month's end, an hour over 23 and so on.
    let date = Date::from_calendar_date(i32::from(year), month?, u8::try_from(day?).ok()?).ok()?;
    let time = Time::from_hms(hour, minute, second).ok()?;
    // The RFC ignores a year before 1601; Chrome takes it as its earliest date, a deletion,
    // which is what such a date means. 1601 is a deletion in every browser.
    let earliest = Date::from_calendar_date(1601, Month::January, 1).ok()?;
    Some(PrimitiveDateTime::new(date.max(earliest), time).assume_utc())
}

/// The number a cookie-date token starts with, when it starts with as many digits as
/// `digits` allows (a day: 1 or 2; a year: 2 to 4), and the rest of the token.
fn leading_number(token: &[u8], digits: RangeInclusive<usize>) -> Option<(u16, &[u8])> {
    let count = token.iter().take_while(|b| b.is_ascii_digit()).count();
    if !digits.contains(&count) || count > 4 {
        return None;
    }
    let n = token[..count]
        .iter()
        .fold(0, |n, d| n * 10 + u16::from(d - b'0'));
    Some((n, &token[count..]))
}

/// `hh:mm:ss` at the start of a cookie-date token, each field one or two digits.
fn hms(token: &[u8]) -> Option<(u8, u8, u8)> {
    let (hour, rest) = leading_number(token, 1..=2)?;
    let (minute, rest) = leading_number(rest.strip_prefix(b":")?, 1..=2)?;
    let (second, _) = leading_number(rest.strip_prefix(b":")?, 1..=2)?;
    // At most two digits each: they fit.
    let [hour, minute, second] = [hour, minute, second].map(|n| u8::try_from(n).unwrap_or(u8::MAX));
    Some((hour, minute, second))
}

/// The month a cookie-date token starts with (`jan`…`dec`, any case).
fn month_name(token: &[u8]) -> Option<Month> {
    const NAMES: [&[u8; 3]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    let start = token.get(..3)?;
    let i = NAMES.iter().position(|n| start.eq_ignore_ascii_case(*n))?;
    Month::try_from(u8::try_from(i + 1).ok()?).ok()
}

/// A valid `SameSite` value (case-insensitive), as browsers read it.
fn same_site(value: &str) -> Option<SameSite> {
    if value.eq_ignore_ascii_case("strict") {
        Some(SameSite::Strict)
    } else if value.eq_ignore_ascii_case("lax") {
        Some(SameSite::Lax)
    } else if value.eq_ignore_ascii_case("none") {
        Some(SameSite::None)
    } else {
        None
    }
}

/// What makes two `Set-Cookie` values set the same cookie: its name, `Domain` value and
/// `Path` (a missing one as empty), compared byte for byte, and whether it is `Partitioned`;
/// `None` for a value that does not parse (all such values count as one cookie).
fn same_cookie(value: &HeaderValue) -> Option<(&str, &str, &str, bool)> {
    let attrs = text_of(value).and_then(Attrs::read)?;
    Some((
        attrs.name,
        attrs.domain_value,
        attrs.path.unwrap_or(""),
        attrs.partitioned,
    ))
}

/// A `Set-Cookie` value as text: visible ASCII, spaces and tabs (checked as
/// [`HeaderValue::to_str`] does, the common case), or else UTF-8 (browsers take the bytes
/// over 0x7F as the cookie's: `name=café`); without control characters but the tab either
/// way. `None` otherwise (bytes that are not UTF-8, say).
fn text_of(value: &HeaderValue) -> Option<&str> {
    match value.to_str() {
        Ok(text) => Some(text),
        Err(_) => non_ascii_text(value.as_bytes()),
    }
}

/// [`text_of`] for a value with bytes over 0x7F (or one built unchecked, with control
/// characters).
#[cold]
fn non_ascii_text(bytes: &[u8]) -> Option<&str> {
    if bytes.iter().any(|&b| b.is_ascii_control() && b != b'\t') {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

/// Logs that a `Set-Cookie` was dropped and why, naming the cookie when it has a name (never
/// its value).
#[cold]
#[inline(never)]
fn warn_dropped(why: &dyn fmt::Display, name: Option<&str>) {
    match name {
        Some(name) => {
            let cookie = logged_name(name);
            tracing::warn!(target: crate::LOG_TARGET, cookie, "dropped a Set-Cookie: {why}");
        }
        None => tracing::warn!(target: crate::LOG_TARGET, "dropped a Set-Cookie: {why}"),
    }
}

/// A cookie's name as a warning gives it: printable ASCII, the rest percent-encoded. A
/// handler may build the name from client input, and a name may hold any character but
/// controls: a raw NEL (U+0085) or LINE SEPARATOR (U+2028) breaks a JSON log line for some
/// readers, a bidi override (U+202E) makes it read otherwise.
fn logged_name(name: &str) -> String {
    let mut ascii = String::with_capacity(name.len());
    let _ = hardening_errors::write_printable_ascii(&mut ascii, name);
    ascii
}

/// The name of a `Set-Cookie` value that is not text or too long to read: what comes before
/// the first `=`, if that is UTF-8 without control characters (as [`Attrs::read`] takes a
/// name), for the warning that drops it.
fn name_of(value: &[u8]) -> Option<&str> {
    let end = value.iter().position(|&b| b == b';').unwrap_or(value.len());
    let eq = value[..end].iter().position(|&b| b == b'=')?;
    let name = std::str::from_utf8(&value[..eq]).ok()?.trim_ascii();
    (!name.is_empty() && !name.bytes().any(|b| b.is_ascii_control())).then_some(name)
}

/// How a cookie breaks its name prefix's rules (RFC 6265bis: `__Secure-`, `__Host-`,
/// `__Http-`, `__Host-Http-`, matched case-insensitively, as browsers do).
fn prefix_violation(
    name: &str,
    secure: bool,
    http_only: bool,
    path: Option<&str>,
    domain: bool,
) -> Option<PrefixViolation> {
    if !name.starts_with("__") {
        return None;
    }
    let has_prefix = |prefix| has_prefix(name, prefix);
    let (prefix, needs_http_only, needs_path) = if has_prefix("__host-http-") {
        ("__Host-Http-", true, true)
    } else if has_prefix("__host-") {
        ("__Host-", false, true)
    } else if has_prefix("__http-") {
        ("__Http-", true, false)
    } else if has_prefix("__secure-") {
        ("__Secure-", false, false)
    } else {
        return None;
    };
    let lacks = PrefixViolation {
        prefix,
        secure: !secure,
        http_only: needs_http_only && !http_only,
        path: needs_path && path != Some("/"),
        domain: needs_path && domain,
    };
    (lacks.secure || lacks.http_only || lacks.path || lacks.domain).then_some(lacks)
}

/// What a cookie lacks that its name prefix needs, said as "a __Host- cookie needs Path=/":
/// only what this cookie lacks, not the prefix's whole rule.
#[derive(Clone, Copy)]
struct PrefixViolation {
    /// The prefix, as RFC 6265bis writes it.
    prefix: &'static str,
    secure: bool,
    http_only: bool,
    /// `Path=/`.
    path: bool,
    /// Has a `Domain`, which it must not.
    domain: bool,
}

impl fmt::Display for PrefixViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let needs = [
            (self.secure, "Secure"),
            (self.http_only, "HttpOnly"),
            (self.path, "Path=/"),
            (self.domain, "no Domain"),
        ];
        let needs = needs
            .iter()
            .filter(|(lacks, _)| *lacks)
            .map(|(_, what)| *what);
        let count = needs.clone().count();
        write!(f, "a {} cookie needs ", self.prefix)?;
        for (i, what) in needs.enumerate() {
            let separator = match i {
                0 => "",
                i if i + 1 == count => " and ",
                _ => ", ",
            };
            write!(f, "{separator}{what}")?;
        }
        Ok(())
    }
}

/// The start-up warning for a `dangerous_*` setting that names a cookie whose prefix needs
/// the very attribute (`flag`) the setting leaves out.
fn warn_prefix_needs(setting: &str, flag: &str, name: &str) {
    tracing::warn!(
        target: crate::LOG_TARGET,
        cookie = name,
        "CookiePolicy::{setting} names a cookie whose prefix needs {flag}: the policy adds \
         none, and drops the cookie when it comes without; remove the name from {setting}, \
         or rename the cookie"
    );
}

/// Whether `name` starts with `prefix` (lower case), in any case.
fn has_prefix(name: &str, prefix: &str) -> bool {
    name.get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

/// Whether a cookie of this name needs `Secure` (`__Secure-`, `__Host-`, `__Http-`,
/// `__Host-Http-`, any case).
fn needs_secure(name: &str) -> bool {
    has_prefix(name, "__secure-") || has_prefix(name, "__host-") || has_prefix(name, "__http-")
}

/// Whether a cookie of this name needs `HttpOnly` (`__Http-`, `__Host-Http-`, any case).
fn needs_http_only(name: &str) -> bool {
    has_prefix(name, "__http-") || has_prefix(name, "__host-http-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enforce(policy: &CookiePolicy, cookies: &[&[u8]]) -> Vec<String> {
        let mut h = HeaderMap::new();
        for c in cookies {
            h.append(SET_COOKIE, HeaderValue::from_bytes(c).unwrap());
        }
        policy.enforce(&mut h);
        // UTF-8, not `to_str`: a cookie may carry non-ASCII text (obs-text bytes).
        h.get_all(SET_COOKIE)
            .iter()
            .map(|v| std::str::from_utf8(v.as_bytes()).unwrap().to_owned())
            .collect()
    }

    #[test]
    fn adds_missing_flags() {
        let out = enforce(&CookiePolicy::default(), &[b"sid=abc; Path=/"]);
        assert_eq!(out, ["sid=abc; Path=/; HttpOnly; SameSite=Lax; Secure"]);
        let already = enforce(
            &CookiePolicy::default(),
            &[b"sid=abc; Secure; HttpOnly; SameSite=Strict"],
        );
        assert_eq!(
            already,
            ["sid=abc; Secure; HttpOnly; SameSite=Strict"],
            "kept as it was"
        );
    }

    #[test]
    fn opt_outs_are_per_cookie() {
        let p = CookiePolicy::default()
            .dangerous_script_readable("theme")
            .dangerous_same_site_none("embed")
            .dangerous_allow_insecure("legacy");
        let out = enforce(&p, &[b"theme=dark", b"embed=1", b"legacy=1", b"other=1"]);
        assert_eq!(out[0], "theme=dark; SameSite=Lax; Secure");
        assert_eq!(out[1], "embed=1; HttpOnly; SameSite=None; Secure");
        assert_eq!(out[2], "legacy=1; HttpOnly; SameSite=Lax");
        assert_eq!(out[3], "other=1; HttpOnly; SameSite=Lax; Secure");
        let none_insecure = enforce(&p, &[b"legacy=1; SameSite=None"]);
        assert_eq!(
            none_insecure,
            ["legacy=1; HttpOnly; SameSite=Lax"],
            "SameSite=None needs Secure"
        );
    }

    /// Sending a cookie on cross-site requests is a loosening: a handler's own
    /// `SameSite=None` is sent as `Lax` unless the policy names the cookie, on both paths.
    #[test]
    fn a_handlers_same_site_none_needs_the_policy_to_name_the_cookie() {
        let out = enforce(
            &CookiePolicy::default(),
            &[
                b"embed=1; SameSite=None; Secure",
                b"other=1; SameSite=none; Secure; Max-Age=999999999",
            ],
        );
        for cookie in &out {
            assert!(cookie.contains("SameSite=Lax"), "{cookie}");
            assert!(
                !cookie.to_ascii_lowercase().contains("samesite=none"),
                "{cookie}"
            );
        }
        let named = enforce(
            &CookiePolicy::default().dangerous_same_site_none("embed"),
            &[b"embed=1; SameSite=None; Secure"],
        );
        assert_eq!(named, ["embed=1; SameSite=None; Secure; HttpOnly"]);
    }

    /// `dangerous_same_site_none` lets a cookie go cross-site; it made a handler's own
    /// `Strict` or `Lax` on that cookie `None`, weaker than the handler wrote it. They stay,
    /// on both paths; a cookie without one (or with an invalid one) still gets `None`.
    #[test]
    fn same_site_none_keeps_a_handlers_stricter_value() {
        let policy = CookiePolicy::default().dangerous_same_site_none("embed");
        for (given, same_site) in [
            ("embed=1; SameSite=Strict; Secure", "strict"),
            ("embed=1; samesite=lax; Secure; Max-Age=99999999999", "lax"),
            ("embed=1; SameSite=None; SameSite=Strict; Secure", "strict"),
            ("embed=1; SameSite=Strict; SameSite=x; Secure", "none"),
            ("embed=1; Secure", "none"),
        ] {
            let out = enforce(&policy, &[given.as_bytes()]);
            assert_eq!(out.len(), 1, "{given}: {out:?}");
            assert_eq!(last_same_site(&out[0]), same_site, "{given}: {}", out[0]);
        }
    }

    /// The value of a cookie's last `SameSite`, lower-cased: the one browsers read.
    fn last_same_site(cookie: &str) -> String {
        let lower = cookie.to_ascii_lowercase();
        let after = lower.rsplit("samesite=").next().unwrap_or_default();
        after.split(';').next().unwrap_or_default().to_owned()
    }

    /// `same_site(name, Lax)`, a plain setting, made a handler's own `SameSite=Strict` cookie
    /// `Lax`: a loosening without a `dangerous_*` name or a warning. The setting is a floor:
    /// `Strict` stays, on both paths; a cookie without one, or with `None`, gets `Lax`.
    #[test]
    fn a_plain_same_site_setting_keeps_a_handlers_strict() {
        let policy = CookiePolicy::default()
            .same_site("sid", SameSite::Lax)
            .unwrap();
        for (given, same_site) in [
            ("sid=1; SameSite=Strict", "strict"),
            ("sid=1; samesite=strict; Max-Age=99999999999", "strict"),
            ("sid=1; SameSite=Lax; SameSite=Strict", "strict"),
            ("sid=1; SameSite=Strict; SameSite=x", "lax"),
            ("sid=1; SameSite=None; Secure", "lax"),
            ("sid=1", "lax"),
        ] {
            let out = enforce(&policy, &[given.as_bytes()]);
            assert_eq!(out.len(), 1, "{given}: {out:?}");
            assert_eq!(last_same_site(&out[0]), same_site, "{given}: {}", out[0]);
        }
    }

    /// `max_age(Duration::ZERO)` (read, perhaps, as "no cap") was taken, and a cookie set
    /// for an hour went out as `Max-Age=0`, deleted at once. Refused, saying why; one second
    /// is the least cap.
    #[test]
    fn a_cookie_max_age_under_a_second_is_refused() {
        for zero in [Duration::ZERO, Duration::from_millis(999)] {
            let err = CookiePolicy::default()
                .max_age(zero)
                .map(|_| ())
                .expect_err(&format!("max_age({zero:?}) accepted"));
            assert_eq!(err, ConfigError::ZeroCookieMaxAge);
            assert!(err.to_string().contains("Max-Age=0"), "{err}");
        }
        let policy = CookiePolicy::default()
            .max_age(Duration::from_secs(1))
            .unwrap();
        let out = enforce(&policy, &[b"sid=1; Max-Age=3600"]);
        assert!(out[0].contains("Max-Age=1"), "{out:?}");
    }

    /// `dangerous_max_age(Duration::ZERO)` (read, perhaps, as "no cap") was taken silently,
    /// and every cookie with a lifetime went out as `Max-Age=0`, deleted at once: the
    /// loosening method took a cap `max_age` refuses as a mistake. Refused when the header
    /// policy is built, as `max_age` refuses it.
    #[test]
    fn a_dangerous_cookie_max_age_under_a_second_is_refused_at_build() {
        for zero in [Duration::ZERO, Duration::from_millis(999)] {
            let cookies = CookiePolicy::default().dangerous_max_age(zero);
            let err = crate::HeaderPolicy::api()
                .cookies(cookies)
                .build()
                .map(|_| ())
                .expect_err(&format!("dangerous_max_age({zero:?}) accepted"));
            assert_eq!(err, ConfigError::ZeroCookieMaxAge, "{err}");
        }
        let long = CookiePolicy::default().dangerous_max_age(Duration::from_secs(1));
        assert!(crate::HeaderPolicy::api().cookies(long).build().is_ok());
    }

    /// `same_site("sid ", Strict)` (a name read from a file, say) was taken and matched no
    /// cookie: `sid` went out `Lax`, with nothing said. A name no cookie can have is refused,
    /// naming it; the name the handler sets still works.
    #[test]
    fn same_site_for_a_name_no_cookie_can_have_is_refused() {
        for name in ["sid ", " sid", "", "sid=1", "sid;", "s\tid"] {
            let err = CookiePolicy::default()
                .same_site(name, SameSite::Strict)
                .map(|_| ())
                .expect_err(&format!("same_site({name:?}, Strict) accepted"));
            assert!(
                matches!(&err, ConfigError::InvalidCookieName { name: n, .. } if n == name),
                "{name:?}: {err}"
            );
            assert!(err.to_string().contains("as your handlers set it"), "{err}");
        }
        let policy = CookiePolicy::default()
            .same_site("sid", SameSite::Strict)
            .unwrap();
        let out = enforce(&policy, &[b"sid=1"]);
        assert_eq!(last_same_site(&out[0]), "strict", "{out:?}");
    }

    /// `dangerous_script_readable("theme ")` (and the other `dangerous_*` settings that name
    /// a cookie) took a name no cookie can have: it matched nothing, so the loosening asked
    /// for silently did not happen. The header policy holding it does not build now, naming
    /// the setting and the name; the name the handler sets still works.
    #[test]
    fn dangerous_settings_for_a_name_no_cookie_can_have_are_refused_at_build() {
        type Setter = fn(CookiePolicy, &str) -> CookiePolicy;
        let setters: [(&str, Setter); 3] = [
            ("dangerous_script_readable", |p, n| {
                p.dangerous_script_readable(n)
            }),
            ("dangerous_same_site_none", |p, n| {
                p.dangerous_same_site_none(n)
            }),
            ("dangerous_allow_insecure", |p, n| {
                p.dangerous_allow_insecure(n)
            }),
        ];
        let build = |cookies| crate::HeaderPolicy::api().cookies(cookies).build();
        for (setting, set) in setters {
            for name in ["theme ", " theme", "", "theme=1", "theme;", "th\teme"] {
                let err = build(set(CookiePolicy::default(), name))
                    .map(|_| ())
                    .expect_err(&format!("{setting}({name:?}) built"));
                assert!(
                    matches!(
                        &err,
                        ConfigError::InvalidCookieName { setting: s, name: n, .. }
                            if *s == setting && n == name
                    ),
                    "{setting}({name:?}): {err}"
                );
                assert!(err.to_string().contains(setting), "{err}");
            }
            // The first bad name is the one reported, whatever follows.
            let policy = set(set(CookiePolicy::default(), "a b "), "c;");
            let err = build(policy).map(|_| ()).unwrap_err();
            assert!(
                matches!(&err, ConfigError::InvalidCookieName { name, .. } if name == "a b "),
                "{err}"
            );
            assert!(
                build(set(CookiePolicy::default(), "theme")).is_ok(),
                "{setting}"
            );
        }
        let policy = CookiePolicy::default()
            .dangerous_script_readable("theme")
            .dangerous_same_site_none("embed")
            .dangerous_allow_insecure("legacy");
        let out = enforce(&policy, &[b"theme=1", b"embed=1", b"legacy=1"]);
        assert!(!out[0].contains("HttpOnly"), "{out:?}");
        assert_eq!(last_same_site(&out[1]), "none", "{out:?}");
        assert!(!out[2].contains("Secure"), "{out:?}");
    }

    #[test]
    fn invalid_same_site_gets_the_default() {
        let out = enforce(&CookiePolicy::default(), &[b"sid=1; SameSite=Lx"]);
        assert_eq!(out.len(), 1, "{out:?}");
        let same_site: Vec<&str> = out[0]
            .split(';')
            .map(str::trim)
            .filter(|a| a.len() >= 8 && a[..8].eq_ignore_ascii_case("samesite"))
            .collect();
        assert_eq!(same_site, ["SameSite=Lax"], "{}", out[0]);
        // Browsers take the last SameSite attribute; an invalid one means the default.
        let out = enforce(
            &CookiePolicy::default(),
            &[b"sid=1; SameSite=Strict; SameSite=x"],
        );
        assert!(out[0].ends_with("SameSite=Lax; Secure"), "{}", out[0]);
        assert_eq!(out[0].matches("SameSite").count(), 1, "{}", out[0]);
        // Valid values are kept, whatever their case, on both paths.
        let out = enforce(
            &CookiePolicy::default().dangerous_same_site_none("b"),
            &[
                b"a=1; SameSite=strict",
                b"b=1; SameSite=NONE; Max-Age=999999999",
            ],
        );
        assert_eq!(out[0], "a=1; SameSite=strict; HttpOnly; Secure");
        assert!(out[1].contains("SameSite=None"), "{}", out[1]);
        // The slow path (a lifetime to cap) agrees with the fast one.
        let out = enforce(
            &CookiePolicy::default(),
            &[b"sid=1; SameSite=Lx; Max-Age=999999999"],
        );
        assert_eq!(out[0].matches("SameSite").count(), 1, "{}", out[0]);
        assert!(out[0].contains("SameSite=Lax"), "{}", out[0]);
        let out = enforce(
            &CookiePolicy::default(),
            &[b"sid=1; SameSite=Strict; SameSite=x; Max-Age=999999999"],
        );
        assert_eq!(out[0].matches("SameSite").count(), 1, "{}", out[0]);
        assert!(out[0].contains("SameSite=Lax"), "{}", out[0]);
    }

    #[test]
    fn lifetimes_are_capped() {
        let p = CookiePolicy::default()
            .max_age(Duration::from_secs(3600))
            .unwrap();
        let out = enforce(
            &p,
            &[
                b"a=1; Max-Age=999999",
                b"b=1; Expires=Wed, 01 Jan 2200 00:00:00 GMT",
            ],
        );
        assert!(out[0].contains("Max-Age=3600"), "{}", out[0]);
        assert!(!out[1].contains("2200"), "{}", out[1]);
        let deleted = enforce(&p, &[b"a=; Max-Age=0"]);
        assert!(deleted[0].contains("Max-Age=0"));
    }

    /// `Max-Age` read as browsers read it (RFC 6265 §5.2.2): a value that is not digits
    /// (`+1`) is ignored, so an earlier one stands. It was read as a number: `Max-Age=+1`
    /// after a long one passed the cap, and a browser kept the long one; and a value that
    /// was no number, or too long for one, dropped the cookie, a deletion too.
    #[test]
    fn max_age_is_read_as_browsers_read_it() {
        let out = enforce(
            &CookiePolicy::default(),
            &[
                b"a=1; Max-Age=99999999999; Max-Age=+1",
                b"b=1; Max-Age=999999999999999999999999999999999999999999",
                b"sid=; Max-Age=0.5; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
                b"c=1; Max-Age=60; Max-Age=",
            ],
        );
        assert_eq!(out.len(), 4, "{out:?}");
        for capped in &out[..2] {
            assert!(capped.contains("Max-Age=2592000"), "{capped}");
            assert!(!capped.contains("99999"), "{capped}");
        }
        assert!(
            out[2].starts_with("sid=;") && out[2].contains("1970"),
            "{}",
            out[2]
        );
        assert!(out[3].starts_with("c=1; Max-Age=60;"), "{}", out[3]);
    }

    /// A date and time in UTC.
    fn utc(year: i32, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> OffsetDateTime {
        let date = Date::from_calendar_date(year, Month::try_from(month).unwrap(), day).unwrap();
        PrimitiveDateTime::new(date, Time::from_hms(hour, minute, second).unwrap()).assume_utc()
    }

    /// The `Expires` a rewritten cookie goes out with, as the cookie crate reads it back.
    fn expires_sent(cookie: &str) -> Option<OffsetDateTime> {
        assert!(cookie.matches("Expires=").count() <= 1, "{cookie}");
        Cookie::parse(cookie.to_owned()).unwrap().expires_datetime()
    }

    /// `Expires` read as browsers read it (RFC 6265 §5.1.1). The cookie crate reads a few
    /// fixed forms and the rewrite dropped the others: a deletion written another way
    /// (`UTC`, a one-digit day, asctime, odd delimiters) became a session cookie with an
    /// empty value.
    #[test]
    fn expires_dates_browsers_accept_keep_their_meaning() {
        let epoch = utc(1970, 1, 1, 0, 0, 0);
        for (date, meant) in [
            ("Thu, 01-Jan-1970 00:00:00 GMT", epoch),
            ("Thu, 01 Jan 1970 00:00:00 UTC", epoch),
            ("Thu, 01 Jan 1970 00:00:00 +0000", epoch),
            ("Mon, 1 Jan 1970 00:00:00 GMT", epoch),
            ("Thursday, 01-Jan-70 00:00:00 GMT", epoch),
            ("Thu,01-Jan-70 0:0:0 GMT", epoch),
            ("Thu Jan  1 00:00:00 1970", epoch),
            ("  1970 jan 01 00:00:00  ", epoch),
            ("01 70 0:0:1 Janbearpig", utc(1970, 1, 1, 0, 0, 1)),
            ("1970(Jan)01*00:00:01", utc(1970, 1, 1, 0, 0, 1)),
            (
                "Fri Jan 02 1970 00:00:00 GMT+0000 (Coordinated Universal Time)",
                utc(1970, 1, 2, 0, 0, 0),
            ),
            ("Jan 01, 00 00:00:00", utc(2000, 1, 1, 0, 0, 0)),
            ("Dec 31, 99 23:59:59", utc(1999, 12, 31, 23, 59, 59)),
            ("Wed, 29 Feb 2012 12:00:00 GMT", utc(2012, 2, 29, 12, 0, 0)),
            ("Sun, 06 Nov 1994 08:49:37 GMT", utc(1994, 11, 6, 8, 49, 37)),
            // Before 1601: a deletion as Chrome reads it (and as it was sent before).
            ("Sat, 01 Jan 1000 00:00:00 GMT", utc(1601, 1, 1, 0, 0, 0)),
        ] {
            let given = format!("sid=; Expires={date}; Path=/");
            let out = enforce(&CookiePolicy::default(), &[given.as_bytes()]);
            assert_eq!(out.len(), 1, "{given}: {out:?}");
            assert!(out[0].starts_with("sid=;"), "{given}: {out:?}");
            assert_eq!(expires_sent(&out[0]), Some(meant), "{given}: {out:?}");
        }
        // A date to come, written as browsers accept it: kept, or capped when past the cap.
        let policy = CookiePolicy::default()
            .max_age(Duration::from_secs(3600))
            .unwrap();
        let soon = OffsetDateTime::now_utc() + CookieDuration::minutes(30);
        let written = |t: OffsetDateTime| {
            format!(
                "{}, {} {} {} {}:{}:{} UTC",
                t.weekday(),
                t.day(),
                t.month(),
                t.year(),
                t.hour(),
                t.minute(),
                t.second()
            )
        };
        let given = format!("a=1; Expires={}", written(soon));
        let out = enforce(&policy, &[given.as_bytes()]);
        let sent = expires_sent(&out[0]);
        assert_eq!(
            sent,
            Some(soon.replace_nanosecond(0).unwrap()),
            "{given}: {out:?}"
        );
        for far in ["01-Jan-2200 00:00:00 UTC", "Jan 1 00:00:00 9999"] {
            let given = format!("a=1; Expires={far}");
            let before = OffsetDateTime::now_utc();
            let out = enforce(&policy, &[given.as_bytes()]);
            let sent = expires_sent(&out[0]).unwrap_or_else(|| panic!("{given}: {out:?}"));
            assert!(
                sent > before && sent <= OffsetDateTime::now_utc() + CookieDuration::hours(1),
                "{given}: {out:?}"
            );
        }
    }

    /// A date browsers ignore (RFC 6265 §5.1.1) is left out, as they would ignore it, and an
    /// earlier valid `Expires` stands. The cookie crate read a one-digit year (`10-Sep-0`)
    /// as 2000, a deletion where browsers keep a session cookie, and dropped an earlier
    /// valid date it could not read.
    #[test]
    fn expires_dates_browsers_ignore_are_left_out() {
        for date in [
            "",
            "Ja 01, 1970 00:00:00",
            "Ajan 01, 1970 00:00:00",
            "Jan 001, 1970 00:00:00",
            "70 Jan 01, 00:00:00",
            "01970 Jan 01, 00:00:00",
            "1970 Jan 01, 24:00:00",
            "1970 Jan 00, 00:00:00",
            "1970 Jan 32, 00:00:00",
            "1970 Jan 01, 00:60:00",
            "1970 Jan 01, 00:00:60",
            "1970 Feb 29, 00:00:00",
            "1970 Jan 01",
            "1970 Jan 01 00:00",
            "1970 Jan 01 000:00:00",
            "Thu, 10-Sep-0 20:00:00 GMT",
        ] {
            let given = format!("sid=1; Expires={date}");
            let out = enforce(&CookiePolicy::default(), &[given.as_bytes()]);
            assert_eq!(out.len(), 1, "{given}: {out:?}");
            assert!(!out[0].contains("Expires"), "{given}: {out:?}");
            // An earlier date browsers accept stands.
            let given = format!("sid=; Expires=1970 Jan 01 00:00:00 UTC; Expires={date}");
            let out = enforce(&CookiePolicy::default(), &[given.as_bytes()]);
            assert_eq!(
                expires_sent(&out[0]),
                Some(utc(1970, 1, 1, 0, 0, 0)),
                "{given}: {out:?}"
            );
        }
    }

    /// A `Partitioned` cookie (CHIPS) is kept apart from the cookie of the same name, domain
    /// and path without it: a site moving to partitioned cookies sets both, and the first
    /// was dropped as a duplicate.
    #[test]
    fn a_partitioned_cookie_is_not_a_duplicate_of_an_unpartitioned_one() {
        let out = enforce(
            &CookiePolicy::default(),
            &[
                b"a=1; Path=/; Secure; Partitioned",
                b"a=2; Path=/; Secure",
                b"a=3; Path=/; Secure; partitioned; Max-Age=99999999999",
            ],
        );
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out[0].starts_with("a=2;"), "{out:?}");
        assert!(
            out[1].starts_with("a=3;") && out[1].contains("; Partitioned"),
            "{out:?}"
        );
    }

    /// Attributes in odd case and spacing are read as browsers read them (RFC 6265 §5.2):
    /// nothing added twice, a flag's value ignored, the last `Path` the one that counts.
    #[test]
    fn odd_spellings_are_read_as_browsers_read_them() {
        let policy = CookiePolicy::default().dangerous_allow_insecure("__Secure-g");
        for (given, sent) in [
            (
                "a=1; secure; httponly; samesite=strict",
                Some("a=1; secure; httponly; samesite=strict"),
            ),
            (
                "b=1; SameSite = None ; Secure",
                Some("b=1; HttpOnly; SameSite=Lax; Secure"),
            ),
            (
                "c=1; HttpOnly; HttpOnly;",
                Some("c=1; HttpOnly; HttpOnly; SameSite=Lax; Secure"),
            ),
            // `Secure=false` is `Secure` to a browser.
            (
                "d=1; Secure=false",
                Some("d=1; Secure=false; HttpOnly; SameSite=Lax"),
            ),
            // A browser splits at every `;`, quoted or not: `y"` is an attribute it ignores.
            (
                "i=\"x;y\"; Path=/",
                Some("i=\"x;y\"; Path=/; HttpOnly; SameSite=Lax; Secure"),
            ),
            ("__Host-e=1; Secure; Path=/; Path=/x", None),
            ("__host-h=1; Secure; Path=/; domain=a.example", None),
            ("__Secure-g=1", None),
            ("=1", None),
        ] {
            let out = enforce(&policy, &[given.as_bytes()]);
            assert_eq!(out.first().map(String::as_str), sent, "{given}");
        }
    }

    #[test]
    fn prefix_violations_and_garbage_are_dropped() {
        let out = enforce(
            &CookiePolicy::default(),
            &[
                b"__Host-sid=1; Path=/; Secure",
                b"__Host-bad=1; Path=/app",
                b"__HOST-domain=1; Path=/; Domain=example.com",
                b"__Secure-ok=1",
                b"no equals sign",
                b"bin=\xff\xfe",
            ],
        );
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out[0].starts_with("__Host-sid=1;"));
        assert!(out[1].starts_with("__Secure-ok=1;"));
        let huge = format!("big={}", "x".repeat(5000));
        assert!(enforce(&CookiePolicy::default(), &[huge.as_bytes()]).is_empty());
    }

    /// A dropped cookie's warning said why but not which cookie: with several, nobody could
    /// tell which route to fix. It names the cookie (field `cookie`), on both paths and for
    /// a value too long or not UTF-8 too, and never quotes its value.
    #[test]
    fn a_dropped_cookies_warning_names_it_without_its_value() {
        let huge = format!("big=s3cret{}", "x".repeat(5000));
        for (cookie, name) in [
            (&b"__Host-bad=s3cret; Path=/app"[..], Some("__Host-bad")),
            (
                b"__HOST-long=s3cret; Path=/; Domain=a.example; Max-Age=99999999999",
                Some("__HOST-long"),
            ),
            (
                b"__Secure-js=s3cret; Expires=Fri, 31 Dec 9999 23:59:59 GMT",
                Some("__Secure-js"),
            ),
            (b"bin=s3cret\xff\xfe", Some("bin")),
            (huge.as_bytes(), Some("big")),
            (b"\xffname=s3cret", None),
            (b"no equals sign s3cret", None),
        ] {
            let policy = match name {
                Some("__Secure-js") => {
                    CookiePolicy::default().dangerous_allow_insecure("__Secure-js")
                }
                _ => CookiePolicy::default(),
            };
            let logged = crate::test_log::Warnings::during(crate::LOG_TARGET, || {
                assert!(enforce(&policy, &[cookie]).is_empty(), "{name:?}");
            });
            let dropped: Vec<&String> = logged
                .iter()
                .filter(|w| w.contains("dropped a Set-Cookie"))
                .collect();
            assert_eq!(dropped.len(), 1, "{name:?}: {logged:?}");
            let named = match name {
                Some(name) => dropped[0].contains(&format!("cookie={name:?}")),
                None => !dropped[0].contains("cookie="),
            };
            assert!(named, "{name:?}: {dropped:?}");
            assert!(!dropped[0].contains("s3cret"), "{dropped:?}");
        }
    }

    /// A prefixed cookie's drop warning said the whole rule ("needs Secure, Path=/ and no
    /// Domain"), though the policy adds `Secure` itself: it names what this cookie lacks, on
    /// both paths (the rewrite for a lifetime to cap), and `Secure` only when the policy
    /// leaves it out.
    #[test]
    fn a_prefix_warning_names_what_the_cookie_lacks() {
        let insecure = CookiePolicy::default()
            .dangerous_allow_insecure("__Secure-a")
            .dangerous_allow_insecure("__Host-c");
        for (policy, cookie, why) in [
            (
                &CookiePolicy::default(),
                "__Host-a=1",
                "a __Host- cookie needs Path=/",
            ),
            (
                &CookiePolicy::default(),
                "__Host-b=1; Path=/app; Max-Age=99999999999",
                "a __Host- cookie needs Path=/",
            ),
            (
                &CookiePolicy::default(),
                "__Host-c=1; Path=/; Domain=a.example",
                "a __Host- cookie needs no Domain",
            ),
            (
                &CookiePolicy::default(),
                "__host-d=1; Domain=a.example",
                "a __Host- cookie needs Path=/ and no Domain",
            ),
            (
                &insecure,
                "__Host-c=1; Path=/",
                "a __Host- cookie needs Secure",
            ),
            (&insecure, "__Secure-a=1", "a __Secure- cookie needs Secure"),
            (
                &CookiePolicy::default().dangerous_script_readable("__Host-Http-e"),
                "__Host-Http-e=1",
                "a __Host-Http- cookie needs HttpOnly and Path=/",
            ),
        ] {
            let logged = crate::test_log::Warnings::during(crate::LOG_TARGET, || {
                assert!(enforce(policy, &[cookie.as_bytes()]).is_empty(), "{cookie}");
            });
            let message = format!("message=dropped a Set-Cookie: {why} cookie=");
            assert!(
                logged.iter().any(|w| w.starts_with(&message)),
                "{cookie}: wanted {why:?}, got {logged:?}"
            );
        }
    }

    /// A cookie's name is whatever a handler wrote, client input included, and may hold any
    /// character but controls: a raw NEL (U+0085) or LINE SEPARATOR (U+2028), at which some
    /// line readers break a JSON log line, or a bidi override (U+202E) went into the warning
    /// as it came. The name is logged printable ASCII, percent-encoded as a log path is.
    #[test]
    fn a_logged_cookie_name_is_printable_ascii() {
        let (name, ascii) = (
            "__Host-a\u{85}b\u{2028}c\u{202e}d",
            "__Host-a%C2%85b%E2%80%A8c%E2%80%AEd",
        );
        let policy = CookiePolicy::default();
        for (cookie, logged_name) in [
            (format!("{name}=v; Path=/app"), ascii),
            (format!("{name}=v{}", "x".repeat(5000)), ascii),
            ("a\u{2028}=v; SameSite=None".to_owned(), "a%E2%80%A8"),
        ] {
            let logged = crate::test_log::Warnings::during(crate::LOG_TARGET, || {
                enforce(&policy, &[cookie.as_bytes()]);
            });
            let named: Vec<&String> = logged.iter().filter(|w| w.contains("cookie=")).collect();
            assert_eq!(named.len(), 1, "{cookie:?}: {logged:?}");
            assert!(
                named[0].contains(&format!("cookie={logged_name:?}")),
                "the name as it came: {:?}",
                named[0]
            );
        }
    }

    /// Attributes the policy does not set (`Priority`, ones it does not know) go out as they
    /// came, in their order, after the ones it writes. The rewrite (a lifetime to cap, a
    /// `SameSite` to change) dropped them; the ones it writes, in any case, are not repeated.
    #[test]
    fn attributes_the_policy_does_not_set_are_kept() {
        let out = enforce(
            &CookiePolicy::default(),
            &[
                b"a=1; priority=High; Max-Age=99999999999; SECURE; Foo; path=/; Bar=b=c; ; \
                  HttpOnly; sAmEsItE=None; PARTITIONED; Domain=a.example; x",
                b"b=1; Priority=Low; Expires=Wed, 01 Jan 2200 00:00:00 GMT; Path=/",
                b"c=1; Priority=Medium; Path=/",
            ],
        );
        assert_eq!(
            out[0],
            "a=1; HttpOnly; SameSite=Lax; Partitioned; Secure; Path=/; Domain=a.example; \
             Max-Age=2592000; priority=High; Foo; Bar=b=c; x"
        );
        assert!(
            out[1].starts_with("b=1; HttpOnly; SameSite=Lax; Secure; Path=/; Expires=")
                && out[1].ends_with("; Priority=Low")
                && !out[1].contains("2200"),
            "{}",
            out[1]
        );
        assert_eq!(
            out[2],
            "c=1; Priority=Medium; Path=/; HttpOnly; SameSite=Lax; Secure"
        );
    }

    /// `__Http-` and `__Host-Http-` (RFC 6265bis, any case) need `Secure` and
    /// `HttpOnly`, `__Host-Http-` also `Path=/` and no `Domain`: a browser refuses the cookie
    /// otherwise. Named in `dangerous_script_readable` (no `HttpOnly` added) or
    /// `dangerous_allow_insecure`, such a cookie sent without the flag is dropped, on both
    /// paths; it went out, script-readable.
    #[test]
    fn http_prefixes_need_http_only_even_when_script_readable() {
        let policy = CookiePolicy::default()
            .dangerous_script_readable("__Http-js")
            .dangerous_script_readable("__Host-Http-js")
            .dangerous_script_readable("__HOST-HTTP-up")
            .dangerous_allow_insecure("__http-plain");
        let cap = "; Max-Age=99999999999";
        for (given, kept) in [
            ("__Http-a=1", true),
            ("__http-a=1; Domain=a.example; Path=/x", true),
            ("__Host-Http-a=1; Path=/", true),
            ("__Host-Http-a=1", false),
            ("__HOST-HTTP-a=1; Path=/; Domain=a.example", false),
            ("__host-http-a=1; Path=/x", false),
            ("__Http-js=1", false),
            ("__Http-js=1; HttpOnly", true),
            ("__Host-Http-js=1; Path=/", false),
            ("__Host-Http-js=1; Path=/; httponly", true),
            ("__HOST-HTTP-up=1; Path=/", false),
            ("__http-plain=1", false),
            ("__http-plain=1; Secure", true),
            // Not these prefixes: script-readable as configured.
            ("__Httpjs=1", true),
        ] {
            let policy = policy.clone().dangerous_script_readable("__Httpjs");
            for given in [given.to_owned(), format!("{given}{cap}")] {
                let out = enforce(&policy, &[given.as_bytes()]);
                assert_eq!(out.len(), usize::from(kept), "{given}: {out:?}");
                if let Some(sent) = out.first().filter(|_| !given.starts_with("__Httpjs")) {
                    let lower = sent.to_ascii_lowercase();
                    assert!(
                        lower.contains("; httponly") && lower.contains("; secure"),
                        "{given}: {sent}"
                    );
                }
            }
        }
    }

    /// The rewrite takes `Max-Age` as browsers do, the last valid one: the cookie crate read
    /// `Max-Age=` as the longest lifetime (a 60-second cookie went out for 30 days) and
    /// `Max-Age=-` as none.
    #[test]
    fn the_rewrite_keeps_the_max_age_browsers_would() {
        let policy = CookiePolicy::default();
        // `SameSite=None` makes each one go through the rewrite.
        for (given, max_age) in [
            ("c=1; Max-Age=60; Max-Age=; SameSite=None", Some("60")),
            ("c=1; Max-Age=60; Max-Age=-; SameSite=None", Some("60")),
            ("c=1; Max-Age=60; Max-Age=1.5; SameSite=None", Some("60")),
            ("c=1; Max-Age=; SameSite=None", None),
            ("c=1; Max-Age=-5; SameSite=None", Some("0")),
            ("c=1; Max-Age=5; Max-Age=-5; SameSite=None", Some("0")),
            (
                "c=1; Max-Age=99999999999999999999999; SameSite=None",
                Some("2592000"),
            ),
        ] {
            let out = enforce(&policy, &[given.as_bytes()]);
            assert_eq!(out.len(), 1, "{given}");
            let found: Vec<&str> = out[0]
                .split("; ")
                .filter_map(|a| a.strip_prefix("Max-Age="))
                .collect();
            assert_eq!(
                found,
                max_age.into_iter().collect::<Vec<_>>(),
                "{given}: {}",
                out[0]
            );
        }
    }

    /// An empty `Domain` attribute (spaces and tabs around it trimmed) is ignored (RFC
    /// 6265bis §5.6.3; the cookie crate too): the cookie stays host-only, so a `__Host-`
    /// cookie with one is kept. The fast path read it as a `Domain` and dropped the cookie,
    /// where the rewrite (through the cookie crate) kept it. An empty one after a `Domain`
    /// with a value does not undo it (a browser following the RFC keeps the value), and
    /// `Domain=.` is a `Domain` to Chrome: such `__Host-` cookies are still dropped, on both
    /// paths.
    #[test]
    fn an_empty_domain_is_no_domain_on_both_paths() {
        let policy = CookiePolicy::default();
        for (given, kept) in [
            ("__Host-a=1; Path=/; Domain=", true),
            ("__Host-a=1; Path=/; Domain= ", true),
            ("__Host-a=1; Path=/; domain = \t", true),
            ("__Host-a=1; Domain=; Path=/; DOMAIN=", true),
            ("__host-http-a=1; Path=/; Domain=", true),
            ("a=1; Path=/x; Domain=", true),
            ("__Host-a=1; Path=/", true),
            ("__Host-a=1; Path=/; Domain=a.example; Domain=", false),
            ("__Host-a=1; Path=/; Domain=; Domain=a.example", false),
            ("__Host-a=1; Path=/; Domain=.", false),
            ("__Host-a=1; Path=/; Domain=a.example", false),
        ] {
            // As it is (flags appended), and with a lifetime to cap (rewritten).
            for given in [given.to_owned(), format!("{given}; Max-Age=99999999999")] {
                let out = enforce(&policy, &[given.as_bytes()]);
                assert_eq!(out.len(), usize::from(kept), "{given}: {out:?}");
            }
        }
        // The rewrite leaves the empty `Domain` out; the fast path sends it as it came.
        let out = enforce(
            &policy,
            &[
                b"__Host-a=1; Path=/; Domain=; Max-Age=99999999999",
                b"__Host-b=1; Path=/; Domain=",
            ],
        );
        assert_eq!(
            out,
            [
                "__Host-a=1; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=2592000",
                "__Host-b=1; Path=/; Domain=; HttpOnly; SameSite=Lax; Secure",
            ]
        );
    }

    /// `dangerous_allow_insecure` naming a cookie whose prefix needs `Secure` (`__Secure-`,
    /// `__Host-`, `__Http-`, `__Host-Http-`, any case) cannot work: the policy adds no
    /// `Secure` and drops the cookie when it comes without. Start-up says so, as
    /// `dangerous_script_readable` does for `HttpOnly`; it said nothing.
    #[test]
    fn allowing_a_prefixed_cookie_without_secure_warns_at_start_up() {
        for (name, warns) in [
            ("__Secure-a", true),
            ("__secure-a", true),
            ("__Host-a", true),
            ("__HOST-a", true),
            ("__Http-a", true),
            ("__host-http-a", true),
            ("legacy", false),
            ("__Securea", false),
            ("_Host-a", false),
        ] {
            // Registers the callsites before the capture, which then sees them.
            let _ = CookiePolicy::default().dangerous_allow_insecure(name);
            let logged = crate::test_log::Warnings::during(crate::LOG_TARGET, || {
                let _ = CookiePolicy::default().dangerous_allow_insecure(name);
            });
            assert!(
                logged.iter().any(|w| w.contains("may go without Secure")),
                "{name}: {logged:?}"
            );
            let prefix: Vec<&String> = logged
                .iter()
                .filter(|w| w.contains("prefix needs Secure"))
                .collect();
            assert_eq!(prefix.len(), usize::from(warns), "{name}: {logged:?}");
            if let Some(warning) = prefix.first() {
                assert!(
                    warning.contains(&format!("cookie={name:?}"))
                        && warning.contains("CookiePolicy::dangerous_allow_insecure")
                        && warning.contains("drops the cookie when it comes without"),
                    "{name}: {warning}"
                );
            }
        }
        // The cookie is still dropped when sent without `Secure`, on both paths.
        let policy = CookiePolicy::default().dangerous_allow_insecure("__Host-a");
        for given in [
            "__Host-a=1; Path=/",
            "__Host-a=1; Path=/; Max-Age=99999999999",
        ] {
            assert!(enforce(&policy, &[given.as_bytes()]).is_empty(), "{given}");
        }
    }

    /// Cookies browsers accept (RFC 6265bis §5.6, Chrome, Firefox): a name or value with
    /// anything but control characters and `;` (the name without `=`), non-ASCII UTF-8
    /// included. They were dropped as "not visible ASCII" or "does not parse"; they go out
    /// hardened, the name and value as they came, on both paths.
    #[test]
    fn cookies_browsers_accept_pass_hardened_with_their_bytes() {
        let policy = CookiePolicy::default();
        for pair in [
            "name=café",
            "café=1",
            "名前=値",
            "emoji=😀",
            "q=\"crème brûlée\"",
            "a[b]=1",
            "a[b][c]=x",
            "user(1)=x",
            "a:b=1",
            "a/b=1",
            "a@b=1",
            "a?b=1",
            "a,b=1",
            "{a}=1",
            "<a>=1",
            "a\"b=1",
            "a\\b=1",
            "a b=1",
            "v=a b",
            "__Secure-é=ü",
            // Unicode white space is the cookie's own (browsers trim spaces and tabs only).
            "\u{a0}nbsp=\u{3000}x\u{a0}",
        ] {
            for given in [
                pair.to_owned(),
                format!("{pair}; Path=/; Max-Age=99999999999"),
            ] {
                let out = enforce(&policy, &[given.as_bytes()]);
                assert_eq!(out.len(), 1, "{given}: {out:?}");
                let sent = &out[0];
                assert!(sent.starts_with(&format!("{pair}; ")), "{given}: {sent}");
                for flag in ["; HttpOnly", "; SameSite=Lax", "; Secure"] {
                    assert!(sent.contains(flag), "{given}: {sent}");
                }
                assert!(!sent.contains("99999999999"), "{given}: {sent}");
            }
        }
        // `__Host-` with a non-ASCII value: its rules still hold.
        for (given, kept) in [
            ("__Host-é=1; Path=/", true),
            ("__Host-a=café; Path=/; Max-Age=99999999999", true),
            ("__Host-a=café", false),
            (
                "__Host-a=café; Path=/; Domain=a.example; Max-Age=99999999999",
                false,
            ),
        ] {
            let out = enforce(&policy, &[given.as_bytes()]);
            assert_eq!(out.len(), usize::from(kept), "{given}: {out:?}");
        }
        // Several such cookies are not taken for one (de-duplication reads them too).
        let out = enforce(
            &policy,
            &[b"a[x]=1", "a=café".as_bytes(), "b=thé".as_bytes()],
        );
        assert_eq!(out.len(), 3, "{out:?}");
        let out = enforce(&policy, &["a=café".as_bytes(), "a=thé".as_bytes()]);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].starts_with("a=thé;"), "{out:?}");
    }

    /// What is still dropped: bytes that are not UTF-8, a tab in a name (Chrome refuses
    /// it), no name, and a cookie over 4096 bytes, however its bytes are counted.
    #[test]
    fn cookies_browsers_refuse_are_still_dropped() {
        let policy = CookiePolicy::default();
        let long = format!("big={}", "é".repeat(2100));
        let cases: [&[u8]; 8] = [
            b"bin=\xff\xfe",
            b"caf\xe9=1",
            b"a=\xc3",
            b"a\tb=1",
            b"=caf\xc3\xa9",
            b"caf\xc3\xa9",
            b" =1",
            long.as_bytes(),
        ];
        for given in cases {
            for given in [given.to_vec(), [given, b"; Max-Age=99999999999"].concat()] {
                let out = enforce(&policy, &[&given]);
                assert!(out.is_empty(), "{}: {out:?}", given.escape_ascii());
            }
        }
    }

    /// Where the cookie crate and browsers read non-ASCII text apart (it trims Unicode
    /// white space, they trim spaces and tabs), the rewrite does not trust it: `\u{a0}Domain`
    /// is an unknown attribute to a browser but a `Domain` to the crate, which would have
    /// written one. Such a cookie is dropped when it needs rewriting, and sent as it came
    /// (flags appended) otherwise.
    #[test]
    fn the_rewrite_does_not_trust_the_cookie_crate_with_unicode_white_space() {
        let policy = CookiePolicy::default();
        let fast = enforce(&policy, &["a=1; \u{a0}Domain=evil.example".as_bytes()]);
        assert_eq!(
            fast,
            ["a=1; \u{a0}Domain=evil.example; HttpOnly; SameSite=Lax; Secure"]
        );
        for given in [
            "a=1; \u{a0}Domain=evil.example; Max-Age=99999999999",
            "a=1; Path=/x\u{3000}; Max-Age=99999999999",
        ] {
            let out = enforce(&policy, &[given.as_bytes()]);
            assert!(out.is_empty(), "{given}: {out:?}");
        }
        // Non-ASCII attributes without such white space are rewritten.
        let out = enforce(
            &policy,
            &["a=é; Path=/é; Comment=thé; Max-Age=99999999999".as_bytes()],
        );
        assert_eq!(
            out,
            ["a=é; HttpOnly; SameSite=Lax; Secure; Path=/é; Max-Age=2592000; Comment=thé"]
        );
    }

    #[test]
    fn duplicates_keep_the_last() {
        let out = enforce(
            &CookiePolicy::default(),
            &[b"a=1; Path=/", b"a=2; Path=/", b"a=3; Path=/x"],
        );
        assert_eq!(out.len(), 2);
        assert!(out[0].starts_with("a=2"));
        assert!(out[1].starts_with("a=3"));
    }

    /// 3000 `Set-Cookie` values, most of them setting a cookie (name, domain, path; an empty
    /// `Path=` is no path) that another value sets too, and a few that do not parse: what is
    /// kept is each cookie's last value, in the order of those last values, as a browser
    /// would have it.
    #[test]
    fn duplicates_among_many_cookies_keep_the_last_in_order() {
        let values: Vec<String> = (0..3000u32)
            .map(|i| match i % 997 {
                0 => format!("no equals sign {i}"),
                _ => {
                    let n = i.wrapping_mul(2_654_435_761) % 1500;
                    let domain =
                        ["", "; Domain=example.com", "; domain=a.example.com"][(n % 3) as usize];
                    let path = ["", "; Path=/", "; Path=/x", "; Path="][(n / 3 % 4) as usize];
                    format!("c{}={i}{domain}{path}; Secure", n / 12)
                }
            })
            .collect();
        // The rule as stated: a value is kept when no later value is the same cookie
        // (name, domain value, path with a missing one as empty; unparsable ones alike).
        let cookies: Vec<Option<(&str, &str, &str)>> = values
            .iter()
            .map(|v| Attrs::read(v).map(|a| (a.name, a.domain_value, a.path.unwrap_or(""))))
            .collect();
        let expected: Vec<&String> = values
            .iter()
            .enumerate()
            .filter(|&(i, _)| cookies[i + 1..].iter().all(|later| *later != cookies[i]))
            .map(|(_, v)| v)
            .collect();
        assert!(
            expected.len() > 100 && expected.len() < 2000,
            "{}",
            expected.len()
        );
        let mut headers = HeaderMap::new();
        headers.insert("x-before", HeaderValue::from_static("1"));
        for v in &values {
            headers.append(SET_COOKIE, HeaderValue::from_str(v).unwrap());
        }
        headers.insert("x-after", HeaderValue::from_static("2"));
        CookiePolicy::default().dedup(&mut headers);
        let kept: Vec<&str> = headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(kept, expected);
        assert_eq!(headers["x-before"], "1");
        assert_eq!(headers["x-after"], "2");
        assert_eq!(headers.len(), expected.len() + 2);
    }

    /// No cookie, one cookie, or several different ones: the headers are left as they are.
    #[test]
    fn nothing_to_dedup_leaves_the_headers_alone() {
        for cookies in [
            &[][..],
            &["a=1"][..],
            &["a=1", "a=2; Path=/", "b=1", "a=3; Domain=example.com"][..],
        ] {
            let mut headers = HeaderMap::new();
            for c in cookies {
                headers.append(SET_COOKIE, HeaderValue::from_str(c).unwrap());
            }
            headers.insert("x-after", HeaderValue::from_static("1"));
            let before = headers.clone();
            CookiePolicy::default().dedup(&mut headers);
            assert_eq!(headers, before);
            let names: Vec<_> = headers.keys().collect();
            let names_before: Vec<_> = before.keys().collect();
            assert_eq!(names, names_before, "header order");
        }
    }

    #[test]
    fn crlf_cannot_reach_a_header() {
        assert!(HeaderValue::from_bytes(b"a=1\r\nX-Injected: 1").is_err());
    }
}

#[cfg(test)]
mod loosening_tests {
    use super::*;

    /// `SameSite=None` and a cap over 30 days are refused by the plain setters, naming the
    /// dangerous ones, which set them.
    #[test]
    fn plain_setters_refuse_looser_values() {
        let err = CookiePolicy::default()
            .same_site("embed", SameSite::None)
            .unwrap_err();
        assert!(matches!(err, ConfigError::Loosening { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("dangerous_same_site_none(\"embed\")"),
            "{err}"
        );
        let policy = CookiePolicy::default().dangerous_same_site_none("embed");
        let mut h = HeaderMap::new();
        h.append(SET_COOKIE, HeaderValue::from_static("embed=1"));
        policy.enforce(&mut h);
        let cookie = h[SET_COOKIE].to_str().unwrap();
        assert!(
            cookie.contains("SameSite=None") && cookie.contains("Secure"),
            "{cookie}"
        );

        let year = Duration::from_secs(365 * 24 * 3600);
        let err = CookiePolicy::default().max_age(year).unwrap_err();
        assert!(err.to_string().contains("dangerous_max_age"), "{err}");
        assert!(CookiePolicy::default().max_age(MAX_AGE).is_ok());
        assert!(
            CookiePolicy::default()
                .same_site("s", SameSite::Strict)
                .is_ok()
        );
        let policy = CookiePolicy::default().dangerous_max_age(year);
        let mut h = HeaderMap::new();
        h.append(
            SET_COOKIE,
            HeaderValue::from_static("long=1; Max-Age=31536000"),
        );
        policy.enforce(&mut h);
        assert!(
            h[SET_COOKIE].to_str().unwrap().contains("Max-Age=31536000"),
            "{h:?}"
        );
    }

    /// A cap past the end of the calendar (`dangerous_max_age(Duration::MAX)`, "no cap")
    /// panicked on every response whose cookie had an `Expires`: now plus the cap overflowed
    /// the date type. Such a cap caps nothing: the date is kept.
    #[test]
    fn a_cap_past_the_calendar_does_not_panic_at_response_time() {
        let expires = "a=1; Expires=Wed, 01 Jan 2200 00:00:00 GMT";
        for cap in [
            Duration::MAX,
            Duration::from_secs(u64::MAX),
            Duration::from_secs(10_000 * 365 * 24 * 3600),
        ] {
            let policy = CookiePolicy::default().dangerous_max_age(cap);
            let mut h = HeaderMap::new();
            h.append(SET_COOKIE, HeaderValue::from_static(expires));
            h.append(
                SET_COOKIE,
                HeaderValue::from_static("b=1; Max-Age=99999999999"),
            );
            policy.enforce(&mut h);
            let cookies: Vec<&str> = h
                .get_all(SET_COOKIE)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect();
            assert_eq!(cookies.len(), 2, "{cap:?}: {cookies:?}");
            assert!(cookies[0].contains("2200"), "{cap:?}: {cookies:?}");
            assert!(
                cookies[1].contains("Max-Age=99999999999"),
                "{cap:?}: {cookies:?}"
            );
        }
    }

    /// The last `same_site` setting for a cookie wins.
    #[test]
    fn the_last_same_site_setting_wins() {
        let policy = CookiePolicy::default()
            .same_site("s", SameSite::Strict)
            .unwrap()
            .dangerous_same_site_none("s")
            .same_site("s", SameSite::Strict)
            .unwrap();
        let mut h = HeaderMap::new();
        h.append(SET_COOKIE, HeaderValue::from_static("s=1"));
        policy.enforce(&mut h);
        assert!(
            h[SET_COOKIE].to_str().unwrap().contains("SameSite=Strict"),
            "{h:?}"
        );
    }
}
