//! Randomized, deterministic audit of "secrets never reach logs": thousands of request targets
//! and header sets, each carrying a marked secret where a careless client or app puts one and
//! where the documented rules promise to redact it, sent through the code that writes the
//! access-log event (`AccessLog::record` and `emit`, into a JSON subscriber). No marker may
//! appear in any line, as written or percent-decoded up to three times.
//!
//! The generator is fastrand's, from a fixed seed, so a failure names a case that reproduces.

use std::fmt::Write as _;

use hardening_errors::{is_secret_name, redact_secrets};
use http::{HeaderName, HeaderValue};

use super::{AccessLog, DEFAULT_SENSITIVE_PARAMS, Redacted, RedactedHeaders, percent_decode};
use crate::test_rng::Rng;

/// How many requests each run generates.
const CASES: usize = 3000;

/// Every secret starts with this; what follows it makes each one unique.
const MARK: &str = "S3cr3tXyz";

/// The picks the templates use beside the shared ones.
impl Rng {
    fn alnum(&mut self, len: usize) -> String {
        (0..len).map(|_| self.0.alphanumeric()).collect()
    }

    /// A fresh secret: the mark and a unique suffix.
    fn secret(&mut self) -> String {
        let len = 4 + self.below(7);
        format!("{MARK}{}", self.alnum(len))
    }
}

/// Names a careless client puts secrets under; all contain a default sensitive word, or
/// `sid` or `ticket` as a whole part.
const SECRET_NAMES: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "pass",
    "pw",
    "token",
    "access_token",
    "id_token",
    "refresh_token",
    "api_key",
    "apikey",
    "apiKey",
    "key",
    "secret",
    "client_secret",
    "session",
    "sessionid",
    "jsessionid",
    "PHPSESSID",
    "code",
    "auth",
    "authorization",
    "credential",
    "signature",
    "sig",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
    "jwt",
    "otp",
    "client_assertion",
    "SAMLResponse",
    "dpop",
    "principal",
    "private_key",
    "signingKey",
    "csrftoken",
    "auth_token",
    "oidc_state",
    "sid",
    "SID",
    "user_sid",
    "ticket",
    "magic_link",
    "magicLink",
];

/// Keys a JSON value may hold a secret under (redacted as error text is, `redact_secrets`).
const JSON_SECRET_KEYS: &[&str] = &[
    "token",
    "password",
    "api_key",
    "apiKey",
    "client_secret",
    "clientSecret",
    "accessToken",
    "refresh_token",
    "signingKey",
    "privateKey",
    "sessionId",
    "Authorization",
    "PassWord",
    "pwd",
    "otp",
    "x-api-key",
    "sid",
    "casTicket",
];

/// Names that carry nothing secret by themselves.
const PLAIN_NAMES: &[&str] = &[
    "next",
    "redirect_uri",
    "return",
    "returnTo",
    "url",
    "continue",
    "state",
    "callback",
    "r",
    "q",
    "data",
    "filter",
    "db",
    "h",
    "",
];

const NOISE: &[&str] = &[
    "page=2",
    "q=shoes",
    "sort=asc",
    "lang=en",
    "a=1",
    "flag",
    "",
    "=",
    "x=a%20b",
    "n=1+2",
    "tags[]=red",
];

/// `s` percent-encoded as a URL component (all but `A-Z a-z 0-9 - . _ ~`), hex digits in
/// either case.
fn encode(rng: &mut Rng, s: &str) -> String {
    let upper = rng.chance(2);
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else if upper {
            let _ = write!(out, "%{b:02X}");
        } else {
            let _ = write!(out, "%{b:02x}");
        }
    }
    out
}

/// `s` encoded `times` times; the spaces of the first encoding sometimes as `+`.
fn encode_times(rng: &mut Rng, s: &str, times: usize) -> String {
    let mut out = s.to_owned();
    for i in 0..times {
        out = encode(rng, &out);
        if i == 0 && rng.chance(2) {
            out = out.replace("%20", "+");
        }
    }
    out
}

/// A sensitive name as a careless client may spell it: any case, some letters
/// percent-encoded once, brackets, a prefix; at the top level of a query (`top`), sometimes
/// with its `=` encoded (`password%3D…`: the value becomes part of the name), which would
/// make a nested query one encoding deeper than the documented three.
fn spell_name(rng: &mut Rng, name: &str, top: bool) -> String {
    let mut out = String::new();
    for c in name.chars() {
        let c = if rng.chance(2) {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        };
        if rng.chance(6) {
            let _ = write!(out, "%{:02X}", c as u32);
        } else {
            out.push(c);
        }
    }
    match rng.below(10) {
        0 => format!("{out}[]"),
        1 => format!("user[{out}]"),
        2 => format!("user%5B{out}%5D"),
        3 => format!("x_{out}"),
        4 if top => format!("{out}%3D"),
        5 => format!("+{out}"),
        6 => format!("{out}%20"),
        _ => out,
    }
}

/// `name=value`, where axum (`form_urlencoded`) reads `value` under a name that contains a
/// sensitive word.
fn by_name(rng: &mut Rng, secret: &str, top: bool) -> String {
    let name = rng.pick(SECRET_NAMES);
    let name = spell_name(rng, name, top);
    let value = match rng.below(4) {
        0 => format!("my {secret}"),
        1 => format!("Bearer {secret}"),
        _ => secret.to_owned(),
    };
    let times = rng.below(4);
    let value = encode_times(rng, &value, times);
    if name.ends_with("%3D") {
        // `password%3DS3cr3t…`: the whole pair is the name.
        return format!("{name}{value}");
    }
    format!("{name}={value}")
}

/// A URL or path whose query or fragment holds the secret under a sensitive name.
fn nested_url(rng: &mut Rng, secret: &str) -> String {
    let base = rng.pick(&[
        "https://app.example/cb",
        "/cb",
        "https://app.example:8443/a/b",
        "",
    ]);
    let inner = by_name(rng, secret, false);
    let noise = rng.pick(NOISE);
    let inner = match rng.below(4) {
        0 => format!("{inner}&{noise}"),
        1 => format!("{noise}&{inner}"),
        2 => format!("{noise};{inner}"),
        _ => inner,
    };
    if rng.chance(3) {
        format!("{base}#{inner}")
    } else {
        format!("{base}?{inner}")
    }
}

fn jwt(rng: &mut Rng, secret: &str) -> String {
    let (before, after) = (rng.below(8), rng.below(8));
    format!(
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.{}{secret}{}",
        rng.alnum(before),
        rng.alnum(after),
    )
}

/// A provider's key with the secret in its body, long enough for its shape.
fn provider_key(rng: &mut Rng, secret: &str) -> String {
    let (prefix, least): (&str, usize) = match rng.below(10) {
        0 => ("ghp_", 36),
        1 => ("github_pat_", 40),
        2 => ("glpat-", 20),
        3 => ("xoxb-", 16),
        4 => ("sk_live_", 16),
        5 => ("sk-proj-", 16),
        6 => ("sk-ant-", 16),
        7 => ("AIza", 35),
        // OpenAI's keys before project keys.
        8 => ("sk-", 48),
        _ => ("npm_", 36),
    };
    let pad = least.saturating_sub(secret.len()) + rng.below(4);
    let pad = rng.alnum(pad);
    format!("{prefix}{secret}{pad}")
}

/// A secret placed in a query by one of the documented rules, as written in the target.
fn query_placement(rng: &mut Rng, secret: &str) -> (&'static str, String) {
    let plain_name = rng.pick(PLAIN_NAMES);
    let times = rng.below(4);
    match rng.below(9) {
        8 => {
            // Nothing names it, or a sensitive word with no `=` after it: `?eyJ…`,
            // `?jwt:eyJ…`, `?apikey%20sk-proj-…`, a token whose random text holds `pw`.
            let word = rng.pick(&["", "jwt:", "token%3A", "apikey%20", "id_token+", "auth/"]);
            let noise = rng.pick(&["", "pW", "Key", "sig", "OTP", "code", "Auth"]);
            let token = if rng.chance(2) {
                jwt(rng, &format!("{noise}{secret}"))
            } else {
                provider_key(rng, &format!("{secret}{noise}"))
            };
            ("bare", format!("{word}{token}"))
        }
        0 | 1 => ("name", by_name(rng, secret, true)),
        2 => {
            let url = nested_url(rng, secret);
            (
                "nested",
                format!("{plain_name}={}", encode_times(rng, &url, times)),
            )
        }
        3 => {
            let key = rng.pick(JSON_SECRET_KEYS);
            let json = match rng.below(3) {
                0 => format!(r#"{{"{key}":"{secret}","n":1}}"#),
                1 => format!(r#"{{"user":{{"id":7,"{key}": "{secret}"}}}}"#),
                _ => format!(r#"{{"n":1, "{key}" : "{secret}"}}"#),
            };
            // At least once: a raw `"` or `{` is no valid request target.
            let times = times.max(1);
            (
                "json",
                format!("{plain_name}={}", encode_times(rng, &json, times)),
            )
        }
        4 => {
            let password = match rng.below(6) {
                0 => format!("{secret}/x"),
                1 => format!("x@{secret}"),
                2 => format!("{secret}?x"),
                // Unencoded, `;` ends the pair in the log but not for axum.
                3 => format!("pa;{secret}"),
                4 => format!("{secret};x"),
                _ => secret.to_owned(),
            };
            let scheme = rng.pick(&["postgres", "redis", "https", "amqp"]);
            let url = format!("{scheme}://app:{password}@db-7:5432/users");
            (
                "userinfo",
                format!("{plain_name}={}", encode_times(rng, &url, times)),
            )
        }
        5 => {
            let token = if rng.chance(2) {
                jwt(rng, secret)
            } else {
                provider_key(rng, secret)
            };
            let token = encode_times(rng, &token, times);
            if rng.chance(4) {
                ("shape-bare", token)
            } else {
                ("shape", format!("{plain_name}={token}"))
            }
        }
        6 => {
            let scheme = rng.pick(&["Bearer", "bearer", "Basic", "BASIC"]);
            let value = format!("{scheme} {secret}");
            let times = times.max(1);
            (
                "scheme",
                format!("{plain_name}={}", encode_times(rng, &value, times)),
            )
        }
        _ => {
            // A query inside a value, no URL around it: `&=token=…`, `data=token%3D…`.
            let inner = by_name(rng, secret, false);
            let times = times.max(1);
            (
                "subquery",
                format!("{plain_name}={}", encode_times(rng, &inner, times)),
            )
        }
    }
}

/// A query with 1 to 3 secrets among noise, pairs joined by `&` or sometimes `;`.
fn query(rng: &mut Rng, secrets: &mut Vec<(String, String)>) -> String {
    let mut pairs = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let secret = rng.secret();
        let (kind, pair) = query_placement(rng, &secret);
        secrets.push((secret, format!("{kind}: {pair}")));
        pairs.push(pair);
        if rng.chance(5) {
            // The same parameter again.
            let again = pairs[pairs.len() - 1].clone();
            pairs.push(again);
        }
    }
    for _ in 0..rng.below(4) {
        let at = rng.below(pairs.len() + 1);
        pairs.insert(at, rng.pick(NOISE).to_owned());
    }
    let mut q = String::new();
    for (i, pair) in pairs.iter().enumerate() {
        if i > 0 {
            q.push(if rng.chance(6) { ';' } else { '&' });
        }
        q.push_str(pair);
    }
    q
}

/// Headers with secrets where the docs promise to redact them (`log_request_headers` on).
fn headers(rng: &mut Rng, secrets: &mut Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for _ in 0..rng.below(4) {
        let secret = rng.secret();
        let (name, value) = match rng.below(9) {
            0 => {
                let scheme = rng.pick(&["Bearer ", "bearer ", "Basic ", "Token ", "Digest ", ""]);
                ("Authorization", format!("{scheme}{secret}"))
            }
            1 => {
                let scheme = rng.pick(&["Basic ", "Bearer ", ""]);
                ("Proxy-Authorization", format!("{scheme}{secret}"))
            }
            2 => ("Cookie", format!("theme=dark; sid={secret}; lang=en")),
            3 => (
                rng.pick(&["X-Api-Key", "x-auth-token", "X-Session-Id", "X-Sid"]),
                secret.clone(),
            ),
            4 | 5 => {
                let mut inner = Vec::new();
                let q = query(rng, &mut inner);
                // Those secrets are this header's now.
                for (s, _) in inner {
                    secrets.push((s, format!("referer query: {q}")));
                }
                let name = rng.pick(&["Referer", "X-Original-URL", "X-Forwarded-Uri", "Origin"]);
                let base = if name.starts_with("X-") {
                    "/reset"
                } else {
                    "https://app.example/reset"
                };
                if rng.chance(4) {
                    (name, format!("{base}?page=1#{q}"))
                } else {
                    (name, format!("{base}?{q}"))
                }
            }
            // A password, sometimes holding an unencoded `?` or `#` (`write_url` split the
            // URL there first, and logged the half after the mark).
            6 => (
                rng.pick(&["Referer", "Destination", "X-Callback-Url"]),
                format!(
                    "https://app:{}{secret}@dav.example/a?page=2",
                    rng.pick(&["", "pa?", "pa#", "p/a"])
                ),
            ),
            7 if rng.chance(2) => (
                "User-Agent",
                format!("sync-bot/2.1 (+https://bot.example; token={secret})"),
            ),
            7 => (
                "Baggage",
                format!("userId=7,session_token={secret},lang=en"),
            ),
            _ => {
                let t = if rng.chance(2) {
                    jwt(rng, &secret)
                } else {
                    provider_key(rng, &secret)
                };
                ("X-Debug", format!("upstream sent {t}"))
            }
        };
        secrets.push((secret, format!("header {name}: {value}")));
        out.push((name.to_owned(), value));
        if rng.chance(2) {
            out.push(("Accept".to_owned(), "text/html;q=0.9".to_owned()));
        }
    }
    out
}

/// A path, sometimes with a path parameter whose name is sensitive (`/cb;jsessionid=…`),
/// spelled as a query's may be (`/cb;PaSs%57ord=…`).
fn path(rng: &mut Rng, secrets: &mut Vec<(String, String)>) -> String {
    if !rng.chance(4) {
        return "/a".to_owned();
    }
    let secret = rng.secret();
    let param = by_name(rng, &secret, true);
    let p = match rng.below(3) {
        0 => format!("/cb;{param};x=1"),
        1 => format!("/a;x=1;{param}/b"),
        _ => format!("/cb;{param}"),
    };
    secrets.push((secret, format!("path: {p}")));
    p
}

/// Whether `text` shows `secret`, as written or percent-decoded up to three times.
fn shows(text: &str, secret: &str) -> bool {
    let mut text = text.to_owned();
    for _ in 0..=3 {
        if text.contains(secret) {
            return true;
        }
        let decoded = percent_decode(&text);
        if decoded == text {
            return false;
        }
        text = decoded;
    }
    false
}

/// What `form_urlencoded` (axum's `Query`) reads: pairs split at `&`, then at the first `=`,
/// `+` and `%XX` decoded once. Or, with `semicolons`, what a server that splits at `;` too
/// reads (the access log redacts for both readings).
fn form_pairs(query: &str, semicolons: bool) -> Vec<(String, String)> {
    let separators: &[char] = if semicolons { &['&', ';'] } else { &['&'] };
    query
        .split(separators)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(n), percent_decode(v))
        })
        .collect()
}

/// The generator's own check: each secret of a query is where a rule promises to redact it.
/// Either axum reads it under a sensitive name, or a value (or bare pair) holds it nested,
/// as JSON, in a URL's password, or by its shape — what `redact_secrets` hides, or a query
/// with a sensitive name, after up to three more decodings.
fn promised(query: &str, secret: &str) -> bool {
    let sensitive = |n: &str| {
        let n = n.to_ascii_lowercase();
        DEFAULT_SENSITIVE_PARAMS.iter().any(|w| n.contains(w)) || is_secret_name(&n)
    };
    let pairs = [form_pairs(query, false), form_pairs(query, true)];
    pairs.iter().flatten().any(|(n, v)| {
        if !n.contains(secret) && !v.contains(secret) {
            return false;
        }
        if sensitive(n) {
            return true;
        }
        let mut text = if v.contains(secret) {
            v.clone()
        } else {
            n.clone()
        };
        // `v` is decoded once: up to two more, names once more.
        for _ in 0..=2 {
            if !redact_secrets(&text).contains(secret) {
                return true;
            }
            if text
                .split(['?', '#', '&', ';'])
                .filter_map(|p| p.split_once('='))
                .any(|(n, v)| sensitive(&percent_decode(n)) && v.contains(secret))
            {
                return true;
            }
            text = percent_decode(&text);
        }
        false
    })
}

struct Case {
    target: String,
    headers: Vec<(String, String)>,
    /// Each secret and where it was put.
    secrets: Vec<(String, String)>,
}

fn generate(seed: u64, n: usize) -> Vec<Case> {
    let mut rng = Rng(fastrand::Rng::with_seed(seed));
    (0..n)
        .map(|_| {
            let mut secrets = Vec::new();
            let path = path(&mut rng, &mut secrets);
            let mut query_secrets = Vec::new();
            let q = query(&mut rng, &mut query_secrets);
            for (secret, place) in &query_secrets {
                assert!(promised(&q, secret), "not a promised place: {place}\n{q}");
            }
            secrets.extend(query_secrets);
            let headers = headers(&mut rng, &mut secrets);
            Case {
                target: format!("{path}?{q}"),
                headers,
                secrets,
            }
        })
        .collect()
}

/// The access log's line for each case, through `record` and `emit` into the JSON
/// subscriber; a target that `http` refuses is written by `Redacted` and `RedactedHeaders`
/// directly.
fn log_lines(log: &AccessLog, cases: &[Case]) -> Vec<String> {
    let mut direct = vec![None; cases.len()];
    let mut emitted = Vec::new();
    let lines = super::tests::json_lines("info", || {
        for (i, case) in cases.iter().enumerate() {
            let mut headers = http::HeaderMap::new();
            for (name, value) in &case.headers {
                headers.append(
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                );
            }
            let Ok(request) = http::Request::get(case.target.as_str()).body(()) else {
                let (path, query) = case.target.split_once('?').unwrap();
                direct[i] = Some(format!(
                    "{} {} {}",
                    log.logged_path(path),
                    Redacted { query, log },
                    RedactedHeaders {
                        headers: &headers,
                        log
                    }
                ));
                continue;
            };
            let (mut parts, ()) = request.into_parts();
            parts.headers = headers;
            super::tests::log_ok(log, &mut parts);
            emitted.push(i);
        }
    });
    assert_eq!(lines.len(), emitted.len());
    let mut out: Vec<String> = direct.into_iter().map(Option::unwrap_or_default).collect();
    for (i, line) in emitted.into_iter().zip(lines) {
        out[i] = line.to_string();
    }
    out
}

#[test]
fn no_generated_secret_reaches_the_access_log() {
    let mut log = AccessLog::default();
    log.set_log_headers(true);
    let cases = generate(0x5EC2_E7A1_0C0F_FEE5, CASES);
    let lines = log_lines(&log, &cases);
    let mut leaks = Vec::new();
    for (case, line) in cases.iter().zip(&lines) {
        for (secret, place) in &case.secrets {
            if shows(line, secret) {
                leaks.push(format!(
                    "{place}\n  target: {}\n  logged: {line}",
                    case.target
                ));
            }
        }
    }
    let mut kinds: Vec<&str> = leaks
        .iter()
        .map(|l| l.split([':', ' ']).next().unwrap_or_default())
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert!(
        leaks.is_empty(),
        "{} of {} secrets leaked (kinds {kinds:?}), the first:\n{}",
        leaks.len(),
        cases.iter().map(|c| c.secrets.len()).sum::<usize>(),
        leaks[..leaks.len().min(12)].join("\n")
    );
}
