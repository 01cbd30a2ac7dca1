//! S3 Batch Operations tasks, invocation schema 1.0 and 2.0.

use aws_lambda_events::event::s3::batch_job::S3BatchJobTask;
use serde_json::Value;

use super::{check_bucket, invalid, Decoded, Item, Scope};
use crate::facts::normalize_version;
use crate::key::{decode_event_key, validate_key};
use crate::request::{ChangeKind, ObjectRequest};

/// Decodes one S3 Batch Operations task. Schema 1.0 names the bucket by ARN
/// (`s3BucketArn`), 2.0 by name (`s3Bucket`). Keys are URL-encoded in both.
pub fn decode_batch_task(task: &S3BatchJobTask, scope: &Scope) -> Decoded {
    let bucket = match (
        &task.s3_bucket_arn,
        task.other.get("s3Bucket").and_then(Value::as_str),
    ) {
        (Some(arn), _) => arn
            .strip_prefix("arn:aws:s3:::")
            .or_else(|| arn.strip_prefix("arn:aws-cn:s3:::"))
            .or_else(|| arn.strip_prefix("arn:aws-us-gov:s3:::"))
            .filter(|b| !b.is_empty() && !b.contains(['/', ':']))
            .ok_or_else(|| invalid(format!("task's s3BucketArn {arn:?} is not a bucket ARN")))?
            .to_owned(),
        (None, Some(name)) => name.to_owned(),
        (None, None) => return Err(invalid("task has neither s3BucketArn nor s3Bucket")),
    };
    check_bucket(&bucket, scope)?;
    let encoded = task
        .s3_key
        .as_deref()
        .ok_or_else(|| invalid("task has no s3Key"))?;
    let key = decode_event_key(encoded)?;
    validate_key(&key)?;
    Ok(Item::Object(Box::new(ObjectRequest {
        bucket,
        key,
        version_id: normalize_version(task.s3_version_id.as_deref()),
        size: None,
        sequencer: None,
        event_time_ms: None,
        kind: ChangeKind::Created,
        listed: None,
        native_failure: None,
        planned_rule: None,
    })))
}
