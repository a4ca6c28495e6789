//! A route guarded by network, behind a trusted reverse proxy inside that network, end to
//! end over TCP on 127.0.0.1: only a client the proxy names, and who is inside, gets in; a
//! request from the proxy's host that names no client is not taken for an insider.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use axum::Router;
use axum::routing::get;
use hardening_core::errors::Error;
use hardening_core::{Hardening, IpNet, KnownClientIp};
use hardening_tests::{get as http_get, serve};

/// The networks `/admin` admits: the internal network and the host itself.
fn internal() -> Vec<IpNet> {
    ["10.0.0.0/8", "127.0.0.0/8"]
        .iter()
        .map(|n| n.parse().unwrap())
        .collect()
}

/// `/admin`, for clients inside [`internal`] only. (The trial's app checked `ClientIp`,
/// which is the proxy's own address for a client the proxy does not name: it answered
/// `{"admin":true,"client":"127.0.0.1"}` to a request with no `X-Forwarded-For`.)
fn admin(hardening: Hardening) -> Router {
    let networks = internal();
    Router::new()
        .route(
            "/admin",
            get(move |KnownClientIp(ip): KnownClientIp| async move {
                if !networks.iter().any(|n| n.contains(ip)) {
                    return Err(Error::Forbidden);
                }
                Ok(axum::Json(
                    serde_json::json!({ "admin": true, "client": ip.to_string() }),
                ))
            }),
        )
        .layer(hardening)
}

/// Behind a proxy at 127.0.0.1 (trusted, and inside the guarded network): a request that
/// names no client (no `X-Forwarded-For`, or only hops that are not addresses) is refused
/// with a 403 problem, as is one whose first hop a client forged; a client the proxy names
/// inside the network gets in.
#[tokio::test]
async fn a_trusted_proxys_own_address_does_not_pass_a_network_check() {
    let addr = serve(admin(
        Hardening::strict().trusted_proxies(["127.0.0.1"]).unwrap(),
    ))
    .await;
    for (sent, admitted) in [
        (&[][..], None),
        (&["x-forwarded-for: unknown"][..], None),
        (&["x-forwarded-for: 10.0.0.5, unknown"][..], None),
        (&["x-forwarded-for: 10.0.0.5, 203.0.113.9"][..], None),
        (&["x-forwarded-for: 127.0.0.1, 203.0.113.9"][..], None),
        (&["x-forwarded-for: 203.0.113.9"][..], None),
        (&["x-forwarded-for: 10.1.2.3"][..], Some("10.1.2.3")),
        (
            &["x-forwarded-for: 203.0.113.9, 10.1.2.3"][..],
            Some("10.1.2.3"),
        ),
    ] {
        let reply = http_get(addr, "/admin", sent).await;
        match admitted {
            Some(client) => {
                assert_eq!(reply.status, 200, "{sent:?}: {reply:?}");
                assert_eq!(
                    reply.json(),
                    serde_json::json!({ "admin": true, "client": client }),
                    "{sent:?}"
                );
            }
            None => {
                let problem = reply.problem(403);
                assert!(!reply.body.contains("admin"), "{sent:?}: {problem}");
            }
        }
    }
}

/// Without trusted proxies, the socket peer is the client: a process on the host itself
/// (127.0.0.1, inside the network) gets in. But a request from it that carries a forwarding
/// header comes, most likely, through a reverse proxy on this host that `trusted_proxies`
/// does not name: every client on the internet would pass as 127.0.0.1. It is refused (403
/// problem), the readiness probe shows it no detail, and a warning once says what to set.
/// (Before: `/admin` answered 200 `{"admin":true,"client":"127.0.0.1"}` to it, and no
/// warning.)
#[tokio::test]
async fn without_trusted_proxies_a_forwarded_request_from_the_host_is_not_an_insider() {
    let (captured, _guard) = hardening_tests::Captured::json_logs(tracing::Level::WARN);
    let health =
        hardening_core::Health::new().check("database", || async { Ok::<(), std::io::Error>(()) });
    let addr = serve(admin(Hardening::strict().health(health))).await;
    let reply = http_get(addr, "/admin", &[]).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.json()["client"], "127.0.0.1");
    let detailed = http_get(addr, "/readyz", &[]).await;
    assert_eq!(detailed.status, 200, "{detailed:?}");
    assert!(detailed.body.contains("database"), "{detailed:?}");
    let warnings = || -> Vec<serde_json::Value> {
        captured
            .json_lines()
            .into_iter()
            .filter(|v| v["target"] == "hardening::core" && v["level"] == "WARN")
            .collect()
    };
    assert!(warnings().is_empty(), "{:?}", warnings());
    for forwarded in [
        "x-forwarded-for: 203.0.113.9",
        "X-Forwarded-For: 127.0.0.1",
        "forwarded: for=203.0.113.9",
    ] {
        let reply = http_get(addr, "/admin", &[forwarded]).await;
        reply.problem(403);
        let probe = http_get(addr, "/readyz", &[forwarded]).await;
        assert_eq!(probe.status, 200, "{probe:?}");
        assert!(!probe.body.contains("database"), "{forwarded}: {probe:?}");
    }
    let warnings = warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let message = warnings[0]["fields"]["message"].as_str().unwrap();
    assert!(
        message.contains("HARDENING_TRUSTED_PROXIES") && message.contains("127.0.0.1"),
        "{message}"
    );
}
