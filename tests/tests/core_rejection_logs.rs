//! A subscriber that records axum's rejection events (whose text quotes the client's input,
//! a mistyped password's value) is warned of when `Hardening` is applied. One test in its
//! own binary: it sets subscribers for its thread only, one after the other.

use axum::Router;
use axum::routing::post;
use hardening_core::Hardening;
use hardening_tests::Captured;

/// The warnings about axum's rejection events said while `Hardening::strict()` is applied
/// to a router of two routes, under a JSON subscriber with `filter`.
fn rejection_warnings(filter: &str) -> Vec<serde_json::Value> {
    let (captured, subscriber) = Captured::json_subscriber(filter);
    tracing::subscriber::with_default(subscriber, || {
        let _app: Router = Router::new()
            .route("/login", post(|body: String| async move { body }))
            .route("/notes", post(|body: String| async move { body }))
            .layer(Hardening::strict())
            // Applies the layer to every route now.
            .with_state(());
    });
    captured
        .json_lines()
        .into_iter()
        .filter(|w| w["level"] == "WARN" && w["fields"]["logs"] == "axum::rejection")
        .collect()
}

#[test]
fn a_subscriber_recording_axum_rejections_is_warned_of_once() {
    let warned = rejection_warnings("trace");
    assert_eq!(
        warned.len(),
        1,
        "once for the layer, not per route: {warned:?}"
    );
    let message = warned[0]["fields"]["message"].as_str().unwrap();
    assert!(
        message.contains("quotes the client's input") && message.contains("axum::rejection=off"),
        "{message}"
    );

    for quiet in [
        "trace,axum::rejection=off",
        "info",
        "debug,axum=debug",
        "hardening=trace",
    ] {
        assert_eq!(
            rejection_warnings(quiet),
            Vec::<serde_json::Value>::new(),
            "{quiet}"
        );
    }
    assert_eq!(rejection_warnings("warn,axum=trace").len(), 1);
}
