//! Tag changes after creation (ObjectTagging:Put / :Delete, EventBridge Object Tags Added /
//! Deleted): the replica's tags follow, its data is not rewritten, and only the replica of
//! that very source version is touched.

use aws_sdk_s3::types::{Tag, Tagging};
use replicator_tests::{bytes, form_encode, World};
use serde_json::Value;

use crate::common::deliver;

/// Sets the source version's tags (none: removes them).
async fn tag_source(world: &World, key: &str, version: &str, tags: &[(&str, &str)]) {
    if tags.is_empty() {
        world
            .src
            .delete_object_tagging()
            .bucket(&world.source_bucket)
            .key(key)
            .version_id(version)
            .send()
            .await
            .unwrap();
        return;
    }
    let set = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build().unwrap())
        .collect();
    world
        .src
        .put_object_tagging()
        .bucket(&world.source_bucket)
        .key(key)
        .version_id(version)
        .tagging(Tagging::builder().set_tag_set(Some(set)).build().unwrap())
        .send()
        .await
        .unwrap();
}

/// The S3 notification S3 sends for a tag change of `key` at `version`.
fn tagging_event(world: &World, name: &str, key: &str, version: &str) -> Value {
    let mut event = world.fixture("s3-object-tagging-put.json");
    let record = &mut event["Records"][0];
    record["eventName"] = name.into();
    record["s3"]["object"]["key"] = form_encode(key).into();
    record["s3"]["object"]["versionId"] = version.into();
    event
}

fn sorted(mut tags: Vec<(String, String)>) -> Vec<(String, String)> {
    tags.sort();
    tags
}

fn pairs(tags: &[(&str, &str)]) -> Vec<(String, String)> {
    sorted(
        tags.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

#[tokio::test]
async fn tag_changes_reach_the_replica_without_rewriting_it() {
    let world = World::new().await;
    let key = "tagged/report 1.csv";
    let body = bytes(2000, 5);
    let version = world
        .put_with(key, body.clone(), |p| p.tagging("team=data"))
        .await;
    deliver(&world, key, &version, body.len()).await.unwrap();
    assert_eq!(
        sorted(world.replica_tags(key).await),
        pairs(&[("team", "data")])
    );

    let handler = world.handler().await;
    tag_source(&world, key, &version, &[("team", "finance"), ("pii", "no")]).await;
    let answer = handler
        .handle(tagging_event(&world, "ObjectTagging:Put", key, &version))
        .await
        .unwrap();
    assert_eq!(answer["tags"], 1, "{answer}");
    assert_eq!(
        sorted(world.replica_tags(key).await),
        pairs(&[("team", "finance"), ("pii", "no")])
    );
    // Replayed: nothing to do.
    let again = handler
        .handle(tagging_event(&world, "ObjectTagging:Put", key, &version))
        .await
        .unwrap();
    assert_eq!(
        (again["tags"].clone(), again["skipped"].clone()),
        (0.into(), 1.into())
    );

    tag_source(&world, key, &version, &[]).await;
    handler
        .handle(tagging_event(&world, "ObjectTagging:Delete", key, &version))
        .await
        .unwrap();
    assert!(world.replica_tags(key).await.is_empty());
    assert_eq!(
        world.replica_versions(key).await.len(),
        1,
        "the data was rewritten"
    );
    world.assert_replica(key, &body).await;
}

#[tokio::test]
async fn a_tag_change_of_an_older_version_leaves_the_newer_replica_alone() {
    let world = World::new().await;
    let key = "tagged/versions.bin";
    let v1 = world
        .put_with(key, bytes(100, 1), |p| p.tagging("v=1"))
        .await;
    deliver(&world, key, &v1, 100).await.unwrap();
    let v2 = world
        .put_with(key, bytes(200, 2), |p| p.tagging("v=2"))
        .await;
    deliver(&world, key, &v2, 200).await.unwrap();
    tag_source(&world, key, &v1, &[("v", "1-changed")]).await;
    let answer = world
        .handler()
        .await
        .handle(tagging_event(&world, "ObjectTagging:Put", key, &v1))
        .await
        .unwrap();
    assert_eq!(answer["skipped"], 1, "{answer}");
    assert_eq!(sorted(world.replica_tags(key).await), pairs(&[("v", "2")]));
}

#[tokio::test]
async fn eventbridge_tag_events_and_unreplicated_keys() {
    let world = World::new().await;
    let key = "tagged/eventbridge.json";
    let version = world
        .put_with(key, bytes(50, 3), |p| p.tagging("a=1"))
        .await;
    let handler = world.handler().await;
    let mut event = world.fixture("eventbridge-object-tags-added.json");
    event["detail"]["object"]["key"] = key.into();
    event["detail"]["object"]["version-id"] = version.clone().into();
    // No replica yet: nothing to tag (the copy carries the tags when it happens).
    let answer = handler.handle(event.clone()).await.unwrap();
    assert_eq!(answer["skipped"], 1, "{answer}");
    assert!(world.replica_versions(key).await.is_empty());

    deliver(&world, key, &version, 50).await.unwrap();
    tag_source(&world, key, &version, &[("a", "2")]).await;
    let answer = handler.handle(event.clone()).await.unwrap();
    assert_eq!(answer["tags"], 1, "{answer}");
    assert_eq!(sorted(world.replica_tags(key).await), pairs(&[("a", "2")]));

    event["detail-type"] = "Object Tags Deleted".into();
    tag_source(&world, key, &version, &[]).await;
    handler.handle(event).await.unwrap();
    assert!(world.replica_tags(key).await.is_empty());
}
