//! A destination shared with other writers — another deployment under another prefix, an
//! application, anyone who may send to the queue — cannot get the replicator to overwrite
//! state that is not its own, delete what it did not write, read what is not its own state,
//! or multiply the work of one message.

use std::collections::HashMap;
use std::time::Instant;

use replicator_core::sync::SyncRequest;
use replicator_core::ReplicationError;
use replicator_tests::World;
use serde_json::{json, Value};

use crate::common::{deliver, s3_event};

/// An SQS batch: one message per body.
fn sqs_batch(world: &World, bodies: &[Value]) -> Value {
    let template = world.fixture("sqs-s3-notification.json")["Records"][0].clone();
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let mut r = template.clone();
            r["messageId"] = format!("m-{i}").into();
            r["body"] = body.to_string().into();
            r
        })
        .collect();
    json!({ "Records": records })
}

fn failed_messages(out: &Value) -> Vec<String> {
    out["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn keys_with_the_reserved_segment_anywhere_are_refused_and_never_listed() {
    // Regression: only `{own prefix}.s3-fallback-replicator/` was refused, so the source key
    // of another deployment's checkpoint (prefix `b/`) overwrote it.
    let world = World::new().await;
    let theirs = "b/.s3-fallback-replicator/sync/their-source/all.json";
    world.put_foreign(theirs, b"{\"theirs\": true}").await;
    let version = world.put(theirs, b"a source object".to_vec()).await;
    let err = deliver(&world, theirs, &version, 15).await.unwrap_err();
    assert!(!err.retryable, "{err}");
    assert!(err.to_string().contains(".s3-fallback-replicator"), "{err}");

    let report = world
        .syncer()
        .await
        .run(SyncRequest {
            run_id: "reserved".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((report.copied, report.failed), (0, 0), "{report:?}");
    assert_eq!(
        world.replica_bytes(theirs).await.as_deref(),
        Some(&b"{\"theirs\": true}"[..]),
        "the other deployment's state is untouched"
    );
}

#[tokio::test]
async fn only_replicas_naming_this_source_bucket_and_key_are_deleted() {
    // Regression: any provenance at all was enough for the sync to delete a replica.
    let mut world = World::new().await;
    world.set("SYNC_DELETE", "true");
    let provenance = |source: &str| {
        HashMap::from([
            ("replicator-source".to_owned(), source.to_owned()),
            ("replicator-source-etag".to_owned(), "abc".to_owned()),
            ("replicator-source-last-modified".to_owned(), "1".to_owned()),
        ])
    };
    for (key, source) in [
        (
            "gone/other-bucket",
            "another-source-bucket/gone/other-bucket".to_owned(),
        ),
        (
            "gone/other-key",
            format!("{}/gone/some-other-key", world.source_bucket),
        ),
    ] {
        world
            .dst
            .put_object()
            .bucket(&world.destination_bucket)
            .key(key)
            .set_metadata(Some(provenance(&source)))
            .body(b"not this source's".to_vec().into())
            .send()
            .await
            .unwrap();
    }
    // A genuine orphan: copied from this source, then deleted there.
    world.put("gone/ours", b"ours".to_vec()).await;
    world
        .replicator()
        .await
        .replicate(&world.request("gone/ours"))
        .await
        .unwrap();
    world.delete_source("gone/ours").await;
    world
        .put(
            "gone/still-here",
            b"keeps the source listing non-empty".to_vec(),
        )
        .await;

    let report = world
        .syncer()
        .await
        .run(SyncRequest {
            run_id: "deletes".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(report.deleted, 1, "{report:?}");
    assert!(world.replica_bytes("gone/ours").await.is_none());
    assert!(world.replica_bytes("gone/other-bucket").await.is_some());
    assert!(world.replica_bytes("gone/other-key").await.is_some());
}

#[tokio::test]
async fn each_source_bucket_has_its_own_checkpoint() {
    // Regression: the checkpoint key named only the prefix: a second source bucket syncing
    // into the same destination resumed the first one's pass, after its last key.
    let world = World::new().await;
    let other = World::new().await;
    let other = World {
        destination_bucket: world.destination_bucket.clone(),
        ..other
    };
    world.put_numbered(5, |i| format!("z/{i}"), |_| 10).await;
    other.put_numbered(5, |i| format!("m/{i}"), |_| 10).await;
    let stopped = world
        .syncer()
        .await
        .run(SyncRequest {
            run_id: "first".into(),
            max_objects: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!stopped.complete);
    let report = other
        .syncer()
        .await
        .run(SyncRequest {
            run_id: "second".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(report.complete, "{report:?}");
    assert_eq!(report.copied, 5, "{report:?}");
}

#[tokio::test]
async fn a_checkpoint_that_is_not_the_replicators_fails_the_run_loudly() {
    // Regression: a malformed checkpoint silently became a new one, and a huge one was read
    // whole into memory.
    let world = World::new().await;
    world.put("c/a", b"a".to_vec()).await;
    let key = format!(
        ".s3-fallback-replicator/sync/{}/all.json",
        world.source_bucket
    );
    let huge = format!("{{\"failed\": [\"{}\"]}}", "x".repeat(1536 * 1024));
    for junk in [b"not json at all".to_vec(), huge.into_bytes()] {
        world.put_foreign(&key, &junk).await;
        let err = world
            .syncer()
            .await
            .run(SyncRequest {
                run_id: "junk".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(
            matches!(err, ReplicationError::StateUnreadable { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains(&key), "{err}");
        assert_eq!(
            world.replica_bytes(&key).await.unwrap(),
            junk,
            "left as it is"
        );
        assert!(world.replica_bytes("c/a").await.is_none(), "nothing copied");
    }
}

#[tokio::test]
async fn a_message_with_more_records_than_s3_sends_is_refused_whole() {
    // Regression: one message could carry 10,000 records and time out a whole batch.
    let world = World::new().await;
    let mut records = Vec::new();
    for i in 0..11 {
        let key = format!("many/{i}");
        let version = world.put(&key, b"x".to_vec()).await;
        records.push(s3_event(&world, &key, &version, 1)["Records"][0].clone());
    }
    let one = world.put("one/ok", b"ok".to_vec()).await;
    let batch = sqs_batch(
        &world,
        &[
            json!({ "Records": records }),
            s3_event(&world, "one/ok", &one, 2),
        ],
    );
    let out = world.handler().await.handle(batch).await.unwrap();
    assert_eq!(failed_messages(&out), ["m-0"], "{out}");
    world.assert_replica("one/ok", b"ok").await;
    for i in 0..11 {
        assert!(world.replica_bytes(&format!("many/{i}")).await.is_none());
    }
}

#[tokio::test]
async fn no_object_is_started_past_the_deadline() {
    // Regression: the time left was checked only between parts, so objects started after the
    // deadline were cut off by the Lambda timeout instead of coming back.
    let world = World::new().await;
    let a = world.put("late/a", b"a".to_vec()).await;
    let b = world.put("late/b", b"b".to_vec()).await;
    let batch = sqs_batch(
        &world,
        &[
            s3_event(&world, "late/a", &a, 1),
            s3_event(&world, "late/b", &b, 1),
        ],
    );
    let handler = world.handler().await.with_deadline(Some(Instant::now()));
    let out = handler.handle(batch).await.unwrap();
    assert_eq!(failed_messages(&out), ["m-0", "m-1"], "{out}");
    assert!(world.replica_bytes("late/a").await.is_none());
    assert!(world.replica_bytes("late/b").await.is_none());
}
