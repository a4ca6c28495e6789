//! Randomized, deterministic audit of the response rewriting: thousands of handler responses
//! (odd `Set-Cookie` values, security headers of the handler's own, identifying and other
//! headers, repeated) go through [`HeaderSet::apply`] under a few policies, and each
//! `Set-Cookie` through [`CookiePolicy::fixed`]. What goes out is read back as a browser
//! reads it (RFC 6265 §5.1.1 and §5.2, RFC 6265bis §5.6, written here apart from the code
//! under test) and held to the promises of the crate docs and DESIGN §4:
//!
//! - nothing panics, whatever bytes a `Set-Cookie` holds;
//! - a cookie keeps `Secure`, `HttpOnly` and an explicit `SameSite=Lax` or `Strict` unless the
//!   policy names it in the `dangerous_*` setting that lets it go without; it is never weaker
//!   than the handler wrote it (`Strict` stays `Strict`, it lives no longer, a session cookie
//!   stays one); its lifetime is capped; its name and value go out byte for byte (and parse
//!   back with the cookie crate); the policy adds no attribute twice; attributes it does not
//!   set go out as they came; a plain cookie is not dropped;
//! - `__Host-` cookies leave with `Secure`, `Path=/` and no `Domain`; `__Secure-` ones with
//!   `Secure`; `__Http-` and `__Host-Http-` ones with `Secure` and `HttpOnly`;
//! - of several cookies only those a later one replaces are left out, in order;
//! - each security header goes out once, with the policy's value whatever the handler set;
//!   identifying headers go; `Cache-Control` is private where it must be, and a handler's own
//!   `no-store` or `private` stays; the handler's other headers go out as they came, in order.
//!
//! The generator is fastrand's, from a fixed seed, so a failure names a seed and a case that
//! reproduce (`HEADERS_FUZZ_SEED=<seed>` runs that seed alone).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use cookie::time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};
use cookie::{Cookie, SameSite};
use http::header::{self, HeaderMap, HeaderName, HeaderValue, SET_COOKIE};

use crate::{CookiePolicy, Csp, CspNonce, HeaderPolicy, HeaderSet, Merge, RequestFacts};

/// Responses generated per seed.
const CASES: usize = 2500;

/// The seeds of a run (`HEADERS_FUZZ_SEED` runs another).
const SEEDS: [u64; 2] = [6_808_434_069_744_291_841, 998_244_353];

/// fastrand's generator from a fixed seed, with the picks the cases use.
struct Rng(fastrand::Rng);

impl Rng {
    /// A number below `n`.
    fn below(&mut self, n: usize) -> usize {
        self.0.usize(..n)
    }

    /// A number below `n`.
    fn below_u64(&mut self, n: u64) -> u64 {
        self.0.u64(..n)
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// `word` in a random case, half the time as written.
    fn spell(&mut self, word: &str) -> String {
        if self.chance(2) {
            return word.to_owned();
        }
        word.chars()
            .map(|c| {
                if self.chance(2) {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect()
    }
}

/// The cookie settings of one policy, as the checks read them.
struct Rules {
    readable: &'static [&'static str],
    same_site_none: &'static [&'static str],
    insecure: &'static [&'static str],
    same_site: &'static [(&'static str, SameSite)],
    /// The lifetime cap, in seconds.
    cap: u64,
}

impl Rules {
    fn policy(&self) -> CookiePolicy {
        let mut policy = CookiePolicy::default().dangerous_max_age(Duration::from_secs(self.cap));
        for name in self.readable {
            policy = policy.dangerous_script_readable(*name);
        }
        for name in self.same_site_none {
            policy = policy.dangerous_same_site_none(*name);
        }
        for name in self.insecure {
            policy = policy.dangerous_allow_insecure(*name);
        }
        for (name, same_site) in self.same_site {
            policy = policy.same_site(*name, *same_site).unwrap();
        }
        policy
    }
}

const DAY: u64 = 24 * 3600;

/// The policies the responses go through.
const RULES: [Rules; 3] = [
    Rules {
        readable: &[],
        same_site_none: &[],
        insecure: &[],
        same_site: &[],
        cap: 30 * DAY,
    },
    Rules {
        readable: &["theme", "__Http-js"],
        same_site_none: &["embed", "legacy"],
        insecure: &["legacy", "__Host-old"],
        same_site: &[("sid", SameSite::Strict), ("lax_one", SameSite::Lax)],
        cap: 3600,
    },
    Rules {
        readable: &["__Host-sid"],
        same_site_none: &["__Secure-x"],
        insecure: &["plain", "__SECURE-y"],
        same_site: &[("embed", SameSite::Lax)],
        cap: 365 * DAY,
    },
];

/// One policy: its header set, cookie rules, and what the checks need to know of it.
struct Subject {
    set: HeaderSet,
    cookies: CookiePolicy,
    rules: &'static Rules,
    /// Responses to requests with credentials get a private `Cache-Control`.
    no_store_with_credentials: bool,
    /// The policy sends HSTS (over HTTPS).
    hsts: bool,
    /// The policy's CSP is report-only: a route's own enforcing one stays.
    report_only: bool,
    /// The policy's CSP carries a nonce.
    nonce: bool,
    /// Security headers the policy does not send (a route's own goes out).
    removed: &'static [&'static str],
    /// The set has [`SLOTS`], filled by `apply_with`.
    slotted: bool,
}

/// Per-response slots of the slotted set: ours replaces the handler's request id, and
/// follows its `RateLimit` in one list.
const SLOTS: [(&str, Merge); 2] = [("x-request-id", Merge::Replace), ("ratelimit", Merge::List)];

fn subjects() -> Vec<Subject> {
    let cookies: Vec<CookiePolicy> = RULES.iter().map(Rules::policy).collect();
    let subject = |policy: HeaderPolicy, i: usize| Subject {
        set: policy.cookies(cookies[i].clone()).build().unwrap(),
        cookies: cookies[i].clone(),
        rules: &RULES[i],
        no_store_with_credentials: true,
        hsts: true,
        report_only: false,
        nonce: false,
        removed: &[],
        slotted: false,
    };
    let plain = subject(HeaderPolicy::api(), 0);
    let slots = SLOTS.map(|(name, merge)| (HeaderName::from_static(name), merge));
    vec![
        Subject {
            set: plain.set.with_slots(slots).unwrap(),
            slotted: true,
            ..subject(HeaderPolicy::api(), 0)
        },
        plain,
        Subject {
            nonce: true,
            ..subject(HeaderPolicy::html(), 1)
        },
        Subject {
            no_store_with_credentials: false,
            hsts: false,
            report_only: true,
            removed: &["x-dns-prefetch-control"],
            ..subject(
                HeaderPolicy::api()
                    .csp(Csp::api().dangerous_report_only())
                    .dangerous_without_hsts()
                    .dangerous_allow_caching_with_credentials()
                    .dangerous_frame_options("SAMEORIGIN")
                    .unwrap()
                    .dangerous_remove_header("x-dns-prefetch-control")
                    .unwrap(),
                2,
            )
        },
    ]
}

const NAMES: &[&str] = &[
    "sid",
    "theme",
    "embed",
    "legacy",
    "lax_one",
    "plain",
    "a b",
    "a[b]",
    "café",
    "__Host-sid",
    "__host-SID",
    "__Host-old",
    "__Secure-x",
    "__SECURE-y",
    "__Http-js",
    "__http-a",
    "__Host-Http-b",
    "__HOST-http-c",
    "__Hostx",
];

const VALUES: &[&str] = &[
    "",
    "1",
    "abc123",
    "\"quoted\"",
    "\"x;y\"",
    "a=b",
    "café",
    "\u{3000}x\u{a0}",
    "v a l",
    "deleted",
];

/// A `Set-Cookie` value a handler might send: mostly name, value and attributes in odd
/// spellings; now and then a very long one or random bytes.
fn set_cookie(rng: &mut Rng, now: OffsetDateTime) -> Vec<u8> {
    if rng.chance(40) {
        const BYTES: &[u8] = b"a=; \t\"_-\x80\xc3\xa9\xff";
        return (0..rng.below(40))
            .map(|_| BYTES[rng.below(BYTES.len())])
            .collect();
    }
    let name = match rng.below(20) {
        0 => String::new(),
        1 => format!(" {} ", rng.pick(NAMES)),
        2 => "a\tb".to_owned(),
        _ => rng.pick(NAMES).to_owned(),
    };
    let host = prefixed(trim(&name), "__host-");
    let value = match rng.below(30) {
        0 => "x".repeat(4000 + rng.below(200)),
        _ => rng.pick(VALUES).to_owned(),
    };
    let mut text = match rng.below(25) {
        0 => name,
        _ => format!("{name}={value}"),
    }
    .into_bytes();
    if rng.chance(60) {
        text.extend_from_slice(b"\xff");
    }
    for i in 0..rng.below(7) {
        // Most `__Host-` cookies with the `Path` their rules want (a later one may undo it).
        if host && i == 0 && !rng.chance(4) {
            text.extend_from_slice(b"; Path=/");
        }
        text.extend_from_slice(rng.pick(&["; ", ";", " ; ", ";\t"]).as_bytes());
        text.extend_from_slice(attribute(rng, now).as_bytes());
    }
    if rng.chance(8) {
        text.extend_from_slice(rng.pick(&[";", "; ", ";;"]).as_bytes());
    }
    text
}

fn attribute(rng: &mut Rng, now: OffsetDateTime) -> String {
    let key = |rng: &mut Rng, key: &str| {
        let key = rng.spell(key);
        let eq = rng.pick(&["=", "=", " = ", "\t="]);
        (key, eq)
    };
    match rng.below(30) {
        0 | 14..=19 => rng.spell("Secure"),
        1 | 20..=24 => rng.spell("HttpOnly"),
        2 => rng.spell("Partitioned"),
        3 | 4 | 25..=28 => {
            let (k, eq) = key(rng, "SameSite");
            let v = rng.pick(&["Strict", "Lax", "None", "", "Lx", "strict ", "NONE"]);
            format!("{k}{eq}{}", rng.spell(v))
        }
        5 | 6 => {
            let (k, eq) = key(rng, "Max-Age");
            let v = match rng.below(12) {
                0 => "99999999999999999999999999".to_owned(),
                1 => rng.pick(&["+1", "1.5", "", "-", "0x10", "1 2"]).to_owned(),
                2 => format!("-{}", rng.below(100)),
                3 => "0".to_owned(),
                _ => rng.below_u64(800 * DAY).to_string(),
            };
            format!("{k}{eq}{v}")
        }
        7 | 8 => {
            let (k, eq) = key(rng, "Expires");
            format!("{k}{eq}{}", date(rng, now))
        }
        9 => {
            let (k, eq) = key(rng, "Path");
            format!("{k}{eq}{}", rng.pick(&["/", "/", "/x", "", "x", "/é"]))
        }
        10 => {
            let (k, eq) = key(rng, "Domain");
            let v = rng.pick(&["example.com", ".Example.com", "", " ", ".", "a.example"]);
            format!("{k}{eq}{v}")
        }
        11 => rng.spell("Secure=false"),
        12 => rng
            .pick(&[
                "Priority=High",
                "Foo",
                "x=y=z",
                "SameParty",
                "Comment=thé",
                "=1",
            ])
            .to_owned(),
        _ => rng
            .pick(&[
                "\u{a0}Domain=evil.example",
                "Path=/x\u{3000}",
                "Max-Age\u{a0}=1",
            ])
            .to_owned(),
    }
}

/// An `Expires` value: a date around now or far off, in one of the forms browsers read, or
/// one they ignore.
fn date(rng: &mut Rng, now: OffsetDateTime) -> String {
    let when = match rng.below(5) {
        0 => now - Duration::from_secs(rng.below_u64(400 * DAY)),
        1 => now + Duration::from_secs(rng.below_u64(60 * DAY)),
        2 => now + Duration::from_secs(rng.below_u64(4000 * DAY)),
        3 => {
            return rng
                .pick(&[
                    "",
                    "garbage",
                    "Thu, 10-Sep-0 20:00:00 GMT",
                    "1970 Feb 29 00:00:00",
                ])
                .to_owned();
        }
        _ => {
            let year = rng.pick(&["1000", "1601", "70", "2200", "9999", "1970"]);
            return format!("Fri, 01 Jan {year} 00:00:00 GMT");
        }
    };
    let month = rng.spell(&when.month().to_string()[..3]);
    let (y, d) = (when.year(), when.day());
    let (h, m, s) = (when.hour(), when.minute(), when.second());
    match rng.below(4) {
        0 => format!(
            "{}, {d:02} {month} {y} {h:02}:{m:02}:{s:02} GMT",
            when.weekday()
        ),
        1 => format!("{d}-{month}-{:02} {h}:{m}:{s} UTC", y % 100),
        2 => format!("{month} {d:>2} {h:02}:{m:02}:{s:02} {y}"),
        _ => format!("{y} {month} {d}, {h}:{m}:{s}"),
    }
}

/// A cookie as a browser reads one `Set-Cookie` value (RFC 6265bis §5.6).
#[derive(Debug)]
struct Read {
    name: String,
    value: String,
    secure: bool,
    http_only: bool,
    /// The last `SameSite`; `None` when absent or invalid (the browser's default).
    same_site: Option<SameSite>,
    /// The last valid `Max-Age`, saturated.
    max_age: Option<i128>,
    /// The last valid `Expires`.
    expires: Option<OffsetDateTime>,
    /// The last `Path` value.
    path: Option<String>,
    /// The last non-empty `Domain` value (lower-case, leading dot removed).
    domain: Option<String>,
    /// The last `Domain` value, empty or not (Chrome keys its cookies by it).
    last_domain: Option<String>,
    partitioned: bool,
    /// Attributes other than those above (trimmed, non-empty), in order.
    others: Vec<String>,
    /// How often each attribute above was given, by lower-case name.
    counts: Vec<(String, usize)>,
}

const KNOWN: [&str; 8] = [
    "secure",
    "httponly",
    "samesite",
    "max-age",
    "expires",
    "path",
    "domain",
    "partitioned",
];

fn trim(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

fn read(text: &str) -> Read {
    let (pair, attributes) = match text.split_once(';') {
        Some((pair, rest)) => (pair, Some(rest)),
        None => (text, None),
    };
    let (name, value) = pair.split_once('=').unwrap_or(("", pair));
    let mut c = Read {
        name: trim(name).to_owned(),
        value: trim(value).to_owned(),
        secure: false,
        http_only: false,
        same_site: None,
        max_age: None,
        expires: None,
        path: None,
        domain: None,
        last_domain: None,
        partitioned: false,
        others: Vec::new(),
        counts: KNOWN.iter().map(|k| ((*k).to_owned(), 0)).collect(),
    };
    for attr in attributes.into_iter().flat_map(|a| a.split(';')) {
        let (key, val) = attr.split_once('=').unwrap_or((attr, ""));
        let (key, val) = (trim(key).to_ascii_lowercase(), trim(val));
        match c.counts.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => {
                if !trim(attr).is_empty() {
                    c.others.push(trim(attr).to_owned());
                }
                continue;
            }
        }
        match key.as_str() {
            "secure" => c.secure = true,
            "httponly" => c.http_only = true,
            "partitioned" => c.partitioned = true,
            "samesite" => {
                c.same_site = match val.to_ascii_lowercase().as_str() {
                    "strict" => Some(SameSite::Strict),
                    "lax" => Some(SameSite::Lax),
                    "none" => Some(SameSite::None),
                    _ => None,
                }
            }
            "max-age" => {
                let digits = val.strip_prefix('-').unwrap_or(val);
                if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                    let huge = if digits.len() < val.len() {
                        i128::MIN
                    } else {
                        i128::MAX
                    };
                    c.max_age = Some(val.parse().unwrap_or(huge));
                }
            }
            "expires" => {
                if let Some(date) = cookie_date(val) {
                    c.expires = Some(date);
                }
            }
            "path" => c.path = Some(val.to_owned()),
            _ => {
                c.last_domain = Some(val.trim_start_matches('.').to_ascii_lowercase());
                if !val.is_empty() {
                    c.domain = c.last_domain.clone();
                }
            }
        }
    }
    c
}

/// A cookie date as RFC 6265 §5.1.1 reads it; `None` when it is ignored (a year before 1601
/// included: Chrome reads that as 1601, which the checks treat alike, as a deletion).
fn cookie_date(text: &str) -> Option<OffsetDateTime> {
    let delimiter = |c: char| matches!(c, '\t' | ' '..='/' | ';'..='@' | '['..='`' | '{'..='~');
    let (mut time, mut day, mut month, mut year) = (None, None, None, None);
    for token in text.split(delimiter).filter(|t| !t.is_empty()) {
        let hms = number(token, 1..=2).and_then(|(h, rest)| {
            let (m, rest) = number(rest.strip_prefix(':')?, 1..=2)?;
            let (s, _) = number(rest.strip_prefix(':')?, 1..=2)?;
            Some((h, m, s))
        });
        let months = [
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ];
        let lower = token.to_ascii_lowercase();
        if time.is_none() && hms.is_some() {
            time = hms;
        } else if let (None, Some((d, _))) = (day, number(token, 1..=2)) {
            day = Some(d);
        } else if let (None, Some(m)) = (month, months.iter().position(|m| lower.starts_with(m))) {
            month = Some(m);
        } else if let (None, Some((y, _))) = (year, number(token, 2..=4)) {
            year = Some(y);
        }
    }
    let year = match year? {
        y @ 70..=99 => y + 1900,
        y @ 0..=69 => y + 2000,
        y => y,
    };
    let (h, m, s) = time?;
    if year < 1601 {
        return Some(utc(1601, 1, 1, 0, 0, 0));
    }
    let month = Month::try_from(u8::try_from(month? + 1).ok()?).ok()?;
    let date = Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day?).ok()?)
        .ok()?;
    let time = Time::from_hms(
        u8::try_from(h).ok()?,
        u8::try_from(m).ok()?,
        u8::try_from(s).ok()?,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// A number of 1*`digits` DIGIT a token starts with (then nothing or a non-digit and
/// anything), and the rest of the token.
fn number(token: &str, digits: std::ops::RangeInclusive<usize>) -> Option<(u32, &str)> {
    let n = token.bytes().take_while(u8::is_ascii_digit).count();
    digits
        .contains(&n)
        .then(|| (token[..n].parse().unwrap_or(0), &token[n..]))
}

fn utc(year: i32, month: u8, day: u8, h: u8, m: u8, s: u8) -> OffsetDateTime {
    let date = Date::from_calendar_date(year, Month::try_from(month).unwrap(), day).unwrap();
    PrimitiveDateTime::new(date, Time::from_hms(h, m, s).unwrap()).assume_utc()
}

/// How long a cookie lives, as a browser keeps it.
#[derive(Debug)]
enum Life {
    /// Deleted (a `Max-Age` of 0 or less, an `Expires` gone by).
    Gone,
    /// Seconds from `now`.
    For(i128),
    /// Until the browser closes.
    Session,
}

fn life(c: &Read, now: OffsetDateTime) -> Life {
    let secs = match (c.max_age, c.expires) {
        (Some(secs), _) => secs,
        (None, Some(expires)) => (expires - now).whole_seconds().into(),
        (None, None) => return Life::Session,
    };
    if secs <= 0 {
        Life::Gone
    } else {
        Life::For(secs)
    }
}

fn prefixed(name: &str, prefix: &str) -> bool {
    name.get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

/// What is wrong with `sent`, the policy's `Set-Cookie` for the handler's `given` (`None`
/// when it was dropped). `now` is before the policy ran.
fn cookie_problem(
    rules: &Rules,
    given: &[u8],
    sent: Option<&HeaderValue>,
    now: OffsetDateTime,
) -> Option<String> {
    let given_text = std::str::from_utf8(given).ok();
    let Some(sent) = sent else {
        return plain(given_text?).then(|| "a plain cookie was dropped".to_owned());
    };
    let Ok(sent) = std::str::from_utf8(sent.as_bytes()) else {
        return Some("not UTF-8".to_owned());
    };
    let Some(given_text) = given_text else {
        return Some("bytes that are not UTF-8 went out".to_owned());
    };
    let (was, is) = (read(given_text), read(sent));
    let name = was.name.as_str();
    let named = |list: &[&str]| list.contains(&name);
    let mut problems = Vec::new();
    let mut check = |ok: bool, what: &str| {
        if !ok {
            problems.push(what.to_owned());
        }
    };
    check(
        is.name == was.name && is.value == was.value,
        "name or value changed",
    );
    if !given_text
        .chars()
        .any(|c| !c.is_ascii() && c.is_whitespace())
    {
        let pair = |text: &str| {
            Cookie::parse(text.to_owned())
                .ok()
                .map(|c| (c.name().to_owned(), c.value().to_owned()))
        };
        let pair_given = given_text.split(';').next().unwrap_or_default();
        check(
            pair(pair_given).is_none() || pair(sent) == pair(pair_given),
            "the cookie crate reads another name or value",
        );
    }
    check(is.secure || named(rules.insecure), "no Secure");
    check(!was.secure || is.secure, "Secure taken away");
    check(is.http_only || named(rules.readable), "no HttpOnly");
    check(!was.http_only || is.http_only, "HttpOnly taken away");
    let wanted = rules
        .same_site
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| *s);
    match is.same_site {
        Some(SameSite::Strict | SameSite::Lax) => {}
        Some(SameSite::None) => check(
            named(rules.same_site_none) && is.secure,
            "SameSite=None not named, or without Secure",
        ),
        None => check(false, "no valid SameSite"),
    }
    check(
        was.same_site != Some(SameSite::Strict)
            || is.same_site == Some(SameSite::Strict)
            || named(rules.same_site_none),
        "SameSite=Strict weakened",
    );
    check(
        wanted != Some(SameSite::Strict) || is.same_site == Some(SameSite::Strict),
        "the policy's SameSite=Strict not applied",
    );
    let (before, after) = (life(&was, now), life(&is, now));
    match (&before, &after) {
        (Life::Session, Life::Session) | (Life::Gone, Life::Gone) => {}
        (Life::For(_), Life::Gone) => {}
        (Life::For(b), Life::For(a)) => check(*a <= *b, "lives longer than given"),
        _ => check(false, "another kind of lifetime"),
    }
    if let Life::For(secs) = after {
        let slack = (OffsetDateTime::now_utc() - now).whole_seconds() + 2;
        check(
            secs <= i128::from(rules.cap) + i128::from(slack),
            "lifetime not capped",
        );
    }
    for ((key, n_was), (_, n_is)) in was.counts.iter().zip(&is.counts) {
        check(*n_is <= (*n_was).max(1), &format!("{key} added twice"));
    }
    check(
        was.others == is.others,
        "other attributes not kept as they came",
    );
    let host = prefixed(name, "__host-");
    check(
        !(host || prefixed(name, "__secure-") || prefixed(name, "__http-")) || is.secure,
        "prefixed cookie without Secure",
    );
    check(
        !(prefixed(name, "__http-") || prefixed(name, "__host-http-")) || is.http_only,
        "__Http- cookie without HttpOnly",
    );
    check(
        !host || is.path.as_deref() == Some("/") && is.domain.is_none(),
        "__Host- cookie without Path=/ or with a Domain",
    );
    (!problems.is_empty()).then(|| format!("{problems:?}\n  sent: {sent:?}"))
}

/// A cookie the policy has no reason to drop: short, named, no name prefix, attributes in
/// ASCII.
fn plain(text: &str) -> bool {
    let (pair, attributes) = text.split_once(';').unwrap_or((text, ""));
    let name = pair.split_once('=').map(|(n, _)| trim(n));
    text.len() <= 4096
        && attributes.is_ascii()
        && name.is_some_and(|n| {
            !n.is_empty() && !n.starts_with("__") && !n.bytes().any(|b| b.is_ascii_control())
        })
}

/// The identity a browser stores a cookie under (Chrome's reading of an empty `Domain`).
fn identity(value: &HeaderValue) -> Option<(String, Option<String>, String, bool)> {
    let c = read(std::str::from_utf8(value.as_bytes()).ok()?);
    let path = c.path.filter(|p| p.starts_with('/')).unwrap_or_default();
    Some((
        c.name,
        c.last_domain.filter(|d| !d.is_empty()),
        path,
        c.partitioned,
    ))
}

/// Headers a handler sets that the policy leaves alone (but for [`SLOTS`] in the slotted
/// set).
const OTHERS: &[&str] = &[
    "content-type",
    "vary",
    "link",
    "etag",
    "x-custom",
    "location",
    "content-language",
    "x-request-id",
    "ratelimit",
];

/// Security headers as a handler might set them itself, with weaker values.
const OWN_SECURITY: &[(&str, &[&str])] = &[
    ("x-frame-options", &["SAMEORIGIN", "DENY", "ALLOW-FROM x"]),
    ("x-content-type-options", &["", "nosniff"]),
    ("referrer-policy", &["unsafe-url", "no-referrer"]),
    ("cross-origin-opener-policy", &["unsafe-none"]),
    ("cross-origin-resource-policy", &["cross-origin"]),
    ("permissions-policy", &["camera=*"]),
    ("x-dns-prefetch-control", &["on"]),
    ("x-permitted-cross-domain-policies", &["all"]),
    (
        "content-security-policy",
        &["default-src *", "default-src 'self'"],
    ),
    ("content-security-policy-report-only", &["default-src *"]),
    (
        "strict-transport-security",
        &["max-age=0", "max-age=63072000; preload"],
    ),
    ("server", &["nginx/1.2"]),
    ("x-powered-by", &["Express", "PHP/5.4"]),
    ("x-aspnet-version", &["4.0"]),
    (
        "cache-control",
        &[
            "public, max-age=60",
            "no-store",
            "private",
            "s-maxage=10",
            "private=\"x\", max-age=5",
            "no-cache",
        ],
    ),
    ("cdn-cache-control", &["max-age=600"]),
    ("surrogate-control", &["max-age=600"]),
];

const SECURITY_NAMES: &[&str] = &[
    "x-frame-options",
    "x-content-type-options",
    "referrer-policy",
    "cross-origin-opener-policy",
    "cross-origin-resource-policy",
    "permissions-policy",
    "x-dns-prefetch-control",
    "x-permitted-cross-domain-policies",
];

const IDENTIFYING: &[&str] = &["server", "x-powered-by", "x-aspnet-version"];

/// A handler's response headers.
fn response(rng: &mut Rng, now: OffsetDateTime) -> Vec<(HeaderName, HeaderValue)> {
    if rng.chance(20) {
        // The most common response, which `apply_with` has a path of its own for.
        let json = HeaderValue::from_static("application/json");
        return vec![(header::CONTENT_TYPE, json)];
    }
    let mut headers = Vec::new();
    for _ in 0..rng.below(12) {
        let (name, value) = match rng.below(3) {
            0 => (
                "set-cookie",
                HeaderValue::from_bytes(&set_cookie(rng, now)).ok(),
            ),
            1 => {
                let (name, values) = OWN_SECURITY[rng.below(OWN_SECURITY.len())];
                (name, Some(HeaderValue::from_static(rng.pick(values))))
            }
            _ => {
                let name = rng.pick(OTHERS);
                let value = match rng.below(6) {
                    0 => HeaderValue::from_bytes(b"caf\xc3\xa9 \xff").ok(),
                    1 => Some(HeaderValue::from_static("text/html; charset=utf-8")),
                    _ => HeaderValue::from_str(&format!("v{}", rng.below(5))).ok(),
                };
                (name, value)
            }
        };
        if let Some(value) = value {
            headers.push((HeaderName::from_static(name), value));
        }
    }
    headers
}

/// Values of `name`, as text for the messages.
fn all(headers: &HeaderMap, name: &str) -> Vec<HeaderValue> {
    headers.get_all(name).iter().cloned().collect()
}

/// What is wrong with `out`, what `subject` made of the handler's `given` headers.
/// `slots` are the values the slotted set was given.
fn headers_problem(
    subject: &Subject,
    facts: &RequestFacts,
    given: &HeaderMap,
    out: &HeaderMap,
    slots: &[Option<HeaderValue>; 2],
) -> Option<String> {
    let mut problems = Vec::new();
    let csp = if subject.report_only {
        "content-security-policy-report-only"
    } else {
        "content-security-policy"
    };
    // The policy's headers, as it sends them with nothing of the handler's.
    let mut baseline = HeaderMap::new();
    subject.set.apply(facts, &mut baseline);
    let mut owned: Vec<&str> = SECURITY_NAMES
        .iter()
        .filter(|name| !subject.removed.contains(name))
        .copied()
        .collect();
    owned.push(csp);
    if subject.hsts && facts.https {
        owned.push("strict-transport-security");
    }
    for name in owned {
        let sent = all(out, name);
        let base = all(&baseline, name);
        // The nonce CSP differs per response; the rest must match.
        let same = sent == base || name == "content-security-policy" && subject.nonce;
        if base.len() > 1 || sent.len() != base.len() || !same {
            problems.push(format!("{name}: {sent:?}, the policy's {base:?}"));
        }
    }
    if facts.not_modified && subject.nonce && out.contains_key(csp) {
        problems.push("a 304 carried the policy's nonce CSP".to_owned());
    }
    if baseline.get("x-content-type-options").is_none() {
        problems.push("the baseline has no security headers".to_owned());
    }
    for name in IDENTIFYING {
        if out.contains_key(*name) {
            problems.push(format!("{name} went out"));
        }
    }
    for name in OTHERS {
        let mut expected = all(given, name);
        let slot = SLOTS.iter().position(|(n, _)| n == name);
        if let (true, Some(i)) = (subject.slotted, slot)
            && let Some(ours) = &slots[i]
        {
            expected = match SLOTS[i].1 {
                Merge::Replace => vec![ours.clone()],
                Merge::List => {
                    expected.push(ours.clone());
                    let text: Vec<&[u8]> = expected.iter().map(HeaderValue::as_bytes).collect();
                    vec![HeaderValue::from_bytes(&text.join(&b", "[..])).unwrap()]
                }
            };
        }
        if all(out, name) != expected {
            problems.push(format!(
                "{name}: {:?}, expected {expected:?}",
                all(out, name)
            ));
        }
    }
    if subject.report_only
        && all(out, "content-security-policy") != all(given, "content-security-policy")
    {
        problems.push("the route's own enforcing CSP changed beside a report-only one".into());
    }
    let hsts = all(out, "strict-transport-security");
    if !facts.https && !hsts.is_empty() {
        problems.push("HSTS over plain HTTP".to_owned());
    }
    if !subject.hsts && facts.https && hsts != all(given, "strict-transport-security") {
        problems.push("the route's own HSTS changed without a policy HSTS".to_owned());
    }
    // Cache-Control.
    let directives = |map: &HeaderMap| -> Vec<String> {
        map.get_all(header::CACHE_CONTROL)
            .iter()
            .flat_map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split(',')
                    .map(|d| d.trim().to_ascii_lowercase())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let strict = |d: &[String]| d.iter().any(|d| d == "no-store" || d == "private");
    let cache_given = directives(given);
    let must_be_private = facts.credentials && subject.no_store_with_credentials;
    let may_be_private = must_be_private || facts.nonce.is_some() && subject.nonce;
    let cache_out = directives(out);
    if strict(&cache_given) && all(out, "cache-control") != all(given, "cache-control") {
        problems.push("the handler's own no-store or private replaced".to_owned());
    }
    // A bare `private` wins over `public` and `s-maxage` beside it (RFC 9111 §5.2.2.7).
    // But a 304 without one, which leaves the stored response's (its 200's, made private).
    let leaves_the_stored = facts.not_modified && cache_given.is_empty();
    if must_be_private && !leaves_the_stored && !strict(&cache_out) {
        problems.push(format!("not private: {cache_out:?}"));
    }
    let changed = all(out, "cache-control") != all(given, "cache-control");
    if changed && !(may_be_private && strict(&cache_out)) {
        problems.push(format!("Cache-Control changed: {cache_out:?}"));
    }
    // A 304 gets the rule of what it says it revalidates (RFC 9111 §4.3.4): under a nonce
    // CSP, with a `Content-Type` (none here names an asset), a page; without one it may
    // revalidate an asset a CDN keeps, and keeps its own but for credentials. Without
    // `Cache-Control` it gets none but for credentials, leaving the stored response's.
    let says_a_page = given.contains_key(header::CONTENT_TYPE);
    let may_revalidate_a_page = facts.not_modified && facts.nonce.is_some() && subject.nonce;
    if may_revalidate_a_page && says_a_page && !cache_given.is_empty() && !strict(&cache_out) {
        problems.push(format!(
            "a 304 under a nonce CSP not private: {cache_out:?}"
        ));
    }
    if facts.not_modified && !says_a_page && !must_be_private && changed {
        problems.push(format!(
            "a 304 of no known page changed its Cache-Control: {cache_out:?}"
        ));
    }
    if leaves_the_stored && !cache_out.is_empty() {
        problems.push(format!("a 304 got a Cache-Control: {cache_out:?}"));
    }
    for name in ["cdn-cache-control", "surrogate-control"] {
        let kept = all(out, name) == all(given, name);
        if must_be_private && out.contains_key(name) || !may_be_private && !kept {
            problems.push(format!("{name}: {:?}", all(out, name)));
        }
    }
    // Cookies: each one's own fix, in order, leaving out only ones a later one replaces.
    let fixed: Vec<HeaderValue> = given
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| subject.cookies.fixed(v.clone()))
        .collect();
    let sent = all(out, "set-cookie");
    // `Expires` is capped from the clock: two runs may differ by a second.
    let undated = |v: &HeaderValue| -> Vec<u8> {
        String::from_utf8_lossy(v.as_bytes())
            .split("; ")
            .filter(|a| !a.starts_with("Expires="))
            .collect::<Vec<_>>()
            .join("; ")
            .into_bytes()
    };
    let mut rest = fixed.iter();
    for value in &sent {
        if !rest.any(|f| undated(f) == undated(value)) {
            problems.push(format!(
                "set-cookie {value:?} is none of {fixed:?}, in order"
            ));
            break;
        }
    }
    for (i, value) in fixed.iter().enumerate() {
        if sent.iter().any(|s| undated(s) == undated(value)) {
            continue;
        }
        let replaced = identity(value).is_some_and(|id| {
            fixed[i + 1..]
                .iter()
                .any(|later| identity(later) == Some(id.clone()))
        });
        if !replaced {
            problems.push(format!(
                "set-cookie {value:?} left out, no later one replaces it"
            ));
        }
    }
    (!problems.is_empty()).then(|| problems.join("\n  "))
}

fn run(seed: u64) {
    let subjects = subjects();
    let mut rng = Rng(fastrand::Rng::with_seed(seed));
    for case in 0..CASES {
        let now = OffsetDateTime::now_utc();
        let which = rng.below(subjects.len());
        let subject = &subjects[which];
        let (https, credentials) = (rng.chance(2), rng.chance(2));
        let (not_a_page, not_modified) = (rng.chance(5), rng.chance(5));
        let facts = RequestFacts {
            https,
            credentials,
            nonce: subject.nonce.then(CspNonce::generate),
            // A 304 is no page.
            not_a_page: not_a_page || not_modified,
            not_modified,
        };
        let given = response(&mut rng, now);
        let slots = [
            (!rng.chance(4)).then(|| HeaderValue::from_static("0193a1b2-c3d4")),
            (!rng.chance(4)).then(|| HeaderValue::from_static("\"per-ip\";r=1;t=2")),
        ];
        let mut map = HeaderMap::new();
        for (name, value) in &given {
            map.append(name.clone(), value.clone());
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let mut problems = Vec::new();
            for value in map.get_all(SET_COOKIE) {
                let sent = subject.cookies.fixed(value.clone());
                if let Some(why) =
                    cookie_problem(subject.rules, value.as_bytes(), sent.as_ref(), now)
                {
                    problems.push(format!(
                        "Set-Cookie {:?}: {why}",
                        value.as_bytes().escape_ascii().to_string()
                    ));
                }
            }
            let mut out = map.clone();
            if subject.slotted {
                subject.set.apply_with(&facts, &mut out, slots.clone());
            } else {
                subject.set.apply(&facts, &mut out);
            }
            if let Some(why) = headers_problem(subject, &facts, &map, &out, &slots) {
                problems.push(format!("{why}\n  out: {out:?}"));
            }
            problems
        }));
        let problems = match outcome {
            Ok(problems) => problems,
            Err(panic) => vec![format!(
                "panicked: {:?}",
                panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or(panic.downcast_ref::<&str>().copied())
            )],
        };
        assert!(
            problems.is_empty(),
            "seed {seed}, case {case}, subjects()[{which}], {facts:?}\n  given: {given:?}\n  {}",
            problems.join("\n  ")
        );
    }
}

#[test]
fn generated_responses_keep_the_promises() {
    match std::env::var("HEADERS_FUZZ_SEED") {
        Ok(seed) => run(seed.parse().expect("HEADERS_FUZZ_SEED is a number")),
        Err(_) => SEEDS.into_iter().for_each(run),
    }
}
