//! `--deep`: both objects read and hashed, range by range, without holding either. Each
//! range of both sides is one ranged GET pinned to the version and ETag the HEADs saw,
//! hashed with SHA-256 chunk by chunk as it arrives; a few ranges of an object are read at
//! once, and a limit shared by every object bounds the ranges in flight, so memory is the
//! HTTP client's buffers for those ranges whatever the objects' sizes (up to 48.8 TiB).

use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use super::classify::Deep;
use crate::error::ReplicationError;
use crate::s3::Bucket;

/// Bytes per ranged GET.
pub const RANGE_BYTES: u64 = 8 * 1024 * 1024;
/// Ranges of one object read at once.
const RANGES_PER_OBJECT: usize = 4;

/// One side of the comparison: an exact object version.
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    pub bucket: &'a Bucket,
    pub key: &'a str,
    pub version_id: Option<&'a str>,
    pub etag: &'a str,
}

/// Reads both sides of `size` bytes and compares them range by range; stops at the first
/// range that differs.
pub async fn compare(
    source: Side<'_>,
    replica: Side<'_>,
    size: u64,
    in_flight: &Semaphore,
) -> Result<Deep, ReplicationError> {
    let ranges = size.div_ceil(RANGE_BYTES);
    let mut digests = futures::stream::iter(0..ranges)
        .map(|i| async move {
            let start = i * RANGE_BYTES;
            let end = (start + RANGE_BYTES).min(size) - 1;
            let _permit = in_flight.acquire().await.expect("never closed");
            let (a, b) = futures::join!(
                hash_range(source, start, end),
                hash_range(replica, start, end)
            );
            Ok::<_, ReplicationError>((start, a?, b?))
        })
        .buffered(RANGES_PER_OBJECT);
    let mut whole = Sha256::new();
    while let Some(range) = digests.next().await {
        let (start, a, b) = range?;
        if a != b {
            return Ok(Deep::Differs { offset: start });
        }
        whole.update(a);
    }
    Ok(Deep::Equal {
        digest: hex(&whole.finalize()),
    })
}

/// SHA-256 of bytes `start..=end` of one side, read as they arrive.
async fn hash_range(side: Side<'_>, start: u64, end: u64) -> Result<[u8; 32], ReplicationError> {
    let resource = side.bucket.resource(side.key);
    let out = side
        .bucket
        .get(
            side.key,
            side.version_id,
            Some((start, end)),
            Some(side.etag),
        )
        .await?
        .ok_or_else(|| ReplicationError::SourceChanged {
            resource: resource.clone(),
        })?;
    let mut body = out.body;
    let mut hasher = Sha256::new();
    let mut seen = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| read_error(&resource, crate::error::error_chain(&e)))?;
        seen += chunk.len() as u64;
        hasher.update(&chunk);
    }
    if seen != end - start + 1 {
        return Err(read_error(
            &resource,
            format!(
                "bytes {start}-{end}: read {seen} bytes, expected {}",
                end - start + 1
            ),
        ));
    }
    Ok(hasher.finalize().into())
}

fn read_error(resource: &str, message: String) -> ReplicationError {
    ReplicationError::Service {
        action: "s3:GetObject",
        resource: resource.to_owned(),
        code: "BodyRead".into(),
        message: message.clone(),
        retryable: true,
        source: message.into(),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest `compare` reports for equal objects with these bytes (tests).
pub fn digest_of(bytes: &[u8]) -> String {
    let mut whole = Sha256::new();
    for range in bytes.chunks(RANGE_BYTES as usize) {
        whole.update(Sha256::digest(range));
    }
    hex(&whole.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_over_the_ranges() {
        let empty = hex(&Sha256::new().finalize());
        assert_eq!(digest_of(b""), empty);
        let one = hex(&Sha256::digest(Sha256::digest(b"abc")));
        assert_eq!(digest_of(b"abc"), one);
    }
}
