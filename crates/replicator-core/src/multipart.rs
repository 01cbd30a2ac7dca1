//! Large objects: ranged GETs of the source feed UploadPart calls, several parts in flight
//! at once, each holding its bytes against the engine's memory budget.
//!
//! A copy stopped by the invocation's deadline keeps its upload, recorded in a small manifest
//! (see [`crate::state`]); the next attempt for the same source version lists the uploaded
//! parts (ListParts) and sends only the missing ones. Any other failure aborts the upload, so
//! no parts are left behind; an upload whose source changed is aborted before starting over.

use std::collections::BTreeMap;

use aws_sdk_s3::operation::upload_part::UploadPartOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumMode, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::copy::now_ms;
use crate::copy::{
    kib, lost_race, read_body, replica_headers, replica_metadata, Condition, Replicator,
    SourceHead, Stop, WriteResult,
};
use crate::error::{classify, error_code, http_status, ReplicationError};
use crate::plan::{
    decide, part_range, transfer_plan, Decision, Provenance, SourceFacts, TransferPlan,
};
use crate::request::ObjectRequest;
use crate::state::{upload_manifest_key, Precondition};

/// Upper bound on parts in flight for one object, whatever the memory budget allows.
const MAX_PARTS_IN_FLIGHT: u64 = 16;

/// What an upload in progress was started for; it is resumed only for exactly that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct UploadManifest {
    dest_key: String,
    upload_id: String,
    source_etag: String,
    source_version_id: Option<String>,
    size: u64,
    part_size: u64,
    /// The source version's Last-Modified (seconds): tells the sweep whether a replica is
    /// newer than what this upload would write. 0 in manifests from before it was recorded.
    #[serde(default)]
    source_last_modified: i64,
    /// Until when (epoch ms) a copy is working on this upload: another copier of the same
    /// key neither resumes nor aborts it before then. 0 once released at a deadline.
    #[serde(default)]
    held_until_ms: i64,
}

/// How long a copy holds its upload unless it releases it: Lambda's longest invocation, and
/// a margin. A holder that dies without releasing frees the upload after this.
const UPLOAD_LEASE_MS: i64 = 16 * 60 * 1000;

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

/// A multipart copy's result: how it ended, and how many parts an earlier attempt had sent.
pub(crate) struct MultipartResult {
    pub write: WriteResult,
    pub parts_resumed: u64,
}

impl Replicator {
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn copy_multipart(
        &self,
        req: &ObjectRequest,
        dest_key: &str,
        head: &SourceHead,
        provenance: &Provenance,
        condition: &Condition,
        stop: &Stop,
        server_side: bool,
    ) -> Result<MultipartResult, ReplicationError> {
        let cfg = &self.config;
        let (part_size, part_count) =
            match transfer_plan(head.size, cfg.multipart_threshold, cfg.part_size) {
                TransferPlan::Multipart {
                    part_size,
                    part_count,
                } => (part_size, part_count),
                // Only reached when the threshold says multipart; a size at or under it is one
                // part, which CompleteMultipartUpload accepts at any size.
                TransferPlan::Single => (head.size.max(1), 1),
            };
        let manifest_key = upload_manifest_key(&cfg.destination_prefix, dest_key);
        let wanted = UploadManifest {
            dest_key: dest_key.to_owned(),
            upload_id: String::new(),
            source_etag: head.etag.clone(),
            source_version_id: head.version_id.clone(),
            size: head.size,
            part_size,
            source_last_modified: head.last_modified,
            held_until_ms: now_ms() + UPLOAD_LEASE_MS,
        };
        let (upload_id, done, owned) = match self.resumable(&manifest_key, &wanted).await? {
            Resume::Resumed(upload_id, done) => (upload_id, done, true),
            Resume::Held => {
                let upload_id = self.create_upload(req, dest_key, head, provenance).await?;
                (upload_id, BTreeMap::new(), false)
            }
            Resume::Fresh => {
                let upload_id = self.create_upload(req, dest_key, head, provenance).await?;
                let manifest = UploadManifest {
                    upload_id: upload_id.clone(),
                    ..wanted.clone()
                };
                // Only if no other copy recorded one meanwhile.
                let owned = match self
                    .write_state(&manifest_key, &manifest, Precondition::Absent)
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
                parts_resumed, part_count, "resuming multipart upload"
            );
        }
        debug!(upload_id, part_size, part_count, "multipart upload");

        let result = self
            .upload_parts_and_complete(
                req,
                dest_key,
                head,
                &upload_id,
                (part_size, part_count),
                done,
                condition,
                stop,
                server_side,
            )
            .await;
        match &result {
            Ok(WriteResult::Written { .. }) if owned => {
                if let Err(e) = self.delete_state(&manifest_key).await {
                    warn!(error = %e, "could not remove the finished upload's manifest");
                }
            }
            Ok(WriteResult::Written { .. }) => {}
            // Stopped at the deadline: keep the upload, and release its manifest to the next
            // attempt.
            Err(ReplicationError::DeadlineReached { .. }) if owned => {
                let released = UploadManifest {
                    upload_id: upload_id.clone(),
                    held_until_ms: 0,
                    ..wanted
                };
                match self
                    .write_state(&manifest_key, &released, Precondition::None)
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
            _ if !owned => {
                if let Err(e) = self.abort_upload(dest_key, &upload_id).await {
                    crate::copy::warn_abort_failed(&self.dest_resource(dest_key), &upload_id, &e);
                }
            }
            _ => {
                self.discard_upload(dest_key, &upload_id, &manifest_key)
                    .await
            }
        }
        result.map(|write| MultipartResult {
            write,
            parts_resumed,
        })
    }

    /// What the manifest says: the upload to resume, with the parts it already has, if it
    /// describes this very copy, nobody holds it and S3 still has it; a stale upload nobody
    /// holds is aborted.
    async fn resumable(
        &self,
        manifest_key: &str,
        wanted: &UploadManifest,
    ) -> Result<Resume, ReplicationError> {
        let Some((found, etag)) = self.read_state::<UploadManifest>(manifest_key).await? else {
            return Ok(Resume::Fresh);
        };
        if found.dest_key != wanted.dest_key {
            // A hash collision with another key's upload: leave it alone.
            return Ok(Resume::Held);
        }
        if found.held_until_ms > now_ms() {
            return Ok(Resume::Held);
        }
        let same = UploadManifest {
            upload_id: found.upload_id.clone(),
            held_until_ms: found.held_until_ms,
            ..wanted.clone()
        } == found;
        if !same {
            // The source changed (or the part size did): that upload can never complete.
            self.discard_upload(&found.dest_key, &found.upload_id, manifest_key)
                .await;
            return Ok(Resume::Fresh);
        }
        // Take the upload over, unless another attempt just did.
        let taken = UploadManifest {
            upload_id: found.upload_id.clone(),
            ..wanted.clone()
        };
        let precondition = match etag.as_deref() {
            Some(etag) => Precondition::Matches(etag),
            None => Precondition::None,
        };
        if self
            .write_state(manifest_key, &taken, precondition)
            .await
            .is_err()
        {
            return Ok(Resume::Held);
        }
        let mut parts = BTreeMap::new();
        let mut marker: Option<String> = None;
        loop {
            let listed = self
                .clients
                .destination
                .list_parts()
                .bucket(&self.config.destination_bucket)
                .key(&wanted.dest_key)
                .upload_id(&found.upload_id)
                .set_part_number_marker(marker.take())
                .send()
                .await;
            let page = match listed {
                Ok(page) => page,
                // Gone (aborted by a lifecycle rule, or completed): start over.
                Err(e)
                    if matches!(error_code(&e), Some("NoSuchUpload"))
                        || matches!(http_status(&e), Some(404 | 500)) =>
                {
                    if let Err(e) = self.delete_state(manifest_key).await {
                        warn!(error = %e, "could not remove a vanished upload's manifest");
                    }
                    return Ok(Resume::Fresh);
                }
                Err(e) => {
                    return Err(classify(
                        &self.dest_request("s3:ListMultipartUploadParts", Some(&wanted.dest_key)),
                        e,
                    ))
                }
            };
            for p in page.parts() {
                let number = p.part_number().unwrap_or(0).max(0) as u64;
                let size = p.size().unwrap_or(-1);
                let expected = (number >= 1).then(|| {
                    let (start, end) = part_range(wanted.size, wanted.part_size, number);
                    (end - start + 1) as i64
                });
                // Keep only parts that are exactly what this copy would send.
                if expected == Some(size) && number <= wanted.size.div_ceil(wanted.part_size) {
                    parts.insert(
                        number,
                        CompletedPart::builder()
                            .part_number(number as i32)
                            .set_e_tag(p.e_tag().map(str::to_owned))
                            .set_checksum_crc32(p.checksum_crc32().map(str::to_owned))
                            .set_checksum_crc32_c(p.checksum_crc32_c().map(str::to_owned))
                            .set_checksum_crc64_nvme(p.checksum_crc64_nvme().map(str::to_owned))
                            .set_checksum_sha1(p.checksum_sha1().map(str::to_owned))
                            .set_checksum_sha256(p.checksum_sha256().map(str::to_owned))
                            .build(),
                    );
                }
            }
            if !page.is_truncated().unwrap_or(false) {
                break;
            }
            marker = page.next_part_number_marker().map(str::to_owned);
        }
        Ok(Resume::Resumed(found.upload_id, parts))
    }

    /// Aborts the multipart uploads nobody will finish: those whose manifest no copy holds
    /// and whose replica another copy has since written from the same source version, or
    /// from a newer one. An upload that can still be resumed is kept. Returns how many were
    /// aborted; what cannot be read or aborted is logged and left to the next sweep and the
    /// bucket's lifecycle rule.
    pub async fn sweep_abandoned_uploads(
        &self,
        until: std::time::Instant,
    ) -> Result<u64, ReplicationError> {
        let cfg = &self.config;
        let prefix = format!(
            "{}{}uploads/",
            cfg.destination_prefix,
            crate::state::RESERVED_PREFIX
        );
        let mut aborted = 0;
        let mut token: Option<String> = None;
        loop {
            let page = self
                .clients
                .destination
                .list_objects_v2()
                .bucket(&cfg.destination_bucket)
                .prefix(&prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| classify(&self.dest_request("s3:ListBucket", Some(&prefix)), e))?;
            for manifest_key in page.contents().iter().filter_map(|o| o.key()) {
                if std::time::Instant::now() >= until {
                    return Ok(aborted);
                }
                match self.sweep_one(manifest_key).await {
                    Ok(true) => aborted += 1,
                    Ok(false) => {}
                    Err(e) => warn!(manifest_key, error = %e, "could not sweep an upload"),
                }
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated().unwrap_or(false) => token = Some(t.to_owned()),
                _ => return Ok(aborted),
            }
        }
    }

    /// One manifest of the sweep: `true` when its upload was aborted.
    async fn sweep_one(&self, manifest_key: &str) -> Result<bool, ReplicationError> {
        let Some((found, Some(etag))) = self.read_state::<UploadManifest>(manifest_key).await?
        else {
            return Ok(false);
        };
        if found.held_until_ms > now_ms() {
            return Ok(false);
        }
        let replica = self.head_replica(&found.dest_key).await?;
        let source = SourceFacts {
            version_id: found.source_version_id.clone(),
            etag: found.source_etag.clone(),
            last_modified: found.source_last_modified,
            sequencer: None,
        };
        let useless = match decide(&source, replica.as_ref()) {
            Decision::UpToDate => true,
            // Without the source's time, "newer" cannot be told from "older".
            Decision::ReplicaIsNewer => found.source_last_modified > 0,
            _ => false,
        };
        if !useless {
            return Ok(false);
        }
        // Hold it first, so a copy that takes it over meanwhile keeps it (and this gives up).
        let held = UploadManifest {
            held_until_ms: now_ms() + UPLOAD_LEASE_MS,
            ..found.clone()
        };
        if self
            .write_state(manifest_key, &held, Precondition::Matches(&etag))
            .await?
            .is_none()
        {
            return Ok(false);
        }
        info!(
            dest_key = found.dest_key,
            upload_id = found.upload_id,
            "aborting an upload another copy made useless"
        );
        self.discard_upload(&found.dest_key, &found.upload_id, manifest_key)
            .await;
        Ok(true)
    }

    async fn create_upload(
        &self,
        req: &ObjectRequest,
        dest_key: &str,
        head: &SourceHead,
        provenance: &Provenance,
    ) -> Result<String, ReplicationError> {
        let cfg = &self.config;
        let tagging = self.source_tagging(&req.key, head).await?;
        let metadata = replica_metadata(head, provenance, &self.dest_resource(dest_key))?;
        let created = replica_headers!(
            self.clients
                .destination
                .create_multipart_upload()
                .bucket(&cfg.destination_bucket)
                .key(dest_key)
                .set_metadata(Some(metadata))
                .set_tagging(tagging),
            head,
            cfg
        )
        .send()
        .await
        .map_err(|e| {
            classify(
                &self.dest_request("s3:CreateMultipartUpload", Some(dest_key)),
                e,
            )
        })?;
        Ok(created.upload_id().unwrap_or_default().to_owned())
    }

    /// Aborts an upload and forgets its manifest, reporting (not failing on) what cannot be
    /// done: the bucket's lifecycle rule aborts what is left.
    async fn discard_upload(&self, dest_key: &str, upload_id: &str, manifest_key: &str) {
        if let Err(e) = self.abort_upload(dest_key, upload_id).await {
            crate::copy::warn_abort_failed(&self.dest_resource(dest_key), upload_id, &e);
        }
        if let Err(e) = self.delete_state(manifest_key).await {
            warn!(error = %e, "could not remove an abandoned upload's manifest");
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn upload_parts_and_complete(
        &self,
        req: &ObjectRequest,
        dest_key: &str,
        head: &SourceHead,
        upload_id: &str,
        (part_size, part_count): (u64, u64),
        done: BTreeMap<u64, CompletedPart>,
        condition: &Condition,
        stop: &Stop,
        server_side: bool,
    ) -> Result<WriteResult, ReplicationError> {
        let in_flight =
            (self.config.max_in_flight_bytes / part_size).clamp(1, MAX_PARTS_IN_FLIGHT) as usize;
        let missing: Vec<u64> = (1..=part_count).filter(|n| !done.contains_key(n)).collect();
        let mut uploads = futures::stream::iter(missing)
            .map(|number| async move {
                if stop.now(number) {
                    return Err(ReplicationError::DeadlineReached {
                        resource: self.source_resource(&req.bucket, &req.key),
                    });
                }
                if server_side {
                    self.copy_part_server_side(req, dest_key, head, upload_id, part_size, number)
                        .await
                } else {
                    self.copy_part(req, dest_key, head, upload_id, part_size, number)
                        .await
                }
            })
            .buffer_unordered(in_flight);
        // At the deadline no new part starts, but the parts in flight finish: the next attempt
        // resumes after them. Any other failure ends the copy at once.
        let mut parts: Vec<CompletedPart> = Vec::with_capacity(part_count as usize);
        let mut stopped = None;
        while let Some(part) = uploads.next().await {
            match part {
                Ok(p) => parts.push(p),
                Err(e @ ReplicationError::DeadlineReached { .. }) => stopped = Some(e),
                Err(e) => return Err(e),
            }
        }
        drop(uploads);
        if let Some(e) = stopped {
            return Err(e);
        }
        parts.extend(done.into_values());
        parts.sort_by_key(|p| p.part_number());

        let mut complete = self
            .clients
            .destination
            .complete_multipart_upload()
            .bucket(&self.config.destination_bucket)
            .key(dest_key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            );
        complete = match condition {
            Condition::Absent => complete.if_none_match("*"),
            Condition::Matches(etag) => complete.if_match(etag),
        };
        match complete.send().await {
            Ok(out) => Ok(WriteResult::Written {
                version_id: out.version_id().map(str::to_owned),
            }),
            Err(e) if lost_race(&e) => Ok(WriteResult::LostRace),
            Err(e) => Err(classify(
                &self.dest_request("s3:CompleteMultipartUpload", Some(dest_key)),
                e,
            )),
        }
    }

    /// One part: ranged GET of exactly this source version, then UploadPart with a checksum.
    async fn copy_part(
        &self,
        req: &ObjectRequest,
        dest_key: &str,
        head: &SourceHead,
        upload_id: &str,
        part_size: u64,
        number: u64,
    ) -> Result<CompletedPart, ReplicationError> {
        let (start, end) = part_range(head.size, part_size, number);
        let len = end - start + 1;
        let _permit = self
            .budget
            .acquire_many(kib(len))
            .await
            .expect("budget semaphore is never closed");
        let source_resource = self.source_resource(&req.bucket, &req.key);
        // Pin the exact version, and the ETag too: an unversioned object rewritten during
        // the copy fails with 412 instead of producing a replica mixed from two objects.
        let got = self
            .clients
            .source
            .get_object()
            .bucket(&req.bucket)
            .key(&req.key)
            .set_version_id(head.version_id.clone())
            .if_match(&head.etag)
            .range(format!("bytes={start}-{end}"))
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await;
        let got = match got {
            Ok(got) => got,
            Err(e) if matches!(error_code(&e), Some("PreconditionFailed")) => {
                return Err(ReplicationError::SourceChanged {
                    resource: source_resource,
                })
            }
            Err(e) => {
                return Err(classify(
                    &self.source_request("s3:GetObject", &req.bucket, &req.key),
                    e,
                ))
            }
        };
        let body = read_body(got.body, len, &source_resource).await?;
        let out = self
            .clients
            .destination
            .upload_part()
            .bucket(&self.config.destination_bucket)
            .key(dest_key)
            .upload_id(upload_id)
            .part_number(number as i32)
            .content_length(len as i64)
            .body(ByteStream::from(body))
            .checksum_algorithm(self.config.checksum_algorithm.to_sdk())
            .send()
            .await
            .map_err(|e| classify(&self.dest_request("s3:UploadPart", Some(dest_key)), e))?;
        Ok(completed_part(number as i32, &out))
    }

    /// One part copied inside S3 (UploadPartCopy) from exactly this source version.
    async fn copy_part_server_side(
        &self,
        req: &ObjectRequest,
        dest_key: &str,
        head: &SourceHead,
        upload_id: &str,
        part_size: u64,
        number: u64,
    ) -> Result<CompletedPart, ReplicationError> {
        let (start, end) = part_range(head.size, part_size, number);
        let out = self
            .clients
            .destination
            .upload_part_copy()
            .bucket(&self.config.destination_bucket)
            .key(dest_key)
            .upload_id(upload_id)
            .part_number(number as i32)
            .copy_source(crate::key::copy_source(
                &req.bucket,
                &req.key,
                head.version_id.as_deref(),
            ))
            .copy_source_if_match(&head.etag)
            .copy_source_range(format!("bytes={start}-{end}"))
            .set_expected_source_bucket_owner(self.config.source_account_id.clone())
            .send()
            .await
            .map_err(|e| classify(&self.dest_request("s3:PutObject", Some(dest_key)), e))?;
        let r = out.copy_part_result();
        Ok(CompletedPart::builder()
            .part_number(number as i32)
            .set_e_tag(r.and_then(|r| r.e_tag()).map(str::to_owned))
            .set_checksum_crc32(r.and_then(|r| r.checksum_crc32()).map(str::to_owned))
            .set_checksum_crc32_c(r.and_then(|r| r.checksum_crc32_c()).map(str::to_owned))
            .set_checksum_crc64_nvme(r.and_then(|r| r.checksum_crc64_nvme()).map(str::to_owned))
            .set_checksum_sha1(r.and_then(|r| r.checksum_sha1()).map(str::to_owned))
            .set_checksum_sha256(r.and_then(|r| r.checksum_sha256()).map(str::to_owned))
            .build())
    }

    pub(crate) async fn abort_upload(
        &self,
        dest_key: &str,
        upload_id: &str,
    ) -> Result<(), ReplicationError> {
        self.clients
            .destination
            .abort_multipart_upload()
            .bucket(&self.config.destination_bucket)
            .key(dest_key)
            .upload_id(upload_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                classify(
                    &self.dest_request("s3:AbortMultipartUpload", Some(dest_key)),
                    e,
                )
            })
    }
}

/// The part as CompleteMultipartUpload wants it, with whichever checksum S3 computed.
fn completed_part(number: i32, out: &UploadPartOutput) -> CompletedPart {
    CompletedPart::builder()
        .part_number(number)
        .set_e_tag(out.e_tag().map(str::to_owned))
        .set_checksum_crc32(out.checksum_crc32().map(str::to_owned))
        .set_checksum_crc32_c(out.checksum_crc32_c().map(str::to_owned))
        .set_checksum_crc64_nvme(out.checksum_crc64_nvme().map(str::to_owned))
        .set_checksum_sha1(out.checksum_sha1().map(str::to_owned))
        .set_checksum_sha256(out.checksum_sha256().map(str::to_owned))
        .build()
}
