//! Object bodies, checked for length as they arrive: [`read_whole`] collects a small body
//! into one buffer of exactly its announced size (never more than the caller reserved), and
//! [`Passthrough`] hands a ranged GET's body straight to an UploadPart, chunk by chunk, so a
//! part of any size crosses the function without being held.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::error::ReplicationError;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

fn body_error(resource: &str, code: &str, message: String, source: BoxError) -> ReplicationError {
    ReplicationError::Service {
        action: "s3:GetObject",
        resource: resource.to_owned(),
        code: code.into(),
        message,
        retryable: true,
        source,
    }
}

/// Reads a whole body and checks it is exactly `expected` bytes long.
///
/// The bytes land in one buffer of exactly that size as they arrive, so a body costs its
/// size in memory once (collecting the chunks and then joining them would cost it twice);
/// a body longer than announced is an error as soon as it shows, not after it is read.
pub async fn read_whole(
    mut body: ByteStream,
    expected: u64,
    resource: &str,
) -> Result<Bytes, ReplicationError> {
    let mut buffer = bytes::BytesMut::with_capacity(expected as usize);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            body_error(
                resource,
                "BodyRead",
                crate::error::error_chain(&e),
                Box::new(e),
            )
        })?;
        if (buffer.len() + chunk.len()) as u64 > expected {
            return Err(body_error(
                resource,
                "LongBody",
                format!("S3 announced {expected} bytes and sent more"),
                "body longer than announced".into(),
            ));
        }
        buffer.extend_from_slice(&chunk);
    }
    if buffer.len() as u64 != expected {
        return Err(body_error(
            resource,
            "TruncatedBody",
            format!("read {} bytes, S3 announced {expected}", buffer.len()),
            "truncated body".into(),
        ));
    }
    Ok(buffer.freeze())
}

/// A GET's body passed on as another request's body, announcing exactly `expected` bytes.
///
/// It holds no data of its own: each chunk goes on as it comes, so the HTTP client's
/// buffers are all the memory a part takes. A source body that ends early or runs long
/// fails the request it feeds (the part is then sent again from a fresh GET); a source's
/// trailers are not passed on.
pub struct Passthrough {
    inner: SdkBody,
    expected: u64,
    seen: u64,
}

/// Why a passed-through body failed.
#[derive(Debug, thiserror::Error)]
pub enum PassthroughError {
    #[error("the source body ended after {seen} of {expected} bytes")]
    Truncated { seen: u64, expected: u64 },
    #[error("the source body is longer than the {expected} bytes announced")]
    TooLong { expected: u64 },
    #[error("reading the source body failed: {0}")]
    Read(BoxError),
}

impl Passthrough {
    pub fn new(body: ByteStream, expected: u64) -> Self {
        Self {
            inner: body.into_inner(),
            expected,
            seen: 0,
        }
    }

    /// As a request body (ByteStream) of exactly `expected` bytes.
    pub fn into_byte_stream(self) -> ByteStream {
        ByteStream::new(SdkBody::from_body_1_x(self))
    }
}

impl Body for Passthrough {
    type Data = Bytes;
    type Error = PassthroughError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, PassthroughError>>> {
        loop {
            let (seen, expected) = (self.seen, self.expected);
            return Poll::Ready(match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers of the source's answer
                    };
                    let seen = seen + data.len() as u64;
                    if seen > expected {
                        Some(Err(PassthroughError::TooLong { expected }))
                    } else {
                        self.seen = seen;
                        Some(Ok(Frame::data(data)))
                    }
                }
                Some(Err(e)) => Some(Err(PassthroughError::Read(e))),
                None if seen < expected => {
                    Some(Err(PassthroughError::Truncated { seen, expected }))
                }
                None => None,
            });
        }
    }

    fn is_end_stream(&self) -> bool {
        self.seen == self.expected && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.expected - self.seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn whole_bodies_are_exactly_as_announced() {
        let ok = read_whole(ByteStream::from_static(b"abc"), 3, "r").await;
        assert_eq!(ok.unwrap(), Bytes::from_static(b"abc"));
        for announced in [2, 4] {
            let err = read_whole(ByteStream::from_static(b"abc"), announced, "r")
                .await
                .unwrap_err();
            assert!(err.is_retryable(), "{err}");
        }
    }

    #[tokio::test]
    async fn a_passed_through_body_fails_when_short_or_long() {
        let collect = |body: &'static [u8], expected| async move {
            Passthrough::new(ByteStream::from_static(body), expected)
                .collect()
                .await
                .map(|c| c.to_bytes())
        };
        assert_eq!(
            collect(b"abcd", 4).await.unwrap(),
            Bytes::from_static(b"abcd")
        );
        assert!(matches!(
            collect(b"abc", 4).await,
            Err(PassthroughError::Truncated {
                seen: 3,
                expected: 4
            })
        ));
        assert!(matches!(
            collect(b"abcde", 4).await,
            Err(PassthroughError::TooLong { expected: 4 })
        ));
        let hint = Passthrough::new(ByteStream::from_static(b"ab"), 2).size_hint();
        assert_eq!(hint.exact(), Some(2));
    }
}
