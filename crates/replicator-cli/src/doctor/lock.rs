//! Object Lock on both buckets: a locked source version is replicated with its retention
//! and legal hold only into a destination bucket with Object Lock; into one without, every
//! such version fails as DstBucketObjectLockConfigMissing.

use aws_sdk_s3::types::ObjectLockEnabled;
use replicator_core::permissions;

use super::report::{
    answer, failed, message, not_a_permission, statement, warning, Answer, Verdict,
};
use super::Context;

/// One bucket's Object Lock, as GetObjectLockConfiguration answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lock {
    Off,
    /// Enabled, with its default retention (`GOVERNANCE 30 days`), if any.
    On(Option<String>),
}

type LockError = aws_sdk_s3::error::SdkError<
    aws_sdk_s3::operation::get_object_lock_configuration::GetObjectLockConfigurationError,
    aws_smithy_runtime_api::http::Response,
>;

/// A bucket without Object Lock answers 404 ObjectLockConfigurationNotFoundError.
async fn read(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<Lock, LockError> {
    match s3
        .get_object_lock_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) => {
            let config = out.object_lock_configuration();
            if config.and_then(|c| c.object_lock_enabled()) != Some(&ObjectLockEnabled::Enabled) {
                return Ok(Lock::Off);
            }
            let default = config
                .and_then(|c| c.rule())
                .and_then(|r| r.default_retention())
                .map(|d| {
                    let mode = d.mode().map(|m| m.as_str()).unwrap_or("?");
                    match (d.days(), d.years()) {
                        (Some(n), _) => format!("{mode} {n} days"),
                        (_, Some(n)) => format!("{mode} {n} years"),
                        _ => mode.to_owned(),
                    }
                });
            Ok(Lock::On(default))
        }
        Err(e) if answer(&e) == Answer::Missing => Ok(Lock::Off),
        Err(e) => Err(e),
    }
}

pub async fn check(cx: &mut Context<'_>) -> Verdict {
    let dest = &cx.config.destination.bucket;
    let destination = match read(&cx.clients.destination, dest).await {
        Ok(lock) => lock,
        Err(e) if answer(&e) == Answer::Denied => {
            return Err(failed(
                message(&e),
                "the destination role cannot tell whether the bucket can hold locked replicas; every locked source version fails",
                format!(
                    "allow the destination role: {}",
                    statement(&["s3:GetBucketObjectLockConfiguration"], &cx.dst_arn)
                ),
            ))
        }
        Err(e) => return Err(not_a_permission(&e)),
    };
    // The source's, with the operator's credentials: a denial only leaves it unknown.
    let source = read(&cx.clients.source, &cx.config.source.bucket)
        .await
        .ok();
    assess(
        &cx.config.source.bucket,
        source.as_ref(),
        dest,
        &destination,
    )
}

/// The verdict on both buckets' Object Lock; `source` is `None` when it could not be read.
pub fn assess(
    source_bucket: &str,
    source: Option<&Lock>,
    dest: &str,
    destination: &Lock,
) -> Verdict {
    let lock_writes = statement(
        &["s3:PutObjectRetention", "s3:PutObjectLegalHold"],
        &format!("arn:aws:s3:::{dest}/*"),
    );
    match (source, destination) {
        (_, Lock::On(default)) => Ok(format!(
            "s3://{dest} has Object Lock{}: a locked source version's replica keeps its retention and legal hold (the destination role needs {})",
            default
                .as_ref()
                .map(|d| format!(" (default retention {d}, which S3 applies to every replica written without its own, the replicator's state included)"))
                .unwrap_or_default(),
            permissions::DESTINATION_OBJECT_ACTIONS
                .iter()
                .filter(|a| a.contains("Retention") || a.contains("LegalHold"))
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        )),
        (Some(Lock::On(_)), Lock::Off) => Err(failed(
            format!("s3://{source_bucket} has Object Lock; s3://{dest} has none"),
            "every source version with a retention or legal hold fails as DstBucketObjectLockConfigMissing (never an unlocked replica); versions without either are copied",
            format!(
                "enable Object Lock on s3://{dest} (aws s3api put-object-lock-configuration --bucket {dest} --object-lock-configuration ObjectLockEnabled=Enabled; the bucket must be versioned), then {lock_writes}"
            ),
        )),
        (Some(Lock::Off), Lock::Off) => Ok("neither bucket has Object Lock".to_owned()),
        (None, Lock::Off) => Err(warning(
            format!("s3://{dest} has no Object Lock; the source's Object Lock could not be read with these credentials"),
            "if source versions carry a retention or legal hold, they fail as DstBucketObjectLockConfigMissing",
            format!("run the doctor with credentials allowed s3:GetBucketObjectLockConfiguration on s3://{source_bucket}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_source_needs_a_locked_destination() {
        let v = assess("s", Some(&Lock::On(None)), "d", &Lock::Off).unwrap_err();
        assert!(!v.warning && v.cause.contains("DstBucketObjectLockConfigMissing"));
        assert!(v.fix.contains("put-object-lock-configuration --bucket d"));
    }

    #[test]
    fn a_locked_destination_passes_and_names_its_default() {
        let ok = assess("s", None, "d", &Lock::On(Some("GOVERNANCE 30 days".into()))).unwrap();
        assert!(
            ok.contains("GOVERNANCE 30 days") && ok.contains("s3:PutObjectRetention"),
            "{ok}"
        );
        assert!(assess("s", Some(&Lock::Off), "d", &Lock::Off).is_ok());
    }

    #[test]
    fn an_unreadable_source_with_an_unlocked_destination_is_a_warning() {
        assert!(assess("s", None, "d", &Lock::Off).unwrap_err().warning);
    }
}
