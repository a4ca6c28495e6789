//! Run with: cargo run -p example-quickstart
//!
//! Serves the notes API on http://127.0.0.1:3000 behind `Hardening::strict()`, JSON logs on
//! stdout, and Prometheus metrics (security-event counters) on http://127.0.0.1:9464/metrics.
//! Try:
//!
//! ```text
//! curl -i localhost:3000/notes -H 'content-type: application/json' -d '{"title":"hi","body":"there"}'
//! curl -i localhost:3000/notes/1
//! curl -i localhost:3000/notes/abc          # 400 problem: the path parameter is not a number
//! curl -i localhost:3000/notes -H 'content-type: application/json' -d '{"title":""}'
//! curl -i -X OPTIONS localhost:3000/notes -H 'origin: https://evil.example' \
//!      -H 'access-control-request-method: POST'   # 403 problem: no cross-origin access
//! curl -s localhost:9464/metrics | grep hardening  # hardening_security_events_total{event="cors_rejected"} 1
//! ```

use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    hardening_core::init_json_logs()?;
    // Metrics on their own loopback port, away from the public listener.
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(([127, 0, 0, 1], 9464))
        .install()?;
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    hardening_core::serve(listener, example_quickstart::app()).await?;
    Ok(())
}
