//! Request ids, end to end over TCP on 127.0.0.1: every response carries the request's id
//! exactly once, whoever else wrote one. (IPv4-mapped peers and hops are covered by
//! `client_ip`'s unit tests: a dual-stack listener would listen beyond loopback.)

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use axum::Router;
use axum::routing::get;
use hardening_core::{Hardening, Health, RequestId};
use hardening_tests::{get as http_get, serve};

fn routes() -> Router {
    Router::new()
        .route("/id", get(|id: RequestId| async move { id.to_string() }))
        // A handler that writes its own ids, as a proxied upstream might.
        .route(
            "/own-id",
            get(|id: RequestId| async move {
                (
                    [("x-request-id", "handler-1"), ("x-request-id", "handler-2")],
                    id.to_string(),
                )
            }),
        )
}

/// One `x-request-id` in every response: with and without the security headers (two code
/// paths write it), from a trusted proxy (its id) or not (a new one), over a handler's own
/// ids, on a 404, a redirect and the health probes.
#[tokio::test]
async fn the_request_id_is_in_the_response_once() {
    let trusting = || Hardening::strict().trusted_proxies(["127.0.0.1"]).unwrap();
    let apps = [
        (false, Hardening::strict()),
        (
            false,
            Hardening::strict().dangerous_without_security_headers(),
        ),
        (true, trusting()),
        (true, trusting().dangerous_without_security_headers()),
        (
            true,
            trusting()
                .https_redirect(
                    hardening_core::headers::HttpsRedirect::new()
                        .exempt("/id")
                        .unwrap(),
                )
                .health(Health::new()),
        ),
    ];
    for (i, (trusted, hardening)) in apps.into_iter().enumerate() {
        let addr = serve(routes().layer(hardening)).await;
        for path in ["/id", "/own-id", "/nowhere", "/healthz", "/readyz"] {
            for sent in [None, Some("x-request-id: proxy-id.1")] {
                let reply = http_get(addr, path, sent.as_slice()).await;
                let ids = reply.all("x-request-id");
                assert_eq!(ids.len(), 1, "{i} {path} {sent:?}: {reply:?}");
                assert!(RequestId::parse(ids[0]).is_ok(), "{i} {path}: {ids:?}");
                assert_eq!(
                    ids[0] == "proxy-id.1",
                    trusted && sent.is_some(),
                    "{i} {path} {sent:?}: {reply:?}"
                );
                if reply.status == 200 && path.ends_with("id") {
                    assert_eq!(ids[0], reply.body, "{i} {path}");
                }
            }
        }
    }
}
