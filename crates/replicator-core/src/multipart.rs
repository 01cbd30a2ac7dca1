//! Large objects: ranged GETs of the source feed UploadPart calls, several parts in flight
//! at once, each holding its bytes against the engine's memory budget. An upload that
//! cannot be completed is aborted, so no parts are left behind.

use std::time::Instant;

use aws_sdk_s3::operation::upload_part::UploadPartOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumMode, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
};
use futures::{StreamExt, TryStreamExt};
use tracing::debug;

use crate::copy::{
    kib, lost_race, read_body, replica_metadata, Condition, Replicator, SourceHead, WriteResult,
};
use crate::error::{classify, error_code, ReplicationError};
use crate::plan::{part_range, transfer_plan, Provenance, TransferPlan};
use crate::request::ObjectRequest;

/// Upper bound on parts in flight for one object, whatever the memory budget allows.
const MAX_PARTS_IN_FLIGHT: u64 = 16;

impl Replicator {
    pub(crate) async fn copy_multipart(
        &self,
        req: &ObjectRequest,
        dest_key: &str,
        head: &SourceHead,
        provenance: &Provenance,
        condition: &Condition,
        deadline: Option<Instant>,
    ) -> Result<WriteResult, ReplicationError> {
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
        let tagging = self.source_tagging(&req.key, head).await?;
        let metadata = replica_metadata(head, provenance, &self.dest_resource(dest_key))?;
        let created = self
            .clients
            .destination
            .create_multipart_upload()
            .bucket(&cfg.destination_bucket)
            .key(dest_key)
            .set_metadata(Some(metadata))
            .set_tagging(tagging)
            .set_content_type(head.content_type.clone())
            .set_content_encoding(head.content_encoding.clone())
            .set_content_disposition(head.content_disposition.clone())
            .set_content_language(head.content_language.clone())
            .set_cache_control(head.cache_control.clone())
            .set_expires(head.expires)
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(&cfg.destination_kms_key_id)
            .bucket_key_enabled(cfg.bucket_key_enabled)
            .set_storage_class(cfg.destination_storage_class.clone())
            .checksum_algorithm(cfg.checksum_algorithm.to_sdk())
            .send()
            .await
            .map_err(|e| {
                classify(
                    &self.dest_request("s3:CreateMultipartUpload", Some(dest_key)),
                    e,
                )
            })?;
        let upload_id = created.upload_id().unwrap_or_default().to_owned();
        debug!(upload_id, part_size, part_count, "multipart upload started");

        let result = self
            .upload_parts_and_complete(
                req,
                dest_key,
                head,
                &upload_id,
                (part_size, part_count),
                condition,
                deadline,
            )
            .await;
        let completed = matches!(result, Ok(WriteResult::Written { .. }));
        if !completed {
            if let Err(e) = self.abort_upload(dest_key, &upload_id).await {
                crate::copy::warn_abort_failed(&self.dest_resource(dest_key), &upload_id, &e);
            }
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn upload_parts_and_complete(
        &self,
        req: &ObjectRequest,
        dest_key: &str,
        head: &SourceHead,
        upload_id: &str,
        (part_size, part_count): (u64, u64),
        condition: &Condition,
        deadline: Option<Instant>,
    ) -> Result<WriteResult, ReplicationError> {
        let in_flight =
            (self.config.max_in_flight_bytes / part_size).clamp(1, MAX_PARTS_IN_FLIGHT) as usize;
        let mut parts: Vec<CompletedPart> = futures::stream::iter(1..=part_count)
            .map(|number| async move {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(ReplicationError::DeadlineReached {
                        resource: self.source_resource(&req.bucket, &req.key),
                    });
                }
                self.copy_part(req, dest_key, head, upload_id, part_size, number)
                    .await
            })
            .buffer_unordered(in_flight)
            .try_collect()
            .await?;
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
