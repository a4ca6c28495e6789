//! `Set-Cookie` enforcement on every response.

use std::time::Duration;

use cookie::time::{Duration as CookieDuration, OffsetDateTime};
use cookie::{Cookie, SameSite};
use http::header::{HeaderMap, HeaderValue, SET_COOKIE};

/// Longest `Set-Cookie` value kept (browsers keep 4096 bytes per cookie).
const MAX_COOKIE_LEN: usize = 4096;

/// The rules every `Set-Cookie` of every response is brought into line with.
///
/// By default each cookie gets `Secure`, `HttpOnly` and `SameSite=Lax` when it lacks them,
/// its lifetime (`Max-Age`/`Expires`) is capped at 30 days, `__Host-` cookies must have
/// `Path=/` and no `Domain`, and a cookie that breaks its prefix's rules, does not parse, or
/// is over 4096 bytes is dropped with a warning. When a response sets the same cookie (name,
/// domain, path) twice, the last one is kept, as a browser would.
///
/// Opt-outs are per cookie and by name:
///
/// ```
/// use std::time::Duration;
/// use cookie::SameSite;
/// use hardening_headers::CookiePolicy;
///
/// let cookies = CookiePolicy::default()
///     .script_readable("theme")              // JavaScript may read it: no HttpOnly
///     .same_site("embed_state", SameSite::None)
///     .max_age(Duration::from_secs(14 * 24 * 3600));
/// # let _ = cookies;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct CookiePolicy {
    max_age: Duration,
    script_readable: Vec<String>,
    same_site: Vec<(String, SameSite)>,
    insecure: Vec<String>,
}

impl Default for CookiePolicy {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(30 * 24 * 3600),
            script_readable: Vec::new(),
            same_site: Vec::new(),
            insecure: Vec::new(),
        }
    }
}

impl CookiePolicy {
    /// Caps every cookie's lifetime (default 30 days).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Lets JavaScript read this cookie (no `HttpOnly` added).
    pub fn script_readable(mut self, name: impl Into<String>) -> Self {
        self.script_readable.push(name.into());
        self
    }

    /// Gives this cookie this `SameSite` instead of `Lax` (`None` implies `Secure`).
    pub fn same_site(mut self, name: impl Into<String>, same_site: SameSite) -> Self {
        self.same_site.push((name.into(), same_site));
        self
    }

    /// Lets this cookie go without `Secure`. Logs a warning.
    pub fn dangerous_allow_insecure(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        tracing::warn!(target: crate::LOG_TARGET, cookie = %name, "cookie allowed without Secure");
        self.insecure.push(name);
        self
    }

    /// Rewrites every `Set-Cookie` in `headers` to follow the rules.
    pub(crate) fn enforce(&self, headers: &mut HeaderMap) {
        let values: Vec<HeaderValue> = headers.get_all(SET_COOKIE).iter().cloned().collect();
        headers.remove(SET_COOKIE);
        let mut kept: Vec<(String, HeaderValue)> = Vec::with_capacity(values.len());
        for value in &values {
            let Some((key, value)) = self.fix(value) else {
                continue;
            };
            kept.retain(|(k, _)| *k != key);
            kept.push((key, value));
        }
        for (_, value) in kept {
            headers.append(SET_COOKIE, value);
        }
    }

    /// One cookie brought into line, with its identity (name, domain, path); `None` to drop.
    fn fix(&self, value: &HeaderValue) -> Option<(String, HeaderValue)> {
        let drop = |why: &str| {
            tracing::warn!(target: crate::LOG_TARGET, "dropped a Set-Cookie: {why}");
            None
        };
        if value.len() > MAX_COOKIE_LEN {
            return drop("longer than 4096 bytes");
        }
        let Ok(text) = value.to_str() else {
            return drop("not visible ASCII");
        };
        let Ok(mut c) = Cookie::parse(text) else {
            return drop("does not parse as a cookie");
        };
        let name = c.name().to_owned();
        let named = |list: &[String]| list.contains(&name);

        if !named(&self.insecure) {
            c.set_secure(true);
        }
        if c.http_only() != Some(true) && !named(&self.script_readable) {
            c.set_http_only(true);
        }
        match self.same_site.iter().find(|(n, _)| *n == name) {
            Some((_, same_site)) => c.set_same_site(*same_site),
            None if c.same_site().is_none() => c.set_same_site(SameSite::Lax),
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
        if let Some(expires) = c.expires_datetime() {
            let latest = OffsetDateTime::now_utc() + cap;
            if expires > latest {
                c.set_expires(latest);
            }
        }

        let lower = name.to_ascii_lowercase();
        if lower.starts_with("__host-")
            && (c.secure() != Some(true) || c.path() != Some("/") || c.domain().is_some())
        {
            return drop("a __Host- cookie needs Secure, Path=/ and no Domain");
        }
        if lower.starts_with("__secure-") && c.secure() != Some(true) {
            return drop("a __Secure- cookie needs Secure");
        }
        let key = format!(
            "{name}\u{0}{}\u{0}{}",
            c.domain().unwrap_or(""),
            c.path().unwrap_or("")
        );
        match HeaderValue::from_str(&c.to_string()) {
            Ok(v) => Some((key, v)),
            Err(_) => drop("cannot be written back as a header"),
        }
    }
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
        h.get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn adds_missing_flags() {
        let out = enforce(&CookiePolicy::default(), &[b"sid=abc; Path=/"]);
        assert_eq!(out, ["sid=abc; HttpOnly; SameSite=Lax; Secure; Path=/"]);
    }

    #[test]
    fn opt_outs_are_per_cookie() {
        let p = CookiePolicy::default()
            .script_readable("theme")
            .same_site("embed", SameSite::None)
            .dangerous_allow_insecure("legacy");
        let out = enforce(&p, &[b"theme=dark", b"embed=1", b"legacy=1", b"other=1"]);
        assert_eq!(out[0], "theme=dark; SameSite=Lax; Secure");
        assert_eq!(out[1], "embed=1; HttpOnly; SameSite=None; Secure");
        assert_eq!(out[2], "legacy=1; HttpOnly; SameSite=Lax");
        assert_eq!(out[3], "other=1; HttpOnly; SameSite=Lax; Secure");
    }

    #[test]
    fn lifetimes_are_capped() {
        let p = CookiePolicy::default().max_age(Duration::from_secs(3600));
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

    #[test]
    fn crlf_cannot_reach_a_header() {
        assert!(HeaderValue::from_bytes(b"a=1\r\nX-Injected: 1").is_err());
    }
}
