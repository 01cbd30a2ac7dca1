//! What a check answers — passed with a detail, or failed (or warned) with the detail, its
//! cause and the fix — and the helpers that describe an SDK error and an IAM statement for
//! them. Only an access denial is called a missing permission: a configuration that does
//! not exist is a warning saying what that means, and anything else (a 5xx, an answer the
//! SDK could not read, no answer) says what happened and that it is not about permissions.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use serde::Serialize;
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    /// Works, but something deserves a look (the cause says what it means).
    Warn,
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
    /// A warning, not a failure: the replication works.
    pub warning: bool,
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
        warning: false,
    }
}

/// A check that passed with a reservation: what was seen, what it means, what to do.
pub fn warning(
    detail: impl Into<String>,
    cause: impl Into<String>,
    fix: impl Into<String>,
) -> Failed {
    Failed {
        warning: true,
        ..failed(detail, cause, fix)
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
                status: if f.warning {
                    Status::Warn
                } else {
                    Status::Fail
                },
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

/// What kind of answer an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Access denied: a missing permission (or a bucket owned by another account).
    Denied,
    /// The thing asked about does not exist (a 404 with its code).
    Missing,
    /// Anything else: a 5xx, an answer the SDK could not read, no answer at all.
    Other,
}

/// The codes S3, KMS, STS and IAM answer a denial with.
const DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "AllAccessDisabled",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "UnauthorizedOperation",
];

pub fn answer<E: ProvideErrorMetadata>(
    e: &SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> Answer {
    let SdkError::ServiceError(s) = e else {
        return Answer::Other;
    };
    let code = s.err().code().unwrap_or_default();
    match s.raw().status().as_u16() {
        _ if DENIED_CODES.contains(&code) => Answer::Denied,
        // A HEAD has no body, so no code: its 403 is the denial.
        403 if code.is_empty() || code == "Forbidden" => Answer::Denied,
        404 => Answer::Missing,
        _ => Answer::Other,
    }
}

/// The failure a request's error means, as a `map_err` argument: a denial is a missing
/// permission, given `cause` and `fix`; a missing configuration is a warning; anything else
/// says what happened and that it is not a permission problem.
pub fn on_error<E>(
    cause: impl Into<String>,
    fix: impl Into<String>,
) -> impl FnOnce(SdkError<E, aws_smithy_runtime_api::http::Response>) -> Failed
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    on_error_or_missing(cause, fix, "it does not exist")
}

/// As [`on_error`], with what a missing answer (404) means here.
pub fn on_error_or_missing<E>(
    cause: impl Into<String>,
    fix: impl Into<String>,
    missing_means: impl Into<String>,
) -> impl FnOnce(SdkError<E, aws_smithy_runtime_api::http::Response>) -> Failed
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    move |e| match answer(&e) {
        Answer::Denied => failed(message(&e), cause, fix),
        Answer::Missing => warning(
            message(&e),
            format!("{}: not a permission problem", missing_means.into()),
            "nothing to grant; see the cause for what it means",
        ),
        Answer::Other => not_a_permission(&e),
    }
}

/// An error that is not a denial: what happened, and that granting would not help.
pub fn not_a_permission<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: &SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> Failed {
    failed(
        message(e),
        "the request failed, but not for a missing permission: the service answered an error (or an answer the SDK could not read, or none at all)",
        "run the doctor again; if it persists, check the endpoint, region and the service's health",
    )
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
        .map_err(on_error_or_missing(
            unreadable,
            fix,
            format!("S3 answered that s3://{bucket} has no versioning configuration"),
        ))?;
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

/// An IAM Allow statement for KMS actions through S3 only, as a fix shows it.
pub fn statement_via_s3(actions: &[&str], key: &str, region: &str) -> String {
    json!({"Effect": "Allow", "Action": actions, "Resource": key,
           "Condition": {"StringEquals": {"kms:ViaService": replicator_core::permissions::s3_via_service(region)}}})
    .to_string()
}
