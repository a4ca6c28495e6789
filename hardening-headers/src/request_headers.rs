//! What the security headers read from a request's headers: credentials, and a trusted
//! proxy's `X-Forwarded-Proto` (and, for a caller that asks, whether one more field is there).

use hardening_errors::forwarded_proto_says_https;
use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, HeaderName};

/// Parsed once, not per request (a `&str` name is parsed on every lookup).
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Headers that carry an API key or token, so that a response to them is as private as one
/// to `Authorization`.
static API_KEY_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("x-api-key"),
    HeaderName::from_static("api-key"),
    HeaderName::from_static("x-auth-token"),
];

/// Up to this many header values, one pass comparing names costs less than looking each
/// wanted name up (a lookup hashes the name; `x-forwarded-proto` byte by byte). API clients
/// and load tools send a handful of headers; browsers send more and take the lookups.
const SCAN_UP_TO: usize = 8;

/// What [`RequestHeaders::read`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RequestHeaders {
    /// The last `X-Forwarded-Proto` value says `https` (read only when asked for): the one the
    /// proxy nearest to this service wrote; any before it may be the client's own.
    pub(crate) forwarded_https: bool,
    /// The request carries `Authorization`, `Cookie` or an API key header (`X-Api-Key`,
    /// `Api-Key`, `X-Auth-Token`).
    pub(crate) credentials: bool,
    /// The request has a field with the name the caller asked about (see
    /// [`read_noting`](RequestHeaders::read_noting)).
    pub(crate) noted: bool,
}

impl RequestHeaders {
    /// Reads `headers`; `X-Forwarded-Proto` only when `forwarded_proto` (the caller trusts
    /// the peer).
    pub(crate) fn read(headers: &HeaderMap, forwarded_proto: bool) -> Self {
        Self::read_noting(headers, forwarded_proto, None)
    }

    /// [`read`](Self::read), also noting whether the request has a field named `noted`: in
    /// the same pass, so that a request with a few headers pays a comparison per field for
    /// it rather than a lookup (which hashes the name).
    pub(crate) fn read_noting(
        headers: &HeaderMap,
        forwarded_proto: bool,
        noted: Option<&HeaderName>,
    ) -> Self {
        // Values, not names: a name repeated many times must not make the pass long.
        if headers.len() > SCAN_UP_TO {
            Self::by_lookup(headers, forwarded_proto, noted)
        } else {
            Self::by_scan(headers, forwarded_proto, noted)
        }
    }

    fn by_lookup(headers: &HeaderMap, forwarded_proto: bool, noted: Option<&HeaderName>) -> Self {
        Self {
            forwarded_https: forwarded_proto
                && headers
                    .get_all(&X_FORWARDED_PROTO)
                    .iter()
                    .next_back()
                    .is_some_and(forwarded_proto_says_https),
            credentials: headers.contains_key(AUTHORIZATION)
                || headers.contains_key(COOKIE)
                || API_KEY_HEADERS
                    .iter()
                    .any(|name| headers.contains_key(name)),
            noted: noted.is_some_and(|name| headers.contains_key(name)),
        }
    }

    fn by_scan(headers: &HeaderMap, forwarded_proto: bool, noted: Option<&HeaderName>) -> Self {
        let mut found = Self::default();
        // Values in insertion order, so the last `X-Forwarded-Proto` is read last.
        for (name, value) in headers {
            if name == AUTHORIZATION || name == COOKIE || API_KEY_HEADERS.contains(name) {
                found.credentials = true;
            } else if forwarded_proto && *name == X_FORWARDED_PROTO {
                found.forwarded_https = forwarded_proto_says_https(value);
            }
            // Apart: the caller may ask about one of the names above.
            if noted == Some(name) {
                found.noted = true;
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn scan_and_lookup_agree() {
        let wanted: [(&str, &[u8]); 8] = [
            ("authorization", b"Bearer x"),
            ("cookie", b"sid=1"),
            ("x-api-key", b"k-1"),
            ("x-forwarded-proto", b"https"),
            ("x-forwarded-proto", b"HTTPS"),
            ("x-forwarded-proto", b"http"),
            ("x-forwarded-proto", b"https, http"),
            ("x-request-id", b"id-1"),
        ];
        let request_id = HeaderName::from_static("x-request-id");
        let noted = [None, Some(&request_id), Some(&COOKIE)];
        let mut cases = 0;
        // Every subset of the wanted headers (in order, so duplicates of x-forwarded-proto
        // appear with either value first), among 0 to 12 other headers.
        for mask in 0u32..(1 << wanted.len()) {
            for others in [0, 3, 7, 12] {
                let mut headers = HeaderMap::new();
                for i in 0..others {
                    headers.insert(
                        HeaderName::try_from(format!("x-other-{i}")).unwrap(),
                        HeaderValue::from_static("1"),
                    );
                }
                for (i, (name, value)) in wanted.iter().enumerate() {
                    if mask & (1 << i) != 0 {
                        headers.append(*name, HeaderValue::from_bytes(value).unwrap());
                    }
                }
                for trusted in [false, true] {
                    for noted in noted {
                        let scanned = RequestHeaders::by_scan(&headers, trusted, noted);
                        let looked_up = RequestHeaders::by_lookup(&headers, trusted, noted);
                        assert_eq!(scanned, looked_up, "{headers:?}, {trusted}, {noted:?}");
                        assert_eq!(
                            RequestHeaders::read_noting(&headers, trusted, noted),
                            looked_up
                        );
                        assert_eq!(
                            looked_up.noted,
                            noted.is_some_and(|name| headers.contains_key(name))
                        );
                        cases += 1;
                    }
                    assert_eq!(
                        RequestHeaders::read(&headers, trusted),
                        RequestHeaders::read_noting(&headers, trusted, None)
                    );
                }
            }
        }
        assert_eq!(cases, 256 * 4 * 2 * 3);
    }

    #[test]
    fn reads_what_it_should() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            RequestHeaders::read(&headers, true),
            RequestHeaders::default()
        );
        headers.append("x-forwarded-proto", HeaderValue::from_static("HTTPS"));
        headers.append("x-forwarded-proto", HeaderValue::from_static("http"));
        let read = RequestHeaders::read(&headers, true);
        assert!(!read.forwarded_https, "the last value counts");
        headers.append("x-forwarded-proto", HeaderValue::from_static("http, https"));
        assert!(RequestHeaders::read(&headers, true).forwarded_https);
        headers.append("x-forwarded-proto", HeaderValue::from_static("https ,http"));
        let read = RequestHeaders::read(&headers, true);
        assert!(
            !read.forwarded_https,
            "the last item of the last value counts"
        );
        assert!(!read.credentials);
        assert!(!RequestHeaders::read(&headers, false).forwarded_https);
        headers.insert("cookie", HeaderValue::from_static("a=b"));
        assert!(RequestHeaders::read(&headers, false).credentials);
        for name in ["x-api-key", "api-key", "x-auth-token"] {
            let mut headers = HeaderMap::new();
            headers.insert(name, HeaderValue::from_static("k-1"));
            assert!(RequestHeaders::read(&headers, false).credentials, "{name}");
        }
    }

    /// A noted name is found among a few headers (compared in the pass) and among many
    /// (looked up), whatever its case on the wire; nothing is noted unless asked.
    #[test]
    fn notes_the_name_it_is_asked_about() {
        let request_id = HeaderName::from_static("x-request-id");
        for others in [0, 12] {
            let mut headers = HeaderMap::new();
            for i in 0..others {
                headers.insert(
                    HeaderName::try_from(format!("x-other-{i}")).unwrap(),
                    HeaderValue::from_static("1"),
                );
            }
            let read = RequestHeaders::read_noting(&headers, false, Some(&request_id));
            assert!(!read.noted, "{others}");
            headers.append(
                HeaderName::from_bytes(b"X-Request-Id").unwrap(),
                HeaderValue::from_static("a"),
            );
            let read = RequestHeaders::read_noting(&headers, false, Some(&request_id));
            assert!(read.noted, "{others}");
            assert!(!RequestHeaders::read(&headers, false).noted, "{others}");
        }
    }
}
