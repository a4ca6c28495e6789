//! Run with: cargo run -p example-quickstart
//!
//! Serves the notes API on http://127.0.0.1:3000. Try:
//!
//! ```text
//! curl -i localhost:3000/notes -H 'content-type: application/json' -d '{"title":"hi","body":"there"}'
//! curl -i localhost:3000/notes/1
//! curl -i localhost:3000/notes/abc          # 400 problem naming the path parameter
//! curl -i localhost:3000/notes -H 'content-type: application/json' -d '{"title":""}'
//! ```

use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    hardening_core::init_json_logs()?;
    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    hardening_core::serve(listener, example_quickstart::app()).await?;
    Ok(())
}
