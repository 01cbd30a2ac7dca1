//! Archived sources (GLACIER, DEEP_ARCHIVE, Intelligent-Tiering archive tiers): S3 answers
//! InvalidObjectState to a GET and ObjectNotInActiveTierError to a copy until the object is
//! restored. That is its own reason — not a missing permission, not a failure the sync
//! retries every run — and it never switches the server-side copy mode off.

use aws_sdk_s3::types::{GlacierJobParameters, RestoreRequest, StorageClass, Tier};
use replicator_core::sync::SyncRequest;
use replicator_core::{Method, ObjectRequest, Outcome, ReplicationError};
use replicator_tests::{bytes, World};

async fn put_archived(world: &World, key: &str) -> String {
    world
        .put_with(key, bytes(700, 9), |p| {
            p.storage_class(StorageClass::Glacier)
        })
        .await
}

async fn replicate(world: &World, key: &str) -> Result<Outcome, ReplicationError> {
    world
        .replicator()
        .await
        .replicate(&ObjectRequest::created(world.source_bucket.clone(), key))
        .await
}

#[tokio::test]
async fn an_archived_source_is_archived_not_access_denied_on_either_path() {
    // Regression: S3's 403 for an archived object was read as "access denied" (a permission
    // to grant), on the streaming path and on the server-side path alike.
    for mode in ["off", "auto"] {
        let mut world = World::new().await;
        world.set("SERVER_SIDE_COPY", mode);
        put_archived(&world, "cold/archived.bin").await;
        let error = replicate(&world, "cold/archived.bin").await.unwrap_err();
        assert!(
            matches!(error, ReplicationError::Archived { .. }),
            "{mode}: {error}"
        );
        assert_eq!(error.kind(), "Archived");
        assert!(!error.is_retryable());
        let text = error.to_string();
        assert!(
            text.contains("cold/archived.bin") && text.contains("restore"),
            "{text}"
        );
        assert!(world.replica_versions("cold/archived.bin").await.is_empty());
    }
}

#[tokio::test]
async fn an_archived_source_does_not_switch_server_side_copy_off() {
    let mut world = World::new().await;
    world.set("SERVER_SIDE_COPY", "auto");
    let replicator = world.replicator().await;
    put_archived(&world, "cold/a.bin").await;
    let body = bytes(900, 3);
    world.put("warm/b.bin", body.clone()).await;
    let archived = replicator
        .replicate(&ObjectRequest::created(
            world.source_bucket.clone(),
            "cold/a.bin",
        ))
        .await;
    assert!(matches!(archived, Err(ReplicationError::Archived { .. })));
    let outcome = replicator
        .replicate(&ObjectRequest::created(
            world.source_bucket.clone(),
            "warm/b.bin",
        ))
        .await
        .unwrap();
    assert!(
        matches!(
            outcome,
            Outcome::Copied {
                method: Method::ServerSideCopy,
                ..
            }
        ),
        "the archived source switched the mode: {outcome:?}"
    );
    world.assert_replica("warm/b.bin", &body).await;
}

#[tokio::test]
async fn the_sync_counts_archived_sources_apart_and_copies_them_once_restored() {
    let world = World::new().await;
    for i in 0..3 {
        world
            .put(&format!("warm/{i}"), bytes(100 + i, i as u64))
            .await;
    }
    put_archived(&world, "cold/archived.bin").await;
    let syncer = world.syncer().await;
    let run = |id: &str| SyncRequest {
        run_id: id.into(),
        ..Default::default()
    };
    let first = syncer.run(run("1")).await.unwrap();
    assert_eq!(
        (first.copied, first.failed, first.archived),
        (3, 0, 1),
        "{first:?}"
    );
    assert_eq!(first.archived_keys[0].key, "cold/archived.bin");
    assert!(first.archived_keys[0].error.contains("archived"));
    assert!(first.failed_keys.is_empty() && first.complete, "{first:?}");
    let emf = first.emf("fn");
    assert_eq!(emf["ObjectsArchived"], 1);
    assert_eq!(emf["ObjectsFailed"], 0);

    // Restored (moto completes a restore at once): the next pass copies it.
    world
        .src
        .restore_object()
        .bucket(&world.source_bucket)
        .key("cold/archived.bin")
        .restore_request(
            RestoreRequest::builder()
                .days(1)
                .glacier_job_parameters(
                    GlacierJobParameters::builder()
                        .tier(Tier::Bulk)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let second = syncer.run(run("2")).await.unwrap();
    assert_eq!((second.copied, second.archived), (1, 0), "{second:?}");
    world
        .assert_replica("cold/archived.bin", &bytes(700, 9))
        .await;
}

/// Whether the source's HEAD shows a restore, and whether it is still under way.
async fn restore_header(world: &World, key: &str) -> Option<String> {
    world
        .src
        .head_object()
        .bucket(&world.source_bucket)
        .key(key)
        .send()
        .await
        .unwrap()
        .restore()
        .map(str::to_owned)
}

#[tokio::test]
async fn with_restore_archived_the_copier_starts_a_restore_and_copies_on_its_completion() {
    let mut world = World::new().await;
    world.set("RESTORE_ARCHIVED", "Bulk");
    world.set("RESTORE_DAYS", "2");
    let version = put_archived(&world, "cold/restore me.bin").await;
    let handler = world.handler().await;
    let out = handler
        .handle(crate::common::s3_event(
            &world,
            "cold/restore me.bin",
            &version,
            700,
        ))
        .await
        .unwrap();
    // Pending, not failed: the message is done, the completion event brings the copy.
    assert_eq!(
        (out["restores"].as_u64(), out["failed"].as_u64()),
        (Some(1), Some(0)),
        "{out}"
    );
    assert!(world
        .replica_versions("cold/restore me.bin")
        .await
        .is_empty());
    // The emulator completes a restore at once (S3 takes minutes to hours).
    let restore = restore_header(&world, "cold/restore me.bin").await;
    assert!(
        restore
            .as_deref()
            .is_some_and(|r| r.contains("ongoing-request=\"false\"")),
        "{restore:?}"
    );
    let mut completed = crate::common::s3_event(&world, "cold/restore me.bin", &version, 700);
    completed["Records"][0]["eventName"] = "ObjectRestore:Completed".into();
    let out = handler.handle(completed).await.unwrap();
    assert_eq!(out["copied"], 1, "{out}");
    world
        .assert_replica("cold/restore me.bin", &bytes(700, 9))
        .await;
}

#[tokio::test]
async fn with_restore_archived_a_sync_pass_starts_the_restore_and_a_later_one_copies() {
    let mut world = World::new().await;
    world.set("RESTORE_ARCHIVED", "standard");
    put_archived(&world, "cold/synced.bin").await;
    let syncer = world.syncer().await;
    let run = |id: &str| SyncRequest {
        run_id: id.into(),
        ..Default::default()
    };
    let first = syncer.run(run("1")).await.unwrap();
    assert_eq!((first.archived, first.failed), (1, 0), "{first:?}");
    assert!(
        first.archived_keys[0].error.contains("Standard restore"),
        "{first:?}"
    );
    assert!(restore_header(&world, "cold/synced.bin").await.is_some());
    let second = syncer.run(run("2")).await.unwrap();
    assert_eq!((second.copied, second.archived), (1, 0), "{second:?}");
    world
        .assert_replica("cold/synced.bin", &bytes(700, 9))
        .await;
}

#[tokio::test]
async fn restore_archived_is_validated_at_start_up() {
    for (variable, value) in [("RESTORE_ARCHIVED", "Glacier"), ("RESTORE_DAYS", "0")] {
        let mut world = World::new().await;
        world.set("RESTORE_ARCHIVED", "Bulk");
        world.set(variable, value);
        let vars = world.vars();
        let error = replicator_core::Config::from_lookup(|k| vars.get(k).cloned()).unwrap_err();
        assert!(error.to_string().contains(variable), "{error}");
    }
}
