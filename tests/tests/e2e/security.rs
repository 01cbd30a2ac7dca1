//! Bucket ownership and refusals: a bucket owned by anyone but the expected account is an
//! error and never a write. (The test emulator enforces ExpectedBucketOwner as S3 does.)

use replicator_tests::{World, SOURCE_ACCOUNT};

use crate::common::s3_event;

#[tokio::test]
async fn a_destination_owned_by_another_account_is_never_written() {
    let mut world = World::new().await;
    world
        .overrides
        .insert("DESTINATION_ACCOUNT_ID", "999999999999".into());
    let version = world.put("owned", b"data".to_vec()).await;
    let err = world
        .handler()
        .await
        .handle(s3_event(&world, "owned", &version, 4))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(!err.retryable, "{text}");
    assert!(text.contains("access denied"), "{text}");
    assert!(text.contains(&world.destination_bucket), "{text}");
    assert!(
        text.contains("destination role arn:aws:iam::222222222222:role/replicator-destination"),
        "{text}"
    );
    assert!(world.replica_bytes("owned").await.is_none());
    let listed = world
        .dst
        .list_object_versions()
        .bucket(&world.destination_bucket)
        .send()
        .await
        .unwrap();
    assert!(listed.versions().is_empty() && listed.delete_markers().is_empty());
}

#[tokio::test]
async fn a_source_owned_by_another_account_is_refused() {
    let mut world = World::new().await;
    world
        .overrides
        .insert("SOURCE_ACCOUNT_ID", "999999999999".into());
    let version = world.put("src-owned", b"data".to_vec()).await;
    let err = world
        .handler()
        .await
        .handle(s3_event(&world, "src-owned", &version, 4))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("the function's own role"), "{text}");
    assert!(text.contains(&world.source_bucket), "{text}");
    assert!(world.replica_bytes("src-owned").await.is_none());

    // With the right owner it works.
    world
        .overrides
        .insert("SOURCE_ACCOUNT_ID", SOURCE_ACCOUNT.into());
    let out = world
        .handler()
        .await
        .handle(s3_event(&world, "src-owned", &version, 4))
        .await
        .unwrap();
    assert_eq!(out["copied"], 1, "{out}");
}

#[tokio::test]
async fn a_missing_destination_bucket_is_a_permanent_error_naming_it() {
    let mut world = World::new().await;
    world
        .overrides
        .insert("DESTINATION_BUCKET", "no-such-destination-bucket".into());
    let version = world.put("k", b"data".to_vec()).await;
    let err = world
        .handler()
        .await
        .handle(s3_event(&world, "k", &version, 4))
        .await
        .unwrap_err();
    assert!(!err.retryable, "{err}");
    assert!(
        err.to_string().contains("no-such-destination-bucket"),
        "{err}"
    );
}
