//! Header values: computed once and kept for the life of the process, or joined into a list;
//! and the host of a `Host` value.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock, PoisonError};

use http::header::{CONTENT_LENGTH, InvalidHeaderValue};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body::Body;

/// A header value computed at build time, kept for the life of the process so that cloning it
/// per response is a copy, not an atomic reference count (`Bytes` from a `String` is shared
/// and counted). Interned: building the same policy again stores nothing new, so the memory
/// is bounded by the distinct values a process ever configures. For values made at start-up,
/// never for values that change per request.
///
/// ```
/// let a = hardening_errors::static_header_value(format!("max-age={}", 63_072_000)).unwrap();
/// let b = hardening_errors::static_header_value("max-age=63072000".to_owned()).unwrap();
/// assert_eq!(a, b);
/// assert!(hardening_errors::static_header_value("bad\nvalue".to_owned()).is_err());
/// ```
pub fn static_header_value(value: String) -> Result<HeaderValue, InvalidHeaderValue> {
    static INTERNED: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    // Validate first: `from_static` insists on a valid value.
    HeaderValue::from_str(&value)?;
    let mut set = INTERNED
        .get_or_init(|| Mutex::new(HashSet::new()))
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let text: &'static str = match set.get(value.as_str()) {
        Some(text) => text,
        None => {
            let text: &'static str = Box::leak(value.into_boxed_str());
            set.insert(text);
            text
        }
    };
    Ok(HeaderValue::from_static(text))
}

/// The `Content-Length` axum writes into every response after the layers, and hyper on the
/// wire when it is absent: the body's exact size. For the `Content-Length` slot of
/// `hardening_headers::HeaderSet::apply_with`, because the map it returns has no spare room
/// and an insert after it moves every entry. `None` (the slot dropped) where hyper would send none (1xx,
/// 204, 304, or `by_method` false: a `HEAD` or `CONNECT` request), or where the size is not
/// known.
///
/// The service's own `Content-Length` is kept (`None`) when it matches the body's exact size
/// or the size is not known. When it does not match, is malformed or comes more than once, the
/// body's size is returned, so that it replaces the service's value, and a warning is logged:
/// hyper would send the wrong length and then the whole body, and on a kept-alive connection
/// the extra bytes would be read as the next response.
///
/// ```
/// let res = http::Response::new(axum::body::Body::from("hello"));
/// assert_eq!(hardening_errors::content_length(true, &res).unwrap(), "5");
/// assert!(hardening_errors::content_length(false, &res).is_none(), "HEAD");
///
/// let (mut parts, body) = res.into_parts();
/// parts.headers.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from_static("2"));
/// let res = http::Response::from_parts(parts, body);
/// assert_eq!(hardening_errors::content_length(true, &res).unwrap(), "5", "corrected");
/// ```
pub fn content_length<B: Body>(by_method: bool, response: &Response<B>) -> Option<HeaderValue> {
    let status = response.status();
    if !by_method
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return None;
    }
    // Names compared in turn: cheaper than a hashed lookup for the few a response has.
    if response.headers().keys().any(|name| name == CONTENT_LENGTH) {
        return corrected_length(response);
    }
    response
        .body()
        .size_hint()
        .exact()
        .map(decimal_header_value)
}

/// The service set `Content-Length` itself: `None` to keep it, or the body's exact size when
/// the service's value is wrong (logged).
#[cold]
#[inline(never)]
fn corrected_length<B: Body>(response: &Response<B>) -> Option<HeaderValue> {
    // A stream: hyper sends the declared length and stops there.
    let size = response.body().size_hint().exact()?;
    let mut values = response.headers().get_all(CONTENT_LENGTH).iter();
    let declared = values.next().and_then(|v| decimal(v.as_bytes()));
    let fields = 1 + values.count();
    match declared {
        Some(declared) if fields == 1 && declared == size => return None,
        _ if fields > 1 => tracing::warn!(
            target: crate::LOG_TARGET,
            fields,
            body_size = size,
            "response had several Content-Length fields; sent one with the body's size"
        ),
        Some(declared) => tracing::warn!(
            target: crate::LOG_TARGET,
            declared,
            body_size = size,
            "response's Content-Length disagreed with its body; sent the body's size"
        ),
        None => tracing::warn!(
            target: crate::LOG_TARGET,
            body_size = size,
            "response's Content-Length was not a number; sent the body's size"
        ),
    }
    Some(decimal_header_value(size))
}

/// Whether an `X-Forwarded-Proto` value says HTTPS: its last item (`https`, or
/// `https, http` from a proxy that appends) is `https`, in any case. Whether to believe the
/// header at all (only from a trusted proxy) is the caller's decision.
///
/// ```
/// use hardening_errors::forwarded_proto_says_https;
/// use http::HeaderValue;
///
/// assert!(forwarded_proto_says_https(&HeaderValue::from_static("HTTPS")));
/// assert!(forwarded_proto_says_https(&HeaderValue::from_static("http, https")));
/// assert!(!forwarded_proto_says_https(&HeaderValue::from_static("https, http")));
/// ```
pub fn forwarded_proto_says_https(value: &HeaderValue) -> bool {
    let value = value.as_bytes();
    let last = value.rsplit(|b| *b == b',').next().unwrap_or(value);
    last.trim_ascii().eq_ignore_ascii_case(b"https")
}

/// The length the `Content-Length` fields of `headers` declare, as RFC 9110 §8.6 and RFC 9112
/// §6.3 define it: `Ok(None)` without the header; the length when every field, and every
/// element of a comma-separated list, is the same number (digits only, within `u64`; spaces
/// around an element allowed); otherwise [`InvalidContentLength`], which a server answers 400
/// (as hyper does, which, like the `h2` crate, also refuses a list in one field, as the RFC
/// allows).
/// Allocates nothing.
///
/// ```
/// use hardening_errors::{InvalidContentLength, declared_content_length};
/// use http::{HeaderMap, HeaderValue, header::CONTENT_LENGTH};
///
/// let mut headers = HeaderMap::new();
/// assert_eq!(declared_content_length(&headers), Ok(None));
/// headers.insert(CONTENT_LENGTH, HeaderValue::from_static("42, 42"));
/// assert_eq!(declared_content_length(&headers), Ok(Some(42)));
/// for bad in ["+42", "-1", "0x2a", "4 2", "42, 43", ""] {
///     headers.insert(CONTENT_LENGTH, HeaderValue::from_static(bad));
///     assert_eq!(declared_content_length(&headers), Err(InvalidContentLength), "{bad}");
/// }
/// ```
pub fn declared_content_length(headers: &HeaderMap) -> Result<Option<u64>, InvalidContentLength> {
    let mut declared = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for element in value.as_bytes().split(|&b| b == b',') {
            // The optional space around a list element (RFC 9110 §5.6.1): the only ASCII
            // whitespace a header value can hold is space and tab.
            let n = decimal(element.trim_ascii()).ok_or(InvalidContentLength)?;
            if declared.replace(n).is_some_and(|first| first != n) {
                return Err(InvalidContentLength);
            }
        }
    }
    Ok(declared)
}

/// Why [`declared_content_length`] refused a request's `Content-Length`: a value that is not
/// digits only, too large for `u64`, or fields (or list elements) that disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Content-Length is not one decimal number of bytes")]
pub struct InvalidContentLength;

/// A `Content-Length` value as HTTP defines it: digits only (no sign, space or list), within
/// `u64`.
fn decimal(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() {
        return None;
    }
    bytes.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// The media type of a `Content-Type` value, its parameters and the space around it left out
/// (`text/html` of `Text/HTML; charset=utf-8`). Media types are case-insensitive (RFC 9110
/// §8.3.1): compare with `eq_ignore_ascii_case`.
///
/// ```
/// let value = http::HeaderValue::from_static(" Text/HTML ; charset=utf-8");
/// assert!(hardening_errors::media_type(&value).eq_ignore_ascii_case(b"text/html"));
/// ```
pub fn media_type(value: &HeaderValue) -> &[u8] {
    let bytes = value.as_bytes();
    let end = bytes.iter().position(|&b| b == b';').unwrap_or(bytes.len());
    bytes[..end].trim_ascii()
}

/// `n` as a header value (a `Content-Length`, say). Numbers under 10 000 are slices of one
/// text built at compile time, so the value costs no allocation and cloning or dropping it
/// is a copy; larger ones are allocated.
///
/// ```
/// for n in [0, 7, 42, 999, 1000, 9999, 10_000, u64::MAX] {
///     assert_eq!(hardening_errors::decimal_header_value(n), n.to_string().as_str());
/// }
/// ```
pub fn decimal_header_value(n: u64) -> HeaderValue {
    // Where `n`'s digits start in `DECIMALS`: the 1-, 2-, 3- and 4-digit numbers follow each
    // other, each group in order.
    let (start, len) = match n {
        0..10 => (n, 1),
        10..100 => (10 + 2 * (n - 10), 2),
        100..1000 => (190 + 3 * (n - 100), 3),
        1000..10_000 => (2890 + 4 * (n - 1000), 4),
        _ => return HeaderValue::from(n),
    };
    let start = start as usize;
    match DECIMALS.get(start..start + len) {
        Some(text) => HeaderValue::from_static(text),
        None => HeaderValue::from(n),
    }
}

/// A `Retry-After` value for `delay`: whole seconds (RFC 9110 §10.2.3), rounded up, so that
/// a client that waits what it says never comes back early.
///
/// ```
/// use std::time::Duration;
/// use hardening_errors::retry_after_value;
///
/// assert_eq!(retry_after_value(Duration::from_secs(2)), "2");
/// assert_eq!(retry_after_value(Duration::from_millis(1_200)), "2");
/// assert_eq!(retry_after_value(Duration::ZERO), "0");
/// ```
pub fn retry_after_value(delay: std::time::Duration) -> HeaderValue {
    decimal_header_value(
        delay
            .as_secs()
            .saturating_add(u64::from(delay.subsec_nanos() > 0)),
    )
}

/// `0123456789101112…9999`: every number under 10 000, in order, with nothing between.
static DECIMALS: &str = match std::str::from_utf8(&decimals()) {
    Ok(text) => text,
    Err(_) => panic!("digits are UTF-8"),
};

const fn decimals() -> [u8; 38_890] {
    let mut out = [0u8; 38_890];
    let (mut n, mut at) = (0u32, 0usize);
    while n < 10_000 {
        let len = if n < 10 {
            1
        } else if n < 100 {
            2
        } else if n < 1000 {
            3
        } else {
            4
        };
        let (mut rest, mut i) = (n, len);
        while i > 0 {
            i -= 1;
            out[at + i] = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        at += len;
        n += 1;
    }
    out
}

/// The values as one comma-separated list (`a, b, c`), in one allocation of the exact size;
/// `None` for no values.
///
/// ```
/// use http::HeaderValue;
/// let (inner, outer) = (HeaderValue::from_static("\"a\";r=1"), HeaderValue::from_static("\"b\";r=2"));
/// let joined = hardening_errors::join_header_values(&[&inner, &outer]).unwrap();
/// assert_eq!(joined, "\"a\";r=1, \"b\";r=2");
/// ```
pub fn join_header_values(values: &[&HeaderValue]) -> Option<HeaderValue> {
    let len = values
        .iter()
        .map(|v| v.len() + 2)
        .sum::<usize>()
        .checked_sub(2)?;
    let mut joined = Vec::with_capacity(len);
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            joined.extend_from_slice(b", ");
        }
        joined.extend_from_slice(value.as_bytes());
    }
    // Exactly sized, so `Bytes` takes the buffer over without another allocation.
    HeaderValue::from_maybe_shared(bytes::Bytes::from(joined)).ok()
}

/// The host of a `Host` value (`uri-host [ ":" port ]`, RFC 9110 §7.2) in the two shapes a
/// service answers for: a DNS name (dot-separated labels of 1 to 63 letters, digits and `-`,
/// not starting or ending with `-`; one trailing dot allowed; an IPv4 address is one) or a
/// bracketed IPv6 literal,
/// then an optional port (1 to 5 digits, at most 65535), which is dropped. `None` for anything
/// else, such as `example.com:@evil.com` (a browser would read `evil.com` after the userinfo) or
/// `evil.com/.example.com`. The host allowlist and the HTTPS redirect both read `Host`
/// through it.
///
/// ```
/// use hardening_errors::host_without_port;
///
/// assert_eq!(host_without_port("api.example.com:8443"), Some("api.example.com"));
/// assert_eq!(host_without_port("[::1]:80"), Some("[::1]"));
/// assert_eq!(host_without_port("api.example.com:@evil.com"), None);
/// assert_eq!(host_without_port("evil.com/.example.com"), None);
/// assert_eq!(host_without_port("api.example.com:65536"), None);
/// assert_eq!(host_without_port("[abc]"), None);
/// assert_eq!(host_without_port("a..example.com"), None);
/// ```
pub fn host_without_port(value: &str) -> Option<&str> {
    let end = if value.starts_with('[') {
        let end = value.find(']')? + 1;
        value[1..end - 1].parse::<std::net::Ipv6Addr>().ok()?;
        end
    } else {
        let end = value.find(':').unwrap_or(value.len());
        let name = &value[..end];
        if !is_dns_name(name.strip_suffix('.').unwrap_or(name)) {
            return None;
        }
        end
    };
    let (host, port) = value.split_at(end);
    match port.strip_prefix(':') {
        None if port.is_empty() => Some(host),
        // A TCP port: 1 to 5 digits, at most 65535 (`parse` alone would take a `+`).
        Some(digits)
            if (1..=5).contains(&digits.len())
                && digits.bytes().all(|b| b.is_ascii_digit())
                && digits.parse::<u16>().is_ok() =>
        {
            Some(host)
        }
        _ => None,
    }
}

/// Whether `name` is a DNS name as a `Host` or `Origin` may carry it: labels of 1 to 63
/// letters, digits and `-`, not starting or ending with `-`, joined by `.`, at most 253
/// characters. No trailing `.`: a caller that allows the one a fully qualified name may end
/// with strips it first. The host allowlist, [`host_without_port`] and
/// [`origin::parse_origin`](crate::origin::parse_origin) all check names with it.
///
/// ```
/// use hardening_errors::is_dns_name;
///
/// assert!(is_dns_name("api.example.com"));
/// assert!(is_dns_name("xn--bcher-kva.example"));
/// assert!(!is_dns_name("api.example.com."));
/// assert!(!is_dns_name("-api.example.com"));
/// assert!(!is_dns_name("a_b.example.com"));
/// ```
pub fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Why no `Cookie` or `Set-Cookie` can carry a cookie of this name, if none can: browsers and
/// servers trim a cookie's name, and a name is not empty and holds no control character, `;`
/// or `=` (each ends it). For settings that name a cookie: one that no cookie can have would
/// match nothing, quietly.
///
/// ```
/// use hardening_errors::cookie_name_problem;
///
/// assert_eq!(cookie_name_problem("__Host-session"), None);
/// assert!(cookie_name_problem("__Host-session ").is_some());
/// assert!(cookie_name_problem("sid=1").is_some());
/// ```
pub fn cookie_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("the name is empty")
    } else if name.trim_ascii() != name {
        Some("the name has spaces around it, which browsers and servers trim")
    } else if name
        .bytes()
        .any(|b| b.is_ascii_control() || b == b';' || b == b'=')
    {
        Some("the name has a control character, `;` or `=`, which end a cookie's name")
    } else {
        None
    }
}

/// Why no request can have this path, if none can, for settings that exempt a path (matched
/// exactly, as the request line has it, before percent-decoding, without the query): one no
/// request has would exempt nothing, quietly. A path starts with `/`, and holds no `?` or
/// `#`, space, control or non-ASCII character.
///
/// ```
/// use hardening_errors::exempt_path_problem;
///
/// assert_eq!(exempt_path_problem("/healthz"), None);
/// assert!(exempt_path_problem("healthz").is_some());
/// ```
pub fn exempt_path_problem(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        Some("must start with /, as a request's path does")
    } else if path.contains(['?', '#']) {
        Some("is compared without the query: drop everything from ? or #")
    } else if path.bytes().any(|b| !b.is_ascii_graphic()) {
        Some("has a space, control or non-ASCII character, which no request line carries")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_tcp_ports() {
        for good in ["a.example:1", "a.example:0", "a.example:65535", "[::1]:443"] {
            assert!(host_without_port(good).is_some(), "{good}");
        }
        for bad in [
            "a.example:65536",
            "a.example:99999",
            "a.example:+80",
            "a.example:",
            "a.example:123456",
            "[::1]:70000",
        ] {
            assert_eq!(host_without_port(bad), None, "{bad}");
        }
    }

    /// Only DNS names and IPv6 literals: a bracketed host that is not IPv6 (the redirect
    /// built `https://[abc]/` from it) and malformed labels are refused.
    #[test]
    fn hosts_are_dns_names_or_ipv6_literals() {
        for good in [
            "localhost",
            "api.example.com",
            "api.example.com.",
            "xn--bcher-kva.example",
            "192.0.2.7",
            "[::1]",
            "[2001:db8::7]:8443",
            "[::ffff:192.0.2.7]",
        ] {
            assert!(host_without_port(good).is_some(), "{good}");
        }
        for bad in [
            "[abc]",
            "[1.2.3.4]",
            "[]",
            "[::1",
            "-",
            ".",
            "..",
            ".example.com",
            "a..example.com",
            "-a.example.com",
            "a-.example.com",
            "a_b.example.com",
            "example.com..",
            "",
        ] {
            assert!(host_without_port(bad).is_none(), "{bad}");
        }
        let long_label = format!("{}.example", "a".repeat(64));
        assert!(host_without_port(&long_label).is_none());
    }

    fn declared(values: &[&'static str]) -> Result<Option<u64>, InvalidContentLength> {
        let mut headers = HeaderMap::new();
        for &value in values {
            headers.append(CONTENT_LENGTH, HeaderValue::from_static(value));
        }
        declared_content_length(&headers)
    }

    /// RFC 9110 §8.6, RFC 9112 §6.3: `1*DIGIT` within `u64`; several fields or a list only
    /// when every element is valid and all are equal.
    #[test]
    fn content_length_is_digits_and_one_value() {
        assert_eq!(declared(&[]), Ok(None));
        for (values, n) in [
            (&["0"][..], 0),
            (&["5"], 5),
            (&["007"], 7),
            (&["5, 5"], 5),
            (&["5,5,5"], 5),
            (&["5", "5"], 5),
            (&["5, 5", "5"], 5),
            (&[" 5\t"], 5),
            (&["18446744073709551615"], u64::MAX),
        ] {
            assert_eq!(declared(values), Ok(Some(n)), "{values:?}");
        }
        for values in [
            &[""][..],
            &[" "],
            &["+5"],
            &["-1"],
            &["-0"],
            &["5 5"],
            &["5, 6"],
            &["5", "6"],
            &["5", "x"],
            &["5,"],
            &[",5"],
            &["5,,5"],
            &["0x10"],
            &["1e3"],
            &["1_000"],
            &["5.0"],
            &["5;q=1"],
            &["18446744073709551616"],
            &["100000000000000000000"],
        ] {
            assert_eq!(declared(values), Err(InvalidContentLength), "{values:?}");
        }
        // A digit outside ASCII (obs-text on the wire).
        let mut headers = HeaderMap::new();
        let arabic_three = HeaderValue::from_bytes("\u{663}".as_bytes()).unwrap();
        headers.insert(CONTENT_LENGTH, arabic_three);
        assert_eq!(declared_content_length(&headers), Err(InvalidContentLength));
    }

    #[test]
    fn decimals_read_like_display() {
        for n in (0..=12_000).chain([99_999, 100_000, u64::MAX - 1, u64::MAX]) {
            assert_eq!(decimal_header_value(n), n.to_string().as_str(), "{n}");
        }
    }
}
