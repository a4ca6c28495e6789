//! What the security headers read from a request's headers: credentials, and a trusted
//! proxy's `X-Forwarded-Proto`.

use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue};

/// Parsed once, not per request (a `&str` name is parsed on every lookup).
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Up to this many header values, one pass comparing names costs less than looking each
/// wanted name up (a lookup hashes the name; `x-forwarded-proto` byte by byte). API clients
/// and load tools send a handful of headers; browsers send more and take the lookups.
const SCAN_UP_TO: usize = 8;

/// What [`RequestHeaders::read`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RequestHeaders {
    /// The first `X-Forwarded-Proto` says `https` (read only when asked for).
    pub(crate) forwarded_https: bool,
    /// The request carries `Authorization` or `Cookie`.
    pub(crate) credentials: bool,
}

impl RequestHeaders {
    /// Reads `headers`; `X-Forwarded-Proto` only when `forwarded_proto` (the caller trusts
    /// the peer).
    pub(crate) fn read(headers: &HeaderMap, forwarded_proto: bool) -> Self {
        // Values, not names: a name repeated many times must not make the pass long.
        if headers.len() > SCAN_UP_TO {
            Self::by_lookup(headers, forwarded_proto)
        } else {
            Self::by_scan(headers, forwarded_proto)
        }
    }

    fn by_lookup(headers: &HeaderMap, forwarded_proto: bool) -> Self {
        Self {
            forwarded_https: forwarded_proto
                && headers.get(&X_FORWARDED_PROTO).is_some_and(says_https),
            credentials: headers.contains_key(AUTHORIZATION) || headers.contains_key(COOKIE),
        }
    }

    fn by_scan(headers: &HeaderMap, forwarded_proto: bool) -> Self {
        let mut found = Self::default();
        let mut proto_seen = !forwarded_proto;
        // Values in insertion order, so the first `X-Forwarded-Proto` is the one `get` gives.
        for (name, value) in headers {
            if name == AUTHORIZATION || name == COOKIE {
                found.credentials = true;
            } else if !proto_seen && *name == X_FORWARDED_PROTO {
                proto_seen = true;
                found.forwarded_https = says_https(value);
            }
        }
        found
    }
}

fn says_https(value: &HeaderValue) -> bool {
    value.as_bytes().eq_ignore_ascii_case(b"https")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_and_lookup_agree() {
        let wanted: [(&str, &[u8]); 6] = [
            ("authorization", b"Bearer x"),
            ("cookie", b"sid=1"),
            ("x-forwarded-proto", b"https"),
            ("x-forwarded-proto", b"HTTPS"),
            ("x-forwarded-proto", b"http"),
            ("x-forwarded-proto", b"https, http"),
        ];
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
                    let scanned = RequestHeaders::by_scan(&headers, trusted);
                    let looked_up = RequestHeaders::by_lookup(&headers, trusted);
                    assert_eq!(scanned, looked_up, "{headers:?}, trusted: {trusted}");
                    assert_eq!(RequestHeaders::read(&headers, trusted), looked_up);
                    cases += 1;
                }
            }
        }
        assert_eq!(cases, 64 * 4 * 2);
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
        assert!(read.forwarded_https, "the first value counts");
        assert!(!read.credentials);
        assert!(!RequestHeaders::read(&headers, false).forwarded_https);
        headers.insert("cookie", HeaderValue::from_static("a=b"));
        assert!(RequestHeaders::read(&headers, false).credentials);
    }
}
