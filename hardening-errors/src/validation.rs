//! `Valid<E>`: extract, then run garde's checks; 422 with field errors when they fail.

use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use garde::Validate;
use http::request::Parts;

use crate::error::{validation_problem, with_generic_detail};
use crate::mapping::describes_rejection_of;
use crate::{FieldError, Problem, rejection};

/// Extracts `E` (`Json<T>`, `Query<T>` or `Form<T>`) and validates its `T` with garde.
///
/// A request that does not parse is answered like the [`ProblemLayer`](crate::ProblemLayer)
/// answers axum's rejection (400/415/422 naming the field, never its value); one that parses
/// but breaks a rule is answered 422 with a [`VALIDATION_ERROR`](crate::types::VALIDATION_ERROR)
/// problem listing every broken rule as `{ "pointer": "#/field", "detail": "…" }`, sorted by
/// pointer.
///
/// ```
/// use axum::{Json, Router, routing::post};
/// use hardening_errors::Valid;
/// use tower::ServiceExt;
///
/// #[derive(serde::Deserialize, garde::Validate)]
/// struct SignUp {
///     #[garde(length(min = 3, max = 32))]
///     name: String,
///     #[garde(range(min = 13))]
///     age: u8,
/// }
///
/// async fn sign_up(Valid(Json(form)): Valid<Json<SignUp>>) -> String {
///     form.name
/// }
///
/// let app = Router::new().route("/sign-up", post(sign_up));
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let req = http::Request::post("/sign-up")
///     .header("content-type", "application/json")
///     .body(axum::body::Body::from(r#"{"name":"al","age":9}"#))
///     .unwrap();
/// let res = app.oneshot(req).await.unwrap();
/// assert_eq!(res.status(), 422);
/// let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
/// let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
/// assert_eq!(problem["errors"][0]["pointer"], "#/age");
/// assert_eq!(problem["errors"][1]["pointer"], "#/name");
/// # });
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Valid<E>(pub E);

/// `Valid<Json<T>>` and `Valid<Form<T>>`: the body extractors.
macro_rules! valid_body_extractor {
    ($extractor:ident, $rejection:ty) => {
        impl<S, T> FromRequest<S> for Valid<$extractor<T>>
        where
            S: Send + Sync,
            $extractor<T>: FromRequest<S, Rejection = $rejection>,
            T: Validate,
            T::Context: Default,
        {
            type Rejection = Response;

            async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
                let $extractor(value) = $extractor::<T>::from_request(req, state)
                    .await
                    .map_err(|r| rejected(r.status(), &r.body_text()))?;
                value.validate().map_err(invalid)?;
                Ok(Self($extractor(value)))
            }
        }
    };
}

valid_body_extractor!(Json, axum::extract::rejection::JsonRejection);
valid_body_extractor!(Form, axum::extract::rejection::FormRejection);

impl<S, T> FromRequestParts<S> for Valid<Query<T>>
where
    S: Send + Sync,
    Query<T>: FromRequestParts<S, Rejection = axum::extract::rejection::QueryRejection>,
    T: Validate,
    T::Context: Default,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(value) = Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|r| rejected(r.status(), &r.body_text()))?;
        value.validate().map_err(invalid)?;
        Ok(Self(Query(value)))
    }
}

/// The problem for an extractor's rejection, described as the layer would: a 413 (a body
/// over the limit) with the generic "larger than this service accepts".
fn rejected(status: http::StatusCode, text: &str) -> Response {
    let problem = Problem::new(status);
    match rejection::describe(text) {
        Some(detail) if describes_rejection_of(status) => problem.with_detail(detail),
        _ => with_generic_detail(problem),
    }
    .into_response()
}

/// The 422 problem for a failed validation, its field errors sorted by pointer.
fn invalid(report: garde::Report) -> Response {
    let mut errors: Vec<FieldError> = report
        .iter()
        .map(|(path, error)| FieldError::new(json_pointer(&path.to_string()), error.message()))
        .collect();
    errors.sort_by(|a, b| a.pointer.cmp(&b.pointer));
    validation_problem(errors).into_response()
}

/// garde's `items[0].sku` → the JSON Pointer fragment `#/items/0/sku` (RFC 6901 escaping).
fn json_pointer(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 2);
    out.push('#');
    for segment in path.split(['.', '[']).filter(|s| !s.is_empty()) {
        out.push('/');
        let segment = segment.strip_suffix(']').unwrap_or(segment);
        for c in segment.chars() {
            match c {
                '~' => out.push_str("~0"),
                '/' => out.push_str("~1"),
                c => out.push(c),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::json_pointer;

    #[test]
    fn pointers() {
        assert_eq!(json_pointer(""), "#");
        assert_eq!(json_pointer("name"), "#/name");
        assert_eq!(json_pointer("items[0].sku"), "#/items/0/sku");
        assert_eq!(json_pointer("[2]"), "#/2");
        assert_eq!(json_pointer("a/b~c"), "#/a~1b~0c");
    }
}
