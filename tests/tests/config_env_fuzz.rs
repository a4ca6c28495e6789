//! `HardeningConfig` from random sets of `HARDENING_*` variables (fixed seed): valid and
//! invalid values, unknown and lower-case names, duplicates (the same value again, in any
//! spelling, or another one, which is an error), empty values, huge numbers, odd networks,
//! hosts, origins, routes and `route=bytes` pairs. Nothing panics; the error names exactly
//! the wrong variables, those the build refuses as well as those that do not parse; a valid
//! set builds, and the layer does what the variables say.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::routing::{get, post};
use hardening_core::{ClientIp, ENV_VARS, HardeningConfig};
use http::{Request, Response, StatusCode};
use tower::ServiceExt;

/// How a variable's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A `usize` or `u64` limit.
    Size,
    /// A `u32` count.
    Count,
    Bool,
    Proxies,
    Header,
    Origins,
    Hosts,
    Params,
    CorsHeaders,
    CorsMethods,
    /// Route patterns, comma-separated.
    Routes,
    /// `route=bytes` pairs, comma-separated.
    RouteSizes,
}

const VARS: &[(&str, Kind)] = &[
    ("HARDENING_BODY_LIMIT", Kind::Size),
    ("HARDENING_ROUTE_BODY_LIMITS", Kind::RouteSizes),
    ("HARDENING_QUERY_PARAM_LIMIT", Kind::Size),
    ("HARDENING_TIMEOUT_SECS", Kind::Size),
    ("HARDENING_TRUSTED_PROXIES", Kind::Proxies),
    ("HARDENING_FORWARDED_HEADER", Kind::Header),
    ("HARDENING_CORS_ORIGINS", Kind::Origins),
    ("HARDENING_CORS_CREDENTIALS", Kind::Bool),
    ("HARDENING_CORS_HEADERS", Kind::CorsHeaders),
    ("HARDENING_CORS_METHODS", Kind::CorsMethods),
    ("HARDENING_ALLOWED_HOSTS", Kind::Hosts),
    ("HARDENING_SENSITIVE_QUERY_PARAMS", Kind::Params),
    ("HARDENING_BEHIND_TLS", Kind::Bool),
    ("HARDENING_HTTPS_REDIRECT", Kind::Bool),
    ("HARDENING_RATE_LIMIT_PER_MINUTE", Kind::Count),
    ("HARDENING_RATE_LIMIT_BURST", Kind::Count),
    ("HARDENING_ROUTES_WITHOUT_RATE_LIMIT", Kind::Routes),
    ("HARDENING_LOG_REQUEST_HEADERS", Kind::Bool),
];

const SIZES_OK: &[&str] = &[
    "1",
    "3",
    "16",
    " 64 ",
    "0007",
    "1048576",
    "18446744073709551615",
];
const SIZES_BAD: &[&str] = &[
    "",
    " ",
    "0",
    "00",
    "-1",
    "+5",
    "16k",
    "30s",
    "1e3",
    "1_000",
    "ten",
    "0x10",
    "\u{0661}\u{0662}",
    "18446744073709551616",
    "99999999999999999999999999",
];
const COUNTS_OK: &[&str] = &["10", "600", "4294967295"];
const COUNTS_BAD: &[&str] = &["", "0", "-5", "4294967296", "10/m", "lots"];
const BOOLS_TRUE: &[&str] = &["true", "TRUE", "1", "yes", "Yes"];
const BOOLS_FALSE: &[&str] = &["false", "0", "no"];
/// A flag left unset: not `false`, which is set (a setter replacing it says so).
const BOOLS_UNSET: &[&str] = &["", " "];
const BOOLS_BAD: &[&str] = &["maybe", "on", "2", "y", "t"];
const HEADERS_OK: &[&str] = &[
    "x-forwarded-for",
    "X-Forwarded-For",
    "forwarded",
    "Forwarded",
];
const HEADERS_BAD: &[&str] = &["x-real-ip", "true", "forwarded-for"];

/// The peer every probe comes from, and what the two forwarding headers name.
const PEER: &str = "10.1.2.3:40000";
const XFF_CLIENT: &str = "203.0.113.9";
const FORWARDED_CLIENT: &str = "198.51.100.7";

/// Networks, and whether each holds [`PEER`].
const PROXIES_OK: &[(&str, bool)] = &[
    ("10.0.0.0/8", true),
    ("10.1.2.3", true),
    ("10.1.2.0/24", true),
    ("0.0.0.0/0", true),
    ("192.168.0.0/16", false),
    ("fd00::/8", false),
    ("::1", false),
    ("::ffff:10.0.0.0/104", true),
    ("::ffff:192.168.0.0/112", false),
];
const PROXIES_BAD: &[&str] = &[
    "10.0.0.1/8",
    "10.0.0.0/33",
    "::/129",
    "[::1]",
    "fe80::1%eth0",
    "proxy.internal",
    "10.0.0.0/8/8",
    "10.0.0.0 /8",
    "1.2.3",
    "010.0.0.0/8",
];

/// Hosts, and whether each lets `api.example.com` in.
const HOSTS_OK: &[(&str, bool)] = &[
    ("api.example.com", true),
    (".example.com", true),
    ("API.EXAMPLE.COM", true),
    ("localhost", false),
    ("[::1]", false),
    ("10.1.2.3", false),
    ("other.example.org.", false),
];
const HOSTS_BAD: &[&str] = &[
    "*.example.com",
    "api.example.com:8080",
    "::1",
    "http://api.example.com",
    "a b",
    "a..b",
    "-a.com",
    "\u{4f8b}\u{3048}.jp",
    "api.example.com/x",
    ".",
];

/// Origins, and whether each is `https://app.example.com`.
const ORIGIN: &str = "https://app.example.com";
const ORIGINS_OK: &[(&str, bool)] = &[
    ("https://app.example.com", true),
    ("HTTPS://APP.example.com", true),
    ("http://localhost:3000", false),
    ("https://other.example:8443", false),
];
const ORIGINS_BAD: &[&str] = &[
    "https://app.example.com/",
    "null",
    "https://*.example.com",
    "app.example.com",
    "https://app.example.com:99999",
    "https://app.example.com:443",
    "https://user@app.example.com",
];

/// CORS request headers, and whether each is `authorization`.
const CORS_HEADERS_OK: &[(&str, bool)] = &[
    ("authorization", true),
    ("Authorization", true),
    ("content-type", false),
    ("x-trace-id", false),
];
const CORS_HEADERS_BAD: &[&str] = &["*", "x trace", "x:y", "caf\u{e9}"];

/// CORS methods, and whether each is `PUT`.
const CORS_METHODS_OK: &[(&str, bool)] = &[
    ("PUT", true),
    ("put", true),
    ("GET", false),
    ("post", false),
    ("DELETE", false),
];
const CORS_METHODS_BAD: &[&str] = &["*", "GET POST", "P/T", "(x)", "\u{0413}ET"];

/// The path the probe sends past the burst, and routes left out of the limit: whether each
/// matches it. None matches the probe's other paths.
const EXEMPT_PATH: &str = "/hooks/stripe";
const EXEMPT_ROUTES_OK: &[(&str, bool)] = &[
    ("/hooks/stripe", true),
    ("/hooks/{provider}", true),
    ("/hooks/{name}", true),
    ("/hooks/{*rest}", true),
    ("/hooks/stripe/", false),
    ("/Hooks/stripe", false),
    ("/hooks/strip%65", false),
    ("/assets/{*path}", false),
];
/// Routes no request path can match, or that this matcher does not take.
const ROUTES_BAD: &[&str] = &[
    "hooks/stripe",
    "/hooks/{provider",
    "/{*rest}/x",
    "/a b",
    "/files/{{x}}",
    "/x?y",
    "/hooks/{}",
    "*",
];

/// The path the probe sends a larger body to, and routes given one: where each stands among
/// those that match it (lower is more specific, as axum prefers them; `None`: no match).
/// Some are listed twice, to be picked more often: the probe checks only those that match.
const BODY_PATH: &str = "/docs/7/file";
const BODY_ROUTES_OK: &[(&str, Option<u8>)] = &[
    ("/docs/7/file", Some(0)),
    ("/docs/{id}/file", Some(1)),
    ("/docs/{id}/file", Some(1)),
    ("/docs/{doc}/file", Some(1)),
    ("/docs/{*rest}", Some(2)),
    ("/docs/{*rest}", Some(2)),
    ("/docs/{id}/file/", None),
    ("/up/{*rest}", None),
    ("/uploads", None),
];
/// Mostly above the default body limit, for the build to take them (1048576 is not).
const BODY_SIZES_OK: &[&str] = &[
    "2",
    " 2048 ",
    "0004096",
    "1048576",
    "1048577",
    "2097152",
    " 02097152 ",
    "20971520",
];
const BODY_SIZES_BAD: &[&str] = &[
    "",
    "0",
    "000",
    "-1",
    "+5",
    "16k",
    "2MiB",
    "1e3",
    "ten",
    "99999999999999999999999",
];

/// Names that are not settings: unknown, misspelt, or with a space.
const UNKNOWN_NAMES: &[&str] = &[
    "HARDENING_TIMEOUT",
    "HARDENING_FOO",
    "HARDENING_",
    "HARDENING_BODY_LIMIT ",
    "HARDENING_RATELIMIT_BURST",
    "HARDENING_CORS_ORIGIN",
];

/// One variable as the test generated it: its value, and what reading it should give
/// (`None`: an error naming it).
struct Var {
    name: String,
    value: String,
    read: Option<Value>,
}

/// A value as read, in the terms the test checks it by.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Number(u128),
    /// A flag, `None` when unset.
    Bool(Option<bool>),
    /// A list's entries, each with whether the build accepts it and whether it matches this
    /// test's probe (holds the peer, lets its host in, is its origin); empty is unset.
    List(Vec<(String, bool, bool)>),
    /// The forwarding header, `None` when unset.
    Header(Option<bool>),
    /// `route=bytes` pairs: each route, its size and whether the build accepts the route;
    /// empty is unset.
    RouteSizes(Vec<(String, u128, bool)>),
}

fn pick<'a, T>(rng: &mut fastrand::Rng, from: &'a [T]) -> &'a T {
    &from[rng.usize(..from.len())]
}

/// A list value: one to three entries, mostly good ones, with stray commas and spaces, or a
/// value that lists nothing, or empty (unset).
fn list(rng: &mut fastrand::Rng, ok: &[(&str, bool)], bad: &[&str]) -> (String, Option<Value>) {
    match rng.u8(..10) {
        0 => return (String::new(), Some(Value::List(Vec::new()))),
        1 => return (pick(rng, &[",", " , ,", ",,"]).to_string(), None),
        _ => {}
    }
    let mut entries = Vec::new();
    for _ in 0..rng.usize(1..=3) {
        if !bad.is_empty() && rng.u8(..6) == 0 {
            entries.push((pick(rng, bad).to_string(), false, false));
        } else {
            let (entry, matches) = *pick(rng, ok);
            entries.push((entry.to_owned(), true, matches));
        }
    }
    let mut value = entries
        .iter()
        .map(|(e, _, _)| e.as_str())
        .collect::<Vec<_>>()
        .join(*pick(rng, &[",", ", ", " ,  "]));
    if rng.bool() {
        value.push(',');
    }
    (value, Some(Value::List(entries)))
}

/// A `route=bytes` value: one or two pairs, mostly good ones (now and then a route the
/// build refuses, a size that does not read, or no `=`), with stray commas and spaces, or a
/// value that lists nothing, or empty (unset).
fn route_sizes(rng: &mut fastrand::Rng) -> (String, Option<Value>) {
    match rng.u8(..10) {
        0 => return (String::new(), Some(Value::RouteSizes(Vec::new()))),
        1 => return (pick(rng, &[",", " , ,"]).to_string(), None),
        _ => {}
    }
    let (mut texts, mut pairs, mut reads) = (Vec::new(), Vec::new(), true);
    for _ in 0..rng.usize(1..=2) {
        let (route, ok) = match rng.u8(..16) {
            0 => (*pick(rng, ROUTES_BAD), false),
            1 => ("", false),
            _ => (pick(rng, BODY_ROUTES_OK).0, true),
        };
        let size = *pick(rng, BODY_SIZES_OK);
        match rng.u8(..24) {
            0 => {
                texts.push(format!("{route}:{size}"));
                reads = false;
            }
            1 => {
                texts.push(format!("{route}={}", pick(rng, BODY_SIZES_BAD)));
                reads = false;
            }
            _ => {
                let space = *pick(rng, &["", " "]);
                texts.push(format!("{route}{space}={space}{size}"));
                pairs.push((route.to_owned(), size.trim().parse().unwrap(), ok));
            }
        }
    }
    let mut value = texts.join(*pick(rng, &[",", ", ", " ,  "]));
    if rng.bool() {
        value.push(',');
    }
    (value, reads.then_some(Value::RouteSizes(pairs)))
}

fn value(rng: &mut fastrand::Rng, kind: Kind) -> (String, Option<Value>) {
    let number = |v: &str| Some(Value::Number(v.trim().parse().unwrap()));
    let good = rng.u8(..5) != 0;
    match kind {
        Kind::Size if good => {
            let v = pick(rng, SIZES_OK);
            (v.to_string(), number(v))
        }
        Kind::Count if good => {
            let v = pick(rng, COUNTS_OK);
            (v.to_string(), number(v))
        }
        Kind::Size => (pick(rng, SIZES_BAD).to_string(), None),
        Kind::Count => (pick(rng, COUNTS_BAD).to_string(), None),
        Kind::Bool if good && rng.u8(..4) == 0 => {
            (pick(rng, BOOLS_UNSET).to_string(), Some(Value::Bool(None)))
        }
        Kind::Bool if good => {
            let yes = rng.bool();
            let v = pick(rng, if yes { BOOLS_TRUE } else { BOOLS_FALSE });
            (v.to_string(), Some(Value::Bool(Some(yes))))
        }
        Kind::Bool => (pick(rng, BOOLS_BAD).to_string(), None),
        Kind::Header if good && rng.u8(..4) == 0 => (String::new(), Some(Value::Header(None))),
        Kind::Header if good => {
            let v = pick(rng, HEADERS_OK);
            let forwarded = v.eq_ignore_ascii_case("forwarded");
            (v.to_string(), Some(Value::Header(Some(forwarded))))
        }
        Kind::Header => (pick(rng, HEADERS_BAD).to_string(), None),
        Kind::Proxies => list(rng, PROXIES_OK, PROXIES_BAD),
        Kind::Hosts => list(rng, HOSTS_OK, HOSTS_BAD),
        Kind::Origins if good && rng.u8(..5) == 0 => (
            "*".to_owned(),
            Some(Value::List(vec![("*".to_owned(), true, true)])),
        ),
        Kind::Origins => list(rng, ORIGINS_OK, ORIGINS_BAD),
        Kind::CorsHeaders => list(rng, CORS_HEADERS_OK, CORS_HEADERS_BAD),
        Kind::CorsMethods => list(rng, CORS_METHODS_OK, CORS_METHODS_BAD),
        Kind::Routes => list(rng, EXEMPT_ROUTES_OK, ROUTES_BAD),
        Kind::RouteSizes => route_sizes(rng),
        Kind::Params => list(
            rng,
            &[("x-honeycomb-team", false), ("sig", false), ("a=b", false)],
            &[],
        ),
    }
}

/// A random set of variables: known ones, sometimes twice (with the same value, or another
/// one), and now and then an unknown or lower-case name.
fn variables(rng: &mut fastrand::Rng) -> Vec<Var> {
    let mut vars: Vec<Var> = Vec::new();
    for _ in 0..rng.usize(0..=8) {
        let (name, kind) = *pick(rng, VARS);
        let (value, read) = value(rng, kind);
        let name = match rng.u8(..20) {
            0 => pick(rng, UNKNOWN_NAMES).to_string(),
            1 => name.to_ascii_lowercase(),
            2 => name.replacen("HARDENING", "Hardening", 1),
            3 if !vars.is_empty() => {
                // One already given, again with the same value (spaces around it aside).
                let again = pick(rng, &vars);
                let again = Var {
                    name: again.name.clone(),
                    value: format!(" {} ", again.value),
                    read: again.read.clone(),
                };
                vars.push(again);
                continue;
            }
            _ => {
                vars.push(Var {
                    name: name.to_owned(),
                    value,
                    read,
                });
                // The probe's origin, mostly, for the CORS lists to be obeyed too.
                let origins = "HARDENING_CORS_ORIGINS";
                if matches!(kind, Kind::CorsHeaders | Kind::CorsMethods)
                    && rng.u8(..4) != 0
                    && !vars.iter().any(|v| v.name == origins)
                {
                    vars.push(Var {
                        name: origins.to_owned(),
                        value: ORIGIN.to_owned(),
                        read: Some(Value::List(vec![(ORIGIN.to_owned(), true, true)])),
                    });
                }
                // A small body limit, often, for the routes' sizes to be above it (and the
                // probes' bodies small).
                let body_limit = "HARDENING_BODY_LIMIT";
                if kind == Kind::RouteSizes
                    && rng.bool()
                    && !vars.iter().any(|v| v.name == body_limit)
                {
                    vars.push(Var {
                        name: body_limit.to_owned(),
                        value: "64".to_owned(),
                        read: Some(Value::Number(64)),
                    });
                }
                // A small burst, mostly, for a route left out of the limit to be sent past
                // it in few requests.
                let burst = "HARDENING_RATE_LIMIT_BURST";
                if kind == Kind::Routes && rng.u8(..4) != 0 && !vars.iter().any(|v| v.name == burst)
                {
                    vars.push(Var {
                        name: burst.to_owned(),
                        value: "10".to_owned(),
                        read: Some(Value::Number(10)),
                    });
                }
                continue;
            }
        };
        vars.push(Var {
            name,
            value,
            read: None,
        });
    }
    // A name given with different values reads as none of them: values compared as they
    // read (`true` and `1` are one), those that do not read as they are written.
    let meaning = |v: &Var| match &v.read {
        Some(read) => Ok(read.clone()),
        None => Err(v.value.trim().to_owned()),
    };
    let conflicting: BTreeSet<String> = vars
        .iter()
        .filter(|v| {
            vars.iter()
                .any(|w| w.name == v.name && meaning(w) != meaning(v))
        })
        .map(|v| v.name.clone())
        .collect();
    for var in &mut vars {
        if conflicting.contains(&var.name) {
            var.read = None;
        }
    }
    vars
}

/// What the variables set: for each, its value if it reads.
fn settings(vars: &[Var]) -> BTreeMap<&str, Value> {
    let mut set = BTreeMap::new();
    for var in vars {
        if let Some(read) = &var.read {
            set.insert(var.name.as_str(), read.clone());
        }
    }
    set
}

fn list_of<'a>(set: &'a BTreeMap<&str, Value>, name: &str) -> &'a [(String, bool, bool)] {
    match set.get(name) {
        Some(Value::List(entries)) => entries,
        _ => &[],
    }
}

fn route_sizes_of<'a>(set: &'a BTreeMap<&str, Value>) -> &'a [(String, u128, bool)] {
    match set.get("HARDENING_ROUTE_BODY_LIMITS") {
        Some(Value::RouteSizes(pairs)) => pairs,
        _ => &[],
    }
}

/// A route pattern with its parameters' names left out: two routes of one shape match the
/// same paths, and the build refuses the second.
fn shape(route: &str) -> String {
    route
        .split('/')
        .map(|segment| match segment.strip_prefix('{') {
            Some(param) if param.starts_with('*') => "{*}",
            Some(_) => "{}",
            None => segment,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether two of these routes have one shape.
fn any_twice<'a>(routes: impl IntoIterator<Item = &'a str>) -> bool {
    let mut shapes = BTreeSet::new();
    routes.into_iter().any(|route| !shapes.insert(shape(route)))
}

/// The body limit of every route but those given more: the variable's, or the default.
const DEFAULT_BODY_LIMIT: u128 = 1024 * 1024;

fn flag(set: &BTreeMap<&str, Value>, name: &str) -> bool {
    set.get(name) == Some(&Value::Bool(Some(true)))
}

fn number(set: &BTreeMap<&str, Value>, name: &str) -> Option<u128> {
    match set.get(name) {
        Some(Value::Number(n)) => Some(*n),
        _ => None,
    }
}

/// The variables the error must name: those that do not read, and those whose values the
/// build refuses. A setting that needs another one is not blamed when that one did not read
/// (it may be set, once fixed).
fn wrong(vars: &[Var], set: &BTreeMap<&str, Value>) -> BTreeSet<String> {
    let unread: BTreeSet<String> = vars
        .iter()
        .filter(|v| v.read.is_none())
        .map(|v| v.name.clone())
        .collect();
    let mut wrong = unread.clone();
    let mut refuse = |name: &str| {
        wrong.insert(name.to_owned());
    };
    for name in [
        "HARDENING_TRUSTED_PROXIES",
        "HARDENING_ALLOWED_HOSTS",
        "HARDENING_CORS_ORIGINS",
        "HARDENING_CORS_HEADERS",
        "HARDENING_CORS_METHODS",
        "HARDENING_ROUTES_WITHOUT_RATE_LIMIT",
    ] {
        if list_of(set, name).iter().any(|(_, ok, _)| !ok) {
            refuse(name);
        }
    }
    if matches!(
        set.get("HARDENING_FORWARDED_HEADER"),
        Some(Value::Header(Some(_)))
    ) && list_of(set, "HARDENING_TRUSTED_PROXIES").is_empty()
        && !unread.contains("HARDENING_TRUSTED_PROXIES")
    {
        refuse("HARDENING_FORWARDED_HEADER");
    }
    let origins = list_of(set, "HARDENING_CORS_ORIGINS");
    let no_origins = origins.is_empty() && !unread.contains("HARDENING_CORS_ORIGINS");
    for name in ["HARDENING_CORS_HEADERS", "HARDENING_CORS_METHODS"] {
        if no_origins && !list_of(set, name).is_empty() {
            refuse(name);
        }
    }
    if flag(set, "HARDENING_CORS_CREDENTIALS") {
        let any_origin = origins.iter().any(|(o, _, _)| o == "*");
        let origins_ok = origins.iter().all(|(_, ok, _)| *ok);
        if no_origins || (any_origin && origins_ok) {
            refuse("HARDENING_CORS_CREDENTIALS");
        }
    }
    // Routes that do not parse, or two that match the same paths.
    let exempt = list_of(set, "HARDENING_ROUTES_WITHOUT_RATE_LIMIT");
    if any_twice(exempt.iter().map(|(route, _, _)| route.as_str())) {
        refuse("HARDENING_ROUTES_WITHOUT_RATE_LIMIT");
    }
    // The same, or a size not above the body limit: judged only against one that read (once
    // it does, it may be lower).
    let sizes = route_sizes_of(set);
    let body_limit = number(set, "HARDENING_BODY_LIMIT").unwrap_or(DEFAULT_BODY_LIMIT);
    let not_raised = !unread.contains("HARDENING_BODY_LIMIT")
        && sizes.iter().any(|(_, bytes, _)| *bytes <= body_limit);
    if sizes.iter().any(|(_, _, ok)| !ok)
        || any_twice(sizes.iter().map(|(route, _, _)| route.as_str()))
        || not_raised
    {
        refuse("HARDENING_ROUTE_BODY_LIMITS");
    }
    wrong
}

/// The variables an error names: the head of each of its lines.
fn named(error: &str) -> BTreeSet<String> {
    let lines: Vec<&str> = match error.split_once('\n') {
        Some((head, rest)) if head.ends_with(" settings are wrong:") => rest
            .lines()
            .map(|l| l.strip_prefix("  - ").unwrap_or_else(|| panic!("{error}")))
            .collect(),
        _ => vec![error],
    };
    lines
        .iter()
        .map(|l| l.split_once(": ").unwrap_or_else(|| panic!("{error}")).0)
        .map(str::to_owned)
        .collect()
}

async fn call(app: &axum::Router, request: Request<Body>) -> Response<Body> {
    let mut request = request;
    request
        .extensions_mut()
        .insert(ConnectInfo(PEER.parse::<SocketAddr>().unwrap()));
    app.clone().oneshot(request).await.unwrap()
}

async fn text(response: Response<Body>) -> String {
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    String::from_utf8(body.to_vec()).unwrap()
}

/// What the probes checked, for the test to see that each kind of check ran.
#[derive(Debug, Default)]
struct Checked {
    /// Preflights for PUT and for `Authorization` that the lists allowed.
    preflights_allowed: [u32; 2],
    /// Rounds that sent more than the burst to a route left out of the limit.
    past_the_burst: u32,
    /// Rounds that sent a body over the body limit to a route given more.
    larger_bodies: u32,
}

/// A few requests through the built layer, checked against what the variables say, and
/// counted in `checked`.
async fn probe(app: &axum::Router, set: &BTreeMap<&str, Value>, case: &str, checked: &mut Checked) {
    let allowed = &mut checked.preflights_allowed;
    let hosts = list_of(set, "HARDENING_ALLOWED_HOSTS");
    let proxies = list_of(set, "HARDENING_TRUSTED_PROXIES");
    let origins = list_of(set, "HARDENING_CORS_ORIGINS");
    let behind_tls = flag(set, "HARDENING_BEHIND_TLS");
    let get_ip = |uri: &str| {
        Request::get(uri)
            .header("host", "api.example.com")
            .header("origin", ORIGIN)
            .header("x-forwarded-for", XFF_CLIENT)
            .header("forwarded", format!("for={FORWARDED_CLIENT}"))
            .body(Body::empty())
            .unwrap()
    };
    let res = call(app, get_ip("/ip")).await;
    if !hosts.is_empty() && !hosts.iter().any(|(_, _, lets_in)| *lets_in) {
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{case}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{case}"
        );
        return;
    }
    if flag(set, "HARDENING_HTTPS_REDIRECT") && !behind_tls {
        assert!(res.status().is_redirection(), "{case}: {res:?}");
        let location = res.headers()["location"].to_str().unwrap();
        assert_eq!(location, "https://api.example.com/ip", "{case}");
        return;
    }
    assert_eq!(res.status(), StatusCode::OK, "{case}: {res:?}");
    let headers = res.headers().clone();
    assert_eq!(
        headers.contains_key("strict-transport-security"),
        behind_tls,
        "{case}: {headers:?}"
    );
    let allow_origin = headers
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned());
    let expected_origin = if origins.iter().any(|(o, _, _)| o == "*") {
        Some("*".to_owned())
    } else {
        origins
            .iter()
            .any(|(_, _, is_it)| *is_it)
            .then(|| ORIGIN.to_owned())
    };
    assert_eq!(allow_origin, expected_origin, "{case}: {headers:?}");
    // Preflights: PUT (not a default method), and GET sending Authorization (not a default
    // header), each allowed to the origin as the lists say.
    let methods = list_of(set, "HARDENING_CORS_METHODS");
    let lists = |name: &str| list_of(set, name).iter().any(|(_, _, is_it)| *is_it);
    let get_allowed = methods.is_empty()
        || methods
            .iter()
            .any(|(m, _, _)| m.eq_ignore_ascii_case("GET"));
    for (i, (method, header, listed)) in [
        ("PUT", "", lists("HARDENING_CORS_METHODS")),
        (
            "GET",
            "authorization",
            get_allowed && lists("HARDENING_CORS_HEADERS"),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let preflight = Request::options("/ip")
            .header("host", "api.example.com")
            .header("origin", ORIGIN)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", header)
            .body(Body::empty())
            .unwrap();
        let res = call(app, preflight).await;
        let expected = if listed && expected_origin.is_some() {
            allowed[i] += 1;
            StatusCode::NO_CONTENT
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(res.status(), expected, "{case}: {method} with {header}");
    }
    let per_minute = number(set, "HARDENING_RATE_LIMIT_PER_MINUTE").unwrap_or(100);
    assert!(
        headers["ratelimit-policy"]
            .to_str()
            .unwrap()
            .contains(&format!(";q={per_minute};")),
        "{case}: {headers:?}"
    );
    let forwarded = set.get("HARDENING_FORWARDED_HEADER") == Some(&Value::Header(Some(true)));
    let expected_ip = match (proxies.iter().any(|(_, _, holds)| *holds), forwarded) {
        (false, _) => "10.1.2.3",
        (true, false) => XFF_CLIENT,
        (true, true) => FORWARDED_CLIENT,
    };
    assert_eq!(text(res).await, expected_ip, "{case}");

    if let Some(limit) = number(set, "HARDENING_QUERY_PARAM_LIMIT").filter(|n| *n <= 64) {
        let query = |n: u128| {
            let params: Vec<String> = (0..n).map(|i| format!("p{i}=1")).collect();
            format!("/ip?{}", params.join("&"))
        };
        let res = call(app, get_ip(&query(limit))).await;
        assert_eq!(res.status(), StatusCode::OK, "{case}: {limit} parameters");
        let res = call(app, get_ip(&query(limit + 1))).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{case}: {limit} + 1");
    }
    if let Some(limit) = number(set, "HARDENING_BODY_LIMIT").filter(|n| *n <= 64) {
        for (len, status) in [
            (limit, StatusCode::OK),
            (limit + 1, StatusCode::PAYLOAD_TOO_LARGE),
        ] {
            let req = Request::post("/up")
                .header("host", "api.example.com")
                .body(Body::from(vec![b'x'; usize::try_from(len).unwrap()]))
                .unwrap();
            let res = call(app, req).await;
            assert_eq!(res.status(), status, "{case}: {len} bytes");
        }
    }
    larger_bodies(app, set, case, checked).await;
    left_out_of_the_limit(app, set, case, checked).await;
}

/// A POST of `len` bytes to `path`.
async fn post_bytes(app: &axum::Router, path: &str, len: u128) -> Response<Body> {
    let req = Request::post(path)
        .header("host", "api.example.com")
        .body(Body::from(vec![b'x'; usize::try_from(len).unwrap()]))
        .unwrap();
    call(app, req).await
}

/// The route given a larger body takes one over the body limit, which another route refuses,
/// and, when small, refuses one over its own size: that of the most specific route listed
/// that matches its path. Three requests at most, counted by the rate limit.
async fn larger_bodies(
    app: &axum::Router,
    set: &BTreeMap<&str, Value>,
    case: &str,
    checked: &mut Checked,
) {
    let body_limit = number(set, "HARDENING_BODY_LIMIT").unwrap_or(DEFAULT_BODY_LIMIT);
    let rank = |route: &str| {
        BODY_ROUTES_OK
            .iter()
            .find(|(ok, _)| *ok == route)
            .and_then(|(_, rank)| *rank)
    };
    let raised = route_sizes_of(set)
        .iter()
        .filter_map(|(route, bytes, _)| Some((rank(route)?, *bytes)))
        .min()
        .map(|(_, bytes)| bytes);
    let Some(limit) = raised else {
        if body_limit <= 64 {
            let res = post_bytes(app, BODY_PATH, body_limit + 1).await;
            assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE, "{case}");
        }
        return;
    };
    checked.larger_bodies += 1;
    let over = body_limit + 1;
    let res = post_bytes(app, BODY_PATH, over).await;
    assert_eq!(res.status(), StatusCode::OK, "{case}: {over} bytes");
    assert_eq!(text(res).await, over.to_string(), "{case}");
    let res = post_bytes(app, "/up", over).await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE, "{case}");
    if limit <= 4096 {
        let res = post_bytes(app, BODY_PATH, limit + 1).await;
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE, "{case}");
    }
}

/// A route left out of the limit is answered past the burst (when the burst is small enough
/// to send), with no `RateLimit-Policy`, and spends none of it: a counted request is still
/// answered after. A route not left out is counted.
async fn left_out_of_the_limit(
    app: &axum::Router,
    set: &BTreeMap<&str, Value>,
    case: &str,
    checked: &mut Checked,
) {
    let hook = || {
        Request::post(EXEMPT_PATH)
            .header("host", "api.example.com")
            .body(Body::empty())
            .unwrap()
    };
    let exempt = list_of(set, "HARDENING_ROUTES_WITHOUT_RATE_LIMIT")
        .iter()
        .any(|(_, _, matches)| *matches);
    if !exempt {
        let res = call(app, hook()).await;
        assert_eq!(res.status(), StatusCode::OK, "{case}");
        assert!(res.headers().contains_key("ratelimit-policy"), "{case}");
        return;
    }
    let per_minute = number(set, "HARDENING_RATE_LIMIT_PER_MINUTE").unwrap_or(100);
    let burst = number(set, "HARDENING_RATE_LIMIT_BURST").unwrap_or(per_minute.clamp(1, 50));
    let past_the_burst = burst <= 50;
    let sends = if past_the_burst { burst + 1 } else { 3 };
    for i in 0..sends {
        let res = call(app, hook()).await;
        assert_eq!(res.status(), StatusCode::OK, "{case}: request {i}");
        assert!(
            !res.headers().contains_key("ratelimit-policy"),
            "{case}: request {i}: {:?}",
            res.headers()
        );
    }
    if past_the_burst {
        checked.past_the_burst += 1;
        let res = call(
            app,
            Request::get("/ip")
                .header("host", "api.example.com")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK, "{case}: counted after");
    }
}

#[tokio::test]
async fn random_variable_sets_are_read_validated_and_obeyed() {
    // The generator knows every variable there is.
    let mut known: Vec<&str> = ENV_VARS.iter().map(|(n, _)| *n).collect();
    let mut generated: Vec<&str> = VARS.iter().map(|(n, _)| *n).collect();
    known.sort_unstable();
    generated.sort_unstable();
    assert_eq!(generated, known, "a variable the generator does not know");

    let mut rng = fastrand::Rng::with_seed(0x4841_5244_454e);
    let (mut built, mut refused) = (0, 0);
    let mut checked = Checked::default();
    for round in 0..1600 {
        let vars = variables(&mut rng);
        let case = format!(
            "round {round}: {:?}",
            vars.iter()
                .map(|v| (v.name.as_str(), v.value.as_str()))
                .collect::<Vec<_>>()
        );
        let set = settings(&vars);
        let expected = wrong(&vars, &set);
        let result = HardeningConfig::from_vars(vars.iter().map(|v| (&v.name, &v.value)))
            .and_then(HardeningConfig::build);
        match result {
            Err(error) => {
                refused += 1;
                let error = error.to_string();
                assert_eq!(named(&error), expected, "{case}\n{error}");
                for line in error
                    .lines()
                    .filter(|l| !l.ends_with(" settings are wrong:"))
                {
                    let (_, why) = line.split_once(": ").unwrap();
                    assert!(!why.trim().is_empty(), "{case}: says nothing: {error}");
                }
            }
            Ok(hardening) => {
                built += 1;
                assert!(expected.is_empty(), "{case}: built, expected {expected:?}");
                let app = axum::Router::new()
                    .route(
                        "/ip",
                        get(|ClientIp(ip): ClientIp| async move { ip.to_string() }),
                    )
                    .route("/up", post(length))
                    .route("/docs/{id}/file", post(length))
                    .route(EXEMPT_PATH, post(|| async { "received" }))
                    .layer(hardening);
                probe(&app, &set, &case, &mut checked).await;
            }
        }
    }
    // Both sides were exercised.
    assert!(
        built > 150 && refused > 150,
        "built {built}, refused {refused}"
    );
    // And the CORS lists allowed preflights (about ten of each), a route took a larger body
    // and one left out of the limit was sent past the burst.
    assert!(
        checked.preflights_allowed.iter().all(|n| *n >= 5)
            && checked.larger_bodies >= 5
            && checked.past_the_burst >= 5,
        "{checked:?}"
    );
}

/// The length of the body, as the probes' routes answer.
async fn length(body: Bytes) -> String {
    body.len().to_string()
}
