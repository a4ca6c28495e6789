//! HTTPS: telling whether a request came over TLS, and redirecting plain HTTP.

use http::header::{HOST, LOCATION};
use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode, Uri};

use crate::ConfigError;
use crate::request_headers::RequestHeaders;

/// Put this in a request's extensions when it arrived over TLS terminated in-process (your
/// TLS acceptor knows); the header set then sends HSTS.
///
/// Nothing else in the request says so: the scheme of its target is what the client wrote
/// (`GET https://host/ HTTP/1.1` can come over plain HTTP), so it is not believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tls;

/// Whether the request came over HTTPS: TLS seen in-process (the [`Tls`] marker), or
/// `X-Forwarded-Proto`'s last value `https` when `trust_forwarded_proto` (the caller decides
/// that the peer is a trusted proxy that writes it; a value before the last may be the
/// client's own). The scheme of the request target is not believed: a client chooses it.
pub fn is_https(parts: &Parts, trust_forwarded_proto: bool) -> bool {
    tls_in_process(&parts.extensions)
        || (trust_forwarded_proto && RequestHeaders::read(&parts.headers, true).forwarded_https)
}

/// TLS seen in-process: the [`Tls`] marker (never the request target's scheme).
pub(crate) fn tls_in_process(extensions: &http::Extensions) -> bool {
    extensions.get::<Tls>().is_some()
}

/// Redirects plain-HTTP requests to HTTPS: 301 for GET and HEAD, 308 for other methods (so
/// the method and body are kept), except on exempt paths such as health checks.
///
/// The redirect goes to the request's `Host` only when it is a DNS name (letters, digits,
/// `-`, `.`) or a bracketed IPv6 literal, with an optional port of 1 to 5 digits, which is
/// dropped; any other host, such as `example.com:@evil.com`, gets no redirect (the request is
/// refused), and nor does a request with two `Host` headers or whose target (absolute form,
/// HTTP/2's `:authority`) names another host than its `Host`. [`to_host`](Self::to_host)
/// fixes the host instead, checked when it is set.
///
/// ```
/// use hardening_headers::HttpsRedirect;
///
/// let redirect = HttpsRedirect::new().exempt("/healthz").unwrap();
/// let (parts, ()) = http::Request::post("/login?next=/").header("host", "example.com")
///     .body(()).unwrap().into_parts();
/// let res = redirect.redirect::<()>(&parts, false).unwrap();
/// assert_eq!(res.status(), 308);
/// assert_eq!(res.headers()["location"], "https://example.com/login?next=/");
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct HttpsRedirect {
    exempt: Vec<String>,
    host: Option<String>,
}

impl HttpsRedirect {
    /// Redirects every path to the same host.
    pub fn new() -> Self {
        Self::default()
    }

    /// Leaves this path on plain HTTP (exact match, as the request line has it, before
    /// percent-decoding, without the query). A path no request could have (no leading `/`,
    /// as Django's `SECURE_REDIRECT_EXEMPT` patterns are written; a query; a space, control
    /// or non-ASCII character) is a [`ConfigError::InvalidExemptPath`]: it would exempt
    /// nothing. An exemption loosens the redirect, and is logged as a warning naming the path.
    ///
    /// ```
    /// use hardening_headers::HttpsRedirect;
    ///
    /// assert!(HttpsRedirect::new().exempt("/healthz").is_ok());
    /// let err = HttpsRedirect::new().exempt("healthz").unwrap_err();
    /// assert!(err.to_string().contains("start with /"), "{err}");
    /// ```
    pub fn exempt(mut self, path: impl Into<String>) -> Result<Self, ConfigError> {
        let path = path.into();
        if let Some(why) = hardening_errors::exempt_path_problem(&path) {
            return Err(ConfigError::InvalidExemptPath { path, why });
        }
        crate::warn_loosened(
            "HttpsRedirect::exempt",
            &format!("{path} is served over plain HTTP, not redirected to HTTPS"),
        );
        self.exempt.push(path);
        Ok(self)
    }

    /// Redirects to this host instead of the request's `Host`.
    ///
    /// The host is checked here, so a typo fails when the service is built rather than
    /// refusing every plain-HTTP request later: a DNS name (labels of 1 to 63 ASCII letters,
    /// digits and inner `-`, at most 253 characters; an internationalised name in its
    /// punycode `xn--` form) or a bracketed IPv6 address, with no port (the redirect goes to
    /// HTTPS's default port).
    ///
    /// ```
    /// use hardening_headers::HttpsRedirect;
    ///
    /// assert!(HttpsRedirect::new().to_host("www.example.com").is_ok());
    /// let err = HttpsRedirect::new().to_host("example.com:@evil.com").unwrap_err();
    /// assert!(err.to_string().contains("HttpsRedirect::to_host"));
    /// assert!(HttpsRedirect::new().to_host("example.com:8443").is_err());
    /// ```
    pub fn to_host(mut self, host: impl Into<String>) -> Result<Self, ConfigError> {
        let host = host.into();
        if let Some(why) = not_a_redirect_host(&host) {
            return Err(ConfigError::InvalidRedirectHost {
                host,
                why: why.to_owned(),
            });
        }
        self.host = Some(host);
        Ok(self)
    }

    /// Whether the redirect goes to a host set with [`to_host`](Self::to_host) rather than to
    /// the request's own.
    pub fn has_fixed_host(&self) -> bool {
        self.host.is_some()
    }

    /// Whether this request is one to redirect: plain HTTP, on a path that is not exempt.
    pub fn applies(&self, parts: &Parts, https: bool) -> bool {
        !https && !self.exempt.iter().any(|p| p == parts.uri.path())
    }

    /// What to do with this request, in one step: serve it, redirect it, or refuse it (plain
    /// HTTP whose `Host` is not one to redirect to: never served over plain HTTP).
    ///
    /// ```
    /// use hardening_headers::{HttpsRedirect, RedirectDecision};
    ///
    /// let redirect = HttpsRedirect::new().exempt("/healthz").unwrap();
    /// let parts = |path: &str, host: &str| {
    ///     http::Request::get(path).header("host", host).body(()).unwrap().into_parts().0
    /// };
    /// assert!(matches!(redirect.decide::<()>(&parts("/", "example.com"), false), RedirectDecision::Redirect(_)));
    /// assert!(matches!(redirect.decide::<()>(&parts("/", "example.com:@evil.com"), false), RedirectDecision::Refuse));
    /// assert!(matches!(redirect.decide::<()>(&parts("/healthz", "x"), false), RedirectDecision::Proceed));
    /// assert!(matches!(redirect.decide::<()>(&parts("/", "example.com"), true), RedirectDecision::Proceed));
    /// ```
    pub fn decide<B: Default>(&self, parts: &Parts, https: bool) -> RedirectDecision<B> {
        if !self.applies(parts, https) {
            return RedirectDecision::Proceed;
        }
        let Some(location) = self.location(parts) else {
            return RedirectDecision::Refuse;
        };
        let status = if parts.method == Method::GET || parts.method == Method::HEAD {
            StatusCode::MOVED_PERMANENTLY
        } else {
            StatusCode::PERMANENT_REDIRECT
        };
        let mut res = Response::new(B::default());
        *res.status_mut() = status;
        res.headers_mut().insert(LOCATION, location);
        RedirectDecision::Redirect(res)
    }

    /// The redirect for a plain-HTTP request; `None` when it may proceed and when it is to
    /// be refused alike ([`decide`](Self::decide) tells the two apart).
    pub fn redirect<B: Default>(&self, parts: &Parts, https: bool) -> Option<Response<B>> {
        match self.decide(parts, https) {
            RedirectDecision::Redirect(res) => Some(res),
            RedirectDecision::Proceed | RedirectDecision::Refuse => None,
        }
    }

    /// `https://` + the host to redirect to (without its port) + the request's path and
    /// query (`/` for a target with no path, such as `OPTIONS *`); `None` when there is no
    /// host it may go to.
    fn location(&self, parts: &Parts) -> Option<HeaderValue> {
        let host = match &self.host {
            Some(h) => h.as_str(),
            None => request_host(parts)?,
        };
        // Drop any port: the HTTPS one is the default.
        let host = hardening_errors::host_without_port(host)?;
        // Only an origin-form path is kept: `*` (asterisk form) would extend the host.
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .filter(|p| p.starts_with('/'))
            .unwrap_or("/");
        let location: Uri = format!("https://{host}{path}").parse().ok()?;
        HeaderValue::from_str(&location.to_string()).ok()
    }
}

/// The host the request names: its `Host`, else the authority of its target (HTTP/2's
/// `:authority`). `None` for two `Host` headers, or a `Host` and an authority naming different
/// hosts (RFC 9112 §3.2, RFC 9113 §8.3.1): a cache in front may key the request by the one
/// not used here, and serve the redirect to the other host to everyone.
fn request_host(parts: &Parts) -> Option<&str> {
    let mut values = parts.headers.get_all(HOST).iter();
    let header = values.next();
    if values.next().is_some() {
        return None;
    }
    let authority = parts.uri.host();
    let Some(header) = header else {
        return authority;
    };
    let header = header.to_str().ok()?;
    if let Some(authority) = authority {
        let name = |host: &str| -> Option<String> {
            let host = hardening_errors::host_without_port(host)?;
            Some(host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase())
        };
        if name(header)? != name(authority)? {
            return None;
        }
    }
    Some(header)
}

/// What is wrong with `host` as the host of a redirect, if anything.
fn not_a_redirect_host(host: &str) -> Option<&'static str> {
    if let Some(literal) = host.strip_prefix('[') {
        return match literal.strip_suffix(']') {
            Some(address) if address.parse::<std::net::Ipv6Addr>().is_ok() => None,
            _ => Some("a bracketed literal must be an IPv6 address, such as [2001:db8::1]"),
        };
    }
    if host.contains(':') {
        return Some("give it without a port: the redirect goes to HTTPS's default port, 443");
    }
    // A fully qualified name may end in one dot.
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty() || name.len() > 253 {
        return Some("a DNS name has 1 to 253 characters");
    }
    if !hardening_errors::is_dns_name(name) {
        return Some(
            "give a DNS name: dot-separated labels of 1 to 63 ASCII letters, digits and inner \
             `-` (an internationalised name in its punycode xn-- form)",
        );
    }
    // Browsers read a name whose last label is a number as an IPv4 address.
    let numeric = |label: &str| label.bytes().all(|b| b.is_ascii_digit());
    if name.rsplit('.').next().is_some_and(numeric) && name.parse::<std::net::Ipv4Addr>().is_err() {
        return Some("a name ending in a number must be a whole IPv4 address, such as 192.0.2.1");
    }
    None
}

/// What [`HttpsRedirect::decide`] says to do with a request. Not `non_exhaustive`: a new
/// case must be handled by every caller, not fall through to serving.
#[derive(Debug)]
pub enum RedirectDecision<B> {
    /// HTTPS already, or an exempt path: serve it.
    Proceed,
    /// Plain HTTP: answer with this redirect to HTTPS.
    Redirect(Response<B>),
    /// Plain HTTP with no `Host` a redirect may go to: refuse it (a 400 problem), rather
    /// than serve it over plain HTTP.
    Refuse,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: Method, uri: &str, host: &str) -> Parts {
        http::Request::builder()
            .method(method)
            .uri(uri)
            .header("host", host)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    #[test]
    fn decide_refuses_only_plain_http_with_no_host_to_go_to() {
        let r = HttpsRedirect::new().exempt("/healthz").unwrap();
        let no_host = http::Request::get("/a").body(()).unwrap().into_parts().0;
        assert!(matches!(
            r.decide::<()>(&no_host, false),
            RedirectDecision::Refuse
        ));
        assert!(matches!(
            r.decide::<()>(&no_host, true),
            RedirectDecision::Proceed
        ));
        assert!(matches!(
            r.decide::<()>(&parts(Method::GET, "/healthz", "bad host"), false),
            RedirectDecision::Proceed
        ));
        // A configured (valid) host is one to go to, whatever the request says.
        let fixed = HttpsRedirect::new().to_host("example.com").unwrap();
        match fixed.decide::<()>(&no_host, false) {
            RedirectDecision::Redirect(res) => {
                assert_eq!(res.headers()[LOCATION], "https://example.com/a");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_host_to_redirect_to_is_checked_when_set() {
        for bad in [
            "",
            "example.com:@evil.com",
            "evil.com/path",
            "a b",
            "example.com:8443",
            "[::1]:443",
            "[zz]",
            "user@example.com",
            ".",
            "-",
            "a..b",
            "-a-.com",
            "example.com..",
            "[:::::]",
            "[ffff]",
            "[1.2.3.4]",
            "bücher.example",
            "example.123",
            "1.2.3",
            "999.1.1.1",
            "0x7f.1",
        ] {
            let err = HttpsRedirect::new().to_host(bad).unwrap_err();
            let message = err.to_string();
            assert!(
                message.contains("HttpsRedirect::to_host") && message.contains(&format!("{bad:?}")),
                "{bad:?}: {message}"
            );
        }
        for good in [
            "example.com",
            "www.example.com",
            "[::1]",
            "[2001:db8::1]",
            "localhost",
            "xn--bcher-kva.example",
            "192.0.2.1",
            "example.com.",
            "123.example",
        ] {
            let r = HttpsRedirect::new().to_host(good).unwrap();
            let p = parts(Method::GET, "/a", "ignored.example");
            match r.decide::<()>(&p, false) {
                RedirectDecision::Redirect(res) => {
                    assert_eq!(res.headers()[LOCATION], format!("https://{good}/a"));
                }
                other => panic!("{good}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_host_may_use_the_whole_length_of_a_dns_name() {
        let label = "a".repeat(63);
        let longest = format!("{label}.{label}.{label}.{}", "a".repeat(61));
        assert_eq!(longest.len(), 253);
        assert!(HttpsRedirect::new().to_host(longest.clone()).is_ok());
        assert!(HttpsRedirect::new().to_host(format!("{longest}.")).is_ok());
        assert!(HttpsRedirect::new().to_host(format!("a{longest}")).is_err());
        assert!(HttpsRedirect::new().to_host("a".repeat(64)).is_err());
    }

    /// `exempt("healthz")` (written as Django's `SECURE_REDIRECT_EXEMPT` has it) was taken and
    /// matched no request: `/healthz` over plain HTTP was still redirected. A path no request
    /// can have is refused, saying why; `/healthz` itself is exempt.
    #[test]
    fn an_exempt_path_no_request_can_have_is_refused() {
        for (path, why) in [
            ("healthz", "start with /"),
            ("", "start with /"),
            ("/healthz?probe=1", "without the query"),
            ("/health z", "space"),
        ] {
            let err = HttpsRedirect::new()
                .exempt(path)
                .map(|_| ())
                .expect_err(&format!("exempt({path:?}) accepted"));
            assert!(
                matches!(&err, ConfigError::InvalidExemptPath { path: p, .. } if p == path),
                "{path:?}: {err}"
            );
            assert!(err.to_string().contains(why), "{path:?}: {err}");
        }
        let r = HttpsRedirect::new().exempt("/healthz").unwrap();
        assert!(!r.applies(&parts(Method::GET, "/healthz", "example.com"), false));
        assert!(r.applies(&parts(Method::GET, "/other", "example.com"), false));
    }

    #[test]
    fn redirects() {
        let r = HttpsRedirect::new().exempt("/healthz").unwrap();
        let res = r
            .redirect::<()>(&parts(Method::GET, "/a?b=1", "example.com:8080"), false)
            .unwrap();
        assert_eq!(res.status(), 301);
        assert_eq!(res.headers()[LOCATION], "https://example.com/a?b=1");
        assert!(
            r.redirect::<()>(&parts(Method::GET, "/healthz", "x"), false)
                .is_none()
        );
        assert!(
            r.redirect::<()>(&parts(Method::GET, "/", "x"), true)
                .is_none()
        );
        assert!(
            r.redirect::<()>(&parts(Method::GET, "/", "bad host"), false)
                .is_none()
        );
    }

    /// Two `Host` headers, or a `Host` and a target naming different hosts: the redirect went
    /// to the first `Host`, while a cache in front may key by the other (the last `Host`, or
    /// the target as RFC 9112 §3.2.2 says), and keep the 301 to the attacker's host for all.
    #[test]
    fn a_request_naming_two_hosts_is_not_redirected() {
        let r = HttpsRedirect::new();
        let mut two = parts(Method::GET, "/p", "evil.example");
        two.headers
            .append(HOST, HeaderValue::from_static("example.com"));
        let absolute = parts(Method::GET, "http://example.com/p", "evil.example");
        for (case, p) in [("two Host headers", &two), ("absolute form", &absolute)] {
            let decision = r.decide::<()>(p, false);
            assert!(
                matches!(decision, RedirectDecision::Refuse),
                "{case}: {decision:?}"
            );
        }
        // The same host in both, whatever its case, port or trailing dot, is one host.
        for (target, host) in [
            ("http://Example.COM:8080/p", "example.com"),
            ("http://example.com./p", "example.com:80"),
            ("http://[::1]:80/p", "[::1]"),
        ] {
            let res = r.redirect::<()>(&parts(Method::GET, target, host), false);
            let location = res.map(|res| res.headers()[LOCATION].clone());
            assert_eq!(
                location,
                HeaderValue::from_str(&format!(
                    "https://{}/p",
                    hardening_errors::host_without_port(host).unwrap()
                ))
                .ok(),
                "{target} {host}"
            );
        }
        // A configured host does not depend on the request's.
        let fixed = HttpsRedirect::new().to_host("example.com").unwrap();
        assert!(fixed.redirect::<()>(&two, false).is_some());
        assert!(fixed.redirect::<()>(&absolute, false).is_some());
    }

    /// A path that a browser would read as another host were it relative (`//evil.com`,
    /// `/\evil.com`, which browsers read as `//evil.com`) stays a path behind the host.
    #[test]
    fn a_path_cannot_move_the_redirect_to_another_host() {
        for path in [
            "//evil.com/x",
            "/\\evil.com",
            "///evil.com",
            "/%2F%2Fevil.com",
            "/@evil.com",
        ] {
            let res = HttpsRedirect::new()
                .redirect::<()>(&parts(Method::GET, path, "example.com"), false)
                .unwrap();
            let location = res.headers()[LOCATION].to_str().unwrap();
            assert_eq!(location, format!("https://example.com{path}"));
            let parsed: Uri = location.parse().unwrap();
            assert_eq!(parsed.host(), Some("example.com"), "{path}");
        }
    }

    #[test]
    fn an_asterisk_form_request_is_redirected_to_the_root() {
        let res = HttpsRedirect::new()
            .redirect::<()>(&parts(Method::OPTIONS, "*", "example.com:8080"), false)
            .unwrap();
        assert_eq!(res.status(), 308);
        assert_eq!(res.headers()[LOCATION], "https://example.com/");
    }

    #[test]
    fn https_detection() {
        let mut p = parts(Method::GET, "/", "x");
        assert!(!is_https(&p, true));
        p.headers
            .insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(!is_https(&p, false), "only from trusted proxies");
        assert!(is_https(&p, true));
        p.extensions.insert(Tls);
        assert!(is_https(&p, false));
    }

    #[test]
    fn an_https_request_target_is_not_tls() {
        // `GET https://h/ HTTP/1.1` over plain HTTP: hyper keeps the client's scheme.
        let mut p = parts(Method::GET, "https://h/", "h");
        assert!(!is_https(&p, false));
        assert!(!is_https(&p, true));
        assert!(
            HttpsRedirect::new().redirect::<()>(&p, false).is_some(),
            "still redirected"
        );
        p.extensions.insert(Tls);
        assert!(is_https(&p, false));
    }

    #[test]
    fn only_a_valid_host_is_redirected_to() {
        let r = HttpsRedirect::new();
        let location = |host: &str| {
            r.redirect::<()>(&parts(Method::GET, "/p", host), false)
                .map(|res| res.headers()[LOCATION].to_str().unwrap().to_owned())
        };
        for bad in [
            "example.com:@evil.com",
            "example.com:80@evil.com",
            "user@evil.com",
            "evil.com/.example.com",
            "evil.com\\.example.com",
            "example.com:123456",
            "example.com:",
            "[::1",
            "[::1]x",
            "[evil.com]",
            ":80",
            "",
        ] {
            assert_eq!(location(bad), None, "{bad}");
        }
        assert_eq!(
            location("Example.com:8080").unwrap(),
            "https://Example.com/p"
        );
        assert_eq!(location("127.0.0.1:80").unwrap(), "https://127.0.0.1/p");
        assert_eq!(location("[::1]:8080").unwrap(), "https://[::1]/p");
        assert_eq!(location("[::1]").unwrap(), "https://[::1]/p");
    }
}
