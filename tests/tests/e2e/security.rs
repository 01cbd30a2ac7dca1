//! Bucket ownership and refusals: a bucket owned by anyone but the expected account is an
//! error and never a write. (The test emulator enforces ExpectedBucketOwner as S3 does.)

use replicator_tests::{World, SOURCE_ACCOUNT};

use crate::common::{deliver, s3_event, Captured};

#[tokio::test]
async fn a_destination_owned_by_another_account_is_never_written() {
    let mut world = World::new().await;
    world.set("DESTINATION_ACCOUNT_ID", "999999999999");
    let version = world.put("owned", b"data".to_vec()).await;
    let err = deliver(&world, "owned", &version, 4).await.unwrap_err();
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
    world.set("SOURCE_ACCOUNT_ID", "999999999999");
    let version = world.put("src-owned", b"data".to_vec()).await;
    let err = deliver(&world, "src-owned", &version, 4).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("the function's own role"), "{text}");
    assert!(text.contains(&world.source_bucket), "{text}");
    assert!(world.replica_bytes("src-owned").await.is_none());

    // With the right owner it works.
    world.set("SOURCE_ACCOUNT_ID", SOURCE_ACCOUNT);
    let out = deliver(&world, "src-owned", &version, 4).await.unwrap();
    assert_eq!(out["copied"], 1, "{out}");
}

#[tokio::test]
async fn a_missing_destination_bucket_is_a_permanent_error_naming_it() {
    let mut world = World::new().await;
    world.set("DESTINATION_BUCKET", "no-such-destination-bucket");
    let version = world.put("k", b"data".to_vec()).await;
    let err = deliver(&world, "k", &version, 4).await.unwrap_err();
    assert!(!err.retryable, "{err}");
    assert!(
        err.to_string().contains("no-such-destination-bucket"),
        "{err}"
    );
}

/// At the HTTP layer: every request the replicator sends to the destination bucket (and,
/// with SOURCE_ACCOUNT_ID, to the source bucket) carries x-amz-expected-bucket-owner for the
/// right account, every copy carries x-amz-source-expected-bucket-owner, and every
/// AssumeRole carries the ExternalId — over streaming, multipart, server-side, delete and
/// sync paths.
#[tokio::test]
async fn every_request_on_the_wire_names_the_expected_owner_and_external_id() {
    use replicator_tests::{
        bytes, captured_requests, start_emulator, DESTINATION_ACCOUNT, EXTERNAL_ID,
    };

    let emulator = start_emulator();
    let endpoint = emulator.endpoint();
    let mut world = World::on(&endpoint).await;
    for (k, v) in [
        ("SOURCE_ACCOUNT_ID", SOURCE_ACCOUNT),
        ("REPLICATE_DELETES", "true"),
        ("PART_SIZE", "5MiB"),
        ("MULTIPART_THRESHOLD", "5MiB"),
    ] {
        world.overrides.insert(k, v.into());
    }
    let big = 11 * 1024 * 1024;
    let small_v = world.put("wire/small file.txt", bytes(1000, 1)).await;
    let big_v = world.put("wire/big+file.bin", bytes(big, 2)).await;
    let ss_v = world.put("wire/server side é.txt", bytes(2000, 3)).await;
    let ss_big_v = world.put("wire/server side big.bin", bytes(big, 4)).await;
    world.put("wire/synced.txt", bytes(10, 5)).await;

    // Only the replicator's own requests are checked: the harness's are cut out.
    let mut theirs = Vec::new();
    let mut slice = |from: usize| {
        let all = captured_requests(&endpoint);
        theirs.extend(all[from..].iter().cloned());
        all.len()
    };
    let mark = captured_requests(&endpoint).len();
    let streaming = world.handler().await;
    for (key, version, size) in [
        ("wire/small file.txt", &small_v, 1000),
        ("wire/big+file.bin", &big_v, big),
    ] {
        streaming
            .handle(s3_event(&world, key, version, size))
            .await
            .unwrap();
    }
    world.set("SERVER_SIDE_COPY", "auto");
    // The big object part by part (UploadPartCopy), not in one CopyObject.
    world.set("SERVER_SIDE_SINGLE_COPY_MAX", "5MiB");
    let server_side = world.handler().await;
    for (key, version, size) in [
        ("wire/server side é.txt", &ss_v, 2000),
        ("wire/server side big.bin", &ss_big_v, big),
    ] {
        server_side
            .handle(s3_event(&world, key, version, size))
            .await
            .unwrap();
    }
    let mark = slice(mark);
    let marker = world
        .src
        .delete_object()
        .bucket(&world.source_bucket)
        .key("wire/small file.txt")
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_owned();
    let mark = captured_requests(&endpoint).len().max(mark);
    let mut delete = world.fixture("s3-delete-marker-created.json");
    delete["Records"][0]["s3"]["object"]["key"] = "wire/small+file.txt".into();
    delete["Records"][0]["s3"]["object"]["versionId"] = marker.into();
    let out = streaming.handle(delete).await.unwrap();
    assert_eq!(out["deleted"], 1, "{out}");
    let report = world
        .syncer()
        .await
        .run(replicator_core::sync::SyncRequest {
            run_id: "wire".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(report.copied >= 1 && report.failed == 0, "{report:?}");
    slice(mark);

    let bucket_of = |r: &serde_json::Value| {
        r["path"]
            .as_str()
            .unwrap()
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap()
            .to_owned()
    };
    let (mut to_destination, mut to_source, mut copies) = (0, 0, 0);
    let mut seen_ops = std::collections::BTreeSet::new();
    for r in &theirs {
        let bucket = bucket_of(r);
        if bucket == world.destination_bucket {
            to_destination += 1;
            assert_eq!(r["expected_owner"], DESTINATION_ACCOUNT, "{r}");
            let op = match (r["method"].as_str().unwrap(), r["query"].as_str().unwrap()) {
                ("PUT", q) if q.contains("partNumber") && !r["copy_source"].is_null() => {
                    "UploadPartCopy"
                }
                ("PUT", q) if q.contains("partNumber") => "UploadPart",
                ("PUT", _) if !r["copy_source"].is_null() => "CopyObject",
                ("PUT", _) => "PutObject",
                ("POST", q) if q.contains("uploads") => "CreateMultipartUpload",
                ("POST", q) if q.contains("uploadId") => "CompleteMultipartUpload",
                ("DELETE", _) => "DeleteObject",
                ("GET", q) if q.contains("versions") => "ListObjectVersions",
                ("GET", q) if q.contains("list-type=2") => "ListObjectsV2",
                ("GET", _) => "GetObject",
                ("HEAD", _) => "HeadObject",
                (m, _) => m,
            };
            seen_ops.insert(op);
        } else if bucket == world.source_bucket {
            to_source += 1;
            assert_eq!(r["expected_owner"], SOURCE_ACCOUNT, "{r}");
        }
        if !r["copy_source"].is_null() {
            copies += 1;
            assert_eq!(r["source_expected_owner"], SOURCE_ACCOUNT, "{r}");
        }
        if r["access_key"]
            .as_str()
            .is_some_and(|k| k.starts_with("ASIA"))
            && !bucket.is_empty()
        {
            assert_eq!(
                r["expected_owner"], DESTINATION_ACCOUNT,
                "signed by the destination role: {r}"
            );
        }
    }
    for op in [
        "PutObject",
        "CreateMultipartUpload",
        "UploadPart",
        "UploadPartCopy",
        "CopyObject",
        "CompleteMultipartUpload",
        "DeleteObject",
    ] {
        assert!(seen_ops.contains(op), "no {op} among {seen_ops:?}");
    }
    assert!(
        to_destination >= 20 && to_source >= 10 && copies >= 3,
        "{to_destination} {to_source} {copies}"
    );

    let assume_roles: Vec<_> = captured_requests(&endpoint)
        .into_iter()
        .filter(|r| r["action"] == "AssumeRole")
        .collect();
    assert!(assume_roles.len() >= 2, "{assume_roles:?}");
    for r in &assume_roles {
        assert_eq!(r["external_id"], EXTERNAL_ID, "{r}");
    }
}

/// Logs at every level — TRACE, the SDK's own included, as text and as JSON — hold no
/// secret key, session token, request signature or ExternalId, over successful copies
/// (single and multipart), a failed one and a sync. (Access key ids are identifiers, not
/// secrets: the SDK prints them beside a redacted secret, and so may we.)
#[test]
fn logs_at_every_level_hold_no_credentials_tokens_or_signatures() {
    use replicator_tests::{bytes, captured_requests, start_emulator, EXTERNAL_ID};

    let emulator = start_emulator();
    let endpoint = emulator.endpoint();
    let mut logs = String::new();
    for json in [false, true] {
        let out = Captured::default();
        let subscriber = replicator_core::logging::subscriber("trace", json, out.clone());
        let guard = tracing::subscriber::set_default(subscriber);
        // A current-thread runtime: every task runs on this thread, under this subscriber.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut world = World::on(&endpoint).await;
            world.set("PART_SIZE", "5MiB");
            world.set("MULTIPART_THRESHOLD", "5MiB");
            let handler = world.handler().await;
            for (key, size) in [("logs/small", 100), ("logs/big", 6 * 1024 * 1024)] {
                let v = world.put(key, bytes(size, 1)).await;
                handler
                    .handle(s3_event(&world, key, &v, size))
                    .await
                    .unwrap();
            }
            handler
                .handle(s3_event(
                    &world,
                    "logs/never-existed",
                    "3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
                    1,
                ))
                .await
                .ok();
            world.set("DESTINATION_ACCOUNT_ID", "999999999999");
            let v = world.put("logs/denied", bytes(10, 2)).await;
            let denied = world.handler().await;
            assert!(denied
                .handle(s3_event(&world, "logs/denied", &v, 10))
                .await
                .is_err());
            world.overrides.remove("DESTINATION_ACCOUNT_ID");
            world
                .syncer()
                .await
                .run(replicator_core::sync::SyncRequest {
                    run_id: "logs".into(),
                    ..Default::default()
                })
                .await
                .unwrap();
        });
        drop(runtime);
        drop(guard);
        let text = out.text();
        assert!(
            text.contains("TRACE") || text.contains("\"level\":\"TRACE\""),
            "no TRACE lines were logged"
        );
        logs.push_str(&text);
    }

    let mut secrets = vec![
        (
            "the source secret key".to_owned(),
            "source-secret".to_owned(),
        ),
        ("the ExternalId".to_owned(), EXTERNAL_ID.to_owned()),
    ];
    for r in captured_requests(&endpoint) {
        for (what, field) in [
            ("a session token", "security_token"),
            ("a request signature", "signature"),
        ] {
            if let Some(v) = r[field].as_str() {
                secrets.push((what.to_owned(), v.to_owned()));
            }
        }
    }
    assert!(
        secrets.iter().any(|(w, _)| w == "a session token"),
        "no assumed-role request was captured"
    );
    let markers = [
        "Signature=",
        "AWS4-HMAC-SHA256 Credential",
        "aws_secret_access_key",
        "SecretAccessKey",
    ]
    .map(|m| ("a signing or credential field".to_owned(), m.to_owned()));
    for (what, value) in secrets.iter().chain(&markers) {
        if let Some(at) = logs.find(value.as_str()) {
            let mut start = at.saturating_sub(300);
            while !logs.is_char_boundary(start) {
                start -= 1;
            }
            let context: String = logs[start..].chars().take(400).collect();
            panic!("the logs contain {what}: …{context}…");
        }
    }
}
