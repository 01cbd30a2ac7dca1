//! A replica carries its source version's own full-object checksum: HEAD of each side with
//! checksum mode on shows the same value, single part and multipart, streamed and
//! server-side, so equality is proven without a download; where the source has none the
//! replica keeps CHECKSUM_ALGORITHM's (CRC32C). A byte changed on the way is refused by S3:
//! see `reliability::a_source_read_corrupted_on_the_way_never_becomes_a_replica`.

use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, ChecksumType};
use replicator_core::{Method, Outcome};
use replicator_tests::{bytes, World};

const MIB: usize = 1024 * 1024;

/// (algorithm, value, type) of an object's checksum, HEAD with checksum mode on.
async fn checksum(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> (Option<&'static str>, Option<String>, Option<ChecksumType>) {
    let h = s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap_or_else(|e| panic!("head {key}: {e:?}"));
    let found = [
        ("CRC64NVME", h.checksum_crc64_nvme()),
        ("CRC32C", h.checksum_crc32_c()),
        ("CRC32", h.checksum_crc32()),
        ("SHA256", h.checksum_sha256()),
        ("SHA1", h.checksum_sha1()),
    ]
    .into_iter()
    .find_map(|(a, v)| v.map(|v| (a, v.to_owned())));
    (
        found.as_ref().map(|f| f.0),
        found.map(|f| f.1),
        h.checksum_type().cloned(),
    )
}

fn method(outcome: &Outcome) -> Method {
    match outcome {
        Outcome::Copied { method, .. } => *method,
        other => panic!("not copied: {other:?}"),
    }
}

#[tokio::test]
async fn a_replica_has_its_sources_full_object_checksum_on_every_path() {
    let cases = [
        ("off", 700, Method::SinglePut),
        ("off", 17 * MIB + 3, Method::Multipart),
        ("auto", 700, Method::ServerSideCopy),
        ("auto", 17 * MIB + 3, Method::ServerSideMultipart),
    ];
    for algorithm in [ChecksumAlgorithm::Crc64Nvme, ChecksumAlgorithm::Crc32] {
        for (mode, size, expected) in cases {
            let mut world = World::new().await;
            world.set("SERVER_SIDE_COPY", mode);
            world.set("MULTIPART_THRESHOLD", "5MiB");
            world.set("PART_SIZE", "5MiB");
            world.set("SERVER_SIDE_SINGLE_COPY_MAX", "16MiB");
            let key = format!("sums/{} {size}.bin", algorithm.as_str());
            let body = bytes(size, size as u64);
            world
                .put_with(&key, body.clone(), |p| {
                    p.checksum_algorithm(algorithm.clone())
                })
                .await;
            let outcome = world
                .replicator()
                .await
                .replicate(&world.request(&key))
                .await
                .unwrap_or_else(|e| panic!("{expected:?}: {e}"));
            assert_eq!(method(&outcome), expected);
            world.assert_replica(&key, &body).await;
            let source = checksum(&world.src, &world.source_bucket, &key).await;
            let replica = checksum(&world.dst, &world.destination_bucket, &key).await;
            assert_eq!(source.0, Some(algorithm.as_str()), "{source:?}");
            assert_eq!(
                (replica.0, &replica.1),
                (source.0, &source.1),
                "{algorithm:?} {expected:?}"
            );
            if size > 5 * MIB {
                assert_eq!(replica.2, Some(ChecksumType::FullObject), "{expected:?}");
            }
            let head = world.replica_head(&key).await;
            assert_eq!(
                head.metadata().unwrap().get("replicator-source-checksum"),
                Some(&format!("{}:{}", algorithm.as_str(), source.1.unwrap())),
                "{expected:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_multipart_copy_of_a_sha256_source_keeps_the_configured_crc() {
    // SHA-256 cannot be a multipart upload's full-object checksum: a large source keeps
    // CHECKSUM_ALGORITHM (composite CRC32C); a small one, one PUT, carries the SHA-256.
    let mut world = World::new().await;
    world.set("MULTIPART_THRESHOLD", "5MiB");
    world.set("PART_SIZE", "5MiB");
    let replicator = world.replicator().await;
    for (key, size) in [("sha/small", 900), ("sha/large", 11 * MIB)] {
        let body = bytes(size, 7);
        world
            .put_with(key, body.clone(), |p| {
                p.checksum_algorithm(ChecksumAlgorithm::Sha256)
            })
            .await;
        replicator.replicate(&world.request(key)).await.unwrap();
        world.assert_replica(key, &body).await;
    }
    let small = checksum(&world.dst, &world.destination_bucket, "sha/small").await;
    let source = checksum(&world.src, &world.source_bucket, "sha/small").await;
    assert_eq!((small.0, small.1), (Some("SHA256"), source.1));
    let large = checksum(&world.dst, &world.destination_bucket, "sha/large").await;
    assert_eq!(large.0, Some("CRC32C"), "{large:?}");
    assert_ne!(large.2, Some(ChecksumType::FullObject));
    let head = world.replica_head("sha/large").await;
    assert!(!head
        .metadata()
        .unwrap()
        .contains_key("replicator-source-checksum"));
}
