//! An endpoint that receives CSP violation reports and logs them, bounded and rate-limited.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::post;
use http::StatusCode;

/// Receives `report-uri` violation reports (`application/csp-report`, or the Reporting API's
/// `application/reports+json`) and logs each at warn level under the target
/// `hardening::csp`, with the URIs cut to scheme, host and path (query strings can hold
/// tokens). Bodies over the size limit get 413; reports over the rate limit are counted and
/// dropped (204, so browsers do not retry).
///
/// ```
/// use axum::Router;
/// use hardening_headers::{Csp, CspReports};
///
/// let csp = Csp::html().report_uri("/csp-report");
/// let app: Router = Router::new().merge(CspReports::new().router("/csp-report"));
/// # let _ = csp;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct CspReports {
    max_body: usize,
    per_minute: u32,
    window: Arc<Mutex<(Instant, u32)>>,
}

impl Default for CspReports {
    fn default() -> Self {
        Self::new()
    }
}

impl CspReports {
    /// 8 KiB per report, 60 reports logged per minute.
    pub fn new() -> Self {
        Self {
            max_body: 8 * 1024,
            per_minute: 60,
            window: Arc::new(Mutex::new((Instant::now(), 0))),
        }
    }

    /// The largest report body accepted.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// How many reports are logged per minute; the rest are dropped.
    pub fn per_minute(mut self, reports: u32) -> Self {
        self.per_minute = reports;
        self
    }

    /// A router with `POST path` answered by this endpoint, to merge into yours.
    pub fn router<S: Clone + Send + Sync + 'static>(self, path: &str) -> Router<S> {
        let limit = self.max_body;
        Router::new()
            .route(path, post(receive))
            .layer(DefaultBodyLimit::max(limit))
            .with_state(self)
    }

    fn admit(&self) -> bool {
        let Ok(mut window) = self.window.lock() else {
            return false;
        };
        if window.0.elapsed() >= Duration::from_secs(60) {
            *window = (Instant::now(), 0);
        }
        window.1 += 1;
        window.1 <= self.per_minute
    }
}

async fn receive(State(reports): State<CspReports>, body: Bytes) -> StatusCode {
    if !reports.admit() {
        return StatusCode::NO_CONTENT;
    }
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    // report-uri: {"csp-report": {...}}; Reporting API: [{"type": "csp-violation", "body": {...}}]
    let items: Vec<&serde_json::Value> = match &json {
        serde_json::Value::Array(list) => list.iter().filter_map(|r| r.get("body")).collect(),
        other => other.get("csp-report").into_iter().collect(),
    };
    if items.is_empty() {
        return StatusCode::BAD_REQUEST;
    }
    for r in items {
        let field = |a: &str, b: &str| {
            r.get(a)
                .or_else(|| r.get(b))
                .and_then(|v| v.as_str())
                .unwrap_or("")
        };
        tracing::warn!(
            target: "hardening::csp",
            violated_directive = field("violated-directive", "effectiveDirective"),
            blocked_uri = %strip_query(field("blocked-uri", "blockedURL")),
            document_uri = %strip_query(field("document-uri", "documentURL")),
            disposition = field("disposition", "disposition"),
            "CSP violation reported",
        );
    }
    StatusCode::NO_CONTENT
}

/// `https://x.example/a?token=1#f` → `https://x.example/a`; keywords (`inline`, `eval`) kept.
fn strip_query(uri: &str) -> &str {
    let mut end = uri.find(['?', '#']).unwrap_or(uri.len()).min(256);
    while !uri.is_char_boundary(end) {
        end -= 1;
    }
    &uri[..end]
}

#[cfg(test)]
mod tests {
    use super::strip_query;

    #[test]
    fn queries_are_cut() {
        assert_eq!(
            strip_query("https://a.example/p?token=x"),
            "https://a.example/p"
        );
        assert_eq!(strip_query("inline"), "inline");
        let long = "é".repeat(300);
        assert!(strip_query(&long).len() <= 256);
    }
}
