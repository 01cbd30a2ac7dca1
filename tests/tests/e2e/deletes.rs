//! REPLICATE_DELETES: a delete marker on the source, or a delete from an unversioned source,
//! becomes a delete marker on the replica, only for replicas this replicator wrote of this
//! very key while the source key stays absent; permanent version deletes of a versioned
//! source are never replicated; lifecycle expirations only with
//! REPLICATE_LIFECYCLE_EXPIRATIONS.

use replicator_tests::World;

use crate::common::s3_event;

fn delete_event(world: &World, key: &str, marker_version: &str) -> serde_json::Value {
    let mut event = world.fixture("s3-delete-marker-created.json");
    let object = &mut event["Records"][0]["s3"]["object"];
    object["key"] = replicator_tests::form_encode(key).into();
    object["versionId"] = marker_version.into();
    event
}

async fn delete_source(world: &World, key: &str) -> String {
    world
        .delete_source(key)
        .await
        .expect("a delete marker, with its version id")
}

/// Copies `key` (written with `body`) by its event, deletes it at the source, and delivers
/// the delete-marker event to the same copier: that event's answer.
async fn copied_then_deleted(world: &World, key: &str, body: &[u8]) -> serde_json::Value {
    let handler = world.handler().await;
    let v = world.put(key, body.to_vec()).await;
    handler
        .handle(s3_event(world, key, &v, body.len()))
        .await
        .unwrap();
    let marker = delete_source(world, key).await;
    handler
        .handle(delete_event(world, key, &marker))
        .await
        .unwrap()
}

#[tokio::test]
async fn delete_markers_are_replicated_when_enabled() {
    let mut world = World::new().await;
    world.set("REPLICATE_DELETES", "true");
    let out = copied_then_deleted(&world, "to delete.txt", b"bye").await;
    assert_eq!(out["deleted"], 1, "{out}");
    assert!(world.replica_bytes("to delete.txt").await.is_none());
    // The replica's data is still there as a noncurrent version, as with native replication.
    assert_eq!(world.replica_versions("to delete.txt").await.len(), 1);
}

#[tokio::test]
async fn delete_markers_are_ignored_by_default() {
    let world = World::new().await;
    let out = copied_then_deleted(&world, "keep", b"k").await;
    assert_eq!(out["skipped"], 1, "{out}");
    world.assert_replica("keep", b"k").await;
}

#[tokio::test]
async fn objects_not_written_by_the_replicator_are_never_deleted() {
    let mut world = World::new().await;
    world.set("REPLICATE_DELETES", "true");
    world.put_foreign("theirs", b"not ours").await;
    world.put("theirs", b"src".to_vec()).await;
    let marker = delete_source(&world, "theirs").await;
    let out = world
        .handler()
        .await
        .handle(delete_event(&world, "theirs", &marker))
        .await
        .unwrap();
    assert_eq!(out["skipped"], 1, "{out}");
    assert_eq!(
        world.replica_bytes("theirs").await.as_deref(),
        Some(&b"not ours"[..])
    );
}

#[tokio::test]
async fn a_stale_delete_does_not_remove_a_recreated_object() {
    let mut world = World::new().await;
    world.set("REPLICATE_DELETES", "true");
    let handler = world.handler().await;
    world.put("phoenix", b"1".to_vec()).await;
    let marker = delete_source(&world, "phoenix").await;
    let v2 = world.put("phoenix", b"2".to_vec()).await;
    handler
        .handle(s3_event(&world, "phoenix", &v2, 1))
        .await
        .unwrap();
    let out = handler
        .handle(delete_event(&world, "phoenix", &marker))
        .await
        .unwrap();
    assert_eq!(out["skipped"], 1, "{out}");
    world.assert_replica("phoenix", b"2").await;
}

#[tokio::test]
async fn permanent_version_deletes_are_never_replicated() {
    let mut world = World::new().await;
    world.set("REPLICATE_DELETES", "true");
    let handler = world.handler().await;
    let v = world.put("perm", b"p".to_vec()).await;
    handler
        .handle(s3_event(&world, "perm", &v, 1))
        .await
        .unwrap();
    let mut event = delete_event(&world, "perm", &v);
    event["Records"][0]["eventName"] = "ObjectRemoved:Delete".into();
    let out = handler.handle(event).await.unwrap();
    assert_eq!(out["skipped"], 1, "{out}");
    world.assert_replica("perm", b"p").await;
}

/// A world whose source bucket was never versioned, with `key` written and copied.
async fn unversioned_copied(mut world: World, key: &str, deletes: bool) -> World {
    if deletes {
        world.set("REPLICATE_DELETES", "true");
    }
    let name = format!("src-unversioned-{:08x}", rand::random::<u32>());
    let world = world.with_source_bucket(name).await;
    put_unversioned(&world, key).await;
    world
        .handler()
        .await
        .handle(s3_event(&world, key, "", 4))
        .await
        .unwrap();
    world.assert_replica(key, b"data").await;
    world
}

/// S3's event for a DELETE on an unversioned bucket: `ObjectRemoved:Delete`, no version id.
fn unversioned_delete(world: &World, key: &str) -> serde_json::Value {
    let mut event = world.fixture("s3-object-removed-unversioned.json");
    let object = &mut event["Records"][0]["s3"]["object"];
    object["key"] = replicator_tests::form_encode(key).into();
    assert!(object.get("versionId").is_none());
    event
}

async fn put_unversioned(world: &World, key: &str) {
    world
        .src
        .put_object()
        .bucket(&world.source_bucket)
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"data"))
        .send()
        .await
        .unwrap();
}

async fn delete_unversioned(world: &World, key: &str) {
    world
        .src
        .delete_object()
        .bucket(&world.source_bucket)
        .key(key)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unversioned_sources_delete_deletes_the_replica_with_replicate_deletes_only() {
    // Regression: ObjectRemoved:Delete was read as a permanent version delete and skipped,
    // so a replica of a key deleted from an unversioned source lingered.
    for deletes in [false, true] {
        let world = unversioned_copied(World::new().await, "gone soon.txt", deletes).await;
        delete_unversioned(&world, "gone soon.txt").await;
        let out = world
            .handler()
            .await
            .handle(unversioned_delete(&world, "gone soon.txt"))
            .await
            .unwrap();
        if deletes {
            assert_eq!(out["deleted"], 1, "{out}");
            assert!(world.replica_bytes("gone soon.txt").await.is_none());
            // A delete marker in the versioned destination: the data stays as a version.
            assert_eq!(world.replica_versions("gone soon.txt").await.len(), 1);
        } else {
            assert_eq!(out["skipped"], 1, "{out}");
            world.assert_replica("gone soon.txt", b"data").await;
        }
    }
}

#[tokio::test]
async fn an_unversioned_delete_keeps_a_recreated_key_and_others_objects() {
    let world = unversioned_copied(World::new().await, "again", true).await;
    // Deleted, then written again before the delete's event is handled: the source key
    // exists, so the replica stays.
    delete_unversioned(&world, "again").await;
    put_unversioned(&world, "again").await;
    let handler = world.handler().await;
    let out = handler
        .handle(unversioned_delete(&world, "again"))
        .await
        .unwrap();
    assert_eq!(out["skipped"], 1, "{out}");
    world.assert_replica("again", b"data").await;
    // A destination object this replicator did not write is never deleted.
    world.put_foreign("not-ours", b"theirs").await;
    let out = handler
        .handle(unversioned_delete(&world, "not-ours"))
        .await
        .unwrap();
    assert_eq!(out["skipped"], 1, "{out}");
    assert_eq!(
        world.replica_bytes("not-ours").await.as_deref(),
        Some(&b"theirs"[..])
    );
}

#[tokio::test]
async fn lifecycle_expirations_delete_replicas_only_when_opted_in() {
    for opted_in in [false, true] {
        let mut world = World::new().await;
        // REPLICATE_DELETES alone never replicates an expiration.
        world.set("REPLICATE_DELETES", "true");
        if opted_in {
            world.set("REPLICATE_LIFECYCLE_EXPIRATIONS", "true");
        }
        let world = unversioned_copied(world, "expiring/a.log", true).await;
        put_unversioned(&world, "expiring/b.log").await;
        world
            .handler()
            .await
            .handle(s3_event(&world, "expiring/b.log", "", 4))
            .await
            .unwrap();
        delete_unversioned(&world, "expiring/a.log").await;
        delete_unversioned(&world, "expiring/b.log").await;
        // S3 notification, and EventBridge's Object Deleted for a lifecycle expiration.
        let mut notification = unversioned_delete(&world, "expiring/a.log");
        notification["Records"][0]["eventName"] = "LifecycleExpiration:Delete".into();
        let mut eventbridge = world.fixture("eventbridge-object-created.json");
        eventbridge["detail-type"] = "Object Deleted".into();
        eventbridge["detail"]["bucket"]["name"] = world.source_bucket.clone().into();
        eventbridge["detail"]["object"] =
            serde_json::json!({"key": "expiring/b.log", "sequencer": "0A"});
        eventbridge["detail"]["deletion-type"] = "Permanently Deleted".into();
        eventbridge["detail"]["reason"] = "Lifecycle Expiration".into();
        let handler = world.handler().await;
        for event in [notification, eventbridge] {
            let out = handler.handle(event).await.unwrap();
            let counted = if opted_in { "deleted" } else { "skipped" };
            assert_eq!(out[counted], 1, "opted in: {opted_in}: {out}");
        }
        for key in ["expiring/a.log", "expiring/b.log"] {
            assert_eq!(
                world.replica_bytes(key).await.is_none(),
                opted_in,
                "{key}, opted in: {opted_in}"
            );
        }
    }
}
