//! Text a client sent, made fit to print in a log line: the userinfo of a URL found, path
//! segments that may be tokens spotted, and the bytes that would break or disguise a line
//! encoded. Shared by `hardening-core`'s access log
//! and `hardening-headers`' CSP report endpoint.

use std::fmt;

/// Where a URL's userinfo (`user:password@`) ends, 0 without one: the last `@` between the
/// scheme's `://` and the first `/` after it (a path such as `/a?next=https://…` has none).
///
/// ```
/// use hardening_errors::after_userinfo;
///
/// let url = "https://app:pa?ss@db.example/x";
/// assert_eq!(&url[after_userinfo(url)..], "db.example/x");
/// assert_eq!(after_userinfo("https://db.example/a?next=https://u@b/"), 0);
/// assert_eq!(after_userinfo("/relative@path"), 0);
/// ```
pub fn after_userinfo(url: &str) -> usize {
    let Some(start) = url.find("://").map(|at| at + 3) else {
        return 0;
    };
    let scheme = &url[..start - 3];
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return 0;
    }
    let authority_end = url[start..].find('/').map_or(url.len(), |at| start + at);
    url[start..authority_end]
        .rfind('@')
        .map_or(0, |at| start + at + 1)
}

/// Writes `s` with every byte outside printable ASCII percent-encoded, as a URL would carry
/// it. A control character (a newline, a carriage return, an ANSI escape) would start a
/// forged line in a plain-text log; a raw NEL (U+0085) or LINE SEPARATOR (U+2028), at which
/// some line readers break lines, or a bidi override (U+202E), which makes a line read
/// otherwise, would be printed as it came.
///
/// ```
/// let mut out = String::new();
/// hardening_errors::write_printable_ascii(&mut out, "/a\r\nb\u{1b}[2K\u{202e}é").unwrap();
/// assert_eq!(out, "/a%0D%0Ab%1B[2K%E2%80%AE%C3%A9");
/// ```
pub fn write_printable_ascii(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    let mut copied = 0;
    let unprintable = |c: &char| !c.is_ascii() || c.is_ascii_control();
    for (i, c) in s.char_indices().filter(|(_, c)| unprintable(c)) {
        f.write_str(&s[copied..i])?;
        for byte in c.encode_utf8(&mut [0; 4]).bytes() {
            write!(f, "%{byte:02X}")?;
        }
        copied = i + c.len_utf8();
    }
    f.write_str(&s[copied..])
}

/// Whether a URL path segment may be a token, to be logged redacted (`/reset/<token>`,
/// `/u/<session id>`, `/invite/<uuid>`): 16 bytes or more, and not a lower-case word
/// (letters, `-`, `_`, `.`). A heuristic: shorter tokens, and lower-case-only ones, pass;
/// long mixed-case names (`UserSettingsPage`, `app.3f9a8b7c6d5e4f3a.js`) are hidden too.
///
/// ```
/// use hardening_errors::may_be_a_token;
///
/// assert!(may_be_a_token("550e8400-e29b-41d4-a716-446655440000"));
/// assert!(may_be_a_token("k3j4h5g6f7d8s9a0"));
/// assert!(!may_be_a_token("account-settings"));
/// assert!(!may_be_a_token("notes"));
/// ```
pub fn may_be_a_token(segment: &str) -> bool {
    segment.len() >= TOKEN_LENGTH
        && !segment
            .bytes()
            .all(|b| b.is_ascii_lowercase() || matches!(b, b'-' | b'_' | b'.'))
}

/// A path segment this long or longer, unless a lower-case word, may be a token.
const TOKEN_LENGTH: usize = 16;
