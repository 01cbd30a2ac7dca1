//! EventBridge `Object Created` / `Object Deleted` events from `aws.s3`.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde::Deserialize;
use serde_json::Value;

use super::{check_bucket, invalid, Decoded, Item, Scope};
use crate::facts::normalize_version;
use crate::key::validate_key;
use crate::request::{ChangeKind, ObjectRequest};

#[derive(Debug, Deserialize)]
struct EbDetail {
    bucket: EbBucket,
    object: EbObject,
    #[serde(rename = "deletion-type")]
    deletion_type: Option<String>,
    /// Why an object was deleted: `DeleteObject` or `Lifecycle Expiration`.
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct EbBucket {
    name: String,
}

#[derive(Debug, Deserialize)]
struct EbObject {
    key: String,
    size: Option<u64>,
    #[serde(rename = "version-id")]
    version_id: Option<String>,
    sequencer: Option<String>,
}

/// Decodes an EventBridge `Object Created` or `Object Deleted` event from `aws.s3`.
///
/// Unlike notifications, EventBridge carries the object key as it is, not URL-encoded
/// (captured events show keys such as `raw/2023-08-08T14:03:40.zip` with a literal `:`, which
/// a notification would send as `%3A`), so the key is only validated, never decoded.
pub fn decode_eventbridge(event: &EventBridgeEvent<Value>, scope: &Scope) -> Decoded {
    if event.source != "aws.s3" {
        return Err(invalid(format!(
            "EventBridge event source is {:?}, not aws.s3",
            event.source
        )));
    }
    let kind = match event.detail_type.as_str() {
        "Object Created" | "Object Restore Completed" => ChangeKind::Created,
        "Object Deleted" => ChangeKind::DeleteMarkerCreated,
        "Object Tags Added" | "Object Tags Deleted" => ChangeKind::TagsChanged,
        other => {
            return Err(invalid(format!(
                "EventBridge detail-type {other:?} is not Object Created, Object Restore Completed, Object Deleted, Object Tags Added or Object Tags Deleted"
            )))
        }
    };
    let detail: EbDetail = serde_json::from_value(event.detail.clone())
        .map_err(|e| invalid(format!("EventBridge S3 detail does not parse: {e}")))?;
    check_bucket(&detail.bucket.name, scope)?;
    if let (Some(region), Some(expected)) = (event.region.as_deref(), scope.region.as_deref()) {
        if region != expected {
            return Err(invalid(format!(
                "event for bucket {} comes from region {region}, but this function serves {expected}",
                detail.bucket.name
            )));
        }
    }
    let names_version = detail
        .object
        .version_id
        .as_deref()
        .is_some_and(|v| !v.is_empty());
    let kind = match (
        kind,
        detail.deletion_type.as_deref(),
        detail.reason.as_deref(),
    ) {
        (ChangeKind::DeleteMarkerCreated, _, Some("Lifecycle Expiration")) => ChangeKind::Expired,
        (ChangeKind::DeleteMarkerCreated, Some("Permanently Deleted"), _) if !names_version => {
            ChangeKind::KeyDeleted
        }
        (ChangeKind::DeleteMarkerCreated, Some("Permanently Deleted"), _) => {
            ChangeKind::VersionDeleted
        }
        (kind, _, _) => kind,
    };
    Ok(Item::Object(Box::new(ObjectRequest {
        bucket: detail.bucket.name,
        key: {
            validate_key(&detail.object.key)?;
            detail.object.key
        },
        version_id: normalize_version(detail.object.version_id.as_deref()),
        size: detail.object.size,
        sequencer: detail.object.sequencer,
        event_time_ms: event.time.map(|t| t.timestamp_millis()),
        kind,
        listed: None,
        native_failure: None,
        planned_rule: None,
    })))
}
