//! CORS with a strict allowlist: no cross-origin access until origins are listed.

use std::time::Duration;

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, RETRY_AFTER, VARY,
};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::ConfigError;

/// Which cross-origin requests browsers may make.
///
/// The default allows none. List origins with [`Cors::allow_origins`]; methods default to
/// `GET, HEAD, POST` and request headers to `content-type`. Preflights are answered by
/// [`Hardening`](crate::Hardening) itself: 204 with the CORS headers when everything asked
/// for is allowed, else a 403 problem. Requests from unlisted origins get no CORS headers.
/// Scripts of allowed origins may read the response headers `Hardening` writes itself (see
/// [`Cors::expose_headers`]), and those listed there.
///
/// ```
/// use hardening_core::{Cors, ConfigError};
///
/// let cors = Cors::allow_origins(["https://app.example.com"])?
///     .allow_credentials()?
///     .allow_headers(["content-type", "authorization"])?;
/// # let _ = cors;
///
/// // Any origin with credentials is refused at build time.
/// assert_eq!(
///     Cors::allow_origins(["*"])?.allow_credentials().unwrap_err(),
///     ConfigError::WildcardWithCredentials,
/// );
/// # Ok::<(), ConfigError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Cors {
    origins: Vec<HeaderValue>,
    any_origin: bool,
    methods: Vec<Method>,
    headers: Vec<HeaderName>,
    expose: Vec<HeaderName>,
    credentials: bool,
    max_age: Duration,
    // Precomputed header values.
    methods_value: HeaderValue,
    headers_value: HeaderValue,
    /// `expose`, then those of [`hardening_exposes`] it does not list.
    expose_value: HeaderValue,
    max_age_value: HeaderValue,
}

/// The response headers [`Hardening`](crate::Hardening) itself writes that scripts of
/// allowed origins may read, besides those listed with [`Cors::expose_headers`].
fn hardening_exposes() -> Vec<HeaderName> {
    vec![
        crate::service::X_REQUEST_ID.clone(),
        RETRY_AFTER,
        #[cfg(feature = "ratelimit")]
        hardening_ratelimit::RATELIMIT.clone(),
        #[cfg(feature = "ratelimit")]
        hardening_ratelimit::RATELIMIT_POLICY.clone(),
    ]
}

impl Default for Cors {
    fn default() -> Self {
        let mut cors = Self {
            origins: Vec::new(),
            any_origin: false,
            methods: vec![Method::GET, Method::HEAD, Method::POST],
            headers: vec![http::header::CONTENT_TYPE],
            expose: Vec::new(),
            credentials: false,
            max_age: Duration::from_secs(600),
            methods_value: HeaderValue::from_static(""),
            headers_value: HeaderValue::from_static(""),
            expose_value: HeaderValue::from_static(""),
            max_age_value: HeaderValue::from_static("600"),
        };
        cors.precompute();
        cors
    }
}

/// What the CORS step decided for one request.
#[derive(Debug)]
pub(crate) enum CorsDecision {
    /// Not a cross-origin request this policy answers: no CORS headers.
    None,
    /// An allowed origin: add the CORS response headers for it.
    Allowed(HeaderValue),
    /// An allowed preflight: answer 204 with these headers.
    Preflight(HeaderMap),
    /// A preflight asking for something not allowed.
    Refused,
}

impl Cors {
    /// Allows these origins as browsers send them (`https://app.example.com`, with a port if
    /// not the default; see [`hardening_errors::origin::parse_origin`]), or `"*"` for any
    /// origin without credentials.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidOrigin`] for an entry that is not `scheme://host[:port]`.
    pub fn allow_origins<I>(origins: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut cors = Self::default();
        for origin in origins {
            let origin = origin.as_ref();
            if origin == "*" {
                cors.any_origin = true;
                continue;
            }
            let parsed = hardening_errors::origin::parse_origin(origin).map_err(|e| {
                ConfigError::InvalidOrigin {
                    value: e.value,
                    why: e.why,
                }
            })?;
            cors.origins.push(parsed);
        }
        Ok(cors)
    }

    /// Sets the methods cross-origin requests may use (default `GET, HEAD, POST`). An empty
    /// list is an error: it would refuse every preflight, yet browsers send simple `GET`,
    /// `HEAD` and `POST` requests without asking.
    ///
    /// # Errors
    ///
    /// [`ConfigError::NoCorsMethods`] for an empty list, and [`ConfigError::InvalidMethod`]
    /// for `*` (a preflight would match only a method named `*`) and for a method browsers
    /// upper-case written otherwise (`put`: they send `PUT`).
    pub fn allow_methods(
        mut self,
        methods: impl IntoIterator<Item = Method>,
    ) -> Result<Self, ConfigError> {
        let methods: Vec<Method> = methods.into_iter().collect();
        if methods.is_empty() {
            return Err(ConfigError::NoCorsMethods);
        }
        if methods.iter().any(|m| m.as_str() == "*") {
            return Err(star_method());
        }
        if let Some(m) = methods.iter().find(|m| sent_upper_cased(m.as_str())) {
            return Err(ConfigError::InvalidMethod {
                value: m.to_string(),
                why: format!(
                    "browsers send this method in upper case (Fetch normalizes DELETE, GET, \
                     HEAD, OPTIONS, POST and PUT), so a preflight would never match it: list \
                     {}",
                    m.as_str().to_ascii_uppercase()
                ),
            });
        }
        self.methods = methods;
        self.precompute();
        Ok(self)
    }

    /// Sets the request headers cross-origin requests may send (default `content-type`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidHeaderName`] for a name that is not a header name, and
    /// [`ConfigError::WildcardHeaders`] for `*`.
    pub fn allow_headers<I>(mut self, headers: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.headers = header_names(headers)?;
        self.precompute();
        Ok(self)
    }

    /// Sets the response headers scripts of allowed origins may read, besides those
    /// `Hardening` writes itself, which they may always read: `x-request-id` (to quote to
    /// support), `Retry-After` (on the 429 and 503 problems that ask a client to wait) and,
    /// with the `ratelimit` feature, `RateLimit` and `RateLimit-Policy` (the quota left and
    /// the policies behind it). Browsers otherwise show a script only the CORS-safelisted
    /// response headers (`Content-Type`, `Cache-Control`, …). None of these four holds a
    /// secret: the id names the request in the logs, the others say what the client has
    /// left or must wait for, and a caller outside a browser reads them all anyway. They
    /// are sent in `Access-Control-Expose-Headers` on responses to allowed origins, after
    /// the ones listed here (each name once), and not on preflight answers, which browsers
    /// do not read it from.
    ///
    /// ```
    /// use axum::{Router, body::Body, routing::get};
    /// use hardening_core::{Cors, Hardening};
    /// use tower::ServiceExt;
    ///
    /// let cors = Cors::allow_origins(["https://app.example.com"])?.expose_headers(["x-total"])?;
    /// let app = Router::new()
    ///     .route("/", get(|| async { "hi" }))
    ///     .layer(Hardening::strict().cors(cors));
    /// let req = http::Request::get("/").header("origin", "https://app.example.com");
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let res = app.oneshot(req.body(Body::empty()).unwrap()).await?;
    /// assert_eq!(
    ///     res.headers()["access-control-expose-headers"],
    ///     "x-total, x-request-id, retry-after, ratelimit, ratelimit-policy"
    /// );
    /// # Ok::<(), std::convert::Infallible>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`allow_headers`](Self::allow_headers).
    pub fn expose_headers<I>(mut self, headers: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.expose = header_names(headers)?;
        self.precompute();
        Ok(self)
    }

    /// Lets allowed origins send cookies and `Authorization`. Refused with `"*"`, and with no
    /// origin listed (an empty list), as `HardeningConfig` refuses
    /// `HARDENING_CORS_CREDENTIALS` without `HARDENING_CORS_ORIGINS`. In a
    /// [`Hardening`](crate::Hardening), the CSRF check then trusts these origins too.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WildcardWithCredentials`] with `"*"`, and
    /// [`ConfigError::CredentialsWithoutOrigins`] with no origin listed.
    pub fn allow_credentials(mut self) -> Result<Self, ConfigError> {
        if self.any_origin {
            return Err(ConfigError::WildcardWithCredentials);
        }
        if self.origins.is_empty() {
            return Err(ConfigError::CredentialsWithoutOrigins);
        }
        self.credentials = true;
        Ok(self)
    }

    /// How long browsers may cache a preflight answer (default 10 minutes).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self.precompute();
        self
    }

    fn precompute(&mut self) {
        let join = |items: &mut dyn Iterator<Item = &str>| {
            HeaderValue::from_str(&items.collect::<Vec<_>>().join(", "))
                .unwrap_or_else(|_| HeaderValue::from_static(""))
        };
        self.methods_value = join(&mut self.methods.iter().map(Method::as_str));
        self.headers_value = join(&mut self.headers.iter().map(HeaderName::as_str));
        let ours = hardening_exposes();
        let theirs = &self.expose;
        self.expose_value = join(
            &mut theirs
                .iter()
                .chain(ours.iter().filter(|name| !theirs.contains(name)))
                .map(HeaderName::as_str),
        );
        self.max_age_value = HeaderValue::from(self.max_age.as_secs());
    }

    fn origin_allowed(&self, origin: &HeaderValue) -> bool {
        self.any_origin
            || self
                .origins
                .iter()
                .any(|o| o.as_bytes().eq_ignore_ascii_case(origin.as_bytes()))
    }

    /// The value of `Access-Control-Allow-Origin` for an allowed origin.
    fn allow_origin_value(&self, origin: &HeaderValue) -> HeaderValue {
        if self.any_origin && !self.credentials {
            HeaderValue::from_static("*")
        } else {
            origin.clone()
        }
    }

    #[inline]
    pub(crate) fn decide(&self, parts: &Parts) -> CorsDecision {
        // Allowing no origin (the default), only a preflight needs an answer (a refusal):
        // other requests get no CORS headers whatever their `Origin`, so it is not looked up.
        if !self.any_origin && self.origins.is_empty() && !matches!(parts.method, Method::OPTIONS) {
            return CorsDecision::None;
        }
        self.decide_listed(parts)
    }

    /// [`decide`](Self::decide) when an origin is allowed or for a preflight: out of line.
    #[inline(never)]
    fn decide_listed(&self, parts: &Parts) -> CorsDecision {
        let mut origins = parts.headers.get_all(ORIGIN).iter();
        let Some(origin) = origins.next() else {
            // Any origin: `*` on every response, with or without `Origin`, so that a shared
            // cache never hands a cross-origin caller an answer stored without it.
            return if self.any_origin && !self.credentials {
                CorsDecision::Allowed(HeaderValue::from_static("*"))
            } else {
                CorsDecision::None
            };
        };
        // A browser sends one `Origin`: with more, none of them is a listed origin.
        let allowed = self.any_origin || (origins.next().is_none() && self.origin_allowed(origin));
        let preflight = parts.method == Method::OPTIONS
            && parts.headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD);
        if !preflight {
            return if allowed {
                CorsDecision::Allowed(origin.clone())
            } else {
                CorsDecision::None
            };
        }
        // A browser sends one method: with more, the preflight is refused, as with origins.
        let mut requested = parts.headers.get_all(ACCESS_CONTROL_REQUEST_METHOD).iter();
        let method_ok = requested
            .next()
            .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
            .is_some_and(|m| self.methods.contains(&m))
            && requested.next().is_none();
        let headers_ok = parts
            .headers
            .get_all(ACCESS_CONTROL_REQUEST_HEADERS)
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|h| !h.is_empty())
            .all(|h| {
                self.headers
                    .iter()
                    .any(|allowed| allowed.as_str().as_bytes().eq_ignore_ascii_case(h))
            });
        if !(allowed && method_ok && headers_ok) {
            return CorsDecision::Refused;
        }
        let mut headers = HeaderMap::with_capacity(6);
        self.write_origin(origin, &mut headers);
        headers.insert(ACCESS_CONTROL_ALLOW_METHODS, self.methods_value.clone());
        headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, self.headers_value.clone());
        headers.insert(ACCESS_CONTROL_MAX_AGE, self.max_age_value.clone());
        headers.append(
            VARY,
            HeaderValue::from_static(
                "origin, access-control-request-method, access-control-request-headers",
            ),
        );
        CorsDecision::Preflight(headers)
    }

    /// Adds the headers of an actual (not preflight) response for an allowed origin.
    pub(crate) fn write_allowed(&self, origin: &HeaderValue, headers: &mut HeaderMap) {
        self.write_origin(origin, headers);
        headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, self.expose_value.clone());
    }

    /// Adds the headers every answer to an allowed origin carries, preflight or not.
    fn write_origin(&self, origin: &HeaderValue, headers: &mut HeaderMap) {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, self.allow_origin_value(origin));
        if self.credentials {
            headers.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }

    /// The listed origins when they may send credentials, else none.
    #[cfg(feature = "auth")]
    pub(crate) fn credentialed_origins(&self) -> Vec<&str> {
        if !self.credentials {
            return Vec::new();
        }
        self.origins
            .iter()
            .filter_map(|o| o.to_str().ok())
            .collect()
    }

    /// Whether responses vary by `Origin` (any listed origin other than `*` alone).
    pub(crate) fn varies(&self) -> bool {
        !self.origins.is_empty() || self.credentials
    }
}

/// Whether a response's `Vary` already names `Origin` (or is `*`), so that adding it again
/// would only repeat it.
pub(crate) fn vary_names_origin(headers: &HeaderMap) -> bool {
    headers
        .get_all(VARY)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .any(|t| t == b"*" || t.eq_ignore_ascii_case(b"origin"))
}

/// The methods these names give, read in any case (`put` is `PUT`), as
/// `HardeningConfig` reads them for [`Cors::allow_methods`].
pub(crate) fn methods<I>(names: I) -> Result<Vec<Method>, ConfigError>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    names
        .into_iter()
        .map(|n| {
            let n = n.as_ref().trim();
            match n {
                "*" => Err(star_method()),
                n => Method::from_bytes(n.to_ascii_uppercase().as_bytes()).map_err(|_| {
                    ConfigError::InvalidMethod {
                        value: n.to_owned(),
                        why: "not a method name (one word, such as PUT)".to_owned(),
                    }
                }),
            }
        })
        .collect()
}

/// Whether `method` is one Fetch upper-cases before sending ("normalize a method") written
/// in another case: a preflight names it upper-cased, which a method compared as written
/// never matches.
fn sent_upper_cased(method: &str) -> bool {
    ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"]
        .iter()
        .any(|upper| method.eq_ignore_ascii_case(upper) && method != *upper)
}

/// `*` in a method list: the preflight check would allow only a method named `*`.
fn star_method() -> ConfigError {
    ConfigError::InvalidMethod {
        value: "*".to_owned(),
        why: "CORS method lists take method names, not \"*\": list the methods (such as GET, \
              POST, PUT)"
            .to_owned(),
    }
}

fn header_names<I>(names: I) -> Result<Vec<HeaderName>, ConfigError>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    names
        .into_iter()
        .map(|n| match n.as_ref().trim() {
            "*" => Err(ConfigError::WildcardHeaders),
            n => HeaderName::from_bytes(n.as_bytes())
                .map_err(|_| ConfigError::InvalidHeaderName(n.to_owned())),
        })
        .collect()
}

#[cfg(test)]
mod model_fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: Method, headers: &[(&str, &str)]) -> Parts {
        let mut req = http::Request::builder().method(method).uri("/");
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn default_allows_nothing() {
        let cors = Cors::default();
        let p = parts(Method::GET, &[("origin", "https://evil.example")]);
        assert!(matches!(cors.decide(&p), CorsDecision::None));
        let p = parts(
            Method::OPTIONS,
            &[
                ("origin", "https://evil.example"),
                ("access-control-request-method", "GET"),
            ],
        );
        assert!(matches!(cors.decide(&p), CorsDecision::Refused));
    }

    #[test]
    fn allowed_preflight_and_refusals() {
        let cors = Cors::allow_origins(["https://app.example.com"])
            .unwrap()
            .allow_headers(["content-type", "x-trace"])
            .unwrap();
        let ok = parts(
            Method::OPTIONS,
            &[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "Content-Type, X-Trace"),
            ],
        );
        let CorsDecision::Preflight(h) = cors.decide(&ok) else {
            panic!("not a preflight answer")
        };
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_METHODS], "GET, HEAD, POST");
        for bad in [
            [
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "DELETE"),
            ],
            [
                ("origin", "https://app.example.com.evil"),
                ("access-control-request-method", "GET"),
            ],
            [("origin", "null"), ("access-control-request-method", "GET")],
        ] {
            assert!(matches!(
                cors.decide(&parts(Method::OPTIONS, &bad)),
                CorsDecision::Refused
            ));
        }
        // Two methods: a browser sends one.
        for bad in [
            [
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "GET"),
                ("access-control-request-method", "GET"),
            ],
            [
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "GET"),
                ("access-control-request-method", "DELETE"),
            ],
        ] {
            assert!(matches!(
                cors.decide(&parts(Method::OPTIONS, &bad)),
                CorsDecision::Refused
            ));
        }
        // Request headers: a comma-separated list, any case and spacing; each must be listed.
        let preflight = |method: &[u8], headers: &[u8]| {
            let mut p = parts(Method::OPTIONS, &[("origin", "https://app.example.com")]);
            p.headers.insert(
                ACCESS_CONTROL_REQUEST_METHOD,
                HeaderValue::from_bytes(method).unwrap(),
            );
            p.headers.insert(
                ACCESS_CONTROL_REQUEST_HEADERS,
                HeaderValue::from_bytes(headers).unwrap(),
            );
            cors.decide(&p)
        };
        for ok in [
            &b"content-type"[..],
            b" X-TRACE ,content-type,,",
            b"x-trace,\tx-trace",
        ] {
            let decision = preflight(b"POST", ok);
            assert!(
                matches!(decision, CorsDecision::Preflight(_)),
                "{}: {decision:?}",
                ok.escape_ascii()
            );
        }
        for (method, headers) in [
            (&b"GET"[..], &b"x-other"[..]),
            (b"GET", b"content-type;x-trace"),
            (b"GET", b"content-type x-trace"),
            (b"GET", b"cookie"),
            (b"GET", b"x-trace\xff"),
            // Browsers upper-case only the methods Fetch normalizes; `post` is not POST.
            (b"post", b""),
            (b"PATCH", b""),
            (b"G\xffT", b""),
        ] {
            let decision = preflight(method, headers);
            assert!(
                matches!(decision, CorsDecision::Refused),
                "{} {}: {decision:?}",
                method.escape_ascii(),
                headers.escape_ascii()
            );
        }
    }

    /// Through the layer: the CORS headers only for a listed origin (the exposed headers on
    /// actual responses only), `Vary: origin` on every response (each could differ by
    /// origin).
    #[tokio::test]
    async fn through_the_layer_only_a_listed_origin_gets_cors_headers() {
        use tower::ServiceExt;
        let cors = Cors::allow_origins(["https://app.example.com"])
            .unwrap()
            .allow_credentials()
            .unwrap()
            .expose_headers(["x-total"])
            .unwrap();
        let app = axum::Router::new()
            .route("/", axum::routing::get(|| async { "hi" }))
            .layer(crate::Hardening::strict().cors(cors));
        let call = |method: Method, headers: &[(&str, &str)]| {
            let mut req = http::Request::builder().method(method).uri("/");
            for (n, v) in headers {
                req = req.header(*n, *v);
            }
            app.clone()
                .oneshot(req.body(axum::body::Body::empty()).unwrap())
        };
        let listed = ("origin", "https://app.example.com");
        let evil = ("origin", "https://evil.example");
        let method = ("access-control-request-method", "GET");
        for (headers, status, allowed) in [
            (&[listed][..], 200, true),
            (&[listed, method][..], 204, true),
            (&[evil][..], 200, false),
            (&[evil, method][..], 403, false),
            (&[listed, evil][..], 200, false),
            (&[][..], 200, false),
        ] {
            let m = if headers.contains(&method) {
                Method::OPTIONS
            } else {
                Method::GET
            };
            let res = call(m, headers).await.unwrap();
            let h = res.headers();
            assert_eq!(res.status(), status, "{headers:?}");
            let cors_headers = [
                ACCESS_CONTROL_ALLOW_ORIGIN,
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
            ];
            assert!(
                cors_headers.iter().all(|n| h.contains_key(n) == allowed),
                "{headers:?}: {h:?}"
            );
            // On actual responses: a preflight's answer is not where browsers read it.
            assert_eq!(
                h.contains_key(ACCESS_CONTROL_EXPOSE_HEADERS),
                allowed && status == 200,
                "{headers:?}: {h:?}"
            );
            assert!(
                h.get_all(VARY)
                    .iter()
                    .any(|v| v.to_str().unwrap().contains("origin")),
                "{headers:?}: {h:?}"
            );
        }
    }

    #[test]
    fn only_a_listed_origin_is_allowed() {
        let cors = Cors::allow_origins(["https://app.example.com"]).unwrap();
        let get = |origin: &[u8]| {
            let mut p = parts(Method::GET, &[]);
            p.headers
                .insert(ORIGIN, HeaderValue::from_bytes(origin).unwrap());
            cors.decide(&p)
        };
        // Browsers write scheme and host in lower case; matching ignores case.
        assert!(matches!(
            get(b"HTTPS://APP.example.com"),
            CorsDecision::Allowed(_)
        ));
        for bad in [
            &b"null"[..],
            b"http://app.example.com",
            b"https://app.example.com/",
            b"https://app.example.com:443",
            b"https://u@app.example.com",
            b"https://app.example.com.evil.net",
            b"https://evilapp.example.com",
            b"https://example.com",
            b"https://app.example.com\xff",
            b"https://app.example.com, https://app.example.com",
        ] {
            let decision = get(bad);
            assert!(
                matches!(decision, CorsDecision::None),
                "{}: {decision:?}",
                bad.escape_ascii()
            );
        }
    }

    #[test]
    fn several_origin_headers_are_no_listed_origin() {
        // A browser sends one `Origin`: with more, none of them is trusted (like two `Host`s).
        let cors = Cors::allow_origins(["https://app.example.com"]).unwrap();
        let listed = ("origin", "https://app.example.com");
        let other = ("origin", "https://evil.example");
        let method = ("access-control-request-method", "GET");
        for origins in [[listed, other], [other, listed], [listed, listed]] {
            let get = cors.decide(&parts(Method::GET, &origins));
            assert!(matches!(get, CorsDecision::None), "{origins:?}: {get:?}");
            let preflight = cors.decide(&parts(Method::OPTIONS, &[origins[0], origins[1], method]));
            assert!(
                matches!(preflight, CorsDecision::Refused),
                "{origins:?}: {preflight:?}"
            );
        }
        // Any origin: still `*`.
        let any = Cors::allow_origins(["*"]).unwrap();
        assert!(matches!(
            any.decide(&parts(Method::GET, &[listed, other])),
            CorsDecision::Allowed(_)
        ));
    }

    #[test]
    fn any_origin_sends_its_star_with_or_without_an_origin() {
        let cors = Cors::allow_origins(["*"]).unwrap();
        for headers in [&[][..], &[("origin", "https://other.example")][..]] {
            match cors.decide(&parts(Method::GET, headers)) {
                CorsDecision::Allowed(origin) => {
                    let mut out = HeaderMap::new();
                    cors.write_allowed(&origin, &mut out);
                    assert_eq!(out[ACCESS_CONTROL_ALLOW_ORIGIN], "*", "{headers:?}");
                }
                other => panic!("{headers:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn config_errors() {
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "ftp://x",
            "https://*.x.com",
            "https://app.example.com:443",
            "http://app.example.com:80",
            // Never sent by a browser, so never matched: refused rather than kept.
            "https://app.example.com:",
            "https://app.example.com:https",
            "https://app.example.com:99999",
            "https://app.example.com:0",
            "https://app.example.com:+80",
            "https://app.example.com\t",
            "https://:8443",
            "https://app..example.com",
            "https://app.example.com:80:80",
            "https://[::1",
            "https://[not-v6]",
            "https://[::1]x",
            "https://[::1]:",
            // Written otherwise than a browser writes it in `Origin`.
            "https://app.example.com:0443",
            "http://app.example.com:08080",
            "https://[0:0:0:0:0:0:0:1]",
            "https://[::ffff:1.2.3.4]",
            "http://127.1",
            "http://0x7f.0.0.1",
            "http://01.2.3.4",
            "http://1.2.3.256",
            "https://app.example.123",
            "https://bücher.example",
            "https://[1::2:0:0:0:3]",
        ] {
            assert!(Cors::allow_origins([bad]).is_err(), "{bad:?}");
        }
        for ok in [
            "https://app.example.com:8443",
            "http://app.example.com:443",
            "http://localhost:3000",
            "http://[::1]:8080",
            "https://[2001:db8::1]",
            "https://[2001:db8::1:0:0:1]",
            "https://[::ffff:102:304]",
            "https://[1:0:0:2::3]",
            "https://[1::]",
            "http://[::]:8080",
            "http://127.0.0.1:8080",
            "https://xn--bcher-kva.example",
            "HTTPS://App.Example.com",
        ] {
            assert!(Cors::allow_origins([ok]).is_ok(), "{ok}");
        }
        // The message names the fix.
        for (bad, fix) in [
            ("https://*.example.com", "list each origin"),
            ("https://bücher.example", "xn--"),
            ("https://[0:0:0:0:0:0:0:1]:8080", "[::1]"),
            ("https://[::FFFF:1.2.3.4]", "[::ffff:102:304]"),
            ("http://127.1", "127.0.0.1"),
            ("https://app.example.com:0443", "leading zero"),
        ] {
            let err = Cors::allow_origins([bad]).unwrap_err().to_string();
            assert!(err.contains(fix), "{bad}: {err}");
        }
        assert!(Cors::default().allow_headers(["bad header"]).is_err());
        assert_eq!(
            Cors::default().allow_headers(["*"]).unwrap_err(),
            ConfigError::WildcardHeaders
        );
        assert_eq!(
            Cors::default().expose_headers([" * "]).unwrap_err(),
            ConfigError::WildcardHeaders
        );
        assert_eq!(
            Cors::allow_origins(["*"])
                .unwrap()
                .allow_credentials()
                .unwrap_err(),
            ConfigError::WildcardWithCredentials
        );
    }

    /// `allow_origins(list)?.allow_credentials()` with an empty list (an unset variable,
    /// say) was taken and let no origin send credentials, with nothing said, where
    /// `HardeningConfig` refuses the same settings. Refused, saying to list the origins.
    #[test]
    fn credentials_without_an_origin_are_an_error() {
        for cors in [
            Cors::allow_origins(Vec::<String>::new()).unwrap(),
            Cors::default(),
        ] {
            let err = cors
                .allow_credentials()
                .map(|_| ())
                .expect_err("credentials with no origin accepted");
            assert_eq!(err, ConfigError::CredentialsWithoutOrigins);
            assert!(err.to_string().contains("allow_origins(["), "{err}");
        }
        let listed = Cors::allow_origins(["https://app.example.com"]).unwrap();
        assert!(listed.allow_credentials().is_ok());
    }

    /// No method at all refused every preflight, silently, while simple requests went on
    /// being allowed: an error now, saying what to do instead.
    #[test]
    fn an_empty_method_list_is_an_error() {
        let cors = Cors::allow_origins(["https://app.example.com"]).unwrap();
        let err = cors.clone().allow_methods([]).unwrap_err();
        assert_eq!(err, ConfigError::NoCorsMethods);
        assert!(err.to_string().contains("list the methods"), "{err}");
        let cors = cors.allow_methods([Method::PUT]).unwrap();
        let preflight = parts(
            Method::OPTIONS,
            &[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "PUT"),
            ],
        );
        let CorsDecision::Preflight(h) = cors.decide(&preflight) else {
            panic!("not a preflight answer")
        };
        assert_eq!(h[ACCESS_CONTROL_ALLOW_METHODS], "PUT");
    }

    /// `allow_methods([Method::from_bytes(b"put")])` was taken, and a browser's preflight
    /// asks for `PUT` (Fetch upper-cases the six standard methods): the method was refused
    /// with nothing said. Refused at build, naming the method to list.
    #[test]
    fn a_method_browsers_upper_case_is_an_error_in_another_case() {
        let cors = || Cors::allow_origins(["https://app.example.com"]).unwrap();
        let put = Method::from_bytes(b"put").unwrap();
        let err = cors()
            .allow_methods([Method::GET, put])
            .map(|_| ())
            .expect_err("\"put\" accepted, which no preflight names");
        assert!(err.to_string().contains("list PUT"), "{err}");
        // Methods Fetch leaves as written are taken as written.
        let patch = Method::from_bytes(b"patch").unwrap();
        assert!(cors().allow_methods([Method::PATCH, patch]).is_ok());
    }

    /// `allow_methods([Method::from_bytes(b"*")?])` was taken, and the preflight check then
    /// allowed only a method literally named `*`: nothing extra, with nothing said.
    /// Refused as `HARDENING_CORS_METHODS` refuses it, saying to list the methods.
    #[test]
    fn a_star_method_is_an_error() {
        let star = Method::from_bytes(b"*").unwrap();
        let cors = Cors::allow_origins(["https://app.example.com"]).unwrap();
        let err = cors
            .allow_methods([Method::PUT, star])
            .map(|_| ())
            .expect_err("a \"*\" method accepted");
        assert_eq!(err, methods(["*"]).unwrap_err());
        assert!(err.to_string().contains("list the methods"), "{err}");
    }
}
