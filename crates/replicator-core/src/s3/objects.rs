//! Object reads and writes on a [`Bucket`]: HEAD, GET, tags, the version order of a key,
//! listings, PUT, CopyObject, DELETE.

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::get_object_tagging::{GetObjectTaggingError, GetObjectTaggingOutput};
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, MetadataDirective, ServerSideEncryption, TaggingDirective,
};
use aws_smithy_runtime_api::http::Response as HttpResponse;
use bytes::Bytes;

use super::{gone, lost_race, Attributes, Bucket, Condition, CopySource, PutAnswer, Write};
use crate::error::{classify, ReplicationError};

impl Bucket {
    /// HEAD of a key (a version of it); `None` when there is none, or it is a delete marker.
    pub async fn head(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<HeadObjectOutput>, ReplicationError> {
        let result = self
            .client
            .head_object()
            .bucket(&self.name)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(out)),
            Err(e) if gone(&e) => Ok(None),
            Err(e) => Err(self.fail("s3:GetObject", key, e)),
        }
    }

    /// HEAD with checksum mode on: also the stored checksums and their type (for an
    /// SSE-KMS object this needs kms:Decrypt, as a GET does). `None` when there is none.
    pub async fn head_with_checksums(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<HeadObjectOutput>, ReplicationError> {
        let result = self
            .client
            .head_object()
            .bucket(&self.name)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(out)),
            Err(e) if gone(&e) => Ok(None),
            Err(e) => Err(self.fail("s3:GetObject", key, e)),
        }
    }

    /// GET of a key (a version of it, a byte range of it); `None` when it is gone. With
    /// `if_match`, an object that changed is [`ReplicationError::SourceChanged`].
    pub async fn get(
        &self,
        key: &str,
        version_id: Option<&str>,
        range: Option<(u64, u64)>,
        if_match: Option<&str>,
    ) -> Result<Option<GetObjectOutput>, ReplicationError> {
        let result = self
            .client
            .get_object()
            .bucket(&self.name)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .set_if_match(if_match.map(str::to_owned))
            .set_range(range.map(|(start, end)| format!("bytes={start}-{end}")))
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(out)),
            Err(e) if if_match.is_some() && lost_race(&e) => Err(ReplicationError::SourceChanged {
                resource: self.resource(key),
            }),
            Err(e) if gone(&e) => Ok(None),
            Err(e) => Err(self.fail("s3:GetObject", key, e)),
        }
    }

    /// The tags of a key (a version of it), in the order S3 lists them.
    pub async fn tags(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Vec<(String, String)>, ReplicationError> {
        let out = self
            .tagging(key, version_id)
            .await
            .map_err(|e| self.fail("s3:GetObjectVersionTagging", key, e))?;
        Ok(tag_pairs(&out))
    }

    /// The tags of a key (a version of it); `None` when the key or version is gone.
    pub async fn tags_if_present(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<Vec<(String, String)>>, ReplicationError> {
        match self.tagging(key, version_id).await {
            Ok(out) => Ok(Some(tag_pairs(&out))),
            Err(e) if gone(&e) => Ok(None),
            Err(e) => Err(self.fail("s3:GetObjectVersionTagging", key, e)),
        }
    }

    /// GetObjectTagging of a key (a version of it), as the SDK answers it.
    async fn tagging(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<GetObjectTaggingOutput, SdkError<GetObjectTaggingError, HttpResponse>> {
        self.client
            .get_object_tagging()
            .bucket(&self.name)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .send()
            .await
    }

    /// Sets the tags of a key (a version of it) to `tags`, whole: PutObjectTagging, or
    /// DeleteObjectTagging when there are none. The data is not rewritten.
    pub async fn set_tags(
        &self,
        key: &str,
        version_id: Option<&str>,
        tags: &[(String, String)],
    ) -> Result<(), ReplicationError> {
        use aws_sdk_s3::types::{Tag, Tagging};
        let versioned = version_id.is_some();
        if tags.is_empty() {
            let action = if versioned {
                "s3:DeleteObjectVersionTagging"
            } else {
                "s3:DeleteObjectTagging"
            };
            self.client
                .delete_object_tagging()
                .bucket(&self.name)
                .key(key)
                .set_version_id(version_id.map(str::to_owned))
                .send()
                .await
                .map_err(|e| self.fail(action, key, e))?;
            return Ok(());
        }
        let set = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ReplicationError::Rejected {
                resource: self.resource(key),
                message: format!("a tag S3 returned cannot be sent back: {e}"),
            })?;
        let tagging = Tagging::builder()
            .set_tag_set(Some(set))
            .build()
            .map_err(|e| ReplicationError::Rejected {
                resource: self.resource(key),
                message: format!("tags: {e}"),
            })?;
        let action = if versioned {
            "s3:PutObjectVersionTagging"
        } else {
            "s3:PutObjectTagging"
        };
        self.client
            .put_object_tagging()
            .bucket(&self.name)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .tagging(tagging)
            .send()
            .await
            .map_err(|e| self.fail(action, key, e))?;
        Ok(())
    }

    /// Which of two versions of `key` S3 lists first (ListObjectVersions lists a key's
    /// versions newest first): `Greater` when `ours` is the newer, or when `theirs` no longer
    /// exists.
    pub async fn version_order(
        &self,
        key: &str,
        ours: &str,
        theirs: &str,
    ) -> Result<std::cmp::Ordering, ReplicationError> {
        use std::cmp::Ordering;
        let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(&self.name)
                .prefix(key)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|e| self.fail("s3:ListBucketVersions", key, e))?;
            for v in page.versions().iter().filter(|v| v.key() == Some(key)) {
                match v.version_id() {
                    Some(id) if id == ours => return Ok(Ordering::Greater),
                    Some(id) if id == theirs => return Ok(Ordering::Less),
                    _ => {}
                }
            }
            // Stop once the listing has moved past this key, or has no more pages.
            let past_key = page
                .versions()
                .iter()
                .any(|v| v.key().is_some_and(|k| k > key));
            if past_key || !page.is_truncated().unwrap_or(false) {
                return Ok(Ordering::Greater);
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            version_marker = page.next_version_id_marker().map(str::to_owned);
        }
    }

    /// One page of ListObjectsV2 under `prefix`, after `start_after` or from `token`.
    pub async fn list_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        token: Option<String>,
    ) -> Result<(Vec<aws_sdk_s3::types::Object>, Option<String>), ReplicationError> {
        let page = self
            .client
            .list_objects_v2()
            .bucket(&self.name)
            .prefix(prefix)
            .set_start_after(start_after.map(str::to_owned))
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| classify(&self.request("s3:ListBucket", Some(prefix)), e))?;
        let next = page
            .next_continuation_token()
            .filter(|_| page.is_truncated().unwrap_or(false))
            .map(str::to_owned);
        Ok((page.contents().to_vec(), next))
    }

    /// The folders directly under `prefix` (ListObjectsV2 with the delimiter `/`), every page.
    pub async fn folders(&self, prefix: &str) -> Result<Vec<String>, ReplicationError> {
        let mut folders = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.name)
                .prefix(prefix)
                .delimiter("/")
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| classify(&self.request("s3:ListBucket", Some(prefix)), e))?;
            folders.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_owned)),
            );
            token = page
                .next_continuation_token()
                .filter(|_| page.is_truncated().unwrap_or(false))
                .map(str::to_owned);
            if token.is_none() {
                return Ok(folders);
            }
        }
    }

    /// PutObject of a body held in memory.
    pub async fn put(
        &self,
        key: &str,
        attributes: &Attributes,
        body: Bytes,
        condition: &Condition,
    ) -> Result<Write<PutAnswer>, ReplicationError> {
        let put = with_attributes!(
            self.client
                .put_object()
                .bucket(&self.name)
                .key(key)
                .content_length(body.len() as i64)
                .body(ByteStream::from(body))
                .set_tagging(attributes.tagging.clone()),
            attributes
        );
        let put = with_checksum_value!(put, attributes.full_checksum.as_ref());
        let result = with_condition!(put, condition).send().await;
        Ok(match self.write("s3:PutObject", key, result)? {
            Write::Done(out) => Write::Done(PutAnswer {
                version_id: out.version_id().map(str::to_owned),
                etag: out.e_tag().unwrap_or_default().to_owned(),
            }),
            Write::LostRace => Write::LostRace,
        })
    }

    /// CopyObject from `source`, replacing metadata and tags with `attributes`'.
    pub async fn copy(
        &self,
        key: &str,
        attributes: &Attributes,
        source: &CopySource<'_>,
        condition: &Condition,
    ) -> Result<Write<PutAnswer>, ReplicationError> {
        let copy = with_attributes!(
            self.client
                .copy_object()
                .bucket(&self.name)
                .key(key)
                .copy_source(crate::key::copy_source(
                    source.bucket,
                    source.key,
                    source.version_id
                ))
                .copy_source_if_match(source.etag)
                .set_expected_source_bucket_owner(source.expected_owner.map(str::to_owned))
                .metadata_directive(MetadataDirective::Replace)
                .tagging_directive(TaggingDirective::Replace)
                .tagging(attributes.tagging.clone().unwrap_or_default()),
            attributes
        );
        let result = with_condition!(copy, condition).send().await;
        Ok(match self.write("s3:PutObject", key, result)? {
            Write::Done(out) => Write::Done(PutAnswer {
                version_id: out.version_id().map(str::to_owned),
                etag: out
                    .copy_object_result()
                    .and_then(|r| r.e_tag())
                    .unwrap_or_default()
                    .to_owned(),
            }),
            Write::LostRace => Write::LostRace,
        })
    }

    /// DeleteObject (a delete marker in a versioned bucket, or one version); the version id
    /// S3 answers with.
    pub async fn delete(
        &self,
        key: &str,
        version_id: Option<&str>,
        condition: &Condition,
    ) -> Result<Write<Option<String>>, ReplicationError> {
        let action = if version_id.is_some() {
            "s3:DeleteObjectVersion"
        } else {
            "s3:DeleteObject"
        };
        let delete = self
            .client
            .delete_object()
            .bucket(&self.name)
            .key(key)
            .set_version_id(version_id.map(str::to_owned));
        let delete = match condition {
            Condition::Matches(etag) => delete.if_match(etag),
            Condition::None | Condition::Absent => delete,
        };
        match delete.send().await {
            // A conditional delete of what is no longer there: nothing is left to delete.
            Err(e) if matches!(condition, Condition::Matches(_)) && gone(&e) => {
                Ok(Write::Done(None))
            }
            result => Ok(match self.write(action, key, result)? {
                Write::Done(out) => Write::Done(out.version_id().map(str::to_owned)),
                Write::LostRace => Write::LostRace,
            }),
        }
    }
}

/// A tag set as (key, value) pairs, in the order S3 lists them.
fn tag_pairs(out: &GetObjectTaggingOutput) -> Vec<(String, String)> {
    out.tag_set()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect()
}
