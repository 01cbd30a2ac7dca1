//! Every IAM action the replicator uses, in one place: the policy generator
//! (`replicator policies`), the templates (checked by a test) and the docs agree with these.

/// The function's own role, on source objects (`arn:aws:s3:::SOURCE/KEY_PREFIX*`).
pub const SOURCE_OBJECT_ACTIONS: &[&str] = &[
    "s3:GetObject",               // GetObject / HeadObject of the current version
    "s3:GetObjectVersion",        // … of a named version
    "s3:GetObjectTagging",        // tags of the current version
    "s3:GetObjectVersionTagging", // tags of a named version
    "s3:GetObjectRetention",      // Object Lock settings in HEAD: copied with the replica
    "s3:GetObjectLegalHold",      // … and the legal hold (without both, HEAD shows none)
    "s3:RestoreObject",           // RESTORE_ARCHIVED: an archived source's restore
];

/// The function's own role, on the source bucket.
pub const SOURCE_BUCKET_ACTIONS: &[&str] = &[
    "s3:ListBucket",         // sync's listing; HEAD answers 404 rather than 403
    "s3:ListBucketVersions", // the source's version order when two versions share a second
];

/// The function's own role, on the source bucket's KMS key (through S3 only).
pub const SOURCE_KEY_ACTIONS: &[&str] = &["kms:Decrypt"];

/// The destination role, on replicas (`arn:aws:s3:::DESTINATION/DESTINATION_PREFIX*`).
pub const DESTINATION_OBJECT_ACTIONS: &[&str] = &[
    "s3:PutObject",                  // PutObject, multipart uploads, the sync checkpoint
    "s3:PutObjectTagging",           // tags sent with the PUT
    "s3:GetObject",                  // HEAD of the replica (provenance), the sync checkpoint
    "s3:GetObjectVersion",           // verify --deep: the replica version HEAD saw, read whole
    "s3:GetObjectVersionTagging",    // verify --tags, tag changes: that version's tags
    "s3:PutObjectVersionTagging",    // a source tag change, on the replica version it names
    "s3:DeleteObjectVersionTagging", // … when the source's tags were removed
    "s3:GetObjectRetention",         // Object Lock settings in HEAD (a later change, lock-drift)
    "s3:GetObjectLegalHold",         // … and the legal hold
    "s3:PutObjectRetention",         // a locked source's retention, on the write and after
    "s3:PutObjectLegalHold",         // … and its legal hold
    "s3:AbortMultipartUpload",       // an upload that cannot complete is aborted
    "s3:ListMultipartUploadParts",   // resuming a multipart copy stopped at a deadline
];

/// The destination role, on its multipart-upload records only
/// (`DESTINATION_PREFIX.s3-fallback-replicator/uploads/*`): a finished copy removes its own
/// (a conditional delete, which also needs `s3:GetObject`, granted on the replicas' prefix).
pub const DESTINATION_STATE_ACTIONS: &[&str] = &["s3:DeleteObject"];

/// Where the multipart-upload manifests go.
pub fn uploads_prefix(destination_prefix: &str) -> String {
    format!(
        "{destination_prefix}{}uploads/",
        crate::state::RESERVED_PREFIX
    )
}

/// The destination role, on replicas, when REPLICATE_DELETES or SYNC_DELETE is on.
pub const DESTINATION_DELETE_ACTIONS: &[&str] = &["s3:DeleteObject"];

/// The destination role, on the doctor's probe objects only
/// (`DESTINATION_PREFIX.s3-fallback-replicator/doctor/*`): the probe removes its version.
pub const DESTINATION_PROBE_ACTIONS: &[&str] = &["s3:DeleteObjectVersion"];

/// The destination role, on the destination bucket.
pub const DESTINATION_BUCKET_ACTIONS: &[&str] = &[
    "s3:ListBucket",                 // sync's listing; HEAD answers 404 rather than 403
    "s3:ListBucketMultipartUploads", // the sweep finds uploads no record names
    "s3:GetBucketVersioning",        // doctor
    "s3:GetEncryptionConfiguration", // doctor
    "s3:GetBucketObjectLockConfiguration", // a locked source needs a bucket with Object Lock
];

/// The destination role, on the destination KMS key, through S3 only (condition
/// `kms:ViaService: s3.<destination region>.amazonaws.com`): nothing calls KMS directly
/// with them, not even the doctor, whose probe write proves them.
pub const DESTINATION_KEY_ACTIONS: &[&str] = &[
    "kms:GenerateDataKey", // SSE-KMS PUT and multipart
    "kms:Decrypt",         // completing an SSE-KMS multipart upload; reading the checkpoint
];

/// The destination role, on the destination KMS key, called directly: the doctor's check
/// that the key exists, is enabled and symmetric.
pub const DESTINATION_KEY_DESCRIBE_ACTIONS: &[&str] = &["kms:DescribeKey"];

/// The destination role, on itself: the doctor reads whom its trust policy trusts.
pub const DESTINATION_ROLE_ACTIONS: &[&str] = &["iam:GetRole"];

/// The `kms:ViaService` value the destination key grant requires.
pub fn s3_via_service(region: &str) -> String {
    format!("s3.{region}.amazonaws.com")
}

/// Where the doctor's probe objects go.
/// The destination role, on the audit's evidence in AUDIT_BUCKET (under
/// [`audit_prefix`]): writes each part and the summary, and HEADs the summary for the Object
/// Lock S3 applied (HEAD shows the lock only to a caller with s3:GetObjectRetention). In the
/// destination bucket itself, DESTINATION_OBJECT_ACTIONS already cover it.
pub const AUDIT_EVIDENCE_ACTIONS: &[&str] = &[
    "s3:PutObject",
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:GetObjectRetention",
];

/// Where the scheduled audit writes its evidence, per source bucket below it.
pub fn audit_prefix(destination_prefix: &str) -> String {
    format!(
        "{destination_prefix}{}audit/",
        crate::state::RESERVED_PREFIX
    )
}

pub fn probe_prefix(destination_prefix: &str) -> String {
    format!(
        "{destination_prefix}{}doctor/",
        crate::state::RESERVED_PREFIX
    )
}
