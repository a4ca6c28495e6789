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

/// `Hardening::strict()` trusting 127.0.0.1 as a proxy.
fn trusting() -> Hardening {
    Hardening::strict().trusted_proxies(["127.0.0.1"]).unwrap()
}

/// Strict, untrusting (`false`) and trusting (`true`) the test's peer, each with and without
/// the security headers (two code paths read and write the request id).
fn strict_variants() -> Vec<(bool, Hardening)> {
    vec![
        (false, Hardening::strict()),
        (
            false,
            Hardening::strict().dangerous_without_security_headers(),
        ),
        (true, trusting()),
        (true, trusting().dangerous_without_security_headers()),
    ]
}

/// One `x-request-id` in every response: with and without the security headers (two code
/// paths write it), from a trusted proxy (its id) or not (a new one), over a handler's own
/// ids, on a 404, a redirect and the health probes.
#[tokio::test]
async fn the_request_id_is_in_the_response_once() {
    let mut apps = strict_variants();
    apps.push((
        true,
        trusting()
            .https_redirect(
                hardening_core::headers::HttpsRedirect::new()
                    .exempt("/id")
                    .unwrap(),
            )
            .health(Health::new()),
    ));
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

/// The `x-request-id` fields the inner service sees, and its `RequestId`, as JSON.
fn echo_routes() -> Router {
    Router::new().route(
        "/echo-id",
        get(|id: RequestId, headers: http::HeaderMap| async move {
            let seen: Vec<String> = headers
                .get_all("x-request-id")
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            axum::Json(serde_json::json!({ "extension": id.to_string(), "header": seen }))
        }),
    )
}

/// A handler that forwards the request's `x-request-id` downstream forwards the id
/// `Hardening` chose and logged: the one in the `RequestId` extension and in the response.
/// A client's id (well-formed or not, one line or several) is replaced, and so is a trusted
/// proxy's that is not adopted (malformed, or one of two lines); a trusted proxy's one
/// well-formed id reaches the handler as it sent it, once. With and without the security
/// headers (which read the request's headers in the same pass), with few headers and with
/// more than eight (read by lookup then). A request without the header gets none.
#[tokio::test]
async fn the_handler_sees_the_chosen_id_in_the_request_header() {
    let apps = strict_variants();
    let long = format!("x-request-id: {}", "a".repeat(65));
    // (header lines sent, the id a trusted proxy's lines give when adopted)
    let cases: [(Vec<&str>, Option<&str>); 7] = [
        (vec![], None),
        (
            vec!["x-request-id: forged-by-client"],
            Some("forged-by-client"),
        ),
        (
            vec!["X-Request-Id: from-the-proxy.1"],
            Some("from-the-proxy.1"),
        ),
        (vec![long.as_str()], None),
        (vec!["x-request-id: tab\tinside"], None),
        (vec!["x-request-id: has space"], None),
        (
            vec![
                "x-request-id: forged-by-client",
                "x-request-id: from-the-proxy.2",
            ],
            None,
        ),
    ];
    let fillers: Vec<String> = (0..10).map(|i| format!("x-filler-{i}: {i}")).collect();
    for (i, (trusted, hardening)) in apps.into_iter().enumerate() {
        let addr = serve(echo_routes().layer(hardening)).await;
        for (lines, adoptable) in &cases {
            for many in [false, true] {
                let mut sent: Vec<&str> = lines.clone();
                if many {
                    sent.extend(fillers.iter().map(String::as_str));
                }
                let reply = http_get(addr, "/echo-id", &sent).await;
                assert_eq!(reply.status, 200, "{i} {sent:?}: {reply:?}");
                let body = reply.json();
                let id = body["extension"].as_str().unwrap();
                let seen: Vec<&str> = body["header"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .collect();
                assert_eq!(reply.all("x-request-id"), [id], "{i} {sent:?}");
                match adoptable.filter(|_| trusted) {
                    Some(adopted) => assert_eq!(id, adopted, "{i} {sent:?}"),
                    None => assert!(
                        !lines.iter().any(|l| l.ends_with(id)),
                        "{i} {sent:?}: the id {id} was sent, not chosen"
                    ),
                }
                let expected: &[&str] = if lines.is_empty() { &[] } else { &[id] };
                assert_eq!(
                    seen, expected,
                    "{i} {sent:?}: the handler saw other x-request-id fields than the id \
                     Hardening chose ({id})"
                );
            }
        }
    }
}
