//! Randomized, deterministic comparison of the CORS step and the host allowlist, through
//! `Hardening::strict()`, with a small reference model of the documented rules written
//! apart from the code under test:
//!
//! - no CORS headers by default; a listed origin (one `Origin`, equal ignoring case to a
//!   listed one: no other port, path, userinfo) gets its own value echoed, `true` for
//!   credentials and, on actual responses, the exposed headers (those listed, then those
//!   `Hardening` writes itself that are not); `*` gets `*` with or without an `Origin`;
//! - a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered
//!   204 with the methods, headers, max age and `Vary` when the origin is allowed, the
//!   one method is listed (exactly as written; two methods are refused) and every
//!   requested header is listed (ignoring case, spaces and empty items), else refused
//!   with a 403 problem;
//! - `Vary: origin`, once, on every response when origins are listed or credentials allowed;
//! - with an allowlist, one `Host` (and the target's authority, if any, naming the same host)
//!   whose host, without port and one trailing dot, matches a pattern ignoring case, else a
//!   400 problem; refusals carry the request id and nothing of the request.
//!
//! The generator is fastrand's, from a fixed seed, so a failure names a case that reproduces.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use http::{HeaderValue, Method, Request, StatusCode};
use tower::ServiceExt as _;

use crate::test_rng::Rng;
use crate::{ConfigError, Cors, Hardening};

const SEED: u64 = 0x000C_0125_0A11_0E57;
const POLICIES: usize = 250;
const REQUESTS_PER_POLICY: usize = 20;

/// Origins a policy may list, as browsers send them (the model compares these, lower case).
const LISTABLE: &[&str] = &[
    "https://app.example.com",
    "http://localhost:3000",
    "https://[2001:db8::1]",
    "https://xn--bcher-kva.example",
    "http://127.0.0.1:8080",
];

/// Origins no policy lists.
const UNLISTED: &[&str] = &[
    "https://evil.example",
    "http://app.example.com",
    "https://app.example.com.evil.net",
    "https://evilapp.example.com",
    "https://[2001:db8::2]",
    "http://localhost:3001",
];

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "PURGE"];
const HEADERS: &[&str] = &["content-type", "x-trace", "authorization", "x-custom"];
const EXPOSE: &[&str] = &["x-total", "x-request-id", "etag"];
const HOST_PATTERNS: &[&str] = &[
    "api.example.com",
    ".example.org",
    "[::1]",
    "api.example.net.",
];
const HOST_NAMES: &[&str] = &[
    "api.example.com",
    "example.org",
    "a.b.example.org",
    "[::1]",
    "api.example.net",
    "evil.com",
    "evilexample.org",
    "example.com",
    "[::2]",
    "127.0.0.1",
];
/// Values no allowlist accepts, for the host (model: they do not parse).
const BAD_HOSTS: &[&str] = &[
    "",
    "api.example.com:@evil.com",
    "api.example.com:",
    "api.example.com:65536",
    "api.example.com:+80",
    "api.example.com..",
    "[::1",
    "[::1]x",
    "evil.com/.example.org",
    "a_b.example.org",
];

impl Rng {
    fn subset<'a>(&mut self, items: &[&'a str]) -> Vec<&'a str> {
        items.iter().copied().filter(|_| self.chance(2)).collect()
    }

    /// Each ASCII letter upper case with even odds.
    fn mixed_case(&mut self, s: &str) -> String {
        s.chars()
            .map(|c| {
                if self.chance(2) {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect()
    }
}

/// The policy as the model sees it.
#[derive(Debug)]
struct Policy {
    any: bool,
    listed: Vec<&'static str>,
    credentials: bool,
    methods: Vec<&'static str>,
    headers: Vec<&'static str>,
    expose: Vec<&'static str>,
    max_age: u64,
    hosts: Option<Vec<&'static str>>,
}

impl Policy {
    fn generate(rng: &mut Rng) -> Self {
        let (any, listed) = match rng.below(5) {
            0 => (false, Vec::new()),
            1 => (true, Vec::new()),
            2 => (true, vec![rng.pick(LISTABLE)]),
            _ => {
                let mut listed = rng.subset(LISTABLE);
                if listed.is_empty() {
                    listed.push(LISTABLE[0]);
                }
                (false, listed)
            }
        };
        let credentials = !any && !listed.is_empty() && rng.chance(2);
        let methods = if rng.chance(2) {
            vec!["GET", "HEAD", "POST"]
        } else {
            let mut m = rng.subset(METHODS);
            if m.is_empty() {
                m.push("PUT");
            }
            m
        };
        let headers = if rng.chance(2) {
            vec!["content-type"]
        } else {
            rng.subset(HEADERS)
        };
        let expose = if rng.chance(2) {
            Vec::new()
        } else {
            rng.subset(EXPOSE)
        };
        let max_age = if rng.chance(2) {
            600
        } else {
            rng.below(100_000) as u64
        };
        let hosts = rng.chance(2).then(|| {
            let mut h = rng.subset(HOST_PATTERNS);
            if h.is_empty() {
                h.push(HOST_PATTERNS[1]);
            }
            h
        });
        Self {
            any,
            listed,
            credentials,
            methods,
            headers,
            expose,
            max_age,
            hosts,
        }
    }

    /// The layer for this policy, configured as a user would write it (mixed case and all).
    fn build(&self, rng: &mut Rng) -> Hardening {
        let mut origins: Vec<String> = self.listed.iter().map(|o| rng.mixed_case(o)).collect();
        if self.any {
            origins.insert(rng.below(origins.len() + 1), "*".to_owned());
        }
        let cors = if origins.is_empty() {
            Cors::default()
        } else {
            Cors::allow_origins(&origins).unwrap()
        };
        if self.any {
            assert_eq!(
                cors.clone().allow_credentials().unwrap_err(),
                ConfigError::WildcardWithCredentials
            );
        }
        let mut cors = cors
            .allow_methods(self.methods.iter().map(|m| m.parse::<Method>().unwrap()))
            .unwrap()
            .allow_headers(self.headers.iter().map(|h| rng.mixed_case(h)))
            .unwrap()
            .max_age(std::time::Duration::from_secs(self.max_age));
        if !self.expose.is_empty() {
            cors = cors.expose_headers(&self.expose).unwrap();
        }
        if self.credentials {
            cors = cors.allow_credentials().unwrap();
        }
        let hardening = Hardening::strict().cors(cors);
        match &self.hosts {
            Some(hosts) => hardening.allowed_hosts(hosts).unwrap(),
            None => hardening,
        }
    }
}

/// One generated request.
#[derive(Debug)]
struct Case {
    method: Method,
    target: String,
    headers: Vec<(&'static str, String)>,
}

impl Case {
    fn values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn generate(rng: &mut Rng, policy: &Policy) -> Self {
        let mut headers = Vec::new();
        // Host: usually one plausible value, sometimes none, two or a malformed one.
        let hosts = match rng.below(20) {
            0 => 0,
            1 => 2,
            _ => 1,
        };
        for _ in 0..hosts {
            headers.push(("host", host_value(rng, policy)));
        }
        let target = if rng.chance(6) {
            let authority = if rng.chance(2) {
                headers
                    .first()
                    .map_or_else(|| host_value(rng, policy), |(_, h)| h.clone())
            } else {
                host_value(rng, policy)
            };
            format!("http://{authority}/")
        } else {
            "/".to_owned()
        };
        let origins = match rng.below(12) {
            0 => 0,
            1 => 2,
            _ => 1,
        };
        for _ in 0..origins {
            headers.push(("origin", origin_value(rng, policy)));
        }
        let preflight = rng.chance(2);
        let method = match rng.below(6) {
            _ if preflight => Method::OPTIONS,
            0 => Method::OPTIONS,
            1 => Method::HEAD,
            _ => Method::GET,
        };
        if preflight {
            let acrm = match rng.below(10) {
                0 => {
                    let method = rng_method(rng, policy);
                    rng.mixed_case(method)
                }
                1 => String::new(),
                2 => "CONNECT".to_owned(),
                _ => rng_method(rng, policy).to_owned(),
            };
            headers.push(("access-control-request-method", acrm));
            if rng.chance(20) {
                let second = rng_method(rng, policy).to_owned();
                headers.push(("access-control-request-method", second));
            }
            for _ in 0..rng.below(3) {
                let mut list = String::new();
                for i in 0..rng.below(4) {
                    if i > 0 || rng.chance(5) {
                        list.push(',');
                    }
                    list.push_str(rng.pick(&["", " ", "  ", "\t"]));
                    let name = match rng.below(12) {
                        0 => "x-other",
                        1 => "",
                        2..=4 => rng.pick(HEADERS),
                        _ if policy.headers.is_empty() => "",
                        _ => rng.pick(&policy.headers),
                    };
                    list.push_str(&rng.mixed_case(name));
                    list.push_str(rng.pick(&["", " ", "\t"]));
                }
                headers.push(("access-control-request-headers", list));
            }
        }
        Self {
            method,
            target,
            headers,
        }
    }
}

/// A method: half the time one the policy lists.
fn rng_method(rng: &mut Rng, policy: &Policy) -> &'static str {
    if rng.chance(2) {
        rng.pick(&policy.methods)
    } else {
        rng.pick(METHODS)
    }
}

/// A `Host` value: half the time one a pattern of the policy allows, written any way.
fn host_value(rng: &mut Rng, policy: &Policy) -> String {
    if rng.chance(8) {
        return rng.pick(BAD_HOSTS).to_owned();
    }
    let name = match &policy.hosts {
        Some(patterns) if rng.chance(2) => {
            let pattern = rng.pick(patterns);
            let pattern = pattern.strip_suffix('.').unwrap_or(pattern);
            match pattern.strip_prefix('.') {
                Some(domain) if rng.chance(2) => format!("{}.{domain}", rng.pick(&["a", "b.c"])),
                Some(domain) => domain.to_owned(),
                None => pattern.to_owned(),
            }
        }
        _ => rng.pick(HOST_NAMES).to_owned(),
    };
    let mut host = rng.mixed_case(&name);
    if !host.starts_with('[') && rng.chance(5) {
        host.push('.');
    }
    if rng.chance(3) {
        host.push_str(rng.pick(&[":443", ":8443", ":0", ":65535", ":1"]));
    }
    host
}

fn origin_value(rng: &mut Rng, policy: &Policy) -> String {
    let base = match rng.below(4) {
        0 => rng.pick(UNLISTED),
        _ if !policy.listed.is_empty() && rng.chance(2) => rng.pick(&policy.listed),
        _ => rng.pick(LISTABLE),
    };
    let mut origin = if rng.chance(3) {
        rng.mixed_case(base)
    } else {
        base.to_owned()
    };
    match rng.below(12) {
        0 => return "null".to_owned(),
        1 => origin.push('/'),
        2 => origin.push_str("/path"),
        3 => origin.push_str(if base.starts_with("https") {
            ":443"
        } else {
            ":80"
        }),
        4 => origin = origin.replacen("://", "://user@", 1),
        5 => origin.push_str(".evil"),
        _ => {}
    }
    origin
}

/// The model's host: a `Host` value or authority without its port and one trailing dot,
/// lower case, if it is a DNS name or bracketed IPv6 address with an optional TCP port.
fn model_host(value: &str) -> Option<String> {
    let (host, port) = if value.starts_with('[') {
        let end = value.find(']')? + 1;
        value[1..end - 1].parse::<std::net::Ipv6Addr>().ok()?;
        value.split_at(end)
    } else {
        let (name, port) = value.split_at(value.find(':').unwrap_or(value.len()));
        let bare = name.strip_suffix('.').unwrap_or(name);
        let label_ok = |l: &str| {
            (1..=63).contains(&l.len())
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if bare.is_empty() || bare.len() > 253 || !bare.split('.').all(label_ok) {
            return None;
        }
        (bare, port)
    };
    if !port.is_empty() {
        let digits = port.strip_prefix(':')?;
        if digits.is_empty()
            || digits.len() > 5
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || digits.parse::<u16>().is_err()
        {
            return None;
        }
    }
    Some(host.to_ascii_lowercase())
}

fn model_host_allowed(patterns: &[&str], case: &Case, authority: Option<&str>) -> bool {
    let hosts = case.values("host");
    if hosts.len() > 1 || (hosts.is_empty() && authority.is_none()) {
        return false;
    }
    let names: Vec<Option<String>> = hosts
        .iter()
        .copied()
        .chain(authority)
        .map(model_host)
        .collect();
    if names.iter().any(Option::is_none) {
        return false;
    }
    let names: Vec<String> = names.into_iter().flatten().collect();
    if names.len() == 2 && names[0] != names[1] {
        return false;
    }
    names.iter().all(|host| {
        patterns.iter().any(|p| {
            let p = p.to_ascii_lowercase();
            let p = p.strip_suffix('.').unwrap_or(&p);
            match p.strip_prefix('.') {
                Some(domain) => host == domain || host.ends_with(&format!(".{domain}")),
                None => host == p,
            }
        })
    })
}

/// What the model expects of the response.
#[derive(Debug, PartialEq)]
struct Expected {
    status: u16,
    /// The CORS response headers, by name.
    cors: BTreeMap<&'static str, String>,
    /// Whether `Vary` names `origin`.
    vary_origin: bool,
    /// Whether `Vary` names the preflight's request headers.
    vary_preflight: bool,
    kind: &'static str,
}

fn expect(policy: &Policy, case: &Case, authority: Option<&str>) -> Expected {
    let mut expected = Expected {
        status: 200,
        cors: BTreeMap::new(),
        vary_origin: !policy.listed.is_empty() || policy.credentials,
        vary_preflight: false,
        kind: "plain",
    };
    if let Some(patterns) = &policy.hosts
        && !model_host_allowed(patterns, case, authority)
    {
        expected.status = 400;
        expected.kind = "bad host";
        return expected;
    }
    let origins = case.values("origin");
    let allowed = policy.any
        || origins.len() == 1
            && policy
                .listed
                .iter()
                .any(|l| l.eq_ignore_ascii_case(origins[0]));
    let allow_headers = |cors: &mut BTreeMap<&'static str, String>, origin: &str| {
        let value = if policy.any { "*" } else { origin };
        cors.insert("access-control-allow-origin", value.to_owned());
        if policy.credentials {
            cors.insert("access-control-allow-credentials", "true".to_owned());
        }
    };
    // Actual responses only: browsers read it there, not on a preflight's answer.
    let expose_headers = |cors: &mut BTreeMap<&'static str, String>| {
        let mut exposed = policy.expose.clone();
        for ours in [
            "x-request-id",
            "retry-after",
            #[cfg(feature = "ratelimit")]
            "ratelimit",
            #[cfg(feature = "ratelimit")]
            "ratelimit-policy",
        ] {
            if !exposed.contains(&ours) {
                exposed.push(ours);
            }
        }
        cors.insert("access-control-expose-headers", exposed.join(", "));
    };
    let acrm = case.values("access-control-request-method");
    if origins.is_empty() {
        if policy.any {
            allow_headers(&mut expected.cors, "*");
            expose_headers(&mut expected.cors);
            expected.kind = "star without origin";
        }
        return expected;
    }
    if case.method != Method::OPTIONS || acrm.is_empty() {
        if allowed {
            allow_headers(&mut expected.cors, origins[0]);
            expose_headers(&mut expected.cors);
            expected.kind = "allowed";
        } else {
            expected.kind = "not allowed";
        }
        return expected;
    }
    // One method, as a browser sends: two are refused.
    let method_ok = acrm.len() == 1 && policy.methods.contains(&acrm[0]);
    let headers_ok = case
        .values("access-control-request-headers")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|h| h.trim_matches([' ', '\t']))
        .filter(|h| !h.is_empty())
        .all(|h| policy.headers.iter().any(|a| a.eq_ignore_ascii_case(h)));
    if !(allowed && method_ok && headers_ok) {
        expected.status = 403;
        expected.kind = "preflight refused";
        return expected;
    }
    allow_headers(&mut expected.cors, origins[0]);
    let c = &mut expected.cors;
    c.insert("access-control-allow-methods", policy.methods.join(", "));
    c.insert("access-control-allow-headers", policy.headers.join(", "));
    c.insert("access-control-max-age", policy.max_age.to_string());
    expected.status = 204;
    expected.vary_origin = true;
    expected.vary_preflight = true;
    expected.kind = "preflight answered";
    expected
}

const CORS_HEADERS: &[&str] = &[
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-expose-headers",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-max-age",
];

/// Compares one response with the model; the mismatches, if any.
async fn check(app: &axum::Router, policy: &Policy, case: &Case) -> Result<&'static str, String> {
    let mut request = Request::builder().method(case.method.clone());
    // A target `http::Uri` cannot parse (an empty or malformed authority) goes in origin form.
    let authority = match case.target.parse::<http::Uri>() {
        Ok(uri) => {
            let authority = uri.authority().map(|a| a.as_str().to_owned());
            request = request.uri(uri);
            authority
        }
        Err(_) => None,
    };
    for (name, value) in &case.headers {
        request = request.header(*name, HeaderValue::from_str(value).unwrap());
    }
    let request = request.body(axum::body::Body::empty()).unwrap();
    let expected = expect(policy, case, authority.as_deref());
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, 1 << 16).await.unwrap();
    let mut wrong = String::new();
    if parts.status != expected.status {
        let _ = write!(wrong, "status {} ", parts.status);
    }
    let cors: BTreeMap<&'static str, String> = CORS_HEADERS
        .iter()
        .filter_map(|n| {
            let all: Vec<_> = parts.headers.get_all(*n).iter().collect();
            (!all.is_empty()).then(|| {
                let joined: Vec<_> = all.iter().map(|v| v.to_str().unwrap_or("?")).collect();
                (*n, joined.join(" | "))
            })
        })
        .collect();
    if cors != expected.cors {
        let _ = write!(wrong, "cors headers {cors:?} ");
    }
    let vary: Vec<String> = parts
        .headers
        .get_all("vary")
        .iter()
        .flat_map(|v| v.to_str().unwrap().split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    let varies = |t: &str| vary.iter().any(|v| v == t);
    if varies("origin") != expected.vary_origin
        || vary.iter().filter(|v| *v == "origin").count() > 1
        || [
            "access-control-request-method",
            "access-control-request-headers",
        ]
        .iter()
        .any(|t| varies(t) != expected.vary_preflight)
    {
        let _ = write!(wrong, "vary {vary:?} ");
    }
    let request_id = parts
        .headers
        .get("x-request-id")
        .map(|v| v.to_str().unwrap());
    if request_id.is_none() {
        wrong.push_str("no x-request-id ");
    }
    // A response to `HEAD` has no body to read.
    if parts.status.is_client_error() && case.method != Method::HEAD {
        let problem = parts.headers.get("content-type").map(HeaderValue::as_bytes);
        let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
        if problem != Some(&b"application/problem+json"[..])
            || json
                .as_ref()
                .is_none_or(|j| j["request_id"].as_str() != request_id)
        {
            let _ = write!(wrong, "not a problem with the request id: {problem:?} ");
        }
        let text = String::from_utf8_lossy(&body).to_ascii_lowercase();
        if let Some((_, v)) = case
            .headers
            .iter()
            .find(|(_, v)| v.len() >= 8 && text.contains(&v.to_ascii_lowercase()))
        {
            let _ = write!(wrong, "echoes {v:?} ");
        }
    }
    if parts.status == StatusCode::NO_CONTENT && !body.is_empty() {
        wrong.push_str("a body on 204 ");
    }
    if wrong.is_empty() {
        Ok(expected.kind)
    } else {
        Err(format!(
            "{wrong}\n  response: {} {:?}\n  body: {}\n  expected: {expected:?}",
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&body)
        ))
    }
}

#[tokio::test]
async fn cors_and_hosts_agree_with_the_model() {
    let mut rng = Rng(fastrand::Rng::with_seed(SEED));
    let mut kinds: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for p in 0..POLICIES {
        let policy = Policy::generate(&mut rng);
        let app = axum::Router::new()
            .fallback(|| async { "ok" })
            .layer(policy.build(&mut rng));
        for r in 0..REQUESTS_PER_POLICY {
            let case = Case::generate(&mut rng, &policy);
            match check(&app, &policy, &case).await {
                Ok(kind) => {
                    *kinds.entry(kind).or_default() += 1;
                    if policy.hosts.is_some() && kind != "bad host" {
                        let host = if case.target == "/" {
                            "host allowed"
                        } else {
                            "authority allowed"
                        };
                        *kinds.entry(host).or_default() += 1;
                    }
                }
                Err(e) => failures.push(format!(
                    "policy {p}, request {r}: {e}\n  policy: {policy:?}\n  request: {case:?}"
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "seed {SEED:#x}: {} of {} cases differ from the model, the first:\n{}",
        failures.len(),
        POLICIES * REQUESTS_PER_POLICY,
        failures[..failures.len().min(5)].join("\n\n")
    );
    // Every kind of outcome is exercised, not just the common ones.
    for kind in [
        "plain",
        "bad host",
        "star without origin",
        "allowed",
        "not allowed",
        "preflight refused",
        "preflight answered",
        "host allowed",
        "authority allowed",
    ] {
        let n = kinds.get(kind).copied().unwrap_or(0);
        assert!(
            n >= 50,
            "seed {SEED:#x}: only {n} {kind:?} cases: {kinds:?}"
        );
    }
}
