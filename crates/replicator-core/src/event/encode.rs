//! The S3 `ObjectCreated` notification the sync's fan-out sends to the copier's queue, in
//! exactly the shape S3 sends (so the copier decodes it with the same code). Round-trip
//! tested against the decoder.

use serde_json::json;

/// How a fan-out message names the rule its copy was planned for (`s3.configurationId`,
/// which S3 sets to the notification configuration's ID).
pub const PLANNED_RULE: &str = "scheduled-sync:rule=";

/// What a fan-out message names: the object, and the rule its copy was planned for.
#[derive(Debug, Clone, Copy)]
pub struct Planned<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    /// The version, when known (`None`: the current one).
    pub version_id: Option<&'a str>,
    pub size: u64,
    pub etag: &'a str,
    /// With several rules, the one a sync pass planned the copy for.
    pub rule: Option<&'a str>,
}

/// One `ObjectCreated:Put` notification for `planned`, as S3 would send it in `region` at
/// `time_ms`.
pub fn object_created(planned: &Planned<'_>, region: &str, time_ms: i64) -> String {
    let Planned {
        bucket,
        key,
        version_id,
        size,
        etag,
        rule,
    } = *planned;
    let configuration = match rule {
        Some(rule) => format!("{PLANNED_RULE}{rule}"),
        None => "scheduled-sync".to_owned(),
    };
    let time = aws_smithy_types::DateTime::from_millis(time_ms)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default();
    let mut object = json!({
        "key": crate::key::encode_event_key(key),
        "size": size,
        "eTag": etag.trim_matches('"'),
    });
    if let Some(v) = version_id {
        object["versionId"] = json!(v);
    }
    json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": time,
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "s3-fallback-replicator-sync"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration,
            "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
            "object": object,
        }
    }]})
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{decode_sqs_body, Item, Scope};
    use proptest::prelude::*;

    proptest! {
        /// Whatever the key, the copier decodes what the sync sends to the same object.
        #[test]
        fn notifications_decode_to_the_object_they_name(
            key in "\\PC{1,200}",
            size in 0u64..=(5u64 << 40),
            time_ms in 0i64..4_000_000_000_000,
        ) {
            prop_assume!(crate::key::validate_key(&key).is_ok());
            let scope = Scope { source_bucket: "src-bucket".into(), region: Some("eu-west-1".into()), destination_buckets: vec![] };
            let planned = Planned { bucket: "src-bucket", key: &key, version_id: Some("v1"), size, etag: "\"e\"", rule: Some("r 1") };
            let body = object_created(&planned, "eu-west-1", time_ms);
            let decoded = decode_sqs_body(&body, &scope).unwrap();
            prop_assert_eq!(decoded.len(), 1);
            let Ok(Item::Object(o)) = &decoded[0] else { panic!("{:?}", decoded[0]) };
            prop_assert_eq!(&o.bucket, "src-bucket");
            prop_assert_eq!(&o.key, &key);
            prop_assert_eq!(o.size, Some(size));
            prop_assert_eq!(o.event_time_ms, Some(time_ms));
            prop_assert_eq!(o.planned_rule.as_deref(), Some("r 1"));
            prop_assert_eq!(o.version_id.as_deref(), Some("v1"));
        }
    }
}
