//! The body limit for bodies of unknown size (chunked uploads): counted as they stream, and
//! the limit's hit remembered, so that a request cut off by it is answered 413 even when a
//! layer inside rewraps the body's error and the handler can only answer 400 ("could not be
//! read").

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use hardening_errors::Problem;
use http::StatusCode;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::{LengthLimitError, Limited};
use pin_project_lite::pin_project;

/// The problem for a body over the limit (declared, or cut off as it streamed).
pub(crate) fn too_large(limit: usize) -> Problem {
    Problem::new(StatusCode::PAYLOAD_TOO_LARGE).with_detail(format!(
        "the request body is larger than this service accepts ({limit} bytes)"
    ))
}

pin_project! {
    /// A body limited to a number of bytes (`http_body_util::Limited`, whose error axum's
    /// extractors answer 413), which also sets `hit` when it cuts the body off.
    pub(crate) struct WatchedLimit<B> {
        #[pin]
        inner: Limited<B>,
        hit: Arc<AtomicBool>,
    }
}

impl<B> WatchedLimit<B> {
    /// `body` limited to `limit` bytes, and the flag set when the limit cuts it off.
    pub(crate) fn new(body: B, limit: usize) -> (Self, Arc<AtomicBool>) {
        let hit = Arc::new(AtomicBool::new(false));
        let body = Self {
            inner: Limited::new(body, limit),
            hit: hit.clone(),
        };
        (body, hit)
    }
}

impl<B> HttpBody for WatchedLimit<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(Some(Err(e))) = &polled
            && e.is::<LengthLimitError>()
        {
            this.hit.store(true, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
