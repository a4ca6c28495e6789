//! The request body's watcher: the body limit for bodies of unknown size (chunked uploads),
//! counted as they stream, and the limit's hit remembered, so that a request cut off by it
//! is answered 413 even when a layer inside rewraps the body's error and the handler can only
//! answer 400 ("could not be read"); and whether the body is waiting for the client, so that
//! a request timed out while its body was still arriving is answered 408 (the client was
//! slow), not 503. Some routes may be given a larger limit than the others
//! ([`RouteBodyLimits`](crate::routes::RouteBodyLimits)).

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

/// What the watcher saw of a request body.
#[derive(Debug)]
pub(crate) struct BodyWatch {
    /// The limit the body was held to (its route's, when that one is larger).
    limit: usize,
    limit_hit: AtomicBool,
    awaiting_client: AtomicBool,
}

impl BodyWatch {
    /// The limit the body was held to, in bytes.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// The limit cut the body off.
    pub(crate) fn limit_hit(&self) -> bool {
        self.limit_hit.load(Ordering::Relaxed)
    }

    /// The last read of the body waited for bytes the client has not sent yet.
    pub(crate) fn awaiting_client(&self) -> bool {
        self.awaiting_client.load(Ordering::Relaxed)
    }
}

pin_project! {
    /// A body limited to a number of bytes (`http_body_util::Limited`, whose error axum's
    /// extractors answer 413), which tells its [`BodyWatch`] when the limit cuts it off and
    /// whether it is waiting for the client.
    pub(crate) struct WatchedLimit<B> {
        #[pin]
        inner: Limited<B>,
        watch: Arc<BodyWatch>,
    }
}

impl<B> WatchedLimit<B> {
    /// `body` limited to `limit` bytes, and what is seen of it.
    pub(crate) fn new(body: B, limit: usize) -> (Self, Arc<BodyWatch>) {
        let watch = Arc::new(BodyWatch {
            limit,
            limit_hit: AtomicBool::new(false),
            awaiting_client: AtomicBool::new(false),
        });
        let body = Self {
            inner: Limited::new(body, limit),
            watch: watch.clone(),
        };
        (body, watch)
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
        this.watch
            .awaiting_client
            .store(polled.is_pending(), Ordering::Relaxed);
        if let Poll::Ready(Some(Err(e))) = &polled
            && e.is::<LengthLimitError>()
        {
            this.watch.limit_hit.store(true, Ordering::Relaxed);
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
