//! Every trigger shape, from the fixtures in `events/`, patched with real version ids.

use replicator_tests::{bytes, form_encode, World};
use serde_json::{json, Value};

/// Rewrites the S3 notification inside an SQS message body (directly, or inside an SNS
/// envelope) to name `key` at `version`.
fn patch_body(body: &str, key: &str, version: &str) -> String {
    let mut v: Value = serde_json::from_str(body).unwrap();
    if v["Type"] == "Notification" {
        let inner = patch_body(v["Message"].as_str().unwrap(), key, version);
        v["Message"] = inner.into();
        return v.to_string();
    }
    v["Records"][0]["s3"]["object"]["key"] = form_encode(key).into();
    v["Records"][0]["s3"]["object"]["versionId"] = version.into();
    v.to_string()
}

#[tokio::test]
async fn sqs_batch_reports_only_the_failed_messages() {
    let world = World::new().await;
    let mut event = world.fixture("sqs-s3-notification.json");
    let va = world.put("images/cat photo.jpg", bytes(2048, 1)).await;
    let vb = world.put("data/résumé 2026.pdf", bytes(4096, 2)).await;
    let records = event["Records"].as_array_mut().unwrap();
    let body0 = records[0]["body"].as_str().unwrap().to_owned();
    records[0]["body"] = patch_body(&body0, "images/cat photo.jpg", &va).into();
    let body1 = records[1]["body"].as_str().unwrap().to_owned();
    records[1]["body"] = patch_body(&body1, "data/résumé 2026.pdf", &vb).into();
    // A malformed body, a foreign bucket and a vanished object, each in its own message.
    let mut malformed = records[0].clone();
    malformed["messageId"] = "malformed".into();
    malformed["body"] = "{\"Records\": [".into();
    let mut foreign = records[0].clone();
    foreign["messageId"] = "foreign".into();
    foreign["body"] = body0.replace(&world.source_bucket, "not-our-bucket").into();
    let mut gone = records[0].clone();
    gone["messageId"] = "gone".into();
    gone["body"] = patch_body(&body0, "never/existed", "3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY").into();
    records.extend([malformed, foreign, gone]);

    let out = world.handler().await.handle(event).await.unwrap();
    let mut failed: Vec<&str> = out["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap())
        .collect();
    failed.sort();
    assert_eq!(failed, ["foreign", "malformed"], "{out}");
    world
        .assert_replica("images/cat photo.jpg", &bytes(2048, 1))
        .await;
    world
        .assert_replica("data/résumé 2026.pdf", &bytes(4096, 2))
        .await;
}

#[tokio::test]
async fn sns_envelope_in_sqs() {
    let world = World::new().await;
    let key = "logs/app:1/2026-11-01 00:00.log";
    let version = world.put(key, bytes(512, 3)).await;
    let mut event = world.fixture("sqs-sns-s3-notification.json");
    let body = event["Records"][0]["body"].as_str().unwrap().to_owned();
    event["Records"][0]["body"] = patch_body(&body, key, &version).into();
    let out = world.handler().await.handle(event).await.unwrap();
    assert_eq!(out["batchItemFailures"], json!([]), "{out}");
    world.assert_replica(key, &bytes(512, 3)).await;
}

#[tokio::test]
async fn eventbridge_object_created_with_plain_and_spaced_keys() {
    let world = World::new().await;
    let handler = world.handler().await;
    // EventBridge sends keys unencoded (unlike S3 notifications): a literal space, plus,
    // percent and colon arrive as they are.
    for (i, key) in [
        "exports/plain.json",
        "exports/daily report+v2 100%41 12:00.json",
    ]
    .iter()
    .enumerate()
    {
        let body = bytes(64 + i, 4);
        let version = world.put(key, body.clone()).await;
        let mut event = world.fixture("eventbridge-object-created.json");
        event["detail"]["object"]["key"] = (*key).into();
        event["detail"]["object"]["version-id"] = version.into();
        event["detail"]["object"]["size"] = body.len().into();
        let out = handler.handle(event).await.unwrap();
        assert_eq!(out["copied"], 1, "{key}: {out}");
        world.assert_replica(key, &body).await;
    }
}

#[tokio::test]
async fn batch_operations_schema_1_and_2() {
    let world = World::new().await;
    let handler = world.handler().await;
    for (fixture, key) in [
        ("batch-operations-1.0.json", "backfill/2019/a b+c.txt"),
        ("batch-operations-2.0.json", "backfill/2020/report v2.csv"),
    ] {
        let body = bytes(300, 5);
        world.put(key, body.clone()).await;
        let mut event = world.fixture(fixture);
        let mut gone = event["tasks"][0].clone();
        gone["taskId"] = "gone".into();
        gone["s3Key"] = "no/such/key".into();
        let mut foreign = event["tasks"][0].clone();
        foreign["taskId"] = "foreign".into();
        if foreign.get("s3BucketArn").is_some() {
            foreign["s3BucketArn"] = "arn:aws:s3:::another-bucket".into();
        } else {
            foreign["s3Bucket"] = "another-bucket".into();
        }
        event["tasks"]
            .as_array_mut()
            .unwrap()
            .extend([gone, foreign]);
        let out = handler.handle(event.clone()).await.unwrap();
        assert_eq!(
            out["invocationSchemaVersion"],
            event["invocationSchemaVersion"]
        );
        assert_eq!(out["invocationId"], event["invocationId"]);
        let results = out["results"].as_array().unwrap();
        assert_eq!(results[0]["resultCode"], "Succeeded", "{out}");
        assert_eq!(
            results[1]["resultCode"], "Succeeded",
            "a vanished key is not retried: {out}"
        );
        assert!(results[1]["resultString"]
            .as_str()
            .unwrap()
            .contains("SourceGone"));
        assert_eq!(results[2]["resultCode"], "PermanentFailure", "{out}");
        assert!(results[2]["resultString"]
            .as_str()
            .unwrap()
            .contains("another-bucket"));
        world.assert_replica(key, &body).await;
    }
}

#[tokio::test]
async fn s3_test_event_is_a_no_op() {
    let world = World::new().await;
    let out = world
        .handler()
        .await
        .handle(world.fixture("s3-test-event.json"))
        .await
        .unwrap();
    assert_eq!(out["copied"], 0);
    assert_eq!(out["failed"], 0);
}

#[tokio::test]
async fn unrecognised_payloads_fail_the_invocation() {
    let world = World::new().await;
    let handler = world.handler().await;
    for payload in [json!({"hello": "world"}), json!([1, 2]), json!("Records")] {
        assert!(handler.handle(payload).await.is_err());
    }
}

#[tokio::test]
async fn batch_operations_copy_a_large_object_whose_size_the_task_does_not_give() {
    let world = World::new().await;
    let body = bytes(17 * 1024 * 1024, 9);
    world.put("backfill/huge.bin", body.clone()).await;
    let mut event = world.fixture("batch-operations-2.0.json");
    event["tasks"][0]["s3Key"] = "backfill/huge.bin".into();
    let out = world.handler().await.handle(event).await.unwrap();
    assert_eq!(out["results"][0]["resultCode"], "Succeeded", "{out}");
    assert!(
        out["results"][0]["resultString"]
            .as_str()
            .unwrap()
            .contains("Multipart"),
        "{out}"
    );
    world.assert_replica("backfill/huge.bin", &body).await;
}
