//! Panics in a streamed response body: the handler has returned and the headers are out, so
//! there is no 500 to send. The panic is caught where the body is polled, logged (secrets
//! redacted) and reported as one `panicked` security event, and the body ends with an error,
//! so the server cuts the response off, as the panic would have, without it unwinding
//! through the server's connection task.

use std::net::IpAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hardening_errors::RequestId;
use http_body::{Body as HttpBody, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::access_log::{BODY_ERROR, PANICKED, StreamedLog};
use crate::security_event::SecurityEvent;

pin_project! {
    /// A response body whose panics become one `panicked` event and a body error.
    pub(crate) struct PanicReportingBody<B> {
        #[pin]
        inner: B,
        request_id: RequestId,
        client_ip: Option<IpAddr>,
        // The request's span (`Span::none()` when no subscriber wants it), for the event,
        // entered while the inner body is polled.
        span: tracing::Span,
        panicked: bool,
        // The access-log event, written when the body ends (or, dropped unfinished,
        // as `cancelled`).
        log: Option<StreamedLog>,
    }
}

impl<B> PanicReportingBody<B> {
    pub(crate) fn new(
        inner: B,
        request_id: RequestId,
        client_ip: Option<IpAddr>,
        span: tracing::Span,
        log: Option<StreamedLog>,
    ) -> Self {
        Self {
            inner,
            request_id,
            client_ip,
            span,
            panicked: false,
            log,
        }
    }
}

impl<B> HttpBody for PanicReportingBody<B>
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
        if *this.panicked {
            return Poll::Ready(None);
        }
        let mut inner = this.inner;
        let span: &tracing::Span = this.span;
        // In the request's span, as the handler ran: what a stream logs as it is sent (a
        // server-sent events stream, a model's tokens, a `TraceLayer` inside's `on_eos`)
        // carries the request's id. Entering `Span::none()` does nothing.
        let polled = catch_unwind(AssertUnwindSafe(|| {
            let _entered = span.enter();
            inner.as_mut().poll_frame(cx)
        }));
        match polled {
            Ok(polled) => {
                let polled = polled.map(|frame| frame.map(|f| f.map_err(Into::into)));
                if let (Some(log), Poll::Ready(frame)) = (this.log.as_mut(), &polled) {
                    match frame {
                        None => log.end(None),
                        Some(Ok(frame)) => log.polled(frame, inner.is_end_stream()),
                        // A `Hardening` inside (nested in this one) caught the panic.
                        Some(Err(e)) if caught_panic(&**e) => log.end(Some(PANICKED)),
                        Some(Err(_)) => log.end(Some(BODY_ERROR)),
                    }
                }
                polled
            }
            Err(payload) => {
                *this.panicked = true;
                this.span.in_scope(|| {
                    hardening_errors::log_panic(
                        &*payload,
                        *this.request_id,
                        "the response body panicked; the response was cut off",
                    );
                });
                SecurityEvent::Panicked.emit(this.span, *this.request_id, *this.client_ip);
                if let Some(log) = this.log.as_mut() {
                    log.end(Some(PANICKED));
                }
                hardening_errors::drop_panic_payload(payload);
                Poll::Ready(Some(Err(Box::new(BodyPanicked))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.panicked || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The error a body ends with when [`PanicReportingBody`] caught its panic.
#[derive(Debug, thiserror::Error)]
#[error("the response body panicked")]
struct BodyPanicked;

/// Whether `error` is (or wraps, as an axum body's error does) a caught panic's.
fn caught_panic(error: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(error), |e| e.source()).any(|e| e.is::<BodyPanicked>())
}
