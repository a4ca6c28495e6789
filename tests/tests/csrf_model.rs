//! The CSRF check on random requests, against a model of its documented rules (the docs of
//! `hardening_auth::Csrf`): methods in any case, `Origin` and `Host` lookalikes (ports,
//! case, paths, user info, IDN, IPv6, `null`, empty, repeated), `Sec-Fetch-Site` and
//! `Sec-Fetch-Mode` in and out of their vocabularies, cookies, every `Authorization` scheme,
//! WebSocket handshakes, and what the check does not read (`Referer`, content types,
//! `X-Forwarded-Host`). Each request goes to `Csrf::check_request` under four policies
//! (same-origin only, trusted origins, an exempt path, shadow mode), and through
//! `Hardening::strict()` from a trusted proxy (which may say HTTPS) or another peer: the
//! handler is reached exactly when the model allows the request, and each refusal is a 403
//! problem with the response's request id, echoes nothing of the request, and is one
//! `csrf_blocked` security event with that id.
//!
//! The model is written from the docs alone and calls nothing of the code under test. The
//! generator is fastrand's, from a fixed seed: a failure names the seed, the case number and
//! the request.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::any;
use hardening_core::Hardening;
use hardening_core::auth::{Csrf, CsrfReason};
use hardening_tests::Captured;
use http::{HeaderValue, Method, Request};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// How many requests each run generates.
const CASES: usize = 3000;

const SEED: u64 = 0x00c5_2f5e_ed00_0001;

/// In every value a request may carry, so that an echo of the request shows.
const MARK: &str = "zq7mark";

/// Origins the `trusted` policy trusts, as configured.
const TRUSTED: &[&str] = &[
    "https://idp.example.com",
    "http://[::1]:8080",
    "https://xn--bcher-kva.example",
];

/// The path the `exempt` policy exempts.
const EXEMPT: &str = "/saml/acs";

/// Networks of the trusted proxy in the end-to-end part.
const PROXY: &str = "10.0.0.0/8";

/// One generated request.
#[derive(Debug, Clone)]
struct Case {
    method: String,
    /// Path and maybe a query.
    target: String,
    /// In order; a name may repeat.
    headers: Vec<(&'static str, String)>,
    /// Whether the check is told the request came over HTTPS (unit part).
    https: bool,
    /// The peer is the trusted proxy (end-to-end part).
    from_proxy: bool,
}

impl Case {
    fn parts(&self) -> http::request::Parts {
        let mut builder = Request::builder()
            .method(Method::from_bytes(self.method.as_bytes()).unwrap())
            .uri(self.target.as_str());
        for (name, value) in &self.headers {
            builder = builder.header(*name, HeaderValue::from_bytes(value.as_bytes()).unwrap());
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn first(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_bytes())
    }

    fn has(&self, name: &str) -> bool {
        self.first(name).is_some()
    }
}

/// A policy, as the model sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Policy {
    SameOrigin,
    Trusted,
    Exempt,
    Shadow,
}

impl Policy {
    fn csrf(self) -> Csrf {
        match self {
            Self::SameOrigin => Csrf::new(),
            Self::Trusted => Csrf::new().trust_origins(TRUSTED).unwrap(),
            Self::Exempt => Csrf::new().dangerous_exempt_path(EXEMPT).unwrap(),
            Self::Shadow => Csrf::new().shadow(),
        }
    }
}

/// What the docs say of a request: `None` it passes, `Some(reason)` it is refused.
fn model(policy: Policy, case: &Case, https: bool) -> Option<CsrfReason> {
    // "safe methods pass, unless a GET asks for an Upgrade"; only these four are safe, and
    // methods are case-sensitive.
    let method = case.method.as_str();
    if method == "GET" && !case.has("upgrade") || ["HEAD", "OPTIONS", "TRACE"].contains(&method) {
        return None;
    }
    // "a path exempted ... passes": exactly, before percent-decoding, without the query.
    let target = match case.target.split_once("://") {
        Some((_, rest)) => &rest[rest.find('/').unwrap_or(rest.len())..],
        None => case.target.as_str(),
    };
    let path = target.split('?').next().unwrap_or_default();
    if policy == Policy::Exempt && path == EXEMPT {
        return None;
    }
    // "a bearer request passes": the Bearer scheme, one space, a token.
    let authorization = case.first("authorization").map(String::from_utf8_lossy);
    let scheme_and_token = authorization.as_deref().and_then(|a| a.split_once(' '));
    if let Some((scheme, token)) = scheme_and_token
        && scheme.eq_ignore_ascii_case("bearer")
        && !token.is_empty()
    {
        return None;
    }
    let ambient_authorization = authorization.as_deref().is_some_and(|a| {
        let scheme = a.split(' ').next().unwrap_or_default().to_ascii_lowercase();
        ["basic", "digest", "negotiate", "ntlm"].contains(&scheme.as_str())
    });
    let credentials = case.has("cookie") || ambient_authorization;
    // Headers a browser sends once: their value.
    let origin = case.first("origin").map(String::from_utf8_lossy);
    let trusted = policy == Policy::Trusted
        && origin
            .as_deref()
            .is_some_and(|o| TRUSTED.iter().any(|t| t.eq_ignore_ascii_case(o)));
    let site = case.first("sec-fetch-site");
    let from_elsewhere = site.is_some_and(|s| s != b"same-origin" && s != b"none");
    let refusal = if !credentials {
        // Login CSRF: a navigation from another, untrusted origin; or a request that
        // `Sec-Fetch-Site` calls `same-site` (a sibling subdomain's script) from one, sent
        // without a preflight: a POST with no Content-Type or a form's or text/plain.
        let navigation = case.first("sec-fetch-mode") == Some(b"navigate");
        let same_site = site == Some(b"same-site");
        let simple = method == "POST"
            && case.first("content-type").is_none_or(|value| {
                let value = String::from_utf8_lossy(value);
                let media_type = value.split(';').next().unwrap_or_default().trim();
                [
                    "application/x-www-form-urlencoded",
                    "multipart/form-data",
                    "text/plain",
                ]
                .iter()
                .any(|simple| media_type.eq_ignore_ascii_case(simple))
            });
        match (from_elsewhere && !trusted, navigation, same_site && simple) {
            (true, true, _) => Some(CsrfReason::CrossSiteNavigation),
            (true, false, true) => Some(CsrfReason::SecFetchSite),
            _ => None,
        }
    } else if site.is_some() {
        (from_elsewhere && !trusted).then_some(CsrfReason::SecFetchSite)
    } else {
        match origin.as_deref() {
            None => None,
            Some(_) if trusted => None,
            Some(origin) => {
                // The request's own origin: Host (or the target's authority), and https when
                // the request is known to be, or its target says so.
                let https = https || case.target.starts_with("https://");
                let host = case
                    .first("host")
                    .map(|h| String::from_utf8_lossy(h).into_owned())
                    .or_else(|| {
                        case.target
                            .split_once("://")
                            .map(|(_, rest)| rest.split('/').next().unwrap_or_default().to_owned())
                    });
                let same = match (origin.split_once("://"), host) {
                    (Some((scheme, rest)), Some(host)) => {
                        rest.eq_ignore_ascii_case(&host)
                            && (!https || scheme.eq_ignore_ascii_case("https"))
                    }
                    _ => false,
                };
                (!same).then_some(CsrfReason::Origin)
            }
        }
    };
    if policy == Policy::Shadow {
        return None;
    }
    refusal
}

/// fastrand's generator from a fixed seed, with the picks the generator uses.
struct Rng(fastrand::Rng);

impl Rng {
    fn chance(&mut self, one_in: usize) -> bool {
        self.0.usize(..one_in) == 0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.0.usize(..items.len())]
    }
}

const METHODS: &[&str] = &[
    "POST", "POST", "POST", "PUT", "PATCH", "DELETE", "GET", "GET", "HEAD", "OPTIONS", "TRACE",
    "CONNECT", "post", "get", "Get", "options", "trace", "PROPFIND", "M-SEARCH", "FOO",
];

const PATHS: &[&str] = &[
    "/notes",
    "/login",
    "/saml/acs",
    "/saml/acs",
    "/saml/acs/",
    "/saml/ACS",
    "/saml/%61cs",
    "/saml",
];

const HOSTS: &[&str] = &[
    "api.example.com",
    "api.example.com",
    "API.Example.COM",
    "api.example.com:8443",
    "api.example.com:443",
    "api.example.com:80",
    "localhost:3000",
    "127.0.0.1:3000",
    "[::1]:8080",
    "[::1]",
    "idp.example.com",
    "xn--bcher-kva.example",
];

/// Hosts an `Origin` may name besides the request's own.
const OTHER_HOSTS: &[&str] = &[
    "evil.example",
    "evil.api.example.com",
    "api.example.com.evil.example",
    "api.example.com:8444",
    "idp.example.com",
    "[::1]:8080",
    "[::1]:8081",
    "[0:0:0:0:0:0:0:1]:8080",
    "xn--bcher-kva.example",
    "bücher.example",
];

const SCHEMES: &[&str] = &[
    "https",
    "https",
    "http",
    "http",
    "HTTPS",
    "ftp",
    "chrome-extension",
];

/// An `Origin` value: of the request's host, a lookalike of it, or another.
fn origin(rng: &mut Rng, host: Option<&str>) -> String {
    let scheme = rng.pick(SCHEMES);
    let host = match host {
        Some(host) if rng.chance(2) => host.to_owned(),
        _ => rng.pick(OTHER_HOSTS).to_owned(),
    };
    match rng.0.usize(..14) {
        0 => "null".to_owned(),
        1 => String::new(),
        2 => format!("{scheme}://{}", host.to_ascii_uppercase()),
        3 => format!("{scheme}://{host}/"),
        4 => format!("{scheme}://{host}/{MARK}"),
        5 => format!("{scheme}://{MARK}@{host}"),
        6 => format!("{scheme}://{host}:443"),
        7 => format!("{scheme}://{host}:80"),
        8 => format!("{scheme}://{host}.{MARK}.example"),
        9 => format!("{scheme}:{host}"),
        _ => format!("{scheme}://{host}"),
    }
}

fn case(rng: &mut Rng) -> Case {
    let method = rng.pick(METHODS).to_owned();
    let mut target = rng.pick(PATHS).to_owned();
    if rng.chance(10) {
        target = format!("{}://api.example.com{target}", rng.pick(&["http", "https"]));
    }
    if rng.chance(4) {
        target.push_str(&format!("?q={MARK}"));
    }
    let mut headers: Vec<(&'static str, String)> = Vec::new();
    let mut add = |name: &'static str, value: &str| headers.push((name, value.to_owned()));
    let host = (!rng.chance(12)).then(|| rng.pick(HOSTS));
    if let Some(host) = host {
        add("host", host);
        if rng.chance(20) {
            add("host", "evil.example");
        }
    }
    if rng.chance(3) {
        add(
            "x-forwarded-host",
            rng.pick(&["evil.example", "api.example.com"]),
        );
    }
    if rng.chance(2) {
        add("x-forwarded-proto", rng.pick(&["https", "http"]));
    }
    match rng.0.usize(..8) {
        0..=3 => add("cookie", &format!("sid={MARK}")),
        4 => add("cookie", ""),
        _ => {}
    }
    if rng.chance(2) {
        let value = rng.pick(&[
            "Bearer t",
            "bearer t",
            "BEARER t",
            "Bearer",
            "Bearer ",
            "Bearert",
            "Bearer\tt",
            "Basic dTpw",
            "basic dTpw",
            "Basicx dTpw",
            "Digest username=\"u\"",
            "Negotiate YII=",
            "NTLM TlRM",
            "Token t",
            "Bearer zq7mark",
        ]);
        add("authorization", value);
    }
    let sites = [
        "same-origin",
        "same-site",
        "cross-site",
        "none",
        "Same-Origin",
        "",
        "zq7mark",
        "same-origin, cross-site",
    ];
    for _ in 0..[0, 0, 1, 1, 1, 2][rng.0.usize(..6)] {
        add("sec-fetch-site", rng.pick(&sites));
    }
    if rng.chance(2) {
        let mode = rng.pick(&[
            "navigate",
            "navigate",
            "cors",
            "no-cors",
            "same-origin",
            "Navigate",
        ]);
        add("sec-fetch-mode", mode);
    }
    if rng.chance(4) {
        let referer = rng.pick(&[
            "/notes",
            "https://api.example.com/notes",
            "http://api.example.com:8080/",
            "ftp://api.example.com/",
            "https://evil.example/zq7mark",
        ]);
        add("referer", referer);
    }
    if rng.chance(3) {
        let content_type = rng.pick(&[
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=zq7mark",
            "text/plain",
            "application/json",
        ]);
        add("content-type", content_type);
    }
    if rng.chance(5) {
        add("upgrade", "websocket");
        add("connection", "Upgrade");
        add("sec-websocket-version", "13");
        add("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
    }
    for _ in 0..[0, 1, 1, 1, 1, 2][rng.0.usize(..6)] {
        let value = origin(rng, host);
        headers.push(("origin", value));
    }
    // In any order (the first of a repeated name is the first in the shuffled list).
    rng.0.shuffle(&mut headers);
    Case {
        method,
        target,
        headers,
        https: rng.chance(2),
        from_proxy: rng.chance(2),
    }
}

/// Counts of each kind of outcome, so that a schedule that never exercises one fails.
#[derive(Debug, Default)]
struct Tally {
    passed: usize,
    reasons: [usize; 3],
}

impl Tally {
    fn add(&mut self, outcome: Option<CsrfReason>) {
        match outcome {
            None => self.passed += 1,
            Some(CsrfReason::SecFetchSite) => self.reasons[0] += 1,
            Some(CsrfReason::Origin) => self.reasons[1] += 1,
            Some(CsrfReason::CrossSiteNavigation) => self.reasons[2] += 1,
            Some(other) => panic!("a reason the model does not know: {other:?}"),
        }
    }

    fn assert_varied(&self, what: &str) {
        let least = CASES / 100;
        assert!(
            self.passed >= least && self.reasons.iter().all(|n| *n >= least),
            "{what}: too few of some outcome to mean anything: {self:?}"
        );
    }
}

#[test]
fn the_check_agrees_with_the_documented_rules() {
    let mut rng = Rng(fastrand::Rng::with_seed(SEED));
    let policies = [
        Policy::SameOrigin,
        Policy::Trusted,
        Policy::Exempt,
        Policy::Shadow,
    ];
    let checks = policies.map(Policy::csrf);
    let mut tally = Tally::default();
    for n in 0..CASES {
        let case = case(&mut rng);
        let parts = case.parts();
        for (policy, csrf) in policies.iter().zip(&checks) {
            let got = csrf.check_request(&parts, case.https).err();
            let expected = model(*policy, &case, case.https);
            assert_eq!(
                got, expected,
                "seed {SEED:#x}, case {n}, policy {policy:?}: {case:#?}"
            );
            if *policy == Policy::SameOrigin {
                tally.add(expected);
            }
        }
    }
    tally.assert_varied("Csrf::check_request");
}

/// The security events logged after byte `from` of the capture, which moves to its end.
fn security_events_since(
    captured: &Captured,
    from: &mut usize,
) -> Vec<(String, serde_json::Value)> {
    let text = captured.text();
    let new = &text[*from..];
    *from = text.len();
    new.lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|v| v["target"] == hardening_core::SECURITY_TARGET)
        .map(|v| {
            (
                v["fields"]["security.event"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                v,
            )
        })
        .collect()
}

async fn reached() -> &'static str {
    "reached"
}

#[tokio::test]
async fn hardening_refuses_what_the_model_refuses_with_a_problem_and_an_event() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let mut rng = Rng(fastrand::Rng::with_seed(SEED ^ 0xe2e));
    let policies = [Policy::SameOrigin, Policy::Trusted];
    let apps = policies.map(|policy| {
        Router::new().fallback(any(reached)).layer(
            Hardening::strict()
                .dangerous_without_rate_limit()
                .trusted_proxies([PROXY])
                .unwrap()
                .csrf(policy.csrf()),
        )
    });
    let mut tally = Tally::default();
    let mut refusals = Vec::new();
    let mut logged = 0;
    for n in 0..CASES {
        let case = case(&mut rng);
        let which = n % policies.len();
        let policy = policies[which];
        // HTTPS as the trusted proxy's last X-Forwarded-Proto says; another peer's is not read.
        let https = case.from_proxy
            && case
                .headers
                .iter()
                .rfind(|(name, _)| *name == "x-forwarded-proto")
                .is_some_and(|(_, v)| v == "https");
        let expected = model(policy, &case, https);
        tally.add(expected);
        let mut request = Request::from_parts(case.parts(), Body::empty());
        let peer: SocketAddr = if case.from_proxy {
            "10.0.0.1:40000"
        } else {
            "198.51.100.7:40000"
        }
        .parse()
        .unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        let response = apps[which].clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8_lossy(&body).into_owned();
        let context =
            format!("seed {SEED:#x}, case {n}, policy {policy:?}, https {https}: {case:#?}");
        let new_events = security_events_since(&captured, &mut logged);
        match expected {
            None => {
                assert_eq!(status, 200, "{context}\n{body}");
                // A 2xx to HEAD or CONNECT has no body.
                if !["HEAD", "CONNECT"].contains(&case.method.as_str()) {
                    assert_eq!(body, "reached", "{context}");
                }
                assert!(new_events.is_empty(), "{context}\n{new_events:?}");
            }
            Some(_) => {
                assert_eq!(status, 403, "{context}\n{body}");
                assert_eq!(
                    headers.get("content-type").map(HeaderValue::as_bytes),
                    Some(&b"application/problem+json"[..]),
                    "{context}"
                );
                let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
                let id = headers["x-request-id"].to_str().unwrap();
                assert_eq!(problem["status"], 403, "{context}");
                assert_eq!(problem["request_id"], id, "{context}");
                let names: Vec<_> = new_events.iter().map(|(name, _)| name.as_str()).collect();
                assert_eq!(names, ["csrf_blocked"], "{context}");
                assert_eq!(new_events[0].1["fields"]["request_id"], id, "{context}");
                refusals.push(n);
            }
        }
        // Nothing of the request comes back: not its marked values, not its lookalike hosts.
        let echoed = headers
            .iter()
            .map(|(name, value)| format!("{name}: {}", String::from_utf8_lossy(value.as_bytes())))
            .chain([body])
            .filter(|line| {
                let line = line.to_ascii_lowercase();
                line.contains(MARK) || line.contains("evil")
            })
            .collect::<Vec<_>>();
        assert!(echoed.is_empty(), "{context}\n{echoed:?}");
    }
    tally.assert_varied("Hardening");
    assert!(!refusals.is_empty());
}
