//! The error classes every service needs.

use std::error::Error as StdError;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use crate::{FieldError, Problem, RequestId, redact_error_chain, types};

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// An error a handler can return; each variant answers as a [`Problem`].
///
/// ```
/// use axum::response::IntoResponse;
/// use hardening_errors::Error;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("connection to db-7 refused (password=hunter2)")]
/// struct DbDown;
///
/// let res = Error::internal(DbDown).into_response();
/// assert_eq!(res.status(), 500);
/// // The client learns nothing about the database; the log gets the whole chain.
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request is malformed; the detail says how.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The request's values broke validation rules (422 with field errors: the first 100,
    /// each pointer and detail at most 256 bytes).
    #[error("validation failed on {} field(s)", .0.len())]
    Validation(Vec<FieldError>),
    /// No valid credentials (401 with `WWW-Authenticate: Bearer`; another challenge with
    /// [`unauthenticated_with`](Self::unauthenticated_with)).
    #[error("unauthenticated")]
    Unauthenticated,
    /// No valid credentials, answered 401 with this `WWW-Authenticate` challenge, for a
    /// service that does not authenticate by bearer token (see
    /// [`unauthenticated_with`](Self::unauthenticated_with)).
    #[error("unauthenticated")]
    UnauthenticatedWith(HeaderValue),
    /// Authenticated but not allowed (403).
    #[error("forbidden")]
    Forbidden,
    /// Nothing here, or nothing here *for you* (404).
    #[error("not found")]
    NotFound,
    /// The request conflicts with the current state (409); the detail says how.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The body is larger than allowed (413).
    #[error("payload too large")]
    PayloadTooLarge,
    /// A rate limit or budget is spent (429 with `Retry-After`).
    #[error("too many requests")]
    TooManyRequests {
        /// How long the client should wait.
        retry_after: Duration,
        /// The names of the violated policies.
        policies: Vec<String>,
    },
    /// A dependency is down or the service is shedding load (503).
    #[error("service unavailable")]
    Unavailable,
    /// [`Unavailable`](Self::Unavailable), for about this long: a 503 with `Retry-After` in
    /// whole seconds, rounded up, at least 1 (`Retry-After: 0` would invite a retry storm).
    /// What a store that knows its outage's cool-down, or a hasher with no room, answers.
    ///
    /// ```
    /// use std::time::Duration;
    /// use hardening_errors::Error;
    ///
    /// let problem = Error::UnavailableFor(Duration::from_millis(1500)).to_problem();
    /// assert_eq!(problem.status(), 503);
    /// assert_eq!(problem.headers()["retry-after"], "2");
    /// let soon = Error::UnavailableFor(Duration::ZERO).to_problem();
    /// assert_eq!(soon.headers()["retry-after"], "1");
    /// ```
    #[error("service unavailable")]
    UnavailableFor(Duration),
    /// The request took longer than allowed (503).
    #[error("request timed out")]
    Timeout,
    /// Something failed inside; the client gets a generic 500 and the log gets the chain.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

impl Error {
    /// Wraps any error as an internal one, keeping its source chain for the log.
    pub fn internal(err: impl Into<BoxError>) -> Self {
        Self::Internal(err.into())
    }

    /// [`Unauthenticated`](Self::Unauthenticated) with another challenge than `Bearer`: the
    /// scheme (and its parameters) a client should answer with (RFC 9110 §11.6.1), such as
    /// `Basic realm="admin"`, or `ApiKey header="x-api-key"` for a key sent in a header of
    /// its own. The problem body is the same.
    ///
    /// ```
    /// use axum::response::IntoResponse;
    /// use hardening_errors::Error;
    /// use http::HeaderValue;
    ///
    /// let challenge = HeaderValue::from_static(r#"Basic realm="admin", charset="UTF-8""#);
    /// let res = Error::unauthenticated_with(challenge).into_response();
    /// assert_eq!(res.status(), 401);
    /// assert_eq!(res.headers()["www-authenticate"], r#"Basic realm="admin", charset="UTF-8""#);
    /// ```
    pub fn unauthenticated_with(challenge: HeaderValue) -> Self {
        Self::UnauthenticatedWith(challenge)
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthenticated | Self::UnauthenticatedWith(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable | Self::UnavailableFor(_) | Self::Timeout => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem a client sees for this error (never the internal source).
    pub fn to_problem(&self) -> Problem {
        let status = self.status();
        let problem = Problem::new(status);
        match self {
            Self::BadRequest(detail) | Self::Conflict(detail) => {
                problem.with_detail(detail.clone())
            }
            Self::Validation(errors) => validation_problem(errors.iter().cloned()),
            Self::Unauthenticated => problem
                .with_detail("valid credentials are required")
                .with_header(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(crate::DEFAULT_CHALLENGE),
                ),
            Self::UnauthenticatedWith(challenge) => problem
                .with_detail("valid credentials are required")
                .with_header(header::WWW_AUTHENTICATE, challenge.clone()),
            Self::TooManyRequests {
                retry_after,
                policies,
            } => {
                let mut p = problem
                    .with_type(types::QUOTA_EXCEEDED, "Too Many Requests")
                    .with_detail("a rate limit was exceeded; retry after the Retry-After delay")
                    .with_header(header::RETRY_AFTER, crate::retry_after_value(*retry_after));
                for policy in policies {
                    p = p.with_violated_policy(policy.clone());
                }
                p
            }
            Self::Timeout => problem.with_detail("the request took too long to process"),
            Self::UnavailableFor(retry_after) => with_generic_detail(problem).with_header(
                header::RETRY_AFTER,
                crate::retry_after_value((*retry_after).max(Duration::from_secs(1))),
            ),
            _ => with_generic_detail(problem),
        }
    }
}

/// Most field errors a validation problem lists: a body of thousands of bad fields is not
/// answered with a problem many times its size.
pub(crate) const MAX_FIELD_ERRORS: usize = 100;

/// A 422 validation problem with these field errors: the first [`MAX_FIELD_ERRORS`] of them,
/// each [bounded](FieldError::bounded), the detail saying when there were more.
pub(crate) fn validation_problem(errors: impl IntoIterator<Item = FieldError>) -> Problem {
    let mut errors = errors.into_iter();
    let listed: Vec<FieldError> = errors
        .by_ref()
        .take(MAX_FIELD_ERRORS)
        .map(FieldError::bounded)
        .collect();
    let detail = match errors.next() {
        None => "one or more fields are invalid; see `errors`",
        Some(_) => "more fields are invalid than are listed; `errors` lists the first 100",
    };
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY)
        .with_type(types::VALIDATION_ERROR, "Validation failed")
        .with_detail(detail)
        .with_errors(listed)
}

/// Adds the crate's generic, non-revealing detail for the problem's status, if it has one.
pub(crate) fn with_generic_detail(problem: Problem) -> Problem {
    match generic_detail(problem.status()) {
        Some(detail) => problem.with_detail(detail),
        None => problem,
    }
}

/// A generic detail for statuses that come without one.
pub(crate) fn generic_detail(status: StatusCode) -> Option<&'static str> {
    Some(match status {
        StatusCode::BAD_REQUEST => "the request is malformed",
        StatusCode::UNAUTHORIZED => "valid credentials are required",
        StatusCode::FORBIDDEN => "you are not allowed to do this",
        StatusCode::NOT_FOUND => "no resource at this path",
        StatusCode::METHOD_NOT_ALLOWED => {
            "this method is not allowed on this path; see the Allow header"
        }
        StatusCode::REQUEST_TIMEOUT => "the request took too long",
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is larger than this service accepts",
        StatusCode::URI_TOO_LONG => "the request URI is longer than this service accepts",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "the request body's content type is not supported",
        StatusCode::TOO_MANY_REQUESTS => "a rate limit was exceeded; retry later",
        StatusCode::INTERNAL_SERVER_ERROR => {
            "an internal error occurred; quote the request id to support"
        }
        StatusCode::SERVICE_UNAVAILABLE => "the service is unavailable; retry later",
        StatusCode::GATEWAY_TIMEOUT => "an upstream service took too long to answer",
        _ => return None,
    })
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let problem = self.to_problem();
        let mut res = problem.into_response();
        if let Self::Internal(source) = self {
            res.extensions_mut().insert(InternalReport::new(source));
        }
        res
    }
}

/// The source of an internal error, travelling in the response extensions to the layer that
/// knows the request id. Logged exactly once: by the layer, or on drop if no layer took it.
#[derive(Clone)]
pub(crate) struct InternalReport(Arc<ReportInner>);

struct ReportInner {
    source: BoxError,
    logged: AtomicBool,
}

impl InternalReport {
    fn new(source: BoxError) -> Self {
        Self(Arc::new(ReportInner {
            source,
            logged: AtomicBool::new(false),
        }))
    }

    /// Logs the source chain at error level with the request id.
    pub(crate) fn log(&self, request_id: Option<RequestId>) {
        if self.0.logged.swap(true, Ordering::AcqRel) {
            return;
        }
        let chain = redact_error_chain(&*self.0.source);
        match request_id {
            Some(id) => {
                tracing::error!(target: crate::LOG_TARGET, request_id = %id, error = %chain, "internal error")
            }
            None => tracing::error!(target: crate::LOG_TARGET, error = %chain, "internal error"),
        }
    }
}

impl Drop for ReportInner {
    fn drop(&mut self) {
        if !*self.logged.get_mut() {
            let chain = redact_error_chain(&*self.source);
            tracing::error!(target: crate::LOG_TARGET, error = %chain, "internal error (no ProblemLayer to attach a request id)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("query failed")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("SELECT * FROM users WHERE token='s3cr3t'")]
    struct Inner;

    /// A retry-after at the top of the range saturates instead of overflowing (a panic in
    /// debug builds, `Retry-After: 0` in release ones).
    #[test]
    fn a_huge_retry_after_saturates() {
        let problem = Error::TooManyRequests {
            retry_after: std::time::Duration::MAX,
            policies: vec!["p".into()],
        }
        .to_problem();
        assert_eq!(
            problem.headers()[header::RETRY_AFTER],
            u64::MAX.to_string().as_str()
        );
    }

    /// At most `MAX_FIELD_ERRORS` errors, in the order given, each bounded; the detail
    /// names the number it lists.
    #[test]
    fn a_validation_problem_lists_at_most_a_hundred_errors() {
        let errors = |n: usize| (0..n).map(|i| FieldError::new(format!("#/f{i}"), "bad"));
        let problem = Error::Validation(errors(MAX_FIELD_ERRORS + 1).collect()).to_problem();
        assert_eq!(problem.errors().len(), MAX_FIELD_ERRORS);
        assert_eq!(problem.errors()[0].pointer, "#/f0");
        let detail = problem.detail().unwrap();
        assert!(
            detail.contains(&format!("the first {MAX_FIELD_ERRORS}")),
            "{detail}"
        );
        let problem = validation_problem(errors(MAX_FIELD_ERRORS));
        assert_eq!(problem.errors().len(), MAX_FIELD_ERRORS);
        assert_eq!(
            problem.detail(),
            Some("one or more fields are invalid; see `errors`")
        );
        let long = validation_problem([FieldError::new("#/a", "é".repeat(200))]);
        assert!(long.errors()[0].detail.len() <= crate::problem::MAX_FIELD_TEXT);
    }

    #[test]
    fn statuses() {
        assert_eq!(Error::Validation(vec![]).status(), 422);
        assert_eq!(Error::Timeout.status(), 503);
        assert_eq!(Error::UnavailableFor(Duration::from_secs(3)).status(), 503);
        assert_eq!(Error::PayloadTooLarge.status(), 413);
        assert_eq!(Error::Conflict("taken".into()).status(), 409);
    }

    #[test]
    fn internal_keeps_chain_for_log_only() {
        let err = Error::internal(Outer(Inner));
        let Error::Internal(source) = &err else {
            panic!("not internal")
        };
        assert_eq!(
            redact_error_chain(&**source),
            "query failed: SELECT * FROM users WHERE token='[redacted]'",
            "the chain is logged, with secrets redacted"
        );
        let body = String::from_utf8(err.to_problem().to_json().to_vec()).unwrap();
        assert!(
            !body.contains("s3cr3t") && !body.contains("query failed"),
            "{body}"
        );
        assert!(body.contains("Internal Server Error"));
    }

    #[test]
    fn too_many_requests_rounds_retry_after_up() {
        let p = Error::TooManyRequests {
            retry_after: Duration::from_millis(1500),
            policies: vec!["per-ip".into()],
        }
        .to_problem();
        assert_eq!(p.headers()[header::RETRY_AFTER], "2");
        assert_eq!(p.violated_policies(), ["per-ip"]);
        assert_eq!(p.type_uri(), types::QUOTA_EXCEEDED);
    }

    /// A 503 with a retry hint says it in `Retry-After` (rounded up, at least a second); a
    /// plain one has none.
    #[test]
    fn unavailable_for_says_when_to_retry() {
        let p = Error::UnavailableFor(Duration::from_millis(2100)).to_problem();
        assert_eq!(p.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(p.headers()[header::RETRY_AFTER], "3");
        assert_eq!(p.detail(), Some("the service is unavailable; retry later"));
        let p = Error::UnavailableFor(Duration::from_millis(10)).to_problem();
        assert_eq!(p.headers()[header::RETRY_AFTER], "1");
        assert!(
            Error::Unavailable
                .to_problem()
                .headers()
                .get(header::RETRY_AFTER)
                .is_none()
        );
    }

    #[test]
    fn unauthenticated_challenges() {
        let p = Error::Unauthenticated.to_problem();
        assert_eq!(p.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }

    /// `Error::Unauthenticated` could only challenge `Bearer`: a service authenticating by
    /// API key, `Basic` or a scheme of its own answered its clients with the wrong scheme.
    /// `Error::unauthenticated_with` names the challenge; the body is the same problem.
    #[test]
    fn unauthenticated_with_names_the_challenge() {
        let challenge = HeaderValue::from_static(r#"ApiKey header="x-api-key""#);
        let err = Error::unauthenticated_with(challenge.clone());
        assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
        let p = err.to_problem();
        let challenges: Vec<_> = p
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .collect();
        assert_eq!(challenges, [&challenge]);
        assert_eq!(p.detail(), Error::Unauthenticated.to_problem().detail());
        let res = err.into_response();
        assert_eq!(res.headers()[header::WWW_AUTHENTICATE], challenge);
    }
}
