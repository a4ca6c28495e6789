//! Randomised bad input over TCP: a few thousand malformed or hostile HTTP/1.1 requests,
//! built by a fixed-seed PRNG from random mutations of valid ones, to a strict app served by
//! `hardening_core::Server` and by `axum::serve`. Every answer must be sensible (no 5xx but
//! the deliberate panic's 500, the timeouts' and the 501 for a transfer coding other than
//! chunked), every error an RFC 9457 problem with its
//! request id (or one of hyper's documented bare answers: 400, 414, 431 with an empty body),
//! no body may carry internals or echo the input at length, nothing may panic but the
//! deliberate route, and the servers keep serving.
//!
//! `BAD_INPUT_FUZZ_SEED` and `BAD_INPUT_FUZZ_COUNT` run other seeds or more requests;
//! `BAD_INPUT_FUZZ_ONLY=<index>` replays one request and prints its exchange.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Form, Path, Query};
use axum::routing::{get, post};
use axum::{Json, Router};
use hardening_auth::{AuthLayer, Authenticated, JwtVerifier};
use hardening_core::ratelimit::{Policy, Quota, RateLimiter};
use hardening_core::{Cors, Hardening, Server};
use hardening_errors::Valid;
use hardening_tests::jwt::{hs256_token, unix_now};
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SEED: u64 = 0x005e_ed0f_bad1_9457;
const COUNT: usize = 3000;
const SECRET: &[u8] = b"Fz8kQ2wL7nX4vR9tP1yH6uJ3sD5gA0cB-fuzz";
/// The request timeout: the slow route's answer, and a body that stops arriving.
const TIMEOUT: Duration = Duration::from_secs(2);
/// How long one exchange may take before it counts as a hang.
const EXCHANGE_DEADLINE: Duration = Duration::from_secs(8);
const WORKERS: usize = 8;
/// The deliberate panic's message; any other panic is a finding.
const DELIBERATE: &str = "deliberate panic: password=hunter2 at src/db.rs:42";
const ORIGIN: &str = "https://app.example.com";

/// Text no response body may hold.
const INTERNALS: &[&str] = &[
    "panicked",
    "src/",
    ".rs:",
    "thread '",
    "serde",
    "hyper::",
    "axum::",
    "tokio::",
    "backtrace",
    "hunter2",
    "deliberate",
    "RUST_",
    "Failed to ",
    "Cannot parse",
];

// ---------------------------------------------------------------------------------------------
// The app.

#[derive(Debug, Deserialize, garde::Validate)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct NewNote {
    #[garde(length(min = 1, max = 100))]
    title: String,
    #[garde(range(min = 1, max = 5))]
    stars: u8,
    #[garde(length(max = 4), inner(length(max = 10)))]
    tags: Vec<String>,
}

#[derive(Debug, Deserialize, garde::Validate)]
#[allow(dead_code)]
struct Labels {
    #[garde(dive)]
    labels: HashMap<String, Label>,
}

#[derive(Debug, Deserialize, garde::Validate)]
#[allow(dead_code)]
struct Label {
    #[garde(length(max = 3))]
    v: String,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Item {
    name: String,
    qty: u32,
    price: Option<f64>,
    nested: Option<Box<Item>>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Search {
    q: String,
    limit: u32,
    page: Option<u16>,
}

fn app() -> Router {
    let verifier = JwtVerifier::builder()
        .hmac(None, Algorithm::HS256, SECRET)
        .unwrap()
        .issuer("fuzz")
        .audience("fuzz-api")
        .build()
        .unwrap();
    let lots = NonZeroU32::new(1_000_000).unwrap();
    let hardening = Hardening::strict()
        .cors(Cors::allow_origins([ORIGIN]).unwrap())
        .allowed_hosts(["localhost", "api.example.com"])
        .unwrap()
        .timeout(TIMEOUT)
        .unwrap()
        // Every request comes from 127.0.0.1: the default 100 a minute would answer most 429.
        .rate_limit(RateLimiter::new([Policy::per_client_ip(
            "per-ip",
            Quota::per_minute(lots).burst(lots),
        )]))
        .unwrap();
    Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route(
            "/notes",
            post(|Valid(Json(_)): Valid<Json<NewNote>>| async {
                (http::StatusCode::CREATED, "created")
            }),
        )
        .route(
            "/labels",
            post(|Valid(Json(_)): Valid<Json<Labels>>| async { "labelled" }),
        )
        .route("/items", post(|Json(_): Json<Item>| async { "item" }))
        .route(
            "/items/{id}",
            get(|Path(id): Path<u64>| async move { format!("item {id}") })
                .delete(|Path(_): Path<u64>| async { http::StatusCode::NO_CONTENT }),
        )
        .route(
            "/any",
            post(|Json(v): Json<serde_json::Value>| async move { v.is_object().to_string() }),
        )
        .route(
            "/search",
            get(|Query(s): Query<Search>| async move { s.limit.to_string() }),
        )
        .route("/form", post(|Form(_): Form<Search>| async { "form" }))
        .route(
            "/upload",
            post(|body: bytes::Bytes| async move { body.len().to_string() }),
        )
        .route(
            "/me",
            get(|user: Authenticated| async move { user.principal.subject.len().to_string() })
                .layer(AuthLayer::new(verifier)),
        )
        .route(
            "/panic",
            get(|| async {
                if true {
                    panic!("{DELIBERATE}");
                }
                "unreachable"
            }),
        )
        .route("/slow", get(std::future::pending::<&'static str>))
        .layer(hardening)
}

fn valid_token() -> String {
    let now = unix_now();
    let claims = serde_json::json!({
        "sub": "user-1", "iss": "fuzz", "aud": "fuzz-api", "iat": now, "exp": now + 3600,
    });
    hs256_token(SECRET, claims)
}

// ---------------------------------------------------------------------------------------------
// The PRNG: fastrand's, seeded per request from the run's seed and the request's index, so
// that each request depends on those alone, whatever order the workers take them in.

/// fastrand's generator, one per case (from the run's seed and the case's index), with the
/// picks the requests use.
struct Rng(fastrand::Rng);

impl Rng {
    fn new(seed: u64, index: u64) -> Self {
        Self(fastrand::Rng::with_seed(
            seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        ))
    }

    fn below(&mut self, n: usize) -> usize {
        self.0.usize(..n)
    }

    fn range(&mut self, lo: usize, hi: usize) -> usize {
        self.0.usize(lo..=hi)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.0.u64(..100) < percent
    }

    fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }

    fn alnum(&mut self, len: usize) -> String {
        (0..len).map(|_| self.0.alphanumeric()).collect()
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.0.u8(..)).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Requests.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `content-length` of the body, added when serialising (none for an empty GET).
    Auto,
    /// The mutation wrote the framing headers and the body bytes itself.
    Raw,
}

#[derive(Debug, Clone)]
struct Req {
    method: Vec<u8>,
    target: Vec<u8>,
    version: Vec<u8>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<u8>,
    framing: Framing,
    /// Add `connection: close`.
    close: bool,
    /// Close the sending half after the request.
    half_close: bool,
    /// Send the head, pause, then the body (as a client waiting for 100 Continue would).
    pause_before_body: bool,
    /// Send a normal request after this one on the same connection.
    pipeline: bool,
    /// The body stops arriving and the connection stays open: the request may time out.
    stalls: bool,
    /// A client's `x-request-id`, never to be echoed.
    sent_request_id: Option<String>,
    /// Random text put in the request; no body may echo it.
    marker: String,
    /// What was done to it.
    tags: Vec<String>,
}

impl Req {
    fn new(method: &str, target: &str, marker: String) -> Self {
        Self {
            method: method.as_bytes().to_vec(),
            target: target.as_bytes().to_vec(),
            version: b"HTTP/1.1".to_vec(),
            headers: vec![
                (b"host".to_vec(), b"localhost".to_vec()),
                (b"user-agent".to_vec(), b"fuzz/1".to_vec()),
                (b"accept".to_vec(), b"*/*".to_vec()),
            ],
            body: Vec::new(),
            framing: Framing::Auto,
            close: true,
            half_close: false,
            pause_before_body: false,
            pipeline: false,
            stalls: false,
            sent_request_id: None,
            marker,
            tags: Vec::new(),
        }
    }

    fn json(mut self, body: &str) -> Self {
        self.set_header("content-type", b"application/json");
        self.body = body.as_bytes().to_vec();
        self
    }

    fn set_header(&mut self, name: &str, value: &[u8]) {
        self.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case(name.as_bytes()));
        self.headers
            .push((name.as_bytes().to_vec(), value.to_vec()));
    }

    fn add_header(&mut self, name: &[u8], value: &[u8]) {
        self.headers.push((name.to_vec(), value.to_vec()));
    }

    fn remove_header(&mut self, name: &str) {
        self.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case(name.as_bytes()));
    }

    /// Makes it a GET of `target`, without a body.
    fn get(&mut self, target: Vec<u8>) {
        self.method = b"GET".to_vec();
        self.target = target;
        self.body.clear();
        self.remove_header("content-type");
    }

    fn path(&self) -> String {
        String::from_utf8_lossy(&self.target).into_owned()
    }

    fn is_method(&self, m: &str) -> bool {
        self.method == m.as_bytes()
    }

    /// Whether its `Transfer-Encoding` names a coding other than `chunked` (which `Hardening`
    /// answers 501, RFC 9112 §6.1).
    fn names_a_coding_other_than_chunked(&self) -> bool {
        self.headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case(b"transfer-encoding"))
            .flat_map(|(_, value)| value.split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
            .any(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case(b"chunked"))
    }

    /// The head and the body, as sent.
    fn serialize(&self) -> (Vec<u8>, Vec<u8>) {
        let mut head = Vec::new();
        head.extend_from_slice(&self.method);
        head.push(b' ');
        head.extend_from_slice(&self.target);
        if !self.version.is_empty() {
            head.push(b' ');
            head.extend_from_slice(&self.version);
        }
        head.extend_from_slice(b"\r\n");
        for (name, value) in &self.headers {
            head.extend_from_slice(name);
            if !name.ends_with(b"\n") {
                head.extend_from_slice(b": ");
                head.extend_from_slice(value);
                head.extend_from_slice(b"\r\n");
            }
        }
        if self.framing == Framing::Auto && (!self.body.is_empty() || self.is_method("POST")) {
            head.extend_from_slice(format!("content-length: {}\r\n", self.body.len()).as_bytes());
        }
        if self.close {
            head.extend_from_slice(b"connection: close\r\n");
        }
        head.extend_from_slice(b"\r\n");
        (head, self.body.clone())
    }

    /// A short description for a failure report: the request with long runs elided.
    fn describe(&self) -> String {
        let (head, body) = self.serialize();
        let mut out = format!("[{}] ", self.tags.join(", "));
        out.push_str(&elide(&head));
        out.push_str(&elide(&body));
        if self.half_close {
            out.push_str(" <half-close>");
        }
        if self.pause_before_body {
            out.push_str(" <pause before body>");
        }
        if self.pipeline {
            out.push_str(" <+ pipelined GET /ok>");
        }
        out
    }
}

fn elide(bytes: &[u8]) -> String {
    let text = format!("{}", bytes.escape_ascii());
    if text.len() > 600 {
        format!(
            "{}…({} bytes)…{}",
            &text[..400],
            bytes.len(),
            &text[text.len() - 150..]
        )
    } else {
        text
    }
}

/// A valid request to one of the routes.
fn base(rng: &mut Rng, marker: String, token: &str) -> Req {
    match rng.below(100) {
        0..=7 => Req::new("GET", "/ok", marker),
        8..=21 => Req::new("POST", "/notes", marker)
            .json(r#"{"title":"hello","stars":3,"tags":["a","b"]}"#),
        22..=27 => Req::new("POST", "/labels", marker).json(r#"{"labels":{"colour":{"v":"red"}}}"#),
        28..=39 => Req::new("POST", "/items", marker)
            .json(r#"{"name":"widget","qty":2,"price":1.5,"nested":{"name":"part","qty":1}}"#),
        40..=45 => Req::new("POST", "/any", marker).json(r#"{"a":[1,2,{"b":null}]}"#),
        46..=55 => Req::new("GET", "/items/42", marker),
        56..=58 => Req::new("DELETE", "/items/42", marker),
        59..=68 => Req::new("GET", "/search?q=hello&limit=10&page=2", marker),
        69..=72 => {
            let mut r = Req::new("POST", "/form", marker);
            r.set_header("content-type", b"application/x-www-form-urlencoded");
            r.body = b"q=hello&limit=3".to_vec();
            r
        }
        73..=77 => {
            let mut r = Req::new("POST", "/upload", marker);
            r.set_header("content-type", b"application/octet-stream");
            r.body = b"some bytes".to_vec();
            r
        }
        78..=89 => {
            let mut r = Req::new("GET", "/me", marker);
            r.set_header("authorization", format!("Bearer {token}").as_bytes());
            r
        }
        90..=91 => Req::new("GET", "/panic", marker),
        92 => Req::new("GET", "/slow", marker),
        93..=94 => Req::new("GET", "/healthz", marker),
        95 => Req::new("GET", "/readyz", marker),
        _ => Req::new("GET", "/no/such/route", marker),
    }
}

fn tag(req: &mut Req, tag: impl Into<String>) {
    req.tags.push(tag.into());
}

fn mutate(rng: &mut Rng, req: &mut Req, token: &str) {
    match rng.below(16) {
        0 => mutate_method(rng, req),
        1 | 2 => mutate_target(rng, req),
        3 => mutate_version(rng, req),
        4 | 5 => mutate_framing(rng, req),
        6 => mutate_host(rng, req),
        7 => mutate_origin(rng, req),
        8 => mutate_authorization(rng, req, token),
        9 => mutate_content_type(rng, req),
        10 | 11 => mutate_body(rng, req),
        12 | 13 => mutate_headers(rng, req),
        14 => mutate_client(rng, req),
        _ => mutate_params(rng, req),
    }
}

fn mutate_method(rng: &mut Rng, req: &mut Req) {
    let method = rng.pick(&[
        "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT", "PROPFIND",
        "FOO", "get", "Post", "M-SEARCH", "G\x01T", "GE T", "", "GET/", "\u{e9}T",
    ]);
    let method = if rng.chance(5) {
        "A".repeat(rng.range(100, 20_000))
    } else {
        method.to_owned()
    };
    tag(req, format!("method {:.20}", method.escape_default()));
    req.method = method.into_bytes();
}

fn mutate_target(rng: &mut Rng, req: &mut Req) {
    let m = &req.marker;
    let target: Vec<u8> = match rng.below(22) {
        0 => b"*".to_vec(),
        1 => {
            req.method = b"OPTIONS".to_vec();
            b"*".to_vec()
        }
        2 => {
            req.method = b"CONNECT".to_vec();
            rng.pick(&[
                "api.example.com:443",
                "localhost:80",
                "evil.example:443",
                "[::1]:22",
                "localhost",
                "/ok",
            ])
            .as_bytes()
            .to_vec()
        }
        3 => format!(
            "{}{}",
            rng.pick(&[
                "http://localhost",
                "http://api.example.com",
                "https://localhost:1",
                "http://evil.example",
                "http://user:pass@localhost",
                "ftp://localhost",
                "http://LOCALHOST.",
                "http://[::1]",
            ]),
            req.path()
        )
        .into_bytes(),
        4 => {
            let mut t = req.target.clone();
            t.push(b'/');
            t.extend({
                let n = rng.range(1, 8);
                rng.bytes(n)
            });
            t
        }
        5 => format!("{}?{}", req.path(), "%FF%FE%00").into_bytes(),
        6 => {
            let mut t = req.target.clone();
            t.extend_from_slice(if req.target.contains(&b'?') {
                b"&"
            } else {
                b"?"
            });
            t.extend_from_slice(b"q=\xff\xfe&x=\x80");
            t
        }
        7 => format!(
            "/items/{}",
            rng.pick(&["..%2F..%2Fetc%2Fpasswd", "%2e%2e", "..", "."])
        )
        .into_bytes(),
        8 => rng
            .pick(&[
                "//ok", "/ok/", "/./ok", "/a/../ok", "/OK", "/ok%20", "/ok;x=1", "\\ok",
            ])
            .as_bytes()
            .to_vec(),
        9 => format!("{}#fragment", req.path()).into_bytes(),
        10 => b"".to_vec(),
        11 => format!("/{m}/{m}").into_bytes(),
        12 => format!("/items/{m}").into_bytes(),
        13 => format!("/search?q=a&limit=1&{m}={m}").into_bytes(),
        14 => {
            // Long, under and over hyper's 65 534-byte limit.
            let len = *rng.pick(&[&1000usize, &8000, &60_000, &65_600, &100_000]);
            format!("/ok?pad={}", "a".repeat(len)).into_bytes()
        }
        15 => format!("/{}", "a/".repeat(rng.range(100, 5000))).into_bytes(),
        16 => b"/ok?".to_vec(),
        17 => b"ok".to_vec(),
        18 => b"/ok HTTP/1.1\r\nX: y".to_vec(),
        19 => b"/\x00ok".to_vec(),
        20 => b"/%".to_vec(),
        _ => b"/\xc3\xa9t\xc3\xa9".to_vec(),
    };
    tag(
        req,
        format!("target {:.40}", String::from_utf8_lossy(&target)),
    );
    req.target = target;
}

fn mutate_params(rng: &mut Rng, req: &mut Req) {
    if rng.chance(50) {
        let id = rng.pick(&[
            "99999999999999999999999999",
            "18446744073709551615",
            "18446744073709551616",
            "-1",
            "-0",
            "+5",
            "0x10",
            "1e3",
            "1.0",
            "%2D1",
            "%20",
            "%FF",
            "%C3%A9",
            "%00",
            "\u{661}",
            "NaN",
            "0000000000000000000000000001",
            "",
            "1%2F2",
        ]);
        tag(req, format!("id {id}"));
        let method = if rng.chance(80) { "GET" } else { "DELETE" };
        req.method = method.as_bytes().to_vec();
        req.target = format!("/items/{id}").into_bytes();
        req.body.clear();
        req.remove_header("content-type");
    } else {
        let m = req.marker.clone();
        let query = match rng.below(12) {
            0 => format!(
                "q=a&limit={}",
                rng.pick(&["-1", "4294967296", "1e3", "%FF", "", "0x1"])
            ),
            1 => "limit=1".to_owned(),
            2 => format!("q={m}&limit={m}"),
            3 => format!("q=a&limit=1&page={}", rng.pick(&["70000", "-3", "x"])),
            4 => (0..rng.range(40, 120))
                .map(|i| format!("p{i}={i}"))
                .collect::<Vec<_>>()
                .join("&"),
            5 => format!("q=a&limit=1{}", "&".repeat(rng.range(10, 3000))),
            6 => "q=a&q=b&limit=1&limit=2".to_owned(),
            7 => "q=%&limit=%G1".to_owned(),
            8 => "=&==&q&limit".to_owned(),
            9 => format!("q=a&limit=1&{m}=1"),
            10 => format!("q=a&limit=1&x={}", "%41".repeat(rng.range(100, 5000))),
            _ => "q[]=a&limit[x]=1".to_owned(),
        };
        tag(req, format!("query {:.40}", query));
        req.get(format!("/search?{query}").into_bytes());
    }
}

fn mutate_version(rng: &mut Rng, req: &mut Req) {
    let version = rng.pick(&[
        "HTTP/1.0",
        "HTTP/2.0",
        "HTTP/0.9",
        "HTTP/1.2",
        "HTTP/9.9",
        "http/1.1",
        "HTTP/1.1 ",
        "HTTP/1",
        "HTTP/1.10",
        "",
        "HTTX/1.1",
        "HTTP/1.1\x00",
    ]);
    tag(req, format!("version {:?}", version));
    req.version = version.as_bytes().to_vec();
}

fn chunked(body: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let n = rng.range(1, rest.len().min(64));
        out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn mutate_framing(rng: &mut Rng, req: &mut Req) {
    if req.body.is_empty() {
        req.body = br#"{"name":"x","qty":1}"#.to_vec();
    }
    let body = req.body.clone();
    let len = body.len();
    req.framing = Framing::Raw;
    req.remove_header("content-length");
    req.remove_header("transfer-encoding");
    match rng.below(20) {
        0 => {
            tag(req, "chunked");
            req.add_header(b"transfer-encoding", b"chunked");
            req.body = chunked(&body, rng);
        }
        1 => {
            let n = if rng.chance(50) { len } else { len + 1 };
            tag(req, format!("content-length twice ({len}, {n})"));
            req.add_header(b"content-length", len.to_string().as_bytes());
            req.add_header(b"content-length", n.to_string().as_bytes());
        }
        2 => {
            tag(req, "content-length and chunked");
            req.add_header(b"content-length", len.to_string().as_bytes());
            req.add_header(b"transfer-encoding", b"chunked");
            req.body = chunked(&body, rng);
        }
        3 => {
            tag(req, "content-length and chunked, body by length");
            req.add_header(b"transfer-encoding", b"chunked");
            req.add_header(b"content-length", len.to_string().as_bytes());
        }
        4 => {
            let te = rng.pick(&[
                "gzip",
                "chunked, gzip",
                "gzip, chunked",
                "identity",
                "Chunked",
                " chunked",
                "chunked ",
                "chunked, chunked",
                "xchunked",
                "chunked;q=1",
                "",
            ]);
            tag(req, format!("transfer-encoding {te:?}"));
            req.add_header(b"transfer-encoding", te.as_bytes());
            req.body = chunked(&body, rng);
        }
        5 => {
            tag(req, "transfer-encoding twice");
            req.add_header(b"transfer-encoding", b"chunked");
            req.add_header(b"transfer-encoding", b"chunked");
            req.body = chunked(&body, rng);
        }
        6 => {
            let v = rng.pick(&[
                "-1",
                "+5",
                "0x10",
                " 5",
                "5,5",
                "5, 6",
                "99999999999999999999999",
                "1e3",
                "",
                "abc",
                "18446744073709551615",
                "٣",
            ]);
            tag(req, format!("content-length {v:?}"));
            req.add_header(b"content-length", v.as_bytes());
        }
        7..=9 => {
            // Bad chunked encodings.
            let bad: &[u8] = match rng.below(12) {
                0 => b"zz\r\nhello\r\n0\r\n\r\n",
                1 => b"FFFFFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n",
                2 => b"5\r\nhello\r\n0\r\n",
                3 => b"5;ext=\"unterminated\r\nhello\r\n0\r\n\r\n",
                4 => b"5 \r\nhello\r\n0\r\n\r\n",
                5 => b"-5\r\nhello\r\n0\r\n\r\n",
                6 => b"a\r\nhello\r\n0\r\n\r\n",
                7 => b"5\r\nhelloXX0\r\n\r\n",
                8 => b"0\r\nX-Trailer: \xff\x00\r\n\r\n",
                9 => b"5\nhello\n0\n\n",
                10 => b"3\r\n{\"a\r\n0\r\nContent-Length: 5\r\n\r\n",
                _ => b"\r\n5\r\nhello\r\n0\r\n\r\n",
            };
            tag(req, format!("bad chunked {}", bad.escape_ascii()));
            req.add_header(b"transfer-encoding", b"chunked");
            req.body = bad.to_vec();
        }
        10 | 11 => {
            // Cut short: declared longer than sent.
            let declared = len + rng.range(1, 10_000);
            req.add_header(b"content-length", declared.to_string().as_bytes());
            if rng.chance(50) {
                tag(req, format!("cut short ({len} of {declared}), half-closed"));
                req.half_close = true;
            } else {
                tag(req, format!("cut short ({len} of {declared}), stalls"));
                req.stalls = true;
            }
        }
        12 => {
            // Chunked and cut short.
            let mut c = chunked(&body, rng);
            c.truncate(rng.below(c.len()));
            req.add_header(b"transfer-encoding", b"chunked");
            req.body = c;
            if rng.chance(50) {
                tag(req, "chunked cut short, half-closed");
                req.half_close = true;
            } else {
                tag(req, "chunked cut short, stalls");
                req.stalls = true;
            }
        }
        13 => {
            // Declared shorter than sent: the rest is another "request".
            let declared = rng.below(len);
            tag(req, format!("content-length {declared} of {len}"));
            req.add_header(b"content-length", declared.to_string().as_bytes());
        }
        14 => {
            let size = rng.range(1024 * 1024 + 1, 1536 * 1024);
            tag(req, format!("body of {size} bytes"));
            req.add_header(b"content-length", size.to_string().as_bytes());
            req.body = vec![b' '; size];
        }
        15 => {
            let size = rng.range(1024 * 1024 + 1, 1200 * 1024);
            tag(req, format!("chunked body of {size} bytes"));
            req.add_header(b"transfer-encoding", b"chunked");
            let chunk = 64 * 1024;
            let mut out = Vec::new();
            let mut left = size;
            while left > 0 {
                let n = left.min(chunk);
                out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                out.extend(std::iter::repeat_n(b' ', n));
                out.extend_from_slice(b"\r\n");
                left -= n;
            }
            out.extend_from_slice(b"0\r\n\r\n");
            req.body = out;
        }
        16 => {
            tag(req, "huge declared length, no body");
            req.add_header(b"content-length", b"1000000000000");
            req.body.clear();
            req.half_close = rng.chance(50);
            req.stalls = !req.half_close;
        }
        17 => {
            tag(req, "no framing, body follows");
        }
        18 => {
            tag(req, "chunked with extensions and trailers");
            req.add_header(b"transfer-encoding", b"chunked");
            let mut out = format!("{:x};a=b;c=\"d\"\r\n", len).into_bytes();
            out.extend_from_slice(&body);
            out.extend_from_slice(b"\r\n0;z\r\nX-Trailer: 1\r\nContent-Length: 99\r\n\r\n");
            req.body = out;
        }
        _ => {
            tag(req, "chunked, body-shaped smuggle");
            req.add_header(b"transfer-encoding", b"chunked");
            req.add_header(b"content-length", b"4");
            req.body = b"5c\r\nGPOST /smuggled HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 15\r\n\r\nx=1\r\n0\r\n\r\n"
                .to_vec();
        }
    }
}

fn mutate_host(rng: &mut Rng, req: &mut Req) {
    req.remove_header("host");
    let choice = rng.below(16);
    let values: Vec<Vec<u8>> = match choice {
        0 => vec![],
        1 => vec![b"localhost".to_vec(), b"localhost".to_vec()],
        2 => vec![b"localhost".to_vec(), b"evil.example".to_vec()],
        3 => vec![b"evil.example".to_vec()],
        4 => vec![b"localhost:99999".to_vec()],
        5 => vec![b"user@localhost".to_vec()],
        6 => vec![b"localhost\xff".to_vec()],
        7 => vec![b"".to_vec()],
        8 => vec![b"127.0.0.1".to_vec()],
        9 => vec![b"LOCALHOST.".to_vec()],
        10 => vec![b"localhost/ok".to_vec()],
        11 => vec![b"api.example.com:443".to_vec()],
        12 => vec![b"[::1]".to_vec()],
        13 => vec![format!("{}.example.com", req.marker).into_bytes()],
        14 => vec![b"localhost, evil.example".to_vec()],
        _ => vec![b" localhost ".to_vec()],
    };
    tag(
        req,
        format!(
            "host {:?}",
            values
                .iter()
                .map(|v| v.escape_ascii().to_string())
                .collect::<Vec<_>>()
        ),
    );
    for v in values {
        req.add_header(b"host", &v);
    }
}

fn mutate_origin(rng: &mut Rng, req: &mut Req) {
    let origin = rng.pick(&[
        ORIGIN,
        "https://evil.example",
        "null",
        "https://app.example.com/path",
        "https://APP.example.com",
        "http://app.example.com",
        "https://app.example.com:443",
        "https://app.example.com.evil.example",
        "",
        "*",
    ]);
    tag(req, format!("origin {origin:?}"));
    req.set_header("origin", origin.as_bytes());
    match rng.below(6) {
        0 => {
            tag(req, "second origin");
            req.add_header(b"origin", b"https://evil.example");
        }
        1 | 2 => {
            let method = rng.pick(&["GET", "POST", "DELETE", "TRACE", "BREW", ""]);
            tag(req, format!("preflight {method:?}"));
            req.method = b"OPTIONS".to_vec();
            req.set_header("access-control-request-method", method.as_bytes());
            if rng.chance(50) {
                let headers = rng.pick(&[
                    "content-type",
                    "authorization, x-custom",
                    ",,,",
                    "x-\u{e9}",
                    "content-type\x00",
                ]);
                req.set_header("access-control-request-headers", headers.as_bytes());
            }
        }
        3 => {
            tag(req, "cookie, cross-site");
            req.set_header("cookie", b"session=abc");
            req.set_header("sec-fetch-site", b"cross-site");
        }
        4 => {
            tag(req, "origin not UTF-8");
            req.set_header("origin", b"https://\xe9vil.example");
        }
        _ => {}
    }
}

fn mutate_authorization(rng: &mut Rng, req: &mut Req, token: &str) {
    let m = req.marker.clone();
    let mut tampered = token.to_owned();
    let at = tampered.len() - 5;
    tampered.replace_range(
        at..at + 1,
        if &token[at..at + 1] == "A" { "B" } else { "A" },
    );
    let values: Vec<Vec<u8>> = match rng.below(18) {
        0 => vec![b"Bearer".to_vec()],
        1 => vec![b"Bearer ".to_vec()],
        2 => vec![format!("Bearer {m}").into_bytes()],
        3 => vec![format!("Bearer {m}.{m}.{m}").into_bytes()],
        4 => vec![format!("Bearer {tampered}").into_bytes()],
        5 => vec![format!("bearer {token}").into_bytes()],
        6 => vec![format!("Basic {m}").into_bytes()],
        7 => vec![
            format!("Bearer {token}").into_bytes(),
            b"Basic dXNlcjpwYXNz".to_vec(),
        ],
        8 => vec![format!("Bearer {token}, Basic dXNlcjpwYXNz").into_bytes()],
        9 => vec![format!("Bearer  {token}").into_bytes()],
        10 => vec![b"Bearer \xff\xfe.\x80.\x81".to_vec()],
        11 => vec![format!("Bearer {}", "a".repeat(rng.range(1000, 60_000))).into_bytes()],
        12 => vec![format!("Bearer {token}"), format!("Bearer {token}")]
            .into_iter()
            .map(String::into_bytes)
            .collect(),
        13 => vec![b"Bearer e30.e30.".to_vec()],
        14 => vec![b"Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.".to_vec()],
        15 => vec![format!("Digest username=\"{m}\"").into_bytes()],
        16 => vec![format!("Bearer {token}{m}").into_bytes()],
        _ => vec![b"".to_vec()],
    };
    tag(
        req,
        format!(
            "authorization {:.60}",
            values
                .iter()
                .map(|v| format!("{:.50}", v.escape_ascii().to_string()))
                .collect::<Vec<_>>()
                .join(" | ")
        ),
    );
    req.remove_header("authorization");
    for v in values {
        req.add_header(b"authorization", &v);
    }
    if rng.chance(50) {
        req.get(b"/me".to_vec());
    }
}

fn mutate_content_type(rng: &mut Rng, req: &mut Req) {
    let ct = rng.pick(&[
        "",
        "text/plain",
        "application/json; charset=utf-16",
        "application/json;charset=\"utf-8\"",
        "APPLICATION/JSON",
        "application/json-patch+json",
        "application/vnd.api+json",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=",
        "application/json\x00",
        "application/\u{e9}json",
        "application",
        "*/*",
    ]);
    match rng.below(4) {
        0 => {
            tag(req, "no content-type");
            req.remove_header("content-type");
        }
        1 => {
            tag(req, format!("content-type twice, then {ct:?}"));
            req.add_header(b"content-type", ct.as_bytes());
        }
        _ => {
            tag(req, format!("content-type {ct:?}"));
            req.set_header("content-type", ct.as_bytes());
        }
    }
}

fn deep(open: &str, close: &str, depth: usize) -> String {
    format!("{}{}", open.repeat(depth), close.repeat(depth))
}

fn mutate_body(rng: &mut Rng, req: &mut Req) {
    let m = req.marker.clone();
    let path = req.path();
    if !(path.starts_with("/notes")
        || path.starts_with("/items")
        || path.starts_with("/labels")
        || path.starts_with("/any"))
        || !req.is_method("POST")
    {
        let target = rng.pick(&["/notes", "/items", "/labels", "/any"]);
        req.method = b"POST".to_vec();
        req.target = target.as_bytes().to_vec();
        req.set_header("content-type", b"application/json");
    }
    let depth = *rng.pick(&[&64usize, &127, &128, &129, &500, &5000, &100_000]);
    let body: Vec<u8> = match rng.below(30) {
        0 => br#"{"title":5,"stars":"three","tags":"x"}"#.to_vec(),
        1 => format!(r#"{{"title":"t","stars":3,"tags":[],"{m}":1}}"#).into_bytes(),
        2 => {
            let mut b = b"\xef\xbb\xbf".to_vec();
            b.extend_from_slice(br#"{"title":"t","stars":3,"tags":[]}"#);
            b
        }
        3 => format!(r#"{{"title":"t","stars":3,"tags":[]}} {m}"#).into_bytes(),
        4 => deep("[", "]", depth).into_bytes(),
        5 => deep(r#"{"a":"#, "}", depth).into_bytes(),
        6 => {
            let mut s = String::new();
            for _ in 0..depth.min(5000) {
                s.push_str(r#"{"name":"n","qty":1,"nested":"#);
            }
            s.push_str("null");
            s.push_str(&"}".repeat(depth.min(5000)));
            s.into_bytes()
        }
        7 => br#"{"name":"x","qty":1e400}"#.to_vec(),
        8 => br#"{"name":"x","qty":-1}"#.to_vec(),
        9 => br#"{"name":"x","qty":99999999999999999999999999999}"#.to_vec(),
        10 => br#"{"name":"x","qty":1,"price":NaN}"#.to_vec(),
        11 => br#"{"name":"x","name":"y","qty":1}"#.to_vec(),
        12 => br#"{"name":"\uD800","qty":1}"#.to_vec(),
        13 => b"{\"name\":\"a\x01b\",\"qty\":1}".to_vec(),
        14 => b"{\"name\":\"\xff\xfe\",\"qty\":1}".to_vec(),
        15 => Vec::new(),
        16 => b"null".to_vec(),
        17 => format!(r#""{m}""#).into_bytes(),
        18 => format!(r#"{{"name":{{"{m}":"{m}"}},"qty":"{m}"}}"#).into_bytes(),
        19 => format!(r#"{{"labels":{{"{m}":{{"v":"{m}"}}}}}}"#).into_bytes(),
        20 => format!(r#"{{"labels":{{"{m}":{{"v":1}}}}}}"#).into_bytes(),
        21 => {
            // Many invalid labels, each echoing its key if pointers do.
            let n = rng.range(10, 2000);
            let labels = (0..n)
                .map(|i| format!(r#""{m}{i}":{{"v":"long"}}"#))
                .collect::<Vec<_>>()
                .join(",");
            format!(r#"{{"labels":{{{labels}}}}}"#).into_bytes()
        }
        22 => format!(
            r#"{{"title":"{}","stars":9,"tags":["{m}"]}}"#,
            "x".repeat(5000)
        )
        .into_bytes(),
        23 => br#"{"title":"t","stars":3.5,"tags":[1,2,3]}"#.to_vec(),
        24 => br#"{"title":"t","stars":3,"tags":[],}"#.to_vec(),
        25 => br#"{'title':'t'}"#.to_vec(),
        26 => format!(r#"{{"title":"\{m}","stars":3,"tags":[]}}"#).into_bytes(),
        27 => {
            let n = rng.range(1, 200);
            rng.bytes(n)
        }
        28 => format!(r#"{{"{}":1}}"#, "k".repeat(rng.range(100, 100_000))).into_bytes(),
        _ => br#"{"labels":{"a":{"v":"ok"}},"labels":{}}"#.to_vec(),
    };
    tag(req, format!("body {}", elide(&body[..body.len().min(60)])));
    req.body = body;
}

fn mutate_headers(rng: &mut Rng, req: &mut Req) {
    let m = req.marker.clone();
    match rng.below(20) {
        0 => {
            let n = rng.range(50, 140);
            tag(req, format!("{n} extra headers"));
            for i in 0..n {
                req.add_header(format!("x-h{i}").as_bytes(), b"v");
            }
        }
        1 => {
            let len = *rng.pick(&[&8_000usize, &60_000, &300_000, &500_000]);
            tag(req, format!("header of {len} bytes"));
            req.add_header(b"x-big", "b".repeat(len).as_bytes());
        }
        2 => {
            tag(req, "header not UTF-8");
            let mut v = {
                let n = rng.range(1, 40);
                rng.bytes(n)
            };
            for b in &mut v {
                *b |= 0x80;
            }
            req.add_header(b"x-bytes", &v);
        }
        3 => {
            let v = rng.pick(&[&b"a\x00b"[..], b"a\x01b", b"a\x7fb", b"a\rb", b"\x1b[31m"]);
            tag(req, format!("control byte in header {}", v.escape_ascii()));
            req.add_header(b"x-ctl", v);
        }
        4 => {
            let name = rng.pick(&[
                &b"x y"[..],
                b"",
                b"x(y)",
                b"x:y",
                b"\xff",
                b"x\x00",
                b"content-length ",
            ]);
            tag(req, format!("bad header name {}", name.escape_ascii()));
            req.add_header(name, b"v");
        }
        5 => {
            tag(req, "header line without a colon");
            req.add_header(b"no-colon-here\r\n", b"");
        }
        6 => {
            tag(req, "obs-fold");
            req.add_header(b"x-folded", b"a\r\n b");
        }
        7 => {
            let id = rng.pick(&[
                "0190d2a4-8b5c-7e3f-9a1b-2c3d4e5f6a7b",
                "../../etc",
                "",
                "x\u{e9}",
            ]);
            let id = if rng.chance(50) {
                m.clone()
            } else {
                id.to_owned()
            };
            tag(req, format!("x-request-id {id:.20}"));
            req.add_header(b"x-request-id", id.as_bytes());
            req.sent_request_id = Some(id);
        }
        8 => {
            tag(req, "x-forwarded-for and forwarded");
            req.add_header(b"x-forwarded-for", b"1.2.3.4, ::1, nonsense, \xff");
            req.add_header(b"forwarded", b"for=\"[::1\";proto=https;;;");
            req.add_header(b"x-forwarded-proto", b"https");
        }
        9 => {
            let up = rng.pick(&["websocket", "h2c", "foo/1"]);
            tag(req, format!("upgrade {up}"));
            req.add_header(b"upgrade", up.as_bytes());
            req.add_header(b"connection", b"upgrade");
            req.add_header(b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ==");
            req.add_header(b"sec-websocket-version", b"13");
        }
        10 => {
            tag(req, "huge cookie");
            let cookie = (0..rng.range(10, 3000))
                .map(|i| format!("c{i}={m}"))
                .collect::<Vec<_>>()
                .join("; ");
            req.add_header(b"cookie", cookie.as_bytes());
        }
        11 => {
            let e = rng.pick(&[
                "100-continue",
                "100-Continue",
                "200-ok",
                "",
                "100-continue, x",
            ]);
            tag(req, format!("expect {e:?}"));
            req.add_header(b"expect", e.as_bytes());
            req.pause_before_body = rng.chance(50);
        }
        12 => {
            let c = rng.pick(&[
                &b"keep-alive"[..],
                b"close, keep-alive",
                b"te",
                b"x-secret",
                b"\xff",
            ]);
            tag(req, format!("connection {}", c.escape_ascii()));
            req.add_header(b"connection", c);
        }
        13 => {
            tag(req, "lf line endings");
            req.add_header(b"x-lf: 1\nx-lf2: 2\n", b"");
        }
        14 => {
            let r = rng.pick(&[
                "bytes=0-0,1-1,2-2",
                "bytes=-1",
                "bytes=99999999999999999999-",
            ]);
            tag(req, format!("range {r}"));
            req.add_header(b"range", r.as_bytes());
        }
        15 => {
            let te = rng.pick(&["trailers", "gzip", "chunked"]);
            tag(req, format!("te {te}"));
            req.add_header(b"te", te.as_bytes());
        }
        16 => {
            tag(req, "accept and accept-encoding junk");
            req.add_header(b"accept", b"application/problem+json;q=abc, */*;q=-1");
            req.add_header(b"accept-encoding", b"gzip;q=2, br;q=nan, *");
        }
        17 => {
            tag(req, "header with leading whitespace");
            req.add_header(b" x-leading", b"v");
        }
        18 => {
            tag(req, "max-forwards and via");
            req.add_header(b"max-forwards", b"-1");
            req.add_header(b"via", m.as_bytes());
        }
        _ => {
            tag(req, "sec-fetch navigate cross-site");
            req.add_header(b"sec-fetch-site", b"cross-site");
            req.add_header(b"sec-fetch-mode", b"navigate");
            req.add_header(b"sec-fetch-dest", b"document");
        }
    }
}

fn mutate_client(rng: &mut Rng, req: &mut Req) {
    match rng.below(3) {
        0 => {
            tag(req, "half-close");
            req.half_close = true;
        }
        1 => {
            tag(req, "pipelined");
            req.pipeline = true;
            req.close = false;
        }
        _ => {
            tag(req, "keep-alive");
            req.close = false;
        }
    }
}

fn generate(seed: u64, index: usize, token: &str) -> Req {
    let mut rng = Rng::new(seed, index as u64);
    let marker = format!("Mk{}", rng.alnum(46));
    let mut req = base(&mut rng, marker, token);
    let n = match rng.below(10) {
        0..=5 => 1,
        6..=8 => 2,
        _ => 3,
    };
    for _ in 0..n {
        mutate(&mut rng, &mut req, token);
    }
    req
}

// ---------------------------------------------------------------------------------------------
// Exchanges.

#[derive(Debug, Clone)]
struct Resp {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    raw_head: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    fn closes(&self) -> bool {
        self.header_str("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

#[derive(Debug)]
enum Parsed {
    Complete(Resp, usize),
    Incomplete,
    Invalid(String),
}

/// Parses one response from the front of `buf`. `no_body` for a response to HEAD.
fn parse_response(buf: &[u8], no_body: bool, eof: bool) -> Parsed {
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if eof && !buf.is_empty() {
            Parsed::Invalid("truncated response head".to_owned())
        } else {
            Parsed::Incomplete
        };
    };
    let head = &buf[..head_end];
    let raw_head = String::from_utf8_lossy(head).into_owned();
    let mut lines = head.split(|b| *b == b'\n');
    let status_line = lines.next().unwrap_or_default();
    let status = std::str::from_utf8(status_line)
        .ok()
        .filter(|l| l.starts_with("HTTP/1.1 ") || l.starts_with("HTTP/1.0 "))
        .and_then(|l| l.get(9..12))
        .and_then(|s| s.parse::<u16>().ok());
    let Some(status) = status else {
        return Parsed::Invalid(format!("bad status line {}", status_line.escape_ascii()));
    };
    let mut headers = Vec::new();
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            return Parsed::Invalid(format!("bad header line {}", line.escape_ascii()));
        };
        let name = String::from_utf8_lossy(&line[..colon]).to_ascii_lowercase();
        headers.push((name, line[colon + 1..].trim_ascii().to_vec()));
    }
    let body_start = head_end + 4;
    let mut resp = Resp {
        status,
        headers,
        body: Vec::new(),
        raw_head,
    };
    if no_body || (100..200).contains(&status) || status == 204 || status == 304 {
        return Parsed::Complete(resp, body_start);
    }
    let rest = &buf[body_start..];
    let chunked = resp
        .header_str("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        let mut at = 0;
        let mut body = Vec::new();
        loop {
            let Some(eol) = rest[at..].windows(2).position(|w| w == b"\r\n") else {
                return if eof {
                    Parsed::Invalid("truncated chunked body".to_owned())
                } else {
                    Parsed::Incomplete
                };
            };
            let size_text = String::from_utf8_lossy(&rest[at..at + eol]).into_owned();
            let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
            else {
                return Parsed::Invalid(format!("bad chunk size {size_text:?}"));
            };
            at += eol + 2;
            if size == 0 {
                // Trailers, then an empty line.
                let Some(end) = rest[at..].windows(2).position(|w| w == b"\r\n") else {
                    return Parsed::Incomplete;
                };
                if end != 0 {
                    let Some(end) = rest[at..].windows(4).position(|w| w == b"\r\n\r\n") else {
                        return Parsed::Incomplete;
                    };
                    at += end + 4;
                } else {
                    at += 2;
                }
                resp.body = body;
                return Parsed::Complete(resp, body_start + at);
            }
            if rest.len() < at + size + 2 {
                return if eof {
                    Parsed::Invalid("truncated chunk".to_owned())
                } else {
                    Parsed::Incomplete
                };
            }
            body.extend_from_slice(&rest[at..at + size]);
            at += size + 2;
        }
    }
    if let Some(length) = resp.header_str("content-length") {
        let Ok(length) = length.parse::<usize>() else {
            return Parsed::Invalid(format!("bad content-length {length:?}"));
        };
        if rest.len() < length {
            return if eof {
                Parsed::Invalid(format!("body cut short: {} of {length}", rest.len()))
            } else {
                Parsed::Incomplete
            };
        }
        resp.body = rest[..length].to_vec();
        return Parsed::Complete(resp, body_start + length);
    }
    // Delimited by the connection's end.
    if eof {
        resp.body = rest.to_vec();
        Parsed::Complete(resp, buf.len())
    } else {
        Parsed::Incomplete
    }
}

#[derive(Debug)]
struct Outcome {
    responses: Vec<Resp>,
    /// The server closed (or reset) the connection.
    closed: bool,
    /// Why reading stopped early, if it did.
    trouble: Option<String>,
    elapsed: Duration,
}

async fn exchange(addr: SocketAddr, req: &Req) -> Outcome {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + EXCHANGE_DEADLINE;
    let stream = match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        other => {
            return Outcome {
                responses: Vec::new(),
                closed: true,
                trouble: Some(format!("connect failed: {other:?}")),
                elapsed: started.elapsed(),
            };
        }
    };
    let _ = stream.set_nodelay(true);
    let (head, body) = req.serialize();
    let (mut reader, mut writer) = stream.into_split();
    let pipeline = req.pipeline;
    let pause = req.pause_before_body;
    let half_close = req.half_close;
    // Written on its own task: a server that answers early and stops reading must not keep
    // this side from reading the answer.
    let write = tokio::spawn(async move {
        let _ = writer.write_all(&head).await;
        if pause {
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        let _ = writer.write_all(&body).await;
        if pipeline {
            let _ = writer
                .write_all(b"GET /ok HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
                .await;
        }
        if half_close {
            let _ = writer.shutdown().await;
        }
        // Hold the writer (the connection stays open) until the reader is done.
        std::future::pending::<()>().await;
    });
    let head_only = req.is_method("HEAD");
    let mut buf = Vec::new();
    let mut responses = Vec::new();
    let mut consumed = 0;
    let mut closed = false;
    let mut trouble = None;
    let mut chunk = vec![0u8; 64 * 1024];
    let expected = 1 + usize::from(pipeline);
    loop {
        // Parse what is there.
        loop {
            let no_body = head_only && responses.is_empty();
            match parse_response(&buf[consumed..], no_body, closed) {
                Parsed::Complete(resp, used) => {
                    consumed += used;
                    if (100..200).contains(&resp.status) && resp.status != 101 {
                        continue; // interim
                    }
                    let closes = resp.closes();
                    let switching = resp.status == 101;
                    responses.push(resp);
                    if closes || switching {
                        break;
                    }
                }
                Parsed::Incomplete => break,
                Parsed::Invalid(why) => {
                    trouble = Some(why);
                    break;
                }
            }
        }
        let done = responses.len() >= expected
            || responses
                .last()
                .is_some_and(|r| r.closes() || r.status == 101);
        if done || closed || trouble.is_some() {
            break;
        }
        match tokio::time::timeout_at(deadline, reader.read(&mut chunk)).await {
            Ok(Ok(0)) => closed = true,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => {
                closed = true;
                if buf.len() == consumed {
                    trouble.get_or_insert(format!("read failed: {e}"));
                }
            }
            Err(_) => {
                trouble = Some(format!(
                    "no complete response within {EXCHANGE_DEADLINE:?} ({} bytes read)",
                    buf.len()
                ));
                break;
            }
        }
    }
    write.abort();
    Outcome {
        responses,
        closed,
        trouble,
        elapsed: started.elapsed(),
    }
}

// ---------------------------------------------------------------------------------------------
// Checks.

#[derive(Debug)]
struct Finding {
    kind: String,
    index: usize,
    server: &'static str,
    request: String,
    detail: String,
}

fn is_problem(resp: &Resp) -> bool {
    resp.header_str("content-type")
        .is_some_and(|ct| ct.eq_ignore_ascii_case("application/problem+json"))
}

/// What is wrong with one response, if anything: (kind, detail).
fn check_response(req: &Req, resp: &Resp, first: bool) -> Vec<(String, String)> {
    let mut wrong = Vec::new();
    let status = resp.status;
    let path = if first { req.path() } else { "/ok".to_owned() };
    let body_text = String::from_utf8_lossy(&resp.body).into_owned();
    let show = || {
        format!(
            "{}\r\n\r\n{}",
            resp.raw_head,
            body_text.chars().take(800).collect::<String>()
        )
    };

    // Sensible statuses.
    if !(200..600).contains(&status) {
        wrong.push(("impossible status".to_owned(), show()));
    }
    if status >= 500 {
        let expected = (status == 500 && path.contains("/panic"))
            || (status == 503 && path.contains("/slow"))
            || (status == 501 && first && req.names_a_coding_other_than_chunked());
        if !expected {
            wrong.push((format!("unexpected {status}"), show()));
        }
    }
    if status == 408 && !(req.stalls || req.pause_before_body || req.framing == Framing::Raw) {
        wrong.push(("unexpected 408".to_owned(), show()));
    }

    // Every error a problem with its request id, or one of hyper's bare answers.
    let head = first && req.is_method("HEAD");
    if status >= 400 {
        if is_problem(resp) && head {
            if resp.header("x-request-id").is_none() {
                wrong.push(("problem request id".to_owned(), show()));
            }
        } else if is_problem(resp) {
            let id = resp.header_str("x-request-id");
            match serde_json::from_slice::<serde_json::Value>(&resp.body) {
                Ok(json) if json.is_object() => {
                    if json["status"] != status {
                        wrong.push(("problem status member".to_owned(), show()));
                    }
                    if id.is_none() || json["request_id"].as_str() != id {
                        wrong.push(("problem request id".to_owned(), show()));
                    }
                    if !json["title"].is_string() || !json["type"].is_string() {
                        wrong.push(("problem shape".to_owned(), show()));
                    }
                }
                _ => wrong.push(("problem body not a JSON object".to_owned(), show())),
            }
            if resp.body.len() > 4096 {
                wrong.push((format!("problem body of {} bytes", resp.body.len()), show()));
            }
        } else {
            let bare = matches!(status, 400 | 414 | 431)
                && resp.body.is_empty()
                && resp.header("x-request-id").is_none();
            if !bare {
                wrong.push((format!("{status} is not a problem"), show()));
            }
        }
    }

    // A client's request id is never believed (no trusted proxies).
    if let (Some(sent), Some(got)) = (&req.sent_request_id, resp.header("x-request-id"))
        && !sent.is_empty()
        && got == sent.as_bytes()
    {
        wrong.push(("client's x-request-id echoed".to_owned(), show()));
    }

    // Nothing internal, nothing of the input at length, in the body or the headers.
    let everything = format!("{}\n{}", resp.raw_head, body_text);
    for needle in INTERNALS {
        if everything.contains(needle) {
            wrong.push((format!("leaks {needle:?}"), show()));
        }
    }
    if everything.contains(&req.marker[..24]) {
        wrong.push(("echoes the input".to_owned(), show()));
    }
    wrong
}

fn check(req: &Req, outcome: &Outcome) -> Vec<(String, String)> {
    let mut wrong = Vec::new();
    for (i, resp) in outcome.responses.iter().enumerate() {
        wrong.extend(check_response(req, resp, i == 0));
    }
    if let Some(trouble) = &outcome.trouble {
        if trouble.starts_with("no complete response") {
            wrong.push(("hang".to_owned(), trouble.clone()));
        } else if !trouble.starts_with("read failed") || outcome.responses.is_empty() {
            wrong.push((format!("bad response stream: {trouble}"), String::new()));
        }
    }
    // A client that closes its sending half gets no answer: hyper's connections (both
    // servers') close at EOF unless `half_close` is set, dropping the request in flight.
    if outcome.responses.is_empty() && outcome.trouble.is_none() && !req.half_close {
        wrong.push((
            "no response".to_owned(),
            format!("closed: {}", outcome.closed),
        ));
    }
    wrong
}

/// `GET /ok` must answer 200.
async fn alive(addr: SocketAddr) -> Result<(), String> {
    let req = Req::new("GET", "/ok", "-".repeat(48));
    let outcome = exchange(addr, &req).await;
    match outcome.responses.first() {
        Some(r) if r.status == 200 && r.body == b"ok" => Ok(()),
        other => Err(format!("{other:?} {:?}", outcome.trouble)),
    }
}

/// Panics seen by the process's hook, other than the deliberate one.
fn count_panics() -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    // The server's redacting hook first, so that it does not replace this one later.
    hardening_errors::redact_panic_messages();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        if !message.contains(DELIBERATE) {
            let location = info.location().map(|l| l.to_string()).unwrap_or_default();
            record
                .lock()
                .unwrap()
                .push(format!("{message} at {location}"));
            previous(info);
        }
    }));
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn randomised_bad_input_gets_problems_and_no_leaks() {
    let seed = std::env::var("BAD_INPUT_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED);
    let count = std::env::var("BAD_INPUT_FUZZ_COUNT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(COUNT);
    let panics = count_panics();
    let only: Option<usize> = std::env::var("BAD_INPUT_FUZZ_ONLY")
        .ok()
        .and_then(|s| s.parse().ok());

    // hardening_core's server, and axum's.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let core_addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        Server::new()
            .serve_until(listener, app(), async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    let axum_addr = hardening_tests::serve(app()).await;
    let servers = [
        ("hardening_core::Server", core_addr),
        ("axum::serve", axum_addr),
    ];
    for (_, addr) in servers {
        alive(addr).await.unwrap();
    }

    let token = Arc::new(valid_token());
    let next = Arc::new(AtomicUsize::new(0));
    let findings = Arc::new(Mutex::new(Vec::<Finding>::new()));
    let statuses = Arc::new(Mutex::new(BTreeMap::<u16, usize>::new()));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        let (token, next, findings, statuses) = (
            token.clone(),
            next.clone(),
            findings.clone(),
            statuses.clone(),
        );
        workers.spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= count {
                    break;
                }
                if only.is_some_and(|only| only != index) {
                    continue;
                }
                let req = generate(seed, index, &token);
                let (server, addr) = servers[index % 2];
                let outcome = exchange(addr, &req).await;
                if only.is_some() {
                    eprintln!("{}", req.describe());
                    for r in &outcome.responses {
                        eprintln!("{}\n\n{}", r.raw_head, String::from_utf8_lossy(&r.body));
                    }
                    eprintln!("closed {} trouble {:?}", outcome.closed, outcome.trouble);
                }
                for r in &outcome.responses {
                    *statuses.lock().unwrap().entry(r.status).or_default() += 1;
                }
                let wrong = check(&req, &outcome);
                {
                    let mut found = findings.lock().unwrap();
                    for (kind, detail) in wrong {
                        found.push(Finding {
                            kind,
                            index,
                            server,
                            request: req.describe(),
                            detail: format!("{detail}\n(after {:?})", outcome.elapsed),
                        });
                    }
                }
                // Every so often, both servers must still serve.
                if index % 200 == 199 {
                    for (server, addr) in servers {
                        if let Err(e) = alive(addr).await {
                            findings.lock().unwrap().push(Finding {
                                kind: "stopped serving".to_owned(),
                                index,
                                server,
                                request: String::new(),
                                detail: e,
                            });
                        }
                    }
                }
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.unwrap();
    }
    let elapsed = started.elapsed();
    for (name, addr) in servers {
        alive(addr)
            .await
            .unwrap_or_else(|e| panic!("{name} stopped serving: {e}"));
    }
    let _ = stop.send(());

    let findings = std::mem::take(&mut *findings.lock().unwrap());
    eprintln!(
        "{count} requests (seed {seed:#x}) in {elapsed:?}; statuses {:?}",
        statuses.lock().unwrap()
    );
    let mut by_kind: BTreeMap<String, Vec<&Finding>> = BTreeMap::new();
    for f in &findings {
        by_kind.entry(f.kind.clone()).or_default().push(f);
    }
    for (kind, list) in &by_kind {
        eprintln!("\n=== {kind}: {} request(s)", list.len());
        let mut shown_tags = std::collections::BTreeSet::new();
        for f in list {
            if shown_tags.len() >= 6 {
                break;
            }
            if shown_tags.insert(f.request.split(']').next().unwrap_or_default().to_owned()) {
                eprintln!(
                    "--- #{} on {}\n{}\n>>>\n{}",
                    f.index, f.server, f.request, f.detail
                );
            }
        }
    }
    let panics = panics.lock().unwrap().clone();
    assert!(
        panics.is_empty(),
        "panics besides the deliberate one: {panics:#?}"
    );
    assert!(findings.is_empty(), "{} findings (above)", findings.len());
}
