//! `Valid<E>`: extract, then run garde's checks; 422 with field errors when they fail.

use std::fmt::Write as _;

use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use garde::Validate;
use http::request::Parts;

use crate::error::{MAX_FIELD_ERRORS, validation_problem, with_generic_detail};
use crate::mapping::describes_rejection_of;
use crate::{FieldError, Problem, rejection};

/// Extracts `E` (`Json<T>`, `Query<T>` or `Form<T>`) and validates its `T` with garde.
///
/// A request that does not parse is answered like the [`ProblemLayer`](crate::ProblemLayer)
/// answers axum's rejection (400/415/422 naming the field, never its value); one that parses
/// but breaks a rule is answered 422 with a [`VALIDATION_ERROR`](crate::types::VALIDATION_ERROR)
/// problem listing the broken rules as `{ "pointer": "#/field", "detail": "…" }`, sorted by
/// pointer: the first 100 (the detail says when there were more), each pointer and detail
/// at most 256 bytes (a longer pointer names an ancestor, a longer detail is cut), so that a
/// body of thousands of bad fields is not answered with a problem many times its size.
///
/// The pointers follow garde's paths, which use the Rust field names (without `r#`): serde's
/// `rename` and `rename_all` are not seen. Keep a validated type's JSON names equal to its
/// field names, or map the pointers to the JSON names. A map key over 40 bytes is not named
/// (it would echo the client's text at length): its errors point at the map, each once.
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

/// The 422 problem for a failed validation, its field errors sorted by pointer, each
/// pointer and detail once (errors under over-long map keys share their map's pointer), the
/// first [`MAX_FIELD_ERRORS`] of them listed. No more than a few times that many are held
/// at once, however many the report has.
fn invalid(report: garde::Report) -> Response {
    let mut errors: Vec<FieldError> = Vec::new();
    for (path, error) in report.iter() {
        errors.push(FieldError::new(json_pointer(path), error.message()).bounded());
        if errors.len() >= 4 * MAX_FIELD_ERRORS {
            keep_first(&mut errors);
        }
    }
    keep_first(&mut errors);
    validation_problem(errors).into_response()
}

/// Sorts `errors` by pointer, drops repeats, and keeps the first `MAX_FIELD_ERRORS + 1`:
/// one more than a problem lists, so that it can say there were more.
fn keep_first(errors: &mut Vec<FieldError>) {
    errors.sort_by(|a, b| (&a.pointer, &a.detail).cmp(&(&b.pointer, &b.detail)));
    errors.dedup_by(|a, b| (&a.pointer, &a.detail) == (&b.pointer, &b.detail));
    errors.truncate(MAX_FIELD_ERRORS + 1);
}

/// garde's path `items[0].sku` → the JSON Pointer `#/items/0/sku`, written as a URI fragment
/// (RFC 6901 §6). A key longer than a rejection's longest echoed field name (40 bytes) ends
/// it: such a key is a map's (the client chose it), and naming it would echo the client's
/// text at length, so the pointer names the map that holds it.
///
/// Built from the path's components, not its display string, whose `.` and `[` a map key may
/// hold too. A field's raw-identifier prefix is dropped (`r#type` → `type`): garde cannot
/// tell a field from a map key, so a map key spelt like a raw identifier loses it as well.
fn json_pointer(path: &garde::Path) -> String {
    use garde::error::Kind;
    let mut out = String::from("#");
    // garde's own walk over the components (last first), which its `Display` and `Serialize`
    // use too. It is doc-hidden, so outside semver: `Cargo.lock` pins garde, and the tests
    // below pin what it yields.
    for (kind, component) in path.__iter().rev() {
        let component = match kind {
            // A component without a key (an `Option`'s inner value) adds nothing.
            Kind::None => continue,
            Kind::Key if component.len() > rejection::MAX_NAME => break,
            Kind::Key => component
                .strip_prefix("r#")
                .filter(|rest| is_identifier(rest))
                .unwrap_or(component),
            Kind::Index => component,
        };
        out.push('/');
        push_component(&mut out, component);
    }
    out
}

/// A Rust identifier's characters (after `r#`): letters, digits and `_`, not starting with a
/// digit.
fn is_identifier(s: &str) -> bool {
    s.chars().next().is_some_and(|c| !c.is_ascii_digit())
        && s.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// One reference token: `~` and `/` escaped (RFC 6901 §3), then each byte a URI fragment may
/// not hold percent-encoded (RFC 3986 §3.5: `#`, `%`, space, `[`, non-ASCII, …).
fn push_component(out: &mut String, component: &str) {
    for c in component.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c if c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@?".contains(c) => out.push(c),
            c => {
                let mut buf = [0; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "%{b:02X}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use garde::Path;
    use garde::error::NoKey;

    use super::json_pointer;

    #[test]
    fn pointers() {
        assert_eq!(json_pointer(&Path::empty()), "#");
        assert_eq!(json_pointer(&Path::new("name")), "#/name");
        let sku = Path::new("items").join(0).join("sku");
        assert_eq!(json_pointer(&sku), "#/items/0/sku");
        assert_eq!(json_pointer(&Path::new(2)), "#/2");
        assert_eq!(json_pointer(&Path::new("a/b~c")), "#/a~1b~0c");
        // An `Option`'s inner value has no key of its own.
        let inner = Path::new("tags").join(NoKey::default()).join(1);
        assert_eq!(json_pointer(&inner), "#/tags/1");
    }

    /// Map keys holding `.` or `[`, which garde's display string also uses between
    /// components: one reference token each, not split.
    #[test]
    fn a_map_key_is_one_reference_token() {
        let dotted = Path::new("tags").join("a.b").join("v");
        assert_eq!(json_pointer(&dotted), "#/tags/a.b/v");
        let bracketed = Path::new("tags").join("x[0]").join("v");
        assert_eq!(json_pointer(&bracketed), "#/tags/x%5B0%5D/v");
        let slashed = Path::new("tags").join("a/b~c").join(3);
        assert_eq!(json_pointer(&slashed), "#/tags/a~1b~0c/3");
    }

    /// A key over 40 bytes is the client's text at length: the pointer stops at its map.
    #[test]
    fn a_long_key_ends_the_pointer() {
        let long = "k".repeat(41);
        let path = Path::new("tags").join(long.as_str()).join("v");
        assert_eq!(json_pointer(&path), "#/tags");
        let forty = "k".repeat(40);
        let path = Path::new("tags").join(forty.as_str()).join("v");
        assert_eq!(json_pointer(&path), format!("#/tags/{forty}/v"));
    }

    /// What a URI fragment may not hold is percent-encoded (RFC 6901 §6): `#`, `%`, space,
    /// quotes, brackets and every byte of a non-ASCII character.
    #[test]
    fn a_pointer_is_a_valid_uri_fragment() {
        let path = Path::new("m").join("a#b%c d\"<é>");
        assert_eq!(json_pointer(&path), "#/m/a%23b%25c%20d%22%3C%C3%A9%3E");
        let kept = Path::new("m").join("a-b._!$&'()*+,;=:@?");
        assert_eq!(json_pointer(&kept), "#/m/a-b._!$&'()*+,;=:@?");
    }

    /// A raw identifier's field is named without its `r#`.
    #[test]
    fn a_raw_identifier_loses_its_prefix() {
        assert_eq!(json_pointer(&Path::new("r#type")), "#/type");
        let nested = Path::new("r#match").join(0).join("r#fn");
        assert_eq!(json_pointer(&nested), "#/match/0/fn");
        // Not a raw identifier: kept as it is.
        assert_eq!(json_pointer(&Path::new("r#")), "#/r%23");
        assert_eq!(json_pointer(&Path::new("r#1a")), "#/r%231a");
    }
}
