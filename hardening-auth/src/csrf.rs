//! Cross-origin request protection for requests that carry credentials a browser sends on
//! its own (cookies, cached HTTP authentication), after Go 1.25's `CrossOriginProtection`:
//! `Sec-Fetch-Site` first, then `Origin` against `Host`; and for cross-site form
//! submissions and sibling subdomains' requests without credentials (login CSRF).

use std::fmt;

/// Parsed once, not per request.
static SEC_FETCH_SITE: http::HeaderName = http::HeaderName::from_static("sec-fetch-site");
static SEC_FETCH_MODE: http::HeaderName = http::HeaderName::from_static("sec-fetch-mode");

use http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HOST, ORIGIN, UPGRADE};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method};

/// Why a request was refused as cross-site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CsrfReason {
    /// `Sec-Fetch-Site: cross-site` or `same-site` from an untrusted origin (without
    /// credentials, `same-site` only, for a request sent without a preflight: a sibling
    /// subdomain's script, login CSRF).
    SecFetchSite,
    /// An `Origin` that is neither this host nor trusted.
    Origin,
    /// A form another site submitted without credentials (`Sec-Fetch-Mode: navigate`,
    /// `Sec-Fetch-Site` other than `same-origin` or `none`, from an untrusted origin): the
    /// shape of login CSRF, which signs the victim in to the attacker's account.
    CrossSiteNavigation,
}

/// A [`Csrf::dangerous_exempt_path`] that no request's path could equal: `why` says what
/// to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CSRF exempt path {path:?} {why}")]
pub struct InvalidExemptPath {
    /// The path given.
    pub path: String,
    /// What is wrong with it, and the fix.
    pub why: &'static str,
}

/// A trusted origin that no browser would send: its `why` names the fix. The error of
/// [`hardening_errors::origin::parse_origin`], which CORS uses too.
pub use hardening_errors::origin::InvalidOrigin;

/// Refuses unsafe-method requests (POST, PUT, PATCH, DELETE, …) and WebSocket handshakes
/// (a GET with `Upgrade`) that a browser sent from another origin, when they carry
/// credentials the browser adds by itself, cookies or HTTP authentication (`Basic`, `Digest`,
/// `Negotiate`, `NTLM`), and no bearer token (bearer tokens are not sent automatically, so
/// they need no CSRF defence); and forms that another origin submits, and simple requests
/// that a sibling subdomain sends, without credentials (login CSRF, below).
///
/// The check, in order: safe methods pass, unless a GET asks for an `Upgrade`; a path
/// exempted by [`dangerous_exempt_path`](Self::dangerous_exempt_path) passes; a bearer
/// request passes; without credentials, only a form from another origin, or a request that
/// another origin of this site sends without a preflight, is refused (below);
/// with them, `Sec-Fetch-Site: same-origin` or `none` passes,
/// any other `Sec-Fetch-Site` passes only for a trusted origin, without `Sec-Fetch-Site` an
/// `Origin` must match the `Host` (or be trusted), and with neither header (not a browser, or
/// a very old one) the request passes. Trusted origins compare scheme, host and port, not the
/// host alone (gorilla/csrf CVE-2025-47909). Shadow mode logs instead of refusing.
///
/// The `Origin` fallback compares with the `Host` the service receives, exactly, and never
/// reads `X-Forwarded-Host`: behind a proxy that rewrites `Host` (nginx's default
/// `proxy_set_header Host $proxy_host`, or `$host:$server_port`, which adds `:443`), a
/// browser without Fetch Metadata has its own site's unsafe requests refused. Pass the
/// client's `Host` through (`proxy_set_header Host $host`), or trust the site's origin.
///
/// **Login CSRF.** A request without credentials acts for nobody, except a form that another
/// site submits to a login (or sign-up) route: the answer's session cookie then signs the
/// victim in to the attacker's account, and what they type next lands there. So an unsafe
/// request without credentials is refused when it is a navigation (`Sec-Fetch-Mode:
/// navigate`: a form, in a window or a frame) from another origin (`Sec-Fetch-Site` other
/// than `same-origin` or `none`, which takes in sibling subdomains: `same-site`) that is
/// not trusted; and so is a request a sibling subdomain's script sends without a preflight
/// (`Sec-Fetch-Site: same-site`, any mode: a `POST` with no `Content-Type` or a form's or
/// `text/plain`, by `fetch` or `sendBeacon`) from an untrusted origin, as the browser keeps
/// a `SameSite=Lax` or `Strict` cookie set in answer to a same-site request (Chromium keeps
/// a `__Host-` session from a form-encoded `fetch` to a login route). Other requests from
/// a sibling pass: the browser sends them only after a preflight, and keeps their answer's
/// cookie only if the preflight let the origin send credentials, which makes it trusted
/// under `Hardening` (origins its CORS policy lets send credentials are). Other sites'
/// scripts' calls (mode `cors`, or `no-cors`) pass as before: the browser does not keep a
/// `SameSite=Lax` or `Strict` cookie set in answer to them. What this part does not cover:
/// - requests without Fetch Metadata: browsers send it only to HTTPS and loopback
///   addresses, and Safari only since 16.4 (serve logins over HTTPS);
/// - a session cookie made `SameSite=None` (`CookiePolicy::dangerous_same_site_none`):
///   where the browser allows third-party cookies, a script's cross-site call can set it too;
/// - logins over GET (magic links, OAuth callbacks): their tokens or `state` must bind them
///   to the browser that started them.
///
/// A route that must take other sites' forms (a SAML assertion consumer, an OpenID Connect
/// `form_post` callback, a payment provider's return, a 3-D Secure challenge in a frame)
/// trusts their origin with [`trust_origins`](Self::trust_origins) (for every path, with
/// credentials too), or, when the origins cannot be listed or arrive as `Origin: null`, is
/// exempted by path. Upgrading from a version that checked only requests with credentials,
/// run the check in [`shadow`](Self::shadow) mode first to find such routes.
///
/// It is no layer: `hardening-core`'s `Hardening` runs it (on by default with feature
/// `auth`, set with `Hardening::csrf`) and answers a refusal with a 403 problem, or call
/// [`check`](Self::check) yourself.
///
/// ```
/// use hardening_auth::Csrf;
///
/// let csrf = Csrf::new().trust_origins(["https://admin.example.com"])?;
/// let (parts, ()) = http::Request::post("/notes")
///     .header("host", "api.example.com")
///     .header("cookie", "__Host-session=abc")
///     .header("sec-fetch-site", "cross-site")
///     .header("origin", "https://evil.example")
///     .body(()).unwrap().into_parts();
/// assert!(csrf.check(&parts).is_err());
/// # Ok::<(), hardening_auth::InvalidOrigin>(())
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct Csrf {
    trusted: Vec<HeaderValue>,
    exempt: Vec<Box<str>>,
    shadow: bool,
}

impl fmt::Debug for Csrf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Csrf")
            .field("trusted", &self.trusted)
            .field("exempt", &self.exempt)
            .field("shadow", &self.shadow)
            .finish()
    }
}

impl Csrf {
    /// Same-origin only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also accepts requests from these origins, written as browsers send them in `Origin`
    /// (`https://app.example.com`, with a port only if not the scheme's default; scheme and
    /// host in any case), as CORS reads its origins: see
    /// [`hardening_errors::origin::parse_origin`]. Any other origin is refused, since it
    /// would never match.
    ///
    /// # Errors
    ///
    /// [`InvalidOrigin`] for an entry that is not `scheme://host[:port]`, its `why` naming
    /// the fix.
    pub fn trust_origins<I>(mut self, origins: I) -> Result<Self, InvalidOrigin>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        for origin in origins {
            let parsed = hardening_errors::origin::parse_origin(origin.as_ref())?;
            self.trusted.push(parsed);
        }
        Ok(self)
    }

    /// **Loosens**: requests to exactly this path (as the request line has it, before
    /// percent-decoding, without the query) are not checked, with or without credentials:
    /// for a route that takes other sites' forms whose origins cannot be listed or arrive as
    /// `Origin: null`, such as a SAML assertion consumer or a 3-D Secure return. The route
    /// must then defend itself (a signed assertion, a `state` it issued). A path that no
    /// request could have (no leading `/`, a query) is an [`InvalidExemptPath`]. Logs a
    /// warning.
    ///
    /// ```
    /// use hardening_auth::Csrf;
    ///
    /// let csrf = Csrf::new().dangerous_exempt_path("/saml/acs")?;
    /// let post = |path: &str| http::Request::post(path)
    ///     .header("host", "sp.example.com")
    ///     .header("sec-fetch-site", "cross-site")
    ///     .header("sec-fetch-mode", "navigate")
    ///     .header("origin", "null")
    ///     .body(()).unwrap().into_parts().0;
    /// assert!(csrf.check(&post("/saml/acs")).is_ok());
    /// assert!(csrf.check(&post("/login")).is_err());
    /// assert!(Csrf::new().dangerous_exempt_path("saml/acs").is_err());
    /// # Ok::<(), hardening_auth::InvalidExemptPath>(())
    /// ```
    pub fn dangerous_exempt_path(
        mut self,
        path: impl Into<Box<str>>,
    ) -> Result<Self, InvalidExemptPath> {
        let path = path.into();
        if let Some(why) = hardening_errors::exempt_path_problem(&path) {
            return Err(InvalidExemptPath {
                path: path.into(),
                why,
            });
        }
        tracing::warn!(
            target: "hardening",
            setting = "Csrf::dangerous_exempt_path",
            path = %path,
            "hardening loosened: no CSRF check for this path; other sites' pages can post to it \
             with the user's cookies"
        );
        self.exempt.push(path);
        Ok(self)
    }

    /// Logs what would be refused, refuses nothing (logged as a loosening, as a shadow rate
    /// limit policy is): for trying the check on live traffic before enforcing it. Under
    /// `Hardening`, each request it would refuse is a `csrf_shadow` security event with the
    /// request's id and client IP, which the access log's line for that id joins to its
    /// route.
    pub fn shadow(mut self) -> Self {
        tracing::warn!(
            target: "hardening",
            setting = "Csrf::shadow",
            "hardening loosened: the CSRF check only logs what it would refuse, and refuses \
             nothing"
        );
        self.shadow = true;
        self
    }

    /// Whether the request may proceed. The request counts as HTTPS when its URI says so
    /// (HTTP/2); a layer that knows more (TLS seen, a trusted proxy's report) calls
    /// [`check_request`](Self::check_request).
    ///
    /// # Errors
    ///
    /// The [`CsrfReason`] the request is refused for (never in [`shadow`](Self::shadow)
    /// mode, which logs it and returns `Ok`).
    #[inline]
    pub fn check(&self, parts: &Parts) -> Result<(), CsrfReason> {
        self.check_request(parts, false)
    }

    /// [`check`](Self::check) for a request known to have come over HTTPS (`https: true`)
    /// or not known to have (`false`: it still counts as HTTPS when its URI says so, as over
    /// HTTP/2). Over HTTPS, an `Origin` of the same host must be
    /// `https` too: a page that an active network attacker injected into
    /// `http://` + this host is another origin. When HTTPS is not known (plain HTTP, or TLS
    /// ended by a proxy the service was not told about), the scheme is not compared.
    ///
    /// ```
    /// use hardening_auth::Csrf;
    ///
    /// let (parts, ()) = http::Request::post("/notes")
    ///     .header("host", "app.example.com")
    ///     .header("cookie", "__Host-session=abc")
    ///     .header("origin", "http://app.example.com")
    ///     .body(()).unwrap().into_parts();
    /// assert!(Csrf::new().check_request(&parts, true).is_err());
    /// assert!(Csrf::new().check_request(&parts, false).is_ok());
    /// ```
    #[inline]
    pub fn check_request(&self, parts: &Parts, https: bool) -> Result<(), CsrfReason> {
        match self.verdict(parts, https) {
            Err(reason) if self.shadow => {
                Self::log_shadowed(reason);
                Ok(())
            }
            verdict => verdict,
        }
    }

    /// What [`check_request`](Self::check_request) would decide without
    /// [`shadow`](Self::shadow) mode, logging nothing: for a caller that reports a shadowed
    /// refusal itself (`Hardening` does, as a `csrf_shadow` security event with the request's
    /// id). See also [`is_shadow`](Self::is_shadow).
    #[inline]
    pub fn verdict(&self, parts: &Parts, https: bool) -> Result<(), CsrfReason> {
        // Safe methods need nothing more (and this stays short enough to inline), except a
        // WebSocket handshake: a GET whose socket then acts for the user.
        let safe = match parts.method {
            Method::GET => !has_upgrade(&parts.headers),
            Method::HEAD | Method::OPTIONS | Method::TRACE => true,
            _ => false,
        };
        if safe {
            return Ok(());
        }
        self.decide(parts, https)
    }

    /// Whether the check is in [`shadow`](Self::shadow) mode (it refuses nothing).
    pub fn is_shadow(&self) -> bool {
        self.shadow
    }

    #[cold]
    fn log_shadowed(reason: CsrfReason) {
        tracing::warn!(target: crate::AUTH_TARGET, ?reason, "cross-origin request would be blocked (shadow mode)");
    }

    /// The verdict for an unsafe method ([`check`](Self::check) lets safe ones through):
    /// out of line.
    #[inline(never)]
    fn decide(&self, parts: &Parts, https: bool) -> Result<(), CsrfReason> {
        if self.exempt.iter().any(|path| **path == *parts.uri.path()) {
            return Ok(());
        }
        let authorization = parts.headers.get(AUTHORIZATION).map(HeaderValue::as_bytes);
        let bearer =
            authorization.is_some_and(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer "));
        if bearer {
            return Ok(());
        }
        let credentials =
            parts.headers.contains_key(COOKIE) || authorization.is_some_and(sent_by_browsers);
        let origin = parts.headers.get(ORIGIN);
        let trusted = origin.is_some_and(|o| {
            self.trusted
                .iter()
                .any(|t| t.as_bytes().eq_ignore_ascii_case(o.as_bytes()))
        });
        let cross_site = parts
            .headers
            .get(&SEC_FETCH_SITE)
            .map(|site| !matches!(site.as_bytes(), b"same-origin" | b"none"));
        if !credentials {
            // Login CSRF: the browser keeps the `SameSite` cookie an answer sets only for a
            // top-level navigation from another site, but for any request from this site's
            // other origins (a sibling subdomain's script).
            if cross_site != Some(true) || trusted {
                return Ok(());
            }
            let navigation = parts
                .headers
                .get(&SEC_FETCH_MODE)
                .is_some_and(|mode| mode.as_bytes() == b"navigate");
            let same_site = parts
                .headers
                .get(&SEC_FETCH_SITE)
                .is_some_and(|site| site.as_bytes() == b"same-site");
            return if navigation {
                Err(CsrfReason::CrossSiteNavigation)
            } else if same_site && sent_without_preflight(parts) {
                Err(CsrfReason::SecFetchSite)
            } else {
                Ok(())
            };
        }
        if let Some(cross_site) = cross_site {
            return if cross_site && !trusted {
                Err(CsrfReason::SecFetchSite)
            } else {
                Ok(())
            };
        }
        let Some(origin) = origin else {
            return Ok(());
        };
        if trusted {
            return Ok(());
        }
        // Origin's host[:port] must equal Host (or, over HTTP/2, which has none, the
        // request's authority); over HTTPS, its scheme must be https.
        let https = https || parts.uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .filter(|(scheme, _)| !https || scheme.eq_ignore_ascii_case("https"))
            .map(|(_, host)| host);
        let host = parts
            .headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| parts.uri.authority().map(http::uri::Authority::as_str));
        match (origin_host, host) {
            (Some(o), Some(h)) if o.eq_ignore_ascii_case(h) => Ok(()),
            _ => Err(CsrfReason::Origin),
        }
    }
}

/// Whether a browser sends this unsafe request to another origin without a preflight (a
/// CORS "simple" request): a `POST` with no `Content-Type` or a form's or `text/plain`. Any
/// other waits on a preflight, which must let the origin send credentials for the browser to
/// keep the cookie of the answer: an origin `Hardening` then trusts.
fn sent_without_preflight(parts: &Parts) -> bool {
    parts.method == Method::POST
        && parts.headers.get(CONTENT_TYPE).is_none_or(|value| {
            let media_type = hardening_errors::media_type(value);
            [
                &b"application/x-www-form-urlencoded"[..],
                b"multipart/form-data",
                b"text/plain",
            ]
            .iter()
            .any(|simple| media_type.eq_ignore_ascii_case(simple))
        })
}

/// Whether an `Authorization` value is of a scheme browsers send by themselves once the user
/// has logged in (to any request to the site, cross-site form posts included).
fn sent_by_browsers(authorization: &[u8]) -> bool {
    let scheme = authorization
        .split(|b| *b == b' ')
        .next()
        .unwrap_or_default();
    [&b"basic"[..], b"digest", b"negotiate", b"ntlm"]
        .iter()
        .any(|s| scheme.eq_ignore_ascii_case(s))
}

/// Up to this many header values, [`has_upgrade`] compares names in turn: cheaper than a
/// lookup, which hashes the name (about 80 instructions on every GET). Beyond, it looks the
/// name up, so a request with many fields does not make every GET's check long.
const SCAN_UP_TO: usize = 8;

/// Whether the request has an `Upgrade` field (a WebSocket handshake has one).
#[inline]
fn has_upgrade(headers: &HeaderMap) -> bool {
    if headers.len() > SCAN_UP_TO {
        headers.contains_key(UPGRADE)
    } else {
        headers.keys().any(|name| name == UPGRADE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: Method, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().method(method).uri("/x");
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    const COOKIE_HOST: [(&str, &str); 2] = [("cookie", "sid=1"), ("host", "api.example.com")];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        COOKIE_HOST
            .iter()
            .copied()
            .chain(extra.iter().copied())
            .collect()
    }

    #[test]
    fn decisions() {
        let csrf = Csrf::new()
            .trust_origins(["https://admin.example.com"])
            .unwrap();
        let ok =
            |m: Method, h: &[(&'static str, &'static str)]| csrf.check(&parts(m, &with(h))).is_ok();
        assert!(
            ok(Method::GET, &[("sec-fetch-site", "cross-site")]),
            "safe method"
        );
        assert!(ok(Method::POST, &[("sec-fetch-site", "same-origin")]));
        assert!(ok(Method::POST, &[("sec-fetch-site", "none")]));
        assert!(!ok(
            Method::POST,
            &[
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://evil.example")
            ]
        ));
        assert!(!ok(
            Method::POST,
            &[
                ("sec-fetch-site", "same-site"),
                ("origin", "https://x.example.com")
            ]
        ));
        assert!(ok(
            Method::POST,
            &[
                ("sec-fetch-site", "same-site"),
                ("origin", "https://admin.example.com")
            ]
        ));
        assert!(
            !ok(
                Method::POST,
                &[
                    ("sec-fetch-site", "same-site"),
                    ("origin", "http://admin.example.com")
                ]
            ),
            "scheme counts"
        );
        assert!(
            !ok(
                Method::POST,
                &[
                    ("sec-fetch-site", "same-site"),
                    ("origin", "https://admin.example.com:8443")
                ]
            ),
            "port counts"
        );
        assert!(
            ok(Method::POST, &[("origin", "https://api.example.com")]),
            "Origin matches Host"
        );
        assert!(!ok(Method::DELETE, &[("origin", "https://evil.example")]));
        assert!(!ok(Method::POST, &[("origin", "null")]));
        // HTTP/2 has no `Host`: the request's authority stands for it.
        let h2 = |origin: &'static str| {
            let mut p = http::Request::post("https://api.example.com/notes")
                .header("cookie", "sid=1")
                .header("origin", origin)
                .body(())
                .unwrap()
                .into_parts()
                .0;
            p.version = http::Version::HTTP_2;
            csrf.check(&p).is_ok()
        };
        assert!(h2("https://api.example.com"), "same origin over HTTP/2");
        assert!(!h2("https://evil.example"), "cross origin over HTTP/2");
        assert!(ok(Method::POST, &[]), "no browser headers");
        // Bearer requests and cookie-less requests are not CSRF-able.
        assert!(
            csrf.check(&parts(
                Method::POST,
                &[("origin", "https://evil.example"), ("host", "a")]
            ))
            .is_ok()
        );
        assert!(
            csrf.check(&parts(
                Method::POST,
                &[
                    ("cookie", "a=1"),
                    ("authorization", "Bearer t"),
                    ("sec-fetch-site", "cross-site")
                ]
            ))
            .is_ok()
        );
        assert!(Csrf::new().trust_origins(["admin.example.com"]).is_err());
    }

    /// Trusted origins are read as CORS reads its origins: one a browser never sends (it
    /// would never match) is refused with the fix, and scheme and host may be in any case.
    #[test]
    fn trusted_origins_are_written_as_browsers_send_them() {
        let mut wrong = Vec::new();
        for (bad, fix) in [
            ("https://app.example.com:443", "drop :443"),
            (
                "https://app.example.com/path",
                "drop everything after the host",
            ),
        ] {
            match Csrf::new().trust_origins([bad]) {
                Ok(_) => wrong.push(format!("{bad}: accepted")),
                Err(err) if !err.to_string().contains(fix) => wrong.push(format!("{bad}: {err}")),
                Err(_) => {}
            }
        }
        let cross_site = parts(
            Method::POST,
            &with(&[
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://app.example.com"),
            ]),
        );
        assert_eq!(
            Csrf::new().check(&cross_site),
            Err(CsrfReason::SecFetchSite)
        );
        match Csrf::new().trust_origins(["HTTPS://App.Example.com"]) {
            Ok(csrf) if csrf.check(&cross_site).is_ok() => {}
            Ok(csrf) => wrong.push(format!("HTTPS://App.Example.com: {csrf:?} refused it")),
            Err(err) => wrong.push(format!("HTTPS://App.Example.com: {err}")),
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn an_http_origin_cannot_post_to_the_https_site_of_the_same_host() {
        // A page an active network attacker injected into http://api.example.com (a site
        // without HSTS preload) is another origin than https://api.example.com.
        let csrf = Csrf::new();
        let post = |origin: &'static str| parts(Method::POST, &with(&[("origin", origin)]));
        assert_eq!(
            csrf.check_request(&post("http://api.example.com"), true),
            Err(CsrfReason::Origin)
        );
        assert_eq!(
            csrf.check_request(&post("https://api.example.com"), true),
            Ok(())
        );
        // Over HTTP/2 the request's own scheme says it came over HTTPS.
        let mut h2 = http::Request::post("https://api.example.com/notes")
            .header("cookie", "sid=1")
            .header("origin", "http://api.example.com")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        h2.version = http::Version::HTTP_2;
        assert_eq!(csrf.check(&h2), Err(CsrfReason::Origin));
        // So it does for a caller that knows nothing more (`Hardening`, served over TLS by an
        // acceptor that adds no `Tls` marker).
        assert_eq!(
            csrf.check_request(&h2, false),
            Err(CsrfReason::Origin),
            "an https request target, told nothing more: its own scheme says HTTPS"
        );
        // Not known to be HTTPS (plain HTTP, or TLS ended by a proxy this service was not
        // told about): the scheme is not compared, so a same-host HTTPS page still works.
        assert_eq!(
            csrf.check_request(&post("https://api.example.com"), false),
            Ok(())
        );
        assert_eq!(
            csrf.check_request(&post("http://api.example.com"), false),
            Ok(())
        );
    }

    /// What a browser could send from another origin, and the lookalikes of this one.
    #[test]
    fn lookalike_origins_methods_and_headers() {
        let csrf = Csrf::new();
        let check = |method: &str, extra: &[(&'static str, &'static str)]| {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            csrf.check_request(&parts(method, &with(extra)), false)
        };
        let cross = ("origin", "https://evil.example");
        // Origin is Host exactly: not another port, userinfo, a path or a suffix.
        for origin in [
            "https://api.example.com:8443",
            "https://api.example.com:443",
            "https://user@api.example.com",
            "https://api.example.com/",
            "https://api.example.com.evil.example",
            "",
        ] {
            let refused = check("POST", &[("origin", origin)]);
            assert_eq!(refused, Err(CsrfReason::Origin), "{origin}");
        }
        assert_eq!(
            check("POST", &[("origin", "https://API.Example.COM")]),
            Ok(())
        );
        // Sec-Fetch-Site is matched exactly, and decides over a same-host Origin.
        for site in ["Same-Origin", "", "same-site", "cross-site"] {
            let same_host = ("origin", "https://api.example.com");
            let refused = check("POST", &[("sec-fetch-site", site), same_host]);
            assert_eq!(refused, Err(CsrfReason::SecFetchSite), "{site}");
        }
        // Referer is not read: with neither Origin nor Sec-Fetch-Site, not a browser.
        let referer = ("referer", "https://api.example.com@evil.example/");
        assert_eq!(check("POST", &[referer]), Ok(()));
        // Only GET, HEAD, OPTIONS and TRACE are safe; methods are case-sensitive.
        for (method, safe) in [
            ("post", false),
            ("PROPFIND", false),
            ("CONNECT", false),
            ("TRACE", true),
            ("OPTIONS", true),
        ] {
            assert_eq!(check(method, &[cross]).is_ok(), safe, "{method}");
        }
        // Only the Bearer scheme with a token makes a bearer request.
        for (authorization, bearer) in [
            ("BEARER t", true),
            ("Basic dTpw", false),
            ("Bearer", false),
            ("Bearer ", false),
            ("Bearert", false),
            ("Bearer\tt", false),
        ] {
            let request = [cross, ("authorization", authorization)];
            assert_eq!(check("POST", &request).is_ok(), bearer, "{authorization:?}");
        }
    }

    /// A WebSocket handshake is a GET, but the socket then acts for the user: one carrying
    /// cookies from another origin is refused (cross-site WebSocket hijacking). Other GETs,
    /// HEAD and OPTIONS pass whatever they carry.
    #[test]
    fn cross_origin_websocket_handshakes_are_checked() {
        let csrf = Csrf::new();
        let check = |method: Method, extra: &[(&'static str, &'static str)]| {
            csrf.check_request(&parts(method, &with(extra)), false)
        };
        let upgrade = ("upgrade", "websocket");
        let cross = ("origin", "https://evil.example");
        assert_eq!(
            check(
                Method::GET,
                &[upgrade, ("sec-fetch-site", "same-site"), cross]
            ),
            Err(CsrfReason::SecFetchSite)
        );
        assert_eq!(
            check(Method::GET, &[upgrade, cross]),
            Err(CsrfReason::Origin)
        );
        let same = ("origin", "https://api.example.com");
        assert_eq!(check(Method::GET, &[upgrade, same]), Ok(()));
        assert_eq!(check(Method::GET, &[upgrade]), Ok(()), "not a browser");
        for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert_eq!(check(method.clone(), &[cross]), Ok(()), "{method}");
        }
        // Without credentials there is nothing to hijack.
        let cookieless = parts(Method::GET, &[upgrade, cross, ("host", "api.example.com")]);
        assert_eq!(csrf.check(&cookieless), Ok(()));
    }

    /// The `Upgrade` field is found wherever it is among a request's fields, with few fields
    /// (names compared in turn) or many (looked up), and a repeated field counts as many.
    #[test]
    fn websocket_handshakes_are_found_among_any_number_of_fields() {
        let csrf = Csrf::new();
        for others in [0, 1, 3, 5, 6, 7, 12, 40] {
            for upgrade_first in [true, false] {
                let mut request = parts(Method::GET, &with(&[("origin", "https://evil.example")]));
                let upgrade = (UPGRADE, HeaderValue::from_static("websocket"));
                if upgrade_first {
                    request.headers.insert(upgrade.0.clone(), upgrade.1.clone());
                }
                for i in 0..others {
                    // Both new names and repeated values, which `len` counts too.
                    let name = http::HeaderName::try_from(format!("x-other-{}", i % 4)).unwrap();
                    request.headers.append(name, HeaderValue::from_static("1"));
                }
                let without = csrf.check_request(&request, false);
                if !upgrade_first {
                    assert_eq!(without, Ok(()), "a plain GET, {others} other values");
                    request.headers.insert(upgrade.0, upgrade.1);
                }
                assert_eq!(
                    csrf.check_request(&request, false),
                    Err(CsrfReason::Origin),
                    "{others} other values, upgrade first: {upgrade_first}"
                );
            }
        }
    }

    /// Browsers add cached HTTP authentication to cross-site requests as they add cookies:
    /// such a request is checked without a cookie too. Schemes only scripts set are not.
    #[test]
    fn browser_sent_http_authentication_counts_as_credentials() {
        let csrf = Csrf::new();
        for (authorization, checked) in [
            ("Basic dTpw", true),
            ("BASIC dTpw", true),
            ("Digest username=\"u\"", true),
            ("Negotiate YII=", true),
            ("NTLM TlRM", true),
            ("Bearer t", false),
            ("Token t", false),
            ("Basicx dTpw", false),
        ] {
            let request = parts(
                Method::POST,
                &[
                    ("host", "api.example.com"),
                    ("origin", "https://evil.example"),
                    ("authorization", authorization),
                ],
            );
            assert_eq!(csrf.check(&request).is_err(), checked, "{authorization}");
        }
    }

    /// Login CSRF: another site's form, submitted without credentials, is refused when it is
    /// a navigation (the only request from another site whose answer's cookie the browser
    /// keeps); other sites' scripts' calls and this origin's own forms pass.
    #[test]
    fn cross_site_forms_without_credentials_are_refused() {
        let csrf = Csrf::new()
            .trust_origins(["https://idp.example.com"])
            .unwrap();
        let check = |method: Method, extra: &[(&'static str, &'static str)]| {
            let mut headers = vec![("host", "api.example.com")];
            headers.extend_from_slice(extra);
            csrf.check(&parts(method, &headers))
        };
        let navigate = ("sec-fetch-mode", "navigate");
        let evil = ("origin", "https://evil.example");
        for site in ["cross-site", "same-site", "Same-Origin", ""] {
            assert_eq!(
                check(Method::POST, &[("sec-fetch-site", site), navigate, evil]),
                Err(CsrfReason::CrossSiteNavigation),
                "{site:?}"
            );
        }
        // Opaque origins (a sandboxed frame, after a cross-origin redirect) are refused too.
        let null = ("origin", "null");
        let cross = ("sec-fetch-site", "cross-site");
        assert_eq!(
            check(Method::PUT, &[cross, navigate, null]),
            Err(CsrfReason::CrossSiteNavigation)
        );
        for (extra, why) in [
            (
                &[("sec-fetch-site", "same-origin"), navigate][..],
                "this site's own form",
            ),
            (&[("sec-fetch-site", "none"), navigate], "typed by the user"),
            (
                &[cross, ("sec-fetch-mode", "cors"), evil],
                "a script's CORS call",
            ),
            (
                &[cross, ("sec-fetch-mode", "no-cors"), evil],
                "no Lax cookie kept from its answer",
            ),
            (
                &[cross, navigate, ("origin", "https://idp.example.com")],
                "trusted",
            ),
            (
                &[navigate, evil],
                "no Sec-Fetch-Site: not a browser that sends it",
            ),
            (
                &[cross, navigate, evil, ("authorization", "Bearer t")],
                "bearer",
            ),
        ] {
            assert_eq!(check(Method::POST, extra), Ok(()), "{why}");
        }
        // Safe methods stay safe: a cross-site link is a navigation too.
        assert_eq!(check(Method::GET, &[cross, navigate, evil]), Ok(()));
    }

    /// Login CSRF from a sibling subdomain by script: a request that `Sec-Fetch-Site` calls
    /// `same-site` is one whose answer's `SameSite=Lax` or `Strict` cookie the browser keeps,
    /// whatever its mode (Chromium kept `__Host-session` from a form-encoded `fetch` that
    /// `https://blog.example.test` sent to `https://api.example.test/login`, and sent it
    /// with the next request). So without credentials it is refused from an untrusted
    /// origin, in every mode; a trusted sibling (the site's SPA), and another site's
    /// script, whose answer's cookie the browser does not keep, still pass.
    #[test]
    fn same_site_calls_without_credentials_are_refused_unless_trusted() {
        let csrf = Csrf::new()
            .trust_origins(["https://app.example.com"])
            .unwrap();
        let check = |extra: &[(&'static str, &'static str)]| {
            let mut headers = vec![("host", "api.example.com")];
            headers.extend_from_slice(extra);
            csrf.check(&parts(Method::POST, &headers))
        };
        let same_site = ("sec-fetch-site", "same-site");
        let sibling = ("origin", "https://blog.example.com");
        for mode in ["cors", "no-cors", "same-origin"] {
            assert_eq!(
                check(&[same_site, ("sec-fetch-mode", mode), sibling]),
                Err(CsrfReason::SecFetchSite),
                "{mode}"
            );
        }
        assert_eq!(
            check(&[same_site, sibling]),
            Err(CsrfReason::SecFetchSite),
            "no Sec-Fetch-Mode"
        );
        // What a script sends without a preflight: its answer's cookie is kept.
        for content_type in [
            "application/x-www-form-urlencoded;charset=UTF-8",
            "Multipart/Form-Data; boundary=x",
            " text/plain ",
        ] {
            let cors = ("sec-fetch-mode", "cors");
            assert_eq!(
                check(&[same_site, cors, sibling, ("content-type", content_type)]),
                Err(CsrfReason::SecFetchSite),
                "{content_type}"
            );
        }
        // Sent only after a preflight, whose answer must let the origin send credentials
        // for the browser to keep the cookie: a CORS origin that `Hardening` then trusts.
        let json = ("content-type", "application/json");
        assert_eq!(
            check(&[same_site, ("sec-fetch-mode", "cors"), sibling, json]),
            Ok(()),
            "JSON: preflighted"
        );
        assert_eq!(
            csrf.check(&parts(
                Method::PUT,
                &[
                    ("host", "api.example.com"),
                    same_site,
                    ("sec-fetch-mode", "cors"),
                    sibling
                ]
            )),
            Ok(()),
            "PUT: preflighted"
        );
        let spa = ("origin", "https://app.example.com");
        assert_eq!(
            check(&[same_site, ("sec-fetch-mode", "cors"), spa]),
            Ok(()),
            "the trusted SPA"
        );
        let cross_site = ("sec-fetch-site", "cross-site");
        let evil = ("origin", "https://evil.example");
        for mode in ["cors", "no-cors"] {
            assert_eq!(
                check(&[cross_site, ("sec-fetch-mode", mode), evil]),
                Ok(()),
                "another site's script: its answer's SameSite cookie is not kept ({mode})"
            );
        }
        assert_eq!(
            check(&[
                same_site,
                ("sec-fetch-mode", "cors"),
                sibling,
                ("authorization", "Bearer t")
            ]),
            Ok(()),
            "bearer"
        );
        assert_eq!(
            Csrf::new().shadow().check(&parts(
                Method::POST,
                &[("host", "api.example.com"), same_site, sibling]
            )),
            Ok(()),
            "shadow mode"
        );
    }

    /// An exempted path is not checked, with or without credentials; any other path is, and
    /// the path is compared exactly.
    #[test]
    fn exempted_paths_are_compared_exactly_and_logged() {
        let post = |csrf: &Csrf, uri: &str, cookie: bool| {
            let mut b = http::Request::post(uri)
                .header("host", "sp.example.com")
                .header("sec-fetch-site", "cross-site")
                .header("sec-fetch-mode", "navigate")
                .header("origin", "null");
            if cookie {
                b = b.header("cookie", "sid=1");
            }
            csrf.check(&b.body(()).unwrap().into_parts().0)
        };
        let log = hardening_errors::test_log::Captured::default();
        let csrf = log.during(|| Csrf::new().dangerous_exempt_path("/saml/acs").unwrap());
        let warned = log.find(tracing::Level::WARN, "hardening loosened");
        assert_eq!(warned.len(), 1, "{:?}", log.lines());
        assert_eq!(
            warned[0].field("path"),
            Some("/saml/acs"),
            "{:?}",
            warned[0]
        );
        assert_eq!(post(&csrf, "/saml/acs", false), Ok(()));
        assert_eq!(post(&csrf, "/saml/acs?RelayState=x", true), Ok(()));
        for other in ["/saml/acs/", "/saml/ACS", "/saml/%61cs", "/saml", "/login"] {
            assert!(post(&csrf, other, false).is_err(), "{other}");
            assert!(post(&csrf, other, true).is_err(), "{other} with a cookie");
        }
        assert!(
            post(&Csrf::new(), "/saml/acs", false).is_err(),
            "not exempt"
        );
        for (bad, why) in [
            ("saml/acs", "start with /"),
            ("", "start with /"),
            ("/saml/acs?x=1", "without the query"),
            ("/saml/acs#f", "without the query"),
            ("/saml acs", "space"),
            ("/saml/äcs", "non-ASCII"),
        ] {
            let err = Csrf::new().dangerous_exempt_path(bad).unwrap_err();
            assert!(err.to_string().contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn shadow_mode_logs_instead() {
        let shadow = Csrf::new().shadow();
        let log = hardening_errors::test_log::Captured::default();
        log.during(|| {
            let with_cookie = parts(Method::POST, &with(&[("sec-fetch-site", "cross-site")]));
            assert_eq!(shadow.check(&with_cookie), Ok(()));
            let login_form = parts(
                Method::POST,
                &[
                    ("host", "api.example.com"),
                    ("sec-fetch-site", "cross-site"),
                    ("sec-fetch-mode", "navigate"),
                ],
            );
            assert_eq!(shadow.check(&login_form), Ok(()));
            let same_origin = parts(Method::POST, &with(&[("sec-fetch-site", "same-origin")]));
            assert_eq!(shadow.check(&same_origin), Ok(()));
        });
        let reasons: Vec<_> = log
            .find(tracing::Level::WARN, "would be blocked (shadow mode)")
            .iter()
            .map(|l| l.field("reason").unwrap_or_default().to_owned())
            .collect();
        assert_eq!(
            reasons,
            ["SecFetchSite", "CrossSiteNavigation"],
            "{:?}",
            log.lines()
        );
    }
}
