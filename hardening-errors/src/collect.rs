//! Reading a body whole, within a byte limit and a frame limit.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http_body::Body;
use pin_project_lite::pin_project;

/// The most frames without bytes (empty data frames, trailers) [`collect_capped`] reads.
/// Frames with bytes are bounded by the byte limit already; these would not be, and a body
/// of them without end would keep the read going forever.
pub const MAX_EMPTY_FRAMES: usize = 1024;

/// Why [`collect_capped`] stopped before the end of the body.
#[derive(Debug, thiserror::Error)]
pub enum CollectError<E> {
    /// More bytes than the limit, or a body whose size hint says so before it is read.
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    /// More than [`MAX_EMPTY_FRAMES`] frames without bytes.
    #[error("the body sent more than {MAX_EMPTY_FRAMES} frames without data")]
    TooManyEmptyFrames,
    /// The body's own error.
    #[error("the body could not be read: {0}")]
    Body(#[source] E),
}

/// Reads `body` to its end into one [`Bytes`], stopping with an error past `max_bytes`
/// bytes or past [`MAX_EMPTY_FRAMES`] frames without bytes. Trailers are read and dropped.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use hardening_errors::{CollectError, collect_capped};
/// let body = axum::body::Body::from("hello");
/// assert_eq!(collect_capped(body, 5).await.unwrap(), "hello");
/// let body = axum::body::Body::from("hello");
/// assert!(matches!(collect_capped(body, 4).await, Err(CollectError::TooLarge(4))));
/// # });
/// ```
pub fn collect_capped<B>(body: B, max_bytes: usize) -> CollectCapped<B> {
    CollectCapped {
        body,
        read: Read::Empty,
        empty_frames: 0,
        max_bytes,
    }
}

pin_project! {
    /// The future of [`collect_capped`].
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct CollectCapped<B> {
        #[pin]
        body: B,
        read: Read,
        empty_frames: usize,
        max_bytes: usize,
    }
}

/// The bytes so far: one frame's kept as it came (no copy), several copied into one buffer.
#[derive(Debug)]
enum Read {
    Empty,
    One(Bytes),
    Many(BytesMut),
}

impl Read {
    fn len(&self) -> usize {
        match self {
            Self::Empty => 0,
            Self::One(bytes) => bytes.len(),
            Self::Many(buf) => buf.len(),
        }
    }

    fn push(&mut self, data: Bytes) {
        *self = match std::mem::replace(self, Self::Empty) {
            Self::Empty => Self::One(data),
            Self::One(first) => {
                let mut buf = BytesMut::with_capacity(first.len() + data.len());
                buf.extend_from_slice(&first);
                buf.extend_from_slice(&data);
                Self::Many(buf)
            }
            Self::Many(mut buf) => {
                buf.extend_from_slice(&data);
                Self::Many(buf)
            }
        };
    }

    fn take(&mut self) -> Bytes {
        match std::mem::replace(self, Self::Empty) {
            Self::Empty => Bytes::new(),
            Self::One(bytes) => bytes,
            Self::Many(buf) => buf.freeze(),
        }
    }
}

impl<B> Future for CollectCapped<B>
where
    B: Body<Data = Bytes>,
{
    type Output = Result<Bytes, CollectError<B::Error>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            // What is left, at least, already over the limit: refused unread.
            let len = this.read.len();
            let at_least = (len as u64).saturating_add(this.body.size_hint().lower());
            if at_least > *this.max_bytes as u64 {
                return Poll::Ready(Err(CollectError::TooLarge(*this.max_bytes)));
            }
            let Some(frame) = ready!(this.body.as_mut().poll_frame(cx)) else {
                return Poll::Ready(Ok(this.read.take()));
            };
            match frame.map_err(CollectError::Body)?.into_data() {
                Ok(data) if !data.is_empty() => {
                    if data.len() > *this.max_bytes - len {
                        return Poll::Ready(Err(CollectError::TooLarge(*this.max_bytes)));
                    }
                    this.read.push(data);
                }
                // An empty data frame, or trailers.
                _ => {
                    *this.empty_frames += 1;
                    if *this.empty_frames > MAX_EMPTY_FRAMES {
                        return Poll::Ready(Err(CollectError::TooManyEmptyFrames));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use std::collections::VecDeque;
    use std::task::Waker;

    use http_body::{Frame, SizeHint};

    use super::*;

    /// A body of these frames (`None`: a pending poll, which wakes itself), then its end.
    struct Frames {
        frames: VecDeque<Option<Result<Frame<Bytes>, &'static str>>>,
        polled: usize,
        hint: SizeHint,
    }

    fn frames(frames: impl IntoIterator<Item = Frame<Bytes>>) -> Frames {
        Frames {
            frames: frames.into_iter().map(|f| Some(Ok(f))).collect(),
            polled: 0,
            hint: SizeHint::new(),
        }
    }

    impl Body for Frames {
        type Data = Bytes;
        type Error = &'static str;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            self.polled += 1;
            match self.frames.pop_front() {
                None => Poll::Ready(None),
                Some(Some(frame)) => Poll::Ready(Some(frame)),
                Some(None) => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            }
        }

        fn size_hint(&self) -> SizeHint {
            self.hint
        }
    }

    /// Polls to the end (every pending poll here wakes itself at once).
    fn run(body: &mut Frames, max_bytes: usize) -> Result<Bytes, CollectError<&'static str>> {
        let mut read = std::pin::pin!(collect_capped(body, max_bytes));
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(out) = read.as_mut().poll(&mut cx) {
                return out;
            }
        }
    }

    fn data(s: &'static str) -> Frame<Bytes> {
        Frame::data(Bytes::from_static(s.as_bytes()))
    }

    #[test]
    fn reads_every_frame_up_to_the_byte_limit() {
        let mut body = frames([data("he"), data(""), data("llo")]);
        body.frames.insert(1, None);
        assert_eq!(run(&mut body, 5).unwrap(), "hello");
        let mut body = frames([data("he"), data("llo")]);
        assert!(matches!(run(&mut body, 4), Err(CollectError::TooLarge(4))));
        assert!(run(&mut frames([]), 0).unwrap().is_empty());
    }

    /// One frame is handed on as it came, not copied.
    #[test]
    fn one_frame_is_not_copied() {
        let bytes = Bytes::from(vec![7u8; 64]);
        let mut body = frames([
            Frame::data(bytes.clone()),
            Frame::trailers(Default::default()),
        ]);
        let read = run(&mut body, 64).unwrap();
        assert_eq!(read.as_ptr(), bytes.as_ptr());
    }

    #[test]
    fn a_body_whose_size_hint_is_over_the_limit_is_not_read() {
        let mut body = frames([data("hello")]);
        body.hint = SizeHint::with_exact(5);
        assert!(matches!(run(&mut body, 4), Err(CollectError::TooLarge(4))));
        assert_eq!(body.polled, 0);
    }

    /// Frames without bytes are counted; frames with bytes are not (a body uploaded in many
    /// small pieces is read whole).
    #[test]
    fn only_frames_without_bytes_are_capped() {
        for trailers in [false, true] {
            let empty = || {
                if trailers {
                    Frame::trailers(Default::default())
                } else {
                    data("")
                }
            };
            let mut body = frames((0..MAX_EMPTY_FRAMES).map(|_| empty()));
            assert!(run(&mut body, 0).unwrap().is_empty(), "{trailers}");
            let mut body = frames((0..100_000).map(|_| empty()));
            assert!(
                matches!(run(&mut body, 16), Err(CollectError::TooManyEmptyFrames)),
                "{trailers}"
            );
            assert_eq!(body.polled, MAX_EMPTY_FRAMES + 1, "{trailers}");
        }
        let mut body = frames((0..10 * MAX_EMPTY_FRAMES).map(|_| data("x")));
        assert_eq!(
            run(&mut body, 1 << 20).unwrap().len(),
            10 * MAX_EMPTY_FRAMES
        );
    }

    #[test]
    fn a_body_error_is_passed_on() {
        let mut body = frames([data("he")]);
        body.frames.push_back(Some(Err("reset")));
        assert!(matches!(
            run(&mut body, 16),
            Err(CollectError::Body("reset"))
        ));
    }
}
