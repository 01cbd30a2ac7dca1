//! Object Lock: a replica keeps its source version's retention and legal hold on every write
//! path (PutObject, CopyObject, multipart streamed or copied part by part); a locked source
//! and a destination without Object Lock is a permanent failure named as native
//! replication names it (DstBucketObjectLockConfigMissing), never an unlocked replica; and a
//! retention extended or a legal hold changed later reaches the replica without a rewrite.

use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::types::{
    ObjectLockLegalHold, ObjectLockLegalHoldStatus, ObjectLockMode, ObjectLockRetention,
    ObjectLockRetentionMode,
};
use replicator_core::{Method, Outcome, ReplicationError};
use replicator_tests::{bytes, World};

use crate::common::s3_event;

/// A retain-until date a day from now, to the millisecond S3 keeps.
fn a_day_from_now() -> DateTime {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    DateTime::from_millis(now - now % 1000 + 86_400_000 + 250)
}

/// What HEAD says of the replica's Object Lock: (mode, retain-until, legal hold).
async fn replica_lock(world: &World, key: &str) -> (Option<String>, Option<DateTime>, bool) {
    let head = world.replica_head(key).await;
    (
        head.object_lock_mode().map(|m| m.as_str().to_owned()),
        head.object_lock_retain_until_date().cloned(),
        head.object_lock_legal_hold_status()
            .is_some_and(|s| s == &ObjectLockLegalHoldStatus::On),
    )
}

async fn locked_world(destination_lock: bool) -> World {
    let mut world = World::new()
        .await
        .with_object_lock(true, destination_lock)
        .await;
    world.set("MULTIPART_THRESHOLD", "5MiB");
    world.set("PART_SIZE", "5MiB");
    world.set("SERVER_SIDE_SINGLE_COPY_MAX", "16MiB");
    world
}

fn method(outcome: &Outcome) -> Method {
    match outcome {
        Outcome::Copied { method, .. } => *method,
        other => panic!("not copied: {other:?}"),
    }
}

#[tokio::test]
async fn a_replica_keeps_retention_and_legal_hold_on_every_write_path() {
    let until = a_day_from_now();
    let cases = [
        ("off", 1024, Method::SinglePut),
        ("off", 17 * 1024 * 1024 + 3, Method::Multipart),
        ("auto", 1024, Method::ServerSideCopy),
        ("auto", 17 * 1024 * 1024 + 3, Method::ServerSideMultipart),
    ];
    for (i, (mode, size, expected)) in cases.into_iter().enumerate() {
        let mut world = locked_world(true).await;
        world.set("SERVER_SIDE_COPY", mode);
        let key = format!("locked/{i} ü.bin");
        let body = bytes(size, i as u64);
        let (lock_mode, hold) = if i % 2 == 0 {
            (ObjectLockMode::Governance, ObjectLockLegalHoldStatus::On)
        } else {
            (ObjectLockMode::Compliance, ObjectLockLegalHoldStatus::Off)
        };
        let version = world
            .put_with(&key, body.clone(), |p| {
                p.object_lock_mode(lock_mode.clone())
                    .object_lock_retain_until_date(until)
                    .object_lock_legal_hold_status(hold.clone())
                    .website_redirect_location("/elsewhere.html")
            })
            .await;
        let outcome = world
            .replicator()
            .await
            .replicate(&world.request(&key).with_version(Some(version)))
            .await
            .unwrap_or_else(|e| panic!("{expected:?}: {e}"));
        assert_eq!(method(&outcome), expected);
        world.assert_replica(&key, &body).await;
        assert_eq!(
            replica_lock(&world, &key).await,
            (
                Some(lock_mode.as_str().to_owned()),
                Some(until),
                hold == ObjectLockLegalHoldStatus::On
            ),
            "{expected:?}"
        );
        assert_eq!(
            world.replica_head(&key).await.website_redirect_location(),
            Some("/elsewhere.html"),
            "{expected:?}"
        );
    }
}

#[tokio::test]
async fn a_locked_source_into_a_bucket_without_object_lock_is_a_named_permanent_failure() {
    let world = locked_world(false).await;
    let key = "locked/held.txt";
    let version = world
        .put_with(key, bytes(300, 1), |p| {
            p.object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        })
        .await;

    // Through the real handler, as S3 delivers it: the locked object's message fails, naming
    // the reason; the unlocked one in the same bucket is copied.
    let plain = world.put("plain.txt", bytes(200, 2)).await;
    let mut event = s3_event(&world, key, &version, 300);
    let other = s3_event(&world, "plain.txt", &plain, 200)["Records"][0].clone();
    event["Records"].as_array_mut().unwrap().push(other);
    let failed = world.handler().await.handle(event).await.unwrap_err();
    let text = failed.to_string();
    assert!(
        text.contains("DstBucketObjectLockConfigMissing")
            && text.contains(&world.destination_bucket)
            && text.contains("legal hold"),
        "{text}"
    );
    assert!(world.replica_versions(key).await.is_empty());
    world.assert_replica("plain.txt", &bytes(200, 2)).await;

    let error = world
        .replicator()
        .await
        .replicate(&world.request(key))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ReplicationError::ObjectLockConfigMissing { .. }),
        "{error}"
    );
    assert_eq!(error.kind(), "DstBucketObjectLockConfigMissing");
    assert!(!error.is_retryable());
    assert!(world.replica_versions(key).await.is_empty());
}

#[tokio::test]
async fn a_later_retention_or_legal_hold_change_reaches_the_replica_without_a_rewrite() {
    let world = locked_world(true).await;
    let key = "locked/later.txt";
    let until = a_day_from_now();
    let version = world
        .put_with(key, bytes(500, 4), |p| {
            p.object_lock_mode(ObjectLockMode::Governance)
                .object_lock_retain_until_date(until)
        })
        .await;
    let replicator = world.replicator().await;
    let request = world.request(key).with_version(Some(version.clone()));
    replicator.replicate(&request).await.unwrap();
    let written = world.replica_versions(key).await;

    // The source's retention is extended and a legal hold put on it.
    let later = DateTime::from_millis(until.to_millis().unwrap() + 86_400_000);
    world
        .src
        .put_object_retention()
        .bucket(&world.source_bucket)
        .key(key)
        .version_id(&version)
        .retention(
            ObjectLockRetention::builder()
                .mode(ObjectLockRetentionMode::Governance)
                .retain_until_date(later)
                .build(),
        )
        .send()
        .await
        .unwrap();
    world
        .src
        .put_object_legal_hold()
        .bucket(&world.source_bucket)
        .key(key)
        .version_id(&version)
        .legal_hold(
            ObjectLockLegalHold::builder()
                .status(ObjectLockLegalHoldStatus::On)
                .build(),
        )
        .send()
        .await
        .unwrap();

    let outcome = replicator.replicate(&request).await.unwrap();
    assert!(
        matches!(outcome, Outcome::LockReplicated { .. }),
        "{outcome:?}"
    );
    assert_eq!(
        replica_lock(&world, key).await,
        (Some("GOVERNANCE".to_owned()), Some(later), true)
    );
    assert_eq!(world.replica_versions(key).await, written, "rewritten");

    // Once equal, nothing more is done.
    let again = replicator.replicate(&request).await.unwrap();
    assert!(matches!(again, Outcome::Skipped { .. }), "{again:?}");
}

#[tokio::test]
async fn verify_finds_lock_drift_and_repair_sets_the_sources_lock_without_a_rewrite() {
    let world = locked_world(true).await;
    let key = "locked/drift.txt";
    let until = a_day_from_now();
    world
        .put_with(key, bytes(400, 6), |p| {
            p.object_lock_mode(ObjectLockMode::Governance)
                .object_lock_retain_until_date(until)
                .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        })
        .await;
    world
        .replicator()
        .await
        .replicate(&world.request(key))
        .await
        .unwrap();
    let written = world.replica_versions(key).await;
    // Someone takes the replica's legal hold off by hand.
    world
        .dst
        .put_object_legal_hold()
        .bucket(&world.destination_bucket)
        .key(key)
        .legal_hold(
            ObjectLockLegalHold::builder()
                .status(ObjectLockLegalHoldStatus::Off)
                .build(),
        )
        .send()
        .await
        .unwrap();

    let (code, lines) = crate::verify::verify_json(&world, &["--deep"]).await;
    assert_eq!(lines[key]["class"], "lock-drift", "{lines:?}");
    assert_ne!(code, 0);
    let (code, lines) = crate::verify::verify_json(&world, &["--deep", "--repair"]).await;
    assert_eq!(lines[key]["found"], "lock-drift", "{lines:?}");
    assert_eq!(lines[key]["class"], "ok", "{lines:?}");
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(
        replica_lock(&world, key).await,
        (Some("GOVERNANCE".to_owned()), Some(until), true)
    );
    assert_eq!(world.replica_versions(key).await, written, "rewritten");
}
