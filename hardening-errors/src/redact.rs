//! Secrets out of logged error text: an error chain or panic message can quote a database URL
//! with its password, a `token=…` pair or a config struct's `Debug` form, and the log is copied
//! everywhere.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Words that mark a name as a secret's: a password, key, token, session or credential.
///
/// [`redact_secrets`] matches them against the parts of a name (split at `_`, `-`, `.`,
/// camelCase and digits, case aside): a part that is one of them, or ends with one of five
/// letters or more (`csrftoken`, `jsessionid`), makes `AWS_SECRET_ACCESS_KEY`, `private_key`,
/// `signingKey` or `X-Api-Key` secret, but not `monkey`, `keyboard`, `tokens` or
/// `passwordless`. `hardening-core`'s access log redacts query parameters and request headers
/// whose names merely contain one of them (`DEFAULT_SENSITIVE_PARAMS`), as a name in a URL is
/// cheap to hide.
///
/// The whole list:
///
/// ```
/// use hardening_errors::SECRET_NAME_PARTS;
///
/// assert_eq!(
///     SECRET_NAME_PARTS,
///     [
///         "password", "passwd", "passphrase", "pwd", "pass", "pw", "secret", "token",
///         "apikey", "key", "session", "sessionid", "sessid", "cookie", "auth",
///         "authorization", "credential", "credentials", "signature", "sig", "jwt", "otp",
///         "assertion", "saml", "oidc",
///     ]
/// );
/// ```
pub const SECRET_NAME_PARTS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "pass",
    "pw",
    "secret",
    "token",
    "apikey",
    "key",
    "session",
    "sessionid",
    "sessid",
    "cookie",
    "auth",
    "authorization",
    "credential",
    "credentials",
    "signature",
    "sig",
    "jwt",
    "otp",
    "assertion",
    "saml",
    "oidc",
];

/// Words that name a secret only as a whole part of a name, too short or too common to be
/// found inside one: `sid` (a session id: phpBB's `?sid=`, `user_sid`; not `sidebar`,
/// `inside`), `ticket` (a CAS or Kerberos ticket: `?ticket=ST-…`; not `tickets_count`), `pin`
/// (`?pin=`, `card_pin`; not `ping`, `spinner`) and `cvv`, `cvc` (a card's security code,
/// which PCI DSS forbids storing at all, logs included).
/// [`is_secret_name`] matches them as it matches [`SECRET_NAME_PARTS`], but not at the end of
/// a longer part; `hardening-core`'s access log matches them so too (in a lower-cased name),
/// not as substrings.
pub const SECRET_NAME_WORDS: &[&str] = &["sid", "ticket", "pin", "cvv", "cvc"];

/// Authorization schemes, kept in front of the credentials they introduce
/// (`Authorization: Token [redacted]`); the IANA registry and a few common others.
const AUTH_SCHEMES: &[&str] = &[
    "basic",
    "bearer",
    "concealed",
    "digest",
    "dpop",
    "gnap",
    "hoba",
    "mutual",
    "negotiate",
    "ntlm",
    "oauth",
    "privatetoken",
    "scram-sha-1",
    "scram-sha-256",
    "vapid",
    "token",
    "apikey",
    "aws4-hmac-sha256",
    "sharedkey",
    "ssws",
];

const REDACTED: &str = "[redacted]";

/// How a PEM block starts (RFC 7468): `-----BEGIN <label>-----`.
const PEM_BEGIN: &str = "-----BEGIN ";

/// What may follow a provider's key prefix.
#[derive(Debug, Clone, Copy)]
enum KeyBody {
    Alnum,
    AlnumUnderscore,
    /// Letters, digits, `_` and `-`.
    Base64Url,
    Letters,
    Hex,
    /// [`Base64Url`](Self::Base64Url) segments joined by `.` (`SG.<id>.<secret>`, GitLab's
    /// `glpat-…​.01.…`, Google's `ya29.…`).
    DottedBase64Url,
}

impl KeyBody {
    fn allows(self, b: u8) -> bool {
        match self {
            Self::Alnum => b.is_ascii_alphanumeric(),
            Self::AlnumUnderscore => b.is_ascii_alphanumeric() || b == b'_',
            Self::Base64Url | Self::DottedBase64Url => is_token_byte(b),
            Self::Letters => b.is_ascii_alphabetic(),
            Self::Hex => b.is_ascii_hexdigit(),
        }
    }
}

/// The prefixes providers put in front of their API keys and tokens so that secret scanners
/// can find them, what follows each and how much of it at least (GitHub, GitLab, Slack,
/// Stripe, OpenAI, Anthropic, Google, npm, Hugging Face, SendGrid, PyPI, Shopify,
/// DigitalOcean, HashiCorp Vault). The prefix is kept (`ghp_[redacted]`): it is public,
/// and says which key leaked. The first prefix that a word starts with decides, so a
/// longer prefix comes before a shorter one it starts with (`sk-proj-` before `sk-`).
const KEY_SHAPES: &[(&str, KeyBody, usize)] = &[
    ("ghp_", KeyBody::Alnum, 36),
    ("gho_", KeyBody::Alnum, 36),
    ("ghu_", KeyBody::Alnum, 36),
    ("ghs_", KeyBody::Alnum, 36),
    ("ghr_", KeyBody::Alnum, 36),
    ("github_pat_", KeyBody::AlnumUnderscore, 40),
    ("glpat-", KeyBody::DottedBase64Url, 20),
    ("glrt-", KeyBody::DottedBase64Url, 20),
    ("gldt-", KeyBody::DottedBase64Url, 20),
    ("glptt-", KeyBody::DottedBase64Url, 20),
    ("xoxb-", KeyBody::Base64Url, 16),
    ("xoxp-", KeyBody::Base64Url, 16),
    ("xoxa-", KeyBody::Base64Url, 16),
    ("xoxr-", KeyBody::Base64Url, 16),
    ("xoxs-", KeyBody::Base64Url, 16),
    ("xoxe-", KeyBody::Base64Url, 16),
    ("xapp-", KeyBody::Base64Url, 16),
    ("sk_live_", KeyBody::Alnum, 16),
    ("sk_test_", KeyBody::Alnum, 16),
    ("rk_live_", KeyBody::Alnum, 16),
    ("rk_test_", KeyBody::Alnum, 16),
    ("whsec_", KeyBody::Alnum, 24),
    ("sk-proj-", KeyBody::Base64Url, 16),
    ("sk-svcacct-", KeyBody::Base64Url, 16),
    ("sk-admin-", KeyBody::Base64Url, 16),
    ("sk-ant-", KeyBody::Base64Url, 16),
    // OpenAI's keys before project keys: 20 letters and digits, `T3BlbkFJ`, 20 more.
    ("sk-", KeyBody::Alnum, 48),
    ("AIza", KeyBody::Base64Url, 35),
    ("GOCSPX-", KeyBody::Base64Url, 24),
    ("ya29.", KeyBody::DottedBase64Url, 16),
    ("npm_", KeyBody::Alnum, 36),
    ("hf_", KeyBody::Letters, 34),
    ("SG.", KeyBody::DottedBase64Url, 22),
    ("pypi-AgEIcHlwaS5vcmc", KeyBody::Base64Url, 16),
    ("shpat_", KeyBody::Hex, 32),
    ("shpss_", KeyBody::Hex, 32),
    ("shpca_", KeyBody::Hex, 32),
    ("shppa_", KeyBody::Hex, 32),
    ("dop_v1_", KeyBody::Hex, 64),
    ("doo_v1_", KeyBody::Hex, 64),
    ("dor_v1_", KeyBody::Hex, 64),
    ("hvs.", KeyBody::Base64Url, 24),
];

/// The bytes a [`known_token`] can start with: `e` (a JWT's `eyJ`) and the first byte of
/// each of the [`KEY_SHAPES`], made from the table so that the two cannot drift apart.
const TOKEN_STARTS: [bool; 256] = {
    let mut starts = [false; 256];
    starts[b'e' as usize] = true;
    let mut i = 0;
    while i < KEY_SHAPES.len() {
        starts[KEY_SHAPES[i].0.as_bytes()[0] as usize] = true;
        i += 1;
    }
    starts
};

/// `text` with secrets replaced by `[redacted]`, and nothing else changed. Borrowed when there
/// is nothing to hide. For error text that is logged or shown (a readiness check's error, an
/// error chain, a panic message).
///
/// What it finds:
/// - a URL's password, also one holding `/`, `?`, `#` or `@` unencoded:
///   `postgres://app:[redacted]@db`;
/// - the value of a secret-looking key (see [`is_secret_name`]) in `key=value`,
///   `key = value`, `key: value`, JSON's `"key": value` (also quoted once more, as a `Debug`
///   string prints a JSON body: `\"key\":\"[redacted]\"`) and Rust's `Debug` form
///   (`password: "[redacted]"`, `api_key: Some("[redacted]")`,
///   `credentials: Credentials { [redacted] }`, and a byte string as `bytes::Bytes` prints
///   one, `password: b"[redacted]"`);
/// - header lines: `Authorization: Token [redacted]`, `Cookie: [redacted]`, and the credentials
///   after `Bearer` or `Basic` anywhere;
/// - a PEM private key's body, between its `-----BEGIN … PRIVATE KEY-----` and `-----END`
///   lines (or to the end of the text);
/// - secrets by their shape, whatever names them: a JWT (`eyJ….eyJ….…`, whole), and the
///   part after a provider's key prefix (`ghp_`, `github_pat_`, `glpat-`, `xoxb-`,
///   `sk_live_`, `sk-proj-`, `sk-ant-`, OpenAI's older `sk-`, `AIza`, `npm_`, `hf_`, `SG.`,
///   `shpat_`, `dop_v1_`, `hvs.`, …) when as many key characters follow it as that
///   provider's keys have.
///
/// A quoted value ends at its closing quote, any other at whitespace, `,`, `;`, `}`, `)`, `]`,
/// `&` or a quote. After a phrase rather than a field (`invalid token: expired`,
/// `read signing key: Os { … }`), a value of letters only is taken for prose and kept.
///
/// ```
/// use hardening_errors::redact_secrets;
///
/// let text = redact_secrets("connect postgres://app:hunter2@db-7/users failed");
/// assert_eq!(text, "connect postgres://app:[redacted]@db-7/users failed");
/// let text = redact_secrets(r#"Err value: DbConfig { user: "app", password: "hunter2" }"#);
/// assert_eq!(text, r#"Err value: DbConfig { user: "app", password: "[redacted]" }"#);
/// let text = redact_secrets("AWS_SECRET_ACCESS_KEY=abc123 monkey=3");
/// assert_eq!(text, "AWS_SECRET_ACCESS_KEY=[redacted] monkey=3");
/// let text = redact_secrets("GitHub said 401 for ghp_1A2b3C4d5E6f7G8h9I0jKlMnOpQrStUvWxYz");
/// assert_eq!(text, "GitHub said 401 for ghp_[redacted]");
/// ```
pub fn redact_secrets(text: &str) -> Cow<'_, str> {
    if !text.contains(['=', ':', ' ']) && !may_hold_token(text) {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    // Only ASCII bytes are acted on, and every span below starts and ends at an ASCII byte,
    // a `find`'s result or the text's end: all char boundaries, so slicing cannot panic.
    while i < bytes.len() {
        let secret = match bytes[i] {
            b':' if text[i..].starts_with("://") => url_password(text, i),
            b'=' | b':' => value_of_secret_key(text, i),
            b' ' => credentials_after_scheme(text, i),
            b'-' if text[i..].starts_with(PEM_BEGIN) => pem_private_key(text, i),
            b if TOKEN_STARTS[usize::from(b)] && starts_word(bytes, i) => known_token(text, i),
            _ => None,
        };
        match secret {
            Some((start, end)) if start < end => {
                out.push_str(&text[copied..start]);
                out.push_str(REDACTED);
                copied = end;
                i = end;
            }
            _ => i += 1,
        }
    }
    if copied == 0 {
        Cow::Borrowed(text)
    } else {
        out.push_str(&text[copied..]);
        Cow::Owned(out)
    }
}

/// An error and its sources as one line, `outer: cause: root cause`, with secrets redacted
/// ([`redact_secrets`]): what this suite logs of an internal error, and what a readiness
/// check's failure says. An error whose own text is generic on purpose, such as
/// [`Error::internal`](crate::Error::internal)'s `internal error`, keeps its cause in its
/// source, which only this shows.
///
/// ```
/// use hardening_errors::{Error, redact_error_chain};
///
/// let cause = std::io::Error::other("connect postgres://app:hunter2@db-7/app refused");
/// let err = Error::internal(cause);
/// assert_eq!(err.to_string(), "internal error");
/// assert_eq!(
///     redact_error_chain(&err),
///     "internal error: connect postgres://app:[redacted]@db-7/app refused"
/// );
/// ```
pub fn redact_error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        let _ = write!(out, ": {cause}");
        next = cause.source();
    }
    redact_secrets(&out).into_owned()
}

/// A URL given whole (a connection string from configuration) as [`redact_secrets`] writes
/// it, read as one URL even where it holds whitespace: the `url` crate takes
/// `redis://:correct horse@db:6379/` (encoding the space), while in free text a URL, or a
/// secret query value, ends at its first space, which would leave the rest of a password
/// shown (after a space in the user name, the whole of it). Whitespace is written
/// percent-encoded, as the `url` crate reads it.
///
/// ```
/// use hardening_errors::redact_url;
///
/// let url = redact_url("redis://:correct horse@db-7:6379/");
/// assert_eq!(url, "redis://:[redacted]@db-7:6379/");
/// let url = redact_url("redis://app user:hunter2@db-7:6379/");
/// assert_eq!(url, "redis://app%20user:[redacted]@db-7:6379/");
/// ```
pub fn redact_url(url: &str) -> Cow<'_, str> {
    if !url.contains(char::is_whitespace) {
        return redact_secrets(url);
    }
    let mut encoded = String::with_capacity(url.len() + 8);
    for c in url.chars() {
        if c.is_whitespace() {
            for byte in c.encode_utf8(&mut [0; 4]).bytes() {
                // (Writing to a `String` does not fail.)
                let _ = write!(encoded, "%{byte:02X}");
            }
        } else {
            encoded.push(c);
        }
    }
    Cow::Owned(redact_secrets(&encoded).into_owned())
}

/// Whether `name` names a secret, as [`redact_secrets`] reads a key: one of its parts is one
/// of [`SECRET_NAME_PARTS`] or [`SECRET_NAME_WORDS`], or ends with one of the former of five
/// letters or more, case aside. Parts are split at anything but ASCII letters and digits, at a
/// lower-to-upper case change (`apiKey`), before the last capital of a run (`AWSSecret`) and
/// between letters and digits (`key2`).
///
/// ```
/// use hardening_errors::is_secret_name;
///
/// assert!(is_secret_name("AWS_SECRET_ACCESS_KEY") && is_secret_name("user_sid"));
/// assert!(!is_secret_name("monkey") && !is_secret_name("sidebar"));
/// ```
pub fn is_secret_name(name: &str) -> bool {
    let b = name.as_bytes();
    let mut start = 0;
    for i in 0..=b.len() {
        let separator = i == b.len() || !b[i].is_ascii_alphanumeric();
        if separator || (i > start && starts_part(b, i)) {
            if i > start && is_secret_part(&b[start..i]) {
                return true;
            }
            start = if separator { i + 1 } else { i };
        }
    }
    false
}

/// `b[i]` starts a new part of a name, `b[i - 1]` and `b[i]` being ASCII letters or digits.
fn starts_part(b: &[u8], i: usize) -> bool {
    let (prev, cur) = (b[i - 1], b[i]);
    (prev.is_ascii_lowercase() && cur.is_ascii_uppercase())
        || prev.is_ascii_alphabetic() != cur.is_ascii_alphabetic()
        || (prev.is_ascii_uppercase()
            && cur.is_ascii_uppercase()
            && b.get(i + 1).is_some_and(u8::is_ascii_lowercase))
}

fn is_secret_part(part: &[u8]) -> bool {
    SECRET_NAME_PARTS.iter().any(|word| {
        let word = word.as_bytes();
        part.eq_ignore_ascii_case(word)
            || (word.len() >= 5
                && part.len() > word.len()
                && part[part.len() - word.len()..].eq_ignore_ascii_case(word))
    }) || SECRET_NAME_WORDS
        .iter()
        .any(|word| part.eq_ignore_ascii_case(word.as_bytes()))
}

/// What a key's value is: most are one value, `Authorization`'s may start with a scheme to
/// keep, `Cookie`'s is a list of `name=value` pairs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    Authorization,
    Cookie,
}

impl Kind {
    fn of(key: &str) -> Self {
        let ends_with = |suffix: &str| {
            key.len() >= suffix.len()
                && key.as_bytes()[key.len() - suffix.len()..]
                    .eq_ignore_ascii_case(suffix.as_bytes())
        };
        if ends_with("authorization") {
            Self::Authorization
        } else if ends_with("cookie") {
            Self::Cookie
        } else {
            Self::Plain
        }
    }
}

/// The password of the URL whose `://` is at `i`: `scheme://user:password@host`.
///
/// A password pasted unencoded may hold `/`, `?`, `#` or `@`, so it runs from the first `:`
/// to the last `@` of the URL (up to whitespace), if the user before that `:` holds none of
/// them. A `:` and an `@` later in a URL without a password (`https://h:8080/?to=a@b`) hide
/// more than the password: better than showing one.
fn url_password(text: &str, i: usize) -> Option<(usize, usize)> {
    let start = i + 3;
    let end = text[start..]
        .find(char::is_whitespace)
        .map_or(text.len(), |e| start + e);
    let url = &text[start..end];
    let colon = url.find(':')?;
    if url[..colon].contains(['/', '?', '#', '@']) {
        return None;
    }
    let at = url.rfind('@').filter(|&at| at > colon)?;
    Some((start + colon + 1, start + at))
}

/// The value after the `=` or `:` at `i`, if the key before it is a secret's.
fn value_of_secret_key(text: &str, i: usize) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let sep = b[i];
    let prev = i.checked_sub(1).map(|p| b[p]);
    let next = b.get(i + 1).copied();
    let not_a_separator = if sep == b'=' {
        // `==`, `=>`, `!=`, `<=`, `>=`
        matches!(next, Some(b'=' | b'>')) || matches!(prev, Some(b'=' | b'!' | b'<' | b'>'))
    } else {
        // a path (`auth::Error`) or a URL without a password (`https://…`)
        next == Some(b':') || prev == Some(b':') || text[i + 1..].starts_with("//")
    };
    if not_a_separator {
        return None;
    }
    let (key_start, key, quoted_key) = key_before(text, i)?;
    if !is_secret_name(key) {
        return None;
    }
    let kind = Kind::of(key);
    let v = skip_blanks(text, i + 1);
    // A PEM private key, quoted or not, spans lines: its own rule hides its body.
    let unquoted = text[v..].trim_start_matches(['"', '\'']);
    if unquoted.starts_with(PEM_BEGIN)
        && pem_private_key(text, text.len() - unquoted.len()).is_some()
    {
        return None;
    }
    let field = sep == b'='
        || quoted_key
        || kind != Kind::Plain
        || key.contains('-')
        || starts_field(text, key_start);
    if field {
        return value_span(text, v, kind);
    }
    // After a phrase (`invalid token: expired`, `read key: Os { code: 2, … }`): a quoted value,
    // or a word (up to a bracket) that is not letters only.
    if let Some(span) = quoted_value(text, v) {
        return span;
    }
    let (start, end) = plain(text, v)?;
    let end = text[start..end]
        .find(['(', '[', '{'])
        .map_or(end, |e| start + e);
    let word = &text[start..end];
    (!word.bytes().all(|c| c.is_ascii_alphabetic())).then_some((start, end))
}

/// The key that ends before the separator at `i` (blanks aside): where it starts, the key,
/// and whether it is quoted (`"password": …`).
fn key_before(text: &str, i: usize) -> Option<(usize, &str, bool)> {
    let b = text.as_bytes();
    let mut end = i;
    while end > 0 && matches!(b[end - 1], b' ' | b'\t') {
        end -= 1;
    }
    if end > 0
        && let quote @ (b'"' | b'\'') = b[end - 1]
        && let Some(open) = text[..end - 1].rfind(char::from(quote))
    {
        return Some((open, &text[open + 1..end - 1], true));
    }
    let mut start = end;
    while start > 0 && (b[start - 1].is_ascii_alphanumeric() || matches!(b[start - 1], b'_' | b'-'))
    {
        start -= 1;
    }
    (start < end).then(|| (start, &text[start..end], false))
}

/// The key at `key_start` begins a field or a line: `{ password: …`, `, token: …`, `\npwd: …`,
/// rather than ending a phrase (`invalid token: …`).
fn starts_field(text: &str, key_start: usize) -> bool {
    let before = text[..key_start].trim_end_matches([' ', '\t']);
    before.is_empty() || before.ends_with(['\n', '\r', '{', '(', '[', ',', ';', ':'])
}

fn skip_blanks(text: &str, mut p: usize) -> usize {
    let b = text.as_bytes();
    while p < b.len() && matches!(b[p], b' ' | b'\t') {
        p += 1;
    }
    p
}

/// The value that starts at `v`, of a key of this kind.
fn value_span(text: &str, v: usize, kind: Kind) -> Option<(usize, usize)> {
    if let Some(span) = quoted_value(text, v) {
        return span;
    }
    if let b'{' | b'[' | b'(' = *text.as_bytes().get(v)? {
        return group(text, v);
    }
    match kind {
        Kind::Authorization => {
            if let Some(credentials) = after_auth_scheme(text, v) {
                return value_span(text, credentials, Kind::Plain);
            }
        }
        Kind::Cookie => return cookie(text, v),
        Kind::Plain => {}
    }
    wrapped(text, v).unwrap_or_else(|| plain(text, v))
}

/// A value up to whitespace, `,`, `;`, `}`, `)`, `]`, `&` or a quote.
fn plain(text: &str, v: usize) -> Option<(usize, usize)> {
    let end = text[v..]
        .find(|c: char| {
            c.is_whitespace() || matches!(c, ',' | ';' | '}' | ')' | ']' | '&' | '"' | '\'')
        })
        .map_or(text.len(), |e| v + e);
    Some((v, end))
}

/// What the quote at `q` holds, up to its closing quote (a backslash escapes one), or to the
/// end of the line when there is none.
fn quoted(text: &str, q: usize) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let quote = b[q];
    let mut j = q + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'\n' => break,
            c if c == quote => return Some((q + 1, j)),
            _ => j += 1,
        }
    }
    Some((q + 1, line_end(text, q + 1)))
}

/// What the escaped quote `\"` at `q` holds, in text quoted twice (JSON in a `Debug` string:
/// `\"password\":\"…\"`): up to the next `\"` that the inner text does not escape itself
/// (its own `\"` is `\\\"` there), or to the end of the outer string or of the line.
fn escaped_quoted(text: &str, q: usize) -> (usize, usize) {
    let b = text.as_bytes();
    let start = q + 2;
    let mut j = start;
    // The inner text's last character was its escaping backslash (`\\` here).
    let mut inner_escape = false;
    while j < b.len() {
        match b[j] {
            b'"' | b'\n' => break,
            b'\\' => {
                let Some(&next) = b.get(j + 1) else { break };
                if inner_escape {
                    inner_escape = false;
                } else if next == b'\\' {
                    inner_escape = true;
                } else if next == b'"' {
                    break;
                }
                j += 2;
            }
            _ => {
                inner_escape = false;
                j += 1;
            }
        }
    }
    // `j` is at an ASCII byte or the text's end: a char boundary.
    (start, j)
}

/// The value at `v` when it is quoted (`None` when it is not): what an escaped quote
/// (`\"`, JSON in a `Debug` string) or a quote (see [`opening_quote`]) holds.
fn quoted_value(text: &str, v: usize) -> Option<Option<(usize, usize)>> {
    if text[v..].starts_with("\\\"") {
        return Some(Some(escaped_quoted(text, v)));
    }
    opening_quote(text.as_bytes(), v).map(|q| quoted(text, q))
}

/// Where the quote that opens a quoted value at `v` is: `"…"` and `'…'` there, or one after
/// a byte string's `b` (`b"…"`: `bytes::Bytes` and byte literals print so), which is kept.
fn opening_quote(b: &[u8], v: usize) -> Option<usize> {
    match *b.get(v)? {
        b'"' | b'\'' => Some(v),
        b'b' if matches!(b.get(v + 1), Some(b'"' | b'\'')) => Some(v + 1),
        _ => None,
    }
}

fn line_end(text: &str, from: usize) -> usize {
    text[from..].find('\n').map_or(text.len(), |e| from + e)
}

/// Inside the bracket at `open` (`(`, `[` or `{`) up to its match, blanks at either end kept;
/// to the end of the text when it has none.
fn group(text: &str, open: usize) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut j = open;
    let mut close = b.len();
    while j < b.len() {
        let c = b[j];
        if in_string {
            match c {
                b'\\' => j += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match c {
                b'"' => in_string = true,
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = j;
                        break;
                    }
                }
                _ => {}
            }
        }
        j += 1;
    }
    let inside = &text[open + 1..close];
    let start = open + 1 + (inside.len() - inside.trim_start().len());
    let end = (open + 1 + inside.trim_end().len()).max(start);
    Some((start, end))
}

/// A value wrapped in a type (`Some("x")`, `Secret(Some("x"))`, `ApiKey { … }`): what it
/// holds, the type names kept. `None` when the value at `v` is no such thing.
fn wrapped(text: &str, v: usize) -> Option<Option<(usize, usize)>> {
    let b = text.as_bytes();
    let name_end = type_name_end(text, v)?;
    if b.get(name_end) == Some(&b'(') {
        return Some(wrapper_contents(text, name_end));
    }
    let brace = skip_blanks(text, name_end);
    (b.get(brace) == Some(&b'{')).then(|| group(text, brace))
}

/// What the wrappers opened at `open` hold: the innermost value alone when it is all there is
/// (`Some(Secret("[redacted]"))`), else everything inside the outermost parentheses.
fn wrapper_contents(text: &str, open: usize) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let mut p = open + 1;
    let mut depth = 1;
    while let Some(name_end) = type_name_end(text, p)
        && b.get(name_end) == Some(&b'(')
    {
        p = name_end + 1;
        depth += 1;
    }
    let inner = match (opening_quote(b, p), b.get(p)) {
        (Some(q), _) => {
            quoted(text, q).map(|(s, e)| (s, e, e + usize::from(b.get(e) == Some(&b[q]))))
        }
        (None, Some(b'(' | b'[' | b'{') | None) => None,
        (None, Some(_)) => plain(text, p).map(|(s, e)| (s, e, e)),
    };
    if let Some((start, end, after)) = inner
        && b.get(after..after + depth)
            .is_some_and(|c| c.iter().all(|&c| c == b')'))
    {
        return Some((start, end));
    }
    group(text, open)
}

/// The end of a type's name (`Some`, `Secret`, `secrecy::SecretBox`'s last part) at `v`, when
/// one starts there: a capital, then letters, digits, `_` and `::`.
fn type_name_end(text: &str, v: usize) -> Option<usize> {
    let b = text.as_bytes();
    if !b.get(v)?.is_ascii_uppercase() {
        return None;
    }
    let mut end = v + 1;
    while end < b.len() && (b[end].is_ascii_alphanumeric() || matches!(b[end], b'_' | b':')) {
        end += 1;
    }
    Some(end)
}

/// A `Cookie` or `Set-Cookie` value: `name=value` pairs joined by `;`, up to the first piece
/// without `=` (`Path=/; HttpOnly` ends before `HttpOnly`).
fn cookie(text: &str, v: usize) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let piece_end = |p: usize| {
        text[p..]
            .find(|c: char| {
                c.is_whitespace() || matches!(c, ',' | ';' | '}' | ')' | ']' | '"' | '\'')
            })
            .map_or(text.len(), |e| p + e)
    };
    let mut end = piece_end(v);
    while b.get(end) == Some(&b';') {
        let next = skip_blanks(text, end + 1);
        let next_end = piece_end(next);
        if !text[next..next_end].contains('=') {
            break;
        }
        end = next_end;
    }
    Some((v, end))
}

/// Where the credentials start after an authorization scheme at `v` (`Token abc`).
fn after_auth_scheme(text: &str, v: usize) -> Option<usize> {
    let b = text.as_bytes();
    let mut end = v;
    while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'-') {
        end += 1;
    }
    let scheme = &text[v..end];
    (b.get(end) == Some(&b' ') && AUTH_SCHEMES.iter().any(|s| scheme.eq_ignore_ascii_case(s)))
        .then(|| skip_blanks(text, end))
}

/// The body of the PEM block at `i` if its label names a private key (`RSA PRIVATE KEY`,
/// `ENCRYPTED PRIVATE KEY`, `OPENSSH PRIVATE KEY`, `PGP PRIVATE KEY BLOCK`): up to its
/// `-----END` line, or to the end of the text, without the blanks at either end.
fn pem_private_key(text: &str, i: usize) -> Option<(usize, usize)> {
    let label_start = i + PEM_BEGIN.len();
    let label_len = text[label_start..].find("-----")?;
    let label = &text[label_start..label_start + label_len];
    if label_len > 64
        || !label.contains("PRIVATE KEY")
        || !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b' ')
    {
        return None;
    }
    let start = label_start + label_len + "-----".len();
    let end = text[start..]
        .find("-----END")
        .map_or(text.len(), |e| start + e);
    let body = &text[start..end];
    let from = start + (body.len() - body.trim_start().len());
    let to = (start + body.trim_end().len()).max(from);
    Some((from, to))
}

/// A byte of a base64url or API-key word.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Whether `text` could hold a [`known_token`] (a cheap look before the full scan, for text
/// without `=`, `:` or a space).
fn may_hold_token(text: &str) -> bool {
    text.len() > 16
        && (text.contains("eyJ") || KEY_SHAPES.iter().any(|(prefix, ..)| text.contains(prefix)))
}

/// Whether a word starts at `i`: at the start, after a byte that cannot be part of a key,
/// or after a percent-encoded byte (`%22eyJ…`, `%3DeyJ…`: a key in an encoded URL).
fn starts_word(b: &[u8], i: usize) -> bool {
    i == 0
        || !is_token_byte(b[i - 1])
        || (i >= 3
            && b[i - 3] == b'%'
            && b[i - 2].is_ascii_hexdigit()
            && b[i - 1].is_ascii_hexdigit())
}

/// A word at `i` that is a secret by its shape, whatever names it: a JWT (`eyJ…` header,
/// `.`, `eyJ…` payload, `.`, signature: all of it), or a provider's API key (one of the
/// [`KEY_SHAPES`]: what follows the prefix). `i` starts a word.
fn known_token(text: &str, i: usize) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let run = |from: usize, allows: &dyn Fn(u8) -> bool| {
        from + b[from..].iter().take_while(|&&c| allows(c)).count()
    };
    if text[i..].starts_with("eyJ") {
        // header.payload[.signature]: two or three base64url segments, the payload a JSON
        // object too. (JWE's five segments start the same way and are redacted whole.)
        let header_end = run(i, &is_token_byte);
        if b.get(header_end) != Some(&b'.') || !text[header_end + 1..].starts_with("eyJ") {
            return None;
        }
        let mut end = run(header_end + 1, &is_token_byte);
        while b.get(end) == Some(&b'.') {
            end = run(end + 1, &is_token_byte);
        }
        return Some((i, end));
    }
    let (prefix, body, least) = KEY_SHAPES
        .iter()
        .find(|(prefix, ..)| text[i..].starts_with(prefix))?;
    let start = i + prefix.len();
    let allows = |c: u8| body.allows(c);
    let first = run(start, &allows);
    if first - start < *least {
        return None;
    }
    let mut end = first;
    if matches!(body, KeyBody::DottedBase64Url) {
        while b.get(end) == Some(&b'.') && b.get(end + 1).is_some_and(|&c| allows(c)) {
            end = run(end + 1, &allows);
        }
    }
    Some((start, end))
}

/// The credentials after `Bearer` or `Basic` and the space at `space`, wherever they are
/// (`upstream sent Bearer eyJ…`).
fn credentials_after_scheme(text: &str, space: usize) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let mut start = space;
    while start > 0 && b[start - 1].is_ascii_alphabetic() {
        start -= 1;
    }
    let word = &text[start..space];
    if !["bearer", "basic"]
        .iter()
        .any(|s| word.eq_ignore_ascii_case(s))
    {
        return None;
    }
    let v = skip_blanks(text, space);
    match b.get(v)? {
        b'"' | b'\'' => quoted(text, v),
        _ => plain(text, v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An OpenAI key of the shape before project keys: `sk-`, 20 letters and digits,
    /// `T3BlbkFJ` (base64 of "OpenAI"), 20 more.
    const OPENAI_LEGACY: &str = "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";
    /// A project key of that shape (`sk-proj-` and letters, digits, `-` and `_`).
    const OPENAI_PROJECT: &str =
        "sk-proj-1A2b3C4d5E6f7G8h9I0j-_kLmNoPqRsTuVT3BlbkFJwXyZ0a1b2c3d4e5f6g7h";

    /// Secrets that no name announces, found by their shape: JWTs and providers' prefixed
    /// API keys, in prose, in `Debug` output and alone; words that merely look alike stay.
    #[test]
    fn tokens_are_redacted_by_their_shape() {
        let jwt =
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let github = "ghp_1A2b3C4d5E6f7G8h9I0jKlMnOpQrStUvWxYz";
        let stripe = "sk_live_51HxAbCdEfGhIjKlMnOpQrStUv";
        let sendgrid = "SG.aBcDeFgHiJkLmNoPqRsTuV.wXyZ0123456789aBcDeFgHiJkLmNoPqRsTuVwXyZ01";
        for (text, want) in [
            (
                format!("failed to refresh {jwt} for user 42"),
                "failed to refresh [redacted] for user 42".to_owned(),
            ),
            (jwt.to_owned(), "[redacted]".to_owned()),
            (
                "unsigned eyJhbGciOiJub25lIn0.eyJzdWIiOiI0MiJ9. ok".to_owned(),
                "unsigned [redacted] ok".to_owned(),
            ),
            (
                format!("GitHub refused {github}."),
                "GitHub refused ghp_[redacted].".to_owned(),
            ),
            (
                format!(r#"Client {{ key: "{stripe}" }}"#),
                r#"Client { key: "[redacted]" }"#.to_owned(),
            ),
            (
                format!("stripe: bad {stripe}, retry"),
                "stripe: bad sk_live_[redacted], retry".to_owned(),
            ),
            (format!("({sendgrid})"), "(SG.[redacted])".to_owned()),
            (
                "AIzaSyA-1234567890abcdefghijklmnopqrstu".to_owned(),
                "AIza[redacted]".to_owned(),
            ),
            (
                "cb%3Fx%3DAIzaSyA-1234567890abcdefghijklmnopqrstu%26y".to_owned(),
                "cb%3Fx%3DAIza[redacted]%26y".to_owned(),
            ),
            (format!("%22{jwt}%22"), "%22[redacted]%22".to_owned()),
            (
                "glpat-abcdefghij0123456789.01.zz9xyq".to_owned(),
                "glpat-[redacted]".to_owned(),
            ),
            (
                format!("shop shpat_{}", "0a".repeat(16)),
                "shop shpat_[redacted]".to_owned(),
            ),
            (
                format!("hf_{}", "Ab".repeat(17)),
                "hf_[redacted]".to_owned(),
            ),
        ] {
            assert_eq!(redact_secrets(&text), want, "{text}");
        }
        assert_eq!(
            redact_secrets(&format!("openai said 401 for {OPENAI_LEGACY}.")),
            "openai said 401 for sk-[redacted]."
        );
        assert_eq!(
            redact_secrets(&format!("{OPENAI_PROJECT} x")),
            "sk-proj-[redacted] x"
        );
        // Look-alikes: too short, inside another word, one segment, not JSON, and names
        // that only start like a key (npm's environment, Hugging Face's functions).
        for text in [
            "hf_hub_download failed",
            "hf_hub_download_with_retries_and_backoff_for_large_files",
            "npm_config_registry_url_value",
            "env npm_lifecycle_script set",
            "pypi-simple-index-mirror-url-for-builds",
            "shpat_not-hex-at-all-but-long-enough-to-look-like-one",
            "the ghp_ prefix",
            "my_ghp_1A2b3C4d5E6f7G8h9I0jKlMnOpQrStUvWxYz",
            "eyJhbGciOiJIUzI1NiJ9 alone",
            "eyJhbGciOiJIUzI1NiJ9.payload.sig",
            "task-sk-proj-",
            "SG.short.x",
            "sk-1A2b3C4d5E6f7G8h9I0jT3BlbkFJ",
            "desk-1A2b3C4d5E6f7G8h9I0jT3BlbkFJ1A2b3C4d5E6f7G8h9I0j",
        ] {
            assert!(
                matches!(redact_secrets(text), Cow::Borrowed(_)),
                "{text}: {}",
                redact_secrets(text)
            );
        }
    }

    /// Every sequence of four pieces that start or end the shapes, with multi-byte
    /// characters beside them: no panic (a slice off a char boundary), and only the text
    /// itself or `[redacted]` in its places.
    #[test]
    fn shapes_cut_anywhere_do_not_panic() {
        let pieces = [
            "eyJ",
            ".",
            "é",
            "😀",
            "%",
            "%2",
            "%22",
            "SG.",
            "ghp_",
            "glpat-",
            "AIza",
            "a",
            "_",
            "-",
            " ",
            "=",
            ":",
            "0123456789abcdef0123456789abcdef0123456789",
        ];
        let n = pieces.len();
        for code in 0..n.pow(4) {
            let text: String = (0..4).map(|k| pieces[(code / n.pow(k)) % n]).collect();
            let out = redact_secrets(&text);
            assert!(
                out == text || out.contains(REDACTED),
                "{text:?} became {out:?}"
            );
        }
    }

    #[test]
    fn urls_and_secret_pairs_are_redacted() {
        assert_eq!(
            redact_secrets("connection refused: postgres://app:hunter2@db-7/users SELECT 1"),
            "connection refused: postgres://app:[redacted]@db-7/users SELECT 1"
        );
        assert_eq!(
            redact_secrets("handler panicked: password=hunter2 at src/db.rs:42"),
            "handler panicked: password=[redacted] at src/db.rs:42"
        );
        assert_eq!(
            redact_secrets("GET /cb?code=1&Access-Token=abc.def&x=2"),
            "GET /cb?code=1&Access-Token=[redacted]&x=2"
        );
        assert_eq!(
            redact_secrets("SELECT * FROM users WHERE token='s3cr3t'"),
            "SELECT * FROM users WHERE token='[redacted]'"
        );
        assert_eq!(
            redact_secrets("redis://cache:6379/0"),
            "redis://cache:6379/0"
        );
        assert_eq!(redact_secrets("https://user@host/x"), "https://user@host/x");
        assert_eq!(
            redact_secrets("redis://:s3cr3t@cache"),
            "redis://:[redacted]@cache"
        );
        assert!(matches!(
            redact_secrets("plain text, a=b"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            redact_secrets("ünïcode password=ø x"),
            "ünïcode password=[redacted] x"
        );
        assert_eq!(redact_secrets("password=hunter2"), "password=[redacted]");
        // A key right after a character of several bytes (this once sliced inside it).
        assert_eq!(
            redact_secrets("ø=1 øtoken=2 é Bearer x"),
            "ø=1 øtoken=[redacted] é Bearer [redacted]"
        );
    }

    /// A password pasted into a URL unencoded, holding `#`, `?`, `/` or `@`: hidden whole
    /// (the first three once ended the URL's authority, and the rest of it was logged).
    #[test]
    fn a_url_password_with_reserved_characters_is_redacted_whole() {
        for password in [
            "hunt#er2",
            "hunt?er2",
            "hunt/er2",
            "hunt@er2",
            "a/b?c#d@e:f",
        ] {
            let text = format!("connect postgres://app:{password}@db-7/users failed");
            assert_eq!(
                redact_secrets(&text),
                "connect postgres://app:[redacted]@db-7/users failed",
                "{password:?}"
            );
        }
        // No password: unchanged.
        for text in [
            "GET https://example.com/a:b failed",
            "GET https://example.com/path?x=a:b failed",
            "GET https://example.com/path?x=a:b#c@d failed",
            "mysql://app@db:3306/users",
            "ssh://git@host:22/repo.git and a:b@c",
            "http://[::1]:8080/x",
        ] {
            assert_eq!(redact_secrets(text), text);
        }
    }

    #[test]
    fn no_text_makes_it_panic() {
        // Every string of up to 4 pieces from these (some of several bytes): the separators
        // it looks for next to characters that are not ASCII.
        let pieces = [
            "=",
            "\"",
            ":",
            " ",
            "@",
            "/",
            "://",
            "'",
            "ø",
            "é=",
            "token",
            "Bearer",
            "a:b@",
            "\":",
            "password=",
        ];
        each_text(&pieces, |text| {
            let _ = redact_secrets(text);
        });
    }

    #[test]
    fn longer_keys_json_and_authorization_schemes_are_redacted() {
        assert_eq!(
            redact_secrets("config: db_password=hunter2 GITHUB-TOKEN=ghp_x x_api_key='k'"),
            "config: db_password=[redacted] GITHUB-TOKEN=[redacted] x_api_key='[redacted]'"
        );
        // Only a whole word: `tokens` and `passwordless` are not secret keys.
        assert_eq!(
            redact_secrets("tokens=3 passwordless=true"),
            "tokens=3 passwordless=true"
        );
        assert_eq!(
            redact_secrets(r#"bad body {"user":"bob","password": "hunter2","db_token":"t"}"#),
            r#"bad body {"user":"bob","password": "[redacted]","db_token":"[redacted]"}"#
        );
        assert_eq!(
            redact_secrets("upstream sent Authorization: Bearer eyJhbGc.x.y to us"),
            "upstream sent Authorization: Bearer [redacted] to us"
        );
        assert_eq!(
            redact_secrets("authorization: basic dXNlcjpwdw=="),
            "authorization: basic [redacted]"
        );
        assert_eq!(
            redact_secrets("the token expired at 12:00"),
            "the token expired at 12:00"
        );
    }

    #[test]
    fn debug_form_fields_are_redacted() {
        assert_eq!(
            redact_secrets(
                r#"called `Result::unwrap()` on an `Err` value: DbConfig { user: "app", password: "SECRET-debug" }"#
            ),
            r#"called `Result::unwrap()` on an `Err` value: DbConfig { user: "app", password: "[redacted]" }"#
        );
        // `Some(…)` and newtypes keep their names.
        assert_eq!(
            redact_secrets(
                r#"Config { api_key: Some("k-1"), session_token: Some(Secret("t")), pool: None, port: 5432 }"#
            ),
            r#"Config { api_key: Some("[redacted]"), session_token: Some(Secret("[redacted]")), pool: None, port: 5432 }"#
        );
        // Unquoted values; a tuple or a struct under a secret name is hidden whole.
        assert_eq!(
            redact_secrets("Login { user: 7, otp: 123456, signing_key: Key(1, 2), auth: None }"),
            "Login { user: 7, otp: [redacted], signing_key: Key([redacted]), auth: [redacted] }"
        );
        assert_eq!(
            redact_secrets(
                r#"Db { credentials: Credentials { user: "a", value: "b" }, host: "db" }"#
            ),
            r#"Db { credentials: Credentials { [redacted] }, host: "db" }"#
        );
        // Pretty-printed (`{:#?}`), with an escaped quote inside the secret.
        assert_eq!(
            redact_secrets("DbConfig {\n    user: \"app\",\n    password: \"a\\\"b c\",\n}"),
            "DbConfig {\n    user: \"app\",\n    password: \"[redacted]\",\n}"
        );
        // Python's and JSON's maps.
        assert_eq!(
            redact_secrets(r#"{'token': 'abc', "refresh_token" : "def", 'n': 1}"#),
            r#"{'token': '[redacted]', "refresh_token" : "[redacted]", 'n': 1}"#
        );
    }

    /// `bytes::Bytes` (axum's `Bytes` body) and byte literals print as byte strings,
    /// `b"…"`: under a secret's name the value is hidden whole, escaped quotes and all, and
    /// the `b` is kept as a type name is.
    #[test]
    fn byte_string_values_are_redacted_whole() {
        assert_eq!(
            redact_secrets(r#"Login { user: b"bob", password: b"correct \"horse\" battery" }"#),
            r#"Login { user: b"bob", password: b"[redacted]" }"#
        );
        assert_eq!(
            redact_secrets("api_key=b'k3y' next"),
            "api_key=b'[redacted]' next"
        );
        assert_eq!(
            redact_secrets(r#"Form { secret: Some(b"s3cr3t value"), n: 1 }"#),
            r#"Form { secret: Some(b"[redacted]"), n: 1 }"#
        );
        // After a phrase too.
        assert_eq!(
            redact_secrets(r#"refused key: b"k3y value""#),
            r#"refused key: b"[redacted]""#
        );
    }

    /// JSON quoted in a `Debug` string (`{body:?}`, an error that quotes what it was sent)
    /// has its quotes escaped, `\"password\":\"…\"`: the value is still hidden whole, up to
    /// the escaped quote that closes it, not one the JSON escapes itself (`\\\"`).
    #[test]
    fn json_quoted_inside_a_debug_string_is_redacted() {
        assert_eq!(
            redact_secrets(
                r#"upstream refused "{\"user\":\"bob\",\"password\":\"hunter2 x\",\"n\":1}""#
            ),
            r#"upstream refused "{\"user\":\"bob\",\"password\":\"[redacted]\",\"n\":1}""#
        );
        assert_eq!(
            redact_secrets(r#"body: "{\"token\": \"a\\\"b\\\\ c\"}""#),
            r#"body: "{\"token\": \"[redacted]\"}""#
        );
        assert_eq!(
            redact_secrets(r#"Request { body: b"{\"api_key\":\"k-1\"}" }"#),
            r#"Request { body: b"{\"api_key\":\"[redacted]\"}" }"#
        );
        // A shell's escaped quotes; a value the outer string cuts short ends with it.
        assert_eq!(
            redact_secrets(r#"export PASSWORD=\"abc def\" && run"#),
            r#"export PASSWORD=\"[redacted]\" && run"#
        );
        assert_eq!(
            redact_secrets("\"{\\\"secret\\\":\\\"abc def\"\nnext"),
            "\"{\\\"secret\\\":\\\"[redacted]\"\nnext"
        );
    }

    #[test]
    fn spaced_and_colon_pairs_are_redacted() {
        assert_eq!(
            redact_secrets("password = hunter2; user = bob"),
            "password = [redacted]; user = bob"
        );
        assert_eq!(
            redact_secrets("password: hunter2\nuser: bob"),
            "password: [redacted]\nuser: bob"
        );
        assert_eq!(
            redact_secrets("config error: client_secret: abc.def"),
            "config error: client_secret: [redacted]"
        );
        assert_eq!(
            redact_secrets("AWS_SECRET_ACCESS_KEY=SECRET-aws private_key=SECRET-pk monkey=3"),
            "AWS_SECRET_ACCESS_KEY=[redacted] private_key=[redacted] monkey=3"
        );
        // After a phrase, a value of letters only is prose; anything else may be the secret.
        for prose in [
            "invalid token: expired",
            "read signing key: Os { code: 2, kind: NotFound, message: \"No such file\" }",
            "symmetric (oct) key: never accepted from a JWKS",
        ] {
            assert_eq!(redact_secrets(prose), prose);
        }
        assert_eq!(
            redact_secrets("login with password: hunter2 failed"),
            "login with password: [redacted] failed"
        );
        assert_eq!(
            redact_secrets("bad api key: 'sk live'"),
            "bad api key: '[redacted]'"
        );
        // Not separators: comparisons, paths, times, source locations.
        for kept in [
            "token == expected",
            "if key != 0 && key >= 3 && key <= 9",
            "match key => 1",
            "hardening_auth::session::Store::load failed",
            "the token expired at 12:00",
            "panicked at src/auth/token.rs:42:5",
            "https://example.com/session",
        ] {
            assert!(matches!(redact_secrets(kept), Cow::Borrowed(_)), "{kept}");
        }
    }

    #[test]
    fn header_lines_are_redacted() {
        assert_eq!(
            redact_secrets("Authorization: Token abc123 rejected"),
            "Authorization: Token [redacted] rejected"
        );
        assert_eq!(
            redact_secrets("authorization: abc123"),
            "authorization: [redacted]"
        );
        assert_eq!(
            redact_secrets("sent Proxy-Authorization: Digest abc and X-Api-Key: k-123"),
            "sent Proxy-Authorization: Digest [redacted] and X-Api-Key: [redacted]"
        );
        assert_eq!(
            redact_secrets("request had Cookie: sid=abc; theme=dark\nnext line"),
            "request had Cookie: [redacted]\nnext line"
        );
        assert_eq!(
            redact_secrets("Set-Cookie: id=abc; Path=/; HttpOnly"),
            "Set-Cookie: [redacted]; HttpOnly"
        );
        assert_eq!(
            redact_secrets(r#"headers: {"authorization": "Bearer x y", "accept": "*/*"}"#),
            r#"headers: {"authorization": "[redacted]", "accept": "*/*"}"#
        );
        assert_eq!(
            redact_secrets("auth: Bearer eyJ.x.y"),
            "auth: [redacted] [redacted]"
        );
    }

    #[test]
    fn names_are_matched_by_their_parts() {
        for secret in [
            "AWS_SECRET_ACCESS_KEY",
            "private_key",
            "signingKey",
            "SigningKey",
            "x-api-key",
            "APIKey",
            "apikey",
            "SESSION_ID",
            "sessionId",
            "jsessionid",
            "csrftoken",
            "client_credentials",
            "X-Hub-Signature-256",
            "auth",
            "Proxy-Authorization",
            "key2",
            "spring.datasource.password",
            "PGPASSWORD",
            "passwd",
            "pwd",
            "set-cookie",
            "client_assertion",
            "SAMLResponse",
            "id_token",
            "otp",
            "sid",
            "SID",
            "user_sid",
            "sid2",
            "userSid",
            "ticket",
            "cas-ticket",
            "serviceTicket",
            "pin",
            "card_pin",
            "userPin",
            "cvv",
            "card-cvc",
        ] {
            assert!(is_secret_name(secret), "{secret}");
        }
        for plain in [
            "monkey",
            "keyboard",
            "tokens",
            "passwordless",
            "author",
            "authority",
            "user",
            "code",
            "message",
            "bypass",
            "design",
            "sidebar",
            "inside",
            "consider",
            "side",
            "tickets",
            "tickets_count",
            "ticketing",
            "ping",
            "spinner",
            "pinned",
            "nonce",
            "ø",
            "",
        ] {
            assert!(!is_secret_name(plain), "{plain}");
        }
        assert_eq!(
            redact_secrets("monkey=3 keyboard: us signingKey=k"),
            "monkey=3 keyboard: us signingKey=[redacted]"
        );
    }

    /// A PEM private key in error text: only `-----BEGIN` after a secret's name was hidden,
    /// and none of it after any other text; the key's base64 body reached the log.
    #[test]
    fn pem_private_keys_lose_their_body() {
        const PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIB\nKEYMATERIAL==\n-----END RSA PRIVATE KEY-----";
        const HIDDEN: &str =
            "-----BEGIN RSA PRIVATE KEY-----\n[redacted]\n-----END RSA PRIVATE KEY-----";
        for (text, redacted) in [
            (format!("loading {PEM} failed"), format!("loading {HIDDEN} failed")),
            (format!("bad signing key: {PEM}"), format!("bad signing key: {HIDDEN}")),
            (format!("private_key={PEM}"), format!("private_key={HIDDEN}")),
            (format!("private_key=\"{PEM}\""), format!("private_key=\"{HIDDEN}\"")),
            // `Debug` form, newlines escaped.
            (
                r#"Tls { pem: "-----BEGIN PRIVATE KEY-----\nKEYMATERIAL\n-----END PRIVATE KEY-----\n" }"#.to_owned(),
                r#"Tls { pem: "-----BEGIN PRIVATE KEY-----[redacted]-----END PRIVATE KEY-----\n" }"#.to_owned(),
            ),
            // No end line: the rest of the text.
            (
                "key -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1r KEYMATERIAL".to_owned(),
                "key -----BEGIN OPENSSH PRIVATE KEY-----\n[redacted]".to_owned(),
            ),
        ] {
            assert_eq!(redact_secrets(&text), redacted);
            assert!(!redact_secrets(&text).contains("KEYMATERIAL"), "{text}");
        }
        // Certificates and public keys are not secrets; what only looks like a key's start is
        // a plain value.
        let cert = "cert: -----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        assert!(matches!(redact_secrets(cert), Cow::Borrowed(_)));
        assert_eq!(
            redact_secrets("password=-----BEGIN PRIVATE KEY"),
            "password=[redacted] PRIVATE KEY"
        );
        let pieces = [
            "-----BEGIN PRIVATE KEY-----",
            "-----END PRIVATE KEY-----",
            "-----BEGIN ",
            "-----",
            "\n",
            "key=",
            "\"",
            " ",
            "ø",
        ];
        each_text(&pieces, |text| {
            let _ = redact_secrets(text);
        });
    }

    #[test]
    fn values_end_where_they_end() {
        assert_eq!(
            redact_secrets("f(token=abc) {key=k} a=1&sig=s&b=2 token=t;x token=u,y pwd=v]"),
            "f(token=[redacted]) {key=[redacted]} a=1&sig=[redacted]&b=2 token=[redacted];x token=[redacted],y pwd=[redacted]]"
        );
        // An unclosed quote hides the rest of its line; an unclosed bracket the rest of the text.
        assert_eq!(
            redact_secrets("token=\"abc def\nnext"),
            "token=\"[redacted]\nnext"
        );
        assert_eq!(
            redact_secrets("Cfg { secret: Secret { a: 1,\nb: 2"),
            "Cfg { secret: Secret { [redacted]"
        );
        // Nothing to hide: an empty value.
        assert_eq!(
            redact_secrets(r#"password: "", token="#),
            r#"password: "", token="#
        );
    }

    /// Every string of up to 4 of `pieces`, joined.
    fn each_text(pieces: &[&str], mut check: impl FnMut(&str)) {
        let mut text = String::new();
        let n = pieces.len();
        for code in 0..n.pow(4) {
            text.clear();
            let mut c = code;
            for _ in 0..4 {
                text.push_str(pieces[c % n]);
                c /= n;
            }
            check(&text);
        }
    }

    #[test]
    fn odd_text_never_panics_and_a_later_secret_is_still_found() {
        // The shapes it looks for, cut short and mixed, next to characters of several bytes.
        let pieces = [
            "=",
            "\"",
            ":",
            " ",
            "'",
            "://",
            "a:b@",
            "ø",
            "é=",
            "\u{a0}",
            "\n",
            "\\",
            "{",
            ")",
            "(",
            "]",
            ";",
            "&",
            "Some(",
            "X(",
            "token",
            "Key",
            "Bearer",
            "Cookie:",
            "Authorization:",
            "Token ",
            "password=",
            "\":",
        ];
        each_text(&pieces, |text| {
            let _ = redact_secrets(text);
            let with_secret = format!("{text} password=S3CR3T");
            let redacted = redact_secrets(&with_secret);
            assert!(
                !redacted.contains("S3CR3T"),
                "{with_secret:?} -> {redacted:?}"
            );
        });
    }

    #[test]
    fn text_without_secret_names_is_unchanged() {
        let pieces = [
            "=", "\"", ":", " ", "'", "ø", "\n", "\\", "{", "}", "(", ")", "Some(", "user", "::",
            "==", ",", "Os",
        ];
        each_text(&pieces, |text| {
            assert!(matches!(redact_secrets(text), Cow::Borrowed(_)), "{text:?}");
        });
    }
}
