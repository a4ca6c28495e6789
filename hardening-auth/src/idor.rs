//! An IDOR probe for your own test suite.

use axum::body::Body;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::{Service, ServiceExt};

/// The routes of one resource, for [`idor_probe`].
#[derive(Debug, Clone)]
pub struct IdorRoutes {
    /// `POST` path that creates a resource, and its JSON body.
    pub create: (String, String),
    /// JSON Pointer to the new resource's id in the create response (for example `/id`).
    /// The list is searched for the id under its last segment's name (and `id`).
    pub id_pointer: String,
    /// The resource's path with `{id}` where the id goes (for example `/notes/{id}`).
    pub item: String,
    /// Each method that changes the item, with a JSON body for it: `PUT`, `PATCH` or both
    /// (`vec![(Method::PATCH, r#"{"title":"x"}"#.into())]`); none for a resource that
    /// cannot be changed.
    pub updates: Vec<(Method, String)>,
    /// The path that lists the caller's resources, if any; it must answer a 2xx JSON body.
    pub list: Option<String>,
}

/// What the probe found: a way for one principal to reach another's resource.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("IDOR: {0}")]
pub struct IdorFinding(pub String);

/// Credentials of one principal: a header and its value (`authorization: Bearer …` or a
/// session `cookie`).
pub type Credentials = (HeaderName, HeaderValue);

/// Proves that what `owner` creates cannot be read, changed, listed or deleted by `other`,
/// and that `other` cannot tell it exists: for GET, each of [`IdorRoutes::updates`] and
/// DELETE of the item `other` must get 404, answered exactly as the same request for an id
/// that does not exist; the item's id must not be in `other`'s list, which must answer a 2xx
/// JSON body; and afterwards the owner must still read it unchanged.
///
/// The list is searched at any depth for the id as a number under a member named `id` or
/// named by the last segment of [`IdorRoutes::id_pointer`] (`note_id` for `/note_id`), as
/// a member name, and as a whole token in any string (a link `"/notes/42"`), by the rule
/// below for echoed ids. A string of `other`'s own that holds the id as a word ("page 1 of
/// 1" for id 1) is reported too: give `other` no resources of its own, or ids that do not
/// read as words (UUIDs).
///
/// "Exactly as" compares the two answers' status, body and headers, leaving out what
/// differs per request by design: the `request_id` member and the request id wherever it
/// is echoed, the request's path wherever it is echoed (in `instance`, a `detail`, a
/// `Location`…), the id asked for wherever the answer echoes it as a whole token (the
/// item's id in one answer and the made-up id in the other, as written or percent-encoded,
/// in a header, a string, a member name or a number equal to it: `"detail": "note 42 not
/// found"`, `Location: /notes/42`, but not the `42` in `1042`, `note_42`, `1.42` or `-42`),
/// a CSP nonce, `Set-Cookie` values (names and attributes are compared), and the values
/// (not the presence) of `Date`, `Expires`, `Content-Length` (the bodies are compared
/// instead), `Retry-After`, `Age`, `RateLimit` (and the older `RateLimit-*` and
/// `X-RateLimit-*` counters), `Server-Timing`, `traceparent` and `tracestate`. Every other
/// header is compared with only those parts set aside, so an `ETag`, `Last-Modified`,
/// `Cache-Control` or `Vary` that only an existing resource gets is a finding, as is a 404
/// titled "Forbidden". Any other byte that differs between the bodies or headers, even
/// next to an echoed id, is a finding too.
///
/// The id that does not exist is made from the created one: a number plus 1 000 000, else
/// the same characters shifted by one (digits as digits, hex as hex, letters as letters),
/// so it parses like a real id. An update of it must not create a resource: a PUT that
/// creates where the other's item answers 404 tells the item apart, and is reported.
///
/// In a test of your own (a complete one is `tests/tests/idor.rs` in this repository):
///
/// ```text
/// hardening_auth::idor_probe(app.clone(), alice, bob, &routes).await?;
/// ```
pub async fn idor_probe<S>(
    app: S,
    owner: Credentials,
    other: Credentials,
    routes: &IdorRoutes,
) -> Result<(), IdorFinding>
where
    S: Service<Request<Body>, Response = axum::response::Response> + Clone,
    S::Error: std::fmt::Debug,
{
    let send = |who: &Credentials, method: Method, path: &str, body: Option<&str>| {
        let app = app.clone();
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(who.0.clone(), who.1.clone());
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req.body(Body::from(body.unwrap_or_default().to_owned()));
        let path = path.to_owned();
        async move {
            let req = req.map_err(|e| IdorFinding(format!("bad request for {path}: {e}")))?;
            let res = app
                .oneshot(req)
                .await
                .map_err(|e| IdorFinding(format!("{path}: {e:?}")))?;
            let (parts, body) = res.into_parts();
            let bytes = body
                .collect()
                .await
                .map_err(|_| IdorFinding(format!("{path}: unreadable body")))?
                .to_bytes();
            Ok::<_, IdorFinding>(Answer {
                status: parts.status,
                headers: parts.headers,
                body: String::from_utf8_lossy(&bytes).into_owned(),
                path,
            })
        }
    };
    let (path, body) = &routes.create;
    let created = send(&owner, Method::POST, path, Some(body)).await?;
    if !created.status.is_success() {
        return Err(IdorFinding(format!(
            "setup: create answered {}: {}",
            created.status, created.body
        )));
    }
    let created: Value = serde_json::from_str(&created.body)
        .map_err(|_| IdorFinding("setup: create did not answer JSON".into()))?;
    let id = match created.pointer(&routes.id_pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(IdorFinding(format!(
                "setup: no id at {}",
                routes.id_pointer
            )));
        }
    };
    let item = routes.item.replace("{id}", &id);
    let missing_id = made_up_id(&id);
    let missing = routes.item.replace("{id}", &missing_id);
    let before = send(&owner, Method::GET, &item, None).await?;
    if !before.status.is_success() {
        return Err(IdorFinding(format!(
            "setup: the owner cannot read {item} ({})",
            before.status
        )));
    }

    let updates = routes
        .updates
        .iter()
        .map(|(method, body)| (method.clone(), Some(body.as_str())));
    let attempts = std::iter::once((Method::GET, None))
        .chain(updates)
        .chain([(Method::DELETE, None)]);
    for (method, body) in attempts {
        let theirs = send(&other, method.clone(), &item, body).await?;
        if theirs.status != StatusCode::NOT_FOUND {
            return Err(IdorFinding(format!(
                "another principal's {method} {item} answered {} (expected 404): {}",
                theirs.status, theirs.body
            )));
        }
        let nothing = send(&other, method.clone(), &missing, body).await?;
        if let Some(difference) = theirs.difference(&id, &nothing, &missing_id) {
            return Err(IdorFinding(format!(
                "another principal's {method} {item} can be told apart from {method} \
                 {missing} (an id that does not exist): {difference}"
            )));
        }
    }
    if let Some(list) = &routes.list {
        let listed = send(&other, Method::GET, list, None).await?;
        let json = serde_json::from_str::<Value>(&listed.body).ok();
        let Some(listed) = json.filter(|_| listed.status.is_success()) else {
            return Err(IdorFinding(format!(
                "another principal's GET {list} answered {}, not a 2xx JSON body, so whether \
                 it lists id {id} is unknown: {}",
                listed.status, listed.body
            )));
        };
        let member = id_member(&routes.id_pointer);
        if contains_id(&listed, &EchoedId::new(&id), member.as_deref()) {
            return Err(IdorFinding(format!(
                "another principal's {list} lists id {id}"
            )));
        }
    }
    let after = send(&owner, Method::GET, &item, None).await?;
    if !after.status.is_success() || after.body != before.body {
        return Err(IdorFinding(format!(
            "another principal changed or deleted {item} (owner now gets {})",
            after.status
        )));
    }
    Ok(())
}

/// One response, read whole, and the path it answered.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
    path: String,
}

/// Headers whose value differs between any two responses (a clock, a counter, a trace);
/// only whether they are present is compared. `Content-Length` follows the body, which is
/// compared itself once its per-request parts are set aside.
const PRESENCE_ONLY: &[&str] = &[
    "age",
    "date",
    "expires",
    "content-length",
    "retry-after",
    "ratelimit",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "server-timing",
    "traceparent",
    "tracestate",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
];

impl Answer {
    /// The request id this response carries: its problem's `request_id`, else its
    /// `x-request-id` header.
    fn request_id(&self) -> Option<String> {
        serde_json::from_str::<Value>(&self.body)
            .ok()
            .and_then(|v| v.get("request_id")?.as_str().map(str::to_owned))
            .or_else(|| {
                self.headers
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            })
            .filter(|id| !id.is_empty())
    }

    /// `text` with this response's request id and path replaced by placeholders.
    fn generic(&self, text: &str, request_id: Option<&str>) -> String {
        let text = match request_id {
            Some(rid) => text.replace(rid, "{request_id}"),
            None => text.to_owned(),
        };
        EchoedId::path(&self.path).set_aside(&text)
    }

    /// The body with its per-request parts set aside: a JSON body loses `request_id`; the
    /// request id, the path and then `id` (the id this request asked for) become
    /// placeholders in every string, `id` also in member names and a number equal to `id`
    /// becomes its placeholder string; another body has the same done to its text.
    fn generic_body(&self, id: &EchoedId) -> Value {
        let request_id = self.request_id();
        let rid = request_id.as_deref();
        match serde_json::from_str::<Value>(&self.body) {
            Ok(mut value) => {
                if let Value::Object(members) = &mut value {
                    members.remove("request_id");
                }
                self.generic_json(&mut value, rid, id);
                value
            }
            Err(_) => Value::String(id.set_aside(&self.generic(&self.body, rid))),
        }
    }

    fn generic_json(&self, value: &mut Value, request_id: Option<&str>, id: &EchoedId) {
        match value {
            Value::String(s) => *s = id.set_aside(&self.generic(s, request_id)),
            Value::Number(n) if id.is(&n.to_string()) => {
                *value = Value::String(EchoedId::PLACEHOLDER.to_owned());
            }
            Value::Array(items) => items
                .iter_mut()
                .for_each(|v| self.generic_json(v, request_id, id)),
            Value::Object(members) => {
                *members = std::mem::take(members)
                    .into_iter()
                    .map(|(name, mut v)| {
                        self.generic_json(&mut v, request_id, id);
                        (id.set_aside(&name), v)
                    })
                    .collect();
            }
            _ => {}
        }
    }

    /// The header's values with their per-request parts set aside (`id` as in the body),
    /// sorted; for the [`PRESENCE_ONLY`] headers, one `(present)` per value.
    fn generic_header(
        &self,
        name: &HeaderName,
        request_id: Option<&str>,
        id: &EchoedId,
    ) -> Vec<String> {
        let mut values: Vec<String> = self
            .headers
            .get_all(name)
            .iter()
            .map(|v| {
                let v = String::from_utf8_lossy(v.as_bytes());
                let v = self.generic(&v, request_id);
                if PRESENCE_ONLY.contains(&name.as_str()) {
                    "(present)".to_owned()
                } else if name == http::header::SET_COOKIE {
                    id.set_aside(&without_cookie_value(&v))
                } else if name.as_str().starts_with("content-security-policy") {
                    id.set_aside(&without_nonces(&v))
                } else {
                    id.set_aside(&v)
                }
            })
            .collect();
        values.sort();
        values
    }

    /// How `self` (for id `id`) and `other` (for id `other_id`) differ beyond what differs per
    /// request, if they do.
    fn difference(&self, id: &str, other: &Self, other_id: &str) -> Option<String> {
        if self.status != other.status {
            return Some(format!("status {} vs {}", self.status, other.status));
        }
        let (id, other_id) = (EchoedId::new(id), EchoedId::new(other_id));
        let (ours, theirs) = (self.generic_body(&id), other.generic_body(&other_id));
        if ours != theirs {
            let what = match (&ours, &theirs) {
                (Value::Object(a), Value::Object(b)) => a
                    .keys()
                    .chain(b.keys())
                    .find(|k| a.get(*k) != b.get(*k))
                    .map(|k| {
                        let show =
                            |v: Option<&Value>| v.map_or("(absent)".into(), Value::to_string);
                        format!(
                            "body member {k:?}: {} vs {}",
                            show(a.get(k)),
                            show(b.get(k))
                        )
                    }),
                _ => None,
            };
            return Some(what.unwrap_or_else(|| format!("body {ours} vs {theirs}")));
        }
        let (our_rid, their_rid) = (self.request_id(), other.request_id());
        let mut names: Vec<&HeaderName> = self.headers.keys().chain(other.headers.keys()).collect();
        names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        names.dedup();
        names.into_iter().find_map(|name| {
            let a = self.generic_header(name, our_rid.as_deref(), &id);
            let b = other.generic_header(name, their_rid.as_deref(), &other_id);
            (a != b).then(|| {
                let show = |v: &[String]| {
                    if v.is_empty() {
                        "(absent)".to_owned()
                    } else {
                        format!("{v:?}")
                    }
                };
                format!("header {name}: {} vs {}", show(&a), show(&b))
            })
        })
    }
}

/// The id one request asked for, as an answer may echo it: as written and, when it has bytes
/// that a URI path would percent-encode, percent-encoded (upper- and lower-case hex). Also
/// the request's path ([`EchoedId::path`]).
struct EchoedId {
    /// The id and its percent-encoded spellings, longest first, so that an encoded form is
    /// set aside whole before the id itself is looked for in it (`%` encodes as `%25`).
    spellings: Vec<String>,
    /// The id's first and its last byte.
    ends: (Option<u8>, Option<u8>),
    /// What each occurrence becomes: [`Self::PLACEHOLDER`], or `{path}` for a path.
    placeholder: &'static str,
}

impl EchoedId {
    /// What every spelling of the id becomes, the same for the item's id and the made-up
    /// one.
    const PLACEHOLDER: &'static str = "{id}";

    fn new(id: &str) -> Self {
        let mut spellings = Vec::new();
        if !id.is_empty() {
            spellings.push(id.to_owned());
            for upper in [true, false] {
                let encoded = percent_encoded(id, upper);
                if !spellings.contains(&encoded) {
                    spellings.push(encoded);
                }
            }
        }
        spellings.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self::with_spellings(id, spellings, Self::PLACEHOLDER)
    }

    /// The request's path as an answer may echo it (as written), set aside as `{path}` by
    /// the same whole-token rule: `/items/1` in `/items/1?x` but not in `/items/10`.
    fn path(path: &str) -> Self {
        let spellings = if path.is_empty() {
            Vec::new()
        } else {
            vec![path.to_owned()]
        };
        Self::with_spellings(path, spellings, "{path}")
    }

    fn with_spellings(id: &str, spellings: Vec<String>, placeholder: &'static str) -> Self {
        Self {
            spellings,
            ends: (id.bytes().next(), id.bytes().next_back()),
            placeholder,
        }
    }

    /// Whether `text` is exactly the id, in one of its spellings.
    fn is(&self, text: &str) -> bool {
        self.spellings.iter().any(|s| s == text)
    }

    /// Whether `text` holds the id as a whole token (see [`Self::set_aside`]).
    fn occurs_in(&self, text: &str) -> bool {
        text.char_indices()
            .any(|(at, _)| self.whole_token_at(text, at).is_some())
    }

    /// The spelling of the id that stands as a whole token at `text[at..]`, if one does.
    fn whole_token_at(&self, text: &str, at: usize) -> Option<&str> {
        let rest = text.get(at..)?;
        self.spellings
            .iter()
            .find(|spelling| {
                rest.starts_with(spelling.as_str())
                    && self.stands_alone(text.as_bytes(), at, at + spelling.len())
            })
            .map(String::as_str)
    }

    /// `text` with each whole-token occurrence of the id, in any of its spellings, replaced
    /// by its placeholder.
    ///
    /// An occurrence is a whole token unless the token it stands in goes on past it:
    /// - a word (ASCII letters, digits and `_`) goes on past an id that starts (ends) with
    ///   a word character: `7` is not the token in `17`, `7a` or `note_7`;
    /// - a number goes on past an id that starts (ends) with a digit: `.` between digits
    ///   (`1.7`, `7.5`, `1.7.2`), `-` between digits (`3-7`, `2026-07-17`), a sign (`-7`)
    ///   and an exponent's sign (`1e-7`, `1E+7`), as in JSON numbers.
    ///
    /// Other punctuation ends a token: `7` is set aside in `item 7.`, `/items/7.json`,
    /// `item-7`, `"note-7-v2"` and `(7)`. A `%XX` escape next to the id counts as the
    /// character it encodes (`next=%2F7`, but not `%417`), and no occurrence starts inside
    /// an escape (`%27`). An id that starts (ends) with other punctuation is its own boundary
    /// there (`-7` in `x-7`).
    fn set_aside(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        while let Some(rest) = text.get(at..) {
            let Some(c) = rest.chars().next() else {
                break;
            };
            if let Some(spelling) = self.whole_token_at(text, at) {
                out.push_str(self.placeholder);
                at += spelling.len();
            } else {
                out.push(c);
                at += c.len_utf8();
            }
        }
        out
    }

    /// Whether the occurrence of the id at `text[start..end]` is a whole token (see
    /// [`Self::set_aside`]).
    fn stands_alone(&self, text: &[u8], start: usize, end: usize) -> bool {
        let inside_escape = start
            .checked_sub(1)
            .is_some_and(|i| escaped(&text[i..]).is_some());
        let (first, last) = self.ends;
        !(inside_escape || goes_on_before(text, start, first) || goes_on_after(text, end, last))
    }
}

/// An ASCII letter, digit or `_`.
fn is_word(b: Option<u8>) -> bool {
    b.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn is_digit(b: Option<u8>) -> bool {
    b.is_some_and(|b| b.is_ascii_digit())
}

/// The character that ends right before `text[at]` (a `%XX` escape counting as the byte it
/// encodes), and where it starts; none before `text[0]`.
fn char_before(text: &[u8], at: usize) -> (Option<u8>, usize) {
    if let Some(b) = at.checked_sub(3).and_then(|i| escaped(&text[i..])) {
        return (Some(b), at - 3);
    }
    match at.checked_sub(1) {
        Some(i) => (Some(text[i]), i),
        None => (None, 0),
    }
}

/// The character that starts at `text[at]` (a `%XX` escape counting as the byte it
/// encodes), and where the next one starts.
fn char_after(text: &[u8], at: usize) -> (Option<u8>, usize) {
    match escaped(text.get(at..).unwrap_or_default()) {
        Some(b) => (Some(b), at + 3),
        None => (text.get(at).copied(), at + 1),
    }
}

/// Whether the token at `text[start]`, whose first byte is `first`, goes on before it: a
/// word character before a word, or the number's `.`, `-` or sign before a digit.
fn goes_on_before(text: &[u8], start: usize, first: Option<u8>) -> bool {
    let (b1, at1) = char_before(text, start);
    if is_word(first) && is_word(b1) {
        return true;
    }
    if !is_digit(first) {
        return false;
    }
    let (b2, at2) = char_before(text, at1);
    let b3 = char_before(text, at2).0;
    // `1e-7`, `2.5E+7`: the sign of an exponent.
    let exponent = matches!(b2, Some(b'e' | b'E')) && is_digit(b3);
    match b1 {
        Some(b'.') => is_digit(b2),
        // `-7`, `3-7`, `1e-7`; not `item-7`, where it ends a word.
        Some(b'-') => !is_word(b2) || is_digit(b2) || exponent,
        Some(b'+') => exponent,
        _ => false,
    }
}

/// Whether the token ending at `text[end]`, whose last byte is `last`, goes on after it:
/// a word character after a word, or `.` or `-` between digits.
fn goes_on_after(text: &[u8], end: usize, last: Option<u8>) -> bool {
    let (a1, at1) = char_after(text, end);
    if is_word(last) && is_word(a1) {
        return true;
    }
    is_digit(last) && matches!(a1, Some(b'.' | b'-')) && is_digit(char_after(text, at1).0)
}

/// The byte that the `%XX` escape at the start of `text` encodes, if one is there.
fn escaped(text: &[u8]) -> Option<u8> {
    let hex = |b: u8| char::from(b).to_digit(16);
    match text {
        [b'%', high, low, ..] => Some(u8::try_from(hex(*high)? * 16 + hex(*low)?).ok()?),
        _ => None,
    }
}

/// `id` with every byte but RFC 3986's unreserved ones (`A-Z a-z 0-9 - . _ ~`)
/// percent-encoded, with upper- or lower-case hex digits.
fn percent_encoded(id: &str, upper: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(id.len());
    for &b in id.as_bytes() {
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

/// `Set-Cookie` with its value replaced: which cookie, and how, is compared; its value
/// (a fresh CSRF token, say) is not.
fn without_cookie_value(set_cookie: &str) -> String {
    let (pair, attributes) = set_cookie.split_once(';').unwrap_or((set_cookie, ""));
    let name = pair.split_once('=').map_or(pair, |(name, _)| name);
    format!("{}=…;{attributes}", name.trim())
}

/// A CSP with each `'nonce-…'` source replaced by `'nonce'` (a fresh nonce per response).
fn without_nonces(csp: &str) -> String {
    let mut out = String::with_capacity(csp.len());
    let mut rest = csp;
    while let Some(start) = rest.find("'nonce-") {
        out.push_str(&rest[..start]);
        out.push_str("'nonce'");
        let after = &rest[start + "'nonce-".len()..];
        rest = after.find('\'').map_or("", |end| &after[end + 1..]);
    }
    out.push_str(rest);
    out
}

/// An id that does not exist, shaped like `id` so that it parses as one: a number plus a
/// million, else every digit and letter shifted by one within its kind (within `0-9a-f` when
/// every letter is a hex digit, as in a UUID).
fn made_up_id(id: &str) -> String {
    if let Some(n) = id
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_add(1_000_000))
    {
        return n.to_string();
    }
    let hex = id
        .chars()
        .all(|c| !c.is_ascii_alphabetic() || c.is_ascii_hexdigit());
    let shift = |c: char, first: u8, count: u8| char::from(first + (c as u8 - first + 1) % count);
    let made_up: String = id
        .chars()
        .map(|c| match c {
            '0'..='9' => shift(c, b'0', 10),
            'a'..='z' if hex => shift(c, b'a', 6),
            'A'..='Z' if hex => shift(c, b'A', 6),
            'a'..='z' => shift(c, b'a', 26),
            'A'..='Z' => shift(c, b'A', 26),
            _ => c,
        })
        .collect();
    if made_up == id {
        format!("{id}0")
    } else {
        made_up
    }
}

/// The member name the id is under: the last segment of `id_pointer` (`note_id` for
/// `/data/note_id`), unescaped (RFC 6901); none for the whole document (`""`).
fn id_member(id_pointer: &str) -> Option<String> {
    let (_, last) = id_pointer.rsplit_once('/')?;
    Some(last.replace("~1", "/").replace("~0", "~"))
}

/// Whether `value` holds `id` anywhere: as a number under a member named `id` or `member`,
/// as a member name, or as a whole token in a string (`"/notes/42"`, `"42"`; not
/// `"/notes/420"`). Other numbers are not searched: a count of 42 is not id 42.
fn contains_id(value: &Value, id: &EchoedId, member: Option<&str>) -> bool {
    match value {
        Value::String(s) => id.occurs_in(s),
        Value::Object(map) => map.iter().any(|(k, v)| {
            let named_as_id = k == "id" || Some(k.as_str()) == member;
            let number = matches!(v, Value::Number(n) if id.is(&n.to_string()));
            id.is(k) || (named_as_id && number) || contains_id(v, id, member)
        }),
        Value::Array(items) => items.iter().any(|v| contains_id(v, id, member)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::{Path, State};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use hardening_errors::{Problem, RequestId};
    use http::header::{CACHE_CONTROL, ETAG, LOCATION};
    use http::{HeaderMap, Uri};

    use super::*;

    /// How the test app answers another principal's item, beside a missing one.
    #[derive(Clone, Copy, PartialEq)]
    enum NotYours {
        /// The very same problem as a missing item (each with its own request id and path).
        SameAsMissing,
        /// A 404 titled "Forbidden": the status hides it, the body does not.
        ForbiddenTitle,
        /// The same problem body, with the item's `ETag`.
        WithEtag,
        /// The same problem body, cacheable unlike a missing item's.
        Cacheable,
        /// A detail saying the item is someone else's (with an echo, "item 1 is not yours"
        /// beside "item 1000001 not found").
        TellsOwnedByOther,
        /// With [`Echo::BesideNumbers`], a detail counting the item: "item 1 not found in 11
        /// of 21 shelves" beside "item 1000001 not found in 10 of 21 shelves".
        CountsTheItem,
        /// With [`Echo::InHeaders`], a `Location` that names the owner as well as the id.
        LocationNamesOwner,
    }

    /// Where the test app's 404 problem names the id it was asked for, as many services do.
    #[derive(Clone, Copy, PartialEq)]
    enum Echo {
        Nowhere,
        /// In its `detail` and an `item` member.
        InBody,
        /// As `InBody`, the detail also holding numbers that have the id's digit in them
        /// ("item 1 not found in 10 of 21 shelves").
        BesideNumbers,
        /// As `InBody`, and in a `Location` and an `ETag`.
        InHeaders,
    }

    #[derive(Clone)]
    struct App {
        items: Arc<Mutex<BTreeMap<u64, (String, String)>>>,
        requests: Arc<AtomicU64>,
        not_yours: NotYours,
        echo: Echo,
    }

    fn json(value: Value) -> Response {
        (
            [(http::header::CONTENT_TYPE, "application/json")],
            value.to_string(),
        )
            .into_response()
    }

    fn user(headers: &HeaderMap) -> String {
        headers
            .get("x-user")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    /// A 404 problem carrying what differs per request: its request id and its path, and
    /// with an [`Echo`] the id asked for.
    fn not_found(app: &App, uri: &Uri, id: u64) -> Problem {
        let n = app.requests.fetch_add(1, Ordering::Relaxed);
        let echoed = |detail: String| {
            Problem::new(StatusCode::NOT_FOUND)
                .with_detail(detail)
                .with_extension("item", id)
        };
        let problem = match app.echo {
            Echo::Nowhere => {
                Problem::new(StatusCode::NOT_FOUND).with_detail("no resource at this path")
            }
            Echo::InBody => echoed(format!("item {id} not found")),
            Echo::BesideNumbers => echoed(format!("item {id} not found in 10 of 21 shelves")),
            Echo::InHeaders => echoed(format!("item {id} not found"))
                .with_header(
                    LOCATION,
                    HeaderValue::from_str(&format!("/items/{id}")).unwrap(),
                )
                .with_header(
                    ETAG,
                    HeaderValue::from_str(&format!("\"item-{id}\"")).unwrap(),
                ),
        };
        problem
            .with_instance(uri.path())
            .with_request_id(RequestId::parse(format!("req-{n}")).unwrap())
            .with_header(
                HeaderName::from_static("x-request-id"),
                HeaderValue::from_str(&format!("req-{n}")).unwrap(),
            )
            .with_header(
                http::header::SET_COOKIE,
                HeaderValue::from_str(&format!("csrf=t{n}; Path=/; Secure")).unwrap(),
            )
            .with_header(
                http::header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_str(&format!("script-src 'nonce-{n}abc' 'strict-dynamic'"))
                    .unwrap(),
            )
            // Per-call counters of a rate limiter in front, and a cache's age.
            .with_header(
                HeaderName::from_static("x-ratelimit-remaining"),
                HeaderValue::from(1000 - n),
            )
            .with_header(
                HeaderName::from_static("ratelimit-remaining"),
                HeaderValue::from(1000 - n),
            )
            .with_header(http::header::AGE, HeaderValue::from(n))
    }

    async fn item(
        State(app): State<App>,
        Path(id): Path<u64>,
        headers: HeaderMap,
        uri: Uri,
    ) -> Response {
        let found = app.items.lock().unwrap().get(&id).cloned();
        match found {
            Some((owner, title)) if owner == user(&headers) => {
                json(serde_json::json!({ "id": id, "title": title }))
            }
            Some((owner, _)) => {
                let problem = not_found(&app, &uri, id);
                match app.not_yours {
                    NotYours::SameAsMissing => problem.into_response(),
                    NotYours::ForbiddenTitle => problem
                        .with_type("about:blank", "Forbidden")
                        .into_response(),
                    NotYours::WithEtag => {
                        let mut res = problem.into_response();
                        res.headers_mut()
                            .insert(ETAG, HeaderValue::from_static("\"v1\""));
                        res
                    }
                    NotYours::Cacheable => {
                        let mut res = problem.into_response();
                        res.headers_mut()
                            .insert(CACHE_CONTROL, HeaderValue::from_static("private"));
                        res
                    }
                    NotYours::TellsOwnedByOther => problem
                        .with_detail(format!("item {id} is not yours"))
                        .into_response(),
                    NotYours::CountsTheItem => problem
                        .with_detail(format!("item {id} not found in 11 of 21 shelves"))
                        .into_response(),
                    NotYours::LocationNamesOwner => {
                        let mut res = problem.into_response();
                        let location = format!("/items/{id}?owner={owner}");
                        res.headers_mut()
                            .insert(LOCATION, HeaderValue::from_str(&location).unwrap());
                        res
                    }
                }
            }
            None => not_found(&app, &uri, id).into_response(),
        }
    }

    async fn create(State(app): State<App>, headers: HeaderMap) -> Response {
        let mut items = app.items.lock().unwrap();
        let id = items.len() as u64 + 1;
        items.insert(id, (user(&headers), "alice's secret".to_owned()));
        json(serde_json::json!({ "id": id }))
    }

    fn app(not_yours: NotYours, echo: Echo) -> Router {
        Router::new()
            .route("/items", post(create))
            .route("/items/{id}", get(item).put(item).delete(item))
            .with_state(App {
                items: Arc::default(),
                requests: Arc::default(),
                not_yours,
                echo,
            })
    }

    fn who(name: &'static str) -> Credentials {
        (
            HeaderName::from_static("x-user"),
            HeaderValue::from_static(name),
        )
    }

    fn routes() -> IdorRoutes {
        IdorRoutes {
            create: ("/items".into(), "{}".into()),
            id_pointer: "/id".into(),
            item: "/items/{id}".into(),
            updates: vec![(Method::PUT, r#"{"title":"bob was here"}"#.into())],
            list: None,
        }
    }

    async fn probe(not_yours: NotYours) -> Result<(), IdorFinding> {
        idor_probe(
            app(not_yours, Echo::Nowhere),
            who("alice"),
            who("bob"),
            &routes(),
        )
        .await
    }

    /// [`probe`] against an app whose 404 problems name the id asked for.
    async fn probe_echoing_id(not_yours: NotYours) -> Result<(), IdorFinding> {
        probe_echoing(not_yours, Echo::InBody, &routes()).await
    }

    async fn probe_echoing(
        not_yours: NotYours,
        echo: Echo,
        routes: &IdorRoutes,
    ) -> Result<(), IdorFinding> {
        idor_probe(app(not_yours, echo), who("alice"), who("bob"), routes).await
    }

    /// Per-request members (`request_id`, an `instance` naming the path) and headers (the
    /// request id, a fresh cookie value, a CSP nonce) differ between any two answers; they
    /// are not a leak.
    #[tokio::test]
    async fn indistinguishable_answers_pass() {
        probe(NotYours::SameAsMissing).await.unwrap();
    }

    /// "Not yours" and "not found" must be indistinguishable, not just both 404: a body
    /// titled "Forbidden" tells an attacker the id exists. The probe compared status codes
    /// only and passed this.
    #[tokio::test]
    async fn a_forbidden_title_behind_a_404_is_a_finding() {
        let finding = probe(NotYours::ForbiddenTitle).await.unwrap_err();
        assert!(finding.0.contains("title"), "{finding}");
        assert!(finding.0.contains("Forbidden"), "{finding}");
    }

    /// Headers that only an existing resource has (its `ETag`, other caching) are leaks.
    #[tokio::test]
    async fn existence_revealing_headers_are_a_finding() {
        let finding = probe(NotYours::WithEtag).await.unwrap_err();
        assert!(finding.0.contains("etag"), "{finding}");
        let finding = probe(NotYours::Cacheable).await.unwrap_err();
        assert!(finding.0.contains("cache-control"), "{finding}");
    }

    /// A service that names the id it was asked for ("item 1 not found", `"item": 1`)
    /// answers "not yours" and "does not exist" alike when nothing but the id differs. The
    /// probe reported the echoed id as a leak.
    #[tokio::test]
    async fn an_echoed_id_alone_is_not_a_finding() {
        probe_echoing_id(NotYours::SameAsMissing).await.unwrap();
    }

    /// Setting the echoed id aside must not hide a difference beside it, even in the same
    /// member.
    #[tokio::test]
    async fn a_difference_beside_an_echoed_id_is_a_finding() {
        let finding = probe_echoing_id(NotYours::TellsOwnedByOther)
            .await
            .unwrap_err();
        assert!(finding.0.contains("detail"), "{finding}");
        assert!(finding.0.contains("is not yours"), "{finding}");
        let finding = probe_echoing_id(NotYours::ForbiddenTitle)
            .await
            .unwrap_err();
        assert!(finding.0.contains("Forbidden"), "{finding}");
    }

    /// The request's path is set aside as a whole token too: `/items/1` where it stands,
    /// not inside `/items/10` (it was, so a body linking item 10 differed from the made-up
    /// id's answer).
    #[test]
    fn the_path_is_set_aside_only_as_a_whole_token() {
        let answer = Answer {
            status: StatusCode::NOT_FOUND,
            headers: HeaderMap::new(),
            body: String::new(),
            path: "/items/1".to_owned(),
        };
        assert_eq!(
            answer.generic("/items/1 /items/10 /items/1?x=1 /items/1/ /items/1a", None),
            "{path} /items/10 {path}?x=1 {path}/ /items/1a"
        );
    }

    /// A short id ("1") echoed beside numbers with that digit in them ("10 of 21 shelves")
    /// is set aside where it stands alone, not inside the numbers. Every `1` was set aside,
    /// and "{id}0 of 2{id} shelves" beside "10 of 21 shelves" was reported.
    #[tokio::test]
    async fn a_short_id_echoed_beside_numbers_is_not_a_finding() {
        probe_echoing(NotYours::SameAsMissing, Echo::BesideNumbers, &routes())
            .await
            .unwrap();
    }

    /// A difference beside a short echoed id is still found, even in a number with the id's
    /// digit in it.
    #[tokio::test]
    async fn a_difference_beside_a_short_echoed_id_is_a_finding() {
        let finding = probe_echoing(NotYours::CountsTheItem, Echo::BesideNumbers, &routes())
            .await
            .unwrap_err();
        assert!(finding.0.contains("detail"), "{finding}");
        assert!(finding.0.contains("11 of 21"), "{finding}");
        let finding = probe_echoing(NotYours::TellsOwnedByOther, Echo::BesideNumbers, &routes())
            .await
            .unwrap_err();
        assert!(finding.0.contains("is not yours"), "{finding}");
    }

    /// A `Location` and an `ETag` that name the id asked for ("/items/1", "item-1") are set
    /// aside like the body's echo (the probe asks with a query, so that the request's path
    /// does not cover the `Location`). Headers were compared whole, and reported.
    #[tokio::test]
    async fn an_id_echoed_in_headers_is_not_a_finding() {
        let routes = IdorRoutes {
            item: "/items/{id}?fields=all".into(),
            ..routes()
        };
        probe_echoing(NotYours::SameAsMissing, Echo::InHeaders, &routes)
            .await
            .unwrap();
        let finding = probe_echoing(NotYours::LocationNamesOwner, Echo::InHeaders, &routes)
            .await
            .unwrap_err();
        assert!(finding.0.contains("header location"), "{finding}");
        assert!(finding.0.contains("owner=alice"), "{finding}");
    }

    /// Only whole tokens are set aside: not the `7` in `17`, `7a` or `%27` (an escaped
    /// `'`), but the one in `/7.json` or after an escaped `/`; an escape next to the id counts
    /// as the character it encodes, and punctuation ending an id is its own boundary.
    #[test]
    fn an_echoed_id_is_set_aside_only_as_a_whole_token() {
        let seven = EchoedId::new("7");
        assert_eq!(
            seven.set_aside(r#""count": 17, "item": 7, "x": "7a", "q": "%27", "s": "7%20"#),
            r#""count": 17, "item": {id}, "x": "7a", "q": "%27", "s": "{id}%20"#
        );
        assert_eq!(
            seven.set_aside("/items/7.json next=%2F7 %417 7%41 (7)"),
            "/items/{id}.json next=%2F{id} %417 7%41 ({id})"
        );
        let uuid = EchoedId::new("550e8400-e29b-41d4-a716-446655440000");
        assert_eq!(
            uuid.set_aside(
                "/n/550e8400-e29b-41d4-a716-446655440000/x x550e8400-e29b-41d4-a716-446655440000"
            ),
            "/n/{id}/x x550e8400-e29b-41d4-a716-446655440000"
        );
        assert_eq!(EchoedId::new("-7").set_aside("x-7 -70"), "x{id} -70");
        // `a/` ends with punctuation in each spelling, the encoded one's `%2F` included.
        assert_eq!(
            EchoedId::new("a/").set_aside("a/b a%2Fb a%2fb ba/"),
            "{id}b {id}b {id}b ba/"
        );
        assert_eq!(EchoedId::new("2F").set_aside("%2F 2F"), "%2F {id}");
        assert_eq!(seven.set_aside("é7é 7\u{0}"), "é{id}é {id}\u{0}");
    }

    /// A token goes on past `_`, and past `.` and `-` in a number, as an id's would: `7` is
    /// not the id in `note_7`, `1.7`, `7.5`, `3-7`, `-7` or `1e-7`. Each was set aside
    /// (`.`, `-` and `_` counted as boundaries), so text that merely held such a token
    /// differed between the two answers, or a token that is not the id was taken for it.
    /// Other punctuation still ends a token: `item 7.`, `/items/7.json`, `"note-7-v2"`.
    #[test]
    fn an_id_inside_a_word_or_a_number_is_not_set_aside() {
        let seven = EchoedId::new("7");
        let not_the_id = "note_7 _7 7_draft 1.7 7.5 v1.7.2 1%2E7 3-7 7-8 -7 [-7] /-7 1e-7 \
                          2.5E+7 7e3";
        assert_eq!(seven.set_aside(not_the_id), not_the_id);
        assert_eq!(
            seven.set_aside("item 7. /items/7.json item-7 \"note-7-v2\" 7-x x.7 +7 7. 7:"),
            "item {id}. /items/{id}.json item-{id} \"note-{id}-v2\" {id}-x x.{id} +{id} {id}. {id}:"
        );
        assert_eq!(
            EchoedId::new("17").set_aside("2026-07-17 17-07-2026 17/07"),
            "2026-07-17 17-07-2026 {id}/07"
        );
        assert_eq!(
            EchoedId::new("note_7").set_aside("note_7 my_note_7 note_7_v2 note_7."),
            "{id} my_note_7 note_7_v2 {id}."
        );
    }

    /// Answers that hold a number or word with the id's digits in it (`v1.7`, `-7`,
    /// `shelf_7`) beside the echoed id are alike; JSON numbers are still compared whole (a
    /// `-7` beside the made-up id's `-1000007` differs). The `7` in `v1.7` was set aside in
    /// one answer only, and reported.
    #[test]
    fn answers_holding_the_ids_digits_in_other_tokens_are_alike() {
        let answer = |path: &str, body: &str| Answer {
            status: StatusCode::NOT_FOUND,
            headers: HeaderMap::new(),
            body: body.to_owned(),
            path: path.to_owned(),
        };
        let text = answer("/n/7", "note 7 not found (API v1.7, shelf_7, delta -7)");
        let missing = answer(
            "/n/1000007",
            "note 1000007 not found (API v1.7, shelf_7, delta -7)",
        );
        assert_eq!(text.difference("7", &missing, "1000007"), None);
        let json = answer(
            "/n/7",
            r#"{"detail":"note 7 not found","api":"1.7","note":7,"ratio":1.7,"delta":-7}"#,
        );
        let missing = answer(
            "/n/1000007",
            r#"{"detail":"note 1000007 not found","api":"1.7","note":1000007,"ratio":1.7,"delta":-7}"#,
        );
        assert_eq!(json.difference("7", &missing, "1000007"), None);
        let missing = answer(
            "/n/1000007",
            r#"{"detail":"note 1000007 not found","api":"1.7","note":1000007,"ratio":1.7,"delta":-1000007}"#,
        );
        let difference = json.difference("7", &missing, "1000007");
        assert!(
            difference.as_deref().is_some_and(|d| d.contains("delta")),
            "{difference:?}"
        );
    }

    /// Answers alike but for a short echoed id, in text and in headers; any other
    /// difference, next to the id or in a header, still reported. A short id was set aside
    /// inside other numbers too, and headers were compared whole.
    #[test]
    fn answers_differing_only_by_a_short_echoed_id_are_alike() {
        let answer = |path: &str, body: &str, headers: &[(HeaderName, String)]| Answer {
            status: StatusCode::NOT_FOUND,
            headers: headers
                .iter()
                .map(|(name, value)| (name.clone(), HeaderValue::from_str(value).unwrap()))
                .collect(),
            body: body.to_owned(),
            path: path.to_owned(),
        };
        let echo = |id: &str| {
            vec![
                (LOCATION, format!("/notes/{id}")),
                (http::header::CONTENT_LOCATION, format!("/notes/{id}.json")),
                (
                    http::header::LINK,
                    format!("</notes/{id}/history>; rel=\"history\""),
                ),
                (ETAG, format!("W/\"note-{id}-v17\"")),
            ]
        };
        let text = answer("/n/7", r#"note 7 not found; "count": 17"#, &echo("7"));
        let missing = answer(
            "/n/1000007",
            r#"note 1000007 not found; "count": 17"#,
            &echo("1000007"),
        );
        assert_eq!(text.difference("7", &missing, "1000007"), None);
        let json = answer("/n/7", r#"{"detail":"note 7 of 17","7":"r7"}"#, &[]);
        let missing = answer(
            "/n/1000007",
            r#"{"detail":"note 1000007 of 17","1000007":"r7"}"#,
            &[],
        );
        assert_eq!(json.difference("7", &missing, "1000007"), None);

        let missing = answer(
            "/n/1000007",
            r#"note 1000007 not found; "count": 18"#,
            &echo("1000007"),
        );
        let difference = text.difference("7", &missing, "1000007");
        assert!(
            difference.as_deref().is_some_and(|d| d.contains("18")),
            "{difference:?}"
        );
        let mut headers = echo("1000007");
        headers[3].1 = "W/\"note-1000007-v18\"".into();
        let missing = answer(
            "/n/1000007",
            r#"note 1000007 not found; "count": 17"#,
            &headers,
        );
        let difference = text.difference("7", &missing, "1000007");
        assert!(
            difference.as_deref().is_some_and(|d| d.contains("etag")),
            "{difference:?}"
        );
    }

    /// The echoed id is set aside as written and percent-encoded, longest spelling first;
    /// nothing else in the text is touched, and an empty id sets nothing aside.
    #[test]
    fn an_echoed_id_is_set_aside_in_each_spelling() {
        let id = EchoedId::new("a b/%");
        assert_eq!(
            id.set_aside("a b/% at /items/a%20b%2F%25 or /items/a%20b%2f%25; a b"),
            "{id} at /items/{id} or /items/{id}; a b"
        );
        assert_eq!(
            EchoedId::new("42").set_aside("42 4242 42x 4"),
            "{id} 4242 42x 4"
        );
        assert!(EchoedId::new("42").is("42"));
        assert!(!EchoedId::new("42").is("420"));
        assert_eq!(
            EchoedId::new("").set_aside("item  not found"),
            "item  not found"
        );
        assert!(!EchoedId::new("").is(""));
    }

    /// Whole answers: the item's id and the made-up id set aside in strings, member names
    /// and numbers alike, and a byte that differs beside them still reported.
    #[test]
    fn answers_differing_only_by_the_echoed_id_are_alike() {
        let answer = |path: &str, body: &str| Answer {
            status: StatusCode::NOT_FOUND,
            headers: HeaderMap::new(),
            body: body.to_owned(),
            path: path.to_owned(),
        };
        let theirs = answer(
            "/n/a:b",
            r#"{"detail":"note a:b not found","see":"/n/a%3Ab","note":"a:b","a:b":[1]}"#,
        );
        let missing = answer(
            "/n/b:c",
            r#"{"detail":"note b:c not found","see":"/n/b%3Ac","note":"b:c","b:c":[1]}"#,
        );
        assert_eq!(theirs.difference("a:b", &missing, "b:c"), None);
        let numbered = answer("/n/7", r#"{"note":7,"detail":"note 7"}"#);
        let missing = answer("/n/1000007", r#"{"note":1000007,"detail":"note 1000007"}"#);
        assert_eq!(numbered.difference("7", &missing, "1000007"), None);
        let missing = answer("/n/1000007", r#"{"note":1000007,"detail":"Note 1000007"}"#);
        let difference = numbered.difference("7", &missing, "1000007");
        assert!(
            difference.as_deref().is_some_and(|d| d.contains("detail")),
            "{difference:?}"
        );
        let text = answer("/n/7", "note 7 not found");
        let missing = answer("/n/1000007", "note 1000007 not found!");
        assert!(text.difference("7", &missing, "1000007").is_some());
    }

    #[test]
    fn the_made_up_id_parses_like_the_real_one() {
        assert_eq!(made_up_id("1"), "1000001");
        assert_eq!(made_up_id("42"), "1000042");
        assert_eq!(
            made_up_id("550e8400-e29b-41d4-a716-446655440000"),
            "661f9511-f30c-52e5-b827-557766551111"
        );
        assert_eq!(made_up_id("note_Zz9"), "opuf_Aa0");
        assert_eq!(made_up_id("18446744073709551615"), "29557855184810662726");
        assert_eq!(made_up_id("--"), "--0");
    }

    /// The list was searched for the id under `id` only: a list of every user's
    /// `{"note_id": …}` passed.
    #[test]
    fn the_list_is_searched_under_the_id_pointer_s_member() {
        assert_eq!(id_member("/id").as_deref(), Some("id"));
        assert_eq!(id_member("/data/note_id").as_deref(), Some("note_id"));
        assert_eq!(id_member("/a~1b~0c").as_deref(), Some("a/b~c"));
        assert_eq!(id_member(""), None);
        let seven = EchoedId::new("7");
        let list = serde_json::json!({ "items": [{ "note_id": 7, "owner_id": 3 }] });
        assert!(contains_id(&list, &seven, Some("note_id")));
        assert!(!contains_id(&list, &seven, Some("id")));
        assert!(!contains_id(&list, &EchoedId::new("3"), Some("note_id")));
        let list = serde_json::json!([{ "id": "7" }]);
        assert!(contains_id(&list, &seven, Some("note_id")));
        assert!(contains_id(&list, &seven, None));
    }

    /// The list was searched for the id as a member's value only: a link to the item
    /// (`"href": "/notes/7"`), or a map keyed by ids, passed. The id is looked for in every
    /// string as a whole token (not in `/notes/17` or `note_7`), and as a member name; other
    /// numbers (a count) are not ids.
    #[test]
    fn the_list_is_searched_for_the_id_in_strings_and_member_names() {
        let seven = EchoedId::new("7");
        for list in [
            serde_json::json!([{ "href": "/notes/7" }]),
            serde_json::json!({ "links": ["https://example.com/notes/7?v=2"] }),
            serde_json::json!([{ "title": "note 7" }]),
            serde_json::json!({ "notes": { "7": { "title": "x" } } }),
        ] {
            assert!(contains_id(&list, &seven, Some("id")), "{list}");
        }
        for list in [
            serde_json::json!([{ "href": "/notes/17", "title": "note_7", "v": "1.7" }]),
            serde_json::json!({ "count": 7, "notes": { "17": 7 } }),
        ] {
            assert!(!contains_id(&list, &seven, Some("id")), "{list}");
        }
        let spaced = EchoedId::new("a b");
        let list = serde_json::json!([{ "href": "/notes/a%20b" }]);
        assert!(contains_id(&list, &spaced, None));
    }
}
