//! Invariants over arbitrary input, shared by the cargo-fuzz targets in `fuzz/` and the
//! regression test that replays what they once found (`tests/corpus/fuzz-regressions/`).
//! Each function panics when an invariant breaks; returning means the input was handled.

use crate::event::{self, Decoded, Item, Payload, Scope};
use crate::key::{copy_source, decode_event_key, encode_event_key, validate_key};

fn scope() -> Scope {
    Scope {
        source_bucket: "example-source-bucket".into(),
        region: Some("us-east-1".into()),
        destination_buckets: vec![],
    }
}

fn check(decoded: &[Decoded], scope: &Scope) {
    for d in decoded {
        if let Ok(Item::Object(o)) = d {
            assert_eq!(
                o.bucket, scope.source_bucket,
                "a foreign bucket got through"
            );
            validate_key(&o.key).expect("an accepted key is valid");
        }
    }
}

/// Any bytes as a Lambda payload or an SQS message body: decoding never panics, and whatever
/// it accepts as an object names the source bucket and a valid key.
pub fn event_payload(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let scope = scope();
    if let Ok(decoded) = event::decode_sqs_body(text, &scope) {
        check(&decoded, &scope);
    }
    let Ok(value) = serde_json::from_str(text) else {
        return;
    };
    match event::parse_payload(value) {
        Ok(Payload::S3(e)) => check(&event::decode_s3_event(&e, &scope), &scope),
        Ok(Payload::EventBridge(e)) => check(&[event::decode_eventbridge(&e, &scope)], &scope),
        Ok(Payload::BatchOperations(job)) => {
            let decoded: Vec<Decoded> = job
                .tasks
                .iter()
                .map(|t| event::decode_batch_task(t, &scope))
                .collect();
            check(&decoded, &scope)
        }
        Ok(Payload::Sqs(e)) => {
            for body in e.records.iter().filter_map(|m| m.body.as_deref()) {
                if let Ok(decoded) = event::decode_sqs_body(body, &scope) {
                    check(&decoded, &scope);
                }
            }
        }
        Ok(Payload::TestEvent) | Err(_) => {}
    }
}

/// Any string as a form-encoded event key: decoding never panics, an accepted key is valid,
/// and encoding it as S3 does decodes back to the same key.
pub fn event_key(data: &[u8]) {
    let Ok(encoded) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = decode_event_key(encoded) {
        validate_key(&key).expect("an accepted key is valid");
        assert_eq!(decode_event_key(&encode_event_key(&key)).as_ref(), Ok(&key));
        let _ = copy_source("bucket", &key, Some(encoded));
    }
}
