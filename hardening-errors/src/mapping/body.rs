use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// The response body of [`ProblemService`](crate::ProblemService): the inner service's
    /// body, untouched, or a problem's JSON (or another small answer of the layer's own).
    #[derive(Debug)]
    pub struct ProblemBody<B> {
        #[pin]
        kind: Kind<B>,
        // Something that must live exactly as long as the body (a concurrency permit).
        guard: Option<Box<dyn std::any::Any + Send + Sync>>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Full { bytes: Option<Bytes> },
    }
}

impl<B> ProblemBody<B> {
    /// The inner service's body, passed through.
    pub fn inner(body: B) -> Self {
        Self {
            kind: Kind::Inner { body },
            guard: None,
        }
    }

    /// An empty body (for answers such as a CORS preflight's 204).
    pub fn empty() -> Self {
        Self {
            kind: Kind::Full { bytes: None },
            guard: None,
        }
    }

    /// Keeps `guard` alive until this body is dropped: after its last frame has been sent, or
    /// when the client goes away. For permits that must cover the whole response.
    #[must_use]
    pub fn with_guard(mut self, guard: impl std::any::Any + Send + Sync) -> Self {
        self.guard = Some(Box::new(guard));
        self
    }

    /// A body of these bytes (a problem's JSON, or a small answer such as a health check's).
    pub fn full(bytes: Bytes) -> Self {
        Self {
            kind: Kind::Full { bytes: Some(bytes) },
            guard: None,
        }
    }

    /// This body as an axum [`Body`](axum::body::Body), boxed at most once. The inner
    /// service's body is handed over as it is, so behind an axum router (whose bodies are
    /// axum bodies already) a passed-through response gets no box at all; axum would
    /// otherwise box this wrapper once more for every response.
    ///
    /// ```
    /// use http_body::Body as _;
    /// let inner = axum::body::Body::from("hello");
    /// let body = hardening_errors::ProblemBody::inner(inner).into_axum_body();
    /// assert_eq!(body.size_hint().exact(), Some(5));
    /// ```
    pub fn into_axum_body(self) -> axum::body::Body
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        match self {
            Self {
                kind: Kind::Inner { body },
                guard: None,
            } => axum::body::Body::new(body),
            other => axum::body::Body::new(other),
        }
    }
}

impl<B> Body for ProblemBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Full { bytes } => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Full { bytes } => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Full { bytes } => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}
