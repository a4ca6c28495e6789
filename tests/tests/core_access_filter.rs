//! The access log under a filter that picks events by kind and field name (a per-layer
//! `filter_fn`, as a team that ships only access logs to one sink might write): the request
//! must still be logged. And the access log's "is anyone listening" check must ask with the
//! same field names as the event it guards. Its own test binary: it installs its own global
//! subscriber.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::{Arc, Mutex};

use axum::Router;
use hardening_tests::{Captured, get, serve};
use tracing::subscriber::Interest;
use tracing::{Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt as _;

/// Records the field names of every access-log callsite as it registers: the check's and the
/// event's.
#[derive(Clone, Default)]
struct AccessCallsites(Arc<Mutex<Vec<Vec<String>>>>);

impl<S: Subscriber> Layer<S> for AccessCallsites {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if meta.target() == hardening_core::ACCESS_TARGET {
            let names = meta.fields().iter().map(|f| f.name().to_owned()).collect();
            self.0.lock().unwrap().push(names);
        }
        Interest::always()
    }
}

#[tokio::test]
async fn a_field_name_filter_sees_the_access_log() {
    let captured = Captured::default();
    let writer = captured.clone();
    let only_access_events = tracing_subscriber::filter::filter_fn(|meta| {
        meta.is_event() && meta.fields().field("http.response.status_code").is_some()
    });
    let callsites = AccessCallsites::default();
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(move || writer.clone())
                .with_filter(only_access_events),
        )
        .with(callsites.clone());
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let app = Router::new().route("/hello", axum::routing::get(|| async { "hi" }));
    let addr = serve(app.layer(hardening_core::Hardening::strict())).await;
    let reply = get(addr, "/hello", &[]).await;
    assert_eq!(reply.status, 200);

    let logs = captured.text();
    let access: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(access.len(), 1, "one access event, nothing else:\n{logs}");
    assert_eq!(access[0]["target"], hardening_core::ACCESS_TARGET);
    assert_eq!(access[0]["fields"]["http.route"], "/hello", "{logs}");
    assert_eq!(
        access[0]["fields"]["request_id"],
        reply.header("x-request-id").unwrap(),
        "{logs}"
    );

    let callsites = callsites.0.lock().unwrap();
    assert_eq!(callsites.len(), 2, "the check and the event: {callsites:?}");
    assert_eq!(
        callsites[0], callsites[1],
        "the check asks with the event's field names"
    );
}
