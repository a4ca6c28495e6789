//! The id that ties a response to its log lines.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http::request::Parts;
use rand::Rng;

/// Longest request id accepted, in bytes.
const MAX_LEN: usize = 64;

/// The TSC clock [`unix_millis`] counts with (governor's too), calibrated once per process
/// (quanta takes up to 200 ms for it: `hardening-core` makes an id when its layer is
/// built, so that no request waits for it).
static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();

thread_local! {
    /// This thread's last reading of the wall clock: the TSC count then, and the Unix time
    /// in nanoseconds. `(0, 0)` until the first id.
    static ANCHOR: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// How long an anchor serves before the wall clock is read again: a step of the system
/// clock (NTP, an operator) shows in new ids within this time.
const ANCHOR_NANOS: u64 = 1_000_000_000;

/// The Unix time in milliseconds, for a UUIDv7's timestamp: a TSC read counted from this
/// thread's anchor, which is the wall clock read at most [`ANCHOR_NANOS`] ago. Reading the
/// wall clock itself (`SystemTime::now`, a vDSO call) costs about four times as much, once
/// per request.
fn unix_millis() -> u64 {
    let clock = CLOCK.get_or_init(quanta::Clock::new);
    let now = clock.raw();
    if let Some(nanos) = from_anchor(ANCHOR.get(), now, |a, b| clock.delta_as_nanos(a, b)) {
        return nanos / 1_000_000;
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    ANCHOR.set((clock.raw(), nanos));
    nanos / 1_000_000
}

/// The Unix time in nanoseconds at TSC count `now` from `anchor` (count, Unix nanoseconds),
/// or `None` when the anchor is unset, ahead of `now`, or too old to count from.
fn from_anchor(
    (at, unix_nanos): (u64, u64),
    now: u64,
    nanos_between: impl Fn(u64, u64) -> u64,
) -> Option<u64> {
    if at == 0 || now < at {
        return None;
    }
    let since = nanos_between(at, now);
    (since < ANCHOR_NANOS).then(|| unix_nanos.saturating_add(since))
}

/// `x`'s eight lower-case hex digits, most significant first, computed in one register
/// (no look-up table: a table's cache lines are cold again by the next request).
fn hex_digits(x: u32) -> [u8; 8] {
    // One nibble per byte, the most significant nibble in the most significant byte.
    let x = u64::from(x);
    let x = (x | (x << 16)) & 0x0000_ffff_0000_ffff;
    let x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff;
    let x = (x | (x << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    // Bytes from 10 up get bit 4 from adding 6; they take 'a' - '0' - 10 = 39 more.
    let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    (x + 0x3030_3030_3030_3030 + letters * 39).to_be_bytes()
}

/// A request id: 1 to 64 characters of `A-Z a-z 0-9 - _ . :`.
///
/// Generated ids are UUIDv7 (RFC 9562): time-ordered, with 74 random bits, made from
/// the clock and a thread-local generator with no system call. Incoming ids (from a trusted
/// proxy's `x-request-id`) go through [`RequestId::parse`], which refuses anything that could
/// forge a log line or smuggle markup. The id is stored inline, so copying it never allocates.
///
/// It is also an axum extractor that reads the id a layer ([`ProblemLayer`](crate::ProblemLayer)
/// or `hardening-core`'s `Hardening`) put in the request extensions; without one it answers
/// a 500 problem and logs why (`Option<RequestId>` is `None` then). `Hardening` also gives a
/// request that carries an `x-request-id` field this id there, replacing the client's;
/// `ProblemLayer` leaves the request's headers as they came.
///
/// ```
/// use hardening_errors::RequestId;
///
/// async fn handler(id: RequestId) -> String {
///     format!("your request id is {id}")
/// }
/// # let _: axum::Router = axum::Router::new().route("/", axum::routing::get(handler));
///
/// let id = RequestId::parse("req-42").unwrap();
/// assert_eq!(id.as_str(), "req-42");
/// assert!(RequestId::parse("bad\nid").is_err());
/// assert_eq!(RequestId::generate().as_str().len(), 36);
/// ```
// Aligned to 8 bytes: moved whole in a few wide moves, and the fields after it in
// `RequestContext` and the response future stay aligned (with byte alignment, every copy of
// them was split into odd-sized pieces).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(align(8))]
pub struct RequestId {
    bytes: [u8; MAX_LEN],
    len: u8,
}

/// Why a string is not a valid [`RequestId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidRequestId {
    /// The id is empty.
    #[error("request id is empty")]
    Empty,
    /// The id is longer than 64 bytes.
    #[error("request id is longer than 64 bytes")]
    TooLong,
    /// The id has a character outside `A-Z a-z 0-9 - _ . :`.
    #[error("request id may only contain A-Z, a-z, 0-9, '-', '_', '.' and ':'")]
    BadCharacter,
}

impl RequestId {
    /// Validates an id received from elsewhere (a trusted proxy's header, a job queue).
    pub fn parse(s: impl AsRef<[u8]>) -> Result<Self, InvalidRequestId> {
        let s = s.as_ref();
        if s.is_empty() {
            return Err(InvalidRequestId::Empty);
        }
        if s.len() > MAX_LEN {
            return Err(InvalidRequestId::TooLong);
        }
        if !s
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        {
            return Err(InvalidRequestId::BadCharacter);
        }
        let mut bytes = [0; MAX_LEN];
        bytes[..s.len()].copy_from_slice(s);
        Ok(Self {
            len: s.len() as u8,
            bytes,
        })
    }

    /// Makes a new UUIDv7 id from the clock and a thread-local random generator.
    pub fn generate() -> Self {
        let millis = unix_millis();
        let mut rng = rand::rng();
        // Three of the generator's 32-bit words (of which 74 bits are used), not four.
        let (a, b) = (rng.next_u32(), rng.next_u64());
        // 48 bits of time, version 7, 12 random bits; variant 0b10, 62 random bits.
        let hi = (millis << 16) | 0x7000 | u64::from(a & 0x0fff);
        let lo = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
        let value = (u128::from(hi) << 64) | u128::from(lo);

        // 32 digits in the 8-4-4-4-12 form.
        let digits = [
            hex_digits((value >> 96) as u32),
            hex_digits((value >> 64) as u32),
            hex_digits((value >> 32) as u32),
            hex_digits(value as u32),
        ];
        let digits = digits.as_flattened();
        let mut bytes = [0; MAX_LEN];
        bytes[..8].copy_from_slice(&digits[..8]);
        bytes[8] = b'-';
        bytes[9..13].copy_from_slice(&digits[8..12]);
        bytes[13] = b'-';
        bytes[14..18].copy_from_slice(&digits[12..16]);
        bytes[18] = b'-';
        bytes[19..23].copy_from_slice(&digits[16..20]);
        bytes[23] = b'-';
        bytes[24..36].copy_from_slice(&digits[20..]);
        Self { len: 36, bytes }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Every constructor stores ASCII only.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }

    /// The id as an `x-request-id` header value.
    ///
    /// Its text is cut from a buffer this thread keeps for them: a reference count, not an
    /// allocation and a free of its own.
    ///
    /// ```
    /// use hardening_errors::RequestId;
    ///
    /// let id = RequestId::generate();
    /// assert_eq!(id.to_header_value(), id.as_str());
    /// ```
    pub fn to_header_value(&self) -> http::HeaderValue {
        let text = &self.bytes[..usize::from(self.len)];
        match shared_header_text(text) {
            Some(shared) => http::HeaderValue::from_maybe_shared(shared),
            None => http::HeaderValue::from_bytes(text),
        }
        .unwrap_or_else(|_| http::HeaderValue::from_static("invalid"))
    }
}

/// Bytes of header text [`HEADER_TEXT`] takes at a time: a live id keeps at most this much
/// memory (the buffer it was cut from) alive.
const HEADER_TEXT_BYTES: usize = 1024;

thread_local! {
    /// Room for the text of the ids' header values, which are cut from it: each one shares
    /// the buffer (a reference count each, instead of an allocation and a free each). Once
    /// it is used up and every value cut from it is gone, the same memory serves again;
    /// while one still lives, a new buffer is taken. `None` until this thread's first value.
    static HEADER_TEXT: RefCell<Option<BytesMut>> = const { RefCell::new(None) };
}

/// `text` in this thread's [`HEADER_TEXT`], or `None` when the thread's storage is gone
/// (during its exit).
fn shared_header_text(text: &[u8]) -> Option<Bytes> {
    HEADER_TEXT
        .try_with(|room| {
            let mut room = room.try_borrow_mut().ok()?;
            let room = room.get_or_insert_with(BytesMut::new);
            if room.capacity() < text.len() {
                room.reserve(HEADER_TEXT_BYTES);
            }
            room.extend_from_slice(text);
            Some(room.split().freeze())
        })
        .ok()
        .flatten()
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RequestId").field(&self.as_str()).finish()
    }
}

impl std::str::FromStr for RequestId {
    type Err = InvalidRequestId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for RequestId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for RequestId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(s.as_bytes()).map_err(serde::de::Error::custom)
    }
}

/// What the outermost layer learned about a request, in one extension entry (one allocation
/// instead of one per value): its id, the client's IP address after trusted-proxy
/// resolution, and whether that address is a trusted proxy's own. `hardening-core`'s
/// `Hardening` inserts it; layers and handlers read it through [`RequestId::from_extensions`],
/// the [`RequestId`] extractor, or `hardening_core::ClientIp` (`KnownClientIp` for checks of
/// which network the client is in).
///
/// ```
/// use hardening_errors::{RequestContext, RequestId};
///
/// let mut extensions = http::Extensions::new();
/// let id = RequestId::generate();
/// extensions.insert(RequestContext::new(id, Some([203, 0, 113, 7].into())));
/// assert_eq!(RequestId::from_extensions(&extensions), Some(id));
/// let context = RequestContext::of(&extensions).unwrap();
/// assert_eq!(context.client_ip.unwrap().to_string(), "203.0.113.7");
/// assert!(!context.client_hidden_by_proxy);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestContext {
    /// The request's id.
    pub request_id: RequestId,
    /// The client's address: the socket peer, or what a trusted proxy reported.
    pub client_ip: Option<IpAddr>,
    /// `client_ip` is a trusted proxy's own address, standing in for a client the proxy did
    /// not name (no forwarding entry, `for=unknown`, an obfuscated `for=_hidden`). It serves
    /// per-IP limits (one bucket for all such clients) and logs, but it is not the client's:
    /// a check of which network the client is in must not accept it. `false` from
    /// [`new`](Self::new).
    pub client_hidden_by_proxy: bool,
}

impl RequestContext {
    /// The context of one request whose `client_ip`, if any, is the client's own.
    pub fn new(request_id: RequestId, client_ip: Option<IpAddr>) -> Self {
        Self {
            request_id,
            client_ip,
            client_hidden_by_proxy: false,
        }
    }

    /// The context in these request extensions, if a layer put one there.
    pub fn of(extensions: &http::Extensions) -> Option<&Self> {
        extensions.get::<Self>()
    }

    /// The client's address as the layers of the suite read it: from the context `Hardening`
    /// put in these extensions (which has followed trusted proxies), else the socket peer of
    /// axum's `ConnectInfo<SocketAddr>`, else `None`.
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    /// use axum::extract::ConnectInfo;
    /// use hardening_errors::{RequestContext, RequestId};
    ///
    /// let mut extensions = http::Extensions::new();
    /// assert_eq!(RequestContext::client_ip_of(&extensions), None);
    /// extensions.insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 4000))));
    /// assert_eq!(RequestContext::client_ip_of(&extensions), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    /// let proxied = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
    /// extensions.insert(RequestContext::new(RequestId::generate(), Some(proxied)));
    /// assert_eq!(RequestContext::client_ip_of(&extensions), Some(proxied));
    /// ```
    pub fn client_ip_of(extensions: &http::Extensions) -> Option<IpAddr> {
        match Self::of(extensions) {
            Some(context) => context.client_ip,
            None => extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|axum::extract::ConnectInfo(addr)| addr.ip()),
        }
    }

    /// The request id and client address a layer refusing the request answers and reports
    /// under: the id a layer further out gave it (`Hardening`, [`ProblemLayer`](crate::ProblemLayer)),
    /// else a new one, and the address [`client_ip_of`](Self::client_ip_of) finds.
    ///
    /// ```
    /// use hardening_errors::{RequestContext, RequestId};
    ///
    /// let mut extensions = http::Extensions::new();
    /// let given = RequestId::generate();
    /// extensions.insert(RequestContext::new(given, None));
    /// assert_eq!(RequestContext::for_refusal(&extensions), (given, None));
    /// ```
    #[cold]
    pub fn for_refusal(extensions: &http::Extensions) -> (RequestId, Option<IpAddr>) {
        let request_id = RequestId::from_extensions(extensions).unwrap_or_else(RequestId::generate);
        (request_id, Self::client_ip_of(extensions))
    }
}

impl RequestId {
    /// The request id a layer put in these extensions: from a [`RequestContext`]
    /// (`Hardening`), else a bare `RequestId` ([`ProblemLayer`](crate::ProblemLayer) alone).
    pub fn from_extensions(extensions: &http::Extensions) -> Option<Self> {
        match RequestContext::of(extensions) {
            Some(context) => Some(context.request_id),
            None => extensions.get::<Self>().copied(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match RequestId::from_extensions(&parts.extensions) {
            Some(id) => Ok(id),
            None => {
                tracing::error!(
                    target: crate::LOG_TARGET,
                    "the RequestId extractor needs ProblemLayer or Hardening around the router"
                );
                Err(crate::Error::internal(MissingLayer).into_response())
            }
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(RequestId::from_extensions(&parts.extensions))
    }
}

/// The error an extractor reports when the layer it reads from is missing.
#[derive(Debug, thiserror::Error)]
#[error("RequestId extractor used without ProblemLayer or Hardening around the router")]
struct MissingLayer;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_uuid_v7_and_distinct() {
        let a = RequestId::generate();
        let b = RequestId::generate();
        assert_ne!(a, b);
        let s = a.as_str();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "7", "version nibble in {s}");
        assert!(
            matches!(&s[19..20], "8" | "9" | "a" | "b"),
            "variant in {s}"
        );
        assert_eq!(RequestId::parse(s), Ok(a));
        let dashes: Vec<usize> = s.match_indices('-').map(|(i, _)| i).collect();
        assert_eq!(dashes, [8, 13, 18, 23], "8-4-4-4-12 in {s}");
        // The first 48 bits are the Unix time in milliseconds.
        let millis = u64::from_str_radix(&s[..13].replace('-', ""), 16).unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(now.abs_diff(millis) < 10_000, "{millis} vs {now}");
    }

    #[test]
    fn generated_ids_have_74_random_bits() {
        // Bits 0-61 (after the variant) and 64-75 (after the version), RFC 9562 §5.7.
        const RANDOM: u128 = (0x0fff << 64) | 0x3fff_ffff_ffff_ffff;
        let (mut ones, mut zeros) = (0u128, 0u128);
        for _ in 0..256 {
            let id = RequestId::generate();
            let value = u128::from_str_radix(&id.as_str().replace('-', ""), 16).unwrap();
            assert_eq!(value >> 76 & 0xf, 7, "version of {id}");
            assert_eq!(value >> 62 & 0b11, 0b10, "variant of {id}");
            ones |= value & RANDOM;
            zeros |= !value & RANDOM;
        }
        // A fair bit is the same in 256 ids with probability 2^-255.
        assert_eq!(ones, RANDOM, "bits never 1: {:#x}", RANDOM & !ones);
        assert_eq!(zeros, RANDOM, "bits never 0: {:#x}", RANDOM & !zeros);
    }

    #[test]
    fn the_time_counts_from_a_fresh_anchor_only() {
        // Counts as nanoseconds here, for round numbers.
        let same = |a: u64, b: u64| b - a;
        let anchor = (1_000, 1_700_000_000_000_000_000);
        assert_eq!(from_anchor((0, 0), 5, same), None, "no anchor yet");
        assert_eq!(
            from_anchor(anchor, 999, same),
            None,
            "count behind the anchor"
        );
        assert_eq!(from_anchor(anchor, 1_000, same), Some(anchor.1));
        assert_eq!(
            from_anchor(anchor, 1_000 + 999_999_999, same),
            Some(anchor.1 + 999_999_999)
        );
        assert_eq!(
            from_anchor(anchor, 1_000 + ANCHOR_NANOS, same),
            None,
            "a second old: read the wall clock again"
        );
    }

    #[test]
    fn the_anchored_time_is_the_wall_clock_time() {
        let wall = || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64
        };
        // Twice: the first read sets the anchor, the second counts from it.
        for _ in 0..2 {
            let before = wall();
            let millis = unix_millis();
            let after = wall();
            // A few milliseconds either side for the TSC's calibration (parts per million).
            assert!(
                before.saturating_sub(5) <= millis && millis <= after + 5,
                "{before} <= {millis} <= {after}"
            );
        }
    }

    #[test]
    fn hex_digits_are_lower_case_hex() {
        // Every digit in every position, the edges, and a spread of others.
        let mut cases: Vec<u32> = (0..16u32)
            .flat_map(|d| (0..8).map(move |at| d << (4 * at)))
            .chain([
                0,
                u32::MAX,
                0x0123_4567,
                0x89ab_cdef,
                0x9999_9999,
                0xaaaa_aaaa,
            ])
            .collect();
        let mut x = 1u32;
        for _ in 0..10_000 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            cases.push(x);
        }
        for x in cases {
            assert_eq!(hex_digits(x), format!("{x:08x}").as_bytes(), "{x:#x}");
        }
    }

    #[test]
    fn header_values_carry_the_ids_text() {
        // Longer than one buffer's worth, all alive at once, of every length.
        let ids: Vec<RequestId> = (0..100)
            .map(|_| RequestId::generate())
            .chain((1..=MAX_LEN).map(|n| RequestId::parse("a".repeat(n)).unwrap()))
            .chain((0..100).map(|_| RequestId::generate()))
            .collect();
        let values: Vec<http::HeaderValue> = ids.iter().map(RequestId::to_header_value).collect();
        for (id, value) in ids.iter().zip(&values) {
            assert_eq!(value, id.as_str());
            assert!(!value.is_sensitive());
        }
        // A value outlives a thousand later ones, whose buffers are used up and used again.
        let kept = RequestId::generate();
        let kept_value = kept.to_header_value();
        for _ in 0..1_000 {
            let id = RequestId::generate();
            assert_eq!(id.to_header_value(), id.as_str());
        }
        assert_eq!(kept_value, kept.as_str());
        drop(values);
        assert_eq!(kept_value, kept.as_str());
    }

    #[test]
    fn header_values_share_a_buffer_used_again() {
        // On a thread of its own, so that no other test's values share its buffer.
        std::thread::spawn(|| {
            let address = |value: &http::HeaderValue| value.as_bytes().as_ptr() as usize;
            let first = RequestId::generate().to_header_value();
            let second = RequestId::generate().to_header_value();
            assert_eq!(
                address(&second),
                address(&first) + 36,
                "cut one after the other"
            );
            drop((first, second));
            // Once every value from it is gone, the buffer serves again from its start.
            let mut seen = std::collections::HashSet::new();
            for _ in 0..200 {
                let value = RequestId::generate().to_header_value();
                if !seen.insert(address(&value)) {
                    return;
                }
            }
            panic!("200 values, each at an address of its own: no buffer was used again");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn parse_refuses_bad_ids() {
        assert_eq!(RequestId::parse(""), Err(InvalidRequestId::Empty));
        assert_eq!(
            RequestId::parse("a".repeat(65)),
            Err(InvalidRequestId::TooLong)
        );
        assert!(RequestId::parse("a".repeat(64)).is_ok());
        for bad in ["a b", "a\r\nb", "<script>", "é", "a/b", "a\"b"] {
            assert_eq!(
                RequestId::parse(bad),
                Err(InvalidRequestId::BadCharacter),
                "{bad:?}"
            );
        }
        assert!(RequestId::parse("trace-1.2:3_x").is_ok());
    }

    #[test]
    fn serde_round_trip_validates() {
        let id = RequestId::parse("abc").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"abc\"");
        assert!(serde_json::from_str::<RequestId>("\"a b\"").is_err());
    }
}
