//! A multipart copy from start to end: resume an upload a stopped attempt kept for this very
//! source version, or create one and record it; send the missing parts, several in flight;
//! complete it on the job's condition; then forget its record (done), release it (stopped
//! at the deadline: the next attempt resumes), or abort the upload (any other failure, so no
//! parts are left behind).
//!
//! Each upload has its own record (see [`crate::state::uploads`]), written and removed only
//! on the ETag its holder read, so two copies of one key never overwrite or drop each
//! other's. A completion whose answer was lost is found out (HEAD of the replica, then
//! whether the upload still exists) rather than taken for a failure.

use std::collections::BTreeMap;

use aws_sdk_s3::types::CompletedPart;
use futures::StreamExt;
use tracing::{debug, info, warn};

use super::hold::Held;
use super::kept::{abort, discard, holder_id, useless};
use super::landed::{ambiguous, landed};
use super::{attributes, parts, Copied, Job, Replicator};
use crate::clock::now_ms;
use crate::error::ReplicationError;
use crate::outcome::Method;
use crate::plan::transfer::{part_range, Parts};
use crate::s3::{PutAnswer, Write};
use crate::state::uploads::{Record, UploadManifest};

/// What the records of the replica key offer this copy.
#[derive(Default)]
struct Claim {
    /// An upload of exactly this copy, released by a stopped attempt and now taken over:
    /// its record, id and the parts it has.
    resumed: Option<(Record, String, BTreeMap<u64, CompletedPart>)>,
    /// The key's other uploads: once this copy completes, those it made useless (of this
    /// source version or an older one) are aborted.
    others: Vec<(Record, UploadManifest)>,
}

/// Copies `job` in `parts`, streamed from ranged GETs or (`server_side`) with UploadPartCopy.
pub(super) async fn copy(
    r: &Replicator,
    job: &Job<'_>,
    parts: Parts,
    server_side: bool,
) -> Result<Write<Copied>, ReplicationError> {
    let uploads = &r.destination.uploads;
    let wanted = UploadManifest {
        dest_key: job.dest_key.to_owned(),
        upload_id: String::new(),
        source_etag: job.source.etag.clone(),
        source_version_id: job.source.version_id.clone(),
        size: job.source.size,
        part_size: parts.part_size,
        source_last_modified: job.source.last_modified,
        held_until_ms: now_ms() + r.config.transfer.upload_lease_ms,
        holder: holder_id(),
    };
    let claim = claim(r, &wanted).await?;
    let (upload_id, record, done) = match claim.resumed {
        Some((record, upload_id, done)) => (upload_id, Some(record), done),
        None => {
            let upload_id = create(r, job).await?;
            let manifest = UploadManifest {
                upload_id: upload_id.clone(),
                ..wanted.clone()
            };
            let record = match uploads.record(&manifest).await {
                Ok(record) => record,
                Err(e) => {
                    // The copy goes on; only a resume after a deadline is lost.
                    debug!(error = %e, "multipart upload not recorded; it cannot be resumed");
                    None
                }
            };
            (upload_id, record, BTreeMap::new())
        }
    };
    let mut held = Held::new(
        r,
        record,
        UploadManifest {
            upload_id: upload_id.clone(),
            ..wanted
        },
    );
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
    let sent = send_and_complete(r, job, &upload_id, parts, done, server_side, &mut held).await;
    let result = find_out(r, job, &upload_id, sent).await;
    finish(r, job.dest_key, &upload_id, held, &result).await;
    if matches!(result, Ok(Write::Done(_))) {
        made_useless(r, job, claim.others).await;
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

/// The uploads this copy may resume: released (nobody holds them) and started for exactly
/// this copy. The first that can be taken over and still exists is resumed with the parts
/// it has that are exactly what this copy would send.
async fn claim(r: &Replicator, wanted: &UploadManifest) -> Result<Claim, ReplicationError> {
    let uploads = &r.destination.uploads;
    let now = now_ms();
    let mut others = Vec::new();
    let mut records = uploads.of(&wanted.dest_key).await?.into_iter();
    while let Some((record, found)) = records.next() {
        if !found.same_copy(wanted) || found.held(now) {
            others.push((record, found));
            continue;
        }
        let taken = UploadManifest {
            upload_id: found.upload_id.clone(),
            ..wanted.clone()
        };
        // Taken over only if nobody changed it since it was read.
        let Some(record) = uploads.update(&record, &taken).await? else {
            continue;
        };
        let bucket = &r.destination.bucket;
        let Some(listed) = bucket
            .list_parts(&wanted.dest_key, &found.upload_id)
            .await?
        else {
            // Gone (completed, or aborted by a lifecycle rule): its record goes too.
            if let Err(e) = uploads.forget(&record).await {
                warn!(error = %e, "could not remove a vanished upload's record");
            }
            continue;
        };
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
        others.extend(records);
        return Ok(Claim {
            resumed: Some((record, found.upload_id, parts)),
            others,
        });
    }
    Ok(Claim {
        resumed: None,
        others,
    })
}

/// After this copy completed: the key's released uploads its replica made useless.
async fn made_useless(r: &Replicator, job: &Job<'_>, others: Vec<(Record, UploadManifest)>) {
    let replica = crate::facts::ReplicaFacts::ours(String::new(), job.provenance.clone());
    let now = now_ms();
    for (record, manifest) in others.into_iter().filter(|(_, m)| !m.held(now)) {
        match useless(r, &manifest, Some(&replica)).await {
            Ok(true) => {
                discard(r, record, manifest).await;
            }
            Ok(false) => {}
            Err(e) => warn!(error = %e, "could not tell whether an upload is still of use"),
        }
    }
}

async fn create(r: &Replicator, job: &Job<'_>) -> Result<String, ReplicationError> {
    let attributes = attributes::for_replica(r, job).await?;
    r.destination
        .bucket
        .create_upload(job.dest_key, &attributes)
        .await
}

/// Sends the parts `done` lacks, then completes the upload on the job's condition, renewing
/// the hold on its record as it goes; a lost hold ends it with a retryable error.
async fn send_and_complete(
    r: &Replicator,
    job: &Job<'_>,
    upload_id: &str,
    plan: Parts,
    done: BTreeMap<u64, CompletedPart>,
    server_side: bool,
    held: &mut Held,
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
    // resumes after them. Any other failure ends the copy at once. The hold on the record is
    // renewed on time, however long a part takes.
    let mut sent: Vec<CompletedPart> = Vec::with_capacity(plan.part_count as usize);
    let mut stopped = None;
    let renewal = tokio::time::sleep_until(held.due());
    tokio::pin!(renewal);
    loop {
        tokio::select! {
            part = uploads.next() => match part {
                Some(Ok(p)) => sent.push(p),
                Some(Err(e @ ReplicationError::DeadlineReached { .. })) => stopped = Some(e),
                Some(Err(e)) => return Err(e),
                None => break,
            },
            () = &mut renewal => {
                held.renew_if_due(r).await;
                if held.lost {
                    return Err(held.taken_over(r));
                }
                renewal.as_mut().reset(held.due());
            }
        }
    }
    drop(uploads);
    if let Some(e) = stopped {
        return Err(e);
    }
    sent.extend(done.into_values());
    sent.sort_by_key(|p| p.part_number());
    held.renew_if_due(r).await;
    if held.lost {
        return Err(held.taken_over(r));
    }
    r.destination
        .bucket
        .complete(
            job.dest_key,
            upload_id,
            sent,
            job.checksum.full.as_ref(),
            &job.condition,
        )
        .await
}

/// After a completion whose answer says nothing certain — no answer, a 5xx, NoSuchUpload,
/// or a lost race that may have been lost to its own earlier attempt (the SDK retried a
/// completion that had landed) — finds out what happened: the replica made from this source
/// version, and this upload no longer open, mean it completed.
async fn find_out(
    r: &Replicator,
    job: &Job<'_>,
    upload_id: &str,
    sent: Result<Write<PutAnswer>, ReplicationError>,
) -> Result<Write<PutAnswer>, ReplicationError> {
    let uncertain = match &sent {
        Ok(Write::LostRace) => true,
        Err(e) => ambiguous(e),
        Ok(Write::Done(_)) => false,
    };
    if !uncertain {
        return sent;
    }
    let Ok(Some(version_id)) = landed(r, job).await else {
        return sent;
    };
    match r
        .destination
        .bucket
        .list_parts(job.dest_key, upload_id)
        .await
    {
        Ok(None) => {
            info!(
                upload_id,
                "the completion's answer was lost; the replica is written"
            );
            Ok(Write::Done(PutAnswer {
                version_id,
                etag: String::new(),
            }))
        }
        // Still open: the replica is another copy's, of the same version.
        Ok(Some(_)) => Ok(Write::LostRace),
        Err(_) => sent,
    }
}

/// What becomes of the upload and its record once the copy has ended.
async fn finish(
    r: &Replicator,
    dest_key: &str,
    upload_id: &str,
    held: Held,
    result: &Result<Write<PutAnswer>, ReplicationError>,
) {
    if held.lost {
        return;
    }
    let uploads = &r.destination.uploads;
    match (result, held.record) {
        (Ok(Write::Done(_)), Some(record)) => {
            if let Err(e) = uploads.forget(&record).await {
                warn!(error = %e, "could not remove the finished upload's record");
            }
        }
        (Ok(Write::Done(_)), None) => {}
        // Stopped at the deadline: keep the upload, and release its record to the next
        // attempt (only if it is still ours).
        (Err(ReplicationError::DeadlineReached { .. }), Some(record)) => {
            let released = UploadManifest {
                held_until_ms: 0,
                ..held.manifest
            };
            match uploads.update(&record, &released).await {
                Ok(Some(_)) => info!(
                    upload_id,
                    "multipart copy stopped at the deadline; kept for the next attempt"
                ),
                Ok(None) => warn!(upload_id, "the upload's record changed under its holder"),
                Err(e) => {
                    warn!(error = %e, upload_id, "could not release the upload for the next attempt; it resumes after the lease")
                }
            }
        }
        // Nobody could resume an unrecorded upload; nor one that lost the race to complete.
        (_, None) => abort(r, dest_key, upload_id).await,
        // The record goes first: an upload another copy took over is theirs, never aborted.
        (_, Some(record)) => match uploads.forget(&record).await {
            Ok(true) => abort(r, dest_key, upload_id).await,
            Ok(false) => info!(upload_id, "another copy holds this upload now; left to it"),
            Err(e) if held.manifest.held(now_ms()) => {
                warn!(error = %e, "could not remove the upload's record; aborting the upload it names");
                abort(r, dest_key, upload_id).await;
            }
            Err(e) => warn!(error = %e, upload_id,
                "could not remove the upload's record; the sweep aborts its upload"),
        },
    }
}
