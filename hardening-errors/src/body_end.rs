//! Where a server stops polling a response body, for a layer that acts when the body ends.

use bytes::Buf;
use http::{HeaderMap, Method, StatusCode, Version};
use http_body::{Body, Frame};

use crate::declared_content_length;

/// Where a server (hyper's HTTP/1 and HTTP/2) stops polling a response body, for a layer
/// that acts when the body ends (settles a cost, writes an access-log event): hyper drops
/// the body there without polling it on to its final `None`.
///
/// It never polls a body the response cannot carry (`HEAD`, 204, 304, a tunnel's: a 101 or
/// a 2xx to `CONNECT`), one that says it has ended, or one of a declared length of 0. Else
/// it stops after the frame past which the body says it has ended, after trailers (always
/// the last frame), and, over HTTP/1, once a declared length is written: the body's exact
/// size, else the `Content-Length` the service set (a proxied stream's, a file's). HTTP/2
/// reads on to the end.
///
/// ```
/// use bytes::Bytes;
/// use hardening_errors::BodyEnd;
/// use http::{HeaderMap, Method, StatusCode, Version};
/// use http_body::Frame;
///
/// let (body, headers) = (http_body_util::Full::new(Bytes::from("hello")), HeaderMap::new());
/// let end = |method| BodyEnd::new(method, Version::HTTP_11, StatusCode::OK, &headers, &body);
/// assert!(!end(&Method::HEAD).is_polled());
/// let mut end = end(&Method::GET);
/// assert!(end.is_polled());
/// assert!(!end.is_last(&Frame::data(Bytes::from("hel")), false));
/// assert!(end.is_last(&Frame::data(Bytes::from("lo")), false), "its 5 bytes written");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct BodyEnd {
    polled: bool,
    /// Bytes of a declared length (HTTP/1) not polled yet.
    declared_left: Option<u64>,
}

impl BodyEnd {
    /// For the body of a response (`status`, `headers`) to a request of `method` and
    /// `version`, before its first frame.
    pub fn new<B: Body>(
        method: &Method,
        version: Version,
        status: StatusCode,
        headers: &HeaderMap,
        body: &B,
    ) -> Self {
        let stops_at_length = matches!(
            version,
            Version::HTTP_09 | Version::HTTP_10 | Version::HTTP_11
        );
        let declared_left = stops_at_length
            .then(|| {
                body.size_hint()
                    .exact()
                    .or_else(|| declared_content_length(headers).ok().flatten())
            })
            .flatten();
        let tunnel = status == StatusCode::SWITCHING_PROTOCOLS
            || (method == Method::CONNECT && status.is_success());
        let polled = !(body.is_end_stream()
            || declared_left == Some(0)
            || method == Method::HEAD
            || tunnel
            || matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED));
        Self {
            polled,
            declared_left,
        }
    }

    /// Whether the server polls the body at all: if not, it is dropped unpolled, and has
    /// ended with the response's head.
    pub fn is_polled(&self) -> bool {
        self.polled
    }

    /// Whether `frame`, just polled from a body that now says whether it has `ended`, is the
    /// last frame the server polls.
    pub fn is_last<D: Buf>(&mut self, frame: &Frame<D>, ended: bool) -> bool {
        if let (Some(left), Some(data)) = (self.declared_left.as_mut(), frame.data_ref()) {
            *left = left.saturating_sub(data.remaining() as u64);
        }
        ended || frame.is_trailers() || self.declared_left == Some(0)
    }
}
