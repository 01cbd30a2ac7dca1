//! A multipart copy from start to end: resume the upload a stopped attempt kept, or create
//! one and record it in a manifest; send the missing parts, several in flight; complete it
//! on the job's condition; then forget the manifest (done), release it (stopped at the
//! deadline: the next attempt resumes), or abort the upload (any other failure, so no parts
//! are left behind).

use std::collections::BTreeMap;

use aws_sdk_s3::types::CompletedPart;
use futures::StreamExt;
use tracing::{debug, info, warn};

use super::{attributes, parts, Copied, Job, Replicator};
use crate::clock::now_ms;
use crate::error::ReplicationError;
use crate::outcome::Method;
use crate::plan::transfer::{part_range, Parts};
use crate::s3::{Condition, PutAnswer, Write};
use crate::state::uploads::{UploadManifest, UPLOAD_LEASE_MS};

/// What the manifest under a destination key says about starting a multipart copy.
enum Resume {
    /// No manifest, or a stale one (now discarded): start an upload and record it.
    Fresh,
    /// Another copy holds the recorded upload: start one of our own, unrecorded (the
    /// conditional completion decides between the two).
    Held,
    /// This copy's upload, released by an earlier attempt and now ours: the parts it has.
    Resumed(String, BTreeMap<u64, CompletedPart>),
}

/// Copies `job` in `parts`, streamed from ranged GETs or (`server_side`) with UploadPartCopy.
pub(super) async fn copy(
    r: &Replicator,
    job: &Job<'_>,
    parts: Parts,
    server_side: bool,
) -> Result<Write<Copied>, ReplicationError> {
    let uploads = &r.destination.uploads;
    let manifest_key = uploads.key_for(job.dest_key);
    let wanted = UploadManifest {
        dest_key: job.dest_key.to_owned(),
        upload_id: String::new(),
        source_etag: job.source.etag.clone(),
        source_version_id: job.source.version_id.clone(),
        size: job.source.size,
        part_size: parts.part_size,
        source_last_modified: job.source.last_modified,
        held_until_ms: now_ms() + UPLOAD_LEASE_MS,
    };
    let (upload_id, done, owned) = match resumable(r, &manifest_key, &wanted).await? {
        Resume::Resumed(upload_id, done) => (upload_id, done, true),
        Resume::Held => (create(r, job).await?, BTreeMap::new(), false),
        Resume::Fresh => {
            let upload_id = create(r, job).await?;
            let manifest = UploadManifest {
                upload_id: upload_id.clone(),
                ..wanted.clone()
            };
            // Only if no other copy recorded one meanwhile.
            let owned = match uploads
                .write(&manifest_key, &manifest, &Condition::Absent)
                .await
            {
                Ok(_) => true,
                Err(e) => {
                    // The copy goes on; only a resume after a deadline is lost.
                    debug!(error = %e, "multipart upload not recorded; it cannot be resumed");
                    false
                }
            };
            (upload_id, BTreeMap::new(), owned)
        }
    };
    let parts_resumed = done.len() as u64;
    if parts_resumed > 0 {
        info!(
            upload_id,
            parts_resumed,
            part_count = parts.part_count,
            "resuming multipart upload"
        );
    }
    debug!(
        upload_id,
        part_size = parts.part_size,
        part_count = parts.part_count,
        "multipart upload"
    );

    let result = send_and_complete(r, job, &upload_id, parts, done, server_side).await;
    match &result {
        Ok(Write::Done(_)) if owned => {
            if let Err(e) = uploads.forget(&manifest_key).await {
                warn!(error = %e, "could not remove the finished upload's manifest");
            }
        }
        Ok(Write::Done(_)) => {}
        // Stopped at the deadline: keep the upload, and release its manifest to the next
        // attempt.
        Err(ReplicationError::DeadlineReached { .. }) if owned => {
            let released = UploadManifest {
                upload_id: upload_id.clone(),
                held_until_ms: 0,
                ..wanted
            };
            match uploads
                .write(&manifest_key, &released, &Condition::None)
                .await
            {
                Ok(_) => info!(
                    upload_id,
                    "multipart copy stopped at the deadline; kept for the next attempt"
                ),
                Err(e) => {
                    warn!(error = %e, upload_id, "could not release the upload for the next attempt; it resumes after the lease")
                }
            }
        }
        // Nobody could resume an unrecorded upload; nor one that lost the race to complete.
        _ if !owned => abort(r, job.dest_key, &upload_id).await,
        _ => discard(r, job.dest_key, &upload_id, &manifest_key).await,
    }
    let method = if server_side {
        Method::ServerSideMultipart
    } else {
        Method::Multipart
    };
    Ok(match result? {
        Write::Done(answer) => Write::Done(Copied {
            method,
            version_id: answer.version_id,
            parts_resumed,
        }),
        Write::LostRace => Write::LostRace,
    })
}

/// What the manifest says: the upload to resume, with the parts it already has, if it
/// describes this very copy, nobody holds it and S3 still has it; a stale upload nobody
/// holds is aborted.
async fn resumable(
    r: &Replicator,
    manifest_key: &str,
    wanted: &UploadManifest,
) -> Result<Resume, ReplicationError> {
    let uploads = &r.destination.uploads;
    let Some(found) = uploads.read(manifest_key).await? else {
        return Ok(Resume::Fresh);
    };
    let (found, etag) = (found.value, found.etag);
    if found.dest_key != wanted.dest_key {
        // A hash collision with another key's upload: leave it alone.
        return Ok(Resume::Held);
    }
    if found.held_until_ms > now_ms() {
        return Ok(Resume::Held);
    }
    if !found.same_copy(wanted) {
        // The source changed (or the part size did): that upload can never complete.
        discard(r, &found.dest_key, &found.upload_id, manifest_key).await;
        return Ok(Resume::Fresh);
    }
    // Take the upload over, unless another attempt just did.
    let taken = UploadManifest {
        upload_id: found.upload_id.clone(),
        ..wanted.clone()
    };
    if uploads
        .write(manifest_key, &taken, &Condition::Matches(etag))
        .await
        .is_err()
    {
        return Ok(Resume::Held);
    }
    let Some(listed) = r
        .destination
        .bucket
        .list_parts(&wanted.dest_key, &found.upload_id)
        .await?
    else {
        // Gone (aborted by a lifecycle rule, or completed): start over.
        if let Err(e) = uploads.forget(manifest_key).await {
            warn!(error = %e, "could not remove a vanished upload's manifest");
        }
        return Ok(Resume::Fresh);
    };
    // Keep only parts that are exactly what this copy would send.
    let count = wanted.size.div_ceil(wanted.part_size);
    let parts = listed
        .into_iter()
        .filter(|p| {
            (1..=count).contains(&p.number) && {
                let (start, end) = part_range(wanted.size, wanted.part_size, p.number);
                p.size == end - start + 1
            }
        })
        .map(|p| (p.number, p.part))
        .collect();
    Ok(Resume::Resumed(found.upload_id, parts))
}

async fn create(r: &Replicator, job: &Job<'_>) -> Result<String, ReplicationError> {
    let attributes = attributes::for_replica(r, job).await?;
    r.destination
        .bucket
        .create_upload(job.dest_key, &attributes)
        .await
}

/// Sends the parts `done` lacks, then completes the upload on the job's condition.
async fn send_and_complete(
    r: &Replicator,
    job: &Job<'_>,
    upload_id: &str,
    plan: Parts,
    done: BTreeMap<u64, CompletedPart>,
    server_side: bool,
) -> Result<Write<PutAnswer>, ReplicationError> {
    let missing: Vec<u64> = (1..=plan.part_count)
        .filter(|n| !done.contains_key(n))
        .collect();
    let mut uploads = futures::stream::iter(missing)
        .map(|number| async move {
            if job.stop.now(number) {
                return Err(ReplicationError::DeadlineReached {
                    resource: r.source.resource(&job.req.key),
                });
            }
            parts::send(r, job, upload_id, plan, number, server_side).await
        })
        .buffer_unordered(plan.in_flight as usize);
    // At the deadline no new part starts, but the parts in flight finish: the next attempt
    // resumes after them. Any other failure ends the copy at once.
    let mut sent: Vec<CompletedPart> = Vec::with_capacity(plan.part_count as usize);
    let mut stopped = None;
    while let Some(part) = uploads.next().await {
        match part {
            Ok(p) => sent.push(p),
            Err(e @ ReplicationError::DeadlineReached { .. }) => stopped = Some(e),
            Err(e) => return Err(e),
        }
    }
    drop(uploads);
    if let Some(e) = stopped {
        return Err(e);
    }
    sent.extend(done.into_values());
    sent.sort_by_key(|p| p.part_number());
    r.destination
        .bucket
        .complete(job.dest_key, upload_id, sent, &job.condition)
        .await
}

/// Aborts an upload, reporting (not failing on) what cannot be done: the bucket's
/// lifecycle rule aborts what is left.
async fn abort(r: &Replicator, dest_key: &str, upload_id: &str) {
    if let Err(e) = r.destination.bucket.abort(dest_key, upload_id).await {
        warn!(resource = %r.destination.bucket.resource(dest_key), upload_id, error = %e,
            "could not abort multipart upload; the bucket's lifecycle rule must clean it up");
    }
}

/// Aborts an upload and forgets its manifest.
pub(super) async fn discard(r: &Replicator, dest_key: &str, upload_id: &str, manifest_key: &str) {
    abort(r, dest_key, upload_id).await;
    if let Err(e) = r.destination.uploads.forget(manifest_key).await {
        warn!(error = %e, "could not remove an abandoned upload's manifest");
    }
}
