//! A layer that encodes response bodies (tower-http's `CompressionLayer`) outside or inside
//! `Hardening`: `Hardening` reads an error body to describe it in its problem (an axum
//! rejection's text) or to pass it on (another layer's problem), and cannot read one a layer
//! inside has encoded. The README's "Coming from a tower-http `ServiceBuilder`" table says
//! where to keep the compression layer.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use hardening_core::Hardening;
use hardening_tests::UnknownSize;
use serde::Deserialize;
use tower::ServiceExt;

/// Encodes every response body as a compression layer does: a coding named in
/// `Content-Encoding` (here the bytes reversed), no `Content-Length`, a body of unknown size.
async fn encode(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let mut bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap()
        .to_vec();
    if bytes.is_empty() {
        return Response::from_parts(parts, Body::empty());
    }
    bytes.reverse();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static("x-reversed"),
    );
    Response::from_parts(parts, Body::new(UnknownSize(Some(bytes.into()))))
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Item {
    name: String,
}

fn routes() -> Router {
    Router::new()
        .route("/items", post(|Json(_item): Json<Item>| async { "created" }))
        .route(
            "/conflict",
            get(|| async {
                (
                    StatusCode::CONFLICT,
                    [(header::CONTENT_TYPE, "application/problem+json")],
                    r#"{"type":"https://example.com/taken","title":"Conflict","status":409,"detail":"the name is taken"}"#,
                )
                    .into_response()
            }),
        )
}

/// The response to `request`, and its body as a problem, decoded when it was encoded.
async fn problem(app: Router, request: Request) -> (Response<()>, serde_json::Value) {
    let response = app.oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let mut body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap()
        .to_vec();
    if parts.headers.contains_key(header::CONTENT_ENCODING) {
        body.reverse();
    }
    let problem = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("not a problem ({e}): {}", String::from_utf8_lossy(&body)));
    (Response::from_parts(parts, ()), problem)
}

fn missing_field() -> Request {
    Request::post("/items")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"nom":"a"}"#))
        .unwrap()
}

fn bad_json() -> Request {
    Request::post("/items")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{not json"))
        .unwrap()
}

fn conflict() -> Request {
    Request::get("/conflict").body(Body::empty()).unwrap()
}

/// A request, the status of its problem, and the detail that problem has when `Hardening`
/// can read the error body.
type Case = (fn() -> Request, u16, &'static str);

const DETAILS: [Case; 3] = [
    (
        missing_field,
        422,
        "the JSON body is missing the required field `name` (line 1, column 11)",
    ),
    (
        bad_json,
        400,
        "the request body is not valid JSON: key must be a string (line 1, column 2)",
    ),
    (conflict, 409, "the name is taken"),
];

/// Outside `Hardening`, the encoding layer encodes the problems `Hardening` wrote from the
/// bodies it read: an axum rejection's detail, another layer's problem passed on.
#[tokio::test]
async fn outside_hardening_the_problems_keep_their_details() {
    for (request, status, expected) in DETAILS {
        let app = routes()
            .layer(Hardening::strict())
            .layer(middleware::map_response(encode));
        let (response, problem) = problem(app, request()).await;
        assert_eq!(response.status(), status);
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "x-reversed");
        assert_eq!(problem["detail"], expected, "{problem}");
        assert_eq!(
            problem["request_id"].as_str().unwrap(),
            response.headers()["x-request-id"]
        );
    }
}

/// Inside, `Hardening` cannot read the encoded error bodies: each is still a problem of its
/// status with the request id, no longer encoded, but without the detail the body held.
#[tokio::test]
async fn inside_hardening_the_problems_lose_the_details_of_encoded_bodies() {
    for (request, status, expected) in DETAILS {
        let app = routes()
            .layer(middleware::map_response(encode))
            .layer(Hardening::strict());
        let (response, problem) = problem(app, request()).await;
        assert_eq!(response.status(), status);
        assert!(!response.headers().contains_key(header::CONTENT_ENCODING));
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert_eq!(problem["status"], status);
        assert_ne!(problem["detail"], expected, "{problem}");
        assert_eq!(
            problem["request_id"].as_str().unwrap(),
            response.headers()["x-request-id"]
        );
    }
}
