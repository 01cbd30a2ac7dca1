//! S3 event notifications (direct, or inside SQS and SNS): `Records[]` with URL-encoded keys.

use aws_lambda_events::event::s3::{S3Event, S3EventRecord};

use super::encode::PLANNED_RULE;
use super::{check_bucket, invalid, Decoded, Item, Scope, UNPARSABLE};
use crate::error::ReplicationError;
use crate::facts::normalize_version;
use crate::key::decode_event_key;
use crate::outcome::SkipReason;
use crate::request::{ChangeKind, ObjectRequest};

/// Decodes every record of an S3 notification.
pub fn decode_s3_event(event: &S3Event, scope: &Scope) -> Vec<Decoded> {
    event
        .records
        .iter()
        .map(|r| decode_s3_record(r, scope))
        .collect()
}

/// Decodes one S3 notification record.
pub fn decode_s3_record(record: &S3EventRecord, scope: &Scope) -> Decoded {
    let name = record.event_name.as_deref().unwrap_or_default();
    if let Some(raw) = name.strip_prefix(UNPARSABLE) {
        return Err(invalid(format!(
            "S3 record does not parse as an S3 event record: {raw}"
        )));
    }
    match record.event_source.as_deref() {
        Some("aws:s3") | None => {}
        Some(other) => {
            return Err(invalid(format!(
                "record's eventSource is {other:?}, not aws:s3"
            )))
        }
    }
    let names_version = record
        .s3
        .object
        .version_id
        .as_deref()
        .is_some_and(|v| !v.is_empty());
    let (kind, native_failure) = match s3_event_kind(name, names_version)? {
        Asks::Change(kind) => (kind, None),
        Asks::Nothing(reason) => return Ok(Item::Ignored(reason)),
        Asks::Heal => match native_failure(record, name, scope) {
            Some(reason) => (ChangeKind::Created, Some(reason)),
            None => return Ok(Item::Ignored(SkipReason::EventNotReplicated)),
        },
    };
    let bucket = record
        .s3
        .bucket
        .name
        .clone()
        .ok_or_else(|| invalid("record has no s3.bucket.name"))?;
    check_bucket(&bucket, scope)?;
    if let (Some(region), Some(expected)) = (record.aws_region.as_deref(), scope.region.as_deref())
    {
        if region != expected {
            return Err(invalid(format!(
                "record for bucket {bucket} comes from region {region}, but this function serves {expected}"
            )));
        }
    }
    let encoded = record
        .s3
        .object
        .key
        .as_deref()
        .ok_or_else(|| invalid("record has no s3.object.key"))?;
    let key = decode_event_key(encoded)?;
    Ok(Item::Object(Box::new(ObjectRequest {
        bucket,
        key,
        version_id: normalize_version(record.s3.object.version_id.as_deref()),
        size: record.s3.object.size.and_then(|s| u64::try_from(s).ok()),
        sequencer: record.s3.object.sequencer.clone(),
        event_time_ms: Some(record.event_time.timestamp_millis()),
        kind,
        listed: None,
        native_failure,
        planned_rule: record
            .s3
            .configuration_id
            .as_deref()
            .and_then(|id| id.strip_prefix(PLANNED_RULE))
            .map(str::to_owned),
    })))
}

/// What an event name asks for.
enum Asks {
    Change(ChangeKind),
    /// A version native replication failed to replicate, or replicated late.
    Heal,
    Nothing(SkipReason),
}

/// Maps an S3 event name to what it asks for: a change to replicate, a version native
/// replication failed, a known event that asks for nothing, or an error for a name S3 does
/// not send.
fn s3_event_kind(name: &str, names_version: bool) -> Result<Asks, ReplicationError> {
    Ok(match name {
        n if n.starts_with("ObjectCreated:") => Asks::Change(ChangeKind::Created),
        // A restored archived object is readable now: copied (RESTORE_ARCHIVED's second half).
        "ObjectRestore:Completed" => Asks::Change(ChangeKind::Created),
        "ObjectRemoved:DeleteMarkerCreated" => Asks::Change(ChangeKind::DeleteMarkerCreated),
        // An unversioned bucket names no version: the key itself is gone.
        "ObjectRemoved:Delete" if !names_version => Asks::Change(ChangeKind::KeyDeleted),
        "ObjectRemoved:Delete" => Asks::Change(ChangeKind::VersionDeleted),
        "LifecycleExpiration:Delete" | "LifecycleExpiration:DeleteMarkerCreated" => {
            Asks::Change(ChangeKind::Expired)
        }
        "ObjectTagging:Put" | "ObjectTagging:Delete" => Asks::Change(ChangeKind::TagsChanged),
        // "Receiving replication failure events with Amazon S3 Event Notifications".
        "Replication:OperationFailedReplication" | "Replication:OperationMissedThreshold" => {
            Asks::Heal
        }
        "Replication:OperationReplicatedAfterThreshold" | "Replication:OperationNotTracked" => {
            Asks::Nothing(SkipReason::NativeReplicationInformational)
        }
        n if [
            "ObjectRestore:",
            "ObjectTagging:",
            "ObjectAcl:",
            "Replication:",
            "LifecycleExpiration:",
            "LifecycleTransition",
            "IntelligentTiering",
            "ReducedRedundancyLostObject",
        ]
        .iter()
        .any(|p| n.starts_with(p)) =>
        {
            Asks::Nothing(SkipReason::EventNotReplicated)
        }
        other => return Err(invalid(format!("unknown S3 event name {other:?}"))),
    })
}

/// The failure reason of a native replication failure event for this replicator's
/// destinations (`replicationEventData.destinationBucket`); `None` for another destination's
/// rule, which is not this replicator's to heal. A missed threshold has no reason of its
/// own: it is named by the event.
fn native_failure(record: &S3EventRecord, name: &str, scope: &Scope) -> Option<String> {
    let data = record.other.get("replicationEventData");
    let destination = data
        .and_then(|d| d.get("destinationBucket"))
        .and_then(|b| b.as_str());
    if let Some(theirs) = destination {
        let bucket = theirs.rsplit(":::").next().unwrap_or(theirs);
        if !scope.destination_buckets.is_empty()
            && !scope.destination_buckets.iter().any(|b| b == bucket)
        {
            return None;
        }
    }
    let reason = data
        .and_then(|d| d.get("failureReason"))
        .and_then(|r| r.as_str())
        .filter(|r| !r.is_empty());
    Some(match reason {
        Some(reason) => reason.to_owned(),
        None => name.trim_start_matches("Replication:Operation").to_owned(),
    })
}
