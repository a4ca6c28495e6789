//! `Content-Length`, written together with the security headers.
//!
//! The header maps built from a [`HeaderSet`](crate::HeaderSet)'s template have no spare
//! room, and axum inserts `Content-Length` after every layer: an insert then reallocates
//! every entry of the map. Writing the header into a slot of the template costs nothing
//! extra.

use axum::body::HttpBody;
use http::header::CONTENT_LENGTH;
use http::{HeaderValue, Method, Response, StatusCode};

/// Whether a response to this request method may carry a `Content-Length` taken from its
/// body's size: not for `HEAD` (whose body may be left empty) or `CONNECT`.
pub fn length_by_method(method: &Method) -> bool {
    method != Method::HEAD && method != Method::CONNECT
}

/// The `Content-Length` axum writes into every response after the layers, and hyper on the
/// wire when it is absent: the body's exact size. `None` where hyper would send none (1xx,
/// 204, 304, and where [`length_by_method`] says no), where the size is not known, or where
/// the service set the header itself.
///
/// ```
/// use hardening_headers::content_length;
/// let res = http::Response::new(axum::body::Body::from("hello"));
/// assert_eq!(content_length(true, &res).unwrap(), "5");
/// assert_eq!(content_length(false, &res), None); // a HEAD request
/// ```
pub fn content_length<B: HttpBody>(by_method: bool, response: &Response<B>) -> Option<HeaderValue> {
    let status = response.status();
    if !by_method
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || response.headers().contains_key(CONTENT_LENGTH)
    {
        return None;
    }
    response
        .body()
        .size_hint()
        .exact()
        .map(hardening_errors::decimal_header_value)
}
