//! The security-event contract: what is an event and what is not, and what events never carry.

#![allow(clippy::unwrap_used, missing_docs)]

use axum::Router;
use axum::extract::Path;
use axum::routing::{get, post};
use hardening_core::errors::ProblemLayer;
use hardening_core::{Cors, Hardening};
use hardening_tests::{Captured, get as http_get, send, serve};

fn extractors() -> Router {
    #[derive(serde::Deserialize)]
    struct In {
        #[allow(dead_code)]
        n: u32,
    }
    Router::new()
        .route("/json", post(|_: axum::Json<In>| async { "ok" }))
        .route("/n/{id}", get(|Path(_id): Path<u32>| async { "ok" }))
        .route("/healthy", get(|| async { "ok" }))
}

async fn extractor_statuses(captured: &Captured, addr: std::net::SocketAddr) {
    let r = hardening_tests::exchange(
        addr,
        b"POST /json HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: 7\r\n\r\n{\"n\":1}",
    )
    .await;
    assert_eq!(r.status, 415, "{}", r.body);
    let r = send(addr, "POST", "/json", &[], Some(r#"{"n":"x"}"#)).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = http_get(addr, "/n/abc", &[]).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert!(r.json()["request_id"].is_string());
    assert_eq!(captured.security_event_names(), Vec::<String>::new());
}

#[tokio::test]
async fn extractor_rejections_are_not_events_under_hardening() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let addr = serve(extractors().layer(Hardening::strict())).await;
    extractor_statuses(&captured, addr).await;
}

#[tokio::test]
async fn extractor_rejections_are_not_events_under_problem_layer() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let addr = serve(extractors().layer(ProblemLayer::new())).await;
    extractor_statuses(&captured, addr).await;
}

#[tokio::test]
async fn health_and_preflights() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::WARN);
    let cors = Cors::allow_origins(["https://app.example"]).unwrap();
    let addr = serve(extractors().layer(Hardening::strict().cors(cors))).await;
    assert_eq!(http_get(addr, "/healthz", &[]).await.status, 200);
    assert_eq!(http_get(addr, "/readyz", &[]).await.status, 200);
    let ok = send(
        addr,
        "OPTIONS",
        "/json",
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "POST"),
        ],
        None,
    )
    .await;
    assert!(ok.status < 300, "{ok:?}");
    assert_eq!(captured.security_event_names(), Vec::<String>::new());
    let refused = send(
        addr,
        "OPTIONS",
        "/json",
        &[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "POST"),
        ],
        None,
    )
    .await;
    assert_eq!(refused.status, 403);
    assert_eq!(captured.security_event_names(), ["cors_rejected"]);
    assert_eq!(
        refused.header("content-type"),
        Some("application/problem+json")
    );
}

#[tokio::test]
async fn no_secrets_in_security_events() {
    let (captured, _guard) = Captured::json_logs(tracing::Level::TRACE);
    let addr = serve(extractors().layer(Hardening::strict().query_param_limit(2).unwrap())).await;
    let r = http_get(
        addr,
        "/healthy?access_token=SEKRIT1&a=1&b=2",
        &["authorization: Bearer SEKRIT2", "cookie: sid=SEKRIT3"],
    )
    .await;
    assert_eq!(r.status, 400);
    let r = send(
        addr,
        "POST",
        "/json?token=SEKRIT4",
        &[
            ("origin", "https://evil.example"),
            ("cookie", "sid=SEKRIT5"),
        ],
        Some("{}"),
    )
    .await;
    assert_eq!(r.status, 403);
    let text = captured.text();
    assert_eq!(
        captured.security_event_names(),
        ["too_many_query_params", "csrf_blocked"]
    );
    assert!(!text.contains("SEKRIT"), "{text}");
}
