//! Decoding every event shape users wire up into [`ObjectRequest`]s: S3 notifications
//! (direct, in SQS messages, in SNS envelopes in SQS messages), EventBridge `Object Created` /
//! `Object Deleted`, and S3 Batch Operations tasks (schema 1.0 and 2.0) — one file per
//! shape in `event/` — and [`encode`], the notification the sync's fan-out sends, which this
//! module decodes again.
//!
//! A record that cannot be decoded is an error for that record alone; a record for a
//! bucket other than SOURCE_BUCKET is refused before any request is made.

mod batch;
pub mod encode;
mod eventbridge;
mod s3;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::s3::batch_job::S3BatchJobEvent;
use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
use aws_lambda_events::event::sns::SnsMessage;
use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::Value;

use crate::error::ReplicationError;
use crate::outcome::SkipReason;
use crate::request::ObjectRequest;
pub use batch::decode_batch_task;
pub use eventbridge::decode_eventbridge;
pub use s3::{decode_s3_event, decode_s3_record};

/// More records than this in one invocation is not something SQS sends (Lambda's largest
/// batch from a standard queue is 10,000 messages); refuse it whole rather than work
/// through it.
pub const MAX_RECORDS: usize = 10_000;

/// More records than this in one S3 notification, or tasks in one Batch Operations
/// invocation, is not something AWS sends: S3 puts one record in each notification (direct,
/// or in an SQS or SNS message) and Batch Operations one task in each invocation. Anyone
/// allowed to send to the queue could otherwise multiply the work of one message and time
/// out a whole batch; such a message is refused, nothing in it is copied.
pub const MAX_NOTIFICATION_RECORDS: usize = 10;

/// What the decoder checks every record against.
#[derive(Debug, Clone)]
pub struct Scope {
    pub source_bucket: String,
    /// The function's region: S3 notifies only same-region targets, so a record from another
    /// region did not come from the source bucket.
    pub region: Option<String>,
    /// The destination buckets: native replication failures are healed only for rules that
    /// replicate to one of them (empty: any).
    pub destination_buckets: Vec<String>,
}

/// A decoded record: an object to replicate, or a record that asks for nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Object(Box<ObjectRequest>),
    Ignored(SkipReason),
}

pub type Decoded = Result<Item, ReplicationError>;

/// The shapes a Lambda payload can take.
#[derive(Debug)]
pub enum Payload {
    S3(S3Event),
    TestEvent,
    Sqs(SqsEvent),
    EventBridge(Box<EventBridgeEvent<Value>>),
    BatchOperations(S3BatchJobEvent),
}

pub(crate) fn invalid(msg: impl Into<String>) -> ReplicationError {
    ReplicationError::InvalidEvent(msg.into())
}

/// Recognises the payload's shape. Fails only when it matches no shape at all.
pub fn parse_payload(payload: Value) -> Result<Payload, ReplicationError> {
    let obj = payload
        .as_object()
        .ok_or_else(|| invalid("payload is not a JSON object"))?;
    if obj.contains_key("invocationSchemaVersion") && obj.contains_key("tasks") {
        let job: S3BatchJobEvent = serde_json::from_value(payload)
            .map_err(|e| invalid(format!("S3 Batch Operations event does not parse: {e}")))?;
        if job.tasks.len() > MAX_NOTIFICATION_RECORDS {
            return Err(invalid(format!(
                "{} tasks in one Batch Operations invocation; S3 sends one (at most {MAX_NOTIFICATION_RECORDS} are accepted)",
                job.tasks.len()
            )));
        }
        let version = job.invocation_schema_version.as_deref().unwrap_or_default();
        if version != "1.0" && version != "2.0" {
            return Err(invalid(format!(
                "S3 Batch Operations invocation schema {version:?} is not supported (1.0 and 2.0 are)"
            )));
        }
        return Ok(Payload::BatchOperations(job));
    }
    if obj.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Payload::TestEvent);
    }
    if obj.contains_key("detail-type") && obj.contains_key("source") {
        let event: EventBridgeEvent<Value> = serde_json::from_value(payload)
            .map_err(|e| invalid(format!("EventBridge event does not parse: {e}")))?;
        return Ok(Payload::EventBridge(Box::new(event)));
    }
    let records = obj
        .get("Records")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            invalid("payload is not an S3, SQS, EventBridge or Batch Operations event")
        })?;
    if records.len() > MAX_RECORDS {
        return Err(invalid(format!(
            "{} records in one event; at most {MAX_RECORDS} are accepted",
            records.len()
        )));
    }
    let source = records
        .first()
        .and_then(|r| r.get("eventSource"))
        .and_then(Value::as_str);
    if source == Some("aws:sqs") {
        let event: SqsEvent = serde_json::from_value(payload)
            .map_err(|e| invalid(format!("SQS event does not parse: {e}")))?;
        return Ok(Payload::Sqs(event));
    }
    if records.len() > MAX_NOTIFICATION_RECORDS {
        return Err(invalid(format!(
            "{} records in one S3 notification; S3 sends one (at most {MAX_NOTIFICATION_RECORDS} are accepted)",
            records.len()
        )));
    }
    // S3 records are decoded one by one, so a bad record fails alone.
    let records: Vec<S3EventRecord> = records
        .iter()
        .map(|r| serde_json::from_value(r.clone()).unwrap_or_else(|_| unparsable_record(r)))
        .collect();
    let mut event = S3Event::default();
    event.records = records;
    Ok(Payload::S3(event))
}

/// A placeholder for a record that does not parse, so it is reported as failed in its own
/// position; its event name carries the reason.
fn unparsable_record(raw: &Value) -> S3EventRecord {
    let mut r = S3EventRecord::default();
    let excerpt: String = raw.to_string().chars().take(200).collect();
    r.event_name = Some(format!("{UNPARSABLE}{excerpt}"));
    r
}

pub(crate) const UNPARSABLE: &str = "\u{0}unparsable:";

pub(crate) fn check_bucket(bucket: &str, scope: &Scope) -> Result<(), ReplicationError> {
    if bucket == scope.source_bucket {
        Ok(())
    } else {
        Err(ReplicationError::ForeignBucket {
            bucket: bucket.to_owned(),
            expected: scope.source_bucket.clone(),
        })
    }
}

/// Decodes one SQS message body: an S3 notification, an SNS envelope around one, an
/// s3:TestEvent, or an EventBridge event (an EventBridge rule targeting the queue).
/// `Err` means the body as a whole is malformed.
pub fn decode_sqs_body(body: &str, scope: &Scope) -> Result<Vec<Decoded>, ReplicationError> {
    let value: Value = serde_json::from_str(body)
        .map_err(|e| invalid(format!("SQS message body is not JSON: {e}")))?;
    if value.get("Type").and_then(Value::as_str) == Some("Notification") {
        let sns: SnsMessage = serde_json::from_value(value)
            .map_err(|e| invalid(format!("SNS envelope in SQS message does not parse: {e}")))?;
        let inner: Value = serde_json::from_str(&sns.message)
            .map_err(|e| invalid(format!("SNS Message in SQS message is not JSON: {e}")))?;
        return decode_notification(inner, scope);
    }
    decode_notification(value, scope)
}

fn decode_notification(value: Value, scope: &Scope) -> Result<Vec<Decoded>, ReplicationError> {
    match parse_payload(value)? {
        Payload::S3(event) => Ok(decode_s3_event(&event, scope)),
        Payload::TestEvent => Ok(vec![Ok(Item::Ignored(SkipReason::TestEvent))]),
        Payload::EventBridge(event) => Ok(vec![decode_eventbridge(&event, scope)]),
        Payload::Sqs(_) | Payload::BatchOperations(_) => Err(invalid(
            "an SQS message must carry an S3, SNS or EventBridge notification",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::ChangeKind;
    use serde_json::json;

    fn scope() -> Scope {
        Scope {
            source_bucket: "src".into(),
            region: Some("us-east-1".into()),
            destination_buckets: vec!["dst".into()],
        }
    }

    fn record(bucket: &str, key: &str, name: &str) -> Value {
        json!({
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2024-01-01T00:00:00.000Z", "eventName": name,
            "userIdentity": {"principalId": "x"}, "requestParameters": {"sourceIPAddress": "1.2.3.4"},
            "responseElements": {}, "s3": {"s3SchemaVersion": "1.0", "configurationId": "c",
            "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
            "object": {"key": key, "size": 3, "versionId": "v1", "sequencer": "00AB"}}
        })
    }

    fn objects(decoded: &[Decoded]) -> Vec<&ObjectRequest> {
        decoded
            .iter()
            .filter_map(|d| match d {
                Ok(Item::Object(o)) => Some(o.as_ref()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn s3_records_decode_keys_and_kinds() {
        let payload = json!({"Records": [
            record("src", "a+b%2Bc", "ObjectCreated:Put"),
            record("src", "x", "ObjectRemoved:DeleteMarkerCreated"),
            record("src", "x", "ObjectRestore:Post"),
            record("src", "x", "ObjectRestore:Completed"),
        ]});
        let Payload::S3(event) = parse_payload(payload).unwrap() else {
            panic!()
        };
        let decoded = decode_s3_event(&event, &scope());
        let objs = objects(&decoded);
        assert_eq!(objs[0].key, "a b+c");
        assert_eq!(objs[0].version_id.as_deref(), Some("v1"));
        assert_eq!(objs[0].size, Some(3));
        assert_eq!(objs[1].kind, ChangeKind::DeleteMarkerCreated);
        assert!(matches!(
            decoded[2],
            Ok(Item::Ignored(SkipReason::EventNotReplicated))
        ));
        // A completed restore makes an archived object readable: it is copied.
        assert_eq!(objs[2].kind, ChangeKind::Created);
    }

    #[test]
    fn a_delete_without_a_version_is_the_key_gone_and_expirations_are_their_own() {
        let mut unversioned = record("src", "k", "ObjectRemoved:Delete");
        unversioned["s3"]["object"]
            .as_object_mut()
            .unwrap()
            .remove("versionId");
        let payload = json!({"Records": [
            unversioned,
            record("src", "k", "ObjectRemoved:Delete"),
            record("src", "k", "LifecycleExpiration:Delete"),
            record("src", "k", "LifecycleExpiration:DeleteMarkerCreated"),
        ]});
        let Payload::S3(event) = parse_payload(payload).unwrap() else {
            panic!()
        };
        let decoded = decode_s3_event(&event, &scope());
        let kinds: Vec<ChangeKind> = objects(&decoded).iter().map(|o| o.kind).collect();
        assert_eq!(
            kinds,
            [
                ChangeKind::KeyDeleted,
                ChangeKind::VersionDeleted,
                ChangeKind::Expired,
                ChangeKind::Expired
            ]
        );
    }

    #[test]
    fn bad_records_fail_alone() {
        let payload = json!({"Records": [
            record("other", "k", "ObjectCreated:Put"),
            record("src", "k%zz", "ObjectCreated:Put"),
            {"eventSource": "aws:s3", "s3": 5},
            record("src", "k", "Bogus:Name"),
            record("src", "fine", "ObjectCreated:Copy"),
        ]});
        let Payload::S3(event) = parse_payload(payload).unwrap() else {
            panic!()
        };
        let decoded = decode_s3_event(&event, &scope());
        assert!(matches!(
            decoded[0],
            Err(ReplicationError::ForeignBucket { .. })
        ));
        assert!(matches!(decoded[1], Err(ReplicationError::InvalidKey(_))));
        assert!(matches!(decoded[2], Err(ReplicationError::InvalidEvent(_))));
        assert!(matches!(decoded[3], Err(ReplicationError::InvalidEvent(_))));
        assert_eq!(objects(&decoded)[0].key, "fine");
    }

    #[test]
    fn other_region_is_refused() {
        let mut r = record("src", "k", "ObjectCreated:Put");
        r["awsRegion"] = json!("eu-west-1");
        let Payload::S3(event) = parse_payload(json!({"Records": [r]})).unwrap() else {
            panic!()
        };
        assert!(decode_s3_event(&event, &scope())[0].is_err());
    }

    #[test]
    fn sns_envelope_in_sqs_body() {
        let inner =
            json!({"Records": [record("src", "dir/a+file", "ObjectCreated:Put")]}).to_string();
        let body = json!({
            "Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:1:t",
            "Subject": "Amazon S3 Notification", "Message": inner, "Timestamp": "2024-01-01T00:00:00.000Z",
            "SignatureVersion": "1", "Signature": "s", "SigningCertURL": "https://x", "UnsubscribeURL": "https://y"
        })
        .to_string();
        let decoded = decode_sqs_body(&body, &scope()).unwrap();
        assert_eq!(objects(&decoded)[0].key, "dir/a file");
        assert!(decode_sqs_body("{not json", &scope()).is_err());
        assert!(decode_sqs_body("{\"Type\":\"Notification\"}", &scope()).is_err());
    }

    #[test]
    fn batch_tasks_of_both_schemas() {
        let v1: S3BatchJobEvent = serde_json::from_value(json!({
            "invocationSchemaVersion": "1.0", "invocationId": "i", "job": {"id": "j"},
            "tasks": [{"taskId": "t", "s3Key": "a%20b", "s3VersionId": null, "s3BucketArn": "arn:aws:s3:::src"}]
        }))
        .unwrap();
        let d = decode_batch_task(&v1.tasks[0], &scope()).unwrap();
        assert_eq!(
            d,
            Item::Object(Box::new(ObjectRequest::created("src", "a b")))
        );
        let v2: S3BatchJobEvent = serde_json::from_value(json!({
            "invocationSchemaVersion": "2.0", "invocationId": "i", "job": {"id": "j", "userArguments": {}},
            "tasks": [{"taskId": "t", "s3Key": "k", "s3VersionId": "v", "s3Bucket": "evil"}]
        }))
        .unwrap();
        assert!(matches!(
            decode_batch_task(&v2.tasks[0], &scope()),
            Err(ReplicationError::ForeignBucket { .. })
        ));
    }

    #[test]
    fn eventbridge_keys_are_taken_as_they_are() {
        let event: EventBridgeEvent<Value> = serde_json::from_value(json!({
            "version": "0", "id": "i", "detail-type": "Object Created", "source": "aws.s3",
            "account": "1", "time": "2024-01-01T00:00:00Z", "region": "us-east-1", "resources": [],
            "detail": {"version": "0", "bucket": {"name": "src"},
                       "object": {"key": "a b+c%41:d.txt", "size": 1, "version-id": "v"}}
        }))
        .unwrap();
        let Ok(Item::Object(o)) = decode_eventbridge(&event, &scope()) else {
            panic!()
        };
        assert_eq!(o.key, "a b+c%41:d.txt");
    }

    #[test]
    fn unknown_payloads_are_invalid() {
        for p in [
            json!([]),
            json!({}),
            json!({"Records": 3}),
            json!({"tasks": [], "invocationSchemaVersion": "9.9"}),
        ] {
            assert!(parse_payload(p).is_err());
        }
        assert!(matches!(
            parse_payload(json!({"Event": "s3:TestEvent"})).unwrap(),
            Payload::TestEvent
        ));
    }
}
