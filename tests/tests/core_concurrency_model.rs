//! `Hardening`'s concurrency caps on random schedules, against a model: requests from
//! several clients (an IPv4-mapped address is its IPv4 client, an IPv6 /64 one client) are
//! started and finished in any order, answered in every way a response can be (a body of
//! known size, a stream, a 500, a caught panic, a 204, no answer yet), and ended in every way
//! a client can end one (read to the end, one frame read, dropped unread, the request given
//! up before its answer). A request is refused (429 for the client, 503 overall, the global
//! cap first) exactly when the model says its slots are taken, and `in_flight` is the model's
//! count after every step: a slot is held from the request until its response body is gone,
//! and every slot comes back.
//!
//! The generator is fastrand's, from a fixed seed: a failure names the seed and the step, and shows
//! the operations that led to it.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use hardening_core::Hardening;
use hardening_core::ratelimit::ConcurrencyLimiter;
use hardening_tests::UnknownSize;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use tower::Service;

/// Client addresses, each with the client it counts as.
const CLIENTS: &[(&str, &str)] = &[
    ("192.0.2.1", "192.0.2.1"),
    ("::ffff:192.0.2.1", "192.0.2.1"),
    ("192.0.2.2", "192.0.2.2"),
    ("2001:db8::1", "2001:db8::/64"),
    ("2001:db8::ffff:2", "2001:db8::/64"),
    ("2001:db8:0:1::1", "2001:db8:0:1::/64"),
];

/// How the handler answers.
const ACTS: &[&str] = &[
    "sized",
    "stream",
    "server-error",
    "panic",
    "no-content",
    "pending",
];

/// How the client ends a response it holds.
#[derive(Debug, Clone, Copy)]
enum Ending {
    Read,
    OneFrame,
    Drop,
}

async fn handler(headers: HeaderMap) -> Response {
    match headers.get("x-act").and_then(|v| v.to_str().ok()) {
        Some("stream") => {
            Body::new(UnknownSize(Some(Bytes::from_static(b"streamed")))).into_response()
        }
        Some("server-error") => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Some("panic") => panic!("the handler broke"),
        Some("no-content") => StatusCode::NO_CONTENT.into_response(),
        Some("pending") => std::future::pending().await,
        _ => "a sized body".into_response(),
    }
}

type Call = Pin<Box<dyn Future<Output = Result<Response, std::convert::Infallible>> + Send>>;

/// Polls `f` a few times (nothing here waits but `pending`).
fn poll_some<F: Future + ?Sized>(mut f: Pin<&mut F>) -> Option<F::Output> {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    (0..50).find_map(|_| match f.as_mut().poll(&mut cx) {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    })
}

/// What a client holds: a response whose body it has not finished with, or a request not
/// answered yet.
enum Held {
    Response(Body),
    Waiting(Call),
}

#[tokio::test]
async fn concurrency_slots_match_a_model_through_hardening() {
    // Refusals seen, per client and overall: the schedule must exercise both.
    let mut refusals = [0usize; 2];
    for seed in 1..=30u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let per_client = 1 + rng.usize(..3);
        let global = (rng.usize(..3) > 0).then(|| 2 + rng.usize(..5));
        let nz = |n: usize| NonZeroU32::new(u32::try_from(n).unwrap()).unwrap();
        let mut cap = ConcurrencyLimiter::per_client(nz(per_client));
        if let Some(max) = global {
            cap = cap.global(nz(max));
        }
        let mut app = Router::new().route("/", get(handler)).layer(
            Hardening::strict()
                .dangerous_without_rate_limit()
                .concurrency_limit(cap.clone()),
        );
        let mut held: Vec<(Held, &str)> = Vec::new();
        let mut trace = vec![format!("per client {per_client}, global {global:?}")];
        for step in 0..120 {
            let tail = |trace: &[String]| {
                let from = trace.len().saturating_sub(12);
                format!("seed {seed} step {step}:\n  {}", trace[from..].join("\n  "))
            };
            if !held.is_empty() && rng.usize(..2) == 0 {
                let (what, who) = held.swap_remove(rng.usize(..held.len()));
                let ending = [Ending::Read, Ending::OneFrame, Ending::Drop][rng.usize(..3)];
                match what {
                    Held::Response(mut body) => {
                        trace.push(format!("{step}: {who} ends a response: {ending:?}"));
                        match ending {
                            Ending::Read => drop(poll_some(std::pin::pin!(body.collect()))),
                            Ending::OneFrame => drop(poll_some(std::pin::pin!(body.frame()))),
                            Ending::Drop => {}
                        }
                    }
                    Held::Waiting(call) => {
                        trace.push(format!("{step}: {who} gives up waiting"));
                        drop(call);
                    }
                }
            } else {
                let (address, who) = CLIENTS[rng.usize(..CLIENTS.len())];
                let act = ACTS[rng.usize(..ACTS.len())];
                trace.push(format!("{step}: {address} asks for {act}"));
                let mine = held.iter().filter(|(_, w)| *w == who).count();
                let want = if global.is_some_and(|max| held.len() >= max) {
                    Some(StatusCode::SERVICE_UNAVAILABLE)
                } else if mine >= per_client {
                    Some(StatusCode::TOO_MANY_REQUESTS)
                } else {
                    None
                };
                let mut req = Request::get("/")
                    .header("x-act", act)
                    .body(Body::empty())
                    .unwrap();
                let peer = SocketAddr::new(address.parse().unwrap(), 40_000);
                req.extensions_mut().insert(ConnectInfo(peer));
                std::future::poll_fn(|cx| Service::<Request<Body>>::poll_ready(&mut app, cx))
                    .await
                    .unwrap();
                let mut call: Call = Box::pin(app.call(req));
                match (poll_some(call.as_mut()), want) {
                    (Some(response), Some(refused)) => {
                        let response = response.unwrap();
                        assert_eq!(response.status(), refused, "{}", tail(&trace));
                        assert_eq!(
                            response.headers()["content-type"],
                            "application/problem+json",
                            "{}",
                            tail(&trace)
                        );
                        assert!(response.headers().contains_key("retry-after"));
                        refusals[usize::from(refused == StatusCode::SERVICE_UNAVAILABLE)] += 1;
                    }
                    (None, None) => {
                        assert_eq!(act, "pending", "{}", tail(&trace));
                        held.push((Held::Waiting(call), who));
                    }
                    (Some(response), None) => {
                        let response = response.unwrap();
                        let status = response.status();
                        assert!(
                            !matches!(status.as_u16(), 429 | 503),
                            "refused with a slot free: {status}\n{}",
                            tail(&trace)
                        );
                        held.push((Held::Response(response.into_body()), who));
                    }
                    (None, Some(_)) => panic!("a refusal is answered at once\n{}", tail(&trace)),
                }
            }
            assert_eq!(
                cap.in_flight() as usize,
                held.len(),
                "slots in flight\n{}",
                tail(&trace)
            );
        }
        held.clear();
        assert_eq!(cap.in_flight(), 0, "seed {seed}: every slot back");
    }
    assert!(
        refusals.iter().all(|n| *n >= 50),
        "429s and 503s: {refusals:?}"
    );
}
