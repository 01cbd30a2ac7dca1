//! Errors in the user's terms: which bucket, key, role or KMS key, what was denied, and
//! whether trying again can help.

use std::error::Error as StdError;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use thiserror::Error;

use crate::key::KeyError;

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Which principal made a request: tells the user which policy to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The function's own role (reads the source).
    Function,
    /// The assumed destination role.
    DestinationRole(String),
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Function => f.write_str("the function's own role"),
            Self::DestinationRole(arn) => write!(f, "destination role {arn}"),
        }
    }
}

/// One S3 request, described for an error message.
#[derive(Debug, Clone)]
pub struct Request {
    /// The IAM action the request needs, e.g. `s3:PutObject`.
    pub action: &'static str,
    pub bucket: String,
    pub key: Option<String>,
    pub principal: Principal,
    /// The KMS key the request encrypts with, when there is one.
    pub kms_key: Option<String>,
}

impl Request {
    fn resource(&self) -> String {
        match &self.key {
            Some(k) => format!("s3://{}/{}", self.bucket, k),
            None => format!("s3://{}", self.bucket),
        }
    }
}

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReplicationError {
    #[error("refused: the event names bucket {bucket:?}, but SOURCE_BUCKET is {expected:?}; nothing was copied")]
    ForeignBucket { bucket: String, expected: String },

    #[error("invalid event: {0}")]
    InvalidEvent(String),

    #[error("invalid object key: {0}")]
    InvalidKey(#[from] KeyError),

    #[error("access denied: {principal} may not {action} on {resource}{kms}: {message}")]
    AccessDenied {
        action: String,
        resource: String,
        principal: String,
        kms: String,
        message: String,
    },

    #[error("KMS key {key} cannot be used for {resource}: {code}: {message}")]
    KmsKeyUnusable {
        key: String,
        resource: String,
        code: String,
        message: String,
    },

    #[error(
        "bucket {bucket} does not exist or is not owned by the expected account{owner}: {message}"
    )]
    BucketUnavailable {
        bucket: String,
        owner: String,
        message: String,
    },

    #[error("could not assume destination role {role}: {message}")]
    AssumeRole {
        role: String,
        message: String,
        retryable: bool,
    },

    #[error("{action} on {resource} failed ({code}): {message}")]
    Service {
        action: &'static str,
        resource: String,
        code: String,
        message: String,
        retryable: bool,
        #[source]
        source: BoxError,
    },

    #[error("{resource}: {message}")]
    Rejected { resource: String, message: String },

    /// The source is in an archive (GLACIER, DEEP_ARCHIVE, an Intelligent-Tiering archive
    /// tier): S3 answers InvalidObjectState to a GET and ObjectNotInActiveTierError to a
    /// copy until it is restored ("GetObject", "CopyObject", S3 API Reference).
    #[error("{resource} is archived and cannot be read until it is restored ({code}: {message}); no replica was written. Restore it (aws s3api restore-object) and replicate it again")]
    Archived {
        resource: String,
        code: String,
        message: String,
    },

    /// S3 refused the replica's bytes: they did not match the checksum the write carried
    /// (the source's own full-object checksum, or the one computed as they were sent), so
    /// a byte changed between the source and the replica. Nothing was written; a new read
    /// of the source can succeed.
    #[error("{resource}: S3 refused the replica because its bytes did not match the checksum sent with them ({message}); nothing was written; will retry with a new read of the source")]
    ChecksumMismatch { resource: String, message: String },

    /// The source version has Object Lock settings and the destination bucket has no
    /// Object Lock: the replica would be unlocked, so none is written (native
    /// replication's failure reason `DstBucketObjectLockConfigMissing`).
    #[error("{resource} has Object Lock settings ({settings}) but destination bucket {bucket} has no Object Lock configuration (DstBucketObjectLockConfigMissing); no replica was written. Enable Object Lock on {bucket}, or exclude these objects")]
    ObjectLockConfigMissing {
        resource: String,
        bucket: String,
        settings: String,
    },

    #[error("the replicator's state object {resource} cannot be used: {reason}. The replicator did not write it as it is; look at it, and delete it to start afresh")]
    StateUnreadable { resource: String, reason: String },

    #[error(
        "the replica {resource} kept changing during {attempts} conditional writes; will retry"
    )]
    Contended { resource: String, attempts: u32 },

    #[error("source object {resource} changed while it was being copied; will retry")]
    SourceChanged { resource: String },

    #[error("stopped copying {resource} at the invocation's deadline; the next attempt copies it")]
    DeadlineReached { resource: String },

    #[error("another copy took over multipart upload {upload_id} of {resource} after this copy's hold on it ran out; will retry")]
    UploadTakenOver { resource: String, upload_id: String },
}

impl ReplicationError {
    /// Whether the same request, later, can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::AssumeRole { retryable, .. } | Self::Service { retryable, .. } => *retryable,
            Self::Contended { .. }
            | Self::SourceChanged { .. }
            | Self::DeadlineReached { .. }
            | Self::UploadTakenOver { .. }
            | Self::ChecksumMismatch { .. } => true,
            Self::ForeignBucket { .. }
            | Self::InvalidEvent(_)
            | Self::InvalidKey(_)
            | Self::AccessDenied { .. }
            | Self::KmsKeyUnusable { .. }
            | Self::BucketUnavailable { .. }
            | Self::Rejected { .. }
            | Self::Archived { .. }
            | Self::ObjectLockConfigMissing { .. }
            | Self::StateUnreadable { .. } => false,
        }
    }

    /// A short machine-readable kind, for metrics and Batch Operations result strings.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ForeignBucket { .. } => "ForeignBucket",
            Self::InvalidEvent(_) => "InvalidEvent",
            Self::InvalidKey(_) => "InvalidKey",
            Self::AccessDenied { .. } => "AccessDenied",
            Self::KmsKeyUnusable { .. } => "KmsKeyUnusable",
            Self::BucketUnavailable { .. } => "BucketUnavailable",
            Self::AssumeRole { .. } => "AssumeRole",
            Self::Service { .. } => "Service",
            Self::Rejected { .. } => "Rejected",
            Self::Archived { .. } => "Archived",
            Self::ObjectLockConfigMissing { .. } => "DstBucketObjectLockConfigMissing",
            Self::ChecksumMismatch { .. } => "ChecksumMismatch",
            Self::StateUnreadable { .. } => "StateUnreadable",
            Self::Contended { .. } => "Contended",
            Self::SourceChanged { .. } => "SourceChanged",
            Self::DeadlineReached { .. } => "DeadlineReached",
            Self::UploadTakenOver { .. } => "UploadTakenOver",
        }
    }
}

/// The error code S3 answered with, if it answered.
pub fn error_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(e) => e.err().code(),
        _ => None,
    }
}

/// The HTTP status S3 answered with, if it answered.
pub fn http_status<E>(err: &SdkError<E, aws_smithy_runtime_api::http::Response>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

const RETRYABLE_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
    "OperationAborted",
    "ExpiredToken",
    "TokenRefreshRequired",
    "ConditionalRequestConflict",
    "KMS.ThrottlingException",
    "KMS.LimitExceededException",
    "KMS.KMSInternalException",
    "KMS.DependencyTimeoutException",
];

const KMS_KEY_CODES: &[&str] = &[
    "KMS.DisabledException",
    "KMS.KMSInvalidStateException",
    "KMS.NotFoundException",
    "KMS.InvalidKeyUsageException",
    "KMS.IncorrectKeyException",
    "KMS.KeyUnavailableException",
];

/// What S3 answers a read (GET) and a copy (CopyObject, UploadPartCopy) of an archived
/// object that is not restored.
const ARCHIVED_CODES: &[&str] = &["InvalidObjectState", "ObjectNotInActiveTierError"];

/// Turns an SDK error into a [`ReplicationError`] that names the request's resource,
/// principal and action, and says whether retrying can help.
pub fn classify<E>(
    req: &Request,
    err: SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> ReplicationError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    if let Some(assume) = assume_role_failure(&err, &req.principal) {
        return assume;
    }
    let status = http_status(&err);
    let code = error_code(&err).map(str::to_owned);
    let message = match &err {
        SdkError::ServiceError(e) => e.err().message().unwrap_or_default().to_owned(),
        other => error_chain(other),
    };
    let resource = req.resource();
    let code_str = code.clone().unwrap_or_else(|| match status {
        Some(s) => format!("HTTP {s}"),
        None => "no response".to_owned(),
    });

    if let Some(c) = code.as_deref() {
        if KMS_KEY_CODES.contains(&c) {
            return ReplicationError::KmsKeyUnusable {
                key: req
                    .kms_key
                    .clone()
                    .unwrap_or_else(|| "(the source object's key)".into()),
                resource,
                code: c.to_owned(),
                message,
            };
        }
        // 403s, but not denials: no permission would let anyone read an archived object.
        if ARCHIVED_CODES.contains(&c) {
            return ReplicationError::Archived {
                resource,
                code: c.to_owned(),
                message,
            };
        }
        if c == "BadDigest" {
            return ReplicationError::ChecksumMismatch { resource, message };
        }
        // A write with lock settings to a bucket without Object Lock (checked before every
        // locked write; this is the answer when the bucket's configuration changed since).
        if c == "InvalidRequest"
            && (message.contains("Object Lock") || message.contains("ObjectLock"))
        {
            return ReplicationError::ObjectLockConfigMissing {
                resource,
                bucket: req.bucket.clone(),
                settings: "as the write asked".to_owned(),
            };
        }
        if c == "NoSuchBucket" {
            return ReplicationError::BucketUnavailable {
                bucket: req.bucket.clone(),
                owner: String::new(),
                message,
            };
        }
    }
    let is_denied = matches!(
        code.as_deref(),
        Some("AccessDenied" | "KMS.AccessDeniedException")
    ) || (status == Some(403)
        && !code
            .as_deref()
            .is_some_and(|c| RETRYABLE_CODES.contains(&c)));
    if is_denied {
        // S3 and KMS name the denied action in the message ("… not authorized to perform:
        // kms:GenerateDataKey on resource …"); prefer it over the action we expected.
        let action = denied_action(&message).unwrap_or(req.action).to_owned();
        let kms = match (&req.kms_key, action.starts_with("kms:")) {
            (Some(k), _) => format!(" (encrypting with KMS key {k}, which also needs kms:GenerateDataKey and kms:Decrypt)"),
            (None, true) => " (decrypting with the source object's KMS key)".to_owned(),
            _ => String::new(),
        };
        return ReplicationError::AccessDenied {
            action,
            resource,
            principal: req.principal.to_string(),
            kms,
            message: if message.is_empty() {
                format!(
                    "HTTP 403{}",
                    if req.action == "s3:GetObject" && req.key.is_some() {
                        " (a HEAD answers 403 instead of 404 when s3:ListBucket is missing)"
                    } else {
                        ""
                    }
                )
            } else {
                message
            },
        };
    }
    let retryable = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ConstructionFailure(_) => false,
        _ => {
            code.as_deref()
                .is_some_and(|c| RETRYABLE_CODES.contains(&c))
                || status.is_some_and(|s| s >= 500 || s == 429 || s == 409)
        }
    };
    ReplicationError::Service {
        action: req.action,
        resource,
        code: code_str,
        message,
        retryable,
        source: Box::new(err),
    }
}

/// Credential resolution for the destination client fails inside the request; find it in
/// the error chain and report it as the AssumeRole failure it is.
fn assume_role_failure<E: StdError + 'static>(
    err: &SdkError<E, aws_smithy_runtime_api::http::Response>,
    principal: &Principal,
) -> Option<ReplicationError> {
    let Principal::DestinationRole(role) = principal else {
        return None;
    };
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(creds) =
            e.downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
        {
            let message = error_chain(creds);
            let retryable = ![
                "AccessDenied",
                "not authorized",
                "InvalidClientTokenId",
                "ValidationError",
            ]
            .iter()
            .any(|m| message.contains(m))
                && !matches!(
                    creds,
                    aws_credential_types::provider::error::CredentialsError::InvalidConfiguration(
                        _
                    )
                );
            return Some(ReplicationError::AssumeRole {
                role: role.clone(),
                message,
                retryable,
            });
        }
        current = e.source();
    }
    None
}

/// "… not authorized to perform: kms:GenerateDataKey on resource: …" → `kms:GenerateDataKey`.
fn denied_action(message: &str) -> Option<&str> {
    let rest = message.split("perform: ").nth(1)?;
    let action = rest.split_whitespace().next()?.trim_end_matches([',', '.']);
    action.contains(':').then_some(action)
}

/// An error and its sources, joined: SDK errors put the useful part deep in the chain.
pub fn error_chain(err: &dyn StdError) -> String {
    let mut parts = vec![err.to_string()];
    let mut current = err.source();
    while let Some(e) = current {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        current = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denied_action_is_read_from_the_message() {
        let m = "User: arn:aws:sts::2:assumed-role/r/s is not authorized to perform: kms:GenerateDataKey on resource: arn:aws:kms:…";
        assert_eq!(denied_action(m), Some("kms:GenerateDataKey"));
        assert_eq!(denied_action("Access Denied"), None);
    }
}
