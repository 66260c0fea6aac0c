//! Body wrappers: counting request bytes for the journal, and truncating a response for the
//! close-after-N-bytes fault.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt as _;

/// Wraps a body so that the bytes read through it are counted in the returned counter.
pub fn counting(body: Body) -> (Arc<AtomicU64>, Body) {
    let counter = Arc::new(AtomicU64::new(0));
    let c = counter.clone();
    let body = body.map_frame(move |frame| {
        if let Some(data) = frame.data_ref() {
            c.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        frame
    });
    (counter, Body::new(body))
}

/// A body that yields at most `limit` bytes of the inner body, then fails, so the server
/// aborts the connection mid-response.
pub struct Truncated {
    inner: Body,
    remaining: u64,
}

impl Truncated {
    /// Cuts `inner` after `limit` bytes.
    pub fn new(inner: Body, limit: u64) -> Self {
        Self {
            inner,
            remaining: limit,
        }
    }
}

/// The error a truncated body ends with.
#[derive(Debug, thiserror::Error)]
#[error("response cut by an injected close-after fault")]
pub struct Cut;

impl http_body::Body for Truncated {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.remaining == 0 {
            return Poll::Ready(Some(Err(Box::new(Cut))));
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(mut data) => {
                    let keep = usize::try_from(self.remaining)
                        .unwrap_or(usize::MAX)
                        .min(data.len());
                    data.truncate(keep);
                    self.remaining -= keep as u64;
                    Poll::Ready(Some(Ok(Frame::data(data))))
                }
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            // The inner body ended before the limit: cut anyway, the fault asked for a failure.
            Poll::Ready(None) => {
                self.remaining = 0;
                Poll::Ready(Some(Err(Box::new(Cut))))
            }
            other => other.map(|o| o.map(|r| r.map_err(Into::into))),
        }
    }

    fn size_hint(&self) -> SizeHint {
        // Unknown: the client must not be told a length the body will not deliver.
        SizeHint::default()
    }
}
