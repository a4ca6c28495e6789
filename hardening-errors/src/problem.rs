//! The RFC 9457 problem body.

use std::borrow::Cow;

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{
    CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG,
    LAST_MODIFIED, TRANSFER_ENCODING, WWW_AUTHENTICATE,
};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{PROBLEM_JSON, RequestId, types};

/// Member names RFC 9457 or this crate define; [`Problem::with_extension`] refuses them.
const RESERVED: &[&str] = &[
    "type",
    "title",
    "status",
    "detail",
    "instance",
    "request_id",
    "errors",
    "violated-policies",
];

/// An RFC 9457 problem: the body of every error response in the hardening suite.
///
/// Build one from a status, add what the client needs, and return it from a handler. The
/// response is `application/problem+json` with `cache-control: no-store`; the
/// [`ProblemLayer`](crate::ProblemLayer) adds the `request_id`.
///
/// ```
/// use axum::response::IntoResponse;
/// use hardening_errors::{FieldError, Problem};
/// use http::StatusCode;
///
/// let problem = Problem::new(StatusCode::CONFLICT)
///     .with_detail("an account with this email already exists")
///     .with_extension("account_state", "active");
/// let res = problem.into_response();
/// assert_eq!(res.status(), StatusCode::CONFLICT);
/// assert_eq!(res.headers()["content-type"], "application/problem+json");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type", default = "about_blank")]
    type_uri: Cow<'static, str>,
    title: Cow<'static, str>,
    status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    detail: Option<Cow<'static, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    instance: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request_id: Option<RequestId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError>,
    #[serde(
        rename = "violated-policies",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    violated_policies: Vec<String>,
    #[serde(flatten)]
    extensions: Map<String, Value>,
    /// Headers the response carries besides the body (`Retry-After`, `WWW-Authenticate`, …).
    #[serde(skip)]
    headers: HeaderMap,
    /// The `security.event` its rejection is reported as, if not its status's
    /// ([`with_security_event`](Self::with_security_event)).
    #[serde(skip)]
    security_event: Option<&'static str>,
}

fn about_blank() -> Cow<'static, str> {
    Cow::Borrowed(types::ABOUT_BLANK)
}

/// One field-level error of a validation problem.
///
/// `pointer` is a JSON Pointer fragment (RFC 6901) to the field, such as `#/items/0/sku`.
/// `Valid` builds it from the Rust field names, not serde's renames (`rename_all`), so a
/// renamed field's pointer does not name its JSON member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Where the bad value is, as `#/path/to/field`.
    pub pointer: String,
    /// Which rule it broke, in words a client developer can act on.
    pub detail: String,
}

/// Longest pointer and detail (in bytes) of a field error in a validation problem.
pub(crate) const MAX_FIELD_TEXT: usize = 256;

impl FieldError {
    /// A field error for the pointer (`#/…`) and detail given.
    pub fn new(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            detail: detail.into(),
        }
    }

    /// This error as a validation problem lists it, each part at most [`MAX_FIELD_TEXT`]
    /// bytes: a longer pointer names the ancestor whose pointer fits (whole reference
    /// tokens), a longer detail (a rule's message quoting a long value) is cut and ends `…`.
    pub(crate) fn bounded(mut self) -> Self {
        if self.pointer.len() > MAX_FIELD_TEXT {
            let end = char_floor(&self.pointer, MAX_FIELD_TEXT);
            let ancestor = self.pointer[..end].rfind('/').filter(|&at| at > 0);
            self.pointer.truncate(ancestor.unwrap_or(end));
        }
        if self.detail.len() > MAX_FIELD_TEXT {
            let ellipsis = '…';
            let end = char_floor(&self.detail, MAX_FIELD_TEXT - ellipsis.len_utf8());
            self.detail.truncate(end);
            self.detail.push(ellipsis);
        }
        self
    }
}

/// The largest character boundary of `s` at or before `at`.
fn char_floor(s: &str, at: usize) -> usize {
    (0..=at.min(s.len()))
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0)
}

impl Problem {
    /// A problem of type `about:blank` whose title is the status's reason phrase.
    ///
    /// A 401 goes out with `WWW-Authenticate: Bearer` ([`DEFAULT_CHALLENGE`]) unless it
    /// names its own challenge with [`with_header`](Self::with_header), as RFC 9110 §15.5.2
    /// requires of every 401:
    ///
    /// ```
    /// use axum::response::IntoResponse;
    /// use hardening_errors::Problem;
    /// use http::{HeaderValue, StatusCode, header::WWW_AUTHENTICATE};
    ///
    /// let res = Problem::new(StatusCode::UNAUTHORIZED).into_response();
    /// assert_eq!(res.headers()[WWW_AUTHENTICATE], "Bearer");
    /// let res = Problem::new(StatusCode::UNAUTHORIZED)
    ///     .with_header(WWW_AUTHENTICATE, HeaderValue::from_static(r#"Basic realm="admin""#))
    ///     .into_response();
    /// assert_eq!(res.headers()[WWW_AUTHENTICATE], r#"Basic realm="admin""#);
    /// ```
    pub fn new(status: StatusCode) -> Self {
        Self {
            type_uri: about_blank(),
            title: Cow::Borrowed(status.canonical_reason().unwrap_or("Error")),
            status: status.as_u16(),
            detail: None,
            instance: None,
            request_id: None,
            errors: Vec::new(),
            violated_policies: Vec::new(),
            extensions: Map::new(),
            headers: HeaderMap::new(),
            security_event: None,
        }
    }

    /// The 400 for a request whose `Host` this service does not answer for: not on the
    /// allowlist, or none a plain-HTTP request may be redirected to.
    ///
    /// ```
    /// let problem = hardening_errors::Problem::unknown_host();
    /// assert_eq!(problem.status(), 400);
    /// assert_eq!(problem.detail(), Some("this service does not answer for the requested host"));
    /// ```
    pub fn unknown_host() -> Self {
        Self::new(StatusCode::BAD_REQUEST)
            .with_detail("this service does not answer for the requested host")
    }

    /// Sets the problem type URI and its title (see [`types`](crate::types)).
    #[must_use]
    pub fn with_type(
        mut self,
        type_uri: impl Into<Cow<'static, str>>,
        title: impl Into<Cow<'static, str>>,
    ) -> Self {
        self.type_uri = type_uri.into();
        self.title = title.into();
        self
    }

    /// Sets the human-readable explanation of this occurrence.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<Cow<'static, str>>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Sets the URI reference that identifies this occurrence.
    #[must_use]
    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// Sets the request id (the [`ProblemLayer`](crate::ProblemLayer) does this for you).
    #[must_use]
    pub fn with_request_id(mut self, id: RequestId) -> Self {
        self.request_id = Some(id);
        self
    }

    /// Adds field-level errors.
    #[must_use]
    pub fn with_errors(mut self, errors: impl IntoIterator<Item = FieldError>) -> Self {
        self.errors.extend(errors);
        self
    }

    /// Adds the name of a rate-limit or budget policy the request violated.
    #[must_use]
    pub fn with_violated_policy(mut self, policy: impl Into<String>) -> Self {
        self.violated_policies.push(policy.into());
        self
    }

    /// Adds an extension member. Names RFC 9457 or this crate define (`type`, `title`,
    /// `status`, `detail`, `instance`, `request_id`, `errors`, `violated-policies`) are
    /// refused with a warning, so an extension can never overwrite them.
    #[must_use]
    pub fn with_extension(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        let name = name.into();
        if RESERVED.contains(&name.as_str()) {
            tracing::warn!(target: crate::LOG_TARGET, member = %name, "refused a problem extension with a reserved name");
        } else {
            self.extensions.insert(name, value.into());
        }
        self
    }

    /// Reports this rejection as the security event `name` (logged once with its request id
    /// and client address, and, inside `Hardening` with feature `metrics`, counted under that
    /// label), instead of the event its status stands for (`unauthenticated` for a 401,
    /// none for a 400): for a refusal the application makes on its own, such as a webhook
    /// whose signature does not verify. `Hardening` and [`ProblemLayer`](crate::ProblemLayer)
    /// report it; the name is not in the body. Keep names few and fixed, in `snake_case`
    /// (each is a metrics label value).
    ///
    /// ```
    /// use hardening_errors::{Problem, named_security_event};
    /// use http::StatusCode;
    ///
    /// let problem = Problem::new(StatusCode::UNAUTHORIZED)
    ///     .with_detail("the webhook's signature does not verify")
    ///     .with_security_event("webhook_signature_invalid");
    /// let res: http::Response<Vec<u8>> = problem.into_http_response();
    /// assert_eq!(named_security_event(&res), Some("webhook_signature_invalid"));
    /// assert!(!String::from_utf8_lossy(res.body()).contains("webhook_signature_invalid"));
    /// ```
    #[must_use]
    pub fn with_security_event(mut self, name: &'static str) -> Self {
        self.security_event = Some(name);
        self
    }

    /// The security event set by [`with_security_event`](Self::with_security_event), if any.
    pub fn security_event(&self) -> Option<&'static str> {
        self.security_event
    }

    /// Adds a response header, such as `Retry-After`.
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// This problem answered with `status` instead of its own (a handler's
    /// `(StatusCode::CONFLICT, Error::NotFound)`): the `status` member must be the response's
    /// (RFC 9457 §3.1.2), and an `about:blank` problem's title is that status's phrase
    /// (§4.2.1). The detail and the rest are kept.
    pub(crate) fn answered_with(mut self, status: StatusCode) -> Self {
        if self.status != status.as_u16() {
            self.status = status.as_u16();
            if self.type_uri == types::ABOUT_BLANK {
                self.title = Cow::Borrowed(status.canonical_reason().unwrap_or("Error"));
            }
        }
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The problem type URI.
    pub fn type_uri(&self) -> &str {
        &self.type_uri
    }

    /// The short summary of the problem type.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The explanation of this occurrence, if any.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// The request id, if set.
    pub fn request_id(&self) -> Option<RequestId> {
        self.request_id
    }

    /// The field-level errors.
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    /// The violated policies.
    pub fn violated_policies(&self) -> &[String] {
        &self.violated_policies
    }

    /// An extension member, if present.
    pub fn extension(&self, name: &str) -> Option<&Value> {
        self.extensions.get(name)
    }

    /// The headers the response will carry besides `content-type` and `cache-control` (and,
    /// on a 401 that names no challenge, `WWW-Authenticate: Bearer`: [`DEFAULT_CHALLENGE`]).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The JSON body.
    pub fn to_json(&self) -> Bytes {
        // Serializing plain strings, numbers and `Value`s cannot fail; if it ever did, the
        // client still gets a well-formed problem.
        serde_json::to_vec(self)
            .map(Bytes::from)
            .unwrap_or_else(|_| {
                Bytes::from_static(
                    br#"{"type":"about:blank","title":"Internal Server Error","status":500}"#,
                )
            })
    }

    /// Converts into an `http::Response` for plain tower services.
    ///
    /// ```
    /// use hardening_errors::Problem;
    /// use http::StatusCode;
    ///
    /// let res: http::Response<Vec<u8>> = Problem::new(StatusCode::NOT_FOUND).into_http_response();
    /// assert_eq!(res.status(), 404);
    /// assert_eq!(res.headers()["content-type"], "application/problem+json");
    /// assert!(String::from_utf8_lossy(res.body()).contains(r#""title":"Not Found""#));
    /// ```
    pub fn into_http_response<B: From<Bytes>>(self) -> http::Response<B> {
        let mut head = http::Response::new(());
        self.write_head(head.headers_mut());
        *head.status_mut() = self.status();
        let body = B::from(self.to_json());
        head.extensions_mut().insert(self);
        let (parts, ()) = head.into_parts();
        http::Response::from_parts(parts, body)
    }

    /// Writes the problem's own headers plus `content-type` and `cache-control` into `headers`
    /// (and, for a 401 whose problem and response name no challenge, the
    /// [`DEFAULT_CHALLENGE`]), dropping the ones a problem body makes wrong: those about the replaced body's bytes
    /// ([`drop_byte_headers`]), `Last-Modified`, and every other `content-*` header
    /// (`Content-Language`, `Content-Location`, `Content-Disposition`, …) except the
    /// security policies. A 416 keeps its `Content-Range: bytes */<length>`, which gives the
    /// representation's length (RFC 9110 §15.5.17), not the body's.
    pub(crate) fn write_head(&self, headers: &mut HeaderMap) {
        drop_byte_headers(headers);
        headers.remove(LAST_MODIFIED);
        if self.status() != StatusCode::RANGE_NOT_SATISFIABLE {
            headers.remove(CONTENT_RANGE);
        }
        drop_content_headers(headers);
        // The problem's headers replace the response's own of the same name, every value
        // kept (two `WWW-Authenticate` challenges are two fields).
        for name in self.headers.keys() {
            headers.remove(name);
        }
        for (name, value) in &self.headers {
            headers.append(name, value.clone());
        }
        challenge_a_401(self.status(), headers);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// The challenge of a 401 that names none: `Bearer` (RFC 6750 §3), the scheme
/// [`Error::Unauthenticated`](crate::Error::Unauthenticated) and `hardening-auth`'s
/// `Authenticated` answer with. RFC 9110 §15.5.2 requires at least one challenge on every 401,
/// and a response that does not know the scheme can only name the suite's own: `Basic` would
/// make browsers show their login dialog, and a scheme of this crate's invention no client
/// would know. A service that authenticates otherwise names its challenge
/// ([`Error::unauthenticated_with`](crate::Error::unauthenticated_with), or a
/// `WWW-Authenticate` of its own on the response, which is kept).
pub const DEFAULT_CHALLENGE: &str = "Bearer";

/// Gives a 401 without a `WWW-Authenticate` field the [`DEFAULT_CHALLENGE`] (RFC 9110
/// §15.5.2); any other response, or a 401 that names its challenges, is left as it is.
///
/// Problems get it when they are written; a layer that passes a handler's own 401 on (an
/// HTML sign-in page kept by `keep_html_error_pages`) calls it on that response's headers.
///
/// ```
/// use hardening_errors::challenge_a_401;
/// use http::{HeaderMap, StatusCode, header::WWW_AUTHENTICATE};
///
/// let mut headers = HeaderMap::new();
/// challenge_a_401(StatusCode::UNAUTHORIZED, &mut headers);
/// assert_eq!(headers[WWW_AUTHENTICATE], "Bearer");
///
/// let mut headers = HeaderMap::new();
/// headers.insert(WWW_AUTHENTICATE, "Basic realm=\"admin\"".parse().unwrap());
/// challenge_a_401(StatusCode::UNAUTHORIZED, &mut headers);
/// assert_eq!(headers[WWW_AUTHENTICATE], "Basic realm=\"admin\"");
///
/// let mut headers = HeaderMap::new();
/// challenge_a_401(StatusCode::FORBIDDEN, &mut headers);
/// assert!(headers.is_empty());
/// ```
pub fn challenge_a_401(status: StatusCode, headers: &mut HeaderMap) {
    if status == StatusCode::UNAUTHORIZED && !headers.contains_key(WWW_AUTHENTICATE) {
        headers.insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(DEFAULT_CHALLENGE),
        );
    }
}

/// Drops the headers that describe a body's exact bytes (its length, transfer and content
/// coding, digests, strong validator): wrong for any other body, so they go whenever a body
/// is replaced or rewritten.
pub(crate) fn drop_byte_headers(headers: &mut HeaderMap) {
    for name in [CONTENT_LENGTH, CONTENT_ENCODING, TRANSFER_ENCODING, ETAG] {
        headers.remove(name);
    }
    for name in ["content-digest", "repr-digest", "digest", "content-md5"] {
        headers.remove(name);
    }
}

/// Drops every `content-*` header but `Content-Type`, `Content-Range` (the caller decides)
/// and the security policies (`Content-Security-Policy`, `…-Report-Only`): what is left of
/// them described the replaced body.
fn drop_content_headers(headers: &mut HeaderMap) {
    let describes_the_body = |name: &HeaderName| {
        let name = name.as_str();
        name.starts_with("content-")
            && name != "content-type"
            && name != "content-range"
            && !name.starts_with("content-security-policy")
    };
    remove_headers_where(headers, describes_the_body);
}

/// Removes every header whose name `drop` picks (all its values). Allocates only when there
/// is one to remove: a `HeaderMap` cannot remove while it is iterated.
pub(crate) fn remove_headers_where(headers: &mut HeaderMap, drop: impl Fn(&HeaderName) -> bool) {
    if !headers.keys().any(&drop) {
        return;
    }
    let dropped: Vec<HeaderName> = headers.keys().filter(|n| drop(n)).cloned().collect();
    for name in dropped {
        headers.remove(name);
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        self.into_http_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_rfc_9457_members() {
        let id = RequestId::parse("r1").unwrap();
        let p = Problem::new(StatusCode::UNPROCESSABLE_ENTITY)
            .with_type(types::VALIDATION_ERROR, "Validation failed")
            .with_detail("2 fields are invalid")
            .with_request_id(id)
            .with_errors([FieldError::new("#/email", "must be an email address")])
            .with_violated_policy("per-ip")
            .with_extension("balance", 30)
            .with_extension("status", 200);
        let v: Value = serde_json::from_slice(&p.to_json()).unwrap();
        assert_eq!(v["type"], types::VALIDATION_ERROR);
        assert_eq!(v["title"], "Validation failed");
        assert_eq!(v["status"], 422, "an extension must not overwrite status");
        assert_eq!(v["detail"], "2 fields are invalid");
        assert_eq!(v["request_id"], "r1");
        assert_eq!(v["errors"][0]["pointer"], "#/email");
        assert_eq!(v["violated-policies"][0], "per-ip");
        assert_eq!(v["balance"], 30);
        let back: Problem = serde_json::from_value(v).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn response_head() {
        let res = Problem::new(StatusCode::TOO_MANY_REQUESTS)
            .with_header(http::header::RETRY_AFTER, HeaderValue::from_static("7"))
            .into_response();
        assert_eq!(res.status(), 429);
        assert_eq!(res.headers()[CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(res.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(res.headers()[http::header::RETRY_AFTER], "7");
        assert!(res.extensions().get::<Problem>().is_some());
    }

    #[test]
    fn repeated_headers_are_all_sent() {
        let www = http::header::WWW_AUTHENTICATE;
        let problem = Problem::new(StatusCode::UNAUTHORIZED)
            .with_header(
                www.clone(),
                HeaderValue::from_static("Bearer realm=\"api\""),
            )
            .with_header(www.clone(), HeaderValue::from_static("Basic realm=\"api\""));
        let mut headers = HeaderMap::new();
        headers.insert(www.clone(), HeaderValue::from_static("Digest stale"));
        problem.write_head(&mut headers);
        let challenges: Vec<_> = headers.get_all(&www).iter().collect();
        assert_eq!(
            challenges,
            ["Bearer realm=\"api\"", "Basic realm=\"api\""],
            "both challenges, replacing the response's own"
        );
        let res = problem.into_response();
        assert_eq!(res.headers().get_all(&www).iter().count(), 2);
    }

    /// RFC 9110 §15.5.2: a 401 MUST carry a `WWW-Authenticate` challenge. `Problem::new(401)`
    /// (a handler's own, or a bare `StatusCode::UNAUTHORIZED` mapped into a problem) sent
    /// none: a client could not tell how to authenticate. Such a 401 says `Bearer`, the
    /// suite's default scheme; a challenge the problem or the response names is kept.
    #[test]
    fn a_401_always_challenges() {
        let www = http::header::WWW_AUTHENTICATE;
        let res = Problem::new(StatusCode::UNAUTHORIZED).into_response();
        assert_eq!(
            res.headers().get_all(&www).iter().collect::<Vec<_>>(),
            ["Bearer"]
        );
        // The problem's own challenge replaces the default, all of them kept.
        let res = Problem::new(StatusCode::UNAUTHORIZED)
            .with_header(
                www.clone(),
                HeaderValue::from_static("Basic realm=\"admin\""),
            )
            .into_response();
        assert_eq!(
            res.headers().get_all(&www).iter().collect::<Vec<_>>(),
            ["Basic realm=\"admin\""]
        );
        // A response that names its own challenge (a handler's mapped 401) keeps it.
        let mut headers = HeaderMap::new();
        headers.insert(www.clone(), HeaderValue::from_static("Negotiate"));
        Problem::new(StatusCode::UNAUTHORIZED).write_head(&mut headers);
        assert_eq!(
            headers.get_all(&www).iter().collect::<Vec<_>>(),
            ["Negotiate"]
        );
        // Another status gets none.
        let res = Problem::new(StatusCode::FORBIDDEN).into_response();
        assert!(res.headers().get(&www).is_none());
        // A problem of another status answered as a 401 challenges too.
        let mut headers = HeaderMap::new();
        Problem::new(StatusCode::NOT_FOUND)
            .answered_with(StatusCode::UNAUTHORIZED)
            .write_head(&mut headers);
        assert_eq!(headers[&www], "Bearer");
    }
}
