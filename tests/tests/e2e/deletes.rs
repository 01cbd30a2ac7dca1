//! REPLICATE_DELETES: a delete marker on the source becomes a delete marker on the replica,
//! only for replicas this replicator wrote; permanent version deletes are never replicated.

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
