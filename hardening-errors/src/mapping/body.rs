use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// The response body of [`ProblemService`](crate::ProblemService): the inner service's
    /// body, untouched, or a problem's JSON.
    #[derive(Debug)]
    pub struct ProblemBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Problem { json: Option<Bytes> },
    }
}

impl<B> ProblemBody<B> {
    /// The inner service's body, passed through.
    pub fn inner(body: B) -> Self {
        Self {
            kind: Kind::Inner { body },
        }
    }

    /// An empty body (for answers such as a CORS preflight's 204).
    pub fn empty() -> Self {
        Self {
            kind: Kind::Problem { json: None },
        }
    }

    pub(crate) fn problem(json: Bytes) -> Self {
        Self {
            kind: Kind::Problem { json: Some(json) },
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
            KindProj::Problem { json } => Poll::Ready(json.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Problem { json } => json.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Problem { json } => {
                SizeHint::with_exact(json.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}
