//! The quickstart's demo (the curl lines of `examples/quickstart/src/main.rs`), request by
//! request, against the quickstart app over TCP. The README's demo is example-notes'
//! (`notes_e2e.rs`).

use hardening_tests::{exchange, get, serve};

fn post_json(path: &str, json: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{json}",
        json.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn readme_demo_answers_as_documented() {
    let addr = serve(example_quickstart::app()).await;

    let created = exchange(
        addr,
        &post_json("/notes", r#"{"title":"hi","body":"there"}"#),
    )
    .await;
    assert_eq!(created.status, 201);
    assert_eq!(created.json()["title"], "hi");
    assert!(created.header("x-request-id").is_some());

    let found = get(addr, "/notes/1", &[]).await;
    assert_eq!(found.json()["body"], "there");

    let bad_id = get(addr, "/notes/abc", &[]).await;
    assert_eq!(bad_id.status, 400);
    assert_eq!(
        bad_id.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(
        bad_id.json()["detail"],
        "path parameter must be a non-negative integer"
    );

    let invalid = exchange(addr, &post_json("/notes", r#"{"title":"","body":""}"#)).await;
    assert_eq!(invalid.status, 422);
    assert_eq!(invalid.json()["errors"][0]["pointer"], "#/title");

    let preflight = exchange(
        addr,
        b"OPTIONS /notes HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
          origin: https://evil.example\r\naccess-control-request-method: POST\r\n\r\n",
    )
    .await;
    assert_eq!(preflight.status, 403);
    assert_eq!(preflight.header("access-control-allow-origin"), None);

    let ready = get(addr, "/readyz", &[]).await;
    assert_eq!(ready.status, 200);
    let missing = get(addr, "/notes/999", &[]).await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.json()["request_id"],
        missing.header("x-request-id").unwrap_or_default()
    );
}

#[tokio::test]
async fn readme_demo_rate_limit_answers_429_after_the_burst() {
    let addr = serve(example_quickstart::app()).await;
    let mut statuses = Vec::new();
    for _ in 0..55 {
        statuses.push(get(addr, "/notes", &[]).await.status);
    }
    assert!(statuses[..50].iter().all(|s| *s == 200), "{statuses:?}");
    assert!(statuses[50..].iter().all(|s| *s == 429), "{statuses:?}");
    let limited = get(addr, "/notes", &[]).await;
    assert_eq!(
        limited.header("content-type"),
        Some("application/problem+json")
    );
    assert!(limited.header("retry-after").is_some());
}

/// `POST /notes` (a `Valid<Json<NewNote>>`) sent a chunked body over the 1 MiB limit: the 413
/// says the body is too large and what the limit is, not that it "could not be read".
#[tokio::test]
async fn an_oversized_chunked_note_is_answered_with_the_body_limit() {
    let addr = serve(example_quickstart::app()).await;
    let mut raw = b"POST /notes HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
        content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
        .to_vec();
    for _ in 0..40 {
        raw.extend_from_slice(b"8000\r\n");
        raw.extend(std::iter::repeat_n(b' ', 0x8000));
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let reply = exchange(addr, &raw).await;
    assert_eq!(reply.status, 413);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(
        reply.json()["detail"],
        "the request body is larger than this service accepts (1048576 bytes)"
    );
    assert_eq!(
        reply.json()["request_id"].as_str(),
        reply.header("x-request-id")
    );
}
