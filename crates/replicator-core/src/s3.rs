//! The S3 seam: one thin function per operation the engine uses, on a [`Bucket`] (a client,
//! a bucket, and who is asking). Each applies the write's [`Condition`], recognises a lost
//! conditional race, and classifies every other error once, in the user's terms (which
//! bucket, key, principal, action and KMS key). Nothing above this module builds an SDK
//! request or inspects an SDK error.

use std::collections::HashMap;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedPart, StorageClass};

use crate::error::{classify, error_code, http_status, Principal, ReplicationError, Request};
use crate::facts::{ContentHeaders, FullChecksum, LockSettings};

type Response = aws_smithy_runtime_api::http::Response;

/// The condition a write carries on the object it replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Whatever is there.
    None,
    /// If-None-Match: * — only if there is no object yet.
    Absent,
    /// If-Match: only if the object is still this ETag.
    Matches(String),
}

/// A conditional write's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write<T> {
    Done(T),
    /// 412 PreconditionFailed / 409 ConditionalRequestConflict: another writer got there
    /// first (or, after a lost answer, our own earlier attempt did).
    LostRace,
}

/// What a replica write carries besides its body: the source's content headers and user
/// metadata, the tags, SSE-KMS with the destination key, the storage class and the
/// additional checksum. PutObject, CopyObject and CreateMultipartUpload take the same.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attributes {
    pub headers: ContentHeaders,
    pub metadata: HashMap<String, String>,
    /// The `x-amz-tagging` value (URL query form); `None` for no tags.
    pub tagging: Option<String>,
    pub kms_key_id: String,
    pub bucket_key_enabled: bool,
    pub storage_class: Option<StorageClass>,
    pub checksum: Option<ChecksumAlgorithm>,
    /// The source's full-object checksum the replica must have: sent with a PUT, and a
    /// multipart upload is of type FULL_OBJECT (its completion sends the value).
    pub full_checksum: Option<FullChecksum>,
    /// Object Lock retention and legal hold, as the source version has them.
    pub lock: LockSettings,
}

impl Attributes {
    /// JSON under SSE-KMS with `kms_key_id`, and nothing else (the replicator's own state).
    pub fn json(kms_key_id: &str, bucket_key_enabled: bool) -> Self {
        Self {
            headers: ContentHeaders {
                content_type: Some("application/json".to_owned()),
                ..ContentHeaders::default()
            },
            kms_key_id: kms_key_id.to_owned(),
            bucket_key_enabled,
            ..Self::default()
        }
    }
}

/// The source of a server-side copy, pinned to one version and its ETag.
#[derive(Debug, Clone)]
pub struct CopySource<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub version_id: Option<&'a str>,
    pub etag: &'a str,
    pub expected_owner: Option<&'a str>,
}

/// A multipart upload in progress, as ListMultipartUploads reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenUpload {
    pub key: String,
    pub upload_id: String,
    /// Milliseconds since the epoch.
    pub initiated_ms: i64,
    /// Who started it (for an IAM principal, its ARN).
    pub initiator: Option<String>,
}

/// A part an upload already has, as ListParts reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadedPart {
    pub number: u64,
    pub size: u64,
    pub part: CompletedPart,
}

macro_rules! with_attributes {
    ($builder:expr, $a:expr) => {{
        let a: &Attributes = $a;
        $builder
            .set_content_type(a.headers.content_type.clone())
            .set_content_encoding(a.headers.content_encoding.clone())
            .set_content_disposition(a.headers.content_disposition.clone())
            .set_content_language(a.headers.content_language.clone())
            .set_cache_control(a.headers.cache_control.clone())
            .set_expires(a.headers.expires)
            .set_website_redirect_location(a.headers.website_redirect_location.clone())
            .set_metadata((!a.metadata.is_empty()).then(|| a.metadata.clone()))
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(&a.kms_key_id)
            .bucket_key_enabled(a.bucket_key_enabled)
            .set_storage_class(a.storage_class.clone())
            .set_checksum_algorithm(a.checksum.clone())
            .set_object_lock_mode(
                a.lock
                    .mode
                    .as_deref()
                    .map(aws_sdk_s3::types::ObjectLockMode::from),
            )
            .set_object_lock_retain_until_date(
                a.lock
                    .retain_until_ms
                    .map(aws_sdk_s3::primitives::DateTime::from_millis),
            )
            .set_object_lock_legal_hold_status(
                a.lock
                    .legal_hold
                    .then_some(aws_sdk_s3::types::ObjectLockLegalHoldStatus::On),
            )
    }};
}

/// A request that can carry a full-object checksum value (PutObject,
/// CompleteMultipartUpload): the value for its algorithm's header.
macro_rules! with_checksum_value {
    ($builder:expr, $full:expr) => {{
        let builder = $builder;
        match $full {
            None => builder,
            Some(c) => {
                let v = c.value.clone();
                match c.algorithm {
                    ChecksumAlgorithm::Crc64Nvme => builder.checksum_crc64_nvme(v),
                    ChecksumAlgorithm::Crc32C => builder.checksum_crc32_c(v),
                    ChecksumAlgorithm::Crc32 => builder.checksum_crc32(v),
                    ChecksumAlgorithm::Sha256 => builder.checksum_sha256(v),
                    ChecksumAlgorithm::Sha1 => builder.checksum_sha1(v),
                    _ => builder,
                }
            }
        }
    }};
}

macro_rules! with_condition {
    ($builder:expr, $condition:expr) => {{
        let builder = $builder;
        match $condition {
            Condition::None => builder,
            Condition::Absent => builder.if_none_match("*"),
            Condition::Matches(etag) => builder.if_match(etag),
        }
    }};
}

/// The CompletedPart CompleteMultipartUpload wants, with whichever checksum S3 reported.
macro_rules! completed_part {
    ($number:expr, $out:expr) => {{
        let out = $out;
        CompletedPart::builder()
            .part_number($number as i32)
            .set_e_tag(out.e_tag().map(str::to_owned))
            .set_checksum_crc32(out.checksum_crc32().map(str::to_owned))
            .set_checksum_crc32_c(out.checksum_crc32_c().map(str::to_owned))
            .set_checksum_crc64_nvme(out.checksum_crc64_nvme().map(str::to_owned))
            .set_checksum_sha1(out.checksum_sha1().map(str::to_owned))
            .set_checksum_sha256(out.checksum_sha256().map(str::to_owned))
            .build()
    }};
}

pub mod body;
pub mod clients;
mod lock;
mod multipart;
mod restore;

pub use restore::Restoring;
mod objects;

/// 412 PreconditionFailed, or 409 ConditionalRequestConflict.
pub(crate) fn lost_race<E: ProvideErrorMetadata>(e: &SdkError<E, Response>) -> bool {
    matches!(
        error_code(e),
        Some("PreconditionFailed" | "ConditionalRequestConflict")
    ) || matches!(http_status(e), Some(412 | 409))
}

/// The object or version does not exist (any more): NoSuchKey, NoSuchVersion, a HEAD 404,
/// or 405 for a version that is a delete marker.
pub(crate) fn gone<E: ProvideErrorMetadata>(e: &SdkError<E, Response>) -> bool {
    matches!(
        error_code(e),
        Some("NoSuchKey" | "NoSuchVersion" | "NotFound")
    ) || matches!(http_status(e), Some(404 | 405))
}

pub(crate) fn no_such_upload<E: ProvideErrorMetadata>(e: &SdkError<E, Response>) -> bool {
    matches!(error_code(e), Some("NoSuchUpload")) || http_status(e) == Some(404)
}

/// A client on one bucket, acting as one principal.
#[derive(Debug, Clone)]
pub struct Bucket {
    client: aws_sdk_s3::Client,
    name: String,
    principal: Principal,
    /// The KMS key this principal's writes encrypt with (named in write errors).
    kms_key: Option<String>,
}

impl Bucket {
    pub fn new(
        client: aws_sdk_s3::Client,
        name: impl Into<String>,
        principal: Principal,
        kms_key: Option<String>,
    ) -> Self {
        Self {
            client,
            name: name.into(),
            principal,
            kms_key,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// `s3://bucket/key`, for messages.
    pub fn resource(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.name)
    }

    /// The request, described for an error: the action it needs and on what.
    pub fn request(&self, action: &'static str, key: Option<&str>) -> Request {
        let writes = matches!(
            action,
            "s3:PutObject"
                | "s3:CreateMultipartUpload"
                | "s3:UploadPart"
                | "s3:CompleteMultipartUpload"
        );
        Request {
            action,
            bucket: self.name.clone(),
            key: key.map(str::to_owned),
            principal: self.principal.clone(),
            kms_key: writes.then(|| self.kms_key.clone()).flatten(),
        }
    }

    pub(super) fn fail<E>(
        &self,
        action: &'static str,
        key: &str,
        e: SdkError<E, Response>,
    ) -> ReplicationError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        classify(&self.request(action, Some(key)), e)
    }

    pub(super) fn write<T, E>(
        &self,
        action: &'static str,
        key: &str,
        result: Result<T, SdkError<E, Response>>,
    ) -> Result<Write<T>, ReplicationError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match result {
            Ok(out) => Ok(Write::Done(out)),
            Err(e) if lost_race(&e) => Ok(Write::LostRace),
            Err(e) => Err(self.fail(action, key, e)),
        }
    }
}

/// What S3 answered to a write that landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutAnswer {
    pub version_id: Option<String>,
    pub etag: String,
}
