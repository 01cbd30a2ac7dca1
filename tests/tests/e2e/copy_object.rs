//! The copy itself, driven through direct S3 notifications.

use replicator_tests::{bytes, World};
use serde_json::json;

use crate::common::s3_event;

#[tokio::test]
async fn small_object_is_replicated_with_the_destination_key() {
    let world = World::new().await;
    let body = bytes(1000, 1);
    let version = world.put("plain.txt", body.clone()).await;
    let handler = world.handler().await;
    let out = handler
        .handle(s3_event(&world, "plain.txt", &version, body.len()))
        .await
        .unwrap();
    assert_eq!(out["copied"], 1, "{out}");
    world.assert_replica("plain.txt", &body).await;
}
