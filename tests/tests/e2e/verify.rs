//! `replicator verify` against the emulator: each problem class planted by hand with plain
//! SDK calls (a deleted replica, a newer source version, a flipped byte of the same size, a
//! replica re-encrypted with another key, a changed tag, changed metadata, a replica whose
//! source is gone, an object this replicator did not write) is found with exactly its class,
//! HEAD-only and with `--deep`; `--repair` fixes the repairable ones and nothing else.

use std::collections::BTreeMap;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, MetadataDirective, ServerSideEncryption, Tag, Tagging};
use replicator_core::sync::SyncRequest;
use replicator_tests::{bytes, World};
use serde_json::Value;

/// Runs `replicator ARGS…` with this world's configuration: the exit code and stdout.
pub async fn cli(world: &World, args: &[&str]) -> (i32, String) {
    let mut out = Vec::new();
    let code = replicator_cli::run(
        world.cli_args(args),
        Some(world.source_sdk.clone()),
        &mut out,
    )
    .await;
    (code, String::from_utf8(out).unwrap())
}

/// `verify --json …`: the exit code and each reported key's JSON line.
pub async fn verify_json(world: &World, args: &[&str]) -> (i32, BTreeMap<String, Value>) {
    let mut argv = vec!["verify", "--json"];
    argv.extend(args);
    let (code, out) = cli(world, &argv).await;
    let lines = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}\n{out}")))
        .map(|v| (v["key"].as_str().unwrap().to_owned(), v))
        .collect();
    (code, lines)
}

fn classes(lines: &BTreeMap<String, Value>) -> BTreeMap<&str, &str> {
    lines
        .iter()
        .map(|(k, v)| (k.as_str(), v["class"].as_str().unwrap()))
        .collect()
}

pub async fn sync_all(world: &World) {
    let report = world
        .syncer()
        .await
        .run(SyncRequest {
            run_id: "seed".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(report.complete && report.failed == 0, "{report:?}");
}

/// Rewrites the replica of `key` by hand: its bytes and user metadata (provenance included)
/// as they are, passed through `change`, written with the destination key and a CRC32.
pub async fn rewrite_replica(
    world: &World,
    key: &str,
    change: impl FnOnce(
        &mut Vec<u8>,
        aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder,
    ) -> aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder,
) {
    let head = world.replica_head(key).await;
    let mut body = world.replica_bytes(key).await.unwrap();
    let put = world
        .dst
        .put_object()
        .bucket(&world.destination_bucket)
        .key(key)
        .set_metadata(head.metadata().cloned())
        .set_content_type(head.content_type().map(str::to_owned))
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(&world.destination_key_arn)
        .checksum_algorithm(ChecksumAlgorithm::Crc32);
    let put = change(&mut body, put);
    put.body(ByteStream::from(body)).send().await.unwrap();
}

/// Plants one object of each class under `planted/`, after a sync replicated them all.
/// Returns the class each key must be found in (ok/… keys are not reported).
pub async fn plant_every_class(world: &World) -> BTreeMap<String, &'static str> {
    let objects: BTreeMap<String, Vec<u8>> = [
        "planted/ok-1",
        "planted/ok-2",
        "planted/missing",
        "planted/stale",
        "planted/corrupt",
        "planted/wrong-key",
        "planted/metadata",
        "planted/extra",
        "other/tagged",
    ]
    .iter()
    .enumerate()
    .map(|(i, k)| (k.to_string(), bytes(3000 + i, i as u64)))
    .collect();
    world.put_all(&objects).await;
    world
        .put_with("other/tagged", objects["other/tagged"].clone(), |p| {
            p.tagging("team=a")
        })
        .await;
    sync_all(world).await;

    let dst = &world.dst;
    let bucket = &world.destination_bucket;
    dst.delete_object()
        .bucket(bucket)
        .key("planted/missing")
        .send()
        .await
        .unwrap();
    world.put("planted/stale", bytes(3000, 99)).await;
    rewrite_replica(world, "planted/corrupt", |body, put| {
        body[100] ^= 0x01;
        put
    })
    .await;
    let other_key = aws_sdk_kms::Client::new(&world.destination_sdk)
        .create_key()
        .send()
        .await
        .unwrap();
    let other_key = other_key.key_metadata().unwrap().arn().unwrap().to_owned();
    dst.copy_object()
        .bucket(bucket)
        .key("planted/wrong-key")
        .copy_source(format!("{bucket}/planted/wrong-key"))
        .metadata_directive(MetadataDirective::Copy)
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(other_key)
        .send()
        .await
        .unwrap();
    rewrite_replica(world, "planted/metadata", |_, put| {
        put.content_type("text/x-changed")
    })
    .await;
    dst.put_object_tagging()
        .bucket(bucket)
        .key("other/tagged")
        .tagging(
            Tagging::builder()
                .tag_set(Tag::builder().key("team").value("b").build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    world.delete_source("planted/extra").await;
    world.put_foreign("planted/foreign", b"not ours").await;
    BTreeMap::from([
        ("planted/missing".to_owned(), "missing"),
        ("planted/stale".to_owned(), "stale"),
        ("planted/corrupt".to_owned(), "corrupt"),
        ("planted/wrong-key".to_owned(), "wrong-key"),
        ("planted/metadata".to_owned(), "metadata-drift"),
        ("planted/extra".to_owned(), "extra"),
        ("planted/foreign".to_owned(), "foreign"),
        ("other/tagged".to_owned(), "tag-drift"),
    ])
}

/// A world whose replicas carry the same checksum algorithm as the test's sources (the
/// SDK's default CRC32), so HEADs alone can prove equal bytes.
pub async fn comparable_world() -> World {
    let mut world = World::new().await;
    world.set("CHECKSUM_ALGORITHM", "CRC32");
    world
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_each_planted_problem_with_its_class_head_only_and_deep() {
    let world = comparable_world().await;
    let planted = plant_every_class(&world).await;
    let expected: BTreeMap<&str, &str> = planted.iter().map(|(k, v)| (k.as_str(), *v)).collect();

    let (code, lines) = verify_json(&world, &["--tags"]).await;
    assert_eq!(classes(&lines), expected, "HEAD-only");
    assert_eq!(code, 1);
    assert!(lines["planted/corrupt"]["source_version"].is_string());

    let (code, lines) = verify_json(&world, &["--deep"]).await;
    assert_eq!(classes(&lines), expected, "deep");
    assert_eq!(code, 1);
    let corrupt = lines["planted/corrupt"]["findings"].to_string();
    assert!(corrupt.contains("offset 0"), "{corrupt}");

    // Without --tags, the tag change is not looked for; a prefix narrows the run.
    let (_, lines) = verify_json(&world, &["--prefix", "other/"]).await;
    assert!(lines.is_empty(), "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_fixes_the_repairable_and_never_deletes() {
    let world = comparable_world().await;
    let planted = plant_every_class(&world).await;
    let versions_before = world.all_destination_versions().await.len();

    let (code, lines) = verify_json(&world, &["--repair", "--tags"]).await;
    assert_eq!(
        code, 1,
        "metadata and tag drift are not repaired: {lines:?}"
    );
    for (key, found) in [
        ("planted/missing", "missing"),
        ("planted/stale", "stale"),
        ("planted/corrupt", "corrupt"),
        ("planted/wrong-key", "wrong-key"),
    ] {
        // Repaired objects are reported with what was found and are ok now.
        assert_eq!(lines[key]["found"], found, "{key}: {}", lines[key]);
        assert_eq!(lines[key]["class"], "ok", "{key}: {}", lines[key]);
        let source = world
            .src
            .get_object()
            .bucket(&world.source_bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        let body = source.body.collect().await.unwrap().to_vec();
        world.assert_replica(key, &body).await;
    }
    let (code, lines) = verify_json(&world, &["--tags"]).await;
    let remaining: BTreeMap<&str, &str> = planted
        .iter()
        .filter(|(_, class)| {
            matches!(
                **class,
                "metadata-drift" | "tag-drift" | "extra" | "foreign"
            )
        })
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(classes(&lines), remaining);
    assert_eq!(code, 1);
    // Nothing was deleted: every version is still there, plus the repairs.
    assert_eq!(
        world.all_destination_versions().await.len(),
        versions_before + 4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_only_proves_replicas_with_their_sources_checksum_deep_proves_older_ones() {
    // The sources carry the SDK's CRC32, and so do their replicas: HEADs prove them.
    let world = World::new().await;
    world.put("a/1", bytes(5000, 1)).await;
    world.put("a/2", bytes(0, 2)).await;
    world.put_foreign("z/foreign", b"x").await;
    sync_all(&world).await;
    let (code, lines) = verify_json(&world, &[]).await;
    assert_eq!(classes(&lines), BTreeMap::from([("z/foreign", "foreign")]));
    assert_eq!(code, 0, "{lines:?}");
    // Replicas written before they carried their source's checksum have CRC32C (the
    // default) of the same bytes: HEADs cannot compare them.
    for key in ["a/1", "a/2"] {
        rewrite_replica(&world, key, |_, put| {
            put.checksum_algorithm(ChecksumAlgorithm::Crc32C)
        })
        .await;
    }
    let (code, lines) = verify_json(&world, &[]).await;
    assert_eq!(
        classes(&lines),
        BTreeMap::from([
            ("a/1", "unverifiable"),
            ("a/2", "unverifiable"),
            ("z/foreign", "foreign")
        ])
    );
    assert_eq!(code, 1);
    let (code, lines) = verify_json(&world, &["--deep"]).await;
    assert_eq!(classes(&lines), BTreeMap::from([("z/foreign", "foreign")]));
    assert_eq!(code, 0, "foreign objects do not fail a verification");
    let (code, out) = cli(&world, &["verify", "--deep"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("| {:<16} | {:>13} |", "ok", 2)),
        "{out}"
    );
    let (code, out) = cli(
        &world,
        &["verify", "--prefix", "elsewhere/", "--key-prefix", "a/"],
    )
    .await;
    assert_eq!(code, 2, "{out}");
}

#[tokio::test]
async fn with_json_a_listing_failure_leaves_stdout_json_lines_only() {
    // Regression: "verify failed: …" went to stdout between the JSON lines.
    let mut world = World::new().await;
    world.set("SOURCE_BUCKET", "no-such-source-bucket-for-verify");
    let (code, out) = cli(&world, &["verify", "--json"]).await;
    assert_eq!(code, 1, "a listing that failed fails the run: {out}");
    for line in out.lines() {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "not a JSON line: {line}"
        );
    }
}
