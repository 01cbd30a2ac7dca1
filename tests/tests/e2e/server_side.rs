//! Server-side copy (CopyObject / UploadPartCopy): keys that need encoding in
//! x-amz-copy-source, metadata and tags kept, and the fallback to streaming when the
//! destination role may not read the source.

use std::time::{Duration, Instant};

use replicator_core::{Method, ObjectRequest, Outcome};
use replicator_tests::{bytes, captured_requests, World};

fn server_side(world: &mut World) {
    world.set("SERVER_SIDE_COPY", "auto");
}

fn method(outcome: &Outcome) -> Method {
    match outcome {
        Outcome::Copied { method, .. } => *method,
        other => panic!("not copied: {other:?}"),
    }
}

#[tokio::test]
async fn keys_needing_encoding_are_copied_inside_s3() {
    let mut world = World::new().await;
    server_side(&mut world);
    let replicator = world.replicator().await;
    // awslabs/aws-sdk-rust#1357: the SDK sends copy_source as it is; these keys break unless
    // the engine percent-encodes them.
    for (i, key) in [
        "a b.txt",
        "c++/plus+sign",
        "100% done",
        "é/ü ✓ 日本",
        "k=v:w?x#y&z",
    ]
    .iter()
    .enumerate()
    {
        let body = bytes(300 + i, 40 + i as u64);
        let version = world
            .put_with(key, body.clone(), |p| {
                p.metadata("team", "data").tagging("t=1")
            })
            .await;
        let outcome = replicator
            .replicate(
                &ObjectRequest::created(world.source_bucket.clone(), *key)
                    .with_version(Some(version)),
            )
            .await
            .unwrap_or_else(|e| panic!("{key:?}: {e}"));
        assert_eq!(method(&outcome), Method::ServerSideCopy, "{key:?}");
        world.assert_replica(key, &body).await;
        let head = world.replica_head(key).await;
        assert_eq!(head.metadata().unwrap()["team"], "data", "{key:?}");
        assert!(head
            .metadata()
            .unwrap()
            .contains_key("replicator-source-version-id"));
        assert_eq!(
            world.replica_tags(key).await,
            [("t".to_owned(), "1".to_owned())],
            "{key:?}"
        );
    }
}

/// The destination requests the emulator saw for `key` since `from`, by operation.
fn operations_on(endpoint: &str, from: usize, key_part: &str) -> Vec<String> {
    captured_requests(endpoint)[from..]
        .iter()
        .filter(|r| r["path"].as_str().unwrap_or_default().contains(key_part))
        .map(|r| {
            let (method, query) = (r["method"].as_str().unwrap(), r["query"].as_str().unwrap());
            let copy = !r["copy_source"].is_null();
            match (method, query.contains("partNumber"), copy) {
                ("PUT", true, true) => "UploadPartCopy",
                ("PUT", true, false) => "UploadPart",
                ("PUT", false, true) => "CopyObject",
                ("PUT", false, false) => "PutObject",
                ("POST", _, _) if query.contains("uploads") => "CreateMultipartUpload",
                ("POST", _, _) => "CompleteMultipartUpload",
                (m, _, _) => m,
            }
            .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_large_object_takes_one_copy_object_when_the_time_left_allows() {
    let mut world = World::new().await;
    server_side(&mut world);
    let body = bytes(40 * 1024 * 1024 + 3, 51);
    let key = "big-one-copy/ü+é 1.bin";
    let version = world
        .put_with(key, body.clone(), |p| {
            p.content_type("application/x-demo")
                .metadata("team", "data")
                .tagging("big=yes")
        })
        .await;
    let replicator = world.replicator().await;
    let request =
        ObjectRequest::created(world.source_bucket.clone(), key).with_version(Some(version));
    let mark = captured_requests(&world.endpoint).len();
    // 40 MiB at the planned 32 MiB/s needs 1.25 s: a minute is plenty.
    let outcome = replicator
        .replicate_by(&request, Some(Instant::now() + Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(method(&outcome), Method::ServerSideCopy);
    let ops = operations_on(&world.endpoint, mark, "big-one-copy");
    assert_eq!(
        ops.iter().filter(|o| *o == "CopyObject").count(),
        1,
        "{ops:?}"
    );
    assert!(
        !ops.iter()
            .any(|o| o == "UploadPartCopy" || o == "CreateMultipartUpload"),
        "{ops:?}"
    );
    world.assert_replica(key, &body).await;
    let head = world.replica_head(key).await;
    assert_eq!(head.content_type(), Some("application/x-demo"));
    assert_eq!(head.metadata().unwrap()["team"], "data");
    assert_eq!(
        head.ssekms_key_id(),
        Some(world.destination_key_arn.as_str())
    );
    assert_eq!(
        world.replica_tags(key).await,
        [("big".to_owned(), "yes".to_owned())]
    );
}

#[tokio::test]
async fn a_large_object_goes_part_by_part_when_one_copy_might_outlast_the_deadline() {
    let mut world = World::new().await;
    server_side(&mut world);
    world.set("PART_SIZE", "5MiB");
    let body = bytes(40 * 1024 * 1024, 52);
    let key = "big deadline/part by part.bin";
    let version = world.put(key, body.clone()).await;
    let replicator = world.replicator().await;
    let request =
        ObjectRequest::created(world.source_bucket.clone(), key).with_version(Some(version));
    // 0.8 s left is less than the 1.25 s one CopyObject is planned at: UploadPartCopy, part
    // by part, so the deadline can stop it between parts and a retry resumes.
    let first = replicator
        .replicate_by(&request, Some(Instant::now() + Duration::from_millis(800)))
        .await;
    match &first {
        Ok(o) => assert_eq!(method(o), Method::ServerSideMultipart),
        Err(e) => assert!(
            matches!(e, replicator_core::ReplicationError::DeadlineReached { .. }),
            "{e}"
        ),
    }
    let outcome = match first {
        Ok(o) => o,
        Err(_) => replicator.replicate(&request).await.unwrap(),
    };
    assert_eq!(method(&outcome), Method::ServerSideMultipart);
    world.assert_replica(key, &body).await;
    assert_eq!(world.open_uploads().await, 0);
}

#[tokio::test]
async fn large_objects_are_copied_part_by_part_inside_s3() {
    let mut world = World::new().await;
    server_side(&mut world);
    // Above SERVER_SIDE_SINGLE_COPY_MAX: part by part whatever the time left.
    world.set("SERVER_SIDE_SINGLE_COPY_MAX", "16MiB");
    let body = bytes(17 * 1024 * 1024 + 5, 50);
    let key = "big server side/ü+1.bin";
    let version = world
        .put_with(key, body.clone(), |p| {
            p.content_type("application/x-demo").tagging("big=yes")
        })
        .await;
    let outcome = world
        .replicator()
        .await
        .replicate(
            &ObjectRequest::created(world.source_bucket.clone(), key).with_version(Some(version)),
        )
        .await
        .unwrap();
    assert_eq!(method(&outcome), Method::ServerSideMultipart);
    world.assert_replica(key, &body).await;
    assert_eq!(
        world.replica_head(key).await.content_type(),
        Some("application/x-demo")
    );
}

#[tokio::test]
async fn a_denied_server_side_copy_falls_back_to_streaming_and_remembers() {
    let mut world = World::new().await;
    server_side(&mut world);
    let bucket = format!("nocopy-{}", &world.source_bucket[4..]);
    let world = world.with_source_bucket(bucket.clone()).await;
    let replicator = world.replicator().await;
    for (i, size) in [100usize, 17 * 1024 * 1024].iter().enumerate() {
        let key = format!("fallback/{i}");
        let body = bytes(*size, 60 + i as u64);
        world
            .src
            .put_object()
            .bucket(&world.source_bucket)
            .key(&key)
            .body(body.clone().into())
            .send()
            .await
            .unwrap();
        let outcome = replicator
            .replicate(&ObjectRequest::created(
                world.source_bucket.clone(),
                key.clone(),
            ))
            .await
            .unwrap();
        let expected = if *size > 1024 {
            Method::Multipart
        } else {
            Method::SinglePut
        };
        assert_eq!(method(&outcome), expected, "{key}");
        world.assert_replica(&key, &body).await;
    }
}
