//! An unversioned source bucket (native replication refuses these): the current object is
//! copied, a replay writes nothing, and a same-size rewrite is detected.

use aws_sdk_s3::primitives::ByteStream;
use replicator_tests::World;

async fn unversioned_world() -> World {
    let world = World::new().await;
    // A fresh bucket with versioning never enabled.
    let bucket = format!("{}-plain", world.source_bucket);
    world.with_source_bucket(bucket).await
}

async fn put_plain(world: &World, key: &str, body: &[u8]) {
    world
        .src
        .put_object()
        .bucket(&world.source_bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn unversioned_sources_replicate_and_detect_same_size_rewrites() {
    let world = unversioned_world().await;
    let replicator = world.replicator().await;
    let request = replicator_core::ObjectRequest::created(world.source_bucket.clone(), "plain.txt");

    put_plain(&world, "plain.txt", b"AAAA").await;
    let first = replicator.replicate(&request).await.unwrap();
    assert!(
        matches!(first, replicator_core::Outcome::Copied { .. }),
        "{first:?}"
    );
    world.assert_replica("plain.txt", b"AAAA").await;

    let replay = replicator.replicate(&request).await.unwrap();
    assert!(
        matches!(replay, replicator_core::Outcome::Skipped { .. }),
        "{replay:?}"
    );
    assert_eq!(world.replica_versions("plain.txt").await.len(), 1);

    // Same size, different bytes, possibly within the same second.
    put_plain(&world, "plain.txt", b"BBBB").await;
    let rewrite = replicator.replicate(&request).await.unwrap();
    assert!(
        matches!(rewrite, replicator_core::Outcome::Copied { .. }),
        "{rewrite:?}"
    );
    world.assert_replica("plain.txt", b"BBBB").await;
}
