//! One part of a multipart copy. Streamed: a ranged GET of exactly the source version
//! (pinned by version and ETag) flows straight into UploadPart, its checksum computed as it
//! goes, holding a constant amount of memory whatever the part's size. Such a body cannot be
//! sent twice, so the engine — not the SDK — retries a failed part, alone, from a fresh
//! ranged GET, a bounded number of times with backoff; the parts already sent are kept.
//! Copied: UploadPartCopy inside S3.

use aws_sdk_s3::types::CompletedPart;
use tracing::debug;

use super::attributes::copy_source;
use super::{Job, Replicator};
use crate::budget::STREAMED_PART_BYTES;
use crate::clock::backoff;
use crate::error::ReplicationError;
use crate::plan::transfer::Parts;
use crate::s3::body::Passthrough;

/// Attempts at one streamed part before the copy fails.
pub const PART_ATTEMPTS: u32 = 5;

pub(super) async fn send(
    r: &Replicator,
    job: &Job<'_>,
    upload_id: &str,
    parts: Parts,
    number: u64,
    server_side: bool,
) -> Result<CompletedPart, ReplicationError> {
    let range = parts.range(job.source.size, number);
    if server_side {
        return r
            .destination
            .bucket
            .upload_part_copy(job.dest_key, upload_id, number, &copy_source(r, job), range)
            .await;
    }
    let mut attempt = 1;
    loop {
        match stream(r, job, upload_id, number, range).await {
            Ok(part) => return Ok(part),
            Err(e) if e.is_retryable() && attempt < PART_ATTEMPTS && !changed(&e) => {
                debug!(number, attempt, error = %e, "part failed; sending it again");
                backoff(attempt).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// A source that changed cannot give this part again.
fn changed(e: &ReplicationError) -> bool {
    matches!(e, ReplicationError::SourceChanged { .. })
}

async fn stream(
    r: &Replicator,
    job: &Job<'_>,
    upload_id: &str,
    number: u64,
    (start, end): (u64, u64),
) -> Result<CompletedPart, ReplicationError> {
    let _held = r.budget.reserve(STREAMED_PART_BYTES).await;
    let key = &job.req.key;
    let got = r
        .source
        .get(
            key,
            job.source.version_id.as_deref(),
            Some((start, end)),
            Some(&job.source.etag),
        )
        .await?
        .ok_or_else(|| ReplicationError::SourceChanged {
            resource: r.source.resource(key),
        })?;
    let len = end - start + 1;
    r.destination
        .bucket
        .upload_part(
            job.dest_key,
            upload_id,
            number,
            Passthrough::new(got.body, len).into_byte_stream(),
            len,
            job.checksum.algorithm.clone(),
        )
        .await
}
