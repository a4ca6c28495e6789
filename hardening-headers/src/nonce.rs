//! The per-request CSP nonce.

use std::fmt;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use rand::Rng;

/// The CSP nonce of this request: 128 random bits, base64. Put it on your `<script>` and
/// `<style>` tags: `<script nonce="{nonce}">`, `<style nonce="{nonce}">` (a `style="…"`
/// attribute cannot carry one, see [`Csp::html`](crate::Csp::html)). The
/// `Content-Security-Policy` of this response allows exactly this nonce, and every request
/// gets a new one. Shared caches must not keep such a page (they
/// would give every visitor the same nonce): an HTML, SVG or XML response (in any of its
/// `Content-Type` fields or list elements), or one with no valid `Content-Type`, gets
/// `Cache-Control: no-store`, or the handler's own made `private`.
///
/// As an extractor it answers a 500 problem (a wiring mistake, logged) when no layer gave
/// the request a nonce: no header policy around the route whose CSP is
/// [`Csp::html`](crate::Csp::html) (`HeaderPolicy::html`'s) with its `script-src` or its
/// `style-src` kept.
/// `Option<CspNonce>` is `None` then instead.
///
/// ```
/// use axum::{Router, body::Body, response::Html, routing::get};
/// use hardening_headers::{CspNonce, HeaderPolicy, SecurityHeadersLayer};
/// use tower::ServiceExt;
///
/// async fn page(nonce: CspNonce) -> Html<String> {
///     Html(format!(r#"<style nonce="{nonce}">p {{ color: teal }}</style>
///                     <script nonce="{nonce}">console.log("hi")</script>"#))
/// }
/// let layer = SecurityHeadersLayer::new(HeaderPolicy::html().build()?);
/// let app = Router::new().route("/", get(page)).layer(layer);
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let res = app.oneshot(http::Request::get("/").body(Body::empty())?).await?;
/// let csp = res.headers()["content-security-policy"].to_str()?.to_owned();
/// let html = axum::body::to_bytes(res.into_body(), 4096).await?;
/// let nonce = std::str::from_utf8(&html)?.split('"').nth(1).unwrap();
/// assert!(csp.contains(&format!("script-src 'nonce-{nonce}' 'strict-dynamic'")), "{csp}");
/// assert!(csp.contains(&format!("style-src 'nonce-{nonce}' 'self'")), "{csp}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CspNonce([u8; 24]);

impl CspNonce {
    /// A new nonce from the thread-local random generator.
    pub fn generate() -> Self {
        let mut raw = [0u8; 16];
        rand::rng().fill_bytes(&mut raw);
        Self(base64_16(&raw))
    }

    /// The nonce as text (24 base64 characters).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The nonce's 24 base64 characters, without [`as_str`](Self::as_str)'s UTF-8 check (a
    /// hundred instructions): for writing it into each response's CSP.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Standard base64 of 16 bytes: 22 characters and `==`.
fn base64_16(raw: &[u8; 16]) -> [u8; 24] {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = [b'='; 24];
    let mut o = 0;
    for chunk in raw.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out[o + i] = ALPHABET[((n >> (18 - 6 * i)) & 63) as usize];
        }
        o += 4;
    }
    out
}

impl fmt::Display for CspNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CspNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CspNonce(..)")
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CspNonce {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<CspNonce>().copied().ok_or_else(|| {
            hardening_errors::Error::internal(
                "CspNonce needs a header policy with nonces (HeaderPolicy::html) around the router",
            )
            .into_response()
        })
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for CspNonce {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<CspNonce>().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_reference() {
        // RFC 4648 test vector, padded to 16 bytes: "foobarfoobarfoob"
        assert_eq!(&base64_16(b"foobarfoobarfoob"), b"Zm9vYmFyZm9vYmFyZm9vYg==");
    }

    #[test]
    fn nonces_differ() {
        let a = CspNonce::generate();
        assert_ne!(a, CspNonce::generate());
        assert_eq!(a.as_str().len(), 24);
    }
}
