//! HTTPS: telling whether a request came over TLS, and redirecting plain HTTP.

use http::header::{HOST, LOCATION};
use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode, Uri};

use crate::request_headers::RequestHeaders;

/// Put this in a request's extensions when it arrived over TLS terminated in-process (your
/// TLS acceptor knows); the header set then sends HSTS.
///
/// Nothing else in the request says so: the scheme of its target is what the client wrote
/// (`GET https://host/ HTTP/1.1` can come over plain HTTP), so it is not believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tls;

/// Whether the request came over HTTPS: TLS seen in-process (the [`Tls`] marker), or
/// `X-Forwarded-Proto: https` when `trust_forwarded_proto` (the caller decides that the peer
/// is a trusted proxy). The scheme of the request target is not believed: a client chooses
/// it.
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
/// The redirect goes to the request's `Host` (or the host given with
/// [`to_host`](Self::to_host)) only when it is a DNS name (letters, digits, `-`, `.`) or a
/// bracketed IPv6 literal, with an optional port of 1 to 5 digits; any other host, such as
/// `example.com:@evil.com`, gets no redirect.
///
/// ```
/// use hardening_headers::HttpsRedirect;
///
/// let redirect = HttpsRedirect::new().exempt("/healthz");
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

    /// Leaves this path on plain HTTP (exact match).
    pub fn exempt(mut self, path: impl Into<String>) -> Self {
        self.exempt.push(path.into());
        self
    }

    /// Redirects to this host instead of the request's `Host`.
    pub fn to_host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Whether this request is one to redirect: plain HTTP, on a path that is not exempt.
    pub fn applies(&self, parts: &Parts, https: bool) -> bool {
        !https && !self.exempt.iter().any(|p| p == parts.uri.path())
    }

    /// The redirect for a plain-HTTP request, or `None` when it may proceed, or when its
    /// `Host` is not one to redirect to (see above; [`applies`](Self::applies) tells the
    /// two apart, for a caller that refuses such requests).
    pub fn redirect<B: Default>(&self, parts: &Parts, https: bool) -> Option<Response<B>> {
        if !self.applies(parts, https) {
            return None;
        }
        let host = match &self.host {
            Some(h) => h.as_str(),
            None => parts
                .headers
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .or_else(|| parts.uri.host())?,
        };
        // Drop any port: the HTTPS one is the default.
        let host = hardening_errors::host_without_port(host)?;
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let location: Uri = format!("https://{host}{path}").parse().ok()?;
        let status = if parts.method == Method::GET || parts.method == Method::HEAD {
            StatusCode::MOVED_PERMANENTLY
        } else {
            StatusCode::PERMANENT_REDIRECT
        };
        let mut res = Response::new(B::default());
        *res.status_mut() = status;
        res.headers_mut()
            .insert(LOCATION, HeaderValue::from_str(&location.to_string()).ok()?);
        Some(res)
    }
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
    fn redirects() {
        let r = HttpsRedirect::new().exempt("/healthz");
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
