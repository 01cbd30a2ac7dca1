//! What a check answers — passed with a detail, or failed with the detail, its cause and
//! the fix — and the helpers that describe an SDK error and an IAM statement for them.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use serde::Serialize;
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// Not run: a check it depends on failed.
    Skip,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// A check that did not pass: what was seen, why it matters, what to change.
#[derive(Debug, Clone)]
pub struct Failed {
    pub detail: String,
    pub cause: String,
    pub fix: String,
}

/// What one check function answers: the detail of a pass, or the failure.
pub type Verdict = Result<String, Failed>;

pub fn failed(
    detail: impl Into<String>,
    cause: impl Into<String>,
    fix: impl Into<String>,
) -> Failed {
    Failed {
        detail: detail.into(),
        cause: cause.into(),
        fix: fix.into(),
    }
}

impl Check {
    pub fn from_verdict(name: &'static str, verdict: Verdict) -> Self {
        match verdict {
            Ok(detail) => Self {
                name,
                status: Status::Pass,
                detail,
                cause: None,
                fix: None,
            },
            Err(f) => Self {
                name,
                status: Status::Fail,
                detail: f.detail,
                cause: Some(f.cause),
                fix: Some(f.fix),
            },
        }
    }

    pub fn skipped(name: &'static str, because: &str) -> Self {
        Self {
            name,
            status: Status::Skip,
            detail: format!("not checked: {because}"),
            cause: None,
            fix: None,
        }
    }
}

/// The failure a request's error means, as a `map_err` argument: what S3, STS or KMS
/// answered, then why it matters and what to change.
pub fn on_error<E>(
    cause: impl Into<String>,
    fix: impl Into<String>,
) -> impl FnOnce(SdkError<E, aws_smithy_runtime_api::http::Response>) -> Failed
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    move |e| failed(message(&e), cause, fix)
}

pub fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> String {
    match e {
        SdkError::ServiceError(s) => s.err().code().unwrap_or("unknown").to_owned(),
        other => format!("{other}"),
    }
}

pub fn status<E>(e: &SdkError<E, aws_smithy_runtime_api::http::Response>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// An SDK error as the doctor shows it: status, code, message.
pub fn message<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: &SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> String {
    let status = status(e).map(|s| format!("HTTP {s} ")).unwrap_or_default();
    match e {
        SdkError::ServiceError(s) => format!(
            "{status}{}: {} ({:?})",
            code(e),
            s.err().message().unwrap_or_default(),
            s.err()
        ),
        other => format!("{status}{}", replicator_core::error::error_chain(other)),
    }
}

/// A bucket's versioning, which must be Enabled: `off_means` says what is lost otherwise;
/// `unreadable` and `fix` what to say when the state cannot be read.
pub async fn versioning_enabled(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    off_means: &str,
    unreadable: &str,
    fix: String,
) -> Verdict {
    use aws_sdk_s3::types::BucketVersioningStatus;
    let out = s3
        .get_bucket_versioning()
        .bucket(bucket)
        .send()
        .await
        .map_err(on_error(unreadable, fix))?;
    if out.status() == Some(&BucketVersioningStatus::Enabled) {
        return Ok("Enabled".into());
    }
    Err(failed(
        out.status().map(|s| s.as_str()).unwrap_or("never enabled"),
        format!("versioning is off on s3://{bucket}: {off_means}"),
        format!("aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled"),
    ))
}

/// An IAM Allow statement, as a fix shows it.
pub fn statement(actions: &[&str], resource: &str) -> String {
    json!({"Effect": "Allow", "Action": actions, "Resource": resource}).to_string()
}
