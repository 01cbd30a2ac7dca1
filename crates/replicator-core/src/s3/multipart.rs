//! Multipart uploads on a [`Bucket`]: create, upload or copy a part, complete, abort, and
//! list an upload's parts or a prefix's open uploads.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumType, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
};

use super::{
    no_such_upload, Attributes, Bucket, Condition, CopySource, OpenUpload, PutAnswer, UploadedPart,
    Write,
};
use crate::error::{classify, ReplicationError};
use crate::facts::FullChecksum;

impl Bucket {
    /// CreateMultipartUpload; the upload id.
    pub async fn create_upload(
        &self,
        key: &str,
        attributes: &Attributes,
    ) -> Result<String, ReplicationError> {
        let created = with_attributes!(
            self.client
                .create_multipart_upload()
                .bucket(&self.name)
                .key(key)
                .set_tagging(attributes.tagging.clone())
                .set_checksum_type(
                    attributes
                        .full_checksum
                        .as_ref()
                        .map(|_| ChecksumType::FullObject)
                ),
            attributes
        )
        .send()
        .await
        .map_err(|e| self.fail("s3:CreateMultipartUpload", key, e))?;
        Ok(created.upload_id().unwrap_or_default().to_owned())
    }

    /// UploadPart of `len` bytes from `body`. A streamed body cannot be sent twice: the
    /// caller retries a failed part with a fresh body.
    pub async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u64,
        body: ByteStream,
        len: u64,
        checksum: ChecksumAlgorithm,
    ) -> Result<CompletedPart, ReplicationError> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.name)
            .key(key)
            .upload_id(upload_id)
            .part_number(number as i32)
            .content_length(len as i64)
            .body(body)
            .checksum_algorithm(checksum)
            .send()
            .await
            .map_err(|e| self.fail("s3:UploadPart", key, e))?;
        Ok(completed_part!(number, &out))
    }

    /// UploadPartCopy of `range` (inclusive) from `source`.
    pub async fn upload_part_copy(
        &self,
        key: &str,
        upload_id: &str,
        number: u64,
        source: &CopySource<'_>,
        (start, end): (u64, u64),
    ) -> Result<CompletedPart, ReplicationError> {
        let out = self
            .client
            .upload_part_copy()
            .bucket(&self.name)
            .key(key)
            .upload_id(upload_id)
            .part_number(number as i32)
            .copy_source(crate::key::copy_source(
                source.bucket,
                source.key,
                source.version_id,
            ))
            .copy_source_if_match(source.etag)
            .copy_source_range(format!("bytes={start}-{end}"))
            .set_expected_source_bucket_owner(source.expected_owner.map(str::to_owned))
            .send()
            .await
            .map_err(|e| self.fail("s3:PutObject", key, e))?;
        let result = out
            .copy_part_result()
            .cloned()
            .unwrap_or_else(|| aws_sdk_s3::types::CopyPartResult::builder().build());
        Ok(completed_part!(number, &result))
    }

    /// CompleteMultipartUpload with `parts` (in part order).
    pub async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletedPart>,
        full_checksum: Option<&FullChecksum>,
        condition: &Condition,
    ) -> Result<Write<PutAnswer>, ReplicationError> {
        let complete = self
            .client
            .complete_multipart_upload()
            .bucket(&self.name)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .set_checksum_type(full_checksum.map(|_| ChecksumType::FullObject));
        let complete = with_checksum_value!(complete, full_checksum);
        let result = with_condition!(complete, condition).send().await;
        Ok(
            match self.write("s3:CompleteMultipartUpload", key, result)? {
                Write::Done(out) => Write::Done(PutAnswer {
                    version_id: out.version_id().map(str::to_owned),
                    etag: out.e_tag().unwrap_or_default().to_owned(),
                }),
                Write::LostRace => Write::LostRace,
            },
        )
    }

    /// AbortMultipartUpload; an upload that is already gone counts as aborted.
    pub async fn abort(&self, key: &str, upload_id: &str) -> Result<(), ReplicationError> {
        match self
            .client
            .abort_multipart_upload()
            .bucket(&self.name)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if no_such_upload(&e) => Ok(()),
            Err(e) => Err(self.fail("s3:AbortMultipartUpload", key, e)),
        }
    }

    /// The parts an upload has; `None` when the upload no longer exists (completed, or
    /// aborted by a lifecycle rule).
    pub async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<Option<Vec<UploadedPart>>, ReplicationError> {
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let listed = self
                .client
                .list_parts()
                .bucket(&self.name)
                .key(key)
                .upload_id(upload_id)
                .set_part_number_marker(marker.take())
                .send()
                .await;
            let page = match listed {
                Ok(page) => page,
                Err(e) if no_such_upload(&e) => return Ok(None),
                Err(e) => return Err(self.fail("s3:ListMultipartUploadParts", key, e)),
            };
            for p in page.parts() {
                let number = p.part_number().unwrap_or(0).max(0) as u64;
                parts.push(UploadedPart {
                    number,
                    size: p.size().unwrap_or(0).max(0) as u64,
                    part: completed_part!(number, p),
                });
            }
            if !page.is_truncated().unwrap_or(false) {
                return Ok(Some(parts));
            }
            marker = page.next_part_number_marker().map(str::to_owned);
        }
    }

    /// Every multipart upload open under `prefix`.
    pub async fn list_uploads(&self, prefix: &str) -> Result<Vec<OpenUpload>, ReplicationError> {
        let mut uploads = Vec::new();
        let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(&self.name)
                .prefix(prefix)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(id_marker.take())
                .send()
                .await
                .map_err(|e| {
                    classify(
                        &self.request("s3:ListBucketMultipartUploads", Some(prefix)),
                        e,
                    )
                })?;
            uploads.extend(page.uploads().iter().filter_map(|u| {
                Some(OpenUpload {
                    key: u.key()?.to_owned(),
                    upload_id: u.upload_id()?.to_owned(),
                    initiated_ms: u.initiated().map(|t| t.to_millis().unwrap_or(0))?,
                    initiator: u.initiator().and_then(|i| i.id()).map(str::to_owned),
                })
            }));
            if !page.is_truncated().unwrap_or(false) {
                return Ok(uploads);
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            id_marker = page.next_upload_id_marker().map(str::to_owned);
        }
    }
}
