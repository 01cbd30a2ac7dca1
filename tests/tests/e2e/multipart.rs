//! Multipart copies stopped at a deadline: the upload is kept and the next attempt sends only
//! the missing parts; an upload whose source changed meanwhile is aborted, not completed.

use replicator_core::clock::Stop;
use replicator_core::{ObjectRequest, Outcome, ReplicationError};
use replicator_tests::{bytes, World};

const MIB: usize = 1024 * 1024;

fn small_parts(world: &mut World) {
    // 5 MiB parts: a 27 MiB object is 6 parts.
    world.set("PART_SIZE", "5MiB");
    world.set("MULTIPART_THRESHOLD", "5MiB");
    world.set("MAX_IN_FLIGHT_BYTES", "5MiB");
}

#[tokio::test]
async fn a_copy_stopped_at_the_deadline_resumes_from_its_uploaded_parts() {
    let mut world = World::new().await;
    small_parts(&mut world);
    let body = bytes(27 * MIB, 11);
    let version = world.put("big/resumable.bin", body.clone()).await;
    let replicator = world.replicator().await;
    let request = ObjectRequest::created(world.source_bucket.clone(), "big/resumable.bin")
        .with_version(Some(version));

    // The "deadline" arrives before part 4: parts 1-3 are sent, then the copy stops.
    let err = replicator
        .replicate_until(&request, &Stop::when(|part| part >= 4))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ReplicationError::DeadlineReached { .. }),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert!(
        world.replica_bytes("big/resumable.bin").await.is_none(),
        "nothing completed"
    );
    assert_eq!(
        world.open_uploads().await,
        1,
        "the upload is kept for the next attempt"
    );
    assert_eq!(world.upload_records().await, 1);

    let outcome = replicator.replicate(&request).await.unwrap();
    let Outcome::Copied {
        parts_resumed,
        bytes: n,
        ..
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(parts_resumed, 3, "parts 1-3 are not sent again");
    assert_eq!(n, body.len() as u64);
    world.assert_replica("big/resumable.bin", &body).await;
    assert_eq!(world.open_uploads().await, 0);
    assert_eq!(
        world.upload_records().await,
        0,
        "the manifest is removed once the copy completes"
    );
    assert_eq!(world.replica_versions("big/resumable.bin").await.len(), 1);
}

#[tokio::test]
async fn parts_in_flight_at_the_deadline_finish_and_are_not_sent_again() {
    let mut world = World::new().await;
    small_parts(&mut world);
    // Three parts in flight at once.
    world.set("MAX_IN_FLIGHT_BYTES", "15MiB");
    let body = bytes(27 * MIB, 15);
    let version = world.put("big/in-flight.bin", body.clone()).await;
    let replicator = world.replicator().await;
    let request = ObjectRequest::created(world.source_bucket.clone(), "big/in-flight.bin")
        .with_version(Some(version));
    // Parts 1-3 start together; the deadline comes before parts 2 and 3 send anything.
    // Regression: the first DeadlineReached used to cancel part 1 halfway, wasting it.
    let err = replicator
        .replicate_until(&request, &Stop::when(|part| part >= 2))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ReplicationError::DeadlineReached { .. }),
        "{err:?}"
    );
    let outcome = replicator.replicate(&request).await.unwrap();
    let Outcome::Copied { parts_resumed, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(parts_resumed, 1, "part 1 finished before the copy stopped");
    world.assert_replica("big/in-flight.bin", &body).await;
    assert_eq!(world.open_uploads().await, 0);
}

#[tokio::test]
async fn the_sync_aborts_uploads_another_copy_made_useless_and_keeps_resumable_ones() {
    let mut world = World::new().await;
    small_parts(&mut world);
    let done_elsewhere = bytes(12 * MIB, 16);
    let still_needed = bytes(12 * MIB, 17);
    let v1 = world
        .put("big/done-elsewhere.bin", done_elsewhere.clone())
        .await;
    let v2 = world
        .put("big/still-needed.bin", still_needed.clone())
        .await;
    let streaming = world.replicator().await;
    let requests = [
        ObjectRequest::created(world.source_bucket.clone(), "big/done-elsewhere.bin")
            .with_version(Some(v1)),
        ObjectRequest::created(world.source_bucket.clone(), "big/still-needed.bin")
            .with_version(Some(v2)),
    ];
    for request in &requests {
        streaming
            .replicate_until(request, &Stop::when(|part| part >= 2))
            .await
            .unwrap_err();
    }
    assert_eq!(world.open_uploads().await, 2);
    // Another copier finishes the first object its own way (one CopyObject inside S3), so
    // the kept upload can never be of use.
    world.set("SERVER_SIDE_COPY", "auto");
    let other = world.replicator().await;
    let outcome = other.replicate(&requests[0]).await.unwrap();
    assert!(
        matches!(
            outcome,
            Outcome::Copied {
                method: replicator_core::Method::ServerSideCopy,
                ..
            }
        ),
        "{outcome:?}"
    );

    let far = std::time::Instant::now() + std::time::Duration::from_secs(60);
    assert_eq!(
        streaming
            .sweep_abandoned_uploads(far)
            .await
            .unwrap()
            .aborted,
        1
    );
    assert_eq!(
        world.open_uploads().await,
        1,
        "the resumable upload is kept"
    );
    assert_eq!(world.upload_records().await, 1);
    world
        .assert_replica("big/done-elsewhere.bin", &done_elsewhere)
        .await;

    let Outcome::Copied { parts_resumed, .. } = streaming.replicate(&requests[1]).await.unwrap()
    else {
        panic!("not copied")
    };
    assert_eq!(parts_resumed, 1);
    world
        .assert_replica("big/still-needed.bin", &still_needed)
        .await;
    assert_eq!(world.open_uploads().await, 0);
    assert_eq!(world.upload_records().await, 0);
}

#[tokio::test]
async fn an_upload_for_a_source_that_changed_is_aborted_not_resumed() {
    let mut world = World::new().await;
    small_parts(&mut world);
    let old = bytes(16 * MIB, 12);
    let v1 = world.put("big/changing.bin", old).await;
    let replicator = world.replicator().await;
    let first = ObjectRequest::created(world.source_bucket.clone(), "big/changing.bin")
        .with_version(Some(v1));
    replicator
        .replicate_until(&first, &Stop::when(|part| part >= 2))
        .await
        .unwrap_err();
    assert_eq!(world.open_uploads().await, 1);

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let new = bytes(16 * MIB, 13);
    let v2 = world.put("big/changing.bin", new.clone()).await;
    let second = ObjectRequest::created(world.source_bucket.clone(), "big/changing.bin")
        .with_version(Some(v2));
    let outcome = replicator.replicate(&second).await.unwrap();
    assert!(
        matches!(
            outcome,
            Outcome::Copied {
                parts_resumed: 0,
                ..
            }
        ),
        "{outcome:?}"
    );
    world.assert_replica("big/changing.bin", &new).await;
    assert_eq!(
        world.open_uploads().await,
        0,
        "the stale upload was aborted"
    );
    assert_eq!(world.upload_records().await, 0);
}

#[tokio::test]
async fn a_failed_multipart_copy_leaves_no_upload_behind() {
    let mut world = World::new().await;
    small_parts(&mut world);
    let version = world.put("big/vanishing.bin", bytes(12 * MIB, 14)).await;
    let replicator = world.replicator().await;
    let request = ObjectRequest {
        size: Some(12 * MIB as u64),
        ..ObjectRequest::created(world.source_bucket.clone(), "big/vanishing.bin")
            .with_version(Some(version.clone()))
    };
    // The source version is deleted for good after the upload starts (the stop hook runs
    // before each part; it deletes once, before part 1): the part reads fail.
    let (src, bucket) = (world.src.clone(), world.source_bucket.clone());
    let deleted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = deleted.clone();
    let stop = Stop::when(move |_| {
        if !flag.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let (src, bucket, version) = (src.clone(), bucket.clone(), version.clone());
            std::thread::spawn(move || {
                tokio::runtime::Runtime::new().unwrap().block_on(async {
                    src.delete_object()
                        .bucket(&bucket)
                        .key("big/vanishing.bin")
                        .version_id(&version)
                        .send()
                        .await
                        .unwrap();
                })
            })
            .join()
            .unwrap();
        }
        false
    });
    let err = replicator
        .replicate_until(&request, &stop)
        .await
        .unwrap_err();
    assert!(deleted.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(world.open_uploads().await, 0, "aborted after: {err}");
    assert_eq!(world.upload_records().await, 0);
    assert!(world.replica_bytes("big/vanishing.bin").await.is_none());
}

/// Destination credentials that expire in the middle of a long copy are refreshed by the
/// SDK before they lapse: the copy succeeds across several AssumeRole sessions. The test
/// emulator answers requests signed with expired session credentials with ExpiredToken, as
/// AWS does (checked first, so the test cannot pass by the emulator not caring).
#[tokio::test(flavor = "multi_thread")]
async fn destination_credentials_expiring_mid_copy_are_refreshed() {
    use std::time::Duration;

    use replicator_core::{Clients, Replicator};
    use replicator_tests::faults::{Fault, FaultProxy, Rule};
    use replicator_tests::{captured_requests, source_sdk, start_emulator, DESTINATION_ROLE};

    let emulator = start_emulator();
    let endpoint = emulator.endpoint();
    let mut world = World::on(&endpoint).await;
    small_parts(&mut world);

    // The control: credentials past their expiry are refused.
    let sts = aws_sdk_sts::Client::new(&world.source_sdk);
    let short = sts
        .assume_role()
        .role_arn(DESTINATION_ROLE)
        .role_session_name("expires-at-once")
        .duration_seconds(1)
        .send()
        .await
        .unwrap();
    let c = short.credentials().unwrap();
    let expired = world
        .source_sdk
        .to_builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new(
                    c.access_key_id(),
                    c.secret_access_key(),
                    Some(c.session_token().to_owned()),
                    None,
                    "expired",
                ),
            ),
        )
        .build();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let refused = replicator_tests::s3_client(&expired)
        .list_objects_v2()
        .bucket(&world.destination_bucket)
        .send()
        .await
        .expect_err("expired credentials are refused");
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(&refused),
        Some("ExpiredToken"),
        "{refused:?}"
    );

    // 6 parts, five in flight (a 5 MiB budget streams five at once), each upload held 8 s
    // by the proxy: two rounds, about 16 s, past a 14 s session (the SDK refreshes 10 s
    // before expiry).
    let body = bytes(27 * MIB, 77);
    world.put("long/copy.bin", body.clone()).await;
    let proxy = FaultProxy::start(
        &endpoint,
        vec![Rule::new(
            "partNumber=",
            1.0,
            Fault::Latency(Duration::from_secs(8)),
        )],
        1,
    )
    .await;
    let sdk = source_sdk(&proxy.endpoint()).await;
    let mut config = world.config();
    config.destination.session_length = Some(Duration::from_secs(14));
    let before = captured_requests(&endpoint)
        .iter()
        .filter(|r| r["action"] == "AssumeRole")
        .count();
    let replicator = Replicator::new(config.clone(), Clients::new(&sdk, &config).await);
    let outcome = replicator
        .replicate(&ObjectRequest::created(
            world.source_bucket.clone(),
            "long/copy.bin",
        ))
        .await
        .expect("the copy outlives its first session");
    assert!(matches!(outcome, Outcome::Copied { .. }), "{outcome:?}");
    world.assert_replica("long/copy.bin", &body).await;
    let sessions = captured_requests(&endpoint)
        .iter()
        .filter(|r| r["action"] == "AssumeRole")
        .count()
        - before;
    assert!(
        sessions >= 2,
        "{sessions} AssumeRole sessions for an 18 s copy"
    );
}
